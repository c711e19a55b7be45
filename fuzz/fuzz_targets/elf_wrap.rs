//! A minimal little-endian ELF64 executable around fuzzer bytes: code at
//! `text_page << 12` (R+X) and read-only data 1 MiB above it (R), no
//! section headers. Shared by the decoder targets.

/// The ELF bytes for machine `e_machine`.
pub fn elf64(e_machine: u16, text_page: u32, code: &[u8], rodata: &[u8]) -> Vec<u8> {
    let text = u64::from(text_page & 0x000f_ffff) << 12;
    let ro = text + 0x10_0000;
    let mut out = vec![0u8; 0x1000];
    let code_off = out.len();
    out.extend_from_slice(code);
    out.resize(out.len().div_ceil(0x1000) * 0x1000 + 0x1000, 0);
    let ro_off = out.len();
    out.extend_from_slice(rodata);
    let mut h = Vec::new();
    h.extend_from_slice(b"\x7fELF");
    h.extend_from_slice(&[2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&e_machine.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&text.to_le_bytes());
    h.extend_from_slice(&64u64.to_le_bytes());
    h.extend_from_slice(&0u64.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&64u16.to_le_bytes());
    h.extend_from_slice(&56u16.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&[0; 6]);
    for (vaddr, off, len, flags) in [
        (text, code_off, code.len(), 5u32),
        (ro, ro_off, rodata.len(), 4u32),
    ] {
        h.extend_from_slice(&1u32.to_le_bytes());
        h.extend_from_slice(&flags.to_le_bytes());
        h.extend_from_slice(&(off as u64).to_le_bytes());
        h.extend_from_slice(&vaddr.to_le_bytes());
        h.extend_from_slice(&vaddr.to_le_bytes());
        h.extend_from_slice(&(len as u64).to_le_bytes());
        h.extend_from_slice(&(len as u64).to_le_bytes());
        h.extend_from_slice(&0x1000u64.to_le_bytes());
    }
    out[..h.len()].copy_from_slice(&h);
    out
}

/// What both fixed-width decoder targets do with their input: a linear
/// sweep of `code` at `addr` through every decoder entry point (with the
/// constant carried from one instruction to the next, as the builder does;
/// `skip` bytes forward where nothing decodes), then the bytes wrapped in a
/// minimal ELF for `e_machine` and analysed, which runs the jump-table
/// interpreter.
pub fn sweep_then_build(
    dec: &dyn talos_cfg::arch::Isa,
    e_machine: u16,
    skip: usize,
    addr: u64,
    text_page: u32,
    code: &[u8],
    rodata: &[u8],
) {
    let mut at = 0usize;
    let mut prev = None;
    while let Some(window) = code.get(at..) {
        if window.is_empty() {
            break;
        }
        let pc = addr.wrapping_add(at as u64);
        let _ = dec.render(window, pc);
        let mut out = Vec::new();
        let _ = dec.canonical_bytes(window, pc, (0, u64::MAX), addr, &mut out);
        match dec.decode(window, pc, prev.as_ref()) {
            Some(i) => {
                let _ = dec.is_padding(window, &i);
                at += usize::from(i.len);
                prev = Some(i);
            }
            None => {
                at += skip;
                prev = None;
            }
        }
    }
    let bytes = elf64(e_machine, text_page, code, rodata);
    if let Ok(image) = talos_cfg::load(&bytes) {
        let _ = talos_cfg::analyze(&image, &talos_cfg::Options::default());
    }
}
