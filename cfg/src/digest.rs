//! Canonical digests of the graph (the format is specified in
//! `docs/digest.md`; change it only with a new context string).
//!
//! Every address is taken relative to the image base and every absolute
//! address inside an instruction is rewritten the same way, so the same code
//! linked or loaded at another address has the same digest, while any
//! changed instruction byte, block boundary or edge changes it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::arch::Decoder;
use crate::image::{Arch, Format, Image};
use crate::model::{Block, Edge};

/// Key-derivation context of function digests.
pub const FUNCTION_CONTEXT: &str = "talos 2026-11 cfg function v1";
/// Key-derivation context of whole-graph digests.
pub const GRAPH_CONTEXT: &str = "talos 2026-11 cfg graph v1";

/// A 32-byte BLAKE3 digest, shown as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Lowercase hex.
    #[must_use]
    pub fn to_hex(&self) -> String {
        crate::hex(&self.0)
    }

    /// Parse 64 hex digits.
    #[must_use]
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = (*pair.first()? as char).to_digit(16)?;
            let lo = (*pair.get(1)? as char).to_digit(16)?;
            *out.get_mut(i)? = u8::try_from(hi * 16 + lo).ok()?;
        }
        Some(Digest(out))
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

/// Streams the canonical encoding into a keyed BLAKE3 hasher.
struct Enc(blake3::Hasher);

impl Enc {
    fn new(context: &str) -> Self {
        Enc(blake3::Hasher::new_derive_key(context))
    }
    fn u8(&mut self, v: u8) {
        self.0.update(&[v]);
    }
    fn u32(&mut self, v: u32) {
        self.0.update(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.update(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.0.update(b);
    }
    fn finish(self) -> Digest {
        Digest(*self.0.finalize().as_bytes())
    }
}

/// Digest of one function. `blocks` sorted by address.
#[must_use]
pub fn function_digest(
    image: &Image<'_>,
    dec: &dyn Decoder,
    addr: u64,
    size: u64,
    blocks: &[Block],
) -> Digest {
    let base = image.base;
    let span = image.address_span();
    let mut e = Enc::new(FUNCTION_CONTEXT);
    e.u64(addr.wrapping_sub(base));
    e.u64(size);
    e.u32(u32::try_from(blocks.len()).unwrap_or(u32::MAX));
    let mut canon = Vec::new();
    for b in blocks {
        e.u64(b.addr.wrapping_sub(base));
        e.u64(b.size);
        e.u32(b.instructions);
        canon.clear();
        if base == 0 {
            // Rebasing against 0 rewrites every field to itself: the
            // canonical bytes are the raw bytes.
            if let Some(raw) = image.read(b.addr, b.size) {
                e.bytes(raw);
                e.u32(u32::try_from(b.succs.len()).unwrap_or(u32::MAX));
                for s in &b.succs {
                    edge(&mut e, s, base);
                }
                continue;
            }
        }
        let mut a = b.addr;
        for _ in 0..b.instructions {
            let Some(bytes) = image.bytes_from(a) else {
                break;
            };
            let len = dec.canonical_bytes(bytes, a, span, base, &mut canon);
            if len == 0 {
                break;
            }
            a = a.wrapping_add(len as u64);
        }
        e.bytes(&canon);
        e.u32(u32::try_from(b.succs.len()).unwrap_or(u32::MAX));
        for s in &b.succs {
            edge(&mut e, s, base);
        }
    }
    e.finish()
}

fn edge(e: &mut Enc, s: &Edge, base: u64) {
    e.u8(s.kind.tag());
    match s.addr {
        Some(a) => {
            e.u8(1);
            e.u64(a.wrapping_sub(base));
        }
        None => {
            e.u8(0);
            e.u64(0);
        }
    }
}

/// Digest of the whole graph from its function digests (sorted by address).
#[must_use]
pub fn graph_digest(
    format: Format,
    arch: Arch,
    base: u64,
    entry: Option<u64>,
    functions: &[(u64, Digest)],
) -> Digest {
    let mut e = Enc::new(GRAPH_CONTEXT);
    e.bytes(format.name().as_bytes());
    e.bytes(arch.name().as_bytes());
    match entry {
        Some(a) => {
            e.u8(1);
            e.u64(a.wrapping_sub(base));
        }
        None => {
            e.u8(0);
            e.u64(0);
        }
    }
    e.u64(functions.len() as u64);
    for (addr, d) in functions {
        e.u64(addr.wrapping_sub(base));
        e.0.update(&d.0);
    }
    e.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let d = Digest([0xab; 32]);
        assert_eq!(Digest::from_hex(&d.to_hex()), Some(d));
        assert_eq!(Digest::from_hex("zz"), None);
        assert_eq!(Digest::from_hex(&"g".repeat(64)), None);
    }
}
