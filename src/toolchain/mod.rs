//! The toolchain stage: the only part of kiln that spawns processes (compilers, linkers,
//! strip, cargo). Planning asks it what is installed; building asks it to compile.

pub mod elf;
pub mod rust;

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

/// Finds a program on PATH.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file())
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
