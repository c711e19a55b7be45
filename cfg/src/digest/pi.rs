//! Position-independent digests (used by `talos diff`; specified in
//! docs/diff.md). Additive: the function and graph digests of the parent
//! module are unchanged.

use super::{Digest, Enc, FunctionDigester, FunctionEnc};
use crate::arch::Decode;
use crate::image::{Arch, Image};
use crate::model::Block;

/// Key-derivation context of position-independent block digests.
pub const PI_BLOCK_CONTEXT: &str = "talos 2026-11 cfg pi-block v1";
/// Key-derivation context of position-independent local function digests.
pub const PI_LOCAL_CONTEXT: &str = "talos 2026-11 cfg pi-local v1";
/// Key-derivation context of position-independent function digests.
pub const PI_FUNCTION_CONTEXT: &str = "talos 2026-11 cfg pi-function v1";

/// Digests of one function that do not depend on where the function, its
/// callees or the data it references were placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiDigest {
    /// Digest of the whole function, callees named (or digested) one level
    /// deep.
    pub function: Digest,
    /// Digest of each basic block, in the order of `Function::blocks`.
    pub blocks: Vec<Digest>,
}

/// Position-independent digests of every function of `cfg` (recovered from
/// `image`), in the order of `cfg.functions`.
///
/// Every address an instruction encodes (pc-relative displacements, branch
/// targets, absolute addresses inside the image) is masked out of the
/// instruction bytes and replaced by what it points at: an offset inside
/// the same function, the callee's name (or, unnamed, its local digest), or
/// the name of the section it lies in.
#[must_use]
pub fn position_independent(image: &Image<'_>, cfg: &crate::model::Cfg) -> Vec<PiDigest> {
    use rayon::prelude::*;
    let Ok(dec) = crate::arch::decoder_for(image) else {
        return cfg
            .functions
            .iter()
            .map(|f| PiDigest {
                function: Digest::default(),
                blocks: vec![Digest::default(); f.blocks.len()],
            })
            .collect();
    };
    let ctx = PiCtx::new(image, &cfg.functions, dec.as_ref());
    // Phase 1: block digests and a local digest per function (callees by
    // name, unnamed callees as "anonymous").
    let mut local: Vec<Local> = cfg
        .functions
        .par_iter()
        .map_init(Scratch::new, |s, f| {
            ctx.local(f, true, None, &mut s.local, &mut s.blocks)
        })
        .collect();
    // Phase 2: fold in the local digest of every unnamed callee.
    let functions = ctx.functions_from_locals(&local);
    functions
        .into_iter()
        .zip(local.iter_mut())
        .map(|(function, l)| PiDigest {
            function,
            blocks: std::mem::take(&mut l.blocks),
        })
        .collect()
}

/// The position-independent function digests of [`position_independent`]
/// alone, without keeping a digest per block (what a saved `talos.cfg/1`
/// document records: a whole-program graph has millions of blocks).
#[must_use]
pub fn position_independent_functions(image: &Image<'_>, cfg: &crate::model::Cfg) -> Vec<Digest> {
    use rayon::prelude::*;
    let Ok(dec) = crate::arch::decoder_for(image) else {
        return vec![Digest::default(); cfg.functions.len()];
    };
    let ctx = PiCtx::new(image, &cfg.functions, dec.as_ref());
    let locals: Vec<Local> = cfg
        .functions
        .par_iter()
        .map_init(Scratch::new, |s, f| {
            ctx.local(f, false, None, &mut s.local, &mut s.blocks)
        })
        .collect();
    ctx.functions_from_locals(&locals)
}

