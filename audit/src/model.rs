//! What an audit reports: findings, facts, and which rules ran.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rules::RuleId;

/// How bad a finding is. Ordered: `Info < Low < Medium < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; never fails a run unless the policy says so.
    Info,
    /// Hardening that is missing but rarely exploitable alone.
    Low,
    /// A weakness or a slow path a reviewer should look at.
    Medium,
    /// Faults in the enclave, or breaks its security for production.
    High,
}

impl Severity {
    /// The stable name (`info`, `low`, `medium`, `high`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    /// Parse a stable name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "info" => Some(Severity::Info),
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            _ => None,
        }
    }

    /// The SARIF `level` of a result of this severity.
    #[must_use]
    pub fn sarif_level(self) -> &'static str {
        match self {
            Severity::High => "error",
            Severity::Medium => "warning",
            Severity::Low | Severity::Info => "note",
        }
    }

    /// GitHub code scanning's `security-severity` (0.0 to 10.0).
    #[must_use]
    pub fn security_severity(self) -> &'static str {
        match self {
            Severity::High => "8.0",
            Severity::Medium => "5.5",
            Severity::Low => "3.0",
            Severity::Info => "0.0",
        }
    }
}

/// The trusted execution environment a binary is audited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tee {
    /// An Intel SGX SDK enclave (a signed shared object).
    Sgx,
    /// An application run inside SGX by Gramine.
    Gramine,
    /// A RISC-V Keystone enclave application (eapp).
    Keystone,
    /// No enclave: only the image-hardening rules apply.
    None,
}

impl Tee {
    /// The stable name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Tee::Sgx => "sgx",
            Tee::Gramine => "gramine",
            Tee::Keystone => "keystone",
            Tee::None => "none",
        }
    }
}

/// Which TEE to audit for: one, or detect it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TeeChoice {
    /// Detect: `.note.sgxmeta` means SGX SDK, a Gramine manifest next to
    /// the binary means Gramine, a static RISC-V executable means
    /// Keystone; otherwise none.
    #[default]
    Auto,
    /// This one.
    Given(Tee),
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule (`sgx-syscall`, `hardening-wx-segment`, ...).
    pub rule: RuleId,
    /// Effective severity (after the policy).
    pub severity: Severity,
    /// What was found, specifically.
    pub message: String,
    /// Address as linked, when the finding is at an instruction or a
    /// structure in memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<u64>,
    /// File offset of `addr` (or of the structure), when file-backed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_offset: Option<u64>,
    /// Bytes at `file_offset` the finding covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// Function containing `addr` (name or `sub_<addr>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Entry of that function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_addr: Option<u64>,
    /// The instruction, as assembly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction: Option<String>,
    /// Which root reaches the instruction (`entry _start`, `export
    /// enclave_entry`, `init/fini`, `address taken`), for reachable code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached_from: Option<String>,
    /// A call path from that root to the function (at most 8 names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
    /// The file the finding is in when it is not the binary (manifest,
    /// `.sig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// 1-based line in `artifact`, for text artifacts (manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Position-independent key of the location (manifest key, instruction
    /// mnemonic and occurrence, segment), part of the fingerprint.
    pub location_key: String,
    /// Fingerprint stable across rebuilds (see `docs/audit.md`).
    pub fingerprint: String,
    /// Whether the baseline accepted this finding already.
    #[serde(default)]
    pub suppressed: bool,
}

/// The verdict of an audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditVerdict {
    /// Every applicable rule was checked and no unsuppressed finding is at
    /// or above the failing severity (exit 0).
    Pass,
    /// An unsuppressed finding at or above the failing severity (exit 1).
    Fail,
    /// No failing finding, but an applicable rule could not be checked, or
    /// no rule applied at all: the audit cannot say the binary passes
    /// (exit 3).
    Unverifiable,
}

impl AuditVerdict {
    /// The stable name (`pass`, `fail`, `unverifiable`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            AuditVerdict::Pass => "pass",
            AuditVerdict::Fail => "fail",
            AuditVerdict::Unverifiable => "unverifiable",
        }
    }
}

/// Whether a rule ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum RuleState {
    /// The rule was checked.
    Applied,
    /// The rule does not apply to this TEE, architecture or format; the
    /// reason says why.
    NotApplicable(String),
    /// The policy turned the rule off.
    Disabled,
    /// The rule applies but the evidence to check it is missing.
    Unchecked(String),
}

/// A rule and what happened to it in this audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleStatus {
    /// The rule.
    pub id: RuleId,
    /// Effective severity.
    pub severity: Severity,
    /// What happened.
    #[serde(flatten)]
    pub state: RuleState,
}

