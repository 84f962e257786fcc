//! Typed errors of the build stages (the recipe has its own, span-carrying diagnostics).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BuildError {
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
    #[error("{} exists and is not an OCI image layout kiln can replace", path.display())]
    #[diagnostic(code(kiln::build::output_not_layout), help("choose another --out directory, or remove this one"))]
    OutputNotLayout { path: PathBuf },
    #[error("{} is not a valid OCI image layout: {reason}", path.display())]
    #[diagnostic(code(kiln::layout::invalid))]
    InvalidLayout { path: PathBuf, reason: String },
}

impl BuildError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.into();
        move |source| BuildError::Io { action, path, source }
    }
}