/// The function digest ([`function_digest`]) and the position-independent
/// function digest ([`position_independent_functions`]) of every function
/// of `functions` (sorted by address, named), in their order: one decode of
/// each instruction serves both where the instruction set allows.
pub(crate) fn function_and_pi_digests(
    image: &Image<'_>,
    dec: &dyn crate::arch::Isa,
    functions: &[crate::model::Function],
) -> (Vec<Digest>, Vec<Digest>) {
    use rayon::prelude::*;
    let ctx = PiCtx::new(image, functions, dec);
    // Phase 1, with the function digests. Most callees have a name: a
    // function calling only those is done in this pass.
    let first: Vec<(Digest, Local, Option<Digest>)> = functions
        .par_iter()
        .map_init(Scratch::new, |s, f| {
            let Scratch {
                function: FunctionDigester { e, canon },
                local,
                blocks,
            } = s;
            let n = f.blocks.len();
            let mut fe = FunctionEnc::new(image, dec, f.addr, f.size, n, e, canon);
            let local = ctx.local(f, false, Some(&mut fe), local, blocks);
            let digest = fe.finish();
            let done = (!ctx.has_anonymous_callee(&local.callees))
                .then(|| ctx.function(local.digest, &local.callees, &[]));
            (digest, local, done)
        })
        .collect();
    // Phase 2: the functions that call unnamed ones.
    let locals: Vec<Digest> = first.iter().map(|(_, l, _)| l.digest).collect();
    first
        .into_par_iter()
        .map(|(d, l, done)| {
            let pi = done.unwrap_or_else(|| ctx.function(l.digest, &l.callees, &locals));
            (d, pi)
        })
        .unzip()
}

/// A function being digested, with the bounds of its blocks: most
/// addresses its instructions name lie outside them, and need no search of
/// its blocks.
pub(super) struct Scope<'f> {
    f: &'f crate::model::Function,
    /// The first block's address, one past the last byte of any block.
    lo: u64,
    hi: u64,
    /// The last function looked up, (address, index): a call's target is
    /// asked for its instruction's token, its edge's token and the callee
    /// list, one after the other.
    last_callee: std::cell::Cell<Option<(u64, Option<usize>)>>,
}

impl<'f> Scope<'f> {
    fn new(f: &'f crate::model::Function) -> Self {
        let lo = f.blocks.first().map_or(0, |b| b.addr);
        let hi = f.blocks.iter().map(Block::end).max().unwrap_or(0);
        Scope {
            f,
            lo,
            hi,
            last_callee: std::cell::Cell::new(None),
        }
    }

    /// Whether `t` is the function's entry or inside one of its blocks.
    fn intra(&self, t: u64) -> bool {
        t == self.f.addr || (t >= self.lo && t < self.hi && self.f.block_containing(t).is_some())
    }
}

/// Encoders and buffers reused from one function to the next (one set
/// per thread): a whole program has millions of blocks, and allocating and
/// growing the buffers of each, deriving the key of each digest and moving
/// its hasher was a third of the time of the digests.
struct Scratch {
    /// The function digests' encoder and canonical bytes.
    function: FunctionDigester,
    /// The encoder of local digests.
    local: Enc,
    blocks: BlockScratch,
}

/// What [`PiCtx::block`] reuses.
pub(super) struct BlockScratch {
    /// The encoder of block digests.
    enc: Enc,
    /// One masked instruction, and the addresses it named.
    insn: Vec<u8>,
    targets: Vec<u64>,
}

impl Scratch {
    fn new() -> Self {
        Scratch {
            function: FunctionDigester::new(),
            local: Enc::new(PI_LOCAL_CONTEXT),
            blocks: BlockScratch {
                enc: Enc::new(PI_BLOCK_CONTEXT),
                insn: Vec::new(),
                targets: Vec::new(),
            },
        }
    }
}

/// What the first pass over a function gives.
struct Local {
    /// The local digest.
    digest: Digest,
    /// The block digests, when asked for.
    blocks: Vec<Digest>,
    /// The target of each call and tail-call edge, in block and edge order,
    /// as an index into the functions (`None`: no function starts there).
    callees: Vec<Option<usize>>,
}

pub(super) struct PiCtx<'a> {
    image: &'a Image<'a>,
    /// Every function of the graph, sorted by address.
    functions: &'a [crate::model::Function],
    /// Their addresses: searched for every address an instruction names,
    /// a dense array misses the cache far less than the functions.
    addrs: Vec<u64>,
    dec: &'a dyn Decode,
    span: (u64, u64),
    /// Allocated sections as (start, end, index into `image.sections`),
    /// sorted, for the section token of an address.
    sections: Vec<(u64, u64, usize)>,
}

