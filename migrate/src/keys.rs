//! Ed25519 identities of hosts and application owners.
//!
//! Key files are one line of text:
//!
//! ```text
//! talos-public-key-v1 <64 lowercase hex digits: the 32-byte ed25519 public key>
//! talos-secret-key-v1 <64 lowercase hex digits: the 32-byte ed25519 seed>
//! ```
//!
//! followed by one `\n`. Secret key files are created with mode 0600, never
//! overwritten, and refused on load when group or others can access them.
//! A [`KeyId`] is `blake3::derive_key("talos 2026-11 key id v1", public key)`.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use getrandom::{SysRng, rand_core::UnwrapErr};

use crate::codec;
use crate::error::{Error, Result};
use crate::types::Digest;

const PUBLIC_PREFIX: &str = "talos-public-key-v1 ";
const SECRET_PREFIX: &str = "talos-secret-key-v1 ";
const KEY_ID_CONTEXT: &str = "talos 2026-11 key id v1";

/// The identifier of a public key: a domain-separated blake3 of its bytes.
pub type KeyId = Digest;

/// A role a pinned key is trusted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// An application owner: signs references.
    Owner,
    /// A peer host: sends challenges, bundles, receipts and releases.
    Peer,
}

impl Role {
    /// `"owner"` or `"peer"`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Peer => "peer",
        }
    }

    pub(crate) fn tag(self) -> u8 {
        match self {
            Role::Owner => 1,
            Role::Peer => 2,
        }
    }

    pub(crate) fn from_tag(t: u8) -> Option<Role> {
        match t {
            1 => Some(Role::Owner),
            2 => Some(Role::Peer),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Role> {
        match s {
            "owner" => Ok(Role::Owner),
            "peer" => Ok(Role::Peer),
            _ => Err(Error::BadArgument(format!(
                "role {s:?}: expected owner or peer"
            ))),
        }
    }
}

/// An ed25519 public key that is a valid, non-weak curve point.
///
/// Only the 32 bytes are kept (validated once); the curve point is
/// decompressed again for each verification.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey {
    bytes: [u8; 32],
}

impl PublicKey {
    /// Check and wrap 32 key bytes.
    ///
    /// # Errors
    /// [`Error::Malformed`] when the bytes are not a valid point or are a
    /// weak (small-order) key.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey> {
        let key = VerifyingKey::from_bytes(bytes)
            .map_err(|_| Error::malformed("public key", "not a valid ed25519 point"))?;
        if key.is_weak() {
            return Err(Error::malformed("public key", "weak (small-order) key"));
        }
        Ok(PublicKey { bytes: *bytes })
    }

    /// The 32 key bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.bytes
    }

    /// The key's [`KeyId`].
    pub fn id(&self) -> KeyId {
        Digest::derive(KEY_ID_CONTEXT, &self.bytes)
    }

    /// The one-line text form (with trailing newline).
    pub fn to_text(&self) -> String {
        format!("{PUBLIC_PREFIX}{}\n", codec::hex(&self.bytes))
    }

    /// Parse the text form; exactly one line, one optional trailing newline.
    ///
    /// # Errors
    /// [`Error::Malformed`] when the text is not a public key file.
    pub fn from_text(text: &str) -> Result<PublicKey> {
        let line = text.strip_suffix('\n').unwrap_or(text);
        let hex = line.strip_prefix(PUBLIC_PREFIX).ok_or_else(|| {
            Error::malformed(
                "public key",
                format!("does not start with {PUBLIC_PREFIX:?}"),
            )
        })?;
        let bytes = codec::unhex32(hex)
            .ok_or_else(|| Error::malformed("public key", "expected 64 lowercase hex digits"))?;
        PublicKey::from_bytes(&bytes)
    }

    /// Read a public key file.
    ///
    /// # Errors
    /// [`Error::Io`] when unreadable, [`Error::Malformed`] when not a key.
    pub fn load(path: &Path) -> Result<PublicKey> {
        let bytes = read_small(path, 256)?;
        let text =
            std::str::from_utf8(&bytes).map_err(|_| Error::malformed("public key", "not UTF-8"))?;
        PublicKey::from_text(text)
    }

    /// Write the text form to a new file (mode 0644); refuses to overwrite.
    ///
    /// # Errors
    /// [`Error::FileExists`] or [`Error::Io`].
    pub fn save(&self, path: &Path) -> Result<()> {
        create_exclusive(path, self.to_text().as_bytes(), 0o644)
    }

    /// Whether `signature` is a valid strict ed25519 signature of `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        #[cfg(test)]
        {
            // Unit-test builds only (the model test verifies the same few
            // messages millions of times in a debug build): memoise the
            // pure function on its full input. Integration tests, benches
            // and release builds never take this path.
            let k = memo::key(&[&self.bytes, signature, message]);
            if let Some(v) = memo::VERIFY.with(|m| m.borrow().get(&k).copied()) {
                return v;
            }
            let v = self.verify_uncached(message, signature);
            memo::VERIFY.with(|m| m.borrow_mut().insert(k, v));
            v
        }
        #[cfg(not(test))]
        self.verify_uncached(message, signature)
    }

    fn verify_uncached(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let sig = Signature::from_bytes(signature);
        VerifyingKey::from_bytes(&self.bytes)
            .is_ok_and(|key| !key.is_weak() && key.verify_strict(message, &sig).is_ok())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", codec::hex(&self.bytes))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&codec::hex(&self.bytes))
    }
}

