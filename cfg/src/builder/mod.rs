//! Function discovery and basic-block recovery.
//!
//! The algorithm, in the words of the field:
//!
//! 1. **Seeds**: entry point, symbols, exports, `.eh_frame` FDE starts,
//!    init/fini arrays and import stubs.
//! 2. **Recursive descent** per function, in parallel waves: each function is
//!    decoded from its entry following direct branches; direct call and
//!    tail-call targets found on the way become the next wave. Indirect jumps
//!    are resolved as jump tables once the direct part of the function is
//!    known (the guard that bounds the table sits in a predecessor block).
//! 3. **Consistency**: a function whose decoded code runs into another
//!    function's entry (found later in the waves) is decoded again with the
//!    final set of entries, so jumps there become tail calls.
//! 4. **Gaps**: the bytes of executable sections that no function covers are
//!    swept; padding is skipped, and code that decodes cleanly and stays
//!    inside the gap becomes a function (code reached only from gaps).
//! 5. **Noreturn fixpoint**: a function that cannot reach a return (nor a
//!    tail call to a returning function) does not return. Calls to such
//!    functions end their block without fallthrough, which changes what is
//!    decoded, so steps 2-4 run again until the set stops growing (it only
//!    grows, so this ends).

mod entries;
mod explore;
mod finish;
mod gaps;
mod indirect;
mod noreturn;
mod seeds;

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use crate::arch::{Flow, Isa};
use crate::image::Image;
use crate::limits;
use crate::model::{CapHit, CapKind, FunctionSource};

use entries::Entries;
pub(crate) use explore::{Ctx, Explored, explore};
pub(crate) use finish::Recovered;
use finish::{Lists, finish};
use gaps::gap_functions;
use noreturn::compute_noreturn;
use seeds::{initial_ctx, seeds};

/// Imported functions known (by name) never to return. Calls to them,
/// through PLT stubs, GOT/IAT slots or import thunks, end their basic block.
/// Only imports are judged by name, because their bodies are not in the
/// binary; a function defined in the binary is noreturn only when the
/// analysis shows it (a local `err` or `die` may well return).
pub const NORETURN_NAMES: &[&str] = &[
    "exit",
    "_exit",
    "_Exit",
    "quick_exit",
    "abort",
    "__stack_chk_fail",
    "__stack_chk_fail_local",
    "__assert_fail",
    "__assert_perror_fail",
    "__assert",
    "__assert_rtn",
    "_assert",
    "_wassert",
    "longjmp",
    "_longjmp",
    "siglongjmp",
    "__longjmp_chk",
    "__libc_start_main",
    "__libc_fatal",
    "__fortify_fail",
    "__chk_fail",
    "pthread_exit",
    "thrd_exit",
    "err",
    "errx",
    "verr",
    "verrx",
    "__cxa_throw",
    "__cxa_rethrow",
    "__cxa_bad_cast",
    "__cxa_bad_typeid",
    "__cxa_call_unexpected",
    "__cxa_pure_virtual",
    "__cxa_deleted_virtual",
    "__cxa_throw_bad_array_new_length",
    "_Unwind_Resume",
    "_ZSt9terminatev",
    "__gxx_personality_v0_terminate",
    "ExitProcess",
    "ExitThread",
    "FatalExit",
    "RaiseFailFastException",
    "__fastfail",
    "__report_gsfailure",
    "_invalid_parameter_noinfo_noreturn",
];

/// Whether an (undecorated) import or symbol name never returns.
#[must_use]
pub fn is_noreturn_name(name: &str) -> bool {
    let base = name.split('@').next().unwrap_or(name);
    let base = base.strip_prefix("__imp_").unwrap_or(base);
    NORETURN_NAMES.contains(&base) || (base.starts_with("_ZSt") && base.contains("__throw_"))
}

/// Options of graph recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Sweep the gaps between known functions for more code.
    pub gap_analysis: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { gap_analysis: true }
    }
}

