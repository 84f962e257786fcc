//! The OCI distribution API, spoken by kiln itself: [`push::push`] sends an image of a
//! release to a repository (only the blobs the registry lacks, tags last), through the
//! [`Client`] of [`crate::inputs::registry`], which authenticates, retries and bounds every wait.

mod hints;
mod layout;
pub mod push;
mod referrers;
pub mod upload;

pub use crate::inputs::registry::{AuthSource, Client, Credentials, Options};
pub use layout::{check_targets, push_layout, push_release};
pub use push::{PushJob, PushSummary, push, put_manifest};
pub use referrers::{check_reference, sign_reference};
pub use upload::{Outcome, push_blob};
