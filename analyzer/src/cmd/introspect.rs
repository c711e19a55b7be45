//! `talos introspect`: prove that the code in a memory dump (or a live
//! process) is exactly the audited binaries, and find code that should not
//! be there.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use talos_introspect::dump::{Arch, Dump};
use talos_introspect::region::Perms;
use talos_introspect::report::{FrameMethod, Location, Overall, Report, Verdict};
use talos_introspect::resolve::{FileBytes, Resolver};
use talos_introspect::verify::{self, Options};

use crate::Outcome;
use crate::html::introspect::{Extras, Insn, MapRegion, TamperedFunction};
use crate::source::{self, Spec};
use crate::{html, input, output};

/// Output formats of `talos introspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Report for people.
    Text,
    /// The `talos.introspect/1` document.
    Json,
    /// One self-contained HTML page (memory map, tampered code, threads).
    Html,
}

/// Arguments of `talos introspect`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["dump", "pid", "raw"])))]
pub struct Args {
    /// ELF core file (from the kernel, gdb's gcore, or talos snapshot), or
    /// a CRIU image directory (criu dump -D DIR).
    pub dump: Option<PathBuf>,
    /// Read a live process instead (stopped only while it is read).
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// A raw memory image (needs --base).
    #[arg(long, value_name = "FILE", requires = "base")]
    pub raw: Option<PathBuf>,
    /// Address of the first byte of the raw image (0x... or decimal).
    #[arg(long, value_name = "ADDR", requires = "raw")]
    pub base: Option<String>,
    /// Protections of the raw image when no --binary lays it out.
    #[arg(long, value_name = "PERMS", default_value = "r-x", requires = "raw")]
    pub perms: String,
    /// Look module paths up under DIR (dumps taken on another machine).
    #[arg(long, value_name = "DIR")]
    pub sysroot: Option<PathBuf>,
    /// Compare the module with this file's build-id (or file name) against
    /// PATH; repeatable.
    #[arg(long, value_name = "PATH")]
    pub binary: Vec<PathBuf>,
    /// Compare the dump's [vdso] with this vDSO, saved on the host the dump
    /// was taken on (`talos snapshot` writes CORE.vdso), as well as with
    /// this machine's. It is the reference: pass only a file you trust.
    #[arg(long, value_name = "FILE")]
    pub vdso: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Do not unwind threads nor check their pcs and return addresses.
    #[arg(long, conflicts_with = "flow_cfg")]
    pub no_flow: bool,
    /// Check pcs and return addresses against the whole recovered CFG of
    /// each module a thread runs in (slow: seconds per MB of code).
    #[arg(long)]
    pub flow_cfg: bool,
}

/// File bytes mapped by [`input::map`].
struct Mapped(input::Input);

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn map_loader(path: &Path) -> std::io::Result<FileBytes> {
    match input::map(path) {
        Ok(i) => Ok(Arc::new(Mapped(i))),
        Err(e) => {
            let kind = e
                .chain()
                .find_map(|c| c.downcast_ref::<std::io::Error>())
                .map_or(std::io::ErrorKind::Other, std::io::Error::kind);
            Err(std::io::Error::new(kind, format!("{e:#}")))
        }
    }
}

/// Most bytes read from a `--vdso` file (a vDSO is a few pages).
const MAX_VDSO_FILE: u64 = 1 << 20;