/// The allocated, non-empty sections of `image` by address.
fn section_index(image: &Image<'_>) -> Vec<(u64, u64, usize)> {
    let mut v: Vec<(u64, u64, usize)> = image
        .sections
        .iter()
        .enumerate()
        .filter(|(_, s)| s.alloc && s.size > 0)
        .map(|(i, s)| (s.addr, s.end(), i))
        .collect();
    // Header order decides between overlapping sections, as `find` did.
    v.sort_by_key(|&(a, e, i)| (a, i, e));
    v
}

/// Token kinds of a masked address.
const TOK_NONE: u8 = 0;
const TOK_INTRA: u8 = 1;
const TOK_FUNCTION: u8 = 2;
const TOK_SECTION: u8 = 3;
const TOK_OUTSIDE: u8 = 4;

impl<'a> PiCtx<'a> {
    fn new(
        image: &'a Image<'a>,
        functions: &'a [crate::model::Function],
        dec: &'a dyn Decode,
    ) -> Self {
        PiCtx {
            image,
            functions,
            addrs: functions.iter().map(|f| f.addr).collect(),
            dec,
            span: image.address_span(),
            sections: section_index(image),
        }
    }

    /// The index of the function that starts at `addr`.
    fn function_index(&self, addr: u64) -> Option<usize> {
        self.addrs.binary_search(&addr).ok()
    }

    /// [`PiCtx::function_index`] of an address named in the function of
    /// `scope`.
    fn callee_index(&self, scope: &Scope<'_>, addr: u64) -> Option<usize> {
        if let Some((last, idx)) = scope.last_callee.get()
            && last == addr
        {
            return idx;
        }
        let idx = self.function_index(addr);
        scope.last_callee.set(Some((addr, idx)));
        idx
    }

    /// The local digest of `f` (callees by name, unnamed callees as
    /// "anonymous"), its block digests when `keep_blocks`, and its callees.
    /// `fe`, when given, is fed `f`'s blocks for its function digest on the
    /// way.
    fn local(
        &self,
        f: &crate::model::Function,
        keep_blocks: bool,
        mut fe: Option<&mut FunctionEnc<'_, '_>>,
        e: &mut Enc,
        scratch: &mut BlockScratch,
    ) -> Local {
        let mut blocks = Vec::new();
        let mut callees = Vec::new();
        let scope = Scope::new(f);
        e.restart();
        e.u64(f.size);
        e.u32(u32::try_from(f.blocks.len()).unwrap_or(u32::MAX));
        for b in &f.blocks {
            let d = match fe.as_deref_mut() {
                Some(fe) => fe
                    .block(b, Some((self, &scope, &mut *scratch)))
                    .unwrap_or_default(),
                None => self.block(&scope, b, None, scratch).0,
            };
            if keep_blocks {
                blocks.push(d);
            }
            e.u64(b.addr.wrapping_sub(f.addr));
            e.digest(&d);
            for s in &b.succs {
                e.u8(s.kind.tag());
                match s.addr {
                    Some(t) if scope.intra(t) => {
                        e.u8(1);
                        e.u64(t.wrapping_sub(f.addr));
                    }
                    _ => e.u8(0),
                }
                if let (crate::model::EdgeKind::Call | crate::model::EdgeKind::TailCall, Some(t)) =
                    (s.kind, s.addr)
                {
                    callees.push(self.callee_index(&scope, t));
                }
            }
        }
        Local {
            digest: e.digest_so_far(),
            blocks,
            callees,
        }
    }

    /// Whether a callee of `callees` is unnamed: its function digest needs
    /// the callee's local digest.
    fn has_anonymous_callee(&self, callees: &[Option<usize>]) -> bool {
        callees
            .iter()
            .flatten()
            .any(|&i| self.functions.get(i).is_some_and(|c| c.name.is_none()))
    }

    /// Phase 2: the function digest of every function from the local
    /// digests of all (in the order of `self.functions`).
    fn functions_from_locals(&self, locals: &[Local]) -> Vec<Digest> {
        use rayon::prelude::*;
        let digests: Vec<Digest> = locals.iter().map(|l| l.digest).collect();
        locals
            .par_iter()
            .map(|l| self.function(l.digest, &l.callees, &digests))
            .collect()
    }

