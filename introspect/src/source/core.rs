//! ELF core reader: kernel and gdb layouts, 64-bit little-endian.
//!
//! Reads program headers only (gdb adds section headers, the kernel does
//! not). `PT_LOAD` segments become [`Region`]s that borrow their bytes from
//! the input; `PT_NOTE` gives threads (`NT_PRSTATUS`), the process
//! (`NT_PRPSINFO`), the auxiliary vector (`NT_AUXV`), the file mappings
//! (`NT_FILE`, offsets in units of its own page-size field: 4096 from the
//! kernel, 1 from gdb) and the signal (`NT_SIGINFO`). Notes are keyed on
//! (owner, type), never on their order.
//!
//! Every offset and count is checked against the input. A header that makes
//! the rest unreadable is an [`Error`]; anything else odd (a segment running
//! past the end of a truncated core, a malformed note) is recorded as an
//! [`Anomaly`] and reading goes on.

use std::borrow::Cow;

use crate::dump::{
    Anomaly, Arch, Dump, FileMapping, ProcessInfo, Registers, Source, Thread, UnreadThread,
    UnreadWhy,
};
use crate::error::{Error, Result};
use crate::region::{Perms, Region, RegionKind};
pub use crate::source::elf::{Note, notes, notes_aligned};
use crate::source::elf::{Phdr, PhdrOutOfBounds, program_headers, u16_at, u32_at, u64_at};

/// `e_type` of a core file.
pub const ET_CORE: u16 = 4;
pub use crate::source::elf::{PT_LOAD, PT_NOTE};
/// `NT_PRSTATUS`.
pub const NT_PRSTATUS: u32 = 1;
/// `NT_FPREGSET`.
pub const NT_FPREGSET: u32 = 2;
/// `NT_PRPSINFO`.
pub const NT_PRPSINFO: u32 = 3;
/// `NT_AUXV`.
pub const NT_AUXV: u32 = 6;
/// `NT_FILE`.
pub const NT_FILE: u32 = 0x4649_4c45;
/// `NT_SIGINFO`.
pub const NT_SIGINFO: u32 = 0x5349_4749;
/// gdb's target description note.
pub const NT_GDB_TDESC: u32 = 0xff00_0000;
/// The note talos snapshots carry (owner `TALOS`).
pub const NT_TALOS_SNAPSHOT: u32 = 1;

/// Offset of `pr_pid` in `elf_prstatus` (64-bit).
const PRSTATUS_PID: usize = 32;
/// Offset of `pr_cursig`.
const PRSTATUS_CURSIG: usize = 12;
/// Offset of `pr_reg` in `elf_prstatus` (64-bit, every architecture).
pub const PRSTATUS_REGS: usize = 112;

/// Limits that bound memory and time on hostile input.
pub mod limits {
    /// Program headers (the kernel writes one per mapping; 65530 is the
    /// default `vm.max_map_count`).
    pub const MAX_PHDRS: u64 = 1 << 20;
    /// Notes walked in one `PT_NOTE` segment.
    pub const MAX_NOTES: usize = crate::source::elf::MAX_NOTES;
    /// Threads kept.
    pub const MAX_THREADS: usize = 1 << 16;
    /// Anomalies recorded before they are counted instead.
    pub const MAX_ANOMALIES: usize = 256;
}

/// Number of register words in `NT_PRSTATUS` for `arch`.
#[must_use]
pub fn prstatus_reg_count(arch: Arch) -> usize {
    match arch {
        Arch::X86_64 => 27,
        Arch::Aarch64 => 34,
        Arch::Riscv64 => 32,
        Arch::X86 => 17,
    }
}

/// Whether `bytes` looks like an ELF core (magic and `e_type`).
#[must_use]
pub fn is_core(bytes: &[u8]) -> bool {
    bytes.get(..4) == Some(b"\x7fELF") && u16_at(bytes, 16) == Some(ET_CORE)
}

