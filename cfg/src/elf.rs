//! ELF loader: goblin parses the headers and tables, this module checks every
//! declared offset and size against the file and turns the result into an
//! [`Image`].

use std::collections::BTreeMap;

use goblin::elf::{Elf, dynamic, header, program_header, reloc, section_header, sym};

use crate::ehframe;
use crate::error::{Error, Result};
use crate::image::{
    Arch, Fde, Format, Image, ImageKind, Perms, Section, Segment, Symbol, SymbolSource,
};
use crate::limits;
use crate::model::{CapHit, CapKind};

const ELFMAG: &[u8; 4] = b"\x7fELF";

/// Whether `bytes` starts like an ELF file.
#[must_use]
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.get(..4) == Some(ELFMAG)
}

/// Load an ELF executable or shared object.
///
/// # Errors
/// When the file is not a complete, consistent ELF file for a supported
/// architecture, or is a core dump or relocatable object.
pub fn load(bytes: &[u8]) -> Result<Image<'_>> {
    precheck(bytes)?;
    let elf = Elf::parse(bytes).map_err(|e| Error::Malformed {
        what: "ELF file",
        detail: e.to_string(),
    })?;
    let arch = arch_of(&elf)?;
    let kind = match elf.header.e_type {
        header::ET_EXEC => ImageKind::Executable,
        header::ET_DYN => {
            let pie_flag = elf
                .dynamic
                .as_ref()
                .is_some_and(|d| d.info.flags_1 & dynamic::DF_1_PIE != 0);
            if pie_flag || elf.interpreter.is_some() {
                ImageKind::PieExecutable
            } else {
                ImageKind::SharedObject
            }
        }
        header::ET_CORE => {
            return Err(Error::UnsupportedKind(
                "ELF core dump (use `talos introspect` for memory dumps)".into(),
            ));
        }
        header::ET_REL => {
            return Err(Error::UnsupportedKind(
                "relocatable object file (.o)".into(),
            ));
        }
        other => return Err(Error::UnsupportedKind(format!("ELF e_type {other}"))),
    };

    let mut notes = Vec::new();
    let segments = segments(bytes, &elf)?;
    if !segments.iter().any(|s| s.perms.execute) {
        return Err(Error::NoCode);
    }
    let base = segments.iter().map(|s| s.vaddr).min().unwrap_or(0) & !0xfff;
    let sections = sections(bytes, &elf, &mut notes);

    let mut image = Image {
        base,
        entry: (elf.entry != 0).then_some(elf.entry),
        segments,
        sections,
        notes,
        ..Image::bare(bytes, Format::Elf, arch, kind)
    };
    image.build_id = build_id(bytes, &elf);
    image.symbols = symbols(&elf)?;
    image.import_slots = import_slots(&elf);
    image.relro = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == program_header::PT_GNU_RELRO && p.p_memsz > 0)
        .filter_map(|p| Some((p.p_vaddr, p.p_vaddr.checked_add(p.p_memsz)?)))
        .collect();
    image.relro.sort_unstable();
    let relocations = elf
        .pltrelocs
        .len()
        .saturating_add(elf.dynrelas.len())
        .saturating_add(elf.dynrels.len());
    if relocations > limits::MAX_RELOCATIONS {
        image
            .caps
            .push(cap(CapKind::Relocations, limits::MAX_RELOCATIONS));
    }
    if elf
        .dynamic
        .as_ref()
        .is_some_and(|d| d.dyns.len() > limits::MAX_DYNAMIC)
    {
        image
            .caps
            .push(cap(CapKind::DynamicEntries, limits::MAX_DYNAMIC));
    }
    image.fdes = fdes(&mut image);
    image.exception_handlers = landing_pads(&image);
    image.landing_pads = pads_of(&image);
    dynamic_facts(&elf, &mut image);
    Ok(image)
}

