//! Computing the state digest: the normal form of the regions, the work
//! units hashed in parallel (from the regions' bytes or through a
//! [`PageSource`]), and the roots.

use blake3::hazmat::ChainingValue;
use rayon::prelude::*;

use super::hash::{self, Keys, PAGE, UNIT_PAGES};
use super::{
    DigestOptions, Hash32, MAX_REGIONS, MAX_RSEQ_AREAS, MaskRule, MaskedRange, PAGE_SIZE,
    RSEQ_MASKED_FIELDS, RegionDigest, RegionStatus, StateDigest, check_order, dump_root,
    perms_byte, region_root,
};
use crate::error::{Error, Result};
use crate::region::{Perms, Region, RegionKind};

/// Compute the state digest of `regions`.
///
/// # Errors
/// [`Error::BadRegion`] for an empty or inverted region, one with more bytes
/// than addresses, or a state region whose start is not page-aligned;
/// [`Error::RegionOverlap`] when two regions overlap;
/// [`Error::LimitExceeded`] past [`MAX_REGIONS`] or [`MAX_RSEQ_AREAS`].
pub fn state_digest(regions: &[Region<'_>], options: &DigestOptions) -> Result<StateDigest> {
    state_digest_with(regions, options, &|_: &[u8]| {})
}

/// [`state_digest`], calling `prefetch` with each 1 MiB slice of region bytes
/// right before it is hashed, on the thread that will hash it. A caller that
/// mapped the dump can fault the slice in with one `madvise`
/// (`MADV_POPULATE_READ`) instead of one page fault per 64 KiB (best of
/// ten rounds on a page-cached 2 GiB image: 5.2 against 3.2 GB/s; see
/// `BENCHMARKS.md`). The library itself does no I/O.
///
/// # Errors
/// As [`state_digest`].
pub fn state_digest_with(
    regions: &[Region<'_>],
    options: &DigestOptions,
    prefetch: &(dyn Fn(&[u8]) + Sync),
) -> Result<StateDigest> {
    state_digest_from(regions, options, prefetch, None)
}

/// Memory a state digest reads itself, in bounded pieces, instead of from
/// [`Region::bytes`]: a stopped process whose large regions were left
/// unread (`live::read_deferring`), so that they are read 1 MiB at a time
/// on the thread that hashes them, not copied out whole first.
pub trait PageSource: Sync {
    /// The bytes this source holds for the region `[start, end)` whose
    /// `bytes` are empty; `None` when it holds none (the region is then
    /// digested as it is: nothing held).
    fn held(&self, start: u64, end: u64) -> Option<u64>;
    /// Fill `buf` with the bytes at `addr`; false when they cannot all be
    /// read (the digest then fails: it never hashes part of a region).
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool;
}

/// [`state_digest_with`], reading the regions `source` holds (those with
/// empty `bytes`) through it. The result is the digest the same bytes give
/// when held in the regions.
///
/// # Errors
/// As [`state_digest`], and [`Error::BadRegion`] when `source` cannot read
/// a piece of a region it holds.
pub fn state_digest_from(
    regions: &[Region<'_>],
    options: &DigestOptions,
    prefetch: &(dyn Fn(&[u8]) + Sync),
    source: Option<&dyn PageSource>,
) -> Result<StateDigest> {
    // Bytes held for a region: its own, or what `source` will read. A
    // region without bytes that `source` does not hold holds none (0 is
    // the count, not a stand-in): the digest then records it as absent.
    let held = |r: &Region<'_>| -> u64 {
        match source {
            Some(src) if r.bytes.is_empty() => src.held(r.start, r.end).unwrap_or(0),
            _ => r.bytes.len() as u64,
        }
    };
    if regions.len() > MAX_REGIONS {
        return Err(Error::LimitExceeded {
            what: "regions in a digest",
            count: regions.len() as u64,
            limit: MAX_REGIONS as u64,
        });
    }
    if options.rseq_areas.len() > MAX_RSEQ_AREAS {
        return Err(Error::LimitExceeded {
            what: "rseq areas in a digest",
            count: options.rseq_areas.len() as u64,
            limit: MAX_RSEQ_AREAS as u64,
        });
    }
    let mut order: Vec<&Region<'_>> = regions.iter().collect();
    order.sort_by_key(|r| (r.start, r.end));
    let mut prev_end: Option<u64> = None;
    for r in &order {
        check_order(r.start, r.end, &mut prev_end)?;
        if held(r) > r.len() {
            return Err(Error::BadRegion {
                start: r.start,
                end: r.end,
                detail: "holds more bytes than it is long",
            });
        }
    }

    // The rseq masks as sorted, merged byte ranges of the address space.
    let rseq_on = options.rules.contains(&MaskRule::RseqCpuId);
    let mut areas: Vec<u64> = if rseq_on {
        options.rseq_areas.clone()
    } else {
        Vec::new()
    };
    areas.sort_unstable();
    areas.dedup();
    let mut ranges: Vec<(u64, u64)> = Vec::new(); // [start, end)
    for &a in &areas {
        for (off, len) in RSEQ_MASKED_FIELDS {
            if let Some(s) = a.checked_add(off)
                && let Some(e) = s.checked_add(len)
            {
                ranges.push((s, e));
            }
        }
    }
    let ranges = merge_ranges(ranges);

    // Status of each region, then the normal form: adjacent included
    // regions with the same bound permissions and backing become one
    // (`normalise`), so a split or merge of mappings by the kernel or by
    // CRIU does not change the digest.
    let statuses: Vec<RegionStatus> = order
        .iter()
        .map(
            |r| match MaskRule::for_kind(&r.kind).filter(|m| options.rules.contains(m)) {
                Some(rule) => RegionStatus::Masked(rule),
                None if options.selection.selects(r) => RegionStatus::Included,
                None => RegionStatus::Excluded,
            },
        )
        .collect();
    let mut groups: Vec<std::ops::Range<usize>> = Vec::with_capacity(order.len());
    for (i, (r, st)) in order.iter().zip(&statuses).enumerate() {
        if let Some(g) = groups.last_mut()
            && *st == RegionStatus::Included
            && statuses.get(g.end - 1) == Some(&RegionStatus::Included)
            && let Some(prev) = order.get(g.end - 1)
            && mergeable(
                (prev.start, prev.end, prev.perms, &prev.kind, held(prev)),
                (r.start, r.perms, &r.kind),
            )
        {
            g.end = i + 1;
            continue;
        }
        groups.push(i..i + 1);
    }

    let mut out: Vec<RegionDigest> = Vec::with_capacity(groups.len());
    for g in &groups {
        let (Some(first), Some(last), Some(&status)) = (
            order.get(g.start),
            order.get(g.end - 1),
            statuses.get(g.start),
        ) else {
            continue;
        };
        let (start, end) = (first.start, last.end);
        let masked = match status {
            RegionStatus::Masked(rule) => vec![MaskedRange {
                start,
                len: end - start,
                rule,
            }],
            RegionStatus::Included => {
                if start % PAGE_SIZE != 0 {
                    return Err(Error::BadRegion {
                        start,
                        end: first.end,
                        detail: "state region not page-aligned",
                    });
                }
                clip_ranges(&ranges, start, end)
            }
            RegionStatus::Excluded => Vec::new(),
        };
        let pieces = order.get(g.clone()).unwrap_or(&[]);
        // The name shown: `[heap]` or `[stack]` when a piece has it.
        let kind = pieces
            .iter()
            .map(|r| &r.kind)
            .find(|k| matches!(k, RegionKind::Heap | RegionKind::Stack))
            .unwrap_or(&first.kind)
            .clone();
        out.push(RegionDigest {
            start,
            end,
            perms: first.perms,
            kind,
            status,
            present: pieces.iter().map(|r| held(r)).sum(),
            root: None,
            pages: Vec::new(),
            masked,
        });
    }
    let rseq_unmatched: Vec<u64> = areas
        .iter()
        .copied()
        .filter(|&a| {
            !RSEQ_MASKED_FIELDS.iter().any(|&(off, len)| {
                let Some(s) = a.checked_add(off) else {
                    return false;
                };
                let e = s.saturating_add(len);
                out.iter()
                    .any(|r| r.status == RegionStatus::Included && s < r.end && e > r.start)
            })
        })
        .collect();

    let keys = Keys::new();
    // Work units: up to 1 MiB of one piece. Leaves do not depend on the
    // unit boundaries (each binds its own address); the page tree of a
    // region is built from all its leaves afterwards.
    enum Data<'s> {
        /// Bytes held in the region.
        Held(&'s [u8]),
        /// This many bytes at `base`, read through `source`.
        Read(usize),
    }
    struct Unit<'s> {
        base: u64,
        data: Data<'s>,
        masks: Vec<(usize, usize)>,
        leaves: &'s mut [ChainingValue],
    }
    let mut leaves: Vec<Vec<ChainingValue>> = out
        .iter()
        .map(|d| {
            if d.status == RegionStatus::Included {
                let n = to_usize(d.present.div_ceil(PAGE_SIZE), "pages of a region")?;
                Ok(vec![[0u8; 32]; n])
            } else {
                Ok(Vec::new())
            }
        })
        .collect::<Result<_>>()?;
    let mut units: Vec<Unit<'_>> = Vec::new();
    for ((g, d), l) in groups.iter().zip(&out).zip(leaves.iter_mut()) {
        if d.status != RegionStatus::Included {
            continue;
        }
        let mut slots: &mut [ChainingValue] = l.as_mut_slice();
        for r in order.get(g.clone()).unwrap_or(&[]) {
            let r_held = to_usize(held(r), "bytes of a region")?;
            let n = r_held.div_ceil(PAGE).min(slots.len());
            let (mine, rest) = std::mem::take(&mut slots).split_at_mut(n);
            slots = rest;
            let pieces: Vec<Data<'_>> = if r.bytes.is_empty() {
                (0..r_held)
                    .step_by(UNIT_PAGES * PAGE)
                    .map(|off| Data::Read((r_held - off).min(UNIT_PAGES * PAGE)))
                    .collect()
            } else {
                r.bytes.chunks(UNIT_PAGES * PAGE).map(Data::Held).collect()
            };
            for (u, (data, unit_slots)) in pieces
                .into_iter()
                .zip(mine.chunks_mut(UNIT_PAGES))
                .enumerate()
            {
                let off = u * UNIT_PAGES * PAGE;
                let base = r.start.saturating_add(off as u64);
                let len = match &data {
                    Data::Held(d) => d.len(),
                    Data::Read(n) => *n,
                };
                let end = base.saturating_add(len as u64);
                let masks = clip_ranges(&ranges, base, end)
                    .iter()
                    .filter_map(|m| {
                        let o = usize::try_from(m.start - base).ok()?;
                        Some((o, usize::try_from(m.len).ok()?))
                    })
                    .collect();
                units.push(Unit {
                    base,
                    data,
                    masks,
                    leaves: unit_slots,
                });
            }
        }
    }
    // The first piece `source` could not read, as (address, length).
    let unread: std::sync::Mutex<Option<(u64, usize)>> = std::sync::Mutex::new(None);
    units
        .into_par_iter()
        .for_each_init(Vec::new, |buf: &mut Vec<u8>, u| match u.data {
            Data::Held(data) => {
                prefetch(data);
                hash::page_cvs(&keys, u.base, data, &u.masks, u.leaves);
            }
            Data::Read(len) => {
                buf.resize(len, 0);
                let read = match (source, buf.get_mut(..len)) {
                    (Some(src), Some(b)) => src.read(u.base, b).then_some(&*b),
                    _ => None,
                };
                match read {
                    Some(data) => hash::page_cvs(&keys, u.base, data, &u.masks, u.leaves),
                    None => {
                        if let Ok(mut first) = unread.lock()
                            && first.is_none_or(|(a, _)| u.base < a)
                        {
                            *first = Some((u.base, len));
                        }
                    }
                }
            }
        });
    match unread.into_inner() {
        Ok(None) => {}
        Ok(Some((addr, len))) => {
            return Err(Error::BadRegion {
                start: addr,
                end: addr.saturating_add(len as u64),
                detail: "its bytes could not be read for the digest",
            });
        }
        // A hashing thread panicked holding the lock: nothing is known.
        Err(_) => {
            return Err(Error::BadRegion {
                start: 0,
                end: 0,
                detail: "the digest's reads failed",
            });
        }
    }

    let (mut pages, mut bytes, mut missing) = (0u64, 0u64, 0u64);
    let mut roots = Vec::new();
    for (d, l) in out.iter_mut().zip(leaves) {
        if d.status != RegionStatus::Included {
            continue;
        }
        let tree = hash::tree_cv(&keys, &l);
        let root = region_root(d, &tree);
        d.root = Some(root);
        roots.push(root);
        pages = pages.saturating_add(l.len() as u64);
        bytes = bytes.saturating_add(d.present);
        missing = missing.saturating_add(d.missing());
        d.pages = l.into_iter().map(Hash32).collect();
    }
    Ok(StateDigest {
        root: dump_root(options.selection, &options.rules, &roots),
        selection: options.selection,
        rules: options.rules.clone(),
        regions: out,
        pages,
        bytes,
        missing,
        rseq_unmatched,
    })
}

