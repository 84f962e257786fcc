//! The shared vocabulary every stage speaks: digests, platforms, annotation keys, the one JSON
//! writer for what is hashed, the plan's file entries and an image's runtime configuration.
//! It imports no other module of kiln's.

pub mod annotation;
pub mod canonical;
pub mod config;
pub mod digest;
pub mod entry;
pub mod platform;
pub mod reference;
