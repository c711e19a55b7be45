//! A host's state directory and the gate operations on it.
//!
//! Layout of a state directory (created mode 0700):
//!
//! | file | content |
//! |---|---|
//! | `host.key` | this host's secret key, mode 0600 |
//! | `host.pub` | this host's public key (give it to peers) |
//! | `ledger` | the [`Ledger`], replaced atomically |
//! | `lock` | empty; `flock`ed for the whole read-check-write of each operation |
//! | `ledger.tmp` | transient, only during a write |
//!
//! Every operation takes the exclusive lock, reads the ledger, runs the
//! checks of [`crate::machine`] on a copy, and only if they all pass writes
//! the new ledger (temp file, fsync, rename, fsync directory) before
//! returning the message it signed. So two processes never both accept, and
//! a crash at any instant leaves the old or the new ledger. A message
//! returned to the caller is always backed by a durable ledger entry; a
//! crash after the write but before the caller saved the message is the
//! same as a lost message (see `docs/migrate-protocol.md`).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::keys::{self, PublicKey, Role, SecretKey};
use crate::ledger::{Ledger, MAX_LEDGER_LEN};
use crate::machine::{self, Abort, Launch, SealEvidence, TargetEvidence};
use crate::message::{Bundle, Challenge, Message, Receipt, Reference, Release};
use crate::tee::Attestation;
use crate::types::{AppId, Nonce};

/// File name of the host secret key in a state directory.
pub const HOST_KEY_FILE: &str = "host.key";
/// File name of the host public key in a state directory.
pub const HOST_PUB_FILE: &str = "host.pub";
/// File name of the ledger in a state directory.
pub const LEDGER_FILE: &str = "ledger";
/// File name of the temporary ledger during a write.
pub const LEDGER_TMP_FILE: &str = "ledger.tmp";
/// File name of the lock file in a state directory.
pub const LOCK_FILE: &str = "lock";

/// A crash point of the ledger write: the process aborts here when the
/// `test-hooks` feature is on and `TALOS_FAILPOINT` names it. Without the
/// feature it is nothing, and the name is not in the binary.
macro_rules! failpoint {
    ($name:literal) => {
        #[cfg(feature = "test-hooks")]
        crate::hooks::failpoint($name);
    };
}

/// An exclusive or shared `flock` on the state directory's lock file,
/// released on drop.
struct DirLock(File);

impl DirLock {
    fn take(dir: &Path, exclusive: bool) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("opening", &path, e))?;
        if exclusive { f.lock() } else { f.lock_shared() }
            .map_err(|e| Error::io("locking", &path, e))?;
        Ok(DirLock(f))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn read_ledger(dir: &Path, host: Option<&PublicKey>) -> Result<Ledger> {
    use std::io::Read;
    let path = dir.join(LEDGER_FILE);
    let f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotInitialized(dir.to_path_buf()));
        }
        Err(e) => return Err(Error::io("reading", &path, e)),
    };
    let mut bytes = Vec::new();
    f.take(MAX_LEDGER_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("reading", &path, e))?;
    let ledger = Ledger::decode(&bytes).map_err(|e| Error::LedgerCorrupt {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    if let Some(h) = host
        && ledger.host != *h
    {
        return Err(Error::LedgerCorrupt {
            path,
            detail: format!(
                "ledger belongs to host {}, host.key is {}",
                ledger.host.id().short(),
                h.id().short()
            ),
        });
    }
    Ok(ledger)
}

/// Replace the ledger durably: write ledger.tmp, fsync, rename, fsync dir.
fn write_ledger(dir: &Path, ledger: &Ledger) -> Result<()> {
    let bytes = ledger.encode();
    let tmp = dir.join(LEDGER_TMP_FILE);
    let path = dir.join(LEDGER_FILE);
    failpoint!("ledger-before-write");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| Error::io("creating", &tmp, e))?;
    let (first, second) = bytes.split_at(bytes.len() / 2);
    f.write_all(first)
        .map_err(|e| Error::io("writing", &tmp, e))?;
    failpoint!("ledger-partial-write");
    f.write_all(second)
        .map_err(|e| Error::io("writing", &tmp, e))?;
    f.sync_all().map_err(|e| Error::io("syncing", &tmp, e))?;
    drop(f);
    failpoint!("ledger-before-rename");
    std::fs::rename(&tmp, &path).map_err(|e| Error::io("renaming", &path, e))?;
    failpoint!("ledger-after-rename");
    keys::sync_dir(dir)?;
    failpoint!("ledger-after-sync");
    Ok(())
}

/// One host: its state directory and secret key.
#[derive(Debug)]
pub struct Host {
    dir: PathBuf,
    key: SecretKey,
    public: PublicKey,
}

