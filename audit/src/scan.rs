//! One pass over every instruction of every recovered block, per
//! architecture: enclave-illegal x86 instructions, stack-canary loads, LVI
//! sites, RISC-V `ecall` sites with their call numbers, and code addresses
//! computed by instructions (address-taken functions).

use std::collections::BTreeSet;

use iced_x86::{
    Decoder as Iced, DecoderOptions, FlowControl, Formatter, Instruction, InstructionInfoFactory,
    IntelFormatter, Mnemonic, OpAccess, OpKind, Register,
};
use rayon::prelude::*;
use talos_cfg::arch::{Decode, Flow, Insn};
use talos_cfg::{Arch, Cfg, Function, FunctionSource, Image};

use crate::reader::Reader;
use crate::rules::RuleId;

/// Instructions decoded per function before the scan stops (matches the
/// graph builder's limit).
const MAX_INSNS: usize = talos_cfg::limits::MAX_FUNCTION_INSTRUCTIONS;

/// An instruction a rule cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u8,
    /// Category: the `sgx-*` rule it falls under.
    pub category: RuleId,
    /// Lowercase mnemonic (part of the fingerprint).
    pub mnemonic: String,
    /// Assembly text.
    pub text: String,
    /// Function index.
    pub function: usize,
    /// Block index in that function.
    pub block: usize,
}

/// An `ecall` (RISC-V).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ecall {
    /// Address.
    pub addr: u64,
    /// Function index.
    pub function: usize,
    /// Block index.
    pub block: usize,
    /// `a7` when a constant set in the same block.
    pub a7: Option<u64>,
}

/// One return or indirect branch, for the LVI heuristic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LviSite {
    /// Address of the branch.
    pub addr: u64,
    /// Function index.
    pub function: usize,
    /// Block index.
    pub block: usize,
    /// Whether an LFENCE follows the last load before it.
    pub hardened: bool,
}

/// What the scan found.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Enclave-illegal instructions (x86).
    pub hits: Vec<Hit>,
    /// Stack-canary loads (`fs:0x28`, `gs:0x14`).
    pub canary_loads: u64,
    /// Returns and indirect branches.
    pub lvi: Vec<LviSite>,
    /// `ecall` sites.
    pub ecalls: Vec<Ecall>,
    /// Function entries whose address an instruction computes.
    pub address_taken: BTreeSet<u64>,
    /// Instructions of recovered blocks the scan could not read or
    /// decode, each a sentence: what they would have shown is unknown.
    pub anomalies: Vec<String>,
}

/// What the scan of one function found.
#[derive(Default)]
struct Partial {
    hits: Vec<Hit>,
    canary_loads: u64,
    lvi: Vec<LviSite>,
    ecalls: Vec<Ecall>,
    refs: Vec<u64>,
    anomalies: Vec<String>,
}

/// Where an instruction is.
#[derive(Debug, Clone, Copy)]
struct Site {
    /// Function index.
    function: usize,
    /// Block index in that function.
    block: usize,
    /// The function is an import stub (PLT), which the LVI heuristic skips.
    import_stub: bool,
}

/// The LVI heuristic's state along a block.
#[derive(Debug, Clone, Copy, Default)]
struct Fences {
    /// An LFENCE was seen since the last load.
    since_load: bool,
    /// The previous instruction was an LFENCE.
    previous: bool,
}

/// What to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Plan {
    /// Enclave-illegal x86 instructions.
    pub instructions: bool,
    /// LVI sites.
    pub lvi: bool,
    /// Stack-canary loads.
    pub canary: bool,
    /// RISC-V `ecall` sites.
    pub ecalls: bool,
}

impl Plan {
    /// Whether anything is wanted.
    #[must_use]
    pub fn any(self) -> bool {
        self.instructions || self.lvi || self.canary || self.ecalls
    }
}

