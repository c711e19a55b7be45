//! The check every signed-message target makes (each includes this file
//! with `#[path]`; it is no target of its own).

use talos_migrate::{Body, Message, Signed};

/// Decode `data` as a `Signed<B>` (a `what` file), check its signature and
/// describe it. Any accepted input must be canonical (re-encodes to the
/// same bytes), and the kind-dispatching decoder must agree with the typed
/// one.
pub fn check<B: Body>(data: &[u8], what: &str) {
    if let Ok(m) = Signed::<B>::decode(data) {
        assert_eq!(m.encode(), data, "accepted a non-canonical {what}");
        let _ = m.verify_signature();
        let _ = m.id();
        let _ = m.describe().to_string();
    }
    if let Ok(any) = Message::decode(data) {
        assert_eq!(any.encode(), data);
        let _ = any.verify_signature();
    }
}
