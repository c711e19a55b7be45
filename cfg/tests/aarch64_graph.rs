//! Graph recovery on small hand-encoded A64 programs: `bl`/`ret`, gcc's
//! byte-offset jump table (`adrp`/`add` table, `ldrb` with `uxtw`, `adr`
//! base, `add .., sxtb #2`, `br`, bound from `cmp`/`b.hi`), a `br` through
//! a GOT-like slot, and `bl abort` after a noreturn call kept in the caller.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{Seg, elf64_machine};
use talos_cfg::{EdgeKind, Options};

const EM_AARCH64: u16 = 183;
const RET: u32 = 0xd65f_03c0;

fn movz_w(rd: u32, imm: u32) -> u32 {
    0x5280_0000 | (imm << 5) | rd
}
fn cmp_w_imm(rn: u32, imm: u32) -> u32 {
    0x7100_001f | (imm << 10) | (rn << 5)
}
fn b_cond(from: u64, to: u64, cond: u32) -> u32 {
    let off = ((to as i64 - from as i64) / 4) as u32 & 0x7ffff;
    0x5400_0000 | (off << 5) | cond
}
fn bl(from: u64, to: u64) -> u32 {
    0x9400_0000 | (((to as i64 - from as i64) / 4) as u32 & 0x03ff_ffff)
}
fn adrp(from: u64, to: u64, rd: u32) -> u32 {
    let pages = ((to >> 12) as i64 - (from >> 12) as i64) as u32;
    0x9000_0000 | ((pages & 3) << 29) | (((pages >> 2) & 0x7ffff) << 5) | rd
}
fn adr(from: u64, to: u64, rd: u32) -> u32 {
    let d = (to as i64 - from as i64) as u32;
    0x1000_0000 | ((d & 3) << 29) | (((d >> 2) & 0x7ffff) << 5) | rd
}
fn add_imm(rd: u32, rn: u32, imm: u32) -> u32 {
    0x9100_0000 | (imm << 10) | (rn << 5) | rd
}
fn ldrb_uxtw(rt: u32, rn: u32, rm: u32) -> u32 {
    0x3860_4800 | (rm << 16) | (rn << 5) | rt
}
fn ldr_x(rt: u32, rn: u32, imm: u32) -> u32 {
    0xf940_0000 | ((imm / 8) << 10) | (rn << 5) | rt
}
fn add_sxtb(rd: u32, rn: u32, rm: u32, sh: u32) -> u32 {
    0x8b20_0000 | (rm << 16) | (4 << 13) | (sh << 10) | (rn << 5) | rd
}
fn br(rn: u32) -> u32 {
    0xd61f_0000 | (rn << 5)
}

struct Layout {
    main: u64,
    cases: [u64; 3],
    default: u64,
    table: u64,
}

fn switch_program(text: u64, rodata: u64) -> (Vec<u8>, Vec<u8>, Layout) {
    let mut lay = Layout {
        main: text,
        cases: [0; 3],
        default: 0,
        table: rodata + 0x10,
    };
    let mut words = Vec::new();
    let mut base = 0;
    for _ in 0..2 {
        words.clear();
        let pc = |w: &Vec<u32>| text + 4 * w.len() as u64;
        words.push(cmp_w_imm(0, 2));
        words.push(b_cond(pc(&words), lay.default, 8)); // b.hi
        words.push(adrp(pc(&words), lay.table, 1));
        words.push(add_imm(1, 1, (lay.table & 0xfff) as u32));
        words.push(ldrb_uxtw(2, 1, 0));
        words.push(adr(pc(&words), base, 3));
        words.push(add_sxtb(2, 3, 2, 2));
        words.push(br(2));
        base = pc(&words);
        for (i, c) in lay.cases.iter_mut().enumerate() {
            *c = pc(&words);
            words.push(movz_w(0, 10 + i as u32));
            words.push(RET);
        }
        lay.default = pc(&words);
        words.push(movz_w(0, 0));
        words.push(RET);
    }
    let mut data = vec![0u8; 0x10];
    data.extend(lay.cases.iter().map(|&c| ((c - base) / 4) as u8));
    (
        words.iter().flat_map(|w| w.to_le_bytes()).collect(),
        data,
        lay,
    )
}

fn image(text: u64, code: Vec<u8>, rodata: u64, data: Vec<u8>) -> Vec<u8> {
    elf64_machine(
        EM_AARCH64,
        2,
        text,
        &[
            Seg {
                vaddr: text,
                bytes: code,
                flags: 5,
            },
            Seg {
                vaddr: rodata,
                bytes: data,
                flags: 4,
            },
        ],
    )
}

fn analyze(bytes: &[u8]) -> talos_cfg::Cfg {
    let image = talos_cfg::load(bytes).expect("load");
    assert_eq!(image.arch, talos_cfg::Arch::Aarch64);
    talos_cfg::analyze(&image, &Options::default()).expect("analyze")
}

