//! One process of an image directory as regions with bytes: what
//! `criu restore` would map, page by page.
//!
//! - pages the image holds come from `pages-N.img` (borrowed in place when
//!   one run covers a whole VMA, which is the common case for large
//!   anonymous memory, so the digest reads the image file directly);
//! - pages of a file mapping the image does not hold come from the file on
//!   this host, but only when it is the file the image names (same size
//!   and build-id as `files.img` recorded; otherwise `criu restore` would
//!   refuse it, and talos holds none of its pages);
//! - anonymous pages the image does not hold are zero (never touched, or
//!   the shared zero page: CRIU skips both);
//! - `[vvar]`, `[vsyscall]` and mappings whose bytes live in other images
//!   (shared anonymous memory, System V shm, memfd, AIO rings) hold none.
//!
//! Regions that need assembling are laid out in one anonymous mapping
//! (`memmap2::MmapMut::map_anon`): the kernel supplies zero pages lazily, so
//! a large, mostly untouched mapping costs only the pages written into it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::{ImageSet, PAGE, PageRun, Process, Vma, status};
use crate::dump::{Anomaly, Arch, Dump, FileMapping, ProcessInfo, Source, Thread, at};
use crate::error::{Error, Result};
use crate::region::{Perms, Region, RegionKind};
use crate::resolve::{FileBytes, Resolved, Resolver};

/// Stored runs at least this long are borrowed from the pages image in
/// place instead of being copied (1 MiB).
const BORROW_MIN: usize = 1 << 20;

/// `MAP_GROWSDOWN`: the kernel's flag of the main thread's stack.
const MAP_GROWSDOWN: u32 = 0x0100;

/// Most bytes assembled for one process (virtual size of the anonymous
/// mapping that holds them; only written pages cost memory). Regions past
/// it hold nothing and are reported.
pub const MAX_ASSEMBLED: u64 = 16 << 30;

/// Where the pages of one region came from, in pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct RegionPages {
    /// Held by the image (`pages-N.img`).
    pub stored: u64,
    /// Read from the mapped file on this host.
    pub from_file: u64,
    /// Anonymous pages the image does not hold: zero.
    pub zero: u64,
    /// Not held at all (file unusable, past the end of the file, or bytes
    /// kept in other images).
    pub missing: u64,
}

/// Page provenance of a materialised process.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Provenance {
    /// Per VMA, in address order (a VMA may be laid out as several
    /// regions: large stored runs are borrowed in place).
    pub regions: Vec<RegionPages>,
    /// Totals.
    pub total: RegionPages,
    /// Addresses of stored pages inside executable file mappings: code
    /// pages that were written (COW-ed) before the dump, which the code
    /// check compares with the file like any other code byte.
    pub stored_code_pages: Vec<u64>,
}

/// A region to assemble: its plan index, the stored slices inside it, and
/// the file (with the file offset of the region's start) under them.
type Copy<'a> = (usize, Vec<(u64, &'a [u8])>, Option<(FileBytes, u64)>);

enum Src<'a> {
    None,
    Image(&'a [u8]),
    Arena { off: usize, len: usize },
}

struct Planned<'a> {
    start: u64,
    end: u64,
    perms: Perms,
    kind: RegionKind,
    src: Src<'a>,
}

impl Planned<'_> {
    /// The whole of VMA `v` as one region whose bytes are not read.
    fn without_bytes(v: &super::Vma, kind: RegionKind) -> Self {
        Planned {
            start: v.start,
            end: v.end,
            perms: v.perms,
            kind,
            src: Src::None,
        }
    }
}

