//! The CRIU image reader on image directories built by hand (protobuf
//! bytes written field by field from CRIU 4.2's `images/*.proto`, not with
//! the reader's structs): regions, permissions, kinds, which pages come
//! from the image, the file or zeros, registers and rseq areas of every
//! thread; the pagemap count in field 5 with field 2 as the fallback; and
//! every malformed or unsupported input refused without a panic. The real
//! images of real processes are read in `analyzer/tests/criu_migrate.rs`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use talos_introspect::criu::{self, RegionPages};
use talos_introspect::region::RegionKind;
use talos_introspect::resolve::{FileBytes, Resolver};

const COMMON: u32 = 0x5456_4319;

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

/// Protobuf field builder.
#[derive(Default, Clone)]
struct Msg(Vec<u8>);

impl Msg {
    fn v(mut self, tag: u32, v: u64) -> Msg {
        varint(u64::from(tag) << 3, &mut self.0);
        varint(v, &mut self.0);
        self
    }
    fn b(mut self, tag: u32, bytes: &[u8]) -> Msg {
        varint((u64::from(tag) << 3) | 2, &mut self.0);
        varint(bytes.len() as u64, &mut self.0);
        self.0.extend_from_slice(bytes);
        self
    }
    fn m(self, tag: u32, m: &Msg) -> Msg {
        self.b(tag, &m.0)
    }
}

fn image(magic: &[u32], entries: &[Msg]) -> Vec<u8> {
    let mut b: Vec<u8> = magic.iter().flat_map(|m| m.to_le_bytes()).collect();
    for e in entries {
        b.extend_from_slice(&(e.0.len() as u32).to_le_bytes());
        b.extend_from_slice(&e.0);
    }
    b
}

/// `core_entry` of an x86-64 thread: register i (in `user_regs_struct`
/// order) is `base + i`, `fs_base` as given, rseq at `rseq`.
fn core(base: u64, fs_base: u64, rseq: u64, main: bool) -> Msg {
    let mut regs = Msg::default();
    for i in 0..27u32 {
        let v = if i == 21 {
            fs_base
        } else {
            base + u64::from(i)
        };
        regs = regs.v(i + 1, v);
    }
    let ti = Msg::default().v(1, 0).m(2, &regs);
    let tc = Msg::default().m(15, &Msg::default().v(1, rseq).v(2, 32).v(3, 0x5305_3053));
    let mut c = Msg::default().v(1, 1).m(2, &ti).m(5, &tc);
    if main {
        c = c.m(3, &Msg::default().v(1, 1).b(6, b"sample"));
    }
    c
}

fn vma(start: u64, end: u64, pgoff: u64, shmid: u64, prot: u64, flags: u64, status: u64) -> Msg {
    Msg::default()
        .v(1, start)
        .v(2, end)
        .v(3, pgoff)
        .v(4, shmid)
        .v(5, prot)
        .v(6, flags)
        .v(7, status)
        .v(8, 1) // fd = -1, zigzag
}

const FILE_PRIVATE: u64 = 0x40 | 1;
const ANON_PRIVATE: u64 = 0x200 | 1;

fn true_bytes() -> Vec<u8> {
    std::fs::read("/bin/true").unwrap()
}

fn build_id(b: &[u8]) -> Vec<u8> {
    talos_cfg::load(b).unwrap().build_id.unwrap()
}

