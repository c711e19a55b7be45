//! Indirect flow on x86 ([`ResolveIndirect`]): jump tables through a
//! symbolic interpreter over linear values, and the registers a function
//! defines once by a constant.

use super::*;
use crate::arch::{IndirectQuery, ResolveIndirect};

impl ResolveIndirect for X86Decoder {
    fn resolve_indirect(&self, image: &Image<'_>, path: &[u64]) -> Option<IndirectTarget> {
        self.resolve_seeded(image, path, &[])
    }

    fn resolve_indirect_in(&self, q: &IndirectQuery<'_>) -> Option<IndirectTarget> {
        let (image, path, starts) = (q.image, q.path, q.starts);
        let (function, admit) = (q.function, q.admit);
        // Decoded once: every attempt interprets a suffix of the same path.
        let mut decoded = Vec::with_capacity(path.len());
        for &a in path {
            let ins = image.bytes_from(a).and_then(|b| self.decode_iced(b, a))?;
            decoded.push(ins);
        }
        let mut interp = Interp::new(self, image);
        let mut attempt = |seeds: &[(Register, u64)]| {
            starts.iter().find_map(|&i| {
                decoded
                    .get(i..)
                    .and_then(|p| self.resolve_decoded(&mut interp, image, p, seeds))
                    .and_then(admit)
            })
        };
        attempt(&[]).or_else(|| {
            // A switch inside a loop whose table base was loaded once before
            // the loop: the base register is constant on every path, which
            // no single path shows without also pinning the index.
            let key = (function.first().copied().unwrap_or(0), function.len());
            let cached = self
                .invariants
                .lock()
                .ok()
                .and_then(|m| m.get(&key).cloned());
            let invariants = match cached {
                Some(v) => v,
                None => {
                    let v = self.invariant_registers(image, function);
                    if let Ok(mut m) = self.invariants.lock() {
                        m.insert(key, v.clone());
                    }
                    v
                }
            };
            if invariants.is_empty() {
                None
            } else {
                attempt(&invariants)
            }
        })
    }
}

impl X86Decoder {
    /// Interpret `path` (the indirect jump last) with `seeds` as the values
    /// of registers at its start.
    pub(super) fn resolve_seeded(
        &self,
        image: &Image<'_>,
        path: &[u64],
        seeds: &[(Register, u64)],
    ) -> Option<IndirectTarget> {
        let mut insns = Vec::with_capacity(path.len());
        for &a in path {
            let bytes = image.bytes_from(a)?;
            insns.push(self.decode_iced(bytes, a)?);
        }
        self.resolve_decoded(&mut Interp::new(self, image), image, &insns, seeds)
    }

