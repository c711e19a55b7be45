//! `talos demo`: the main job on an embedded sample, for a first look.

use std::fmt::Write as _;

use anyhow::{Context, Result};

use crate::Outcome;

/// The sample trusted application (`corpus/samples/demo.c`, built by
/// `corpus/samples/build.sh`).
pub const SAMPLE: &[u8] = include_bytes!("../../../corpus/samples/demo-x86_64");

/// Arguments of `talos demo`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `talos demo`.
///
/// # Errors
/// When the embedded sample cannot be analysed (a build problem).
pub fn run(_args: Args) -> Result<Outcome> {
    let image = talos_cfg::load(SAMPLE).context("embedded sample: cannot load")?;
    let cfg = talos_cfg::analyze(&image, &talos_cfg::Options::default())
        .context("embedded sample: cannot analyse")?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "talos demo: the embedded sample trusted application (corpus/samples/demo.c)\n"
    );
    let _ = writeln!(s, "step 1: recover its control-flow graph (talos cfg)");
    let _ = writeln!(
        s,
        "  {} {} binary, {} functions, {} basic blocks, {} edges, {} jump table(s), {} unresolved indirect jumps",
        cfg.arch.name(),
        cfg.format.name(),
        cfg.stats.functions,
        cfg.stats.blocks,
        cfg.stats.edges,
        cfg.jump_tables.len(),
        cfg.stats.unresolved_indirect
    );
    let _ = writeln!(s, "  graph digest {}", cfg.digest);
    if let Ok(f) = cfg.find_function("dispatch") {
        let _ = writeln!(
            s,
            "  dispatch() at {:#x}: {} blocks; its switch is a jump table with {} targets",
            f.addr,
            f.blocks.len(),
            f.blocks
                .iter()
                .flat_map(|b| &b.succs)
                .filter(|e| e.kind == talos_cfg::EdgeKind::JumpTable)
                .count()
        );
    }
    let noreturn: Vec<String> = cfg
        .functions
        .iter()
        .filter(|f| f.noreturn)
        .map(talos_cfg::Function::display_name)
        .collect();
    let _ = writeln!(s, "  functions that never return: {}", noreturn.join(", "));
    let _ = writeln!(
        s,
        "\nTry it on your own binaries: talos cfg /usr/bin/bash, or --format json|dot."
    );
    crate::output::emit(None, s.as_bytes())?;
    Ok(Outcome::Ok)
}
