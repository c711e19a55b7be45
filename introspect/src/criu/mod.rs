//! CRIU image directories as a dump source.
//!
//! `criu dump -D DIR` writes a process tree as an image directory:
//! `inventory.img`, `pstree.img` (the processes and their threads),
//! `core-TID.img` (each thread's registers and rseq area), `mm-PID.img`
//! (the VMAs, the saved auxiliary vector), `pagemap-PID.img` (runs of
//! pages) and the raw `pages-N.img` they point into, `files.img` (the
//! files mappings name), and more. [`read`] parses the images talos needs
//! (borrowing the page bytes); [`ImageSet::materialize`] maps one process
//! onto the region model every other input uses ([`Dump`]).
//!
//! What CRIU stores decides what talos can say: pages of private file
//! mappings that were never written (most code) are **not** in the image,
//! because `criu restore` maps them from the file again. So the region
//! bytes of a file mapping are the file's bytes (read on this host, and
//! only when the file is the one the image names: same size and build-id
//! as `files.img` recorded) with the pages the image holds laid over them;
//! anonymous memory the image does not hold is zero (never touched, or the
//! zero page). [`Provenance`] counts, per region, which pages came from
//! where, and every stored page inside an executable file mapping (a COW-ed
//! code page: CRIU's own parasite leaves one) is listed so the code check
//! compares it with the file.
//!
//! Bounded like the other readers: every length, count and offset is
//! checked against the input; malformed framing or contradictory page
//! runs are errors; oddities talos can read around are [`Anomaly`]s.

pub mod image;
mod materialize;
pub mod proto;

use std::collections::BTreeMap;

use crate::dump::{Anomaly, Arch, Registers};
use crate::error::{Error, Result};
use crate::region::Perms;
use image::Image;

pub use materialize::{Materialized, Provenance, RegionPages};

/// Most processes read from one image directory.
pub const MAX_PROCESSES: usize = 1 << 16;
/// Most threads of one process.
pub const MAX_THREADS: usize = 1 << 16;
/// Most VMAs of one process (the kernel's default `vm.max_map_count` is
/// 65530).
pub const MAX_VMAS: usize = 1 << 20;
/// Most files an image directory may hold (checked by callers that list
/// directories; see [`is_image_name`]).
pub const MAX_FILES: usize = 1 << 16;

/// `PROT_READ`, `PROT_WRITE`, `PROT_EXEC`.
const PROT_READ: u32 = 1;
const PROT_WRITE: u32 = 2;
const PROT_EXEC: u32 = 4;

/// `vma_entry.status` bits (`criu/include/image.h`).
pub mod status {
    /// A regular VMA.
    pub const REGULAR: u32 = 1;
    /// The main thread's stack.
    pub const STACK: u32 = 1 << 1;
    /// `[vsyscall]`.
    pub const VSYSCALL: u32 = 1 << 2;
    /// `[vdso]`.
    pub const VDSO: u32 = 1 << 3;
    /// `[heap]`.
    pub const HEAP: u32 = 1 << 5;
    /// A private file mapping.
    pub const FILE_PRIVATE: u32 = 1 << 6;
    /// A shared file mapping.
    pub const FILE_SHARED: u32 = 1 << 7;
    /// Shared anonymous memory (its pages are in shmem images).
    pub const ANON_SHARED: u32 = 1 << 8;
    /// Private anonymous memory.
    pub const ANON_PRIVATE: u32 = 1 << 9;
    /// System V shared memory.
    pub const SYSVIPC: u32 = 1 << 10;
    /// A packet socket's ring.
    pub const SOCKET: u32 = 1 << 11;
    /// `[vvar]` (and `[vvar_vclock]`, which CRIU keeps as one VMA).
    pub const VVAR: u32 = 1 << 12;
    /// An AIO ring.
    pub const AIORING: u32 = 1 << 13;
    /// A memfd mapping (its pages are in memfd images).
    pub const MEMFD: u32 = 1 << 14;
    /// A shadow stack.
    pub const SHSTK: u32 = 1 << 15;
    /// A guard region (`MADV_GUARD_INSTALL`).
    pub const GUARD: u32 = 1 << 16;
    /// `[uprobes]`.
    pub const UPROBES: u32 = 1 << 17;
    /// Special mappings whose bytes are not in the page images.
    pub const NOT_IN_PAGES: u32 =
        ANON_SHARED | SYSVIPC | SOCKET | AIORING | MEMFD | SHSTK | UPROBES;
}

