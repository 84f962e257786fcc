//! The toolchain stage: the only part of kiln that spawns processes (compilers, linkers,
//! strip, cargo, zig, go). It gathers the facts planning reads ([`facts::gather`]) and runs the plan's
//! build steps.

pub mod c;
pub mod cache;
pub mod elf;
pub mod facts;
#[cfg(any(test, feature = "fake-toolchain"))]
pub mod fake;
pub mod go;
pub mod inventory;
pub mod rust;
pub mod zig;

use crate::error::ToolchainError;
use crate::plan::{BuildStep, Step};
use cache::Compiled;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs a command and returns its stdout's first line, or None when it cannot run or fails.
pub(crate) fn first_line(program: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).lines().next().map(|l| l.trim().to_string())
}

pub(crate) use crate::host::which;

pub use crate::plan::facts::Isolation;

impl Isolation {
    /// Probes once what this machine allows.
    pub fn probe() -> Isolation {
        let Some(unshare) = which("unshare") else { return Isolation::OfflineOnly };
        let ok =
            |args: &[&str]| Command::new(&unshare).args(args).arg("true").output().is_ok_and(|o| o.status.success());
        if ok(&["--net"]) {
            Isolation::NetworkNamespace
        } else if ok(&["--user", "--map-root-user", "--net"]) {
            Isolation::UserNetworkNamespace
        } else {
            Isolation::OfflineOnly
        }
    }

    /// The command that runs `program` under this isolation.
    pub fn command(self, program: &Path) -> Command {
        match self {
            Isolation::OfflineOnly => Command::new(program),
            other => {
                let mut c = Command::new("unshare");
                if other == Isolation::UserNetworkNamespace {
                    c.args(["--user", "--map-root-user"]);
                }
                c.args(["--net", "--"]).arg(program);
                c
            }
        }
    }
}

/// Runs a plan's build steps. [`Host`] is the real one, the only code that spawns compilers;
/// tests use a fake that writes stand-in binaries.
pub trait Toolchain: Sync {
    /// The step's binary from kiln's cache, when an intact one is there.
    fn cached(&self, step: Step<'_>, cache: &Path) -> Option<Compiled>;
    /// Fetches the step's dependencies: the one part of a build that may use the network.
    fn fetch(&self, step: Step<'_>) -> Result<(), ToolchainError>;
    /// Compiles, strips, checks and caches the step's binary.
    fn compile(&self, step: Step<'_>, cache: &Path, epoch: u64) -> Result<Compiled, ToolchainError>;
    /// What went into the step's binary (crates, Go modules), for SBOMs; a toolchain that
    /// cannot tell says nothing.
    fn linked(&self, _step: Step<'_>, _binary: &Compiled) -> Result<inventory::Linked, ToolchainError> {
        Ok(inventory::Linked::default())
    }
}

/// This machine's toolchains, as the facts gathered before planning found them.
pub struct Host<'f> {
    /// The recipe's directory: the plan's manifests are relative to it.
    pub root: PathBuf,
    pub facts: &'f facts::Facts,
}

impl Host<'_> {
    fn missing(step: Step<'_>, m: crate::plan::facts::Missing) -> ToolchainError {
        ToolchainError::Missing { what: step.describe(), message: m.message, help: m.help }
    }

    fn exec(&self, step: &crate::plan::RustBuild) -> Result<rust::Exec, ToolchainError> {
        rust::Exec::new(step, &self.root, self.facts).map_err(|m| Host::missing(Step::Rust(step), m))
    }

    fn go_exec(&self, b: &crate::plan::GoBuild, cache: &Path) -> Result<go::GoExec<'_>, ToolchainError> {
        let go = self.facts.go().map_err(|m| Host::missing(Step::Go(b), m))?;
        let cache = std::path::absolute(cache).map_err(ToolchainError::io("resolve", cache))?;
        Ok(go::GoExec { root: self.root.clone(), go: &go.path, cache })
    }
}

impl Toolchain for Host<'_> {
    fn cached(&self, step: Step<'_>, dir: &Path) -> Option<Compiled> {
        cache::cached(dir, step)
    }

    fn fetch(&self, step: Step<'_>) -> Result<(), ToolchainError> {
        match step {
            Step::Rust(b) => rust::fetch(&self.exec(b)?),
            Step::C(_) => Ok(()),
            // A build never fetches Go modules: `kiln fetch` does, into kiln's cache
            // ([`Host::fetch_go`]), and the build runs with GOPROXY=off.
            Step::Go(_) => Ok(()),
        }
    }

    fn compile(&self, step: Step<'_>, cache: &Path, epoch: u64) -> Result<Compiled, ToolchainError> {
        match step {
            Step::Rust(b) => rust::compile(b, &self.exec(b)?, cache, epoch),
            Step::C(b) => {
                let zig = self.facts.zig().map_err(|m| Host::missing(step, m))?;
                let root = std::fs::canonicalize(&self.root).map_err(ToolchainError::io("resolve", &self.root))?;
                let cache = std::path::absolute(cache).map_err(ToolchainError::io("resolve", cache))?;
                c::compile(b, &c::CExec { root, zig: &zig.path, cache }, epoch)
            }
            Step::Go(b) => go::compile(b, &self.go_exec(b, cache)?, epoch),
        }
    }

    fn linked(&self, step: Step<'_>, binary: &Compiled) -> Result<inventory::Linked, ToolchainError> {
        Ok(match step {
            Step::Rust(b) => {
                inventory::Linked { crates: inventory::rust_crates(b, &self.root, self.facts)?, go: Vec::new() }
            }
            Step::Go(_) => {
                inventory::Linked { crates: Vec::new(), go: inventory::go_modules(&binary.path, self.facts)? }
            }
            Step::C(_) => inventory::Linked::default(),
        })
    }
}

impl Host<'_> {
    /// `go mod download` of a Go step's module into kiln's cache (`kiln fetch`).
    pub fn fetch_go(&self, b: &crate::plan::GoBuild, cache: &Path) -> Result<(), ToolchainError> {
        go::fetch(b, &self.go_exec(b, cache)?)
    }
}
