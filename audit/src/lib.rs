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
pub mod elfinfo;
mod error;
pub mod gramine;
mod hardening;
pub mod model;
pub mod peinfo;
pub mod policy;
pub mod reach;
pub mod rules;
pub mod sarif;
pub mod scan;
pub mod schema;
pub mod sgx;
mod unparsed;

use std::collections::{BTreeMap, BTreeSet};

use talos_cfg::{Arch, Cfg, Format, Image};

use crate::rules::Family;

pub use baseline::Baseline;
pub use error::{Error, Result};
pub use model::{AuditVerdict, Finding, RuleState, RuleStatus, Severity, Tee, TeeChoice};
pub use policy::Policy;
pub use rules::RuleId;
pub use schema::Report;

/// The rules that read an SGX SDK enclave's SIGSTRUCT.
const SIGSTRUCT_RULES: [RuleId; 6] = [
    RuleId::SgxNotSigned,
    RuleId::SgxMetadataMalformed,
    RuleId::SgxSignatureInvalid,
    RuleId::SgxDebugEnclave,
    RuleId::SgxDebugNotEnforced,
    RuleId::SgxProvisionKey,
];

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
        Some(m) => Some((
            m.path,
            gramine::Manifest::parse(m.bytes).map_err(|detail| Error::Metadata {
                path: m.path.to_string(),
                what: "Gramine manifest",
                detail,
            })?,
        )),
        None => None,
    };
    let elf = if image.format == Format::Elf {
        elfinfo::read(input.bytes)
    } else {
        None
    };
    let pe = if image.format == Format::Pe {
        peinfo::read(input.bytes, image.base)
    } else {
        None
    };
    let sgxmeta = elf
        .as_ref()
        .and_then(|e| e.sections.iter().find(|s| s.name == ".note.sgxmeta"))
        .cloned();

    let policy = &options.policy;
    let (tee, tee_reason) = match options.tee {
        TeeChoice::Given(t) => (t, format!("--tee {}", t.name())),
        TeeChoice::Auto => match policy.tee {
            Some(t) => (t, format!("policy tee = \"{}\"", t.name())),
            None => detect(&image, elf.as_ref(), sgxmeta.is_some(), manifest.is_some()),
        },
    };

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
            && elf.as_ref().is_some_and(|e| e.stack_chk_symbols.is_empty()),
        ecalls: tee == Tee::Keystone,
    };
    let needs_reach = plan.instructions || plan.lvi || plan.ecalls;
    let scan = if plan.any() {
        scan::scan(&image, &cfg, dec.as_ref(), plan, needs_reach)
    } else {
        scan::Scan::default()
    };
    let exports: Vec<(String, u64)> = match &elf {
        Some(e) => e.exports.clone(),
        // PE: the export directory (the loader's symbol list may merge an
        // export with the COFF symbol of the same name).
        None if image.format == Format::Pe => peinfo::exports(input.bytes, image.base),
        None => Vec::new(),
    };
    let reach = if needs_reach {
        reach::reach(&image, &cfg, &exports, &scan.address_taken)
    } else {
        reach::Reach::default()
    };

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
    };

    // Instruction rules.
    a.instructions(&scan);
    let lvi = a.lvi(&scan);
    // Image hardening.
    let hardening = match image.format {
        Format::Elf => a.hardening(elf.as_ref(), &scan),
        Format::Pe => a.pe_hardening(pe.as_ref()),
    };
    // SGX / Gramine metadata.
    let mut sgx_facts = None;
    let mut gramine_facts = None;
    if matches!(tee, Tee::Sgx | Tee::Gramine) {
        sgx_facts = Some(a.sgx_metadata(sgxmeta.as_ref(), manifest.as_ref()));
    }
    if tee == Tee::Gramine {
        gramine_facts = Some(a.gramine(manifest.as_ref(), sgx_facts.as_ref()));
    }
    let keystone = (tee == Tee::Keystone).then(|| a.keystone(&scan));

    let mut notes = Vec::new();
    if sgx_facts.as_ref().is_some_and(|s| s.sigstruct.is_some()) {
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

    let mut findings = std::mem::take(&mut a.findings);
    if let Some(b) = &options.baseline {
        for f in &mut findings {
            f.suppressed = b.contains(&f.fingerprint);
        }
    }
    findings.sort_by(|x, y| {
        y.severity
            .cmp(&x.severity)
            // By the id text, not the table order.
            .then_with(|| x.rule.name().cmp(y.rule.name()))
            .then_with(|| x.addr.cmp(&y.addr))
            .then_with(|| x.artifact.cmp(&y.artifact))
            .then_with(|| x.location_key.cmp(&y.location_key))
    });
    findings.dedup_by(|x, y| x.fingerprint == y.fingerprint && x.addr == y.addr);
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
        tee_reason,
        fail_on: policy.fail_on,
        verdict: AuditVerdict::Pass,
        counts,
        suppressed,
        findings,
        rules: rules_status,
        hardening,
        sgx: sgx_facts,
        gramine: gramine_facts,
        keystone,
        lvi,
        notes,
    };
    report.verdict = report.conclude();
    Ok(report)
}

