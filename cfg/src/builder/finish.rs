//! From explored functions to blocks, edges and the per-image lists.

use std::collections::BTreeSet;

use rayon::prelude::*;

use crate::arch::{Cursor, Flow, Insn, Isa};
use crate::image::{CodeRange, Image};
use crate::limits;
use crate::model::{
    Anomaly, Block, CapHit, CapKind, Edge, EdgeKind, FunctionSource, JumpTableInfo, Unresolved,
};

use super::gaps::{covered, gaps, instruction_coverage};
use super::{Discovery, Explored};

/// A recovered function before digests are computed.
#[derive(Debug, Clone)]
pub(crate) struct RawFunction {
    pub addr: u64,
    pub size: u64,
    pub source: FunctionSource,
    pub noreturn: bool,
    pub import_slot: Option<u64>,
    pub blocks: Vec<Block>,
}

/// Everything the builder found, before naming and digests.
pub(crate) struct Recovered {
    pub functions: Vec<RawFunction>,
    pub unresolved: Vec<Unresolved>,
    pub jump_tables: Vec<JumpTableInfo>,
    pub anomalies: Vec<Anomaly>,
    pub unexplained_bytes: u64,
    pub return_sites: Vec<u64>,
    pub caps: Vec<CapHit>,
    /// Instructions the recovery decoded ([`crate::Cfg::work`]).
    pub work: u64,
}

/// What one function adds to the image-wide lists of [`Recovered`].
#[derive(Default)]
struct FunctionLists {
    unresolved: Vec<Unresolved>,
    jump_tables: Vec<JumpTableInfo>,
    anomalies: Vec<Anomaly>,
    return_sites: Vec<u64>,
    caps: Vec<CapHit>,
}

impl FunctionLists {
    fn of(e: &Explored) -> FunctionLists {
        let mut l = FunctionLists::default();
        for &j in &e.unresolved {
            l.unresolved.push(Unresolved {
                addr: j,
                function: e.start,
            });
        }
        for (&j, t) in &e.tables {
            l.jump_tables.push(JumpTableInfo {
                jump: j,
                table: t.table,
                entries: t.targets.len() as u64,
                entry_size: t.entry_size,
            });
        }
        let mut note = |kind: &str, addr: u64| {
            l.anomalies.push(Anomaly {
                kind: kind.to_string(),
                addr,
                function: e.start,
            });
        };
        if let Some(a) = e.invalid {
            note("invalid-instruction", a);
        }
        if let Some(a) = e.overlap {
            note("overlapping-instructions", a);
        }
        if e.truncated {
            note("function-too-large", e.start);
        }
        for &a in e.falls_into.keys() {
            note("falls-into-function", a);
        }
        for &a in &e.calls_outside {
            note("call-outside-code", a);
        }
        for &a in &e.rejected_tables {
            note("jump-table-rejected", a);
        }
        if e.truncated {
            l.caps.push(CapHit {
                kind: CapKind::FunctionInstructions,
                limit: limits::MAX_FUNCTION_INSTRUCTIONS as u64,
                function: Some(e.start),
            });
        }
        for i in e.insns.flows() {
            if matches!(i.flow, Flow::Call(_) | Flow::IndirectCall { .. }) {
                l.return_sites.push(i.end());
            }
        }
        l
    }
}

/// What [`finish`] reads from the explored functions without taking them
/// apart: it can be found while the noreturn fixpoint runs.
pub(super) struct Lists {
    unresolved: Vec<Unresolved>,
    jump_tables: Vec<JumpTableInfo>,
    anomalies: Vec<Anomaly>,
    return_sites: Vec<u64>,
    caps: Vec<CapHit>,
    unexplained_bytes: u64,
    starts: Vec<u64>,
    code_cov: Vec<(u64, u64)>,
}