    /// [`Self::resolve_seeded`] over instructions already decoded, in
    /// `interp` (reset first: one interpreter serves every suffix of a path,
    /// so its tables are allocated once).
    pub(super) fn resolve_decoded<'d>(
        &'d self,
        interp: &mut Interp<'d>,
        image: &'d Image<'d>,
        insns: &[Instruction],
        seeds: &[(Register, u64)],
    ) -> Option<IndirectTarget> {
        interp.reset();
        for &(r, v) in seeds {
            interp.regs.insert(r, Val::konst(v));
        }
        let (jump, body) = insns.split_last()?;
        for (i, ins) in body.iter().enumerate() {
            let next = insns.get(i.checked_add(1)?).map(Instruction::ip);
            interp.step(ins, next);
        }
        let target = match jump.op0_kind() {
            OpKind::Register => interp.reg(jump.op0_register()),
            OpKind::Memory => {
                let addr = interp.address(jump);
                let size = if self.bitness == 32 { 4 } else { 8 };
                interp.load(addr, size, false)
            }
            _ => return None,
        };
        if let Some(slot) = interp.single_load_of_constant(&target) {
            return Some(IndirectTarget::Slot(slot));
        }
        let narrow = interp.narrow_index(&target);
        interp.match_table(image, &target, self.bitness).map(|t| {
            if narrow {
                IndirectTarget::NarrowTable(t)
            } else {
                IndirectTarget::Table(t)
            }
        })
    }

    /// Registers written exactly once in `function`, by a constant
    /// (`lea r, [rip+x]`, `mov r, imm`): their value is that constant
    /// wherever the definition has run. Restoring pops in epilogues do not
    /// count as writes; the stack pointer never qualifies.
    pub(super) fn invariant_registers(
        &self,
        image: &Image<'_>,
        function: &[u64],
    ) -> Vec<(Register, u64)> {
        let mut writes: BTreeMap<Register, (u32, Option<u64>)> = BTreeMap::new();
        let mut info = InstructionInfoFactory::new();
        for &a in function {
            let Some(ins) = image.bytes_from(a).and_then(|b| self.decode_iced(b, a)) else {
                return Vec::new();
            };
            if ins.mnemonic() == Mnemonic::Pop {
                continue;
            }
            let konst = match ins.mnemonic() {
                Mnemonic::Lea if ins.is_ip_rel_memory_operand() => {
                    Some(ins.ip_rel_memory_address())
                }
                Mnemonic::Mov if ins.op0_kind() == OpKind::Register => {
                    immediate_operand(&ins).map(|v| self.mask(v))
                }
                _ => None,
            };
            for u in info.info(&ins).used_registers() {
                let written = matches!(
                    u.access(),
                    OpAccess::Write
                        | OpAccess::CondWrite
                        | OpAccess::ReadWrite
                        | OpAccess::ReadCondWrite
                );
                if written && u.register().is_gpr() {
                    let e = writes
                        .entry(u.register().full_register())
                        .or_insert((0, None));
                    e.0 = e.0.saturating_add(1);
                    e.1 = konst;
                }
            }
        }
        writes
            .into_iter()
            .filter(|(r, (n, k))| {
                *n == 1 && k.is_some() && !matches!(r, Register::RSP | Register::ESP)
            })
            .filter_map(|(r, (_, k))| Some((r, k?)))
            .collect()
    }
}

// The symbolic interpreter over linear values.

/// The interpreter's maps: small keys, looked up (never iterated, so the
/// hash cannot change a result) thousands of times per jump.
type FastMap<K, V> = crate::fasthash::FastMap<K, V>;

/// An unknown quantity: an initial register value, a fresh result, or a
/// load from a symbolic address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Atom {
    Sym(u32),
    Load { addr: Val, size: u8, signed: bool },
}

/// `c + Σ coeff·atom`, wrapping arithmetic, terms sorted by atom id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
struct Val {
    c: u64,
    terms: Vec<(u32, u64)>,
}

impl Val {
    fn konst(c: u64) -> Self {
        Val {
            c,
            terms: Vec::new(),
        }
    }

    fn atom(id: u32) -> Self {
        Val {
            c: 0,
            terms: vec![(id, 1)],
        }
    }

    fn as_const(&self) -> Option<u64> {
        self.terms.is_empty().then_some(self.c)
    }

    fn add(&self, other: &Val) -> Val {
        // Both term lists are sorted by atom: merge them, summing the
        // coefficients of a shared atom and dropping those that cancel.
        let mut terms = Vec::with_capacity(self.terms.len().saturating_add(other.terms.len()));
        let (mut a, mut b) = (self.terms.iter().peekable(), other.terms.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&(x, j)), Some(&&(y, k))) if x == y => {
                    a.next();
                    b.next();
                    (x, j.wrapping_add(k))
                }
                (Some(&&(x, j)), Some(&&(y, _))) if x < y => {
                    a.next();
                    (x, j)
                }
                (_, Some(&&(y, k))) => {
                    b.next();
                    (y, k)
                }
                (Some(&&(x, j)), None) => {
                    a.next();
                    (x, j)
                }
                (None, None) => break,
            };
            if next.1 != 0 {
                terms.push(next);
            }
        }
        Val {
            c: self.c.wrapping_add(other.c),
            terms,
        }
    }

    fn scale(&self, k: u64) -> Val {
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

    /// `(atom, coeff, c)` when the value is `c + coeff·atom`.
    fn single(&self) -> Option<(u32, u64, u64)> {
        match self.terms.as_slice() {
            [(a, k)] => Some((*a, *k, self.c)),
            _ => None,
        }
    }
}

/// Upper bound learnt from a guard: `atom + offset < count` (unsigned).
#[derive(Debug, Clone, Copy)]
struct Bound {
    offset: u64,
    count: u64,
    /// Only the index's width bounds it (no guard seen).
    narrow: bool,
}

