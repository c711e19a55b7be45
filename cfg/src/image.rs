//! The loaded image: what a binary says about itself, independent of its
//! container format.
//!
//! Loaders ([`crate::elf`], [`crate::pe`]) fill an [`Image`] that borrows the
//! file bytes; the graph builder only ever reads code and data through it, by
//! virtual address as linked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Instruction-set architecture of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// 32-bit x86 (i386).
    X86,
    /// x86-64 (AMD64).
    X86_64,
    /// RISC-V 64-bit (RV64GC).
    Riscv64,
    /// AArch64 (ARMv8-A, A64).
    Aarch64,
}

impl Arch {
    /// The name used in outputs (`x86_64`, `riscv64`, ...).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86 => "x86",
            Arch::X86_64 => "x86_64",
            Arch::Riscv64 => "riscv64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// Size of a code pointer in bytes.
    #[must_use]
    pub fn pointer_size(self) -> u8 {
        match self {
            Arch::X86 => 4,
            Arch::X86_64 | Arch::Riscv64 | Arch::Aarch64 => 8,
        }
    }
}

/// Container format of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// ELF (Linux, Keystone, bare metal).
    Elf,
    /// PE/COFF (Windows; SGX enclaves on Windows are PE32+ DLLs).
    Pe,
}

impl Format {
    /// The name used in outputs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Format::Elf => "elf",
            Format::Pe => "pe",
        }
    }
}

/// What kind of linked object the image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageKind {
    /// A position-dependent executable (ELF `ET_EXEC`, PE without dynamic base).
    Executable,
    /// A position-independent executable (ELF `ET_DYN` with `DF_1_PIE` or an
    /// interpreter, PE with dynamic base).
    PieExecutable,
    /// A shared object or DLL.
    SharedObject,
}

/// Access permissions of a segment or section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Perms {
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub execute: bool,
}

impl std::fmt::Display for Perms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = if self.read { 'r' } else { '-' };
        let w = if self.write { 'w' } else { '-' };
        let x = if self.execute { 'x' } else { '-' };
        write!(f, "{r}{w}{x}")
    }
}

/// A loadable segment: `[vaddr, vaddr + mem_size)` in memory, the first
/// `file_size` bytes of it backed by the file at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Virtual address as linked.
    pub vaddr: u64,
    /// Size in memory.
    pub mem_size: u64,
    /// File offset of the backed part.
    pub offset: u64,
    /// Bytes backed by the file (the rest reads as zero).
    pub file_size: u64,
    /// Permissions.
    pub perms: Perms,
}

impl Segment {
    /// One past the last address.
    #[must_use]
    pub fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.mem_size)
    }
}

/// A section (ELF section header or PE section), with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Name (`.text`, `.plt.sec`, ...); empty when the table has no names.
    pub name: String,
    /// Virtual address as linked (0 for sections not loaded).
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// File offset (meaningless for sections without file bytes).
    pub offset: u64,
    /// Whether the section is loaded into memory.
    pub alloc: bool,
    /// Whether the section holds bytes in the file (not `SHT_NOBITS`).
    pub has_bytes: bool,
    /// Permissions when loaded.
    pub perms: Perms,
    /// Entry size for tables (PLT entries, symbol tables), 0 if not a table.
    pub entry_size: u64,
}

impl Section {
    /// One past the last address.
    #[must_use]
    pub fn end(&self) -> u64 {
        self.addr.saturating_add(self.size)
    }

    /// Whether `addr` lies inside the section's address range.
    #[must_use]
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.addr && addr < self.end()
    }

    /// Whether this is a procedure linkage table (import stubs).
    #[must_use]
    pub fn is_plt(&self) -> bool {
        matches!(
            self.name.as_str(),
            ".plt" | ".plt.sec" | ".plt.got" | ".iplt" | ".plt.bnd"
        )
    }
}

/// Where a symbol came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SymbolSource {
    /// The static symbol table (`.symtab`, COFF symbols); gone after `strip`.
    Symtab,
    /// The dynamic symbol table (`.dynsym`) or PE export directory.
    Dynsym,
    /// A synthesised name for an import stub (`puts@plt`).
    ImportStub,
}

/// A named code address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// The symbol's name.
    pub name: String,
    /// Address as linked.
    pub addr: u64,
    /// Declared size (0 when unknown).
    pub size: u64,
    /// Global (exported or at least visible) rather than local.
    pub global: bool,
    /// Which table it came from.
    pub source: SymbolSource,
}

/// A frame description entry from `.eh_frame` (or a PE `RUNTIME_FUNCTION`):
/// the compiler's own statement that `[start, start + len)` is one function's
/// code (or one cold part of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fde {
    /// First address covered.
    pub start: u64,
    /// Bytes covered.
    pub len: u64,
}

