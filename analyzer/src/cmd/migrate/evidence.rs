//! The measurements the gate compares, computed here with `talos-cfg` and
//! `talos-introspect` (the `talos-migrate` crate links no parser).
//!
//! * **Seal** ([`seal_evidence`]): the main executable's code measured from
//!   the dump's memory (`talos.code/1`, `talos_introspect::measure`) against
//!   the reference's, plus the whole `talos introspect` check of the dump
//!   (every module's code against its file, findings, execution flow).
//! * **State** ([`measure_state`], scheme `talos.state/1`): the
//!   `talos.digest/1` state digest of the dump (writable and anonymous
//!   regions, kernel-owned bytes masked: rseq cpu fields, `[vdso]`,
//!   `[vvar]`, `[vsyscall]`) combined with an *envelope* hash of every other
//!   byte of the file (headers, notes with the registers, code and read-only
//!   regions, padding) and its length. Every byte of the received file is
//!   hashed exactly once, so one changed byte anywhere (except the masked
//!   rseq cpu fields), a truncation or padding changes the measurement, at
//!   the cost of one pass over the file.

use std::path::Path;

use anyhow::{Context, Result, bail};
use talos_introspect::digest::{DigestOptions, RegionStatus, state_digest_with};
use talos_introspect::measure::{self, CodeEvidence, Rseq};
use talos_introspect::report::{FindingKind, FrameMethod, Part, Verdict as ModVerdict};
use talos_migrate::{CodeVerdict, Digest, FlowVerdict, Measurement, Reference, SealEvidence};

use crate::cmd::reference;
use crate::input;

/// Scheme of the migration state measurement.
pub const STATE_SCHEME: &str = "talos.state/1";
const STATE_CONTEXT: &str = "talos 2026-11 migrate state v1";
const ENVELOPE_CONTEXT: &str = "talos 2026-11 migrate state envelope v1";

/// A state measurement and what it was made of.
#[derive(Debug, Clone)]
pub struct StateMeasure {
    /// The `talos.state/1` measurement.
    pub measurement: Measurement,
    /// The `talos.digest/1` root of the memory.
    pub memory_root: String,
    /// Bytes of the file.
    pub file_len: u64,
    /// Bytes hashed as memory pages.
    pub memory_bytes: u64,
    /// How the rseq areas were found.
    pub rseq: String,
}

/// Why a file could not be measured as a state.
#[derive(Debug)]
pub enum StateError {
    /// The file cannot be read at all (exit 2).
    Unreadable(anyhow::Error),
    /// The bytes are not a dump talos can digest: not the sealed state.
    NotAState(String),
}

