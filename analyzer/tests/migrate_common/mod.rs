//! Helpers of the `talos migrate` end-to-end tests: state directories,
//! running the real binary, the corpus dumps, byte surgery on ELF files.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The app id of the corpus program.
pub const APP: &str = "statekeeper";

/// The failpoints of `talos_migrate` (`TALOS_FAILPOINT`), in write order:
/// the tests build `talos` with the gate's `test-hooks` feature.
pub use talos_migrate::{FAILPOINT_ENV, FAILPOINTS, NOW_ENV};

pub use crate::common::dumps::Corpus;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn talos_bin() -> &'static str {
    env!("CARGO_BIN_EXE_talos")
}

/// Parse the JSON verdict on stdout.
pub fn parse(out: &Output) -> (i32, Value) {
    let code = out.status.code().unwrap_or(-1);
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}); exit {code}; stdout: {text}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, v)
}

/// Assert a rejection with exactly `reason` (exit 1).
#[track_caller]
pub fn assert_rejected(code: i32, v: &Value, reason: &str) {
    assert_eq!(
        (code, v["verdict"].as_str(), v["reason"].as_str()),
        (1, Some("rejected"), Some(reason)),
        "{v:#}"
    );
}

/// A temporary directory with an owner key and state directories
/// `DIR/<name>` that pin the owner and each other; the first one has the
/// app registered.
pub struct World {
    pub tmp: tempfile::TempDir,
}

impl World {
    /// Hosts, owner key (`owner`, `owner.pub`), no reference.
    pub fn new(hosts: &[&str]) -> World {
        let w = World {
            tmp: tempfile::tempdir().unwrap(),
        };
        let out = w.raw_global(&["keygen", "-o", &w.s("owner")]);
        assert!(out.status.success(), "{out:?}");
        for h in hosts {
            w.host(h);
            w.run_ok(h, &["trust", "--role", "owner", &w.s("owner.pub")]);
        }
        for a in hosts {
            for b in hosts {
                if a != b {
                    w.run_ok(
                        a,
                        &["trust", "--role", "peer", &format!("{}/host.pub", w.dir(b))],
                    );
                }
            }
        }
        if let Some(first) = hosts.first() {
            w.run_ok(first, &["register", "--app", APP]);
        }
        w
    }

    /// As [`World::new`], plus `ref`: the owner's reference of statekeeper.
    pub fn sk(c: &Corpus, hosts: &[&str]) -> World {
        let w = World::new(hosts);
        let out = w.raw_global(&[
            "reference",
            c.sk_bin().to_str().unwrap(),
            "--app",
            APP,
            "--version",
            "1.0",
            "--key",
            &w.s("owner"),
            "-o",
            &w.s("ref"),
        ]);
        assert!(out.status.success(), "{out:?}");
        w
    }

