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

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use crate::arch::{Decoder, Flow, IndirectTarget, Insn, JumpTable};
use crate::image::{CodeRange, Image};
use crate::index::InsnIndex;
use crate::limits;
use crate::model::{Anomaly, Block, Edge, EdgeKind, FunctionSource, JumpTableInfo, Unresolved};

/// Functions known (by name) never to return. Calls to them, directly, via
/// PLT stubs or through GOT slots, end their basic block.
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

/// What exploring one function produced.
#[derive(Debug, Clone, Default)]
pub(crate) struct Explored {
    pub start: u64,
    pub insns: InsnIndex,
    leaders: BTreeSet<u64>,
    /// Jump instructions that are tail calls.
    tails: BTreeSet<u64>,
    /// Indirect jumps through an import slot (PLT stubs, `-fno-plt`), with
    /// the slot.
    import_jumps: BTreeMap<u64, u64>,
    /// Calls whose callee does not return (no fallthrough edge).
    noreturn_calls: BTreeSet<u64>,
    pub tables: BTreeMap<u64, JumpTable>,
    unresolved: BTreeSet<u64>,
    calls: BTreeSet<u64>,
    tail_targets: BTreeSet<u64>,
    /// Fallthrough from an instruction into another function's entry.
    falls_into: BTreeMap<u64, u64>,
    /// Addresses in code taken by instructions (function pointers).
    refs: BTreeSet<u64>,
    has_return: bool,
    invalid: Option<u64>,
    overlap: Option<u64>,
    truncated: bool,
    rejected_tables: BTreeSet<u64>,
    calls_outside: BTreeSet<u64>,
    /// Predecessors through direct jumps, for jump-table paths.
    jump_preds: BTreeMap<u64, Vec<u64>>,
}

impl Explored {
    /// Lowest and highest byte of decoded code.
    fn extent(&self) -> Option<(u64, u64)> {
        self.insns.extent()
    }
}

/// Shared, read-only facts for one wave of exploration.
pub(crate) struct Ctx<'a> {
    pub image: &'a Image<'a>,
    pub dec: &'a dyn Decoder,
    pub code: &'a [CodeRange],
    /// Function entries known at this point, sorted.
    pub known: BTreeSet<u64>,
    /// The entries of `known` with direct evidence: seeds (entry, symbols,
    /// FDEs, init/fini, import stubs) and direct call targets, not code
    /// found only as a tail-call target or in a gap.
    pub called: BTreeSet<u64>,
    /// Functions known not to return.
    pub noreturn: BTreeSet<u64>,
    /// Import slots of functions known not to return.
    pub noreturn_slots: BTreeSet<u64>,
}

impl Ctx<'_> {
    /// The FDE that starts exactly at `addr`.
    fn fde_at(&self, addr: u64) -> Option<&crate::image::Fde> {
        let fdes = &self.image.fdes;
        let idx = fdes.partition_point(|f| f.start < addr);
        fdes.get(idx).filter(|f| f.start == addr)
    }

    /// Whether some FDE covers `addr`.
    fn in_any_fde(&self, addr: u64) -> bool {
        let fdes = &self.image.fdes;
        let idx = fdes.partition_point(|f| f.start <= addr);
        fdes.get(..idx).is_some_and(|before| {
            before
                .iter()
                .rev()
                .take(8)
                .any(|f| addr < f.start.saturating_add(f.len))
        })
    }

    /// Whether `addr` lies inside an FDE's range but not at its start.
    fn strictly_inside_fde(&self, addr: u64) -> bool {
        self.in_any_fde(addr) && self.fde_at(addr).is_none()
    }

    /// Whether `slot` is a cell the dynamic loader fills with a code address:
    /// an import slot, or any entry of `.got` / `.got.plt` (the resolver
    /// entry used by lazy binding, `_ITM_*` weak references, ...).
    fn is_loader_slot(&self, slot: u64) -> bool {
        self.image.import_slots.contains_key(&slot)
            || self
                .image
                .sections
                .iter()
                .any(|s| matches!(s.name.as_str(), ".got" | ".got.plt") && s.contains(slot))
    }

    /// Whether `target` lies strictly inside the FDE of the function at
    /// `start` (and is no known entry).
    fn calls_into_own_body(&self, start: u64, target: u64) -> bool {
        target != start
            && !self.known.contains(&target)
            && self
                .fde_at(start)
                .is_some_and(|f| target > f.start && target < f.start.saturating_add(f.len))
    }

    /// Whether a direct jump from the function at `start` to `target` (not a
    /// known entry) leaves the function: the compiler's FDEs say where
    /// functions end; a jump out of the function's FDE to code no FDE
    /// covers is a tail call, while a jump into another FDE's middle goes to
    /// a cold part of this function. A function the compiler described with
    /// no FDE (crtstuff; all C code on RISC-V, whose toolchains write no
    /// unwind tables) is taken to be one contiguous range starting at its
    /// entry: a jump to code no FDE covers leaves it when it goes before the
    /// entry (`frame_dummy` -> `register_tm_clones`) or over the entry of a
    /// function something calls (entries found only in gaps or as tail-call
    /// targets are weaker evidence: trusting them would let one wrong entry
    /// cut a function into pieces at every jump).
    fn leaves_function(&self, start: u64, target: u64) -> bool {
        match self.fde_at(start) {
            Some(f) => {
                let inside = target >= f.start && target < f.start.saturating_add(f.len);
                !inside && !self.in_any_fde(target)
            }
            None => {
                !self.in_any_fde(target)
                    && (target < start
                        || (self
                            .called
                            .range(start.saturating_add(1)..target)
                            .next()
                            .is_some()))
            }
        }
    }

    fn range_of(&self, addr: u64) -> Option<&CodeRange> {
        let idx = self.code.partition_point(|r| r.start <= addr);
        let r = self.code.get(idx.checked_sub(1)?)?;
        r.contains(addr).then_some(r)
    }

    fn in_code(&self, addr: u64) -> bool {
        self.range_of(addr).is_some()
    }
}

