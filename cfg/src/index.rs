//! The decoded instructions of one function, stored compactly as runs of
//! contiguous instructions: per instruction only its offset in the run (4
//! bytes), and the control flow of the few that have any. A whole-program
//! recovery keeps every function's instructions until the graph is built
//! (the noreturn and consistency passes revisit them), so this is most of
//! its memory: 6.5 million instructions of `/usr/bin/node` take about 26 MB
//! here, against 520 MB as decoded [`Insn`] values.
//!
//! Lookups by address are a map lookup plus a binary search; decoding
//! appends to a run, so the per-instruction cost is a vector push.

use std::collections::BTreeMap;

use crate::arch::{Flow, Insn};

/// Contiguous instructions: each ends where the next one starts.
#[derive(Debug, Clone, Default)]
struct Run {
    /// Offset of every instruction from the run's first address, rising.
    offs: Vec<u32>,
    /// Offset one past the last instruction.
    end: u32,
    /// (index into `offs`, flow) of the instructions that are not
    /// [`Flow::Seq`], by index.
    flows: Vec<(u32, Flow)>,
}

impl Run {
    fn flow_of(&self, i: usize) -> Flow {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        self.flows
            .binary_search_by_key(&i, |&(k, _)| k)
            .ok()
            .and_then(|k| self.flows.get(k))
            .map_or(Flow::Seq, |&(_, f)| f)
    }

    fn insn(&self, start: u64, i: usize) -> Option<Insn> {
        self.insn_with(start, i, self.flow_of(i))
    }

    /// The instruction at index `i`, whose flow the caller already has
    /// (from `flows`): no search for it.
    fn insn_with(&self, start: u64, i: usize, flow: Flow) -> Option<Insn> {
        let off = *self.offs.get(i)?;
        let next = self
            .offs
            .get(i.wrapping_add(1))
            .copied()
            .unwrap_or(self.end);
        Some(Insn {
            addr: start.wrapping_add(u64::from(off)),
            len: u8::try_from(next.saturating_sub(off)).unwrap_or(u8::MAX),
            flow,
            data_ref: None,
            konst: None,
        })
    }

    /// Index of the instruction at `addr`, for a run starting at `start`.
    fn index_of(&self, start: u64, addr: u64) -> Option<usize> {
        let off = u32::try_from(addr.checked_sub(start)?).ok()?;
        self.offs.binary_search(&off).ok()
    }

    fn push(&mut self, start: u64, insn: &Insn) -> bool {
        let Some(off) = insn
            .addr
            .checked_sub(start)
            .and_then(|o| u32::try_from(o).ok())
        else {
            return false;
        };
        let Some(end) = off.checked_add(u32::from(insn.len)) else {
            return false;
        };
        if insn.flow != Flow::Seq {
            let i = u32::try_from(self.offs.len()).unwrap_or(u32::MAX);
            self.flows.push((i, insn.flow));
        }
        self.offs.push(off);
        self.end = end;
        true
    }

    /// The instructions from index `i` on.
    fn from(&self, start: u64, i: usize) -> impl Iterator<Item = Insn> + '_ {
        // Walk the flows alongside the offsets instead of searching them.
        let mut f = self
            .flows
            .partition_point(|&(k, _)| usize::try_from(k).unwrap_or(usize::MAX) < i);
        (i..self.offs.len()).filter_map(move |j| {
            let off = *self.offs.get(j)?;
            let next = self
                .offs
                .get(j.wrapping_add(1))
                .copied()
                .unwrap_or(self.end);
            let flow = match self.flows.get(f) {
                Some(&(k, fl)) if usize::try_from(k).ok() == Some(j) => {
                    f = f.wrapping_add(1);
                    fl
                }
                _ => Flow::Seq,
            };
            Some(Insn {
                addr: start.wrapping_add(u64::from(off)),
                len: u8::try_from(next.saturating_sub(off)).unwrap_or(u8::MAX),
                flow,
                data_ref: None,
                konst: None,
            })
        })
    }
}

