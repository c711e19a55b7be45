//! The JSON documents of the state digest: `talos.digest/1` (a digest, also
//! read back for `--diff`) and `talos.digest-diff/1` (a comparison).
//! Documented field by field in `docs/schema-digest.md`.
//!
//! Addresses are `0x`-prefixed, 16-digit lowercase hex strings; hashes are
//! 64 lowercase hex digits; counts are JSON numbers.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{
    DigestDiff, Hash32, MaskRule, MaskedRange, PAGE_SIZE, RegionDigest, RegionSide, RegionStatus,
    Selection, StateDigest,
};
use crate::error::{Error, Result};
use crate::region::{Perms, RegionKind};

/// Schema id of a digest document.
pub const SCHEMA: &str = "talos.digest/1";
/// Schema id of a diff document.
pub const DIFF_SCHEMA: &str = "talos.digest-diff/1";

/// Where a digest came from; informative, not bound by any root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputDoc {
    /// The file as given on the command line.
    pub path: String,
    /// `kernel`, `gdb`, `snapshot`, `raw`, `live`.
    pub format: String,
    /// Oddities the reader met (`code: message`).
    #[serde(default)]
    pub anomalies: Vec<String>,
}

/// A `talos.digest/1` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestDoc {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The program that wrote it (`talos 0.1.0`); informative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Where the digest came from; informative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<InputDoc>,
    /// The dump root.
    pub root: Hash32,
    /// `state` or `all`.
    pub selection: Selection,
    /// The mask rules in force, sorted by id.
    pub masks: Vec<MaskRule>,
    /// Always 4096.
    pub page_size: u64,
    /// Leaves hashed.
    pub pages: u64,
    /// Bytes hashed.
    pub bytes: u64,
    /// Bytes of included regions the dump does not hold.
    pub missing_bytes: u64,
    /// Every region, sorted by address.
    pub regions: Vec<RegionDoc>,
    /// rseq areas given that lie in no included region.
    #[serde(default)]
    pub rseq_unmatched: Vec<String>,
}

/// One region of a [`DigestDoc`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionDoc {
    /// First address.
    pub start: String,
    /// One past the last address.
    pub end: String,
    /// `rwx` letters, `-` when absent.
    pub perms: String,
    /// `anonymous`, `file`, `stack`, `heap`, `vdso`, `vvar`, `vsyscall`,
    /// `other`.
    pub kind: String,
    /// The maps path column (file, `[heap]`, ...); null for anonymous.
    pub path: Option<String>,
    /// File offset of `start`, for file mappings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
    /// `included`, `excluded` or `masked`.
    pub status: RegionStatus2,
    /// Bytes of the region, from its start, that the dump holds.
    pub present: u64,
    /// Region root, null unless included.
    pub root: Option<Hash32>,
    /// Masked ranges.
    pub masked: Vec<MaskedDoc>,
    /// Number of leaves.
    pub pages: u64,
    /// The leaves, one per page, in address order.
    pub page_hashes: Vec<Hash32>,
}

/// Region status as a plain string in documents (the rule of a masked
/// region is in its `masked` list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionStatus2 {
    /// Hashed.
    Included,
    /// Not state.
    Excluded,
    /// Left out by a whole-region rule.
    Masked,
}

/// A masked range in a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskedDoc {
    /// First address.
    pub start: String,
    /// Length in bytes.
    pub len: u64,
    /// The rule's name.
    pub rule: MaskRule,
}

/// Format an address as `0x` and 16 hex digits.
#[must_use]
pub fn addr(a: u64) -> String {
    format!("{a:#018x}")
}

/// Parse `0x`-prefixed hex.
///
/// # Errors
/// When `s` is not `0x` followed by 1 to 16 hex digits.
pub fn parse_addr(s: &str) -> std::result::Result<u64, String> {
    let h = s
        .strip_prefix("0x")
        .ok_or_else(|| format!("{s:?}: an address is 0x followed by hex digits"))?;
    if h.is_empty() || h.len() > 16 {
        return Err(format!("{s:?}: an address has 1 to 16 hex digits"));
    }
    u64::from_str_radix(h, 16).map_err(|e| format!("{s:?}: {e}"))
}

fn kind_name(k: &RegionKind) -> &'static str {
    match k {
        RegionKind::Anonymous => "anonymous",
        RegionKind::File { .. } => "file",
        RegionKind::Stack => "stack",
        RegionKind::Heap => "heap",
        RegionKind::Vdso => "vdso",
        RegionKind::Vvar => "vvar",
        RegionKind::Vsyscall => "vsyscall",
        RegionKind::Other { .. } => "other",
    }
}

