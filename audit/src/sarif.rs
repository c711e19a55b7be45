//! SARIF 2.1.0 output that GitHub code scanning accepts.
//!
//! Besides the OASIS schema (`docs/sarif/sarif-schema-2.1.0.json`, checked
//! in a test), GitHub needs: `ruleId` and a rule entry with short and full
//! descriptions for every result, a message text, at least one location
//! with `physicalLocation.artifactLocation.uri` and a region with
//! `startLine`, and `partialFingerprints` for matching results across runs.
//! Binaries have no lines: the region is the instruction's byte range
//! (`byteOffset`, `byteLength`) and `startLine` is 1; the function and
//! address are in `logicalLocations` and the result's properties.

use serde_json::{Value, json};

use crate::baseline::SARIF_FINGERPRINT_KEY;
use crate::model::Finding;
use crate::rules::RULES;
use crate::schema::Report;

/// The `$schema` URI written.
pub const SARIF_SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// Percent-encode a path into a URI reference (unreserved characters and
/// `/` kept).
#[must_use]
pub fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `artifact_index` is where `artifact` (the finding's file, or the binary)
/// sits in the run's `artifacts`, found when that list was built.
fn result(report: &Report, f: &Finding, artifact: &str, artifact_index: usize) -> Value {
    let rule_index = f.rule.index();
    let mut region = serde_json::Map::new();
    region.insert("startLine".into(), json!(f.line.unwrap_or(1)));
    if f.line.is_none()
        && let Some(off) = f.file_offset
    {
        region.insert("byteOffset".into(), json!(off));
        if let Some(len) = f.length {
            region.insert("byteLength".into(), json!(len));
        }
    }
    let mut location = serde_json::Map::new();
    location.insert(
        "physicalLocation".into(),
        json!({
            "artifactLocation": { "uri": uri(artifact), "index": artifact_index },
            "region": Value::Object(region),
        }),
    );
    if let Some(func) = &f.function {
        location.insert(
            "logicalLocations".into(),
            json!([{ "fullyQualifiedName": func, "kind": "function" }]),
        );
    }
    let mut props = serde_json::Map::new();
    props.insert("severity".into(), json!(f.severity.name()));
    if let Some(a) = f.addr {
        props.insert("address".into(), json!(format!("{a:#x}")));
    }
    if let Some(a) = f.function_addr {
        props.insert("functionAddress".into(), json!(format!("{a:#x}")));
    }
    if let Some(i) = &f.instruction {
        props.insert("instruction".into(), json!(i));
    }
    if let Some(r) = &f.reached_from {
        props.insert("reachedFrom".into(), json!(r));
    }
    if !f.path.is_empty() {
        props.insert("callPath".into(), json!(f.path));
    }
    let module = report
        .binary
        .path
        .rsplit('/')
        .next()
        .unwrap_or(&report.binary.path);
    let where_ = match (&f.function, f.addr) {
        (Some(func), Some(a)) => format!(
            " [{module}!{func}+{:#x} @ {a:#x}]",
            a.wrapping_sub(f.function_addr.unwrap_or(a))
        ),
        (None, Some(a)) => format!(" [{module} @ {a:#x}]"),
        _ => String::new(),
    };
    let mut r = json!({
        "ruleId": f.rule,
        "ruleIndex": rule_index,
        "level": f.severity.sarif_level(),
        "message": { "text": format!("{}{where_}", f.message) },
        "locations": [Value::Object(location)],
        "partialFingerprints": {
            SARIF_FINGERPRINT_KEY: f.fingerprint,
            "primaryLocationLineHash": format!("{}:1", f.fingerprint.get(..16).unwrap_or("")),
        },
        "properties": Value::Object(props),
    });
    if f.suppressed
        && let Some(obj) = r.as_object_mut()
    {
        obj.insert(
            "suppressions".into(),
            json!([{ "kind": "external", "justification": "accepted in the talos baseline" }]),
        );
    }
    r
}

/// The SARIF log of a report.
#[must_use]
pub fn to_sarif(report: &Report) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            let sev = report
                .rules
                .iter()
                .find(|s| s.id == r.id)
                .map_or(r.severity, |s| s.severity);
            json!({
                "id": r.id,
                "name": camel(r.id.name()),
                "shortDescription": { "text": r.title },
                "fullDescription": { "text": r.why },
                "help": {
                    "text": format!("{} {}", r.why, r.help),
                    "markdown": format!("{}\n\n**Fix:** {}", r.why, r.help),
                },
                "defaultConfiguration": { "level": sev.sarif_level() },
                "properties": {
                    "tags": ["security", "talos", r.family().name()],
                    "precision": "high",
                    "security-severity": sev.security_severity(),
                },
            })
        })
        .collect();
    // The binary first, then every other file a finding names, in the
    // order of the findings; each result points at its file's index.
    let mut artifacts: Vec<&str> = vec![report.binary.path.as_str()];
    let mut results: Vec<Value> = Vec::with_capacity(report.findings.len());
    for f in &report.findings {
        let artifact = f.artifact.as_deref().unwrap_or(&report.binary.path);
        let index = match artifacts.iter().position(|a| *a == artifact) {
            Some(i) => i,
            None => {
                artifacts.push(artifact);
                artifacts.len() - 1
            }
        };
        results.push(result(report, f, artifact, index));
    }
    let artifact_objs: Vec<Value> = artifacts
        .iter()
        .map(|a| json!({ "location": { "uri": uri(a) } }))
        .collect();
    let mut run_props = serde_json::Map::new();
    run_props.insert("tee".into(), json!(report.tee.name()));
    run_props.insert("teeReason".into(), json!(report.tee_reason));
    run_props.insert("failOn".into(), json!(report.fail_on.name()));
    run_props.insert("verdict".into(), json!(report.verdict));
    run_props.insert("arch".into(), json!(report.binary.arch));
    run_props.insert("graphDigest".into(), json!(report.binary.graph_digest));
    run_props.insert("notes".into(), json!(report.notes));
    // Rules that apply but could not be checked: a notification each, so a
    // code-scanning upload shows what the verdict does not cover.
    let mut notifications: Vec<Value> = report
        .unchecked()
        .iter()
        .map(|u| {
            json!({
                "level": "warning",
                "message": { "text": format!("{} could not be checked: {}", u.rule, u.why) },
                "associatedRule": { "id": u.rule, "index": u.rule.index() },
            })
        })
        .collect();
    // Parts of the binary the readers could not read.
    notifications.extend(report.anomalies.iter().map(|a| {
        json!({
            "level": "warning",
            "message": { "text": format!("part of the binary could not be read: {a}") },
        })
    }));
    json!({
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "talos",
                    "version": report.talos_version,
                    "semanticVersion": report.talos_version,
                    "informationUri": "https://github.com/talos-verify/talos",
                    "rules": rules,
                }
            },
            "invocations": [{
                // A tool that could not check an applicable rule did not
                // complete the audit it was asked for.
                "executionSuccessful": report.unchecked().is_empty()
                    && report.anomalies.is_empty()
                    && report.verdict != crate::model::AuditVerdict::Unverifiable,
                "toolExecutionNotifications": notifications,
            }],
            "artifacts": artifact_objs,
            "results": results,
            "columnKind": "unicodeCodePoints",
            "properties": Value::Object(run_props),
        }]
    })
}

/// `sgx-syscall` -> `SgxSyscall`.
fn camel(id: &str) -> String {
    id.split('-')
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_encoded() {
        assert_eq!(uri("corpus/out/a b.so"), "corpus/out/a%20b.so");
        assert_eq!(uri("/usr/bin/ls"), "/usr/bin/ls");
        assert_eq!(camel("sgx-lvi-unhardened"), "SgxLviUnhardened");
    }
}
