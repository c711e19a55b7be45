//! What `talos introspect` concludes: the `talos.introspect/1` document.
//!
//! Every list is sorted (modules and findings by address, threads in dump
//! order) so the same dump gives the same bytes of output on every run.

use serde::Serialize;

use crate::dump::{Anomaly, ProcessInfo};

/// Schema identifier of the JSON document.
pub const SCHEMA: &str = "talos.introspect/1";

/// Code verdict of one module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every executable byte is in the dump and equals the file.
    Clean,
    /// Executable bytes differ from the file (see `diffs`).
    Tampered,
    /// The dump cannot prove the code: its bytes are not in the dump, the
    /// file to compare against is missing, or the loader patched the code.
    Unverifiable,
    /// The file on disk is not the one that was loaded (build-id differs or
    /// the file was deleted).
    BinaryChanged,
    /// Code the kernel provides that no process can change: the legacy
    /// `[vsyscall]` gate page. (A `[vdso]` is compared with a reference
    /// vDSO instead: `clean`, `tampered` or `unverifiable`.)
    Kernel,
}

impl Verdict {
    /// The name used in outputs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Tampered => "tampered",
            Verdict::Unverifiable => "unverifiable",
            Verdict::BinaryChanged => "binary-changed",
            Verdict::Kernel => "kernel",
        }
    }
}

/// The verdict over the whole dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overall {
    /// All code proven equal to the binaries and no findings.
    Clean,
    /// At least one module's code differs from its binary.
    Tampered,
    /// At least one module's binary changed on disk (and none is tampered).
    BinaryChanged,
    /// Findings (anonymous executable memory, W+X, GOT hooks, flow) but no
    /// module is tampered or changed.
    Findings,
    /// No findings, but the dump cannot prove some code.
    Unverifiable,
}

impl Overall {
    /// The name used in outputs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Overall::Clean => "clean",
            Overall::Tampered => "tampered",
            Overall::BinaryChanged => "binary-changed",
            Overall::Findings => "findings",
            Overall::Unverifiable => "unverifiable",
        }
    }

    /// Exit code of `talos introspect`: 0 clean, 1 tampered, changed or any
    /// finding, 3 unverifiable.
    #[must_use]
    pub fn exit_code(self) -> u8 {
        match self {
            Overall::Clean => 0,
            Overall::Tampered | Overall::BinaryChanged | Overall::Findings => 1,
            Overall::Unverifiable => 3,
        }
    }
}

/// Kind of a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModuleKind {
    /// The main executable (holds `AT_ENTRY`).
    Executable,
    /// A shared object (or the interpreter).
    SharedObject,
    /// Kernel-provided code (`[vdso]`, `[vsyscall]`).
    Kernel,
    /// A file talos could not identify (missing, not ELF).
    Unknown,
}

/// A run of executable bytes that differ between memory and file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffRange {
    /// Address in the process.
    pub addr: u64,
    /// Bytes in the run.
    pub len: u64,
    /// Offset from the module base (its lowest mapping).
    pub module_offset: u64,
    /// Offset in the file.
    pub file_offset: u64,
    /// Address as linked (what `talos cfg` and `objdump` show); absent
    /// when the module's load bias is not known (the runtime address is
    /// no link address, and naming a function from it would name the
    /// wrong one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_addr: Option<u64>,
    /// Function the first byte falls in (from the module's CFG), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Offset of the first byte in that function.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_offset: Option<u64>,
    /// File bytes, hex (up to 32).
    pub expected: String,
    /// Memory bytes, hex (up to 32).
    pub actual: String,
}

/// One module (a binary mapped into the process) and its code verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleReport {
    /// Path as the dump records it (or `[vdso]`, `[vsyscall]`).
    pub path: String,
    /// The file compared against, when one was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Kind.
    pub kind: ModuleKind,
    /// Lowest mapped address.
    pub base: u64,
    /// One past the highest mapped address.
    pub end: u64,
    /// Load bias (memory address minus link address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_bias: Option<u64>,
    /// Build-id read from the ELF header page in the dump.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// Build-id of the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_build_id: Option<String>,
    /// Code verdict.
    pub verdict: Verdict,
    /// Why, in one sentence.
    pub reason: String,
    /// Executable bytes mapped.
    pub code_bytes: u64,
    /// Executable bytes the dump holds and talos compared.
    pub compared_bytes: u64,
    /// Executable bytes the dump does not hold.
    pub missing_bytes: u64,
    /// Bytes that differ.
    pub differing_bytes: u64,
    /// The differing runs (at most `max_diffs`; `diffs_omitted` counts the
    /// rest).
    pub diffs: Vec<DiffRange>,
    /// Differing runs not listed.
    pub diffs_omitted: u64,
    /// The binary has text relocations (`DT_TEXTREL`).
    pub text_relocations: bool,
    /// GOT and init/fini pointers checked.
    pub pointers_checked: u64,
    /// GOT and init/fini pointers whose memory the dump does not hold.
    pub pointers_unchecked: u64,
}

