//! Indirect-jump resolution on RISC-V: the path interpreter over linear
//! values and the registers a function defines once by a constant.

use super::*;
use crate::arch::{IndirectQuery, ResolveIndirect};
use std::collections::BTreeMap;

impl ResolveIndirect for RiscvDecoder {
    fn resolve_indirect(&self, image: &Image<'_>, path: &[u64]) -> Option<IndirectTarget> {
        resolve_path(image, path, &[], &[], &Some)
    }

    fn resolve_indirect_in(&self, q: &IndirectQuery<'_>) -> Option<IndirectTarget> {
        let (image, admit) = (q.image, q.admit);
        // One pass over the function, made only when a path alone does not
        // resolve the jump, serves the invariants and the candidates.
        let facts = std::cell::OnceCell::new();
        let scan = || facts.get_or_init(|| FunctionScan::of(image, q.function));
        risc::resolve_in(
            self,
            q,
            || scan().defs.invariants(is_callee_saved, Some(SP)),
            |p, seeds| resolve_path(image, p, seeds, &[], admit),
            |_| resolve_with_candidates(image, q, &scan().candidates),
        )
    }

    fn plt_header_size(&self) -> u64 {
        // psABI: the resolver stub (PLT0) is 8 instructions; each import
        // stub after it is 4.
        32
    }
}

/// Interpret `path` (the indirect jump last) with `seeds` preset, with
/// store-to-load forwarding and then without (see
/// `Machine::without_store_forwarding`), and return the first answer
/// `admit` lets through. A doubleword load from one of `slots` (base
/// register, offset, value) reads that value.
pub(super) fn resolve_path(
    image: &Image<'_>,
    path: &[u64],
    seeds: &[(u16, u64)],
    slots: &[(u8, i64, u64)],
    admit: &dyn Fn(IndirectTarget) -> Option<IndirectTarget>,
) -> Option<IndirectTarget> {
    let mut insns = Vec::with_capacity(path.len());
    for &a in path {
        insns.push((a, decode_raw(image.bytes_from(a)?)?));
    }
    let ((_, jump), body) = insns.split_last()?;
    if jump.kind != Kind::Jalr {
        return None;
    }
    crate::arch::linear::interpret_path(image, Some(0), admit, |mut m| {
        for &(r, v) in seeds {
            m.preset(r, v);
        }
        for (idx, &(a, i)) in body.iter().enumerate() {
            let next = insns.get(idx.checked_add(1)?).map(|x| x.0);
            let slot = match i.kind {
                Kind::Load { size: 8, .. } if i.rd != 0 => slots
                    .iter()
                    .find(|&&(b, off, _)| b == i.rs1 && off == i.imm)
                    .map(|&(_, _, v)| v),
                _ => None,
            };
            match slot {
                Some(v) => m.set(u16::from(i.rd), Val::konst(v)),
                None => step(&mut m, a, &i, next),
            }
        }
        let target = m.reg(u16::from(jump.rs1)).add_const(jump.imm as u64);
        Some((m, target))
    })
}

/// The most address constants [`resolve_with_candidates`] tries per jump.
const MAX_CANDIDATES: usize = 8;

/// The last try for an indirect jump no path resolves: a table base held
/// in a callee-saved register that the function also uses for other
/// values. clang keeps a computed-goto dispatch table's address in such a
/// register (or spills it to a frame slot and reloads it before the
/// dispatch), so no register is defined once and the dispatch inside a
/// handler has no path back to the definition. Each address the function
/// sets that register to (`auipc` then `addi`) is tried as its value at
/// the start of the path, and a frame slot whose only stores are of that
/// register reads the same address; `admit` decides whether the table
/// there is one (its entries code in this function), so the guess seeds
/// the question and the table answers it.
fn resolve_with_candidates(
    image: &Image<'_>,
    q: &IndirectQuery<'_>,
    c: &Candidates,
) -> Option<IndirectTarget> {
    c.regs.iter().take(MAX_CANDIDATES).find_map(|&(r, value)| {
        let slots: Vec<(u8, i64, u64)> = c
            .slots
            .iter()
            .filter(|&&(_, _, src)| src == r)
            .map(|&(b, off, _)| (b, off, value))
            .collect();
        let seeds = [(u16::from(r), value)];
        q.starts
            .iter()
            .find_map(|&i| resolve_path(image, q.path.get(i..)?, &seeds, &slots, q.admit))
    })
}

