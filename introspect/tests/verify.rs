//! Module verdicts and findings on synthetic cores of a real binary
//! (`/bin/true`): its pages are copied into a synthetic core the way a
//! loader maps them, then changed the ways an attacker or a bad dump would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod synth;

use std::collections::BTreeMap;

use talos_introspect::core::parse;
use talos_introspect::report::{
    FindingKind, FlowStatus, Overall, Part, PcCheck, Reason, Report, Verdict,
};
use talos_introspect::resolve::Resolver;
use talos_introspect::verify::{Options, verify};

use synth::{PF_R, PF_W, PF_X, Synth};

const BIN: &str = "/usr/bin/true";
const BASE: u64 = 0x5555_5555_0000;
const STACK: u64 = 0x7fff_fff0_0000;

struct Mapped {
    start: u64,
    end: u64,
    offset: u64,
    flags: u32,
    bytes: Vec<u8>,
}

/// The mappings a loader makes of BIN at BASE, with the GOT and init/fini
/// arrays filled as ld.so would (pointing into the text).
fn mappings() -> (Vec<Mapped>, u64, Vec<u8>) {
    let file = std::fs::read(BIN).unwrap();
    let img = talos_cfg::load(&file).unwrap();
    let text = img
        .segments
        .iter()
        .find(|s| s.perms.execute)
        .map(|s| BASE + s.vaddr)
        .unwrap();
    let mut out = Vec::new();
    for s in &img.segments {
        let start = s.vaddr & !0xfff;
        let end = (s.vaddr + s.mem_size + 0xfff) & !0xfff;
        let offset = s.offset & !0xfff;
        let mut bytes = vec![0u8; (end - start) as usize];
        let avail = file.len().saturating_sub(offset as usize).min(bytes.len());
        bytes[..avail].copy_from_slice(&file[offset as usize..offset as usize + avail]);
        // The .bss tail past the file part of the segment is zero.
        let file_end = (s.vaddr + s.file_size - start) as usize;
        if s.perms.write {
            let n = bytes.len();
            for b in &mut bytes[file_end.min(n)..] {
                *b = 0;
            }
        }
        let flags = if s.perms.read { PF_R } else { 0 }
            | if s.perms.write { PF_W } else { 0 }
            | if s.perms.execute { PF_X } else { 0 };
        out.push(Mapped {
            start: BASE + start,
            end: BASE + end,
            offset,
            flags,
            bytes,
        });
    }
    let mut slots: Vec<u64> = img.import_slots.keys().copied().collect();
    for sec in &img.sections {
        if matches!(sec.name.as_str(), ".init_array" | ".fini_array") {
            slots.extend((0..sec.size / 8).map(|i| sec.addr + i * 8));
        }
    }
    for slot in slots {
        let a = BASE + slot;
        let m = out.iter_mut().find(|m| a >= m.start && a < m.end).unwrap();
        let o = (a - m.start) as usize;
        m.bytes[o..o + 8].copy_from_slice(&(text + 0x10).to_le_bytes());
    }
    (out, BASE + img.entry.unwrap(), img.build_id.unwrap())
}

fn core_of(maps: &[Mapped], entry: u64, path: &str, omit_text: bool) -> Vec<u8> {
    let mut s = Synth::kernel();
    let mut nt = Vec::new();
    for m in maps {
        let bytes: &[u8] = if omit_text && m.flags & PF_X != 0 {
            &[]
        } else {
            &m.bytes
        };
        s.load(m.start, m.end - m.start, m.flags, bytes);
        nt.push((m.start, m.end, m.offset, path));
    }
    // A stack whose only thread sits at the entry point.
    s.load(STACK, 0x1000, PF_R | PF_W, &[0u8; 0x1000]);
    s.nt_file(4096, &nt);
    s.auxv(&[(6, 4096), (9, entry)]);
    s.prstatus(42, entry, STACK + 0x800, 0, 0);
    s.build()
}

fn run(bytes: &[u8]) -> Report {
    let d = parse(bytes).unwrap();
    verify(
        &d,
        &Resolver::with_std_fs(),
        "synthetic",
        &Options::default(),
    )
}

fn module_verdicts(r: &Report) -> BTreeMap<String, Verdict> {
    r.modules
        .iter()
        .map(|m| (m.path.clone(), m.verdict))
        .collect()
}

