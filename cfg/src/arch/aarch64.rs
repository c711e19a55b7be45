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
//! the same flags ([`LOADED`], [`CARRIED`]) in the high bits of the
//! register number.

use std::cell::RefCell;

use capstone::Capstone;
use capstone::arch::BuildsCapstone;
use capstone::arch::arm64::ArchMode;

use super::linear::{Machine, Val};
use super::{Decoder, Flow, IndirectTarget, Insn, RegConst, StackEffect};
use crate::image::{Arch, Image};

/// [`RegConst::reg`] flag: the register holds the 8-byte word stored at
/// `value` (`adrp x16, ..; ldr x17, [x16, ..]` of a PLT stub).
pub const LOADED: u16 = 0x100;
/// [`RegConst::reg`] flag: the constant was set by an earlier instruction.
pub const CARRIED: u16 = 0x200;
const REG_MASK: u16 = 0x3f;

/// Register number 31 read as the stack pointer.
const SP: u8 = 31;
/// Register number 31 read as the zero register (numbered 32 here so that
/// the two never mix).
const ZR: u8 = 32;
const LR: u8 = 30;

/// How the index register of a register-offset address or extended add
/// is extended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extend {
    /// Zero-extend from this many bytes (`uxtb`=1 .. `uxtx`=8; `lsl` = 8).
    Zero(u8),
    /// Sign-extend from this many bytes (`sxtb`=1 .. `sxtx`=8).
    Sign(u8),
}

/// Operation classes of A64 words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `b` (link false) or `bl` (link true) to `pc+imm`.
    Branch {
        /// `bl`.
        link: bool,
    },
    /// `b.cond` (`cond` 0-13), `cbz`/`cbnz`, `tbz`/`tbnz` to `pc+imm`
    /// (`cond` 14-15 = always, for `b.al`/`b.nv`, kept as a jump).
    CondBranch {
        /// The condition (`b.cond` only; 0 otherwise).
        cond: u8,
        /// Whether it is `b.cond` (flags), not a compare-and-branch.
        flags: bool,
    },
    /// `br`/`blr` (and pointer-authenticated forms) through `rn`.
    BranchReg {
        /// `blr`.
        link: bool,
    },
    /// `ret`, `eret`, `drps` (and authenticated forms).
    Return,
    /// `brk`, `hlt`, `udf`: a trap.
    Trap,
    /// `adrp rd, imm` (value = page of pc + imm).
    Adrp,
    /// `adr rd, imm` (value = pc + imm).
    Adr,
    /// `add`/`sub` (`sub` when imm < 0) immediate, `rd = rn + imm`;
    /// `flags` for `adds`/`subs` (`cmp`/`cmn` when rd is ZR).
    AddImm {
        /// Sets flags.
        flags: bool,
    },
    /// `add`/`sub` shifted register: `rd = rn ± (rm << imm)`.
    AddReg {
        /// `sub`.
        sub: bool,
        /// Sets flags.
        flags: bool,
        /// The shift is `lsl`.
        lsl: bool,
    },
    /// `add`/`sub` extended register: `rd = rn ± (ext(rm) << imm)`.
    AddExt {
        /// `sub`.
        sub: bool,
        /// Sets flags.
        flags: bool,
        /// The extension.
        ext: Extend,
    },
    /// `mov rd, rm` (`orr rd, zr, rm`).
    MovReg,
    /// `and rd, rn, #imm` (imm = the decoded bitmask).
    AndImm,
    /// `movz` (`imm` already shifted), `movn` (`inverted`), `movk` (`keep`
    /// with `shift`).
    MovWide {
        /// `movn`.
        inverted: bool,
        /// `movk`: insert 16 bits at `shift`.
        keep: bool,
        /// Bit position of the 16-bit field.
        shift: u8,
    },
    /// `ubfm`/`sbfm` (`lsl`, `lsr`, `asr`, `ubfx`, `uxtb`, `sxtw`, ...):
    /// `imm` = immr, `rm` = imms.
    Bitfield {
        /// `sbfm`.
        signed: bool,
    },
    /// Integer load `rt = [rn + imm]` (unsigned or unscaled offset, no
    /// writeback).
    Load {
        /// Bytes read.
        size: u8,
        /// Sign-extended.
        signed: bool,
    },
    /// Integer load `rt = [rn + ext(rm) << imm]`.
    LoadReg {
        /// Bytes read.
        size: u8,
        /// Sign-extended.
        signed: bool,
        /// How rm is extended.
        ext: Extend,
    },
    /// Integer store `[rn + imm] = rt` (no writeback).
    Store {
        /// Bytes written.
        size: u8,
    },
    /// Load from `pc + imm` (`ldr` literal) into an integer register.
    LoadLiteral {
        /// Bytes read.
        size: u8,
        /// Sign-extended.
        signed: bool,
    },
    /// Memory access at `rn + imm` that writes no integer register the
    /// analysis follows (SIMD/FP load or store, prefetch) and has no
    /// writeback.
    MemOther,
    /// Anything else; it may write the registers in `writes`.
    Other,
}

/// One A64 instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct A64 {
    /// What it does.
    pub op: Op,
    /// Destination (`rd`/`rt`); [`ZR`]-numbered 32 or [`SP`] 31 as the
    /// encoding means.
    pub rd: u8,
    /// First source (`rn`).
    pub rn: u8,
    /// Second source (`rm`), or `imms` for bitfield moves.
    pub rm: u8,
    /// Immediate (branch offset, address offset, shift amount, value).
    pub imm: i64,
    /// 64-bit operation (`sf`).
    pub wide: bool,
    /// Integer registers the instruction may write besides `rd` (pairs,
    /// writeback, status registers): the constant tracker drops them.
    pub writes: [u8; 3],
}

fn bits(w: u32, hi: u32, lo: u32) -> u32 {
    (w >> lo) & ((1u32 << (hi - lo + 1)) - 1)
}

fn sext(v: u32, width: u32) -> i64 {
    let sh = 64 - width;
    ((u64::from(v) << sh) as i64) >> sh
}