fn arch_of(machine: u16) -> Result<Arch> {
    match machine {
        62 => Ok(Arch::X86_64),
        183 => Ok(Arch::Aarch64),
        243 => Ok(Arch::Riscv64),
        3 => Err(Error::Unsupported(
            "32-bit x86 core (EM_386); talos reads 64-bit cores".into(),
        )),
        m => Err(Error::Unsupported(format!("core for e_machine {m}"))),
    }
}

fn perms_of(flags: u32) -> Perms {
    Perms {
        read: flags & 4 != 0,
        write: flags & 2 != 0,
        execute: flags & 1 != 0,
    }
}

/// A field of the ELF header: the 64 header bytes are checked to be there
/// before any is read, and a field that does not read is an error all the
/// same, never a zero.
fn header_field<T>(v: Option<T>, offset: u64, size: u64, len: u64) -> Result<T> {
    v.ok_or(Error::Truncated {
        what: "ELF header",
        offset,
        expected: size,
        actual: len,
    })
}

/// Read the ELF header and program headers.
fn headers(bytes: &[u8]) -> Result<(Arch, u16, Vec<Phdr>)> {
    let len = bytes.len() as u64;
    if bytes.get(..4) != Some(b"\x7fELF") {
        return Err(Error::BadMagic {
            magic: bytes.iter().take(4).copied().collect(),
        });
    }
    if len < 64 {
        return Err(Error::Truncated {
            what: "ELF header",
            offset: 0,
            expected: 64,
            actual: len,
        });
    }
    match bytes.get(4) {
        Some(2) => {}
        Some(1) => {
            return Err(Error::Unsupported(
                "32-bit ELF core (ELFCLASS32); talos reads 64-bit cores".into(),
            ));
        }
        other => {
            return Err(Error::Malformed {
                what: "ELF header",
                detail: format!("EI_CLASS is {other:?}, expected 2 (64-bit)"),
            });
        }
    }
    if bytes.get(5) != Some(&1) {
        return Err(Error::Unsupported(
            "big-endian core; talos reads little-endian cores".into(),
        ));
    }
    let e_type = header_field(u16_at(bytes, 16), 16, 2, len)?;
    if e_type != ET_CORE {
        let name = match e_type {
            0 => "ET_NONE",
            1 => "ET_REL",
            2 => "ET_EXEC",
            3 => "ET_DYN",
            _ => "unknown",
        };
        return Err(Error::NotCore { e_type, name });
    }
    let machine = header_field(u16_at(bytes, 18), 18, 2, len)?;
    let arch = arch_of(machine)?;
    let phoff = header_field(u64_at(bytes, 32), 32, 8, len)?;
    let shoff = header_field(u64_at(bytes, 40), 40, 8, len)?;
    let phentsize = u64::from(header_field(u16_at(bytes, 54), 54, 2, len)?);
    let mut phnum = u64::from(header_field(u16_at(bytes, 56), 56, 2, len)?);
    let shnum = header_field(u16_at(bytes, 60), 60, 2, len)?;
    if phnum == 0xffff {
        // PN_XNUM: the real count is in sh_info of section header 0.
        let sh_info = usize::try_from(shoff)
            .ok()
            .and_then(|o| o.checked_add(44))
            .and_then(|o| u32_at(bytes, o))
            .ok_or(Error::Truncated {
                what: "section header 0 (PN_XNUM program header count)",
                offset: shoff,
                expected: 64,
                actual: len,
            })?;
        phnum = u64::from(sh_info);
    }
    if phnum == 0 {
        return Err(Error::Malformed {
            what: "ELF core",
            detail: "no program headers".into(),
        });
    }
    if phentsize < 56 {
        return Err(Error::Malformed {
            what: "program header table",
            detail: format!("entry size {phentsize}, expected at least 56"),
        });
    }
    if phnum > limits::MAX_PHDRS {
        return Err(Error::LimitExceeded {
            what: "program headers",
            count: phnum,
            limit: limits::MAX_PHDRS,
        });
    }
    let table = phentsize.saturating_mul(phnum);
    if phoff.checked_add(table).is_none_or(|e| e > len) {
        return Err(Error::Truncated {
            what: "program header table",
            offset: phoff,
            expected: table,
            actual: len,
        });
    }
    let start = usize::try_from(phoff).ok();
    let table_bytes = start
        .and_then(|s| Some((s, s.checked_add(usize::try_from(table).ok()?)?)))
        .and_then(|(s, e)| bytes.get(s..e))
        .ok_or(Error::Truncated {
            what: "program header table",
            offset: phoff,
            expected: table,
            actual: len,
        })?;
    let out = program_headers(table_bytes, phentsize, phnum).map_err(
        |PhdrOutOfBounds { index, .. }| Error::Truncated {
            what: "program header",
            offset: phoff.saturating_add(index.saturating_mul(phentsize)),
            expected: phentsize,
            actual: len,
        },
    )?;
    Ok((arch, shnum, out))
}