/// Scan every function of `cfg` for what `plan` asks; with `refs`, collect
/// the code addresses instructions compute (for reachability).
#[must_use]
pub fn scan(image: &Image<'_>, cfg: &Cfg, dec: &dyn Decode, plan: Plan, refs: bool) -> Scan {
    let parts: Vec<Partial> = cfg
        .functions
        .par_iter()
        .enumerate()
        .map(|(fi, f)| scan_function(image, dec, fi, f, plan, refs))
        .collect();
    let mut out = Scan::default();
    let entries: BTreeSet<u64> = cfg.functions.iter().map(|f| f.addr).collect();
    for p in parts {
        out.hits.extend(p.hits);
        out.canary_loads = out.canary_loads.saturating_add(p.canary_loads);
        out.lvi.extend(p.lvi);
        out.ecalls.extend(p.ecalls);
        out.address_taken
            .extend(p.refs.into_iter().filter(|a| entries.contains(a)));
        out.anomalies.extend(p.anomalies);
    }
    out
}

fn scan_function(
    image: &Image<'_>,
    dec: &dyn Decode,
    fi: usize,
    f: &Function,
    plan: Plan,
    refs: bool,
) -> Partial {
    let mut p = Partial::default();
    let x86_wanted = plan.instructions || plan.lvi || plan.canary;
    let bitness = match image.arch {
        Arch::X86 if x86_wanted => Some(32),
        Arch::X86_64 if x86_wanted => Some(64),
        _ => None,
    };
    let import_stub = f.source == FunctionSource::ImportStub;
    let mut info = InstructionInfoFactory::new();
    let mut budget = MAX_INSNS;
    for (bi, b) in f.blocks.iter().enumerate() {
        let site = Site {
            function: fi,
            block: bi,
            import_stub,
        };
        let mut a = b.addr;
        let mut prev: Option<Insn> = None;
        let mut fences = Fences::default();
        let mut a7: Option<u64> = None;
        for _ in 0..b.instructions {
            if budget == 0 {
                p.anomalies.push(format!(
                    "{}: the scan stopped after {MAX_INSNS} instructions",
                    f.display_name()
                ));
                return p;
            }
            budget -= 1;
            let Some(insn) = image
                .bytes_from(a)
                .and_then(|bytes| Some((bytes, dec.decode(bytes, a, prev.as_ref())?)))
            else {
                p.anomalies.push(format!(
                    "{}: the instruction at {a:#x} in the block at {:#x} cannot be read or decoded",
                    f.display_name(),
                    b.addr
                ));
                break;
            };
            let (bytes, insn) = insn;
            if refs && let Some(d) = insn.data_ref {
                p.refs.push(d);
            }
            match bitness {
                Some(bits) => {
                    let decoded = x86(
                        bytes,
                        a,
                        bits,
                        &insn,
                        &mut info,
                        plan,
                        site,
                        &mut fences,
                        &mut p,
                    );
                    if !decoded {
                        p.anomalies.push(format!(
                            "{}: iced-x86 does not decode the instruction at {a:#x}",
                            f.display_name()
                        ));
                    }
                }
                None if plan.ecalls && image.arch == Arch::Riscv64 => {
                    riscv(bytes, a, &insn, site, &mut a7, &mut p);
                }
                None => {}
            }
            prev = Some(insn);
            a = insn.end();
        }
    }
    p
}

