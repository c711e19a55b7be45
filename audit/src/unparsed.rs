//! The audit of an ELF file whose headers cannot be parsed: every rule that
//! would apply is not checked, so the verdict is `unverifiable` (exit 3),
//! never `pass`.

use std::collections::BTreeMap;

use crate::model::{AuditVerdict, BinaryFacts, RuleState, RuleStatus, Tee};
use crate::rules;
use crate::schema::{self, Report};
use crate::{Input, Options, TeeDecision};

/// Whether `e` means the file is an ELF file whose headers are unreadable
/// (rather than one talos recognises but does not support: another
/// architecture, a core dump, an object file).
pub(crate) fn headers_unreadable(bytes: &[u8], e: &talos_cfg::Error) -> bool {
    talos_cfg::elf::is_elf(bytes)
        && matches!(
            e,
            talos_cfg::Error::Truncated { .. }
                | talos_cfg::Error::Malformed { .. }
                | talos_cfg::Error::OutOfBounds { .. }
                | talos_cfg::Error::LimitExceeded { .. }
        )
}

/// The report: every rule of the audited TEE not checked, with why.
pub(crate) fn report(input: &Input<'_>, options: &Options, e: &talos_cfg::Error) -> Report {
    let policy = &options.policy;
    let TeeDecision {
        tee,
        reason: tee_reason,
    } = TeeDecision::make(options, || TeeDecision {
        tee: Tee::None,
        reason: "auto: the headers could not be parsed, so no enclave metadata could be looked for"
            .to_string(),
    });
    let why = format!("the ELF headers could not be parsed: {e}");
    let rules = rules::RULES
        .iter()
        .map(|r| {
            let scope_ok = r.scope.covers(tee);
            let state = if !policy.enabled(r.id) {
                RuleState::Disabled
            } else if r.formats == rules::Formats::Pe {
                RuleState::NotApplicable(
                    "a PE rule (optional header, load configuration, sections)".into(),
                )
            } else if scope_ok {
                RuleState::Unchecked(why.clone())
            } else {
                RuleState::NotApplicable(format!(
                    "audited for tee {}; this rule is for another TEE (use --tee)",
                    tee.name()
                ))
            };
            RuleStatus {
                id: r.id,
                severity: policy.severity_of(r.id),
                state,
            }
        })
        .collect();
    let mut report = Report {
        schema: schema::SCHEMA.to_string(),
        talos_version: env!("CARGO_PKG_VERSION").to_string(),
        binary: BinaryFacts {
            path: input.path.to_string(),
            format: "elf".to_string(),
            arch: "unknown".to_string(),
            kind: "unknown".to_string(),
            blake3: blake3::hash(input.bytes).to_hex().to_string(),
            build_id: None,
            graph_digest: None,
            functions: 0,
            reachable_functions: 0,
            roots: 0,
            reachability: false,
        },
        tee,
        tee_reason,
        fail_on: policy.fail_on,
        verdict: AuditVerdict::Unverifiable,
        counts: BTreeMap::new(),
        suppressed: 0,
        findings: Vec::new(),
        rules,
        hardening: crate::model::HardeningFacts::default(),
        sgx: None,
        gramine: None,
        keystone: None,
        lvi: None,
        anomalies: Vec::new(),
        notes: vec![format!(
            "{}: {why}; no rule could be checked, so the audit cannot pass",
            input.path
        )],
    };
    report.verdict = report.conclude();
    report
}
