//! Live migration with real CRIU, end to end through `talos`: the
//! state-keeping sample (`statekeeper --tick`: a counter plus a heap buffer
//! whose hash it prints every tick) moves from host S to host T, through
//! the command line's files and with `live`/`serve` over loopback TCP; it
//! keeps counting from where it was frozen with the same heap hash, and
//! the source is gone. An abort before the release resumes the source and
//! the target never runs it. Attacks are refused with their exact reason
//! and leave nothing running: a flipped byte in `pages-N.img`
//! (`state-mismatch`), a moved pagemap entry (`state-mismatch`), a changed
//! stored code page (`code-mismatch`), the target's binary replaced between
//! verify and launch (`launch-mismatch`, the restored tree killed), the
//! image directory replayed after launch (`already-accepted`), a truncated
//! image stream (`malformed`).
//!
//! Needs CRIU >= 4.1 and root; skipped with the reason otherwise, a failure
//! under `TALOS_REQUIRE_CORPUS`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
mod migrate_common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::criu::{Sample, copy_dir, dump, start_time};
use migrate_common::*;
use talos_migrate::wire::{self, FrameKind};

/// The world of S and T with a private copy of statekeeper (its path is
/// what the images name, and the attacks change it).
fn world(c: &Corpus) -> (World, PathBuf) {
    let w = World::sk(c, &["s", "t"]);
    let bin = w.p("statekeeper");
    std::fs::copy(c.sk_bin(), &bin).unwrap();
    (w, bin)
}

/// Ticks must go on from where they were: strictly consecutive, one heap
/// hash, and more than `before` of them.
#[track_caller]
fn assert_counting_on(s: &Sample, before: usize) {
    s.wait_ticks(before + 3);
    let t = s.ticks();
    for pair in t.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "ticks jump or repeat: {t:?}");
    }
    assert!(
        t.iter().all(|x| x.2 == t[0].2),
        "the heap hash changed: {t:?}"
    );
}

/// A running `serve --once --restore-into`.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(w: &World, host: &str, binary: &Path) -> Server {
        let mut child = Command::new(talos_bin())
            .args(["migrate", "serve", "--state-dir", &w.dir(host)])
            .args(["--listen", "127.0.0.1:0", "--once", "--format", "json"])
            .arg("--binary")
            .arg(binary)
            .arg("--restore-into")
            .arg(w.p(&format!("{host}-images")))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("talos: listening on ")
            .unwrap_or_else(|| panic!("serve said {line:?}"))
            .to_string();
        Server { child, addr }
    }

    fn finish(self) -> (i32, serde_json::Value) {
        let out = self.child.wait_with_output().unwrap();
        parse(&out)
    }
}

fn live(w: &World, s: &Sample, addr: &str) -> (i32, serde_json::Value) {
    w.run(
        "s",
        &[
            "live",
            "--pid",
            &s.pid.to_string(),
            "--app",
            APP,
            "--reference",
            &w.s("ref"),
            "--to",
            addr,
        ],
    )
}

#[test]
fn criu_live_migration_over_tcp_keeps_counting_and_the_source_is_gone() {
    let _criu = criu_or_skip!();
    let c = corpus_or_skip!();
    let (w, bin) = world(c);
    let s = Sample::start(&bin, w.tmp.path(), 50, 8);
    let born = start_time(s.pid);
    let before = s.ticks().len();
    let server = Server::start(&w, "t", &bin);
    let (code, v) = live(&w, &s, &server.addr);
    let (scode, sv) = server.finish();
    assert_eq!(
        (code, v["verdict"].as_str()),
        (0, Some("accepted")),
        "{v:#}\ntarget: {sv:#}"
    );
    assert_eq!(
        (scode, sv["verdict"].as_str()),
        (0, Some("accepted")),
        "{sv:#}"
    );
    // T restored it under its own pid, checked, and it runs.
    assert_eq!(sv["pids"], serde_json::json!([s.pid]), "{sv:#}");
    assert_ne!(
        start_time(s.pid),
        born,
        "the source must be gone: another process holds the pid"
    );
    assert!(s.alive());
    assert_counting_on(&s, before);
    assert_eq!(w.app_status("s"), "migrated-away");
    assert_eq!(w.app_status("t"), "launched");

    // Migrating again from S is refused before anything is frozen: the
    // app migrated away from there.
    let (code, v) = live(&w, &s, "127.0.0.1:9");
    assert_rejected(code, &v, "migrated-away");
    assert!(
        matches!(common::criu::state(s.pid), Some('S' | 'R')),
        "the running app is untouched"
    );
}

