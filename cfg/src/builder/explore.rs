//! Decoding one function: recursive descent from its entry, jump tables.

use std::collections::{BTreeMap, BTreeSet};

use crate::arch::{Flow, Insn, Isa, JumpTable, StackEffect};
use crate::image::{CodeRange, Image};
use crate::index::InsnIndex;
use crate::limits;

use super::indirect::resolve_indirect;

/// The stack pointer's offset from its value at the function's entry
/// (`Some(-64)` inside a 64-byte frame), `None` where it is not known.
pub(crate) type Sp = Option<i64>;

/// The offset after an instruction with `effect`.
pub(super) fn step_sp(sp: Sp, effect: StackEffect) -> Sp {
    match effect {
        StackEffect::None => sp,
        StackEffect::Add(k) => sp.and_then(|d| d.checked_add(k)),
        StackEffect::Unknown => None,
    }
}

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
    /// A return or tail call was reached with the stack pointer known to
    /// differ from its value at the entry: the entry is not a function's
    /// (code cut out of the middle of one, whose frame it releases).
    pub(super) unbalanced: bool,
    /// Leaders of code after calls that do not return, kept as this
    /// function's (the compiler did not know the callee never returns).
    pub(super) dead: BTreeSet<u64>,
    /// Targets of jumps kept inside this function (no frame tables) that
    /// were made with the stack as at the entry: where a tail call to a
    /// function placed next would go. If another function jumps there the
    /// same way, the target is an entry both share.
    pub(super) soft_targets: BTreeSet<u64>,
    /// The addresses after calls that do not return, with the stack's
    /// depth there: looked at once the reachable code is decoded.
    pub(super) after_noreturn: Vec<(u64, Sp)>,
    /// Direct jumps kept inside the function because its frame was still
    /// allocated there (no entry found later changes that, unless it is
    /// called).
    pub(super) frame_jumps: BTreeSet<u64>,
    /// Exception landing pads of the function (from its LSDA).
    pub(super) pads: BTreeSet<u64>,
    /// Some path ends in a trap (`ebreak`, `ud2`, `brk`).
    pub(super) has_trap: bool,
    /// Some indirect jump left unresolved was made with the frame released
    /// (the stack as at the entry): an indirect tail call (`ld a5, 8(a0);
    /// jr a5`).
    pub(super) indirect_tail: bool,
    /// Set when the conflict check last found this function clean: the
    /// addresses where an entry or a call target found since could make it
    /// conflict (see `settle_conflicts`). A function decoded again starts
    /// without it.
    pub(super) clean_span: Option<(u64, u64)>,
}

impl Explored {
    /// The entry that straight-line code runs into at `addr`, if decoding
    /// stopped there for that reason.
    pub(super) fn falls_into_at(&self, addr: u64) -> Option<u64> {
        let p = self.insns.prev_before(addr)?;
        self.falls_into.get(&p.addr).copied().filter(|&t| t == addr)
    }

    /// Record that calls to `callees` do not return: no fallthrough edge
    /// after them (the code there stays, as dead code of the function).
    pub(super) fn cut_after_calls(&mut self, callees: &BTreeSet<u64>) {
        let cut: Vec<(u64, u64)> = self
            .insns
            .flows()
            .filter_map(|i| match i.flow {
                Flow::Call(t) if callees.contains(&t) => Some((i.addr, i.end())),
                _ => None,
            })
            .collect();
        for (call, next) in cut {
            self.noreturn_calls.insert(call);
            self.falls_into.remove(&call);
            if self.insns.contains(next) {
                self.dead.insert(next);
            }
        }
    }

    /// Lowest and highest byte of decoded code.
    pub(super) fn extent(&self) -> Option<(u64, u64)> {
        self.insns.extent()
    }
}

