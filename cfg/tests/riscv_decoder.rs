//! The RV64GC raw-word decoder against capstone (the differential oracle):
//! the whole compressed encoding space, a deterministic sample of the
//! 32-bit space, and linear sweeps of the real riscv64 corpus binaries.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use capstone::Capstone;
use capstone::arch::riscv::{ArchExtraMode, ArchMode};
use capstone::arch::{BuildsCapstone, BuildsCapstoneExtraMode};
use talos_cfg::arch::riscv::{Kind, RiscvDecoder, decode_raw};
use talos_cfg::arch::{Decode, Flow};

fn capstone() -> Capstone {
    Capstone::new()
        .riscv()
        .mode(ArchMode::RiscV64)
        .extra_mode([ArchExtraMode::RiscVC].into_iter())
        .build()
        .unwrap()
}

/// Capstone's view of one instruction: (length, mnemonic, operands), or
/// `None` when it does not decode.
fn cs_one(cs: &Capstone, bytes: &[u8], addr: u64) -> Option<(usize, String, String)> {
    let insns = cs.disasm_count(bytes, addr, 1).ok()?;
    let i = insns.iter().next()?;
    Some((
        i.bytes().len(),
        i.mnemonic().unwrap_or("").to_string(),
        i.op_str().unwrap_or("").to_string(),
    ))
}

fn parse_imm(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let v = match s.strip_prefix("0x") {
        Some(h) => i64::from_str_radix(h, 16).ok()?,
        None => s.parse::<i64>().ok()?,
    };
    Some(if neg { -v } else { v })
}

/// The branch target capstone implies: its last operand is the offset from
/// the instruction (capstone prints RISC-V targets pc-relative).
fn cs_target(addr: u64, ops: &str) -> Option<u64> {
    let last = ops.rsplit(',').next()?;
    Some(addr.wrapping_add(parse_imm(last)? as u64))
}

/// Encodings where talos follows the RISC-V specification and capstone
/// (LLVM's tables of the time) does not; none occurs in compiler output.
fn known_divergence(bytes: &[u8]) -> Option<&'static str> {
    let h = u16::from_le_bytes([bytes[0], bytes[1]]);
    if h & 3 != 3 {
        let rd = (h >> 7) & 31;
        let imm6 = ((h >> 7) & 0x20) | ((h >> 2) & 0x1f);
        return match (h & 3, h >> 13) {
            // c.addi x0, imm>0: a HINT; capstone prints it as c.nop.
            (1, 0) if rd == 0 && imm6 != 0 => Some("c.addi x0 hint"),
            // c.lui rd, 0: reserved; capstone accepts it.
            (1, 3) if rd != 0 && rd != 2 && imm6 == 0 => Some("c.lui 0 reserved"),
            _ => None,
        };
    }
    let w = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let (f7, rs2, rm) = (w >> 25, (w >> 20) & 31, (w >> 12) & 7);
    // Exact conversions (fcvt.d.s, fcvt.d.w, fcvt.d.wu) with a rounding
    // mode other than 0: valid (the mode is unused); capstone rejects them.
    let exact = (f7 == 0x21 && rs2 == 0) || (f7 == 0x69 && rs2 <= 1);
    (w & 0x7f == 0x53 && exact && rm != 0).then_some("exact fcvt with rm")
}

/// What talos says about one instruction, in capstone's terms.
fn check_one(cs: &Capstone, bytes: &[u8], addr: u64) -> Result<usize, String> {
    if bytes.len() >= 4 && known_divergence(bytes).is_some()
        || bytes.len() >= 2 && bytes[0] & 3 != 3 && known_divergence(bytes).is_some()
    {
        return Err(String::new());
    }
    let mine = decode_raw(bytes);
    let theirs = cs_one(cs, bytes, addr);
    match (mine, &theirs) {
        (None, None) => return Err(String::new()),
        (Some(m), None) => return Err(format!("talos decodes {m:?}, capstone does not")),
        (None, Some(t)) => return Err(format!("capstone decodes {t:?}, talos does not")),
        _ => {}
    }
    let (m, (len, mn, ops)) = (mine.unwrap(), theirs.unwrap());
    if usize::from(m.len) != len {
        return Err(format!("length {} vs capstone {len} ({mn} {ops})", m.len));
    }
    let flow = RiscvDecoder::new().decode(bytes, addr, None).unwrap().flow;
    let base = mn.trim_start_matches("c.");
    let expect_cond =
        matches!(
            base,
            "beq" | "bne" | "blt" | "bge" | "bltu" | "bgeu" | "beqz" | "bnez"
        ) || (base.starts_with('b') && m.kind != Kind::Other && matches!(m.kind, Kind::Branch(_)));
    match flow {
        Flow::CondJump(t) => {
            if !expect_cond || cs_target(addr, &ops) != Some(t) {
                return Err(format!("cond jump to {t:#x} vs capstone {mn} {ops}"));
            }
        }
        Flow::Jump(t) | Flow::Call(t) => {
            if !matches!(base, "j" | "jal") || cs_target(addr, &ops) != Some(t) {
                return Err(format!("{flow:?} vs capstone {mn} {ops}"));
            }
        }
        Flow::Return | Flow::IndirectJump { .. } | Flow::IndirectCall { .. } => {
            let ok = match m.kind {
                Kind::Jalr => matches!(base, "jalr" | "jr" | "ret"),
                Kind::TrapReturn => base.ends_with("ret"),
                _ => false,
            };
            if !ok {
                return Err(format!("{flow:?} vs capstone {mn} {ops}"));
            }
        }
        Flow::Stop => {
            if !matches!(base, "ebreak" | "unimp") {
                return Err(format!("stop vs capstone {mn} {ops}"));
            }
        }
        Flow::Seq => {
            if matches!(
                base,
                "j" | "jal" | "jalr" | "jr" | "ret" | "ebreak" | "unimp"
            ) || base.starts_with("beq")
                || base.starts_with("bne")
            {
                return Err(format!("no flow vs capstone {mn} {ops}"));
            }
        }
    }
    Ok(len)
}

