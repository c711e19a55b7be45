//! Code integrity: map every file-backed executable mapping back to its
//! binary, check the build-id, compare the bytes, then look for code that
//! should not be there (anonymous executable memory, W+X, GOT hooks) and
//! check every thread's execution flow.
//!
//! Steps, in order:
//! 1. Group the dump's file mappings into modules (one per path and load;
//!    a new load starts at each mapping of file offset 0).
//! 2. Read the build-id from the module's ELF header page in the dump, find
//!    the file ([`Resolver`]) and compare build-ids before any byte.
//! 3. Compare each executable mapping byte for byte with the file at the
//!    mapping's file offset (bytes past the end of the file read as zero).
//!    Writable mappings (GOT, RELRO, `.data`) legitimately differ and are
//!    not compared; their pointers are checked instead ([`crate::check::got`]).
//! 4. Unwind every thread ([`crate::check::flow`]), then recover the CFG of the
//!    modules that need one (tampered modules, modules holding a pc or a
//!    return address), in parallel, once each.

mod conclude;
mod recover;

use talos_cfg::{Cfg, Image, ImageKind};

use conclude::conclude;
use recover::{recover_local, recover_whole};

use crate::check::addr::{Bias, LinkAddr, RuntimeAddr};
use crate::check::flow;
use crate::check::got;
use crate::dump::{Dump, FileMapping, UnreadWhy, at};
use crate::region::RegionKind;
use crate::report::{
    DiffRange, Finding, FindingKind, InputInfo, ModuleKind, ModuleReport, Part, Reason, Report,
    SCHEMA, Unchecked, Verdict,
};
use crate::resolve::{FileBytes, Resolved, Resolver};
use crate::source::memelf;

/// Most modules examined in one dump (real processes map hundreds).
pub const MAX_MODULES: usize = 4096;

/// What to check and how much to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Unwind every thread and check its pc and return addresses.
    pub flow: bool,
    /// Recover the whole CFG of every module a thread runs in (slow on large
    /// binaries: seconds per MB; it also proves which functions never
    /// return). Without it only the functions that hold a pc or return
    /// address are recovered (`talos_cfg::analyze_functions`), which answers
    /// the same block and return-site questions for those functions.
    pub flow_cfg: bool,
    /// Recover the CFG of tampered modules to name the function of each
    /// differing run (otherwise symbols and `.eh_frame` FDEs name them).
    pub diff_cfg: bool,
    /// Differing runs listed per module.
    pub max_diffs: usize,
    /// Stack words scanned per thread when CFI unwinding stops early.
    pub scan_words: usize,
    /// Frames unwound per thread.
    pub max_frames: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            flow: true,
            flow_cfg: false,
            diff_cfg: true,
            max_diffs: 64,
            scan_words: 8192,
            max_frames: 4096,
        }
    }
}

/// A module being verified.
pub(crate) struct Module<'x> {
    pub report: ModuleReport,
    pub image: Option<Image<'x>>,
    /// The load bias: the only way between the module's link addresses and
    /// the dump's runtime addresses.
    pub bias: Option<Bias>,
    /// Executable ranges `[start, end)` of this module.
    pub exec: Vec<(u64, u64)>,
    pub cfg: Option<Cfg>,
    /// Why the whole CFG could not be recovered, when it was needed.
    pub cfg_error: Option<String>,
    /// CFG of just the functions a thread's pc or return addresses are in.
    pub local_cfg: Option<Cfg>,
    /// Why that could not be recovered.
    pub local_error: Option<String>,
    /// Why the module's code was not checked (with `report.verdict`
    /// `unverifiable`).
    pub unchecked: Option<Reason>,
}

impl Module<'_> {
    /// Link address of a runtime address; `None` when the bias is not
    /// known (nothing in the module is identified then).
    pub fn link(&self, addr: RuntimeAddr) -> Option<LinkAddr> {
        self.bias.map(|b| b.link(addr))
    }
}

