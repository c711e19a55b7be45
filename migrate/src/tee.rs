//! What the gate records of TEE attestation: the measurements an owner
//! allows in a reference, the binding of a host key into a TEE report, and
//! the record of a peer key pinned because verified evidence vouched for
//! it.
//!
//! This crate verifies no evidence (it links no quote or report parser):
//! `talos-attest` does, in the analyzer, and hands the result over as an
//! [`Attestation`] to [`crate::Host::trust_attested`].

use std::collections::BTreeSet;
use std::fmt;

use crate::codec;
use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::types::Digest;

/// blake3 derive-key context of the report data that binds a host key.
pub const BINDING_CONTEXT: &str = "talos 2026-11 tee binding v1";

/// The 64 bytes a TEE must put in its report data (SGX and TDX
/// `REPORTDATA`, Keystone `attest_enclave` data) to bind `key`:
/// `blake3::derive_key(BINDING_CONTEXT, key bytes)` followed by 32 zero
/// bytes.
pub fn tee_binding(key: &PublicKey) -> [u8; 64] {
    let d = Digest::derive(BINDING_CONTEXT, &key.to_bytes());
    let mut out = [0u8; 64];
    if let Some(head) = out.get_mut(..32) {
        head.copy_from_slice(&d.0);
    }
    out
}

/// Which identity a TEE measurement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TeeKind {
    /// SGX MRENCLAVE (32 bytes).
    SgxEnclave,
    /// SGX MRSIGNER (32 bytes).
    SgxSigner,
    /// TDX MRTD (48 bytes).
    TdxTd,
    /// Keystone enclave hash (64 bytes).
    KeystoneEnclave,
    /// Keystone security monitor hash (64 bytes).
    KeystoneSm,
}

impl TeeKind {
    /// Every kind, in tag order.
    pub const ALL: [TeeKind; 5] = [
        TeeKind::SgxEnclave,
        TeeKind::SgxSigner,
        TeeKind::TdxTd,
        TeeKind::KeystoneEnclave,
        TeeKind::KeystoneSm,
    ];

    /// The prefix of the text form.
    pub fn name(self) -> &'static str {
        match self {
            TeeKind::SgxEnclave => "sgx",
            TeeKind::SgxSigner => "sgx-signer",
            TeeKind::TdxTd => "tdx",
            TeeKind::KeystoneEnclave => "keystone",
            TeeKind::KeystoneSm => "keystone-sm",
        }
    }

    /// The measurement's length in bytes.
    pub fn byte_len(self) -> usize {
        match self {
            TeeKind::SgxEnclave | TeeKind::SgxSigner => 32,
            TeeKind::TdxTd => 48,
            TeeKind::KeystoneEnclave | TeeKind::KeystoneSm => 64,
        }
    }

    fn tag(self) -> u8 {
        match self {
            TeeKind::SgxEnclave => 1,
            TeeKind::SgxSigner => 2,
            TeeKind::TdxTd => 3,
            TeeKind::KeystoneEnclave => 4,
            TeeKind::KeystoneSm => 5,
        }
    }
}

/// A TEE measurement: a kind and its bytes (length checked).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TeeMeasurement {
    kind: TeeKind,
    value: Vec<u8>,
}

impl TeeMeasurement {
    /// A measurement of `kind`.
    ///
    /// # Errors
    /// [`Error::BadArgument`] when `value` is not the kind's length.
    pub fn new(kind: TeeKind, value: &[u8]) -> Result<TeeMeasurement> {
        if value.len() != kind.byte_len() {
            return Err(Error::BadArgument(format!(
                "a {} measurement is {} bytes, not {}",
                kind.name(),
                kind.byte_len(),
                value.len()
            )));
        }
        Ok(TeeMeasurement {
            kind,
            value: value.to_vec(),
        })
    }

    /// Parse `KIND:HEX` (`sgx`, `sgx-signer`, `tdx`, `keystone`,
    /// `keystone-sm`).
    ///
    /// # Errors
    /// [`Error::BadArgument`].
    pub fn parse(s: &str) -> Result<TeeMeasurement> {
        let bad = || {
            Error::BadArgument(format!(
                "TEE measurement {s:?}: expected KIND:HEX with KIND one of sgx, sgx-signer, tdx, keystone, keystone-sm"
            ))
        };
        let (k, hex) = s.split_once(':').ok_or_else(bad)?;
        let kind = TeeKind::ALL
            .into_iter()
            .find(|x| x.name() == k)
            .ok_or_else(bad)?;
        let value = codec::unhex(&hex.to_ascii_lowercase()).ok_or_else(bad)?;
        TeeMeasurement::new(kind, &value)
    }