/// An ed25519 signing key. Never printed: `Debug` shows only the key id, and
/// the seed is wiped from memory on drop.
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> SecretKey {
        SecretKey(SigningKey::generate(&mut UnwrapErr(SysRng)))
    }

    /// A key from a 32-byte seed (tests and deterministic fixtures).
    pub fn from_seed(seed: &[u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(seed))
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            bytes: self.0.verifying_key().to_bytes(),
        }
    }

    /// Sign `message` (deterministic ed25519).
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        #[cfg(test)]
        {
            // Unit-test builds only: see `PublicKey::verify`.
            let k = memo::key(&[self.0.as_bytes(), message]);
            if let Some(v) = memo::SIGN.with(|m| m.borrow().get(&k).copied()) {
                return v;
            }
            let v = self.0.sign(message).to_bytes();
            memo::SIGN.with(|m| m.borrow_mut().insert(k, v));
            v
        }
        #[cfg(not(test))]
        self.0.sign(message).to_bytes()
    }

    /// Write the key to a new file with mode 0600. Refuses to overwrite: the
    /// key is written to a temporary file and hard-linked into place, which
    /// fails if `path` exists, so a crash never leaves a torn key at `path`.
    ///
    /// # Errors
    /// [`Error::FileExists`] when `path` exists, [`Error::Io`] otherwise.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = format!("{SECRET_PREFIX}{}\n", codec::hex(self.0.as_bytes()));
        let r = create_exclusive(path, text.as_bytes(), 0o600);
        wipe(&mut text);
        r
    }

    /// Read a secret key file, refusing files that group or others can
    /// access.
    ///
    /// # Errors
    /// [`Error::InsecureKeyFile`], [`Error::Io`], or [`Error::Malformed`].
    pub fn load(path: &Path) -> Result<SecretKey> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io("reading", path, e))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::InsecureKeyFile {
                path: path.to_path_buf(),
                mode,
            });
        }
        let mut bytes = read_small(path, 256)?;
        let parsed = parse_secret(&bytes);
        bytes.fill(0);
        std::hint::black_box(&bytes);
        parsed
    }
}

fn parse_secret(bytes: &[u8]) -> Result<SecretKey> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| Error::malformed("secret key", "not UTF-8"))?;
    let line = text.strip_suffix('\n').unwrap_or(text);
    let hex = line.strip_prefix(SECRET_PREFIX).ok_or_else(|| {
        Error::malformed(
            "secret key",
            format!("does not start with {SECRET_PREFIX:?}"),
        )
    })?;
    let mut seed = codec::unhex32(hex)
        .ok_or_else(|| Error::malformed("secret key", "expected 64 lowercase hex digits"))?;
    let key = SecretKey::from_seed(&seed);
    seed.fill(0);
    std::hint::black_box(&seed);
    Ok(key)
}

fn wipe(s: &mut String) {
    // Overwrite the buffer in place (clear keeps the capacity, so the
    // refill writes over the same bytes).
    let n = s.len();
    s.clear();
    s.extend(std::iter::repeat_n('0', n));
    std::hint::black_box(&s);
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SecretKey(<redacted>, id {})",
            self.public().id().short()
        )
    }
}

/// Generate an owner (or any) key pair: the secret key at `path` (mode 0600)
/// and the public key at `path` + `.pub`. Refuses to overwrite either.
///
/// # Errors
/// [`Error::FileExists`] or [`Error::Io`].
pub fn keygen(path: &Path) -> Result<PublicKey> {
    let pub_path = public_path_for(path);
    if pub_path.exists() {
        return Err(Error::FileExists(pub_path));
    }
    let key = SecretKey::generate();
    key.save(path)?;
    let public = key.public();
    public.save(&pub_path)?;
    Ok(public)
}

