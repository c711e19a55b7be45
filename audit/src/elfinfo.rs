//! ELF facts the hardening and SGX rules need and `talos-cfg` does not
//! keep: program header flags, dynamic flags, GNU property notes, section
//! alignment, imported symbol names, exported functions.
//!
//! One goblin parse gives every table; the GNU property notes are walked
//! with goblin's note iterator over exactly the bytes their segment or
//! section covers, and the properties inside with the checked reader. What
//! the headers declare but the file does not hold (a name outside its
//! string table, a note that runs past its section, a table larger than
//! talos reads) is recorded as an anomaly, never read as zeros or skipped
//! in silence.

use goblin::container::{Container, Ctx, Endian as GoblinEndian};
use goblin::elf::note::NoteDataIterator;
use goblin::elf::{Elf, dynamic, program_header, section_header, sym};

use crate::reach::Export;
use crate::reader::{Endian, Reader};

/// `PT_GNU_PROPERTY`.
const PT_GNU_PROPERTY: u32 = 0x6474_e553;
/// `NT_GNU_PROPERTY_TYPE_0`.
const NT_GNU_PROPERTY_TYPE_0: u32 = 5;
/// `GNU_PROPERTY_X86_FEATURE_1_AND`.
const X86_FEATURE_1_AND: u32 = 0xc000_0002;
/// `GNU_PROPERTY_AARCH64_FEATURE_1_AND`.
const AARCH64_FEATURE_1_AND: u32 = 0xc000_0000;
/// Properties read from one note (real ones have a handful).
const MAX_PROPERTIES: usize = 256;
/// Notes read from one property segment or section (real ones have one).
const MAX_NOTES: usize = 64;
/// The symbol names the stack-protector rules look for.
const STACK_CHK_NAMES: [&str; 4] = [
    "__stack_chk_fail",
    "__stack_chk_fail_local",
    "__stack_chk_guard",
    "__intel_security_cookie",
];

/// A section, with what [`talos_cfg::image::Section`] leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSection {
    /// Name; `None` when the section name table does not hold it (an
    /// anomaly is recorded).
    pub name: Option<String>,
    /// File offset.
    pub offset: u64,
    /// Size.
    pub size: u64,
    /// `sh_addralign`.
    pub align: u64,
    /// `SHT_NOBITS` (no file bytes).
    pub nobits: bool,
}

