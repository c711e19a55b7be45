//! `talos audit` on hardening-corpus binaries (`corpus/hardening/build.sh`,
//! built on first use) with one header field changed so that the file
//! declares what it does not hold: a section name outside the section name
//! table, a GNU property note cut short, a PE load configuration directory
//! no section maps. The loader still accepts each file, the audit reads
//! what it can, records the rest as an anomaly, and never passes (exit 3),
//! where the unchanged file passes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;

/// `talos audit FILE --format FORMAT`: exit code and stdout.
fn audit(file: &Path, format: &str) -> (i32, String) {
    let o = common::talos(&["audit", file.to_str().unwrap(), "--format", format]);
    assert!(
        !common::stderr(&o).contains("panicked"),
        "{}",
        common::stderr(&o)
    );
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8(o.stdout).unwrap(),
    )
}

fn u16_at(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes(b[at..at + 2].try_into().unwrap()))
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

fn u64_at(b: &[u8], at: usize) -> usize {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize
}

/// The file offset of the section header named `name` in a little-endian
/// ELF64 file (read by hand from the ELF header, not with talos' readers).
fn section_header(b: &[u8], name: &str) -> usize {
    let (shoff, shentsize, shnum, shstrndx) = (
        u64_at(b, 0x28),
        u16_at(b, 0x3a),
        u16_at(b, 0x3c),
        u16_at(b, 0x3e),
    );
    let strtab = u64_at(b, shoff + shstrndx * shentsize + 0x18);
    (0..shnum)
        .map(|i| shoff + i * shentsize)
        .find(|&h| {
            let at = strtab + u32_at(b, h);
            b[at..].starts_with(name.as_bytes()) && b[at + name.len()] == 0
        })
        .unwrap_or_else(|| panic!("no section {name}"))
}

/// The path and bytes of a file of the hardening corpus (`None`, after
/// the helper printed why, when the corpus cannot be built here).
fn hardening_file(name: &str) -> Option<(PathBuf, Vec<u8>)> {
    let path = common::hardening_corpus()?.join(name);
    let bytes = std::fs::read(&path).unwrap();
    Some((path, bytes))
}

/// The unchanged file passes; the changed one is unverifiable, says why in
/// `anomalies`, in the text report and in the SARIF log, and changes
/// nothing else about the binary's facts.
fn check(original: &Path, changed: &[u8], expect: &str) {
    let (code, json) = audit(original, "json");
    assert_eq!(code, 0, "{}: {json}", original.display());
    let v: Value = serde_json::from_str(&json).unwrap();
    assert!(v.get("anomalies").is_none(), "{json}");

    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("changed");
    std::fs::write(&p, changed).unwrap();
    let (code, json) = audit(&p, "json");
    assert_eq!(code, 3, "{json}");
    let w: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(w["verdict"], "unverifiable");
    let anomalies = w["anomalies"].as_array().unwrap();
    assert!(
        anomalies
            .iter()
            .any(|a| a.as_str().unwrap().contains(expect)),
        "{anomalies:?}"
    );
    assert_eq!(w["binary"]["functions"], v["binary"]["functions"]);
    let (code, text) = audit(&p, "text");
    assert_eq!(code, 3);
    assert!(
        text.contains("part of the binary could not be read, so the audit cannot pass"),
        "{text}"
    );
    let (code, sarif) = audit(&p, "sarif");
    assert_eq!(code, 3);
    let s: Value = serde_json::from_str(&sarif).unwrap();
    let inv = &s["runs"][0]["invocations"][0];
    assert_eq!(inv["executionSuccessful"], false);
    assert!(
        inv["toolExecutionNotifications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["message"]["text"].as_str().unwrap().contains(expect)),
        "{inv}"
    );
}

#[test]
fn a_section_name_outside_its_table_is_an_anomaly_not_an_empty_name() {
    let Some((ok, mut b)) = hardening_file("elf-ok") else {
        return;
    };
    // .comment's name now points far past the end of .shstrtab.
    let h = section_header(&b, ".comment");
    b[h..h + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    check(&ok, &b, "cannot be read");
}

#[test]
fn a_gnu_property_note_cut_short_is_an_anomaly() {
    let Some((ok, mut b)) = hardening_file("elf-ok") else {
        return;
    };
    // The section now ends 4 bytes into the note's descriptor.
    let h = section_header(&b, ".note.gnu.property");
    let size = u64_at(&b, h + 0x20);
    assert!(size >= 0x20, "{size}");
    b[h + 0x20..h + 0x28].copy_from_slice(&0x14u64.to_le_bytes());
    check(&ok, &b, "GNU property note");
}

#[test]
fn a_load_configuration_no_section_maps_is_an_anomaly_not_an_empty_one() {
    let Some((exe, mut b)) = hardening_file("pe-default.exe") else {
        return;
    };
    // Data directory 10 (load configuration) at an RVA beyond every
    // section.
    let optional = u32_at(&b, 0x3c) + 24;
    assert_eq!(u16_at(&b, optional), 0x20b, "not PE32+");
    assert!(u32_at(&b, optional + 108) > 10);
    let at = optional + 112 + 10 * 8;
    b[at..at + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    b[at + 4..at + 8].copy_from_slice(&0x100u32.to_le_bytes());
    check(&exe, &b, "load configuration directory");
}