/// Read a saved vDSO.
fn read_vdso(path: &Path) -> Result<(String, Vec<u8>)> {
    use std::io::Read as _;
    let f = std::fs::File::open(path)
        .with_context(|| format!("{}: cannot read --vdso", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_VDSO_FILE + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: cannot read --vdso", path.display()))?;
    if bytes.len() as u64 > MAX_VDSO_FILE {
        bail!(
            "{}: --vdso is larger than {MAX_VDSO_FILE} bytes: not a vDSO",
            path.display()
        );
    }
    talos_cfg::load(&bytes)
        .with_context(|| format!("{}: --vdso is not a vDSO image", path.display()))?;
    Ok((path.display().to_string(), bytes))
}

/// Build the resolver from `--sysroot`, `--binary` and `--vdso`.
pub fn resolver(
    sysroot: Option<PathBuf>,
    binaries: &[PathBuf],
    vdso: Option<&Path>,
) -> Result<Resolver> {
    if let Some(dir) = &sysroot
        && !dir.is_dir()
    {
        bail!("{}: --sysroot is not a directory", dir.display());
    }
    let saved = match vdso {
        Some(p) => Some(read_vdso(p)?),
        None => None,
    };
    let mut r = Resolver::new(Box::new(map_loader))
        .sysroot(sysroot)
        .host_vdso(talos_introspect::live::host_vdso())
        .saved_vdso(saved);
    for b in binaries {
        r.add_binary(b)
            .with_context(|| format!("{}: cannot read --binary", b.display()))?;
    }
    Ok(r)
}

/// Run `talos introspect`.
///
/// # Errors
/// Unreadable input, bad arguments, unwritable output.
pub fn run(args: Args) -> Result<Outcome> {
    let resolver = resolver(args.sysroot.clone(), &args.binary, args.vdso.as_deref())?;
    let opts = Options {
        flow: !args.no_flow,
        flow_cfg: args.flow_cfg,
        ..Options::default()
    };
    let html = args.format == Format::Html;
    // The page also draws every mapping and disassembles tampered code,
    // which needs the dump while it is still open.
    let judge = |dump: &Dump<'_>, name: &str| {
        let report = verify::verify(dump, &resolver, name, &opts);
        let extras = html.then(|| html_extras(dump, &report));
        (report, extras)
    };
    let (report, extras) = if let Some(path) = &args.dump
        && (path.is_dir() || matches!(Spec::parse(path), Spec::Pid(_)))
    {
        // A CRIU image directory (or pid:N): pages the image does not hold
        // come from the mapped files, through the same resolver.
        source::with_dump(&Spec::parse(path), &resolver, |v| {
            Ok(judge(v.dump, &v.shown))
        })?
    } else if let Some(path) = &args.dump {
        let bytes = input::map(path)?;
        let dump = talos_introspect::core::parse(&bytes)
            .with_context(|| format!("{}: cannot read core", path.display()))?;
        judge(&dump, &path.display().to_string())
    } else if let Some(pid) = args.pid {
        let dump = talos_introspect::live::read(pid, &talos_introspect::live::Options::default())
            .with_context(|| format!("process {pid}: cannot read"))?;
        judge(&dump, &format!("pid:{pid}"))
    } else if let (Some(path), Some(base)) = (&args.raw, &args.base) {
        let base = crate::input::parse_addr(base)?;
        let perms = Perms::parse(&args.perms)
            .with_context(|| format!("--perms {:?}: expected r-x style", args.perms))?;
        let bytes = input::map(path)?;
        let binary = match args.binary.first() {
            Some(b) => Some((input::map(b)?, b.display().to_string())),
            None => None,
        };
        let image = match &binary {
            Some((bytes, name)) => Some(
                talos_cfg::load(bytes).with_context(|| format!("{name}: cannot load --binary"))?,
            ),
            None => None,
        };
        let layout = image.as_ref().zip(binary.as_ref().map(|b| b.1.as_str()));
        let dump: Dump<'_> =
            talos_introspect::raw::dump(&bytes, base, perms, Arch::X86_64, layout, 4096);
        judge(&dump, &path.display().to_string())
    } else {
        bail!("give a DUMP, --pid PID, or --raw FILE --base ADDR");
    };
    let text = match args.format {
        Format::Json => {
            let mut s =
                serde_json::to_string_pretty(&report).context("serialising talos.introspect/1")?;
            s.push('\n');
            s
        }
        Format::Text => render(&report),
        Format::Html => html::introspect::render(&report, &extras.unwrap_or_default()),
    };
    output::emit(args.output.as_deref(), text.as_bytes())?;
    Ok(match report.verdict {
        Overall::Clean => Outcome::Ok,
        Overall::Unverifiable => Outcome::Unproven,
        Overall::Tampered | Overall::BinaryChanged | Overall::Findings => Outcome::Failed,
    })
}

fn loc(l: &Location) -> String {
    loc_as(l.module.clone(), l, " ")
}

/// The first 16 hex digits of a module's build-id: the one in the dump,
/// else the file's; `None` when neither is known.
pub(crate) fn short_build_id(m: &talos_introspect::report::ModuleReport) -> Option<String> {
    m.build_id
        .as_deref()
        .or(m.file_build_id.as_deref())
        .map(|b| b.get(..16).unwrap_or(b).to_string())
}

/// `MODULE+OFFSET FUNCTION+OFFSET` of a location, with `module` as the
/// module's name and `gap` before the function's (the text report and the
/// HTML page write them differently).
pub(crate) fn loc_as(module: String, l: &Location, gap: &str) -> String {
    let mut s = module;
    if let Some(o) = l.offset {
        let _ = write!(s, "+{o:#x}");
    }
    if let Some(f) = &l.function {
        let _ = write!(s, "{gap}{f}");
        if let Some(fo) = l.function_offset {
            let _ = write!(s, "+{fo:#x}");
        }
    }
    s
}

/// The text report.
#[must_use]
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let i = &r.input;
    let what = match i.source.as_str() {
        "live" => "live process".to_string(),
        "raw" => "raw image".to_string(),
        "criu" => "CRIU image directory".to_string(),
        other => format!("{other} core"),
    };
    let _ = writeln!(
        s,
        "{}: {what}, {}, {} threads, {} regions, {} held",
        i.path,
        i.arch,
        i.threads,
        i.regions,
        crate::output::human_bytes(i.bytes_held)
    );
    if let Some(p) = &i.process {
        let _ = writeln!(s, "  process {} ({}) {}", p.pid, p.name, p.args);
    }
    let _ = writeln!(
        s,
        "verdict: {} — {}",
        r.verdict.name().to_uppercase(),
        r.summary
    );
    let _ = writeln!(s, "\nmodules:");
    let _ = writeln!(
        s,
        "  {:<18} {:<15} {:>10} {:>10}  {:<16} path",
        "base", "verdict", "code", "compared", "build-id"
    );
    for m in &r.modules {
        let bid = short_build_id(m).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "  {:<#18x} {:<15} {:>10} {:>10}  {:<16} {}",
            m.base,
            m.verdict.name(),
            m.code_bytes,
            m.compared_bytes,
            bid,
            m.path
        );
        if m.verdict != Verdict::Clean {
            let _ = writeln!(s, "      {}", m.reason);
        }
        for d in &m.diffs {
            let f = match (&d.function, d.function_offset) {
                (Some(f), Some(o)) => format!(" in {f}+{o:#x}"),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "      differs at {:#x} (+{:#x}, file offset {:#x}), {} byte(s){f}: expected {} found {}",
                d.addr, d.module_offset, d.file_offset, d.len, d.expected, d.actual
            );
        }
        if m.diffs_omitted > 0 {
            let _ = writeln!(
                s,
                "      ... and {} more runs (see --format json)",
                m.diffs_omitted
            );
        }
    }
    let _ = writeln!(s, "\nfindings: {}", r.findings.len());
    for f in &r.findings {
        let _ = writeln!(s, "  {:<10} {:#x}  {}", f.kind.name(), f.addr, f.message);
    }
    let _ = writeln!(s, "\nthreads:");
    for t in &r.threads {
        let cfi = t
            .frames
            .iter()
            .filter(|f| f.method == FrameMethod::Cfi)
            .count();
        let scan = t
            .frames
            .iter()
            .filter(|f| f.method == FrameMethod::Scan)
            .count();
        let _ = writeln!(
            s,
            "  tid {:<7} pc {:#x}  {}  [{}]  flow {}{}",
            t.tid,
            t.pc,
            loc(&t.location),
            t.pc_check.name(),
            t.flow.name(),
            t.not_checked
                .map(|r| format!(" ({})", r.code()))
                .unwrap_or_default()
        );
        let _ = writeln!(
            s,
            "      {cfi} frame(s) unwound by CFI, {scan} found by stack scan (heuristic); unwinding stopped: {}",
            t.unwind_stop
        );
        for (n, f) in t.frames.iter().enumerate().skip(1) {
            let method = match f.method {
                FrameMethod::Registers => "regs",
                FrameMethod::Cfi => "cfi ",
                FrameMethod::Scan => "scan",
            };
            let follows = match (f.follows_call, f.method) {
                (Some(false), _) => "  (does not follow a call)",
                (None, FrameMethod::Cfi) => "  (signal frame or unchecked)",
                _ => "",
            };
            let _ = writeln!(
                s,
                "      #{n:<2} {method} {:#x}  {}{follows}",
                f.pc,
                loc(&f.location)
            );
        }
    }
    if !r.unchecked.is_empty() {
        let _ = writeln!(
            s,
            "\nnot checked: {} (so the verdict cannot be clean)",
            r.unchecked.len()
        );
        for u in &r.unchecked {
            let _ = writeln!(
                s,
                "  {:<11} {:<22} {}\n      {}",
                u.part.name(),
                u.subject,
                u.reason.code(),
                u.detail
            );
        }
    }
    if !r.anomalies.is_empty() {
        let _ = writeln!(s, "\ninput anomalies:");
        for a in &r.anomalies {
            let _ = writeln!(s, "  {:<22} {}", a.code, a.message);
        }
    }
    if !r.notes.is_empty() {
        let _ = writeln!(s, "\nnotes:");
        for n in &r.notes {
            let _ = writeln!(s, "  {n}");
        }
    }
    s
}

