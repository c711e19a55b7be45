//! The migration state machine, as pure functions on a [`Ledger`].
//!
//! Each function checks in a fixed, documented order and returns the first
//! failing check as exactly one [`Rejection`]. It mutates the ledger only
//! after every check passed, so on `Err` the caller must (and
//! [`crate::Host`] does) discard the ledger copy it passed in. Persistence,
//! locking and randomness are the caller's: these functions are
//! deterministic, which is what lets the model test in this module explore
//! every interleaving of lost, repeated and reordered messages.

use crate::error::{Error, Rejection, Result};
use crate::keys::{PublicKey, Role, SecretKey};
use crate::ledger::{AcceptedRecord, AppRecord, Ledger, Pending, ReleaseRecord, Status};
use crate::message::{
    Body, Bundle, BundleBody, Challenge, ChallengeBody, Message, Receipt, ReceiptBody, Reference,
    Release, ReleaseBody, Signed,
};
use crate::tee::Attestation;
use crate::types::{AppId, Digest, Measurement, Nonce};

/// Longest challenge lifetime accepted (7 days), in seconds.
pub const MAX_TTL: u64 = 7 * 24 * 3600;
/// Expired challenges are forgotten this long after expiry (1 day), in
/// seconds; until then a late bundle gets `expired-nonce`, after that
/// `unknown-nonce`.
pub const PRUNE_AFTER: u64 = 24 * 3600;
/// Most challenges that may be pending at once on one host.
pub const MAX_PENDING: usize = 4096;

/// Introspection's verdict on the code found in a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeVerdict {
    /// The code in the dump matches the reference's code measurement.
    Clean,
    /// The code in the dump differs from the reference.
    Modified,
    /// The evidence cannot decide (e.g. code pages missing from the dump).
    Unverifiable,
}

/// The execution-flow check of a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowVerdict {
    /// Every saved instruction pointer and return address is where the
    /// reference's control-flow graph allows.
    Ok,
    /// Some saved control flow is outside the reference's graph.
    Violation,
    /// Some saved control flow could not be judged (a thread without
    /// registers, code that does not decode or has no graph, an unwind that
    /// stopped before the outermost frame): not proven ok, so refused.
    Unverified,
}

/// What the source's analyzer found in the dump before sealing. Computed by
/// `talos-introspect`; this crate only compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealEvidence {
    /// The code measurement the dump was checked against; must be the
    /// reference's `code` (binds the verdict to this reference).
    pub reference_code: Measurement,
    /// Code integrity verdict of the dump.
    pub code: CodeVerdict,
    /// Execution-flow verdict of the dump.
    pub flow: FlowVerdict,
    /// The state digest of the dump (goes into the bundle).
    pub state: Measurement,
}

/// What the target's analyzer recomputed from the bytes it received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetEvidence {
    /// Digest of the binary to launch (compared with the reference's
    /// `binary`).
    pub binary: Measurement,
    /// Recomputed control-flow graph digest of that binary (compared with
    /// the reference's `cfg`).
    pub cfg: Measurement,
    /// Recomputed state digest of the state received (compared with the
    /// bundle's `state`).
    pub state: Measurement,
}

/// A granted launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The app that may now run here.
    pub app: AppId,
    /// Its epoch.
    pub epoch: u64,
    /// The bundle whose state it must start from.
    pub bundle: Digest,
    /// The source that released it.
    pub source: PublicKey,
}

/// The result of an abort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abort {
    /// The app was frozen and no release existed: it runs here again. The
    /// bundle sealed at `epoch` for `target` can never be released.
    Resumed {
        /// Epoch of the abandoned bundle.
        epoch: u64,
        /// The target it was meant for.
        target: PublicKey,
    },
    /// The app was not frozen here; nothing changed. Holds the status name
    /// (`running`, `launched` or `absent`).
    NotFrozen(&'static str),
}

fn reject<T>(reason: Rejection, detail: impl Into<String>) -> Result<T> {
    Err(Error::rejected(reason, detail))
}

/// Signer pinned for `role` (else `untrusted-key`), then signature (else
/// `bad-signature`).
fn authenticate<B: Body>(l: &Ledger, role: Role, m: &Signed<B>) -> Result<()> {
    if !l.is_trusted(role, m.signer()) {
        return reject(
            Rejection::UntrustedKey,
            format!(
                "{} signed by key {} which is not pinned as {role}",
                B::KIND,
                m.signer().id().short()
            ),
        );
    }
    m.verify_signature()
}