struct NoteFacts {
    threads: Vec<Thread>,
    unread: Vec<UnreadThread>,
    /// Offsets of `NT_FPREGSET` notes: one per thread in kernel and gdb
    /// cores, so more of them than `NT_PRSTATUS` notes means a thread's
    /// general registers are missing.
    fpregsets: Vec<u64>,
    auxv: Option<Vec<(u64, u64)>>,
    files: Option<Vec<FileMapping>>,
    process: Option<ProcessInfo>,
    signal: Option<i32>,
    gdb: bool,
    talos: bool,
}

fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or(bytes)).into_owned()
}

/// Parse `NT_PRSTATUS`.
fn prstatus(desc: &[u8], arch: Arch) -> std::result::Result<Thread, String> {
    let n = prstatus_reg_count(arch);
    let need = PRSTATUS_REGS + n * 8;
    if desc.len() < need {
        return Err(format!(
            "NT_PRSTATUS of {} bytes, expected at least {need} for {}",
            desc.len(),
            arch.name()
        ));
    }
    let short = |what: &str| format!("NT_PRSTATUS of {} bytes has no {what}", desc.len());
    let tid = u32_at(desc, PRSTATUS_PID).ok_or_else(|| short("pr_pid"))?;
    let signal = u16_at(desc, PRSTATUS_CURSIG).ok_or_else(|| short("pr_cursig"))?;
    let words = (0..n)
        .map(|i| u64_at(desc, PRSTATUS_REGS + i * 8).ok_or_else(|| short("register word")))
        .collect::<std::result::Result<_, _>>()?;
    Ok(Thread {
        tid,
        signal,
        regs: Registers { arch, words },
    })
}

/// Parse `NT_PRPSINFO` (64-bit layout, 136 bytes).
fn prpsinfo(desc: &[u8]) -> std::result::Result<ProcessInfo, String> {
    if desc.len() < 136 {
        return Err(format!("NT_PRPSINFO of {} bytes, expected 136", desc.len()));
    }
    let field =
        |off: usize| u32_at(desc, off).ok_or_else(|| format!("NT_PRPSINFO has no field at {off}"));
    let text = |r: std::ops::Range<usize>| {
        desc.get(r.clone())
            .map(cstr)
            .ok_or_else(|| format!("NT_PRPSINFO has no bytes {}..{}", r.start, r.end))
    };
    Ok(ProcessInfo {
        uid: field(16)?,
        gid: field(20)?,
        pid: field(24)?,
        ppid: field(28)?,
        name: text(40..56)?,
        args: text(56..136)?.trim_end().to_string(),
    })
}

