//! The crate's one error type: evidence or inputs that cannot be read at
//! all (the CLI's exit 2). Evidence that reads but does not verify is not an
//! error: it is a [`crate::Verdict`].

/// Why evidence or its inputs could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are neither a DCAP quote nor a Keystone report.
    #[error("not TEE evidence: {0}")]
    Unrecognized(String),
    /// The bytes look like evidence of a known format but do not parse.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// What was being read (`quote`, `keystone report`, ...).
        what: &'static str,
        /// What is wrong, with the offset where it helps.
        detail: String,
    },
    /// The collateral file is not DCAP collateral JSON.
    #[error("malformed collateral: {0}")]
    Collateral(String),
    /// An input is larger than anything real.
    #[error("{what} of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Which input.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A bad value given by the caller (a measurement, a status name, a key).
    #[error("{0}")]
    BadArgument(String),
}

impl Error {
    /// The stable kebab-case code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unrecognized(_) => "unrecognized",
            Error::Malformed { .. } => "malformed",
            Error::Collateral(_) => "collateral",
            Error::TooLarge { .. } => "too-large",
            Error::BadArgument(_) => "bad-argument",
        }
    }

    pub(crate) fn malformed(what: &'static str, detail: impl Into<String>) -> Error {
        Error::Malformed {
            what,
            detail: detail.into(),
        }
    }
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
