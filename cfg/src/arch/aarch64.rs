//! AArch64 (A64).
//!
//! Every A64 instruction is one little-endian 32-bit word. Control flow,
//! address materialisation (`adrp`+`add`/`ldr`, `adr`, literal loads) and
//! what the jump-table interpreter needs are decoded from the raw word by
//! bit masks ([`decode_raw`]); capstone, which spends most of its
//! 0.75 M instructions/s printing aliases, only renders instructions and
//! serves as a differential oracle in the tests.
//!
//! Validity is checked exactly for the branch, exception and system
//! encodings and for the top-level encoding groups (unallocated groups and
//! the reserved space around `udf` are invalid); inside the data-processing,
//! load/store and SIMD groups a word is accepted as "no control flow"
//! without checking every reserved field. The tests measure how often this
//! accepts a word capstone rejects.
//!
//! Constants travel between instructions in [`RegConst`] as on RISC-V, with
//! the same flags ([`RegConst::loaded`], [`RegConst::carried`]).

use capstone::Capstone;
use capstone::arch::BuildsCapstone;
use capstone::arch::arm64::ArchMode;

use super::linear::{Machine, Val};
use super::risc::{self, bits, known, sext};
use super::{Canonicalise, Decode, Flow, IndirectTarget, Insn, RegConst, Render, StackEffect};
use crate::image::{Arch, Image};

/// Register number 31 read as the stack pointer.
const SP: u8 = 31;
/// Register number 31 read as the zero register (numbered 32 here so that
/// the two never mix).
const ZR: u8 = 32;
const LR: u8 = 30;

mod decode;
mod resolve;

pub use decode::*;
use resolve::*;

/// The decoder for A64.
#[derive(Debug, Clone, Default)]
pub struct Aarch64Decoder;

impl Aarch64Decoder {
    /// A decoder.
    #[must_use]
    pub fn new() -> Self {
        Aarch64Decoder
    }
}

fn word(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes([
        *bytes.first()?,
        *bytes.get(1)?,
        *bytes.get(2)?,
        *bytes.get(3)?,
    ]))
}

fn konst(reg: u8, value: u64, loaded: bool) -> Option<RegConst> {
    (reg < 31).then(|| risc::konst(reg, value, loaded))
}

impl Decode for Aarch64Decoder {
    fn arch(&self) -> Arch {
        Arch::Aarch64
    }

    fn alignment(&self) -> u64 {
        4
    }

    fn decode(&self, bytes: &[u8], addr: u64, prev: Option<&Insn>) -> Option<Insn> {
        if addr & 3 != 0 {
            return None;
        }
        let i = decode_raw(word(bytes)?)?;
        let rel = |imm: i64| addr.wrapping_add(imm as u64);
        let k = known(prev);
        let base = |r: u8| k.filter(|&(kr, _, loaded, _)| kr == r && r < 31 && !loaded);
        let mut data_ref = None;
        let mut own: Option<Option<RegConst>> = None;
        let flow = match i.op {
            Op::Branch { link: true } => Flow::Call(rel(i.imm)),
            Op::Branch { link: false } => Flow::Jump(rel(i.imm)),
            Op::CondBranch { .. } => Flow::CondJump(rel(i.imm)),
            Op::BranchReg { link } => {
                if let Some((_, v, _, false)) = base(i.rn) {
                    // `adrp`+`add`+`br` (linker veneers): a direct branch.
                    if link { Flow::Call(v) } else { Flow::Jump(v) }
                } else {
                    let slot = k
                        .filter(|&(kr, _, loaded, _)| kr == i.rn && loaded)
                        .map(|(_, v, _, _)| v);
                    if link {
                        Flow::IndirectCall { slot }
                    } else {
                        Flow::IndirectJump { slot }
                    }
                }
            }
            Op::Return => Flow::Return,
            Op::Trap => Flow::Stop,
            _ => Flow::Seq,
        };
        match i.op {
            Op::Adrp => {
                own = Some(konst(
                    i.rd,
                    (addr & !0xfff).wrapping_add(i.imm as u64),
                    false,
                ))
            }
            Op::Adr => {
                let a = rel(i.imm);
                data_ref = Some(a);
                own = Some(konst(i.rd, a, false));
            }
            Op::AddImm { flags: false } if i.wide => {
                if let Some((_, v, _, _)) = base(i.rn) {
                    let a = v.wrapping_add(i.imm as u64);
                    data_ref = Some(a);
                    own = Some(konst(i.rd, a, false));
                }
            }
            Op::MovReg if i.wide => {
                if let Some((_, v, loaded, _)) = k.filter(|&(kr, ..)| kr == i.rm && kr < 31) {
                    own = Some(konst(i.rd, v, loaded));
                }
            }
            Op::Load { size, .. } => {
                if let Some((_, v, _, _)) = base(i.rn) {
                    let a = v.wrapping_add(i.imm as u64);
                    data_ref = Some(a);
                    own = Some(konst(i.rd, a, true).filter(|_| size == 8));
                }
            }
            Op::LoadLiteral { size, .. } => {
                let a = rel(i.imm);
                data_ref = Some(a);
                own = Some(konst(i.rd, a, true).filter(|_| size == 8));
            }
            Op::Store { .. } | Op::MemOther => {
                if let Some((_, v, _, _)) = base(i.rn) {
                    data_ref = Some(v.wrapping_add(i.imm as u64));
                }
            }
            _ => {}
        }
        let written = |r: u8| {
            let dest = match i.op {
                Op::Store { .. } | Op::MemOther | Op::CondBranch { .. } => false,
                _ => i.rd == r,
            };
            dest || i.writes.contains(&r)
        };
        let konst = risc::after(own, k, |kr| written(kr) || is_link_flow(&i));
        Some(Insn {
            addr,
            len: 4,
            flow,
            data_ref,
            konst,
        })
    }