fn reg(r: u32, sp: bool) -> u8 {
    match (r, sp) {
        (31, true) => SP,
        (31, false) => ZR,
        _ => (r & 31) as u8,
    }
}

const NONE: [u8; 3] = [ZR, ZR, ZR];

fn a64(op: Op, rd: u8, rn: u8, rm: u8, imm: i64, wide: bool) -> A64 {
    A64 {
        op,
        rd,
        rn,
        rm,
        imm,
        wide,
        writes: NONE,
    }
}

fn extend(option: u32) -> Extend {
    match option {
        0 => Extend::Zero(1),
        1 => Extend::Zero(2),
        2 => Extend::Zero(4),
        3 => Extend::Zero(8),
        4 => Extend::Sign(1),
        5 => Extend::Sign(2),
        6 => Extend::Sign(4),
        _ => Extend::Sign(8),
    }
}

/// The bitmask immediate of logical instructions (`DecodeBitMasks` of the
/// Arm ARM), `None` for reserved encodings.
fn bitmask(n: u32, imms: u32, immr: u32, wide: bool) -> Option<u64> {
    let combined = (n << 6) | (!imms & 0x3f);
    if combined == 0 {
        return None;
    }
    let len = 31 - combined.leading_zeros();
    if len < 1 || (!wide && n == 1) {
        return None;
    }
    let size = 1u32 << len;
    let levels = size - 1;
    let s = imms & levels;
    let r = immr & levels;
    if s == levels {
        return None;
    }
    let welem: u64 = (1u64 << (s + 1)) - 1;
    let emask = if size == 64 {
        u64::MAX
    } else {
        (1u64 << size) - 1
    };
    let rot = if r == 0 {
        welem
    } else {
        ((welem >> r) | (welem << (size - r))) & emask
    };
    let mut out = 0u64;
    let mut i = 0;
    while i < 64 {
        out |= rot << i;
        i += size;
    }
    Some(if wide { out } else { out & 0xffff_ffff })
}

/// Decode one A64 word. `None` for words in unallocated encoding space
/// (see the module documentation for how far that is checked).
#[must_use]
#[allow(clippy::too_many_lines)]
pub fn decode_raw(w: u32) -> Option<A64> {
    let rd = bits(w, 4, 0);
    let rm = bits(w, 20, 16);
    let sf = bits(w, 31, 31) == 1;
    let op0 = bits(w, 28, 25);
    let any_writes = |x: A64| A64 {
        writes: [reg(rd, false), reg(bits(w, 14, 10), false), reg(rm, false)],
        ..x
    };
    match op0 {
        0b0000 => {
            if bits(w, 31, 31) == 1 {
                // SME (matrix) instructions: no control flow; they may
                // write a general register (`mova`).
                return Some(any_writes(a64(Op::Other, reg(rd, false), ZR, ZR, 0, false)));
            }
            // Otherwise only `udf #imm16` (bits 31:16 zero) is allocated.
            (bits(w, 31, 16) == 0).then(|| a64(Op::Trap, ZR, ZR, ZR, 0, false))
        }
        0b0001 | 0b0011 => None,
        // SVE: no control flow; it may write general registers (`cntd`).
        0b0010 => Some(any_writes(a64(Op::Other, reg(rd, false), ZR, ZR, 0, false))),
        0b1000 | 0b1001 => dp_imm(w, sf),
        0b1010 | 0b1011 => branch_system(w),
        0b0101 | 0b1101 => Some(dp_reg(w, sf)),
        // SIMD and floating point: some forms write a general register
        // (`fmov x0, d0`, `umov`, `fcvtzs`).
        0b0111 | 0b1111 => Some(any_writes(a64(Op::Other, reg(rd, false), ZR, ZR, 0, false))),
        _ => Some(load_store(w)),
    }
}

fn dp_imm(w: u32, sf: bool) -> Option<A64> {
    let rd = bits(w, 4, 0);
    let rn = bits(w, 9, 5);
    match bits(w, 25, 23) {
        0b000 | 0b001 => {
            let imm = sext((bits(w, 23, 5) << 2) | bits(w, 30, 29), 21);
            if bits(w, 31, 31) == 1 {
                Some(a64(Op::Adrp, reg(rd, false), ZR, ZR, imm << 12, true))
            } else {
                Some(a64(Op::Adr, reg(rd, false), ZR, ZR, imm, true))
            }
        }
        0b010 => {
            // add/sub (immediate); bit 22 = shift by 12.
            let sh = bits(w, 22, 22);
            let mut imm = i64::from(bits(w, 21, 10)) << (12 * sh);
            let sub = bits(w, 30, 30) == 1;
            let flags = bits(w, 29, 29) == 1;
            if sub {
                imm = -imm;
            }
            // rd is SP unless flags are set (then ZR: cmp/cmn).
            let d = reg(rd, !flags);
            Some(a64(Op::AddImm { flags }, d, reg(rn, true), ZR, imm, sf))
        }
        0b011 => {
            // add/sub with tags (MTE): no value followed.
            Some(a64(Op::Other, reg(rd, true), ZR, ZR, 0, true))
        }
        0b100 => {
            let opc = bits(w, 30, 29);
            let mask = bitmask(bits(w, 22, 22), bits(w, 15, 10), bits(w, 21, 16), sf)?;
            let d = reg(rd, opc != 3);
            if opc == 0 {
                Some(a64(Op::AndImm, d, reg(rn, false), ZR, mask as i64, sf))
            } else {
                Some(a64(Op::Other, d, ZR, ZR, 0, sf))
            }
        }
        0b101 => {
            let opc = bits(w, 30, 29);
            let hw = bits(w, 22, 21);
            if opc == 1 || (!sf && hw >= 2) {
                return None;
            }
            let shift = (hw * 16) as u8;
            let imm16 = i64::from(bits(w, 20, 5));
            let op = Op::MovWide {
                inverted: opc == 0,
                keep: opc == 3,
                shift,
            };
            Some(a64(op, reg(rd, false), ZR, ZR, imm16, sf))
        }
        0b110 => {
            let opc = bits(w, 30, 29);
            let n = bits(w, 22, 22);
            if opc == 3 || (sf && n == 0) || (!sf && n == 1) {
                return None;
            }
            let immr = bits(w, 21, 16);
            let imms = bits(w, 15, 10);
            if !sf && (immr >= 32 || imms >= 32) {
                return None;
            }
            let op = match opc {
                0 => Op::Bitfield { signed: true },
                2 => Op::Bitfield { signed: false },
                _ => Op::Other, // bfm
            };
            Some(a64(
                op,
                reg(rd, false),
                reg(rn, false),
                imms as u8,
                i64::from(immr),
                sf,
            ))
        }
        _ => {
            // extr
            if bits(w, 30, 29) != 0 || bits(w, 21, 21) != 0 {
                return None;
            }
            let n = bits(w, 22, 22);
            if (sf && n == 0) || (!sf && (n == 1 || bits(w, 15, 15) == 1)) {
                return None;
            }
            Some(a64(Op::Other, reg(rd, false), ZR, ZR, 0, sf))
        }
    }
}

