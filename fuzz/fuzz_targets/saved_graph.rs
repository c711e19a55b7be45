//! `talos diff OLD.json NEW.json`: two saved `talos.cfg/1` documents
//! (separated by a NUL byte; without one the document is compared with
//! itself) parsed, turned into diff sides and matched by name, digest,
//! shape and gaps, and the pairs serialised.
#![no_main]

use libfuzzer_sys::fuzz_target;
use talos_cfg::diff::{DiffSide, diff};
use talos_cfg::schema::{CfgDoc, SCHEMA};

fn side(bytes: &[u8]) -> Option<DiffSide> {
    let doc: CfgDoc = serde_json::from_slice(bytes).ok()?;
    (doc.schema == SCHEMA).then(|| DiffSide::from_doc(&doc))
}

fuzz_target!(|data: &[u8]| {
    let (old, new) = match data.iter().position(|&b| b == 0) {
        Some(i) => (data.get(..i).unwrap_or(&[]), data.get(i + 1..).unwrap_or(&[])),
        None => (data, data),
    };
    if let (Some(a), Some(b)) = (side(old), side(new)) {
        let d = diff(&a, &b);
        let _ = d.is_same();
        let _ = serde_json::to_vec(&d.pairs);
    }
});
