//! The page of `talos audit --format html`.

use talos_audit::Report;
use talos_audit::model::{Finding, RuleState, Severity};

use super::{
    Page, badge, esc, extra_object_fields, hex, serde_name, shown, svg, td, td_addr, td_html,
    td_mono, td_num,
};

/// Top-level fields of `talos.audit/1` drawn by this page; any other field
/// is shown generically.
const KNOWN: &[&str] = &[
    "schema",
    "talos_version",
    "binary",
    "tee",
    "tee_reason",
    "fail_on",
    "verdict",
    "counts",
    "suppressed",
    "findings",
    "rules",
    "hardening",
    "sgx",
    "gramine",
    "keystone",
    "lvi",
    "notes",
    "anomalies",
];

const SEVERITIES: [Severity; 4] = [
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Info,
];

/// Render the page.
#[must_use]
pub fn render(r: &Report) -> String {
    let b = &r.binary;
    let mut page = Page::new(&format!("talos audit: {}", b.path));
    page.header(
        "talos audit",
        &format!(
            "{} \u{2014} {} {} {}, TEE {} ({})",
            b.path,
            b.format,
            b.arch,
            b.kind,
            serde_name(&r.tee),
            r.tee_reason
        ),
    );
    let failing = r
        .findings
        .iter()
        .filter(|f| !f.suppressed && f.severity >= r.fail_on)
        .count();
    let unchecked: Vec<&str> = r
        .rules
        .iter()
        .filter(|s| matches!(s.state, RuleState::Unchecked(_)))
        .map(|s| s.id.name())
        .collect();
    let mut summary = format!(
        "{failing} unsuppressed finding(s) at or above {} (the failing severity); {} finding(s) in all, {} suppressed by the baseline.",
        r.fail_on.name(),
        r.findings.len(),
        r.suppressed
    );
    if !unchecked.is_empty() {
        summary.push_str(&format!(
            " {} rule(s) could not be checked: {}.",
            unchecked.len(),
            unchecked.join(", ")
        ));
    }
    if !r.anomalies.is_empty() {
        summary.push_str(&format!(
            " {} part(s) of the binary could not be read.",
            r.anomalies.len()
        ));
    }
    page.verdict(&serde_name(&r.verdict), &summary);
    let mut tiles: Vec<(&str, String, &str)> = SEVERITIES
        .iter()
        .map(|s| {
            let n = r.counts.get(s).copied().unwrap_or(0);
            (
                s.name(),
                n.to_string(),
                if n > 0 { s.name() } else { "neutral" },
            )
        })
        .collect();
    tiles.push(("suppressed", r.suppressed.to_string(), "neutral"));
    tiles.push((
        "rules unchecked",
        unchecked.len().to_string(),
        if unchecked.is_empty() {
            "neutral"
        } else {
            "unchecked"
        },
    ));
    page.counts(&tiles);

    findings(&mut page, r);
    rules(&mut page, r);
    hardening(&mut page, r);
    enclave(&mut page, r);

    page.h2("binary", "Binary");
    page.facts(
        "binary",
        &[
            ("path", b.path.clone()),
            (
                "format / arch / kind",
                format!("{} / {} / {}", b.format, b.arch, b.kind),
            ),
            ("BLAKE3", b.blake3.clone()),
            (
                "build-id",
                b.build_id.clone().unwrap_or_else(|| "none".into()),
            ),
            ("graph digest", shown(&b.graph_digest)),
            ("functions", b.functions.to_string()),
            (
                "reachable functions",
                if b.reachability {
                    format!("{} from {} root(s)", b.reachable_functions, b.roots)
                } else {
                    "not computed (no instruction rule applied)".into()
                },
            ),
        ],
    );
    if !r.anomalies.is_empty() {
        page.h2("anomalies", "What could not be read");
        page.notes(&r.anomalies);
    }
    if !r.notes.is_empty() {
        page.h2("notes", "What was not verified");
        page.notes(&r.notes);
    }
    if let Ok(v) = serde_json::to_value(r) {
        page.extra_fields(&v, KNOWN);
    }
    page.finish()
}

/// Most call paths drawn as graphs; later ones are written as text.
pub const MAX_PATH_GRAPHS: usize = 400;

