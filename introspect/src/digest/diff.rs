//! Comparing two state digests: which regions and which pages differ.

use std::collections::BTreeMap;

use super::{Hash32, PAGE_SIZE, RegionDigest, RegionStatus, StateDigest};
use crate::error::{Error, Result};
use crate::region::Perms;

/// How a page differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageChange {
    /// Both digests hold the page, with different bytes.
    Modified,
    /// Only the first digest holds the page (the second lacks the region,
    /// does not count it as state, or its dump left the page out).
    OnlyA,
    /// Only the second digest holds the page.
    OnlyB,
}

impl PageChange {
    /// The name used in outputs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            PageChange::Modified => "modified",
            PageChange::OnlyA => "only_a",
            PageChange::OnlyB => "only_b",
        }
    }
}

/// A run of consecutive pages that differ the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageRun {
    /// Address of the first page.
    pub start: u64,
    /// Number of pages.
    pub count: u64,
    /// How they differ.
    pub change: PageChange,
}

/// One side of a region that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionSide {
    /// One past the last address.
    pub end: u64,
    /// Permissions.
    pub perms: Perms,
    /// Its status in that digest.
    pub status: RegionStatus,
    /// Bytes the dump holds.
    pub present: u64,
    /// Region root, when included.
    pub root: Option<Hash32>,
    /// The path column.
    pub path: Option<String>,
}

/// A region (keyed by its start address) that differs between the digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionDelta {
    /// First address.
    pub start: u64,
    /// The region in the first digest, if it has one starting here.
    pub a: Option<RegionSide>,
    /// The region in the second digest.
    pub b: Option<RegionSide>,
    /// What differs: `added`, `removed`, `status`, `size`, `perms`,
    /// `bytes-held`, `masks`, `pages`.
    pub reasons: Vec<&'static str>,
}

/// The result of [`diff`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestDiff {
    /// Whether the dump roots are equal.
    pub equal: bool,
    /// Root of the first digest.
    pub root_a: Hash32,
    /// Root of the second digest.
    pub root_b: Hash32,
    /// Regions that differ, sorted by address. Only regions that are state in
    /// at least one digest are listed.
    pub regions: Vec<RegionDelta>,
    /// Pages that differ, as sorted runs.
    pub pages: Vec<PageRun>,
}

impl DigestDiff {
    /// Total number of pages that differ.
    #[must_use]
    pub fn pages_changed(&self) -> u64 {
        self.pages
            .iter()
            .fold(0u64, |n, r| n.saturating_add(r.count))
    }
}

fn side(r: &RegionDigest) -> RegionSide {
    RegionSide {
        end: r.end,
        perms: r.perms,
        status: r.status,
        present: r.present,
        root: r.root,
        path: r.path().map(str::to_string),
    }
}

/// Compare two digests: the regions whose roots differ (with the reasons)
/// and every page that differs, keyed by virtual address. Both digests
/// should have passed [`StateDigest::verify`] (digests computed by
/// [`super::state_digest`] always do).
///
/// # Errors
/// [`Error::DigestIncomparable`] when they were made with different
/// selections or mask rules: their roots could never be equal.
pub fn diff(a: &StateDigest, b: &StateDigest) -> Result<DigestDiff> {
    let mut differs = Vec::new();
    if a.selection != b.selection {
        differs.push(format!(
            "selection {} vs {}",
            a.selection.name(),
            b.selection.name()
        ));
    }
    if a.rules != b.rules {
        let names = |d: &StateDigest| {
            d.rules
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(",")
        };
        differs.push(format!("mask rules [{}] vs [{}]", names(a), names(b)));
    }
    if !differs.is_empty() {
        return Err(Error::DigestIncomparable {
            detail: differs.join("; "),
        });
    }

    // Regions, keyed by start.
    let by_start = |d: &'_ StateDigest| -> BTreeMap<u64, usize> {
        d.regions
            .iter()
            .enumerate()
            .map(|(i, r)| (r.start, i))
            .collect()
    };
    let (ma, mb) = (by_start(a), by_start(b));
    let mut starts: Vec<u64> = a.included().chain(b.included()).map(|r| r.start).collect();
    starts.sort_unstable();
    starts.dedup();
    let mut regions = Vec::new();
    for s in starts {
        let ra = ma.get(&s).and_then(|&i| a.regions.get(i));
        let rb = mb.get(&s).and_then(|&i| b.regions.get(i));
        let mut reasons = Vec::new();
        match (ra, rb) {
            (Some(x), Some(y))
                if x.status == RegionStatus::Included && y.status == RegionStatus::Included =>
            {
                if x.root == y.root {
                    continue;
                }
                if x.end != y.end {
                    reasons.push("size");
                }
                if x.perms != y.perms {
                    reasons.push("perms");
                }
                if x.present != y.present {
                    reasons.push("bytes-held");
                }
                if x.masked != y.masked {
                    reasons.push("masks");
                }
                if x.pages != y.pages {
                    reasons.push("pages");
                }
            }
            (Some(_), Some(_)) => reasons.push("status"),
            (Some(_), None) => reasons.push("removed"),
            (None, Some(_)) => reasons.push("added"),
            (None, None) => continue,
        }
        regions.push(RegionDelta {
            start: s,
            a: ra.map(side),
            b: rb.map(side),
            reasons,
        });
    }

    // Pages, keyed by address, over the included regions of both.
    let pages_of = |d: &'_ StateDigest| {
        d.included()
            .flat_map(|r| {
                r.pages
                    .iter()
                    .enumerate()
                    .filter_map(move |(i, h)| Some((r.page_addr(i)?, *h)))
            })
            .collect::<Vec<(u64, Hash32)>>()
    };
    let (pa, pb) = (pages_of(a), pages_of(b));
    let mut runs: Vec<PageRun> = Vec::new();
    let mut push = |addr: u64, change: PageChange| {
        if let Some(last) = runs.last_mut()
            && last.change == change
            && last
                .count
                .checked_mul(PAGE_SIZE)
                .and_then(|o| last.start.checked_add(o))
                == Some(addr)
        {
            last.count = last.count.saturating_add(1);
            return;
        }
        runs.push(PageRun {
            start: addr,
            count: 1,
            change,
        });
    };
    let (mut ia, mut ib) = (pa.iter().peekable(), pb.iter().peekable());
    loop {
        match (ia.peek().copied(), ib.peek().copied()) {
            (Some(&(x, hx)), Some(&(y, hy))) => {
                if x == y {
                    if hx != hy {
                        push(x, PageChange::Modified);
                    }
                    ia.next();
                    ib.next();
                } else if x < y {
                    push(x, PageChange::OnlyA);
                    ia.next();
                } else {
                    push(y, PageChange::OnlyB);
                    ib.next();
                }
            }
            (Some(&(x, _)), None) => {
                push(x, PageChange::OnlyA);
                ia.next();
            }
            (None, Some(&(y, _))) => {
                push(y, PageChange::OnlyB);
                ib.next();
            }
            (None, None) => break,
        }
    }
    Ok(DigestDiff {
        equal: a.root == b.root,
        root_a: a.root,
        root_b: b.root,
        regions,
        pages: runs,
    })
}
