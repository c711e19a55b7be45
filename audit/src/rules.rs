//! The rules: stable ids, default severities, one-line reasons, and where
//! each applies. `docs/audit.md` lists the same table.
//!
//! A rule is named by a [`RuleId`]; its text (`sgx-syscall`) is what
//! documents, policies, baselines and SARIF logs carry, and the only place
//! that text is written is the table below.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use talos_cfg::{Arch, Format};

use crate::model::{Severity, Tee};

/// The family of a rule: the first word of its id, and its SARIF tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `sgx-*`: SGX instructions and metadata (SDK enclaves and Gramine).
    Sgx,
    /// `gramine-*`: the Gramine manifest and Gramine's emulation.
    Gramine,
    /// `keystone-*`: the Keystone runtime interface.
    Keystone,
    /// `hardening-*`: image hardening, enclave or not.
    Hardening,
}

impl Family {
    /// The stable name (`sgx`, `gramine`, `keystone`, `hardening`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Family::Sgx => "sgx",
            Family::Gramine => "gramine",
            Family::Keystone => "keystone",
            Family::Hardening => "hardening",
        }
    }
}

/// Which audits a rule belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every image, enclave or not.
    Image,
    /// SGX SDK enclaves.
    Sgx,
    /// SGX SDK enclaves and Gramine applications (both run in SGX).
    SgxOrGramine,
    /// Gramine applications.
    Gramine,
    /// Keystone eapps.
    Keystone,
}

impl Scope {
    /// Whether an audit for `tee` runs the rules of this scope.
    #[must_use]
    pub fn covers(self, tee: Tee) -> bool {
        match self {
            Scope::Image => true,
            Scope::Sgx => tee == Tee::Sgx,
            Scope::SgxOrGramine => matches!(tee, Tee::Sgx | Tee::Gramine),
            Scope::Gramine => tee == Tee::Gramine,
            Scope::Keystone => tee == Tee::Keystone,
        }
    }
}

/// Architectures a rule can be checked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arches {
    /// Any.
    Any,
    /// x86 and x86-64 only (SGX is an x86 technology).
    X86,
    /// RISC-V only.
    Riscv,
    /// AArch64 only.
    Aarch64,
}

/// Binary formats a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Formats {
    /// ELF and PE (instructions on the CFG, enclave metadata files).
    Any,
    /// ELF only (program headers, dynamic section, GNU notes).
    Elf,
    /// PE only (optional header, load configuration, sections).
    Pe,
}

/// One rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Stable id.
    pub id: RuleId,
    /// Default severity.
    pub severity: Severity,
    /// Short title (SARIF `shortDescription`).
    pub title: &'static str,
    /// Why it matters, one line (SARIF `fullDescription`).
    pub why: &'static str,
    /// What to do about it (SARIF `help`).
    pub help: &'static str,
    /// Audits it belongs to.
    pub scope: Scope,
    /// Architectures.
    pub arches: Arches,
    /// Formats.
    pub formats: Formats,
}

impl Rule {
    /// The rule's family (the first word of its id).
    #[must_use]
    pub fn family(&self) -> Family {
        match self.scope {
            Scope::Image => Family::Hardening,
            Scope::Sgx | Scope::SgxOrGramine => Family::Sgx,
            Scope::Gramine => Family::Gramine,
            Scope::Keystone => Family::Keystone,
        }
    }
}

