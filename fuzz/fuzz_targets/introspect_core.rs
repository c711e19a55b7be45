//! The ELF core reader (program headers, notes, NT_FILE, NT_PRSTATUS,
//! NT_AUXV) and everything that runs on what it reads: module discovery,
//! the in-memory ELF header and build-id, byte comparison, GOT checks, CFI
//! unwinding and the flow checks, then the snapshot writer.
//!
//! Every file a mapping names resolves to /bin/true (a real binary with
//! .eh_frame, a GOT and init/fini arrays), so the checks run on real code
//! against arbitrary memory. Properties: never a panic; every region holds
//! at most its length in bytes; a dump that was read writes a core that
//! reads back with the same regions.
#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use talos_introspect::resolve::{FileBytes, Resolver};
use talos_introspect::verify::{Options, verify};

fn true_bytes() -> FileBytes {
    static B: OnceLock<FileBytes> = OnceLock::new();
    Arc::clone(B.get_or_init(|| Arc::new(std::fs::read("/bin/true").unwrap_or_default())))
}

fn loader(_: &Path) -> std::io::Result<FileBytes> {
    Ok(true_bytes())
}

fuzz_target!(|data: &[u8]| {
    let Ok(dump) = talos_introspect::core::parse(data) else {
        return;
    };
    for r in &dump.regions {
        assert!(r.bytes.len() as u64 <= r.len());
        assert!(r.start < r.end);
    }
    for w in dump.regions.windows(2) {
        assert!(w[0].end <= w[1].start);
    }
    let resolver = Resolver::new(Box::new(loader));
    let opts = Options {
        max_frames: 64,
        diff_cfg: false,
        scan_words: 1024,
        ..Options::default()
    };
    let report = verify(&dump, &resolver, "fuzz", &opts);
    assert_eq!(report.threads.len(), dump.threads.len());
    let mut out = Vec::new();
    if talos_introspect::snapshot::write_core(&dump, &mut out).is_ok() {
        let again = talos_introspect::core::parse(&out).expect("a written core reads back");
        assert_eq!(again.regions.len(), dump.regions.len());
        for (a, b) in again.regions.iter().zip(&dump.regions) {
            assert_eq!((a.start, a.end, &a.bytes), (b.start, b.end, &b.bytes));
        }
        assert_eq!(again.threads.len(), dump.threads.len());
    }
});
