//! talos-migrate: decode a bundle file, check its signature, describe it.
//! Any accepted input must be canonical (re-encodes to the same bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use talos_migrate::BundleBody;

#[path = "../common/signed.rs"]
mod signed;

fuzz_target!(|data: &[u8]| signed::check::<BundleBody>(data, "bundle"));