fn branch_system(w: u32) -> Option<A64> {
    let rn = bits(w, 9, 5);
    if w & 0x7c00_0000 == 0x1400_0000 {
        let imm = sext(bits(w, 25, 0), 26) << 2;
        let link = bits(w, 31, 31) == 1;
        let rd = if link { LR } else { ZR };
        return Some(a64(Op::Branch { link }, rd, ZR, ZR, imm, true));
    }
    if w & 0x7e00_0000 == 0x3400_0000 {
        let imm = sext(bits(w, 23, 5), 19) << 2;
        return Some(a64(
            Op::CondBranch {
                cond: 0,
                flags: false,
            },
            ZR,
            reg(bits(w, 4, 0), false),
            ZR,
            imm,
            true,
        ));
    }
    if w & 0x7e00_0000 == 0x3600_0000 {
        let imm = sext(bits(w, 18, 5), 14) << 2;
        return Some(a64(
            Op::CondBranch {
                cond: 0,
                flags: false,
            },
            ZR,
            reg(bits(w, 4, 0), false),
            ZR,
            imm,
            true,
        ));
    }
    if w & 0xff00_0000 == 0x5400_0000 {
        // b.cond (bit 4 clear) and bc.cond (FEAT_HBC, bit 4 set).
        let imm = sext(bits(w, 23, 5), 19) << 2;
        let cond = bits(w, 3, 0) as u8;
        if cond >= 14 {
            return Some(a64(Op::Branch { link: false }, ZR, ZR, ZR, imm, true));
        }
        return Some(a64(
            Op::CondBranch { cond, flags: true },
            ZR,
            ZR,
            ZR,
            imm,
            true,
        ));
    }
    if w & 0xff00_0000 == 0xd400_0000 {
        // Exception generation.
        let opc = bits(w, 23, 21);
        let op2 = bits(w, 4, 2);
        let ll = bits(w, 1, 0);
        if op2 != 0 {
            return None;
        }
        return match (opc, ll) {
            (0, 1..=3) => Some(a64(Op::Other, ZR, ZR, ZR, 0, true)), // svc, hvc, smc
            (1, 0) | (2, 0) => Some(a64(Op::Trap, ZR, ZR, ZR, 0, true)), // brk, hlt
            (3, 0) => Some(a64(Op::Other, ZR, ZR, ZR, 0, true)),     // tcancel (TME)
            (5, 1..=3) => Some(a64(Op::Other, ZR, ZR, ZR, 0, true)), // dcps1-3
            _ => None,
        };
    }
    if w & 0xffc0_0000 == 0xd500_0000 {
        // System: hints, barriers, msr/mrs, sys/sysl. `mrs` and `sysl`
        // (bit 21 set) write rt.
        let l = bits(w, 21, 21) == 1;
        let rt = if l { reg(bits(w, 4, 0), false) } else { ZR };
        return Some(a64(Op::Other, rt, ZR, ZR, 0, true));
    }
    if w & 0xfe00_0000 == 0xd600_0000 {
        let opc = bits(w, 24, 21);
        let op2 = bits(w, 20, 16);
        let op3 = bits(w, 15, 10);
        let op4 = bits(w, 4, 0);
        if op2 != 0x1f {
            return None;
        }
        let rn_reg = reg(rn, false);
        // Plain forms have op3 = 0, op4 = 0; pointer-authenticated ones
        // op3 = 00001x with op4 = 11111 (zero modifier) or any register.
        let plain = op3 == 0 && op4 == 0;
        let pac_zero = (op3 == 2 || op3 == 3) && op4 == 0x1f;
        let pac_reg = op3 == 2 || op3 == 3;
        return match opc {
            0 if plain || pac_zero => {
                Some(a64(Op::BranchReg { link: false }, ZR, rn_reg, ZR, 0, true))
            }
            1 if plain || pac_zero => {
                Some(a64(Op::BranchReg { link: true }, LR, rn_reg, ZR, 0, true))
            }
            2 if plain || (pac_zero && rn == 0x1f) => {
                Some(a64(Op::Return, ZR, rn_reg, ZR, 0, true))
            }
            4 | 5 if (plain || (pac_zero && opc == 4)) && rn == 0x1f => {
                Some(a64(Op::Return, ZR, ZR, ZR, 0, true))
            }
            8 if pac_reg => Some(a64(Op::BranchReg { link: false }, ZR, rn_reg, ZR, 0, true)),
            9 if pac_reg => Some(a64(Op::BranchReg { link: true }, LR, rn_reg, ZR, 0, true)),
            _ => None,
        };
    }
    None
}

