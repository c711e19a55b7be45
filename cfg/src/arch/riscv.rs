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
//! pair apart. Flags in the high bits of [`RegConst::reg`] (see
//! [`LOADED`], [`CARRIED`]) say whether the register holds the constant or
//! the 8-byte word stored at it, and whether the constant was set by the
//! instruction itself.

use std::cell::RefCell;

use capstone::Capstone;
use capstone::arch::BuildsCapstone;
use capstone::arch::BuildsCapstoneExtraMode;
use capstone::arch::riscv::{ArchExtraMode, ArchMode};

use super::linear::{Machine, Val};
use super::{Decoder, Flow, IndirectTarget, Insn, RegConst, StackEffect};
use crate::image::{Arch, Image};

/// [`RegConst::reg`] flag: the register holds the 8-byte word stored at
/// `value` (`auipc t3, ..; ld t3, ..(t3)` of a PLT stub), not `value`.
pub const LOADED: u16 = 0x100;
/// [`RegConst::reg`] flag: the constant was set by an earlier instruction
/// and carried over this one, which does not write the register.
pub const CARRIED: u16 = 0x200;
const REG_MASK: u16 = 0x1f;

const RA: u8 = 1;
const SP: u8 = 2;
const T0: u8 = 5;

/// Operation classes after expansion of compressed forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `lui rd, imm` (`imm` is the value, already shifted).
    Lui,
    /// `auipc rd, imm` (`imm` is the offset, already shifted).
    Auipc,
    /// `jal rd, pc+imm`.
    Jal,
    /// `jalr rd, imm(rs1)`.
    Jalr,
    /// Conditional branch to `pc+imm`.
    Branch(Cond),
    /// Integer load of `size` bytes from `imm(rs1)`.
    Load {
        /// Bytes.
        size: u8,
        /// Sign-extended.
        signed: bool,
    },
    /// Integer store of rs2 (`size` bytes) to `imm(rs1)`.
    Store {
        /// Bytes.
        size: u8,
    },
    /// Floating-point load or store at `imm(rs1)` (no integer register
    /// written).
    FpMem,
    /// Register-immediate ALU operation, `rd = rs1 op imm`.
    OpImm(Alu),
    /// Register-register ALU operation, `rd = rs1 op rs2`.
    Op(Alu),
    /// Anything that writes integer register `rd` with no control flow or
    /// value the analysis follows (when `rd` is 0 it writes nothing).
    Other,
    /// `ebreak`, `c.ebreak`, `unimp`, `c.unimp`: a trap.
    Trap,
    /// `mret`, `sret`, `uret`: return from a trap handler.
    TrapReturn,
}

/// Branch conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// `beq`
    Eq,
    /// `bne`
    Ne,
    /// `blt`
    Lt,
    /// `bge`
    Ge,
    /// `bltu`
    Ltu,
    /// `bgeu`
    Geu,
}

/// ALU operations the jump-table interpreter follows (the `w` forms are
/// followed as their 64-bit forms: on the bounded indices that matter the
/// results agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alu {
    /// add, addi, addw, addiw
    Add,
    /// sub, subw
    Sub,
    /// sll(i)(w)
    Sll,
    /// srl(i)(w)
    Srl,
    /// sra(i)(w)
    Sra,
    /// and, andi
    And,
    /// or, ori
    Or,
    /// Anything else (slt, xor, mul, div, ...).
    Other,
}

/// One RV64GC instruction, compressed forms expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rv {
    /// 2 or 4.
    pub len: u8,
    /// What it does.
    pub kind: Kind,
    /// Destination integer register (0 when none).
    pub rd: u8,
    /// First source register.
    pub rs1: u8,
    /// Second source register.
    pub rs2: u8,
    /// Immediate, sign-extended (shift amounts for shifts).
    pub imm: i64,
    /// Whether it is a `w` (32-bit) operation.
    pub word: bool,
}

fn bits(w: u32, hi: u32, lo: u32) -> u32 {
    (w >> lo) & ((1u32 << (hi - lo + 1)) - 1)
}

fn sext(v: u32, width: u32) -> i64 {
    let sh = 64 - width;
    ((u64::from(v) << sh) as i64) >> sh
}