/// The rule table: one line per rule gives the [`RuleId`] variant, its id
/// text, default severity, scope, architectures, formats, title, why it
/// matters and what to do.
macro_rules! rules {
    ($( $v:ident = $id:literal, $sev:ident, $scope:ident, $arches:ident, $formats:ident,
        $title:literal, $why:literal, $help:literal; )*) => {
        /// A rule, by its stable id. Serialised as the id text
        /// ([`RuleId::name`]); ordered as [`RULES`] lists the rules.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RuleId {
            $( #[doc = concat!("`", $id, "`: ", $title)] $v, )*
        }

        /// One constant per rule, so that [`RuleId::rule`] can lend out a
        /// `'static` reference without a lookup that could miss.
        #[allow(non_upper_case_globals)]
        mod defs {
            use super::{Arches, Formats, Rule, RuleId, Scope, Severity};
            $(
                pub(super) const $v: Rule = Rule {
                    id: RuleId::$v,
                    severity: Severity::$sev,
                    title: $title,
                    why: $why,
                    help: $help,
                    scope: Scope::$scope,
                    arches: Arches::$arches,
                    formats: Formats::$formats,
                };
            )*
        }

        /// Every rule, in a fixed order (SARIF `ruleIndex` is the position).
        pub const RULES: &[Rule] = &[ $( defs::$v, )* ];

        impl RuleId {
            /// The stable id text (`sgx-syscall`).
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self {
                    $( RuleId::$v => $id, )*
                }
            }

            /// The rule's definition.
            #[must_use]
            pub const fn rule(self) -> &'static Rule {
                match self {
                    $( RuleId::$v => &defs::$v, )*
                }
            }

            /// The id whose text is `s`.
            #[must_use]
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $( $id => Some(RuleId::$v), )*
                    _ => None,
                }
            }
        }
    };
}

