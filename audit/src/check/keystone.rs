//! The Keystone rules: every `ecall` of an eapp, judged by the runtime
//! call its `a7` names.

use std::collections::{BTreeMap, BTreeSet};

use super::{Auditor, Loc};
use crate::model;
use crate::rules::RuleId;
use crate::scan;

/// A runtime call an `ecall` makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// What it is (`runtime ocall (1001)`, `linux write (64, proxied to
    /// the host)`, ...).
    pub name: String,
    /// How the rules judge it.
    pub class: EcallClass,
}

/// What an `ecall` number means to the Keystone runtime (Eyrie).
#[must_use]
pub fn interface(n: u64) -> Interface {
    let named = |name: String, class| Interface { name, class };
    let runtime = match n {
        1001 => Some("ocall"),
        1002 => Some("copy_from_shared"),
        1003 => Some("attest_enclave"),
        1004 => Some("get_sealing_key"),
        1101 => Some("exit"),
        _ => None,
    };
    if let Some(name) = runtime {
        return named(format!("runtime {name} ({n})"), EcallClass::Runtime);
    }
    if (1000..3000).contains(&n) {
        return named(
            format!("runtime call {n} (not in the stable Eyrie interface)"),
            EcallClass::Unknown,
        );
    }
    // Eyrie handles memory management itself; other Linux calls are
    // proxied to the host.
    let (name, inside) = match n {
        214 => ("brk", true),
        215 => ("munmap", true),
        222 => ("mmap", true),
        226 => ("mprotect", true),
        96 => ("set_tid_address", true),
        135 => ("rt_sigprocmask", true),
        278 => ("getrandom", true),
        17 => ("getcwd", false),
        23 => ("dup", false),
        25 => ("fcntl", false),
        29 => ("ioctl", false),
        35 => ("unlinkat", false),
        46 => ("ftruncate", false),
        48 => ("faccessat", false),
        56 => ("openat", false),
        57 => ("close", false),
        62 => ("lseek", false),
        63 => ("read", false),
        64 => ("write", false),
        65 => ("readv", false),
        66 => ("writev", false),
        67 => ("pread64", false),
        68 => ("pwrite64", false),
        78 => ("readlinkat", false),
        79 => ("fstatat", false),
        80 => ("fstat", false),
        82 => ("fsync", false),
        93 => ("exit", false),
        94 => ("exit_group", false),
        98 => ("futex", false),
        113 => ("clock_gettime", false),
        124 => ("sched_yield", false),
        160 => ("uname", false),
        172 => ("getpid", false),
        174 => ("getuid", false),
        178 => ("gettid", false),
        198 => ("socket", false),
        200 => ("bind", false),
        201 => ("listen", false),
        202 => ("accept", false),
        203 => ("connect", false),
        206 => ("sendto", false),
        207 => ("recvfrom", false),
        208 => ("setsockopt", false),
        291 => ("statx", false),
        _ => {
            return named(format!("unknown call {n}"), EcallClass::Unknown);
        }
    };
    if inside {
        named(
            format!("linux {name} ({n}, handled inside Eyrie)"),
            EcallClass::Runtime,
        )
    } else {
        named(
            format!("linux {name} ({n}, proxied to the host)"),
            EcallClass::LinuxProxied,
        )
    }
}

/// How an `ecall` is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcallClass {
    /// A runtime service or a call Eyrie handles itself.
    Runtime,
    /// A Linux system call Eyrie forwards to the host.
    LinuxProxied,
    /// Not known.
    Unknown,
}

impl Auditor<'_> {
    /// Every `ecall` site, and a finding for each that is not a runtime
    /// service.
    pub(crate) fn keystone(&mut self, scan: &scan::Scan) -> model::KeystoneFacts {
        let mut facts = model::KeystoneFacts::default();
        let mut interfaces = BTreeSet::new();
        let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
        let mut ecalls: Vec<&scan::Ecall> = scan.ecalls.iter().collect();
        ecalls.sort_by_key(|e| e.addr);
        for e in ecalls {
            let reachable = self.reach.block(e.function, e.block);
            let Interface {
                name: interface,
                class,
            } = match e.a7 {
                Some(n) => interface(n),
                None => Interface {
                    name: "unresolved (a7 not set by a constant in the block)".to_string(),
                    class: EcallClass::Unknown,
                },
            };
            interfaces.insert(interface.clone());
            let name = match self.cfg.functions.get(e.function) {
                Some(f) => f.display_name(),
                None => {
                    self.missing_function(e.function);
                    String::new()
                }
            };
            facts.ecalls.push(model::EcallSite {
                addr: e.addr,
                function: name,
                number: e.a7,
                interface: interface.clone(),
                reachable,
            });
            let k = seen.entry(e.function).or_insert(0);
            let occurrence = *k;
            *k += 1;
            let rule = match class {
                EcallClass::Runtime => continue,
                EcallClass::LinuxProxied => RuleId::KeystoneLinuxSyscall,
                EcallClass::Unknown => RuleId::KeystoneUnknownEcall,
            };
            let reach_note = if reachable { "" } else { " (unreachable)" };
            self.push(
                rule,
                format!("ecall: {interface}{reach_note}"),
                Loc {
                    addr: Some(e.addr),
                    length: Some(4),
                    function: Some(e.function),
                    instruction: Some("ecall".to_string()),
                    location_key: format!("ecall#{occurrence}"),
                    ..Loc::default()
                },
            );
        }
        facts.interfaces = interfaces.into_iter().collect();
        facts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_numbers() {
        assert_eq!(interface(1001).class, EcallClass::Runtime);
        assert_eq!(interface(64).class, EcallClass::LinuxProxied);
        assert_eq!(interface(222).class, EcallClass::Runtime);
        assert_eq!(interface(1500).class, EcallClass::Unknown);
        assert_eq!(interface(9999).class, EcallClass::Unknown);
        assert_eq!(interface(64).name, "linux write (64, proxied to the host)");
    }
}
