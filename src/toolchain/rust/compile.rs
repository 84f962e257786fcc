//! Running one Rust build step: its host paths from the gathered facts, `cargo fetch`, the
//! hermetic `cargo build`, strip, the binary's checks, and kiln's cache of compiled binaries.

use super::Missing;
use crate::error::ToolchainError;
use crate::plan::RustBuild;
use crate::toolchain::cache::{self, Compiled};
use std::path::{Path, PathBuf};
use std::process::Command;

/// This machine's paths for running a [`RustBuild`], from the gathered facts: the plan holds
/// none of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Exec {
    pub workspace: PathBuf,
    pub manifest: PathBuf,
    pub cargo: PathBuf,
    pub rustc: PathBuf,
    pub sysroot: PathBuf,
    pub cargo_home: PathBuf,
    pub linker: PathBuf,
    pub strip: PathBuf,
    /// zig, when the step compiles C for a musl target.
    pub zig: Option<PathBuf>,
}

impl Exec {
    /// Where `b` runs here: its manifest joined to the recipe's directory `root`, the
    /// toolchain, linker and strip program the facts found for its platform and triple.
    pub fn new(b: &RustBuild, root: &Path, facts: &crate::toolchain::facts::Facts) -> Result<Exec, Missing> {
        let manifest = root.join(&b.manifest);
        let probe = facts.probe()?;
        let pkg = facts.package(&manifest, &b.package)?;
        let target = facts.target(b.platform, Some(&b.triple)).or_else(|_| facts.target(b.platform, None))?;
        let zig = match b.c_compiler.is_some() && b.triple.contains("-musl") {
            true => Some(facts.zig()?.path.clone()),
            false => None,
        };
        Ok(Exec {
            workspace: pkg.workspace_root.clone(),
            manifest: std::fs::canonicalize(&manifest).unwrap_or(manifest),
            cargo: probe.cargo.clone(),
            rustc: probe.rustc.clone(),
            sysroot: probe.sysroot.clone(),
            cargo_home: probe.cargo_home.clone(),
            linker: target.linker.clone(),
            strip: target.strip.clone(),
            zig,
        })
    }
}

/// `${name}` placeholders of the plan's rustflags, filled with this machine's paths.
fn fill(flag: &str, x: &Exec, target_dir: &Path) -> String {
    flag.replace("${workspace}", &x.workspace.to_string_lossy())
        .replace("${cargo_home}", &x.cargo_home.to_string_lossy())
        .replace("${sysroot}", &x.sysroot.to_string_lossy())
        .replace("${target_dir}", &target_dir.to_string_lossy())
        .replace("${linker}", &x.linker.to_string_lossy())
}