/// Check the header's table positions before goblin allocates anything
/// from them.
fn precheck(bytes: &[u8]) -> Result<()> {
    let len = bytes.len() as u64;
    if !is_elf(bytes) {
        return Err(Error::BadMagic {
            magic: bytes.iter().take(4).copied().collect(),
        });
    }
    let class = *bytes.get(4).ok_or(Error::Truncated {
        what: "ELF identification",
        offset: 0,
        expected: 16,
        actual: len,
    })?;
    let header_size: u64 = match class {
        1 => 52,
        2 => 64,
        other => {
            return Err(Error::Malformed {
                what: "ELF header",
                detail: format!("EI_CLASS is {other}, expected 1 (32-bit) or 2 (64-bit)"),
            });
        }
    };
    if len < header_size {
        return Err(Error::Truncated {
            what: "ELF header",
            offset: 0,
            expected: header_size,
            actual: len,
        });
    }
    match bytes.get(5) {
        Some(1) => {}
        Some(2) => {
            return Err(Error::UnsupportedArch(format!(
                "{} (big-endian)",
                machine_name(read_u16_be(bytes, 18).unwrap_or(0))
            )));
        }
        other => {
            return Err(Error::Malformed {
                what: "ELF header",
                detail: format!(
                    "EI_DATA is {other:?}, expected 1 (little-endian) or 2 (big-endian)"
                ),
            });
        }
    }
    let (phoff, phentsize, phnum, shoff, shentsize, shnum) = if class == 2 {
        (
            read_le(bytes, 32, 8),
            read_le(bytes, 54, 2),
            read_le(bytes, 56, 2),
            read_le(bytes, 40, 8),
            read_le(bytes, 58, 2),
            read_le(bytes, 60, 2),
        )
    } else {
        (
            read_le(bytes, 28, 4),
            read_le(bytes, 42, 2),
            read_le(bytes, 44, 2),
            read_le(bytes, 32, 4),
            read_le(bytes, 46, 2),
            read_le(bytes, 48, 2),
        )
    };
    let table =
        |what: &'static str, off: u64, entsize: u64, num: u64, min_ent: u64| -> Result<()> {
            if num == 0 {
                return Ok(());
            }
            if entsize < min_ent {
                return Err(Error::Malformed {
                    what,
                    detail: format!("entry size {entsize}, expected at least {min_ent}"),
                });
            }
            let size = entsize.saturating_mul(num);
            if off.checked_add(size).is_none_or(|end| end > len) {
                return Err(Error::OutOfBounds {
                    what,
                    offset: off,
                    size,
                    len,
                });
            }
            Ok(())
        };
    let (ph_min, sh_min) = if class == 2 { (56, 64) } else { (32, 40) };
    table("program header table", phoff, phentsize, phnum, ph_min)?;
    table("section header table", shoff, shentsize, shnum, sh_min)?;
    Ok(())
}

fn read_le(bytes: &[u8], off: usize, size: usize) -> u64 {
    let mut buf = [0u8; 8];
    if let (Some(src), Some(dst)) = (
        bytes.get(off..off.saturating_add(size)),
        buf.get_mut(..size),
    ) {
        dst.copy_from_slice(src);
    }
    u64::from_le_bytes(buf)
}

fn read_u16_be(bytes: &[u8], off: usize) -> Option<u16> {
    let b = bytes.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

fn machine_name(machine: u16) -> String {
    let name = match machine {
        header::EM_386 => "x86 (EM_386)",
        header::EM_X86_64 => "x86_64 (EM_X86_64)",
        header::EM_ARM => "arm (EM_ARM, 32-bit)",
        header::EM_AARCH64 => "aarch64 (EM_AARCH64)",
        header::EM_RISCV => "riscv (EM_RISCV)",
        header::EM_MIPS => "mips (EM_MIPS)",
        header::EM_PPC => "powerpc (EM_PPC)",
        header::EM_PPC64 => "powerpc64 (EM_PPC64)",
        header::EM_S390 => "s390 (EM_S390)",
        header::EM_SPARCV9 => "sparcv9 (EM_SPARCV9)",
        header::EM_LOONGARCH => "loongarch (EM_LOONGARCH)",
        _ => return format!("e_machine {machine}"),
    };
    name.to_string()
}

fn arch_of(elf: &Elf<'_>) -> Result<Arch> {
    match (elf.header.e_machine, elf.is_64) {
        (header::EM_X86_64, true) => Ok(Arch::X86_64),
        (header::EM_386, false) => Ok(Arch::X86),
        (header::EM_RISCV, true) => Ok(Arch::Riscv64),
        (header::EM_AARCH64, true) => Ok(Arch::Aarch64),
        (header::EM_RISCV, false) => {
            Err(Error::UnsupportedArch("riscv32 (EM_RISCV, 32-bit)".into()))
        }
        (header::EM_X86_64, false) => Err(Error::UnsupportedArch("x32 (EM_X86_64, 32-bit)".into())),
        (m, _) => Err(Error::UnsupportedArch(machine_name(m))),
    }
}

fn perms_of_flags(flags: u32) -> Perms {
    Perms {
        read: flags & program_header::PF_R != 0,
        write: flags & program_header::PF_W != 0,
        execute: flags & program_header::PF_X != 0,
    }
}

fn segments(bytes: &[u8], elf: &Elf<'_>) -> Result<Vec<Segment>> {
    let len = bytes.len() as u64;
    let mut out = Vec::new();
    for ph in elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == program_header::PT_LOAD)
    {
        if ph.p_filesz > ph.p_memsz {
            return Err(Error::Malformed {
                what: "PT_LOAD segment",
                detail: format!(
                    "at {:#x}: file size {:#x} exceeds memory size {:#x}",
                    ph.p_vaddr, ph.p_filesz, ph.p_memsz
                ),
            });
        }
        if ph.p_filesz > 0 && ph.p_offset.checked_add(ph.p_filesz).is_none_or(|e| e > len) {
            return Err(Error::OutOfBounds {
                what: "PT_LOAD segment",
                offset: ph.p_offset,
                size: ph.p_filesz,
                len,
            });
        }
        if ph.p_vaddr.checked_add(ph.p_memsz).is_none() {
            return Err(Error::Malformed {
                what: "PT_LOAD segment",
                detail: format!(
                    "address {:#x} + size {:#x} overflows",
                    ph.p_vaddr, ph.p_memsz
                ),
            });
        }
        out.push(Segment {
            vaddr: ph.p_vaddr,
            mem_size: ph.p_memsz,
            offset: ph.p_offset,
            file_size: ph.p_filesz,
            perms: perms_of_flags(ph.p_flags),
        });
    }
    if out.len() > limits::MAX_SEGMENTS {
        return Err(Error::LimitExceeded {
            what: "PT_LOAD segments",
            count: out.len() as u64,
            limit: limits::MAX_SEGMENTS as u64,
        });
    }
    out.sort_by_key(|s| s.vaddr);
    for pair in out.windows(2) {
        if let [a, b] = pair
            && b.vaddr < a.end()
        {
            return Err(Error::Malformed {
                what: "PT_LOAD segments",
                detail: format!("segments at {:#x} and {:#x} overlap", a.vaddr, b.vaddr),
            });
        }
    }
    Ok(out)
}

