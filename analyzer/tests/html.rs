//! `--format html` of introspect, audit, diff and migrate status, opened in
//! a real browser (Debian's headless Chromium): the DOM after load holds
//! the verdict, findings, counts and highlighted blocks the JSON output
//! says; nothing is fetched from the network; markup in symbol names
//! renders as text; pages read the same without JavaScript. Screenshots of
//! the corpus cases are kept in `target/html-artifacts/` (and copied to
//! `docs/img/` for the README when `TALOS_UPDATE_SCREENSHOTS=1`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
mod html_support;
mod migrate_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{root, talos};
use html_support as browser;
use serde_json::Value;

/// Largest page talos may write for any corpus case.
const MAX_PAGE_BYTES: u64 = 5 << 20;

/// Run talos with `--format html -o OUT` appended; the exit code.
fn page(args: &[&str], out: &Path) -> i32 {
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["--format", "html", "-o", out.to_str().unwrap()]);
    let o = talos(&a);
    assert!(
        o.status.code() != Some(2),
        "talos {args:?}: {}",
        common::stderr(&o)
    );
    o.status.code().unwrap()
}

/// Run talos with `--format json` appended.
fn json(args: &[&str]) -> Value {
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["--format", "json"]);
    let o = talos(&a);
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("talos {args:?}: {e}: {}", common::stderr(&o)))
}

/// Open a page with and without JavaScript; check it is self-contained,
/// fetched nothing, reads the same without scripts; keep a screenshot as
/// `NAME.png` (and in `docs/img/` when asked). Returns the DOM.
fn open(html: &Path, name: &str) -> String {
    let markup = std::fs::read_to_string(html).unwrap();
    let size = markup.len() as u64;
    assert!(size < MAX_PAGE_BYTES, "{name}: {size} bytes");
    assert_eq!(
        browser::active_content(&markup, 1),
        Vec::<String>::new(),
        "{name}: the page as written"
    );
    let with_js = browser::dump_dom(html, true);
    assert_eq!(with_js.requests, Vec::<String>::new(), "{name}: fetched");
    assert_eq!(
        browser::active_content(&with_js.dom, 1),
        Vec::<String>::new(),
        "{name}: the DOM after load"
    );
    let without = browser::dump_dom(html, false);
    assert_eq!(without.requests, Vec::<String>::new(), "{name}: fetched");
    // Without scripts the same content is there; the filter boxes stay
    // hidden (the script only shows them, and it did run in the other).
    let inputs = |dom: &str| {
        browser::tags(dom)
            .into_iter()
            .filter(|(n, _)| n == "input")
            .map(|(_, a)| a.iter().any(|(n, _)| n == "hidden"))
            .collect::<Vec<bool>>()
    };
    let (shown, hidden) = (inputs(&with_js.dom), inputs(&without.dom));
    assert_eq!(shown.len(), hidden.len(), "{name}");
    assert!(
        shown.iter().all(|h| !h) && hidden.iter().all(|h| *h),
        "{name}"
    );
    for needle in ["data-verdict=", "<table", "</footer>"] {
        assert_eq!(
            with_js.dom.matches(needle).count(),
            without.dom.matches(needle).count(),
            "{name}: {needle} differs without JavaScript"
        );
    }
    let dir = browser::artifacts();
    std::fs::copy(html, dir.join(format!("{name}.html"))).unwrap();
    let png = dir.join(format!("{name}.png"));
    let shot = browser::screenshot(html, &png, 1280, 1400);
    assert_eq!(shot.requests, Vec::<String>::new(), "{name}: fetched");
    let record = format!(
        "{name}: {size} bytes, {} rows, {} svg\n",
        with_js.dom.matches("<tr").count(),
        with_js.dom.matches("<svg").count()
    );
    eprint!("{record}");
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("sizes.txt"))
        .unwrap();
    std::io::Write::write_all(&mut log, record.as_bytes()).unwrap();
    // One picture per report kind for the README.
    let readme = ["introspect", "audit", "diff", "migrate-status"].contains(&name);
    if readme && std::env::var_os("TALOS_UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
        let img = root().join("docs/img");
        std::fs::create_dir_all(&img).unwrap();
        std::fs::copy(&png, img.join(format!("{name}.png"))).unwrap();
    }
    with_js.dom
}

