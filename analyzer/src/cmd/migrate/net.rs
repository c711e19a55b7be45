//! Network mode: `talos migrate serve` (target), `talos migrate send` and
//! `talos migrate live` (source) run the whole exchange over one TCP
//! connection. The protocol, the checks of the state as it arrives and the
//! gate operations are `talos_evidence::exchange`; this module picks the
//! files, runs CRIU, shows progress and prints verdicts.
//!
//! `live` freezes a running process with `criu dump --leave-stopped`,
//! seals its image directory and streams it; after the target's receipt it
//! commits, kills the frozen tree and sends the release. On a refusal or a
//! lost connection before the commit it aborts and the frozen process
//! continues (nothing was released, so nothing runs twice). `serve
//! --restore-into DIR` verifies the image directory it receives, then on
//! the release restores it stopped, checks it and lets it run
//! (`restore.rs`).

use std::io::{IsTerminal as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use talos_evidence::exchange::{
    self, Limits, Outgoing, Received, Refusal, SourceEnd, SourceRun, SourceSide, Step, TargetSide,
};
use talos_migrate::wire;
use talos_migrate::{AppId, Bundle, Host, Reference, Rejection, Release, TargetEvidence};

use super::restore::{self, keep_verified, record_refusal, restore_and_check};
use super::{Common, DEFAULT_TTL, Verdict, evidence};
use crate::criu::{self, Criu};
use crate::source::ImageDir;

/// `talos migrate serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    /// Address to listen on (`127.0.0.1:0` picks a free port; the address is
    /// printed on standard error).
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// The binary that will be launched (checked against each reference).
    #[arg(long, value_name = "BIN")]
    pub binary: PathBuf,
    /// Directory for received states (default: STATE_DIR/inbox).
    #[arg(long, value_name = "DIR")]
    pub inbox: Option<PathBuf>,
    /// Receive CRIU image directories into DIR and, on the release, restore
    /// them stopped, check the restored process and let it run.
    #[arg(long, value_name = "DIR")]
    pub restore_into: Option<PathBuf>,
    /// The criu binary (default: criu on PATH).
    #[arg(long, value_name = "PATH", requires = "restore_into")]
    pub criu: Option<PathBuf>,
    /// Handle one exchange, then exit with its verdict.
    #[arg(long, conflicts_with = "max")]
    pub once: bool,
    /// Handle at most N exchanges, then exit with the last verdict.
    #[arg(long, value_name = "N")]
    pub max: Option<u64>,
    /// Largest state accepted, bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 30)]
    pub max_state: u64,
    /// Socket timeout, seconds (each read and write).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
    /// Lifetime of the challenges issued, seconds.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TTL)]
    pub ttl: u64,
    /// Extra arguments for `criu restore` (after --).
    #[arg(last = true, value_name = "CRIU_ARGS")]
    pub criu_args: Vec<String>,
}

/// `talos migrate send`.
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    /// The target's `serve` address.
    #[arg(long, value_name = "ADDR")]
    pub to: String,
    /// Application id (must be the reference's).
    #[arg(long, value_name = "ID")]
    pub app: String,
    /// The owner-signed reference.
    #[arg(long, value_name = "FILE")]
    pub reference: PathBuf,
    /// The frozen app: an ELF core or a CRIU image directory; it is also
    /// the state sent.
    #[arg(long, value_name = "DUMP")]
    pub dump: PathBuf,
    /// The reference's binary (default: the file the dump names).
    #[arg(long, value_name = "BIN")]
    pub binary: Option<PathBuf>,
    /// Socket timeout, seconds (each read and write).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
}

/// `talos migrate live`.
#[derive(Debug, clap::Args)]
pub struct LiveArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    /// The running app's process (the root of the tree to move).
    #[arg(long, value_name = "PID")]
    pub pid: u32,
    /// Application id (must be the reference's).
    #[arg(long, value_name = "ID")]
    pub app: String,
    /// The owner-signed reference.
    #[arg(long, value_name = "FILE")]
    pub reference: PathBuf,
    /// The target's `serve --restore-into` address.
    #[arg(long, value_name = "ADDR")]
    pub to: String,
    /// The reference's binary (default: the file the process maps).
    #[arg(long, value_name = "BIN")]
    pub binary: Option<PathBuf>,
    /// The criu binary (default: criu on PATH).
    #[arg(long, value_name = "PATH")]
    pub criu: Option<PathBuf>,
    /// Where the image directory is written (default: STATE_DIR/outbox).
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    /// Socket timeout, seconds (each read and write).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
    /// Extra arguments for `criu dump` (after --), such as --shell-job.
    #[arg(last = true, value_name = "CRIU_ARGS")]
    pub criu_args: Vec<String>,
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s.max(1))
}

