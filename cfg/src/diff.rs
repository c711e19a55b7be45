//! Build-to-build comparison of two control-flow graphs (`talos diff`,
//! specified in `docs/diff.md`).
//!
//! Functions are matched across the builds in three rounds, each only over
//! what the previous rounds left unmatched:
//!
//! 1. **Name**, where both builds have symbols: a name that occurs once on
//!    each side pairs those two functions.
//! 2. **Position-independent digest** ([`crate::digest::position_independent`]):
//!    equal digests pair functions that did not change but moved (or lost
//!    their names to `strip`). Equal digests that occur several times pair
//!    in address order.
//! 3. **Structure and position**: unmatched functions with the same shape
//!    (blocks, edges, instructions, named callees) that is unique among the
//!    unmatched pair up; then, between two consecutive matched anchors, the
//!    unmatched functions on each side pair in address order when both
//!    sides have the same number of them.
//!
//! What is left is removed (old only) or added (new only). A matched pair
//! whose position-independent digests differ changed; for it the blocks and
//! edges that differ are listed.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, PiDigest};
use crate::model::{Block, Cfg, EdgeKind};
use crate::schema::CfgDoc;

mod blocks;
use blocks::*;

/// One function as the diff sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffFunction {
    /// Entry address.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Name, if any.
    pub name: Option<String>,
    /// The (position-dependent) function digest.
    pub digest: Digest,
    /// Position-independent digest, when known.
    pub pi: Option<Digest>,
    /// Position-independent digest of each block, when known (binaries,
    /// not saved documents).
    pub block_pi: Option<Vec<Digest>>,
    /// Blocks, sorted by address.
    pub blocks: Vec<Block>,
}

impl DiffFunction {
    /// Name, or `sub_<addr>`.
    #[must_use]
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("sub_{:x}", self.addr))
    }

    fn edge_count(&self) -> usize {
        self.blocks.iter().map(|b| b.succs.len()).sum()
    }

    fn instruction_count(&self) -> u64 {
        self.blocks.iter().map(|b| u64::from(b.instructions)).sum()
    }
}

/// One side of a diff: a graph recovered from a binary or read from a saved
/// `talos.cfg/1` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffSide {
    /// Architecture name.
    pub arch: String,
    /// Image base.
    pub base: u64,
    /// Graph digest.
    pub graph_digest: Digest,
    /// Functions sorted by address.
    pub functions: Vec<DiffFunction>,
}

impl DiffSide {
    /// From a recovered graph and its position-independent digests (in the
    /// order of `cfg.functions`).
    #[must_use]
    pub fn from_cfg(cfg: &Cfg, pi: &[PiDigest]) -> Self {
        let functions = cfg
            .functions
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let p = pi.get(i);
                DiffFunction {
                    addr: f.addr,
                    size: f.size,
                    name: f.name.clone(),
                    digest: f.digest,
                    pi: p.map(|p| p.function),
                    block_pi: p
                        .filter(|p| p.blocks.len() == f.blocks.len())
                        .map(|p| p.blocks.clone()),
                    blocks: f.blocks.clone(),
                }
            })
            .collect();
        DiffSide {
            arch: cfg.arch.name().to_string(),
            base: cfg.base,
            graph_digest: cfg.digest,
            functions,
        }
    }

    /// From a saved `talos.cfg/1` document.
    #[must_use]
    pub fn from_doc(doc: &CfgDoc) -> Self {
        let mut functions: Vec<DiffFunction> = doc
            .functions
            .iter()
            .map(|f| DiffFunction {
                addr: f.addr,
                size: f.size,
                name: f.name.clone(),
                digest: f.digest,
                pi: f.pi_digest,
                block_pi: None,
                blocks: f.blocks.clone(),
            })
            .collect();
        functions.sort_by_key(|f| f.addr);
        DiffSide {
            arch: doc.binary.arch.clone(),
            base: doc.binary.base,
            graph_digest: doc.digest,
            functions,
        }
    }
}

