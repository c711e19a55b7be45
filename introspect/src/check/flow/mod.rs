//! Execution flow: every thread's pc must lie on an instruction of a basic
//! block of its module's CFG, and every return address on its stack must
//! follow a call instruction.
//!
//! What is provable, and what is not:
//! - Frame 0 comes from the thread's registers: exact.
//! - Return addresses found by `.eh_frame` CFI unwinding (gimli) are where
//!   the compiler says the caller's return address is saved: a value there
//!   that does not follow a call, or points outside code, is a `flow`
//!   finding.
//! - When CFI runs out (no FDE, unreadable stack), the stack is scanned for
//!   values pointing into code right after a call. Those frames are shown as
//!   `scan` and are never findings: a scan also finds stale values.

use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, Encoding, EndianSlice, EvaluationResult,
    LittleEndian, Location as GLocation, RegisterRule, UnwindContext, UnwindSection, Value,
};

mod judge;

pub(crate) use judge::{judge, needs_whole_cfg, not_requested};

use crate::check::addr::{LinkAddr, RuntimeAddr};
use crate::check::verify::{Ctx, Module};
use crate::dump::{Registers, Thread};
use crate::report::Location;

type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// A frame found by unwinding, before the CFG judges it.
#[derive(Debug, Clone)]
pub(crate) struct RawFrame {
    pc: u64,
    slot: Option<u64>,
    /// The pc is exact (the caller was interrupted by a signal), not a
    /// return address.
    exact: bool,
}

/// Result of unwinding one thread.
#[derive(Debug, Clone, Default)]
pub(crate) struct Walk {
    pc: Option<u64>,
    sp: Option<u64>,
    cfi: Vec<RawFrame>,
    stop: String,
    /// CFI unwinding reached the outermost frame (the return address is
    /// undefined, or 0): every return address on the stack was found.
    complete: bool,
    scan: Vec<(u64, u64)>,
}

/// `.eh_frame` bytes and address, and `.eh_frame_hdr` bytes and address.
type EhSections<'x> = (&'x [u8], u64, Option<(&'x [u8], u64)>);

fn eh_sections<'x>(m: &Module<'x>) -> Option<EhSections<'x>> {
    let img = m.image.as_ref()?;
    let sec = img
        .sections
        .iter()
        .find(|s| s.name == ".eh_frame" && s.has_bytes && s.alloc)?;
    let data = img.read(sec.addr, sec.size)?;
    let hdr = img
        .sections
        .iter()
        .find(|s| s.name == ".eh_frame_hdr" && s.has_bytes && s.alloc)
        .and_then(|h| Some((img.read(h.addr, h.size)?, h.addr)));
    Some((data, sec.addr, hdr))
}

/// Evaluate a DWARF expression of an unwind rule to an address or value.
fn eval_expr(
    ctx: &Ctx<'_, '_>,
    expr: gimli::Expression<Slice<'_>>,
    regs: &Registers,
    initial: Option<u64>,
) -> Option<u64> {
    let enc = Encoding {
        format: gimli::Format::Dwarf32,
        version: 4,
        address_size: ctx.dump.pointer_size(),
    };
    let mut eval = expr.evaluation(enc);
    eval.set_max_iterations(1000);
    if let Some(v) = initial {
        eval.set_initial_value(v);
    }
    let mut res = eval.evaluate().ok()?;
    for _ in 0..1000 {
        res = match res {
            EvaluationResult::Complete => break,
            EvaluationResult::RequiresMemory { address, size, .. } => {
                let v = match size {
                    8 => ctx.dump.read_u64(address)?,
                    4 => u64::from(u32::from_le_bytes(
                        ctx.dump.read(address, 4)?.try_into().ok()?,
                    )),
                    _ => return None,
                };
                eval.resume_with_memory(Value::Generic(v)).ok()?
            }
            EvaluationResult::RequiresRegister { register, .. } => {
                let v = regs.dwarf(register.0)?;
                eval.resume_with_register(Value::Generic(v)).ok()?
            }
            _ => return None,
        };
    }
    if res != EvaluationResult::Complete {
        return None;
    }
    let pieces = eval.result();
    match pieces.first().map(|p| &p.location) {
        Some(GLocation::Address { address }) => Some(*address),
        Some(GLocation::Value { value }) => value.to_u64(u64::MAX).ok(),
        _ => None,
    }
}

