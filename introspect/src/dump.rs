//! The dump model: what any input (ELF core, CRIU image directory, raw
//! image, live process) says
//! about a process, keyed by virtual address.
//!
//! A [`Dump`] borrows its bytes from the input where it can (a mapped core
//! file) and owns them where it must (a live process).

use std::borrow::Cow;

use serde::Serialize;
pub use talos_cfg::Arch;

use crate::region::{Perms, Region, RegionKind};

/// Where a dump came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// An ELF core written by the Linux kernel (a crash or `SIGQUIT`).
    Kernel,
    /// An ELF core written by gdb's `gcore` (or `generate-core-file`).
    Gdb,
    /// An ELF core written by `talos snapshot`.
    Snapshot,
    /// A raw memory image at a given base address.
    Raw,
    /// A live process read through `/proc/PID/mem`.
    Live,
    /// A CRIU image directory (`criu dump -D DIR`).
    Criu,
}

impl Source {
    /// The name used in outputs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Source::Kernel => "kernel",
            Source::Gdb => "gdb",
            Source::Snapshot => "snapshot",
            Source::Raw => "raw",
            Source::Live => "live",
            Source::Criu => "criu",
        }
    }
}

/// The registers of one thread, in the order the kernel stores them in
/// `NT_PRSTATUS` (`user_regs_struct` on x86-64, `user_pt_regs` on AArch64,
/// `user_regs_struct` on RISC-V).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registers {
    /// Architecture the layout belongs to.
    pub arch: Arch,
    /// The register words.
    pub words: Vec<u64>,
}

/// x86-64 `user_regs_struct` names, in order.
pub const X86_64_REGS: [&str; 27] = [
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi",
    "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs",
    "gs",
];

/// AArch64 `user_pt_regs` names, in order.
pub const AARCH64_REGS: [&str; 34] = [
    "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14",
    "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27",
    "x28", "x29", "x30", "sp", "pc", "pstate",
];

/// RISC-V 64 `user_regs_struct` names, in order.
pub const RISCV64_REGS: [&str; 32] = [
    "pc", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5",
    "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5",
    "t6",
];

/// Register names of `arch` in `NT_PRSTATUS` order; empty when talos does not
/// know the layout.
#[must_use]
pub fn register_names(arch: Arch) -> &'static [&'static str] {
    match arch {
        Arch::X86_64 => &X86_64_REGS,
        Arch::Aarch64 => &AARCH64_REGS,
        Arch::Riscv64 => &RISCV64_REGS,
        Arch::X86 => &[],
    }
}

impl Registers {
    fn word(&self, i: usize) -> Option<u64> {
        self.words.get(i).copied()
    }

    /// Index of the register with `name`.
    fn index_of(&self, name: &str) -> Option<usize> {
        register_names(self.arch).iter().position(|n| *n == name)
    }

    /// A register by its name (`rip`, `x29`, `sp`, ...).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<u64> {
        self.word(self.index_of(name)?)
    }

    /// The program counter.
    #[must_use]
    pub fn pc(&self) -> Option<u64> {
        match self.arch {
            Arch::X86_64 => self.word(16),
            Arch::Aarch64 => self.word(32),
            Arch::Riscv64 => self.word(0),
            Arch::X86 => None,
        }
    }

    /// The stack pointer.
    #[must_use]
    pub fn sp(&self) -> Option<u64> {
        match self.arch {
            Arch::X86_64 => self.word(19),
            Arch::Aarch64 => self.word(31),
            Arch::Riscv64 => self.word(2),
            Arch::X86 => None,
        }
    }

    /// The thread pointer (`fs_base` on x86-64, `tp` on RISC-V); AArch64
    /// keeps `tpidr_el0` outside `NT_PRSTATUS`.
    #[must_use]
    pub fn thread_pointer(&self) -> Option<u64> {
        match self.arch {
            Arch::X86_64 => self.word(21),
            Arch::Riscv64 => self.word(4),
            Arch::Aarch64 | Arch::X86 => None,
        }
    }

    /// The register with DWARF number `reg` (the numbering `.eh_frame` uses).
    #[must_use]
    pub fn dwarf(&self, reg: u16) -> Option<u64> {
        self.word(dwarf_index(self.arch, reg)?)
    }

    /// Set the register with DWARF number `reg`; false when it has no slot.
    pub fn set_dwarf(&mut self, reg: u16, value: u64) -> bool {
        match dwarf_index(self.arch, reg).and_then(|i| self.words.get_mut(i)) {
            Some(w) => {
                *w = value;
                true
            }
            None => false,
        }
    }

    /// Set the program counter; false when the layout has no slot for it.
    pub fn set_pc(&mut self, value: u64) -> bool {
        let i = match self.arch {
            Arch::X86_64 => 16,
            Arch::Aarch64 => 32,
            Arch::Riscv64 => 0,
            Arch::X86 => return false,
        };
        match self.words.get_mut(i) {
            Some(w) => {
                *w = value;
                true
            }
            None => false,
        }
    }

    /// Set the stack pointer; false when the layout has no slot for it.
    pub fn set_sp(&mut self, value: u64) -> bool {
        let reg = Registers::dwarf_sp(self.arch);
        self.set_dwarf(reg, value)
    }

    /// DWARF number of the stack pointer.
    #[must_use]
    pub fn dwarf_sp(arch: Arch) -> u16 {
        match arch {
            Arch::X86_64 => 7,
            Arch::Aarch64 => 31,
            Arch::Riscv64 => 2,
            Arch::X86 => 4,
        }
    }

    /// DWARF number of the program counter (or of the return-address column).
    #[must_use]
    pub fn dwarf_pc(arch: Arch) -> u16 {
        match arch {
            Arch::X86_64 => 16,
            Arch::Aarch64 => 32,
            Arch::Riscv64 => 0,
            Arch::X86 => 8,
        }
    }

    /// Named registers, for output.
    #[must_use]
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        register_names(self.arch)
            .iter()
            .zip(self.words.iter())
            .map(|(n, v)| (*n, *v))
            .collect()
    }
}