fn verdict_of(dom: &str) -> String {
    browser::tags(dom)
        .into_iter()
        .find_map(|(_, a)| {
            a.into_iter()
                .find(|(n, _)| n == "data-verdict")
                .map(|(_, v)| v)
        })
        .unwrap_or_default()
}

#[test]
fn the_network_check_catches_a_page_that_fetches() {
    if browser::chromium().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("fetches.html");
    std::fs::write(
        &p,
        "<!DOCTYPE html><title>t</title><p>x</p><img src=\"http://talos.invalid/x.png\"><link rel=\"stylesheet\" href=\"https://fonts.googleapis.com/css?family=X\">",
    )
    .unwrap();
    let v = browser::dump_dom(&p, true);
    assert!(
        v.requests.iter().any(|r| r.contains("talos.invalid")),
        "{v:?}"
    );
    assert!(
        v.requests
            .iter()
            .any(|r| r.contains("fonts.googleapis.com")),
        "{v:?}"
    );
    assert!(!browser::active_content(&v.dom, 0).is_empty());
    // The same page under talos's Content-Security-Policy fetches nothing.
    std::fs::write(
        &p,
        "<!DOCTYPE html><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"><title>t</title><img src=\"http://talos.invalid/x.png\">",
    )
    .unwrap();
    let v = browser::dump_dom(&p, true);
    assert_eq!(v.requests, Vec::<String>::new());
}

#[test]
fn introspect_pages_show_verdict_map_tampered_bytes_and_threads() {
    if browser::chromium().is_none() {
        return;
    }
    let Some(c) = common::dumps::corpus() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sk = c.sk_bin();
    let bin = sk.to_str().unwrap();
    let int3 = c.core("sk.int3.core");
    let int3 = int3.to_str().unwrap();
    let out = dir.path().join("int3.html");
    assert_eq!(page(&["introspect", int3, "--binary", bin], &out), 1);
    let doc = json(&["introspect", int3, "--binary", bin]);
    let dom = open(&out, "introspect");
    assert_eq!(verdict_of(&dom), "tampered");
    // The memory map draws every mapping, the tampered module in red, with
    // a mark on the planted byte.
    assert_eq!(
        dom.matches("class=\"region\"").count() as u64,
        doc["input"]["regions"].as_u64().unwrap()
    );
    assert!(browser::count_attr(&dom, "data-paint", "tampered code") >= 1);
    assert_eq!(dom.matches("class=\"mark\"").count(), 1);
    // The differing run: expected (file) and found (memory) bytes, and the
    // int3 in the memory listing of the function around it.
    let at = c.addr("INT3_ADDR");
    let row = format!("id=\"diff-{at:x}\"");
    assert!(dom.contains(&row), "no row for {at:#x}");
    let func = c.get("INT3_FUNC");
    assert!(dom.contains(&format!("{func}+0x")), "{func}");
    let listing = &dom[dom.find("memory (found)").unwrap()..];
    assert!(listing.contains("int3"), "no int3 in the memory listing");
    // One section per thread, with as many frames as the JSON.
    let threads = doc["threads"].as_array().unwrap();
    assert_eq!(dom.matches("class=\"thread\"").count(), threads.len());
    for t in threads {
        let tid = t["tid"].as_u64().unwrap().to_string();
        assert_eq!(browser::count_attr(&dom, "data-tid", &tid), 1);
    }

    // A default-filter gcore leaves code out: the page says unverifiable
    // (exit 3), never clean, and paints that code so.
    let path = c.core("sk.gcore-default.core");
    let out = dir.path().join("default.html");
    assert_eq!(
        page(
            &["introspect", path.to_str().unwrap(), "--binary", bin],
            &out
        ),
        3
    );
    let dom = open(&out, "introspect-unverifiable");
    assert_eq!(verdict_of(&dom), "unverifiable");
    assert!(browser::count_attr(&dom, "data-paint", "unverifiable code") >= 1);
    assert!(browser::count_attr(&dom, "data-paint", "clean code") >= 1);

    // Findings: a GOT hook and a JIT region (anonymous executable memory in
    // the map).
    for (core, kind, paint) in [
        ("sk.gothook.core", "got-hook", None),
        // The JIT region is rwx: drawn as W+X (both findings are listed).
        ("sk.jit.core", "anon-exec", Some("W+X")),
    ] {
        let path = c.core(core);
        let path = path.to_str().unwrap();
        let out = dir.path().join(format!("{core}.html"));
        assert_eq!(page(&["introspect", path, "--binary", bin], &out), 1);
        let doc = json(&["introspect", path, "--binary", bin]);
        let dom = open(&out, &format!("introspect-{kind}"));
        assert_eq!(verdict_of(&dom), doc["verdict"].as_str().unwrap());
        assert_eq!(
            dom.matches("<tr class=\"finding\"").count(),
            doc["findings"].as_array().unwrap().len()
        );
        assert!(dom.contains(&format!(">{kind}</span>")), "{core}: {kind}");
        if let Some(p) = paint {
            assert!(browser::count_attr(&dom, "data-paint", p) >= 1, "{core}");
        }
    }
}

