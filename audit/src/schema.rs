//! The `talos.audit/1` document (specified in `docs/schema-audit.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{
    BinaryFacts, Finding, GramineFacts, HardeningFacts, KeystoneFacts, LviFacts, RuleStatus,
    Severity, SgxFacts, Tee,
};

/// Schema identifier written in every document.
pub const SCHEMA: &str = "talos.audit/1";

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
    /// `pass` or `fail`.
    pub verdict: String,
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
}

impl Report {
    /// Whether an unsuppressed finding is at or above `fail_on`.
    #[must_use]
    pub fn fails(&self) -> bool {
        self.findings
            .iter()
            .any(|f| !f.suppressed && f.severity >= self.fail_on)
    }
}
