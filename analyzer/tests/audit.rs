//! `talos audit` end to end through the real binary, on the enclave corpus
//! (`corpus/enclave/build.sh`, built on first use) and on system binaries.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{enclave_corpus, skip_or_fail, stderr, talos};

fn audit_json(bin: &Path, extra: &[&str]) -> (serde_json::Value, Option<i32>) {
    let mut args = vec!["audit", bin.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    let o = talos(&args);
    assert!(
        matches!(o.status.code(), Some(0 | 1 | 3)),
        "{}: {:?} {}",
        bin.display(),
        o.status,
        stderr(&o)
    );
    (serde_json::from_slice(&o.stdout).unwrap(), o.status.code())
}

/// (rule, addr) of findings at an address; rule ids of all findings.
fn findings(doc: &serde_json::Value) -> (BTreeSet<(String, u64)>, BTreeSet<String>) {
    let mut at = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for f in doc["findings"].as_array().unwrap() {
        let rule = f["rule"].as_str().unwrap().to_string();
        ids.insert(rule.clone());
        let instruction_rule = rule.starts_with("sgx-")
            && !matches!(
                rule.as_str(),
                "sgx-lvi-unhardened"
                    | "sgx-debug-enclave"
                    | "sgx-signature-invalid"
                    | "sgx-not-signed"
                    | "sgx-metadata-malformed"
                    | "sgx-debug-not-enforced"
                    | "sgx-provision-key"
            )
            || rule.starts_with("keystone-")
            || rule.starts_with("gramine-emulated");
        if instruction_rule {
            at.insert((rule, f["addr"].as_u64().unwrap()));
        }
    }
    (at, ids)
}

fn expected(dir: &Path, bin: &str) -> (BTreeSet<(String, u64)>, BTreeSet<String>) {
    let e: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{bin}.expected.json"))).unwrap())
            .unwrap();
    let mut at = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for f in e["findings"].as_array().unwrap() {
        let rule = f["rule"].as_str().unwrap().to_string();
        ids.insert(rule.clone());
        at.insert((rule, f["addr"].as_u64().unwrap()));
    }
    for r in e["image_rules"].as_array().unwrap() {
        ids.insert(r.as_str().unwrap().to_string());
    }
    (at, ids)
}

const BINARIES: &[&str] = &[
    "sgx-bad.so",
    "sgx-clean.so",
    "sgx-tampered.so",
    "gramine-app",
    "gramine-clean",
    "keystone-bad",
    "keystone-clean",
];

#[test]
fn every_planted_pattern_is_found_at_its_address_and_nothing_else() {
    let Some(dir) = enclave_corpus() else { return };
    for bin in BINARIES {
        let path = dir.join(bin);
        if !path.exists() {
            skip_or_fail(&format!(
                "{bin} was not built (corpus/enclave/build.sh needs riscv64-linux-gnu-gcc for it)"
            ));
            continue;
        }
        let (doc, code) = audit_json(&path, &[]);
        let (got_at, got_ids) = findings(&doc);
        let (want_at, want_ids) = expected(&dir, bin);
        assert_eq!(got_at, want_at, "{bin}: findings at addresses");
        assert_eq!(got_ids, want_ids, "{bin}: rule ids");
        let high = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["severity"] == "high");
        assert_eq!(code, Some(i32::from(high)), "{bin}: exit code");
        if bin.contains("clean") {
            assert!(
                doc["findings"].as_array().unwrap().is_empty(),
                "{bin} is not clean"
            );
        }
    }
}

