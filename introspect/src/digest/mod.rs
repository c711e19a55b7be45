//! The state digest: a Merkle tree of BLAKE3 over a process's memory, keyed
//! by virtual address, with 4 KiB pages as leaves, one root per region and
//! one for the dump.
//!
//! The exact construction (domain strings, byte encodings, tree shape, masks)
//! is specified in `docs/digest-state.md`; this module implements it and its
//! tests check it against the reference `blake3` crate. In short:
//!
//! - **Which regions count as state** ([`Selection`]): by default the
//!   writable and the anonymous ones (heap, stacks, `.data`, `.bss`, GOT,
//!   `mmap` memory); [`Selection::All`] takes every region. Each region of
//!   the output says whether it was [`RegionStatus::Included`],
//!   [`RegionStatus::Excluded`] or [`RegionStatus::Masked`].
//! - **Page leaf**: the BLAKE3 chaining value of the page's bytes as the
//!   subtree at input offset = its virtual address, in `derive_key` mode with
//!   [`CONTEXT_PAGE`]. The leaf therefore binds the page's address, and it is
//!   a node of BLAKE3's own tree, so it costs what plain BLAKE3 costs.
//! - **Region root**: `derive_key(CONTEXT_REGION, header)` where the header
//!   binds start, end, permissions, how many bytes the dump holds, the masked
//!   ranges, and the page-tree root.
//! - **Dump root**: `derive_key(CONTEXT_DUMP, ...)` over the selection, the
//!   enabled mask rules and the included regions' roots in address order.
//! - **Missing bytes** (`p_filesz < p_memsz`, a truncated core): the leaves
//!   cover only the bytes the dump holds; the header binds that count, so
//!   a region with a missing tail never equals one whose tail is present,
//!   even as zeros. Nothing is zero-filled.
//! - **Masks** ([`MaskRule`]): kernel-owned bytes that differ between hosts
//!   for equal states are replaced by zero before hashing (`rseq-cpu-id`), or
//!   whole kernel regions are left out (`vdso`, `vvar`, `vsyscall`); either
//!   way they are listed in [`RegionDigest::masked`].
//!
//! Work is spread over rayon's pool in 1 MiB units; results are placed by
//! position, so the digest does not depend on the number of threads.

mod diff;
mod hash;
pub mod schema;

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use blake3::hazmat::ChainingValue;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use diff::{DigestDiff, PageChange, PageRun, RegionDelta, RegionSide, diff};
pub use hash::{CONTEXT_DUMP, CONTEXT_PAGE, CONTEXT_REGION, CONTEXT_TREE, PAGE_U64 as PAGE_SIZE};

use crate::error::{Error, Result};
use crate::region::{Perms, Region, RegionKind};
use hash::{Keys, PAGE, UNIT_PAGES};

/// Most rseq areas (threads) one digest accepts.
pub const MAX_RSEQ_AREAS: usize = 1 << 16;
/// Most regions one digest accepts.
pub const MAX_REGIONS: usize = 1 << 20;

/// The byte ranges of `struct rseq` that the kernel rewrites on its own:
/// `cpu_id_start` and `cpu_id` (offsets 0..8) and `node_id` and `mm_cid`
/// (offsets 24..32, Linux 6.3 and later).
pub const RSEQ_MASKED_FIELDS: [(u64, u64); 2] = [(0, 8), (24, 8)];

/// A 32-byte hash or chaining value, shown as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// The bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Hash32 {
    /// Lowercase hex, 64 digits (what `Display` prints, without the
    /// formatter: digests print hundreds of thousands of these).
    #[must_use]
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            for nibble in [b >> 4, b & 0xf] {
                if let Some(&d) = DIGITS.get(usize::from(nibble)) {
                    s.push(char::from(d));
                }
            }
        }
        s
    }
}

