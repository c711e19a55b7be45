//! The PE32+ loader and graph recovery on a PE file written byte by byte
//! here (not with goblin's structures, so a loader mistake cannot hide in
//! both), plus malformed and unsupported headers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use talos_cfg::{FunctionSource, ImageKind, Options};

const BASE: u64 = 0x1_4000_0000;
const TEXT_RVA: u32 = 0x1000;
const RDATA_RVA: u32 = 0x2000;
const TEXT_RAW: u32 = 0x400;
const RDATA_RAW: u32 = 0x800;
const FILE_ALIGN: u32 = 0x200;

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Function addresses (RVAs) in the test image.
const MAIN: u32 = 0x1000; // entry: call helper; call thunk (ExitProcess)
const HELPER: u32 = 0x1010; // ret (pdata only)
const THUNK: u32 = 0x1020; // jmp [rip+iat]
const EXPORTED: u32 = 0x1030; // ret (export + pdata)
const TLS_CB: u32 = 0x1040; // ret (TLS callback only)
const POINTED: u32 = 0x1050; // xor eax,eax; ret (base relocation only)

/// .rdata layout (RVAs).
const IAT: u32 = 0x2000; // 2 x u64: ExitProcess, 0
const ILT: u32 = 0x2010; // 2 x u64
const HINT_NAME: u32 = 0x2020; // u16 hint + "ExitProcess\0"
const DLL_NAME: u32 = 0x2030; // "KERNEL32.dll\0"
const IMPORT_DIR: u32 = 0x2040; // 2 x 20 bytes
const PDATA: u32 = 0x2070; // 3 x 12 bytes
const EXPORT_DIR: u32 = 0x20a0; // 40 bytes
const EXPORT_EAT: u32 = 0x20c8;
const EXPORT_NAMES: u32 = 0x20cc;
const EXPORT_ORDS: u32 = 0x20d0;
const EXPORT_NAME: u32 = 0x20d4; // "exported\0"
const EXPORT_DLL: u32 = 0x20e0; // "t.dll\0"
const TLS_DIR: u32 = 0x2100; // 40 bytes
const TLS_CALLBACKS: u32 = 0x2130; // 2 x u64
const TLS_INDEX: u32 = 0x2140;
const FPTR: u32 = 0x2150; // u64 = BASE + POINTED (base-relocated)
const RELOC: u32 = 0x2160; // one block
const RDATA_SIZE: u32 = 0x180;

fn text() -> Vec<u8> {
    let mut t = vec![0xccu8; 0x60];
    let rel32 = |from_next: u32, to: u32| (to as i64 - from_next as i64) as i32;
    // main: call helper ; call thunk ; int3
    t[0] = 0xe8;
    t[1..5].copy_from_slice(&rel32(MAIN + 5, HELPER).to_le_bytes());
    t[5] = 0xe8;
    t[6..10].copy_from_slice(&rel32(MAIN + 10, THUNK).to_le_bytes());
    // helper: ret
    t[0x10] = 0xc3;
    // thunk: jmp qword [rip + IAT]
    t[0x20] = 0xff;
    t[0x21] = 0x25;
    t[0x22..0x26].copy_from_slice(&rel32(THUNK + 6, IAT).to_le_bytes());
    t[0x26] = 0x90;
    t[0x27] = 0x90;
    // exported: ret ; tls callback: ret ; pointed: xor eax,eax ; ret
    t[0x30] = 0xc3;
    t[0x40] = 0xc3;
    t[0x50..0x53].copy_from_slice(&[0x31, 0xc0, 0xc3]);
    t
}

