//! The migration state measurement, `talos.state/1`, of an ELF core or of
//! a CRIU image directory.
//!
//! ```text
//! memory   = talos.digest/1 root of the process's memory (writable and
//!            anonymous regions in normal form; rseq cpu fields, [vdso],
//!            [vvar], [vsyscall] masked) — docs/digest-state.md
//! envelope = core:   DK("talos 2026-11 migrate state envelope v1",
//!                       LE64(file length) || for every run of bytes that is
//!                       not the bytes of an included region:
//!                       LE64(offset) || LE64(length) || bytes)
//!            images: DK("talos 2026-11 migrate state image-directory envelope v1",
//!                       LE64(number of files) || for every *.img file in name
//!                       order: LE64(name length) || name || LE64(file length)
//!                       || its runs of bytes that are not pages of included
//!                       regions, as for a core)
//! state    = DK("talos 2026-11 migrate state v1", memory || envelope)
//! ```
//!
//! Every byte of the input is hashed exactly once: memory pages by the
//! state digest, everything else (headers, the notes or `core-*.img` with
//! the registers, the VMA list, the pagemap, stored code pages, padding)
//! by the envelope. So one changed byte anywhere (except the masked
//! kernel-owned rseq fields), a truncated, padded, added or removed file
//! is another measurement.

use std::collections::BTreeMap;

use talos_introspect::criu;
use talos_introspect::digest::{
    DigestOptions, Hash32, RegionStatus, StateDigest, state_digest_from,
};
use talos_introspect::dump::Dump;
use talos_introspect::measure::{self, Rseq};
use talos_introspect::resolve::Resolver;
use talos_migrate::{Digest, Measurement};

/// Scheme of the migration state measurement.
pub const STATE_SCHEME: &str = "talos.state/1";
const STATE_CONTEXT: &str = "talos 2026-11 migrate state v1";
const ENVELOPE_CONTEXT: &str = "talos 2026-11 migrate state envelope v1";
const IMAGES_ENVELOPE_CONTEXT: &str = "talos 2026-11 migrate state image-directory envelope v1";

/// What the state is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    /// An ELF core file.
    Core,
    /// A CRIU image directory.
    Images,
}

/// A state measurement and what it was made of.
#[derive(Debug, Clone)]
pub struct StateMeasure {
    /// The `talos.state/1` measurement.
    pub measurement: Measurement,
    /// The `talos.digest/1` root of the memory.
    pub memory_root: Hash32,
    /// Core or image directory.
    pub kind: StateKind,
    /// Bytes of input (all image files for a directory).
    pub input_len: u64,
    /// Bytes hashed as memory pages.
    pub memory_bytes: u64,
    /// How the rseq areas were found, for people.
    pub rseq: String,
    /// The process id the image records (image directories only).
    pub pid: Option<u32>,
}

/// Why bytes are not a state talos can measure. The gate then answers
/// `state-mismatch` (the target measures something no bundle holds), or
/// the source cannot seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAState(pub String);

impl std::fmt::Display for NotAState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The measurement no bundle holds, for a received state that is not one.
///
/// # Errors
/// Never in practice (the scheme is valid); typed for the caller.
pub fn invalid() -> talos_migrate::Result<Measurement> {
    Measurement::new("talos.state-invalid", Digest([0; 32]))
}

fn finish(memory: &Hash32, envelope: &blake3::Hash) -> Result<Measurement, NotAState> {
    let mut h = blake3::Hasher::new_derive_key(STATE_CONTEXT);
    h.update(&memory.0);
    h.update(envelope.as_bytes());
    Measurement::new(STATE_SCHEME, Digest(*h.finalize().as_bytes()))
        .map_err(|e| NotAState(e.to_string()))
}

