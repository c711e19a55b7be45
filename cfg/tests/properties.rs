//! Properties of graph recovery over arbitrary code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{Seg, elf32, exe};
use proptest::prelude::*;

fn graph(bytes: &[u8]) -> Option<talos_cfg::Cfg> {
    let image = talos_cfg::load(bytes).ok()?;
    talos_cfg::analyze(&image, &talos_cfg::Options::default()).ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The same code bytes loaded at two addresses give the same digest.
    /// (The bases lie beyond what a 32-bit immediate or displacement can
    /// name, so no random constant is taken for an address at one base and
    /// not at the other.)
    #[test]
    fn same_bytes_at_two_bases_same_digest(code in proptest::collection::vec(any::<u8>(), 1..2048)) {
        let a = graph(&exe(0x7e00_0000_0000, code.clone()));
        let b = graph(&exe(0x7f00_1234_5000, code));
        match (a, b) {
            (Some(a), Some(b)) => {
                prop_assert_eq!(a.digest, b.digest);
                prop_assert_eq!(a.functions.len(), b.functions.len());
            }
            (a, b) => prop_assert_eq!(a.is_some(), b.is_some()),
        }
    }

    /// Arbitrary code, 32-bit or 64-bit, never panics and every block lies
    /// inside the code it was decoded from.
    #[test]
    fn arbitrary_code_gives_a_consistent_graph(code in proptest::collection::vec(any::<u8>(), 1..4096), bits32 in any::<bool>()) {
        let len = code.len() as u64;
        let (text, bytes) = if bits32 {
            (0x8000u64, elf32(0x8000, &[Seg { vaddr: 0x8000, bytes: code, flags: 5 }]))
        } else {
            (0x40_0000u64, exe(0x40_0000, code))
        };
        if let Some(cfg) = graph(&bytes) {
            for f in &cfg.functions {
                for b in &f.blocks {
                    prop_assert!(b.addr >= text && b.end() <= text + len, "block {:?} outside the code", b);
                    prop_assert!(b.instructions > 0 && b.size > 0);
                }
            }
            let again = graph(&bytes).unwrap();
            prop_assert_eq!(cfg, again);
        }
    }
}