/// One process laid out as regions, ready to become a [`Dump`].
pub struct Materialized<'a> {
    /// The process id.
    pub pid: u32,
    /// Its architecture.
    pub arch: Arch,
    arena: Option<memmap2::MmapMut>,
    regions: Vec<Planned<'a>>,
    threads: Vec<Thread>,
    auxv: Vec<(u64, u64)>,
    file_mappings: Vec<FileMapping>,
    process: ProcessInfo,
    /// Which pages came from where.
    pub provenance: Provenance,
    /// The threads' rseq areas, as the image records them (exact: CRIU
    /// reads them with `PTRACE_GET_RSEQ_CONFIGURATION`).
    pub rseq_areas: Vec<u64>,
    /// Threads with no rseq area in the image.
    pub threads_without_rseq: usize,
    /// Oddities.
    pub anomalies: Vec<Anomaly>,
    /// Facts worth reporting.
    pub notes: Vec<String>,
}

impl std::fmt::Debug for Materialized<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Materialized")
            .field("pid", &self.pid)
            .field("regions", &self.regions.len())
            .field("provenance", &self.provenance.total)
            .finish()
    }
}

impl Materialized<'_> {
    /// The process as a [`Dump`] whose regions borrow from the image and
    /// from this value.
    #[must_use]
    pub fn dump(&self) -> Dump<'_> {
        let mut d = Dump::new(Source::Criu, self.arch);
        for r in &self.regions {
            let bytes: &[u8] = match r.src {
                Src::None => &[],
                Src::Image(b) => b,
                Src::Arena { off, len } => self
                    .arena
                    .as_deref()
                    .and_then(|a| a.get(off..off.saturating_add(len)))
                    .unwrap_or(&[]),
            };
            d.regions.push(Region {
                start: r.start,
                end: r.end,
                perms: r.perms,
                kind: r.kind.clone(),
                bytes: Cow::Borrowed(bytes),
            });
        }
        d.threads = self.threads.clone();
        d.auxv = self.auxv.clone();
        d.file_mappings = self.file_mappings.clone();
        d.process = Some(self.process.clone());
        d.page_size = d
            .auxv_get(at::PAGESZ)
            .filter(|&p| p == PAGE)
            .unwrap_or(PAGE);
        d.anomalies = self.anomalies.clone();
        d.notes = self.notes.clone();
        d
    }
}

/// A file a mapping needs, checked against what `files.img` recorded.
enum Backing {
    Usable(FileBytes),
    Unusable,
}

fn kind_of(v: &Vma, set: &ImageSet<'_>) -> RegionKind {
    if v.is(status::VDSO) {
        RegionKind::Vdso
    } else if v.is(status::VVAR) {
        RegionKind::Vvar
    } else if v.is(status::VSYSCALL) {
        RegionKind::Vsyscall
    } else if v.is(status::HEAP) {
        RegionKind::Heap
    } else if v.is(status::STACK) || v.flags & MAP_GROWSDOWN != 0 {
        // CRIU 4.2 marks the main stack by its MAP_GROWSDOWN flag only.
        RegionKind::Stack
    } else if v.is(status::SYSVIPC) {
        RegionKind::Other {
            name: "[sysv shm]".into(),
        }
    } else if v.is(status::AIORING) {
        RegionKind::Other {
            name: "[aio]".into(),
        }
    } else if v.is(status::UPROBES) {
        RegionKind::Other {
            name: "[uprobes]".into(),
        }
    } else if let Some(id) = v.file {
        RegionKind::File {
            path: set
                .files
                .get(&id)
                .map_or_else(|| format!("[criu file {id}]"), |f| f.path.clone()),
            offset: v.pgoff,
        }
    } else {
        RegionKind::Anonymous
    }
}

/// The stored runs overlapping `[start, end)`, clipped: (vaddr, bytes).
fn stored_in<'a>(p: &Process<'a>, start: u64, end: u64) -> Vec<(u64, &'a [u8])> {
    let i = p.runs.partition_point(|r: &PageRun| r.end() <= start);
    let mut out = Vec::new();
    for r in p.runs.get(i..).unwrap_or(&[]) {
        if r.vaddr >= end {
            break;
        }
        let s = r.vaddr.max(start);
        let e = r.end().min(end);
        let off = r.offset.saturating_add(s - r.vaddr);
        let bytes = usize::try_from(off)
            .ok()
            .zip(usize::try_from(e - s).ok())
            .and_then(|(o, l)| p.pages.get(o..o.checked_add(l)?));
        if let Some(b) = bytes {
            out.push((s, b));
        }
    }
    out
}

