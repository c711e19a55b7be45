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

mod compute;
mod diff;
mod hash;
pub mod schema;

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use blake3::hazmat::ChainingValue;
use serde::{Deserialize, Serialize};

pub use compute::{PageSource, state_digest, state_digest_from, state_digest_with};
pub use diff::{DigestDiff, PageChange, PageRun, RegionDelta, RegionSide, diff};
pub use hash::{CONTEXT_DUMP, CONTEXT_PAGE, CONTEXT_REGION, CONTEXT_TREE, PAGE_U64 as PAGE_SIZE};

use crate::error::{Error, Result};
use crate::region::{Perms, Region, RegionKind};
use compute::mergeable;
use hash::Keys;

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
        // Only ASCII digits were written; an empty string in its place
        // would be a hash no one computed.
        s.serialize_str(std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?)
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
            check_order(r.start, r.end, &mut prev_end)?;
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

/// What every region list in address order must be, for the regions a
/// digest is computed over and for a digest read back: each region is not
/// empty and starts at or after the end of the one before (`prev_end`,
/// then set to this one's end).
fn check_order(start: u64, end: u64, prev_end: &mut Option<u64>) -> Result<()> {
    if end <= start {
        return Err(Error::BadRegion {
            start,
            end,
            detail: "empty or inverted",
        });
    }
    if let Some(previous_end) = *prev_end
        && start < previous_end
    {
        return Err(Error::RegionOverlap {
            start,
            end,
            previous_end,
        });
    }
    *prev_end = Some(end);
    Ok(())
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

#[cfg(test)]
mod source_tests;
#[cfg(test)]
mod tests;
