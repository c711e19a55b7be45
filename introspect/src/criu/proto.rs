//! The CRIU image messages talos reads, written by hand from CRIU 4.2's
//! `images/*.proto` (MIT licensed) with `prost` derive macros: no protoc,
//! no build script.
//!
//! Only the fields talos uses are declared; prost skips the others, so an
//! image written by a newer CRIU with more fields still decodes. Every field
//! is declared `optional`, even those the `.proto` marks `required`, so that
//! a missing field is seen (`None`) and reported instead of read as zero.
//! Field numbers and wire types are those of the 4.2 sources; the file
//! named in each comment is where they come from.
#![allow(missing_docs)] // the names are CRIU's; the comments say which file defines them

use prost::Message;

/// `inventory.proto`: `inventory_entry`.
#[derive(Clone, PartialEq, Message)]
pub struct InventoryEntry {
    #[prost(uint32, optional, tag = "1")]
    pub img_version: Option<u32>,
    #[prost(bool, optional, tag = "2")]
    pub fdinfo_per_id: Option<bool>,
    #[prost(bool, optional, tag = "4")]
    pub ns_per_id: Option<bool>,
    #[prost(uint32, optional, tag = "9")]
    pub pre_dump_mode: Option<u32>,
}

/// `pstree.proto`: `pstree_entry`.
#[derive(Clone, PartialEq, Message)]
pub struct PstreeEntry {
    #[prost(uint32, optional, tag = "1")]
    pub pid: Option<u32>,
    #[prost(uint32, optional, tag = "2")]
    pub ppid: Option<u32>,
    #[prost(uint32, optional, tag = "3")]
    pub pgid: Option<u32>,
    #[prost(uint32, optional, tag = "4")]
    pub sid: Option<u32>,
    #[prost(uint32, repeated, packed = "false", tag = "5")]
    pub threads: Vec<u32>,
}

/// `pagemap.proto`: `pagemap_head`.
#[derive(Clone, PartialEq, Message)]
pub struct PagemapHead {
    #[prost(uint32, optional, tag = "1")]
    pub pages_id: Option<u32>,
}

/// `pagemap.proto`: `pagemap_entry`. CRIU 4.x writes the page count in
/// `nr_pages` (field 5, u64) and leaves `compat_nr_pages` (field 2) zero;
/// older images have only field 2.
#[derive(Clone, PartialEq, Message)]
pub struct PagemapEntry {
    #[prost(uint64, optional, tag = "1")]
    pub vaddr: Option<u64>,
    #[prost(uint32, optional, tag = "2")]
    pub compat_nr_pages: Option<u32>,
    #[prost(bool, optional, tag = "3")]
    pub in_parent: Option<bool>,
    #[prost(uint32, optional, tag = "4")]
    pub flags: Option<u32>,
    #[prost(uint64, optional, tag = "5")]
    pub nr_pages: Option<u64>,
}

/// `vma.proto`: `vma_entry`.
#[derive(Clone, PartialEq, Message)]
pub struct VmaEntry {
    #[prost(uint64, optional, tag = "1")]
    pub start: Option<u64>,
    #[prost(uint64, optional, tag = "2")]
    pub end: Option<u64>,
    #[prost(uint64, optional, tag = "3")]
    pub pgoff: Option<u64>,
    #[prost(uint64, optional, tag = "4")]
    pub shmid: Option<u64>,
    #[prost(uint32, optional, tag = "5")]
    pub prot: Option<u32>,
    #[prost(uint32, optional, tag = "6")]
    pub flags: Option<u32>,
    #[prost(uint32, optional, tag = "7")]
    pub status: Option<u32>,
}

/// `mm.proto`: `mm_entry`.
#[derive(Clone, PartialEq, Message)]
pub struct MmEntry {
    #[prost(uint64, optional, tag = "1")]
    pub mm_start_code: Option<u64>,
    #[prost(uint64, optional, tag = "2")]
    pub mm_end_code: Option<u64>,
    #[prost(uint64, optional, tag = "5")]
    pub mm_start_stack: Option<u64>,
    #[prost(uint64, optional, tag = "6")]
    pub mm_start_brk: Option<u64>,
    #[prost(uint64, optional, tag = "7")]
    pub mm_brk: Option<u64>,
    #[prost(uint32, optional, tag = "12")]
    pub exe_file_id: Option<u32>,
    /// Flattened `auxv_t` pairs: key, value, key, value...
    #[prost(uint64, repeated, packed = "false", tag = "13")]
    pub mm_saved_auxv: Vec<u64>,
    #[prost(message, repeated, tag = "14")]
    pub vmas: Vec<VmaEntry>,
}

/// `fown.proto`: `fown_entry` (not read; declared so `reg_file_entry`
/// keeps its shape).
#[derive(Clone, PartialEq, Message)]
pub struct FownEntry {
    #[prost(uint32, optional, tag = "1")]
    pub uid: Option<u32>,
}

