//! Graph recovery and digest properties on small assembled programs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::exe;
use iced_x86::code_asm::*;
use talos_cfg::{EdgeKind, Options};

fn analyze(bytes: &[u8]) -> talos_cfg::Cfg {
    let image = talos_cfg::load(bytes).expect("load");
    talos_cfg::analyze(&image, &Options::default()).expect("analyze")
}

/// `main` calls `f` and `g` and switches on the result through a jump table
/// placed inside the code (so it must never be decoded as instructions);
/// `g` tail-calls `f`; `die` never returns; `orphan` is reached by nothing.
/// `absolute` selects non-PIE style absolute addressing of `f`.
fn program(ip: u64, absolute: bool, case_imm: u32) -> (Vec<u8>, Labels) {
    let mut a = CodeAssembler::new(64).unwrap();
    let mut main = a.create_label();
    let mut f = a.create_label();
    let mut g = a.create_label();
    let mut die = a.create_label();
    let mut orphan = a.create_label();
    let mut table = a.create_label();
    let mut default = a.create_label();
    let mut cases = [a.create_label(), a.create_label(), a.create_label()];
    let mut after_die = a.create_label();

    a.set_label(&mut main).unwrap();
    a.push(rbp).unwrap();
    a.mov(rbp, rsp).unwrap();
    if absolute {
        // A function pointer as an absolute immediate (non-PIE code).
        a.mov(edi, (ip + 0x10) as u32).unwrap();
    } else {
        a.lea(rdi, ptr(f)).unwrap();
    }
    a.call(f).unwrap();
    a.call(g).unwrap();
    a.cmp(eax, 2).unwrap();
    a.ja(default).unwrap();
    a.mov(eax, eax).unwrap();
    a.lea(rdx, ptr(table)).unwrap();
    a.movsxd(rax, dword_ptr(rdx + rax * 4)).unwrap();
    a.add(rax, rdx).unwrap();
    a.jmp(rax).unwrap();
    for (i, c) in cases.iter_mut().enumerate() {
        a.set_label(c).unwrap();
        a.mov(eax, if i == 1 { case_imm } else { i as u32 + 10 })
            .unwrap();
        a.pop(rbp).unwrap();
        a.ret().unwrap();
    }
    a.set_label(&mut default).unwrap();
    a.call(die).unwrap();
    a.set_label(&mut after_die).unwrap();
    // Garbage after a call that never returns: must not be decoded.
    a.db(&[0xff, 0xff, 0xff, 0xff]).unwrap();
    // The jump table, 4-byte entries relative to the table (patched below).
    a.set_label(&mut table).unwrap();
    a.db(&[0u8; 12]).unwrap();
    a.db(&[0xcc; 4]).unwrap();

    a.set_label(&mut f).unwrap();
    a.mov(eax, 1).unwrap();
    a.ret().unwrap();
    a.db(&[0x0f, 0x1f, 0x40, 0x00]).unwrap(); // nop padding

    a.set_label(&mut g).unwrap();
    a.xor(eax, eax).unwrap();
    a.jmp(f).unwrap(); // tail call
    a.db(&[0xcc, 0xcc]).unwrap();

    a.set_label(&mut die).unwrap();
    a.ud2().unwrap();
    a.db(&[0x90; 3]).unwrap();

    a.set_label(&mut orphan).unwrap();
    a.push(rbx).unwrap();
    a.mov(ebx, 7).unwrap();
    a.pop(rbx).unwrap();
    a.ret().unwrap();

    let r = a
        .assemble_options(
            ip,
            iced_x86::BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS,
        )
        .unwrap();
    let mut code = r.inner.code_buffer.clone();
    let lab = |l: &CodeLabel| r.label_ip(l).unwrap();
    let t = lab(&table);
    for (i, c) in cases.iter().enumerate() {
        let rel = (lab(c) as i64 - t as i64) as i32;
        let off = (t - ip) as usize + 4 * i;
        code[off..off + 4].copy_from_slice(&rel.to_le_bytes());
    }
    let labels = Labels {
        main: lab(&main),
        f: lab(&f),
        g: lab(&g),
        die: lab(&die),
        orphan: lab(&orphan),
        table: t,
        after_die: lab(&after_die),
        cases: cases.iter().map(lab).collect(),
    };
    (code, labels)
}

#[derive(Debug)]
struct Labels {
    main: u64,
    f: u64,
    g: u64,
    die: u64,
    orphan: u64,
    table: u64,
    after_die: u64,
    cases: Vec<u64>,
}