/// The image directory of one process (pid 10, threads 10 and 11):
/// `/bin/true` mapped r-x at 0x400000 (pgoff 0x1000, 2 pages, the first
/// one stored with a changed byte), an rw anonymous region of 4 pages at
/// 0x600000 with pages 1-2 stored, a PROT_NONE guard page right below it.
fn sample(
    recorded_build_id: &[u8],
    recorded_size: u64,
    nr_pages_field: u32,
) -> BTreeMap<String, Vec<u8>> {
    let mut f = BTreeMap::new();
    f.insert(
        "inventory.img".into(),
        image(&[0x5831_3116], &[Msg::default().v(1, 2)]),
    );
    f.insert(
        "pstree.img".into(),
        image(
            &[COMMON, 0x5027_3030],
            &[Msg::default()
                .v(1, 10)
                .v(2, 1)
                .v(3, 10)
                .v(4, 10)
                .v(5, 10)
                .v(5, 11)],
        ),
    );
    let mut reg = Msg::default()
        .v(1, 1)
        .v(2, 0)
        .v(3, 0)
        .m(5, &Msg::default().v(1, 0))
        .b(6, b"/bin/true")
        .v(8, recorded_size);
    for w in recorded_build_id.chunks(4) {
        let mut x = [0u8; 4];
        x[..w.len()].copy_from_slice(w);
        reg = reg.v(11, u64::from(u32::from_le_bytes(x)));
    }
    f.insert(
        "files.img".into(),
        image(
            &[COMMON, 0x5630_3138],
            &[Msg::default().v(1, 1).v(2, 1).m(3, &reg)],
        ),
    );
    f.insert(
        "core-10.img".into(),
        image(
            &[COMMON, 0x5505_3847],
            &[core(0x1000, 0x7000_0000, 0x7000_0920, true)],
        ),
    );
    f.insert(
        "core-11.img".into(),
        image(
            &[COMMON, 0x5505_3847],
            &[core(0x2000, 0x7100_0000, 0x7100_0920, false)],
        ),
    );
    let mm = Msg::default()
        .v(1, 0x401000)
        .v(2, 0x402000)
        .v(12, 1)
        .v(13, 6)
        .v(13, 4096)
        .v(13, 9)
        .v(13, 0x401000)
        .v(13, 0)
        .v(13, 0)
        .m(14, &vma(0x400000, 0x402000, 0x1000, 1, 5, 2, FILE_PRIVATE))
        .m(14, &vma(0x5ff000, 0x600000, 0, 0, 0, 0x22, ANON_PRIVATE))
        .m(14, &vma(0x600000, 0x604000, 0, 0, 3, 0x22, ANON_PRIVATE));
    f.insert("mm-10.img".into(), image(&[COMMON, 0x5749_2820], &[mm]));
    let entry = |vaddr: u64, n: u64| {
        let e = Msg::default().v(1, vaddr);
        if nr_pages_field == 5 {
            e.v(2, 0).v(4, 4).v(5, n)
        } else {
            e.v(2, n).v(4, 4)
        }
    };
    f.insert(
        "pagemap-10.img".into(),
        image(
            &[COMMON, 0x5608_4025],
            &[
                Msg::default().v(1, 1),
                entry(0x400000, 1),
                entry(0x601000, 2),
            ],
        ),
    );
    let t = true_bytes();
    let mut pages = t[0x1000..0x2000].to_vec();
    pages[0x10] ^= 0xff;
    pages.extend((0..0x2000u32).map(|i| (i % 251) as u8));
    f.insert("pages-1.img".into(), pages);
    f
}

fn resolver() -> Resolver {
    Resolver::new(Box::new(|p: &Path| -> std::io::Result<FileBytes> {
        Ok(Arc::new(std::fs::read(p)?))
    }))
}

