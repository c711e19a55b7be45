//! Recovering the control-flow graphs the checks need: whole modules (for
//! `--flow-cfg`, naming differing runs, and pcs nothing else explains) and
//! just the functions threads are in. Failures are kept on the module, so a
//! check that needed the graph says it could not run.

use rayon::prelude::*;
use talos_cfg::Cfg;

use super::Ctx;
use crate::check::addr::{LinkAddr, RuntimeAddr};
use crate::check::flow;

/// Recover, in parallel, the whole CFG of each module in `which` that has
/// an image and none yet; a failure is kept on the module (a thread that
/// needed it is then not checked, never passed).
pub(super) fn recover_whole(ctx: &mut Ctx<'_, '_>, which: impl IntoIterator<Item = usize>) {
    let wanted: Vec<usize> = which
        .into_iter()
        .filter(|&i| {
            ctx.modules
                .get(i)
                .is_some_and(|m| m.image.is_some() && m.cfg.is_none() && m.cfg_error.is_none())
        })
        .collect();
    let computed: Vec<(usize, Result<Cfg, String>)> = wanted
        .par_iter()
        .filter_map(|&i| {
            let img = ctx.modules.get(i)?.image.as_ref()?;
            Some((
                i,
                talos_cfg::analyze(img, &talos_cfg::Options::default())
                    .map_err(|e| e.to_string())
                    .and_then(complete),
            ))
        })
        .collect();
    for (i, r) in computed {
        if let Some(m) = ctx.modules.get_mut(i) {
            match r {
                Ok(c) => m.cfg = Some(c),
                Err(e) => m.cfg_error = Some(e),
            }
        }
    }
}

/// Recover the CFG of just the functions the threads' pcs and return
/// addresses are in, per module; a failure is kept on the module.
pub(super) fn recover_local(ctx: &mut Ctx<'_, '_>, walks: &[flow::Walk]) {
    let mut addrs: std::collections::BTreeMap<usize, Vec<u64>> = std::collections::BTreeMap::new();
    for w in walks {
        for (a, is_return) in flow::checked_addresses(w) {
            let Some(i) = ctx.exec_module(a) else {
                continue;
            };
            let Some(link) = ctx
                .modules
                .get(i)
                .and_then(|m| m.link(RuntimeAddr::in_dump(a)))
                .map(LinkAddr::get)
            else {
                continue;
            };
            let e = addrs.entry(i).or_default();
            // A return address may sit just past its function's end (a
            // call that never returns, last in the function).
            e.push(if is_return {
                link.wrapping_sub(1)
            } else {
                link
            });
        }
    }
    let local: Vec<(usize, Result<Cfg, String>)> = addrs
        .par_iter()
        .filter_map(|(&i, a)| {
            let m = ctx.modules.get(i)?;
            if m.cfg.is_some() {
                return None;
            }
            let img = m.image.as_ref()?;
            Some((
                i,
                talos_cfg::analyze_functions(img, a)
                    .map_err(|e| e.to_string())
                    .and_then(complete),
            ))
        })
        .collect();
    for (i, c) in local {
        if let Some(m) = ctx.modules.get_mut(i) {
            match c {
                Ok(c) => m.local_cfg = Some(c),
                Err(e) => m.local_error = Some(e),
            }
        }
    }
}

/// A graph cut short at a limit does not explain what it did not reach: it
/// is kept as the module's CFG failure, so the checks that needed it say
/// they could not run.
fn complete(c: Cfg) -> Result<Cfg, String> {
    if c.capped() {
        let caps: Vec<&str> = c.caps.iter().map(|h| h.kind.name()).collect();
        return Err(format!(
            "control-flow graph incomplete (stopped at: {})",
            caps.join(", ")
        ));
    }
    Ok(c)
}
