//! Test-only builders: x86-64 code assembled with iced's code assembler and
//! wrapped in a minimal ELF file written byte by byte here (not with the
//! parser's structs, so a mistake in the loader cannot hide in both).

#![allow(dead_code)]

/// A loadable segment for [`elf64`].
pub struct Seg {
    pub vaddr: u64,
    pub bytes: Vec<u8>,
    /// PF_R=4, PF_W=2, PF_X=1.
    pub flags: u32,
}

/// A little-endian x86-64 ELF with the given segments (each placed at a
/// page-aligned file offset) and no section headers. `e_type` 2 = EXEC,
/// 3 = DYN.
pub fn elf64(e_type: u16, entry: u64, segs: &[Seg]) -> Vec<u8> {
    let phnum = segs.len();
    let mut out = vec![0u8; 0x1000];
    let mut offsets = Vec::new();
    for s in segs {
        let off = out.len();
        offsets.push(off);
        out.extend_from_slice(&s.bytes);
        let pad = (0x1000 - out.len() % 0x1000) % 0x1000;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    let mut h = Vec::new();
    h.extend_from_slice(b"\x7fELF");
    h.extend_from_slice(&[2, 1, 1, 0]); // 64-bit, LE, version, SysV
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&e_type.to_le_bytes());
    h.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&entry.to_le_bytes());
    h.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    h.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    h.extend_from_slice(&0u32.to_le_bytes()); // flags
    h.extend_from_slice(&64u16.to_le_bytes()); // ehsize
    h.extend_from_slice(&56u16.to_le_bytes()); // phentsize
    h.extend_from_slice(&(phnum as u16).to_le_bytes());
    h.extend_from_slice(&64u16.to_le_bytes()); // shentsize
    h.extend_from_slice(&0u16.to_le_bytes()); // shnum
    h.extend_from_slice(&0u16.to_le_bytes()); // shstrndx
    for (s, &off) in segs.iter().zip(&offsets) {
        h.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        h.extend_from_slice(&s.flags.to_le_bytes());
        h.extend_from_slice(&(off as u64).to_le_bytes());
        h.extend_from_slice(&s.vaddr.to_le_bytes());
        h.extend_from_slice(&s.vaddr.to_le_bytes());
        h.extend_from_slice(&(s.bytes.len() as u64).to_le_bytes());
        h.extend_from_slice(&(s.bytes.len() as u64).to_le_bytes());
        h.extend_from_slice(&0x1000u64.to_le_bytes());
    }
    out[..h.len()].copy_from_slice(&h);
    out
}

/// An executable whose only code segment holds `code` at `text`.
pub fn exe(text: u64, code: Vec<u8>) -> Vec<u8> {
    elf64(
        2,
        text,
        &[Seg {
            vaddr: text,
            bytes: code,
            flags: 5,
        }],
    )
}

/// A little-endian i386 ELF executable with the given segments.
pub fn elf32(entry: u32, segs: &[Seg]) -> Vec<u8> {
    let mut out = vec![0u8; 0x1000];
    let mut offsets = Vec::new();
    for s in segs {
        offsets.push(out.len());
        out.extend_from_slice(&s.bytes);
        let pad = (0x1000 - out.len() % 0x1000) % 0x1000;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    let mut h = Vec::new();
    h.extend_from_slice(b"\x7fELF");
    h.extend_from_slice(&[1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    h.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    h.extend_from_slice(&3u16.to_le_bytes()); // EM_386
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&entry.to_le_bytes());
    h.extend_from_slice(&52u32.to_le_bytes()); // e_phoff
    h.extend_from_slice(&0u32.to_le_bytes()); // e_shoff
    h.extend_from_slice(&0u32.to_le_bytes()); // flags
    h.extend_from_slice(&52u16.to_le_bytes());
    h.extend_from_slice(&32u16.to_le_bytes());
    h.extend_from_slice(&(segs.len() as u16).to_le_bytes());
    h.extend_from_slice(&[0; 6]);
    for (s, &off) in segs.iter().zip(&offsets) {
        h.extend_from_slice(&1u32.to_le_bytes());
        h.extend_from_slice(&(off as u32).to_le_bytes());
        h.extend_from_slice(&(s.vaddr as u32).to_le_bytes());
        h.extend_from_slice(&(s.vaddr as u32).to_le_bytes());
        h.extend_from_slice(&(s.bytes.len() as u32).to_le_bytes());
        h.extend_from_slice(&(s.bytes.len() as u32).to_le_bytes());
        h.extend_from_slice(&s.flags.to_le_bytes());
        h.extend_from_slice(&0x1000u32.to_le_bytes());
    }
    out[..h.len()].copy_from_slice(&h);
    out
}

/// The default-variant binaries of one architecture directory of the
/// corpus (`corpus/out/<dir>/`), unstripped and stripped, sorted. Empty
/// (with a note) when the corpus has not been built, except under CI, where
/// a missing corpus is an error.
pub fn corpus_binaries(dir: &str) -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus/out")
        .join(dir);
    let Ok(rd) = std::fs::read_dir(&root) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "corpus/out/{dir} missing under CI: run corpus/build.sh"
        );
        eprintln!("SKIP: corpus/out/{dir} not built (corpus/build.sh)");
        return Vec::new();
    };
    let mut out: Vec<std::path::PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.ends_with(".json") && !name.contains("-base") && !name.contains("-changed")
        })
        .collect();
    out.sort();
    out
}

/// [`elf64`] for another machine (`e_machine`: 243 RISC-V, 183 AArch64).
pub fn elf64_machine(machine: u16, e_type: u16, entry: u64, segs: &[Seg]) -> Vec<u8> {
    let mut out = elf64(e_type, entry, segs);
    out[18..20].copy_from_slice(&machine.to_le_bytes());
    out
}

/// The label-address table of a computed-goto interpreter test: the
/// `handlers` in order, then a zero word that is not code (the table's
/// extent).
pub fn label_table(handlers: &[u64]) -> Vec<u8> {
    let mut table: Vec<u8> = handlers.iter().flat_map(|h| h.to_le_bytes()).collect();
    table.extend_from_slice(&[0; 8]);
    table
}

/// A computed-goto interpreter at `main` with two dispatches through the
/// table at `table`: one function, every dispatch resolved to the
/// `handlers`, which stay labels.
pub fn assert_dispatch_to_labels(cfg: &talos_cfg::Cfg, main: u64, table: u64, handlers: &[u64]) {
    let starts: Vec<u64> = cfg.functions.iter().map(|f| f.addr).collect();
    assert_eq!(starts, vec![main], "{cfg:#?}");
    assert!(cfg.unresolved.is_empty(), "{:?}", cfg.unresolved);
    assert_eq!(cfg.jump_tables.len(), 2, "{:?}", cfg.jump_tables);
    for t in &cfg.jump_tables {
        assert_eq!((t.table, t.entries), (table, handlers.len() as u64));
    }
    let f = cfg.function_at(main).expect("main");
    let mut targets = f.edge_targets(talos_cfg::EdgeKind::JumpTable);
    targets.sort_unstable();
    targets.dedup();
    assert_eq!(targets, handlers);
}