    /// The function digest of a function from its local digest `loc`,
    /// folding in the name or local digest (`locals`, in `self.functions`
    /// order) of every callee (`callees`, as [`Local::callees`]).
    fn function(&self, loc: Digest, callees: &[Option<usize>], locals: &[Digest]) -> Digest {
        let mut e = Enc::new(PI_FUNCTION_CONTEXT);
        e.digest(&loc);
        for &i in callees {
            match i.and_then(|i| Some((i, self.functions.get(i)?))) {
                Some((_, callee)) if callee.name.is_some() => {
                    e.u8(1);
                    e.bytes(callee.name.as_deref().unwrap_or("").as_bytes());
                }
                Some((i, _)) => match locals.get(i) {
                    Some(callee_local) => {
                        e.u8(2);
                        e.digest(callee_local);
                    }
                    None => e.u8(3),
                },
                None => e.u8(3),
            }
        }
        e.finish()
    }

    /// The digest of block `b` of `f`. With `canon`, the x86 walk also
    /// appends the canonical bytes of the block
    /// ([`crate::arch::Canonicalise`], base `self.image.base`) from the same
    /// decode and says so: the flag is false when `canon` was left for the
    /// caller to fill.
    pub(super) fn block(
        &self,
        f: &Scope<'_>,
        b: &Block,
        canon: Option<&mut Vec<u8>>,
        scratch: &mut BlockScratch,
    ) -> (Digest, bool) {
        // The block's own offset and the offsets of intra-function targets
        // are left out: they shift when code before them grows, and the
        // local function digest covers them.
        let BlockScratch {
            enc: e,
            insn,
            targets,
        } = scratch;
        e.restart();
        e.u64(b.size);
        e.u32(b.instructions);
        let x86 = matches!(self.image.arch, Arch::X86 | Arch::X86_64);
        let canonical = if x86 {
            self.x86_instructions(e, f, b, canon, insn, targets)
        } else {
            self.instructions(e, f, b, insn, targets);
            false
        };
        e.u32(u32::try_from(b.succs.len()).unwrap_or(u32::MAX));
        for s in &b.succs {
            e.u8(s.kind.tag());
            match s.addr {
                Some(t) => self.token(e, f, t),
                None => e.u8(TOK_NONE),
            }
        }
        (e.digest_so_far(), canonical)
    }

    /// Encode the masked instructions of `b` (RISC-V, AArch64) into `e`.
    fn instructions(
        &self,
        e: &mut Enc,
        f: &Scope<'_>,
        b: &Block,
        buf: &mut Vec<u8>,
        targets: &mut Vec<u64>,
    ) {
        let mut a = b.addr;
        let mut prev: Option<crate::arch::Insn> = None;
        for _ in 0..b.instructions {
            let Some(bytes) = self.image.bytes_from(a) else {
                break;
            };
            buf.clear();
            targets.clear();
            let Some(insn) = self.dec.decode(bytes, a, prev.as_ref()) else {
                break;
            };
            let len = usize::from(insn.len);
            let Some(raw) = bytes.get(..len) else { break };
            buf.extend_from_slice(raw);
            self.mask(buf, &insn, prev.as_ref(), targets);
            prev = Some(insn);
            e.bytes(buf);
            for &t in targets.iter() {
                self.token(e, f, t);
            }
            a = a.wrapping_add(len as u64);
        }
    }

