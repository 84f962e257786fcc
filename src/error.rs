//! Typed errors of the build stages, one type per stage, joined in [`BuildError`] (the recipe
//! and the plan report span-carrying [`crate::diag::Problem`]s instead).

use std::path::PathBuf;

/// What failed on which path: every stage's `Io` variant, made by `Type::io(action, path)`.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot {action} {}: {source}", path.display())]
#[diagnostic(code(kiln::io))]
pub struct IoError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

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
    #[error(transparent)]
    #[diagnostic(transparent)]
    Io(IoError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Shard(#[from] ShardError),
}

/// Shards: a plan cut for CI runners (`kiln build --shard`) and put back together
/// (`kiln merge`).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ShardError {
    #[error("{0}")]
    #[diagnostic(code(kiln::shard::unknown), help("list the plan's shards with `kiln plan --matrix --plan FILE`"))]
    Unknown(String),
    #[error("{what} is not a shard kiln can merge: {reason}")]
    #[diagnostic(
        code(kiln::merge::not_a_shard),
        help("give the layouts or references `kiln build --shard` wrote, or the JSON files it printed with --json")
    )]
    NotAShard { what: String, reason: String },
    #[error("the shards come from different plans: {first} is of plan {first_plan}, {other} of plan {other_plan}")]
    #[diagnostic(
        code(kiln::merge::other_plan),
        help(
            "build every shard from the same plan.json (`kiln build --plan plan.json --shard ID`); nothing was written"
        )
    )]
    OtherPlan { first: String, first_plan: String, other: String, other_plan: String },
    #[error("{problem}")]
    #[diagnostic(
        code(kiln::merge::shards),
        help(
            "give `kiln merge` every shard of the matrix once (`kiln plan --matrix` lists them); nothing was written"
        )
    )]
    Shards { problem: String },
    #[error("layer {layer} of shard {shard} is damaged: {reason}")]
    #[diagnostic(
        code(kiln::merge::blob),
        help("build the shard again (`kiln build --plan plan.json --shard ID`); nothing was written")
    )]
    Blob { shard: String, layer: String, reason: String },
}

/// The inputs stage: fetching and verifying what a recipe pins (Debian indexes and packages,
/// kiln.lock).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InputsError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Io(IoError),
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

/// The toolchain stage: running a build step's compiler, strip and checks.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ToolchainError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Io(IoError),
    #[error("{tool} could not build {what}:\n{output}")]
    #[diagnostic(code(kiln::toolchain::compile), help("fix the error above; kiln wrote no image"))]
    Compile { tool: &'static str, what: String, output: String },
    #[error("{what} read {file}, which is not among the files kiln hashed for it")]
    #[diagnostic(code(kiln::toolchain::undeclared_input))]
    UndeclaredInput {
        what: String,
        file: String,
        #[help]
        help: String,
    },
    #[error("{tool} could not fetch the dependencies of {}:\n{output}", manifest.display())]
    #[diagnostic(
        code(kiln::toolchain::fetch),
        help("fetching needs the network once; later builds run offline from the cache")
    )]
    Fetch { tool: &'static str, manifest: PathBuf, output: String },
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

/// The store stage: OCI layouts and bundles read and written, their locks.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StoreError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Io(IoError),
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
    /// A release read from a registry, which failed there.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(Box<RegistryError>),
}

/// The registry: pushing to and pulling from an OCI distribution API. Messages name the
/// registry, never a credential.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RegistryError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    #[diagnostic(
        code(kiln::registry::reference),
        help("write HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST], e.g. registry.example.com/team/api:1.0")
    )]
    Reference(#[from] crate::oci::reference::ReferenceError),
    #[error("cannot reach {registry} ({what}) after {tries} tries: {reason}")]
    #[diagnostic(
        code(kiln::registry::unreachable),
        help(
            "check the registry's address and the network; nothing was tagged, and a push run again sends only what is missing"
        )
    )]
    Unreachable { registry: String, what: String, tries: u32, reason: String },
    #[error(
        "{registry} refused access{}: {reason}",
        source_name.as_ref().map_or_else(|| " (no credentials are configured for it)".to_string(), |s| format!(" with the credentials from {s}"))
    )]
    #[diagnostic(
        code(kiln::registry::auth),
        help(
            "log in with `docker login`, or set KILN_REGISTRY_USER and KILN_REGISTRY_PASSWORD; kiln reads ~/.docker/config.json (auths, credHelpers, credsStore)"
        )
    )]
    Auth { registry: String, source_name: Option<String>, reason: String },
    #[error("{registry} refused {what}: {status} {message}")]
    #[diagnostic(code(kiln::registry::refused))]
    Refused {
        registry: String,
        what: String,
        status: u16,
        message: String,
        #[help]
        help: Option<String>,
    },
    #[error("{registry} answered {what} in a way kiln cannot use: {reason}")]
    #[diagnostic(
        code(kiln::registry::protocol),
        help("the registry does not speak the OCI distribution API as kiln expects")
    )]
    Protocol { registry: String, what: String, reason: String },
    #[error("cannot read the credentials for {registry} from {source_name}: {reason}")]
    #[diagnostic(code(kiln::registry::credentials))]
    Credentials { registry: String, source_name: String, reason: String },
    #[error("{what} from {registry} does not match its digest: expected {expected}, got {actual}")]
    #[diagnostic(code(kiln::fetch::integrity), help("the registry or the link altered it; kiln used none of it"))]
    Integrity { registry: String, what: String, expected: String, actual: String },
}

/// The layer stage: a layer's files read, checked against the plan and written as a tar.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LayerError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Io(IoError),
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

/// The update stage: diffs, bundles and applying them.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum UpdateError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Io(IoError),
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

/// `kiln verify`: the rebuilds from a fresh checkout, and reading what they wrote.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum VerifyError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Io(IoError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    #[error("the {side} build of kiln verify failed ({status}):\n{stderr}")]
    #[diagnostic(
        code(kiln::verify::rebuild),
        help(
            "kiln verify builds a fresh copy of the recipe's directory with an empty cache; `kiln build` there shows the error in full"
        )
    )]
    Rebuild { side: &'static str, status: String, stderr: String },
}

/// `Type::io(action, path)`: the `map_err` argument that names what failed on which path.
macro_rules! io_constructor {
    ($($t:ident),*) => {$(
        impl $t {
            pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> $t {
                let path = path.into();
                move |source| $t::Io(IoError { action, path, source })
            }
        }
    )*};
}
io_constructor!(BuildError, InputsError, ToolchainError, StoreError, LayerError, UpdateError, VerifyError);

/// A stage's error to and from [`BuildError`], for errors that pass through a blob's fill:
/// one that comes back is unwrapped, not nested.
macro_rules! passes_through {
    ($($t:ident => $variant:ident),*) => {$(
        impl From<BuildError> for $t {
            fn from(e: BuildError) -> $t {
                match e {
                    BuildError::$variant(e) => e,
                    BuildError::Store(e) => $t::Store(e),
                    other => $t::Other(Box::new(other)),
                }
            }
        }

        impl From<$t> for BuildError {
            fn from(e: $t) -> BuildError {
                match e {
                    $t::Other(e) => *e,
                    e => BuildError::$variant(e),
                }
            }
        }
    )*};
}
passes_through!(LayerError => Layer, UpdateError => Update);