#[test]
fn every_compressed_encoding_agrees_with_capstone() {
    let cs = capstone();
    let mut bad = Vec::new();
    for h in 0u32..=0xffff {
        if h & 3 == 3 {
            continue;
        }
        let bytes = (h as u16).to_le_bytes();
        if let Err(e) = check_one(&cs, &bytes, 0x10000)
            && !e.is_empty()
        {
            bad.push(format!("{h:#06x}: {e}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of 49152 compressed encodings disagree, e.g.\n{}",
        bad.len(),
        bad.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn sampled_32_bit_encodings_agree_with_capstone() {
    let cs = capstone();
    let mut bad = Vec::new();
    // xorshift: deterministic, covers every opcode and field combination
    // over 400k samples.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut checked = 0u32;
    // Exhaustively, the sparse corners random words rarely hit: every
    // fence/system immediate with rd = rs1 = 0, and every OP-FP
    // funct7/rs2/rm combination.
    let mut corners: Vec<u32> = Vec::new();
    for opcode in [0x0fu32, 0x73] {
        for f3 in 0..8u32 {
            for imm in 0..4096u32 {
                corners.push((imm << 20) | (f3 << 12) | opcode);
            }
        }
    }
    for f7 in 0..128u32 {
        for rs2 in 0..32u32 {
            for rm in 0..8u32 {
                corners.push((f7 << 25) | (rs2 << 20) | (9 << 15) | (rm << 12) | (10 << 7) | 0x53);
            }
        }
    }
    for w in corners {
        if let Err(e) = check_one(&cs, &w.to_le_bytes(), 0x10000)
            && !e.is_empty()
        {
            bad.push(format!("{w:#010x}: {e}"));
        }
    }
    while checked < 400_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let w = (x as u32) | 3;
        if w & 0x1c == 0x1c {
            continue;
        }
        checked += 1;
        if let Err(e) = check_one(&cs, &w.to_le_bytes(), 0x10000)
            && !e.is_empty()
        {
            bad.push(format!("{w:#010x}: {e}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {checked} 32-bit encodings disagree, e.g.\n{}",
        bad.len(),
        bad.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn corpus_text_sweeps_agree_with_capstone() {
    let bins = common::corpus_binaries("riscv64");
    if bins.is_empty() {
        return;
    }
    let cs = capstone();
    for path in bins {
        let bytes = std::fs::read(&path).unwrap();
        let image = talos_cfg::load(&bytes).unwrap();
        let mut decoded = 0usize;
        let mut skipped = 0usize;
        let mut bad = Vec::new();
        for r in image.code_ranges() {
            let mut a = r.start;
            while a < r.end {
                let window = image.bytes_from(a).unwrap();
                let n = usize::try_from(r.end - a).unwrap().min(window.len());
                match check_one(&cs, &window[..n], a) {
                    Ok(len) => {
                        decoded += 1;
                        a += len as u64;
                    }
                    Err(e) => {
                        if !e.is_empty() {
                            bad.push(format!("{a:#x}: {e}"));
                        }
                        skipped += 1;
                        a += 2;
                    }
                }
            }
        }
        assert!(
            bad.is_empty(),
            "{}: {} disagreements in {decoded} instructions, e.g.\n{}",
            path.display(),
            bad.len(),
            bad.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
        );
        // Small programs (errnames) hold a few hundred instructions: the
        // sweep must decode nearly all of the code, whatever the size.
        assert!(
            decoded > 0 && skipped * 10 <= decoded,
            "{}: {decoded} instructions decoded, {skipped} halfwords skipped",
            path.display()
        );
    }
}