/// A reference is signed by a pinned owner (else `untrusted-key` or
/// `bad-signature`).
pub(crate) fn check_reference(l: &Ledger, reference: &Reference) -> Result<()> {
    authenticate(l, Role::Owner, reference)
}

fn record<'a>(l: &'a mut Ledger, app: &AppId) -> &'a mut AppRecord {
    l.apps.entry(app.clone()).or_insert(AppRecord {
        last_epoch: 0,
        status: Status::Running,
        releases: Vec::new(),
    })
}

fn short(k: &PublicKey) -> String {
    k.id().short()
}

/// Pin `key` for `role`. Returns whether it was new.
pub(crate) fn trust(l: &mut Ledger, role: Role, key: PublicKey) -> bool {
    l.trusted.insert((role, key))
}

/// Pin `key` as a peer because verified TEE evidence vouched for it, and
/// record what it proved (replacing an older record of the same key).
/// Returns whether the ledger changed.
pub(crate) fn trust_attested(l: &mut Ledger, key: PublicKey, att: Attestation) -> Result<bool> {
    att.validate()?;
    let new_key = l.trusted.insert((Role::Peer, key));
    let new_record = l.attested.get(&key) != Some(&att);
    if new_record {
        l.attested.insert(key, att);
    }
    Ok(new_key || new_record)
}

/// Register the first deployment of `app` on this host: `absent` becomes
/// `running`. Returns whether it changed anything (`running` and `launched`
/// are left alone). This is the one place an app comes into existence;
/// registering the same app on two hosts creates two instances, which the
/// protocol cannot (and does not claim to) detect.
pub(crate) fn register(l: &mut Ledger, app: &AppId) -> Result<bool> {
    match l.status_of(app) {
        Status::Absent => {
            record(l, app);
            Ok(true)
        }
        Status::Running | Status::Launched(_) => Ok(false),
        Status::Frozen(_) => reject(Rejection::AppFrozen, format!("{app} is frozen here")),
        Status::MigratedAway(r) => reject(
            Rejection::MigratedAway,
            format!(
                "{app} was released from here at epoch {}; it cannot be registered again",
                r.body().epoch
            ),
        ),
        Status::Accepted(_) => reject(
            Rejection::NoRelease,
            format!("{app} is held here waiting for a release"),
        ),
    }
}

/// Target: issue a challenge for `app` valid from `now` for `ttl` seconds.
pub(crate) fn challenge(
    l: &mut Ledger,
    me: &SecretKey,
    app: &AppId,
    now: u64,
    ttl: u64,
    nonce: Nonce,
) -> Result<Challenge> {
    if ttl == 0 || ttl > MAX_TTL {
        return Err(Error::BadArgument(format!(
            "challenge lifetime {ttl} s: must be 1 to {MAX_TTL} s"
        )));
    }
    let expires_at = now
        .checked_add(ttl)
        .ok_or_else(|| Error::BadArgument("challenge expiry overflows".into()))?;
    l.pending
        .retain(|_, p| p.expires_at.saturating_add(PRUNE_AFTER) > now);
    if l.pending.len() >= MAX_PENDING {
        return Err(Error::TooManyPending(l.pending.len()));
    }
    if l.pending.contains_key(&nonce) || l.accepted.values().any(|a| a.nonce == nonce) {
        return Err(Error::Random("nonce repeated".into()));
    }
    l.pending.insert(
        nonce,
        Pending {
            app: app.clone(),
            issued_at: now,
            expires_at,
        },
    );
    Ok(Challenge::sign(
        ChallengeBody {
            app: app.clone(),
            nonce,
            issued_at: now,
            expires_at,
        },
        me,
    ))
}