/// A verdict from a refusal.
fn refused(name: &str, r: &Refusal) -> Verdict {
    Verdict::rejected(name, r.reason, r.detail.clone()).field("by", r.by.name())
}

/// A byte progress bar on standard error when it is a terminal.
fn bar(total: u64, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    ) {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(what.to_string());
    b
}

// ------------------------------------------------------------------ serve

struct ServeTarget<'a> {
    a: &'a ServeArgs,
    inbox: PathBuf,
    criu: Option<Criu>,
    n: u64,
    tmp: Option<PathBuf>,
    bar: Option<indicatif::ProgressBar>,
    pids: Vec<u32>,
    measured: Option<talos_evidence::state::StateMeasure>,
    times: Vec<(&'static str, u64)>,
    clock: Option<std::time::Instant>,
}

fn ms(since: std::time::Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn times_json(t: &[(&'static str, u64)]) -> serde_json::Value {
    serde_json::Value::Object(
        t.iter()
            .map(|(k, v)| ((*k).to_string(), serde_json::json!(v)))
            .collect(),
    )
}

impl TargetSide for ServeTarget<'_> {
    fn incoming(
        &mut self,
        app: &AppId,
        epoch: u64,
        images: bool,
    ) -> talos_evidence::Result<PathBuf> {
        let dir = match (&self.a.restore_into, images) {
            (Some(_), false) => {
                return Err(talos_evidence::Error::Archive(
                    "this target restores CRIU image directories; the source sent an ELF core"
                        .into(),
                ));
            }
            (Some(d), true) => d.clone(),
            (None, _) => self.inbox.clone(),
        };
        let p = dir.join(format!(
            ".recv-{app}.epoch{epoch}-{}-{}.tmp",
            std::process::id(),
            self.n
        ));
        self.tmp = Some(p.clone());
        self.bar = Some(bar(0, "receiving"));
        self.clock = Some(std::time::Instant::now());
        Ok(p)
    }

    fn progress(&mut self, received: u64) {
        if let Some(b) = &self.bar {
            b.set_length(received);
            b.set_position(received);
        }
    }

    fn evidence(&mut self, state: &Received) -> talos_evidence::Result<TargetEvidence> {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if let Some(c) = self.clock.take() {
            self.times.push(("receive", ms(c)));
        }
        let t = std::time::Instant::now();
        let (ev, _note, measured) = evidence::target_findings(&self.a.binary, state.path())
            .map_err(|e| talos_evidence::Error::Unsupported(format!("{e:#}")))?;
        self.times.push(("measure", ms(t)));
        self.measured = measured;
        Ok(ev)
    }

    fn verified(
        &mut self,
        bundle: &Bundle,
        reference: &Reference,
        state: &Received,
    ) -> talos_evidence::Result<Received> {
        let b = bundle.body();
        let parent = state.path().parent().unwrap_or(Path::new("."));
        let kept = match state {
            Received::Core(_) => parent.join(format!("{}.epoch{}.core", b.app, b.epoch)),
            Received::Images(_) => parent.join(format!("{}.epoch{}", b.app, b.epoch)),
        };
        let io = |what: &'static str| {
            move |e: std::io::Error| talos_evidence::Error::Io {
                path: kept_display(state),
                what,
                source: e,
            }
        };
        std::fs::rename(state.path(), &kept).map_err(io("keeping the state"))?;
        keep_verified(self.a.common.state_dir.as_path(), bundle, reference)
            .map_err(|e| talos_evidence::Error::Unsupported(format!("{e:#}")))?;
        Ok(match state {
            Received::Core(_) => Received::Core(kept),
            Received::Images(_) => Received::Images(kept),
        })
    }

    fn launch(
        &mut self,
        host: &Host,
        release: &Release,
        state: &Received,
    ) -> talos_evidence::Result<Step<String>> {
        let unsupported = |e: anyhow::Error| talos_evidence::Error::Unsupported(format!("{e:#}"));
        let r = match (&self.criu, state) {
            (Some(criu), Received::Images(dir)) => {
                let (bundle, reference) =
                    restore::load_verified(host.dir(), release).map_err(unsupported)?;
                // This exchange verified the directory a moment ago (into a
                // directory only this host writes): its expectations are
                // the verified ones; the restored process is checked
                // against them whatever the files say now.
                let measured = self.measured.as_ref().ok_or_else(|| {
                    talos_evidence::Error::Unsupported("the received state was not measured".into())
                })?;
                if measured.measurement != bundle.body().state {
                    return Err(talos_evidence::Error::Unsupported(
                        "the state measured at verify is not the bundle's".into(),
                    ));
                }
                let expected = restore::expectations(dir, measured).map_err(unsupported)?;
                let resolver = crate::cmd::introspect::resolver(
                    None,
                    std::slice::from_ref(&self.a.binary),
                    None,
                )
                .map_err(unsupported)?;
                let mut restored = None;
                let r = host.launch_with(release, |_| {
                    let x = restore_and_check(
                        criu,
                        dir,
                        &self.a.criu_args,
                        &expected,
                        &reference,
                        &resolver,
                    )?;
                    restored = Some(x);
                    Ok(())
                });
                if r.is_err()
                    && let Some(x) = &restored
                {
                    // The check passed but the ledger could not record it.
                    let _ = criu::kill_all(&x.pids, Duration::from_secs(10));
                }
                r.map(|l| (l, restored))
            }
            _ => host.launch(release).map(|l| (l, None)),
        };
        match r {
            Ok((l, restored)) => {
                let mut detail = format!(
                    "{} verified, released and launched here at epoch {}; its state is {}",
                    l.app,
                    l.epoch,
                    state.path().display()
                );
                if let Some(x) = restored {
                    self.times.extend(x.times.iter().copied());
                    restore::resume(&x.pids)
                        .map_err(|e| talos_evidence::Error::Unsupported(format!("{e:#}")))?;
                    detail = format!(
                        "{} restored from {}, checked and running as {:?} at epoch {}",
                        l.app,
                        state.path().display(),
                        x.pids,
                        l.epoch
                    );
                    self.pids = x.pids;
                }
                Ok(Ok(detail))
            }
            Err(e) => match e.rejection() {
                Some(reason) => {
                    let detail = match &e {
                        talos_migrate::Error::Rejected { detail, .. } => detail.clone(),
                        other => other.to_string(),
                    };
                    if reason == Rejection::LaunchMismatch {
                        let _ = record_refusal(host.dir(), release, reason.code(), &detail);
                    }
                    Ok(Err(Refusal {
                        reason,
                        by: exchange::By::ThisHost,
                        detail,
                    }))
                }
                None => Err(talos_evidence::Error::Migrate(e)),
            },
        }
    }
}

fn kept_display(state: &Received) -> String {
    state.path().display().to_string()
}

/// Run `talos migrate serve`.
///
/// # Errors
/// Unusable state directory, address or CRIU.
pub fn serve(a: &ServeArgs) -> Result<Verdict> {
    let host = a.common.host()?;
    let inbox = a.inbox.clone().unwrap_or_else(|| host.dir().join("inbox"));
    std::fs::create_dir_all(&inbox)
        .with_context(|| format!("{}: cannot create inbox", inbox.display()))?;
    let criu = match &a.restore_into {
        Some(d) => {
            std::fs::create_dir_all(d)
                .with_context(|| format!("{}: cannot create", d.display()))?;
            Some(Criu::find(a.criu.as_deref())?)
        }
        None => None,
    };
    let listener =
        TcpListener::bind(&a.listen).with_context(|| format!("--listen {}", a.listen))?;
    let addr = listener.local_addr().context("listening socket")?;
    {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "talos: listening on {addr}");
        let _ = e.flush();
    }
    let limit = if a.once { Some(1) } else { a.max };
    let limits = Limits {
        timeout: secs(a.timeout),
        max_state: a.max_state,
        state_deadline: secs(a.timeout).saturating_mul(60),
    };
    let mut n: u64 = 0;
    loop {
        let (mut stream, peer) = listener.accept().context("accepting a connection")?;
        n = n.saturating_add(1);
        let mut side = ServeTarget {
            a,
            inbox: inbox.clone(),
            criu: criu.clone(),
            n,
            tmp: None,
            bar: None,
            pids: Vec::new(),
            measured: None,
            times: Vec::new(),
            clock: None,
        };
        let r = wire::configure(&stream, secs(a.timeout))
            .map_err(talos_evidence::Error::Migrate)
            .and_then(|()| {
                exchange::target_exchange(
                    &mut stream,
                    &host,
                    &limits,
                    a.common.now(),
                    a.ttl,
                    &mut side,
                )
            });
        if let Some(b) = side.bar.take() {
            b.finish_and_clear();
        }
        let v = match r {
            Ok(Ok(l)) => {
                let mut v = Verdict::accepted("serve", l.detail)
                    .field("app", l.app.as_str())
                    .field("epoch", l.epoch)
                    .field("bundle", l.bundle.to_hex())
                    .field("source", l.source.to_string())
                    .field("state-bytes", l.state_bytes)
                    .field(
                        match l.state {
                            Received::Core(_) => "state-file",
                            Received::Images(_) => "state-dir",
                        },
                        l.state.path().display().to_string(),
                    );
                if !side.pids.is_empty() {
                    v = v.field("pids", serde_json::json!(side.pids));
                }
                v = v.field("times-ms", times_json(&side.times));
                Ok(v.field("peer", peer.to_string()))
            }
            Ok(Err(r)) => Ok(refused("serve", &r).field("peer", peer.to_string())),
            Err(e) => {
                if let Some(t) = &side.tmp {
                    let _ = std::fs::remove_file(t);
                    let _ = std::fs::remove_dir_all(t);
                }
                Err(anyhow::Error::new(e))
            }
        };
        match v {
            Ok(v) if limit == Some(n) => return Ok(v),
            Ok(v) => {
                // The last exchange is recorded by `run` with the others.
                super::record_in(&a.common, None, &v);
                v.print(a.common.format)?;
            }
            Err(e) if limit == Some(n) => return Err(e.context(format!("exchange with {peer}"))),
            Err(e) => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "talos: exchange with {peer}: {e:#}");
            }
        }
    }
}

