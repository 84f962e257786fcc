//! Go programs: the go command found on PATH, and one `go build` run hermetically: no cgo,
//! no module proxy, no VCS stamping, a private build cache inside kiln's, paths trimmed.

use super::cache::{self, Compiled};
use super::which;
use crate::diag::codes::Code;
use crate::error::ToolchainError;
use crate::plan::facts::{Go, Missing};
use crate::plan::{BuildStep, GoBuild, Step};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Finds the go command, and hashes it.
pub fn probe() -> Result<Go, Missing> {
    let missing = |message: String| Missing {
        code: Code::ToolchainMissingGo,
        message,
        help: "install Go: `apt-get install golang-go` (`scripts/install-deps build` does)".into(),
    };
    let found = which("go")
        .ok_or_else(|| missing("the go command is not installed (kiln builds `go` nodes with it)".into()))?;
    let path = std::fs::canonicalize(&found).unwrap_or(found);
    let version = super::first_line(&path, &["version"]).unwrap_or_default();
    if !version.starts_with("go version go") {
        return Err(missing(format!("`{} version` did not say which Go it is", path.display())));
    }
    let file = std::fs::File::open(&path).map_err(|e| missing(format!("cannot read {}: {e}", path.display())))?;
    let (sha256, _) =
        crate::oci::digest::sha256_reader(file).map_err(|e| missing(format!("cannot read {}: {e}", path.display())))?;
    Ok(Go { path, version, sha256 })
}

/// Where one Go step runs here.
pub struct GoExec<'a> {
    /// The recipe's directory.
    pub root: PathBuf,
    pub go: &'a Path,
    pub cache: PathBuf,
}

impl GoExec<'_> {
    /// The step's module directory here.
    fn module(&self, b: &GoBuild) -> PathBuf {
        match b.module.as_str() {
            "." => self.root.clone(),
            m => self.root.join(m),
        }
    }

    /// The go command with a cleared environment: kiln's caches, no proxy, no cgo.
    fn command(&self, b: &GoBuild, network: bool) -> Command {
        let dir = self.cache.join("go");
        let bin = self.go.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut cmd = if network { Command::new(self.go) } else { b.network.command(self.go) };
        cmd.env_clear()
            .current_dir(self.module(b))
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("HOME", dir.join("home"))
            .env("GOCACHE", dir.join("build"))
            .env("GOMODCACHE", dir.join("mod"))
            .env("GOPATH", dir.join("path"))
            .env("GOENV", "off")
            .env("GOWORK", "off")
            .env("GO111MODULE", "on")
            .env("GOTOOLCHAIN", "local")
            .env("GOTELEMETRY", "off")
            .env("GOFLAGS", format!("-mod={}", b.mod_mode))
            .env("CGO_ENABLED", "0")
            .env("GOOS", "linux")
            .env("GOARCH", &b.goarch)
            .env("TZ", "UTC")
            .env("LC_ALL", "C");
        if let Some(arm) = &b.goarm {
            cmd.env("GOARM", arm);
        }
        if !network {
            cmd.env("GOPROXY", "off").env("GOSUMDB", "off");
        }
        cmd
    }
}

/// Whether a module needs modules from outside: its `go.mod` requires any, and it has no
/// `vendor/` directory.
fn needs_download(b: &GoBuild, root: &Path) -> bool {
    let go_mod = std::fs::read_to_string(root.join(&b.module).join("go.mod")).unwrap_or_default();
    b.mod_mode != "vendor" && go_mod.lines().any(|l| l.trim_start().starts_with("require"))
}

/// `go mod download` into kiln's module cache, for a module that requires others and has
/// no `vendor/`: the one step of a Go build that may use the network.
pub fn fetch(b: &GoBuild, x: &GoExec<'_>) -> Result<(), ToolchainError> {
    if !needs_download(b, &x.root) {
        return Ok(());
    }
    let mut cmd = x.command(b, true);
    cmd.args(["mod", "download"]);
    let out = cmd.output().map_err(ToolchainError::io("run", x.go))?;
    if !out.status.success() {
        return Err(ToolchainError::Fetch {
            tool: "go",
            manifest: x.module(b).join("go.mod"),
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Builds, checks and caches one Go program.
pub fn compile(b: &GoBuild, x: &GoExec<'_>, epoch: u64) -> Result<Compiled, ToolchainError> {
    let step = Step::Go(b);
    let staging = cache::staging(&x.cache, step)?;
    let out = staging.path().join(&b.name);
    let mut cmd = x.command(b, false);
    cmd.env("SOURCE_DATE_EPOCH", epoch.to_string()).args([
        "build",
        "-trimpath",
        "-buildvcs=false",
        "-ldflags",
        &b.ldflags,
    ]);
    if !b.tags.is_empty() {
        cmd.arg("-tags").arg(b.tags.join(","));
    }
    cmd.arg("-o").arg(&out).arg(&b.target);
    let run = cmd.output().map_err(ToolchainError::io("run", x.go))?;
    if !run.status.success() {
        let mut output = String::from_utf8_lossy(&run.stderr).trim().to_string();
        if needs_download(b, &x.root) && (output.contains("GOPROXY=off") || output.contains("go.sum")) {
            output.push_str("\n(the module's dependencies are not in kiln's cache: run `kiln fetch`, or vendor them with `go mod vendor`)");
        }
        return Err(ToolchainError::Compile { tool: "go build", what: b.describe(), output });
    }
    let size = std::fs::metadata(&out).map_err(ToolchainError::io("read", &out))?.len();
    // `-ldflags=-s -w`: the binary is stripped as linked.
    cache::store(&x.cache, step, staging, size, true)
}
