//! Linear symbolic values for the jump-table interpreters of the
//! fixed-width instruction sets (RISC-V, AArch64).
//!
//! A value is `c + Σ coeff·atom` with wrapping 64-bit arithmetic. Atoms are
//! register values at the start of the path, fresh unknowns, and loads from
//! a symbolic address. A guard (`bltu`, `b.hi`, ...) on the path bounds one
//! atom; a jump target of the form `c + k·ext(load(c1 + s·atom))` with a
//! bounded atom is a jump table. The x86 interpreter (`x86.rs`) predates this
//! module and keeps its own copy tied to iced's operand model.

use std::collections::HashMap;

use super::JumpTable;
use crate::image::Image;
use crate::limits;

/// An unknown quantity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Atom {
    /// A register's value where the path starts.
    Reg(u16),
    /// A result nothing more is known about.
    Fresh(u32),
    /// `of & mask` (the same atom each time the same value is masked the
    /// same way: gcc zero-extends a switch index once for the check and
    /// once for the table access).
    Masked {
        /// The value masked.
        of: Val,
        /// The mask.
        mask: u64,
    },
    /// `size` bytes loaded from `addr`, zero- or sign-extended.
    Load {
        /// Symbolic address.
        addr: Val,
        /// Bytes read.
        size: u8,
        /// Sign-extended rather than zero-extended.
        signed: bool,
    },
}

/// `c + Σ coeff·atom`, terms sorted by atom id, no zero coefficients.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct Val {
    pub c: u64,
    pub terms: Vec<(u32, u64)>,
}

impl Val {
    pub fn konst(c: u64) -> Self {
        Val {
            c,
            terms: Vec::new(),
        }
    }

    pub fn atom(id: u32) -> Self {
        Val {
            c: 0,
            terms: vec![(id, 1)],
        }
    }

    pub fn as_const(&self) -> Option<u64> {
        self.terms.is_empty().then_some(self.c)
    }

    pub fn add(&self, other: &Val) -> Val {
        let mut terms = self.terms.clone();
        for &(a, k) in &other.terms {
            match terms.binary_search_by_key(&a, |t| t.0) {
                Ok(i) => {
                    if let Some(t) = terms.get_mut(i) {
                        t.1 = t.1.wrapping_add(k);
                    }
                }
                Err(i) => terms.insert(i, (a, k)),
            }
        }
        terms.retain(|&(_, k)| k != 0);
        Val {
            c: self.c.wrapping_add(other.c),
            terms,
        }
    }

    pub fn add_const(&self, k: u64) -> Val {
        Val {
            c: self.c.wrapping_add(k),
            terms: self.terms.clone(),
        }
    }

    pub fn sub(&self, other: &Val) -> Val {
        self.add(&other.scale(u64::MAX))
    }

    pub fn scale(&self, k: u64) -> Val {
        Val {
            c: self.c.wrapping_mul(k),
            terms: self
                .terms
                .iter()
                .map(|&(a, c)| (a, c.wrapping_mul(k)))
                .filter(|&(_, c)| c != 0)
                .collect(),
        }
    }

    /// Exact division by `2^sh` of every coefficient, read as signed
    /// numbers: what `(x << m) >> sh` computes for the small, bounded
    /// indices the caller cares about. `None` when some part is not a
    /// multiple of `2^sh`.
    pub fn exact_shr(&self, sh: u32) -> Option<Val> {
        if sh == 0 {
            return Some(self.clone());
        }
        if sh >= 64 {
            return None;
        }
        let div = |v: u64| -> Option<u64> {
            let s = v as i64;
            (s.trailing_zeros() >= sh || s == 0).then(|| (s >> sh) as u64)
        };
        Some(Val {
            c: div(self.c)?,
            terms: self
                .terms
                .iter()
                .map(|&(a, k)| Some((a, div(k)?)))
                .collect::<Option<Vec<_>>>()?,
        })
    }

    /// `(atom, coeff, c)` when the value is `c + coeff·atom`.
    pub fn single(&self) -> Option<(u32, u64, u64)> {
        match self.terms.as_slice() {
            [(a, k)] => Some((*a, *k, self.c)),
            _ => None,
        }
    }
}

/// Learnt from a guard: `atom + offset < count` (unsigned).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bound {
    pub offset: u64,
    pub count: u64,
    /// Known only from the width of a mask or zero-extension (`andi 0xff`,
    /// `uxtb`), not from a comparison.
    pub from_mask: bool,
}

