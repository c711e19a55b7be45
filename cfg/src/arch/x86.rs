//! x86 and x86-64 through iced-x86.
//!
//! Besides classifying control flow, this module resolves the jump tables
//! gcc and clang emit for `switch` (-O0 to -O3, PIE and non-PIE, and the
//! GOT-relative tables of 32-bit PIC code) with a small symbolic
//! interpreter over the instructions leading to the indirect jump: register
//! and stack-slot values are linear sums of unknowns and table loads, and
//! the bound comes from the `cmp`/`ja` that guards the path.

use std::collections::{BTreeMap, HashMap};

use iced_x86::{
    ConditionCode, ConstantOffsets, Decoder as IcedDecoder, DecoderOptions, FlowControl, Formatter,
    Instruction, InstructionInfoFactory, IntelFormatter, Mnemonic, OpAccess, OpKind, Register,
};

use super::{Canonicalise, Decode, Flow, IndirectTarget, Insn, JumpTable, RegConst, Render};
use crate::image::{Arch, Image};
use crate::limits;

mod cursor;
mod resolve;

/// Longest x86 instruction.
const MAX_INSN_LEN: usize = 15;

/// Loop-invariant registers per (function, path) already computed, so
/// suffix retries do not redo the fixpoint.
type InvariantCache = HashMap<(u64, usize), Vec<(Register, u64)>>;

/// Decoder for 32-bit (`bitness` 32) or 64-bit x86.
#[derive(Debug)]
pub struct X86Decoder {
    bitness: u32,
    /// `DT_PLTGOT` of 32-bit images: the value `ebx` holds in PIC code.
    got_base: Option<u64>,
    /// Loop-invariant registers per function, keyed by (first instruction,
    /// instruction count): a function with many unresolvable indirect jumps
    /// (an interpreter's computed gotos) is scanned once, not once per jump.
    invariants: std::sync::Mutex<InvariantCache>,
}

impl X86Decoder {
    /// Whether a decoded instruction is one of the no-ops compilers and
    /// assemblers pad with (zero fill is told from the bytes).
    fn padding_of(&self, ins: &Instruction) -> bool {
        match ins.mnemonic() {
            Mnemonic::Nop | Mnemonic::Int3 => true,
            // `lea esi, [esi+0]` and `lea esi, [esi+eiz*1+0]`: old 32-bit fill.
            Mnemonic::Lea => {
                ins.op0_kind() == OpKind::Register
                    && ins.op1_kind() == OpKind::Memory
                    && ins.memory_base() == ins.op0_register()
                    && matches!(ins.memory_index(), Register::None)
                    && ins.memory_displacement64() == 0
            }
            // `xchg ax, ax` / `mov edi, edi` style two-operand no-ops.
            Mnemonic::Xchg | Mnemonic::Mov => {
                ins.op_count() == 2
                    && ins.op0_kind() == OpKind::Register
                    && ins.op1_kind() == OpKind::Register
                    && ins.op0_register() == ins.op1_register()
                    && !(self.bitness == 64 && ins.op0_register().size() == 4)
            }
            _ => false,
        }
    }

