//! The memory model every input is turned into: regions of a process's
//! address space, keyed by virtual address, with the bytes the input holds
//! for them.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Access permissions of a mapping.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Perms {
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub execute: bool,
}

impl Perms {
    /// Parse `r-x`, `rw-`, `rwxp` style strings (the fourth letter of
    /// `/proc/PID/maps` is ignored).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let flag = |i: usize, c: u8| match b.get(i) {
            Some(&x) if x == c => Some(true),
            Some(b'-') => Some(false),
            _ => None,
        };
        Some(Perms {
            read: flag(0, b'r')?,
            write: flag(1, b'w')?,
            execute: flag(2, b'x')?,
        })
    }
}

impl std::fmt::Display for Perms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = if self.read { 'r' } else { '-' };
        let w = if self.write { 'w' } else { '-' };
        let x = if self.execute { 'x' } else { '-' };
        write!(f, "{r}{w}{x}")
    }
}

/// What backs a region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum RegionKind {
    /// Anonymous memory (heap arenas, mmap(MAP_ANONYMOUS), thread stacks).
    Anonymous,
    /// A file mapping: the path as recorded by the dump and the file offset
    /// of the region's first byte.
    File {
        /// Path (may end in " (deleted)").
        path: String,
        /// Byte offset in the file of `start`.
        offset: u64,
    },
    /// The main thread's stack (`[stack]`).
    Stack,
    /// The `brk` heap (`[heap]`).
    Heap,
    /// The kernel's virtual DSO (`[vdso]`).
    Vdso,
    /// The vDSO data pages (`[vvar]`, `[vvar_vclock]`).
    Vvar,
    /// The legacy `[vsyscall]` page.
    Vsyscall,
    /// Anything else the source names (`[uprobes]`, ...).
    Other {
        /// The name.
        name: String,
    },
}

/// One mapping of the address space `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region<'a> {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Protections.
    pub perms: Perms,
    /// What backs it.
    pub kind: RegionKind,
    /// The bytes the input holds for `[start, start + bytes.len())`: borrowed
    /// from a mapped dump, or owned when read from a live process. Shorter
    /// than the region when the dump left the rest out (`p_filesz <
    /// p_memsz`); empty when it holds none.
    pub bytes: Cow<'a, [u8]>,
}

impl Region<'_> {
    /// Length of the mapping.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the mapping is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether the input holds every byte of the region.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.bytes.len() as u64 == self.len()
    }
}