/// Kind of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// Executable memory that no file backs (not the vDSO).
    AnonExec,
    /// Memory both writable and executable.
    Wx,
    /// A GOT slot or init/fini pointer that points outside every loaded
    /// module's code.
    GotHook,
    /// A thread's instruction pointer or a return address on its stack that
    /// the code does not explain.
    Flow,
}

impl FindingKind {
    /// The name used in outputs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::AnonExec => "anon-exec",
            FindingKind::Wx => "wx",
            FindingKind::GotHook => "got-hook",
            FindingKind::Flow => "flow",
        }
    }
}

/// Something that should not be there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Kind.
    pub kind: FindingKind,
    /// The address it is about (region start, GOT slot, pc, stack slot).
    pub addr: u64,
    /// One line for people.
    pub message: String,
    /// Size of the region (anon-exec, wx).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Protections of the region (anon-exec, wx).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub perms: Option<String>,
    /// Module concerned (got-hook: the module owning the slot; flow: the
    /// module the address falls in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Import name (got-hook on an import slot), or `init_array` etc.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// The pointer value (got-hook) or address found (flow).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<u64>,
    /// Thread id (flow).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<u32>,
    /// Function the address falls in, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
}

impl Finding {
    /// A finding with only the required fields set.
    #[must_use]
    pub fn new(kind: FindingKind, addr: u64, message: String) -> Self {
        Finding {
            kind,
            addr,
            message,
            size: None,
            perms: None,
            module: None,
            symbol: None,
            value: None,
            thread: None,
            function: None,
        }
    }
}

/// An address placed in a module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// Module path, `[vdso]`, or a region description (`anonymous`,
    /// `[stack]`) when no module holds the address.
    pub module: String,
    /// Offset from the module base.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Function, when the module's CFG was recovered and holds the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Offset in that function.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_offset: Option<u64>,
}

/// How a frame was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FrameMethod {
    /// The thread's registers.
    Registers,
    /// Unwound with `.eh_frame` call-frame information: the return address
    /// is where the CFI says it is. A return address that does not follow
    /// a call is a `flow` finding.
    Cfi,
    /// Found by scanning the stack for values pointing into code that follow
    /// a call. Heuristic: may be stale; never a finding.
    Scan,
}

/// One frame of a thread's stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Frame {
    /// How it was found.
    pub method: FrameMethod,
    /// The pc (frame 0) or return address.
    pub pc: u64,
    /// Stack address the return address was read from (CFI and scan
    /// frames).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_slot: Option<u64>,
    /// Where it lies.
    pub location: Location,
    /// Whether the address follows a call instruction (return addresses
    /// only; `None` when nothing decides it, or for the exact pc of a frame
    /// interrupted by a signal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follows_call: Option<bool>,
    /// What decided `follows_call`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<FollowsEvidence>,
}

/// What decided whether a return address follows a call instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FollowsEvidence {
    /// The module's CFG (of the functions the threads are in, or the whole
    /// module with `--flow-cfg`).
    Cfg,
    /// Decoding the function from its FDE start, or the bytes before the
    /// address when no FDE covers it.
    Decode,
    /// The frame was interrupted by a signal: its pc is exact, not a return
    /// address.
    SignalFrame,
    /// Nothing decided it.
    #[serde(rename = "none")]
    Nothing,
}

impl FollowsEvidence {
    /// The name in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            FollowsEvidence::Cfg => "cfg",
            FollowsEvidence::Decode => "decode",
            FollowsEvidence::SignalFrame => "signal-frame",
            FollowsEvidence::Nothing => "none",
        }
    }
}