fn dp_reg(w: u32, sf: bool) -> A64 {
    let rd = bits(w, 4, 0);
    let rn = bits(w, 9, 5);
    let rm = bits(w, 20, 16);
    let imm6 = bits(w, 15, 10);
    let other = a64(Op::Other, reg(rd, false), ZR, ZR, 0, sf);
    if w & 0x1f00_0000 == 0x0a00_0000 {
        // Logical (shifted register): mov = orr rd, zr, rm (no shift, N=0).
        let opc = bits(w, 30, 29);
        if opc == 1 && rn == 31 && imm6 == 0 && bits(w, 21, 21) == 0 {
            return a64(Op::MovReg, reg(rd, false), ZR, reg(rm, false), 0, sf);
        }
        return other;
    }
    if w & 0x1f20_0000 == 0x0b00_0000 {
        let shift = bits(w, 23, 22);
        if shift == 3 || (!sf && imm6 >= 32) {
            return other;
        }
        let op = Op::AddReg {
            sub: bits(w, 30, 30) == 1,
            flags: bits(w, 29, 29) == 1,
            lsl: shift == 0,
        };
        return a64(
            op,
            reg(rd, false),
            reg(rn, false),
            reg(rm, false),
            i64::from(imm6),
            sf,
        );
    }
    if w & 0x1f20_0000 == 0x0b20_0000 {
        let imm3 = bits(w, 12, 10);
        if bits(w, 23, 22) != 0 || imm3 > 4 {
            return other;
        }
        let flags = bits(w, 29, 29) == 1;
        let op = Op::AddExt {
            sub: bits(w, 30, 30) == 1,
            flags,
            ext: extend(bits(w, 15, 13)),
        };
        return a64(
            op,
            reg(rd, !flags),
            reg(rn, true),
            reg(rm, false),
            i64::from(imm3),
            sf,
        );
    }
    other
}

fn load_store(w: u32) -> A64 {
    let rt = bits(w, 4, 0);
    let rn = bits(w, 9, 5);
    let size = bits(w, 31, 30);
    let v = bits(w, 26, 26) == 1;
    let opc = bits(w, 23, 22);
    // Conservative default: may write rt, rt2, rn (writeback) and rs.
    let other = A64 {
        writes: [
            reg(bits(w, 14, 10), false),
            reg(rn, true),
            reg(bits(w, 20, 16), false),
        ],
        ..a64(Op::Other, reg(rt, false), ZR, ZR, 0, true)
    };
    // Integer load/store kinds by (size, opc): (bytes, load?, signed?).
    let int_kind = |size: u32, opc: u32| -> Option<(u8, bool, bool)> {
        let bytes = 1u8 << size;
        match (size, opc) {
            (_, 0) => Some((bytes, false, false)),
            (_, 1) => Some((bytes, true, false)),
            (0..=2, 2 | 3) => Some((bytes, true, true)),
            _ => None, // prfm (3, 2), unallocated (3, 3)
        }
    };
    if w & 0x3b00_0000 == 0x1800_0000 {
        // ldr (literal)
        let imm = sext(bits(w, 23, 5), 19) << 2;
        if v {
            return a64(Op::MemOther, ZR, ZR, ZR, imm, true);
        }
        return match bits(w, 31, 30) {
            0 => a64(
                Op::LoadLiteral {
                    size: 4,
                    signed: false,
                },
                reg(rt, false),
                ZR,
                ZR,
                imm,
                false,
            ),
            1 => a64(
                Op::LoadLiteral {
                    size: 8,
                    signed: false,
                },
                reg(rt, false),
                ZR,
                ZR,
                imm,
                true,
            ),
            2 => a64(
                Op::LoadLiteral {
                    size: 4,
                    signed: true,
                },
                reg(rt, false),
                ZR,
                ZR,
                imm,
                true,
            ),
            _ => a64(Op::MemOther, ZR, ZR, ZR, imm, true), // prfm (literal)
        };
    }
    if w & 0x3b00_0000 == 0x3900_0000 {
        // Unsigned offset.
        if v {
            return a64(Op::MemOther, ZR, reg(rn, true), ZR, 0, true);
        }
        let Some((bytes, load, signed)) = int_kind(size, opc) else {
            return a64(Op::MemOther, ZR, reg(rn, true), ZR, 0, true);
        };
        let imm = i64::from(bits(w, 21, 10)) * i64::from(bytes);
        let op = if load {
            Op::Load {
                size: bytes,
                signed,
            }
        } else {
            Op::Store { size: bytes }
        };
        let wide = !(signed && opc == 3);
        return a64(op, reg(rt, false), reg(rn, true), ZR, imm, wide);
    }
    if w & 0x3b20_0c00 == 0x3800_0000 || w & 0x3b20_0c00 == 0x3820_0800 {
        // Unscaled immediate (ldur/stur) or register offset.
        let reg_offset = bits(w, 21, 21) == 1;
        if v {
            return if reg_offset {
                other
            } else {
                a64(
                    Op::MemOther,
                    ZR,
                    reg(rn, true),
                    ZR,
                    sext(bits(w, 20, 12), 9),
                    true,
                )
            };
        }
        let Some((bytes, load, signed)) = int_kind(size, opc) else {
            return other;
        };
        let wide = !(signed && opc == 3);
        if reg_offset {
            let option = bits(w, 15, 13);
            if option & 2 == 0 {
                return other;
            }
            let s = bits(w, 12, 12);
            let amount = if s == 1 { i64::from(size) } else { 0 };
            if !load {
                return other;
            }
            let op = Op::LoadReg {
                size: bytes,
                signed,
                ext: extend(option),
            };
            return a64(
                op,
                reg(rt, false),
                reg(rn, true),
                reg(bits(w, 20, 16), false),
                amount,
                wide,
            );
        }
        let imm = sext(bits(w, 20, 12), 9);
        let op = if load {
            Op::Load {
                size: bytes,
                signed,
            }
        } else {
            Op::Store { size: bytes }
        };
        return a64(op, reg(rt, false), reg(rn, true), ZR, imm, wide);
    }
    other
}

fn is_link_flow(i: &A64) -> bool {
    matches!(
        i.op,
        Op::Branch { link: true } | Op::BranchReg { link: true }
    )
}

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

