//! `talos audit` on PE32+ images built by mingw with and without each
//! hardening flag (`corpus/hardening/build.sh`, built on first use), on a
//! PE enclave-like DLL audited for SGX, and on ELF files whose headers
//! cannot be parsed: every applicable rule is checked, or the verdict says
//! it could not be (exit 3), never `pass`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

mod common;

/// `talos audit FILE EXTRA --format json`: exit code and document.
fn audit(file: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["audit", file.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    let o = common::talos(&args);
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", file.display(), common::stderr(&o)));
    (o.status.code().unwrap_or(-1), v)
}

fn finding_rules(v: &Value) -> BTreeSet<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

fn rules_with_status(v: &Value, status: &str) -> BTreeSet<String> {
    v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == status)
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn manifest(dir: &Path) -> Vec<Value> {
    common::json(&dir.join("manifest.json"))["files"]
        .as_array()
        .unwrap()
        .clone()
}

/// Each mingw build gets exactly the PE findings its link flags call for,
/// the ELF rules do not apply, and the exit code follows the verdict.
#[test]
fn pe_builds_get_the_findings_their_flags_call_for() {
    let Some(dir) = common::hardening_corpus() else {
        return;
    };
    let mut seen = 0;
    for e in manifest(&dir).iter().filter(|e| e["rules"].is_array()) {
        let file = e["file"].as_str().unwrap();
        let (code, v) = audit(&dir.join(file), &[]);
        assert_eq!(v["binary"]["format"], "pe", "{file}");
        let want: BTreeSet<String> = e["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        assert_eq!(finding_rules(&v), want, "{file} ({})", e["flags"]);
        let unchecked: BTreeSet<String> = e["unchecked"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        assert_eq!(rules_with_status(&v, "unchecked"), unchecked, "{file}");
        // The ELF program-header rules do not apply to a PE image; every
        // PE rule was applied (or is listed as unchecked).
        for r in v["rules"].as_array().unwrap() {
            let id = r["id"].as_str().unwrap();
            if id.starts_with("hardening-pe-") {
                assert!(
                    r["status"] == "applied" || unchecked.contains(id),
                    "{file}: {r}"
                );
            } else if id.starts_with("hardening-") {
                assert_eq!(r["status"], "not_applicable", "{file}: {r}");
            }
        }
        let high = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["severity"] == "high");
        let (verdict, exit) = if high {
            ("fail", 1)
        } else if !unchecked.is_empty() {
            ("unverifiable", 3)
        } else {
            ("pass", 0)
        };
        assert_eq!(
            (v["verdict"].as_str(), code),
            (Some(verdict), exit),
            "{file}"
        );
        seen += 1;
    }
    assert_eq!(seen, 7, "manifest lists the seven mingw builds");
    // The facts behind the findings.
    let (_, v) = audit(&dir.join("pe-default.exe"), &[]);
    let pe = &v["hardening"]["pe"];
    assert_eq!(
        (
            pe["dynamic_base"].as_bool(),
            pe["nx_compat"].as_bool(),
            pe["high_entropy_va"].as_bool()
        ),
        (Some(true), Some(true), Some(true))
    );
    let (_, v) = audit(&dir.join("pe-ssp.exe"), &[]);
    assert_eq!(v["hardening"]["pe"]["stack_cookies"], true);
    let (_, v) = audit(&dir.join("pe-wx.exe"), &[]);
    let wx = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "hardening-pe-wx-section")
        .unwrap();
    assert!(wx["message"].as_str().unwrap().contains(".wxcode"), "{wx}");
}

/// The SGX instruction rules apply to a PE enclave audited with --tee sgx
/// as they do to an ELF one; the SIGSTRUCT rules, which talos cannot read
/// from a PE enclave, are listed as not checked.
#[test]
fn pe_enclave_gets_the_sgx_instruction_rules() {
    let Some(dir) = common::hardening_corpus() else {
        return;
    };
    let e = manifest(&dir)
        .into_iter()
        .find(|e| e["file"] == "pe-enclave.dll")
        .unwrap();
    let (code, v) = audit(&dir.join("pe-enclave.dll"), &["--tee", "sgx"]);
    assert_eq!(code, 1, "{}", v["verdict"]);
    assert_eq!(v["tee"], "sgx");
    let want = e["instructions"].as_array().unwrap();
    assert_eq!(want.len(), 3, "{e}");
    for i in want {
        let f = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == i["rule"] && f["addr"] == i["addr"])
            .unwrap_or_else(|| panic!("no {i} in {}", v["findings"]));
        assert_eq!(f["function"], "enclave_entry");
        assert_eq!(f["reached_from"], "export enclave_entry", "{f}");
    }
    let unchecked = rules_with_status(&v, "unchecked");
    for id in [
        "sgx-not-signed",
        "sgx-signature-invalid",
        "sgx-debug-enclave",
    ] {
        assert!(unchecked.contains(id), "{unchecked:?}");
    }
    // Without the failing instructions it would be unverifiable, never a
    // pass: disable the instruction rules through a policy.
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("talos.toml");
    std::fs::write(
        &policy,
        "[rules]\ndisable = [\"sgx-cpuid\", \"sgx-syscall\", \"sgx-rdtsc\"]\n",
    )
    .unwrap();
    let (code, v) = audit(
        &dir.join("pe-enclave.dll"),
        &["--tee", "sgx", "--policy", policy.to_str().unwrap()],
    );
    assert_eq!((code, v["verdict"].as_str()), (3, Some("unverifiable")));
}

/// An ELF file whose headers goblin cannot parse: no rule could be
/// checked, exit 3 with every rule named, never pass and never a crash.
#[test]
fn elf_with_unparseable_headers_is_unverifiable() {
    let Some(dir) = common::hardening_corpus() else {
        return;
    };
    for file in ["elf-bad-phoff", "elf-truncated"] {
        for tee in ["auto", "sgx"] {
            let (code, v) = audit(&dir.join(file), &["--tee", tee]);
            assert_eq!(code, 3, "{file} --tee {tee}: {v}");
            assert_eq!(v["verdict"], "unverifiable");
            assert!(v["findings"].as_array().unwrap().is_empty());
            let unchecked = rules_with_status(&v, "unchecked");
            assert!(unchecked.contains("hardening-wx-segment"), "{unchecked:?}");
            assert_eq!(
                unchecked.contains("sgx-syscall"),
                tee == "sgx",
                "{unchecked:?}"
            );
            assert!(rules_with_status(&v, "applied").is_empty());
            // The text names them too.
            let o = common::talos(&["audit", dir.join(file).to_str().unwrap(), "--tee", tee]);
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(text.contains("UNVERIFIABLE"), "{text}");
            assert!(
                text.contains("hardening-wx-segment: the ELF headers could not be parsed"),
                "{text}"
            );
        }
    }
    // The same program with intact headers is audited normally.
    let (code, v) = audit(&dir.join("elf-ok"), &[]);
    assert!(matches!(code, 0 | 1), "{v}");
    assert!(rules_with_status(&v, "unchecked").is_empty());
}
