//! The code measurement `talos.code/1`: one digest of a binary's executable
//! code that can be computed both from the binary file and from the memory
//! of a process that loaded it.
//!
//! The measurement covers the file-backed bytes of every executable loadable
//! segment (ELF `PT_LOAD` with `PF_X`, PE executable sections), in address
//! order, each addressed relative to the image base, so it does not depend
//! on where the loader put the image. Bytes a loader never takes from the
//! file (the zero-filled tail past `p_filesz`) are not code the file
//! decides and are left out.
//!
//! ```text
//! code = BLAKE3.derive_key("talos 2026-11 code measurement v1",
//!            LE64(n) || n × ( LE64(vaddr - base) || LE64(filesz) || bytes ))
//! ```
//!
//! `base` is the image base of [`Image::base`] (for ELF the lowest `PT_LOAD`
//! address rounded down to 4 KiB). The memory side
//! (`talos_introspect::measure`) reads the same segments through the
//! process's own program headers and the module's load bias, and hashes
//! them with [`measure_segments`], so a process whose executable bytes are
//! exactly the binary's gives exactly the binary's measurement.

use crate::error::{Error, Result};
use crate::image::Image;

/// Scheme label of the code measurement.
pub const CODE_SCHEME: &str = "talos.code/1";
/// BLAKE3 `derive_key` context of the code measurement.
pub const CODE_CONTEXT: &str = "talos 2026-11 code measurement v1";

/// One executable segment's file-backed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeSegment<'a> {
    /// Link address of the first byte minus the image base.
    pub offset: u64,
    /// The bytes (`filesz` of them).
    pub bytes: &'a [u8],
}

/// The measurement of `segments`, which must be in increasing `offset`
/// order (the caller's order is hashed as given: two orders are two
/// different measurements).
#[must_use]
pub fn measure_segments(segments: &[CodeSegment<'_>]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(CODE_CONTEXT);
    h.update(&(segments.len() as u64).to_le_bytes());
    for s in segments {
        h.update(&s.offset.to_le_bytes());
        h.update(&(s.bytes.len() as u64).to_le_bytes());
        h.update(s.bytes);
    }
    *h.finalize().as_bytes()
}

/// The executable segments of `image` with file bytes, in address order.
///
/// # Errors
/// [`Error::NoCode`] when the image has no executable bytes;
/// [`Error::Malformed`] when a segment's file bytes are not in the file (the loader checks this, so
/// only a hand-built [`Image`] can trip it).
pub fn code_segments<'a>(image: &Image<'a>) -> Result<Vec<CodeSegment<'a>>> {
    let mut segs: Vec<_> = image
        .segments
        .iter()
        .filter(|s| s.perms.execute && s.file_size > 0)
        .collect();
    segs.sort_by_key(|s| s.vaddr);
    let mut out = Vec::with_capacity(segs.len());
    for s in segs {
        let start = usize::try_from(s.offset).ok();
        let end = s
            .offset
            .checked_add(s.file_size)
            .and_then(|e| usize::try_from(e).ok());
        let bytes = start
            .zip(end)
            .and_then(|(a, b)| image.bytes.get(a..b))
            .ok_or_else(|| Error::Malformed {
                what: "executable segment",
                detail: format!(
                    "file bytes of the segment at {:#x} are not in the file",
                    s.vaddr
                ),
            })?;
        out.push(CodeSegment {
            offset: s.vaddr.wrapping_sub(image.base),
            bytes,
        });
    }
    if out.is_empty() {
        return Err(Error::NoCode);
    }
    Ok(out)
}

/// The `talos.code/1` measurement of a loaded binary.
///
/// # Errors
/// As [`code_segments`].
pub fn code_measurement(image: &Image<'_>) -> Result<[u8; 32]> {
    Ok(measure_segments(&code_segments(image)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn encoding_is_length_prefixed_and_ordered() {
        let a = CodeSegment {
            offset: 0x1000,
            bytes: b"\x90\xc3",
        };
        let b = CodeSegment {
            offset: 0x2000,
            bytes: b"\xc3",
        };
        let m = measure_segments(&[a, b]);
        let mut manual = Vec::new();
        manual.extend_from_slice(&2u64.to_le_bytes());
        for s in [a, b] {
            manual.extend_from_slice(&s.offset.to_le_bytes());
            manual.extend_from_slice(&(s.bytes.len() as u64).to_le_bytes());
            manual.extend_from_slice(s.bytes);
        }
        assert_eq!(m, blake3::derive_key(CODE_CONTEXT, &manual));
        // Moving a byte across the segment boundary, reordering, or
        // shifting a segment changes the measurement.
        let moved = [
            CodeSegment {
                offset: 0x1000,
                bytes: b"\x90",
            },
            CodeSegment {
                offset: 0x2000,
                bytes: b"\xc3\xc3",
            },
        ];
        assert_ne!(measure_segments(&moved), m);
        assert_ne!(measure_segments(&[b, a]), m);
        let shifted = CodeSegment {
            offset: 0x1001,
            ..a
        };
        assert_ne!(measure_segments(&[shifted, b]), m);
    }

    #[test]
    fn sample_binary_has_one_code_segment() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/samples/demo-x86_64");
        let Ok(bytes) = std::fs::read(path) else {
            return;
        };
        let img = crate::load(&bytes).unwrap();
        let segs = code_segments(&img).unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].offset, 0x1000);
        assert_eq!(code_measurement(&img).unwrap(), measure_segments(&segs));
    }
}
