//! `talos diff` end to end on the corpus: `<prog>-O2` against
//! `<prog>-O2-changed` (one source line changed) for every architecture the
//! corpus has, unstripped and stripped, binaries and saved graphs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

mod common;

use common::{stderr, talos};

/// (old, new, changed function names, old truth, new truth) of every
/// changed-line pair in the corpus manifest; empty when the corpus is not
/// built (an error under CI).
fn changed_pairs() -> Vec<(PathBuf, PathBuf, PathBuf, PathBuf, BTreeSet<String>, String)> {
    let Some(out) = common::corpus() else {
        return Vec::new();
    };
    let bytes = std::fs::read(out.join("manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let bins = m["binaries"].as_array().unwrap();
    let mut pairs = Vec::new();
    for b in bins.iter().filter(|b| b["variant"] == "changed") {
        let from = b["changed_from"].as_str().unwrap();
        let old = bins.iter().find(|x| x["id"] == from).unwrap();
        let changed: BTreeSet<String> = b["changed_functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        pairs.push((
            out.join(old["unstripped"].as_str().unwrap()),
            out.join(b["unstripped"].as_str().unwrap()),
            out.join(old["stripped"].as_str().unwrap()),
            out.join(b["stripped"].as_str().unwrap()),
            changed,
            b["arch"].as_str().unwrap().to_string(),
        ));
    }
    assert!(
        !pairs.is_empty(),
        "corpus/out/manifest.json lists no changed-line pair"
    );
    pairs
}

fn diff_json(old: &str, new: &str) -> (serde_json::Value, Option<i32>) {
    let o = talos(&["diff", old, new, "--format", "json"]);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{old} {new}: {:?} {}",
        o.status,
        stderr(&o)
    );
    (serde_json::from_slice(&o.stdout).unwrap(), o.status.code())
}

