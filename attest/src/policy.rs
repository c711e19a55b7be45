//! What a verifier accepts: TCB statuses, debug enclaves, measurements and
//! the report data binding. The default policy is the strict one: TCB
//! `UpToDate` only, no debug enclave, any measurement, no binding.

use std::collections::BTreeSet;
use std::fmt;

use crate::error::{Error, Result};

/// A trusted execution environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tee {
    /// Intel SGX (DCAP quote of an enclave).
    Sgx,
    /// Intel TDX (DCAP quote of a trust domain).
    Tdx,
    /// RISC-V Keystone (security monitor report of an enclave).
    Keystone,
}

impl Tee {
    /// `sgx`, `tdx` or `keystone`.
    pub fn name(self) -> &'static str {
        match self {
            Tee::Sgx => "sgx",
            Tee::Tdx => "tdx",
            Tee::Keystone => "keystone",
        }
    }
}

impl fmt::Display for Tee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The TCB status of an Intel platform, as Intel's TCB info names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TcbStatus {
    /// Patched and configured as Intel recommends.
    UpToDate,
    /// Patched; software hardening (against advisories) is needed.
    SwHardeningNeeded,
    /// Patched; the platform configuration needs changes.
    ConfigurationNeeded,
    /// Both of the above.
    ConfigurationAndSwHardeningNeeded,
    /// Microcode or firmware is out of date.
    OutOfDate,
    /// Out of date and the configuration needs changes.
    OutOfDateConfigurationNeeded,
    /// TDX 1.5: launched out of date, updated since; relaunch advised.
    TdRelaunchAdvised,
    /// TDX 1.5: relaunch advised and configuration needed.
    TdRelaunchAdvisedConfigurationNeeded,
    /// The platform's keys are revoked (never accepted, whatever the policy).
    Revoked,
}

impl TcbStatus {
    /// Every status.
    pub const ALL: [TcbStatus; 9] = [
        TcbStatus::UpToDate,
        TcbStatus::SwHardeningNeeded,
        TcbStatus::ConfigurationNeeded,
        TcbStatus::ConfigurationAndSwHardeningNeeded,
        TcbStatus::OutOfDate,
        TcbStatus::OutOfDateConfigurationNeeded,
        TcbStatus::TdRelaunchAdvised,
        TcbStatus::TdRelaunchAdvisedConfigurationNeeded,
        TcbStatus::Revoked,
    ];

    /// Intel's name of the status (`UpToDate`, `SWHardeningNeeded`, ...).
    pub fn name(self) -> &'static str {
        match self {
            TcbStatus::UpToDate => "UpToDate",
            TcbStatus::SwHardeningNeeded => "SWHardeningNeeded",
            TcbStatus::ConfigurationNeeded => "ConfigurationNeeded",
            TcbStatus::ConfigurationAndSwHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            TcbStatus::OutOfDate => "OutOfDate",
            TcbStatus::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            TcbStatus::TdRelaunchAdvised => "TDRelaunchAdvised",
            TcbStatus::TdRelaunchAdvisedConfigurationNeeded => {
                "TDRelaunchAdvisedConfigurationNeeded"
            }
            TcbStatus::Revoked => "Revoked",
        }
    }

    /// The status of Intel's name (exact spelling).
    ///
    /// # Errors
    /// [`Error::BadArgument`] for an unknown name.
    pub fn parse(s: &str) -> Result<TcbStatus> {
        TcbStatus::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = TcbStatus::ALL.iter().map(|t| t.name()).collect();
                Error::BadArgument(format!(
                    "unknown TCB status {s:?}; one of {}",
                    names.join(", ")
                ))
            })
    }
}

