//! `talos diff`: build-to-build comparison of control-flow graphs.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::ValueEnum;
use serde::Serialize;
use talos_cfg::diff::{Diff, DiffSide, DiffSummary, FunctionPair, FunctionRef, PairState};
use talos_cfg::schema::CfgDoc;

use crate::Outcome;
use crate::{input, output};

/// Schema identifier of `talos diff --format json`.
pub const SCHEMA: &str = "talos.diff/1";

/// Output formats of `talos diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// Summary for people.
    Text,
    /// The `talos.diff/1` document.
    Json,
    /// Graphviz DOT of the new build's changed and added functions, changed
    /// blocks highlighted.
    Dot,
    /// The DOT rendered by graphviz `dot -Tsvg`.
    Svg,
    /// One self-contained HTML page: tables, and each changed function's
    /// two graphs side by side (laid out by graphviz when installed).
    Html,
}

/// Arguments of `talos diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The old build: a binary or a saved `talos cfg --format json` file.
    pub old: PathBuf,
    /// The new build: a binary or a saved `talos cfg --format json` file.
    pub new: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Write to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// One side, loaded.
struct Loaded {
    side: DiffSide,
    kind: &'static str,
    /// The bytes, when a binary (for DOT).
    bytes: Option<input::Input>,
    cfg: Option<talos_cfg::Cfg>,
}

fn is_json(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{')
}

fn load(path: &Path) -> Result<Loaded> {
    let bytes = input::map(path)?;
    if is_json(&bytes) {
        let doc: CfgDoc = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a talos.cfg/1 document", path.display()))?;
        if doc.schema != talos_cfg::schema::SCHEMA {
            anyhow::bail!(
                "{}: schema {:?}, expected {:?}",
                path.display(),
                doc.schema,
                talos_cfg::schema::SCHEMA
            );
        }
        return Ok(Loaded {
            side: DiffSide::from_doc(&doc),
            kind: "talos.cfg/1",
            bytes: None,
            cfg: None,
        });
    }
    let a = super::cfg::analyse(path, &talos_cfg::Options::default())?;
    let image =
        talos_cfg::load(&a.bytes).with_context(|| format!("{}: cannot load", path.display()))?;
    let pi = talos_cfg::digest::position_independent(&image, &a.cfg);
    let side = DiffSide::from_cfg(&a.cfg, &pi);
    drop(image);
    Ok(Loaded {
        side,
        kind: "binary",
        bytes: Some(a.bytes),
        cfg: Some(a.cfg),
    })
}

#[derive(Serialize)]
struct SideDoc {
    path: String,
    kind: &'static str,
    arch: String,
    graph_digest: String,
    functions: usize,
    position_independent_digests: bool,
}

#[derive(Serialize)]
struct MovedDoc {
    name: String,
    old_addr: u64,
    new_addr: u64,
}

#[derive(Serialize)]
struct DiffDoc<'a> {
    schema: &'static str,
    talos_version: &'static str,
    old: SideDoc,
    new: SideDoc,
    verdict: &'static str,
    same_graph_digest: bool,
    summary: DiffSummary,
    changed: Vec<&'a FunctionPair>,
    unproven: Vec<&'a FunctionPair>,
    added: &'a [FunctionRef],
    removed: &'a [FunctionRef],
    moved: Vec<MovedDoc>,
}

fn verdict(d: &Diff) -> &'static str {
    if d.summary.added + d.summary.removed + d.summary.changed > 0 {
        "different"
    } else if d.summary.unproven > 0 {
        "unproven"
    } else {
        "same"
    }
}

fn side_doc(path: &Path, l: &Loaded) -> SideDoc {
    SideDoc {
        path: path.display().to_string(),
        kind: l.kind,
        arch: l.side.arch.clone(),
        graph_digest: l.side.graph_digest.to_hex(),
        functions: l.side.functions.len(),
        position_independent_digests: l.side.functions.iter().all(|f| f.pi.is_some()),
    }
}

