//! Baselines: the fingerprints of findings already accepted, read from a
//! previous `talos.audit/1` document or a SARIF log talos wrote.

use std::collections::BTreeSet;

use crate::error::{Error, Result};

/// Baseline size accepted.
const MAX_BASELINE_BYTES: usize = 256 << 20;
/// Fingerprints read from one baseline.
const MAX_FINGERPRINTS: usize = 1_000_000;
/// The SARIF `partialFingerprints` key talos writes.
pub const SARIF_FINGERPRINT_KEY: &str = "talosFingerprint/v1";

/// Accepted findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    /// Their fingerprints.
    pub fingerprints: BTreeSet<String>,
}

impl Baseline {
    /// Read a baseline; `path` names it in errors.
    ///
    /// # Errors
    /// [`Error::Baseline`] when the bytes are not JSON, or neither a
    /// `talos.audit/1` document nor a SARIF 2.1.0 log with talos
    /// fingerprints.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<Self> {
        let err = |detail: String| Error::Baseline {
            path: path.to_string(),
            detail,
        };
        if bytes.len() > MAX_BASELINE_BYTES {
            return Err(err(format!("{} bytes is too large", bytes.len())));
        }
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| err(format!("not JSON: {e}")))?;
        let mut fingerprints = BTreeSet::new();
        let mut push = |s: &str| -> Result<()> {
            if fingerprints.len() >= MAX_FINGERPRINTS {
                return Err(err(format!("more than {MAX_FINGERPRINTS} findings")));
            }
            if s.len() != 64 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(err(format!("fingerprint {s:?} is not 64 hex digits")));
            }
            fingerprints.insert(s.to_ascii_lowercase());
            Ok(())
        };
        if v.get("schema").and_then(|s| s.as_str()) == Some(crate::schema::SCHEMA) {
            let findings = v
                .get("findings")
                .and_then(|f| f.as_array())
                .ok_or_else(|| err("talos.audit/1 document without a findings array".into()))?;
            for f in findings {
                let fp = f
                    .get("fingerprint")
                    .and_then(|x| x.as_str())
                    .ok_or_else(|| err("a finding has no fingerprint".into()))?;
                push(fp)?;
            }
            return Ok(Baseline { fingerprints });
        }
        if v.get("version").and_then(|s| s.as_str()) == Some("2.1.0")
            && let Some(runs) = v.get("runs").and_then(|r| r.as_array())
        {
            for run in runs {
                // `results` is optional in a SARIF run: without it the run
                // reported nothing, so it adds no fingerprint.
                let results = run
                    .get("results")
                    .and_then(|r| r.as_array())
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                for r in results {
                    if let Some(fp) = r
                        .get("partialFingerprints")
                        .and_then(|p| p.get(SARIF_FINGERPRINT_KEY))
                        .and_then(|x| x.as_str())
                    {
                        push(fp)?;
                    }
                }
            }
            return Ok(Baseline { fingerprints });
        }
        Err(err(
            "neither a talos.audit/1 document nor a SARIF 2.1.0 log".into(),
        ))
    }

    /// Whether a finding with this fingerprint is accepted.
    #[must_use]
    pub fn contains(&self, fingerprint: &str) -> bool {
        self.fingerprints.contains(fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_audit_and_sarif_and_rejects_others() {
        let fp = "ab".repeat(32);
        let audit =
            format!(r#"{{"schema":"talos.audit/1","findings":[{{"fingerprint":"{fp}"}}]}}"#);
        assert!(
            Baseline::parse("b", audit.as_bytes())
                .unwrap()
                .contains(&fp)
        );
        let sarif = format!(
            r#"{{"version":"2.1.0","runs":[{{"results":[{{"partialFingerprints":{{"{SARIF_FINGERPRINT_KEY}":"{fp}"}}}}]}}]}}"#
        );
        assert!(
            Baseline::parse("b", sarif.as_bytes())
                .unwrap()
                .contains(&fp)
        );
        for bad in [
            "not json",
            "{}",
            r#"{"schema":"talos.audit/1"}"#,
            r#"{"schema":"talos.audit/1","findings":[{"fingerprint":"xyz"}]}"#,
            r#"{"schema":"talos.audit/1","findings":[{}]}"#,
        ] {
            let e = Baseline::parse("base.json", bad.as_bytes()).unwrap_err();
            assert!(e.to_string().starts_with("base.json: baseline:"), "{e}");
        }
    }
}