/// How a pair of functions was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// Same unique name.
    Name,
    /// Same position-independent digest.
    Digest,
    /// Same shape, or the only candidates between two matched neighbours.
    Structure,
}

/// What happened to a matched pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairState {
    /// Same code at the same offset from the base.
    Unchanged,
    /// Same code at another offset.
    Moved,
    /// Different code.
    Changed,
    /// Could not be decided: no position-independent digests (saved
    /// documents without them) and the function moved; its structure is
    /// the same.
    Unproven,
}

/// A block of a changed function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    /// Address in its build.
    pub addr: u64,
    /// Offset from its function's entry.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// Instructions.
    pub instructions: u32,
}

/// A block present on both sides whose contents differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockChange {
    /// The old block.
    pub old: BlockRef,
    /// The new block.
    pub new: BlockRef,
}

/// An edge, in terms that survive moving code: intra-function targets as
/// offsets from the entry, calls by callee name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EdgeRef {
    /// Address of the source block in its build.
    pub from: u64,
    /// Edge kind (`cond_taken`, `call`, ...).
    pub kind: String,
    /// Target address in its build, if any.
    pub to: Option<u64>,
    /// What the target is: `+0x40` (offset in the function), a callee
    /// name, `sub_<addr>`, or empty when the edge has no target.
    pub target: String,
}

/// A matched pair of functions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionPair {
    /// Name in the new build (or the old one, or `sub_<addr>`).
    pub name: String,
    /// Entry in the old build.
    pub old_addr: u64,
    /// Entry in the new build.
    pub new_addr: u64,
    /// How the pair was matched.
    pub matched_by: MatchedBy,
    /// What happened.
    pub state: PairState,
    /// Blocks only in the new function.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks_added: Vec<BlockRef>,
    /// Blocks only in the old function.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks_removed: Vec<BlockRef>,
    /// Blocks on both sides whose contents differ.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks_changed: Vec<BlockChange>,
    /// Edges only in the new function.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges_added: Vec<EdgeRef>,
    /// Edges only in the old function.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges_removed: Vec<EdgeRef>,
    /// When the function changed but no block could be singled out (saved
    /// documents carry no block digests), a sentence saying so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A function present in one build only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionRef {
    /// Name or `sub_<addr>`.
    pub name: String,
    /// Entry address.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Number of blocks.
    pub blocks: usize,
}

/// Counts of a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DiffSummary {
    /// Functions in the old graph.
    pub old_functions: usize,
    /// Functions in the new graph.
    pub new_functions: usize,
    /// Pairs with the same code at the same place.
    pub unchanged: usize,
    /// Pairs with the same code at another place.
    pub moved: usize,
    /// Pairs whose code differs.
    pub changed: usize,
    /// Pairs that could not be decided.
    pub unproven: usize,
    /// Functions only in the new graph.
    pub added: usize,
    /// Functions only in the old graph.
    pub removed: usize,
    /// Pairs matched by name.
    pub matched_by_name: usize,
    /// Pairs matched by digest.
    pub matched_by_digest: usize,
    /// Pairs matched by structure.
    pub matched_by_structure: usize,
}

/// The result of comparing two graphs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// Counts.
    pub summary: DiffSummary,
    /// Every matched pair, in old-address order.
    pub pairs: Vec<FunctionPair>,
    /// Functions only in the new graph.
    pub added: Vec<FunctionRef>,
    /// Functions only in the old graph.
    pub removed: Vec<FunctionRef>,
    /// Whether the two graph digests are equal (same code at the same
    /// offsets).
    pub same_graph_digest: bool,
}

impl Diff {
    /// No function added, removed, changed or undecided.
    #[must_use]
    pub fn is_same(&self) -> bool {
        self.summary.added == 0
            && self.summary.removed == 0
            && self.summary.changed == 0
            && self.summary.unproven == 0
    }
}

