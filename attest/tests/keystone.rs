//! Keystone reports made by a test-only builder (its own structs and an
//! ed25519-over-SHA3-512 test device key), checked as the Keystone SDK's
//! verifier does.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::field_reassign_with_default
)]

#[path = "support/keystone_builder.rs"]
mod builder;

use builder::{KeystoneKey, TestReport, test_device_key};
use talos_attest::{Identity, Inputs, Measurement, Policy, Undecided, Verdict, keystone};

const HASH: [u8; 64] = [0xe1; 64];

fn inputs() -> Inputs {
    Inputs {
        collateral: None,
        at: 0,
        keystone_root: Some(test_device_key().public()),
    }
}

fn verify(bytes: &[u8], p: &Policy) -> Verdict {
    talos_attest::verify(bytes, &inputs(), p).unwrap()
}

fn reason(v: &Verdict) -> &'static str {
    v.reason().map_or("(none)", |r| r.code())
}

#[test]
fn a_valid_report_verifies_with_its_hash_and_data() {
    let bytes = TestReport::new(HASH, b"binding data").build();
    let v = verify(&bytes, &Policy::default());
    let Verdict::Accepted(e) = &v else {
        panic!("{v:?}")
    };
    assert!(e.verified);
    assert_eq!(e.report_data, b"binding data");
    assert!(e.tcb.is_none(), "Keystone has no TCB status");
    let Identity::Keystone {
        enclave_hash,
        sm_hash,
        device_key,
        ..
    } = &e.identity
    else {
        panic!()
    };
    assert_eq!(enclave_hash, &HASH);
    assert_eq!(sm_hash, &[0x5a; 64]);
    assert_eq!(device_key, &test_device_key().public());
    // Expected and allowed measurements.
    let mut p = Policy::default();
    p.expect = vec![Measurement::KeystoneEnclave(HASH)];
    p.allowed = vec![
        Measurement::KeystoneEnclave(HASH),
        Measurement::KeystoneSm([0x5a; 64]),
    ];
    assert!(matches!(verify(&bytes, &p), Verdict::Accepted(_)));
}

#[test]
fn it_is_keystones_ed25519_over_sha3_not_the_standard_one() {
    // A report signed with standard ed25519 (SHA-512) by the same keys is
    // refused: the hash function is part of the scheme.
    let r = TestReport::new(HASH, b"x");
    let good = r.build();
    let mut std_signed = good.clone();
    let enclave = good[..64 + 8 + 1].to_vec();
    std_signed[1096..1160].copy_from_slice(&r.sm_key.sign_sha512(&enclave));
    assert_eq!(
        reason(&verify(&std_signed, &Policy::default())),
        "bad-signature"
    );
    assert!(matches!(
        verify(&good, &Policy::default()),
        Verdict::Accepted(_)
    ));
}

#[test]
fn flipped_bytes_are_refused_with_their_reason() {
    let bytes = TestReport::new(HASH, b"binding data").build();
    for (what, at, want) in [
        ("enclave hash", 3, "bad-signature"),
        ("data_len", 64, "bad-signature"),
        ("data", 72 + 5, "bad-signature"),
        ("enclave signature", 1096 + 7, "bad-signature"),
        ("SM hash", 1160 + 1, "bad-signature"),
        ("SM public key", 1224 + 2, "bad-signature"),
        ("SM signature", 1256 + 9, "bad-signature"),
        ("device key", 1320, "untrusted-root"),
    ] {
        let mut b = bytes.clone();
        b[at] ^= 0x01;
        let v = verify(&b, &Policy::default());
        assert_eq!(reason(&v), want, "{what}: {v:?}");
    }
    // Bytes past data_len are not signed (as in the SDK) and not data.
    let mut b = bytes.clone();
    b[72 + 500] ^= 1;
    assert!(matches!(
        verify(&b, &Policy::default()),
        Verdict::Accepted(_)
    ));
}

#[test]
fn a_report_signed_by_another_device_key_is_refused() {
    let mut r = TestReport::new(HASH, b"data");
    r.device_key = KeystoneKey::from_seed([0x99; 32]);
    let v = verify(&r.build(), &Policy::default());
    assert_eq!(reason(&v), "untrusted-root");
    // Even when the report names the pinned key, a signature by another
    // device key does not verify.
    let mut b = r.build();
    b[1320..1352].copy_from_slice(&test_device_key().public());
    assert_eq!(reason(&verify(&b, &Policy::default())), "bad-signature");
}

