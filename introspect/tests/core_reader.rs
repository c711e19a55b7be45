//! The ELF core reader on synthetic cores (see `synth/mod.rs`): both
//! layouts, every note talos reads, note order, truncation, malformed
//! fields, PN_XNUM; and the snapshot writer read back.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod synth;

use talos_introspect::Error;
use talos_introspect::core::parse;
use talos_introspect::dump::Source;
use talos_introspect::region::RegionKind;

use synth::{PF_R, PF_W, PF_X, Synth};

const VDSO: u64 = 0x7fff_f7fc_1000;

/// A small process: an executable's text, its data, a heap, a stack, the
/// vvar and vDSO pages, and two threads.
fn process(mut s: Synth, page_size_units: u64) -> Synth {
    let text = vec![0x90u8; 0x1000];
    s.load(0x40_0000, 0x1000, PF_R | PF_X, &text)
        .load(0x40_1000, 0x2000, PF_R | PF_W, &[7u8; 0x1000]) // filesz < memsz
        .load(0x60_0000, 0x1000, PF_R | PF_W, &[1u8; 0x1000])
        .load(VDSO - 0x4000, 0x4000, PF_R, &[]) // [vvar]
        .load(VDSO, 0x2000, PF_R | PF_X, &[0xcc; 0x2000])
        .load(0x7fff_ff00_0000, 0x1000, PF_R | PF_W, b"/usr/bin/app\0");
    s.prstatus(
        100,
        0x40_0010,
        0x7fff_ff00_0800,
        0x7fff_ff00_0900,
        0x60_0100,
    )
    .prpsinfo(100, "app", "/usr/bin/app --flag")
    .auxv(&[
        (6, 4096),
        (9, 0x40_0000),
        (31, 0x7fff_ff00_0000),
        (33, VDSO),
    ])
    .nt_file(
        page_size_units,
        &[
            (0x40_0000, 0x40_1000, 0, "/usr/bin/app"),
            (0x40_1000, 0x40_3000, 0x1000, "/usr/bin/app"),
            (0x50_0000, 0x50_1000, 0x3000, "/lib/gone.so (deleted)"),
        ],
    )
    .siginfo(6)
    .prstatus(101, 0x40_0020, 0x7fff_ff00_0400, 0, 0x60_0200);
    s
}

fn check_process(d: &talos_introspect::dump::Dump<'_>) {
    assert_eq!(d.regions.len(), 6);
    let text = &d.regions[0];
    assert_eq!((text.start, text.end), (0x40_0000, 0x40_1000));
    assert!(text.perms.read && text.perms.execute && !text.perms.write);
    assert_eq!(
        text.kind,
        RegionKind::File {
            path: "/usr/bin/app".into(),
            offset: 0
        }
    );
    assert_eq!(text.bytes.len(), 0x1000);
    assert_eq!(text.bytes[0], 0x90);
    let data = &d.regions[1];
    assert_eq!(data.bytes.len(), 0x1000);
    assert_eq!(data.len(), 0x2000);
    assert!(!data.is_complete());
    assert_eq!(
        data.kind,
        RegionKind::File {
            path: "/usr/bin/app".into(),
            offset: 0x1000
        }
    );
    assert_eq!(d.regions[2].kind, RegionKind::Anonymous);
    assert_eq!(d.regions[3].kind, RegionKind::Vvar);
    assert!(d.regions[3].bytes.is_empty());
    assert_eq!(d.regions[4].kind, RegionKind::Vdso);
    assert_eq!(d.regions[5].kind, RegionKind::Stack);
    assert_eq!(d.threads.len(), 2);
    let t = d.threads.iter().find(|t| t.tid == 100).unwrap();
    assert_eq!(t.pc(), Some(0x40_0010));
    assert_eq!(t.sp(), Some(0x7fff_ff00_0800));
    assert_eq!(t.fs_base(), Some(0x60_0100));
    assert_eq!(t.regs.get("rbp"), Some(0x7fff_ff00_0900));
    assert_eq!(t.signal, 6);
    let t = d.threads.iter().find(|t| t.tid == 101).unwrap();
    assert_eq!(t.pc(), Some(0x40_0020));
    assert_eq!(d.auxv_get(33), Some(VDSO));
    assert_eq!(d.page_size, 4096);
    assert_eq!(d.signal, Some(6));
    let p = d.process.as_ref().unwrap();
    assert_eq!((p.pid, p.uid, p.gid), (100, 1000, 100));
    assert_eq!(p.name, "app");
    assert_eq!(p.args, "/usr/bin/app --flag");
    assert_eq!(d.file_mappings.len(), 3);
    assert_eq!(d.file_mappings[1].offset, 0x1000);
    assert_eq!(d.file_mappings[2].offset, 0x3000);
    assert!(d.file_mappings[2].deleted());
    assert_eq!(d.file_mappings[2].clean_path(), "/lib/gone.so");
    assert_eq!(d.read_u64(0x60_0000), Some(0x0101_0101_0101_0101));
    assert_eq!(d.read(0x40_1ff8, 16), None, "a read past the bytes held");
}

