//! Judging an unwound thread: its pc must lie on an instruction of a basic
//! block of its module's CFG, and every return address CFI found must
//! follow a call instruction. Each thread ends `ok`, `finding` or
//! `not-checked` with a reason; nothing undecided passes as ok.

use crate::check::addr::{Bias, LinkAddr, RuntimeAddr};
use crate::check::verify::{Ctx, Module};
use crate::dump::Thread;
use crate::region::RegionKind;
use crate::report::{
    Finding, FindingKind, FlowStatus, FollowsEvidence, Frame, FrameMethod, Location, Part, PcCheck,
    Reason, ThreadReport, Unchecked,
};

use super::{Walk, fde_for, locate};

/// The CFG a check may use: the whole module's, else the one of the
/// functions the threads are in.
fn cfg_of<'m>(m: &'m Module<'_>) -> Option<&'m talos_cfg::Cfg> {
    m.cfg.as_ref().or(m.local_cfg.as_ref())
}

/// The recovered function whose FDE (or entry) covers `link`, and whether
/// its blocks are all known.
fn cfg_function<'c>(
    m: &Module<'_>,
    cfg: &'c talos_cfg::Cfg,
    link: LinkAddr,
) -> Option<(&'c talos_cfg::Function, bool)> {
    let f = cfg.function_containing(link.get()).or_else(|| {
        let start = fde_for(m, link)?.start;
        cfg.function_at(start)
    })?;
    Some((f, cfg.complete(f.addr)))
}

/// Where a linear decode from `from` meets `to`.
enum Sweep {
    /// `to` is an instruction boundary; the instruction ending there.
    Boundary(Option<talos_cfg::arch::Insn>),
    /// `to` falls inside this instruction.
    Inside(talos_cfg::arch::Insn),
    /// Decoding failed before reaching `to`.
    Undecodable,
}

fn sweep(m: &Module<'_>, from: LinkAddr, to: LinkAddr) -> Option<Sweep> {
    let (from, to) = (from.get(), to.get());
    let img = m.image.as_ref()?;
    let dec = talos_cfg::arch::decoder_for(img).ok()?;
    let mut a = from;
    let mut last: Option<talos_cfg::arch::Insn> = None;
    // One instruction is at least one byte: bounded by the distance.
    let steps = to.saturating_sub(from).min(1 << 22);
    for _ in 0..=steps {
        if a == to {
            return Some(Sweep::Boundary(last));
        }
        if a > to {
            return last.map(Sweep::Inside);
        }
        let Some(insn) = img
            .bytes_from(a)
            .and_then(|b| dec.decode(b, a, last.as_ref()))
            .filter(|i| i.len > 0)
        else {
            return Some(Sweep::Undecodable);
        };
        a = insn.end();
        last = Some(insn);
    }
    None
}

fn is_call(i: &talos_cfg::arch::Insn) -> bool {
    matches!(
        i.flow,
        talos_cfg::arch::Flow::Call(_) | talos_cfg::arch::Flow::IndirectCall { .. }
    )
}

