//! `talos cfg`: recover and print the control-flow graph of a binary.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::ValueEnum;
use talos_cfg::{Cfg, Function, FunctionSource};

use crate::Outcome;
use crate::{input, output};

/// Output formats of `talos cfg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CfgFormat {
    /// Summary for people.
    Text,
    /// The `talos.cfg/1` document.
    Json,
    /// Graphviz DOT.
    Dot,
    /// The DOT rendered by graphviz `dot -Tsvg` (needs graphviz).
    Svg,
}

/// Arguments of `talos cfg`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The binary (ELF executable or shared object).
    pub binary: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CfgFormat::Text)]
    pub format: CfgFormat,
    /// Only this function (name, or address as 0x... or decimal).
    #[arg(long, value_name = "NAME|ADDR")]
    pub function: Option<String>,
    /// Write to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Do not sweep the gaps between functions for unreached code.
    #[arg(long)]
    pub no_gaps: bool,
}

/// A binary loaded and analysed, for every command that needs a graph.
pub struct Analysed {
    /// The file bytes.
    pub bytes: input::Input,
    /// The graph.
    pub cfg: Cfg,
    /// BLAKE3 of the file, hex.
    pub file_blake3: String,
}

/// Load and analyse `path`; errors name the file.
///
/// # Errors
/// When the file cannot be read or is not a supported binary.
pub fn analyse(path: &std::path::Path, options: &talos_cfg::Options) -> Result<Analysed> {
    Ok(analyse_with(path, options, false)?.0)
}

/// [`analyse`], and with `pi` the position-independent function digests
/// (in the order of `cfg.functions`; empty without `pi`), computed with the
/// function digests.
fn analyse_with(
    path: &std::path::Path,
    options: &talos_cfg::Options,
    pi: bool,
) -> Result<(Analysed, Vec<talos_cfg::Digest>)> {
    let bytes = input::map(path)?;
    let image =
        talos_cfg::load(&bytes).with_context(|| format!("{}: cannot load", path.display()))?;
    let (cfg, pi_digests) = if pi {
        talos_cfg::analyze_with_pi_digests(&image, options)
    } else {
        talos_cfg::analyze(&image, options).map(|cfg| (cfg, Vec::new()))
    }
    .with_context(|| format!("{}: cannot analyse", path.display()))?;
    let file_blake3 = bytes.blake3(path)?.to_hex().to_string();
    drop(image);
    let a = Analysed {
        bytes,
        cfg,
        file_blake3,
    };
    Ok((a, pi_digests))
}

/// Run `talos cfg`.
///
/// # Errors
/// Unreadable or unsupported input, unknown function, unwritable output.
pub fn run(args: Args) -> Result<Outcome> {
    let options = talos_cfg::Options {
        gap_analysis: !args.no_gaps,
    };
    // Position-independent digests go in the JSON document, so `talos
    // diff` can match moved functions against this saved graph.
    let json = args.format == CfgFormat::Json;
    let (a, pi) = analyse_with(&args.binary, &options, json)?;
    let only: Option<&Function> = match &args.function {
        Some(key) => Some(
            a.cfg
                .find_function(key)
                .with_context(|| format!("{}: no function {key}", args.binary.display()))?,
        ),
        None => None,
    };
    let path = args.binary.display().to_string();
    // A graph recovered under a cap describes part of the file only:
    // nothing built on it is checked, so `talos cfg` does not exit 0.
    let outcome = if a.cfg.capped() {
        for c in &a.cfg.caps {
            let at = c
                .function
                .map(|f| format!(" in the function at {f:#x}"))
                .unwrap_or_default();
            eprintln!(
                "talos cfg: {path}: graph incomplete: stopped at the {} limit ({}){at}",
                c.kind.name(),
                c.limit
            );
        }
        Outcome::Unproven
    } else {
        Outcome::Ok
    };
    let text = match args.format {
        CfgFormat::Json => {
            // Written as it goes: a whole-program graph has millions of
            // blocks.
            output::emit_with(args.output.as_deref(), |w| {
                talos_cfg::schema::write_document(w, &a.cfg, &path, &a.file_blake3, only, Some(&pi))
            })?;
            // The process ends here: freeing a graph of millions of blocks
            // one allocation at a time would only cost time.
            std::mem::forget(a);
            return Ok(outcome);
        }
        CfgFormat::Dot | CfgFormat::Svg => {
            let image =
                talos_cfg::load(&a.bytes).with_context(|| format!("{path}: cannot load"))?;
            let functions: Vec<&Function> = match only {
                Some(f) => vec![f],
                None => a.cfg.functions.iter().collect(),
            };
            talos_cfg::graph::to_dot(&a.cfg, &image, &functions, &[])
        }
        CfgFormat::Text => match only {
            Some(f) => function_text(&a.cfg, f),
            None => summary_text(&a.cfg, &path, &a.file_blake3),
        },
    };
    let bytes = if args.format == CfgFormat::Svg {
        super::diff::svg(&text)?
    } else {
        text.into_bytes()
    };
    output::emit(args.output.as_deref(), &bytes)?;
    std::mem::forget(a);
    Ok(outcome)
}