/// Source: freeze `app` and seal a bundle for the challenge's target.
pub(crate) fn seal(
    l: &mut Ledger,
    me: &SecretKey,
    app: &AppId,
    reference: &Reference,
    evidence: &SealEvidence,
    challenge: &Challenge,
    now: u64,
) -> Result<Bundle> {
    // 1. The inputs belong together.
    if reference.body().app != *app || challenge.body().app != *app {
        return reject(
            Rejection::Malformed,
            format!(
                "sealing {app} with a reference for {} and a challenge for {}",
                reference.body().app,
                challenge.body().app
            ),
        );
    }
    // 2. Reference from a pinned owner; 3. challenge from a pinned peer.
    authenticate(l, Role::Owner, reference)?;
    authenticate(l, Role::Peer, challenge)?;
    let target = *challenge.signer();
    if target == me.public() {
        return reject(
            Rejection::WrongTarget,
            "the challenge is from this host itself",
        );
    }
    // 4. Challenge not expired (by the target's clock as written in it).
    if now >= challenge.body().expires_at {
        return reject(
            Rejection::ExpiredNonce,
            format!(
                "challenge expired at {}, now is {now}",
                challenge.body().expires_at
            ),
        );
    }
    // 5. The app runs here.
    match l.status_of(app) {
        Status::Frozen(b) => {
            return reject(
                Rejection::AppFrozen,
                format!(
                    "{app} is frozen for target {} at epoch {} (bundle {}); finish or abort that migration first",
                    short(&b.body().target),
                    b.body().epoch,
                    b.id().short()
                ),
            );
        }
        Status::MigratedAway(r) => {
            return reject(
                Rejection::MigratedAway,
                format!(
                    "{app} was released to {} at epoch {}",
                    short(&r.body().target),
                    r.body().epoch
                ),
            );
        }
        Status::Accepted(r) => {
            return reject(
                Rejection::NoRelease,
                format!(
                    "{app} is held here waiting for a release from {}; it does not run here",
                    short(&r.body().source)
                ),
            );
        }
        Status::Absent => {
            return reject(
                Rejection::NoRelease,
                format!("{app} is not registered here and was never released to this host"),
            );
        }
        Status::Running | Status::Launched(_) => {}
    }
    // 6. Evidence: bound to this reference, clean, flow ok.
    if evidence.reference_code != reference.body().code {
        return reject(
            Rejection::CodeMismatch,
            format!(
                "the dump was checked against code {}, the reference says {}",
                evidence.reference_code,
                reference.body().code
            ),
        );
    }
    match evidence.code {
        CodeVerdict::Clean => {}
        CodeVerdict::Unverifiable => {
            return reject(
                Rejection::CodeUnverifiable,
                "introspection cannot decide whether the code in the dump is clean",
            );
        }
        CodeVerdict::Modified => {
            return reject(
                Rejection::CodeMismatch,
                "the code in the dump differs from the reference",
            );
        }
    }
    match evidence.flow {
        FlowVerdict::Ok => {}
        FlowVerdict::Violation => {
            return reject(
                Rejection::FlowViolation,
                "saved control flow in the dump is outside the reference's graph",
            );
        }
        FlowVerdict::Unverified => {
            return reject(
                Rejection::FlowUnverifiable,
                "introspection could not check the saved control flow of every thread in the dump",
            );
        }
    }
    let epoch = l
        .last_epoch(app)
        .checked_add(1)
        .ok_or_else(|| Error::BadArgument("epoch counter exhausted".into()))?;
    let bundle = Bundle::sign(
        BundleBody {
            app: app.clone(),
            epoch,
            reference: reference.id(),
            state: evidence.state.clone(),
            nonce: challenge.body().nonce,
            target,
        },
        me,
    );
    let rec = record(l, app);
    rec.last_epoch = epoch;
    rec.status = Status::Frozen(bundle.clone());
    Ok(bundle)
}