fn rv(len: u8, kind: Kind, rd: u32, rs1: u32, rs2: u32, imm: i64) -> Option<Rv> {
    Some(Rv {
        len,
        kind,
        rd: u8::try_from(rd).ok()?,
        rs1: u8::try_from(rs1).ok()?,
        rs2: u8::try_from(rs2).ok()?,
        imm,
        word: false,
    })
}

fn rm_ok(rm: u32) -> bool {
    rm <= 4 || rm == 7
}

/// Decode the instruction at the start of `bytes`. `None` when the bytes
/// are too short or not an RV64GC instruction.
#[must_use]
pub fn decode_raw(bytes: &[u8]) -> Option<Rv> {
    let lo = u16::from_le_bytes([*bytes.first()?, *bytes.get(1)?]);
    if lo & 3 != 3 {
        return compressed(lo);
    }
    if lo & 0x1c == 0x1c {
        // 48-bit and longer encodings: none in RV64GC.
        return None;
    }
    let w = u32::from_le_bytes([
        *bytes.first()?,
        *bytes.get(1)?,
        *bytes.get(2)?,
        *bytes.get(3)?,
    ]);
    full(w)
}

#[allow(clippy::too_many_lines)]
fn full(w: u32) -> Option<Rv> {
    let opcode = w & 0x7f;
    let rd = bits(w, 11, 7);
    let f3 = bits(w, 14, 12);
    let rs1 = bits(w, 19, 15);
    let rs2 = bits(w, 24, 20);
    let f7 = bits(w, 31, 25);
    let imm_i = sext(bits(w, 31, 20), 12);
    let imm_s = sext((bits(w, 31, 25) << 5) | bits(w, 11, 7), 12);
    let one = |kind, imm| rv(4, kind, rd, rs1, rs2, imm);
    let word = |r: Option<Rv>| {
        r.map(|mut x| {
            x.word = true;
            x
        })
    };
    match opcode {
        0x03 => {
            let (size, signed) = match f3 {
                0 => (1, true),
                1 => (2, true),
                2 => (4, true),
                3 => (8, true),
                4 => (1, false),
                5 => (2, false),
                6 => (4, false),
                _ => return None,
            };
            one(Kind::Load { size, signed }, imm_i)
        }
        0x07 => match f3 {
            2 | 3 => rv(4, Kind::FpMem, 0, rs1, 0, imm_i),
            _ => None,
        },
        0x0f => {
            // fence with fm 0 (any pred/succ) or fence.tso, and fence.i; rd,
            // rs1 and the other fm values are reserved (zero in real code).
            let fm = bits(w, 31, 28);
            let ok = rd == 0
                && rs1 == 0
                && match f3 {
                    0 => fm == 0 || (fm == 8 && bits(w, 27, 20) == 0x33),
                    1 => bits(w, 31, 20) == 0,
                    _ => false,
                };
            ok.then_some(())?;
            rv(4, Kind::Other, 0, 0, 0, 0)
        }
        0x13 => {
            let alu = match f3 {
                0 => Alu::Add,
                1 => {
                    if bits(w, 31, 26) != 0 {
                        return None;
                    }
                    return rv(
                        4,
                        Kind::OpImm(Alu::Sll),
                        rd,
                        rs1,
                        0,
                        i64::from(bits(w, 25, 20)),
                    );
                }
                5 => {
                    let alu = match bits(w, 31, 26) {
                        0 => Alu::Srl,
                        0x10 => Alu::Sra,
                        _ => return None,
                    };
                    return rv(4, Kind::OpImm(alu), rd, rs1, 0, i64::from(bits(w, 25, 20)));
                }
                6 => Alu::Or,
                7 => Alu::And,
                _ => Alu::Other,
            };
            rv(4, Kind::OpImm(alu), rd, rs1, 0, imm_i)
        }
        0x17 => rv(4, Kind::Auipc, rd, 0, 0, sext(w & 0xffff_f000, 32)),
        0x1b => word(match f3 {
            0 => rv(4, Kind::OpImm(Alu::Add), rd, rs1, 0, imm_i),
            1 if f7 == 0 => rv(4, Kind::OpImm(Alu::Sll), rd, rs1, 0, i64::from(rs2)),
            5 if f7 == 0 => rv(4, Kind::OpImm(Alu::Srl), rd, rs1, 0, i64::from(rs2)),
            5 if f7 == 0x20 => rv(4, Kind::OpImm(Alu::Sra), rd, rs1, 0, i64::from(rs2)),
            _ => None,
        }),
        0x23 => match f3 {
            0..=3 => rv(4, Kind::Store { size: 1 << f3 }, 0, rs1, rs2, imm_s),
            _ => None,
        },
        0x27 => match f3 {
            2 | 3 => rv(4, Kind::FpMem, 0, rs1, rs2, imm_s),
            _ => None,
        },
        0x2f => {
            let f5 = bits(w, 31, 27);
            let ok = matches!(f3, 2 | 3)
                && match f5 {
                    2 => rs2 == 0, // lr
                    0 | 1 | 3 | 4 | 8 | 0xc | 0x10 | 0x14 | 0x18 | 0x1c => true,
                    _ => false,
                };
            ok.then_some(())?;
            rv(4, Kind::Other, rd, rs1, rs2, 0)
        }
        0x33 => {
            let alu = match (f7, f3) {
                (0, 0) => Alu::Add,
                (0x20, 0) => Alu::Sub,
                (0, 1) => Alu::Sll,
                (0, 5) => Alu::Srl,
                (0x20, 5) => Alu::Sra,
                (0, 7) => Alu::And,
                (0, 6) => Alu::Or,
                (0, _) | (1, _) => Alu::Other,
                _ => return None,
            };
            rv(4, Kind::Op(alu), rd, rs1, rs2, 0)
        }
        0x37 => rv(4, Kind::Lui, rd, 0, 0, sext(w & 0xffff_f000, 32)),
        0x3b => {
            let alu = match (f7, f3) {
                (0, 0) => Alu::Add,
                (0x20, 0) => Alu::Sub,
                (0, 1) => Alu::Sll,
                (0, 5) => Alu::Srl,
                (0x20, 5) => Alu::Sra,
                (1, 0 | 4 | 5 | 6 | 7) => Alu::Other,
                _ => return None,
            };
            word(rv(4, Kind::Op(alu), rd, rs1, rs2, 0))
        }
        0x43 | 0x47 | 0x4b | 0x4f => {
            (bits(w, 26, 25) <= 1 && rm_ok(f3)).then_some(())?;
            rv(4, Kind::Other, 0, 0, 0, 0)
        }
        0x53 => {
            let ok = match f7 {
                0x00 | 0x01 | 0x04 | 0x05 | 0x08 | 0x09 | 0x0c | 0x0d => rm_ok(f3),
                0x2c | 0x2d => rs2 == 0 && rm_ok(f3),
                0x10 | 0x11 => f3 <= 2,
                0x14 | 0x15 => f3 <= 1,
                0x20 => rs2 == 1 && rm_ok(f3),
                0x21 => rs2 == 0 && rm_ok(f3),
                0x50 | 0x51 => f3 <= 2,
                0x60 | 0x61 | 0x68 | 0x69 => rs2 <= 3 && rm_ok(f3),
                0x70 | 0x71 => rs2 == 0 && f3 <= 1,
                0x78 | 0x79 => rs2 == 0 && f3 == 0,
                _ => false,
            };
            ok.then_some(())?;
            // Comparisons, fclass and moves/conversions to integer write rd.
            let writes_int = matches!(f7, 0x50 | 0x51 | 0x60 | 0x61 | 0x70 | 0x71);
            rv(4, Kind::Other, if writes_int { rd } else { 0 }, 0, 0, 0)
        }
        0x63 => {
            let cond = match f3 {
                0 => Cond::Eq,
                1 => Cond::Ne,
                4 => Cond::Lt,
                5 => Cond::Ge,
                6 => Cond::Ltu,
                7 => Cond::Geu,
                _ => return None,
            };
            let imm = (bits(w, 31, 31) << 12)
                | (bits(w, 7, 7) << 11)
                | (bits(w, 30, 25) << 5)
                | (bits(w, 11, 8) << 1);
            rv(4, Kind::Branch(cond), 0, rs1, rs2, sext(imm, 13))
        }
        0x67 if f3 == 0 => one(Kind::Jalr, imm_i),
        0x6f => {
            let imm = (bits(w, 31, 31) << 20)
                | (bits(w, 19, 12) << 12)
                | (bits(w, 20, 20) << 11)
                | (bits(w, 30, 21) << 1);
            rv(4, Kind::Jal, rd, 0, 0, sext(imm, 21))
        }
        0x73 => match f3 {
            0 => match w {
                0x0000_0073 => rv(4, Kind::Other, 0, 0, 0, 0), // ecall
                0x0010_0073 => rv(4, Kind::Trap, 0, 0, 0, 0),  // ebreak
                0x0020_0073 | 0x1020_0073 | 0x3020_0073 => rv(4, Kind::TrapReturn, 0, 0, 0, 0),
                0x1050_0073 => rv(4, Kind::Other, 0, 0, 0, 0), // wfi
                _ if f7 == 0x09 && rd == 0 => rv(4, Kind::Other, 0, 0, 0, 0), // sfence.vma
                _ => None,
            },
            4 => None,
            // `unimp` is `csrrw x0, cycle, x0`: it traps (cycle is read-only).
            _ if w == 0xc000_1073 => rv(4, Kind::Trap, 0, 0, 0, 0),
            _ => rv(4, Kind::Other, rd, rs1, 0, 0),
        },
        _ => None,
    }
}