/// Whether the return address `link` follows a call instruction, and the
/// evidence: the CFG's return sites (whole-module with `--flow-cfg`, else
/// of the functions the threads are in), else a linear
/// decode of the function the FDE describes, else a backward decode of the
/// few bytes before it. `None` when nothing decides.
fn follows_call(m: &Module<'_>, link: LinkAddr) -> (Option<bool>, FollowsEvidence) {
    if let Some(cfg) = cfg_of(m) {
        if cfg.follows_call(link.get()) {
            return (Some(true), FollowsEvidence::Cfg);
        }
        if let Some((_, b)) = cfg.block_containing(link.get())
            && b.addr != link.get()
        {
            // Inside a recovered block: the instruction ending here is known
            // and is not a call.
            return (Some(false), FollowsEvidence::Cfg);
        }
        // Not a return site of a function whose every block is known.
        if let Some((_, true)) = cfg_function(m, cfg, link.back(1)) {
            return (Some(false), FollowsEvidence::Cfg);
        }
    }
    if let Some(f) = fde_for(m, link.back(1)) {
        match sweep(m, LinkAddr::in_file(f.start), link) {
            Some(Sweep::Boundary(Some(i))) => return (Some(is_call(&i)), FollowsEvidence::Decode),
            Some(Sweep::Boundary(None)) => return (Some(false), FollowsEvidence::Decode),
            Some(Sweep::Inside(_)) => return (Some(false), FollowsEvidence::Decode),
            Some(Sweep::Undecodable) | None => {}
        }
    }
    // No FDE: does any instruction ending exactly here decode as a call?
    let Some(img) = m.image.as_ref() else {
        return (None, FollowsEvidence::Nothing);
    };
    let Ok(dec) = talos_cfg::arch::decoder_for(img) else {
        return (None, FollowsEvidence::Nothing);
    };
    for back in 2..=15u64 {
        let at = link.back(back).get();
        if let Some(i) = img.bytes_from(at).and_then(|b| dec.decode(b, at, None))
            && i.end() == link.get()
            && is_call(&i)
        {
            return (Some(true), FollowsEvidence::Decode);
        }
    }
    (Some(false), FollowsEvidence::Decode)
}

fn flow_finding(t: &Thread, addr: u64, value: u64, loc: &Location, message: String) -> Finding {
    let mut f = Finding::new(FindingKind::Flow, addr, message);
    f.thread = Some(t.tid);
    f.value = Some(value);
    f.module = Some(loc.module.clone());
    f.function = loc.function.clone();
    f
}

fn show(loc: &Location) -> String {
    match (&loc.offset, &loc.function, &loc.function_offset) {
        (Some(o), Some(f), Some(fo)) => format!("{}+{o:#x}, {f}+{fo:#x}", loc.module),
        (Some(o), _, _) => format!("{}+{o:#x}", loc.module),
        _ => loc.module.clone(),
    }
}

/// How a pc was judged.
enum PcVerdict {
    /// Checked, ok.
    Ok(PcCheck),
    /// Checked, failed: the check and the sentence for the finding (after
    /// "pc X (where) ").
    Finding(PcCheck, String),
    /// Not checked: the check, the reason and the sentence.
    NotChecked(PcCheck, Reason, String),
    /// Neither the functions around it nor an FDE explain it: only the
    /// module's whole CFG can tell whether it is code.
    NeedWholeCfg,
}

