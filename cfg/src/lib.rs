//! `talos-cfg`: control-flow graphs of binaries, with a canonical digest.
//!
//! Design tenets:
//! - **Zero copy.** The loader borrows the (memory-mapped) file bytes; code
//!   is decoded in place.
//! - **Hostile input is normal.** Every offset, size and count taken from the
//!   file is checked before use; limits in [`limits`] bound memory and time.
//!   Malformed input gives an [`Error`] naming what is wrong, never a panic.
//! - **Architecture-neutral graph.** Instruction sets sit behind [`arch::Isa`];
//!   the builder only sees [`arch::Insn`] and [`arch::Flow`].
//! - **Deterministic.** The same bytes give the same graph and the same
//!   bytes of output on every run, whatever the thread count.
//! - **Load-address independent digests.** Addresses in the digest are
//!   relative to the image base (see `docs/digest.md`).
//! - **Honest.** What could not be resolved (indirect jumps, undecodable
//!   bytes, code nothing reaches) is reported, not guessed.
//!
//! ```no_run
//! let bytes = std::fs::read("/usr/bin/true").unwrap();
//! let image = talos_cfg::load(&bytes).unwrap();
//! let cfg = talos_cfg::analyze(&image, &talos_cfg::Options::default()).unwrap();
//! println!("{} functions, digest {}", cfg.functions.len(), cfg.digest);
//! ```

pub mod arch;
mod builder;
pub mod diff;
pub mod digest;
pub mod ehframe;
pub mod elf;
mod error;
mod fasthash;
pub mod graph;
pub mod image;
mod index;
pub mod limits;
pub mod measure;
pub mod model;
pub mod pe;
pub mod schema;

use rayon::prelude::*;

pub use builder::{NORETURN_NAMES, Options, is_noreturn_name};
pub use digest::Digest;
pub use error::{Error, Result};
pub use image::{Arch, Format, Image, ImageKind};
pub use model::{Block, CapHit, CapKind, Cfg, Edge, EdgeKind, Function, FunctionSource, Stats};

/// Load a binary (ELF or PE) from its bytes.
///
/// # Errors
/// When the bytes are not a supported, well-formed binary.
pub fn load(bytes: &[u8]) -> Result<Image<'_>> {
    if elf::is_elf(bytes) {
        return elf::load(bytes);
    }
    if pe::is_pe(bytes) {
        return pe::load(bytes);
    }
    Err(Error::BadMagic {
        magic: bytes.iter().take(4).copied().collect(),
    })
}

/// Recover the control-flow graph of a loaded image.
///
/// # Errors
/// [`Error::UnsupportedArch`] when no decoder exists for the image.
pub fn analyze(image: &Image<'_>, options: &Options) -> Result<Cfg> {
    let dec = arch::decoder_for(image)?;
    let rec = builder::recover(image, dec.as_ref(), *options);
    Ok(assemble(image, dec.as_ref(), rec, false).0)
}

/// [`analyze`], and the position-independent function digests of the
/// graph ([`digest::position_independent_functions`], in the order of
/// `cfg.functions`) computed in the same pass as the function digests:
/// what a saved `talos.cfg/1` document records.
///
/// # Errors
/// [`Error::UnsupportedArch`] when no decoder exists for the image.
pub fn analyze_with_pi_digests(image: &Image<'_>, options: &Options) -> Result<(Cfg, Vec<Digest>)> {
    let dec = arch::decoder_for(image)?;
    let rec = builder::recover(image, dec.as_ref(), *options);
    Ok(assemble(image, dec.as_ref(), rec, true))
}

