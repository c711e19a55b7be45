//! Tests of the state digest against the reference `blake3` crate and of its
//! promises: page localisation, independence from file offsets and thread
//! counts, masks, missing bytes, and consistency of stored digests.

use std::borrow::Cow;

use blake3::hazmat::{HasherExt, Mode, merge_subtrees_non_root};
use proptest::prelude::*;

use super::hash::{self, Keys, PAGE};
use super::schema::DigestDoc;
use super::*;
use crate::region::{Perms, Region, RegionKind};

// The fixed vectors of `docs/digest-state.md` (known answer, normal form).
mod vectors;

const RW: Perms = Perms {
    read: true,
    write: true,
    execute: false,
};
const RX: Perms = Perms {
    read: true,
    write: false,
    execute: true,
};
const RO: Perms = Perms {
    read: true,
    write: false,
    execute: false,
};
const RWX: Perms = Perms {
    read: true,
    write: true,
    execute: true,
};

/// Deterministic pseudo-random bytes.
fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut v);
    v
}

fn region(start: u64, len: u64, perms: Perms, kind: RegionKind, bytes: Vec<u8>) -> Region<'static> {
    Region {
        start,
        end: start + len,
        perms,
        kind,
        bytes: Cow::Owned(bytes),
    }
}

fn anon(start: u64, bytes: Vec<u8>) -> Region<'static> {
    let len = bytes.len() as u64;
    region(start, len, RW, RegionKind::Anonymous, bytes)
}

fn file(path: &str) -> RegionKind {
    RegionKind::File {
        path: path.into(),
        offset: 0,
    }
}

/// A small process-like layout: code, data, heap, stack, vvar, vdso.
fn process(seed: u64) -> Vec<Region<'static>> {
    vec![
        region(0x40_0000, 0x3000, RX, file("/bin/ta"), data(seed, 0x3000)),
        region(
            0x40_3000,
            0x2000,
            RW,
            file("/bin/ta"),
            data(seed + 1, 0x2000),
        ),
        region(
            0x80_0000,
            0x21000,
            RW,
            RegionKind::Heap,
            data(seed + 2, 0x21000),
        ),
        region(
            0x7fff_0000,
            0x4000,
            RW,
            RegionKind::Stack,
            data(seed + 3, 0x4000),
        ),
        region(
            0x7fff_f000_0000,
            0x4000,
            RO,
            RegionKind::Vvar,
            data(seed + 4, 0x4000),
        ),
        region(
            0x7fff_f000_4000,
            0x2000,
            RX,
            RegionKind::Vdso,
            data(seed + 5, 0x2000),
        ),
    ]
}

