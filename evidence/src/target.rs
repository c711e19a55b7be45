//! The target's evidence: the binary to launch, measured as the reference
//! measures it, and the state received.

use talos_migrate::{Digest, Measurement, TargetEvidence};

use crate::error::{Error, Result};
use crate::state::StateMeasure;

/// Scheme of a whole-file BLAKE3.
pub const BINARY_SCHEME: &str = "blake3";
/// Scheme of the control-flow graph digest (`docs/digest.md`).
pub const CFG_SCHEME: &str = "talos.cfg/1";

/// What talos measures of a binary: the three measurements a reference
/// holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryMeasures {
    /// BLAKE3 of the file.
    pub binary: Measurement,
    /// `talos.code/1` of its executable segments.
    pub code: Measurement,
    /// `talos.cfg/1` graph digest.
    pub cfg: Measurement,
}

/// The whole-file BLAKE3 measurement of `bytes`.
///
/// # Errors
/// Never in practice; typed for the measurement label.
pub fn file_measurement(bytes: &[u8]) -> Result<Measurement> {
    Ok(Measurement::new(
        BINARY_SCHEME,
        Digest(*blake3::hash(bytes).as_bytes()),
    )?)
}

/// Measure the binary `bytes` (shown as `shown` in errors).
///
/// # Errors
/// When the bytes are not a binary talos can load, measure or analyse.
pub fn measure_binary(bytes: &[u8], shown: &str) -> Result<BinaryMeasures> {
    let cfg_err = |context: String| move |source| Error::Cfg { context, source };
    let binary = file_measurement(bytes)?;
    let image = talos_cfg::load(bytes).map_err(cfg_err(format!("{shown}: cannot load")))?;
    let code = talos_cfg::measure::code_measurement(&image)
        .map_err(cfg_err(format!("{shown}: cannot measure its code")))?;
    let cfg = talos_cfg::analyze(&image, &talos_cfg::Options::default()).map_err(cfg_err(
        format!("{shown}: cannot recover its control-flow graph"),
    ))?;
    if cfg.capped() {
        let caps: Vec<&str> = cfg.caps.iter().map(|c| c.kind.name()).collect();
        return Err(Error::IncompleteGraph {
            path: shown.to_string(),
            caps: caps.join(", "),
        });
    }
    Ok(BinaryMeasures {
        binary,
        code: Measurement::new(talos_cfg::measure::CODE_SCHEME, Digest(code))?,
        cfg: Measurement::new(CFG_SCHEME, Digest(cfg.digest.0))?,
    })
}

/// The evidence the gate's `verify` takes: the binary's measures and the
/// state measurement (or, for a received state that is not one, a
/// measurement no bundle holds, so the gate answers `state-mismatch` in
/// its own order).
///
/// # Errors
/// Never in practice; typed for the measurement labels.
pub fn target_evidence(
    binary: &BinaryMeasures,
    state: Option<&StateMeasure>,
) -> Result<TargetEvidence> {
    Ok(TargetEvidence {
        binary: binary.binary.clone(),
        cfg: binary.cfg.clone(),
        state: match state {
            Some(s) => s.measurement.clone(),
            None => crate::state::invalid()?,
        },
    })
}
