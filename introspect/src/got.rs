//! GOT and init/fini pointer checks.
//!
//! Writable file-backed pages legitimately differ from disk (ld.so fills the
//! GOT and relocates RELRO), so they are not compared byte for byte.
//! Instead every import slot (`JUMP_SLOT`, `GLOB_DAT` of a function) and
//! every `.init_array` / `.fini_array` / `.preinit_array` entry is read from
//! the dump and must point into some loaded module's executable mappings
//! (or be 0: an unresolved weak import, or -1: a list terminator). A lazy
//! slot not yet bound holds its own PLT stub's address, which is inside the
//! module's code too. Anything else is a `got-hook`.

use crate::report::{Finding, FindingKind};
use crate::verify::Ctx;

/// Check every module that has a file image and a load bias.
pub(crate) fn check(ctx: &mut Ctx<'_, '_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let ptr = u64::from(ctx.dump.pointer_size());
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
            let addr = link.wrapping_add(bias);
            let Some(value) = ctx.dump.read_ptr(addr) else {
                unchecked += 1;
                continue;
            };
            checked += 1;
            let terminator = value == 0 || value == u64::MAX || (ptr == 4 && value == 0xffff_ffff);
            if terminator || ctx.exec_module(value).is_some() {
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