/// Decode one function from `start`.
pub(crate) fn explore(ctx: &Ctx<'_>, start: u64) -> Explored {
    let mut ex = Explored {
        start,
        ..Explored::default()
    };
    ex.leaders.insert(start);
    let mut work = vec![start];
    let mut pending: Vec<u64> = Vec::new();
    loop {
        while let Some(a) = work.pop() {
            decode_run(ctx, &mut ex, a, &mut work, &mut pending);
            if ex.truncated {
                return ex;
            }
        }
        if pending.is_empty() {
            break;
        }
        pending.sort_unstable();
        for j in std::mem::take(&mut pending) {
            resolve_indirect(ctx, &mut ex, j, &mut work);
        }
    }
    ex
}

fn decode_run(
    ctx: &Ctx<'_>,
    ex: &mut Explored,
    from: u64,
    work: &mut Vec<u64>,
    pending: &mut Vec<u64>,
) {
    let Some(range) = ctx.range_of(from) else {
        ex.invalid.get_or_insert(from);
        return;
    };
    let range_end = range.end;
    if ex.insns.contains(from) {
        return;
    }
    if let Some(p) = ex.insns.prev_before(from)
        && p.end() > from
    {
        ex.overlap.get_or_insert(from);
        return;
    }
    // Nothing is inserted ahead of the run while it runs, so one lookup of
    // the next decoded instruction and of the next function entry suffices.
    let next_decoded = ex.insns.next_from(from).unwrap_or(u64::MAX);
    let next_entry = |after: u64| {
        ctx.known
            .range(after.saturating_add(1)..)
            .next()
            .copied()
            .unwrap_or(u64::MAX)
    };
    let mut next_known = next_entry(from);
    let mut addr = from;
    let mut prev: Option<Insn> = None;
    loop {
        if addr == next_decoded {
            return;
        }
        if addr > next_known {
            next_known = next_entry(addr.saturating_sub(1));
        }
        if addr == next_known && addr != ex.start {
            // Straight-line code ran into another function's entry.
            if let Some(p) = prev {
                ex.falls_into.insert(p.addr, addr);
            }
            return;
        }
        if addr >= range_end {
            ex.invalid.get_or_insert(addr);
            return;
        }
        if ex.insns.len() >= limits::MAX_FUNCTION_INSTRUCTIONS {
            ex.truncated = true;
            return;
        }
        let window = ctx.image.bytes_from(addr).and_then(|b| {
            let max = usize::try_from(range_end.saturating_sub(addr)).unwrap_or(usize::MAX);
            b.get(..b.len().min(max))
        });
        let Some(insn) = window.and_then(|w| ctx.dec.decode(w, addr, prev.as_ref())) else {
            ex.invalid.get_or_insert(addr);
            return;
        };
        if insn.end() > range_end || insn.end() <= addr {
            ex.invalid.get_or_insert(addr);
            return;
        }
        if insn.end() > next_decoded {
            // This decoding would swallow an instruction decoded earlier.
            ex.overlap.get_or_insert(addr);
            return;
        }
        ex.insns.insert(insn);
        if let Some(r) = insn.data_ref
            && ctx.in_code(r)
        {
            ex.refs.insert(r);
        }
        let next = insn.end();
        match insn.flow {
            Flow::Seq => {}
            Flow::Jump(t) => {
                if t != ex.start
                    && (ctx.known.contains(&t)
                        || !ctx.in_code(t)
                        || ctx.leaves_function(ex.start, t))
                {
                    ex.tails.insert(addr);
                    if ctx.in_code(t) {
                        ex.tail_targets.insert(t);
                    }
                } else {
                    ex.leaders.insert(t);
                    ex.jump_preds.entry(t).or_default().push(addr);
                    work.push(t);
                }
                return;
            }
            Flow::CondJump(t) => {
                if t != ex.start && ctx.known.contains(&t) {
                    // Conditional tail call (`jne other_function`).
                    ex.tails.insert(addr);
                    ex.tail_targets.insert(t);
                } else if ctx.in_code(t) {
                    ex.leaders.insert(t);
                    ex.jump_preds.entry(t).or_default().push(addr);
                    work.push(t);
                } else {
                    ex.invalid.get_or_insert(t);
                }
                ex.leaders.insert(next);
            }
            Flow::Call(t) => {
                if ctx.calls_into_own_body(ex.start, t) {
                    // A call to a local label inside this function's own
                    // FDE (`_start`'s PC thunk on i386): not a new function.
                    if ex.leaders.insert(t) || !ex.insns.contains(t) {
                        work.push(t);
                    }
                    ex.jump_preds.entry(t).or_default().push(addr);
                } else if ctx.in_code(t) {
                    ex.calls.insert(t);
                } else {
                    ex.calls_outside.insert(addr);
                }
                if ctx.noreturn.contains(&t) {
                    ex.noreturn_calls.insert(addr);
                    trap_after(ctx, ex, next, range_end, next_decoded, work);
                    return;
                }
                ex.leaders.insert(next);
                prev = None;
                addr = next;
                continue;
            }
            Flow::IndirectCall { slot } => {
                if slot.is_some_and(|s| ctx.noreturn_slots.contains(&s)) {
                    ex.noreturn_calls.insert(addr);
                    trap_after(ctx, ex, next, range_end, next_decoded, work);
                    return;
                }
                ex.leaders.insert(next);
                prev = None;
                addr = next;
                continue;
            }
            Flow::IndirectJump { slot } => {
                match slot {
                    Some(s) if ctx.is_loader_slot(s) => {
                        ex.tails.insert(addr);
                        ex.import_jumps.insert(addr, s);
                    }
                    _ => pending.push(addr),
                }
                return;
            }
            Flow::Return => {
                ex.has_return = true;
                return;
            }
            Flow::Stop => return,
        }
        prev = Some(insn);
        addr = next;
    }
}

