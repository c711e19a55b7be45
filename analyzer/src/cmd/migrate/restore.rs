//! `talos migrate launch --restore DIR` (and `serve --restore-into`): run
//! `criu restore --leave-stopped` on the verified image directory, check
//! the restored process before it runs one instruction, and only then let
//! the gate record the launch and the process continue.
//!
//! Order, under the ledger lock (`Host::launch_with`):
//! 1. the gate's launch checks (signature, target, the bundle held here);
//! 2. the image directory is measured again and must be the verified
//!    state (`talos.state/1` equal to the bundle's: nothing changed it
//!    between verify and launch);
//! 3. `criu restore -d --leave-stopped`: the tree is back, stopped;
//! 4. the restored process is read (ptrace) and checked
//!    (`talos_evidence::restored`): code byte-equal to the reference's,
//!    flow check on the restored registers, registers and threads those of
//!    the image, memory digest equal to the image's;
//! 5. any difference: the tree is killed, the refusal is recorded in
//!    `STATE_DIR/launch-refusals.jsonl`, the verdict is `launch-mismatch`
//!    and the ledger is unchanged;
//! 6. otherwise the ledger records the launch, then every restored
//!    process gets SIGCONT.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use talos_evidence::restored::{Expected, check_restored};
use talos_migrate::{Bundle, Digest, Reference, Release};

use super::evidence::{StateError, measure_state};
use crate::criu::{self, Criu};
use crate::source::ImageDir;

/// Where verify keeps what launch needs.
const VERIFIED_DIR: &str = "verified";
/// The journal of refused launches.
pub const REFUSALS_FILE: &str = "launch-refusals.jsonl";

fn verified_paths(state_dir: &Path, bundle: &Digest) -> (PathBuf, PathBuf) {
    let d = state_dir.join(VERIFIED_DIR);
    let h = bundle.to_hex();
    (
        d.join(format!("{h}.bundle")),
        d.join(format!("{h}.reference")),
    )
}

/// Keep the bundle and reference a verify accepted. Neither is trusted
/// when read back: launch checks that the release names the bundle's id
/// and that the bundle names the reference's.
///
/// # Errors
/// When they cannot be written.
pub fn keep_verified(state_dir: &Path, bundle: &Bundle, reference: &Reference) -> Result<()> {
    let (b, r) = verified_paths(state_dir, &bundle.id());
    if let Some(d) = b.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("{}: cannot create", d.display()))?;
    }
    crate::output::write_atomic(&b, &bundle.encode())?;
    crate::output::write_atomic(&r, &reference.encode())?;
    Ok(())
}

/// The bundle a release names and its reference, as verify kept them.
///
/// # Errors
/// When verify on this host did not keep them, or they are not the ones
/// the release names.
pub fn load_verified(state_dir: &Path, release: &Release) -> Result<(Bundle, Reference)> {
    let id = release.body().bundle;
    let (b, r) = verified_paths(state_dir, &id);
    let read = |p: &Path| {
        std::fs::read(p).with_context(|| {
            format!(
                "{}: the bundle this release names was not verified here with talos (run talos migrate verify first)",
                p.display()
            )
        })
    };
    let bundle = Bundle::decode(&read(&b)?).with_context(|| format!("{}", b.display()))?;
    let reference = Reference::decode(&read(&r)?).with_context(|| format!("{}", r.display()))?;
    if bundle.id() != id || bundle.body().reference != reference.id() {
        bail!(
            "{}: the kept bundle and reference are not the ones release {} names",
            b.display(),
            id.short()
        );
    }
    Ok((bundle, reference))
}

/// A restored tree that passed the check, still stopped.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Its processes, the root first.
    pub pids: Vec<u32>,
    /// What was checked, for people.
    pub notes: Vec<String>,
    /// How long each step took, milliseconds.
    pub times: Vec<(&'static str, u64)>,
}

/// Anonymous regions of the restored process at least this large are read
/// by the memory digest as it hashes them (see `restore_and_check`).
const DEFER_OVER: u64 = 1 << 20;