/// Run `talos diff`.
///
/// # Errors
/// Unreadable or unsupported inputs, missing graphviz for SVG, unwritable
/// output.
pub fn run(args: Args) -> Result<Outcome> {
    let old = load(&args.old)?;
    let new = load(&args.new)?;
    if old.side.arch != new.side.arch {
        anyhow::bail!(
            "{} is {} but {} is {}: nothing to compare",
            args.old.display(),
            old.side.arch,
            args.new.display(),
            new.side.arch
        );
    }
    let d = talos_cfg::diff::diff(&old.side, &new.side);
    let out: Vec<u8> = match args.format {
        DiffFormat::Json | DiffFormat::Html => {
            let doc = DiffDoc {
                schema: SCHEMA,
                talos_version: env!("CARGO_PKG_VERSION"),
                old: side_doc(&args.old, &old),
                new: side_doc(&args.new, &new),
                verdict: verdict(&d),
                same_graph_digest: d.same_graph_digest,
                summary: d.summary,
                changed: d
                    .pairs
                    .iter()
                    .filter(|p| p.state == PairState::Changed)
                    .collect(),
                unproven: d
                    .pairs
                    .iter()
                    .filter(|p| p.state == PairState::Unproven)
                    .collect(),
                added: &d.added,
                removed: &d.removed,
                moved: d
                    .pairs
                    .iter()
                    .filter(|p| p.state == PairState::Moved)
                    .map(|p| MovedDoc {
                        name: p.name.clone(),
                        old_addr: p.old_addr,
                        new_addr: p.new_addr,
                    })
                    .collect(),
            };
            if args.format == DiffFormat::Html {
                html_page(&args, &old, &new, &d, &doc)?.into_bytes()
            } else {
                let mut s =
                    serde_json::to_string_pretty(&doc).context("serialising talos.diff/1")?;
                s.push('\n');
                s.into_bytes()
            }
        }
        DiffFormat::Text => text(&args, &d).into_bytes(),
        DiffFormat::Dot | DiffFormat::Svg => {
            let (Some(bytes), Some(cfg)) = (&new.bytes, &new.cfg) else {
                anyhow::bail!(
                    "{}: --format dot/svg draws the new build's instructions, so NEW must be a binary, not a saved graph",
                    args.new.display()
                );
            };
            let image = talos_cfg::load(bytes)
                .with_context(|| format!("{}: cannot load", args.new.display()))?;
            let dot = diff_dot(&d, cfg, &image);
            if args.format == DiffFormat::Svg {
                svg(&dot)?
            } else {
                dot.into_bytes()
            }
        }
    };
    output::emit(args.output.as_deref(), &out)?;
    Ok(match verdict(&d) {
        "same" => Outcome::Ok,
        "unproven" => Outcome::Unproven,
        _ => Outcome::Failed,
    })
}

fn load_image<'a>(l: &'a Loaded, path: &Path) -> Result<Option<talos_cfg::Image<'a>>> {
    match &l.bytes {
        Some(b) => {
            Ok(Some(talos_cfg::load(b).with_context(|| {
                format!("{}: cannot load", path.display())
            })?))
        }
        None => Ok(None),
    }
}

fn html_side<'a>(
    l: &'a Loaded,
    path: &Path,
    image: Option<&'a talos_cfg::Image<'a>>,
) -> crate::html::diff::Side<'a> {
    crate::html::diff::Side {
        path: path.display().to_string(),
        kind: l.kind,
        functions: l.side.functions.len(),
        draw: l.cfg.as_ref().zip(image),
    }
}

/// The HTML page, drawing each side that is a binary.
fn html_page(
    args: &Args,
    old: &Loaded,
    new: &Loaded,
    d: &Diff,
    doc: &DiffDoc<'_>,
) -> Result<String> {
    let old_image = load_image(old, &args.old)?;
    let new_image = load_image(new, &args.new)?;
    let input = crate::html::diff::Input {
        old: html_side(old, &args.old, old_image.as_ref()),
        new: html_side(new, &args.new, new_image.as_ref()),
        diff: d,
        verdict: verdict(d),
        doc: serde_json::to_value(doc).context("serialising talos.diff/1")?,
    };
    Ok(crate::html::diff::render(&input))
}

fn diff_dot(d: &Diff, cfg: &talos_cfg::Cfg, image: &talos_cfg::Image<'_>) -> String {
    let mut addrs: Vec<u64> = d
        .pairs
        .iter()
        .filter(|p| matches!(p.state, PairState::Changed | PairState::Unproven))
        .map(|p| p.new_addr)
        .chain(d.added.iter().map(|f| f.addr))
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    let functions: Vec<&talos_cfg::Function> =
        addrs.iter().filter_map(|&a| cfg.function_at(a)).collect();
    let mut highlight: Vec<u64> = Vec::new();
    for p in &d.pairs {
        highlight.extend(p.blocks_changed.iter().map(|b| b.new.addr));
        highlight.extend(p.blocks_added.iter().map(|b| b.addr));
    }
    for f in &d.added {
        if let Some(func) = cfg.function_at(f.addr) {
            highlight.extend(func.blocks.iter().map(|b| b.addr));
        }
    }
    let mut dot = talos_cfg::graph::to_dot(cfg, image, &functions, &highlight);
    let mut label = format!(
        "talos diff: {} changed, {} added, {} removed",
        d.summary.changed, d.summary.added, d.summary.removed
    );
    if !d.removed.is_empty() {
        let names: Vec<&str> = d.removed.iter().take(10).map(|f| f.name.as_str()).collect();
        let _ = write!(label, " (removed: {})", names.join(", "));
    }
    let label = label.replace('"', "\\\"");
    if let Some(pos) = dot.find('\n') {
        dot.insert_str(pos + 1, &format!("  label=\"{label}\"; labelloc=t;\n"));
    }
    dot
}

