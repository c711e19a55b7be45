//! The crate's one error type and the stable rejection reasons.

use std::path::PathBuf;

/// Why the gate refused an operation: exactly one stable reason per
/// rejection.
///
/// The kebab-case [`Rejection::code`] strings are a stable interface: the
/// `talos` CLI prints them in text and JSON, and scripts match on them.
/// `docs/migrate-protocol.md` lists which check yields which reason, in the
/// order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// A signature does not verify (strictly) over the message bytes.
    BadSignature,
    /// A message or reference is signed by a key this host has not pinned
    /// for that role.
    UntrustedKey,
    /// The bundle's nonce was never issued by this host for this app, or the
    /// receipt answers an exchange this host has not got in flight.
    UnknownNonce,
    /// The challenge nonce has expired.
    ExpiredNonce,
    /// The nonce was already consumed by another bundle.
    NonceReused,
    /// The message names another host than this one.
    WrongTarget,
    /// The bundle's epoch is not newer than the newest this host has seen for
    /// the app.
    EpochRollback,
    /// This bundle (or release) was already accepted here, or the app is
    /// already live on this host.
    AlreadyAccepted,
    /// The app is frozen for a migration in flight.
    AppFrozen,
    /// The app has migrated away from this host for good.
    MigratedAway,
    /// The code does not match the reference (binary bytes, code in the dump,
    /// or the bundle names another reference).
    CodeMismatch,
    /// The recomputed control-flow graph digest differs from the reference.
    CfgMismatch,
    /// The state received does not have exactly the sealed digest.
    StateMismatch,
    /// Introspection could not decide whether the code in the dump is clean.
    CodeUnverifiable,
    /// The execution-flow check of the dump failed.
    FlowViolation,
    /// The execution-flow check of the dump could not judge every thread
    /// (registers missing, code it could not decode or no graph for it,
    /// unwinding stopped early): the dump cannot show where the threads
    /// would resume.
    FlowUnverifiable,
    /// There is no valid release for a bundle this host verified.
    NoRelease,
    /// The input is not a well-formed message of the expected kind, or the
    /// inputs do not belong together.
    Malformed,
    /// The restored process is not what was verified (its code, its state
    /// or its registers differ, or it could not be restored and checked):
    /// it was killed before it ran and the launch was not recorded.
    LaunchMismatch,
}

impl Rejection {
    /// Every reason, in declaration order.
    pub const ALL: [Rejection; 19] = [
        Rejection::BadSignature,
        Rejection::UntrustedKey,
        Rejection::UnknownNonce,
        Rejection::ExpiredNonce,
        Rejection::NonceReused,
        Rejection::WrongTarget,
        Rejection::EpochRollback,
        Rejection::AlreadyAccepted,
        Rejection::AppFrozen,
        Rejection::MigratedAway,
        Rejection::CodeMismatch,
        Rejection::CfgMismatch,
        Rejection::StateMismatch,
        Rejection::CodeUnverifiable,
        Rejection::FlowViolation,
        Rejection::FlowUnverifiable,
        Rejection::NoRelease,
        Rejection::Malformed,
        Rejection::LaunchMismatch,
    ];

