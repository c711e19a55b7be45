//! Real DCAP quotes made on Intel hardware, with their collateral, from the
//! `dcap-qvl` crate's `sample/` folder (MIT, `data/LICENSE.dcap-qvl`):
//! verified at times inside their validity windows, refused for every
//! flipped byte, undecided outside the windows.
//!
//! Offsets into the SGX v3 quote are written out here from Intel's quote
//! layout (48-byte header, 384-byte report body, then the signature data),
//! not taken from the parser.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::field_reassign_with_default
)]

use serde_json::Value;
use talos_attest::{
    Collateral, Format, Identity, Inputs, Measurement, Policy, TcbStatus, Undecided, Verdict,
    time::parse_rfc3339,
};

const SGX_QUOTE: &[u8] = include_bytes!("data/sgx_quote");
const SGX_COLLATERAL: &[u8] = include_bytes!("data/sgx_quote_collateral.json");
const TDX_QUOTE: &[u8] = include_bytes!("data/tdx_quote");
const TDX_COLLATERAL: &[u8] = include_bytes!("data/tdx_quote_collateral.json");
const TD15_QUOTE: &[u8] = include_bytes!("data/tdx_quote_td15ex");
const TD15_COLLATERAL: &[u8] = include_bytes!("data/tdx_quote_td15ex_collateral.json");

// SGX v3 quote layout.
const MRENCLAVE: std::ops::Range<usize> = 112..144;
const MRSIGNER: std::ops::Range<usize> = 176..208;
const REPORT_DATA: std::ops::Range<usize> = 368..432;
const QE_REPORT: usize = 564; // after the ECDSA signature and attestation key
const QE_REPORT_SIGNATURE: usize = 948;

/// Inside both the TCB info's and the QE identity's validity windows.
fn inside() -> u64 {
    parse_rfc3339("2025-06-25T00:00:00Z").unwrap()
}

fn inputs(collateral: &[u8], at: u64) -> Inputs {
    Inputs {
        collateral: Some(Collateral::parse(collateral).unwrap()),
        at,
        keystone_root: None,
    }
}

fn lenient() -> Policy {
    let mut p = Policy::default();
    p.accept_tcb
        .insert(TcbStatus::ConfigurationAndSwHardeningNeeded);
    p
}

fn verify(q: &[u8], c: &[u8], at: u64, p: &Policy) -> Verdict {
    talos_attest::verify(q, &inputs(c, at), p).unwrap()
}

fn reason(v: &Verdict) -> &'static str {
    v.reason().map_or("(none)", |r| r.code())
}

#[test]
fn sgx_sample_verifies_with_its_tcb_status_and_advisories() {
    let v = verify(SGX_QUOTE, SGX_COLLATERAL, inside(), &lenient());
    let Verdict::Accepted(e) = &v else {
        panic!("{v:?}")
    };
    assert!(e.verified);
    assert_eq!(e.format, Format::SgxQuote { version: 3 });
    let tcb = e.tcb.as_ref().unwrap();
    assert_eq!(tcb.status, TcbStatus::ConfigurationAndSwHardeningNeeded);
    assert_eq!(tcb.advisories, ["INTEL-SA-00289", "INTEL-SA-00615"]);
    let Identity::Sgx {
        mrenclave,
        mrsigner,
        attributes,
        ..
    } = &e.identity
    else {
        panic!("not SGX: {:?}", e.identity)
    };
    assert_eq!(&mrenclave[..], &SGX_QUOTE[MRENCLAVE]);
    assert_eq!(&mrsigner[..], &SGX_QUOTE[MRSIGNER]);
    assert_eq!(attributes[0] & 2, 0, "the sample is not a debug enclave");
    assert!(!e.debug);
    assert_eq!(e.report_data, &SGX_QUOTE[REPORT_DATA]);
    assert!(e.report_data.starts_with(b"Hello, world!"));
    let w = e.valid.unwrap();
    assert!(w.from <= inside() && inside() <= w.until, "{w:?}");
}

