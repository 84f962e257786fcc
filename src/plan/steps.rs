//! The build steps a plan holds besides Rust's ([`super::RustBuild`]): a C program compiled
//! with zig, a Go program built by the go command, and [`Step`], any one of them, as the
//! toolchain runs it. Each step's `id` hashes every input, so two steps with one id make the
//! same bytes and a cached result with that id is reused as is.

use super::facts::Isolation;
use super::{BuildStep, RustBuild};
use crate::oci::platform::Platform;
use serde::{Deserialize, Serialize};

/// One C program for one platform: every source, every header it may include and every flag
/// are recorded, and zig compiles and links it statically in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CBuild {
    pub id: String,
    /// The program's name (the recipe's `c "NAME"`).
    pub name: String,
    pub platform: Platform,
    /// zig's target: `x86_64-linux-musl`, `aarch64-linux-musl`, `arm-linux-musleabihf`.
    pub target: String,
    /// `zig cc 0.17.0 (sha256 …)`.
    pub compiler: String,
    /// The source files, relative to the recipe's directory, in the order they are compiled.
    pub sources: Vec<String>,
    /// The include directories (`-I`), relative to the recipe's directory.
    pub include: Vec<String>,
    /// The compiler's arguments besides sources and include directories: kiln's own (target
    /// CPU, static, stripped, paths remapped, with `${root}` for the recipe's directory), then
    /// the recipe's `-D`, flags and `-l`.
    pub args: Vec<String>,
    /// Files hashed into `inputs_sha256`: the sources, every file under the include
    /// directories and every file beside a source. Only these may reach the compile.
    pub input_files: usize,
    pub inputs_sha256: String,
    pub network: Isolation,
}

/// One Go main package for one platform, built with `CGO_ENABLED=0` from the module's own
/// files (and its `vendor/` directory) only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoBuild {
    pub id: String,
    /// The program's name: the package directory's.
    pub name: String,
    /// The package as the recipe names it (`./cmd/agent`).
    pub package: String,
    /// The module's directory (where `go.mod` is), relative to the recipe's directory.
    pub module: String,
    /// The package's directory relative to the module's (`./cmd/agent`): what `go build` gets.
    pub target: String,
    pub platform: Platform,
    pub goarch: String,
    /// `7` for linux/arm/v7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goarm: Option<String>,
    /// `go version` and the go command's sha256.
    pub go: String,
    /// `vendor` when the module has a `vendor/` directory, else `readonly`.
    pub mod_mode: String,
    pub tags: Vec<String>,
    /// `-ldflags`: kiln's `-s -w -buildid=` and then the recipe's.
    pub ldflags: String,
    /// Files of the module hashed into `sources_sha256` (hidden entries left out).
    pub source_files: usize,
    pub sources_sha256: String,
    pub network: Isolation,
}

impl BuildStep for CBuild {
    fn id(&self) -> &str {
        &self.id
    }

    fn platform(&self) -> Platform {
        self.platform
    }

    fn describe(&self) -> String {
        format!("C program {} for {} ({})", self.name, self.platform, self.target)
    }
}

impl BuildStep for GoBuild {
    fn id(&self) -> &str {
        &self.id
    }

    fn platform(&self) -> Platform {
        self.platform
    }

    fn describe(&self) -> String {
        let arm = self.goarm.as_ref().map(|v| format!(" GOARM={v}")).unwrap_or_default();
        format!("Go program {} ({}) for {} (GOARCH={}{arm})", self.name, self.package, self.platform, self.goarch)
    }
}

/// Sets a step's id: the hash of kiln's version, the epoch and every other field.
pub(crate) fn seal<T: Serialize>(step: &T, epoch: u64) -> String {
    crate::oci::digest::sha256_hex(&crate::oci::canonical::to_vec(&(env!("CARGO_PKG_VERSION"), epoch, step)))
}

/// One build step of a plan, of any language.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    Rust(&'a RustBuild),
    C(&'a CBuild),
    Go(&'a GoBuild),
}

impl Step<'_> {
    fn inner(&self) -> &dyn BuildStep {
        match *self {
            Step::Rust(b) => b,
            Step::C(b) => b,
            Step::Go(b) => b,
        }
    }

    /// `rust`, `c` or `go`: the language, and the folder of kiln's cache its binaries are in.
    pub fn language(&self) -> &'static str {
        match self {
            Step::Rust(_) => "rust",
            Step::C(_) => "c",
            Step::Go(_) => "go",
        }
    }

    /// The binary's file name.
    pub fn bin(&self) -> &str {
        match self {
            Step::Rust(b) => &b.bin,
            Step::C(b) => &b.name,
            Step::Go(b) => &b.name,
        }
    }
}

impl BuildStep for Step<'_> {
    fn id(&self) -> &str {
        match *self {
            Step::Rust(b) => &b.id,
            Step::C(b) => &b.id,
            Step::Go(b) => &b.id,
        }
    }

    fn platform(&self) -> Platform {
        self.inner().platform()
    }

    fn describe(&self) -> String {
        self.inner().describe()
    }
}