fn sections(bytes: &[u8], elf: &Elf<'_>, notes: &mut Vec<String>) -> Vec<Section> {
    let len = bytes.len() as u64;
    let mut out = Vec::with_capacity(elf.section_headers.len());
    for sh in &elf.section_headers {
        if sh.sh_type == section_header::SHT_NULL {
            continue;
        }
        let name = elf.shdr_strtab.get_at(sh.sh_name).unwrap_or("").to_string();
        let alloc = sh.sh_flags & u64::from(section_header::SHF_ALLOC) != 0;
        let mut has_bytes = sh.sh_type != section_header::SHT_NOBITS;
        if has_bytes
            && sh.sh_size > 0
            && sh.sh_offset.checked_add(sh.sh_size).is_none_or(|e| e > len)
        {
            notes.push(format!(
                "section {name:?} at offset {:#x} size {:#x} lies outside the file; ignored",
                sh.sh_offset, sh.sh_size
            ));
            has_bytes = false;
        }
        out.push(Section {
            name,
            addr: sh.sh_addr,
            size: sh.sh_size,
            offset: sh.sh_offset,
            alloc,
            has_bytes,
            perms: Perms {
                read: alloc,
                write: sh.sh_flags & u64::from(section_header::SHF_WRITE) != 0,
                execute: sh.sh_flags & u64::from(section_header::SHF_EXECINSTR) != 0,
            },
            entry_size: sh.sh_entsize,
        });
    }
    out
}

fn build_id(bytes: &[u8], elf: &Elf<'_>) -> Option<Vec<u8>> {
    let notes = elf.iter_note_headers(bytes)?;
    for note in notes.take(limits::MAX_NOTES) {
        let Ok(note) = note else { break };
        if note.n_type == goblin::elf::note::NT_GNU_BUILD_ID && note.name == "GNU" {
            return Some(note.desc.to_vec());
        }
    }
    None
}

