//! The journal: one JSON line per `talos migrate` verdict on a state
//! directory, refusals included, so that `talos migrate status --format
//! html` can draw what happened to each app and when.
//!
//! The ledger decides; the journal only tells. It is written after the
//! ledger (so it may miss the last entry if talos was killed between the
//! two writes), it is not signed, and nothing reads it to decide anything.
//! Each entry is one `write(2)` of a whole line to a file opened with
//! `O_APPEND`, so concurrent commands do not interleave lines. Reading is
//! bounded: the last [`MAX_READ`] bytes and [`MAX_ENTRIES`] entries; lines
//! that do not parse are counted and skipped.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Verdict;

/// File name of the journal in a state directory.
pub const JOURNAL_FILE: &str = "journal";
/// Most bytes read from the end of the journal.
pub const MAX_READ: u64 = 8 << 20;
/// Most entries kept when reading.
pub const MAX_ENTRIES: usize = 20_000;

/// One verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Seconds since the Unix epoch (the clock the verdict used).
    pub time: u64,
    /// The subcommand (`register`, `seal`, ...).
    pub command: String,
    /// `accepted` or `rejected`.
    pub verdict: String,
    /// The rejection code, when rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The verdict's sentence.
    pub detail: String,
    /// The app, when the command names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Epoch, when the verdict carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// Bundle id, when the verdict carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    /// The other host's key (target or source), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
}

impl Entry {
    /// The entry for a verdict of `app` (when the command names one).
    #[must_use]
    pub fn of(v: &Verdict, time: u64, app: Option<&str>) -> Entry {
        let field = |k: &str| v.fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
        let text = |k: &str| field(k).and_then(Value::as_str).map(str::to_owned);
        Entry {
            time,
            command: v.command.clone(),
            verdict: if v.accepted { "accepted" } else { "rejected" }.into(),
            reason: v.reason_code().map(str::to_owned),
            detail: v.summary.clone(),
            app: text("app").or_else(|| app.map(str::to_owned)),
            epoch: field("epoch").and_then(Value::as_u64),
            bundle: text("bundle"),
            peer: text("target").or_else(|| text("source")),
        }
    }
}

/// Append `entry` to the journal of `state_dir`.
///
/// # Errors
/// When the journal cannot be opened or written.
pub fn append(state_dir: &Path, entry: &Entry) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir.join(JOURNAL_FILE))?;
    f.write_all(&line)
}

/// What reading the journal gave.
#[derive(Debug, Clone, Default)]
pub struct Read {
    /// Entries in file order (oldest first).
    pub entries: Vec<Entry>,
    /// Lines that did not parse.
    pub skipped: u64,
    /// Whether older entries were left out (file larger than [`MAX_READ`]
    /// or more than [`MAX_ENTRIES`] entries).
    pub truncated: bool,
    /// Whether the state directory has a journal at all.
    pub present: bool,
}

/// Read the journal of `state_dir` (bounded; see the module docs).
///
/// # Errors
/// When the journal exists but cannot be read.
pub fn read(state_dir: &Path) -> std::io::Result<Read> {
    let path = state_dir.join(JOURNAL_FILE);
    let mut f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Read::default()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let mut out = Read {
        present: true,
        ..Read::default()
    };
    if len > MAX_READ {
        f.seek(SeekFrom::Start(len - MAX_READ))?;
        out.truncated = true;
    }
    let mut bytes = Vec::new();
    f.take(MAX_READ).read_to_end(&mut bytes)?;
    let mut lines = bytes.split(|&b| b == b'\n').peekable();
    if out.truncated {
        // The first line is probably cut.
        let _ = lines.next();
    }
    for line in lines.filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<Entry>(line) {
            Ok(e) => out.entries.push(e),
            Err(_) => out.skipped += 1,
        }
    }
    if out.entries.len() > MAX_ENTRIES {
        out.entries.drain(..out.entries.len() - MAX_ENTRIES);
        out.truncated = true;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reads_back_skipping_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let v = Verdict::accepted("register", "x registered").field("app", "x");
        append(dir.path(), &Entry::of(&v, 5, None)).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL_FILE))
            .unwrap()
            .write_all(b"not json\n")
            .unwrap();
        let v = Verdict::rejected("seal", talos_migrate::Rejection::CodeMismatch, "differs")
            .field("epoch", 3u64);
        append(dir.path(), &Entry::of(&v, 6, Some("x"))).unwrap();
        let r = read(dir.path()).unwrap();
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.skipped, 1);
        assert_eq!(r.entries[1].reason.as_deref(), Some("code-mismatch"));
        assert_eq!(r.entries[1].app.as_deref(), Some("x"));
        assert_eq!(r.entries[1].epoch, Some(3));
    }

    #[test]
    fn missing_journal_is_empty_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let r = read(dir.path()).unwrap();
        assert!(!r.present && r.entries.is_empty());
    }
}
