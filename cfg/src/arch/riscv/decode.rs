//! The RV64GC raw decoder: 16- and 32-bit words to [`Rv`], compressed forms
//! expanded, every reserved field checked.

use super::*;

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

pub(super) fn rv(len: u8, kind: Kind, rd: u32, rs1: u32, rs2: u32, imm: i64) -> Option<Rv> {
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

pub(super) fn rm_ok(rm: u32) -> bool {
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
pub(super) fn full(w: u32) -> Option<Rv> {
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
            let alu = add_or_shift(f7, f3).or(match (f7, f3) {
                (0, 7) => Some(Alu::And),
                (0, 6) => Some(Alu::Or),
                (0, _) | (1, _) => Some(Alu::Other),
                _ => None,
            })?;
            rv(4, Kind::Op(alu), rd, rs1, rs2, 0)
        }
        0x37 => rv(4, Kind::Lui, rd, 0, 0, sext(w & 0xffff_f000, 32)),
        0x3b => {
            let alu = add_or_shift(f7, f3).or(match (f7, f3) {
                (1, 0 | 4 | 5 | 6 | 7) => Some(Alu::Other),
                _ => None,
            })?;
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

pub(super) fn cbits(w: u16, hi: u32, lo: u32) -> u32 {
    bits(u32::from(w), hi, lo)
}

#[allow(clippy::too_many_lines)]
pub(super) fn compressed(h: u16) -> Option<Rv> {
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
    // Offsets of the stack-pointer based ones (zero-extended; only the
    // arm that needs one computes it).
    let sp_load_w =
        || i64::from((cbits(h, 12, 12) << 5) | (cbits(h, 6, 4) << 2) | (cbits(h, 3, 2) << 6));
    let sp_load_d =
        || i64::from((cbits(h, 12, 12) << 5) | (cbits(h, 6, 5) << 3) | (cbits(h, 4, 2) << 6));
    let sp_store_w = || i64::from((cbits(h, 12, 9) << 2) | (cbits(h, 8, 7) << 6));
    let sp_store_d = || i64::from((cbits(h, 12, 10) << 3) | (cbits(h, 9, 7) << 6));
    // Loads and stores come in pairs: the even funct3 moves a word, the
    // odd one a doubleword.
    let word_or_double = |w: i64, d: i64| if f3 & 1 == 0 { (4u8, w) } else { (8u8, d) };
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
        (0, 2 | 3) => {
            let (size, off) = word_or_double(uimm_w, uimm_d);
            c(Kind::Load { size, signed: true }, rdp, rs1p, 0, off)
        }
        (0, 4) => None,
        (0, 5) => c(Kind::FpMem, 0, rs1p, rdp, uimm_d),
        (0, 6 | 7) => {
            let (size, off) = word_or_double(uimm_w, uimm_d);
            c(Kind::Store { size }, 0, rs1p, rdp, off)
        }
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
        (2, 1) => c(Kind::FpMem, 0, u32::from(SP), 0, sp_load_d()),
        (2, 2 | 3) => {
            (rd != 0).then_some(())?;
            let (size, off) = word_or_double(sp_load_w(), sp_load_d());
            c(Kind::Load { size, signed: true }, rd, u32::from(SP), 0, off)
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
        (2, 5) => c(Kind::FpMem, 0, u32::from(SP), rs2, sp_store_d()),
        (2, 6 | 7) => {
            let (size, off) = word_or_double(sp_store_w(), sp_store_d());
            c(Kind::Store { size }, 0, u32::from(SP), rs2, off)
        }
        _ => None,
    }
}

pub(super) fn is_link(r: u8) -> bool {
    r == RA || r == T0
}

/// The register-register operations `OP` and `OP-32` encode alike: add,
/// sub and the three shifts, by `funct7` and `funct3`.
fn add_or_shift(f7: u32, f3: u32) -> Option<Alu> {
    match (f7, f3) {
        (0, 0) => Some(Alu::Add),
        (0x20, 0) => Some(Alu::Sub),
        (0, 1) => Some(Alu::Sll),
        (0, 5) => Some(Alu::Srl),
        (0x20, 5) => Some(Alu::Sra),
        _ => None,
    }
}
