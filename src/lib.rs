//! kiln turns a declarative KDL recipe into deterministic, multi-platform OCI images.
//!
//! The pipeline runs one way: [`recipe`] (KDL with spans) → [`plan`] (every detail decided,
//! printable) → layers and images (deterministic tar, compression, canonical JSON) → an OCI
//! image layout on disk. `inspect` reads what was written.

// No `unwrap()` on input-dependent paths (DESIGN.md, house rule 9): denied outside the tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod annotation;
pub mod base;
pub mod baseview;
pub mod build;
pub mod canonical;
pub mod codes;
pub mod debian;
pub mod diag;
pub mod digest;
pub mod doctor;
pub mod entry;
pub mod error;
pub mod ignore;
pub mod image;
pub mod init;
pub mod inspect;
pub mod layer;
pub mod layout;
pub mod lock;
pub mod plan;
pub mod platform;
pub mod progress;
pub mod recipe;
pub mod store;
pub mod toolchain;
pub mod update;
pub mod walk;

#[cfg(test)]
mod pipeline_tests;
