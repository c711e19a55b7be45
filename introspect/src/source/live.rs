//! Live processes: `/proc/PID/maps`, `/proc/PID/mem`, `/proc/PID/auxv`, and
//! the registers of every thread through ptrace.
//!
//! The process is stopped only while it is read: every thread is attached
//! with `PTRACE_SEIZE` and stopped with `PTRACE_INTERRUPT` (no signal is
//! sent, so the process sees nothing), its registers and memory are read,
//! then every thread is detached and runs on. If talos dies meanwhile, the
//! kernel detaches the threads itself, so the process is never left stopped.
//! The time the process was stopped is recorded in the dump's notes.
//!
//! The result is a [`Dump`] that owns its bytes and behaves exactly like one
//! read from a core file.

use std::borrow::Cow;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use crate::digest::PageSource;
use crate::dump::{
    Anomaly, Arch, Dump, FileMapping, ProcessInfo, Source, Thread, UnreadThread, UnreadWhy, at,
};
use crate::error::{Error, Result};
use crate::region::{Perms, Region, RegionKind};

/// How to read a live process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Stop the process while reading (ptrace). Without it the memory is
    /// read while the process runs and no registers are read.
    pub stop: bool,
    /// Most bytes of memory read in all; regions past the budget are
    /// recorded without bytes.
    pub max_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stop: true,
            max_bytes: 16 << 30,
        }
    }
}

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapsEntry {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Protections.
    pub perms: Perms,
    /// Shared mapping (`s`) rather than private (`p`).
    pub shared: bool,
    /// File offset.
    pub offset: u64,
    /// Inode (0 for anonymous mappings).
    pub inode: u64,
    /// Path or pseudo-name (`[heap]`), empty for anonymous memory.
    pub name: String,
}

/// Parse the text of `/proc/PID/maps`. Lines that do not parse are skipped
/// and counted in the second value.
#[must_use]
pub fn parse_maps(text: &str) -> (Vec<MapsEntry>, usize) {
    let mut out = Vec::new();
    let mut bad = 0usize;
    for line in text.lines() {
        let parsed = (|| {
            let mut it = line.splitn(6, ' ');
            let range = it.next()?;
            let perms = it.next()?;
            let offset = it.next()?;
            let _dev = it.next()?;
            let inode = it.next()?;
            let name = it.next().unwrap_or("").trim_start();
            let (s, e) = range.split_once('-')?;
            Some(MapsEntry {
                start: u64::from_str_radix(s, 16).ok()?,
                end: u64::from_str_radix(e, 16).ok()?,
                perms: Perms::parse(perms)?,
                shared: perms.as_bytes().get(3) == Some(&b's'),
                offset: u64::from_str_radix(offset, 16).ok()?,
                inode: inode.parse().ok()?,
                name: name.to_string(),
            })
        })();
        match parsed {
            Some(e) if e.end > e.start => out.push(e),
            _ if line.trim().is_empty() => {}
            _ => bad += 1,
        }
    }
    (out, bad)
}

fn kind_of(e: &MapsEntry) -> RegionKind {
    match e.name.as_str() {
        "" => RegionKind::Anonymous,
        "[heap]" => RegionKind::Heap,
        "[stack]" => RegionKind::Stack,
        "[vdso]" => RegionKind::Vdso,
        "[vvar]" | "[vvar_vclock]" => RegionKind::Vvar,
        "[vsyscall]" => RegionKind::Vsyscall,
        n if n.starts_with('/') => RegionKind::File {
            path: n.to_string(),
            offset: e.offset,
        },
        n => RegionKind::Other {
            name: n.to_string(),
        },
    }
}

fn proc_err(pid: u32, what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Process { pid, what, source }
}

fn host_arch() -> Arch {
    if cfg!(target_arch = "aarch64") {
        Arch::Aarch64
    } else if cfg!(target_arch = "riscv64") {
        Arch::Riscv64
    } else {
        Arch::X86_64
    }
}

/// Threads of `pid` (`/proc/PID/task`), sorted, the main thread first.
fn tasks(pid: u32) -> Result<Vec<u32>> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(proc_err(pid, "listing /proc/PID/task"))?;
    let mut out: Vec<u32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    out.sort_unstable_by_key(|&t| (t != pid, t));
    Ok(out)
}

