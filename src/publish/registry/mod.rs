//! The OCI distribution API, spoken by kiln itself: [`push::push`] sends an image of a
//! release to a repository (only the blobs the registry lacks, tags last), through a
//! [`Client`] that authenticates, retries and bounds every wait.

mod auth;
mod client;
mod layout;
pub mod push;
mod upload;

pub use auth::{AuthSource, Credentials};
pub use client::{Client, Options};
pub use layout::{check_targets, push_layout};
pub use push::{PushJob, PushSummary, push};
pub use upload::CHUNK;