/// `regfile.proto`: `reg_file_entry`.
#[derive(Clone, PartialEq, Message)]
pub struct RegFileEntry {
    #[prost(uint32, optional, tag = "1")]
    pub id: Option<u32>,
    #[prost(uint32, optional, tag = "2")]
    pub flags: Option<u32>,
    #[prost(string, optional, tag = "6")]
    pub name: Option<String>,
    #[prost(uint64, optional, tag = "8")]
    pub size: Option<u64>,
    #[prost(uint32, optional, tag = "10")]
    pub mode: Option<u32>,
    /// The file's GNU build-id as little-endian 32-bit words, when CRIU
    /// could read one (its default file validation method).
    #[prost(uint32, repeated, packed = "false", tag = "11")]
    pub build_id: Vec<u32>,
}

/// `fdinfo.proto`: `file_entry` (only regular files are read).
#[derive(Clone, PartialEq, Message)]
pub struct FileEntry {
    /// `fd_types`: 1 is `REG`.
    #[prost(int32, optional, tag = "1")]
    pub r#type: Option<i32>,
    #[prost(uint32, optional, tag = "2")]
    pub id: Option<u32>,
    #[prost(message, optional, tag = "3")]
    pub reg: Option<RegFileEntry>,
}

/// `core-x86.proto`: `user_x86_regs_entry`, in `user_regs_struct` order.
#[derive(Clone, PartialEq, Message)]
pub struct UserX86RegsEntry {
    #[prost(uint64, optional, tag = "1")]
    pub r15: Option<u64>,
    #[prost(uint64, optional, tag = "2")]
    pub r14: Option<u64>,
    #[prost(uint64, optional, tag = "3")]
    pub r13: Option<u64>,
    #[prost(uint64, optional, tag = "4")]
    pub r12: Option<u64>,
    #[prost(uint64, optional, tag = "5")]
    pub bp: Option<u64>,
    #[prost(uint64, optional, tag = "6")]
    pub bx: Option<u64>,
    #[prost(uint64, optional, tag = "7")]
    pub r11: Option<u64>,
    #[prost(uint64, optional, tag = "8")]
    pub r10: Option<u64>,
    #[prost(uint64, optional, tag = "9")]
    pub r9: Option<u64>,
    #[prost(uint64, optional, tag = "10")]
    pub r8: Option<u64>,
    #[prost(uint64, optional, tag = "11")]
    pub ax: Option<u64>,
    #[prost(uint64, optional, tag = "12")]
    pub cx: Option<u64>,
    #[prost(uint64, optional, tag = "13")]
    pub dx: Option<u64>,
    #[prost(uint64, optional, tag = "14")]
    pub si: Option<u64>,
    #[prost(uint64, optional, tag = "15")]
    pub di: Option<u64>,
    #[prost(uint64, optional, tag = "16")]
    pub orig_ax: Option<u64>,
    #[prost(uint64, optional, tag = "17")]
    pub ip: Option<u64>,
    #[prost(uint64, optional, tag = "18")]
    pub cs: Option<u64>,
    #[prost(uint64, optional, tag = "19")]
    pub flags: Option<u64>,
    #[prost(uint64, optional, tag = "20")]
    pub sp: Option<u64>,
    #[prost(uint64, optional, tag = "21")]
    pub ss: Option<u64>,
    #[prost(uint64, optional, tag = "22")]
    pub fs_base: Option<u64>,
    #[prost(uint64, optional, tag = "23")]
    pub gs_base: Option<u64>,
    #[prost(uint64, optional, tag = "24")]
    pub ds: Option<u64>,
    #[prost(uint64, optional, tag = "25")]
    pub es: Option<u64>,
    #[prost(uint64, optional, tag = "26")]
    pub fs: Option<u64>,
    #[prost(uint64, optional, tag = "27")]
    pub gs: Option<u64>,
    /// `user_x86_regs_mode`: 1 native (64-bit), 2 compat (32-bit).
    #[prost(int32, optional, tag = "28")]
    pub mode: Option<i32>,
}

impl UserX86RegsEntry {
    /// The 27 words in `user_regs_struct` order; `None` when one is missing.
    #[must_use]
    pub fn words(&self) -> Option<Vec<u64>> {
        [
            self.r15,
            self.r14,
            self.r13,
            self.r12,
            self.bp,
            self.bx,
            self.r11,
            self.r10,
            self.r9,
            self.r8,
            self.ax,
            self.cx,
            self.dx,
            self.si,
            self.di,
            self.orig_ax,
            self.ip,
            self.cs,
            self.flags,
            self.sp,
            self.ss,
            self.fs_base,
            self.gs_base,
            self.ds,
            self.es,
            self.fs,
            self.gs,
        ]
        .into_iter()
        .collect()
    }
}

/// `core-x86.proto`: `thread_info_x86`.
#[derive(Clone, PartialEq, Message)]
pub struct ThreadInfoX86 {
    #[prost(uint64, optional, tag = "1")]
    pub clear_tid_addr: Option<u64>,
    #[prost(message, optional, tag = "2")]
    pub gpregs: Option<UserX86RegsEntry>,
}