/// Parse `NT_AUXV` (pairs of u64 up to `AT_NULL`).
fn auxv(desc: &[u8]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for pair in desc.chunks_exact(16) {
        // `chunks_exact(16)` gives 16 bytes: both words are there.
        let (Some(k), Some(v)) = (u64_at(pair, 0), u64_at(pair, 8)) else {
            break;
        };
        if k == 0 {
            break;
        }
        out.push((k, v));
    }
    out
}

/// Parse `NT_FILE`: `count, page_size, count × (start, end, file_ofs)`,
/// then `count` NUL-terminated paths. Offsets are in `page_size` units.
pub fn nt_file(desc: &[u8]) -> std::result::Result<Vec<FileMapping>, String> {
    let count = u64_at(desc, 0).ok_or("NT_FILE shorter than its 16-byte header")?;
    let page_size = u64_at(desc, 8).ok_or("NT_FILE shorter than its 16-byte header")?;
    let table = count
        .checked_mul(24)
        .and_then(|t| t.checked_add(16))
        .filter(|&t| t <= desc.len() as u64)
        .ok_or_else(|| {
            format!(
                "NT_FILE declares {count} mappings, more than its {} bytes hold",
                desc.len()
            )
        })?;
    if page_size == 0 && count > 0 {
        return Err("NT_FILE page size is 0".into());
    }
    let table = usize::try_from(table).map_err(|_| "NT_FILE too large")?;
    let count = usize::try_from(count).map_err(|_| "NT_FILE too large")?;
    let mut names = desc
        .get(table..)
        .ok_or("NT_FILE path strings start past its end")?
        .split(|&b| b == 0);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let at = 16 + i * 24;
        let entry = |o: usize| {
            u64_at(desc, at + o).ok_or_else(|| format!("NT_FILE mapping {i} is cut short"))
        };
        let start = entry(0)?;
        let end = entry(8)?;
        let ofs = entry(16)?;
        let path = names
            .next()
            .ok_or_else(|| format!("NT_FILE has {count} mappings but only {i} paths"))?;
        let offset = ofs.checked_mul(page_size).ok_or_else(|| {
            format!("NT_FILE mapping {i}: offset {ofs:#x} × page size {page_size} overflows")
        })?;
        if end < start {
            return Err(format!(
                "NT_FILE mapping {i}: end {end:#x} below start {start:#x}"
            ));
        }
        out.push(FileMapping {
            start,
            end,
            offset,
            path: String::from_utf8_lossy(path).into_owned(),
        });
    }
    Ok(out)
}

