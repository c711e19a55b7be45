//! Measurements of a dump for the migration gate: the main executable's
//! code measurement taken from memory (`talos.code/1`, defined in
//! [`talos_cfg::measure`]) and glibc's rseq offset read from memory, so the
//! state digest can mask each thread's rseq area.
//!
//! Both read only the dump's own bytes (never a file on this host), so two
//! hosts given the same dump compute the same answer.
//!
//! **Which module is the TA.** The main executable: the file mapping that
//! holds `AT_ENTRY` (the kernel's record of the entry point). Without an
//! auxiliary vector (raw images) the dump's file mappings must name exactly
//! one file. Shared libraries are covered by `talos introspect`'s per-module
//! verdicts, not by this measurement.
//!
//! **How the code is read.** The ELF header and program headers are read
//! from the module's first mapping (file offset 0) in the dump; the load
//! bias is that mapping's address minus the page of the `PT_LOAD` covering
//! file offset 0. Each executable `PT_LOAD`'s `p_filesz` bytes are read at
//! `p_vaddr + bias`. The measured bytes therefore sit at `header address +
//! (p_vaddr - base)`: editing the in-memory program headers can only change
//! which offsets are claimed, and the offsets are part of the measurement.
//! Two consistency checks close the rest: the header's `e_entry + bias` must
//! be `AT_ENTRY`, every measured range must be executable memory, and every
//! executable mapping of the module must lie inside a measured segment's
//! pages (no unmeasured code of the module runs).

use talos_cfg::measure::{CodeSegment, measure_segments};

use crate::dump::{Dump, FileMapping, at};
use crate::source::elf::{PHDR_SIZE, PT_LOAD, Phdr, program_headers, u16_at, u64_at};

/// Most program headers read from memory.
const MAX_PHNUM: u64 = 512;
/// Most dynamic entries read from memory.
const MAX_DYNAMIC: u64 = 65_536;
/// Most hash-chain steps taken in one symbol lookup.
const MAX_CHAIN: u32 = 1 << 20;
/// Longest symbol name compared.
const MAX_NAME: u64 = 256;
/// An rseq offset further than this from the thread pointer is not
/// glibc's (it is a few KiB on every architecture).
const MAX_RSEQ_OFFSET: i64 = 1 << 20;

const PT_DYNAMIC: u32 = 2;
const PF_X: u32 = 1;
const DT_NULL: u64 = 0;
const DT_HASH: u64 = 4;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_STRSZ: u64 = 10;
const DT_SYMENT: u64 = 11;
const DT_GNU_HASH: u64 = 0x6fff_fef5;

/// An ELF image's headers read from a process's memory.
#[derive(Debug, Clone)]
struct MemImage {
    /// Address of the ELF header (the mapping of file offset 0).
    header: u64,
    e_entry: u64,
    phdrs: Vec<Phdr>,
    /// Memory address minus link address.
    bias: u64,
}

fn le<const N: usize>(b: &[u8], o: usize) -> Option<[u8; N]> {
    b.get(o..o.checked_add(N)?)?.try_into().ok()
}

fn read_image(dump: &Dump<'_>, header: u64) -> Result<MemImage, String> {
    let eh = dump
        .read(header, 64)
        .ok_or_else(|| format!("the ELF header at {header:#x} is not in the dump"))?;
    if eh.get(..4) != Some(b"\x7fELF") || eh.get(4) != Some(&2) || eh.get(5) != Some(&1) {
        return Err(format!(
            "no 64-bit little-endian ELF header in memory at {header:#x}"
        ));
    }
    // The 64 header bytes are read above: a field that does not read is
    // an error all the same, never a zero.
    let field = |v: Option<u64>, what: &str| {
        v.ok_or_else(|| format!("the ELF header at {header:#x} has no {what}"))
    };
    let e_entry = field(u64_at(eh, 24), "e_entry")?;
    let phoff = field(u64_at(eh, 32), "e_phoff")?;
    let phentsize = field(u16_at(eh, 54).map(u64::from), "e_phentsize")?;
    let phnum = field(u16_at(eh, 56).map(u64::from), "e_phnum")?;
    if phentsize < PHDR_SIZE || phnum == 0 || phnum > MAX_PHNUM {
        return Err(format!(
            "program header table at {header:#x}: {phnum} entries of {phentsize} bytes"
        ));
    }
    let table = header
        .checked_add(phoff)
        .and_then(|a| dump.read(a, phentsize * phnum))
        .ok_or_else(|| {
            format!("the program headers of the ELF image at {header:#x} are not in the dump")
        })?;
    let phdrs = program_headers(table, phentsize, phnum)
        .map_err(|e| format!("program header {} at {header:#x} is truncated", e.index))?;
    let page = dump.page_size.max(1);
    let mask = !(page - 1);
    let bias = phdrs
        .iter()
        .find(|p| p.p_type == PT_LOAD && p.offset & mask == 0)
        .map(|p| header.wrapping_sub(p.vaddr & mask))
        .ok_or_else(|| {
            format!("the ELF image at {header:#x} has no PT_LOAD covering file offset 0")
        })?;
    Ok(MemImage {
        header,
        e_entry,
        phdrs,
        bias,
    })
}

