//! Canonical digests of the graph (the format is specified in
//! `docs/digest.md`; change it only with a new context string).
//!
//! Every address is taken relative to the image base and every absolute
//! address inside an instruction is rewritten the same way, so the same code
//! linked or loaded at another address has the same digest, while any
//! changed instruction byte, block boundary or edge changes it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::arch::Canonicalise;
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
        // On the stack: a saved graph has two digests per function.
        let mut buf = [0u8; 64];
        for (pair, b) in buf.chunks_exact_mut(2).zip(self.0) {
            for (dst, c) in pair.iter_mut().zip(crate::hex_digits(b)) {
                *dst = c as u8;
            }
        }
        s.serialize_str(std::str::from_utf8(&buf).unwrap_or_default())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

/// Streams the canonical encoding into a keyed BLAKE3 hasher.
struct Enc {
    hasher: blake3::Hasher,
    /// Encoded bytes not hashed yet: BLAKE3 hashes one large update much
    /// faster than many small ones, and the digest is of the byte stream
    /// whatever its chunking.
    buf: Vec<u8>,
}

impl Enc {
    const FLUSH: usize = 1 << 14;

    fn new(context: &str) -> Self {
        // Most encodings are one basic block's few dozen bytes: a buffer of
        // the flush threshold for each of a large program's million blocks
        // only cost page faults.
        Enc {
            hasher: blake3::Hasher::new_derive_key(context),
            buf: Vec::with_capacity(256),
        }
    }
    /// Start a new digest of the same context. Keeping one encoder per
    /// context for a run of digests spares deriving the key from the
    /// context and moving the (2 KiB) hasher for each: a tenth of the time
    /// of the block digests.
    fn restart(&mut self) {
        self.hasher.reset();
        self.buf.clear();
    }
    // Inlined: the fixed-size writes then copy without a call to memcpy.
    #[inline]
    fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= Self::FLUSH {
            self.hasher.update(&self.buf);
            self.buf.clear();
        }
    }
    #[inline]
    fn u8(&mut self, v: u8) {
        self.raw(&[v]);
    }
    #[inline]
    fn u32(&mut self, v: u32) {
        self.raw(&v.to_le_bytes());
    }
    #[inline]
    fn u64(&mut self, v: u64) {
        self.raw(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.raw(b);
    }
    fn digest(&mut self, d: &Digest) {
        self.raw(&d.0);
    }
    /// An address that may be absent, relative to `base`.
    fn rebased(&mut self, a: Option<u64>, base: u64) {
        match a {
            Some(a) => {
                self.u8(1);
                self.u64(a.wrapping_sub(base));
            }
            None => {
                self.u8(0);
                self.u64(0);
            }
        }
    }
    fn finish(mut self) -> Digest {
        self.digest_so_far()
    }
    /// The digest of what was encoded since [`Enc::restart`].
    fn digest_so_far(&mut self) -> Digest {
        self.hasher.update(&self.buf);
        self.buf.clear();
        Digest(*self.hasher.finalize().as_bytes())
    }
}

/// Digest of one function. `blocks` sorted by address.
#[must_use]
pub fn function_digest(
    image: &Image<'_>,
    dec: &dyn Canonicalise,
    addr: u64,
    size: u64,
    blocks: &[Block],
) -> Digest {
    FunctionDigester::new().digest(image, dec, addr, size, blocks)
}

/// [`function_digest`] of one function after another, reusing the encoder
/// and buffers (one per thread).
pub(crate) struct FunctionDigester {
    e: Enc,
    canon: Vec<u8>,
}

impl FunctionDigester {
    pub(crate) fn new() -> Self {
        FunctionDigester {
            e: Enc::new(FUNCTION_CONTEXT),
            canon: Vec::new(),
        }
    }