/// `path` with `.pub` appended to its file name.
pub fn public_path_for(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Read a file of at most `max` bytes.
pub(crate) fn read_small(path: &Path, max: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| Error::io("reading", path, e))?;
    let mut buf = Vec::new();
    f.take(max.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("reading", path, e))?;
    if buf.len() as u64 > max {
        return Err(Error::malformed(
            "key file",
            format!("longer than {max} bytes"),
        ));
    }
    Ok(buf)
}

/// The directory holding `path`, for fsync after creating or renaming.
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// fsync a directory so a rename or link in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing directory", dir, e))
}

/// Create `path` with `bytes` and `mode`, failing if it exists; durable and
/// never torn (temp file, fsync, hard link, fsync dir).
pub(crate) fn create_exclusive(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    if path.exists() {
        return Err(Error::FileExists(path.to_path_buf()));
    }
    let dir = parent_dir(path);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(format!(".new{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| Error::io("creating", &tmp, e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io("writing", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("syncing", &tmp, e))?;
        std::fs::hard_link(&tmp, path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::FileExists(path.to_path_buf())
            } else {
                Error::io("linking", path, e)
            }
        })?;
        sync_dir(&dir)
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

#[cfg(test)]
mod memo {
    use std::cell::RefCell;
    use std::collections::HashMap;

    thread_local! {
        pub(super) static VERIFY: RefCell<HashMap<[u8; 32], bool>> = RefCell::new(HashMap::new());
        pub(super) static SIGN: RefCell<HashMap<[u8; 32], [u8; 64]>> = RefCell::new(HashMap::new());
    }

    pub(super) fn key(parts: &[&[u8]]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_derive_key("talos 2026-11 test memo v1");
        for p in parts {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p);
        }
        *h.finalize().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_text_round_trip_is_strict() {
        let k = SecretKey::from_seed(&[1; 32]).public();
        let t = k.to_text();
        assert!(t.starts_with("talos-public-key-v1 ") && t.ends_with('\n'));
        assert_eq!(PublicKey::from_text(&t).unwrap(), k);
        assert_eq!(PublicKey::from_text(t.trim_end()).unwrap(), k);
        assert!(PublicKey::from_text(&t.to_uppercase()).is_err());
        assert!(PublicKey::from_text(&format!("{t}\n")).is_err());
        assert!(PublicKey::from_text(&format!(" {t}")).is_err());
        assert!(PublicKey::from_text(&t.replace("-v1", "-v2")).is_err());
    }

    #[test]
    fn weak_and_invalid_keys_are_refused() {
        // The identity point (small order) is a valid encoding but weak.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PublicKey::from_bytes(&identity).is_err());
        // y = 2 is not on the curve.
        let mut bad = [0u8; 32];
        bad[0] = 2;
        assert!(PublicKey::from_bytes(&bad).is_err());
    }

    #[test]
    fn key_id_is_stable_and_domain_separated() {
        let k = SecretKey::from_seed(&[2; 32]).public();
        assert_eq!(
            k.id(),
            Digest::derive("talos 2026-11 key id v1", &k.to_bytes())
        );
        assert_ne!(k.id().0, *blake3::hash(&k.to_bytes()).as_bytes());
    }

    #[test]
    fn keygen_writes_0600_secret_and_refuses_overwrite() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("owner");
        let public = keygen(&p).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(PublicKey::load(&public_path_for(&p)).unwrap(), public);
        assert_eq!(SecretKey::load(&p).unwrap().public(), public);
        assert_eq!(keygen(&p).unwrap_err().code(), "file-exists");
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn secret_key_readable_by_others_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        SecretKey::generate().save(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(SecretKey::load(&p).unwrap_err().code(), "insecure-key-file");
    }

    #[test]
    fn secret_key_debug_does_not_leak_the_seed() {
        let k = SecretKey::from_seed(&[0xab; 32]);
        let s = format!("{k:?}");
        assert!(!s.contains("abab"), "{s}");
        assert!(s.contains("redacted"));
    }

    #[test]
    fn signatures_verify_strictly() {
        let k = SecretKey::from_seed(&[3; 32]);
        let sig = k.sign(b"hello");
        assert!(k.public().verify(b"hello", &sig));
        assert!(!k.public().verify(b"hellp", &sig));
        let mut bad = sig;
        bad[5] ^= 1;
        assert!(!k.public().verify(b"hello", &bad));
    }
}