impl Serialize for Hash32 {
    /// As 64 lowercase hex digits, without allocating.
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        for (pair, b) in buf.chunks_exact_mut(2).zip(self.0) {
            for (d, nibble) in pair.iter_mut().zip([b >> 4, b & 0xf]) {
                *d = DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0');
            }
        }
        s.serialize_str(std::str::from_utf8(&buf).unwrap_or_default())
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Hash32;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Hash32, E> {
                v.parse().map_err(|e| E::custom(format!("{v:?}: {e}")))
            }
        }
        d.deserialize_str(V)
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({self})")
    }
}

impl FromStr for Hash32 {
    type Err = &'static str;
    /// Parse exactly 64 lowercase or uppercase hex digits.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return Err("a hash is 64 hex digits");
        }
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
            let hi = hex_val(pair.first().copied()).ok_or("not a hex digit")?;
            let lo = hex_val(pair.get(1).copied()).ok_or("not a hex digit")?;
            *o = (hi << 4) | lo;
        }
        Ok(Hash32(out))
    }
}

fn hex_val(c: Option<u8>) -> Option<u8> {
    match c? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Which regions count as state.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// Writable regions and anonymous ones (`[heap]`, `[stack]`, anonymous
    /// mappings), whatever their permissions.
    #[default]
    State,
    /// Every region.
    All,
}

impl Selection {
    /// The name used in outputs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Selection::State => "state",
            Selection::All => "all",
        }
    }

    /// Whether `region` is selected.
    #[must_use]
    pub fn selects(self, region: &Region<'_>) -> bool {
        match self {
            Selection::All => true,
            Selection::State => {
                region.perms.write
                    || matches!(
                        region.kind,
                        RegionKind::Anonymous | RegionKind::Heap | RegionKind::Stack
                    )
            }
        }
    }

    fn code(self) -> u8 {
        match self {
            Selection::State => 0,
            Selection::All => 1,
        }
    }
}

/// A named rule that masks bytes the kernel owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaskRule {
    /// The CPU-identity fields of each thread's rseq area
    /// ([`RSEQ_MASKED_FIELDS`]): the kernel writes the number of the CPU the
    /// thread last ran on, so they differ between runs and hosts.
    RseqCpuId,
    /// The whole `[vdso]`: kernel code that differs between kernels.
    Vdso,
    /// The whole `[vvar]` / `[vvar_vclock]`: kernel clock data.
    Vvar,
    /// The whole `[vsyscall]` page: present or not, readable or not,
    /// depending on the kernel's `vsyscall=` setting.
    Vsyscall,
}

impl MaskRule {
    /// Every rule, in id order.
    pub const ALL: [MaskRule; 4] = [
        MaskRule::RseqCpuId,
        MaskRule::Vdso,
        MaskRule::Vvar,
        MaskRule::Vsyscall,
    ];

    /// The stable name (`rseq-cpu-id`, `vdso`, `vvar`, `vsyscall`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            MaskRule::RseqCpuId => "rseq-cpu-id",
            MaskRule::Vdso => "vdso",
            MaskRule::Vvar => "vvar",
            MaskRule::Vsyscall => "vsyscall",
        }
    }

    /// The rule with `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        MaskRule::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The number that encodes the rule in region headers (1 to 4).
    #[must_use]
    pub fn id(self) -> u8 {
        match self {
            MaskRule::RseqCpuId => 1,
            MaskRule::Vdso => 2,
            MaskRule::Vvar => 3,
            MaskRule::Vsyscall => 4,
        }
    }

    /// The whole-region rule that applies to regions of `kind`, if any.
    #[must_use]
    pub fn for_kind(kind: &RegionKind) -> Option<Self> {
        match kind {
            RegionKind::Vdso => Some(MaskRule::Vdso),
            RegionKind::Vvar => Some(MaskRule::Vvar),
            RegionKind::Vsyscall => Some(MaskRule::Vsyscall),
            _ => None,
        }
    }
}

impl fmt::Display for MaskRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to digest and what to mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestOptions {
    /// Which regions count as state.
    pub selection: Selection,
    /// The mask rules in force (all four by default).
    pub rules: BTreeSet<MaskRule>,
    /// Addresses of the threads' `struct rseq` areas (thread pointer plus
    /// glibc's `__rseq_offset`, or `PTRACE_GET_RSEQ_CONFIGURATION`'s
    /// `rseq_abi_pointer`). Used by [`MaskRule::RseqCpuId`].
    pub rseq_areas: Vec<u64>,
}

