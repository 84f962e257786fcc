//! Debian packages as pinned inputs for distroless bases.
//!
//! `kiln lock` resolves the packages each base needs from a mirror's signed Release file and
//! its Packages indexes and pins them (version, URL, size, sha256) in `kiln.lock`. Builds use
//! only what the lock pins: `.deb`s are fetched once into a content-addressed cache, verified
//! every time they are used, and unpacked by kiln itself (no dpkg, no maintainer scripts).

pub mod deb;
pub mod index;
pub mod lock;
pub mod store;

use crate::oci::platform::Platform;

pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
pub const DEFAULT_SUITE: &str = "bookworm";
pub const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Debian's name for a platform's architecture.
pub fn debian_arch(p: Platform) -> &'static str {
    match p {
        Platform::LinuxAmd64 => "amd64",
        Platform::LinuxArm64 => "arm64",
        Platform::LinuxArmV7 => "armhf",
    }
}

/// The distroless flavours kiln builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Flavour {
    Static,
    Base,
    Cc { libstdcxx: bool },
}

impl Flavour {
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Static => "distroless/static",
            Flavour::Base => "distroless/base",
            Flavour::Cc { .. } => "distroless/cc",
        }
    }

    /// Packages whose files are the same on every architecture.
    pub const COMMON: [&'static str; 4] = ["ca-certificates", "media-types", "netbase", "tzdata"];

    /// Architecture-specific packages, in the order their layers are stacked.
    pub fn arch_packages(self) -> Vec<&'static str> {
        match self {
            Flavour::Static => vec![],
            Flavour::Base => vec!["libc6", "libssl3"],
            Flavour::Cc { libstdcxx: false } => vec!["libc6", "libssl3", "libgcc-s1"],
            Flavour::Cc { libstdcxx: true } => vec!["libc6", "libssl3", "libgcc-s1", "libstdc++6"],
        }
    }

    pub fn packages(self) -> Vec<&'static str> {
        let mut all: Vec<&str> = Self::COMMON.to_vec();
        all.extend(self.arch_packages());
        all
    }
}
