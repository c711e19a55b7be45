//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

pub mod criu;
pub mod dumps;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `corpus/out`, built on first use by `corpus/build.sh` (once per test
/// process; the script itself is incremental). Returns `None` when the
/// corpus cannot be built here, after saying why, unless
/// `TALOS_REQUIRE_CORPUS` is set (CI), in which case that is a failure.
pub fn corpus() -> Option<PathBuf> {
    static BUILT: Mutex<Option<bool>> = Mutex::new(None);
    let out = root().join("corpus/out");
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if built.is_none() {
        let ok = out.join("manifest.json").is_file() || {
            eprintln!(
                "building the corpus (corpus/build.sh), this takes a few minutes the first time"
            );
            Command::new("bash")
                .arg(root().join("corpus/build.sh"))
                .status()
                .is_ok_and(|s| s.success())
        };
        *built = Some(ok);
    }
    if *built == Some(true) && out.join("manifest.json").is_file() {
        return Some(out);
    }
    skip_or_fail("the corpus could not be built (see corpus/README.md for the compilers it needs)");
    None
}

/// Whether a missing input or tool must fail a test instead of skipping
/// it: CI sets `TALOS_REQUIRE_CORPUS=1` (`.ci/run`). The one switch every
/// end-to-end test goes through.
pub fn required() -> bool {
    std::env::var_os("TALOS_REQUIRE_CORPUS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Skip a test (or part of one) that needs something this machine lacks:
/// print the reason; under `TALOS_REQUIRE_CORPUS=1` fail instead. Never
/// return from a test silently: call this.
pub fn skip_or_fail(why: &str) {
    assert!(!required(), "required: {why}");
    eprintln!("SKIPPED: {why}");
}

/// `Some(path)` when the file exists; otherwise skip (or fail under CI)
/// saying what builds it.
pub fn need_file(path: &Path, built_by: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path.to_path_buf());
    }
    skip_or_fail(&format!("{} is missing ({built_by})", path.display()));
    None
}

/// Whether `tool` is on PATH; when it is not, skip (or fail under CI).
pub fn need_tool(tool: &str, for_what: &str) -> bool {
    if which(tool) {
        return true;
    }
    skip_or_fail(&format!("{tool} is not installed ({for_what})"));
    false
}

/// Run a corpus build script (once per test process and output, serialised
/// across test processes with `flock`) when any of its sources is newer
/// than `stamp`, a file it writes last. `None` after skip (or failure
/// under CI) when the script fails.
pub fn built_by(script: &str, sources: &[&str], out: &Path, stamp: &str) -> Option<PathBuf> {
    static DONE: Mutex<Vec<(PathBuf, bool)>> = Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, ok)) = done.iter().find(|(p, _)| p == out) {
        return ok.then(|| out.to_path_buf());
    }
    let script_path = root().join(script);
    let dir = script_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let newest_src = std::iter::once(script_path.clone())
        .chain(sources.iter().map(|f| dir.join(f)))
        .filter_map(|f| std::fs::metadata(f).ok()?.modified().ok())
        .max();
    let built = std::fs::metadata(out.join(stamp))
        .and_then(|m| m.modified())
        .ok();
    let ok = if built.is_none() || newest_src > built {
        let lock = root().join("corpus/out").join(format!(
            ".{}.lock",
            out.file_name().and_then(|n| n.to_str()).unwrap_or("build")
        ));
        let _ = std::fs::create_dir_all(root().join("corpus/out"));
        let status = Command::new("flock")
            .arg(&lock)
            .arg("bash")
            .arg(&script_path)
            .status();
        let ok = status.is_ok_and(|s| s.success());
        if !ok {
            skip_or_fail(&format!(
                "{script} failed (see its header for what it needs)"
            ));
        }
        ok
    } else {
        true
    };
    done.push((out.to_path_buf(), ok));
    ok.then(|| out.to_path_buf())
}

/// The enclave corpus (`corpus/enclave/build.sh`), built on first use.
pub fn enclave_corpus() -> Option<PathBuf> {
    built_by(
        "corpus/enclave/build.sh",
        &[
            "gen.py",
            "sgx_enclave.c",
            "gramine_app.c",
            "keystone_eapp.c",
        ],
        &root().join("corpus/out/enclave"),
        "sgx-clean.so.expected.json",
    )
}

/// The PE and ELF hardening corpus (`corpus/hardening/build.sh`), built on
/// first use.
pub fn hardening_corpus() -> Option<PathBuf> {
    built_by(
        "corpus/hardening/build.sh",
        &["hardened.c", "pe_enclave.c"],
        &root().join("corpus/out/hardening"),
        "manifest.json",
    )
}

/// Run the real `talos` binary.
pub fn talos(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_talos"))
        .args(args)
        .output()
        .expect("run talos")
}

/// The standard error of a run, as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether `tool` is on PATH.
pub fn which(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Read and parse a JSON file.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