/// What one CFI step found: the caller's frame.
struct Step {
    /// The caller's registers.
    regs: Registers,
    /// The return address.
    ra: u64,
    /// The stack slot the return address was read from, when it was read
    /// from memory.
    slot: Option<u64>,
    /// Whether the frame is a signal trampoline's (the caller's pc is
    /// exact, not a return address).
    signal: bool,
}

/// Why a CFI step found no caller.
enum StepStop {
    /// The CFI says this is the outermost frame: the walk is complete.
    Outermost(&'static str),
    /// The walk could go no further: it stops incomplete.
    Stopped(String),
}

impl From<String> for StepStop {
    fn from(why: String) -> Self {
        StepStop::Stopped(why)
    }
}

impl From<&str> for StepStop {
    fn from(why: &str) -> Self {
        StepStop::Stopped(why.to_string())
    }
}

/// One CFI step: the caller's registers and the stack slot of the return
/// address, or why not.
fn step(
    ctx: &Ctx<'_, '_>,
    m: &Module<'_>,
    regs: &Registers,
    pc: u64,
    exact: bool,
    uctx: &mut UnwindContext<usize>,
) -> Result<Step, StepStop> {
    let (Some(bias), Some((eh_data, eh_addr, hdr))) = (m.bias, eh_sections(m)) else {
        return Err(format!("no .eh_frame for {}", m.report.path).into());
    };
    let eh = EhFrame::new(eh_data, LittleEndian);
    let mut bases = BaseAddresses::default().set_eh_frame(eh_addr);
    if let Some((_, a)) = hdr {
        bases = bases.set_eh_frame_hdr(a);
    }
    let link = bias.link(RuntimeAddr::in_dump(pc)).get();
    let lookup = if exact { link } else { link.wrapping_sub(1) };
    let via_hdr = hdr.and_then(|(h, _)| {
        let parsed = EhFrameHdr::new(h, LittleEndian)
            .parse(&bases, ctx.dump.pointer_size())
            .ok()?;
        let table = parsed.table()?;
        table
            .fde_for_address(&eh, &bases, lookup, EhFrame::cie_from_offset)
            .ok()
    });
    let fde = match via_hdr {
        Some(f) => f,
        None => eh
            .fde_for_address(&bases, lookup, EhFrame::cie_from_offset)
            .map_err(|_| {
                format!(
                    "no CFI for {:#x} ({}+{:#x})",
                    pc,
                    m.report.path,
                    pc.wrapping_sub(m.report.base)
                )
            })?,
    };
    let row = fde
        .unwind_info_for_address(&eh, &bases, uctx, lookup)
        .map_err(|e| format!("CFI for {pc:#x} unreadable: {e}"))?
        .clone();
    let cfa = match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => regs
            .dwarf(register.0)
            .ok_or_else(|| format!("CFA register {} unknown", register.0))?
            .wrapping_add(*offset as u64),
        CfaRule::Expression(e) => {
            let expr = e.get(&eh).map_err(|e| e.to_string())?;
            eval_expr(ctx, expr, regs, None)
                .ok_or_else(|| format!("CFA expression at {pc:#x} cannot be evaluated"))?
        }
    };
    let ra_reg = fde.cie().return_address_register();
    let mut next = regs.clone();
    let mut ra: Option<u64> = None;
    let mut slot: Option<u64> = None;
    let mut ra_undefined = true;
    for (reg, rule) in row.registers() {
        let (value, at) = match rule {
            RegisterRule::Undefined => {
                if *reg == ra_reg {
                    return Err(StepStop::Outermost(
                        "outermost frame (CFI marks the return address undefined)",
                    ));
                }
                continue;
            }
            RegisterRule::SameValue => (regs.dwarf(reg.0), None),
            RegisterRule::Offset(n) => {
                let a = cfa.wrapping_add(*n as u64);
                (ctx.dump.read_ptr(a), Some(a))
            }
            RegisterRule::ValOffset(n) => (Some(cfa.wrapping_add(*n as u64)), None),
            RegisterRule::Register(r) => (regs.dwarf(r.0), None),
            RegisterRule::Expression(e) => {
                let expr = e.get(&eh).map_err(|e| e.to_string())?;
                let a = eval_expr(ctx, expr, regs, Some(cfa));
                (a.and_then(|a| ctx.dump.read_ptr(a)), a)
            }
            RegisterRule::ValExpression(e) => {
                let expr = e.get(&eh).map_err(|e| e.to_string())?;
                (eval_expr(ctx, expr, regs, Some(cfa)), None)
            }
            RegisterRule::Constant(c) => (Some(*c), None),
            _ => (None, None),
        };
        if *reg == ra_reg {
            ra_undefined = false;
            match value {
                Some(v) => {
                    ra = Some(v);
                    slot = at;
                }
                None => {
                    return Err(StepStop::Stopped(match at {
                        Some(a) => format!("stack memory at {a:#x} is not in the dump"),
                        None => format!("return address rule at {pc:#x} cannot be evaluated"),
                    }));
                }
            }
        } else if let Some(v) = value {
            next.set_dwarf(reg.0, v);
        }
    }
    if ra_undefined {
        return Err(StepStop::Outermost(
            "outermost frame (no return-address rule)",
        ));
    }
    let ra = ra.ok_or("no return address")?;
    next.set_sp(cfa);
    next.set_pc(ra);
    Ok(Step {
        regs: next,
        ra,
        slot,
        signal: fde.is_signal_trampoline(),
    })
}