/// The address constants of a function, for [`resolve_with_candidates`].
#[derive(Debug, Default)]
struct Candidates {
    /// (callee-saved register, an address constant it is set to), in the
    /// function's order, each pair once.
    regs: Vec<(u8, u64)>,
    /// (base register, offset, source register): a doubleword frame slot
    /// whose every store in the function is of that one callee-saved
    /// register, off a base register other than `sp` defined once.
    slots: Vec<(u8, i64, u8)>,
}

/// Facts that hold on every path of a function, from one pass over its
/// instructions.
struct FunctionScan {
    /// The definitions of each register. A register defined only by one
    /// constant (`li`, `lui`, `auipc`, each optionally followed at once by
    /// `addi` to the same register) holds it wherever a definition has run.
    /// Epilogue restores (`ld sN, off(sp)`) are not definitions; the
    /// caller-saved registers do not qualify when the function calls
    /// anything.
    defs: risc::ConstDefs,
    candidates: Candidates,
}

impl FunctionScan {
    fn of(image: &Image<'_>, function: &[u64]) -> Self {
        let mut defs = risc::ConstDefs::default();
        let mut regs: Vec<(u8, u64)> = Vec::new();
        // (base, offset) -> the one register stored there, or None once a
        // store of another register or of another width was seen.
        let mut stores: BTreeMap<(u8, i64), Option<u8>> = BTreeMap::new();
        let mut prev: Option<(u64, Rv)> = None;
        for &a in function {
            let Some(i) = image.bytes_from(a).and_then(decode_raw) else {
                prev = None;
                continue;
            };
            let rd = i.rd;
            if let Kind::Store { size } = i.kind {
                let e = stores.entry((i.rs1, i.imm)).or_insert(Some(i.rs2));
                if size != 8 || *e != Some(i.rs2) {
                    *e = None;
                }
            }
            let pair = prev.filter(|&(pa, p)| {
                pa.wrapping_add(u64::from(p.len)) == a
                    && matches!(p.kind, Kind::Lui | Kind::Auipc)
                    && p.rd == rd
                    && i.kind == Kind::OpImm(Alu::Add)
                    && i.rs1 == rd
            });
            let restore = matches!(i.kind, Kind::Load { .. }) && i.rs1 == SP && is_callee_saved(rd);
            if matches!(i.kind, Kind::Jal | Kind::Jalr) && is_link(rd) {
                defs.calls = true;
            }
            let writes = !matches!(
                i.kind,
                Kind::Store { .. } | Kind::FpMem | Kind::Branch(_) | Kind::Trap | Kind::TrapReturn
            ) && rd != 0;
            if writes && !restore {
                match pair {
                    Some((pa, p)) => {
                        defs.add_to(rd, i.imm as u64);
                        if p.kind == Kind::Auipc && is_callee_saved(rd) {
                            let value = pa.wrapping_add(p.imm as u64).wrapping_add(i.imm as u64);
                            if !regs.contains(&(rd, value)) {
                                regs.push((rd, value));
                            }
                        }
                    }
                    None => {
                        let value = match i.kind {
                            Kind::Lui => Some(i.imm as u64),
                            Kind::Auipc => Some(a.wrapping_add(i.imm as u64)),
                            Kind::OpImm(Alu::Add) if i.rs1 == 0 => Some(i.imm as u64),
                            _ => None,
                        };
                        defs.define(rd, value);
                    }
                }
            }
            prev = Some((a, i));
        }
        let slots = stores
            .into_iter()
            .filter_map(|((b, off), src)| {
                let src = src?;
                let once = defs.count(b) == 1;
                (b != SP && b != 0 && once && regs.iter().any(|&(r, _)| r == src))
                    .then_some((b, off, src))
            })
            .collect();
        FunctionScan {
            defs,
            candidates: Candidates { regs, slots },
        }
    }
}

