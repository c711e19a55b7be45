//! talos-migrate: decode a challenge file, check its signature, describe it.
//! Any accepted input must be canonical (re-encodes to the same bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use talos_migrate::ChallengeBody;

#[path = "../common/signed.rs"]
mod signed;

fuzz_target!(|data: &[u8]| signed::check::<ChallengeBody>(data, "challenge"));
