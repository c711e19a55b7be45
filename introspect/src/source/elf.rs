//! The one checked reader of 64-bit little-endian ELF structures that the
//! dump sources share: the core reader ([`super::core`]) and the reader of
//! an image's own headers in process memory ([`super::memelf`]) both read
//! program headers and notes through it. Every offset and count is checked
//! against the bytes; a read that does not fit is `None` or an error naming
//! what was read, never a zero.

/// `PT_LOAD`.
pub const PT_LOAD: u32 = 1;
/// `PT_NOTE`.
pub const PT_NOTE: u32 = 4;
/// Size of one `Elf64_Phdr`, the least `e_phentsize` read.
pub const PHDR_SIZE: u64 = 56;
/// Most notes walked in one `PT_NOTE` payload.
pub const MAX_NOTES: usize = 1 << 20;

/// The little-endian integer of `size` (at most 8) bytes at `off`.
fn le(bytes: &[u8], off: usize, size: usize) -> Option<u64> {
    let b = bytes.get(off..off.checked_add(size)?)?;
    let mut buf = [0u8; 8];
    buf.get_mut(..size)?.copy_from_slice(b);
    Some(u64::from_le_bytes(buf))
}

/// The `u16` at `off`.
#[must_use]
pub fn u16_at(bytes: &[u8], off: usize) -> Option<u16> {
    le(bytes, off, 2).and_then(|v| u16::try_from(v).ok())
}

/// The `u32` at `off`.
#[must_use]
pub fn u32_at(bytes: &[u8], off: usize) -> Option<u32> {
    le(bytes, off, 4).and_then(|v| u32::try_from(v).ok())
}

/// The `u64` at `off`.
#[must_use]
pub fn u64_at(bytes: &[u8], off: usize) -> Option<u64> {
    le(bytes, off, 8)
}

/// One program header (`Elf64_Phdr`), as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phdr {
    /// `p_type`.
    pub p_type: u32,
    /// `p_flags`.
    pub flags: u32,
    /// `p_offset`.
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
    /// `p_align`.
    pub align: u64,
}

/// Where a program header table does not hold what its header declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhdrOutOfBounds {
    /// Index of the first program header that does not fit.
    pub index: u64,
    /// Bytes the table declares (`entsize × count`), when that fits a u64.
    pub declared: Option<u64>,
}

/// The `count` program headers of `entsize` bytes each at the start of
/// `table`.
///
/// # Errors
/// When `entsize` is below [`PHDR_SIZE`] or the table is shorter than the
/// headers it declares.
pub fn program_headers(
    table: &[u8],
    entsize: u64,
    count: u64,
) -> Result<Vec<Phdr>, PhdrOutOfBounds> {
    let declared = entsize.checked_mul(count);
    let err = |index| PhdrOutOfBounds { index, declared };
    if entsize < PHDR_SIZE {
        return Err(err(0));
    }
    // Allocation bounded by what the table can hold.
    let fits = (table.len() as u64) / entsize;
    let mut out = Vec::with_capacity(usize::try_from(count.min(fits)).map_err(|_| err(0))?);
    for i in 0..count {
        let at = i
            .checked_mul(entsize)
            .and_then(|a| usize::try_from(a).ok())
            .ok_or(err(i))?;
        let field = |o: usize, size: usize| at.checked_add(o).and_then(|p| le(table, p, size));
        let ph = (|| {
            Some(Phdr {
                p_type: u32::try_from(field(0, 4)?).ok()?,
                flags: u32::try_from(field(4, 4)?).ok()?,
                offset: field(8, 8)?,
                vaddr: field(16, 8)?,
                filesz: field(32, 8)?,
                memsz: field(40, 8)?,
                align: field(48, 8)?,
            })
        })()
        .ok_or(err(i))?;
        out.push(ph);
    }
    Ok(out)
}

/// One note, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Note<'a> {
    /// Owner name without the trailing NUL.
    pub name: &'a [u8],
    /// Type.
    pub n_type: u32,
    /// Descriptor bytes.
    pub desc: &'a [u8],
    /// File offset of the note header (for messages).
    pub offset: u64,
}

/// Walk the notes of one `PT_NOTE` payload (4-byte aligned, as in every
/// core file). Stops at the first malformed note and reports it through
/// `bad`.
pub fn notes<'a>(
    data: &'a [u8],
    base_offset: u64,
    bad: impl FnMut(String),
) -> impl Iterator<Item = Note<'a>> {
    notes_aligned(data, base_offset, 4, bad)
}

/// [`notes`] with name and descriptor padded to `align` (4, or 8 for
/// `PT_NOTE` segments of executables with `p_align` 8).
pub fn notes_aligned<'a>(
    data: &'a [u8],
    base_offset: u64,
    align: usize,
    mut bad: impl FnMut(String),
) -> impl Iterator<Item = Note<'a>> {
    let pad = if align == 8 { 7usize } else { 3usize };
    let mut pos = 0usize;
    let mut count = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done || pos >= data.len() || count >= MAX_NOTES {
            return None;
        }
        count += 1;
        let at = base_offset.saturating_add(pos as u64);
        let header = (|| {
            let namesz = usize::try_from(u32_at(data, pos)?).ok()?;
            let descsz = usize::try_from(u32_at(data, pos.checked_add(4)?)?).ok()?;
            let n_type = u32_at(data, pos.checked_add(8)?)?;
            Some((namesz, descsz, n_type))
        })();
        let Some((namesz, descsz, n_type)) = header else {
            // Trailing padding shorter than a header is not worth a word.
            if data.len() - pos >= 12 || data.get(pos..).is_some_and(|t| t.iter().any(|&b| b != 0))
            {
                bad(format!("note header at offset {at:#x} is truncated"));
            }
            done = true;
            return None;
        };
        let parsed = (|| {
            let name_start = pos.checked_add(12)?;
            let name_end = name_start.checked_add(namesz)?;
            // Padding is to `align` from the start of the segment.
            let desc_start = name_end.checked_add(pad)? & !pad;
            let desc_end = desc_start.checked_add(descsz)?;
            let next = desc_end.checked_add(pad)? & !pad;
            let name = data.get(name_start..name_end)?;
            let desc = data.get(desc_start..desc_end)?;
            Some((name, desc, next))
        })();
        match parsed {
            Some((name, desc, next)) => {
                pos = next;
                let name = match name.split_last() {
                    Some((0, rest)) => rest,
                    _ => name,
                };
                Some(Note {
                    name,
                    n_type,
                    desc,
                    offset: at,
                })
            }
            None => {
                bad(format!(
                    "note at offset {at:#x} (type {n_type:#x}) declares name size {namesz} and descriptor size {descsz}, past the end of its segment"
                ));
                done = true;
                None
            }
        }
    })
}
