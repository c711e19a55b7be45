//! The gate on real state directories: the happy path, every rejection
//! reason in a realistic scenario, and "nothing is written on rejection".
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use talos_migrate::*;

fn ledgers(w: &World) -> Vec<Vec<u8>> {
    ["source", "target", "third"]
        .iter()
        .map(|d| std::fs::read(w.path(d).join(LEDGER_FILE)).unwrap())
        .collect()
}

fn source_key(w: &World) -> SecretKey {
    SecretKey::load(&w.path("source").join(HOST_KEY_FILE)).unwrap()
}

#[test]
fn happy_path_there_and_back() {
    let w = World::new();
    let (b, r, rel) = w.up_to_release();
    assert_eq!(b.body().epoch, 1);
    assert_eq!(r.body().bundle, b.id());
    assert_eq!(rel.body().target, w.target.public_key());
    let launch = w.target.launch(&rel).unwrap();
    assert_eq!(
        launch,
        Launch {
            app: w.app.clone(),
            epoch: 1,
            bundle: b.id(),
            source: w.source.public_key()
        }
    );

    let s = w.source.status().unwrap();
    assert!(matches!(s.status_of(&w.app), Status::MigratedAway(x) if *x == rel));
    assert_eq!(s.apps[&w.app].releases.len(), 1);
    assert_eq!(s.apps[&w.app].releases[0].bundle, b.id());
    let t = w.target.status().unwrap();
    assert!(matches!(t.status_of(&w.app), Status::Launched(_)));
    assert!(t.status_of(&w.app).may_run());
    assert!(t.pending.is_empty());
    assert_eq!(t.accepted[&b.id()].nonce, b.body().nonce);
    assert_eq!(t.last_epoch(&w.app), 1);

    // And back: the target is now the source; epochs keep growing.
    let c = w.source.challenge(&w.app, NOW + 10, TTL).unwrap();
    let ev = w.seal_evidence();
    let b2 = w
        .target
        .seal(&w.app, &w.reference, &ev, &c, NOW + 10)
        .unwrap();
    assert_eq!(b2.body().epoch, 2);
    let r2 = w
        .source
        .verify(&b2, &w.reference, &w.target_evidence(), NOW + 10)
        .unwrap();
    let rel2 = w.target.commit(&r2).unwrap();
    let l2 = w.source.launch(&rel2).unwrap();
    assert_eq!(l2.epoch, 2);
    assert!(w.source.status().unwrap().status_of(&w.app).may_run());
    assert!(!w.target.status().unwrap().status_of(&w.app).may_run());

    // The old bundle, receipt and release are all dead now.
    assert_eq!(reason(w.target.launch(&rel)), Rejection::NoRelease);
    assert_eq!(reason(w.source.commit(&r)), Rejection::UnknownNonce);
}

