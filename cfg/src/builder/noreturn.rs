//! The noreturn fixpoint.

use std::collections::{BTreeMap, BTreeSet};

use crate::arch::Flow;

use super::Explored;

/// instruction, an unresolved indirect jump, a truncated or broken decode, a
/// tail call or fallthrough into something that returns, or an indirect jump
/// through an import slot that is not known noreturn.
/// Least fixpoint of "may return": a function returns if it has a return
pub(super) fn compute_noreturn(
    explored: &BTreeMap<u64, Explored>,
    known: &BTreeSet<u64>,
    noreturn_slots: &BTreeSet<u64>,
) -> BTreeSet<u64> {
    let mut returns: BTreeSet<u64> = BTreeSet::new();
    // Reverse edges: target -> functions that tail-call or fall into it.
    let mut rev: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut work: Vec<u64> = Vec::new();
    for e in explored.values() {
        if known.contains(&e.start) {
            continue;
        }
        let base = e.has_return
            || !e.unresolved.is_empty()
            || e.truncated
            || e.invalid.is_some()
            || e.overlap.is_some()
            || e.import_jumps.values().any(|s| !noreturn_slots.contains(s))
            || e.tails.iter().any(|j| {
                // A tail call out of the image or to something not analysed.
                match e.insns.get(*j).map(|i| i.flow) {
                    Some(Flow::Jump(t) | Flow::CondJump(t)) => {
                        !explored.contains_key(&t) && !known.contains(&t)
                    }
                    _ => false,
                }
            });
        if base {
            returns.insert(e.start);
            work.push(e.start);
        }
        for &t in e.tail_targets.iter().chain(e.falls_into.values()) {
            rev.entry(t).or_default().push(e.start);
        }
    }
    while let Some(t) = work.pop() {
        if let Some(srcs) = rev.get(&t) {
            for &s in srcs {
                if !known.contains(&s) && returns.insert(s) {
                    work.push(s);
                }
            }
        }
    }
    let mut out: BTreeSet<u64> = known.clone();
    out.extend(explored.keys().copied().filter(|a| !returns.contains(a)));
    out
}
