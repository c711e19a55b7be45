//! ELF facts the hardening and SGX rules need and `talos-cfg` does not
//! keep: program header flags, dynamic flags, GNU property notes, section
//! alignment, imported symbol names.

use goblin::elf::{Elf, dynamic, program_header};

/// `PT_GNU_PROPERTY`.
const PT_GNU_PROPERTY: u32 = 0x6474_e553;
/// `NT_GNU_PROPERTY_TYPE_0`.
const NT_GNU_PROPERTY_TYPE_0: u32 = 5;
/// `GNU_PROPERTY_X86_FEATURE_1_AND`.
const X86_FEATURE_1_AND: u32 = 0xc000_0002;
/// `GNU_PROPERTY_AARCH64_FEATURE_1_AND`.
const AARCH64_FEATURE_1_AND: u32 = 0xc000_0000;
/// Properties examined in one note (real ones have a handful).
const MAX_PROPERTIES: usize = 256;

/// A section, with what [`talos_cfg::image::Section`] leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSection {
    /// Name.
    pub name: String,
    /// File offset.
    pub offset: u64,
    /// Size.
    pub size: u64,
    /// `sh_addralign`.
    pub align: u64,
    /// `SHT_NOBITS` (no file bytes).
    pub nobits: bool,
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
    /// `(vaddr, file offset)` of `PT_LOAD` segments that are W and X.
    pub wx_segments: Vec<(u64, u64)>,
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
    /// `.dynsym`, `(name, address)`.
    pub exports: Vec<(String, u64)>,
}

/// Read the facts. `None` when goblin cannot parse the file (the caller
/// loaded it with `talos-cfg` first, so this does not happen for files
/// that got this far; a failure only means fewer facts).
#[must_use]
pub fn read(bytes: &[u8]) -> Option<ElfFacts> {
    let elf = Elf::parse(bytes).ok()?;
    let mut f = ElfFacts {
        is_64: elf.is_64,
        et_dyn: elf.header.e_type == goblin::elf::header::ET_DYN,
        has_symtab: !elf.syms.is_empty(),
        ..ElfFacts::default()
    };
    let mut property_ranges: Vec<(u64, u64)> = Vec::new();
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
                f.wx_segments.push((ph.p_vaddr, ph.p_offset));
            }
            PT_GNU_PROPERTY => property_ranges.push((ph.p_offset, ph.p_filesz)),
            _ => {}
        }
    }
    if let Some(d) = &elf.dynamic {
        for dy in d.dyns.iter().take(talos_cfg::limits::MAX_DYNAMIC) {
            match dy.d_tag {
                dynamic::DT_BIND_NOW => f.bind_now = true,
                dynamic::DT_FLAGS if dy.d_val & dynamic::DF_BIND_NOW != 0 => f.bind_now = true,
                dynamic::DT_FLAGS_1 if dy.d_val & dynamic::DF_1_NOW != 0 => f.bind_now = true,
                _ => {}
            }
        }
    }
    for sh in &elf.section_headers {
        let name = elf.shdr_strtab.get_at(sh.sh_name).unwrap_or("").to_string();
        if name == ".note.gnu.property" {
            property_ranges.push((sh.sh_offset, sh.sh_size));
        }
        f.sections.push(RawSection {
            name,
            offset: sh.sh_offset,
            size: sh.sh_size,
            align: sh.sh_addralign,
            nobits: sh.sh_type == goblin::elf::section_header::SHT_NOBITS,
        });
    }
    for (off, size) in property_ranges {
        let Some(data) = slice(bytes, off, size) else {
            continue;
        };
        let align = if elf.is_64 { 8 } else { 4 };
        for (pr_type, value) in gnu_properties(data, align) {
            match pr_type {
                X86_FEATURE_1_AND => f.x86_features = Some(value),
                AARCH64_FEATURE_1_AND => f.aarch64_features = Some(value),
                _ => {}
            }
        }
    }
    let wanted = [
        "__stack_chk_fail",
        "__stack_chk_fail_local",
        "__stack_chk_guard",
        "__intel_security_cookie",
    ];
    let tables = [(&elf.syms, &elf.strtab), (&elf.dynsyms, &elf.dynstrtab)];
    for (table, strtab) in tables {
        for s in table.iter().take(talos_cfg::limits::MAX_SYMBOLS) {
            if let Some(name) = strtab.get_at(s.st_name) {
                let base = name.split('@').next().unwrap_or(name);
                if wanted.contains(&base) && !f.stack_chk_symbols.iter().any(|n| n == base) {
                    f.stack_chk_symbols.push(base.to_string());
                }
            }
        }
    }
    f.stack_chk_symbols.sort();
    for s in elf.dynsyms.iter().take(talos_cfg::limits::MAX_SYMBOLS) {
        let global = matches!(
            s.st_bind(),
            goblin::elf::sym::STB_GLOBAL | goblin::elf::sym::STB_WEAK
        );
        let func = matches!(
            s.st_type(),
            goblin::elf::sym::STT_FUNC | goblin::elf::sym::STT_GNU_IFUNC
        );
        if global
            && func
            && s.st_shndx != 0
            && s.st_value != 0
            && let Some(name) = elf.dynstrtab.get_at(s.st_name)
        {
            f.exports.push((name.to_string(), s.st_value));
        }
    }
    f.exports.sort();
    f.exports.dedup();
    Some(f)
}

