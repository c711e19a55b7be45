//! End-to-end tests of `talos digest` through the real binary: raw images,
//! saved digests, and real dumps of a live process taken by three different
//! dumpers (talos snapshot, gdb's gcore, the kernel).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

mod common;

const TALOS: &str = env!("CARGO_BIN_EXE_talos");
const BASE: u64 = 0x7f12_3400_0000;

fn talos(args: &[&str]) -> Output {
    Command::new(TALOS).args(args).output().expect("run talos")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(1),
        "talos failed: {}",
        stderr(o)
    );
    serde_json::from_slice(&o.stdout).expect("JSON output")
}

fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut v);
    v
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn digest_raw_image_is_deterministic_and_documented() {
    let dir = tempfile::tempdir().unwrap();
    let img = write(dir.path(), "a.img", &data(1, 3 * 1024 * 1024 + 100));
    let base = format!("{BASE:#x}");
    let args = [
        "digest",
        "--raw",
        s(&img),
        "--base",
        &base,
        "--format",
        "json",
    ];
    let (o1, o2) = (talos(&args), talos(&args));
    assert_eq!(code(&o1), 0, "{}", stderr(&o1));
    assert_eq!(o1.stdout, o2.stdout, "same input, same bytes out");
    let v = json(&o1);
    assert_eq!(v["schema"], "talos.digest/1");
    assert_eq!(v["selection"], "state");
    assert_eq!(v["pages"], 769);
    assert_eq!(v["bytes"], 3 * 1024 * 1024 + 100);
    assert_eq!(v["missing_bytes"], 0);
    let r = &v["regions"][0];
    assert_eq!(r["start"], format!("{BASE:#018x}"));
    assert_eq!(r["perms"], "rw-");
    assert_eq!(r["status"], "included");
    assert_eq!(r["page_hashes"].as_array().unwrap().len(), 769);
    assert_eq!(r["masked"], serde_json::json!([]));
    // The text form shows the same root.
    let t = talos(&["digest", "--raw", s(&img), "--base", &base]);
    assert_eq!(code(&t), 0);
    assert!(
        stdout(&t).contains(v["root"].as_str().unwrap()),
        "{}",
        stdout(&t)
    );
    // Another base address is another state.
    let other = json(&talos(&[
        "digest",
        "--raw",
        s(&img),
        "--base",
        "0x10000",
        "--format",
        "json",
    ]));
    assert_ne!(other["root"], v["root"]);
}

