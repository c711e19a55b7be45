//! `talos demo` runs the whole migration of the embedded sample: a real
//! memory dump of the running sample, every step accepted, every replay
//! refused with its reason, and nothing left behind in the temporary
//! directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

mod common;

#[test]
fn demo_migrates_the_running_sample_and_refuses_the_replays() {
    let out = Command::new(env!("CARGO_BIN_EXE_talos"))
        .arg("demo")
        .env_remove(talos_migrate::FAILPOINT_ENV)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    if out.status.code() == Some(3) {
        // The machine forbids reading a child's memory: the demo says so
        // and exits 3, never claiming success.
        assert!(text.contains("does not let talos read"), "{text}");
        common::skip_or_fail(&format!("the demo could not dump the sample: {text}"));
        return;
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "step 1: recover its control-flow graph",
        "stopped in write(2) at exit",
        "seal: ACCEPTED: vault frozen for target",
        "code       clean: ",
        "as the reference says;",
        "flow       ok: 1 thread(s) unwound to their outermost frame",
        "verify: ACCEPTED: bundle",
        "commit: ACCEPTED: vault released to",
        "launch: ACCEPTED: vault may run here from epoch 1",
        "verify: REJECTED (already-accepted)",
        "abort: REJECTED (migrated-away)",
        "launch: REJECTED (already-accepted)",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // The temporary directory is removed.
    let dir = text
        .lines()
        .find_map(|l| l.split("state directories under ").nth(1))
        .and_then(|r| r.split(';').next())
        .unwrap();
    assert!(!std::path::Path::new(dir).exists(), "{dir} left behind");
}
