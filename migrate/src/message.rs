//! Signed messages: the reference and the four exchange messages.
//!
//! Every message is one file with one canonical byte encoding (see
//! `docs/migrate-protocol.md` for the byte layout):
//!
//! ```text
//! "TALOSMSG"  format version (1)  kind (1 byte)  body  signer key (32)  signature (64)
//! ```
//!
//! The signature is ed25519 (verified with `verify_strict`) over
//! `len(tag) || tag || payload`, where `payload` is every byte before the
//! signature and `tag` is the message kind's domain separation tag, e.g.
//! `talos 2026-11 bundle v1`. A message's id is
//! `blake3::derive_key("talos 2026-11 <kind> id v1", payload)`: it does not
//! cover the signature, so no re-signing can give the same content a new id.
//!
//! Decoding is strict: anything over [`MAX_MESSAGE_LEN`] is refused before
//! parsing, lengths are checked, strings validated, trailing bytes refused,
//! so `encode(decode(b)) == b` for every accepted `b`.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::codec;
use crate::error::{Error, Result};
use crate::keys::{PublicKey, SecretKey};
use crate::tee::{self, TeeMeasurement};
use crate::types::{AppId, Digest, Measurement, Nonce, Version};

/// Largest accepted message file, in bytes. Real messages are a few hundred
/// bytes; anything larger is refused before parsing.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;

/// The 8 bytes every message file starts with.
pub const MESSAGE_MAGIC: &[u8; 8] = b"TALOSMSG";

/// The message format version this crate writes and accepts.
pub const FORMAT_VERSION: u8 = 1;

/// The format version of a reference that allows TEE measurements: version
/// 1's body followed by the measurement list. A reference without TEE
/// measurements is written as version 1, byte for byte as before.
pub const REFERENCE_TEE_VERSION: u8 = 2;

/// Length of the fixed header: magic, version, kind.
const HEADER_LEN: usize = 10;

/// The kinds of signed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageKind {
    /// An owner-signed reference of an app's audited binary.
    Reference,
    /// A target's challenge (fresh nonce).
    Challenge,
    /// A source's sealed bundle.
    Bundle,
    /// A target's receipt for a verified bundle.
    Receipt,
    /// A source's release of the app to the target.
    Release,
}

impl MessageKind {
    /// Every kind.
    pub const ALL: [MessageKind; 5] = [
        MessageKind::Reference,
        MessageKind::Challenge,
        MessageKind::Bundle,
        MessageKind::Receipt,
        MessageKind::Release,
    ];

    /// The kind byte in the header.
    pub fn tag(self) -> u8 {
        match self {
            MessageKind::Reference => 1,
            MessageKind::Challenge => 2,
            MessageKind::Bundle => 3,
            MessageKind::Receipt => 4,
            MessageKind::Release => 5,
        }
    }

