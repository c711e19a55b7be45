//! `talos migrate`: the migration gate on the command line.
//!
//! Each subcommand opens a host's state directory, reads the signed messages
//! it is given, computes the evidence the gate compares (with `talos-cfg`
//! and `talos-introspect`, see [`evidence`]) and runs one operation of
//! `talos-migrate`. It prints one verdict: `ACCEPTED`, or `REJECTED` with
//! exactly one stable reason (`Rejection::code`), in text or with
//! `--format json`. Exit codes: 0 accepted, 1 rejected, 2 unusable input
//! (missing file, uninitialised state directory, bad argument, I/O).
//!
//! A message this host signs is written to `-o FILE` atomically, after the
//! ledger entry that backs it is durable; if writing it fails, `talos
//! migrate resend` writes it again. `docs/migrate-cli.md` is the manual.

mod args;
pub mod attested;
pub mod evidence;
pub mod journal;
pub mod net;
pub mod restore;

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};
use talos_migrate::{
    Abort, AppId, Body, Bundle, Challenge, Digest, Host, MAX_MESSAGE_LEN, PublicKey, Receipt,
    Reference, Rejection, Release, Role, Signed, TargetEvidence,
};

use crate::{Outcome, output};

pub use args::*;

/// The outcome of one command: accepted, or rejected with one reason.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The subcommand.
    pub command: String,
    /// Whether the gate accepted.
    pub accepted: bool,
    /// The stable reason of a rejection.
    pub reason: Option<Rejection>,
    /// The reason of a refusal decided outside the gate (attestation
    /// evidence: `talos_attest::Reason::code`), when `reason` is `None`.
    pub refusal: Option<&'static str>,
    /// Neither accepted nor rejected: the evidence cannot prove it either
    /// way (exit 3); `refusal` holds why.
    pub undecided: bool,
    /// One sentence.
    pub summary: String,
    /// Named details, in order.
    pub fields: Vec<(String, Value)>,
    /// Extra text printed after the verdict in text mode.
    pub text: String,
    /// Replaces the JSON object (status).
    pub json: Option<Value>,
}

impl Verdict {
    /// An accepted verdict.
    pub fn accepted(command: &str, summary: impl Into<String>) -> Verdict {
        Verdict {
            command: command.to_owned(),
            accepted: true,
            reason: None,
            refusal: None,
            undecided: false,
            summary: summary.into(),
            fields: Vec::new(),
            text: String::new(),
            json: None,
        }
    }

    /// A rejection with one reason.
    pub fn rejected(command: &str, reason: Rejection, detail: impl Into<String>) -> Verdict {
        Verdict {
            command: command.to_owned(),
            accepted: false,
            reason: Some(reason),
            refusal: None,
            undecided: false,
            summary: detail.into(),
            fields: Vec::new(),
            text: String::new(),
            json: None,
        }
    }

    /// Neither accepted nor rejected: the evidence cannot prove it either
    /// way (exit 3), with the stable code of why.
    pub fn undecided(command: &str, code: &'static str, detail: impl Into<String>) -> Verdict {
        let mut v = Verdict::accepted(command, detail);
        v.accepted = false;
        v.refusal = Some(code);
        v.undecided = true;
        v
    }

    /// Add a detail.
    #[must_use]
    pub fn field(mut self, name: &str, value: impl Into<Value>) -> Verdict {
        self.fields.push((name.to_owned(), value.into()));
        self
    }

    /// The exit outcome.
    pub fn outcome(&self) -> Outcome {
        if self.accepted {
            Outcome::Ok
        } else if self.undecided {
            Outcome::Unproven
        } else {
            Outcome::Failed
        }
    }

