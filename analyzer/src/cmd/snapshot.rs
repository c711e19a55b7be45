//! `talos snapshot`: write an ELF core of a live process (that gdb and
//! `talos introspect` both read), stopping it only while it is read, and
//! this host's vDSO next to it (`CORE.vdso`, the reference `talos
//! introspect --vdso` compares the dump's `[vdso]` with on another machine).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::Outcome;

/// Arguments of `talos snapshot`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Process to snapshot.
    #[arg(long, value_name = "PID")]
    pub pid: u32,
    /// Core file to write (replaced atomically).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// Read memory while the process runs (no ptrace stop, no registers:
    /// the threads' execution flow cannot be checked from such a core).
    #[arg(long)]
    pub no_stop: bool,
}

/// Run `talos snapshot`.
///
/// # Errors
/// When the process cannot be read or the file cannot be written.
pub fn run(args: Args) -> Result<Outcome> {
    let opts = talos_introspect::live::Options {
        stop: !args.no_stop,
        ..talos_introspect::live::Options::default()
    };
    let dump = talos_introspect::live::read(args.pid, &opts)
        .with_context(|| format!("process {}: cannot read", args.pid))?;
    let path = &args.output;
    crate::output::write_atomic_with(path, |w| {
        talos_introspect::snapshot::write_core(&dump, &mut { w })
    })?;
    // This host's vDSO, the reference for the dump's [vdso] when the dump
    // is checked on another machine (`talos introspect --vdso`).
    let mut vdso_path = path.as_os_str().to_owned();
    vdso_path.push(".vdso");
    let vdso_path = PathBuf::from(vdso_path);
    let vdso_line = match talos_introspect::live::host_vdso() {
        Some(bytes) => {
            crate::output::write_atomic(&vdso_path, &bytes)?;
            format!(
                "talos: wrote {} (this host's vDSO, {} bytes: give it to talos introspect --vdso on another machine)",
                vdso_path.display(),
                bytes.len()
            )
        }
        None => "talos: this host has no readable vDSO to save".to_string(),
    };
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "talos: wrote {} ({} regions, {} threads, {} bytes of memory)",
        path.display(),
        dump.regions.len(),
        dump.threads.len(),
        dump.bytes_held()
    );
    let _ = writeln!(err, "{vdso_line}");
    for n in &dump.notes {
        let _ = writeln!(err, "talos: {n}");
    }
    Ok(Outcome::Ok)
}