    /// The stable kebab-case name of the reason.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::BadSignature => "bad-signature",
            Rejection::UntrustedKey => "untrusted-key",
            Rejection::UnknownNonce => "unknown-nonce",
            Rejection::ExpiredNonce => "expired-nonce",
            Rejection::NonceReused => "nonce-reused",
            Rejection::WrongTarget => "wrong-target",
            Rejection::EpochRollback => "epoch-rollback",
            Rejection::AlreadyAccepted => "already-accepted",
            Rejection::AppFrozen => "app-frozen",
            Rejection::MigratedAway => "migrated-away",
            Rejection::CodeMismatch => "code-mismatch",
            Rejection::CfgMismatch => "cfg-mismatch",
            Rejection::StateMismatch => "state-mismatch",
            Rejection::CodeUnverifiable => "code-unverifiable",
            Rejection::FlowViolation => "flow-violation",
            Rejection::FlowUnverifiable => "flow-unverifiable",
            Rejection::NoRelease => "no-release",
            Rejection::Malformed => "malformed",
            Rejection::LaunchMismatch => "launch-mismatch",
        }
    }

    /// The reason with this code, if any.
    pub fn from_code(code: &str) -> Option<Rejection> {
        Rejection::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Everything that can go wrong in `talos-migrate`.
///
/// [`Error::Rejected`] and [`Error::Malformed`] are verdicts about the
/// evidence (see [`Error::rejection`]); every other variant means the
/// operation could not be carried out at all (unreadable state directory,
/// I/O failure, network trouble). Either way nothing was accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The gate refused: one stable reason and a human explanation.
    #[error("rejected ({reason}): {detail}")]
    Rejected {
        /// The stable reason.
        reason: Rejection,
        /// What exactly did not match, for people.
        detail: String,
    },
    /// Bytes that are not a well-formed message, key or ledger of the
    /// expected kind (including anything over the size limit).
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A caller-supplied argument is out of range (an app id with forbidden
    /// characters, a zero TTL, ...).
    #[error("bad argument: {0}")]
    BadArgument(String),
    /// A file or directory operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`"reading"`, `"renaming"`, ...).
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The state directory has no ledger: run `talos migrate init` first.
    #[error("{}: not an initialised talos state directory", .0.display())]
    NotInitialized(PathBuf),
    /// `init` on a state directory that already has a ledger.
    #[error("{}: already initialised", .0.display())]
    AlreadyInitialized(PathBuf),
    /// Refusing to overwrite an existing key file.
    #[error("{}: already exists, refusing to overwrite", .0.display())]
    FileExists(PathBuf),
    /// A private key file is readable or writable by group or others.
    #[error("{}: private key has mode {mode:o}; must not be accessible by group or others (chmod 600)", path.display())]
    InsecureKeyFile {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The ledger fails its checksum or does not decode, or belongs to
    /// another host key. Nothing is trusted from it.
    #[error("ledger {}: {detail}", path.display())]
    LedgerCorrupt {
        /// The ledger file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Too many unexpired challenges are pending on this host.
    #[error("too many pending challenges ({0}); wait for some to expire")]
    TooManyPending(usize),
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(String),
    /// A network frame is larger than the limit for its kind.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// Announced length.
        len: u64,
        /// Limit.
        max: u64,
    },
    /// The peer sent a frame of a kind not expected at this point.
    #[error("unexpected frame: expected {expected}, got {got}")]
    UnexpectedFrame {
        /// What the protocol expected.
        expected: &'static str,
        /// What arrived.
        got: String,
    },
    /// A network read or write did not complete in time.
    #[error("network timeout while {0}")]
    Timeout(&'static str),
    /// The peer closed the connection in the middle of the exchange.
    #[error("connection closed while {0}")]
    ConnectionClosed(&'static str),
    /// A network operation failed.
    #[error("network error while {op}: {source}")]
    Net {
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// A stable kebab-case name for the error: the rejection code for
    /// verdicts, a fixed name otherwise.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Rejected { reason, .. } => reason.code(),
            Error::Malformed { .. } => "malformed",
            Error::BadArgument(_) => "bad-argument",
            Error::Io { .. } => "io",
            Error::NotInitialized(_) => "not-initialized",
            Error::AlreadyInitialized(_) => "already-initialized",
            Error::FileExists(_) => "file-exists",
            Error::InsecureKeyFile { .. } => "insecure-key-file",
            Error::LedgerCorrupt { .. } => "ledger-corrupt",
            Error::TooManyPending(_) => "too-many-pending",
            Error::Random(_) => "random-unavailable",
            Error::FrameTooLarge { .. } => "frame-too-large",
            Error::UnexpectedFrame { .. } => "unexpected-frame",
            Error::Timeout(_) => "timeout",
            Error::ConnectionClosed(_) => "connection-closed",
            Error::Net { .. } => "network",
        }
    }

    /// The verdict this error stands for, if it is one: `Some` for
    /// [`Error::Rejected`], and [`Rejection::Malformed`] for malformed
    /// messages and oversized frames; `None` for errors that prevented the
    /// check (I/O, uninitialised state directory, ...).
    pub fn rejection(&self) -> Option<Rejection> {
        match self {
            Error::Rejected { reason, .. } => Some(*reason),
            Error::Malformed { .. } | Error::FrameTooLarge { .. } => Some(Rejection::Malformed),
            _ => None,
        }
    }

    pub(crate) fn rejected(reason: Rejection, detail: impl Into<String>) -> Error {
        Error::Rejected {
            reason,
            detail: detail.into(),
        }
    }

    pub(crate) fn malformed(what: &'static str, detail: impl Into<String>) -> Error {
        Error::Malformed {
            what,
            detail: detail.into(),
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_kebab_case_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for r in Rejection::ALL {
            let c = r.code();
            assert!(seen.insert(c), "duplicate code {c}");
            assert!(
                c.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{c}"
            );
            assert_eq!(Rejection::from_code(c), Some(r));
        }
        assert_eq!(seen.len(), 19);
        assert_eq!(Rejection::from_code("nope"), None);
    }

    #[test]
    fn malformed_is_a_rejection_io_is_not() {
        assert_eq!(
            Error::malformed("bundle", "short").rejection(),
            Some(Rejection::Malformed)
        );
        let io = Error::io("reading", "/x", std::io::Error::other("boom"));
        assert_eq!(io.rejection(), None);
        assert_eq!(io.code(), "io");
        let r = Error::rejected(Rejection::NonceReused, "x");
        assert_eq!(r.code(), "nonce-reused");
        assert_eq!(r.rejection(), Some(Rejection::NonceReused));
    }
}
