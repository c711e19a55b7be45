//! Writing a [`Dump`] as an ELF core that gdb and talos both read.
//!
//! Layout (like the kernel's): ELF header, program headers (`PT_NOTE`
//! first, then one `PT_LOAD` per region, `p_offset` page-aligned, `p_filesz`
//! the bytes held, `p_memsz` the region size), the notes, then the bytes.
//! Notes: `NT_PRSTATUS` per thread (the main thread first), `NT_PRPSINFO`,
//! `NT_AUXV`, `NT_FILE` (page size 4096 when every offset is page-aligned,
//! else 1), and a `TALOS` note naming the writer and how the memory was
//! acquired. More than 65534 program headers use `PN_XNUM`.

use std::io::Write;

use crate::dump::{Arch, Dump};
use crate::source::core::{
    NT_AUXV, NT_FILE, NT_PRPSINFO, NT_PRSTATUS, NT_SIGINFO, NT_TALOS_SNAPSHOT, PRSTATUS_REGS,
    prstatus_reg_count,
};

fn machine(arch: Arch) -> u16 {
    match arch {
        Arch::X86_64 => 62,
        Arch::Aarch64 => 183,
        Arch::Riscv64 => 243,
        Arch::X86 => 3,
    }
}

fn note(out: &mut Vec<u8>, name: &[u8], n_type: u32, desc: &[u8]) {
    let namesz = name.len() + 1;
    out.extend_from_slice(&(namesz as u32).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&n_type.to_le_bytes());
    out.extend_from_slice(name);
    out.push(0);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out.extend_from_slice(desc);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn put(buf: &mut [u8], off: usize, bytes: &[u8]) {
    if let Some(dst) = off
        .checked_add(bytes.len())
        .and_then(|end| buf.get_mut(off..end))
    {
        dst.copy_from_slice(bytes);
    }
}

/// The notes of a snapshot.
fn notes_of(dump: &Dump<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let pid = dump.process.as_ref().map_or(0, |p| p.pid);
    let ppid = dump.process.as_ref().map_or(0, |p| p.ppid);
    let nregs = prstatus_reg_count(dump.arch);
    let prstatus = |t: &crate::dump::Thread| {
        let mut d = vec![0u8; PRSTATUS_REGS + nregs * 8 + 8];
        put(&mut d, 12, &t.signal.to_le_bytes());
        put(&mut d, 32, &t.tid.to_le_bytes());
        put(&mut d, 36, &ppid.to_le_bytes());
        put(&mut d, 40, &pid.to_le_bytes());
        put(&mut d, 44, &pid.to_le_bytes());
        for (i, w) in t.regs.words.iter().take(nregs).enumerate() {
            put(&mut d, PRSTATUS_REGS + i * 8, &w.to_le_bytes());
        }
        d
    };
    let mut threads = dump.threads.iter();
    if let Some(t) = threads.next() {
        note(&mut out, b"CORE", NT_PRSTATUS, &prstatus(t));
    }
    if let Some(p) = &dump.process {
        let mut d = vec![0u8; 136];
        put(&mut d, 1, b"R");
        put(&mut d, 16, &p.uid.to_le_bytes());
        put(&mut d, 20, &p.gid.to_le_bytes());
        put(&mut d, 24, &p.pid.to_le_bytes());
        put(&mut d, 28, &p.ppid.to_le_bytes());
        put(&mut d, 32, &p.pid.to_le_bytes());
        put(&mut d, 36, &p.pid.to_le_bytes());
        let name = p.name.as_bytes();
        put(&mut d, 40, name.get(..name.len().min(15)).unwrap_or(&[]));
        let args = p.args.as_bytes();
        put(&mut d, 56, args.get(..args.len().min(79)).unwrap_or(&[]));
        note(&mut out, b"CORE", NT_PRPSINFO, &d);
    }
    if !dump.auxv.is_empty() {
        let mut d = Vec::with_capacity((dump.auxv.len() + 1) * 16);
        for (k, v) in dump.auxv.iter().chain(std::iter::once(&(0, 0))) {
            d.extend_from_slice(&k.to_le_bytes());
            d.extend_from_slice(&v.to_le_bytes());
        }
        note(&mut out, b"CORE", NT_AUXV, &d);
    }
    if !dump.file_mappings.is_empty() {
        let page: u64 = if dump.file_mappings.iter().all(|m| m.offset % 4096 == 0) {
            4096
        } else {
            1
        };
        let mut d = Vec::new();
        d.extend_from_slice(&(dump.file_mappings.len() as u64).to_le_bytes());
        d.extend_from_slice(&page.to_le_bytes());
        for m in &dump.file_mappings {
            d.extend_from_slice(&m.start.to_le_bytes());
            d.extend_from_slice(&m.end.to_le_bytes());
            d.extend_from_slice(&(m.offset / page).to_le_bytes());
        }
        for m in &dump.file_mappings {
            d.extend_from_slice(m.path.as_bytes());
            d.push(0);
        }
        note(&mut out, b"CORE", NT_FILE, &d);
    }
    if let Some(sig) = dump.signal {
        let mut d = vec![0u8; 128];
        put(&mut d, 0, &sig.to_le_bytes());
        note(&mut out, b"CORE", NT_SIGINFO, &d);
    }
    for t in threads {
        note(&mut out, b"CORE", NT_PRSTATUS, &prstatus(t));
    }
    let mut text = format!(
        "talos snapshot {}\nsource {}\n",
        env!("CARGO_PKG_VERSION"),
        dump.source.name()
    );
    for n in &dump.notes {
        text.push_str(n);
        text.push('\n');
    }
    note(&mut out, b"TALOS", NT_TALOS_SNAPSHOT, text.as_bytes());
    out
}

fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a).saturating_mul(a)
}