    pub fn p(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
    pub fn s(&self, name: &str) -> String {
        self.p(name).to_str().unwrap().to_owned()
    }
    pub fn dir(&self, host: &str) -> String {
        self.s(&format!("host-{host}"))
    }

    /// Initialise one more host (pins nothing).
    pub fn host(&self, name: &str) {
        let (code, v) = self.run(name, &["init"]);
        assert_eq!(code, 0, "{v}");
    }

    fn cmd(&self, host: &str, args: &[&str], json: bool) -> Command {
        let mut c = Command::new(talos_bin());
        c.arg("migrate")
            .arg(args[0])
            .arg("--state-dir")
            .arg(self.dir(host));
        if json {
            c.args(["--format", "json"]);
        }
        c.args(&args[1..]).env_remove(FAILPOINT_ENV);
        c
    }

    /// `talos migrate ARGS[0] --state-dir DIR ARGS[1..]`, text output.
    pub fn raw(&self, host: &str, args: &[&str]) -> Output {
        self.cmd(host, args, false).output().unwrap()
    }

    /// The same with `TALOS_FAILPOINT` set.
    pub fn raw_env(&self, host: &str, args: &[&str], failpoint: Option<&str>) -> Output {
        let mut c = self.cmd(host, args, true);
        if let Some(f) = failpoint {
            c.env(FAILPOINT_ENV, f);
        }
        c.output().unwrap()
    }

    /// Run with `--format json` at time `now` (the gate's test clock,
    /// `TALOS_TEST_NOW`; only test builds have it).
    pub fn run_at(&self, host: &str, args: &[&str], now: u64) -> (i32, Value) {
        parse(
            &self
                .cmd(host, args, true)
                .env(NOW_ENV, now.to_string())
                .output()
                .unwrap(),
        )
    }

    /// `talos ARGS` (any command).
    pub fn raw_global(&self, args: &[&str]) -> Output {
        Command::new(talos_bin())
            .args(args)
            .env_remove(FAILPOINT_ENV)
            .output()
            .unwrap()
    }

    pub fn run_global_json(&self, args: &[&str]) -> (i32, Value) {
        let mut a = args.to_vec();
        a.extend(["--format", "json"]);
        parse(&self.raw_global(&a))
    }

    /// Run with `--format json`: exit code and verdict.
    pub fn run(&self, host: &str, args: &[&str]) -> (i32, Value) {
        parse(&self.raw_env(host, args, None))
    }

    #[track_caller]
    pub fn run_ok(&self, host: &str, args: &[&str]) -> Value {
        let (code, v) = self.run(host, args);
        assert_eq!(code, 0, "{args:?}: {v:#}");
        v
    }

    pub fn challenge(&self, target: &str, out: &str) {
        self.run_ok(target, &["challenge", "--app", APP, "-o", &self.s(out)]);
    }

    pub fn seal(&self, source: &str, challenge: &str, dump: &Path, out: &str) -> (i32, Value) {
        self.run(
            source,
            &[
                "seal",
                "--app",
                APP,
                "--reference",
                &self.s("ref"),
                "--dump",
                dump.to_str().unwrap(),
                "--challenge",
                &self.s(challenge),
                "-o",
                &self.s(out),
            ],
        )
    }

    pub fn verify(
        &self,
        target: &str,
        bundle: &str,
        binary: &Path,
        state: &Path,
        out: &str,
    ) -> (i32, Value) {
        self.run(
            target,
            &[
                "verify",
                "--bundle",
                &self.s(bundle),
                "--reference",
                &self.s("ref"),
                "--binary",
                binary.to_str().unwrap(),
                "--state",
                state.to_str().unwrap(),
                "-o",
                &self.s(out),
            ],
        )
    }

    /// challenge, seal, verify of the clean gcore: `bundle-S-T`,
    /// `receipt-S-T`.
    pub fn seal_and_verify(&self, c: &Corpus, s: &str, t: &str, tag: &str) {
        let core = c.core("sk.gcore-7f.core");
        let chal = format!("chal-{s}-{t}{tag}");
        self.challenge(t, &chal);
        let (code, v) = self.seal(s, &chal, &core, &format!("bundle-{s}-{t}{tag}"));
        assert_eq!(code, 0, "{v:#}");
        let (code, v) = self.verify(
            t,
            &format!("bundle-{s}-{t}{tag}"),
            &c.sk_bin(),
            &core,
            &format!("receipt-{s}-{t}{tag}"),
        );
        assert_eq!(code, 0, "{v:#}");
    }

    /// The whole exchange; returns the launch verdict.
    pub fn exchange_to_launch(&self, c: &Corpus, s: &str, t: &str) -> (i32, Value) {
        self.seal_and_verify(c, s, t, "");
        let release = format!("release-{s}-{t}");
        let (code, v) = self.commit(s, &format!("receipt-{s}-{t}"), &release);
        assert_eq!(code, 0, "{v:#}");
        self.launch(t, &release)
    }

    /// `commit --receipt DIR/RECEIPT -o DIR/RELEASE` on `host`.
    pub fn commit(&self, host: &str, receipt: &str, release: &str) -> (i32, Value) {
        self.run(
            host,
            &[
                "commit",
                "--receipt",
                &self.s(receipt),
                "-o",
                &self.s(release),
            ],
        )
    }

    /// `launch --release DIR/RELEASE` on `host`.
    pub fn launch(&self, host: &str, release: &str) -> (i32, Value) {
        self.run(host, &["launch", "--release", &self.s(release)])
    }

    /// `launch --release DIR/RELEASE -- sh -c SCRIPT` on `host`.
    pub fn launch_exec(&self, host: &str, release: &str, script: &str) -> Output {
        self.raw_env(
            host,
            &[
                "launch",
                "--release",
                &self.s(release),
                "--",
                "sh",
                "-c",
                script,
            ],
            None,
        )
    }

    /// A key nobody pinned (`DIR/KEY`) and the reference of statekeeper
    /// it signed (`DIR/OUT`).
    pub fn unpinned_reference(&self, c: &Corpus, key: &str, out: &str) {
        let o = self.raw_global(&["keygen", "-o", &self.s(key)]);
        assert!(o.status.success(), "{o:?}");
        let o = self.raw_global(&[
            "reference",
            c.sk_bin().to_str().unwrap(),
            "--app",
            APP,
            "--key",
            &self.s(key),
            "-o",
            &self.s(out),
        ]);
        assert!(o.status.success(), "{o:?}");
    }

    pub fn ledger(&self, host: &str) -> Vec<u8> {
        std::fs::read(format!("{}/ledger", self.dir(host))).unwrap()
    }

    pub fn status(&self, host: &str) -> Value {
        self.run_ok(host, &["status"])
    }

    pub fn app_status(&self, host: &str) -> String {
        self.status(host)["apps"][APP]["status"]
            .as_str()
            .unwrap_or("absent")
            .to_owned()
    }

    /// How many of `hosts` may run the app (running or launched).
    pub fn running_hosts(&self, hosts: &[&str]) -> usize {
        hosts
            .iter()
            .filter(|h| matches!(self.app_status(h).as_str(), "running" | "launched"))
            .count()
    }
}

/// Flip every bit of the byte at `off`.
pub fn flip(path: &Path, off: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[off as usize] ^= 0xff;
    std::fs::write(path, &b).unwrap();
}

/// An ELF64 program header: (type, flags, offset, vaddr, filesz).
pub fn phdrs(path: &Path) -> Vec<(u32, u32, u64, u64, u64)> {
    let b = std::fs::read(path).unwrap();
    let u16_at = |o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    assert_eq!(&b[..4], b"\x7fELF");
    let phoff = u64_at(32) as usize;
    let phentsize = u16_at(54) as usize;
    let phnum = u16_at(56) as usize;
    (0..phnum)
        .map(|i| {
            let p = phoff + i * phentsize;
            (
                u32_at(p),
                u32_at(p + 4),
                u64_at(p + 8),
                u64_at(p + 16),
                u64_at(p + 32),
            )
        })
        .collect()
}

/// File offset of `vaddr` in an ELF file (core or binary).
pub fn file_offset(path: &Path, vaddr: u64) -> u64 {
    phdrs(path)
        .into_iter()
        .find(|&(t, _, _, va, fs)| t == 1 && va <= vaddr && vaddr < va + fs)
        .map(|(_, _, off, va, _)| off + (vaddr - va))
        .unwrap_or_else(|| panic!("{vaddr:#x} is in no PT_LOAD of {}", path.display()))
}

/// File offset of the byte 0x100 into the lowest executable segment with
/// bytes of a core (the PIE main program's .text, below the libraries).
pub fn core_offset(core: &Path) -> u64 {
    let (_, _, off, _, _) = phdrs(core)
        .into_iter()
        .filter(|&(t, f, _, _, fs)| t == 1 && f & 1 != 0 && fs > 0x200)
        .min_by_key(|&(_, _, _, va, _)| va)
        .expect("an executable segment with bytes");
    off + 0x100
}

/// File offset of the middle of the largest writable segment of a core.
pub fn writable_offset(core: &Path) -> u64 {
    let (_, _, off, _, fs) = phdrs(core)
        .into_iter()
        .filter(|&(t, f, _, _, fs)| t == 1 && f & 2 != 0 && fs > 0)
        .max_by_key(|&(_, _, _, _, fs)| fs)
        .expect("a writable segment with bytes");
    off + fs / 2
}

/// File offset of the notes of a core.
pub fn note_offset(core: &Path) -> u64 {
    phdrs(core)
        .into_iter()
        .find(|&(t, ..)| t == 4)
        .map(|(_, _, off, _, _)| off)
        .expect("PT_NOTE")
}

/// Address and displacement byte of the first `jmp rel8` (eb XX) that
/// objdump shows in `bin`.
pub fn first_short_jmp(bin: &Path) -> (u64, u8) {
    let out = Command::new("objdump")
        .arg("-d")
        .arg(bin)
        .output()
        .expect("objdump");
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        let mut parts = line.split('\t');
        let (Some(addr), Some(bytes)) = (parts.next(), parts.next()) else {
            continue;
        };
        let b: Vec<&str> = bytes.split_whitespace().collect();
        if b.len() == 2 && b[0] == "eb" && b[1] != "00" {
            let a = u64::from_str_radix(addr.trim().trim_end_matches(':'), 16).unwrap();
            return (a, u8::from_str_radix(b[1], 16).unwrap());
        }
    }
    panic!("no jmp rel8 in {}", bin.display());
}
