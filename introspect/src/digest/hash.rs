//! The hashing kernels of the state digest: page leaves as BLAKE3 subtree
//! chaining values, the page tree of a region, and the region and dump roots.
//!
//! Page leaves are computed many pages at a time so that BLAKE3's SIMD
//! kernels run with every lane full (16 chunks, i.e. 4 pages, per AVX-512
//! pass). The one function that does this, [`page_cvs`], uses
//! `blake3::platform::Platform::hash_many`, a safe but `#[doc(hidden)]` entry
//! point of the `blake3` crate; every result it produces is checked in the
//! tests against the crate's documented `hazmat` API ([`page_cv_reference`]).
//! If a future `blake3` release removes or changes that entry point, the build
//! or those tests fail; nothing can silently produce a different digest.

use blake3::hazmat::{ChainingValue, HasherExt, hash_derive_key_context};
use blake3::platform::Platform;

/// Bytes in a page, the leaf of the digest.
pub const PAGE: usize = 4096;
/// Bytes in a page (the leaf of the digest), as u64.
pub const PAGE_U64: u64 = 4096;
/// Bytes in a BLAKE3 chunk.
const CHUNK: usize = blake3::CHUNK_LEN;
/// Chunks in a page.
const CHUNKS_PER_PAGE: usize = PAGE / CHUNK;
/// Pages hashed per SIMD batch (64 chunks; AVX-512 runs 16 at a time).
const BATCH_PAGES: usize = 16;
/// Pages per parallel work unit: 1 MiB. A power of two, so a unit is a
/// subtree of the page tree.
pub const UNIT_PAGES: usize = 256;

/// Context string of the page leaves (BLAKE3 `derive_key` mode).
pub const CONTEXT_PAGE: &str = "talos 2026-11 state-digest page v1";
/// Context string of the parent nodes of the page tree.
pub const CONTEXT_TREE: &str = "talos 2026-11 state-digest tree v1";
/// Context string of a region root.
pub const CONTEXT_REGION: &str = "talos 2026-11 state-digest region v1";
/// Context string of the dump root.
pub const CONTEXT_DUMP: &str = "talos 2026-11 state-digest dump v1";

// BLAKE3 domain flags (BLAKE3 specification, table 3). Fixed by the spec.
const CHUNK_START: u8 = 1;
const CHUNK_END: u8 = 1 << 1;
const PARENT: u8 = 1 << 2;
const DERIVE_KEY_MATERIAL: u8 = 1 << 6;

/// The derived keys, computed once per digest.
#[derive(Clone)]
pub(crate) struct Keys {
    /// Context key of [`CONTEXT_PAGE`].
    pub page: [u8; 32],
    /// The same as little-endian words, for `hash_many`.
    page_words: [u32; 8],
    /// Context key of [`CONTEXT_TREE`] (the slow reference path uses it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub tree: [u8; 32],
    /// The same as words.
    tree_words: [u32; 8],
    platform: Platform,
}

impl Keys {
    pub(crate) fn new() -> Self {
        let page = hash_derive_key_context(CONTEXT_PAGE);
        let tree = hash_derive_key_context(CONTEXT_TREE);
        Keys {
            page,
            page_words: words(&page),
            tree,
            tree_words: words(&tree),
            platform: Platform::detect(),
        }
    }
}

#[cfg(test)]
impl Keys {
    /// The keys with a given SIMD implementation (tests compare them all).
    pub(crate) fn with_platform(platform: Platform) -> Self {
        Keys {
            platform,
            ..Keys::new()
        }
    }
}

fn words(key: &[u8; 32]) -> [u32; 8] {
    let mut w = [0u32; 8];
    for (word, bytes) in w.iter_mut().zip(key.chunks_exact(4)) {
        let mut b = [0u8; 4];
        b.copy_from_slice(bytes);
        *word = u32::from_le_bytes(b);
    }
    w
}

/// A zero chunk used only to initialise reference arrays.
static ZERO_CHUNK: [u8; CHUNK] = [0; CHUNK];
static ZERO_BLOCK: [u8; 64] = [0; 64];

