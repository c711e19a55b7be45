//! What the two fixed-width RISC instruction sets (RISC-V and AArch64)
//! share: field extraction from raw instruction words, the register
//! constant handed from one instruction to the next, the per-thread
//! capstone handle that renders, the bookkeeping of registers a function
//! defines once by a constant, and the order in which indirect jumps are
//! resolved.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::thread::LocalKey;

use capstone::Capstone;

use super::{Decode, IndirectQuery, IndirectTarget, Insn, RegConst, linear};

/// Bits `hi..=lo` of `w`, shifted down.
pub(super) fn bits(w: u32, hi: u32, lo: u32) -> u32 {
    (w >> lo) & ((1u32 << (hi - lo + 1)) - 1)
}

/// The low `width` bits of `v`, sign-extended.
pub(super) fn sext(v: u32, width: u32) -> i64 {
    let sh = 64 - width;
    ((u64::from(v) << sh) as i64) >> sh
}

/// The constant `prev` leaves in a register, split into (register, value,
/// loaded, carried).
pub(super) fn known(prev: Option<&Insn>) -> Option<(u8, u64, bool, bool)> {
    let k = prev?.konst?;
    let reg = u8::try_from(k.reg).ok()?;
    Some((reg, k.value, k.loaded, k.carried))
}

/// `reg` holds `value` (or, `loaded`, the word stored at it), set by this
/// instruction.
pub(super) fn konst(reg: u8, value: u64, loaded: bool) -> RegConst {
    RegConst {
        reg: u16::from(reg),
        value,
        loaded,
        carried: false,
    }
}

/// `reg` still holds what an earlier instruction set: carried over one that
/// does not write it.
fn carried(reg: u8, value: u64, loaded: bool) -> RegConst {
    RegConst {
        reg: u16::from(reg),
        value,
        loaded,
        carried: true,
    }
}

/// The constant a register holds after an instruction: the one the
/// instruction set (`own`; `Some(None)` when it set none worth tracking),
/// else `before` carried over it unless `clobbers` says the instruction
/// writes that register.
pub(super) fn after(
    own: Option<Option<RegConst>>,
    before: Option<(u8, u64, bool, bool)>,
    clobbers: impl Fn(u8) -> bool,
) -> Option<RegConst> {
    match own {
        Some(c) => c,
        None => before
            .filter(|&(kr, ..)| !clobbers(kr))
            .map(|(kr, v, loaded, _)| carried(kr, v, loaded)),
    }
}

/// A per-thread capstone handle, built on first use.
pub(super) type CapstoneSlot = RefCell<Option<Capstone>>;

/// Run `f` with this thread's handle in `slot`, built by `build` the first
/// time (capstone handles are not `Sync`; rendering is rare enough that one
/// per thread is plenty).
pub(super) fn with_capstone<T>(
    slot: &'static LocalKey<CapstoneSlot>,
    build: fn() -> Option<Capstone>,
    f: impl FnOnce(&Capstone) -> Option<T>,
) -> Option<T> {
    slot.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = build();
        }
        f(slot.as_ref()?)
    })
}

/// One instruction as capstone prints it (`mnemonic operands`), for the
/// decoders that render with capstone (RISC-V, AArch64).
pub(super) fn capstone_text(cs: &capstone::Capstone, raw: &[u8], addr: u64) -> Option<String> {
    let insns = cs.disasm_count(raw, addr, 1).ok()?;
    let insn = insns.iter().next()?;
    let m = insn.mnemonic().unwrap_or("");
    let ops = insn.op_str().unwrap_or("");
    Some(if ops.is_empty() {
        m.to_string()
    } else {
        format!("{m} {ops}")
    })
}

/// The definitions of each register over one function, for
/// `invariant_registers`: the value each definition set, when constant. A
/// register whose every definition sets the same constant holds it wherever
/// one of them has run (gcc materialises a computed-goto table's address
/// again on a second path into the dispatch loop).
#[derive(Debug, Default)]
pub(super) struct ConstDefs {
    defs: BTreeMap<u8, Vec<Option<u64>>>,
    /// The function calls something (caller-saved registers do not keep a
    /// value over it).
    pub(super) calls: bool,
}

/// More definitions of one register than this and it is not an invariant:
/// keeps the lists short in a function that reuses a register everywhere.
const MAX_DEFS: usize = 16;

impl ConstDefs {
    /// One more definition of `r`, setting `value` when it is a constant.
    pub(super) fn define(&mut self, r: u8, value: Option<u64>) {
        let e = self.defs.entry(r).or_default();
        if e.len() <= MAX_DEFS {
            e.push(value);
        }
    }

    /// The second half of an address pair (`auipc`/`lui`/`adrp` then an add
    /// to the same register): `imm` is added to the constant; not a new
    /// definition.
    pub(super) fn add_to(&mut self, r: u8, imm: u64) {
        let e = self.defs.entry(r).or_default();
        match e.last_mut() {
            Some(last) => *last = last.map(|v| v.wrapping_add(imm)),
            None => e.push(None),
        }
    }

    /// How many times `r` is defined (pair completions not counted), up to
    /// one more than [`MAX_DEFS`].
    pub(super) fn count(&self, r: u8) -> usize {
        self.defs.get(&r).map_or(0, Vec::len)
    }

    /// The registers whose every definition sets one constant, except
    /// `never`; when the function calls, only the `callee_saved` ones.
    pub(super) fn invariants(
        &self,
        callee_saved: fn(u8) -> bool,
        never: Option<u8>,
    ) -> Vec<(u16, u64)> {
        self.defs
            .iter()
            .filter(|&(&r, _)| Some(r) != never && (!self.calls || callee_saved(r)))
            .filter_map(|(&r, values)| {
                if values.len() > MAX_DEFS {
                    return None;
                }
                let first = (*values.first()?)?;
                values
                    .iter()
                    .all(|&v| v == Some(first))
                    .then_some((u16::from(r), first))
            })
            .collect()
    }
}

/// How both fixed-width instruction sets resolve the indirect jump `q`
/// asks about ([`super::ResolveIndirect::resolve_indirect_in`]): `resolve`
/// (a path, the registers preset at its start) on the builder's path from
/// each start; then with the function's `invariants` preset (a switch in a
/// loop whose table base and bound were set once before the loop, see
/// [`linear::resolve_with_invariants`]); then on other paths through the
/// joins; last, `last`, given the function's predecessors.
pub(super) fn resolve_in(
    dec: &dyn Decode,
    q: &IndirectQuery<'_>,
    invariants: impl FnOnce() -> Vec<(u16, u64)>,
    resolve: impl Fn(&[u64], &[(u16, u64)]) -> Option<IndirectTarget>,
    last: impl FnOnce(&BTreeMap<u64, Vec<u64>>) -> Option<IndirectTarget>,
) -> Option<IndirectTarget> {
    linear::resolve_with_invariants(q.path, q.starts, invariants, &resolve).or_else(|| {
        let preds = linear::flow_preds(dec, q.image, q.function);
        q.path
            .last()
            .and_then(|&jump| linear::resolve_on_join_paths(jump, &preds, |p| resolve(p, &[])))
            .or_else(|| last(&preds))
    })
}
