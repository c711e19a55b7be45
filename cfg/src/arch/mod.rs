//! Architecture-neutral instruction and flow types, and the traits each
//! instruction set implements, one per concept (as gimli and object split
//! theirs): [`Decode`] (the instruction set's encoding, after lancelot's
//! `flow.rs`), [`ResolveIndirect`] (jump tables, GOT slots, the PLT's
//! layout: compiler and linker conventions), [`Render`] (text for people)
//! and [`Canonicalise`] (link-address independent bytes for digests);
//! [`Isa`] combines them. The graph builder only sees [`Insn`] and
//! [`Flow`]; it never knows which instruction set it walks.

pub mod aarch64;
mod linear;
mod risc;
pub mod riscv;
pub mod x86;

use crate::image::{Arch, Image};

/// How control leaves an instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Falls through to the next instruction.
    Seq,
    /// Unconditional direct jump.
    Jump(u64),
    /// Conditional direct jump; falls through when not taken.
    CondJump(u64),
    /// Direct call; returns to the next instruction unless the callee does
    /// not return.
    Call(u64),
    /// Jump through a register or memory. `slot` is the memory cell read,
    /// when the instruction names a fixed address (a GOT or IAT entry).
    IndirectJump {
        /// Address of the memory operand, if fixed.
        slot: Option<u64>,
    },
    /// Call through a register or memory.
    IndirectCall {
        /// Address of the memory operand, if fixed.
        slot: Option<u64>,
    },
    /// Return to the caller.
    Return,
    /// Execution stops here: halt, trap, undefined instruction.
    Stop,
}

impl Flow {
    /// Whether control can continue at the next instruction.
    #[must_use]
    pub fn falls_through(self) -> bool {
        matches!(
            self,
            Flow::Seq | Flow::CondJump(_) | Flow::Call(_) | Flow::IndirectCall { .. }
        )
    }

    /// Whether the instruction ends a basic block.
    #[must_use]
    pub fn ends_block(self) -> bool {
        !matches!(self, Flow::Seq)
    }
}

/// A register known to hold a constant after an instruction: how the
/// decoders pass address materialisation (`lea r, [rip+x]`, `auipc`,
/// `adrp`) from one instruction to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegConst {
    /// Architecture register number.
    pub reg: u16,
    /// The value it holds.
    pub value: u64,
    /// The register holds the 8-byte word stored at `value` (the GOT load
    /// of a PLT stub: `auipc t3, ..; ld t3, ..(t3)`, `adrp x16, ..; ldr
    /// x17, [x16, ..]`), not `value`.
    pub loaded: bool,
    /// The constant was set by an earlier instruction and carried over this
    /// one, which does not write the register.
    pub carried: bool,
}

/// One indirect jump to resolve ([`ResolveIndirect::resolve_indirect_in`]).
#[derive(Clone, Copy)]
pub struct IndirectQuery<'q> {
    /// The image the instructions are in.
    pub image: &'q Image<'q>,
    /// Instruction addresses in execution order, the indirect jump last.
    pub path: &'q [u64],
    /// Indexes into `path` where the suffixes to try begin (shortest first
    /// is the caller's order).
    pub starts: &'q [usize],
    /// Every decoded instruction of the function, for facts that hold on
    /// every path (a register set once to a constant before a loop).
    pub function: &'q [u64],
    /// Keeps only the answers it lets through (it may trim a table to the
    /// entries it believes).
    pub admit: &'q dyn Fn(IndirectTarget) -> Option<IndirectTarget>,
}

/// One decoded instruction, reduced to what graph recovery needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Address as linked.
    pub addr: u64,
    /// Length in bytes.
    pub len: u8,
    /// Control flow.
    pub flow: Flow,
    /// An address this instruction computes or reads (`lea`, absolute
    /// immediates, pc-relative pairs): a candidate code or data pointer.
    pub data_ref: Option<u64>,
    /// A register this instruction sets to a known constant.
    pub konst: Option<RegConst>,
}

impl Insn {
    /// One past the last byte.
    #[must_use]
    pub fn end(&self) -> u64 {
        self.addr.wrapping_add(u64::from(self.len))
    }
}

/// What an indirect jump was resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndirectTarget {
    /// A switch through a table of code addresses or offsets.
    Table(JumpTable),
    /// A jump to the address held in one fixed memory cell (a GOT entry
    /// loaded into a register first: `mov rax, [rip+slot]; jmp rax`).
    Slot(u64),
    /// A table whose size comes only from the width of the index (a byte
    /// loaded and zero-extended, no compare): the caller must check that
    /// every target stays inside the function before believing it.
    NarrowTable(JumpTable),
}