/// in the function whose FDE (else nearest preceding seed) covers it, and
/// only those functions are decoded. Noreturn facts are the ones known
/// before decoding (names, import stubs), so a call to a local function that
/// never returns is followed by its fallthrough: the blocks found are a
/// superset of the whole-image analysis's, never fewer.
/// Recover only the functions that contain `addrs`: each address is placed
pub(crate) fn recover_local(image: &Image<'_>, dec: &dyn Isa, addrs: &[u64]) -> Recovered {
    let code = image.code_ranges();
    let seeds = seeds(image, &code, dec);
    let ctx = initial_ctx(image, dec, &code, &seeds);
    let mut entries: BTreeSet<u64> = BTreeSet::new();
    for &a in addrs {
        if !ctx.in_code(a) {
            continue;
        }
        let by_fde = {
            let i = image.fdes.partition_point(|f| f.start <= a);
            i.checked_sub(1)
                .and_then(|i| image.fdes.get(i))
                .filter(|f| a < f.start.saturating_add(f.len))
                .map(|f| f.start)
        };
        let entry = by_fde.or_else(|| seeds.range(..=a).next_back().map(|(&s, _)| s));
        if let Some(e) = entry {
            entries.insert(e);
        }
    }
    let list: Vec<u64> = entries.into_iter().collect();
    let explored: BTreeMap<u64, Box<Explored>> =
        list.par_iter().map(|&a| (a, explore(&ctx, a))).collect();
    let d = Discovery {
        sources: explored
            .keys()
            .map(|&a| (a, seeds.get(&a).copied().unwrap_or(FunctionSource::Fde)))
            .collect(),
        explored,
        gap_found: BTreeSet::new(),
        noreturn: ctx.noreturn.clone(),
        whole_image: false,
        caps: Vec::new(),
        changed: false,
        checked: Checked::default(),
    };
    let lists = Lists::of(image, dec, &code, &d);
    let mut r = finish(d, lists);
    r.work = ctx.work.load(std::sync::atomic::Ordering::Relaxed);
    r
}

/// Run recovery to its fixpoint.
pub(crate) fn recover(image: &Image<'_>, dec: &dyn Isa, opts: Options) -> Recovered {
    let code = image.code_ranges();
    let seeds = seeds(image, &code, dec);
    let mut ctx = initial_ctx(image, dec, &code, &seeds);
    let mut d = Discovery {
        explored: BTreeMap::new(),
        sources: seeds.clone(),
        gap_found: BTreeSet::new(),
        noreturn: BTreeSet::new(),
        whole_image: true,
        caps: Vec::new(),
        changed: false,
        checked: Checked::default(),
    };
    let mut queue: BTreeSet<u64> = seeds.keys().copied().collect();
    let mut round = 0usize;
    loop {
        round = round.saturating_add(1);
        explore_all(&mut ctx, &mut d, &seeds, &mut queue, opts);
        // The fixpoint runs on one thread; the lists the graph is finished
        // with are found on the other meanwhile, and kept if this round is
        // the last (nothing new is noreturn).
        let (found, lists) = rayon::join(
            || compute_noreturn(&d.explored, &ctx.noreturn, &ctx.noreturn_slots),
            || Lists::of(image, dec, &code, &d),
        );
        let grown: BTreeSet<u64> = found.difference(&ctx.noreturn).copied().collect();
        if grown.is_empty() || round >= limits::MAX_NORETURN_ROUNDS {
            if !grown.is_empty() {
                d.caps.push(CapHit {
                    kind: CapKind::NoreturnRounds,
                    limit: limits::MAX_NORETURN_ROUNDS as u64,
                    function: None,
                });
            }
            d.noreturn = found;
            let mut r = finish(d, lists);
            r.work = ctx.work.load(std::sync::atomic::Ordering::Relaxed);
            return r;
        }
        // Only functions that call a newly noreturn function decode
        // differently now. One whose code lies in frame entries keeps it
        // all (what follows a call inside the function's own entry is the
        // function's, reached or not): marking those calls is what decoding
        // it again would change. The others are decoded again.
        let callers: Vec<u64> = d
            .explored
            .values()
            .filter(|e| e.calls.iter().any(|c| grown.contains(c)))
            .map(|e| e.start)
            .collect();
        queue = BTreeSet::new();
        d.changed = true;
        for a in callers {
            let Some(e) = d.explored.get_mut(&a) else {
                continue;
            };
            if ctx.fde_at(a).is_some()
                && e.insns
                    .ranges()
                    .all(|(lo, hi)| ctx.in_any_fde(lo) && ctx.in_any_fde(hi.saturating_sub(1)))
            {
                e.cut_after_calls(&grown);
            } else {
                queue.insert(a);
            }
        }
        ctx.noreturn.extend(grown);
    }
}

pub(crate) struct Discovery {
    pub explored: BTreeMap<u64, Box<Explored>>,
    pub sources: BTreeMap<u64, FunctionSource>,
    pub gap_found: BTreeSet<u64>,
    pub noreturn: BTreeSet<u64>,
    /// Whether the code no function covers is measured: a whole-image
    /// analysis reports it; a function-local one would decode nearly every
    /// byte of the image to say that it did not look there.
    pub whole_image: bool,
    /// Limits the recovery stopped at.
    pub caps: Vec<CapHit>,
    /// What the last conflict check saw (see [`settle_conflicts`]).
    pub checked: Checked,
    /// Whether a function lost a call or tail call (decoded again with
    /// fewer, cut, or dropped) since the last [`prune`]: only then can a
    /// function have lost the last call that led to it. Functions only
    /// added since are reached by what found them.
    pub changed: bool,
}