#[test]
fn clean_copy_of_the_binary_is_clean() {
    let (maps, entry, bid) = mappings();
    let r = run(&core_of(&maps, entry, BIN, false));
    assert_eq!(r.verdict, Overall::Clean, "{}: {:?}", r.summary, r.findings);
    let m = &r.modules[0];
    assert_eq!(m.verdict, Verdict::Clean, "{}", m.reason);
    assert_eq!(m.build_id.as_deref(), Some(talos_cfg::hex(&bid).as_str()));
    assert_eq!(m.load_bias, Some(BASE));
    assert_eq!(m.compared_bytes, m.code_bytes);
    assert!(m.pointers_checked > 10, "{}", m.pointers_checked);
    assert_eq!(r.threads.len(), 1);
    assert_eq!(r.threads[0].pc_check, PcCheck::InBlock);
    assert_eq!(r.threads[0].flow, FlowStatus::Ok);
    assert!(r.unchecked.is_empty(), "{:?}", r.unchecked);
    assert_eq!(
        r.threads[0]
            .location
            .function
            .as_deref()
            .map(|f| f.is_empty()),
        Some(false)
    );
    assert_eq!(Overall::Clean.exit_code(), 0);
}

#[test]
fn changed_code_byte_is_tampered_with_its_address() {
    let (mut maps, entry, _) = mappings();
    let text = maps.iter_mut().find(|m| m.flags & PF_X != 0).unwrap();
    let at = text.start + 0x123;
    text.bytes[0x123] ^= 0x40;
    let r = run(&core_of(&maps, entry, BIN, false));
    assert_eq!(r.verdict, Overall::Tampered);
    assert_eq!(r.verdict.exit_code(), 1);
    let m = &r.modules[0];
    assert_eq!(m.verdict, Verdict::Tampered);
    assert_eq!(m.differing_bytes, 1);
    assert_eq!(m.diffs.len(), 1);
    assert_eq!(m.diffs[0].addr, at);
    assert_eq!(m.diffs[0].link_addr, Some(at - BASE));
    assert_eq!(m.diffs[0].module_offset, at - BASE);
}

#[test]
fn code_left_out_of_the_dump_is_unverifiable() {
    let (maps, entry, _) = mappings();
    let r = run(&core_of(&maps, entry, BIN, true));
    assert_eq!(r.verdict, Overall::Unverifiable);
    assert_eq!(r.verdict.exit_code(), 3);
    let m = &r.modules[0];
    assert_eq!(m.verdict, Verdict::Unverifiable);
    assert_eq!(m.compared_bytes, 0);
    assert!(m.reason.contains("coredump_filter"), "{}", m.reason);
}

#[test]
fn other_build_id_in_memory_is_binary_changed() {
    let (mut maps, entry, bid) = mappings();
    let header = &mut maps[0].bytes;
    let at = header[..4096]
        .windows(bid.len())
        .position(|w| w == bid.as_slice())
        .unwrap();
    header[at] ^= 1;
    let r = run(&core_of(&maps, entry, BIN, false));
    assert_eq!(r.verdict, Overall::BinaryChanged);
    assert_eq!(r.modules[0].verdict, Verdict::BinaryChanged);
    assert!(r.modules[0].reason.contains("build-id"));
}

#[test]
fn missing_and_deleted_files() {
    let (maps, entry, _) = mappings();
    let r = run(&core_of(&maps, entry, "/nonexistent/true", false));
    assert_eq!(r.modules[0].verdict, Verdict::Unverifiable);
    assert!(r.modules[0].reason.contains("not found"));
    let r = run(&core_of(&maps, entry, "/usr/bin/true (deleted)", false));
    assert_eq!(r.modules[0].verdict, Verdict::BinaryChanged);
    assert!(r.modules[0].reason.contains("deleted"));
    // --binary brings the deleted file back.
    let built = core_of(&maps, entry, "/old/true (deleted)", false);
    let d = parse(&built).unwrap();
    let mut res = Resolver::with_std_fs();
    res.add_binary(std::path::Path::new(BIN)).unwrap();
    let r = verify(&d, &res, "synthetic", &Options::default());
    assert_eq!(module_verdicts(&r)["/old/true (deleted)"], Verdict::Clean);
}

