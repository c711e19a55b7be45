//! End-to-end tests of `talos introspect` and `talos snapshot` on real dumps:
//! gdb and kernel cores of statekeeper (clean, default filter, planted
//! changes), python3 and sqlite3 cores, live processes and snapshots.
//!
//! The dumps come from `corpus/dumps/make-dumps.sh`, which records where it
//! planted each change (computed with nm/objdump/readelf and /proc, not with
//! talos) in `manifest.env`. Without gdb the tests print SKIPPED and pass,
//! except under CI (`TALOS_REQUIRE_CORPUS=1`), where a missing
//! tool is a failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

mod common;

fn talos(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_talos"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `talos introspect ARGS --format json`: exit code and document.
fn introspect(args: &[&str]) -> (i32, Value) {
    let mut a = vec!["introspect"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--format", "json"]);
    let (code, out, err) = talos(&a);
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("not JSON ({e}); exit {code}; stderr: {err}; stdout: {out}"));
    assert_eq!(v["schema"], "talos.introspect/1");
    (code, v)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn module<'a>(v: &'a Value, path_ends: &str) -> &'a Value {
    v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"].as_str().unwrap().ends_with(path_ends))
        .unwrap_or_else(|| panic!("no module {path_ends} in {}", v["modules"]))
}

fn verdicts(v: &Value) -> BTreeMap<String, String> {
    v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["path"].as_str().unwrap().to_string(),
                m["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn findings(v: &Value) -> &Vec<Value> {
    v["findings"].as_array().unwrap()
}

/// Every file module clean, the vDSO clean (equal to this host's), the
/// vsyscall page kernel, nothing left unchecked, no finding, exit 0.
fn assert_clean(code: i32, v: &Value, file_modules: usize) {
    assert_eq!(v["verdict"], "clean", "{}", v["summary"]);
    assert_eq!(code, 0);
    assert!(findings(v).is_empty(), "{:?}", findings(v));
    assert!(
        v["unchecked"].as_array().unwrap().is_empty(),
        "{}",
        v["unchecked"]
    );
    for t in v["threads"].as_array().unwrap() {
        assert_eq!(t["flow"], "ok", "{t}");
    }
    let mut files = 0;
    for (path, verdict) in verdicts(v) {
        if path == "[vsyscall]" {
            assert_eq!(verdict, "kernel", "{path}");
        } else if path == "[vdso]" {
            assert_eq!(verdict, "clean", "{path}");
        } else {
            assert_eq!(verdict, "clean", "{path}");
            files += 1;
        }
    }
    assert_eq!(files, file_modules, "{:?}", verdicts(v));
    for m in v["modules"].as_array().unwrap() {
        if m["verdict"] == "clean" {
            assert_eq!(m["compared_bytes"], m["code_bytes"]);
            assert_eq!(m["differing_bytes"], 0);
            assert!(m["code_bytes"].as_u64().unwrap() > 0);
        }
    }
}

fn assert_threads_sound(v: &Value, n: usize) {
    let threads = v["threads"].as_array().unwrap();
    assert_eq!(threads.len(), n);
    for t in threads {
        // The pc lies in a basic block of its function's recovered CFG.
        assert_eq!(t["pc_check"], "in-block", "{t}");
        assert!(
            t["unwind_stop"].as_str().unwrap().starts_with("outermost"),
            "{}",
            t["unwind_stop"]
        );
        for f in t["frames"].as_array().unwrap().iter().skip(1) {
            assert_eq!(f["method"], "cfi");
            assert_eq!(f["follows_call"], true, "{f}");
            // Proved by the CFG's return sites (or, where the function's
            // graph is incomplete, by decoding it).
            assert!(f["evidence"] == "cfg" || f["evidence"] == "decode", "{f}");
        }
    }
}

#[test]
fn gcore_with_0x7f_is_clean_and_unwinds_every_thread() {
    let c = corpus_or_skip!();
    let (code, v) = introspect(&[p(&c.core("sk.gcore-7f.core"))]);
    assert_clean(code, &v, 3);
    assert_eq!(v["input"]["source"], "gdb");
    let sk = module(&v, "/statekeeper");
    assert_eq!(sk["build_id"], c.get("SK_BUILD_ID"));
    assert_eq!(sk["file_build_id"], c.get("SK_BUILD_ID"));
    assert_eq!(sk["kind"], "executable");
    assert_eq!(sk["base"].as_u64().unwrap(), c.addr("MAIN_BASE"));
    assert_eq!(sk["load_bias"].as_u64().unwrap(), c.addr("MAIN_BASE"));
    assert_threads_sound(&v, 3);
    // The main thread is in read() under fgets() called from main().
    let main = &v["threads"][0];
    assert_eq!(main["tid"].as_u64().unwrap(), c.num("MAIN_PID"));
    assert_eq!(main["location"]["function"], "read");
    let fns: Vec<&str> = main["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["location"]["function"].as_str())
        .collect();
    assert!(fns.contains(&"fgets") && fns.contains(&"main"), "{fns:?}");
    for t in v["threads"].as_array().unwrap().iter().skip(1) {
        let fns: Vec<&str> = t["frames"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["location"]["function"].as_str())
            .collect();
        assert!(fns.contains(&"sk_worker"), "{fns:?}");
    }
}

#[test]
fn default_filter_cores_are_unverifiable_never_clean() {
    let c = corpus_or_skip!();
    let mut cores = vec!["sk.gcore-default.core"];
    if c.get("KERNEL_CORES") == "yes" {
        cores.push("sk.kernel-default.core");
    }
    for name in cores {
        let (code, v) = introspect(&[p(&c.core(name))]);
        assert_eq!(v["verdict"], "unverifiable", "{name}: {}", v["summary"]);
        assert_eq!(code, 3, "{name}");
        assert!(findings(&v).is_empty(), "{name}: {:?}", findings(&v));
        for m in ["/statekeeper", "/libc.so.6"] {
            let m = module(&v, m);
            assert_eq!(m["verdict"], "unverifiable", "{name}");
            assert_eq!(m["compared_bytes"], 0);
            assert!(
                m["reason"].as_str().unwrap().contains("coredump_filter"),
                "{}",
                m["reason"]
            );
            // The build-id is read from the ELF header page the filter keeps.
            assert!(m["build_id"].is_string());
        }
        // The vDSO is compared with this host's (the dumps are taken
        // here), not taken for anonymous executable memory.
        assert_eq!(module(&v, "[vdso]")["verdict"], "clean");
        let (code, text, _) = talos(&["introspect", p(&c.core(name))]);
        assert_eq!(code, 3);
        assert!(text.contains("verdict: UNVERIFIABLE"), "{text}");
    }
}

#[test]
fn kernel_cores_read_like_gdb_cores() {
    let c = corpus_or_skip!();
    if c.get("KERNEL_CORES") != "yes" {
        common::skip_or_fail(&format!("kernel cores: {}", c.get("KERNEL_CORES")));
        return;
    }
    let (code, v) = introspect(&[p(&c.core("sk.kernel-7f.core"))]);
    assert_clean(code, &v, 3);
    assert_eq!(v["input"]["source"], "kernel");
    assert_eq!(v["input"]["signal"], 6); // SIGABRT
    assert_threads_sound(&v, 3);
}

#[test]
fn int3_written_through_proc_mem_is_found() {
    let c = corpus_or_skip!();
    let (code, v) = introspect(&[p(&c.core("sk.int3.core"))]);
    assert_eq!(v["verdict"], "tampered");
    assert_eq!(code, 1);
    let sk = module(&v, "/statekeeper");
    assert_eq!(sk["verdict"], "tampered");
    assert_eq!(sk["differing_bytes"], 1);
    let d = &sk["diffs"].as_array().unwrap()[..];
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["addr"].as_u64().unwrap(), c.addr("INT3_ADDR"));
    assert_eq!(d[0]["len"], 1);
    assert_eq!(d[0]["function"], c.get("INT3_FUNC"));
    assert_eq!(d[0]["function_offset"], 0);
    assert_eq!(d[0]["actual"], "cc");
    assert_ne!(d[0]["expected"], "cc");
    assert_eq!(
        d[0]["module_offset"].as_u64().unwrap(),
        c.addr("INT3_ADDR") - c.addr("MAIN_BASE")
    );
    for m in ["/libc.so.6", "/ld-linux-x86-64.so.2"] {
        assert_eq!(module(&v, m)["verdict"], "clean");
    }
    let (code, text, _) = talos(&["introspect", p(&c.core("sk.int3.core"))]);
    assert_eq!(code, 1);
    assert!(text.contains("in sk_checksum+0x0: expected"), "{text}");
}

#[test]
fn byte_patched_in_the_core_file_is_found() {
    let c = corpus_or_skip!();
    let (code, v) = introspect(&[p(&c.core("sk.patched.core"))]);
    assert_eq!((code, v["verdict"].as_str().unwrap()), (1, "tampered"));
    let sk = module(&v, "/statekeeper");
    let d = sk["diffs"].as_array().unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["addr"].as_u64().unwrap(), c.addr("PATCH_ADDR"));
    assert_eq!(d[0]["function"], c.get("PATCH_FUNC"));
    assert_eq!(d[0]["function_offset"], 2);
    let e = u8::from_str_radix(d[0]["expected"].as_str().unwrap(), 16).unwrap();
    let a = u8::from_str_radix(d[0]["actual"].as_str().unwrap(), 16).unwrap();
    assert_eq!(e ^ 0xff, a);
}