/// Target: verify a bundle against the reference and the recomputed
/// evidence; on success consume the nonce, record the bundle and sign a
/// receipt.
pub(crate) fn verify(
    l: &mut Ledger,
    me: &SecretKey,
    bundle: &Bundle,
    reference: &Reference,
    evidence: &TargetEvidence,
    now: u64,
) -> Result<Receipt> {
    // 1. Reference from a pinned owner; 2. bundle from a pinned peer.
    authenticate(l, Role::Owner, reference)?;
    authenticate(l, Role::Peer, bundle)?;
    let b = bundle.body();
    let app = &b.app;
    // 3. Addressed to this host.
    if b.target != me.public() {
        return reject(
            Rejection::WrongTarget,
            format!(
                "bundle is for host {}, this is {}",
                short(&b.target),
                short(&me.public())
            ),
        );
    }
    // 4. Sealed against this reference.
    if b.reference != reference.id() || reference.body().app != *app {
        return reject(
            Rejection::CodeMismatch,
            format!(
                "bundle for {app} was sealed against reference {}, not the given reference {} for {}",
                b.reference.short(),
                reference.id().short(),
                reference.body().app
            ),
        );
    }
    // 5. Never accepted before; 6. nonce not consumed; 7. issued here for
    // this app; 8. unexpired.
    let id = bundle.id();
    if l.accepted.contains_key(&id) {
        return reject(
            Rejection::AlreadyAccepted,
            format!("bundle {} was already accepted here", id.short()),
        );
    }
    if let Some((other, _)) = l.accepted.iter().find(|(_, a)| a.nonce == b.nonce) {
        return reject(
            Rejection::NonceReused,
            format!(
                "nonce {} was already consumed by bundle {}",
                b.nonce.to_hex().get(..16).unwrap_or_default(),
                other.short()
            ),
        );
    }
    let Some(pending) = l.pending.get(&b.nonce) else {
        return reject(
            Rejection::UnknownNonce,
            "the bundle's nonce was not issued by this host (or was forgotten long after expiry)",
        );
    };
    if pending.app != *app {
        return reject(
            Rejection::UnknownNonce,
            format!("the nonce was issued for {}, not {app}", pending.app),
        );
    }
    if now >= pending.expires_at {
        return reject(
            Rejection::ExpiredNonce,
            format!("the nonce expired at {}, now is {now}", pending.expires_at),
        );
    }
    // 9. Newer than anything seen for the app.
    let last = l.last_epoch(app);
    if b.epoch <= last {
        return reject(
            Rejection::EpochRollback,
            format!("bundle epoch {} is not newer than {last}", b.epoch),
        );
    }
    // 10. The app is not live or frozen here.
    match l.status_of(app) {
        Status::Running | Status::Launched(_) => {
            return reject(
                Rejection::AlreadyAccepted,
                format!("{app} already runs on this host"),
            );
        }
        Status::Frozen(f) => {
            return reject(
                Rejection::AppFrozen,
                format!(
                    "{app} is frozen here for migration to {}",
                    short(&f.body().target)
                ),
            );
        }
        Status::Accepted(r) if r.body().source != *bundle.signer() => {
            return reject(
                Rejection::AppFrozen,
                format!(
                    "{app} is held here for a release from another source {}",
                    short(&r.body().source)
                ),
            );
        }
        // A newer bundle from the same source supersedes one it aborted.
        Status::Accepted(_) | Status::Absent | Status::MigratedAway(_) => {}
    }
    // 11. Evidence: graph, binary, state.
    let r = reference.body();
    if evidence.cfg != r.cfg {
        return reject(
            Rejection::CfgMismatch,
            format!("control-flow graph {} != reference {}", evidence.cfg, r.cfg),
        );
    }
    if evidence.binary != r.binary {
        return reject(
            Rejection::CodeMismatch,
            format!("binary {} != reference {}", evidence.binary, r.binary),
        );
    }
    if evidence.state != b.state {
        return reject(
            Rejection::StateMismatch,
            format!("state {} != sealed {}", evidence.state, b.state),
        );
    }
    let source = *bundle.signer();
    l.pending.remove(&b.nonce);
    l.accepted.insert(
        id,
        AcceptedRecord {
            app: app.clone(),
            epoch: b.epoch,
            nonce: b.nonce,
            source,
        },
    );
    let receipt = Receipt::sign(
        ReceiptBody {
            app: app.clone(),
            epoch: b.epoch,
            bundle: id,
            nonce: b.nonce,
            source,
        },
        me,
    );
    let rec = record(l, app);
    rec.last_epoch = b.epoch;
    rec.status = Status::Accepted(receipt.clone());
    Ok(receipt)
}

/// Source: on a receipt for the bundle the app is frozen for, give the app
/// up for good and sign the release.
pub(crate) fn commit(l: &mut Ledger, me: &SecretKey, receipt: &Receipt) -> Result<Release> {
    // 1. Receipt from a pinned peer.
    authenticate(l, Role::Peer, receipt)?;
    let r = receipt.body();
    let app = &r.app;
    // 2. Answers this host.
    if r.source != me.public() {
        return reject(
            Rejection::WrongTarget,
            format!("receipt answers source {}, not this host", short(&r.source)),
        );
    }
    // 3. The app is frozen here for exactly this bundle and target.
    let target = match l.status_of(app) {
        Status::MigratedAway(rel) => {
            return reject(
                Rejection::MigratedAway,
                format!(
                    "{app} was already released at epoch {} to {}; resend gives that release again",
                    rel.body().epoch,
                    short(&rel.body().target)
                ),
            );
        }
        Status::Frozen(b) => {
            if receipt.signer() != &b.body().target {
                return reject(
                    Rejection::WrongTarget,
                    format!(
                        "receipt signed by {}, but {app} is frozen for {}",
                        short(receipt.signer()),
                        short(&b.body().target)
                    ),
                );
            }
            if r.bundle != b.id() || r.nonce != b.body().nonce || r.epoch != b.body().epoch {
                return reject(
                    Rejection::UnknownNonce,
                    format!(
                        "receipt is for bundle {} at epoch {}, this host is frozen for bundle {} at epoch {}",
                        r.bundle.short(),
                        r.epoch,
                        b.id().short(),
                        b.body().epoch
                    ),
                );
            }
            b.body().target
        }
        other => {
            return reject(
                Rejection::UnknownNonce,
                format!(
                    "no migration of {app} is in flight here (status {})",
                    other.name()
                ),
            );
        }
    };
    let release = Release::sign(
        ReleaseBody {
            app: app.clone(),
            epoch: r.epoch,
            bundle: r.bundle,
            target,
        },
        me,
    );
    let rec = record(l, app);
    rec.status = Status::MigratedAway(release.clone());
    rec.releases.push(ReleaseRecord {
        epoch: r.epoch,
        target,
        bundle: r.bundle,
    });
    Ok(release)
}

