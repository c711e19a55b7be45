//! PE/COFF loader (PE32+, x86-64): executables and DLLs, such as SGX
//! enclaves built for Windows.
//!
//! The headers are checked here before goblin parses them (so that a
//! declared table that does not fit the file is named as such, not reported
//! as a parser error), then goblin reads the data directories. The COFF
//! symbol table (present in unstripped mingw builds) is read here: its
//! records are fixed 18-byte entries and goblin's name lookup subtracts
//! from a file-controlled offset without checking.
//!
//! What the [`Image`] gets from a PE file:
//!
//! * segments: the headers (`[ImageBase, ImageBase + SizeOfHeaders)`) and one
//!   segment per section, at `ImageBase + VirtualAddress`, `VirtualSize`
//!   bytes (the raw size when that is 0), the first
//!   `min(SizeOfRawData, VirtualSize)` of them from the file;
//! * symbols: exports (as dynamic symbols) and COFF function symbols (type
//!   `DT_FCN`, in an executable section) as static symbols;
//! * import slots: every IAT entry, named after its import (`name`, or
//!   `dll#ordinal` for imports by ordinal); an import thunk
//!   (`jmp [rip+slot]`) gets the name `name@iat`;
//! * frame descriptions: every `RUNTIME_FUNCTION` of the exception directory
//!   (`.pdata`) in an executable section, begin and end;
//! * loader-run code: TLS callbacks;
//! * code pointers: targets of `IMAGE_REL_BASED_DIR64` base relocations that
//!   land in executable sections.

use goblin::pe::PE;
use goblin::pe::options::ParseOptions;
use goblin::pe::section_table::{
    IMAGE_SCN_CNT_CODE, IMAGE_SCN_MEM_EXECUTE, IMAGE_SCN_MEM_READ, IMAGE_SCN_MEM_WRITE,
    SectionTable,
};

use crate::error::{Error, Result};
use crate::image::{
    Arch, Fde, Format, Image, ImageKind, Perms, Section, Segment, Symbol, SymbolSource,
};
use crate::limits;

/// Suffix of the names given to import thunks (`malloc@iat`), the PE
/// counterpart of ELF's `puts@plt`.
pub const THUNK_SUFFIX: &str = "@iat";

const IMAGE_FILE_MACHINE_I386: u16 = 0x14c;
const IMAGE_FILE_MACHINE_AMD64: u16 = 0x8664;
const IMAGE_FILE_MACHINE_ARM64: u16 = 0xaa64;
const IMAGE_FILE_MACHINE_ARMNT: u16 = 0x1c4;
const IMAGE_FILE_DLL: u16 = 0x2000;
const IMAGE_FILE_EXECUTABLE_IMAGE: u16 = 0x0002;
const IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE: u16 = 0x0040;
const IMAGE_REL_BASED_DIR64: u8 = 10;
const IMAGE_REL_BASED_HIGHLOW: u8 = 3;
const IMAGE_SYM_DTYPE_FUNCTION: u16 = 2;
const IMAGE_SYM_CLASS_EXTERNAL: u8 = 2;
const IMAGE_SYM_CLASS_STATIC: u8 = 3;
const COFF_SYMBOL_SIZE: usize = 18;
/// Sections a PE file may declare (the Windows loader's own limit).
const MAX_SECTIONS: usize = 96;

/// Whether `bytes` starts like a PE file (`MZ` DOS header).
#[must_use]
pub fn is_pe(bytes: &[u8]) -> bool {
    bytes.get(..2) == Some(b"MZ")
}

fn u16_at(bytes: &[u8], off: usize) -> Option<u16> {
    let b = bytes.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([*b.first()?, *b.get(1)?]))
}

