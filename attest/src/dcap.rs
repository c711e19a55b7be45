//! Intel DCAP quotes (SGX v3, TDX v4/v5), verified by the `dcap-qvl` crate
//! with collateral read from a file: the attestation key's signature over
//! the report body, the QE report and its signature by the PCK certificate,
//! the PCK chain and the collateral's chains to Intel's SGX root CA, the
//! CRLs, the TCB info and QE identity signatures, dates and levels. This
//! module does none of that by hand; it picks what to ask, turns the crate's
//! errors into typed reasons and tells a wrong time from a bad chain.
//!
//! **Time.** Collateral is valid between issue dates and next-update dates.
//! At a time outside that window nothing can be proven either way, so the
//! verdict is [`Undecided::OutsideValidity`] (exit 3) — but only after the
//! same evidence verified at a time inside the window; evidence that fails
//! there too is refused with the reason found there (a bad signature is bad
//! at any time).

use dcap_qvl::quote::{Quote, Report};
use dcap_qvl::{QuoteCollateralV3, QuotePolicy};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::policy::{Policy, Reason, TcbStatus};
use crate::verdict::{self, Evidence, Format, Identity, Tcb, Undecided, Verdict, Window};

/// Intel's QE vendor id, bytes 12..28 of every DCAP quote header.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];
/// Largest collateral file accepted (real ones are tens of KiB; PCK CRLs
/// of large platforms reach a few hundred).
pub const MAX_COLLATERAL_LEN: usize = 16 << 20;
const TEE_TYPE_SGX: u32 = 0;
const TEE_TYPE_TDX: u32 = 0x81;
const HEADER_LEN: usize = 48;

/// Recognise a DCAP quote header: version 3 to 5, ECDSA-256 attestation
/// key, SGX or TDX, Intel's QE. `None` when the bytes are not a quote.
pub fn detect(bytes: &[u8]) -> Option<Format> {
    let h = bytes.get(..HEADER_LEN)?;
    let u16_at = |i: usize| {
        h.get(i..i + 2)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_le_bytes)
    };
    let version = u16_at(0)?;
    let key_type = u16_at(2)?;
    let tee_type = u32::from_le_bytes(h.get(4..8)?.try_into().ok()?);
    if !(3..=5).contains(&version) || key_type != 2 || h.get(12..28)? != INTEL_QE_VENDOR_ID {
        return None;
    }
    match tee_type {
        TEE_TYPE_SGX => Some(Format::SgxQuote { version }),
        TEE_TYPE_TDX if version >= 4 => Some(Format::TdxQuote { version }),
        _ => None,
    }
}

/// Collateral for a quote (the JSON a PCCS serves, as `dcap-qvl` reads
/// it: TCB info, QE identity, their signatures and issuer chains, the root
/// CA and PCK CRLs in hex).
#[derive(Debug, Clone)]
pub struct Collateral {
    inner: QuoteCollateralV3,
    window: Option<Window>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Dates {
    issue_date: String,
    next_update: String,
}

fn dates(json: &str) -> Option<(u64, u64)> {
    let d: Dates = serde_json::from_str(json).ok()?;
    Some((
        crate::time::parse_rfc3339(&d.issue_date)?,
        crate::time::parse_rfc3339(&d.next_update)?,
    ))
}

impl Collateral {
    /// Parse collateral JSON.
    ///
    /// # Errors
    /// [`Error::TooLarge`], [`Error::Collateral`].
    pub fn parse(bytes: &[u8]) -> Result<Collateral> {
        if bytes.len() > MAX_COLLATERAL_LEN {
            return Err(Error::TooLarge {
                what: "collateral",
                len: bytes.len(),
                max: MAX_COLLATERAL_LEN,
            });
        }
        let inner: QuoteCollateralV3 =
            serde_json::from_slice(bytes).map_err(|e| Error::Collateral(e.to_string()))?;
        // The JSON dates only seed the probe for a wrong time; the dates
        // that count are checked by dcap-qvl against the signed documents.
        let window = match (dates(&inner.tcb_info), dates(&inner.qe_identity)) {
            (Some((i1, n1)), Some((i2, n2))) => Some(Window {
                from: i1.max(i2),
                until: n1.min(n2),
            }),
            _ => None,
        };
        Ok(Collateral { inner, window })
    }