#[test]
fn policy_checks_on_a_verified_report() {
    let bytes = TestReport::new(HASH, &[7u8; 64]).build();
    let mut p = Policy::default();
    p.report_data = Some([7; 64]);
    assert!(matches!(verify(&bytes, &p), Verdict::Accepted(_)));
    p.report_data = Some([8; 64]);
    assert_eq!(reason(&verify(&bytes, &p)), "binding-mismatch");
    // 64 bytes of binding followed by more data is not the binding.
    let longer = TestReport::new(HASH, &[7u8; 65]).build();
    p.report_data = Some([7; 64]);
    assert_eq!(reason(&verify(&longer, &p)), "binding-mismatch");
    let mut p = Policy::default();
    p.allowed = vec![Measurement::KeystoneEnclave([0; 64])];
    assert_eq!(reason(&verify(&bytes, &p)), "measurement-mismatch");
    // An allowed enclave on a security monitor the owner does not allow.
    p.allowed = vec![
        Measurement::KeystoneEnclave(HASH),
        Measurement::KeystoneSm([0; 64]),
    ];
    assert_eq!(reason(&verify(&bytes, &p)), "measurement-mismatch");
}

#[test]
fn without_a_pinned_root_it_cannot_decide() {
    let bytes = TestReport::new(HASH, b"d").build();
    let v = talos_attest::verify(&bytes, &Inputs::default(), &Policy::default()).unwrap();
    let Verdict::Undecided { why, evidence, .. } = v else {
        panic!()
    };
    assert_eq!(why, Undecided::NoDeviceRoot);
    assert!(!evidence.unwrap().verified);
}

#[test]
fn malformed_reports_and_root_keys() {
    let mut b = TestReport::new(HASH, b"d").build();
    b[64..72].copy_from_slice(&1025u64.to_le_bytes());
    let e = talos_attest::verify(&b, &inputs(), &Policy::default()).unwrap_err();
    assert_eq!(e.code(), "malformed");
    assert!(e.to_string().contains("data_len 1025"), "{e}");
    b[64..72].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(talos_attest::verify(&b, &inputs(), &Policy::default()).is_err());
    assert_eq!(
        talos_attest::verify(&b[..1351], &inputs(), &Policy::default())
            .unwrap_err()
            .code(),
        "unrecognized"
    );
    let pk = test_device_key().public();
    assert_eq!(keystone::parse_root_key(&pk).unwrap(), pk);
    let text = format!("{}\n", builder::hex(&pk));
    assert_eq!(keystone::parse_root_key(text.as_bytes()).unwrap(), pk);
    assert!(keystone::parse_root_key(b"abcd").is_err());
    assert!(keystone::parse_root_key(&[0u8; 32]).is_err(), "weak key");
}

/// `data/keystone_test_report.bin` (a fuzz seed and the docs' example) is
/// exactly what the builder makes: a report of enclave hash 0xe1.. binding
/// the data `talos keystone example`, under the test device key
/// `data/keystone_test_device.pub`.
#[test]
fn the_committed_example_report_is_the_builders() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let want = TestReport::new(HASH, b"talos keystone example").build();
    let pubkey = format!("{}\n", builder::hex(&test_device_key().public()));
    if std::env::var_os("TALOS_WRITE_EXAMPLES").is_some() {
        std::fs::write(dir.join("keystone_test_report.bin"), &want).unwrap();
        std::fs::write(dir.join("keystone_test_device.pub"), &pubkey).unwrap();
    }
    assert_eq!(
        std::fs::read(dir.join("keystone_test_report.bin")).unwrap(),
        want
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("keystone_test_device.pub")).unwrap(),
        pubkey
    );
    let root = keystone::parse_root_key(pubkey.as_bytes()).unwrap();
    let v = talos_attest::verify(
        &want,
        &Inputs {
            keystone_root: Some(root),
            ..Inputs::default()
        },
        &Policy::default(),
    )
    .unwrap();
    assert!(matches!(v, Verdict::Accepted(_)));
}