    /// Encode the masked instructions of `b` (x86) into `e`; with `canon`,
    /// append the block's canonical bytes to it too and return true, unless
    /// the block's bytes do not lie in one segment (then false, `canon`
    /// untouched).
    ///
    /// Each instruction at `a` is decoded from `image.bytes_from(a)`. While
    /// `a` is inside the block and the whole block maps to the segment of
    /// its first byte, that is the same bytes as one decoder over the
    /// block's segment, at the offset of `a`: one decoder serves the run.
    /// The canonical bytes are those of the instructions that lie wholly
    /// in the block, up to the first that does not (as
    /// [`crate::arch::Canonicalise::canonical_block`] over the block's
    /// bytes gives).
    fn x86_instructions(
        &self,
        e: &mut Enc,
        f: &Scope<'_>,
        b: &Block,
        mut canon: Option<&mut Vec<u8>>,
        buf: &mut Vec<u8>,
        targets: &mut Vec<u64>,
    ) -> bool {
        use iced_x86::{Decoder as Iced, DecoderOptions};
        let bitness = if self.image.arch == Arch::X86 { 32 } else { 64 };
        let end = b.addr.wrapping_add(b.size);
        let one_segment = b.size > 0
            && end > b.addr
            && match (
                self.image.segment_containing(b.addr),
                self.image.segment_containing(end.wrapping_sub(1)),
            ) {
                (Some(s), Some(t)) => std::ptr::eq(s, t),
                _ => false,
            };
        let window = if one_segment {
            self.image.bytes_from(b.addr)
        } else {
            None
        };
        if window.is_none() && canon.is_some() {
            canon = None;
        }
        let canonical = canon.is_some();
        let mut run = window.map(|w| (w, Iced::with_ip(bitness, w, b.addr, DecoderOptions::NONE)));
        let block_len = usize::try_from(b.size).unwrap_or(usize::MAX);
        let span = self.span;
        let base = self.image.base;
        let mut a = b.addr;
        let mut off = 0usize;
        for _ in 0..b.instructions {
            buf.clear();
            targets.clear();
            let len = match run.as_mut() {
                Some((w, d)) if off < block_len => {
                    let ins = d.decode();
                    if ins.is_invalid() {
                        break;
                    }
                    let len = ins.len();
                    let Some(raw) = off.checked_add(len).and_then(|e| w.get(off..e)) else {
                        break;
                    };
                    let offsets = d.get_constant_offsets(&ins);
                    self.mask_x86(buf, &ins, &offsets, raw, targets);
                    if let Some(out) = canon.as_deref_mut() {
                        if off.saturating_add(len) <= block_len {
                            crate::arch::x86::canonical_insn(
                                bitness, &ins, &offsets, raw, span, base, out,
                            );
                        } else {
                            canon = None;
                        }
                    }
                    len
                }
                _ => {
                    // Past the block (a malformed block): one decoder per
                    // instruction, from wherever its address maps.
                    canon = None;
                    let Some(bytes) = self.image.bytes_from(a) else {
                        break;
                    };
                    let window = bytes.get(..bytes.len().min(15)).unwrap_or(bytes);
                    let mut d = Iced::with_ip(bitness, window, a, DecoderOptions::NONE);
                    let ins = d.decode();
                    if ins.is_invalid() {
                        break;
                    }
                    let Some(raw) = window.get(..ins.len()) else {
                        break;
                    };
                    let offsets = d.get_constant_offsets(&ins);
                    self.mask_x86(buf, &ins, &offsets, raw, targets);
                    ins.len()
                }
            };
            e.bytes(buf);
            for &t in targets.iter() {
                self.token(e, f, t);
            }
            a = a.wrapping_add(len as u64);
            off = off.saturating_add(len);
        }
        canonical
    }

    /// Write what address `t` denotes, independently of where it is.
    fn token(&self, e: &mut Enc, f: &Scope<'_>, t: u64) {
        if f.intra(t) {
            e.u8(TOK_INTRA);
            return;
        }
        if let Some(callee) = self.callee_index(f, t).and_then(|i| self.functions.get(i)) {
            e.u8(TOK_FUNCTION);
            e.bytes(callee.name.as_deref().unwrap_or("").as_bytes());
            return;
        }
        // The first section in header order that holds `t` (at most a few
        // sections overlap, all starting at or before `t`).
        let upto = self.sections.partition_point(|&(a, _, _)| a <= t);
        let hit = self
            .sections
            .get(..upto)
            .unwrap_or(&[])
            .iter()
            .filter(|&&(_, e, _)| t < e)
            .map(|&(_, _, i)| i)
            .min()
            .and_then(|i| self.image.sections.get(i));
        if let Some(s) = hit {
            e.u8(TOK_SECTION);
            e.bytes(s.name.as_bytes());
            return;
        }
        e.u8(TOK_OUTSIDE);
    }

