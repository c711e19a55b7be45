//! `talos digest`: the state digest of a memory dump (a Merkle tree of
//! BLAKE3 over its pages), and `talos digest --diff A B`: which pages and
//! regions differ between two dumps or two saved digests.
//!
//! Exit codes: 0 digest written / digests equal; 1 digests differ; 2 bad
//! usage, unreadable input, inconsistent digest file, or digests made with
//! different settings.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use talos_introspect::digest::schema::{self, DiffDoc, DigestDoc, InputDoc};
use talos_introspect::digest::{
    DigestDiff, DigestOptions, MaskRule, PageChange, RegionSide, RegionStatus, Selection,
    StateDigest, diff, state_digest_with,
};
use talos_introspect::dump::{Arch, Dump};
use talos_introspect::region::Perms;

use crate::Outcome;
use crate::source::{self, Spec};
use crate::{input, output};

/// Output formats of `talos digest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Summary for people.
    Text,
    /// `talos.digest/1` (or `talos.digest-diff/1` with --diff).
    Json,
}

/// A mask rule, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuleArg {
    /// The rseq areas' CPU-identity fields.
    RseqCpuId,
    /// The `[vdso]` region.
    Vdso,
    /// The `[vvar]` regions.
    Vvar,
    /// The `[vsyscall]` page.
    Vsyscall,
}

impl RuleArg {
    fn rule(self) -> MaskRule {
        match self {
            RuleArg::RseqCpuId => MaskRule::RseqCpuId,
            RuleArg::Vdso => MaskRule::Vdso,
            RuleArg::Vvar => MaskRule::Vvar,
            RuleArg::Vsyscall => MaskRule::Vsyscall,
        }
    }
}

/// Arguments of `talos digest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The dump: an ELF core (kernel, gdb's gcore, talos snapshot), a CRIU
    /// image directory (criu dump -D DIR), a live process as pid:N, a raw
    /// memory image with --raw, or a saved talos.digest/1 file (checked and
    /// shown again; it keeps the settings it was made with). With --diff:
    /// two of these, A then B.
    #[arg(required_unless_present = "pid", num_args = 1..=2, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Digest a live process (stopped with ptrace only while it is read);
    /// the same as the input pid:PID.
    #[arg(long, value_name = "PID", conflicts_with = "diff")]
    pub pid: Option<u32>,
    /// Compare two inputs: name the regions and pages that differ.
    /// Exit 0 when equal, 1 when different.
    #[arg(long)]
    pub diff: bool,
    /// Read inputs that are not digest files as raw memory images (one
    /// region at --base).
    #[arg(long)]
    pub raw: bool,
    /// Address of the first byte of a raw image (0x... or decimal).
    #[arg(long, value_name = "ADDR", default_value = "0", requires = "raw")]
    pub base: String,
    /// Protections of a raw image.
    #[arg(long, value_name = "PERMS", default_value = "rw-", requires = "raw")]
    pub perms: String,
    /// Digest every region, not only the writable and anonymous ones.
    #[arg(long)]
    pub all: bool,
    /// Address of a thread's `struct rseq` to mask; repeatable.
    #[arg(long, value_name = "ADDR")]
    pub rseq: Vec<String>,
    /// glibc's `__rseq_offset` (0x..., may be negative): mask the rseq area
    /// at each thread's thread pointer plus OFFSET.
    #[arg(long, value_name = "OFFSET", allow_hyphen_values = true)]
    pub rseq_offset: Option<String>,
    /// Turn a mask rule off; repeatable. The digest records the rules in
    /// force, and digests with different rules never compare equal.
    #[arg(long, value_enum, value_name = "RULE")]
    pub no_mask: Vec<RuleArg>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Do not pre-fault each 1 MiB of a mapped dump before hashing it
    /// (for benchmarks).
    #[arg(long, hide = true)]
    pub no_prefetch: bool,
}

