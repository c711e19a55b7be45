//! Image-hardening rules: ELF (program headers, dynamic section, GNU
//! property notes) and PE32+ (optional header, sections, load
//! configuration, debug directory, certificate table).

use talos_cfg::Arch;
use talos_cfg::image::SymbolSource;

use super::{Auditor, Loc};
use crate::rules::{self, RuleId};
use crate::{elfinfo, model, peinfo, scan};

/// Names that show a mingw (GCC) stack protector in the imports or
/// symbols.
const SSP_NAMES: [&str; 2] = ["__stack_chk_fail", "__stack_chk_guard"];

impl Auditor<'_> {
    /// ELF image hardening: program headers, dynamic flags, GNU property
    /// notes, stack protector.
    pub(crate) fn hardening(
        &mut self,
        elf: Result<&elfinfo::ElfFacts, &str>,
        scan: &scan::Scan,
    ) -> model::HardeningFacts {
        let e = match elf {
            Ok(e) => e,
            Err(why) => {
                let why = format!(
                    "goblin could not parse the ELF headers, so the program headers, dynamic section and notes could not be read: {why}"
                );
                for r in rules::RULES
                    .iter()
                    .filter(|r| r.formats == rules::Formats::Elf)
                {
                    self.unchecked(r.id, &why);
                }
                return model::HardeningFacts::default();
            }
        };
        let arch = self.image.arch;
        let x86 = matches!(arch, Arch::X86 | Arch::X86_64);
        let mut cfi = Vec::new();
        if let Some(f) = e.x86_features {
            if f & 1 != 0 {
                cfi.push("ibt".to_string());
            }
            if f & 2 != 0 {
                cfi.push("shstk".to_string());
            }
        }
        if let Some(f) = e.aarch64_features {
            if f & 1 != 0 {
                cfi.push("bti".to_string());
            }
            if f & 2 != 0 {
                cfi.push("pac".to_string());
            }
        }
        let stack_protector = if !e.stack_chk_symbols.is_empty() || scan.canary_loads > 0 {
            Some(true)
        } else if x86 || e.has_symtab || !self.image.import_slots.is_empty() {
            Some(false)
        } else {
            None
        };
        let facts = model::HardeningFacts {
            pie: e.et_dyn,
            relro: e.relro,
            bind_now: e.bind_now,
            exec_stack: e.gnu_stack_exec,
            text_relocations: self.image.text_relocations,
            wx_segments: e.wx_segments.iter().map(|w| w.vaddr).collect(),
            stack_protector,
            cfi,
            dynamic: e.dynamic,
            pe: None,
        };

        for (i, w) in e.wx_segments.iter().enumerate() {
            self.push(
                RuleId::HardeningWxSegment,
                format!(
                    "PT_LOAD segment at {:#x} ({} bytes) is mapped RWX",
                    w.vaddr, w.mem_size
                ),
                Loc {
                    addr: Some(w.vaddr),
                    file_offset: Some(w.offset),
                    location_key: format!("segment#{i}"),
                    ..Loc::default()
                },
            );
        }
        match e.gnu_stack_exec {
            Some(true) => self.push(
                RuleId::HardeningExecStack,
                "PT_GNU_STACK is executable".to_string(),
                Loc {
                    location_key: "gnu-stack".into(),
                    ..Loc::default()
                },
            ),
            None if x86 => self.push(
                RuleId::HardeningExecStack,
                "no PT_GNU_STACK: Linux maps the stack executable for this image".to_string(),
                Loc {
                    location_key: "gnu-stack".into(),
                    ..Loc::default()
                },
            ),
            _ => {}
        }
        if self.image.text_relocations {
            self.push(
                RuleId::HardeningTextrel,
                "DT_TEXTREL: the loader patches code pages".to_string(),
                Loc {
                    location_key: "textrel".into(),
                    ..Loc::default()
                },
            );
        }
        if e.dynamic {
            if !e.relro {
                self.push(
                    RuleId::HardeningNoRelro,
                    "no PT_GNU_RELRO segment".to_string(),
                    Loc {
                        location_key: "relro".into(),
                        ..Loc::default()
                    },
                );
            } else if !e.bind_now {
                self.push(
                    RuleId::HardeningNoBindNow,
                    "PT_GNU_RELRO without BIND_NOW (partial RELRO)".to_string(),
                    Loc {
                        location_key: "bind-now".into(),
                        ..Loc::default()
                    },
                );
            }
        } else {
            let why = "statically linked: no dynamic relocations to protect";
            self.not_applicable(RuleId::HardeningNoRelro, why);
            self.not_applicable(RuleId::HardeningNoBindNow, why);
        }
        if !e.et_dyn {
            self.push(
                RuleId::HardeningNotPie,
                "ET_EXEC: linked at a fixed address".to_string(),
                Loc {
                    location_key: "pie".into(),
                    ..Loc::default()
                },
            );
        }
        match stack_protector {
            Some(false) => self.push(
                RuleId::HardeningNoStackProtector,
                if x86 {
                    "no stack-canary load (fs:0x28 / gs:0x14) in any function and no __stack_chk_fail"
                        .to_string()
                } else {
                    "no __stack_chk_fail or __stack_chk_guard in the symbol tables".to_string()
                },
                Loc {
                    location_key: "stack-protector".into(),
                    ..Loc::default()
                },
            ),
            None => self.unchecked(
                RuleId::HardeningNoStackProtector,
                "stripped non-x86 image: no symbol names to look for __stack_chk_fail",
            ),
            Some(true) => {}
        }
        if x86 {
            let message = match e.x86_features {
                None => Some("no GNU_PROPERTY_X86_FEATURE_1_AND property note".to_string()),
                Some(f) => {
                    let missing: Vec<&str> = [(1, "IBT"), (2, "SHSTK")]
                        .iter()
                        .filter(|(b, _)| f & b == 0)
                        .map(|(_, n)| *n)
                        .collect();
                    (!missing.is_empty())
                        .then(|| format!("CET property note lacks {}", missing.join(" and ")))
                }
            };
            if let Some(message) = message {
                self.push(
                    RuleId::HardeningNoCet,
                    message,
                    Loc {
                        location_key: "cet".into(),
                        ..Loc::default()
                    },
                );
            }
        }
        if arch == Arch::Aarch64 && e.aarch64_features.is_none_or(|f| f & 1 == 0) {
            self.push(
                RuleId::HardeningNoBti,
                "no GNU_PROPERTY_AARCH64_FEATURE_1_AND property with BTI".to_string(),
                Loc {
                    location_key: "bti".into(),
                    ..Loc::default()
                },
            );
        }
        facts
    }

    /// PE32+ image hardening.
    pub(crate) fn pe_hardening(
        &mut self,
        pe: Result<&peinfo::PeFacts, &str>,
    ) -> model::HardeningFacts {
        let p = match pe {
            Ok(p) => p,
            Err(why) => {
                let why = format!("the PE headers could not be read: {why}");
                for r in rules::RULES
                    .iter()
                    .filter(|r| r.formats == rules::Formats::Pe)
                {
                    self.unchecked(r.id, &why);
                }
                return model::HardeningFacts::default();
            }
        };
        let img = self.image;
        let named = |n: &str| {
            let base = n.trim_start_matches("__imp_");
            let base = base
                .strip_suffix(talos_cfg::pe::THUNK_SUFFIX)
                .unwrap_or(base);
            SSP_NAMES.contains(&base)
        };
        let ssp = img.import_slots.values().any(|n| named(n))
            || img.symbols.iter().any(|s| named(&s.name));
        let coff_symbols = img.symbols.iter().any(|s| s.source == SymbolSource::Symtab);
        let stack_cookies = if p.security_cookie() || ssp {
            Some(true)
        } else if coff_symbols {
            Some(false)
        } else {
            None
        };
        let facts = model::PeHardeningFacts {
            dynamic_base: p.dynamic_base(),
            relocations: p.relocations,
            high_entropy_va: p.high_entropy_va(),
            nx_compat: p.nx_compat(),
            control_flow_guard: p.control_flow_guard(),
            cet_compat: p.cet_compat(),
            stack_cookies,
            authenticode: p.authenticode,
            wx_sections: p.wx_sections.iter().map(|w| w.addr).collect(),
        };
        let image_loc = |key: &str| Loc {
            location_key: key.to_string(),
            ..Loc::default()
        };
        if !p.dynamic_base() || !p.relocations {
            let why = match (p.dynamic_base(), p.relocations) {
                (false, _) => {
                    "DllCharacteristics lacks DYNAMIC_BASE: the loader keeps the image at its preferred base"
                }
                (true, false) => {
                    "DYNAMIC_BASE is set but the image has no base relocations (.reloc stripped): the loader cannot move it"
                }
                (true, true) => "",
            };
            self.push(
                RuleId::HardeningPeNoDynamicbase,
                why.to_string(),
                image_loc("dynamicbase"),
            );
        }
        if !p.high_entropy_va() {
            self.push(
                RuleId::HardeningPeNoHighEntropyVa,
                "DllCharacteristics lacks HIGH_ENTROPY_VA".to_string(),
                image_loc("high-entropy-va"),
            );
        }
        if !p.nx_compat() {
            self.push(
                RuleId::HardeningPeNoNxCompat,
                "DllCharacteristics lacks NX_COMPAT".to_string(),
                image_loc("nx-compat"),
            );
        }
        if !p.control_flow_guard() {
            self.push(
                RuleId::HardeningPeNoCfg,
                match p.load_config {
                    peinfo::LoadConfig::Absent => {
                        "no GUARD_CF and no load configuration directory".to_string()
                    }
                    peinfo::LoadConfig::Read { .. } => {
                        "GUARD_CF or the load configuration's CF_INSTRUMENTED flag is missing"
                            .to_string()
                    }
                    peinfo::LoadConfig::Unreadable => {
                        "the load configuration directory cannot be read, so Control Flow Guard cannot be confirmed"
                            .to_string()
                    }
                },
                image_loc("cfg"),
            );
        }
        for (i, w) in p.wx_sections.iter().enumerate() {
            self.push(
                RuleId::HardeningPeWxSection,
                format!(
                    "section {} at {:#x} ({} bytes) is mapped writable and executable",
                    w.name, w.addr, w.size
                ),
                Loc {
                    addr: Some(w.addr),
                    file_offset: Some(w.file_offset),
                    location_key: format!("section#{i}:{}", w.name),
                    ..Loc::default()
                },
            );
        }
        if !p.cet_compat() {
            self.push(
                RuleId::HardeningPeNoCetCompat,
                match p.ex_dll_characteristics {
                    None => {
                        "no IMAGE_DEBUG_TYPE_EX_DLLCHARACTERISTICS entry in the debug directory"
                            .to_string()
                    }
                    Some(f) => format!("extended DLL characteristics {f:#x} lack CET_COMPAT"),
                },
                image_loc("cet-compat"),
            );
        }
        match stack_cookies {
            Some(true) => {}
            Some(false) => self.push(
                RuleId::HardeningPeNoGs,
                "no security cookie in the load configuration, and no __stack_chk_fail or __stack_chk_guard in the imports or COFF symbols".to_string(),
                image_loc("gs"),
            ),
            None => self.unchecked(
                RuleId::HardeningPeNoGs,
                "stripped image without a load configuration or stack-protector imports: nothing shows whether its functions check stack cookies",
            ),
        }
        let unsigned = match p.authenticode {
            Some(true) => None,
            Some(false) => Some(
                "the certificate table holds no PKCS#7 SignedData (Authenticode) entry inside the file",
            ),
            None => Some("no certificate table: the image is not Authenticode-signed"),
        };
        if let Some(why) = unsigned {
            self.push(
                RuleId::HardeningPeUnsigned,
                why.to_string(),
                image_loc("authenticode"),
            );
        }
        model::HardeningFacts {
            pe: Some(facts),
            ..model::HardeningFacts::default()
        }
    }
}
