//! The layout reader's old home: it lives in [`crate::store::walk`] now, reading any
//! [`crate::store::BlobSource`].

pub use crate::store::blob_path;
pub use crate::store::walk::*;