impl Default for DigestOptions {
    fn default() -> Self {
        DigestOptions {
            selection: Selection::State,
            rules: MaskRule::ALL.into_iter().collect(),
            rseq_areas: Vec::new(),
        }
    }
}

/// Whether a region is part of the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionStatus {
    /// Hashed and bound into the dump root.
    Included,
    /// Not state under the selection; not hashed.
    Excluded,
    /// Left out whole by a mask rule; not hashed.
    Masked(MaskRule),
}

impl RegionStatus {
    /// The name used in outputs (`included`, `excluded`, `masked`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            RegionStatus::Included => "included",
            RegionStatus::Excluded => "excluded",
            RegionStatus::Masked(_) => "masked",
        }
    }
}

/// A range of bytes a rule masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MaskedRange {
    /// First address.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// The rule.
    pub rule: MaskRule,
}

/// The digest of one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionDigest {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Permissions.
    pub perms: Perms,
    /// What backs it (reported, not hashed: see `docs/digest-state.md`).
    pub kind: RegionKind,
    /// Included, excluded or masked.
    pub status: RegionStatus,
    /// How many bytes of the region, from its start, the dump holds.
    pub present: u64,
    /// The region root; `Some` exactly when included.
    pub root: Option<Hash32>,
    /// One leaf per page the dump holds (the last may cover a short page);
    /// empty unless included.
    pub pages: Vec<Hash32>,
    /// Masked ranges, sorted, not overlapping.
    pub masked: Vec<MaskedRange>,
}

impl RegionDigest {
    /// Length of the region.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the region is empty (never, for a valid digest).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Bytes of the region the dump does not hold.
    #[must_use]
    pub fn missing(&self) -> u64 {
        self.len().saturating_sub(self.present)
    }

    /// Address of page `index`.
    #[must_use]
    pub fn page_addr(&self, index: usize) -> Option<u64> {
        (index as u64)
            .checked_mul(PAGE_SIZE)
            .and_then(|o| self.start.checked_add(o))
    }

    /// The path column of `/proc/PID/maps` for this region: the file, or
    /// `[heap]`, `[stack]`, `[vdso]`, ...; `None` for anonymous memory.
    #[must_use]
    pub fn path(&self) -> Option<&str> {
        kind_path(&self.kind)
    }
}

/// The `/proc/PID/maps` path column of a region kind.
#[must_use]
pub fn kind_path(kind: &RegionKind) -> Option<&str> {
    match kind {
        RegionKind::Anonymous => None,
        RegionKind::File { path, .. } => Some(path),
        RegionKind::Other { name } => Some(name),
        RegionKind::Stack => Some("[stack]"),
        RegionKind::Heap => Some("[heap]"),
        RegionKind::Vdso => Some("[vdso]"),
        RegionKind::Vvar => Some("[vvar]"),
        RegionKind::Vsyscall => Some("[vsyscall]"),
    }
}

/// The state digest of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDigest {
    /// The dump root.
    pub root: Hash32,
    /// Which regions counted as state.
    pub selection: Selection,
    /// The mask rules in force.
    pub rules: BTreeSet<MaskRule>,
    /// Every region of the dump, sorted by address, with its status.
    pub regions: Vec<RegionDigest>,
    /// Leaves hashed (pages of included regions the dump holds).
    pub pages: u64,
    /// Bytes hashed.
    pub bytes: u64,
    /// Bytes of included regions the dump does not hold.
    pub missing: u64,
    /// rseq areas given that lie in no included region (nothing was masked
    /// for them), sorted.
    pub rseq_unmatched: Vec<u64>,
}

impl StateDigest {
    /// The included regions.
    pub fn included(&self) -> impl Iterator<Item = &RegionDigest> {
        self.regions
            .iter()
            .filter(|r| r.status == RegionStatus::Included)
    }