/// Word index in `NT_PRSTATUS` order of DWARF register `reg`.
#[must_use]
pub fn dwarf_index(arch: Arch, reg: u16) -> Option<usize> {
    match arch {
        // DWARF x86-64: rax rdx rcx rbx rsi rdi rbp rsp r8..r15 rip(16)
        Arch::X86_64 => {
            const MAP: [usize; 17] = [10, 12, 11, 5, 13, 14, 4, 19, 9, 8, 7, 6, 3, 2, 1, 0, 16];
            MAP.get(usize::from(reg)).copied()
        }
        // x0..x30 = 0..30, sp = 31; 32 is used here for the pc.
        Arch::Aarch64 => (reg <= 32).then_some(usize::from(reg)),
        // x1..x31 = 1..31 sit at the same index; x0 is hardwired zero and
        // index 0 holds the pc.
        Arch::Riscv64 => (reg <= 31).then_some(usize::from(reg)),
        Arch::X86 => None,
    }
}

/// One thread of the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    /// Thread id (`pr_pid` of its `NT_PRSTATUS`).
    pub tid: u32,
    /// The signal the thread was stopped by (`pr_cursig`), 0 when none.
    pub signal: u16,
    /// Its registers.
    pub regs: Registers,
}

/// Why a thread the input shows could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnreadWhy {
    /// Its `NT_PRSTATUS` is malformed (too short for the registers).
    Malformed,
    /// It has per-thread register notes (`NT_FPREGSET`) but no
    /// `NT_PRSTATUS`: its general registers are not in the input.
    NoPrstatus,
    /// More threads than talos reads.
    Cap,
    /// A live thread whose registers could not be read (ptrace failed, or
    /// the process was read without stopping it).
    Unreadable,
}

/// A thread the input shows but whose registers talos could not read: its
/// execution flow cannot be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadThread {
    /// Its id, when the input gives one.
    pub tid: Option<u32>,
    /// Why.
    pub why: UnreadWhy,
    /// What exactly, for people (names the note and its offset).
    pub what: String,
}

impl Thread {
    /// Program counter.
    #[must_use]
    pub fn pc(&self) -> Option<u64> {
        self.regs.pc()
    }

    /// Stack pointer.
    #[must_use]
    pub fn sp(&self) -> Option<u64> {
        self.regs.sp()
    }

    /// Thread pointer (`fs_base` on x86-64).
    #[must_use]
    pub fn fs_base(&self) -> Option<u64> {
        self.regs.thread_pointer()
    }
}

/// A file mapping as the dump lists it (`NT_FILE`, `/proc/PID/maps`). This
/// lists every file-backed mapping, including those whose bytes the dump
/// left out (gdb omits them from the program headers altogether).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileMapping {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Byte offset in the file of `start`.
    pub offset: u64,
    /// The path (may end in " (deleted)").
    pub path: String,
}

impl FileMapping {
    /// Whether the file was deleted after it was mapped.
    #[must_use]
    pub fn deleted(&self) -> bool {
        self.path.ends_with(" (deleted)")
    }