/// The main executable as the dump records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MainModule {
    /// Path of the file (as the dump records it).
    pub path: String,
    /// Address of its ELF header (its mapping of file offset 0).
    pub header: u64,
}

/// Find the main executable: the file mapping holding `AT_ENTRY`, or the
/// only mapped file when the dump has no auxiliary vector.
///
/// # Errors
/// A sentence saying why no main executable can be named.
pub fn main_module(dump: &Dump<'_>) -> Result<MainModule, String> {
    let entry = dump.auxv_get(at::ENTRY).filter(|&e| e != 0);
    let path = match entry {
        Some(e) => dump
            .file_mapping_containing(e)
            .map(|m| m.path.clone())
            .ok_or_else(|| format!("AT_ENTRY {e:#x} is in no file mapping of the dump"))?,
        None => {
            let mut paths: Vec<&str> = dump.file_mappings.iter().map(|m| m.path.as_str()).collect();
            paths.sort_unstable();
            paths.dedup();
            match paths.as_slice() {
                [one] => (*one).to_string(),
                [] => return Err("the dump maps no file and has no AT_ENTRY".into()),
                _ => {
                    return Err(format!(
                        "the dump has no AT_ENTRY and maps {} files: cannot tell which is the main executable",
                        paths.len()
                    ));
                }
            }
        }
    };
    // The load of that file holding the entry: its last header mapping at
    // or below the entry (a file mapped twice has two).
    let limit = entry.unwrap_or(u64::MAX);
    let header = dump
        .file_mappings
        .iter()
        .filter(|m| m.path == path && m.offset == 0 && m.start <= limit)
        .map(|m| m.start)
        .max()
        .ok_or_else(|| format!("{path}: no mapping of file offset 0 (its ELF header)"))?;
    Ok(MainModule { path, header })
}

/// The main executable's code, measured from memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasuredCode {
    /// The module.
    pub module: MainModule,
    /// Its load bias.
    pub bias: u64,
    /// The measured ranges `(address, length)` in memory.
    pub segments: Vec<(u64, u64)>,
    /// The `talos.code/1` digest.
    pub digest: [u8; 32],
}

/// What the dump says about the main executable's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeEvidence {
    /// Every executable byte the program headers declare is in the dump.
    Measured(MeasuredCode),
    /// The dump cannot prove the code (bytes or headers missing, no main
    /// executable): the sentence says what is missing.
    Unverifiable(String),
    /// The dump contradicts itself: the in-memory headers disagree with
    /// the kernel's auxiliary vector or with the executable mappings.
    /// Treated like modified code.
    Inconsistent(String),
}