    /// The reason code, or `None` when accepted.
    pub fn reason_code(&self) -> Option<&'static str> {
        self.reason.map(Rejection::code).or(self.refusal)
    }

    /// The JSON object.
    pub fn to_json(&self) -> Value {
        if let Some(j) = &self.json {
            return j.clone();
        }
        let mut m = Map::new();
        m.insert("command".into(), json!(self.command));
        m.insert(
            "verdict".into(),
            json!(if self.accepted {
                "accepted"
            } else if self.undecided {
                "undecided"
            } else {
                "rejected"
            }),
        );
        m.insert("reason".into(), json!(self.reason_code()));
        m.insert("detail".into(), json!(self.summary));
        for (k, v) in &self.fields {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }

    /// The text form: the verdict line, then one line per detail.
    pub fn to_text(&self) -> String {
        let mut s = match self.reason_code() {
            None => format!("{}: ACCEPTED: {}\n", self.command, self.summary),
            Some(r) if self.undecided => {
                format!("{}: UNDECIDED ({r}): {}\n", self.command, self.summary)
            }
            Some(r) => format!("{}: REJECTED ({r}): {}\n", self.command, self.summary),
        };
        for (k, v) in &self.fields {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join("\n             "),
                other => other.to_string(),
            };
            s.push_str(&format!("  {k:<10} {v}\n"));
        }
        s.push_str(&self.text);
        s
    }

    /// Print to standard output.
    ///
    /// # Errors
    /// When standard output cannot be written.
    pub fn print(&self, format: Format) -> Result<()> {
        let text = match format {
            Format::Text => self.to_text(),
            Format::Json => {
                let mut s = serde_json::to_string_pretty(&self.to_json())?;
                s.push('\n');
                s
            }
        };
        output::emit(None, text.as_bytes())
    }
}

/// Map a gate result: a verdict (rejection) stays a value, anything else
/// (I/O, uninitialised directory, ...) becomes an error (exit 2).
fn gate<T>(command: &str, r: talos_migrate::Result<T>) -> Result<Result<T, Verdict>> {
    match r {
        Ok(t) => Ok(Ok(t)),
        Err(e) => match e.rejection() {
            Some(reason) => {
                let detail = match &e {
                    talos_migrate::Error::Rejected { detail, .. } => detail.clone(),
                    other => other.to_string(),
                };
                Ok(Err(Verdict::rejected(command, reason, detail)))
            }
            None => Err(anyhow::Error::new(e)),
        },
    }
}

/// Early return of a verdict from inside `execute`.
macro_rules! verdict {
    ($e:expr) => {
        match $e {
            Ok(t) => t,
            Err(v) => return Ok(v),
        }
    };
}
pub(crate) use verdict;

/// Read a file of at most `max` bytes (one more byte is read to tell).
fn read_limited(path: &Path, max: usize) -> Result<Vec<u8>> {
    let f =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut v = Vec::new();
    f.take(max as u64 + 1)
        .read_to_end(&mut v)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(v)
}

/// Read a message file of kind `B`: unreadable is an error (exit 2),
/// malformed or oversized bytes are a `malformed` verdict.
///
/// # Errors
/// When the file cannot be read.
pub fn read_message<B: Body>(command: &str, path: &Path) -> Result<Result<Signed<B>, Verdict>> {
    let bytes = read_limited(path, MAX_MESSAGE_LEN)?;
    Ok(Signed::<B>::decode(&bytes).map_err(|e| {
        Verdict::rejected(
            command,
            Rejection::Malformed,
            format!("{}: {e}", path.display()),
        )
    }))
}

fn app_id(s: &str) -> Result<AppId> {
    AppId::new(s).with_context(|| format!("--app {s:?}"))
}

fn write_message(path: &Path, bytes: &[u8]) -> Result<String> {
    output::write_atomic(path, bytes)?;
    Ok(path.display().to_string())
}

fn hex_short(d: &Digest) -> String {
    d.short()
}

fn key_short(k: &PublicKey) -> String {
    k.id().short()
}