fn borrow(f: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, &[u8]> {
    f.iter().map(|(k, v)| (k.clone(), v.as_slice())).collect()
}

#[test]
fn criu_images_become_regions_registers_and_page_provenance() {
    let t = true_bytes();
    for field in [5, 2] {
        let files = sample(&build_id(&t), t.len() as u64, field);
        let map = borrow(&files);
        let set = criu::read(&map).unwrap();
        assert_eq!(set.processes.len(), 1);
        let m = set.materialize(None, &resolver()).unwrap();
        let d = m.dump();
        assert_eq!(d.source.name(), "criu");
        assert_eq!(d.regions.len(), 3, "field {field}");
        // The code mapping: the stored (changed) page, then the file's page.
        let code = &d.regions[0];
        assert!(code.perms.read && code.perms.execute && !code.perms.write);
        assert_eq!(
            code.kind,
            RegionKind::File {
                path: "/bin/true".into(),
                offset: 0x1000
            }
        );
        assert_eq!(code.bytes.len(), 0x2000);
        assert_eq!(code.bytes[0x10], t[0x1010] ^ 0xff);
        assert_eq!(&code.bytes[0x1000..], &t[0x2000..0x3000]);
        // The guard page: not accessible, all zero, held.
        let guard = &d.regions[1];
        assert!(!guard.perms.read && !guard.perms.write);
        assert_eq!(guard.bytes.len(), 0x1000);
        assert!(guard.bytes.iter().all(|&b| b == 0));
        // Anonymous memory: pages 1-2 from the image, 0 and 3 zero.
        let anon = &d.regions[2];
        assert_eq!(anon.bytes.len(), 0x4000);
        assert!(anon.bytes[..0x1000].iter().all(|&b| b == 0));
        assert_eq!(anon.bytes[0x1000 + 7], 7);
        assert!(anon.bytes[0x3000..].iter().all(|&b| b == 0));
        assert_eq!(
            m.provenance.regions,
            [
                RegionPages {
                    stored: 1,
                    from_file: 1,
                    zero: 0,
                    missing: 0
                },
                RegionPages {
                    stored: 0,
                    from_file: 0,
                    zero: 1,
                    missing: 0
                },
                RegionPages {
                    stored: 2,
                    from_file: 0,
                    zero: 2,
                    missing: 0
                },
            ]
        );
        assert_eq!(m.provenance.stored_code_pages, [0x400000]);
        // Threads, registers in user_regs_struct order, rseq areas.
        assert_eq!(d.threads.len(), 2);
        assert_eq!(d.threads[0].tid, 10);
        assert_eq!(d.threads[0].pc(), Some(0x1000 + 16));
        assert_eq!(d.threads[1].sp(), Some(0x2000 + 19));
        assert_eq!(d.threads[1].fs_base(), Some(0x7100_0000));
        assert_eq!(m.rseq_areas, [0x7000_0920, 0x7100_0920]);
        assert_eq!(d.auxv_get(9), Some(0x401000));
        assert_eq!(d.file_mappings.len(), 1);
        // The verdict: the stored code page differs from the file.
        let report = talos_introspect::verify::verify(
            &d,
            &resolver(),
            "sample",
            &talos_introspect::verify::Options {
                flow: false,
                ..Default::default()
            },
        );
        let m = report
            .modules
            .iter()
            .find(|m| m.path == "/bin/true")
            .unwrap();
        assert_eq!(m.verdict.name(), "tampered", "{}", m.reason);
        assert_eq!(m.differing_bytes, 1);
    }
}

#[test]
fn criu_file_other_than_recorded_holds_no_file_pages() {
    let t = true_bytes();
    let mut wrong = build_id(&t);
    wrong[0] ^= 1;
    for files in [
        sample(&wrong, t.len() as u64, 5),
        sample(&build_id(&t), 12, 5),
    ] {
        let map = borrow(&files);
        let set = criu::read(&map).unwrap();
        let m = set.materialize(None, &resolver()).unwrap();
        let d = m.dump();
        // Only the stored page is held: the rest would come from a file
        // criu restore refuses.
        assert_eq!(d.regions[0].bytes.len(), 0x1000);
        assert_eq!(m.provenance.regions[0].missing, 1);
        assert!(
            d.anomalies.iter().any(|a| a.code == "criu-file-changed"),
            "{:?}",
            d.anomalies
        );
    }
}

#[test]
fn criu_malformed_and_unsupported_images_are_refused_without_panic() {
    let t = true_bytes();
    let good = sample(&build_id(&t), t.len() as u64, 5);
    let read = |f: &BTreeMap<String, Vec<u8>>| -> Result<(), String> {
        let map = borrow(f);
        let set = criu::read(&map).map_err(|e| e.to_string())?;
        set.materialize(None, &resolver())
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    read(&good).unwrap();
    let with = |name: &str, bytes: Vec<u8>| {
        let mut f = good.clone();
        f.insert(name.into(), bytes);
        f
    };
    // A missing image, a wrong magic.
    let mut f = good.clone();
    f.remove("mm-10.img");
    assert!(read(&f).unwrap_err().contains("mm-10.img is missing"));
    let mut bad = good["core-10.img"].clone();
    bad[4] ^= 1;
    assert!(
        read(&with("core-10.img", bad))
            .unwrap_err()
            .contains("magic")
    );
    // Pages past the end of pages-1.img.
    let mut short = good["pages-1.img"].clone();
    short.truncate(0x2000);
    assert!(
        read(&with("pages-1.img", short))
            .unwrap_err()
            .contains("past the end")
    );
    // Overlapping VMAs.
    let mm = Msg::default()
        .m(14, &vma(0x400000, 0x402000, 0, 1, 5, 2, FILE_PRIVATE))
        .m(14, &vma(0x401000, 0x403000, 0, 0, 3, 0x22, ANON_PRIVATE));
    let e = read(&with("mm-10.img", image(&[COMMON, 0x5749_2820], &[mm]))).unwrap_err();
    assert!(e.contains("overlaps"), "{e}");
    // Pre-dump (pages in a parent image) and lazy pages.
    for flags in [1u64, 2] {
        let pm = image(
            &[COMMON, 0x5608_4025],
            &[
                Msg::default().v(1, 1),
                Msg::default().v(1, 0x601000).v(2, 0).v(4, flags).v(5, 1),
            ],
        );
        let e = read(&with("pagemap-10.img", pm)).unwrap_err();
        assert!(e.contains("unsupported"), "{e}");
    }
    // A compat (32-bit) task.
    let regs = Msg::default().v(28, 2);
    let c = Msg::default()
        .v(1, 1)
        .m(2, &Msg::default().v(1, 0).m(2, &regs));
    let e = read(&with("core-11.img", image(&[COMMON, 0x5505_3847], &[c]))).unwrap_err();
    assert!(e.contains("missing") || e.contains("compat"), "{e}");
    // Every truncation of every image: an error or a reading, never a
    // panic, and every region holds at most its length.
    for (name, bytes) in &good {
        for cut in 0..bytes.len().min(600) {
            let f = with(name, bytes[..cut].to_vec());
            let map = borrow(&f);
            if let Ok(set) = criu::read(&map)
                && let Ok(m) = set.materialize(None, &resolver())
            {
                for r in &m.dump().regions {
                    assert!(r.bytes.len() as u64 <= r.len());
                }
            }
        }
    }
}