fn cbits(w: u16, hi: u32, lo: u32) -> u32 {
    bits(u32::from(w), hi, lo)
}

#[allow(clippy::too_many_lines)]
fn compressed(h: u16) -> Option<Rv> {
    let op = h & 3;
    let f3 = cbits(h, 15, 13);
    let rd = cbits(h, 11, 7);
    let rs2 = cbits(h, 6, 2);
    let rdp = cbits(h, 4, 2) + 8; // rd' / rs2'
    let rs1p = cbits(h, 9, 7) + 8; // rs1' / rd'
    let imm6 = sext((cbits(h, 12, 12) << 5) | cbits(h, 6, 2), 6);
    let c = |kind, rd, rs1, rs2, imm| rv(2, kind, rd, rs1, rs2, imm);
    // Offsets of the register-based loads and stores (zero-extended).
    let uimm_w = i64::from((cbits(h, 12, 10) << 3) | (cbits(h, 6, 6) << 2) | (cbits(h, 5, 5) << 6));
    let uimm_d = i64::from((cbits(h, 12, 10) << 3) | (cbits(h, 6, 5) << 6));
    match (op, f3) {
        (0, 0) => {
            if h == 0 {
                // c.unimp: the all-zero halfword is defined illegal.
                return c(Kind::Trap, 0, 0, 0, 0);
            }
            let nzuimm = (cbits(h, 12, 11) << 4)
                | (cbits(h, 10, 7) << 6)
                | (cbits(h, 6, 6) << 2)
                | (cbits(h, 5, 5) << 3);
            (nzuimm != 0).then_some(())?;
            c(
                Kind::OpImm(Alu::Add),
                rdp,
                u32::from(SP),
                0,
                i64::from(nzuimm),
            )
        }
        (0, 1) => c(Kind::FpMem, 0, rs1p, 0, uimm_d),
        (0, 2) => c(
            Kind::Load {
                size: 4,
                signed: true,
            },
            rdp,
            rs1p,
            0,
            uimm_w,
        ),
        (0, 3) => c(
            Kind::Load {
                size: 8,
                signed: true,
            },
            rdp,
            rs1p,
            0,
            uimm_d,
        ),
        (0, 4) => None,
        (0, 5) => c(Kind::FpMem, 0, rs1p, rdp, uimm_d),
        (0, 6) => c(Kind::Store { size: 4 }, 0, rs1p, rdp, uimm_w),
        (0, 7) => c(Kind::Store { size: 8 }, 0, rs1p, rdp, uimm_d),
        // `c.addi x0, imm` (imm != 0) is a HINT no compiler emits; `c.nop`
        // is the all-zero form.
        (1, 0) if rd == 0 && imm6 != 0 => None,
        (1, 0) => c(Kind::OpImm(Alu::Add), rd, rd, 0, imm6),
        (1, 1) => {
            (rd != 0).then_some(())?;
            c(Kind::OpImm(Alu::Add), rd, rd, 0, imm6).map(|mut x| {
                x.word = true;
                x
            })
        }
        (1, 2) if rd == 0 => None, // HINT
        (1, 2) => c(Kind::OpImm(Alu::Add), rd, 0, 0, imm6),
        (1, 3) => {
            if rd == u32::from(SP) {
                let nz = (cbits(h, 12, 12) << 9)
                    | (cbits(h, 6, 6) << 4)
                    | (cbits(h, 5, 5) << 6)
                    | (cbits(h, 4, 3) << 7)
                    | (cbits(h, 2, 2) << 5);
                (nz != 0).then_some(())?;
                c(Kind::OpImm(Alu::Add), rd, rd, 0, sext(nz, 10))
            } else {
                let nz = (cbits(h, 12, 12) << 17) | (cbits(h, 6, 2) << 12);
                // nzimm 0 is reserved, rd 0 a HINT.
                (nz != 0 && rd != 0).then_some(())?;
                c(Kind::Lui, rd, 0, 0, sext(nz, 18))
            }
        }
        (1, 4) => {
            let shamt = i64::from((cbits(h, 12, 12) << 5) | cbits(h, 6, 2));
            match cbits(h, 11, 10) {
                0 => c(Kind::OpImm(Alu::Srl), rs1p, rs1p, 0, shamt),
                1 => c(Kind::OpImm(Alu::Sra), rs1p, rs1p, 0, shamt),
                2 => c(Kind::OpImm(Alu::And), rs1p, rs1p, 0, imm6),
                _ => {
                    let alu = match (cbits(h, 12, 12), cbits(h, 6, 5)) {
                        (0, 0) => Alu::Sub,
                        (0, 1) => Alu::Other, // xor
                        (0, 2) => Alu::Or,
                        (0, 3) => Alu::And,
                        (1, 0) => Alu::Sub, // subw
                        (1, 1) => Alu::Add, // addw
                        _ => return None,
                    };
                    c(Kind::Op(alu), rs1p, rs1p, rdp, 0).map(|mut x| {
                        x.word = cbits(h, 12, 12) == 1;
                        x
                    })
                }
            }
        }
        (1, 5) => {
            let off = (cbits(h, 12, 12) << 11)
                | (cbits(h, 11, 11) << 4)
                | (cbits(h, 10, 9) << 8)
                | (cbits(h, 8, 8) << 10)
                | (cbits(h, 7, 7) << 6)
                | (cbits(h, 6, 6) << 7)
                | (cbits(h, 5, 3) << 1)
                | (cbits(h, 2, 2) << 5);
            c(Kind::Jal, 0, 0, 0, sext(off, 12))
        }
        (1, 6 | 7) => {
            let off = (cbits(h, 12, 12) << 8)
                | (cbits(h, 11, 10) << 3)
                | (cbits(h, 6, 5) << 6)
                | (cbits(h, 4, 3) << 1)
                | (cbits(h, 2, 2) << 5);
            let cond = if f3 == 6 { Cond::Eq } else { Cond::Ne };
            c(Kind::Branch(cond), 0, rs1p, 0, sext(off, 9))
        }
        (2, 0) if rd == 0 => None, // HINT
        (2, 0) => {
            let shamt = i64::from((cbits(h, 12, 12) << 5) | cbits(h, 6, 2));
            c(Kind::OpImm(Alu::Sll), rd, rd, 0, shamt)
        }
        (2, 1) => {
            let off = (cbits(h, 12, 12) << 5) | (cbits(h, 6, 5) << 3) | (cbits(h, 4, 2) << 6);
            c(Kind::FpMem, 0, u32::from(SP), 0, i64::from(off))
        }
        (2, 2) => {
            (rd != 0).then_some(())?;
            let off = (cbits(h, 12, 12) << 5) | (cbits(h, 6, 4) << 2) | (cbits(h, 3, 2) << 6);
            c(
                Kind::Load {
                    size: 4,
                    signed: true,
                },
                rd,
                u32::from(SP),
                0,
                i64::from(off),
            )
        }
        (2, 3) => {
            (rd != 0).then_some(())?;
            let off = (cbits(h, 12, 12) << 5) | (cbits(h, 6, 5) << 3) | (cbits(h, 4, 2) << 6);
            c(
                Kind::Load {
                    size: 8,
                    signed: true,
                },
                rd,
                u32::from(SP),
                0,
                i64::from(off),
            )
        }
        (2, 4) => match (cbits(h, 12, 12), rd, rs2) {
            (0, 0, 0) => None,
            // c.mv / c.add to x0: HINTs.
            (_, 0, r) if r != 0 => None,
            (0, _, 0) => c(Kind::Jalr, 0, rd, 0, 0),
            (0, _, _) => c(Kind::Op(Alu::Add), rd, 0, rs2, 0),
            (_, 0, 0) => c(Kind::Trap, 0, 0, 0, 0),
            (_, _, 0) => c(Kind::Jalr, u32::from(RA), rd, 0, 0),
            _ => c(Kind::Op(Alu::Add), rd, rd, rs2, 0),
        },
        (2, 5) => {
            let off = (cbits(h, 12, 10) << 3) | (cbits(h, 9, 7) << 6);
            c(Kind::FpMem, 0, u32::from(SP), rs2, i64::from(off))
        }
        (2, 6) => {
            let off = (cbits(h, 12, 9) << 2) | (cbits(h, 8, 7) << 6);
            c(
                Kind::Store { size: 4 },
                0,
                u32::from(SP),
                rs2,
                i64::from(off),
            )
        }
        (2, 7) => {
            let off = (cbits(h, 12, 10) << 3) | (cbits(h, 9, 7) << 6);
            c(
                Kind::Store { size: 8 },
                0,
                u32::from(SP),
                rs2,
                i64::from(off),
            )
        }
        _ => None,
    }
}