    /// The kind.
    pub fn kind(&self) -> TeeKind {
        self.kind
    }

    /// The measured bytes.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        codec::put_u8(out, self.kind.tag());
        codec::put_u8(out, u8::try_from(self.value.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&self.value);
    }

    pub(crate) fn decode(cur: &mut &[u8], what: &'static str) -> Result<TeeMeasurement> {
        let tag = codec::get_u8(cur, what)?;
        let kind = TeeKind::ALL
            .into_iter()
            .find(|k| k.tag() == tag)
            .ok_or_else(|| Error::malformed(what, format!("unknown TEE measurement kind {tag}")))?;
        let len = usize::from(codec::get_u8(cur, what)?);
        if len != kind.byte_len() {
            return Err(Error::malformed(
                what,
                format!("{} measurement of {len} bytes", kind.name()),
            ));
        }
        let value = codec::take(cur, len, what)?.to_vec();
        Ok(TeeMeasurement { kind, value })
    }
}

impl fmt::Display for TeeMeasurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.name(), codec::hex(&self.value))
    }
}

/// Most TEE measurements a reference may allow.
pub const MAX_TEE_MEASUREMENTS: usize = 64;

pub(crate) fn encode_set(set: &BTreeSet<TeeMeasurement>, out: &mut Vec<u8>) {
    codec::put_u8(out, u8::try_from(set.len()).unwrap_or(u8::MAX));
    for m in set {
        m.encode(out);
    }
}

/// Decode a non-empty, strictly increasing list of at most
/// [`MAX_TEE_MEASUREMENTS`].
pub(crate) fn decode_set(cur: &mut &[u8], what: &'static str) -> Result<BTreeSet<TeeMeasurement>> {
    let n = usize::from(codec::get_u8(cur, what)?);
    if n == 0 || n > MAX_TEE_MEASUREMENTS {
        return Err(Error::malformed(
            what,
            format!("{n} TEE measurements (1 to {MAX_TEE_MEASUREMENTS})"),
        ));
    }
    let mut set = BTreeSet::new();
    for _ in 0..n {
        let m = TeeMeasurement::decode(cur, what)?;
        if set.last().is_some_and(|l| l >= &m) {
            return Err(Error::malformed(
                what,
                "TEE measurements not in strictly increasing order",
            ));
        }
        set.insert(m);
    }
    Ok(set)
}

/// The TCB status verified evidence reported (Intel's names;
/// `not-applicable` for TEEs without one, such as Keystone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TcbLevel {
    /// No TCB status exists for this TEE (Keystone).
    NotApplicable,
    /// `UpToDate`.
    UpToDate,
    /// `SWHardeningNeeded`.
    SwHardeningNeeded,
    /// `ConfigurationNeeded`.
    ConfigurationNeeded,
    /// `ConfigurationAndSWHardeningNeeded`.
    ConfigurationAndSwHardeningNeeded,
    /// `OutOfDate`.
    OutOfDate,
    /// `OutOfDateConfigurationNeeded`.
    OutOfDateConfigurationNeeded,
    /// `TDRelaunchAdvised`.
    TdRelaunchAdvised,
    /// `TDRelaunchAdvisedConfigurationNeeded`.
    TdRelaunchAdvisedConfigurationNeeded,
}

impl TcbLevel {
    /// Every level, in tag order.
    pub const ALL: [TcbLevel; 9] = [
        TcbLevel::NotApplicable,
        TcbLevel::UpToDate,
        TcbLevel::SwHardeningNeeded,
        TcbLevel::ConfigurationNeeded,
        TcbLevel::ConfigurationAndSwHardeningNeeded,
        TcbLevel::OutOfDate,
        TcbLevel::OutOfDateConfigurationNeeded,
        TcbLevel::TdRelaunchAdvised,
        TcbLevel::TdRelaunchAdvisedConfigurationNeeded,
    ];

