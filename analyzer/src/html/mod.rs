//! `--format html`: one self-contained page per report, for people who
//! attach results to a review or a ticket.
//!
//! Every page is a single file: inline CSS, inline SVG, one small inline
//! script (filtering tables only; the page reads the same without it), no
//! fonts, images or scripts fetched from anywhere. A Content-Security-Policy
//! in the page forbids every fetch and every script but ours (by hash), so
//! even a mistake in escaping could not run injected code or load anything.
//!
//! Every string that comes from the input (symbol names, paths, manifest
//! values, reasons) goes through [`esc`]; markup is only ever built here.
//! Pages render from the same report types the JSON output serialises;
//! fields this module does not know yet are still shown, generically (see
//! [`Page::extra_fields`]), so a field added to a report shows up without a
//! change here.

pub mod audit;
pub mod diff;
pub mod graphviz;
pub mod introspect;
pub mod migrate;
pub mod svg;

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Escape text for HTML element content and double- or single-quoted
/// attribute values. NUL (which HTML parsers drop or replace) becomes
/// U+FFFD so what is shown is what was there.
#[must_use]
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// `0x...` address text.
#[must_use]
pub fn hex(v: u64) -> String {
    format!("{v:#x}")
}

pub use crate::output::human_bytes;

/// The name serde gives a value (enum variants render with the same words
/// as the JSON output, so a new variant needs no change here).
#[must_use]
pub fn serde_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        // Internally tagged enums name the variant in `type`; externally
        // tagged ones are `{"variant": ...}`.
        Ok(Value::Object(m)) => match m.get("type") {
            Some(Value::String(t)) => t.clone(),
            _ => m.iter().next().map_or_else(String::new, |(k, _)| k.clone()),
        },
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// A serialisable value as text: strings as they are, `null` as `none`,
/// anything else as its JSON (for fields whose type may be a string today
/// and an enum or an option tomorrow).
#[must_use]
pub fn shown<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(Value::Null) | Err(_) => "none".into(),
        Ok(other) => other.to_string(),
    }
}

/// The fields of a serialised object whose keys are not in `known`, as a
/// facts table (empty when there are none).
#[must_use]
pub fn extra_object_fields<T: Serialize>(v: &T, known: &[&str]) -> String {
    let Ok(Value::Object(map)) = serde_json::to_value(v) else {
        return String::new();
    };
    let extra: Vec<(&String, &Value)> = map
        .iter()
        .filter(|(k, v)| !known.contains(&k.as_str()) && !is_empty(v))
        .collect();
    if extra.is_empty() {
        return String::new();
    }
    let mut s = String::from("<table class=\"facts extra\"><tbody>");
    for (k, v) in extra {
        let _ = write!(s, "<tr><th>{}</th><td>{}</td></tr>", esc(k), generic(v, 1));
    }
    s.push_str("</tbody></table>");
    s
}

/// CSS class for a verdict or status word: the word itself when it is one
/// the stylesheet colours, else `neutral` (an input-chosen word must never
/// become arbitrary class names).
#[must_use]
pub fn tone(word: &str) -> &'static str {
    match word {
        "clean" | "pass" | "same" | "ok" | "accepted" | "applied" | "launched" | "running"
        | "verified" | "on-instruction" | "in-block" | "registered" => "good",
        "tampered" | "fail" | "different" | "rejected" | "high" | "binary-changed" | "wx"
        | "anon-exec" | "got-hook" | "flow" | "mid-instruction" | "outside-code"
        | "outside-blocks" | "anonymous-code" | "refused" | "error" | "finding" | "padding"
        | "outside-functions" => "bad",
        "unverifiable" | "unproven" | "unchecked" | "medium" | "findings" | "frozen"
        | "not-checked" | "unverified" | "no-fde" | "unexplained" | "undecodable" | "undecided"
        | "no-registers" | "no-binary" | "no-cfg" | "not-requested" | "pending" | "changed"
        | "added" | "removed" | "unreachable" => "warn",
        "low" | "info" | "kernel" | "not_applicable" | "disabled" | "migrated-away"
        | "accepted-here" | "absent" | "released" | "sealed" | "challenged" => "info",
        _ => "neutral",
    }
}

