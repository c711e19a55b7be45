//! The one error type of `talos-cfg`.

/// What can go wrong while loading a binary or recovering its graph.
///
/// Every variant names what was being read and, where it applies, the offset
/// or address and the expected and actual values, so that the command line
/// can print one precise line and JSON consumers can match on [`Error::code`].
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input ends before a structure it declares.
    #[error(
        "truncated: {what} needs {expected} bytes at offset {offset:#x}, the file has {actual}"
    )]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Where it starts in the file.
        offset: u64,
        /// Bytes needed from `offset`.
        expected: u64,
        /// Bytes in the file.
        actual: u64,
    },
    /// Neither an ELF nor a PE file.
    #[error("not an ELF or PE binary (first bytes {magic:02x?})")]
    BadMagic {
        /// Up to the first four bytes of the input.
        magic: Vec<u8>,
    },
    /// A well-formed binary for a machine talos does not handle (yet).
    #[error("unsupported architecture {0}")]
    UnsupportedArch(String),
    /// A file type that is not an executable or a shared object.
    #[error("unsupported file type: {0}")]
    UnsupportedKind(String),
    /// A table, section or segment lies (partly) outside the file.
    #[error("{what} at offset {offset:#x} size {size:#x} lies outside the file of {len:#x} bytes")]
    OutOfBounds {
        /// The structure being read.
        what: &'static str,
        /// Its declared file offset.
        offset: u64,
        /// Its declared size.
        size: u64,
        /// The file length.
        len: u64,
    },
    /// A declared count exceeds what any real input needs.
    #[error("{what}: {count} exceeds the limit of {limit}")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// The count the input asked for.
        count: u64,
        /// The limit talos enforces.
        limit: u64,
    },
    /// A structure that the parser rejected (the detail comes from the parser).
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// The structure being read.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The binary holds no executable code to analyse.
    #[error("no executable code: no executable segment or section")]
    NoCode,
    /// A function asked for by name or address does not exist in the graph.
    #[error("no function {0} in the recovered graph")]
    NoSuchFunction(String),
}

impl Error {
    /// A stable, kebab-case identifier of the error kind, for JSON output.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::Truncated { .. } => "truncated",
            Error::BadMagic { .. } => "bad-magic",
            Error::UnsupportedArch(_) => "unsupported-arch",
            Error::UnsupportedKind(_) => "unsupported-kind",
            Error::OutOfBounds { .. } => "out-of-bounds",
            Error::LimitExceeded { .. } => "limit-exceeded",
            Error::Malformed { .. } => "malformed",
            Error::NoCode => "no-code",
            Error::NoSuchFunction(_) => "no-such-function",
        }
    }
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
