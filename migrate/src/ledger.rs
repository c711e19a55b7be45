//! The per-host ledger: what this host has pinned, seen, issued and
//! accepted.
//!
//! The ledger is one binary file with a blake3 checksum trailer (layout in
//! `docs/migrate-protocol.md`). It is decoded strictly: maps must be in
//! strictly increasing key order, every embedded message must decode and
//! belong where it is, and the checksum must match, so a corrupted ledger is
//! refused (fail closed) rather than half-read.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::codec;
use crate::error::{Error, Result};
use crate::keys::{PublicKey, Role};
use crate::message::{Body, Bundle, MAX_MESSAGE_LEN, Receipt, Release, Signed};
use crate::tee::Attestation;
use crate::types::{AppId, Digest, Nonce};

/// The 8 bytes a ledger file starts with.
pub const LEDGER_MAGIC: &[u8; 8] = b"TALOSLDG";
/// The ledger format version of a ledger with no attested key.
pub const LEDGER_VERSION: u8 = 1;
/// The ledger format version with the attested-keys section (written only
/// when a peer was pinned with attestation evidence, so a host that never
/// used attestation keeps byte-identical version 1 ledgers).
pub const LEDGER_ATTESTED_VERSION: u8 = 2;
/// Largest accepted ledger file.
pub const MAX_LEDGER_LEN: usize = 64 * 1024 * 1024;
const CHECKSUM_CONTEXT: &str = "talos 2026-11 ledger checksum v1";

/// Where an app stands on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Never seen here.
    Absent,
    /// Runs here (deployed here, or resumed after an abort).
    Running,
    /// Frozen for migration to the bundle's target; may resume only by abort,
    /// and only while no release exists.
    Frozen(Bundle),
    /// A bundle from a source was verified here; waiting for its release.
    /// Holds the receipt this host issued.
    Accepted(Receipt),
    /// Released to a target for good. Holds the release this host issued.
    MigratedAway(Release),
    /// Launched here with this release.
    Launched(Release),
}

impl Status {
    /// `absent`, `running`, `frozen`, `accepted`, `migrated-away` or
    /// `launched`.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Absent => "absent",
            Status::Running => "running",
            Status::Frozen(_) => "frozen",
            Status::Accepted(_) => "accepted",
            Status::MigratedAway(_) => "migrated-away",
            Status::Launched(_) => "launched",
        }
    }

    /// Whether the app may run on this host in this status.
    pub fn may_run(&self) -> bool {
        matches!(self, Status::Running | Status::Launched(_))
    }

    /// The epoch of the migration this status is about, if any.
    pub fn epoch(&self) -> Option<u64> {
        match self {
            Status::Absent | Status::Running => None,
            Status::Frozen(b) => Some(b.body().epoch),
            Status::Accepted(r) => Some(r.body().epoch),
            Status::MigratedAway(r) | Status::Launched(r) => Some(r.body().epoch),
        }
    }

    /// The id of the bundle this status is about, if any.
    pub fn bundle_id(&self) -> Option<Digest> {
        match self {
            Status::Absent | Status::Running => None,
            Status::Frozen(b) => Some(b.id()),
            Status::Accepted(r) => Some(r.body().bundle),
            Status::MigratedAway(r) | Status::Launched(r) => Some(r.body().bundle),
        }
    }

    /// The other host of the migration: the target for `frozen` and
    /// `migrated-away`, the source for `accepted` and `launched`.
    pub fn peer(&self) -> Option<PublicKey> {
        match self {
            Status::Absent | Status::Running => None,
            Status::Frozen(b) => Some(b.body().target),
            Status::Accepted(r) => Some(r.body().source),
            Status::MigratedAway(r) => Some(r.body().target),
            Status::Launched(r) => Some(*r.signer()),
        }
    }

    fn tag(&self) -> u8 {
        match self {
            Status::Absent => 0,
            Status::Running => 1,
            Status::Frozen(_) => 2,
            Status::Accepted(_) => 3,
            Status::MigratedAway(_) => 4,
            Status::Launched(_) => 5,
        }
    }
}