#[test]
fn sgx_metadata_is_reported_and_verified_in_software() {
    let Some(dir) = enclave_corpus() else { return };
    let (doc, _) = audit_json(&dir.join("sgx-clean.so"), &[]);
    assert_eq!(doc["tee"], "sgx");
    let sig = &doc["sgx"]["sigstruct"];
    assert_eq!(sig["signature"], "verified");
    assert_eq!(sig["q1_q2"], "verified");
    assert_eq!(sig["isv_prod_id"], 1);
    assert_eq!(sig["exponent"], 3);
    assert_eq!(sig["mrsigner"].as_str().unwrap().len(), 64);
    assert_eq!(doc["sgx"]["metadata"]["version"], "2.4");
    assert!(
        doc["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("No SGX hardware"))
    );
    let text =
        String::from_utf8(talos(&["audit", dir.join("sgx-clean.so").to_str().unwrap()]).stdout)
            .unwrap();
    assert!(text.contains("no SGX hardware was used"), "{text}");
    let (bad, _) = audit_json(&dir.join("sgx-tampered.so"), &[]);
    assert!(
        bad["sgx"]["sigstruct"]["signature"]
            .as_str()
            .unwrap()
            .starts_with("invalid")
    );
    let (lvi, _) = audit_json(&dir.join("sgx-clean.so"), &[]);
    let l = &lvi["lvi"];
    assert!(l["sites"].as_u64().unwrap() > 0);
    assert_eq!(l["sites"], l["hardened"]);
}

#[test]
fn stripped_binaries_give_the_same_findings() {
    let Some(dir) = enclave_corpus() else { return };
    for bin in ["sgx-bad.so", "gramine-app"] {
        let (a, _) = audit_json(&dir.join(bin), &[]);
        // The stripped copy has no sibling manifest/sig: point at them.
        let stripped = dir.join(format!("{bin}.stripped"));
        let extra: Vec<String> = if bin == "gramine-app" {
            vec![
                "--manifest".into(),
                dir.join("gramine-app.manifest.sgx").display().to_string(),
                "--sig".into(),
                dir.join("gramine-app.sig").display().to_string(),
            ]
        } else {
            Vec::new()
        };
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let (b, _) = audit_json(&stripped, &extra);
        assert_eq!(findings(&a), findings(&b), "{bin}");
    }
}

#[test]
fn fingerprints_survive_a_rebuild_that_moves_every_address() {
    let Some(dir) = enclave_corpus() else { return };
    let (a, _) = audit_json(&dir.join("sgx-bad.so"), &[]);
    let (b, _) = audit_json(&dir.join("sgx-bad-rebuilt.so"), &[]);
    let fps = |d: &serde_json::Value| -> BTreeSet<String> {
        d["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["fingerprint"].as_str().unwrap().to_string())
            .collect()
    };
    let addrs = |d: &serde_json::Value| -> BTreeSet<u64> {
        d["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["addr"].as_u64())
            .collect()
    };
    assert_ne!(addrs(&a), addrs(&b), "the rebuild did not move anything");
    assert_eq!(fps(&a), fps(&b));
}

#[test]
fn baseline_suppresses_accepted_findings_from_json_and_sarif() {
    let Some(dir) = enclave_corpus() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bin = dir.join("sgx-bad.so");
    for format in ["json", "sarif"] {
        let base = tmp.path().join(format!("base.{format}"));
        let o = talos(&[
            "audit",
            bin.to_str().unwrap(),
            "--format",
            format,
            "-o",
            base.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1));
        // The rebuilt enclave: same findings, other addresses, all accepted.
        let rebuilt = dir.join("sgx-bad-rebuilt.so");
        let (doc, code) = audit_json(&rebuilt, &["--baseline", base.to_str().unwrap()]);
        assert_eq!(code, Some(0), "{format}: {doc}");
        assert!(
            doc["findings"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f["suppressed"] == true)
        );
        assert_eq!(doc["verdict"], "pass");
    }
    let junk = tmp.path().join("junk.json");
    std::fs::write(&junk, "{\"hello\": 1}").unwrap();
    let o = talos(&[
        "audit",
        bin.to_str().unwrap(),
        "--baseline",
        junk.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("junk.json"), "{}", stderr(&o));
}

#[test]
fn policy_selects_rules_severities_and_the_failing_level() {
    let Some(dir) = enclave_corpus() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let Some(bin) = common::need_file(
        &dir.join("keystone-bad"),
        "corpus/enclave/build.sh, with riscv64-linux-gnu-gcc",
    ) else {
        return;
    };
    let policy = tmp.path().join("talos.toml");
    // keystone-bad has medium findings only: passes by default...
    let (_, code) = audit_json(&bin, &[]);
    assert_eq!(code, Some(0));
    // ...fails with fail_on = "medium"...
    std::fs::write(&policy, "fail_on = \"medium\"\n").unwrap();
    let (_, code) = audit_json(&bin, &["--policy", policy.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    // ...passes again with the rule disabled and another downgraded.
    std::fs::write(
        &policy,
        "fail_on = \"medium\"\n[rules]\ndisable = [\"keystone-unknown-ecall\"]\n[severity]\n\"keystone-linux-syscall\" = \"info\"\n",
    )
    .unwrap();
    let (doc, code) = audit_json(&bin, &["--policy", policy.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{doc}");
    let rules: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(!rules.contains(&"keystone-unknown-ecall"));
    let st = doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "keystone-unknown-ecall")
        .unwrap();
    assert_eq!(st["status"], "disabled");
    // A typo is an error naming the file.
    std::fs::write(&policy, "[rules]\ndisable = [\"keystone-unknwn\"]\n").unwrap();
    let o = talos(&[
        "audit",
        bin.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("talos.toml") && stderr(&o).contains("keystone-unknwn"));
}

#[test]
fn rules_that_do_not_apply_say_why() {
    let Some(dir) = enclave_corpus() else { return };
    let (doc, _) = audit_json(&dir.join("sgx-clean.so"), &["--tee", "keystone"]);
    let rules = doc["rules"].as_array().unwrap();
    let k = rules
        .iter()
        .find(|r| r["id"] == "keystone-unknown-ecall")
        .unwrap();
    assert_eq!(k["status"], "not_applicable");
    assert!(k["reason"].as_str().unwrap().contains("x86_64"), "{k}");
    let bti = rules
        .iter()
        .find(|r| r["id"] == "hardening-no-bti")
        .unwrap();
    assert_eq!(bti["status"], "not_applicable");
}

#[test]
fn json_is_deterministic_across_runs_and_thread_counts() {
    let Some(dir) = enclave_corpus() else { return };
    let bin = dir.join("gramine-app");
    let run = |threads: &str, format: &str| {
        Command::new(env!("CARGO_BIN_EXE_talos"))
            .args(["audit", bin.to_str().unwrap(), "--format", format])
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap()
            .stdout
    };
    for format in ["json", "sarif", "text"] {
        assert_eq!(run("1", format), run("2", format), "{format}");
        assert_eq!(run("1", format), run("4", format), "{format}");
    }
}

#[test]
fn unusable_inputs_exit_2_with_one_line_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("not-a-binary");
    std::fs::write(&junk, b"hello").unwrap();
    let o = talos(&["audit", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("not-a-binary") && err.lines().count() == 1,
        "{err}"
    );
    // A manifest that is not TOML is unusable input too.
    let Some(dir) = enclave_corpus() else { return };
    let bad = tmp.path().join("bad.manifest.sgx");
    std::fs::write(&bad, "sgx.debug = ").unwrap();
    let o = talos(&[
        "audit",
        dir.join("gramine-clean").to_str().unwrap(),
        "--manifest",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.manifest.sgx"), "{}", stderr(&o));
}

#[test]
fn list_rules_and_help() {
    let o = talos(&["audit", "--list-rules"]);
    assert!(o.status.success());
    let s = String::from_utf8(o.stdout).unwrap();
    for id in [
        "sgx-syscall",
        "gramine-insecure-option",
        "keystone-unknown-ecall",
        "hardening-wx-segment",
    ] {
        assert!(s.contains(id), "{id}");
    }
    let help = talos(&["audit", "--help"]);
    assert!(help.status.success());
    let h = String::from_utf8(help.stdout).unwrap();
    for flag in ["--tee", "--policy", "--baseline", "--format", "sarif"] {
        assert!(h.contains(flag), "{flag}");
    }
}

fn is_elf(p: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"\x7fELF"
}

/// System binaries: the first 30 ELF files under 2 MiB in /usr/bin
/// (sorted) audit without an internal error, auto-detected and as an SGX
/// enclave. The size cap keeps this debug-build test near a minute; the
/// full sweep with release timings is `bench/audit.sh`.
#[test]
fn system_binaries_audit_without_errors() {
    let Ok(rd) = std::fs::read_dir("/usr/bin") else {
        skip_or_fail("/usr/bin cannot be listed");
        return;
    };
    let mut bins: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && is_elf(p))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() < 2 << 20))
        .collect();
    bins.sort();
    bins.truncate(30);
    for b in &bins {
        for tee in ["auto", "sgx"] {
            let o = talos(&[
                "audit",
                b.to_str().unwrap(),
                "--tee",
                tee,
                "--format",
                "json",
            ]);
            let err = stderr(&o);
            assert!(!err.contains("panicked"), "{}: {err}", b.display());
            match o.status.code() {
                Some(0 | 1) => {
                    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                    assert_eq!(v["schema"], "talos.audit/1");
                }
                // Unverifiable: it names every rule it could not check.
                Some(3) => {
                    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                    assert_eq!(v["verdict"], "unverifiable");
                    let unchecked = v["rules"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|r| r["status"] == "unchecked")
                        .count();
                    assert!(
                        unchecked > 0,
                        "{}: exit 3 without an unchecked rule",
                        b.display()
                    );
                }
                // Only unsupported architectures or non-executables may be
                // refused, and with a reason.
                Some(2) => assert!(
                    err.contains("unsupported") || err.contains("no executable code"),
                    "{}: {err}",
                    b.display()
                ),
                other => panic!("{}: exit {other:?}: {err}", b.display()),
            }
        }
    }
}
