//! Gramine's `.manifest.sgx` (TOML, written by `gramine-sgx-sign`): what it
//! sets (option names from Gramine's `manifest-syntax.rst`). The rules that
//! judge it are in `check::gramine`.

use std::collections::BTreeMap;

use crate::model::GramineFacts;

/// Nesting depth examined when walking a manifest (real ones use 4-5).
const MAX_DEPTH: usize = 32;
/// Manifest size accepted (real ones, with file hashes, are a few MB).
pub const MAX_MANIFEST_BYTES: usize = 64 << 20;

/// An `insecure__` option the manifest turns on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsecureOption {
    /// Its dotted key (`loader.insecure__use_cmdline_argv`).
    pub key: String,
    /// Its value, strings withheld (they may be keys).
    pub value: String,
}

/// A manifest and the file it was read from.
#[derive(Debug, Clone)]
pub struct ManifestFile<'a> {
    /// The file, as given or found.
    pub path: &'a str,
    /// What it says.
    pub manifest: Manifest,
}

/// A parsed manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    root: toml::Table,
    /// The text it was parsed from (for the line a key is set on).
    text: String,
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
        Ok(Manifest {
            root,
            text: text.to_string(),
        })
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

    /// The boolean at a dotted key.
    #[must_use]
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(toml::Value::as_bool)
    }

    /// The integer at a dotted key.
    #[must_use]
    pub fn int(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(toml::Value::as_integer)
    }

    /// The string at a dotted key.
    #[must_use]
    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key).and_then(|v| v.as_str().map(str::to_string))
    }

    /// Entries of the file list at a dotted key: a missing key is none
    /// (`sgx.trusted_files` and `sgx.allowed_files` default to none), an
    /// array counts its items and a table its keys (the syntax before
    /// Gramine 1.4: `sgx.allowed_files.NAME = "file:..."`). Any other value
    /// is neither, and says so: its entries cannot be counted.
    pub fn entries(&self, key: &str) -> Result<usize, String> {
        match self.get(key) {
            None => Ok(0),
            Some(toml::Value::Array(a)) => Ok(a.len()),
            Some(toml::Value::Table(t)) => Ok(t.len()),
            Some(v) => Err(format!(
                "{key} is a {}, neither a list nor a table of files",
                v.type_str()
            )),
        }
    }

    /// Every `insecure__` option set to something that turns it on, in key
    /// order.
    #[must_use]
    pub fn insecure_options(&self) -> Vec<InsecureOption> {
        let mut out = Vec::new();
        walk(&self.root, "", 0, &mut |key, v| {
            if key.split('.').any(|p| p.starts_with("insecure__")) && is_set(v) {
                out.push(InsecureOption {
                    key: key.to_string(),
                    value: redacted(v),
                });
            }
        });
        out
    }

    /// The 1-based line that sets `key` (best effort: the key, or its last
    /// dotted component, followed by `=`), for SARIF regions.
    #[must_use]
    pub fn line_of(&self, key: &str) -> Option<u64> {
        let last = key.rsplit('.').next()?;
        for (n, line) in self.text.lines().enumerate() {
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

    /// Facts reported. A file list whose entries cannot be counted is
    /// reported as none and recorded in `anomalies`.
    #[must_use]
    pub fn facts(&self, path: &str, anomalies: &mut Vec<String>) -> GramineFacts {
        let mut count = |key: &str| match self.entries(key) {
            Ok(n) => n,
            Err(why) => {
                anomalies.push(format!("Gramine manifest {path}: {why}"));
                0
            }
        };
        let insecure: BTreeMap<String, String> = self
            .insecure_options()
            .into_iter()
            .map(|o| (o.key, o.value))
            .collect();
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
            trusted_files: count("sgx.trusted_files"),
            allowed_files: count("sgx.allowed_files"),
            insecure_options: insecure,
        }
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
    fn reads_insecure_options_withheld_and_the_lines_they_are_set_on() {
        let m = Manifest::parse(
            b"sgx.debug = true\n[loader]\ninsecure__use_cmdline_argv = true\ninsecure__use_host_env = false\n[fs.insecure__keys]\ndefault = \"00112233\"\n",
        )
        .unwrap();
        let keys: Vec<String> = m.insecure_options().into_iter().map(|o| o.key).collect();
        assert_eq!(
            keys,
            [
                "fs.insecure__keys.default",
                "loader.insecure__use_cmdline_argv"
            ]
        );
        assert!(
            !m.facts("m", &mut Vec::new())
                .insecure_options
                .values()
                .any(|v| v.contains("0011"))
        );
        assert_eq!(m.line_of("sgx.debug"), Some(1));
        assert_eq!(m.line_of("loader.insecure__use_cmdline_argv"), Some(3));
        assert_eq!(m.line_of("sgx.isvsvn"), None);
    }

    #[test]
    fn malformed_and_hostile_manifests_are_errors_not_panics() {
        assert!(Manifest::parse(b"sgx.debug = ").is_err());
        assert!(Manifest::parse(&[0xff, 0xfe]).is_err());
        let deep = "a = ".to_string() + &"[".repeat(10_000) + &"]".repeat(10_000);
        assert!(Manifest::parse(deep.as_bytes()).is_err());
    }
}