/// Instructions indexed by address. Instructions read back carry their
/// address, length and flow; `data_ref` and `konst` (which only decoding
/// itself needs) are not kept.
#[derive(Debug, Clone, Default)]
pub(crate) struct InsnIndex {
    /// Runs keyed by their first address.
    runs: BTreeMap<u64, Run>,
    /// Key of the run the last instruction was appended to.
    last_run: Option<u64>,
    len: usize,
}

impl InsnIndex {
    /// Number of instructions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Add an instruction that overlaps no other.
    pub fn insert(&mut self, insn: Insn) {
        self.len = self.len.saturating_add(1);
        if let Some(k) = self.last_run
            && let Some(run) = self.runs.get_mut(&k)
            && k.wrapping_add(u64::from(run.end)) == insn.addr
            && run.push(k, &insn)
        {
            return;
        }
        if let Some((&k, run)) = self.runs.range_mut(..insn.addr).next_back()
            && k.wrapping_add(u64::from(run.end)) == insn.addr
            && run.push(k, &insn)
        {
            self.last_run = Some(k);
            return;
        }
        let mut run = Run {
            offs: Vec::with_capacity(16),
            ..Run::default()
        };
        if run.push(insn.addr, &insn) {
            self.runs.insert(insn.addr, run);
            self.last_run = Some(insn.addr);
        } else {
            self.len = self.len.saturating_sub(1);
        }
    }

    fn run_at_or_before(&self, addr: u64) -> Option<(u64, &Run)> {
        self.runs.range(..=addr).next_back().map(|(&k, r)| (k, r))
    }

    /// The instruction starting at `addr`.
    #[cfg(test)]
    pub fn get(&self, addr: u64) -> Option<Insn> {
        let (start, run) = self.run_at_or_before(addr)?;
        run.insn(start, run.index_of(start, addr)?)
    }