/// Measure the main executable's code in `dump` (`talos.code/1`).
#[must_use]
pub fn code_measurement(dump: &Dump<'_>) -> CodeEvidence {
    let module = match main_module(dump) {
        Ok(m) => m,
        Err(e) => return CodeEvidence::Unverifiable(e),
    };
    let img = match read_image(dump, module.header) {
        Ok(i) => i,
        Err(e) => return CodeEvidence::Unverifiable(format!("{}: {e}", module.path)),
    };
    if let Some(entry) = dump.auxv_get(at::ENTRY).filter(|&e| e != 0)
        && img.e_entry.wrapping_add(img.bias) != entry
    {
        return CodeEvidence::Inconsistent(format!(
            "{}: the in-memory header's entry {:#x} + load bias {:#x} is not AT_ENTRY {entry:#x}",
            module.path, img.e_entry, img.bias
        ));
    }
    let page = dump.page_size.max(1);
    let mask = !(page - 1);
    let mut loads: Vec<&Phdr> = img.phdrs.iter().filter(|p| p.p_type == PT_LOAD).collect();
    loads.sort_by_key(|p| p.vaddr);
    // The image base exactly as `talos_cfg` defines it for ELF (0 without
    // a PT_LOAD, as there: no segment below then uses it).
    let base = loads.iter().map(|p| p.vaddr).min().unwrap_or(0) & !0xfff;
    let mut segs: Vec<CodeSegment<'_>> = Vec::new();
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut spans: Vec<(u64, u64)> = Vec::new();
    for p in loads.iter().filter(|p| p.flags & PF_X != 0) {
        let span_start = (p.vaddr & mask).wrapping_add(img.bias);
        let span_end = p
            .vaddr
            .saturating_add(p.memsz.max(p.filesz))
            .saturating_add(page - 1)
            & mask;
        spans.push((span_start, span_end.wrapping_add(img.bias)));
        if p.filesz == 0 {
            continue;
        }
        let addr = p.vaddr.wrapping_add(img.bias);
        let Some(bytes) = dump.read(addr, p.filesz) else {
            return CodeEvidence::Unverifiable(format!(
                "{}: the {} code bytes at {addr:#x} are not (all) in the dump",
                module.path, p.filesz
            ));
        };
        match dump.region_containing(addr) {
            Some(r) if r.perms.execute => {}
            _ => {
                return CodeEvidence::Inconsistent(format!(
                    "{}: the headers declare code at {addr:#x}, but that memory is not executable",
                    module.path
                ));
            }
        }
        segs.push(CodeSegment {
            offset: p.vaddr.wrapping_sub(base),
            bytes,
        });
        ranges.push((addr, p.filesz));
    }
    if segs.is_empty() {
        return CodeEvidence::Inconsistent(format!(
            "{}: the in-memory program headers declare no executable segment",
            module.path
        ));
    }
    // Executable mappings of this file outside the declared segments would
    // run code nobody measured.
    let next_load = dump
        .file_mappings
        .iter()
        .filter(|m| m.path == module.path && m.offset == 0 && m.start > module.header)
        .map(|m| m.start)
        .min()
        .unwrap_or(u64::MAX);
    for m in dump
        .file_mappings
        .iter()
        .filter(|m| m.path == module.path && m.start >= module.header && m.start < next_load)
    {
        let exec = dump
            .region_containing(m.start)
            .is_some_and(|r| r.perms.execute);
        if exec && !spans.iter().any(|&(s, e)| m.start >= s && m.end <= e) {
            return CodeEvidence::Inconsistent(format!(
                "{}: executable mapping {:#x}-{:#x} lies outside the code segments its headers declare",
                module.path, m.start, m.end
            ));
        }
    }
    CodeEvidence::Measured(MeasuredCode {
        digest: measure_segments(&segs),
        module,
        bias: img.bias,
        segments: ranges,
    })
}

/// What the dump says about glibc's restartable-sequences registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rseq {
    /// `__rseq_offset` and a non-zero `__rseq_size` found in `module`:
    /// every thread's rseq area is at its thread pointer plus `offset`.
    Registered {
        /// `__rseq_offset`.
        offset: i64,
        /// `__rseq_size` (0 when the symbol is absent: glibc 2.35 exports
        /// both, so this is only for a library that exports one).
        size: u32,
        /// The module that defines the symbol (glibc's ld.so).
        module: String,
    },
    /// `__rseq_size` is 0: glibc did not register rseq areas (disabled by
    /// the `glibc.pthread.rseq` tunable, or the kernel refused), so the
    /// kernel writes nothing there and nothing needs a mask.
    Unregistered {
        /// The module that defines the symbols.
        module: String,
    },
    /// No `__rseq_offset` could be read from the dump (glibc before 2.35,
    /// a static binary, or the symbol tables are not in the dump).
    Unknown(String),
}