    /// The kind for a header byte.
    pub fn from_tag(t: u8) -> Option<MessageKind> {
        MessageKind::ALL.into_iter().find(|k| k.tag() == t)
    }

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Reference => "reference",
            MessageKind::Challenge => "challenge",
            MessageKind::Bundle => "bundle",
            MessageKind::Receipt => "receipt",
            MessageKind::Release => "release",
        }
    }

    /// The domain separation tag signatures of this kind are made under.
    pub fn signature_tag(self) -> &'static str {
        match self {
            MessageKind::Reference => "talos 2026-11 reference v1",
            MessageKind::Challenge => "talos 2026-11 challenge v1",
            MessageKind::Bundle => "talos 2026-11 bundle v1",
            MessageKind::Receipt => "talos 2026-11 receipt v1",
            MessageKind::Release => "talos 2026-11 release v1",
        }
    }

    /// The blake3 derive-key context of this kind's ids.
    pub fn id_context(self) -> &'static str {
        match self {
            MessageKind::Reference => "talos 2026-11 reference id v1",
            MessageKind::Challenge => "talos 2026-11 challenge id v1",
            MessageKind::Bundle => "talos 2026-11 bundle id v1",
            MessageKind::Receipt => "talos 2026-11 receipt id v1",
            MessageKind::Release => "talos 2026-11 release id v1",
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

mod private {
    pub trait Sealed {}
}

/// The content of a signed message. Implemented only by this crate's five
/// message bodies.
pub trait Body: private::Sealed + Clone + fmt::Debug + PartialEq + Eq {
    /// Which message this is.
    const KIND: MessageKind;
    /// Append the canonical encoding of the body.
    fn encode_body(&self, out: &mut Vec<u8>);
    /// Decode a body from the front of `cur`.
    ///
    /// # Errors
    /// [`Error::Malformed`] on any deviation from the canonical encoding.
    fn decode_body(cur: &mut &[u8]) -> Result<Self>;
    /// The header's format version this body is written with.
    fn format_version(&self) -> u8 {
        FORMAT_VERSION
    }
    /// Decode a body written with format `version` (checked by the header
    /// reader to be 1 or, for references only, 2).
    ///
    /// # Errors
    /// [`Error::Malformed`].
    fn decode_versioned(cur: &mut &[u8], version: u8) -> Result<Self> {
        if version != FORMAT_VERSION {
            return Err(Error::malformed(
                Self::KIND.name(),
                format!("format version {version}, this build reads {FORMAT_VERSION}"),
            ));
        }
        Self::decode_body(cur)
    }
    /// Named field values, in encoding order, for people.
    fn fields(&self) -> Vec<Field>;
    /// The app the message is about.
    fn app(&self) -> &AppId;
    /// The migration epoch the message is about, if it has one.
    fn epoch(&self) -> Option<u64>;
}

/// A body with its signer and signature. Immutable: made only by
/// [`Signed::sign`] or [`Signed::decode`], so body, signer and signature
/// always come from one signing or one file.
#[derive(Clone, PartialEq, Eq)]
pub struct Signed<B: Body> {
    body: B,
    signer: PublicKey,
    signature: [u8; 64],
}

/// An owner-signed reference.
pub type Reference = Signed<ReferenceBody>;
/// A target's signed challenge.
pub type Challenge = Signed<ChallengeBody>;
/// A source's signed bundle.
pub type Bundle = Signed<BundleBody>;
/// A target's signed receipt.
pub type Receipt = Signed<ReceiptBody>;
/// A source's signed release.
pub type Release = Signed<ReleaseBody>;

fn payload_of<B: Body>(body: &B, signer: &PublicKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(MESSAGE_MAGIC);
    out.push(body.format_version());
    out.push(B::KIND.tag());
    body.encode_body(&mut out);
    codec::put_32(&mut out, &signer.to_bytes());
    out
}

fn signing_input(kind: MessageKind, payload: &[u8]) -> Vec<u8> {
    let tag = kind.signature_tag();
    let mut m = Vec::with_capacity(1 + tag.len() + payload.len());
    m.push(u8::try_from(tag.len()).unwrap_or(u8::MAX));
    m.extend_from_slice(tag.as_bytes());
    m.extend_from_slice(payload);
    m
}

/// Check the size limit and header, returning the message kind and format
/// version.
fn check_header(bytes: &[u8]) -> Result<(MessageKind, u8)> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(Error::malformed(
            "message",
            format!(
                "{} bytes exceeds the limit of {MAX_MESSAGE_LEN}",
                bytes.len()
            ),
        ));
    }
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(Error::malformed("message", "shorter than the header"));
    };
    if header.get(..8) != Some(MESSAGE_MAGIC.as_slice()) {
        return Err(Error::malformed(
            "message",
            "not a talos message (bad magic)",
        ));
    }
    // The header is HEADER_LEN bytes: magic, version, kind.
    let (Some(&version), Some(&kind_byte)) = (header.get(8), header.get(9)) else {
        return Err(Error::malformed("message", "shorter than the header"));
    };
    let kind = MessageKind::from_tag(kind_byte)
        .ok_or_else(|| Error::malformed("message", format!("unknown kind {kind_byte}")))?;
    if version != FORMAT_VERSION
        && !(version == REFERENCE_TEE_VERSION && kind == MessageKind::Reference)
    {
        return Err(Error::malformed(
            "message",
            format!("format version {version}, this build reads {FORMAT_VERSION}"),
        ));
    }
    Ok((kind, version))
}