#[test]
fn sgx_sample_is_refused_by_the_default_policy_naming_the_status() {
    let v = verify(SGX_QUOTE, SGX_COLLATERAL, inside(), &Policy::default());
    assert_eq!(reason(&v), "tcb-not-accepted");
    let Verdict::Refused { failures, evidence } = &v else {
        panic!()
    };
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0]
            .detail
            .contains("ConfigurationAndSWHardeningNeeded"),
        "{}",
        failures[0].detail
    );
    assert!(
        evidence.as_ref().unwrap().verified,
        "the chain itself verified"
    );
}

#[test]
fn measurements_and_binding_are_checked_after_the_chain() {
    let mre: [u8; 32] = SGX_QUOTE[MRENCLAVE].try_into().unwrap();
    let mrs: [u8; 32] = SGX_QUOTE[MRSIGNER].try_into().unwrap();
    let rd: [u8; 64] = SGX_QUOTE[REPORT_DATA].try_into().unwrap();
    let mut p = lenient();
    p.expect = vec![Measurement::SgxEnclave(mre), Measurement::SgxSigner(mrs)];
    p.report_data = Some(rd);
    assert!(matches!(
        verify(SGX_QUOTE, SGX_COLLATERAL, inside(), &p),
        Verdict::Accepted(_)
    ));

    let mut other = mre;
    other[0] ^= 1;
    let mut p2 = p.clone();
    p2.expect = vec![Measurement::SgxEnclave(other)];
    assert_eq!(
        reason(&verify(SGX_QUOTE, SGX_COLLATERAL, inside(), &p2)),
        "measurement-mismatch"
    );
    // An allow-list: MRSIGNER alone admits the enclave; another enclave's
    // MRENCLAVE does not.
    let mut p3 = lenient();
    p3.allowed = vec![Measurement::SgxSigner(mrs)];
    assert!(matches!(
        verify(SGX_QUOTE, SGX_COLLATERAL, inside(), &p3),
        Verdict::Accepted(_)
    ));
    p3.allowed = vec![
        Measurement::SgxEnclave(other),
        Measurement::KeystoneEnclave([0; 64]),
    ];
    assert_eq!(
        reason(&verify(SGX_QUOTE, SGX_COLLATERAL, inside(), &p3)),
        "measurement-mismatch"
    );
    let mut p4 = lenient();
    p4.report_data = Some([0; 64]);
    assert_eq!(
        reason(&verify(SGX_QUOTE, SGX_COLLATERAL, inside(), &p4)),
        "binding-mismatch"
    );
    // Every failing check is listed; the first is the reason.
    let mut p5 = Policy::default();
    p5.report_data = Some([0; 64]);
    let Verdict::Refused { failures, .. } = verify(SGX_QUOTE, SGX_COLLATERAL, inside(), &p5) else {
        panic!()
    };
    let codes: Vec<_> = failures.iter().map(|f| f.reason.code()).collect();
    assert_eq!(codes, ["tcb-not-accepted", "binding-mismatch"]);
}

fn flipped(at: usize) -> Vec<u8> {
    let mut q = SGX_QUOTE.to_vec();
    q[at] ^= 0x01;
    q
}

#[test]
fn one_flipped_byte_in_the_report_body_is_a_bad_signature() {
    for at in [MRENCLAVE.start, MRSIGNER.start + 5, REPORT_DATA.start, 96] {
        let v = verify(&flipped(at), SGX_COLLATERAL, inside(), &lenient());
        assert_eq!(reason(&v), "bad-signature", "byte {at}: {v:?}");
    }
}

#[test]
fn one_flipped_byte_in_the_qe_report_is_a_bad_signature() {
    for at in [QE_REPORT, QE_REPORT + 100, QE_REPORT_SIGNATURE + 10] {
        let v = verify(&flipped(at), SGX_COLLATERAL, inside(), &lenient());
        assert_eq!(reason(&v), "bad-signature", "byte {at}: {v:?}");
    }
}