impl<'a> ImageSet<'a> {
    /// The process with `pid` (the root of the tree when `None`) laid out
    /// as regions; file pages the image does not hold are read through
    /// `resolver` (which also honours `--binary` and `--sysroot`).
    ///
    /// # Errors
    /// [`Error::Malformed`] when `pid` is not in the image;
    /// [`Error::LimitExceeded`] when the regions to assemble exceed
    /// [`MAX_ASSEMBLED`]; [`Error::Io`] when that much memory cannot be
    /// reserved.
    pub fn materialize(&self, pid: Option<u32>, resolver: &Resolver) -> Result<Materialized<'a>> {
        let p = match pid {
            None => self.processes.first(),
            Some(pid) => self.processes.iter().find(|p| p.pid == pid),
        }
        .ok_or_else(|| Error::Malformed {
            what: "CRIU image directory",
            detail: match pid {
                Some(pid) => format!("process {pid} is not in pstree.img"),
                None => "pstree.img lists no process".into(),
            },
        })?;
        let mut anomalies = self.anomalies.clone();
        let mut notes = self.notes.clone();
        if self.processes.len() > 1 {
            notes.push(format!(
                "the image holds {} processes; this is process {} ({}); the others: {}",
                self.processes.len(),
                p.pid,
                p.comm,
                self.processes
                    .iter()
                    .filter(|o| o.pid != p.pid)
                    .map(|o| o.pid.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        // Files, resolved once each and checked against files.img.
        let mut backing: BTreeMap<u32, Backing> = BTreeMap::new();
        let mut plans: Vec<Planned<'a>> = Vec::with_capacity(p.vmas.len());
        let mut pages: Vec<RegionPages> = Vec::with_capacity(p.vmas.len());
        let mut copies: Vec<Copy<'a>> = Vec::new();
        let mut arena_len: u64 = 0;
        let mut stored_code_pages = Vec::new();
        let mut unread_kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut over_budget = 0u64;
        for v in &p.vmas {
            let kind = kind_of(v, self);
            let len = v.end - v.start;
            let npages = len / PAGE;
            let mut rp = RegionPages::default();
            let elsewhere = v.status & status::NOT_IN_PAGES != 0 || v.is(status::GUARD);
            if matches!(kind, RegionKind::Vvar | RegionKind::Vsyscall) || elsewhere {
                if elsewhere {
                    let what = if v.is(status::ANON_SHARED) {
                        "shared anonymous memory"
                    } else if v.is(status::MEMFD) {
                        "memfd mappings"
                    } else if v.is(status::GUARD) {
                        "guard regions"
                    } else {
                        "special mappings (System V shm, AIO rings, packet rings, shadow stacks, uprobes)"
                    };
                    *unread_kinds.entry(what).or_default() += 1;
                    rp.missing = npages;
                }
                plans.push(Planned::without_bytes(v, kind));
                pages.push(rp);
                continue;
            }
            let stored = stored_in(p, v.start, v.end);
            if v.perms.execute && v.file.is_some() {
                for (a, b) in &stored {
                    let n = b.len() as u64 / PAGE;
                    stored_code_pages.extend((0..n).map(|i| a + i * PAGE));
                }
            }
            let stored_pages: u64 = stored.iter().map(|(_, b)| b.len() as u64 / PAGE).sum();
            let file = match v.file {
                Some(id) if stored_pages < npages => {
                    let b = backing
                        .entry(id)
                        .or_insert_with(|| check_file(self, id, resolver, &mut anomalies));
                    match b {
                        Backing::Usable(f) => Some(std::sync::Arc::clone(f)),
                        Backing::Unusable => None,
                    }
                }
                _ => None,
            };
            let file_len = file.as_ref().map_or(0, |f| (**f).as_ref().len() as u64);
            // The held prefix: pages are held while they are stored, come
            // from a usable file (inside its length), or are anonymous.
            // Counted over runs, never page by page: a VMA may span
            // terabytes of reservation.
            let held_pages = match (v.file, &file) {
                (None, _) => npages,
                (Some(_), f) => {
                    let from_file = if f.is_some() {
                        file_len.saturating_sub(v.pgoff).div_ceil(PAGE).min(npages)
                    } else {
                        0
                    };
                    // Past the file's pages, only stored runs that follow
                    // on without a gap are held.
                    let mut reach = v.start + from_file * PAGE;
                    for (s, b) in &stored {
                        let e = s.saturating_add(b.len() as u64);
                        if *s <= reach && e > reach {
                            reach = e;
                        }
                    }
                    (reach - v.start) / PAGE
                }
            };
            let held_end = v.start + held_pages * PAGE;
            rp.stored = stored
                .iter()
                .map(|(s, b)| {
                    s.saturating_add(b.len() as u64)
                        .min(held_end)
                        .saturating_sub(*s)
                        / PAGE
                })
                .sum();
            if v.file.is_some() {
                rp.from_file = held_pages - rp.stored;
            } else {
                rp.zero = held_pages - rp.stored;
            }
            rp.missing = npages - held_pages;
            let held = held_pages * PAGE;
            // Clip the stored slices to the held prefix.
            let clipped: Vec<(u64, &'a [u8])> = stored
                .iter()
                .filter(|(s, _)| *s < held_end)
                .map(|&(s, b)| {
                    let keep =
                        usize::try_from((held_end - s).min(b.len() as u64)).unwrap_or(b.len());
                    (s, b.get(..keep).unwrap_or(b))
                })
                .collect();
            // Pieces of the VMA: large stored runs are borrowed from the
            // pages image in place; what lies between them is assembled.
            // A VMA in several pieces digests as one (the normal form
            // merges adjacent pieces of one backing), and code is never
            // split, so the code check reads each mapping whole.
            let mut pieces: Vec<(u64, u64, Option<&'a [u8]>)> = Vec::new();
            if held > 0 {
                let mut cur = v.start;
                for &(s, b) in &clipped {
                    let whole = s == v.start && b.len() as u64 == held;
                    if whole || (!v.perms.execute && b.len() >= BORROW_MIN) {
                        if s > cur {
                            pieces.push((cur, s, None));
                        }
                        let e = s + b.len() as u64;
                        pieces.push((s, e, Some(b)));
                        cur = e;
                    }
                }
                if cur < held_end {
                    pieces.push((cur, held_end, None));
                }
            }
            let assembled: u64 = pieces
                .iter()
                .filter(|p| p.2.is_none())
                .map(|p| p.1 - p.0)
                .sum();
            if pieces.is_empty() || arena_len.saturating_add(assembled) > MAX_ASSEMBLED {
                // Past the budget, the VMA holds nothing (bound as
                // missing): a small image can name terabytes of untouched
                // reservation, and talos must stay bounded in time.
                if !pieces.is_empty() {
                    over_budget = over_budget.saturating_add(assembled);
                    rp = RegionPages {
                        missing: npages,
                        ..RegionPages::default()
                    };
                }
                plans.push(Planned::without_bytes(v, kind));
                pages.push(rp);
                continue;
            }
            let last = pieces.len() - 1;
            for (i, (ps, pe, borrowed)) in pieces.into_iter().enumerate() {
                let src = match borrowed {
                    Some(b) => Src::Image(b),
                    None => {
                        let off = usize::try_from(arena_len).map_err(|_| too_big(arena_len))?;
                        let l = usize::try_from(pe - ps).map_err(|_| too_big(pe - ps))?;
                        arena_len += pe - ps;
                        let within: Vec<(u64, &'a [u8])> = clipped
                            .iter()
                            .filter(|(s, b)| *s >= ps && s.saturating_add(b.len() as u64) <= pe)
                            .copied()
                            .collect();
                        copies.push((
                            plans.len(),
                            within,
                            file.as_ref()
                                .map(|f| (std::sync::Arc::clone(f), v.pgoff + (ps - v.start))),
                        ));
                        Src::Arena { off, len: l }
                    }
                };
                let kind = match &kind {
                    RegionKind::File { path, .. } => RegionKind::File {
                        path: path.clone(),
                        offset: v.pgoff + (ps - v.start),
                    },
                    k => k.clone(),
                };
                plans.push(Planned {
                    start: ps,
                    // The last piece is the rest of the VMA; what it does
                    // not hold is bound as missing.
                    end: if i == last { v.end } else { pe },
                    perms: v.perms,
                    kind,
                    src,
                });
            }
            pages.push(rp);
        }
        for (what, n) in unread_kinds {
            anomalies.push(Anomaly {
                code: "criu-bytes-elsewhere",
                message: format!(
                    "{n} VMA(s) of {what}: their bytes are not in the page images and are not read"
                ),
            });
        }
        if over_budget > 0 {
            anomalies.push(Anomaly {
                code: "criu-assembly-limit",
                message: format!(
                    "{over_budget} bytes of regions the image does not hold whole are not laid out: more than {MAX_ASSEMBLED} bytes to assemble"
                ),
            });
        }
        let arena = assemble(&plans, &copies, arena_len)?;

        let threads: Vec<Thread> = p
            .threads
            .iter()
            .map(|t| Thread {
                tid: t.tid,
                signal: 0,
                regs: t.regs.clone(),
            })
            .collect();
        let rseq_areas: Vec<u64> = p.threads.iter().filter_map(|t| t.rseq).collect();
        let threads_without_rseq = p.threads.len() - rseq_areas.len();
        let mut file_mappings: Vec<FileMapping> = p
            .vmas
            .iter()
            .filter_map(|v| match kind_of(v, self) {
                RegionKind::File { path, .. } => Some(FileMapping {
                    start: v.start,
                    end: v.end,
                    offset: v.pgoff,
                    path,
                }),
                _ => None,
            })
            .collect();
        file_mappings.sort();
        let mut total = RegionPages::default();
        for r in &pages {
            total.stored += r.stored;
            total.from_file += r.from_file;
            total.zero += r.zero;
            total.missing += r.missing;
        }
        if !stored_code_pages.is_empty() {
            notes.push(format!(
                "{} page(s) of executable file mappings are stored in the image (written before the dump; CRIU's parasite leaves one): compared with the files like every code byte",
                stored_code_pages.len()
            ));
        }
        notes.push(format!(
            "CRIU image of process {} ({}): {} pages stored in {}, {} read from mapped files, {} zero (anonymous, not stored), {} not held",
            p.pid, p.comm, total.stored, p.pages_name, total.from_file, total.zero, total.missing
        ));
        Ok(Materialized {
            pid: p.pid,
            arch: p.arch,
            arena,
            regions: plans,
            threads,
            auxv: p.auxv.clone(),
            file_mappings,
            process: ProcessInfo {
                pid: p.pid,
                ppid: p.ppid,
                uid: 0,
                gid: 0,
                name: p.comm.clone(),
                args: String::new(),
            },
            provenance: Provenance {
                regions: pages,
                total,
                stored_code_pages,
            },
            rseq_areas,
            threads_without_rseq,
            anomalies,
            notes,
        })
    }
}

fn too_big(n: u64) -> Error {
    Error::LimitExceeded {
        what: "bytes to assemble for one process of a CRIU image",
        count: n,
        limit: MAX_ASSEMBLED,
    }
}

/// The file `files.img` entry `id` names, if this host's copy is the one
/// the image recorded (size and build-id).
fn check_file(
    set: &ImageSet<'_>,
    id: u32,
    resolver: &Resolver,
    anomalies: &mut Vec<Anomaly>,
) -> Backing {
    let Some(rf) = set.files.get(&id) else {
        anomalies.push(Anomaly {
            code: "criu-file-unknown",
            message: format!("files.img has no regular file {id}, which a VMA maps"),
        });
        return Backing::Unusable;
    };
    match resolver.resolve(&rf.path, rf.build_id.as_deref()) {
        Resolved::File { shown, bytes } => {
            let len = (*bytes).as_ref().len() as u64;
            if let Some(size) = rf.size
                && size != len
            {
                anomalies.push(Anomaly {
                    code: "criu-file-changed",
                    message: format!(
                        "{}: the image recorded {size} bytes, {shown} has {len}: its pages are not restored from it (criu restore would refuse it)",
                        rf.path
                    ),
                });
                return Backing::Unusable;
            }
            if let Some(want) = &rf.build_id {
                let have = talos_cfg::load((*bytes).as_ref())
                    .ok()
                    .and_then(|i| i.build_id);
                if have.as_deref() != Some(want.as_slice()) {
                    anomalies.push(Anomaly {
                        code: "criu-file-changed",
                        message: format!(
                            "{}: the image recorded build-id {}, {shown} has {}: its pages are not restored from it (criu restore would refuse it)",
                            rf.path,
                            talos_cfg::hex(want),
                            have.as_deref().map_or_else(|| "none".to_string(), talos_cfg::hex)
                        ),
                    });
                    return Backing::Unusable;
                }
            }
            Backing::Usable(bytes)
        }
        Resolved::Deleted => {
            anomalies.push(Anomaly {
                code: "criu-file-missing",
                message: format!("{}: deleted; its unwritten pages are not held", rf.path),
            });
            Backing::Unusable
        }
        Resolved::NotFound { tried } => {
            anomalies.push(Anomaly {
                code: "criu-file-missing",
                message: format!(
                    "{}: {tried} not found; its unwritten pages are not held (give --sysroot DIR or --binary PATH)",
                    rf.path
                ),
            });
            Backing::Unusable
        }
        Resolved::Unreadable { path, error } => {
            anomalies.push(Anomaly {
                code: "criu-file-missing",
                message: format!("{path}: cannot read: {error}; its unwritten pages are not held"),
            });
            Backing::Unusable
        }
    }
}

/// Lay the assembled regions out in one anonymous mapping: file bytes
/// first, then the stored pages over them.
fn assemble(
    plans: &[Planned<'_>],
    copies: &[Copy<'_>],
    len: u64,
) -> Result<Option<memmap2::MmapMut>> {
    if len == 0 {
        return Ok(None);
    }
    let l = usize::try_from(len).map_err(|_| too_big(len))?;
    // No swap reservation: most of it is zero pages that are only read.
    let mut arena = memmap2::MmapOptions::new()
        .len(l)
        .no_reserve_swap()
        .map_anon()
        .map_err(|e| Error::Io {
            path: "(anonymous memory)".into(),
            what: "reserving memory to assemble a CRIU image's regions",
            source: e,
        })?;
    for (i, stored, file) in copies {
        let Some(Planned {
            start,
            src: Src::Arena { off, len },
            ..
        }) = plans.get(*i)
        else {
            continue;
        };
        let Some(dst) = arena.get_mut(*off..off.saturating_add(*len)) else {
            continue;
        };
        if let Some((f, pgoff)) = file {
            let fb = (**f).as_ref();
            let from = usize::try_from(*pgoff).unwrap_or(usize::MAX).min(fb.len());
            let src = fb.get(from..).unwrap_or(&[]);
            let n = src.len().min(dst.len());
            if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
                d.copy_from_slice(s);
            }
        }
        for (a, b) in stored {
            let o = usize::try_from(a - start).unwrap_or(usize::MAX);
            if let Some(d) = dst.get_mut(o..o.saturating_add(b.len())) {
                d.copy_from_slice(b);
            }
        }
    }
    Ok(Some(arena))
}
