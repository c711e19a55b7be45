//! PE32+ facts the image-hardening rules need and `talos-cfg` does not
//! keep: `DllCharacteristics`, the sections' permissions, the load
//! configuration (security cookie, Control Flow Guard flags), the extended
//! DLL characteristics of the debug directory (CET shadow-stack
//! compatibility) and the certificate table (Authenticode).
//!
//! Read with one checked reader over the file bytes (every offset and size
//! from the file is checked before use); `talos-cfg` has already loaded the
//! same bytes as a PE32+ x86-64 image, so the headers are known to be there.

/// `IMAGE_DLLCHARACTERISTICS_HIGH_ENTROPY_VA`.
pub const HIGH_ENTROPY_VA: u16 = 0x0020;
/// `IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE`.
pub const DYNAMIC_BASE: u16 = 0x0040;
/// `IMAGE_DLLCHARACTERISTICS_NX_COMPAT`.
pub const NX_COMPAT: u16 = 0x0100;
/// `IMAGE_DLLCHARACTERISTICS_GUARD_CF`.
pub const GUARD_CF: u16 = 0x4000;
/// `IMAGE_SCN_MEM_EXECUTE`.
const SCN_MEM_EXECUTE: u32 = 0x2000_0000;
/// `IMAGE_SCN_MEM_WRITE`.
const SCN_MEM_WRITE: u32 = 0x8000_0000;
/// `IMAGE_GUARD_CF_INSTRUMENTED`.
const GUARD_CF_INSTRUMENTED: u32 = 0x0000_0100;
/// `IMAGE_DEBUG_TYPE_EX_DLLCHARACTERISTICS`.
const DEBUG_TYPE_EX_DLLCHARACTERISTICS: u32 = 20;
/// `IMAGE_DLLCHARACTERISTICS_EX_CET_COMPAT`.
const EX_CET_COMPAT: u32 = 0x0001;
/// `WIN_CERT_TYPE_PKCS_SIGNED_DATA` (Authenticode).
const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;
/// Debug directory entries examined (real images have a handful).
const MAX_DEBUG_ENTRIES: usize = 64;
/// Sections examined (the Windows loader's own limit).
const MAX_SECTIONS: usize = 96;

/// A section both writable and executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WxSection {
    /// Name (up to 8 bytes, as in the section table).
    pub name: String,
    /// Its address (`ImageBase + VirtualAddress`).
    pub addr: u64,
    /// File offset of its raw data.
    pub file_offset: u64,
    /// Its size in memory.
    pub size: u64,
}

/// What the PE headers say about hardening.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeFacts {
    /// `OptionalHeader.DllCharacteristics`.
    pub dll_characteristics: u16,
    /// A base relocation directory is present (without it the loader
    /// cannot move the image, `DYNAMIC_BASE` or not).
    pub relocations: bool,
    /// Sections both writable and executable.
    pub wx_sections: Vec<WxSection>,
    /// The load configuration directory, when present and readable:
    /// `(SecurityCookie, GuardFlags)`, each when the directory is large
    /// enough to hold it.
    pub load_config: Option<(Option<u64>, Option<u32>)>,
    /// Extended DLL characteristics from the debug directory, when an
    /// entry of that type is present.
    pub ex_dll_characteristics: Option<u32>,
    /// The certificate table: `Some(true)` when it holds a
    /// `WIN_CERT_TYPE_PKCS_SIGNED_DATA` (Authenticode) entry inside the
    /// file, `Some(false)` when it is present but holds none, `None` when
    /// the image has no certificate table.
    pub authenticode: Option<bool>,
}

impl PeFacts {
    /// `DYNAMIC_BASE` set.
    #[must_use]
    pub fn dynamic_base(&self) -> bool {
        self.dll_characteristics & DYNAMIC_BASE != 0
    }

    /// `HIGH_ENTROPY_VA` set.
    #[must_use]
    pub fn high_entropy_va(&self) -> bool {
        self.dll_characteristics & HIGH_ENTROPY_VA != 0
    }

    /// `NX_COMPAT` set.
    #[must_use]
    pub fn nx_compat(&self) -> bool {
        self.dll_characteristics & NX_COMPAT != 0
    }

    /// Control Flow Guard: `GUARD_CF` set and the load configuration says
    /// the image is instrumented.
    #[must_use]
    pub fn control_flow_guard(&self) -> bool {
        self.dll_characteristics & GUARD_CF != 0
            && self
                .load_config
                .and_then(|(_, flags)| flags)
                .is_some_and(|f| f & GUARD_CF_INSTRUMENTED != 0)
    }

