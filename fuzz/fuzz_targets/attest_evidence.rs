//! talos-attest: the evidence parsers on hostile bytes. Each input is tried
//! as evidence (format detection, DCAP quote, Keystone report_t) against the
//! real SGX sample collateral and the test Keystone device key, and as
//! collateral JSON for the real SGX sample quote. Nothing may panic, and
//! nothing unverified may be accepted.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use talos_attest::{Collateral, Inputs, Policy, TcbStatus, Verdict};

const QUOTE: &[u8] = include_bytes!("../../attest/tests/data/sgx_quote");
const COLLATERAL: &[u8] = include_bytes!("../../attest/tests/data/sgx_quote_collateral.json");
const DEVICE: &[u8] = include_bytes!("../../attest/tests/data/keystone_test_device.pub");
/// Inside the sample collateral's validity window (2025-06-25).
const AT: u64 = 1_750_809_600;

fn inputs() -> &'static Inputs {
    static I: OnceLock<Inputs> = OnceLock::new();
    I.get_or_init(|| Inputs {
        collateral: Collateral::parse(COLLATERAL).ok(),
        at: AT,
        keystone_root: talos_attest::keystone::parse_root_key(DEVICE).ok(),
    })
}

fn policy() -> Policy {
    let mut p = Policy::default();
    p.accept_tcb.extend(TcbStatus::ALL);
    p
}

fn check(v: &Verdict) {
    if let Verdict::Accepted(e) = v {
        assert!(e.verified, "accepted unverified evidence");
    }
    if let Some(e) = v.evidence() {
        let _ = e.measurements();
        let _ = e.primary();
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = talos_attest::detect(data);
    if let Ok(v) = talos_attest::verify(data, inputs(), &policy()) {
        check(&v);
    }
    if let Ok(c) = Collateral::parse(data) {
        let i = Inputs {
            collateral: Some(c),
            at: AT,
            keystone_root: None,
        };
        if let Ok(v) = talos_attest::verify(QUOTE, &i, &policy()) {
            check(&v);
        }
    }
});
