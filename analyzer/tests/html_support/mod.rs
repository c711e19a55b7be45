//! Opening talos's HTML pages in a real browser (Debian's headless
//! Chromium) for the tests in `html.rs`: the DOM after load, screenshots,
//! and every request the browser tried to make.
//!
//! Nothing may leave the machine: Chromium is pointed at a "proxy" that is
//! a listener of this test on 127.0.0.1, which records the first line of
//! each request and closes the connection. A page that fetched anything
//! (a font, an image, a script, a stylesheet) shows up there; the control
//! test proves a page with one external image is caught.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common;

/// Debian's Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Requests Chromium's own background services make whatever the page
/// (component updater, network time, sign-in probe). They never reach the
/// network either (they go to the test's proxy); they are named exactly so
/// that a page fetching anything else, even from another Google host (web
/// fonts), is caught.
const BROWSER_OWN: &[&str] = &[
    "GET http://clients2.google.com/time/1/current?",
    "CONNECT update.googleapis.com:443 ",
    "POST http://update.googleapis.com/service/update2/json?",
    "CONNECT accounts.google.com:443 ",
    "CONNECT clientservices.googleapis.com:443 ",
    "CONNECT optimizationguide-pa.googleapis.com:443 ",
    "CONNECT content-autofill.googleapis.com:443 ",
    "CONNECT safebrowsingohttpgateway.googleapis.com:443 ",
];

/// Chromium, or `None` after the common skip (a failure under CI).
pub fn chromium() -> Option<&'static str> {
    if Path::new(CHROMIUM).is_file() {
        Some(CHROMIUM)
    } else {
        common::skip_or_fail("Debian's chromium is not installed (apt-get install chromium)");
        None
    }
}

/// Where screenshots and pages are kept after the tests
/// (`target/html-artifacts/`).
pub fn artifacts() -> PathBuf {
    let d = common::root().join("target/html-artifacts");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One page load.
#[derive(Debug)]
pub struct Visit {
    /// The DOM after load, serialised (`--dump-dom`), or empty for
    /// screenshots.
    pub dom: String,
    /// First lines of the requests the page made (the browser's own
    /// background requests left out).
    pub requests: Vec<String>,
    /// The browser's own requests.
    pub background: Vec<String>,
}

/// One Chromium at a time: two cores, and each instance is heavy.
static BROWSER: Mutex<()> = Mutex::new(());

/// Load `page` and return the DOM after the load event. Without
/// `javascript`, a copy of the page with its scripts cut out is loaded
/// (Chromium's switches that turn scripts off also turn off `--dump-dom`).
pub fn dump_dom(page: &Path, javascript: bool) -> Visit {
    let extra = ["--dump-dom".to_string()];
    if javascript {
        return run(page, &extra);
    }
    let markup = std::fs::read_to_string(page).unwrap();
    let mut cut = String::new();
    let mut rest = markup.as_str();
    while let Some(i) = rest.find("<script") {
        cut.push_str(&rest[..i]);
        let end = rest[i..].find("</script>").expect("unterminated script") + i + 9;
        rest = &rest[end..];
    }
    cut.push_str(rest);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("no-script.html");
    std::fs::write(&copy, cut).unwrap();
    run(&copy, &extra)
}

/// Load `page` and write a PNG of the top `width` x `height` pixels.
pub fn screenshot(page: &Path, png: &Path, width: u32, height: u32) -> Visit {
    let _ = std::fs::remove_file(png);
    let v = run(
        page,
        &[
            format!("--screenshot={}", png.display()),
            format!("--window-size={width},{height}"),
            "--hide-scrollbars".into(),
        ],
    );
    let bytes = std::fs::read(png).unwrap_or_default();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
        "{}: no screenshot ({} bytes)",
        png.display(),
        bytes.len()
    );
    v
}

fn run(page: &Path, extra: &[String]) -> Visit {
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let page = std::fs::canonicalize(page).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let proxy = {
        let seen = Arc::clone(&seen);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut c, _)) => {
                        c.set_nonblocking(false).unwrap();
                        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                        let mut buf = [0u8; 512];
                        let n = c.read(&mut buf).unwrap_or(0);
                        let text = String::from_utf8_lossy(&buf[..n]);
                        let line = text.lines().next().unwrap_or("").to_string();
                        seen.lock().unwrap().push(line);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(_) => break,
                }
            }
        })
    };
    let mut cmd = Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg(format!("--proxy-server=http://127.0.0.1:{port}"))
    // Loopback through the proxy too: nothing may be fetched from anywhere.
    .arg("--proxy-bypass-list=<-loopback>")
    .args(extra)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("start chromium");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish loading {} in 120 s",
                page.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let dom = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    // Requests still in flight when the browser exited have connected by now.
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    proxy.join().unwrap();
    let all = seen.lock().unwrap().clone();
    let (background, requests): (Vec<String>, Vec<String>) = all
        .into_iter()
        .partition(|l| BROWSER_OWN.iter().any(|b| l.starts_with(b)));
    Visit {
        dom,
        requests,
        background,
    }
}