/// Render DOT with graphviz `dot -Tsvg`.
///
/// # Errors
/// When graphviz is not installed (named in the message) or fails.
pub fn svg(dot: &str) -> Result<Vec<u8>> {
    let mut child = match std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "--format svg needs graphviz `dot`, which is not installed (apt-get install graphviz); use --format dot and render it elsewhere"
        ),
        Err(e) => return Err(e).context("starting graphviz `dot`"),
    };
    let mut stdin = child.stdin.take().context("graphviz `dot` stdin")?;
    let input = dot.as_bytes().to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().context("running graphviz `dot`")?;
    let _ = writer.join();
    if !out.status.success() {
        anyhow::bail!(
            "graphviz `dot -Tsvg` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

fn text(args: &Args, d: &Diff) -> String {
    let mut s = String::new();
    let sm = &d.summary;
    let _ = writeln!(
        s,
        "old  {}  ({} functions)",
        args.old.display(),
        sm.old_functions
    );
    let _ = writeln!(
        s,
        "new  {}  ({} functions)",
        args.new.display(),
        sm.new_functions
    );
    let _ = writeln!(
        s,
        "verdict  {}{}",
        verdict(d),
        if d.same_graph_digest {
            " (graph digests equal)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "  {} unchanged, {} moved, {} changed, {} added, {} removed{}",
        sm.unchanged,
        sm.moved,
        sm.changed,
        sm.added,
        sm.removed,
        undecided(sm.unproven)
    );
    let _ = writeln!(
        s,
        "  matched by name {}, by digest {}, by structure {}",
        sm.matched_by_name, sm.matched_by_digest, sm.matched_by_structure
    );
    for p in d.pairs.iter().filter(|p| p.state == PairState::Changed) {
        let _ = writeln!(
            s,
            "\nchanged  {}  {:#x} -> {:#x}  (matched by {:?})",
            p.name, p.old_addr, p.new_addr, p.matched_by
        );
        for b in &p.blocks_changed {
            let _ = writeln!(
                s,
                "  block ~ +{:#x} {:#x} -> {:#x}  ({} -> {} bytes)",
                b.new.offset, b.old.addr, b.new.addr, b.old.size, b.new.size
            );
        }
        for b in &p.blocks_added {
            let _ = writeln!(
                s,
                "  block + +{:#x} {:#x} ({} bytes)",
                b.offset, b.addr, b.size
            );
        }
        for b in &p.blocks_removed {
            let _ = writeln!(
                s,
                "  block - +{:#x} {:#x} ({} bytes)",
                b.offset, b.addr, b.size
            );
        }
        for e in &p.edges_added {
            let _ = writeln!(s, "  edge  + {:#x} {} {}", e.from, e.kind, e.target);
        }
        for e in &p.edges_removed {
            let _ = writeln!(s, "  edge  - {:#x} {} {}", e.from, e.kind, e.target);
        }
        if let Some(n) = &p.note {
            let _ = writeln!(s, "  note: {n}");
        }
    }
    for p in d.pairs.iter().filter(|p| p.state == PairState::Unproven) {
        let _ = writeln!(
            s,
            "\nundecided  {}  {:#x} -> {:#x}: {}",
            p.name,
            p.old_addr,
            p.new_addr,
            p.note.as_deref().unwrap_or("")
        );
    }
    for f in &d.added {
        let _ = writeln!(
            s,
            "\nadded    {}  {:#x}  {} bytes, {} blocks",
            f.name, f.addr, f.size, f.blocks
        );
    }
    for f in &d.removed {
        let _ = writeln!(
            s,
            "\nremoved  {}  {:#x}  {} bytes, {} blocks",
            f.name, f.addr, f.size, f.blocks
        );
    }
    s
}

/// `, N undecided` after a summary's counts, or nothing when every pair
/// was decided (the text and HTML summaries say it alike).
pub(crate) fn undecided(n: usize) -> String {
    if n > 0 {
        format!(", {n} undecided")
    } else {
        String::new()
    }
}
