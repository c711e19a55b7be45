//! Network mode: `talos migrate serve` (target) and `talos migrate send`
//! (source) run the whole exchange over one TCP connection, in
//! `talos_migrate::wire` frames (size limits checked before reading,
//! socket timeouts, the state streamed in chunks after the bundle):
//!
//! ```text
//! send (source)                          serve (target)
//! hello                     ─────────►
//!                           ◄─────────   hello
//! message: reference        ─────────►   challenge for the reference's app
//!                           ◄─────────   message: challenge
//! seal (introspect the dump)
//! message: bundle, state chunks, end ─►  verify (binary, CFG, state)
//!                           ◄─────────   message: receipt   | verdict: reason
//! commit
//! message: release          ─────────►   launch
//!                           ◄─────────   verdict: accepted  | verdict: reason
//! ```
//!
//! Either side answers a refusal with a verdict frame holding the reason
//! and stops. A connection lost after the source committed leaves the
//! documented delay: the source is migrated away and the target holds the
//! verified bundle; `talos migrate resend` on the source and `launch` on
//! the target finish it.

use std::io::{BufWriter, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use talos_migrate::wire::{self, FrameKind};
use talos_migrate::{Bundle, Challenge, Receipt, Reference, Rejection, Release};

use super::{Common, DEFAULT_TTL, Verdict, evidence, gate, target_evidence};
use crate::cmd::migrate::reason_from_peer;

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
    /// ELF core of the frozen app; it is also the state sent.
    #[arg(long, value_name = "DUMP")]
    pub dump: PathBuf,
    /// The reference's binary (default: the file the dump names).
    #[arg(long, value_name = "BIN")]
    pub binary: Option<PathBuf>,
    /// Socket timeout, seconds (each read and write).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s.max(1))
}

/// A frame-level error: a verdict (malformed, oversized) is sent back and
/// returned as a rejection; anything else (timeout, closed) is an error.
fn net<T>(
    name: &str,
    s: &mut TcpStream,
    r: talos_migrate::Result<T>,
) -> Result<Result<T, Verdict>> {
    match gate(name, r)? {
        Ok(t) => Ok(Ok(t)),
        Err(v) => {
            if let Some(reason) = v.reason {
                let _ = wire::write_frame(s, FrameKind::Verdict, reason.code().as_bytes());
            }
            Ok(Err(v.field("by", "this host")))
        }
    }
}

/// Read the next message frame, or the verdict the peer sent instead.
fn next_message(name: &str, s: &mut TcpStream) -> Result<Result<Vec<u8>, Verdict>> {
    let r = wire::read_frame(s, wire::MAX_CONTROL_FRAME);
    let f = match net(name, s, r)? {
        Ok(f) => f,
        Err(v) => return Ok(Err(v)),
    };
    match f.kind {
        FrameKind::Message => Ok(Ok(f.payload)),
        FrameKind::Verdict => {
            let code = String::from_utf8_lossy(&f.payload).into_owned();
            let reason = reason_from_peer(&code);
            Ok(Err(Verdict::rejected(
                name,
                reason,
                format!("the peer refused: {code}"),
            )
            .field("by", "peer")))
        }
        other => {
            let _ = wire::write_frame(s, FrameKind::Verdict, b"malformed");
            Ok(Err(Verdict::rejected(
                name,
                Rejection::Malformed,
                format!("expected a message frame, got {}", other.name()),
            )
            .field("by", "this host")))
        }
    }
}

