//! Gramine's `.manifest.sgx` (TOML, written by `gramine-sgx-sign`) and the
//! checks on it (option names from Gramine's `manifest-syntax.rst`).

use std::collections::BTreeMap;

use crate::model::GramineFacts;
use crate::rules::RuleId;

/// Nesting depth examined when walking a manifest (real ones use 4-5).
const MAX_DEPTH: usize = 32;
/// Manifest size accepted (real ones, with file hashes, are a few MB).
pub const MAX_MANIFEST_BYTES: usize = 64 << 20;

/// A manifest problem a rule reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFinding {
    /// The rule.
    pub rule: RuleId,
    /// The manifest key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// A parsed manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    root: toml::Table,
}

impl Manifest {
    /// Parse TOML text.
    ///
    /// # Errors
    /// A sentence saying what is wrong (not UTF-8, too large, TOML error).
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(format!(
                "{} bytes is more than the {MAX_MANIFEST_BYTES} a manifest may have",
                bytes.len()
            ));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        let root: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            e.to_string()
                .lines()
                .next()
                .unwrap_or("TOML error")
                .to_string()
        })?;
        Ok(Manifest { root })
    }

    /// The value at a dotted key (`sgx.debug`).
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&toml::Value> {
        let mut parts = key.split('.');
        let mut cur = self.root.get(parts.next()?)?;
        for p in parts {
            cur = cur.as_table()?.get(p)?;
        }
        Some(cur)
    }

    fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(toml::Value::as_bool)
    }

    fn int(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(toml::Value::as_integer)
    }

    fn string(&self, key: &str) -> Option<String> {
        self.get(key).and_then(|v| v.as_str().map(str::to_string))
    }

    fn len(&self, key: &str) -> usize {
        self.get(key)
            .and_then(toml::Value::as_array)
            .map_or(0, Vec::len)
    }

    /// `sgx.debug`.
    #[must_use]
    pub fn debug(&self) -> Option<bool> {
        self.bool("sgx.debug")
    }

    /// `sgx.isvprodid`.
    #[must_use]
    pub fn isvprodid(&self) -> Option<i64> {
        self.int("sgx.isvprodid")
    }

    /// `sgx.isvsvn`.
    #[must_use]
    pub fn isvsvn(&self) -> Option<i64> {
        self.int("sgx.isvsvn")
    }

    /// Facts reported.
    #[must_use]
    pub fn facts(&self, path: &str) -> GramineFacts {
        let mut insecure = BTreeMap::new();
        walk(&self.root, "", 0, &mut |key, v| {
            if key.split('.').any(|p| p.starts_with("insecure__")) && is_set(v) {
                insecure.insert(key.to_string(), redacted(v));
            }
        });
        GramineFacts {
            manifest: Some(path.to_string()),
            debug: self.debug(),
            isvprodid: self.isvprodid(),
            isvsvn: self.isvsvn(),
            entrypoint: self.string("libos.entrypoint"),
            enclave_size: self.string("sgx.enclave_size"),
            max_threads: self
                .int("sgx.max_threads")
                .or_else(|| self.int("sgx.thread_num")),
            remote_attestation: self.get("sgx.remote_attestation").map(short),
            trusted_files: self.len("sgx.trusted_files"),
            allowed_files: self.len("sgx.allowed_files"),
            insecure_options: insecure,
        }
    }

    /// The problems the Gramine rules report.
    #[must_use]
    pub fn findings(&self) -> Vec<ManifestFinding> {
        let mut out = Vec::new();
        if self.debug() == Some(true) {
            out.push(ManifestFinding {
                rule: RuleId::SgxDebugEnclave,
                key: "sgx.debug".into(),
                message: "sgx.debug = true: Gramine signs a DEBUG enclave".into(),
            });
        }
        walk(&self.root, "", 0, &mut |key, v| {
            if key.split('.').any(|p| p.starts_with("insecure__")) && is_set(v) {
                out.push(ManifestFinding {
                    rule: RuleId::GramineInsecureOption,
                    key: key.to_string(),
                    message: format!("{key} = {}", redacted(v)),
                });
            }
        });
        if let Some(p) = self.string("sgx.file_check_policy")
            && p == "allow_all_but_log"
        {
            out.push(ManifestFinding {
                rule: RuleId::GramineFileCheckPolicy,
                key: "sgx.file_check_policy".into(),
                message: "sgx.file_check_policy = \"allow_all_but_log\": files outside the trusted and allowed lists are opened unchecked".into(),
            });
        }
        if let Some(l) = self.string("loader.log_level")
            && !matches!(l.as_str(), "none" | "error")
        {
            out.push(ManifestFinding {
                rule: RuleId::GramineLogLevel,
                key: "loader.log_level".into(),
                message: format!("loader.log_level = \"{l}\""),
            });
        }
        for key in ["sgx.enable_stats", "sgx.vtune_profile"] {
            if self.bool(key) == Some(true) {
                out.push(ManifestFinding {
                    rule: RuleId::GramineLogLevel,
                    key: key.into(),
                    message: format!("{key} = true exposes enclave internals to the host"),
                });
            }
        }
        if let Some(p) = self.string("sgx.profile.enable")
            && p != "none"
        {
            out.push(ManifestFinding {
                rule: RuleId::GramineLogLevel,
                key: "sgx.profile.enable".into(),
                message: format!("sgx.profile.enable = \"{p}\" samples enclave state for the host"),
            });
        }
        let allowed = self.len("sgx.allowed_files");
        if allowed > 0 {
            out.push(ManifestFinding {
                rule: RuleId::GramineAllowedFiles,
                key: "sgx.allowed_files".into(),
                message: format!("{allowed} sgx.allowed_files are neither hashed nor encrypted"),
            });
        }
        out
    }
}