    /// Zero the address fields of the (RISC-V or AArch64) instruction in
    /// `buf`; push the addresses they encoded to `targets`.
    fn mask(
        &self,
        buf: &mut [u8],
        insn: &crate::arch::Insn,
        prev: Option<&crate::arch::Insn>,
        targets: &mut Vec<u64>,
    ) {
        match self.image.arch {
            Arch::X86 | Arch::X86_64 => {}
            Arch::Riscv64 => mask_riscv(buf, insn, self.image.kind, targets),
            Arch::Aarch64 => mask_aarch64(buf, insn, prev, targets),
        }
    }

    /// Append the bytes `raw` of the decoded x86 instruction `ins` (field
    /// offsets `offs`) to `buf` with the address fields zeroed, and push
    /// the addresses they encoded to `targets`.
    fn mask_x86(
        &self,
        buf: &mut Vec<u8>,
        ins: &iced_x86::Instruction,
        offs: &iced_x86::ConstantOffsets,
        raw: &[u8],
        targets: &mut Vec<u64>,
    ) {
        use iced_x86::OpKind;
        let bitness = if self.image.arch == Arch::X86 { 32 } else { 64 };
        buf.extend_from_slice(raw);
        let buf = buf.as_mut_slice();
        // Only position-dependent code embeds absolute addresses; in PIE
        // code and shared objects (linked at 0) a small constant would look
        // like one.
        let absolute = self.image.kind == crate::image::ImageKind::Executable;
        let in_image = |v: u64| absolute && v >= self.span.0 && v < self.span.1;
        let mut zero = |off: usize, size: usize| {
            if let Some(dst) = off.checked_add(size).and_then(|end| buf.get_mut(off..end)) {
                dst.fill(0);
            }
        };
        if offs.has_displacement() {
            let value = if ins.is_ip_rel_memory_operand() {
                Some(ins.ip_rel_memory_address())
            } else {
                let v = ins.memory_displacement64();
                let v = if bitness == 32 { v & 0xffff_ffff } else { v };
                (offs.displacement_size() >= 4 && in_image(v)).then_some(v)
            };
            if let Some(v) = value {
                zero(offs.displacement_offset(), offs.displacement_size());
                targets.push(v);
            }
        }
        let branch = (0..ins.op_count()).any(|i| {
            matches!(
                ins.op_kind(i),
                OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
            )
        });
        if offs.has_immediate() {
            if branch {
                zero(offs.immediate_offset(), offs.immediate_size());
                targets.push(ins.near_branch_target());
            } else if offs.immediate_size() >= 4 {
                let imm = (0..ins.op_count())
                    .find_map(|i| match ins.op_kind(i) {
                        OpKind::Immediate32 => Some(u64::from(ins.immediate32())),
                        OpKind::Immediate64 => Some(ins.immediate64()),
                        OpKind::Immediate32to64 => Some(ins.immediate32to64() as u64),
                        _ => None,
                    })
                    .map(|v| if bitness == 32 { v & 0xffff_ffff } else { v });
                if let Some(v) = imm.filter(|v| in_image(*v)) {
                    zero(offs.immediate_offset(), offs.immediate_size());
                    targets.push(v);
                }
            }
        }
    }
}

/// Clear bits `mask` of the little-endian word at the start of `buf`.
fn clear_bits(buf: &mut [u8], mask: u32) {
    let n = buf.len().min(4);
    let mut w = [0u8; 4];
    if let (Some(src), Some(dst)) = (buf.get(..n), w.get_mut(..n)) {
        dst.copy_from_slice(src);
    }
    let v = u32::from_le_bytes(w) & !mask;
    if let (Some(dst), Some(src)) = (buf.get_mut(..n), v.to_le_bytes().get(..n)) {
        dst.copy_from_slice(src);
    }
}

fn word(buf: &[u8]) -> u32 {
    let mut w = [0u8; 4];
    let n = buf.len().min(4);
    if let (Some(src), Some(dst)) = (buf.get(..n), w.get_mut(..n)) {
        dst.copy_from_slice(src);
    }
    u32::from_le_bytes(w)
}