/// `bytes[off..off + size]`, checked.
#[must_use]
pub fn slice(bytes: &[u8], off: u64, size: u64) -> Option<&[u8]> {
    let start = usize::try_from(off).ok()?;
    let end = start.checked_add(usize::try_from(size).ok()?)?;
    bytes.get(start..end)
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([
        *s.first()?,
        *s.get(1)?,
        *s.get(2)?,
        *s.get(3)?,
    ]))
}

fn align_up(v: usize, a: usize) -> Option<usize> {
    let m = a.checked_sub(1)?;
    Some(v.checked_add(m)? & !m)
}

/// The `(pr_type, first u32 of pr_data)` pairs of every GNU property note
/// in `data` (a sequence of notes).
#[must_use]
pub fn gnu_properties(data: &[u8], align: usize) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut off = 0usize;
    let mut notes = 0;
    while off < data.len() && notes < 64 {
        notes += 1;
        let (Some(namesz), Some(descsz), Some(ntype)) = (
            u32_at(data, off),
            u32_at(data, off.saturating_add(4)),
            u32_at(data, off.saturating_add(8)),
        ) else {
            break;
        };
        let Some(name_off) = off.checked_add(12) else {
            break;
        };
        let (Ok(namesz), Ok(descsz)) = (usize::try_from(namesz), usize::try_from(descsz)) else {
            break;
        };
        let Some(desc_off) = name_off
            .checked_add(namesz)
            .and_then(|e| align_up(e, 4.max(align.min(8))))
        else {
            break;
        };
        let Some(next) = desc_off
            .checked_add(descsz)
            .and_then(|e| align_up(e, 4.max(align.min(8))))
        else {
            break;
        };
        let name = data.get(name_off..name_off.saturating_add(namesz));
        if ntype == NT_GNU_PROPERTY_TYPE_0 && name == Some(b"GNU\0".as_slice()) {
            let Some(desc) = data.get(desc_off..desc_off.saturating_add(descsz)) else {
                break;
            };
            let mut p = 0usize;
            let mut count = 0;
            while p.saturating_add(8) <= desc.len() && count < MAX_PROPERTIES {
                count += 1;
                let (Some(pr_type), Some(pr_datasz)) = (u32_at(desc, p), u32_at(desc, p + 4))
                else {
                    break;
                };
                let Ok(sz) = usize::try_from(pr_datasz) else {
                    break;
                };
                let data_off = p + 8;
                if sz >= 4
                    && let Some(v) = u32_at(desc, data_off)
                {
                    out.push((pr_type, v));
                }
                let Some(np) = data_off.checked_add(sz).and_then(|e| align_up(e, align)) else {
                    break;
                };
                if np <= p {
                    break;
                }
                p = np;
            }
        }
        if next <= off {
            break;
        }
        off = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_x86_feature_property() {
        // namesz 4, descsz 16, type 5, "GNU\0", property 0xc0000002 size 4
        // value 3, pad 4.
        let mut n = Vec::new();
        n.extend_from_slice(&4u32.to_le_bytes());
        n.extend_from_slice(&16u32.to_le_bytes());
        n.extend_from_slice(&5u32.to_le_bytes());
        n.extend_from_slice(b"GNU\0");
        n.extend_from_slice(&0xc000_0002u32.to_le_bytes());
        n.extend_from_slice(&4u32.to_le_bytes());
        n.extend_from_slice(&3u32.to_le_bytes());
        n.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(gnu_properties(&n, 8), vec![(0xc000_0002, 3)]);
        // Every truncation is harmless.
        for cut in 0..n.len() {
            let _ = gnu_properties(&n[..cut], 8);
        }
        // A size that points backwards or overflows ends the walk.
        let mut bad = n.clone();
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(gnu_properties(&bad, 8).is_empty());
    }
}
