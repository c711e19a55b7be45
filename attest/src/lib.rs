//! `talos-attest`: verify TEE attestation evidence offline and judge it
//! with a [`Policy`].
//!
//! - **Intel SGX and TDX DCAP quotes** are verified by the `dcap-qvl` crate
//!   (pure Rust, network features off) against collateral read from a file
//!   and Intel's SGX root CA; this crate picks the time, maps the crate's
//!   failures onto typed [`Reason`]s and tells a wrong time (the verdict is
//!   [`Verdict::Undecided`]) from a bad chain ([`Verdict::Refused`]).
//! - **Keystone reports** (RISC-V) are parsed and checked as the Keystone
//!   SDK's verifier does: the pinned device root key signs the security
//!   monitor's hash and key, the SM key signs the enclave's hash and data,
//!   with Keystone's ed25519 over SHA3-512.
//!
//! The policy then judges what the chain proves, in this order: TCB status
//! (default `UpToDate` only), DEBUG (refused by default), expected and
//! allowed measurements, and the report data binding. A refusal has exactly
//! one reason (the first failing check) and lists every failing check.
//!
//! Fail closed: evidence without collateral or without a pinned root, a
//! time outside the collateral's validity, or a format this build does not
//! verify is [`Verdict::Undecided`], never accepted. Unreadable input is an
//! [`Error`]. The crate never prints and never exits; `talos attest` does.
//!
//! ```
//! use talos_attest::{Inputs, Policy, Verdict};
//! let quote = include_bytes!("../tests/data/sgx_quote");
//! let collateral = include_bytes!("../tests/data/sgx_quote_collateral.json");
//! let inputs = Inputs {
//!     collateral: Some(talos_attest::Collateral::parse(collateral)?),
//!     at: talos_attest::time::parse_rfc3339("2025-06-20T00:00:00Z").unwrap_or(0),
//!     keystone_root: None,
//! };
//! let v = talos_attest::verify(quote, &inputs, &Policy::default())?;
//! // Real quote from real hardware, verified; the default policy refuses
//! // its TCB status (ConfigurationAndSWHardeningNeeded).
//! assert_eq!(v.reason().map(|r| r.code()), Some("tcb-not-accepted"));
//! # Ok::<(), talos_attest::Error>(())
//! ```

mod dcap;
mod error;
pub mod keystone;
mod policy;
pub mod time;
mod verdict;

pub use dcap::{Collateral, INTEL_QE_VENDOR_ID, MAX_COLLATERAL_LEN};
pub use error::{Error, Result};
pub use policy::{Measurement, Policy, Reason, TcbStatus, Tee, hex, unhex};
pub use verdict::{Evidence, Failure, Format, Identity, Tcb, Undecided, Verdict, Window};

/// Largest evidence file accepted (quotes are a few KiB, Keystone reports
/// 1352 bytes).
pub const MAX_EVIDENCE_LEN: usize = 1 << 20;

/// What verification needs besides the evidence.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// DCAP collateral (required for quotes).
    pub collateral: Option<Collateral>,
    /// The time to verify at, seconds since the Unix epoch.
    pub at: u64,
    /// The pinned Keystone device root key (required for Keystone).
    pub keystone_root: Option<[u8; 32]>,
}

/// Recognise the format of evidence bytes.
///
/// # Errors
/// [`Error::TooLarge`], [`Error::Unrecognized`].
pub fn detect(bytes: &[u8]) -> Result<Format> {
    if bytes.len() > MAX_EVIDENCE_LEN {
        return Err(Error::TooLarge {
            what: "evidence",
            len: bytes.len(),
            max: MAX_EVIDENCE_LEN,
        });
    }
    if let Some(f) = dcap::detect(bytes) {
        return Ok(f);
    }
    if bytes.len() == keystone::REPORT_LEN {
        return Ok(Format::KeystoneReport);
    }
    Err(Error::Unrecognized(format!(
        "{} bytes: not a DCAP quote (version 3-5, ECDSA-256 key, Intel QE, SGX or TDX) nor a {}-byte Keystone report",
        bytes.len(),
        keystone::REPORT_LEN
    )))
}

/// Verify evidence and judge it with `policy`.
///
/// # Errors
/// Unreadable evidence: [`Error::TooLarge`], [`Error::Unrecognized`],
/// [`Error::Malformed`].
pub fn verify(evidence: &[u8], inputs: &Inputs, policy: &Policy) -> Result<Verdict> {
    let format = detect(evidence)?;
    match format {
        Format::SgxQuote { .. } | Format::TdxQuote { .. } => dcap::verify(
            evidence,
            format,
            inputs.collateral.as_ref(),
            inputs.at,
            policy,
        ),
        Format::KeystoneReport => {
            let report = keystone::Report::parse(evidence)?;
            let ev = report.evidence();
            let Some(root) = &inputs.keystone_root else {
                return Ok(Verdict::Undecided {
                    why: Undecided::NoDeviceRoot,
                    detail: "no device root key pinned (--keystone-root FILE): the report's signatures cannot be traced to a device".to_owned(),
                    evidence: Some(ev),
                });
            };
            match report.verify(root) {
                Ok(()) => Ok(verdict::judge(
                    Evidence {
                        verified: true,
                        ..ev
                    },
                    policy,
                )),
                Err((reason, detail)) => Ok(Verdict::refused(reason, detail, Some(ev))),
            }
        }
    }
}