/// `cargo fetch --locked` for a workspace, for every target at once: the one step that may
/// use the network.
pub fn fetch(x: &Exec) -> Result<(), ToolchainError> {
    let out = Command::new(&x.cargo)
        .args(["fetch", "--locked", "--manifest-path"])
        .arg(&x.manifest)
        .env("CARGO_HOME", &x.cargo_home)
        .env("RUSTC", &x.rustc)
        .output()
        .map_err(ToolchainError::io("run", &x.cargo))?;
    if !out.status.success() {
        return Err(ToolchainError::Fetch {
            tool: "cargo",
            manifest: x.manifest.clone(),
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// The C compiler of a step that compiles C, for cc-rs: `CC_<triple>`, `AR_<triple>` and
/// `CFLAGS_<triple>` with the workspace and cargo's home mapped to fixed paths, so objects do
/// not depend on where the project is. zig keeps its caches in kiln's.
fn c_env(cmd: &mut Command, b: &RustBuild, x: &Exec, cache: &Path) -> Result<(), ToolchainError> {
    if b.c_compiler.is_none() {
        return Ok(());
    }
    let (cc, ar) = match &x.zig {
        Some(zig) => {
            let dir = cache.join("zig/wrappers");
            let target = crate::plan::facts::zig_target(&b.triple);
            let zig_cache = cache.join("zig/cache");
            cmd.env("ZIG_GLOBAL_CACHE_DIR", &zig_cache).env("ZIG_LOCAL_CACHE_DIR", &zig_cache);
            super::super::zig::wrappers(zig, &target, &dir).map_err(ToolchainError::io("write a C wrapper in", &dir))?
        }
        // glibc targets: the gcc that links them, and its binutils' ar.
        None => {
            let ar = x.linker.to_string_lossy().strip_suffix("gcc").map(|p| PathBuf::from(format!("{p}ar")));
            (x.linker.clone(), ar.unwrap_or_else(|| PathBuf::from("ar")))
        }
    };
    let var = b.triple.replace('-', "_");
    let flags = format!(
        "-ffile-prefix-map={}=/kiln/src -ffile-prefix-map={}=/kiln/cargo",
        x.workspace.display(),
        x.cargo_home.display()
    );
    cmd.env(format!("CC_{var}"), cc).env(format!("AR_{var}"), ar).env(format!("CFLAGS_{var}"), flags);
    Ok(())
}

/// Compiles, strips, checks and caches one binary.
pub fn compile(b: &RustBuild, x: &Exec, cache: &Path, epoch: u64) -> Result<Compiled, ToolchainError> {
    // cargo runs in the workspace: every path it gets must be absolute.
    let cache = &std::path::absolute(cache).map_err(ToolchainError::io("resolve", cache))?;
    let target_dir = cache.join("rust/target");
    std::fs::create_dir_all(&target_dir).map_err(ToolchainError::io("create", &target_dir))?;
    let flags: Vec<String> = b.rustflags.iter().map(|f| fill(f, x, &target_dir)).collect();
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", x.sysroot.join("bin").display());
    let mut cmd = b.network.command(&x.cargo);
    cmd.env_clear()
        .current_dir(&x.workspace)
        .env("PATH", path)
        .env("CARGO_HOME", &x.cargo_home)
        .env("RUSTC", &x.rustc)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\u{1f}"))
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .env("CARGO_INCREMENTAL", "0")
        .env("CARGO_NET_OFFLINE", "true")
        .env("CARGO_TERM_COLOR", "never")
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .args(["build", "--locked", "--offline", "--manifest-path"])
        .arg(&x.manifest)
        .args(["--package", &b.package, "--bin", &b.bin, "--target", &b.triple, "--profile", &b.profile]);
    if !b.features.is_empty() {
        cmd.args(["--features", &b.features.join(",")]);
    }
    if b.no_default_features {
        cmd.arg("--no-default-features");
    }
    c_env(&mut cmd, b, x, cache)?;
    let out = cmd.output().map_err(ToolchainError::io("run", &x.cargo))?;
    let what = format!("{} (bin {}) for {} ({})", b.package, b.bin, b.platform, b.triple);
    if !out.status.success() {
        return Err(ToolchainError::Compile {
            tool: "cargo",
            what,
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let profile_dir = match b.profile.as_str() {
        "dev" | "test" => "debug",
        "bench" => "release",
        p => p,
    };
    let linked = target_dir.join(&b.triple).join(profile_dir).join(&b.bin);
    let unstripped = std::fs::metadata(&linked).map_err(ToolchainError::io("read", &linked))?.len();

    // Strip into a staging directory beside the cache entry, check, then rename into place.
    let step = crate::plan::Step::Rust(b);
    let staging = cache::staging(cache, step)?;
    let stripped = staging.path().join(&b.bin);
    let s = Command::new(&x.strip)
        .arg("--strip-all")
        .arg("-o")
        .arg(&stripped)
        .arg(&linked)
        .output()
        .map_err(ToolchainError::io("run", &x.strip))?;
    if !s.status.success() {
        return Err(ToolchainError::Compile {
            tool: "strip",
            what,
            output: String::from_utf8_lossy(&s.stderr).trim().to_string(),
        });
    }
    cache::store(cache, step, staging, unstripped, b.require_static)
}