// ------------------------------------------------------------------- send

struct Quiet {
    bar: indicatif::ProgressBar,
}

impl SourceSide for Quiet {
    fn released(&mut self, _release: &Release) -> talos_evidence::Result<()> {
        Ok(())
    }
    fn progress(&mut self, sent: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(sent);
    }
}

/// The reference file, checked to be for `app`.
fn reference_for(name: &str, app: &AppId, path: &Path) -> Result<Result<Reference, Verdict>> {
    let reference: Reference = match super::read_message(name, path)? {
        Ok(r) => r,
        Err(v) => return Ok(Err(v)),
    };
    if reference.body().app != *app {
        return Ok(Err(Verdict::rejected(
            name,
            Rejection::Malformed,
            format!(
                "{}: the reference is for {}, not {app}",
                path.display(),
                reference.body().app
            ),
        )));
    }
    Ok(Ok(reference))
}

/// The verdict of a finished source exchange.
fn source_verdict(name: &str, run: SourceRun, found: &evidence::SealFindings) -> Verdict {
    let why = &found.why;
    match (run.end, run.committed) {
        (SourceEnd::Launched, Some(release)) => {
            let b = release.body();
            Verdict::accepted(
                name,
                format!(
                    "{} migrated to {} at epoch {} and launched there",
                    b.app,
                    b.target.id().short(),
                    b.epoch
                ),
            )
            .field("app", b.app.as_str())
            .field("epoch", b.epoch)
            .field("bundle", b.bundle.to_hex())
            .field("target", b.target.to_string())
            .field("state-bytes", run.sent)
        }
        (SourceEnd::Refused(r), committed) => {
            let mut v = refused(name, &r);
            if run.bundle.is_none() && r.by == exchange::By::ThisHost {
                // The seal refused: what the code and flow checks found.
                v = v
                    .field("code", found.code_line.clone())
                    .field("flow", found.flow_line.clone());
                if !why.is_empty() {
                    v = v.field(
                        "evidence",
                        serde_json::Value::Array(
                            why.iter().map(|w| serde_json::json!(w)).collect(),
                        ),
                    );
                }
            }
            if committed.is_some() {
                v = v.field(
                    "hint",
                    "the app migrated away from here; talos migrate resend gives the release again",
                );
            }
            v
        }
        (SourceEnd::Lost(e), Some(_)) => Verdict::rejected(
            name,
            Rejection::Malformed,
            format!(
                "released, but the connection was lost: {e} (talos migrate resend gives the release again)"
            ),
        ),
        (SourceEnd::Lost(e), None) => {
            Verdict::rejected(name, Rejection::Malformed, format!("connection lost: {e}"))
        }
        (SourceEnd::Launched, None) => {
            Verdict::rejected(name, Rejection::Malformed, "ended without a release")
        }
    }
}

