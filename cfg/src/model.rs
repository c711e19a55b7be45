//! The recovered graph: functions, basic blocks and typed edges.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::image::{Arch, Format, ImageKind};

/// How control moves along an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// Straight-line flow into the next block (block split by a branch
    /// target, or the return site after a call).
    Fallthrough,
    /// Unconditional direct jump inside the function.
    Jump,
    /// Conditional jump, taken.
    CondTaken,
    /// Conditional jump, not taken.
    CondNotTaken,
    /// Direct call to a function.
    Call,
    /// Return to the caller (no target).
    Return,
    /// Jump through a register or memory that talos could not resolve.
    IndirectJump,
    /// Call through a register or memory.
    IndirectCall,
    /// Jump to the start of another function (or through an import slot).
    TailCall,
    /// One target of a resolved jump table.
    JumpTable,
}

impl EdgeKind {
    /// The stable name used in JSON and DOT.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            EdgeKind::Fallthrough => "fallthrough",
            EdgeKind::Jump => "jump",
            EdgeKind::CondTaken => "cond_taken",
            EdgeKind::CondNotTaken => "cond_not_taken",
            EdgeKind::Call => "call",
            EdgeKind::Return => "return",
            EdgeKind::IndirectJump => "indirect_jump",
            EdgeKind::IndirectCall => "indirect_call",
            EdgeKind::TailCall => "tail_call",
            EdgeKind::JumpTable => "jump_table",
        }
    }

    /// Stable numeric tag used in the canonical digest encoding.
    #[must_use]
    pub fn tag(self) -> u8 {
        match self {
            EdgeKind::Fallthrough => 1,
            EdgeKind::Jump => 2,
            EdgeKind::CondTaken => 3,
            EdgeKind::CondNotTaken => 4,
            EdgeKind::Call => 5,
            EdgeKind::Return => 6,
            EdgeKind::IndirectJump => 7,
            EdgeKind::IndirectCall => 8,
            EdgeKind::TailCall => 9,
            EdgeKind::JumpTable => 10,
        }
    }
}

/// A successor of a basic block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Edge {
    /// Target address as linked, or `None` for returns and unresolved
    /// indirect transfers.
    pub addr: Option<u64>,
    /// How control gets there.
    pub kind: EdgeKind,
}

/// A basic block: straight-line instructions entered only at the top.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Address of the first instruction.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Number of instructions.
    pub instructions: u32,
    /// Successors, sorted by (kind, address).
    pub succs: Vec<Edge>,
}

impl Block {
    /// One past the last byte.
    #[must_use]
    pub fn end(&self) -> u64 {
        self.addr.saturating_add(self.size)
    }

    /// Whether `addr` lies inside the block.
    #[must_use]
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.addr && addr < self.end()
    }
}

/// Why talos believes a function starts at an address (the strongest
/// reason found).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionSource {
    /// The entry point.
    Entry,
    /// A symbol (static or dynamic table).
    Symbol,
    /// A frame description entry in `.eh_frame` or `.pdata`.
    Fde,
    /// An init/fini array entry, `DT_INIT`/`DT_FINI` or a TLS callback.
    InitFini,
    /// An import stub in a PLT section.
    ImportStub,
    /// The target of a direct call.
    Call,
    /// The target of a tail call.
    TailCall,
    /// An address taken in code or data (function pointer).
    Pointer,
    /// Code found in the bytes between known functions.
    Gap,
}

/// A recovered function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    /// Entry address as linked.
    pub addr: u64,
    /// Bytes from the entry to the end of its last block before the next
    /// function.
    pub size: u64,
    /// Name from the symbol tables or import stubs, if any.
    pub name: Option<String>,
    /// Why this is a function.
    pub source: FunctionSource,
    /// Whether talos proved that the function never returns.
    pub noreturn: bool,
    /// Canonical digest of the function (see `docs/digest.md`).
    pub digest: Digest,
    /// Basic blocks sorted by address.
    pub blocks: Vec<Block>,
}

impl Function {
    /// The block containing `addr`.
    #[must_use]
    pub fn block_containing(&self, addr: u64) -> Option<&Block> {
        let idx = self.blocks.partition_point(|b| b.addr <= addr);
        let b = self.blocks.get(idx.checked_sub(1)?)?;
        b.contains(addr).then_some(b)
    }

    /// Every successor edge of every block, in block order.
    pub fn edges(&self) -> impl Iterator<Item = &Edge> {
        self.blocks.iter().flat_map(|b| &b.succs)
    }

