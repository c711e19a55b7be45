//! Graph recovery on small hand-encoded RV64GC programs: call/jump/return
//! kinds from the link registers, `auipc` pairs, gcc's jump-table shape,
//! PLT-style slots, and a load-address independent digest for non-PIE
//! `lui`/`addi` code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{Seg, elf64_machine};
use talos_cfg::{EdgeKind, Options};

const EM_RISCV: u16 = 243;
const RA: u32 = 1;
const T1: u32 = 6;
const A0: u32 = 10;
const A4: u32 = 14;
const A5: u32 = 15;

fn i_type(op: u32, f3: u32, rd: u32, rs1: u32, imm: i32) -> u32 {
    ((imm as u32 & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op
}
fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(0x13, 0, rd, rs1, imm)
}
fn slli(rd: u32, rs1: u32, sh: i32) -> u32 {
    i_type(0x13, 1, rd, rs1, sh)
}
fn lw(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(0x03, 2, rd, rs1, imm)
}
fn ld(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(0x03, 3, rd, rs1, imm)
}
fn jalr(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(0x67, 0, rd, rs1, imm)
}
fn add(rd: u32, rs1: u32, rs2: u32) -> u32 {
    (rs2 << 20) | (rs1 << 15) | (rd << 7) | 0x33
}
fn u_type(op: u32, rd: u32, imm20: u32) -> u32 {
    (imm20 << 12) | (rd << 7) | op
}
fn bltu(rs1: u32, rs2: u32, off: i32) -> u32 {
    let o = off as u32;
    (((o >> 12) & 1) << 31)
        | (((o >> 5) & 0x3f) << 25)
        | (rs2 << 20)
        | (rs1 << 15)
        | (6 << 12)
        | (((o >> 1) & 0xf) << 8)
        | (((o >> 11) & 1) << 7)
        | 0x63
}
fn jal(rd: u32, off: i32) -> u32 {
    let o = off as u32;
    (((o >> 20) & 1) << 31)
        | (((o >> 1) & 0x3ff) << 21)
        | (((o >> 11) & 1) << 20)
        | (((o >> 12) & 0xff) << 12)
        | (rd << 7)
        | 0x6f
}
/// `%pcrel_hi` / `%pcrel_lo` of `target` seen from `pc`.
fn pcrel(pc: u64, target: u64) -> (u32, i32) {
    let d = target.wrapping_sub(pc) as i64;
    let hi = ((d + 0x800) >> 12) as u32 & 0xfffff;
    let lo = (d - (((d + 0x800) >> 12) << 12)) as i32;
    (hi, lo)
}
const RET: u32 = 0x0000_8067;

/// Words at consecutive addresses from `base`, with labels resolved by the
/// closure given each word's address.
struct Asm {
    base: u64,
    words: Vec<u32>,
}

impl Asm {
    fn new(base: u64) -> Self {
        Asm {
            base,
            words: Vec::new(),
        }
    }
    fn pc(&self) -> u64 {
        self.base + 4 * self.words.len() as u64
    }
    fn emit(&mut self, w: u32) {
        self.words.push(w);
    }
    fn bytes(&self) -> Vec<u8> {
        self.words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }
}

struct Layout {
    main: u64,
    callee: u64,
    cases: [u64; 4],
    default: u64,
    table: u64,
}

/// `main`: `auipc`+`jalr ra` call to `callee`, then a gcc-style switch on
/// a0 over 4 cases (`bltu` bound, `slli`, table base by `auipc`/`addi`,
/// `lw`, `add`, `jr`); `callee` returns; each case `ret`s.
fn switch_program(text: u64, rodata: u64) -> (Vec<u8>, Vec<u8>, Layout) {
    // Two passes: the first finds the label addresses.
    let mut lay = Layout {
        main: text,
        callee: 0,
        cases: [0; 4],
        default: 0,
        table: rodata,
    };
    let mut out = Vec::new();
    for _ in 0..2 {
        let mut a = Asm::new(text);
        let (hi, lo) = pcrel(a.pc(), lay.callee);
        a.emit(u_type(0x17, RA, hi));
        a.emit(jalr(RA, RA, lo));
        a.emit(addi(A5, 0, 3));
        let here = a.pc();
        a.emit(bltu(A5, A0, (lay.default as i64 - here as i64) as i32));
        a.emit(slli(A0, A0, 2));
        let (hi, lo) = pcrel(a.pc(), lay.table);
        a.emit(u_type(0x17, A4, hi));
        a.emit(addi(A4, A4, lo));
        a.emit(add(A0, A0, A4));
        a.emit(lw(A0, A0, 0));
        a.emit(add(A0, A0, A4));
        a.emit(jalr(0, A0, 0));
        for (i, c) in lay.cases.iter_mut().enumerate() {
            *c = a.pc();
            a.emit(addi(A0, 0, 10 + i as i32));
            a.emit(RET);
        }
        lay.default = a.pc();
        a.emit(addi(A0, 0, 0));
        a.emit(RET);
        lay.callee = a.pc();
        a.emit(addi(A0, A0, 1));
        a.emit(RET);
        out = a.bytes();
    }
    let table: Vec<u8> = lay
        .cases
        .iter()
        .flat_map(|&c| ((c as i64 - lay.table as i64) as i32).to_le_bytes())
        .collect();
    (out, table, lay)
}

fn analyze(bytes: &[u8]) -> talos_cfg::Cfg {
    let image = talos_cfg::load(bytes).expect("load");
    assert_eq!(image.arch, talos_cfg::Arch::Riscv64);
    talos_cfg::analyze(&image, &Options::default()).expect("analyze")
}

fn image(e_type: u16, text: u64, code: Vec<u8>, rodata: u64, data: Vec<u8>) -> Vec<u8> {
    elf64_machine(
        EM_RISCV,
        e_type,
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

#[test]
fn calls_switch_tables_and_returns() {
    let (code, table, lay) = switch_program(0x1_0000, 0x2_0000);
    let cfg = analyze(&image(2, 0x1_0000, code, 0x2_0000, table));
    let starts: Vec<u64> = cfg.functions.iter().map(|f| f.addr).collect();
    assert_eq!(starts, vec![lay.main, lay.callee], "{cfg:#?}");
    assert_eq!(cfg.jump_tables.len(), 1, "{:?}", cfg.unresolved);
    assert_eq!(cfg.jump_tables[0].table, lay.table);
    assert_eq!(cfg.jump_tables[0].entries, 4);
    let main = cfg.function_at(lay.main).unwrap();
    let mut table_targets: Vec<u64> = main.edge_targets(EdgeKind::JumpTable);
    table_targets.sort_unstable();
    assert_eq!(table_targets, lay.cases.to_vec());
    let calls: Vec<u64> = main.edge_targets(EdgeKind::Call);
    assert_eq!(calls, vec![lay.callee]);
    let returns = main.edges().filter(|e| e.kind == EdgeKind::Return).count();
    assert_eq!(returns, 5); // four cases and the default
    assert!(cfg.unresolved.is_empty());
    assert_eq!(cfg.function_at(lay.default), None);
}

#[test]
fn jal_without_link_is_a_jump_and_jr_t1_after_a_slot_load_is_a_tail_call() {
    // main: jal ra, f ; j f (tail call to a known function)
    // f:    auipc t1, slot ; ld t1, lo(t1) ; jr t1 (through a GOT-like slot)
    let text = 0x1_0000u64;
    let f = text + 8;
    let slot = 0x2_0000u64;
    let mut a = Asm::new(text);
    a.emit(jal(RA, (f - a.pc()) as i32));
    a.emit(jal(0, (f - a.pc()) as i32));
    let (hi, lo) = pcrel(a.pc(), slot);
    a.emit(u_type(0x17, T1, hi));
    a.emit(ld(T1, T1, lo));
    a.emit(jalr(0, T1, 0));
    let cfg = analyze(&image(2, text, a.bytes(), slot, vec![0; 8]));
    let main = cfg.function_at(text).unwrap();
    let kinds: Vec<EdgeKind> = main.edges().map(|e| e.kind).collect();
    assert!(kinds.contains(&EdgeKind::Call) && kinds.contains(&EdgeKind::TailCall));
    let callee = cfg.function_at(f).unwrap();
    // Not a loader slot here (no dynamic relocation names it): left as an
    // honest unresolved indirect jump.
    assert_eq!(cfg.unresolved.len(), 1);
    assert_eq!(cfg.unresolved[0].function, callee.addr);
}

/// Non-PIE code builds addresses with `lui`/`addi`: the same code linked at
/// two bases must have the same digest, and a different constant must not.
#[test]
fn digest_of_lui_addressing_is_load_address_independent() {
    let build = |text: u64, tweak: i32| {
        let data = text + 0x1000;
        let hi = (((data + 0x800) >> 12) & 0xfffff) as u32;
        let lo = (data as i64 - (((data as i64 + 0x800) >> 12) << 12)) as i32;
        let mut a = Asm::new(text);
        a.emit(u_type(0x37, A0, hi));
        a.emit(addi(A0, A0, lo));
        a.emit(ld(A0, A0, tweak));
        a.emit(RET);
        let bytes = image(2, text, a.bytes(), data, vec![0; 16]);
        analyze(&bytes).digest
    };
    assert_eq!(build(0x40_0000, 0), build(0x1000_0000, 0));
    assert_ne!(build(0x40_0000, 0), build(0x40_0000, 8));
}

#[test]
fn invalid_words_end_the_walk_without_a_wrong_graph() {
    // main: c.nop-free word stream: addi, then a reserved 48-bit prefix.
    let text = 0x1_0000u64;
    let mut a = Asm::new(text);
    a.emit(addi(A0, 0, 1));
    a.emit(0x0000_003f); // 48-bit encoding space: not RV64GC
    let cfg = analyze(&image(2, text, a.bytes(), 0x2_0000, vec![0; 4]));
    assert!(
        cfg.anomalies
            .iter()
            .any(|x| x.kind == "invalid-instruction" && x.addr == text + 4),
        "{:?}",
        cfg.anomalies
    );
}

const S1: u32 = 9;
const S2: u32 = 18;

fn lbu(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(0x03, 4, rd, rs1, imm)
}

/// QuickJS's computed-goto dispatch as gcc and clang emit it on RISC-V:
/// `dispatch_table[*pc++]` through a table of 8-byte label addresses, with
/// no range check on the opcode byte, and the table base in a callee-saved
/// register (s2) that one handler also uses for another value (so s2 is
/// not set once in the function). Every dispatch, the one inside a handler
/// included, resolves to the handlers, which stay labels of `main`.
#[test]
fn computed_goto_dispatch_on_an_unchecked_opcode_byte_resolves_to_labels() {
    let (text, rodata) = (0x1_0000u64, 0x2_0000u64);
    let mut handlers = [0u64; 3];
    let mut out = Vec::new();
    for _ in 0..2 {
        let mut a = Asm::new(text);
        let (hi, lo) = pcrel(a.pc(), rodata);
        a.emit(u_type(0x17, S2, hi));
        a.emit(addi(S2, S2, lo));
        let dispatch = |a: &mut Asm| {
            a.emit(lbu(A0, S1, 0));
            a.emit(addi(S1, S1, 1));
            a.emit(slli(A0, A0, 3));
            a.emit(add(A0, A0, S2));
            a.emit(ld(A0, A0, 0));
            a.emit(jalr(0, A0, 0));
        };
        dispatch(&mut a);
        // h0: an opcode whose work (longer than the 64 instructions of a
        // path) ends in the next dispatch, so no path from it reaches the
        // table base's definition.
        handlers[0] = a.pc();
        for _ in 0..80 {
            a.emit(addi(A4, A4, 1));
        }
        dispatch(&mut a);
        // h1: s2 reused for a count, then the interpreter returns.
        handlers[1] = a.pc();
        a.emit(addi(S2, 0, 6));
        a.emit(addi(A0, S2, 0));
        a.emit(RET);
        // h2: return.
        handlers[2] = a.pc();
        a.emit(addi(A0, 0, 0));
        a.emit(RET);
        out = a.bytes();
    }
    // The three label addresses, then a word that is not code: the table's
    // extent (the opcode byte would allow 256 entries).
    let cfg = analyze(&image(2, text, out, rodata, common::label_table(&handlers)));
    common::assert_dispatch_to_labels(&cfg, text, rodata, &handlers);
}