impl<B: Body> Signed<B> {
    /// Sign `body` with `key`.
    pub fn sign(body: B, key: &SecretKey) -> Signed<B> {
        let signer = key.public();
        let payload = payload_of(&body, &signer);
        let signature = key.sign(&signing_input(B::KIND, &payload));
        Signed {
            body,
            signer,
            signature,
        }
    }

    /// The signed content.
    pub fn body(&self) -> &B {
        &self.body
    }

    /// The key that claims to have signed (check it with
    /// [`Signed::verify_signature`] and against pinned keys).
    pub fn signer(&self) -> &PublicKey {
        &self.signer
    }

    /// The 64 signature bytes.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// The canonical bytes covered by the signature (everything but it).
    pub fn payload(&self) -> Vec<u8> {
        payload_of(&self.body, &self.signer)
    }

    /// The canonical file bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.payload();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decode a message file of this kind. Does **not** check the signature
    /// (so tampered files can still be described); the gate always does.
    ///
    /// # Errors
    /// [`Error::Malformed`] when over [`MAX_MESSAGE_LEN`], of another kind,
    /// or not canonical.
    pub fn decode(bytes: &[u8]) -> Result<Signed<B>> {
        let (kind, version) = check_header(bytes)?;
        if kind != B::KIND {
            return Err(Error::malformed(
                B::KIND.name(),
                format!("expected a {}, got a {}", B::KIND, kind),
            ));
        }
        let mut cur = bytes.get(HEADER_LEN..).unwrap_or_default();
        let body = B::decode_versioned(&mut cur, version)?;
        let signer = PublicKey::from_bytes(&codec::get_32(&mut cur, B::KIND.name())?)
            .map_err(|e| Error::malformed(B::KIND.name(), format!("signer: {e}")))?;
        let signature = codec::get_64(&mut cur, B::KIND.name())?;
        codec::finish(cur, B::KIND.name())?;
        Ok(Signed {
            body,
            signer,
            signature,
        })
    }

    /// Check the signature against the embedded signer key (strict ed25519).
    /// Whether that key is trusted is the caller's question.
    ///
    /// # Errors
    /// [`Error::Rejected`] with [`crate::Rejection::BadSignature`].
    pub fn verify_signature(&self) -> Result<()> {
        let payload = self.payload();
        if self
            .signer
            .verify(&signing_input(B::KIND, &payload), &self.signature)
        {
            Ok(())
        } else {
            Err(Error::rejected(
                crate::Rejection::BadSignature,
                format!(
                    "{} signature by key {} does not verify",
                    B::KIND,
                    self.signer.id().short()
                ),
            ))
        }
    }

    /// The message id: a domain-separated blake3 of the payload.
    pub fn id(&self) -> Digest {
        Digest::derive(B::KIND.id_context(), &self.payload())
    }

    /// A description for people (never a statement of trust: the signature
    /// is checked only against the embedded key).
    pub fn describe(&self) -> Description {
        let mut fields = vec![Field::new("id", self.id().to_hex())];
        fields.extend(self.body.fields());
        fields.push(Field::new("signer", self.signer.to_string()));
        fields.push(Field::new("signer-id", self.signer.id().to_hex()));
        let sig = if self.verify_signature().is_ok() {
            "valid for the embedded signer key (not yet checked against pinned keys)"
        } else {
            "INVALID"
        };
        fields.push(Field::new("signature", sig));
        Description {
            kind: B::KIND.name().to_owned(),
            fields,
        }
    }
}

impl<B: Body> fmt::Debug for Signed<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(B::KIND.name())
            .field("body", &self.body)
            .field("signer", &self.signer.id().short())
            .finish_non_exhaustive()
    }
}

/// One named value of a [`Description`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    /// Field name (kebab-case).
    pub name: String,
    /// Value for people.
    pub value: String,
}

impl Field {
    pub(crate) fn new(name: &str, value: impl Into<String>) -> Field {
        Field {
            name: name.to_owned(),
            value: value.into(),
        }
    }
}

/// What a file contains, for `talos migrate status`/`describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Description {
    /// `reference`, `challenge`, `bundle`, `receipt`, `release` or `ledger`.
    pub kind: String,
    /// Fields in a fixed order.
    pub fields: Vec<Field>,
}

impl fmt::Display for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.kind)?;
        let width = self.fields.iter().map(|x| x.name.len()).max().unwrap_or(0);
        for x in &self.fields {
            writeln!(f, "  {:width$}  {}", x.name, x.value)?;
        }
        Ok(())
    }
}