/// Whether a region `b` directly after `a` is the same mapping in the
/// digest's normal form: `a` ends on a page and is held whole, `b` starts
/// where `a` ends, both have the same bound permissions (write and
/// execute: see [`perms_byte`]), and the same backing: both anonymous
/// (anonymous memory, `[heap]`, `[stack]`), or both the same file at
/// consecutive offsets. The kernel merges such mappings when it can, and
/// CRIU restores them as it finds them, so a digest that must hold across
/// a migration cannot bind where one ends and the next begins.
pub(super) fn mergeable(
    (a_start, a_end, a_perms, a_kind, a_held): (u64, u64, Perms, &RegionKind, u64),
    (b_start, b_perms, b_kind): (u64, Perms, &RegionKind),
) -> bool {
    let anon = |k: &RegionKind| {
        matches!(
            k,
            RegionKind::Anonymous | RegionKind::Heap | RegionKind::Stack
        )
    };
    a_end == b_start
        && a_end % PAGE_SIZE == 0
        && a_held == a_end - a_start
        && perms_byte(a_perms) == perms_byte(b_perms)
        && match (a_kind, b_kind) {
            (a, b) if anon(a) && anon(b) => true,
            (
                RegionKind::File {
                    path: pa,
                    offset: oa,
                },
                RegionKind::File {
                    path: pb,
                    offset: ob,
                },
            ) => pa == pb && oa.checked_add(a_end - a_start) == Some(*ob),
            _ => false,
        }
}

/// Sort and merge overlapping or touching `[start, end)` ranges.
fn merge_ranges(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// The parts of the merged rseq ranges inside `[start, end)`.
fn clip_ranges(ranges: &[(u64, u64)], start: u64, end: u64) -> Vec<MaskedRange> {
    let lo = ranges.partition_point(|&(_, e)| e <= start);
    ranges
        .get(lo..)
        .unwrap_or(&[])
        .iter()
        .take_while(|&&(s, _)| s < end)
        .map(|&(s, e)| {
            let s = s.max(start);
            MaskedRange {
                start: s,
                len: e.min(end) - s,
                rule: MaskRule::RseqCpuId,
            }
        })
        .collect()
}

/// `n` as a `usize`: on a 32-bit host a region can hold more pages or bytes
/// than one, and hashing none of them would pass for an empty region.
fn to_usize(n: u64, what: &'static str) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::LimitExceeded {
        what,
        count: n,
        limit: usize::MAX as u64,
    })
}