/// One realistic scenario per rejection reason. Each entry runs the
/// exchange up to the attack and returns the attacked call's result; the
/// test checks the reason, that the ledgers did not change on the
/// rejection, and that every reason is covered.
#[test]
fn every_rejection_reason_is_reachable_and_writes_nothing() {
    type Scenario = fn(&World) -> Box<dyn FnOnce() -> Result<()> + '_>;
    let table: Vec<(Rejection, &str, Scenario)> = vec![
        (
            Rejection::BadSignature,
            "bundle with one flipped epoch byte",
            |w| {
                let b = w.seal(&w.challenge()).unwrap();
                let mut bytes = b.encode();
                // Last byte of the epoch: header(10), app (1 + len), epoch (8).
                bytes[10 + 1 + w.app.as_str().len() + 7] ^= 1;
                let forged = Bundle::decode(&bytes).unwrap();
                Box::new(move || w.verify(&forged).map(drop))
            },
        ),
        (
            Rejection::UntrustedKey,
            "bundle sealed by an unpinned host",
            |w| {
                let rogue = Host::init(&w.path("rogue")).unwrap();
                rogue.trust(Role::Owner, &w.owner.public()).unwrap();
                rogue.trust(Role::Peer, &w.target.public_key()).unwrap();
                rogue.register(&w.app).unwrap();
                let b = rogue
                    .seal(
                        &w.app,
                        &w.reference,
                        &w.seal_evidence(),
                        &w.challenge(),
                        NOW,
                    )
                    .unwrap();
                Box::new(move || w.verify(&b).map(drop))
            },
        ),
        (
            Rejection::UnknownNonce,
            "bundle answering a nonce the target never issued",
            |w| {
                let b = Bundle::sign(
                    BundleBody {
                        app: w.app.clone(),
                        epoch: 1,
                        reference: w.reference.id(),
                        state: w.seal_evidence().state,
                        nonce: Nonce([0x5a; 32]),
                        target: w.target.public_key(),
                    },
                    &source_key(w),
                );
                Box::new(move || w.verify(&b).map(drop))
            },
        ),
        (
            Rejection::ExpiredNonce,
            "bundle verified after the nonce expired",
            |w| {
                let b = w.seal(&w.challenge()).unwrap();
                Box::new(move || {
                    w.target
                        .verify(&b, &w.reference, &w.target_evidence(), NOW + TTL)
                        .map(drop)
                })
            },
        ),
        (
            Rejection::NonceReused,
            "second bundle for a consumed nonce (after abort and reseal)",
            |w| {
                let c = w.challenge();
                let b1 = w.seal(&c).unwrap();
                w.verify(&b1).unwrap();
                w.source.abort(&w.app).unwrap();
                let b2 = w.seal(&c).unwrap();
                assert_ne!(b1.id(), b2.id());
                Box::new(move || w.verify(&b2).map(drop))
            },
        ),
        (
            Rejection::WrongTarget,
            "the same bundle to a second target",
            |w| {
                let b = w.seal(&w.challenge()).unwrap();
                Box::new(move || {
                    w.third
                        .verify(&b, &w.reference, &w.target_evidence(), NOW)
                        .map(drop)
                })
            },
        ),
        (
            Rejection::EpochRollback,
            "bundle older than one already accepted",
            |w| {
                let (c1, c2) = (w.challenge(), w.challenge());
                let old = w.seal(&c1).unwrap();
                w.source.abort(&w.app).unwrap();
                let new = w.seal(&c2).unwrap();
                w.verify(&new).unwrap();
                Box::new(move || w.verify(&old).map(drop))
            },
        ),
        (Rejection::AlreadyAccepted, "replayed bundle", |w| {
            let b = w.seal(&w.challenge()).unwrap();
            w.verify(&b).unwrap();
            Box::new(move || w.verify(&b).map(drop))
        }),
        (
            Rejection::AppFrozen,
            "second seal from a frozen source",
            |w| {
                w.seal(&w.challenge()).unwrap();
                let c2 = w.third.challenge(&w.app, NOW, TTL).unwrap();
                Box::new(move || w.seal(&c2).map(drop))
            },
        ),
        (Rejection::MigratedAway, "abort after release", |w| {
            w.up_to_release();
            Box::new(move || w.source.abort(&w.app).map(drop))
        }),
        (
            Rejection::CodeMismatch,
            "a tampered code byte in the dump",
            |w| {
                let c = w.challenge();
                Box::new(move || {
                    let ev = SealEvidence {
                        code: CodeVerdict::Modified,
                        ..w.seal_evidence()
                    };
                    w.source.seal(&w.app, &w.reference, &ev, &c, NOW).map(drop)
                })
            },
        ),
        (
            Rejection::CfgMismatch,
            "same-size binary with one changed jump target",
            |w| {
                let b = w.seal(&w.challenge()).unwrap();
                Box::new(move || {
                    let ev = TargetEvidence {
                        binary: m("blake3", 11),
                        cfg: m("talos.cfg/1", 31),
                        ..w.target_evidence()
                    };
                    w.target.verify(&b, &w.reference, &ev, NOW).map(drop)
                })
            },
        ),
        (Rejection::StateMismatch, "one changed state byte", |w| {
            let b = w.seal(&w.challenge()).unwrap();
            Box::new(move || {
                let ev = TargetEvidence {
                    state: m("talos.state/1", 41),
                    ..w.target_evidence()
                };
                w.target.verify(&b, &w.reference, &ev, NOW).map(drop)
            })
        }),
        (
            Rejection::CodeUnverifiable,
            "dump whose code cannot be checked",
            |w| {
                let c = w.challenge();
                Box::new(move || {
                    let ev = SealEvidence {
                        code: CodeVerdict::Unverifiable,
                        ..w.seal_evidence()
                    };
                    w.source.seal(&w.app, &w.reference, &ev, &c, NOW).map(drop)
                })
            },
        ),
        (
            Rejection::FlowViolation,
            "dump with a return address outside the graph",
            |w| {
                let c = w.challenge();
                Box::new(move || {
                    let ev = SealEvidence {
                        flow: FlowVerdict::Violation,
                        ..w.seal_evidence()
                    };
                    w.source.seal(&w.app, &w.reference, &ev, &c, NOW).map(drop)
                })
            },
        ),
        (
            Rejection::FlowUnverifiable,
            "dump with a thread whose flow could not be checked",
            |w| {
                let c = w.challenge();
                Box::new(move || {
                    let ev = SealEvidence {
                        flow: FlowVerdict::Unverified,
                        ..w.seal_evidence()
                    };
                    w.source.seal(&w.app, &w.reference, &ev, &c, NOW).map(drop)
                })
            },
        ),
        (
            Rejection::NoRelease,
            "release for a bundle the target never verified",
            |w| {
                let b = w.seal(&w.challenge()).unwrap();
                let rel = Release::sign(
                    ReleaseBody {
                        app: w.app.clone(),
                        epoch: 1,
                        bundle: b.id(),
                        target: w.target.public_key(),
                    },
                    &source_key(w),
                );
                Box::new(move || w.target.launch(&rel).map(drop))
            },
        ),
        (Rejection::Malformed, "garbage instead of a bundle", |_| {
            Box::new(|| Bundle::decode(b"GIF89a\x01\x00").map(drop))
        }),
        (
            Rejection::LaunchMismatch,
            "a valid release, but the restored app is not what was verified",
            |w| {
                let b = w.seal(&w.challenge()).unwrap();
                let r = w.verify(&b).unwrap();
                let rel = w.source.commit(&r).unwrap();
                Box::new(move || {
                    w.target
                        .launch_with(&rel, |_| Err("memory digest differs".into()))
                        .map(drop)
                })
            },
        ),
    ];
    let mut covered = std::collections::BTreeSet::new();
    for (expected, story, scenario) in table {
        let w = World::new();
        let attack = scenario(&w);
        let before = ledgers(&w);
        let got = reason(attack());
        assert_eq!(got, expected, "{story}");
        assert_eq!(ledgers(&w), before, "{story}: a rejection changed a ledger");
        covered.insert(expected);
    }
    let missing: Vec<_> = Rejection::ALL
        .iter()
        .filter(|r| !covered.contains(r))
        .collect();
    assert!(missing.is_empty(), "no scenario for {missing:?}");
}

