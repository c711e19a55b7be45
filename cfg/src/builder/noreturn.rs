//! The noreturn fixpoint.
//!
//! A function may return when a return instruction (or a tail call to a
//! function that may return, or an exit the analysis cannot follow) is
//! reachable from its entry, where the code after a call is reachable only
//! if the callee may return. The least fixpoint of that rule starts from
//! "nothing returns" and adds functions as paths to a return open up, so a
//! function that only ever calls itself or another function that never
//! returns (`luaD_throw` calls `longjmp`, `abort` or itself) stays noreturn,
//! and so does every caller whose paths all end in such calls (static glibc's
//! `malloc_printerr` -> `__libc_message` -> `abort`). Names play no part:
//! only imports (whose bodies are not in the binary) are noreturn by name,
//! and they come in as `known`.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use crate::arch::Flow;

use super::Explored;
use super::entries::Entries;

/// Where a waiting path resumes when the function it waits for turns out to
/// return: an address of the waiting function, or its own return.
#[derive(Clone, Copy)]
enum Resume {
    At(u64),
    Returns,
}

/// Functions are numbered by their place in address order: the fixpoint
/// looks callees up millions of times in a whole program.
struct Fixpoint<'a> {
    entries: Entries,
    bodies: Vec<&'a Explored>,
    known: &'a BTreeSet<u64>,
    noreturn_slots: &'a BTreeSet<u64>,
    returns: Vec<bool>,
    /// callee -> paths blocked until it returns.
    waiting: Vec<Vec<(usize, Resume)>>,
    /// Where walks of each function started: a bit per block leader of
    /// the function (`leaders`, at `leader_base`), the rare other start in
    /// `visited_other`.
    leaders: Vec<Vec<u64>>,
    leader_base: Vec<usize>,
    visited_leaders: Vec<bool>,
    visited_other: BTreeSet<(usize, u64)>,
    work: Vec<(usize, u64)>,
}

