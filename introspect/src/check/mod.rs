//! Checks that judge a [`crate::dump::Dump`] read by a [`crate::source`]:
//! code against the audited files ([`verify`], with the kernel's regions in
//! `kernel`), execution flow of every thread (`flow`) and GOT pointers
//! (`got`). They read the dump only through its regions, never its file
//! layout.

pub(crate) mod addr;
pub(crate) mod flow;
pub(crate) mod got;
pub(crate) mod kernel;
pub mod verify;
