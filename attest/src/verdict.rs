//! What verified evidence says, and the verdict of a policy on it.

use crate::policy::{Measurement, Policy, Reason, TcbStatus, Tee, hex};

/// The format of a piece of evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An Intel DCAP quote of an SGX enclave (header version 3, 4 or 5).
    SgxQuote {
        /// Quote header version.
        version: u16,
    },
    /// An Intel DCAP quote of a TDX trust domain (version 4 or 5).
    TdxQuote {
        /// Quote header version.
        version: u16,
    },
    /// A Keystone `report_t` (1352 bytes).
    KeystoneReport,
}

impl Format {
    /// The TEE the format belongs to.
    pub fn tee(self) -> Tee {
        match self {
            Format::SgxQuote { .. } => Tee::Sgx,
            Format::TdxQuote { .. } => Tee::Tdx,
            Format::KeystoneReport => Tee::Keystone,
        }
    }

    /// For people: `SGX DCAP quote v3`, `Keystone report`, ...
    pub fn describe(self) -> String {
        match self {
            Format::SgxQuote { version } => format!("SGX DCAP quote v{version}"),
            Format::TdxQuote { version } => format!("TDX DCAP quote v{version}"),
            Format::KeystoneReport => "Keystone attestation report".to_owned(),
        }
    }
}

/// The identity fields a TEE signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// An SGX enclave's report body.
    Sgx {
        /// MRENCLAVE.
        mrenclave: [u8; 32],
        /// MRSIGNER.
        mrsigner: [u8; 32],
        /// ISV product id.
        isv_prod_id: u16,
        /// ISV security version.
        isv_svn: u16,
        /// The 16 attribute bytes (flags then XFRM).
        attributes: [u8; 16],
        /// MISCSELECT.
        misc_select: u32,
    },
    /// A TDX trust domain's report body.
    Tdx {
        /// MRTD: the initial TD image.
        mrtd: [u8; 48],
        /// RTMR0 to RTMR3: runtime-extended measurements.
        rtmr: [[u8; 48]; 4],
        /// MRSEAM: the TDX module.
        mr_seam: [u8; 48],
        /// TD attributes.
        td_attributes: [u8; 8],
    },
    /// A Keystone enclave and its security monitor.
    Keystone {
        /// The enclave hash (SHA3-512).
        enclave_hash: [u8; 64],
        /// The security monitor's hash.
        sm_hash: [u8; 64],
        /// The SM's attestation key (signs enclave reports).
        sm_key: [u8; 32],
        /// The device root key (signs the SM report).
        device_key: [u8; 32],
    },
}

/// The TCB verdict of Intel's collateral for the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tcb {
    /// Converged platform and QE status.
    pub status: TcbStatus,
    /// Intel security advisories that apply (`INTEL-SA-00289`, ...).
    pub advisories: Vec<String>,
}

/// The interval in which the collateral (or its weakest part) is valid,
/// seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Latest issue date.
    pub from: u64,
    /// Earliest next update or expiry.
    pub until: u64,
}

/// What a piece of evidence says. `verified` tells whether its signature
/// chain was checked up to the pinned root: unverified content is shown to
/// people (marked so), never trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// Its format.
    pub format: Format,
    /// Whether the whole chain verified.
    pub verified: bool,
    /// The signed identity.
    pub identity: Identity,
    /// The report data the enclave chose (64 bytes for SGX and TDX; the
    /// used `data` bytes for Keystone).
    pub report_data: Vec<u8>,
    /// DEBUG attribute (SGX), debug or profiling (TDX); Keystone has none.
    pub debug: bool,
    /// Intel's TCB verdict (DCAP quotes only, once verified).
    pub tcb: Option<Tcb>,
    /// The collateral's validity (DCAP quotes only, once verified).
    pub valid: Option<Window>,
    /// The time the evidence was judged at (DCAP: `--at`).
    pub at: Option<u64>,
}

impl Evidence {
    /// The TEE.
    pub fn tee(&self) -> Tee {
        self.format.tee()
    }

    /// The measurements this evidence carries, most specific first.
    pub fn measurements(&self) -> Vec<Measurement> {
        match &self.identity {
            Identity::Sgx {
                mrenclave,
                mrsigner,
                ..
            } => vec![
                Measurement::SgxEnclave(*mrenclave),
                Measurement::SgxSigner(*mrsigner),
            ],
            Identity::Tdx { mrtd, .. } => vec![Measurement::TdxTd(*mrtd)],
            Identity::Keystone {
                enclave_hash,
                sm_hash,
                ..
            } => vec![
                Measurement::KeystoneEnclave(*enclave_hash),
                Measurement::KeystoneSm(*sm_hash),
            ],
        }
    }