/// Most tampered functions disassembled on the page.
const MAX_TAMPERED_FUNCTIONS: usize = 16;
/// Functions larger than this are disassembled from the block holding the
/// first differing byte, for this many bytes.
const MAX_LISTING_BYTES: u64 = 2048;

/// What the HTML page draws beyond the report: every mapping, and the
/// functions around tampered bytes disassembled from the file and from
/// memory.
fn html_extras(dump: &Dump<'_>, report: &Report) -> Extras {
    let mut regions: Vec<MapRegion> = dump
        .regions
        .iter()
        .map(|g| MapRegion {
            start: g.start,
            end: g.end,
            perms: g.perms.to_string(),
            name: match &g.kind {
                talos_introspect::region::RegionKind::File { path, .. } => path.clone(),
                talos_introspect::region::RegionKind::Other { name } => name.clone(),
                other => html::serde_name(other),
            },
            held: g.bytes.len() as u64,
        })
        .collect();
    // Mappings the process had that the dump left out altogether (a core
    // written with a filter that skips file-backed code lists them only in
    // NT_FILE): drawn too, as held by nothing, protections unknown.
    let mut missing = Vec::new();
    for f in &dump.file_mappings {
        let mut at = f.start;
        let mut covering: Vec<(u64, u64)> = dump
            .regions
            .iter()
            .filter(|g| g.start < f.end && f.start < g.end)
            .map(|g| (g.start, g.end))
            .collect();
        covering.sort_unstable();
        for (s, e) in covering {
            if s > at {
                missing.push((at, s, f.path.clone()));
            }
            at = at.max(e);
        }
        if at < f.end {
            missing.push((at, f.end, f.path.clone()));
        }
    }
    regions.extend(missing.into_iter().map(|(start, end, name)| MapRegion {
        start,
        end,
        perms: "?".into(),
        name,
        held: 0,
    }));
    regions.sort_by_key(|g| (g.start, g.end));
    let mut tampered = Vec::new();
    for m in report.modules.iter().filter(|m| !m.diffs.is_empty()) {
        if tampered.len() >= MAX_TAMPERED_FUNCTIONS {
            break;
        }
        tampered.extend(disassemble_module(
            dump,
            m,
            MAX_TAMPERED_FUNCTIONS - tampered.len(),
        ));
    }
    Extras { regions, tampered }
}