/// File mode: dump, seal, verify and launch --restore by hand.
struct Files {
    // Fields drop in this order: the sample is killed while its binary
    // still exists, before the world's directory goes.
    s: Sample,
    w: World,
    bin: PathBuf,
    images: PathBuf,
    received: PathBuf,
}

fn files_to_receipt(c: &Corpus, heap_mib: u32) -> Files {
    let (w, bin) = world(c);
    let s = Sample::start(&bin, w.tmp.path(), 50, heap_mib);
    let images = w.p("images-s");
    dump(s.pid, &images);
    w.challenge("t", "chal");
    let received = w.p("images-t");
    copy_dir(&images, &received);
    Files {
        w,
        bin,
        s,
        images,
        received,
    }
}

fn seal(f: &Files) -> (i32, serde_json::Value) {
    f.w.seal("s", "chal", &f.images, "bundle")
}

fn verify(f: &Files) -> (i32, serde_json::Value) {
    f.w.verify("t", "bundle", &f.bin, &f.received, "receipt")
}

fn launch_restore(f: &Files) -> (i32, serde_json::Value) {
    f.w.run(
        "t",
        &[
            "launch",
            "--release",
            &f.w.s("release"),
            "--restore",
            f.received.to_str().unwrap(),
        ],
    )
}

#[test]
fn criu_migration_through_the_cli_files_then_replays_are_refused() {
    let _criu = criu_or_skip!();
    let c = corpus_or_skip!();
    let f = files_to_receipt(c, 4);
    let before = f.s.ticks().len();
    let (code, v) = seal(&f);
    assert_eq!(code, 0, "{v:#}");
    let (code, v) = verify(&f);
    assert_eq!(code, 0, "{v:#}");
    let (code, v) = f.w.commit("s", "receipt", "release");
    assert_eq!(code, 0, "{v:#}");
    // The source gives the app up: its frozen process goes.
    f.s.kill();
    assert!(f.s.wait_gone());
    let (code, v) = launch_restore(&f);
    assert_eq!(
        (code, v["verdict"].as_str()),
        (0, Some("accepted")),
        "{v:#}"
    );
    assert_eq!(v["pids"], serde_json::json!([f.s.pid]));
    assert_counting_on(&f.s, before);
    assert_eq!(f.w.running_hosts(&["s", "t"]), 1);

    // The image directory replayed after launch: verify and launch again.
    let (code, v) = verify(&f);
    assert_rejected(code, &v, "already-accepted");
    let (code, v) = launch_restore(&f);
    assert_rejected(code, &v, "already-accepted");
    assert!(f.s.alive(), "the running app is untouched");
}

#[test]
fn criu_abort_before_release_resumes_the_source_and_the_target_never_runs_it() {
    let _criu = criu_or_skip!();
    let c = corpus_or_skip!();
    let (w, bin) = world(c);
    let s = Sample::start(&bin, w.tmp.path(), 50, 4);
    let born = start_time(s.pid);
    // T launches another binary: it refuses the bundle at verify.
    let other = w.p("other");
    std::fs::copy("/bin/true", &other).unwrap();
    let server = Server::start(&w, "t", &other);
    let (code, v) = live(&w, &s, &server.addr);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["by"], "peer", "{v:#}");
    let (code, sv) = server.finish();
    assert_eq!(code, 1, "{sv:#}");
    // S aborted and resumed the very same process; T holds nothing.
    assert_eq!(start_time(s.pid), born);
    let n = s.ticks().len();
    assert_counting_on(&s, n);
    assert_eq!(w.app_status("s"), "running");
    assert_eq!(w.app_status("t"), "absent");
    assert!(std::fs::read_dir(w.p("t-images")).unwrap().next().is_none());
}

// --- attacks ------------------------------------------------------------

/// The entries of a CRIU image (after its two magic words): (offset of the
/// payload, payload). A test-side reader, independent of talos's.
fn img_entries(b: &[u8]) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    let mut pos = 8;
    while pos + 4 <= b.len() {
        let len = u32::from_le_bytes(b[pos..pos + 4].try_into().unwrap()) as usize;
        out.push((pos + 4, &b[pos + 4..pos + 4 + len]));
        pos += 4 + len;
    }
    out
}

