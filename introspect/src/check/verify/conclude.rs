//! The overall verdict of a dump and the sentence that explains it.

use crate::report::{Finding, ModuleReport, Overall, Part, Unchecked, Verdict};

/// The overall verdict and the sentence that explains it. Precedence:
/// tampered > binary-changed > findings > unverifiable > clean; anything
/// not checked (a module, kernel code, a thread, a cap) rules out `clean`.
pub(super) fn conclude(
    modules: &[ModuleReport],
    findings: &[Finding],
    unchecked: &[Unchecked],
) -> (Overall, String) {
    let count = |v: Verdict| modules.iter().filter(|m| m.verdict == v).count();
    let (tampered, changed, unverifiable, clean) = (
        count(Verdict::Tampered),
        count(Verdict::BinaryChanged),
        count(Verdict::Unverifiable),
        count(Verdict::Clean),
    );
    let not_checked = if unchecked.is_empty() {
        String::new()
    } else {
        format!("; not checked: {}", unchecked_summary(unchecked))
    };
    let overall = if tampered > 0 {
        Overall::Tampered
    } else if changed > 0 {
        Overall::BinaryChanged
    } else if !findings.is_empty() {
        Overall::Findings
    } else if !unchecked.is_empty() || unverifiable > 0 || clean == 0 {
        Overall::Unverifiable
    } else {
        Overall::Clean
    };
    let summary = match overall {
        Overall::Clean => format!(
            "the code of all {clean} modules equals their binaries, nothing else is executable, and every thread's execution flow was checked"
        ),
        Overall::Tampered => format!(
            "{tampered} module(s) hold code that differs from their binaries; {} finding(s){not_checked}",
            findings.len()
        ),
        Overall::BinaryChanged => format!(
            "{changed} module(s) were loaded from a file that has since changed or been deleted; {} finding(s){not_checked}",
            findings.len()
        ),
        Overall::Findings => format!(
            "{} finding(s); module code: {clean} clean, {unverifiable} unverifiable{not_checked}",
            findings.len()
        ),
        Overall::Unverifiable if clean == 0 && unverifiable == 0 && unchecked.is_empty() => {
            "no module code found to verify".to_string()
        }
        Overall::Unverifiable => format!(
            "no findings, but not everything could be checked ({clean} module(s) clean){not_checked}"
        ),
    };
    (overall, summary)
}

/// `2 module(s), 1 thread(s), kernel code [vdso]`.
pub(crate) fn unchecked_summary(unchecked: &[Unchecked]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for part in [Part::Module, Part::KernelCode, Part::Thread, Part::Dump] {
        let subjects: Vec<&str> = unchecked
            .iter()
            .filter(|u| u.part == part)
            .map(|u| u.subject.as_str())
            .collect();
        if subjects.is_empty() {
            continue;
        }
        let shown: Vec<&str> = subjects.iter().take(3).copied().collect();
        let more = subjects.len().saturating_sub(shown.len());
        let list = if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        };
        parts.push(format!("{} {} ({list})", subjects.len(), part.name()));
    }
    parts.join(", ")
}
