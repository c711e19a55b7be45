//! Throughput of the state digest next to plain BLAKE3 on the same buffer.
//!
//! `cargo bench -p talos-introspect --bench digest`
//!
//! Groups (all over the same 256 MiB of pseudo-random bytes, warm in memory):
//! - `blake3/update_rayon`: one BLAKE3 hash of the buffer, all threads (the
//!   reference: what `b3sum` does, without the file I/O);
//! - `blake3/update`: the same on one thread;
//! - `per_page_hazmat/rayon`: one `hazmat` hasher per 4 KiB page, rayon over
//!   pages: the naive page Merkle the target is measured against;
//! - `state_digest/rayon`: [`state_digest`] (SIMD-batched leaves + tree +
//!   roots), all threads;
//! - `state_digest/1thread`: the same in a one-thread pool.
//!
//! The ratios between groups, not the absolute figures, are what to compare
//! on a shared machine.

#![allow(missing_docs)]

use std::borrow::Cow;
use std::hint::black_box;

use blake3::hazmat::HasherExt;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use talos_introspect::digest::{CONTEXT_PAGE, DigestOptions, state_digest};
use talos_introspect::region::{Perms, Region, RegionKind};

const LEN: usize = 256 << 20;

fn input() -> Vec<u8> {
    let mut v = vec![0u8; LEN];
    blake3::Hasher::new()
        .update(b"talos digest bench")
        .finalize_xof()
        .fill(&mut v);
    v
}

fn bench(c: &mut Criterion) {
    let bytes = input();
    let base = 0x7f00_0000_0000u64;
    let regions = [Region {
        start: base,
        end: base + LEN as u64,
        perms: Perms {
            read: true,
            write: true,
            execute: false,
        },
        kind: RegionKind::Anonymous,
        bytes: Cow::Borrowed(&bytes),
    }];
    let opts = DigestOptions::default();
    let mut g = c.benchmark_group("digest_256MiB");
    g.throughput(Throughput::Bytes(LEN as u64));
    g.sample_size(10);
    g.bench_function("blake3/update_rayon", |b| {
        b.iter(|| {
            black_box(
                blake3::Hasher::new_derive_key(CONTEXT_PAGE)
                    .update_rayon(&bytes)
                    .finalize(),
            )
        })
    });
    g.bench_function("blake3/update", |b| {
        b.iter(|| {
            black_box(
                blake3::Hasher::new_derive_key(CONTEXT_PAGE)
                    .update(&bytes)
                    .finalize(),
            )
        })
    });
    let key = blake3::hazmat::hash_derive_key_context(CONTEXT_PAGE);
    g.bench_function("per_page_hazmat/rayon", |b| {
        b.iter(|| {
            let leaves: Vec<[u8; 32]> = bytes
                .par_chunks(4096)
                .enumerate()
                .map(|(i, p)| {
                    blake3::Hasher::new_from_context_key(&key)
                        .set_input_offset(base + (i as u64) * 4096)
                        .update(p)
                        .finalize_non_root()
                })
                .collect();
            black_box(leaves)
        })
    });
    g.bench_function("state_digest/rayon", |b| {
        b.iter(|| black_box(state_digest(&regions, &opts)))
    });
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build();
    if let Ok(one) = one {
        g.bench_function("state_digest/1thread", |b| {
            b.iter(|| one.install(|| black_box(state_digest(&regions, &opts))))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