fn u32_at(bytes: &[u8], off: usize) -> Option<u32> {
    let b = bytes.get(off..off.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    Some(u32::from_le_bytes(a))
}

/// The landing pads of the function `[start, start + len)` whose x64
/// `UNWIND_INFO` is at `info`: when it names an exception handler, gcc's
/// `__gxx_personality_seh0` keeps a GCC-format LSDA as the handler data
/// (`.seh_handlerdata`), which lists them. Other handlers' data (MSVC's
/// scope tables, `__CxxFrameHandler3`'s FuncInfo) does not start like one
/// (`@LPStart` omitted, uleb128 call sites) and gives nothing; pads outside
/// the function are dropped.
fn seh_landing_pads(image: &Image<'_>, info: u64, start: u64, len: u64) -> Vec<u64> {
    const UNW_FLAG_EHANDLER: u8 = 1;
    const UNW_FLAG_UHANDLER: u8 = 2;
    const UNW_FLAG_CHAININFO: u8 = 4;
    let Some(head) = image.read(info, 4) else {
        return Vec::new();
    };
    let (Some(&b0), Some(&count)) = (head.first(), head.get(2)) else {
        return Vec::new();
    };
    let flags = b0 >> 3;
    if flags & (UNW_FLAG_EHANDLER | UNW_FLAG_UHANDLER) == 0 || flags & UNW_FLAG_CHAININFO != 0 {
        return Vec::new();
    }
    // Unwind codes are 2 bytes each, padded to an even count.
    let codes = (u64::from(count) + 1) & !1;
    let data = info
        .saturating_add(4)
        .saturating_add(codes * 2)
        .saturating_add(4);
    let Some(lsda) = image.bytes_from(data) else {
        return Vec::new();
    };
    // `@LPStart` omitted; `@TType` omitted or followed by its uleb128
    // offset; call sites in uleb128.
    let cs_enc_at = match lsda.get(1) {
        Some(0xff) => Some(2),
        Some(_) => lsda
            .iter()
            .skip(2)
            .position(|b| b & 0x80 == 0)
            .map(|i| i.saturating_add(3)),
        None => None,
    };
    if lsda.first() != Some(&0xff) || cs_enc_at.and_then(|i| lsda.get(i)) != Some(&0x01) {
        return Vec::new();
    }
    let end = start.saturating_add(len);
    crate::ehframe::landing_pads(lsda, data, start, 8)
        .into_iter()
        .filter(|&p| p >= start && p < end)
        .collect()
}

fn truncated(what: &'static str, offset: usize, expected: usize, bytes: &[u8]) -> Error {
    Error::Truncated {
        what,
        offset: offset as u64,
        expected: expected as u64,
        actual: bytes.len() as u64,
    }
}

/// Header facts checked before goblin runs.
struct Headers {
    machine: u16,
    characteristics: u16,
    /// File offset of the optional header.
    optional: usize,
    /// File offset and count of the COFF symbol table.
    symtab: u32,
    nsyms: u32,
}

fn machine_name(m: u16) -> String {
    match m {
        IMAGE_FILE_MACHINE_I386 => "x86 (PE32, IMAGE_FILE_MACHINE_I386)".into(),
        IMAGE_FILE_MACHINE_ARM64 => "aarch64 (PE, IMAGE_FILE_MACHINE_ARM64)".into(),
        IMAGE_FILE_MACHINE_ARMNT => "arm (PE, IMAGE_FILE_MACHINE_ARMNT, 32-bit)".into(),
        other => format!("PE machine {other:#06x}"),
    }
}

fn precheck(bytes: &[u8]) -> Result<Headers> {
    if !is_pe(bytes) {
        return Err(Error::BadMagic {
            magic: bytes.iter().take(4).copied().collect(),
        });
    }
    let lfanew = u32_at(bytes, 0x3c).ok_or_else(|| truncated("DOS header", 0, 0x40, bytes))?;
    let pe = lfanew as usize;
    let sig = bytes
        .get(pe..pe.saturating_add(4))
        .ok_or_else(|| truncated("PE signature", pe, 4, bytes))?;
    if sig != b"PE\0\0" {
        return Err(Error::Malformed {
            what: "PE header",
            detail: format!("signature at offset {pe:#x} is {sig:02x?}, expected \"PE\\0\\0\""),
        });
    }
    let coff = pe.saturating_add(4);
    if bytes.len() < coff.saturating_add(20) {
        return Err(truncated("COFF header", coff, 20, bytes));
    }
    let field16 = |off: usize| u16_at(bytes, coff.saturating_add(off)).unwrap_or(0);
    let field32 = |off: usize| u32_at(bytes, coff.saturating_add(off)).unwrap_or(0);
    let machine = field16(0);
    let nsections = usize::from(field16(2));
    let symtab = field32(8);
    let nsyms = field32(12);
    let optional_size = usize::from(field16(16));
    let characteristics = field16(18);
    let optional = coff.saturating_add(20);
    if optional_size < 2 {
        return Err(Error::UnsupportedKind(
            "COFF object file without an optional header (not a linked image)".into(),
        ));
    }
    if bytes.len() < optional.saturating_add(optional_size) {
        return Err(truncated(
            "PE optional header",
            optional,
            optional_size,
            bytes,
        ));
    }
    let magic = u16_at(bytes, optional).unwrap_or(0);
    match (machine, magic) {
        (IMAGE_FILE_MACHINE_AMD64, 0x20b) => {}
        (IMAGE_FILE_MACHINE_AMD64, other) => {
            return Err(Error::Malformed {
                what: "PE optional header",
                detail: format!("magic {other:#x} for an x86-64 image, expected 0x20b (PE32+)"),
            });
        }
        (m, _) => return Err(Error::UnsupportedArch(machine_name(m))),
    }
    // The PE32+ optional header up to the data directory count.
    if optional_size < 112 {
        return Err(Error::Malformed {
            what: "PE optional header",
            detail: format!("size {optional_size} is below the 112 bytes of PE32+ fields"),
        });
    }
    if characteristics & IMAGE_FILE_EXECUTABLE_IMAGE == 0 {
        return Err(Error::UnsupportedKind(
            "PE file not marked executable (IMAGE_FILE_EXECUTABLE_IMAGE clear)".into(),
        ));
    }
    if nsections > MAX_SECTIONS {
        return Err(Error::LimitExceeded {
            what: "PE sections",
            count: nsections as u64,
            limit: MAX_SECTIONS as u64,
        });
    }
    let sections = optional.saturating_add(optional_size);
    let table = nsections.saturating_mul(40);
    if sections.checked_add(table).is_none_or(|e| e > bytes.len()) {
        return Err(Error::OutOfBounds {
            what: "PE section table",
            offset: sections as u64,
            size: table as u64,
            len: bytes.len() as u64,
        });
    }
    Ok(Headers {
        machine,
        characteristics,
        optional,
        symtab,
        nsyms,
    })
}

/// Load a PE32+ executable or DLL.
///
/// # Errors
/// When the file is not a complete, consistent PE32+ image for x86-64.
pub fn load(bytes: &[u8]) -> Result<Image<'_>> {
    let h = precheck(bytes)?;
    let mut notes = Vec::new();
    // Certificates and resources are not needed and only add parsing of
    // attacker-controlled structures.
    let mut strict = ParseOptions::default();
    strict.parse_attribute_certificates = false;
    strict.parse_resources = false;
    let pe = match PE::parse_with_opts(bytes, &strict) {
        Ok(pe) => pe,
        Err(e) => {
            // Report what the strict parse rejected, and analyse what the
            // permissive one could read.
            let permissive = strict.with_parse_mode(goblin::options::ParseMode::Permissive);
            let pe = PE::parse_with_opts(bytes, &permissive).map_err(|e2| Error::Malformed {
                what: "PE file",
                detail: format!("{e} (permissive parse: {e2})"),
            })?;
            notes.push(format!(
                "PE directories partly malformed ({e}); analysed what could be read"
            ));
            pe
        }
    };
    if !pe.is_64 || h.machine != IMAGE_FILE_MACHINE_AMD64 {
        return Err(Error::UnsupportedArch(machine_name(h.machine)));
    }
    let base = pe.image_base;
    let dll_characteristics = u16_at(bytes, h.optional.saturating_add(70)).unwrap_or(0);
    let kind = if h.characteristics & IMAGE_FILE_DLL != 0 {
        ImageKind::SharedObject
    } else if dll_characteristics & IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE != 0 {
        ImageKind::PieExecutable
    } else {
        ImageKind::Executable
    };
    let size_of_headers = u64::from(u32_at(bytes, h.optional.saturating_add(60)).unwrap_or(0));
    let (segments, sections) = layout(bytes, &pe.sections, base, size_of_headers, &mut notes)?;
    if !segments.iter().any(|s| s.perms.execute) {
        return Err(Error::NoCode);
    }
    let entry = (pe.entry != 0).then(|| base.wrapping_add(u64::from(pe.entry)));
    let mut image = Image {
        base,
        entry,
        segments,
        sections,
        notes,
        ..Image::bare(bytes, Format::Pe, Arch::X86_64, kind)
    };
    image.build_id = pe
        .debug_data
        .as_ref()
        .and_then(|d| d.codeview_pdb70_debug_info.as_ref())
        .map(|cv| {
            let mut id = cv.signature.to_vec();
            id.extend_from_slice(&cv.age.to_le_bytes());
            id
        });
    let in_code = |image: &Image<'_>, a: u64| {
        image
            .sections
            .iter()
            .any(|s| s.perms.execute && s.contains(a))
    };
    // Symbols: exports, then the COFF table.
    let mut symbols = Vec::new();
    for e in &pe.exports {
        if e.reexport.is_some() {
            continue;
        }
        let addr = base.wrapping_add(e.rva as u64);
        if let Some(name) = e.name.filter(|n| !n.is_empty())
            && in_code(&image, addr)
        {
            symbols.push(Symbol {
                name: name.to_string(),
                addr,
                size: 0,
                global: true,
                source: SymbolSource::Dynsym,
            });
        }
    }
    coff_symbols(
        bytes,
        &h,
        &pe.sections,
        base,
        &mut symbols,
        &mut image.notes,
    )?;
    symbols.retain(|s| in_code(&image, s.addr));
    // A name in both tables is kept once, as the exported one: exports
    // are what the graph is seeded with (the static table only names).
    symbols.sort_by(|a, b| {
        (a.addr, &a.name, std::cmp::Reverse(a.source)).cmp(&(
            b.addr,
            &b.name,
            std::cmp::Reverse(b.source),
        ))
    });
    symbols.dedup_by(|b, a| a.addr == b.addr && a.name == b.name);
    image.symbols = symbols;
    // Import address table slots.
    for imp in pe.imports.iter().take(limits::MAX_RELOCATIONS) {
        let slot = base.wrapping_add(imp.offset as u64);
        let name = if imp.name.starts_with("ORDINAL ") {
            format!("{}#{}", imp.dll, imp.ordinal)
        } else {
            imp.name.to_string()
        };
        if !name.is_empty() {
            image.import_slots.entry(slot).or_insert(name);
        }
    }
    // `.pdata`: the compiler's function table. Read here with checked
    // slicing from the data directory: goblin's `ExceptionData::functions`
    // slices its recorded offset and size unchecked and panics on a crafted
    // directory (fuzz/regressions/pe_image/).
    if pe.exception_data.is_some() {
        let dir = pe
            .header
            .optional_header
            .and_then(|oh| oh.data_directories.get_exception_table().copied());
        let table = dir.and_then(|d| {
            let rva = u64::from(d.virtual_address);
            let size = u64::from(d.size);
            pe.sections.iter().find_map(|sec| {
                let va = u64::from(sec.virtual_address);
                let raw = u64::from(sec.size_of_raw_data);
                let off = rva
                    .checked_sub(va)
                    .filter(|&o| o.saturating_add(size) <= raw)?;
                let start = u64::from(sec.pointer_to_raw_data).checked_add(off)?;
                let end = start.checked_add(size)?;
                bytes.get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
            })
        });
        let mut fdes = Vec::new();
        let mut pads: Vec<(u64, u64)> = Vec::new();
        for rf in table
            .unwrap_or_default()
            .chunks_exact(12)
            .take(limits::MAX_EH_RECORDS)
        {
            let (Some(begin), Some(end)) = (u32_at(rf, 0), u32_at(rf, 4)) else {
                continue;
            };
            if end <= begin {
                continue;
            }
            let start = base.wrapping_add(u64::from(begin));
            if in_code(&image, start) {
                let len = u64::from(end - begin);
                fdes.push(Fde { start, len });
                if let Some(info) = u32_at(rf, 8) {
                    let info = base.wrapping_add(u64::from(info));
                    for pad in seh_landing_pads(&image, info, start, len) {
                        pads.push((start, pad));
                    }
                }
            }
        }
        fdes.sort();
        pads.sort_unstable();
        pads.dedup();
        image.landing_pads = pads;
        fdes.dedup();
        image.fdes = fdes;
    }
    // TLS callbacks run before the entry point.
    let mut init = Vec::new();
    if let Some(tls) = &pe.tls_data {
        init.extend(tls.callbacks.iter().copied().take(limits::MAX_INIT_FINI));
    }
    init.retain(|&a| in_code(&image, a));
    init.sort_unstable();
    init.dedup();
    image.init_fini = init;
    // Base relocations: absolute addresses the loader adjusts.
    let mut ptrs = Vec::new();
    if let Some(rel) = &pe.relocation_data {
        let mut count = 0usize;
        'blocks: for block in rel.blocks() {
            let Ok(block) = block else { break };
            let page = base.wrapping_add(u64::from(block.rva));
            for word in block.words() {
                let Ok(word) = word else { break };
                count = count.saturating_add(1);
                if count > limits::MAX_RELOCATIONS {
                    break 'blocks;
                }
                let at = page.wrapping_add(u64::from(word.offset()));
                let size = match word.reloc_type() {
                    IMAGE_REL_BASED_DIR64 => 8,
                    IMAGE_REL_BASED_HIGHLOW => 4,
                    _ => continue,
                };
                if in_code(&image, at) {
                    image.text_relocations = true;
                }
                if let Some(v) = image.read_uint(at, size)
                    && in_code(&image, v)
                {
                    ptrs.push(v);
                }
            }
        }
    }
    ptrs.sort_unstable();
    ptrs.dedup();
    image.code_pointers = ptrs;
    Ok(image)
}