/// Explore `queue` and everything it leads to, settle conflicts, drop
/// functions nothing leads to any more, and sweep the gaps, until the set of
/// functions is stable.
fn explore_all(
    ctx: &mut Ctx<'_>,
    d: &mut Discovery,
    seeds: &BTreeMap<u64, FunctionSource>,
    queue: &mut BTreeSet<u64>,
    opts: Options,
) {
    let mut gap_rounds = 0usize;
    let mut ready: Vec<Box<Explored>> = Vec::new();
    // Gaps whose sweep stopped at its work budget (the cap is recorded).
    let mut spent: Vec<(u64, u64)> = Vec::new();
    let mut padding = gaps::PaddingStarts::default();
    loop {
        d.changed |= run_waves(
            ctx,
            &mut d.explored,
            &mut d.sources,
            queue,
            std::mem::take(&mut ready),
        );
        if !settle_conflicts(ctx, d, queue) {
            d.caps.push(CapHit {
                kind: CapKind::ConsistencyRounds,
                limit: limits::MAX_CONSISTENCY_ROUNDS as u64,
                function: None,
            });
        }
        if d.changed {
            prune(d, seeds);
            d.changed = false;
        }
        ctx.known = d.explored.keys().copied().collect();
        // Code a function reached by a jump made with its frame released,
        // address-taken or reached that way from another function too: a
        // tail call to a function nothing calls directly (`luaB_assert`
        // ends in `tail luaB_error`, both only in a table of function
        // pointers; `BZ2_bzopen` and `BZ2_bzdopen` both `tail
        // bzopen_or_bzdopen`). A function of its own.
        let shared = gaps::shared_entries(ctx, &d.explored);
        if !shared.is_empty() {
            for a in shared {
                d.sources.entry(a).or_insert(FunctionSource::Pointer);
                d.gap_found.insert(a);
                queue.insert(a);
            }
            continue;
        }
        if !opts.gap_analysis {
            break;
        }
        if gap_rounds >= limits::MAX_GAP_ROUNDS {
            if !gap_functions(ctx, &d.explored, &spent, &mut padding).is_empty() {
                d.caps.push(CapHit {
                    kind: CapKind::GapRounds,
                    limit: limits::MAX_GAP_ROUNDS as u64,
                    function: None,
                });
            }
            break;
        }
        gap_rounds = gap_rounds.saturating_add(1);
        let found = gap_functions(ctx, &d.explored, &spent, &mut padding);
        if !found.work_capped.is_empty() {
            d.caps.push(CapHit {
                kind: CapKind::GapWork,
                limit: limits::GAP_WORK_PER_BYTE,
                function: None,
            });
            spent.extend(found.work_capped.iter().copied());
        }
        if found.is_empty() {
            break;
        }
        // Each gap function was explored to be accepted, with the entries
        // known now; the one thing new to the next wave, the other gap
        // functions' entries, lies outside its gap, which it did not leave:
        // that exploration is what decoding it again would give. Shared
        // entries are explored in the next wave; the functions that took
        // them for their own code are decoded again when the waves settle.
        for (a, s, r) in found.functions {
            d.sources.entry(a).or_insert(s);
            d.gap_found.insert(a);
            ready.push(r);
        }
        for a in found.shared {
            d.sources.entry(a).or_insert(FunctionSource::TailCall);
            d.gap_found.insert(a);
            queue.insert(a);
        }
    }
}

/// Keep only functions that a seed, a gap, or (transitively) a call or tail
/// call from one of those leads to: code decoded past a call that turned out
/// not to return may have been the only thing leading to some.
fn prune(d: &mut Discovery, seeds: &BTreeMap<u64, FunctionSource>) {
    // Functions by index in address order: a whole program has hundreds of
    // thousands, and this runs after every round.
    let entries = Entries::new(d.explored.keys().copied().collect());
    let bodies: Vec<&Explored> = d.explored.values().map(|e| &**e).collect();
    let index = |a: u64| entries.index(a);
    let mut live = vec![false; entries.len()];
    let mut work: Vec<usize> = seeds
        .keys()
        .chain(d.gap_found.iter())
        .filter_map(|&a| index(a))
        .collect();
    while let Some(i) = work.pop() {
        match live.get_mut(i) {
            Some(l) if !*l => *l = true,
            _ => continue,
        }
        if let Some(e) = bodies.get(i) {
            for &t in e.calls.iter().chain(e.tail_targets.iter()) {
                if let Some(j) = index(t)
                    && live.get(j) == Some(&false)
                {
                    work.push(j);
                }
            }
        }
    }
    let is_live = |a: u64| index(a).and_then(|i| live.get(i)).copied() == Some(true);
    d.explored.retain(|&a, _| is_live(a));
    d.sources
        .retain(|&a, _| is_live(a) || seeds.contains_key(&a));
}

