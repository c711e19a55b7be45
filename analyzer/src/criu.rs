//! Running CRIU: finding it, checking it can work here, dumping a process
//! stopped, restoring an image directory stopped, and controlling the
//! processes it leaves (continue, kill, wait until gone).
//!
//! talos wraps CRIU, it does not reimplement it: `criu dump` writes the
//! image directory talos measures and streams, `criu restore` recreates
//! the process on the target, stopped (`--leave-stopped`), so talos can
//! check it before it runs one instruction.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Oldest CRIU talos runs: 4.1 handles the `[vvar_vclock]` mapping of
/// kernels 6.13 and later (CRIU 3.x fails `criu check` there).
pub const MIN_VERSION: (u32, u32) = (4, 1);

/// A CRIU binary that passed `criu check`.
#[derive(Debug, Clone)]
pub struct Criu {
    /// The binary.
    pub path: PathBuf,
    /// Its version (`criu --version`).
    pub version: String,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn parse_version(text: &str) -> Option<(u32, u32, String)> {
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix("Version:"))?
        .trim()
        .to_string();
    let mut it = v.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor, v))
}

impl Criu {
    /// Find `criu` (`explicit`, else on PATH, else in the sbin
    /// directories), check its version and run `criu check`.
    ///
    /// # Errors
    /// Saying clearly whether CRIU is missing, too old, or `criu check`
    /// fails here (and why).
    pub fn find(explicit: Option<&Path>) -> Result<Criu> {
        let c = Criu::locate(explicit)?;
        c.check()?;
        Ok(c)
    }

    /// Find `criu` and check its version, without `criu check` (which
    /// takes a tenth of a second): [`Criu::dump`] and [`Criu::restore`] run
    /// it to explain a failure.
    ///
    /// # Errors
    /// When CRIU is missing or too old.
    pub fn locate(explicit: Option<&Path>) -> Result<Criu> {
        let path = match explicit {
            Some(p) => {
                if !p.is_file() {
                    bail!("--criu {}: no such file", p.display());
                }
                p.to_path_buf()
            }
            None => on_path("criu").context(
                "CRIU is not installed: criu is not on PATH (install CRIU 4.1 or later, or give --criu PATH)",
            )?,
        };
        let out = Command::new(&path)
            .arg("--version")
            .output()
            .with_context(|| format!("{}: cannot run", path.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let Some((major, minor, version)) = parse_version(&text) else {
            bail!(
                "{}: not CRIU (criu --version printed {:?})",
                path.display(),
                text.trim()
            );
        };
        if (major, minor) < MIN_VERSION {
            bail!(
                "{}: CRIU {version} is too old: talos needs {}.{} or later (CRIU 3.x cannot dump on kernels 6.13 and later)",
                path.display(),
                MIN_VERSION.0,
                MIN_VERSION.1
            );
        }
        Ok(Criu { path, version })
    }

    /// Run `criu check`.
    ///
    /// # Errors
    /// When it fails, with its error lines.
    pub fn check(&self) -> Result<()> {
        let check = Command::new(&self.path)
            .arg("check")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("{}: cannot run criu check", self.path.display()))?;
        if !check.status.success() {
            let err = String::from_utf8_lossy(&check.stderr);
            let tail: Vec<&str> = err
                .lines()
                .filter(|l| l.contains("Error"))
                .take(4)
                .collect();
            bail!(
                "{}: criu check fails on this machine ({}): {}",
                self.path.display(),
                check.status,
                if tail.is_empty() {
                    err.trim().to_string()
                } else {
                    tail.join(" / ")
                }
            );
        }
        Ok(())
    }

    fn run(&self, what: &str, args: &[&str], extra: &[String], log: &Path) -> Result<()> {
        let out = Command::new(&self.path)
            .args(args)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("{}: cannot run criu {what}", self.path.display()))?;
        if out.status.success() {
            return Ok(());
        }
        // Say first when CRIU cannot work here at all.
        self.check()
            .with_context(|| format!("criu {what} failed ({})", out.status))?;
        // CRIU logs to the -o file; every log has a harmless RLIMIT_NOFILE
        // error line here, so show the others.
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let errors: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("Error") && !l.contains("RLIMIT_NOFILE"))
            .take(6)
            .collect();
        bail!(
            "criu {what} failed ({}): {} (log: {})",
            out.status,
            if errors.is_empty() {
                String::from_utf8_lossy(&out.stderr).trim().to_string()
            } else {
                errors.join(" / ")
            },
            log.display()
        )
    }

    /// `criu dump --leave-stopped` of the tree rooted at `pid` into `dir`
    /// (log `dir/dump.log`): the freeze. The tree stays stopped.
    ///
    /// # Errors
    /// When CRIU fails (its error lines are in the message).
    pub fn dump(&self, pid: u32, dir: &Path, extra: &[String]) -> Result<()> {
        let d = dir.display().to_string();
        let log = dir.join("dump.log");
        let pid = pid.to_string();
        self.run(
            "dump",
            &[
                "dump",
                "-t",
                &pid,
                "-D",
                &d,
                "--leave-stopped",
                "-o",
                "dump.log",
            ],
            extra,
            &log,
        )
    }

    /// `criu restore -d --leave-stopped` of `dir` (log `dir/restore.log`):
    /// the tree comes back stopped, with its original process ids.
    ///
    /// # Errors
    /// When CRIU fails.
    pub fn restore(&self, dir: &Path, extra: &[String]) -> Result<()> {
        let d = dir.display().to_string();
        let log = dir.join("restore.log");
        self.run(
            "restore",
            &[
                "restore",
                "-D",
                &d,
                "-d",
                "--leave-stopped",
                "-o",
                "restore.log",
            ],
            extra,
            &log,
        )
    }
}

