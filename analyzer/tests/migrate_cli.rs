//! End-to-end tests of `talos keygen`, `talos reference` and `talos
//! migrate`: the real binary, real state directories, real gcore dumps of
//! the corpus program (statekeeper, from `corpus/dumps/make-dumps.sh`), and
//! one exact rejection reason per attack of issue 5:
//!
//! replayed bundle, older bundle, same bundle to a second target, second
//! seal from a frozen source, abort after release, a tampered code byte in
//! the dump (plus unverifiable code and a flow violation), a same-size
//! binary with one changed jump target, one changed state byte (memory and
//! registers), truncated and padded states, a signature by an unpinned key,
//! a reference by an unpinned owner, garbage and oversized messages, and
//! `kill -9` (`TALOS_FAILPOINT`) at every ledger write of every operation
//! followed by a retry. Network mode is in `migrate_net.rs`.
//!
//! Every rejection is also checked to write nothing: no output file, and
//! the ledger byte for byte unchanged.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
mod migrate_common;

use migrate_common::*;

#[test]
fn happy_path_on_a_real_gcore_dump_then_every_replay_is_refused() {
    let c = corpus_or_skip!();
    let w = World::sk(c, &["s", "t"]);
    let (code, v) = w.exchange_to_launch(c, "s", "t");
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["epoch"], 1);
    // The gate's view: S migrated away, T launched, exactly one accepted.
    assert_eq!(w.app_status("s"), "migrated-away");
    assert_eq!(w.app_status("t"), "launched");
    assert_eq!(w.status("t")["accepted"].as_array().unwrap().len(), 1);

    // Replayed bundle.
    let before = w.ledger("t");
    let (code, v) = w.verify(
        "t",
        "bundle-s-t",
        &c.sk_bin(),
        &c.core("sk.gcore-7f.core"),
        "r2",
    );
    assert_rejected(code, &v, "already-accepted");
    assert_eq!(
        w.ledger("t"),
        before,
        "a rejection must not write the ledger"
    );
    assert!(!w.p("r2").exists(), "a rejection must not write its output");
    // Replayed release.
    let (code, v) = w.launch("t", "release-s-t");
    assert_rejected(code, &v, "already-accepted");
    // Replayed receipt.
    let (code, v) = w.commit("s", "receipt-s-t", "rel2");
    assert_rejected(code, &v, "migrated-away");
    // Abort after release.
    let before = w.ledger("s");
    let (code, v) = w.run("s", &["abort", "--app", APP]);
    assert_rejected(code, &v, "migrated-away");
    assert_eq!(w.ledger("s"), before);
    // Sealing again on the source that gave the app away.
    w.challenge("t", "c2");
    let (code, v) = w.seal("s", "c2", &c.core("sk.gcore-7f.core"), "b2");
    assert_rejected(code, &v, "migrated-away");
    assert_eq!(w.app_status("s"), "migrated-away");
    assert_eq!(w.app_status("t"), "launched");
}

#[test]
fn launch_execs_the_command_only_after_the_ledger_accepted() {
    let c = corpus_or_skip!();
    let w = World::sk(c, &["s", "t"]);
    w.seal_and_verify(c, "s", "t", "");
    // Before the release exists, launch refuses and runs nothing.
    let marker = w.p("ran");
    let script = format!("echo launched > {}", marker.display());
    let (code, v) = parse(&w.launch_exec("t", "receipt-s-t", &script));
    assert_rejected(code, &v, "malformed"); // a receipt is not a release
    assert!(!marker.exists());
    let (code, v) = w.commit("s", "receipt-s-t", "release-s-t");
    assert_eq!(code, 0, "{v}");
    let out = w.launch_exec("t", "release-s-t", &script);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "launched\n");
    std::fs::remove_file(&marker).unwrap();
    let out = w.launch_exec("t", "release-s-t", &script);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !marker.exists(),
        "a refused launch must not run the command"
    );
}

