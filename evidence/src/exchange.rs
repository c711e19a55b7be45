//! The network exchange of `talos migrate send`/`live` (source) and
//! `serve` (target), over any `Read + Write` (a TCP stream in practice),
//! in `talos_migrate::wire` frames:
//!
//! ```text
//! source                                 target
//! hello                     ─────────►
//!                           ◄─────────   hello
//! message: reference        ─────────►   challenge for the reference's app
//!                           ◄─────────   message: challenge
//! seal
//! message: bundle, state chunks, end ─►  verify (binary, CFG, received state)
//!                           ◄─────────   message: receipt   | verdict: reason
//! commit; stop the source for good
//! message: release          ─────────►   launch (restore and check, then run)
//!                           ◄─────────   verdict: accepted  | verdict: reason
//! ```
//!
//! Either side answers a refusal with a verdict frame holding the reason
//! and stops. The state is an ELF core or a CRIU image stream
//! ([`crate::archive`]), told apart by its first bytes, received within a
//! size limit and a deadline and checked as it arrives. The drivers
//! ([`source_exchange`], [`target_exchange`]) run the gate operations on a
//! [`Host`]; what is specific to a deployment (where states go, how the
//! app is stopped, restored and checked) comes through [`SourceSide`] and
//! [`TargetSide`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use talos_migrate::wire::{self, FrameKind};
use talos_migrate::{
    AppId, Bundle, Challenge, Digest, Host, PublicKey, Receipt, Reference, Rejection, Release,
    Role, SealEvidence, TargetEvidence,
};

use crate::archive::{self, Unpacker};
use crate::error::{Error, Result};

/// Who refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// This host's gate (the reason was sent to the peer).
    ThisHost,
    /// The peer (its verdict frame).
    Peer,
}

impl By {
    /// `this host` or `peer`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            By::ThisHost => "this host",
            By::Peer => "peer",
        }
    }
}

/// A refusal: one reason, who gave it, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The stable reason.
    pub reason: Rejection,
    /// Who refused.
    pub by: By,
    /// Why, for people.
    pub detail: String,
}

/// A step that completes, or a refusal.
pub type Step<T> = std::result::Result<T, Refusal>;

/// Bounds of one exchange.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Timeout of each socket read and write (set by the caller on the
    /// socket; also the base of the state deadline).
    pub timeout: Duration,
    /// Largest state accepted, bytes.
    pub max_state: u64,
    /// How long receiving the whole state may take.
    pub state_deadline: Duration,
}

/// A gate result: a rejection is sent to the peer and becomes a refusal;
/// any other error stays an error.
fn gate<S: Write, T>(s: &mut S, r: talos_migrate::Result<T>) -> Result<Step<T>> {
    match r {
        Ok(t) => Ok(Ok(t)),
        Err(e) => match e.rejection() {
            Some(reason) => {
                let _ = wire::write_frame(s, FrameKind::Verdict, reason.code().as_bytes());
                let detail = match &e {
                    talos_migrate::Error::Rejected { detail, .. } => detail.clone(),
                    other => other.to_string(),
                };
                Ok(Err(Refusal {
                    reason,
                    by: By::ThisHost,
                    detail,
                }))
            }
            None => Err(Error::Migrate(e)),
        },
    }
}

/// Refuse with `reason`: tell the peer, return the refusal.
fn refuse<S: Write, T>(s: &mut S, reason: Rejection, detail: String) -> Step<T> {
    let _ = wire::write_frame(s, FrameKind::Verdict, reason.code().as_bytes());
    Err(Refusal {
        reason,
        by: By::ThisHost,
        detail,
    })
}

/// The reason a peer's verdict frame names (`malformed` for codes this
/// talos does not know).
#[must_use]
pub fn reason_from_peer(code: &str) -> Rejection {
    Rejection::from_code(code).unwrap_or(Rejection::Malformed)
}