/// Parse `0x...` or decimal, optionally negative.
fn parse_signed(s: &str) -> Result<i64> {
    let (neg, t) = match s.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, s),
    };
    let v = crate::input::parse_addr(t)?;
    let v = i64::try_from(v).with_context(|| format!("{s:?} is out of range"))?;
    Ok(if neg { -v } else { v })
}

/// Settings shared by both inputs of a diff.
struct Settings {
    options: DigestOptions,
    rseq_offset: Option<i64>,
    raw: Option<(u64, Perms)>,
    prefetch: bool,
}

/// A digest and where it came from.
struct Loaded {
    digest: StateDigest,
    input: InputDoc,
    /// Threads in the dump for which no rseq area was given.
    threads_unmasked: usize,
}

fn settings(args: &Args) -> Result<Settings> {
    let mut rules: std::collections::BTreeSet<MaskRule> = MaskRule::ALL.into_iter().collect();
    for r in &args.no_mask {
        rules.remove(&r.rule());
    }
    let rseq_areas = args
        .rseq
        .iter()
        .map(|s| crate::input::parse_addr(s).context("--rseq"))
        .collect::<Result<Vec<_>>>()?;
    let rseq_offset = args
        .rseq_offset
        .as_deref()
        .map(|s| parse_signed(s).context("--rseq-offset"))
        .transpose()?;
    let raw = if args.raw {
        let base = crate::input::parse_addr(&args.base).context("--base")?;
        let perms = Perms::parse(&args.perms)
            .filter(|_| args.perms.len() == 3)
            .with_context(|| {
                format!("--perms {:?}: expected three letters like rw-", args.perms)
            })?;
        Some((base, perms))
    } else {
        None
    };
    Ok(Settings {
        options: DigestOptions {
            selection: if args.all {
                Selection::All
            } else {
                Selection::State
            },
            rules,
            rseq_areas,
        },
        rseq_offset,
        raw,
        prefetch: !args.no_prefetch,
    })
}

