//! SGX enclave metadata: the SIGSTRUCT (Intel SDM Vol. 3D §38.13) and the
//! SGX SDK's `.note.sgxmeta` that carries it.
//!
//! The SDK layout (`metadata_t`, from `common/inc/internal/metadata.h` and
//! `arch.h` of intel/linux-sgx) is:
//!
//! ```text
//! .note.sgxmeta: ELF note  namesz u32 | descsz u32 | type u32 | "sgx_metadata\0" | metadata...
//!                (the metadata follows the 13-byte name directly, unpadded)
//! metadata_t (packed, 4096 bytes):
//!   0  magic_num u64 = 0x86A80294635D0E4C     8  version u64 (major << 32 | minor)
//!  16  size u32                              20  tcs_policy u32
//!  24  ssa_frame_size u32                    28  max_save_buffer_size u32
//!  32  desired_misc_select u32               36  reserved u32
//!  40  enclave_size u64                      48  attributes (flags u64, xfrm u64)
//!  64  enclave_css (SIGSTRUCT, 1808 bytes)  1872 dirs[2] (offset u32, size u32)
//! 1888 data[2208]
//! ```
//!
//! Several metadata blocks may follow each other (the SDK stores one per
//! supported metadata version); each is `size` bytes.
//!
//! Nothing here needs SGX hardware: the SIGSTRUCT's RSA-3072 signature
//! (PKCS#1 v1.5, SHA-256, exponent 3, little-endian fields) is verified in
//! software, and so are Q1 and Q2. MRENCLAVE is reported as the SIGSTRUCT
//! states it; recomputing it needs the loader's page layout and is not done.

use crypto_bigint::{NonZero, Resize};
use rsa::{BoxedUint, Pkcs1v15Sign, PublicKey as RsaPublicKey};
use sha2::{Digest as _, Sha256};

use crate::model::{Attributes, SgxMetadataFacts, SigStructFacts, Verification};

/// Size of a SIGSTRUCT.
pub const SIGSTRUCT_SIZE: usize = 1808;
/// `metadata_t` magic.
pub const METADATA_MAGIC: u64 = 0x86A8_0294_635D_0E4C;
/// Size of one `metadata_t`.
pub const METADATA_SIZE: usize = 4096;
/// Offset of the SIGSTRUCT inside `metadata_t`.
pub const METADATA_CSS_OFFSET: usize = 64;
/// The note name.
pub const NOTE_NAME: &[u8] = b"sgx_metadata\0";
/// Metadata blocks examined in one note.
const MAX_BLOCKS: u32 = 16;

/// SIGSTRUCT HEADER (bytes 0..12; bytes 12..16 are the SDK's `type`,
/// whose bit 31 marks a debug-signed structure).
pub const HEADER: [u8; 12] = [6, 0, 0, 0, 0xe1, 0, 0, 0, 0, 0, 1, 0];
/// SIGSTRUCT HEADER2 (bytes 24..40).
pub const HEADER2: [u8; 16] = [1, 1, 0, 0, 0x60, 0, 0, 0, 0x60, 0, 0, 0, 1, 0, 0, 0];

/// ATTRIBUTES.FLAGS bits by name.
pub const FLAG_NAMES: &[(u64, &str)] = &[
    (1 << 0, "init"),
    (1 << 1, "debug"),
    (1 << 2, "mode64bit"),
    (1 << 4, "provisionkey"),
    (1 << 5, "einittokenkey"),
    (1 << 6, "cet"),
    (1 << 7, "kss"),
    (1 << 10, "aexnotify"),
];
/// ATTRIBUTES.FLAGS.DEBUG.
pub const FLAG_DEBUG: u64 = 1 << 1;
/// ATTRIBUTES.FLAGS.PROVISIONKEY.
pub const FLAG_PROVISIONKEY: u64 = 1 << 4;

/// A parsed SIGSTRUCT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigStruct {
    /// The 1808 bytes.
    pub raw: Vec<u8>,
}

/// What is wrong with a SIGSTRUCT's fixed fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

fn le_u16(b: &[u8], off: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(off..off.saturating_add(2)) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

fn le_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off.saturating_add(4)) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off.saturating_add(8)) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

