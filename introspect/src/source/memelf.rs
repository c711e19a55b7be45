//! Reading an ELF image's own headers from process memory: the build-id in
//! the first page of every mapped ELF (the kernel and gdb keep that page
//! even with the default `coredump_filter`), and the load bias.

use crate::dump::Dump;
use crate::source::elf::{
    PHDR_SIZE, PT_LOAD, PT_NOTE, notes_aligned, program_headers, u16_at, u64_at,
};

/// Most program headers read from memory.
const MAX_PHNUM: u64 = 512;
/// Most note bytes read from one `PT_NOTE` in memory.
const MAX_NOTE_BYTES: u64 = 1 << 16;

/// What the in-memory ELF header says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemElf {
    /// `e_type`.
    pub e_type: u16,
    /// Load bias implied by the header mapping's address and the `PT_LOAD`
    /// that covers file offset 0.
    pub bias: Option<u64>,
    /// `NT_GNU_BUILD_ID`, when its note is in the dump.
    pub build_id: Option<Vec<u8>>,
}

/// Read the ELF header mapped at `base` (a mapping of file offset 0).
/// `None` when the dump does not hold a 64-bit little-endian ELF header
/// there.
#[must_use]
pub fn read(dump: &Dump<'_>, base: u64, page_size: u64) -> Option<MemElf> {
    let eh = dump.read(base, 64)?;
    if eh.get(..4) != Some(b"\x7fELF") || eh.get(4) != Some(&2) || eh.get(5) != Some(&1) {
        return None;
    }
    let mut out = MemElf {
        e_type: u16_at(eh, 16)?,
        ..MemElf::default()
    };
    let phoff = u64_at(eh, 32)?;
    let phentsize = u64::from(u16_at(eh, 54)?);
    let phnum = u64::from(u16_at(eh, 56)?).min(MAX_PHNUM);
    if phentsize < PHDR_SIZE {
        return Some(out);
    }
    let Some(table) = base
        .checked_add(phoff)
        .and_then(|a| dump.read(a, phentsize.checked_mul(phnum)?))
    else {
        return Some(out);
    };
    let mask = !(page_size.max(1) - 1);
    // The table read is `phentsize × phnum` bytes, so every header is in
    // it; one that is not leaves the bias unknown, never zero.
    let Ok(phdrs) = program_headers(table, phentsize, phnum) else {
        return Some(out);
    };
    out.bias = phdrs
        .iter()
        .find(|p| p.p_type == PT_LOAD && p.offset & mask == 0)
        .map(|p| base.wrapping_sub(p.vaddr & mask));
    let Some(bias) = out.bias else {
        return Some(out);
    };
    for ph in phdrs.iter().filter(|p| p.p_type == PT_NOTE) {
        let len = ph.filesz.min(MAX_NOTE_BYTES);
        let Some(data) = dump.read(ph.vaddr.wrapping_add(bias), len) else {
            continue;
        };
        let align = if ph.align == 8 { 8 } else { 4 };
        for n in notes_aligned(data, 0, align, |_| {}) {
            if n.name == b"GNU" && n.n_type == 3 && !n.desc.is_empty() {
                out.build_id = Some(n.desc.to_vec());
                return Some(out);
            }
        }
    }
    Some(out)
}
