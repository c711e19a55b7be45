//! The source's evidence: code and flow verdicts of the frozen app.
//!
//! 1. The main executable's code, measured from the dump's memory
//!    (`talos.code/1`, `talos_introspect::measure`), against the
//!    reference's code measurement.
//! 2. The whole `talos introspect` check: every module's code against its
//!    file, anonymous executable and W+X memory, GOT hooks, and the flow
//!    check of every thread's registers.
//!
//! For a CRIU image, the code pages the image does not hold come from the
//! files on this host (what `criu restore` maps), so these checks say that
//! the code is the file's and that the file is the reference's.

use talos_introspect::dump::Dump;
use talos_introspect::measure::{self, CodeEvidence};
use talos_introspect::report::{
    FindingKind, FrameMethod, ModuleReport, Overall, Part, Reason, Report, Verdict as ModVerdict,
};
use talos_introspect::resolve::Resolver;
use talos_migrate::{CodeVerdict, Digest, FlowVerdict, Measurement, ReferenceBody, SealEvidence};

use crate::state::StateMeasure;

/// What the code check found: the verdicts and the sentences behind them.
#[derive(Debug, Clone)]
pub struct CodeFindings {
    /// The code verdict handed to the gate.
    pub code: CodeVerdict,
    /// The flow verdict handed to the gate.
    pub flow: FlowVerdict,
    /// Why the code was found modified.
    pub modified: Vec<String>,
    /// Why the code could not be proven.
    pub unverifiable: Vec<String>,
    /// Why the flow check failed.
    pub flow_findings: Vec<String>,
    /// What the flow check could not examine (a thread, a frame).
    pub flow_unchecked: Vec<String>,
    /// The overall verdict of the introspection.
    pub introspect: Overall,
    /// What the code check established, from the evidence (one line).
    pub code_line: String,
    /// What the flow check established, from the evidence (one line).
    pub flow_line: String,
}

impl CodeFindings {
    /// Every sentence behind a verdict that is not clean, code before flow.
    #[must_use]
    pub fn why(&self) -> Vec<String> {
        let mut v = self.modified.clone();
        v.extend(self.unverifiable.iter().cloned());
        v.extend(self.flow_findings.iter().cloned());
        v.extend(self.flow_unchecked.iter().cloned());
        v
    }
}

/// Check the code and flow of `dump` against `reference`; `resolver` finds
/// the module files (the reference's binary first, when the caller added
/// it).
///
/// # Errors
/// Never for a dump (the verdicts carry what was found); a malformed code
/// measurement label only.
pub fn check_code(
    dump: &Dump<'_>,
    resolver: &Resolver,
    shown: &str,
    reference: &ReferenceBody,
) -> talos_migrate::Result<CodeFindings> {
    let mut modified = Vec::new();
    let mut unverifiable = Vec::new();
    let mut flow = Vec::new();
    let mut flow_unchecked = Vec::new();
    let mut measured: Option<(String, Measurement)> = None;
    match measure::code_measurement(dump) {
        CodeEvidence::Measured(m) => {
            let found = Measurement::new(talos_cfg::measure::CODE_SCHEME, Digest(m.digest))?;
            if found != reference.code {
                modified.push(format!(
                    "{}: code in memory measures {found}, the reference says {}",
                    m.module.path, reference.code
                ));
            }
            measured = Some((m.module.path.clone(), found));
        }
        CodeEvidence::Unverifiable(why) => unverifiable.push(why),
        CodeEvidence::Inconsistent(why) => modified.push(why),
    }
    let report = talos_introspect::verify::verify(
        dump,
        resolver,
        shown,
        &talos_introspect::verify::Options::default(),
    );
    for m in &report.modules {
        match m.verdict {
            ModVerdict::Tampered | ModVerdict::BinaryChanged => {
                modified.push(format!("{}: {} ({})", m.path, m.verdict.name(), m.reason));
            }
            ModVerdict::Unverifiable => {
                unverifiable.push(format!("{}: unverifiable ({})", m.path, m.reason));
            }
            ModVerdict::Clean | ModVerdict::Kernel => {}
        }
    }
    for f in &report.findings {
        match f.kind {
            FindingKind::Flow | FindingKind::GotHook => {
                flow.push(format!("{}: {}", f.kind.name(), f.message));
            }
            FindingKind::AnonExec | FindingKind::Wx => {
                modified.push(format!("{}: {}", f.kind.name(), f.message));
            }
        }
    }
    for u in &report.unchecked {
        match u.part {
            Part::Thread => flow_unchecked.push(format!(
                "flow not checked ({}): {}",
                u.reason.code(),
                u.detail
            )),
            // Modules and kernel code also have an unverifiable verdict
            // (listed above); anything else about the dump is code it
            // could not examine.
            Part::Dump if u.reason != Reason::NoRegisters => {
                unverifiable.push(format!("not checked ({}): {}", u.reason.code(), u.detail));
            }
            Part::Dump => flow_unchecked.push(format!(
                "flow not checked ({}): {}",
                u.reason.code(),
                u.detail
            )),
            Part::Module | Part::KernelCode => {}
        }
    }
    // A CRIU image whose files are not the recorded ones holds none of their
    // pages: say why, next to the module verdicts.
    for a in &dump.anomalies {
        if a.code == "criu-file-changed" || a.code == "criu-file-missing" {
            unverifiable.push(format!("{}: {}", a.code, a.message));
        }
    }
    let code = if !modified.is_empty() {
        CodeVerdict::Modified
    } else if !unverifiable.is_empty() {
        CodeVerdict::Unverifiable
    } else {
        CodeVerdict::Clean
    };
    let flow_verdict = if !flow.is_empty() {
        FlowVerdict::Violation
    } else if !flow_unchecked.is_empty() {
        FlowVerdict::Unverified
    } else {
        FlowVerdict::Ok
    };
    let code_line = code_line(code, measured.as_ref(), &report, &modified, &unverifiable);
    let flow_line = flow_line(flow_verdict, &report, &flow, &flow_unchecked);
    Ok(CodeFindings {
        code,
        flow: flow_verdict,
        modified,
        unverifiable,
        flow_findings: flow,
        flow_unchecked,
        introspect: report.verdict,
        code_line,
        flow_line,
    })
}

