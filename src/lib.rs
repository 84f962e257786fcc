//! kiln turns a declarative KDL recipe into deterministic, multi-platform OCI images.
//!
//! The pipeline runs one way: [`recipe`] (KDL with spans) and the pinned [`inputs`] →
//! [`plan`] (every detail decided, pure data) → [`toolchain`] (the build steps) → layers and
//! images (deterministic tar, compression, canonical JSON) → `store`/`publish` (an OCI layout
//! on disk, a tar). [`update`] and [`inspect`] read what was written. [`oci`], [`diag`] and
//! [`error`] are the vocabulary all of them share. Imports between these modules run downwards
//! only; `tests/it/module_cycles.rs` holds the order and checks it.

// No `unwrap()` on input-dependent paths (DESIGN.md, house rule 9): denied outside the tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod attest;
pub mod base;
pub(crate) mod baseview;
pub mod build;
pub mod diag;
pub mod doctor;
pub mod error;
pub(crate) mod host;
pub(crate) mod ignore;
pub(crate) mod image;
pub mod init;
pub mod inputs;
pub mod inspect;
pub(crate) mod layer;
pub(crate) mod lock;
pub mod merge;
pub mod oci;
pub mod plan;
pub mod progress;
pub mod publish;
pub mod recipe;
pub mod remote_cache;
pub(crate) mod store;
/// File digests remembered by the files' metadata, across builds.
pub use store::fingerprint;
pub mod toolchain;
pub mod update;
pub mod verify;

#[cfg(test)]
mod pipeline_tests;
