//! Keystone attestation reports (RISC-V): the `report_t` the security
//! monitor (SM) returns from `attest_enclave`, parsed and checked as the
//! Keystone SDK's verifier (`Report::checkSignaturesOnly`) does.
//!
//! ```text
//! offset  size  field
//!      0    64  enclave.hash        SHA3-512 of the enclave's initial pages
//!     64     8  enclave.data_len    little-endian (RISC-V), at most 1024
//!     72  1024  enclave.data        the data the enclave asked to be signed
//!   1096    64  enclave.signature   by the SM key over hash || data_len || data[..data_len]
//!   1160    64  sm.hash             SHA3-512 of the security monitor
//!   1224    32  sm.public_key       the SM's attestation key
//!   1256    64  sm.signature        by the device key over sm.hash || sm.public_key
//!   1320    32  dev_public_key      the device root key
//!   1352        end
//! ```
//!
//! Keystone's ed25519 is the orlp implementation with SHA-512 replaced by
//! SHA3-512 everywhere, so the signatures are checked with
//! `ed25519_dalek::hazmat::raw_verify::<Sha3_512>`, not standard ed25519.

use ed25519_dalek::{Signature, VerifyingKey};
use sha3::Sha3_512;

use crate::error::{Error, Result};
use crate::policy::{Reason, hex};
use crate::verdict::{Evidence, Format, Identity};

/// Size of a `report_t`.
pub const REPORT_LEN: usize = 1352;
/// Largest `data_len` (`ATTEST_DATA_MAXLEN`).
pub const DATA_MAX: usize = 1024;

const DATA_LEN_AT: usize = 64;
const DATA_AT: usize = 72;
const ENCLAVE_SIG_AT: usize = DATA_AT + DATA_MAX;
const SM_HASH_AT: usize = ENCLAVE_SIG_AT + 64;
const SM_KEY_AT: usize = SM_HASH_AT + 64;
const SM_SIG_AT: usize = SM_KEY_AT + 32;
const DEV_KEY_AT: usize = SM_SIG_AT + 64;

/// A parsed report, borrowing the file's bytes.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    bytes: &'a [u8; REPORT_LEN],
    data_len: usize,
}

fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(s) = b.get(at..at.saturating_add(N)) {
        out.copy_from_slice(s);
    }
    out
}

impl<'a> Report<'a> {
    /// Parse a report file.
    ///
    /// # Errors
    /// [`Error::Malformed`] when it is not 1352 bytes or `data_len` is over
    /// 1024.
    pub fn parse(bytes: &'a [u8]) -> Result<Report<'a>> {
        let bytes: &[u8; REPORT_LEN] = bytes.try_into().map_err(|_| {
            Error::malformed(
                "keystone report",
                format!("{} bytes, a report_t is {REPORT_LEN}", bytes.len()),
            )
        })?;
        let len = u64::from_le_bytes(array(bytes, DATA_LEN_AT));
        let data_len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= DATA_MAX)
            .ok_or_else(|| {
                Error::malformed(
                    "keystone report",
                    format!("data_len {len} at offset {DATA_LEN_AT} is over {DATA_MAX}"),
                )
            })?;
        Ok(Report { bytes, data_len })
    }

    /// The enclave hash.
    pub fn enclave_hash(&self) -> [u8; 64] {
        array(self.bytes, 0)
    }

    /// The data the enclave had signed (`data[..data_len]`).
    pub fn data(&self) -> &'a [u8] {
        self.bytes
            .get(DATA_AT..DATA_AT.saturating_add(self.data_len))
            .unwrap_or_default()
    }

    /// The security monitor's hash.
    pub fn sm_hash(&self) -> [u8; 64] {
        array(self.bytes, SM_HASH_AT)
    }

    /// The SM's public key.
    pub fn sm_key(&self) -> [u8; 32] {
        array(self.bytes, SM_KEY_AT)
    }

    /// The device public key the report claims.
    pub fn device_key(&self) -> [u8; 32] {
        array(self.bytes, DEV_KEY_AT)
    }

    /// What the report says, not yet verified.
    pub fn evidence(&self) -> Evidence {
        Evidence {
            format: Format::KeystoneReport,
            verified: false,
            identity: Identity::Keystone {
                enclave_hash: self.enclave_hash(),
                sm_hash: self.sm_hash(),
                sm_key: self.sm_key(),
                device_key: self.device_key(),
            },
            report_data: self.data().to_vec(),
            debug: false,
            tcb: None,
            valid: None,
            at: None,
        }
    }

    /// Check the chain up to the pinned device root key, in the SDK's
    /// order: the device key is the pinned one, it signed the SM report, and
    /// the SM key signed the enclave report.
    ///
    /// # Errors
    /// The reason and a sentence: `untrusted-root` for another device key,
    /// `bad-signature` for a signature that does not verify.
    pub fn verify(&self, root: &[u8; 32]) -> std::result::Result<(), (Reason, String)> {
        let dev = self.device_key();
        if &dev != root {
            return Err((
                Reason::UntrustedRoot,
                format!(
                    "the report is signed under device key {}, the pinned root is {}",
                    hex(&dev),
                    hex(root)
                ),
            ));
        }
        let dev_key = VerifyingKey::from_bytes(root).map_err(|_| {
            (
                Reason::UntrustedRoot,
                "the pinned device key is not an ed25519 point".to_owned(),
            )
        })?;
        let sm_msg = self.bytes.get(SM_HASH_AT..SM_SIG_AT).unwrap_or_default();
        let sm_sig = Signature::from_bytes(&array(self.bytes, SM_SIG_AT));
        ed25519_dalek::hazmat::raw_verify::<Sha3_512>(&dev_key, sm_msg, &sm_sig).map_err(|_| {
            (
                Reason::BadSignature,
                "the security monitor report (SM hash and key) is not signed by the device key"
                    .to_owned(),
            )
        })?;
        let sm_key = VerifyingKey::from_bytes(&self.sm_key())
            .ok()
            .filter(|k| !k.is_weak())
            .ok_or_else(|| {
                (
                    Reason::BadSignature,
                    "the SM public key is not a usable ed25519 key".to_owned(),
                )
            })?;
        let enclave_msg = self
            .bytes
            .get(..DATA_AT.saturating_add(self.data_len))
            .unwrap_or_default();
        let enclave_sig = Signature::from_bytes(&array(self.bytes, ENCLAVE_SIG_AT));
        ed25519_dalek::hazmat::raw_verify::<Sha3_512>(&sm_key, enclave_msg, &enclave_sig).map_err(
            |_| {
                (
                    Reason::BadSignature,
                    "the enclave report (hash, data_len, data) is not signed by the SM key"
                        .to_owned(),
                )
            },
        )
    }
}

/// Parse a pinned Keystone device root key: 64 hex digits (one line) or
/// the raw 32 bytes.
///
/// # Errors
/// [`Error::BadArgument`] for anything else, or a key that is not a usable
/// ed25519 point.
pub fn parse_root_key(bytes: &[u8]) -> Result<[u8; 32]> {
    let from_hex = std::str::from_utf8(bytes)
        .ok()
        .and_then(crate::policy::unhex)
        .and_then(|v| <[u8; 32]>::try_from(v).ok());
    let key = from_hex
        .or_else(|| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| {
            Error::BadArgument("device key: expected 64 hex digits (or the raw 32 bytes)".into())
        })?;
    match VerifyingKey::from_bytes(&key) {
        Ok(k) if !k.is_weak() => Ok(key),
        _ => Err(Error::BadArgument(
            "device key: not a usable ed25519 public key".into(),
        )),
    }
}