/// The next message frame, or the verdict the peer sent instead.
fn next_message<S: Read + Write>(s: &mut S) -> Result<Step<Vec<u8>>> {
    let r = wire::read_frame(s, wire::MAX_CONTROL_FRAME);
    let f = match gate(s, r)? {
        Ok(f) => f,
        Err(v) => return Ok(Err(v)),
    };
    match f.kind {
        FrameKind::Message => Ok(Ok(f.payload)),
        FrameKind::Verdict => {
            let code = String::from_utf8_lossy(&f.payload).into_owned();
            Ok(Err(Refusal {
                reason: reason_from_peer(&code),
                by: By::Peer,
                detail: format!("the peer refused: {code}"),
            }))
        }
        other => Ok(refuse(
            s,
            Rejection::Malformed,
            format!("expected a message frame, got {}", other.name()),
        )),
    }
}

/// Early return of a refusal.
macro_rules! step {
    ($e:expr) => {
        match $e {
            Ok(t) => t,
            Err(r) => return Ok(Err(r)),
        }
    };
}

// ---------------------------------------------------------------- source

/// What the source side supplies.
pub trait SourceSide {
    /// The app was committed (released to the target): stop it for good,
    /// before the release is sent, so it never runs in two places.
    ///
    /// # Errors
    /// When the app cannot be stopped; the release is then not sent.
    fn released(&mut self, release: &Release) -> Result<()>;
    /// Bytes of state sent so far, of `total`.
    fn progress(&mut self, _sent: u64, _total: u64) {}
}

/// How a source exchange ended.
#[derive(Debug)]
pub enum SourceEnd {
    /// The target launched the app.
    Launched,
    /// One side refused.
    Refused(Refusal),
    /// The connection failed (timeout, closed, network error).
    Lost(Error),
}

/// A source exchange: how it ended, and the release if the app was
/// committed (then it migrated away for good: the caller must not resume
/// it; a lost release is sent again with `talos migrate resend`).
#[derive(Debug)]
pub struct SourceRun {
    /// How it ended.
    pub end: SourceEnd,
    /// The bundle sealed, if any.
    pub bundle: Option<Bundle>,
    /// The release, once committed.
    pub committed: Option<Release>,
    /// State bytes sent.
    pub sent: u64,
}

/// What the source seals with: the gate, the app, its reference, what the
/// source found in the frozen app, and the time.
#[derive(Debug, Clone, Copy)]
pub struct Sealing<'a> {
    /// The source's gate.
    pub host: &'a Host,
    /// The app.
    pub app: &'a AppId,
    /// Its owner-signed reference.
    pub reference: &'a Reference,
    /// The evidence of the frozen app.
    pub evidence: &'a SealEvidence,
    /// Seconds since the Unix epoch.
    pub now: u64,
}

/// The state a source sends: a reader of exactly `len` bytes.
pub struct Outgoing<'r> {
    /// The bytes.
    pub reader: &'r mut dyn Chunks,
    /// How many.
    pub len: u64,
}

/// A state to stream, piece by piece: each piece is one state chunk frame.
pub trait Chunks {
    /// The next piece, at most `buf.len()` bytes: borrowed from the state
    /// itself when it is in memory (an image directory's mapped files:
    /// no copy before the socket), else read into `buf`. Empty at the end.
    ///
    /// # Errors
    /// When the state cannot be read.
    fn next_chunk<'b>(&'b mut self, buf: &'b mut [u8]) -> std::io::Result<&'b [u8]>;
}

/// Any reader as [`Chunks`] (each piece is one `read` into the buffer).
pub struct ReadChunks<'r>(pub &'r mut dyn Read);