/// Result of checking a thread's pc (or the exact pc of a frame a signal
/// interrupted) against its module's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PcCheck {
    /// Inside a basic block of its function's CFG, on an instruction
    /// boundary. Checked, ok.
    InBlock,
    /// On an instruction boundary when the function its `.eh_frame` FDE
    /// describes is decoded from its start (used when the function's CFG is
    /// incomplete). Checked, ok.
    OnInstruction,
    /// In the middle of an instruction. A finding.
    MidInstruction,
    /// In no basic block of a function whose CFG is complete. A finding.
    OutsideBlocks,
    /// In alignment padding between functions of the module's whole CFG.
    /// A finding.
    Padding,
    /// In the module's code but in no function of its whole CFG. A finding.
    OutsideFunctions,
    /// In memory that holds no module's code. A finding.
    OutsideCode,
    /// In executable memory no file backs. A finding.
    AnonymousCode,
    /// The thread's registers are not in the dump (no `NT_PRSTATUS`, or
    /// one with every register zero). Not checked.
    NoRegisters,
    /// In a module talos has no binary (or no loadable image) for. Not
    /// checked.
    NoBinary,
    /// The CFG that would decide could not be recovered. Not checked.
    NoCfg,
    /// The code at the pc does not decode. Not checked.
    Undecodable,
    /// In a function whose CFG is incomplete (unresolved indirect jumps)
    /// and that no FDE describes: nothing decides. Not checked.
    Undecided,
    /// `--no-flow`: not looked at.
    NotRequested,
}

impl PcCheck {
    /// The name used in outputs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            PcCheck::InBlock => "in-block",
            PcCheck::OnInstruction => "on-instruction",
            PcCheck::MidInstruction => "mid-instruction",
            PcCheck::OutsideBlocks => "outside-blocks",
            PcCheck::Padding => "padding",
            PcCheck::OutsideFunctions => "outside-functions",
            PcCheck::OutsideCode => "outside-code",
            PcCheck::AnonymousCode => "anonymous-code",
            PcCheck::NoRegisters => "no-registers",
            PcCheck::NoBinary => "no-binary",
            PcCheck::NoCfg => "no-cfg",
            PcCheck::Undecodable => "undecodable",
            PcCheck::Undecided => "undecided",
            PcCheck::NotRequested => "not-requested",
        }
    }

    /// Which of the three outcomes this is.
    #[must_use]
    pub fn outcome(self) -> FlowStatus {
        match self {
            PcCheck::InBlock | PcCheck::OnInstruction => FlowStatus::Ok,
            PcCheck::MidInstruction
            | PcCheck::OutsideBlocks
            | PcCheck::Padding
            | PcCheck::OutsideFunctions
            | PcCheck::OutsideCode
            | PcCheck::AnonymousCode => FlowStatus::Finding,
            PcCheck::NoRegisters
            | PcCheck::NoBinary
            | PcCheck::NoCfg
            | PcCheck::Undecodable
            | PcCheck::Undecided
            | PcCheck::NotRequested => FlowStatus::NotChecked,
        }
    }
}

/// The three outcomes of every check: checked and ok, checked and failed (a
/// finding), or not checked (with a [`Reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlowStatus {
    /// Checked: the pc and every return address CFI found are explained by
    /// the code, and unwinding reached the outermost frame.
    Ok,
    /// Checked and failed: at least one `flow` finding names this thread.
    Finding,
    /// Not checked, or only partly: the reason says why.
    NotChecked,
}

impl FlowStatus {
    /// The name used in outputs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            FlowStatus::Ok => "ok",
            FlowStatus::Finding => "finding",
            FlowStatus::NotChecked => "not-checked",
        }
    }
}

/// What kind of part of the dump was not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    /// A module's code (`subject`: its path).
    Module,
    /// Kernel-provided code (`subject`: `[vdso]`, `[vsyscall]`).
    KernelCode,
    /// A thread's execution flow (`subject`: `thread TID`).
    Thread,
    /// Something about the dump as a whole (`subject`: what).
    Dump,
}

impl Part {
    /// The name used in outputs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Part::Module => "module",
            Part::KernelCode => "kernel-code",
            Part::Thread => "thread",
            Part::Dump => "dump",
        }
    }
}

/// Why a part was not checked. Stable kebab-case codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Module: the dump holds none of its code bytes.
    CodeNotInDump,
    /// Module: the dump holds only part of its code bytes.
    CodePartlyInDump,
    /// Module: no file to compare with.
    NoFile,
    /// Module: the file exists but cannot be read.
    FileUnreadable,
    /// Module: the file is not a binary talos can load.
    NotLoadable,
    /// Module: bytes differ but the binary has text relocations.
    TextRelocations,
    /// Module: no executable mapping was found for it.
    NoExecutableMapping,
    /// Kernel code: the dump's vDSO has another build-id than the reference
    /// vDSO (this host's, or `--vdso FILE`): it comes from another kernel.
    OtherKernel,
    /// Kernel code: no reference vDSO to compare with (none on this host,
    /// no `--vdso FILE`), or the dump's vDSO has no build-id.
    NoReference,
    /// Kernel code: the dump does not hold all of its bytes.
    NotInDump,
    /// Thread: its registers are not in the dump.
    NoRegisters,
    /// Thread: an address it holds is in a module talos has no binary for.
    NoBinary,
    /// Thread: the control-flow graph needed to judge it could not be
    /// recovered.
    CfgFailed,
    /// Thread: the code at an address it holds does not decode.
    Undecodable,
    /// Thread: its pc is in a function whose CFG is incomplete and that no
    /// FDE describes.
    Undecided,
    /// Thread: no evidence decides whether a return address follows a call.
    ReturnUndecided,
    /// Thread: CFI unwinding stopped before the outermost frame, so the
    /// return addresses above it were not checked.
    UnwindIncomplete,
    /// Thread: `--no-flow` asked not to check execution flow.
    NotRequested,
    /// Dump: more file-mapping groups than talos examines.
    ModuleCap,
    /// Thread: more threads than talos reads.
    ThreadCap,
}

