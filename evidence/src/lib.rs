//! `talos-evidence`: what the migration gate compares, computed from the
//! bytes of binaries, dumps and CRIU image directories, and the exchange
//! that carries it between two hosts.
//!
//! `talos-migrate` is the gate: it links no parser and compares opaque
//! labelled digests. This crate computes those digests with `talos-cfg`
//! and `talos-introspect`, so that every client (the `talos` command, a
//! test, another tool) computes the same evidence from the same bytes:
//!
//! - [`state`]: the `talos.state/1` measurement of an ELF core or a CRIU
//!   image directory: the `talos.digest/1` root of the memory plus an
//!   envelope hash of every other byte, so one changed byte anywhere is
//!   another state;
//! - [`seal`]: the source's code and flow verdicts (the main module's code
//!   measured from memory against the reference, and the whole
//!   introspection of the dump);
//! - [`target`]: the target's measurements of the binary to launch;
//! - [`restored`]: the check of a process CRIU restored (stopped) against
//!   what was verified, before it runs;
//! - [`archive`]: an image directory as one bounded stream, checked as it
//!   arrives;
//! - [`exchange`]: the `serve`/`send` protocol over any `Read + Write`.
//!
//! Libraries never print or exit; progress and people are the caller's.

pub mod archive;
mod error;
pub mod exchange;
pub mod restored;
pub mod seal;
pub mod state;
pub mod target;

pub use error::{Error, Result};