fn source_name(s: FunctionSource) -> &'static str {
    match s {
        FunctionSource::Entry => "entry",
        FunctionSource::Symbol => "symbol",
        FunctionSource::Fde => "eh_frame",
        FunctionSource::InitFini => "init/fini",
        FunctionSource::ImportStub => "import stub",
        FunctionSource::Call => "call target",
        FunctionSource::TailCall => "tail-call target",
        FunctionSource::Pointer => "code pointer",
        FunctionSource::Gap => "gap",
    }
}

fn summary_text(cfg: &Cfg, path: &str, file_blake3: &str) -> String {
    let mut s = String::new();
    let kind = match cfg.kind {
        talos_cfg::ImageKind::Executable => "executable",
        talos_cfg::ImageKind::PieExecutable => "PIE executable",
        talos_cfg::ImageKind::SharedObject => "shared object",
    };
    let _ = writeln!(s, "{path}");
    let _ = writeln!(
        s,
        "  format        {} {} {kind}",
        cfg.format.name(),
        cfg.arch.name()
    );
    let _ = writeln!(s, "  base          {:#x}", cfg.base);
    match cfg.entry {
        Some(e) => {
            let name = cfg
                .function_at(e)
                .map(Function::display_name)
                .unwrap_or_default();
            let _ = writeln!(s, "  entry         {e:#x} {name}");
        }
        None => {
            let _ = writeln!(s, "  entry         none");
        }
    }
    let _ = writeln!(
        s,
        "  build-id      {}",
        cfg.build_id.as_deref().unwrap_or("none")
    );
    let _ = writeln!(s, "  file blake3   {file_blake3}");
    let _ = writeln!(s, "  graph digest  {}", cfg.digest);
    let st = cfg.stats;
    let named = cfg.functions.iter().filter(|f| f.name.is_some()).count();
    let _ = writeln!(s, "  functions     {} ({named} named)", st.functions);
    let mut by_source: std::collections::BTreeMap<FunctionSource, usize> =
        std::collections::BTreeMap::new();
    for f in &cfg.functions {
        *by_source.entry(f.source).or_insert(0) += 1;
    }
    let parts: Vec<String> = by_source
        .iter()
        .map(|(k, v)| format!("{v} {}", source_name(*k)))
        .collect();
    let _ = writeln!(s, "    found by    {}", parts.join(", "));
    let noreturn = cfg.functions.iter().filter(|f| f.noreturn).count();
    let _ = writeln!(s, "    noreturn    {noreturn}");
    let _ = writeln!(s, "  blocks        {}", st.blocks);
    let _ = writeln!(s, "  edges         {}", st.edges);
    let _ = writeln!(s, "  instructions  {}", st.instructions);
    let _ = writeln!(s, "  jump tables   {}", cfg.jump_tables.len());
    let _ = writeln!(
        s,
        "  unresolved    {} indirect jumps",
        st.unresolved_indirect
    );
    let _ = writeln!(
        s,
        "  unexplained   {} bytes of code no function covers",
        cfg.unexplained_bytes
    );
    if cfg.capped() {
        let caps: Vec<String> = cfg
            .caps
            .iter()
            .map(|c| format!("{} (limit {})", c.kind.name(), c.limit))
            .collect();
        let _ = writeln!(
            s,
            "  INCOMPLETE    stopped at {}: the graph covers part of the file",
            caps.join(", ")
        );
    }

    let mut largest: Vec<&Function> = cfg.functions.iter().collect();
    largest.sort_by(|a, b| b.size.cmp(&a.size).then(a.addr.cmp(&b.addr)));
    let _ = writeln!(s, "\nlargest functions:");
    let _ = writeln!(
        s,
        "  {:>18}  {:>8}  {:>6}  name",
        "address", "size", "blocks"
    );
    for f in largest.iter().take(10) {
        let _ = writeln!(
            s,
            "  {:>#18x}  {:>8}  {:>6}  {}",
            f.addr,
            f.size,
            f.blocks.len(),
            f.display_name()
        );
    }
    if !cfg.unresolved.is_empty() {
        let _ = writeln!(s, "\nunresolved indirect jumps:");
        for u in cfg.unresolved.iter().take(20) {
            let name = cfg
                .function_at(u.function)
                .map(Function::display_name)
                .unwrap_or_default();
            let _ = writeln!(s, "  {:#x} in {name}", u.addr);
        }
        if cfg.unresolved.len() > 20 {
            let _ = writeln!(
                s,
                "  ... and {} more (see --format json)",
                cfg.unresolved.len() - 20
            );
        }
    }
    if !cfg.anomalies.is_empty() {
        let _ = writeln!(s, "\nanomalies:");
        for a in cfg.anomalies.iter().take(20) {
            let name = cfg
                .function_at(a.function)
                .map(Function::display_name)
                .unwrap_or_default();
            let _ = writeln!(s, "  {:<26} {:#x} in {name}", a.kind, a.addr);
        }
        if cfg.anomalies.len() > 20 {
            let _ = writeln!(
                s,
                "  ... and {} more (see --format json)",
                cfg.anomalies.len() - 20
            );
        }
    }
    s
}

