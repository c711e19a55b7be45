//! CRIU's image framing: magic words, then size-prefixed protobuf entries.
//!
//! Every image except `inventory.img` and the raw ones (`pages-*.img`)
//! starts with two little-endian words, `IMG_COMMON_MAGIC` and the image
//! type's own magic (`criu/include/magic.h`); `inventory.img` starts with
//! its magic alone. Then come entries: a little-endian `u32` length and
//! that many bytes of one protobuf message. Every length is checked against
//! what is left of the file before anything is decoded.

use prost::Message;

use crate::error::{Error, Result};

/// First word of every image but the inventory and raw images.
pub const IMG_COMMON_MAGIC: u32 = 0x5456_4319;
/// First word of CRIU's service files (`stats-dump`, `irmap-cache`).
pub const IMG_SERVICE_MAGIC: u32 = 0x5510_5940;
/// `inventory.img`.
pub const INVENTORY_MAGIC: u32 = 0x5831_3116;
/// `pstree.img`.
pub const PSTREE_MAGIC: u32 = 0x5027_3030;
/// `pagemap-*.img`.
pub const PAGEMAP_MAGIC: u32 = 0x5608_4025;
/// `core-*.img`.
pub const CORE_MAGIC: u32 = 0x5505_3847;
/// `mm-*.img`.
pub const MM_MAGIC: u32 = 0x5749_2820;
/// `files.img`.
pub const FILES_MAGIC: u32 = 0x5630_3138;

/// Most entries read from one image.
pub const MAX_ENTRIES: usize = 1 << 22;

/// One image file: its name (for messages) and bytes.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    /// File name inside the image directory.
    pub name: &'a str,
    /// Its bytes.
    pub bytes: &'a [u8],
}

fn word(bytes: &[u8], off: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// The entries of an image whose type magic is `magic`, as raw protobuf
/// payloads in file order.
///
/// # Errors
/// [`Error::Malformed`] for a wrong magic, a length running past the end,
/// or a trailing fragment shorter than a length word; [`Error::LimitExceeded`]
/// past [`MAX_ENTRIES`].
pub fn entries<'a>(img: Image<'a>, magic: u32) -> Result<Vec<&'a [u8]>> {
    let bad = |detail: String| Error::Malformed {
        what: "CRIU image",
        detail: format!("{}: {detail}", img.name),
    };
    let mut pos = if magic == INVENTORY_MAGIC {
        match word(img.bytes, 0) {
            Some(m) if m == magic => 4usize,
            Some(m) => return Err(bad(format!("magic {m:#010x}, expected {magic:#010x}"))),
            None => return Err(bad("shorter than its magic word".into())),
        }
    } else {
        match (word(img.bytes, 0), word(img.bytes, 4)) {
            (Some(IMG_COMMON_MAGIC), Some(m)) if m == magic => 8usize,
            (Some(IMG_COMMON_MAGIC), Some(m)) => {
                return Err(bad(format!(
                    "image type magic {m:#010x}, expected {magic:#010x}"
                )));
            }
            (Some(m), Some(_)) => {
                return Err(bad(format!(
                    "magic {m:#010x}, expected CRIU's {IMG_COMMON_MAGIC:#010x}"
                )));
            }
            _ => return Err(bad("shorter than its two magic words".into())),
        }
    };
    let mut out = Vec::new();
    while pos < img.bytes.len() {
        if out.len() >= MAX_ENTRIES {
            return Err(Error::LimitExceeded {
                what: "entries in one CRIU image",
                count: out.len() as u64 + 1,
                limit: MAX_ENTRIES as u64,
            });
        }
        let Some(len) = word(img.bytes, pos) else {
            return Err(bad(format!(
                "{} trailing bytes at offset {pos:#x}, shorter than an entry length",
                img.bytes.len() - pos
            )));
        };
        let start = pos + 4;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e <= img.bytes.len())
            .ok_or_else(|| {
                bad(format!(
                    "entry at offset {pos:#x} declares {len} bytes, {} are left",
                    img.bytes.len().saturating_sub(start)
                ))
            })?;
        out.push(img.bytes.get(start..end).unwrap_or(&[]));
        pos = end;
    }
    Ok(out)
}

/// Decode one protobuf entry as `M`.
///
/// # Errors
/// [`Error::Malformed`] naming the image and entry.
pub fn decode<M: Message + Default>(img: Image<'_>, index: usize, bytes: &[u8]) -> Result<M> {
    M::decode(bytes).map_err(|e| Error::Malformed {
        what: "CRIU image",
        detail: format!("{}: entry {index}: {e}", img.name),
    })
}

/// Decode every entry of an image as `M`.
///
/// # Errors
/// As [`entries`] and [`decode`].
pub fn decode_all<M: Message + Default>(img: Image<'_>, magic: u32) -> Result<Vec<M>> {
    entries(img, magic)?
        .into_iter()
        .enumerate()
        .map(|(i, b)| decode(img, i, b))
        .collect()
}

/// The first entry of an image, which must exist.
///
/// # Errors
/// As [`decode_all`], or [`Error::Malformed`] when the image has no entry.
pub fn decode_one<M: Message + Default>(img: Image<'_>, magic: u32) -> Result<M> {
    let e = entries(img, magic)?;
    let first = e.first().ok_or_else(|| Error::Malformed {
        what: "CRIU image",
        detail: format!("{}: no entry", img.name),
    })?;
    decode(img, 0, first)
}