fn section_name(s: &SectionTable) -> String {
    if let Some(n) = &s.real_name {
        return n.clone();
    }
    let end = s.name.iter().position(|&b| b == 0).unwrap_or(s.name.len());
    String::from_utf8_lossy(s.name.get(..end).unwrap_or(&[])).into_owned()
}

fn layout(
    bytes: &[u8],
    table: &[SectionTable],
    base: u64,
    size_of_headers: u64,
    notes: &mut Vec<String>,
) -> Result<(Vec<Segment>, Vec<Section>)> {
    let len = bytes.len() as u64;
    let mut segments = Vec::with_capacity(table.len().saturating_add(1));
    let mut sections = Vec::with_capacity(table.len());
    let headers = size_of_headers.min(len);
    if headers > 0 {
        segments.push(Segment {
            vaddr: base,
            mem_size: headers,
            offset: 0,
            file_size: headers,
            perms: Perms {
                read: true,
                write: false,
                execute: false,
            },
        });
    }
    for s in table {
        let name = section_name(s);
        let c = s.characteristics;
        let perms = Perms {
            read: c & IMAGE_SCN_MEM_READ != 0,
            write: c & IMAGE_SCN_MEM_WRITE != 0,
            execute: c & (IMAGE_SCN_MEM_EXECUTE | IMAGE_SCN_CNT_CODE) != 0,
        };
        let vsize = if s.virtual_size == 0 {
            u64::from(s.size_of_raw_data)
        } else {
            u64::from(s.virtual_size)
        };
        if vsize == 0 {
            continue;
        }
        let raw = u64::from(s.size_of_raw_data).min(vsize);
        let offset = u64::from(s.pointer_to_raw_data);
        if raw > 0 && offset.checked_add(raw).is_none_or(|e| e > len) {
            return Err(Error::OutOfBounds {
                what: "PE section data",
                offset,
                size: raw,
                len,
            });
        }
        let vaddr = base
            .checked_add(u64::from(s.virtual_address))
            .filter(|v| v.checked_add(vsize).is_some())
            .ok_or_else(|| Error::Malformed {
                what: "PE section",
                detail: format!(
                    "{name:?} at RVA {:#x} size {vsize:#x} overflows the address space",
                    s.virtual_address
                ),
            })?;
        if raw < vsize && perms.execute {
            notes.push(format!(
                "section {name:?}: {} of {vsize} bytes are not in the file (read as zero)",
                vsize - raw
            ));
        }
        segments.push(Segment {
            vaddr,
            mem_size: vsize,
            offset,
            file_size: raw,
            perms,
        });
        sections.push(Section {
            name,
            addr: vaddr,
            size: vsize,
            offset,
            alloc: true,
            has_bytes: raw > 0,
            perms,
            entry_size: 0,
        });
    }
    segments.sort_by_key(|s| s.vaddr);
    // The headers segment may be declared larger than the space before the
    // first section; clip it rather than reject the file.
    if let [first, second, ..] = segments.as_mut_slice()
        && first.offset == 0
        && first.vaddr == base
        && first.end() > second.vaddr
    {
        let keep = second.vaddr.saturating_sub(first.vaddr);
        first.mem_size = keep;
        first.file_size = first.file_size.min(keep);
    }
    segments.retain(|s| s.mem_size > 0);
    for pair in segments.windows(2) {
        if let [a, b] = pair
            && b.vaddr < a.end()
        {
            return Err(Error::Malformed {
                what: "PE sections",
                detail: format!("sections at {:#x} and {:#x} overlap", a.vaddr, b.vaddr),
            });
        }
    }
    if segments.len() > limits::MAX_SEGMENTS {
        return Err(Error::LimitExceeded {
            what: "PE sections",
            count: segments.len() as u64,
            limit: limits::MAX_SEGMENTS as u64,
        });
    }
    Ok((segments, sections))
}