    /// The path without a " (deleted)" suffix.
    #[must_use]
    pub fn clean_path(&self) -> &str {
        self.path.strip_suffix(" (deleted)").unwrap_or(&self.path)
    }
}

/// What `NT_PRPSINFO` (or `/proc/PID/stat`) says about the process.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Real user id.
    pub uid: u32,
    /// Real group id.
    pub gid: u32,
    /// Command name (up to 15 bytes).
    pub name: String,
    /// The start of the command line (up to 80 bytes in a core).
    pub args: String,
}

/// Something odd in the input; reading went on around it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Anomaly {
    /// Stable kebab-case kind (`truncated-segment`, `malformed-note`, ...).
    pub code: &'static str,
    /// What exactly, for people.
    pub message: String,
}

/// `auxv` keys talos uses.
pub mod at {
    /// Address of the program headers of the executable.
    pub const PHDR: u64 = 3;
    /// Size of a program header entry.
    pub const PHENT: u64 = 4;
    /// Number of program headers.
    pub const PHNUM: u64 = 5;
    /// Page size.
    pub const PAGESZ: u64 = 6;
    /// Base address of the interpreter (ld.so).
    pub const BASE: u64 = 7;
    /// Entry point of the executable.
    pub const ENTRY: u64 = 9;
    /// Address of 16 random bytes.
    pub const RANDOM: u64 = 25;
    /// Address of the executable's file name string.
    pub const EXECFN: u64 = 31;
    /// Address of the vDSO ELF header.
    pub const SYSINFO_EHDR: u64 = 33;
}

/// Address of the legacy `[vsyscall]` page on x86-64.
pub const VSYSCALL_ADDR: u64 = 0xffff_ffff_ff60_0000;

/// A process's memory and threads, as one input recorded them.
#[derive(Debug, Clone)]
pub struct Dump<'a> {
    /// Where it came from.
    pub source: Source,
    /// The architecture (`e_machine` of the core).
    pub arch: Arch,
    /// Mappings sorted by address, non-overlapping, with the bytes the input
    /// holds for them.
    pub regions: Vec<Region<'a>>,
    /// Threads in the order the input lists them (the first is normally the
    /// one that received the signal, or the main thread).
    pub threads: Vec<Thread>,
    /// The auxiliary vector (`NT_AUXV`), without the terminating `AT_NULL`.
    pub auxv: Vec<(u64, u64)>,
    /// File mappings, sorted by address.
    pub file_mappings: Vec<FileMapping>,
    /// Process information, when the input has it.
    pub process: Option<ProcessInfo>,
    /// The signal that ended the process (`NT_SIGINFO` `si_signo`), if any.
    pub signal: Option<i32>,
    /// Page size (`AT_PAGESZ`, else 4096).
    pub page_size: u64,
    /// Threads the input shows whose registers could not be read.
    pub unread_threads: Vec<UnreadThread>,
    /// Oddities met while reading.
    pub anomalies: Vec<Anomaly>,
    /// Free-form facts about acquisition (live reads: how long the process
    /// was stopped, which ranges could not be read).
    pub notes: Vec<String>,
}