    /// Recompute every region root from its leaves and header, and the dump
    /// root from the region roots, and check them and the totals against
    /// the stored values. A digest read from a file must pass this before it
    /// is compared with anything.
    ///
    /// # Errors
    /// [`Error::DigestInconsistent`] naming the first value that does not
    /// match, or [`Error::BadRegion`] / [`Error::RegionOverlap`] for a
    /// malformed region list.
    pub fn verify(&self) -> Result<()> {
        let keys = Keys::new();
        let mut prev_end: Option<u64> = None;
        let (mut pages, mut bytes, mut missing) = (0u64, 0u64, 0u64);
        let mut roots = Vec::new();
        let mut prev_included: Option<&RegionDigest> = None;
        for r in &self.regions {
            if r.status == RegionStatus::Included {
                if let Some(p) = prev_included
                    && mergeable(
                        (p.start, p.end, p.perms, &p.kind, p.present),
                        (r.start, r.perms, &r.kind),
                    )
                {
                    return Err(inconsistent(
                        r,
                        "continues the region before it with the same permissions and backing (not in normal form)",
                    ));
                }
                prev_included = Some(r);
            } else {
                prev_included = None;
            }
            if r.end <= r.start {
                return Err(Error::BadRegion {
                    start: r.start,
                    end: r.end,
                    detail: "empty or inverted",
                });
            }
            if let Some(pe) = prev_end
                && r.start < pe
            {
                return Err(Error::RegionOverlap {
                    start: r.start,
                    end: r.end,
                    previous_end: pe,
                });
            }
            prev_end = Some(r.end);
            if r.present > r.len() {
                return Err(inconsistent(r, "holds more bytes than it is long"));
            }
            for m in &r.masked {
                let end = m.start.checked_add(m.len);
                if m.len == 0 || m.start < r.start || end.is_none_or(|e| e > r.end) {
                    return Err(inconsistent(r, "masked range outside the region"));
                }
                if !self.rules.contains(&m.rule) {
                    return Err(inconsistent(r, "masked by a rule that is not in force"));
                }
            }
            if !r.masked.windows(2).all(|w| match w {
                [a, b] => a.start.saturating_add(a.len) < b.start,
                _ => true,
            }) {
                return Err(inconsistent(r, "masked ranges unsorted or overlapping"));
            }
            match r.status {
                RegionStatus::Included => {
                    if r.start % PAGE_SIZE != 0 {
                        return Err(Error::BadRegion {
                            start: r.start,
                            end: r.end,
                            detail: "state region not page-aligned",
                        });
                    }
                    if r.masked.iter().any(|m| m.rule != MaskRule::RseqCpuId) {
                        return Err(inconsistent(r, "whole-region rule inside a hashed region"));
                    }
                    if r.pages.len() as u64 != r.present.div_ceil(PAGE_SIZE) {
                        return Err(inconsistent(r, "page count does not match the bytes held"));
                    }
                    let leaves: Vec<ChainingValue> = r.pages.iter().map(|h| h.0).collect();
                    let root = region_root(r, &hash::tree_cv(&keys, &leaves));
                    if r.root != Some(root) {
                        return Err(inconsistent(
                            r,
                            "region root does not match its pages and header",
                        ));
                    }
                    roots.push(root);
                    pages = pages.saturating_add(r.pages.len() as u64);
                    bytes = bytes.saturating_add(r.present);
                    missing = missing.saturating_add(r.missing());
                }
                RegionStatus::Excluded | RegionStatus::Masked(_) => {
                    if r.root.is_some() || !r.pages.is_empty() {
                        return Err(inconsistent(r, "a region that is not state has pages"));
                    }
                    if let RegionStatus::Masked(rule) = r.status
                        && (!self.rules.contains(&rule)
                            || r.masked
                                != [MaskedRange {
                                    start: r.start,
                                    len: r.len(),
                                    rule,
                                }])
                    {
                        return Err(inconsistent(r, "masked region without its rule"));
                    }
                }
            }
        }
        if (pages, bytes, missing) != (self.pages, self.bytes, self.missing) {
            return Err(Error::DigestInconsistent {
                detail: format!(
                    "totals: pages {} bytes {} missing {} stored, {pages} {bytes} {missing} recomputed",
                    self.pages, self.bytes, self.missing
                ),
            });
        }
        if dump_root(self.selection, &self.rules, &roots) != self.root {
            return Err(Error::DigestInconsistent {
                detail: "dump root does not match the region roots".into(),
            });
        }
        Ok(())
    }
}

