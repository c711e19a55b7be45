//! Caps that make a crafted input cheap to reject. Each is far above what
//! real binaries need (the largest Debian binaries have ~10^5 symbols and
//! ~10^6 relocations) and low enough to bound memory and time.

/// `PT_LOAD` segments accepted.
pub const MAX_SEGMENTS: usize = 4096;
/// Symbols read from one symbol table.
pub const MAX_SYMBOLS: usize = 4_000_000;
/// Relocations examined per table.
pub const MAX_RELOCATIONS: usize = 8_000_000;
/// Dynamic-section entries examined.
pub const MAX_DYNAMIC: usize = 65_536;
/// Notes examined when looking for the build-id.
pub const MAX_NOTES: usize = 4096;
/// Init/fini array entries read per array.
pub const MAX_INIT_FINI: usize = 1_000_000;
/// `.eh_frame` records examined.
pub const MAX_EH_RECORDS: usize = 4_000_000;
/// Entries of one jump table.
pub const MAX_JUMP_TABLE_ENTRIES: u64 = 65_536;
/// Instructions decoded for one function before the function is cut short
/// and reported as too large.
pub const MAX_FUNCTION_INSTRUCTIONS: usize = 2_000_000;
/// Rounds of the noreturn fixpoint (each round only grows the set).
pub const MAX_NORETURN_ROUNDS: usize = 16;
/// Rounds of gap analysis.
pub const MAX_GAP_ROUNDS: usize = 16;
/// Instructions the gap sweep may explore, per byte of a gap, for
/// candidates it rejects, before it stops sweeping that gap (plus
/// [`GAP_WORK_FLOOR`]). No corpus binary, nor node, LLVM, glibc for three
/// architectures, reaches it; a flipped bit in a stripped pcre2 that shifts
/// its read-only data made 4 million rejected instructions (2.5 s) of a
/// 0.5 MB binary without it.
pub const GAP_WORK_PER_BYTE: u64 = 1;
/// Rejected instructions every gap may explore, whatever its size.
pub const GAP_WORK_FLOOR: u64 = 32_768;
/// Rounds of re-decoding functions that run into entries found later.
pub const MAX_CONSISTENCY_ROUNDS: usize = 8;
