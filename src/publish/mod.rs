//! [`crate::store::Publisher`] implementations beyond the layout directory: a release written
//! as one tar ([`TarPublisher`], which `kiln bundle` writes), and the archives other tools
//! load ([`write_oci_archive`] for skopeo and podman, [`write_docker_archive`] for
//! `docker load`), written through it; and registries ([`registry`]: push, and the client pulls use).

mod archive;
mod outputs;
pub mod registry;
mod tar;

pub use archive::{ArchiveSummary, write_docker_archive, write_oci_archive};
pub use outputs::{Output, Runtime, load, write_output};
pub use tar::TarPublisher;