fn populate(map: &memmap2::Mmap, slice: &[u8]) {
    #[cfg(target_os = "linux")]
    {
        let off = (slice.as_ptr() as usize).wrapping_sub(map.as_ptr() as usize);
        if off < map.len() {
            let len = slice.len().min(map.len() - off);
            let _ = map.advise_range(memmap2::Advice::PopulateRead, off, len);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (map, slice);
}

/// Measure the state in the ELF core at `path`.
///
/// # Errors
/// [`StateError::Unreadable`] when the file cannot be read,
/// [`StateError::NotAState`] when it is not a core talos can digest.
pub fn measure_state(path: &Path) -> Result<StateMeasure, StateError> {
    let shown = path.display().to_string();
    let bytes = input::map(path).map_err(StateError::Unreadable)?;
    if !talos_introspect::core::is_core(&bytes) {
        return Err(StateError::NotAState(format!("{shown}: not an ELF core")));
    }
    let dump = talos_introspect::core::parse(&bytes)
        .map_err(|e| StateError::NotAState(format!("{shown}: cannot read core: {e}")))?;
    let rseq = measure::detect_rseq(&dump);
    let mut options = DigestOptions::default();
    let rseq_text = match &rseq {
        Rseq::Registered { offset, .. } => {
            let (areas, _missing) = measure::rseq_areas(&dump, *offset);
            let n = areas.len();
            options.rseq_areas = areas;
            format!("{n} rseq area(s) masked at thread pointer {offset:+#x}")
        }
        Rseq::Unregistered { .. } => "rseq not registered: nothing to mask".to_string(),
        Rseq::Unknown(why) => format!("rseq areas unknown ({why})"),
    };
    let map: Option<&memmap2::Mmap> = match &bytes {
        input::Input::Mapped(m) => Some(m),
        input::Input::Owned(_) => None,
    };
    let prefetch = |slice: &[u8]| {
        if let Some(m) = map {
            populate(m, slice);
        }
    };
    let digest = state_digest_with(&dump.regions, &options, &prefetch)
        .map_err(|e| StateError::NotAState(format!("{shown}: cannot digest: {e}")))?;
    // File ranges hashed as memory pages: the bytes of included regions.
    let base = bytes.as_ptr() as usize;
    let file_len = bytes.len();
    let mut covered: Vec<(usize, usize)> = Vec::new();
    let mut all_inside = true;
    for r in &dump.regions {
        let included = digest
            .regions
            .iter()
            .any(|d| d.start == r.start && d.status == RegionStatus::Included);
        if !included || r.bytes.is_empty() {
            continue;
        }
        let off = (r.bytes.as_ptr() as usize).wrapping_sub(base);
        match off.checked_add(r.bytes.len()) {
            Some(end) if end <= file_len => covered.push((off, end)),
            _ => all_inside = false,
        }
    }
    if !all_inside {
        // Never happens for a parsed core (regions borrow the file); if it
        // did, hash the whole file as envelope: sound, only slower.
        covered.clear();
    }
    covered.sort_unstable();
    let mut env = blake3::Hasher::new_derive_key(ENVELOPE_CONTEXT);
    env.update(&(file_len as u64).to_le_bytes());
    let mut pos = 0usize;
    let gap = |from: usize, to: usize, env: &mut blake3::Hasher| {
        if to > from
            && let Some(b) = bytes.get(from..to)
        {
            env.update(&(from as u64).to_le_bytes());
            env.update(&((to - from) as u64).to_le_bytes());
            env.update(b);
        }
    };
    for &(s, e) in &covered {
        if s > pos {
            gap(pos, s, &mut env);
        }
        pos = pos.max(e);
    }
    gap(pos, file_len, &mut env);
    let envelope = env.finalize();
    let mut h = blake3::Hasher::new_derive_key(STATE_CONTEXT);
    h.update(&digest.root.0);
    h.update(envelope.as_bytes());
    let measurement = Measurement::new(STATE_SCHEME, Digest(*h.finalize().as_bytes()))
        .map_err(|e| StateError::Unreadable(e.into()))?;
    Ok(StateMeasure {
        measurement,
        memory_root: digest.root.to_hex(),
        file_len: file_len as u64,
        memory_bytes: digest.bytes,
        rseq: rseq_text,
    })
}

/// What the source found in the dump.
#[derive(Debug, Clone)]
pub struct SealFindings {
    /// The evidence handed to the gate.
    pub evidence: SealEvidence,
    /// One sentence per reason the code or flow verdict is not clean.
    pub why: Vec<String>,
    /// The state measurement details.
    pub state: StateMeasure,
    /// The introspect overall verdict.
    pub introspect: &'static str,
    /// What the code check established, from the evidence (one line).
    pub code_line: String,
    /// What the flow check established, from the evidence (one line).
    pub flow_line: String,
}

/// Introspect the dump at `dump_path` against `reference` and measure its
/// state. `binary`, when given, must be the reference's binary; it is the
/// file the main module's code is compared with.
///
/// # Errors
/// Unreadable files, a dump that is not an ELF core, a `--binary` that is
/// not the reference's.
pub fn seal_evidence(
    dump_path: &Path,
    binary: Option<&Path>,
    reference: &Reference,
) -> Result<SealFindings> {
    let r = reference.body();
    if let Some(b) = binary {
        let m = reference::file_blake3(b)?;
        if m != r.binary {
            bail!(
                "{}: --binary is not the reference's binary ({m}, the reference says {})",
                b.display(),
                r.binary
            );
        }
    }
    // The state digest runs on its own thread (and rayon's pool) while the
    // introspection below recovers control flow: on a 2-core machine the
    // two overlap.
    let (checked, state) = std::thread::scope(|scope| {
        let state = scope.spawn(|| measure_state(dump_path));
        let checked = check_code(dump_path, binary, reference);
        let state = state
            .join()
            .unwrap_or_else(|_| Err(StateError::NotAState("the state digest panicked".into())));
        (checked, state)
    });
    let c = checked?;
    let state = state.map_err(|e| match e {
        StateError::Unreadable(e) => e,
        StateError::NotAState(s) => anyhow::anyhow!(s),
    })?;
    let mut why = c.modified;
    why.extend(c.unverifiable);
    why.extend(c.flow_findings);
    why.extend(c.flow_unchecked);
    Ok(SealFindings {
        evidence: SealEvidence {
            reference_code: r.code.clone(),
            code: c.code,
            flow: c.flow,
            state: state.measurement.clone(),
        },
        why,
        state,
        introspect: c.introspect,
        code_line: c.code_line,
        flow_line: c.flow_line,
    })
}

/// What the code and flow checks found: verdicts, the sentences behind
/// them, and the lines the seal prints.
struct CodeCheck {
    code: CodeVerdict,
    flow: FlowVerdict,
    modified: Vec<String>,
    unverifiable: Vec<String>,
    flow_findings: Vec<String>,
    flow_unchecked: Vec<String>,
    introspect: &'static str,
    code_line: String,
    flow_line: String,
}

fn check_code(dump_path: &Path, binary: Option<&Path>, reference: &Reference) -> Result<CodeCheck> {
    let r = reference.body();
    let shown = dump_path.display().to_string();
    let bytes = input::map(dump_path)?;
    if !talos_introspect::core::is_core(&bytes) {
        bail!("{shown}: --dump is not an ELF core");
    }
    let dump =
        talos_introspect::core::parse(&bytes).with_context(|| format!("{shown}: cannot read"))?;
    let mut modified = Vec::new();
    let mut unverifiable = Vec::new();
    let mut flow_findings = Vec::new();
    let mut flow_unchecked = Vec::new();
    // 1. The main executable's code, measured from memory, against the
    // reference's code measurement.
    let mut measured: Option<(String, Measurement)> = None;
    match measure::code_measurement(&dump) {
        CodeEvidence::Measured(m) => {
            let found = Measurement::new(talos_cfg::measure::CODE_SCHEME, Digest(m.digest))?;
            if found != r.code {
                modified.push(format!(
                    "{}: code in memory measures {found}, the reference says {}",
                    m.module.path, r.code
                ));
            }
            measured = Some((m.module.path.clone(), found));
        }
        CodeEvidence::Unverifiable(why) => unverifiable.push(why),
        CodeEvidence::Inconsistent(why) => modified.push(why),
    }
    // 2. The whole introspection: every module against its file, findings,
    // execution flow.
    let binaries: Vec<std::path::PathBuf> = binary.map(Path::to_path_buf).into_iter().collect();
    let resolver = crate::cmd::introspect::resolver(None, &binaries, None)?;
    let report = talos_introspect::verify::verify(
        &dump,
        &resolver,
        &shown,
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
                flow_findings.push(format!("{}: {}", f.kind.name(), f.message));
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
            Part::Dump if u.reason != talos_introspect::report::Reason::NoRegisters => {
                unverifiable.push(format!("not checked ({}): {}", u.reason.code(), u.detail))
            }
            Part::Dump => flow_unchecked.push(format!(
                "flow not checked ({}): {}",
                u.reason.code(),
                u.detail
            )),
            Part::Module | Part::KernelCode => {}
        }
    }
    let code = if !modified.is_empty() {
        CodeVerdict::Modified
    } else if !unverifiable.is_empty() {
        CodeVerdict::Unverifiable
    } else {
        CodeVerdict::Clean
    };
    let flow = if !flow_findings.is_empty() {
        FlowVerdict::Violation
    } else if !flow_unchecked.is_empty() {
        FlowVerdict::Unverified
    } else {
        FlowVerdict::Ok
    };
    let code_line = code_line(code, measured.as_ref(), &report, &modified, &unverifiable);
    let flow_line = flow_line(flow, &report, &flow_findings, &flow_unchecked);
    Ok(CodeCheck {
        code,
        flow,
        modified,
        unverifiable,
        flow_findings,
        flow_unchecked,
        introspect: report.verdict.name(),
        code_line,
        flow_line,
    })
}

/// The seal's `code` line, from what was compared.
fn code_line(
    code: CodeVerdict,
    measured: Option<&(String, Measurement)>,
    report: &talos_introspect::report::Report,
    modified: &[String],
    unverifiable: &[String],
) -> String {
    match code {
        CodeVerdict::Clean => {
            let clean: Vec<&talos_introspect::report::ModuleReport> = report
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
    report: &talos_introspect::report::Report,
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