#[test]
fn older_bundle_is_epoch_rollback() {
    let c = corpus_or_skip!();
    let w = World::sk(c, &["s", "t"]);
    let core = c.core("sk.gcore-7f.core");
    // Epoch 1 sealed for T, then aborted (no release); epoch 2 sealed for T.
    w.challenge("t", "c1");
    assert_eq!(w.seal("s", "c1", &core, "b1").0, 0);
    let (code, v) = w.run("s", &["abort", "--app", APP]);
    assert_eq!((code, v["changed"].as_bool()), (0, Some(true)), "{v}");
    w.challenge("t", "c2");
    let (code, v) = w.seal("s", "c2", &core, "b2");
    assert_eq!((code, v["epoch"].as_u64()), (0, Some(2)), "{v}");
    let (code, v) = w.verify("t", "b2", &c.sk_bin(), &core, "r2");
    assert_eq!(code, 0, "{v}");
    // The older bundle, whose nonce is still pending, is refused.
    let before = w.ledger("t");
    let (code, v) = w.verify("t", "b1", &c.sk_bin(), &core, "r1");
    assert_rejected(code, &v, "epoch-rollback");
    assert_eq!(w.ledger("t"), before);
    // The newer one completes, and the older one stays refused.
    assert_eq!(w.commit("s", "r2", "rel").0, 0);
    assert_eq!(w.launch("t", "rel").0, 0);
    let (code, v) = w.verify("t", "b1", &c.sk_bin(), &core, "r1");
    assert_rejected(code, &v, "epoch-rollback");
    assert_eq!(w.running_hosts(&["s", "t"]), 1);
}

#[test]
fn same_bundle_to_a_second_target_and_second_seal_from_a_frozen_source() {
    let c = corpus_or_skip!();
    let w = World::sk(c, &["s", "t", "u"]);
    let core = c.core("sk.gcore-7f.core");
    w.challenge("t", "ct");
    assert_eq!(w.seal("s", "ct", &core, "bt").0, 0);
    // The bundle for T, shown to U.
    w.challenge("u", "cu");
    let (code, v) = w.verify("u", "bt", &c.sk_bin(), &core, "ru");
    assert_rejected(code, &v, "wrong-target");
    // A second seal while frozen for T.
    let before = w.ledger("s");
    let (code, v) = w.seal("s", "cu", &core, "bu");
    assert_rejected(code, &v, "app-frozen");
    assert_eq!(w.ledger("s"), before);
    assert!(!w.p("bu").exists());
    // The bundle still verifies at its own target.
    let (code, v) = w.verify("t", "bt", &c.sk_bin(), &core, "rt");
    assert_eq!(code, 0, "{v}");
    // The source aborts (no release yet) and seals T's consumed challenge
    // again: a new bundle (epoch 2) on a used nonce.
    w.run_ok("s", &["abort", "--app", APP]);
    let (code, v) = w.seal("s", "ct", &core, "bt2");
    assert_eq!((code, v["epoch"].as_u64()), (0, Some(2)), "{v}");
    let (code, v) = w.verify("t", "bt2", &c.sk_bin(), &core, "rt2");
    assert_rejected(code, &v, "nonce-reused");
    // The receipt T signed for the aborted epoch is now worthless.
    let (code, v) = w.commit("s", "rt", "rel");
    assert_rejected(code, &v, "unknown-nonce");
    assert!(
        w.running_hosts(&["s", "t", "u"]) == 0,
        "frozen: nobody runs it"
    );
}

#[test]
fn dump_verdicts_refuse_the_seal_with_their_reason() {
    let c = corpus_or_skip!();
    let w = World::sk(c, &["s", "t"]);
    w.challenge("t", "c");
    let before = w.ledger("s");
    // A code byte flipped in the core file (make-dumps.sh, at PATCH_ADDR).
    let (code, v) = w.seal("s", "c", &c.core("sk.patched.core"), "b");
    assert_rejected(code, &v, "code-mismatch");
    let why = v["evidence"].to_string();
    assert!(why.contains("statekeeper"), "{why}");
    // Our own flip of one byte of the main module's code, in a copy of the
    // clean core.
    let tampered = w.p("tampered.core");
    std::fs::copy(c.core("sk.gcore-7f.core"), &tampered).unwrap();
    let off = core_offset(&tampered);
    flip(&tampered, off);
    let (code, v) = w.seal("s", "c", &tampered, "b");
    assert_rejected(code, &v, "code-mismatch");
    // Default coredump filter: the code pages are not in the dump.
    let (code, v) = w.seal("s", "c", &c.core("sk.gcore-default.core"), "b");
    assert_rejected(code, &v, "code-unverifiable");
    // A moved pc and a forged return address (make-dumps.sh flow core).
    let (code, v) = w.seal("s", "c", &c.core("sk.flow.core"), "b");
    assert_rejected(code, &v, "flow-violation");
    assert_eq!(
        w.ledger("s"),
        before,
        "refused seals must not freeze the app"
    );
    assert!(!w.p("b").exists());
    assert_eq!(w.app_status("s"), "running");
    // A --binary that is not the reference's is unusable input.
    let (code, _) = w.run(
        "s",
        &[
            "seal",
            "--app",
            APP,
            "--reference",
            &w.s("ref"),
            "--dump",
            c.core("sk.gcore-7f.core").to_str().unwrap(),
            "--binary",
            "/bin/sh",
            "--challenge",
            &w.s("c"),
            "-o",
            &w.s("b"),
        ],
    );
    assert_eq!(code, 2);
    // The clean dump seals.
    assert_eq!(w.seal("s", "c", &c.core("sk.gcore-7f.core"), "b").0, 0);
}

