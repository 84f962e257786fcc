//! The inputs a recipe names from outside its directory, fetched in an explicit step before
//! planning and pinned by digest: the Debian packages of the distroless bases, and base images from registries.

pub mod debian;
pub mod registry;
