//! The page of `talos diff --format html`: functions added, removed and
//! changed; each changed function's two control-flow graphs side by side,
//! laid out by graphviz, changed blocks filled. A whole-program diff of a
//! large binary lists every changed function and draws only the first
//! [`MAX_DRAWN`]; the others link to their tables or to nothing at all
//! past [`MAX_DETAILED`].

use serde_json::Value;
use talos_cfg::diff::{BlockRef, Diff, EdgeRef, FunctionPair, FunctionRef, PairState};
use talos_cfg::{Cfg, Image};

use super::graphviz::{self, Layout};
use super::{Page, badge, esc, hex, serde_name, td, td_addr, td_html, td_mono, td_num};

/// Changed functions drawn as graphs.
pub const MAX_DRAWN: usize = 24;
/// Changed functions given a section of their own (tables of blocks and
/// edges); the rest are listed in the summary table only.
pub const MAX_DETAILED: usize = 60;
/// Changed functions listed in the open table; the rest are in a closed
/// section below it.
pub const SHOWN_ROWS: usize = 200;
/// Most functions listed in the added, removed and moved tables.
pub const MAX_LISTED: usize = 5000;
/// Most rows of one block or edge table in a function's section.
pub const MAX_ROWS: usize = 150;
/// Most bytes of graph drawings inlined in one page; graphs past it are
/// not inlined (the page stays small enough to attach and open quickly).
pub const MAX_SVG_BYTES: usize = 1 << 20;
/// Functions with more blocks than this are not drawn (graphviz takes
/// seconds and the picture is unreadable); their tables are.
pub const MAX_BLOCKS_DRAWN: usize = 80;

/// One build as the page shows it.
pub struct Side<'a> {
    /// Path given.
    pub path: String,
    /// `binary` or `talos.cfg/1`.
    pub kind: &'a str,
    /// Functions in its graph.
    pub functions: usize,
    /// Graph and image, when the side is a binary (needed to draw).
    pub draw: Option<(&'a Cfg, &'a Image<'a>)>,
}

/// Everything the page needs.
pub struct Input<'a> {
    /// Old build.
    pub old: Side<'a>,
    /// New build.
    pub new: Side<'a>,
    /// The comparison.
    pub diff: &'a Diff,
    /// `same`, `different`, `unproven`.
    pub verdict: &'a str,
    /// The `talos.diff/1` document, for fields this page does not draw.
    pub doc: Value,
}

const KNOWN: &[&str] = &[
    "schema",
    "talos_version",
    "old",
    "new",
    "verdict",
    "same_graph_digest",
    "summary",
    "changed",
    "unproven",
    "added",
    "removed",
    "moved",
];

/// Anchor of a changed function's section.
#[must_use]
pub fn anchor(p: &FunctionPair) -> String {
    format!("fn-{:x}-{:x}", p.old_addr, p.new_addr)
}

