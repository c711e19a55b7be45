//! Property tests of the encodings: round trips, canonicality, tampering
//! and hostile bytes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use talos_migrate::*;

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32])
}

fn app() -> impl Strategy<Value = AppId> {
    "[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}".prop_map(|s| AppId::new(&s).unwrap())
}

fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

fn measurement() -> impl Strategy<Value = Measurement> {
    ("[a-z][a-z0-9./_-]{0,31}", digest()).prop_map(|(s, d)| Measurement::new(&s, d).unwrap())
}

fn tee_set() -> impl Strategy<Value = BTreeSet<TeeMeasurement>> {
    let one = (0..TeeKind::ALL.len(), any::<[u8; 64]>()).prop_map(|(k, b)| {
        let kind = TeeKind::ALL[k];
        TeeMeasurement::new(kind, &b[..kind.byte_len()]).unwrap()
    });
    proptest::collection::btree_set(one, 0..4)
}

fn public() -> impl Strategy<Value = PublicKey> {
    any::<u8>().prop_map(|s| key(s).public())
}

fn message() -> impl Strategy<Value = Message> {
    let signer = any::<u8>();
    prop_oneof![
        (
            app(),
            "[!-~]{1,64}",
            measurement(),
            measurement(),
            measurement(),
            tee_set(),
            signer
        )
            .prop_map(|(app, v, binary, code, cfg, tee, s)| {
                Message::Reference(Reference::sign(
                    ReferenceBody {
                        app,
                        version: Version::new(&v).unwrap(),
                        binary,
                        code,
                        cfg,
                        tee,
                    },
                    &key(s),
                ))
            }),
        (app(), any::<[u8; 32]>(), any::<u64>(), any::<u64>(), signer).prop_map(
            |(app, n, issued_at, expires_at, s)| {
                Message::Challenge(Challenge::sign(
                    ChallengeBody {
                        app,
                        nonce: Nonce(n),
                        issued_at,
                        expires_at,
                    },
                    &key(s),
                ))
            }
        ),
        (
            app(),
            any::<u64>(),
            digest(),
            measurement(),
            any::<[u8; 32]>(),
            public(),
            signer
        )
            .prop_map(|(app, epoch, reference, state, n, target, s)| {
                Message::Bundle(Bundle::sign(
                    BundleBody {
                        app,
                        epoch,
                        reference,
                        state,
                        nonce: Nonce(n),
                        target,
                    },
                    &key(s),
                ))
            }),
        (
            app(),
            any::<u64>(),
            digest(),
            any::<[u8; 32]>(),
            public(),
            signer
        )
            .prop_map(|(app, epoch, bundle, n, source, s)| {
                Message::Receipt(Receipt::sign(
                    ReceiptBody {
                        app,
                        epoch,
                        bundle,
                        nonce: Nonce(n),
                        source,
                    },
                    &key(s),
                ))
            }),
        (app(), any::<u64>(), digest(), public(), signer).prop_map(
            |(app, epoch, bundle, target, s)| {
                Message::Release(Release::sign(
                    ReleaseBody {
                        app,
                        epoch,
                        bundle,
                        target,
                    },
                    &key(s),
                ))
            }
        ),
    ]
}

