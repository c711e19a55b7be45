//! `talos-migrate`: the gate that lets a trusted application (TA) move from
//! one host to another and run in exactly one place.
//!
//! Design tenets:
//! - **Small.** Digests, signatures, one ledger file and a state machine of
//!   six operations. The whole trust-critical gate is this crate; read
//!   [`machine`] to audit it.
//! - **Fail closed.** Every check that fails rejects the whole operation with
//!   exactly one stable [`Rejection`] reason; nothing is accepted partially,
//!   and the ledger is written only after every check has passed.
//!   Unreadable, oversized, non-canonical or corrupted input is refused, never
//!   half-read.
//! - **No parsers.** This crate links no binary or dump parser (it does not
//!   depend on `talos-cfg` or `talos-introspect`). The analyzer computes
//!   measurements and hands them over as opaque labelled digests
//!   ([`Measurement`]); this crate only compares them.
//! - **No trusted third party.** Each host trusts only the public keys pinned
//!   in its own ledger ([`Host::trust`]): owners sign references, peers sign
//!   challenges, bundles, receipts and releases.
//! - **Crash-safe and race-free.** Each operation runs under an exclusive
//!   file lock and replaces the ledger atomically and durably, so a crash at
//!   any instant leaves the old or the new ledger and two processes never
//!   both accept. Failpoints (the `test-hooks` feature, tests only) let
//!   tests prove it.
//! - **Deterministic.** Canonical encodings, deterministic signatures,
//!   `BTreeMap`s; the same inputs give the same bytes.
//!
//! The exchange (details and the safety argument in
//! `docs/migrate-protocol.md`):
//!
//! ```text
//! source: register (once, where the app is first deployed)
//! target: challenge ──► source: seal ──► target: verify ──► source: commit ──► target: launch
//!         (nonce)               (bundle)          (receipt)           (release)
//! source: abort (only while no release exists)
//! ```
//!
//! ```
//! use talos_migrate::*;
//! # fn main() -> Result<()> {
//! let tmp = std::env::temp_dir().join(format!("talos-doc-{}", std::process::id()));
//! let (s, t) = (Host::init(&tmp.join("s"))?, Host::init(&tmp.join("t"))?);
//! let owner = SecretKey::generate();
//! for h in [&s, &t] {
//!     h.trust(Role::Owner, &owner.public())?;
//! }
//! s.trust(Role::Peer, &t.public_key())?;
//! t.trust(Role::Peer, &s.public_key())?;
//!
//! let d = |b: u8| Digest([b; 32]);
//! let app = AppId::new("demo")?;
//! s.register(&app)?; // first deployment of the app is on s
//! let reference = Reference::sign(ReferenceBody {
//!     app: app.clone(),
//!     version: Version::new("1")?,
//!     binary: Measurement::new("blake3", d(1))?,
//!     code: Measurement::new("talos.code/1", d(2))?,
//!     cfg: Measurement::new("talos.cfg/1", d(3))?,
//!     tee: Default::default(),
//! }, &owner);
//! let state = Measurement::new("talos.state/1", d(4))?;
//!
//! let now = 1_800_000_000;
//! let challenge = t.challenge(&app, now, 600)?;
//! let bundle = s.seal(&app, &reference, &SealEvidence {
//!     reference_code: reference.body().code.clone(),
//!     code: CodeVerdict::Clean,
//!     flow: FlowVerdict::Ok,
//!     state: state.clone(),
//! }, &challenge, now)?;
//! let receipt = t.verify(&bundle, &reference, &TargetEvidence {
//!     binary: reference.body().binary.clone(),
//!     cfg: reference.body().cfg.clone(),
//!     state,
//! }, now)?;
//! let release = s.commit(&receipt)?;
//! let launch = t.launch(&release)?;
//! assert_eq!(launch.epoch, 1);
//! // Replaying the bundle is refused with one stable reason.
//! let e = t.verify(&bundle, &reference, &TargetEvidence {
//!     binary: reference.body().binary.clone(),
//!     cfg: reference.body().cfg.clone(),
//!     state: Measurement::new("talos.state/1", d(4))?,
//! }, now).unwrap_err();
//! assert_eq!(e.rejection(), Some(Rejection::AlreadyAccepted));
//! # std::fs::remove_dir_all(&tmp).ok();
//! # Ok(())
//! # }
//! ```