fn symbols(elf: &Elf<'_>) -> Result<Vec<Symbol>> {
    let mut out = Vec::new();
    let tables = [
        (&elf.syms, &elf.strtab, SymbolSource::Symtab),
        (&elf.dynsyms, &elf.dynstrtab, SymbolSource::Dynsym),
    ];
    for (table, strtab, source) in tables {
        if table.len() > limits::MAX_SYMBOLS {
            return Err(Error::LimitExceeded {
                what: "symbols",
                count: table.len() as u64,
                limit: limits::MAX_SYMBOLS as u64,
            });
        }
        for s in table.iter() {
            let is_code = matches!(s.st_type(), sym::STT_FUNC | sym::STT_GNU_IFUNC);
            if !is_code || s.st_shndx == 0 || s.st_value == 0 {
                continue;
            }
            let Some(name) = strtab.get_at(s.st_name) else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            out.push(Symbol {
                name: name.to_string(),
                addr: s.st_value,
                size: s.st_size,
                global: s.st_bind() != sym::STB_LOCAL,
                source,
            });
        }
    }
    // A name in both tables is kept once, as the exported one: exports
    // are what the graph is seeded with (the static table only names).
    out.sort_by(|a, b| {
        (a.addr, &a.name, std::cmp::Reverse(a.source)).cmp(&(
            b.addr,
            &b.name,
            std::cmp::Reverse(b.source),
        ))
    });
    out.dedup_by(|b, a| a.addr == b.addr && a.name == b.name);
    Ok(out)
}

/// GOT slots filled by the dynamic linker with an imported function's
/// address: `JUMP_SLOT` (lazy PLT) and `GLOB_DAT` (`.plt.got`, `-fno-plt`).
fn import_slots(elf: &Elf<'_>) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    let machine = elf.header.e_machine;
    let relocs = elf
        .pltrelocs
        .iter()
        .chain(elf.dynrelas.iter())
        .chain(elf.dynrels.iter())
        .take(limits::MAX_RELOCATIONS);
    for r in relocs {
        if !is_import_reloc(machine, r.r_type) || r.r_sym == 0 {
            continue;
        }
        let Some(s) = elf.dynsyms.get(r.r_sym) else {
            continue;
        };
        let Some(name) = elf.dynstrtab.get_at(s.st_name) else {
            continue;
        };
        if name.is_empty() || s.st_type() == sym::STT_OBJECT {
            continue;
        }
        out.entry(r.r_offset).or_insert_with(|| name.to_string());
    }
    out
}

fn is_import_reloc(machine: u16, r_type: u32) -> bool {
    match machine {
        header::EM_X86_64 => matches!(r_type, reloc::R_X86_64_JUMP_SLOT | reloc::R_X86_64_GLOB_DAT),
        header::EM_386 => matches!(r_type, reloc::R_386_JMP_SLOT | reloc::R_386_GLOB_DAT),
        header::EM_AARCH64 => matches!(
            r_type,
            reloc::R_AARCH64_JUMP_SLOT | reloc::R_AARCH64_GLOB_DAT
        ),
        // R_RISCV_JUMP_SLOT = 5, R_RISCV_64 = 2 (GOT entries of -fno-plt calls)
        header::EM_RISCV => matches!(r_type, 5 | 2),
        _ => false,
    }
}

fn is_relative_reloc(machine: u16, r_type: u32) -> bool {
    match machine {
        header::EM_X86_64 => r_type == reloc::R_X86_64_RELATIVE,
        header::EM_386 => r_type == reloc::R_386_RELATIVE,
        header::EM_AARCH64 => r_type == reloc::R_AARCH64_RELATIVE,
        header::EM_RISCV => r_type == 3,
        _ => false,
    }
}

fn cap(kind: CapKind, limit: usize) -> CapHit {
    CapHit {
        kind,
        limit: limit as u64,
        function: None,
    }
}

fn fdes(image: &mut Image<'_>) -> Vec<Fde> {
    let mut out = Vec::new();
    if let Some(sec) = image
        .sections
        .iter()
        .find(|s| s.name == ".eh_frame" && s.has_bytes)
        && let Some(data) = image.read(sec.addr, sec.size)
    {
        out = ehframe::parse_eh_frame(data, sec.addr, image.arch.pointer_size());
        if ehframe::record_count(data) > limits::MAX_EH_RECORDS {
            image
                .caps
                .push(cap(CapKind::FrameRecords, limits::MAX_EH_RECORDS));
        }
    }
    out.retain(|f| f.len > 0);
    out.sort();
    out.dedup();
    out
}

