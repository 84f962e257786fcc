//! Registries, spoken to over the OCI distribution API: the [`Client`] (authentication,
//! retries, timeouts) that pulls bases here and that [`crate::publish::registry`] pushes
//! through, and [`pull`], which fetches a base image by digest into kiln's cache.

pub(crate) mod auth;
pub(crate) mod client;
#[cfg(test)]
mod client_tests;
pub mod pull;
mod retry;
pub mod source;

pub use auth::{AuthSource, Credentials};
pub use client::{Client, Options};
pub use source::{RegistrySource, Release};