/// Compare `old` with `new`.
#[must_use]
pub fn diff(old: &DiffSide, new: &DiffSide) -> Diff {
    let mut m = Matcher::new(old, new);
    m.by_name();
    m.by_digest();
    m.by_shape();
    m.by_gaps();
    m.finish()
}

struct Matcher<'a> {
    old: &'a DiffSide,
    new: &'a DiffSide,
    /// old index -> (new index, how).
    pairs: BTreeMap<usize, (usize, MatchedBy)>,
    new_taken: BTreeSet<usize>,
}

impl<'a> Matcher<'a> {
    fn new(old: &'a DiffSide, new: &'a DiffSide) -> Self {
        Matcher {
            old,
            new,
            pairs: BTreeMap::new(),
            new_taken: BTreeSet::new(),
        }
    }

    fn pair(&mut self, o: usize, n: usize, how: MatchedBy) {
        if self.pairs.contains_key(&o) || self.new_taken.contains(&n) {
            return;
        }
        self.pairs.insert(o, (n, how));
        self.new_taken.insert(n);
    }

    fn unmatched_old(&self) -> Vec<usize> {
        (0..self.old.functions.len())
            .filter(|i| !self.pairs.contains_key(i))
            .collect()
    }

    fn unmatched_new(&self) -> Vec<usize> {
        (0..self.new.functions.len())
            .filter(|i| !self.new_taken.contains(i))
            .collect()
    }

    /// Pair the k-th of `a` with the k-th of `b` for groups with the same
    /// key.
    fn pair_groups<K: Ord>(
        &mut self,
        a: BTreeMap<K, Vec<usize>>,
        mut b: BTreeMap<K, Vec<usize>>,
        how: MatchedBy,
        unique_only: bool,
    ) {
        for (k, olds) in a {
            let Some(news) = b.remove(&k) else { continue };
            if unique_only && (olds.len() != 1 || news.len() != 1) {
                continue;
            }
            for (o, n) in olds.into_iter().zip(news) {
                self.pair(o, n, how);
            }
        }
    }

    fn by_name(&mut self) {
        let group = |side: &DiffSide| {
            let mut g: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for (i, f) in side.functions.iter().enumerate() {
                if let Some(n) = &f.name {
                    g.entry(n.clone()).or_default().push(i);
                }
            }
            g
        };
        let (a, b) = (group(self.old), group(self.new));
        // Duplicate names (local functions of different files): pair
        // those with equal digests first, the rest in address order.
        for (name, olds) in &a {
            let Some(news) = b.get(name) else { continue };
            if olds.len() == 1 && news.len() == 1 {
                if let (Some(&o), Some(&n)) = (olds.first(), news.first()) {
                    self.pair(o, n, MatchedBy::Name);
                }
                continue;
            }
            for &o in olds {
                let od = self.old.functions.get(o).and_then(|f| f.pi);
                if od.is_none() {
                    continue;
                }
                if let Some(&n) = news.iter().find(|&&n| {
                    !self.new_taken.contains(&n)
                        && self.new.functions.get(n).and_then(|f| f.pi) == od
                }) {
                    self.pair(o, n, MatchedBy::Name);
                }
            }
            let rest_o: Vec<usize> = olds
                .iter()
                .copied()
                .filter(|o| !self.pairs.contains_key(o))
                .collect();
            let rest_n: Vec<usize> = news
                .iter()
                .copied()
                .filter(|n| !self.new_taken.contains(n))
                .collect();
            if rest_o.len() == rest_n.len() {
                for (o, n) in rest_o.into_iter().zip(rest_n) {
                    self.pair(o, n, MatchedBy::Name);
                }
            }
        }
    }

