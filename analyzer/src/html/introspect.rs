//! The page of `talos introspect --format html`: the verdict first, the
//! address space drawn to scale, each tampered range with its bytes and the
//! function around it disassembled from the file and from memory, threads
//! with their stacks.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;
use talos_introspect::report::{DiffRange, ModuleReport, Report, ThreadReport, Verdict};

use super::svg::{self, Mark, Paint, Stretch};
use super::{
    Page, badge, esc, generic, hex, human_bytes, serde_name, td, td_addr, td_html, td_mono, td_num,
};

/// One mapping of the dump, as the memory map draws it (taken from the dump
/// by the command; the report lists modules, not every mapping). A mapping
/// the dump names (`NT_FILE`) but holds no segment for has perms `?`.
#[derive(Debug, Clone)]
pub struct MapRegion {
    /// First address.
    pub start: u64,
    /// One past the last.
    pub end: u64,
    /// `r-x` style.
    pub perms: String,
    /// What backs it (path, `[heap]`, `anonymous`, ...).
    pub name: String,
    /// Bytes of it the dump holds.
    pub held: u64,
}

/// One instruction of a disassembly listing.
#[derive(Debug, Clone)]
pub struct Insn {
    /// Address in the process.
    pub addr: u64,
    /// Its bytes, hex.
    pub bytes: String,
    /// Intel syntax, or `(bad)`.
    pub text: String,
    /// Whether any of its bytes differ between file and memory.
    pub differs: bool,
}

/// The function around tampered bytes, disassembled twice.
#[derive(Debug, Clone)]
pub struct TamperedFunction {
    /// Module path.
    pub module: String,
    /// Function name (or `sub_<addr>`).
    pub function: String,
    /// First address shown (in the process).
    pub start: u64,
    /// Link-time address of `start`.
    pub link_start: u64,
    /// From the file.
    pub expected: Vec<Insn>,
    /// From memory.
    pub found: Vec<Insn>,
    /// Why the listing is partial or missing, if it is.
    pub note: Option<String>,
}

/// What the command adds to the report for the page.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// Every mapping, by address.
    pub regions: Vec<MapRegion>,
    /// Disassembly around tampered ranges.
    pub tampered: Vec<TamperedFunction>,
}

const KNOWN: &[&str] = &[
    "unchecked",
    "schema",
    "talos_version",
    "input",
    "verdict",
    "summary",
    "modules",
    "findings",
    "threads",
    "anomalies",
    "notes",
];

const THREAD_KNOWN: &[&str] = &[
    "tid",
    "signal",
    "pc",
    "sp",
    "fs_base",
    "location",
    "pc_check",
    "frames",
    "unwind_stop",
];

/// Anchor of a diff range on the page.
#[must_use]
pub fn diff_anchor(addr: u64) -> String {
    format!("diff-{addr:x}")
}

/// Render the page.
#[must_use]
pub fn render(r: &Report, x: &Extras) -> String {
    let i = &r.input;
    let mut page = Page::new(&format!("talos introspect: {}", i.path));
    let mut sub = format!(
        "{} \u{2014} {} dump, {}, {} thread(s), {} mapping(s), {} held",
        i.path,
        i.source,
        i.arch,
        i.threads,
        i.regions,
        human_bytes(i.bytes_held)
    );
    if let Some(p) = &i.process {
        let _ = write!(sub, "; process {} ({}) {}", p.pid, p.name, p.args);
    }
    page.header("talos introspect", &sub);
    page.verdict(r.verdict.name(), &r.summary);

    let mut by_verdict: BTreeMap<String, u64> = BTreeMap::new();
    for m in &r.modules {
        *by_verdict.entry(serde_name(&m.verdict)).or_default() += 1;
    }
    let mut tiles: Vec<(String, String, String)> = by_verdict
        .iter()
        .map(|(v, n)| (format!("modules {v}"), n.to_string(), v.clone()))
        .collect();
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    for f in &r.findings {
        *by_kind.entry(serde_name(&f.kind)).or_default() += 1;
    }
    tiles.push((
        "findings".into(),
        r.findings.len().to_string(),
        if r.findings.is_empty() {
            "neutral".into()
        } else {
            "fail".into()
        },
    ));
    for (k, n) in &by_kind {
        tiles.push((k.clone(), n.to_string(), k.clone()));
    }
    tiles.push((
        "threads".into(),
        r.threads.len().to_string(),
        "neutral".into(),
    ));
    let tiles: Vec<(&str, String, &str)> = tiles
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.clone(), c.as_str()))
        .collect();
    page.counts(&tiles);

    // What could not be checked comes right after the verdict (a report
    // that lists it has an `unchecked` field).
    if let Ok(v) = serde_json::to_value(r)
        && let Some(list) = v.get("unchecked").filter(|l| !is_empty_list(l))
    {
        page.h2("unchecked", "Not checked");
        page.raw(&generic(list, 1));
    }
    memory_map(&mut page, r, x);
    tampered(&mut page, r, x);
    modules(&mut page, r);
    findings(&mut page, r);
    threads(&mut page, r);
    if !r.anomalies.is_empty() {
        page.h2("anomalies", "Input anomalies");
        page.table_start("anomalies", &["code", "message"], false);
        for a in &r.anomalies {
            page.row("", &[td_mono(a.code), td(&a.message)]);
        }
        page.table_end();
    }
    if !r.notes.is_empty() {
        page.h2("notes", "Notes: acquisition and what was not checked");
        page.notes(&r.notes);
    }
    if let Ok(v) = serde_json::to_value(r) {
        page.extra_fields(&v, KNOWN);
    }
    page.finish()
}