fn looks_like_json(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{')
}

fn load(path: &Path, s: &Settings) -> Result<Loaded> {
    let spec = Spec::parse(path);
    if matches!(spec, Spec::Pid(_)) || path.is_dir() {
        if s.raw.is_some() {
            bail!(
                "{}: --raw reads files, not a directory or a process",
                spec.shown()
            );
        }
        let resolver = crate::cmd::introspect::resolver(None, &[], None)?;
        return source::with_dump(&spec, &resolver, |v| {
            let (digest, threads_unmasked) =
                digest_of(v.dump, s, v.rseq.as_ref(), &|slice: &[u8]| {
                    if s.prefetch {
                        v.prefetch(slice);
                    }
                })
                .with_context(|| format!("{}: cannot digest", v.shown))?;
            Ok(Loaded {
                digest,
                input: input_doc(v.dump, &v.shown),
                threads_unmasked,
            })
        });
    }
    let shown = path.display().to_string();
    let bytes = input::map(path)?;
    if looks_like_json(&bytes) {
        match serde_json::from_slice::<DigestDoc>(&bytes) {
            Ok(doc) => {
                let mut input = doc.input.clone().unwrap_or(InputDoc {
                    path: shown.clone(),
                    format: "digest".into(),
                    anomalies: Vec::new(),
                });
                input.path = shown.clone();
                let digest = doc
                    .into_digest()
                    .with_context(|| format!("{shown}: rejected digest file"))?;
                return Ok(Loaded {
                    digest,
                    input,
                    threads_unmasked: 0,
                });
            }
            Err(e) if s.raw.is_none() => {
                return Err(e).with_context(|| format!("{shown}: not a talos.digest/1 file"));
            }
            Err(_) => {}
        }
    }
    let dump = if let Some((base, perms)) = s.raw {
        Dump::from_raw(&bytes, base, perms, Arch::X86_64)
    } else if talos_introspect::core::is_core(&bytes) {
        talos_introspect::core::parse(&bytes).with_context(|| format!("{shown}: cannot read"))?
    } else {
        bail!(
            "{shown}: not an ELF core, a CRIU image directory or a talos.digest/1 file (use --raw for a raw memory image)"
        );
    };
    let map: Option<&memmap2::Mmap> = match &bytes {
        input::Input::Mapped(m, _) if s.prefetch => Some(m),
        _ => None,
    };
    let prefetch = |slice: &[u8]| {
        if let Some(m) = map {
            crate::input::populate(m, slice);
        }
    };
    let (digest, threads_unmasked) =
        digest_of(&dump, s, None, &prefetch).with_context(|| format!("{shown}: cannot digest"))?;
    Ok(Loaded {
        digest,
        input: input_doc(&dump, &shown),
        threads_unmasked,
    })
}

fn input_doc(dump: &Dump<'_>, shown: &str) -> InputDoc {
    InputDoc {
        path: shown.to_string(),
        format: dump.source.name().to_string(),
        anomalies: dump
            .anomalies
            .iter()
            .map(|a| format!("{}: {}", a.code, a.message))
            .collect(),
    }
}

/// The digest of `dump` with the settings' masks. The rseq areas come from
/// `--rseq`/`--rseq-offset` when given, else from the input when it records
/// them exactly (`exact`: a CRIU image), else from glibc's `__rseq_offset`
/// read in the dump's own memory. Returns the digest and the number of
/// threads left without an rseq area.
fn digest_of(
    dump: &Dump<'_>,
    s: &Settings,
    exact: Option<&(Vec<u64>, usize)>,
    prefetch: &(dyn Fn(&[u8]) + Sync),
) -> Result<(StateDigest, usize)> {
    let mut options = s.options.clone();
    let mut threads_unmasked = 0;
    match (s.rseq_offset, exact) {
        (Some(off), _) => {
            let (areas, missing) = talos_introspect::measure::rseq_areas(dump, off);
            options.rseq_areas.extend(areas);
            threads_unmasked = missing;
        }
        (None, Some((areas, missing))) if options.rseq_areas.is_empty() && s.raw.is_none() => {
            options.rseq_areas.extend(areas.iter().copied());
            threads_unmasked = *missing;
        }
        // Neither given: read glibc's `__rseq_offset` from the dump itself
        // (ld.so's dynamic symbols are in memory), so two hosts given the
        // same dump mask the same bytes without being told anything.
        (None, _) if options.rseq_areas.is_empty() && s.raw.is_none() => {
            match talos_introspect::measure::detect_rseq(dump) {
                talos_introspect::measure::Rseq::Registered { offset, .. } => {
                    let (areas, missing) = talos_introspect::measure::rseq_areas(dump, offset);
                    options.rseq_areas.extend(areas);
                    threads_unmasked = missing;
                }
                // glibc registered no rseq areas: the kernel writes nothing.
                talos_introspect::measure::Rseq::Unregistered { .. } => {}
                talos_introspect::measure::Rseq::Unknown(_) => {
                    threads_unmasked = dump.threads.len();
                }
            }
        }
        (None, _) => {
            threads_unmasked = dump.threads.len().saturating_sub(options.rseq_areas.len());
        }
    }
    let digest = state_digest_with(&dump.regions, &options, prefetch)?;
    Ok((digest, threads_unmasked))
}

fn tool() -> String {
    format!("talos {}", env!("CARGO_PKG_VERSION"))
}

/// Run `talos digest`.
///
/// # Errors
/// Bad arguments, unreadable or inconsistent input, unwritable output.
pub fn run(mut args: Args) -> Result<Outcome> {
    let s = settings(&args)?;
    if let Some(pid) = args.pid {
        if !args.inputs.is_empty() {
            bail!("give --pid PID or an INPUT, not both");
        }
        args.inputs.push(PathBuf::from(format!("pid:{pid}")));
    }
    match (args.diff, args.inputs.as_slice()) {
        (false, [one]) => {
            let l = load(one, &s)?;
            // Only a capacity hint for the output (80 bytes a page): a count
            // past usize reserves nothing ahead, the text is still whole.
            let capacity = usize::try_from(l.digest.pages)
                .unwrap_or(0)
                .saturating_mul(80)
                .saturating_add(1 << 16);
            let text = match args.format {
                Format::Json => json(
                    &DigestDoc::new(&l.digest, Some(tool()), Some(l.input)),
                    capacity,
                )?,
                Format::Text => digest_text(&l).into_bytes(),
            };
            output::emit(args.output.as_deref(), &text)?;
            Ok(Outcome::Ok)
        }
        (true, [a, b]) => {
            let la = load(a, &s)?;
            let lb = load(b, &s)?;
            let d = diff(&la.digest, &lb.digest)
                .with_context(|| format!("{} and {}", la.input.path, lb.input.path))?;
            let text = match args.format {
                Format::Json => json(&DiffDoc::new(&d, &la.input.path, &lb.input.path), 1 << 16)?,
                Format::Text => diff_text(&d, &la, &lb).into_bytes(),
            };
            output::emit(args.output.as_deref(), &text)?;
            Ok(if d.equal {
                Outcome::Ok
            } else {
                Outcome::Failed
            })
        }
        (false, _) => bail!("give one input, or --diff with two"),
        (true, _) => bail!("--diff needs two inputs, A and B"),
    }
}

/// Pretty JSON and a newline, into a buffer sized up front (`capacity`:
/// about 80 bytes per page hash) so a multi-GiB dump's page list is not
/// copied by repeated growth.
fn json<T: serde::Serialize>(doc: &T, capacity: usize) -> Result<Vec<u8>> {
    let mut v = Vec::with_capacity(capacity);
    serde_json::to_writer_pretty(&mut v, doc).context("serialising JSON")?;
    v.push(b'\n');
    Ok(v)
}

fn status_text(st: RegionStatus) -> String {
    match st {
        RegionStatus::Included => "state".into(),
        RegionStatus::Excluded => "excluded".into(),
        RegionStatus::Masked(r) => format!("masked:{r}"),
    }
}

fn digest_text(l: &Loaded) -> String {
    let d = &l.digest;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} state digest of {} ({})",
        schema::SCHEMA,
        l.input.path,
        l.input.format
    );
    let _ = writeln!(s, "root      {}", d.root);
    let _ = writeln!(
        s,
        "selection {}",
        match d.selection {
            Selection::State => "state: writable or anonymous regions (--all for every region)",
            Selection::All => "all regions (--all)",
        }
    );
    let rules: Vec<&str> = d.rules.iter().map(|r| r.name()).collect();
    let ranges: usize = d.included().map(|r| r.masked.len()).sum();
    let whole = d
        .regions
        .iter()
        .filter(|r| matches!(r.status, RegionStatus::Masked(_)))
        .count();
    let _ = writeln!(
        s,
        "masks     {} ({ranges} rseq ranges, {whole} whole regions masked)",
        if rules.is_empty() {
            "none".to_string()
        } else {
            rules.join(" ")
        }
    );
    if d.rules.contains(&MaskRule::RseqCpuId) && l.threads_unmasked > 0 {
        let _ = writeln!(
            s,
            "warning   {} threads without an rseq area (glibc's __rseq_offset is not readable from the dump): give --rseq-offset or --rseq ADDR, or their cpu_id fields make equal states differ",
            l.threads_unmasked
        );
    }
    for a in &d.rseq_unmatched {
        let _ = writeln!(
            s,
            "warning   rseq area {a:#x} is in no state region; nothing masked"
        );
    }
    let included = d.included().count();
    let held = if d.missing == 0 {
        "all held by the dump".to_string()
    } else {
        format!(
            "{} more not in the dump (bound as missing)",
            crate::output::human_bytes(d.missing)
        )
    };
    let _ = writeln!(
        s,
        "hashed    {} pages, {} in {included} regions; {held}",
        d.pages,
        crate::output::human_bytes(d.bytes),
    );
    if !l.input.anomalies.is_empty() {
        let _ = writeln!(
            s,
            "anomalies {} (see --format json)",
            l.input.anomalies.len()
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<18} {:<18} {:<5} {:<16} {:>8} {:<16} path",
        "start", "end", "perms", "status", "pages", "root"
    );
    for r in &d.regions {
        let root = r
            .root
            .map(|h| h.to_string().chars().take(16).collect::<String>())
            .unwrap_or_else(|| "-".into());
        let mut pages = r.pages.len().to_string();
        if r.status == RegionStatus::Included && r.missing() > 0 {
            pages.push('+');
        }
        let _ = writeln!(
            s,
            "{:#018x} {:#018x} {:<5} {:<16} {:>8} {:<16} {}",
            r.start,
            r.end,
            r.perms.to_string(),
            status_text(r.status),
            pages,
            root,
            r.path().unwrap_or("")
        );
        if r.status == RegionStatus::Included {
            for m in &r.masked {
                let _ = writeln!(s, "{:>18} masked {:#x}+{} ({})", "", m.start, m.len, m.rule);
            }
        }
    }
    if d.regions
        .iter()
        .any(|r| r.status == RegionStatus::Included && r.missing() > 0)
    {
        let _ = writeln!(
            s,
            "\n+ the dump does not hold the whole region; the missing tail is bound as missing, not as zeros"
        );
    }
    s
}