/// RISC-V: immediates of `auipc`, `jal`, branches, their compressed forms,
/// and of the instruction that completes a pc-relative pair (the decoder
/// reports the address it computes as `data_ref`); `lui` immediates too in
/// position-dependent executables.
fn mask_riscv(
    buf: &mut [u8],
    insn: &crate::arch::Insn,
    kind: crate::image::ImageKind,
    targets: &mut Vec<u64>,
) {
    let w = word(buf);
    if insn.len == 2 {
        let q = w & 3;
        let f3 = (w >> 13) & 7;
        // c.j / c.jal (q1 f3 5 / 1): imm in 12..2; c.beqz / c.bnez (q1 f3
        // 6, 7): imm in 12..10 and 6..2.
        match (q, f3) {
            (1, 5) | (1, 1) => clear_bits(buf, 0x1ffc),
            (1, 6) | (1, 7) => clear_bits(buf, 0x1c7c),
            _ => {}
        }
    } else {
        match w & 0x7f {
            // auipc: imm in 31..12; the address it forms is completed (and
            // named) by the next instruction.
            0x17 => {
                clear_bits(buf, 0xffff_f000);
                return;
            }
            // jal: imm in 31..12.
            0x6f => clear_bits(buf, 0xffff_f000),
            0x37 if kind == crate::image::ImageKind::Executable => {
                clear_bits(buf, 0xffff_f000);
            }
            // branches: imm in 31..25 and 11..7.
            0x63 => clear_bits(buf, 0xfe00_0f80),
            // I-type completing a pair (addi, loads, jalr): 31..20.
            0x13 | 0x03 | 0x07 | 0x67 if insn.data_ref.is_some() => {
                clear_bits(buf, 0xfff0_0000);
            }
            // S-type stores completing a pair: 31..25 and 11..7.
            0x23 | 0x27 if insn.data_ref.is_some() => clear_bits(buf, 0xfe00_0f80),
            _ => {}
        }
    }
    push_flow_target(insn, targets);
}

/// AArch64: `b`, `bl`, `b.cond`, `cbz`, `tbz`, `adr`, `adrp`, literal
/// loads, and the `add`/`ldr`/`str` low-12-bit half of an `adrp` pair.
fn mask_aarch64(
    buf: &mut [u8],
    insn: &crate::arch::Insn,
    prev: Option<&crate::arch::Insn>,
    targets: &mut Vec<u64>,
) {
    let w = word(buf);
    if w & 0x7c00_0000 == 0x1400_0000 {
        clear_bits(buf, 0x03ff_ffff); // b, bl
    } else if w & 0xff00_0010 == 0x5400_0000 || w & 0x7e00_0000 == 0x3400_0000 {
        clear_bits(buf, 0x00ff_ffe0); // b.cond, cbz, cbnz
    } else if w & 0x7e00_0000 == 0x3600_0000 {
        clear_bits(buf, 0x0007_ffe0); // tbz, tbnz
    } else if w & 0x9f00_0000 == 0x9000_0000 {
        // adrp: the page it forms is completed by the next instruction.
        clear_bits(buf, 0x60ff_ffe0);
        return;
    } else if w & 0x1f00_0000 == 0x1000_0000 {
        clear_bits(buf, 0x60ff_ffe0); // adr
    } else if w & 0x3b00_0000 == 0x1800_0000 {
        clear_bits(buf, 0x00ff_ffe0); // ldr (literal)
    } else if prev.is_some() && insn.data_ref.is_some() {
        let add_imm = w & 0x7f80_0000 == 0x1100_0000;
        let ldst_imm = w & 0x3b00_0000 == 0x3900_0000;
        if add_imm || ldst_imm {
            clear_bits(buf, 0x003f_fc00);
        }
    }
    push_flow_target(insn, targets);
}

fn push_flow_target(insn: &crate::arch::Insn, targets: &mut Vec<u64>) {
    use crate::arch::Flow;
    match insn.flow {
        Flow::Jump(t) | Flow::CondJump(t) | Flow::Call(t) => targets.push(t),
        _ => {
            if let Some(d) = insn.data_ref {
                targets.push(d);
            }
        }
    }
}
