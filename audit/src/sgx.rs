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
use crate::reader::{OutOfBounds, Reader};

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

/// A parsed SIGSTRUCT: every field the audit reports, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigStruct {
    /// HEADER through the reserved bytes before MODULUS (bytes 0..128):
    /// the first half of what is signed.
    head: [u8; 128],
    /// MODULE VENDOR.
    vendor: u32,
    /// DATE.
    date: u32,
    /// MODULUS (little-endian).
    modulus: [u8; 384],
    /// EXPONENT.
    exponent: u32,
    /// SIGNATURE (little-endian).
    signature: [u8; 384],
    /// MISCSELECT through ISVSVN (bytes 900..1028): the second half of what
    /// is signed.
    body: [u8; 128],
    /// MISCSELECT.
    misc_select: u32,
    /// MISCMASK.
    misc_mask: u32,
    /// ATTRIBUTES.
    attributes: Attributes,
    /// ATTRIBUTEMASK.
    attribute_mask: Attributes,
    /// ENCLAVEHASH.
    enclave_hash: [u8; 32],
    /// ISVPRODID.
    isv_prod_id: u16,
    /// ISVSVN.
    isv_svn: u16,
    /// Q1 (little-endian).
    q1: [u8; 384],
    /// Q2 (little-endian).
    q2: [u8; 384],
}

