//! The SGX rules: enclave-illegal instructions on reachable paths, LVI load
//! hardening, and the SGX metadata and SIGSTRUCT of SDK enclaves and
//! Gramine applications.

use std::collections::BTreeMap;

use talos_cfg::Format;

use super::{Auditor, Loc};
use crate::model::{self, Tee};
use crate::reader::Reader;
use crate::rules::RuleId;
use crate::{elfinfo, gramine, scan, sgx};

/// The rules that read an SGX SDK enclave's SIGSTRUCT.
const SIGSTRUCT_RULES: [RuleId; 6] = [
    RuleId::SgxNotSigned,
    RuleId::SgxMetadataMalformed,
    RuleId::SgxSignatureInvalid,
    RuleId::SgxDebugEnclave,
    RuleId::SgxDebugNotEnforced,
    RuleId::SgxProvisionKey,
];

impl Auditor<'_> {
    pub(crate) fn instructions(&mut self, scan: &scan::Scan) {
        // Occurrence index of each mnemonic within its function, in
        // address order: the position-independent part of the location.
        let mut seen: BTreeMap<(usize, String), usize> = BTreeMap::new();
        let mut hits: Vec<&scan::Hit> = scan.hits.iter().collect();
        hits.sort_by_key(|h| (h.function, h.addr));
        for h in hits {
            let k = seen.entry((h.function, h.mnemonic.clone())).or_insert(0);
            let occurrence = *k;
            *k += 1;
            let reachable = self.reach.block(h.function, h.block);
            // A HLT right after a call that does not return (glibc's
            // `_start`: `call *__libc_start_main; hlt`) is the compiler's
            // trap, not code anyone runs.
            if !reachable && h.mnemonic == "hlt" && self.cfg.follows_call(h.addr) {
                continue;
            }
            let rule = match (self.tee, h.category) {
                _ if !reachable => RuleId::SgxUnreachableInstruction,
                (Tee::Gramine, RuleId::SgxSyscall) => RuleId::GramineEmulatedSyscall,
                (Tee::Gramine, RuleId::SgxCpuid | RuleId::SgxRdtsc) => {
                    RuleId::GramineEmulatedInstruction
                }
                (_, c) => c,
            };
            let what = match rule {
                RuleId::SgxUnreachableInstruction => {
                    format!("{} ({}) in code no root reaches", h.text, h.category)
                }
                RuleId::GramineEmulatedSyscall => format!(
                    "{}: Gramine traps and emulates this system call (slow path)",
                    h.text
                ),
                RuleId::GramineEmulatedInstruction => {
                    format!("{}: Gramine traps and emulates this instruction", h.text)
                }
                RuleId::SgxRdtsc => format!(
                    "{}: #UD on SGX1 enclaves; legal only on SGX2-capable CPUs",
                    h.text
                ),
                _ => format!("{}: faults (#UD) inside an SGX enclave", h.text),
            };
            self.push(
                rule,
                what,
                Loc {
                    addr: Some(h.addr),
                    length: Some(u64::from(h.len)),
                    function: Some(h.function),
                    instruction: Some(h.text.clone()),
                    location_key: format!("{}#{occurrence}", h.mnemonic),
                    ..Loc::default()
                },
            );
        }
    }

    pub(crate) fn lvi(&mut self, scan: &scan::Scan) -> Option<model::LviFacts> {
        if !self.applied(RuleId::SgxLviUnhardened) {
            return None;
        }
        let mut facts = model::LviFacts::default();
        let mut first: Option<&scan::LviSite> = None;
        let mut sites: Vec<&scan::LviSite> = scan
            .lvi
            .iter()
            .filter(|s| self.reach.block(s.function, s.block))
            .collect();
        sites.sort_by_key(|s| s.addr);
        for s in sites {
            facts.sites += 1;
            if s.hardened {
                facts.hardened += 1;
            } else {
                if first.is_none() {
                    first = Some(s);
                }
                if facts.first_unhardened.len() < 8 {
                    facts.first_unhardened.push(s.addr);
                }
            }
        }
        if facts.sites == 0 {
            // Checked: reachable code has no return or indirect branch, so
            // none is unhardened.
            return Some(facts);
        }
        if let Some(s) = first {
            let unhardened = facts.sites - facts.hardened;
            let list: Vec<String> = facts
                .first_unhardened
                .iter()
                .map(|a| format!("{a:#x}"))
                .collect();
            let msg = format!(
                "{unhardened} of {} returns and indirect branches in reachable code have no LFENCE after their last load ({:.1}% hardened); first: {}",
                facts.sites,
                facts.hardened as f64 * 100.0 / facts.sites as f64,
                list.join(", ")
            );
            self.push(
                RuleId::SgxLviUnhardened,
                msg,
                Loc {
                    addr: Some(s.addr),
                    function: Some(s.function),
                    location_key: "lvi".to_string(),
                    function_key: Some(String::new()),
                    ..Loc::default()
                },
            );
        }
        Some(facts)
    }

    pub(crate) fn sigstruct_findings(&mut self, s: &sgx::SigStruct, facts: &model::SigStructFacts) {
        let artifact = (facts.source != self.input.path).then(|| facts.source.clone());
        let loc = |key: &str| Loc {
            file_offset: Some(facts.offset),
            length: Some(sgx::SIGSTRUCT_SIZE as u64),
            artifact: artifact.clone(),
            location_key: key.to_string(),
            function_key: Some("sigstruct".to_string()),
            ..Loc::default()
        };
        if facts.signature != model::Verification::Verified {
            self.push(
                RuleId::SgxSignatureInvalid,
                format!("SIGSTRUCT signature {}", facts.signature),
                loc("signature"),
            );
        } else if facts.q1_q2 != model::Verification::Verified {
            self.push(
                RuleId::SgxSignatureInvalid,
                format!("SIGSTRUCT Q1/Q2 {}", facts.q1_q2),
                loc("q1q2"),
            );
        }
        let attrs = s.attributes();
        let mask = s.attribute_mask();
        if attrs.flags & sgx::FLAG_DEBUG != 0 {
            self.push(
                RuleId::SgxDebugEnclave,
                format!(
                    "SIGSTRUCT ATTRIBUTES.FLAGS = {:#x} has DEBUG set",
                    attrs.flags
                ),
                loc("attributes.debug"),
            );
        } else if mask.flags & sgx::FLAG_DEBUG == 0 {
            self.push(
                RuleId::SgxDebugNotEnforced,
                format!(
                    "ATTRIBUTEMASK.FLAGS = {:#x} does not cover DEBUG",
                    mask.flags
                ),
                loc("attributemask.debug"),
            );
        }
        if attrs.flags & sgx::FLAG_PROVISIONKEY != 0 {
            self.push(
                RuleId::SgxProvisionKey,
                "SIGSTRUCT requests PROVISIONKEY".to_string(),
                loc("attributes.provisionkey"),
            );
        }
    }

    pub(crate) fn sgx_metadata(
        &mut self,
        sgxmeta: Option<&elfinfo::RawSection>,
        manifest: Option<&gramine::ManifestFile<'_>>,
    ) -> model::SgxFacts {
        let mut facts = model::SgxFacts::default();
        if self.tee == Tee::Sgx && self.image.format == Format::Pe {
            // The Windows SDK keeps its metadata in its own section layout,
            // which talos does not read: the SIGSTRUCT rules cannot be
            // checked (never passed).
            for id in SIGSTRUCT_RULES {
                self.unchecked(
                    id,
                    "the SGX SDK metadata of a PE (Windows) enclave is not read by talos, so its SIGSTRUCT cannot be checked",
                );
            }
            return facts;
        }
        let path = self.input.path.to_string();
        let malformed = |a: &mut Self, artifact: Option<String>, detail: String, off: u64| {
            a.push(
                RuleId::SgxMetadataMalformed,
                detail,
                Loc {
                    file_offset: Some(off),
                    artifact,
                    location_key: "metadata".into(),
                    function_key: Some("sigstruct".into()),
                    ..Loc::default()
                },
            );
        };
        if self.tee == Tee::Sgx {
            match sgxmeta {
                None => self.push(
                    RuleId::SgxNotSigned,
                    "no .note.sgxmeta section: not a signed SGX SDK enclave".to_string(),
                    Loc {
                        location_key: "sgxmeta".into(),
                        ..Loc::default()
                    },
                ),
                Some(sec) if sec.nobits => {
                    malformed(
                        self,
                        None,
                        ".note.sgxmeta has no file bytes".into(),
                        sec.offset,
                    );
                }
                Some(sec) => {
                    match Reader::le(self.input.bytes).slice(sec.offset, sec.size, ".note.sgxmeta")
                    {
                        Err(_) => malformed(
                            self,
                            None,
                            format!(
                                ".note.sgxmeta at offset {:#x} size {:#x} lies outside the file",
                                sec.offset, sec.size
                            ),
                            sec.offset,
                        ),
                        Ok(bytes) => match sgx::parse_note(bytes, sec.offset, sec.align) {
                            Err(e) => {
                                malformed(self, None, format!(".note.sgxmeta: {e}"), sec.offset)
                            }
                            Ok(m) => {
                                let sf = m.sigstruct.facts(&path, m.sigstruct_offset);
                                self.sigstruct_findings(&m.sigstruct, &sf);
                                facts.metadata = Some(m.facts);
                                facts.sigstruct = Some(sf);
                            }
                        },
                    }
                }
            }
        } else if let Some(sig) = self.input.sig {
            match sgx::SigStruct::parse(sig.bytes) {
                Err(e) => malformed(
                    self,
                    Some(sig.path.to_string()),
                    format!("{}: {}", sig.path, e.0),
                    0,
                ),
                Ok(s) => {
                    if sig.bytes.len() != sgx::SIGSTRUCT_SIZE {
                        malformed(
                            self,
                            Some(sig.path.to_string()),
                            format!(
                                "{} has {} bytes; a SIGSTRUCT file has {}",
                                sig.path,
                                sig.bytes.len(),
                                sgx::SIGSTRUCT_SIZE
                            ),
                            0,
                        );
                    }
                    let sf = s.facts(sig.path, 0);
                    self.sigstruct_findings(&s, &sf);
                    facts.sigstruct = Some(sf);
                }
            }
        } else {
            self.push(
                RuleId::SgxNotSigned,
                "no .sig file (Gramine SIGSTRUCT) next to the binary or given with --sig"
                    .to_string(),
                Loc {
                    location_key: "sig".into(),
                    artifact: manifest.map(|m| m.path.to_string()),
                    ..Loc::default()
                },
            );
        }
        facts
    }
}