/// A resolved jump table: `count` entries of `entry_size` bytes at `table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpTable {
    /// Address of the first entry.
    pub table: u64,
    /// Bytes per entry.
    pub entry_size: u8,
    /// Target of every entry, in table order (duplicates kept).
    pub targets: Vec<u64>,
}

impl JumpTable {
    /// Bytes the table occupies.
    #[must_use]
    pub fn byte_len(&self) -> u64 {
        (self.targets.len() as u64).saturating_mul(u64::from(self.entry_size))
    }
}

/// How an instruction moves the stack pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackEffect {
    /// It does not write the stack pointer (calls included: the callee
    /// gives it back).
    None,
    /// It adds a constant (`addi sp, sp, -64`, `stp x29, x30, [sp, #-32]!`).
    Add(i64),
    /// It writes the stack pointer some other way (`mv sp, s0`), or the
    /// decoder does not follow it.
    Unknown,
}

/// Decoding: what the instruction at an address is, how it moves control
/// and the stack pointer, and whether it is padding. Everything here is
/// the instruction set's own encoding; no compiler or ABI convention.
pub trait Decode: Sync {
    /// The architecture decoded.
    fn arch(&self) -> Arch;

    /// Smallest instruction alignment (1 on x86, 2 with RISC-V C, 4 on A64).
    fn alignment(&self) -> u64;

    /// Decode the instruction at the start of `bytes`, which sits at `addr`.
    /// `prev` is the instruction just before it in the same straight-line
    /// run, if any. `None` when the bytes are not a valid instruction.
    fn decode(&self, bytes: &[u8], addr: u64, prev: Option<&Insn>) -> Option<Insn>;

    /// Whether the instruction is alignment padding (nops, trap fill, zero
    /// fill) rather than code anyone meant to run.
    fn is_padding(&self, bytes: &[u8], insn: &Insn) -> bool;

    /// How the instruction moves the stack pointer. The builder follows the
    /// stack's depth from a function's entry to tell a jump that leaves the
    /// function (its frame released) from one inside it, and code that
    /// belongs to a function from code that could start one. The default
    /// follows nothing.
    fn stack_effect(&self, bytes: &[u8], insn: &Insn) -> StackEffect {
        let _ = (bytes, insn);
        StackEffect::Unknown
    }

    /// Decode `bytes`, which sit at `addr`, one instruction after another
    /// (each where the one before it ends). The same instructions as
    /// [`Decode::decode`] at each address; an instruction set whose decoder
    /// is costly to set up overrides this to set it up once per run.
    fn cursor<'b>(&'b self, bytes: &'b [u8], addr: u64) -> Box<dyn Cursor + 'b> {
        Box::new(EachAlone {
            dec: self,
            bytes,
            addr,
            off: 0,
            last: None,
        })
    }
}

/// Sequential decoding (see [`Decode::cursor`]).
pub trait Cursor {
    /// The next instruction; `prev` is the one before it in the run, if
    /// any. `None` when the bytes there are not a valid instruction, or
    /// none are left.
    fn next(&mut self, prev: Option<&Insn>) -> Option<Insn>;

    /// Whether the instruction `next` returned last is padding (see
    /// [`Decode::is_padding`]); `false` before the first.
    fn is_padding(&self) -> bool;
}

/// A cursor that decodes each instruction on its own.
struct EachAlone<'b, D: ?Sized> {
    dec: &'b D,
    bytes: &'b [u8],
    addr: u64,
    off: usize,
    /// The last instruction decoded, and where its bytes start.
    last: Option<(Insn, usize)>,
}

impl<D: Decode + ?Sized> Cursor for EachAlone<'_, D> {
    fn next(&mut self, prev: Option<&Insn>) -> Option<Insn> {
        let rest = self.bytes.get(self.off..).filter(|r| !r.is_empty())?;
        let at = self.addr.wrapping_add(self.off as u64);
        let insn = self.dec.decode(rest, at, prev)?;
        self.last = Some((insn, self.off));
        self.off = self.off.saturating_add(usize::from(insn.len));
        Some(insn)
    }

    fn is_padding(&self) -> bool {
        self.last.is_some_and(|(insn, off)| {
            self.bytes
                .get(off..)
                .is_some_and(|b| self.dec.is_padding(b, &insn))
        })
    }
}