/// The x86 checks on one instruction; `false` when iced-x86 does not
/// decode it.
#[allow(clippy::too_many_arguments)]
fn x86(
    bytes: &[u8],
    addr: u64,
    bits: u32,
    insn: &Insn,
    info: &mut InstructionInfoFactory,
    plan: Plan,
    site: Site,
    fences: &mut Fences,
    p: &mut Partial,
) -> bool {
    // x86 instructions are at most 15 bytes.
    let window = bytes.get(..bytes.len().min(15)).unwrap_or(bytes);
    let mut d = Iced::with_ip(bits, window, addr, DecoderOptions::NONE);
    let ins = d.decode();
    if ins.is_invalid() {
        return false;
    }
    if plan.instructions
        && let Some(category) = classify(&ins)
    {
        p.hits.push(Hit {
            addr,
            len: insn.len,
            category,
            mnemonic: format!("{:?}", ins.mnemonic()).to_lowercase(),
            text: render(&ins),
            function: site.function,
            block: site.block,
        });
    }
    // Stack-canary loads: mov reg, fs:[0x28] (x86-64) / gs:[0x14] (i386).
    let (seg, disp) = if bits == 64 {
        (Register::FS, 0x28)
    } else {
        (Register::GS, 0x14)
    };
    if plan.canary
        && ins.memory_segment() == seg
        && ins.memory_base() == Register::None
        && ins.memory_index() == Register::None
        && ins.memory_displacement64() == disp
        && (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory)
    {
        p.canary_loads += 1;
    }
    if !plan.lvi {
        return true;
    }
    // LVI.
    let is_lfence = ins.mnemonic() == Mnemonic::Lfence;
    let branch = matches!(
        ins.flow_control(),
        FlowControl::Return | FlowControl::IndirectBranch | FlowControl::IndirectCall
    ) && matches!(
        insn.flow,
        Flow::Return | Flow::IndirectJump { .. } | Flow::IndirectCall { .. }
    );
    if branch && !site.import_stub {
        let hardened = if ins.flow_control() == FlowControl::Return {
            fences.previous
        } else {
            let mem_operand = (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory);
            !mem_operand && fences.since_load
        };
        p.lvi.push(LviSite {
            addr,
            function: site.function,
            block: site.block,
            hardened,
        });
    }
    let loads = !is_lfence
        && info.info(&ins).used_memory().iter().any(|m| {
            matches!(
                m.access(),
                OpAccess::Read | OpAccess::CondRead | OpAccess::ReadWrite | OpAccess::ReadCondWrite
            )
        });
    if is_lfence {
        fences.since_load = true;
    } else if loads {
        fences.since_load = false;
    }
    fences.previous = is_lfence;
    true
}

fn render(ins: &Instruction) -> String {
    let mut f = IntelFormatter::new();
    f.options_mut().set_first_operand_char_index(0);
    let mut s = String::new();
    f.format(ins, &mut s);
    s
}

/// The `sgx-*` rule an instruction breaks, if any.
fn classify(ins: &Instruction) -> Option<RuleId> {
    use Mnemonic as M;
    let m = ins.mnemonic();
    let cat = match m {
        M::Syscall | M::Sysenter | M::Sysexit | M::Sysexitq | M::Sysret | M::Sysretq => {
            RuleId::SgxSyscall
        }
        M::Cpuid => RuleId::SgxCpuid,
        M::Rdtsc | M::Rdtscp => RuleId::SgxRdtsc,
        M::In | M::Out | M::Insb | M::Insw | M::Insd | M::Outsb | M::Outsw | M::Outsd => {
            RuleId::SgxIo
        }
        M::Int | M::Into | M::Int1 | M::Iret | M::Iretd | M::Iretq | M::Retf => {
            RuleId::SgxInterrupt
        }
        M::Vmcall
        | M::Vmmcall
        | M::Vmfunc
        | M::Getsec
        | M::Vmlaunch
        | M::Vmresume
        | M::Vmxon
        | M::Vmxoff
        | M::Vmptrld
        | M::Vmptrst
        | M::Vmclear
        | M::Vmread
        | M::Vmwrite
        | M::Invept
        | M::Invvpid
        | M::Vmrun
        | M::Vmload
        | M::Vmsave => RuleId::SgxVmExit,
        M::Hlt
        | M::Lgdt
        | M::Lidt
        | M::Lldt
        | M::Ltr
        | M::Sgdt
        | M::Sidt
        | M::Sldt
        | M::Str
        | M::Rdpmc
        | M::Rdmsr
        | M::Wrmsr
        | M::Invd
        | M::Wbinvd
        | M::Invlpg
        | M::Clts
        | M::Lmsw
        | M::Swapgs
        | M::Cli
        | M::Sti
        | M::Encls
        | M::Xsetbv
        | M::Xsaves
        | M::Xrstors => RuleId::SgxPrivileged,
        M::Mov
            if (0..ins.op_count()).any(|i| {
                ins.op_kind(i) == OpKind::Register && {
                    let r = ins.op_register(i);
                    r.is_cr() || r.is_dr() || r.is_tr()
                }
            }) =>
        {
            RuleId::SgxPrivileged
        }
        _ if ins.is_call_far()
            || ins.is_jmp_far()
            || ins.is_call_far_indirect()
            || ins.is_jmp_far_indirect() =>
        {
            RuleId::SgxInterrupt
        }
        _ => return None,
    };
    Some(cat)
}