fn known(prev: Option<&Insn>) -> Option<(u8, u64, bool, bool)> {
    let k = prev?.konst?;
    let reg = u8::try_from(k.reg & REG_MASK).ok()?;
    Some((reg, k.value, k.reg & LOADED != 0, k.reg & CARRIED != 0))
}

fn konst(reg: u8, value: u64, loaded: bool) -> Option<RegConst> {
    (reg < 31).then_some(RegConst {
        reg: u16::from(reg) | if loaded { LOADED } else { 0 },
        value,
    })
}

impl Decoder for Aarch64Decoder {
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
        let konst = match own {
            Some(c) => c,
            None => {
                let written = |r: u8| {
                    let dest = match i.op {
                        Op::Store { .. } | Op::MemOther | Op::CondBranch { .. } => false,
                        _ => i.rd == r,
                    };
                    dest || i.writes.contains(&r)
                };
                k.filter(|&(kr, ..)| !written(kr) && !is_link_flow(&i))
                    .map(|(kr, v, loaded, _)| RegConst {
                        reg: u16::from(kr) | CARRIED | if loaded { LOADED } else { 0 },
                        value: v,
                    })
            }
        };
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

    fn resolve_indirect(&self, image: &Image<'_>, path: &[u64]) -> Option<IndirectTarget> {
        resolve_path(image, path, &[], &[], &Some)
    }

    fn resolve_indirect_in(
        &self,
        image: &Image<'_>,
        path: &[u64],
        starts: &[usize],
        function: &[u64],
        admit: &dyn Fn(IndirectTarget) -> Option<IndirectTarget>,
    ) -> Option<IndirectTarget> {
        let found = super::linear::resolve_with_invariants(
            path,
            starts,
            || invariant_registers(image, function),
            |p, seeds| resolve_path(image, p, seeds, &[], admit),
        );
        let preds = std::cell::OnceCell::new();
        let preds = || preds.get_or_init(|| super::linear::flow_preds(self, image, function));
        found
            .or_else(|| {
                // Then other paths through the joins.
                super::linear::resolve_on_join_paths(*path.last()?, preds(), |p| {
                    resolve_path(image, p, &[], &[], admit)
                })
            })
            .or_else(|| {
                // Last, a table base the function spilled to its frame once
                // (`str x0, [sp, #144]` after `adrp`+`add`, far before the
                // switch) and reloads at the switch: every store that can
                // reach the reload must store the same constant.
                let preds = preds();
                let slots: Vec<(i64, u64)> = path
                    .iter()
                    .filter_map(|&a| {
                        let i = decode_raw(word(image.bytes_from(a)?)?)?;
                        if !matches!(i.op, Op::Load { size: 8, .. }) || i.rn != SP {
                            return None;
                        }
                        Some((i.imm, spilled_constant(image, preds, a, i.imm)?))
                    })
                    .collect();
                if slots.is_empty() {
                    return None;
                }
                starts
                    .iter()
                    .find_map(|&i| resolve_path(image, path.get(i..)?, &[], &slots, admit))
            })
    }

    fn stack_effect(&self, bytes: &[u8], _insn: &Insn) -> StackEffect {
        let Some(w) = word(bytes) else {
            return StackEffect::Unknown;
        };
        stack_effect_of(w)
    }

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

    fn render(&self, bytes: &[u8], addr: u64) -> Option<String> {
        let raw = bytes.get(..4)?;
        decode_raw(word(raw)?)?;
        with_capstone(|cs| super::capstone_text(cs, raw, addr))
    }

    fn plt_header_size(&self) -> u64 {
        32
    }
}

thread_local! {
    static CAPSTONE: RefCell<Option<Capstone>> = const { RefCell::new(None) };
}

fn with_capstone<T>(f: impl FnOnce(&Capstone) -> Option<T>) -> Option<T> {
    CAPSTONE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Capstone::new().arm64().mode(ArchMode::Arm).build().ok();
        }
        f(slot.as_ref()?)
    })
}

/// Interpret `path` (the indirect jump last) with `seeds` preset in
/// registers and `slots` (offset from `sp`, 64-bit value) in the frame, with
/// store-to-load forwarding and then without (see
/// `Machine::without_store_forwarding`), and return the first answer
/// `admit` lets through.
fn resolve_path(
    image: &Image<'_>,
    path: &[u64],
    seeds: &[(u16, u64)],
    slots: &[(i64, u64)],
    admit: &dyn Fn(IndirectTarget) -> Option<IndirectTarget>,
) -> Option<IndirectTarget> {
    let mut insns = Vec::with_capacity(path.len());
    for &a in path {
        insns.push((a, decode_raw(word(image.bytes_from(a)?)?)?));
    }
    let ((_, jump), body) = insns.split_last()?;
    if !matches!(jump.op, Op::BranchReg { link: false }) {
        return None;
    }
    super::linear::interpret_path(image, Some(u16::from(ZR)), admit, |m| {
        let mut st = State { m, cmp: None };
        for &(r, v) in seeds {
            st.m.preset(r, v);
        }
        for &(off, v) in slots {
            let at = st.m.reg(u16::from(SP)).add_const(off as u64);
            st.m.store(at, Val::konst(v));
        }
        for (idx, &(a, i)) in body.iter().enumerate() {
            let next = insns.get(idx.checked_add(1)?).map(|x| x.0);
            st.step(a, &i, next);
        }
        let target = st.m.reg(u16::from(jump.rn));
        Some((st.m, target))
    })
}

/// How an instruction touches the stack frame: `Write(off, len)` stores
/// `len` bytes at `sp + off` (no writeback); `Opaque` writes memory through
/// `sp` where this cannot tell, or changes `sp` itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Untouched,
    Write(i64, i64),
    Opaque,
}