impl fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An identity a TEE measures and signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Measurement {
    /// SGX MRENCLAVE: the enclave's code and initial data (32 bytes).
    SgxEnclave([u8; 32]),
    /// SGX MRSIGNER: the enclave signer's key (32 bytes).
    SgxSigner([u8; 32]),
    /// TDX MRTD: the trust domain's initial image (48 bytes).
    TdxTd([u8; 48]),
    /// Keystone enclave hash: SHA3-512 of the enclave's initial pages.
    KeystoneEnclave([u8; 64]),
    /// Keystone security monitor hash (SHA3-512 of the SM image).
    KeystoneSm([u8; 64]),
}

impl Measurement {
    /// The prefix of the text form (`sgx`, `sgx-signer`, `tdx`, `keystone`,
    /// `keystone-sm`).
    pub fn kind(&self) -> &'static str {
        match self {
            Measurement::SgxEnclave(_) => "sgx",
            Measurement::SgxSigner(_) => "sgx-signer",
            Measurement::TdxTd(_) => "tdx",
            Measurement::KeystoneEnclave(_) => "keystone",
            Measurement::KeystoneSm(_) => "keystone-sm",
        }
    }

    /// The measured bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Measurement::SgxEnclave(b) | Measurement::SgxSigner(b) => b,
            Measurement::TdxTd(b) => b,
            Measurement::KeystoneEnclave(b) | Measurement::KeystoneSm(b) => b,
        }
    }

    /// The TEE whose evidence carries this measurement.
    pub fn tee(&self) -> Tee {
        match self {
            Measurement::SgxEnclave(_) | Measurement::SgxSigner(_) => Tee::Sgx,
            Measurement::TdxTd(_) => Tee::Tdx,
            Measurement::KeystoneEnclave(_) | Measurement::KeystoneSm(_) => Tee::Keystone,
        }
    }

    /// A measurement from its kind and bytes.
    ///
    /// # Errors
    /// [`Error::BadArgument`] for an unknown kind or a wrong length.
    pub fn from_parts(kind: &str, bytes: &[u8]) -> Result<Measurement> {
        let bad = |want: usize| {
            Error::BadArgument(format!(
                "a {kind} measurement is {want} bytes ({} hex digits), not {}",
                want * 2,
                bytes.len()
            ))
        };
        Ok(match kind {
            "sgx" => Measurement::SgxEnclave(bytes.try_into().map_err(|_| bad(32))?),
            "sgx-signer" => Measurement::SgxSigner(bytes.try_into().map_err(|_| bad(32))?),
            "tdx" => Measurement::TdxTd(bytes.try_into().map_err(|_| bad(48))?),
            "keystone" => Measurement::KeystoneEnclave(bytes.try_into().map_err(|_| bad(64))?),
            "keystone-sm" => Measurement::KeystoneSm(bytes.try_into().map_err(|_| bad(64))?),
            _ => {
                return Err(Error::BadArgument(format!(
                    "unknown measurement kind {kind:?}: one of sgx, sgx-signer, tdx, keystone, keystone-sm"
                )));
            }
        })
    }

    /// Parse `KIND:HEX` (for example `sgx:` and 64 hex digits).
    ///
    /// # Errors
    /// [`Error::BadArgument`].
    pub fn parse(s: &str) -> Result<Measurement> {
        let (kind, hex) = s.split_once(':').ok_or_else(|| {
            Error::BadArgument(format!(
                "measurement {s:?}: expected KIND:HEX (sgx, sgx-signer, tdx, keystone, keystone-sm)"
            ))
        })?;
        let bytes =
            unhex(hex).ok_or_else(|| Error::BadArgument(format!("measurement {s:?}: not hex")))?;
        Measurement::from_parts(kind, &bytes)
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), hex(self.bytes()))
    }
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    use fmt::Write as _;
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

/// Decode hex (either case, even length).
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    s.as_bytes()
        .chunks_exact(2)
        .map(|p| match p {
            [a, b] => Some(nib(*a)? << 4 | nib(*b)?),
            _ => None,
        })
        .collect()
}

