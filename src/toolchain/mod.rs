//! The toolchain stage: the only part of kiln that spawns processes (compilers, linkers,
//! strip, cargo). It gathers the facts planning reads ([`facts::gather`]) and runs the plan's
//! build steps.

pub mod elf;
pub mod facts;
#[cfg(any(test, feature = "fake-toolchain"))]
pub mod fake;
pub mod rust;
pub mod zig;

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
    fn cached(&self, step: &crate::plan::RustBuild, cache: &Path) -> Option<rust::Compiled>;
    /// Fetches the step's dependencies: the one part of a build that may use the network.
    fn fetch(&self, step: &crate::plan::RustBuild) -> Result<(), crate::error::ToolchainError>;
    /// Compiles, strips, checks and caches the step's binary.
    fn compile(
        &self,
        step: &crate::plan::RustBuild,
        cache: &Path,
        epoch: u64,
    ) -> Result<rust::Compiled, crate::error::ToolchainError>;
}

/// This machine's toolchains, as the facts gathered before planning found them.
pub struct Host<'f> {
    /// The recipe's directory: the plan's manifests are relative to it.
    pub root: PathBuf,
    pub facts: &'f facts::Facts,
}

impl Host<'_> {
    fn exec(&self, step: &crate::plan::RustBuild) -> Result<rust::Exec, crate::error::ToolchainError> {
        rust::Exec::new(step, &self.root, self.facts).map_err(|m| crate::error::ToolchainError::Missing {
            what: format!("{} (bin {}) for {}", step.package, step.bin, step.platform),
            message: m.message,
            help: m.help,
        })
    }
}

impl Toolchain for Host<'_> {
    fn cached(&self, step: &crate::plan::RustBuild, cache: &Path) -> Option<rust::Compiled> {
        rust::cached(cache, step)
    }

    fn fetch(&self, step: &crate::plan::RustBuild) -> Result<(), crate::error::ToolchainError> {
        rust::fetch(&self.exec(step)?)
    }

    fn compile(
        &self,
        step: &crate::plan::RustBuild,
        cache: &Path,
        epoch: u64,
    ) -> Result<rust::Compiled, crate::error::ToolchainError> {
        rust::compile(step, &self.exec(step)?, cache, epoch)
    }
}