/// A consistent ledger for host key 1 with random content.
fn ledger() -> impl Strategy<Value = Ledger> {
    (
        proptest::collection::btree_set(
            (prop_oneof![Just(Role::Owner), Just(Role::Peer)], public()),
            0..4,
        ),
        proptest::collection::btree_map(app(), (1u64..1000, 0u8..6, digest()), 0..4),
        proptest::collection::btree_map(
            any::<[u8; 32]>(),
            (app(), any::<u64>(), any::<u64>()),
            0..4,
        ),
        proptest::collection::btree_map(
            digest(),
            (app(), any::<u64>(), any::<[u8; 32]>(), public()),
            0..4,
        ),
    )
        .prop_map(|(trusted, apps, pending, accepted)| {
            let me = key(1);
            let other = key(2);
            let mut l = Ledger::new(me.public());
            l.trusted = trusted;
            for (app, (epoch, kind, d)) in apps {
                let release = |signer: &SecretKey, target: PublicKey| {
                    Release::sign(
                        ReleaseBody {
                            app: app.clone(),
                            epoch,
                            bundle: d,
                            target,
                        },
                        signer,
                    )
                };
                let status = match kind {
                    0 => Status::Running,
                    1 => Status::Frozen(Bundle::sign(
                        BundleBody {
                            app: app.clone(),
                            epoch,
                            reference: d,
                            state: Measurement::new("talos.state/1", d).unwrap(),
                            nonce: Nonce(d.0),
                            target: other.public(),
                        },
                        &me,
                    )),
                    2 => Status::Accepted(Receipt::sign(
                        ReceiptBody {
                            app: app.clone(),
                            epoch,
                            bundle: d,
                            nonce: Nonce(d.0),
                            source: other.public(),
                        },
                        &me,
                    )),
                    3 => Status::MigratedAway(release(&me, other.public())),
                    _ => Status::Launched(release(&other, me.public())),
                };
                let releases = if kind == 3 {
                    vec![ReleaseRecord {
                        epoch,
                        target: other.public(),
                        bundle: d,
                    }]
                } else {
                    Vec::new()
                };
                l.apps.insert(
                    app,
                    AppRecord {
                        last_epoch: epoch,
                        status,
                        releases,
                    },
                );
            }
            l.pending = pending
                .into_iter()
                .map(|(n, (app, issued_at, expires_at))| {
                    (
                        Nonce(n),
                        Pending {
                            app,
                            issued_at,
                            expires_at,
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>();
            l.accepted = accepted
                .into_iter()
                .map(|(id, (app, epoch, n, source))| {
                    (
                        id,
                        AcceptedRecord {
                            app,
                            epoch,
                            nonce: Nonce(n),
                            source,
                        },
                    )
                })
                .collect();
            l
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn messages_round_trip_canonically(m in message()) {
        let bytes = m.encode();
        prop_assert!(bytes.len() <= MAX_MESSAGE_LEN);
        let back = Message::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.encode(), bytes);
        prop_assert_eq!(back.id(), m.id());
        back.verify_signature().unwrap();
    }

    #[test]
    fn flipping_any_byte_of_a_signed_message_fails_verification(
        m in message(), pos in any::<prop::sample::Index>(), xor in 1u8..=255,
    ) {
        let mut bytes = m.encode();
        let i = pos.index(bytes.len());
        bytes[i] ^= xor;
        match Message::decode(&bytes) {
            Err(e) => prop_assert_eq!(e.rejection(), Some(Rejection::Malformed)),
            Ok(t) => {
                let e = t.verify_signature().unwrap_err();
                prop_assert_eq!(e.rejection(), Some(Rejection::BadSignature));
            }
        }
    }

    #[test]
    fn truncating_or_padding_a_message_is_malformed(m in message(), cut in any::<prop::sample::Index>(), pad in 1usize..64) {
        let bytes = m.encode();
        let n = cut.index(bytes.len());
        prop_assert!(Message::decode(&bytes[..n]).is_err());
        let mut padded = bytes.clone();
        padded.extend(std::iter::repeat_n(0u8, pad));
        prop_assert!(Message::decode(&padded).is_err());
    }

    #[test]
    fn ledgers_round_trip_and_any_flipped_byte_is_refused(
        l in ledger(), pos in any::<prop::sample::Index>(), xor in 1u8..=255,
    ) {
        let bytes = l.encode();
        let back = Ledger::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &l);
        prop_assert_eq!(back.encode(), bytes.clone());
        let mut t = bytes;
        let i = pos.index(t.len());
        t[i] ^= xor;
        prop_assert!(Ledger::decode(&t).is_err());
    }

    #[test]
    fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), header in 0usize..3) {
        // With and without a valid header, so the body parsers are reached.
        let mut b = match header {
            0 => Vec::new(),
            1 => b"TALOSMSG\x01".to_vec(),
            _ => b"TALOSLDG\x01".to_vec(),
        };
        b.extend(bytes);
        let _ = Message::decode(&b);
        let _ = Ledger::decode(&b);
        let _ = describe(&b);
        let _ = PublicKey::from_text(&String::from_utf8_lossy(&b));
    }
}

#[test]
fn a_ledger_with_duplicate_or_unordered_entries_is_refused() {
    // Encoded with entries swapped by hand: strict order is part of the
    // canonical form, so a re-ordered (or duplicated) ledger never decodes.
    let mut l = Ledger::new(key(1).public());
    l.trusted = BTreeSet::from([
        (Role::Owner, key(3).public()),
        (Role::Owner, key(4).public()),
    ]);
    let bytes = l.encode();
    let first = 8 + 1 + 32 + 4 + 1;
    let a: [u8; 32] = bytes[first..first + 32].try_into().unwrap();
    let b: [u8; 32] = bytes[first + 33..first + 65].try_into().unwrap();
    assert!(a < b, "encoded in increasing order");
    let mut swapped = bytes[..bytes.len() - 32].to_vec();
    swapped[first..first + 32].copy_from_slice(&b);
    swapped[first + 33..first + 65].copy_from_slice(&a);
    let sum = blake3::Hasher::new_derive_key("talos 2026-11 ledger checksum v1")
        .update(&swapped)
        .finalize();
    swapped.extend_from_slice(sum.as_bytes());
    let e = Ledger::decode(&swapped).unwrap_err();
    assert!(e.to_string().contains("strictly increasing"), "{e}");
    // Sanity: the unswapped re-checksummed form decodes.
    assert_eq!(Ledger::decode(&bytes).unwrap(), l);
}
