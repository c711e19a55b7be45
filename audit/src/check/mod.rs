//! The rules' judgements: each module reads the facts the readers
//! (`elfinfo`, `peinfo`, `sgx`, `gramine`, `scan`, `reach`) extracted and
//! turns them into findings and rule states. Nothing here parses bytes.
//!
//! - [`hardening`]: image hardening, ELF and PE.
//! - [`sgx`]: enclave-illegal instructions, LVI, SGX metadata and SIGSTRUCT.
//! - [`gramine`]: the Gramine manifest and its `.sig`.
//! - [`keystone`]: the Keystone runtime calls of an eapp.

pub mod gramine;
pub(crate) mod hardening;
pub mod keystone;
pub(crate) mod sgx;

use std::collections::BTreeMap;

use talos_cfg::{Cfg, Image};

use crate::model::{Finding, RuleState, Tee};
use crate::policy::Policy;
use crate::reach::Reach;
use crate::rules::RuleId;
use crate::{Input, fingerprint};

/// Where a finding points.
#[derive(Debug, Default)]
pub(crate) struct Loc {
    /// Address as linked (instructions, segments, sections).
    pub(crate) addr: Option<u64>,
    /// Bytes the finding covers.
    pub(crate) length: Option<u64>,
    /// File offset, when not derived from `addr`.
    pub(crate) file_offset: Option<u64>,
    /// Index of the function containing `addr`.
    pub(crate) function: Option<usize>,
    /// The instruction, as assembly.
    pub(crate) instruction: Option<String>,
    /// The file, when not the binary.
    pub(crate) artifact: Option<String>,
    /// 1-based line in `artifact`.
    pub(crate) line: Option<u64>,
    /// Position-independent key of the location (part of the fingerprint).
    pub(crate) location_key: String,
    /// Function part of the fingerprint, when not the function's name.
    pub(crate) function_key: Option<String>,
}

/// The state of one audit while the rules judge: what was read, which
/// rules run, and the findings so far.
pub(crate) struct Auditor<'a> {
    pub(crate) input: &'a Input<'a>,
    pub(crate) image: &'a Image<'a>,
    pub(crate) cfg: &'a Cfg,
    pub(crate) tee: Tee,
    pub(crate) policy: &'a Policy,
    pub(crate) findings: Vec<Finding>,
    /// Every rule's state, in table order.
    pub(crate) states: BTreeMap<RuleId, RuleState>,
    pub(crate) pi: Option<Vec<talos_cfg::digest::PiDigest>>,
    pub(crate) reach: &'a Reach,
    /// What the rules expected to find in the recovered CFG and did not
    /// (each a sentence, added to the report's anomalies).
    pub(crate) anomalies: Vec<String>,
}

impl Auditor<'_> {
    /// Whether the rule runs (and has not been found inapplicable or
    /// uncheckable since).
    pub(crate) fn applied(&self, id: RuleId) -> bool {
        matches!(self.states.get(&id), Some(RuleState::Applied))
    }

    /// The rule turns out not to apply here.
    pub(crate) fn not_applicable(&mut self, id: RuleId, why: &str) {
        if self.applied(id) {
            self.states
                .insert(id, RuleState::NotApplicable(why.to_string()));
        }
    }

    /// The rule applies but what it needs could not be read.
    pub(crate) fn unchecked(&mut self, id: RuleId, why: &str) {
        if self.applied(id) {
            self.states
                .insert(id, RuleState::Unchecked(why.to_string()));
        }
    }

    /// The file offset of a virtual address.
    fn file_offset(&self, addr: u64) -> Option<u64> {
        let seg = self.image.segment_containing(addr)?;
        let rel = addr.checked_sub(seg.vaddr)?;
        (rel < seg.file_size).then(|| seg.offset.saturating_add(rel))
    }

    /// Name of the function, or its position-independent digest when it
    /// has none (computed once, on first need).
    /// A function the CFG does not hold (impossible: every index comes
    /// from that CFG) keys the fingerprint with no name and is recorded as
    /// an anomaly, so the audit cannot pass on it.
    fn function_key(&mut self, fi: usize) -> String {
        let Some(f) = self.cfg.functions.get(fi) else {
            self.missing_function(fi);
            return String::new();
        };
        if let Some(n) = &f.name {
            return n.clone();
        }
        if self.pi.is_none() {
            self.pi = Some(talos_cfg::digest::position_independent(
                self.image, self.cfg,
            ));
        }
        match self.pi.as_ref().and_then(|p| p.get(fi)) {
            Some(d) => format!("pi:{}", d.function),
            None => {
                self.anomalies.push(format!(
                    "function {} at {:#x} has no position-independent digest",
                    fi, f.addr
                ));
                String::new()
            }
        }
    }

    /// Records that a finding named function number `fi`, which the CFG
    /// does not hold.
    pub(crate) fn missing_function(&mut self, fi: usize) {
        self.anomalies.push(format!(
            "a rule named function {fi}, but the recovered CFG has {} functions",
            self.cfg.functions.len()
        ));
    }

    /// A finding of `rule`, unless the rule does not run.
    pub(crate) fn push(&mut self, rule: RuleId, message: String, loc: Loc) {
        if !self.applied(rule) {
            return;
        }
        let function_key = match (&loc.function_key, loc.function) {
            (Some(k), _) => k.clone(),
            (None, Some(fi)) => self.function_key(fi),
            (None, None) => String::new(),
        };
        let fp = fingerprint(rule.name(), &function_key, &loc.location_key);
        let func = loc.function.and_then(|fi| self.cfg.functions.get(fi));
        let (reached_from, path) = match loc.function {
            Some(_) if rule == RuleId::SgxUnreachableInstruction => (None, Vec::new()),
            Some(fi) if loc.addr.is_some() => match self.reach.functions.get(&fi) {
                Some(r) => (Some(r.root.to_string()), self.reach.path(self.cfg, fi)),
                None => (None, Vec::new()),
            },
            _ => (None, Vec::new()),
        };
        let file_offset = loc
            .file_offset
            .or_else(|| loc.addr.and_then(|a| self.file_offset(a)));
        self.findings.push(Finding {
            rule,
            severity: self.policy.severity_of(rule),
            message,
            addr: loc.addr,
            file_offset,
            length: loc.length,
            function: func.map(talos_cfg::Function::display_name),
            function_addr: func.map(|f| f.addr),
            instruction: loc.instruction,
            reached_from,
            path,
            artifact: loc.artifact,
            line: loc.line,
            location_key: loc.location_key,
            fingerprint: fp,
            suppressed: false,
        });
    }
}