#[test]
fn got_slot_pointing_at_the_heap_is_a_got_hook() {
    let c = corpus_or_skip!();
    let (code, v) = introspect(&[p(&c.core("sk.gothook.core"))]);
    assert_eq!((code, v["verdict"].as_str().unwrap()), (1, "findings"));
    let f = findings(&v);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["kind"], "got-hook");
    assert_eq!(f[0]["addr"].as_u64().unwrap(), c.addr("GOT_SLOT"));
    assert_eq!(f[0]["value"].as_u64().unwrap(), c.addr("GOT_VALUE"));
    assert_eq!(f[0]["symbol"], c.get("GOT_SYMBOL"));
    assert!(f[0]["module"].as_str().unwrap().ends_with("/statekeeper"));
    // The code itself is untouched.
    assert_eq!(module(&v, "/statekeeper")["verdict"], "clean");
    assert!(
        module(&v, "/statekeeper")["pointers_checked"]
            .as_u64()
            .unwrap()
            > 5
    );
}

#[test]
fn anonymous_rwx_memory_is_anon_exec_and_wx() {
    let c = corpus_or_skip!();
    let (code, v) = introspect(&[p(&c.core("sk.jit.core"))]);
    assert_eq!((code, v["verdict"].as_str().unwrap()), (1, "findings"));
    let kinds: Vec<(&str, u64)> = findings(&v)
        .iter()
        .map(|f| (f["kind"].as_str().unwrap(), f["addr"].as_u64().unwrap()))
        .collect();
    let jit = c.addr("JIT_ADDR");
    assert_eq!(kinds, vec![("anon-exec", jit), ("wx", jit)]);
    assert_eq!(findings(&v)[0]["perms"], "rwx");
}