#[test]
fn kernel_layout_with_page_units() {
    let bytes = process(Synth::kernel(), 4096).build();
    let d = parse(&bytes).unwrap();
    assert_eq!(d.source, Source::Kernel);
    check_process(&d);
    assert!(d.anomalies.is_empty(), "{:?}", d.anomalies);
}

#[test]
fn gdb_layout_with_byte_units_and_notes_at_the_end() {
    let bytes = process(Synth::gdb(), 1).build();
    let d = parse(&bytes).unwrap();
    assert_eq!(d.source, Source::Gdb);
    check_process(&d);
}

#[test]
fn note_order_does_not_matter() {
    let s = process(Synth::kernel(), 4096);
    let mut r = s.clone();
    r.notes.reverse();
    let (a, b) = (s.build(), r.build());
    let (da, db) = (parse(&a).unwrap(), parse(&b).unwrap());
    check_process(&db);
    // Threads keep their order relative to each other.
    assert_eq!(
        da.threads.iter().map(|t| t.tid).collect::<Vec<_>>(),
        db.threads.iter().rev().map(|t| t.tid).collect::<Vec<_>>()
    );
    assert_eq!(da.file_mappings, db.file_mappings);
    assert_eq!(da.auxv, db.auxv);
}

#[test]
fn truncated_core_keeps_what_is_there() {
    let bytes = process(Synth::kernel(), 4096).build();
    // Cut inside the stack segment's 13 bytes (the last page of the file).
    let cut = &bytes[..bytes.len() - 4096 + 7];
    let d = parse(cut).unwrap();
    let stack = d.regions.last().unwrap();
    assert_eq!(stack.bytes.len(), 7);
    assert!(d.anomalies.iter().any(|a| a.code == "truncated-segment"));
    // Cut inside the program header table: unreadable.
    match parse(&bytes[..100]) {
        Err(Error::Truncated { what, .. }) => assert_eq!(what, "program header table"),
        other => panic!("{other:?}"),
    }
    // Every prefix either reads or fails with an error: never a panic.
    for n in (0..bytes.len()).step_by(97) {
        let _ = parse(&bytes[..n]);
    }
}

#[test]
fn malformed_nt_file_is_an_anomaly_not_an_error() {
    let mut s = process(Synth::kernel(), 4096);
    for n in &mut s.notes {
        if n.1 == 0x4649_4c45 {
            n.2[0..8].copy_from_slice(&u64::MAX.to_le_bytes()); // count
        }
    }
    let built = s.build();
    let d = parse(&built).unwrap();
    assert!(d.file_mappings.is_empty());
    assert!(d.anomalies.iter().any(|a| a.code == "malformed-note"));
    assert_eq!(d.regions.len(), 6);
    assert_eq!(d.threads.len(), 2);
}