fn is_link(r: u8) -> bool {
    r == RA || r == T0
}

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

/// The constant `prev` leaves in a register, split into (register, value,
/// loaded, carried).
fn known(prev: Option<&Insn>) -> Option<(u8, u64, bool, bool)> {
    let k = prev?.konst?;
    let reg = u8::try_from(k.reg & REG_MASK).ok()?;
    Some((reg, k.value, k.reg & LOADED != 0, k.reg & CARRIED != 0))
}

fn konst(reg: u8, value: u64, loaded: bool) -> Option<RegConst> {
    (reg != 0).then_some(RegConst {
        reg: u16::from(reg) | if loaded { LOADED } else { 0 },
        value,
    })
}

impl Decoder for RiscvDecoder {
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
        let konst = match own {
            Some(c) => c,
            None => {
                // Carry the earlier constant over an instruction that does
                // not write its register. Calls clobber it (the builder
                // resets `prev` after them anyway).
                let writes = match i.kind {
                    Kind::Store { .. } | Kind::FpMem | Kind::Branch(_) => None,
                    _ => Some(i.rd),
                };
                k.filter(|&(kr, ..)| writes != Some(kr) && !matches!(flow, Flow::Call(_)))
                    .map(|(kr, v, loaded, _)| RegConst {
                        reg: u16::from(kr) | CARRIED | if loaded { LOADED } else { 0 },
                        value: v,
                    })
            }
        };
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