/// Compilers put a trap after some calls that never return (`hlt` after
/// `__libc_start_main` in `_start`, `ud2` after a noreturn call): it belongs
/// to the function although nothing reaches it.
fn trap_after(
    ctx: &Ctx<'_>,
    ex: &mut Explored,
    addr: u64,
    range_end: u64,
    next_decoded: u64,
    work: &mut Vec<u64>,
) {
    if addr >= range_end || addr == next_decoded || ctx.known.contains(&addr) {
        return;
    }
    // The Windows x64 unwinder needs a call's return address inside its
    // function, so mingw keeps the code after a noreturn call (a `nop`, at
    // -O0 the whole epilogue) and `.pdata` covers it: code the function's
    // own RUNTIME_FUNCTION covers belongs to it, reached or not.
    if ctx.image.format == crate::image::Format::Pe
        && let Some(f) = ctx.fde_at(ex.start)
        && addr < f.start.saturating_add(f.len)
    {
        let end = f
            .start
            .saturating_add(f.len)
            .min(range_end)
            .min(next_decoded);
        let mut a = addr;
        let mut prev: Option<Insn> = None;
        ex.leaders.insert(addr);
        while a < end && !ctx.known.contains(&a) {
            let Some(insn) = ctx
                .image
                .bytes_from(a)
                .and_then(|w| ctx.dec.decode(w, a, prev.as_ref()))
                .filter(|i| i.end() <= end && i.end() > a)
            else {
                break;
            };
            ex.insns.insert(insn);
            if let Flow::Call(t) = insn.flow
                && ctx.in_code(t)
            {
                ex.calls.insert(t);
            }
            if insn.flow.ends_block() {
                ex.leaders.insert(insn.end());
            }
            prev = Some(insn);
            a = insn.end();
        }
        let _ = work;
        return;
    }
    let Some(window) = ctx.image.bytes_from(addr) else {
        return;
    };
    let Some(insn) = ctx.dec.decode(window, addr, None) else {
        return;
    };
    // glibc's AArch64 `_start` follows `bl __libc_start_main` with
    // `bl abort`: a call to a noreturn import stub plays the trap's part.
    let noreturn_call = match insn.flow {
        Flow::Call(t) => ctx.noreturn.contains(&t) && ctx.range_of(t).is_some_and(|r| r.plt),
        _ => false,
    };
    if (insn.flow == Flow::Stop || noreturn_call)
        && !ctx.dec.is_padding(window, &insn)
        && insn.end() <= range_end
        && insn.end() <= next_decoded
    {
        ex.insns.insert(insn);
        ex.leaders.insert(addr);
        if let Flow::Call(t) = insn.flow {
            ex.noreturn_calls.insert(addr);
            if ctx.in_code(t) {
                ex.calls.insert(t);
            }
        }
    }
}

/// Collect up to `MAX_PATH` instructions leading to `jump`, in execution
/// order: back through straight-line code and through the one jump that
/// enters a block. At a join point (a block entered from more than one
/// place) the walk stops, unless `through_joins`, in which case it goes on
/// through the straight-line predecessor (the loop preheader, for a switch
/// inside a loop whose table base was loaded before the loop).
fn path_to(ex: &Explored, jump: u64, through_joins: bool) -> Vec<u64> {
    const MAX_PATH: usize = 64;
    let mut rev = vec![jump];
    let mut visited = BTreeSet::from([jump]);
    let mut cur = jump;
    while rev.len() < MAX_PATH {
        let straight = ex
            .insns
            .prev_before(cur)
            .filter(|p| {
                p.end() == cur && p.flow.falls_through() && !ex.noreturn_calls.contains(&p.addr)
            })
            .map(|p| p.addr);
        let jumps: &[u64] = ex.jump_preds.get(&cur).map_or(&[], Vec::as_slice);
        let next = match (straight, jumps) {
            (Some(p), []) => Some(p),
            (None, [p]) => Some(*p),
            (Some(p), _) if through_joins => Some(p),
            (None, many) if through_joins => {
                many.iter().copied().filter(|p| !visited.contains(p)).min()
            }
            _ => None,
        };
        let Some(p) = next.filter(|p| !visited.contains(p)) else {
            break;
        };
        visited.insert(p);
        rev.push(p);
        cur = p;
    }
    rev.reverse();
    rev
}