impl Host {
    /// Create a host in `dir` (created mode 0700 if missing): a fresh key
    /// pair (`host.key` mode 0600, `host.pub`) and an empty ledger. If an
    /// earlier `init` crashed after writing the key but before the ledger,
    /// that key is kept and initialisation completes.
    ///
    /// # Errors
    /// [`Error::AlreadyInitialized`] when `dir` has a ledger; I/O errors.
    pub fn init(dir: &Path) -> Result<Host> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("creating", dir, e))?;
        let _lock = DirLock::take(dir, true)?;
        if dir.join(LEDGER_FILE).exists() {
            return Err(Error::AlreadyInitialized(dir.to_path_buf()));
        }
        let key_path = dir.join(HOST_KEY_FILE);
        let key = if key_path.exists() {
            SecretKey::load(&key_path)?
        } else {
            let k = SecretKey::generate();
            k.save(&key_path)?;
            k
        };
        let public = key.public();
        write_public(&dir.join(HOST_PUB_FILE), &public)?;
        write_ledger(dir, &Ledger::new(public))?;
        Ok(Host {
            dir: dir.to_path_buf(),
            key,
            public,
        })
    }

    /// Open an initialised state directory.
    ///
    /// # Errors
    /// [`Error::NotInitialized`], [`Error::InsecureKeyFile`],
    /// [`Error::LedgerCorrupt`] (including a ledger of another key), I/O.
    pub fn open(dir: &Path) -> Result<Host> {
        let key_path = dir.join(HOST_KEY_FILE);
        if !key_path.exists() || !dir.join(LEDGER_FILE).exists() {
            return Err(Error::NotInitialized(dir.to_path_buf()));
        }
        let key = SecretKey::load(&key_path)?;
        let public = key.public();
        let _lock = DirLock::take(dir, false)?;
        read_ledger(dir, Some(&public))?;
        Ok(Host {
            dir: dir.to_path_buf(),
            key,
            public,
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This host's public key.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// Lock, read, run `f` on a copy, and write the copy back only if `f`
    /// succeeded and changed it.
    fn transact<T>(&self, f: impl FnOnce(&mut Ledger) -> Result<T>) -> Result<T> {
        let _lock = DirLock::take(&self.dir, true)?;
        let before = read_ledger(&self.dir, Some(&self.public))?;
        let mut after = before.clone();
        let out = f(&mut after)?;
        if after != before {
            write_ledger(&self.dir, &after)?;
        }
        Ok(out)
    }

    /// Pin `key` for `role`. Returns whether it was not pinned before.
    ///
    /// # Errors
    /// I/O or ledger errors.
    pub fn trust(&self, role: Role, key: &PublicKey) -> Result<bool> {
        self.transact(|l| Ok(machine::trust(l, role, *key)))
    }

    /// Pin `key` as a peer because attestation evidence, verified by the
    /// caller (`talos-attest`), proved that it belongs to code the owner
    /// allows on a genuine TEE; record what it proved. This crate checks no
    /// evidence: it records the result it is handed. Returns whether the
    /// ledger changed (a new key, or a new record for a pinned key).
    ///
    /// # Errors
    /// [`Error::BadArgument`] for invalid advisory ids; I/O or ledger
    /// errors.
    pub fn trust_attested(&self, key: &PublicKey, attestation: &Attestation) -> Result<bool> {
        self.transact(|l| machine::trust_attested(l, *key, attestation.clone()))
    }

    /// Check that `reference` is signed by an owner pinned here (the check
    /// seal and verify run first), without changing anything.
    ///
    /// # Errors
    /// [`Error::Rejected`] with `untrusted-key` or `bad-signature`; I/O.
    pub fn check_reference(&self, reference: &Reference) -> Result<()> {
        let _lock = DirLock::take(&self.dir, false)?;
        let l = read_ledger(&self.dir, Some(&self.public))?;
        machine::check_reference(&l, reference)
    }

    /// Register the first deployment of `app` on this host (`absent` to
    /// `running`); the app must be registered (or have been launched here)
    /// before this host can seal it. Returns whether the status changed.
    /// Registering the same app on two hosts makes two instances: do it
    /// once, where the app is first deployed.
    ///
    /// # Errors
    /// [`Error::Rejected`]: `app-frozen`, `migrated-away` (an app that left
    /// cannot be re-registered here), `no-release`; I/O.
    pub fn register(&self, app: &AppId) -> Result<bool> {
        self.transact(|l| machine::register(l, app))
    }

    /// Target, step 1: issue a challenge for `app`, valid for `ttl` seconds
    /// from `now` (seconds since the Unix epoch), and record it as pending.
    ///
    /// # Errors
    /// [`Error::BadArgument`] for a TTL of 0 or over
    /// [`machine::MAX_TTL`]; [`Error::TooManyPending`]; I/O.
    pub fn challenge(&self, app: &AppId, now: u64, ttl: u64) -> Result<Challenge> {
        let nonce = Nonce::random()?;
        self.transact(|l| machine::challenge(l, &self.key, app, now, ttl, nonce))
    }

    /// Source, step 2: check the evidence, take epoch = last + 1, mark the
    /// app frozen for the challenge's target and seal a bundle.
    ///
    /// # Errors
    /// [`Error::Rejected`] with the first failing check (order in
    /// `docs/migrate-protocol.md`); I/O.
    pub fn seal(
        &self,
        app: &AppId,
        reference: &Reference,
        evidence: &SealEvidence,
        challenge: &Challenge,
        now: u64,
    ) -> Result<Bundle> {
        self.transact(|l| machine::seal(l, &self.key, app, reference, evidence, challenge, now))
    }

    /// Target, step 3: verify a bundle; on success consume the nonce, record
    /// the bundle and return a signed receipt.
    ///
    /// # Errors
    /// [`Error::Rejected`] with the first failing check; I/O.
    pub fn verify(
        &self,
        bundle: &Bundle,
        reference: &Reference,
        evidence: &TargetEvidence,
        now: u64,
    ) -> Result<Receipt> {
        self.transact(|l| machine::verify(l, &self.key, bundle, reference, evidence, now))
    }

    /// Source, step 4: on a receipt for the frozen bundle, mark the app
    /// migrated away and return the signed release.
    ///
    /// # Errors
    /// [`Error::Rejected`] with the first failing check; I/O.
    pub fn commit(&self, receipt: &Receipt) -> Result<Release> {
        self.transact(|l| machine::commit(l, &self.key, receipt))
    }

    /// Target, step 5: on a valid release for the bundle held here, mark the
    /// app launched. The caller may then exec the app. One release launches
    /// once.
    ///
    /// # Errors
    /// [`Error::Rejected`] with the first failing check; I/O.
    pub fn launch(&self, release: &Release) -> Result<Launch> {
        self.transact(|l| machine::launch(l, &self.key, release))
    }

    /// [`Host::launch`] that records the launch only if `check` passes:
    /// every gate check runs first, then, still under the ledger lock,
    /// `check` (which restores the app stopped and inspects it before it
    /// runs one instruction). A failed check is the rejection
    /// `launch-mismatch` with its explanation, and the ledger is left
    /// unchanged: the release is not spent, so a launch that was refused
    /// because this host was wrong (a replaced binary) can be retried once
    /// it is fixed, and a replayed release still gets `already-accepted`.
    ///
    /// # Errors
    /// [`Error::Rejected`] with the first failing gate check, or
    /// `launch-mismatch` from `check`; I/O.
    pub fn launch_with(
        &self,
        release: &Release,
        check: impl FnOnce(&Launch) -> std::result::Result<(), String>,
    ) -> Result<Launch> {
        self.transact(|l| {
            let launch = machine::launch(l, &self.key, release)?;
            check(&launch).map_err(|detail| Error::Rejected {
                reason: crate::Rejection::LaunchMismatch,
                detail,
            })?;
            Ok(launch)
        })
    }

    /// Source, step 6: resume a frozen app locally, only if no release was
    /// issued.
    ///
    /// # Errors
    /// [`Error::Rejected`] (`migrated-away` after a release, `no-release`
    /// on a target holding a bundle); I/O.
    pub fn abort(&self, app: &AppId) -> Result<Abort> {
        self.transact(|l| machine::abort(l, app))
    }

    /// The message this host last sent for `app`'s migration in flight
    /// (bundle, receipt or release), to send again after a loss. Read only.
    ///
    /// # Errors
    /// I/O or ledger errors.
    pub fn resend(&self, app: &AppId) -> Result<Option<Message>> {
        let _lock = DirLock::take(&self.dir, false)?;
        let l = read_ledger(&self.dir, Some(&self.public))?;
        Ok(machine::resend(&l, app))
    }

    /// The ledger, read under a shared lock.
    ///
    /// # Errors
    /// I/O or ledger errors.
    pub fn status(&self) -> Result<Ledger> {
        let _lock = DirLock::take(&self.dir, false)?;
        read_ledger(&self.dir, Some(&self.public))
    }
}

fn write_public(path: &Path, key: &PublicKey) -> Result<()> {
    let tmp = path.with_extension("pub.tmp");
    let r = (|| {
        let mut f = File::create(&tmp).map_err(|e| Error::io("creating", &tmp, e))?;
        f.write_all(key.to_text().as_bytes())
            .map_err(|e| Error::io("writing", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("syncing", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("renaming", path, e))?;
        keys::sync_dir(&keys::parent_dir(path))
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}
