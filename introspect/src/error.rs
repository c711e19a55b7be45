//! The one error type of `talos-introspect`, shared by the dump readers and
//! the state digest.
//!
//! Errors are for inputs that cannot be read at all. Oddities inside an
//! input that can otherwise be read (a truncated segment, a malformed note)
//! are not errors: the readers keep going and record them as
//! [`crate::dump::Anomaly`] so that the report says what could not be
//! checked.

/// What can go wrong while reading a dump or a live process.
///
/// Every variant names what was being read and, where it applies, the offset
/// and the expected and actual values. [`Error::code`] gives a stable
/// kebab-case identifier for JSON consumers.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input ends before a structure it declares.
    #[error(
        "truncated: {what} needs {expected} bytes at offset {offset:#x}, the input has {actual}"
    )]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Where it starts.
        offset: u64,
        /// Bytes needed from `offset`.
        expected: u64,
        /// Bytes available in the input.
        actual: u64,
    },
    /// Not an ELF file at all.
    #[error("not an ELF core file (first bytes {magic:02x?})")]
    BadMagic {
        /// Up to the first four bytes of the input.
        magic: Vec<u8>,
    },
    /// An ELF file that is not a core dump (an executable, a library...).
    #[error("not a core dump: ELF e_type is {e_type} ({name}), expected 4 (ET_CORE)")]
    NotCore {
        /// The `e_type` found.
        e_type: u16,
        /// Its name.
        name: &'static str,
    },
    /// A well-formed input talos does not read (yet).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A header field that makes the rest unreadable.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// The structure being read.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A declared count or size exceeds what any real input needs.
    #[error("{what}: {count} exceeds the limit of {limit}")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// The count the input asked for.
        count: u64,
        /// The limit talos enforces.
        limit: u64,
    },
    /// A live process could not be read (`/proc`, ptrace).
    #[error("process {pid}: {what}")]
    Process {
        /// The process id.
        pid: u32,
        /// What was being done.
        what: String,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// A file (module binary, snapshot output) could not be read or written.
    #[error("{path}: {what}")]
    Io {
        /// The file.
        path: String,
        /// What was being done.
        what: &'static str,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// Live reading is only implemented on Linux.
    #[error("live process reading is not supported on this platform")]
    LiveUnsupported,
    /// A region the state digest cannot take: empty or inverted, more
    /// bytes than addresses, or a state region that does not start on a page.
    #[error("region {start:#x}-{end:#x}: {detail}")]
    BadRegion {
        /// First address.
        start: u64,
        /// One past the last address.
        end: u64,
        /// What is wrong.
        detail: &'static str,
    },
    /// Two regions claim the same addresses.
    #[error(
        "region {start:#x}-{end:#x} overlaps the region before it, which ends at {previous_end:#x}"
    )]
    RegionOverlap {
        /// First address of the later region.
        start: u64,
        /// One past its last address.
        end: u64,
        /// End of the region before it.
        previous_end: u64,
    },
    /// A stored state digest whose roots, pages or totals do not agree.
    #[error("inconsistent state digest: {detail}")]
    DigestInconsistent {
        /// The first value that does not match.
        detail: String,
    },
    /// Two state digests made with different settings cannot be compared.
    #[error("state digests cannot be compared: {detail}")]
    DigestIncomparable {
        /// Which settings differ.
        detail: String,
    },
}

impl Error {
    /// A stable, kebab-case identifier of the error kind, for JSON output.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::Truncated { .. } => "truncated",
            Error::BadMagic { .. } => "bad-magic",
            Error::NotCore { .. } => "not-core",
            Error::Unsupported(_) => "unsupported",
            Error::Malformed { .. } => "malformed",
            Error::LimitExceeded { .. } => "limit-exceeded",
            Error::Process { .. } => "process",
            Error::Io { .. } => "io",
            Error::LiveUnsupported => "live-unsupported",
            Error::BadRegion { .. } => "bad-region",
            Error::RegionOverlap { .. } => "region-overlap",
            Error::DigestInconsistent { .. } => "digest-inconsistent",
            Error::DigestIncomparable { .. } => "digest-incomparable",
        }
    }
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
