//! Linear symbolic values for the jump-table interpreters of the
//! fixed-width instruction sets (RISC-V, AArch64).
//!
//! A value is `c + Σ coeff·atom` with wrapping 64-bit arithmetic. Atoms are
//! register values at the start of the path, fresh unknowns, and loads from
//! a symbolic address. A guard (`bltu`, `b.hi`, ...) on the path bounds one
//! atom; a jump target of the form `c + k·ext(load(c1 + s·atom))` with a
//! bounded atom is a jump table. The x86 interpreter (`x86.rs`) predates this
//! module and keeps its own copy tied to iced's operand model.

use super::JumpTable;
use crate::image::Image;
use crate::limits;

/// An unknown quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Terms a value keeps; a sum of more unknowns than this is opaque (no
/// switch computes one).
const MAX_TERMS: usize = 4;

/// `c + Σ coeff·atom`, terms sorted by atom id, no zero coefficients. Fixed
/// size and `Copy`: the interpreters run many short paths, and allocating
/// per value dominated their cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Val {
    pub c: u64,
    n: u8,
    terms: [(u32, u64); MAX_TERMS],
    /// Too many terms to keep: an unknown nothing can be learnt about.
    opaque: bool,
}

impl Val {
    pub fn konst(c: u64) -> Self {
        Val {
            c,
            ..Val::default()
        }
    }

    pub fn atom(id: u32) -> Self {
        let mut v = Val::default();
        v.push(id, 1);
        v
    }

    /// The terms, sorted by atom id.
    pub fn terms(&self) -> &[(u32, u64)] {
        self.terms.get(..usize::from(self.n)).unwrap_or(&[])
    }

    fn push(&mut self, a: u32, k: u64) {
        if k == 0 {
            return;
        }
        match self.terms.get_mut(usize::from(self.n)) {
            Some(slot) => {
                *slot = (a, k);
                self.n = self.n.saturating_add(1);
            }
            None => self.opaque = true,
        }
    }

    pub fn as_const(&self) -> Option<u64> {
        (self.n == 0 && !self.opaque).then_some(self.c)
    }

    pub fn is_opaque(&self) -> bool {
        self.opaque
    }

    pub fn add(&self, other: &Val) -> Val {
        let mut out = Val {
            c: self.c.wrapping_add(other.c),
            opaque: self.opaque || other.opaque,
            ..Val::default()
        };
        // Merge two sorted term lists.
        let (mut i, mut j) = (0usize, 0usize);
        let (x, y) = (self.terms(), other.terms());
        loop {
            match (x.get(i), y.get(j)) {
                (Some(&(a, k)), Some(&(b, l))) if a == b => {
                    out.push(a, k.wrapping_add(l));
                    i += 1;
                    j += 1;
                }
                (Some(&(a, k)), Some(&(b, _))) if a < b => {
                    out.push(a, k);
                    i += 1;
                }
                (_, Some(&(b, l))) => {
                    out.push(b, l);
                    j += 1;
                }
                (Some(&(a, k)), None) => {
                    out.push(a, k);
                    i += 1;
                }
                (None, None) => break,
            }
        }
        out
    }

    pub fn add_const(&self, k: u64) -> Val {
        Val {
            c: self.c.wrapping_add(k),
            ..*self
        }
    }

    pub fn sub(&self, other: &Val) -> Val {
        self.add(&other.scale(u64::MAX))
    }

    pub fn scale(&self, k: u64) -> Val {
        let mut out = Val {
            c: self.c.wrapping_mul(k),
            opaque: self.opaque,
            ..Val::default()
        };
        for &(a, c) in self.terms() {
            out.push(a, c.wrapping_mul(k));
        }
        out
    }

    /// Exact division by `2^sh` of every coefficient, read as signed
    /// numbers: what `(x << m) >> sh` computes for the small, bounded
    /// indices the caller cares about. `None` when some part is not a
    /// multiple of `2^sh`.
    pub fn exact_shr(&self, sh: u32) -> Option<Val> {
        if sh == 0 {
            return Some(*self);
        }
        if sh >= 64 || self.opaque {
            return None;
        }
        let div = |v: u64| -> Option<u64> {
            let s = v as i64;
            (s.trailing_zeros() >= sh).then_some((s >> sh) as u64)
        };
        let mut out = Val::konst(div(self.c)?);
        for &(a, k) in self.terms() {
            out.push(a, div(k)?);
        }
        Some(out)
    }