/// Everything the checks share.
pub(crate) struct Ctx<'d, 'x> {
    pub dump: &'d Dump<'d>,
    pub modules: Vec<Module<'x>>,
    /// Executable ranges of all modules, sorted: (start, end, module index).
    pub exec: Vec<(u64, u64, usize)>,
    pub opts: Options,
}

impl Ctx<'_, '_> {
    /// The module whose executable range holds `addr`.
    pub fn exec_module(&self, addr: u64) -> Option<usize> {
        let idx = self.exec.partition_point(|r| r.0 <= addr);
        let r = self.exec.get(idx.checked_sub(1)?)?;
        (addr < r.1).then_some(r.2)
    }

    /// The module any of whose mappings holds `addr`.
    pub fn module_at(&self, addr: u64) -> Option<usize> {
        self.modules
            .iter()
            .position(|m| addr >= m.report.base && addr < m.report.end)
    }

    /// Describe where `addr` lies for messages.
    pub fn describe(&self, addr: u64) -> String {
        if let Some(i) = self.module_at(addr)
            && let Some(m) = self.modules.get(i)
        {
            return format!("{}+{:#x}", m.report.path, addr - m.report.base);
        }
        match self.dump.region_containing(addr) {
            Some(r) => {
                let what = match &r.kind {
                    RegionKind::Anonymous => "anonymous memory".to_string(),
                    RegionKind::File { path, .. } => path.clone(),
                    RegionKind::Stack => "[stack]".into(),
                    RegionKind::Heap => "[heap]".into(),
                    RegionKind::Vdso => "[vdso]".into(),
                    RegionKind::Vvar => "[vvar]".into(),
                    RegionKind::Vsyscall => "[vsyscall]".into(),
                    RegionKind::Other { name } => name.clone(),
                };
                format!("{what} {} at {:#x}-{:#x}", r.perms, r.start, r.end)
            }
            None => "unmapped memory".into(),
        }
    }
}

/// Group file mappings into loads: per path, a new load at each mapping of
/// file offset 0 once the current one has one.
fn group(mappings: &[FileMapping]) -> Vec<Vec<FileMapping>> {
    let mut by_path: std::collections::BTreeMap<&str, Vec<Vec<FileMapping>>> =
        std::collections::BTreeMap::new();
    for m in mappings {
        let loads = by_path.entry(m.path.as_str()).or_default();
        let start_new = match loads.last() {
            None => true,
            Some(cur) => m.offset == 0 && cur.iter().any(|c| c.offset == 0),
        };
        if start_new {
            loads.push(vec![m.clone()]);
        } else if let Some(cur) = loads.last_mut() {
            cur.push(m.clone());
        }
    }
    let mut out: Vec<Vec<FileMapping>> = by_path.into_values().flatten().collect();
    out.sort_by_key(|g| g.first().map_or(0, |m| m.start));
    out
}

/// Permissions of a mapping as the dump records them; `None` when the dump
/// omitted the mapping (gdb).
fn mapping_perms(dump: &Dump<'_>, m: &FileMapping) -> Option<crate::region::Perms> {
    dump.region_containing(m.start).map(|r| r.perms)
}

/// Compare `mem` (the prefix of a mapping the dump holds) with the file
/// bytes at `file_off`; bytes past the end of the file must be zero.
/// Returns the differing runs as (offset in mapping, length), merging runs
/// separated by fewer than 8 equal bytes.
pub(crate) fn compare(mem: &[u8], file: &[u8], file_off: u64) -> Vec<(u64, u64)> {
    let start = usize::try_from(file_off)
        .unwrap_or(usize::MAX)
        .min(file.len());
    let in_file = file.get(start..).unwrap_or(&[]);
    let mut diffs: Vec<(u64, u64)> = Vec::new();
    let mut push = |i: usize| {
        let i = i as u64;
        match diffs.last_mut() {
            Some((s, l)) if i <= *s + *l + 8 => *l = i + 1 - *s,
            _ => diffs.push((i, 1)),
        }
    };
    const CHUNK: usize = 4096;
    let mut off = 0usize;
    while off < mem.len() {
        let end = (off + CHUNK).min(mem.len());
        let m = mem.get(off..end).unwrap_or(&[]);
        let f_end = end.min(in_file.len());
        let f = in_file.get(off.min(f_end)..f_end).unwrap_or(&[]);
        if m.len() == f.len() && m == f {
            off = end;
            continue;
        }
        for (i, &b) in m.iter().enumerate() {
            // Past the end of the file the mapping is zero-filled (the
            // rule above), so 0 is the byte expected there, not a stand-in.
            let expected = f.get(i).copied().unwrap_or(0);
            if b != expected {
                push(off + i);
            }
        }
        off = end;
    }
    diffs
}