#[test]
fn short_prstatus_and_bad_note_sizes() {
    let mut s = Synth::kernel();
    s.load(0x1000, 0x1000, PF_R, &[0; 16]);
    s.note(b"CORE", 1, vec![0; 100]); // too short for x86-64 registers
    let built = s.build();
    let d = parse(&built).unwrap();
    assert!(d.threads.is_empty());
    assert!(d.anomalies.iter().any(|a| a.code == "malformed-note"));
    // A note whose descriptor size runs past its segment.
    let mut bytes = s.build();
    let notes_off = 64 + 56 * 2;
    bytes[notes_off + 4..notes_off + 8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let d = parse(&bytes).unwrap();
    assert!(d.anomalies.iter().any(|a| a.code == "malformed-note"));
    assert_eq!(d.regions.len(), 1);
}

#[test]
fn overlapping_and_oversized_segments() {
    let mut s = Synth::kernel();
    s.load(0x1000, 0x2000, PF_R, &[1; 0x100])
        .load(0x2000, 0x1000, PF_R, &[2; 0x100])
        .load(0x9000, 0x10, PF_R, &[3; 0x100]); // filesz > memsz
    let built = s.build();
    let d = parse(&built).unwrap();
    assert_eq!(d.regions.len(), 2);
    assert_eq!(d.regions[1].bytes.len(), 0x10);
    let codes: Vec<&str> = d.anomalies.iter().map(|a| a.code).collect();
    assert!(codes.contains(&"overlapping-segments"), "{codes:?}");
    assert!(codes.contains(&"bad-segment"), "{codes:?}");
}

#[test]
fn rejects_what_is_not_a_64_bit_core() {
    assert!(matches!(parse(b"hello world"), Err(Error::BadMagic { .. })));
    let exe = std::fs::read("/bin/true").unwrap();
    match parse(&exe) {
        Err(Error::NotCore { e_type, .. }) => assert_eq!(e_type, 3),
        other => panic!("{other:?}"),
    }
    let mut core32 = Synth::kernel().build();
    core32[4] = 1;
    assert!(matches!(parse(&core32), Err(Error::Unsupported(_))));
    let mut other_machine = Synth::kernel();
    other_machine.machine = 8; // MIPS
    let e = parse(&other_machine.build()).unwrap_err();
    assert_eq!(e.code(), "unsupported");
}

#[test]
fn pn_xnum_program_header_count() {
    // 70000 one-page segments need the count in section header 0.
    let mut s = Synth::kernel();
    for i in 0..70_000u64 {
        s.load(0x1000_0000 + i * 0x2000, 0x1000, PF_R, &[]);
    }
    let mut bytes = s.build();
    let phnum = 70_001u32;
    let shoff = bytes.len() as u64;
    bytes[56..58].copy_from_slice(&0xffffu16.to_le_bytes());
    bytes[40..48].copy_from_slice(&shoff.to_le_bytes());
    bytes[60..62].copy_from_slice(&1u16.to_le_bytes());
    let mut sh = vec![0u8; 64];
    sh[44..48].copy_from_slice(&phnum.to_le_bytes());
    bytes.extend_from_slice(&sh);
    let d = parse(&bytes).unwrap();
    assert_eq!(d.regions.len(), 70_000);
}

#[test]
fn snapshot_writer_round_trips() {
    let bytes = process(Synth::kernel(), 4096).build();
    let d = parse(&bytes).unwrap();
    let mut out = Vec::new();
    talos_introspect::snapshot::write_core(&d, &mut out).unwrap();
    let r = parse(&out).unwrap();
    assert_eq!(r.source, Source::Snapshot);
    check_process(&r);
    assert_eq!(r.threads, d.threads);
    assert_eq!(r.auxv, d.auxv);
    assert_eq!(r.file_mappings, d.file_mappings);
    for (a, b) in r.regions.iter().zip(&d.regions) {
        assert_eq!(
            (a.start, a.end, a.perms, &a.kind),
            (b.start, b.end, b.perms, &b.kind)
        );
        assert_eq!(a.bytes, b.bytes);
    }
    // Every load is page-aligned in the file.
    let phnum = u16::from_le_bytes([out[56], out[57]]) as usize;
    for i in 1..phnum {
        let off = u64::from_le_bytes(out[64 + 56 * i + 8..64 + 56 * i + 16].try_into().unwrap());
        assert_eq!(off % 4096, 0);
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Random byte changes anywhere in a valid core never panic.
        #[test]
        fn mutated_cores_never_panic(edits in proptest::collection::vec((0usize..20_000, any::<u8>()), 1..24)) {
            let mut bytes = process(Synth::gdb(), 1).build();
            for (at, b) in edits {
                let n = bytes.len();
                bytes[at % n] = b;
            }
            if let Ok(d) = parse(&bytes) {
                for r in &d.regions {
                    prop_assert!(r.bytes.len() as u64 <= r.len());
                }
            }
        }
    }
}