/// Auto-detection of the TEE.
fn detect(
    image: &Image<'_>,
    elf: Option<&elfinfo::ElfFacts>,
    sgxmeta: bool,
    manifest: bool,
) -> (Tee, String) {
    if sgxmeta {
        return (
            Tee::Sgx,
            "auto: .note.sgxmeta section (SGX SDK enclave)".to_string(),
        );
    }
    if manifest {
        return (
            Tee::Gramine,
            "auto: Gramine manifest next to the binary".to_string(),
        );
    }
    if image.arch == Arch::Riscv64 && elf.is_some_and(|e| !e.interp && !e.dynamic) {
        return (
            Tee::Keystone,
            "auto: static RISC-V executable (Keystone eapp)".to_string(),
        );
    }
    (
        Tee::None,
        "auto: no enclave metadata found; only image-hardening rules apply (use --tee to audit as an enclave)"
            .to_string(),
    )
}

/// Where a finding points.
#[derive(Debug, Default)]
struct Loc {
    addr: Option<u64>,
    length: Option<u64>,
    file_offset: Option<u64>,
    function: Option<usize>,
    instruction: Option<String>,
    artifact: Option<String>,
    line: Option<u64>,
    location_key: String,
    function_key: Option<String>,
}

struct Auditor<'a> {
    input: &'a Input<'a>,
    image: &'a Image<'a>,
    cfg: &'a Cfg,
    tee: Tee,
    policy: &'a Policy,
    findings: Vec<Finding>,
    states: BTreeMap<RuleId, RuleState>,
    pi: Option<Vec<talos_cfg::digest::PiDigest>>,
    reach: &'a reach::Reach,
}