fn hex_window(bytes: &[u8]) -> String {
    talos_cfg::hex(bytes.get(..bytes.len().min(32)).unwrap_or(bytes))
}

/// Verify a dump: module verdicts, findings, threads.
#[must_use]
pub fn verify(dump: &Dump<'_>, resolver: &Resolver, input: &str, opts: &Options) -> Report {
    let page = dump.page_size.max(1);
    let mask = !(page - 1);
    let mut notes: Vec<String> = dump.notes.clone();
    let entry = dump.auxv_get(at::ENTRY);
    let groups = group(&dump.file_mappings);

    // Phase 1: identify and resolve (sequential: cheap, and the loader may
    // not be reentrant-friendly); keep the file bytes alive for images.
    struct Pending {
        mappings: Vec<FileMapping>,
        perms: Vec<Option<crate::region::Perms>>,
        mem: Option<memelf::MemElf>,
        file: Option<(String, FileBytes)>,
        problem: Option<(Verdict, String, Option<Reason>)>,
    }
    let mut pending: Vec<Pending> = Vec::new();
    let mut unchecked: Vec<Unchecked> = Vec::new();
    // Groups that may hold code but were not examined (past the cap).
    let mut over_cap: Vec<String> = Vec::new();
    for g in groups {
        let perms: Vec<_> = g.iter().map(|m| mapping_perms(dump, m)).collect();
        let any_exec = perms.iter().any(|p| p.is_some_and(|p| p.execute));
        let any_unknown = perms.iter().any(Option::is_none);
        if !any_exec && !any_unknown && g.iter().all(|m| m.offset != 0) {
            continue; // a data file mapping with known, non-executable protections
        }
        let Some(first) = g.first() else { continue };
        if pending.len() >= MAX_MODULES {
            over_cap.push(first.path.clone());
            continue;
        }
        let header = g.iter().find(|m| m.offset == 0);
        let mem = header.and_then(|h| memelf::read(dump, h.start, page));
        if !any_exec && !any_unknown && mem.is_none() {
            continue; // a data file mapping with known, non-executable protections
        }
        let path = first.path.clone();
        let bid = mem.as_ref().and_then(|m| m.build_id.as_deref());
        let (file, problem) = match resolver.resolve(&path, bid) {
            Resolved::File { shown, bytes } => (Some((shown, bytes)), None),
            Resolved::Deleted => (
                None,
                Some((
                    Verdict::BinaryChanged,
                    "the file was deleted after it was mapped; give --binary PATH to compare with a copy".to_string(),
                    None,
                )),
            ),
            Resolved::NotFound { tried } => (
                None,
                Some((
                    Verdict::Unverifiable,
                    format!("no file to compare with: {tried} not found (give --sysroot DIR or --binary PATH)"),
                    Some(Reason::NoFile),
                )),
            ),
            Resolved::Unreadable { path, error } => (
                None,
                Some((
                    Verdict::Unverifiable,
                    format!("{path}: cannot read: {error}"),
                    Some(Reason::FileUnreadable),
                )),
            ),
        };
        if file.is_none() && !any_exec {
            // Unknown protections and no file: only keep it when the header
            // says it is an ELF image (it may hold code).
            if mem.is_none() {
                continue;
            }
        }
        pending.push(Pending {
            mappings: g,
            perms,
            mem,
            file,
            problem,
        });
    }
    let file_bytes: Vec<Option<FileBytes>> = pending
        .iter()
        .map(|p| p.file.as_ref().map(|f| std::sync::Arc::clone(&f.1)))
        .collect();

    if !over_cap.is_empty() {
        unchecked.push(Unchecked {
            part: Part::Dump,
            subject: "file mappings".into(),
            reason: Reason::ModuleCap,
            detail: format!(
                "{} file-mapped module(s) that may hold code were not examined: talos examines at most {MAX_MODULES} (first not examined: {})",
                over_cap.len(),
                over_cap.first().map_or("", String::as_str)
            ),
        });
    }
    let mut modules: Vec<Module<'_>> = Vec::new();
    for (p, fb) in pending.iter().zip(file_bytes.iter()) {
        let mut why: Option<Reason> = None;
        let Some(first) = p.mappings.first() else {
            continue;
        };
        let base = p
            .mappings
            .iter()
            .map(|m| m.start)
            .min()
            .unwrap_or(first.start);
        let end = p.mappings.iter().map(|m| m.end).max().unwrap_or(first.end);
        let mut report = ModuleReport {
            path: first.path.clone(),
            file: p.file.as_ref().map(|f| f.0.clone()),
            kind: ModuleKind::Unknown,
            base,
            end,
            load_bias: p.mem.as_ref().and_then(|m| m.bias),
            build_id: p
                .mem
                .as_ref()
                .and_then(|m| m.build_id.as_deref())
                .map(talos_cfg::hex),
            file_build_id: None,
            verdict: Verdict::Unverifiable,
            reason: String::new(),
            code_bytes: 0,
            compared_bytes: 0,
            missing_bytes: 0,
            differing_bytes: 0,
            diffs: Vec::new(),
            diffs_omitted: 0,
            text_relocations: false,
            pointers_checked: 0,
            pointers_unchecked: 0,
        };
        let image = match fb.as_ref() {
            Some(b) => match talos_cfg::load((**b).as_ref()) {
                Ok(i) => Some(i),
                Err(e) => {
                    let known_exec = p.perms.iter().any(|x| x.is_some_and(|x| x.execute));
                    if !known_exec {
                        continue; // not a loadable binary and no code mapped: data
                    }
                    report.reason = format!(
                        "{} is not a binary talos can load: {e}",
                        report.file.as_deref().unwrap_or("the file")
                    );
                    why = Some(Reason::NotLoadable);
                    None
                }
            },
            None => None,
        };
        // Which mappings are executable.
        let mut exec_maps: Vec<&FileMapping> = Vec::new();
        for (m, perms) in p.mappings.iter().zip(p.perms.iter()) {
            let x = match perms {
                Some(perms) => perms.execute,
                None => image.as_ref().is_some_and(|img| {
                    img.segments.iter().any(|s| {
                        s.perms.execute
                            && m.offset >= s.offset & mask
                            && m.offset < s.offset.saturating_add(s.file_size.max(1))
                    })
                }),
            };
            if x {
                exec_maps.push(m);
            }
        }
        if exec_maps.is_empty() {
            let known = p.perms.iter().all(Option::is_some);
            if known || image.is_some() {
                continue; // maps no code
            }
        }
        let mut bias = report.load_bias;
        if let Some(img) = &image {
            report.file_build_id = img.build_id_hex();
            report.text_relocations = img.text_relocations;
            report.kind = if entry.is_some_and(|e| e >= base && e < end)
                || img.kind == ImageKind::Executable
                    && entry.is_some_and(|e| img.segment_containing(e).is_some())
            {
                ModuleKind::Executable
            } else {
                ModuleKind::SharedObject
            };
            let file_bias = p.mappings.iter().find_map(|m| {
                img.segments
                    .iter()
                    .find(|s| s.offset & mask == m.offset)
                    .map(|s| m.start.wrapping_sub(s.vaddr & mask))
            });
            match (bias, file_bias) {
                (None, _) => bias = file_bias,
                (Some(header), Some(file)) if header != file => notes.push(format!(
                    "{}: load bias from the in-memory header ({header:#x}) differs from the one the file's segments give ({file:#x}); using the header's",
                    report.path,
                )),
                _ => {}
            }
        } else if report.build_id.is_some() || p.mem.is_some() {
            report.kind = if entry.is_some_and(|e| e >= base && e < end) {
                ModuleKind::Executable
            } else {
                ModuleKind::SharedObject
            };
        }
        report.load_bias = bias;
        let exec: Vec<(u64, u64)> = exec_maps.iter().map(|m| (m.start, m.end)).collect();
        report.code_bytes = exec
            .iter()
            .fold(0u64, |acc, (s, e)| acc.saturating_add(e - s));

        // Verdict.
        if let Some((v, text, reason)) = &p.problem {
            report.verdict = *v;
            report.reason = text.clone();
            why = *reason;
            report.missing_bytes = report.code_bytes;
        } else if let (Some(mem_id), Some(file_id)) = (&report.build_id, &report.file_build_id)
            && mem_id != file_id
        {
            report.verdict = Verdict::BinaryChanged;
            report.reason = format!(
                "build-id in memory {mem_id} differs from {}'s {file_id}: the file was replaced after it was loaded",
                report.file.as_deref().unwrap_or("the file")
            );
        } else if let (Some(img), true) = (&image, report.reason.is_empty()) {
            let file = img.bytes;
            let mut runs: Vec<(u64, u64, u64)> = Vec::new(); // (addr, len, file offset)
            for m in &exec_maps {
                let len = m.end - m.start;
                let held = dump
                    .region_containing(m.start)
                    .map(|r| {
                        let off = usize::try_from(m.start - r.start).unwrap_or(usize::MAX);
                        let avail = r.bytes.get(off..).unwrap_or(&[]);
                        avail
                            .get(..usize::try_from(len).unwrap_or(usize::MAX).min(avail.len()))
                            .unwrap_or(&[])
                    })
                    .unwrap_or(&[]);
                report.compared_bytes = report.compared_bytes.saturating_add(held.len() as u64);
                report.missing_bytes = report.missing_bytes.saturating_add(len - held.len() as u64);
                for (o, l) in compare(held, file, m.offset) {
                    runs.push((m.start + o, l, m.offset.wrapping_add(o)));
                }
            }
            report.differing_bytes = runs.iter().map(|r| r.1).sum();
            let build_note = match (&report.build_id, &report.file_build_id) {
                (Some(_), Some(_)) => " (build-id matches)",
                (None, Some(_)) => " (the build-id note is not in the dump)",
                _ => " (no build-id to check)",
            };
            if !runs.is_empty() {
                if report.text_relocations {
                    report.verdict = Verdict::Unverifiable;
                    why = Some(Reason::TextRelocations);
                    report.reason = format!(
                        "{} bytes in {} runs differ, but the binary has text relocations (DT_TEXTREL): the loader patches its code, and relocation-aware comparison is not implemented",
                        report.differing_bytes,
                        runs.len()
                    );
                } else {
                    report.verdict = Verdict::Tampered;
                    report.reason = format!(
                        "{} of {} compared code bytes differ from {}, in {} runs{build_note}",
                        report.differing_bytes,
                        report.compared_bytes,
                        report.file.as_deref().unwrap_or("the file"),
                        runs.len()
                    );
                }
                report.diffs_omitted = runs.len().saturating_sub(opts.max_diffs) as u64;
                for (addr, len, foff) in runs.into_iter().take(opts.max_diffs) {
                    let shown = usize::try_from(len.min(32)).unwrap_or(32);
                    let actual = dump.read(addr, shown as u64).unwrap_or(&[]);
                    let expected: Vec<u8> = (0..shown)
                        .map(|i| {
                            usize::try_from(foff)
                                .ok()
                                .and_then(|f| f.checked_add(i))
                                .and_then(|f| file.get(f))
                                .copied()
                                // Zero-filled past the file's end, as
                                // `compare` expects there.
                                .unwrap_or(0)
                        })
                        .collect();
                    report.diffs.push(DiffRange {
                        addr,
                        len,
                        module_offset: addr - base,
                        file_offset: foff,
                        link_addr: bias.map(|b| addr.wrapping_sub(b)),
                        function: None,
                        function_offset: None,
                        expected: hex_window(&expected),
                        actual: hex_window(actual),
                    });
                }
            } else if report.code_bytes == 0 {
                report.verdict = Verdict::Unverifiable;
                why = Some(Reason::NoExecutableMapping);
                report.reason = "no executable mapping found for this module".into();
            } else if report.missing_bytes == report.code_bytes {
                report.verdict = Verdict::Unverifiable;
                why = Some(Reason::CodeNotInDump);
                report.reason = format!(
                    "the dump holds none of the {} code bytes: gcore and kernel cores leave file-backed code out unless /proc/PID/coredump_filter is 0x7f when the dump is taken",
                    report.code_bytes
                );
            } else if report.missing_bytes > 0 {
                report.verdict = Verdict::Unverifiable;
                why = Some(Reason::CodePartlyInDump);
                report.reason = format!(
                    "the dump holds only {} of {} code bytes (all equal to the file); the rest cannot be checked (set /proc/PID/coredump_filter to 0x7f before dumping)",
                    report.compared_bytes, report.code_bytes
                );
            } else {
                report.verdict = Verdict::Clean;
                report.reason = format!(
                    "all {} code bytes equal {}{build_note}",
                    report.compared_bytes,
                    report.file.as_deref().unwrap_or("the file")
                );
            }
        } else if report.reason.is_empty() {
            report.reason = "no file to compare with".into();
            why = Some(Reason::NoFile);
        }
        if report.verdict != Verdict::Clean && report.verdict != Verdict::Tampered {
            // Nothing compared: everything is missing as far as proof goes.
            if report.compared_bytes == 0 {
                report.missing_bytes = report.code_bytes;
            }
        }
        if report.verdict == Verdict::Unverifiable && why.is_none() {
            why = Some(Reason::NoFile);
        }
        modules.push(Module {
            report,
            image,
            bias: bias.map(Bias::new),
            exec,
            cfg: None,
            cfg_error: None,
            local_cfg: None,
            local_error: None,
            unchecked: why,
        });
    }

    // Kernel-provided code and findings on regions.
    let mut findings: Vec<Finding> = Vec::new();
    for r in &dump.regions {
        if r.perms.write && r.perms.execute {
            let mut f = Finding::new(
                FindingKind::Wx,
                r.start,
                format!(
                    "{:#x}-{:#x} is writable and executable ({})",
                    r.start,
                    r.end,
                    match &r.kind {
                        RegionKind::File { path, .. } => path.clone(),
                        _ => "anonymous".into(),
                    }
                ),
            );
            f.size = Some(r.len());
            f.perms = Some(r.perms.to_string());
            findings.push(f);
        }
        if !r.perms.execute {
            continue;
        }
        match &r.kind {
            RegionKind::File { .. } => {}
            RegionKind::Vdso | RegionKind::Vsyscall => {
                modules.push(crate::check::kernel::module(r, resolver));
            }
            RegionKind::Other { name }
                if dump.source == crate::dump::Source::Raw && name == "raw" =>
            {
                notes.push(format!(
                    "raw image {:#x}-{:#x} ({}) has no binary to compare with: give --binary PATH",
                    r.start, r.end, r.perms
                ));
            }
            other => {
                let what = match other {
                    RegionKind::Other { name } => format!(" ({name})"),
                    RegionKind::Stack => " ([stack])".into(),
                    RegionKind::Heap => " ([heap])".into(),
                    _ => String::new(),
                };
                let mut f = Finding::new(
                    FindingKind::AnonExec,
                    r.start,
                    format!(
                        "{:#x}-{:#x} {} is executable memory no file backs{what}; {} of its {} bytes are in the dump",
                        r.start,
                        r.end,
                        r.perms,
                        r.bytes.len(),
                        r.len()
                    ),
                );
                f.size = Some(r.len());
                f.perms = Some(r.perms.to_string());
                findings.push(f);
            }
        }
    }
    modules.sort_by_key(|m| (m.report.base, m.report.end));
    let mut exec: Vec<(u64, u64, usize)> = modules
        .iter()
        .enumerate()
        .flat_map(|(i, m)| m.exec.iter().map(move |&(s, e)| (s, e, i)))
        .collect();
    exec.sort_unstable();

    let mut ctx = Ctx {
        dump,
        modules,
        exec,
        opts: *opts,
    };

    // GOT and init/fini pointers.
    findings.extend(got::check(&mut ctx));

    // Flow: unwind first (no CFG needed), then recover the CFGs needed.
    let walks: Vec<flow::Walk> = if opts.flow {
        dump.threads.iter().map(|t| flow::unwind(&ctx, t)).collect()
    } else {
        Vec::new()
    };
    let mut need: std::collections::BTreeSet<usize> = std::collections::BTreeSet::new();
    for (i, m) in ctx.modules.iter().enumerate() {
        if opts.diff_cfg && !m.report.diffs.is_empty() {
            need.insert(i);
        }
    }
    if opts.flow_cfg {
        for w in &walks {
            need.extend(flow::modules_needed(&ctx, w));
        }
    }
    recover_whole(&mut ctx, need);
    // Without whole CFGs, recover just the functions the threads are in.
    if opts.flow && !opts.flow_cfg {
        recover_local(&mut ctx, &walks);
    }
    // A pc that neither its function nor an FDE explains (padding, bytes
    // between functions): the module's whole CFG decides.
    if opts.flow {
        let more: std::collections::BTreeSet<usize> = dump
            .threads
            .iter()
            .zip(&walks)
            .flat_map(|(t, w)| flow::needs_whole_cfg(&ctx, t, w))
            .collect();
        recover_whole(&mut ctx, more);
    }
    // Functions of differing runs: the CFG when recovered, else symbols and
    // FDEs.
    for m in &mut ctx.modules {
        let mut named: Vec<Option<(String, u64)>> = Vec::with_capacity(m.report.diffs.len());
        for d in &m.report.diffs {
            // Without a link address there is no function to name.
            let Some(link) = d.link_addr else {
                named.push(None);
                continue;
            };
            let by_cfg = m.cfg.as_ref().and_then(|cfg| {
                let f = cfg
                    .function_containing(link)
                    .or_else(|| nearest_function(cfg, link))?;
                Some((f.display_name(), link.wrapping_sub(f.addr)))
            });
            named.push(by_cfg.or_else(|| flow::name_in(m, LinkAddr::in_file(link))));
        }
        for (d, n) in m.report.diffs.iter_mut().zip(named) {
            if let Some((f, o)) = n {
                d.function = Some(f);
                d.function_offset = Some(o);
            }
        }
        if !m.report.diffs.is_empty()
            && let Some(e) = &m.cfg_error
        {
            notes.push(format!(
                "{}: its CFG could not be recovered ({e}); the functions of its differing runs are named from symbols and FDEs",
                m.report.path
            ));
        }
    }
    let mut threads = Vec::new();
    if opts.flow {
        for (t, w) in dump.threads.iter().zip(walks) {
            let (tr, mut fs, un) = flow::judge(&ctx, t, w);
            threads.push(tr);
            findings.append(&mut fs);
            unchecked.extend(un);
        }
    } else {
        for t in &dump.threads {
            let (tr, un) = flow::not_requested(&ctx, t);
            threads.push(tr);
            unchecked.push(un);
        }
    }
    for missing in &dump.unread_threads {
        unchecked.push(Unchecked {
            part: Part::Thread,
            subject: missing
                .tid
                .map_or_else(|| "a thread".to_string(), |t| format!("thread {t}")),
            reason: match missing.why {
                UnreadWhy::Cap => Reason::ThreadCap,
                UnreadWhy::Malformed | UnreadWhy::NoPrstatus | UnreadWhy::Unreadable => {
                    Reason::NoRegisters
                }
            },
            detail: format!("{}: its execution flow cannot be checked", missing.what),
        });
    }
    if dump.threads.is_empty()
        && dump.unread_threads.is_empty()
        && dump.source != crate::dump::Source::Raw
    {
        // A process has at least one thread; a raw image is not a process.
        unchecked.push(Unchecked {
            part: Part::Dump,
            subject: "threads".into(),
            reason: Reason::NoRegisters,
            detail: "the dump holds no thread (no NT_PRSTATUS): no execution flow could be checked"
                .into(),
        });
    }
    findings.sort_by(|a, b| (a.kind, a.addr, &a.message).cmp(&(b.kind, b.addr, &b.message)));

    for m in &ctx.modules {
        if let Some(reason) = m.unchecked {
            unchecked.push(Unchecked {
                part: if m.report.kind == ModuleKind::Kernel {
                    Part::KernelCode
                } else {
                    Part::Module
                },
                subject: m.report.path.clone(),
                reason,
                detail: m.report.reason.clone(),
            });
        }
    }
    unchecked.sort();
    unchecked.dedup();
    let modules: Vec<ModuleReport> = ctx.modules.into_iter().map(|m| m.report).collect();
    let (overall, summary) = conclude(&modules, &findings, &unchecked);
    Report {
        schema: SCHEMA,
        talos_version: env!("CARGO_PKG_VERSION"),
        input: InputInfo {
            path: input.to_string(),
            source: dump.source.name().to_string(),
            arch: dump.arch.name().to_string(),
            regions: dump.regions.len() as u64,
            bytes_held: dump.bytes_held(),
            file_mappings: dump.file_mappings.len() as u64,
            threads: dump.threads.len() as u64,
            signal: dump.signal,
            process: dump.process.clone(),
        },
        verdict: overall,
        summary,
        modules,
        findings,
        threads,
        unchecked,
        anomalies: dump.anomalies.clone(),
        notes,
    }
}

