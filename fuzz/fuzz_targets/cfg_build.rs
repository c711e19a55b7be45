//! The graph builder (talos's own code above the decoder) on arbitrary code
//! bytes at an arbitrary load address: the bytes are wrapped in a minimal
//! valid ELF so the fuzzer spends its time in discovery, jump-table
//! resolution, noreturn and gap analysis rather than in header parsing.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    bits32: bool,
    text_page: u32,
    /// Extra read-only data (jump tables) right after the code.
    rodata: Vec<u8>,
    code: Vec<u8>,
}

fn elf(i: &Input) -> Vec<u8> {
    let class64 = !i.bits32;
    let text = u64::from(i.text_page & 0x000f_ffff) << 12;
    let ro = text + 0x10_0000;
    let (ehsize, phentsize) = if class64 { (64u16, 56u16) } else { (52, 32) };
    let mut out = vec![0u8; 0x1000];
    let code_off = out.len();
    out.extend_from_slice(&i.code);
    out.resize(out.len().div_ceil(0x1000) * 0x1000 + 0x1000, 0);
    let ro_off = out.len();
    out.extend_from_slice(&i.rodata);
    let mut h = Vec::new();
    h.extend_from_slice(b"\x7fELF");
    h.extend_from_slice(&[if class64 { 2 } else { 1 }, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&(if class64 { 62u16 } else { 3 }).to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    let word = |h: &mut Vec<u8>, v: u64| {
        if class64 {
            h.extend_from_slice(&v.to_le_bytes());
        } else {
            h.extend_from_slice(&(v as u32).to_le_bytes());
        }
    };
    word(&mut h, text);
    word(&mut h, u64::from(ehsize));
    word(&mut h, 0);
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&ehsize.to_le_bytes());
    h.extend_from_slice(&phentsize.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&[0; 6]);
    for (vaddr, off, len, flags) in [
        (text, code_off, i.code.len(), 5u32),
        (ro, ro_off, i.rodata.len(), 4u32),
    ] {
        h.extend_from_slice(&1u32.to_le_bytes());
        if class64 {
            h.extend_from_slice(&flags.to_le_bytes());
        }
        word(&mut h, off as u64);
        word(&mut h, vaddr);
        word(&mut h, vaddr);
        word(&mut h, len as u64);
        word(&mut h, len as u64);
        if !class64 {
            h.extend_from_slice(&flags.to_le_bytes());
        }
        word(&mut h, 0x1000);
    }
    out[..h.len()].copy_from_slice(&h);
    out
}

fuzz_target!(|input: Input| {
    let bytes = elf(&input);
    if let Ok(image) = talos_cfg::load(&bytes) {
        let _ = talos_cfg::analyze(&image, &talos_cfg::Options::default());
    }
});