impl Lists {
    pub(super) fn of(image: &Image<'_>, dec: &dyn Isa, code: &[CodeRange], d: &Discovery) -> Self {
        // Each function's share of the image-wide lists, found in parallel
        // and joined in function order (every list is sorted below anyway).
        let lists: Vec<FunctionLists> = d
            .explored
            .par_iter()
            .map(|(_, e)| FunctionLists::of(e))
            .collect();
        let mut unresolved = Vec::new();
        let mut jump_tables = Vec::new();
        let mut anomalies = Vec::new();
        let mut return_sites = Vec::new();
        let mut caps = Vec::new();
        for l in lists {
            unresolved.extend(l.unresolved);
            jump_tables.extend(l.jump_tables);
            anomalies.extend(l.anomalies);
            return_sites.extend(l.return_sites);
            caps.extend(l.caps);
        }
        unresolved.sort();
        unresolved.dedup();
        jump_tables.sort_by_key(|t| (t.jump, t.table));
        jump_tables.dedup();
        anomalies.sort();
        anomalies.dedup();
        return_sites.sort_unstable();
        return_sites.dedup();

        let cov = covered(&d.explored);
        let unexplained_bytes = if d.whole_image {
            gaps(code, &cov)
                .par_iter()
                .map(|&(s, e)| non_padding_bytes(image, dec, s, e))
                .sum()
        } else {
            0
        };
        Lists {
            unresolved,
            jump_tables,
            anomalies,
            return_sites,
            caps,
            unexplained_bytes,
            starts: d.explored.keys().copied().collect(),
            // A function extends from its entry over the decoded code that
            // follows it, up to the next entry, whichever function's body
            // that code was reached from: the cold part `f.cold` holds
            // blocks entered from `f`.
            code_cov: instruction_coverage(&d.explored),
        }
    }
}

/// Turn explored functions into blocks and edges; `lists` is
/// [`Lists::of`] `d`.
pub(super) fn finish(mut d: Discovery, lists: Lists) -> Recovered {
    let mut caps = std::mem::take(&mut d.caps);
    let Lists {
        unresolved,
        jump_tables,
        anomalies,
        return_sites,
        caps: function_caps,
        unexplained_bytes,
        starts,
        code_cov,
    } = lists;
    caps.extend(function_caps);
    let Discovery {
        explored,
        sources,
        noreturn,
        ..
    } = d;
    // Each function's decoded instructions are dropped as soon as its
    // blocks are built: the two never all live at once.
    let mut functions: Vec<RawFunction> = explored
        .into_par_iter()
        .map(|(start, e)| {
            let blocks = blocks_of(&e);
            let import_slot = e.import_jumps.values().next().copied();
            drop(e);
            let next_start = starts
                .get(starts.partition_point(|&s| s <= start))
                .copied()
                .unwrap_or(u64::MAX);
            let first = code_cov.partition_point(|&(_, end)| end <= start);
            let end = code_cov
                .get(first..)
                .unwrap_or(&[])
                .iter()
                .take_while(|&&(s, _)| s < next_start)
                .map(|&(_, e)| e.min(next_start))
                .max()
                .unwrap_or(start)
                .max(start);
            RawFunction {
                addr: start,
                size: end.saturating_sub(start),
                source: sources.get(&start).copied().unwrap_or(FunctionSource::Gap),
                noreturn: noreturn.contains(&start),
                import_slot,
                blocks,
            }
        })
        .collect();
    functions.sort_by_key(|f| f.addr);

    Recovered {
        functions,
        unresolved,
        jump_tables,
        anomalies,
        unexplained_bytes,
        return_sites,
        caps,
        work: 0,
    }
}

pub(super) fn non_padding_bytes(image: &Image<'_>, dec: &dyn Isa, start: u64, end: u64) -> u64 {
    let mut a = start;
    let mut count = 0u64;
    let mut sweep = Sweep::new(image, dec, end);
    while a < end {
        let Some(decoded) = sweep.at(a) else {
            return count.saturating_add(end.saturating_sub(a));
        };
        match decoded {
            Some((i, padding)) if i.end() <= end && i.end() > a => {
                if !padding {
                    count = count.saturating_add(u64::from(i.len));
                }
                a = i.end();
            }
            _ => {
                let step = dec.alignment().min(end.saturating_sub(a)).max(1);
                count = count.saturating_add(step);
                a = a.saturating_add(step);
            }
        }
    }
    count
}

/// Linear decoding of the bytes below `end`, one instruction at each
/// address asked for, each decoded on its own (no `prev`): the gap sweeps.
/// Consecutive instructions share one [`Cursor`].
pub(super) struct Sweep<'a> {
    image: &'a Image<'a>,
    dec: &'a dyn Isa,
    end: u64,
    cursor: Option<Box<dyn Cursor + 'a>>,
    /// Where the cursor's next instruction starts, and where it started.
    next: u64,
    from: u64,
}

impl<'a> Sweep<'a> {
    pub(super) fn new(image: &'a Image<'a>, dec: &'a dyn Isa, end: u64) -> Self {
        Sweep {
            image,
            dec,
            end,
            cursor: None,
            next: 0,
            from: 0,
        }
    }

