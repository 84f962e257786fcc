//! Rust binaries: cargo_metadata finds the package and binary, each platform gets a target
//! triple, linker and strip program, the inputs are hashed, and the compile runs offline with a
//! cleared environment, remapped paths and (where the machine allows) no network at all.

use crate::codes::Code;
mod compile;

pub use compile::{Compiled, Exec, cached, compile, fetch};

use super::{Isolation, first_line, which};
use crate::platform::Platform;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Facts about the installed Rust toolchain, probed once per run.
#[derive(Debug, Clone)]
pub struct Probe {
    pub rustc: PathBuf,
    pub cargo: PathBuf,
    pub sysroot: PathBuf,
    pub host: String,
    /// `rustc 1.95.0 (59807616e 2026-04-14), LLVM 22.1.2`
    pub rustc_version: String,
    pub cargo_version: String,
    pub rust_lld: Option<PathBuf>,
    pub lld_version: String,
    /// Targets whose standard library is installed.
    pub targets: BTreeSet<String>,
    pub cargo_home: PathBuf,
    pub isolation: Isolation,
}

/// A missing piece, with the command that installs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Missing {
    pub code: Code,
    pub message: String,
    pub help: String,
}

impl Probe {
    /// Probes the toolchain that rustup picks in `dir` (so `rust-toolchain.toml` applies).
    pub fn detect(dir: &Path) -> Result<Probe, Missing> {
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
        let vv = Command::new(&rustc).arg("-vV").output().map_err(|_| no_rust())?;
        let vv = String::from_utf8_lossy(&vv.stdout).into_owned();
        let field =
            |k: &str| vv.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_string()).unwrap_or_default();
        let host = field("host:");
        let rustc_version = format!("{}, LLVM {}", vv.lines().next().unwrap_or_default(), field("LLVM version:"));
        let cargo_version = first_line(&cargo, &["-V"]).unwrap_or_default();
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
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
            .unwrap_or_else(|| PathBuf::from("/root/.cargo"));
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
            isolation: Isolation::probe(),
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

/// How one triple is compiled, linked and stripped on this machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub triple: String,
    pub linker: PathBuf,
    /// `rust-lld (LLD 22.1.2)` or the gcc's version line.
    pub linker_desc: String,
    pub strip: PathBuf,
    pub strip_desc: String,
    /// rustflags for linking, with `${linker}` for the linker's path.
    pub link_flags: Vec<String>,
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

/// A cargo package found by cargo_metadata.
#[derive(Debug, Clone)]
pub struct Package {
    pub workspace_root: PathBuf,
    pub target_directory: PathBuf,
    pub bins: Vec<String>,
    pub default_run: Option<String>,
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

/// Hashes every file of a workspace that can reach a build: sorted relative paths, the
/// executable bit and contents. Hidden entries, cargo's target directory, kiln's caches and
/// OCI layouts (a build's own output) are left out.
pub fn hash_sources(workspace: &Path, skip: &[PathBuf]) -> std::io::Result<(usize, String)> {
    use std::os::unix::fs::PermissionsExt;
    let mut h = Sha256::new();
    let mut files = 0;
    let walk = walkdir::WalkDir::new(workspace).sort_by_file_name().follow_links(false).into_iter().filter_entry(|e| {
        if e.depth() == 0 {
            return true;
        }
        let hidden = e.file_name().to_string_lossy().starts_with('.');
        let skipped = skip.iter().any(|s| e.path() == s);
        let layout = e.file_type().is_dir() && e.path().join("oci-layout").is_file();
        !(hidden || skipped || layout)
    });
    // Names are hashed as their bytes: two names that differ only in bytes that are not UTF-8
    // must not hash alike.
    use std::os::unix::ffi::OsStrExt;
    for e in walk {
        let e = e.map_err(std::io::Error::other)?;
        let rel = e.path().strip_prefix(workspace).unwrap_or(e.path()).as_os_str().as_bytes();
        if e.file_type().is_file() {
            let exec = e.metadata().map_err(std::io::Error::other)?.permissions().mode() & 0o111 != 0;
            let (sha, _) = crate::digest::sha256_reader(std::fs::File::open(e.path())?)?;
            h.update(b"f ");
            h.update(rel);
            h.update(format!(" {} {sha}\n", if exec { 'x' } else { '-' }));
            files += 1;
        } else if e.file_type().is_symlink() {
            let target = std::fs::read_link(e.path())?;
            h.update(b"l ");
            h.update(rel);
            h.update(b" ");
            h.update(target.as_os_str().as_bytes());
            h.update(b"\n");
            files += 1;
        }
    }
    Ok((files, crate::digest::hex(&h.finalize())))
}