pub mod clock;
mod codec;
mod error;
#[cfg(feature = "test-hooks")]
mod hooks;
mod host;
mod keys;
mod ledger;
pub mod machine;
mod message;
mod tee;
mod types;
pub mod wire;

#[cfg(test)]
mod model;

pub use error::{Error, Rejection, Result};
#[cfg(feature = "test-hooks")]
pub use hooks::{FAILPOINT_ENV, FAILPOINTS, NOW_ENV};
pub use host::{HOST_KEY_FILE, HOST_PUB_FILE, Host, LEDGER_FILE, LEDGER_TMP_FILE, LOCK_FILE};
pub use keys::{KeyId, PublicKey, Role, SecretKey, keygen, public_path_for};
pub use ledger::{
    AcceptedRecord, AcceptedView, AppRecord, AppView, AttestationView, LEDGER_ATTESTED_VERSION,
    LEDGER_MAGIC, LEDGER_VERSION, Ledger, LedgerView, MAX_LEDGER_LEN, Pending, PendingView,
    ReleaseRecord, ReleaseView, Status, TrustedView,
};
pub use machine::{Abort, CodeVerdict, FlowVerdict, Launch, SealEvidence, TargetEvidence};
pub use message::{
    Body, Bundle, BundleBody, Challenge, ChallengeBody, Description, FORMAT_VERSION, Field,
    MAX_MESSAGE_LEN, MESSAGE_MAGIC, Message, MessageKind, REFERENCE_TEE_VERSION, Receipt,
    ReceiptBody, Reference, ReferenceBody, Release, ReleaseBody, Signed,
};
pub use tee::{
    Attestation, BINDING_CONTEXT, MAX_TEE_MEASUREMENTS, TcbLevel, TeeKind, TeeMeasurement,
    tee_binding,
};
pub use types::{AppId, Digest, Measurement, Nonce, Scheme, Version};

/// Describe any talos-migrate file (a message or a ledger) for people,
/// without trusting it: signatures are checked only against the keys
/// embedded in the messages.
///
/// # Errors
/// [`Error::Malformed`] when the bytes are neither a message nor a ledger.
pub fn describe(bytes: &[u8]) -> Result<Description> {
    if bytes.starts_with(LEDGER_MAGIC) {
        let l = Ledger::decode(bytes)?;
        let v = l.view();
        let mut fields = vec![
            Field::new("host", v.host.clone()),
            Field::new("host-id", v.host_id.clone()),
        ];
        for t in &v.trusted {
            fields.push(Field::new(&format!("trusted-{}", t.role), t.key.clone()));
        }
        for t in &v.trusted {
            if let Some(a) = &t.attestation {
                fields.push(Field::new(
                    &format!("attested {}", t.key_id.get(..16).unwrap_or_default()),
                    format!(
                        "{} {} tcb {} at {}",
                        a.tee, a.measurement, a.tcb, a.verified_at
                    ),
                ));
            }
        }
        for (app, a) in &v.apps {
            let mut s = format!("{} (last epoch {})", a.status, a.last_epoch);
            if let (Some(e), Some(b)) = (a.epoch, &a.bundle) {
                s.push_str(&format!(", epoch {e}, bundle {b}"));
            }
            if let Some(p) = &a.peer {
                s.push_str(&format!(", peer {p}"));
            }
            fields.push(Field::new(&format!("app {app}"), s));
        }
        for p in &v.pending {
            fields.push(Field::new(
                &format!("pending {}", p.nonce),
                format!("{} expires at {}", p.app, p.expires_at),
            ));
        }
        for a in &v.accepted {
            fields.push(Field::new(
                &format!("accepted {}", a.bundle),
                format!("{} epoch {} from {}", a.app, a.epoch, a.source),
            ));
        }
        return Ok(Description {
            kind: "ledger".to_owned(),
            fields,
        });
    }
    Ok(Message::decode(bytes)?.describe())
}
