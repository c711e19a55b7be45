//! Raw memory images: the bytes of memory starting at a known address, with
//! no headers (an enclave's pages dumped by a debugger, a region carved out
//! of a larger image).
//!
//! Without a binary the image is one region of the given protections and
//! nothing can be compared. With the binary it was loaded from, the image is
//! cut along the binary's `PT_LOAD` segments (page-granular, as a loader
//! maps them) into regions with the segments' protections, each recorded as
//! a file mapping of the binary, so the image verifies like a core.

use std::borrow::Cow;

use talos_cfg::Image;

use crate::dump::{Arch, Dump, FileMapping, Source};
use crate::region::{Perms, Region, RegionKind};

/// A raw image of `bytes` at `base`. With `binary` (its loaded image and
/// path), the image is laid out as that binary loaded at `base`.
#[must_use]
pub fn dump<'a>(
    bytes: &'a [u8],
    base: u64,
    perms: Perms,
    arch: Arch,
    binary: Option<(&Image<'_>, &str)>,
    page_size: u64,
) -> Dump<'a> {
    let Some((img, path)) = binary else {
        return Dump::from_raw(bytes, base, perms, arch);
    };
    let mut d = Dump::new(Source::Raw, img.arch);
    let page = page_size.max(1);
    let mask = !(page - 1);
    let bias = base.wrapping_sub(img.base);
    let image_end = base.saturating_add(bytes.len() as u64);
    for s in &img.segments {
        let start = (s.vaddr & mask).wrapping_add(bias);
        let end = s.vaddr.saturating_add(s.mem_size).saturating_add(page - 1) & mask;
        let end = end.wrapping_add(bias);
        if end <= start {
            continue;
        }
        if let Some(last) = d.regions.last()
            && start < last.end
        {
            d.anomaly(
                "overlapping-segments",
                format!(
                    "{path}: segment at {:#x} shares a page with the previous one; its region is left out",
                    s.vaddr
                ),
            );
            continue;
        }
        let held: &[u8] = if start >= base && start < image_end {
            let from = usize::try_from(start - base).unwrap_or(usize::MAX);
            let to = usize::try_from(end.min(image_end) - base).unwrap_or(usize::MAX);
            bytes.get(from..to).unwrap_or(&[])
        } else {
            &[]
        };
        let offset = s.offset & mask;
        d.regions.push(Region {
            start,
            end,
            perms: Perms {
                read: s.perms.read,
                write: s.perms.write,
                execute: s.perms.execute,
            },
            kind: RegionKind::File {
                path: path.to_string(),
                offset,
            },
            bytes: Cow::Borrowed(held),
        });
        d.file_mappings.push(FileMapping {
            start,
            end,
            offset,
            path: path.to_string(),
        });
    }
    if d.regions.is_empty() {
        return Dump::from_raw(bytes, base, perms, arch);
    }
    d.notes.push(format!(
        "raw image of {} bytes at {base:#x} laid out as {path} (load bias {bias:#x})",
        bytes.len()
    ));
    d
}