/// An owner's statement of the audited binary of an app version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceBody {
    /// The application.
    pub app: AppId,
    /// Its version.
    pub version: Version,
    /// Digest of the whole binary file (scheme `blake3`).
    pub binary: Measurement,
    /// The code measurement introspection checks dumps against.
    pub code: Measurement,
    /// The canonical control-flow graph digest (scheme `talos.cfg/1`).
    pub cfg: Measurement,
    /// The TEE measurements the owner allows this app to run under (peers
    /// pinned with attestation evidence must prove one of them). Empty for
    /// an app that is not attested; at most
    /// [`crate::MAX_TEE_MEASUREMENTS`] (more are refused on decode).
    pub tee: BTreeSet<TeeMeasurement>,
}

/// A target's fresh nonce for one app, bound to the target's key (the
/// signer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeBody {
    /// The application to be migrated here.
    pub app: AppId,
    /// Fresh random nonce.
    pub nonce: Nonce,
    /// Issue time, seconds since the Unix epoch (target clock).
    pub issued_at: u64,
    /// Expiry, seconds since the Unix epoch (target clock).
    pub expires_at: u64,
}

/// A source's sealed statement: this app, at this epoch, with this state,
/// goes to this target in answer to this nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleBody {
    /// The application.
    pub app: AppId,
    /// Strictly increasing migration counter.
    pub epoch: u64,
    /// Id of the reference the code was checked against.
    pub reference: Digest,
    /// Digest of the frozen state.
    pub state: Measurement,
    /// The target's challenge nonce.
    pub nonce: Nonce,
    /// The one host allowed to accept the bundle.
    pub target: PublicKey,
}

/// A target's statement that it verified a bundle and holds it for release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptBody {
    /// The application.
    pub app: AppId,
    /// The bundle's epoch.
    pub epoch: u64,
    /// The verified bundle's id.
    pub bundle: Digest,
    /// The bundle's nonce.
    pub nonce: Nonce,
    /// The source the receipt answers.
    pub source: PublicKey,
}

/// A source's statement that it gave the app up for good and the target may
/// launch it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseBody {
    /// The application.
    pub app: AppId,
    /// The bundle's epoch.
    pub epoch: u64,
    /// The released bundle's id.
    pub bundle: Digest,
    /// The one host allowed to launch.
    pub target: PublicKey,
}

fn decode_key(cur: &mut &[u8], what: &'static str) -> Result<PublicKey> {
    let b = codec::get_32(cur, what)?;
    PublicKey::from_bytes(&b).map_err(|e| Error::malformed(what, e.to_string()))
}

impl private::Sealed for ReferenceBody {}
impl Body for ReferenceBody {
    const KIND: MessageKind = MessageKind::Reference;
    fn encode_body(&self, out: &mut Vec<u8>) {
        codec::put_str8(out, self.app.as_str());
        codec::put_str8(out, self.version.as_str());
        self.binary.encode(out);
        self.code.encode(out);
        self.cfg.encode(out);
        if !self.tee.is_empty() {
            tee::encode_set(&self.tee, out);
        }
    }
    fn decode_body(cur: &mut &[u8]) -> Result<Self> {
        Self::decode_versioned(cur, FORMAT_VERSION)
    }
    fn format_version(&self) -> u8 {
        if self.tee.is_empty() {
            FORMAT_VERSION
        } else {
            REFERENCE_TEE_VERSION
        }
    }
    fn decode_versioned(cur: &mut &[u8], version: u8) -> Result<Self> {
        const W: &str = "reference";
        Ok(ReferenceBody {
            app: AppId::decode(cur, W)?,
            version: Version::decode(cur, W)?,
            binary: Measurement::decode(cur, W)?,
            code: Measurement::decode(cur, W)?,
            cfg: Measurement::decode(cur, W)?,
            // Version 2 holds a non-empty list: one encoding per content.
            tee: if version == REFERENCE_TEE_VERSION {
                tee::decode_set(cur, W)?
            } else {
                BTreeSet::new()
            },
        })
    }
    fn fields(&self) -> Vec<Field> {
        let mut f = vec![
            Field::new("app", self.app.as_str()),
            Field::new("version", self.version.as_str()),
            Field::new("binary", self.binary.to_string()),
            Field::new("code", self.code.to_string()),
            Field::new("cfg", self.cfg.to_string()),
        ];
        f.extend(self.tee.iter().map(|m| Field::new("tee", m.to_string())));
        f
    }
    fn app(&self) -> &AppId {
        &self.app
    }
    fn epoch(&self) -> Option<u64> {
        None
    }
}