/// Write `dump` as an ELF core to `out`.
///
/// # Errors
/// When writing fails.
pub fn write_core<W: Write>(dump: &Dump<'_>, out: &mut W) -> std::io::Result<()> {
    const PAGE: u64 = 4096;
    let notes = notes_of(dump);
    let regions: Vec<_> = dump.regions.iter().filter(|r| r.end > r.start).collect();
    let phnum = 1 + regions.len() as u64;
    let xnum = phnum >= 0xffff;
    let phoff = 64u64;
    let notes_off = phoff + phnum * 56;
    let mut data_off = align_up(notes_off + notes.len() as u64, PAGE);
    let mut loads: Vec<(u64, u64)> = Vec::with_capacity(regions.len()); // (offset, filesz)
    for r in &regions {
        let filesz = (r.bytes.len() as u64).min(r.len());
        loads.push((data_off, filesz));
        data_off = align_up(data_off + filesz, PAGE);
    }
    let shoff = if xnum { data_off } else { 0 };

    let mut h = vec![0u8; 64];
    put(&mut h, 0, b"\x7fELF");
    put(&mut h, 4, &[2, 1, 1, 0]); // 64-bit, little-endian, version 1, SYSV
    put(&mut h, 16, &4u16.to_le_bytes()); // ET_CORE
    put(&mut h, 18, &machine(dump.arch).to_le_bytes());
    put(&mut h, 20, &1u32.to_le_bytes());
    put(&mut h, 32, &phoff.to_le_bytes());
    put(&mut h, 40, &shoff.to_le_bytes());
    put(&mut h, 52, &64u16.to_le_bytes()); // e_ehsize
    put(&mut h, 54, &56u16.to_le_bytes()); // e_phentsize
    let e_phnum: u16 = if xnum { 0xffff } else { phnum as u16 };
    put(&mut h, 56, &e_phnum.to_le_bytes());
    put(&mut h, 58, &64u16.to_le_bytes()); // e_shentsize
    put(&mut h, 60, &u16::from(xnum).to_le_bytes()); // e_shnum
    out.write_all(&h)?;

    let phdr =
        |p_type: u32, flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64, align: u64| {
            let mut p = [0u8; 56];
            put(&mut p, 0, &p_type.to_le_bytes());
            put(&mut p, 4, &flags.to_le_bytes());
            put(&mut p, 8, &offset.to_le_bytes());
            put(&mut p, 16, &vaddr.to_le_bytes());
            put(&mut p, 32, &filesz.to_le_bytes());
            put(&mut p, 40, &memsz.to_le_bytes());
            put(&mut p, 48, &align.to_le_bytes());
            p
        };
    out.write_all(&phdr(4, 4, notes_off, 0, notes.len() as u64, 0, 4))?;
    for (r, (off, filesz)) in regions.iter().zip(&loads) {
        let flags =
            u32::from(r.perms.read) * 4 + u32::from(r.perms.write) * 2 + u32::from(r.perms.execute);
        out.write_all(&phdr(1, flags, *off, r.start, *filesz, r.len(), PAGE))?;
    }
    out.write_all(&notes)?;
    let mut pos = notes_off + notes.len() as u64;
    let zeros = [0u8; 4096];
    let pad_to = |out: &mut W, pos: &mut u64, target: u64| -> std::io::Result<()> {
        while *pos < target {
            let n = usize::try_from((target - *pos).min(4096)).unwrap_or(4096);
            out.write_all(zeros.get(..n).unwrap_or(&zeros))?;
            *pos += n as u64;
        }
        Ok(())
    };
    for (r, (off, filesz)) in regions.iter().zip(&loads) {
        pad_to(out, &mut pos, *off)?;
        // `filesz` is at most `r.bytes.len()` (above), so this always
        // holds; writing fewer bytes than the program header declares would
        // shift every later region of the core.
        let bytes = usize::try_from(*filesz)
            .ok()
            .and_then(|n| r.bytes.get(..n))
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "region {:#x}-{:#x}: {filesz} bytes declared, {} held",
                        r.start,
                        r.end,
                        r.bytes.len()
                    ),
                )
            })?;
        out.write_all(bytes)?;
        pos += *filesz;
    }
    if xnum {
        pad_to(out, &mut pos, shoff)?;
        let mut sh = [0u8; 64];
        // sh_info holds the real program header count (PN_XNUM); a count
        // past u32 cannot be written as one.
        let sh_info = u32::try_from(phnum).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{phnum} program headers do not fit an ELF core"),
            )
        })?;
        put(&mut sh, 44, &sh_info.to_le_bytes());
        out.write_all(&sh)?;
    }
    out.flush()
}
