//! `talos audit`: enclave-binary audit with text, JSON (`talos.audit/1`)
//! and SARIF 2.1.0 output.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::ValueEnum;
use talos_audit::model::Severity;
use talos_audit::{
    AuditVerdict, Aux, Baseline, Input, Options, Policy, Report, RuleState, Tee, TeeChoice,
};

use crate::Outcome;
use crate::{input, output};

/// TEE choices on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TeeArg {
    /// Detect from the binary and the files next to it.
    Auto,
    /// Intel SGX SDK enclave (signed shared object).
    Sgx,
    /// Application run in SGX by Gramine.
    Gramine,
    /// RISC-V Keystone eapp.
    Keystone,
    /// No enclave: image hardening only.
    None,
}

/// Output formats of `talos audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    /// Report for people.
    Text,
    /// The `talos.audit/1` document.
    Json,
    /// SARIF 2.1.0 (GitHub code scanning).
    Sarif,
    /// One self-contained HTML page (findings with call paths, hardening,
    /// enclave metadata).
    Html,
}

/// Arguments of `talos audit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The binary (SGX SDK enclave, Gramine application, Keystone eapp,
    /// or any ELF executable or shared object).
    #[arg(required_unless_present = "list_rules")]
    pub binary: Option<PathBuf>,
    /// The TEE to audit for.
    #[arg(long, value_enum, default_value_t = TeeArg::Auto)]
    pub tee: TeeArg,
    /// Policy file (rules, severities, failing severity).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Previous talos.audit/1 or SARIF output whose findings are accepted.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
    pub format: AuditFormat,
    /// Gramine manifest (default: BINARY.manifest.sgx if it exists).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Gramine SIGSTRUCT file (default: BINARY.sig if it exists).
    #[arg(long, value_name = "FILE")]
    pub sig: Option<PathBuf>,
    /// Write to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// List the rules and exit.
    #[arg(long)]
    pub list_rules: bool,
}

fn sibling(binary: &Path, suffix: &str) -> Option<PathBuf> {
    let mut s = binary.as_os_str().to_owned();
    s.push(suffix);
    let p = PathBuf::from(s);
    p.is_file().then_some(p)
}

fn read_small(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{}: cannot read {what}", path.display()))
}

/// Run `talos audit`.
///
/// # Errors
/// Unreadable or unsupported inputs, bad policy or baseline, unwritable
/// output.
pub fn run(args: Args) -> Result<Outcome> {
    if args.list_rules {
        output::emit(args.output.as_deref(), rules_text().as_bytes())?;
        return Ok(Outcome::Ok);
    }
    let Some(binary) = args.binary.as_deref() else {
        anyhow::bail!("a BINARY is required");
    };
    let policy = match &args.policy {
        Some(p) => Policy::parse(&p.display().to_string(), &read_small(p, "policy")?)?,
        None => Policy::default(),
    };
    let baseline = match &args.baseline {
        Some(p) => Some(Baseline::parse(
            &p.display().to_string(),
            &read_small(p, "baseline")?,
        )?),
        None => None,
    };
    let manifest_path = args
        .manifest
        .clone()
        .or_else(|| sibling(binary, ".manifest.sgx"));
    let sig_path = args.sig.clone().or_else(|| sibling(binary, ".sig"));
    let manifest_bytes = match &manifest_path {
        Some(p) => Some(read_small(p, "manifest")?),
        None => None,
    };
    let sig_bytes = match &sig_path {
        Some(p) => Some(read_small(p, "SIGSTRUCT")?),
        None => None,
    };
    let bytes = input::map(binary)?;
    let path = binary.display().to_string();
    let mpath = manifest_path.as_ref().map(|p| p.display().to_string());
    let spath = sig_path.as_ref().map(|p| p.display().to_string());
    let inp = Input {
        path: &path,
        bytes: &bytes,
        manifest: match (&mpath, &manifest_bytes) {
            (Some(p), Some(b)) => Some(Aux { path: p, bytes: b }),
            _ => None,
        },
        sig: match (&spath, &sig_bytes) {
            (Some(p), Some(b)) => Some(Aux { path: p, bytes: b }),
            _ => None,
        },
    };
    let tee = match args.tee {
        TeeArg::Auto => TeeChoice::Auto,
        TeeArg::Sgx => TeeChoice::Given(Tee::Sgx),
        TeeArg::Gramine => TeeChoice::Given(Tee::Gramine),
        TeeArg::Keystone => TeeChoice::Given(Tee::Keystone),
        TeeArg::None => TeeChoice::Given(Tee::None),
    };
    let opts = Options {
        tee,
        policy,
        baseline,
    };
    let report = talos_audit::audit(&inp, &opts)?;
    let text = match args.format {
        AuditFormat::Json => {
            let mut s =
                serde_json::to_string_pretty(&report).context("serialising talos.audit/1")?;
            s.push('\n');
            s
        }
        AuditFormat::Sarif => {
            let mut s = serde_json::to_string_pretty(&talos_audit::sarif::to_sarif(&report))
                .context("serialising SARIF")?;
            s.push('\n');
            s
        }
        AuditFormat::Text => report_text(&report),
        AuditFormat::Html => crate::html::audit::render(&report),
    };
    output::emit(args.output.as_deref(), text.as_bytes())?;
    Ok(match report.verdict {
        AuditVerdict::Pass => Outcome::Ok,
        AuditVerdict::Fail => Outcome::Failed,
        AuditVerdict::Unverifiable => Outcome::Unproven,
    })
}