rules! {
    SgxSyscall = "sgx-syscall", High, SgxOrGramine, X86, Any,
        "SYSCALL/SYSENTER inside an SGX enclave",
        "SYSCALL, SYSENTER, SYSEXIT and SYSRET raise #UD inside an SGX enclave: the enclave crashes or, with an exception handler, leaks control to the untrusted host.",
        "Route the operation through an OCALL (SGX SDK) instead of a raw system call.";
    SgxCpuid = "sgx-cpuid", High, Sgx, X86, Any,
        "CPUID inside an SGX enclave",
        "CPUID raises #UD inside every SGX enclave (SGX1 and SGX2); emulating it means trusting values the untrusted host supplies.",
        "Use sgx_cpuid() or values fixed at build time; treat host-supplied CPU features as untrusted.";
    SgxRdtsc = "sgx-rdtsc", Medium, Sgx, X86, Any,
        "RDTSC/RDTSCP inside an SGX enclave",
        "RDTSC and RDTSCP raise #UD inside SGX1 enclaves; they are legal only on SGX2-capable CPUs, and the time they read is host-influenced.",
        "Do not rely on the TSC inside the enclave; if SGX2 is required, say so in the deployment policy.";
    SgxIo = "sgx-io", High, SgxOrGramine, X86, Any,
        "Port I/O inside an SGX enclave",
        "IN, OUT, INS and OUTS raise #UD inside an SGX enclave (and #GP at ring 3 anyway).",
        "Remove port I/O from enclave code; devices are reached through the host.";
    SgxInterrupt = "sgx-interrupt", High, SgxOrGramine, X86, Any,
        "Software interrupt or far transfer inside an SGX enclave",
        "INT n, INTO, INT1, IRET and far CALL/JMP/RET raise #UD inside an SGX enclave.",
        "Remove the instruction; enclave code cannot use software interrupts or change segments.";
    SgxVmExit = "sgx-vm-exit", High, SgxOrGramine, X86, Any,
        "VMCALL/VMFUNC/GETSEC inside an SGX enclave",
        "VMCALL, VMMCALL, VMFUNC, GETSEC and VMX instructions raise #UD inside an SGX enclave.",
        "Remove the instruction; hypervisor calls cannot be made from an enclave.";
    SgxPrivileged = "sgx-privileged", High, SgxOrGramine, X86, Any,
        "Privileged or enclave-illegal instruction",
        "HLT, descriptor-table, control/debug-register, MSR, cache-control and ENCLS instructions fault in an enclave (ring 3), and RDPMC, SGDT/SIDT/SLDT/STR are illegal inside enclaves.",
        "Remove the instruction from enclave code.";
    SgxUnreachableInstruction = "sgx-unreachable-instruction", Low, SgxOrGramine, X86, Any,
        "Enclave-illegal instruction in unreachable code",
        "An instruction that faults inside SGX sits in code no root reaches (entry, export, init/fini, address-taken function); it is dead today but one refactoring away from being live.",
        "Remove the dead code, or confirm that nothing can reach it.";
    GramineEmulatedSyscall = "gramine-emulated-syscall", Medium, Gramine, X86, Any,
        "Raw SYSCALL in a Gramine application",
        "Gramine traps a raw SYSCALL instruction (#UD, enclave exit, re-entry) and emulates it: correct but thousands of cycles slower than Gramine's patched libc.",
        "Call through libc (Gramine's patched glibc), or accept the slow path for rare calls.";
    GramineEmulatedInstruction = "gramine-emulated-instruction", Medium, Gramine, X86, Any,
        "CPUID/RDTSC trapped and emulated by Gramine",
        "Gramine traps CPUID and (on SGX1) RDTSC and emulates them: slow, and the values come from Gramine's policy or the host.",
        "Avoid these instructions on hot paths; do not trust their results for security decisions.";
    SgxLviUnhardened = "sgx-lvi-unhardened", Medium, Sgx, X86, Any,
        "Indirect branches and returns without LVI load hardening",
        "Without an LFENCE between the last load and an indirect branch or return, Load Value Injection (CVE-2020-0551) can steer enclave control flow.",
        "Build the enclave with the SDK's LVI-mitigated toolchain (-Wa,-mlfence-after-load=yes -mlfence-before-indirect-branch=all -mlfence-before-ret=not).";
    SgxNotSigned = "sgx-not-signed", Medium, SgxOrGramine, Any, Any,
        "No SIGSTRUCT to report",
        "Without a SIGSTRUCT (SDK: .note.sgxmeta; Gramine: the .sig file) the enclave's identity (MRENCLAVE, MRSIGNER, attributes) cannot be reviewed.",
        "Audit the signed enclave (enclave.signed.so) or pass the .sig file.";
    SgxMetadataMalformed = "sgx-metadata-malformed", High, SgxOrGramine, Any, Any,
        "Malformed SGX metadata or SIGSTRUCT",
        "A SIGSTRUCT or SDK metadata block that does not follow Intel's layout will not launch, or says something other than what reviewers read.",
        "Re-sign the enclave with the SDK's sgx_sign or gramine-sgx-sign.";
    SgxSignatureInvalid = "sgx-signature-invalid", High, SgxOrGramine, Any, Any,
        "SIGSTRUCT signature does not verify",
        "The RSA-3072 signature over the SIGSTRUCT header and body does not verify with its own modulus (or Q1/Q2 do not match it): EINIT will refuse it, or the file was altered after signing.",
        "Re-sign the enclave and check that nothing modifies the file afterwards.";
    SgxDebugEnclave = "sgx-debug-enclave", High, SgxOrGramine, Any, Any,
        "DEBUG enclave",
        "A DEBUG enclave lets the host read and write its memory with EDBGRD/EDBGWR: no confidentiality or integrity in production.",
        "Sign production enclaves with ATTRIBUTES.DEBUG = 0 (SDK: DisableDebug = 1; Gramine: sgx.debug = false).";
    SgxDebugNotEnforced = "sgx-debug-not-enforced", High, SgxOrGramine, Any, Any,
        "DEBUG attribute not enforced by ATTRIBUTEMASK",
        "ATTRIBUTEMASK does not cover DEBUG, so the host may launch this production-signed enclave in debug mode with the same MRENCLAVE and MRSIGNER.",
        "Sign with an ATTRIBUTEMASK whose DEBUG bit (bit 1) is set.";
    SgxProvisionKey = "sgx-provision-key", Low, SgxOrGramine, Any, Any,
        "PROVISIONKEY attribute requested",
        "Only provisioning and quoting enclaves need the provisioning key; any other enclave asking for it widens what a compromise exposes.",
        "Clear ATTRIBUTES.PROVISIONKEY unless this is a quoting or provisioning enclave.";
    GramineInsecureOption = "gramine-insecure-option", High, Gramine, Any, Any,
        "insecure__ option in the Gramine manifest",
        "Gramine names options that break its security guarantees insecure__ (host argv or environment, hard-coded keys, disabled ASLR, memory-fault info): not for production.",
        "Remove the option; provision arguments, environment and keys through trusted files or attestation.";
    GramineFileCheckPolicy = "gramine-file-check-policy", High, Gramine, Any, Any,
        "sgx.file_check_policy = \"allow_all_but_log\"",
        "Every file not listed as trusted or allowed is opened without integrity checks: the host can feed the enclave arbitrary code and data.",
        "Use the default \"strict\" policy and list the files the application needs.";
    GramineLogLevel = "gramine-log-level", Medium, Gramine, Any, Any,
        "Verbose Gramine log level",
        "Log levels above \"error\" print internal state and system-call arguments to the untrusted host and may leak secrets.",
        "Use loader.log_level = \"error\" (or \"none\") in production.";
    GramineAllowedFiles = "gramine-allowed-files", Low, Gramine, Any, Any,
        "Unprotected allowed files",
        "sgx.allowed_files are opened without hashing or encryption: their contents are under the host's control.",
        "Prefer trusted (hashed) or encrypted files; keep allowed files to data the application validates.";
    GramineSigMismatch = "gramine-sig-mismatch", High, Gramine, Any, Any,
        "Manifest and .sig disagree",
        "The .sig does not carry the manifest's debug flag, ISV product id or SVN: it was signed from another manifest, so the reviewed manifest is not what runs.",
        "Re-sign with gramine-sgx-sign from the reviewed manifest.";
    GramineManifestMissing = "gramine-manifest-missing", Medium, Gramine, Any, Any,
        "No Gramine manifest found",
        "Without the .manifest.sgx the Gramine configuration (trusted files, insecure options, debug) cannot be reviewed.",
        "Pass --manifest FILE, or keep <binary>.manifest.sgx next to the binary.";
    KeystoneUnknownEcall = "keystone-unknown-ecall", Medium, Keystone, Riscv, Any,
        "ecall with an unknown or unresolved call number",
        "The runtime call number in a7 could not be determined statically, or is not part of the Keystone/Eyrie runtime interface: the eapp may ask the runtime for something nobody reviewed.",
        "Set a7 from a constant next to the ecall, or check the call against the runtime the eapp ships with.";
    KeystoneLinuxSyscall = "keystone-linux-syscall", Low, Keystone, Riscv, Any,
        "Linux system call proxied by Eyrie",
        "Eyrie forwards Linux system calls (when built with USE_LINUX_SYSCALL) to the untrusted host through an OCALL: arguments and results cross the enclave boundary.",
        "Check that the data passed is meant to leave the enclave and that results are validated.";
    HardeningWxSegment = "hardening-wx-segment", High, Image, Any, Elf,
        "Writable and executable segment",
        "A segment mapped both writable and executable lets any memory-write bug become code injection.",
        "Link without -N/--omagic and without sections flagged \"awx\".";
    HardeningExecStack = "hardening-exec-stack", High, Image, Any, Elf,
        "Executable stack",
        "An executable stack (PT_GNU_STACK with PF_X, or no PT_GNU_STACK) turns stack overflows into code execution.",
        "Link with -z noexecstack and fix objects that lack .note.GNU-stack.";
    HardeningTextrel = "hardening-textrel", Medium, Image, Any, Elf,
        "Text relocations",
        "The loader must write into code pages to relocate them: code is writable at load time and pages are not shared; in an enclave the measured code differs from what runs.",
        "Compile every object with -fPIC/-fPIE.";
    HardeningNoRelro = "hardening-no-relro", Medium, Image, Any, Elf,
        "No RELRO",
        "Without PT_GNU_RELRO the GOT and other relocated data stay writable for the life of the process.",
        "Link with -z relro (and -z now).";
    HardeningNoBindNow = "hardening-no-bind-now", Low, Image, Any, Elf,
        "Partial RELRO (no BIND_NOW)",
        "Without BIND_NOW the lazily bound part of the GOT stays writable, a classic target for control-flow hijacking.",
        "Link with -z now.";
    HardeningNotPie = "hardening-not-pie", Medium, Image, Any, Elf,
        "Not position-independent",
        "A position-dependent executable loads at a fixed address: ASLR cannot hide its code from an attacker.",
        "Compile with -fPIE and link with -pie.";
    HardeningNoStackProtector = "hardening-no-stack-protector", Low, Image, Any, Elf,
        "No stack protector",
        "No function checks a stack canary (no canary loads, no __stack_chk_fail): stack buffer overflows reach the return address unchecked.",
        "Compile with -fstack-protector-strong.";
    HardeningNoCet = "hardening-no-cet", Low, Image, X86, Elf,
        "No CET (IBT/SHSTK) property",
        "Without the GNU property note marking IBT and SHSTK, the image cannot run with Intel CET indirect-branch tracking and shadow stacks.",
        "Compile every object with -fcf-protection=full.";
    HardeningNoBti = "hardening-no-bti", Low, Image, Aarch64, Elf,
        "No BTI/PAC property",
        "Without the GNU property note marking BTI (and PAC), the image cannot run with branch-target identification.",
        "Compile every object with -mbranch-protection=standard.";
    HardeningPeNoDynamicbase = "hardening-pe-no-dynamicbase", Medium, Image, Any, Pe,
        "No ASLR (DYNAMICBASE)",
        "Without IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE and a base relocation table the Windows loader maps the image at its preferred address: ASLR cannot hide its code.",
        "Link with /DYNAMICBASE (mingw: --dynamicbase, the default since binutils 2.36) and keep the .reloc section.";
    HardeningPeNoHighEntropyVa = "hardening-pe-no-high-entropy-va", Low, Image, Any, Pe,
        "No high-entropy ASLR (HIGH_ENTROPY_VA)",
        "A 64-bit image without IMAGE_DLLCHARACTERISTICS_HIGH_ENTROPY_VA is placed with 8 bits less randomness than it could have.",
        "Link with /HIGHENTROPYVA (mingw: --high-entropy-va).";
    HardeningPeNoNxCompat = "hardening-pe-no-nx-compat", Medium, Image, Any, Pe,
        "Not DEP-compatible (NX_COMPAT)",
        "Without IMAGE_DLLCHARACTERISTICS_NX_COMPAT the image declares it needs executable data pages: stack and heap overflows can become code execution.",
        "Link with /NXCOMPAT (mingw: --nxcompat).";
    HardeningPeNoCfg = "hardening-pe-no-cfg", Low, Image, Any, Pe,
        "No Control Flow Guard",
        "Without Control Flow Guard (GUARD_CF and an instrumented load configuration) indirect calls are not checked against the image's valid targets.",
        "Compile and link with /guard:cf (clang for mingw: -mguard=cf).";
    HardeningPeWxSection = "hardening-pe-wx-section", High, Image, Any, Pe,
        "Writable and executable section",
        "A section mapped both writable and executable lets any memory-write bug become code injection.",
        "Do not mark sections both writable and executable (no \"wx\" section flags, no /SECTION:name,ERW).";
    HardeningPeNoCetCompat = "hardening-pe-no-cet-compat", Low, Image, X86, Pe,
        "Not CET shadow-stack compatible",
        "Without IMAGE_DLLCHARACTERISTICS_EX_CET_COMPAT in the debug directory, Windows runs the image without hardware-enforced shadow stacks.",
        "Link with /CETCOMPAT.";
    HardeningPeNoGs = "hardening-pe-no-gs", Low, Image, Any, Pe,
        "No stack cookies (/GS)",
        "No security cookie in the load configuration and no __stack_chk_fail/__stack_chk_guard: stack buffer overflows reach the return address unchecked.",
        "Compile with /GS (MSVC) or -fstack-protector-strong (mingw).";
    HardeningPeUnsigned = "hardening-pe-unsigned", Low, Image, Any, Pe,
        "No Authenticode signature",
        "The image carries no Authenticode signature (certificate table with a PKCS#7 SignedData entry): nothing binds it to its publisher.",
        "Sign the image (signtool, osslsigncode) and verify the signature before deployment.";
}

