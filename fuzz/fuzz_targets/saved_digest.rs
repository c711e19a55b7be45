//! `talos digest --diff A.json B.json` and `talos digest A.json`: saved
//! `talos.digest/1` documents (separated by a NUL byte; without one the
//! document is compared with itself) parsed, checked for internal
//! consistency (leaves against region roots against the dump root) and
//! compared region by region and page by page.
#![no_main]

use libfuzzer_sys::fuzz_target;
use talos_introspect::digest::diff;
use talos_introspect::digest::schema::DigestDoc;

fuzz_target!(|data: &[u8]| {
    let (a, b) = match data.iter().position(|&b| b == 0) {
        Some(i) => (data.get(..i).unwrap_or(&[]), data.get(i + 1..).unwrap_or(&[])),
        None => (data, data),
    };
    let load = |bytes: &[u8]| {
        serde_json::from_slice::<DigestDoc>(bytes)
            .ok()?
            .into_digest()
            .ok()
    };
    if let (Some(x), Some(y)) = (load(a), load(b)) {
        let _ = diff(&x, &y);
    }
});
