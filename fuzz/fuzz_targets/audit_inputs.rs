//! The readers of user-supplied audit inputs: Gramine manifests, policy
//! files, baselines.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = talos_audit::gramine::Manifest::parse(data) {
        let _ = talos_audit::check::gramine::manifest_findings(&m);
        let _ = m.facts("fuzz", &mut Vec::new());
    }
    let _ = talos_audit::Policy::parse("fuzz", data);
    let _ = talos_audit::Baseline::parse("fuzz", data);
});