impl Fixpoint<'_> {
    fn index(&self, a: u64) -> Option<usize> {
        self.entries.index(a)
    }

    fn returns(&self, f: usize) -> bool {
        self.returns.get(f).copied().unwrap_or(false)
    }

    /// Record a walk of `f` from `from`; `false` when one was made before.
    fn first_visit(&mut self, f: usize, from: u64) -> bool {
        let leader = self
            .leaders
            .get(f)
            .and_then(|l| l.binary_search(&from).ok())
            .zip(self.leader_base.get(f))
            .and_then(|(i, &base)| self.visited_leaders.get_mut(base.saturating_add(i)));
        match leader {
            Some(v) => !std::mem::replace(v, true),
            None => self.visited_other.insert((f, from)),
        }
    }

    fn mark_returns(&mut self, f: usize) {
        match self.returns.get_mut(f) {
            Some(r) if !*r => *r = true,
            _ => return,
        }
        let waiting = self
            .waiting
            .get_mut(f)
            .map(std::mem::take)
            .unwrap_or_default();
        for (g, resume) in waiting {
            match resume {
                Resume::At(a) => self.work.push((g, a)),
                Resume::Returns => self.mark_returns_later(g),
            }
        }
    }

    /// Queue `f` as returning (through the work list: `mark_returns`
    /// recursing over long chains would use unbounded stack).
    fn mark_returns_later(&mut self, f: usize) {
        self.work.push((f, u64::MAX));
    }

    /// A transfer from `f` to the entry of `t` (a tail call, or straight-line
    /// code running into `t`): `f` returns if `t` does.
    fn tail(&mut self, f: usize, t: u64) {
        if self.known.contains(&t) {
            return;
        }
        match self.index(t) {
            Some(j) if !self.returns(j) => {
                if let Some(w) = self.waiting.get_mut(j) {
                    w.push((f, Resume::Returns));
                }
            }
            _ => self.mark_returns_later(f),
        }
    }

    /// Follow the code of `f` from `from` until every path from there ends,
    /// blocks on a callee, or reaches a return.
    fn walk(&mut self, f: usize, from: u64) {
        if from == u64::MAX {
            self.mark_returns(f);
            return;
        }
        if self.returns(f) || !self.first_visit(f, from) {
            return;
        }
        let Some(&e) = self.bodies.get(f) else {
            return;
        };
        let mut a = from;
        loop {
            let Some((flows, run_end)) = e.insns.flows_from(a) else {
                // Decoding stopped here: straight-line code ran into another
                // function, or could not go on (invalid bytes, cut short).
                match e.falls_into_at(a) {
                    Some(t) => self.tail(f, t),
                    None => self.mark_returns_later(f),
                }
                return;
            };
            // Straight-line instructions change nothing here: only the
            // ones with control flow are visited, and the run's end is
            // where the walk goes on.
            for insn in flows {
                let next = insn.end();
                match insn.flow {
                    Flow::Seq => continue,
                    Flow::Jump(t) => {
                        if e.tails.contains(&insn.addr) {
                            self.tail(f, t);
                        } else {
                            self.work.push((f, t));
                        }
                        return;
                    }
                    Flow::CondJump(t) => {
                        if e.tails.contains(&insn.addr) {
                            self.tail(f, t);
                        } else {
                            self.work.push((f, t));
                        }
                    }
                    Flow::Call(t) => {
                        if e.noreturn_calls.contains(&insn.addr) || self.known.contains(&t) {
                            return;
                        }
                        if let Some(j) = self.index(t)
                            && !self.returns(j)
                        {
                            if let Some(w) = self.waiting.get_mut(j) {
                                w.push((f, Resume::At(next)));
                            }
                            return;
                        }
                    }
                    Flow::IndirectCall { slot } => {
                        if e.noreturn_calls.contains(&insn.addr)
                            || slot.is_some_and(|s| self.noreturn_slots.contains(&s))
                        {
                            return;
                        }
                    }
                    Flow::IndirectJump { .. } => {
                        if let Some(t) = e.tables.get(&insn.addr) {
                            for &x in &t.targets {
                                self.work.push((f, x));
                            }
                        } else if let Some(s) = e.import_jumps.get(&insn.addr) {
                            if !self.noreturn_slots.contains(s) {
                                self.mark_returns_later(f);
                            }
                        } else {
                            // Unresolved: it may go anywhere, a return too.
                            self.mark_returns_later(f);
                        }
                        return;
                    }
                    Flow::Return => {
                        self.mark_returns_later(f);
                        return;
                    }
                    Flow::Stop => return,
                }
            }
            if run_end <= a {
                return;
            }
            a = run_end;
        }
    }
}

/// The functions that never return: `known` (imports and their stubs) and
/// every explored function no path of which reaches a return.
pub(super) fn compute_noreturn(
    explored: &BTreeMap<u64, Box<Explored>>,
    known: &BTreeSet<u64>,
    noreturn_slots: &BTreeSet<u64>,
) -> BTreeSet<u64> {
    let n = explored.len();
    let mut fx = Fixpoint {
        entries: Entries::new(explored.keys().copied().collect()),
        bodies: explored.values().map(|e| &**e).collect(),
        known,
        noreturn_slots,
        returns: vec![false; n],
        waiting: vec![Vec::new(); n],
        leaders: Vec::new(),
        leader_base: Vec::new(),
        visited_leaders: Vec::new(),
        visited_other: BTreeSet::new(),
        work: Vec::new(),
    };
    fx.leaders = fx
        .bodies
        .par_iter()
        .map(|e| e.leaders.iter().copied().collect())
        .collect();
    let mut total = 0usize;
    for l in &fx.leaders {
        fx.leader_base.push(total);
        total = total.saturating_add(l.len());
    }
    fx.visited_leaders = vec![false; total];
    for (f, e) in explored.values().enumerate() {
        if known.contains(&e.start) {
            continue;
        }
        if e.truncated {
            fx.work.push((f, u64::MAX));
            continue;
        }
        fx.work.push((f, e.start));
        // The unwinder enters landing pads: a `catch` may return.
        fx.work.extend(e.pads.iter().map(|&p| (f, p)));
    }
    while let Some((f, a)) = fx.work.pop() {
        fx.walk(f, a);
    }
    let mut out: BTreeSet<u64> = known.clone();
    out.extend(
        fx.entries
            .starts()
            .iter()
            .zip(&fx.returns)
            .filter(|&(_, &r)| !r)
            .map(|(&a, _)| a),
    );
    out
}