/// What is wrong with a SIGSTRUCT's fixed fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl From<OutOfBounds> for Malformed {
    fn from(e: OutOfBounds) -> Self {
        Malformed(e.to_string())
    }
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
        let r = Reader::le(raw);
        let header: [u8; 12] = r.array(0, "HEADER")?;
        if header != HEADER {
            return Err(Malformed(format!(
                "HEADER is {}, expected {}",
                talos_cfg::hex(&header),
                talos_cfg::hex(&HEADER)
            )));
        }
        let header2: [u8; 16] = r.array(24, "HEADER2")?;
        if header2 != HEADER2 {
            return Err(Malformed(format!(
                "HEADER2 is {}, expected {}",
                talos_cfg::hex(&header2),
                talos_cfg::hex(&HEADER2)
            )));
        }
        let attributes = |at: u64, what| -> Result<Attributes, OutOfBounds> {
            Ok(Attributes {
                flags: r.u64(at, what)?,
                xfrm: r.u64(at + 8, what)?,
            })
        };
        Ok(SigStruct {
            head: r.array(0, "HEADER")?,
            vendor: r.u32(16, "VENDOR")?,
            date: r.u32(20, "DATE")?,
            modulus: r.array(128, "MODULUS")?,
            exponent: r.u32(512, "EXPONENT")?,
            signature: r.array(516, "SIGNATURE")?,
            body: r.array(900, "BODY")?,
            misc_select: r.u32(900, "MISCSELECT")?,
            misc_mask: r.u32(904, "MISCMASK")?,
            attributes: attributes(928, "ATTRIBUTES")?,
            attribute_mask: attributes(944, "ATTRIBUTEMASK")?,
            enclave_hash: r.array(960, "ENCLAVEHASH")?,
            isv_prod_id: r.u16(1024, "ISVPRODID")?,
            isv_svn: r.u16(1026, "ISVSVN")?,
            q1: r.array(1040, "Q1")?,
            q2: r.array(1424, "Q2")?,
        })
    }

    /// MODULUS as stored (little-endian, 384 bytes).
    #[must_use]
    pub fn modulus(&self) -> &[u8] {
        &self.modulus
    }

    /// SIGNATURE as stored (little-endian).
    #[must_use]
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// EXPONENT.
    #[must_use]
    pub fn exponent(&self) -> u32 {
        self.exponent
    }

    /// ATTRIBUTES.
    #[must_use]
    pub fn attributes(&self) -> Attributes {
        self.attributes
    }

    /// ATTRIBUTEMASK.
    #[must_use]
    pub fn attribute_mask(&self) -> Attributes {
        self.attribute_mask
    }

    /// ENCLAVEHASH (MRENCLAVE).
    #[must_use]
    pub fn mrenclave(&self) -> &[u8] {
        &self.enclave_hash
    }

    /// ISVPRODID.
    #[must_use]
    pub fn isv_prod_id(&self) -> u16 {
        self.isv_prod_id
    }

    /// ISVSVN.
    #[must_use]
    pub fn isv_svn(&self) -> u16 {
        self.isv_svn
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
        let mut m = self.head.to_vec();
        m.extend_from_slice(&self.body);
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
        let q1_stored = BoxedUint::from_be_slice(&be(&self.q1), 3072)
            .map_err(|_| "Q1 is not 3072 bits".to_string())?;
        if q1 != q1_stored.resize(wide) {
            return Err("Q1 is not floor(signature^2 / modulus)".to_string());
        }
        // s^3 - q1*s*n = s * (s^2 - q1*n) = s * r1.
        let t = r1.wrapping_mul(&s_w);
        let (q2, _) = t.div_rem(&nz);
        let q2_stored = BoxedUint::from_be_slice(&be(&self.q2), 3072)
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
            misc_select: self.misc_select,
            misc_mask: self.misc_mask,
            vendor: self.vendor,
            date: format!("{:08x}", self.date),
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

/// A metadata block of the note: its version and where it starts in the
/// note's descriptor.
#[derive(Debug, Clone, Copy)]
struct Block {
    version: u64,
    at: u64,
}

/// Parse the `.note.sgxmeta` section whose bytes are `section` (at file
/// offset `offset`, with `sh_addralign` `align`).
///
/// The SDK writes the metadata right after the 13-byte note name, without
/// the padding to 4 bytes the ELF note format asks for (readelf calls the
/// note invalid), so goblin's note iterator, which pads, cannot read it:
/// this walks it with the checked reader instead.
///
/// # Errors
/// A sentence naming what is malformed.
pub fn parse_note(section: &[u8], offset: u64, align: u64) -> Result<Metadata, String> {
    let r = Reader::le(section);
    if r.len() < 12 {
        return Err(format!(
            "note header needs 12 bytes, the section has {}",
            section.len()
        ));
    }
    let err = |e: OutOfBounds| e.to_string();
    let namesz = r.u32(0, "note namesz").map_err(err)?;
    let descsz = u64::from(r.u32(4, "note descsz").map_err(err)?);
    let name_len = NOTE_NAME.len() as u64;
    if u64::from(namesz) != name_len || r.slice(12, name_len, "note name").ok() != Some(NOTE_NAME) {
        return Err("the note is not named \"sgx_metadata\"".to_string());
    }
    let desc_start = 12 + name_len;
    let expected = desc_start + descsz;
    let rounded = expected.checked_next_multiple_of(align.max(1));
    if Some(r.len()) != rounded && r.len() != expected {
        return Err(format!(
            "section size {:#x} is not header + name + descsz {:#x} rounded to {align}",
            section.len(),
            expected
        ));
    }
    let desc = r
        .sub(desc_start, descsz, "note descriptor")
        .map_err(|_| format!("descsz {descsz:#x} runs past the section"))?;
    let mut best: Option<Block> = None;
    let mut blocks = 0u32;
    let mut pos = 0u64;
    while pos < desc.len() && blocks < MAX_BLOCKS {
        let block = desc.tail(pos, "metadata block").map_err(err)?;
        if block.u64(0, "metadata magic").ok() != Some(METADATA_MAGIC) {
            break;
        }
        let size = u64::from(
            block
                .u32(16, "metadata size")
                .map_err(|e| format!("metadata block at +{pos:#x}: {e}"))?,
        );
        if size == 0 {
            return Err(format!("metadata block at +{pos:#x} has size 0"));
        }
        if size < (METADATA_CSS_OFFSET + SIGSTRUCT_SIZE) as u64 || size > block.len() {
            return Err(format!(
                "metadata block at +{pos:#x} declares size {size:#x}; it must hold the SIGSTRUCT and fit the note ({:#x} left)",
                block.len()
            ));
        }
        blocks += 1;
        let version = block.u64(8, "metadata version").map_err(err)?;
        if best.is_none_or(|b| version > b.version) {
            best = Some(Block { version, at: pos });
        }
        pos += size;
    }
    let Block { version, at } = best.ok_or_else(|| {
        format!("no metadata block (magic {METADATA_MAGIC:#018x}) at the start of the note")
    })?;
    // The size check above keeps every field read below inside the block.
    let block = desc.tail(at, "metadata block").map_err(err)?;
    let css = block
        .tail(METADATA_CSS_OFFSET as u64, "SIGSTRUCT")
        .map_err(err)?;
    let sigstruct = SigStruct::parse(css.bytes()).map_err(|m| format!("SIGSTRUCT: {}", m.0))?;
    let sigstruct_offset = offset
        .checked_add(desc_start + at + METADATA_CSS_OFFSET as u64)
        .ok_or_else(|| format!("the SIGSTRUCT's file offset overflows (section at {offset:#x})"))?;
    Ok(Metadata {
        facts: SgxMetadataFacts {
            version: format!("{}.{}", version >> 32, version & 0xffff_ffff),
            enclave_size: block.u64(40, "enclave size").map_err(err)?,
            tcs_policy: block.u32(20, "TCS policy").map_err(err)?,
            ssa_frame_size: block.u32(24, "SSA frame size").map_err(err)?,
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