    /// CET shadow-stack compatible (`IMAGE_DLLCHARACTERISTICS_EX_CET_COMPAT`).
    #[must_use]
    pub fn cet_compat(&self) -> bool {
        self.ex_dll_characteristics
            .is_some_and(|f| f & EX_CET_COMPAT != 0)
    }

    /// A `/GS` security cookie in the load configuration.
    #[must_use]
    pub fn security_cookie(&self) -> bool {
        self.load_config
            .and_then(|(cookie, _)| cookie)
            .is_some_and(|c| c != 0)
    }
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([*s.first()?, *s.get(1)?]))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Some(u32::from_le_bytes(a))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

/// A section table entry: (virtual address, virtual size, raw size, raw
/// file offset, characteristics, name).
struct Sec {
    va: u32,
    vsize: u32,
    raw_size: u32,
    raw_off: u32,
    characteristics: u32,
    name: String,
}

/// The file offset of `rva`, through the section that maps it.
fn rva_to_offset(sections: &[Sec], rva: u32) -> Option<usize> {
    sections.iter().find_map(|s| {
        let size = s.vsize.max(s.raw_size);
        let rel = rva.checked_sub(s.va)?;
        (rel < size && rel < s.raw_size)
            .then(|| usize::try_from(s.raw_off.checked_add(rel)?).ok())
            .flatten()
    })
}

/// Read the facts. `None` when the headers are not a PE32+ image's (the
/// caller loaded the file with `talos-cfg` first, so that means the file
/// changed or is hostile in a way the loader tolerated).
#[must_use]
pub fn read(bytes: &[u8], image_base: u64) -> Option<PeFacts> {
    let pe = usize::try_from(u32_at(bytes, 0x3c)?).ok()?;
    if bytes.get(pe..pe.checked_add(4)?)? != b"PE\0\0" {
        return None;
    }
    let coff = pe.checked_add(4)?;
    let nsections = usize::from(u16_at(bytes, coff.checked_add(2)?)?);
    let optional_size = usize::from(u16_at(bytes, coff.checked_add(16)?)?);
    let optional = coff.checked_add(20)?;
    if u16_at(bytes, optional)? != 0x20b || optional_size < 112 {
        return None;
    }
    let dll_characteristics = u16_at(bytes, optional.checked_add(70)?)?;
    let ndirs = usize::try_from(u32_at(bytes, optional.checked_add(108)?)?).ok()?;
    let dir = |i: usize| -> Option<(u32, u32)> {
        if i >= ndirs {
            return None;
        }
        let at = optional.checked_add(112)?.checked_add(i.checked_mul(8)?)?;
        if at.checked_add(8)? > optional.checked_add(optional_size)? {
            return None;
        }
        let (va, size) = (u32_at(bytes, at)?, u32_at(bytes, at.checked_add(4)?)?);
        (va != 0 && size != 0).then_some((va, size))
    };
    let table = optional.checked_add(optional_size)?;
    let mut sections = Vec::new();
    for i in 0..nsections.min(MAX_SECTIONS) {
        let at = table.checked_add(i.checked_mul(40)?)?;
        let raw = bytes.get(at..at.checked_add(40)?)?;
        let name_bytes = raw.get(..8)?;
        let end = name_bytes.iter().position(|&b| b == 0).unwrap_or(8);
        sections.push(Sec {
            name: String::from_utf8_lossy(name_bytes.get(..end)?).into_owned(),
            vsize: u32_at(raw, 8)?,
            va: u32_at(raw, 12)?,
            raw_size: u32_at(raw, 16)?,
            raw_off: u32_at(raw, 20)?,
            characteristics: u32_at(raw, 36)?,
        });
    }
    let mut f = PeFacts {
        dll_characteristics,
        relocations: dir(5).is_some(),
        ..PeFacts::default()
    };
    for s in &sections {
        if s.characteristics & SCN_MEM_WRITE != 0 && s.characteristics & SCN_MEM_EXECUTE != 0 {
            f.wx_sections.push(WxSection {
                name: s.name.clone(),
                addr: image_base.wrapping_add(u64::from(s.va)),
                file_offset: u64::from(s.raw_off),
                size: u64::from(if s.vsize != 0 { s.vsize } else { s.raw_size }),
            });
        }
    }
    // Load configuration: its own Size field bounds the fields present.
    if let Some((rva, size)) = dir(10)
        && let Some(off) = rva_to_offset(&sections, rva)
    {
        let declared = u32_at(bytes, off).unwrap_or(0).min(size);
        let field = |at: usize, width: usize| -> bool {
            at.checked_add(width)
                .is_some_and(|e| e <= usize::try_from(declared).unwrap_or(0))
        };
        let cookie = if field(88, 8) {
            off.checked_add(88).and_then(|o| u64_at(bytes, o))
        } else {
            None
        };
        let guard = if field(144, 4) {
            off.checked_add(144).and_then(|o| u32_at(bytes, o))
        } else {
            None
        };
        f.load_config = Some((cookie, guard));
    }
    // Debug directory: 28-byte entries; type 20 carries the extended DLL
    // characteristics in its data.
    if let Some((rva, size)) = dir(6)
        && let Some(off) = rva_to_offset(&sections, rva)
    {
        let n = usize::try_from(size / 28)
            .unwrap_or(0)
            .min(MAX_DEBUG_ENTRIES);
        for i in 0..n {
            let Some(at) = i.checked_mul(28).and_then(|x| off.checked_add(x)) else {
                break;
            };
            let ty = at.checked_add(12).and_then(|o| u32_at(bytes, o));
            let data_size = at.checked_add(16).and_then(|o| u32_at(bytes, o));
            let data_off = at.checked_add(24).and_then(|o| u32_at(bytes, o));
            if ty == Some(DEBUG_TYPE_EX_DLLCHARACTERISTICS)
                && data_size.is_some_and(|s| s >= 4)
                && let Some(v) = data_off
                    .and_then(|o| usize::try_from(o).ok())
                    .and_then(|o| u32_at(bytes, o))
            {
                f.ex_dll_characteristics = Some(v);
            }
        }
    }
    // Certificate table: its "RVA" is a file offset. WIN_CERTIFICATE:
    // dwLength u32, wRevision u16, wCertificateType u16.
    if let Some((off, size)) = dir(4) {
        let off = usize::try_from(off).unwrap_or(usize::MAX);
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let in_file = off.checked_add(size).is_some_and(|e| e <= bytes.len());
        let signed = in_file
            && u32_at(bytes, off).is_some_and(|len| len >= 8)
            && off.checked_add(6).and_then(|o| u16_at(bytes, o))
                == Some(WIN_CERT_TYPE_PKCS_SIGNED_DATA);
        f.authenticode = Some(signed);
    }
    Some(f)
}

