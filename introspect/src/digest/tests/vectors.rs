//! The fixed vectors of `docs/digest-state.md`: the known answer an
//! independent implementation of the spec recomputes, and the normal form
//! (which adjacent mappings are one region). The helpers are the digest
//! tests' own.

use super::*;

/// The known-answer vector printed in `docs/digest-state.md`, recomputed
/// there by an independent implementation of the spec.
#[test]
fn digest_known_answer_vector() {
    let d = known_answer();
    let r = &d.regions[0];
    assert_eq!(
        r.pages[0].to_string(),
        "16ebfb490e12cbcf6efb768cc76919f3a8b4bc6e8f8a0964d5ff16142bfbb7f8",
        "region 1 page 0 leaf"
    );
    assert_eq!(
        r.root.unwrap().to_string(),
        "a463379b803c8be2033fa84705fb6f06942ea4ee687fa7002d997aa83aa3f872",
        "region 1 root"
    );
    assert_eq!(
        d.regions[2].root.unwrap().to_string(),
        "bcbd14c71a71bb3b9e96be1eb8f60288d629739ad86f38f73d58f569cc1b1af4",
        "region 2 root"
    );
    assert_eq!(
        d.root.to_string(),
        "a5603eee4dca6f26feb35df1c509742b42c23792f12ac53b242e9b7ac72eb8d3",
        "dump root"
    );
    assert_eq!(d.regions[1].status, RegionStatus::Excluded);
}

/// The normalisation vector of `docs/digest-state.md`: region 1 of the
/// known-answer input as two mappings, region 3 as `---`: one root.
#[test]
fn digest_normal_form_vector() {
    let bytes: Vec<u8> = (0..0x2100u32).map(|i| (i % 251) as u8).collect();
    let none = Perms::default();
    let parts = [
        region(
            0x10000,
            0x1000,
            RW,
            RegionKind::Anonymous,
            bytes[..0x1000].to_vec(),
        ),
        region(
            0x11000,
            0x2000,
            RW,
            RegionKind::Heap,
            bytes[0x1000..].to_vec(),
        ),
        region(
            0x7ffd_0000,
            0x1000,
            none,
            RegionKind::Anonymous,
            vec![0xff; 0x1000],
        ),
        region(0x40_0000, 0x1000, RX, file("/bin/ta"), vec![0x90; 0x1000]),
    ];
    let opts = DigestOptions {
        rseq_areas: vec![0x11ff8],
        ..DigestOptions::default()
    };
    let d = state_digest(&parts, &opts).unwrap();
    assert_eq!(
        d.root.to_string(),
        "a5603eee4dca6f26feb35df1c509742b42c23792f12ac53b242e9b7ac72eb8d3"
    );
    assert_eq!(d.root, known_answer().root);
    // One region where there were two; it keeps the `[heap]` name.
    assert_eq!(d.regions.len(), 3);
    assert_eq!((d.regions[0].start, d.regions[0].end), (0x10000, 0x13000));
    assert_eq!(d.regions[0].kind, RegionKind::Heap);
    d.verify().unwrap();
}

#[test]
fn digest_normal_form_merges_only_what_restore_may_merge() {
    let page = |seed| data(seed, 0x1000);
    let opts = DigestOptions::default();
    let whole = state_digest(&[anon(0x10000, data(9, 0x3000))], &opts).unwrap();
    let all = data(9, 0x3000);
    let split = |k1: RegionKind, p2: Perms, k2: RegionKind| {
        state_digest(
            &[
                region(0x10000, 0x1000, RW, k1, all[..0x1000].to_vec()),
                region(0x11000, 0x2000, p2, k2, all[0x1000..].to_vec()),
            ],
            &opts,
        )
        .unwrap()
    };
    // Anonymous, [heap] and [stack] are one backing.
    assert_eq!(
        split(RegionKind::Anonymous, RW, RegionKind::Anonymous).root,
        whole.root
    );
    assert_eq!(
        split(RegionKind::Stack, RW, RegionKind::Heap).root,
        whole.root
    );
    // Other permissions, or a file next to anonymous memory: two mappings.
    assert_ne!(
        split(RegionKind::Anonymous, RWX, RegionKind::Anonymous).root,
        whole.root
    );
    assert_ne!(
        split(file("/lib/x"), RW, RegionKind::Anonymous).root,
        whole.root
    );
    // The same file at consecutive offsets merges; a gap in offsets does not.
    let f = |off| RegionKind::File {
        path: "/lib/x".into(),
        offset: off,
    };
    let a = state_digest(
        &[region(0x10000, 0x3000, RW, f(0x2000), all.clone())],
        &opts,
    )
    .unwrap();
    assert_eq!(split(f(0x2000), RW, f(0x3000)).root, a.root);
    assert_ne!(split(f(0x2000), RW, f(0x5000)).root, a.root);
    assert_ne!(
        split(
            f(0x2000),
            RW,
            RegionKind::File {
                path: "/lib/y".into(),
                offset: 0x3000
            }
        )
        .root,
        a.root
    );
    // A first mapping the dump holds only in part never swallows the next.
    let partial = state_digest(
        &[
            region(0x10000, 0x2000, RW, RegionKind::Anonymous, page(1)),
            region(0x12000, 0x1000, RW, RegionKind::Anonymous, page(2)),
        ],
        &opts,
    )
    .unwrap();
    assert_eq!(partial.regions.len(), 2);
    partial.verify().unwrap();
    // A stored digest that is not in normal form is refused.
    let mut two = split(RegionKind::Anonymous, RWX, RegionKind::Anonymous);
    two.regions[1].perms = RW;
    let e = two.verify().unwrap_err().to_string();
    assert!(e.contains("normal form"), "{e}");
}

/// The input of the known-answer vector: see `docs/digest-state.md`.
fn known_answer() -> StateDigest {
    // Region 1: 0x10000..0x13000 rw-, the dump holds 0x2100 bytes, byte i is
    // i mod 251; rseq area at 0x11ff8 (straddles pages 1 and 2).
    let bytes: Vec<u8> = (0..0x2100u32).map(|i| (i % 251) as u8).collect();
    let r1 = region(0x10000, 0x3000, RW, RegionKind::Anonymous, bytes);
    // Region 2: one page of 0xff at 0x7ffd0000 r-- anonymous.
    let r2 = region(
        0x7ffd_0000,
        0x1000,
        RO,
        RegionKind::Anonymous,
        vec![0xff; 0x1000],
    );
    // Region 3: code, excluded.
    let r3 = region(0x40_0000, 0x1000, RX, file("/bin/ta"), vec![0x90; 0x1000]);
    let opts = DigestOptions {
        rseq_areas: vec![0x11ff8],
        ..DigestOptions::default()
    };
    state_digest(&[r1, r2, r3], &opts).unwrap()
}