#[cfg(target_os = "linux")]
mod stop {
    //! Stopping and resuming threads with ptrace.
    use nix::sys::ptrace;
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    use nix::unistd::Pid;

    use crate::dump::Registers;

    /// Threads attached; detached on drop.
    pub struct Stopped {
        pub tids: Vec<u32>,
    }

    impl Stopped {
        /// Attach and stop `tid`. `Ok(false)` when the thread is gone.
        pub fn attach(&mut self, tid: u32) -> std::io::Result<bool> {
            // A tid past `pid_t` is no thread of this system: attaching to
            // some other number instead would stop the wrong process.
            let pid = Pid::from_raw(i32::try_from(tid).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("thread id {tid} is out of range for pid_t"),
                )
            })?);
            match ptrace::seize(pid, ptrace::Options::empty()) {
                Ok(()) => {}
                Err(nix::errno::Errno::ESRCH) => return Ok(false),
                Err(e) => return Err(std::io::Error::from(e)),
            }
            self.tids.push(tid);
            ptrace::interrupt(pid).map_err(std::io::Error::from)?;
            loop {
                match waitpid(pid, Some(WaitPidFlag::__WALL)) {
                    Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => {
                        self.tids.retain(|&t| t != tid);
                        return Ok(false);
                    }
                    Ok(_) => return Ok(true),
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(nix::errno::Errno::ECHILD) => return Ok(false),
                    Err(e) => return Err(std::io::Error::from(e)),
                }
            }
        }

        /// Registers of a stopped thread.
        #[cfg(target_arch = "x86_64")]
        pub fn regs(&self, tid: u32) -> Option<Registers> {
            let pid = Pid::from_raw(i32::try_from(tid).ok()?);
            let r = ptrace::getregs(pid).ok()?;
            let words = vec![
                r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx,
                r.rdx, r.rsi, r.rdi, r.orig_rax, r.rip, r.cs, r.eflags, r.rsp, r.ss, r.fs_base,
                r.gs_base, r.ds, r.es, r.fs, r.gs,
            ];
            Some(Registers {
                arch: crate::dump::Arch::X86_64,
                words,
            })
        }

        /// Registers of a stopped thread (not implemented for this
        /// architecture).
        #[cfg(not(target_arch = "x86_64"))]
        pub fn regs(&self, _tid: u32) -> Option<Registers> {
            None
        }
    }

    impl Drop for Stopped {
        fn drop(&mut self) {
            for &t in &self.tids {
                if let Ok(t) = i32::try_from(t) {
                    let _ = ptrace::detach(Pid::from_raw(t), None);
                }
            }
        }
    }
}

fn read_text(pid: u32, file: &str) -> Result<String> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .map_err(proc_err(pid, format!("reading /proc/PID/{file}")))
}

/// What `/proc/PID/{stat,status,cmdline}` say about process `pid`. A file
/// that cannot be read or a field that does not parse leaves that field at
/// its zero value (the core-file layout [`ProcessInfo`] mirrors has no
/// "unknown"), and is recorded in `anomalies` so that the zero is never
/// taken for the process's real parent, user or group.
fn process_info(pid: u32, anomalies: &mut Vec<Anomaly>) -> ProcessInfo {
    let mut p = ProcessInfo {
        pid,
        ..ProcessInfo::default()
    };
    let mut odd = |what: String| {
        anomalies.push(Anomaly {
            code: "bad-process-info",
            message: format!("process {pid}: {what}"),
        });
    };
    match read_text(pid, "stat") {
        Ok(stat) => {
            // `PID (COMM) STATE PPID ...`: COMM may hold spaces and
            // parentheses, so it ends at the last ')'.
            let comm = stat.find('(').zip(stat.rfind(')'));
            if let Some(name) = comm.and_then(|(l, r)| stat.get(l + 1..r)) {
                name.clone_into(&mut p.name);
            } else {
                odd("/proc/PID/stat has no (command name)".into());
            }
            match comm
                .and_then(|(_, r)| stat.get(r + 2..))
                .and_then(|rest| rest.split(' ').nth(1))
                .map(|v| (v, v.parse::<u32>()))
            {
                Some((_, Ok(ppid))) => p.ppid = ppid,
                Some((v, Err(_))) => {
                    odd(format!("/proc/PID/stat: parent pid {v:?} is not a number"))
                }
                None => odd("/proc/PID/stat has no parent pid".into()),
            }
        }
        Err(e) => odd(e.to_string()),
    }
    match read_text(pid, "status") {
        Ok(status) => {
            // The real id: the first of the four (real, effective, saved, fs).
            let id = |key: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|v| v.parse::<u32>().ok())
            };
            match id("Uid:") {
                Some(uid) => p.uid = uid,
                None => odd("/proc/PID/status has no readable Uid line".into()),
            }
            match id("Gid:") {
                Some(gid) => p.gid = gid,
                None => odd("/proc/PID/status has no readable Gid line".into()),
            }
        }
        Err(e) => odd(e.to_string()),
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmd) => {
            let args: Vec<String> = cmd
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            p.args = args.join(" ");
        }
        Err(e) => odd(format!("reading /proc/PID/cmdline: {e}")),
    }
    p
}