/// Register file and memory of one path, over linear values.
#[derive(Debug, Default)]
pub(crate) struct Machine {
    atoms: Vec<Atom>,
    interned: HashMap<Atom, u32>,
    regs: HashMap<u16, Val>,
    mem: HashMap<Val, Val>,
    fresh: u32,
    bounds: HashMap<u32, Bound>,
    /// Atoms compared (unsigned) against a value the path does not pin
    /// down: their real bound is unknown, and a mask bound is not the
    /// switch's size (it would read past the table).
    guarded_unknown: std::collections::HashSet<u32>,
    /// Registers that always read as zero (x0, xzr).
    zero_reg: Option<u16>,
    /// Loads see earlier stores on the path. Off, every load is its own
    /// atom: a path that runs through a loop's entry may store a constant
    /// the other way into the loop does not (`sw zero, (s8)` before the
    /// loop, the switch index reloaded from `(s8)` inside it).
    no_forwarding: bool,
}

impl Machine {
    pub fn new(zero_reg: Option<u16>) -> Self {
        Machine {
            zero_reg,
            ..Machine::default()
        }
    }

    /// A machine whose loads never see stores made on the path.
    pub fn without_store_forwarding(zero_reg: Option<u16>) -> Self {
        Machine {
            zero_reg,
            no_forwarding: true,
            ..Machine::default()
        }
    }

    fn intern(&mut self, atom: Atom) -> u32 {
        if let Some(&id) = self.interned.get(&atom) {
            return id;
        }
        let id = u32::try_from(self.atoms.len()).unwrap_or(u32::MAX);
        self.atoms.push(atom.clone());
        self.interned.insert(atom, id);
        id
    }

    pub fn fresh(&mut self) -> Val {
        self.fresh = self.fresh.wrapping_add(1);
        let id = self.intern(Atom::Fresh(self.fresh));
        Val::atom(id)
    }

    pub fn reg(&mut self, r: u16) -> Val {
        if Some(r) == self.zero_reg {
            return Val::konst(0);
        }
        if let Some(v) = self.regs.get(&r) {
            return v.clone();
        }
        let id = self.intern(Atom::Reg(r));
        let v = Val::atom(id);
        self.regs.insert(r, v.clone());
        v
    }

    pub fn set(&mut self, r: u16, v: Val) {
        if Some(r) != self.zero_reg {
            self.regs.insert(r, v);
        }
    }

    pub fn clobber(&mut self, r: u16) {
        let f = self.fresh();
        self.set(r, f);
    }

    /// A load of `size` bytes from `addr`: the value stored there earlier on
    /// the path, else a load atom (the same atom for the same address, so a
    /// reload after a bound check is still bounded).
    pub fn load(&mut self, addr: Val, size: u8, signed: bool) -> Val {
        if let Some(v) = self.mem.get(&addr) {
            return v.clone();
        }
        let id = self.intern(Atom::Load { addr, size, signed });
        Val::atom(id)
    }

    pub fn store(&mut self, addr: Val, v: Val) {
        if self.no_forwarding {
            return;
        }
        // A store to an unknown address may alias anything known.
        if addr.as_const().is_none() && addr.terms.len() > 1 {
            self.mem.clear();
        }
        self.mem.insert(addr, v);
    }

    /// Forget memory (after a call).
    pub fn forget_memory(&mut self) {
        self.mem.clear();
    }

    /// The same value with its load re-read sign- or zero-extended: `sxtb`
    /// after `ldrb`.
    pub fn resign(&mut self, v: &Val, size: u8, signed: bool) -> Val {
        if let Some((a, 1, 0)) = v.single()
            && let Some(Atom::Load { addr, size: s, .. }) = self.atoms.get(a as usize).cloned()
            && s <= size
        {
            let id = self.intern(Atom::Load {
                addr,
                size: s,
                signed,
            });
            return Val::atom(id);
        }
        v.clone()
    }

    /// Record that `v < count` (unsigned) holds on the path. Keeps the
    /// tighter bound when one is already known.
    pub fn bound(&mut self, v: &Val, count: u64) {
        self.bound_from(v, count, false);
    }

    fn bound_from(&mut self, v: &Val, count: u64, from_mask: bool) {
        if count == 0 || count > limits::MAX_JUMP_TABLE_ENTRIES {
            return;
        }
        let Some((atom, 1, offset)) = v.single() else {
            return;
        };
        let b = Bound {
            offset,
            count,
            from_mask,
        };
        self.bound_atom(atom, b);
        // A load bounded below 2^(bits-1) has its sign bit clear, so the
        // zero- and sign-extended readings of it are the same number: gcc
        // checks `lw` and indexes with a reloaded `lwu` of the same slot.
        if offset == 0
            && let Some(Atom::Load { addr, size, signed }) = self.atoms.get(atom as usize).cloned()
            && u32::from(size) < 8
            && count <= 1u64 << (u32::from(size) * 8 - 1)
        {
            let twin = self.intern(Atom::Load {
                addr,
                size,
                signed: !signed,
            });
            self.bound_atom(twin, b);
        }
    }