/// Render the page.
#[must_use]
pub fn render(inp: &Input<'_>) -> String {
    let d = inp.diff;
    let sm = &d.summary;
    let mut page = Page::new(&format!("talos diff: {} -> {}", inp.old.path, inp.new.path));
    page.header(
        "talos diff",
        &format!(
            "old {} ({}, {} functions) \u{2192} new {} ({}, {} functions)",
            inp.old.path,
            inp.old.kind,
            inp.old.functions,
            inp.new.path,
            inp.new.kind,
            inp.new.functions
        ),
    );
    let summary = format!(
        "{} changed, {} added, {} removed, {} moved, {} unchanged{}{}.",
        sm.changed,
        sm.added,
        sm.removed,
        sm.moved,
        sm.unchanged,
        crate::cmd::diff::undecided(sm.unproven),
        if d.same_graph_digest {
            "; the graph digests are equal"
        } else {
            ""
        }
    );
    page.verdict(inp.verdict, &summary);
    page.counts(&[
        (
            "changed",
            sm.changed.to_string(),
            if sm.changed > 0 { "fail" } else { "neutral" },
        ),
        (
            "added",
            sm.added.to_string(),
            if sm.added > 0 { "fail" } else { "neutral" },
        ),
        (
            "removed",
            sm.removed.to_string(),
            if sm.removed > 0 { "fail" } else { "neutral" },
        ),
        (
            "undecided",
            sm.unproven.to_string(),
            if sm.unproven > 0 {
                "unproven"
            } else {
                "neutral"
            },
        ),
        ("moved", sm.moved.to_string(), "neutral"),
        ("unchanged", sm.unchanged.to_string(), "neutral"),
    ]);
    page.note(&format!(
        "Matched by name {}, by position-independent digest {}, by structure {}.",
        sm.matched_by_name, sm.matched_by_digest, sm.matched_by_structure
    ));

    let changed: Vec<&FunctionPair> = d
        .pairs
        .iter()
        .filter(|p| p.state == PairState::Changed)
        .collect();
    let unproven: Vec<&FunctionPair> = d
        .pairs
        .iter()
        .filter(|p| p.state == PairState::Unproven)
        .collect();
    changed_table(&mut page, &changed);
    if !unproven.is_empty() {
        page.h2("undecided", &format!("Undecided ({})", unproven.len()));
        page.table_start(
            "undecided",
            &["function", "old", "new", "why"],
            unproven.len() > 10,
        );
        for p in &unproven {
            page.row(
                "",
                &[
                    td_mono(&p.name),
                    td_addr(&hex(p.old_addr)),
                    td_addr(&hex(p.new_addr)),
                    td(p.note.as_deref().unwrap_or("")),
                ],
            );
        }
        page.table_end();
    }
    refs(&mut page, "added", "Added", &d.added);
    refs(&mut page, "removed", "Removed", &d.removed);
    details(&mut page, inp, &changed);
    let moved: Vec<&FunctionPair> = d
        .pairs
        .iter()
        .filter(|p| p.state == PairState::Moved)
        .collect();
    if !moved.is_empty() {
        page.h2("moved", &format!("Moved, same code ({})", moved.len()));
        page.raw("<details><summary>List</summary>");
        page.table_start("moved", &["function", "old", "new"], moved.len() > 10);
        for p in moved.iter().take(MAX_LISTED) {
            page.row(
                "",
                &[
                    td_mono(&p.name),
                    td_addr(&hex(p.old_addr)),
                    td_addr(&hex(p.new_addr)),
                ],
            );
        }
        page.table_end();
        page.raw("</details>");
    }
    page.extra_fields(&inp.doc, KNOWN);
    page.finish()
}

fn changed_table(page: &mut Page, changed: &[&FunctionPair]) {
    page.h2("changed", &format!("Changed functions ({})", changed.len()));
    if changed.is_empty() {
        page.note("No function's code changed.");
        return;
    }
    if changed.len() > MAX_DRAWN {
        page.note(&format!(
            "{} functions changed: the graphs of the first {MAX_DRAWN} are drawn and the first {MAX_DETAILED} have a section with their blocks and edges; every one is listed here (talos diff --format json has them all).",
            changed.len()
        ));
    }
    let heads = [
        "function",
        "old",
        "new",
        "matched by",
        "#blocks changed",
        "#added",
        "#removed",
        "#edges +/-",
    ];
    // The first rows are laid out with the page; the rest wait in a closed
    // section (a browser does not lay out what it does not show).
    let (first, rest) = changed.split_at(changed.len().min(SHOWN_ROWS));
    if changed.len() > 10 {
        page.filter_box(&["changed-first", "changed-rest"]);
    }
    page.table_start_id("changed-first", &heads);
    for (n, p) in first.iter().enumerate() {
        changed_row(page, n, p);
    }
    page.table_end();
    if !rest.is_empty() {
        page.raw(&format!(
            "<details><summary>The other {} changed functions</summary>",
            rest.len()
        ));
        page.table_start_id("changed-rest", &heads);
        for (n, p) in rest.iter().enumerate() {
            changed_row(page, n + first.len(), p);
        }
        page.table_end();
        page.raw("</details>");
    }
}