/// Unwind a thread with CFI, then scan if CFI stopped early.
pub(crate) fn unwind(ctx: &Ctx<'_, '_>, t: &Thread) -> Walk {
    let mut w = Walk {
        pc: t.pc(),
        sp: t.sp(),
        ..Walk::default()
    };
    let (Some(mut pc), Some(mut sp)) = (w.pc, w.sp) else {
        w.stop = format!("no registers for {}", ctx.dump.arch.name());
        return w;
    };
    let mut regs = t.regs.clone();
    let mut exact = true;
    let mut uctx = UnwindContext::new();
    let mut outermost = false;
    w.stop = format!("frame limit ({}) reached", ctx.opts.max_frames);
    for _ in 0..ctx.opts.max_frames {
        let Some(mi) = ctx.exec_module(pc) else {
            w.stop = format!("{pc:#x} is not in any module's code ({})", ctx.describe(pc));
            break;
        };
        let Some(m) = ctx.modules.get(mi) else { break };
        match step(ctx, m, &regs, pc, exact, &mut uctx) {
            Ok(Step {
                regs: next,
                ra,
                slot,
                signal,
            }) => {
                if ra == 0 {
                    w.stop = "end of stack (return address 0)".into();
                    outermost = true;
                    break;
                }
                // `step` sets the stack pointer of every frame it returns.
                let Some(new_sp) = next.sp() else {
                    w.stop = format!("the frame above {pc:#x} has no stack pointer; stopped");
                    break;
                };
                if new_sp <= sp && !signal {
                    w.stop =
                        format!("stack pointer did not grow ({sp:#x} -> {new_sp:#x}); stopped");
                    break;
                }
                w.cfi.push(RawFrame {
                    pc: ra,
                    slot,
                    exact: signal,
                });
                regs = next;
                pc = ra;
                sp = new_sp;
                exact = signal;
            }
            Err(StepStop::Outermost(why)) => {
                outermost = true;
                w.stop = why.to_string();
                break;
            }
            Err(StepStop::Stopped(why)) => {
                w.stop = why;
                break;
            }
        }
    }
    w.complete = outermost;
    if !outermost {
        // Heuristic: values on the stack above the last known sp that point
        // into code.
        let limit = ctx
            .dump
            .region_containing(sp)
            .map_or(sp, |r| r.start.saturating_add(r.bytes.len() as u64));
        let mut a = sp;
        let mut n = 0usize;
        while a.saturating_add(8) <= limit && n < ctx.opts.scan_words && w.scan.len() < 256 {
            if let Some(v) = ctx.dump.read_ptr(a)
                && ctx.exec_module(v).is_some()
            {
                w.scan.push((a, v));
            }
            let Some(next) = a.checked_add(u64::from(ctx.dump.pointer_size())) else {
                break;
            };
            a = next;
            n += 1;
        }
    }
    w
}