fn read_notes(bytes: &[u8], phdrs: &[Phdr], arch: Arch, anomalies: &mut Vec<Anomaly>) -> NoteFacts {
    let mut f = NoteFacts {
        threads: Vec::new(),
        unread: Vec::new(),
        fpregsets: Vec::new(),
        auxv: None,
        files: None,
        process: None,
        signal: None,
        gdb: false,
        talos: false,
    };
    let len = bytes.len() as u64;
    for ph in phdrs.iter().filter(|p| p.p_type == PT_NOTE) {
        let end = ph.offset.saturating_add(ph.filesz);
        let avail_end = end.min(len);
        if end > len {
            anomalies.push(Anomaly {
                code: "truncated-notes",
                message: format!(
                    "PT_NOTE at offset {:#x} size {:#x} runs past the end of the {len}-byte file; read what is there",
                    ph.offset, ph.filesz
                ),
            });
        }
        let data = usize::try_from(ph.offset)
            .ok()
            .zip(usize::try_from(avail_end).ok())
            .and_then(|(a, b)| bytes.get(a..b))
            .unwrap_or(&[]);
        let mut bad_notes = Vec::new();
        for note in notes(data, ph.offset, |m| bad_notes.push(m)) {
            match (note.name, note.n_type) {
                (b"CORE", NT_PRSTATUS) => match prstatus(note.desc, arch) {
                    Ok(t) if f.threads.len() < limits::MAX_THREADS => f.threads.push(t),
                    Ok(t) => f.unread.push(UnreadThread {
                        tid: Some(t.tid),
                        why: UnreadWhy::Cap,
                        what: format!(
                            "thread {} (NT_PRSTATUS at offset {:#x}) is past the {} threads talos reads",
                            t.tid,
                            note.offset,
                            limits::MAX_THREADS
                        ),
                    }),
                    Err(m) => {
                        let tid = u32_at(note.desc, PRSTATUS_PID);
                        f.unread.push(UnreadThread {
                            tid,
                            why: UnreadWhy::Malformed,
                            what: format!(
                                "{}: NT_PRSTATUS at offset {:#x} is malformed ({m})",
                                tid.map_or_else(|| "a thread".to_string(), |t| format!("thread {t}")),
                                note.offset
                            ),
                        });
                        anomalies.push(Anomaly {
                            code: "malformed-note",
                            message: format!("offset {:#x}: {m}", note.offset),
                        });
                    }
                },
                (b"CORE", NT_FPREGSET) => f.fpregsets.push(note.offset),
                (b"CORE", NT_PRPSINFO) => match prpsinfo(note.desc) {
                    Ok(p) if f.process.is_none() => f.process = Some(p),
                    Ok(_) => anomalies.push(Anomaly {
                        code: "duplicate-note",
                        message: format!("second NT_PRPSINFO at offset {:#x} ignored", note.offset),
                    }),
                    Err(m) => anomalies.push(Anomaly {
                        code: "malformed-note",
                        message: format!("offset {:#x}: {m}", note.offset),
                    }),
                },
                (b"CORE", NT_AUXV) => {
                    if f.auxv.is_none() {
                        f.auxv = Some(auxv(note.desc));
                    } else {
                        anomalies.push(Anomaly {
                            code: "duplicate-note",
                            message: format!("second NT_AUXV at offset {:#x} ignored", note.offset),
                        });
                    }
                }
                (b"CORE", NT_FILE) => {
                    if f.files.is_some() {
                        anomalies.push(Anomaly {
                            code: "duplicate-note",
                            message: format!("second NT_FILE at offset {:#x} ignored", note.offset),
                        });
                    } else {
                        match nt_file(note.desc) {
                            Ok(v) => f.files = Some(v),
                            Err(m) => anomalies.push(Anomaly {
                                code: "malformed-note",
                                message: format!("offset {:#x}: {m}", note.offset),
                            }),
                        }
                    }
                }
                (b"CORE", NT_SIGINFO) if f.signal.is_none() => {
                    f.signal = u32_at(note.desc, 0).map(|s| s as i32);
                }
                (b"GDB", NT_GDB_TDESC) => f.gdb = true,
                (b"TALOS", NT_TALOS_SNAPSHOT) => f.talos = true,
                _ => {}
            }
        }
        for m in bad_notes {
            anomalies.push(Anomaly {
                code: "malformed-note",
                message: m,
            });
        }
    }
    f
}