impl Chunks for ReadChunks<'_> {
    fn next_chunk<'b>(&'b mut self, buf: &'b mut [u8]) -> std::io::Result<&'b [u8]> {
        loop {
            match self.0.read(buf) {
                Ok(n) => return Ok(buf.get(..n).unwrap_or(&[])),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Run the source side of one exchange on `s` (already connected, with
/// timeouts set): `evidence` is what the source found in the frozen app,
/// `state` the state it froze.
///
/// # Errors
/// Local failures before anything was committed (the ledger cannot be
/// read or written); network failures are [`SourceEnd::Lost`].
pub fn source_exchange<S: Read + Write>(
    s: &mut S,
    seal: &Sealing<'_>,
    state: Outgoing<'_>,
    side: &mut dyn SourceSide,
) -> Result<SourceRun> {
    let mut run = SourceRun {
        end: SourceEnd::Launched,
        bundle: None,
        committed: None,
        sent: 0,
    };
    match source_steps(s, seal, state, side, &mut run) {
        Ok(Ok(())) => {}
        Ok(Err(r)) => run.end = SourceEnd::Refused(r),
        Err(Error::Migrate(e)) if e.rejection().is_none() && is_net(&e) => {
            run.end = SourceEnd::Lost(Error::Migrate(e));
        }
        Err(e) if run.committed.is_some() || run.bundle.is_some() => run.end = SourceEnd::Lost(e),
        Err(e) => return Err(e),
    }
    Ok(run)
}

fn is_net(e: &talos_migrate::Error) -> bool {
    matches!(
        e,
        talos_migrate::Error::Timeout(_)
            | talos_migrate::Error::ConnectionClosed(_)
            | talos_migrate::Error::Net { .. }
            | talos_migrate::Error::UnexpectedFrame { .. }
    )
}

fn source_steps<S: Read + Write>(
    s: &mut S,
    seal: &Sealing<'_>,
    state: Outgoing<'_>,
    side: &mut dyn SourceSide,
    run: &mut SourceRun,
) -> Result<Step<()>> {
    let Sealing {
        host,
        app,
        reference,
        evidence,
        now,
    } = *seal;
    wire::send_hello(s)?;
    let r = wire::expect_hello(s);
    step!(gate(s, r)?);
    wire::write_frame(s, FrameKind::Message, &reference.encode())?;
    let bytes = step!(next_message(s)?);
    let challenge: Challenge = step!(gate(s, Challenge::decode(&bytes))?);
    let sealed = host.seal(app, reference, evidence, &challenge, now);
    let bundle = step!(gate(s, sealed)?);
    run.bundle = Some(bundle.clone());
    wire::write_frame(s, FrameKind::Message, &bundle.encode())?;
    run.sent = send_state(s, state.reader, state.len, side)?;
    let bytes = step!(next_message(s)?);
    let receipt: Receipt = step!(gate(s, Receipt::decode(&bytes))?);
    let release = step!(gate(s, host.commit(&receipt))?);
    run.committed = Some(release.clone());
    side.released(&release)?;
    wire::write_frame(s, FrameKind::Message, &release.encode())?;
    let fr = wire::expect_frame(s, FrameKind::Verdict)?;
    let code = String::from_utf8_lossy(&fr).into_owned();
    if code != "accepted" {
        return Ok(Err(Refusal {
            reason: reason_from_peer(&code),
            by: By::Peer,
            detail: format!("the target refused the release: {code}"),
        }));
    }
    Ok(Ok(()))
}

/// Stream `total` bytes of `r` as state chunks and the end frame.
fn send_state<S: Write>(
    s: &mut S,
    r: &mut dyn Chunks,
    total: u64,
    side: &mut dyn SourceSide,
) -> Result<u64> {
    let mut buf = vec![0u8; wire::MAX_CHUNK];
    let mut sent = 0u64;
    loop {
        let chunk = r
            .next_chunk(&mut buf)
            .map_err(|e| Error::io("state", "reading", e))?;
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        wire::write_frame(s, FrameKind::StateChunk, chunk)?;
        sent = sent.saturating_add(n as u64);
        side.progress(sent, total);
    }
    wire::write_frame(s, FrameKind::StateEnd, &sent.to_be_bytes())?;
    s.flush()
        .map_err(|e| Error::io("connection", "flushing", e))?;
    Ok(sent)
}

// ---------------------------------------------------------------- target

/// A state received and kept on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// An ELF core file.
    Core(PathBuf),
    /// A CRIU image directory.
    Images(PathBuf),
}

impl Received {
    /// The file or directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        match self {
            Received::Core(p) | Received::Images(p) => p,
        }
    }
}

/// What the target side supplies.
pub trait TargetSide {
    /// Where to receive a state of `app` at `epoch`: a path that does not
    /// exist yet (a file for a core, a directory for images).
    ///
    /// # Errors
    /// When no such path can be chosen.
    fn incoming(&mut self, app: &AppId, epoch: u64, images: bool) -> Result<PathBuf>;
    /// The evidence of the binary to launch and of the state received.
    ///
    /// # Errors
    /// When the binary cannot be measured or the state read.
    fn evidence(&mut self, state: &Received) -> Result<TargetEvidence>;
    /// The bundle was verified: keep what launch needs (the state, the
    /// bundle, the reference), before the receipt is sent. Returns where
    /// the state is kept.
    ///
    /// # Errors
    /// When they cannot be kept.
    fn verified(
        &mut self,
        bundle: &Bundle,
        reference: &Reference,
        state: &Received,
    ) -> Result<Received>;
    /// Launch on `release`: the gate's `launch` (or `launch_with` a check
    /// of the restored app), then let it run. `Ok(Ok(detail))` when it
    /// runs, `Ok(Err(refusal))` when the gate or the check refused.
    ///
    /// # Errors
    /// Local failures (ledger I/O).
    fn launch(&mut self, host: &Host, release: &Release, state: &Received) -> Result<Step<String>>;
    /// Bytes of state received so far.
    fn progress(&mut self, _received: u64) {}
}

/// A target exchange that ended with a launch.
#[derive(Debug, Clone)]
pub struct Launched {
    /// The app.
    pub app: AppId,
    /// Its epoch.
    pub epoch: u64,
    /// The bundle launched.
    pub bundle: Digest,
    /// The source that released it.
    pub source: PublicKey,
    /// The state it started from.
    pub state: Received,
    /// Bytes of state received.
    pub state_bytes: u64,
    /// What the launch did, for people.
    pub detail: String,
}

/// Run the target side of one exchange on `s` (timeouts set).
///
/// # Errors
/// Local failures and network failures; a refusal by either side is
/// `Ok(Err(refusal))`.
pub fn target_exchange<S: Read + Write>(
    s: &mut S,
    host: &Host,
    limits: &Limits,
    now: u64,
    ttl: u64,
    side: &mut dyn TargetSide,
) -> Result<Step<Launched>> {
    let r = wire::expect_hello(s);
    step!(gate(s, r)?);
    wire::send_hello(s)?;
    let bytes = step!(next_message(s)?);
    let reference: Reference = step!(gate(s, Reference::decode(&bytes))?);
    // Only a reference from a pinned owner earns a challenge (so strangers
    // cannot fill the pending list).
    if !host.status()?.is_trusted(Role::Owner, reference.signer()) {
        return Ok(refuse(
            s,
            Rejection::UntrustedKey,
            format!(
                "reference signed by {}, which is not pinned as owner here",
                reference.signer().id().short()
            ),
        ));
    }
    step!(gate(s, reference.verify_signature())?);
    let app = reference.body().app.clone();
    let challenge = host.challenge(&app, now, ttl)?;
    wire::write_frame(s, FrameKind::Message, &challenge.encode())?;
    let bytes = step!(next_message(s)?);
    let bundle: Bundle = step!(gate(s, Bundle::decode(&bytes))?);
    let epoch = bundle.body().epoch;
    let deadline = Instant::now() + limits.state_deadline;
    let (state, len) = step!(recv_state(s, &app, epoch, limits, deadline, side)?);
    let result = (|| -> Result<Step<Receipt>> {
        let ev = side.evidence(&state)?;
        gate(s, host.verify(&bundle, &reference, &ev, now))
    })();
    let receipt = match result {
        Ok(Ok(r)) => r,
        Ok(Err(v)) => {
            remove(&state);
            return Ok(Err(v));
        }
        Err(e) => {
            remove(&state);
            let _ = wire::write_frame(s, FrameKind::Verdict, b"error");
            return Err(e);
        }
    };
    let state = match side.verified(&bundle, &reference, &state) {
        Ok(kept) => kept,
        Err(e) => {
            remove(&state);
            let _ = wire::write_frame(s, FrameKind::Verdict, b"error");
            return Err(e);
        }
    };
    wire::write_frame(s, FrameKind::Message, &receipt.encode())?;
    let bytes = step!(next_message(s)?);
    let release: Release = step!(gate(s, Release::decode(&bytes))?);
    let detail = match side.launch(host, &release, &state)? {
        Ok(d) => d,
        Err(r) => {
            let _ = wire::write_frame(s, FrameKind::Verdict, r.reason.code().as_bytes());
            return Ok(Err(r));
        }
    };
    wire::write_frame(s, FrameKind::Verdict, b"accepted")?;
    let r = release.body();
    Ok(Ok(Launched {
        app: r.app.clone(),
        epoch: r.epoch,
        bundle: r.bundle,
        source: *release.signer(),
        state,
        state_bytes: len,
        detail,
    }))
}

fn remove(state: &Received) {
    match state {
        Received::Core(p) => {
            let _ = std::fs::remove_file(p);
        }
        Received::Images(d) => {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Where a state being received goes.
enum Sink {
    /// Waiting for the first bytes to tell a core from images.
    Undecided(Vec<u8>),
    Core(PathBuf, std::io::BufWriter<std::fs::File>),
    Images(Box<Unpacker>),
}

/// Receive the state: chunks until the end frame, within the size limit
/// and the deadline; a malformed stream is refused (`malformed`) and what
/// was written is removed.
fn recv_state<S: Read + Write>(
    s: &mut S,
    app: &AppId,
    epoch: u64,
    limits: &Limits,
    deadline: Instant,
    side: &mut dyn TargetSide,
) -> Result<Step<(Received, u64)>> {
    let mut sink = Sink::Undecided(Vec::new());
    let r = recv_loop(s, app, epoch, limits, deadline, side, &mut sink);
    let cleanup = |sink: Sink| match sink {
        Sink::Undecided(_) => {}
        Sink::Core(p, _) => {
            let _ = std::fs::remove_file(p);
        }
        Sink::Images(u) => {
            let _ = std::fs::remove_dir_all(u.dir());
        }
    };
    match r {
        Ok(Ok(total)) => match sink {
            Sink::Core(p, w) => {
                let f = w
                    .into_inner()
                    .map_err(|e| Error::io(p.display().to_string(), "writing", e.into_error()))?;
                f.sync_all()
                    .map_err(|e| Error::io(p.display().to_string(), "syncing", e))?;
                Ok(Ok((Received::Core(p), total)))
            }
            Sink::Images(u) => {
                let dir = u.dir().to_path_buf();
                match u.finish() {
                    Ok(d) => Ok(Ok((Received::Images(d), total))),
                    Err(e) => {
                        let _ = std::fs::remove_dir_all(&dir);
                        Ok(refuse(s, Rejection::Malformed, e.to_string()))
                    }
                }
            }
            Sink::Undecided(_) => Ok(refuse(
                s,
                Rejection::Malformed,
                "the state is shorter than any dump".into(),
            )),
        },
        Ok(Err(v)) => {
            cleanup(sink);
            Ok(Err(v))
        }
        Err(e) => {
            cleanup(sink);
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn recv_loop<S: Read + Write>(
    s: &mut S,
    app: &AppId,
    epoch: u64,
    limits: &Limits,
    deadline: Instant,
    side: &mut dyn TargetSide,
    sink: &mut Sink,
) -> Result<Step<u64>> {
    let mut total: u64 = 0;
    let mut payload: Vec<u8> = Vec::with_capacity(wire::MAX_CHUNK);
    loop {
        if Instant::now() >= deadline {
            return Ok(refuse(
                s,
                Rejection::Malformed,
                "the state did not arrive before the deadline".into(),
            ));
        }
        let r = wire::read_frame_into(s, wire::MAX_CHUNK, &mut payload);
        let kind = step!(gate(s, r)?);
        let f = wire::Frame {
            kind,
            payload: std::mem::take(&mut payload),
        };
        let kept = |p: Vec<u8>, payload: &mut Vec<u8>| *payload = p;
        match f.kind {
            FrameKind::StateChunk => {
                total = total.saturating_add(f.payload.len() as u64);
                if total > limits.max_state {
                    return Ok(refuse(
                        s,
                        Rejection::Malformed,
                        format!("the state passes the limit of {} bytes", limits.max_state),
                    ));
                }
                if let Err(e) = feed(sink, &f.payload, app, epoch, limits, side) {
                    return match e {
                        Error::Archive(d) => Ok(refuse(s, Rejection::Malformed, d)),
                        other => Err(other),
                    };
                }
                kept(f.payload, &mut payload);
                side.progress(total);
            }
            FrameKind::StateEnd => {
                let announced: [u8; 8] = match f.payload.as_slice().try_into() {
                    Ok(a) => a,
                    Err(_) => {
                        return Ok(refuse(
                            s,
                            Rejection::Malformed,
                            "state end payload is not 8 bytes".into(),
                        ));
                    }
                };
                let announced = u64::from_be_bytes(announced);
                if announced != total {
                    return Ok(refuse(
                        s,
                        Rejection::Malformed,
                        format!(
                            "received {total} bytes of state, the sender announced {announced}"
                        ),
                    ));
                }
                // A state shorter than the bytes that tell its kind.
                if let Sink::Undecided(head) = sink {
                    let head = std::mem::take(head);
                    if !head.is_empty() {
                        decide(sink, head, app, epoch, limits, side, true)?;
                    }
                }
                return Ok(Ok(total));
            }
            FrameKind::Verdict => {
                let code = String::from_utf8_lossy(&f.payload).into_owned();
                return Ok(Err(Refusal {
                    reason: reason_from_peer(&code),
                    by: By::Peer,
                    detail: format!("the peer refused: {code}"),
                }));
            }
            other => {
                return Ok(refuse(
                    s,
                    Rejection::Malformed,
                    format!("expected state chunks, got {}", other.name()),
                ));
            }
        }
    }
}

/// Feed received bytes to the sink, deciding its kind on the first 9.
fn feed(
    sink: &mut Sink,
    data: &[u8],
    app: &AppId,
    epoch: u64,
    limits: &Limits,
    side: &mut dyn TargetSide,
) -> Result<()> {
    match sink {
        Sink::Undecided(head) => {
            head.extend_from_slice(data);
            if head.len() >= 9 {
                let head = std::mem::take(head);
                decide(sink, head, app, epoch, limits, side, false)?;
            }
            Ok(())
        }
        Sink::Core(p, w) => w
            .write_all(data)
            .map_err(|e| Error::io(p.display().to_string(), "writing", e)),
        Sink::Images(u) => u.push(data),
    }
}

fn decide(
    sink: &mut Sink,
    head: Vec<u8>,
    app: &AppId,
    epoch: u64,
    limits: &Limits,
    side: &mut dyn TargetSide,
    short: bool,
) -> Result<()> {
    let images = head.starts_with(archive::MAGIC);
    if short && images {
        return Err(Error::Archive("the image stream ends early".into()));
    }
    let path = side.incoming(app, epoch, images)?;
    if images {
        let mut u = Unpacker::new(&path, limits.max_state)?;
        u.push(&head)?;
        *sink = Sink::Images(Box::new(u));
    } else {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(path.display().to_string(), "creating", e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        w.write_all(&head)
            .map_err(|e| Error::io(path.display().to_string(), "writing", e))?;
        *sink = Sink::Core(path, w);
    }
    Ok(())
}