/// `core-aarch64.proto`: `user_aarch64_regs_entry`.
#[derive(Clone, PartialEq, Message)]
pub struct UserAarch64RegsEntry {
    #[prost(uint64, repeated, packed = "false", tag = "1")]
    pub regs: Vec<u64>,
    #[prost(uint64, optional, tag = "2")]
    pub sp: Option<u64>,
    #[prost(uint64, optional, tag = "3")]
    pub pc: Option<u64>,
    #[prost(uint64, optional, tag = "4")]
    pub pstate: Option<u64>,
}

/// `core-aarch64.proto`: `thread_info_aarch64`.
#[derive(Clone, PartialEq, Message)]
pub struct ThreadInfoAarch64 {
    #[prost(uint64, optional, tag = "1")]
    pub clear_tid_addr: Option<u64>,
    #[prost(uint64, optional, tag = "2")]
    pub tls: Option<u64>,
    #[prost(message, optional, tag = "3")]
    pub gpregs: Option<UserAarch64RegsEntry>,
}

/// `core-riscv64.proto`: `user_riscv64_regs_entry`: fields 1 to 32 are
/// pc, ra, sp, gp, tp, t0-t2, s0-s1, a0-a7, s2-s11, t3-t6, the
/// `user_regs_struct` order. Decoded by hand ([`riscv64_words`]) because
/// 32 optional fields are only a numbering.
#[derive(Clone, PartialEq, Message)]
pub struct ThreadInfoRiscv64 {
    #[prost(uint64, optional, tag = "1")]
    pub clear_tid_addr: Option<u64>,
    #[prost(uint64, optional, tag = "2")]
    pub tls: Option<u64>,
    /// The encoded `user_riscv64_regs_entry`.
    #[prost(bytes = "vec", optional, tag = "3")]
    pub gpregs: Option<Vec<u8>>,
}

/// The 32 RISC-V register words of an encoded `user_riscv64_regs_entry`
/// (fields 1 to 32, all varint u64); `None` when one is missing or the
/// bytes are malformed.
#[must_use]
pub fn riscv64_words(mut buf: &[u8]) -> Option<Vec<u64>> {
    let mut words: [Option<u64>; 32] = [None; 32];
    while !buf.is_empty() {
        let key = prost::encoding::decode_varint(&mut buf).ok()?;
        let tag = key >> 3;
        let wire = key & 7;
        if wire == 0 {
            let v = prost::encoding::decode_varint(&mut buf).ok()?;
            if let Some(slot) = tag
                .checked_sub(1)
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| words.get_mut(i))
            {
                *slot = Some(v);
            }
        } else {
            // Unknown fields of other wire types: skip them properly.
            let wt = prost::encoding::WireType::try_from(wire).ok()?;
            let tag = u32::try_from(tag).ok()?;
            prost::encoding::skip_field(wt, tag, &mut buf, Default::default()).ok()?;
        }
    }
    words.into_iter().collect()
}

/// `rseq.proto`: `rseq_entry`.
#[derive(Clone, PartialEq, Message)]
pub struct RseqEntry {
    #[prost(uint64, optional, tag = "1")]
    pub rseq_abi_pointer: Option<u64>,
    #[prost(uint32, optional, tag = "2")]
    pub rseq_abi_size: Option<u32>,
    #[prost(uint32, optional, tag = "3")]
    pub signature: Option<u32>,
}

/// `core.proto`: `thread_core_entry`.
#[derive(Clone, PartialEq, Message)]
pub struct ThreadCoreEntry {
    #[prost(message, optional, tag = "15")]
    pub rseq_entry: Option<RseqEntry>,
    #[prost(string, optional, tag = "13")]
    pub comm: Option<String>,
}

/// `core.proto`: `task_core_entry`.
#[derive(Clone, PartialEq, Message)]
pub struct TaskCoreEntry {
    #[prost(uint32, optional, tag = "1")]
    pub task_state: Option<u32>,
    #[prost(uint32, optional, tag = "2")]
    pub exit_code: Option<u32>,
    #[prost(string, optional, tag = "6")]
    pub comm: Option<String>,
}

/// `core.proto`: `core_entry`.
#[derive(Clone, PartialEq, Message)]
pub struct CoreEntry {
    /// `core_entry.march`: 1 x86-64, 3 AArch64, 8 RISC-V 64.
    #[prost(int32, optional, tag = "1")]
    pub mtype: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub thread_info: Option<ThreadInfoX86>,
    #[prost(message, optional, tag = "3")]
    pub tc: Option<TaskCoreEntry>,
    #[prost(message, optional, tag = "5")]
    pub thread_core: Option<ThreadCoreEntry>,
    #[prost(message, optional, tag = "8")]
    pub ti_aarch64: Option<ThreadInfoAarch64>,
    #[prost(message, optional, tag = "13")]
    pub ti_riscv64: Option<ThreadInfoRiscv64>,
}