/// A release this host issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRecord {
    /// Epoch released.
    pub epoch: u64,
    /// Host released to.
    pub target: PublicKey,
    /// Bundle released.
    pub bundle: Digest,
}

/// Everything this host records about one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRecord {
    /// The newest epoch this host has seen or issued for the app.
    pub last_epoch: u64,
    /// Where the app stands here.
    pub status: Status,
    /// Every release this host ever issued for the app, oldest first.
    pub releases: Vec<ReleaseRecord>,
}

/// A challenge this host issued and has not seen answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The app the nonce was issued for.
    pub app: AppId,
    /// Issue time (seconds since the Unix epoch).
    pub issued_at: u64,
    /// Expiry (seconds since the Unix epoch); invalid from this second on.
    pub expires_at: u64,
}

/// A bundle this host accepted (forever remembered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedRecord {
    /// The app.
    pub app: AppId,
    /// The bundle's epoch.
    pub epoch: u64,
    /// The nonce it consumed.
    pub nonce: Nonce,
    /// The source that sealed it.
    pub source: PublicKey,
}

/// One host's ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    /// This host's public key.
    pub host: PublicKey,
    /// Pinned keys and the role each is trusted for.
    pub trusted: BTreeSet<(Role, PublicKey)>,
    /// Per app: epoch, status, releases issued.
    pub apps: BTreeMap<AppId, AppRecord>,
    /// Challenges issued and not yet consumed, by nonce.
    pub pending: BTreeMap<Nonce, Pending>,
    /// Every bundle ever accepted here, by bundle id.
    pub accepted: BTreeMap<Digest, AcceptedRecord>,
    /// Peer keys pinned because verified TEE evidence vouched for them,
    /// with what it proved. Every key here is pinned as a peer.
    pub attested: BTreeMap<PublicKey, Attestation>,
}

impl Ledger {
    /// An empty ledger for a host.
    pub fn new(host: PublicKey) -> Ledger {
        Ledger {
            host,
            trusted: BTreeSet::new(),
            apps: BTreeMap::new(),
            pending: BTreeMap::new(),
            accepted: BTreeMap::new(),
            attested: BTreeMap::new(),
        }
    }

    /// Whether `key` is pinned for `role`.
    pub fn is_trusted(&self, role: Role, key: &PublicKey) -> bool {
        self.trusted.contains(&(role, *key))
    }

    /// The status of `app` ([`Status::Absent`] when never seen).
    pub fn status_of(&self, app: &AppId) -> &Status {
        self.apps.get(app).map_or(&Status::Absent, |r| &r.status)
    }

    /// The newest epoch seen for `app` (0 when never seen).
    pub fn last_epoch(&self, app: &AppId) -> u64 {
        self.apps.get(app).map_or(0, |r| r.last_epoch)
    }