fn side_text(x: Option<&RegionSide>) -> String {
    match x {
        None => "none".into(),
        Some(x) => format!(
            "{:#x} {} {} held {}{}",
            x.end,
            x.perms,
            status_text(x.status),
            x.present,
            x.path
                .as_deref()
                .map(|p| format!(" {p}"))
                .unwrap_or_default()
        ),
    }
}

/// Page runs listed in text before "... and N more".
const TEXT_RUNS: usize = 64;

fn diff_text(d: &DigestDiff, a: &Loaded, b: &Loaded) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "A {}  {}", a.digest.root, a.input.path);
    let _ = writeln!(s, "B {}  {}", b.digest.root, b.input.path);
    if d.equal {
        let _ = writeln!(
            s,
            "equal: {} pages, {} in {} regions",
            a.digest.pages,
            crate::output::human_bytes(a.digest.bytes),
            a.digest.included().count()
        );
        if a.digest.missing > 0 {
            let _ = writeln!(
                s,
                "note: {} of the state is in neither dump; equal means equal where held",
                crate::output::human_bytes(a.digest.missing)
            );
        }
        return s;
    }
    let _ = writeln!(
        s,
        "different: {} regions, {} pages",
        d.regions.len(),
        d.pages_changed()
    );
    for r in &d.regions {
        let _ = writeln!(s, "region {:#018x}: {}", r.start, r.reasons.join(", "));
        let _ = writeln!(s, "  A {}", side_text(r.a.as_ref()));
        let _ = writeln!(s, "  B {}", side_text(r.b.as_ref()));
    }
    for p in d.pages.iter().take(TEXT_RUNS) {
        let what = match p.change {
            PageChange::Modified => "modified",
            PageChange::OnlyA => "only in A",
            PageChange::OnlyB => "only in B",
        };
        if p.count == 1 {
            let _ = writeln!(s, "page {:#018x} {what}", p.start);
        } else {
            let _ = writeln!(s, "pages {:#018x} +{} {what}", p.start, p.count);
        }
    }
    if d.pages.len() > TEXT_RUNS {
        let _ = writeln!(
            s,
            "... and {} more runs (--format json lists them all)",
            d.pages.len() - TEXT_RUNS
        );
    }
    s
}
