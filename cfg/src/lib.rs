//! `talos-cfg`: control-flow graphs of binaries, with a canonical digest.
//!
//! Design tenets:
//! - **Zero copy.** The loader borrows the (memory-mapped) file bytes; code
//!   is decoded in place.
//! - **Hostile input is normal.** Every offset, size and count taken from the
//!   file is checked before use; limits in [`limits`] bound memory and time.
//!   Malformed input gives an [`Error`] naming what is wrong, never a panic.
//! - **Architecture-neutral graph.** Decoders sit behind [`arch::Decoder`];
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
pub mod digest;
pub mod ehframe;
pub mod elf;
mod error;
pub mod graph;
pub mod image;
mod index;
pub mod limits;
pub mod model;
pub mod schema;

use rayon::prelude::*;

pub use builder::{NORETURN_NAMES, Options, is_noreturn_name};
pub use digest::Digest;
pub use error::{Error, Result};
pub use image::{Arch, Format, Image, ImageKind};
pub use model::{Block, Cfg, Edge, EdgeKind, Function, FunctionSource, Stats};

/// Load a binary (ELF) from its bytes.
///
/// # Errors
/// When the bytes are not a supported, well-formed binary.
pub fn load(bytes: &[u8]) -> Result<Image<'_>> {
    if elf::is_elf(bytes) {
        return elf::load(bytes);
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
    let code_ranges = image.code_ranges();
    let rec = builder::recover(image, dec.as_ref(), *options);
    let names = names(image);
    let functions: Vec<Function> = rec
        .functions
        .into_par_iter()
        .map(|f| {
            let digest = digest::function_digest(image, dec.as_ref(), f.addr, f.size, &f.blocks);
            let name = names.get(&f.addr).cloned().or_else(|| {
                f.import_slot
                    .and_then(|s| image.import_slots.get(&s))
                    .filter(|_| code_ranges.iter().any(|r| r.plt && r.contains(f.addr)))
                    .map(|n| format!("{n}@plt"))
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
    let pairs: Vec<(u64, Digest)> = functions.iter().map(|f| (f.addr, f.digest)).collect();
    let digest = digest::graph_digest(image.format, image.arch, image.base, image.entry, &pairs);
    Ok(Cfg {
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
    })
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
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