#[test]
fn got_slot_pointing_to_the_stack_is_a_got_hook() {
    let (mut maps, entry, _) = mappings();
    let file = std::fs::read(BIN).unwrap();
    let img = talos_cfg::load(&file).unwrap();
    let (slot, name) = img.import_slots.iter().next().unwrap();
    let a = BASE + slot;
    let m = maps.iter_mut().find(|m| a >= m.start && a < m.end).unwrap();
    let o = (a - m.start) as usize;
    m.bytes[o..o + 8].copy_from_slice(&(STACK + 0x10).to_le_bytes());
    let r = run(&core_of(&maps, entry, BIN, false));
    assert_eq!(r.verdict, Overall::Findings);
    assert_eq!(r.findings.len(), 1, "{:?}", r.findings);
    let f = &r.findings[0];
    assert_eq!(f.kind, FindingKind::GotHook);
    assert_eq!(f.addr, a);
    assert_eq!(f.value, Some(STACK + 0x10));
    assert_eq!(f.symbol.as_deref(), Some(name.as_str()));
}

#[test]
fn pc_outside_code_is_a_flow_finding() {
    let (maps, _, _) = mappings();
    let bytes = core_of(&maps, STACK + 0x100, BIN, false);
    let r = run(&bytes);
    assert_eq!(r.verdict, Overall::Findings);
    let f: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Flow)
        .collect();
    assert_eq!(f.len(), 1, "{:?}", r.findings);
    assert_eq!(f[0].addr, STACK + 0x100);
    assert_eq!(f[0].thread, Some(42));
    assert_eq!(r.threads[0].pc_check, PcCheck::OutsideCode);
    assert_eq!(r.threads[0].flow, FlowStatus::Finding);
}

/// Every register zero (a zeroed `NT_PRSTATUS`): the thread is not checked,
/// and the verdict cannot be clean.
#[test]
fn zeroed_registers_are_not_checked_never_clean() {
    let (maps, entry, _) = mappings();
    let mut s = Synth::kernel();
    let mut nt = Vec::new();
    for m in &maps {
        s.load(m.start, m.end - m.start, m.flags, &m.bytes);
        nt.push((m.start, m.end, m.offset, BIN));
    }
    s.load(STACK, 0x1000, PF_R | PF_W, &[0u8; 0x1000]);
    s.nt_file(4096, &nt);
    s.auxv(&[(6, 4096), (9, entry)]);
    s.prstatus(42, entry, STACK + 0x800, 0, 0);
    s.prstatus(43, 0, 0, 0, 0);
    let r = run(&s.build());
    assert_eq!(r.verdict, Overall::Unverifiable, "{}", r.summary);
    assert_eq!(r.verdict.exit_code(), 3);
    let t = r.threads.iter().find(|t| t.tid == 43).unwrap();
    assert_eq!(t.pc_check, PcCheck::NoRegisters);
    assert_eq!(t.flow, FlowStatus::NotChecked);
    assert_eq!(t.not_checked, Some(Reason::NoRegisters));
    assert_eq!(r.unchecked.len(), 1, "{:?}", r.unchecked);
    assert_eq!(r.unchecked[0].part, Part::Thread);
    assert_eq!(r.unchecked[0].subject, "thread 43");
    assert!(r.summary.contains("thread 43"), "{}", r.summary);
    // The other thread is checked and ok.
    let ok = r.threads.iter().find(|t| t.tid == 42).unwrap();
    assert_eq!(ok.flow, FlowStatus::Ok);
}

/// A register-set note (`NT_FPREGSET`) with no `NT_PRSTATUS`: a thread whose
/// general registers were removed. Not checked, never clean.
#[test]
fn register_set_without_prstatus_is_a_thread_not_checked() {
    let (maps, entry, _) = mappings();
    let mut s = Synth::kernel();
    let mut nt = Vec::new();
    for m in &maps {
        s.load(m.start, m.end - m.start, m.flags, &m.bytes);
        nt.push((m.start, m.end, m.offset, BIN));
    }
    s.load(STACK, 0x1000, PF_R | PF_W, &[0u8; 0x1000]);
    s.nt_file(4096, &nt);
    s.auxv(&[(6, 4096), (9, entry)]);
    s.prstatus(42, entry, STACK + 0x800, 0, 0);
    s.note(b"CORE", 2, vec![0u8; 512]);
    s.note(b"CORE", 2, vec![0u8; 512]);
    let r = run(&s.build());
    assert_eq!(r.verdict, Overall::Unverifiable, "{}", r.summary);
    assert_eq!(r.unchecked.len(), 1, "{:?}", r.unchecked);
    assert_eq!(r.unchecked[0].reason, Reason::NoRegisters);
    assert!(r.unchecked[0].detail.contains("NT_FPREGSET"));
    // A core with no thread at all cannot show any execution flow.
    let mut s = Synth::kernel();
    for m in &maps {
        s.load(m.start, m.end - m.start, m.flags, &m.bytes);
    }
    s.nt_file(4096, &nt);
    s.auxv(&[(6, 4096), (9, entry)]);
    let r = run(&s.build());
    assert_eq!(r.verdict, Overall::Unverifiable, "{}", r.summary);
    assert_eq!(r.unchecked[0].part, Part::Dump);
}