    /// The validity window the TCB info and QE identity claim (unverified).
    pub fn claimed_window(&self) -> Option<Window> {
        self.window
    }
}

/// What the quote says, before any verification.
fn evidence_of(quote: &Quote, format: Format) -> Evidence {
    let (identity, report_data, debug) = match &quote.report {
        Report::SgxEnclave(r) => (
            Identity::Sgx {
                mrenclave: r.mr_enclave,
                mrsigner: r.mr_signer,
                isv_prod_id: r.isv_prod_id,
                isv_svn: r.isv_svn,
                attributes: r.attributes,
                misc_select: r.misc_select,
            },
            r.report_data.to_vec(),
            // ATTRIBUTES.FLAGS bit 1: DEBUG.
            r.attributes[0] & 0x02 != 0,
        ),
        Report::TD10(_) | Report::TD15(_) | Report::TD15Ex(_) => {
            let td = quote.report.as_td10();
            let z = [0u8; 48];
            let td_attributes = td.map_or([0; 8], |t| t.td_attributes);
            (
                Identity::Tdx {
                    mrtd: td.map_or(z, |t| t.mr_td),
                    rtmr: td.map_or([z; 4], |t| [t.rt_mr0, t.rt_mr1, t.rt_mr2, t.rt_mr3]),
                    mr_seam: td.map_or(z, |t| t.mr_seam),
                    td_attributes,
                },
                td.map_or_else(Vec::new, |t| t.report_data.to_vec()),
                // TUD byte: bit 0 DEBUG, bits 4-6 profiling and the like.
                td_attributes[0] & 0x71 != 0,
            )
        }
    };
    Evidence {
        format,
        verified: false,
        identity,
        report_data,
        debug,
        tcb: None,
        valid: None,
        at: None,
    }
}

/// How a `dcap-qvl` failure reads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failed {
    /// A real refusal.
    Refuse(Reason),
    /// A date is outside the collateral's validity at the time asked.
    Time,
    /// The collateral is for another platform or TEE.
    WrongCollateral,
    /// A format or algorithm talos does not verify.
    NotSupported,
}

/// Classify a `dcap-qvl` error message (the crate is pinned; the tests
/// flip bytes in every part of the real samples to keep this table true).
fn classify(msg: &str) -> Failed {
    const TABLE: &[(&str, Failed)] = &[
        (
            "TCB status is invalid",
            Failed::Refuse(Reason::TcbNotAccepted),
        ),
        (
            "No matching TCB level",
            Failed::Refuse(Reason::TcbNotAccepted),
        ),
        (
            "below minimum required",
            Failed::Refuse(Reason::TcbNotAccepted),
        ),
        ("expired", Failed::Time),
        ("Expired", Failed::Time),
        ("NotValidYet", Failed::Time),
        ("in the future", Failed::Time),
        ("Fmspc mismatch", Failed::WrongCollateral),
        ("TCB info in the collateral", Failed::WrongCollateral),
        ("QE Identity id/version", Failed::WrongCollateral),
        // dcap-qvl's own "Unsupported DCAP quote version / attestation key
        // type / PCK cert format", "Unsupported TEE type"; webpki's
        // `Unsupported*` errors are certificates that do not chain.
        ("Unsupported DCAP", Failed::NotSupported),
        ("Unsupported TEE type", Failed::NotSupported),
        ("ignature is invalid", Failed::Refuse(Reason::BadSignature)),
        (
            "QE report hash mismatch",
            Failed::Refuse(Reason::BadSignature),
        ),
        ("BadSignature", Failed::Refuse(Reason::BadSignature)),
        (
            "SignatureForPublicKey",
            Failed::Refuse(Reason::BadSignature),
        ),
        (
            "Debug mode is enabled",
            Failed::Refuse(Reason::DebugEnclave),
        ),
        ("TD profiling", Failed::Refuse(Reason::DebugEnclave)),
        (
            "TD migration",
            Failed::Refuse(Reason::AttributesNotAccepted),
        ),
        ("SERVTD_EXT", Failed::Refuse(Reason::AttributesNotAccepted)),
        (
            "SEPT_VE_DISABLE",
            Failed::Refuse(Reason::AttributesNotAccepted),
        ),
        (
            "Reserved bits in TD attributes",
            Failed::Refuse(Reason::AttributesNotAccepted),
        ),
        (
            "MR service TD",
            Failed::Refuse(Reason::AttributesNotAccepted),
        ),
    ];
    TABLE
        .iter()
        .find(|(needle, _)| msg.contains(needle))
        // Everything else (an unknown issuer, a revoked or unparsable
        // certificate, a quoting enclave that is not Intel's, a chain of
        // the wrong shape) means no chain to the pinned root was found.
        .map_or(Failed::Refuse(Reason::UntrustedRoot), |(_, f)| f.clone())
}