#[test]
fn the_largest_introspect_case_stays_small() {
    if browser::chromium().is_none() {
        return;
    }
    let Some(c) = common::dumps::corpus() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let core = c.core("python3.gcore-7f.core");
    let out = dir.path().join("py.html");
    let code = page(&["introspect", core.to_str().unwrap()], &out);
    let doc = json(&["introspect", core.to_str().unwrap()]);
    assert_eq!(code, doc["verdict"].as_str().map_or(2, verdict_exit));
    let dom = open(&out, "introspect-python3");
    assert_eq!(verdict_of(&dom), doc["verdict"].as_str().unwrap());
    assert_eq!(
        dom.matches("class=\"thread\"").count(),
        doc["threads"].as_array().unwrap().len()
    );
}

fn verdict_exit(v: &str) -> i32 {
    match v {
        "clean" => 0,
        "unverifiable" => 3,
        _ => 1,
    }
}

/// The enclave corpus (`corpus/enclave/build.sh`), built when missing.
fn enclave() -> Option<PathBuf> {
    let out = root().join("corpus/out/enclave");
    if !out.join("sgx-bad.so.expected.json").is_file() {
        let _ = std::fs::create_dir_all(root().join("corpus/out"));
        let ok = Command::new("flock")
            .arg(root().join("corpus/out/.enclave-build.lock"))
            .arg("bash")
            .arg(root().join("corpus/enclave/build.sh"))
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            common::skip_or_fail("corpus/enclave/build.sh failed");
            return None;
        }
    }
    Some(out)
}

#[test]
fn audit_pages_group_findings_with_call_paths_and_enclave_metadata() {
    if browser::chromium().is_none() {
        return;
    }
    let Some(enc) = enclave() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (bin, name) in [("sgx-bad.so", "audit"), ("gramine-app", "audit-gramine")] {
        let path = enc.join(bin);
        let path = path.to_str().unwrap();
        let out = dir.path().join(format!("{bin}.html"));
        assert_eq!(page(&["audit", path], &out), 1);
        let doc = json(&["audit", path]);
        let dom = open(&out, name);
        assert_eq!(verdict_of(&dom), "fail");
        let findings = doc["findings"].as_array().unwrap();
        assert_eq!(
            dom.matches("<tr class=\"finding\"").count(),
            findings.len(),
            "{bin}"
        );
        // One group per severity that has findings, with its count.
        for (sev, n) in doc["counts"].as_object().unwrap() {
            let n = n.as_u64().unwrap();
            if n > 0 {
                assert_eq!(browser::count_attr(&dom, "data-severity", sev), 1, "{sev}");
                assert!(
                    dom.contains(&format!("</span> {n} finding(s)</h3>")),
                    "{sev}"
                );
            }
        }
        // Every finding with a call path gets a small graph: one box per
        // function on the path plus the instruction.
        for f in findings.iter().filter(|f| f["path"].is_array()) {
            let nodes = f["path"].as_array().unwrap().len() + 1;
            let rule = f["rule"].as_str().unwrap();
            let addr = format!("{:#x}", f["addr"].as_u64().unwrap());
            let start = dom
                .find(&format!("{rule}</td><td class=\"mono\">{addr}</td>"))
                .unwrap_or_else(|| panic!("{bin}: no row for {rule} at {addr}"));
            let row = &dom[start..start + dom[start..].find("</tr>").unwrap()];
            assert_eq!(row.matches("class=\"node\"").count(), nodes, "{rule}");
            if let Some(instruction) = f["instruction"].as_str() {
                assert!(row.contains(instruction), "{rule}: {instruction}");
            }
        }
        assert!(dom.contains("<h2 id=\"hardening\">Hardening</h2>"));
    }
    // SGX metadata as the JSON has it.
    let doc = json(&["audit", enc.join("sgx-bad.so").to_str().unwrap()]);
    let dom = std::fs::read_to_string(browser::artifacts().join("audit.html")).unwrap();
    let mrenclave = doc["sgx"]["sigstruct"]["mrenclave"].as_str().unwrap();
    assert!(dom.contains(mrenclave));
    assert!(dom.contains("<h2 id=\"sgx\">SGX metadata</h2>"));
}