/// (function, landing pad) for every FDE whose LSDA lists landing pads.
fn pads_of(image: &Image<'_>) -> Vec<(u64, u64)> {
    let Some(sec) = image
        .sections
        .iter()
        .find(|s| s.name == ".eh_frame" && s.has_bytes)
    else {
        return Vec::new();
    };
    let Some(data) = image.read(sec.addr, sec.size) else {
        return Vec::new();
    };
    let ptr = image.arch.pointer_size();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (fde, lsda) in ehframe::lsda_pointers(data, sec.addr, ptr) {
        let Some(bytes) = image.bytes_from(lsda) else {
            continue;
        };
        out.extend(
            ehframe::landing_pads(bytes, lsda, fde.start, ptr)
                .into_iter()
                .map(|p| (fde.start, p)),
        );
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn landing_pads(image: &Image<'_>) -> Vec<u64> {
    image
        .sections
        .iter()
        .find(|s| s.name == ".eh_frame" && s.has_bytes)
        .and_then(|sec| {
            let data = image.read(sec.addr, sec.size)?;
            Some(ehframe::functions_with_landing_pads(
                data,
                sec.addr,
                image.arch.pointer_size(),
            ))
        })
        .unwrap_or_default()
}

fn dynamic_facts(elf: &Elf<'_>, image: &mut Image<'_>) {
    let machine = elf.header.e_machine;
    let ptr = u64::from(image.arch.pointer_size());
    let mut init_fini = Vec::new();
    let mut arrays: Vec<(u64, u64)> = Vec::new();
    if let Some(d) = &elf.dynamic {
        let mut init_array = (0, 0);
        let mut fini_array = (0, 0);
        let mut preinit_array = (0, 0);
        for dy in d.dyns.iter().take(limits::MAX_DYNAMIC) {
            match dy.d_tag {
                dynamic::DT_INIT | dynamic::DT_FINI => init_fini.push(dy.d_val),
                dynamic::DT_INIT_ARRAY => init_array.0 = dy.d_val,
                dynamic::DT_INIT_ARRAYSZ => init_array.1 = dy.d_val,
                dynamic::DT_FINI_ARRAY => fini_array.0 = dy.d_val,
                dynamic::DT_FINI_ARRAYSZ => fini_array.1 = dy.d_val,
                dynamic::DT_PREINIT_ARRAY => preinit_array.0 = dy.d_val,
                dynamic::DT_PREINIT_ARRAYSZ => preinit_array.1 = dy.d_val,
                dynamic::DT_PLTGOT => image.got_base = Some(dy.d_val),
                dynamic::DT_TEXTREL => image.text_relocations = true,
                dynamic::DT_FLAGS if dy.d_val & dynamic::DF_TEXTREL != 0 => {
                    image.text_relocations = true
                }
                _ => {}
            }
        }
        arrays.extend([init_array, fini_array, preinit_array]);
    }
    // Static executables have no dynamic section; their arrays are sections.
    for s in &image.sections {
        if matches!(
            s.name.as_str(),
            ".init_array" | ".fini_array" | ".preinit_array" | ".ctors" | ".dtors"
        ) {
            arrays.push((s.addr, s.size));
        }
    }
    // Relocation addends: RELATIVE relocations carry code pointers for PIE.
    let mut reloc_targets: BTreeMap<u64, u64> = BTreeMap::new();
    for r in elf
        .dynrelas
        .iter()
        .chain(elf.dynrels.iter())
        .take(limits::MAX_RELOCATIONS)
    {
        if !is_relative_reloc(machine, r.r_type) {
            continue;
        }
        let value = match r.r_addend {
            Some(a) => a as u64,
            None => image
                .read_uint(r.r_offset, image.arch.pointer_size())
                .unwrap_or(0),
        };
        reloc_targets.insert(r.r_offset, value);
    }
    for (addr, size) in arrays {
        if addr == 0 || size == 0 {
            continue;
        }
        if size / ptr > limits::MAX_INIT_FINI as u64 {
            image
                .caps
                .push(cap(CapKind::InitFini, limits::MAX_INIT_FINI));
        }
        let count = (size / ptr).min(limits::MAX_INIT_FINI as u64);
        for i in 0..count {
            let Some(slot) = i.checked_mul(ptr).and_then(|o| addr.checked_add(o)) else {
                break;
            };
            let value = reloc_targets
                .get(&slot)
                .copied()
                .or_else(|| image.read_uint(slot, image.arch.pointer_size()));
            // 0 and -1 are the list terminators of .ctors/.dtors.
            if let Some(v) = value
                && v != 0
                && v != u64::MAX
                && v != u64::from(u32::MAX)
            {
                init_fini.push(v);
            }
        }
    }
    let code = image.code_ranges();
    let in_code = |a: u64| code.iter().any(|r| r.contains(a));
    init_fini.retain(|&a| in_code(a));
    init_fini.sort_unstable();
    init_fini.dedup();
    image.init_fini = init_fini;
    let mut ptrs: Vec<u64> = reloc_targets
        .values()
        .copied()
        .filter(|&a| in_code(a))
        .collect();
    ptrs.sort_unstable();
    ptrs.dedup();
    image.code_pointers = ptrs;
    image.relocated = reloc_targets.into_iter().collect();
}