/// Whether a value turns an option on (`false`, `0`, `""`, `[]`, `{}` do
/// not).
fn is_set(v: &toml::Value) -> bool {
    match v {
        toml::Value::Boolean(b) => *b,
        toml::Value::Integer(i) => *i != 0,
        toml::Value::String(s) => !s.is_empty(),
        toml::Value::Array(a) => !a.is_empty(),
        toml::Value::Table(t) => !t.is_empty(),
        _ => true,
    }
}

/// A value of an `insecure__` option, strings withheld (they may be keys).
fn redacted(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("<string of {} characters>", s.chars().count()),
        other => short(other),
    }
}

/// A short rendering of a value for messages.
fn short(v: &toml::Value) -> String {
    match v {
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::String(s) if s.len() <= 40 => format!("\"{s}\""),
        toml::Value::String(s) => format!("\"<{} characters>\"", s.chars().count()),
        toml::Value::Array(a) => format!("[{} entries]", a.len()),
        toml::Value::Table(t) => format!("{{{} keys}}", t.len()),
        other => other.type_str().to_string(),
    }
}

/// Visit every leaf and every table whose key names an option, with its
/// dotted key, in key order.
fn walk(t: &toml::Table, prefix: &str, depth: usize, f: &mut dyn FnMut(&str, &toml::Value)) {
    if depth > MAX_DEPTH {
        return;
    }
    for (k, v) in t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            // `fs.insecure__keys.<name> = "..."`: report each key.
            toml::Value::Table(sub) if !k.starts_with("insecure__") => {
                walk(sub, &key, depth + 1, f);
            }
            toml::Value::Table(sub) => {
                if sub.values().all(|x| !matches!(x, toml::Value::Table(_))) && !sub.is_empty() {
                    for (k2, v2) in sub {
                        f(&format!("{key}.{k2}"), v2);
                    }
                } else {
                    f(&key, v);
                }
            }
            _ => f(&key, v),
        }
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
        let rules: Vec<(RuleId, String)> =
            m.findings().into_iter().map(|f| (f.rule, f.key)).collect();
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
        let facts = m.facts("m");
        assert_eq!(facts.debug, Some(true));
        assert!(!facts.insecure_options.values().any(|v| v.contains("0011")));
    }

    #[test]
    fn clean_manifest_has_no_findings() {
        let m = Manifest::parse(
            b"sgx.debug = false\nloader.log_level = \"error\"\nsgx.isvprodid = 7\n",
        )
        .unwrap();
        assert!(m.findings().is_empty());
        assert_eq!(m.isvprodid(), Some(7));
    }

    #[test]
    fn malformed_and_hostile_manifests_are_errors_not_panics() {
        assert!(Manifest::parse(b"sgx.debug = ").is_err());
        assert!(Manifest::parse(&[0xff, 0xfe]).is_err());
        let deep = "a = ".to_string() + &"[".repeat(10_000) + &"]".repeat(10_000);
        assert!(Manifest::parse(deep.as_bytes()).is_err());
    }
}