    /// The canonical file bytes, checksum included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(LEDGER_MAGIC);
        out.push(if self.attested.is_empty() {
            LEDGER_VERSION
        } else {
            LEDGER_ATTESTED_VERSION
        });
        codec::put_32(&mut out, &self.host.to_bytes());
        codec::put_count(&mut out, self.trusted.len());
        for (role, key) in &self.trusted {
            codec::put_u8(&mut out, role.tag());
            codec::put_32(&mut out, &key.to_bytes());
        }
        codec::put_count(&mut out, self.apps.len());
        for (app, rec) in &self.apps {
            codec::put_str8(&mut out, app.as_str());
            codec::put_u64(&mut out, rec.last_epoch);
            codec::put_u8(&mut out, rec.status.tag());
            match &rec.status {
                Status::Absent | Status::Running => {}
                Status::Frozen(m) => codec::put_blob32(&mut out, &m.encode()),
                Status::Accepted(m) => codec::put_blob32(&mut out, &m.encode()),
                Status::MigratedAway(m) | Status::Launched(m) => {
                    codec::put_blob32(&mut out, &m.encode());
                }
            }
            codec::put_count(&mut out, rec.releases.len());
            for r in &rec.releases {
                codec::put_u64(&mut out, r.epoch);
                codec::put_32(&mut out, &r.target.to_bytes());
                codec::put_32(&mut out, &r.bundle.0);
            }
        }
        codec::put_count(&mut out, self.pending.len());
        for (nonce, p) in &self.pending {
            codec::put_32(&mut out, &nonce.0);
            codec::put_str8(&mut out, p.app.as_str());
            codec::put_u64(&mut out, p.issued_at);
            codec::put_u64(&mut out, p.expires_at);
        }
        codec::put_count(&mut out, self.accepted.len());
        for (id, a) in &self.accepted {
            codec::put_32(&mut out, &id.0);
            codec::put_str8(&mut out, a.app.as_str());
            codec::put_u64(&mut out, a.epoch);
            codec::put_32(&mut out, &a.nonce.0);
            codec::put_32(&mut out, &a.source.to_bytes());
        }
        if !self.attested.is_empty() {
            codec::put_count(&mut out, self.attested.len());
            for (key, a) in &self.attested {
                codec::put_32(&mut out, &key.to_bytes());
                a.encode(&mut out);
            }
        }
        let sum = Digest::derive(CHECKSUM_CONTEXT, &out);
        codec::put_32(&mut out, &sum.0);
        out
    }

    /// Decode a ledger file strictly (checksum, order, consistency).
    ///
    /// # Errors
    /// [`Error::Malformed`] on any deviation.
    pub fn decode(bytes: &[u8]) -> Result<Ledger> {
        const W: &str = "ledger";
        if bytes.len() > MAX_LEDGER_LEN {
            return Err(Error::malformed(
                W,
                format!(
                    "{} bytes exceeds the limit of {MAX_LEDGER_LEN}",
                    bytes.len()
                ),
            ));
        }
        let Some(body_len) = bytes.len().checked_sub(32) else {
            return Err(Error::malformed(W, "shorter than the checksum"));
        };
        let (body, sum) = bytes.split_at(body_len);
        if body.get(..8) != Some(LEDGER_MAGIC.as_slice()) {
            return Err(Error::malformed(W, "not a talos ledger (bad magic)"));
        }
        if Digest::derive(CHECKSUM_CONTEXT, body).0.as_slice() != sum {
            return Err(Error::malformed(W, "checksum mismatch"));
        }
        let mut cur = body.get(8..).unwrap_or_default();
        let version = codec::get_u8(&mut cur, W)?;
        if version != LEDGER_VERSION && version != LEDGER_ATTESTED_VERSION {
            return Err(Error::malformed(
                W,
                format!(
                    "format version {version}, this build reads {LEDGER_VERSION} and {LEDGER_ATTESTED_VERSION}"
                ),
            ));
        }
        let host = key(&mut cur)?;
        let mut ledger = Ledger::new(host);

        let n = codec::get_count(&mut cur, 33, W)?;
        for _ in 0..n {
            let role = Role::from_tag(codec::get_u8(&mut cur, W)?)
                .ok_or_else(|| Error::malformed(W, "unknown role"))?;
            let k = key(&mut cur)?;
            ordered(ledger.trusted.last(), &(role, k), "trusted keys")?;
            ledger.trusted.insert((role, k));
        }

        let n = codec::get_count(&mut cur, 14, W)?;
        for _ in 0..n {
            let app = AppId::decode(&mut cur, W)?;
            ordered(ledger.apps.last_key_value().map(|x| x.0), &app, "apps")?;
            let last_epoch = codec::get_u64(&mut cur, W)?;
            let status = decode_status(&mut cur, &app, &host, last_epoch)?;
            let m = codec::get_count(&mut cur, 72, W)?;
            let mut releases: Vec<ReleaseRecord> = Vec::with_capacity(m);
            for _ in 0..m {
                let epoch = codec::get_u64(&mut cur, W)?;
                if releases.last().is_some_and(|r| r.epoch >= epoch) || epoch > last_epoch {
                    return Err(Error::malformed(W, "release epochs out of order"));
                }
                releases.push(ReleaseRecord {
                    epoch,
                    target: key(&mut cur)?,
                    bundle: Digest(codec::get_32(&mut cur, W)?),
                });
            }
            ledger.apps.insert(
                app,
                AppRecord {
                    last_epoch,
                    status,
                    releases,
                },
            );
        }

        let n = codec::get_count(&mut cur, 50, W)?;
        for _ in 0..n {
            let nonce = Nonce(codec::get_32(&mut cur, W)?);
            ordered(
                ledger.pending.last_key_value().map(|x| x.0),
                &nonce,
                "pending",
            )?;
            let p = Pending {
                app: AppId::decode(&mut cur, W)?,
                issued_at: codec::get_u64(&mut cur, W)?,
                expires_at: codec::get_u64(&mut cur, W)?,
            };
            ledger.pending.insert(nonce, p);
        }

        let n = codec::get_count(&mut cur, 106, W)?;
        for _ in 0..n {
            let id = Digest(codec::get_32(&mut cur, W)?);
            ordered(
                ledger.accepted.last_key_value().map(|x| x.0),
                &id,
                "accepted",
            )?;
            let a = AcceptedRecord {
                app: AppId::decode(&mut cur, W)?,
                epoch: codec::get_u64(&mut cur, W)?,
                nonce: Nonce(codec::get_32(&mut cur, W)?),
                source: key(&mut cur)?,
            };
            ledger.accepted.insert(id, a);
        }
        if version == LEDGER_ATTESTED_VERSION {
            // Non-empty in version 2: one encoding per content.
            let n = codec::get_count(&mut cur, 32 + 34 + 1 + 1 + 32 + 8 + 1, W)?;
            if n == 0 {
                return Err(Error::malformed(W, "empty attested-keys section"));
            }
            for _ in 0..n {
                let k = key(&mut cur)?;
                ordered(
                    ledger.attested.last_key_value().map(|x| x.0),
                    &k,
                    "attested keys",
                )?;
                if !ledger.is_trusted(Role::Peer, &k) {
                    return Err(Error::malformed(
                        W,
                        format!("attested key {} is not pinned as a peer", k.id().short()),
                    ));
                }
                ledger.attested.insert(k, Attestation::decode(&mut cur, W)?);
            }
        }
        codec::finish(cur, W)?;
        Ok(ledger)
    }

    /// A serialisable view for `talos migrate status`.
    pub fn view(&self) -> LedgerView {
        LedgerView {
            host: self.host.to_string(),
            host_id: self.host.id().to_hex(),
            trusted: self
                .trusted
                .iter()
                .map(|(role, k)| {
                    let att = (*role == Role::Peer)
                        .then(|| self.attested.get(k))
                        .flatten();
                    TrustedView {
                        role: role.name().to_owned(),
                        key: k.to_string(),
                        key_id: k.id().to_hex(),
                        pinned: if att.is_some() { "attested" } else { "by-hand" }.to_owned(),
                        attestation: att.map(AttestationView::of),
                    }
                })
                .collect(),
            apps: self
                .apps
                .iter()
                .map(|(app, r)| {
                    (
                        app.to_string(),
                        AppView {
                            status: r.status.name().to_owned(),
                            last_epoch: r.last_epoch,
                            epoch: r.status.epoch(),
                            bundle: r.status.bundle_id().map(|d| d.to_hex()),
                            peer: r.status.peer().map(|k| k.to_string()),
                            releases: r
                                .releases
                                .iter()
                                .map(|x| ReleaseView {
                                    epoch: x.epoch,
                                    target: x.target.to_string(),
                                    bundle: x.bundle.to_hex(),
                                })
                                .collect(),
                        },
                    )
                })
                .collect(),
            pending: self
                .pending
                .iter()
                .map(|(n, p)| PendingView {
                    nonce: n.to_hex(),
                    app: p.app.to_string(),
                    issued_at: p.issued_at,
                    expires_at: p.expires_at,
                })
                .collect(),
            accepted: self
                .accepted
                .iter()
                .map(|(id, a)| AcceptedView {
                    bundle: id.to_hex(),
                    app: a.app.to_string(),
                    epoch: a.epoch,
                    source: a.source.to_string(),
                })
                .collect(),
        }
    }
}

