//! The page of `talos migrate status --format html`: per app, where it
//! stands (from the ledger, which decides) and a timeline of what talos did
//! with it on this host (from the journal: registered, challenged, sealed,
//! verified, released, launched, refused with the reason).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;
use talos_migrate::LedgerView;

use super::{Page, badge, esc, generic, td, td_html, td_mono, td_num, tone};
use crate::cmd::migrate::journal::{self, Entry};

const KNOWN: &[&str] = &["host", "host_id", "trusted", "apps", "pending", "accepted"];
const APP_KNOWN: &[&str] = &[
    "status",
    "last_epoch",
    "epoch",
    "bundle",
    "peer",
    "releases",
];

/// `YYYY-MM-DD hh:mm:ss UTC` of Unix seconds.
#[must_use]
pub fn utc(secs: u64) -> String {
    // attest's RFC 3339 form written for people: a space for the `T`,
    // `UTC` for the `Z`.
    let t = talos_attest::time::format_rfc3339(secs);
    format!("{} UTC", t.trim_end_matches('Z').replacen('T', " ", 1))
}

fn short(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}

/// The event word of an accepted command.
fn event(command: &str) -> &'static str {
    match command {
        "init" => "host initialised",
        "trust" => "key pinned",
        "register" => "registered",
        "challenge" => "challenged",
        "seal" => "sealed",
        "verify" => "verified",
        "commit" => "released",
        "launch" => "launched",
        "abort" => "resumed",
        "resend" => "resent",
        "serve" => "verified and launched",
        "send" => "sent",
        _ => "done",
    }
}

/// Colour of an accepted event on the timeline.
fn event_tone(command: &str) -> &'static str {
    match command {
        "register" | "launch" | "serve" | "abort" => "good",
        "seal" => "warn",
        "commit" | "send" | "verify" | "challenge" => "info",
        _ => "neutral",
    }
}

/// Render the page.
#[must_use]
pub fn render(dir: &str, view: &LedgerView, j: &journal::Read) -> String {
    let mut page = Page::new(&format!("talos migrate status: {dir}"));
    page.header(
        "talos migrate status",
        &format!(
            "state directory {dir} \u{2014} host {} (id {})",
            view.host,
            short(&view.host_id)
        ),
    );
    let running = view
        .apps
        .values()
        .filter(|a| matches!(a.status.as_str(), "running" | "launched"))
        .count();
    let frozen = view.apps.values().filter(|a| a.status == "frozen").count();
    let refusals = j.entries.iter().filter(|e| e.verdict == "rejected").count();
    page.verdict(
        "ledger",
        &format!(
            "{} app(s): {running} may run here, {frozen} frozen for a migration; {} pending challenge(s), {} bundle(s) accepted; {refusals} refusal(s) in the journal.",
            view.apps.len(),
            view.pending.len(),
            view.accepted.len()
        ),
    );
    page.counts(&[
        ("apps", view.apps.len().to_string(), "neutral"),
        (
            "may run here",
            running.to_string(),
            if running > 0 { "running" } else { "neutral" },
        ),
        (
            "frozen",
            frozen.to_string(),
            if frozen > 0 { "frozen" } else { "neutral" },
        ),
        (
            "refusals",
            refusals.to_string(),
            if refusals > 0 { "refused" } else { "neutral" },
        ),
        (
            "pending challenges",
            view.pending.len().to_string(),
            "neutral",
        ),
    ]);
    if !j.present {
        page.note("This state directory has no journal yet (it is written by talos migrate from this version on): the timelines show only what the ledger records.");
    } else {
        let mut n = String::from(
            "Timelines come from the journal, which records each talos migrate verdict on this host; the ledger decides, the journal only tells (it is not signed).",
        );
        if j.skipped > 0 {
            let _ = write!(
                n,
                " {} journal line(s) could not be read and are left out.",
                j.skipped
            );
        }
        if j.truncated {
            let _ = write!(n, " Only the last {} entries are shown.", j.entries.len());
        }
        page.note(&n);
    }

    let view_value = serde_json::to_value(view).unwrap_or(Value::Null);
    let mut by_app: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    let mut host_events: Vec<&Entry> = Vec::new();
    for e in &j.entries {
        match e.app.as_deref() {
            Some(a) => by_app.entry(a).or_default().push(e),
            None => host_events.push(e),
        }
    }
    let mut apps: Vec<&str> = view.apps.keys().map(String::as_str).collect();
    for a in by_app.keys() {
        if !apps.contains(a) {
            apps.push(a);
        }
    }
    apps.sort_unstable();
    page.h2("apps", &format!("Apps ({})", apps.len()));
    if apps.is_empty() {
        page.note("No app has been registered, sealed or accepted on this host.");
    }
    for app in apps {
        app_section(
            &mut page,
            view,
            &view_value,
            app,
            by_app.get(app).map_or(&[][..], Vec::as_slice),
        );
    }

    page.h2("host", "This host");
    page.facts(
        "host",
        &[
            ("public key", view.host.clone()),
            ("key id", view.host_id.clone()),
        ],
    );
    page.h3(&format!("Pinned keys ({})", view.trusted.len()));
    if let Some(t) = view_value.get("trusted") {
        page.raw(&generic(t, 1));
    }
    if !view.pending.is_empty() {
        page.h3(&format!("Pending challenges ({})", view.pending.len()));
        page.table_start("pending", &["nonce", "app", "issued", "expires"], false);
        for p in &view.pending {
            page.row(
                "",
                &[
                    td_mono(short(&p.nonce)),
                    td_mono(&p.app),
                    td(&utc(p.issued_at)),
                    td(&utc(p.expires_at)),
                ],
            );
        }
        page.table_end();
    }
    if !host_events.is_empty() {
        page.h3("Host events");
        page.raw(&timeline(&host_events));
    }
    page.extra_fields(&view_value, KNOWN);
    page.finish()
}