fn resolve_indirect(ctx: &Ctx<'_>, ex: &mut Explored, jump: u64, work: &mut Vec<u64>) {
    // Try the shortest path first, then longer ones, one block at a time: a
    // longer path may pin the index to the constant of one particular
    // predecessor (a state machine re-entering its switch), a shorter one
    // may miss the bound or the table base set before a loop.
    let full = path_to(ex, jump, true);
    let block_starts: Vec<usize> = full
        .iter()
        .enumerate()
        .filter(|&(i, a)| i == 0 || ex.leaders.contains(a))
        .map(|(i, _)| i)
        .collect();
    // A slot is only an answer when the loader fills it; a load from a
    // table at a path-specific constant index is not.
    let fde = ctx
        .fde_at(ex.start)
        .map(|f| (f.start, f.start.saturating_add(f.len)));
    let accept = |r: &IndirectTarget| match r {
        IndirectTarget::Slot(s) => ctx.is_loader_slot(*s),
        // A table sized by its index's width is believed only when every
        // target stays inside the function's own FDE, or, for a function
        // without one (taken to be contiguous, see `leaves_function`),
        // between its entry and the next called function.
        IndirectTarget::NarrowTable(t) => match fde {
            Some((lo, hi)) => t.targets.iter().all(|&x| x >= lo && x < hi),
            None => {
                let hi = ctx
                    .called
                    .range(ex.start.saturating_add(1)..)
                    .next()
                    .copied()
                    .unwrap_or(u64::MAX);
                t.targets.iter().all(|&x| x >= ex.start && x < hi)
            }
        },
        IndirectTarget::Table(_) => true,
    };
    // Block boundaries first; then any instruction boundary, for a switch
    // whose dispatch block is re-entered from cases not discovered yet.
    let mut starts: Vec<usize> = block_starts.iter().rev().copied().collect();
    starts.extend((0..full.len()).rev().filter(|i| !block_starts.contains(i)));
    let function: Vec<u64> = ex.insns.iter().map(|i| i.addr).collect();
    let resolved = ctx
        .dec
        .resolve_indirect_in(ctx.image, &full, &starts, &function, &accept);
    let table = match resolved {
        Some(IndirectTarget::Table(t) | IndirectTarget::NarrowTable(t)) => t,
        Some(IndirectTarget::Slot(s)) if ctx.is_loader_slot(s) => {
            // The loader fills GOT entries with function addresses: a tail
            // call through the slot.
            ex.tails.insert(jump);
            ex.import_jumps.insert(jump, s);
            return;
        }
        _ => {
            ex.unresolved.insert(jump);
            return;
        }
    };
    // Every target must be code in the same section as the jump, or the
    // bound was wrong: reject the whole table rather than guess.
    let same = ctx.range_of(jump).map(|r| (r.start, r.end));
    let ok = !table.targets.is_empty()
        && table.targets.len() as u64 <= limits::MAX_JUMP_TABLE_ENTRIES
        && table
            .targets
            .iter()
            .all(|&t| same.is_some_and(|(s, e)| t >= s && t < e));
    if !ok {
        ex.rejected_tables.insert(jump);
        ex.unresolved.insert(jump);
        return;
    }
    for &t in &table.targets {
        // LLVM points the cases it proved unreachable just past the end of
        // the function: at padding, or at the next function's entry. Keep
        // the edge (it is in the table) but decode nothing there.
        if (t != ex.start && ctx.known.contains(&t)) || padding_then_entry(ctx, t) {
            continue;
        }
        ex.jump_preds.entry(t).or_default().push(jump);
        if ex.leaders.insert(t) || !ex.insns.contains(t) {
            work.push(t);
        }
    }
    ex.tables.insert(jump, table);
}

/// Whether the code at `addr` is nothing but padding up to a known entry or
/// the end of its section.
fn padding_then_entry(ctx: &Ctx<'_>, addr: u64) -> bool {
    let Some(range) = ctx.range_of(addr) else {
        return false;
    };
    let mut a = addr;
    let mut padded = false;
    for _ in 0..64 {
        if a >= range.end || (padded && ctx.known.contains(&a)) {
            return padded;
        }
        let Some(bytes) = ctx.image.bytes_from(a) else {
            return false;
        };
        match ctx.dec.decode(bytes, a, None) {
            Some(i) if ctx.dec.is_padding(bytes, &i) && i.end() > a => {
                padded = true;
                a = i.end();
            }
            _ => return false,
        }
    }
    false
}

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
}