/// Run `talos migrate serve`.
///
/// # Errors
/// Unusable state directory or address.
pub fn serve(a: &ServeArgs) -> Result<Verdict> {
    let host = a.common.host()?;
    let inbox = a.inbox.clone().unwrap_or_else(|| host.dir().join("inbox"));
    std::fs::create_dir_all(&inbox)
        .with_context(|| format!("{}: cannot create inbox", inbox.display()))?;
    let listener =
        TcpListener::bind(&a.listen).with_context(|| format!("--listen {}", a.listen))?;
    let addr = listener.local_addr().context("listening socket")?;
    {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "talos: listening on {addr}");
        let _ = e.flush();
    }
    let limit = if a.once { Some(1) } else { a.max };
    let mut n: u64 = 0;
    loop {
        let (mut stream, peer) = listener.accept().context("accepting a connection")?;
        n = n.saturating_add(1);
        let v = match exchange(a, &host, &inbox, &mut stream, n) {
            Ok(v) => {
                let v = v.field("peer", peer.to_string());
                if limit != Some(n) {
                    // The last exchange is recorded by `run` with the others.
                    super::record_in(&a.common, None, &v);
                }
                v
            }
            Err(e) => {
                if limit == Some(n) {
                    return Err(e.context(format!("exchange with {peer}")));
                }
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "talos: exchange with {peer}: {e:#}");
                continue;
            }
        };
        if limit == Some(n) {
            return Ok(v);
        }
        v.print(a.common.format)?;
    }
}