#[test]
fn moved_pc_and_forged_return_address_are_flow_findings() {
    let c = corpus_or_skip!();
    let (code, v) = introspect(&[p(&c.core("sk.flow.core"))]);
    assert_eq!((code, v["verdict"].as_str().unwrap()), (1, "findings"));
    let flow: Vec<&Value> = findings(&v)
        .iter()
        .filter(|f| f["kind"] == "flow")
        .collect();
    assert_eq!(findings(&v).len(), flow.len());
    let pc = flow
        .iter()
        .find(|f| f["thread"].as_u64() == Some(c.num("FLOW_PC_TID")))
        .expect("a flow finding for the thread whose pc moved");
    assert_eq!(pc["addr"].as_u64().unwrap(), c.addr("FLOW_PC"));
    assert_eq!(pc["function"], c.get("FLOW_PC_FUNC"));
    assert!(
        pc["message"]
            .as_str()
            .unwrap()
            .contains("middle of the instruction")
    );
    let ra = flow
        .iter()
        .find(|f| f["thread"].as_u64() == Some(c.num("FLOW_RA_TID")))
        .expect("a flow finding for the thread whose return address was forged");
    assert_eq!(ra["addr"].as_u64().unwrap(), c.addr("FLOW_RA_SLOT"));
    assert_eq!(ra["value"].as_u64().unwrap(), c.addr("FLOW_RA_VALUE"));
    assert_eq!(ra["function"], c.get("FLOW_RA_FUNC"));
    assert!(
        ra["message"]
            .as_str()
            .unwrap()
            .contains("does not follow a call")
    );
    // Code is untouched: these are flow findings only.
    for (path, verdict) in verdicts(&v) {
        assert!(
            verdict == "clean" || verdict == "kernel",
            "{path}: {verdict}"
        );
    }
    // The thread with the forged return address is scanned past the bad
    // frame; scanned frames are shown but are never findings.
    let t = v["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tid"].as_u64() == Some(c.num("FLOW_RA_TID")))
        .unwrap();
    assert!(
        t["frames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["method"] == "scan")
    );
}

