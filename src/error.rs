//! Typed errors of the build stages, one type per stage, joined in [`BuildError`] (the recipe
//! and the plan report span-carrying [`crate::diag::Problem`]s instead).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BuildError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Inputs(#[from] InputsError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Toolchain(#[from] ToolchainError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Layer(LayerError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Update(UpdateError),
    #[error("cannot {action} {}: {source}", path.display())]
    #[diagnostic(code(kiln::io))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl BuildError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.into();
        move |source| BuildError::Io { action, path, source }
    }
}

/// The inputs stage: fetching and verifying what a recipe pins (Debian indexes and packages,
/// kiln.lock).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InputsError {
    #[error("cannot {action} {}: {source}", path.display())]
    #[diagnostic(code(kiln::io))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot fetch {url}: {reason}")]
    #[diagnostic(
        code(kiln::fetch::network),
        help("fetching pinned inputs needs the network once; later builds use the cache")
    )]
    Network { url: String, reason: String },
    #[error("{what} does not match what was pinned: expected sha256 {expected}, got {actual}")]
    #[diagnostic(code(kiln::fetch::integrity), help("the download or the cache was altered; kiln used none of it"))]
    Integrity { what: String, expected: String, actual: String },
    #[error("{message}")]
    #[diagnostic(code(kiln::debian))]
    Debian {
        message: String,
        #[help]
        help: Option<String>,
    },
}

impl InputsError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> InputsError {
        let path = path.into();
        move |source| InputsError::Io { action, path, source }
    }
}

/// The toolchain stage: running a build step's compiler, strip and checks.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ToolchainError {
    #[error("cannot {action} {}: {source}", path.display())]
    #[diagnostic(code(kiln::io))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cargo could not build {what}:\n{output}")]
    #[diagnostic(code(kiln::toolchain::compile), help("fix the error above; kiln wrote no image"))]
    Compile { what: String, output: String },
    #[error("cargo could not fetch the dependencies of {}:\n{output}", manifest.display())]
    #[diagnostic(
        code(kiln::toolchain::fetch),
        help("fetching needs the network once; later builds run offline from the cache")
    )]
    Fetch { manifest: PathBuf, output: String },
    #[error("cannot build {what}: {message}")]
    #[diagnostic(code(kiln::toolchain::missing))]
    Missing {
        what: String,
        message: String,
        #[help]
        help: String,
    },
    #[error("the binary {what} failed its check: {reason}")]
    #[diagnostic(code(kiln::toolchain::binary))]
    BadBinary { what: String, reason: String },
}

impl ToolchainError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ToolchainError {
        let path = path.into();
        move |source| ToolchainError::Io { action, path, source }
    }
}

/// The store stage: OCI layouts and bundles read and written, their locks.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StoreError {
    #[error("cannot {action} {}: {source}", path.display())]
    #[diagnostic(code(kiln::io))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} exists and is not an OCI image layout kiln can replace", path.display())]
    #[diagnostic(code(kiln::build::output_not_layout), help("choose another --out directory, or remove this one"))]
    OutputNotLayout { path: PathBuf },
    #[error("{} is not a valid OCI image layout: {reason}", path.display())]
    #[diagnostic(code(kiln::layout::invalid))]
    InvalidLayout { path: PathBuf, reason: String },
    #[error("{} is not an OCI image layout: it has no oci-layout file", path.display())]
    #[diagnostic(
        code(kiln::layout::invalid),
        help("an OCI image layout holds oci-layout, index.json and blobs/sha256/, as `kiln build --out` writes it")
    )]
    NotLayout { path: PathBuf },
    #[error("{} is {size} bytes, more than the {limit} bytes kiln reads of a JSON document", path.display())]
    #[diagnostic(
        code(kiln::layout::too_large),
        help(
            "index.json, image indexes, manifests, configs and a bundle's manifest are read up to 4 MiB, as registries limit manifests"
        )
    )]
    TooLarge { path: PathBuf, size: u64, limit: u64 },
    #[error("{} is being written by another kiln ({holder}); gave up after waiting {waited}", path.display())]
    #[diagnostic(
        code(kiln::store::locked),
        help("let that kiln finish, or stop it, then run again; it holds the lock {}", lock.display())
    )]
    Locked { path: PathBuf, lock: PathBuf, holder: String, waited: String },
}

impl StoreError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { action, path, source }
    }
}

/// The layer stage: a layer's files read, checked against the plan and written as a tar.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LayerError {
    #[error("cannot {action} {}: {source}", path.display())]
    #[diagnostic(code(kiln::io))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("source {} changed while kiln was building (planned sha256:{planned}, read sha256:{read})", path.display())]
    #[diagnostic(code(kiln::build::source_changed), help("run the build again once the sources are stable"))]
    SourceChanged { path: PathBuf, planned: String, read: String },
    #[error("{what} does not match what was pinned: expected sha256 {expected}, got {actual}")]
    #[diagnostic(code(kiln::fetch::integrity), help("the download or the cache was altered; kiln used none of it"))]
    Integrity { what: String, expected: String, actual: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    /// An error of another stage that passed through this one (a blob's fill runs the
    /// caller's code inside the store).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Other(Box<BuildError>),
}

impl LayerError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LayerError {
        let path = path.into();
        move |source| LayerError::Io { action, path, source }
    }
}

impl From<BuildError> for LayerError {
    fn from(e: BuildError) -> LayerError {
        match e {
            BuildError::Layer(e) => e,
            BuildError::Store(e) => LayerError::Store(e),
            other => LayerError::Other(Box::new(other)),
        }
    }
}

impl From<LayerError> for BuildError {
    fn from(e: LayerError) -> BuildError {
        match e {
            LayerError::Other(e) => *e,
            e => BuildError::Layer(e),
        }
    }
}

/// The update stage: diffs, bundles and applying them.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum UpdateError {
    #[error("cannot {action} {}: {source}", path.display())]
    #[diagnostic(code(kiln::io))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing bundle {}: {reason}", bundle.display())]
    #[diagnostic(code(kiln::update::refused), help("the layout was left as it was"))]
    BundleRefused { bundle: PathBuf, reason: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    /// An error of another stage that passed through this one (a blob's fill runs the
    /// caller's code inside the store).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Other(Box<BuildError>),
}

impl UpdateError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> UpdateError {
        let path = path.into();
        move |source| UpdateError::Io { action, path, source }
    }
}

impl From<BuildError> for UpdateError {
    fn from(e: BuildError) -> UpdateError {
        match e {
            BuildError::Update(e) => e,
            BuildError::Store(e) => UpdateError::Store(e),
            other => UpdateError::Other(Box::new(other)),
        }
    }
}

impl From<UpdateError> for BuildError {
    fn from(e: UpdateError) -> BuildError {
        match e {
            UpdateError::Other(e) => *e,
            e => BuildError::Update(e),
        }
    }
}