#[test]
fn changed_binary_and_changed_state_are_refused_by_the_target() {
    let c = corpus_or_skip!();
    let w = World::sk(c, &["s", "t"]);
    let core = c.core("sk.gcore-7f.core");
    w.challenge("t", "c");
    assert_eq!(w.seal("s", "c", &core, "b").0, 0);
    let before = w.ledger("t");

    // Same size, one changed jump target: the graph differs.
    let bin = w.p("sk-jump");
    std::fs::copy(c.sk_bin(), &bin).unwrap();
    let (addr, disp) = first_short_jmp(&c.sk_bin());
    let off = file_offset(&bin, addr + 1);
    let mut bytes = std::fs::read(&bin).unwrap();
    assert_eq!(bytes[off as usize], disp);
    bytes[off as usize] = 0; // jmp to the next instruction instead
    std::fs::write(&bin, &bytes).unwrap();
    assert_eq!(
        bytes.len() as u64,
        std::fs::metadata(c.sk_bin()).unwrap().len()
    );
    let (code, v) = w.verify("t", "b", &bin, &core, "r");
    assert_rejected(code, &v, "cfg-mismatch");

    // Same graph, other bytes: a changed byte of .rodata.
    let bin2 = w.p("sk-data");
    std::fs::copy(c.sk_bin(), &bin2).unwrap();
    flip(&bin2, 0x2010);
    let (code, v) = w.verify("t", "b", &bin2, &core, "r");
    assert_rejected(code, &v, "code-mismatch");

    // One changed byte of memory state (the middle of a writable segment).
    let st = w.p("state-mem.core");
    std::fs::copy(&core, &st).unwrap();
    flip(&st, writable_offset(&st));
    let (code, v) = w.verify("t", "b", &c.sk_bin(), &st, "r");
    assert_rejected(code, &v, "state-mismatch");

    // One changed byte of the notes (registers, process info).
    let st = w.p("state-regs.core");
    std::fs::copy(&core, &st).unwrap();
    flip(&st, note_offset(&st) + 200);
    let (code, v) = w.verify("t", "b", &c.sk_bin(), &st, "r");
    assert_rejected(code, &v, "state-mismatch");

    // Truncated by one byte, and padded by one byte.
    let full = std::fs::read(&core).unwrap();
    let st = w.p("state-trunc.core");
    std::fs::write(&st, &full[..full.len() - 1]).unwrap();
    let (code, v) = w.verify("t", "b", &c.sk_bin(), &st, "r");
    assert_rejected(code, &v, "state-mismatch");
    let st = w.p("state-pad.core");
    let mut padded = full.clone();
    padded.push(0);
    std::fs::write(&st, &padded).unwrap();
    let (code, v) = w.verify("t", "b", &c.sk_bin(), &st, "r");
    assert_rejected(code, &v, "state-mismatch");
    // Not a dump at all.
    let st = w.p("state-junk");
    std::fs::write(&st, b"not a core").unwrap();
    let (code, v) = w.verify("t", "b", &c.sk_bin(), &st, "r");
    assert_rejected(code, &v, "state-mismatch");

    assert_eq!(w.ledger("t"), before, "refused verifies must not write");
    assert!(!w.p("r").exists());
    // The nonce stayed pending: the right state is accepted afterwards.
    let (code, v) = w.verify("t", "b", &c.sk_bin(), &core, "r");
    assert_eq!(code, 0, "{v}");
}