/// Run one command and return its verdict (nothing is printed, nothing is
/// exec'd: `launch -- COMMAND` execs in [`run`]).
///
/// # Errors
/// Unusable input (exit 2).
pub fn execute(cmd: &Cmd) -> Result<Verdict> {
    let name = cmd.name();
    match cmd {
        Cmd::Init(a) => {
            let h = Host::init(&a.common.state_dir)
                .with_context(|| format!("{}: cannot initialise", a.common.state_dir.display()))?;
            let pubfile = h.dir().join(talos_migrate::HOST_PUB_FILE);
            Ok(Verdict::accepted(name, "host initialised")
                .field("host", h.public_key().to_string())
                .field("host-id", key_short(&h.public_key()))
                .field("public-key", pubfile.display().to_string())
                .field("report-data", attested::binding_hex(&h.public_key())))
        }
        Cmd::Trust(a) if a.attest.evidence.is_some() => attested::trust(a),
        Cmd::Trust(a) => {
            a.attest.refuse_without_evidence()?;
            let host = a.common.host()?;
            let role: Role = a.role.parse()?;
            let key = PublicKey::load(&a.key)
                .with_context(|| format!("{}: not a talos public key file", a.key.display()))?;
            let new = host.trust(role, &key)?;
            Ok(Verdict::accepted(
                name,
                if new {
                    format!("key {} pinned as {role}", key_short(&key))
                } else {
                    format!("key {} was already pinned as {role}", key_short(&key))
                },
            )
            .field("role", role.name())
            .field("key", key.to_string())
            .field("new", new))
        }
        Cmd::Register(a) => {
            let host = a.common.host()?;
            let app = app_id(&a.app)?;
            let changed = verdict!(gate(name, host.register(&app))?);
            Ok(Verdict::accepted(
                name,
                if changed {
                    format!("{app} registered: it runs on this host")
                } else {
                    format!("{app} already runs on this host; nothing changed")
                },
            )
            .field("app", app.as_str())
            .field("changed", changed))
        }
        Cmd::Challenge(a) => {
            let host = a.common.host()?;
            let app = app_id(&a.app)?;
            let c = host.challenge(&app, a.common.now(), a.ttl)?;
            let out = write_message(&a.output, &c.encode())?;
            Ok(
                Verdict::accepted(name, format!("challenge for {app} written to {out}"))
                    .field("app", app.as_str())
                    .field("nonce", c.body().nonce.to_hex())
                    .field("expires-at", c.body().expires_at)
                    .field("output", out),
            )
        }
        Cmd::Seal(a) => seal(a),
        Cmd::Verify(a) => verify(a),
        Cmd::Commit(a) => {
            let host = a.common.host()?;
            let receipt = verdict!(read_message(name, &a.receipt)?);
            let release = verdict!(
                gate(name, host.commit(&receipt))?
                    .map_err(|v| v.field("app", receipt.body().app.as_str()))
            );
            let out = write_message(&a.output, &release.encode())?;
            let b = release.body();
            Ok(Verdict::accepted(
                name,
                format!(
                    "{} released to {} at epoch {}; it migrated away for good; release written to {out}",
                    b.app,
                    key_short(&b.target),
                    b.epoch
                ),
            )
            .field("app", b.app.as_str())
            .field("epoch", b.epoch)
            .field("bundle", b.bundle.to_hex())
            .field("target", b.target.to_string())
            .field("output", out))
        }
        Cmd::Launch(a) if a.restore.is_some() => launch_restore(a),
        Cmd::Launch(a) => {
            let host = a.common.host()?;
            let release = verdict!(read_message(name, &a.release)?);
            let l = verdict!(
                gate(name, host.launch(&release))?
                    .map_err(|v| v.field("app", release.body().app.as_str()))
            );
            let mut v = Verdict::accepted(
                name,
                format!(
                    "{} may run here from epoch {} (bundle {})",
                    l.app,
                    l.epoch,
                    hex_short(&l.bundle)
                ),
            )
            .field("app", l.app.as_str())
            .field("epoch", l.epoch)
            .field("bundle", l.bundle.to_hex())
            .field("source", l.source.to_string());
            if !a.command.is_empty() {
                v = v.field("exec", a.command.join(" "));
            }
            Ok(v)
        }
        Cmd::Abort(a) => {
            let host = a.common.host()?;
            let app = app_id(&a.app)?;
            match verdict!(gate(name, host.abort(&app))?) {
                Abort::Resumed { epoch, target } => Ok(Verdict::accepted(
                    name,
                    format!(
                        "{app} resumed here; the bundle of epoch {epoch} for {} can never be released",
                        key_short(&target)
                    ),
                )
                .field("app", app.as_str())
                .field("epoch", epoch)
                .field("changed", true)),
                Abort::NotFrozen(status) => Ok(Verdict::accepted(
                    name,
                    format!("{app} is not frozen here (status {status}); nothing changed"),
                )
                .field("app", app.as_str())
                .field("status", status)
                .field("changed", false)),
            }
        }
        Cmd::Resend(a) => {
            let host = a.common.host()?;
            let app = app_id(&a.app)?;
            let Some(m) = host.resend(&app)? else {
                anyhow::bail!(
                    "{app}: no migration in flight on this host (nothing to resend; see talos migrate status)"
                );
            };
            let out = write_message(&a.output, &m.encode())?;
            Ok(Verdict::accepted(
                name,
                format!("{} for {app} written again to {out}", m.kind()),
            )
            .field("kind", m.kind().name())
            .field("id", m.id().to_hex())
            .field("output", out))
        }
        Cmd::Status(a) => {
            let host = a.common().host()?;
            let view = host.status()?.view();
            let mut v = Verdict::accepted(name, format!("ledger of {}", host.dir().display()));
            v.text = view.to_string();
            v.json = Some(serde_json::to_value(&view)?);
            Ok(v)
        }
        Cmd::Show(a) => {
            let max = talos_migrate::MAX_LEDGER_LEN.max(MAX_MESSAGE_LEN);
            let bytes = read_limited(&a.file, max)?;
            if let Some(v) = attested::show_public_key(name, &a.file, &bytes) {
                return Ok(v);
            }
            let d = verdict!(
                talos_migrate::describe(&bytes).map_err(|e| Verdict::rejected(
                    name,
                    Rejection::Malformed,
                    format!("{}: {e}", a.file.display())
                ))
            );
            let mut v = Verdict::accepted(name, format!("{} {}", d.kind, a.file.display()));
            v.text = d.to_string();
            v.json = Some(serde_json::to_value(&d)?);
            Ok(v)
        }
        Cmd::Serve(a) => net::serve(a),
        Cmd::Send(a) => net::send(a),
        Cmd::Live(a) => net::live(a),
    }
}