/// A changed-line pair of the corpus (`bzip2-O2`, `bzip2-O2-changed`).
fn changed_pair(out: &Path) -> (PathBuf, PathBuf) {
    (
        out.join("x86_64/bzip2-O2"),
        out.join("x86_64/bzip2-O2-changed"),
    )
}

#[test]
fn diff_page_draws_both_graphs_with_the_changed_blocks_filled() {
    if browser::chromium().is_none() {
        return;
    }
    if !common::which("dot") {
        common::skip_or_fail("graphviz dot is not installed");
        return;
    }
    let Some(corpus) = common::corpus() else {
        return;
    };
    let (old, new) = changed_pair(&corpus);
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("diff.html");
    assert_eq!(page(&["diff", old, new], &out), 1);
    let doc = json(&["diff", old, new]);
    let dom = open(&out, "diff");
    assert_eq!(verdict_of(&dom), "different");
    let changed = doc["changed"].as_array().unwrap();
    assert!(!changed.is_empty());
    assert_eq!(
        dom.matches("<tr class=\"changed-fn\"").count(),
        changed.len()
    );
    for p in changed {
        let anchor = format!(
            "fn-{:x}-{:x}",
            p["old_addr"].as_u64().unwrap(),
            p["new_addr"].as_u64().unwrap()
        );
        let start = dom.find(&format!("id=\"{anchor}\"")).unwrap();
        let sec = &dom[start..start + dom[start..].find("</section>").unwrap()];
        let len = |k: &str| p[k].as_array().map_or(0, Vec::len);
        let old_svg =
            &sec[sec.find("class=\"cfg-old\"").unwrap()..sec.find("class=\"cfg-new\"").unwrap()];
        let new_svg = &sec[sec.find("class=\"cfg-new\"").unwrap()..];
        // graphviz draws each block as one polygon; the filled ones are the
        // changed (and added or removed) blocks of that side.
        assert_eq!(
            old_svg.matches("fill=\"#ffd0d0\"").count(),
            len("blocks_changed") + len("blocks_removed"),
            "{anchor} old"
        );
        assert_eq!(
            new_svg.matches("fill=\"#ffd0d0\"").count(),
            len("blocks_changed") + len("blocks_added"),
            "{anchor} new"
        );
        assert!(old_svg.contains("<svg") && new_svg.contains("<svg"));
        let name = p["name"].as_str().unwrap();
        assert!(sec.contains(name));
    }
}

#[test]
fn diff_page_without_graphviz_says_so_and_keeps_the_tables() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let (old, new) = changed_pair(&corpus);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("diff.html");
    // An empty PATH: no `dot` to run.
    let o = Command::new(env!("CARGO_BIN_EXE_talos"))
        .env("PATH", dir.path())
        .args([
            "diff",
            old.to_str().unwrap(),
            new.to_str().unwrap(),
            "--format",
            "html",
            "-o",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", common::stderr(&o));
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("id=\"no-graphviz\""));
    assert!(html.contains("graphviz <code>dot</code> is not installed"));
    assert_eq!(html.matches("<svg").count(), 0);
    assert!(html.contains("<tr class=\"block-changed\">"));
}

