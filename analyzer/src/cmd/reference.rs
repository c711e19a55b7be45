//! `talos reference BINARY --app ID --key OWNER_KEY -o ref.json`: the
//! owner-signed reference of a binary, made in CI before deployment: app
//! id, version, the binary's BLAKE3 (`blake3`), its code measurement
//! (`talos.code/1`, the same one `talos migrate seal` recomputes from the
//! memory of a dump) and its control-flow graph digest (`talos.cfg/1`, the
//! same one `talos migrate verify` recomputes from the binary to launch).
//!
//! With `--tee-measurement KIND:HEX` (and `--tee-sigstruct FILE`, the SGX
//! SIGSTRUCT of the enclave, e.g. Gramine's `.sig`) the reference also
//! lists the TEE measurements the owner allows: `talos migrate trust
//! --evidence` pins a peer only when its verified evidence proves one of
//! them (format version 2 of the reference, `docs/migrate-protocol.md`).
//!
//! The file is a signed talos-migrate message (`docs/migrate-protocol.md`
//! §3), not JSON, whatever its name (`ref.json` in the examples);
//! `talos migrate show FILE` prints it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use talos_migrate::{
    AppId, MAX_TEE_MEASUREMENTS, Measurement, Reference, ReferenceBody, SecretKey, TeeKind,
    TeeMeasurement, Version,
};

use crate::cmd::migrate::{Format, Verdict};
use crate::{Outcome, input, output};

/// Arguments of `talos reference`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The audited binary (ELF executable).
    #[arg(value_name = "BINARY")]
    pub binary: PathBuf,
    /// Application id (1-64 of `A-Za-z0-9._-`).
    #[arg(long, value_name = "ID")]
    pub app: String,
    /// Version label (printable ASCII, no spaces).
    #[arg(long, value_name = "V", default_value = "1")]
    pub version: String,
    /// The owner's secret key (from `talos keygen`).
    #[arg(long, value_name = "OWNER_KEY")]
    pub key: PathBuf,
    /// A TEE measurement the owner allows peers to prove (repeatable):
    /// `sgx:MRENCLAVE`, `sgx-signer:MRSIGNER`, `tdx:MRTD`, `keystone:HASH`,
    /// `keystone-sm:HASH` (hex).
    #[arg(long = "tee-measurement", value_name = "KIND:HEX")]
    pub tee_measurement: Vec<String>,
    /// An SGX SIGSTRUCT (Gramine's `.sig`, 1808 bytes at its start) whose
    /// signature verifies: allow its MRENCLAVE (repeatable).
    #[arg(long = "tee-sigstruct", value_name = "FILE")]
    pub tee_sigstruct: Vec<PathBuf>,
    /// The reference file to write (replaced atomically).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// Verdict format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// BLAKE3 of the whole file at `path`.
///
/// # Errors
/// When the file cannot be read.
pub fn file_blake3(path: &Path) -> Result<Measurement> {
    let bytes = input::map(path)?;
    Ok(talos_evidence::target::file_measurement(&bytes)?)
}

/// Measure a binary: BLAKE3, code measurement, CFG digest.
///
/// # Errors
/// When the file cannot be read or is not a binary talos can analyse.
pub fn measure(path: &Path) -> Result<talos_evidence::target::BinaryMeasures> {
    let bytes = input::map(path)?;
    Ok(talos_evidence::target::measure_binary(
        &bytes,
        &path.display().to_string(),
    )?)
}

/// Measure `binary` and sign its reference with the owner key at `key`.
///
/// # Errors
/// Bad app id or version, unreadable or unanalysable binary, unusable key.
pub fn build(binary: &Path, app: &str, version: &str, key: &Path) -> Result<Reference> {
    build_with_tee(binary, app, version, key, BTreeSet::new())
}

/// The TEE measurements of `--tee-measurement` and `--tee-sigstruct`.
///
/// # Errors
/// A malformed measurement, an unreadable SIGSTRUCT or one whose signature
/// does not verify, more than [`MAX_TEE_MEASUREMENTS`].
pub fn tee_measurements(
    texts: &[String],
    sigstructs: &[PathBuf],
) -> Result<BTreeSet<TeeMeasurement>> {
    let mut set = BTreeSet::new();
    for t in texts {
        set.insert(TeeMeasurement::parse(t).context("--tee-measurement")?);
    }
    for p in sigstructs {
        let bytes = input::map(p)?;
        let sig = talos_audit::sgx::SigStruct::parse(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: not a SIGSTRUCT: {}", p.display(), e.0))?;
        sig.verify()
            .map_err(|e| anyhow::anyhow!("{}: SIGSTRUCT signature: {e}", p.display()))?;
        set.insert(TeeMeasurement::new(TeeKind::SgxEnclave, sig.mrenclave())?);
    }
    if set.len() > MAX_TEE_MEASUREMENTS {
        anyhow::bail!(
            "{} TEE measurements: a reference allows at most {MAX_TEE_MEASUREMENTS}",
            set.len()
        );
    }
    Ok(set)
}

/// [`build`] with the TEE measurements the owner allows.
///
/// # Errors
/// As [`build`].
pub fn build_with_tee(
    binary: &Path,
    app: &str,
    version: &str,
    key: &Path,
    tee: BTreeSet<TeeMeasurement>,
) -> Result<Reference> {
    let app = AppId::new(app).context("--app")?;
    let version = Version::new(version).context("--version")?;
    let owner = SecretKey::load(key).with_context(|| format!("{}: owner key", key.display()))?;
    let m = measure(binary)?;
    Ok(Reference::sign(
        ReferenceBody {
            app,
            version,
            binary: m.binary,
            code: m.code,
            cfg: m.cfg,
            tee,
        },
        &owner,
    ))
}

/// Run `talos reference`.
///
/// # Errors
/// As [`build`], and an unwritable output.
pub fn run(args: Args) -> Result<Outcome> {
    let tee = tee_measurements(&args.tee_measurement, &args.tee_sigstruct)?;
    let r = match build_with_tee(&args.binary, &args.app, &args.version, &args.key, tee) {
        Ok(r) => r,
        // A graph cut short at a limit is no measurement: nothing is
        // signed, and the answer is "cannot prove", not "bad input".
        Err(e)
            if e.downcast_ref::<talos_evidence::Error>()
                .is_some_and(|e| matches!(e, talos_evidence::Error::IncompleteGraph { .. })) =>
        {
            Verdict::undecided("reference", "incomplete-graph", format!("{e:#}"))
                .print(args.format)?;
            return Ok(Outcome::Unproven);
        }
        Err(e) => return Err(e),
    };
    output::write_atomic(&args.output, &r.encode())?;
    let b = r.body();
    let mut v = Verdict::accepted("reference", format!("reference for {} written", b.app))
        .field("app", b.app.as_str())
        .field("version", b.version.as_str())
        .field("binary", b.binary.to_string())
        .field("code", b.code.to_string())
        .field("cfg", b.cfg.to_string())
        .field("owner", r.signer().id().short())
        .field("id", r.id().to_hex())
        .field("output", args.output.display().to_string());
    if !b.tee.is_empty() {
        let tee: Vec<serde_json::Value> = b.tee.iter().map(|m| m.to_string().into()).collect();
        v = v.field("tee", serde_json::Value::Array(tee));
    }
    v.print(args.format)?;
    Ok(Outcome::Ok)
}
