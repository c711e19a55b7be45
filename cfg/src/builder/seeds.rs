//! Seeds: where functions are known to start before anything is decoded.

use std::collections::{BTreeMap, BTreeSet};

use crate::arch::Isa;
use crate::image::{CodeRange, Image, SymbolSource};
use crate::model::FunctionSource;

use super::{Ctx, explore, is_noreturn_name};

/// Seeds with the reason they are believed to be functions.
pub(crate) fn seeds(
    image: &Image<'_>,
    code: &[CodeRange],
    dec: &dyn Isa,
) -> BTreeMap<u64, FunctionSource> {
    let in_code = |a: u64| code.iter().any(|r| r.contains(a));
    let mut out: BTreeMap<u64, FunctionSource> = BTreeMap::new();
    let mut add = |a: u64, s: FunctionSource| {
        if in_code(a) {
            let e = out.entry(a).or_insert(s);
            if s < *e {
                *e = s;
            }
        }
    };
    if let Some(e) = image.entry {
        add(e, FunctionSource::Entry);
    }
    // Exported symbols (`.dynsym`, the PE export directory) are entry points
    // other modules call: they stay in every copy of the file. The static
    // symbol table only names what the analysis finds: `strip` removes it,
    // and anyone can write anything there, so it must not change the graph
    // (a stripped build and its unstripped twin have the same digest).
    for s in image
        .symbols
        .iter()
        .filter(|s| s.source != SymbolSource::Symtab)
    {
        add(s.addr, FunctionSource::Symbol);
    }
    for f in &image.fdes {
        add(f.start, FunctionSource::Fde);
    }
    for &a in &image.init_fini {
        add(a, FunctionSource::InitFini);
    }
    // Every entry of a PLT section is an import stub.
    for r in code.iter().filter(|r| r.plt) {
        let step = if r.entry_size >= 4 { r.entry_size } else { 16 };
        let mut a = r.start;
        // `.plt` opens with the resolver stub (PLT0), whose size the psABI
        // fixes per architecture; the import stubs follow it.
        if r.name == ".plt" && dec.plt_header_size() != step {
            if let Some(bytes) = image.bytes_from(a)
                && let Some(insn) = dec.decode(bytes, a, None)
                && !dec.is_padding(bytes, &insn)
            {
                add(a, FunctionSource::ImportStub);
            }
            a = a.saturating_add(dec.plt_header_size());
        }
        while a < r.end {
            if let Some(bytes) = image.bytes_from(a)
                && let Some(insn) = dec.decode(bytes, a, None)
                && !dec.is_padding(bytes, &insn)
            {
                add(a, FunctionSource::ImportStub);
            }
            let Some(n) = a.checked_add(step) else { break };
            a = n;
        }
    }
    out
}

/// The context every recovery starts from: the seeds as known entries, and
/// what is known not to return before anything is decoded: imports whose
/// body is not in the binary (import slots named in [`super::NORETURN_NAMES`],
/// and the import stubs that jump through them). A function defined in the
/// binary is noreturn only when the analysis shows it, whatever its name.
pub(super) fn initial_ctx<'a>(
    image: &'a Image<'a>,
    dec: &'a dyn Isa,
    code: &'a [CodeRange],
    seeds: &BTreeMap<u64, FunctionSource>,
) -> Ctx<'a> {
    let mut ctx = Ctx {
        image,
        dec,
        code,
        known: seeds.keys().copied().collect(),
        called: seeds.keys().copied().collect(),
        noreturn: BTreeSet::new(),
        noreturn_slots: BTreeSet::new(),
        work: std::sync::atomic::AtomicU64::new(0),
    };
    for (&slot, name) in &image.import_slots {
        if is_noreturn_name(name) {
            ctx.noreturn_slots.insert(slot);
        }
    }
    // Import stubs that jump to a noreturn import (`abort@plt`) are known
    // noreturn before anything calls them, which spares most callers a
    // second decoding.
    for (&a, _) in seeds
        .iter()
        .filter(|(_, s)| **s == FunctionSource::ImportStub)
    {
        let stub = explore(&ctx, a);
        if !stub.import_jumps.is_empty()
            && stub
                .import_jumps
                .values()
                .all(|s| ctx.noreturn_slots.contains(s))
        {
            ctx.noreturn.insert(a);
        }
    }
    ctx
}
