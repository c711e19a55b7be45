//! `talos attest EVIDENCE`: verify TEE attestation evidence offline (an
//! Intel SGX or TDX DCAP quote with its collateral, or a Keystone report
//! under a pinned device key) and judge it with a policy. Prints the TEE,
//! the TCB status and advisories, the measurements, DEBUG and the report
//! data, as text or JSON (`talos.attest/1`, docs/schema-attest.md).
//!
//! Exit codes: 0 verified and acceptable; 1 a signature or chain failure,
//! or verified but not acceptable (one reason); 2 unreadable input; 3 the
//! evidence cannot prove it either way (no collateral, collateral not valid
//! at that time, no pinned Keystone root, a format this build does not
//! verify).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use talos_attest::{
    Collateral, Evidence, Identity, Inputs, Measurement, Policy, TcbStatus, Verdict, hex,
    time::{format_rfc3339, parse_rfc3339},
};

use crate::cmd::migrate::Format;
use crate::{Outcome, output};

/// The policy and verification inputs, shared by `talos attest` and
/// `talos migrate trust --evidence`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PolicyArgs {
    /// DCAP collateral JSON (TCB info, QE identity, CRLs, issuer chains) as
    /// a PCCS serves it; required for quotes.
    #[arg(long, value_name = "FILE")]
    pub collateral: Option<PathBuf>,
    /// Verify at this time (RFC 3339, e.g. 2025-06-25T00:00:00Z, or seconds
    /// since the Unix epoch) instead of now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Also accept this TCB status (Intel's name, e.g.
    /// ConfigurationAndSWHardeningNeeded); default UpToDate only. Repeatable.
    #[arg(long = "accept-tcb", value_name = "STATUS")]
    pub accept_tcb: Vec<String>,
    /// Accept enclaves and trust domains in debug mode (never in
    /// production: the host can read their memory).
    #[arg(long)]
    pub allow_debug: bool,
    /// The SGX MRENCLAVE the quote must carry (64 hex digits).
    #[arg(long, value_name = "HEX")]
    pub expect_mrenclave: Option<String>,
    /// The SGX MRSIGNER the quote must carry (64 hex digits).
    #[arg(long, value_name = "HEX")]
    pub expect_mrsigner: Option<String>,
    /// The TDX MRTD the quote must carry (96 hex digits).
    #[arg(long, value_name = "HEX")]
    pub expect_mrtd: Option<String>,
    /// The Keystone enclave hash the report must carry (128 hex digits).
    #[arg(long, value_name = "HEX")]
    pub expect_hash: Option<String>,
    /// The Keystone security monitor hash the report must carry.
    #[arg(long, value_name = "HEX")]
    pub expect_sm_hash: Option<String>,
    /// The pinned Keystone device root key: 64 hex digits, or the raw 32
    /// bytes; required for Keystone reports.
    #[arg(long, value_name = "FILE")]
    pub keystone_root: Option<PathBuf>,
}

/// Arguments of `talos attest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The evidence: a DCAP quote (binary) or a Keystone report_t (1352
    /// bytes).
    #[arg(value_name = "EVIDENCE")]
    pub evidence: PathBuf,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub policy: PolicyArgs,
    /// The report data must bind this talos host public key
    /// (host.pub; see `talos migrate show host.pub`).
    #[arg(long, value_name = "PUBFILE")]
    pub bind: Option<PathBuf>,
    /// The 64 bytes of report data the evidence must carry (128 hex digits).
    #[arg(long, value_name = "HEX", conflicts_with = "bind")]
    pub expect_report_data: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

fn read_capped(path: &Path, max: usize, what: &str) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let f = std::fs::File::open(path)
        .with_context(|| format!("{}: cannot open the {what}", path.display()))?;
    let mut v = Vec::new();
    f.take(max as u64 + 1)
        .read_to_end(&mut v)
        .with_context(|| format!("{}: cannot read the {what}", path.display()))?;
    if v.len() > max {
        anyhow::bail!("{}: the {what} is larger than {max} bytes", path.display());
    }
    Ok(v)
}

/// Parse a time given as RFC 3339 or as seconds since the Unix epoch.
///
/// # Errors
/// Anything else.
pub fn parse_time(s: &str) -> Result<u64> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    parse_rfc3339(s).with_context(|| {
        format!("--at {s:?}: expected an RFC 3339 UTC time (2025-06-25T00:00:00Z) or seconds")
    })
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn expect(out: &mut Vec<Measurement>, kind: &str, hex: Option<&String>) -> Result<()> {
    if let Some(h) = hex {
        let m = Measurement::parse(&format!("{kind}:{h}"))
            .with_context(|| format!("--expect for {kind}"))?;
        out.push(m);
    }
    Ok(())
}

