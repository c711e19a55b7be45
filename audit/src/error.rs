//! The one error type of `talos-audit`.

/// What can make an audit impossible. Findings are not errors: a binary
/// full of problems audits fine. Errors are inputs talos cannot read.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The binary could not be loaded or its graph recovered.
    #[error("{path}: {source}")]
    Binary {
        /// The binary's path as given.
        path: String,
        /// What `talos-cfg` said.
        #[source]
        source: talos_cfg::Error,
    },
    /// A metadata file (SIGSTRUCT, manifest) is malformed.
    #[error("{path}: malformed {what}: {detail}")]
    Metadata {
        /// The file.
        path: String,
        /// The structure being read.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The policy file is malformed or names an unknown rule.
    #[error("{path}: policy: {detail}")]
    Policy {
        /// The policy file.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The baseline is neither a `talos.audit/1` document nor a SARIF log
    /// written by talos.
    #[error("{path}: baseline: {detail}")]
    Baseline {
        /// The baseline file.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
}

impl Error {
    /// A stable, kebab-case identifier of the error kind, for JSON output.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::Binary { .. } => "binary",
            Error::Metadata { .. } => "metadata",
            Error::Policy { .. } => "policy",
            Error::Baseline { .. } => "baseline",
        }
    }
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