/// Explore everything in `queue`, wave by wave, adding call and tail-call
/// targets as new functions.
#[allow(
    clippy::vec_box,
    reason = "the boxes move into `explored` as they are: no copy of a function's facts"
)]
fn run_waves(
    ctx: &mut Ctx<'_>,
    explored: &mut BTreeMap<u64, Box<Explored>>,
    sources: &mut BTreeMap<u64, FunctionSource>,
    queue: &mut BTreeSet<u64>,
    ready: Vec<Box<Explored>>,
) -> bool {
    let mut replaced = false;
    // `ready`: a first wave already explored (functions found in gaps).
    let mut ready = Some(ready).filter(|r| !r.is_empty());
    while ready.is_some() || !queue.is_empty() {
        let results: Vec<Box<Explored>> = if let Some(r) = ready.take() {
            ctx.known.extend(r.iter().map(|e| e.start));
            r
        } else {
            ctx.known.extend(queue.iter().copied());
            let wave: Vec<u64> = std::mem::take(queue).into_iter().collect();
            let shared: &Ctx<'_> = ctx;
            wave.par_iter().map(|&a| explore(shared, a)).collect()
        };
        for r in results {
            ctx.called.extend(r.calls.iter().copied());
            for &t in &r.calls {
                if !explored.contains_key(&t) && t != r.start {
                    sources.entry(t).or_insert(FunctionSource::Call);
                    queue.insert(t);
                }
            }
            for &t in &r.tail_targets {
                if !explored.contains_key(&t) && t != r.start {
                    sources.entry(t).or_insert(FunctionSource::TailCall);
                    queue.insert(t);
                }
            }
            let start = r.start;
            if let Some(old) = explored.insert(start, r) {
                replaced |= explored
                    .get(&start)
                    .is_none_or(|new| loses_edges(&old, new));
            }
        }
        queue.retain(|a| !explored.contains_key(a));
    }
    replaced
}

/// Decode again every function whose code runs through another function's
/// entry, now that all entries are known. `false` when conflicts remained
/// after the last round.
fn settle_conflicts(ctx: &mut Ctx<'_>, d: &mut Discovery, queue: &mut BTreeSet<u64>) -> bool {
    let explored = &mut d.explored;
    let sources = &mut d.sources;
    let mut redone: BTreeSet<u64> = BTreeSet::new();
    for _ in 0..limits::MAX_CONSISTENCY_ROUNDS {
        ctx.known = explored.keys().copied().collect();
        let shared: &Ctx<'_> = ctx;
        // The entries in address order, for a binary search per decoded run.
        let entries: Vec<u64> = explored.keys().copied().collect();
        // Most functions are the same as at the last check, and so is all
        // that their verdict reads, except entries and call targets found
        // since: a function is checked again only when it was decoded again
        // or one of those lies in its span ([`conflict_free`]). Call
        // targets only add up, and an entry dropped only removes
        // conflicts, so a clean function stays clean otherwise.
        let fresh = d.checked.fresh(&entries, &shared.called);
        let mut conflicted: Vec<u64> = explored
            .par_iter_mut()
            .filter_map(|(_, e)| {
                if let Some((lo, hi)) = e.clean_span {
                    let i = fresh.partition_point(|&a| a < lo);
                    if fresh.get(i).is_none_or(|&a| a > hi) {
                        return None;
                    }
                }
                e.clean_span = conflict_free(shared, &entries, e);
                e.clean_span.is_none().then_some(e.start)
            })
            .collect();
        conflicted.sort_unstable();
        // A function decoded again with every entry known that still holds
        // an entry found only in a gap or as a tail-call target reaches it
        // by its own branches, with its frame live: that entry was a piece
        // of it (taken for a tail-call target when the function was first
        // decoded without the entry it runs into). It is dropped, not the
        // function decoded again.
        let mut dropped = false;
        conflicted.retain(|c| {
            let Some(e) = explored.get(c) else {
                return false;
            };
            if !redone.contains(c) || jumps_over_an_entry(ctx, e) {
                return true;
            }
            let inside: Vec<u64> = e
                .insns
                .ranges()
                .flat_map(|(lo, hi)| ctx.known.range(lo..hi).copied().collect::<Vec<_>>())
                .filter(|&k| k != e.start && e.insns.contains(k) && !is_jump_table_target(e, k))
                .collect();
            if inside.iter().any(|k| ctx.called.contains(k)) {
                return true;
            }
            for k in inside {
                explored.remove(&k);
                sources.remove(&k);
                dropped = true;
                d.changed = true;
            }
            false
        });
        if conflicted.is_empty() {
            if dropped {
                continue;
            }
            return true;
        }
        redone.extend(conflicted.iter().copied());
        let results: Vec<Box<Explored>> =
            conflicted.par_iter().map(|&a| explore(shared, a)).collect();
        for r in results {
            for &t in r.calls.iter().chain(r.tail_targets.iter()) {
                if !explored.contains_key(&t) {
                    sources.entry(t).or_insert(FunctionSource::Call);
                    queue.insert(t);
                }
            }
            let start = r.start;
            if let Some(old) = explored.insert(start, r) {
                d.changed |= explored
                    .get(&start)
                    .is_none_or(|new| loses_edges(&old, new));
            }
        }
        d.changed |= run_waves(ctx, explored, sources, queue, Vec::new());
    }
    false
}

