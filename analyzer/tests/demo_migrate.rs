//! `talos demo` runs the whole migration of an embedded sample: with CRIU a
//! running counter moves from S to T and counts on, a tampered image page
//! and the replayed image directory are refused; without CRIU (or with
//! `--no-criu`) a real memory dump of the running sample goes through every
//! step and every replay is refused. Nothing is left behind in the
//! temporary directory, and no process is left running.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

mod common;

fn temp_dir_of(text: &str) -> String {
    text.lines()
        .find_map(|l| l.split("state directories under ").nth(1))
        .and_then(|r| r.split(';').next())
        .unwrap()
        .to_string()
}

#[test]
fn demo_moves_the_running_counter_with_criu() {
    let out = Command::new(env!("CARGO_BIN_EXE_talos"))
        .arg("demo")
        .env_remove(talos_migrate::FAILPOINT_ENV)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    if let Some(why) = text.lines().find(|l| l.starts_with("CRIU cannot run here")) {
        common::skip_or_fail(&format!("the demo could not use CRIU: {why}"));
        return;
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "with CRIU",
        "criu dump --leave-stopped (the freeze)",
        "seal: ACCEPTED: counter frozen for target",
        "attack: T receives the images with one byte of a heap page flipped",
        "verify: REJECTED (state-mismatch)",
        "launch: ACCEPTED: counter restored from",
        "counts on from tick",
        "(heap hash",
        "throughout: unchanged)",
        "verify: REJECTED (already-accepted)",
        "launch: REJECTED (already-accepted)",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let dir = temp_dir_of(&text);
    assert!(!std::path::Path::new(&dir).exists(), "{dir} left behind");
    // The counter was stopped: no process runs the demo's binary.
    let left = Command::new("pgrep")
        .args(["-f", &format!("{dir}/counter")])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn demo_migrates_the_running_sample_and_refuses_the_replays() {
    let out = Command::new(env!("CARGO_BIN_EXE_talos"))
        .args(["demo", "--no-criu"])
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
    assert!(text.contains("CRIU cannot run here (--no-criu)"), "{text}");
    // The temporary directory is removed.
    let dir = temp_dir_of(&text);
    assert!(!std::path::Path::new(&dir).exists(), "{dir} left behind");
}