impl Bound {
    /// What a guard (or a mask) says: `atom + offset < count`.
    fn guard(offset: u64, count: u64) -> Self {
        Bound {
            offset,
            count,
            narrow: false,
        }
    }

    /// What a zero-extended byte says with no guard: under 256.
    fn byte() -> Self {
        Bound {
            offset: 0,
            count: 256,
            narrow: true,
        }
    }
}

pub(super) struct Interp<'d> {
    dec: &'d X86Decoder,
    image: &'d Image<'d>,
    atoms: Vec<Atom>,
    interned: FastMap<Atom, u32>,
    regs: FastMap<Register, Val>,
    mem: FastMap<Val, Val>,
    fresh: u32,
    last_cmp: Option<(Val, u64)>,
    bounds: FastMap<u32, Bound>,
    info: InstructionInfoFactory,
}

impl<'d> Interp<'d> {
    pub(super) fn new(dec: &'d X86Decoder, image: &'d Image<'d>) -> Self {
        Interp {
            dec,
            image,
            atoms: Vec::new(),
            interned: FastMap::default(),
            regs: FastMap::default(),
            mem: FastMap::default(),
            fresh: 0,
            last_cmp: None,
            bounds: FastMap::default(),
            info: InstructionInfoFactory::new(),
        }
    }