impl Rseq {
    /// The offset to mask at, if rseq areas are registered.
    #[must_use]
    pub fn offset(&self) -> Option<i64> {
        match self {
            Rseq::Registered { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

/// Read glibc's `__rseq_offset` and `__rseq_size` from the dump's memory,
/// through the dynamic symbol table of the module that defines them (the
/// interpreter, `AT_BASE`, is looked at first, then every mapped ELF image
/// in address order).
#[must_use]
pub fn detect_rseq(dump: &Dump<'_>) -> Rseq {
    let interp = dump.auxv_get(at::BASE).filter(|&b| b != 0);
    let mut headers: Vec<&FileMapping> = dump
        .file_mappings
        .iter()
        .filter(|m| m.offset == 0)
        .collect();
    headers.sort_by_key(|m| (Some(m.start) != interp, m.start));
    headers.dedup_by_key(|m| m.start);
    let mut looked = 0usize;
    for m in headers {
        let Ok(img) = read_image(dump, m.start) else {
            continue;
        };
        let Some(dynsyms) = DynSyms::read(dump, &img, m) else {
            continue;
        };
        looked += 1;
        let Some(off_addr) = dynsyms.lookup(dump, b"__rseq_offset") else {
            continue;
        };
        let Some(offset) = dump.read(off_addr, 8).and_then(|b| le::<8>(b, 0)) else {
            return Rseq::Unknown(format!(
                "{}: __rseq_offset at {off_addr:#x} is not in the dump",
                m.path
            ));
        };
        let offset = i64::from_le_bytes(offset);
        if !(-MAX_RSEQ_OFFSET..=MAX_RSEQ_OFFSET).contains(&offset) {
            return Rseq::Unknown(format!(
                "{}: __rseq_offset {offset:#x} is implausible",
                m.path
            ));
        }
        // An absent `__rseq_size` is `None`; one whose bytes the dump
        // lacks is not known, and says so rather than passing for absent.
        let size = match dynsyms.lookup(dump, b"__rseq_size") {
            None => None,
            Some(a) => match dump.read(a, 4).and_then(|b| le::<4>(b, 0)) {
                Some(b) => Some(u32::from_le_bytes(b)),
                None => {
                    return Rseq::Unknown(format!(
                        "{}: __rseq_size at {a:#x} is not in the dump",
                        m.path
                    ));
                }
            },
        };
        return match size {
            Some(0) => Rseq::Unregistered {
                module: m.path.clone(),
            },
            s => Rseq::Registered {
                offset,
                // 0 for an absent symbol, as `Registered::size` documents.
                size: s.unwrap_or(0),
                module: m.path.clone(),
            },
        };
    }
    Rseq::Unknown(format!(
        "no __rseq_offset in the dynamic symbols of the {looked} ELF image(s) whose tables are in the dump"
    ))
}

/// The rseq area of every thread for `offset`, and how many threads have
/// no thread pointer to place one at.
#[must_use]
pub fn rseq_areas(dump: &Dump<'_>, offset: i64) -> (Vec<u64>, usize) {
    let mut areas = Vec::with_capacity(dump.threads.len());
    let mut missing = 0;
    for t in &dump.threads {
        match t
            .fs_base()
            .filter(|&tp| tp != 0)
            .and_then(|tp| tp.checked_add_signed(offset))
        {
            Some(a) => areas.push(a),
            None => missing += 1,
        }
    }
    (areas, missing)
}

/// A dynamic symbol table located in memory.
struct DynSyms {
    bias: u64,
    symtab: u64,
    syment: u64,
    strtab: u64,
    strsz: u64,
    gnu_hash: Option<u64>,
    hash: Option<u64>,
}

fn u32_mem(dump: &Dump<'_>, addr: u64) -> Option<u32> {
    dump.read(addr, 4)
        .and_then(|b| le::<4>(b, 0))
        .map(u32::from_le_bytes)
}

impl DynSyms {
    fn read(dump: &Dump<'_>, img: &MemImage, m: &FileMapping) -> Option<DynSyms> {
        let dynamic = img.phdrs.iter().find(|p| p.p_type == PT_DYNAMIC)?;
        let start = dynamic.vaddr.wrapping_add(img.bias);
        let count = (dynamic.filesz / 16).min(MAX_DYNAMIC);
        let bytes = dump.read(start, count * 16)?;
        // The module's address range: loaders that relocate the dynamic
        // section in place (glibc on most architectures) leave absolute
        // addresses, others (RISC-V, MIPS) link addresses.
        let hi = dump
            .file_mappings
            .iter()
            .filter(|x| x.path == m.path && x.start >= img.header)
            .map(|x| x.end)
            .max()
            .unwrap_or(img.header);
        let abs = |p: u64| {
            if p >= img.header && p < hi {
                p
            } else {
                p.wrapping_add(img.bias)
            }
        };
        let mut d = DynSyms {
            bias: img.bias,
            symtab: 0,
            syment: 24,
            strtab: 0,
            strsz: 0,
            gnu_hash: None,
            hash: None,
        };
        for e in bytes.chunks_exact(16) {
            let tag = le::<8>(e, 0).map(u64::from_le_bytes)?;
            let val = le::<8>(e, 8).map(u64::from_le_bytes)?;
            match tag {
                DT_NULL => break,
                DT_HASH => d.hash = Some(abs(val)),
                DT_GNU_HASH => d.gnu_hash = Some(abs(val)),
                DT_STRTAB => d.strtab = abs(val),
                DT_SYMTAB => d.symtab = abs(val),
                DT_STRSZ => d.strsz = val,
                DT_SYMENT => d.syment = val,
                _ => {}
            }
        }
        (d.symtab != 0 && d.strtab != 0 && d.syment >= 24).then_some(d)
    }

    /// Address in memory of the defined symbol `name`.
    fn lookup(&self, dump: &Dump<'_>, name: &[u8]) -> Option<u64> {
        if let Some(gh) = self.gnu_hash
            && let Some(a) = self.lookup_gnu(dump, gh, name)
        {
            return Some(a);
        }
        self.hash.and_then(|h| self.lookup_sysv(dump, h, name))
    }

    /// The symbol at `index` if it is `name` and defined.
    fn check(&self, dump: &Dump<'_>, index: u32, name: &[u8]) -> Option<Option<u64>> {
        let at = self
            .symtab
            .checked_add(u64::from(index).checked_mul(self.syment)?)?;
        let sym = dump.read(at, 24)?;
        let st_name = u64::from(u32::from_le_bytes(le::<4>(sym, 0)?));
        let shndx = u16::from_le_bytes(le::<2>(sym, 6)?);
        let value = u64::from_le_bytes(le::<8>(sym, 8)?);
        if st_name >= self.strsz && self.strsz != 0 {
            return Some(None);
        }
        let want = name.len() as u64 + 1;
        let Some(s) = self
            .strtab
            .checked_add(st_name)
            .and_then(|a| dump.read(a, want.min(MAX_NAME)))
        else {
            return Some(None);
        };
        let matches = s.get(..name.len()) == Some(name) && s.get(name.len()) == Some(&0);
        Some((matches && shndx != 0).then(|| value.wrapping_add(self.bias)))
    }

    fn lookup_gnu(&self, dump: &Dump<'_>, gh: u64, name: &[u8]) -> Option<u64> {
        let h = name.iter().fold(5381u32, |h, &c| {
            h.wrapping_mul(33).wrapping_add(u32::from(c))
        });
        let nbuckets = u32_mem(dump, gh)?;
        let symoffset = u32_mem(dump, gh.checked_add(4)?)?;
        let bloom_size = u64::from(u32_mem(dump, gh.checked_add(8)?)?);
        if nbuckets == 0 {
            return None;
        }
        let buckets = gh
            .checked_add(16)?
            .checked_add(bloom_size.checked_mul(8)?)?;
        let chains = buckets.checked_add(u64::from(nbuckets) * 4)?;
        let mut i = u32_mem(dump, buckets.checked_add(u64::from(h % nbuckets) * 4)?)?;
        if i < symoffset {
            return None;
        }
        for _ in 0..MAX_CHAIN {
            let ch = u32_mem(dump, chains.checked_add(u64::from(i - symoffset) * 4)?)?;
            if (ch | 1) == (h | 1)
                && let Some(a) = self.check(dump, i, name)?
            {
                return Some(a);
            }
            if (ch & 1) != 0 {
                return None;
            }
            i = i.checked_add(1)?;
        }
        None
    }

    fn lookup_sysv(&self, dump: &Dump<'_>, hash: u64, name: &[u8]) -> Option<u64> {
        let h = name.iter().fold(0u32, |h, &c| {
            let h = (h << 4).wrapping_add(u32::from(c));
            let g = h & 0xf000_0000;
            (if g != 0 { h ^ (g >> 24) } else { h }) & !g
        });
        let nbucket = u32_mem(dump, hash)?;
        let nchain = u32_mem(dump, hash.checked_add(4)?)?;
        if nbucket == 0 {
            return None;
        }
        let buckets = hash.checked_add(8)?;
        let chains = buckets.checked_add(u64::from(nbucket) * 4)?;
        let mut i = u32_mem(dump, buckets.checked_add(u64::from(h % nbucket) * 4)?)?;
        for _ in 0..nchain.min(MAX_CHAIN) {
            if i == 0 || i >= nchain {
                return None;
            }
            if let Some(a) = self.check(dump, i, name)? {
                return Some(a);
            }
            i = u32_mem(dump, chains.checked_add(u64::from(i) * 4)?)?;
        }
        None
    }
}