#[test]
fn recovers_functions_edges_and_jump_table() {
    let (code, l) = program(0x401000, false, 11);
    let cfg = analyze(&exe(0x401000, code));
    let starts: Vec<u64> = cfg.functions.iter().map(|f| f.addr).collect();
    assert_eq!(
        starts,
        vec![l.main, l.f, l.g, l.die, l.orphan],
        "{:#x?} vs {l:#x?}",
        starts
    );

    let main = cfg.function_at(l.main).unwrap();
    // The switch: three jump-table edges to the cases.
    let jt: Vec<u64> = main.edge_targets(EdgeKind::JumpTable);
    assert_eq!(jt, l.cases);
    assert_eq!(cfg.jump_tables.len(), 1);
    assert_eq!(cfg.jump_tables[0].table, l.table);
    assert_eq!(cfg.jump_tables[0].entries, 3);
    assert!(cfg.unresolved.is_empty());
    // Nothing decoded inside the table or after the call to `die`.
    for f in &cfg.functions {
        for b in &f.blocks {
            assert!(
                b.end() <= l.table || b.addr >= l.table + 16,
                "block {b:?} in the table"
            );
            assert!(
                !b.contains(l.after_die),
                "decoded past a noreturn call: {b:?}"
            );
        }
    }
    let die = cfg.function_at(l.die).unwrap();
    assert!(die.noreturn);
    let call_die = main
        .blocks
        .iter()
        .find(|b| {
            b.succs
                .iter()
                .any(|e| e.kind == EdgeKind::Call && e.addr == Some(l.die))
        })
        .unwrap();
    assert_eq!(
        call_die.succs.len(),
        1,
        "no fallthrough after a noreturn call"
    );

    let g = cfg.function_at(l.g).unwrap();
    assert!(
        g.blocks[0]
            .succs
            .iter()
            .any(|e| e.kind == EdgeKind::TailCall && e.addr == Some(l.f))
    );
    let orphan = cfg.function_at(l.orphan).unwrap();
    assert_eq!(orphan.source, talos_cfg::FunctionSource::Gap);
    assert_eq!(orphan.size, 1 + 5 + 1 + 1);
    assert_eq!(cfg.function_at(l.f).unwrap().size, 6);
}

#[test]
fn digest_does_not_depend_on_load_address() {
    for absolute in [false, true] {
        let (c1, _) = program(0x401000, absolute, 11);
        let (c2, _) = program(0x1000_0000, absolute, 11);
        let d1 = analyze(&exe(0x401000, c1)).digest;
        let d2 = analyze(&exe(0x1000_0000, c2)).digest;
        assert_eq!(d1, d2, "absolute={absolute}");
    }
}

#[test]
fn digest_changes_with_one_instruction_byte() {
    let (c1, _) = program(0x401000, false, 11);
    let (c2, _) = program(0x401000, false, 12);
    assert_eq!(c1.len(), c2.len());
    let a = analyze(&exe(0x401000, c1));
    let b = analyze(&exe(0x401000, c2));
    assert_ne!(a.digest, b.digest);
    // Only `main` (which holds the changed case) changes.
    let changed: Vec<u64> = a
        .functions
        .iter()
        .zip(&b.functions)
        .filter(|(x, y)| x.digest != y.digest)
        .map(|(x, _)| x.addr)
        .collect();
    assert_eq!(changed, vec![a.functions[0].addr]);
}

#[test]
fn digest_changes_with_one_jump_target() {
    let (code, l) = program(0x401000, false, 11);
    let base = analyze(&exe(0x401000, code.clone()));
    // Retarget `g`'s tail call (jmp rel8/rel32 to f) by one byte back: into
    // the padding before f is still decodable (a different edge target).
    let mut changed = code.clone();
    let jmp_at = (l.g - 0x401000) as usize + 2; // after `xor eax, eax`
    assert!(
        changed[jmp_at] == 0xeb || changed[jmp_at] == 0xe9,
        "{:#x}",
        changed[jmp_at]
    );
    changed[jmp_at + 1] = changed[jmp_at + 1].wrapping_sub(1);
    let other = analyze(&exe(0x401000, changed));
    assert_ne!(base.digest, other.digest);
}

#[test]
fn same_bytes_give_same_output_whatever_the_threads() {
    let (code, _) = program(0x401000, false, 11);
    let bytes = exe(0x401000, code);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| analyze(&bytes));
    let many = analyze(&bytes);
    assert_eq!(one, many);
}

/// Absolute addresses in memory displacements (non-PIE `mov rax,
/// [rax*8+table]`), not only in immediates, are rebased.
#[test]
fn digest_rebases_absolute_displacements() {
    let build = |ip: u64| {
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(rax, qword_ptr(rax * 8 + (ip + 0x20) as i32)).unwrap();
        a.ret().unwrap();
        a.db(&[0u8; 64]).unwrap();
        exe(ip, a.assemble(ip).unwrap())
    };
    let d1 = analyze(&build(0x401000)).digest;
    let d2 = analyze(&build(0x1000_0000)).digest;
    assert_eq!(d1, d2);
}
