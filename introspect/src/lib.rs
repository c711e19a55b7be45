//! `talos-introspect`: memory introspection of trusted-application dumps.
//!
//! Design tenets:
//! - **Keyed by virtual address.** Every input (ELF core from the kernel or
//!   gdb, raw image, live process) becomes a list of [`region::Region`]s;
//!   nothing downstream knows file offsets of the dump.
//! - **Zero copy, bounded.** Dumps are memory-mapped and borrowed; every
//!   offset and count from the dump is checked before use.
//! - **Prove, or say it cannot.** Code is `clean` only when its bytes are in
//!   the dump and equal the audited binary; missing bytes are
//!   `unverifiable`, never clean.

pub mod region;