impl private::Sealed for ChallengeBody {}
impl Body for ChallengeBody {
    const KIND: MessageKind = MessageKind::Challenge;
    fn encode_body(&self, out: &mut Vec<u8>) {
        codec::put_str8(out, self.app.as_str());
        codec::put_32(out, &self.nonce.0);
        codec::put_u64(out, self.issued_at);
        codec::put_u64(out, self.expires_at);
    }
    fn decode_body(cur: &mut &[u8]) -> Result<Self> {
        const W: &str = "challenge";
        Ok(ChallengeBody {
            app: AppId::decode(cur, W)?,
            nonce: Nonce(codec::get_32(cur, W)?),
            issued_at: codec::get_u64(cur, W)?,
            expires_at: codec::get_u64(cur, W)?,
        })
    }
    fn fields(&self) -> Vec<Field> {
        vec![
            Field::new("app", self.app.as_str()),
            Field::new("nonce", self.nonce.to_hex()),
            Field::new("issued-at", self.issued_at.to_string()),
            Field::new("expires-at", self.expires_at.to_string()),
        ]
    }
    fn app(&self) -> &AppId {
        &self.app
    }
    fn epoch(&self) -> Option<u64> {
        None
    }
}

impl private::Sealed for BundleBody {}
impl Body for BundleBody {
    const KIND: MessageKind = MessageKind::Bundle;
    fn encode_body(&self, out: &mut Vec<u8>) {
        codec::put_str8(out, self.app.as_str());
        codec::put_u64(out, self.epoch);
        codec::put_32(out, &self.reference.0);
        self.state.encode(out);
        codec::put_32(out, &self.nonce.0);
        codec::put_32(out, &self.target.to_bytes());
    }
    fn decode_body(cur: &mut &[u8]) -> Result<Self> {
        const W: &str = "bundle";
        Ok(BundleBody {
            app: AppId::decode(cur, W)?,
            epoch: codec::get_u64(cur, W)?,
            reference: Digest(codec::get_32(cur, W)?),
            state: Measurement::decode(cur, W)?,
            nonce: Nonce(codec::get_32(cur, W)?),
            target: decode_key(cur, W)?,
        })
    }
    fn fields(&self) -> Vec<Field> {
        vec![
            Field::new("app", self.app.as_str()),
            Field::new("epoch", self.epoch.to_string()),
            Field::new("reference", self.reference.to_hex()),
            Field::new("state", self.state.to_string()),
            Field::new("nonce", self.nonce.to_hex()),
            Field::new("target", self.target.to_string()),
        ]
    }
    fn app(&self) -> &AppId {
        &self.app
    }
    fn epoch(&self) -> Option<u64> {
        Some(self.epoch)
    }
}

impl private::Sealed for ReceiptBody {}
impl Body for ReceiptBody {
    const KIND: MessageKind = MessageKind::Receipt;
    fn encode_body(&self, out: &mut Vec<u8>) {
        codec::put_str8(out, self.app.as_str());
        codec::put_u64(out, self.epoch);
        codec::put_32(out, &self.bundle.0);
        codec::put_32(out, &self.nonce.0);
        codec::put_32(out, &self.source.to_bytes());
    }
    fn decode_body(cur: &mut &[u8]) -> Result<Self> {
        const W: &str = "receipt";
        Ok(ReceiptBody {
            app: AppId::decode(cur, W)?,
            epoch: codec::get_u64(cur, W)?,
            bundle: Digest(codec::get_32(cur, W)?),
            nonce: Nonce(codec::get_32(cur, W)?),
            source: decode_key(cur, W)?,
        })
    }
    fn fields(&self) -> Vec<Field> {
        vec![
            Field::new("app", self.app.as_str()),
            Field::new("epoch", self.epoch.to_string()),
            Field::new("bundle", self.bundle.to_hex()),
            Field::new("nonce", self.nonce.to_hex()),
            Field::new("source", self.source.to_string()),
        ]
    }
    fn app(&self) -> &AppId {
        &self.app
    }
    fn epoch(&self) -> Option<u64> {
        Some(self.epoch)
    }
}

