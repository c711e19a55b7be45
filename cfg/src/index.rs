//! The decoded instructions of one function, stored as runs of contiguous
//! instructions: decoding appends to a run, so the per-instruction cost is
//! a vector push, and lookups by address are a map lookup plus a binary
//! search.

use std::collections::BTreeMap;

use crate::arch::Insn;

/// Instructions indexed by address.
#[derive(Debug, Clone, Default)]
pub(crate) struct InsnIndex {
    /// Runs keyed by their first address; within a run every instruction
    /// ends where the next one starts.
    runs: BTreeMap<u64, Vec<Insn>>,
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
            && run.last().is_some_and(|l| l.end() == insn.addr)
        {
            run.push(insn);
            return;
        }
        if let Some((&k, run)) = self.runs.range_mut(..insn.addr).next_back()
            && run.last().is_some_and(|l| l.end() == insn.addr)
        {
            run.push(insn);
            self.last_run = Some(k);
            return;
        }
        self.runs.insert(insn.addr, vec![insn]);
        self.last_run = Some(insn.addr);
    }

    fn run_at_or_before(&self, addr: u64) -> Option<&Vec<Insn>> {
        self.runs.range(..=addr).next_back().map(|(_, r)| r)
    }

    /// The instruction starting at `addr`.
    pub fn get(&self, addr: u64) -> Option<&Insn> {
        let run = self.run_at_or_before(addr)?;
        let i = run.binary_search_by_key(&addr, |x| x.addr).ok()?;
        run.get(i)
    }

    /// The instructions from the one starting at `addr` to the end of its
    /// run (contiguous decoded code).
    pub fn run_from(&self, addr: u64) -> Option<&[Insn]> {
        let run = self.run_at_or_before(addr)?;
        let i = run.binary_search_by_key(&addr, |x| x.addr).ok()?;
        run.get(i..)
    }

    /// Whether an instruction starts at `addr`.
    pub fn contains(&self, addr: u64) -> bool {
        self.get(addr).is_some()
    }

    /// The last instruction starting before `addr`.
    pub fn prev_before(&self, addr: u64) -> Option<&Insn> {
        let (_, run) = self.runs.range(..addr).next_back()?;
        let i = run.partition_point(|x| x.addr < addr);
        run.get(i.checked_sub(1)?)
    }

    /// The first instruction address at or after `addr`.
    pub fn next_from(&self, addr: u64) -> Option<u64> {
        if let Some(run) = self.run_at_or_before(addr) {
            let i = run.partition_point(|x| x.addr < addr);
            if let Some(x) = run.get(i) {
                return Some(x.addr);
            }
        }
        self.runs.range(addr..).next().map(|(&k, _)| k)
    }

    /// All instructions in address order.
    pub fn iter(&self) -> impl Iterator<Item = &Insn> {
        self.runs.values().flatten()
    }

    /// Contiguous byte ranges covered, in address order.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.runs
            .values()
            .filter_map(|r| Some((r.first()?.addr, r.last()?.end())))
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
    use crate::arch::Flow;

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
        ix.insert(insn(15, 5)); // extends the first run
        assert_eq!(ix.len(), 4);
        assert!(ix.contains(12) && ix.contains(15) && !ix.contains(13));
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
    }
}