fn frame_effect(w: u32) -> Frame {
    let rn = bits(w, 9, 5);
    let v = bits(w, 26, 26) == 1;
    let opc = bits(w, 23, 22);
    let size = bits(w, 31, 30);
    if w & 0x0a00_0000 == 0x0800_0000 {
        // Loads and stores.
        if rn != u32::from(SP) {
            return Frame::Untouched;
        }
        // Single register, unsigned offset / unscaled offset: no writeback.
        let unsigned = w & 0x3b00_0000 == 0x3900_0000;
        let unscaled = w & 0x3b20_0c00 == 0x3800_0000;
        if unsigned || unscaled {
            let store = opc == 0 || (v && opc == 2);
            if !store {
                return Frame::Untouched;
            }
            let len: i64 = if v && opc == 2 { 16 } else { 1 << size };
            let off = if unsigned {
                i64::from(bits(w, 21, 10)) * len
            } else {
                sext(bits(w, 20, 12), 9)
            };
            return Frame::Write(off, len);
        }
        // Pair, signed offset or non-temporal: no writeback.
        if w & 0x3a00_0000 == 0x2800_0000 && matches!(bits(w, 24, 23), 0 | 2) {
            if bits(w, 22, 22) == 1 {
                return Frame::Untouched;
            }
            let len: i64 = match (v, size) {
                (false, 0) | (true, 0) => 4,
                (false, 2) | (true, 1) => 8,
                (true, 2) => 16,
                _ => return Frame::Opaque, // stgp, unallocated
            };
            return Frame::Write(sext(bits(w, 21, 15), 7) * len, 2 * len);
        }
        return Frame::Opaque;
    }
    match decode_raw(w) {
        Some(i) if i.rd == SP || i.writes.contains(&SP) => Frame::Opaque,
        Some(_) => Frame::Untouched,
        None => Frame::Opaque,
    }
}

/// Whether `i` may change integer register `r`.
fn writes_reg(i: &A64, r: u8) -> bool {
    let rd = !matches!(
        i.op,
        Op::Store { .. }
            | Op::MemOther
            | Op::CondBranch { .. }
            | Op::Branch { link: false }
            | Op::BranchReg { link: false }
            | Op::Return
            | Op::Trap
    ) && i.rd == r;
    rd || i.writes.contains(&r) || (is_link_flow(i) && (r <= 18 || r == 30))
}

/// The 64-bit constant every store reaching the frame load at `load` stores
/// at `sp + off`, walking back over `preds` (intra-function flow). `None`
/// when some path reaches the entry without such a store, a store there is
/// not a whole 64-bit `str` of an `adrp`(+`add`) or `adr` value, two stores
/// disagree, or something on the way changes `sp` or writes the frame in a
/// way this cannot follow.
fn spilled_constant(
    image: &Image<'_>,
    preds: &std::collections::BTreeMap<u64, Vec<u64>>,
    load: u64,
    off: i64,
) -> Option<u64> {
    let mut seen = std::collections::BTreeSet::new();
    let mut work: Vec<u64> = preds.get(&load)?.clone();
    let mut value: Option<u64> = None;
    while let Some(a) = work.pop() {
        if !seen.insert(a) {
            continue;
        }
        if seen.len() > 20_000 {
            return None;
        }
        let w = word(image.bytes_from(a)?)?;
        match frame_effect(w) {
            Frame::Opaque => return None,
            Frame::Write(o, len) if o < off.saturating_add(8) && off < o.saturating_add(len) => {
                let i = decode_raw(w)?;
                if o != off || len != 8 || !matches!(i.op, Op::Store { size: 8 }) {
                    return None;
                }
                let v = constant_before(image, preds, a, i.rd)?;
                if value.is_some_and(|x| x != v) {
                    return None;
                }
                value = Some(v);
                continue;
            }
            _ => {}
        }
        // No predecessor: the entry (or code reached only through a table).
        let ps = preds.get(&a).filter(|p| !p.is_empty())?;
        work.extend(ps.iter().copied());
    }
    value
}

/// The constant in `r` just before `at`, from `adrp r` (optionally then
/// `add r, r, #lo`) or `adr r` on the straight-line code before it.
fn constant_before(
    image: &Image<'_>,
    preds: &std::collections::BTreeMap<u64, Vec<u64>>,
    at: u64,
    r: u8,
) -> Option<u64> {
    let mut a = at;
    let mut lo: Option<i64> = None;
    for _ in 0..64 {
        a = match preds.get(&a)?.as_slice() {
            [p] => *p,
            _ => return None,
        };
        let i = decode_raw(word(image.bytes_from(a)?)?)?;
        if !writes_reg(&i, r) {
            continue;
        }
        match i.op {
            Op::AddImm { flags: false } if i.wide && i.rd == r && i.rn == r && lo.is_none() => {
                lo = Some(i.imm);
            }
            Op::Adrp if i.rd == r => {
                let page = (a & !0xfff).wrapping_add(i.imm as u64);
                return Some(page.wrapping_add(lo.unwrap_or(0) as u64));
            }
            Op::Adr if i.rd == r && lo.is_none() => return Some(a.wrapping_add(i.imm as u64)),
            _ => return None,
        }
    }
    None
}

/// x19-x30: preserved across calls (x29/x30 restored by the epilogue).
fn is_callee_saved(r: u8) -> bool {
    (19..=30).contains(&r)
}

