//! The Gramine rules: what the manifest sets, and whether the `.sig` was
//! signed from it.

use super::{Auditor, Loc};
use crate::gramine::{Manifest, ManifestFile};
use crate::model;
use crate::rules::RuleId;
use crate::sgx;

/// What `gramine-sgx-sign` signs when the manifest leaves `sgx.debug` out
/// (Gramine's manifest syntax: a production enclave).
const DEFAULT_DEBUG: bool = false;
/// What it signs when `sgx.isvprodid` or `sgx.isvsvn` is left out.
const DEFAULT_ISV_NUMBER: i64 = 0;

/// A manifest setting a rule reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFinding {
    /// The rule.
    pub rule: RuleId,
    /// The manifest key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// The settings of a manifest the Gramine rules (and `sgx-debug-enclave`)
/// report.
#[must_use]
pub fn manifest_findings(m: &Manifest) -> Vec<ManifestFinding> {
    let mut out = Vec::new();
    if m.debug() == Some(true) {
        out.push(ManifestFinding {
            rule: RuleId::SgxDebugEnclave,
            key: "sgx.debug".into(),
            message: "sgx.debug = true: Gramine signs a DEBUG enclave".into(),
        });
    }
    for o in m.insecure_options() {
        out.push(ManifestFinding {
            rule: RuleId::GramineInsecureOption,
            message: format!("{} = {}", o.key, o.value),
            key: o.key,
        });
    }
    if let Some(p) = m.string("sgx.file_check_policy")
        && p == "allow_all_but_log"
    {
        out.push(ManifestFinding {
            rule: RuleId::GramineFileCheckPolicy,
            key: "sgx.file_check_policy".into(),
            message: "sgx.file_check_policy = \"allow_all_but_log\": files outside the trusted and allowed lists are opened unchecked".into(),
        });
    }
    if let Some(l) = m.string("loader.log_level")
        && !matches!(l.as_str(), "none" | "error")
    {
        out.push(ManifestFinding {
            rule: RuleId::GramineLogLevel,
            key: "loader.log_level".into(),
            message: format!("loader.log_level = \"{l}\""),
        });
    }
    for key in ["sgx.enable_stats", "sgx.vtune_profile"] {
        if m.bool(key) == Some(true) {
            out.push(ManifestFinding {
                rule: RuleId::GramineLogLevel,
                key: key.into(),
                message: format!("{key} = true exposes enclave internals to the host"),
            });
        }
    }
    if let Some(p) = m.string("sgx.profile.enable")
        && p != "none"
    {
        out.push(ManifestFinding {
            rule: RuleId::GramineLogLevel,
            key: "sgx.profile.enable".into(),
            message: format!("sgx.profile.enable = \"{p}\" samples enclave state for the host"),
        });
    }
    match m.entries("sgx.allowed_files") {
        Ok(0) => {}
        Ok(allowed) => out.push(ManifestFinding {
            rule: RuleId::GramineAllowedFiles,
            key: "sgx.allowed_files".into(),
            message: format!("{allowed} sgx.allowed_files are neither hashed nor encrypted"),
        }),
        // Which files it lets in cannot be told: as if some were.
        Err(why) => out.push(ManifestFinding {
            rule: RuleId::GramineAllowedFiles,
            key: "sgx.allowed_files".into(),
            message: format!("{why}: the files it allows unhashed cannot be listed"),
        }),
    }
    out
}