/// A binary loaded for analysis; borrows the file bytes.
#[derive(Debug, Clone)]
pub struct Image<'data> {
    /// The whole file.
    pub bytes: &'data [u8],
    /// Container format.
    pub format: Format,
    /// Architecture.
    pub arch: Arch,
    /// Executable, PIE or shared object.
    pub kind: ImageKind,
    /// The image base: the lowest loaded address, page aligned (ELF) or the
    /// preferred image base (PE). Every digest takes addresses relative to it.
    pub base: u64,
    /// Entry point, if the image has one.
    pub entry: Option<u64>,
    /// GNU build-id (ELF) or CodeView GUID+age (PE), raw bytes.
    pub build_id: Option<Vec<u8>>,
    /// Loadable segments, sorted by address.
    pub segments: Vec<Segment>,
    /// Sections in header order.
    pub sections: Vec<Section>,
    /// Function symbols (both tables, deduplicated), sorted by address.
    pub symbols: Vec<Symbol>,
    /// Import slots: address of a GOT/IAT entry -> imported name.
    pub import_slots: BTreeMap<u64, String>,
    /// Frame description entries, sorted by start.
    pub fdes: Vec<Fde>,
    /// Entries of functions with exception landing pads (an FDE naming an
    /// LSDA, a PE unwind entry with a handler): code the unwinder enters
    /// that no branch reaches, so their graphs are never complete. Sorted.
    pub exception_handlers: Vec<u64>,
    /// Exception landing pads, as (start of the function's FDE or unwind
    /// entry, landing pad), sorted: code the unwinder enters, which belongs
    /// to the function though no branch reaches it (read from the LSDA each
    /// FDE names).
    pub landing_pads: Vec<(u64, u64)>,
    /// Function pointers the loader runs: init/fini arrays, `DT_INIT`,
    /// `DT_FINI`, TLS callbacks. Sorted, deduplicated.
    pub init_fini: Vec<u64>,
    /// Code addresses stored in data through relocations (`R_*_RELATIVE`,
    /// absolute relocations, PE base relocations): possible function starts.
    pub code_pointers: Vec<u64>,
    /// The image has text relocations (`DT_TEXTREL`): code bytes in memory
    /// are patched by the loader.
    pub text_relocations: bool,
    /// Value the ABI keeps in a register for position-independent code on
    /// 32-bit x86 (`DT_PLTGOT`, the `.got.plt` address).
    pub got_base: Option<u64>,
    /// Things the loader noticed that a reviewer should know.
    pub notes: Vec<String>,
    /// What the loader writes into the image before any code runs: for
    /// every `R_*_RELATIVE` relocation, (address, value). Sorted by address.
    /// In a PIE or shared object a table of code addresses (a jump table of
    /// absolute entries, a computed-goto dispatch table) holds zeros in the
    /// file and its real entries here.
    pub relocated: Vec<(u64, u64)>,
    /// Address ranges the loader makes read-only once relocated
    /// (`PT_GNU_RELRO`: `.data.rel.ro`, `.got`), sorted.
    pub relro: Vec<(u64, u64)>,
    /// Caps the loader stopped at (more symbols, relocations, records than
    /// it reads): what it read is a part of the file's tables.
    pub caps: Vec<crate::model::CapHit>,
}

impl<'data> Image<'data> {
    /// An image of `bytes` with nothing read from it yet: no base, entry,
    /// segments or sections, and nothing derived from them. The loaders
    /// start from it and fill in what the container says.
    pub(crate) fn bare(bytes: &'data [u8], format: Format, arch: Arch, kind: ImageKind) -> Self {
        Image {
            bytes,
            format,
            arch,
            kind,
            base: 0,
            entry: None,
            build_id: None,
            segments: Vec::new(),
            sections: Vec::new(),
            symbols: Vec::new(),
            import_slots: BTreeMap::new(),
            fdes: Vec::new(),
            exception_handlers: Vec::new(),
            landing_pads: Vec::new(),
            init_fini: Vec::new(),
            code_pointers: Vec::new(),
            text_relocations: false,
            got_base: None,
            notes: Vec::new(),
            relocated: Vec::new(),
            relro: Vec::new(),
            caps: Vec::new(),
        }
    }