/// Resolving indirect flow: where a jump through a register or memory goes
/// (a `switch`'s jump table, a GOT slot), and where the psABI lays out the
/// PLT stubs through which calls to imports go indirect. These follow the
/// compilers' and linkers' conventions, not the instruction set's.
pub trait ResolveIndirect: Sync {
    /// Try to resolve the indirect jump at the end of `path` (instruction
    /// addresses in execution order, the jump last): as a jump table, or as
    /// a jump through one fixed memory cell.
    fn resolve_indirect(&self, image: &Image<'_>, path: &[u64]) -> Option<IndirectTarget>;

    /// Resolve the indirect jump `q` asks about, trying the suffixes of its
    /// path that begin at each of its starts in turn, keeping only the
    /// answers its `admit` lets through. The default ignores `q.function`.
    fn resolve_indirect_in(&self, q: &IndirectQuery<'_>) -> Option<IndirectTarget> {
        q.starts.iter().find_map(|&i| {
            q.path
                .get(i..)
                .and_then(|p| self.resolve_indirect(q.image, p))
                .and_then(q.admit)
        })
    }

    /// Bytes of the resolver stub (PLT0) at the start of an ELF `.plt`
    /// section, before the first 16-byte import stub: 16 on x86, 32 on
    /// RISC-V and AArch64 (psABI layouts).
    fn plt_header_size(&self) -> u64 {
        16
    }
}

/// Rendering: an instruction as assembly text, for people.
pub trait Render: Sync {
    /// Render the instruction as assembly text (for DOT and text output).
    fn render(&self, bytes: &[u8], addr: u64) -> Option<String>;
}

/// Canonicalising for digests: an instruction's bytes with the absolute
/// addresses in it made independent of where the image was linked.
pub trait Canonicalise: Sync {
    /// Append the canonical bytes of the instruction at `addr` to `out`: its
    /// bytes with every absolute address that points into `[lo, hi)`
    /// rewritten relative to `base`, so that the same code linked at another
    /// address has the same canonical bytes. Returns the instruction length,
    /// 0 when the bytes do not decode.
    fn canonical_bytes(
        &self,
        bytes: &[u8],
        addr: u64,
        span: (u64, u64),
        base: u64,
        out: &mut Vec<u8>,
    ) -> usize;

    /// [`Canonicalise::canonical_bytes`] of the `count` instructions at the
    /// start of `bytes` (a basic block at `addr`); the bytes consumed.
    /// Instruction sets that can decode a run faster than one instruction
    /// at a time override it.
    fn canonical_block(
        &self,
        bytes: &[u8],
        addr: u64,
        count: u32,
        span: (u64, u64),
        base: u64,
        out: &mut Vec<u8>,
    ) -> usize {
        each_instruction(bytes, addr, count, |rest, at| {
            self.canonical_bytes(rest, at, span, base, out)
        })
    }
}

/// Walk the `count` instructions at the start of `bytes` (at `addr`):
/// `step` takes the one at the start of its slice and address and returns
/// its length, 0 to stop. The bytes consumed.
fn each_instruction(
    bytes: &[u8],
    addr: u64,
    count: u32,
    mut step: impl FnMut(&[u8], u64) -> usize,
) -> usize {
    let mut done = 0usize;
    for _ in 0..count {
        let Some(rest) = bytes.get(done..) else {
            break;
        };
        let len = step(rest, addr.wrapping_add(done as u64));
        if len == 0 {
            break;
        }
        done = done.saturating_add(len);
    }
    done
}

/// Everything the graph builder, the digests and the renderers ask of an
/// instruction set, in one object: [`decoder_for`] hands out one. Every
/// part is `Sync`: the builder's threads share it.
pub trait Isa: Decode + ResolveIndirect + Render + Canonicalise {}

impl<T: Decode + ResolveIndirect + Render + Canonicalise + ?Sized> Isa for T {}

/// The instruction set of an image's architecture.
///
/// # Errors
/// [`crate::Error::UnsupportedArch`] when no decoder exists for it.
pub fn decoder_for(image: &Image<'_>) -> crate::Result<Box<dyn Isa>> {
    match image.arch {
        Arch::X86 => Ok(Box::new(x86::X86Decoder::new(32, image.got_base))),
        Arch::X86_64 => Ok(Box::new(x86::X86Decoder::new(64, None))),
        Arch::Riscv64 => Ok(Box::new(riscv::RiscvDecoder::with_absolute_addresses(
            image.kind == crate::image::ImageKind::Executable,
        ))),
        Arch::Aarch64 => Ok(Box::new(aarch64::Aarch64Decoder::new())),
    }
}