#[test]
fn reference_signed_by_unpinned_owner_is_refused_on_both_sides() {
    let w = World::new();
    let rogue_owner = SecretKey::generate();
    let rogue_ref = reference_for(&w.app, &rogue_owner);
    let c = w.challenge();
    let ev = w.seal_evidence();
    assert_eq!(
        reason(w.source.seal(&w.app, &rogue_ref, &ev, &c, NOW)),
        Rejection::UntrustedKey
    );
    let b = w.seal(&c).unwrap();
    assert_eq!(
        reason(w.target.verify(&b, &rogue_ref, &w.target_evidence(), NOW)),
        Rejection::UntrustedKey
    );
    // An owner pinned as a peer is still not an owner.
    w.target.trust(Role::Peer, &rogue_owner.public()).unwrap();
    assert_eq!(
        reason(w.target.verify(&b, &rogue_ref, &w.target_evidence(), NOW)),
        Rejection::UntrustedKey
    );
}

#[test]
fn tampered_reference_and_challenge_signatures_are_refused() {
    let w = World::new();
    let mut bytes = w.reference.encode();
    let version_at = 10 + 1 + w.app.as_str().len() + 1;
    bytes[version_at] = b'9';
    let forged = Reference::decode(&bytes).unwrap();
    let c = w.challenge();
    assert_eq!(
        reason(w.source.seal(&w.app, &forged, &w.seal_evidence(), &c, NOW)),
        Rejection::BadSignature
    );
    let mut cb = c.encode();
    let n = cb.len();
    cb[n - 100] ^= 0x80; // a byte of expires_at
    let forged_c = Challenge::decode(&cb).unwrap();
    assert_eq!(reason(w.seal(&forged_c)), Rejection::BadSignature);
}

