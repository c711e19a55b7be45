//! `talos-audit`: audits of enclave binaries.
//!
//! Design tenets:
//! - **On the graph, not on bytes.** Instructions are found by walking the
//!   blocks `talos-cfg` recovered, and judged by whether a root (entry,
//!   export, init/fini, address-taken function) reaches them.
//! - **Per TEE and per architecture.** Every rule says which TEE and which
//!   architectures it applies to; the report lists the rules that did not
//!   apply and why, and the ones that could not be checked.
//! - **Honest about evidence.** SIGSTRUCT signatures are verified in
//!   software; what is only stated (MRENCLAVE) is reported as stated.
//! - **Stable.** Rule ids, fingerprints and the `talos.audit/1` document
//!   are stable across runs, thread counts and rebuilds.
//! - **No I/O.** The caller passes the bytes of the binary and of the
//!   metadata files; this crate never prints and never exits.

pub mod baseline;
pub mod check;
pub mod elfinfo;
mod error;
pub mod gramine;
pub mod model;
pub mod peinfo;
pub mod policy;
pub mod reach;
pub mod reader;
pub mod rules;
pub mod sarif;
pub mod scan;
pub mod schema;
pub mod sgx;
mod unparsed;

use std::collections::BTreeMap;

use talos_cfg::{Arch, Format, Image};

use crate::check::Auditor;

use crate::rules::Family;

pub use baseline::Baseline;
pub use error::{Error, Result};
pub use model::{AuditVerdict, Finding, RuleState, RuleStatus, Severity, Tee, TeeChoice};
pub use policy::Policy;
pub use rules::RuleId;
pub use schema::Report;

/// Key-derivation context of finding fingerprints.
pub const FINGERPRINT_CONTEXT: &str = "talos 2026-11 audit fingerprint v1";

/// A file next to the binary (Gramine `.sig` or `.manifest.sgx`).
#[derive(Debug, Clone, Copy)]
pub struct Aux<'a> {
    /// Path as given or found.
    pub path: &'a str,
    /// Its bytes.
    pub bytes: &'a [u8],
}

/// What to audit.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Path of the binary, as given.
    pub path: &'a str,
    /// Its bytes.
    pub bytes: &'a [u8],
    /// Gramine SIGSTRUCT file, if any.
    pub sig: Option<Aux<'a>>,
    /// Gramine manifest, if any.
    pub manifest: Option<Aux<'a>>,
}

/// How to audit.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The TEE, or detect it.
    pub tee: TeeChoice,
    /// Rules, severities, failing severity.
    pub policy: Policy,
    /// Findings already accepted.
    pub baseline: Option<Baseline>,
}