impl<'a> Dump<'a> {
    /// An empty dump of `source` for `arch`.
    #[must_use]
    pub fn new(source: Source, arch: Arch) -> Self {
        Dump {
            source,
            arch,
            regions: Vec::new(),
            threads: Vec::new(),
            auxv: Vec::new(),
            file_mappings: Vec::new(),
            process: None,
            signal: None,
            page_size: 4096,
            unread_threads: Vec::new(),
            anomalies: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// A raw memory image: one region of `perms` at `base`.
    #[must_use]
    pub fn from_raw(bytes: &'a [u8], base: u64, perms: Perms, arch: Arch) -> Self {
        let mut d = Dump::new(Source::Raw, arch);
        let end = base.saturating_add(bytes.len() as u64);
        let kept = usize::try_from(end - base).unwrap_or(bytes.len());
        if (end - base) < bytes.len() as u64 {
            d.anomalies.push(Anomaly {
                code: "raw-overflow",
                message: format!(
                    "raw image of {} bytes at {base:#x} runs past the end of the address space; kept {kept} bytes",
                    bytes.len()
                ),
            });
        }
        d.regions.push(Region {
            start: base,
            end,
            perms,
            kind: RegionKind::Other {
                name: "raw".to_string(),
            },
            bytes: Cow::Borrowed(bytes.get(..kept).unwrap_or(bytes)),
        });
        d
    }

    /// Value of auxv entry `key`.
    #[must_use]
    pub fn auxv_get(&self, key: u64) -> Option<u64> {
        self.auxv.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// The region whose address range holds `addr`.
    #[must_use]
    pub fn region_containing(&self, addr: u64) -> Option<&Region<'a>> {
        let idx = self.regions.partition_point(|r| r.start <= addr);
        let r = self.regions.get(idx.checked_sub(1)?)?;
        (addr < r.end).then_some(r)
    }

    /// The file mapping whose range holds `addr`.
    #[must_use]
    pub fn file_mapping_containing(&self, addr: u64) -> Option<&FileMapping> {
        let idx = self.file_mappings.partition_point(|m| m.start <= addr);
        let m = self.file_mappings.get(idx.checked_sub(1)?)?;
        (addr < m.end).then_some(m)
    }

    /// The bytes at `[addr, addr + len)` when one region holds all of them.
    #[must_use]
    pub fn read(&self, addr: u64, len: u64) -> Option<&[u8]> {
        let r = self.region_containing(addr)?;
        let off = usize::try_from(addr.checked_sub(r.start)?).ok()?;
        let end = off.checked_add(usize::try_from(len).ok()?)?;
        r.bytes.get(off..end)
    }

    /// A little-endian u64 at `addr`.
    #[must_use]
    pub fn read_u64(&self, addr: u64) -> Option<u64> {
        let b = self.read(addr, 8)?;
        let arr: [u8; 8] = b.try_into().ok()?;
        Some(u64::from_le_bytes(arr))
    }

    /// Pointer size of the architecture in bytes.
    #[must_use]
    pub fn pointer_size(&self) -> u8 {
        self.arch.pointer_size()
    }

    /// A pointer-sized little-endian value at `addr`.
    #[must_use]
    pub fn read_ptr(&self, addr: u64) -> Option<u64> {
        if self.pointer_size() == 4 {
            let b = self.read(addr, 4)?;
            let arr: [u8; 4] = b.try_into().ok()?;
            Some(u64::from(u32::from_le_bytes(arr)))
        } else {
            self.read_u64(addr)
        }
    }

    /// Total bytes the input holds.
    #[must_use]
    pub fn bytes_held(&self) -> u64 {
        self.regions.iter().map(|r| r.bytes.len() as u64).sum()
    }

    /// Record an anomaly.
    pub fn anomaly(&mut self, code: &'static str, message: impl Into<String>) {
        self.anomalies.push(Anomaly {
            code,
            message: message.into(),
        });
    }

    /// Name the special regions once regions, file mappings and auxv are
    /// known: file mappings, `[vdso]` (from `AT_SYSINFO_EHDR`), `[vvar]`
    /// (the data pages right below it), `[vsyscall]`, and the main `[stack]`
    /// (the region holding `AT_EXECFN`'s string, or the first thread's stack
    /// pointer).
    pub fn classify_regions(&mut self) {
        let vdso = self.auxv_get(at::SYSINFO_EHDR).filter(|&v| v != 0);
        let stack_anchor = self
            .auxv_get(at::EXECFN)
            .filter(|&v| v != 0)
            .or_else(|| self.threads.first().and_then(Thread::sp));
        let maps = std::mem::take(&mut self.file_mappings);
        for r in &mut self.regions {
            if !matches!(r.kind, RegionKind::Anonymous) {
                continue;
            }
            let idx = maps.partition_point(|m| m.start <= r.start);
            if let Some(m) = idx.checked_sub(1).and_then(|i| maps.get(i))
                && r.start < m.end
            {
                r.kind = RegionKind::File {
                    path: m.path.clone(),
                    offset: m.offset.saturating_add(r.start - m.start),
                };
            } else if Some(r.start) == vdso {
                r.kind = RegionKind::Vdso;
            } else if r.start == VSYSCALL_ADDR && self.arch == Arch::X86_64 {
                r.kind = RegionKind::Vsyscall;
            } else if stack_anchor.is_some_and(|a| a >= r.start && a < r.end) {
                r.kind = RegionKind::Stack;
            }
        }
        self.file_mappings = maps;
        // [vvar] and [vvar_vclock]: read-only, not file-backed, directly
        // below the vDSO.
        if let Some(v) = vdso
            && let Some(i) = self.regions.iter().position(|r| r.start == v)
        {
            let mut next_start = v;
            for j in (0..i).rev().take(2) {
                let Some(r) = self.regions.get_mut(j) else {
                    break;
                };
                if r.end != next_start
                    || !matches!(r.kind, RegionKind::Anonymous)
                    || r.perms.write
                    || r.perms.execute
                {
                    break;
                }
                r.kind = RegionKind::Vvar;
                next_start = r.start;
            }
        }
    }
}