#[test]
fn digest_diff_names_exactly_the_changed_page() {
    let dir = tempfile::tempdir().unwrap();
    let a = data(2, 2 * 1024 * 1024);
    let mut b = a.clone();
    let pos = 1_234_567usize;
    b[pos] ^= 0x40;
    let (pa, pb) = (
        write(dir.path(), "a.img", &a),
        write(dir.path(), "b.img", &b),
    );
    let base = format!("{BASE:#x}");
    let same = talos(&["digest", "--diff", "--raw", "--base", &base, s(&pa), s(&pa)]);
    assert_eq!(code(&same), 0, "{}", stderr(&same));
    assert!(stdout(&same).contains("equal"));

    let o = talos(&[
        "digest",
        "--diff",
        "--raw",
        "--base",
        &base,
        s(&pa),
        s(&pb),
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 1, "different: exit 1");
    let v = json(&o);
    assert_eq!(v["schema"], "talos.digest-diff/1");
    assert_eq!(v["equal"], false);
    assert_eq!(v["pages_changed"], 1);
    let page = BASE + (pos as u64 / 4096) * 4096;
    assert_eq!(
        v["pages"],
        serde_json::json!([{
            "start": format!("{page:#018x}"),
            "end": format!("{:#018x}", page + 4096),
            "count": 1,
            "change": "modified"
        }])
    );
    assert_eq!(v["regions"][0]["reasons"], serde_json::json!(["pages"]));
    let t = talos(&["digest", "--diff", "--raw", "--base", &base, s(&pa), s(&pb)]);
    assert_eq!(code(&t), 1);
    assert!(
        stdout(&t).contains(&format!("page {page:#018x} modified")),
        "{}",
        stdout(&t)
    );
}

#[test]
fn digest_saved_file_compares_with_dump_and_rejects_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let img = write(dir.path(), "a.img", &data(3, 600 * 1024));
    let saved = dir.path().join("a.json");
    let o = talos(&[
        "digest",
        "--raw",
        s(&img),
        "--format",
        "json",
        "-o",
        s(&saved),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    // Saved digest against the dump, both ways round.
    let o = talos(&["digest", "--diff", "--raw", s(&saved), s(&img)]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let o = talos(&["digest", "--diff", "--raw", s(&img), s(&saved)]);
    assert_eq!(code(&o), 0);
    // A saved digest alone is checked and shown.
    let o = talos(&["digest", s(&saved)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // One leaf edited: the file is inconsistent, not "different".
    let mut v: Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    v["regions"][0]["page_hashes"][7] = Value::from("ab".repeat(32));
    let bad = write(dir.path(), "bad.json", v.to_string().as_bytes());
    let o = talos(&["digest", "--diff", "--raw", s(&bad), s(&img)]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("inconsistent"), "{}", stderr(&o));
    // Leaf and roots edited consistently is a different state: exit 1.
    // (Only possible by recomputing every root, i.e. by hashing other bytes.)
    let mut other = data(3, 600 * 1024);
    other[7 * 4096] ^= 1;
    let other = write(dir.path(), "other.img", &other);
    let o = talos(&["digest", "--diff", "--raw", s(&saved), s(&other)]);
    assert_eq!(code(&o), 1);
}

#[test]
fn digest_settings_and_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let img = write(dir.path(), "a.img", &data(4, 8192));
    let all = dir.path().join("all.json");
    let o = talos(&[
        "digest",
        "--raw",
        s(&img),
        "--all",
        "--format",
        "json",
        "-o",
        s(&all),
    ]);
    assert_eq!(code(&o), 0);
    let o = talos(&["digest", "--diff", "--raw", s(&all), s(&img)]);
    assert_eq!(code(&o), 2, "--all against default cannot compare");
    assert!(stderr(&o).contains("cannot be compared"), "{}", stderr(&o));
    let o = talos(&["digest", "--diff", "--raw", s(&img)]);
    assert_eq!(code(&o), 2);
    let o = talos(&["digest", s(&img)]);
    assert_eq!(code(&o), 2, "not a core without --raw");
    assert!(stderr(&o).contains("--raw"), "{}", stderr(&o));
    let o = talos(&["digest", s(&dir.path().join("missing"))]);
    assert_eq!(code(&o), 2);
    let o = talos(&["digest", "--raw", s(&img), "--base", "0x1001"]);
    assert_eq!(code(&o), 2, "a state region must start on a page");
    let o = talos(&["digest", "--raw", s(&img), "--no-mask", "nonsense"]);
    assert_eq!(code(&o), 2);
}

/// A child process that is stopped (SIGSTOP) and killed when dropped.
struct Stopped {
    child: Child,
}

impl Stopped {
    /// `sleep 1000` pinned to CPU 0 when `taskset` exists, with core dumps
    /// enabled, in `cwd`.
    fn spawn(cwd: &Path) -> Stopped {
        let pin = if common::which("taskset") {
            "taskset -c 0 "
        } else {
            ""
        };
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -c unlimited; exec {pin}sleep 1000"))
            .current_dir(cwd)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        // Let it reach its sleep, then stop it.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let s = Stopped { child };
        s.signal("STOP");
        std::thread::sleep(std::time::Duration::from_millis(50));
        s
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid()])
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// XOR one byte of process `pid`'s memory at `addr` with 0x5a.
fn flip_byte(pid: &str, addr: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut mem = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/{pid}/mem"))
        .unwrap();
    let mut b = [0u8; 1];
    mem.seek(SeekFrom::Start(addr)).unwrap();
    mem.read_exact(&mut b).unwrap();
    b[0] ^= 0x5a;
    mem.seek(SeekFrom::Start(addr)).unwrap();
    mem.write_all(&b).unwrap();
}

fn snapshot(pid: &str, out: &Path) {
    let o = talos(&["snapshot", "--pid", pid, "-o", s(out)]);
    assert_eq!(code(&o), 0, "talos snapshot: {}", stderr(&o));
}

/// One state, one digest: a process dumped twice without running
/// in between has equal digests, whichever tool took the dumps.
#[test]
fn digest_process_dumped_twice_is_equal_across_dumpers() {
    let dir = tempfile::tempdir().unwrap();
    let p = Stopped::spawn(dir.path());
    let (s1, s2) = (dir.path().join("s1.core"), dir.path().join("s2.core"));
    snapshot(&p.pid(), &s1);
    snapshot(&p.pid(), &s2);
    let o = talos(&["digest", "--diff", s(&s1), s(&s2)]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let d = json(&talos(&["digest", s(&s1), "--format", "json"]));
    assert!(d["pages"].as_u64().unwrap() > 10, "{d}");
    let statuses: Vec<&str> = d["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert!(statuses.contains(&"included") && statuses.contains(&"excluded"));
    // [vdso] and [vvar] are listed as masked, by rule.
    let masked: Vec<&str> = d["regions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "masked")
        .map(|r| r["masked"][0]["rule"].as_str().unwrap())
        .collect();
    assert!(masked.contains(&"vdso"), "{masked:?}");

    // One byte of the process's state changed (through /proc/PID/mem, the
    // process still stopped): exactly that page differs.
    let heap = d["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "included" && r["pages"].as_u64().unwrap() >= 2)
        .expect("a state region of two pages or more");
    let start =
        u64::from_str_radix(heap["start"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    let target = start + 4096 + 0x123;
    flip_byte(&p.pid(), target);
    let s3 = dir.path().join("s3.core");
    snapshot(&p.pid(), &s3);
    let o = talos(&["digest", "--diff", s(&s1), s(&s3), "--format", "json"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(
        v["pages"],
        serde_json::json!([{
            "start": format!("{:#018x}", start + 4096),
            "end": format!("{:#018x}", start + 8192),
            "count": 1,
            "change": "modified"
        }]),
        "{v}"
    );
    assert_eq!(v["regions"].as_array().unwrap().len(), 1);
    // Restore it, so the dumps below equal s1 again.
    flip_byte(&p.pid(), target);

    if common::need_tool("gcore", "the gdb-core part of the three-dumps test") {
        let g = dir.path().join("g");
        let st = Command::new("gcore")
            .args(["-o", s(&g), &p.pid()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "gcore failed");
        let gcore = dir.path().join(format!("g.{}", p.pid()));
        // gdb lays the core out differently (unaligned segments, other
        // regions left out) but the state is the same.
        let o = talos(&["digest", "--diff", s(&gcore), s(&s1)]);
        assert_eq!(code(&o), 0, "gdb core vs snapshot: {}", stdout(&o));
    }

    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    if pattern.trim() == "core" {
        // The kernel writes the third dump: SIGQUIT while stopped, then
        // SIGCONT; no user code runs in between.
        p.signal("QUIT");
        p.signal("CONT");
        let kcore = dir.path().join("core");
        for _ in 0..100 {
            if std::fs::metadata(&kcore).is_ok_and(|m| m.len() > 0) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let o = talos(&["digest", "--diff", s(&kcore), s(&s1)]);
        assert_eq!(
            code(&o),
            0,
            "kernel core vs snapshot: {}{}",
            stdout(&o),
            stderr(&o)
        );
    } else {
        common::skip_or_fail(&format!(
            "core_pattern is {pattern:?}, not \"core\": the kernel-core part needs it"
        ));
    }
}

/// glibc's `__rseq_offset` on this host, through python's ctypes.
fn rseq_offset() -> Option<String> {
    let o = Command::new("python3")
        .args([
            "-c",
            "import ctypes; print(hex(ctypes.c_long.in_dll(ctypes.CDLL(None), '__rseq_offset').value))",
        ])
        .output()
        .ok()?;
    let v = String::from_utf8(o.stdout).ok()?.trim().to_string();
    (o.status.success() && v.starts_with("0x") && v != "0x0").then_some(v)
}

/// The kernel rewrites the rseq area's cpu_id when the thread moves to
/// another CPU: without the mask that page differs, with it it does not.
#[test]
fn digest_rseq_mask_hides_a_cpu_migration() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if !common::need_tool("python3", "__rseq_offset through ctypes")
        || !common::need_tool("taskset", "moving the process to another CPU")
    {
        return;
    }
    if cpus < 2 {
        common::skip_or_fail("a CPU migration needs 2 CPUs");
        return;
    }
    let Some(off) = rseq_offset() else {
        common::skip_or_fail("glibc's __rseq_offset is 0 or unreadable (rseq not registered)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = Stopped::spawn(dir.path());
    let (a, b) = (dir.path().join("a.core"), dir.path().join("b.core"));
    snapshot(&p.pid(), &a);
    // Move it to CPU 1 and let the kernel return it to user space once.
    let st = Command::new("taskset")
        .args(["-pc", "1", &p.pid()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    p.signal("CONT");
    std::thread::sleep(std::time::Duration::from_millis(200));
    p.signal("STOP");
    std::thread::sleep(std::time::Duration::from_millis(50));
    snapshot(&p.pid(), &b);

    let masked = json(&talos(&[
        "digest",
        s(&a),
        "--rseq-offset",
        &off,
        "--format",
        "json",
    ]));
    let ranges: Vec<u64> = masked["regions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "included")
        .flat_map(|r| r["masked"].as_array().unwrap().clone())
        .map(|m| {
            assert_eq!(m["rule"], "rseq-cpu-id");
            u64::from_str_radix(m["start"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
        })
        .collect();
    assert_eq!(
        ranges.len(),
        2,
        "cpu_id_start..cpu_id and node_id..mm_cid: {ranges:?}"
    );
    let rseq_page = format!("{:#018x}", ranges[0] & !0xfff);
    let pages = |v: &Value| -> Vec<String> {
        v["pages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["start"].as_str().unwrap().to_string())
            .collect()
    };
    let plain = json(&talos(&[
        "digest",
        "--diff",
        s(&a),
        s(&b),
        "--no-mask",
        "rseq-cpu-id",
        "--format",
        "json",
    ]));
    assert!(
        pages(&plain).contains(&rseq_page),
        "the kernel rewrote cpu_id: page {rseq_page} differs without the mask: {plain}"
    );
    let with = json(&talos(&[
        "digest",
        "--diff",
        s(&a),
        s(&b),
        "--rseq-offset",
        &off,
        "--format",
        "json",
    ]));
    assert!(
        !pages(&with).contains(&rseq_page),
        "masked: page {rseq_page} no longer differs: {with}"
    );
    // Everything else that differed still does.
    let mut rest = pages(&plain);
    rest.retain(|p| *p != rseq_page);
    assert_eq!(pages(&with), rest);
    // Without being told, talos reads __rseq_offset from the dump and masks
    // exactly the same bytes.
    let auto = json(&talos(&[
        "digest",
        "--diff",
        s(&a),
        s(&b),
        "--format",
        "json",
    ]));
    assert_eq!(pages(&auto), pages(&with), "auto-detected rseq offset");
}

/// The specification's Appendix A (an independent Python implementation,
/// written from the text) reproduces the test vector that the Rust
/// implementation is pinned to (`digest_known_answer_vector`).
#[test]
fn digest_spec_reference_implementation_reproduces_the_vector() {
    if !common::need_tool("python3", "the specification's reference implementation") {
        return;
    }
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/digest-state.md");
    let text = std::fs::read_to_string(&doc).unwrap();
    let code = text
        .split("```python\n")
        .nth(1)
        .and_then(|t| t.split("```").next())
        .expect("Appendix A python block");
    let mut child = Command::new("python3")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), code.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let got: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().last().unwrap().to_string())
        .collect();
    let want = [
        "16ebfb490e12cbcf6efb768cc76919f3a8b4bc6e8f8a0964d5ff16142bfbb7f8",
        "a463379b803c8be2033fa84705fb6f06942ea4ee687fa7002d997aa83aa3f872",
        "bcbd14c71a71bb3b9e96be1eb8f60288d629739ad86f38f73d58f569cc1b1af4",
        "a5603eee4dca6f26feb35df1c509742b42c23792f12ac53b242e9b7ac72eb8d3",
        // The same state split into other mappings, after the normal form.
        "a5603eee4dca6f26feb35df1c509742b42c23792f12ac53b242e9b7ac72eb8d3",
    ];
    assert_eq!(got, want);
    for w in want {
        assert!(text.contains(w), "the spec's table lists {w}");
    }
}

/// `-o` to a pipe or a device writes into it: an atomic rename over it
/// would replace the node itself (run as root, `-o /dev/null` turned
/// `/dev/null` into a regular file). A FIFO of the test's own stands for
/// the device.
#[test]
fn digest_output_to_a_fifo_is_written_in_place() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let img = write(dir.path(), "a.img", &data(2, 64 * 1024));
    let fifo = dir.path().join("out");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo failed");
    // The read end, opened without waiting for a writer, so a talos that
    // renamed a file over the FIFO makes this test fail, not hang.
    let mut reader = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            // O_NONBLOCK (Linux's value on x86-64, AArch64 and RISC-V).
            .custom_flags(0o4000)
            .open(&fifo)
            .unwrap()
    };
    let base = format!("{BASE:#x}");
    let o = talos(&[
        "digest",
        "--raw",
        s(&img),
        "--base",
        &base,
        "--format",
        "json",
        "-o",
        s(&fifo),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut got).unwrap();
    let v: Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(v["schema"], "talos.digest/1");
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo(),
        "the FIFO was replaced"
    );
    // No temporary file was left next to it.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
}