fn rdata() -> Vec<u8> {
    let mut r = vec![0u8; RDATA_SIZE as usize];
    let at = |rva: u32| (rva - RDATA_RVA) as usize;
    put64(&mut r, at(IAT), u64::from(HINT_NAME));
    put64(&mut r, at(ILT), u64::from(HINT_NAME));
    r[at(HINT_NAME) + 2..at(HINT_NAME) + 14].copy_from_slice(b"ExitProcess\0");
    r[at(DLL_NAME)..at(DLL_NAME) + 13].copy_from_slice(b"KERNEL32.dll\0");
    // IMAGE_IMPORT_DESCRIPTOR: ILT, time, forwarder, name, IAT.
    put32(&mut r, at(IMPORT_DIR), ILT);
    put32(&mut r, at(IMPORT_DIR) + 12, DLL_NAME);
    put32(&mut r, at(IMPORT_DIR) + 16, IAT);
    // RUNTIME_FUNCTION: begin, end, unwind info (unused here).
    for (i, (b, e)) in [
        (MAIN, MAIN + 11),
        (HELPER, HELPER + 1),
        (EXPORTED, EXPORTED + 1),
    ]
    .iter()
    .enumerate()
    {
        put32(&mut r, at(PDATA) + 12 * i, *b);
        put32(&mut r, at(PDATA) + 12 * i + 4, *e);
        put32(&mut r, at(PDATA) + 12 * i + 8, 0x2170);
    }
    // Export directory with one named export.
    let ed = at(EXPORT_DIR);
    put32(&mut r, ed + 12, EXPORT_DLL);
    put32(&mut r, ed + 16, 1); // ordinal base
    put32(&mut r, ed + 20, 1); // address table entries
    put32(&mut r, ed + 24, 1); // name pointers
    put32(&mut r, ed + 28, EXPORT_EAT);
    put32(&mut r, ed + 32, EXPORT_NAMES);
    put32(&mut r, ed + 36, EXPORT_ORDS);
    put32(&mut r, at(EXPORT_EAT), EXPORTED);
    put32(&mut r, at(EXPORT_NAMES), EXPORT_NAME);
    put16(&mut r, at(EXPORT_ORDS), 0);
    r[at(EXPORT_NAME)..at(EXPORT_NAME) + 9].copy_from_slice(b"exported\0");
    r[at(EXPORT_DLL)..at(EXPORT_DLL) + 6].copy_from_slice(b"t.dll\0");
    // IMAGE_TLS_DIRECTORY64: start, end, index, callbacks (VAs), zero fill,
    // characteristics.
    let td = at(TLS_DIR);
    put64(&mut r, td, BASE + u64::from(TLS_INDEX));
    put64(&mut r, td + 8, BASE + u64::from(TLS_INDEX) + 8);
    put64(&mut r, td + 16, BASE + u64::from(TLS_INDEX));
    put64(&mut r, td + 24, BASE + u64::from(TLS_CALLBACKS));
    put64(&mut r, at(TLS_CALLBACKS), BASE + u64::from(TLS_CB));
    // A function pointer in data, known only through its base relocation.
    put64(&mut r, at(FPTR), BASE + u64::from(POINTED));
    // Base relocation block: page RVA, block size, one DIR64 entry, pad.
    put32(&mut r, at(RELOC), RDATA_RVA);
    put32(&mut r, at(RELOC) + 4, 12);
    put16(
        &mut r,
        at(RELOC) + 8,
        (10 << 12) | (FPTR - RDATA_RVA) as u16,
    );
    r
}