/// `pagemap_entry.flags` bits.
pub mod pe {
    /// The pages are in the parent (pre-dump) image.
    pub const PARENT: u32 = 1;
    /// The pages may be restored lazily.
    pub const LAZY: u32 = 1 << 1;
    /// The pages are in `pages-N.img`.
    pub const PRESENT: u32 = 1 << 2;
}

/// `core_entry.march` values.
const MARCH_X86_64: i32 = 1;
const MARCH_AARCH64: i32 = 3;
const MARCH_RISCV64: i32 = 8;

/// A regular file `files.img` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegFile {
    /// Its id (what `vma_entry.shmid` and `mm_entry.exe_file_id` point at).
    pub id: u32,
    /// The path at dump time.
    pub path: String,
    /// Its size at dump time, when recorded.
    pub size: Option<u64>,
    /// Its GNU build-id at dump time, when CRIU could read one.
    pub build_id: Option<Vec<u8>>,
}

/// One VMA of `mm-PID.img`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vma {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// File offset of `start` (file mappings).
    pub pgoff: u64,
    /// Protections.
    pub perms: Perms,
    /// `mmap` flags.
    pub flags: u32,
    /// CRIU's status bits ([`status`]).
    pub status: u32,
    /// The `files.img` id of a file mapping.
    pub file: Option<u32>,
}

impl Vma {
    /// Whether CRIU marks it with every bit of `bits`.
    #[must_use]
    pub fn is(&self, bits: u32) -> bool {
        self.status & bits == bits
    }
}

/// A run of pages `pagemap-PID.img` says `pages-N.img` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRun {
    /// Address of the first page.
    pub vaddr: u64,
    /// Number of pages.
    pub pages: u64,
    /// Byte offset of the first page in the pages image.
    pub offset: u64,
}

impl PageRun {
    /// One past the last address.
    #[must_use]
    pub fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.pages.saturating_mul(PAGE))
    }
}

/// Page size of every image talos reads (CRIU writes 4 KiB pages on x86-64
/// and on the AArch64 and RISC-V configurations talos supports).
pub const PAGE: u64 = 4096;

/// One thread, from its `core-TID.img`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadImage {
    /// Thread id.
    pub tid: u32,
    /// Its registers (`NT_PRSTATUS` order).
    pub regs: Registers,
    /// Address of its `struct rseq`, when it registered one.
    pub rseq: Option<u64>,
}

/// One process of the tree.
#[derive(Debug, Clone)]
pub struct Process<'a> {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Process group.
    pub pgid: u32,
    /// Session.
    pub sid: u32,
    /// Command name.
    pub comm: String,
    /// Architecture of its registers.
    pub arch: Arch,
    /// Its threads, the main thread first.
    pub threads: Vec<ThreadImage>,
    /// The saved auxiliary vector, without the terminating `AT_NULL`.
    pub auxv: Vec<(u64, u64)>,
    /// `files.img` id of the executable.
    pub exe_file: Option<u32>,
    /// VMAs, sorted, not overlapping.
    pub vmas: Vec<Vma>,
    /// Stored page runs, sorted by address, not overlapping.
    pub runs: Vec<PageRun>,
    /// Name of the pages image.
    pub pages_name: String,
    /// The pages image.
    pub pages: &'a [u8],
}

/// An image directory, parsed.
#[derive(Debug, Clone)]
pub struct ImageSet<'a> {
    /// `inventory_entry.img_version`.
    pub image_version: Option<u32>,
    /// Processes in `pstree.img` order (the root first).
    pub processes: Vec<Process<'a>>,
    /// Regular files of `files.img`, by id.
    pub files: BTreeMap<u32, RegFile>,
    /// Oddities met while reading.
    pub anomalies: Vec<Anomaly>,
    /// Facts worth reporting (processes left out, ...).
    pub notes: Vec<String>,
}