    /// The architecture-neutral view of a decoded instruction.
    fn insn_of(&self, ins: &Instruction) -> Option<Insn> {
        let addr = ins.ip();
        let len = u8::try_from(ins.len()).ok()?;
        let next = ins.next_ip();
        let near_target = || is_branch_operand(ins.op0_kind()).then(|| ins.near_branch_target());
        let flow = match ins.flow_control() {
            FlowControl::Next => {
                if ins.mnemonic() == Mnemonic::Hlt {
                    Flow::Stop
                } else {
                    Flow::Seq
                }
            }
            FlowControl::UnconditionalBranch => match ins.op0_kind() {
                OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => {
                    Flow::Jump(ins.near_branch_target())
                }
                _ => Flow::IndirectJump { slot: None },
            },
            FlowControl::IndirectBranch => Flow::IndirectJump {
                slot: self.fixed_memory_address(ins),
            },
            FlowControl::ConditionalBranch => match near_target() {
                Some(t) => Flow::CondJump(t),
                None => Flow::Seq,
            },
            FlowControl::Return => Flow::Return,
            FlowControl::Call => match ins.op0_kind() {
                // `call next; pop reg` reads the program counter; not a call.
                OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => {
                    let t = ins.near_branch_target();
                    if t == next { Flow::Seq } else { Flow::Call(t) }
                }
                OpKind::FarBranch16 | OpKind::FarBranch32 => Flow::IndirectCall { slot: None },
                // syscall, sysenter, vmcall...: control comes back.
                _ => Flow::Seq,
            },
            FlowControl::IndirectCall => Flow::IndirectCall {
                slot: self.fixed_memory_address(ins),
            },
            FlowControl::Interrupt => {
                if ins.mnemonic() == Mnemonic::Int3 {
                    Flow::Stop
                } else {
                    Flow::Seq
                }
            }
            FlowControl::XbeginXabortXend => match near_target() {
                Some(t) if ins.mnemonic() == Mnemonic::Xbegin => Flow::CondJump(t),
                _ => Flow::Seq,
            },
            FlowControl::Exception => Flow::Stop,
        };
        let mut data_ref = None;
        let mut konst = None;
        if ins.is_ip_rel_memory_operand() {
            data_ref = Some(ins.ip_rel_memory_address());
        } else if !matches!(flow, Flow::Jump(_) | Flow::CondJump(_) | Flow::Call(_)) {
            if let Some(imm) = immediate_operand(ins) {
                data_ref = Some(self.mask(imm));
            } else if let Some(a) = self.fixed_memory_address(ins)
                && ins.memory_base() == Register::None
            {
                data_ref = Some(a);
            }
        }
        let dest = ins.op0_register();
        if ins.op0_kind() == OpKind::Register && dest != Register::None {
            let reg = dest.full_register() as u16;
            match ins.mnemonic() {
                Mnemonic::Lea if ins.is_ip_rel_memory_operand() => {
                    konst = Some(RegConst {
                        reg,
                        value: ins.ip_rel_memory_address(),
                        loaded: false,
                        carried: false,
                    });
                }
                Mnemonic::Mov => {
                    if let Some(imm) = immediate_operand(ins) {
                        konst = Some(RegConst {
                            reg,
                            value: self.mask(imm),
                            loaded: false,
                            carried: false,
                        });
                    }
                }
                _ => {}
            }
        }
        Some(Insn {
            addr,
            len,
            flow,
            data_ref,
            konst,
        })
    }

