//! What the targets that read a dump share (each includes this file with
//! `#[path]`; it is no target of its own): every file a mapping names
//! resolves to /bin/true, the properties of a dump's regions, and the code
//! and flow checks kept short.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use talos_introspect::dump::Dump;
use talos_introspect::resolve::{FileBytes, Resolver};
use talos_introspect::verify::{Options, verify};

fn true_bytes() -> FileBytes {
    static B: OnceLock<FileBytes> = OnceLock::new();
    Arc::clone(B.get_or_init(|| Arc::new(std::fs::read("/bin/true").unwrap_or_default())))
}

fn loader(_: &Path) -> std::io::Result<FileBytes> {
    Ok(true_bytes())
}

/// A resolver that gives /bin/true for every file.
pub fn resolver() -> Resolver {
    Resolver::new(Box::new(loader))
}

/// Every region is non-empty and holds at most its length; regions are
/// sorted and do not overlap. Returns the bytes held in all.
pub fn check_regions(dump: &Dump<'_>) -> u64 {
    let mut held = 0u64;
    for r in &dump.regions {
        assert!(r.start < r.end);
        assert!(r.bytes.len() as u64 <= r.len());
        held += r.bytes.len() as u64;
    }
    for w in dump.regions.windows(2) {
        assert!(w[0].end <= w[1].start);
    }
    held
}

/// The code and flow checks, within a short frame and scan budget: one
/// thread report per thread.
pub fn check_verify(dump: &Dump<'_>, resolver: &Resolver) {
    let opts = Options {
        max_frames: 64,
        diff_cfg: false,
        scan_words: 1024,
        ..Options::default()
    };
    let report = verify(dump, resolver, "fuzz", &opts);
    assert_eq!(report.threads.len(), dump.threads.len());
}
