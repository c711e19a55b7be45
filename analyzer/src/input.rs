//! Mapping input files. One of the two places in talos that use `unsafe`
//! (the other sets an allocator option in `main.rs`).

use std::fs::File;
use std::ops::Deref;
use std::path::Path;

use anyhow::{Context, Result};
use memmap2::Mmap;

/// Bytes of an input file: memory-mapped when possible, read otherwise
/// (empty files, pipes, and special files cannot be mapped).
#[derive(Debug)]
pub enum Input {
    /// A read-only shared mapping of a regular file, and the file it maps
    /// (read again through the descriptor by [`Input::blake3`]).
    Mapped(Mmap, File),
    /// Bytes read into memory.
    Owned(Vec<u8>),
}

impl Deref for Input {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Input::Mapped(m, _) => m,
            Input::Owned(v) => v,
        }
    }
}

/// How much of a mapped file [`Input::blake3`] reads at a time.
const HASH_CHUNK: usize = 8 << 20;

impl Input {
    /// BLAKE3 of the whole input, `path` naming it in errors.
    ///
    /// A mapped file is hashed from its descriptor with positioned reads,
    /// not through the mapping. The bytes are the same (both read the one
    /// page cache of the same inode), but touching every page of a mapping
    /// makes all of it resident in this process, where pages read into a
    /// reused buffer are not: hashing node's 94 MiB through the mapping
    /// added 46 MiB to the peak RSS of `talos cfg` (BENCHMARKS.md, issue
    /// 13). A file that became shorter than its mapping is an error, never
    /// a hash of fewer bytes.
    ///
    /// # Errors
    /// When the file cannot be read back to the length that was mapped.
    pub fn blake3(&self, path: &Path) -> Result<blake3::Hash> {
        use std::os::unix::fs::FileExt;
        let mut h = blake3::Hasher::new();
        match self {
            Input::Owned(v) => hash_into(&mut h, v),
            Input::Mapped(m, file) => {
                let mut buf = vec![0u8; HASH_CHUNK.min(m.len())];
                let mut off = 0usize;
                while off < m.len() {
                    let n = HASH_CHUNK.min(m.len() - off);
                    let chunk = buf.get_mut(..n).context("hash buffer")?;
                    file.read_exact_at(chunk, off as u64).with_context(|| {
                        format!(
                            "{}: cannot read back {n} bytes at offset {off} (the file changed while talos read it?)",
                            path.display()
                        )
                    })?;
                    hash_into(&mut h, chunk);
                    off += n;
                }
            }
        }
        Ok(h.finalize())
    }
}

/// Add `bytes` to `h`, on every core when there is enough to share.
fn hash_into(h: &mut blake3::Hasher, bytes: &[u8]) {
    if bytes.len() > (1 << 20) {
        h.update_rayon(bytes);
    } else {
        h.update(bytes);
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
        return Ok(Input::Mapped(map, file));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Bytes that differ from chunk to chunk, so a chunk read at the wrong
    /// offset changes the hash.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| {
                (i as u64)
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    .rotate_left(17) as u8
            })
            .collect()
    }

    #[test]
    fn mapped_file_hashes_as_its_bytes_across_chunks() {
        for len in [1, 4096, HASH_CHUNK - 1, HASH_CHUNK, 2 * HASH_CHUNK + 12_345] {
            let bytes = pattern(len);
            let mut f = tempfile::NamedTempFile::new().unwrap();
            f.write_all(&bytes).unwrap();
            let input = map(f.path()).unwrap();
            assert!(matches!(input, Input::Mapped(..)), "{len}");
            assert_eq!(
                input.blake3(f.path()).unwrap(),
                blake3::hash(&bytes),
                "{len}"
            );
            let owned = Input::Owned(bytes.clone());
            assert_eq!(
                owned.blake3(f.path()).unwrap(),
                blake3::hash(&bytes),
                "{len}"
            );
        }
    }

    #[test]
    fn a_file_cut_short_after_mapping_is_an_error_naming_it() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&pattern(HASH_CHUNK + 100)).unwrap();
        let input = map(f.path()).unwrap();
        // Only the descriptor is read: the vanished pages of the mapping
        // are never touched.
        f.as_file().set_len(HASH_CHUNK as u64).unwrap();
        let err = format!("{:#}", input.blake3(f.path()).unwrap_err());
        assert!(err.contains(&f.path().display().to_string()), "{err}");
        assert!(err.contains("cannot read back"), "{err}");
    }
}