/// Whether `name` is a file CRIU writes into an image directory that talos
/// measures: `*.img`, lowercase letters, digits, `-`, `_` and `.` only.
#[must_use]
pub fn is_image_name(name: &str) -> bool {
    name.len() <= 255
        && name.ends_with(".img")
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

fn perms_of(prot: u32) -> Perms {
    Perms {
        read: prot & PROT_READ != 0,
        write: prot & PROT_WRITE != 0,
        execute: prot & PROT_EXEC != 0,
    }
}

fn missing(img: Image<'_>, what: &str) -> Error {
    Error::Malformed {
        what: "CRIU image",
        detail: format!("{}: {what} is missing", img.name),
    }
}

/// Look an image up by name.
fn get<'a>(files: &'a BTreeMap<String, &'a [u8]>, name: &str) -> Result<Image<'a>> {
    match files.get_key_value(name) {
        Some((k, b)) => Ok(Image { name: k, bytes: b }),
        None => Err(Error::Malformed {
            what: "CRIU image directory",
            detail: format!("{name} is missing"),
        }),
    }
}

/// CRIU's task states (`core_entry.tc.task_state`) talos tells apart.
const TASK_DEAD: u32 = 2;

/// Parse the image directory whose files are `files` (file name to bytes;
/// the names are those inside the directory, the bytes usually mapped).
///
/// Reads `inventory.img`, `pstree.img`, `files.img` and, for each process,
/// `core-TID.img` of every thread, `mm-PID.img`, `pagemap-PID.img` and the
/// `pages-N.img` it names. Page bytes are borrowed.
///
/// # Errors
/// [`Error::Malformed`] for a missing image, bad magic or framing, a
/// protobuf entry that does not decode, a required field that is missing,
/// unaligned or overlapping VMAs, overlapping page runs, or page runs past
/// the end of the pages image; [`Error::Unsupported`] for incremental
/// (pre-dump) or lazy-pages images, compat (32-bit) tasks and architectures
/// talos has no register layout for; [`Error::LimitExceeded`] past the
/// limits of this module.
pub fn read<'a>(files: &'a BTreeMap<String, &'a [u8]>) -> Result<ImageSet<'a>> {
    let inv_img = get(files, "inventory.img")?;
    let inv: proto::InventoryEntry = image::decode_one(inv_img, image::INVENTORY_MAGIC)?;
    let mut set = ImageSet {
        image_version: inv.img_version,
        processes: Vec::new(),
        files: BTreeMap::new(),
        anomalies: Vec::new(),
        notes: Vec::new(),
    };
    match get(files, "files.img") {
        Ok(img) => {
            for f in image::decode_all::<proto::FileEntry>(img, image::FILES_MAGIC)? {
                // fd_types REG = 1: the only kind a VMA maps.
                if f.r#type != Some(1) {
                    continue;
                }
                let Some(reg) = f.reg else {
                    return Err(missing(img, "reg_file_entry of a REG file_entry"));
                };
                let id = reg.id.or(f.id).ok_or_else(|| missing(img, "file id"))?;
                let path = reg.name.ok_or_else(|| missing(img, "file name"))?;
                let build_id = (!reg.build_id.is_empty())
                    .then(|| reg.build_id.iter().flat_map(|w| w.to_le_bytes()).collect());
                set.files.insert(
                    id,
                    RegFile {
                        id,
                        path,
                        size: reg.size,
                        build_id,
                    },
                );
            }
        }
        Err(_) => set.anomalies.push(Anomaly {
            code: "criu-no-files",
            message: "files.img is missing: file mappings have no paths".into(),
        }),
    }
    let pst = get(files, "pstree.img")?;
    let tree: Vec<proto::PstreeEntry> = image::decode_all(pst, image::PSTREE_MAGIC)?;
    if tree.is_empty() {
        return Err(missing(pst, "the process list"));
    }
    if tree.len() > MAX_PROCESSES {
        return Err(Error::LimitExceeded {
            what: "processes in pstree.img",
            count: tree.len() as u64,
            limit: MAX_PROCESSES as u64,
        });
    }
    for e in tree {
        let pid = e.pid.ok_or_else(|| missing(pst, "pid"))?;
        let mut threads = e.threads;
        if threads.len() > MAX_THREADS {
            return Err(Error::LimitExceeded {
                what: "threads of one process in pstree.img",
                count: threads.len() as u64,
                limit: MAX_THREADS as u64,
            });
        }
        // The main thread first, whatever order the image lists them in.
        threads.retain(|&t| t != pid);
        threads.insert(0, pid);
        // `required` in pstree.proto: CRIU always writes them, so an
        // entry without one is malformed rather than a process whose
        // parent, group or session is 0.
        let ids = (
            pid,
            e.ppid
                .ok_or_else(|| missing(pst, &format!("ppid of process {pid}")))?,
            e.pgid
                .ok_or_else(|| missing(pst, &format!("pgid of process {pid}")))?,
            e.sid
                .ok_or_else(|| missing(pst, &format!("sid of process {pid}")))?,
        );
        if let Some(p) = read_process(files, ids, &threads, &mut set)? {
            set.processes.push(p);
        }
    }
    if set.processes.is_empty() {
        return Err(Error::Malformed {
            what: "CRIU image directory",
            detail: "no process with memory in pstree.img".into(),
        });
    }
    Ok(set)
}