/// `a7` (x17) tracking and `ecall` detection.
fn riscv(bytes: &[u8], addr: u64, insn: &Insn, site: Site, a7: &mut Option<u64>, p: &mut Partial) {
    if insn.len == 4 && bytes.get(..4) == Some(&[0x73, 0, 0, 0][..]) {
        p.ecalls.push(Ecall {
            addr,
            function: site.function,
            block: site.block,
            a7: *a7,
        });
        // The call's result lands in a0; a7 is preserved by the runtime,
        // but a new call sets it again, so forget it.
        *a7 = None;
        return;
    }
    *a7 = track_a7(bytes, insn.len, *a7);
}

/// The encoding of a RISC-V instruction of `len` bytes (2: compressed,
/// 4: base), little-endian as RISC-V stores instructions.
fn encoding(bytes: &[u8], len: u8) -> Option<u32> {
    let r = Reader::le(bytes);
    match len {
        2 => r.u16(0, "compressed instruction").ok().map(u32::from),
        _ => r.u32(0, "instruction").ok(),
    }
}

/// The value of `a7` after the instruction, given its value before: the
/// constant forms compilers and hand-written stubs use (`li`, `lui`,
/// `addi`/`addiw` on itself, `c.li`, `c.lui`, `c.addi`); anything else
/// that writes `a7` makes it unknown.
fn track_a7(bytes: &[u8], len: u8, before: Option<u64>) -> Option<u64> {
    const A7: u32 = 17;
    let sext = |v: u64, bits: u32| ((v << (64 - bits)) as i64 >> (64 - bits)) as u64;
    let w = encoding(bytes, len)?;
    if len == 2 {
        let (q, f3, rd) = (w & 3, w >> 13, (w >> 7) & 0x1f);
        let imm6 = u64::from(((w >> 12) & 1) << 5 | ((w >> 2) & 0x1f));
        return match (q, f3) {
            (1, 2) if rd == A7 => Some(sext(imm6, 6)),
            (1, 0) if rd == A7 => before.map(|v| v.wrapping_add(sext(imm6, 6))),
            (1, 3) if rd == A7 => Some(sext(imm6 << 12, 18)),
            _ if writes_x(bytes, len) == Some(17) => None,
            _ => before,
        };
    }
    let (opcode, rd, f3, rs1) = (w & 0x7f, (w >> 7) & 0x1f, (w >> 12) & 7, (w >> 15) & 0x1f);
    let imm_i = sext(u64::from(w >> 20), 12);
    match opcode {
        0x13 if f3 == 0 && rd == A7 && rs1 == 0 => Some(imm_i),
        0x13 if f3 == 0 && rd == A7 && rs1 == A7 => before.map(|v| v.wrapping_add(imm_i)),
        0x1b if f3 == 0 && rd == A7 && rs1 == A7 => {
            before.map(|v| sext(v.wrapping_add(imm_i) & 0xffff_ffff, 32))
        }
        0x37 if rd == A7 => Some(sext(u64::from(w & 0xffff_f000), 32)),
        _ if writes_x(bytes, len) == Some(17) => None,
        _ => before,
    }
}

