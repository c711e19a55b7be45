//! Indirect-jump resolution on AArch64: the path interpreter (linear values
//! plus the last comparison), frame slots and spilled constants, and the
//! registers a function defines once by a constant.

use super::*;
use crate::arch::{IndirectQuery, ResolveIndirect};

impl ResolveIndirect for Aarch64Decoder {
    fn resolve_indirect(&self, image: &Image<'_>, path: &[u64]) -> Option<IndirectTarget> {
        resolve_path(image, path, &[], &[], &Some)
    }

    fn resolve_indirect_in(&self, q: &IndirectQuery<'_>) -> Option<IndirectTarget> {
        let (image, path, admit) = (q.image, q.path, q.admit);
        risc::resolve_in(
            self,
            q,
            || invariant_registers(image, q.function),
            |p, seeds| resolve_path(image, p, seeds, &[], admit),
            |preds| {
                // Last, a table base the function spilled to its frame once
                // (`str x0, [sp, #144]` after `adrp`+`add`, far before the
                // switch) and reloads at the switch: every store that can
                // reach the reload must store the same constant.
                let slots: Vec<(i64, u64)> = path
                    .iter()
                    .filter_map(|&a| {
                        let i = decode_raw(word(image.bytes_from(a)?)?)?;
                        if !matches!(i.op, Op::Load { size: 8, .. }) || i.rn != SP {
                            return None;
                        }
                        Some((i.imm, spilled_constant(image, preds, a, i.imm)?))
                    })
                    .collect();
                let spilled = (!slots.is_empty())
                    .then(|| {
                        q.starts
                            .iter()
                            .find_map(|&i| resolve_path(image, path.get(i..)?, &[], &slots, admit))
                    })
                    .flatten();
                // Then a table base in a callee-saved register the function
                // also uses for other values (clang's computed-goto
                // dispatch): each address it sets that register to, tried
                // as its value, the table deciding (see the RISC-V
                // `resolve_with_candidates`).
                spilled.or_else(|| {
                    address_candidates(image, q.function)
                        .into_iter()
                        .take(MAX_CANDIDATES)
                        .find_map(|seed| {
                            q.starts.iter().find_map(|&i| {
                                resolve_path(image, path.get(i..)?, &[seed], &[], admit)
                            })
                        })
                })
            },
        )
    }

    fn plt_header_size(&self) -> u64 {
        32
    }
}

/// Interpret `path` (the indirect jump last) with `seeds` preset in
/// registers and `slots` (offset from `sp`, 64-bit value) in the frame, with
/// store-to-load forwarding and then without (see
/// `Machine::without_store_forwarding`), and return the first answer
/// `admit` lets through.
pub(super) fn resolve_path(
    image: &Image<'_>,
    path: &[u64],
    seeds: &[(u16, u64)],
    slots: &[(i64, u64)],
    admit: &dyn Fn(IndirectTarget) -> Option<IndirectTarget>,
) -> Option<IndirectTarget> {
    let mut insns = Vec::with_capacity(path.len());
    for &a in path {
        insns.push((a, decode_raw(word(image.bytes_from(a)?)?)?));
    }
    let ((_, jump), body) = insns.split_last()?;
    if !matches!(jump.op, Op::BranchReg { link: false }) {
        return None;
    }
    crate::arch::linear::interpret_path(image, Some(u16::from(ZR)), admit, |m| {
        let mut st = State { m, cmp: None };
        for &(r, v) in seeds {
            st.m.preset(r, v);
        }
        for &(off, v) in slots {
            let at = st.m.reg(u16::from(SP)).add_const(off as u64);
            st.m.store(at, Val::konst(v));
        }
        for (idx, &(a, i)) in body.iter().enumerate() {
            let next = insns.get(idx.checked_add(1)?).map(|x| x.0);
            st.step(a, &i, next);
        }
        let target = st.m.reg(u16::from(jump.rn));
        Some((st.m, target))
    })
}