impl Auditor<'_> {
    /// The Gramine rules on the manifest, and the manifest against the
    /// `.sig` the SGX rules read.
    pub(crate) fn gramine(
        &mut self,
        manifest: Option<&ManifestFile<'_>>,
        sgx: Option<&model::SgxFacts>,
    ) -> model::GramineFacts {
        let Some(ManifestFile { path, manifest: m }) = manifest else {
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
        for f in manifest_findings(m) {
            self.push(
                f.rule,
                f.message,
                Loc {
                    artifact: Some((*path).to_string()),
                    location_key: format!("manifest:{}", f.key),
                    function_key: Some("manifest".to_string()),
                    line: m.line_of(&f.key),
                    ..Loc::default()
                },
            );
        }
        if let Some(sig) = sgx.and_then(|s| s.sigstruct.as_ref()) {
            let mut diffs = Vec::new();
            let sig_debug = sig.attributes.flags & sgx::FLAG_DEBUG != 0;
            let debug = m.debug().unwrap_or(DEFAULT_DEBUG);
            if debug != sig_debug {
                diffs.push(format!("debug: manifest {debug}, .sig {sig_debug}"));
            }
            let prod_id = m.isvprodid().unwrap_or(DEFAULT_ISV_NUMBER);
            if prod_id != i64::from(sig.isv_prod_id) {
                diffs.push(format!(
                    "isvprodid: manifest {prod_id}, .sig {}",
                    sig.isv_prod_id
                ));
            }
            let svn = m.isvsvn().unwrap_or(DEFAULT_ISV_NUMBER);
            if svn != i64::from(sig.isv_svn) {
                diffs.push(format!("isvsvn: manifest {svn}, .sig {}", sig.isv_svn));
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
        m.facts(path, &mut self.anomalies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_insecure_options_and_debug() {
        let m = Manifest::parse(
            br#"
sgx.debug = true
loader.insecure__use_cmdline_argv = true
loader.insecure__use_host_env = false
sgx.file_check_policy = "allow_all_but_log"
fs.insecure__keys.default = "00112233445566778899aabbccddeeff"
loader.log_level = "trace"
sgx.allowed_files = ["file:/tmp/x"]
"#,
        )
        .unwrap();
        let rules: Vec<(RuleId, String)> = manifest_findings(&m)
            .into_iter()
            .map(|f| (f.rule, f.key))
            .collect();
        assert!(rules.contains(&(RuleId::SgxDebugEnclave, "sgx.debug".into())));
        assert!(rules.contains(&(
            RuleId::GramineInsecureOption,
            "loader.insecure__use_cmdline_argv".into()
        )));
        assert!(rules.contains(&(
            RuleId::GramineInsecureOption,
            "fs.insecure__keys.default".into()
        )));
        assert!(
            !rules
                .iter()
                .any(|(_, k)| k == "loader.insecure__use_host_env")
        );
        assert!(rules.contains(&(
            RuleId::GramineFileCheckPolicy,
            "sgx.file_check_policy".into()
        )));
        assert!(rules.contains(&(RuleId::GramineLogLevel, "loader.log_level".into())));
        assert!(rules.contains(&(RuleId::GramineAllowedFiles, "sgx.allowed_files".into())));
        let facts = m.facts("m", &mut Vec::new());
        assert_eq!(facts.debug, Some(true));
        assert!(!facts.insecure_options.values().any(|v| v.contains("0011")));
    }

    #[test]
    fn clean_manifest_has_no_findings() {
        let m = Manifest::parse(
            b"sgx.debug = false\nloader.log_level = \"error\"\nsgx.isvprodid = 7\n",
        )
        .unwrap();
        assert!(manifest_findings(&m).is_empty());
        assert_eq!(m.isvprodid(), Some(7));
    }

    /// The one finding of `manifest`, which must be on sgx.allowed_files.
    fn allowed_files_finding(manifest: &[u8]) -> (Manifest, String) {
        let m = Manifest::parse(manifest).unwrap();
        let f = manifest_findings(&m);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].rule, RuleId::GramineAllowedFiles);
        let message = f[0].message.clone();
        (m, message)
    }

    #[test]
    fn allowed_files_as_a_table_count_and_as_anything_else_is_a_finding() {
        // The syntax before Gramine 1.4: one key per file.
        let (m, message) = allowed_files_finding(
            b"[sgx.allowed_files]\nlog = \"file:/tmp/log\"\nout = \"file:/tmp/out\"\n",
        );
        assert!(message.starts_with("2 sgx.allowed_files"), "{message}");
        let mut anomalies = Vec::new();
        assert_eq!(m.facts("m", &mut anomalies).allowed_files, 2);
        assert!(anomalies.is_empty());

        // Neither a list nor a table: not "none allowed", but a finding and
        // an anomaly.
        let (m, message) =
            allowed_files_finding(b"sgx.allowed_files = \"file:/tmp\"\nsgx.trusted_files = 3\n");
        assert!(message.contains("neither a list nor a table"), "{message}");
        let mut anomalies = Vec::new();
        let facts = m.facts("m", &mut anomalies);
        assert_eq!((facts.allowed_files, facts.trusted_files), (0, 0));
        assert_eq!(anomalies.len(), 2, "{anomalies:?}");
        assert!(
            anomalies[0].contains("sgx.trusted_files is a integer"),
            "{anomalies:?}"
        );
    }
}