fn varint(b: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let x = b[*pos];
        *pos += 1;
        v |= u64::from(x & 0x7f) << shift;
        if x & 0x80 == 0 {
            break;
        }
    }
    v
}

/// Protobuf fields of a message: (tag, value or length, offset of the
/// value, for length-delimited fields their bytes).
fn fields(m: &[u8]) -> Vec<(u64, u64, usize, &[u8])> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < m.len() {
        let key = varint(m, &mut pos);
        let at = pos;
        match key & 7 {
            0 => {
                let v = varint(m, &mut pos);
                out.push((key >> 3, v, at, &m[at..pos]));
            }
            2 => {
                let l = varint(m, &mut pos) as usize;
                out.push((key >> 3, l as u64, pos, &m[pos..pos + l]));
                pos += l;
            }
            w => panic!("wire type {w}"),
        }
    }
    out
}

/// Stored runs of a pagemap image: (entry payload offset, vaddr field
/// offset, vaddr, pages, offset in the pages image).
fn runs(pagemap: &[u8]) -> Vec<(usize, usize, u64, u64, u64)> {
    let mut off = 0;
    let mut out = Vec::new();
    for (at, e) in img_entries(pagemap).into_iter().skip(1) {
        let f = fields(e);
        let vaddr = f.iter().find(|x| x.0 == 1).unwrap();
        let n = f
            .iter()
            .find(|x| x.0 == 5)
            .or_else(|| f.iter().find(|x| x.0 == 2))
            .unwrap()
            .1;
        out.push((at, at + vaddr.2, vaddr.1, n, off));
        off += n * 4096;
    }
    out
}

fn pid_file(dir: &Path, prefix: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .unwrap()
}

#[test]
fn criu_attacks_on_the_images_are_refused_with_their_reason() {
    let _criu = criu_or_skip!();
    let c = corpus_or_skip!();
    let f = files_to_receipt(c, 4);
    let (code, v) = seal(&f);
    assert_eq!(code, 0, "{v:#}");
    let pagemap = std::fs::read(pid_file(&f.received, "pagemap-")).unwrap();
    let r = runs(&pagemap);
    let pages = pid_file(&f.received, "pages-");
    let pristine = std::fs::read(&pages).unwrap();

    // One byte flipped in pages-N.img (inside the largest run: the heap).
    let big = r.iter().max_by_key(|x| x.3).unwrap();
    let off = big.4 + big.3 * 4096 / 2 + 123;
    flip(&pages, off);
    let (code, v) = verify(&f);
    assert_rejected(code, &v, "state-mismatch");
    std::fs::write(&pages, &pristine).unwrap();

    // A pagemap entry moved one page up (same varint length).
    let pm_path = pid_file(&f.received, "pagemap-");
    let last = r.last().unwrap();
    let mut moved = pagemap.clone();
    let mut pos = last.1;
    let old_end = {
        let mut p = pos;
        varint(&moved, &mut p);
        p
    };
    let mut v = last.2 + 4096;
    while pos < old_end {
        let more = pos + 1 < old_end;
        moved[pos] = (v & 0x7f) as u8 | if more { 0x80 } else { 0 };
        v >>= 7;
        pos += 1;
    }
    assert_eq!(v, 0, "the moved address needs another varint length");
    std::fs::write(&pm_path, &moved).unwrap();
    let (code, v) = verify(&f);
    assert_rejected(code, &v, "state-mismatch");
    std::fs::write(&pm_path, &pagemap).unwrap();

    // The pristine images still verify: the refusals kept the nonce.
    let (code, v) = verify(&f);
    assert_eq!(code, 0, "{v:#}");
    assert!(f.s.alive());
}