impl DigestDoc {
    /// The document of `d`.
    #[must_use]
    pub fn new(d: &StateDigest, tool: Option<String>, input: Option<InputDoc>) -> Self {
        DigestDoc {
            schema: SCHEMA.to_string(),
            tool,
            input,
            root: d.root,
            selection: d.selection,
            masks: d.rules.iter().copied().collect(),
            page_size: PAGE_SIZE,
            pages: d.pages,
            bytes: d.bytes,
            missing_bytes: d.missing,
            regions: d.regions.iter().map(RegionDoc::new).collect(),
            rseq_unmatched: d.rseq_unmatched.iter().map(|&a| addr(a)).collect(),
        }
    }

    /// Turn a document read from a file back into a digest and check that
    /// it is internally consistent ([`StateDigest::verify`]): a digest file
    /// whose leaves were edited, or whose roots were, is rejected.
    ///
    /// # Errors
    /// [`Error::Malformed`] for a field that does not parse,
    /// [`Error::DigestInconsistent`] and the region errors from
    /// [`StateDigest::verify`].
    pub fn into_digest(self) -> Result<StateDigest> {
        if self.schema != SCHEMA {
            return Err(malformed(format!(
                "schema is {:?}, expected {SCHEMA:?}",
                self.schema
            )));
        }
        if self.page_size != PAGE_SIZE {
            return Err(malformed(format!(
                "page_size {} (only 4096 is defined)",
                self.page_size
            )));
        }
        let rules: BTreeSet<MaskRule> = self.masks.iter().copied().collect();
        if rules.len() != self.masks.len() {
            return Err(malformed("a mask rule is listed twice".into()));
        }
        let mut regions = Vec::with_capacity(self.regions.len());
        for r in self.regions {
            regions.push(r.into_region()?);
        }
        let mut rseq_unmatched = Vec::with_capacity(self.rseq_unmatched.len());
        for a in &self.rseq_unmatched {
            rseq_unmatched.push(parse_addr(a).map_err(malformed)?);
        }
        let d = StateDigest {
            root: self.root,
            selection: self.selection,
            rules,
            regions,
            pages: self.pages,
            bytes: self.bytes,
            missing: self.missing_bytes,
            rseq_unmatched,
        };
        d.verify()?;
        Ok(d)
    }
}

fn malformed(detail: String) -> Error {
    Error::Malformed {
        what: "talos.digest/1 document",
        detail,
    }
}

impl RegionDoc {
    fn new(r: &RegionDigest) -> Self {
        RegionDoc {
            start: addr(r.start),
            end: addr(r.end),
            perms: r.perms.to_string(),
            kind: kind_name(&r.kind).to_string(),
            path: r.path().map(str::to_string),
            offset: match &r.kind {
                RegionKind::File { offset, .. } => Some(addr(*offset)),
                _ => None,
            },
            status: match r.status {
                RegionStatus::Included => RegionStatus2::Included,
                RegionStatus::Excluded => RegionStatus2::Excluded,
                RegionStatus::Masked(_) => RegionStatus2::Masked,
            },
            present: r.present,
            root: r.root,
            masked: r
                .masked
                .iter()
                .map(|m| MaskedDoc {
                    start: addr(m.start),
                    len: m.len,
                    rule: m.rule,
                })
                .collect(),
            pages: r.pages.len() as u64,
            page_hashes: r.pages.clone(),
        }
    }