    /// Intel's name, or `not-applicable`.
    pub fn name(self) -> &'static str {
        match self {
            TcbLevel::NotApplicable => "not-applicable",
            TcbLevel::UpToDate => "UpToDate",
            TcbLevel::SwHardeningNeeded => "SWHardeningNeeded",
            TcbLevel::ConfigurationNeeded => "ConfigurationNeeded",
            TcbLevel::ConfigurationAndSwHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            TcbLevel::OutOfDate => "OutOfDate",
            TcbLevel::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            TcbLevel::TdRelaunchAdvised => "TDRelaunchAdvised",
            TcbLevel::TdRelaunchAdvisedConfigurationNeeded => {
                "TDRelaunchAdvisedConfigurationNeeded"
            }
        }
    }

    /// The level of a name.
    pub fn from_name(s: &str) -> Option<TcbLevel> {
        TcbLevel::ALL.into_iter().find(|t| t.name() == s)
    }

    fn tag(self) -> u8 {
        TcbLevel::ALL
            .iter()
            .position(|t| *t == self)
            .and_then(|i| u8::try_from(i).ok())
            .unwrap_or(u8::MAX)
    }
}

impl fmt::Display for TcbLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Longest advisory id (`INTEL-SA-00615` is 14).
const MAX_ADVISORY_LEN: usize = 32;
/// Most advisories recorded for one attestation.
const MAX_ADVISORIES: usize = 64;

fn advisory_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ADVISORY_LEN
        && s.bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'-')
}

/// What verified evidence proved about a peer key, as the gate records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// The measurement that identified the code (MRENCLAVE, MRTD, Keystone
    /// enclave hash) and that the owner's reference allowed.
    pub measurement: TeeMeasurement,
    /// The platform's TCB status.
    pub tcb: TcbLevel,
    /// Intel security advisories that apply, sorted.
    pub advisories: BTreeSet<String>,
    /// blake3 of the evidence file.
    pub evidence: Digest,
    /// When it was verified (seconds since the Unix epoch).
    pub verified_at: u64,
    /// Id of the owner-signed reference whose TEE measurements allowed it,
    /// if one was used.
    pub reference: Option<Digest>,
}

impl Attestation {
    /// Check the advisory ids (`[A-Z0-9-]`, at most 32 bytes, at most 64).
    ///
    /// # Errors
    /// [`Error::BadArgument`].
    pub fn validate(&self) -> Result<()> {
        if self.advisories.len() > MAX_ADVISORIES {
            return Err(Error::BadArgument(format!(
                "{} advisories (at most {MAX_ADVISORIES})",
                self.advisories.len()
            )));
        }
        if let Some(a) = self.advisories.iter().find(|a| !advisory_ok(a)) {
            return Err(Error::BadArgument(format!("advisory id {a:?}")));
        }
        Ok(())
    }

    /// The TEE name of the measurement (`sgx`, `tdx`, `keystone`).
    pub fn tee(&self) -> &'static str {
        match self.measurement.kind() {
            TeeKind::SgxEnclave | TeeKind::SgxSigner => "sgx",
            TeeKind::TdxTd => "tdx",
            TeeKind::KeystoneEnclave | TeeKind::KeystoneSm => "keystone",
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        self.measurement.encode(out);
        codec::put_u8(out, self.tcb.tag());
        codec::put_u8(out, u8::try_from(self.advisories.len()).unwrap_or(u8::MAX));
        for a in &self.advisories {
            codec::put_str8(out, a);
        }
        codec::put_32(out, &self.evidence.0);
        codec::put_u64(out, self.verified_at);
        match &self.reference {
            None => codec::put_u8(out, 0),
            Some(r) => {
                codec::put_u8(out, 1);
                codec::put_32(out, &r.0);
            }
        }
    }

