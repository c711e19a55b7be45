//! `talos cfg` end to end through the real binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/samples/demo-x86_64");

fn talos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_talos"))
        .args(args)
        .output()
        .expect("run talos")
}

fn talos_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_talos"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run talos")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Compare with a committed snapshot; `TALOS_UPDATE_SNAPSHOTS=1` rewrites it.
fn snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("TALOS_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}; run with TALOS_UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert_eq!(
        expected, actual,
        "snapshot {name} differs; rerun with TALOS_UPDATE_SNAPSHOTS=1 if intended"
    );
}

#[test]
fn help_is_stable() {
    let o = talos(&["cfg", "--help"]);
    assert!(o.status.success());
    snapshot("cfg-help.txt", &String::from_utf8(o.stdout).unwrap());
}

#[test]
fn text_summary_of_the_sample() {
    let o = talos(&["cfg", SAMPLE]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    for want in [
        "elf x86_64 PIE executable",
        "graph digest",
        "jump tables   1",
        "dispatch",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
}

#[test]
fn json_is_deterministic_across_runs_and_thread_counts() {
    let a = talos_env(
        &["cfg", SAMPLE, "--format", "json"],
        &[("RAYON_NUM_THREADS", "1")],
    );
    let b = talos_env(
        &["cfg", SAMPLE, "--format", "json"],
        &[("RAYON_NUM_THREADS", "2")],
    );
    let c = talos(&["cfg", SAMPLE, "--format", "json"]);
    assert!(a.status.success() && b.status.success() && c.status.success());
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(a.stdout, c.stdout);
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(v["schema"], "talos.cfg/1");
    assert_eq!(v["binary"]["arch"], "x86_64");
    let funcs = v["functions"].as_array().unwrap();
    let addrs: Vec<u64> = funcs.iter().map(|f| f["addr"].as_u64().unwrap()).collect();
    let mut sorted = addrs.clone();
    sorted.sort_unstable();
    assert_eq!(addrs, sorted);
    let dispatch = funcs.iter().find(|f| f["name"] == "dispatch").unwrap();
    let kinds: Vec<&str> = dispatch["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["succs"].as_array().unwrap())
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"jump_table") && kinds.contains(&"cond_taken") && kinds.contains(&"call")
    );
}

#[test]
fn one_function_in_json_dot_and_text() {
    let o = talos(&["cfg", SAMPLE, "--function", "dispatch", "--format", "json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["functions"].as_array().unwrap().len(), 1);
    let addr = v["functions"][0]["addr"].as_u64().unwrap();
    let by_addr = talos(&["cfg", SAMPLE, "--function", &format!("{addr:#x}")]);
    assert!(String::from_utf8_lossy(&by_addr.stdout).starts_with("dispatch @"));

    let dot = talos(&["cfg", SAMPLE, "--function", "dispatch", "--format", "dot"]);
    let text = String::from_utf8(dot.stdout).unwrap();
    assert!(text.starts_with("digraph cfg {") && text.contains("jump_table"));
    if common::need_tool("dot", "graphviz checks the DOT output") {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("g.dot");
        std::fs::write(&p, &text).unwrap();
        let r = Command::new("dot").arg("-Tsvg").arg(&p).output().unwrap();
        assert!(
            r.status.success(),
            "graphviz rejected the DOT: {}",
            stderr(&r)
        );
    }

    let missing = talos(&["cfg", SAMPLE, "--function", "no_such_function"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("no_such_function"));
}

#[test]
fn output_file_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("g.json");
    let o = talos(&[
        "cfg",
        SAMPLE,
        "--format",
        "json",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(o.stdout.is_empty());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["schema"], "talos.cfg/1");
}

fn expect_unreadable(path: &Path, what: &str) {
    let o = talos(&["cfg", path.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{what}: {err}");
    assert!(
        err.contains(path.to_str().unwrap()),
        "{what}: error does not name the file: {err}"
    );
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: expected one line: {err}");
}

#[test]
fn malformed_inputs_exit_2_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = std::fs::read(SAMPLE).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("garbage", b"this is not a binary at all".to_vec()),
        ("elf magic only", b"\x7fELF".to_vec()),
        ("truncated header", sample[..40].to_vec()),
        ("truncated program headers", sample[..100].to_vec()),
        ("truncated segments", sample[..4096].to_vec()),
        ("big-endian", {
            let mut b = sample.clone();
            b[5] = 2;
            b
        }),
        ("wrong class", {
            let mut b = sample.clone();
            b[4] = 7;
            b
        }),
        ("absurd phnum", {
            let mut b = sample.clone();
            b[56] = 0xff;
            b[57] = 0xff;
            b
        }),
        ("absurd phoff", {
            let mut b = sample.clone();
            b[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
            b
        }),
        ("absurd shoff", {
            let mut b = sample.clone();
            b[40..48].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
            b
        }),
        ("unsupported machine", {
            let mut b = sample.clone();
            b[18] = 0x08; // EM_MIPS
            b[19] = 0;
            b
        }),
        ("core dump", {
            let mut b = sample.clone();
            b[16] = 4; // ET_CORE
            b
        }),
    ];
    for (what, bytes) in cases {
        let p = tmp.path().join(what.replace(' ', "-"));
        std::fs::write(&p, bytes).unwrap();
        expect_unreadable(&p, what);
    }
    expect_unreadable(&tmp.path().join("does-not-exist"), "missing file");
    expect_unreadable(tmp.path(), "directory");
}

#[test]
fn unsupported_architecture_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let mut b = std::fs::read(SAMPLE).unwrap();
    b[18] = 40; // EM_ARM
    b[4] = 1; // 32-bit class
    let p = tmp.path().join("arm");
    std::fs::write(&p, &b).unwrap();
    let o = talos(&["cfg", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("unsupported architecture")
            || err.contains("truncated")
            || err.contains("malformed"),
        "{err}"
    );
}

/// A bare ELF header: `class` 1 or 2, `data` 1 (little) or 2 (big-endian).
fn elf_header(class: u8, data: u8, machine: u16) -> Vec<u8> {
    let u16b = |v: u16| {
        if data == 1 {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    };
    let mut b = vec![0x7f, b'E', b'L', b'F', class, data, 1, 0];
    b.resize(16, 0);
    b.extend_from_slice(&u16b(2)); // ET_EXEC
    b.extend_from_slice(&u16b(machine));
    let (addr, rest) = if class == 1 { (4, 52) } else { (8, 64) };
    // e_version, e_entry, e_phoff, e_shoff, e_flags: zero is fine here.
    b.resize(20 + 4 + 3 * addr + 4, 0);
    b.extend_from_slice(&u16b(rest)); // e_ehsize
    b.extend_from_slice(&u16b(if class == 1 { 32 } else { 56 }));
    b.extend_from_slice(&u16b(0));
    b.extend_from_slice(&u16b(if class == 1 { 40 } else { 64 }));
    b.extend_from_slice(&u16b(0));
    b.extend_from_slice(&u16b(0));
    b
}

/// A bare PE header (DOS stub, COFF header, optional-header magic).
fn pe_header(machine: u16, magic: u16) -> Vec<u8> {
    let mut b = vec![0u8; 0x200];
    b[0..2].copy_from_slice(b"MZ");
    b[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    b[0x40..0x44].copy_from_slice(b"PE\0\0");
    b[0x44..0x46].copy_from_slice(&machine.to_le_bytes());
    let opt_size: u16 = if magic == 0x20b { 240 } else { 224 };
    b[0x54..0x56].copy_from_slice(&opt_size.to_le_bytes());
    b[0x56..0x58].copy_from_slice(&0x22u16.to_le_bytes());
    b[0x58..0x5a].copy_from_slice(&magic.to_le_bytes());
    b
}

/// Unknown machines, big-endian and 32-bit variants of supported ones:
/// exit 2 with "unsupported architecture X", never a graph.
#[test]
fn unsupported_variants_exit_2_naming_the_architecture() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("riscv32", elf_header(1, 1, 243), "riscv32"),
        ("x32", elf_header(1, 1, 62), "x32"),
        ("arm", elf_header(1, 1, 40), "arm (EM_ARM, 32-bit)"),
        (
            "riscv64-be",
            elf_header(2, 2, 243),
            "riscv (EM_RISCV) (big-endian)",
        ),
        (
            "aarch64-be",
            elf_header(2, 2, 183),
            "aarch64 (EM_AARCH64) (big-endian)",
        ),
        (
            "x86_64-be",
            elf_header(2, 2, 62),
            "x86_64 (EM_X86_64) (big-endian)",
        ),
        ("mips64", elf_header(2, 1, 8), "mips (EM_MIPS)"),
        ("ppc64", elf_header(2, 1, 21), "powerpc64"),
        ("unknown-elf", elf_header(2, 1, 0x1234), "e_machine 4660"),
        ("pe32-i386", pe_header(0x14c, 0x10b), "x86 (PE32"),
        ("pe-arm64", pe_header(0xaa64, 0x20b), "aarch64"),
        ("pe-arm64ec", pe_header(0xa641, 0x20b), "PE machine 0xa641"),
        ("unknown-pe", pe_header(0x1234, 0x20b), "PE machine 0x1234"),
    ];
    for (what, bytes, arch) in cases {
        let p = tmp.path().join(what);
        std::fs::write(&p, bytes).unwrap();
        let o = talos(&["cfg", p.to_str().unwrap(), "--format", "json"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(o.stdout.is_empty(), "{what}: printed a graph");
        assert!(
            err.contains(&format!("unsupported architecture {arch}")),
            "{what}: {err}"
        );
    }
}

#[test]
fn every_truncation_of_the_sample_ends_in_a_verdict_or_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = std::fs::read(SAMPLE).unwrap();
    // Every 97th cut through the headers and code: never a panic.
    for cut in (0..sample.len()).step_by(97) {
        let p = tmp.path().join(format!("cut{cut}"));
        std::fs::write(&p, &sample[..cut]).unwrap();
        let o = talos(&["cfg", p.to_str().unwrap(), "--format", "json"]);
        let err = stderr(&o);
        assert!(
            matches!(o.status.code(), Some(0 | 2)),
            "cut {cut}: {:?} {err}",
            o.status
        );
        assert!(!err.contains("panicked"), "cut {cut}: {err}");
    }
}

/// A graph cut short at a limit is never a clean answer: one flipped bit in
/// a stripped pcre2 shifts its read-only data, so the gap sweep meets
/// half a megabyte of code it cannot place and stops at its work budget.
/// `talos cfg` exits 3 naming the limit, `talos audit` is unverifiable, and
/// `talos reference` signs nothing.
#[test]
fn capped_graph_is_unverifiable_everywhere() {
    let Some(out) = common::corpus() else { return };
    let src = out.join("x86_64/pcre2-O2.stripped");
    let mut b = std::fs::read(&src).unwrap();
    b[304] ^= 1 << 5;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("pcre2-shifted");
    std::fs::write(&bin, &b).unwrap();
    let bin_s = bin.to_str().unwrap();

    let o = talos(&["cfg", bin_s, "--format", "json", "-o", "/dev/null"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("gap_work"), "{}", stderr(&o));

    let o = talos(&["audit", bin_s, "--format", "json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().contains("gap_work")),
        "{v:#}"
    );

    let key = dir.path().join("owner.key");
    let o = talos(&["keygen", "-o", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = dir.path().join("ref");
    let o = talos(&[
        "reference",
        bin_s,
        "--app",
        "pcre2",
        "--version",
        "1",
        "--key",
        key.to_str().unwrap(),
        "-o",
        reference.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("incomplete-graph"));
    assert!(!reference.exists(), "nothing is signed");
}
