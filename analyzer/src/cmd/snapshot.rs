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
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| -> Result<()> {
        let f = std::fs::File::create(&tmp)
            .with_context(|| format!("{}: cannot create", tmp.display()))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        talos_introspect::snapshot::write_core(&dump, &mut w)
            .with_context(|| format!("{}: cannot write", tmp.display()))?;
        let f = w
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("{}: cannot write", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("{}: cannot sync", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("{}: cannot replace", path.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
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