#[test]
fn one_flipped_byte_in_a_certificate_is_refused() {
    let pem = SGX_QUOTE
        .windows(27)
        .position(|w| w == b"-----BEGIN CERTIFICATE-----"[..27].as_ref())
        .unwrap();
    // In the middle of the PCK leaf's to-be-signed part: its issuer's
    // signature no longer verifies.
    let v = verify(&flipped(2000), SGX_COLLATERAL, inside(), &lenient());
    assert!(2000 > pem);
    assert_eq!(reason(&v), "bad-signature", "{v:?}");
    // A flip that breaks the certificate's structure: no chain to the root.
    let v = verify(&flipped(1500), SGX_COLLATERAL, inside(), &lenient());
    assert_eq!(reason(&v), "untrusted-root", "{v:?}");
    // Every base64 digit of the first certificate is refused one way or the
    // other, never accepted. (A flipped newline is a vertical tab, which the
    // PEM reader skips like the newline: the certificate is unchanged.)
    for at in (pem + 28..pem + 900).step_by(37) {
        if !is_b64_digit(SGX_QUOTE[at]) {
            continue;
        }
        let v = verify(&flipped(at), SGX_COLLATERAL, inside(), &lenient());
        assert!(
            matches!(reason(&v), "bad-signature" | "untrusted-root"),
            "byte {at}: {v:?}"
        );
    }
}

fn is_b64_digit(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

fn collateral_with(f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(SGX_COLLATERAL).unwrap();
    f(v.as_object_mut().unwrap());
    serde_json::to_vec(&v).unwrap()
}

fn flip_str(s: &str, at: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    b[at] = match b[at] {
        b'0' => b'1',
        b'a' => b'b',
        b'A' => b'B',
        c => c ^ 1,
    };
    String::from_utf8(b).unwrap()
}

fn edit(key: &'static str, g: impl Fn(&str) -> String) -> Vec<u8> {
    collateral_with(|m| {
        let s = m[key].as_str().unwrap().to_owned();
        m.insert(key.to_owned(), Value::String(g(&s)));
    })
}

#[test]
fn one_flipped_byte_in_the_collateral_is_refused() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "tcb info body",
            edit("tcb_info", |s| {
                s.replace(
                    "\"tcbEvaluationDataNumber\":17",
                    "\"tcbEvaluationDataNumber\":18",
                )
            }),
            "bad-signature",
        ),
        (
            "tcb info signature",
            edit("tcb_info_signature", |s| flip_str(s, 10)),
            "bad-signature",
        ),
        (
            "qe identity body",
            edit("qe_identity", |s| {
                s.replace("\"isvprodid\":1", "\"isvprodid\":2")
            }),
            "bad-signature",
        ),
        (
            "qe identity signature",
            edit("qe_identity_signature", |s| flip_str(s, 100)),
            "bad-signature",
        ),
        (
            "pck crl signature",
            edit("pck_crl", |s| flip_str(s, s.len() - 20)),
            "bad-signature",
        ),
    ];
    for (what, c, want) in cases {
        assert_ne!(c, SGX_COLLATERAL, "{what}: the edit changed nothing");
        let v = verify(SGX_QUOTE, &c, inside(), &lenient());
        assert_eq!(reason(&v), want, "{what}: {v:?}");
    }
    // The issuer chain's signing certificate: any flipped base64 digit is
    // refused.
    let chain = serde_json::from_slice::<Value>(SGX_COLLATERAL).unwrap()["tcb_info_issuer_chain"]
        .as_str()
        .unwrap()
        .to_owned();
    // The chain's first certificate (the TCB signing certificate); the
    // second is a copy of Intel's root CA, which talos does not take from
    // the file: its own pinned copy is the anchor.
    let end = chain.find("-----END CERTIFICATE-----").unwrap();
    for at in (40..end).step_by(23) {
        if !is_b64_digit(chain.as_bytes()[at]) {
            continue;
        }
        let c = edit("tcb_info_issuer_chain", |s| flip_str(s, at));
        let v = verify(SGX_QUOTE, &c, inside(), &lenient());
        assert!(
            matches!(reason(&v), "bad-signature" | "untrusted-root"),
            "issuer chain byte {at}: {v:?}"
        );
    }
}