fn is_empty_list(v: &Value) -> bool {
    v.as_array().is_none_or(Vec::is_empty)
}

fn paint_of(region: &MapRegion, r: &Report) -> Paint {
    let module = r
        .modules
        .iter()
        .find(|m| region.start >= m.base && region.start < m.end);
    if region.perms == "?" {
        // Listed by the dump (NT_FILE) but not held: the code of a module
        // the dump cannot prove, or data it left out.
        return match module.map(|m| m.verdict) {
            Some(Verdict::Unverifiable | Verdict::BinaryChanged) => Paint::Unverifiable,
            _ => Paint::NotHeld,
        };
    }
    let exec = region.perms.as_bytes().get(2) == Some(&b'x');
    let write = region.perms.as_bytes().get(1) == Some(&b'w');
    if exec && write {
        return Paint::Wx;
    }
    if exec {
        return match module.map(|m| m.verdict) {
            Some(Verdict::Clean) => Paint::CleanCode,
            Some(Verdict::Tampered) => Paint::Tampered,
            Some(Verdict::Kernel) => Paint::Kernel,
            Some(_) => Paint::Unverifiable,
            None => Paint::AnonExec,
        };
    }
    if region.held == 0 {
        Paint::NotHeld
    } else {
        Paint::State
    }
}

fn short_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// Most mappings drawn and listed (a core can claim any number).
pub const MAX_MAP_REGIONS: usize = 4096;
/// Most threads given a section.
pub const MAX_THREADS: usize = 512;

fn memory_map(page: &mut Page, r: &Report, x: &Extras) {
    page.h2("map", "Memory map");
    if x.regions.is_empty() {
        page.note("The dump lists no mappings.");
        return;
    }
    if x.regions.len() > MAX_MAP_REGIONS {
        page.note(&format!(
            "The dump has {} mappings: the first {MAX_MAP_REGIONS} are drawn and listed.",
            x.regions.len()
        ));
    }
    let regions = x.regions.get(..MAX_MAP_REGIONS).unwrap_or(&x.regions);
    page.note("Each mapping's width is proportional to its size (at least 3 pixels); gaps between mappings are cut. Hover for details; a red mark is a tampered run (click to jump to it).");
    let stretches: Vec<Stretch> = regions
        .iter()
        .map(|g| {
            let paint = paint_of(g, r);
            Stretch {
                start: g.start,
                end: g.end,
                paint,
                label: format!("{} {} \u{2014} {}", g.perms, g.name, paint.label()),
                caption: short_name(&g.name),
            }
        })
        .collect();
    let marks: Vec<Mark> = r
        .modules
        .iter()
        .flat_map(|m| m.diffs.iter().map(move |d| (m, d)))
        .map(|(m, d)| Mark {
            addr: d.addr,
            len: d.len,
            label: format!(
                "tampered: {} byte(s) at {} in {}{}",
                d.len,
                hex(d.addr),
                short_name(&m.path),
                d.function
                    .as_deref()
                    .map_or_else(String::new, |f| format!(" ({f})"))
            ),
            anchor: diff_anchor(d.addr),
        })
        .collect();
    let mut used: Vec<Paint> = stretches.iter().map(|s| s.paint).collect();
    used.sort();
    used.dedup();
    page.raw(&svg::legend(&used));
    page.raw(&svg::memory_strip(&stretches, &marks));
    page.raw("<details><summary>Every mapping</summary>");
    page.table_start(
        "regions",
        &[
            "start",
            "end",
            "#size",
            "perms",
            "held",
            "kind",
            "backed by",
        ],
        true,
    );
    for (g, s) in regions.iter().zip(&stretches) {
        page.row(
            "",
            &[
                td_addr(&hex(g.start)),
                td_addr(&hex(g.end)),
                format!("<td class=\"num\">{}</td>", esc(&human_bytes(g.end.saturating_sub(g.start)))),
                td_mono(&g.perms),
                td(&human_bytes(g.held)),
                td_html(&format!(
                    "<i style=\"display:inline-block;width:10px;height:10px;background:{}\"></i> {}",
                    s.paint.color(),
                    esc(s.paint.label())
                )),
                td_mono(&g.name),
            ],
        );
    }
    page.table_end();
    page.raw("</details>");
}