impl PolicyArgs {
    /// Read the collateral and root key, and build the policy.
    ///
    /// # Errors
    /// Unreadable or malformed files, bad values (exit 2).
    pub fn load(&self) -> Result<(Inputs, Policy)> {
        let collateral = match &self.collateral {
            Some(p) => {
                let b = read_capped(p, talos_attest::MAX_COLLATERAL_LEN, "collateral")?;
                Some(
                    Collateral::parse(&b)
                        .with_context(|| format!("{}: not DCAP collateral", p.display()))?,
                )
            }
            None => None,
        };
        let keystone_root = match &self.keystone_root {
            Some(p) => {
                let b = read_capped(p, 4096, "Keystone device key")?;
                Some(
                    talos_attest::keystone::parse_root_key(&b)
                        .with_context(|| format!("{}", p.display()))?,
                )
            }
            None => None,
        };
        let at = match &self.at {
            Some(s) => parse_time(s)?,
            None => now(),
        };
        let mut accept_tcb = BTreeSet::from([TcbStatus::UpToDate]);
        for s in &self.accept_tcb {
            accept_tcb.insert(TcbStatus::parse(s).context("--accept-tcb")?);
        }
        let mut want = Vec::new();
        expect(&mut want, "sgx", self.expect_mrenclave.as_ref())?;
        expect(&mut want, "sgx-signer", self.expect_mrsigner.as_ref())?;
        expect(&mut want, "tdx", self.expect_mrtd.as_ref())?;
        expect(&mut want, "keystone", self.expect_hash.as_ref())?;
        expect(&mut want, "keystone-sm", self.expect_sm_hash.as_ref())?;
        Ok((
            Inputs {
                collateral,
                at,
                keystone_root,
            },
            Policy {
                accept_tcb,
                allow_debug: self.allow_debug,
                expect: want,
                allowed: Vec::new(),
                report_data: None,
            },
        ))
    }
}

/// Read and verify an evidence file.
///
/// # Errors
/// Unreadable or unrecognisable evidence (exit 2).
pub fn verify_file(path: &Path, inputs: &Inputs, policy: &Policy) -> Result<(Vec<u8>, Verdict)> {
    let bytes = read_capped(path, talos_attest::MAX_EVIDENCE_LEN, "evidence")?;
    let v = talos_attest::verify(&bytes, inputs, policy)
        .with_context(|| format!("{}", path.display()))?;
    Ok((bytes, v))
}

/// The exit outcome of a verdict.
pub fn outcome(v: &Verdict) -> Outcome {
    match v {
        Verdict::Accepted(_) => Outcome::Ok,
        Verdict::Refused { .. } => Outcome::Failed,
        Verdict::Undecided { .. } => Outcome::Unproven,
    }
}

/// `(verdict, reason code or null, one sentence)`.
pub fn headline(v: &Verdict) -> (&'static str, Option<&'static str>, String) {
    match v {
        Verdict::Accepted(e) => (
            "accepted",
            None,
            format!(
                "{} verified up to {} and accepted by the policy",
                e.format.describe(),
                root_name(e)
            ),
        ),
        Verdict::Refused { failures, .. } => (
            "refused",
            failures.first().map(|f| f.reason.code()),
            failures
                .first()
                .map(|f| f.detail.clone())
                .unwrap_or_default(),
        ),
        Verdict::Undecided { why, detail, .. } => ("undecided", Some(why.code()), detail.clone()),
    }
}

fn root_name(e: &Evidence) -> &'static str {
    match e.identity {
        Identity::Keystone { .. } => "the pinned Keystone device key",
        _ => "Intel's SGX root CA",
    }
}

/// The evidence as JSON (`evidence` of `talos.attest/1`).
pub fn evidence_json(e: &Evidence) -> Value {
    let (kind, version) = match e.format {
        talos_attest::Format::SgxQuote { version } => ("sgx-quote", Some(version)),
        talos_attest::Format::TdxQuote { version } => ("tdx-quote", Some(version)),
        talos_attest::Format::KeystoneReport => ("keystone-report", None),
    };
    let identity = match &e.identity {
        Identity::Sgx {
            mrenclave,
            mrsigner,
            isv_prod_id,
            isv_svn,
            attributes,
            misc_select,
        } => json!({
            "mrenclave": hex(mrenclave),
            "mrsigner": hex(mrsigner),
            "isv_prod_id": isv_prod_id,
            "isv_svn": isv_svn,
            "attributes": hex(attributes),
            "misc_select": format!("{misc_select:08x}"),
        }),
        Identity::Tdx {
            mrtd,
            rtmr,
            mr_seam,
            td_attributes,
        } => json!({
            "mrtd": hex(mrtd),
            "rtmr": rtmr.iter().map(|r| hex(r)).collect::<Vec<_>>(),
            "mr_seam": hex(mr_seam),
            "td_attributes": hex(td_attributes),
        }),
        Identity::Keystone {
            enclave_hash,
            sm_hash,
            sm_key,
            device_key,
        } => json!({
            "enclave_hash": hex(enclave_hash),
            "sm_hash": hex(sm_hash),
            "sm_public_key": hex(sm_key),
            "device_public_key": hex(device_key),
        }),
    };
    json!({
        "tee": e.tee().name(),
        "format": kind,
        "version": version,
        "verified": e.verified,
        "tcb": e.tcb.as_ref().map(|t| json!({
            "status": t.status.name(),
            "advisories": t.advisories,
        })),
        "identity": identity,
        "measurements": e.measurements().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "debug": e.debug,
        "report_data": hex(&e.report_data),
        "valid": e.valid.map(|w| json!({
            "from": format_rfc3339(w.from),
            "until": format_rfc3339(w.until),
        })),
        "at": e.at.map(format_rfc3339),
    })
}

