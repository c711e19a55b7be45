//! talos-migrate: decode a reference file, check its signature, describe it.
//! Any accepted input must be canonical (re-encodes to the same bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use talos_migrate::{Message, Reference};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Reference::decode(data) {
        assert_eq!(m.encode(), data, "accepted a non-canonical reference");
        let _ = m.verify_signature();
        let _ = m.id();
        let _ = m.describe().to_string();
    }
    // The kind-dispatching decoder must agree with the typed one.
    if let Ok(any) = Message::decode(data) {
        assert_eq!(any.encode(), data);
        let _ = any.verify_signature();
    }
});