/// How the word moves `sp`: `add`/`sub sp, sp, #imm`, and the pre- and
/// post-indexed loads and stores (single and pair) based on `sp`, which is
/// how gcc and clang build and tear down frames (`stp x29, x30, [sp,
/// #-32]!` ... `ldp x29, x30, [sp], #32`). Any other write to `sp` (`mov
/// sp, x29`) is unknown.
fn stack_effect_of(w: u32) -> StackEffect {
    let rn = bits(w, 9, 5);
    // add/sub (immediate), 64-bit, not setting flags, into sp.
    if w & 0xbf80_0000 == 0x9100_0000 && bits(w, 4, 0) == 31 {
        if rn != 31 {
            return StackEffect::Unknown;
        }
        let imm = i64::from(bits(w, 21, 10)) << (12 * bits(w, 22, 22));
        return StackEffect::Add(if w & 0x4000_0000 != 0 { -imm } else { imm });
    }
    // Load/store pair, post-index (001) or pre-index (011).
    if bits(w, 29, 27) == 0b101 && matches!(bits(w, 25, 23), 0b001 | 0b011) && rn == 31 {
        let scale: i64 = match (bits(w, 26, 26), bits(w, 31, 30)) {
            (0, 0b10) | (1, 0b01) => 8,
            (1, 0b10) => 16,
            _ => 4,
        };
        return StackEffect::Add(sext(bits(w, 21, 15), 7) * scale);
    }
    // Load/store register (immediate), post-index (01) or pre-index (11).
    if bits(w, 29, 27) == 0b111
        && bits(w, 25, 24) == 0
        && bits(w, 21, 21) == 0
        && matches!(bits(w, 11, 10), 0b01 | 0b11)
        && rn == 31
    {
        return StackEffect::Add(sext(bits(w, 20, 12), 9));
    }
    match decode_raw(w) {
        Some(i) if i.rd == SP || i.writes.contains(&SP) => StackEffect::Unknown,
        Some(_) => StackEffect::None,
        None => StackEffect::Unknown,
    }
}

/// Registers defined exactly once in `function`, by a constant (`adrp`
/// optionally followed at once by `add` to the same register, `adr`,
/// `movz`/`movn`): their value is that constant wherever the definition
/// has run. Epilogue restores from the stack (`ldr`/`ldp` with base `sp`
/// into x19-x30) are not definitions; the caller-saved registers do not
/// qualify when the function calls anything.
fn invariant_registers(image: &Image<'_>, function: &[u64]) -> Vec<(u16, u64)> {
    use std::collections::BTreeMap;
    let mut defs: BTreeMap<u8, (u32, Option<u64>)> = BTreeMap::new();
    let mut calls = false;
    let mut prev: Option<(u64, A64)> = None;
    for &a in function {
        let Some(w) = image.bytes_from(a).and_then(word) else {
            prev = None;
            continue;
        };
        let Some(i) = decode_raw(w) else {
            prev = None;
            continue;
        };
        if is_link_flow(&i) {
            calls = true;
        }
        // ldp/ldr/ldr (post-index) with base sp: restores.
        let rn = ((w >> 5) & 31) as u8;
        let pair_load = w & 0x3a40_0000 == 0x2840_0000;
        let restore = rn == 31
            && (pair_load || matches!(i.op, Op::Load { .. } | Op::Other))
            && is_callee_saved(i.rd);
        let pair_of_prev = prev.is_some_and(|(pa, p)| {
            pa.wrapping_add(4) == a
                && matches!(p.op, Op::Adrp)
                && p.rd == i.rd
                && matches!(i.op, Op::AddImm { flags: false })
                && i.rn == i.rd
                && i.wide
        });
        let mut written: Vec<u8> = Vec::new();
        match i.op {
            Op::Store { .. } | Op::MemOther | Op::CondBranch { .. } | Op::Return | Op::Trap => {}
            Op::Branch { link: false } | Op::BranchReg { link: false } => {}
            _ => written.push(i.rd),
        }
        if !restore {
            written.extend(i.writes.iter().copied());
        }
        for r in written {
            if r >= 31 {
                continue;
            }
            let e = defs.entry(r).or_insert((0, None));
            if r == i.rd && pair_of_prev {
                e.1 = e.1.map(|v| v.wrapping_add(i.imm as u64));
                continue;
            }
            if r == i.rd && restore {
                continue;
            }
            e.0 = e.0.saturating_add(1);
            e.1 = match i.op {
                _ if r != i.rd => None,
                Op::Adrp => Some((a & !0xfff).wrapping_add(i.imm as u64)),
                Op::Adr => Some(a.wrapping_add(i.imm as u64)),
                Op::MovWide {
                    inverted,
                    keep: false,
                    shift,
                } => {
                    let f = (i.imm as u64) << shift;
                    let v = if inverted { !f } else { f };
                    Some(if i.wide { v } else { v & 0xffff_ffff })
                }
                _ => None,
            };
        }
        prev = Some((a, i));
    }
    defs.into_iter()
        .filter(|&(r, (n, v))| n == 1 && v.is_some() && (!calls || is_callee_saved(r)))
        .filter_map(|(r, (_, v))| Some((u16::from(r), v?)))
        .collect()
}

/// The path interpreter: linear values plus the last comparison.
struct State {
    m: Machine,
    /// Operands of the last `cmp`/`subs` (a - b), for the next `b.cond`.
    cmp: Option<(Val, Val)>,
}

fn mask32(v: Val, wide: bool) -> Val {
    if wide {
        return v;
    }
    // 32-bit results are zero-extended; keep constants exact, and follow
    // symbolic ones as they are (bounded indices never reach bit 31).
    match v.as_const() {
        Some(c) => Val::konst(c & 0xffff_ffff),
        None => v,
    }
}

impl State {
    fn r(&mut self, r: u8) -> Val {
        self.m.reg(u16::from(r))
    }

    fn set(&mut self, r: u8, v: Val, wide: bool) {
        if r != ZR {
            self.m.set(u16::from(r), mask32(v, wide));
        }
    }

    fn extend(&mut self, v: Val, ext: Extend) -> Val {
        match ext {
            Extend::Zero(8) | Extend::Sign(8) => v,
            Extend::Zero(n) => {
                if let Some(c) = v.as_const() {
                    let bitsz = u32::from(n) * 8;
                    return Val::konst(c & ((1u64 << bitsz) - 1));
                }
                self.m.resign(&v, n, false)
            }
            Extend::Sign(n) => {
                if let Some(c) = v.as_const() {
                    let sh = 64 - u32::from(n) * 8;
                    return Val::konst((((c << sh) as i64) >> sh) as u64);
                }
                self.m.resign(&v, n, true)
            }
        }
    }