/// The whole `talos.attest/1` document.
pub fn to_json(file: &Path, v: &Verdict, p: &Policy) -> Value {
    let (verdict, reason, detail) = headline(v);
    let failures: Vec<Value> = match v {
        Verdict::Refused { failures, .. } => failures
            .iter()
            .map(|f| json!({"reason": f.reason.code(), "detail": f.detail}))
            .collect(),
        _ => Vec::new(),
    };
    json!({
        "schema": "talos.attest/1",
        "file": file.display().to_string(),
        "verdict": verdict,
        "reason": reason,
        "detail": detail,
        "failures": failures,
        "evidence": v.evidence().map(evidence_json),
        "policy": {
            "accept_tcb": p.accept_tcb.iter().map(|t| t.name()).collect::<Vec<_>>(),
            "allow_debug": p.allow_debug,
            "expect": p.expect.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "allowed": p.allowed.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "report_data": p.report_data.map(|r| hex(&r)),
        },
    })
}

/// Name/value lines describing the evidence, for text output.
pub fn evidence_lines(e: &Evidence) -> Vec<(&'static str, String)> {
    let mut l = vec![
        ("tee", e.tee().name().to_owned()),
        (
            "format",
            format!(
                "{}{}",
                e.format.describe(),
                if e.verified { "" } else { " (NOT verified)" }
            ),
        ),
    ];
    if let Some(t) = &e.tcb {
        l.push(("tcb", t.status.name().to_owned()));
        if !t.advisories.is_empty() {
            l.push(("advisories", t.advisories.join(", ")));
        }
    }
    match &e.identity {
        Identity::Sgx {
            mrenclave,
            mrsigner,
            isv_prod_id,
            isv_svn,
            attributes,
            ..
        } => {
            l.push(("mrenclave", hex(mrenclave)));
            l.push(("mrsigner", hex(mrsigner)));
            l.push(("isv", format!("product {isv_prod_id}, svn {isv_svn}")));
            l.push(("attributes", hex(attributes)));
        }
        Identity::Tdx {
            mrtd,
            rtmr,
            td_attributes,
            ..
        } => {
            l.push(("mrtd", hex(mrtd)));
            for (name, r) in ["rtmr0", "rtmr1", "rtmr2", "rtmr3"].into_iter().zip(rtmr) {
                l.push((name, hex(r)));
            }
            l.push(("attributes", hex(td_attributes)));
        }
        Identity::Keystone {
            enclave_hash,
            sm_hash,
            device_key,
            ..
        } => {
            l.push(("hash", hex(enclave_hash)));
            l.push(("sm-hash", hex(sm_hash)));
            l.push(("device-key", hex(device_key)));
        }
    }
    l.push(("debug", if e.debug { "ENABLED" } else { "off" }.to_owned()));
    l.push(("report-data", hex(&e.report_data)));
    if let Some(w) = e.valid {
        l.push((
            "valid",
            format!("{} to {}", format_rfc3339(w.from), format_rfc3339(w.until)),
        ));
    }
    if let Some(at) = e.at {
        l.push(("at", format_rfc3339(at)));
    }
    l
}

/// The text form.
pub fn to_text(v: &Verdict) -> String {
    let (verdict, reason, detail) = headline(v);
    let mut s = match reason {
        None => format!("attest: {}: {detail}\n", verdict.to_uppercase()),
        Some(r) => format!("attest: {} ({r}): {detail}\n", verdict.to_uppercase()),
    };
    if let Verdict::Refused { failures, .. } = v {
        for f in failures.iter().skip(1) {
            s.push_str(&format!("  also       {}: {}\n", f.reason.code(), f.detail));
        }
    }
    if let Some(e) = v.evidence() {
        for (k, val) in evidence_lines(e) {
            s.push_str(&format!("  {k:<11} {val}\n"));
        }
    }
    s
}

/// Run `talos attest`.
///
/// # Errors
/// Unreadable input, bad arguments (exit 2).
pub fn run(args: Args) -> Result<Outcome> {
    let (inputs, mut policy) = args.policy.load()?;
    if let Some(p) = &args.bind {
        let key = talos_migrate::PublicKey::load(p)
            .with_context(|| format!("{}: not a talos public key file", p.display()))?;
        policy.report_data = Some(talos_migrate::tee_binding(&key));
    }
    if let Some(h) = &args.expect_report_data {
        let b = talos_attest::unhex(h)
            .and_then(|v| <[u8; 64]>::try_from(v).ok())
            .context("--expect-report-data: expected 128 hex digits")?;
        policy.report_data = Some(b);
    }
    let (_, v) = verify_file(&args.evidence, &inputs, &policy)?;
    let text = match args.format {
        Format::Text => to_text(&v),
        Format::Json => format!("{:#}\n", to_json(&args.evidence, &v, &policy)),
    };
    output::emit(None, text.as_bytes())?;
    Ok(outcome(&v))
}