/// Registers of a thread from its core entry.
fn registers(img: Image<'_>, core: &proto::CoreEntry) -> Result<Registers> {
    match core.mtype {
        Some(MARCH_X86_64) => {
            let g = core
                .thread_info
                .as_ref()
                .and_then(|t| t.gpregs.as_ref())
                .ok_or_else(|| missing(img, "thread_info.gpregs"))?;
            if g.mode == Some(2) {
                return Err(Error::Unsupported(format!(
                    "{}: a compat (32-bit) task",
                    img.name
                )));
            }
            let words = g
                .words()
                .ok_or_else(|| missing(img, "a general-purpose register"))?;
            Ok(Registers {
                arch: Arch::X86_64,
                words,
            })
        }
        Some(MARCH_AARCH64) => {
            let g = core
                .ti_aarch64
                .as_ref()
                .and_then(|t| t.gpregs.as_ref())
                .ok_or_else(|| missing(img, "ti_aarch64.gpregs"))?;
            if g.regs.len() != 31 {
                return Err(Error::Malformed {
                    what: "CRIU image",
                    detail: format!(
                        "{}: {} AArch64 x registers, expected 31",
                        img.name,
                        g.regs.len()
                    ),
                });
            }
            let mut words = g.regs.clone();
            for v in [g.sp, g.pc, g.pstate] {
                words.push(v.ok_or_else(|| missing(img, "sp, pc or pstate"))?);
            }
            Ok(Registers {
                arch: Arch::Aarch64,
                words,
            })
        }
        Some(MARCH_RISCV64) => {
            let g = core
                .ti_riscv64
                .as_ref()
                .and_then(|t| t.gpregs.as_deref())
                .ok_or_else(|| missing(img, "ti_riscv64.gpregs"))?;
            let words = proto::riscv64_words(g).ok_or_else(|| missing(img, "a RISC-V register"))?;
            Ok(Registers {
                arch: Arch::Riscv64,
                words,
            })
        }
        Some(m) => Err(Error::Unsupported(format!(
            "{}: CRIU machine type {m} (talos reads x86-64, AArch64 and RISC-V 64 images)",
            img.name
        ))),
        None => Err(missing(img, "core_entry.mtype")),
    }
}