    /// The targets of this function's edges of `kind` that have one, in
    /// block order.
    #[must_use]
    pub fn edge_targets(&self, kind: EdgeKind) -> Vec<u64> {
        self.edges()
            .filter(|e| e.kind == kind)
            .filter_map(|e| e.addr)
            .collect()
    }

    /// Total instructions.
    #[must_use]
    pub fn instruction_count(&self) -> u64 {
        self.blocks.iter().map(|b| u64::from(b.instructions)).sum()
    }

    /// Name, or `sub_<addr>` when unnamed.
    #[must_use]
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("sub_{:x}", self.addr))
    }
}

/// Something odd the builder met; analysis went on around it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Anomaly {
    /// Stable kind: `invalid-instruction`, `overlapping-instructions`,
    /// `falls-into-function`, `call-outside-code`, `function-too-large`,
    /// `jump-table-rejected`.
    pub kind: String,
    /// Address where it was seen.
    pub addr: u64,
    /// Function it was seen in.
    pub function: u64,
}

/// An indirect jump whose targets talos could not determine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Unresolved {
    /// Address of the jump instruction.
    pub addr: u64,
    /// Function containing it.
    pub function: u64,
}

/// A resolved jump table, kept so outputs can show it and so its bytes are
/// never taken for code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JumpTableInfo {
    /// Address of the indirect jump.
    pub jump: u64,
    /// Address of the table.
    pub table: u64,
    /// Entries.
    pub entries: u64,
    /// Bytes per entry.
    pub entry_size: u8,
}

/// A limit the analysis stopped at. Each is far above what real binaries
/// need (see [`crate::limits`]); reaching one means the graph describes only
/// part of the file, so nothing may be judged complete from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CapKind {
    /// More relocations in a table than are read.
    Relocations,
    /// More `.eh_frame` records (or PE `.pdata` entries) than are read.
    FrameRecords,
    /// More init/fini array entries (or TLS callbacks) than are read.
    InitFini,
    /// More dynamic-section entries than are read.
    DynamicEntries,
    /// More PE imports than are read.
    Imports,
    /// A function had more instructions than are decoded for one function;
    /// the rest of it is missing.
    FunctionInstructions,
    /// The noreturn fixpoint was still growing after its last round: some
    /// calls may keep a fallthrough edge they should not have.
    NoreturnRounds,
    /// Gap analysis was still finding functions after its last round.
    GapRounds,
    /// The gap sweep explored more code in one gap, for candidates it then
    /// rejected, than that gap's budget (a number of instructions per byte
    /// of the gap, plus a floor): functions in that gap may be missing. Real
    /// code stays far below it; crafted or corrupted code would otherwise
    /// cost time quadratic in the gap's size.
    GapWork,
    /// Functions still overlapped other functions' entries after the last
    /// consistency round.
    ConsistencyRounds,
}

impl CapKind {
    /// The stable name used in JSON and text.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            CapKind::Relocations => "relocations",
            CapKind::FrameRecords => "frame_records",
            CapKind::InitFini => "init_fini",
            CapKind::DynamicEntries => "dynamic_entries",
            CapKind::Imports => "imports",
            CapKind::FunctionInstructions => "function_instructions",
            CapKind::NoreturnRounds => "noreturn_rounds",
            CapKind::GapRounds => "gap_rounds",
            CapKind::GapWork => "gap_work",
            CapKind::ConsistencyRounds => "consistency_rounds",
        }
    }
}

/// One cap reached, with the limit and, where it concerns one function, the
/// function's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CapHit {
    /// Which limit.
    pub kind: CapKind,
    /// Its value.
    pub limit: u64,
    /// The function it cut short, if it concerns one.
    pub function: Option<u64>,
}

/// Counts over the whole graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Functions.
    pub functions: u64,
    /// Basic blocks.
    pub blocks: u64,
    /// Edges (block successors).
    pub edges: u64,
    /// Instructions.
    pub instructions: u64,
    /// Indirect jumps left unresolved.
    pub unresolved_indirect: u64,
}