/// Hex bytes as pairs, the ones differing from `other` highlighted.
fn hex_view(this: &str, other: &str) -> String {
    let a: Vec<&str> = pairs(this);
    let b: Vec<&str> = pairs(other);
    let mut s = String::new();
    for (n, p) in a.iter().enumerate() {
        if n > 0 {
            s.push(' ');
        }
        if b.get(n) == Some(p) {
            s.push_str(&esc(p));
        } else {
            let _ = write!(s, "<b class=\"hl\">{}</b>", esc(p));
        }
    }
    s
}

fn pairs(h: &str) -> Vec<&str> {
    (0..h.len() / 2)
        .filter_map(|i| h.get(2 * i..2 * i + 2))
        .collect()
}

fn tampered(page: &mut Page, r: &Report, x: &Extras) {
    let with_diffs: Vec<&ModuleReport> = r.modules.iter().filter(|m| !m.diffs.is_empty()).collect();
    if with_diffs.is_empty() {
        return;
    }
    page.h2("tampered", "Tampered code");
    for m in with_diffs {
        page.raw(&format!(
            "<h3>{} {}</h3>",
            badge(&serde_name(&m.verdict)),
            esc(&m.path)
        ));
        page.note(&m.reason);
        page.table_start(
            "diffs",
            &[
                "address",
                "link address",
                "function",
                "#bytes",
                "expected (file)",
                "found (memory)",
            ],
            m.diffs.len() > 8,
        );
        for d in &m.diffs {
            diff_row(page, d);
        }
        page.table_end();
        if m.diffs_omitted > 0 {
            page.note(&format!(
                "... and {} more differing run(s) not listed (the report keeps the first {}).",
                m.diffs_omitted,
                m.diffs.len()
            ));
        }
        for t in x.tampered.iter().filter(|t| t.module == m.path) {
            page.raw(&format!(
                "<h3 class=\"mono\">{} @ {} (linked at {})</h3>",
                esc(&t.function),
                esc(&hex(t.start)),
                esc(&hex(t.link_start))
            ));
            if let Some(n) = &t.note {
                page.note(n);
            }
            if t.expected.is_empty() && t.found.is_empty() {
                continue;
            }
            page.raw("<div class=\"side\"><div><b>file (expected)</b>");
            page.raw(&listing(&t.expected));
            page.raw("</div><div><b>memory (found)</b>");
            page.raw(&listing(&t.found));
            page.raw("</div></div>");
        }
    }
}

fn diff_row(page: &mut Page, d: &DiffRange) {
    let func = match (&d.function, d.function_offset) {
        (Some(f), Some(o)) => format!("{f}+{o:#x}"),
        (Some(f), None) => f.clone(),
        _ => String::new(),
    };
    page.raw(&format!(
        "<tr class=\"hl\" id=\"{}\">",
        esc(&diff_anchor(d.addr))
    ));
    page.raw(&td_addr(&hex(d.addr)));
    // No link address without a load bias: an empty cell.
    page.raw(&td_addr(&d.link_addr.map(hex).unwrap_or_default()));
    page.raw(&td_mono(&func));
    page.raw(&td_num(d.len));
    page.raw(&format!(
        "<td class=\"mono\">{}</td>",
        hex_view(&d.expected, &d.actual)
    ));
    page.raw(&format!(
        "<td class=\"mono\">{}</td>",
        hex_view(&d.actual, &d.expected)
    ));
    page.raw("</tr>");
}

fn listing(insns: &[Insn]) -> String {
    let mut s = String::from("<table class=\"disasm\"><tbody>");
    for i in insns {
        let _ = write!(
            s,
            "<tr{}><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>",
            if i.differs {
                " class=\"hl differs\""
            } else {
                ""
            },
            esc(&format!("{:x}", i.addr)),
            esc(&i.bytes),
            esc(&i.text)
        );
    }
    s.push_str("</tbody></table>");
    s
}

