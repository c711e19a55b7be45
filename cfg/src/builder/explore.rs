//! Decoding one function: recursive descent from its entry, jump tables.

use std::collections::{BTreeMap, BTreeSet};

use crate::arch::{Decoder, Flow, IndirectTarget, Insn, JumpTable};
use crate::image::{CodeRange, Image};
use crate::index::InsnIndex;
use crate::limits;

/// What exploring one function produced.
#[derive(Debug, Clone, Default)]
pub(crate) struct Explored {
    pub start: u64,
    pub insns: InsnIndex,
    pub(super) leaders: BTreeSet<u64>,
    /// Jump instructions that are tail calls.
    pub(super) tails: BTreeSet<u64>,
    /// Indirect jumps through an import slot (PLT stubs, `-fno-plt`), with
    /// the slot.
    pub(super) import_jumps: BTreeMap<u64, u64>,
    /// Calls whose callee does not return (no fallthrough edge).
    pub(super) noreturn_calls: BTreeSet<u64>,
    pub tables: BTreeMap<u64, JumpTable>,
    pub(super) unresolved: BTreeSet<u64>,
    pub(super) calls: BTreeSet<u64>,
    pub(super) tail_targets: BTreeSet<u64>,
    /// Fallthrough from an instruction into another function's entry.
    pub(super) falls_into: BTreeMap<u64, u64>,
    /// Addresses in code taken by instructions (function pointers).
    pub(super) refs: BTreeSet<u64>,
    pub(super) has_return: bool,
    pub(super) invalid: Option<u64>,
    pub(super) overlap: Option<u64>,
    pub(super) truncated: bool,
    pub(super) rejected_tables: BTreeSet<u64>,
    pub(super) calls_outside: BTreeSet<u64>,
    /// Predecessors through direct jumps, for jump-table paths.
    pub(super) jump_preds: BTreeMap<u64, Vec<u64>>,
}

impl Explored {
    /// Lowest and highest byte of decoded code.
    pub(super) fn extent(&self) -> Option<(u64, u64)> {
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
    pub(super) fn fde_at(&self, addr: u64) -> Option<&crate::image::Fde> {
        let fdes = &self.image.fdes;
        let idx = fdes.partition_point(|f| f.start < addr);
        fdes.get(idx).filter(|f| f.start == addr)
    }

    /// Whether some FDE covers `addr`.
    pub(super) fn in_any_fde(&self, addr: u64) -> bool {
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
    pub(super) fn strictly_inside_fde(&self, addr: u64) -> bool {
        self.in_any_fde(addr) && self.fde_at(addr).is_none()
    }

    /// Whether `slot` is a cell the dynamic loader fills with a code address:
    /// an import slot, or any entry of `.got` / `.got.plt` (the resolver
    /// entry used by lazy binding, `_ITM_*` weak references, ...).
    pub(super) fn is_loader_slot(&self, slot: u64) -> bool {
        self.image.import_slots.contains_key(&slot)
            || self
                .image
                .sections
                .iter()
                .any(|s| matches!(s.name.as_str(), ".got" | ".got.plt") && s.contains(slot))
    }

    /// Whether `target` lies strictly inside the FDE of the function at
    /// `start` (and is no known entry).
    pub(super) fn calls_into_own_body(&self, start: u64, target: u64) -> bool {
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
    pub(super) fn leaves_function(&self, start: u64, target: u64) -> bool {
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

    pub(super) fn range_of(&self, addr: u64) -> Option<&CodeRange> {
        let idx = self.code.partition_point(|r| r.start <= addr);
        let r = self.code.get(idx.checked_sub(1)?)?;
        r.contains(addr).then_some(r)
    }

    pub(super) fn in_code(&self, addr: u64) -> bool {
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

pub(super) fn decode_run(
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
pub(super) fn trap_after(
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
pub(super) fn path_to(ex: &Explored, jump: u64, through_joins: bool) -> Vec<u64> {
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

pub(super) fn resolve_indirect(ctx: &Ctx<'_>, ex: &mut Explored, jump: u64, work: &mut Vec<u64>) {
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
pub(super) fn padding_then_entry(ctx: &Ctx<'_>, addr: u64) -> bool {
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
