//! `talos migrate trust --role peer HOST.pub --evidence FILE`: pin a peer
//! host key by what its TEE proves rather than because someone copied it.
//!
//! The key is pinned only when the evidence verifies (`talos-attest`: the
//! DCAP chain to Intel's root with collateral valid at that time, or the
//! Keystone chain to the pinned device key), the policy accepts it (TCB
//! status, no debug enclave), its report data is exactly the binding of
//! that key (`talos_migrate::tee_binding`, docs/migrate-protocol.md §10),
//! and its measurement is one the owner allows (the TEE measurements of an
//! owner-signed `--reference`, signed by an owner pinned here, and any
//! `--expect-*`). The ledger then records the key as attested, with the
//! TEE, measurement, TCB status and the evidence's BLAKE3.
//!
//! `talos migrate show host.pub` prints the binding a TEE must put in its
//! report data; `migrate init` prints it for the new host.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;
use talos_attest::{Measurement, Verdict as Attested};
use talos_migrate::{
    Attestation, Digest, PublicKey, Reference, Role, TcbLevel, TeeMeasurement, tee_binding,
};

use super::{TrustArgs, Verdict, gate, read_message, verdict};
use crate::cmd::attest::{self, PolicyArgs};

/// The attestation options of `talos migrate trust`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EvidenceArgs {
    /// Pin the peer only if this TEE evidence (a DCAP quote or a Keystone
    /// report) verifies and its report data binds the key.
    #[arg(long, value_name = "FILE")]
    pub evidence: Option<PathBuf>,
    /// The owner-signed reference whose TEE measurements the evidence must
    /// prove one of (its signer must be pinned here as an owner).
    #[arg(long, value_name = "REF", requires = "evidence")]
    pub reference: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub policy: PolicyArgs,
}

impl EvidenceArgs {
    /// Refuse policy options given without `--evidence` (they would be
    /// silently ignored).
    ///
    /// # Errors
    /// When any is given.
    pub fn refuse_without_evidence(&self) -> Result<()> {
        let p = &self.policy;
        let any = p.collateral.is_some()
            || p.at.is_some()
            || !p.accept_tcb.is_empty()
            || p.allow_debug
            || p.expect_mrenclave.is_some()
            || p.expect_mrsigner.is_some()
            || p.expect_mrtd.is_some()
            || p.expect_hash.is_some()
            || p.expect_sm_hash.is_some()
            || p.keystone_root.is_some();
        if any {
            anyhow::bail!("the attestation options need --evidence FILE");
        }
        Ok(())
    }
}

/// The 64 bytes of report data that bind `key`, in hex.
pub fn binding_hex(key: &PublicKey) -> String {
    talos_attest::hex(&tee_binding(key))
}

/// `talos migrate show host.pub`: the key, its id and its binding.
pub fn show_public_key(name: &str, path: &Path, bytes: &[u8]) -> Option<Verdict> {
    let text = std::str::from_utf8(bytes).ok()?;
    if !text.starts_with("talos-public-key-v1 ") {
        return None;
    }
    let key = PublicKey::from_text(text).ok()?;
    let mut v = Verdict::accepted(name, format!("public key {}", path.display()))
        .field("key", key.to_string())
        .field("key-id", key.id().to_hex())
        .field("report-data", binding_hex(&key))
        .field("binding", talos_migrate::BINDING_CONTEXT);
    v.text = "the report data is what an enclave of this host must put in its TEE report (SGX/TDX REPORTDATA, Keystone attest_enclave data) for `migrate trust --evidence`\n".to_owned();
    Some(v)
}

fn to_attest(m: &TeeMeasurement) -> Result<Measurement> {
    Ok(Measurement::parse(&m.to_string())?)
}

fn to_gate(m: &Measurement) -> Result<TeeMeasurement> {
    Ok(TeeMeasurement::parse(&m.to_string())?)
}

fn refused(name: &str, code: &'static str, detail: String) -> Verdict {
    let mut v = Verdict::accepted(name, detail);
    v.accepted = false;
    v.refusal = Some(code);
    v
}