    /// The measurement that identifies the code (MRENCLAVE, MRTD, Keystone
    /// enclave hash).
    pub fn primary(&self) -> Measurement {
        match &self.identity {
            Identity::Sgx { mrenclave, .. } => Measurement::SgxEnclave(*mrenclave),
            Identity::Tdx { mrtd, .. } => Measurement::TdxTd(*mrtd),
            Identity::Keystone { enclave_hash, .. } => Measurement::KeystoneEnclave(*enclave_hash),
        }
    }
}

/// Why a verdict could not be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undecided {
    /// A DCAP quote was given without collateral.
    NoCollateral,
    /// A Keystone report was given without a pinned device root key.
    NoDeviceRoot,
    /// The collateral is not valid at the requested time.
    OutsideValidity {
        /// The time asked about.
        at: u64,
        /// When the collateral is valid, if known.
        window: Option<Window>,
    },
    /// The collateral is for another platform (FMSPC) or another TEE.
    WrongCollateral,
    /// A format talos recognises but cannot verify (SGX quote v4/v5).
    NotSupported(String),
}

impl Undecided {
    /// The stable kebab-case code.
    pub fn code(&self) -> &'static str {
        match self {
            Undecided::NoCollateral => "no-collateral",
            Undecided::NoDeviceRoot => "no-device-root",
            Undecided::OutsideValidity { .. } => "collateral-not-valid",
            Undecided::WrongCollateral => "wrong-collateral",
            Undecided::NotSupported(_) => "not-supported",
        }
    }
}

/// A failed check, with what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The reason.
    pub reason: Reason,
    /// One sentence.
    pub detail: String,
}

/// The verdict on a piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The chain verified and the policy accepts it.
    Accepted(Evidence),
    /// The chain failed, or the policy refuses what it proves. `failures`
    /// is never empty; the first one is the reason.
    Refused {
        /// Every failed check, in check order.
        failures: Vec<Failure>,
        /// What the evidence says (verified or not).
        evidence: Option<Evidence>,
    },
    /// The evidence cannot prove it either way.
    Undecided {
        /// Why.
        why: Undecided,
        /// One sentence.
        detail: String,
        /// What the evidence says (unverified unless the chain checked).
        evidence: Option<Evidence>,
    },
}

impl Verdict {
    /// The evidence content, if it could be read.
    pub fn evidence(&self) -> Option<&Evidence> {
        match self {
            Verdict::Accepted(e) => Some(e),
            Verdict::Refused { evidence, .. } | Verdict::Undecided { evidence, .. } => {
                evidence.as_ref()
            }
        }
    }

    /// The reason of a refusal.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Verdict::Refused { failures, .. } => failures.first().map(|f| f.reason),
            _ => None,
        }
    }

    pub(crate) fn refused(reason: Reason, detail: String, evidence: Option<Evidence>) -> Verdict {
        Verdict::Refused {
            failures: vec![Failure { reason, detail }],
            evidence,
        }
    }
}