#[test]
fn byte_offset_jump_table_is_resolved() {
    let (code, data, lay) = switch_program(0x40_0000, 0x41_0000);
    let cfg = analyze(&image(0x40_0000, code, 0x41_0000, data));
    assert_eq!(cfg.functions.len(), 1, "{cfg:#?}");
    assert_eq!(cfg.jump_tables.len(), 1, "unresolved {:?}", cfg.unresolved);
    assert_eq!(cfg.jump_tables[0].table, lay.table);
    assert_eq!(cfg.jump_tables[0].entries, 3);
    assert_eq!(cfg.jump_tables[0].entry_size, 1);
    let f = cfg.function_at(lay.main).unwrap();
    let mut targets: Vec<u64> = f.edge_targets(EdgeKind::JumpTable);
    targets.sort_unstable();
    assert_eq!(targets, lay.cases.to_vec());
    assert!(f.block_containing(lay.default).is_some());
}

#[test]
fn the_same_code_at_another_base_has_the_same_digest() {
    let (c1, d1, _) = switch_program(0x40_0000, 0x41_0000);
    let (c2, d2, _) = switch_program(0x1000_0000, 0x1001_0000);
    let a = analyze(&image(0x40_0000, c1, 0x41_0000, d1));
    let b = analyze(&image(0x1000_0000, c2, 0x1001_0000, d2));
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.functions[0].digest, b.functions[0].digest);
}

#[test]
fn a_table_with_an_unbounded_index_is_left_unresolved() {
    let (code, data, _) = switch_program(0x40_0000, 0x41_0000);
    // Replace `b.hi` by a nop: nothing bounds the index any more.
    let mut code = code;
    code[4..8].copy_from_slice(&0xd503_201fu32.to_le_bytes());
    let cfg = analyze(&image(0x40_0000, code, 0x41_0000, data));
    assert!(cfg.jump_tables.is_empty());
    assert_eq!(cfg.unresolved.len(), 1);
}

#[test]
fn br_through_a_loaded_slot_and_calls() {
    // main: bl f ; adrp x16, slot ; ldr x17, [x16, #lo] ; br x17
    // f:    ret
    let text = 0x40_0000u64;
    let slot = 0x41_0008u64;
    let f = text + 16;
    let words = [
        bl(text, f),
        adrp(text + 4, slot, 16),
        ldr_x(17, 16, (slot & 0xfff) as u32),
        br(17),
        RET,
    ];
    let code: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let cfg = analyze(&image(text, code, 0x41_0000, vec![0; 16]));
    let starts: Vec<u64> = cfg.functions.iter().map(|x| x.addr).collect();
    assert_eq!(starts, vec![text, f]);
    // The slot is no loader slot in this image: honestly unresolved.
    assert_eq!(cfg.unresolved.len(), 1);
}

fn b(from: u64, to: u64) -> u32 {
    0x1400_0000 | (((to as i64 - from as i64) / 4) as u32 & 0x03ff_ffff)
}
fn str_x(rt: u32, rn: u32, imm: u32) -> u32 {
    0xf900_0000 | ((imm / 8) << 10) | (rn << 5) | rt
}
const NOP: u32 = 0xd503_201f;
const SP: u32 = 31;

/// gcc at -O2 in a large function: the table base is built once, spilled
/// to the frame, and reloaded at the switch inside a loop, after a call
/// (which ends what a path can carry in registers and memory).
///
/// ```text
/// main: adrp x1, tbl ; add x1, x1, :lo12:tbl ; str <src>, [sp, #16] ; bl f
/// loop: cmp w0, #2 ; b.hi out ; ldr x1, [sp, #16] ; ldrb w2, [x1, w0, uxtw]
///       adr x3, base ; add x2, x3, w2, sxtb #2 ; br x2
/// base: case i: sub w0, w0, #1 ; b loop      (3 cases)
/// out:  ret
/// f:    ret
/// ```
fn spilled_table_program(text: u64, rodata: u64, src: u32) -> (Vec<u8>, Vec<u8>, Vec<u64>) {
    let table = rodata + 0x20;
    let mut words: Vec<u32> = Vec::new();
    let (mut out, mut f, mut base) = (0u64, 0u64, 0u64);
    let mut cases = Vec::new();
    for _ in 0..2 {
        words.clear();
        cases.clear();
        let pc = |w: &Vec<u32>| text + 4 * w.len() as u64;
        words.push(adrp(pc(&words), table, 1));
        words.push(add_imm(1, 1, (table & 0xfff) as u32));
        words.push(str_x(src, SP, 16));
        words.push(bl(pc(&words), f));
        let lp = pc(&words);
        words.push(cmp_w_imm(0, 2));
        words.push(b_cond(pc(&words), out, 8)); // b.hi
        words.push(ldr_x(1, SP, 16));
        words.push(ldrb_uxtw(2, 1, 0));
        words.push(adr(pc(&words), base, 3));
        words.push(add_sxtb(2, 3, 2, 2));
        words.push(br(2));
        base = pc(&words);
        for _ in 0..3 {
            cases.push(pc(&words));
            words.push(0x5100_0400); // sub w0, w0, #1
            words.push(b(pc(&words), lp));
        }
        out = pc(&words);
        words.push(RET);
        f = pc(&words);
        words.push(RET);
    }
    let mut data = vec![0u8; 0x20];
    data.extend(cases.iter().map(|&c| ((c - base) / 4) as u8));
    (
        words.iter().flat_map(|w| w.to_le_bytes()).collect(),
        data,
        cases,
    )
}