fn field(b: &[u8], off: usize, len: usize) -> &[u8] {
    b.get(off..off.saturating_add(len)).unwrap_or(&[])
}

impl SigStruct {
    /// Parse the first [`SIGSTRUCT_SIZE`] bytes of `bytes`.
    ///
    /// # Errors
    /// When there are fewer bytes, or the fixed HEADER/HEADER2 constants
    /// differ from the SDM's.
    pub fn parse(bytes: &[u8]) -> Result<Self, Malformed> {
        let raw = bytes.get(..SIGSTRUCT_SIZE).ok_or_else(|| {
            Malformed(format!(
                "SIGSTRUCT needs {SIGSTRUCT_SIZE} bytes, {} present",
                bytes.len()
            ))
        })?;
        if field(raw, 0, 12) != HEADER {
            return Err(Malformed(format!(
                "HEADER is {}, expected {}",
                talos_cfg::hex(field(raw, 0, 12)),
                talos_cfg::hex(&HEADER)
            )));
        }
        if field(raw, 24, 16) != HEADER2 {
            return Err(Malformed(format!(
                "HEADER2 is {}, expected {}",
                talos_cfg::hex(field(raw, 24, 16)),
                talos_cfg::hex(&HEADER2)
            )));
        }
        Ok(SigStruct { raw: raw.to_vec() })
    }

    /// MODULUS as stored (little-endian, 384 bytes).
    #[must_use]
    pub fn modulus(&self) -> &[u8] {
        field(&self.raw, 128, 384)
    }

    /// SIGNATURE as stored (little-endian).
    #[must_use]
    pub fn signature(&self) -> &[u8] {
        field(&self.raw, 516, 384)
    }

    /// EXPONENT.
    #[must_use]
    pub fn exponent(&self) -> u32 {
        le_u32(&self.raw, 512)
    }

    /// ATTRIBUTES.
    #[must_use]
    pub fn attributes(&self) -> Attributes {
        Attributes {
            flags: le_u64(&self.raw, 928),
            xfrm: le_u64(&self.raw, 936),
        }
    }

    /// ATTRIBUTEMASK.
    #[must_use]
    pub fn attribute_mask(&self) -> Attributes {
        Attributes {
            flags: le_u64(&self.raw, 944),
            xfrm: le_u64(&self.raw, 952),
        }
    }

    /// ENCLAVEHASH (MRENCLAVE).
    #[must_use]
    pub fn mrenclave(&self) -> &[u8] {
        field(&self.raw, 960, 32)
    }

    /// ISVPRODID.
    #[must_use]
    pub fn isv_prod_id(&self) -> u16 {
        le_u16(&self.raw, 1024)
    }

    /// ISVSVN.
    #[must_use]
    pub fn isv_svn(&self) -> u16 {
        le_u16(&self.raw, 1026)
    }