/// The leaf of one page, the slow and obviously correct way: the BLAKE3
/// chaining value of `bytes` as the subtree that starts at input offset
/// `vaddr`, in `derive_key` mode with [`CONTEXT_PAGE`].
///
/// `vaddr` must be a multiple of [`PAGE`] and `bytes` 1 to 4096 bytes long
/// (callers guarantee both).
pub(crate) fn page_cv_reference(keys: &Keys, vaddr: u64, bytes: &[u8]) -> ChainingValue {
    let mut h = blake3::Hasher::new_from_context_key(&keys.page);
    h.set_input_offset(vaddr);
    h.update(bytes);
    h.finalize_non_root()
}

/// Leaves of consecutive pages: page `i` is `data[i*4096..]` at virtual
/// address `base + i*4096`. The last page may be short. Bytes at the
/// offsets in `masks` (`(offset, len)` into `data`, sorted, in bounds) are
/// replaced by zero before hashing. `out` has one slot per page.
///
/// `base` must be a multiple of [`PAGE`] and `data` non-empty.
pub(crate) fn page_cvs(
    keys: &Keys,
    base: u64,
    data: &[u8],
    masks: &[(usize, usize)],
    out: &mut [ChainingValue],
) {
    // Masked pages are copied here, masked, and hashed from the copy.
    let mut scratch: Vec<u8> = Vec::new();
    let mut chunk_cvs = [0u8; BATCH_PAGES * CHUNKS_PER_PAGE * 32];
    let mut level1 = [0u8; BATCH_PAGES * 2 * 32];
    let mut level2 = [0u8; BATCH_PAGES * 32];
    let full_pages = data.len() / PAGE;
    let mut page = 0usize;
    let mut out_iter = out.iter_mut();
    while page < full_pages {
        let n = (full_pages - page).min(BATCH_PAGES);
        let start = page * PAGE;
        let Some(batch) = data.get(start..start + n * PAGE) else {
            return;
        };
        let batch_masks = masks_in(masks, start, n * PAGE);
        let src: &[u8] = if batch_masks.is_empty() {
            batch
        } else {
            scratch.clear();
            scratch.extend_from_slice(batch);
            apply_masks(&mut scratch, batch_masks, start);
            &scratch
        };
        let mut refs: [&[u8; CHUNK]; BATCH_PAGES * CHUNKS_PER_PAGE] =
            [&ZERO_CHUNK; BATCH_PAGES * CHUNKS_PER_PAGE];
        let nchunks = n * CHUNKS_PER_PAGE;
        for (r, c) in refs.iter_mut().zip(src.chunks_exact(CHUNK)) {
            if let Ok(c) = <&[u8; CHUNK]>::try_from(c) {
                *r = c;
            }
        }
        let vaddr = base.wrapping_add(start as u64);
        let (Some(refs), Some(cvs)) = (refs.get(..nchunks), chunk_cvs.get_mut(..nchunks * 32))
        else {
            return;
        };
        keys.platform.hash_many(
            refs,
            &keys.page_words,
            vaddr / CHUNK as u64,
            blake3::IncrementCounter::Yes,
            DERIVE_KEY_MATERIAL,
            CHUNK_START,
            CHUNK_END,
            cvs,
        );
        let (Some(l1), Some(l2)) = (level1.get_mut(..n * 64), level2.get_mut(..n * 32)) else {
            return;
        };
        parents(keys, &keys.page_words, cvs, l1);
        parents(keys, &keys.page_words, l1, l2);
        for cv in l2.chunks_exact(32) {
            if let Some(slot) = out_iter.next() {
                slot.copy_from_slice(cv);
            }
        }
        page += n;
    }
    let tail_start = full_pages * PAGE;
    if let Some(tail) = data.get(tail_start..)
        && !tail.is_empty()
    {
        let tail_masks = masks_in(masks, tail_start, tail.len());
        let vaddr = base.wrapping_add(tail_start as u64);
        let cv = if tail_masks.is_empty() {
            page_cv_reference(keys, vaddr, tail)
        } else {
            let mut copy = tail.to_vec();
            apply_masks(&mut copy, tail_masks, tail_start);
            page_cv_reference(keys, vaddr, &copy)
        };
        if let Some(slot) = out_iter.next() {
            *slot = cv;
        }
    }
}

