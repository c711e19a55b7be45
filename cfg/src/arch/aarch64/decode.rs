//! The A64 raw decoder: one 32-bit word to [`A64`] by bit masks.

use super::*;

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

pub(super) fn reg(r: u32, sp: bool) -> u8 {
    match (r, sp) {
        (31, true) => SP,
        (31, false) => ZR,
        _ => (r & 31) as u8,
    }
}

pub(super) const NONE: [u8; 3] = [ZR, ZR, ZR];

pub(super) fn a64(op: Op, rd: u8, rn: u8, rm: u8, imm: i64, wide: bool) -> A64 {
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

pub(super) fn extend(option: u32) -> Extend {
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
pub(super) fn bitmask(n: u32, imms: u32, immr: u32, wide: bool) -> Option<u64> {
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

pub(super) fn dp_imm(w: u32, sf: bool) -> Option<A64> {
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

pub(super) fn branch_system(w: u32) -> Option<A64> {
    let rn = bits(w, 9, 5);
    if w & 0x7c00_0000 == 0x1400_0000 {
        let imm = sext(bits(w, 25, 0), 26) << 2;
        let link = bits(w, 31, 31) == 1;
        let rd = if link { LR } else { ZR };
        return Some(a64(Op::Branch { link }, rd, ZR, ZR, imm, true));
    }
    // Compare and branch (`cbz`, `cbnz`: imm19) and test and branch (`tbz`,
    // `tbnz`: imm14) test a register, not the flags.
    let tested = match w & 0x7e00_0000 {
        0x3400_0000 => Some(sext(bits(w, 23, 5), 19) << 2),
        0x3600_0000 => Some(sext(bits(w, 18, 5), 14) << 2),
        _ => None,
    };
    if let Some(imm) = tested {
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

pub(super) fn dp_reg(w: u32, sf: bool) -> A64 {
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

pub(super) fn load_store(w: u32) -> A64 {
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
    let int_op = |size: u8, load: bool, signed: bool| {
        if load {
            Op::Load { size, signed }
        } else {
            Op::Store { size }
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
        let op = int_op(bytes, load, signed);
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
        let op = int_op(bytes, load, signed);
        return a64(op, reg(rt, false), reg(rn, true), ZR, imm, wide);
    }
    other
}

pub(super) fn is_link_flow(i: &A64) -> bool {
    matches!(
        i.op,
        Op::Branch { link: true } | Op::BranchReg { link: true }
    )
}