    /// MRSIGNER: SHA-256 of the modulus as stored.
    #[must_use]
    pub fn mrsigner(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&Sha256::digest(self.modulus()));
        out
    }

    /// The signed bytes: HEADER (0..128) followed by BODY (900..1028).
    #[must_use]
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut m = field(&self.raw, 0, 128).to_vec();
        m.extend_from_slice(field(&self.raw, 900, 128));
        m
    }

    /// Verify the RSA signature with the SIGSTRUCT's own key.
    ///
    /// # Errors
    /// A sentence saying why it does not verify.
    pub fn verify(&self) -> Result<(), String> {
        let (n, e, s) = self.numbers()?;
        let key = RsaPublicKey::new(n, e).map_err(|err| format!("unusable public key: {err}"))?;
        let hash = Sha256::digest(self.signed_bytes());
        key.verify(Pkcs1v15Sign::new::<Sha256>(), &hash, &be(self.signature()))
            .map_err(|_| "RSA signature does not match header and body".to_string())?;
        let _ = s;
        Ok(())
    }

    fn numbers(&self) -> Result<(BoxedUint, BoxedUint, BoxedUint), String> {
        if self.exponent() != 3 {
            return Err(format!("EXPONENT is {}, SGX requires 3", self.exponent()));
        }
        let n = BoxedUint::from_be_slice(&be(self.modulus()), 3072)
            .map_err(|_| "modulus is not 3072 bits".to_string())?;
        let e = BoxedUint::from(3u64);
        let s = BoxedUint::from_be_slice(&be(self.signature()), 3072)
            .map_err(|_| "signature is not 3072 bits".to_string())?;
        Ok((n, e, s))
    }

    /// Check Q1 = floor(s^2 / n) and Q2 = floor((s^3 - Q1 * s * n) / n),
    /// the helper values EINIT uses to verify the signature.
    ///
    /// # Errors
    /// A sentence saying which one is wrong.
    pub fn check_q1_q2(&self) -> Result<(), String> {
        let (n, _, s) = self.numbers()?;
        let wide = 3072 * 3;
        let n_w = n.resize(wide);
        let s_w = s.resize(wide);
        let s2 = s_w.wrapping_mul(&s_w);
        let nz = NonZero::new(n_w)
            .into_option()
            .ok_or_else(|| "modulus is zero".to_string())?;
        let (q1, r1) = s2.div_rem(&nz);
        let q1_stored = BoxedUint::from_be_slice(&be(field(&self.raw, 1040, 384)), 3072)
            .map_err(|_| "Q1 is not 3072 bits".to_string())?;
        if q1 != q1_stored.resize(wide) {
            return Err("Q1 is not floor(signature^2 / modulus)".to_string());
        }
        // s^3 - q1*s*n = s * (s^2 - q1*n) = s * r1.
        let t = r1.wrapping_mul(&s_w);
        let (q2, _) = t.div_rem(&nz);
        let q2_stored = BoxedUint::from_be_slice(&be(field(&self.raw, 1424, 384)), 3072)
            .map_err(|_| "Q2 is not 3072 bits".to_string())?;
        if q2 != q2_stored.resize(wide) {
            return Err(
                "Q2 is not floor((signature^3 - Q1*signature*modulus) / modulus)".to_string(),
            );
        }
        Ok(())
    }

    /// The facts reported for this SIGSTRUCT, found in `source` at
    /// `offset`.
    #[must_use]
    pub fn facts(&self, source: &str, offset: u64) -> SigStructFacts {
        let attributes = self.attributes();
        let signature = Verification::of(self.verify());
        let q1_q2 = Verification::of(self.check_q1_q2());
        SigStructFacts {
            source: source.to_string(),
            offset,
            mrenclave: talos_cfg::hex(self.mrenclave()),
            mrsigner: talos_cfg::hex(&self.mrsigner()),
            isv_prod_id: self.isv_prod_id(),
            isv_svn: self.isv_svn(),
            attributes,
            attribute_mask: self.attribute_mask(),
            misc_select: le_u32(&self.raw, 900),
            misc_mask: le_u32(&self.raw, 904),
            vendor: le_u32(&self.raw, 16),
            date: format!("{:08x}", le_u32(&self.raw, 20)),
            exponent: self.exponent(),
            signature,
            q1_q2,
            flags: FLAG_NAMES
                .iter()
                .filter(|(bit, _)| attributes.flags & bit != 0)
                .map(|(_, n)| (*n).to_string())
                .collect(),
        }
    }
}

/// Little-endian bytes reversed to big-endian.
fn be(le: &[u8]) -> Vec<u8> {
    le.iter().rev().copied().collect()
}

/// The SDK metadata found in a `.note.sgxmeta` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Facts of the block used (the highest version).
    pub facts: SgxMetadataFacts,
    /// Its SIGSTRUCT.
    pub sigstruct: SigStruct,
    /// File offset of that SIGSTRUCT.
    pub sigstruct_offset: u64,
}

