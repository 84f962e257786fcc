//! The inputs a recipe names from outside its directory, fetched in an explicit step before
//! planning and pinned by digest: today the Debian packages of the distroless bases.

pub mod debian;