fn digest(regions: &[Region<'_>]) -> StateDigest {
    state_digest(regions, &DigestOptions::default()).unwrap()
}

fn masked_copy(bytes: &[u8], masks: &[(usize, usize)]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    for &(o, l) in masks {
        let end = (o + l).min(v.len());
        if o < end {
            v[o..end].fill(0);
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The batched SIMD leaves equal the documented hazmat computation, for
    /// any length (short last pages included), address and masks.
    #[test]
    fn digest_leaves_equal_hazmat_reference(
        page_index in prop_oneof![Just(0u64), 1u64..1 << 20, (1u64 << 51) - 64..1 << 51],
        len in 1usize..(40 * 1024),
        seed in any::<u64>(),
        raw_masks in proptest::collection::vec((0usize..40 * 1024, 1usize..64), 0..4),
    ) {
        let keys = Keys::new();
        let base = page_index * 4096;
        let bytes = data(seed, len);
        let mut masks: Vec<(usize, usize)> = raw_masks
            .into_iter()
            .filter(|&(o, _)| o < len)
            .map(|(o, l)| (o, l.min(len - o)))
            .collect();
        masks.sort_unstable();
        // Non-overlapping, as state_digest guarantees.
        let mut clean: Vec<(usize, usize)> = Vec::new();
        for (o, l) in masks {
            match clean.last_mut() {
                Some(last) if o <= last.0 + last.1 => {
                    last.1 = last.1.max(o + l - last.0);
                }
                _ => clean.push((o, l)),
            }
        }
        let mut fast = vec![[0u8; 32]; len.div_ceil(PAGE)];
        hash::page_cvs(&keys, base, &bytes, &clean, &mut fast);
        let reference_bytes = masked_copy(&bytes, &clean);
        for (i, (page, got)) in reference_bytes.chunks(PAGE).zip(&fast).enumerate() {
            let want = hash::page_cv_reference(&keys, base + (i * PAGE) as u64, page);
            prop_assert_eq!(got, &want, "page {}", i);
        }
    }

    /// The level-by-level page tree equals the recursive left-complete tree.
    #[test]
    fn digest_tree_equals_recursive_reference(n in 0usize..700, seed in any::<u64>()) {
        let keys = Keys::new();
        let leaves: Vec<[u8; 32]> = data(seed, n * 32)
            .chunks_exact(32)
            .map(|c| c.try_into().unwrap())
            .collect();
        prop_assert_eq!(hash::tree_cv(&keys, &leaves), hash::tree_cv_reference(&keys, &leaves));
    }

    /// A region's root recomputed from its stored leaves and header (as a
    /// verifier of a digest file does) equals the root computed from the
    /// bytes in 1 MiB parallel units.
    #[test]
    fn digest_region_root_recomputes_from_pages(
        pages in 1usize..900,
        short in 0usize..4096,
        held_pages in proptest::option::of(0usize..900),
        seed in any::<u64>(),
    ) {
        let len = pages * 4096 - short;
        let mut bytes = data(seed, len);
        if let Some(h) = held_pages {
            bytes.truncate((h * 4096).min(len));
        }
        let r = Region {
            start: 0x7f00_0000_0000,
            end: 0x7f00_0000_0000 + len as u64,
            perms: RW,
            kind: RegionKind::Anonymous,
            bytes: Cow::Owned(bytes),
        };
        let d = digest(std::slice::from_ref(&r));
        prop_assert!(d.verify().is_ok());
        let rd = &d.regions[0];
        prop_assert_eq!(rd.pages.len(), r.bytes.len().div_ceil(4096));
        prop_assert_eq!(rd.present, r.bytes.len() as u64);
    }

    /// One changed byte changes exactly the page that holds it.
    #[test]
    fn digest_one_byte_changes_exactly_one_page(
        pages in 1usize..600,
        pos_frac in 0.0f64..1.0,
        flip in 1u8..=255,
        seed in any::<u64>(),
    ) {
        let len = pages * 4096;
        let a = data(seed, len);
        let mut b = a.clone();
        let pos = ((len as f64 * pos_frac) as usize).min(len - 1);
        b[pos] ^= flip;
        let base = 0x5555_0000_0000u64;
        let da = digest(&[anon(base, a)]);
        let db = digest(&[anon(base, b)]);
        prop_assert_ne!(da.root, db.root);
        let d = diff(&da, &db).unwrap();
        prop_assert!(!d.equal);
        prop_assert_eq!(d.pages.len(), 1);
        prop_assert_eq!(d.pages[0], PageRun {
            start: base + (pos as u64 / 4096) * 4096,
            count: 1,
            change: PageChange::Modified,
        });
        prop_assert_eq!(d.regions.len(), 1);
        prop_assert_eq!(d.regions[0].reasons.clone(), vec!["pages"]);
    }

    /// The same memory read from different places of a file (or memory)
    /// gives the same digest: nothing depends on where the bytes sit.
    #[test]
    fn digest_same_bytes_at_different_offsets(pad_a in 0usize..5000, pad_b in 0usize..5000, seed in any::<u64>()) {
        let content = data(seed, 3 * 4096 + 17);
        let mut fa = vec![0xAAu8; pad_a];
        fa.extend_from_slice(&content);
        let mut fb = vec![0x55u8; pad_b];
        fb.extend_from_slice(&content);
        let mk = |buf: &[u8], pad: usize| -> StateDigest {
            let r = Region {
                start: 0x1000_0000,
                end: 0x1000_0000 + content.len() as u64,
                perms: RW,
                kind: RegionKind::Anonymous,
                bytes: Cow::Borrowed(&buf[pad..]),
            };
            digest(&[r])
        };
        prop_assert_eq!(mk(&fa, pad_a), mk(&fb, pad_b));
    }
}

/// Leaves are nodes of BLAKE3's own tree: merging the leaves of an aligned
/// group of pages with BLAKE3's parent rule gives the chaining value that
/// the reference `blake3` crate computes for the whole group as one subtree.
#[test]
fn digest_leaves_are_nodes_of_the_blake3_tree() {
    let keys = Keys::new();
    for (base, pages) in [(0u64, 2usize), (0x10_0000, 4), (0x7f12_3456_0000, 16)] {
        let bytes = data(base, pages * PAGE);
        let mut leaves = vec![[0u8; 32]; pages];
        hash::page_cvs(&keys, base, &bytes, &[], &mut leaves);
        let mut level = leaves;
        while level.len() > 1 {
            level = level
                .chunks_exact(2)
                .map(|p| merge_subtrees_non_root(&p[0], &p[1], Mode::DeriveKeyMaterial(&keys.page)))
                .collect();
        }
        let whole = blake3::Hasher::new_derive_key(CONTEXT_PAGE)
            .set_input_offset(base)
            .update(&bytes)
            .finalize_non_root();
        assert_eq!(level[0], whole, "base {base:#x}");
    }
    // At address 0 the page tree of one region is the standard derive_key
    // hash: the root of two pages equals blake3::derive_key.
    let bytes = data(7, 2 * PAGE);
    let mut leaves = vec![[0u8; 32]; 2];
    hash::page_cvs(&keys, 0, &bytes, &[], &mut leaves);
    let root = blake3::hazmat::merge_subtrees_root(
        &leaves[0],
        &leaves[1],
        Mode::DeriveKeyMaterial(&keys.page),
    );
    assert_eq!(*root.as_bytes(), blake3::derive_key(CONTEXT_PAGE, &bytes));
}

/// Every SIMD implementation the machine has (and the portable one) gives
/// the same leaves and page trees: the digest does not depend on the CPU.
#[test]
fn digest_same_on_every_simd_platform() {
    use blake3::platform::Platform;
    let platforms: Vec<(&str, Platform)> = [
        ("portable", Some(Platform::portable())),
        ("sse2", Platform::sse2()),
        ("sse41", Platform::sse41()),
        ("avx2", Platform::avx2()),
        ("avx512", Platform::avx512()),
    ]
    .into_iter()
    .filter_map(|(n, p)| Some((n, p?)))
    .collect();
    assert!(
        platforms.len() >= 2,
        "at least portable and one SIMD kernel"
    );
    let base = 0x7f00_1234_5000u64;
    let bytes = data(11, 37 * PAGE + 1234);
    let masks = [(5000usize, 8usize), (70_000, 8)];
    let reference = Keys::new();
    let want: Vec<[u8; 32]> = masked_copy(&bytes, &masks)
        .chunks(PAGE)
        .enumerate()
        .map(|(i, p)| hash::page_cv_reference(&reference, base + (i * PAGE) as u64, p))
        .collect();
    let want_tree = hash::tree_cv_reference(&reference, &want);
    for (name, p) in platforms {
        let keys = Keys::with_platform(p);
        let mut got = vec![[0u8; 32]; want.len()];
        hash::page_cvs(&keys, base, &bytes, &masks, &mut got);
        assert_eq!(got, want, "{name}");
        assert_eq!(hash::tree_cv(&keys, &got), want_tree, "{name}");
    }
}

#[test]
fn digest_leaf_binds_the_address() {
    let bytes = data(1, 4096);
    let a = digest(&[anon(0x1000, bytes.clone())]);
    let b = digest(&[anon(0x2000, bytes)]);
    assert_ne!(a.regions[0].pages[0], b.regions[0].pages[0]);
    assert_ne!(a.root, b.root);
}

#[test]
fn digest_equal_states_have_equal_digests_and_thread_count_does_not_matter() {
    let a = process(10);
    let b = process(10);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let four = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    let da = one.install(|| digest(&a));
    let db = four.install(|| digest(&b));
    assert_eq!(da, db);
    assert!(diff(&da, &db).unwrap().equal);
    assert!(diff(&da, &db).unwrap().pages.is_empty());
    da.verify().unwrap();
}

#[test]
fn digest_default_selection_is_writable_or_anonymous() {
    let mut regions = process(3);
    regions.push(region(
        0x90_0000,
        0x1000,
        RO,
        RegionKind::Anonymous,
        data(9, 0x1000),
    ));
    let d = digest(&regions);
    let status: Vec<(u64, RegionStatus)> = d.regions.iter().map(|r| (r.start, r.status)).collect();
    assert_eq!(
        status,
        vec![
            (0x40_0000, RegionStatus::Excluded),
            (0x40_3000, RegionStatus::Included),
            (0x80_0000, RegionStatus::Included),
            (0x90_0000, RegionStatus::Included),
            (0x7fff_0000, RegionStatus::Included),
            (0x7fff_f000_0000, RegionStatus::Masked(MaskRule::Vvar)),
            (0x7fff_f000_4000, RegionStatus::Masked(MaskRule::Vdso)),
        ]
    );
    assert_eq!(d.pages, 2 + 0x21 + 1 + 4);
    assert_eq!(d.bytes, d.pages * 4096);
    // Excluded code: changing it leaves the state digest alone.
    let mut changed = process(3);
    changed[0].bytes.to_mut()[5] ^= 1;
    changed.push(region(
        0x90_0000,
        0x1000,
        RO,
        RegionKind::Anonymous,
        data(9, 0x1000),
    ));
    assert_eq!(digest(&changed).root, d.root);
    // With --all it counts.
    let all = DigestOptions {
        selection: Selection::All,
        ..DigestOptions::default()
    };
    let da = state_digest(&regions, &all).unwrap();
    let db = state_digest(&changed, &all).unwrap();
    assert_eq!(da.regions[0].status, RegionStatus::Included);
    assert_ne!(da.root, db.root);
    assert_ne!(da.root, d.root);
    assert_eq!(
        diff(&da, &db).unwrap().pages,
        vec![PageRun {
            start: 0x40_0000,
            count: 1,
            change: PageChange::Modified
        }]
    );
    // Different selections never compare.
    let e = diff(&d, &da).unwrap_err();
    assert_eq!(e.code(), "digest-incomparable");
}

#[test]
fn digest_vdso_and_vvar_are_masked_whole_and_listed() {
    let a = process(4);
    let mut b = process(4);
    // Another kernel: other vDSO code, a bigger vvar.
    b[4] = region(
        0x7fff_efff_f000,
        0x5000,
        RO,
        RegionKind::Vvar,
        data(99, 0x5000),
    );
    b[5] = region(
        0x7fff_f000_4000,
        0x1000,
        RX,
        RegionKind::Vdso,
        data(98, 0x1000),
    );
    for selection in [Selection::State, Selection::All] {
        let o = DigestOptions {
            selection,
            ..DigestOptions::default()
        };
        let (da, db) = (state_digest(&a, &o).unwrap(), state_digest(&b, &o).unwrap());
        assert_eq!(da.root, db.root, "{selection:?}");
        let vdso = da
            .regions
            .iter()
            .find(|r| r.kind == RegionKind::Vdso)
            .unwrap();
        assert_eq!(vdso.status, RegionStatus::Masked(MaskRule::Vdso));
        assert_eq!(
            vdso.masked,
            vec![MaskedRange {
                start: 0x7fff_f000_4000,
                len: 0x2000,
                rule: MaskRule::Vdso
            }]
        );
        assert!(vdso.root.is_none() && vdso.pages.is_empty());
    }
    // Without the rules, --all sees the difference.
    let o = DigestOptions {
        selection: Selection::All,
        rules: [MaskRule::RseqCpuId].into_iter().collect(),
        ..DigestOptions::default()
    };
    assert_ne!(
        state_digest(&a, &o).unwrap().root,
        state_digest(&b, &o).unwrap().root
    );
}

#[test]
fn digest_rseq_cpu_id_is_masked_by_rule() {
    let base = 0x7f00_0000_0000u64;
    let rseq = base + 0x920 + 0x1000 * 3;
    let a = data(5, 0x8000);
    let mut b = a.clone();
    let off = (rseq - base) as usize;
    b[off..off + 8].copy_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0]); // cpu_id_start, cpu_id
    b[off + 28] ^= 3; // mm_cid
    let opts = DigestOptions {
        rseq_areas: vec![rseq, 0x10], // the second is in no region
        ..DigestOptions::default()
    };
    let da = state_digest(&[anon(base, a.clone())], &opts).unwrap();
    let db = state_digest(&[anon(base, b.clone())], &opts).unwrap();
    assert_eq!(da.root, db.root);
    assert_eq!(da.rseq_unmatched, vec![0x10]);
    assert_eq!(
        da.regions[0].masked,
        vec![
            MaskedRange {
                start: rseq,
                len: 8,
                rule: MaskRule::RseqCpuId
            },
            MaskedRange {
                start: rseq + 24,
                len: 8,
                rule: MaskRule::RseqCpuId
            },
        ]
    );
    // The masked page's leaf is the leaf of the page with those bytes zeroed.
    let mut zeroed = a.clone();
    zeroed[off..off + 8].fill(0);
    zeroed[off + 24..off + 32].fill(0);
    let plain = digest(&[anon(base, zeroed)]);
    assert_eq!(plain.regions[0].pages, da.regions[0].pages);
    // ...but the region root binds the mask, so the two are not equal.
    assert_ne!(plain.root, da.root);
    // Without the rseq address, the difference shows, on exactly that page.
    let (pa, pb) = (digest(&[anon(base, a)]), digest(&[anon(base, b)]));
    let d = diff(&pa, &pb).unwrap();
    assert_eq!(
        d.pages,
        vec![PageRun {
            start: base + 0x3000,
            count: 1,
            change: PageChange::Modified
        }]
    );
    // rseq_cs (offset 8..16) is program state and stays hashed.
    let mut c = data(5, 0x8000);
    c[off + 8] ^= 1;
    let dc = state_digest(&[anon(base, c)], &opts).unwrap();
    assert_ne!(dc.root, da.root);
}

#[test]
fn digest_rseq_mask_straddling_two_regions() {
    // Two mappings the normal form keeps apart (other permissions).
    let r1 = anon(0x1_0000, data(1, 0x1000));
    let r2 = region(
        0x1_1000,
        0x1000,
        RWX,
        RegionKind::Anonymous,
        data(2, 0x1000),
    );
    let rseq = 0x1_1000 - 4; // cpu_id_start in r1, cpu_id in r2
    let opts = DigestOptions {
        rseq_areas: vec![rseq],
        ..DigestOptions::default()
    };
    let d = state_digest(&[r1, r2], &opts).unwrap();
    assert_eq!(
        d.regions[0].masked,
        vec![MaskedRange {
            start: rseq,
            len: 4,
            rule: MaskRule::RseqCpuId
        }]
    );
    assert_eq!(
        d.regions[1].masked,
        vec![
            MaskedRange {
                start: 0x1_1000,
                len: 4,
                rule: MaskRule::RseqCpuId
            },
            MaskedRange {
                start: rseq + 24,
                len: 8,
                rule: MaskRule::RseqCpuId
            }
        ]
    );
    d.verify().unwrap();
}

#[test]
fn digest_missing_tail_is_explicit_never_zero_filled() {
    let base = 0x6000_0000u64;
    let full = data(8, 0x5000);
    let mut zero_tail = full.clone();
    zero_tail[0x2000..].fill(0);
    let short = region(
        base,
        0x5000,
        RW,
        RegionKind::Anonymous,
        full[..0x2000].to_vec(),
    );
    let zeros = region(base, 0x5000, RW, RegionKind::Anonymous, zero_tail);
    let ds = digest(&[short]);
    let dz = digest(&[zeros]);
    assert_eq!(ds.regions[0].present, 0x2000);
    assert_eq!(ds.regions[0].pages.len(), 2);
    assert_eq!(ds.missing, 0x3000);
    assert_eq!(ds.pages, 2);
    assert_ne!(ds.root, dz.root);
    let d = diff(&ds, &dz).unwrap();
    assert_eq!(d.regions[0].reasons, vec!["bytes-held", "pages"]);
    assert_eq!(
        d.pages,
        vec![PageRun {
            start: base + 0x2000,
            count: 3,
            change: PageChange::OnlyB
        }]
    );
    // A partly held page is hashed over what is held, and differs from the
    // whole page.
    let part = region(
        base,
        0x5000,
        RW,
        RegionKind::Anonymous,
        full[..0x2100].to_vec(),
    );
    let dp = digest(&[part]);
    assert_eq!(dp.regions[0].pages.len(), 3);
    let dfull = digest(&[region(base, 0x5000, RW, RegionKind::Anonymous, full)]);
    assert_ne!(dp.regions[0].pages[2], dfull.regions[0].pages[2]);
    assert_eq!(dp.regions[0].pages[..2], dfull.regions[0].pages[..2]);
    // Nothing held at all: no leaves, but the region is still bound.
    let none = digest(&[region(base, 0x5000, RW, RegionKind::Anonymous, Vec::new())]);
    assert_eq!(none.pages, 0);
    assert!(none.regions[0].root.is_some());
    none.verify().unwrap();
}

#[test]
fn digest_header_binds_start_size_and_perms() {
    let bytes = data(3, 0x2000);
    let base = digest(&[anon(0x10_0000, bytes.clone())]).root;
    let mut r = anon(0x10_0000, bytes.clone());
    r.perms.execute = true;
    assert_ne!(digest(&[r]).root, base);
    let r = region(0x10_0000, 0x3000, RW, RegionKind::Anonymous, bytes.clone());
    assert_ne!(digest(&[r]).root, base);
    // The kind and path are reported but not bound (see the spec).
    let r = region(0x10_0000, 0x2000, RW, file("/other/path"), bytes);
    assert_eq!(digest(&[r]).root, base);
}

#[test]
fn digest_rejects_malformed_region_lists() {
    let o = DigestOptions::default();
    let cases: Vec<(Vec<Region<'static>>, &str)> = vec![
        (
            vec![anon(0x1000, data(1, 0x2000)), anon(0x2000, data(2, 0x1000))],
            "region-overlap",
        ),
        (
            vec![region(0x1000, 0, RW, RegionKind::Anonymous, Vec::new())],
            "bad-region",
        ),
        (
            vec![region(
                0x1000,
                0x1000,
                RW,
                RegionKind::Anonymous,
                data(1, 0x1001),
            )],
            "bad-region",
        ),
        (vec![anon(0x1800, data(1, 0x1000))], "bad-region"),
        (
            vec![Region {
                start: 0x2000,
                end: 0x1000,
                perms: RW,
                kind: RegionKind::Anonymous,
                bytes: Cow::Owned(Vec::new()),
            }],
            "bad-region",
        ),
    ];
    for (regions, code) in cases {
        let e = state_digest(&regions, &o).unwrap_err();
        assert_eq!(e.code(), code, "{e}");
    }
    // An unaligned region that is not state is fine: it is not hashed.
    let r = region(0x1800, 0x800, RX, file("/x"), data(1, 0x800));
    assert_eq!(digest(&[r]).regions[0].status, RegionStatus::Excluded);
    // Huge claimed size, few bytes: no work or memory beyond the bytes.
    let r = region(0, u64::MAX, RW, RegionKind::Anonymous, data(1, 10));
    let d = digest(&[r]);
    assert_eq!((d.pages, d.bytes, d.missing), (1, 10, u64::MAX - 10));
}

#[test]
fn digest_json_round_trip_and_tamper_detection() {
    let opts = DigestOptions {
        rseq_areas: vec![0x80_0000 + 0x920],
        ..DigestOptions::default()
    };
    let mut regions = process(6);
    regions.push(region(
        0x90_0000,
        0x3000,
        RW,
        RegionKind::Anonymous,
        data(1, 0x1234),
    ));
    let d = state_digest(&regions, &opts).unwrap();
    let json = serde_json::to_string(&DigestDoc::new(&d, Some("t".into()), None)).unwrap();
    let back: DigestDoc = serde_json::from_str(&json).unwrap();
    assert_eq!(back.into_digest().unwrap(), d);

    let tamper = |f: &dyn Fn(&mut serde_json::Value)| -> String {
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        f(&mut v);
        let doc: DigestDoc = match serde_json::from_value(v) {
            Ok(doc) => doc,
            Err(e) => return format!("serde: {e}"),
        };
        match doc.into_digest() {
            Ok(_) => "accepted".into(),
            Err(e) => e.code().to_string(),
        }
    };
    // A leaf edited without the roots.
    assert_eq!(
        tamper(&|v| v["regions"][2]["page_hashes"][3] = "00".repeat(32).into()),
        "digest-inconsistent"
    );
    // A region root edited.
    assert_eq!(
        tamper(&|v| v["regions"][2]["root"] = "11".repeat(32).into()),
        "digest-inconsistent"
    );
    // The dump root edited.
    assert_eq!(
        tamper(&|v| v["root"] = "22".repeat(32).into()),
        "digest-inconsistent"
    );
    // A mask removed.
    assert_eq!(
        tamper(&|v| v["regions"][2]["masked"] = serde_json::json!([])),
        "digest-inconsistent"
    );
    // Totals.
    assert_eq!(tamper(&|v| v["bytes"] = 1.into()), "digest-inconsistent");
    // A region dropped.
    assert_eq!(
        tamper(&|v| {
            v["regions"].as_array_mut().unwrap().remove(1);
        }),
        "digest-inconsistent"
    );
    // Unknown fields and bad values.
    assert!(tamper(&|v| v["extra"] = 1.into()).starts_with("serde"));
    assert_eq!(
        tamper(&|v| v["regions"][1]["start"] = "12".into()),
        "malformed"
    );
    assert_eq!(
        tamper(&|v| v["schema"] = "talos.digest/2".into()),
        "malformed"
    );
    assert_eq!(tamper(&|_| {}), "accepted");
}