fn exchange(
    a: &ServeArgs,
    host: &talos_migrate::Host,
    inbox: &std::path::Path,
    s: &mut TcpStream,
    n: u64,
) -> Result<Verdict> {
    let name = "serve";
    wire::configure(s, secs(a.timeout))?;
    let r = wire::expect_hello(s);
    super::verdict!(net(name, s, r)?);
    wire::send_hello(s)?;
    let bytes = super::verdict!(next_message(name, s)?);
    let reference: Reference = super::verdict!(net(name, s, Reference::decode(&bytes))?);
    // Only a reference from a pinned owner earns a challenge (so strangers
    // cannot fill the pending list).
    if !host
        .status()?
        .is_trusted(talos_migrate::Role::Owner, reference.signer())
    {
        let _ = wire::write_frame(s, FrameKind::Verdict, b"untrusted-key");
        return Ok(Verdict::rejected(
            name,
            Rejection::UntrustedKey,
            format!(
                "reference signed by {}, which is not pinned as owner here",
                reference.signer().id().short()
            ),
        )
        .field("by", "this host"));
    }
    super::verdict!(net(name, s, reference.verify_signature())?);
    let app = reference.body().app.clone();
    let challenge = host.challenge(&app, a.common.now(), a.ttl)?;
    wire::write_frame(s, FrameKind::Message, &challenge.encode())?;
    let bytes = super::verdict!(next_message(name, s)?);
    let bundle: Bundle = super::verdict!(net(name, s, Bundle::decode(&bytes))?);
    // The state, into a temporary file of the inbox.
    let tmp = inbox.join(format!(".recv-{}-{n}.tmp", std::process::id()));
    let received = (|| -> Result<Result<u64, Verdict>> {
        let f = std::fs::File::create(&tmp)
            .with_context(|| format!("{}: cannot create", tmp.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let deadline = Instant::now() + secs(a.timeout).saturating_mul(60);
        let r = wire::recv_state(s, &mut w, a.max_state, deadline);
        let len = match net(name, s, r)? {
            Ok(l) => l,
            Err(v) => return Ok(Err(v)),
        };
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()
            .with_context(|| format!("{}: cannot sync", tmp.display()))?;
        Ok(Ok(len))
    })();
    let state_len = match received {
        Ok(Ok(l)) => l,
        Ok(Err(v)) => {
            let _ = std::fs::remove_file(&tmp);
            return Ok(v);
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let result = (|| -> Result<Result<Receipt, Verdict>> {
        let (ev, _note) = target_evidence(&a.binary, &tmp)?;
        net(
            name,
            s,
            host.verify(&bundle, &reference, &ev, a.common.now()),
        )
    })();
    let receipt = match result {
        Ok(Ok(r)) => r,
        Ok(Err(v)) => {
            let _ = std::fs::remove_file(&tmp);
            return Ok(v);
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            let _ = wire::write_frame(s, FrameKind::Verdict, b"error");
            return Err(e);
        }
    };
    let kept = inbox.join(format!("{}.epoch{}.core", app, receipt.body().epoch));
    std::fs::rename(&tmp, &kept).with_context(|| format!("{}: cannot keep", kept.display()))?;
    wire::write_frame(s, FrameKind::Message, &receipt.encode())?;
    let bytes = super::verdict!(
        next_message(name, s)?.map_err(|v| v.field("state-file", kept.display().to_string()))
    );
    let release: Release = super::verdict!(net(name, s, Release::decode(&bytes))?);
    let l = super::verdict!(net(name, s, host.launch(&release))?);
    wire::write_frame(s, FrameKind::Verdict, b"accepted")?;
    Ok(Verdict::accepted(
        name,
        format!(
            "{} verified, released and launched here at epoch {}; its state is {}",
            l.app,
            l.epoch,
            kept.display()
        ),
    )
    .field("app", l.app.as_str())
    .field("epoch", l.epoch)
    .field("bundle", l.bundle.to_hex())
    .field("source", l.source.to_string())
    .field("state-bytes", state_len)
    .field("state-file", kept.display().to_string()))
}

/// Run `talos migrate send`.
///
/// # Errors
/// Unusable input, network failures.
pub fn send(a: &SendArgs) -> Result<Verdict> {
    let name = "send";
    let host = a.common.host()?;
    let app = super::app_id(&a.app)?;
    let reference: Reference = super::verdict!(super::read_message(name, &a.reference)?);
    if reference.body().app != app {
        return Ok(Verdict::rejected(
            name,
            Rejection::Malformed,
            format!(
                "{}: the reference is for {}, not {app}",
                a.reference.display(),
                reference.body().app
            ),
        ));
    }
    let found = evidence::seal_evidence(&a.dump, a.binary.as_deref(), &reference)?;
    let mut s =
        wire::connect(a.to.as_str(), secs(a.timeout)).with_context(|| format!("--to {}", a.to))?;
    wire::send_hello(&mut s)?;
    let r = wire::expect_hello(&mut s);
    super::verdict!(net(name, &mut s, r)?);
    wire::write_frame(&mut s, FrameKind::Message, &reference.encode())?;
    let bytes = super::verdict!(next_message(name, &mut s)?);
    let challenge: Challenge = super::verdict!(net(name, &mut s, Challenge::decode(&bytes))?);
    let sealed = host.seal(
        &app,
        &reference,
        &found.evidence,
        &challenge,
        a.common.now(),
    );
    let bundle = match net(name, &mut s, sealed)? {
        Ok(b) => b,
        Err(v) => {
            let why: Vec<serde_json::Value> =
                found.why.iter().map(|w| serde_json::json!(w)).collect();
            return Ok(v
                .field("code", found.code_line.clone())
                .field("flow", found.flow_line.clone())
                .field("evidence", serde_json::Value::Array(why)));
        }
    };
    wire::write_frame(&mut s, FrameKind::Message, &bundle.encode())?;
    let mut f = std::fs::File::open(&a.dump)
        .with_context(|| format!("{}: cannot open", a.dump.display()))?;
    let sent = wire::send_state(&mut f, &mut s, wire::MAX_CHUNK)?;
    let bytes = super::verdict!(next_message(name, &mut s)?.map_err(|v| v.field(
        "hint",
        "the app stays frozen here: fix and resend the bundle, or talos migrate abort"
    )));
    let receipt: Receipt = super::verdict!(net(name, &mut s, Receipt::decode(&bytes))?);
    let release = super::verdict!(net(name, &mut s, host.commit(&receipt))?);
    wire::write_frame(&mut s, FrameKind::Message, &release.encode())?;
    let fr = wire::expect_frame(&mut s, FrameKind::Verdict).with_context(|| {
        "released, but the target's last verdict was lost: talos migrate resend gives the release again"
    })?;
    let code = String::from_utf8_lossy(&fr).into_owned();
    let b = release.body();
    if code != "accepted" {
        return Ok(Verdict::rejected(
            name,
            reason_from_peer(&code),
            format!("the target refused the release: {code} (the app migrated away from here)"),
        )
        .field("by", "peer"));
    }
    Ok(Verdict::accepted(
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
    .field("state-bytes", sent))
}