fn app_section(page: &mut Page, view: &LedgerView, value: &Value, app: &str, events: &[&Entry]) {
    let record = view.apps.get(app);
    let status = record.map_or("absent", |a| a.status.as_str());
    page.raw(&format!(
        "<section class=\"app\" data-app=\"{a}\" data-status=\"{s}\"><h3><span class=\"mono\">{a}</span> {}</h3>",
        badge(status),
        a = esc(app),
        s = esc(status)
    ));
    if let Some(a) = record {
        let mut facts = vec![
            ("status", a.status.clone()),
            ("newest epoch seen", a.last_epoch.to_string()),
        ];
        if let Some(e) = a.epoch {
            facts.push(("epoch of this status", e.to_string()));
        }
        if let Some(b) = &a.bundle {
            facts.push(("bundle", b.clone()));
        }
        if let Some(p) = &a.peer {
            facts.push((
                if matches!(a.status.as_str(), "frozen" | "migrated-away") {
                    "target"
                } else {
                    "source"
                },
                p.clone(),
            ));
        }
        page.facts("app", &facts);
        if let Some(Value::Object(m)) = value.get("apps").and_then(|v| v.get(app)) {
            for (k, v) in m.iter().filter(|(k, _)| !APP_KNOWN.contains(&k.as_str())) {
                page.raw(&format!("<h4>{}</h4>{}", esc(k), generic(v, 2)));
            }
        }
    } else {
        page.note("Not in the ledger (only in the journal).");
    }
    // What the ledger itself records, oldest epoch first.
    let mut recorded: Vec<(u64, String, String)> = Vec::new();
    if let Some(a) = record {
        for r in &a.releases {
            recorded.push((
                r.epoch,
                "released".into(),
                format!("to {} (bundle {})", short(&r.target), short(&r.bundle)),
            ));
        }
    }
    for acc in view.accepted.iter().filter(|x| x.app == app) {
        recorded.push((
            acc.epoch,
            "accepted-here".into(),
            format!(
                "from {} (bundle {})",
                short(&acc.source),
                short(&acc.bundle)
            ),
        ));
    }
    for p in view.pending.iter().filter(|x| x.app == app) {
        recorded.push((
            0,
            "pending".into(),
            format!(
                "challenge {} issued {}, expires {}",
                short(&p.nonce),
                utc(p.issued_at),
                utc(p.expires_at)
            ),
        ));
    }
    recorded.sort();
    if !recorded.is_empty() {
        page.table_start("recorded", &["#epoch", "ledger record", "what"], false);
        for (e, word, what) in &recorded {
            page.row(
                "",
                &[
                    if *e == 0 { td("") } else { td_num(*e) },
                    td_html(&badge(word)),
                    td_mono(what),
                ],
            );
        }
        page.table_end();
    }
    if events.is_empty() {
        page.note("No journal entries for this app.");
    } else {
        page.raw(&timeline(events));
    }
    page.raw("</section>");
}

fn timeline(events: &[&Entry]) -> String {
    let mut s = String::from("<ol class=\"timeline\">");
    for e in events {
        let (word, class) = if e.verdict == "accepted" {
            (event(&e.command).to_string(), event_tone(&e.command))
        } else {
            (
                format!("refused ({})", e.reason.as_deref().unwrap_or("error")),
                "bad",
            )
        };
        let mut extra = String::new();
        if let Some(ep) = e.epoch {
            let _ = write!(extra, " epoch {ep}");
        }
        if let Some(b) = &e.bundle {
            let _ = write!(extra, ", bundle {}", short(b));
        }
        if let Some(p) = &e.peer {
            let _ = write!(extra, ", peer {}", short(p));
        }
        let _ = write!(
            s,
            "<li class=\"t-{class} event\" data-event=\"{cmd}\" data-verdict=\"{v}\"><span class=\"note\">{t}</span> <b>{w}</b> <span class=\"badge {bt}\">{cmd}</span><span class=\"mono\">{x}</span><br>{d}</li>",
            t = esc(&utc(e.time)),
            w = esc(&word),
            bt = tone(&e.verdict),
            cmd = esc(&e.command),
            v = esc(&e.verdict),
            x = esc(&extra),
            d = esc(&e.detail)
        );
    }
    s.push_str("</ol>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_matches_known_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }
}