/// Fingerprint of a finding: BLAKE3 (derive-key mode) over the rule id, a
/// function key (name, or position-independent digest when unnamed) and a
/// position-independent location key. Addresses are not part of it.
#[must_use]
pub fn fingerprint(rule: &str, function_key: &str, location_key: &str) -> String {
    let mut h = blake3::Hasher::new_derive_key(FINGERPRINT_CONTEXT);
    for part in [rule, function_key, location_key] {
        h.update(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

/// The TEE an audit is for, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TeeDecision {
    /// The TEE.
    pub(crate) tee: Tee,
    /// Why (`--tee`, the policy, or what auto-detection saw).
    pub(crate) reason: String,
}

impl TeeDecision {
    fn new(tee: Tee, reason: &str) -> Self {
        TeeDecision {
            tee,
            reason: reason.to_string(),
        }
    }

    /// `--tee` wins, then the policy's `tee`, then `auto`.
    pub(crate) fn make(options: &Options, auto: impl FnOnce() -> TeeDecision) -> Self {
        match options.tee {
            TeeChoice::Given(t) => TeeDecision {
                tee: t,
                reason: format!("--tee {}", t.name()),
            },
            TeeChoice::Auto => match options.policy.tee {
                Some(t) => TeeDecision {
                    tee: t,
                    reason: format!("policy tee = \"{}\"", t.name()),
                },
                None => auto(),
            },
        }
    }
}

/// What the headers of the binary say, by format; `Err(why)` when they
/// could not be read (the rules that need them are then not checked).
enum Headers {
    Elf(std::result::Result<elfinfo::ElfFacts, String>),
    Pe(std::result::Result<peinfo::PeFacts, String>),
}

impl Headers {
    fn elf(&self) -> Option<&elfinfo::ElfFacts> {
        match self {
            Headers::Elf(e) => e.as_ref().ok(),
            Headers::Pe(_) => None,
        }
    }

    /// What the readers recorded as not held by the file.
    fn anomalies(&self) -> &[String] {
        match self {
            Headers::Elf(Ok(e)) => &e.anomalies,
            Headers::Pe(Ok(p)) => &p.anomalies,
            Headers::Elf(Err(_)) | Headers::Pe(Err(_)) => &[],
        }
    }
}

/// Audit a binary.
///
/// # Errors
/// When the binary cannot be loaded or analysed, or a metadata file is not
/// even parseable ([`Error::Metadata`]: a Gramine manifest that is not TOML).
/// Malformed SGX metadata inside a loadable binary is a finding, not an
/// error.
pub fn audit(input: &Input<'_>, options: &Options) -> Result<Report> {
    let bin_err = |source| Error::Binary {
        path: input.path.to_string(),
        source,
    };
    let image = match talos_cfg::load(input.bytes) {
        Ok(i) => i,
        // An ELF file whose headers cannot be parsed: no rule can be
        // checked, which is not a pass.
        Err(e) if unparsed::headers_unreadable(input.bytes, &e) => {
            return Ok(unparsed::report(input, options, &e));
        }
        Err(e) => return Err(bin_err(e)),
    };
    let cfg = talos_cfg::analyze(&image, &talos_cfg::Options::default()).map_err(bin_err)?;
    let dec = talos_cfg::arch::decoder_for(&image).map_err(bin_err)?;
    let manifest = match input.manifest {
        Some(m) => Some(gramine::ManifestFile {
            path: m.path,
            manifest: gramine::Manifest::parse(m.bytes).map_err(|detail| Error::Metadata {
                path: m.path.to_string(),
                what: "Gramine manifest",
                detail,
            })?,
        }),
        None => None,
    };
    let headers = match image.format {
        Format::Elf => Headers::Elf(elfinfo::read(input.bytes).map_err(|e| e.to_string())),
        Format::Pe => Headers::Pe(peinfo::read(input.bytes, image.base)),
    };
    let mut anomalies = headers.anomalies().to_vec();
    if cfg.capped() {
        // The rules over the graph saw only part of the code.
        let caps: Vec<&str> = cfg.caps.iter().map(|h| h.kind.name()).collect();
        anomalies.push(format!(
            "control-flow graph incomplete (stopped at: {}): the rules over the code saw only part of it",
            caps.join(", ")
        ));
    }
    let sgxmeta = headers
        .elf()
        .and_then(|e| e.section(".note.sgxmeta"))
        .cloned();

    let policy = &options.policy;
    let decision = TeeDecision::make(options, || {
        detect(&image, headers.elf(), sgxmeta.is_some(), manifest.is_some())
    });
    let tee = decision.tee;

    let mut states: BTreeMap<RuleId, RuleState> = BTreeMap::new();
    for r in rules::RULES {
        let state = if !policy.enabled(r.id) {
            RuleState::Disabled
        } else {
            match rules::applies(r, tee, image.arch, image.format) {
                Ok(()) => RuleState::Applied,
                Err(why) => RuleState::NotApplicable(why),
            }
        };
        states.insert(r.id, state);
    }
    // Scan only for what an applied rule needs: an audit without a TEE
    // whose stack protector shows in the symbols decodes nothing twice.
    let on = |id: RuleId| matches!(states.get(&id), Some(RuleState::Applied));
    // The instruction scan, and the reachability it feeds, run whenever an
    // SGX-family rule runs (the metadata rules too, which need neither: the
    // binary facts of every SGX audit have always carried the reachable
    // function counts) or a Gramine emulation rule does.
    let instruction_rules = rules::RULES.iter().any(|r| {
        on(r.id)
            && (r.family() == Family::Sgx
                || matches!(
                    r.id,
                    RuleId::GramineEmulatedSyscall | RuleId::GramineEmulatedInstruction
                ))
    });
    let plan = scan::Plan {
        instructions: instruction_rules,
        lvi: on(RuleId::SgxLviUnhardened),
        canary: on(RuleId::HardeningNoStackProtector)
            && headers
                .elf()
                .is_some_and(|e| e.stack_chk_symbols.is_empty()),
        ecalls: tee == Tee::Keystone,
    };
    let needs_reach = plan.instructions || plan.lvi || plan.ecalls;
    let scan = if plan.any() {
        scan::scan(&image, &cfg, dec.as_ref(), plan, needs_reach)
    } else {
        scan::Scan::default()
    };
    anomalies.extend(scan.anomalies.iter().cloned());
    let reach = if needs_reach {
        let exports = match &headers {
            Headers::Elf(Ok(e)) => e.exports.clone(),
            // Unreadable headers leave the ELF rules unchecked already.
            Headers::Elf(Err(_)) => Vec::new(),
            // The export directory (the loader's symbol list may merge an
            // export with the COFF symbol of the same name).
            Headers::Pe(_) => peinfo::exports(input.bytes, image.base).unwrap_or_else(|why| {
                anomalies.push(format!("{why}; exported functions are not roots"));
                Vec::new()
            }),
        };
        reach::reach(&image, &cfg, &exports, &scan.address_taken)
    } else {
        reach::Reach::default()
    };
    anomalies.extend(reach.anomalies.iter().cloned());

    let mut a = Auditor {
        input,
        image: &image,
        cfg: &cfg,
        tee,
        policy,
        findings: Vec::new(),
        states,
        pi: None,
        reach: &reach,
        anomalies: Vec::new(),
    };
    a.instructions(&scan);
    let lvi = a.lvi(&scan);
    let hardening = match &headers {
        Headers::Elf(e) => a.hardening(e.as_ref().map_err(String::as_str), &scan),
        Headers::Pe(p) => a.pe_hardening(p.as_ref().map_err(String::as_str)),
    };
    let sgx = matches!(tee, Tee::Sgx | Tee::Gramine)
        .then(|| a.sgx_metadata(sgxmeta.as_ref(), manifest.as_ref()));
    let gramine = (tee == Tee::Gramine).then(|| a.gramine(manifest.as_ref(), sgx.as_ref()));
    let keystone = (tee == Tee::Keystone).then(|| a.keystone(&scan));
    anomalies.append(&mut a.anomalies);

    let mut notes = Vec::new();
    if sgx.as_ref().is_some_and(|s| s.sigstruct.is_some()) {
        notes.push(
            "No SGX hardware was used: the SIGSTRUCT signature and Q1/Q2 were verified in software; \
             MRENCLAVE is reported as the SIGSTRUCT states it, not recomputed from the enclave pages."
                .to_string(),
        );
    }
    if !cfg.unresolved.is_empty() {
        notes.push(format!(
            "{} indirect jumps were not resolved; code reached only through them counts as \
             reachable only when its address is taken somewhere.",
            cfg.unresolved.len()
        ));
    }
    // In the order of the id text, as talos.audit/1 has always listed them.
    let mut unchecked: Vec<(&str, &str)> = a
        .states
        .iter()
        .filter_map(|(id, state)| match state {
            RuleState::Unchecked(why) => Some((id.name(), why.as_str())),
            _ => None,
        })
        .collect();
    unchecked.sort_unstable();
    for (id, why) in unchecked {
        notes.push(format!("{id} could not be checked: {why}"));
    }

    let findings = settle(std::mem::take(&mut a.findings), options.baseline.as_ref());
    let mut counts: BTreeMap<Severity, u64> = BTreeMap::new();
    let mut suppressed = 0;
    for f in &findings {
        if f.suppressed {
            suppressed += 1;
        } else {
            *counts.entry(f.severity).or_insert(0) += 1;
        }
    }
    // Every rule has a state (set above, in table order).
    let rules_status: Vec<RuleStatus> = std::mem::take(&mut a.states)
        .into_iter()
        .map(|(id, state)| RuleStatus {
            id,
            severity: policy.severity_of(id),
            state,
        })
        .collect();
    let binary = model::BinaryFacts {
        path: input.path.to_string(),
        format: image.format.name().to_string(),
        arch: image.arch.name().to_string(),
        kind: match image.kind {
            talos_cfg::ImageKind::Executable => "executable",
            talos_cfg::ImageKind::PieExecutable => "pie_executable",
            talos_cfg::ImageKind::SharedObject => "shared_object",
        }
        .to_string(),
        blake3: blake3::hash(input.bytes).to_hex().to_string(),
        build_id: cfg.build_id.clone(),
        graph_digest: Some(cfg.digest.to_hex()),
        functions: cfg.functions.len() as u64,
        reachable_functions: reach.functions.len() as u64,
        roots: reach.roots as u64,
        reachability: needs_reach,
    };
    let mut report = Report {
        schema: schema::SCHEMA.to_string(),
        talos_version: env!("CARGO_PKG_VERSION").to_string(),
        binary,
        tee,
        tee_reason: decision.reason,
        fail_on: policy.fail_on,
        verdict: AuditVerdict::Pass,
        counts,
        suppressed,
        findings,
        rules: rules_status,
        hardening,
        sgx,
        gramine,
        keystone,
        lvi,
        notes,
        anomalies,
    };
    report.verdict = report.conclude();
    Ok(report)
}

/// The findings as reported: the baseline's marked suppressed, most severe
/// first (then by rule id text, address, artifact, location), duplicates
/// dropped.
fn settle(mut findings: Vec<Finding>, baseline: Option<&Baseline>) -> Vec<Finding> {
    if let Some(b) = baseline {
        for f in &mut findings {
            f.suppressed = b.contains(&f.fingerprint);
        }
    }
    findings.sort_by(|x, y| {
        y.severity
            .cmp(&x.severity)
            .then_with(|| x.rule.name().cmp(y.rule.name()))
            .then_with(|| x.addr.cmp(&y.addr))
            .then_with(|| x.artifact.cmp(&y.artifact))
            .then_with(|| x.location_key.cmp(&y.location_key))
    });
    findings.dedup_by(|x, y| x.fingerprint == y.fingerprint && x.addr == y.addr);
    findings
}

/// Auto-detection of the TEE.
fn detect(
    image: &Image<'_>,
    elf: Option<&elfinfo::ElfFacts>,
    sgxmeta: bool,
    manifest: bool,
) -> TeeDecision {
    if sgxmeta {
        return TeeDecision::new(Tee::Sgx, "auto: .note.sgxmeta section (SGX SDK enclave)");
    }
    if manifest {
        return TeeDecision::new(Tee::Gramine, "auto: Gramine manifest next to the binary");
    }
    if image.arch == Arch::Riscv64 && elf.is_some_and(|e| !e.interp && !e.dynamic) {
        return TeeDecision::new(
            Tee::Keystone,
            "auto: static RISC-V executable (Keystone eapp)",
        );
    }
    TeeDecision::new(
        Tee::None,
        "auto: no enclave metadata found; only image-hardening rules apply (use --tee to audit as an enclave)",
    )
}