fn key(cur: &mut &[u8]) -> Result<PublicKey> {
    let b = codec::get_32(cur, "ledger")?;
    PublicKey::from_bytes(&b).map_err(|e| Error::malformed("ledger", e.to_string()))
}

fn ordered<T: Ord>(last: Option<&T>, next: &T, what: &str) -> Result<()> {
    if last.is_some_and(|l| l >= next) {
        return Err(Error::malformed(
            "ledger",
            format!("{what} not in strictly increasing order"),
        ));
    }
    Ok(())
}

fn embedded<B: Body>(cur: &mut &[u8], app: &AppId, last_epoch: u64) -> Result<Signed<B>> {
    let bytes = codec::get_blob32(cur, MAX_MESSAGE_LEN, "ledger")?;
    let m = Signed::<B>::decode(bytes)?;
    if m.body().app() != app {
        return Err(Error::malformed(
            "ledger",
            format!("{} for another app in {app}", B::KIND),
        ));
    }
    // A kind without an epoch (a reference) is never newer than the last.
    if m.body().epoch().is_some_and(|e| e > last_epoch) {
        return Err(Error::malformed(
            "ledger",
            format!("app {app}: status epoch newer than last epoch"),
        ));
    }
    Ok(m)
}

fn decode_status(
    cur: &mut &[u8],
    app: &AppId,
    host: &PublicKey,
    last_epoch: u64,
) -> Result<Status> {
    let bad = |d: &str| Err(Error::malformed("ledger", format!("app {app}: {d}")));
    match codec::get_u8(cur, "ledger")? {
        1 => Ok(Status::Running),
        2 => {
            let b: Bundle = embedded(cur, app, last_epoch)?;
            if b.signer() != host {
                return bad("frozen bundle not signed by this host");
            }
            Ok(Status::Frozen(b))
        }
        3 => {
            let r: Receipt = embedded(cur, app, last_epoch)?;
            if r.signer() != host {
                return bad("receipt not signed by this host");
            }
            Ok(Status::Accepted(r))
        }
        4 => {
            let r: Release = embedded(cur, app, last_epoch)?;
            if r.signer() != host {
                return bad("release not signed by this host");
            }
            Ok(Status::MigratedAway(r))
        }
        5 => {
            let r: Release = embedded(cur, app, last_epoch)?;
            if r.body().target != *host {
                return bad("launch release not addressed to this host");
            }
            Ok(Status::Launched(r))
        }
        t => bad(&format!("unknown status tag {t}")),
    }
}