fn changed_row(page: &mut Page, n: usize, p: &FunctionPair) {
    let name = if n < MAX_DETAILED {
        format!("<a href=\"#{}\">{}</a>", esc(&anchor(p)), esc(&p.name))
    } else {
        esc(&p.name)
    };
    page.row(
        "changed-fn",
        &[
            format!("<td class=\"mono\">{name}</td>"),
            td_addr(&hex(p.old_addr)),
            td_addr(&hex(p.new_addr)),
            td(&serde_name(&p.matched_by)),
            td_num(p.blocks_changed.len() as u64),
            td_num(p.blocks_added.len() as u64),
            td_num(p.blocks_removed.len() as u64),
            format!(
                "<td class=\"num\">+{} / -{}</td>",
                p.edges_added.len(),
                p.edges_removed.len()
            ),
        ],
    );
}

fn refs(page: &mut Page, id: &str, title: &str, list: &[FunctionRef]) {
    page.h2(id, &format!("{title} functions ({})", list.len()));
    if list.is_empty() {
        page.note("None.");
        return;
    }
    page.table_start(
        id,
        &["function", "address", "#bytes", "#blocks"],
        list.len() > 10,
    );
    for f in list.iter().take(MAX_LISTED) {
        page.row(
            &format!("{id}-fn"),
            &[
                td_mono(&f.name),
                td_addr(&hex(f.addr)),
                td_num(f.size),
                td_num(f.blocks as u64),
            ],
        );
    }
    page.table_end();
    if list.len() > MAX_LISTED {
        page.note(&format!(
            "... and {} more (talos diff --format json lists them all).",
            list.len() - MAX_LISTED
        ));
    }
}

/// DOT of one side of a pair, or why it is not drawn.
fn side_dot(side: &Side<'_>, addr: u64, highlight: &[u64]) -> Result<String, String> {
    let Some((cfg, image)) = side.draw else {
        return Err(format!(
            "{} is a saved graph ({}): it holds no instructions to draw",
            side.path, side.kind
        ));
    };
    let Some(f) = cfg.function_at(addr) else {
        return Err(format!("no function at {} in {}", hex(addr), side.path));
    };
    if f.blocks.len() > MAX_BLOCKS_DRAWN {
        return Err(format!(
            "{} blocks, more than {MAX_BLOCKS_DRAWN}: not drawn (talos diff --format svg draws it)",
            f.blocks.len()
        ));
    }
    Ok(talos_cfg::graph::to_dot(cfg, image, &[f], highlight))
}