/// Seeds with the reason they are believed to be functions.
pub(crate) fn seeds(
    image: &Image<'_>,
    code: &[CodeRange],
    dec: &dyn Decoder,
) -> BTreeMap<u64, FunctionSource> {
    let in_code = |a: u64| code.iter().any(|r| r.contains(a));
    let mut out: BTreeMap<u64, FunctionSource> = BTreeMap::new();
    let mut add = |a: u64, s: FunctionSource| {
        if in_code(a) {
            let e = out.entry(a).or_insert(s);
            if s < *e {
                *e = s;
            }
        }
    };
    if let Some(e) = image.entry {
        add(e, FunctionSource::Entry);
    }
    for s in &image.symbols {
        add(s.addr, FunctionSource::Symbol);
    }
    for f in &image.fdes {
        add(f.start, FunctionSource::Fde);
    }
    for &a in &image.init_fini {
        add(a, FunctionSource::InitFini);
    }
    // Every entry of a PLT section is an import stub.
    for r in code.iter().filter(|r| r.plt) {
        let step = if r.entry_size >= 4 { r.entry_size } else { 16 };
        let mut a = r.start;
        // `.plt` opens with the resolver stub (PLT0), whose size the psABI
        // fixes per architecture; the import stubs follow it.
        if r.name == ".plt" && dec.plt_header_size() != step {
            if let Some(bytes) = image.bytes_from(a)
                && let Some(insn) = dec.decode(bytes, a, None)
                && !dec.is_padding(bytes, &insn)
            {
                add(a, FunctionSource::ImportStub);
            }
            a = a.saturating_add(dec.plt_header_size());
        }
        while a < r.end {
            if let Some(bytes) = image.bytes_from(a)
                && let Some(insn) = dec.decode(bytes, a, None)
                && !dec.is_padding(bytes, &insn)
            {
                add(a, FunctionSource::ImportStub);
            }
            let Some(n) = a.checked_add(step) else { break };
            a = n;
        }
    }
    out
}

/// The context every recovery starts from: the seeds as known entries, and
/// what is known not to return before anything is decoded (named functions,
/// import slots of named imports, and import stubs that jump through them).
fn initial_ctx<'a>(
    image: &'a Image<'a>,
    dec: &'a dyn Decoder,
    code: &'a [CodeRange],
    seeds: &BTreeMap<u64, FunctionSource>,
) -> Ctx<'a> {
    let mut ctx = Ctx {
        image,
        dec,
        code,
        known: seeds.keys().copied().collect(),
        called: seeds.keys().copied().collect(),
        noreturn: BTreeSet::new(),
        noreturn_slots: BTreeSet::new(),
    };
    for (&slot, name) in &image.import_slots {
        if is_noreturn_name(name) {
            ctx.noreturn_slots.insert(slot);
        }
    }
    for s in &image.symbols {
        if is_noreturn_name(&s.name) {
            ctx.noreturn.insert(s.addr);
        }
    }
    // Import stubs that jump to a noreturn import (`abort@plt`) are known
    // noreturn before anything calls them, which spares most callers a
    // second decoding.
    for (&a, _) in seeds
        .iter()
        .filter(|(_, s)| **s == FunctionSource::ImportStub)
    {
        let stub = explore(&ctx, a);
        if !stub.import_jumps.is_empty()
            && stub
                .import_jumps
                .values()
                .all(|s| ctx.noreturn_slots.contains(s))
        {
            ctx.noreturn.insert(a);
        }
    }
    ctx
}

/// Recover only the functions that contain `addrs`: each address is placed
/// in the function whose FDE (else nearest preceding seed) covers it, and
/// only those functions are decoded. Noreturn facts are the ones known
/// before decoding (names, import stubs), so a call to a local function that
/// never returns is followed by its fallthrough: the blocks found are a
/// superset of the whole-image analysis's, never fewer.
pub(crate) fn recover_local(image: &Image<'_>, dec: &dyn Decoder, addrs: &[u64]) -> Recovered {
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
    let explored: BTreeMap<u64, Explored> =
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
    };
    finish(image, dec, &code, d)
}

/// Run recovery to its fixpoint.
pub(crate) fn recover(image: &Image<'_>, dec: &dyn Decoder, opts: Options) -> Recovered {
    let code = image.code_ranges();
    let seeds = seeds(image, &code, dec);
    let mut ctx = initial_ctx(image, dec, &code, &seeds);
    let mut d = Discovery {
        explored: BTreeMap::new(),
        sources: seeds.clone(),
        gap_found: BTreeSet::new(),
        noreturn: BTreeSet::new(),
        whole_image: true,
    };
    let mut queue: BTreeSet<u64> = seeds.keys().copied().collect();
    let mut round = 0usize;
    loop {
        round = round.saturating_add(1);
        explore_all(&mut ctx, &mut d, &seeds, &mut queue, opts);
        let found = compute_noreturn(&d.explored, &ctx.noreturn, &ctx.noreturn_slots);
        let grown: BTreeSet<u64> = found.difference(&ctx.noreturn).copied().collect();
        if grown.is_empty() || round >= limits::MAX_NORETURN_ROUNDS {
            d.noreturn = found;
            return finish(image, dec, &code, d);
        }
        // Only functions that call a newly noreturn function decode
        // differently now.
        queue = d
            .explored
            .values()
            .filter(|e| e.calls.iter().any(|c| grown.contains(c)))
            .map(|e| e.start)
            .collect();
        ctx.noreturn.extend(grown);
    }
}