#[test]
fn seal_checks_inputs_and_status() {
    let w = World::new();
    let c = w.challenge();
    // Reference for another app.
    let other = AppId::new("other").unwrap();
    let r2 = reference_for(&other, &w.owner);
    assert_eq!(
        reason(w.source.seal(&w.app, &r2, &w.seal_evidence(), &c, NOW)),
        Rejection::Malformed
    );
    // Evidence checked against another code measurement.
    let ev = SealEvidence {
        reference_code: m("talos.code/1", 21),
        ..w.seal_evidence()
    };
    assert_eq!(
        reason(w.source.seal(&w.app, &w.reference, &ev, &c, NOW)),
        Rejection::CodeMismatch
    );
    // Same digest, other scheme: still a mismatch.
    let ev = SealEvidence {
        reference_code: m("talos.code/2", 20),
        ..w.seal_evidence()
    };
    assert_eq!(
        reason(w.source.seal(&w.app, &w.reference, &ev, &c, NOW)),
        Rejection::CodeMismatch
    );
    // Expired challenge.
    assert_eq!(
        reason(
            w.source
                .seal(&w.app, &w.reference, &w.seal_evidence(), &c, NOW + TTL)
        ),
        Rejection::ExpiredNonce
    );
    // A host that never had the app cannot seal it.
    let c3 = w.source.challenge(&w.app, NOW, TTL).unwrap();
    assert_eq!(
        reason(
            w.third
                .seal(&w.app, &w.reference, &w.seal_evidence(), &c3, NOW)
        ),
        Rejection::NoRelease
    );
    // A challenge from this host itself.
    let own = w.source.challenge(&w.app, NOW, TTL).unwrap();
    w.source.trust(Role::Peer, &w.source.public_key()).unwrap();
    assert_eq!(reason(w.seal(&own)), Rejection::WrongTarget);
    // After all that, the source is still running and unfrozen.
    assert_eq!(
        w.source.status().unwrap().status_of(&w.app),
        &Status::Running
    );
}

#[test]
fn verify_checks_binary_reference_binding_and_truncated_state() {
    let w = World::new();
    let b = w.seal(&w.challenge()).unwrap();
    // Same graph, different bytes (e.g. a changed constant): code-mismatch.
    let ev = TargetEvidence {
        binary: m("blake3", 11),
        ..w.target_evidence()
    };
    assert_eq!(
        reason(w.target.verify(&b, &w.reference, &ev, NOW)),
        Rejection::CodeMismatch
    );
    // A different (validly signed) reference than the bundle was sealed with.
    let mut body = w.reference.body().clone();
    body.version = Version::new("1.4.3").unwrap();
    let other_ref = Reference::sign(body, &w.owner);
    assert_eq!(
        reason(w.target.verify(&b, &other_ref, &w.target_evidence(), NOW)),
        Rejection::CodeMismatch
    );
    // A truncated or padded state has another digest.
    for state in [m("talos.state/1", 0), m("talos.state/2", 40)] {
        let ev = TargetEvidence {
            state,
            ..w.target_evidence()
        };
        assert_eq!(
            reason(w.target.verify(&b, &w.reference, &ev, NOW)),
            Rejection::StateMismatch
        );
    }
    // After the failures the nonce is still pending: the right state passes.
    w.verify(&b).unwrap();
}

