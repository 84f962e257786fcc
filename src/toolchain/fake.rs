//! A stand-in toolchain for fast tests of resolve → layer → image → update: facts that name
//! no real program, and "binaries" that are a few deterministic bytes per build step. Nothing
//! here spawns a process. Built for kiln's tests and, with the `fake-toolchain` feature, for
//! the planner's fuzz target.

use super::facts::Facts;
use super::rust::{Compiled, Package, Probe, Target};
use super::{Isolation, Toolchain};
use crate::error::ToolchainError;
use crate::oci::platform::Platform;
use crate::plan::{BuildStep, Step};
use std::path::{Path, PathBuf};

/// Facts for a cargo workspace at `root` whose manifest `Cargo.toml` has `package` with the
/// binaries `bins`, and every platform's default target.
pub fn facts(root: &Path, package: &str, bins: &[&str]) -> Facts {
    let probe = Probe {
        rustc: "/fake/bin/rustc".into(),
        cargo: "/fake/bin/cargo".into(),
        sysroot: "/fake".into(),
        host: "x86_64-unknown-linux-gnu".into(),
        rustc_version: "rustc 0.0.0 (fake), LLVM 0".into(),
        cargo_version: "cargo 0.0.0 (fake)".into(),
        rust_lld: Some("/fake/bin/rust-lld".into()),
        lld_version: "LLD 0".into(),
        targets: Platform::ALL.iter().map(|p| triple(*p).to_string()).collect(),
        cargo_home: "/fake/cargo".into(),
        isolation: Isolation::OfflineOnly,
    };
    let package_facts = Package {
        workspace_root: root.to_path_buf(),
        target_directory: root.join("target"),
        bins: bins.iter().map(|b| b.to_string()).collect(),
        default_run: None,
    };
    let mut facts = Facts::default();
    facts.packages.insert((root.join("Cargo.toml"), package.to_string()), Ok(package_facts));
    for p in Platform::ALL {
        let target = Target {
            triple: triple(p).into(),
            linker: "/fake/bin/rust-lld".into(),
            linker_desc: "rust-lld (fake)".into(),
            strip: "/fake/bin/strip".into(),
            strip_desc: "strip (fake)".into(),
            link_flags: vec!["-C".into(), "linker=${linker}".into()],
        };
        facts.targets.insert((p, None), Ok(target.clone()));
        facts.targets.insert((p, Some(target.triple.clone())), Ok(target));
    }
    facts.probe = Some(Ok(probe));
    facts.isolation = Some(Isolation::OfflineOnly);
    facts
}

fn triple(p: Platform) -> &'static str {
    match p {
        Platform::LinuxAmd64 => "x86_64-unknown-linux-musl",
        Platform::LinuxArm64 => "aarch64-unknown-linux-musl",
        Platform::LinuxArmV7 => "armv7-unknown-linux-gnueabihf",
    }
}

/// Writes `stand-in <package> <bin> <triple> <id>` as each step's binary, under `dir`.
pub(crate) struct Fake {
    pub dir: PathBuf,
}

impl Fake {
    /// The bytes the fake writes for `step`.
    pub fn bytes(step: Step<'_>) -> Vec<u8> {
        let (package, target) = match step {
            Step::Rust(b) => (b.package.as_str(), b.triple.clone()),
            Step::C(b) => (b.name.as_str(), b.target.clone()),
            Step::Go(b) => (b.package.as_str(), b.goarch.clone()),
        };
        format!("stand-in {package} {} {target} {}\n", step.bin(), step.id()).into_bytes()
    }
}

impl Toolchain for Fake {
    fn cached(&self, _: Step<'_>, _: &Path) -> Option<Compiled> {
        None
    }

    fn fetch(&self, _: Step<'_>) -> Result<(), ToolchainError> {
        Ok(())
    }

    fn compile(&self, step: Step<'_>, _: &Path, _: u64) -> Result<Compiled, ToolchainError> {
        let data = Fake::bytes(step);
        let path = self.dir.join(step.id());
        std::fs::create_dir_all(&self.dir).map_err(ToolchainError::io("create", &self.dir))?;
        std::fs::write(&path, &data).map_err(ToolchainError::io("write", &path))?;
        let size = data.len() as u64;
        Ok(Compiled { path, sha256: crate::oci::digest::sha256_hex(&data), size, unstripped: size, cached: false })
    }
}