/// The whole PE32+ file. `dll` sets IMAGE_FILE_DLL; `machine` and `magic`
/// allow unsupported variants.
fn pe(dll: bool, machine: u16, magic: u16) -> Vec<u8> {
    let mut f = vec![0u8; RDATA_RAW as usize + 0x200];
    f[0..2].copy_from_slice(b"MZ");
    put32(&mut f, 0x3c, 0x40);
    f[0x40..0x44].copy_from_slice(b"PE\0\0");
    let coff = 0x44;
    put16(&mut f, coff, machine);
    put16(&mut f, coff + 2, 2); // sections
    put16(&mut f, coff + 16, 240); // optional header size
    put16(&mut f, coff + 18, 0x0022 | if dll { 0x2000 } else { 0 });
    let opt = coff + 20;
    put16(&mut f, opt, magic);
    put32(&mut f, opt + 4, 0x200); // size of code
    put32(&mut f, opt + 16, MAIN); // entry
    put32(&mut f, opt + 20, TEXT_RVA); // base of code
    put64(&mut f, opt + 24, BASE);
    put32(&mut f, opt + 32, 0x1000); // section alignment
    put32(&mut f, opt + 36, FILE_ALIGN);
    put16(&mut f, opt + 40, 6); // OS version
    put16(&mut f, opt + 48, 6); // subsystem version
    put32(&mut f, opt + 56, 0x3000); // size of image
    put32(&mut f, opt + 60, 0x400); // size of headers
    put16(&mut f, opt + 68, 3); // subsystem: console
    put16(&mut f, opt + 70, 0x0160); // dynamic base, NX, high entropy
    put64(&mut f, opt + 72, 0x10_0000);
    put64(&mut f, opt + 80, 0x1000);
    put64(&mut f, opt + 88, 0x10_0000);
    put64(&mut f, opt + 96, 0x1000);
    put32(&mut f, opt + 108, 16); // data directories
    let dd = opt + 112;
    let dir = |f: &mut Vec<u8>, i: usize, rva: u32, size: u32| {
        put32(f, dd + 8 * i, rva);
        put32(f, dd + 8 * i + 4, size);
    };
    dir(&mut f, 0, EXPORT_DIR, 0x40);
    dir(&mut f, 1, IMPORT_DIR, 40);
    dir(&mut f, 3, PDATA, 36);
    dir(&mut f, 5, RELOC, 12);
    dir(&mut f, 9, TLS_DIR, 40);
    dir(&mut f, 12, IAT, 16);
    let sec = opt + 240;
    let section =
        |f: &mut Vec<u8>, i: usize, name: &[u8], rva: u32, size: u32, raw: u32, ch: u32| {
            let s = sec + 40 * i;
            f[s..s + name.len()].copy_from_slice(name);
            put32(f, s + 8, size);
            put32(f, s + 12, rva);
            put32(f, s + 16, FILE_ALIGN);
            put32(f, s + 20, raw);
            put32(f, s + 36, ch);
        };
    section(&mut f, 0, b".text", TEXT_RVA, 0x60, TEXT_RAW, 0x6000_0020);
    section(
        &mut f,
        1,
        b".rdata",
        RDATA_RVA,
        RDATA_SIZE,
        RDATA_RAW,
        0x4000_0040,
    );
    let t = text();
    f[TEXT_RAW as usize..TEXT_RAW as usize + t.len()].copy_from_slice(&t);
    let r = rdata();
    f[RDATA_RAW as usize..RDATA_RAW as usize + r.len()].copy_from_slice(&r);
    f
}

#[test]
fn loads_sections_imports_exports_pdata_tls_and_relocations() {
    let bytes = pe(false, 0x8664, 0x20b);
    let image = talos_cfg::load(&bytes).unwrap();
    assert_eq!(image.format, talos_cfg::Format::Pe);
    assert_eq!(image.arch, talos_cfg::Arch::X86_64);
    assert_eq!(image.kind, ImageKind::PieExecutable);
    assert_eq!(image.base, BASE);
    assert_eq!(image.entry, Some(BASE + u64::from(MAIN)));
    let names: Vec<&str> = image.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec![".text", ".rdata"]);
    assert_eq!(
        image
            .import_slots
            .get(&(BASE + u64::from(IAT)))
            .map(String::as_str),
        Some("ExitProcess")
    );
    assert_eq!(
        image
            .fdes
            .iter()
            .map(|f| (f.start - BASE, f.len))
            .collect::<Vec<_>>(),
        vec![
            (u64::from(MAIN), 11),
            (u64::from(HELPER), 1),
            (u64::from(EXPORTED), 1)
        ]
    );
    assert_eq!(image.init_fini, vec![BASE + u64::from(TLS_CB)]);
    assert_eq!(image.code_pointers, vec![BASE + u64::from(POINTED)]);
    assert!(!image.text_relocations);
    let exported = image.symbols.iter().find(|s| s.name == "exported").unwrap();
    assert_eq!(exported.addr, BASE + u64::from(EXPORTED));
}