/// Target: on a valid release for the bundle held here, mark the app
/// launched. One release launches once.
pub(crate) fn launch(l: &mut Ledger, me: &SecretKey, release: &Release) -> Result<Launch> {
    // 1. Release from a pinned peer.
    authenticate(l, Role::Peer, release)?;
    let r = release.body();
    let app = &r.app;
    // 2. Addressed to this host.
    if r.target != me.public() {
        return reject(
            Rejection::WrongTarget,
            format!("release is for host {}, not this host", short(&r.target)),
        );
    }
    // 3. Releases exactly the bundle verified and held here.
    match l.status_of(app) {
        Status::Launched(prev) if prev.body().bundle == r.bundle => {
            return reject(
                Rejection::AlreadyAccepted,
                format!(
                    "release for bundle {} was already used to launch",
                    r.bundle.short()
                ),
            );
        }
        Status::Accepted(rc) => {
            let held = rc.body();
            if held.bundle != r.bundle || held.epoch != r.epoch || held.source != *release.signer()
            {
                return reject(
                    Rejection::NoRelease,
                    format!(
                        "release is for bundle {} at epoch {} from {}, the bundle held here is {} at epoch {} from {}",
                        r.bundle.short(),
                        r.epoch,
                        short(release.signer()),
                        held.bundle.short(),
                        held.epoch,
                        short(&held.source)
                    ),
                );
            }
        }
        other => {
            return reject(
                Rejection::NoRelease,
                format!(
                    "no verified bundle of {app} awaits a release here (status {})",
                    other.name()
                ),
            );
        }
    }
    let rec = record(l, app);
    rec.status = Status::Launched(release.clone());
    Ok(Launch {
        app: app.clone(),
        epoch: r.epoch,
        bundle: r.bundle,
        source: *release.signer(),
    })
}

/// Source: resume a frozen app locally, only while no release exists.
pub(crate) fn abort(l: &mut Ledger, app: &AppId) -> Result<Abort> {
    let (epoch, target, bundle) = match l.status_of(app) {
        Status::Frozen(b) => (b.body().epoch, b.body().target, b.id()),
        Status::MigratedAway(r) => {
            return reject(
                Rejection::MigratedAway,
                format!(
                    "{app} was released at epoch {} to {}; it must not resume here",
                    r.body().epoch,
                    short(&r.body().target)
                ),
            );
        }
        Status::Accepted(r) => {
            return reject(
                Rejection::NoRelease,
                format!(
                    "{app} is held here waiting for a release from {}; it has never run here",
                    short(&r.body().source)
                ),
            );
        }
        s @ (Status::Running | Status::Launched(_) | Status::Absent) => {
            return Ok(Abort::NotFrozen(s.name()));
        }
    };
    let rec = record(l, app);
    if rec.releases.iter().any(|r| r.bundle == bundle) {
        // Unreachable by construction (commit leaves `frozen`); kept as a
        // fail-closed guard.
        return reject(
            Rejection::MigratedAway,
            format!("a release for bundle {} exists", bundle.short()),
        );
    }
    rec.status = Status::Running;
    Ok(Abort::Resumed { epoch, target })
}

/// The last message this host sent for `app`'s migration in flight, to send
/// again after a loss: the bundle (frozen), the receipt (accepted) or the
/// release (migrated away).
pub(crate) fn resend(l: &Ledger, app: &AppId) -> Option<Message> {
    match l.status_of(app) {
        Status::Frozen(b) => Some(Message::Bundle(b.clone())),
        Status::Accepted(r) => Some(Message::Receipt(r.clone())),
        Status::MigratedAway(r) => Some(Message::Release(r.clone())),
        Status::Absent | Status::Running | Status::Launched(_) => None,
    }
}
