//! The policy file (`talos.toml`): which rules run, their severities, and
//! the severity that fails the run.
//!
//! ```toml
//! fail_on = "high"              # default "high"
//! tee = "sgx"                   # optional; --tee wins
//! [rules]
//! disable = ["hardening-no-cet"]
//! only = []                     # non-empty: run only these
//! [severity]                    # or [rules.severity]
//! "sgx-rdtsc" = "low"
//! ```
//!
//! Unknown keys and unknown rule ids are errors: a typo must not silently
//! turn a rule off.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::{Severity, Tee};
use crate::rules::RuleId;

/// Policy file size accepted.
const MAX_POLICY_BYTES: usize = 1 << 20;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    fail_on: Option<String>,
    #[serde(default)]
    tee: Option<String>,
    #[serde(default)]
    rules: RawRules,
    #[serde(default)]
    severity: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default)]
    disable: Vec<String>,
    #[serde(default)]
    only: Vec<String>,
    #[serde(default)]
    severity: BTreeMap<String, String>,
}

/// A checked policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Findings at or above this severity fail the run.
    pub fail_on: Severity,
    /// TEE named by the policy, if any.
    pub tee: Option<Tee>,
    /// Rules turned off.
    pub disabled: BTreeSet<RuleId>,
    /// When non-empty, only these rules run.
    pub only: BTreeSet<RuleId>,
    /// Severity overrides.
    pub severity: BTreeMap<RuleId, Severity>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            fail_on: Severity::High,
            tee: None,
            disabled: BTreeSet::new(),
            only: BTreeSet::new(),
            severity: BTreeMap::new(),
        }
    }
}

impl Policy {
    /// Parse a policy file; `path` names it in errors.
    ///
    /// # Errors
    /// [`Error::Policy`] for TOML errors, unknown keys, unknown rule ids or
    /// severities.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<Self> {
        let err = |detail: String| Error::Policy {
            path: path.to_string(),
            detail,
        };
        if bytes.len() > MAX_POLICY_BYTES {
            return Err(err(format!("{} bytes is too large", bytes.len())));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| err(format!("not UTF-8: {e}")))?;
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            err(e
                .to_string()
                .lines()
                .next()
                .unwrap_or("TOML error")
                .to_string())
        })?;
        let sev = |s: &str| {
            Severity::parse(s)
                .ok_or_else(|| err(format!("unknown severity {s:?} (info, low, medium, high)")))
        };
        let known = |id: &str| {
            RuleId::parse(id).ok_or_else(|| {
                err(format!(
                    "unknown rule id {id:?} (see `talos audit --list-rules`)"
                ))
            })
        };
        let fail_on = match &raw.fail_on {
            Some(s) => sev(s)?,
            None => Severity::High,
        };
        let tee = match raw.tee.as_deref() {
            None => None,
            Some("sgx") => Some(Tee::Sgx),
            Some("gramine") => Some(Tee::Gramine),
            Some("keystone") => Some(Tee::Keystone),
            Some("none") => Some(Tee::None),
            Some(other) => {
                return Err(err(format!(
                    "unknown tee {other:?} (sgx, gramine, keystone, none)"
                )));
            }
        };
        let disabled = raw
            .rules
            .disable
            .iter()
            .map(|id| known(id))
            .collect::<Result<BTreeSet<_>>>()?;
        let only = raw
            .rules
            .only
            .iter()
            .map(|id| known(id))
            .collect::<Result<BTreeSet<_>>>()?;
        let mut severity = BTreeMap::new();
        for (id, s) in raw.severity.iter().chain(raw.rules.severity.iter()) {
            severity.insert(known(id)?, sev(s)?);
        }
        Ok(Policy {
            fail_on,
            tee,
            disabled,
            only,
            severity,
        })
    }

    /// Whether the rule runs.
    #[must_use]
    pub fn enabled(&self, id: RuleId) -> bool {
        !self.disabled.contains(&id) && (self.only.is_empty() || self.only.contains(&id))
    }

    /// The rule's effective severity: the policy's, else the rule's
    /// default.
    #[must_use]
    pub fn severity_of(&self, id: RuleId) -> Severity {
        self.severity
            .get(&id)
            .copied()
            .unwrap_or(id.rule().severity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let p = Policy::parse(
            "talos.toml",
            br#"
fail_on = "medium"
tee = "sgx"
[rules]
disable = ["hardening-no-cet"]
[severity]
"sgx-rdtsc" = "low"
"#,
        )
        .unwrap();
        assert_eq!(p.fail_on, Severity::Medium);
        assert_eq!(p.tee, Some(Tee::Sgx));
        assert!(!p.enabled(RuleId::HardeningNoCet));
        assert!(p.enabled(RuleId::SgxSyscall));
        assert_eq!(p.severity_of(RuleId::SgxRdtsc), Severity::Low);
        assert_eq!(p.severity_of(RuleId::SgxSyscall), Severity::High);
    }

    #[test]
    fn rules_severity_table_and_only() {
        let p = Policy::parse(
            "p",
            b"[rules]\nonly = [\"sgx-syscall\"]\nseverity.\"sgx-syscall\" = \"medium\"\n",
        )
        .unwrap();
        assert!(p.enabled(RuleId::SgxSyscall) && !p.enabled(RuleId::SgxCpuid));
        assert_eq!(p.severity_of(RuleId::SgxSyscall), Severity::Medium);
    }

    #[test]
    fn typos_are_errors_that_name_the_file() {
        for bad in [
            &b"[rules]\ndisable = [\"sgx-sycall\"]\n"[..],
            b"fail_on = \"hihg\"\n",
            b"fail-on = \"high\"\n",
            b"[rules]\ndisabled = []\n",
            b"tee = \"tdx\"\n",
            b"fail_on = ",
            &[0xff, 0xfe],
        ] {
            let e = Policy::parse("my.toml", bad).unwrap_err();
            assert!(e.to_string().starts_with("my.toml: policy:"), "{e}");
            assert_eq!(e.code(), "policy");
        }
    }
}