/// How an instruction touches the stack frame: `Write(off, len)` stores
/// `len` bytes at `sp + off` (no writeback); `Opaque` writes memory through
/// `sp` where this cannot tell, or changes `sp` itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Frame {
    Untouched,
    Write(i64, i64),
    Opaque,
}

pub(super) fn frame_effect(w: u32) -> Frame {
    let rn = bits(w, 9, 5);
    let v = bits(w, 26, 26) == 1;
    let opc = bits(w, 23, 22);
    let size = bits(w, 31, 30);
    if w & 0x0a00_0000 == 0x0800_0000 {
        // Loads and stores.
        if rn != u32::from(SP) {
            return Frame::Untouched;
        }
        // Single register, unsigned offset / unscaled offset: no writeback.
        let unsigned = w & 0x3b00_0000 == 0x3900_0000;
        let unscaled = w & 0x3b20_0c00 == 0x3800_0000;
        if unsigned || unscaled {
            let store = opc == 0 || (v && opc == 2);
            if !store {
                return Frame::Untouched;
            }
            let len: i64 = if v && opc == 2 { 16 } else { 1 << size };
            let off = if unsigned {
                i64::from(bits(w, 21, 10)) * len
            } else {
                sext(bits(w, 20, 12), 9)
            };
            return Frame::Write(off, len);
        }
        // Pair, signed offset or non-temporal: no writeback.
        if w & 0x3a00_0000 == 0x2800_0000 && matches!(bits(w, 24, 23), 0 | 2) {
            if bits(w, 22, 22) == 1 {
                return Frame::Untouched;
            }
            let len: i64 = match (v, size) {
                (false, 0) | (true, 0) => 4,
                (false, 2) | (true, 1) => 8,
                (true, 2) => 16,
                _ => return Frame::Opaque, // stgp, unallocated
            };
            return Frame::Write(sext(bits(w, 21, 15), 7) * len, 2 * len);
        }
        return Frame::Opaque;
    }
    match decode_raw(w) {
        Some(i) if i.rd == SP || i.writes.contains(&SP) => Frame::Opaque,
        Some(_) => Frame::Untouched,
        None => Frame::Opaque,
    }
}

/// Whether `i` may change integer register `r`.
pub(super) fn writes_reg(i: &A64, r: u8) -> bool {
    let rd = !matches!(
        i.op,
        Op::Store { .. }
            | Op::MemOther
            | Op::CondBranch { .. }
            | Op::Branch { link: false }
            | Op::BranchReg { link: false }
            | Op::Return
            | Op::Trap
    ) && i.rd == r;
    rd || i.writes.contains(&r) || (is_link_flow(i) && (r <= 18 || r == 30))
}

/// The 64-bit constant every store reaching the frame load at `load` stores
/// at `sp + off`, walking back over `preds` (intra-function flow). `None`
/// when some path reaches the entry without such a store, a store there is
/// not a whole 64-bit `str` of an `adrp`(+`add`) or `adr` value, two stores
/// disagree, or something on the way changes `sp` or writes the frame in a
/// way this cannot follow.
pub(super) fn spilled_constant(
    image: &Image<'_>,
    preds: &std::collections::BTreeMap<u64, Vec<u64>>,
    load: u64,
    off: i64,
) -> Option<u64> {
    let mut seen = std::collections::BTreeSet::new();
    let mut work: Vec<u64> = preds.get(&load)?.clone();
    let mut value: Option<u64> = None;
    while let Some(a) = work.pop() {
        if !seen.insert(a) {
            continue;
        }
        if seen.len() > 20_000 {
            return None;
        }
        let w = word(image.bytes_from(a)?)?;
        match frame_effect(w) {
            Frame::Opaque => return None,
            Frame::Write(o, len) if o < off.saturating_add(8) && off < o.saturating_add(len) => {
                let i = decode_raw(w)?;
                if o != off || len != 8 || !matches!(i.op, Op::Store { size: 8 }) {
                    return None;
                }
                let v = constant_before(image, preds, a, i.rd)?;
                if value.is_some_and(|x| x != v) {
                    return None;
                }
                value = Some(v);
                continue;
            }
            _ => {}
        }
        // No predecessor: the entry (or code reached only through a table).
        let ps = preds.get(&a).filter(|p| !p.is_empty())?;
        work.extend(ps.iter().copied());
    }
    value
}