    fn resolve_indirect(&self, image: &Image<'_>, path: &[u64]) -> Option<IndirectTarget> {
        resolve_path(image, path, &[], &Some)
    }

    fn resolve_indirect_in(
        &self,
        image: &Image<'_>,
        path: &[u64],
        starts: &[usize],
        function: &[u64],
        admit: &dyn Fn(IndirectTarget) -> Option<IndirectTarget>,
    ) -> Option<IndirectTarget> {
        // A switch in a loop whose table base and bound were set once
        // before the loop (see `resolve_with_invariants`), then, last,
        // other paths through the joins.
        super::linear::resolve_with_invariants(
            path,
            starts,
            || invariant_registers(image, function),
            |p, seeds| resolve_path(image, p, seeds, admit),
        )
        .or_else(|| {
            let preds = super::linear::flow_preds(self, image, function);
            super::linear::resolve_on_join_paths(*path.last()?, &preds, |p| {
                resolve_path(image, p, &[], admit)
            })
        })
    }

    fn plt_header_size(&self) -> u64 {
        // psABI: the resolver stub (PLT0) is 8 instructions; each import
        // stub after it is 4.
        32
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

    fn render(&self, bytes: &[u8], addr: u64) -> Option<String> {
        let i = decode_raw(bytes)?;
        let raw = bytes.get(..usize::from(i.len))?;
        let text = with_capstone(|cs| super::capstone_text(cs, raw, addr))?;
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
    static CAPSTONE: RefCell<Option<Capstone>> = const { RefCell::new(None) };
}

/// Run `f` with this thread's RV64GC capstone handle (capstone handles are
/// not `Sync`; rendering is rare enough that one per thread is plenty).
fn with_capstone<T>(f: impl FnOnce(&Capstone) -> Option<T>) -> Option<T> {
    CAPSTONE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Capstone::new()
                .riscv()
                .mode(ArchMode::RiscV64)
                .extra_mode([ArchExtraMode::RiscVC].into_iter())
                .build()
                .ok();
        }
        f(slot.as_ref()?)
    })
}

