//! The state digest on arbitrary region layouts (overlapping, empty,
//! inverted, unaligned, huge claimed sizes with few bytes, rseq areas
//! anywhere) and on arbitrary talos.digest/1 documents.
//!
//! It must never panic or allocate beyond the bytes it was given; every
//! digest it accepts must verify, survive a JSON round trip unchanged, and
//! compare equal to itself.
#![no_main]

use std::borrow::Cow;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use talos_introspect::digest::schema::DigestDoc;
use talos_introspect::digest::{DigestOptions, MaskRule, Selection, diff, state_digest};
use talos_introspect::region::{Perms, Region, RegionKind};

#[derive(Debug, Arbitrary)]
struct FuzzRegion {
    start: u64,
    len: u64,
    /// Round `start` down to a page (most real regions).
    align: bool,
    perms: u8,
    kind: u8,
    /// Bytes held (capped below).
    held: u16,
    fill: u8,
}

#[derive(Debug, Arbitrary)]
enum Case {
    Regions {
        regions: Vec<FuzzRegion>,
        rseq: Vec<u64>,
        /// rseq areas relative to a region start (more likely to hit).
        rseq_rel: Vec<(u8, u16)>,
        all: bool,
        rules: u8,
    },
    Document(String),
}

const MAX_HELD_TOTAL: usize = 1 << 18;

fn kind(k: u8) -> RegionKind {
    match k % 8 {
        0 => RegionKind::Anonymous,
        1 => RegionKind::File {
            path: "/f".into(),
            offset: u64::from(k),
        },
        2 => RegionKind::Stack,
        3 => RegionKind::Heap,
        4 => RegionKind::Vdso,
        5 => RegionKind::Vvar,
        6 => RegionKind::Vsyscall,
        _ => RegionKind::Other { name: "x".into() },
    }
}

fn check(regions: &[Region<'_>], opts: &DigestOptions) {
    let Ok(d) = state_digest(regions, opts) else {
        return;
    };
    assert!(d.verify().is_ok(), "a computed digest must verify");
    let doc = DigestDoc::new(&d, None, None);
    let json = serde_json::to_vec(&doc).expect("serialise");
    let back: DigestDoc = serde_json::from_slice(&json).expect("parse own output");
    assert_eq!(back.into_digest().expect("own output verifies"), d);
    let same = diff(&d, &d).expect("comparable with itself");
    assert!(same.equal && same.pages.is_empty() && same.regions.is_empty());
}

fuzz_target!(|case: Case| {
    match case {
        Case::Regions {
            regions,
            rseq,
            rseq_rel,
            all,
            rules,
        } => {
            let mut budget = MAX_HELD_TOTAL;
            let mut built = Vec::with_capacity(regions.len());
            for r in &regions {
                let start = if r.align { r.start & !0xfff } else { r.start };
                let held = usize::from(r.held).min(budget);
                let held = usize::try_from(r.len).map_or(held, |l| held.min(l));
                budget -= held;
                built.push(Region {
                    start,
                    end: start.wrapping_add(r.len),
                    perms: Perms {
                        read: r.perms & 1 != 0,
                        write: r.perms & 2 != 0,
                        execute: r.perms & 4 != 0,
                    },
                    kind: kind(r.kind),
                    bytes: Cow::Owned(vec![r.fill; held]),
                });
            }
            let mut areas = rseq;
            for (i, off) in rseq_rel {
                if let Some(r) = built.get(usize::from(i) % built.len().max(1)) {
                    areas.push(r.start.wrapping_add(u64::from(off)));
                }
            }
            let opts = DigestOptions {
                selection: if all {
                    Selection::All
                } else {
                    Selection::State
                },
                rules: MaskRule::ALL
                    .into_iter()
                    .filter(|m| rules & (1 << (m.id() - 1)) != 0)
                    .collect(),
                rseq_areas: areas,
            };
            check(&built, &opts);
        }
        Case::Document(text) => {
            if let Ok(doc) = serde_json::from_str::<DigestDoc>(&text)
                && let Ok(d) = doc.into_digest()
            {
                let same = diff(&d, &d).expect("comparable with itself");
                assert!(same.equal);
            }
        }
    }
});