/// Serialisable view of a [`Ledger`] (all keys and digests in hex).
#[derive(Debug, Clone, Serialize)]
pub struct LedgerView {
    /// This host's public key.
    pub host: String,
    /// Its key id.
    pub host_id: String,
    /// Pinned keys.
    pub trusted: Vec<TrustedView>,
    /// Apps by id.
    pub apps: BTreeMap<String, AppView>,
    /// Pending challenges.
    pub pending: Vec<PendingView>,
    /// Accepted bundles.
    pub accepted: Vec<AcceptedView>,
}

/// A pinned key.
#[derive(Debug, Clone, Serialize)]
pub struct TrustedView {
    /// `owner` or `peer`.
    pub role: String,
    /// Public key.
    pub key: String,
    /// Key id.
    pub key_id: String,
    /// `attested` (verified TEE evidence vouched for it) or `by-hand`.
    pub pinned: String,
    /// What the evidence proved, for attested keys.
    pub attestation: Option<AttestationView>,
}

/// What attestation evidence proved about a pinned peer key.
#[derive(Debug, Clone, Serialize)]
pub struct AttestationView {
    /// `sgx`, `tdx` or `keystone`.
    pub tee: String,
    /// The measurement, `KIND:HEX`.
    pub measurement: String,
    /// TCB status (Intel's name, or `not-applicable`).
    pub tcb: String,
    /// Advisory ids.
    pub advisories: Vec<String>,
    /// blake3 of the evidence file.
    pub evidence: String,
    /// When it was verified (seconds since the Unix epoch).
    pub verified_at: u64,
    /// Id of the reference that allowed the measurement.
    pub reference: Option<String>,
}

