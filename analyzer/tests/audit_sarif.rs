//! The SARIF that `talos audit` writes validates against the OASIS SARIF
//! 2.1.0 schema shipped in `docs/sarif/`, and has what GitHub code scanning
//! needs beyond the schema.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::root;

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("docs/sarif/sarif-schema-2.1.0.json")).unwrap(),
    )
    .unwrap();
    jsonschema::draft4::new(&schema).expect("the SARIF schema compiles")
}

fn audit(
    path: &std::path::Path,
    manifest: Option<&std::path::Path>,
    sig: Option<&std::path::Path>,
) -> talos_audit::Report {
    let bytes = std::fs::read(path).unwrap();
    let mbytes = manifest.map(|m| std::fs::read(m).unwrap());
    let sbytes = sig.map(|s| std::fs::read(s).unwrap());
    let p = path.display().to_string();
    let mp = manifest.map(|m| m.display().to_string());
    let sp = sig.map(|s| s.display().to_string());
    let input = talos_audit::Input {
        path: &p,
        bytes: &bytes,
        manifest: mp
            .as_deref()
            .zip(mbytes.as_deref())
            .map(|(path, bytes)| talos_audit::Aux { path, bytes }),
        sig: sp
            .as_deref()
            .zip(sbytes.as_deref())
            .map(|(path, bytes)| talos_audit::Aux { path, bytes }),
    };
    talos_audit::audit(&input, &talos_audit::Options::default()).unwrap()
}

fn check_github_requirements(sarif: &serde_json::Value) {
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    for r in rules {
        assert!(r["id"].is_string());
        assert!(r["shortDescription"]["text"].is_string());
        assert!(r["fullDescription"]["text"].is_string());
        assert!(r["properties"]["security-severity"].is_string());
    }
    for res in run["results"].as_array().unwrap() {
        let id = res["ruleId"].as_str().unwrap();
        let idx = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], id);
        assert!(
            res["message"]["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
        let loc = &res["locations"][0]["physicalLocation"];
        assert!(
            loc["artifactLocation"]["uri"]
                .as_str()
                .is_some_and(|u| !u.is_empty())
        );
        assert!(loc["region"]["startLine"].as_u64().is_some_and(|l| l >= 1));
        let fp = res["partialFingerprints"]["talosFingerprint/v1"]
            .as_str()
            .unwrap();
        assert_eq!(fp.len(), 64);
    }
}

#[test]
fn sarif_from_the_enclave_corpus_validates() {
    let Some(dir) = common::enclave_corpus() else {
        return;
    };
    let v = validator();
    let cases: Vec<(&str, Option<&str>, Option<&str>)> = vec![
        ("sgx-bad.so", None, None),
        ("sgx-clean.so", None, None),
        (
            "gramine-app",
            Some("gramine-app.manifest.sgx"),
            Some("gramine-app.sig"),
        ),
        ("keystone-bad", None, None),
    ];
    let mut checked = 0;
    for (bin, m, s) in cases {
        let Some(path) = common::need_file(&dir.join(bin), "corpus/enclave/build.sh") else {
            continue;
        };
        let report = audit(
            &path,
            m.map(|m| dir.join(m)).as_deref(),
            s.map(|s| dir.join(s)).as_deref(),
        );
        let sarif = talos_audit::sarif::to_sarif(&report);
        let errors: Vec<String> = v
            .iter_errors(&sarif)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{bin}: {errors:#?}");
        check_github_requirements(&sarif);
        checked += 1;
    }
    eprintln!("{checked} SARIF logs validated");
}

#[test]
fn the_schema_rejects_what_it_should() {
    // The validator is not vacuous: a log without `version` or with a
    // result lacking a message fails.
    let v = validator();
    let bad = serde_json::json!({"runs": []});
    assert!(!v.is_valid(&bad));
    let bad = serde_json::json!({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "t"}}, "results": [{"ruleId": "x"}]}]});
    assert!(!v.is_valid(&bad));
    let ok = serde_json::json!({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "t"}}, "results": [{"ruleId": "x", "message": {"text": "m"}}]}]});
    assert!(v.is_valid(&ok));
}

/// The SARIF of audits that could not check everything (a PE enclave whose
/// SIGSTRUCT talos cannot read, an ELF whose headers cannot be parsed)
/// validates, says the run did not complete, and names each unchecked rule.
#[test]
fn sarif_of_unverifiable_audits_validates_and_names_what_was_not_checked() {
    let Some(dir) = common::hardening_corpus() else {
        return;
    };
    let v = validator();
    for (file, tee) in [
        ("pe-enclave.dll", "sgx"),
        ("elf-truncated", "auto"),
        ("pe-default.exe", "auto"),
    ] {
        let o = common::talos(&[
            "audit",
            dir.join(file).to_str().unwrap(),
            "--tee",
            tee,
            "--format",
            "sarif",
        ]);
        let sarif: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let errors: Vec<String> = v
            .iter_errors(&sarif)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{file}: {errors:#?}");
        check_github_requirements(&sarif);
        let inv = &sarif["runs"][0]["invocations"][0];
        let notes = inv["toolExecutionNotifications"].as_array().unwrap();
        if file == "pe-default.exe" {
            assert_eq!(inv["executionSuccessful"], true);
            assert!(notes.is_empty());
        } else {
            assert_eq!(inv["executionSuccessful"], false, "{file}");
            assert!(!notes.is_empty(), "{file}");
            for n in notes {
                let id = n["associatedRule"]["id"].as_str().unwrap();
                assert!(
                    n["message"]["text"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("{id} could not be checked")),
                    "{n}"
                );
            }
        }
    }
}
