//! CRIU image directories, as they arrive over the network: a
//! `talos.images/1` stream (`talos_evidence::archive`, checked as it
//! arrives), then the image reader (`talos_introspect::criu`: framing,
//! protobuf entries, VMAs, pagemaps, registers), the layout of one process
//! (pages from the image, the file, or zeros), the state digest and the
//! code check on it.
//!
//! Every file a mapping names resolves to /bin/true. Properties: never a
//! panic; every region holds at most its length; regions are sorted and do
//! not overlap; a digest, when the layout is small enough to hash within
//! the time limit, verifies.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use talos_introspect::digest::{DigestOptions, state_digest};

#[path = "../common/dump.rs"]
mod dump;

fuzz_target!(|data: &[u8]| {
    let Ok(files) = talos_evidence::archive::split(data, 64 << 20) else {
        return;
    };
    let map: BTreeMap<String, &[u8]> = files
        .iter()
        .map(|(n, b)| (n.clone(), b.as_slice()))
        .collect();
    let Ok(set) = talos_introspect::criu::read(&map) else {
        return;
    };
    for p in &set.processes {
        for w in p.vmas.windows(2) {
            assert!(w[0].end <= w[1].start);
        }
        for r in &p.runs {
            assert!(r.offset + r.pages * 4096 <= p.pages.len() as u64);
        }
    }
    let resolver = dump::resolver();
    let Ok(m) = set.materialize(None, &resolver) else {
        return;
    };
    let d = m.dump();
    let held = dump::check_regions(&d);
    // Hashing is linear in what the layout holds; keep each run short.
    if held <= 64 << 20 {
        let options = DigestOptions {
            rseq_areas: m.rseq_areas.clone(),
            ..DigestOptions::default()
        };
        if let Ok(digest) = state_digest(&d.regions, &options) {
            digest.verify().expect("a fresh digest verifies");
        }
        dump::check_verify(&d, &resolver);
    }
});
