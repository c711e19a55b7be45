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

/// Skip a test that needs something this machine lacks; in CI
/// (`TALOS_REQUIRE_CORPUS`) a missing prerequisite is a failure.
pub fn skip_or_fail(why: &str) {
    assert!(
        std::env::var_os("TALOS_REQUIRE_CORPUS").is_none(),
        "required: {why}"
    );
    eprintln!("SKIPPED: {why}");
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
