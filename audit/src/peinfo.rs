//! PE32+ facts the image-hardening rules need and `talos-cfg` does not
//! keep: `DllCharacteristics`, the sections' permissions, the load
//! configuration (security cookie, Control Flow Guard flags), the extended
//! DLL characteristics of the debug directory (CET shadow-stack
//! compatibility) and the certificate table (Authenticode).
//!
//! Read with the checked reader over the file bytes (every offset and size
//! from the file is checked before use); `talos-cfg` has already loaded the
//! same bytes as a PE32+ x86-64 image, so the headers are known to be there.
//! A directory the headers declare but the file does not hold is recorded
//! as an anomaly, never read as zeros.

use crate::reach::Export;
use crate::reader::{OutOfBounds, Reader};

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
/// Debug directory entries read (real images have a handful).
const MAX_DEBUG_ENTRIES: u64 = 64;
/// Sections read (the Windows loader's own limit).
const MAX_SECTIONS: u16 = 96;

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

/// The load configuration directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LoadConfig {
    /// The image has none.
    #[default]
    Absent,
    /// Present and read. Each field is there when the directory's own
    /// `Size` covers it.
    Read {
        /// `SecurityCookie` (the `/GS` cookie's address).
        security_cookie: Option<u64>,
        /// `GuardFlags`.
        guard_flags: Option<u32>,
    },
    /// Present, but its bytes are not in the file (the anomaly says why):
    /// nothing it would say is known.
    Unreadable,
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
    /// The load configuration directory.
    pub load_config: LoadConfig,
    /// Extended DLL characteristics from the debug directory, when an
    /// entry of that type is present.
    pub ex_dll_characteristics: Option<u32>,
    /// The certificate table: `Some(true)` when it holds a
    /// `WIN_CERT_TYPE_PKCS_SIGNED_DATA` (Authenticode) entry inside the
    /// file, `Some(false)` when it is present but holds none, `None` when
    /// the image has no certificate table.
    pub authenticode: Option<bool>,
    /// What the headers declare but the file does not hold: each a
    /// sentence. An audit with anomalies cannot pass.
    pub anomalies: Vec<String>,
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
            && matches!(
                self.load_config,
                LoadConfig::Read {
                    guard_flags: Some(f),
                    ..
                } if f & GUARD_CF_INSTRUMENTED != 0
            )
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
        matches!(
            self.load_config,
            LoadConfig::Read {
                security_cookie: Some(c),
                ..
            } if c != 0
        )
    }
}

/// A section table entry.
struct Sec {
    /// `VirtualAddress`.
    va: u32,
    /// `VirtualSize`.
    vsize: u32,
    /// `SizeOfRawData`.
    raw_size: u32,
    /// `PointerToRawData`.
    raw_off: u32,
    /// `Characteristics`.
    characteristics: u32,
    /// `Name`, up to its first NUL.
    name: String,
}

/// A data directory entry that is present (address and size both non-zero).
#[derive(Debug, Clone, Copy)]
struct Directory {
    /// Its RVA (for the certificate table: a file offset).
    rva: u32,
    /// Its size.
    size: u32,
}

/// The file offset of `rva`, through the section that maps it.
fn rva_to_offset(sections: &[Sec], rva: u32) -> Option<u64> {
    sections.iter().find_map(|s| {
        let size = s.vsize.max(s.raw_size);
        let rel = rva.checked_sub(s.va)?;
        (rel < size && rel < s.raw_size).then(|| u64::from(s.raw_off) + u64::from(rel))
    })
}

