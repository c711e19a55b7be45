//! Test hooks: crash points in the ledger write and a clock override, so
//! the tests can kill a process at every write step and move time. They
//! exist only with the `test-hooks` cargo feature, which the workspace's
//! tests turn on (a dev-dependency) and `cargo build --release` does not:
//! a shipped binary holds neither the hooks nor their names.

/// Environment variable naming a failpoint at which the process aborts
/// (`std::process::abort`, like `kill -9` for the ledger) during a ledger
/// write.
pub const FAILPOINT_ENV: &str = "TALOS_FAILPOINT";

/// Environment variable holding the time (seconds since the Unix epoch)
/// [`crate::clock::now`] returns instead of the system clock.
pub const NOW_ENV: &str = "TALOS_TEST_NOW";

/// The failpoints, in the order a ledger write passes them.
pub const FAILPOINTS: [&str; 5] = [
    // Lock held, checks passed, nothing written yet.
    "ledger-before-write",
    // Half of the new ledger written to ledger.tmp, not synced.
    "ledger-partial-write",
    // ledger.tmp complete and fsynced, not yet renamed.
    "ledger-before-rename",
    // Renamed over the ledger, directory not yet fsynced.
    "ledger-after-rename",
    // Directory fsynced; the caller has not received the result.
    "ledger-after-sync",
];

/// Abort the process when [`FAILPOINT_ENV`] names `name`.
pub(crate) fn failpoint(name: &str) {
    if std::env::var_os(FAILPOINT_ENV).is_some_and(|v| v == name) {
        std::process::abort();
    }
}

/// The time [`NOW_ENV`] sets, if it is set to a number.
pub(crate) fn now_override() -> Option<u64> {
    std::env::var(NOW_ENV).ok()?.trim().parse().ok()
}