/// Names, digests and counts for what the builder recovered; with `pi`,
/// the position-independent function digests too (else an empty list).
fn assemble(
    image: &Image<'_>,
    dec: &dyn arch::Isa,
    rec: builder::Recovered,
    pi: bool,
) -> (Cfg, Vec<Digest>) {
    let code_ranges = image.code_ranges();
    let names = names(image);
    let mut functions: Vec<Function> = rec
        .functions
        .into_par_iter()
        .map_init(digest::FunctionDigester::new, |digester, f| {
            // The position-independent digests name callees: with them, the
            // function digests wait for every name and share their decode.
            let digest = if pi {
                Digest::default()
            } else {
                digester.digest(image, dec, f.addr, f.size, &f.blocks)
            };
            let name = names.get(&f.addr).cloned().or_else(|| {
                let import = f.import_slot.and_then(|s| image.import_slots.get(&s))?;
                match image.format {
                    // Import stubs live in PLT sections.
                    Format::Elf => code_ranges
                        .iter()
                        .any(|r| r.plt && r.contains(f.addr))
                        .then(|| format!("{import}@plt")),
                    // PE import thunks sit among the code: a function that
                    // is nothing but the jump through the IAT slot.
                    Format::Pe => matches!(f.blocks.as_slice(), [b] if b.instructions == 1)
                        .then(|| format!("{import}{}", pe::THUNK_SUFFIX)),
                }
            });
            Function {
                addr: f.addr,
                size: f.size,
                name,
                source: f.source,
                noreturn: f.noreturn,
                digest,
                blocks: f.blocks,
            }
        })
        .collect();
    let pi_digests = if pi {
        let (digests, pi_digests) = digest::function_and_pi_digests(image, dec, &functions);
        for (f, d) in functions.iter_mut().zip(digests) {
            f.digest = d;
        }
        pi_digests
    } else {
        Vec::new()
    };
    let mut stats = Stats {
        functions: functions.len() as u64,
        unresolved_indirect: rec.unresolved.len() as u64,
        ..Stats::default()
    };
    for f in &functions {
        stats.blocks = stats.blocks.saturating_add(f.blocks.len() as u64);
        for b in &f.blocks {
            stats.edges = stats.edges.saturating_add(b.succs.len() as u64);
            stats.instructions = stats.instructions.saturating_add(u64::from(b.instructions));
        }
    }
    let mut caps: Vec<CapHit> = image.caps.iter().chain(&rec.caps).copied().collect();
    caps.sort();
    caps.dedup();
    let pairs: Vec<(u64, Digest)> = functions.iter().map(|f| (f.addr, f.digest)).collect();
    let digest = digest::graph_digest(image.format, image.arch, image.base, image.entry, &pairs);
    let cfg = Cfg {
        format: image.format,
        arch: image.arch,
        kind: image.kind,
        base: image.base,
        entry: image.entry,
        build_id: image.build_id_hex(),
        functions,
        digest,
        stats,
        unresolved: rec.unresolved,
        jump_tables: rec.jump_tables,
        anomalies: rec.anomalies,
        unexplained_bytes: rec.unexplained_bytes,
        return_sites: rec.return_sites,
        exception_handlers: image.exception_handlers.clone(),
        caps,
        work: rec.work,
    };
    (cfg, pi_digests)
}

/// Recover only the functions holding `addrs` (the ones whose `.eh_frame`
/// FDE, else nearest preceding known entry, covers each address): the cheap
/// way to ask "is this address inside a basic block / after a call" of a
/// large binary. Function sizes and the graph digest of the result describe
/// the subset only (and `stats.unexplained_bytes` is 0: the rest of the code
/// was not looked at); [`Cfg::complete`] tells whether a function's blocks are
/// all known (no unresolved indirect jump).
///
/// # Errors
/// [`Error::UnsupportedArch`] when no decoder exists for the image.
pub fn analyze_functions(image: &Image<'_>, addrs: &[u64]) -> Result<Cfg> {
    let dec = arch::decoder_for(image)?;
    let rec = builder::recover_local(image, dec.as_ref(), addrs);
    Ok(assemble(image, dec.as_ref(), rec, false).0)
}

/// The preferred name at each address: a global static symbol, then a
/// local one, then a dynamic one; names without compiler suffixes first.
fn names(image: &Image<'_>) -> std::collections::BTreeMap<u64, String> {
    let mut best: std::collections::BTreeMap<u64, (u8, bool, bool, &str)> =
        std::collections::BTreeMap::new();
    for s in &image.symbols {
        let rank = match s.source {
            image::SymbolSource::Symtab => 0,
            image::SymbolSource::Dynsym => 1,
            image::SymbolSource::ImportStub => 2,
        };
        let key = (rank, !s.global, s.name.starts_with('_'), s.name.as_str());
        let e = best.entry(s.addr).or_insert(key);
        if key < *e {
            *e = key;
        }
    }
    best.into_iter()
        .map(|(a, k)| (a, k.3.to_string()))
        .collect()
}

/// Lowercase hex of bytes.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len().saturating_mul(2));
    for &b in bytes {
        s.extend(hex_digits(b));
    }
    s
}

/// The two lowercase hex digits of `b` (without the formatting machinery:
/// a saved graph has two digests per function).
fn hex_digits(b: u8) -> [char; 2] {
    let digit = |v: u8| char::from_digit(u32::from(v), 16).unwrap_or('0');
    [digit(b >> 4), digit(b & 0xf)]
}