/// Read the facts.
///
/// # Errors
/// When the headers are not a PE32+ image's, or the section table is not in
/// the file (the caller loaded the file with `talos-cfg` first, so that
/// means the file is hostile in a way the loader tolerated).
pub fn read(bytes: &[u8], image_base: u64) -> Result<PeFacts, String> {
    let r = Reader::le(bytes);
    let text = |e: OutOfBounds| e.to_string();
    let pe = u64::from(r.u32(0x3c, "e_lfanew").map_err(text)?);
    if r.slice(pe, 4, "PE signature").map_err(text)? != b"PE\0\0" {
        return Err(format!("no PE signature at e_lfanew {pe:#x}"));
    }
    let coff = pe + 4;
    let nsections = r.u16(coff + 2, "NumberOfSections").map_err(text)?;
    let optional_size = u64::from(r.u16(coff + 16, "SizeOfOptionalHeader").map_err(text)?);
    let optional = coff + 20;
    let magic = r.u16(optional, "optional header magic").map_err(text)?;
    if magic != 0x20b || optional_size < 112 {
        return Err(format!(
            "optional header magic {magic:#x} with {optional_size} bytes: not a PE32+ optional header"
        ));
    }
    let dll_characteristics = r.u16(optional + 70, "DllCharacteristics").map_err(text)?;
    let ndirs = u64::from(r.u32(optional + 108, "NumberOfRvaAndSizes").map_err(text)?);
    // The directories the optional header holds; an entry past its end is
    // absent, as the loader treats it.
    let dir = |i: u64| -> Result<Option<Directory>, OutOfBounds> {
        let at = optional + 112 + i * 8;
        if i >= ndirs || at + 8 > optional + optional_size {
            return Ok(None);
        }
        let rva = r.u32(at, "data directory")?;
        let size = r.u32(at + 4, "data directory")?;
        Ok((rva != 0 && size != 0).then_some(Directory { rva, size }))
    };
    let table = optional + optional_size;
    let mut f = PeFacts {
        dll_characteristics,
        relocations: dir(5).map_err(text)?.is_some(),
        ..PeFacts::default()
    };
    if nsections > MAX_SECTIONS {
        f.anomalies.push(format!(
            "the section table declares {nsections} sections, more than the {MAX_SECTIONS} the Windows loader accepts; the first {MAX_SECTIONS} were read"
        ));
    }
    let mut sections = Vec::new();
    for i in 0..u64::from(nsections.min(MAX_SECTIONS)) {
        let raw = r.sub(table + i * 40, 40, "section header").map_err(text)?;
        // The name fills 8 bytes, NUL-padded when shorter.
        let mut name = raw.array::<8>(0, "section name").map_err(text)?.to_vec();
        if let Some(end) = name.iter().position(|&b| b == 0) {
            name.truncate(end);
        }
        sections.push(Sec {
            name: String::from_utf8_lossy(&name).into_owned(),
            vsize: raw.u32(8, "VirtualSize").map_err(text)?,
            va: raw.u32(12, "VirtualAddress").map_err(text)?,
            raw_size: raw.u32(16, "SizeOfRawData").map_err(text)?,
            raw_off: raw.u32(20, "PointerToRawData").map_err(text)?,
            characteristics: raw.u32(36, "Characteristics").map_err(text)?,
        });
    }
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
    // A directory the optional header names but whose bytes are not in the
    // file is an anomaly: what it would say is unknown.
    let mut unreadable = |what: &str, d: Directory, why: String| {
        f.anomalies.push(format!(
            "the {what} directory (RVA {:#x}, {} bytes) cannot be read: {why}",
            d.rva, d.size
        ));
    };
    // Load configuration: its own Size field bounds the fields present.
    f.load_config = match dir(10).map_err(text)? {
        None => LoadConfig::Absent,
        Some(d) => match load_config(&r, &sections, d) {
            Ok(c) => c,
            Err(why) => {
                unreadable("load configuration", d, why);
                LoadConfig::Unreadable
            }
        },
    };
    // Debug directory: 28-byte entries; type 20 carries the extended DLL
    // characteristics in its data.
    if let Some(d) = dir(6).map_err(text)? {
        match ex_dll_characteristics(&r, &sections, d) {
            Ok(v) => f.ex_dll_characteristics = v,
            Err(why) => unreadable("debug", d, why),
        }
    }
    // Certificate table: its "RVA" is a file offset. WIN_CERTIFICATE:
    // dwLength u32, wRevision u16, wCertificateType u16.
    if let Some(d) = dir(4).map_err(text)? {
        let (off, size) = (u64::from(d.rva), u64::from(d.size));
        let signed = r.slice(off, size, "certificate table").is_ok()
            && r.u32(off, "dwLength").is_ok_and(|len| len >= 8)
            && r.u16(off + 6, "wCertificateType") == Ok(WIN_CERT_TYPE_PKCS_SIGNED_DATA);
        f.authenticode = Some(signed);
    }
    Ok(f)
}