/// The tags of serialised markup, as `(name, attributes)`: in a DOM
/// Chromium serialises, every `<` outside a tag is written `&lt;` and every
/// `"` inside an attribute value `&quot;`, so this split is exact.
pub fn tags(markup: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let b = markup.as_bytes();
    let mut i = 0;
    while let Some(off) = markup[i..].find('<') {
        let start = i + off + 1;
        let mut j = start;
        let mut quote: Option<u8> = None;
        while j < b.len() {
            match (quote, b[j]) {
                (None, b'>') => break,
                (None, q @ (b'"' | b'\'')) => quote = Some(q),
                (Some(q), c) if c == q => quote = None,
                _ => {}
            }
            j += 1;
        }
        let tag = &markup[start..j.min(b.len())];
        i = (j + 1).min(b.len());
        if tag.starts_with('/') || tag.starts_with('!') {
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '/')
            .collect::<String>()
            .to_ascii_lowercase();
        let mut attrs = Vec::new();
        let rest = &tag[name.len()..];
        let rb = rest.as_bytes();
        let mut k = 0;
        while k < rb.len() {
            while k < rb.len() && (rb[k].is_ascii_whitespace() || rb[k] == b'/') {
                k += 1;
            }
            let ns = k;
            while k < rb.len() && !rb[k].is_ascii_whitespace() && rb[k] != b'=' && rb[k] != b'/' {
                k += 1;
            }
            let an = rest[ns..k].to_ascii_lowercase();
            let mut val = String::new();
            if k < rb.len() && rb[k] == b'=' {
                k += 1;
                if k < rb.len() && (rb[k] == b'"' || rb[k] == b'\'') {
                    let q = rb[k];
                    let vs = k + 1;
                    k = vs;
                    while k < rb.len() && rb[k] != q {
                        k += 1;
                    }
                    val = rest[vs..k.min(rb.len())].to_string();
                    k += 1;
                } else {
                    let vs = k;
                    while k < rb.len() && !rb[k].is_ascii_whitespace() {
                        k += 1;
                    }
                    val = rest[vs..k].to_string();
                }
            }
            if !an.is_empty() {
                attrs.push((an, val));
            }
        }
        out.push((name, attrs));
    }
    out
}

/// What makes a page not self-contained or not safe: an element that loads
/// or runs something, an event-handler attribute, a reference outside the
/// page. Returns one line per problem.
pub fn active_content(markup: &str, scripts_allowed: usize) -> Vec<String> {
    let mut bad = Vec::new();
    let mut scripts = 0;
    for (name, attrs) in tags(markup) {
        match name.as_str() {
            "script" => {
                scripts += 1;
                if attrs.iter().any(|(a, _)| a == "src") {
                    bad.push("a script with src".into());
                }
            }
            "img" | "iframe" | "object" | "embed" | "link" | "image" | "audio" | "video"
            | "source" | "foreignobject" | "base" | "form" => {
                bad.push(format!("a <{name}> element"));
            }
            _ => {}
        }
        for (a, v) in &attrs {
            if a.starts_with("on") {
                bad.push(format!("<{name} {a}=...>"));
            }
            let refers = matches!(
                a.as_str(),
                "src" | "href" | "xlink:href" | "action" | "poster" | "data" | "srcset"
            );
            if refers && !v.starts_with('#') {
                bad.push(format!("<{name} {a}=\"{v}\">"));
            }
            if a == "style" && v.contains("url(") && !v.contains("url(#") {
                bad.push(format!("<{name} style with url()>"));
            }
        }
    }
    if scripts > scripts_allowed {
        bad.push(format!("{scripts} scripts, {scripts_allowed} expected"));
    }
    for needle in ["@import", "url(http", "url(//", "url(\"http", "url('http"] {
        if markup.contains(needle) {
            bad.push(format!("CSS {needle}"));
        }
    }
    bad
}

/// Whether the page's `<title>` is `want` (a page whose title an injected
/// script changed is caught here).
pub fn title(dom: &str) -> String {
    let s = dom.find("<title>").map_or(0, |i| i + 7);
    let e = dom[s..].find("</title>").map_or(s, |i| s + i);
    dom[s..e].to_string()
}

/// Count of elements carrying `attr="value"` in serialised markup.
pub fn count_attr(markup: &str, attr: &str, value: &str) -> usize {
    tags(markup)
        .iter()
        .filter(|(_, a)| a.iter().any(|(n, v)| n == attr && v == value))
        .count()
}