/// The masks that intersect `[start, start + len)`; `masks` is sorted by
/// offset and its ranges do not overlap.
fn masks_in(masks: &[(usize, usize)], start: usize, len: usize) -> &[(usize, usize)] {
    let end = start.saturating_add(len);
    let lo = masks.partition_point(|&(o, l)| o.saturating_add(l) <= start);
    let hi = masks.partition_point(|&(o, _)| o < end);
    masks.get(lo..hi.max(lo)).unwrap_or(&[])
}

/// Zero the masked bytes of `buf`, which holds `data[origin..]`.
fn apply_masks(buf: &mut [u8], masks: &[(usize, usize)], origin: usize) {
    for &(off, len) in masks {
        let a = off.saturating_sub(origin);
        let b = off
            .saturating_add(len)
            .saturating_sub(origin)
            .min(buf.len());
        if let Some(s) = buf.get_mut(a..b) {
            s.fill(0);
        }
    }
}

/// One level of parent nodes: every 64-byte block of `children` (two child
/// chaining values) becomes one 32-byte chaining value in `out`, keyed with
/// `key` in `derive_key` mode. `children.len()` is a multiple of 64 and
/// `out.len() == children.len() / 2`.
fn parents(keys: &Keys, key: &[u32; 8], children: &[u8], out: &mut [u8]) {
    const WIDE: usize = 16;
    for (blocks, dst) in children.chunks(64 * WIDE).zip(out.chunks_mut(32 * WIDE)) {
        let mut refs: [&[u8; 64]; WIDE] = [&ZERO_BLOCK; WIDE];
        let mut n = 0;
        for (r, b) in refs.iter_mut().zip(blocks.chunks_exact(64)) {
            if let Ok(b) = <&[u8; 64]>::try_from(b) {
                *r = b;
                n += 1;
            }
        }
        let (Some(refs), Some(dst)) = (refs.get(..n), dst.get_mut(..n * 32)) else {
            return;
        };
        keys.platform.hash_many(
            refs,
            key,
            0,
            blake3::IncrementCounter::No,
            DERIVE_KEY_MATERIAL | PARENT,
            0,
            0,
            dst,
        );
    }
}

/// The root chaining value of the page tree over `leaves`: the leaf itself
/// for one leaf, all zero for none; otherwise adjacent pairs are merged level
/// by level with [`CONTEXT_TREE`] parent nodes, an odd last node moving up
/// unchanged (the left-complete shape of BLAKE3's own tree).
pub(crate) fn tree_cv(keys: &Keys, leaves: &[ChainingValue]) -> ChainingValue {
    match leaves {
        [] => [0; 32],
        [one] => *one,
        _ => {
            let mut level: Vec<u8> = leaves.as_flattened().to_vec();
            while level.len() > 32 {
                let pairs = level.len() / 64;
                let mut next = vec![0u8; pairs * 32];
                if let Some(full) = level.get(..pairs * 64) {
                    parents(keys, &keys.tree_words, full, &mut next);
                }
                if level.len() % 64 == 32
                    && let Some(odd) = level.get(pairs * 64..)
                {
                    next.extend_from_slice(odd);
                }
                level = next;
            }
            let mut root = [0u8; 32];
            if let Some(r) = level.get(..32) {
                root.copy_from_slice(r);
            }
            root
        }
    }
}

/// The page-tree root computed recursively with the public `hazmat` API:
/// the left subtree takes the largest power of two of leaves strictly below
/// the count. The reference for [`tree_cv`].
#[cfg(test)]
pub(crate) fn tree_cv_reference(keys: &Keys, leaves: &[ChainingValue]) -> ChainingValue {
    match leaves {
        [] => [0; 32],
        [one] => *one,
        _ => {
            let mut left = 1;
            while left * 2 < leaves.len() {
                left *= 2;
            }
            let (l, r) = leaves.split_at(left);
            blake3::hazmat::merge_subtrees_non_root(
                &tree_cv_reference(keys, l),
                &tree_cv_reference(keys, r),
                blake3::hazmat::Mode::DeriveKeyMaterial(&keys.tree),
            )
        }
    }
}