/// The constant in `r` just before `at`, from `adrp r` (optionally then
/// `add r, r, #lo`) or `adr r` on the straight-line code before it.
pub(super) fn constant_before(
    image: &Image<'_>,
    preds: &std::collections::BTreeMap<u64, Vec<u64>>,
    at: u64,
    r: u8,
) -> Option<u64> {
    let mut a = at;
    let mut lo: Option<i64> = None;
    for _ in 0..64 {
        a = match preds.get(&a)?.as_slice() {
            [p] => *p,
            _ => return None,
        };
        let i = decode_raw(word(image.bytes_from(a)?)?)?;
        if !writes_reg(&i, r) {
            continue;
        }
        match i.op {
            Op::AddImm { flags: false } if i.wide && i.rd == r && i.rn == r && lo.is_none() => {
                lo = Some(i.imm);
            }
            Op::Adrp if i.rd == r => {
                let page = (a & !0xfff).wrapping_add(i.imm as u64);
                return Some(page.wrapping_add(lo.unwrap_or(0) as u64));
            }
            Op::Adr if i.rd == r && lo.is_none() => return Some(a.wrapping_add(i.imm as u64)),
            _ => return None,
        }
    }
    None
}

/// x19-x30: preserved across calls (x29/x30 restored by the epilogue).
pub(super) fn is_callee_saved(r: u8) -> bool {
    (19..=30).contains(&r)
}

/// How the word moves `sp`: `add`/`sub sp, sp, #imm`, and the pre- and
/// post-indexed loads and stores (single and pair) based on `sp`, which is
/// how gcc and clang build and tear down frames (`stp x29, x30, [sp,
/// #-32]!` ... `ldp x29, x30, [sp], #32`). Any other write to `sp` (`mov
/// sp, x29`) is unknown.
pub(super) fn stack_effect_of(w: u32) -> StackEffect {
    let rn = bits(w, 9, 5);
    // add/sub (immediate), 64-bit, not setting flags, into sp.
    if w & 0xbf80_0000 == 0x9100_0000 && bits(w, 4, 0) == 31 {
        if rn != 31 {
            return StackEffect::Unknown;
        }
        let imm = i64::from(bits(w, 21, 10)) << (12 * bits(w, 22, 22));
        return StackEffect::Add(if w & 0x4000_0000 != 0 { -imm } else { imm });
    }
    // Load/store pair, post-index (001) or pre-index (011).
    if bits(w, 29, 27) == 0b101 && matches!(bits(w, 25, 23), 0b001 | 0b011) && rn == 31 {
        let scale: i64 = match (bits(w, 26, 26), bits(w, 31, 30)) {
            (0, 0b10) | (1, 0b01) => 8,
            (1, 0b10) => 16,
            _ => 4,
        };
        return StackEffect::Add(sext(bits(w, 21, 15), 7) * scale);
    }
    // Load/store register (immediate), post-index (01) or pre-index (11).
    if bits(w, 29, 27) == 0b111
        && bits(w, 25, 24) == 0
        && bits(w, 21, 21) == 0
        && matches!(bits(w, 11, 10), 0b01 | 0b11)
        && rn == 31
    {
        return StackEffect::Add(sext(bits(w, 20, 12), 9));
    }
    match decode_raw(w) {
        Some(i) if i.rd == SP || i.writes.contains(&SP) => StackEffect::Unknown,
        Some(_) => StackEffect::None,
        None => StackEffect::Unknown,
    }
}