/// Check a pc against the module's code.
///
/// With a CFG of its function: the pc must be inside a basic block, on an
/// instruction boundary. When the function's CFG is complete (no unresolved
/// indirect jump) a pc outside every block is a finding; when it is not, the
/// check falls back to decoding the function from its FDE start. A pc that
/// no function and no FDE explains is judged against the module's whole CFG:
/// in no function of it (padding, or bytes between functions) is a finding.
fn check_pc(m: &Module<'_>, bias: Bias, link: LinkAddr) -> PcVerdict {
    let at = |link: u64| bias.runtime(LinkAddr::in_file(link)).get();
    let cfg = cfg_of(m);
    if cfg.is_none()
        && let Some(e) = m.cfg_error.as_ref().or(m.local_error.as_ref())
    {
        return PcVerdict::NotChecked(
            PcCheck::NoCfg,
            Reason::CfgFailed,
            format!("the CFG of {} could not be recovered: {e}", m.report.path),
        );
    }
    if let Some(cfg) = cfg {
        if let Some((_, b)) = cfg.block_containing(link.get()) {
            return match sweep(m, LinkAddr::in_file(b.addr), link) {
                Some(Sweep::Inside(i)) => PcVerdict::Finding(
                    PcCheck::MidInstruction,
                    format!(
                        "is inside a basic block of the CFG but in the middle of the instruction at {:#x}",
                        at(i.addr)
                    ),
                ),
                // The CFG of just the functions around the pc cannot know
                // which callees never return, so it may run on into the
                // padding after a call that does not return: on a padding
                // instruction only the whole CFG decides.
                Some(Sweep::Boundary(_)) if m.cfg.is_none() && is_padding_at(m, link) => {
                    PcVerdict::NeedWholeCfg
                }
                Some(Sweep::Boundary(_)) => PcVerdict::Ok(PcCheck::InBlock),
                Some(Sweep::Undecodable) | None => PcVerdict::NotChecked(
                    PcCheck::Undecodable,
                    Reason::Undecodable,
                    format!(
                        "the block at {:#x} holding it does not decode up to it",
                        at(b.addr)
                    ),
                ),
            };
        }
        if let Some((f, true)) = cfg_function(m, cfg, link) {
            return PcVerdict::Finding(
                PcCheck::OutsideBlocks,
                format!(
                    "is in no basic block of {} (whose CFG is complete: every indirect jump resolved)",
                    f.display_name()
                ),
            );
        }
    }
    match fde_for(m, link) {
        Some(f) => match sweep(m, LinkAddr::in_file(f.start), link) {
            Some(Sweep::Boundary(_)) => PcVerdict::Ok(PcCheck::OnInstruction),
            Some(Sweep::Inside(i)) => PcVerdict::Finding(
                PcCheck::MidInstruction,
                format!(
                    "is in the middle of the instruction at {:#x} (decoding the function from its FDE start)",
                    at(i.addr)
                ),
            ),
            Some(Sweep::Undecodable) | None => PcVerdict::NotChecked(
                PcCheck::Undecodable,
                Reason::Undecodable,
                format!(
                    "the function its FDE describes (from {:#x}) does not decode up to it",
                    at(f.start)
                ),
            ),
        },
        None => match &m.cfg {
            Some(whole) => outside_functions(m, whole, link),
            None => PcVerdict::NeedWholeCfg,
        },
    }
}

/// A pc in no block of the module's whole CFG and under no FDE.
fn outside_functions(m: &Module<'_>, cfg: &talos_cfg::Cfg, link: LinkAddr) -> PcVerdict {
    let idx = cfg.functions.partition_point(|f| f.addr <= link.get());
    let before = idx.checked_sub(1).and_then(|i| cfg.functions.get(i));
    let after = cfg.functions.get(idx);
    if let Some(f) = before
        && link.get() < f.addr.saturating_add(f.size)
    {
        return if cfg.complete(f.addr) {
            PcVerdict::Finding(
                PcCheck::OutsideBlocks,
                format!(
                    "is in no basic block of {} (whose CFG is complete: every indirect jump resolved)",
                    f.display_name()
                ),
            )
        } else {
            PcVerdict::NotChecked(
                PcCheck::Undecided,
                Reason::Undecided,
                format!(
                    "lies inside {} but in none of its known blocks, and {} has indirect jumps talos could not resolve and no FDE",
                    f.display_name(),
                    f.display_name()
                ),
            )
        };
    }
    let between = match (before, after) {
        (Some(b), Some(a)) => format!("between {} and {}", b.display_name(), a.display_name()),
        (Some(b), None) => format!("after {}", b.display_name()),
        (None, Some(a)) => format!("before {}", a.display_name()),
        (None, None) => "in a module with no function".to_string(),
    };
    if is_padding_at(m, link) {
        PcVerdict::Finding(
            PcCheck::Padding,
            format!(
                "is in alignment padding {between}, which no function of the module's CFG covers"
            ),
        )
    } else {
        PcVerdict::Finding(
            PcCheck::OutsideFunctions,
            format!("is in the module's code {between} but in no function of its CFG"),
        )
    }
}

/// Whether the instruction at `link` is alignment padding (nop, trap or
/// zero fill) for the module's decoder.
fn is_padding_at(m: &Module<'_>, link: LinkAddr) -> bool {
    let link = link.get();
    let Some(img) = m.image.as_ref() else {
        return false;
    };
    let Ok(dec) = talos_cfg::arch::decoder_for(img) else {
        return false;
    };
    let Some(bytes) = img.bytes_from(link) else {
        return false;
    };
    dec.decode(bytes, link, None)
        .is_some_and(|i| dec.is_padding(bytes, &i))
}