/// Read an ELF core from its bytes (borrowed, normally a memory mapping).
///
/// # Errors
/// When the input is not a 64-bit little-endian ELF core for a supported
/// machine, or its program header table is unreadable.
pub fn parse(bytes: &[u8]) -> Result<Dump<'_>> {
    let (arch, shnum, phdrs) = headers(bytes)?;
    let len = bytes.len() as u64;
    let mut anomalies = Vec::new();
    let facts = read_notes(bytes, &phdrs, arch, &mut anomalies);
    if !phdrs.iter().any(|p| p.p_type == PT_NOTE) {
        anomalies.push(Anomaly {
            code: "no-notes",
            message: "the core has no PT_NOTE segment: no threads, file mappings or auxv".into(),
        });
    }
    let source = if facts.talos {
        Source::Snapshot
    } else if facts.gdb || (shnum > 0 && phdrs.iter().any(|p| p.align == 1)) {
        Source::Gdb
    } else {
        Source::Kernel
    };
    let mut dump = Dump::new(source, arch);
    let mut regions: Vec<Region<'_>> = Vec::new();
    let mut truncated = 0u64;
    // Segments the writer left out on purpose (`p_filesz` 0), by address.
    let mut omitted: Vec<u64> = Vec::new();
    for ph in phdrs.iter().filter(|p| p.p_type == PT_LOAD) {
        if ph.memsz == 0 {
            continue;
        }
        let Some(end) = ph.vaddr.checked_add(ph.memsz) else {
            anomalies.push(Anomaly {
                code: "bad-segment",
                message: format!(
                    "PT_LOAD at {:#x} size {:#x} wraps the address space; ignored",
                    ph.vaddr, ph.memsz
                ),
            });
            continue;
        };
        let mut filesz = ph.filesz;
        if filesz > ph.memsz {
            anomalies.push(Anomaly {
                code: "bad-segment",
                message: format!(
                    "PT_LOAD at {:#x}: file size {:#x} exceeds memory size {:#x}; clamped",
                    ph.vaddr, ph.filesz, ph.memsz
                ),
            });
            filesz = ph.memsz;
        }
        if filesz == 0 {
            omitted.push(ph.vaddr);
        }
        let avail = len.saturating_sub(ph.offset).min(filesz);
        if avail < filesz {
            truncated += 1;
            if truncated <= 8 {
                anomalies.push(Anomaly {
                    code: "truncated-segment",
                    message: format!(
                        "PT_LOAD at {:#x}: {:#x} bytes at file offset {:#x}, but the file ends at {len:#x}; kept {avail:#x} bytes",
                        ph.vaddr, filesz, ph.offset
                    ),
                });
            }
        }
        let data: &[u8] = if avail == 0 {
            &[]
        } else {
            usize::try_from(ph.offset)
                .ok()
                .zip(usize::try_from(ph.offset + avail).ok())
                .and_then(|(a, b)| bytes.get(a..b))
                .unwrap_or(&[])
        };
        regions.push(Region {
            start: ph.vaddr,
            end,
            perms: perms_of(ph.flags),
            kind: RegionKind::Anonymous,
            bytes: Cow::Borrowed(data),
        });
    }
    if truncated > 8 {
        anomalies.push(Anomaly {
            code: "truncated-segment",
            message: format!("{truncated} segments in all are cut short by the end of the file"),
        });
    }
    regions.sort_by_key(|r| (r.start, r.end));
    let mut kept: Vec<Region<'_>> = Vec::with_capacity(regions.len());
    for r in regions {
        if let Some(last) = kept.last()
            && r.start < last.end
        {
            anomalies.push(Anomaly {
                code: "overlapping-segments",
                message: format!(
                    "PT_LOAD {:#x}-{:#x} overlaps {:#x}-{:#x}; the later one is ignored",
                    r.start, r.end, last.start, last.end
                ),
            });
            continue;
        }
        kept.push(r);
    }
    dump.regions = kept;
    // Each thread has one NT_FPREGSET after its NT_PRSTATUS (kernel and
    // gdb cores): register sets beyond the NT_PRSTATUS notes belong to
    // threads whose general registers were removed or never written.
    let listed = facts.threads.len() + facts.unread.len();
    let mut unread = facts.unread;
    let orphans = facts.fpregsets.len().saturating_sub(listed);
    for off in facts.fpregsets.iter().skip(listed).take(64) {
        unread.push(UnreadThread {
            tid: None,
            why: UnreadWhy::NoPrstatus,
            what: format!(
                "a thread has a register-set note (NT_FPREGSET at offset {off:#x}) but no NT_PRSTATUS: {} NT_FPREGSET and {listed} NT_PRSTATUS notes",
                facts.fpregsets.len()
            ),
        });
        anomalies.push(Anomaly {
            code: "missing-prstatus",
            message: format!("NT_FPREGSET at offset {off:#x} belongs to no NT_PRSTATUS"),
        });
    }
    if orphans > 64 {
        unread.push(UnreadThread {
            tid: None,
            why: UnreadWhy::NoPrstatus,
            what: format!(
                "{} more threads have a register-set note but no NT_PRSTATUS",
                orphans - 64
            ),
        });
    }
    unread.truncate(limits::MAX_ANOMALIES);
    dump.threads = facts.threads;
    dump.unread_threads = unread;
    // NT_AUXV and NT_FILE are optional notes (`talos snapshot` itself
    // leaves them out when empty): a core without them has no auxv and no
    // file mapping, which is what the empty lists say.
    dump.auxv = facts.auxv.unwrap_or_default();
    dump.process = facts.process;
    dump.signal = facts.signal;
    let mut files = facts.files.unwrap_or_default();
    files.sort();
    files.dedup();
    dump.file_mappings = files;
    if let Some(ps) = dump.auxv_get(crate::dump::at::PAGESZ) {
        if ps.is_power_of_two() && (512..=(1 << 30)).contains(&ps) {
            dump.page_size = ps;
        } else {
            anomalies.push(Anomaly {
                code: "bad-auxv",
                message: format!("AT_PAGESZ is {ps}; using 4096"),
            });
        }
    }
    if anomalies.len() > limits::MAX_ANOMALIES {
        let n = anomalies.len() - limits::MAX_ANOMALIES;
        anomalies.truncate(limits::MAX_ANOMALIES);
        anomalies.push(Anomaly {
            code: "more-anomalies",
            message: format!("{n} more anomalies not listed"),
        });
    }
    dump.anomalies = anomalies;
    dump.classify_regions();
    if dump.source == Source::Kernel {
        omitted.sort_unstable();
        fill_unwritten_anonymous(&mut dump, &omitted);
    }
    Ok(dump)
}

