//! Reading an ELF image's own headers from process memory: the build-id in
//! the first page of every mapped ELF (the kernel and gdb keep that page
//! even with the default `coredump_filter`), and the load bias.

use crate::source::core::notes_aligned;
use crate::dump::Dump;

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

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(o..o.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(o..o.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(o..o.checked_add(8)?)?.try_into().ok()?,
    ))
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
    if phentsize < 56 {
        return Some(out);
    }
    let Some(table) = base
        .checked_add(phoff)
        .and_then(|a| dump.read(a, phentsize.checked_mul(phnum)?))
    else {
        return Some(out);
    };
    let mask = !(page_size.max(1) - 1);
    let mut phdrs = Vec::new();
    for i in 0..phnum {
        let Some(at) = usize::try_from(i * phentsize).ok() else {
            break;
        };
        let (Some(p_type), Some(offset), Some(vaddr), Some(filesz), Some(align)) = (
            u32_at(table, at),
            at.checked_add(8).and_then(|o| u64_at(table, o)),
            at.checked_add(16).and_then(|o| u64_at(table, o)),
            at.checked_add(32).and_then(|o| u64_at(table, o)),
            at.checked_add(48).and_then(|o| u64_at(table, o)),
        ) else {
            break;
        };
        phdrs.push((p_type, offset, vaddr, filesz, align));
    }
    out.bias = phdrs
        .iter()
        .find(|p| p.0 == 1 && p.1 & mask == 0)
        .map(|p| base.wrapping_sub(p.2 & mask));
    let Some(bias) = out.bias else {
        return Some(out);
    };
    for &(p_type, _, vaddr, filesz, align) in &phdrs {
        if p_type != 4 {
            continue;
        }
        let len = filesz.min(MAX_NOTE_BYTES);
        let Some(data) = dump.read(vaddr.wrapping_add(bias), len) else {
            continue;
        };
        let align = if align == 8 { 8 } else { 4 };
        for n in notes_aligned(data, 0, align, |_| {}) {
            if n.name == b"GNU" && n.n_type == 3 && !n.desc.is_empty() {
                out.build_id = Some(n.desc.to_vec());
                return Some(out);
            }
        }
    }
    Some(out)
}