#[test]
fn target_refuses_bundles_while_the_app_lives_or_is_frozen_there() {
    let w = World::new();
    let (_, _, rel) = w.up_to_release();
    w.target.launch(&rel).unwrap();
    let sk = source_key(&w);
    let forge = |c: &Challenge, epoch| {
        Bundle::sign(
            BundleBody {
                app: w.app.clone(),
                epoch,
                reference: w.reference.id(),
                state: w.seal_evidence().state,
                nonce: c.body().nonce,
                target: w.target.public_key(),
            },
            &sk,
        )
    };
    // Running (launched) here: a newer bundle from a peer is refused.
    let c = w.challenge();
    assert_eq!(reason(w.verify(&forge(&c, 5))), Rejection::AlreadyAccepted);
    // Frozen here for a migration onward: refused as app-frozen.
    let c3 = w.third.challenge(&w.app, NOW, TTL).unwrap();
    w.target
        .seal(&w.app, &w.reference, &w.seal_evidence(), &c3, NOW)
        .unwrap();
    assert_eq!(reason(w.verify(&forge(&c, 6))), Rejection::AppFrozen);
    // And a stale epoch is a rollback first.
    assert_eq!(reason(w.verify(&forge(&c, 1))), Rejection::EpochRollback);
}

#[test]
fn commit_and_launch_check_addresses_and_bundles() {
    let w = World::new();
    let c = w.challenge();
    let b = w.seal(&c).unwrap();
    let r = w.verify(&b).unwrap();
    // The receipt goes to another source.
    assert_eq!(reason(w.third.commit(&r)), Rejection::WrongTarget);
    // A receipt signed by another pinned peer for this bundle.
    let third_key = SecretKey::load(&w.path("third").join(HOST_KEY_FILE)).unwrap();
    let stolen = Receipt::sign(r.body().clone(), &third_key);
    assert_eq!(reason(w.source.commit(&stolen)), Rejection::WrongTarget);
    // A receipt for another bundle.
    let mut body = r.body().clone();
    body.bundle = Digest([1; 32]);
    let target_key = SecretKey::load(&w.path("target").join(HOST_KEY_FILE)).unwrap();
    assert_eq!(
        reason(w.source.commit(&Receipt::sign(body, &target_key))),
        Rejection::UnknownNonce
    );
    // Launch before any release exists: there is no release to present, and
    // a release signed by the target itself is not from the source.
    let self_release = Release::sign(
        ReleaseBody {
            app: w.app.clone(),
            epoch: 1,
            bundle: b.id(),
            target: w.target.public_key(),
        },
        &target_key,
    );
    w.target.trust(Role::Peer, &w.target.public_key()).unwrap();
    assert_eq!(reason(w.target.launch(&self_release)), Rejection::NoRelease);

    let rel = w.source.commit(&r).unwrap();
    // Replayed receipt after release.
    assert_eq!(reason(w.source.commit(&r)), Rejection::MigratedAway);
    // The release on another host.
    assert_eq!(reason(w.third.launch(&rel)), Rejection::WrongTarget);
    w.target.launch(&rel).unwrap();
    // A replayed release.
    assert_eq!(reason(w.target.launch(&rel)), Rejection::AlreadyAccepted);
    // The source cannot seal, register or abort any more.
    assert_eq!(reason(w.seal(&w.challenge())), Rejection::MigratedAway);
    assert_eq!(reason(w.source.register(&w.app)), Rejection::MigratedAway);
    assert_eq!(reason(w.source.abort(&w.app)), Rejection::MigratedAway);
}