    fn is_padding(&self, bytes: &[u8], _insn: &Insn) -> bool {
        // nop, and zero fill (`udf #0`).
        matches!(word(bytes), Some(0xd503_201f | 0))
    }

    fn stack_effect(&self, bytes: &[u8], _insn: &Insn) -> StackEffect {
        let Some(w) = word(bytes) else {
            return StackEffect::Unknown;
        };
        stack_effect_of(w)
    }
}

impl Canonicalise for Aarch64Decoder {
    fn canonical_bytes(
        &self,
        bytes: &[u8],
        _addr: u64,
        _span: (u64, u64),
        _base: u64,
        out: &mut Vec<u8>,
    ) -> usize {
        // A64 code reaches addresses pc-relatively (`adrp`, `adr`, literal
        // loads, branches) in every code model gcc and clang use by default,
        // PIE or not: the raw bytes are already base independent.
        match bytes.get(..4) {
            Some(raw) if word(raw).and_then(decode_raw).is_some() => {
                out.extend_from_slice(raw);
                4
            }
            _ => 0,
        }
    }
}

impl Render for Aarch64Decoder {
    fn render(&self, bytes: &[u8], addr: u64) -> Option<String> {
        let raw = bytes.get(..4)?;
        decode_raw(word(raw)?)?;
        with_capstone(|cs| risc::capstone_text(cs, raw, addr))
    }
}

thread_local! {
    static CAPSTONE: risc::CapstoneSlot = const { std::cell::RefCell::new(None) };
}

/// Run `f` with this thread's A64 capstone handle.
fn with_capstone<T>(f: impl FnOnce(&Capstone) -> Option<T>) -> Option<T> {
    risc::with_capstone(&CAPSTONE, build_capstone, f)
}

fn build_capstone() -> Option<Capstone> {
    Capstone::new().arm64().mode(ArchMode::Arm).build().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(w: u32, addr: u64) -> Option<Flow> {
        Aarch64Decoder::new()
            .decode(&w.to_le_bytes(), addr, None)
            .map(|i| i.flow)
    }

    #[test]
    fn classifies_branches() {
        assert_eq!(flow(0x9400_0010, 0x1000), Some(Flow::Call(0x1040))); // bl
        assert_eq!(flow(0x17ff_ffff, 0x1000), Some(Flow::Jump(0xffc))); // b
        assert_eq!(flow(0x5400_0080, 0x1000), Some(Flow::CondJump(0x1010))); // b.eq
        assert_eq!(flow(0xb400_0040, 0x1000), Some(Flow::CondJump(0x1008))); // cbz x0
        assert_eq!(flow(0x3700_0060, 0x1000), Some(Flow::CondJump(0x100c))); // tbnz w0,#0
        assert_eq!(
            flow(0xd61f_0220, 0),
            Some(Flow::IndirectJump { slot: None })
        ); // br x17
        assert_eq!(
            flow(0xd63f_0020, 0),
            Some(Flow::IndirectCall { slot: None })
        ); // blr x1
        assert_eq!(flow(0xd65f_03c0, 0), Some(Flow::Return)); // ret
        assert_eq!(flow(0xd65f_0bff, 0), Some(Flow::Return)); // retaa
        assert_eq!(flow(0xd420_7d00, 0), Some(Flow::Stop)); // brk #0x3e8
        assert_eq!(flow(0x0000_0000, 0), Some(Flow::Stop)); // udf #0
        assert_eq!(flow(0xd503_201f, 0), Some(Flow::Seq)); // nop
        assert_eq!(flow(0x0001_0000, 0), None); // reserved
    }

    #[test]
    fn plt_stub_jumps_through_its_got_slot() {
        let dec = Aarch64Decoder::new();
        // adrp x16, 0x30000 ; ldr x17, [x16, #8] ; add x16, x16, #8 ; br x17
        let words = [0xf000_0170u32, 0xf940_0611, 0x9100_2210, 0xd61f_0220];
        let mut prev: Option<Insn> = None;
        let mut last = None;
        for (k, w) in words.iter().enumerate() {
            let i = dec
                .decode(&w.to_le_bytes(), 0x11e0 + 4 * k as u64, prev.as_ref())
                .unwrap();
            prev = Some(i);
            last = Some(i);
        }
        assert_eq!(
            last.map(|i| i.flow),
            Some(Flow::IndirectJump {
                slot: Some(0x30008)
            })
        );
    }

    #[test]
    fn bitmask_immediates() {
        // and w0, w0, #0xff: N=0 immr=0 imms=000111
        assert_eq!(bitmask(0, 0b000111, 0, false), Some(0xff));
        // and x0, x0, #0xffffffff: N=1 immr=0 imms=011111
        assert_eq!(bitmask(1, 0b011111, 0, true), Some(0xffff_ffff));
        assert_eq!(bitmask(0, 0b111111, 0, true), None);
    }
}