impl AttestationView {
    fn of(a: &Attestation) -> AttestationView {
        AttestationView {
            tee: a.tee().to_owned(),
            measurement: a.measurement.to_string(),
            tcb: a.tcb.name().to_owned(),
            advisories: a.advisories.iter().cloned().collect(),
            evidence: a.evidence.to_hex(),
            verified_at: a.verified_at,
            reference: a.reference.map(|d| d.to_hex()),
        }
    }
}

/// One app's record.
#[derive(Debug, Clone, Serialize)]
pub struct AppView {
    /// Status name.
    pub status: String,
    /// Newest epoch seen.
    pub last_epoch: u64,
    /// Epoch of the migration the status is about.
    pub epoch: Option<u64>,
    /// Bundle id the status is about.
    pub bundle: Option<String>,
    /// The other host (target when frozen/migrated away, source when
    /// accepted/launched).
    pub peer: Option<String>,
    /// Releases issued.
    pub releases: Vec<ReleaseView>,
}

/// A release issued.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseView {
    /// Epoch.
    pub epoch: u64,
    /// Target key.
    pub target: String,
    /// Bundle id.
    pub bundle: String,
}

/// A pending challenge.
#[derive(Debug, Clone, Serialize)]
pub struct PendingView {
    /// Nonce.
    pub nonce: String,
    /// App.
    pub app: String,
    /// Issue time.
    pub issued_at: u64,
    /// Expiry.
    pub expires_at: u64,
}

/// An accepted bundle.
#[derive(Debug, Clone, Serialize)]
pub struct AcceptedView {
    /// Bundle id.
    pub bundle: String,
    /// App.
    pub app: String,
    /// Epoch.
    pub epoch: u64,
    /// Source key.
    pub source: String,
}

fn short(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}

impl fmt::Display for LedgerView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "host {} (id {})", self.host, short(&self.host_id))?;
        writeln!(f, "trusted keys: {}", self.trusted.len())?;
        for t in &self.trusted {
            writeln!(f, "  {:5}  {}  (id {})", t.role, t.key, short(&t.key_id))?;
            match &t.attestation {
                Some(a) => {
                    let adv = if a.advisories.is_empty() {
                        String::new()
                    } else {
                        format!(", advisories {}", a.advisories.join(" "))
                    };
                    writeln!(
                        f,
                        "         attested: {} {} (tcb {}{adv}) at {}",
                        a.tee, a.measurement, a.tcb, a.verified_at
                    )?;
                }
                None => writeln!(f, "         pinned by hand")?,
            }
        }
        writeln!(f, "apps: {}", self.apps.len())?;
        for (app, a) in &self.apps {
            write!(f, "  {app}: {} (last epoch {})", a.status, a.last_epoch)?;
            if let (Some(e), Some(b)) = (a.epoch, &a.bundle) {
                write!(f, ", epoch {e}, bundle {}", short(b))?;
            }
            if let Some(p) = &a.peer {
                write!(f, ", peer {}", short(p))?;
            }
            writeln!(f)?;
            for r in &a.releases {
                writeln!(
                    f,
                    "    released epoch {} to {} (bundle {})",
                    r.epoch,
                    short(&r.target),
                    short(&r.bundle)
                )?;
            }
        }
        writeln!(f, "pending challenges: {}", self.pending.len())?;
        for p in &self.pending {
            writeln!(
                f,
                "  {} for {} (expires at {})",
                short(&p.nonce),
                p.app,
                p.expires_at
            )?;
        }
        writeln!(f, "accepted bundles: {}", self.accepted.len())?;
        for a in &self.accepted {
            writeln!(
                f,
                "  {} {} epoch {} from {}",
                short(&a.bundle),
                a.app,
                a.epoch,
                short(&a.source)
            )?;
        }
        Ok(())
    }
}