fn findings(page: &mut Page, r: &Report) {
    let mut graphs = 0usize;
    page.h2("findings", &format!("Findings ({})", r.findings.len()));
    if r.findings.is_empty() {
        page.note("No findings.");
        return;
    }
    for sev in SEVERITIES {
        let list: Vec<&Finding> = r.findings.iter().filter(|f| f.severity == sev).collect();
        if list.is_empty() {
            continue;
        }
        page.raw(&format!(
            "<h3 data-severity=\"{s}\">{} {} finding(s)</h3>",
            badge(sev.name()),
            list.len(),
            s = esc(sev.name())
        ));
        page.table_start(
            &format!("findings-{}", sev.name()),
            &[
                "rule",
                "address",
                "function",
                "instruction",
                "reason",
                "call path",
            ],
            list.len() > 8,
        );
        for f in list {
            let addr = match (f.addr, &f.artifact, f.line) {
                (Some(a), _, _) => hex(a),
                (None, Some(art), Some(l)) => format!("{art}:{l}"),
                (None, Some(art), None) => art.clone(),
                (None, None, _) => f
                    .file_offset
                    .map_or_else(String::new, |o| format!("file+{o:#x}")),
            };
            let mut reason = esc(&f.message);
            if f.suppressed {
                reason.push_str(" <span class=\"badge neutral\">suppressed by baseline</span>");
            }
            let path = if !f.path.is_empty() && graphs >= MAX_PATH_GRAPHS {
                format!(
                    "<span class=\"mono\">{}</span>",
                    esc(&f.path.join(" \u{2192} "))
                )
            } else if f.path.is_empty() {
                f.reached_from.as_deref().map_or_else(String::new, |r| {
                    format!("<span class=\"note\">{}</span>", esc(r))
                })
            } else {
                let mut nodes: Vec<String> = f.path.clone();
                let last = match (&f.instruction, f.addr) {
                    (Some(i), Some(a)) => format!("{i}  @ {}", hex(a)),
                    (Some(i), None) => i.clone(),
                    (None, Some(a)) => hex(a),
                    (None, None) => f.rule.name().to_string(),
                };
                nodes.push(last);
                graphs += 1;
                // Short paths are open: they are the point of the page.
                format!(
                    "<details class=\"callpath\"{}><summary>from {}</summary>{}</details>",
                    if nodes.len() <= 5 { " open" } else { "" },
                    esc(f.reached_from.as_deref().unwrap_or("a root")),
                    svg::chain(&nodes)
                )
            };
            page.row(
                if f.suppressed { "" } else { "finding" },
                &[
                    td_mono(f.rule.name()),
                    td_mono(&addr),
                    td_mono(f.function.as_deref().unwrap_or("")),
                    td_mono(f.instruction.as_deref().unwrap_or("")),
                    td_html(&reason),
                    td_html(&path),
                ],
            );
        }
        page.table_end();
    }
}

