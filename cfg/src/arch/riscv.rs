//! RISC-V 64 (RV64GC: I, M, A, F, D, C, Zicsr, Zifencei).
//!
//! Control flow and address materialisation are classified from the raw
//! 16/32-bit words by a compact decoder that expands every compressed
//! instruction to its base form ([`Rv`]) and checks every field the
//! RV64GC encoding reserves, so a word is accepted exactly when it is an
//! RV64GC instruction. Capstone (much slower, and it prints branch targets
//! as pc-relative immediates) is used only to render instructions; the
//! tests use it as a differential oracle.
//!
//! Branch kinds follow the ISA's return-address-stack hints (unprivileged
//! spec, table "Return-address stack prediction hints"): `jal`/`jalr` that
//! write a link register (`ra` = x1 or `t0` = x5) are calls; `jalr x0` from a
//! link register is a return; anything else is a jump.
//!
//! Address pairs (`auipc`+`addi`/`ld`/`jalr`, `lui`+`addi`) are followed
//! with [`RegConst`]: the decoder reports one register known to hold a
//! constant after each instruction, and carries it over instructions that
//! do not write that register, because gcc schedules the two halves of a
//! pair apart. [`RegConst::loaded`] and [`RegConst::carried`] say whether
//! the register holds the constant or the 8-byte word stored at it, and
//! whether the constant was set by the instruction itself.

use capstone::Capstone;
use capstone::arch::BuildsCapstone;
use capstone::arch::BuildsCapstoneExtraMode;
use capstone::arch::riscv::{ArchExtraMode, ArchMode};

use super::linear::{Machine, Val};
use super::risc::{self, bits, known, sext};
use super::{Canonicalise, Decode, Flow, IndirectTarget, Insn, RegConst, Render, StackEffect};
use crate::image::{Arch, Image};

const RA: u8 = 1;
const SP: u8 = 2;
const T0: u8 = 5;

mod decode;
mod resolve;

pub use decode::*;

/// The decoder for RV64GC.
#[derive(Debug, Clone, Default)]
pub struct RiscvDecoder {
    /// `lui`-built values are addresses (position-dependent executables,
    /// `-mcmodel=medlow`); in PIE code they are plain integers that would
    /// often look like code addresses (the image starts near 0).
    absolute: bool,
}

impl RiscvDecoder {
    /// A decoder for position-independent code: only `auipc`-relative
    /// values are taken for addresses.
    #[must_use]
    pub fn new() -> Self {
        RiscvDecoder { absolute: false }
    }

    /// A decoder that also takes `lui`-built values for addresses, for
    /// position-dependent executables.
    #[must_use]
    pub fn with_absolute_addresses(absolute: bool) -> Self {
        RiscvDecoder { absolute }
    }
}

fn konst(reg: u8, value: u64, loaded: bool) -> Option<RegConst> {
    (reg != 0).then(|| risc::konst(reg, value, loaded))
}

impl Decode for RiscvDecoder {
    fn arch(&self) -> Arch {
        Arch::Riscv64
    }

    fn alignment(&self) -> u64 {
        2
    }