#[test]
fn abort_before_release_resumes_and_kills_the_bundle() {
    let w = World::new();
    let b = w.seal(&w.challenge()).unwrap();
    let r = w.verify(&b).unwrap();
    let a = w.source.abort(&w.app).unwrap();
    assert_eq!(
        a,
        Abort::Resumed {
            epoch: 1,
            target: w.target.public_key()
        }
    );
    assert_eq!(
        w.source.status().unwrap().status_of(&w.app),
        &Status::Running
    );
    // The receipt that arrives late can no longer get a release.
    assert_eq!(reason(w.source.commit(&r)), Rejection::UnknownNonce);
    // The target holds the bundle but can never launch it; it cannot abort
    // its way into running it either.
    assert_eq!(reason(w.target.abort(&w.app)), Rejection::NoRelease);
    assert!(!w.target.status().unwrap().status_of(&w.app).may_run());
    // Abort again is a no-op.
    assert_eq!(w.source.abort(&w.app).unwrap(), Abort::NotFrozen("running"));
    // A new migration supersedes the held bundle on the target.
    let b2 = w.seal(&w.challenge()).unwrap();
    assert_eq!(b2.body().epoch, 2);
    let r2 = w.verify(&b2).unwrap();
    let rel2 = w.source.commit(&r2).unwrap();
    assert_eq!(w.target.launch(&rel2).unwrap().epoch, 2);
}

#[test]
fn resend_returns_the_last_message_of_the_exchange_in_flight() {
    let w = World::new();
    assert_eq!(w.source.resend(&w.app).unwrap(), None);
    let b = w.seal(&w.challenge()).unwrap();
    assert_eq!(
        w.source.resend(&w.app).unwrap(),
        Some(Message::Bundle(b.clone()))
    );
    let r = w.verify(&b).unwrap();
    assert_eq!(
        w.target.resend(&w.app).unwrap(),
        Some(Message::Receipt(r.clone()))
    );
    let rel = w.source.commit(&r).unwrap();
    assert_eq!(
        w.source.resend(&w.app).unwrap(),
        Some(Message::Release(rel.clone()))
    );
    // Resent bytes are identical (deterministic signatures).
    let again = w.source.resend(&w.app).unwrap().unwrap();
    assert_eq!(again.encode(), rel.encode());
    w.target.launch(&rel).unwrap();
    assert_eq!(w.target.resend(&w.app).unwrap(), None);
}

#[test]
fn messages_name_their_app_and_foreign_nonces_are_unknown() {
    let w = World::new();
    let other = AppId::new("other").unwrap();
    // Nonce issued for another app, used for this app's bundle.
    let c_other = w.target.challenge(&other, NOW, TTL).unwrap();
    let b = Bundle::sign(
        BundleBody {
            app: w.app.clone(),
            epoch: 1,
            reference: w.reference.id(),
            state: w.seal_evidence().state,
            nonce: c_other.body().nonce,
            target: w.target.public_key(),
        },
        &source_key(&w),
    );
    assert_eq!(reason(w.verify(&b)), Rejection::UnknownNonce);
    // Challenge for another app given to seal.
    assert_eq!(reason(w.seal(&c_other)), Rejection::Malformed);
}

#[test]
fn challenges_are_bounded_and_pruned() {
    let w = World::new();
    assert_eq!(
        w.target.challenge(&w.app, NOW, 0).unwrap_err().code(),
        "bad-argument"
    );
    assert_eq!(
        w.target
            .challenge(&w.app, NOW, machine::MAX_TTL + 1)
            .unwrap_err()
            .code(),
        "bad-argument"
    );
    assert!(w.target.challenge(&w.app, u64::MAX, 1).is_err());
    let c = w.challenge();
    assert_eq!(w.target.status().unwrap().pending.len(), 1);
    // A day after expiry the pending entry is pruned by the next challenge,
    // and a late bundle for it is then unknown rather than expired.
    let b = w.seal(&c).unwrap();
    let later = NOW + TTL + machine::PRUNE_AFTER;
    let c2 = w.target.challenge(&w.app, later, TTL).unwrap();
    let l = w.target.status().unwrap();
    assert_eq!(l.pending.len(), 1);
    assert!(l.pending.contains_key(&c2.body().nonce));
    assert_eq!(
        reason(
            w.target
                .verify(&b, &w.reference, &w.target_evidence(), later)
        ),
        Rejection::UnknownNonce
    );
}

