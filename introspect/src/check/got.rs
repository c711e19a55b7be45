//! GOT and init/fini pointer checks.
//!
//! Writable file-backed pages legitimately differ from disk (ld.so fills the
//! GOT and relocates RELRO), so they are not compared byte for byte.
//! Instead every import slot (`JUMP_SLOT`, `GLOB_DAT` of a function) and
//! every `.init_array` / `.fini_array` / `.preinit_array` entry is read from
//! the dump and must point into some loaded module's executable mappings
//! (or be 0: an unresolved weak import, or -1: a list terminator). A lazy
//! slot not yet bound holds its own PLT stub's address, which is inside the
//! module's code too. An import of a name no loaded module exports as a
//! function is a data import (`GLOB_DAT` of an object): it may also point
//! into a module's data (its mappings, or the anonymous `.bss` tail right
//! after them), but not to the heap, a stack or unmapped memory. Anything else is a `got-hook`. In a raw image, which
//! shows only part of the address space, a pointer outside the image is
//! counted as unchecked instead.

use crate::check::addr::LinkAddr;
use crate::check::verify::Ctx;
use crate::report::{Finding, FindingKind};

/// Whether `value` lies where a loaded module's data lives: inside a
/// module's address range, or in the anonymous, non-executable region that
/// starts where a module's mappings end (its `.bss` tail).
fn data_home(ctx: &Ctx<'_, '_>, value: u64) -> bool {
    if ctx.module_at(value).is_some() {
        return true;
    }
    ctx.dump.region_containing(value).is_some_and(|r| {
        !r.perms.execute
            && matches!(r.kind, crate::region::RegionKind::Anonymous)
            && ctx.modules.iter().any(|m| m.report.end == r.start)
    })
}

/// Check every module that has a file image and a load bias.
pub(crate) fn check(ctx: &mut Ctx<'_, '_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let ptr = u64::from(ctx.dump.pointer_size());
    // Functions some loaded module exports. An import slot whose name is not
    // among them is a data import (`GLOB_DAT` of an object the importer's
    // symbol table types as NOTYPE, such as CPython's `PyTuple_Type`): it
    // legitimately points to data.
    let exported: std::collections::BTreeSet<&str> = ctx
        .modules
        .iter()
        .filter_map(|m| m.image.as_ref())
        .flat_map(|img| img.symbols.iter())
        .filter(|s| s.global && s.source == talos_cfg::image::SymbolSource::Dynsym)
        .map(|s| s.name.as_str())
        .collect();
    let mut counts: Vec<(usize, u64, u64)> = Vec::new();
    for (mi, m) in ctx.modules.iter().enumerate() {
        let (Some(img), Some(bias)) = (&m.image, m.bias) else {
            continue;
        };
        // Slots: (link address, what it is).
        let mut slots: Vec<(u64, String, bool)> = img
            .import_slots
            .iter()
            .map(|(a, n)| (*a, n.clone(), true))
            .collect();
        for s in &img.sections {
            if matches!(
                s.name.as_str(),
                ".init_array" | ".fini_array" | ".preinit_array"
            ) && s.alloc
            {
                let n = s.size / ptr.max(1);
                for i in 0..n.min(1 << 16) {
                    slots.push((s.addr.wrapping_add(i * ptr), s.name.clone(), false));
                }
            }
        }
        let (mut checked, mut unchecked) = (0u64, 0u64);
        for (link, name, is_import) in slots {
            let addr = bias.runtime(LinkAddr::in_file(link)).get();
            let Some(value) = ctx.dump.read_ptr(addr) else {
                unchecked += 1;
                continue;
            };
            // A raw image shows only part of the address space: a pointer
            // outside it may well point into a module the image leaves out.
            if ctx.dump.source == crate::dump::Source::Raw
                && ctx.dump.region_containing(value).is_none()
            {
                unchecked += 1;
                continue;
            }
            checked += 1;
            let terminator = value == 0 || value == u64::MAX || (ptr == 4 && value == 0xffff_ffff);
            if terminator || ctx.exec_module(value).is_some() {
                continue;
            }
            if is_import && !exported.contains(name.as_str()) && data_home(ctx, value) {
                continue;
            }
            let what = if is_import {
                format!("import slot of {name}")
            } else {
                format!("{name} entry")
            };
            let mut f = Finding::new(
                FindingKind::GotHook,
                addr,
                format!(
                    "{} {what} at {addr:#x} points to {value:#x} ({}), outside every loaded module's code",
                    m.report.path,
                    ctx.describe(value)
                ),
            );
            f.module = Some(m.report.path.clone());
            f.symbol = Some(name);
            f.value = Some(value);
            findings.push(f);
        }
        counts.push((mi, checked, unchecked));
    }
    for (mi, c, u) in counts {
        if let Some(m) = ctx.modules.get_mut(mi) {
            m.report.pointers_checked = c;
            m.report.pointers_unchecked = u;
        }
    }
    findings
}
