//! [`crate::store::Publisher`] implementations beyond the layout directory: a release written
//! as one tar ([`TarPublisher`], which `kiln bundle` writes). Archives and registries join here.

mod tar;

pub use tar::TarPublisher;