fn details(page: &mut Page, inp: &Input<'_>, changed: &[&FunctionPair]) {
    if changed.is_empty() {
        return;
    }
    let have_dot = graphviz::available();
    // Lay out every drawn graph first, two graphviz processes at a time.
    let mut jobs: Vec<String> = Vec::new();
    let mut slots: Vec<[Result<usize, String>; 2]> = Vec::new();
    for p in changed.iter().take(MAX_DRAWN) {
        let old_hl: Vec<u64> = p
            .blocks_changed
            .iter()
            .map(|b| b.old.addr)
            .chain(p.blocks_removed.iter().map(|b| b.addr))
            .collect();
        let new_hl: Vec<u64> = p
            .blocks_changed
            .iter()
            .map(|b| b.new.addr)
            .chain(p.blocks_added.iter().map(|b| b.addr))
            .collect();
        let mut slot = |r: Result<String, String>| {
            r.map(|dot| {
                jobs.push(dot);
                jobs.len() - 1
            })
        };
        let o = if have_dot {
            slot(side_dot(&inp.old, p.old_addr, &old_hl))
        } else {
            Err(String::new())
        };
        let n = if have_dot {
            slot(side_dot(&inp.new, p.new_addr, &new_hl))
        } else {
            Err(String::new())
        };
        slots.push([o, n]);
    }
    let laid = if have_dot {
        graphviz::layout_all(&jobs)
    } else {
        Vec::new()
    };

    page.h2("details", "Changed functions in detail");
    if !have_dot {
        page.raw("<p class=\"note\" id=\"no-graphviz\"><b>graphviz <code>dot</code> is not installed, so the control-flow graphs are not drawn</b> (apt-get install graphviz, then run again); the tables below list the changed blocks and edges.</p>");
    }
    let mut svg_bytes = 0usize;
    for (n, p) in changed.iter().take(MAX_DETAILED).enumerate() {
        page.raw(&format!(
            "<section class=\"fn\" id=\"{}\"><h3><span class=\"mono\">{}</span> {} \u{2192} {} {}</h3>",
            esc(&anchor(p)),
            esc(&p.name),
            esc(&hex(p.old_addr)),
            esc(&hex(p.new_addr)),
            badge("changed")
        ));
        if let Some(note) = &p.note {
            page.note(note);
        }
        if let Some([o, nw]) = slots.get(n) {
            page.raw("<div class=\"side\">");
            for (label, s) in [("old", o), ("new", nw)] {
                let body = match s {
                    Ok(i) => match laid.get(*i) {
                        Some(Layout::Svg(svg)) if svg_bytes + svg.len() <= MAX_SVG_BYTES => {
                            svg_bytes += svg.len();
                            svg.clone()
                        }
                        Some(Layout::Svg(_)) => format!(
                            "<p class=\"note\">Not drawn: the page already holds {} of graphs (talos diff --format svg draws them all).</p>",
                            super::human_bytes(svg_bytes as u64)
                        ),
                        Some(Layout::NoGraphviz) => {
                            "<p class=\"note\">graphviz is not installed.</p>".into()
                        }
                        Some(Layout::Failed(why)) => format!("<p class=\"note\">{}</p>", esc(why)),
                        None => String::new(),
                    },
                    Err(why) if why.is_empty() => String::new(),
                    Err(why) => format!("<p class=\"note\">{}</p>", esc(why)),
                };
                page.raw(&format!(
                    "<div class=\"cfg-{label}\"><b>{label}</b> <span class=\"note\">(changed blocks filled)</span>{body}</div>"
                ));
            }
            page.raw("</div>");
        }
        blocks_table(page, p);
        edges_table(page, "edges added", &p.edges_added);
        edges_table(page, "edges removed", &p.edges_removed);
        page.raw("</section>");
    }
}

fn block_cells(b: &BlockRef) -> String {
    format!(
        "+{:#x} at {} ({} bytes, {} insns)",
        b.offset,
        hex(b.addr),
        b.size,
        b.instructions
    )
}

fn blocks_table(page: &mut Page, p: &FunctionPair) {
    if p.blocks_changed.is_empty() && p.blocks_added.is_empty() && p.blocks_removed.is_empty() {
        return;
    }
    page.table_start("blocks", &["", "old block", "new block"], false);
    let rows = p
        .blocks_changed
        .iter()
        .map(|b| ("changed", Some(&b.old), Some(&b.new)))
        .chain(p.blocks_added.iter().map(|b| ("added", None, Some(b))))
        .chain(p.blocks_removed.iter().map(|b| ("removed", Some(b), None)));
    let cell = |b: Option<&BlockRef>| b.map_or_else(|| td(""), |b| td_mono(&block_cells(b)));
    for (word, old, new) in rows.clone().take(MAX_ROWS) {
        page.row(
            &format!("block-{word}"),
            &[td_html(&badge(word)), cell(old), cell(new)],
        );
    }
    page.table_end();
    let total = rows.count();
    if total > MAX_ROWS {
        page.note(&format!(
            "... and {} more block(s) (talos diff --format json lists them all).",
            total - MAX_ROWS
        ));
    }
}

fn edges_table(page: &mut Page, title: &str, edges: &[EdgeRef]) {
    if edges.is_empty() {
        return;
    }
    page.raw(&format!(
        "<details><summary>{} ({})</summary>",
        esc(title),
        edges.len()
    ));
    page.table_start("edges", &["from", "kind", "to", "target"], false);
    for e in edges.iter().take(MAX_ROWS) {
        page.row(
            "",
            &[
                td_addr(&hex(e.from)),
                td_mono(&e.kind),
                td_mono(&e.to.map(hex).unwrap_or_default()),
                td_mono(&e.target),
            ],
        );
    }
    page.table_end();
    if edges.len() > MAX_ROWS {
        page.note(&format!(
            "... and {} more (talos diff --format json lists them all).",
            edges.len() - MAX_ROWS
        ));
    }
    page.raw("</details>");
}