/// The seal's `code` line, from what was compared.
fn code_line(
    code: CodeVerdict,
    measured: Option<&(String, Measurement)>,
    report: &Report,
    modified: &[String],
    unverifiable: &[String],
) -> String {
    match code {
        CodeVerdict::Clean => {
            let clean: Vec<&ModuleReport> = report
                .modules
                .iter()
                .filter(|m| m.verdict == ModVerdict::Clean)
                .collect();
            let bytes: u64 = clean.iter().map(|m| m.compared_bytes).sum();
            let main = measured.map_or_else(String::new, |(path, m)| {
                format!("{path} measures {m} as the reference says; ")
            });
            format!(
                "clean: {main}{} module(s) equal their binaries ({bytes} code bytes compared); no anonymous or writable executable memory",
                clean.len()
            )
        }
        CodeVerdict::Modified => {
            format!("modified: {}", modified.first().map_or("", String::as_str))
        }
        CodeVerdict::Unverifiable => format!(
            "unverifiable: {}",
            unverifiable.first().map_or("", String::as_str)
        ),
    }
}

/// The seal's `flow` line, from what was checked.
fn flow_line(
    flow: FlowVerdict,
    report: &Report,
    findings: &[String],
    unchecked: &[String],
) -> String {
    match flow {
        FlowVerdict::Ok => {
            let returns: usize = report
                .threads
                .iter()
                .map(|t| {
                    t.frames
                        .iter()
                        .filter(|f| f.follows_call == Some(true) && f.method == FrameMethod::Cfi)
                        .count()
                })
                .sum();
            let got: u64 = report.modules.iter().map(|m| m.pointers_checked).sum();
            format!(
                "ok: {} thread(s) unwound to their outermost frame, every pc on an instruction of its function and {returns} return address(es) after a call; {got} GOT and init/fini pointer(s) into loaded code",
                report.threads.len()
            )
        }
        FlowVerdict::Violation => {
            format!("violation: {}", findings.first().map_or("", String::as_str))
        }
        FlowVerdict::Unverified => format!(
            "unverifiable: {}",
            unchecked.first().map_or("", String::as_str)
        ),
    }
}

/// The evidence the gate's `seal` takes.
#[must_use]
pub fn seal_evidence(
    code: &CodeFindings,
    state: &StateMeasure,
    reference: &ReferenceBody,
) -> SealEvidence {
    SealEvidence {
        reference_code: reference.code.clone(),
        code: code.code,
        flow: code.flow,
        state: state.measurement.clone(),
    }
}