    fn bound_atom(&mut self, atom: u32, b: Bound) {
        // A comparison's bound replaces a mask's even when it is larger
        // (it cannot be: the comparison is the switch's own range check).
        let keep = self.bounds.get(&atom).is_some_and(|old| {
            old.offset == b.offset && old.count <= b.count && !(old.from_mask && !b.from_mask)
        });
        if !keep {
            self.bounds.insert(atom, b);
        }
    }

    /// `v & mask`: a constant when `v` is one, else an atom bounded by
    /// `mask + 1` when `mask` is `2^k - 1` (`andi`, `and` with an
    /// immediate, `uxtb`, `zext.b`).
    pub fn masked(&mut self, v: &Val, mask: u64) -> Val {
        if let Some(c) = v.as_const() {
            return Val::konst(c & mask);
        }
        let id = self.intern(Atom::Masked {
            of: v.clone(),
            mask,
        });
        let f = Val::atom(id);
        if mask < limits::MAX_JUMP_TABLE_ENTRIES && mask & mask.wrapping_add(1) == 0 {
            self.bound_from(&f, mask.wrapping_add(1), true);
        }
        f
    }

    /// Learn from an unsigned comparison `a < b` (`strict`) or `a <= b`
    /// known to hold on the path, when one side is constant.
    pub fn learn_unsigned(&mut self, a: &Val, b: &Val, strict: bool) {
        if let Some(c) = b.as_const() {
            let count = if strict { Some(c) } else { c.checked_add(1) };
            if let Some(n) = count {
                self.bound(a, n);
            }
        } else if let Some((atom, 1, _)) = a.single() {
            self.guarded_unknown.insert(atom);
        }
    }

    /// The fixed address when `target` is exactly one load of `size` bytes
    /// from a constant address (a jump through a GOT slot).
    pub fn single_load_of_constant(&self, target: &Val, size: u8) -> Option<u64> {
        let (atom, 1, 0) = target.single()? else {
            return None;
        };
        match self.atoms.get(atom as usize)? {
            Atom::Load { addr, size: s, .. } if *s == size => addr.as_const(),
            _ => None,
        }
    }

    /// Match `target = c + k·ext(load(c1 + s·idx))` with `idx` bounded and
    /// `s` the entry size: a jump table in read-only memory. The flag says
    /// whether the bound is only the index's width (a mask, no comparison):
    /// such a table may run past its end, and is reported as
    /// [`super::IndirectTarget::NarrowTable`] for the caller to check.
    pub fn match_table(&self, image: &Image<'_>, target: &Val) -> Option<(JumpTable, bool)> {
        let (load_atom, k, rest) = target.single()?;
        let Atom::Load { addr, size, signed } = self.atoms.get(load_atom as usize)? else {
            return None;
        };
        let (index, scale, c1) = addr.single()?;
        if u64::from(*size) != scale || !matches!(size, 1 | 2 | 4 | 8) {
            return None;
        }
        // Entries are either absolute addresses (`k` 1, nothing added) or
        // offsets from a base scaled by 1 or 4 (the instruction size).
        if !(matches!(k, 1 | 2 | 4) && (rest != 0 || (k == 1 && *size >= 4))) {
            return None;
        }
        let bound = self.bounds.get(&index)?;
        if bound.from_mask && self.guarded_unknown.contains(&index) {
            // The switch checks its range against a value set outside the
            // path (a register loaded before a loop): the mask's width is
            // not the table's length. A longer path may find the value.
            return None;
        }
        let table = c1.wrapping_sub(scale.wrapping_mul(bound.offset));
        if image
            .sections
            .iter()
            .find(|s| s.contains(table))
            .is_some_and(|s| s.perms.write)
        {
            // A writable table could change at run time; not a switch.
            return None;
        }
        let mut targets = Vec::with_capacity(usize::try_from(bound.count).ok()?);
        for i in 0..bound.count {
            let slot = table.checked_add(i.checked_mul(scale)?)?;
            let raw = image.read_uint(slot, *size)?;
            let entry = if *signed {
                let sh = 64u32.checked_sub(u32::from(*size).checked_mul(8)?)?;
                (((raw << sh) as i64) >> sh) as u64
            } else {
                raw
            };
            targets.push(rest.wrapping_add(k.wrapping_mul(entry)));
        }
        Some((
            JumpTable {
                table,
                entry_size: *size,
                targets,
            },
            bound.from_mask,
        ))
    }