#[test]
fn state_directory_lifecycle() {
    let w = World::new();
    let dir = w.path("source");
    assert_eq!(Host::init(&dir).unwrap_err().code(), "already-initialized");
    let reopened = Host::open(&dir).unwrap();
    assert_eq!(reopened.public_key(), w.source.public_key());
    assert_eq!(
        PublicKey::load(&dir.join(HOST_PUB_FILE)).unwrap(),
        w.source.public_key()
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join(HOST_KEY_FILE)), 0o600);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(
        Host::open(&w.path("nowhere")).unwrap_err().code(),
        "not-initialized"
    );
    // Pinning is idempotent.
    assert!(!w.source.trust(Role::Owner, &w.owner.public()).unwrap());
    // A ledger from another host is refused.
    std::fs::copy(w.path("target").join(LEDGER_FILE), dir.join(LEDGER_FILE)).unwrap();
    assert_eq!(Host::open(&dir).unwrap_err().code(), "ledger-corrupt");
    // A corrupted ledger is refused, not half-read.
    let mut bytes = std::fs::read(w.path("target").join(LEDGER_FILE)).unwrap();
    bytes[20] ^= 1;
    std::fs::write(w.path("target").join(LEDGER_FILE), &bytes).unwrap();
    assert_eq!(w.target.status().unwrap_err().code(), "ledger-corrupt");
    assert_eq!(
        w.target.challenge(&w.app, NOW, TTL).unwrap_err().code(),
        "ledger-corrupt"
    );
}

#[test]
fn init_resumes_after_a_crash_between_key_and_ledger() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("h");
    let h = Host::init(&dir).unwrap();
    std::fs::remove_file(dir.join(LEDGER_FILE)).unwrap();
    assert_eq!(Host::open(&dir).unwrap_err().code(), "not-initialized");
    let h2 = Host::init(&dir).unwrap();
    assert_eq!(h2.public_key(), h.public_key(), "the existing key is kept");
}

#[test]
fn describe_shows_messages_and_ledgers_without_trusting_them() {
    let w = World::new();
    let (b, _, _) = w.up_to_release();
    let d = describe(&b.encode()).unwrap();
    assert_eq!(d.kind, "bundle");
    let text = d.to_string();
    assert!(
        text.contains("statekeeper") && text.contains("epoch") && text.contains("not yet checked"),
        "{text}"
    );
    let json = serde_json::to_string(&d).unwrap();
    assert!(json.contains("\"kind\":\"bundle\""), "{json}");
    let l = describe(&std::fs::read(w.path("source").join(LEDGER_FILE)).unwrap()).unwrap();
    assert_eq!(l.kind, "ledger");
    assert!(
        l.fields
            .iter()
            .any(|f| f.name == "app statekeeper" && f.value.starts_with("migrated-away")),
        "{l}"
    );
    let v = w.source.status().unwrap().view();
    let text = v.to_string();
    assert!(text.contains("statekeeper: migrated-away"), "{text}");
    assert!(serde_json::to_value(&v).unwrap()["apps"]["statekeeper"]["status"] == "migrated-away");
    assert_eq!(describe(b"junk").unwrap_err().code(), "malformed");
}

#[test]
fn launch_with_a_failed_check_keeps_the_release_and_records_nothing() {
    let w = World::new();
    let b = w.seal(&w.challenge()).unwrap();
    let r = w.verify(&b).unwrap();
    let rel = w.source.commit(&r).unwrap();
    let before = ledgers(&w);
    let mut ran = false;
    let e = w
        .target
        .launch_with(&rel, |l| {
            ran = true;
            assert_eq!(l.bundle, b.id());
            Err("registers differ".into())
        })
        .unwrap_err();
    assert!(ran);
    assert_eq!(e.rejection(), Some(Rejection::LaunchMismatch));
    assert!(e.to_string().contains("registers differ"), "{e}");
    assert_eq!(ledgers(&w), before, "a refused launch writes nothing");
    // The gate's own checks come first: a replay never reaches the check.
    let l = w.target.launch_with(&rel, |_| Ok(())).unwrap();
    assert_eq!(l.epoch, b.body().epoch);
    let e = w
        .target
        .launch_with(&rel, |_| {
            panic!("a replayed release must not restore anything")
        })
        .unwrap_err();
    assert_eq!(e.rejection(), Some(Rejection::AlreadyAccepted));
}
