//! Code the kernel provides: the vDSO and the legacy vsyscall page.
//!
//! - `[vdso]`: the kernel maps the same image into every process, but a
//!   process (or a debugger through ptrace) can write into its copy, so the
//!   bytes are compared with a reference vDSO of the same build-id: one
//!   saved on the host the dump was taken on (`talos snapshot` writes it;
//!   `--vdso FILE`), else the vDSO of the machine talos runs on. A vDSO no
//!   reference matches (another kernel) is not checked, never `clean`.
//! - `[vsyscall]`: the kernel's fixed gate page above user space. No process
//!   can map, write or `mprotect` it, and on current kernels calls to it are
//!   emulated by the kernel (the page is execute-only or not mapped at all),
//!   so there is nothing a process could have changed: `kernel`, provided it
//!   is the one page at the fixed address.

use talos_cfg::Image;

use crate::check::addr::Bias;
use crate::check::verify::{Module, compare};
use crate::region::{Region, RegionKind};
use crate::report::{DiffRange, ModuleKind, ModuleReport, Reason, Verdict};
use crate::resolve::Resolver;

/// Page size of the vsyscall page.
const VSYSCALL_LEN: u64 = 4096;

/// The module for a `[vdso]` or `[vsyscall]` region.
pub(crate) fn module<'x>(r: &'x Region<'_>, resolver: &Resolver) -> Module<'x> {
    let vdso = r.kind == RegionKind::Vdso;
    let image: Option<Image<'x>> = if vdso && r.is_complete() {
        talos_cfg::load(&r.bytes).ok()
    } else {
        None
    };
    let bias = image.as_ref().map(|i| r.start.wrapping_sub(i.base));
    let mut compared = 0u64;
    let mut differing = 0u64;
    let mut diffs: Vec<DiffRange> = Vec::new();
    let mut omitted = 0u64;
    let (verdict, reason, unchecked) = if vdso {
        let j = judge_vdso(r, image.as_ref(), resolver);
        compared = j.compared;
        omitted = j.runs.len().saturating_sub(64) as u64;
        for &(o, len) in j.runs.iter().take(64) {
            let shown = usize::try_from(len.min(32)).unwrap_or(32);
            let window = |b: &[u8]| {
                let s = usize::try_from(o).unwrap_or(usize::MAX);
                talos_cfg::hex(
                    b.get(s..s.saturating_add(shown).min(b.len()))
                        .unwrap_or(&[]),
                )
            };
            let addr = r.start.wrapping_add(o);
            diffs.push(DiffRange {
                addr,
                len,
                module_offset: o,
                file_offset: o,
                link_addr: bias.map(|b| addr.wrapping_sub(b)),
                function: None,
                function_offset: None,
                expected: window(j.reference),
                actual: window(&r.bytes),
            });
        }
        differing = j.runs.iter().map(|d| d.1).sum();
        (j.verdict, j.reason, j.unchecked)
    } else if r.len() == VSYSCALL_LEN {
        (
            Verdict::Kernel,
            "legacy vsyscall page: the kernel's fixed gate page above user space, which no process can map, write or mprotect (calls to it are emulated by the kernel)".to_string(),
            None,
        )
    } else {
        (
            Verdict::Unverifiable,
            format!(
                "a {}-byte region at the vsyscall address, which is one {VSYSCALL_LEN}-byte page: not the kernel's gate page",
                r.len()
            ),
            Some(Reason::NoReference),
        )
    };
    let name = if vdso { "[vdso]" } else { "[vsyscall]" };
    Module {
        report: ModuleReport {
            path: name.into(),
            file: None,
            kind: ModuleKind::Kernel,
            base: r.start,
            end: r.end,
            load_bias: bias,
            build_id: image.as_ref().and_then(Image::build_id_hex),
            file_build_id: None,
            verdict,
            reason,
            code_bytes: r.len(),
            compared_bytes: compared,
            missing_bytes: r.len().saturating_sub(compared),
            differing_bytes: differing,
            diffs,
            diffs_omitted: omitted,
            text_relocations: false,
            pointers_checked: 0,
            pointers_unchecked: 0,
        },
        image,
        bias: bias.map(Bias::new),
        exec: vec![(r.start, r.end)],
        cfg: None,
        cfg_error: None,
        local_cfg: None,
        local_error: None,
        unchecked,
    }
}

/// What comparing a `[vdso]` found.
struct VdsoJudgement<'r> {
    verdict: Verdict,
    reason: String,
    unchecked: Option<Reason>,
    compared: u64,
    /// Differing runs (offset, length).
    runs: Vec<(u64, u64)>,
    /// The reference compared with.
    reference: &'r [u8],
}

impl VdsoJudgement<'_> {
    fn not_checked(reason: Reason, text: String) -> Self {
        VdsoJudgement {
            verdict: Verdict::Unverifiable,
            reason: text,
            unchecked: Some(reason),
            compared: 0,
            runs: Vec::new(),
            reference: &[],
        }
    }
}

/// Verdict of a `[vdso]`.
fn judge_vdso<'r>(
    r: &Region<'_>,
    image: Option<&Image<'_>>,
    resolver: &'r Resolver,
) -> VdsoJudgement<'r> {
    if !r.is_complete() {
        return VdsoJudgement::not_checked(
            Reason::NotInDump,
            format!(
                "the dump holds {} of the vDSO's {} bytes: it cannot be compared",
                r.bytes.len(),
                r.len()
            ),
        );
    }
    let Some(dump_id) = image.and_then(|i| i.build_id.clone()) else {
        return VdsoJudgement::not_checked(
            Reason::NoReference,
            "the vDSO in the dump has no readable build-id: no reference vDSO can be matched to it"
                .to_string(),
        );
    };
    let refs = resolver.vdso_references();
    let mut others: Vec<String> = Vec::new();
    for (name, bytes) in refs {
        let id = talos_cfg::load(bytes).ok().and_then(|i| i.build_id);
        match id {
            Some(id) if id == dump_id => {
                let runs = compare(&r.bytes, bytes, 0);
                let compared = r.bytes.len() as u64;
                let differing: u64 = runs.iter().map(|d| d.1).sum();
                let (verdict, reason) = if differing == 0 {
                    (
                        Verdict::Clean,
                        format!(
                            "kernel-provided virtual DSO; all {compared} bytes equal {name} (same build-id)"
                        ),
                    )
                } else {
                    (
                        Verdict::Tampered,
                        format!(
                            "{differing} bytes in {} runs differ from {name} although the build-id is the same",
                            runs.len()
                        ),
                    )
                };
                return VdsoJudgement {
                    verdict,
                    reason,
                    unchecked: None,
                    compared,
                    runs,
                    reference: bytes,
                };
            }
            Some(id) => others.push(format!("{name} has {}", talos_cfg::hex(&id))),
            None => others.push(format!("{name} has no build-id")),
        }
    }
    let dump_hex = talos_cfg::hex(&dump_id);
    if others.is_empty() {
        return VdsoJudgement::not_checked(
            Reason::NoReference,
            format!(
                "kernel-provided virtual DSO (build-id {dump_hex}) not compared: no reference vDSO (this machine has none; give --vdso FILE, which talos snapshot writes on the host the dump is taken on)"
            ),
        );
    }
    VdsoJudgement::not_checked(
        Reason::OtherKernel,
        format!(
            "kernel-provided virtual DSO from another kernel not compared: its build-id is {dump_hex}, {}; give --vdso FILE with the vDSO saved on the host the dump was taken on (talos snapshot writes it)",
            others.join(", ")
        ),
    )
}