    fn into_region(self) -> Result<RegionDigest> {
        let start = parse_addr(&self.start).map_err(malformed)?;
        let end = parse_addr(&self.end).map_err(malformed)?;
        let perms = Perms::parse(&self.perms)
            .filter(|_| self.perms.len() == 3)
            .ok_or_else(|| malformed(format!("perms {:?}", self.perms)))?;
        let kind = match (self.kind.as_str(), self.path) {
            ("anonymous", None) => RegionKind::Anonymous,
            ("file", Some(path)) => RegionKind::File {
                path,
                offset: match &self.offset {
                    Some(o) => parse_addr(o).map_err(malformed)?,
                    None => return Err(malformed("file region without offset".into())),
                },
            },
            ("stack", Some(p)) if p == "[stack]" => RegionKind::Stack,
            ("heap", Some(p)) if p == "[heap]" => RegionKind::Heap,
            ("vdso", Some(p)) if p == "[vdso]" => RegionKind::Vdso,
            ("vvar", Some(p)) if p == "[vvar]" => RegionKind::Vvar,
            ("vsyscall", Some(p)) if p == "[vsyscall]" => RegionKind::Vsyscall,
            ("other", Some(name)) => RegionKind::Other { name },
            (k, _) => return Err(malformed(format!("region kind {k:?} with that path"))),
        };
        if self.offset.is_some() && !matches!(kind, RegionKind::File { .. }) {
            return Err(malformed("offset on a region that is not a file".into()));
        }
        let masked = self
            .masked
            .iter()
            .map(|m| {
                Ok(MaskedRange {
                    start: parse_addr(&m.start).map_err(malformed)?,
                    len: m.len,
                    rule: m.rule,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let status = match self.status {
            RegionStatus2::Included => RegionStatus::Included,
            RegionStatus2::Excluded => RegionStatus::Excluded,
            RegionStatus2::Masked => match masked.as_slice() {
                [m] => RegionStatus::Masked(m.rule),
                _ => return Err(malformed("masked region needs exactly one range".into())),
            },
        };
        if self.pages != self.page_hashes.len() as u64 {
            return Err(malformed(format!(
                "region {}: pages {} but {} page_hashes",
                self.start,
                self.pages,
                self.page_hashes.len()
            )));
        }
        Ok(RegionDigest {
            start,
            end,
            perms,
            kind,
            status,
            present: self.present,
            root: self.root,
            pages: self.page_hashes,
            masked,
        })
    }
}

/// One side of a digest comparison in a diff document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SideDoc {
    /// The input as given.
    pub path: String,
    /// Its dump root.
    pub root: String,
}

/// A region that differs, in a diff document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionDeltaDoc {
    /// First address.
    pub start: String,
    /// The region in A, null when A has none starting here.
    pub a: Option<RegionSideDoc>,
    /// The region in B.
    pub b: Option<RegionSideDoc>,
    /// What differs.
    pub reasons: Vec<&'static str>,
}

/// One side of a region in a diff document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionSideDoc {
    /// One past the last address.
    pub end: String,
    /// Permissions.
    pub perms: String,
    /// `included`, `excluded`, `masked`.
    pub status: &'static str,
    /// Bytes the dump holds.
    pub present: u64,
    /// Region root, when included.
    pub root: Option<String>,
    /// The maps path column.
    pub path: Option<String>,
}

/// A run of pages that differ, in a diff document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageRunDoc {
    /// Address of the first page.
    pub start: String,
    /// One past the last byte of the run.
    pub end: String,
    /// Number of pages.
    pub count: u64,
    /// `modified`, `only_a`, `only_b`.
    pub change: &'static str,
}

/// A `talos.digest-diff/1` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffDoc {
    /// Always [`DIFF_SCHEMA`].
    pub schema: &'static str,
    /// Whether the dump roots are equal.
    pub equal: bool,
    /// The first input.
    pub a: SideDoc,
    /// The second input.
    pub b: SideDoc,
    /// Total pages that differ.
    pub pages_changed: u64,
    /// Regions that differ.
    pub regions: Vec<RegionDeltaDoc>,
    /// Pages that differ, as runs.
    pub pages: Vec<PageRunDoc>,
}

fn side_doc(s: &RegionSide) -> RegionSideDoc {
    RegionSideDoc {
        end: addr(s.end),
        perms: s.perms.to_string(),
        status: s.status.name(),
        present: s.present,
        root: s.root.map(|h| h.to_string()),
        path: s.path.clone(),
    }
}

impl DiffDoc {
    /// The document of `d`, naming the inputs `path_a` and `path_b`.
    #[must_use]
    pub fn new(d: &DigestDiff, path_a: &str, path_b: &str) -> Self {
        DiffDoc {
            schema: DIFF_SCHEMA,
            equal: d.equal,
            a: SideDoc {
                path: path_a.to_string(),
                root: d.root_a.to_string(),
            },
            b: SideDoc {
                path: path_b.to_string(),
                root: d.root_b.to_string(),
            },
            pages_changed: d.pages_changed(),
            regions: d
                .regions
                .iter()
                .map(|r| RegionDeltaDoc {
                    start: addr(r.start),
                    a: r.a.as_ref().map(side_doc),
                    b: r.b.as_ref().map(side_doc),
                    reasons: r.reasons.clone(),
                })
                .collect(),
            pages: d
                .pages
                .iter()
                .map(|p| PageRunDoc {
                    start: addr(p.start),
                    end: addr(p.count.saturating_mul(PAGE_SIZE).saturating_add(p.start)),
                    count: p.count,
                    change: p.change.name(),
                })
                .collect(),
        }
    }
}
