//! A verifier that did not check says so: planted gcores where the flow
//! check or the kernel-code check cannot pass (a pc in the padding between
//! two functions, a pc in the middle of an instruction, a thread whose
//! registers were zeroed or whose `NT_PRSTATUS` was dropped, a vDSO from
//! another kernel, a vDSO changed in memory) each give the exit code the
//! evidence calls for, name the thread or region, and make `talos migrate
//! seal` refuse with its own reason. A closed output pipe keeps the
//! verdict's exit code.
//!
//! The dumps come from `corpus/dumps/make-dumps.sh`, which records where it
//! planted each change (with nm, gdb and Python, not with talos) in
//! `manifest.env`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod common;
mod migrate_common;

use migrate_common::*;

/// `talos introspect CORE [EXTRA] --format json`: exit code and document.
fn introspect(core: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["introspect", core.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--format", "json"]);
    let o = common::talos(&args);
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", common::stderr(&o)));
    (o.status.code().unwrap_or(-1), v)
}

fn thread(v: &Value, tid: u64) -> &Value {
    v["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tid"] == tid)
        .unwrap_or_else(|| panic!("no thread {tid} in {}", v["threads"]))
}

fn unchecked(v: &Value) -> &Vec<Value> {
    v["unchecked"].as_array().unwrap()
}

/// Seal `core` for a fresh challenge: the gate's verdict.
fn seal(w: &World, core: &Path, tag: &str) -> (i32, Value) {
    w.challenge("t", &format!("c-{tag}"));
    w.seal("s", &format!("c-{tag}"), core, &format!("b-{tag}"))
}

#[test]
fn pc_in_padding_is_a_flow_finding_and_seal_refuses_it() {
    let c = corpus_or_skip!();
    let core = c.core("sk.padding.core");
    let (code, v) = introspect(&core, &[]);
    assert_eq!(code, 1, "{}", v["summary"]);
    assert_eq!(v["verdict"], "findings");
    let tid = c.num("PAD_TID");
    let t = thread(&v, tid);
    assert_eq!(t["pc"], c.addr("PAD_PC"));
    assert_eq!(t["pc_check"], "padding", "{t}");
    assert_eq!(t["flow"], "finding");
    let f: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "flow")
        .collect();
    assert_eq!(f.len(), 1, "{:?}", v["findings"]);
    assert_eq!(f[0]["thread"], tid);
    assert_eq!(f[0]["addr"], c.addr("PAD_PC"));
    let msg = f[0]["message"].as_str().unwrap();
    // Named by its neighbours, as nm lists them.
    assert!(
        msg.contains("padding")
            && msg.contains(c.get("PAD_AFTER"))
            && msg.contains(c.get("PAD_BEFORE")),
        "{msg}"
    );
    let w = World::sk(c, &["s", "t"]);
    let (code, v) = seal(&w, &core, "pad");
    assert_rejected(code, &v, "flow-violation");
    assert!(
        v["flow"].as_str().unwrap().starts_with("violation: "),
        "{v}"
    );
    assert!(v["flow"].as_str().unwrap().contains("padding"), "{v}");
}

#[test]
fn pc_in_the_middle_of_an_instruction_is_a_flow_finding() {
    let c = corpus_or_skip!();
    let core = c.core("sk.flow.core");
    let (code, v) = introspect(&core, &[]);
    assert_eq!(code, 1);
    let t = thread(&v, c.num("FLOW_PC_TID"));
    assert_eq!(t["pc_check"], "mid-instruction");
    assert_eq!(t["flow"], "finding");
    assert_eq!(t["location"]["function"], c.get("FLOW_PC_FUNC"));
    let w = World::sk(c, &["s", "t"]);
    let (code, v) = seal(&w, &core, "mid");
    assert_rejected(code, &v, "flow-violation");
}

#[test]
fn zeroed_registers_are_not_checked_exit_3_and_seal_refuses() {
    let c = corpus_or_skip!();
    let core = c.core("sk.noregs.core");
    let (code, v) = introspect(&core, &[]);
    assert_eq!(code, 3, "{}", v["summary"]);
    assert_eq!(v["verdict"], "unverifiable");
    let tid = c.num("NOREGS_TID");
    let t = thread(&v, tid);
    assert_eq!(t["pc_check"], "no-registers");
    assert_eq!(t["flow"], "not-checked");
    assert_eq!(t["not_checked"], "no-registers");
    let u = unchecked(&v);
    assert_eq!(u.len(), 1, "{u:?}");
    assert_eq!(u[0]["part"], "thread");
    assert_eq!(u[0]["subject"], format!("thread {tid}"));
    assert_eq!(u[0]["reason"], "no-registers");
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("thread {tid}")),
        "{}",
        v["summary"]
    );
    // Every module is still clean: the code check was done.
    for m in v["modules"].as_array().unwrap() {
        assert!(m["verdict"] == "clean" || m["verdict"] == "kernel", "{m}");
    }
    // The text says what was not checked.
    let o = common::talos(&["introspect", core.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("not checked: 1"), "{text}");
    assert!(text.contains(&format!("thread {tid}")), "{text}");
    let w = World::sk(c, &["s", "t"]);
    let (code, v) = seal(&w, &core, "noregs");
    assert_rejected(code, &v, "flow-unverifiable");
    assert!(v["flow"].as_str().unwrap().contains("no-registers"), "{v}");
    // The source was not frozen: the app still runs there.
    assert_eq!(w.app_status("s"), "running");
}