/// Run `talos migrate send`.
///
/// # Errors
/// Unusable input, network failures before the exchange.
pub fn send(a: &SendArgs) -> Result<Verdict> {
    let name = "send";
    let host = a.common.host()?;
    let app = super::app_id(&a.app)?;
    let reference = super::verdict!(reference_for(name, &app, &a.reference)?);
    let found = evidence::seal_evidence(&a.dump, a.binary.as_deref(), &reference)?;
    let mut s =
        wire::connect(a.to.as_str(), secs(a.timeout)).with_context(|| format!("--to {}", a.to))?;
    let mut side = Quiet {
        bar: bar(0, "sending"),
    };
    // The state: the image directory packed, or the core file as it is.
    // Declared here, assigned in one branch, so that the reader outlives it.
    let (dir, files, mut pack, mut file, mut chunks);
    let state = if a.dump.is_dir() {
        dir = ImageDir::open(&a.dump)?;
        files = dir.files().collect::<Vec<(&str, &[u8])>>();
        pack = talos_evidence::archive::Packer::new(&files)?;
        let len = pack.len();
        Outgoing {
            reader: &mut pack,
            len,
        }
    } else {
        file = std::fs::File::open(&a.dump)
            .with_context(|| format!("{}: cannot open", a.dump.display()))?;
        // The length is announced before the bytes: an unknown one is an
        // error, never an empty state.
        let len = file
            .metadata()
            .with_context(|| format!("{}: cannot read its size", a.dump.display()))?
            .len();
        chunks = talos_evidence::exchange::ReadChunks(&mut file);
        Outgoing {
            reader: &mut chunks,
            len,
        }
    };
    let seal = sealing(&host, &app, &reference, &found.evidence, &a.common);
    let run = exchange::source_exchange(&mut s, &seal, state, &mut side)?;
    side.bar.finish_and_clear();
    Ok(source_verdict(name, run, &found))
}