/// Facts about the binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinaryFacts {
    /// Path as given.
    pub path: String,
    /// `elf` or `pe`.
    pub format: String,
    /// `x86`, `x86_64`, `riscv64`, `aarch64`.
    pub arch: String,
    /// `executable`, `pie_executable`, `shared_object`.
    pub kind: String,
    /// BLAKE3 of the file.
    pub blake3: String,
    /// Build-id, if any.
    pub build_id: Option<String>,
    /// Graph digest from `talos cfg` (`null` when the headers could not be
    /// parsed and no graph was recovered).
    #[serde(default)]
    pub graph_digest: Option<String>,
    /// Functions recovered.
    pub functions: u64,
    /// Functions reachable from the roots.
    pub reachable_functions: u64,
    /// Roots of the reachability analysis.
    pub roots: u64,
    /// Whether reachability was computed (only rules on instructions need
    /// it; without them the two counts above are 0).
    pub reachability: bool,
}

/// Image-hardening facts (ELF).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HardeningFacts {
    /// Position independent (`ET_DYN`).
    pub pie: bool,
    /// `PT_GNU_RELRO` present.
    pub relro: bool,
    /// `DF_BIND_NOW` / `DF_1_NOW` / `DT_BIND_NOW`.
    pub bind_now: bool,
    /// Executable stack: `Some(true)` executable, `Some(false)` not,
    /// `None` no `PT_GNU_STACK`.
    pub exec_stack: Option<bool>,
    /// Text relocations.
    pub text_relocations: bool,
    /// Segments both writable and executable, by address.
    pub wx_segments: Vec<u64>,
    /// Stack protector: `Some(true)` canary code or `__stack_chk_fail`
    /// found, `Some(false)` not found, `None` could not tell.
    pub stack_protector: Option<bool>,
    /// Control-flow protection properties (`ibt`, `shstk`, `bti`, `pac`).
    pub cfi: Vec<String>,
    /// Dynamically linked (`PT_DYNAMIC`).
    pub dynamic: bool,
    /// PE32+ images: what the optional header, sections, load
    /// configuration and certificate table say (the ELF fields above are
    /// then all false or empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pe: Option<PeHardeningFacts>,
}

/// Image-hardening facts of a PE32+ image.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PeHardeningFacts {
    /// `DYNAMIC_BASE` (ASLR).
    pub dynamic_base: bool,
    /// A base relocation table is present.
    pub relocations: bool,
    /// `HIGH_ENTROPY_VA`.
    pub high_entropy_va: bool,
    /// `NX_COMPAT` (DEP).
    pub nx_compat: bool,
    /// Control Flow Guard (`GUARD_CF` and an instrumented load
    /// configuration).
    pub control_flow_guard: bool,
    /// CET shadow-stack compatible (`EX_CET_COMPAT`).
    pub cet_compat: bool,
    /// Stack cookies: `Some(true)` a `/GS` security cookie or
    /// `__stack_chk_fail`/`__stack_chk_guard` found, `Some(false)` not found
    /// in an image whose symbols and imports were readable, `None` could
    /// not tell (stripped, no load configuration, no such import).
    pub stack_cookies: Option<bool>,
    /// Authenticode: `Some(true)` a PKCS#7 SignedData certificate is
    /// present (not verified), `Some(false)` a certificate table without
    /// one, `None` no certificate table.
    pub authenticode: Option<bool>,
    /// Sections both writable and executable, by address.
    pub wx_sections: Vec<u64>,
}

/// An SGX attributes field. Serialised as `"0x..."` strings: 64-bit masks
/// do not survive JSON readers that use doubles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Attributes {
    /// FLAGS (bit 1 = DEBUG, bit 2 = MODE64BIT, bit 4 = PROVISIONKEY,
    /// bit 5 = EINITTOKEN_KEY, bit 7 = KSS, bit 10 = AEXNOTIFY).
    #[serde(with = "hex_u64")]
    pub flags: u64,
    /// XFRM.
    #[serde(with = "hex_u64")]
    pub xfrm: u64,
}

mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:#x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = String::deserialize(d)?;
        let h = s.strip_prefix("0x").unwrap_or(&s);
        u64::from_str_radix(h, 16).map_err(serde::de::Error::custom)
    }
}