/// s0-s11 (x8, x9, x18-x27): preserved across calls.
pub(super) fn is_callee_saved(r: u8) -> bool {
    matches!(r, 8 | 9 | 18..=27)
}

/// Caller-saved integer registers (ra, t0-t6, a0-a7): a call clobbers them.
pub(super) const CALLER_SAVED: [u16; 16] =
    [1, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17, 28, 29, 30, 31];

/// One instruction of the path to an indirect jump, over linear values.
/// `next` is the address executed after it on the path (which way a branch
/// went).
pub(super) fn step(m: &mut Machine, addr: u64, i: &Rv, next: Option<u64>) {
    let rd = u16::from(i.rd);
    let rs1 = u16::from(i.rs1);
    let rs2 = u16::from(i.rs2);
    let imm = i.imm as u64;
    match i.kind {
        Kind::Lui => m.set(rd, Val::konst(imm)),
        Kind::Auipc => m.set(rd, Val::konst(addr.wrapping_add(imm))),
        Kind::OpImm(alu) => {
            let a = m.reg(rs1);
            let v = alu_imm(m, alu, &a, imm, i.word);
            m.set(rd, v);
        }
        Kind::Op(alu) => {
            let a = m.reg(rs1);
            let b = m.reg(rs2);
            let v = match alu {
                Alu::Add => a.add(&b),
                Alu::Sub => a.sub(&b),
                _ => match b.as_const() {
                    Some(c) => alu_imm(m, alu, &a, c, i.word),
                    None => m.fresh(),
                },
            };
            m.set(rd, v);
        }
        Kind::Load { size, signed } => {
            let a = m.reg(rs1).add_const(imm);
            let v = m.load(a, size, signed);
            m.set(rd, v);
        }
        Kind::Store { .. } => {
            let a = m.reg(rs1).add_const(imm);
            let v = m.reg(rs2);
            m.store(a, v);
        }
        Kind::Branch(cond) => {
            let target = addr.wrapping_add(imm);
            let fall = addr.wrapping_add(u64::from(i.len));
            let taken = match next {
                Some(n) if n == target && n != fall => true,
                Some(n) if n == fall => false,
                _ => return,
            };
            let a = m.reg(rs1);
            let b = m.reg(rs2);
            // On the path: `a < b` or `a >= b` (i.e. `b <= a`), unsigned.
            match (cond, taken) {
                (Cond::Ltu, true) | (Cond::Geu, false) => m.learn_unsigned(&a, &b, true),
                (Cond::Ltu, false) | (Cond::Geu, true) => m.learn_unsigned(&b, &a, false),
                _ => {}
            }
        }
        Kind::Jal | Kind::Jalr => {
            for r in CALLER_SAVED {
                m.clobber(r);
            }
            m.forget_memory();
        }
        Kind::Other => m.clobber(rd),
        Kind::FpMem | Kind::Trap | Kind::TrapReturn => {}
    }
}

pub(super) fn alu_imm(m: &mut Machine, alu: Alu, a: &Val, imm: u64, word: bool) -> Val {
    let sh = (imm & if word { 31 } else { 63 }) as u32;
    match alu {
        Alu::Add => a.add_const(imm),
        Alu::Sub => a.add_const(imm.wrapping_neg()),
        Alu::Sll => a.scale(1u64 << sh),
        // `slli 32; srli 30` is gcc's zero-extension of a 32-bit index
        // times 4; exact on the bounded values that matter.
        Alu::Srl | Alu::Sra => a.exact_shr(sh).unwrap_or_else(|| m.fresh()),
        Alu::And => m.masked(a, imm),
        Alu::Or => match a.as_const() {
            Some(c) => Val::konst(c | imm),
            None => m.fresh(),
        },
        Alu::Other => m.fresh(),
    }
}