/// COFF function symbols (`DT_FCN`, external or static, in an executable
/// section). Unstripped mingw images keep the table; linkers for Windows
/// otherwise do not write one.
fn coff_symbols(
    bytes: &[u8],
    h: &Headers,
    table: &[SectionTable],
    base: u64,
    out: &mut Vec<Symbol>,
    notes: &mut Vec<String>,
) -> Result<()> {
    if h.symtab == 0 || h.nsyms == 0 {
        return Ok(());
    }
    let n = h.nsyms as usize;
    if n > limits::MAX_SYMBOLS {
        return Err(Error::LimitExceeded {
            what: "COFF symbols",
            count: n as u64,
            limit: limits::MAX_SYMBOLS as u64,
        });
    }
    let start = h.symtab as usize;
    let size = n.saturating_mul(COFF_SYMBOL_SIZE);
    let Some(syms) = start
        .checked_add(size)
        .and_then(|end| bytes.get(start..end))
    else {
        notes.push(format!(
            "COFF symbol table at offset {start:#x} ({n} symbols) lies outside the file; ignored"
        ));
        return Ok(());
    };
    // The string table follows the symbols: a u32 size (counting itself),
    // then NUL-terminated names.
    let str_start = start.saturating_add(size);
    let strtab: &[u8] = u32_at(bytes, str_start)
        .and_then(|len| bytes.get(str_start..str_start.checked_add(len as usize)?))
        .unwrap_or(&[]);
    let mut i = 0usize;
    while i < n {
        let off = i.saturating_mul(COFF_SYMBOL_SIZE);
        let Some(rec) = syms.get(off..off.saturating_add(COFF_SYMBOL_SIZE)) else {
            break;
        };
        let aux = usize::from(*rec.get(17).unwrap_or(&0));
        i = i.saturating_add(1).saturating_add(aux);
        let value = u32_at(rec, 8).unwrap_or(0);
        let section = u16_at(rec, 12).unwrap_or(0) as i16;
        let typ = u16_at(rec, 14).unwrap_or(0);
        let class = *rec.get(16).unwrap_or(&0);
        let is_function = (typ >> 4) & 3 == IMAGE_SYM_DTYPE_FUNCTION;
        if !is_function
            || section <= 0
            || !matches!(class, IMAGE_SYM_CLASS_EXTERNAL | IMAGE_SYM_CLASS_STATIC)
        {
            continue;
        }
        let Some(sec) = table.get(usize::from(section.unsigned_abs()).saturating_sub(1)) else {
            continue;
        };
        let name_field = rec.get(..8).unwrap_or(&[]);
        let name = if name_field.get(..4) == Some(&[0, 0, 0, 0]) {
            let o = u32_at(name_field, 4).unwrap_or(0) as usize;
            let s = strtab.get(o..).unwrap_or(&[]);
            let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
            String::from_utf8_lossy(s.get(..end).unwrap_or(&[])).into_owned()
        } else {
            let end = name_field.iter().position(|&b| b == 0).unwrap_or(8);
            String::from_utf8_lossy(name_field.get(..end).unwrap_or(&[])).into_owned()
        };
        if name.is_empty() {
            continue;
        }
        out.push(Symbol {
            name,
            addr: base
                .wrapping_add(u64::from(sec.virtual_address))
                .wrapping_add(u64::from(value)),
            size: 0,
            global: class == IMAGE_SYM_CLASS_EXTERNAL,
            source: SymbolSource::Symtab,
        });
    }
    Ok(())
}