/// The addresses judging this walk checks: the pc, then every return
/// address the CFI unwinder found (flagged `true`).
pub(crate) fn checked_addresses(w: &Walk) -> Vec<(u64, bool)> {
    w.pc.iter()
        .map(|&a| (a, false))
        .chain(w.cfi.iter().filter(|f| !f.exact).map(|f| (f.pc, true)))
        .collect()
}

/// Modules whose CFG judging this walk needs.
pub(crate) fn modules_needed(ctx: &Ctx<'_, '_>, w: &Walk) -> Vec<usize> {
    let mut out: Vec<usize> =
        w.pc.iter()
            .copied()
            .chain(w.cfi.iter().map(|f| f.pc))
            .chain(w.scan.iter().map(|s| s.1))
            .filter_map(|a| ctx.exec_module(a))
            .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Where an address lies in a module's code, by symbol or FDE.
pub(crate) fn name_in(m: &Module<'_>, link: LinkAddr) -> Option<(String, u64)> {
    let at = link;
    let link = link.get();
    if let Some(cfg) = &m.cfg
        && let Some(f) = cfg.function_containing(link)
    {
        return Some((f.display_name(), link.wrapping_sub(f.addr)));
    }
    let img = m.image.as_ref()?;
    let idx = img.symbols.partition_point(|s| s.addr <= link);
    for s in img.symbols.get(..idx).unwrap_or(&[]).iter().rev().take(16) {
        if link < s.addr.saturating_add(s.size.max(1)) {
            return Some((s.name.clone(), link - s.addr));
        }
    }
    let f = fde_for(m, at)?;
    Some((format!("sub_{:x}", f.start), link - f.start))
}

/// The FDE covering link address `link`.
pub(crate) fn fde_for(m: &Module<'_>, link: LinkAddr) -> Option<talos_cfg::image::Fde> {
    let link = link.get();
    let img = m.image.as_ref()?;
    let idx = img.fdes.partition_point(|f| f.start <= link);
    img.fdes
        .get(..idx)?
        .iter()
        .rev()
        .take(8)
        .find(|f| link < f.start.saturating_add(f.len))
        .copied()
}

/// Where `addr` lies.
pub(crate) fn locate(ctx: &Ctx<'_, '_>, addr: u64) -> Location {
    let mi = ctx.exec_module(addr).or_else(|| ctx.module_at(addr));
    if let Some(m) = mi.and_then(|i| ctx.modules.get(i)) {
        let named = m
            .link(RuntimeAddr::in_dump(addr))
            .and_then(|l| name_in(m, l));
        return Location {
            module: m.report.path.clone(),
            offset: Some(addr - m.report.base),
            function: named.as_ref().map(|n| n.0.clone()),
            function_offset: named.map(|n| n.1),
        };
    }
    Location {
        module: ctx.describe(addr),
        offset: None,
        function: None,
        function_offset: None,
    }
}
