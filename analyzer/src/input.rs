//! Mapping input files. The one place in talos that uses `unsafe`.

use std::fs::File;
use std::ops::Deref;
use std::path::Path;

use anyhow::{Context, Result};
use memmap2::Mmap;

/// Bytes of an input file: memory-mapped when possible, read otherwise
/// (empty files, pipes, and special files cannot be mapped).
#[derive(Debug)]
pub enum Input {
    /// A read-only shared mapping of a regular file.
    Mapped(Mmap),
    /// Bytes read into memory.
    Owned(Vec<u8>),
}

impl Deref for Input {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Input::Mapped(m) => m,
            Input::Owned(v) => v,
        }
    }
}

/// Map `path` read-only.
///
/// # Errors
/// When the file cannot be opened, inspected, mapped or read.
pub fn map(path: &Path) -> Result<Input> {
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("{}: cannot stat", path.display()))?;
    if meta.is_dir() {
        anyhow::bail!("{}: is a directory, not a file", path.display());
    }
    if meta.is_file() && meta.len() > 0 {
        // SAFETY: the mapping is private to this process and read-only. talos
        // inspects files that nobody should be writing while it runs; if
        // another process truncates the file anyway, reads of the vanished
        // pages raise SIGBUS, which ends the process: it never yields a wrong
        // verdict silently. Every parser bounds-checks against the slice length
        // taken once here.
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(&file) }
            .with_context(|| format!("{}: cannot map", path.display()))?;
        return Ok(Input::Mapped(map));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut &file, &mut bytes)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(Input::Owned(bytes))
}

/// Fault `slice` of the mapping `map` in with one
/// `madvise(MADV_POPULATE_READ)` (Linux 5.14+) instead of one page fault
/// per 64 KiB while hashing. Failure (older kernel, slice not in the
/// mapping) only costs speed.
pub fn populate(map: &Mmap, slice: &[u8]) -> bool {
    let off = (slice.as_ptr() as usize).wrapping_sub(map.as_ptr() as usize);
    if off >= map.len() {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        let len = slice.len().min(map.len() - off);
        let _ = map.advise_range(memmap2::Advice::PopulateRead, off, len);
    }
    true
}

/// Parse an address given on the command line: `0x...` or decimal.
///
/// # Errors
/// When `s` is neither.
pub fn parse_addr(s: &str) -> Result<u64> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse::<u64>(),
    };
    r.with_context(|| format!("{s:?} is not an address (0x... or decimal)"))
}