#[test]
fn criu_changed_stored_code_page_is_code_mismatch() {
    let _criu = criu_or_skip!();
    let c = corpus_or_skip!();
    let f = files_to_receipt(c, 4);
    // The stored page inside statekeeper's r-x mapping (CRIU's parasite
    // COW-ed it): find it from /proc/PID/maps and the pagemap.
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", f.s.pid)).unwrap();
    let code: Vec<(u64, u64)> = maps
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|p| p.starts_with("r-x"))
        })
        .filter(|l| l.ends_with(".so.6") || l.ends_with("statekeeper") || l.ends_with(".so.2"))
        .map(|l| {
            let (a, b) = l
                .split_whitespace()
                .next()
                .unwrap()
                .split_once('-')
                .unwrap();
            (
                u64::from_str_radix(a, 16).unwrap(),
                u64::from_str_radix(b, 16).unwrap(),
            )
        })
        .collect();
    let pagemap = std::fs::read(pid_file(&f.images, "pagemap-")).unwrap();
    let (_, _, vaddr, _, off) = runs(&pagemap)
        .into_iter()
        .find(|r| code.iter().any(|&(a, b)| r.2 >= a && r.2 < b))
        .expect("CRIU stores one code page it wrote its parasite into");
    let pages = pid_file(&f.images, "pages-");
    flip(&pages, off + 0x40);
    let (code, v) = seal(&f);
    assert_rejected(code, &v, "code-mismatch");
    let why = v["evidence"].to_string();
    assert!(why.contains("tampered"), "{v:#}");
    assert!(
        why.contains(&format!("{:#x}", vaddr + 0x40)) || why.contains("differ"),
        "{v:#}"
    );
    assert_eq!(f.w.app_status("s"), "running");
    assert!(f.s.alive());
}

#[test]
fn criu_binary_replaced_between_verify_and_launch_is_launch_mismatch() {
    let _criu = criu_or_skip!();
    let c = corpus_or_skip!();
    let f = files_to_receipt(c, 4);
    assert_eq!(seal(&f).0, 0);
    assert_eq!(verify(&f).0, 0);
    assert_eq!(f.w.commit("s", "receipt", "release").0, 0);
    f.s.kill();
    assert!(f.s.wait_gone());
    // Same size, same build-id (CRIU checks both), one code byte changed.
    let (off, _) = first_short_jmp(&f.bin);
    flip(&f.bin, off + 1);
    let (code, v) = launch_restore(&f);
    assert_rejected(code, &v, "launch-mismatch");
    assert!(v["detail"].as_str().unwrap().contains("killed"), "{v:#}");
    assert!(
        common::criu::state(f.s.pid).is_none() || !f.s.alive(),
        "the restored tree must be killed"
    );
    assert!(f.s.wait_gone());
    // Refused, recorded, and not spent: T still holds the bundle.
    let journal =
        std::fs::read_to_string(format!("{}/launch-refusals.jsonl", f.w.dir("t"))).unwrap();
    assert!(journal.contains("launch-mismatch"), "{journal}");
    assert_eq!(f.w.app_status("t"), "accepted");
    // With the binary put back, the release launches the verified state.
    flip(&f.bin, off + 1);
    let (code, v) = launch_restore(&f);
    assert_eq!(code, 0, "{v:#}");
    let n = f.s.ticks().len();
    assert_counting_on(&f.s, n);
}

#[test]
fn criu_truncated_image_stream_is_malformed_and_the_target_keeps_nothing() {
    let _criu = criu_or_skip!();
    let c = corpus_or_skip!();
    let (w, bin) = world(c);
    let s = Sample::start(&bin, w.tmp.path(), 50, 4);
    let images = w.p("images-s");
    dump(s.pid, &images);
    let server = Server::start(&w, "t", &bin);
    let mut sock = wire::connect(server.addr.as_str(), Duration::from_secs(10)).unwrap();
    wire::send_hello(&mut sock).unwrap();
    wire::expect_hello(&mut sock).unwrap();
    wire::write_frame(
        &mut sock,
        FrameKind::Message,
        &std::fs::read(w.p("ref")).unwrap(),
    )
    .unwrap();
    let chal = wire::expect_frame(&mut sock, FrameKind::Message).unwrap();
    std::fs::write(w.p("chal"), &chal).unwrap();
    let (code, v) = w.seal("s", "chal", &images, "bundle");
    assert_eq!(code, 0, "{v:#}");
    wire::write_frame(
        &mut sock,
        FrameKind::Message,
        &std::fs::read(w.p("bundle")).unwrap(),
    )
    .unwrap();
    // The stream of the image directory, cut in the middle of pages-1.img.
    let mut names: Vec<String> = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".img"))
        .collect();
    names.sort_by_key(|n| (n.starts_with("pages-"), n.clone()));
    let mut stream = b"TALOSIMG\x01".to_vec();
    for n in &names {
        let b = std::fs::read(images.join(n)).unwrap();
        stream.push(1);
        stream.extend_from_slice(&(n.len() as u16).to_be_bytes());
        stream.extend_from_slice(n.as_bytes());
        stream.extend_from_slice(&(b.len() as u64).to_be_bytes());
        stream.extend_from_slice(&b);
    }
    stream.truncate(stream.len() - 5000);
    wire::send_state(&mut stream.as_slice(), &mut sock, 1 << 20).unwrap();
    let verdict = wire::expect_frame(&mut sock, FrameKind::Verdict).unwrap();
    assert_eq!(verdict, b"malformed");
    drop(sock);
    let (code, sv) = server.finish();
    assert_rejected(code, &sv, "malformed");
    assert!(std::fs::read_dir(w.p("t-images")).unwrap().next().is_none());
    assert_eq!(w.app_status("t"), "absent");
    assert_eq!(w.app_status("s"), "frozen");
    assert!(s.alive());
}