/// Interpret `path` (the indirect jump last) with `seeds` preset, with
/// store-to-load forwarding and then without (see
/// `Machine::without_store_forwarding`), and return the first answer
/// `admit` lets through.
fn resolve_path(
    image: &Image<'_>,
    path: &[u64],
    seeds: &[(u16, u64)],
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
    super::linear::interpret_path(image, Some(0), admit, |mut m| {
        for &(r, v) in seeds {
            m.preset(r, v);
        }
        for (idx, &(a, i)) in body.iter().enumerate() {
            let next = insns.get(idx.checked_add(1)?).map(|x| x.0);
            step(&mut m, a, &i, next);
        }
        let target = m.reg(u16::from(jump.rs1)).add_const(jump.imm as u64);
        Some((m, target))
    })
}

/// Registers defined exactly once in `function`, by a constant (`li`,
/// `lui`, `auipc`, each optionally followed at once by `addi` to the same
/// register): their value is that constant wherever the definition has
/// run. Epilogue restores (`ld sN, off(sp)`) are not definitions; the
/// caller-saved registers do not qualify when the function calls anything.
fn invariant_registers(image: &Image<'_>, function: &[u64]) -> Vec<(u16, u64)> {
    use std::collections::BTreeMap;
    // reg -> (definitions, constant value of the only one, if constant)
    let mut defs: BTreeMap<u8, (u32, Option<u64>)> = BTreeMap::new();
    let mut calls = false;
    let mut prev: Option<(u64, Rv)> = None;
    for &a in function {
        let Some(i) = image.bytes_from(a).and_then(decode_raw) else {
            prev = None;
            continue;
        };
        let rd = i.rd;
        let pair_of_prev = prev.is_some_and(|(pa, p)| {
            pa.wrapping_add(u64::from(p.len)) == a
                && matches!(p.kind, Kind::Lui | Kind::Auipc)
                && p.rd == rd
                && i.kind == Kind::OpImm(Alu::Add)
                && i.rs1 == rd
        });
        let restore = matches!(i.kind, Kind::Load { .. }) && i.rs1 == SP && is_callee_saved(rd);
        match i.kind {
            Kind::Jal | Kind::Jalr if is_link(rd) => calls = true,
            _ => {}
        }
        let writes = !matches!(
            i.kind,
            Kind::Store { .. } | Kind::FpMem | Kind::Branch(_) | Kind::Trap | Kind::TrapReturn
        ) && rd != 0;
        if writes && !restore {
            let e = defs.entry(rd).or_insert((0, None));
            if pair_of_prev {
                e.1 = e.1.map(|v| v.wrapping_add(i.imm as u64));
            } else {
                e.0 = e.0.saturating_add(1);
                e.1 = match i.kind {
                    Kind::Lui => Some(i.imm as u64),
                    Kind::Auipc => Some(a.wrapping_add(i.imm as u64)),
                    Kind::OpImm(Alu::Add) if i.rs1 == 0 => Some(i.imm as u64),
                    _ => None,
                };
            }
        }
        prev = Some((a, i));
    }
    defs.into_iter()
        .filter(|&(r, (n, v))| n == 1 && v.is_some() && r != SP && (!calls || is_callee_saved(r)))
        .filter_map(|(r, (_, v))| Some((u16::from(r), v?)))
        .collect()
}

/// s0-s11 (x8, x9, x18-x27): preserved across calls.
fn is_callee_saved(r: u8) -> bool {
    matches!(r, 8 | 9 | 18..=27)
}

/// Caller-saved integer registers (ra, t0-t6, a0-a7): a call clobbers them.
const CALLER_SAVED: [u16; 16] = [1, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17, 28, 29, 30, 31];

/// One instruction of the path to an indirect jump, over linear values.
/// `next` is the address executed after it on the path (which way a branch
/// went).
fn step(m: &mut Machine, addr: u64, i: &Rv, next: Option<u64>) {
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

fn alu_imm(m: &mut Machine, alu: Alu, a: &Val, imm: u64, word: bool) -> Val {
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
        assert_eq!(li.konst.map(|k| k.reg & CARRIED), Some(CARRIED));
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