/// The integer register an RV64GC instruction writes, from its encoding
/// (`rd` for the formats that have one).
fn writes_x(bytes: &[u8], len: u8) -> Option<u32> {
    let w = encoding(bytes, len)?;
    if len == 2 {
        let q = w & 3;
        let f3 = w >> 13;
        let rd = (w >> 7) & 0x1f;
        // Quadrant 1 f3 0-3 (c.addi, c.addiw, c.li, c.lui) and quadrant 2
        // f3 0, 2, 3, 4 (c.slli, c.lwsp, c.ldsp, c.mv/c.add) write rd.
        return match (q, f3) {
            (1, 0..=3) | (2, 0 | 2 | 3 | 4) => Some(rd),
            _ => None,
        };
    }
    let opcode = w & 0x7f;
    let rd = (w >> 7) & 0x1f;
    match opcode {
        // Stores, branches, fences and FP ops write no integer rd.
        0x23 | 0x27 | 0x63 | 0x0f | 0x07 | 0x43 | 0x47 | 0x4b | 0x4f => None,
        0x53 => {
            // FP ops: only moves/compares/conversions to integer write x.
            let f7 = w >> 25;
            matches!(f7, 0x50 | 0x51 | 0x60 | 0x61 | 0x70 | 0x71).then_some(rd)
        }
        _ => Some(rd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode64(bytes: &[u8]) -> Instruction {
        Iced::with_ip(64, bytes, 0x1000, DecoderOptions::NONE).decode()
    }

    #[test]
    fn classifies_enclave_illegal_instructions() {
        let cases: &[(&[u8], Option<RuleId>)] = &[
            (&[0x0f, 0x05], Some(RuleId::SgxSyscall)),
            (&[0x0f, 0x34], Some(RuleId::SgxSyscall)),
            (&[0x0f, 0xa2], Some(RuleId::SgxCpuid)),
            (&[0x0f, 0x31], Some(RuleId::SgxRdtsc)),
            (&[0x0f, 0x01, 0xf9], Some(RuleId::SgxRdtsc)),
            (&[0xcd, 0x80], Some(RuleId::SgxInterrupt)),
            (&[0xee], Some(RuleId::SgxIo)),
            (&[0xec], Some(RuleId::SgxIo)),
            (&[0x0f, 0x01, 0xc1], Some(RuleId::SgxVmExit)),
            (&[0xf4], Some(RuleId::SgxPrivileged)),
            (&[0x0f, 0x22, 0xd8], Some(RuleId::SgxPrivileged)), // mov cr3, rax
            (&[0xcc], None),                                    // int3 is fine
            (&[0x0f, 0x01, 0xd7], None),                        // enclu is fine
            (&[0x0f, 0xae, 0xe8], None),                        // lfence
            (&[0x48, 0x89, 0xc3], None),                        // mov rbx, rax
        ];
        for (bytes, want) in cases {
            assert_eq!(classify(&decode64(bytes)), *want, "{bytes:02x?}");
        }
    }

    #[test]
    fn riscv_register_writes() {
        // addi a7, zero, 64 -> writes x17.
        let addi: u32 = (64 << 20) | (17 << 7) | 0x13;
        assert_eq!(writes_x(&addi.to_le_bytes(), 4), Some(17));
        // sd a7, 0(sp): a store writes no register.
        let sd: u32 = (17 << 20) | (2 << 15) | (3 << 12) | 0x23;
        assert_eq!(writes_x(&sd.to_le_bytes(), 4), None);
        // c.li a7, 5 = 0b010_0_10001_00101_01
        let cli: u16 = (0b010 << 13) | (17 << 7) | (5 << 2) | 1;
        assert_eq!(writes_x(&cli.to_le_bytes(), 2), Some(17));
        assert_eq!(writes_x(&[], 4), None);
    }

    #[test]
    fn a7_constants_are_tracked() {
        let addi = |rd: u32, rs1: u32, imm: i32| {
            (((imm as u32) & 0xfff) << 20 | rs1 << 15 | rd << 7 | 0x13).to_le_bytes()
        };
        assert_eq!(track_a7(&addi(17, 0, 1001), 4, None), Some(1001));
        assert_eq!(track_a7(&addi(17, 17, 100), 4, Some(1001)), Some(1101));
        assert_eq!(track_a7(&addi(17, 10, 0), 4, Some(5)), None); // mv a7, a0
        assert_eq!(track_a7(&addi(10, 0, 3), 4, Some(5)), Some(5)); // other rd
        // c.li a7, -1
        let cli: u16 = (0b010 << 13) | (1 << 12) | (17 << 7) | (0x1f << 2) | 1;
        assert_eq!(track_a7(&cli.to_le_bytes(), 2, None), Some(u64::MAX));
        // lui a7, 0x1 -> 4096
        let lui: u32 = (1 << 12) | (17 << 7) | 0x37;
        assert_eq!(track_a7(&lui.to_le_bytes(), 4, None), Some(4096));
    }
}
