//! Test-only builder of Keystone attestation reports (`report_t`), with its
//! own layout code (not the parser's) and ed25519-over-SHA3-512 keys as
//! Keystone's security monitor and bootloader make them: the secret scalar
//! and nonce prefix are the halves of SHA3-512(seed), clamped as in RFC 8032.
//!
//! Shared by `talos-attest`'s tests and the `talos` end-to-end tests.

#![allow(dead_code, clippy::indexing_slicing, clippy::cast_possible_truncation)]

use ed25519_dalek::VerifyingKey;
use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
use sha3::{Digest as _, Sha3_512};

/// A Keystone-style ed25519 key (SHA3-512 in place of SHA-512).
pub struct KeystoneKey {
    esk: ExpandedSecretKey,
    public: VerifyingKey,
}

impl KeystoneKey {
    /// The key of a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> KeystoneKey {
        let h: [u8; 64] = Sha3_512::digest(seed).into();
        let esk = ExpandedSecretKey::from_bytes(&h);
        let public = VerifyingKey::from(&esk);
        KeystoneKey { esk, public }
    }

    /// The public key bytes.
    pub fn public(&self) -> [u8; 32] {
        self.public.to_bytes()
    }

    /// Sign with standard ed25519 (SHA-512) under the same key: what a
    /// verifier of the wrong scheme would accept.
    pub fn sign_sha512(&self, msg: &[u8]) -> [u8; 64] {
        raw_sign::<sha2::Sha512>(&self.esk, msg, &self.public).to_bytes()
    }

    /// Sign as Keystone does.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        raw_sign::<Sha3_512>(&self.esk, msg, &self.public).to_bytes()
    }
}

/// What goes into a report.
pub struct TestReport {
    pub enclave_hash: [u8; 64],
    pub data: Vec<u8>,
    pub sm_hash: [u8; 64],
    pub sm_key: KeystoneKey,
    pub device_key: KeystoneKey,
}

impl TestReport {
    /// A report of `enclave_hash` with `data`, under a fixed SM and device.
    pub fn new(enclave_hash: [u8; 64], data: &[u8]) -> TestReport {
        TestReport {
            enclave_hash,
            data: data.to_vec(),
            sm_hash: [0x5a; 64],
            sm_key: KeystoneKey::from_seed([0x33; 32]),
            device_key: test_device_key(),
        }
    }

    /// The 1352 bytes of `report_t`, signed.
    pub fn build(&self) -> Vec<u8> {
        assert!(self.data.len() <= 1024);
        let mut enclave = Vec::new();
        enclave.extend_from_slice(&self.enclave_hash);
        enclave.extend_from_slice(&(self.data.len() as u64).to_le_bytes());
        enclave.extend_from_slice(&self.data);
        let enclave_sig = self.sm_key.sign(&enclave);
        let mut sm = Vec::new();
        sm.extend_from_slice(&self.sm_hash);
        sm.extend_from_slice(&self.sm_key.public());
        let sm_sig = self.device_key.sign(&sm);

        let mut out = Vec::with_capacity(1352);
        out.extend_from_slice(&enclave);
        out.resize(64 + 8 + 1024, 0); // data[1024], zero past data_len
        out.extend_from_slice(&enclave_sig);
        out.extend_from_slice(&sm);
        out.extend_from_slice(&sm_sig);
        out.extend_from_slice(&self.device_key.public());
        assert_eq!(out.len(), 1352);
        out
    }
}

/// The device root key the tests pin.
pub fn test_device_key() -> KeystoneKey {
    KeystoneKey::from_seed([0x44; 32])
}

/// Hex of bytes.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
