//! Dump sources: the readers that turn bytes of a dump (ELF core, raw image,
//! live process, CRIU image set) into a [`crate::dump::Dump`], and the
//! writer of talos snapshots. They parse and record what is odd
//! ([`crate::dump::Anomaly`]); they judge nothing. The checks that judge a
//! dump live in [`crate::check`], as rust-minidump keeps its parser apart
//! from its processor.

pub mod core;
pub mod elf;
pub use crate::criu;
pub mod live;
pub mod memelf;
pub mod raw;
pub mod snapshot;