/// What a source seals its state with, now: the same for a dump sent
/// (`send`) and a tree frozen here (`move`).
fn sealing<'a>(
    host: &'a Host,
    app: &'a AppId,
    reference: &'a Reference,
    evidence: &'a talos_migrate::SealEvidence,
    common: &Common,
) -> exchange::Sealing<'a> {
    exchange::Sealing {
        host,
        app,
        reference,
        evidence,
        now: common.now(),
    }
}

// ------------------------------------------------------------------- live

/// The frozen source tree: killed on the release.
struct Frozen {
    pids: Vec<u32>,
    bar: indicatif::ProgressBar,
    stream: Option<(std::time::Instant, u64)>,
    kill_ms: u64,
}

impl SourceSide for Frozen {
    fn released(&mut self, _release: &Release) -> talos_evidence::Result<()> {
        let t = std::time::Instant::now();
        let left = criu::kill_all(&self.pids, Duration::from_secs(10));
        self.kill_ms = ms(t);
        if left.is_empty() {
            Ok(())
        } else {
            Err(talos_evidence::Error::Unsupported(format!(
                "released, but processes {left:?} of the frozen tree are still present"
            )))
        }
    }
    fn progress(&mut self, sent: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(sent);
        match &mut self.stream {
            None => self.stream = Some((std::time::Instant::now(), 0)),
            Some((start, done)) => *done = ms(*start),
        }
    }
}

