//! The SIGSTRUCT parser and verifier and the `.note.sgxmeta` parser on
//! arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let align = u64::from(data.first().copied().unwrap_or(1) % 16);
    let _ = talos_audit::sgx::parse_note(data, 0, align);
    if let Ok(s) = talos_audit::sgx::SigStruct::parse(data) {
        let _ = s.facts("fuzz", 0);
    }
    // A valid header with fuzzed fields after it.
    let mut raw = vec![0u8; talos_audit::sgx::SIGSTRUCT_SIZE];
    raw[..12].copy_from_slice(&talos_audit::sgx::HEADER);
    raw[24..40].copy_from_slice(&talos_audit::sgx::HEADER2);
    for (i, b) in data.iter().enumerate().take(raw.len() - 40) {
        raw[40 + i] = *b;
    }
    raw[512] = 3;
    if let Ok(s) = talos_audit::sgx::SigStruct::parse(&raw) {
        let _ = s.facts("fuzz", 0);
    }
});