    fn bytes_at(&self, a: u64) -> Option<&'a [u8]> {
        self.image.bytes_until(a, self.end)
    }

    /// The instruction at `a` and whether it is padding; `Some(None)` when
    /// the bytes there do not decode, `None` when there are no bytes.
    pub(super) fn at(&mut self, a: u64) -> Option<Option<(Insn, bool)>> {
        if self.cursor.is_none() || self.next != a {
            let bytes = self.bytes_at(a)?;
            self.cursor = Some(self.dec.cursor(bytes, a));
            self.from = a;
        }
        let cursor = self.cursor.as_mut()?;
        if let Some(i) = cursor.next(None) {
            let padding = cursor.is_padding();
            self.next = i.end();
            return Some(Some((i, padding)));
        }
        self.cursor = None;
        if self.from == a {
            // The cursor held exactly the bytes at `a`.
            return Some(None);
        }
        // The cursor's bytes ended before `a`'s do (a section boundary):
        // decode it on its own.
        let w = self.bytes_at(a)?;
        Some(
            self.dec
                .decode(w, a, None)
                .map(|i| (i, self.dec.is_padding(w, &i))),
        )
    }
}

/// Split a function's instructions into basic blocks with typed edges.
fn blocks_of(e: &Explored) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut cur: Option<(u64, u64, u32)> = None; // start, end, count
    let mut last: Option<Insn> = None;
    let close = |blocks: &mut Vec<Block>, start: u64, end: u64, count: u32, last: &Insn| {
        blocks.push(Block {
            addr: start,
            size: end.saturating_sub(start),
            instructions: count,
            succs: successors(e, last),
        });
    };
    // Instructions and leaders both rise: walk them side by side instead
    // of looking each instruction up among the leaders.
    let mut leaders = e.leaders.iter().copied().peekable();
    for insn in e.insns.iter() {
        while leaders.next_if(|&l| l < insn.addr).is_some() {}
        let leader = leaders.peek() == Some(&insn.addr);
        if let (Some((s, end, n)), Some(l)) = (cur, last)
            && (leader || insn.addr != end)
        {
            close(&mut blocks, s, end, n, &l);
            cur = None;
        }
        cur = Some(match cur {
            None => (insn.addr, insn.end(), 1),
            Some((s, _, n)) => (s, insn.end(), n.saturating_add(1)),
        });
        last = Some(insn);
        if insn.flow.ends_block() {
            if let Some((s, end, n)) = cur {
                close(&mut blocks, s, end, n, &insn);
            }
            cur = None;
        }
    }
    if let (Some((s, end, n)), Some(l)) = (cur, last) {
        close(&mut blocks, s, end, n, &l);
    }
    blocks
}

fn successors(e: &Explored, last: &Insn) -> Vec<Edge> {
    let next = last.end();
    let edge = |addr: Option<u64>, kind: EdgeKind| Edge { addr, kind };
    let fallthrough = || {
        if e.insns.contains(next) {
            Some(edge(Some(next), EdgeKind::Fallthrough))
        } else {
            e.falls_into
                .get(&last.addr)
                .map(|&t| edge(Some(t), EdgeKind::Fallthrough))
        }
    };
    let mut out: Vec<Edge> = Vec::new();
    match last.flow {
        Flow::Seq => out.extend(fallthrough()),
        Flow::Jump(t) => {
            let kind = if e.tails.contains(&last.addr) {
                EdgeKind::TailCall
            } else {
                EdgeKind::Jump
            };
            out.push(edge(Some(t), kind));
        }
        Flow::CondJump(t) => {
            let kind = if e.tails.contains(&last.addr) {
                EdgeKind::TailCall
            } else {
                EdgeKind::CondTaken
            };
            out.push(edge(Some(t), kind));
            out.push(edge(Some(next), EdgeKind::CondNotTaken));
        }
        Flow::Call(t) => {
            out.push(edge(Some(t), EdgeKind::Call));
            if !e.noreturn_calls.contains(&last.addr) {
                out.extend(fallthrough());
            }
        }
        Flow::IndirectCall { .. } => {
            out.push(edge(None, EdgeKind::IndirectCall));
            if !e.noreturn_calls.contains(&last.addr) {
                out.extend(fallthrough());
            }
        }
        Flow::IndirectJump { .. } => {
            if let Some(t) = e.tables.get(&last.addr) {
                let distinct: BTreeSet<u64> = t.targets.iter().copied().collect();
                out.extend(
                    distinct
                        .into_iter()
                        .map(|a| edge(Some(a), EdgeKind::JumpTable)),
                );
            } else if e.import_jumps.contains_key(&last.addr) {
                out.push(edge(None, EdgeKind::TailCall));
            } else {
                out.push(edge(None, EdgeKind::IndirectJump));
            }
        }
        Flow::Return => out.push(edge(None, EdgeKind::Return)),
        Flow::Stop => {}
    }
    out.sort_by_key(|x| (x.kind, x.addr));
    out.dedup();
    out
}