/// Exported functions `(name, address)` of a PE image, from goblin's
/// reading of the export directory (with the options `talos-cfg`'s loader
/// uses, which already parsed these bytes): the roots an enclave DLL
/// offers. Empty when the directory cannot be read.
#[must_use]
pub fn exports(bytes: &[u8], image_base: u64) -> Vec<(String, u64)> {
    let mut opts = goblin::pe::options::ParseOptions::default();
    opts.parse_attribute_certificates = false;
    opts.parse_resources = false;
    let pe = goblin::pe::PE::parse_with_opts(bytes, &opts).or_else(|_| {
        goblin::pe::PE::parse_with_opts(
            bytes,
            &opts.with_parse_mode(goblin::options::ParseMode::Permissive),
        )
    });
    let Ok(pe) = pe else {
        return Vec::new();
    };
    let mut out: Vec<(String, u64)> = pe
        .exports
        .iter()
        .filter(|e| e.reexport.is_none())
        .filter_map(|e| {
            let name = e.name.filter(|n| !n.is_empty())?;
            Some((name.to_string(), image_base.wrapping_add(e.rva as u64)))
        })
        .take(talos_cfg::limits::MAX_SYMBOLS)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_pe_and_truncations_are_none_never_a_panic() {
        assert!(read(b"", 0).is_none());
        assert!(read(b"MZ", 0).is_none());
        let mut b = vec![0u8; 0x200];
        b[0..2].copy_from_slice(b"MZ");
        b[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        b[0x80..0x84].copy_from_slice(b"PE\0\0");
        // COFF: 20 sections, optional header of 240 bytes; PE32+ magic.
        b[0x86..0x88].copy_from_slice(&20u16.to_le_bytes());
        b[0x94..0x96].copy_from_slice(&240u16.to_le_bytes());
        b[0x98..0x9a].copy_from_slice(&0x20bu16.to_le_bytes());
        for cut in 0..b.len() {
            let _ = read(&b[..cut], 0);
        }
        // The section table runs past the end: no facts.
        assert!(read(&b, 0).is_none());
        // With one section it fits: the facts of an image with no flags.
        b[0x86..0x88].copy_from_slice(&1u16.to_le_bytes());
        let f = read(&b, 0).unwrap();
        assert!(!f.dynamic_base() && !f.nx_compat() && f.authenticode.is_none());
    }
}