/// The most address constants tried per jump.
const MAX_CANDIDATES: usize = 8;

/// (callee-saved register, address) for every `adrp`+`add` pair in
/// `function` that sets a callee-saved register, each pair once, in the
/// function's order.
fn address_candidates(image: &Image<'_>, function: &[u64]) -> Vec<(u16, u64)> {
    let mut out: Vec<(u16, u64)> = Vec::new();
    let mut prev: Option<(u64, A64)> = None;
    for &a in function {
        let Some(i) = image.bytes_from(a).and_then(word).and_then(decode_raw) else {
            prev = None;
            continue;
        };
        if let Some((pa, p)) = prev
            && pa.wrapping_add(4) == a
            && matches!(p.op, Op::Adrp)
            && p.rd == i.rd
            && matches!(i.op, Op::AddImm { flags: false })
            && i.rn == i.rd
            && i.wide
            && is_callee_saved(i.rd)
        {
            let value = (pa & !0xfff)
                .wrapping_add(p.imm as u64)
                .wrapping_add(i.imm as u64);
            let seed = (u16::from(i.rd), value);
            if !out.contains(&seed) {
                out.push(seed);
            }
        }
        prev = Some((a, i));
    }
    out
}

/// Registers defined exactly once in `function`, by a constant (`adrp`
/// optionally followed at once by `add` to the same register, `adr`,
/// `movz`/`movn`): their value is that constant wherever the definition
/// has run. Epilogue restores from the stack (`ldr`/`ldp` with base `sp`
/// into x19-x30) are not definitions; the caller-saved registers do not
/// qualify when the function calls anything.
pub(super) fn invariant_registers(image: &Image<'_>, function: &[u64]) -> Vec<(u16, u64)> {
    let mut defs = risc::ConstDefs::default();
    let mut prev: Option<(u64, A64)> = None;
    for &a in function {
        let Some(w) = image.bytes_from(a).and_then(word) else {
            prev = None;
            continue;
        };
        let Some(i) = decode_raw(w) else {
            prev = None;
            continue;
        };
        if is_link_flow(&i) {
            defs.calls = true;
        }
        // ldp/ldr/ldr (post-index) with base sp: restores.
        let rn = ((w >> 5) & 31) as u8;
        let pair_load = w & 0x3a40_0000 == 0x2840_0000;
        let restore = rn == 31
            && (pair_load || matches!(i.op, Op::Load { .. } | Op::Other))
            && is_callee_saved(i.rd);
        let pair_of_prev = prev.is_some_and(|(pa, p)| {
            pa.wrapping_add(4) == a
                && matches!(p.op, Op::Adrp)
                && p.rd == i.rd
                && matches!(i.op, Op::AddImm { flags: false })
                && i.rn == i.rd
                && i.wide
        });
        let mut written: Vec<u8> = Vec::new();
        match i.op {
            Op::Store { .. } | Op::MemOther | Op::CondBranch { .. } | Op::Return | Op::Trap => {}
            Op::Branch { link: false } | Op::BranchReg { link: false } => {}
            _ => written.push(i.rd),
        }
        if !restore {
            written.extend(i.writes.iter().copied());
        }
        for r in written {
            if r >= 31 {
                continue;
            }
            if r == i.rd && pair_of_prev {
                defs.add_to(r, i.imm as u64);
                continue;
            }
            if r == i.rd && restore {
                continue;
            }
            let value = match i.op {
                _ if r != i.rd => None,
                Op::Adrp => Some((a & !0xfff).wrapping_add(i.imm as u64)),
                Op::Adr => Some(a.wrapping_add(i.imm as u64)),
                Op::MovWide {
                    inverted,
                    keep: false,
                    shift,
                } => {
                    let f = (i.imm as u64) << shift;
                    let v = if inverted { !f } else { f };
                    Some(if i.wide { v } else { v & 0xffff_ffff })
                }
                _ => None,
            };
            defs.define(r, value);
        }
        prev = Some((a, i));
    }
    defs.invariants(is_callee_saved, None)
}