/// The whole range `[addr, addr + len)` of process `pid` through
/// `process_vm_readv`: one copy per byte, several times faster than
/// `/proc/PID/mem` on large regions. `None` when any part of it cannot be
/// read that way (inaccessible pages, which `/proc/PID/mem` reads; a
/// region that changed): the caller then reads it page by page.
#[cfg(target_os = "linux")]
fn read_vm(pid: u32, addr: u64, len: u64) -> Option<Vec<u8>> {
    use nix::sys::uio::{RemoteIoVec, process_vm_readv};
    let n = usize::try_from(len).ok()?;
    let base = usize::try_from(addr).ok()?;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).ok()?);
    let mut out = vec![0u8; n];
    let mut done = 0usize;
    while done < n {
        let chunk = (n - done).min(1 << 30);
        let dst = out.get_mut(done..done.checked_add(chunk)?)?;
        let remote = RemoteIoVec {
            base: base.checked_add(done)?,
            len: chunk,
        };
        let got = process_vm_readv(pid, &mut [std::io::IoSliceMut::new(dst)], &[remote]).ok()?;
        if got == 0 {
            return None;
        }
        done = done.checked_add(got)?;
    }
    Some(out)
}

#[cfg(not(target_os = "linux"))]
fn read_vm(_pid: u32, _addr: u64, _len: u64) -> Option<Vec<u8>> {
    None
}

/// Fill `buf` from `[addr, addr + buf.len())` of process `pid` with
/// `process_vm_readv`; false unless every byte was read.
#[cfg(target_os = "linux")]
fn read_vm_into(pid: u32, addr: u64, buf: &mut [u8]) -> bool {
    use nix::sys::uio::{RemoteIoVec, process_vm_readv};
    let (Ok(base), Ok(pid)) = (usize::try_from(addr), i32::try_from(pid)) else {
        return false;
    };
    let pid = nix::unistd::Pid::from_raw(pid);
    let mut done = 0usize;
    while done < buf.len() {
        let (Some(dst), Some(remote)) = (buf.get_mut(done..), base.checked_add(done)) else {
            return false;
        };
        let remote = RemoteIoVec {
            base: remote,
            len: dst.len(),
        };
        match process_vm_readv(pid, &mut [std::io::IoSliceMut::new(dst)], &[remote]) {
            Ok(0) | Err(_) => return false,
            Ok(got) => done = done.saturating_add(got),
        }
    }
    true
}

#[cfg(not(target_os = "linux"))]
fn read_vm_into(_pid: u32, _addr: u64, _buf: &mut [u8]) -> bool {
    false
}