/// The digest root of a capture (`talos digest INPUT --format json`).
fn root(input: &str) -> String {
    let o = Command::new(talos_bin())
        .args(["digest", input, "--format", "json"])
        .output()
        .unwrap();
    let (code, v) = parse(&o);
    assert_eq!(code, 0, "talos digest {input}: {v:#}");
    v["root"].as_str().unwrap().to_string()
}

fn gcore(pid: u32, dir: &Path, name: &str) -> Option<String> {
    if !common::which("gcore") {
        common::skip_or_fail(
            "gcore (gdb) is not installed: its part of the digest test is skipped",
        );
        return None;
    }
    let prefix = dir.join(name);
    let st = Command::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "gcore failed");
    Some(format!("{}.{pid}", prefix.display()))
}

/// One state, one digest: one stopped program captured as CRIU
/// images, a gcore, a kernel core and its live memory has one state
/// digest root; restored by `criu restore`, the live process and a gcore
/// of it have that root too. The sample has threads, thread-stack guard
/// pages and an 8 MiB heap; CRIU stores only some of its pages.
#[test]
fn criu_one_digest_root_for_images_gcore_kernel_core_live_and_restored() {
    let _criu = criu_or_skip!();
    let c = corpus_or_skip!();
    let (w, bin) = world(c);
    let dir = w.tmp.path();
    let s = Sample::start(&bin, dir, 20, 8);
    let images = w.p("images");
    dump(s.pid, &images);
    let want = root(images.to_str().unwrap());
    assert_eq!(root(&format!("pid:{}", s.pid)), want, "live process");
    // --diff takes any two of: image directory, saved digest, pid:N, core.
    let saved = w.p("images.digest.json");
    let o = Command::new(talos_bin())
        .args(["digest", images.to_str().unwrap(), "--format", "json", "-o"])
        .arg(&saved)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    for (a, b) in [
        (images.display().to_string(), format!("pid:{}", s.pid)),
        (saved.display().to_string(), format!("pid:{}", s.pid)),
    ] {
        let o = Command::new(talos_bin())
            .args(["digest", "--diff", &a, &b])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "--diff {a} {b}: {o:?}");
    }
    if let Some(g) = gcore(s.pid, dir, "gc") {
        assert_eq!(root(&g), want, "gcore");
    }
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let signal = |sig: &str| {
        Command::new("kill")
            .args([sig, &s.pid.to_string()])
            .status()
            .unwrap()
    };
    if pattern.trim() == "core" {
        // The kernel writes the core: SIGABRT while stopped, then SIGCONT;
        // no user code runs in between (a background job of sh ignores
        // SIGQUIT, not SIGABRT).
        signal("-ABRT");
        signal("-CONT");
        assert!(s.wait_gone());
        let core = dir.join("core");
        assert!(core.is_file(), "no kernel core in {}", dir.display());
        assert_eq!(root(core.to_str().unwrap()), want, "kernel core");
    } else {
        eprintln!("core_pattern is {pattern:?}: the kernel-core part is skipped");
        s.kill();
        assert!(s.wait_gone());
    }
    // Restored from the images, stopped: the live process and its gcore.
    let st = Command::new(common::criu::bin())
        .args(["restore", "-D"])
        .arg(&images)
        .args(["-d", "--leave-stopped", "-o", "restore.log"])
        .status()
        .unwrap();
    assert!(
        st.success(),
        "criu restore failed: {}/restore.log",
        images.display()
    );
    assert!(s.alive());
    assert_eq!(
        root(&format!("pid:{}", s.pid)),
        want,
        "restored live process"
    );
    if let Some(g) = gcore(s.pid, dir, "gr") {
        assert_eq!(root(&g), want, "gcore of the restored process");
    }
}