pub(crate) struct Discovery {
    pub explored: BTreeMap<u64, Explored>,
    pub sources: BTreeMap<u64, FunctionSource>,
    pub gap_found: BTreeSet<u64>,
    pub noreturn: BTreeSet<u64>,
    /// Whether the code no function covers is measured: a whole-image
    /// analysis reports it; a function-local one would decode nearly every
    /// byte of the image to say that it did not look there.
    pub whole_image: bool,
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
    let mut ready: Vec<Explored> = Vec::new();
    loop {
        run_waves(
            ctx,
            &mut d.explored,
            &mut d.sources,
            queue,
            std::mem::take(&mut ready),
        );
        settle_conflicts(ctx, &mut d.explored, &mut d.sources, queue);
        prune(d, seeds);
        ctx.known = d.explored.keys().copied().collect();
        if !opts.gap_analysis || gap_rounds >= limits::MAX_GAP_ROUNDS {
            break;
        }
        gap_rounds = gap_rounds.saturating_add(1);
        let found = gap_functions(ctx, &d.explored);
        if found.is_empty() {
            break;
        }
        // Each gap function was explored to be accepted, with the entries
        // known now; the one thing new to the next wave, the other gap
        // functions' entries, lies outside its gap, which it did not leave:
        // that exploration is what decoding it again would give.
        for (a, s, r) in found {
            d.sources.entry(a).or_insert(s);
            d.gap_found.insert(a);
            ready.push(r);
        }
    }
}

/// Keep only functions that a seed, a gap, or (transitively) a call or tail
/// call from one of those leads to: code decoded past a call that turned out
/// not to return may have been the only thing leading to some.
fn prune(d: &mut Discovery, seeds: &BTreeMap<u64, FunctionSource>) {
    let mut live: BTreeSet<u64> = BTreeSet::new();
    let mut work: Vec<u64> = seeds
        .keys()
        .chain(d.gap_found.iter())
        .copied()
        .filter(|a| d.explored.contains_key(a))
        .collect();
    while let Some(a) = work.pop() {
        if !live.insert(a) {
            continue;
        }
        if let Some(e) = d.explored.get(&a) {
            for &t in e.calls.iter().chain(e.tail_targets.iter()) {
                if d.explored.contains_key(&t) && !live.contains(&t) {
                    work.push(t);
                }
            }
        }
    }
    d.explored.retain(|a, _| live.contains(a));
    d.sources
        .retain(|a, _| live.contains(a) || seeds.contains_key(a));
}

/// Explore everything in `queue`, wave by wave, adding call and tail-call
/// targets as new functions.
fn run_waves(
    ctx: &mut Ctx<'_>,
    explored: &mut BTreeMap<u64, Explored>,
    sources: &mut BTreeMap<u64, FunctionSource>,
    queue: &mut BTreeSet<u64>,
    ready: Vec<Explored>,
) {
    // `ready`: a first wave already explored (functions found in gaps).
    let mut ready = Some(ready).filter(|r| !r.is_empty());
    while ready.is_some() || !queue.is_empty() {
        let results: Vec<Explored> = if let Some(r) = ready.take() {
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
            explored.insert(r.start, r);
        }
        queue.retain(|a| !explored.contains_key(a));
    }
}

/// Decode again every function whose code runs through another function's
/// entry, now that all entries are known.
fn settle_conflicts(
    ctx: &mut Ctx<'_>,
    explored: &mut BTreeMap<u64, Explored>,
    sources: &mut BTreeMap<u64, FunctionSource>,
    queue: &mut BTreeSet<u64>,
) {
    for _ in 0..8 {
        ctx.known = explored.keys().copied().collect();
        let conflicted: Vec<u64> = explored
            .values()
            .filter(|e| {
                // Entries inside the decoded runs (not the whole extent: a
                // function with a far cold part spans the whole section).
                e.insns.ranges().any(|(lo, hi)| {
                    ctx.known.range(lo..hi).any(|&k| {
                        k != e.start && e.insns.contains(k) && !is_jump_table_target(e, k)
                    })
                }) || jumps_over_an_entry(ctx, e)
            })
            .map(|e| e.start)
            .collect();
        if conflicted.is_empty() {
            return;
        }
        let shared: &Ctx<'_> = ctx;
        let results: Vec<Explored> = conflicted.par_iter().map(|&a| explore(shared, a)).collect();
        for r in results {
            for &t in r.calls.iter().chain(r.tail_targets.iter()) {
                if !explored.contains_key(&t) {
                    sources.entry(t).or_insert(FunctionSource::Call);
                    queue.insert(t);
                }
            }
            explored.insert(r.start, r);
        }
        run_waves(ctx, explored, sources, queue, Vec::new());
    }
}

/// For a function without an FDE: whether a jump that was taken for one
/// inside the function now leaves it, because an entry found since lies
/// between.
fn jumps_over_an_entry(ctx: &Ctx<'_>, e: &Explored) -> bool {
    ctx.fde_at(e.start).is_none()
        && e.insns.iter().any(|i| match i.flow {
            Flow::Jump(t) => {
                t != e.start && !e.tails.contains(&i.addr) && ctx.leaves_function(e.start, t)
            }
            _ => false,
        })
}

