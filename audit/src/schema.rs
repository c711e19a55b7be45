//! The `talos.audit/1` document (specified in `docs/schema-audit.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{
    AuditVerdict, BinaryFacts, Finding, GramineFacts, HardeningFacts, KeystoneFacts, LviFacts,
    RuleState, RuleStatus, Severity, SgxFacts, Tee,
};
use crate::rules::RuleId;

/// Schema identifier written in every document.
pub const SCHEMA: &str = "talos.audit/1";

/// A rule that applies but could not be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unchecked<'a> {
    /// The rule.
    pub rule: RuleId,
    /// Why it could not be checked.
    pub why: &'a str,
}

/// A whole audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Version of talos that wrote it.
    pub talos_version: String,
    /// The audited binary.
    pub binary: BinaryFacts,
    /// TEE audited for.
    pub tee: Tee,
    /// Why that TEE (`--tee`, policy, or what auto-detection saw).
    pub tee_reason: String,
    /// Severity at or above which an unsuppressed finding fails the run.
    pub fail_on: Severity,
    /// `pass`, `fail` or `unverifiable`.
    pub verdict: AuditVerdict,
    /// Unsuppressed findings per severity.
    pub counts: BTreeMap<Severity, u64>,
    /// Findings the baseline accepted.
    pub suppressed: u64,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// Every rule and whether it ran.
    pub rules: Vec<RuleStatus>,
    /// Image-hardening facts.
    pub hardening: HardeningFacts,
    /// SGX metadata (SDK enclaves and Gramine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sgx: Option<SgxFacts>,
    /// Gramine manifest facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gramine: Option<GramineFacts>,
    /// Keystone runtime interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystone: Option<KeystoneFacts>,
    /// LVI heuristic counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lvi: Option<LviFacts>,
    /// What a reader must know about the evidence (what was not verified).
    pub notes: Vec<String>,
    /// What the binary's headers declare but the file does not hold, or
    /// what is larger than talos reads (a section name outside its string
    /// table, a directory outside the file, a property note cut short): the
    /// audit read only part of the input, so it cannot pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<String>,
}

impl Report {
    /// Whether an unsuppressed finding is at or above `fail_on`.
    #[must_use]
    pub fn fails(&self) -> bool {
        self.findings
            .iter()
            .any(|f| !f.suppressed && f.severity >= self.fail_on)
    }

    /// The rules that apply here but could not be checked, with why, in
    /// table order.
    #[must_use]
    pub fn unchecked(&self) -> Vec<Unchecked<'_>> {
        self.rules
            .iter()
            .filter_map(|r| match &r.state {
                RuleState::Unchecked(why) => Some(Unchecked {
                    rule: r.id,
                    why: why.as_str(),
                }),
                _ => None,
            })
            .collect()
    }

    /// The verdict the findings and rule states give: `fail` on a failing
    /// finding; else `unverifiable` when an applicable rule could not be
    /// checked, no rule was checked at all, or part of the binary could
    /// not be read (anomalies); else `pass`.
    #[must_use]
    pub fn conclude(&self) -> AuditVerdict {
        if self.fails() {
            AuditVerdict::Fail
        } else if !self.unchecked().is_empty()
            || !self.rules.iter().any(|r| r.state == RuleState::Applied)
            || !self.anomalies.is_empty()
        {
            AuditVerdict::Unverifiable
        } else {
            AuditVerdict::Pass
        }
    }
}
