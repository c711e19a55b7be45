//! The whole audit (graph, reachability, rules, metadata, SARIF) on
//! arbitrary files, as an SGX enclave with a fuzzed manifest and .sig.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First 2 bytes: where the manifest/.sig split off the end.
    let (cut, rest) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
        _ => return,
    };
    let split = rest.len().saturating_sub(cut.min(rest.len()));
    let (bin, aux) = rest.split_at(split);
    for tee in [
        talos_audit::Tee::Sgx,
        talos_audit::Tee::Gramine,
        talos_audit::Tee::Keystone,
    ] {
        let input = talos_audit::Input {
            path: "fuzz",
            bytes: bin,
            sig: Some(talos_audit::Aux {
                path: "fuzz.sig",
                bytes: aux,
            }),
            manifest: None,
        };
        let opts = talos_audit::Options {
            tee: talos_audit::TeeChoice::Given(tee),
            ..talos_audit::Options::default()
        };
        if let Ok(report) = talos_audit::audit(&input, &opts) {
            let _ = talos_audit::sarif::to_sarif(&report);
            let _ = serde_json::to_vec(&report);
        }
    }
});