    /// Give register `r` the constant `v` before the path runs.
    pub fn preset(&mut self, r: u16, v: u64) {
        self.set(r, Val::konst(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_shift_undoes_a_left_shift_of_a_negative_offset() {
        // (atom - 11) << 32, then >> 30: 4·atom - 44 (gcc's zero-extension
        // of a 32-bit switch index on RV64).
        let v = Val::atom(0).add_const(11u64.wrapping_neg()).scale(1 << 32);
        let r = v.exact_shr(30).unwrap();
        assert_eq!(r.terms, vec![(0, 4)]);
        assert_eq!(r.c, 44u64.wrapping_neg());
        assert!(Val::atom(0).exact_shr(1).is_none());
    }

    #[test]
    fn tighter_bound_wins() {
        let mut m = Machine::new(None);
        let a = m.reg(5);
        m.bound(&a, 256);
        m.bound(&a, 74);
        m.bound(&a, 100);
        let (id, _, _) = a.single().unwrap();
        assert_eq!(m.bounds.get(&id).map(|b| b.count), Some(74));
    }
}

/// Loop-free paths that end at `jump`, walking back through `preds`
/// (instruction -> the instructions that can run just before it) depth
/// first, lowest predecessor address first (a loop's preheader usually
/// sits below its back edge). Each path has at most `max_len`
/// instructions and is returned in execution order; at most `max_paths`
/// paths, and at most `max_steps` nodes visited in all.
pub(crate) fn paths_to(
    jump: u64,
    preds: &std::collections::BTreeMap<u64, Vec<u64>>,
    max_len: usize,
    max_paths: usize,
    max_steps: usize,
) -> Vec<Vec<u64>> {
    let mut out: Vec<Vec<u64>> = Vec::new();
    let mut steps = 0usize;
    // Explicit stack of (node, index of the next predecessor to try).
    let mut path: Vec<u64> = vec![jump];
    let mut cursor: Vec<usize> = vec![0];
    while let (Some(&node), Some(next)) = (path.last(), cursor.last_mut()) {
        if out.len() >= max_paths || steps >= max_steps {
            break;
        }
        steps = steps.saturating_add(1);
        let ps: &[u64] = preds.get(&node).map_or(&[], Vec::as_slice);
        let candidate = if path.len() < max_len {
            ps.iter()
                .skip(*next)
                .position(|p| !path.contains(p))
                .map(|k| k.saturating_add(*next))
        } else {
            None
        };
        match candidate {
            Some(k) => {
                *next = k.saturating_add(1);
                if let Some(&p) = ps.get(k) {
                    path.push(p);
                    cursor.push(0);
                }
            }
            None => {
                // A maximal path (no unvisited predecessor, or long enough)
                // when this node was reached without trying any other.
                if *next == 0 {
                    let mut p = path.clone();
                    p.reverse();
                    out.push(p);
                }
                path.pop();
                cursor.pop();
            }
        }
    }
    out
}

#[cfg(test)]
mod path_tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn walks_out_of_a_loop_through_its_preheader() {
        // 10 -> 20 (loop head) ; 20 -> 30 -> 40 (jump) ; 30 -> 20 (back edge)
        // The jump's block is entered from the loop head 30, which is
        // entered from 20, which is entered from 10 (preheader) and 30.
        let mut preds: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        preds.insert(40, vec![30]);
        preds.insert(30, vec![20]);
        preds.insert(20, vec![10, 30]);
        preds.insert(10, vec![5]);
        let paths = paths_to(40, &preds, 64, 8, 1000);
        assert_eq!(paths.first(), Some(&vec![5, 10, 20, 30, 40]));
        assert!(paths.iter().all(|p| p.last() == Some(&40)));
    }

    #[test]
    fn bounded_in_length_count_and_work() {
        let mut preds: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for a in 1..200u64 {
            preds.insert(a, vec![a - 1, a + 1000]);
            preds.insert(a + 1000, vec![a - 1]);
        }
        let paths = paths_to(199, &preds, 10, 5, 10_000);
        assert!(paths.len() <= 5 && paths.iter().all(|p| p.len() <= 10));
    }
}

/// Intra-function predecessors of every instruction in `function` (sorted
/// addresses of the decoded instructions): straight-line flow and direct
/// jumps, not jump tables (those are what is being resolved).
pub(crate) fn flow_preds(
    dec: &dyn super::Decoder,
    image: &Image<'_>,
    function: &[u64],
) -> std::collections::BTreeMap<u64, Vec<u64>> {
    use super::Flow;
    let mut preds: std::collections::BTreeMap<u64, Vec<u64>> = std::collections::BTreeMap::new();
    let inside = |a: u64| function.binary_search(&a).is_ok();
    for &a in function {
        let Some(i) = image.bytes_from(a).and_then(|b| dec.decode(b, a, None)) else {
            continue;
        };
        if i.flow.falls_through() && inside(i.end()) {
            preds.entry(i.end()).or_default().push(a);
        }
        if let Flow::Jump(t) | Flow::CondJump(t) = i.flow
            && inside(t)
        {
            preds.entry(t).or_default().push(a);
        }
    }
    for v in preds.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    preds
}