/// Apply the policy to evidence whose chain verified.
pub(crate) fn judge(evidence: Evidence, policy: &Policy) -> Verdict {
    let mut failures = Vec::new();
    let mut fail = |reason: Reason, detail: String| failures.push(Failure { reason, detail });
    if let Some(tcb) = &evidence.tcb
        && (tcb.status == TcbStatus::Revoked || !policy.accept_tcb.contains(&tcb.status))
    {
        let accepted: Vec<&str> = policy.accept_tcb.iter().map(|t| t.name()).collect();
        let adv = if tcb.advisories.is_empty() {
            String::new()
        } else {
            format!(" (advisories {})", tcb.advisories.join(", "))
        };
        fail(
            Reason::TcbNotAccepted,
            format!(
                "TCB status {}{adv} is not accepted (accepted: {}; widen with --accept-tcb {})",
                tcb.status,
                accepted.join(", "),
                tcb.status
            ),
        );
    }
    if evidence.debug && !policy.allow_debug {
        fail(
            Reason::DebugEnclave,
            format!(
                "the {} runs in debug mode: the host can read and change its memory",
                if evidence.tee() == Tee::Tdx {
                    "trust domain"
                } else {
                    "enclave"
                }
            ),
        );
    }
    let has = evidence.measurements();
    for want in &policy.expect {
        if !has.contains(want) {
            let got = has.iter().find(|m| m.kind() == want.kind()).map_or_else(
                || format!("{} evidence", evidence.tee()),
                ToString::to_string,
            );
            fail(
                Reason::MeasurementMismatch,
                format!("expected {want}, the evidence measures {got}"),
            );
        }
    }
    if !policy.allowed.is_empty() {
        let identity_ok = has
            .iter()
            .filter(|m| !matches!(m, Measurement::KeystoneSm(_)))
            .any(|m| policy.allowed.contains(m));
        if !identity_ok {
            fail(
                Reason::MeasurementMismatch,
                format!(
                    "{} is not among the {} allowed measurement(s)",
                    evidence.primary(),
                    policy.allowed.len()
                ),
            );
        }
        let sms: Vec<&Measurement> = policy
            .allowed
            .iter()
            .filter(|m| matches!(m, Measurement::KeystoneSm(_)))
            .collect();
        if let Identity::Keystone { sm_hash, .. } = &evidence.identity
            && !sms.is_empty()
            && !sms.contains(&&Measurement::KeystoneSm(*sm_hash))
        {
            fail(
                Reason::MeasurementMismatch,
                format!(
                    "security monitor keystone-sm:{} is not among the {} allowed",
                    hex(sm_hash),
                    sms.len()
                ),
            );
        }
    }
    if let Some(want) = &policy.report_data
        && evidence.report_data.as_slice() != want.as_slice()
    {
        fail(
            Reason::BindingMismatch,
            format!(
                "report data {} does not bind the expected key (expected {})",
                short_hex(&evidence.report_data),
                short_hex(want)
            ),
        );
    }
    if failures.is_empty() {
        Verdict::Accepted(evidence)
    } else {
        Verdict::Refused {
            failures,
            evidence: Some(evidence),
        }
    }
}

fn short_hex(b: &[u8]) -> String {
    let h = hex(b);
    if h.len() > 32 {
        format!("{}…", h.get(..32).unwrap_or_default())
    } else if h.is_empty() {
        "(empty)".to_owned()
    } else {
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sgx(debug: bool, status: TcbStatus) -> Evidence {
        Evidence {
            format: Format::SgxQuote { version: 3 },
            verified: true,
            identity: Identity::Sgx {
                mrenclave: [1; 32],
                mrsigner: [2; 32],
                isv_prod_id: 0,
                isv_svn: 0,
                attributes: [
                    if debug { 0x07 } else { 0x05 },
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                ],
                misc_select: 0,
            },
            report_data: vec![0; 64],
            debug,
            tcb: Some(Tcb {
                status,
                advisories: Vec::new(),
            }),
            valid: None,
            at: None,
        }
    }

    #[test]
    fn debug_enclaves_are_refused_unless_allowed() {
        let v = judge(sgx(true, TcbStatus::UpToDate), &Policy::default());
        assert_eq!(v.reason(), Some(Reason::DebugEnclave));
        let p = Policy {
            allow_debug: true,
            ..Policy::default()
        };
        assert!(matches!(
            judge(sgx(true, TcbStatus::UpToDate), &p),
            Verdict::Accepted(_)
        ));
    }

    #[test]
    fn revoked_is_never_accepted() {
        let mut p = Policy::default();
        p.accept_tcb.extend(TcbStatus::ALL);
        assert_eq!(
            judge(sgx(false, TcbStatus::Revoked), &p).reason(),
            Some(Reason::TcbNotAccepted)
        );
        assert!(matches!(
            judge(sgx(false, TcbStatus::OutOfDate), &p),
            Verdict::Accepted(_)
        ));
    }

    #[test]
    fn failures_come_in_check_order() {
        let p = Policy {
            expect: vec![Measurement::SgxEnclave([9; 32])],
            report_data: Some([1; 64]),
            ..Policy::default()
        };
        let Verdict::Refused { failures, .. } = judge(sgx(true, TcbStatus::OutOfDate), &p) else {
            panic!()
        };
        let r: Vec<Reason> = failures.iter().map(|f| f.reason).collect();
        assert_eq!(
            r,
            [
                Reason::TcbNotAccepted,
                Reason::DebugEnclave,
                Reason::MeasurementMismatch,
                Reason::BindingMismatch
            ]
        );
    }
}