impl Reason {
    /// The stable code.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Reason::CodeNotInDump => "code-not-in-dump",
            Reason::CodePartlyInDump => "code-partly-in-dump",
            Reason::NoFile => "no-file",
            Reason::FileUnreadable => "file-unreadable",
            Reason::NotLoadable => "not-loadable",
            Reason::TextRelocations => "text-relocations",
            Reason::NoExecutableMapping => "no-executable-mapping",
            Reason::OtherKernel => "other-kernel",
            Reason::NoReference => "no-reference",
            Reason::NotInDump => "not-in-dump",
            Reason::NoRegisters => "no-registers",
            Reason::NoBinary => "no-binary",
            Reason::CfgFailed => "cfg-failed",
            Reason::Undecodable => "undecodable",
            Reason::Undecided => "undecided",
            Reason::ReturnUndecided => "return-undecided",
            Reason::UnwindIncomplete => "unwind-incomplete",
            Reason::NotRequested => "not-requested",
            Reason::ModuleCap => "module-cap",
            Reason::ThreadCap => "thread-cap",
        }
    }
}

/// One part of what the verdict covers that could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Unchecked {
    /// What kind of part.
    pub part: Part,
    /// Which one: a module path, `[vdso]`, `thread 1234`.
    pub subject: String,
    /// Why, as a stable code.
    pub reason: Reason,
    /// Why, in one sentence.
    pub detail: String,
}

/// One thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadReport {
    /// Thread id.
    pub tid: u32,
    /// Signal it was stopped by (0 when none).
    pub signal: u16,
    /// Program counter.
    pub pc: u64,
    /// Stack pointer.
    pub sp: u64,
    /// Thread pointer (`fs_base`), when the architecture keeps it in the
    /// registers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_base: Option<u64>,
    /// Where the pc lies.
    pub location: Location,
    /// Result of checking the pc.
    pub pc_check: PcCheck,
    /// What the flow check concluded about this thread as a whole (its pc
    /// and every return address CFI unwinding found).
    pub flow: FlowStatus,
    /// Why the thread could not be judged, when `flow` is `not-checked`
    /// (the `unchecked` list of the report says it in a sentence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_checked: Option<Reason>,
    /// Frames: the pc, then return addresses (CFI first, then scan).
    pub frames: Vec<Frame>,
    /// Why CFI unwinding stopped.
    pub unwind_stop: String,
}

/// What was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputInfo {
    /// The path or `pid:N`.
    pub path: String,
    /// Reader that produced the dump: kernel, gdb, snapshot, raw, live.
    pub source: String,
    /// Architecture.
    pub arch: String,
    /// Mappings.
    pub regions: u64,
    /// Bytes of memory the input holds.
    pub bytes_held: u64,
    /// File mappings listed (`NT_FILE`).
    pub file_mappings: u64,
    /// Threads.
    pub threads: u64,
    /// Signal that ended the process, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Process information.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessInfo>,
}

/// The whole result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// Version of talos that wrote it.
    pub talos_version: &'static str,
    /// What was read.
    pub input: InputInfo,
    /// Overall verdict.
    pub verdict: Overall,
    /// One sentence explaining the verdict.
    pub summary: String,
    /// Modules sorted by base address.
    pub modules: Vec<ModuleReport>,
    /// Findings sorted by (kind, address).
    pub findings: Vec<Finding>,
    /// Threads in dump order.
    pub threads: Vec<ThreadReport>,
    /// Every part of what the verdict covers that talos could not check,
    /// sorted by (part, subject). Not empty means the verdict is at best
    /// `unverifiable`.
    pub unchecked: Vec<Unchecked>,
    /// Oddities in the input.
    pub anomalies: Vec<Anomaly>,
    /// Facts about acquisition and what was not checked.
    pub notes: Vec<String>,
}