#[test]
fn a_table_base_spilled_to_the_frame_is_followed() {
    let (code, data, cases) = spilled_table_program(0x40_0000, 0x41_0000, 1);
    let cfg = analyze(&image(0x40_0000, code, 0x41_0000, data));
    assert_eq!(cfg.jump_tables.len(), 1, "unresolved {:?}", cfg.unresolved);
    assert_eq!(cfg.jump_tables[0].table, 0x41_0020);
    assert_eq!(cfg.jump_tables[0].entries, 3);
    let f = cfg.function_at(0x40_0000).unwrap();
    let mut targets: Vec<u64> = f.edge_targets(EdgeKind::JumpTable);
    targets.sort_unstable();
    assert_eq!(targets, cases);
}

#[test]
fn a_frame_slot_not_holding_a_constant_is_not_a_table_base() {
    // `str x5, [sp, #16]`: the slot holds whatever x5 was.
    let (code, data, _) = spilled_table_program(0x40_0000, 0x41_0000, 5);
    let cfg = analyze(&image(0x40_0000, code, 0x41_0000, data));
    assert!(cfg.jump_tables.is_empty());
    assert_eq!(cfg.unresolved.len(), 1);
}

/// GNU ld opens an AArch64 stub section with `b <past the stubs>; nop`:
/// that branch is no function, while a one-jump function before padding is.
#[test]
fn a_stub_section_header_is_no_function() {
    let text = 0x40_0000u64;
    // main: bl g ; ret
    // stubs: b g ; nop ; ldr w0, [x0] ; b g+4   (an erratum veneer)
    // g:    mov w0, #0 ; ret
    let g = text + 0x18;
    let words = [
        bl(text, g),
        RET,
        b(text + 8, g),
        NOP,
        0xb940_0000,
        b(text + 0x14, g + 4),
        movz_w(0, 0),
        RET,
    ];
    let code: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let cfg = analyze(&image(text, code, 0x41_0000, vec![0; 16]));
    assert!(cfg.function_at(text + 8).is_none(), "{:?}", cfg.functions);
    assert!(cfg.function_at(g).is_some());

    // main: bl g ; ret ; h: b g ; nop ; g: ret  -- h is a function.
    let g = text + 0x10;
    let words = [bl(text, g), RET, b(text + 8, g), NOP, RET];
    let code: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let cfg = analyze(&image(text, code, 0x41_0000, vec![0; 16]));
    assert!(cfg.function_at(text + 8).is_some(), "{:?}", cfg.functions);
}

fn ldrb_imm0(rt: u32, rn: u32) -> u32 {
    0x3940_0000 | (rn << 5) | rt
}
/// `ldr xt, [xn, wm, uxtw #3]`
fn ldr_x_uxtw3(rt: u32, rn: u32, rm: u32) -> u32 {
    0xf860_5800 | (rm << 16) | (rn << 5) | rt
}
fn movz_x(rd: u32, imm: u32) -> u32 {
    0xd280_0000 | (imm << 5) | rd
}

/// clang's computed-goto dispatch on AArch64 (QuickJS's
/// `dispatch_table[*pc++]`): `ldrb` of the opcode, no range check, `ldr x8,
/// [x25, w22, uxtw #3]; br x8`, the table base in x25, which one handler
/// also sets to another value. The dispatch at the end of a handler longer
/// than a path resolves too, and the handlers stay labels of `main`.
#[test]
fn computed_goto_dispatch_with_a_reused_base_register_resolves_to_labels() {
    let (text, rodata) = (0x40_0000u64, 0x41_0000u64);
    let (x8, x9, x20, x22, x25) = (8, 9, 20, 22, 25);
    let mut handlers = [0u64; 3];
    let mut code = Vec::new();
    for _ in 0..2 {
        let mut w: Vec<u32> = Vec::new();
        let pc = |w: &Vec<u32>| text + 4 * w.len() as u64;
        w.push(adrp(pc(&w), rodata, x25));
        w.push(add_imm(x25, x25, (rodata & 0xfff) as u32));
        let dispatch = |w: &mut Vec<u32>| {
            w.push(ldrb_imm0(x22, x20));
            w.push(add_imm(x20, x20, 1));
            w.push(ldr_x_uxtw3(x8, x25, x22));
            w.push(br(x8));
        };
        dispatch(&mut w);
        handlers[0] = pc(&w);
        for _ in 0..80 {
            w.push(add_imm(x9, x9, 1));
        }
        dispatch(&mut w);
        handlers[1] = pc(&w);
        w.push(movz_x(x25, 6));
        w.push(RET);
        handlers[2] = pc(&w);
        w.push(movz_w(0, 0));
        w.push(RET);
        code = w.iter().flat_map(|x| x.to_le_bytes()).collect();
    }
    let cfg = analyze(&image(text, code, rodata, common::label_table(&handlers)));
    common::assert_dispatch_to_labels(&cfg, text, rodata, &handlers);
}