/// The path interpreter: linear values plus the last comparison.
pub(super) struct State {
    m: Machine,
    /// Operands of the last `cmp`/`subs` (a - b), for the next `b.cond`.
    cmp: Option<(Val, Val)>,
}

pub(super) fn mask32(v: Val, wide: bool) -> Val {
    if wide {
        return v;
    }
    // 32-bit results are zero-extended; keep constants exact, and follow
    // symbolic ones as they are (bounded indices never reach bit 31).
    match v.as_const() {
        Some(c) => Val::konst(c & 0xffff_ffff),
        None => v,
    }
}

impl State {
    fn r(&mut self, r: u8) -> Val {
        self.m.reg(u16::from(r))
    }

    fn set(&mut self, r: u8, v: Val, wide: bool) {
        if r != ZR {
            self.m.set(u16::from(r), mask32(v, wide));
        }
    }

    fn extend(&mut self, v: Val, ext: Extend) -> Val {
        match ext {
            Extend::Zero(8) | Extend::Sign(8) => v,
            Extend::Zero(n) => {
                if let Some(c) = v.as_const() {
                    let bitsz = u32::from(n) * 8;
                    return Val::konst(c & ((1u64 << bitsz) - 1));
                }
                self.m.resign(&v, n, false)
            }
            Extend::Sign(n) => {
                if let Some(c) = v.as_const() {
                    let sh = 64 - u32::from(n) * 8;
                    return Val::konst((((c << sh) as i64) >> sh) as u64);
                }
                self.m.resign(&v, n, true)
            }
        }
    }

    #[allow(clippy::too_many_lines)]
    fn step(&mut self, addr: u64, i: &A64, next: Option<u64>) {
        let imm = i.imm as u64;
        match i.op {
            Op::Adrp => self.set(i.rd, Val::konst((addr & !0xfff).wrapping_add(imm)), true),
            Op::Adr => self.set(i.rd, Val::konst(addr.wrapping_add(imm)), true),
            Op::AddImm { flags } => {
                let a = self.r(i.rn);
                if flags {
                    // cmp a, #n is subs zr, a, #n: imm holds -n.
                    self.cmp = Some((a, Val::konst(imm.wrapping_neg())));
                }
                self.set(i.rd, a.add_const(imm), i.wide);
            }
            Op::AddReg { sub, flags, lsl } => {
                let a = self.r(i.rn);
                let b = self.r(i.rm);
                let sh = (i.imm & 63) as u32;
                let b = if lsl {
                    b.scale(1u64 << sh)
                } else if sh == 0 {
                    b
                } else {
                    self.m.fresh()
                };
                if flags && sub {
                    self.cmp = Some((a, b));
                }
                let v = if sub { a.sub(&b) } else { a.add(&b) };
                self.set(i.rd, v, i.wide);
            }
            Op::AddExt { sub, flags, ext } => {
                let a = self.r(i.rn);
                let b = self.r(i.rm);
                let b = self.extend(b, ext).scale(1u64 << (i.imm & 7));
                if flags && sub {
                    self.cmp = Some((a, b));
                }
                let v = if sub { a.sub(&b) } else { a.add(&b) };
                self.set(i.rd, v, i.wide);
            }
            Op::MovReg => {
                let v = self.r(i.rm);
                self.set(i.rd, v, i.wide);
            }
            Op::AndImm => {
                let a = self.r(i.rn);
                let v = self.m.masked(&a, imm);
                self.set(i.rd, v, i.wide);
            }
            Op::MovWide {
                inverted,
                keep,
                shift,
            } => {
                let field = imm << shift;
                let v = if keep {
                    match self.r(i.rd).as_const() {
                        Some(c) => Val::konst((c & !(0xffffu64 << shift)) | field),
                        None => self.m.fresh(),
                    }
                } else if inverted {
                    Val::konst(!field)
                } else {
                    Val::konst(field)
                };
                self.set(i.rd, v, i.wide);
            }
            Op::Bitfield { signed } => {
                let v = self.bitfield(i, signed);
                self.set(i.rd, v, i.wide);
            }
            Op::Load { size, signed } => {
                let a = self.r(i.rn).add_const(imm);
                let v = self.m.load(a, size, signed);
                self.set(i.rd, v, i.wide);
            }
            Op::LoadReg { size, signed, ext } => {
                let b = self.r(i.rn);
                let x = self.r(i.rm);
                let x = self.extend(x, ext).scale(1u64 << (i.imm & 7));
                let v = self.m.load(b.add(&x), size, signed);
                self.set(i.rd, v, i.wide);
            }
            Op::LoadLiteral { size, signed } => {
                let v = self
                    .m
                    .load(Val::konst(addr.wrapping_add(imm)), size, signed);
                self.set(i.rd, v, i.wide);
            }
            Op::Store { .. } => {
                let a = self.r(i.rn).add_const(imm);
                let v = self.r(i.rd);
                self.m.store(a, v);
            }
            Op::CondBranch { cond, flags: true } => {
                self.guard(addr, i, cond, next);
            }
            Op::Branch { link: true } | Op::BranchReg { link: true } => {
                for r in (0..=18).chain([30]) {
                    self.m.clobber(r);
                }
                self.m.forget_memory();
                self.cmp = None;
            }
            Op::Other => {
                if i.rd != ZR {
                    self.m.clobber(u16::from(i.rd));
                }
                for r in i.writes {
                    if r != ZR {
                        self.m.clobber(u16::from(r));
                    }
                }
            }
            _ => {}
        }
    }