    /// The instructions from the one starting at `addr` to the end of its
    /// run (contiguous decoded code); `None` when none starts at `addr`.
    #[cfg(test)]
    pub fn run_from(&self, addr: u64) -> Option<impl Iterator<Item = Insn> + '_> {
        let (start, run) = self.run_at_or_before(addr)?;
        let i = run.index_of(start, addr)?;
        Some(run.from(start, i))
    }

    /// The instructions that are not [`Flow::Seq`] from the one starting at
    /// `addr` to the end of its run, and the address where the run ends;
    /// `None` when no instruction starts at `addr`. For walks that only act
    /// on control flow: straight-line instructions are skipped, not built.
    pub fn flows_from(&self, addr: u64) -> Option<(impl Iterator<Item = Insn> + '_, u64)> {
        let (start, run) = self.run_at_or_before(addr)?;
        let i = run.index_of(start, addr)?;
        let first = run
            .flows
            .partition_point(|&(k, _)| usize::try_from(k).unwrap_or(usize::MAX) < i);
        let flows = run
            .flows
            .get(first..)
            .unwrap_or(&[])
            .iter()
            .filter_map(move |&(k, flow)| run.insn_with(start, usize::try_from(k).ok()?, flow));
        Some((flows, start.wrapping_add(u64::from(run.end))))
    }

    /// Whether an instruction starts at `addr`.
    pub fn contains(&self, addr: u64) -> bool {
        self.run_at_or_before(addr)
            .is_some_and(|(start, run)| run.index_of(start, addr).is_some())
    }

    /// The last instruction starting before `addr`.
    pub fn prev_before(&self, addr: u64) -> Option<Insn> {
        let (&start, run) = self.runs.range(..addr).next_back()?;
        let off = addr.saturating_sub(start);
        let i = run.offs.partition_point(|&o| u64::from(o) < off);
        run.insn(start, i.checked_sub(1)?)
    }

    /// The first instruction address at or after `addr`.
    pub fn next_from(&self, addr: u64) -> Option<u64> {
        if let Some((start, run)) = self.run_at_or_before(addr) {
            let off = addr.saturating_sub(start);
            let i = run.offs.partition_point(|&o| u64::from(o) < off);
            if let Some(&o) = run.offs.get(i) {
                return Some(start.wrapping_add(u64::from(o)));
            }
        }
        self.runs.range(addr..).next().map(|(&k, _)| k)
    }

    /// All instructions in address order.
    pub fn iter(&self) -> impl Iterator<Item = Insn> + '_ {
        self.runs
            .iter()
            .flat_map(|(&start, run)| run.from(start, 0))
    }

    /// The instructions that are not [`Flow::Seq`], in address order.
    pub fn flows(&self) -> impl Iterator<Item = Insn> + '_ {
        self.runs.iter().flat_map(|(&start, run)| {
            run.flows
                .iter()
                .filter_map(move |&(i, flow)| run.insn_with(start, usize::try_from(i).ok()?, flow))
        })
    }

    /// Contiguous byte ranges covered, in address order.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.runs
            .iter()
            .map(|(&k, r)| (k, k.wrapping_add(u64::from(r.end))))
    }

    /// Lowest and one-past-highest byte.
    pub fn extent(&self) -> Option<(u64, u64)> {
        let lo = *self.runs.keys().next()?;
        let hi = self.ranges().map(|(_, e)| e).max()?;
        Some((lo, hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(addr: u64, len: u8) -> Insn {
        Insn {
            addr,
            len,
            flow: Flow::Seq,
            data_ref: None,
            konst: None,
        }
    }

    #[test]
    fn runs_and_lookups() {
        let mut ix = InsnIndex::default();
        ix.insert(insn(10, 2));
        ix.insert(insn(12, 3));
        ix.insert(insn(30, 1));
        ix.insert(Insn {
            flow: Flow::Jump(10),
            ..insn(15, 5)
        }); // extends the first run
        assert_eq!(ix.len(), 4);
        assert!(ix.contains(12) && ix.contains(15) && !ix.contains(13));
        assert_eq!(
            ix.get(15).map(|i| (i.len, i.flow)),
            Some((5, Flow::Jump(10)))
        );
        assert_eq!(ix.get(12).map(|i| (i.len, i.flow)), Some((3, Flow::Seq)));
        assert_eq!(ix.prev_before(15).map(|i| i.addr), Some(12));
        assert_eq!(ix.prev_before(30).map(|i| i.addr), Some(15));
        assert_eq!(ix.prev_before(10), None);
        assert_eq!(ix.next_from(13), Some(15));
        assert_eq!(ix.next_from(21), Some(30));
        assert_eq!(ix.next_from(31), None);
        assert_eq!(ix.ranges().collect::<Vec<_>>(), vec![(10, 20), (30, 31)]);
        assert_eq!(ix.extent(), Some((10, 31)));
        let addrs: Vec<u64> = ix.iter().map(|i| i.addr).collect();
        assert_eq!(addrs, vec![10, 12, 15, 30]);
        let from12: Vec<(u64, Flow)> = ix.run_from(12).unwrap().map(|i| (i.addr, i.flow)).collect();
        assert_eq!(from12, vec![(12, Flow::Seq), (15, Flow::Jump(10))]);
        assert_eq!(ix.flows().map(|i| i.addr).collect::<Vec<_>>(), vec![15]);
        let (flows, end) = ix.flows_from(10).unwrap();
        assert_eq!(
            flows.map(|i| (i.addr, i.len)).collect::<Vec<_>>(),
            vec![(15, 5)]
        );
        assert_eq!(end, 20);
        let (flows, end) = ix.flows_from(30).unwrap();
        assert_eq!((flows.count(), end), (0, 31));
        assert!(ix.flows_from(16).is_none());
    }
}