/// The function whose entry is the nearest at or below `addr` and whose
/// extent covers it (for bytes between blocks, such as padding an attacker
/// overwrote).
fn nearest_function(cfg: &Cfg, addr: u64) -> Option<&talos_cfg::Function> {
    let idx = cfg.functions.partition_point(|f| f.addr <= addr);
    let f = cfg.functions.get(idx.checked_sub(1)?)?;
    (addr < f.addr.saturating_add(f.size)).then_some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_merges_close_runs_and_zero_fills_past_eof() {
        let file = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let mut mem = vec![0u8; 24];
        mem[..8].copy_from_slice(&file);
        assert!(compare(&mem, &file, 0).is_empty());
        mem[1] = 0xcc;
        mem[4] = 0xcc;
        assert_eq!(compare(&mem, &file, 0), vec![(1, 4)]);
        // Fewer than 8 equal bytes between runs: merged.
        mem[11] = 9;
        assert_eq!(compare(&mem, &file, 0), vec![(1, 11)]);
        // More: separate. Past the end of the file, expected bytes are 0.
        mem[23] = 9;
        assert_eq!(compare(&mem, &file, 0), vec![(1, 11), (23, 1)]);
        // Offset past the end: everything must be zero.
        assert_eq!(compare(&[0, 0, 1], &file, 100), vec![(2, 1)]);
    }

    #[test]
    fn groups_split_at_second_header_mapping() {
        let m = |start, offset, path: &str| FileMapping {
            start,
            end: start + 0x1000,
            offset,
            path: path.into(),
        };
        let maps = vec![
            m(0x1000, 0, "/a"),
            m(0x2000, 0x1000, "/a"),
            m(0x5000, 0, "/b"),
            m(0x9000, 0, "/a"),
            m(0xa000, 0x1000, "/a"),
        ];
        let g = group(&maps);
        let starts: Vec<Vec<u64>> = g
            .iter()
            .map(|g| g.iter().map(|m| m.start).collect())
            .collect();
        assert_eq!(
            starts,
            vec![vec![0x1000, 0x2000], vec![0x5000], vec![0x9000, 0xa000]]
        );
    }
}