impl Auditor<'_> {
    fn applied(&self, id: RuleId) -> bool {
        matches!(self.states.get(&id), Some(RuleState::Applied))
    }

    fn not_applicable(&mut self, id: RuleId, why: &str) {
        if self.applied(id) {
            self.states
                .insert(id, RuleState::NotApplicable(why.to_string()));
        }
    }

    fn unchecked(&mut self, id: RuleId, why: &str) {
        if self.applied(id) {
            self.states
                .insert(id, RuleState::Unchecked(why.to_string()));
        }
    }

    /// The file offset of a virtual address.
    fn file_offset(&self, addr: u64) -> Option<u64> {
        let seg = self.image.segment_containing(addr)?;
        let rel = addr.checked_sub(seg.vaddr)?;
        (rel < seg.file_size).then(|| seg.offset.saturating_add(rel))
    }

    /// Name of the function, or its position-independent digest when it
    /// has none (computed once, on first need).
    fn function_key(&mut self, fi: usize) -> String {
        let Some(f) = self.cfg.functions.get(fi) else {
            return String::new();
        };
        if let Some(n) = &f.name {
            return n.clone();
        }
        if self.pi.is_none() {
            self.pi = Some(talos_cfg::digest::position_independent(
                self.image, self.cfg,
            ));
        }
        self.pi
            .as_ref()
            .and_then(|p| p.get(fi))
            .map(|d| format!("pi:{}", d.function))
            .unwrap_or_default()
    }

    fn push(&mut self, rule: RuleId, message: String, loc: Loc) {
        if !self.applied(rule) {
            return;
        }
        let function_key = match (&loc.function_key, loc.function) {
            (Some(k), _) => k.clone(),
            (None, Some(fi)) => self.function_key(fi),
            (None, None) => String::new(),
        };
        let fp = fingerprint(rule.name(), &function_key, &loc.location_key);
        let func = loc.function.and_then(|fi| self.cfg.functions.get(fi));
        let (reached_from, path) = match loc.function {
            Some(_) if rule == RuleId::SgxUnreachableInstruction => (None, Vec::new()),
            Some(fi) if loc.addr.is_some() => match self.reach.functions.get(&fi) {
                Some((label, _)) => (Some(label.clone()), self.reach.path(self.cfg, fi)),
                None => (None, Vec::new()),
            },
            _ => (None, Vec::new()),
        };
        let file_offset = loc
            .file_offset
            .or_else(|| loc.addr.and_then(|a| self.file_offset(a)));
        self.findings.push(Finding {
            rule,
            severity: self.policy.severity_of(rule),
            message,
            addr: loc.addr,
            file_offset,
            length: loc.length,
            function: func.map(talos_cfg::Function::display_name),
            function_addr: func.map(|f| f.addr),
            instruction: loc.instruction,
            reached_from,
            path,
            artifact: loc.artifact,
            line: loc.line,
            location_key: loc.location_key,
            fingerprint: fp,
            suppressed: false,
        });
    }

    fn instructions(&mut self, scan: &scan::Scan) {
        // Occurrence index of each mnemonic within its function, in
        // address order: the position-independent part of the location.
        let mut seen: BTreeMap<(usize, String), usize> = BTreeMap::new();
        let mut hits: Vec<&scan::Hit> = scan.hits.iter().collect();
        hits.sort_by_key(|h| (h.function, h.addr));
        for h in hits {
            let k = seen.entry((h.function, h.mnemonic.clone())).or_insert(0);
            let occurrence = *k;
            *k += 1;
            let reachable = self.reach.block(h.function, h.block);
            // A HLT right after a call that does not return (glibc's
            // `_start`: `call *__libc_start_main; hlt`) is the compiler's
            // trap, not code anyone runs.
            if !reachable && h.mnemonic == "hlt" && self.cfg.follows_call(h.addr) {
                continue;
            }
            let rule = match (self.tee, h.category) {
                _ if !reachable => RuleId::SgxUnreachableInstruction,
                (Tee::Gramine, RuleId::SgxSyscall) => RuleId::GramineEmulatedSyscall,
                (Tee::Gramine, RuleId::SgxCpuid | RuleId::SgxRdtsc) => {
                    RuleId::GramineEmulatedInstruction
                }
                (_, c) => c,
            };
            let what = match rule {
                RuleId::SgxUnreachableInstruction => {
                    format!("{} ({}) in code no root reaches", h.text, h.category)
                }
                RuleId::GramineEmulatedSyscall => format!(
                    "{}: Gramine traps and emulates this system call (slow path)",
                    h.text
                ),
                RuleId::GramineEmulatedInstruction => {
                    format!("{}: Gramine traps and emulates this instruction", h.text)
                }
                RuleId::SgxRdtsc => format!(
                    "{}: #UD on SGX1 enclaves; legal only on SGX2-capable CPUs",
                    h.text
                ),
                _ => format!("{}: faults (#UD) inside an SGX enclave", h.text),
            };
            self.push(
                rule,
                what,
                Loc {
                    addr: Some(h.addr),
                    length: Some(u64::from(h.len)),
                    function: Some(h.function),
                    instruction: Some(h.text.clone()),
                    location_key: format!("{}#{occurrence}", h.mnemonic),
                    ..Loc::default()
                },
            );
        }
    }

    fn lvi(&mut self, scan: &scan::Scan) -> Option<model::LviFacts> {
        if !self.applied(RuleId::SgxLviUnhardened) {
            return None;
        }
        let mut facts = model::LviFacts::default();
        let mut first: Option<&scan::LviSite> = None;
        let mut sites: Vec<&scan::LviSite> = scan
            .lvi
            .iter()
            .filter(|s| self.reach.block(s.function, s.block))
            .collect();
        sites.sort_by_key(|s| s.addr);
        for s in sites {
            facts.sites += 1;
            if s.hardened {
                facts.hardened += 1;
            } else {
                if first.is_none() {
                    first = Some(s);
                }
                if facts.first_unhardened.len() < 8 {
                    facts.first_unhardened.push(s.addr);
                }
            }
        }
        if facts.sites == 0 {
            // Checked: reachable code has no return or indirect branch, so
            // none is unhardened.
            return Some(facts);
        }
        if let Some(s) = first {
            let unhardened = facts.sites - facts.hardened;
            let list: Vec<String> = facts
                .first_unhardened
                .iter()
                .map(|a| format!("{a:#x}"))
                .collect();
            let msg = format!(
                "{unhardened} of {} returns and indirect branches in reachable code have no LFENCE after their last load ({:.1}% hardened); first: {}",
                facts.sites,
                facts.hardened as f64 * 100.0 / facts.sites as f64,
                list.join(", ")
            );
            self.push(
                RuleId::SgxLviUnhardened,
                msg,
                Loc {
                    addr: Some(s.addr),
                    function: Some(s.function),
                    location_key: "lvi".to_string(),
                    function_key: Some(String::new()),
                    ..Loc::default()
                },
            );
        }
        Some(facts)
    }

    fn sigstruct_findings(&mut self, s: &sgx::SigStruct, facts: &model::SigStructFacts) {
        let artifact = (facts.source != self.input.path).then(|| facts.source.clone());
        let loc = |key: &str| Loc {
            file_offset: Some(facts.offset),
            length: Some(sgx::SIGSTRUCT_SIZE as u64),
            artifact: artifact.clone(),
            location_key: key.to_string(),
            function_key: Some("sigstruct".to_string()),
            ..Loc::default()
        };
        if facts.signature != model::Verification::Verified {
            self.push(
                RuleId::SgxSignatureInvalid,
                format!("SIGSTRUCT signature {}", facts.signature),
                loc("signature"),
            );
        } else if facts.q1_q2 != model::Verification::Verified {
            self.push(
                RuleId::SgxSignatureInvalid,
                format!("SIGSTRUCT Q1/Q2 {}", facts.q1_q2),
                loc("q1q2"),
            );
        }
        let attrs = s.attributes();
        let mask = s.attribute_mask();
        if attrs.flags & sgx::FLAG_DEBUG != 0 {
            self.push(
                RuleId::SgxDebugEnclave,
                format!(
                    "SIGSTRUCT ATTRIBUTES.FLAGS = {:#x} has DEBUG set",
                    attrs.flags
                ),
                loc("attributes.debug"),
            );
        } else if mask.flags & sgx::FLAG_DEBUG == 0 {
            self.push(
                RuleId::SgxDebugNotEnforced,
                format!(
                    "ATTRIBUTEMASK.FLAGS = {:#x} does not cover DEBUG",
                    mask.flags
                ),
                loc("attributemask.debug"),
            );
        }
        if attrs.flags & sgx::FLAG_PROVISIONKEY != 0 {
            self.push(
                RuleId::SgxProvisionKey,
                "SIGSTRUCT requests PROVISIONKEY".to_string(),
                loc("attributes.provisionkey"),
            );
        }
    }

    fn sgx_metadata(
        &mut self,
        sgxmeta: Option<&elfinfo::RawSection>,
        manifest: Option<&(&str, gramine::Manifest)>,
    ) -> model::SgxFacts {
        let mut facts = model::SgxFacts::default();
        if self.tee == Tee::Sgx && self.image.format == Format::Pe {
            // The Windows SDK keeps its metadata in its own section layout,
            // which talos does not read: the SIGSTRUCT rules cannot be
            // checked (never passed).
            for id in SIGSTRUCT_RULES {
                self.unchecked(
                    id,
                    "the SGX SDK metadata of a PE (Windows) enclave is not read by talos, so its SIGSTRUCT cannot be checked",
                );
            }
            return facts;
        }
        let path = self.input.path.to_string();
        let malformed = |a: &mut Self, artifact: Option<String>, detail: String, off: u64| {
            a.push(
                RuleId::SgxMetadataMalformed,
                detail,
                Loc {
                    file_offset: Some(off),
                    artifact,
                    location_key: "metadata".into(),
                    function_key: Some("sigstruct".into()),
                    ..Loc::default()
                },
            );
        };
        if self.tee == Tee::Sgx {
            match sgxmeta {
                None => self.push(
                    RuleId::SgxNotSigned,
                    "no .note.sgxmeta section: not a signed SGX SDK enclave".to_string(),
                    Loc {
                        location_key: "sgxmeta".into(),
                        ..Loc::default()
                    },
                ),
                Some(sec) if sec.nobits => {
                    malformed(
                        self,
                        None,
                        ".note.sgxmeta has no file bytes".into(),
                        sec.offset,
                    );
                }
                Some(sec) => match elfinfo::slice(self.input.bytes, sec.offset, sec.size) {
                    None => malformed(
                        self,
                        None,
                        format!(
                            ".note.sgxmeta at offset {:#x} size {:#x} lies outside the file",
                            sec.offset, sec.size
                        ),
                        sec.offset,
                    ),
                    Some(bytes) => match sgx::parse_note(bytes, sec.offset, sec.align) {
                        Err(e) => malformed(self, None, format!(".note.sgxmeta: {e}"), sec.offset),
                        Ok(m) => {
                            let sf = m.sigstruct.facts(&path, m.sigstruct_offset);
                            self.sigstruct_findings(&m.sigstruct, &sf);
                            facts.metadata = Some(m.facts);
                            facts.sigstruct = Some(sf);
                        }
                    },
                },
            }
        } else if let Some(sig) = self.input.sig {
            match sgx::SigStruct::parse(sig.bytes) {
                Err(e) => malformed(
                    self,
                    Some(sig.path.to_string()),
                    format!("{}: {}", sig.path, e.0),
                    0,
                ),
                Ok(s) => {
                    if sig.bytes.len() != sgx::SIGSTRUCT_SIZE {
                        malformed(
                            self,
                            Some(sig.path.to_string()),
                            format!(
                                "{} has {} bytes; a SIGSTRUCT file has {}",
                                sig.path,
                                sig.bytes.len(),
                                sgx::SIGSTRUCT_SIZE
                            ),
                            0,
                        );
                    }
                    let sf = s.facts(sig.path, 0);
                    self.sigstruct_findings(&s, &sf);
                    facts.sigstruct = Some(sf);
                }
            }
        } else {
            self.push(
                RuleId::SgxNotSigned,
                "no .sig file (Gramine SIGSTRUCT) next to the binary or given with --sig"
                    .to_string(),
                Loc {
                    location_key: "sig".into(),
                    artifact: manifest.map(|(p, _)| (*p).to_string()),
                    ..Loc::default()
                },
            );
        }
        facts
    }

    fn gramine(
        &mut self,
        manifest: Option<&(&str, gramine::Manifest)>,
        sgx: Option<&model::SgxFacts>,
    ) -> model::GramineFacts {
        let Some((path, m)) = manifest else {
            self.push(
                RuleId::GramineManifestMissing,
                "no .manifest.sgx next to the binary or given with --manifest".to_string(),
                Loc {
                    location_key: "manifest".into(),
                    ..Loc::default()
                },
            );
            return model::GramineFacts::default();
        };
        let text = self
            .input
            .manifest
            .map(|m| String::from_utf8_lossy(m.bytes).into_owned())
            .unwrap_or_default();
        for f in m.findings() {
            let line = key_line(&text, &f.key);
            self.push(
                f.rule,
                f.message,
                Loc {
                    artifact: Some((*path).to_string()),
                    location_key: format!("manifest:{}", f.key),
                    function_key: Some("manifest".to_string()),
                    line,
                    ..Loc::default()
                },
            );
        }
        if let Some(sig) = sgx.and_then(|s| s.sigstruct.as_ref()) {
            let mut diffs = Vec::new();
            let sig_debug = sig.attributes.flags & sgx::FLAG_DEBUG != 0;
            if m.debug().unwrap_or(false) != sig_debug {
                diffs.push(format!(
                    "debug: manifest {}, .sig {sig_debug}",
                    m.debug().unwrap_or(false)
                ));
            }
            if m.isvprodid().unwrap_or(0) != i64::from(sig.isv_prod_id) {
                diffs.push(format!(
                    "isvprodid: manifest {}, .sig {}",
                    m.isvprodid().unwrap_or(0),
                    sig.isv_prod_id
                ));
            }
            if m.isvsvn().unwrap_or(0) != i64::from(sig.isv_svn) {
                diffs.push(format!(
                    "isvsvn: manifest {}, .sig {}",
                    m.isvsvn().unwrap_or(0),
                    sig.isv_svn
                ));
            }
            if !diffs.is_empty() {
                self.push(
                    RuleId::GramineSigMismatch,
                    format!("manifest and .sig disagree: {}", diffs.join("; ")),
                    Loc {
                        artifact: Some(sig.source.clone()),
                        location_key: "sig-vs-manifest".into(),
                        function_key: Some("manifest".into()),
                        file_offset: Some(0),
                        ..Loc::default()
                    },
                );
            }
        }
        m.facts(path)
    }

    fn keystone(&mut self, scan: &scan::Scan) -> model::KeystoneFacts {
        let mut facts = model::KeystoneFacts::default();
        let mut interfaces = BTreeSet::new();
        let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
        let mut ecalls: Vec<&scan::Ecall> = scan.ecalls.iter().collect();
        ecalls.sort_by_key(|e| e.addr);
        for e in ecalls {
            let reachable = self.reach.block(e.function, e.block);
            let (interface, class) = match e.a7 {
                Some(n) => scan::keystone_interface(n),
                None => (
                    "unresolved (a7 not set by a constant in the block)".to_string(),
                    scan::EcallClass::Unknown,
                ),
            };
            interfaces.insert(interface.clone());
            let name = self
                .cfg
                .functions
                .get(e.function)
                .map(talos_cfg::Function::display_name)
                .unwrap_or_default();
            facts.ecalls.push(model::EcallSite {
                addr: e.addr,
                function: name,
                number: e.a7,
                interface: interface.clone(),
                reachable,
            });
            let k = seen.entry(e.function).or_insert(0);
            let occurrence = *k;
            *k += 1;
            let rule = match class {
                scan::EcallClass::Runtime => continue,
                scan::EcallClass::LinuxProxied => RuleId::KeystoneLinuxSyscall,
                scan::EcallClass::Unknown => RuleId::KeystoneUnknownEcall,
            };
            let reach_note = if reachable { "" } else { " (unreachable)" };
            self.push(
                rule,
                format!("ecall: {interface}{reach_note}"),
                Loc {
                    addr: Some(e.addr),
                    length: Some(4),
                    function: Some(e.function),
                    instruction: Some("ecall".to_string()),
                    location_key: format!("ecall#{occurrence}"),
                    ..Loc::default()
                },
            );
        }
        facts.interfaces = interfaces.into_iter().collect();
        facts
    }
}

/// The 1-based line that sets `key` in a TOML text (best effort: the key,
/// or its last dotted component, followed by `=`), for SARIF regions.
fn key_line(text: &str, key: &str) -> Option<u64> {
    let last = key.rsplit('.').next()?;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim_start();
        let hit = t
            .strip_prefix(key)
            .or_else(|| t.strip_prefix(last))
            .or_else(|| t.strip_prefix(&format!("\"{last}\"")))
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if hit {
            return Some(n as u64 + 1);
        }
    }
    None
}
