//! CRIU for the end-to-end tests: whether it can run here (skipped with a
//! printed reason otherwise, a failure under `TALOS_REQUIRE_CORPUS`), and
//! the state-keeping sample (`statekeeper --tick`) as a process that is
//! killed when the test ends, whatever happened.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

static FOUND: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The criu binary [`criu`] found.
pub fn bin() -> PathBuf {
    FOUND
        .get()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("criu"))
}

/// CRIU 4.1 or later that passes `criu check`, as root; `None` after
/// saying why (or a failure in CI).
pub fn criu() -> Option<PathBuf> {
    let why = (|| {
        let uid = std::fs::read_to_string("/proc/self/status")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))?;
        if uid != "0" {
            return Some("CRIU needs root and the tests do not run as root".to_string());
        }
        let path = ["/usr/local/sbin/criu", "/usr/sbin/criu", "/sbin/criu"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .or_else(|| {
                let o = Command::new("sh")
                    .args(["-c", "command -v criu"])
                    .output()
                    .ok()?;
                o.status
                    .success()
                    .then(|| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            });
        let Some(path) = path else {
            return Some("criu is not installed (../shared/tools/install-criu.sh)".into());
        };
        let v = Command::new(&path).arg("--version").output().ok()?;
        let v = String::from_utf8_lossy(&v.stdout).into_owned();
        let ver = v
            .lines()
            .find_map(|l| l.strip_prefix("Version:"))?
            .trim()
            .to_string();
        let mut it = ver.split('.').map(|x| x.parse::<u32>().unwrap_or(0));
        if (it.next().unwrap_or(0), it.next().unwrap_or(0)) < (4, 1) {
            return Some(format!(
                "criu {ver} at {} is older than 4.1",
                path.display()
            ));
        }
        let ok = Command::new(&path)
            .arg("check")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?
            .success();
        if !ok {
            return Some(format!("criu check fails here ({})", path.display()));
        }
        let _ = FOUND.set(path);
        None
    })();
    match why {
        None => Some(bin()),
        Some(w) => {
            super::skip_or_fail(&w);
            None
        }
    }
}

/// CRIU, or return from the test (SKIP).
#[macro_export]
macro_rules! criu_or_skip {
    () => {
        match $crate::common::criu::criu() {
            Some(c) => c,
            None => return,
        }
    };
}

/// `/proc/PID/stat` field 22: when the process started (clock ticks after
/// boot). A restored process has the same pid but another start time.
pub fn start_time(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// The state letter of `/proc/PID/stat`.
pub fn state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?.1.trim_start().chars().next()
}

/// A running `statekeeper --tick MS`: a session leader with no terminal
/// (so `criu dump` needs no `--shell-job`), reparented away from the test
/// so that a kill is reaped at once, ticking into `out`. Killed on drop,
/// whoever runs it by then (the source, or the process restored under the
/// same pid), unless the pid now belongs to another program.
pub struct Sample {
    pub pid: u32,
    pub bin: PathBuf,
    pub out: PathBuf,
}

impl Sample {
    pub fn start(bin: &Path, dir: &Path, tick_ms: u32, heap_mib: u32) -> Sample {
        let out = dir.join("sample.out");
        // stdin is an empty file of our own, not /dev/null: CRIU restores
        // a regular file only at the size it had, and a sandbox may have
        // /dev/null as a regular file that others write to.
        let empty = dir.join("sample.in");
        std::fs::write(&empty, b"").unwrap();
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cd '{}' && ulimit -c unlimited && setsid '{}' --tick {tick_ms} --heap-mib {heap_mib} <'{}' >'{}' 2>&1 & echo $!",
                dir.display(),
                bin.display(),
                empty.display(),
                out.display()
            ))
            .output()
            .unwrap();
        let pid: u32 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
        let s = Sample {
            pid,
            bin: bin.to_path_buf(),
            out,
        };
        s.wait_ticks(2);
        s
    }

    /// The ticks printed so far: (tick, state, heap hash).
    pub fn ticks(&self) -> Vec<(u64, String, String)> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut it = l.split(' ');
                let t = it.next()?.strip_prefix("tick=")?.parse().ok()?;
                let st = it.next()?.strip_prefix("state=")?.to_string();
                let h = it.next()?.strip_prefix("heap=")?.to_string();
                Some((t, st, h))
            })
            .collect()
    }

    /// Wait until at least `n` ticks are printed (10 s at most).
    pub fn wait_ticks(&self, n: usize) {
        let end = Instant::now() + Duration::from_secs(10);
        while self.ticks().len() < n {
            assert!(
                Instant::now() < end,
                "statekeeper printed {} ticks, expected {n}",
                self.ticks().len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the pid runs this sample's binary, also once the binary's
    /// file is deleted (the kernel then shows `PATH (deleted)`).
    fn runs_our_binary(&self) -> bool {
        std::fs::read_link(format!("/proc/{}/exe", self.pid)).is_ok_and(|e| {
            e == self.bin
                || e.as_os_str().to_string_lossy() == format!("{} (deleted)", self.bin.display())
        })
    }

    /// Whether a process of this sample's binary holds the pid.
    pub fn alive(&self) -> bool {
        std::fs::read_link(format!("/proc/{}/exe", self.pid)).is_ok_and(|e| e == self.bin)
            && state(self.pid).is_some_and(|s| s != 'Z')
    }

    /// Wait until the pid is free (the process killed and reaped).
    pub fn wait_gone(&self) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if state(self.pid).is_none() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn kill(&self) {
        if self.runs_our_binary() {
            let _ = Command::new("kill")
                .args(["-9", &self.pid.to_string()])
                .status();
        }
    }
}

impl Drop for Sample {
    fn drop(&mut self) {
        self.kill();
        self.wait_gone();
    }
}

/// Run `criu dump -t PID -D DIR --leave-stopped` (the freeze of file mode).
pub fn dump(pid: u32, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let st = Command::new(bin())
        .args(["dump", "-t", &pid.to_string(), "-D"])
        .arg(dir)
        .args(["--leave-stopped", "-o", "dump.log"])
        .status()
        .unwrap();
    assert!(
        st.success(),
        "criu dump failed; see {}/dump.log",
        dir.display()
    );
}

/// Copy an image directory (its files).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}