#[test]
fn real_programs_have_no_false_findings() {
    let c = corpus_or_skip!();
    let (code, v) = introspect(&[p(&c.core("python3.gcore-7f.core"))]);
    assert_clean(code, &v, v["modules"].as_array().unwrap().len() - 2);
    let py = module(&v, "/python3.11");
    assert_eq!(py["kind"], "executable");
    assert_eq!(py["load_bias"], 0); // Debian's python3.11 is not PIE
    assert!(py["code_bytes"].as_u64().unwrap() > 2_000_000);
    // Extension modules, whose GOTs import data objects, are loaded too.
    assert!(
        verdicts(&v).keys().any(|k| k.contains("_ctypes.cpython")),
        "{:?}",
        verdicts(&v)
    );
    assert_threads_sound(&v, usize::try_from(c.num("PYTHON_THREADS")).unwrap());

    let (code, v) = introspect(&[p(&c.core("sqlite3.gcore-7f.core"))]);
    assert_clean(code, &v, v["modules"].as_array().unwrap().len() - 2);
    assert!(
        verdicts(&v)
            .keys()
            .any(|k| k.ends_with("/libsqlite3.so.0.8.6"))
    );
    assert_threads_sound(&v, 1);
}

#[test]
fn twice_dumped_stopped_process_gives_the_same_report() {
    let c = corpus_or_skip!();
    let (c1, mut a) = introspect(&[p(&c.core("sk.twice-1.core"))]);
    let (c2, mut b) = introspect(&[p(&c.core("sk.twice-2.core"))]);
    assert_eq!((c1, c2), (0, 0));
    a["input"]["path"] = Value::Null;
    b["input"]["path"] = Value::Null;
    assert_eq!(a, b);
}

#[test]
fn sysroot_and_binary_choose_the_reference_file() {
    let c = corpus_or_skip!();
    let core = c.core("sk.gcore-7f.core");
    let tmp = tempfile::tempdir().unwrap();
    // An empty sysroot: nothing to compare with, unverifiable, not clean.
    let (code, v) = introspect(&[p(&core), "--sysroot", p(tmp.path())]);
    assert_eq!(code, 3);
    let sk = module(&v, "/statekeeper");
    assert_eq!(sk["verdict"], "unverifiable");
    assert!(sk["reason"].as_str().unwrap().contains("not found"));
    // A sysroot holding copies of the three files: clean again.
    let v0 = introspect(&[p(&core)]).1;
    for m in v0["modules"].as_array().unwrap() {
        let path = m["path"].as_str().unwrap();
        if path.starts_with('/') {
            let dst = tmp.path().join(path.trim_start_matches('/'));
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            std::fs::copy(path, &dst).unwrap();
        }
    }
    let (code, v) = introspect(&[p(&core), "--sysroot", p(tmp.path())]);
    assert_clean(code, &v, 3);
    assert!(
        module(&v, "/statekeeper")["file"]
            .as_str()
            .unwrap()
            .starts_with(p(tmp.path()))
    );
    // --binary with the same name but other contents: the build-id differs.
    let other = tmp.path().join("statekeeper");
    std::fs::copy("/bin/true", &other).unwrap();
    let (code, v) = introspect(&[p(&core), "--binary", p(&other)]);
    assert_eq!(
        (code, v["verdict"].as_str().unwrap()),
        (1, "binary-changed")
    );
    let sk = module(&v, "/statekeeper");
    assert_eq!(sk["verdict"], "binary-changed");
    assert!(sk["reason"].as_str().unwrap().contains("build-id"));
    // --binary matched by build-id, whatever its name.
    let renamed = tmp.path().join("renamed-copy");
    std::fs::copy(c.get("SK_BIN"), &renamed).unwrap();
    let (code, v) = introspect(&[p(&core), "--binary", p(&renamed), "--no-flow"]);
    // Without the flow check the threads are not checked: never clean.
    assert_eq!(code, 3, "{}", v["summary"]);
    assert_eq!(module(&v, "/statekeeper")["verdict"], "clean");
    assert_eq!(module(&v, "/statekeeper")["file"], p(&renamed));
    let (code, v) = introspect(&[p(&core), "--binary", p(&renamed)]);
    assert_eq!(code, 0, "{}", v["summary"]);
}

