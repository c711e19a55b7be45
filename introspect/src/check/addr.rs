//! Link-time and runtime addresses, kept apart.
//!
//! A module's code is described at its link addresses (the CFG, FDEs and
//! symbols read from the file) and found in the dump at its runtime
//! addresses. The two differ by the module's load bias, and the bias is the
//! only way from one to the other: a module whose bias is unknown has no
//! link address for a runtime address, so nothing in it is identified (an
//! address is never taken for the other kind).

/// An address in the module's file (`p_vaddr` space).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct LinkAddr(u64);

impl LinkAddr {
    /// An address read from the file (a CFG block, an FDE, a symbol, a
    /// report's link address).
    pub(crate) fn in_file(addr: u64) -> Self {
        LinkAddr(addr)
    }

    /// The address, for the CFG and image lookups that take a `u64`.
    pub(crate) fn get(self) -> u64 {
        self.0
    }

    /// `n` bytes before (the instruction a return address follows).
    pub(crate) fn back(self, n: u64) -> Self {
        LinkAddr(self.0.wrapping_sub(n))
    }
}

/// An address in the dump (the process's address space).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct RuntimeAddr(u64);

impl RuntimeAddr {
    /// An address read from the dump (a register, a stack word, a region).
    pub(crate) fn in_dump(addr: u64) -> Self {
        RuntimeAddr(addr)
    }

    /// The address, for the dump reads that take a `u64`.
    pub(crate) fn get(self) -> u64 {
        self.0
    }
}

/// A module's load bias: runtime address minus link address (wrapping,
/// as the loader computes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bias(u64);

impl Bias {
    /// The bias read from the module's headers in memory or its mappings.
    pub(crate) fn new(bias: u64) -> Self {
        Bias(bias)
    }

    /// The link address of a runtime address.
    pub(crate) fn link(self, addr: RuntimeAddr) -> LinkAddr {
        LinkAddr(addr.0.wrapping_sub(self.0))
    }

    /// The runtime address of a link address.
    pub(crate) fn runtime(self, addr: LinkAddr) -> RuntimeAddr {
        RuntimeAddr(addr.0.wrapping_add(self.0))
    }
}