/// The load configuration's `SecurityCookie` and `GuardFlags`.
fn load_config(r: &Reader<'_>, sections: &[Sec], d: Directory) -> Result<LoadConfig, String> {
    let off = rva_to_offset(sections, d.rva)
        .ok_or_else(|| "no section maps its RVA to file data".to_string())?;
    let declared = r
        .u32(off, "load configuration Size")
        .map_err(|e| e.to_string())?
        .min(d.size);
    let field = |at: u64, width: u64| at + width <= u64::from(declared);
    let security_cookie = if field(88, 8) {
        Some(
            r.u64(off + 88, "SecurityCookie")
                .map_err(|e| e.to_string())?,
        )
    } else {
        None
    };
    let guard_flags = if field(144, 4) {
        Some(r.u32(off + 144, "GuardFlags").map_err(|e| e.to_string())?)
    } else {
        None
    };
    Ok(LoadConfig::Read {
        security_cookie,
        guard_flags,
    })
}

/// The extended DLL characteristics, from the debug directory's entry of
/// type `IMAGE_DEBUG_TYPE_EX_DLLCHARACTERISTICS` (the last one, if several).
fn ex_dll_characteristics(
    r: &Reader<'_>,
    sections: &[Sec],
    d: Directory,
) -> Result<Option<u32>, String> {
    let off = rva_to_offset(sections, d.rva)
        .ok_or_else(|| "no section maps its RVA to file data".to_string())?;
    let count = u64::from(d.size / 28);
    if count > MAX_DEBUG_ENTRIES {
        return Err(format!(
            "{count} entries, more than the {MAX_DEBUG_ENTRIES} talos reads"
        ));
    }
    let mut found = None;
    for i in 0..count {
        let e = r
            .sub(off + i * 28, 28, "debug directory entry")
            .map_err(|e| e.to_string())?;
        let ty = e.u32(12, "Type").map_err(|e| e.to_string())?;
        let data_size = e.u32(16, "SizeOfData").map_err(|e| e.to_string())?;
        let data_off = e.u32(24, "PointerToRawData").map_err(|e| e.to_string())?;
        if ty == DEBUG_TYPE_EX_DLLCHARACTERISTICS && data_size >= 4 {
            found = Some(
                r.u32(u64::from(data_off), "extended DLL characteristics")
                    .map_err(|e| e.to_string())?,
            );
        }
    }
    Ok(found)
}