#[test]
fn unreadable_and_malformed_inputs() {
    let c = corpus_or_skip!();
    let (code, _, err) = talos(&["introspect", "/nonexistent/core"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/core"), "{err}");
    let (code, _, err) = talos(&["introspect", c.get("SK_BIN")]);
    assert_eq!(code, 2);
    assert!(err.contains("not a core dump"), "{err}");
    // A core cut short: read what is there, say what is missing.
    let tmp = tempfile::tempdir().unwrap();
    let cut = tmp.path().join("cut.core");
    let bytes = std::fs::read(c.core("sk.kernel-7f.core"))
        .unwrap_or_else(|_| std::fs::read(c.core("sk.gcore-7f.core")).unwrap());
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let (code, v) = introspect(&[p(&cut)]);
    assert_ne!(code, 0);
    assert_ne!(code, 2);
    assert!(
        v["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["code"] == "truncated-segment" || a["code"] == "truncated-notes"),
        "{}",
        v["anomalies"]
    );
    // Raw image without --base is a usage error.
    let (code, _, _) = talos(&["introspect", "--raw", p(&cut)]);
    assert_eq!(code, 2);
}

/// A statekeeper child with a pipe on its stdin; killed on drop.
struct Live {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
    heap: u64,
}

impl Live {
    fn start(bin: &str) -> Live {
        let mut child = Command::new(bin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.starts_with("ready"), "{line}");
        settle(child.id());
        let heap = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("heap=0x"))
            .map(|h| u64::from_str_radix(h, 16).unwrap())
            .unwrap();
        Live {
            child,
            stdout,
            heap,
        }
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
    /// Ask the process to advance its state: proves it is running.
    fn step(&mut self) -> String {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"step\n").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line
    }
    fn base(&self, bin: &str) -> u64 {
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", self.pid())).unwrap();
        let l = maps
            .lines()
            .find(|l| l.ends_with(bin) && l.split_whitespace().nth(2) == Some("00000000"))
            .unwrap();
        u64::from_str_radix(l.split('-').next().unwrap(), 16).unwrap()
    }
}

/// Wait until every thread of `pid` is blocked in read() (syscall 0), so
/// that reports show each thread at a known point.
fn settle(pid: u32) {
    for _ in 0..500 {
        let dir = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
        let all_in_read = dir.filter_map(Result::ok).all(|e| {
            std::fs::read_to_string(e.path().join("syscall"))
                .is_ok_and(|s| s.split_whitespace().next() == Some("0"))
        });
        if all_in_read {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("threads of {pid} did not settle in read()");
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nm(bin: &str, sym: &str) -> u64 {
    let out = Command::new("nm").arg(bin).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let l = text
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some(sym))
        .unwrap();
    u64::from_str_radix(l.split_whitespace().next().unwrap(), 16).unwrap()
}

#[test]
fn live_process_is_read_then_resumed_and_int3_found() {
    let c = corpus_or_skip!();
    let bin = c.get("SK_BIN");
    let mut live = Live::start(bin);
    let pid = live.pid().to_string();
    let (code, v) = introspect(&["--pid", &pid]);
    assert_clean(code, &v, 3);
    assert_eq!(v["input"]["source"], "live");
    assert_threads_sound(&v, 3);
    assert!(
        v["notes"][0]
            .as_str()
            .unwrap()
            .contains("stopped with ptrace")
    );
    // It runs on.
    assert!(live.step().starts_with("state="));
    settle(live.pid());
    // An int3 written into its code through /proc/PID/mem.
    let addr = live.base(bin) + nm(bin, "sk_step") + 1;
    let mem = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/{pid}/mem"))
        .unwrap();
    mem.write_at(&[0xcc], addr).unwrap();
    let (code, v) = introspect(&["--pid", &pid]);
    assert_eq!((code, v["verdict"].as_str().unwrap()), (1, "tampered"));
    let d = &module(&v, "/statekeeper")["diffs"][0];
    assert_eq!(d["addr"].as_u64().unwrap(), addr);
    assert_eq!(d["function"], "sk_step");
    assert_eq!(d["function_offset"], 1);
    assert_eq!(d["actual"], "cc");
}

#[test]
fn snapshot_is_read_by_gdb_and_by_talos() {
    let c = corpus_or_skip!();
    let bin = c.get("SK_BIN");
    let mut live = Live::start(bin);
    let pid = live.pid().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let core = tmp.path().join("snap.core");
    let (code, _, err) = talos(&["snapshot", "--pid", &pid, "-o", p(&core)]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("stopped with ptrace"), "{err}");
    assert!(live.step().starts_with("state="));
    let (code, v) = introspect(&[p(&core)]);
    assert_clean(code, &v, 3);
    assert_eq!(v["input"]["source"], "snapshot");
    assert_eq!(
        v["input"]["process"]["pid"].as_u64().unwrap(),
        u64::from(live.pid())
    );
    assert_threads_sound(&v, 3);
    // The heap's known contents are in the snapshot: first xorshift word.
    let mut x: u64 = 0x243f_6a88_85a3_08d3;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let dump = std::fs::read(&core).unwrap();
    assert!(dump.windows(8).any(|w| w == x.to_le_bytes()));
    let _ = live.heap;
    // gdb reads it: registers and threads.
    let out = Command::new("gdb")
        .args([
            "-batch",
            "-nx",
            "-ex",
            "info registers rip",
            "-ex",
            "info threads",
            bin,
            p(&core),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("rip"), "{text}");
    for t in v["threads"].as_array().unwrap() {
        assert!(text.contains(&format!("(LWP {})", t["tid"])), "{text}");
    }
    assert!(text.contains("read"), "{text}");
}

#[test]
fn raw_image_verifies_against_its_binary() {
    let c = corpus_or_skip!();
    let bin = c.get("SK_BIN");
    let live = Live::start(bin);
    let base = live.base(bin);
    // statekeeper's five mappings are contiguous: 0x5000 bytes.
    let mem = std::fs::File::open(format!("/proc/{}/mem", live.pid())).unwrap();
    let mut img = vec![0u8; 0x5000];
    mem.read_exact_at(&mut img, base).unwrap();
    drop(live);
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("sk.raw");
    std::fs::write(&raw, &img).unwrap();
    let b = format!("{base:#x}");
    let (code, v) = introspect(&["--raw", p(&raw), "--base", &b, "--binary", bin]);
    assert_clean(code, &v, 1);
    assert_eq!(v["input"]["source"], "raw");
    // Without the binary nothing can be compared.
    let (code, v) = introspect(&["--raw", p(&raw), "--base", &b]);
    assert_eq!((code, v["verdict"].as_str().unwrap()), (3, "unverifiable"));
    // One byte changed in its code.
    let off = usize::try_from(nm(bin, "op_mul")).unwrap();
    img[off] ^= 0x01;
    std::fs::write(&raw, &img).unwrap();
    let (code, v) = introspect(&["--raw", p(&raw), "--base", &b, "--binary", bin]);
    assert_eq!((code, v["verdict"].as_str().unwrap()), (1, "tampered"));
    let d = &module(&v, "/statekeeper")["diffs"][0];
    assert_eq!(d["addr"].as_u64().unwrap(), base + off as u64);
    assert_eq!(d["function"], "op_mul");
}

#[test]
fn flow_cfg_mode_checks_against_the_recovered_cfg() {
    let c = corpus_or_skip!();
    let (code, v) = introspect(&[p(&c.core("sk.gcore-7f.core")), "--flow-cfg"]);
    assert_eq!(code, 0, "{}", v["summary"]);
    for t in v["threads"].as_array().unwrap() {
        assert_eq!(t["pc_check"], "in-block", "{t}");
        for f in t["frames"].as_array().unwrap().iter().skip(1) {
            assert_eq!(f["evidence"], "cfg", "{f}");
            assert_eq!(f["follows_call"], true, "{f}");
        }
    }
    // The flow dump's planted changes are found the same way.
    let (code, v) = introspect(&[p(&c.core("sk.flow.core")), "--flow-cfg"]);
    assert_eq!(code, 1);
    let addrs: Vec<u64> = findings(&v)
        .iter()
        .map(|f| f["addr"].as_u64().unwrap())
        .collect();
    assert!(addrs.contains(&c.addr("FLOW_PC")), "{addrs:x?}");
    assert!(addrs.contains(&c.addr("FLOW_RA_SLOT")), "{addrs:x?}");
}

#[test]
fn deleted_binary_is_binary_changed_until_given_back() {
    let c = corpus_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("statekeeper-copy");
    std::fs::copy(c.get("SK_BIN"), &bin).unwrap();
    let live = Live::start(p(&bin));
    let keep = tmp.path().join("kept");
    std::fs::copy(&bin, &keep).unwrap();
    std::fs::remove_file(&bin).unwrap();
    let pid = live.pid().to_string();
    let (code, v) = introspect(&["--pid", &pid, "--no-flow"]);
    assert_eq!(
        (code, v["verdict"].as_str().unwrap()),
        (1, "binary-changed")
    );
    let m = module(&v, "statekeeper-copy (deleted)");
    assert_eq!(m["verdict"], "binary-changed");
    assert!(m["reason"].as_str().unwrap().contains("deleted"));
    let (code, v) = introspect(&["--pid", &pid, "--binary", p(&keep)]);
    assert_clean(code, &v, 3);
    drop(live);
    let (code, _, err) = talos(&["introspect", "--pid", &pid]);
    assert_eq!(code, 2, "{err}");
}

/// The code measurement taken from memory equals the one of the binary,
/// and glibc's rseq area is found for every thread (the library functions
/// the migration gate uses, on the real gcore); an int3 changes the
/// measurement, and a default-filter gcore cannot give one.
#[test]
fn memory_measurement_equals_the_binary_and_rseq_is_found() {
    use talos_introspect::measure::{
        CodeEvidence, Rseq, code_measurement, detect_rseq, rseq_areas,
    };
    let c = corpus_or_skip!();
    let read = |name: &str| std::fs::read(c.core(name)).unwrap();
    let core = read("sk.gcore-7f.core");
    let dump = talos_introspect::core::parse(&core).unwrap();
    let bin = std::fs::read(c.sk_bin()).unwrap();
    let want = talos_cfg::measure::code_measurement(&talos_cfg::load(&bin).unwrap()).unwrap();
    match code_measurement(&dump) {
        CodeEvidence::Measured(m) => {
            assert_eq!(m.digest, want);
            assert!(m.module.path.ends_with("/statekeeper"));
        }
        other => panic!("{other:?}"),
    }
    match detect_rseq(&dump) {
        Rseq::Registered {
            offset,
            size,
            module,
        } => {
            assert!(offset != 0 && size >= 20, "{offset} {size}");
            assert!(module.contains("ld-linux"), "{module}");
            let (areas, missing) = rseq_areas(&dump, offset);
            assert_eq!((areas.len(), missing), (dump.threads.len(), 0));
        }
        other => panic!("{other:?}"),
    }
    let int3 = read("sk.int3.core");
    match code_measurement(&talos_introspect::core::parse(&int3).unwrap()) {
        CodeEvidence::Measured(m) => assert_ne!(m.digest, want),
        other => panic!("{other:?}"),
    }
    let def = read("sk.gcore-default.core");
    assert!(matches!(
        code_measurement(&talos_introspect::core::parse(&def).unwrap()),
        CodeEvidence::Unverifiable(_)
    ));
}