/// Read `len` bytes at `addr` from `/proc/PID/mem`: the longest readable
/// prefix (reads stop at the first page that cannot be read).
fn read_range(mem: &std::fs::File, addr: u64, len: u64, page: u64) -> Vec<u8> {
    const CHUNK: u64 = 1 << 20;
    // One allocation for the whole range (the caller keeps `len` within its
    // read budget): growing the buffer chunk by chunk copied a large region
    // again at each doubling. The capacity is only a hint: a `len` past the
    // address space reserves nothing ahead and the loop below stops at the
    // first chunk that does not fit.
    let mut out: Vec<u8> = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(CHUNK);
        let Ok(n_usize) = usize::try_from(n) else {
            break;
        };
        let old = out.len();
        out.resize(old + n_usize, 0);
        let Some(buf) = out.get_mut(old..) else { break };
        match read_full(mem, buf, addr + done) {
            Some(got) if got == n_usize => done += n,
            _ => {
                // Retry page by page to keep what can be read.
                out.truncate(old);
                let mut a = addr + done;
                let end = addr + done + n;
                while a < end {
                    let p = page.min(end - a);
                    let Ok(p_usize) = usize::try_from(p) else {
                        break;
                    };
                    let o = out.len();
                    out.resize(o + p_usize, 0);
                    let ok = out
                        .get_mut(o..)
                        .and_then(|b| read_full(mem, b, a))
                        .is_some_and(|g| g == p_usize);
                    if !ok {
                        out.truncate(o);
                        return out;
                    }
                    a += p;
                }
                return out;
            }
        }
    }
    out
}

fn read_full(mem: &std::fs::File, buf: &mut [u8], addr: u64) -> Option<usize> {
    let mut got = 0usize;
    while got < buf.len() {
        match mem.read_at(buf.get_mut(got..)?, addr + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    Some(got)
}

/// Read process `pid` into a [`Dump`].
///
/// # Errors
/// When the process does not exist, cannot be attached (already traced,
/// no permission), or `/proc/PID/maps` cannot be read.
pub fn read(pid: u32, opts: &Options) -> Result<Dump<'static>> {
    read_deferring(pid, opts, None).map(|(d, _)| d)
}

/// The regions of a process [`read_deferring`] left unread, and the way to
/// read them: a [`PageSource`] for the state digest, which reads them 1 MiB
/// at a time on the threads that hash them. The process must stay stopped
/// until the digest is done (a restored tree held by `criu restore
/// --leave-stopped` does: detaching ptrace leaves it in its group stop).
#[derive(Debug, Clone, Default)]
pub struct Deferred {
    pid: u32,
    /// `(start, end)` of each region left unread.
    regions: std::collections::BTreeSet<(u64, u64)>,
}

impl Deferred {
    /// How many regions, and bytes in all, were left unread.
    #[must_use]
    pub fn totals(&self) -> (usize, u64) {
        (
            self.regions.len(),
            self.regions.iter().map(|(s, e)| e - s).sum(),
        )
    }
}

impl PageSource for Deferred {
    fn held(&self, start: u64, end: u64) -> Option<u64> {
        self.regions.contains(&(start, end)).then(|| end - start)
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        // Only inside a deferred region: never a read the caller did not
        // ask for at `read_deferring`.
        let len = buf.len() as u64;
        let inside = self
            .regions
            .range(..=(addr, u64::MAX))
            .next_back()
            .is_some_and(|&(s, e)| s <= addr && addr.checked_add(len).is_some_and(|x| x <= e));
        inside && read_vm_into(self.pid, addr, buf)
    }
}

/// [`read`], leaving unread the large private anonymous regions (at least
/// `defer_over` bytes, readable, not executable, no thread's stack
/// pointer in them: no code check and no flow check reads their bytes),
/// which the returned [`Deferred`] reads for the state digest. With `None`
/// every region is read, as by [`read`].
///
/// # Errors
/// As [`read`].
pub fn read_deferring(
    pid: u32,
    opts: &Options,
    defer_over: Option<u64>,
) -> Result<(Dump<'static>, Deferred)> {
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (pid, opts, defer_over);
        return Err(Error::LiveUnsupported);
    }
    #[cfg(target_os = "linux")]
    {
        read_linux(pid, opts, defer_over)
    }
}