#[test]
fn a_whole_program_diff_summarises_and_links_per_function() {
    if browser::chromium().is_none() {
        return;
    }
    let Some(corpus) = common::corpus() else {
        return;
    };
    // -O0 against -O2 of the largest program: almost every function differs.
    let old = corpus.join("x86_64/sqlite3-O0");
    let new = corpus.join("x86_64/sqlite3-O2");
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.html");
    assert_eq!(page(&["diff", old, new], &out), 1);
    let doc = json(&["diff", old, new]);
    let dom = open(&out, "diff-sqlite3-O0-O2");
    let changed = doc["changed"].as_array().unwrap().len();
    assert!(changed > 500, "{changed}");
    // Every changed function is listed; only some are drawn.
    assert_eq!(dom.matches("<tr class=\"changed-fn\"").count(), changed);
    let sections = dom.matches("<section class=\"fn\"").count();
    assert!(sections < changed && sections > 0, "{sections}");
    let links = dom.matches("<a href=\"#fn-").count();
    assert_eq!(links, sections);
    assert!(dom.matches("<svg").count() <= 2 * 24);
}

#[test]
fn migrate_status_page_draws_a_timeline_per_app_with_refusals() {
    if browser::chromium().is_none() {
        return;
    }
    let Some(c) = common::dumps::corpus() else {
        return;
    };
    let w = migrate_common::World::sk(c, &["S", "T"]);
    let (code, v) = w.exchange_to_launch(c, "S", "T");
    assert_eq!(code, 0, "{v:#}");
    // A replayed bundle is refused on the target; a tampered dump is
    // refused on the source.
    let (code, v) = w.verify(
        "T",
        "bundle-S-T",
        &c.sk_bin(),
        &c.core("sk.gcore-7f.core"),
        "r2",
    );
    migrate_common::assert_rejected(code, &v, "already-accepted");
    w.run_ok("S", &["register", "--app", "other"]);
    w.run_ok("T", &["challenge", "--app", "other", "-o", &w.s("chal-o")]);
    let out = w.p("status-T.html");
    let o = w.raw(
        "T",
        &["status", "--format", "html", "-o", out.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let dom = open(&out, "migrate-status");
    let statuses = w.status("T");
    let app = &statuses["apps"][migrate_common::APP];
    let tags = browser::tags(&dom);
    let section = tags
        .iter()
        .find(|(_, a)| {
            a.iter()
                .any(|(n, v)| n == "data-app" && v == migrate_common::APP)
        })
        .expect("a section for the app");
    assert!(
        section
            .1
            .iter()
            .any(|(n, v)| n == "data-status" && Some(v.as_str()) == app["status"].as_str())
    );
    // The timeline of the app on T: challenged, verified, launched, then
    // the replay refused with its reason.
    let start = dom
        .find(&format!("data-app=\"{}\"", migrate_common::APP))
        .unwrap();
    let sec = &dom[start..start + dom[start..].find("</section>").unwrap()];
    let events: Vec<(String, String)> = browser::tags(sec)
        .iter()
        .filter_map(|(_, a)| {
            let get = |k: &str| a.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            Some((get("data-event")?, get("data-verdict")?))
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("challenge", "accepted"),
        ("verify", "accepted"),
        ("launch", "accepted"),
        ("verify", "rejected"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(events, want);
    assert!(dom.contains("refused (already-accepted)"));
    // The source: registered, sealed, released.
    let out = w.p("status-S.html");
    let o = w.raw(
        "S",
        &["status", "--format", "html", "-o", out.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let html = std::fs::read_to_string(&out).unwrap();
    for word in ["registered", "sealed", "released"] {
        assert!(html.contains(&format!("<b>{word}</b>")), "{word}");
    }
    assert!(html.contains("data-status=\"migrated-away\""));
    // Only status draws pages.
    let o = w.raw("S", &["register", "--app", "x", "--format", "html"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Names that are markup: an element that would run a script, and an
/// attribute breakout.
const SCRIPT_NAME: &str =
    "<script>document.title=\"PWNED\"</script><img src=x onerror=\"document.title='PWNED'\">";
const ATTR_NAME: &str = "x\" onload=\"document.title='PWNED'\" y='";

/// Build the hostile program (`-DV=3` or `4`) with its two functions
/// renamed to markup by objcopy.
fn hostile(dir: &Path, v: u32) -> Option<PathBuf> {
    if !common::which("gcc") || !common::which("objcopy") {
        common::skip_or_fail("gcc and objcopy are needed for the hostile-name test");
        return None;
    }
    let src = root().join("analyzer/tests/data/hostile.c");
    let plain = dir.join(format!("plain{v}"));
    let st = Command::new("gcc")
        .args(["-O1", &format!("-DV={v}"), "-o"])
        .arg(&plain)
        .arg(&src)
        .status()
        .unwrap();
    assert!(st.success());
    let out = dir.join(format!("hostile{v}"));
    let st = Command::new("objcopy")
        .arg(format!("--redefine-sym=hostile_script={SCRIPT_NAME}"))
        .arg(format!("--redefine-sym=hostile_attr={ATTR_NAME}"))
        .arg(&plain)
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    Some(out)
}

/// The page must show the names as text and hold nothing they injected.
fn assert_inert(dom: &str, what: &str) {
    assert!(!browser::title(dom).contains("PWNED"), "{what}: title");
    assert_eq!(
        browser::active_content(dom, 1),
        Vec::<String>::new(),
        "{what}"
    );
    assert!(
        dom.contains("&lt;script&gt;document.title=\"PWNED\"&lt;/script&gt;&lt;img src=x"),
        "{what}: the name is not shown as text"
    );
}

#[test]
fn markup_in_symbol_names_renders_as_text() {
    if browser::chromium().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(h3) = hostile(dir.path(), 3) else {
        return;
    };
    let h4 = hostile(dir.path(), 4).unwrap();
    let (h3s, h4s) = (h3.to_str().unwrap(), h4.to_str().unwrap());

    // audit: the CPUID in the renamed function, on a path from the entry.
    let out = dir.path().join("audit.html");
    page(&["audit", h3s, "--tee", "sgx"], &out);
    let dom = browser::dump_dom(&out, true).dom;
    assert_inert(&dom, "audit");

    // diff: both renamed functions changed; their graphs carry the names.
    let out = dir.path().join("diff.html");
    assert_eq!(page(&["diff", h3s, h4s], &out), 1);
    let visit = browser::dump_dom(&out, true);
    assert_inert(&visit.dom, "diff");
    assert!(
        visit
            .dom
            .contains("x\" onload=\"document.title='PWNED'\" y='")
    );
    assert_eq!(visit.requests, Vec::<String>::new());
    let png = browser::artifacts().join("hostile-diff.png");
    browser::screenshot(&out, &png, 1280, 1000);

    // introspect: a core of the program after it patched the renamed
    // function (gdb writes it).
    if !common::which("gdb") {
        common::skip_or_fail("gdb is needed for the hostile-name core");
        return;
    }
    let core = dir.path().join("hostile.core");
    let o = Command::new("gdb")
        .args(["-batch", "-nx", "-ex", "run", "-ex"])
        .arg(format!("gcore {}", core.display()))
        .arg("--args")
        .arg(&h3)
        .arg("patch")
        .output()
        .unwrap();
    assert!(
        core.is_file(),
        "gdb: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = dir.path().join("introspect.html");
    assert_eq!(
        page(
            &["introspect", core.to_str().unwrap(), "--binary", h3s],
            &out
        ),
        1
    );
    let dom = browser::dump_dom(&out, true).dom;
    assert_inert(&dom, "introspect");
    assert_eq!(verdict_of(&dom), "tampered");
}

#[test]
fn every_command_that_draws_pages_lists_html_in_its_help() {
    for cmd in [
        &["introspect", "--help"][..],
        &["audit", "--help"],
        &["diff", "--help"],
        &["migrate", "status", "--help"],
    ] {
        let o = talos(cmd);
        let help = String::from_utf8_lossy(&o.stdout);
        assert!(help.contains("html"), "{cmd:?}: {help}");
    }
}
