//! Every input a fuzzer ever crashed talos-cfg with, replayed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{Seg, elf32};

fn must_not_panic(bytes: &[u8]) {
    if let Ok(image) = talos_cfg::load(bytes) {
        let _ = talos_cfg::analyze(&image, &talos_cfg::Options::default());
    }
}

/// fuzz/artifacts/cfg_build/crash-2601d474: `and ebx, [mem]` on the path to
/// an indirect jump made the jump-table interpreter ask iced for an
/// immediate operand that was a memory operand (iced panics).
#[test]
fn cfg_build_and_with_memory_operand() {
    let code = vec![
        35, 155, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 34, 35, 35, 35, 35, 255, 255, 111, 78,
    ];
    let bytes = elf32(
        0x4000,
        &[
            Seg {
                vaddr: 0x4000,
                bytes: code,
                flags: 5,
            },
            Seg {
                vaddr: 0x104000,
                bytes: vec![],
                flags: 4,
            },
        ],
    );
    must_not_panic(&bytes);
}
