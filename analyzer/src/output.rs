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

/// Replace `path` with `bytes` so that a crash leaves the old file or the new
/// one, never a torn file.
///
/// # Errors
/// When the temporary file cannot be created, written, synced or renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    // A device or a pipe (`-o /dev/null`, `-o /dev/stdout`, a FIFO) is
    // written in place: renaming a file over it would replace the device
    // node itself (as root, `/dev/null` became a regular file).
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
        && !meta.is_dir()
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        return f
            .write_all(bytes)
            .and_then(|()| f.flush())
            .with_context(|| format!("{}: cannot write", path.display()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| -> Result<()> {
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("{}: cannot create", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("{}: cannot write", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("{}: cannot sync", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("{}: cannot replace", path.display()))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            // Durability of the rename; failure here is not a torn file.
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