/// A pc in the alignment padding between two functions (found from the
/// binary's `.eh_frame` FDEs and its bytes, not from talos's CFG): a flow
/// finding.
#[test]
fn pc_in_padding_between_functions_is_a_flow_finding() {
    let file = std::fs::read(BIN).unwrap();
    let img = talos_cfg::load(&file).unwrap();
    let text = img.sections.iter().find(|s| s.name == ".text").unwrap();
    let mut fdes = img.fdes.clone();
    fdes.sort_by_key(|f| f.start);
    let gap = fdes
        .windows(2)
        .map(|w| (w[0].start + w[0].len, w[1].start))
        .find(|&(end, next)| {
            next > end + 1
                && end >= text.addr
                && next <= text.addr + text.size
                && img.read(end, next - end).is_some_and(|b| {
                    b.iter().all(|&x| x == 0xcc) || b.first() == Some(&0x66) || b[0] == 0x90
                })
        })
        .map(|(end, _)| end)
        .expect("a padding gap between two FDEs of /usr/bin/true");
    let (maps, entry, _) = mappings();
    let pc = BASE + gap;
    let mut s = Synth::kernel();
    let mut nt = Vec::new();
    for m in &maps {
        s.load(m.start, m.end - m.start, m.flags, &m.bytes);
        nt.push((m.start, m.end, m.offset, BIN));
    }
    s.load(STACK, 0x1000, PF_R | PF_W, &[0u8; 0x1000]);
    s.nt_file(4096, &nt);
    s.auxv(&[(6, 4096), (9, entry)]);
    s.prstatus(42, pc, STACK + 0x800, 0, 0);
    let r = run(&s.build());
    assert_eq!(
        r.verdict,
        Overall::Findings,
        "{}: {:?}",
        r.summary,
        r.unchecked
    );
    let t = &r.threads[0];
    assert_eq!(t.pc_check, PcCheck::Padding, "{t:?}");
    assert_eq!(t.flow, FlowStatus::Finding);
    let f = &r.findings[0];
    assert_eq!(
        (f.kind, f.addr, f.thread),
        (FindingKind::Flow, pc, Some(42))
    );
    assert!(f.message.contains("padding"), "{}", f.message);
}

/// `--no-flow`: the threads are not checked, so the verdict is not clean.
#[test]
fn no_flow_is_not_clean() {
    let (maps, entry, _) = mappings();
    let bytes = core_of(&maps, entry, BIN, false);
    let d = parse(&bytes).unwrap();
    let opts = Options {
        flow: false,
        ..Options::default()
    };
    let r = verify(&d, &Resolver::with_std_fs(), "synthetic", &opts);
    assert_eq!(r.verdict, Overall::Unverifiable, "{}", r.summary);
    assert_eq!(r.threads[0].pc_check, PcCheck::NotRequested);
    assert_eq!(r.unchecked[0].reason, Reason::NotRequested);
}

/// More file-mapped modules than talos examines: the ones left over are a
/// not-checked item, not a silent note.
#[test]
fn module_cap_is_a_not_checked_item() {
    let n = talos_introspect::verify::MAX_MODULES + 3;
    let mut s = Synth::kernel();
    let paths: Vec<String> = (0..n).map(|i| format!("/nonexistent/lib{i}.so")).collect();
    let mut nt = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let start = 0x1000_0000 + (i as u64) * 0x1000;
        s.load(start, 0x1000, PF_R | PF_X, &[]);
        nt.push((start, start + 0x1000, 0x1000, p.as_str()));
    }
    s.nt_file(4096, &nt);
    s.prstatus(42, 0x1000_0000, STACK, 0, 0);
    let r = run(&s.build());
    assert_eq!(r.verdict, Overall::Unverifiable);
    let cap: Vec<_> = r
        .unchecked
        .iter()
        .filter(|u| u.reason == Reason::ModuleCap)
        .collect();
    assert_eq!(cap.len(), 1, "{:?}", r.summary);
    assert!(
        cap[0].detail.starts_with("3 file-mapped"),
        "{}",
        cap[0].detail
    );
}
