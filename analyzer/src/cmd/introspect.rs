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
use crate::source::{self, Spec};
use crate::{input, output};

/// Output formats of `talos introspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Report for people.
    Text,
    /// The `talos.introspect/1` document.
    Json,
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

/// Parse `0x...` or decimal.
pub fn parse_addr(s: &str) -> Result<u64> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse::<u64>(),
    };
    r.with_context(|| format!("{s:?} is not an address (0x... or decimal)"))
}

/// Build the resolver from `--sysroot` and `--binary`.
pub fn resolver(sysroot: Option<PathBuf>, binaries: &[PathBuf]) -> Result<Resolver> {
    if let Some(dir) = &sysroot
        && !dir.is_dir()
    {
        bail!("{}: --sysroot is not a directory", dir.display());
    }
    let mut r = Resolver::new(Box::new(map_loader))
        .sysroot(sysroot)
        .host_vdso(talos_introspect::live::host_vdso());
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
    let resolver = resolver(args.sysroot.clone(), &args.binary)?;
    let opts = Options {
        flow: !args.no_flow,
        flow_cfg: args.flow_cfg,
        ..Options::default()
    };
    let report = if let Some(path) = &args.dump
        && (path.is_dir() || matches!(Spec::parse(path), Spec::Pid(_)))
    {
        // A CRIU image directory (or pid:N): pages the image does not hold
        // come from the mapped files, through the same resolver.
        source::with_dump(&Spec::parse(path), &resolver, |v| {
            Ok(verify::verify(v.dump, &resolver, &v.shown, &opts))
        })?
    } else if let Some(path) = &args.dump {
        let bytes = input::map(path)?;
        let dump = talos_introspect::core::parse(&bytes)
            .with_context(|| format!("{}: cannot read core", path.display()))?;
        verify::verify(&dump, &resolver, &path.display().to_string(), &opts)
    } else if let Some(pid) = args.pid {
        let dump = talos_introspect::live::read(pid, &talos_introspect::live::Options::default())
            .with_context(|| format!("process {pid}: cannot read"))?;
        verify::verify(&dump, &resolver, &format!("pid:{pid}"), &opts)
    } else if let (Some(path), Some(base)) = (&args.raw, &args.base) {
        let base = parse_addr(base)?;
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
        verify::verify(&dump, &resolver, &path.display().to_string(), &opts)
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
    };
    output::emit(args.output.as_deref(), text.as_bytes())?;
    Ok(match report.verdict {
        Overall::Clean => Outcome::Ok,
        Overall::Unverifiable => Outcome::Unproven,
        Overall::Tampered | Overall::BinaryChanged | Overall::Findings => Outcome::Failed,
    })
}

fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20))
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

fn loc(l: &Location) -> String {
    let mut s = l.module.clone();
    if let Some(o) = l.offset {
        let _ = write!(s, "+{o:#x}");
    }
    if let Some(f) = &l.function {
        let _ = write!(s, " {f}");
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
        human_bytes(i.bytes_held)
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
        let bid = m
            .build_id
            .as_deref()
            .or(m.file_build_id.as_deref())
            .map(|b| b.get(..16).unwrap_or(b).to_string())
            .unwrap_or_else(|| "-".into());
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
            "  tid {:<7} pc {:#x}  {}  [{}]",
            t.tid,
            t.pc,
            loc(&t.location),
            t.pc_check
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