fn function_text(cfg: &Cfg, f: &Function) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} @ {:#x}", f.display_name(), f.addr);
    let _ = writeln!(s, "  size          {}", f.size);
    let _ = writeln!(s, "  found by      {}", source_name(f.source));
    let _ = writeln!(s, "  noreturn      {}", f.noreturn);
    let _ = writeln!(s, "  digest        {}", f.digest);
    let _ = writeln!(s, "  blocks        {}", f.blocks.len());
    let _ = writeln!(s, "  instructions  {}", f.instruction_count());
    let _ = writeln!(s);
    for b in &f.blocks {
        let succs: Vec<String> = b
            .succs
            .iter()
            .map(|e| match e.addr {
                Some(a) => {
                    let callee = match e.kind {
                        talos_cfg::EdgeKind::Call | talos_cfg::EdgeKind::TailCall => cfg
                            .function_at(a)
                            .map(|c| format!(" <{}>", c.display_name()))
                            .unwrap_or_default(),
                        _ => String::new(),
                    };
                    format!("{} {a:#x}{callee}", e.kind.name())
                }
                None => e.kind.name().to_string(),
            })
            .collect();
        let _ = writeln!(
            s,
            "  block {:#x}  size {:<5} insns {:<4} -> {}",
            b.addr,
            b.size,
            b.instructions,
            if succs.is_empty() {
                "(stops)".to_string()
            } else {
                succs.join(", ")
            }
        );
    }
    s
}