/// Exported functions of a PE image, from goblin's reading of the export
/// directory (with the options `talos-cfg`'s loader uses, which already
/// parsed these bytes): the roots an enclave DLL offers.
///
/// # Errors
/// When goblin cannot read the image (then no export is known, and the
/// reachability built without them would undercount).
pub fn exports(bytes: &[u8], image_base: u64) -> Result<Vec<Export>, String> {
    let mut opts = goblin::pe::options::ParseOptions::default();
    opts.parse_attribute_certificates = false;
    opts.parse_resources = false;
    let pe = goblin::pe::PE::parse_with_opts(bytes, &opts).or_else(|_| {
        goblin::pe::PE::parse_with_opts(
            bytes,
            &opts.with_parse_mode(goblin::options::ParseMode::Permissive),
        )
    });
    let pe = pe.map_err(|e| format!("the export directory cannot be read: {e}"))?;
    let mut out: Vec<Export> = pe
        .exports
        .iter()
        .filter(|e| e.reexport.is_none())
        .filter_map(|e| {
            let name = e.name.filter(|n| !n.is_empty())?;
            Some(Export {
                name: name.to_string(),
                addr: image_base.wrapping_add(e.rva as u64),
            })
        })
        .collect();
    if out.len() > talos_cfg::limits::MAX_SYMBOLS {
        return Err(format!(
            "the export directory names {} functions, more than the {} talos reads",
            out.len(),
            talos_cfg::limits::MAX_SYMBOLS
        ));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_pe_and_truncations_are_errors_never_a_panic() {
        assert!(read(b"", 0).is_err());
        assert!(read(b"MZ", 0).is_err());
        // COFF: 20 sections, optional header of 240 bytes; PE32+ magic.
        let mut b = pe_headers(0x200, 20);
        for cut in 0..b.len() {
            let _ = read(&b[..cut], 0);
        }
        // The section table runs past the end: no facts.
        let e = read(&b, 0).unwrap_err();
        assert!(e.starts_with("section header:"), "{e}");
        // With one section it fits: the facts of an image with no flags.
        b[0x86..0x88].copy_from_slice(&1u16.to_le_bytes());
        let f = read(&b, 0).unwrap();
        assert!(!f.dynamic_base() && !f.nx_compat() && f.authenticode.is_none());
        assert_eq!(f.load_config, LoadConfig::Absent);
        assert!(f.anomalies.is_empty());
    }

    /// `len` zero bytes with a DOS stub pointing at a PE signature at 0x80,
    /// a COFF header declaring `sections` sections and a 240-byte optional
    /// header, and the PE32+ magic.
    fn pe_headers(len: usize, sections: u16) -> Vec<u8> {
        let mut b = vec![0u8; len];
        b[0..2].copy_from_slice(b"MZ");
        b[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        b[0x80..0x84].copy_from_slice(b"PE\0\0");
        b[0x86..0x88].copy_from_slice(&sections.to_le_bytes());
        b[0x94..0x96].copy_from_slice(&240u16.to_le_bytes());
        b[0x98..0x9a].copy_from_slice(&0x20bu16.to_le_bytes());
        b
    }

    /// A PE32+ header with one section (`.text`, RVA 0x1000, raw data at
    /// 0x200, 0x100 bytes) and 16 data directories, in a 0x300-byte file.
    fn one_section_image() -> Vec<u8> {
        let mut b = pe_headers(0x300, 1);
        b[0x98 + 108..0x98 + 112].copy_from_slice(&16u32.to_le_bytes());
        let sec = 0x98 + 240;
        b[sec..sec + 5].copy_from_slice(b".text");
        b[sec + 8..sec + 12].copy_from_slice(&0x100u32.to_le_bytes());
        b[sec + 12..sec + 16].copy_from_slice(&0x1000u32.to_le_bytes());
        b[sec + 16..sec + 20].copy_from_slice(&0x100u32.to_le_bytes());
        b[sec + 20..sec + 24].copy_from_slice(&0x200u32.to_le_bytes());
        b
    }

    fn set_directory(b: &mut [u8], i: usize, rva: u32, size: u32) {
        let at = 0x98 + 112 + i * 8;
        b[at..at + 4].copy_from_slice(&rva.to_le_bytes());
        b[at + 4..at + 8].copy_from_slice(&size.to_le_bytes());
    }

    #[test]
    fn a_load_configuration_the_file_does_not_hold_is_an_anomaly_not_zeros() {
        // Inside the section: read, with the fields its Size covers.
        let mut b = one_section_image();
        set_directory(&mut b, 10, 0x1000, 0x100);
        b[0x200..0x204].copy_from_slice(&0x100u32.to_le_bytes());
        b[0x200 + 88..0x200 + 96].copy_from_slice(&0x1234u64.to_le_bytes());
        let f = read(&b, 0).unwrap();
        assert!(f.anomalies.is_empty(), "{:?}", f.anomalies);
        assert!(f.security_cookie());
        // Its RVA maps to no section's file data.
        set_directory(&mut b, 10, 0x9000, 0x100);
        let f = read(&b, 0).unwrap();
        assert_eq!(f.load_config, LoadConfig::Unreadable);
        assert!(!f.security_cookie() && !f.control_flow_guard());
        assert_eq!(f.anomalies.len(), 1);
        assert!(
            f.anomalies[0].contains("load configuration"),
            "{:?}",
            f.anomalies
        );
        // Its section's raw data runs past the end of a truncated file.
        set_directory(&mut b, 10, 0x1000, 0x100);
        let f = read(&b[..0x201], 0).unwrap();
        assert_eq!(f.load_config, LoadConfig::Unreadable);
        assert!(
            f.anomalies[0].contains("load configuration Size"),
            "{:?}",
            f.anomalies
        );
    }

    #[test]
    fn debug_entries_outside_the_file_are_an_anomaly() {
        let mut b = one_section_image();
        // Two entries at RVA 0x1000; the first of type 20 points past the
        // end of the file.
        set_directory(&mut b, 6, 0x1000, 56);
        b[0x200 + 12..0x200 + 16].copy_from_slice(&20u32.to_le_bytes());
        b[0x200 + 16..0x200 + 20].copy_from_slice(&4u32.to_le_bytes());
        b[0x200 + 24..0x200 + 28].copy_from_slice(&0x10_000u32.to_le_bytes());
        let f = read(&b, 0).unwrap();
        assert_eq!(f.ex_dll_characteristics, None);
        assert!(
            f.anomalies[0].starts_with("the debug directory"),
            "{:?}",
            f.anomalies
        );
        // Pointing inside: read.
        b[0x200 + 24..0x200 + 28].copy_from_slice(&0x2f0u32.to_le_bytes());
        b[0x2f0..0x2f4].copy_from_slice(&1u32.to_le_bytes());
        let f = read(&b, 0).unwrap();
        assert_eq!(f.ex_dll_characteristics, Some(1));
        assert!(f.cet_compat() && f.anomalies.is_empty());
    }
}