/// What a verifier accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// TCB statuses accepted (`Revoked` never is).
    pub accept_tcb: BTreeSet<TcbStatus>,
    /// Accept enclaves and TDs with the DEBUG attribute (their memory is
    /// readable by the host: never for production).
    pub allow_debug: bool,
    /// Every one of these must be what the evidence measured.
    pub expect: Vec<Measurement>,
    /// When not empty, the evidence's identity must be one of these (an
    /// owner's allow-list): an SGX enclave by MRENCLAVE or MRSIGNER, a TD by
    /// MRTD, a Keystone enclave by its hash; and when the list names
    /// Keystone security monitors, the SM hash must be one of them too.
    pub allowed: Vec<Measurement>,
    /// The 64 bytes the evidence's report data must be (for Keystone, the
    /// report's data must be exactly these 64 bytes).
    pub report_data: Option<[u8; 64]>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            accept_tcb: BTreeSet::from([TcbStatus::UpToDate]),
            allow_debug: false,
            expect: Vec::new(),
            allowed: Vec::new(),
            report_data: None,
        }
    }
}

/// Why evidence is refused: exactly one stable reason per refusal (the
/// first failing check; every failing policy check is listed beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// A signature in the chain does not verify over what it signs: the
    /// report body, the QE report, the collateral, a certificate, the
    /// Keystone SM or enclave report.
    BadSignature,
    /// The chain does not lead to the pinned root (Intel's SGX root CA, the
    /// pinned Keystone device key), or a certificate in it is revoked,
    /// unparsable or of the wrong kind, or the quoting enclave is not
    /// Intel's.
    UntrustedRoot,
    /// The platform's TCB status is not one the policy accepts (or is
    /// revoked, or below every level Intel lists).
    TcbNotAccepted,
    /// The enclave or TD runs with DEBUG (or TD profiling) enabled.
    DebugEnclave,
    /// TDX attributes other than debug that Intel's verifier refuses
    /// (migratable TD, SEPT_VE_DISABLE off, reserved bits, service TDs).
    AttributesNotAccepted,
    /// The measurement is not the expected or an allowed one.
    MeasurementMismatch,
    /// The report data does not bind the expected key.
    BindingMismatch,
}

impl Reason {
    /// The stable kebab-case code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::BadSignature => "bad-signature",
            Reason::UntrustedRoot => "untrusted-root",
            Reason::TcbNotAccepted => "tcb-not-accepted",
            Reason::DebugEnclave => "debug-enclave",
            Reason::AttributesNotAccepted => "attributes-not-accepted",
            Reason::MeasurementMismatch => "measurement-mismatch",
            Reason::BindingMismatch => "binding-mismatch",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurements_parse_and_print() {
        let m = Measurement::parse(&format!("sgx:{}", "AB".repeat(32))).unwrap();
        assert_eq!(m, Measurement::SgxEnclave([0xab; 32]));
        assert_eq!(m.to_string(), format!("sgx:{}", "ab".repeat(32)));
        assert_eq!(
            Measurement::parse(&m.to_string()).unwrap(),
            Measurement::SgxEnclave([0xab; 32])
        );
        let k = Measurement::parse(&format!("keystone-sm:{}", "01".repeat(64))).unwrap();
        assert_eq!(k.tee(), Tee::Keystone);
        for bad in [
            "sgx",
            "sgx:abc",
            "sgx:zz",
            &format!("sgx:{}", "00".repeat(31)),
            &format!("tdx:{}", "00".repeat(32)),
            &format!("tpm:{}", "00".repeat(32)),
        ] {
            assert_eq!(
                Measurement::parse(bad).unwrap_err().code(),
                "bad-argument",
                "{bad}"
            );
        }
    }

    #[test]
    fn tcb_names_are_intels() {
        for t in TcbStatus::ALL {
            assert_eq!(TcbStatus::parse(t.name()).unwrap(), t);
        }
        assert!(TcbStatus::parse("uptodate").is_err());
        assert_eq!(Policy::default().accept_tcb.len(), 1);
    }
}