#[test]
fn unpinned_keys_and_forged_signatures_are_refused() {
    let c = corpus_or_skip!();
    let w = World::sk(c, &["s", "t"]);
    let core = c.core("sk.gcore-7f.core");
    // A reference signed by an owner nobody pinned.
    w.unpinned_reference(c, "owner2", "ref2");
    w.challenge("t", "c");
    let seal2 = |reference: &str| {
        w.run(
            "s",
            &[
                "seal",
                "--app",
                APP,
                "--reference",
                &w.s(reference),
                "--dump",
                core.to_str().unwrap(),
                "--challenge",
                &w.s("c"),
                "-o",
                &w.s("b"),
            ],
        )
    };
    let (code, v) = seal2("ref2");
    assert_rejected(code, &v, "untrusted-key");
    assert_eq!(w.seal("s", "c", &core, "b").0, 0);
    let (code, v) = w.run(
        "t",
        &[
            "verify",
            "--bundle",
            &w.s("b"),
            "--reference",
            &w.s("ref2"),
            "--binary",
            c.sk_bin().to_str().unwrap(),
            "--state",
            core.to_str().unwrap(),
            "-o",
            &w.s("r"),
        ],
    );
    assert_rejected(code, &v, "untrusted-key");

    // A bundle signed by a host T has not pinned (U pins T and the owner,
    // registers the app and seals T's challenge).
    w.host("u");
    w.run_ok("u", &["trust", "--role", "owner", &w.s("owner.pub")]);
    w.run_ok(
        "u",
        &[
            "trust",
            "--role",
            "peer",
            &format!("{}/host.pub", w.dir("t")),
        ],
    );
    w.run_ok("u", &["register", "--app", APP]);
    w.challenge("t", "c-u");
    let (code, v) = w.seal("u", "c-u", &core, "b-u");
    assert_eq!(code, 0, "{v}");
    let (code, v) = w.verify("t", "b-u", &c.sk_bin(), &core, "r");
    assert_rejected(code, &v, "untrusted-key");

    // A forged signature (last byte flipped) and a forged body byte.
    let bundle = std::fs::read(w.p("b")).unwrap();
    let mut forged = bundle.clone();
    *forged.last_mut().unwrap() ^= 1;
    std::fs::write(w.p("b-sig"), &forged).unwrap();
    let (code, v) = w.verify("t", "b-sig", &c.sk_bin(), &core, "r");
    assert_rejected(code, &v, "bad-signature");
    let mut forged = bundle.clone();
    forged[30] ^= 1; // the first byte of the reference id
    std::fs::write(w.p("b-body"), &forged).unwrap();
    let (code, v) = w.verify("t", "b-body", &c.sk_bin(), &core, "r");
    assert_rejected(code, &v, "bad-signature");
    // The genuine bundle still verifies: the refusals consumed nothing.
    let (code, v) = w.verify("t", "b", &c.sk_bin(), &core, "r");
    assert_eq!(code, 0, "{v}");
}