    fn decode(&self, bytes: &[u8], addr: u64, prev: Option<&Insn>) -> Option<Insn> {
        if addr & 1 != 0 {
            return None;
        }
        let i = decode_raw(bytes)?;
        let next = addr.wrapping_add(u64::from(i.len));
        let rel = |imm: i64| addr.wrapping_add(imm as u64);
        let k = known(prev);
        // The base register's constant, if the tracked register is it.
        let base = |r: u8| k.filter(|&(kr, _, loaded, _)| kr == r && r != 0 && !loaded);
        let mut data_ref = None;
        let mut own: Option<Option<RegConst>> = None;
        let flow = match i.kind {
            Kind::Jal if is_link(i.rd) => Flow::Call(rel(i.imm)),
            Kind::Jal => Flow::Jump(rel(i.imm)),
            Kind::Jalr => {
                let call = is_link(i.rd);
                if !call && i.rd == 0 && is_link(i.rs1) {
                    Flow::Return
                } else if let Some((_, v, _, false)) = base(i.rs1) {
                    // `auipc`+`jalr` (the `call`/`tail` macros), adjacent.
                    let t = v.wrapping_add(i.imm as u64) & !1;
                    if call { Flow::Call(t) } else { Flow::Jump(t) }
                } else {
                    let slot = k
                        .filter(|&(kr, _, loaded, _)| kr == i.rs1 && loaded && i.imm == 0)
                        .map(|(_, v, _, _)| v);
                    if call {
                        Flow::IndirectCall { slot }
                    } else {
                        Flow::IndirectJump { slot }
                    }
                }
            }
            Kind::Branch(_) => Flow::CondJump(rel(i.imm)),
            Kind::Trap => Flow::Stop,
            Kind::TrapReturn => Flow::Return,
            _ => Flow::Seq,
        };
        match i.kind {
            Kind::Lui if self.absolute => own = Some(konst(i.rd, i.imm as u64, false)),
            Kind::Auipc => own = Some(konst(i.rd, rel(i.imm), false)),
            Kind::OpImm(Alu::Add) => {
                if let Some((_, v, _, _)) = base(i.rs1) {
                    let a = v.wrapping_add(i.imm as u64);
                    data_ref = Some(a);
                    own = Some(konst(i.rd, a, false));
                }
            }
            // `mv rd, rs` is `add rd, x0, rs`.
            Kind::Op(Alu::Add) if i.rs1 == 0 => {
                if let Some((_, v, loaded, _)) = k.filter(|&(kr, ..)| kr == i.rs2 && kr != 0) {
                    own = Some(konst(i.rd, v, loaded));
                }
            }
            Kind::Load { size, .. } => {
                if let Some((_, v, _, _)) = base(i.rs1) {
                    let a = v.wrapping_add(i.imm as u64);
                    data_ref = Some(a);
                    own = Some(konst(i.rd, a, true).filter(|_| size == 8));
                }
            }
            Kind::Store { .. } | Kind::FpMem => {
                if let Some((_, v, _, _)) = base(i.rs1) {
                    data_ref = Some(v.wrapping_add(i.imm as u64));
                }
            }
            _ => {}
        }
        // Carry the earlier constant over an instruction that does not
        // write its register. Calls clobber it (the builder resets `prev`
        // after them anyway).
        let writes = match i.kind {
            Kind::Store { .. } | Kind::FpMem | Kind::Branch(_) => None,
            _ => Some(i.rd),
        };
        let konst = risc::after(own, k, |kr| {
            writes == Some(kr) || matches!(flow, Flow::Call(_))
        });
        let _ = next;
        Some(Insn {
            addr,
            len: i.len,
            flow,
            data_ref,
            konst,
        })
    }

    fn is_padding(&self, bytes: &[u8], insn: &Insn) -> bool {
        match insn.len {
            2 => matches!(bytes.get(..2), Some([0x01, 0x00] | [0x00, 0x00])),
            4 => bytes.get(..4) == Some(&[0x13, 0x00, 0x00, 0x00]),
            _ => false,
        }
    }

    fn stack_effect(&self, bytes: &[u8], _insn: &Insn) -> StackEffect {
        match decode_raw(bytes) {
            Some(i) if i.rd == SP => match i.kind {
                Kind::OpImm(Alu::Add) if i.rs1 == SP && !i.word => StackEffect::Add(i.imm),
                Kind::Store { .. } | Kind::FpMem | Kind::Branch(_) => StackEffect::None,
                Kind::Trap | Kind::TrapReturn => StackEffect::None,
                _ => StackEffect::Unknown,
            },
            Some(_) => StackEffect::None,
            None => StackEffect::Unknown,
        }
    }
}