/// Hash `bytes` into `env` except the sorted, non-overlapping `[s, e)`
/// ranges in `covered`, each run as `LE64(offset) || LE64(length) || bytes`.
fn envelope_runs(env: &mut blake3::Hasher, bytes: &[u8], covered: &[(usize, usize)]) {
    let mut pos = 0usize;
    let mut gap = |from: usize, to: usize| {
        if to > from
            && let Some(b) = bytes.get(from..to)
        {
            env.update(&(from as u64).to_le_bytes());
            env.update(&((to - from) as u64).to_le_bytes());
            env.update(b);
        }
    };
    for &(s, e) in covered {
        if s > pos {
            gap(pos, s);
        }
        pos = pos.max(e);
    }
    gap(pos, bytes.len());
}

/// The rseq areas of a dump from glibc's `__rseq_offset` in its memory.
fn rseq_of(dump: &Dump<'_>, options: &mut DigestOptions) -> String {
    match measure::detect_rseq(dump) {
        Rseq::Registered { offset, .. } => {
            let (areas, _missing) = measure::rseq_areas(dump, offset);
            let n = areas.len();
            options.rseq_areas = areas;
            format!("{n} rseq area(s) masked at thread pointer {offset:+#x}")
        }
        Rseq::Unregistered { .. } => "rseq not registered: nothing to mask".to_string(),
        Rseq::Unknown(why) => format!("rseq areas unknown ({why})"),
    }
}

/// The digest of a dump's regions for the state measurement.
///
/// # Errors
/// [`NotAState`] when the regions cannot be digested.
pub fn memory_digest(
    dump: &Dump<'_>,
    exact_rseq: Option<&[u64]>,
    prefetch: &(dyn Fn(&[u8]) + Sync),
) -> Result<(StateDigest, String), NotAState> {
    memory_digest_from(dump, exact_rseq, prefetch, None)
}

/// [`memory_digest`], reading the regions `source` holds through it (a
/// stopped process's large regions, read 1 MiB at a time while they are
/// hashed; see `talos_introspect::live::read_deferring`).
///
/// # Errors
/// As [`memory_digest`], and when `source` cannot read a region it holds.
pub fn memory_digest_from(
    dump: &Dump<'_>,
    exact_rseq: Option<&[u64]>,
    prefetch: &(dyn Fn(&[u8]) + Sync),
    source: Option<&dyn talos_introspect::digest::PageSource>,
) -> Result<(StateDigest, String), NotAState> {
    let mut options = DigestOptions::default();
    let rseq = match exact_rseq {
        Some(areas) => {
            options.rseq_areas = areas.to_vec();
            format!(
                "{} rseq area(s) masked where the image records them",
                areas.len()
            )
        }
        None => rseq_of(dump, &mut options),
    };
    let digest = state_digest_from(&dump.regions, &options, prefetch, source)
        .map_err(|e| NotAState(format!("cannot digest: {e}")))?;
    Ok((digest, rseq))
}

/// `talos.state/1` of the ELF core `bytes`. `prefetch` is called with each
/// 1 MiB of memory bytes before it is hashed (see
/// `talos_introspect::digest::state_digest_with`).
///
/// # Errors
/// [`NotAState`] when the bytes are not a core talos can digest.
pub fn measure_core(
    bytes: &[u8],
    prefetch: &(dyn Fn(&[u8]) + Sync),
) -> Result<StateMeasure, NotAState> {
    if !talos_introspect::core::is_core(bytes) {
        return Err(NotAState("not an ELF core".into()));
    }
    let dump = talos_introspect::core::parse(bytes)
        .map_err(|e| NotAState(format!("cannot read core: {e}")))?;
    let (digest, rseq) = memory_digest(&dump, None, prefetch)?;
    // File ranges hashed as memory pages: the bytes of included regions
    // that borrow from the file. Regions a reader filled itself (a kernel
    // core's never-written anonymous memory) are not in the file.
    let base = bytes.as_ptr() as usize;
    let mut covered: Vec<(usize, usize)> = Vec::new();
    for r in &dump.regions {
        if r.bytes.is_empty() || !included(&digest, r.start) {
            continue;
        }
        let off = (r.bytes.as_ptr() as usize).wrapping_sub(base);
        if let Some(end) = off.checked_add(r.bytes.len())
            && end <= bytes.len()
        {
            covered.push((off, end));
        }
    }
    covered.sort_unstable();
    let mut env = blake3::Hasher::new_derive_key(ENVELOPE_CONTEXT);
    env.update(&(bytes.len() as u64).to_le_bytes());
    envelope_runs(&mut env, bytes, &covered);
    Ok(StateMeasure {
        measurement: finish(&digest.root, &env.finalize())?,
        memory_root: digest.root,
        kind: StateKind::Core,
        input_len: bytes.len() as u64,
        memory_bytes: digest.bytes,
        rseq,
        pid: None,
    })
}