/// `None` when `e` runs through another function's entry (one of
/// `entries`, in address order) or jumps over one; else the span of
/// addresses where an entry or a call target found later could change
/// that: its code, its entry, and its jumps' targets.
fn conflict_free(ctx: &Ctx<'_>, entries: &[u64], e: &Explored) -> Option<(u64, u64)> {
    let (mut lo, mut hi) = e.insns.extent().unwrap_or((e.start, e.start));
    lo = lo.min(e.start);
    hi = hi.max(e.start);
    // Entries inside the decoded runs (not the whole extent: a function
    // with a far cold part spans the whole section).
    let inside = e.insns.ranges().any(|(lo, hi)| {
        let from = entries.partition_point(|&k| k < lo);
        entries
            .get(from..)
            .unwrap_or(&[])
            .iter()
            .take_while(|&&k| k < hi)
            .any(|&k| k != e.start && e.insns.contains(k) && !is_jump_table_target(e, k))
    });
    if inside || jumps_over_an_entry(ctx, e) {
        return None;
    }
    for i in e.insns.flows() {
        if let Flow::Jump(t) = i.flow {
            lo = lo.min(t);
            hi = hi.max(t);
        }
    }
    Some((lo, hi))
}

/// The entries and call targets the last conflict check saw, to tell the
/// new ones.
#[derive(Default)]
pub(crate) struct Checked {
    entries: Vec<u64>,
    called: Vec<u64>,
}

impl Checked {
    /// The entries and call targets not seen by the last check, in address
    /// order; remember the ones of this check.
    fn fresh(&mut self, entries: &[u64], called: &BTreeSet<u64>) -> Vec<u64> {
        fn new_in<'a>(now: impl Iterator<Item = &'a u64>, before: &[u64], out: &mut Vec<u64>) {
            let mut old = before.iter().peekable();
            for &a in now {
                while old.next_if(|&&o| o < a).is_some() {}
                if old.peek() != Some(&&a) {
                    out.push(a);
                }
            }
        }
        let mut fresh = Vec::new();
        new_in(entries.iter(), &self.entries, &mut fresh);
        new_in(called.iter(), &self.called, &mut fresh);
        fresh.sort_unstable();
        fresh.dedup();
        self.entries = entries.to_vec();
        self.called = called.iter().copied().collect();
        fresh
    }
}

/// Whether decoding a function again lost a call or tail call it had:
/// only then can [`prune`] find something nothing leads to any more.
fn loses_edges(old: &Explored, new: &Explored) -> bool {
    !old.calls.is_subset(&new.calls) || !old.tail_targets.is_subset(&new.tail_targets)
}

/// For a function without an FDE: whether a jump that was taken for one
/// inside the function now leaves it, because an entry found since lies
/// between.
fn jumps_over_an_entry(ctx: &Ctx<'_>, e: &Explored) -> bool {
    ctx.fde_at(e.start).is_none()
        && e.insns.flows().any(|i| match i.flow {
            Flow::Jump(t) if t != e.start && !e.tails.contains(&i.addr) => {
                if e.frame_jumps.contains(&i.addr) {
                    ctx.called.contains(&t)
                } else {
                    ctx.leaves_function(e.start, t)
                }
            }
            _ => false,
        })
}

fn is_jump_table_target(e: &Explored, addr: u64) -> bool {
    e.tables.values().any(|t| t.targets.contains(&addr))
}