fn is_jump_table_target(e: &Explored, addr: u64) -> bool {
    e.tables.values().any(|t| t.targets.contains(&addr))
}

/// Bytes covered by decoded instructions, as merged intervals.
fn instruction_coverage(explored: &BTreeMap<u64, Explored>) -> Vec<(u64, u64)> {
    let mut iv: Vec<(u64, u64)> = explored.values().flat_map(|e| e.insns.ranges()).collect();
    merge_intervals(&mut iv)
}

fn merge_intervals(iv: &mut [(u64, u64)]) -> Vec<(u64, u64)> {
    iv.sort_unstable();
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
fn covered(explored: &BTreeMap<u64, Explored>) -> Vec<(u64, u64)> {
    let mut iv: Vec<(u64, u64)> = Vec::new();
    for e in explored.values() {
        iv.extend(e.insns.ranges());
        for t in e.tables.values() {
            iv.push((t.table, t.table.saturating_add(t.byte_len())));
        }
    }
    merge_intervals(&mut iv)
}

/// Gaps: executable bytes outside PLT sections that no function covers.
fn gaps(code: &[CodeRange], cov: &[(u64, u64)]) -> Vec<(u64, u64)> {
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
fn gap_functions(
    ctx: &Ctx<'_>,
    explored: &BTreeMap<u64, Explored>,
) -> Vec<(u64, FunctionSource, Explored)> {
    let cov = covered(explored);
    let mut pointers: BTreeSet<u64> = ctx.image.code_pointers.iter().copied().collect();
    for e in explored.values() {
        pointers.extend(e.refs.iter().copied());
    }
    // Who owns the code on each side of a gap: a gap with the same function
    // on both sides is dead code inside that function (often the
    // continuation the compiler kept after a call it did not know never
    // returns), not a function of its own.
    let mut owners: Vec<(u64, u64, u64)> = explored
        .values()
        .flat_map(|e| e.insns.ranges().map(move |(s, end)| (s, end, e.start)))
        .collect();
    owners.sort_unstable();
    let owner_ending_at = |a: u64| -> Option<u64> {
        let i = owners.partition_point(|&(s, _, _)| s < a);
        owners
            .get(..i)?
            .iter()
            .rev()
            .take(64)
            .find(|&&(_, end, _)| end == a)
            .map(|&(_, _, o)| o)
    };
    let owner_starting_at = |a: u64| -> Option<u64> {
        let i = owners.partition_point(|&(s, _, _)| s < a);
        owners
            .get(i)
            .filter(|&&(s, _, _)| s == a)
            .map(|&(_, _, o)| o)
    };
    let gap_list: Vec<(u64, u64)> = gaps(ctx.code, &cov)
        .into_iter()
        .filter(|&(gs, ge)| {
            let before = owner_ending_at(gs);
            before.is_none() || before != owner_starting_at(ge)
        })
        .collect();
    let per_gap: Vec<Vec<(u64, FunctionSource, Explored)>> = gap_list
        .par_iter()
        .map(|&(gs, ge)| {
            let mut found = Vec::new();
            let mut candidates: Vec<(u64, FunctionSource)> = pointers
                .range(gs..ge)
                .map(|&p| (p, FunctionSource::Pointer))
                .collect();
            candidates.extend(
                after_padding(ctx, gs, ge)
                    .into_iter()
                    .map(|a| (a, FunctionSource::Gap)),
            );
            // Lowest address first; for one address the first reason
            // (pointer before gap) wins.
            let mut queue: BTreeMap<u64, FunctionSource> = BTreeMap::new();
            for (a, s) in candidates {
                queue.entry(a).or_insert(s);
            }
            let mut taken_until = gs;
            while let Some((cand, source)) = queue.pop_first() {
                // The compiler's FDEs say where functions start; code in the
                // middle of one belongs to it.
                if cand < taken_until || ctx.strictly_inside_fde(cand) {
                    continue;
                }
                let r = explore(ctx, cand);
                if acceptable(ctx, &r, gs, ge) {
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
            found
        })
        .collect();
    per_gap.into_iter().flatten().collect()
}

/// Whether the instruction at `addr` (below `end`) is padding.
fn is_padding_at(ctx: &Ctx<'_>, addr: u64, end: u64) -> bool {
    let window = ctx.image.bytes_from(addr).and_then(|b| {
        let max = usize::try_from(end.saturating_sub(addr)).unwrap_or(usize::MAX);
        b.get(..b.len().min(max))
    });
    window
        .and_then(|w| Some((w, ctx.dec.decode(w, addr, None)?)))
        .is_some_and(|(w, insn)| ctx.dec.is_padding(w, &insn))
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
    while a < end && steps < 1_000_000 {
        steps = steps.saturating_add(1);
        let window = ctx.image.bytes_from(a).and_then(|b| {
            let max = usize::try_from(end.saturating_sub(a)).unwrap_or(usize::MAX);
            b.get(..b.len().min(max))
        });
        let Some(w) = window else { break };
        match ctx.dec.decode(w, a, None) {
            Some(insn) if insn.end() <= end && insn.end() > a => {
                let pad = ctx.dec.is_padding(w, &insn);
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

fn acceptable(ctx: &Ctx<'_>, r: &Explored, gs: u64, ge: u64) -> bool {
    if r.invalid.is_some() || r.overlap.is_some() || r.truncated || r.insns.is_empty() {
        return false;
    }
    if !r.calls_outside.is_empty() {
        return false;
    }
    if r.insns.iter().any(|i| i.addr < gs || i.end() > ge) {
        return false;
    }
    // Calls must land on something that can be a function entry.
    if r.calls.iter().any(|&c| !ctx.in_code(c)) {
        return false;
    }
    // A lone padding-like instruction or a single trap is not a function.
    let first_is_padding = r.insns.iter().next().is_some_and(|i| {
        ctx.image
            .bytes_from(i.addr)
            .is_some_and(|b| ctx.dec.is_padding(b, i))
    });
    if first_is_padding {
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
        || r.insns
            .iter()
            .any(|i| matches!(i.flow, Flow::Call(_) | Flow::IndirectCall { .. }))
}

/// Least fixpoint of "may return": a function returns if it has a return
/// instruction, an unresolved indirect jump, a truncated or broken decode, a
/// tail call or fallthrough into something that returns, or an indirect jump
/// through an import slot that is not known noreturn.
fn compute_noreturn(
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

/// Turn explored functions into blocks and edges.
fn finish(image: &Image<'_>, dec: &dyn Decoder, code: &[CodeRange], d: Discovery) -> Recovered {
    let starts: Vec<u64> = d.explored.keys().copied().collect();
    // A function extends from its entry over the decoded code that follows
    // it, up to the next entry, whichever function's body that code was
    // reached from: the cold part `f.cold` holds blocks entered from `f`.
    let code_cov = instruction_coverage(&d.explored);
    let mut functions: Vec<RawFunction> = d
        .explored
        .par_iter()
        .map(|(&start, e)| {
            let blocks = blocks_of(e);
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
                source: d
                    .sources
                    .get(&start)
                    .copied()
                    .unwrap_or(FunctionSource::Gap),
                noreturn: d.noreturn.contains(&start),
                import_slot: e.import_jumps.values().next().copied(),
                blocks,
            }
        })
        .collect();
    functions.sort_by_key(|f| f.addr);

    let mut unresolved = Vec::new();
    let mut jump_tables = Vec::new();
    let mut anomalies = Vec::new();
    let mut return_sites = Vec::new();
    for e in d.explored.values() {
        for &j in &e.unresolved {
            unresolved.push(Unresolved {
                addr: j,
                function: e.start,
            });
        }
        for (&j, t) in &e.tables {
            jump_tables.push(JumpTableInfo {
                jump: j,
                table: t.table,
                entries: t.targets.len() as u64,
                entry_size: t.entry_size,
            });
        }
        let mut note = |kind: &str, addr: u64| {
            anomalies.push(Anomaly {
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
        for i in e.insns.iter() {
            if matches!(i.flow, Flow::Call(_) | Flow::IndirectCall { .. }) {
                return_sites.push(i.end());
            }
        }
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
            .iter()
            .map(|&(s, e)| non_padding_bytes(image, dec, s, e))
            .sum()
    } else {
        0
    };
    Recovered {
        functions,
        unresolved,
        jump_tables,
        anomalies,
        unexplained_bytes,
        return_sites,
    }
}

fn non_padding_bytes(image: &Image<'_>, dec: &dyn Decoder, start: u64, end: u64) -> u64 {
    let mut a = start;
    let mut count = 0u64;
    while a < end {
        let window = image.bytes_from(a).and_then(|b| {
            let max = usize::try_from(end.saturating_sub(a)).unwrap_or(usize::MAX);
            b.get(..b.len().min(max))
        });
        let Some(w) = window else {
            return count.saturating_add(end.saturating_sub(a));
        };
        match dec.decode(w, a, None) {
            Some(i) if i.end() <= end && i.end() > a => {
                if !dec.is_padding(w, &i) {
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

/// Split a function's instructions into basic blocks with typed edges.
fn blocks_of(e: &Explored) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut cur: Option<(u64, u64, u32)> = None; // start, end, count
    let mut last: Option<&Insn> = None;
    let close = |blocks: &mut Vec<Block>, start: u64, end: u64, count: u32, last: &Insn| {
        blocks.push(Block {
            addr: start,
            size: end.saturating_sub(start),
            instructions: count,
            succs: successors(e, last),
        });
    };
    for insn in e.insns.iter() {
        if let (Some((s, end, n)), Some(l)) = (cur, last)
            && (e.leaders.contains(&insn.addr) || insn.addr != end)
        {
            close(&mut blocks, s, end, n, l);
            cur = None;
        }
        cur = Some(match cur {
            None => (insn.addr, insn.end(), 1),
            Some((s, _, n)) => (s, insn.end(), n.saturating_add(1)),
        });
        last = Some(insn);
        if insn.flow.ends_block() {
            if let Some((s, end, n)) = cur {
                close(&mut blocks, s, end, n, insn);
            }
            cur = None;
        }
    }
    if let (Some((s, end, n)), Some(l)) = (cur, last) {
        close(&mut blocks, s, end, n, l);
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