    /// `(atom, coeff, c)` when the value is `c + coeff·atom`.
    pub fn single(&self) -> Option<(u32, u64, u64)> {
        match (self.terms(), self.opaque) {
            ([(a, k)], false) => Some((*a, *k, self.c)),
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

/// Register file and memory of one path, over linear values. Small linear
/// tables throughout: a path has at most a few dozen atoms.
#[derive(Debug)]
pub(crate) struct Machine {
    atoms: Vec<Atom>,
    regs: [Option<Val>; 64],
    mem: Vec<(Val, Val)>,
    fresh: u32,
    bounds: Vec<(u32, Bound)>,
    /// Atoms compared (unsigned) against a value the path does not pin
    /// down: their real bound is unknown, and a mask bound is not the
    /// switch's size (it would read past the table).
    guarded_unknown: Vec<u32>,
    /// Registers that always read as zero (x0, xzr).
    zero_reg: Option<u16>,
    /// Loads see earlier stores on the path. Off, every load is its own
    /// atom: a path that runs through a loop's entry may store a constant
    /// the other way into the loop does not (`sw zero, (s8)` before the
    /// loop, the switch index reloaded from `(s8)` inside it).
    no_forwarding: bool,
    /// Some load returned a value stored on the path.
    pub forwarded: bool,
}

impl Machine {
    pub fn new(zero_reg: Option<u16>) -> Self {
        Machine {
            atoms: Vec::with_capacity(32),
            regs: [None; 64],
            mem: Vec::new(),
            fresh: 0,
            bounds: Vec::new(),
            guarded_unknown: Vec::new(),
            zero_reg,
            no_forwarding: false,
            forwarded: false,
        }
    }

    /// A machine whose loads never see stores made on the path.
    pub fn without_store_forwarding(zero_reg: Option<u16>) -> Self {
        Machine {
            no_forwarding: true,
            ..Machine::new(zero_reg)
        }
    }

    fn intern(&mut self, atom: Atom) -> u32 {
        if let Some(i) = self.atoms.iter().position(|a| *a == atom) {
            return u32::try_from(i).unwrap_or(u32::MAX);
        }
        let id = u32::try_from(self.atoms.len()).unwrap_or(u32::MAX);
        self.atoms.push(atom);
        id
    }

    fn atom_at(&self, id: u32) -> Option<Atom> {
        self.atoms.get(usize::try_from(id).ok()?).copied()
    }

    fn bound_of(&self, atom: u32) -> Option<Bound> {
        self.bounds
            .iter()
            .find(|(a, _)| *a == atom)
            .map(|(_, b)| *b)
    }

    pub fn fresh(&mut self) -> Val {
        // Fresh atoms are never equal to one another: no need to search.
        self.fresh = self.fresh.wrapping_add(1);
        let id = u32::try_from(self.atoms.len()).unwrap_or(u32::MAX);
        self.atoms.push(Atom::Fresh(self.fresh));
        Val::atom(id)
    }

    pub fn reg(&mut self, r: u16) -> Val {
        if Some(r) == self.zero_reg {
            return Val::konst(0);
        }
        let slot = usize::from(r);
        if let Some(Some(v)) = self.regs.get(slot) {
            return *v;
        }
        let id = self.intern(Atom::Reg(r));
        let v = Val::atom(id);
        if let Some(s) = self.regs.get_mut(slot) {
            *s = Some(v);
        }
        v
    }

    pub fn set(&mut self, r: u16, v: Val) {
        if Some(r) != self.zero_reg
            && let Some(s) = self.regs.get_mut(usize::from(r))
        {
            *s = Some(v);
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
        if addr.is_opaque() {
            return self.fresh();
        }
        if let Some((_, v)) = self.mem.iter().rev().find(|(a, _)| *a == addr) {
            self.forwarded = true;
            return *v;
        }
        let id = self.intern(Atom::Load { addr, size, signed });
        Val::atom(id)
    }

    pub fn store(&mut self, addr: Val, v: Val) {
        if self.no_forwarding {
            return;
        }
        // A store to an unknown address may alias anything known.
        if addr.is_opaque() || (addr.as_const().is_none() && addr.terms().len() > 1) {
            self.mem.clear();
            if addr.is_opaque() {
                return;
            }
        }
        self.mem.retain(|(a, _)| *a != addr);
        if self.mem.len() < 256 {
            self.mem.push((addr, v));
        }
    }

    /// Forget memory (after a call).
    pub fn forget_memory(&mut self) {
        self.mem.clear();
    }

    /// The same value with its load re-read sign- or zero-extended: `sxtb`
    /// after `ldrb`.
    pub fn resign(&mut self, v: &Val, size: u8, signed: bool) -> Val {
        if let Some((a, 1, 0)) = v.single()
            && let Some(Atom::Load { addr, size: s, .. }) = self.atom_at(a)
            && s <= size
        {
            let id = self.intern(Atom::Load {
                addr,
                size: s,
                signed,
            });
            return Val::atom(id);
        }
        *v
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
            && let Some(Atom::Load { addr, size, signed }) = self.atom_at(atom)
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
        match self.bounds.iter_mut().find(|(a, _)| *a == atom) {
            Some((_, old)) => {
                let keep = old.offset == b.offset
                    && old.count <= b.count
                    && (b.from_mask || !old.from_mask);
                if !keep {
                    *old = b;
                }
            }
            None => self.bounds.push((atom, b)),
        }
    }

    /// `v & mask`: a constant when `v` is one, else an atom bounded by
    /// `mask + 1` when `mask` is `2^k - 1` (`andi`, `and` with an
    /// immediate, `uxtb`, `zext.b`).
    pub fn masked(&mut self, v: &Val, mask: u64) -> Val {
        if let Some(c) = v.as_const() {
            return Val::konst(c & mask);
        }
        if v.is_opaque() {
            return self.fresh();
        }
        let id = self.intern(Atom::Masked { of: *v, mask });
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
        } else if let Some((atom, 1, _)) = a.single()
            && !self.guarded_unknown.contains(&atom)
        {
            self.guarded_unknown.push(atom);
        }
    }

    /// The fixed address when `target` is exactly one load of `size` bytes
    /// from a constant address (a jump through a GOT slot).
    pub fn single_load_of_constant(&self, target: &Val, size: u8) -> Option<u64> {
        let (atom, 1, 0) = target.single()? else {
            return None;
        };
        match self.atom_at(atom)? {
            Atom::Load { addr, size: s, .. } if s == size => addr.as_const(),
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
        let Atom::Load { addr, size, signed } = self.atom_at(load_atom)? else {
            return None;
        };
        let (index, scale, c1) = addr.single()?;
        if u64::from(size) != scale || !matches!(size, 1 | 2 | 4 | 8) {
            return None;
        }
        // Entries are either absolute addresses (`k` 1, nothing added) or
        // offsets from a base scaled by 1 or 4 (the instruction size).
        if !(matches!(k, 1 | 2 | 4) && (rest != 0 || (k == 1 && size >= 4))) {
            return None;
        }
        let bound = match self.bound_of(index) {
            Some(b) => b,
            None => self.width_bound(index, scale, c1, rest)?,
        };
        if bound.from_mask && self.guarded_unknown.contains(&index) {
            // The switch checks its range against a value set outside the
            // path (a register loaded before a loop): the mask's width is
            // not the table's length. A longer path may find the value.
            return None;
        }
        let table = c1.wrapping_sub(scale.wrapping_mul(bound.offset));
        if image.writable_at_run_time(table) {
            // A writable table could change at run time; not a switch.
            // (`.data.rel.ro` is writable in the section table, but the
            // loader makes it read-only once relocated: `PT_GNU_RELRO`.)
            return None;
        }
        // Absolute entries of a position-independent image are written by
        // the loader (a `RELATIVE` relocation each); the file holds zeros.
        let absolute =
            rest == 0 && k == 1 && usize::from(size) == usize::from(image.arch.pointer_size());
        let relocated = absolute && image.kind != crate::image::ImageKind::Executable;
        let mut targets = Vec::with_capacity(usize::try_from(bound.count).ok()?);
        for i in 0..bound.count {
            let slot = table.checked_add(i.checked_mul(scale)?)?;
            let raw = if relocated {
                image.relocation_at(slot)
            } else {
                image.read_uint(slot, size)
            };
            let raw = match raw {
                Some(r) => r,
                // A table sized by its mask ends where its entries do.
                None if bound.from_mask && !targets.is_empty() => break,
                None => return None,
            };
            let entry = if signed {
                let sh = 64u32.checked_sub(u32::from(size).checked_mul(8)?)?;
                (((raw << sh) as i64) >> sh) as u64
            } else {
                raw
            };
            targets.push(rest.wrapping_add(k.wrapping_mul(entry)));
        }
        Some((
            JumpTable {
                table,
                entry_size: size,
                targets,
            },
            bound.from_mask,
        ))
    }

    /// A bound for an unguarded index that is a zero-extended byte or
    /// halfword load, for a table of offsets from its own start (`T +
    /// sext(lw(T + 4·(b - 5)))`: clang drops the range check of a switch
    /// over an enum it knows is in range, gcc keeps it). The index runs
    /// from where the table starts (`rest`, the base added to every entry)
    /// to the load's width; the entries are believed only as far as they
    /// are code of the function (the caller cuts the table there).
    fn width_bound(&self, index: u32, scale: u64, c1: u64, rest: u64) -> Option<Bound> {
        let Atom::Load {
            size,
            signed: false,
            ..
        } = self.atom_at(index)?
        else {
            return None;
        };
        if !matches!(size, 1 | 2) || scale == 0 {
            return None;
        }
        let width = 1u64 << (u32::from(size) * 8);
        if rest == 0 {
            // Absolute entries (`ld(T + 8·b)`) indexed by a byte: the byte is
            // the entry's number from the table's start, as in the
            // computed-goto dispatch of an interpreter that fetches its
            // opcode with `lbu` and has no range check (QuickJS's
            // `dispatch_table[*pc++]`). Not a halfword: 65,536 entries read
            // for every path tried would let a hostile binary's jumps cost
            // billions of reads, and no compiler was seen to emit it.
            return (size == 1).then_some(Bound {
                offset: 0,
                count: width,
                from_mask: true,
            });
        }
        let delta = rest.wrapping_sub(c1);
        if !delta.is_multiple_of(scale) {
            return None;
        }
        let first = delta / scale;
        if first >= width {
            return None;
        }
        Some(Bound {
            offset: first.wrapping_neg(),
            count: (width - first).min(limits::MAX_JUMP_TABLE_ENTRIES),
            from_mask: true,
        })
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
        assert_eq!(r.terms(), &[(0, 4)]);
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
        assert_eq!(m.bound_of(id).map(|b| b.count), Some(74));
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
    dec: &dyn super::Decode,
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

/// Interpret one path to an indirect jump: first with store-to-load
/// forwarding, then (only when some load was forwarded) without it (see
/// [`Machine::without_store_forwarding`]). `run` presets the machine, steps
/// through the path and returns the jump's target value; the first answer
/// `admit` lets through wins: a load from one constant slot (a GOT-style jump) or
/// a jump table.
pub(crate) fn interpret_path(
    image: &Image<'_>,
    zero_reg: Option<u16>,
    admit: &dyn Fn(super::IndirectTarget) -> Option<super::IndirectTarget>,
    run: impl Fn(Machine) -> Option<(Machine, Val)>,
) -> Option<super::IndirectTarget> {
    use super::IndirectTarget;
    for forwarding in [true, false] {
        let fresh = if forwarding {
            Machine::new(zero_reg)
        } else {
            Machine::without_store_forwarding(zero_reg)
        };
        let (m, target) = run(fresh)?;
        let answer = if let Some(slot) = m.single_load_of_constant(&target, 8) {
            Some(IndirectTarget::Slot(slot))
        } else {
            m.match_table(image, &target).map(|(t, narrow)| {
                if narrow {
                    IndirectTarget::NarrowTable(t)
                } else {
                    IndirectTarget::Table(t)
                }
            })
        };
        if let Some(a) = answer.and_then(admit) {
            return Some(a);
        }
        if !m.forwarded {
            // Nothing was forwarded: the second pass would see the same.
            break;
        }
    }
    None
}

/// The first two tries of a fixed-width ISA's `resolve_indirect_in`: the
/// builder's path from each of `starts`, then, if that fails, the same
/// with the function's loop-invariant registers preset. A switch in a loop
/// whose table base was set once before the loop is constant on every
/// path, though no single path through the loop's joins reaches its
/// definition.
pub(crate) fn resolve_with_invariants(
    path: &[u64],
    starts: &[usize],
    invariants: impl FnOnce() -> Vec<(u16, u64)>,
    resolve: impl Fn(&[u64], &[(u16, u64)]) -> Option<super::IndirectTarget>,
) -> Option<super::IndirectTarget> {
    let attempt =
        |seeds: &[(u16, u64)]| starts.iter().find_map(|&i| resolve(path.get(i..)?, seeds));
    attempt(&[]).or_else(|| {
        let inv = invariants();
        if inv.is_empty() { None } else { attempt(&inv) }
    })
}

/// Other paths to `jump` through the joins: the builder's path takes the
/// straight-line predecessor at each join, which in a rotated loop is the
/// back edge, never reaching the preheader where the table base was set.
/// Each path is tried from each block start (an instruction with other than
/// one straight-line predecessor), longest suffix last.
pub(crate) fn resolve_on_join_paths(
    jump: u64,
    preds: &std::collections::BTreeMap<u64, Vec<u64>>,
    resolve: impl Fn(&[u64]) -> Option<super::IndirectTarget>,
) -> Option<super::IndirectTarget> {
    paths_to(jump, preds, 64, 8, 4096).iter().find_map(|p| {
        let starts = (0..p.len())
            .rev()
            .filter(|&i| i == 0 || p.get(i).and_then(|a| preds.get(a)).map_or(0, Vec::len) != 1);
        starts.into_iter().find_map(|i| resolve(p.get(i..)?))
    })
}