#[test]
fn dropped_prstatus_is_a_thread_not_checked_and_seal_refuses() {
    let c = corpus_or_skip!();
    let core = c.core("sk.noprstatus.core");
    let (code, v) = introspect(&core, &[]);
    assert_eq!(code, 3, "{}", v["summary"]);
    // The dropped thread is not listed, but it is not forgotten.
    let tid = c.num("NOPRSTATUS_TID");
    assert!(
        v["threads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["tid"] != tid)
    );
    let u = unchecked(&v);
    assert_eq!(u.len(), 1, "{u:?}");
    assert_eq!(
        (u[0]["part"].as_str(), u[0]["reason"].as_str()),
        (Some("thread"), Some("no-registers"))
    );
    assert!(
        u[0]["detail"].as_str().unwrap().contains("NT_FPREGSET"),
        "{}",
        u[0]["detail"]
    );
    assert!(
        v["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["code"] == "missing-prstatus")
    );
    let w = World::sk(c, &["s", "t"]);
    let (code, v) = seal(&w, &core, "noprstatus");
    assert_rejected(code, &v, "flow-unverifiable");
}

#[test]
fn vdso_from_another_kernel_is_not_checked_until_its_own_vdso_is_given() {
    let c = corpus_or_skip!();
    let core = c.core("sk.vdso-other.core");
    let (code, v) = introspect(&core, &[]);
    assert_eq!(code, 3, "{}", v["summary"]);
    let vdso = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"] == "[vdso]")
        .unwrap();
    assert_eq!(vdso["verdict"], "unverifiable");
    assert_eq!(vdso["base"], c.addr("VDSO_ADDR"));
    assert!(
        vdso["reason"].as_str().unwrap().contains("another kernel"),
        "{}",
        vdso["reason"]
    );
    let u = unchecked(&v);
    assert_eq!(u.len(), 1, "{u:?}");
    assert_eq!(u[0]["part"], "kernel-code");
    assert_eq!(u[0]["subject"], "[vdso]");
    assert_eq!(u[0]["reason"], "other-kernel");
    // The summary does not claim that all executable memory was compared.
    assert!(
        !v["summary"]
            .as_str()
            .unwrap()
            .contains("nothing else is executable")
    );
    // With the vDSO saved on the host the dump came from: compared, clean.
    let saved = c.core("sk.vdso-other.vdso");
    let (code, v) = introspect(&core, &["--vdso", saved.to_str().unwrap()]);
    assert_eq!(code, 0, "{}", v["summary"]);
    assert!(unchecked(&v).is_empty());
    let w = World::sk(c, &["s", "t"]);
    let (code, v) = seal(&w, &core, "vdso");
    assert_rejected(code, &v, "code-unverifiable");
    assert!(v["code"].as_str().unwrap().contains("[vdso]"), "{v}");
}

#[test]
fn vdso_changed_in_memory_is_tampered_at_its_address() {
    let c = corpus_or_skip!();
    let core = c.core("sk.vdso-patched.core");
    let (code, v) = introspect(&core, &[]);
    assert_eq!(code, 1, "{}", v["summary"]);
    assert_eq!(v["verdict"], "tampered");
    let vdso = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"] == "[vdso]")
        .unwrap();
    assert_eq!(vdso["verdict"], "tampered");
    assert_eq!(vdso["differing_bytes"], 1);
    assert_eq!(vdso["diffs"][0]["addr"], c.addr("VDSO_PATCH_ADDR"));
    let w = World::sk(c, &["s", "t"]);
    let (code, v) = seal(&w, &core, "vdsop");
    assert_rejected(code, &v, "code-mismatch");
}

/// `set -o pipefail; talos introspect tampered.core | true` exits 1: a
/// reader that closes the pipe early does not turn a verdict into success.
#[test]
fn closed_pipe_keeps_the_verdicts_exit_code() {
    let c = corpus_or_skip!();
    if !common::need_tool("bash", "pipefail") {
        return;
    }
    let talos = env!("CARGO_BIN_EXE_talos");
    for (core, want) in [
        ("sk.int3.core", 1),
        ("sk.noregs.core", 3),
        ("sk.gcore-7f.core", 0),
    ] {
        for reader in ["true", "head -c 1 >/dev/null"] {
            let o = Command::new("bash")
                .arg("-c")
                .arg(format!(
                    "set -o pipefail; \"$0\" introspect \"$1\" | {reader}"
                ))
                .arg(talos)
                .arg(c.core(core))
                .output()
                .unwrap();
            assert_eq!(
                o.status.code(),
                Some(want),
                "{core} | {reader}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(
                !String::from_utf8_lossy(&o.stderr).contains("panicked"),
                "{core} | {reader}"
            );
        }
    }
}