#[test]
fn a_time_after_the_next_update_cannot_decide() {
    for at in [
        "2025-07-20T00:00:00Z",
        "2030-01-01T00:00:00Z",
        "2025-06-01T00:00:00Z",
    ] {
        let v = verify(
            SGX_QUOTE,
            SGX_COLLATERAL,
            parse_rfc3339(at).unwrap(),
            &lenient(),
        );
        let Verdict::Undecided { why, detail, .. } = &v else {
            panic!("{at}: {v:?}")
        };
        assert_eq!(why.code(), "collateral-not-valid", "{at}");
        assert!(detail.contains("2025-07-19"), "{detail}");
    }
    // A bad quote stays refused at a wrong time: the chain fails inside the
    // window too.
    let v = verify(
        &flipped(MRENCLAVE.start),
        SGX_COLLATERAL,
        parse_rfc3339("2030-01-01T00:00:00Z").unwrap(),
        &lenient(),
    );
    assert_eq!(reason(&v), "bad-signature", "{v:?}");
}

#[test]
fn no_collateral_cannot_decide() {
    let v = talos_attest::verify(
        SGX_QUOTE,
        &Inputs {
            collateral: None,
            at: inside(),
            keystone_root: None,
        },
        &lenient(),
    )
    .unwrap();
    let Verdict::Undecided { why, evidence, .. } = v else {
        panic!()
    };
    assert_eq!(why, Undecided::NoCollateral);
    assert!(!evidence.unwrap().verified);
}

#[test]
fn tdx_samples_verify_as_tdx_never_as_sgx() {
    for (q, c, at) in [
        (TDX_QUOTE, TDX_COLLATERAL, "2025-06-25T00:00:00Z"),
        (TD15_QUOTE, TD15_COLLATERAL, "2026-10-20T00:00:00Z"),
    ] {
        let v = verify(q, c, parse_rfc3339(at).unwrap(), &Policy::default());
        let Verdict::Accepted(e) = &v else {
            panic!("{v:?}")
        };
        assert!(
            matches!(e.format, Format::TdxQuote { .. }),
            "{:?}",
            e.format
        );
        assert!(matches!(e.identity, Identity::Tdx { .. }));
        assert_eq!(e.tcb.as_ref().unwrap().status, TcbStatus::UpToDate);
        assert_eq!(e.report_data.len(), 64);
        assert!(!e.debug);
        // An SGX expectation can never match a TD.
        let mut p = Policy::default();
        p.allowed = vec![Measurement::SgxEnclave([0; 32])];
        assert_eq!(
            reason(&verify(q, c, parse_rfc3339(at).unwrap(), &p)),
            "measurement-mismatch"
        );
    }
    let mrtd: [u8; 48] = TDX_QUOTE[184..232].try_into().unwrap();
    let mut p = Policy::default();
    p.expect = vec![Measurement::TdxTd(mrtd)];
    assert!(matches!(
        verify(TDX_QUOTE, TDX_COLLATERAL, inside(), &p),
        Verdict::Accepted(_)
    ));
}

#[test]
fn collateral_of_another_quote_cannot_decide_or_is_refused() {
    // TDX collateral for the SGX quote: Intel's signatures are fine, but it
    // speaks of another platform.
    let v = verify(SGX_QUOTE, TDX_COLLATERAL, inside(), &lenient());
    assert!(
        matches!(
            &v,
            Verdict::Undecided {
                why: Undecided::WrongCollateral,
                ..
            }
        ),
        "{v:?}"
    );
}

#[test]
fn an_sgx_quote_of_version_4_is_not_supported_and_not_garbage() {
    let mut q = SGX_QUOTE.to_vec();
    q[0] = 4;
    match talos_attest::verify(&q, &inputs(SGX_COLLATERAL, inside()), &lenient()) {
        Ok(Verdict::Undecided {
            why: Undecided::NotSupported(_),
            ..
        }) => {}
        // The v3 signature data does not parse as v4's: unreadable.
        Err(e) => assert_eq!(e.code(), "malformed", "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_and_garbage_evidence_is_an_error_not_a_verdict() {
    for n in [0, 10, 47, 48, 432, 1000, SGX_QUOTE.len() - 1] {
        let r = talos_attest::verify(
            &SGX_QUOTE[..n],
            &inputs(SGX_COLLATERAL, inside()),
            &lenient(),
        );
        match r {
            Err(e) => assert!(matches!(e.code(), "malformed" | "unrecognized"), "{n}: {e}"),
            Ok(v) => assert!(!matches!(v, Verdict::Accepted(_)), "{n}: {v:?}"),
        }
    }
    assert!(Collateral::parse(b"{}").is_err());
    assert!(Collateral::parse(b"not json").is_err());
}
