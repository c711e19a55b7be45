//! A test-only builder of ELF core files, written from the format
//! description (System V gABI, `linux/elfcore.h`, `fs/binfmt_elf.c`) and
//! sharing no code or types with talos's reader: the two can disagree, and
//! then a test fails.
//!
//! Two layouts: `kernel()` (PT_NOTE first and right after the program
//! headers, segments page-aligned, no section headers) and `gdb()` (segments
//! first at unaligned offsets with `p_align` 1, notes at the end of the file,
//! a section header table, and gdb's target-description note).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Kernel,
    Gdb,
}

#[derive(Clone)]
pub struct Load {
    pub vaddr: u64,
    pub memsz: u64,
    pub flags: u32,
    pub data: Vec<u8>,
}

#[derive(Clone)]
pub struct Synth {
    pub layout: Layout,
    pub machine: u16,
    pub loads: Vec<Load>,
    pub notes: Vec<(Vec<u8>, u32, Vec<u8>)>,
}

fn le16(v: u16) -> [u8; 2] {
    v.to_le_bytes()
}
fn le32(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}
fn le64(v: u64) -> [u8; 8] {
    v.to_le_bytes()
}

impl Synth {
    pub fn kernel() -> Self {
        Synth {
            layout: Layout::Kernel,
            machine: 62,
            loads: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn gdb() -> Self {
        let mut s = Synth {
            layout: Layout::Gdb,
            ..Synth::kernel()
        };
        s.notes
            .push((b"GDB".to_vec(), 0xff00_0000, b"<target/>\0".to_vec()));
        s
    }

    pub fn load(&mut self, vaddr: u64, memsz: u64, flags: u32, data: &[u8]) -> &mut Self {
        self.loads.push(Load {
            vaddr,
            memsz,
            flags,
            data: data.to_vec(),
        });
        self
    }

    pub fn note(&mut self, name: &[u8], n_type: u32, desc: Vec<u8>) -> &mut Self {
        self.notes.push((name.to_vec(), n_type, desc));
        self
    }

    /// `NT_PRSTATUS` for x86-64: 336 bytes, pr_pid at 32, pr_reg at 112.
    pub fn prstatus(&mut self, tid: u32, rip: u64, rsp: u64, rbp: u64, fs_base: u64) -> &mut Self {
        let mut d = vec![0u8; 336];
        d[12..14].copy_from_slice(&le16(6)); // pr_cursig
        d[32..36].copy_from_slice(&le32(tid));
        let regs = 112;
        let set = |d: &mut Vec<u8>, i: usize, v: u64| {
            d[regs + i * 8..regs + i * 8 + 8].copy_from_slice(&le64(v));
        };
        set(&mut d, 4, rbp); // rbp
        set(&mut d, 16, rip); // rip
        set(&mut d, 19, rsp); // rsp
        set(&mut d, 21, fs_base); // fs_base
        self.note(b"CORE", 1, d)
    }

    /// `NT_PRPSINFO`: 136 bytes.
    pub fn prpsinfo(&mut self, pid: u32, fname: &str, args: &str) -> &mut Self {
        let mut d = vec![0u8; 136];
        d[16..20].copy_from_slice(&le32(1000)); // uid
        d[20..24].copy_from_slice(&le32(100)); // gid
        d[24..28].copy_from_slice(&le32(pid));
        d[28..32].copy_from_slice(&le32(1));
        d[40..40 + fname.len().min(15)].copy_from_slice(&fname.as_bytes()[..fname.len().min(15)]);
        d[56..56 + args.len().min(79)].copy_from_slice(&args.as_bytes()[..args.len().min(79)]);
        self.note(b"CORE", 3, d)
    }

    /// `NT_AUXV`, terminated by `AT_NULL`.
    pub fn auxv(&mut self, pairs: &[(u64, u64)]) -> &mut Self {
        let mut d = Vec::new();
        for (k, v) in pairs.iter().chain(std::iter::once(&(0, 0))) {
            d.extend_from_slice(&le64(*k));
            d.extend_from_slice(&le64(*v));
        }
        self.note(b"CORE", 6, d)
    }

    /// `NT_FILE` with offsets given in bytes, written in `page_size` units.
    pub fn nt_file(&mut self, page_size: u64, maps: &[(u64, u64, u64, &str)]) -> &mut Self {
        let mut d = Vec::new();
        d.extend_from_slice(&le64(maps.len() as u64));
        d.extend_from_slice(&le64(page_size));
        for (s, e, off, _) in maps {
            d.extend_from_slice(&le64(*s));
            d.extend_from_slice(&le64(*e));
            d.extend_from_slice(&le64(off / page_size));
        }
        for (_, _, _, p) in maps {
            d.extend_from_slice(p.as_bytes());
            d.push(0);
        }
        self.note(b"CORE", 0x4649_4c45, d)
    }

    pub fn siginfo(&mut self, signo: i32) -> &mut Self {
        let mut d = vec![0u8; 128];
        d[0..4].copy_from_slice(&signo.to_le_bytes());
        self.note(b"CORE", 0x5349_4749, d)
    }

    fn note_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, ty, desc) in &self.notes {
            out.extend_from_slice(&le32(name.len() as u32 + 1));
            out.extend_from_slice(&le32(desc.len() as u32));
            out.extend_from_slice(&le32(*ty));
            out.extend_from_slice(name);
            out.push(0);
            while out.len() % 4 != 0 {
                out.push(0);
            }
            out.extend_from_slice(desc);
            while out.len() % 4 != 0 {
                out.push(0);
            }
        }
        out
    }