/// A `PT_LOAD` segment mapped writable and executable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WxSegment {
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_offset`.
    pub offset: u64,
    /// `p_memsz`.
    pub mem_size: u64,
}

/// What the ELF headers say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfFacts {
    /// 64-bit class.
    pub is_64: bool,
    /// `ET_DYN`.
    pub et_dyn: bool,
    /// `PT_INTERP` present.
    pub interp: bool,
    /// `PT_DYNAMIC` present.
    pub dynamic: bool,
    /// `PT_GNU_RELRO` present.
    pub relro: bool,
    /// BIND_NOW by any of its three spellings.
    pub bind_now: bool,
    /// `PT_GNU_STACK` flags: `Some(executable)`, or `None` when absent.
    pub gnu_stack_exec: Option<bool>,
    /// `PT_LOAD` segments that are W and X.
    pub wx_segments: Vec<WxSegment>,
    /// x86 feature bits (IBT = 1, SHSTK = 2), when a property note says.
    pub x86_features: Option<u32>,
    /// AArch64 feature bits (BTI = 1, PAC = 2), when a property note says.
    pub aarch64_features: Option<u32>,
    /// Sections with alignment.
    pub sections: Vec<RawSection>,
    /// Names in `.symtab` and `.dynsym`, defined or not, that matter to
    /// the rules (`__stack_chk_fail`, ...).
    pub stack_chk_symbols: Vec<String>,
    /// Whether the image has a static symbol table.
    pub has_symtab: bool,
    /// Exported functions: defined global or weak `STT_FUNC` symbols of
    /// `.dynsym`.
    pub exports: Vec<Export>,
    /// What the headers declare but the file does not hold, or what is
    /// larger than talos reads: each a sentence. An audit with anomalies
    /// cannot pass.
    pub anomalies: Vec<String>,
}

impl ElfFacts {
    /// The section with this name.
    #[must_use]
    pub fn section(&self, name: &str) -> Option<&RawSection> {
        self.sections
            .iter()
            .find(|s| s.name.as_deref() == Some(name))
    }
}

/// Read the facts.
///
/// # Errors
/// goblin's error when it cannot parse the file (the caller loaded it with
/// `talos-cfg` first, so this does not happen for files that got this far;
/// the rules that need the headers are then not checked).
pub fn read(bytes: &[u8]) -> Result<ElfFacts, goblin::error::Error> {
    let elf = Elf::parse(bytes)?;
    let mut f = ElfFacts {
        is_64: elf.is_64,
        et_dyn: elf.header.e_type == goblin::elf::header::ET_DYN,
        has_symtab: !elf.syms.is_empty(),
        ..ElfFacts::default()
    };
    // Where GNU property notes are: `(what, file offset, size)`.
    let mut property_ranges: Vec<PropertyRange> = Vec::new();
    for ph in &elf.program_headers {
        match ph.p_type {
            program_header::PT_INTERP => f.interp = true,
            program_header::PT_DYNAMIC => f.dynamic = true,
            program_header::PT_GNU_RELRO => f.relro = true,
            program_header::PT_GNU_STACK => {
                f.gnu_stack_exec = Some(ph.p_flags & program_header::PF_X != 0);
            }
            program_header::PT_LOAD
                if ph.p_flags & program_header::PF_W != 0
                    && ph.p_flags & program_header::PF_X != 0 =>
            {
                f.wx_segments.push(WxSegment {
                    vaddr: ph.p_vaddr,
                    offset: ph.p_offset,
                    mem_size: ph.p_memsz,
                });
            }
            PT_GNU_PROPERTY => property_ranges.push(PropertyRange {
                what: "PT_GNU_PROPERTY segment",
                offset: ph.p_offset,
                size: ph.p_filesz,
            }),
            _ => {}
        }
    }
    if let Some(d) = &elf.dynamic {
        if d.dyns.len() > talos_cfg::limits::MAX_DYNAMIC {
            f.anomalies.push(format!(
                "the dynamic section has {} entries, more than the {} talos reads",
                d.dyns.len(),
                talos_cfg::limits::MAX_DYNAMIC
            ));
        }
        for dy in d.dyns.iter().take(talos_cfg::limits::MAX_DYNAMIC) {
            match dy.d_tag {
                dynamic::DT_BIND_NOW => f.bind_now = true,
                dynamic::DT_FLAGS if dy.d_val & dynamic::DF_BIND_NOW != 0 => f.bind_now = true,
                dynamic::DT_FLAGS_1 if dy.d_val & dynamic::DF_1_NOW != 0 => f.bind_now = true,
                _ => {}
            }
        }
    }
    for (i, sh) in elf.section_headers.iter().enumerate() {
        let name = elf.shdr_strtab.get_at(sh.sh_name);
        if name.is_none() {
            f.anomalies.push(format!(
                "section header {i}: its name (offset {:#x} in the section name table) cannot be read",
                sh.sh_name
            ));
        }
        if name == Some(".note.gnu.property") {
            property_ranges.push(PropertyRange {
                what: ".note.gnu.property section",
                offset: sh.sh_offset,
                size: sh.sh_size,
            });
        }
        f.sections.push(RawSection {
            name: name.map(str::to_string),
            offset: sh.sh_offset,
            size: sh.sh_size,
            align: sh.sh_addralign,
            nobits: sh.sh_type == section_header::SHT_NOBITS,
        });
    }
    let endian = if elf.little_endian {
        Endian::Little
    } else {
        Endian::Big
    };
    let ctx = Ctx::new(
        if elf.is_64 {
            Container::Big
        } else {
            Container::Little
        },
        match endian {
            Endian::Little => GoblinEndian::Little,
            Endian::Big => GoblinEndian::Big,
        },
    );
    let file = Reader::new(bytes, endian);
    for range in property_ranges {
        match file.slice(range.offset, range.size, range.what) {
            Ok(data) => {
                for (pr_type, value) in gnu_properties(data, ctx, endian, &mut f.anomalies) {
                    match pr_type {
                        X86_FEATURE_1_AND => f.x86_features = Some(value),
                        AARCH64_FEATURE_1_AND => f.aarch64_features = Some(value),
                        _ => {}
                    }
                }
            }
            Err(e) => f.anomalies.push(e.to_string()),
        }
    }
    let tables = [
        (".symtab", &elf.syms, &elf.strtab),
        (".dynsym", &elf.dynsyms, &elf.dynstrtab),
    ];
    for (what, table, strtab) in tables {
        if table.len() > talos_cfg::limits::MAX_SYMBOLS {
            f.anomalies.push(format!(
                "{what} has {} symbols, more than the {} talos reads",
                table.len(),
                talos_cfg::limits::MAX_SYMBOLS
            ));
        }
        let mut unnamed = 0usize;
        for s in table.iter().take(talos_cfg::limits::MAX_SYMBOLS) {
            let Some(name) = strtab.get_at(s.st_name) else {
                unnamed += 1;
                continue;
            };
            let base = name.split_once('@').map_or(name, |(b, _)| b);
            if STACK_CHK_NAMES.contains(&base) && !f.stack_chk_symbols.iter().any(|n| n == base) {
                f.stack_chk_symbols.push(base.to_string());
            }
        }
        if unnamed > 0 {
            f.anomalies.push(format!(
                "{what}: the names of {unnamed} symbols lie outside their string table"
            ));
        }
    }
    f.stack_chk_symbols.sort();
    for s in elf.dynsyms.iter().take(talos_cfg::limits::MAX_SYMBOLS) {
        let global = matches!(s.st_bind(), sym::STB_GLOBAL | sym::STB_WEAK);
        let func = matches!(s.st_type(), sym::STT_FUNC | sym::STT_GNU_IFUNC);
        if global
            && func
            && s.st_shndx != 0
            && s.st_value != 0
            && let Some(name) = elf.dynstrtab.get_at(s.st_name)
        {
            f.exports.push(Export {
                name: name.to_string(),
                addr: s.st_value,
            });
        }
    }
    f.exports.sort();
    f.exports.dedup();
    Ok(f)
}

/// Where GNU property notes are.
#[derive(Debug, Clone, Copy)]
struct PropertyRange {
    /// The segment or section they are in.
    what: &'static str,
    /// Its file offset.
    offset: u64,
    /// Its size in the file.
    size: u64,
}

/// The `(pr_type, first u32 of pr_data)` of every property of every GNU
/// property note in `data` (the bytes of a property segment or section);
/// notes and properties that do not fit are recorded in `anomalies`.
fn gnu_properties(
    data: &[u8],
    ctx: Ctx,
    endian: Endian,
    anomalies: &mut Vec<String>,
) -> Vec<(u32, u32)> {
    // Notes and property arrays are aligned to 8 bytes in ELFCLASS64 and to
    // 4 in ELFCLASS32 (the gABI; the GNU property note spec).
    let align: u64 = if ctx.is_big() { 8 } else { 4 };
    let notes = NoteDataIterator {
        data,
        size: data.len(),
        offset: 0,
        ctx: (align as usize, ctx),
    };
    let mut out = Vec::new();
    for (i, note) in notes.enumerate() {
        if i == MAX_NOTES {
            anomalies.push(format!(
                "a GNU property segment or section holds more than {MAX_NOTES} notes"
            ));
            break;
        }
        let note = match note {
            Ok(n) => n,
            Err(e) => {
                anomalies.push(format!("a GNU property note cannot be read: {e}"));
                break;
            }
        };
        if note.n_type != NT_GNU_PROPERTY_TYPE_0 || note.name != "GNU" {
            continue;
        }
        let desc = Reader::new(note.desc, endian);
        let mut p = 0u64;
        while p < desc.len() {
            if out.len() == MAX_PROPERTIES {
                anomalies.push(format!(
                    "a GNU property note holds more than {MAX_PROPERTIES} properties"
                ));
                return out;
            }
            let (pr_type, size) = match (desc.u32(p, "pr_type"), desc.u32(p + 4, "pr_datasz")) {
                (Ok(t), Ok(s)) => (t, u64::from(s)),
                (Err(e), _) | (_, Err(e)) => {
                    anomalies.push(format!("GNU property note: {e}"));
                    break;
                }
            };
            let pr_data = match desc.sub(p + 8, size, "pr_data") {
                Ok(d) => d,
                Err(e) => {
                    anomalies.push(format!("GNU property note: {e}"));
                    break;
                }
            };
            if let Ok(v) = pr_data.u32(0, "pr_data") {
                out.push((pr_type, v));
            }
            // pr_data is padded to the alignment; the last property's
            // padding may be cut off by the end of the descriptor.
            p = (p + 8 + size).next_multiple_of(align);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx64() -> Ctx {
        Ctx::new(Container::Big, GoblinEndian::Little)
    }

    /// namesz 4, descsz 16, type 5, "GNU\0", property 0xc0000002 size 4
    /// value 3, pad 4.
    fn x86_note() -> Vec<u8> {
        let mut n = Vec::new();
        n.extend_from_slice(&4u32.to_le_bytes());
        n.extend_from_slice(&16u32.to_le_bytes());
        n.extend_from_slice(&5u32.to_le_bytes());
        n.extend_from_slice(b"GNU\0");
        n.extend_from_slice(&0xc000_0002u32.to_le_bytes());
        n.extend_from_slice(&4u32.to_le_bytes());
        n.extend_from_slice(&3u32.to_le_bytes());
        n.extend_from_slice(&0u32.to_le_bytes());
        n
    }

    #[test]
    fn reads_an_x86_feature_property() {
        let n = x86_note();
        let mut anomalies = Vec::new();
        assert_eq!(
            gnu_properties(&n, ctx64(), Endian::Little, &mut anomalies),
            vec![(0xc000_0002, 3)]
        );
        assert!(anomalies.is_empty(), "{anomalies:?}");
        // Two notes in a row, the second another owner's: one property.
        let mut two = n.clone();
        let mut other = n.clone();
        other[12..16].copy_from_slice(b"XYZ\0");
        two.extend_from_slice(&other);
        assert_eq!(
            gnu_properties(&two, ctx64(), Endian::Little, &mut anomalies).len(),
            1
        );
        assert!(anomalies.is_empty(), "{anomalies:?}");
    }

    #[test]
    fn a_cut_or_overflowing_property_note_is_an_anomaly_never_a_panic() {
        let n = x86_note();
        // Every truncation cuts into the note: no property, an anomaly.
        for cut in 1..n.len() {
            let mut anomalies = Vec::new();
            let props = gnu_properties(&n[..cut], ctx64(), Endian::Little, &mut anomalies);
            assert!(props.is_empty(), "cut {cut}: {props:?}");
            assert_eq!(anomalies.len(), 1, "cut {cut}");
        }
        // A descsz that runs past the data ends the walk with an anomaly.
        let mut bad = n.clone();
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut anomalies = Vec::new();
        assert!(gnu_properties(&bad, ctx64(), Endian::Little, &mut anomalies).is_empty());
        assert_eq!(anomalies.len(), 1, "{anomalies:?}");
        // So does a pr_datasz that runs past the descriptor.
        let mut bad = n.clone();
        bad[20..24].copy_from_slice(&0x1000u32.to_le_bytes());
        let mut anomalies = Vec::new();
        assert!(gnu_properties(&bad, ctx64(), Endian::Little, &mut anomalies).is_empty());
        assert!(anomalies[0].contains("pr_data"), "{anomalies:?}");
    }
}
