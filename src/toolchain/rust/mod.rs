//! Rust binaries: cargo_metadata finds the package and binary, each platform gets a target
//! triple, linker and strip program, the inputs are hashed, and the compile runs offline with a
//! cleared environment, remapped paths and (where the machine allows) no network at all.

use crate::diag::codes::Code;
mod compile;

pub use crate::toolchain::cache::Compiled;
pub use compile::{Exec, compile, fetch};

use super::{Isolation, first_line, which};
use crate::oci::platform::Platform;
pub use crate::plan::facts::{Missing, Package, Probe, Target};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

impl Probe {
    /// Probes the toolchain that rustup picks in `dir` (so `rust-toolchain.toml` applies);
    /// `cargo_home` is the cargo home the caller read from the environment.
    pub fn detect(dir: &Path, cargo_home: &Path) -> Result<Probe, Missing> {
        let no_rust = || Missing {
            code: Code::ToolchainRustc,
            message: "no Rust toolchain found (`rustc` is not on PATH)".into(),
            help: "install Rust with rustup: https://rustup.rs".into(),
        };
        let rustc_proxy = which("rustc").ok_or_else(no_rust)?;
        let out =
            Command::new(&rustc_proxy).current_dir(dir).args(["--print", "sysroot"]).output().map_err(|_| no_rust())?;
        if !out.status.success() {
            return Err(Missing {
                message: format!("`rustc --print sysroot` failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
                ..no_rust()
            });
        }
        let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let rustc = sysroot.join("bin/rustc");
        let cargo = sysroot.join("bin/cargo");
        // The probes that need only the sysroot run side by side: each is a process start.
        let (vv, cargo_version, isolation) = std::thread::scope(|s| {
            let cargo_v = s.spawn(|| first_line(&cargo, &["-V"]).unwrap_or_default());
            let isolation = s.spawn(Isolation::probe);
            let vv = Command::new(&rustc).arg("-vV").output();
            let cargo_v = cargo_v.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            (vv, cargo_v, isolation.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        });
        let vv = String::from_utf8_lossy(&vv.map_err(|_| no_rust())?.stdout).into_owned();
        let field =
            |k: &str| vv.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_string()).unwrap_or_default();
        let host = field("host:");
        let rustc_version = format!("{}, LLVM {}", vv.lines().next().unwrap_or_default(), field("LLVM version:"));
        let lld = sysroot.join("lib/rustlib").join(&host).join("bin/rust-lld");
        let rust_lld = lld.is_file().then_some(lld);
        let lld_version = rust_lld
            .as_ref()
            .and_then(|l| first_line(l, &["-flavor", "gnu", "--version"]))
            .map(|v| v.split(" (").next().unwrap_or_default().to_string())
            .unwrap_or_default();
        let mut targets = BTreeSet::new();
        if let Ok(rd) = std::fs::read_dir(sysroot.join("lib/rustlib")) {
            for e in rd.filter_map(Result::ok) {
                let lib = e.path().join("lib");
                let has_std = std::fs::read_dir(&lib)
                    .map(|d| d.filter_map(Result::ok).any(|f| f.file_name().to_string_lossy().starts_with("libstd-")))
                    .unwrap_or(false);
                if has_std {
                    targets.insert(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
        let cargo_home = cargo_home.to_path_buf();
        Ok(Probe {
            rustc,
            cargo,
            sysroot,
            host,
            rustc_version,
            cargo_version,
            rust_lld,
            lld_version,
            targets,
            cargo_home,
            isolation,
        })
    }
}

/// The triple kiln uses for a platform when the recipe does not say.
pub fn default_triple(p: Platform, probe: &Probe) -> &'static str {
    match p {
        Platform::LinuxAmd64 => "x86_64-unknown-linux-musl",
        Platform::LinuxArm64 => "aarch64-unknown-linux-musl",
        Platform::LinuxArmV7 if probe.targets.contains("armv7-unknown-linux-musleabihf") => {
            "armv7-unknown-linux-musleabihf"
        }
        Platform::LinuxArmV7 => "armv7-unknown-linux-gnueabihf",
    }
}

/// binutils' strip for an architecture: per-arch binutils strip works on every ELF kiln makes,
/// static glibc binaries included.
fn strip_for(triple: &str) -> (&'static str, &'static str) {
    if triple.starts_with("x86_64") {
        ("x86_64-linux-gnu-strip", "binutils-x86-64-linux-gnu")
    } else if triple.starts_with("aarch64") {
        ("aarch64-linux-gnu-strip", "binutils-aarch64-linux-gnu")
    } else {
        ("arm-linux-gnueabihf-strip", "binutils-arm-linux-gnueabihf")
    }
}

fn gcc_for(triple: &str) -> Option<(&'static str, &'static str)> {
    match triple {
        "x86_64-unknown-linux-gnu" => Some(("x86_64-linux-gnu-gcc", "gcc-x86-64-linux-gnu libc6-dev")),
        "aarch64-unknown-linux-gnu" => Some(("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu libc6-dev-arm64-cross")),
        "armv7-unknown-linux-gnueabihf" => {
            Some(("arm-linux-gnueabihf-gcc", "gcc-arm-linux-gnueabihf libc6-dev-armhf-cross"))
        }
        _ => None,
    }
}

/// Chooses and checks the triple, linker and strip program for `platform`.
pub fn target(platform: Platform, triple: Option<&str>, probe: &Probe) -> Result<Target, Missing> {
    let defaulted = triple.is_none();
    let triple = triple.unwrap_or_else(|| default_triple(platform, probe)).to_string();
    let arch_ok = match platform {
        Platform::LinuxAmd64 => triple.starts_with("x86_64-"),
        Platform::LinuxArm64 => triple.starts_with("aarch64-"),
        Platform::LinuxArmV7 => triple.starts_with("armv7-") || triple.starts_with("thumbv7neon-"),
    } && triple.contains("-linux-");
    if !arch_ok {
        return Err(Missing {
            code: Code::ToolchainTriple,
            message: format!("target `{triple}` does not build for {platform}"),
            help: format!("{platform} takes a triple such as {}", default_triple(platform, probe)),
        });
    }
    if !probe.targets.contains(&triple) {
        let help = if defaulted && platform == Platform::LinuxArmV7 {
            format!(
                "run `rustup target add {triple}` (or `rustup target add armv7-unknown-linux-musleabihf` where your toolchain has it)"
            )
        } else {
            format!("run `rustup target add {triple}`")
        };
        return Err(Missing {
            code: Code::ToolchainMissingTarget,
            message: format!("the Rust standard library for `{triple}` is not installed"),
            help,
        });
    }
    let (strip_name, strip_pkg) = strip_for(&triple);
    let strip = which(strip_name).ok_or_else(|| Missing {
        code: Code::ToolchainMissingStrip,
        message: format!("`{strip_name}` is not installed (kiln strips {platform} binaries with it)"),
        help: format!("run `apt-get install {strip_pkg}`"),
    })?;
    let strip_desc = format!("{strip_name} ({})", first_line(&strip, &["--version"]).unwrap_or_default());
    let mut link_flags = vec!["-C".to_string(), "linker=${linker}".to_string()];
    let (linker, linker_desc) = if triple.contains("-musl") {
        let lld = probe.rust_lld.clone().ok_or_else(|| Missing {
            code: Code::ToolchainMissingLinker,
            message: "rust-lld is missing from the Rust toolchain".into(),
            help: "reinstall the toolchain: `rustup toolchain install stable --force`".into(),
        })?;
        link_flags.extend(["-C".into(), "linker-flavor=ld.lld".into()]);
        (lld, format!("rust-lld ({})", probe.lld_version))
    } else {
        let Some((gcc, pkg)) = gcc_for(&triple) else {
            return Err(Missing {
                code: Code::ToolchainMissingLinker,
                message: format!("kiln does not know a linker for `{triple}`"),
                help: "use a musl triple, or x86_64/aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf".into(),
            });
        };
        let path = which(gcc).ok_or_else(|| Missing {
            code: Code::ToolchainMissingLinker,
            message: format!("the linker `{gcc}` for `{triple}` is not installed"),
            help: format!("run `apt-get install {pkg}`"),
        })?;
        let desc = first_line(&path, &["--version"]).unwrap_or_else(|| gcc.to_string());
        (path, desc)
    };
    link_flags.extend(["-C".into(), "target-feature=+crt-static".into()]);
    Ok(Target { triple, linker, linker_desc, strip, strip_desc, link_flags })
}

/// Finds `package` in the workspace of `manifest` (no dependencies are resolved or fetched).
pub fn find_package(probe: &Probe, manifest: &Path, package: &str) -> Result<Package, Missing> {
    let meta = cargo_metadata::MetadataCommand::new()
        .cargo_path(&probe.cargo)
        .manifest_path(manifest)
        .no_deps()
        .env("CARGO_HOME", &probe.cargo_home)
        .exec()
        .map_err(|e| Missing {
            code: Code::PlanCargoMetadata,
            message: format!("cargo metadata failed for {}: {}", manifest.display(), e.to_string().trim()),
            help: "check that the manifest is a valid Cargo.toml".into(),
        })?;
    let Some(p) = meta.packages.iter().find(|p| p.name.as_str() == package) else {
        let names: Vec<&str> = meta.packages.iter().map(|p| p.name.as_str()).collect();
        return Err(Missing {
            code: Code::PlanUnknownPackage,
            message: format!("no package `{package}` in the workspace of {}", manifest.display()),
            help: format!("packages there: {}", names.join(", ")),
        });
    };
    let bins = p.targets.iter().filter(|t| t.is_bin()).map(|t| t.name.clone()).collect();
    Ok(Package {
        workspace_root: meta.workspace_root.clone().into_std_path_buf(),
        target_directory: meta.target_directory.clone().into_std_path_buf(),
        bins,
        default_run: p.default_run.clone(),
    })
}