fn changed_names(d: &serde_json::Value) -> BTreeSet<String> {
    d["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

fn nothing_else(d: &serde_json::Value, what: &str) {
    assert!(
        d["added"].as_array().unwrap().is_empty(),
        "{what}: added {}",
        d["added"]
    );
    assert!(
        d["removed"].as_array().unwrap().is_empty(),
        "{what}: removed {}",
        d["removed"]
    );
    assert!(d["unproven"].as_array().unwrap().is_empty(), "{what}");
}

#[test]
fn one_changed_line_reports_exactly_the_changed_functions_on_every_arch() {
    let pairs = changed_pairs();
    let mut arches = BTreeSet::new();
    for (old, new, _, _, want, arch) in &pairs {
        let (d, code) = diff_json(old.to_str().unwrap(), new.to_str().unwrap());
        assert_eq!(code, Some(1), "{arch}");
        assert_eq!(d["verdict"], "different");
        assert_eq!(&changed_names(&d), want, "{arch}");
        nothing_else(&d, arch);
        // Block detail: at least one block of the changed function differs.
        for p in d["changed"].as_array().unwrap() {
            assert!(
                !p["blocks_changed"]
                    .as_array()
                    .unwrap_or(&Vec::new())
                    .is_empty()
                    || !p["blocks_added"]
                        .as_array()
                        .unwrap_or(&Vec::new())
                        .is_empty(),
                "{arch}: {p}"
            );
        }
        arches.insert(arch.clone());
    }
    eprintln!("architectures checked: {arches:?}");
}

#[test]
fn stripped_builds_still_find_exactly_the_changed_function() {
    for (old, new, old_s, new_s, want, arch) in changed_pairs() {
        let (named, _) = diff_json(old.to_str().unwrap(), new.to_str().unwrap());
        let want_addrs: BTreeSet<u64> = named["changed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["new_addr"].as_u64().unwrap())
            .collect();
        let (d, code) = diff_json(old_s.to_str().unwrap(), new_s.to_str().unwrap());
        assert_eq!(code, Some(1), "{arch}");
        let got: BTreeSet<u64> = d["changed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["new_addr"].as_u64().unwrap())
            .collect();
        assert_eq!(
            got, want_addrs,
            "{arch}: stripped diff points elsewhere ({want:?})"
        );
        nothing_else(&d, &arch);
    }
}

#[test]
fn saved_graphs_diff_like_binaries() {
    let tmp = tempfile::tempdir().unwrap();
    for (old, new, _, _, want, arch) in changed_pairs().into_iter().take(2) {
        let old_json = tmp.path().join(format!("{arch}-old.json"));
        let new_json = tmp.path().join(format!("{arch}-new.json"));
        for (bin, json) in [(&old, &old_json), (&new, &new_json)] {
            let o = talos(&[
                "cfg",
                bin.to_str().unwrap(),
                "--format",
                "json",
                "-o",
                json.to_str().unwrap(),
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
        }
        // Reference graph of the last release against a new binary, and
        // graph against graph.
        for (a, b) in [(&old_json, &new), (&old_json, &new_json)] {
            let (d, code) = diff_json(a.to_str().unwrap(), b.to_str().unwrap());
            assert_eq!(code, Some(1));
            assert_eq!(changed_names(&d), want, "{arch}");
            nothing_else(&d, &arch);
        }
        let (same, code) = diff_json(old_json.to_str().unwrap(), old.to_str().unwrap());
        assert_eq!(code, Some(0), "{same}");
        assert_eq!(same["verdict"], "same");
    }
}

#[test]
fn identical_and_relinked_builds_are_the_same() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let out = corpus.join("x86_64");
    let Some(a) = common::need_file(&out.join("bzip2-O2"), "corpus/build.sh") else {
        return;
    };
    let (d, code) = diff_json(a.to_str().unwrap(), a.to_str().unwrap());
    assert_eq!(code, Some(0));
    assert_eq!(d["verdict"], "same");
    assert_eq!(d["same_graph_digest"], true);
    // The same objects linked at another address: same graph.
    let (b1, b2) = (out.join("bzip2-O2-base1"), out.join("bzip2-O2-base2"));
    if let (Some(b1), Some(b2)) = (
        common::need_file(&b1, "corpus/build.sh"),
        common::need_file(&b2, "corpus/build.sh"),
    ) {
        let (d, code) = diff_json(b1.to_str().unwrap(), b2.to_str().unwrap());
        assert_eq!(code, Some(0), "{}", d["summary"]);
    }
}

#[test]
fn dot_highlights_changed_blocks_and_svg_needs_graphviz() {
    let Some((old, new, _, _, _, _)) = changed_pairs().into_iter().next() else {
        return; // changed_pairs said why
    };
    let o = talos(&[
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "--format",
        "dot",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let dot = String::from_utf8(o.stdout).unwrap();
    assert!(
        dot.starts_with("digraph cfg {") && dot.contains("fillcolor"),
        "{dot}"
    );
    if common::need_tool("dot", "graphviz renders --format svg") {
        let o = talos(&[
            "diff",
            old.to_str().unwrap(),
            new.to_str().unwrap(),
            "--format",
            "svg",
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("<svg"));
        let o = talos(&[
            "cfg",
            new.to_str().unwrap(),
            "--function",
            "main",
            "--format",
            "svg",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("<svg"));
    }
    // Without graphviz on PATH: exit 2 and a message naming it.
    for args in [
        vec![
            "diff",
            old.to_str().unwrap(),
            new.to_str().unwrap(),
            "--format",
            "svg",
        ],
        vec!["cfg", new.to_str().unwrap(), "--format", "svg"],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_talos"))
            .args(&args)
            .env("PATH", "/nonexistent")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("graphviz"), "{}", stderr(&o));
    }
}

#[test]
fn unusable_inputs_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.json");
    std::fs::write(&junk, "{\"schema\": \"other/1\"}").unwrap();
    let o = talos(&["diff", junk.to_str().unwrap(), junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("junk.json"), "{}", stderr(&o));
    let missing = tmp.path().join("missing");
    let o = talos(&["diff", missing.to_str().unwrap(), missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}