    /// `ubfm`/`sbfm`: the shifts and extensions compilers use on switch
    /// indices.
    fn bitfield(&mut self, i: &A64, signed: bool) -> Val {
        let a = self.r(i.rn);
        let immr = (i.imm & 63) as u32;
        let imms = u32::from(i.rm);
        let width = if i.wide { 64 } else { 32 };
        if imms.checked_add(1) == Some(immr) && !signed {
            // lsl #(width - immr)
            return a.scale(1u64 << ((width - immr) % 64));
        }
        if imms == width - 1 {
            // lsr / asr #immr
            return a.exact_shr(immr).unwrap_or_else(|| self.m.fresh());
        }
        if immr == 0 {
            // uxtb/uxth/ubfx #0 (zero-extend), sxtb/sxth/sxtw (sign-extend)
            let bytes = (imms + 1) / 8;
            if (imms + 1) % 8 == 0 && matches!(bytes, 1 | 2 | 4) {
                let n = bytes as u8;
                return if signed {
                    self.extend(a, Extend::Sign(n))
                } else {
                    self.extend(a, Extend::Zero(n))
                };
            }
            if !signed && imms < 63 {
                return self.m.masked(&a, (1u64 << (imms + 1)) - 1);
            }
        }
        self.m.fresh()
    }

    fn guard(&mut self, addr: u64, i: &A64, cond: u8, next: Option<u64>) {
        let Some((a, b)) = self.cmp else {
            return;
        };
        let target = addr.wrapping_add(i.imm as u64);
        let fall = addr.wrapping_add(4);
        let taken = match next {
            Some(n) if n == target && n != fall => true,
            Some(n) if n == fall => false,
            _ => return,
        };
        // Conditions come in pairs whose low bit negates them.
        let holds = if taken { cond } else { cond ^ 1 };
        match holds {
            0b1001 => self.m.learn_unsigned(&a, &b, false), // ls: a <= b
            0b0011 => self.m.learn_unsigned(&a, &b, true),  // lo: a < b
            0b1000 => self.m.learn_unsigned(&b, &a, true),  // hi: b < a
            0b0010 => self.m.learn_unsigned(&b, &a, false), // hs: b <= a
            _ => {}
        }
    }
}
