//! The RV64GC decoder and the graph builder on arbitrary code: a linear
//! sweep through every decoder entry point (with the constant carried from
//! one instruction to the next, as the builder does), then the bytes
//! wrapped in a minimal RISC-V ELF (code plus a read-only page for jump
//! tables) and analysed, which runs the jump-table interpreter.
#![no_main]

mod elf_wrap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
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
    elf_wrap::sweep_then_build(
        &RiscvDecoder::with_absolute_addresses(input.absolute),
        243,
        2,
        input.addr,
        input.text_page,
        &input.code,
        &input.rodata,
    );
});
