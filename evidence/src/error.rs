//! The one error type of `talos-evidence`.

/// What can go wrong while computing evidence or running an exchange.
///
/// [`Error::code`] is a stable kebab-case identifier.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A dump or image could not be read.
    #[error("{context}: {source}")]
    Introspect {
        /// What was being read.
        context: String,
        /// The reader's error.
        #[source]
        source: talos_introspect::Error,
    },
    /// A binary could not be analysed.
    #[error("{context}: {source}")]
    Cfg {
        /// What was being analysed.
        context: String,
        /// The analysis error.
        #[source]
        source: talos_cfg::Error,
    },
    /// The binary's control-flow graph stopped at a limit: its digest does
    /// not describe the whole binary, so it is no measurement.
    #[error(
        "{path}: control-flow graph incomplete (stopped at: {caps}); its digest is not a measurement"
    )]
    IncompleteGraph {
        /// The binary.
        path: String,
        /// The limits reached.
        caps: String,
    },
    /// The gate, the ledger or the network failed (not a verdict).
    #[error(transparent)]
    Migrate(#[from] talos_migrate::Error),
    /// An image-directory stream that breaks its format or limits.
    #[error("image stream: {0}")]
    Archive(String),
    /// A well-formed input talos does not handle.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A file could not be read or written.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What was being done.
        what: &'static str,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A stable, kebab-case identifier of the error kind.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::Introspect { .. } => "introspect",
            Error::Cfg { .. } => "cfg",
            Error::IncompleteGraph { .. } => "incomplete-graph",
            Error::Migrate(e) => e.code(),
            Error::Archive(_) => "archive",
            Error::Unsupported(_) => "unsupported",
            Error::Io { .. } => "io",
        }
    }

    pub(crate) fn io(path: impl Into<String>, what: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            what,
            source,
        }
    }
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