#[test]
fn garbage_and_oversized_messages_are_malformed_and_bad_input_is_exit_2() {
    let w = World::new(&["s", "t"]);
    std::fs::write(w.p("garbage"), b"TALOSMSG\x01\x03 this is not a bundle").unwrap();
    std::fs::write(w.p("huge"), vec![0x41u8; 70 * 1024]).unwrap();
    std::fs::write(w.p("empty"), b"").unwrap();
    let before = w.ledger("s");
    for f in ["garbage", "huge", "empty"] {
        let (code, v) = w.commit("s", f, "rel");
        assert_rejected(code, &v, "malformed");
        let (code, v) = w.launch("t", f);
        assert_rejected(code, &v, "malformed");
    }
    // A message of another kind (a challenge given as a receipt).
    w.challenge("t", "chal");
    let (code, v) = w.commit("s", "chal", "rel");
    assert_rejected(code, &v, "malformed");
    assert_eq!(w.ledger("s"), before);
    assert!(!w.p("rel").exists());
    // Unusable input: exit 2 with an error naming the problem.
    let (code, v) = w.commit("s", "missing", "rel");
    assert_eq!((code, v["verdict"].as_str()), (2, Some("error")), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("missing"), "{v}");
    let out = w.raw_global(&["migrate", "status", "--state-dir", &w.s("nowhere")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere"));
    let (code, _) = w.run("s", &["register", "--app", "bad app id"]);
    assert_eq!(code, 2);
    let (code, _) = w.run("s", &["trust", "--role", "peer", &w.s("garbage")]);
    assert_eq!(code, 2);
    let (code, _) = w.run("s", &["init"]);
    assert_eq!(code, 2, "init twice");
    // keygen never overwrites and never prints the secret.
    let out = w.raw_global(&["keygen", "-o", &w.s("owner")]);
    assert_eq!(out.status.code(), Some(2));
    let secret = std::fs::read_to_string(w.p("owner")).unwrap();
    let hex = secret.split_whitespace().nth(1).unwrap();
    let out = w.raw_global(&["keygen", "-o", &w.s("k3")]);
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let k3 = std::fs::read_to_string(w.p("k3")).unwrap();
    assert!(!printed.contains(k3.split_whitespace().nth(1).unwrap()));
    assert!(!printed.contains(hex));
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(w.p("k3")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mode = std::fs::metadata(format!("{}/host.key", w.dir("s")))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // show describes a message and refuses garbage.
    let (code, v) = w.run_global_json(&["migrate", "show", &w.s("chal")]);
    assert_eq!((code, v["kind"].as_str()), (0, Some("challenge")), "{v}");
    let (code, v) = w.run_global_json(&["migrate", "show", &w.s("garbage")]);
    assert_rejected(code, &v, "malformed");
}

/// `kill -9` at every ledger write of every operation (the failpoints abort
/// the process, like SIGKILL: nothing is flushed), then a retry: the
/// migration always ends with the app in exactly one place and every bundle
/// accepted once.
#[test]
fn crash_at_every_ledger_write_then_retry_never_two_places() {
    let c = corpus_or_skip!();
    let core = c.core("sk.gcore-7f.core");
    for fp in FAILPOINTS {
        let after = fp.starts_with("ledger-after");
        let w = World::sk(c, &["s", "t"]);
        // Each step: run it under the failpoint (it must die by SIGABRT),
        // check the ledger is the old or the new one, retry without it.
        let crash = |host: &str, args: &[&str]| {
            let before = w.ledger(host);
            let out = w.raw_env(host, args, Some(fp));
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&out.status),
                Some(6),
                "{fp} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let now = w.ledger(host);
            if after {
                assert_ne!(
                    now, before,
                    "{fp} {args:?}: the new ledger must be in place"
                );
            } else {
                assert_eq!(
                    now, before,
                    "{fp} {args:?}: the old ledger must be in place"
                );
            }
            w.run(host, args)
        };
        // register
        w.host("s2");
        let (code, v) = crash("s2", &["register", "--app", APP]);
        assert_eq!(code, 0, "{fp}: {v}");
        assert_eq!(v["changed"].as_bool(), Some(!after), "{fp}: {v}");
        // trust
        let (code, v) = crash("s2", &["trust", "--role", "owner", &w.s("owner.pub")]);
        assert_eq!((code, v["new"].as_bool()), (0, Some(!after)), "{fp}: {v}");
        // challenge: after a crash the challenge file was never written; the
        // retry issues a new one.
        let (code, v) = crash("t", &["challenge", "--app", APP, "-o", &w.s("c")]);
        assert_eq!(code, 0, "{fp}: {v}");
        // seal
        let seal_args = [
            "seal",
            "--app",
            APP,
            "--reference",
            &w.s("ref"),
            "--dump",
            core.to_str().unwrap(),
            "--challenge",
            &w.s("c"),
            "-o",
            &w.s("b"),
        ];
        let (code, v) = crash("s", &seal_args);
        if after {
            assert_rejected(code, &v, "app-frozen");
            assert!(!w.p("b").exists());
            w.run_ok("s", &["resend", "--app", APP, "-o", &w.s("b")]);
        } else {
            assert_eq!(code, 0, "{fp}: {v}");
        }
        // abort while frozen, crashed, then re-seal (a new epoch) for T.
        let (code, v) = crash("s", &["abort", "--app", APP]);
        assert_eq!(
            (code, v["changed"].as_bool()),
            (0, Some(!after)),
            "{fp}: {v}"
        );
        assert_eq!(w.app_status("s"), "running");
        w.challenge("t", "c");
        let (code, v) = w.seal("s", "c", &core, "b");
        assert_eq!((code, v["epoch"].as_u64()), (0, Some(2)), "{fp}: {v}");
        // verify
        let sk_bin = c.sk_bin();
        let verify_args = [
            "verify",
            "--bundle",
            &w.s("b"),
            "--reference",
            &w.s("ref"),
            "--binary",
            sk_bin.to_str().unwrap(),
            "--state",
            core.to_str().unwrap(),
            "-o",
            &w.s("r"),
        ];
        let (code, v) = crash("t", &verify_args);
        if after {
            assert_rejected(code, &v, "already-accepted");
            w.run_ok("t", &["resend", "--app", APP, "-o", &w.s("r")]);
        } else {
            assert_eq!(code, 0, "{fp}: {v}");
        }
        // commit
        let (code, v) = crash("s", &["commit", "--receipt", &w.s("r"), "-o", &w.s("rel")]);
        if after {
            assert_rejected(code, &v, "migrated-away");
            w.run_ok("s", &["resend", "--app", APP, "-o", &w.s("rel")]);
        } else {
            assert_eq!(code, 0, "{fp}: {v}");
        }
        // At every point so far the app ran in at most one place.
        assert!(w.running_hosts(&["s", "t"]) <= 1);
        // launch
        let (code, v) = crash("t", &["launch", "--release", &w.s("rel")]);
        if after {
            assert_rejected(code, &v, "already-accepted");
        } else {
            assert_eq!(code, 0, "{fp}: {v}");
        }
        assert_eq!(w.app_status("s"), "migrated-away", "{fp}");
        assert_eq!(w.app_status("t"), "launched", "{fp}");
        assert_eq!(w.running_hosts(&["s", "t"]), 1, "{fp}");
        let accepted = w.status("t")["accepted"].as_array().unwrap().len();
        assert_eq!(accepted, 1, "{fp}: nothing accepted twice");
        // Replays after the crash-and-retry are still refused.
        let (code, v) = w.run("t", &verify_args);
        assert_rejected(code, &v, "already-accepted");
        let (code, v) = w.run("s", &["abort", "--app", APP]);
        assert_rejected(code, &v, "migrated-away");
    }
}

#[test]
fn status_and_json_verdicts_are_stable() {
    let c = corpus_or_skip!();
    let w = World::sk(c, &["s", "t"]);
    w.challenge("t", "c");
    let (code, v) = w.seal("s", "c", &c.core("sk.gcore-7f.core"), "b");
    assert_eq!(code, 0);
    for k in [
        "command", "verdict", "reason", "detail", "epoch", "bundle", "state", "output",
    ] {
        assert!(v.get(k).is_some(), "{k} missing in {v}");
    }
    assert_eq!(v["verdict"], "accepted");
    assert!(v["reason"].is_null());
    assert!(v["state"].as_str().unwrap().starts_with("talos.state/1:"));
    let s = w.status("s");
    assert_eq!(s["apps"][APP]["status"], "frozen");
    assert_eq!(s["apps"][APP]["last_epoch"], 1);
    // Text: one verdict line first.
    let out = w.raw("s", &["status"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("statekeeper: frozen"), "{text}");
    let out = w.raw("s", &["abort", "--app", APP]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("abort: ACCEPTED: statekeeper resumed here"),
        "{text}"
    );
    let out = w.raw("s", &["commit", "--receipt", &w.s("c"), "-o", &w.s("x")]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("commit: REJECTED (malformed): "), "{text}");
}

/// The test clock (`TALOS_TEST_NOW`, a test-build hook): a challenge
/// expires after its TTL, and a bundle sealed for it later is refused.
#[test]
fn challenge_expires_on_the_test_clock() {
    let c = corpus_or_skip!();
    let w = World::sk(c, &["s", "t"]);
    let now = 1_900_000_000u64;
    let v = w.run_at(
        "t",
        &["challenge", "--app", APP, "--ttl", "60", "-o", &w.s("c")],
        now,
    );
    assert_eq!(v.0, 0, "{}", v.1);
    let seal = |at: u64, out: &str| {
        w.run_at(
            "s",
            &[
                "seal",
                "--app",
                APP,
                "--reference",
                &w.s("ref"),
                "--dump",
                c.core("sk.gcore-7f.core").to_str().unwrap(),
                "--challenge",
                &w.s("c"),
                "-o",
                &w.s(out),
            ],
            at,
        )
    };
    // Sealed in time, verified after expiry: the target refuses.
    let (code, v) = seal(now + 30, "b");
    assert_eq!(code, 0, "{v}");
    let (code, v) = w.run_at(
        "t",
        &[
            "verify",
            "--bundle",
            &w.s("b"),
            "--reference",
            &w.s("ref"),
            "--binary",
            c.sk_bin().to_str().unwrap(),
            "--state",
            c.core("sk.gcore-7f.core").to_str().unwrap(),
            "-o",
            &w.s("r"),
        ],
        now + 61,
    );
    assert_rejected(code, &v, "expired-nonce");
}
