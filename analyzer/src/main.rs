//! `talos`: the command people and CI run.
//!
//! This crate is glue and command line only (the libraries never print and
//! never exit). Exit codes, shared by every subcommand:
//! 0 ok, 1 verification failed or findings, 2 bad usage or unreadable input,
//! 3 the evidence cannot prove it either way.

mod cmd;
mod criu;
mod html;
mod input;
mod output;
mod source;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Verify binaries and memory dumps of trusted applications.
#[derive(Debug, Parser)]
#[command(name = "talos", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run talos on the embedded sample trusted application.
    Demo(cmd::demo::Args),
    /// Recover the control-flow graph of a binary and its canonical digest.
    Cfg(cmd::cfg::Args),
    /// State digest of a memory dump (BLAKE3 Merkle tree over its pages),
    /// or with --diff the pages and regions two dumps differ in.
    Digest(cmd::digest::Args),
    /// Prove that the code in a memory dump or live process is exactly the
    /// audited binaries, and find code that should not be there.
    Introspect(cmd::introspect::Args),
    /// Write an ELF core of a live process (gdb and talos read it).
    Snapshot(cmd::snapshot::Args),
    /// Audit an enclave binary (SGX SDK, Gramine, Keystone): enclave-illegal
    /// instructions on reachable paths, image hardening, enclave metadata.
    Audit(cmd::audit::Args),
    /// Compare the control-flow graphs of two builds: functions added,
    /// removed and changed, with the blocks and edges that differ.
    Diff(cmd::diff::Args),
    /// Create an application owner's key pair (FILE, mode 0600, and FILE.pub).
    Keygen(cmd::keygen::Args),
    /// Measure a binary (BLAKE3, code measurement, CFG digest) into an
    /// owner-signed reference for the migration gate.
    Reference(cmd::reference::Args),
    /// The migration gate: move a trusted application between hosts with
    /// signed evidence, so it runs in one place only.
    Migrate(cmd::migrate::Args),
    /// Verify TEE attestation evidence offline (SGX/TDX DCAP quotes with
    /// collateral, Keystone reports) and judge it with a policy.
    Attest(cmd::attest::Args),
}

/// What a command concluded; maps onto the documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0: verified, clean, accepted, or simply done.
    Ok,
    /// Exit 1: verification failed, findings, rejected, different.
    Failed,
    /// Exit 3: the evidence cannot prove it either way.
    Unproven,
}

impl Outcome {
    fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Ok => ExitCode::SUCCESS,
            Outcome::Failed => ExitCode::from(1),
            Outcome::Unproven => ExitCode::from(3),
        }
    }
}

fn main() -> ExitCode {
    allocator_defaults();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Cfg(args) => cmd::cfg::run(args),
        Command::Digest(args) => cmd::digest::run(args),
        Command::Introspect(args) => cmd::introspect::run(args),
        Command::Snapshot(args) => cmd::snapshot::run(args),
        Command::Audit(args) => cmd::audit::run(args),
        Command::Diff(args) => cmd::diff::run(args),
        Command::Keygen(args) => cmd::keygen::run(args),
        Command::Reference(args) => cmd::reference::run(args),
        Command::Migrate(args) => cmd::migrate::run(args),
        Command::Attest(args) => cmd::attest::run(args),
    };
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => {
            // Never exit 0 on an error, a closed pipe included (a peer
            // that hung up is a failed exchange): `output::emit` already
            // lets a reader close standard output early without changing
            // the verdict's exit code.
            let _ = writeln!(std::io::stderr(), "talos: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// mimalloc instead of glibc's allocator: a whole-program `talos cfg`
/// makes tens of millions of small allocations from two threads (the sets
/// and runs of every function), and glibc's `malloc`/`free` were 8% of its
/// CPU time on node; with mimalloc the run takes 13% less time at the same
/// peak memory (BENCHMARKS.md, issue 13).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option (its index in `mi_option_e` of the v2
/// `mimalloc.h`; the Rust bindings name only the stable options).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Memory freed and not reused within a second stays with the process
/// instead of mimalloc's default 10 ms. The recovery of a large binary
/// frees and allocates again hundreds of MiB from phase to phase; returned
/// to the kernel after 10 ms, every page came back as a fresh page the
/// kernel zeroes, which was 20% of the CPU of `talos cfg /usr/bin/node`
/// (on a VM that hands freed memory back to its host, each such page also
/// faults on the host). A second keeps freed memory for the next phase:
/// node's system time went from 0.5-1.4 s to 0.13 s, its peak RSS from 489
/// to 528 MiB (BENCHMARKS.md, issue 13). `MIMALLOC_PURGE_DELAY` in the
/// environment still overrides it.
fn allocator_defaults() {
    // SAFETY: `mi_option_set_default` writes one entry of mimalloc's option
    // table, for an index inside it, and only when the option was not read
    // yet; it is called here before talos starts any thread.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, 1000);
    }
}