    /// [`function_digest`].
    pub(crate) fn digest(
        &mut self,
        image: &Image<'_>,
        dec: &dyn Canonicalise,
        addr: u64,
        size: u64,
        blocks: &[Block],
    ) -> Digest {
        let n = blocks.len();
        let mut fe = FunctionEnc::new(image, dec, addr, size, n, &mut self.e, &mut self.canon);
        for b in blocks {
            fe.block(b, None);
        }
        fe.finish()
    }
}

/// The encoding of one function digest, fed block by block.
struct FunctionEnc<'a, 's> {
    image: &'a Image<'a>,
    dec: &'a dyn Canonicalise,
    span: (u64, u64),
    /// An encoder of [`FUNCTION_CONTEXT`].
    e: &'s mut Enc,
    /// Canonical bytes of the current block.
    canon: &'s mut Vec<u8>,
}

impl<'a, 's> FunctionEnc<'a, 's> {
    /// The encoding of the function at `addr` into `e` (a
    /// [`FUNCTION_CONTEXT`] encoder), with `canon` for the canonical bytes.
    fn new(
        image: &'a Image<'a>,
        dec: &'a dyn Canonicalise,
        addr: u64,
        size: u64,
        blocks: usize,
        e: &'s mut Enc,
        canon: &'s mut Vec<u8>,
    ) -> Self {
        e.restart();
        e.u64(addr.wrapping_sub(image.base));
        e.u64(size);
        e.u32(u32::try_from(blocks).unwrap_or(u32::MAX));
        FunctionEnc {
            image,
            dec,
            span: image.address_span(),
            e,
            canon,
        }
    }

    fn finish(self) -> Digest {
        self.e.digest_so_far()
    }

    /// Encode block `b`. With `pi` (the context and `b`'s function), also
    /// return `b`'s position-independent block digest, computed from the
    /// same decode of its instructions where the instruction set allows.
    fn block(
        &mut self,
        b: &Block,
        mut pi: Option<(&PiCtx<'_>, &Scope<'_>, &mut BlockScratch)>,
    ) -> Option<Digest> {
        let base = self.image.base;
        let e = &mut *self.e;
        e.u64(b.addr.wrapping_sub(base));
        e.u64(b.size);
        e.u32(b.instructions);
        let mut pi_digest = None;
        match self.image.read(b.addr, b.size) {
            // Rebasing against 0 rewrites every field to itself: the
            // canonical bytes are the raw bytes.
            Some(raw) if base == 0 => e.bytes(raw),
            Some(bytes) => {
                self.canon.clear();
                let mut done = false;
                if let Some((ctx, f, scratch)) = pi.as_mut() {
                    let (d, canonical) = ctx.block(f, b, Some(&mut *self.canon), scratch);
                    pi_digest = Some(d);
                    done = canonical;
                }
                if !done {
                    self.canon.clear();
                    self.dec.canonical_block(
                        bytes,
                        b.addr,
                        b.instructions,
                        self.span,
                        base,
                        self.canon,
                    );
                }
                e.bytes(self.canon);
            }
            None => e.bytes(&[]),
        }
        e.u32(u32::try_from(b.succs.len()).unwrap_or(u32::MAX));
        for s in &b.succs {
            edge(e, s, base);
        }
        match (pi_digest, pi) {
            (Some(d), _) => Some(d),
            (None, Some((ctx, f, scratch))) => Some(ctx.block(f, b, None, scratch).0),
            (None, None) => None,
        }
    }
}

fn edge(e: &mut Enc, s: &Edge, base: u64) {
    e.u8(s.kind.tag());
    e.rebased(s.addr, base);
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
    e.rebased(entry, base);
    e.u64(functions.len() as u64);
    for (addr, d) in functions {
        e.u64(addr.wrapping_sub(base));
        e.digest(d);
    }
    e.finish()
}

mod pi;

pub(crate) use pi::function_and_pi_digests;
use pi::{BlockScratch, PiCtx, Scope};
pub use pi::{
    PI_BLOCK_CONTEXT, PI_FUNCTION_CONTEXT, PI_LOCAL_CONTEXT, PiDigest, position_independent,
    position_independent_functions,
};

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