    fn by_digest(&mut self) {
        let group = |side: &DiffSide, idx: &[usize]| {
            let mut g: BTreeMap<Digest, Vec<usize>> = BTreeMap::new();
            for &i in idx {
                if let Some(d) = side.functions.get(i).and_then(|f| f.pi) {
                    g.entry(d).or_default().push(i);
                }
            }
            g
        };
        let a = group(self.old, &self.unmatched_old());
        let b = group(self.new, &self.unmatched_new());
        self.pair_groups(a, b, MatchedBy::Digest, false);
        // Saved documents without position-independent digests: the same
        // position-dependent digest at the same offset is the same code.
        let key = |side: &DiffSide, i: usize| {
            side.functions
                .get(i)
                .map(|f| (f.digest, f.addr.wrapping_sub(side.base)))
        };
        let mut a: BTreeMap<(Digest, u64), Vec<usize>> = BTreeMap::new();
        for i in self.unmatched_old() {
            if let Some(k) = key(self.old, i) {
                a.entry(k).or_default().push(i);
            }
        }
        let mut b: BTreeMap<(Digest, u64), Vec<usize>> = BTreeMap::new();
        for i in self.unmatched_new() {
            if let Some(k) = key(self.new, i) {
                b.entry(k).or_default().push(i);
            }
        }
        self.pair_groups(a, b, MatchedBy::Digest, true);
    }

    fn shape(side: &DiffSide, i: usize) -> Option<Shape> {
        let f = side.functions.get(i)?;
        let mut callees: Vec<String> = Vec::new();
        for b in &f.blocks {
            for e in &b.succs {
                if matches!(e.kind, EdgeKind::Call | EdgeKind::TailCall)
                    && let Some(t) = e.addr
                {
                    let name = side
                        .functions
                        .binary_search_by_key(&t, |c| c.addr)
                        .ok()
                        .and_then(|j| side.functions.get(j))
                        .and_then(|c| c.name.clone())
                        .unwrap_or_default();
                    callees.push(name);
                }
            }
        }
        callees.sort();
        Some(Shape {
            blocks: f.blocks.len(),
            edges: f.edge_count(),
            instructions: f.instruction_count(),
            callees,
        })
    }

    fn by_shape(&mut self) {
        let mut a: BTreeMap<Shape, Vec<usize>> = BTreeMap::new();
        for i in self.unmatched_old() {
            if let Some(s) = Self::shape(self.old, i) {
                a.entry(s).or_default().push(i);
            }
        }
        let mut b: BTreeMap<Shape, Vec<usize>> = BTreeMap::new();
        for i in self.unmatched_new() {
            if let Some(s) = Self::shape(self.new, i) {
                b.entry(s).or_default().push(i);
            }
        }
        a.retain(|_, v| {
            v.retain(|&i| self.old.functions.get(i).is_some_and(|f| f.name.is_none()));
            !v.is_empty()
        });
        self.pair_groups(a, b, MatchedBy::Structure, true);
    }

    /// Between consecutive anchors (pairs monotone in both builds), pair
    /// the unmatched functions in order when both sides have as many.
    fn by_gaps(&mut self) {
        let mut anchors: Vec<(usize, usize)> = Vec::new();
        let mut last_new: Option<usize> = None;
        for (&o, &(n, _)) in &self.pairs {
            if last_new.is_none_or(|l| n > l) {
                anchors.push((o, n));
                last_new = Some(n);
            }
        }
        let uo = self.unmatched_old();
        let un = self.unmatched_new();
        type Anchor = Option<(usize, usize)>;
        let mut bounds: Vec<(Anchor, Anchor)> = Vec::new();
        let mut prev: Option<(usize, usize)> = None;
        for &a in &anchors {
            bounds.push((prev, Some(a)));
            prev = Some(a);
        }
        bounds.push((prev, None));
        for (lo, hi) in bounds {
            let in_range = |i: usize, lo: Option<usize>, hi: Option<usize>| {
                lo.is_none_or(|l| i > l) && hi.is_none_or(|h| i < h)
            };
            let os: Vec<usize> = uo
                .iter()
                .copied()
                .filter(|&i| in_range(i, lo.map(|p| p.0), hi.map(|p| p.0)))
                .filter(|i| !self.pairs.contains_key(i))
                .collect();
            let ns: Vec<usize> = un
                .iter()
                .copied()
                .filter(|&i| in_range(i, lo.map(|p| p.1), hi.map(|p| p.1)))
                .filter(|i| !self.new_taken.contains(i))
                .collect();
            if os.is_empty() || os.len() != ns.len() {
                continue;
            }
            for (o, n) in os.into_iter().zip(ns) {
                if self.similar(o, n) {
                    self.pair(o, n, MatchedBy::Structure);
                }
            }
        }
    }

