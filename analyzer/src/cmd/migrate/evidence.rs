//! The evidence of `talos migrate`, computed by `talos-evidence` (the
//! `talos-migrate` gate links no parser): this module only maps the files
//! and directories the command line names.
//!
//! * **Seal** ([`seal_evidence`]): the code and flow verdicts of the frozen
//!   app (an ELF core or a CRIU image directory) against the reference,
//!   and its `talos.state/1` measurement.
//! * **State** ([`measure_state`]): `talos.state/1` of a core or an image
//!   directory (`talos_evidence::state`).
//! * **Target** ([`target_evidence`]): the binary to launch and the state
//!   received.

use std::path::Path;

use anyhow::{Context, Result, bail};
use talos_evidence::seal::CodeFindings;
use talos_evidence::state::StateMeasure;
use talos_introspect::resolve::Resolver;
use talos_migrate::{Reference, SealEvidence, TargetEvidence};

use crate::cmd::reference;
use crate::input;
use crate::source::{self, ImageDir, Spec};

/// Why a path could not be measured as a state.
#[derive(Debug)]
pub enum StateError {
    /// It cannot be read at all (exit 2).
    Unreadable(anyhow::Error),
    /// The bytes are not a dump talos can digest: not the sealed state.
    NotAState(String),
}

/// Measure the state in the ELF core or CRIU image directory at `path`;
/// pages an image does not hold come from the files `resolver` finds.
///
/// # Errors
/// [`StateError::Unreadable`] when the input cannot be read,
/// [`StateError::NotAState`] when it is not a state talos can measure.
pub fn measure_state(path: &Path, resolver: &Resolver) -> Result<StateMeasure, StateError> {
    let shown = path.display().to_string();
    let not = |e: talos_evidence::state::NotAState| StateError::NotAState(format!("{shown}: {e}"));
    if path.is_dir() {
        let dir = ImageDir::open(path).map_err(StateError::Unreadable)?;
        let map = dir.map();
        // No prefetch: images just written are dirty page cache (see
        // `source::with_dump`).
        talos_evidence::state::measure_images(&map, resolver, &|_: &[u8]| {}).map_err(not)
    } else {
        let bytes = input::map(path).map_err(StateError::Unreadable)?;
        let prefetch = |s: &[u8]| {
            if let input::Input::Mapped(m, _) = &bytes {
                input::populate(m, s);
            }
        };
        talos_evidence::state::measure_core(&bytes, &prefetch).map_err(not)
    }
}

/// What the source found in the frozen app.
#[derive(Debug, Clone)]
pub struct SealFindings {
    /// The evidence handed to the gate.
    pub evidence: SealEvidence,
    /// One sentence per reason the code or flow verdict is not clean.
    pub why: Vec<String>,
    /// The state measurement details.
    pub state: StateMeasure,
    /// The introspect overall verdict.
    pub introspect: &'static str,
    /// What the code check established, from the evidence (one line).
    pub code_line: String,
    /// What the flow check established, from the evidence (one line).
    pub flow_line: String,
}

/// The resolver of the source: module files on this host, the
/// reference's binary first when given.
fn source_resolver(binary: Option<&Path>, reference: &Reference) -> Result<Resolver> {
    if let Some(b) = binary {
        let m = reference::file_blake3(b)?;
        if m != reference.body().binary {
            bail!(
                "{}: --binary is not the reference's binary ({m}, the reference says {})",
                b.display(),
                reference.body().binary
            );
        }
    }
    let binaries: Vec<std::path::PathBuf> = binary.map(Path::to_path_buf).into_iter().collect();
    crate::cmd::introspect::resolver(None, &binaries, None)
}

/// Introspect the frozen app at `dump_path` (an ELF core or a CRIU image
/// directory) against `reference` and measure its state. `binary`, when
/// given, must be the reference's binary; it is the file the main
/// module's code is compared with (and, for an image, the file its
/// unwritten code pages come from).
///
/// # Errors
/// Unreadable input, a dump that is not one, a `--binary` that is not the
/// reference's.
pub fn seal_evidence(
    dump_path: &Path,
    binary: Option<&Path>,
    reference: &Reference,
) -> Result<SealFindings> {
    let resolver = source_resolver(binary, reference)?;
    // The state digest runs on its own thread (and rayon's pool) while the
    // introspection recovers control flow: on two cores they overlap.
    let (code, state) = std::thread::scope(|scope| {
        let state = scope.spawn(|| measure_state(dump_path, &resolver));
        let code = check_code(dump_path, &resolver, reference);
        let state = state
            .join()
            .unwrap_or_else(|_| Err(StateError::NotAState("the state digest panicked".into())));
        (code, state)
    });
    let code = code?;
    let state = state.map_err(|e| match e {
        StateError::Unreadable(e) => e,
        StateError::NotAState(s) => anyhow::anyhow!(s),
    })?;
    Ok(SealFindings {
        evidence: talos_evidence::seal::seal_evidence(&code, &state, reference.body()),
        why: code.why(),
        state,
        introspect: code.introspect.name(),
        code_line: code.code_line.clone(),
        flow_line: code.flow_line.clone(),
    })
}

fn check_code(
    dump_path: &Path,
    resolver: &Resolver,
    reference: &Reference,
) -> Result<CodeFindings> {
    let spec = Spec::Path(dump_path.to_path_buf());
    source::with_dump(&spec, resolver, |v| {
        talos_evidence::seal::check_code(v.dump, resolver, &v.shown, reference.body())
            .context("the reference's code measurement")
    })
    .with_context(|| format!("{}: --dump", dump_path.display()))
}

/// The target's evidence: binary BLAKE3 and CFG digest of `binary`, state
/// measurement of `state` (a core or an image directory; one that is not a
/// state gets a measurement no bundle can hold, so the gate answers
/// `state-mismatch` in its order). Returns the evidence and a note on the
/// state for people.
///
/// # Errors
/// Unreadable files, a binary talos cannot analyse.
pub fn target_evidence(binary: &Path, state: &Path) -> Result<(TargetEvidence, String)> {
    let (ev, note, _) = target_findings(binary, state)?;
    Ok((ev, note))
}

/// [`target_evidence`], and the state measurement when the state is one.
///
/// # Errors
/// As [`target_evidence`].
pub fn target_findings(
    binary: &Path,
    state: &Path,
) -> Result<(TargetEvidence, String, Option<StateMeasure>)> {
    let resolver = crate::cmd::introspect::resolver(None, &[binary.to_path_buf()], None)?;
    // The binary's CFG and the state digest are independent: overlap them.
    let (m, measured) = std::thread::scope(|scope| {
        let st = scope.spawn(|| measure_state(state, &resolver));
        let m = input::map(binary).and_then(|b| {
            talos_evidence::target::measure_binary(&b, &binary.display().to_string())
                .map_err(anyhow::Error::new)
        });
        let measured = st
            .join()
            .unwrap_or_else(|_| Err(StateError::NotAState("the state digest panicked".into())));
        (m, measured)
    });
    let m = m?;
    let (s, note) = match measured {
        Ok(s) => {
            let note = format!(
                "{} bytes, {} bytes of memory pages; {}",
                s.input_len, s.memory_bytes, s.rseq
            );
            (Some(s), note)
        }
        Err(StateError::Unreadable(e)) => return Err(e),
        Err(StateError::NotAState(why)) => (None, why),
    };
    Ok((
        talos_evidence::target::target_evidence(&m, s.as_ref())?,
        note,
        s,
    ))
}
