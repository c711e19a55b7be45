//! `talos-introspect`: memory introspection of trusted-application dumps.
//!
//! Design tenets:
//! - **Keyed by virtual address.** Every input (ELF core from the kernel or
//!   gdb, CRIU image directory, raw image, live process) becomes a list of [`region::Region`]s;
//!   nothing downstream knows file offsets of the dump.
//! - **Zero copy, bounded.** Dumps are memory-mapped and borrowed; every
//!   offset and count from the dump is checked before use.
//! - **Prove, or say it cannot.** Code is `clean` only when its bytes are in
//!   the dump and equal the audited binary; missing bytes are
//!   `unverifiable`, never clean.
//!
//! Pipeline: [`core::parse`] (or [`criu::read`] then
//! [`criu::ImageSet::materialize`], or [`dump::Dump::from_raw`], or
//! `live::read`) gives a [`dump::Dump`]; [`verify::verify`] maps its
//! executable regions back to the binaries and returns a
//! [`report::Report`] with per-module verdicts and findings.
//!
//! Layout: the readers of dumps sit in [`source`], the checks that judge
//! what they read in [`check`]; [`dump`] and [`region`] are the model both
//! share, [`report`] what the checks return.

pub mod check;
pub mod criu;
pub mod digest;
pub mod dump;
pub mod error;
pub mod measure;
pub mod region;
pub mod report;
pub mod resolve;
pub mod source;

// The paths the analyzer, evidence, fuzz targets and tests use.
pub use check::verify;
pub use source::{core, live, memelf, raw, snapshot};

pub use error::{Error, Result};