    pub(crate) fn decode(cur: &mut &[u8], what: &'static str) -> Result<Attestation> {
        let measurement = TeeMeasurement::decode(cur, what)?;
        let t = codec::get_u8(cur, what)?;
        let tcb = TcbLevel::ALL
            .into_iter()
            .find(|l| l.tag() == t)
            .ok_or_else(|| Error::malformed(what, format!("unknown TCB level {t}")))?;
        let n = usize::from(codec::get_u8(cur, what)?);
        if n > MAX_ADVISORIES {
            return Err(Error::malformed(what, format!("{n} advisories")));
        }
        let mut advisories = BTreeSet::new();
        for _ in 0..n {
            let a = codec::get_str8(cur, what)?;
            if !advisory_ok(a) || advisories.last().is_some_and(|l: &String| l.as_str() >= a) {
                return Err(Error::malformed(
                    what,
                    "advisory ids invalid or not strictly increasing",
                ));
            }
            advisories.insert(a.to_owned());
        }
        let evidence = Digest(codec::get_32(cur, what)?);
        let verified_at = codec::get_u64(cur, what)?;
        let reference = match codec::get_u8(cur, what)? {
            0 => None,
            1 => Some(Digest(codec::get_32(cur, what)?)),
            f => return Err(Error::malformed(what, format!("reference flag {f}"))),
        };
        Ok(Attestation {
            measurement,
            tcb,
            advisories,
            evidence,
            verified_at,
            reference,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;

    #[test]
    fn binding_is_domain_separated_blake3_zero_padded() {
        let k = SecretKey::from_seed(&[1; 32]).public();
        let b = tee_binding(&k);
        let want = blake3::derive_key(BINDING_CONTEXT, &k.to_bytes());
        assert_eq!(&b[..32], &want);
        assert_eq!(&b[32..], &[0u8; 32]);
        assert_ne!(b, tee_binding(&SecretKey::from_seed(&[2; 32]).public()));
        // Not the key id (another context).
        assert_ne!(&b[..32], &k.id().0);
    }

    #[test]
    fn measurements_parse_and_encode_canonically() {
        let m = TeeMeasurement::parse(&format!("sgx:{}", "AB".repeat(32))).unwrap();
        assert_eq!(m.to_string(), format!("sgx:{}", "ab".repeat(32)));
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(out.len(), 2 + 32);
        assert_eq!(TeeMeasurement::decode(&mut out.as_slice(), "m").unwrap(), m);
        out[1] = 31;
        assert!(TeeMeasurement::decode(&mut out.as_slice(), "m").is_err());
        for bad in [
            "sgx",
            "tpm:00",
            "tdx:00",
            &format!("keystone:{}", "0".repeat(127)),
        ] {
            assert!(TeeMeasurement::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sets_are_strictly_ordered_and_non_empty() {
        let a = TeeMeasurement::new(TeeKind::SgxEnclave, &[1; 32]).unwrap();
        let b = TeeMeasurement::new(TeeKind::KeystoneEnclave, &[2; 64]).unwrap();
        let set = BTreeSet::from([a.clone(), b.clone()]);
        let mut out = Vec::new();
        encode_set(&set, &mut out);
        assert_eq!(decode_set(&mut out.as_slice(), "s").unwrap(), set);
        let mut swapped = vec![2u8];
        b.encode(&mut swapped);
        a.encode(&mut swapped);
        assert!(decode_set(&mut swapped.as_slice(), "s").is_err());
        assert!(decode_set(&mut [0u8].as_slice(), "s").is_err());
    }

    #[test]
    fn attestation_round_trip() {
        let att = Attestation {
            measurement: TeeMeasurement::new(TeeKind::KeystoneEnclave, &[9; 64]).unwrap(),
            tcb: TcbLevel::ConfigurationAndSwHardeningNeeded,
            advisories: BTreeSet::from(["INTEL-SA-00289".to_owned(), "INTEL-SA-00615".to_owned()]),
            evidence: Digest([3; 32]),
            verified_at: 1_750_000_000,
            reference: Some(Digest([4; 32])),
        };
        att.validate().unwrap();
        let mut out = Vec::new();
        att.encode(&mut out);
        let mut cur = out.as_slice();
        assert_eq!(Attestation::decode(&mut cur, "a").unwrap(), att);
        assert!(cur.is_empty());
        let bad = Attestation {
            advisories: BTreeSet::from(["intel sa".to_owned()]),
            ..att
        };
        assert!(bad.validate().is_err());
    }

    fn reference(tee: BTreeSet<TeeMeasurement>) -> crate::Reference {
        let m = |s: &str, b: u8| crate::Measurement::new(s, Digest([b; 32])).unwrap();
        crate::Reference::sign(
            crate::ReferenceBody {
                app: crate::AppId::new("vault").unwrap(),
                version: crate::Version::new("1").unwrap(),
                binary: m("blake3", 1),
                code: m("talos.code/1", 2),
                cfg: m("talos.cfg/1", 3),
                tee,
            },
            &SecretKey::from_seed(&[7; 32]),
        )
    }

    #[test]
    fn references_without_tee_measurements_stay_version_1() {
        let r = reference(BTreeSet::new());
        let bytes = r.encode();
        assert_eq!(bytes[8], 1, "version byte");
        // The exact layout of a version 1 reference: nothing appended.
        assert_eq!(
            bytes.len(),
            10 + 6 + 2 + (1 + 6 + 32) + (1 + 12 + 32) + (1 + 11 + 32) + 96
        );
        let back = crate::Reference::decode(&bytes).unwrap();
        assert!(back.body().tee.is_empty());
        assert_eq!(back.encode(), bytes);
        back.verify_signature().unwrap();
    }

    #[test]
    fn references_with_tee_measurements_are_version_2_and_canonical() {
        let set = BTreeSet::from([
            TeeMeasurement::new(TeeKind::SgxEnclave, &[5; 32]).unwrap(),
            TeeMeasurement::new(TeeKind::KeystoneEnclave, &[6; 64]).unwrap(),
        ]);
        let r = reference(set.clone());
        let bytes = r.encode();
        assert_eq!(bytes[8], crate::REFERENCE_TEE_VERSION);
        let back = crate::Reference::decode(&bytes).unwrap();
        assert_eq!(back.body().tee, set);
        assert_eq!(back.encode(), bytes);
        back.verify_signature().unwrap();
        // Relabelling it version 1 leaves trailing bytes; a version 2 with
        // an empty list is not canonical; other kinds have no version 2.
        let mut v1 = bytes.clone();
        v1[8] = 1;
        assert!(crate::Reference::decode(&v1).is_err());
        let plain = reference(BTreeSet::new()).encode();
        let mut empty = plain.clone();
        empty[8] = 2;
        empty.insert(plain.len() - 96, 0);
        assert!(crate::Reference::decode(&empty).is_err());
        let mut other = crate::Challenge::sign(
            crate::ChallengeBody {
                app: crate::AppId::new("vault").unwrap(),
                nonce: crate::Nonce([1; 32]),
                issued_at: 1,
                expires_at: 2,
            },
            &SecretKey::from_seed(&[7; 32]),
        )
        .encode();
        other[8] = 2;
        assert!(crate::Message::decode(&other).is_err());
        // The TEE list is signed.
        let mut tampered = bytes.clone();
        let at = bytes.len() - 96 - 10;
        tampered[at] ^= 1;
        let t = crate::Reference::decode(&tampered).unwrap();
        assert!(t.verify_signature().is_err());
    }

    #[test]
    fn ledgers_record_attested_peers_and_stay_version_1_without() {
        let host = SecretKey::from_seed(&[1; 32]).public();
        let peer = SecretKey::from_seed(&[2; 32]).public();
        let mut l = crate::Ledger::new(host);
        crate::machine::trust(&mut l, crate::Role::Peer, peer);
        let v1 = l.encode();
        assert_eq!(v1[8], crate::LEDGER_VERSION);
        let att = Attestation {
            measurement: TeeMeasurement::new(TeeKind::KeystoneEnclave, &[9; 64]).unwrap(),
            tcb: TcbLevel::NotApplicable,
            advisories: BTreeSet::new(),
            evidence: Digest([3; 32]),
            verified_at: 5,
            reference: None,
        };
        let other = SecretKey::from_seed(&[3; 32]).public();
        assert!(crate::machine::trust_attested(&mut l, other, att.clone()).unwrap());
        assert!(!crate::machine::trust_attested(&mut l, other, att.clone()).unwrap());
        assert!(l.is_trusted(crate::Role::Peer, &other));
        let v2 = l.encode();
        assert_eq!(v2[8], crate::LEDGER_ATTESTED_VERSION);
        let back = crate::Ledger::decode(&v2).unwrap();
        assert_eq!(back, l);
        assert_eq!(back.encode(), v2);
        let view = back.view();
        let t: Vec<_> = view.trusted.iter().map(|t| t.pinned.as_str()).collect();
        assert_eq!(t.iter().filter(|p| **p == "attested").count(), 1);
        assert!(
            view.to_string()
                .contains("attested: keystone keystone:0909"),
            "{view}"
        );
        assert!(view.to_string().contains("pinned by hand"), "{view}");
        // An attested key that is not pinned as a peer is a corrupt ledger.
        let mut bad = l.clone();
        bad.trusted.remove(&(crate::Role::Peer, other));
        assert!(crate::Ledger::decode(&bad.encode()).is_err());
    }
}