/// `launch --restore DIR`: restore stopped, check, record, continue.
fn launch_restore(a: &LaunchArgs) -> Result<Verdict> {
    let name = "launch";
    let host = a.common.host()?;
    let release: Release = verdict!(read_message(name, &a.release)?);
    let Some(dir) = a.restore.as_deref() else {
        anyhow::bail!("--restore DIR is required");
    };
    let criu = crate::criu::Criu::locate(a.criu.as_deref())?;
    let (bundle, reference) = restore::load_verified(host.dir(), &release)?;
    let binaries: Vec<PathBuf> = a.binary.iter().cloned().collect();
    let resolver = crate::cmd::introspect::resolver(None, &binaries, None)?;
    let mut restored = None;
    let r = host.launch_with(&release, |_| {
        // The directory is measured again: it must still be the verified
        // state, whatever happened to it since verify.
        let expected = restore::verified_expectations(dir, &bundle, &resolver)?;
        let x =
            restore::restore_and_check(&criu, dir, &a.command, &expected, &reference, &resolver)?;
        restored = Some(x);
        Ok(())
    });
    let l = match gate(name, r) {
        Ok(Ok(l)) => l,
        Ok(Err(v)) => {
            if v.reason == Some(Rejection::LaunchMismatch) {
                restore::record_refusal(host.dir(), &release, "launch-mismatch", &v.summary)?;
                return Ok(v.field(
                    "refusals",
                    host.dir()
                        .join(restore::REFUSALS_FILE)
                        .display()
                        .to_string(),
                ));
            }
            return Ok(v);
        }
        Err(e) => {
            if let Some(x) = &restored {
                let _ = crate::criu::kill_all(&x.pids, std::time::Duration::from_secs(10));
            }
            return Err(e);
        }
    };
    let Some(x) = restored else {
        anyhow::bail!("internal: the launch was recorded without a restored process");
    };
    restore::resume(&x.pids)?;
    let mut v = Verdict::accepted(
        name,
        format!(
            "{} restored from {}, checked and running as {:?} from epoch {} (bundle {})",
            l.app,
            dir.display(),
            x.pids,
            l.epoch,
            hex_short(&l.bundle)
        ),
    )
    .field("app", l.app.as_str())
    .field("epoch", l.epoch)
    .field("bundle", l.bundle.to_hex())
    .field("source", l.source.to_string())
    .field("pids", serde_json::json!(x.pids))
    .field("criu", format!("{} {}", criu.path.display(), criu.version));
    v = v.field(
        "checked",
        Value::Array(x.notes.iter().map(|n| json!(n)).collect()),
    );
    Ok(v)
}