fn disassemble_module(
    dump: &Dump<'_>,
    m: &talos_introspect::report::ModuleReport,
    max: usize,
) -> Vec<TamperedFunction> {
    let skip = |why: String| {
        vec![TamperedFunction {
            module: m.path.clone(),
            function: "(no listing)".into(),
            start: m.base,
            link_start: m.base,
            expected: Vec::new(),
            found: Vec::new(),
            note: Some(why),
        }]
    };
    let (Some(file), Some(bias)) = (&m.file, m.load_bias) else {
        return skip(
            "No file or load bias for this module: the differing bytes above are all there is."
                .into(),
        );
    };
    let bytes = match input::map(Path::new(file)) {
        Ok(b) => b,
        Err(e) => return skip(format!("{file}: cannot read for the listing: {e:#}")),
    };
    let image = match talos_cfg::load(&bytes) {
        Ok(i) => i,
        Err(e) => return skip(format!("{file}: cannot load for the listing: {e}")),
    };
    let Ok(dec) = talos_cfg::arch::decoder_for(&image) else {
        return skip(format!("{file}: no disassembler for its architecture"));
    };
    // The load bias is known here, so every run has its link address.
    let links: Vec<u64> = m.diffs.iter().filter_map(|d| d.link_addr).collect();
    let cfg = talos_cfg::analyze_functions(&image, &links).ok();
    // One listing per function (or per stretch, outside any function).
    let mut windows: Vec<(u64, u64, String)> = Vec::new();
    for (d, link) in m.diffs.iter().filter_map(|d| Some((d, d.link_addr?))) {
        if windows.iter().any(|(s, e, _)| link >= *s && link < *e) {
            continue;
        }
        let f = cfg.as_ref().and_then(|c| c.function_containing(link));
        let (start, end, name) = match f {
            Some(f) if f.size <= MAX_LISTING_BYTES => (
                f.addr,
                f.addr.saturating_add(f.size.max(1)),
                f.display_name(),
            ),
            Some(f) => {
                let b = f.block_containing(link).map_or(link, |b| b.addr);
                let end = b
                    .saturating_add(MAX_LISTING_BYTES)
                    .min(f.addr.saturating_add(f.size));
                (
                    b,
                    end.max(b.saturating_add(1)),
                    format!(
                        "{} (from +{:#x})",
                        f.display_name(),
                        b.saturating_sub(f.addr)
                    ),
                )
            }
            // No function: decode from the differing byte itself; on x86
            // the listing may start mid-instruction, the hex above is exact.
            None => (
                link,
                link.saturating_add(d.len.clamp(16, 256)),
                format!("{link:#x} (no function)"),
            ),
        };
        windows.push((start, end, name));
        if windows.len() >= max {
            break;
        }
    }
    let differs = |a: u64, len: u64| {
        m.diffs
            .iter()
            .any(|d| a < d.addr.saturating_add(d.len) && d.addr < a.saturating_add(len))
    };
    windows
        .into_iter()
        .map(|(start, end, name)| {
            let len = end.saturating_sub(start);
            let file_bytes = image
                .bytes_from(start)
                .map(|b| b.get(..len as usize).unwrap_or(b));
            let mem = dump.read(start.wrapping_add(bias), len);
            let list = |code: Option<&[u8]>| -> Vec<Insn> {
                let Some(code) = code else { return Vec::new() };
                let mut out = Vec::new();
                let mut off = 0usize;
                while off < code.len() && out.len() < 2048 {
                    let at = start.wrapping_add(off as u64);
                    let rest = code.get(off..).unwrap_or(&[]);
                    let (n, text) = match dec.decode(rest, at, None) {
                        Some(i) if i.len > 0 => (
                            i.len as usize,
                            dec.render(rest, at).unwrap_or_else(|| "?".into()),
                        ),
                        _ => (1, "(bad)".into()),
                    };
                    let ib = rest.get(..n.min(rest.len())).unwrap_or(&[]);
                    out.push(Insn {
                        addr: at.wrapping_add(bias),
                        bytes: talos_cfg::hex(ib),
                        text,
                        differs: differs(at.wrapping_add(bias), n as u64),
                    });
                    off += n;
                }
                out
            };
            let expected = list(file_bytes);
            let found = list(mem);
            let note = match (expected.is_empty(), found.is_empty()) {
                (true, _) => Some("The file holds no bytes at these addresses.".into()),
                (_, true) => Some("The dump does not hold these bytes.".into()),
                _ => None,
            };
            TamperedFunction {
                module: m.path.clone(),
                function: name,
                start: start.wrapping_add(bias),
                link_start: start,
                expected,
                found,
                note,
            }
        })
        .collect()
}
