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
            write(&mut out).context("writing to stdout")?;
            out.flush().context("writing to stdout")?;
            Ok(())
        }
        Some(path) => replace_atomic(path, |f| {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
            write(&mut out)?;
            out.flush()
        }),
    }
}

/// Replace `path` with `bytes` so that a crash leaves the old file or the new
/// one, never a torn file.
///
/// # Errors
/// When the temporary file cannot be created, written, synced or renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_atomic(path, |f| f.write_all(bytes))
}

/// Replace `path` with what `fill` writes into a temporary file next to it.
fn replace_atomic(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
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
        fill(&mut f).with_context(|| format!("{}: cannot write", tmp.display()))?;
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
