//! talos-migrate: decode a ledger file and render it. Any accepted input must
//! be canonical (re-encodes to the same bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use talos_migrate::Ledger;

fuzz_target!(|data: &[u8]| {
    if let Ok(l) = Ledger::decode(data) {
        assert_eq!(l.encode(), data, "accepted a non-canonical ledger");
        let _ = l.view().to_string();
        let _ = talos_migrate::describe(data);
    }
    // Checksums make random bytes fail early; also fuzz the body parser by
    // appending a valid checksum to the input.
    let mut fixed = data.to_vec();
    let sum = blake3::Hasher::new_derive_key("talos 2026-11 ledger checksum v1")
        .update(data)
        .finalize();
    fixed.extend_from_slice(sum.as_bytes());
    if let Ok(l) = Ledger::decode(&fixed) {
        assert_eq!(l.encode(), fixed, "accepted a non-canonical ledger");
        let _ = l.view().to_string();
    }
});