fn rules_text() -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{:<30} {:<7} {:<14} title", "rule", "default", "scope");
    for r in talos_audit::rules::RULES {
        let scope = match r.scope {
            talos_audit::rules::Scope::Image => "any",
            talos_audit::rules::Scope::Sgx => "sgx",
            talos_audit::rules::Scope::SgxOrGramine => "sgx, gramine",
            talos_audit::rules::Scope::Gramine => "gramine",
            talos_audit::rules::Scope::Keystone => "keystone",
        };
        let _ = writeln!(
            s,
            "{:<30} {:<7} {:<14} {}",
            r.id,
            r.severity.name(),
            scope,
            r.title
        );
        let _ = writeln!(s, "{:<30} {}", "", r.why);
    }
    s
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn report_text(r: &Report) -> String {
    let mut s = String::new();
    let b = &r.binary;
    let _ = writeln!(s, "{}", b.path);
    let _ = writeln!(
        s,
        "  format        {} {} {}",
        b.format,
        b.arch,
        b.kind.replace('_', " ")
    );
    let _ = writeln!(s, "  tee           {} ({})", r.tee.name(), r.tee_reason);
    if b.reachability {
        let _ = writeln!(
            s,
            "  functions     {} ({} reachable from {} roots)",
            b.functions, b.reachable_functions, b.roots
        );
    } else {
        let _ = writeln!(
            s,
            "  functions     {} (reachability not computed: no instruction rule applies)",
            b.functions
        );
    }
    let _ = writeln!(
        s,
        "  graph digest  {}",
        b.graph_digest.as_deref().unwrap_or("- (not recovered)")
    );
    let counts: Vec<String> = [
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ]
    .iter()
    .filter_map(|sev| r.counts.get(sev).map(|n| format!("{n} {}", sev.name())))
    .collect();
    let _ = writeln!(
        s,
        "  verdict       {}: {}{} (fails on {} and above)",
        r.verdict.name().to_uppercase(),
        if counts.is_empty() {
            "no findings".to_string()
        } else {
            counts.join(", ")
        },
        if r.suppressed > 0 {
            format!(", {} suppressed by the baseline", r.suppressed)
        } else {
            String::new()
        },
        r.fail_on.name()
    );
    let unchecked = r.unchecked();
    if r.verdict == AuditVerdict::Unverifiable {
        if !r.anomalies.is_empty() {
            let _ = writeln!(
                s,
                "                part of the binary could not be read, so the audit cannot pass:"
            );
            for a in &r.anomalies {
                let _ = writeln!(s, "                  {a}");
            }
        }
        if unchecked.is_empty() && r.anomalies.is_empty() {
            let _ = writeln!(
                s,
                "                no rule was checked, so the audit cannot pass"
            );
        } else if !unchecked.is_empty() {
            let _ = writeln!(
                s,
                "                {} applicable rule(s) could not be checked, so the audit cannot pass:",
                unchecked.len()
            );
            for u in &unchecked {
                let _ = writeln!(s, "                  {}: {}", u.rule, u.why);
            }
        }
    }
    if !r.findings.is_empty() {
        let _ = writeln!(s, "\nfindings:");
    }
    for f in &r.findings {
        let place = match (&f.function, f.addr, &f.artifact) {
            (Some(func), Some(a), _) => {
                format!(
                    "{a:#x} in {func}+{:#x}",
                    a.wrapping_sub(f.function_addr.unwrap_or(a))
                )
            }
            (None, Some(a), _) => format!("{a:#x}"),
            (_, None, Some(art)) => match f.line {
                Some(l) => format!("{art}:{l}"),
                None => art.clone(),
            },
            _ => "image".to_string(),
        };
        let _ = writeln!(
            s,
            "  {:<6} {:<28} {}{}",
            f.severity.name().to_uppercase(),
            f.rule,
            place,
            if f.suppressed { "  (baseline)" } else { "" }
        );
        let _ = writeln!(s, "         {}", f.message);
        if let Some(root) = &f.reached_from {
            let _ = writeln!(s, "         reached from {root}: {}", f.path.join(" > "));
        }
        let _ = writeln!(s, "         why: {}", f.rule.rule().why);
    }
    if let Some(sgx) = &r.sgx {
        let _ = writeln!(s, "\nsgx:");
        if let Some(m) = &sgx.metadata {
            let _ = writeln!(
                s,
                "  metadata      version {}, enclave size {:#x}, {} block(s), tcs policy {}, ssa frame {} page(s)",
                m.version, m.enclave_size, m.blocks, m.tcs_policy, m.ssa_frame_size
            );
        }
        match &sgx.sigstruct {
            Some(sig) => {
                let _ = writeln!(
                    s,
                    "  sigstruct     {} at offset {:#x}",
                    sig.source, sig.offset
                );
                let _ = writeln!(
                    s,
                    "  MRENCLAVE     {} (as signed; not recomputed)",
                    sig.mrenclave
                );
                let _ = writeln!(s, "  MRSIGNER      {}", sig.mrsigner);
                let _ = writeln!(
                    s,
                    "  ISVPRODID     {}    ISVSVN {}",
                    sig.isv_prod_id, sig.isv_svn
                );
                let _ = writeln!(
                    s,
                    "  attributes    flags {:#x} [{}] xfrm {:#x}; mask flags {:#x} xfrm {:#x}",
                    sig.attributes.flags,
                    sig.flags.join(", "),
                    sig.attributes.xfrm,
                    sig.attribute_mask.flags,
                    sig.attribute_mask.xfrm
                );
                let _ = writeln!(
                    s,
                    "  misc          select {:#x} mask {:#x}; vendor {:#x}; date {}",
                    sig.misc_select, sig.misc_mask, sig.vendor, sig.date
                );
                let _ = writeln!(
                    s,
                    "  signature     {} (RSA-3072, verified in software: no SGX hardware was used); Q1/Q2 {}",
                    sig.signature, sig.q1_q2
                );
            }
            None => {
                let _ = writeln!(s, "  sigstruct     none found");
            }
        }
    }
    if let Some(g) = &r.gramine {
        let _ = writeln!(s, "\ngramine:");
        let _ = writeln!(
            s,
            "  manifest      {}",
            g.manifest.as_deref().unwrap_or("none")
        );
        let _ = writeln!(
            s,
            "  debug {:?}, isvprodid {:?}, isvsvn {:?}, entrypoint {:?}, enclave size {:?}, max threads {:?}",
            g.debug, g.isvprodid, g.isvsvn, g.entrypoint, g.enclave_size, g.max_threads
        );
        let _ = writeln!(
            s,
            "  files         {} trusted, {} allowed; remote attestation {}",
            g.trusted_files,
            g.allowed_files,
            g.remote_attestation.as_deref().unwrap_or("none")
        );
    }
    if let Some(k) = &r.keystone {
        let _ = writeln!(s, "\nkeystone runtime interface:");
        for i in &k.interfaces {
            let _ = writeln!(s, "  {i}");
        }
        let _ = writeln!(s, "  ecall sites:");
        for e in &k.ecalls {
            let _ = writeln!(
                s,
                "    {:#x} in {:<24} {}{}",
                e.addr,
                e.function,
                e.interface,
                if e.reachable { "" } else { " (unreachable)" }
            );
        }
    }
    if let Some(l) = &r.lvi {
        let _ = writeln!(
            s,
            "\nlvi:            {} of {} returns and indirect branches in reachable code hardened",
            l.hardened, l.sites
        );
    }
    let h = &r.hardening;
    let _ = writeln!(s, "\nhardening:");
    if let Some(p) = &h.pe {
        let _ = writeln!(
            s,
            "  dynamicbase {} (relocations {}), high-entropy-va {}, nx-compat {}, control flow guard {}, cet-compat {}",
            yes(p.dynamic_base),
            yes(p.relocations),
            yes(p.high_entropy_va),
            yes(p.nx_compat),
            yes(p.control_flow_guard),
            yes(p.cet_compat)
        );
        let _ = writeln!(
            s,
            "  stack cookies {}, authenticode {}, W+X sections {}",
            match p.stack_cookies {
                Some(true) => "yes",
                Some(false) => "no",
                None => "unknown",
            },
            match p.authenticode {
                Some(true) => "signature present (not verified)",
                Some(false) => "certificate table without a signature",
                None => "none",
            },
            p.wx_sections.len()
        );
    } else if b.format == "elf" && b.graph_digest.is_some() {
        let _ = writeln!(
            s,
            "  pie {}, relro {}, bind-now {}, exec stack {}, text relocations {}, W+X segments {}",
            yes(h.pie),
            yes(h.relro),
            yes(h.bind_now),
            match h.exec_stack {
                Some(true) => "yes",
                Some(false) => "no",
                None => "no PT_GNU_STACK",
            },
            yes(h.text_relocations),
            h.wx_segments.len()
        );
        let _ = writeln!(
            s,
            "  stack protector {}, control-flow protection [{}]",
            match h.stack_protector {
                Some(true) => "yes",
                Some(false) => "no",
                None => "unknown",
            },
            h.cfi.join(", ")
        );
    }
    // Rules that did not run, grouped by reason.
    let mut skipped: Vec<(String, Vec<&str>)> = Vec::new();
    for x in &r.rules {
        let why = match &x.state {
            RuleState::NotApplicable(w) => format!("not applicable: {w}"),
            RuleState::Unchecked(w) => format!("could not be checked: {w}"),
            RuleState::Disabled => "disabled by the policy".to_string(),
            RuleState::Applied => continue,
        };
        match skipped.iter_mut().find(|(w, _)| *w == why) {
            Some((_, ids)) => ids.push(x.id.name()),
            None => skipped.push((why, vec![x.id.name()])),
        }
    }
    if !skipped.is_empty() {
        let _ = writeln!(s, "\nrules not applied:");
        for (why, ids) in skipped {
            let _ = writeln!(s, "  {}\n    {why}", ids.join(", "));
        }
    }
    if r.verdict != AuditVerdict::Unverifiable && !r.anomalies.is_empty() {
        let _ = writeln!(s, "\npart of the binary could not be read:");
        for a in &r.anomalies {
            let _ = writeln!(s, "  {a}");
        }
    }
    if !r.notes.is_empty() {
        let _ = writeln!(s, "\nnotes:");
        for n in &r.notes {
            let _ = writeln!(s, "  {n}");
        }
    }
    s
}