    /// Sizes and block counts within a factor of two.
    fn similar(&self, o: usize, n: usize) -> bool {
        let (Some(a), Some(b)) = (self.old.functions.get(o), self.new.functions.get(n)) else {
            return false;
        };
        if a.name.is_some() && b.name.is_some() {
            // Two different names: a rename reads as removed + added.
            return false;
        }
        let within = |x: u64, y: u64| {
            x.max(1) <= y.max(1).saturating_mul(2) && y.max(1) <= x.max(1).saturating_mul(2)
        };
        within(a.size, b.size) && within(a.blocks.len() as u64, b.blocks.len() as u64)
    }

    fn finish(self) -> Diff {
        let mut summary = DiffSummary {
            old_functions: self.old.functions.len(),
            new_functions: self.new.functions.len(),
            ..DiffSummary::default()
        };
        let mut pairs = Vec::with_capacity(self.pairs.len());
        for (&o, &(n, how)) in &self.pairs {
            let (Some(of), Some(nf)) = (self.old.functions.get(o), self.new.functions.get(n))
            else {
                continue;
            };
            let pair = compare(self.old, self.new, of, nf, how);
            match pair.state {
                PairState::Unchanged => summary.unchanged += 1,
                PairState::Moved => summary.moved += 1,
                PairState::Changed => summary.changed += 1,
                PairState::Unproven => summary.unproven += 1,
            }
            match how {
                MatchedBy::Name => summary.matched_by_name += 1,
                MatchedBy::Digest => summary.matched_by_digest += 1,
                MatchedBy::Structure => summary.matched_by_structure += 1,
            }
            pairs.push(pair);
        }
        let fref = |f: &DiffFunction| FunctionRef {
            name: f.display_name(),
            addr: f.addr,
            size: f.size,
            blocks: f.blocks.len(),
        };
        let removed: Vec<FunctionRef> = self
            .unmatched_old()
            .into_iter()
            .filter_map(|i| self.old.functions.get(i).map(fref))
            .collect();
        let added: Vec<FunctionRef> = self
            .unmatched_new()
            .into_iter()
            .filter_map(|i| self.new.functions.get(i).map(fref))
            .collect();
        summary.added = added.len();
        summary.removed = removed.len();
        Diff {
            summary,
            pairs,
            added,
            removed,
            same_graph_digest: self.old.graph_digest == self.new.graph_digest
                && self.old.arch == self.new.arch,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Shape {
    blocks: usize,
    edges: usize,
    instructions: u64,
    callees: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Edge;

    fn block(addr: u64, size: u64, succs: Vec<Edge>) -> Block {
        Block {
            addr,
            size,
            instructions: 2,
            succs,
        }
    }

    fn func(addr: u64, name: Option<&str>, pi: u8, blocks: Vec<Block>) -> DiffFunction {
        DiffFunction {
            addr,
            size: blocks.iter().map(|b| b.size).sum(),
            name: name.map(str::to_string),
            digest: Digest([pi; 32]),
            pi: Some(Digest([pi; 32])),
            block_pi: Some(
                blocks
                    .iter()
                    .map(|b| Digest([b.size as u8 ^ pi; 32]))
                    .collect(),
            ),
            blocks,
        }
    }

    fn side(functions: Vec<DiffFunction>) -> DiffSide {
        DiffSide {
            arch: "x86_64".into(),
            base: 0,
            graph_digest: Digest([functions.len() as u8; 32]),
            functions,
        }
    }

    fn ret() -> Vec<Edge> {
        vec![Edge {
            addr: None,
            kind: EdgeKind::Return,
        }]
    }

    #[test]
    fn identical_graphs_are_the_same() {
        let a = side(vec![
            func(0x10, Some("a"), 1, vec![block(0x10, 4, ret())]),
            func(0x20, Some("b"), 2, vec![block(0x20, 4, ret())]),
        ]);
        let d = diff(&a, &a.clone());
        assert!(d.is_same());
        assert_eq!(d.summary.unchanged, 2);
        assert!(d.same_graph_digest);
    }

    #[test]
    fn stripped_move_matches_by_digest_and_change_by_position() {
        let old = side(vec![
            func(0x10, None, 1, vec![block(0x10, 4, ret())]),
            func(0x20, None, 2, vec![block(0x20, 4, ret())]),
            func(0x30, None, 3, vec![block(0x30, 4, ret())]),
        ]);
        let mut changed = func(0x38, None, 9, vec![block(0x38, 4, ret())]);
        changed.size = 4;
        let new = side(vec![
            func(0x18, None, 1, vec![block(0x18, 4, ret())]),
            func(0x28, None, 2, vec![block(0x28, 4, ret())]),
            changed,
        ]);
        let d = diff(&old, &new);
        assert_eq!(d.summary.moved, 2);
        assert_eq!(d.summary.changed, 1);
        assert_eq!(d.summary.added + d.summary.removed, 0);
        let c = d
            .pairs
            .iter()
            .find(|p| p.state == PairState::Changed)
            .unwrap();
        assert_eq!((c.old_addr, c.new_addr), (0x30, 0x38));
        assert_eq!(c.matched_by, MatchedBy::Structure);
        assert_eq!(c.blocks_changed.len(), 1);
    }

    #[test]
    fn added_and_removed_functions() {
        let old = side(vec![
            func(0x10, Some("a"), 1, vec![block(0x10, 4, ret())]),
            func(
                0x20,
                Some("gone"),
                2,
                vec![block(0x20, 4, ret()), block(0x24, 4, ret())],
            ),
        ]);
        let new = side(vec![
            func(0x10, Some("a"), 1, vec![block(0x10, 4, ret())]),
            func(0x40, Some("fresh"), 5, vec![block(0x40, 8, ret())]),
        ]);
        let d = diff(&old, &new);
        assert_eq!(d.removed.len(), 1);
        assert_eq!(d.added.len(), 1);
        assert_eq!(d.removed[0].name, "gone");
        assert_eq!(d.added[0].name, "fresh");
        assert!(!d.is_same());
    }

    #[test]
    fn changed_edge_is_listed() {
        let old = side(vec![func(
            0x10,
            Some("f"),
            1,
            vec![
                block(
                    0x10,
                    4,
                    vec![
                        Edge {
                            addr: Some(0x14),
                            kind: EdgeKind::CondNotTaken,
                        },
                        Edge {
                            addr: Some(0x18),
                            kind: EdgeKind::CondTaken,
                        },
                    ],
                ),
                block(0x14, 4, ret()),
                block(0x18, 4, ret()),
            ],
        )]);
        let mut new = old.clone();
        new.functions[0].pi = Some(Digest([7; 32]));
        new.functions[0].blocks[0].succs[1].addr = Some(0x14);
        new.functions[0].block_pi.as_mut().unwrap()[0] = Digest([8; 32]);
        let d = diff(&old, &new);
        let p = &d.pairs[0];
        assert_eq!(p.state, PairState::Changed);
        assert_eq!(p.edges_removed.len(), 1);
        assert_eq!(p.edges_added.len(), 1);
        assert_eq!(p.edges_added[0].target, "+0x4");
        assert_eq!(p.blocks_changed.len(), 1);
    }

    #[test]
    fn lcs_is_bounded_and_correct() {
        assert_eq!(lcs(&[1, 2, 3], &[1, 3]), vec![(0, 0), (2, 1)]);
        assert!(lcs::<u8>(&[], &[1]).is_empty());
    }
}
