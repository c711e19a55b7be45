//! The check of a restored process before it runs: `criu restore
//! --leave-stopped` recreates the process stopped; talos reads it like any
//! live process and compares it with what was verified:
//!
//! - its code: the whole introspection (every module against its file, no
//!   anonymous or W+X code, no GOT hook) and the main module's code
//!   measured from memory against the reference's;
//! - its flow: every thread's pc and return addresses (the flow check on
//!   the restored registers);
//! - its threads and registers: the same thread ids with the registers the
//!   verified image holds;
//! - its state: the `talos.digest/1` root of its memory equals the root of
//!   the verified image (same masks, same rseq areas).
//!
//! Anything else is a mismatch, listed; the caller kills the tree.

use talos_introspect::criu::ThreadImage;
use talos_introspect::digest::{Hash32, PageSource};
use talos_introspect::dump::{Dump, register_names};
use talos_introspect::resolve::Resolver;
use talos_migrate::{CodeVerdict, FlowVerdict, ReferenceBody};

use crate::seal::check_code;
use crate::state::memory_digest_from;

/// What the restored process must be.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The `talos.digest/1` root of the verified image's memory.
    pub memory_root: Hash32,
    /// The rseq areas the image records (the restored threads register the
    /// same ones).
    pub rseq_areas: &'a [u64],
    /// The reference the bundle was verified against.
    pub reference: &'a ReferenceBody,
    /// The threads of the verified image.
    pub threads: &'a [ThreadImage],
}

/// The result of the check.
#[derive(Debug, Clone, Default)]
pub struct RestoredCheck {
    /// Every difference found, one sentence each; empty when the process
    /// is what was verified.
    pub differences: Vec<String>,
    /// The memory root of the restored process.
    pub memory_root: Hash32,
    /// Facts for people.
    pub notes: Vec<String>,
}

impl RestoredCheck {
    /// Whether the restored process is what was verified.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Whether register word `i` of `arch` may differ between the image and
/// the restored, stopped thread because the kernel owns it: x86-64's
/// `orig_rax` is the number of the system call a thread was in when it was
/// dumped (CRIU saves it to restart the call), and -1 once `criu restore`
/// has set the registers with `rt_sigreturn`; the restart itself is in
/// `rip` and `rax`, which must be equal.
fn kernel_bookkeeping(arch: talos_introspect::dump::Arch, i: usize, restored: u64) -> bool {
    arch == talos_introspect::dump::Arch::X86_64 && i == 15 && restored == u64::MAX
}

/// Compare the restored process `dump` (read live, stopped) with
/// `expected`. The regions `deferred` holds (left unread by
/// `talos_introspect::live::read_deferring`) are read through it by the
/// memory digest, 1 MiB at a time as they are hashed: the same bytes,
/// without a copy of all of them first.
///
/// # Errors
/// Only for a malformed reference label.
pub fn check_restored(
    dump: &Dump<'_>,
    deferred: Option<&dyn PageSource>,
    expected: &Expected<'_>,
    resolver: &Resolver,
    shown: &str,
) -> talos_migrate::Result<RestoredCheck> {
    let mut out = RestoredCheck::default();
    // The memory digest runs on its own thread (and rayon's pool) while the
    // code and flow are checked.
    let (code, memory) = std::thread::scope(|scope| {
        let memory = scope.spawn(|| {
            memory_digest_from(dump, Some(expected.rseq_areas), &|_: &[u8]| {}, deferred)
        });
        let code = check_code(dump, resolver, shown, expected.reference);
        (code, memory.join())
    });
    let code = code?;
    if code.code != CodeVerdict::Clean {
        out.differences.push(format!(
            "code {}: {}",
            match code.code {
                CodeVerdict::Modified => "differs from the reference",
                _ => "cannot be proven",
            },
            code.modified
                .iter()
                .chain(&code.unverifiable)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if code.flow != FlowVerdict::Ok {
        out.differences.push(format!(
            "flow check failed: {}",
            code.flow_findings.join("; ")
        ));
    }
    // Threads and registers.
    let mut want: Vec<&ThreadImage> = expected.threads.iter().collect();
    want.sort_by_key(|t| t.tid);
    let mut have: Vec<_> = dump.threads.iter().collect();
    have.sort_by_key(|t| t.tid);
    let want_ids: Vec<u32> = want.iter().map(|t| t.tid).collect();
    let have_ids: Vec<u32> = have.iter().map(|t| t.tid).collect();
    if want_ids != have_ids {
        out.differences.push(format!(
            "threads {have_ids:?}, the verified image has {want_ids:?}"
        ));
    } else {
        for (w, h) in want.iter().zip(&have) {
            let names = register_names(w.regs.arch);
            let differ: Vec<String> = w
                .regs
                .words
                .iter()
                .zip(&h.regs.words)
                .enumerate()
                .filter(|&(i, (a, b))| a != b && !kernel_bookkeeping(w.regs.arch, i, *b))
                .map(|(i, (a, b))| {
                    format!(
                        "{} {b:#x} (image {a:#x})",
                        names.get(i).copied().unwrap_or("?")
                    )
                })
                .collect();
            if h.regs.arch != w.regs.arch || h.regs.words.len() != w.regs.words.len() {
                out.differences.push(format!(
                    "thread {}: registers of another layout than the image's",
                    w.tid
                ));
            } else if !differ.is_empty() {
                out.differences.push(format!(
                    "thread {}: registers differ from the image: {}",
                    w.tid,
                    differ.join(", ")
                ));
            }
        }
    }
    // State.
    match memory
        .unwrap_or_else(|_| Err(crate::state::NotAState("the memory digest panicked".into())))
    {
        Ok((d, _)) => {
            out.memory_root = d.root;
            if d.root != expected.memory_root {
                out.differences.push(format!(
                    "memory digest {} of the restored process, the verified image's is {}",
                    d.root, expected.memory_root
                ));
            }
        }
        Err(e) => out
            .differences
            .push(format!("the restored memory cannot be digested: {e}")),
    }
    out.notes.push(format!(
        "introspection of the restored process: {}",
        code.introspect.name()
    ));
    Ok(out)
}
