//! Gate overhead, excluding the state digest (which the analyzer computes):
//! message decoding and signature checks, and the full ledger operations on
//! a real state directory (lock, read, check, write, fsync, rename, fsync).
//!
//! Run: `cargo bench -p talos-migrate --bench gate`. State directories are
//! created under Cargo's target tmp dir (same disk as the build, not tmpfs),
//! so fsync costs are real.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use talos_migrate::*;

const NOW: u64 = 1_800_000_000;

fn m(scheme: &str, b: u8) -> Measurement {
    Measurement::new(scheme, Digest([b; 32])).unwrap()
}

struct Pair {
    _tmp: tempfile::TempDir,
    s: Host,
    t: Host,
    app: AppId,
    reference: Reference,
    seal_ev: SealEvidence,
    target_ev: TargetEvidence,
}

fn pair(dir: &Path) -> Pair {
    let tmp = tempfile::tempdir_in(dir).unwrap();
    let s = Host::init(&tmp.path().join("s")).unwrap();
    let t = Host::init(&tmp.path().join("t")).unwrap();
    let owner = SecretKey::generate();
    for (a, b) in [(&s, &t), (&t, &s)] {
        a.trust(Role::Owner, &owner.public()).unwrap();
        a.trust(Role::Peer, &b.public_key()).unwrap();
    }
    let app = AppId::new("bench").unwrap();
    s.register(&app).unwrap();
    let reference = Reference::sign(
        ReferenceBody {
            app: app.clone(),
            version: Version::new("1").unwrap(),
            binary: m("blake3", 1),
            code: m("talos.code/1", 2),
            cfg: m("talos.cfg/1", 3),
            tee: Default::default(),
        },
        &owner,
    );
    let seal_ev = SealEvidence {
        reference_code: reference.body().code.clone(),
        code: CodeVerdict::Clean,
        flow: FlowVerdict::Ok,
        state: m("talos.state/1", 4),
    };
    let target_ev = TargetEvidence {
        binary: m("blake3", 1),
        cfg: m("talos.cfg/1", 3),
        state: m("talos.state/1", 4),
    };
    Pair {
        _tmp: tmp,
        s,
        t,
        app,
        reference,
        seal_ev,
        target_ev,
    }
}

fn bench(c: &mut Criterion) {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let p = pair(base);

    // Pure CPU: decode a bundle file and check its signature.
    let ch = p.t.challenge(&p.app, NOW, 600).unwrap();
    let bundle =
        p.s.seal(&p.app, &p.reference, &p.seal_ev, &ch, NOW)
            .unwrap();
    p.s.abort(&p.app).unwrap();
    let bytes = bundle.encode();
    c.bench_function("bundle decode + verify_strict", |b| {
        b.iter(|| {
            let m = Bundle::decode(black_box(&bytes)).unwrap();
            m.verify_signature().unwrap();
            m.id()
        })
    });

    // Target verify on a state directory: 2 signature checks, ledger
    // read/decode/encode/fsync/rename/fsync, receipt signing.
    c.bench_function("Host::verify (ledger write included)", |b| {
        b.iter_batched(
            || {
                p.s.abort(&p.app).unwrap();
                let ch = p.t.challenge(&p.app, NOW, 600).unwrap();
                p.s.seal(&p.app, &p.reference, &p.seal_ev, &ch, NOW)
                    .unwrap()
            },
            |bundle| {
                p.t.verify(&bundle, &p.reference, &p.target_ev, NOW)
                    .unwrap()
            },
            BatchSize::PerIteration,
        )
    });

    // Source seal on a state directory.
    c.bench_function("Host::seal (ledger write included)", |b| {
        b.iter_batched(
            || {
                p.s.abort(&p.app).unwrap();
                p.t.challenge(&p.app, NOW, 600).unwrap()
            },
            |ch| {
                p.s.seal(&p.app, &p.reference, &p.seal_ev, &ch, NOW)
                    .unwrap()
            },
            BatchSize::PerIteration,
        )
    });

    // A whole migration there and back: 2 x (challenge, seal, verify,
    // commit, launch) = 10 ledger transactions.
    let q = pair(base);
    c.bench_function("round trip: 2 full migrations", |b| {
        b.iter(|| {
            for (src, dst) in [(&q.s, &q.t), (&q.t, &q.s)] {
                let ch = dst.challenge(&q.app, NOW, 600).unwrap();
                let bd = src
                    .seal(&q.app, &q.reference, &q.seal_ev, &ch, NOW)
                    .unwrap();
                let rc = dst.verify(&bd, &q.reference, &q.target_ev, NOW).unwrap();
                let rl = src.commit(&rc).unwrap();
                dst.launch(&rl).unwrap();
            }
        })
    });

    // For scale: the digest of a 64 MiB state (not part of the gate).
    let state = vec![0x5au8; 64 << 20];
    let mut g = c.benchmark_group("reference");
    g.sample_size(10);
    g.bench_function("blake3 64 MiB (update_rayon)", |b| {
        b.iter(|| {
            blake3::Hasher::new()
                .update_rayon(black_box(&state))
                .finalize()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