/// Send `sig` to process `pid`.
///
/// # Errors
/// When the signal cannot be sent (no such process, no permission).
pub fn signal(pid: u32, sig: nix::sys::signal::Signal) -> Result<()> {
    let p = i32::try_from(pid).context("pid out of range")?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig)
        .with_context(|| format!("process {pid}: cannot send {sig}"))
}

/// The state letter of `/proc/PID/stat` (`T` stopped, `Z` zombie...), or
/// `None` when the process does not exist.
#[must_use]
pub fn state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces.
    s.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Wait until `pid` no longer exists (killed and reaped), at most
/// `timeout`. A restored process is reparented, and its parent reaps it
/// within a second or two.
#[must_use]
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if state(pid).is_none() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    state(pid).is_none()
}

/// Kill every process of `pids` (SIGKILL) and wait until they are gone.
/// Returns the ones still present after `timeout`.
#[must_use]
pub fn kill_all(pids: &[u32], timeout: Duration) -> Vec<u32> {
    for &p in pids {
        let _ = signal(p, nix::sys::signal::Signal::SIGKILL);
    }
    pids.iter()
        .copied()
        .filter(|&p| !wait_gone(p, timeout))
        .collect()
}

/// The processes of the tree rooted at `pid` (children through
/// `/proc/PID/task/*/children`), `pid` first.
///
/// # Errors
/// When a listing of a process or thread that still exists cannot be read,
/// or the tree has more than 65536 processes: the tree is what gets
/// resumed or killed, so a partial list would let a process escape. A
/// process or thread that exits while the tree is listed is no error (it
/// has nothing left to resume or kill).
pub fn tree(pid: u32) -> std::result::Result<Vec<u32>, String> {
    const MAX_TREE: usize = 1 << 16;
    let gone = |e: &std::io::Error| {
        e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::ESRCH)
    };
    let mut out = vec![pid];
    let mut i = 0;
    while let Some(&p) = out.get(i) {
        i += 1;
        let tasks = match std::fs::read_dir(format!("/proc/{p}/task")) {
            Ok(t) => t,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(format!("cannot list the threads of process {p}: {e}")),
        };
        for t in tasks {
            let t = t.map_err(|e| format!("cannot list the threads of process {p}: {e}"))?;
            let path = t.path().join("children");
            let c = match std::fs::read_to_string(&path) {
                Ok(c) => c,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
            };
            for child in c.split_whitespace() {
                let child: u32 = child
                    .parse()
                    .map_err(|_| format!("{}: not a process id: {child:?}", path.display()))?;
                if !out.contains(&child) {
                    if out.len() >= MAX_TREE {
                        return Err(format!(
                            "the tree of process {pid} has more than {MAX_TREE} processes"
                        ));
                    }
                    out.push(child);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criu_version_lines() {
        assert_eq!(
            parse_version("Version: 4.2\n"),
            Some((4, 2, "4.2".to_string()))
        );
        assert_eq!(
            parse_version("Version: 3.17.1\nGitID: v3.17.1\n"),
            Some((3, 17, "3.17.1".to_string()))
        );
        assert_eq!(parse_version("criu: unknown option"), None);
    }
}