fn tcb_status(s: dcap_qvl::TcbStatus) -> TcbStatus {
    use dcap_qvl::TcbStatus as T;
    match s {
        T::UpToDate => TcbStatus::UpToDate,
        T::SWHardeningNeeded => TcbStatus::SwHardeningNeeded,
        T::ConfigurationNeeded => TcbStatus::ConfigurationNeeded,
        T::ConfigurationAndSWHardeningNeeded => TcbStatus::ConfigurationAndSwHardeningNeeded,
        T::OutOfDate => TcbStatus::OutOfDate,
        T::OutOfDateConfigurationNeeded => TcbStatus::OutOfDateConfigurationNeeded,
        T::TDRelaunchAdvised => TcbStatus::TdRelaunchAdvised,
        T::TDRelaunchAdvisedConfigurationNeeded => TcbStatus::TdRelaunchAdvisedConfigurationNeeded,
        T::Revoked => TcbStatus::Revoked,
    }
}

/// One run of the whole `dcap-qvl` verification at `at`.
fn run(bytes: &[u8], c: &Collateral, at: u64) -> std::result::Result<(Tcb, Window), String> {
    // DEBUG is a policy question: let dcap-qvl verify debug enclaves and
    // judge the attribute here, so a debug enclave is reported with its
    // measurements and the reason `debug-enclave`.
    let claims = dcap_qvl::verify::QuoteVerifier::new_prod()
        .allow_debug(true)
        .verify_with_policy(bytes, c.inner.clone(), at, &QuotePolicy::claims_only(at))
        .map_err(|e| format!("{e:#}"))?;
    let mut advisories = claims.tcb.advisory_ids.clone();
    advisories.sort();
    advisories.dedup();
    Ok((
        Tcb {
            status: tcb_status(claims.tcb.status),
            advisories,
        },
        Window {
            from: claims.latest_issue_date,
            until: claims.earliest_expiration_date,
        },
    ))
}

/// Times inside a window to check evidence at when the time asked is
/// outside it.
fn probes(w: Option<Window>) -> Vec<u64> {
    match w {
        Some(w) if w.from <= w.until => {
            vec![w.from, w.from / 2 + w.until / 2, w.until]
        }
        _ => Vec::new(),
    }
}