/// What a SIGSTRUCT says (SDM Vol. 3D §38.13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigStructFacts {
    /// File that held it (the binary for SDK enclaves, the `.sig` for
    /// Gramine).
    pub source: String,
    /// File offset of the SIGSTRUCT in that file.
    pub offset: u64,
    /// MRENCLAVE as stated in the SIGSTRUCT (hex).
    pub mrenclave: String,
    /// MRSIGNER: SHA-256 of the modulus as stored (hex).
    pub mrsigner: String,
    /// ISVPRODID.
    pub isv_prod_id: u16,
    /// ISVSVN.
    pub isv_svn: u16,
    /// ATTRIBUTES.
    pub attributes: Attributes,
    /// ATTRIBUTEMASK.
    pub attribute_mask: Attributes,
    /// MISCSELECT.
    pub misc_select: u32,
    /// MISCMASK.
    pub misc_mask: u32,
    /// MODULE VENDOR (0x8086 Intel, 0 others).
    pub vendor: u32,
    /// DATE as written (yyyymmdd in BCD).
    pub date: String,
    /// RSA exponent.
    pub exponent: u32,
    /// Whether the RSA signature verifies with the SIGSTRUCT's own key
    /// (`verified` or `invalid: why`).
    pub signature: Verification,
    /// Whether Q1 and Q2 are the values the signature implies (`verified`
    /// or `invalid: why`).
    pub q1_q2: Verification,
    /// Attribute flags by name (`debug`, `mode64bit`, ...).
    pub flags: Vec<String>,
}

/// The outcome of a check done in software (a SIGSTRUCT signature, its Q1
/// and Q2). Serialised as `verified` or `invalid: <why>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Verification {
    /// It verifies.
    Verified,
    /// It does not, for this reason.
    Invalid(String),
}

impl Verification {
    /// `Verified` for `Ok`, `Invalid(why)` for `Err(why)`.
    #[must_use]
    pub fn of(r: Result<(), String>) -> Self {
        match r {
            Ok(()) => Verification::Verified,
            Err(why) => Verification::Invalid(why),
        }
    }
}

impl std::fmt::Display for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verification::Verified => f.write_str("verified"),
            Verification::Invalid(why) => write!(f, "invalid: {why}"),
        }
    }
}

impl From<Verification> for String {
    fn from(v: Verification) -> String {
        v.to_string()
    }
}

impl TryFrom<String> for Verification {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s == "verified" {
            return Ok(Verification::Verified);
        }
        match s.strip_prefix("invalid: ") {
            Some(why) => Ok(Verification::Invalid(why.to_string())),
            None => Err(format!(
                "{s:?} is neither \"verified\" nor \"invalid: ...\""
            )),
        }
    }
}

/// SDK metadata (`.note.sgxmeta`) around the SIGSTRUCT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SgxMetadataFacts {
    /// Metadata version, `major.minor`.
    pub version: String,
    /// Enclave size in bytes.
    pub enclave_size: u64,
    /// TCS policy (0 bound, 1 unbound).
    pub tcs_policy: u32,
    /// SSA frame size in pages.
    pub ssa_frame_size: u32,
    /// Metadata blocks in the note (the SDK may store several versions).
    pub blocks: u32,
}

/// What the SGX evidence says.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SgxFacts {
    /// SDK metadata, for SDK enclaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<SgxMetadataFacts>,
    /// The SIGSTRUCT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigstruct: Option<SigStructFacts>,
}

/// What the Gramine manifest says.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GramineFacts {
    /// The `.manifest.sgx` read.
    pub manifest: Option<String>,
    /// `sgx.debug`.
    pub debug: Option<bool>,
    /// `sgx.isvprodid`.
    pub isvprodid: Option<i64>,
    /// `sgx.isvsvn`.
    pub isvsvn: Option<i64>,
    /// `libos.entrypoint`.
    pub entrypoint: Option<String>,
    /// `sgx.enclave_size`.
    pub enclave_size: Option<String>,
    /// `sgx.max_threads`.
    pub max_threads: Option<i64>,
    /// `sgx.remote_attestation`.
    pub remote_attestation: Option<String>,
    /// Number of `sgx.trusted_files`.
    pub trusted_files: usize,
    /// Number of `sgx.allowed_files`.
    pub allowed_files: usize,
    /// Every `insecure__` key set, with its value.
    pub insecure_options: BTreeMap<String, String>,
}

/// One `ecall` of a Keystone eapp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcallSite {
    /// Address of the `ecall`.
    pub addr: u64,
    /// Function containing it.
    pub function: String,
    /// Call number in `a7`, when set by a constant in the same block.
    pub number: Option<u64>,
    /// What the number means (`ocall`, `attest_enclave`, `linux write`, ...).
    pub interface: String,
    /// Whether a root reaches it.
    pub reachable: bool,
}

/// The Keystone runtime interface an eapp uses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KeystoneFacts {
    /// Every `ecall` site.
    pub ecalls: Vec<EcallSite>,
    /// Distinct interfaces used, sorted.
    pub interfaces: Vec<String>,
}

/// The LVI load-hardening heuristic's counts (see `docs/audit.md`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LviFacts {
    /// Returns and indirect branches in reachable code (import stubs
    /// excluded).
    pub sites: u64,
    /// Of those, the ones with an `lfence` after the last load.
    pub hardened: u64,
    /// The first unhardened sites (at most 8).
    pub first_unhardened: Vec<u64>,
}