    pub fn build(&self) -> Vec<u8> {
        let notes = self.note_bytes();
        let phnum = 1 + self.loads.len();
        let ph_end = 64 + 56 * phnum;
        // Placement: (offset of notes, offsets of loads, section headers).
        let mut load_offs = Vec::new();
        let notes_off;
        let mut end;
        match self.layout {
            Layout::Kernel => {
                notes_off = ph_end;
                end = (notes_off + notes.len()).div_ceil(4096) * 4096;
                for l in &self.loads {
                    load_offs.push(end);
                    end = (end + l.data.len()).div_ceil(4096) * 4096;
                }
            }
            Layout::Gdb => {
                end = ph_end + 0x10; // gdb's offsets are not aligned
                for l in &self.loads {
                    load_offs.push(end);
                    end += l.data.len();
                }
                notes_off = end;
                end += notes.len();
            }
        }
        let shoff = if self.layout == Layout::Gdb { end } else { 0 };
        let total = if self.layout == Layout::Gdb {
            end + 64 * 2
        } else {
            end
        };
        let mut f = vec![0u8; total];
        f[0..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[6] = 1;
        f[16..18].copy_from_slice(&le16(4));
        f[18..20].copy_from_slice(&le16(self.machine));
        f[20..24].copy_from_slice(&le32(1));
        f[32..40].copy_from_slice(&le64(64));
        f[40..48].copy_from_slice(&le64(shoff as u64));
        f[52..54].copy_from_slice(&le16(64));
        f[54..56].copy_from_slice(&le16(56));
        f[56..58].copy_from_slice(&le16(phnum as u16));
        f[58..60].copy_from_slice(&le16(64));
        f[60..62].copy_from_slice(&le16(if self.layout == Layout::Gdb { 2 } else { 0 }));
        let mut ph = |i: usize, t: u32, fl: u32, off: usize, va: u64, fs: u64, ms: u64, al: u64| {
            let b = 64 + 56 * i;
            f[b..b + 4].copy_from_slice(&le32(t));
            f[b + 4..b + 8].copy_from_slice(&le32(fl));
            f[b + 8..b + 16].copy_from_slice(&le64(off as u64));
            f[b + 16..b + 24].copy_from_slice(&le64(va));
            f[b + 32..b + 40].copy_from_slice(&le64(fs));
            f[b + 40..b + 48].copy_from_slice(&le64(ms));
            f[b + 48..b + 56].copy_from_slice(&le64(al));
        };
        let align = if self.layout == Layout::Gdb { 1 } else { 4096 };
        ph(
            0,
            4,
            0,
            notes_off,
            0,
            notes.len() as u64,
            0,
            if self.layout == Layout::Gdb { 1 } else { 4 },
        );
        for (i, (l, off)) in self.loads.iter().zip(&load_offs).enumerate() {
            ph(
                i + 1,
                1,
                l.flags,
                *off,
                l.vaddr,
                l.data.len() as u64,
                l.memsz,
                align,
            );
        }
        f[notes_off..notes_off + notes.len()].copy_from_slice(&notes);
        for (l, off) in self.loads.iter().zip(&load_offs) {
            f[*off..*off + l.data.len()].copy_from_slice(&l.data);
        }
        f
    }
}
