//! Gap analysis: code in executable sections that no function reaches.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use crate::arch::Flow;
use crate::image::CodeRange;
use crate::limits;
use crate::model::FunctionSource;

use super::finish::{Sweep, non_padding_bytes};
use super::{Ctx, Explored, explore};

/// Bytes covered by decoded instructions, as merged intervals.
pub(super) fn instruction_coverage(explored: &BTreeMap<u64, Box<Explored>>) -> Vec<(u64, u64)> {
    let mut iv: Vec<(u64, u64)> = explored
        .par_iter()
        .flat_map_iter(|(_, e)| e.insns.ranges())
        .collect();
    merge_intervals(&mut iv)
}

/// Sorted and without repeats: the whole-program lists each gap round
/// gathers from every function, in parallel.
fn sorted_set(mut v: Vec<u64>) -> Vec<u64> {
    v.par_sort_unstable();
    v.dedup();
    v
}

pub(super) fn merge_intervals(iv: &mut [(u64, u64)]) -> Vec<(u64, u64)> {
    // A whole program has millions of decoded runs.
    iv.par_sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(iv.len() / 4);
    for &(s, e) in iv.iter() {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// Bytes covered by decoded instructions and jump tables, as merged
/// intervals.
pub(super) fn covered(explored: &BTreeMap<u64, Box<Explored>>) -> Vec<(u64, u64)> {
    let mut iv: Vec<(u64, u64)> = explored
        .par_iter()
        .flat_map_iter(|(_, e)| {
            e.insns.ranges().chain(
                e.tables
                    .values()
                    .map(|t| (t.table, t.table.saturating_add(t.byte_len()))),
            )
        })
        .collect();
    merge_intervals(&mut iv)
}

/// Gaps: executable bytes outside PLT sections that no function covers.
pub(super) fn gaps(code: &[CodeRange], cov: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for r in code.iter().filter(|r| !r.plt) {
        let mut cur = r.start;
        let first = cov.partition_point(|&(_, e)| e <= r.start);
        for &(s, e) in cov.iter().skip(first) {
            if s >= r.end {
                break;
            }
            if s > cur {
                out.push((cur, s.min(r.end)));
            }
            cur = cur.max(e);
        }
        if cur < r.end {
            out.push((cur, r.end));
        }
    }
    out
}

/// Find functions in the gaps: candidates are pointers taken elsewhere that
/// land in a gap, and the first non-padding byte after each run of padding.
/// A candidate is accepted when it decodes cleanly, never leaves its gap
/// except by calls or tail calls, and is not itself padding.
///
/// A gap inside one that an earlier round stopped sweeping at its work
/// budget (`spent`) is not swept again: the cap is already recorded, and
/// sweeping it each round would only multiply the cost the budget bounds.
pub(super) fn gap_functions(
    ctx: &Ctx<'_>,
    explored: &BTreeMap<u64, Box<Explored>>,
    spent: &[(u64, u64)],
    starts: &mut PaddingStarts,
) -> GapFindings {
    let cov = covered(explored);
    // Where known functions (without frame tables) jump with their frame
    // released, inside themselves.
    let soft = sorted_set(
        explored
            .par_iter()
            .flat_map_iter(|(_, e)| e.soft_targets.iter().copied())
            .collect(),
    );
    let pointers = pointers(ctx, explored);
    // Every gap is swept, also one with the same function on both sides:
    // dead code of that function (the rest of it after a call it did not
    // know never returns) is attached to it when decoded
    // (`after_noreturn`), and what is left fails the candidate checks (it
    // releases a frame it did not build, or jumps back into the function);
    // a function placed between two pieces of another one (`str_find`
    // jumping over the string library to `str_find_aux`) is found.
    let mut gap_list: Vec<(u64, u64)> = gaps(ctx.code, &cov);
    gap_list.retain(|&(gs, ge)| !spent.iter().any(|&(s, e)| s <= gs && ge <= e));
    // Both the gaps and the known padding starts are sorted: one walk over
    // both finds the gaps not seen in an earlier round.
    let mut seen = starts.0.keys().peekable();
    let new: Vec<(u64, u64)> = gap_list
        .iter()
        .copied()
        .filter(|g| {
            while seen.next_if(|k| *k < g).is_some() {}
            seen.peek() != Some(&g)
        })
        .collect();
    let new: Vec<((u64, u64), Vec<u64>)> = new
        .par_iter()
        .map(|&(gs, ge)| ((gs, ge), after_padding(ctx, gs, ge)))
        .collect();
    starts.0.extend(new);
    // Each gap with its candidates: the pointers into it and its padding
    // starts. Most gaps are alignment padding between two functions, with
    // nothing to try.
    let mut known = starts.0.iter().peekable();
    let mut sweeps: Vec<GapSweep<'_>> = Vec::new();
    for &(gs, ge) in &gap_list {
        while known.next_if(|(k, _)| **k < (gs, ge)).is_some() {}
        let after: &[u64] = match known.peek() {
            Some((k, v)) if **k == (gs, ge) => v.as_slice(),
            _ => &[],
        };
        let lo = pointers.partition_point(|&p| p < gs);
        let hi = pointers.partition_point(|&p| p < ge);
        let inside = pointers.get(lo..hi).unwrap_or(&[]);
        if !after.is_empty() || !inside.is_empty() {
            sweeps.push(((gs, ge), inside, after));
        }
    }
    let per_gap: Vec<GapFindings> = sweeps
        .par_iter()
        .map(|&((gs, ge), inside, after)| {
            let mut found = Vec::new();
            let mut shared = BTreeSet::new();
            let mut candidates: Vec<(u64, FunctionSource)> = inside
                .iter()
                .map(|&p| (p, FunctionSource::Pointer))
                .collect();
            candidates.extend(after.iter().map(|&a| (a, FunctionSource::Gap)));
            // Lowest address first; for one address the first reason
            // (pointer before gap) wins.
            let mut queue: BTreeMap<u64, FunctionSource> = BTreeMap::new();
            for (a, s) in candidates {
                queue.entry(a).or_insert(s);
            }
            let mut taken_until = gs;
            // Work spent on candidates that were rejected: bounded per gap,
            // so that a gap of garbage (every few bytes a candidate that
            // decodes far before it fails) costs time linear in its size.
            let budget = ge
                .saturating_sub(gs)
                .saturating_mul(limits::GAP_WORK_PER_BYTE)
                .saturating_add(limits::GAP_WORK_FLOOR);
            let mut rejected_work = 0u64;
            let mut work_capped = false;
            while let Some((cand, source)) = queue.pop_first() {
                if rejected_work > budget {
                    work_capped = true;
                    break;
                }
                // The compiler's FDEs say where functions start; code in the
                // middle of one belongs to it.
                if cand < taken_until || ctx.strictly_inside_fde(cand) {
                    continue;
                }
                let r = explore(ctx, cand);
                // A candidate that jumps, frame released, to code a known
                // function also jumps to that way (and took for its own):
                // that code is a function both tail-call (`gzopen` and
                // `gzopen64` both `tail gz_open`). It becomes an entry; the
                // candidate is tried again in the next round.
                let outside: Vec<u64> = r
                    .soft_targets
                    .iter()
                    .copied()
                    .filter(|&t| (t < gs || t >= ge) && soft.binary_search(&t).is_ok())
                    .collect();
                if !outside.is_empty()
                    && r.invalid.is_none()
                    && r.overlap.is_none()
                    && !r.unbalanced
                {
                    shared.extend(outside);
                    continue;
                }
                if !acceptable(ctx, &r, source, gs, ge) {
                    rejected_work = rejected_work.saturating_add(r.insns.len() as u64);
                } else {
                    taken_until = r.extent().map_or(cand, |(_, hi)| hi);
                    found.push((cand, source, r));
                    // Without alignment padding between functions (RISC-V
                    // at -O0), the next function starts where this one's
                    // code ends.
                    if taken_until < ge && !is_padding_at(ctx, taken_until, ge) {
                        queue.entry(taken_until).or_insert(FunctionSource::Gap);
                    }
                }
            }
            GapFindings {
                functions: found,
                shared,
                work_capped: if work_capped {
                    vec![(gs, ge)]
                } else {
                    Vec::new()
                },
            }
        })
        .collect();
    let mut out = GapFindings::default();
    for g in per_gap {
        out.functions.extend(g.functions);
        out.shared.extend(g.shared);
        out.work_capped.extend(g.work_capped);
    }
    out
}

/// Code that known functions took for their own but that is a function of
/// its own: reached by a jump made with the frame released (see
/// `Explored::soft_targets`) from two functions, or from one when its
/// address is also taken (stored in data or built in code) and it is not
/// the target of a resolved jump table (an interpreter's labels are
/// address-taken too).
pub(super) fn shared_entries(
    ctx: &Ctx<'_>,
    explored: &BTreeMap<u64, Box<Explored>>,
) -> BTreeSet<u64> {
    // Every soft target with a count of the functions reaching it.
    let mut reached: Vec<u64> = explored
        .par_iter()
        .flat_map_iter(|(_, e)| {
            e.soft_targets
                .iter()
                .copied()
                .filter(move |&t| t != e.start)
        })
        .collect();
    if reached.is_empty() {
        return BTreeSet::new();
    }
    reached.par_sort_unstable();
    let pointers = pointers(ctx, explored);
    let labels = sorted_set(
        explored
            .par_iter()
            .flat_map_iter(|(_, e)| e.tables.values().flat_map(|t| t.targets.iter().copied()))
            .collect(),
    );
    reached
        .chunk_by(|a, b| a == b)
        .filter_map(|run| Some((*run.first()?, run.len())))
        .filter(|&(t, n)| !ctx.known.contains(&t) && (n > 1 || pointers.binary_search(&t).is_ok()))
        .filter(|(t, _)| labels.binary_search(t).is_err())
        .map(|(t, _)| t)
        .collect()
}

/// Addresses in code that are taken: relocated pointers in data and
/// addresses built by instructions, sorted.
fn pointers(ctx: &Ctx<'_>, explored: &BTreeMap<u64, Box<Explored>>) -> Vec<u64> {
    let mut v: Vec<u64> = explored
        .par_iter()
        .flat_map_iter(|(_, e)| e.refs.iter().copied())
        .collect();
    v.extend_from_slice(&ctx.image.code_pointers);
    sorted_set(v)
}

/// A gap to sweep: its bounds, the pointers into it, its padding starts.
type GapSweep<'a> = ((u64, u64), &'a [u64], &'a [u64]);

/// The candidates after padding of each gap swept (by its bounds), kept
/// from round to round: most gaps are the same in the next round, and
/// finding them means decoding all the padding between functions again.
#[derive(Default)]
pub(super) struct PaddingStarts(BTreeMap<(u64, u64), Vec<u64>>);

/// What one round of gap analysis found.
#[derive(Default)]
pub(super) struct GapFindings {
    /// Functions found in gaps, explored, with the reason.
    pub functions: Vec<(u64, FunctionSource, Box<Explored>)>,
    /// Code inside known functions that is a function of its own, tail
    /// called from them and from code in a gap.
    pub shared: BTreeSet<u64>,
    /// The gaps whose sweep stopped at their work budget.
    pub work_capped: Vec<(u64, u64)>,
}

impl GapFindings {
    pub(super) fn is_empty(&self) -> bool {
        self.functions.is_empty() && self.shared.is_empty()
    }
}

/// Whether the instruction at `addr` (below `end`) is padding.
fn is_padding_at(ctx: &Ctx<'_>, addr: u64, end: u64) -> bool {
    matches!(
        Sweep::new(ctx.image, ctx.dec, end).at(addr),
        Some(Some((_, true)))
    )
}

/// Whether `[start, end)` holds anything but padding.
pub(super) fn non_padding(ctx: &Ctx<'_>, start: u64, end: u64) -> bool {
    end > start && non_padding_bytes(ctx.image, ctx.dec, start, end) > 0
}

/// Whether `[start, end)` holds nothing but padding (looked at for at most
/// 64 KiB).
fn only_padding(ctx: &Ctx<'_>, start: u64, end: u64) -> bool {
    end.saturating_sub(start) <= 0x1_0000 && non_padding_bytes(ctx.image, ctx.dec, start, end) == 0
}

/// First non-padding address of the gap and after each padding run in it.
fn after_padding(ctx: &Ctx<'_>, start: u64, end: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut a = start;
    let mut in_padding = true;
    let mut steps = 0usize;
    let mut sweep = Sweep::new(ctx.image, ctx.dec, end);
    while a < end && steps < 1_000_000 {
        steps = steps.saturating_add(1);
        let Some(decoded) = sweep.at(a) else { break };
        match decoded {
            Some((insn, pad)) if insn.end() <= end && insn.end() > a => {
                if !pad && in_padding {
                    out.push(a);
                }
                in_padding = pad;
                a = insn.end();
            }
            _ => {
                in_padding = false;
                a = a.saturating_add(ctx.dec.alignment());
            }
        }
    }
    out
}

fn acceptable(ctx: &Ctx<'_>, r: &Explored, source: FunctionSource, gs: u64, ge: u64) -> bool {
    if r.invalid.is_some() || r.overlap.is_some() || r.truncated || r.insns.is_empty() {
        return false;
    }
    // A return or tail call with the stack not where the entry had it: the
    // candidate is a piece of a function whose frame it releases.
    if r.unbalanced {
        return false;
    }
    if !r.calls_outside.is_empty() {
        return false;
    }
    if r.insns.ranges().any(|(lo, hi)| lo < gs || hi > ge) {
        return false;
    }
    // Calls must land on something that can be a function entry.
    if r.calls.iter().any(|&c| !ctx.in_code(c)) {
        return false;
    }
    // A lone padding-like instruction or a single trap is not a function,
    // unless its address is stored in data (a relocated pointer, not an
    // address computed in code, which may be a section's end): clang makes
    // the deleting destructor of an abstract class one trap (`unimp`,
    // `ud2`), and only the vtable says it is there.
    let first = r.insns.iter().next();
    let first_is_padding = first.is_some_and(|i| {
        ctx.image
            .bytes_from(i.addr)
            .is_some_and(|b| ctx.dec.is_padding(b, &i))
    });
    let lone_trap = r.insns.len() == 1 && first.is_some_and(|i| i.flow == Flow::Stop);
    if source == FunctionSource::Pointer
        && lone_trap
        && first.is_some_and(|i| ctx.image.code_pointers.binary_search(&i.addr).is_ok())
    {
        return true;
    }
    if first_is_padding || lone_trap {
        return false;
    }
    // A lone forward jump over code but no entry with direct evidence is no
    // function: GNU ld opens each AArch64 stub section (long-branch and
    // erratum-843419 veneers) with `b <past the stubs>; nop`. A compiled
    // one-jump function (`b g`) that nothing references jumps over padding
    // at most.
    if r.insns.len() == 1
        && let Some(i) = r.insns.iter().next()
        && let Flow::Jump(t) = i.flow
        && t > i.end()
        && ctx.called.range(i.end()..t).next().is_none()
        && !only_padding(ctx, i.end(), t)
    {
        return false;
    }
    r.has_return
        || !r.tails.is_empty()
        || !r.noreturn_calls.is_empty()
        || !r.tables.is_empty()
        || r.has_trap
        || r.indirect_tail
        || r.insns
            .flows()
            .any(|i| matches!(i.flow, Flow::Call(_) | Flow::IndirectCall { .. }))
}