fn seal(a: &SealArgs) -> Result<Verdict> {
    let name = "seal";
    let host = a.common.host()?;
    let app = app_id(&a.app)?;
    let reference: Reference = verdict!(read_message(name, &a.reference)?);
    let challenge: Challenge = verdict!(read_message(name, &a.challenge)?);
    let found = evidence::seal_evidence(&a.dump, a.binary.as_deref(), &reference)?;
    let bundle = match gate(
        name,
        host.seal(
            &app,
            &reference,
            &found.evidence,
            &challenge,
            a.common.now(),
        ),
    )? {
        Ok(b) => b,
        Err(v) => {
            let why: Vec<Value> = found.why.iter().map(|s| json!(s)).collect();
            return Ok(v
                .field("introspect", found.introspect)
                .field("code", found.code_line.clone())
                .field("flow", found.flow_line.clone())
                .field("evidence", Value::Array(why)));
        }
    };
    let out = write_message(&a.output, &bundle.encode())?;
    Ok(sealed_verdict(name, &bundle, &found, out))
}

fn sealed_verdict(
    name: &str,
    bundle: &Bundle,
    found: &evidence::SealFindings,
    out: String,
) -> Verdict {
    let b = bundle.body();
    Verdict::accepted(
        name,
        format!(
            "{} frozen for target {} at epoch {}; bundle written to {out}",
            b.app,
            key_short(&b.target),
            b.epoch
        ),
    )
    .field("app", b.app.as_str())
    .field("epoch", b.epoch)
    .field("bundle", bundle.id().to_hex())
    .field("target", b.target.to_string())
    .field("code", found.code_line.clone())
    .field("flow", found.flow_line.clone())
    .field("state", b.state.to_string())
    .field("memory", found.state.memory_root.to_hex())
    .field("rseq", found.state.rseq.clone())
    .field("output", out)
}

fn verify(a: &VerifyArgs) -> Result<Verdict> {
    let name = "verify";
    let host = a.common.host()?;
    let bundle: Bundle = verdict!(read_message(name, &a.bundle)?);
    let reference: Reference = verdict!(read_message(name, &a.reference)?);
    let (ev, note) = evidence::target_evidence(&a.binary, &a.state)?;
    let receipt = match gate(name, host.verify(&bundle, &reference, &ev, a.common.now()))? {
        Ok(r) => r,
        Err(v) => {
            return Ok(v
                .field("app", bundle.body().app.as_str())
                .field("binary", ev.binary.to_string())
                .field("cfg", ev.cfg.to_string())
                .field("state", ev.state.to_string())
                .field("state-file", note));
        }
    };
    // What `launch --restore` needs, kept before the receipt exists.
    restore::keep_verified(host.dir(), &bundle, &reference)?;
    let out = write_message(&a.output, &receipt.encode())?;
    Ok(receipt_verdict(name, &receipt, &ev, out))
}

fn receipt_verdict(name: &str, receipt: &Receipt, ev: &TargetEvidence, out: String) -> Verdict {
    let r = receipt.body();
    Verdict::accepted(
        name,
        format!(
            "bundle {} of {} at epoch {} verified and held; receipt written to {out}",
            hex_short(&r.bundle),
            r.app,
            r.epoch
        ),
    )
    .field("app", r.app.as_str())
    .field("epoch", r.epoch)
    .field("bundle", r.bundle.to_hex())
    .field("source", r.source.to_string())
    .field("binary", ev.binary.to_string())
    .field("cfg", ev.cfg.to_string())
    .field("state", ev.state.to_string())
    .field("output", out)
}

