//! The layout writer's old home: it lives in [`crate::store`] now ([`Staging`], a
//! [`crate::store::BlobSink`] and [`crate::store::Publisher`]).

pub use crate::store::{BlobRef, OCI_LAYOUT, Staging};