impl RuleId {
    /// The rule's position in [`RULES`] (SARIF `ruleIndex`).
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The rule's family.
    #[must_use]
    pub fn family(self) -> Family {
        self.rule().family()
    }
}

impl std::fmt::Display for RuleId {
    /// The id text; width and alignment apply (`{:<28}`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl Serialize for RuleId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for RuleId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RuleId::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown rule id {s:?}")))
    }
}

/// Whether `rule` applies to this audit; `Err(reason)` when it does not.
///
/// # Errors
/// A sentence saying why the rule does not apply.
pub fn applies(rule: &Rule, tee: Tee, arch: Arch, format: Format) -> Result<(), String> {
    if !rule.scope.covers(tee) {
        let needs = match rule.scope {
            Scope::Image => "any",
            Scope::Sgx => "sgx",
            Scope::SgxOrGramine => "sgx or gramine",
            Scope::Gramine => "gramine",
            Scope::Keystone => "keystone",
        };
        return Err(format!(
            "audited for tee {}; this rule is for {needs} (use --tee)",
            tee.name()
        ));
    }
    let arch_ok = match rule.arches {
        Arches::Any => true,
        Arches::X86 => matches!(arch, Arch::X86 | Arch::X86_64),
        Arches::Riscv => arch == Arch::Riscv64,
        Arches::Aarch64 => arch == Arch::Aarch64,
    };
    if !arch_ok {
        let why = match rule.arches {
            Arches::X86 if rule.scope == Scope::Image => "CET is an x86 feature",
            Arches::X86 => "SGX instructions are x86 instructions",
            Arches::Riscv => "Keystone runs on RISC-V",
            Arches::Aarch64 => "BTI/PAC are AArch64 features",
            Arches::Any => "",
        };
        return Err(format!("not applicable to {}: {why}", arch.name()));
    }
    match (rule.formats, format) {
        (Formats::Elf, Format::Pe) => {
            return Err(
                "an ELF rule (program headers, dynamic section); PE images have the hardening-pe-* rules"
                    .to_string(),
            );
        }
        (Formats::Pe, Format::Elf) => {
            return Err("a PE rule (optional header, load configuration, sections)".to_string());
        }
        _ => {}
    }
    if tee == Tee::Keystone && rule.id == RuleId::HardeningNotPie {
        return Err(
            "Keystone eapps are loaded at their linked addresses by the runtime (no ASLR)"
                .to_string(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_kebab_case_described_and_in_table_order() {
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id.name()).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate rule id");
        for (i, r) in RULES.iter().enumerate() {
            let id = r.id.name();
            assert!(
                id.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{id}"
            );
            assert!(!r.why.is_empty() && !r.title.is_empty() && !r.help.is_empty());
            assert!(!r.why.contains('\n'));
            assert_eq!(r.id.index(), i, "{id}");
            assert_eq!(r.id.rule(), r, "{id}");
            assert_eq!(RuleId::parse(id), Some(r.id));
            // The family is the id's first word.
            assert!(id.starts_with(&format!("{}-", r.family().name())), "{id}");
            assert_eq!(serde_json::to_value(r.id).unwrap(), serde_json::json!(id));
            assert_eq!(
                serde_json::from_value::<RuleId>(serde_json::json!(id)).unwrap(),
                r.id
            );
        }
        assert_eq!(RuleId::parse("sgx-sycall"), None);
        assert!(serde_json::from_value::<RuleId>(serde_json::json!("sgx")).is_err());
    }

    #[test]
    fn applicability_names_the_reason() {
        let r = RuleId::SgxSyscall.rule();
        assert!(applies(r, Tee::Sgx, Arch::X86_64, Format::Elf).is_ok());
        let e = applies(r, Tee::Sgx, Arch::Riscv64, Format::Elf).unwrap_err();
        assert!(e.contains("riscv64"), "{e}");
        let e = applies(r, Tee::None, Arch::X86_64, Format::Elf).unwrap_err();
        assert!(e.contains("--tee"), "{e}");
        let cet = RuleId::HardeningNoCet.rule();
        assert!(applies(cet, Tee::None, Arch::Aarch64, Format::Elf).is_err());
    }
}
