//! Facts about this machine's toolchains as plain values: what [`crate::toolchain::facts::gather`]
//! found before planning (the Rust toolchain's probe, `cargo metadata` of each package, each
//! target's linker and strip program) or what is missing. Planning reads them and spawns
//! nothing; the toolchain stage makes them and reads the host paths it needs from them.

use crate::diag::codes::Code;
use crate::oci::platform::Platform;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One `rust` build that planning or building will ask about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RustNeed {
    /// The cargo manifest, joined to the recipe's directory.
    pub manifest: PathBuf,
    pub package: String,
    pub platform: Platform,
    /// The recipe's `target` for this platform, if it names one.
    pub triple: Option<String>,
}

/// Everything planning will ask of this machine's toolchains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    pub rust: Vec<RustNeed>,
    /// A `c` node wants zig.
    pub zig: bool,
    /// A `go` node wants the go command.
    pub go: bool,
}

/// What was found, or what is missing, for each need.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The Rust toolchain that rustup picks in the recipe's directory; probed only when a
    /// need asks for it.
    pub probe: Option<Result<Probe, Missing>>,
    /// `cargo metadata` by (manifest, package).
    pub packages: BTreeMap<(PathBuf, String), Result<Package, Missing>>,
    /// Linker and strip program by (platform, the recipe's triple).
    pub targets: BTreeMap<(Platform, Option<String>), Result<Target, Missing>>,
    /// zig, the C compiler for the musl targets; looked for only when a package's
    /// `Cargo.lock` has the `cc` crate.
    pub zig: Option<Result<Zig, Missing>>,
    /// How compiles are cut off from the network here (probed with the Rust toolchain, or for
    /// zig and go on their own).
    pub isolation: Option<Isolation>,
    /// The go command; looked for only when a recipe has a `go` node.
    pub go: Option<Result<Go, Missing>>,
}

/// The go command as found on this machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Go {
    /// The executable itself (links resolved): it finds its GOROOT beside it.
    pub path: PathBuf,
    /// `go version go1.19.8 linux/amd64`.
    pub version: String,
    /// The executable's sha256.
    pub sha256: String,
}

/// The zig release kiln compiles C with for the musl targets: another zig is another
/// toolchain, so kiln takes only this one.
pub const ZIG_VERSION: &str = "0.17.0";

/// Whether a cargo workspace compiles C: its `Cargo.lock` has the `cc` crate, which build
/// scripts use to run a C compiler.
pub fn builds_c(workspace_root: &Path) -> bool {
    std::fs::read_to_string(workspace_root.join("Cargo.lock"))
        .is_ok_and(|lock| lock.lines().any(|l| l.trim() == "name = \"cc\""))
}

/// zig's name for a Rust musl triple: `x86_64-unknown-linux-musl` -> `x86_64-linux-musl`,
/// `armv7-unknown-linux-musleabihf` -> `arm-linux-musleabihf`.
pub fn zig_target(triple: &str) -> String {
    let mut parts = triple.split('-');
    let arch = match parts.next().unwrap_or_default() {
        a if a.starts_with("armv7") || a.starts_with("thumbv7") => "arm",
        a => a,
    };
    let abi = parts.next_back().unwrap_or("musl");
    format!("{arch}-linux-{abi}")
}

/// zig's target for a `c` node's program on a platform: musl, static, on all three.
pub fn c_zig_target(p: Platform) -> &'static str {
    match p {
        Platform::LinuxAmd64 => "x86_64-linux-musl",
        Platform::LinuxArm64 => "aarch64-linux-musl",
        Platform::LinuxArmV7 => "arm-linux-musleabihf",
    }
}

/// zig as found on this machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Zig {
    /// The executable itself (links resolved): zig finds its `lib/` beside it.
    pub path: PathBuf,
    /// `zig version`.
    pub version: String,
    /// The executable's sha256, recorded in the plan with the version.
    pub sha256: String,
}

impl Facts {
    /// zig, or what stands for its absence.
    pub fn zig(&self) -> Result<&Zig, Missing> {
        match &self.zig {
            Some(Ok(z)) => Ok(z),
            Some(Err(m)) => Err(m.clone()),
            None => Err(not_gathered("zig")),
        }
    }

    /// The go command, or what stands for its absence.
    pub fn go(&self) -> Result<&Go, Missing> {
        match &self.go {
            Some(Ok(g)) => Ok(g),
            Some(Err(m)) => Err(m.clone()),
            None => Err(not_gathered("the go command")),
        }
    }

    /// The probe, or what stands for its absence when no need asked for it.
    pub fn probe(&self) -> Result<&Probe, Missing> {
        match &self.probe {
            Some(Ok(p)) => Ok(p),
            Some(Err(m)) => Err(m.clone()),
            None => Err(not_gathered("the Rust toolchain")),
        }
    }

    pub fn package(&self, manifest: &Path, package: &str) -> Result<&Package, Missing> {
        match self.packages.get(&(manifest.to_path_buf(), package.to_string())) {
            Some(Ok(p)) => Ok(p),
            Some(Err(m)) => Err(m.clone()),
            None => Err(not_gathered(&format!("package `{package}` of {}", manifest.display()))),
        }
    }

    pub fn target(&self, platform: Platform, triple: Option<&str>) -> Result<&Target, Missing> {
        match self.targets.get(&(platform, triple.map(str::to_string))) {
            Some(Ok(t)) => Ok(t),
            Some(Err(m)) => Err(m.clone()),
            None => Err(not_gathered(&format!("the {platform} target"))),
        }
    }
}

/// A fact planning asked for that the gathering step did not collect: a fault of kiln's, said
/// as a problem rather than a panic.
fn not_gathered(what: &str) -> Missing {
    Missing {
        code: Code::ToolchainNotGathered,
        message: format!("kiln did not look up {what} before planning"),
        help: "this is a fault in kiln; please report it with the recipe".into(),
    }
}

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

/// A cargo package found by cargo_metadata.
#[derive(Debug, Clone)]
pub struct Package {
    pub workspace_root: PathBuf,
    pub target_directory: PathBuf,
    pub bins: Vec<String>,
    pub default_run: Option<String>,
}

/// How a compile is cut off from the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// A private network namespace (`unshare --net`): no network at all.
    NetworkNamespace,
    /// A private user and network namespace (`unshare --user --map-root-user --net`).
    UserNetworkNamespace,
    /// Namespaces are not available here: cargo runs with `--offline` only.
    OfflineOnly,
}

/// Hashes every file of a workspace that can reach a build: sorted relative paths, the
/// executable bit and contents. Hidden entries, cargo's target directory, kiln's caches and
/// OCI layouts (a build's own output) are left out.
pub fn hash_sources(
    workspace: &Path,
    skip: &[PathBuf],
    fp: &crate::store::fingerprint::Fingerprints,
) -> std::io::Result<(usize, String)> {
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
            let (sha, _) = fp.sha256(e.path())?;
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
    Ok((files, crate::oci::digest::hex(&h.finalize())))
}