fn rules(page: &mut Page, r: &Report) {
    page.h2("rules", "Rules");
    page.raw("<details><summary>Every rule and whether it ran</summary>");
    page.table_start("rules", &["rule", "severity", "status", "why"], true);
    for s in &r.rules {
        let (status, why) = match &s.state {
            RuleState::Applied => ("applied", ""),
            RuleState::Disabled => ("disabled", "turned off by the policy"),
            RuleState::NotApplicable(w) => ("not_applicable", w.as_str()),
            RuleState::Unchecked(w) => ("unchecked", w.as_str()),
            #[allow(unreachable_patterns)]
            _ => ("unknown", ""),
        };
        page.row(
            "",
            &[
                td_mono(s.id.name()),
                td_html(&badge(s.severity.name())),
                td_html(&badge(status)),
                td(why),
            ],
        );
    }
    page.table_end();
    page.raw("</details>");
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn hardening(page: &mut Page, r: &Report) {
    let h = &r.hardening;
    page.h2("hardening", "Hardening");
    page.table_start("hardening", &["property", "value", ""], false);
    let good = |ok: bool| if ok { badge("ok") } else { badge("fail") };
    let rows: Vec<(&str, String, String)> = vec![
        (
            "position independent (PIE)",
            yes_no(h.pie).into(),
            good(h.pie),
        ),
        ("RELRO", yes_no(h.relro).into(), good(h.relro)),
        ("BIND_NOW", yes_no(h.bind_now).into(), good(h.bind_now)),
        (
            "executable stack",
            match h.exec_stack {
                Some(true) => "yes".into(),
                Some(false) => "no".into(),
                None => "no PT_GNU_STACK (loader default)".into(),
            },
            match h.exec_stack {
                Some(false) => badge("ok"),
                Some(true) => badge("fail"),
                None => badge("unverifiable"),
            },
        ),
        (
            "text relocations",
            yes_no(h.text_relocations).into(),
            good(!h.text_relocations),
        ),
        (
            "W+X segments",
            if h.wx_segments.is_empty() {
                "none".into()
            } else {
                h.wx_segments
                    .iter()
                    .map(|a| hex(*a))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            good(h.wx_segments.is_empty()),
        ),
        (
            "stack protector",
            match h.stack_protector {
                Some(true) => "found".into(),
                Some(false) => "not found".into(),
                None => "could not tell".into(),
            },
            match h.stack_protector {
                Some(true) => badge("ok"),
                Some(false) => badge("fail"),
                None => badge("unverifiable"),
            },
        ),
        (
            "control-flow protection",
            if h.cfi.is_empty() {
                "none".into()
            } else {
                h.cfi.join(", ")
            },
            if h.cfi.is_empty() {
                badge("fail")
            } else {
                badge("ok")
            },
        ),
        (
            "dynamically linked",
            yes_no(h.dynamic).into(),
            String::new(),
        ),
    ];
    for (k, v, b) in rows {
        page.row("", &[td(k), td_mono(&v), td_html(&b)]);
    }
    page.table_end();
    // Facts a later schema adds (PE images, ...).
    page.raw(&extra_object_fields(
        h,
        &[
            "pie",
            "relro",
            "bind_now",
            "exec_stack",
            "text_relocations",
            "wx_segments",
            "stack_protector",
            "cfi",
            "dynamic",
        ],
    ));
}

fn enclave(page: &mut Page, r: &Report) {
    if let Some(sgx) = &r.sgx {
        page.h2("sgx", "SGX metadata");
        if let Some(m) = &sgx.metadata {
            page.h3("SDK metadata (.note.sgxmeta)");
            page.facts(
                "sgxmeta",
                &[
                    ("version", m.version.clone()),
                    (
                        "enclave size",
                        format!(
                            "{} ({})",
                            m.enclave_size,
                            super::human_bytes(m.enclave_size)
                        ),
                    ),
                    (
                        "TCS policy",
                        format!(
                            "{} ({})",
                            m.tcs_policy,
                            if m.tcs_policy == 0 {
                                "bound"
                            } else {
                                "unbound"
                            }
                        ),
                    ),
                    ("SSA frame size", format!("{} page(s)", m.ssa_frame_size)),
                    ("metadata blocks", m.blocks.to_string()),
                ],
            );
        }
        if let Some(s) = &sgx.sigstruct {
            page.h3("SIGSTRUCT");
            page.facts(
                "sigstruct",
                &[
                    ("source", format!("{} at offset {:#x}", s.source, s.offset)),
                    ("MRENCLAVE", s.mrenclave.clone()),
                    ("MRSIGNER", s.mrsigner.clone()),
                    (
                        "ISVPRODID / ISVSVN",
                        format!("{} / {}", s.isv_prod_id, s.isv_svn),
                    ),
                    (
                        "attributes",
                        format!(
                            "flags {:#x}, xfrm {:#x} ({})",
                            s.attributes.flags,
                            s.attributes.xfrm,
                            s.flags.join(", ")
                        ),
                    ),
                    (
                        "attribute mask",
                        format!(
                            "flags {:#x}, xfrm {:#x}",
                            s.attribute_mask.flags, s.attribute_mask.xfrm
                        ),
                    ),
                    (
                        "MISCSELECT / MISCMASK",
                        format!("{:#x} / {:#x}", s.misc_select, s.misc_mask),
                    ),
                    ("vendor", format!("{:#x}", s.vendor)),
                    ("date", s.date.clone()),
                    ("exponent", s.exponent.to_string()),
                    ("signature", s.signature.to_string()),
                    ("Q1/Q2", s.q1_q2.to_string()),
                ],
            );
        }
    }
    if let Some(g) = &r.gramine {
        page.h2("gramine", "Gramine manifest");
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "not set".into());
        let num = |v: Option<i64>| v.map_or_else(|| "not set".into(), |n| n.to_string());
        page.facts(
            "gramine",
            &[
                ("manifest", opt(&g.manifest)),
                (
                    "sgx.debug",
                    g.debug.map_or_else(|| "not set".into(), |b| b.to_string()),
                ),
                (
                    "sgx.isvprodid / isvsvn",
                    format!("{} / {}", num(g.isvprodid), num(g.isvsvn)),
                ),
                ("libos.entrypoint", opt(&g.entrypoint)),
                ("sgx.enclave_size", opt(&g.enclave_size)),
                ("sgx.max_threads", num(g.max_threads)),
                ("sgx.remote_attestation", opt(&g.remote_attestation)),
                ("trusted files", g.trusted_files.to_string()),
                ("allowed files", g.allowed_files.to_string()),
            ],
        );
        if !g.insecure_options.is_empty() {
            page.h3("insecure options set");
            page.table_start("insecure", &["key", "value"], false);
            for (k, v) in &g.insecure_options {
                page.row("hl", &[td_mono(k), td_mono(v)]);
            }
            page.table_end();
        }
    }
    if let Some(k) = &r.keystone {
        page.h2("keystone", "Keystone runtime interface");
        page.table_start(
            "ecalls",
            &["address", "function", "#number", "interface", "reachable"],
            k.ecalls.len() > 8,
        );
        for e in &k.ecalls {
            page.row(
                "",
                &[
                    td_addr(&hex(e.addr)),
                    td_mono(&e.function),
                    e.number.map_or_else(|| td(""), td_num),
                    td(&e.interface),
                    td_html(&badge(if e.reachable {
                        "reachable"
                    } else {
                        "unreachable"
                    })),
                ],
            );
        }
        page.table_end();
    }
    if let Some(l) = &r.lvi {
        page.h2("lvi", "LVI load hardening (heuristic)");
        page.facts(
            "lvi",
            &[
                (
                    "returns and indirect branches in reachable code",
                    l.sites.to_string(),
                ),
                ("with an lfence after the last load", l.hardened.to_string()),
                (
                    "first unhardened",
                    l.first_unhardened
                        .iter()
                        .map(|a| hex(*a))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ],
        );
    }
}