/// The control-flow graph of a whole image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cfg {
    /// Container format.
    pub format: Format,
    /// Architecture.
    pub arch: Arch,
    /// Executable, PIE or shared object.
    pub kind: ImageKind,
    /// Image base that digests are relative to.
    pub base: u64,
    /// Entry point.
    pub entry: Option<u64>,
    /// Build-id (hex).
    pub build_id: Option<String>,
    /// Functions sorted by address.
    pub functions: Vec<Function>,
    /// Digest of the whole graph.
    pub digest: Digest,
    /// Counts.
    pub stats: Stats,
    /// Unresolved indirect jumps, sorted.
    pub unresolved: Vec<Unresolved>,
    /// Resolved jump tables, sorted by jump address.
    pub jump_tables: Vec<JumpTableInfo>,
    /// Oddities, sorted.
    pub anomalies: Vec<Anomaly>,
    /// Code bytes in executable sections that no function covers (not
    /// counting padding).
    pub unexplained_bytes: u64,
    /// Return sites (the address after every call instruction), sorted.
    pub return_sites: Vec<u64>,
    /// Entries of functions with exception landing pads (see
    /// [`crate::Image::exception_handlers`]), sorted.
    pub exception_handlers: Vec<u64>,
    /// Limits the loader or the analysis stopped at, sorted. Empty when the
    /// whole file was analysed; otherwise the graph is incomplete (see
    /// [`Cfg::capped`]) and `talos cfg` exits 3.
    pub caps: Vec<CapHit>,
    /// Instructions decoded during recovery, counting those of explorations
    /// thrown away (gap candidates rejected, functions decoded again): the
    /// work the recovery did, which its caps keep linear in the size of the
    /// code. Not part of the document or the digest.
    pub work: u64,
}

impl Cfg {
    /// The function whose blocks hold `addr`.
    #[must_use]
    pub fn function_containing(&self, addr: u64) -> Option<&Function> {
        // Blocks of a function may lie below its entry (cold parts), so look
        // at the nearest entries first, then fall back to a full scan.
        let idx = self.functions.partition_point(|f| f.addr <= addr);
        if let Some(f) = idx.checked_sub(1).and_then(|i| self.functions.get(i))
            && f.block_containing(addr).is_some()
        {
            return Some(f);
        }
        self.functions
            .iter()
            .find(|f| f.block_containing(addr).is_some())
    }

    /// The function and block holding `addr`.
    #[must_use]
    pub fn block_containing(&self, addr: u64) -> Option<(&Function, &Block)> {
        let f = self.function_containing(addr)?;
        Some((f, f.block_containing(addr)?))
    }

    /// The function that starts at `addr`.
    #[must_use]
    pub fn function_at(&self, addr: u64) -> Option<&Function> {
        let idx = self
            .functions
            .binary_search_by_key(&addr, |f| f.addr)
            .ok()?;
        self.functions.get(idx)
    }

    /// Look a function up by name or by address (`0x...` or decimal).
    ///
    /// # Errors
    /// [`crate::Error::NoSuchFunction`] when nothing matches.
    pub fn find_function(&self, key: &str) -> crate::Result<&Function> {
        let by_addr = key
            .strip_prefix("0x")
            .map(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or_else(|| key.parse::<u64>().ok());
        if let Some(a) = by_addr
            && let Some(f) = self.function_at(a)
        {
            return Ok(f);
        }
        self.functions
            .iter()
            .find(|f| f.name.as_deref() == Some(key) || f.display_name() == key)
            .ok_or_else(|| crate::Error::NoSuchFunction(key.to_string()))
    }

    /// Whether the analysis stopped at a cap ([`Cfg::caps`]): the graph
    /// then describes only part of the file, and a check built on it has not
    /// checked the rest.
    #[must_use]
    pub fn capped(&self) -> bool {
        !self.caps.is_empty()
    }

    /// Whether every block of the function entered at `addr` is known: its
    /// decoding met no indirect jump that stayed unresolved, and it has no
    /// exception landing pads (which only the unwinder enters). Only then
    /// does "this address is in none of its blocks" prove anything.
    #[must_use]
    pub fn complete(&self, addr: u64) -> bool {
        !self.unresolved.iter().any(|u| u.function == addr)
            && self.exception_handlers.binary_search(&addr).is_err()
            && !self
                .caps
                .iter()
                .any(|c| c.kind == CapKind::FunctionInstructions && c.function == Some(addr))
    }

    /// Whether `addr` is the return site of a call instruction (direct or
    /// indirect, returning or not): what a return address found on a stack
    /// must be.
    #[must_use]
    pub fn follows_call(&self, addr: u64) -> bool {
        self.return_sites.binary_search(&addr).is_ok()
    }
}