impl Canonicalise for RiscvDecoder {
    fn canonical_bytes(
        &self,
        bytes: &[u8],
        _addr: u64,
        span: (u64, u64),
        base: u64,
        out: &mut Vec<u8>,
    ) -> usize {
        let Some(i) = decode_raw(bytes) else {
            return 0;
        };
        let len = usize::from(i.len);
        let Some(raw) = bytes.get(..len) else {
            return 0;
        };
        let start = out.len();
        out.extend_from_slice(raw);
        // `lui` is the only RV64GC instruction that holds (the upper part
        // of) an absolute address: non-PIE code (`-mcmodel=medlow`) builds
        // addresses as `lui`+`addi`/load/store. The base is 4 KiB aligned,
        // so rebasing changes only the `lui` half; the low 12 bits in the
        // partner instruction are the same at every base.
        if i.kind == Kind::Lui && i.len == 4 {
            let v = i.imm as u64;
            // `%hi` rounds to the nearest page: the address may lie up to
            // 2 KiB below the value.
            let in_image = v >= span.0 && v <= span.1.saturating_add(0x800);
            if in_image && let Some(field) = out.get_mut(start..start.saturating_add(4)) {
                let mut w = [0u8; 4];
                w.copy_from_slice(field);
                let word = u32::from_le_bytes(w);
                let rebased = v.wrapping_sub(base) as u32 & 0xffff_f000;
                let new = (word & 0xfff) | rebased;
                field.copy_from_slice(&new.to_le_bytes());
            }
        }
        len
    }
}

impl Render for RiscvDecoder {
    fn render(&self, bytes: &[u8], addr: u64) -> Option<String> {
        let i = decode_raw(bytes)?;
        let raw = bytes.get(..usize::from(i.len))?;
        let text = with_capstone(|cs| risc::capstone_text(cs, raw, addr))?;
        // Capstone prints branch targets as pc-relative immediates; show
        // the absolute address like objdump does.
        let target = match i.kind {
            Kind::Jal | Kind::Branch(_) => Some(addr.wrapping_add(i.imm as u64)),
            _ => None,
        };
        Some(match target {
            Some(t) => match text.rsplit_once(' ') {
                Some((head, _)) => format!("{head} {t:#x}"),
                None => format!("{text} {t:#x}"),
            },
            None => text,
        })
    }
}

thread_local! {
    static CAPSTONE: risc::CapstoneSlot = const { std::cell::RefCell::new(None) };
}

/// Run `f` with this thread's RV64GC capstone handle.
fn with_capstone<T>(f: impl FnOnce(&Capstone) -> Option<T>) -> Option<T> {
    risc::with_capstone(&CAPSTONE, build_capstone, f)
}