/// Parse the `.note.sgxmeta` section whose bytes are `section` (at file
/// offset `offset`, with `sh_addralign` `align`).
///
/// # Errors
/// A sentence naming what is malformed.
pub fn parse_note(section: &[u8], offset: u64, align: u64) -> Result<Metadata, String> {
    let namesz = le_u32(section, 0) as usize;
    let descsz = le_u32(section, 4) as usize;
    if section.len() < 12 {
        return Err(format!(
            "note header needs 12 bytes, the section has {}",
            section.len()
        ));
    }
    if namesz != NOTE_NAME.len() || section.get(12..12 + NOTE_NAME.len()) != Some(NOTE_NAME) {
        return Err("the note is not named \"sgx_metadata\"".to_string());
    }
    let desc_start = 12 + NOTE_NAME.len();
    let expected = desc_start
        .checked_add(descsz)
        .ok_or_else(|| "descsz overflows".to_string())?;
    let a = usize::try_from(align.max(1)).unwrap_or(1);
    let rounded = expected
        .checked_add(a - 1)
        .map(|v| v / a * a)
        .ok_or_else(|| "descsz overflows".to_string())?;
    if section.len() != rounded && section.len() != expected {
        return Err(format!(
            "section size {:#x} is not header + name + descsz {:#x} rounded to {align}",
            section.len(),
            expected
        ));
    }
    let desc = section
        .get(desc_start..expected)
        .ok_or_else(|| format!("descsz {descsz:#x} runs past the section"))?;
    let mut best: Option<(u64, usize)> = None;
    let mut blocks = 0u32;
    let mut pos = 0usize;
    while pos < desc.len() && blocks < MAX_BLOCKS {
        let block = desc.get(pos..).unwrap_or(&[]);
        if block.len() < 8 || le_u64(block, 0) != METADATA_MAGIC {
            break;
        }
        let size = le_u32(block, 16) as usize;
        if size == 0 {
            return Err(format!("metadata block at +{pos:#x} has size 0"));
        }
        if size < METADATA_CSS_OFFSET + SIGSTRUCT_SIZE || size > block.len() {
            return Err(format!(
                "metadata block at +{pos:#x} declares size {size:#x}; it must hold the SIGSTRUCT and fit the note ({:#x} left)",
                block.len()
            ));
        }
        blocks += 1;
        let version = le_u64(block, 8);
        if best.is_none_or(|(v, _)| version > v) {
            best = Some((version, pos));
        }
        pos = pos.saturating_add(size);
    }
    let (version, at) = best.ok_or_else(|| {
        format!("no metadata block (magic {METADATA_MAGIC:#018x}) at the start of the note")
    })?;
    let block = desc.get(at..).unwrap_or(&[]);
    let css = block.get(METADATA_CSS_OFFSET..).unwrap_or(&[]);
    let sigstruct = SigStruct::parse(css).map_err(|m| format!("SIGSTRUCT: {}", m.0))?;
    let sigstruct_offset = offset
        .saturating_add(desc_start as u64)
        .saturating_add(at as u64)
        .saturating_add(METADATA_CSS_OFFSET as u64);
    Ok(Metadata {
        facts: SgxMetadataFacts {
            version: format!("{}.{}", version >> 32, version & 0xffff_ffff),
            enclave_size: le_u64(block, 40),
            tcs_policy: le_u32(block, 20),
            ssa_frame_size: le_u32(block, 24),
            blocks,
        },
        sigstruct,
        sigstruct_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_constants_are_checked() {
        let mut raw = vec![0u8; SIGSTRUCT_SIZE];
        assert!(SigStruct::parse(&raw).is_err());
        raw[..12].copy_from_slice(&HEADER);
        raw[24..40].copy_from_slice(&HEADER2);
        let s = SigStruct::parse(&raw).unwrap();
        assert_eq!(s.exponent(), 0);
        assert!(s.verify().unwrap_err().contains("EXPONENT"));
        assert!(SigStruct::parse(&raw[..100]).is_err());
    }

    #[test]
    fn note_parser_rejects_without_panicking() {
        assert!(parse_note(&[], 0, 4).is_err());
        let mut n = Vec::new();
        n.extend_from_slice(&13u32.to_le_bytes());
        n.extend_from_slice(&u32::MAX.to_le_bytes());
        n.extend_from_slice(&1u32.to_le_bytes());
        n.extend_from_slice(NOTE_NAME);
        assert!(parse_note(&n, 0, 4).is_err());
        for cut in 0..n.len() {
            let _ = parse_note(&n[..cut], 0, 1);
        }
    }
}