/// A badge (`<span class="badge TONE">WORD</span>`).
#[must_use]
pub fn badge(word: &str) -> String {
    format!("<span class=\"badge {}\">{}</span>", tone(word), esc(word))
}

/// The one script of every page: a filter box above tables marked
/// `data-filter`. Hidden until the script shows it, so a reader without
/// JavaScript never sees a dead control.
const SCRIPT: &str = r#"(function(){
for (const box of document.querySelectorAll('input.filter')) {
  box.hidden = false;
  const tables = box.dataset.table.split(' ').map(function (id) { return document.getElementById(id); });
  box.addEventListener('input', function () {
    const q = box.value.toLowerCase();
    for (const table of tables) {
      if (!table) continue;
      if (q !== '' && table.closest('details')) table.closest('details').open = true;
      for (const row of table.tBodies[0].rows) {
        row.hidden = q !== '' && !row.textContent.toLowerCase().includes(q);
      }
    }
  });
}
})();"#;

const STYLE: &str = r#"
:root{--bg:#fff;--fg:#1b1f24;--mute:#5b6570;--line:#d5dae0;--soft:#f4f6f8;
--good:#1a7f37;--good-bg:#dafbe1;--bad:#b3261e;--bad-bg:#ffe1de;--warn:#8a5a00;--warn-bg:#fff3c4;
--info:#0b5cad;--info-bg:#ddeeff;--neutral-bg:#eceff2}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:1280px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
.sub{color:var(--mute);margin:0 0 14px;word-break:break-all}
code,.mono,pre,td.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12.5px}
pre{background:var(--soft);border:1px solid var(--line);padding:8px 10px;overflow:auto;margin:6px 0}
table{border-collapse:collapse;margin:6px 0 10px;width:100%}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600;position:sticky;top:0}
table.facts th{position:static;width:30%;font-weight:500}
td{word-break:break-word}
td.addr{white-space:nowrap;word-break:normal}
td.num,th.num{text-align:right;white-space:nowrap}
.badge{display:inline-block;border-radius:4px;padding:0 6px;font-size:12px;font-weight:600;white-space:nowrap}
.good{color:var(--good);background:var(--good-bg)}.bad{color:var(--bad);background:var(--bad-bg)}
.warn{color:var(--warn);background:var(--warn-bg)}.info{color:var(--info);background:var(--info-bg)}
.neutral{background:var(--neutral-bg)}
.verdict{border-radius:8px;padding:14px 18px;margin:10px 0 18px;border:1px solid var(--line)}
.verdict .word{font-size:26px;font-weight:700;letter-spacing:.02em;text-transform:uppercase}
.verdict p{margin:4px 0 0}
.counts{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}
.counts div{border:1px solid var(--line);border-radius:6px;padding:6px 12px;min-width:90px}
.counts b{display:block;font-size:20px}
details{margin:6px 0}summary{cursor:pointer;font-weight:600}
.note{color:var(--mute)}
ul.notes li{margin:2px 0}
.side{display:grid;grid-template-columns:1fr 1fr;gap:12px}
.side>div{border:1px solid var(--line);border-radius:6px;padding:6px;overflow:auto;max-height:720px}
.side svg{max-width:100%;height:auto}
.strip{overflow-x:auto;border:1px solid var(--line);border-radius:6px;padding:6px;background:var(--soft)}
.legend{display:flex;flex-wrap:wrap;gap:10px;margin:6px 0;font-size:12px}
.legend span{display:inline-flex;align-items:center;gap:4px}
.legend i{display:inline-block;width:14px;height:10px;border:1px solid #0003}
.hl{background:var(--bad-bg)}
tr.hl td{background:var(--bad-bg)}
input.filter{margin:4px 0;padding:4px 8px;width:320px;max-width:100%;border:1px solid var(--line);border-radius:4px}
.timeline{list-style:none;padding:0;margin:6px 0;border-left:3px solid var(--line)}
.timeline li{margin:0 0 8px;padding-left:14px;position:relative}
.timeline li::before{content:"";position:absolute;left:-8px;top:6px;width:11px;height:11px;border-radius:50%;background:var(--line)}
.timeline li.t-good::before{background:var(--good)}.timeline li.t-bad::before{background:var(--bad)}
.timeline li.t-warn::before{background:var(--warn)}.timeline li.t-info::before{background:var(--info)}
.timeline li.t-bad b{color:var(--bad)}
section.fn,details.thread,section.app{content-visibility:auto;contain-intrinsic-size:auto 600px}
footer{margin-top:40px;color:var(--mute);font-size:12px}
@media print{.strip,.side>div{max-height:none;overflow:visible}input.filter{display:none}}
"#;

/// Base64 (standard alphabet, padded) for the CSP script hash.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(A.get(idx).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A page being built. Everything pushed with [`Page::raw`] must already be
/// markup made by this module; text goes through the escaping helpers.
#[derive(Debug, Default)]
pub struct Page {
    title: String,
    body: String,
    tables: usize,
}

impl Page {
    /// A page with this `<title>` (escaped).
    #[must_use]
    pub fn new(title: &str) -> Page {
        Page {
            title: title.to_owned(),
            body: String::new(),
            tables: 0,
        }
    }

    /// Append markup built by this module.
    pub fn raw(&mut self, html: &str) {
        self.body.push_str(html);
    }

    /// `<h1>` and a line under it.
    pub fn header(&mut self, title: &str, sub: &str) {
        let _ = write!(
            self.body,
            "<h1>{}</h1><p class=\"sub\">{}</p>",
            esc(title),
            esc(sub)
        );
    }

    /// The verdict box: a word, its tone, one sentence.
    pub fn verdict(&mut self, word: &str, summary: &str) {
        let _ = write!(
            self.body,
            "<section class=\"verdict {t}\" id=\"verdict\"><div class=\"word\" data-verdict=\"{w}\">{w}</div><p>{s}</p></section>",
            t = tone(word),
            w = esc(word),
            s = esc(summary)
        );
    }

    /// `<h2 id=...>`.
    pub fn h2(&mut self, id: &str, text: &str) {
        let _ = write!(self.body, "<h2 id=\"{}\">{}</h2>", esc(id), esc(text));
    }

    /// `<h3>`.
    pub fn h3(&mut self, text: &str) {
        let _ = write!(self.body, "<h3>{}</h3>", esc(text));
    }

    /// A muted paragraph.
    pub fn note(&mut self, text: &str) {
        let _ = write!(self.body, "<p class=\"note\">{}</p>", esc(text));
    }

    /// Count tiles (label, value, tone word).
    pub fn counts(&mut self, items: &[(&str, String, &str)]) {
        self.body.push_str("<div class=\"counts\">");
        for (label, value, word) in items {
            let _ = write!(
                self.body,
                "<div class=\"{}\" data-count=\"{}\"><b>{}</b>{}</div>",
                tone(word),
                esc(label),
                esc(value),
                esc(label)
            );
        }
        self.body.push_str("</div>");
    }

    /// A list of notes (text).
    pub fn notes(&mut self, items: &[String]) {
        if items.is_empty() {
            return;
        }
        self.body.push_str("<ul class=\"notes\">");
        for n in items {
            let _ = write!(self.body, "<li>{}</li>", esc(n));
        }
        self.body.push_str("</ul>");
    }

    /// Start a table: `id` names it for the filter box (shown when
    /// `filter`), `heads` are header cells (a leading `#` right-aligns).
    pub fn table_start(&mut self, id: &str, heads: &[&str], filter: bool) -> String {
        self.tables += 1;
        let id = format!("{}-{}", id, self.tables);
        if filter {
            let _ = write!(
                self.body,
                "<input class=\"filter\" type=\"search\" hidden placeholder=\"filter rows\" data-table=\"{}\">",
                esc(&id)
            );
        }
        self.tables -= 1;
        self.table_start_id(&id, heads);
        id
    }

    /// A filter box over the tables with these ids.
    pub fn filter_box(&mut self, ids: &[&str]) {
        let _ = write!(
            self.body,
            "<input class=\"filter\" type=\"search\" hidden placeholder=\"filter rows\" data-table=\"{}\">",
            esc(&ids.join(" "))
        );
    }

    /// Start a table with exactly this id (see [`Page::filter_box`]).
    pub fn table_start_id(&mut self, id: &str, heads: &[&str]) {
        self.tables += 1;
        let _ = write!(self.body, "<table id=\"{}\"><thead><tr>", esc(id));
        for h in heads {
            match h.strip_prefix('#') {
                Some(h) => {
                    let _ = write!(self.body, "<th class=\"num\">{}</th>", esc(h));
                }
                None => {
                    let _ = write!(self.body, "<th>{}</th>", esc(h));
                }
            }
        }
        self.body.push_str("</tr></thead><tbody>");
    }

    /// A row of cells; each cell is markup made by [`td`] and its siblings.
    pub fn row(&mut self, class: &str, cells: &[String]) {
        if class.is_empty() {
            self.body.push_str("<tr>");
        } else {
            let _ = write!(self.body, "<tr class=\"{}\">", esc(class));
        }
        for c in cells {
            self.body.push_str(c);
        }
        self.body.push_str("</tr>");
    }

    /// Close the table.
    pub fn table_end(&mut self) {
        self.body.push_str("</tbody></table>");
    }

    /// Key/value table of facts.
    pub fn facts(&mut self, id: &str, rows: &[(&str, String)]) {
        self.tables += 1;
        let _ = write!(
            self.body,
            "<table class=\"facts\" id=\"{}-{}\"><tbody>",
            esc(id),
            self.tables
        );
        for (k, v) in rows {
            self.row("", &[format!("<th>{}</th>", esc(k)), td_mono(v)]);
        }
        self.table_end();
    }

    /// Fields of `value` (a serialised report object) whose keys are not in
    /// `known`, each under its own heading: a field another part of talos
    /// adds to a report shows up here until this page learns to draw it.
    pub fn extra_fields(&mut self, value: &Value, known: &[&str]) {
        let Value::Object(map) = value else { return };
        let extra: Vec<(&String, &Value)> = map
            .iter()
            .filter(|(k, v)| !known.contains(&k.as_str()) && !is_empty(v))
            .collect();
        if extra.is_empty() {
            return;
        }
        self.h2("more", "More");
        for (k, v) in extra {
            let _ = write!(
                self.body,
                "<h3 data-field=\"{k}\">{k}</h3>{}",
                generic(v, 0),
                k = esc(k)
            );
        }
    }

    /// The finished document.
    #[must_use]
    pub fn finish(self) -> String {
        let hash = base64(&Sha256::digest(SCRIPT.as_bytes()));
        let mut s = String::with_capacity(self.body.len() + STYLE.len() + 2048);
        s.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        let _ = write!(
            s,
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'\">"
        );
        s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        s.push_str("<meta name=\"referrer\" content=\"no-referrer\">");
        let _ = write!(
            s,
            "<title>{}</title><style>{STYLE}</style></head>",
            esc(&self.title)
        );
        s.push_str("<body><main>");
        s.push_str(&self.body);
        let _ = write!(
            s,
            "<footer>talos {} &middot; self-contained report: no scripts, fonts or images are fetched; it reads the same without JavaScript.</footer>",
            esc(env!("CARGO_PKG_VERSION"))
        );
        s.push_str("</main><script>");
        s.push_str(SCRIPT);
        s.push_str("</script></body></html>\n");
        s
    }
}

/// `<td>` with escaped text.
#[must_use]
pub fn td(text: &str) -> String {
    format!("<td>{}</td>", esc(text))
}

/// `<td class="mono">` with escaped text.
#[must_use]
pub fn td_mono(text: &str) -> String {
    format!("<td class=\"mono\">{}</td>", esc(text))
}

/// An address cell (never wrapped).
#[must_use]
pub fn td_addr(text: &str) -> String {
    format!("<td class=\"mono addr\">{}</td>", esc(text))
}

/// Right-aligned number cell.
#[must_use]
pub fn td_num(n: u64) -> String {
    format!("<td class=\"num\">{n}</td>")
}

/// A cell holding markup made by this module.
#[must_use]
pub fn td_html(html: &str) -> String {
    format!("<td>{html}</td>")
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Most items a generic list shows.
const GENERIC_ITEMS: usize = 500;

/// Any JSON value as escaped markup: objects as key/value tables, lists of
/// objects as tables with the union of their keys, other lists as lists.
#[must_use]
pub fn generic(v: &Value, depth: usize) -> String {
    if depth > 6 {
        return format!("<code>{}</code>", esc(&v.to_string()));
    }
    match v {
        Value::Null => "<span class=\"note\">none</span>".into(),
        Value::Bool(b) => esc(&b.to_string()),
        Value::Number(n) => esc(&n.to_string()),
        Value::String(s) => format!("<span class=\"mono\">{}</span>", esc(s)),
        Value::Object(m) => {
            let mut s = String::from("<table><tbody>");
            for (k, v) in m {
                let _ = write!(
                    s,
                    "<tr><th>{}</th><td>{}</td></tr>",
                    esc(k),
                    generic(v, depth + 1)
                );
            }
            s.push_str("</tbody></table>");
            s
        }
        Value::Array(a) if a.iter().all(Value::is_object) && !a.is_empty() => {
            let mut keys: Vec<&String> = Vec::new();
            for item in a.iter().take(GENERIC_ITEMS) {
                if let Value::Object(m) = item {
                    for k in m.keys() {
                        if !keys.contains(&k) {
                            keys.push(k);
                        }
                    }
                }
            }
            // Sentences read best in the last column.
            keys.sort_by_key(|k| matches!(k.as_str(), "detail" | "message" | "why" | "summary"));
            let mut s = String::from("<table><thead><tr>");
            for k in &keys {
                let _ = write!(s, "<th>{}</th>", esc(k));
            }
            s.push_str("</tr></thead><tbody>");
            for item in a.iter().take(GENERIC_ITEMS) {
                s.push_str("<tr>");
                for k in &keys {
                    let cell = item.get(k.as_str()).map_or_else(String::new, |v| {
                        if let Value::String(t) = v {
                            // Status words get their colour.
                            if tone(t) != "neutral" {
                                return badge(t);
                            }
                        }
                        generic(v, depth + 1)
                    });
                    let _ = write!(s, "<td>{cell}</td>");
                }
                s.push_str("</tr>");
            }
            s.push_str("</tbody></table>");
            if a.len() > GENERIC_ITEMS {
                let _ = write!(
                    s,
                    "<p class=\"note\">... and {} more (see --format json)</p>",
                    a.len() - GENERIC_ITEMS
                );
            }
            s
        }
        Value::Array(a) => {
            let mut s = String::from("<ul>");
            for item in a.iter().take(GENERIC_ITEMS) {
                let _ = write!(s, "<li>{}</li>", generic(item, depth + 1));
            }
            s.push_str("</ul>");
            if a.len() > GENERIC_ITEMS {
                let _ = write!(
                    s,
                    "<p class=\"note\">... and {} more (see --format json)</p>",
                    a.len() - GENERIC_ITEMS
                );
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>\"x\"&'y'\0"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;\u{fffd}"
        );
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn generic_escapes_keys_and_values() {
        let v = serde_json::json!({"<k>": ["<v>", {"a\"": "<b>"}]});
        let s = generic(&v, 0);
        assert!(!s.contains("<k>") && !s.contains("<v>") && !s.contains("<b>"));
        assert!(s.contains("&lt;k&gt;") && s.contains("a&quot;"));
    }

    #[test]
    fn unknown_words_get_no_class_of_their_own() {
        assert_eq!(tone("x\" onload=\"y"), "neutral");
        assert!(badge("<i>").contains("&lt;i&gt;"));
    }
}