#[cfg(target_os = "linux")]
fn read_linux(
    pid: u32,
    opts: &Options,
    defer_over: Option<u64>,
) -> Result<(Dump<'static>, Deferred)> {
    if pid == std::process::id() {
        return Err(Error::Unsupported(
            "talos cannot read its own process".into(),
        ));
    }
    let mem = std::fs::File::open(format!("/proc/{pid}/mem"))
        .map_err(proc_err(pid, "opening /proc/PID/mem"))?;
    let mut stopped = stop::Stopped { tids: Vec::new() };
    let t0 = Instant::now();
    if opts.stop {
        // Attach until no new thread appears (threads may be created while
        // attaching).
        for _ in 0..16 {
            let all = tasks(pid)?;
            let new: Vec<u32> = all
                .into_iter()
                .filter(|t| !stopped.tids.contains(t))
                .collect();
            if new.is_empty() {
                break;
            }
            for t in new {
                stopped
                    .attach(t)
                    .map_err(proc_err(pid, format!("attaching thread {t} with ptrace")))?;
            }
        }
    }
    let maps_text = read_text(pid, "maps")?;
    let (maps, bad) = parse_maps(&maps_text);
    // Without auxv the page size, the executable's program headers and the
    // vDSO are not known: an error, as for the maps.
    let auxv_raw = std::fs::read(format!("/proc/{pid}/auxv"))
        .map_err(proc_err(pid, "reading /proc/PID/auxv"))?;
    let mut d = Dump::new(Source::Live, host_arch());
    if bad > 0 {
        d.anomalies.push(Anomaly {
            code: "bad-maps-line",
            message: format!("{bad} lines of /proc/{pid}/maps did not parse"),
        });
    }
    // `(key, value)` pairs of native words, ended by `AT_NULL`.
    let (words, _) = auxv_raw.as_chunks::<8>();
    for pair in words.chunks_exact(2) {
        let [k, v] = pair else { break };
        let (k, v) = (u64::from_le_bytes(*k), u64::from_le_bytes(*v));
        if k == 0 {
            break;
        }
        d.auxv.push((k, v));
    }
    if let Some(ps) = d.auxv_get(at::PAGESZ).filter(|p| p.is_power_of_two()) {
        d.page_size = ps;
    }
    let mut threads = Vec::new();
    for &t in &stopped.tids {
        if let Some(regs) = stopped.regs(t) {
            threads.push(Thread {
                tid: t,
                signal: 0,
                regs,
            });
        } else {
            d.unread_threads.push(UnreadThread {
                tid: Some(t),
                why: UnreadWhy::Unreadable,
                what: format!("thread {t}: its registers could not be read with ptrace"),
            });
        }
    }
    if !opts.stop {
        // Read while running: the threads exist, their registers were not
        // read.
        // The thread list must be known: a thread missing from it would be
        // missing from the unread threads too.
        for t in tasks(pid)? {
            d.unread_threads.push(UnreadThread {
                tid: Some(t),
                why: UnreadWhy::Unreadable,
                what: format!(
                    "thread {t}: the process was read while running (--no-stop), so no registers were read"
                ),
            });
        }
    }
    let mut budget = opts.max_bytes;
    let mut deferred = Deferred {
        pid,
        regions: std::collections::BTreeSet::new(),
    };
    let sps: Vec<u64> = threads.iter().filter_map(|t| t.regs.sp()).collect();
    let mut unread: Vec<String> = Vec::new();
    let mut over_budget = 0u64;
    for e in &maps {
        let kind = kind_of(e);
        let len = e.end - e.start;
        // Inaccessible anonymous memory (thread-stack guard pages, reserved
        // arenas) is read too: `/proc/PID/mem` may (FOLL_FORCE), and kernel
        // cores, gdb cores and CRIU images all hold those pages, so the
        // state digest of a live read must as well.
        let anonymous = matches!(
            kind,
            RegionKind::Anonymous | RegionKind::Heap | RegionKind::Stack
        );
        let readable =
            (e.perms.read || anonymous) && !matches!(kind, RegionKind::Vvar | RegionKind::Vsyscall);
        let defer = opts.stop
            && defer_over.is_some_and(|min| len >= min)
            && matches!(kind, RegionKind::Anonymous | RegionKind::Heap)
            && e.perms.read
            && !e.perms.execute
            && !sps.iter().any(|&sp| e.start <= sp && sp < e.end);
        let bytes = if defer && len <= budget {
            budget -= len;
            deferred.regions.insert((e.start, e.end));
            Vec::new()
        } else if readable && len <= budget {
            let fast = if e.perms.read {
                read_vm(pid, e.start, len)
            } else {
                None
            };
            let b = fast.unwrap_or_else(|| read_range(&mem, e.start, len, d.page_size));
            if (b.len() as u64) < len {
                unread.push(format!(
                    "{:#x}-{:#x} {} {}: read {} of {} bytes",
                    e.start,
                    e.end,
                    e.perms,
                    if e.name.is_empty() {
                        "anonymous"
                    } else {
                        &e.name
                    },
                    b.len(),
                    len
                ));
            }
            budget -= b.len() as u64;
            b
        } else {
            if readable {
                over_budget += len;
            }
            Vec::new()
        };
        if let RegionKind::File { path, offset } = &kind {
            d.file_mappings.push(FileMapping {
                start: e.start,
                end: e.end,
                offset: *offset,
                path: path.clone(),
            });
        }
        d.regions.push(Region {
            start: e.start,
            end: e.end,
            perms: e.perms,
            kind,
            bytes: Cow::Owned(bytes),
        });
    }
    let stopped_for = t0.elapsed();
    let attached = stopped.tids.len();
    drop(stopped);
    d.threads = threads;
    d.process = Some(process_info(pid, &mut d.anomalies));
    if opts.stop {
        d.notes.push(format!(
            "live process {pid}: {attached} thread(s) stopped with ptrace for {:.1} ms while maps, registers and {} bytes of memory were read, then resumed",
            stopped_for.as_secs_f64() * 1000.0,
            d.bytes_held()
        ));
    } else {
        d.notes.push(format!(
            "live process {pid} read while running (not stopped): memory may be inconsistent and no registers were read"
        ));
    }
    for u in unread.iter().take(16) {
        d.notes.push(format!("not fully readable: {u}"));
    }
    if unread.len() > 16 {
        d.notes.push(format!(
            "{} more mappings not fully readable",
            unread.len() - 16
        ));
    }
    if over_budget > 0 {
        d.anomaly(
            "read-budget",
            format!(
                "{over_budget} bytes of readable memory were not read: the {} byte budget was spent",
                opts.max_bytes
            ),
        );
    }
    let (n, bytes) = deferred.totals();
    if n > 0 {
        d.notes.push(format!(
            "{n} large anonymous region(s), {bytes} bytes, left to be read by the state digest in 1 MiB pieces"
        ));
    }
    d.regions.sort_by_key(|r| r.start);
    d.file_mappings.sort();
    Ok((d, deferred))
}