/// The pc of a thread, and the exact pcs of frames a signal interrupted,
/// that only the module's whole CFG can judge: the modules to recover.
pub(crate) fn needs_whole_cfg(ctx: &Ctx<'_, '_>, t: &Thread, w: &Walk) -> Vec<usize> {
    if registers_missing(t, w) {
        return Vec::new();
    }
    let exact =
        w.pc.into_iter()
            .chain(w.cfi.iter().filter(|f| f.exact).map(|f| f.pc));
    let mut out = Vec::new();
    for a in exact {
        let Some(mi) = ctx.exec_module(a) else {
            continue;
        };
        let Some(m) = ctx.modules.get(mi) else {
            continue;
        };
        if m.image.is_none() || m.cfg.is_some() || m.cfg_error.is_some() {
            continue;
        }
        if let Some(bias) = m.bias
            && matches!(
                check_pc(m, bias, bias.link(RuntimeAddr::in_dump(a))),
                PcVerdict::NeedWholeCfg
            )
        {
            out.push(mi);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether the dump holds no registers for the thread: none at all, or
/// every register word zero (a zeroed `NT_PRSTATUS`; no running thread has
/// a zero stack pointer).
fn registers_missing(t: &Thread, w: &Walk) -> bool {
    w.pc.is_none() || w.sp.is_none() || t.regs.words.iter().all(|&x| x == 0)
}

/// Judge an exact pc (the thread's, or a signal frame's).
fn judge_pc(ctx: &Ctx<'_, '_>, pc: u64) -> PcVerdict {
    match ctx.exec_module(pc) {
        None => {
            let anon_exec = ctx
                .dump
                .region_containing(pc)
                .is_some_and(|r| r.perms.execute && !matches!(r.kind, RegionKind::File { .. }));
            if anon_exec {
                PcVerdict::Finding(
                    PcCheck::AnonymousCode,
                    format!("is in anonymous executable memory ({})", ctx.describe(pc)),
                )
            } else {
                PcVerdict::Finding(
                    PcCheck::OutsideCode,
                    format!(
                        "is in memory that holds no module's code ({})",
                        ctx.describe(pc)
                    ),
                )
            }
        }
        Some(mi) => match ctx.modules.get(mi).map(|m| (m, m.bias)) {
            Some((m, Some(bias))) if m.image.is_some() => {
                match check_pc(m, bias, bias.link(RuntimeAddr::in_dump(pc))) {
                    // The whole CFG was asked for (needs_whole_cfg) and is
                    // not there: it failed, or no image to recover it from.
                    PcVerdict::NeedWholeCfg => PcVerdict::NotChecked(
                        PcCheck::NoCfg,
                        Reason::CfgFailed,
                        format!(
                            "no function or FDE of {} covers it and its whole CFG is not available",
                            m.report.path
                        ),
                    ),
                    v => v,
                }
            }
            Some((m, _)) => PcVerdict::NotChecked(
                PcCheck::NoBinary,
                Reason::NoBinary,
                format!(
                    "{} has no binary talos could load ({})",
                    m.report.path, m.report.reason
                ),
            ),
            None => PcVerdict::NotChecked(
                PcCheck::NoBinary,
                Reason::NoBinary,
                "no module holds it".into(),
            ),
        },
    }
}

/// Judge a walk: the thread report, its findings, and why it could not be
/// judged (when it could not).
pub(crate) fn judge(
    ctx: &Ctx<'_, '_>,
    t: &Thread,
    w: Walk,
) -> (ThreadReport, Vec<Finding>, Option<Unchecked>) {
    let subject = format!("thread {}", t.tid);
    let mut findings = Vec::new();
    let mut not_checked: Option<(Reason, String)> = None;
    let (Some(pc), Some(sp), false) = (w.pc, w.sp, registers_missing(t, &w)) else {
        let detail = format!(
            "{subject}: the dump holds no registers for it (no pc and stack pointer, or every register zero): its execution flow cannot be checked"
        );
        let report = unjudged(
            ctx,
            t,
            (w.pc, w.sp),
            (Reason::NoRegisters, PcCheck::NoRegisters),
            "not unwound: no registers",
        );
        let un = Unchecked {
            part: Part::Thread,
            subject,
            reason: Reason::NoRegisters,
            detail,
        };
        return (report, findings, Some(un));
    };
    let location = locate(ctx, pc);
    let pc_check = match judge_pc(ctx, pc) {
        PcVerdict::Ok(c) => c,
        PcVerdict::Finding(c, why) => {
            findings.push(flow_finding(
                t,
                pc,
                pc,
                &location,
                format!("thread {}: pc {pc:#x} ({}) {why}", t.tid, show(&location)),
            ));
            c
        }
        PcVerdict::NotChecked(c, reason, why) => {
            not_checked.get_or_insert((reason, format!("pc {pc:#x} ({}): {why}", show(&location))));
            c
        }
        PcVerdict::NeedWholeCfg => PcCheck::NoCfg,
    };
    let mut frames = vec![registers_frame(pc, location)];
    for f in &w.cfi {
        let loc = locate(ctx, f.pc);
        let m = ctx.exec_module(f.pc).and_then(|i| ctx.modules.get(i));
        let at = f.slot.unwrap_or(f.pc);
        let slot_text = f
            .slot
            .map(|s| format!(" at stack slot {s:#x}"))
            .unwrap_or_default();
        let (follows, evidence) = if f.exact {
            // The pc a signal interrupted: judged like a thread's pc.
            match judge_pc(ctx, f.pc) {
                PcVerdict::Finding(_, why) => findings.push(flow_finding(
                    t,
                    at,
                    f.pc,
                    &loc,
                    format!(
                        "thread {}: interrupted pc {:#x}{slot_text} of a signal frame ({}) {why}",
                        t.tid,
                        f.pc,
                        show(&loc)
                    ),
                )),
                PcVerdict::NotChecked(_, reason, why) => {
                    not_checked.get_or_insert((
                        reason,
                        format!("signal frame pc {:#x} ({}): {why}", f.pc, show(&loc)),
                    ));
                }
                PcVerdict::Ok(_) | PcVerdict::NeedWholeCfg => {}
            }
            (None, FollowsEvidence::SignalFrame)
        } else {
            match m {
                None => {
                    findings.push(flow_finding(
                        t,
                        at,
                        f.pc,
                        &loc,
                        format!(
                            "thread {}: return address {:#x}{slot_text} found by CFI points outside code ({})",
                            t.tid,
                            f.pc,
                            ctx.describe(f.pc)
                        ),
                    ));
                    (None, FollowsEvidence::Nothing)
                }
                Some(m) if m.image.is_some() => {
                    // No bias: the return address has no link address, so
                    // nothing decides (never the runtime address taken for
                    // a link address).
                    let (follows, evidence) = m
                        .link(RuntimeAddr::in_dump(f.pc))
                        .map_or((None, FollowsEvidence::Nothing), |link| {
                            follows_call(m, link)
                        });
                    match follows {
                        Some(false) => findings.push(flow_finding(
                            t,
                            at,
                            f.pc,
                            &loc,
                            format!(
                                "thread {}: return address {:#x} ({}){slot_text} found by CFI does not follow a call instruction",
                                t.tid,
                                f.pc,
                                show(&loc)
                            ),
                        )),
                        None => {
                            not_checked.get_or_insert((
                                Reason::ReturnUndecided,
                                format!(
                                    "return address {:#x} ({}){slot_text}: nothing decides whether it follows a call",
                                    f.pc,
                                    show(&loc)
                                ),
                            ));
                        }
                        Some(true) => {}
                    }
                    (follows, evidence)
                }
                Some(m) => {
                    not_checked.get_or_insert((
                        Reason::NoBinary,
                        format!(
                            "return address {:#x}{slot_text} is in {}, which has no binary talos could load",
                            f.pc, m.report.path
                        ),
                    ));
                    (None, FollowsEvidence::Nothing)
                }
            }
        };
        frames.push(Frame {
            method: FrameMethod::Cfi,
            pc: f.pc,
            stack_slot: f.slot,
            location: loc,
            follows_call: follows,
            evidence: Some(evidence),
        });
    }
    if !w.complete {
        not_checked.get_or_insert((
            Reason::UnwindIncomplete,
            format!(
                "CFI unwinding stopped after {} frame(s) before the outermost one ({}): the return addresses above it were not checked",
                w.cfi.len(),
                w.stop
            ),
        ));
    }
    let mut scanned = 0usize;
    for &(slot, v) in &w.scan {
        if scanned >= 32 {
            break;
        }
        let Some(m) = ctx.exec_module(v).and_then(|i| ctx.modules.get(i)) else {
            continue;
        };
        let Some(link) = m.link(RuntimeAddr::in_dump(v)) else {
            continue;
        };
        let (follows, evidence) = follows_call(m, link);
        if follows != Some(true) {
            continue;
        }
        scanned += 1;
        frames.push(Frame {
            method: FrameMethod::Scan,
            pc: v,
            stack_slot: Some(slot),
            location: locate(ctx, v),
            follows_call: follows,
            evidence: Some(evidence),
        });
    }
    let flow = if !findings.is_empty() {
        FlowStatus::Finding
    } else if not_checked.is_some() {
        FlowStatus::NotChecked
    } else {
        FlowStatus::Ok
    };
    let unchecked = match (&flow, &not_checked) {
        (FlowStatus::NotChecked, Some((reason, why))) => Some(Unchecked {
            part: Part::Thread,
            subject: subject.clone(),
            reason: *reason,
            detail: format!("{subject}: {why}"),
        }),
        _ => None,
    };
    let report = ThreadReport {
        tid: t.tid,
        signal: t.signal,
        pc,
        sp,
        fs_base: t.fs_base(),
        location: frames
            .first()
            .map(|f| f.location.clone())
            .unwrap_or_else(|| locate(ctx, pc)),
        pc_check,
        flow,
        not_checked: match flow {
            FlowStatus::NotChecked => not_checked.map(|n| n.0),
            _ => None,
        },
        frames,
        unwind_stop: w.stop,
    };
    (report, findings, unchecked)
}

fn registers_frame(pc: u64, location: Location) -> Frame {
    Frame {
        method: FrameMethod::Registers,
        pc,
        stack_slot: None,
        location,
        follows_call: None,
        evidence: None,
    }
}

/// A thread report without flow checking (`--no-flow`): not checked, so
/// the verdict cannot be `clean`.
pub(crate) fn not_requested(ctx: &Ctx<'_, '_>, t: &Thread) -> (ThreadReport, Unchecked) {
    let un = Unchecked {
        part: Part::Thread,
        subject: format!("thread {}", t.tid),
        reason: Reason::NotRequested,
        detail: format!("thread {}: execution flow not checked (--no-flow)", t.tid),
    };
    let report = unjudged(
        ctx,
        t,
        (t.pc(), t.sp()),
        (Reason::NotRequested, PcCheck::NotRequested),
        "not unwound (--no-flow)",
    );
    (report, un)
}

/// The report of a thread whose flow is not checked for `reason`, with the
/// one frame its registers give. The report's `pc` and `sp` are numbers: a
/// register the dump lacks is written as 0, and `not_checked` says that no
/// value was judged.
fn unjudged(
    ctx: &Ctx<'_, '_>,
    t: &Thread,
    (pc, sp): (Option<u64>, Option<u64>),
    (reason, pc_check): (Reason, PcCheck),
    stop: &str,
) -> ThreadReport {
    let pc = pc.unwrap_or(0);
    let location = locate(ctx, pc);
    ThreadReport {
        tid: t.tid,
        signal: t.signal,
        pc,
        sp: sp.unwrap_or(0),
        fs_base: t.fs_base(),
        location: location.clone(),
        pc_check,
        flow: FlowStatus::NotChecked,
        not_checked: Some(reason),
        frames: vec![registers_frame(pc, location)],
        unwind_stop: stop.into(),
    }
}