fn inconsistent(r: &RegionDigest, what: &str) -> Error {
    Error::DigestInconsistent {
        detail: format!("region {:#x}-{:#x}: {what}", r.start, r.end),
    }
}

/// The header of an included region, as hashed (see `docs/digest-state.md`).
fn region_header(r: &RegionDigest, tree: &ChainingValue) -> Vec<u8> {
    let mut h = Vec::with_capacity(8 * 4 + 1 + 17 * r.masked.len() + 32);
    h.extend_from_slice(&r.start.to_le_bytes());
    h.extend_from_slice(&r.end.to_le_bytes());
    h.push(perms_byte(r.perms));
    h.extend_from_slice(&r.present.to_le_bytes());
    h.extend_from_slice(&(r.masked.len() as u64).to_le_bytes());
    for m in &r.masked {
        h.extend_from_slice(&m.start.to_le_bytes());
        h.extend_from_slice(&m.len.to_le_bytes());
        h.push(m.rule.id());
    }
    h.extend_from_slice(tree);
    h
}

/// Permission bits as hashed: write 2, execute 4. Read is not bound: gdb
/// writes every region of a core as readable (`PF_R`), including
/// inaccessible ones such as thread-stack guard pages, so a digest bound to
/// it would tell a gcore from a kernel core or a CRIU image of the same
/// process.
#[must_use]
pub fn perms_byte(p: Perms) -> u8 {
    (u8::from(p.write) << 1) | (u8::from(p.execute) << 2)
}

fn region_root(r: &RegionDigest, tree: &ChainingValue) -> Hash32 {
    let mut h = blake3::Hasher::new_derive_key(CONTEXT_REGION);
    h.update(&region_header(r, tree));
    Hash32(*h.finalize().as_bytes())
}

fn dump_root(selection: Selection, rules: &BTreeSet<MaskRule>, roots: &[Hash32]) -> Hash32 {
    let mut h = blake3::Hasher::new_derive_key(CONTEXT_DUMP);
    let bits = rules
        .iter()
        .fold(0u8, |b, r| b | (1u8 << (r.id().saturating_sub(1))));
    h.update(&[selection.code(), bits]);
    h.update(&(roots.len() as u64).to_le_bytes());
    for r in roots {
        h.update(&r.0);
    }
    Hash32(*h.finalize().as_bytes())
}

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
    // Bytes held for a region: its own, or what `source` will read.
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
        if r.end <= r.start {
            return Err(Error::BadRegion {
                start: r.start,
                end: r.end,
                detail: "empty or inverted",
            });
        }
        if held(r) > r.len() {
            return Err(Error::BadRegion {
                start: r.start,
                end: r.end,
                detail: "holds more bytes than it is long",
            });
        }
        if let Some(pe) = prev_end
            && r.start < pe
        {
            return Err(Error::RegionOverlap {
                start: r.start,
                end: r.end,
                previous_end: pe,
            });
        }
        prev_end = Some(r.end);
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
                let n = usize::try_from(d.present.div_ceil(PAGE_SIZE)).unwrap_or(0);
                vec![[0u8; 32]; n]
            } else {
                Vec::new()
            }
        })
        .collect();
    let mut units: Vec<Unit<'_>> = Vec::new();
    for ((g, d), l) in groups.iter().zip(&out).zip(leaves.iter_mut()) {
        if d.status != RegionStatus::Included {
            continue;
        }
        let mut slots: &mut [ChainingValue] = l.as_mut_slice();
        for r in order.get(g.clone()).unwrap_or(&[]) {
            let r_held = usize::try_from(held(r)).unwrap_or(0);
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
fn mergeable(
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

#[cfg(test)]
mod source_tests;
#[cfg(test)]
mod tests;
