//! The image stream (`talos.images/1`): a round trip, and every way a
//! hostile or broken stream is refused as it arrives. The images here are
//! built by hand (protobuf bytes written field by field), not with the
//! reader's structs.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use talos_evidence::archive::{self, MAGIC, MemSink, Packer, Unpacker};

const COMMON: u32 = 0x5456_4319;
const INVENTORY: u32 = 0x5831_3116;
const PAGEMAP: u32 = 0x5608_4025;
const CORE: u32 = 0x5505_3847;

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A protobuf message of varint fields.
fn msg(fields: &[(u32, u64)]) -> Vec<u8> {
    let mut m = Vec::new();
    for &(tag, v) in fields {
        varint(u64::from(tag) << 3, &mut m);
        varint(v, &mut m);
    }
    m
}

/// An image: magic words, then size-prefixed entries.
fn image(magic: &[u32], entries: &[Vec<u8>]) -> Vec<u8> {
    let mut b: Vec<u8> = magic.iter().flat_map(|m| m.to_le_bytes()).collect();
    for e in entries {
        b.extend_from_slice(&(e.len() as u32).to_le_bytes());
        b.extend_from_slice(e);
    }
    b
}

/// A minimal image directory: inventory, a core, a pagemap of `pages`
/// pages in two runs, and the pages.
fn files(pages: u64) -> Vec<(String, Vec<u8>)> {
    let pm = image(
        &[COMMON, PAGEMAP],
        &[
            msg(&[(1, 1)]),
            msg(&[(1, 0x10000), (2, 0), (4, 6), (5, 1)]),
            msg(&[(1, 0x20000), (2, 0), (4, 6), (5, pages - 1)]),
        ],
    );
    vec![
        (
            "inventory.img".into(),
            image(&[INVENTORY], &[msg(&[(1, 2)])]),
        ),
        (
            "core-7.img".into(),
            image(&[COMMON, CORE], &[msg(&[(1, 1)])]),
        ),
        ("pagemap-7.img".into(), pm),
        (
            "pages-1.img".into(),
            (0..pages * 4096).map(|i| i as u8).collect(),
        ),
    ]
}

fn stream(f: &[(String, Vec<u8>)]) -> Vec<u8> {
    let refs: Vec<(&str, &[u8])> = f.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let mut p = Packer::new(&refs).unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut p, &mut out).unwrap();
    assert_eq!(out.len() as u64, p.len());
    out
}

/// A stream written by hand: (name, announced length, bytes).
fn raw(entries: &[(&str, u64, &[u8])], count: u32) -> Vec<u8> {
    let mut s = MAGIC.to_vec();
    s.push(1);
    for (n, len, b) in entries {
        s.push(1);
        s.extend_from_slice(&(n.len() as u16).to_be_bytes());
        s.extend_from_slice(n.as_bytes());
        s.extend_from_slice(&len.to_be_bytes());
        s.extend_from_slice(b);
    }
    s.push(0);
    s.extend_from_slice(&count.to_be_bytes());
    s
}

fn err(bytes: &[u8]) -> String {
    match archive::split(bytes, 1 << 30) {
        Ok(f) => panic!("accepted {} files", f.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn stream_round_trip_pages_last_in_any_chunking() {
    let f = files(3);
    let s = stream(&f);
    let got = archive::split(&s, 1 << 30).unwrap();
    // Metadata first in name order, pages last.
    let names: Vec<&str> = got.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "core-7.img",
            "inventory.img",
            "pagemap-7.img",
            "pages-1.img"
        ]
    );
    for (n, b) in &f {
        assert_eq!(&got.iter().find(|x| &x.0 == n).unwrap().1, b, "{n}");
    }
    // Byte by byte gives the same files.
    let mut u = Unpacker::with_sink(MemSink::default(), 1 << 30);
    for b in &s {
        u.push(std::slice::from_ref(b)).unwrap();
    }
    assert_eq!(u.finish_sink().unwrap().files, got);
}

#[test]
fn borrowed_chunks_are_the_pieces_read_gives() {
    use talos_evidence::exchange::Chunks;
    let f = files(5);
    let refs: Vec<(&str, &[u8])> = f.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    for size in [1usize, 7, 4096, 5000, 1 << 20] {
        let mut read = Packer::new(&refs).unwrap();
        let mut borrowed = Packer::new(&refs).unwrap();
        let (mut a, mut b) = (vec![0u8; size], vec![0u8; size]);
        loop {
            let n = std::io::Read::read(&mut read, &mut a).unwrap();
            let chunk = borrowed.next_chunk(&mut b).unwrap();
            assert_eq!(chunk, &a[..n], "buffer of {size}");
            if n == 0 {
                break;
            }
        }
    }
}

#[test]
fn every_cut_short_stream_is_refused_and_never_panics() {
    let s = stream(&files(2));
    for cut in 0..s.len() {
        let mut u = Unpacker::with_sink(MemSink::default(), 1 << 30);
        let pushed = u.push(&s[..cut]);
        assert!(
            pushed.is_err() || u.finish_sink().is_err(),
            "a stream cut at {cut} of {} was accepted",
            s.len()
        );
    }
}

#[test]
fn stream_format_and_limits_are_checked_as_they_arrive() {
    let f = files(2);
    let good: Vec<(&str, u64, &[u8])> = f
        .iter()
        .map(|(n, b)| (n.as_str(), b.len() as u64, b.as_slice()))
        .collect();
    let (inv, core, pm, pages) = (good[0], good[1], good[2], good[3]);
    assert!(archive::split(&raw(&[inv, core, pm, pages], 4), 1 << 30).is_ok());

    assert!(err(b"TALOSIMX\x01").contains("magic"));
    assert!(err(b"TALOSIMG\x02").contains("version"));
    // Names: paths, non-images, duplicates.
    assert!(
        err(&raw(&[("../x.img", 4, b"\x19\x43\x56\x54")], 1)).contains("not a CRIU image name")
    );
    assert!(err(&raw(&[("passwd", 4, b"abcd")], 1)).contains("not a CRIU image name"));
    assert!(err(&raw(&[inv, inv], 2)).contains("twice"));
    // Images other than pages must carry CRIU's magic.
    assert!(err(&raw(&[("core-1.img", 8, b"\x7fELF\x02\x01\x01\x00")], 1)).contains("magic"));
    // Pages: only after their pagemap, exactly the bytes it names, last.
    assert!(err(&raw(&[inv, pages], 2)).contains("no pagemap"));
    let short = &pages.2[..4096];
    assert!(err(&raw(&[inv, pm, ("pages-1.img", 4096, short)], 3)).contains("pagemaps name"));
    assert!(err(&raw(&[inv, pm, pages, core], 4)).contains("pages come last"));
    // A pagemap naming pages that never come.
    assert!(err(&raw(&[inv, core, pm], 3)).contains("was not sent"));
    // The end must count every file; nothing may follow it.
    assert!(err(&raw(&[inv, core, pm, pages], 5)).contains("announces 5 files"));
    let mut trailing = raw(&[inv, core, pm, pages], 4);
    trailing.push(0);
    assert!(err(&trailing).contains("after the end"));
    // The size limit is checked on each announced length, before the bytes.
    let big = raw(&[inv, ("core-1.img", 1 << 40, b"")], 2);
    assert!(err(&big).contains("limit"));
    assert!(archive::split(&raw(&[inv, core, pm, pages], 4), 1000).is_err());
    // A stream without an inventory is no image directory.
    assert!(err(&raw(&[core], 1)).contains("inventory"));
}
