//! The clock challenges expire by: seconds since the Unix epoch.

/// Now, in seconds since the Unix epoch (0 if the clock is before 1970).
/// Test builds (the `test-hooks` feature) take the time from
/// `TALOS_TEST_NOW` when it is set.
#[must_use]
pub fn now() -> u64 {
    #[cfg(feature = "test-hooks")]
    if let Some(t) = crate::hooks::now_override() {
        return t;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