#[test]
fn graph_finds_every_kind_of_function_and_names_the_thunk() {
    let bytes = pe(false, 0x8664, 0x20b);
    let image = talos_cfg::load(&bytes).unwrap();
    let cfg = talos_cfg::analyze(&image, &Options::default()).unwrap();
    let by_rva = |rva: u32| cfg.function_at(BASE + u64::from(rva)).unwrap();
    assert_eq!(by_rva(MAIN).source, FunctionSource::Entry);
    assert_eq!(by_rva(HELPER).source, FunctionSource::Fde);
    assert_eq!(by_rva(EXPORTED).name.as_deref(), Some("exported"));
    assert_eq!(by_rva(TLS_CB).source, FunctionSource::InitFini);
    assert_eq!(by_rva(POINTED).source, FunctionSource::Pointer);
    let thunk = by_rva(THUNK);
    assert_eq!(thunk.name.as_deref(), Some("ExitProcess@iat"));
    assert_eq!(thunk.size, 6);
    // ExitProcess never returns, so neither does its thunk, and main's call
    // to it has no fallthrough.
    assert!(thunk.noreturn);
    assert_eq!(cfg.functions.len(), 6, "{cfg:#?}");
}

#[test]
fn dll_kind_and_the_digest_ignores_names() {
    let exe = pe(false, 0x8664, 0x20b);
    let dll = pe(true, 0x8664, 0x20b);
    let a = talos_cfg::load(&exe).unwrap();
    let b = talos_cfg::load(&dll).unwrap();
    assert_eq!(b.kind, ImageKind::SharedObject);
    let ca = talos_cfg::analyze(&a, &Options::default()).unwrap();
    let cb = talos_cfg::analyze(&b, &Options::default()).unwrap();
    assert_eq!(ca.digest, cb.digest);
}

#[test]
fn unsupported_machines_and_variants_are_named() {
    let err = |b: &[u8]| talos_cfg::load(b).err().unwrap();
    let e = err(&pe(false, 0x14c, 0x10b));
    assert_eq!(e.code(), "unsupported-arch");
    assert!(
        e.to_string().contains("unsupported architecture x86 (PE32"),
        "{e}"
    );
    let e = err(&pe(false, 0xaa64, 0x20b));
    assert!(
        e.to_string().contains("unsupported architecture aarch64"),
        "{e}"
    );
    let e = err(&pe(false, 0x8664, 0x10b));
    assert_eq!(e.code(), "malformed");
}

#[test]
fn truncated_and_inconsistent_headers_are_errors_not_panics() {
    let good = pe(false, 0x8664, 0x20b);
    // Every prefix of the file.
    for n in (0..good.len()).step_by(7) {
        let _ = talos_cfg::load(&good[..n]);
    }
    // e_lfanew past the end.
    let mut b = good.clone();
    put32(&mut b, 0x3c, 0xffff_fff0);
    assert_eq!(talos_cfg::load(&b).err().unwrap().code(), "truncated");
    // A section whose raw data lies outside the file.
    let mut b = good.clone();
    put32(&mut b, 0x44 + 20 + 240 + 40 + 20, 0x7fff_0000);
    let e = talos_cfg::load(&b).err().unwrap();
    assert!(matches!(e.code(), "out-of-bounds" | "malformed"), "{e}");
    // Overlapping sections.
    let mut b = good.clone();
    put32(&mut b, 0x44 + 20 + 240 + 40 + 12, TEXT_RVA);
    assert!(talos_cfg::load(&b).is_err());
    // A COFF symbol table that does not fit: noted, not fatal.
    let mut b = good;
    put32(&mut b, 0x44 + 8, 0x7000_0000);
    put32(&mut b, 0x44 + 12, 1000);
    let image = talos_cfg::load(&b).unwrap();
    assert!(image.notes.iter().any(|n| n.contains("COFF symbol table")));
}