/// Shared, read-only facts for one wave of exploration.
pub(crate) struct Ctx<'a> {
    pub image: &'a Image<'a>,
    pub dec: &'a dyn Isa,
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
    /// Instructions decoded so far by every exploration, kept or thrown
    /// away (see [`crate::Cfg::work`]).
    pub work: std::sync::atomic::AtomicU64,
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
    /// unwind tables) is left by a jump below its entry, when that entry has
    /// direct evidence (a seed or a call target: `frame_dummy` ->
    /// `register_tm_clones`), and by a jump over the entry of another
    /// function with direct evidence. Entries found only in gaps or as
    /// tail-call targets are weaker evidence: trusting them would let one
    /// wrong entry cut a function into pieces at every jump.
    pub(super) fn leaves_function(&self, start: u64, target: u64) -> bool {
        match self.fde_at(start) {
            Some(f) => {
                let inside = target >= f.start && target < f.start.saturating_add(f.len);
                !inside && !self.in_any_fde(target)
            }
            None => {
                if self.in_any_fde(target) {
                    return false;
                }
                if target < start {
                    // Compilers place every block of a function after its
                    // entry (cold parts aside, which come with FDEs): a
                    // jump below an entry with direct evidence leaves it.
                    // An entry found only in a gap may be a piece of the
                    // function the jump goes back into.
                    self.called.contains(&start)
                        || self
                            .called
                            .range(target.saturating_add(1)..start)
                            .next()
                            .is_some()
                } else {
                    self.called
                        .range(start.saturating_add(1)..target)
                        .next()
                        .is_some()
                }
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
///
/// Boxed: a function's facts are several hundred bytes, and the maps of a
/// whole program's functions would move them on every insert.
pub(crate) fn explore(ctx: &Ctx<'_>, start: u64) -> Box<Explored> {
    let ex = explore_from(ctx, start);
    ctx.work
        .fetch_add(ex.insns.len() as u64, std::sync::atomic::Ordering::Relaxed);
    Box::new(ex)
}

fn explore_from(ctx: &Ctx<'_>, start: u64) -> Explored {
    let mut ex = Explored {
        start,
        ..Explored::default()
    };
    ex.leaders.insert(start);
    // Landing pads first on the stack, so they are decoded last: the
    // unwinder enters them, with the frame as at the call that threw.
    let pads = &ctx.image.landing_pads;
    let first = pads.partition_point(|&(f, _)| f < start);
    let mut work: Vec<(u64, Sp)> = pads
        .get(first..)
        .unwrap_or(&[])
        .iter()
        .take_while(|&&(f, _)| f == start)
        .filter(|&&(_, p)| ctx.in_code(p))
        .map(|&(_, p)| (p, None))
        .collect();
    for &(p, _) in &work {
        ex.leaders.insert(p);
        ex.pads.insert(p);
    }
    work.push((start, Some(0)));
    let mut pending: Vec<(u64, Sp)> = Vec::new();
    loop {
        while let Some((a, sp)) = work.pop() {
            decode_run(ctx, &mut ex, a, sp, &mut work, &mut pending);
            if ex.truncated {
                return ex;
            }
        }
        if !pending.is_empty() {
            pending.sort_unstable();
            for (j, sp) in std::mem::take(&mut pending) {
                resolve_indirect(ctx, &mut ex, j, sp, &mut work);
            }
            continue;
        }
        if ex.after_noreturn.is_empty() {
            break;
        }
        // What follows calls that do not return, once everything that is
        // reached is decoded (code there may be reached another way, and
        // must then be decoded as such).
        let mut after = std::mem::take(&mut ex.after_noreturn);
        after.sort_unstable();
        after.dedup();
        for (a, sp) in after {
            after_noreturn(ctx, &mut ex, a, sp, &mut work);
        }
    }
    trailing_in_fde(ctx, &mut ex);
    // Only jump-table resolution, done now, walks back along direct jumps.
    ex.jump_preds = BTreeMap::new();
    ex
}

/// Whether a direct jump from the function entered at `start`, made with the
/// stack at `sp`, to `t` leaves the function (a tail call). A jump is a tail
/// call when its target is another function's entry by independent
/// evidence (a seed or a call target), and otherwise only when nothing says
/// it stays: a jump made while the function's frame is still allocated
/// stays inside (a tail call releases the frame first), and without frame
/// tables the target must lie beyond another function's entry
/// (see [`Ctx::leaves_function`]).
fn jump_leaves(ctx: &Ctx<'_>, start: u64, t: u64, sp: Sp) -> bool {
    if t == start {
        return false;
    }
    if !ctx.in_code(t) || ctx.called.contains(&t) {
        return true;
    }
    let no_fde = ctx.fde_at(start).is_none();
    let frame_live = sp.is_some_and(|d| d != 0) && no_fde;
    if frame_live {
        return false;
    }
    // On RISC-V, with the frame unknown (`alloca`: QuickJS's interpreter
    // sizes its frame at run time), an entry found only in a gap or as a
    // tail-call target is no evidence that a jump there leaves the
    // function: it may be a piece of this one, swept before this function
    // was found (static glibc, where few seeds are known at first). Not on
    // x86-64: V8's builtins in node (no frame entries, a stack the walk
    // does not follow) jump to each other's entries found in gaps, and
    // taking those jumps in merged 18 of them.
    let evidence_needed = sp.is_none() && no_fde && ctx.image.arch == crate::image::Arch::Riscv64;
    (ctx.known.contains(&t) && !evidence_needed)
        || ctx.leaves_function(start, t)
        || (no_fde && sp == Some(0) && !ctx.in_any_fde(t) && builds_frame(ctx, t))
}

/// Whether a call made inside the frame of the function entered at `start`
/// (no frame tables; the stack at `sp`) cannot return to `next`: the code
/// there builds a frame of its own, so it is the next function's entry
/// (the compiler knew the call never returns at this site, `__libc_message
/// (do_abort, ...)` in static glibc's `malloc_printerr`, and put nothing
/// after it) and not the rest of this one, which would find its frame
/// built already.
fn never_comes_back(ctx: &Ctx<'_>, start: u64, next: u64, sp: Sp) -> bool {
    sp.is_some_and(|d| d != 0)
        && ctx.fde_at(start).is_none()
        && !ctx.in_any_fde(next)
        && builds_frame(ctx, next)
}

/// Whether the code at `t` allocates a stack frame within its first few
/// straight-line instructions: a prologue. Jumped to with the caller's
/// frame released (or never built), that is another function's entry: a
/// function's own blocks are not entered at a prologue by a jump (a
/// shrink-wrapped prologue is the fallthrough or a conditional branch of
/// the entry block).
fn builds_frame(ctx: &Ctx<'_>, t: u64) -> bool {
    let mut a = t;
    for _ in 0..4 {
        let Some(w) = ctx.image.bytes_from(a) else {
            return false;
        };
        let Some(insn) = ctx.dec.decode(w, a, None) else {
            return false;
        };
        match ctx.dec.stack_effect(w, &insn) {
            StackEffect::Add(k) if k < 0 => return true,
            StackEffect::None if insn.flow == Flow::Seq => {}
            _ => return false,
        }
        a = insn.end();
    }
    false
}

pub(super) fn decode_run(
    ctx: &Ctx<'_>,
    ex: &mut Explored,
    from: u64,
    sp_in: Sp,
    work: &mut Vec<(u64, Sp)>,
    pending: &mut Vec<(u64, Sp)>,
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
    let mut sp = sp_in;
    // The bytes from `a` to the end of the code range, as far as they are
    // contiguous in the file.
    let bytes_at = |a: u64| ctx.image.bytes_until(a, range_end);
    // The run is decoded in order, each instruction where the last ended.
    let mut cursor = bytes_at(from).map(|b| ctx.dec.cursor(b, from));
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
        let window = bytes_at(addr);
        let decoded = match cursor.as_mut().and_then(|c| c.next(prev.as_ref())) {
            Some(insn) => Some(insn),
            None => {
                // Where the cursor's bytes end (a section boundary inside
                // the code range) the instruction is decoded on its own,
                // and the run goes on with a new cursor after it.
                let insn = window.and_then(|w| ctx.dec.decode(w, addr, prev.as_ref()));
                if let Some(i) = insn {
                    cursor = bytes_at(i.end()).map(|b| ctx.dec.cursor(b, i.end()));
                }
                insn
            }
        };
        let Some(insn) = decoded else {
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
        if let Some(w) = window {
            sp = step_sp(sp, ctx.dec.stack_effect(w, &insn));
        }
        let next = insn.end();
        match insn.flow {
            Flow::Seq => {}
            Flow::Jump(t) => {
                if jump_leaves(ctx, ex.start, t, sp) {
                    ex.tails.insert(addr);
                    if ctx.in_code(t) {
                        ex.tail_targets.insert(t);
                    }
                    ex.unbalanced |= sp.is_some_and(|d| d != 0);
                } else {
                    if ctx.fde_at(ex.start).is_none() {
                        match sp {
                            Some(0) => {
                                ex.soft_targets.insert(t);
                            }
                            Some(_) => {
                                ex.frame_jumps.insert(addr);
                            }
                            None => {}
                        }
                    }
                    ex.leaders.insert(t);
                    ex.jump_preds.entry(t).or_default().push(addr);
                    work.push((t, sp));
                }
                return;
            }
            Flow::CondJump(t) => {
                let frame_live = sp.is_some_and(|d| d != 0) && ctx.fde_at(ex.start).is_none();
                if t != ex.start
                    && (ctx.called.contains(&t) || (ctx.known.contains(&t) && !frame_live))
                {
                    // Conditional tail call (`jne other_function`).
                    ex.tails.insert(addr);
                    ex.tail_targets.insert(t);
                } else if ctx.in_code(t) {
                    ex.leaders.insert(t);
                    ex.jump_preds.entry(t).or_default().push(addr);
                    work.push((t, sp));
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
                        work.push((t, None));
                    }
                    ex.jump_preds.entry(t).or_default().push(addr);
                } else if ctx.in_code(t) {
                    ex.calls.insert(t);
                } else {
                    ex.calls_outside.insert(addr);
                }
                let noreturn =
                    ctx.noreturn.contains(&t) || never_comes_back(ctx, ex.start, next, sp);
                if call_ends_run(ex, addr, next, sp, noreturn) {
                    return;
                }
                prev = None;
                addr = next;
                continue;
            }
            Flow::IndirectCall { slot } => {
                let noreturn = slot.is_some_and(|s| ctx.noreturn_slots.contains(&s))
                    || never_comes_back(ctx, ex.start, next, sp);
                if call_ends_run(ex, addr, next, sp, noreturn) {
                    return;
                }
                prev = None;
                addr = next;
                continue;
            }
            Flow::IndirectJump { slot } => {
                match slot {
                    Some(s) if ctx.is_loader_slot(s) => {
                        ex.tails.insert(addr);
                        ex.import_jumps.insert(addr, s);
                        ex.unbalanced |= sp.is_some_and(|d| d != 0);
                    }
                    _ => pending.push((addr, sp)),
                }
                return;
            }
            Flow::Return => {
                ex.has_return = true;
                ex.unbalanced |= sp.is_some_and(|d| d != 0);
                return;
            }
            Flow::Stop => {
                ex.has_trap = true;
                return;
            }
        }
        prev = Some(insn);
        addr = next;
    }
}

/// Record the call at `call` (the stack at `sp`, the next instruction at
/// `next`): when it does not return, the run ends there and what follows
/// is looked at once everything reached is decoded (`true`); otherwise the
/// return address starts a basic block.
fn call_ends_run(ex: &mut Explored, call: u64, next: u64, sp: Sp, noreturn: bool) -> bool {
    if noreturn {
        ex.noreturn_calls.insert(call);
        ex.after_noreturn.push((next, sp));
    } else {
        ex.leaders.insert(next);
    }
    noreturn
}

/// What follows a call that does not return. Compilers put a trap there
/// (`hlt` after `__libc_start_main` in `_start`, `ud2` after a noreturn
/// call), or, when they did not know that the callee never returns (it is
/// in another file: `luaL_error` ends in `longjmp`), the rest of the
/// caller's code: an epilogue, a jump back into the body. Either belongs to
/// the function although nothing reaches it. `sp` is the stack's depth at
/// the call.
pub(super) fn after_noreturn(
    ctx: &Ctx<'_>,
    ex: &mut Explored,
    addr: u64,
    sp: Sp,
    work: &mut Vec<(u64, Sp)>,
) {
    let Some(range_end) = ctx.range_of(addr).map(|r| r.end) else {
        return;
    };
    if ex.insns.contains(addr) || ctx.known.contains(&addr) {
        return;
    }
    if ex.insns.prev_before(addr).is_some_and(|p| p.end() > addr) {
        return;
    }
    let next_decoded = ex.insns.next_from(addr).unwrap_or(u64::MAX);
    // Code the function's own frame entry covers belongs to it, reached or
    // not: gcc keeps the epilogue after a call it did not know never
    // returns, and the Windows x64 unwinder needs a call's return address
    // inside its function, so mingw keeps what follows such a call (a
    // `nop`, at -O0 the whole epilogue) and `.pdata` covers it. Decoded up
    // to the entry's end (padding follows).
    if let Some(f) = ctx.fde_at(ex.start)
        && addr >= f.start
        && addr < f.start.saturating_add(f.len)
    {
        let end = f
            .start
            .saturating_add(f.len)
            .min(range_end)
            .min(next_decoded);
        decode_linear(ctx, ex, addr, end);
        ex.dead.insert(addr);
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
        return;
    }
    if !ctx.dec.is_padding(window, &insn) && dead_code_belongs(ctx, ex, addr, sp) {
        ex.leaders.insert(addr);
        ex.dead.insert(addr);
        work.push((addr, sp));
    }
}

/// Decode `[from, end)` straight through as dead code of the function (no
/// branch reaches it; its frame entry covers it): up to `end`, a known
/// entry, bytes that do not decode, or a call that does not return.
fn decode_linear(ctx: &Ctx<'_>, ex: &mut Explored, from: u64, end: u64) {
    let mut a = from;
    let mut prev: Option<Insn> = None;
    ex.leaders.insert(from);
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
        match insn.flow {
            Flow::Call(t) if ctx.in_code(t) => {
                ex.calls.insert(t);
                if ctx.noreturn.contains(&t) {
                    // What follows another call that does not return is
                    // not this function's for that reason (glibc's AArch64
                    // `_start`: `bl __libc_start_main; bl abort`, then
                    // `__wrap_main`, inside the FDE).
                    ex.noreturn_calls.insert(a);
                    break;
                }
            }
            Flow::Jump(t) | Flow::CondJump(t) if jump_leaves(ctx, ex.start, t, None) => {
                ex.tails.insert(a);
            }
            _ => {}
        }
        if insn.flow.ends_block() {
            ex.leaders.insert(insn.end());
        }
        prev = Some(insn);
        a = insn.end();
    }
    ex.dead.insert(from);
}

/// The end of a function's own frame entry is the end of its code: bytes
/// after the last decoded instruction and before the entry's end that are
/// not padding are dead code of the function (glibc's syscall wrappers end
/// `j __syscall_error; ret`, the `ret` inside the FDE).
fn trailing_in_fde(ctx: &Ctx<'_>, ex: &mut Explored) {
    let Some(f) = ctx.fde_at(ex.start) else {
        return;
    };
    let end = f.start.saturating_add(f.len);
    let Some(hi) = ex
        .insns
        .ranges()
        .filter(|&(lo, _)| lo >= f.start && lo < end)
        .map(|(_, hi)| hi)
        .max()
    else {
        return;
    };
    if hi >= end || ctx.known.contains(&hi) {
        return;
    }
    // After a call that does not return, `after_noreturn` has decided.
    if ex
        .insns
        .prev_before(hi)
        .is_some_and(|p| ex.noreturn_calls.contains(&p.addr))
    {
        return;
    }
    let Some(range_end) = ctx.range_of(hi).map(|r| r.end) else {
        return;
    };
    let end = end
        .min(range_end)
        .min(ex.insns.next_from(hi).unwrap_or(u64::MAX));
    if super::gaps::non_padding(ctx, hi, end) {
        decode_linear(ctx, ex, hi, end);
    }
}

/// Whether the code at `from`, after a call that does not return made with
/// the stack at `sp`, is the rest of the calling function: decoded on every
/// path (at most a few hundred instructions) it neither runs into another
/// function's entry nor builds a frame of its own, and it ends by rejoining
/// the function's code, in a trap or another noreturn call, or in a return
/// or tail call that releases the caller's frame exactly. Only with the
/// caller's frame live at the call (`sp` known and not 0) does a balanced
/// return count: the entry of a function that follows would return with
/// that frame still allocated. Without a frame, the code must rejoin.
fn dead_code_belongs(ctx: &Ctx<'_>, ex: &Explored, from: u64, sp: Sp) -> bool {
    const BUDGET: usize = 512;
    let frame_live = sp.is_some_and(|d| d != 0);
    let mut seen: BTreeSet<u64> = BTreeSet::new();
    let mut work: Vec<(u64, Sp)> = vec![(from, sp)];
    let mut rejoined = false;
    let mut steps = 0usize;
    while let Some((start, mut s)) = work.pop() {
        let mut a = start;
        let mut prev: Option<Insn> = None;
        loop {
            steps = steps.saturating_add(1);
            if steps > BUDGET {
                return false;
            }
            if ex.insns.contains(a) {
                rejoined = true;
                break;
            }
            if !seen.insert(a) {
                break;
            }
            if a != from && ctx.known.contains(&a) {
                return false;
            }
            let Some(range) = ctx.range_of(a) else {
                return false;
            };
            let Some(insn) = ctx
                .image
                .bytes_until(a, range.end)
                .and_then(|w| Some((w, ctx.dec.decode(w, a, prev.as_ref())?)))
                .filter(|(_, i)| i.end() > a && i.end() <= range.end)
            else {
                return false;
            };
            let (w, insn) = insn;
            let effect = ctx.dec.stack_effect(w, &insn);
            if matches!(effect, StackEffect::Add(k) if k < 0) {
                // A frame being built: the prologue of the next function.
                return false;
            }
            s = step_sp(s, effect);
            let balanced = s == Some(0) && frame_live;
            match insn.flow {
                Flow::Seq => {}
                Flow::Jump(t) => {
                    if ex.insns.contains(t) || seen.contains(&t) {
                        rejoined = true;
                    } else if jump_leaves(ctx, ex.start, t, s) {
                        if !balanced {
                            return false;
                        }
                    } else {
                        work.push((t, s));
                    }
                    break;
                }
                Flow::CondJump(t) => {
                    if !ctx.in_code(t) {
                        return false;
                    }
                    work.push((t, s));
                }
                Flow::Call(t) if ctx.noreturn.contains(&t) => break,
                Flow::Call(_) => prev = None,
                Flow::IndirectCall { slot } => {
                    if slot.is_some_and(|x| ctx.noreturn_slots.contains(&x)) {
                        break;
                    }
                    prev = None;
                }
                Flow::IndirectJump { .. } | Flow::Return => {
                    if !balanced {
                        return false;
                    }
                    break;
                }
                Flow::Stop => break,
            }
            if !matches!(insn.flow, Flow::Call(_) | Flow::IndirectCall { .. }) {
                prev = Some(insn);
            }
            a = insn.end();
        }
    }
    frame_live || rejoined
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