/// Verify a quote at `at` and judge it with `policy`.
///
/// # Errors
/// [`Error::Malformed`] when the quote does not parse.
pub fn verify(
    bytes: &[u8],
    format: Format,
    collateral: Option<&Collateral>,
    at: u64,
    policy: &Policy,
) -> Result<Verdict> {
    let quote = Quote::parse(bytes).map_err(|e| Error::malformed("quote", format!("{e:#}")))?;
    let mut ev = evidence_of(&quote, format);
    ev.at = Some(at);
    if let Format::SgxQuote { version } = format
        && version != 3
    {
        return Ok(Verdict::Undecided {
            why: Undecided::NotSupported(format!("SGX DCAP quote version {version}")),
            detail: format!(
                "SGX quotes of version {version} are not verified by this build (dcap-qvl checks SGX quotes of version 3)"
            ),
            evidence: Some(ev),
        });
    }
    let Some(c) = collateral else {
        return Ok(Verdict::Undecided {
            why: Undecided::NoCollateral,
            detail: "no collateral (--collateral FILE): the TCB status and Intel's signatures on it cannot be checked".to_owned(),
            evidence: Some(ev),
        });
    };
    let outside = c.window.is_some_and(|w| at < w.from || at > w.until);
    let mut first_time_failure = None;
    if !outside {
        match run(bytes, c, at) {
            Ok((tcb, window)) => {
                ev.verified = true;
                ev.tcb = Some(tcb);
                ev.valid = Some(window);
                return Ok(verdict::judge(ev, policy));
            }
            Err(msg) => match classify(&msg) {
                Failed::Time => first_time_failure = Some(msg),
                other => return Ok(failed(other, msg, ev, at)),
            },
        }
    }
    // The time asked is outside the collateral's validity. Is the evidence
    // sound at a time when the collateral is valid?
    for t in probes(c.window) {
        match run(bytes, c, t) {
            Ok((_, window)) => {
                return Ok(Verdict::Undecided {
                    why: Undecided::OutsideValidity {
                        at,
                        window: Some(window),
                    },
                    detail: format!(
                        "the collateral is valid from {} to {}, not at {}: nothing can be proven at that time (the chain verifies inside the window)",
                        crate::time::format_rfc3339(window.from),
                        crate::time::format_rfc3339(window.until),
                        crate::time::format_rfc3339(at)
                    ),
                    evidence: Some(Evidence {
                        valid: Some(window),
                        ..ev
                    }),
                });
            }
            Err(msg) => match classify(&msg) {
                Failed::Time => {}
                other => return Ok(failed(other, msg, ev, at)),
            },
        }
    }
    let detail = match (c.window, first_time_failure) {
        (_, Some(msg)) => format!(
            "the collateral is not valid at {}: {msg}",
            crate::time::format_rfc3339(at)
        ),
        (Some(w), None) => format!(
            "the collateral claims validity from {} to {}, not at {}",
            crate::time::format_rfc3339(w.from),
            crate::time::format_rfc3339(w.until),
            crate::time::format_rfc3339(at)
        ),
        (None, None) => "the collateral has no usable validity dates".to_owned(),
    };
    Ok(Verdict::Undecided {
        why: Undecided::OutsideValidity {
            at,
            window: c.window,
        },
        detail,
        evidence: Some(ev),
    })
}

/// The verdict for a check that failed at time `at` (the time asked, not
/// one taken from `ev`, so that it is never a stand-in).
fn failed(f: Failed, msg: String, ev: Evidence, at: u64) -> Verdict {
    match f {
        Failed::Refuse(reason) => Verdict::refused(reason, msg, Some(ev)),
        Failed::Time => Verdict::Undecided {
            why: Undecided::OutsideValidity { at, window: None },
            detail: msg,
            evidence: Some(ev),
        },
        Failed::WrongCollateral => Verdict::Undecided {
            why: Undecided::WrongCollateral,
            detail: format!("the collateral is not for this quote's platform: {msg}"),
            evidence: Some(ev),
        },
        Failed::NotSupported => Verdict::Undecided {
            why: Undecided::NotSupported(msg.clone()),
            detail: format!("not supported: {msg}"),
            evidence: Some(ev),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        for (msg, want) in [
            ("TCBInfo expired", Failed::Time),
            (
                "Signature is invalid for tcb_info in quote_collateral",
                Failed::Refuse(Reason::BadSignature),
            ),
            (
                "ISV enclave report signature is invalid",
                Failed::Refuse(Reason::BadSignature),
            ),
            (
                "TCB status is invalid: Revoked",
                Failed::Refuse(Reason::TcbNotAccepted),
            ),
            ("UnknownIssuer", Failed::Refuse(Reason::UntrustedRoot)),
            ("CertRevoked", Failed::Refuse(Reason::UntrustedRoot)),
            (
                "Unsupported DCAP attestation key type",
                Failed::NotSupported,
            ),
            (
                "Failed to parse PCK certificate: UnsupportedCriticalExtension",
                Failed::Refuse(Reason::UntrustedRoot),
            ),
            ("Fmspc mismatch", Failed::WrongCollateral),
        ] {
            assert_eq!(classify(msg), want, "{msg}");
        }
    }

    #[test]
    fn header_detection() {
        let mut h = vec![0u8; 64];
        h[0] = 3;
        h[2] = 2;
        h[12..28].copy_from_slice(&INTEL_QE_VENDOR_ID);
        assert_eq!(detect(&h), Some(Format::SgxQuote { version: 3 }));
        h[4] = 0x81;
        assert_eq!(detect(&h), None, "TDX needs version 4 or 5");
        h[0] = 4;
        assert_eq!(detect(&h), Some(Format::TdxQuote { version: 4 }));
        h[13] ^= 1;
        assert_eq!(detect(&h), None);
        assert_eq!(detect(&h[..20]), None);
    }
}
