//! Writing results: to stdout, or atomically to a file.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Write `bytes` to `path` (atomically: a temporary file in the same
/// directory, fsynced, then renamed over the target) or to stdout.
///
/// A reader that closed standard output early (`talos ... | head`,
/// `| true`) is not an error: the rest of the output is dropped and the
/// command still ends with its verdict's exit code, so under `pipefail` a
/// failed verification never turns into success.
///
/// # Errors
/// When the file or stdout cannot be written (other than a closed pipe).
pub fn emit(path: Option<&Path>, bytes: &[u8]) -> Result<()> {
    match path {
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(bytes).and_then(|()| out.flush()) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                Err(e) => Err(anyhow::Error::new(e).context("writing to stdout")),
            }
        }
        Some(path) => write_atomic(path, bytes),
    }
}

/// Like [`emit`], for output produced as it is written (`write` gets a
/// buffered writer): a large document is never held in memory whole. A file
/// is still replaced atomically.
///
/// # Errors
/// When `write` fails, or the file or stdout cannot be written.
pub fn emit_with(
    path: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    match path {
        None => {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            match write(&mut out).and_then(|()| out.flush()) {
                Ok(()) => Ok(()),
                // A closed pipe keeps the verdict's exit code, as in `emit`.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                Err(e) => Err(anyhow::Error::new(e).context("writing to stdout")),
            }
        }
        Some(path) => write_atomic_with(path, write),
    }
}

/// Replace `path` with `bytes` so that a crash leaves the old file or the new
/// one, never a torn file.
///
/// # Errors
/// When the temporary file cannot be created, written, synced or renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Replace `path` with what `write` produces, atomically: a temporary file
/// with an unpredictable name created exclusively (`O_EXCL`, so a planted
/// symlink is never followed) in the same directory, fsynced, then renamed
/// over `path`. On any error the temporary file is removed and `path` is
/// untouched.
///
/// # Errors
/// When the temporary file cannot be created, written, synced or renamed.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    // A device or a pipe (`-o /dev/null`, `-o /dev/stdout`, a FIFO) is
    // written in place: renaming a file over it would replace the device
    // node itself (as root, `/dev/null` became a regular file).
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
        && !meta.is_dir()
    {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        return write(&mut w)
            .and_then(|()| w.flush())
            .with_context(|| format!("{}: cannot write", path.display()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    let tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        // As `File::create` would (0666 less the umask), not tempfile's 0600:
        // a report or reference is meant to be read by others.
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(&dir)
        .with_context(|| format!("{}: cannot create a temporary file", dir.display()))?;
    let shown = tmp.path().display().to_string();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp);
    write(&mut w).with_context(|| format!("{shown}: cannot write"))?;
    let tmp = w
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)
        .with_context(|| format!("{shown}: cannot write"))?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("{shown}: cannot sync"))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("{}: cannot replace", path.display()))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        // Durability of the rename; failure here is not a torn file.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Bytes for people (`12.3 KiB`).
#[must_use]
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = "KiB";
    for u in UNITS.iter().skip(1) {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}