    /// The file bytes backing `[addr, addr + len)`, if that whole range is
    /// file-backed in one segment.
    #[must_use]
    pub fn read(&self, addr: u64, len: u64) -> Option<&'data [u8]> {
        let seg = self.segment_containing(addr)?;
        let rel = addr.checked_sub(seg.vaddr)?;
        let end_rel = rel.checked_add(len)?;
        if end_rel > seg.file_size {
            return None;
        }
        let start = usize::try_from(seg.offset.checked_add(rel)?).ok()?;
        let end = usize::try_from(seg.offset.checked_add(end_rel)?).ok()?;
        self.bytes.get(start..end)
    }

    /// [`Image::bytes_from`] `addr`, cut at `end` (the window a decoder may
    /// look at when it must not read past a range or a gap).
    #[must_use]
    pub fn bytes_until(&self, addr: u64, end: u64) -> Option<&'data [u8]> {
        self.bytes_from(addr).and_then(|b| {
            let max = usize::try_from(end.saturating_sub(addr)).unwrap_or(usize::MAX);
            b.get(..b.len().min(max))
        })
    }

    /// Every file-backed byte from `addr` to the end of its segment's file
    /// part (the window a decoder may look at).
    #[must_use]
    pub fn bytes_from(&self, addr: u64) -> Option<&'data [u8]> {
        let seg = self.segment_containing(addr)?;
        let rel = addr.checked_sub(seg.vaddr)?;
        if rel >= seg.file_size {
            return None;
        }
        let start = usize::try_from(seg.offset.checked_add(rel)?).ok()?;
        let end = usize::try_from(seg.offset.checked_add(seg.file_size)?).ok()?;
        self.bytes.get(start..end)
    }

    /// Read a little-endian unsigned value of `size` (1, 2, 4 or 8) bytes.
    #[must_use]
    pub fn read_uint(&self, addr: u64, size: u8) -> Option<u64> {
        let bytes = self.read(addr, u64::from(size))?;
        let mut buf = [0u8; 8];
        buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(u64::from_le_bytes(buf))
    }

    /// The pointer-sized (or smaller) value at `addr` once the loader has
    /// relocated the image: a `RELATIVE` relocation's value where there is
    /// one, else the file's bytes.
    #[must_use]
    pub fn read_relocated(&self, addr: u64, size: u8) -> Option<u64> {
        if size == self.arch.pointer_size()
            && let Some(v) = self.relocation_at(addr)
        {
            return Some(v);
        }
        self.read_uint(addr, size)
    }

    /// The value a `RELATIVE` relocation at `addr` gives, if there is one.
    #[must_use]
    pub fn relocation_at(&self, addr: u64) -> Option<u64> {
        let i = self
            .relocated
            .binary_search_by_key(&addr, |&(a, _)| a)
            .ok()?;
        self.relocated.get(i).map(|&(_, v)| v)
    }

    /// Whether the bytes at `addr` may change while the program runs: in a
    /// writable section (or, without sections, segment) and not made
    /// read-only after relocation (`PT_GNU_RELRO`).
    #[must_use]
    pub fn writable_at_run_time(&self, addr: u64) -> bool {
        let writable = match self.sections.iter().find(|s| s.alloc && s.contains(addr)) {
            Some(s) => s.perms.write,
            None => self.segment_containing(addr).is_none_or(|s| s.perms.write),
        };
        writable && !self.relro.iter().any(|&(lo, hi)| addr >= lo && addr < hi)
    }

    /// The segment whose memory range holds `addr`.
    #[must_use]
    pub fn segment_containing(&self, addr: u64) -> Option<&Segment> {
        let idx = self.segments.partition_point(|s| s.vaddr <= addr);
        let seg = self.segments.get(idx.checked_sub(1)?)?;
        (addr < seg.end()).then_some(seg)
    }

    /// The executable code ranges: executable sections when the image has
    /// section headers, else executable segments. Sorted, non-overlapping.
    #[must_use]
    pub fn code_ranges(&self) -> Vec<CodeRange> {
        let mut out: Vec<CodeRange> = self
            .sections
            .iter()
            .filter(|s| s.alloc && s.has_bytes && s.perms.execute && s.size > 0)
            .filter(|s| self.read(s.addr, s.size).is_some())
            .map(|s| CodeRange {
                start: s.addr,
                end: s.end(),
                name: s.name.clone(),
                plt: s.is_plt(),
                entry_size: s.entry_size,
            })
            .collect();
        if out.is_empty() {
            out = self
                .segments
                .iter()
                .filter(|s| s.perms.execute && s.file_size > 0)
                .map(|s| CodeRange {
                    start: s.vaddr,
                    end: s.vaddr.saturating_add(s.file_size),
                    name: String::new(),
                    plt: false,
                    entry_size: 0,
                })
                .collect();
        }
        out.sort_by_key(|r| (r.start, r.end));
        // Overlapping executable sections are malformed; keep the first.
        let mut kept: Vec<CodeRange> = Vec::with_capacity(out.len());
        for r in out {
            if kept.last().is_none_or(|last| r.start >= last.end) {
                kept.push(r);
            }
        }
        kept
    }

    /// The lowest and one-past-highest address of the loaded image.
    #[must_use]
    pub fn address_span(&self) -> (u64, u64) {
        let lo = self.segments.iter().map(|s| s.vaddr).min().unwrap_or(0);
        let hi = self.segments.iter().map(Segment::end).max().unwrap_or(0);
        (lo, hi)
    }

    /// The build-id as lowercase hex.
    #[must_use]
    pub fn build_id_hex(&self) -> Option<String> {
        self.build_id.as_deref().map(crate::hex)
    }
}

/// A range of executable bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRange {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Section name, or empty when taken from a segment.
    pub name: String,
    /// Whether this is an import-stub table.
    pub plt: bool,
    /// Entry size of the table (PLT sections), else 0.
    pub entry_size: u64,
}

impl CodeRange {
    /// Whether `addr` lies in the range.
    #[must_use]
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.start && addr < self.end
    }
}