fn ms(since: std::time::Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What the restored process must be: taken from the verified image
/// directory (its memory root, threads, registers and rseq areas).
#[derive(Debug, Clone)]
pub struct Expectations {
    /// The process id the image restores.
    pub pid: u32,
    /// The `talos.digest/1` root of its memory.
    pub memory_root: talos_introspect::digest::Hash32,
    /// Its threads with their registers.
    pub threads: Vec<talos_introspect::criu::ThreadImage>,
}

/// The expectations of the image directory `dir` whose state measured
/// `state` (read its process list and registers; no page is hashed).
///
/// # Errors
/// When the images cannot be read or hold no process.
pub fn expectations(
    dir: &Path,
    state: &talos_evidence::state::StateMeasure,
) -> Result<Expectations> {
    let images = ImageDir::open(dir)?;
    let map = images.map();
    let set = talos_introspect::criu::read(&map).with_context(|| format!("{}", dir.display()))?;
    let p = set
        .processes
        .first()
        .with_context(|| format!("{}: the image holds no process", dir.display()))?;
    Ok(Expectations {
        pid: p.pid,
        memory_root: state.memory_root,
        threads: p.threads.clone(),
    })
}

/// Measure `dir` again and check it is the state `bundle` sealed; its
/// expectations.
pub fn verified_expectations(
    dir: &Path,
    bundle: &Bundle,
    resolver: &talos_introspect::resolve::Resolver,
) -> std::result::Result<Expectations, String> {
    let state = match measure_state(dir, resolver) {
        Ok(s) => s,
        Err(StateError::Unreadable(e)) => return Err(format!("{e:#}")),
        Err(StateError::NotAState(why)) => return Err(why),
    };
    if state.measurement != bundle.body().state {
        return Err(format!(
            "{}: the image directory measures {}, the verified bundle says {}: it changed after verify; nothing was restored",
            dir.display(),
            state.measurement,
            bundle.body().state
        ));
    }
    expectations(dir, &state).map_err(|e| format!("{e:#}"))
}

/// Restore `dir` stopped and check it against `expected` and `reference`
/// (see the module documentation). On a mismatch the restored tree is
/// killed and the differences are returned. `expected` comes from the
/// verified state: measured again from `dir` ([`verified_expectations`],
/// file mode) or kept from the verify of the same `serve` exchange.
pub fn restore_and_check(
    criu: &Criu,
    dir: &Path,
    extra: &[String],
    expected: &Expectations,
    reference: &Reference,
    resolver: &talos_introspect::resolve::Resolver,
) -> std::result::Result<Restored, String> {
    let pid = expected.pid;
    if criu::state(pid).is_some() {
        return Err(format!(
            "process {pid} already exists on this host: criu restore needs its id; nothing was restored"
        ));
    }
    // 2. Restore, stopped.
    let mut times = Vec::new();
    let t = std::time::Instant::now();
    criu.restore(dir, extra).map_err(|e| format!("{e:#}"))?;
    times.push(("restore", ms(t)));
    let pids = match criu::tree(pid) {
        Ok(p) => p,
        Err(e) => {
            // What cannot be listed cannot be checked or stopped one by
            // one: the restored root goes, and its tree with it.
            let left = criu::kill_all(&[pid], Duration::from_secs(10));
            return Err(format!(
                "the restored tree cannot be listed ({e}); process {pid} was killed before it ran{}",
                if left.is_empty() {
                    String::new()
                } else {
                    format!(", but {left:?} is still present")
                }
            ));
        }
    };
    let kill = |why: String| -> String {
        let left = criu::kill_all(&pids, Duration::from_secs(10));
        if left.is_empty() {
            format!("{why}; the restored tree ({pids:?}) was killed before it ran")
        } else {
            format!(
                "{why}; the restored tree ({pids:?}) was killed, but {left:?} are still present"
            )
        }
    };
    // CRIU sends SIGSTOP while it still holds the tasks with ptrace, so
    // the stop is taken before they return to user mode; it may show in
    // /proc a moment after criu exits. Wait for the group stop itself
    // ('T' in every thread), not a ptrace stop ('t'): while SIGSTOP is
    // still pending, the read's ptrace attach would take it as a signal
    // stop and its detach would drop it, and the process would run.
    let group_stopped = |q: u32| {
        std::fs::read_dir(format!("/proc/{q}/task")).is_ok_and(|tasks| {
            tasks.filter_map(std::result::Result::ok).all(|t| {
                std::fs::read_to_string(t.path().join("stat")).is_ok_and(|s| {
                    s.rsplit_once(')')
                        .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
                })
            })
        })
    };
    let end = std::time::Instant::now() + Duration::from_secs(5);
    while !pids.iter().all(|&q| group_stopped(q)) && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Some(running) = pids.iter().find(|&&q| !group_stopped(q)) {
        return Err(kill(format!(
            "restored process {running} is not stopped (state {:?})",
            criu::state(*running)
        )));
    }
    // 3. Read and check it.
    let t = std::time::Instant::now();
    // The large anonymous regions (the state) are left unread here and
    // read by the memory digest in 1 MiB pieces while it hashes them: the
    // tree stays stopped until it is let run, so they are the same bytes.
    let (live, deferred) = match talos_introspect::live::read_deferring(
        pid,
        &talos_introspect::live::Options::default(),
        Some(DEFER_OVER),
    ) {
        Ok(d) => d,
        Err(e) => {
            return Err(kill(format!(
                "the restored process {pid} cannot be read: {e}"
            )));
        }
    };
    times.push(("read-restored", ms(t)));
    let t = std::time::Instant::now();
    let rseq: Vec<u64> = expected.threads.iter().filter_map(|t| t.rseq).collect();
    let exp = Expected {
        memory_root: expected.memory_root,
        rseq_areas: &rseq,
        reference: reference.body(),
        threads: &expected.threads,
    };
    let check = match check_restored(
        &live,
        Some(&deferred),
        &exp,
        resolver,
        &format!("pid:{pid}"),
    ) {
        Ok(c) => c,
        Err(e) => return Err(kill(format!("the check failed: {e}"))),
    };
    if !check.ok() {
        return Err(kill(format!(
            "the restored process is not what was verified: {}",
            check.differences.join("; ")
        )));
    }
    // Still stopped, all of it: what was read is what will run. The
    // read's ptrace detach wakes each thread to take its group stop again
    // (it cannot return to user mode first), so on a loaded host a thread
    // may show 'R' until it is scheduled: wait for the stop, not for the
    // state at one instant. Only a thread that left its group stop, which
    // takes a SIGCONT, never comes back to it.
    let end = std::time::Instant::now() + Duration::from_secs(5);
    while !pids.iter().all(|&q| group_stopped(q)) && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Some(running) = pids.iter().find(|&&q| !group_stopped(q)) {
        return Err(kill(format!(
            "restored process {running} left its stop while it was checked (state {:?})",
            criu::state(*running)
        )));
    }
    times.push(("check-restored", ms(t)));
    let mut notes = check.notes;
    notes.push(format!(
        "memory digest {} equals the verified image's; code equals the reference's; registers of {} thread(s) are the image's",
        check.memory_root,
        expected.threads.len()
    ));
    Ok(Restored { pids, notes, times })
}

/// Let a checked, restored tree run.
///
/// # Errors
/// When a process cannot be continued (then the tree is killed).
pub fn resume(pids: &[u32]) -> Result<()> {
    for &p in pids {
        if let Err(e) = criu::signal(p, nix::sys::signal::Signal::SIGCONT) {
            let _ = criu::kill_all(pids, Duration::from_secs(10));
            return Err(e.context("the launch is recorded, but the restored tree could not be continued and was killed"));
        }
    }
    Ok(())
}

/// Append a refused launch to `STATE_DIR/launch-refusals.jsonl` (one JSON
/// object per line, fsynced).
///
/// # Errors
/// When the journal cannot be written.
pub fn record_refusal(
    state_dir: &Path,
    release: &Release,
    reason: &str,
    detail: &str,
) -> Result<()> {
    let r = release.body();
    let line = serde_json::json!({
        "time": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        "app": r.app.as_str(),
        "epoch": r.epoch,
        "bundle": r.bundle.to_hex(),
        "reason": reason,
        "detail": detail,
    });
    let path = state_dir.join(REFUSALS_FILE);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    writeln!(f, "{line}").with_context(|| format!("{}: cannot write", path.display()))?;
    f.sync_all()
        .with_context(|| format!("{}: cannot sync", path.display()))
}