/// Run `talos migrate live`.
///
/// # Errors
/// Unusable input, CRIU missing or failing, network failures before the
/// app was frozen.
pub fn live(a: &LiveArgs) -> Result<Verdict> {
    let name = "live";
    let host = a.common.host()?;
    let app = super::app_id(&a.app)?;
    let reference = super::verdict!(reference_for(name, &app, &a.reference)?);
    // The gate's status first: an app that may not be sealed here is
    // refused before its process is touched (the gate gives the reason).
    let status = host.status()?.status_of(&app).clone();
    if !status.may_run() {
        let reason = match status {
            talos_migrate::Status::Frozen(_) => Rejection::AppFrozen,
            talos_migrate::Status::MigratedAway(_) => Rejection::MigratedAway,
            _ => Rejection::NoRelease,
        };
        return Ok(Verdict::rejected(
            name,
            reason,
            format!(
                "{app} does not run on this host (status {}): nothing was frozen",
                status.name()
            ),
        )
        .field("by", "this host"));
    }
    // `criu check` runs only to explain a failing dump (a tenth of a
    // second of the freeze otherwise).
    let criu = Criu::locate(a.criu.as_deref())?;
    if criu::state(a.pid).is_none() {
        bail!("process {}: no such process", a.pid);
    }
    let outbox = a
        .images
        .clone()
        .unwrap_or_else(|| host.dir().join("outbox"));
    std::fs::create_dir_all(&outbox)
        .with_context(|| format!("{}: cannot create", outbox.display()))?;
    let dir = outbox.join(format!(
        "{app}.{}.{}",
        a.pid,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    // The tree is listed before the freeze: if it cannot be, nothing is
    // frozen that could not be resumed.
    let pids = criu::tree(a.pid).map_err(|e| anyhow::anyhow!("process {}: {e}", a.pid))?;
    let mut times: Vec<(&'static str, u64)> = Vec::new();
    // The freeze.
    let t = std::time::Instant::now();
    criu.dump(a.pid, &dir, &a.criu_args)?;
    times.push(("freeze", ms(t)));
    let resume = |why: &str| -> Result<()> {
        for &p in &pids {
            criu::signal(p, nix::sys::signal::Signal::SIGCONT)
                .with_context(|| format!("{why}; resuming the frozen process"))?;
        }
        Ok(())
    };
    let t = std::time::Instant::now();
    let found = match evidence::seal_evidence(&dir, a.binary.as_deref(), &reference) {
        Ok(f) => f,
        Err(e) => {
            resume("the frozen state could not be measured")?;
            return Err(e.context("the app was resumed here"));
        }
    };
    times.push(("seal", ms(t)));
    let t = std::time::Instant::now();
    let run = (|| -> Result<(SourceRun, u64, u64)> {
        let images = ImageDir::open(&dir)?;
        let files: Vec<(&str, &[u8])> = images.files().collect();
        let mut pack = talos_evidence::archive::Packer::new(&files)?;
        let len = pack.len();
        let mut s = wire::connect(a.to.as_str(), secs(a.timeout))
            .with_context(|| format!("--to {}", a.to))?;
        let mut side = Frozen {
            pids: pids.clone(),
            bar: bar(len, "sending"),
            stream: None,
            kill_ms: 0,
        };
        let run = exchange::source_exchange(
            &mut s,
            &sealing(&host, &app, &reference, &found.evidence, &a.common),
            Outgoing {
                reader: &mut pack,
                len,
            },
            &mut side,
        )?;
        side.bar.finish_and_clear();
        Ok((run, side.stream.map_or(0, |s| s.1), side.kill_ms))
    })();
    let run = match run {
        Ok((r, stream_ms, kill_ms)) => {
            times.push(("stream", stream_ms));
            times.push(("kill-source", kill_ms));
            r
        }
        Err(e) => {
            // Nothing was committed: abort (if sealed) and resume.
            let aborted = host.abort(&app);
            resume("the exchange failed")?;
            aborted.context("aborting the frozen app")?;
            return Err(e.context("nothing was released: the app was resumed here"));
        }
    };
    if run.committed.is_none() {
        // Refused or lost before the commit: no release exists, so the
        // app may run here again; the target never runs it.
        let aborted = if run.bundle.is_some() {
            host.abort(&app).map(|_| ())
        } else {
            Ok(())
        };
        resume("the migration was refused")?;
        aborted.context("aborting the frozen app")?;
        let mut v = source_verdict(name, run, &found).field("resumed", serde_json::json!(pids));
        v.summary = format!("{} (the app was resumed here)", v.summary);
        return Ok(v);
    }
    times.push(("exchange", ms(t)));
    let done = matches!(run.end, SourceEnd::Launched);
    let v = source_verdict(name, run, &found)
        .field("times-ms", times_json(&times))
        .field("images", dir.display().to_string())
        .field("criu", format!("{} {}", criu.path.display(), criu.version));
    if done {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(v)
}
