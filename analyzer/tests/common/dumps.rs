//! The dumps of `corpus/dumps/make-dumps.sh` (gdb and kernel cores of
//! statekeeper, python3, sqlite3, planted changes) and its manifest, shared
//! by the introspection and migration tests.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The dump folder and `manifest.env`, which records where the script
/// planted each change (computed with nm/objdump/readelf and /proc, not
/// with talos).
pub struct Corpus {
    pub dir: PathBuf,
    pub m: BTreeMap<String, String>,
}

impl Corpus {
    pub fn get(&self, k: &str) -> &str {
        self.m
            .get(k)
            .unwrap_or_else(|| panic!("manifest has no {k}"))
    }
    pub fn addr(&self, k: &str) -> u64 {
        let v = self.get(k);
        u64::from_str_radix(v.trim_start_matches("0x"), 16)
            .unwrap_or_else(|_| panic!("{k}={v} is not hex"))
    }
    pub fn num(&self, k: &str) -> u64 {
        self.get(k).parse().unwrap()
    }
    pub fn core(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    pub fn sk_bin(&self) -> PathBuf {
        PathBuf::from(self.get("SK_BIN"))
    }
}

/// Build (incrementally) and load the corpus dumps; `None` (after saying
/// SKIP) when this machine lacks gdb or a compiler, except under CI.
pub fn corpus() -> Option<&'static Corpus> {
    static C: OnceLock<Option<Corpus>> = OnceLock::new();
    C.get_or_init(|| {
        let script = super::root().join("corpus/dumps/make-dumps.sh");
        let out = Command::new("bash").arg(&script).output().unwrap();
        if out.status.code() == Some(77) {
            super::skip_or_fail(&format!(
                "corpus/dumps/make-dumps.sh: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return None;
        }
        assert!(
            out.status.success(),
            "make-dumps.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = super::root().join("corpus/out/dumps");
        let text = std::fs::read_to_string(dir.join("manifest.env")).unwrap();
        let m = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(Corpus { dir, m })
    })
    .as_ref()
}

/// The dumps, or return from the test (SKIP) when they cannot be built.
#[macro_export]
macro_rules! corpus_or_skip {
    () => {
        match $crate::common::dumps::corpus() {
            Some(c) => c,
            None => return,
        }
    };
}