    /// A decoder for `bitness` 32 or 64. `got_base` is the GOT address that
    /// 32-bit PIC code keeps in `ebx`.
    #[must_use]
    pub fn new(bitness: u32, got_base: Option<u64>) -> Self {
        X86Decoder {
            bitness,
            got_base,
            invariants: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn decode_iced(&self, bytes: &[u8], addr: u64) -> Option<Instruction> {
        let window = bytes.get(..bytes.len().min(MAX_INSN_LEN))?;
        let mut dec = IcedDecoder::with_ip(self.bitness, window, addr, DecoderOptions::NONE);
        if !dec.can_decode() {
            return None;
        }
        let ins = dec.decode();
        (!ins.is_invalid()).then_some(ins)
    }

    fn mask(&self, v: u64) -> u64 {
        if self.bitness == 32 {
            v & 0xffff_ffff
        } else {
            v
        }
    }

    /// The fixed address of an instruction's memory operand, if it has one.
    fn fixed_memory_address(&self, ins: &Instruction) -> Option<u64> {
        if ins.is_ip_rel_memory_operand() {
            return Some(ins.ip_rel_memory_address());
        }
        let has_mem = (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory);
        if !has_mem || ins.memory_index() != Register::None {
            return None;
        }
        match ins.memory_base() {
            Register::None => Some(self.mask(ins.memory_displacement64())),
            // 32-bit PIC: ebx holds the GOT address (i386 psABI).
            Register::EBX if self.bitness == 32 => self
                .got_base
                .map(|g| self.mask(g.wrapping_add(ins.memory_displacement64()))),
            _ => None,
        }
    }
}

fn is_branch_operand(kind: OpKind) -> bool {
    matches!(
        kind,
        OpKind::NearBranch16
            | OpKind::NearBranch32
            | OpKind::NearBranch64
            | OpKind::FarBranch16
            | OpKind::FarBranch32
    )
}

fn immediate_operand(ins: &Instruction) -> Option<u64> {
    (0..ins.op_count()).find_map(|i| match ins.op_kind(i) {
        OpKind::Immediate32 | OpKind::Immediate64 | OpKind::Immediate32to64 => {
            ins.try_immediate(i).ok()
        }
        _ => None,
    })
}

impl X86Decoder {
    /// Decode the next instruction of `decoder` (whose bytes start with
    /// `bytes`) and append its canonical bytes to `out`; its length, 0 when
    /// it does not decode. The field offsets come from the decoder's state,
    /// so they must be asked of the decoder that decoded the instruction.
    fn canonical_next(
        &self,
        decoder: &mut IcedDecoder<'_>,
        bytes: &[u8],
        span: (u64, u64),
        base: u64,
        out: &mut Vec<u8>,
    ) -> usize {
        if !decoder.can_decode() {
            return 0;
        }
        let ins = decoder.decode();
        if ins.is_invalid() {
            return 0;
        }
        let offsets = decoder.get_constant_offsets(&ins);
        let Some(raw) = bytes.get(..ins.len()) else {
            return 0;
        };
        canonical_insn(self.bitness, &ins, &offsets, raw, span, base, out);
        ins.len()
    }
}

/// Append the canonical bytes of the decoded instruction `ins` (its bytes
/// `raw`, its field offsets `offsets`) to `out`: every absolute address in
/// `[span.0, span.1)` rewritten relative to `base`. Shared by
/// [`Canonicalise`] and the digests that decode a block once for several
/// purposes.
pub(crate) fn canonical_insn(
    bitness: u32,
    ins: &Instruction,
    offsets: &ConstantOffsets,
    raw: &[u8],
    span: (u64, u64),
    base: u64,
    out: &mut Vec<u8>,
) {
    let mask = |v: u64| if bitness == 32 { v & 0xffff_ffff } else { v };
    let start = out.len();
    out.extend_from_slice(raw);
    let in_image = |v: u64| v >= span.0 && v < span.1;
    let mut rewrite = |field_off: usize, size: usize, value: u64| {
        if size < 4 || !in_image(value) {
            return;
        }
        let rel = value.wrapping_sub(base).to_le_bytes();
        if let (Some(dst), Some(src)) = (
            start
                .checked_add(field_off)
                .and_then(|o| out.get_mut(o..o.checked_add(size)?)),
            rel.get(..size),
        ) {
            dst.copy_from_slice(src);
        }
    };
    if offsets.has_displacement() && !ins.is_ip_rel_memory_operand() {
        rewrite(
            offsets.displacement_offset(),
            offsets.displacement_size(),
            mask(ins.memory_displacement64()),
        );
    }
    let has_branch = (0..ins.op_count()).any(|i| is_branch_operand(ins.op_kind(i)));
    if offsets.has_immediate()
        && !has_branch
        && let Some(imm) = immediate_operand(ins)
    {
        rewrite(
            offsets.immediate_offset(),
            offsets.immediate_size(),
            mask(imm),
        );
    }
}

impl Decode for X86Decoder {
    fn arch(&self) -> Arch {
        if self.bitness == 32 {
            Arch::X86
        } else {
            Arch::X86_64
        }
    }

    fn alignment(&self) -> u64 {
        1
    }

    fn decode(&self, bytes: &[u8], addr: u64, _prev: Option<&Insn>) -> Option<Insn> {
        let ins = self.decode_iced(bytes, addr)?;
        self.insn_of(&ins)
    }

    /// One iced decoder for the whole run: setting one up costs more than
    /// decoding an instruction with it.
    fn cursor<'b>(&'b self, bytes: &'b [u8], addr: u64) -> Box<dyn super::Cursor + 'b> {
        Box::new(cursor::X86Cursor::new(self, bytes, addr))
    }

    fn is_padding(&self, bytes: &[u8], insn: &Insn) -> bool {
        if bytes.get(..2) == Some(&[0, 0]) {
            return true;
        }
        self.decode_iced(bytes, insn.addr)
            .is_some_and(|ins| self.padding_of(&ins))
    }
}

impl Canonicalise for X86Decoder {
    fn canonical_bytes(
        &self,
        bytes: &[u8],
        addr: u64,
        span: (u64, u64),
        base: u64,
        out: &mut Vec<u8>,
    ) -> usize {
        let window = bytes.get(..bytes.len().min(MAX_INSN_LEN)).unwrap_or(bytes);
        let mut decoder = IcedDecoder::with_ip(self.bitness, window, addr, DecoderOptions::NONE);
        self.canonical_next(&mut decoder, bytes, span, base, out)
    }

    fn canonical_block(
        &self,
        bytes: &[u8],
        addr: u64,
        count: u32,
        span: (u64, u64),
        base: u64,
        out: &mut Vec<u8>,
    ) -> usize {
        // One decoder over the whole block (not one per instruction).
        let mut decoder = IcedDecoder::with_ip(self.bitness, bytes, addr, DecoderOptions::NONE);
        super::each_instruction(bytes, addr, count, |rest, _| {
            self.canonical_next(&mut decoder, rest, span, base, out)
        })
    }
}

impl Render for X86Decoder {
    fn render(&self, bytes: &[u8], addr: u64) -> Option<String> {
        let ins = self.decode_iced(bytes, addr)?;
        let mut fmt = IntelFormatter::new();
        fmt.options_mut().set_first_operand_char_index(0);
        let mut s = String::new();
        fmt.format(&ins, &mut s);
        Some(s)
    }
}