/// Run `talos migrate trust` with `--evidence`.
///
/// # Errors
/// Unusable input (exit 2).
pub fn trust(a: &TrustArgs) -> Result<Verdict> {
    let name = "trust";
    let Some(evidence) = &a.attest.evidence else {
        anyhow::bail!("--evidence is required here");
    };
    if a.role != "peer" {
        anyhow::bail!("--evidence pins peer hosts (--role peer), not owners");
    }
    let host = a.common.host()?;
    let key = PublicKey::load(&a.key)
        .with_context(|| format!("{}: not a talos public key file", a.key.display()))?;
    let (inputs, mut policy) = a.attest.policy.load()?;
    policy.report_data = Some(tee_binding(&key));
    let mut reference_id: Option<Digest> = None;
    if let Some(path) = &a.attest.reference {
        let reference: Reference = verdict!(read_message(name, path)?);
        verdict!(gate(name, host.check_reference(&reference))?);
        if reference.body().tee.is_empty() {
            return Ok(refused(
                name,
                talos_attest::Reason::MeasurementMismatch.code(),
                format!(
                    "reference {} allows no TEE measurement (talos reference --tee-measurement)",
                    path.display()
                ),
            ));
        }
        for m in &reference.body().tee {
            policy.allowed.push(to_attest(m)?);
        }
        reference_id = Some(reference.id());
    }
    if policy.allowed.is_empty() && policy.expect.is_empty() {
        anyhow::bail!(
            "name the code the peer must run: --reference REF (with TEE measurements) or --expect-mrenclave, --expect-mrsigner, --expect-mrtd, --expect-hash"
        );
    }
    let (bytes, v) = attest::verify_file(evidence, &inputs, &policy)?;
    let details = |mut out: Verdict, v: &Attested| {
        if let Some(e) = v.evidence() {
            for (k, val) in attest::evidence_lines(e) {
                out = out.field(k, val);
            }
        }
        out.field("evidence", evidence.display().to_string())
    };
    let e = match &v {
        Attested::Accepted(e) => e,
        Attested::Refused { failures, .. } => {
            let (code, detail) = failures
                .first()
                .map(|f| (f.reason.code(), f.detail.clone()))
                .unwrap_or(("bad-signature", String::new()));
            let also: Vec<Value> = failures
                .iter()
                .skip(1)
                .map(|f| format!("{}: {}", f.reason.code(), f.detail).into())
                .collect();
            let mut out = refused(
                name,
                code,
                format!("key {} not pinned: {detail}", key.id().short()),
            );
            if !also.is_empty() {
                out = out.field("also", Value::Array(also));
            }
            return Ok(details(out, &v));
        }
        Attested::Undecided { why, detail, .. } => {
            let mut out = refused(
                name,
                why.code(),
                format!("key {} not pinned: {detail}", key.id().short()),
            );
            out.undecided = true;
            return Ok(details(out, &v));
        }
    };
    // The measurement that admitted it: the first the owner allows, else
    // the first expected, else the code's own.
    let has = e.measurements();
    let matched = has
        .iter()
        .find(|m| policy.allowed.contains(m) && !matches!(m, Measurement::KeystoneSm(_)))
        .or_else(|| has.iter().find(|m| policy.expect.contains(m)))
        .copied()
        .unwrap_or_else(|| e.primary());
    // Only a TEE without TCB statuses (Keystone) records none; a status
    // the ledger has no level for is not quietly recorded as that.
    let tcb = match e.tcb.as_ref() {
        None => TcbLevel::NotApplicable,
        Some(t) => TcbLevel::from_name(t.status.name()).with_context(|| {
            format!(
                "TCB status {} of accepted evidence has no ledger level",
                t.status.name()
            )
        })?,
    };
    let att = Attestation {
        measurement: to_gate(&matched)?,
        tcb,
        advisories: e
            .tcb
            .as_ref()
            .map(|t| t.advisories.iter().cloned().collect())
            .unwrap_or_default(),
        evidence: Digest(*blake3::hash(&bytes).as_bytes()),
        verified_at: inputs.at,
        reference: reference_id,
    };
    let changed = host.trust_attested(&key, &att)?;
    let out = Verdict::accepted(
        name,
        format!(
            "key {} pinned as peer: attested by {} {} (tcb {})",
            key.id().short(),
            att.tee(),
            att.measurement,
            att.tcb
        ),
    )
    .field("role", Role::Peer.name())
    .field("key", key.to_string())
    .field("new", changed)
    .field("pinned", "attested")
    .field("measurement", att.measurement.to_string())
    .field("evidence-blake3", att.evidence.to_hex());
    let out = match reference_id {
        Some(r) => out.field("reference", r.to_hex()),
        None => out,
    };
    Ok(details(out, &v))
}
