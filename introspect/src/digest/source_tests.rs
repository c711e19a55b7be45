//! The digest of regions read through a [`PageSource`] is the digest of the
//! same bytes held in the regions; a source that cannot read fails it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::*;
use crate::region::{Perms, Region, RegionKind};

const RW: Perms = Perms {
    read: true,
    write: true,
    execute: false,
};

fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut v);
    v
}

fn region(start: u64, kind: RegionKind, bytes: Vec<u8>) -> Region<'static> {
    Region {
        start,
        end: start + bytes.len() as u64,
        perms: RW,
        kind,
        bytes: Cow::Owned(bytes),
    }
}

/// Memory kept apart from the regions, as a stopped process's would be.
struct Apart {
    regions: BTreeMap<u64, Vec<u8>>,
    /// Reads at or past this address fail.
    fail_from: u64,
}

impl PageSource for Apart {
    fn held(&self, start: u64, end: u64) -> Option<u64> {
        self.regions
            .get(&start)
            .filter(|b| start + b.len() as u64 == end)
            .map(|b| b.len() as u64)
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        if addr + buf.len() as u64 > self.fail_from {
            return false;
        }
        let Some((start, bytes)) = self.regions.range(..=addr).next_back() else {
            return false;
        };
        let off = (addr - start) as usize;
        match bytes.get(off..off + buf.len()) {
            Some(b) => {
                buf.copy_from_slice(b);
                true
            }
            None => false,
        }
    }
}

/// A process whose heap is 3 MiB and a page (more than one 1 MiB unit, a
/// short last one) right after a held anonymous region it merges with, an
/// rseq area masked inside the heap, and a second large region.
fn process() -> Vec<Region<'static>> {
    vec![
        region(0x10_0000, RegionKind::Anonymous, data(1, 0x2000)),
        region(0x10_2000, RegionKind::Heap, data(2, 0x30_1000)),
        region(0x7000_0000, RegionKind::Anonymous, data(3, 0x12_3000)),
        region(0x7fff_0000, RegionKind::Stack, data(4, 0x4000)),
    ]
}

fn options() -> DigestOptions {
    DigestOptions {
        rseq_areas: vec![0x10_2000 + 0x10_0040, 0x7000_0000 + 0x5_0000],
        ..DigestOptions::default()
    }
}

/// The regions of `process()` at least 1 MiB long moved into a source.
fn deferred(fail_from: u64) -> (Vec<Region<'static>>, Apart) {
    let mut apart = Apart {
        regions: BTreeMap::new(),
        fail_from,
    };
    let regions = process()
        .into_iter()
        .map(|mut r| {
            if r.bytes.len() >= 1 << 20 {
                apart.regions.insert(r.start, r.bytes.to_vec());
                r.bytes = Cow::Owned(Vec::new());
            }
            r
        })
        .collect();
    (regions, apart)
}

#[test]
fn digest_read_through_a_source_equals_the_held_digest() {
    let held = state_digest(&process(), &options()).unwrap();
    let (regions, apart) = deferred(u64::MAX);
    let read = state_digest_from(&regions, &options(), &|_: &[u8]| {}, Some(&apart)).unwrap();
    assert_eq!(read, held);
    assert_eq!(read.root, held.root);
    // Without the source the deferred regions hold nothing: another root.
    let without = state_digest(&regions, &options()).unwrap();
    assert_ne!(without.root, held.root);
    assert!(without.missing > 0);
}

#[test]
fn digest_fails_when_the_source_cannot_read() {
    // The last 1 MiB unit of the heap cannot be read.
    let (regions, apart) = deferred(0x10_2000 + 0x30_0000);
    let err = state_digest_from(&regions, &options(), &|_: &[u8]| {}, Some(&apart)).unwrap_err();
    match err {
        Error::BadRegion { start, .. } => assert_eq!(start, 0x10_2000 + 0x30_0000),
        other => panic!("unexpected error {other}"),
    }
}