/// Whether the region starting at `start` lies in an included region of
/// the digest (regions may have been merged by the normal form).
fn included(d: &StateDigest, start: u64) -> bool {
    let i = d.regions.partition_point(|r| r.end <= start);
    d.regions
        .get(i)
        .is_some_and(|r| r.start <= start && r.status == RegionStatus::Included)
}

/// `talos.state/1` of the CRIU image directory whose `*.img` files are
/// `files` (name to bytes). Pages the images do not hold come from the
/// mapped files through `resolver`, as `criu restore` would map them.
///
/// # Errors
/// [`NotAState`] when the images cannot be read, hold more than one
/// process (talos migrates one process and its threads), or cannot be
/// digested.
pub fn measure_images(
    files: &BTreeMap<String, &[u8]>,
    resolver: &Resolver,
    prefetch: &(dyn Fn(&[u8]) + Sync),
) -> Result<StateMeasure, NotAState> {
    let set = criu::read(files).map_err(|e| NotAState(format!("cannot read the images: {e}")))?;
    if set.processes.len() != 1 {
        return Err(NotAState(format!(
            "the image holds {} processes; talos migrates one process (with its threads)",
            set.processes.len()
        )));
    }
    let mat = set
        .materialize(None, resolver)
        .map_err(|e| NotAState(format!("cannot lay the images out: {e}")))?;
    let dump = mat.dump();
    let (digest, rseq) = memory_digest(&dump, Some(&mat.rseq_areas), prefetch)?;
    // Bytes of pages-N.img hashed as memory: stored pages inside the held
    // part of included regions.
    let mut covered: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
    for p in &set.processes {
        let spans: Vec<(u64, u64)> = digest
            .included()
            .map(|r| (r.start, r.start.saturating_add(r.present)))
            .collect();
        let list = covered.entry(p.pages_name.as_str()).or_default();
        for run in &p.runs {
            let i = spans.partition_point(|&(_, e)| e <= run.vaddr);
            for &(s, e) in spans.get(i..).unwrap_or(&[]) {
                if s >= run.end() {
                    break;
                }
                let (a, b) = (s.max(run.vaddr), e.min(run.end()));
                if a < b {
                    let off = run.offset.saturating_add(a - run.vaddr);
                    if let (Ok(o), Ok(l)) = (usize::try_from(off), usize::try_from(b - a)) {
                        list.push((o, o.saturating_add(l)));
                    }
                }
            }
        }
        list.sort_unstable();
    }
    let mut env = blake3::Hasher::new_derive_key(IMAGES_ENVELOPE_CONTEXT);
    env.update(&(files.len() as u64).to_le_bytes());
    let mut total = 0u64;
    for (name, bytes) in files {
        env.update(&(name.len() as u64).to_le_bytes());
        env.update(name.as_bytes());
        env.update(&(bytes.len() as u64).to_le_bytes());
        envelope_runs(
            &mut env,
            bytes,
            covered.get(name.as_str()).map_or(&[][..], Vec::as_slice),
        );
        total = total.saturating_add(bytes.len() as u64);
    }
    Ok(StateMeasure {
        measurement: finish(&digest.root, &env.finalize())?,
        memory_root: digest.root,
        kind: StateKind::Images,
        input_len: total,
        memory_bytes: digest.bytes,
        rseq,
        pid: Some(mat.pid),
    })
}