    #[allow(clippy::too_many_lines)]
    fn step(&mut self, addr: u64, i: &A64, next: Option<u64>) {
        let imm = i.imm as u64;
        match i.op {
            Op::Adrp => self.set(i.rd, Val::konst((addr & !0xfff).wrapping_add(imm)), true),
            Op::Adr => self.set(i.rd, Val::konst(addr.wrapping_add(imm)), true),
            Op::AddImm { flags } => {
                let a = self.r(i.rn);
                if flags {
                    // cmp a, #n is subs zr, a, #n: imm holds -n.
                    self.cmp = Some((a, Val::konst(imm.wrapping_neg())));
                }
                self.set(i.rd, a.add_const(imm), i.wide);
            }
            Op::AddReg { sub, flags, lsl } => {
                let a = self.r(i.rn);
                let b = self.r(i.rm);
                let sh = (i.imm & 63) as u32;
                let b = if lsl {
                    b.scale(1u64 << sh)
                } else if sh == 0 {
                    b
                } else {
                    self.m.fresh()
                };
                if flags && sub {
                    self.cmp = Some((a, b));
                }
                let v = if sub { a.sub(&b) } else { a.add(&b) };
                self.set(i.rd, v, i.wide);
            }
            Op::AddExt { sub, flags, ext } => {
                let a = self.r(i.rn);
                let b = self.r(i.rm);
                let b = self.extend(b, ext).scale(1u64 << (i.imm & 7));
                if flags && sub {
                    self.cmp = Some((a, b));
                }
                let v = if sub { a.sub(&b) } else { a.add(&b) };
                self.set(i.rd, v, i.wide);
            }
            Op::MovReg => {
                let v = self.r(i.rm);
                self.set(i.rd, v, i.wide);
            }
            Op::AndImm => {
                let a = self.r(i.rn);
                let v = self.m.masked(&a, imm);
                self.set(i.rd, v, i.wide);
            }
            Op::MovWide {
                inverted,
                keep,
                shift,
            } => {
                let field = imm << shift;
                let v = if keep {
                    match self.r(i.rd).as_const() {
                        Some(c) => Val::konst((c & !(0xffffu64 << shift)) | field),
                        None => self.m.fresh(),
                    }
                } else if inverted {
                    Val::konst(!field)
                } else {
                    Val::konst(field)
                };
                self.set(i.rd, v, i.wide);
            }
            Op::Bitfield { signed } => {
                let v = self.bitfield(i, signed);
                self.set(i.rd, v, i.wide);
            }
            Op::Load { size, signed } => {
                let a = self.r(i.rn).add_const(imm);
                let v = self.m.load(a, size, signed);
                self.set(i.rd, v, i.wide);
            }
            Op::LoadReg { size, signed, ext } => {
                let b = self.r(i.rn);
                let x = self.r(i.rm);
                let x = self.extend(x, ext).scale(1u64 << (i.imm & 7));
                let v = self.m.load(b.add(&x), size, signed);
                self.set(i.rd, v, i.wide);
            }
            Op::LoadLiteral { size, signed } => {
                let v = self
                    .m
                    .load(Val::konst(addr.wrapping_add(imm)), size, signed);
                self.set(i.rd, v, i.wide);
            }
            Op::Store { .. } => {
                let a = self.r(i.rn).add_const(imm);
                let v = self.r(i.rd);
                self.m.store(a, v);
            }
            Op::CondBranch { cond, flags: true } => {
                self.guard(addr, i, cond, next);
            }
            Op::Branch { link: true } | Op::BranchReg { link: true } => {
                for r in (0..=18).chain([30]) {
                    self.m.clobber(r);
                }
                self.m.forget_memory();
                self.cmp = None;
            }
            Op::Other => {
                if i.rd != ZR {
                    self.m.clobber(u16::from(i.rd));
                }
                for r in i.writes {
                    if r != ZR {
                        self.m.clobber(u16::from(r));
                    }
                }
            }
            _ => {}
        }
    }

    /// `ubfm`/`sbfm`: the shifts and extensions compilers use on switch
    /// indices.
    fn bitfield(&mut self, i: &A64, signed: bool) -> Val {
        let a = self.r(i.rn);
        let immr = (i.imm & 63) as u32;
        let imms = u32::from(i.rm);
        let width = if i.wide { 64 } else { 32 };
        if imms.checked_add(1) == Some(immr) && !signed {
            // lsl #(width - immr)
            return a.scale(1u64 << ((width - immr) % 64));
        }
        if imms == width - 1 {
            // lsr / asr #immr
            return a.exact_shr(immr).unwrap_or_else(|| self.m.fresh());
        }
        if immr == 0 {
            // uxtb/uxth/ubfx #0 (zero-extend), sxtb/sxth/sxtw (sign-extend)
            let bytes = (imms + 1) / 8;
            if (imms + 1) % 8 == 0 && matches!(bytes, 1 | 2 | 4) {
                let n = bytes as u8;
                return if signed {
                    self.extend(a, Extend::Sign(n))
                } else {
                    self.extend(a, Extend::Zero(n))
                };
            }
            if !signed && imms < 63 {
                return self.m.masked(&a, (1u64 << (imms + 1)) - 1);
            }
        }
        self.m.fresh()
    }

    fn guard(&mut self, addr: u64, i: &A64, cond: u8, next: Option<u64>) {
        let Some((a, b)) = self.cmp else {
            return;
        };
        let target = addr.wrapping_add(i.imm as u64);
        let fall = addr.wrapping_add(4);
        let taken = match next {
            Some(n) if n == target && n != fall => true,
            Some(n) if n == fall => false,
            _ => return,
        };
        // Conditions come in pairs whose low bit negates them.
        let holds = if taken { cond } else { cond ^ 1 };
        match holds {
            0b1001 => self.m.learn_unsigned(&a, &b, false), // ls: a <= b
            0b0011 => self.m.learn_unsigned(&a, &b, true),  // lo: a < b
            0b1000 => self.m.learn_unsigned(&b, &a, true),  // hi: b < a
            0b0010 => self.m.learn_unsigned(&b, &a, false), // hs: b <= a
            _ => {}
        }
    }
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