    /// Forget everything interpreted: the state of a new interpreter, with
    /// the tables' memory kept.
    fn reset(&mut self) {
        self.atoms.clear();
        self.interned.clear();
        self.regs.clear();
        self.mem.clear();
        self.fresh = 0;
        self.last_cmp = None;
        self.bounds.clear();
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

    fn fresh(&mut self) -> Val {
        self.fresh = self.fresh.wrapping_add(1);
        // Fresh symbols live above the register-initial ones.
        let id = self.intern(Atom::Sym(0x1_0000u32.wrapping_add(self.fresh)));
        Val::atom(id)
    }

    fn reg(&mut self, r: Register) -> Val {
        let full = r.full_register();
        if let Some(v) = self.regs.get(&full) {
            return v.clone();
        }
        if full == Register::RBX
            && self.dec.bitness == 32
            && let Some(g) = self.dec.got_base
        {
            return Val::konst(g);
        }
        let id = self.intern(Atom::Sym(full as u32));
        let v = Val::atom(id);
        self.regs.insert(full, v.clone());
        v
    }

    fn set(&mut self, r: Register, v: Val) {
        let v = if self.dec.bitness == 32 || r.size() == 4 {
            // 32-bit results are zero-extended; keep constants exact.
            match v.as_const() {
                Some(c) => Val::konst(c & 0xffff_ffff),
                None => v,
            }
        } else {
            v
        };
        self.regs.insert(r.full_register(), v);
    }

    fn address(&mut self, ins: &Instruction) -> Val {
        if ins.is_ip_rel_memory_operand() {
            return Val::konst(ins.ip_rel_memory_address());
        }
        if ins.memory_segment() == Register::FS || ins.memory_segment() == Register::GS {
            return self.fresh();
        }
        let mut v = Val::konst(ins.memory_displacement64());
        if ins.memory_base() != Register::None {
            let b = self.reg(ins.memory_base());
            v = v.add(&b);
        }
        if ins.memory_index() != Register::None {
            let i = self.reg(ins.memory_index());
            v = v.add(&i.scale(u64::from(ins.memory_index_scale())));
        }
        v
    }

    fn load(&mut self, addr: Val, size: u8, signed: bool) -> Val {
        if let Some(v) = self.mem.get(&addr) {
            return v.clone();
        }
        let id = self.intern(Atom::Load { addr, size, signed });
        Val::atom(id)
    }

    /// The value of operand `i` (register, immediate or memory).
    fn operand(&mut self, ins: &Instruction, i: u32) -> Val {
        match ins.op_kind(i) {
            OpKind::Register => self.reg(ins.op_register(i)),
            OpKind::Memory => {
                let a = self.address(ins);
                let size = u8::try_from(ins.memory_size().size()).unwrap_or(8);
                self.load(a, size, false)
            }
            OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate64
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64 => Val::konst(ins.try_immediate(i).unwrap_or(0)),
            _ => self.fresh(),
        }
    }

    fn write_dest(&mut self, ins: &Instruction, v: Val) {
        match ins.op0_kind() {
            OpKind::Register => self.set(ins.op0_register(), v),
            OpKind::Memory => {
                let a = self.address(ins);
                self.mem.insert(a, v);
            }
            _ => {}
        }
    }

    fn clobber(&mut self, ins: &Instruction) {
        let written: Vec<Register> = self
            .info
            .info(ins)
            .used_registers()
            .iter()
            .filter(|u| {
                matches!(
                    u.access(),
                    OpAccess::Write
                        | OpAccess::CondWrite
                        | OpAccess::ReadWrite
                        | OpAccess::ReadCondWrite
                )
            })
            .map(|u| u.register())
            .collect();
        for r in written {
            if r.is_gpr() {
                let f = self.fresh();
                self.regs.insert(r.full_register(), f);
            }
        }
        if ins.op0_kind() == OpKind::Memory {
            self.mem.clear();
        }
    }

    fn step(&mut self, ins: &Instruction, next: Option<u64>) {
        let mut guard_after: Option<(Val, u64)> = None;
        let m = ins.mnemonic();
        match m {
            Mnemonic::Mov if ins.op_count() == 2 => {
                let v = self.operand(ins, 1);
                self.write_dest(ins, v);
            }
            Mnemonic::Movsxd | Mnemonic::Movsx | Mnemonic::Movzx
                if ins.op0_kind() == OpKind::Register =>
            {
                let signed = m != Mnemonic::Movzx;
                let v = match ins.op1_kind() {
                    OpKind::Memory => {
                        let a = self.address(ins);
                        let size = u8::try_from(ins.memory_size().size()).unwrap_or(4);
                        self.load(a, size, signed)
                    }
                    // A zero-extended byte register indexes at most 256
                    // entries (clang switches on a byte without a compare);
                    // a later guard replaces this bound.
                    OpKind::Register if m == Mnemonic::Movzx && ins.op1_register().size() == 1 => {
                        let v = self.operand(ins, 1);
                        match v.single() {
                            // A guarded value stays itself: the guard is the
                            // better bound (the byte's range is implied).
                            Some((a, 1, _)) if self.bounds.contains_key(&a) => v,
                            Some((a, 1, 0)) => {
                                self.bounds.insert(a, Bound::byte());
                                v
                            }
                            _ => {
                                let f = self.fresh();
                                if let Some((a, 1, 0)) = f.single() {
                                    self.bounds.insert(a, Bound::byte());
                                }
                                f
                            }
                        }
                    }
                    _ => {
                        let v = self.operand(ins, 1);
                        self.resign(v, signed)
                    }
                };
                self.set(ins.op0_register(), v);
            }
            Mnemonic::Cdqe => {
                let v = self.reg(Register::EAX);
                let v = self.resign(v, true);
                self.set(Register::RAX, v);
            }
            Mnemonic::Lea => {
                let a = self.address(ins);
                self.set(ins.op0_register(), a);
            }
            Mnemonic::Add | Mnemonic::Sub => {
                let a = self.operand(ins, 0);
                let b = self.operand(ins, 1);
                // `sub r, imm; ja` guards like `cmp r, imm; ja` (clang -O0).
                if m == Mnemonic::Sub
                    && let Some(imm) = ins
                        .try_immediate(1)
                        .ok()
                        .filter(|_| ins.op1_kind() != OpKind::Register)
                {
                    guard_after = Some((a.clone(), imm));
                }
                let b = if m == Mnemonic::Sub {
                    b.scale(u64::MAX)
                } else {
                    b
                };
                let v = a.add(&b);
                self.write_dest(ins, v);
            }
            Mnemonic::Shl | Mnemonic::Sal if ins.try_immediate(1).is_ok() => {
                let a = self.operand(ins, 0);
                let sh = ins.try_immediate(1).unwrap_or(0) & 63;
                self.write_dest(ins, a.scale(1u64 << sh));
            }
            Mnemonic::Xor
                if ins.op0_kind() == OpKind::Register
                    && ins.op1_kind() == OpKind::Register
                    && ins.op0_register() == ins.op1_register() =>
            {
                self.set(ins.op0_register(), Val::konst(0));
            }
            Mnemonic::And if ins.op0_kind() == OpKind::Register && ins.try_immediate(1).is_ok() => {
                let mask = ins.try_immediate(1).unwrap_or(u64::MAX);
                let f = self.fresh();
                // `and r, 2^k-1` bounds the result like a guard would.
                if mask < limits::MAX_JUMP_TABLE_ENTRIES
                    && (mask & mask.wrapping_add(1)) == 0
                    && let Some((a, 1, 0)) = f.single()
                {
                    self.bounds.insert(a, Bound::guard(0, mask.wrapping_add(1)));
                }
                self.set(ins.op0_register(), f);
            }
            Mnemonic::Cmp => {
                let a = self.operand(ins, 0);
                let imm = match ins.op1_kind() {
                    OpKind::Register | OpKind::Memory => None,
                    _ => ins.try_immediate(1).ok(),
                };
                self.last_cmp = imm.map(|i| (a, i));
            }
            Mnemonic::Call => {
                // 32-bit PIC reads its own address with a thunk
                // (`__x86.get_pc_thunk.bx`: `mov ebx, [esp]; ret`) that
                // changes nothing else.
                if let Some(r) = self.pc_thunk_register(ins) {
                    self.set(r, Val::konst(ins.next_ip()));
                    return;
                }
                for r in [
                    Register::RAX,
                    Register::RCX,
                    Register::RDX,
                    Register::RSI,
                    Register::RDI,
                    Register::R8,
                    Register::R9,
                    Register::R10,
                    Register::R11,
                ] {
                    let f = self.fresh();
                    self.regs.insert(r, f);
                }
                self.mem.clear();
                self.last_cmp = None;
            }
            _ if ins.flow_control() == FlowControl::ConditionalBranch => {
                self.guard(ins, next);
                return;
            }
            _ => self.clobber(ins),
        }
        if m != Mnemonic::Cmp && self.writes_flags(ins) {
            self.last_cmp = None;
        }
        if guard_after.is_some() {
            self.last_cmp = guard_after;
        }
    }

    /// The register a call to a PC thunk loads with the return address.
    fn pc_thunk_register(&self, ins: &Instruction) -> Option<Register> {
        if self.dec.bitness != 32 || !is_branch_operand(ins.op0_kind()) {
            return None;
        }
        let target = ins.near_branch_target();
        let bytes = self.image.bytes_from(target)?;
        let first = self.dec.decode_iced(bytes, target)?;
        let second = self
            .dec
            .decode_iced(bytes.get(first.len()..)?, first.next_ip())?;
        let loads_return_address = first.mnemonic() == Mnemonic::Mov
            && first.op0_kind() == OpKind::Register
            && first.op1_kind() == OpKind::Memory
            && first.memory_base() == Register::ESP
            && first.memory_index() == Register::None
            && first.memory_displacement64() == 0;
        (loads_return_address && second.mnemonic() == Mnemonic::Ret).then(|| first.op0_register())
    }

    fn writes_flags(&mut self, ins: &Instruction) -> bool {
        // Only the flags an unsigned guard reads matter (CF, ZF).
        ins.rflags_modified() & (iced_x86::RflagsBits::CF | iced_x86::RflagsBits::ZF) != 0
    }

    fn resign(&mut self, v: Val, signed: bool) -> Val {
        if let Some((a, 1, 0)) = v.single()
            && let Some(Atom::Load { addr, size, .. }) = self.atoms.get(a as usize).cloned()
        {
            let id = self.intern(Atom::Load { addr, size, signed });
            return Val::atom(id);
        }
        v
    }

    /// Learn a bound from `cmp x, imm` followed by an unsigned conditional
    /// jump, given which way the path went.
    fn guard(&mut self, ins: &Instruction, next: Option<u64>) {
        let Some((value, imm)) = self.last_cmp.clone() else {
            return;
        };
        let taken = match next {
            Some(n) if n == ins.near_branch_target() && n != ins.next_ip() => true,
            Some(n) if n == ins.next_ip() => false,
            _ => return,
        };
        // The path continues only when `value <= imm` (count imm+1) or
        // `value < imm` (count imm).
        let count = match (ins.condition_code(), taken) {
            (ConditionCode::a, false) | (ConditionCode::be, true) => imm.checked_add(1),
            (ConditionCode::ae, false) | (ConditionCode::b, true) => Some(imm),
            _ => None,
        };
        let Some(count) = count else { return };
        if count == 0 || count > limits::MAX_JUMP_TABLE_ENTRIES {
            return;
        }
        if let Some((atom, 1, offset)) = value.single() {
            self.bounds.insert(atom, Bound::guard(offset, count));
        }
    }

    /// 32-bit PIC switches compute `base + mem[base + 4*i + d]` with `base`
    /// the GOT address (gcc's `.L4@GOTOFF` tables), often reloaded from a
    /// stack slot the path does not show. When `target` has exactly that
    /// shape with an unknown `base`, take `base` = `DT_PLTGOT`; the caller
    /// still requires every entry to land in code. Returns the table shape:
    /// (index atom, scale, address constant, entry size, signed, added
    /// constant).
    fn pic_base_shape(&self, target: &Val) -> Option<(u32, u64, u64, u8, bool, u64)> {
        let got = self.dec.got_base.filter(|_| self.dec.bitness == 32)?;
        let [(x, 1), (y, 1)] = target.terms.as_slice() else {
            return None;
        };
        [(*x, *y), (*y, *x)].into_iter().find_map(|(base, load)| {
            let Some(Atom::Load {
                addr,
                size: 4,
                signed,
            }) = self.atoms.get(load as usize)
            else {
                return None;
            };
            let index = match addr.terms.as_slice() {
                [(b, 1), (i, 4)] | [(i, 4), (b, 1)] if *b == base => *i,
                _ => return None,
            };
            Some((
                index,
                4,
                addr.c.wrapping_add(got) & 0xffff_ffff,
                4,
                *signed,
                target.c.wrapping_add(got) & 0xffff_ffff,
            ))
        })
    }

    /// Whether the table index in `target` is bounded only by its width.
    fn narrow_index(&self, target: &Val) -> bool {
        target
            .terms
            .iter()
            .any(|&(a, _)| match self.atoms.get(a as usize) {
                Some(Atom::Load { addr, .. }) => addr
                    .terms
                    .iter()
                    .any(|(i, _)| self.bounds.get(i).is_some_and(|b| b.narrow)),
                _ => false,
            })
    }

    /// The fixed address when `target` is a pointer-sized load from it.
    fn single_load_of_constant(&self, target: &Val) -> Option<u64> {
        let (atom, 1, 0) = target.single()? else {
            return None;
        };
        match self.atoms.get(atom as usize)? {
            Atom::Load { addr, size, .. } if u32::from(*size) * 8 == self.dec.bitness => {
                addr.as_const()
            }
            _ => None,
        }
    }

    fn match_table(&self, image: &Image<'_>, target: &Val, bitness: u32) -> Option<JumpTable> {
        let ptr_mask = if bitness == 32 { 0xffff_ffff } else { u64::MAX };
        // Find the load of a table entry among the target's terms.
        let (index, scale, c1, size, signed, rest_const) = match target.terms.as_slice() {
            [(a, 1)] => {
                let Atom::Load { addr, size, signed } = self.atoms.get(*a as usize)? else {
                    return None;
                };
                let (index, scale, c1) = addr.single()?;
                (index, scale, c1, *size, *signed, target.c)
            }
            _ => self.pic_base_shape(target)?,
        };
        let (size, signed) = (&size, &signed);
        if u64::from(*size) != scale || !matches!(size, 4 | 8) {
            return None;
        }
        let bound = self.bounds.get(&index)?;
        let table = c1.wrapping_sub(scale.wrapping_mul(bound.offset)) & ptr_mask;
        // Absolute entries hold addresses; relative ones an offset from the
        // constant added after the load (the table itself for gcc/clang).
        let relative = rest_const != 0;
        if relative && !(*signed || *size == 4 && bitness == 32) {
            return None;
        }
        let sec = image.sections.iter().find(|s| s.contains(table));
        if sec.is_some_and(|s| s.perms.write) {
            // A writable table could change at run time; not a switch.
            return None;
        }
        let mut targets = Vec::with_capacity(usize::try_from(bound.count).ok()?);
        for i in 0..bound.count {
            let slot = table.checked_add(i.checked_mul(scale)?)?;
            let raw = image.read_uint(slot, *size)?;
            let t = if relative {
                let entry = if *size == 4 {
                    raw as u32 as i32 as i64 as u64
                } else {
                    raw
                };
                rest_const.wrapping_add(entry) & ptr_mask
            } else {
                raw & ptr_mask
            };
            targets.push(t);
        }
        Some(JumpTable {
            table,
            entry_size: *size,
            targets,
        })
    }
}