impl private::Sealed for ReleaseBody {}
impl Body for ReleaseBody {
    const KIND: MessageKind = MessageKind::Release;
    fn encode_body(&self, out: &mut Vec<u8>) {
        codec::put_str8(out, self.app.as_str());
        codec::put_u64(out, self.epoch);
        codec::put_32(out, &self.bundle.0);
        codec::put_32(out, &self.target.to_bytes());
    }
    fn decode_body(cur: &mut &[u8]) -> Result<Self> {
        const W: &str = "release";
        Ok(ReleaseBody {
            app: AppId::decode(cur, W)?,
            epoch: codec::get_u64(cur, W)?,
            bundle: Digest(codec::get_32(cur, W)?),
            target: decode_key(cur, W)?,
        })
    }
    fn fields(&self) -> Vec<Field> {
        vec![
            Field::new("app", self.app.as_str()),
            Field::new("epoch", self.epoch.to_string()),
            Field::new("bundle", self.bundle.to_hex()),
            Field::new("target", self.target.to_string()),
        ]
    }
    fn app(&self) -> &AppId {
        &self.app
    }
    fn epoch(&self) -> Option<u64> {
        Some(self.epoch)
    }
}

/// Any signed message, for code that reads a file without knowing its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A reference.
    Reference(Reference),
    /// A challenge.
    Challenge(Challenge),
    /// A bundle.
    Bundle(Bundle),
    /// A receipt.
    Receipt(Receipt),
    /// A release.
    Release(Release),
}

impl Message {
    /// Decode a message of any kind (same limits and strictness as
    /// [`Signed::decode`]).
    ///
    /// # Errors
    /// [`Error::Malformed`].
    pub fn decode(bytes: &[u8]) -> Result<Message> {
        Ok(match check_header(bytes)?.0 {
            MessageKind::Reference => Message::Reference(Reference::decode(bytes)?),
            MessageKind::Challenge => Message::Challenge(Challenge::decode(bytes)?),
            MessageKind::Bundle => Message::Bundle(Bundle::decode(bytes)?),
            MessageKind::Receipt => Message::Receipt(Receipt::decode(bytes)?),
            MessageKind::Release => Message::Release(Release::decode(bytes)?),
        })
    }

    /// The message kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Reference(_) => MessageKind::Reference,
            Message::Challenge(_) => MessageKind::Challenge,
            Message::Bundle(_) => MessageKind::Bundle,
            Message::Receipt(_) => MessageKind::Receipt,
            Message::Release(_) => MessageKind::Release,
        }
    }

    /// The canonical file bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Message::Reference(m) => m.encode(),
            Message::Challenge(m) => m.encode(),
            Message::Bundle(m) => m.encode(),
            Message::Receipt(m) => m.encode(),
            Message::Release(m) => m.encode(),
        }
    }

    /// Check the signature against the embedded key.
    ///
    /// # Errors
    /// [`crate::Rejection::BadSignature`].
    pub fn verify_signature(&self) -> Result<()> {
        match self {
            Message::Reference(m) => m.verify_signature(),
            Message::Challenge(m) => m.verify_signature(),
            Message::Bundle(m) => m.verify_signature(),
            Message::Receipt(m) => m.verify_signature(),
            Message::Release(m) => m.verify_signature(),
        }
    }

    /// The message id.
    pub fn id(&self) -> Digest {
        match self {
            Message::Reference(m) => m.id(),
            Message::Challenge(m) => m.id(),
            Message::Bundle(m) => m.id(),
            Message::Receipt(m) => m.id(),
            Message::Release(m) => m.id(),
        }
    }

    /// A description for people.
    pub fn describe(&self) -> Description {
        match self {
            Message::Reference(m) => m.describe(),
            Message::Challenge(m) => m.describe(),
            Message::Bundle(m) => m.describe(),
            Message::Receipt(m) => m.describe(),
            Message::Release(m) => m.describe(),
        }
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
pub(crate) mod tests;