/// Read one process; `None` for a zombie (no memory).
fn read_process<'a>(
    files: &'a BTreeMap<String, &'a [u8]>,
    (pid, ppid, pgid, sid): (u32, u32, u32, u32),
    tids: &[u32],
    set: &mut ImageSet<'a>,
) -> Result<Option<Process<'a>>> {
    let mut threads = Vec::with_capacity(tids.len());
    let mut comm = String::new();
    let mut arch = None;
    for (i, &tid) in tids.iter().enumerate() {
        let img = get(files, &format!("core-{tid}.img"))?;
        let core: proto::CoreEntry = image::decode_one(img, image::CORE_MAGIC)?;
        if i == 0
            && let Some(tc) = &core.tc
        {
            if tc.task_state == Some(TASK_DEAD) {
                set.notes.push(format!(
                    "process {pid} is a zombie in the image: it has no memory to read"
                ));
                return Ok(None);
            }
            // `optional` in core.proto: an image without it names no
            // command, which the report shows as an empty name.
            comm = tc.comm.clone().unwrap_or_default();
        }
        let regs = registers(img, &core)?;
        match arch {
            None => arch = Some(regs.arch),
            Some(a) if a != regs.arch => {
                return Err(Error::Malformed {
                    what: "CRIU image",
                    detail: format!(
                        "{}: thread of another architecture than its process",
                        img.name
                    ),
                });
            }
            Some(_) => {}
        }
        let rseq = core
            .thread_core
            .as_ref()
            .and_then(|t| t.rseq_entry.as_ref())
            // No size (an older CRIU) or size 0: the thread registered no
            // rseq area, as CRIU itself reads it.
            .filter(|r| r.rseq_abi_size.unwrap_or(0) > 0)
            .and_then(|r| r.rseq_abi_pointer)
            .filter(|&p| p != 0);
        threads.push(ThreadImage { tid, regs, rseq });
    }
    let arch = arch.unwrap_or(Arch::X86_64);

    let mm_img = get(files, &format!("mm-{pid}.img"))?;
    let mm: proto::MmEntry = image::decode_one(mm_img, image::MM_MAGIC)?;
    let mut auxv = Vec::new();
    for pair in mm.mm_saved_auxv.chunks_exact(2) {
        if let [k, v] = pair {
            if *k == 0 {
                break;
            }
            auxv.push((*k, *v));
        }
    }
    if mm.vmas.len() > MAX_VMAS {
        return Err(Error::LimitExceeded {
            what: "VMAs in one mm image",
            count: mm.vmas.len() as u64,
            limit: MAX_VMAS as u64,
        });
    }
    let mut vmas: Vec<Vma> = Vec::with_capacity(mm.vmas.len());
    for (i, v) in mm.vmas.iter().enumerate() {
        let (Some(start), Some(end)) = (v.start, v.end) else {
            return Err(missing(mm_img, &format!("start or end of VMA {i}")));
        };
        // `required` in vma.proto, as are pgoff, prot and flags below: a
        // VMA without one is malformed, never an anonymous PROT_NONE one.
        let need = |field: &str| missing(mm_img, &format!("{field} of VMA {i}"));
        let status = v.status.ok_or_else(|| need("status"))?;
        let bad = |what: &str| Error::Malformed {
            what: "CRIU image",
            detail: format!("{}: VMA {i} {start:#x}-{end:#x}: {what}", mm_img.name),
        };
        if end <= start {
            return Err(bad("empty or inverted"));
        }
        if start % PAGE != 0 || end % PAGE != 0 {
            return Err(bad("not page-aligned"));
        }
        if let Some(prev) = vmas.last()
            && start < prev.end
        {
            return Err(bad("overlaps or precedes the VMA before it"));
        }
        let file = if status & (status::FILE_PRIVATE | status::FILE_SHARED | status::MEMFD) != 0 {
            let id = v
                .shmid
                .and_then(|s| u32::try_from(s).ok())
                .ok_or_else(|| bad("file mapping without a file id"))?;
            Some(id)
        } else {
            None
        };
        vmas.push(Vma {
            start,
            end,
            pgoff: v.pgoff.ok_or_else(|| need("pgoff"))?,
            perms: perms_of(v.prot.ok_or_else(|| need("prot"))?),
            flags: v.flags.ok_or_else(|| need("flags"))?,
            status,
            file,
        });
    }

    let pm_img = get(files, &format!("pagemap-{pid}.img"))?;
    let entries = image::entries(pm_img, image::PAGEMAP_MAGIC)?;
    let (head, rest) = entries
        .split_first()
        .ok_or_else(|| missing(pm_img, "pagemap_head"))?;
    let head: proto::PagemapHead = image::decode(pm_img, 0, head)?;
    let pages_id = head
        .pages_id
        .ok_or_else(|| missing(pm_img, "pagemap_head.pages_id"))?;
    let pages_name = format!("pages-{pages_id}.img");
    let pages = get(files, &pages_name)?.bytes;
    let mut runs: Vec<PageRun> = Vec::with_capacity(rest.len());
    let mut offset = 0u64;
    for (i, raw) in rest.iter().enumerate() {
        let e: proto::PagemapEntry = image::decode(pm_img, i + 1, raw)?;
        let vaddr = e
            .vaddr
            .ok_or_else(|| missing(pm_img, &format!("vaddr of entry {}", i + 1)))?;
        // CRIU 4.x: field 5; older images: field 2.
        let count = e
            .nr_pages
            .or(e.compat_nr_pages.map(u64::from))
            .ok_or_else(|| missing(pm_img, &format!("page count of entry {}", i + 1)))?;
        let flags = e.flags.unwrap_or(if e.in_parent == Some(true) {
            pe::PARENT
        } else {
            pe::PRESENT
        });
        let bad = |what: String| Error::Malformed {
            what: "CRIU image",
            detail: format!("{}: entry {} at {vaddr:#x}: {what}", pm_img.name, i + 1),
        };
        if flags & pe::PARENT != 0 || e.in_parent == Some(true) {
            return Err(Error::Unsupported(format!(
                "{}: pages at {vaddr:#x} are in a parent image: incremental (pre-dump) image directories are not supported",
                pm_img.name
            )));
        }
        if flags & pe::PRESENT == 0 {
            return Err(Error::Unsupported(format!(
                "{}: pages at {vaddr:#x} are not in the image (lazy pages): not supported",
                pm_img.name
            )));
        }
        if vaddr % PAGE != 0 {
            return Err(bad("not page-aligned".into()));
        }
        if count == 0 {
            continue;
        }
        let bytes = count
            .checked_mul(PAGE)
            .filter(|b| vaddr.checked_add(*b).is_some())
            .ok_or_else(|| {
                bad(format!(
                    "{count} pages run past the end of the address space"
                ))
            })?;
        let end_off = offset
            .checked_add(bytes)
            .filter(|&e| e <= pages.len() as u64)
            .ok_or_else(|| {
                bad(format!(
                    "{count} pages at offset {offset:#x} run past the end of {pages_name} ({} bytes)",
                    pages.len()
                ))
            })?;
        match runs.last_mut() {
            Some(prev) if vaddr < prev.end() => {
                return Err(bad(format!(
                    "overlaps or precedes the run before it, which ends at {:#x}",
                    prev.end()
                )));
            }
            // CRIU splits runs at its pipe size (1 MiB); one run is simpler
            // to map and lets the region borrow the pages in one slice.
            Some(prev)
                if vaddr == prev.end()
                    && prev.offset.saturating_add(prev.pages * PAGE) == offset =>
            {
                prev.pages += count;
            }
            _ => runs.push(PageRun {
                vaddr,
                pages: count,
                offset,
            }),
        }
        offset = end_off;
    }
    if offset < pages.len() as u64 {
        set.anomalies.push(Anomaly {
            code: "criu-unreferenced-pages",
            message: format!(
                "{pages_name}: {} bytes after the last page {} names",
                pages.len() as u64 - offset,
                pm_img.name
            ),
        });
    }
    // Every stored page must fall in a VMA.
    let mut outside = 0u64;
    for r in &runs {
        let mut a = r.vaddr;
        while a < r.end() {
            let i = vmas.partition_point(|v| v.end <= a);
            match vmas.get(i) {
                Some(v) if v.start <= a => a = v.end.min(r.end()),
                Some(v) => {
                    let to = v.start.min(r.end());
                    outside += (to - a) / PAGE;
                    a = to;
                }
                None => {
                    outside += (r.end() - a) / PAGE;
                    a = r.end();
                }
            }
        }
    }
    if outside > 0 {
        set.anomalies.push(Anomaly {
            code: "criu-pages-outside-vmas",
            message: format!(
                "{}: {outside} stored page(s) of process {pid} lie in no VMA of {}; they are ignored",
                pm_img.name, mm_img.name
            ),
        });
    }
    Ok(Some(Process {
        pid,
        ppid,
        pgid,
        sid,
        comm,
        arch,
        threads,
        auxv,
        exe_file: mm.exe_file_id,
        vmas,
        runs,
        pages_name,
        pages,
    }))
}