fn build_capstone() -> Option<Capstone> {
    Capstone::new()
        .riscv()
        .mode(ArchMode::RiscV64)
        .extra_mode([ArchExtraMode::RiscVC].into_iter())
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(bytes: &[u8]) -> Option<Rv> {
        decode_raw(bytes)
    }

    #[test]
    fn classifies_calls_jumps_and_returns() {
        let dec = RiscvDecoder::new();
        let at = |b: &[u8]| dec.decode(b, 0x1000, None).map(|i| i.flow);
        // jal ra, +0x20
        assert_eq!(at(&0x0200_00efu32.to_le_bytes()), Some(Flow::Call(0x1020)));
        // j -4 (jal x0)
        assert_eq!(at(&0xffdf_f06fu32.to_le_bytes()), Some(Flow::Jump(0xffc)));
        // ret (jalr x0, 0(ra)) and c.jr ra
        assert_eq!(at(&0x0000_8067u32.to_le_bytes()), Some(Flow::Return));
        assert_eq!(at(&[0x82, 0x80]), Some(Flow::Return));
        // jalr ra, 0(a5) / c.jalr a5: indirect calls
        assert_eq!(
            at(&0x0007_80e7u32.to_le_bytes()),
            Some(Flow::IndirectCall { slot: None })
        );
        assert_eq!(at(&[0x82, 0x97]), Some(Flow::IndirectCall { slot: None }));
        // c.jr a5: indirect jump
        assert_eq!(at(&[0x82, 0x87]), Some(Flow::IndirectJump { slot: None }));
        // c.j +0 / c.beqz a0, +8
        assert_eq!(at(&[0x01, 0xa0]), Some(Flow::Jump(0x1000)));
        assert_eq!(at(&[0x01, 0xc5]), Some(Flow::CondJump(0x1008)));
        // ebreak, c.ebreak, c.unimp
        assert_eq!(at(&0x0010_0073u32.to_le_bytes()), Some(Flow::Stop));
        assert_eq!(at(&[0x02, 0x90]), Some(Flow::Stop));
        assert_eq!(at(&[0x00, 0x00]), Some(Flow::Stop));
    }

    #[test]
    fn auipc_pairs_resolve_calls_slots_and_addresses() {
        let dec = RiscvDecoder::new();
        // auipc ra, 0x1 ; jalr ra, -16(ra)  => call 0x1000 + 0x1000 - 16
        let a = dec
            .decode(&0x0000_1097u32.to_le_bytes(), 0x1000, None)
            .unwrap();
        let j = dec
            .decode(&0xff00_80e7u32.to_le_bytes(), 0x1004, Some(&a))
            .unwrap();
        assert_eq!(j.flow, Flow::Call(0x1ff0));
        // PLT stub: auipc t3, 0x12 ; ld t3, -1400(t3) ; jalr t1, t3
        let a = dec
            .decode(&0x0001_2e17u32.to_le_bytes(), 0x11d0, None)
            .unwrap();
        let l = dec
            .decode(&0xa88e_3e03u32.to_le_bytes(), 0x11d4, Some(&a))
            .unwrap();
        assert_eq!(l.data_ref, Some(0x12c58));
        let j = dec
            .decode(&0x000e_0367u32.to_le_bytes(), 0x11d8, Some(&l))
            .unwrap();
        assert_eq!(
            j.flow,
            Flow::IndirectJump {
                slot: Some(0x12c58)
            }
        );
        // auipc a0, 0x11 ; c.li a1, 0 (carried) ; addi a0, a0, -190
        let a = dec
            .decode(&0x0001_1517u32.to_le_bytes(), 0x1d06, None)
            .unwrap();
        let li = dec.decode(&[0x81, 0x45], 0x1d0a, Some(&a)).unwrap();
        assert_eq!(li.konst.map(|k| k.carried), Some(true));
        let ad = dec
            .decode(&0xf425_0513u32.to_le_bytes(), 0x1d0c, Some(&li))
            .unwrap();
        assert_eq!(ad.data_ref, Some(0x12c48));
    }

    #[test]
    fn rejects_reserved_encodings() {
        assert!(d(&[0x00, 0x80]).is_none()); // c.addi4spn-space reserved (f3=4)
        assert!(d(&0x0000_707fu32.to_le_bytes()).is_none()); // 64-bit encodings
        assert!(d(&0x0000_2063u32.to_le_bytes()).is_none()); // branch f3=2
        assert!(d(&0x4000_1013u32.to_le_bytes()).is_none()); // slli with bad funct6
        assert!(d(&[0x13]).is_none());
        assert!(d(&[]).is_none());
    }

    #[test]
    fn lui_is_rebased_in_canonical_bytes() {
        let dec = RiscvDecoder::new();
        // lui a5, 0x412
        let w = 0x0041_27b7u32.to_le_bytes();
        let mut out = Vec::new();
        let n = dec.canonical_bytes(&w, 0x400100, (0x400000, 0x420000), 0x400000, &mut out);
        assert_eq!(n, 4);
        assert_eq!(u32::from_le_bytes(out.try_into().unwrap()), 0x0001_27b7);
        // A constant outside the image is kept.
        let mut out = Vec::new();
        dec.canonical_bytes(&w, 0x400100, (0x800000, 0x820000), 0x800000, &mut out);
        assert_eq!(out, w);
    }
}