fn modules(page: &mut Page, r: &Report) {
    page.h2("modules", &format!("Modules ({})", r.modules.len()));
    page.table_start(
        "modules",
        &[
            "base",
            "verdict",
            "#code",
            "#compared",
            "#missing",
            "#differing",
            "build-id",
            "path",
            "why",
        ],
        r.modules.len() > 10,
    );
    for m in &r.modules {
        // An unknown build-id is an empty cell.
        let bid = crate::cmd::introspect::short_build_id(m).unwrap_or_default();
        let class = if m.verdict == Verdict::Clean {
            ""
        } else {
            "module-flagged"
        };
        page.row(
            class,
            &[
                td_addr(&hex(m.base)),
                td_html(&badge(&serde_name(&m.verdict))),
                td_num(m.code_bytes),
                td_num(m.compared_bytes),
                td_num(m.missing_bytes),
                td_num(m.differing_bytes),
                td_mono(&bid),
                td_mono(&m.path),
                td(if m.verdict == Verdict::Clean {
                    ""
                } else {
                    &m.reason
                }),
            ],
        );
    }
    page.table_end();
}

fn findings(page: &mut Page, r: &Report) {
    page.h2("findings", &format!("Findings ({})", r.findings.len()));
    if r.findings.is_empty() {
        page.note("No anonymous executable memory, W+X mapping, GOT hook or flow finding.");
        return;
    }
    page.table_start(
        "findings",
        &[
            "kind", "address", "message", "module", "symbol", "value", "thread", "function",
        ],
        r.findings.len() > 8,
    );
    for f in &r.findings {
        page.row(
            "finding",
            &[
                td_html(&badge(&serde_name(&f.kind))),
                td_addr(&hex(f.addr)),
                td(&f.message),
                td_mono(f.module.as_deref().unwrap_or("")),
                td_mono(f.symbol.as_deref().unwrap_or("")),
                td_mono(&f.value.map(hex).unwrap_or_default()),
                td_mono(&f.thread.map(|t| t.to_string()).unwrap_or_default()),
                td_mono(f.function.as_deref().unwrap_or("")),
            ],
        );
    }
    page.table_end();
}

fn location(l: &talos_introspect::report::Location) -> String {
    crate::cmd::introspect::loc_as(short_name(&l.module), l, "  ")
}

fn threads(page: &mut Page, r: &Report) {
    page.h2("threads", &format!("Threads ({})", r.threads.len()));
    for (n, t) in r.threads.iter().take(MAX_THREADS).enumerate() {
        thread(page, t, n < 4);
    }
    if r.threads.len() > MAX_THREADS {
        page.note(&format!(
            "... and {} more thread(s) (see --format json).",
            r.threads.len() - MAX_THREADS
        ));
    }
}

fn thread(page: &mut Page, t: &ThreadReport, open: bool) {
    let value = serde_json::to_value(t).unwrap_or(Value::Null);
    // A flow status another part of talos adds to threads is shown by its
    // serde name next to the pc check.
    let mut statuses = vec![badge(&serde_name(&t.pc_check))];
    let mut extra = String::new();
    if let Value::Object(map) = &value {
        for (k, v) in map
            .iter()
            .filter(|(k, _)| !THREAD_KNOWN.contains(&k.as_str()))
        {
            match v {
                Value::String(s) => statuses.push(format!("{}: {}", esc(k), badge(s))),
                Value::Null => {}
                other => {
                    let _ = write!(extra, "<h3>{}</h3>{}", esc(k), generic(other, 1));
                }
            }
        }
    }
    page.raw(&format!(
        "<details class=\"thread\" data-tid=\"{tid}\"{}><summary>thread {tid} \u{2014} pc {} in <span class=\"mono\">{}</span> {}</summary>",
        if open { " open" } else { "" },
        esc(&hex(t.pc)),
        esc(&location(&t.location)),
        statuses.join(" "),
        tid = t.tid
    ));
    page.note(&format!(
        "sp {}, signal {}; CFI unwinding stopped: {}",
        hex(t.sp),
        t.signal,
        t.unwind_stop
    ));
    page.table_start(
        "frames",
        &[
            "#",
            "method",
            "address",
            "where",
            "follows a call",
            "evidence",
        ],
        false,
    );
    for (n, f) in t.frames.iter().enumerate() {
        let follows = match f.follows_call {
            Some(true) => badge("ok"),
            Some(false) => badge("fail"),
            None => String::new(),
        };
        page.row(
            if f.follows_call == Some(false) {
                "hl"
            } else {
                ""
            },
            &[
                td_num(n as u64),
                td_html(&badge(&serde_name(&f.method))),
                td_addr(&hex(f.pc)),
                td_mono(&location(&f.location)),
                td_html(&follows),
                td_mono(f.evidence.map_or("", |e| e.name())),
            ],
        );
    }
    page.table_end();
    page.raw(&extra);
    page.raw("</details>");
}
