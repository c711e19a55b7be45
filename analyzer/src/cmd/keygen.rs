//! `talos keygen -o FILE`: an ed25519 key pair for an application owner
//! (FILE, mode 0600, and FILE.pub). The private key is never printed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::Outcome;

/// Arguments of `talos keygen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Secret key file to create (mode 0600); the public key goes to FILE.pub.
    /// Neither may exist.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
}

/// Create the key pair at `path` and `path.pub`; returns the public key.
///
/// # Errors
/// When either file exists or cannot be written.
pub fn generate(path: &Path) -> Result<talos_migrate::PublicKey> {
    talos_migrate::keygen(path)
        .with_context(|| format!("{}: cannot create key pair", path.display()))
}

/// Run `talos keygen`.
///
/// # Errors
/// When either file exists or cannot be written.
pub fn run(args: Args) -> Result<Outcome> {
    let public = generate(&args.output)?;
    let line = format!(
        "keygen: wrote secret key {} (mode 0600) and public key {} (key id {})\n",
        args.output.display(),
        talos_migrate::public_path_for(&args.output).display(),
        public.id().short()
    );
    crate::output::emit(None, line.as_bytes())?;
    Ok(Outcome::Ok)
}
