//! Shared fixtures: hosts in temporary state directories, an owner, a
//! reference and evidence builders.
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use talos_migrate::*;

pub const NOW: u64 = 1_800_000_000;
pub const TTL: u64 = 600;

pub fn m(scheme: &str, b: u8) -> Measurement {
    Measurement::new(scheme, Digest([b; 32])).unwrap()
}

pub struct World {
    pub tmp: tempfile::TempDir,
    pub source: Host,
    pub target: Host,
    pub third: Host,
    pub owner: SecretKey,
    pub app: AppId,
    pub reference: Reference,
}

impl World {
    /// Three hosts that pin each other and the owner; the app is registered
    /// on the source.
    pub fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let source = Host::init(&tmp.path().join("source")).unwrap();
        let target = Host::init(&tmp.path().join("target")).unwrap();
        let third = Host::init(&tmp.path().join("third")).unwrap();
        let owner = SecretKey::generate();
        let hosts = [&source, &target, &third];
        for h in hosts {
            h.trust(Role::Owner, &owner.public()).unwrap();
            for p in hosts {
                if p.public_key() != h.public_key() {
                    h.trust(Role::Peer, &p.public_key()).unwrap();
                }
            }
        }
        let app = AppId::new("statekeeper").unwrap();
        source.register(&app).unwrap();
        let reference = reference_for(&app, &owner);
        World {
            tmp,
            source,
            target,
            third,
            owner,
            app,
            reference,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn seal_evidence(&self) -> SealEvidence {
        SealEvidence {
            reference_code: self.reference.body().code.clone(),
            code: CodeVerdict::Clean,
            flow: FlowVerdict::Ok,
            state: m("talos.state/1", 40),
        }
    }

    pub fn target_evidence(&self) -> TargetEvidence {
        TargetEvidence {
            binary: self.reference.body().binary.clone(),
            cfg: self.reference.body().cfg.clone(),
            state: m("talos.state/1", 40),
        }
    }

    pub fn challenge(&self) -> Challenge {
        self.target.challenge(&self.app, NOW, TTL).unwrap()
    }

    pub fn seal(&self, c: &Challenge) -> Result<Bundle> {
        self.source
            .seal(&self.app, &self.reference, &self.seal_evidence(), c, NOW)
    }

    pub fn verify(&self, b: &Bundle) -> Result<Receipt> {
        self.target
            .verify(b, &self.reference, &self.target_evidence(), NOW)
    }

    /// challenge, seal, verify, commit: returns (bundle, receipt, release).
    pub fn up_to_release(&self) -> (Bundle, Receipt, Release) {
        let c = self.challenge();
        let b = self.seal(&c).unwrap();
        let r = self.verify(&b).unwrap();
        let rel = self.source.commit(&r).unwrap();
        (b, r, rel)
    }
}

pub fn reference_for(app: &AppId, owner: &SecretKey) -> Reference {
    Reference::sign(
        ReferenceBody {
            app: app.clone(),
            version: Version::new("1.4.2").unwrap(),
            binary: m("blake3", 10),
            code: m("talos.code/1", 20),
            cfg: m("talos.cfg/1", 30),
            tee: Default::default(),
        },
        owner,
    )
}

/// The rejection reason of a result, panicking on success or on a
/// non-verdict error.
#[track_caller]
pub fn reason<T: std::fmt::Debug>(r: Result<T>) -> Rejection {
    match r {
        Ok(v) => panic!("expected a rejection, got Ok({v:?})"),
        Err(e) => e
            .rejection()
            .unwrap_or_else(|| panic!("expected a rejection, got error {e}")),
    }
}
