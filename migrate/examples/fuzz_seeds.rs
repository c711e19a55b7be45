//! Write one valid file of each kind (from a real exchange between two
//! temporary hosts) as seed corpora for the `migrate_*` fuzz targets:
//!
//! ```sh
//! cargo run -p talos-migrate --example fuzz_seeds -- fuzz/corpus
//! ```

use std::path::{Path, PathBuf};

use talos_migrate::*;

fn main() -> Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let tmp = std::env::temp_dir().join(format!("talos-fuzz-seeds-{}", std::process::id()));
    let (s, t) = (Host::init(&tmp.join("s"))?, Host::init(&tmp.join("t"))?);
    let owner = SecretKey::generate();
    for (a, b) in [(&s, &t), (&t, &s)] {
        a.trust(Role::Owner, &owner.public())?;
        a.trust(Role::Peer, &b.public_key())?;
    }
    let app = AppId::new("statekeeper")?;
    s.register(&app)?;
    let d = |b: u8| Digest([b; 32]);
    let reference = Reference::sign(
        ReferenceBody {
            app: app.clone(),
            version: Version::new("1.0.0")?,
            binary: Measurement::new("blake3", d(1))?,
            code: Measurement::new("talos.code/1", d(2))?,
            cfg: Measurement::new("talos.cfg/1", d(3))?,
            tee: Default::default(),
        },
        &owner,
    );
    let state = Measurement::new("talos.state/1", d(4))?;
    let now = 1_800_000_000;
    let challenge = t.challenge(&app, now, 600)?;
    let bundle = s.seal(
        &app,
        &reference,
        &SealEvidence {
            reference_code: reference.body().code.clone(),
            code: CodeVerdict::Clean,
            flow: FlowVerdict::Ok,
            state: state.clone(),
        },
        &challenge,
        now,
    )?;
    let ledger_frozen = std::fs::read(tmp.join("s").join(LEDGER_FILE)).map_err(|e| Error::Io {
        op: "reading",
        path: tmp.clone(),
        source: e,
    })?;
    let receipt = t.verify(
        &bundle,
        &reference,
        &TargetEvidence {
            binary: reference.body().binary.clone(),
            cfg: reference.body().cfg.clone(),
            state,
        },
        now,
    )?;
    let release = s.commit(&receipt)?;
    t.launch(&release)?;
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| Error::Io {
            op: "reading",
            path: p.into(),
            source: e,
        })
    };
    let seeds: [(&str, Vec<Vec<u8>>); 6] = [
        ("migrate_reference", vec![reference.encode()]),
        ("migrate_challenge", vec![challenge.encode()]),
        ("migrate_bundle", vec![bundle.encode()]),
        ("migrate_receipt", vec![receipt.encode()]),
        ("migrate_release", vec![release.encode()]),
        (
            "migrate_ledger",
            vec![
                ledger_frozen,
                read(&tmp.join("s").join(LEDGER_FILE))?,
                read(&tmp.join("t").join(LEDGER_FILE))?,
            ],
        ),
    ];
    for (target, files) in seeds {
        let dir = out.join(target);
        std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
            op: "creating",
            path: dir.clone(),
            source: e,
        })?;
        for (i, bytes) in files.iter().enumerate() {
            let p = dir.join(format!("seed-{i}"));
            std::fs::write(&p, bytes).map_err(|e| Error::Io {
                op: "writing",
                path: p.clone(),
                source: e,
            })?;
        }
        println!("{}: {} seed(s)", dir.display(), files.len());
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
