//! The RV64GC decoder and the graph builder on arbitrary code: a linear
//! sweep through every decoder entry point (with the constant carried from
//! one instruction to the next, as the builder does), then the bytes
//! wrapped in a minimal RISC-V ELF (code plus a read-only page for jump
//! tables) and analysed, which runs the jump-table interpreter.
#![no_main]

mod elf_wrap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use talos_cfg::arch::Decoder;
use talos_cfg::arch::riscv::RiscvDecoder;

#[derive(Debug, Arbitrary)]
struct Input {
    addr: u64,
    absolute: bool,
    text_page: u32,
    rodata: Vec<u8>,
    code: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let dec = RiscvDecoder::with_absolute_addresses(input.absolute);
    let mut at = 0usize;
    let mut prev = None;
    while let Some(window) = input.code.get(at..) {
        if window.is_empty() {
            break;
        }
        let addr = input.addr.wrapping_add(at as u64);
        let _ = dec.render(window, addr);
        let mut out = Vec::new();
        let _ = dec.canonical_bytes(window, addr, (0, u64::MAX), input.addr, &mut out);
        match dec.decode(window, addr, prev.as_ref()) {
            Some(i) => {
                let _ = dec.is_padding(window, &i);
                at += usize::from(i.len);
                prev = Some(i);
            }
            None => {
                at += 2;
                prev = None;
            }
        }
    }
    let bytes = elf_wrap::elf64(243, input.text_page, &input.code, &input.rodata);
    if let Ok(image) = talos_cfg::load(&bytes) {
        let _ = talos_cfg::analyze(&image, &talos_cfg::Options::default());
    }
});