/// Most bytes of never-written anonymous memory a kernel core's reading
/// fills with zeros ([`fill_unwritten_anonymous`]).
pub const MAX_ZERO_FILL: u64 = 1 << 30;

/// The kernel writes a private anonymous mapping whole when it has ever
/// been written to (it has an `anon_vma`) and the filter includes
/// anonymous memory (bit 0, on by default), and leaves it out (`p_filesz`
/// 0) otherwise (`vma_dump_size` in `fs/coredump.c`). So when the core
/// holds the `[stack]` (always written), the filter was on, and every
/// anonymous mapping it left out was never written: all zero, which is what
/// gdb, a live read and a CRIU image hold for it (thread-stack guard pages,
/// untouched reservations). Those mappings get zero bytes here, so the
/// state digest of a kernel core equals theirs. Capped at
/// [`MAX_ZERO_FILL`] in all; past it they stay missing, with an anomaly.
fn fill_unwritten_anonymous(dump: &mut Dump<'_>, omitted: &[u64]) {
    let filter_on = dump
        .regions
        .iter()
        .any(|r| r.kind == RegionKind::Stack && !r.bytes.is_empty());
    if !filter_on {
        return;
    }
    let mut budget = MAX_ZERO_FILL;
    let mut skipped = 0u64;
    for r in &mut dump.regions {
        if r.kind != RegionKind::Anonymous
            || !r.bytes.is_empty()
            || omitted.binary_search(&r.start).is_err()
        {
            continue;
        }
        match usize::try_from(r.len()) {
            Ok(n) if r.len() <= budget => {
                budget -= r.len();
                r.bytes = Cow::Owned(vec![0u8; n]);
            }
            _ => skipped = skipped.saturating_add(r.len()),
        }
    }
    if skipped > 0 {
        dump.anomaly(
            "zero-fill-limit",
            format!(
                "{skipped} bytes of never-written anonymous memory left as missing: more than {MAX_ZERO_FILL} bytes to fill with zeros"
            ),
        );
    }
}