/// The bytes of this process's own `[vdso]` (the running kernel's vDSO
/// image), read from `/proc/self/mem`; `None` when there is none or it
/// cannot be read.
#[must_use]
pub fn host_vdso() -> Option<Vec<u8>> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let (entries, _) = parse_maps(&maps);
    let e = entries.iter().find(|e| e.name == "[vdso]")?;
    let mem = std::fs::File::open("/proc/self/mem").ok()?;
    let len = e.end - e.start;
    let bytes = read_range(&mem, e.start, len, 4096);
    (bytes.len() as u64 == len).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_maps_lines() {
        let text = "\
563e7c343000-563e7c344000 r--p 00000000 fe:00 10011059                   /tmp/sk
563e7c344000-563e7c345000 r-xp 00001000 fe:00 10011059                   /tmp/a b (deleted)
7f17fedff000-7f17fee00000 ---p 00000000 00:00 0 
7f18003f3000-7f18003f7000 r--p 00000000 00:00 0                          [vvar]
garbage
";
        let (m, bad) = parse_maps(text);
        assert_eq!(bad, 1);
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].name, "/tmp/a b (deleted)");
        assert_eq!(m[1].offset, 0x1000);
        assert!(m[1].perms.execute);
        assert_eq!(m[2].name, "");
        assert_eq!(kind_of(&m[3]), RegionKind::Vvar);
        assert_eq!(
            kind_of(&m[0]),
            RegionKind::File {
                path: "/tmp/sk".into(),
                offset: 0
            }
        );
    }
}