/// Run `talos migrate`.
///
/// # Errors
/// Unusable input (exit 2).
pub fn run(args: Args) -> Result<Outcome> {
    let format = args.command.format();
    let name = args.command.name();
    if let Cmd::Status(a) = &args.command
        && a.format == StatusFormat::Html
    {
        return status_html(a);
    }
    let v = match execute(&args.command) {
        Ok(v) => v,
        Err(e) => {
            if format == Format::Json {
                let j = json!({
                    "command": name,
                    "verdict": "error",
                    "reason": null,
                    "detail": format!("{e:#}"),
                });
                let _ = output::emit(None, format!("{j:#}\n").as_bytes());
            }
            return Err(e);
        }
    };
    record(&args.command, &v);
    v.print(format)?;
    if let Cmd::Launch(a) = &args.command
        && v.accepted
        && a.restore.is_none()
        && let Some((prog, rest)) = a.command.split_first()
    {
        use std::os::unix::process::CommandExt as _;
        let err = std::process::Command::new(prog).args(rest).exec();
        return Err(anyhow::Error::new(err).context(format!(
            "launch was recorded, but {prog:?} could not be executed (run it by hand: the release is spent)"
        )));
    }
    Ok(v.outcome())
}

/// The state directory and app a command acts on, for the journal
/// (`status` and `show` change nothing and are not recorded).
fn journal_target(cmd: &Cmd) -> Option<(&Common, Option<&str>)> {
    match cmd {
        Cmd::Init(a) => Some((&a.common, None)),
        Cmd::Trust(a) => Some((&a.common, None)),
        Cmd::Register(a) | Cmd::Abort(a) => Some((&a.common, Some(a.app.as_str()))),
        Cmd::Challenge(a) => Some((&a.common, Some(a.app.as_str()))),
        Cmd::Seal(a) => Some((&a.common, Some(a.app.as_str()))),
        Cmd::Verify(a) => Some((&a.common, None)),
        Cmd::Commit(a) => Some((&a.common, None)),
        Cmd::Launch(a) => Some((&a.common, None)),
        Cmd::Resend(a) => Some((&a.common, Some(a.app.as_str()))),
        Cmd::Send(a) => Some((&a.common, Some(a.app.as_str()))),
        Cmd::Live(a) => Some((&a.common, Some(a.app.as_str()))),
        Cmd::Serve(a) => Some((&a.common, None)),
        Cmd::Status(_) | Cmd::Show(_) => None,
    }
}

/// Append a verdict to the state directory's journal. The ledger already
/// holds the decision; a journal that cannot be written is said on stderr
/// and changes nothing.
pub fn record(cmd: &Cmd, v: &Verdict) {
    let Some((common, app)) = journal_target(cmd) else {
        return;
    };
    record_in(common, app, v);
}

/// [`record`] for one exchange of `serve`.
pub fn record_in(common: &Common, app: Option<&str>, v: &Verdict) {
    if !common.state_dir.join(talos_migrate::LEDGER_FILE).is_file() {
        return;
    }
    let entry = journal::Entry::of(v, common.now(), app);
    if let Err(e) = journal::append(&common.state_dir, &entry) {
        eprintln!(
            "talos: warning: {}: cannot append to the journal: {e}",
            common.state_dir.join(journal::JOURNAL_FILE).display()
        );
    }
}

/// `talos migrate status --format html`.
fn status_html(a: &StatusArgs) -> Result<Outcome> {
    let host = a.common().host()?;
    let view = host.status()?.view();
    let j = journal::read(&a.state_dir).with_context(|| {
        format!(
            "{}: cannot read",
            a.state_dir.join(journal::JOURNAL_FILE).display()
        )
    })?;
    let page = crate::html::migrate::render(&a.state_dir.display().to_string(), &view, &j);
    output::emit(a.output.as_deref(), page.as_bytes())?;
    Ok(Outcome::Ok)
}
