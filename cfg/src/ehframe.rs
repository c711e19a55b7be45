//! Just enough of `.eh_frame` to list frame description entries (FDEs):
//! the start and length of every function (or cold part) the compiler
//! described for unwinding. `strip` keeps `.eh_frame`, so this survives on
//! the binaries auditors receive.
//!
//! Layout (LSB core spec, "Exception Frames"): a sequence of records, each a
//! 4-byte length (0xffffffff: an 8-byte length follows; 0: terminator) and a
//! 4-byte CIE id (0 for a CIE, otherwise the distance back to the FDE's CIE).
//! A CIE's augmentation string says how the FDE's `pc_begin` is encoded.

use std::collections::BTreeMap;

use crate::image::Fde;
use crate::limits;

const DW_EH_PE_OMIT: u8 = 0xff;

/// A cursor over a byte slice that never panics.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Reader { data, pos }
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(*self.bytes(1)?.first()?)
    }

    fn uint(&mut self, n: usize) -> Option<u64> {
        let b = self.bytes(n)?;
        let mut buf = [0u8; 8];
        buf.get_mut(..n)?.copy_from_slice(b);
        Some(u64::from_le_bytes(buf))
    }

    fn uleb(&mut self) -> Option<u64> {
        let mut result: u64 = 0;
        let mut shift = 0u32;
        loop {
            let byte = self.u8()?;
            if shift < 64 {
                result |= u64::from(byte & 0x7f) << shift;
            }
            shift = shift.saturating_add(7);
            if byte & 0x80 == 0 {
                return Some(result);
            }
            if shift > 70 {
                return None;
            }
        }
    }

    fn sleb(&mut self) -> Option<i64> {
        let mut result: i64 = 0;
        let mut shift = 0u32;
        loop {
            let byte = self.u8()?;
            if shift < 64 {
                result |= i64::from(byte & 0x7f) << shift;
            }
            shift = shift.saturating_add(7);
            if byte & 0x80 == 0 {
                if shift < 64 && byte & 0x40 != 0 {
                    result |= -1i64 << shift;
                }
                return Some(result);
            }
            if shift > 70 {
                return None;
            }
        }
    }

    fn cstr(&mut self) -> Option<&'a [u8]> {
        let rest = self.data.get(self.pos..)?;
        let len = rest.iter().position(|&b| b == 0)?;
        let s = rest.get(..len)?;
        self.pos = self.pos.checked_add(len)?.checked_add(1)?;
        Some(s)
    }

    /// Read a pointer in DWARF EH encoding `enc`. `field_addr` is the
    /// virtual address of the field (for pc-relative encodings).
    fn encoded(&mut self, enc: u8, field_addr: u64, ptr_size: u8) -> Option<u64> {
        if enc == DW_EH_PE_OMIT {
            return None;
        }
        let value = match enc & 0x0f {
            0x00 => self.uint(usize::from(ptr_size))?,
            0x01 => self.uleb()?,
            0x02 => self.uint(2)?,
            0x03 => self.uint(4)?,
            0x04 => self.uint(8)?,
            0x09 => self.sleb()? as u64,
            0x0a => self.uint(2)? as u16 as i16 as i64 as u64,
            0x0b => self.uint(4)? as u32 as i32 as i64 as u64,
            0x0c => self.uint(8)?,
            _ => return None,
        };
        let value = match enc & 0x70 {
            0x00 => value,
            0x10 => value.wrapping_add(field_addr),
            // textrel/datarel/funcrel/aligned are not used by .eh_frame on
            // the supported targets.
            _ => return None,
        };
        Some(if ptr_size == 4 {
            value & 0xffff_ffff
        } else {
            value
        })
    }
}

#[derive(Clone, Copy)]
struct Cie {
    fde_encoding: u8,
    has_augmentation_data: bool,
    /// Encoding of the FDEs' LSDA pointer (`L` augmentation), if any.
    lsda_encoding: Option<u8>,
}

/// List the FDEs of an `.eh_frame` section loaded at `addr`.
///
/// Malformed records end the walk; everything read before them is kept
/// (the caller treats FDEs as hints that the graph builder checks).
#[must_use]
pub fn parse_eh_frame(data: &[u8], addr: u64, ptr_size: u8) -> Vec<Fde> {
    walk(data, addr, ptr_size)
        .into_iter()
        .map(|(f, _)| f)
        .collect()
}

/// Every FDE that names a language-specific data area, with the LSDA's
/// address.
#[must_use]
pub fn lsda_pointers(data: &[u8], addr: u64, ptr_size: u8) -> Vec<(Fde, u64)> {
    walk(data, addr, ptr_size)
        .into_iter()
        .filter_map(|(f, lsda)| Some((f, lsda?)))
        .collect()
}

/// The landing pads a GCC-format LSDA (`.gcc_except_table`, or the handler
/// data of a mingw `__gxx_personality_seh0` unwind entry) lists for the
/// function starting at `function`: the code the unwinder enters when an
/// exception passes a call site of the function (cleanups that run
/// destructors, `catch` blocks). `data` holds the LSDA at its start and
/// lies at virtual address `addr`. Malformed tables give what was read
/// before the fault.
///
/// Layout (the Itanium C++ ABI's exception tables, as GCC and LLVM write
/// them): `@LPStart` encoding (and value), `@TType` encoding (and offset),
/// call-site encoding, call-site table length, then per call site its
/// start, length, landing pad (relative to `@LPStart`, 0 for none) and
/// action.
#[must_use]
pub fn landing_pads(data: &[u8], addr: u64, function: u64, ptr_size: u8) -> Vec<u64> {
    let mut out = Vec::new();
    let mut r = Reader::new(data, 0);
    let Some(lp_enc) = r.u8() else { return out };
    let lp_start = if lp_enc == DW_EH_PE_OMIT {
        function
    } else {
        let field = addr.wrapping_add(r.pos as u64);
        match r.encoded(lp_enc, field, ptr_size) {
            Some(v) => v,
            None => return out,
        }
    };
    let Some(tt_enc) = r.u8() else { return out };
    if tt_enc != DW_EH_PE_OMIT && r.uleb().is_none() {
        return out;
    }
    let Some(cs_enc) = r.u8() else { return out };
    let Some(cs_len) = r.uleb().and_then(|l| usize::try_from(l).ok()) else {
        return out;
    };
    let Some(end) = r.pos.checked_add(cs_len).filter(|&e| e <= data.len()) else {
        return out;
    };
    // Call-site fields are offsets: read them with the encoding's format
    // only (no pc-relative application).
    let fmt = cs_enc & 0x0f;
    while r.pos < end && out.len() < limits::MAX_EH_RECORDS {
        let (Some(_start), Some(_len), Some(lp), Some(_action)) = (
            r.encoded(fmt, 0, ptr_size),
            r.encoded(fmt, 0, ptr_size),
            r.encoded(fmt, 0, ptr_size),
            r.uleb(),
        ) else {
            break;
        };
        if lp != 0 {
            out.push(lp_start.wrapping_add(lp));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// How many records (CIEs and FDEs) the section holds, counted up to one
/// past [`limits::MAX_EH_RECORDS`]: more than the cap means the walk stopped
/// before the end.
#[must_use]
pub fn record_count(data: &[u8]) -> usize {
    let mut pos = 0usize;
    let mut n = 0usize;
    while n <= limits::MAX_EH_RECORDS {
        let mut r = Reader::new(data, pos);
        let Some(len32) = r.uint(4) else { break };
        if len32 == 0 {
            break;
        }
        let len = if len32 == 0xffff_ffff {
            match r.uint(8) {
                Some(l) => l,
                None => break,
            }
        } else {
            len32
        };
        let Some(next) = usize::try_from(len).ok().and_then(|l| r.pos.checked_add(l)) else {
            break;
        };
        if next > data.len() {
            break;
        }
        n = n.saturating_add(1);
        pos = next;
    }
    n
}

/// The starts of the FDEs that name a language-specific data area (LSDA):
/// functions with exception landing pads, code the unwinder enters that no
/// branch reaches.
#[must_use]
pub fn functions_with_landing_pads(data: &[u8], addr: u64, ptr_size: u8) -> Vec<u64> {
    let mut out: Vec<u64> = walk(data, addr, ptr_size)
        .into_iter()
        .filter(|(_, lsda)| lsda.is_some())
        .map(|(f, _)| f.start)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn walk(data: &[u8], addr: u64, ptr_size: u8) -> Vec<(Fde, Option<u64>)> {
    let mut out = Vec::new();
    let mut cies: BTreeMap<usize, Option<Cie>> = BTreeMap::new();
    let mut pos = 0usize;
    for _ in 0..limits::MAX_EH_RECORDS {
        let mut r = Reader::new(data, pos);
        let Some(len32) = r.uint(4) else { break };
        if len32 == 0 {
            break;
        }
        let len = if len32 == 0xffff_ffff {
            match r.uint(8) {
                Some(l) => l,
                None => break,
            }
        } else {
            len32
        };
        let body_start = r.pos;
        let Some(next) = usize::try_from(len)
            .ok()
            .and_then(|l| body_start.checked_add(l))
        else {
            break;
        };
        if next > data.len() {
            break;
        }
        let id_pos = r.pos;
        let Some(id) = r.uint(4) else { break };
        if id == 0 {
            cies.insert(pos, parse_cie(&mut r, ptr_size));
        } else if let Some(cie_pos) = id_pos.checked_sub(id as usize) {
            let cie = match cies.get(&cie_pos) {
                Some(c) => *c,
                None => {
                    let c = parse_cie_at(data, cie_pos, ptr_size);
                    cies.insert(cie_pos, c);
                    c
                }
            };
            if let Some(cie) = cie {
                let field = addr.wrapping_add(r.pos as u64);
                if let Some(start) = r.encoded(cie.fde_encoding, field, ptr_size)
                    && let Some(len) = r.encoded(cie.fde_encoding & 0x0f, 0, ptr_size)
                    && start != 0
                {
                    let mut lsda = None;
                    if cie.has_augmentation_data
                        && let Some(aug_len) = r.uleb()
                        && aug_len > 0
                        && let Some(enc) = cie.lsda_encoding
                    {
                        let field = addr.wrapping_add(r.pos as u64);
                        lsda = r.encoded(enc, field, ptr_size).filter(|&p| p != 0);
                    }
                    out.push((Fde { start, len }, lsda));
                }
            }
        }
        pos = next;
    }
    out
}

fn parse_cie_at(data: &[u8], pos: usize, ptr_size: u8) -> Option<Cie> {
    let mut r = Reader::new(data, pos);
    let len = r.uint(4)?;
    if len == 0xffff_ffff {
        r.uint(8)?;
    }
    if r.uint(4)? != 0 {
        return None;
    }
    parse_cie(&mut r, ptr_size)
}

fn parse_cie(r: &mut Reader<'_>, ptr_size: u8) -> Option<Cie> {
    let version = r.u8()?;
    let aug = r.cstr()?;
    if aug.windows(2).any(|w| w == b"eh") {
        r.bytes(usize::from(ptr_size))?;
    }
    if version >= 4 {
        // address_size, segment_selector_size
        r.bytes(2)?;
    }
    r.uleb()?; // code alignment
    r.sleb()?; // data alignment
    if version == 1 {
        r.u8()?;
    } else {
        r.uleb()?;
    }
    let mut cie = Cie {
        fde_encoding: 0, // absptr
        has_augmentation_data: false,
        lsda_encoding: None,
    };
    if aug.first() == Some(&b'z') {
        cie.has_augmentation_data = true;
        let aug_len = usize::try_from(r.uleb()?).ok()?;
        let aug_end = r.pos.checked_add(aug_len)?;
        for &c in aug.iter().skip(1) {
            match c {
                b'R' => cie.fde_encoding = r.u8()?,
                b'L' => cie.lsda_encoding = Some(r.u8()?),
                b'P' => {
                    let enc = r.u8()?;
                    r.encoded(enc & 0x7f, 0, ptr_size)?;
                }
                b'S' | b'B' | b'G' => {}
                _ => break,
            }
        }
        r.pos = aug_end;
    }
    Some(cie)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a minimal .eh_frame: one CIE (augmentation "zR", pcrel|sdata4)
    /// and one FDE, by hand, without reusing the parser's types.
    fn synth(addr: u64, func: u64, len: u32) -> Vec<u8> {
        let mut cie = vec![];
        cie.extend_from_slice(&0u32.to_le_bytes()); // CIE id
        cie.push(1); // version
        cie.extend_from_slice(b"zR\0");
        cie.push(1); // code align
        cie.push(0x78); // data align -8
        cie.push(16); // return register
        cie.push(1); // augmentation data length
        cie.push(0x1b); // pcrel | sdata4
        while (cie.len() + 4) % 8 != 0 {
            cie.push(0);
        }
        let mut out = vec![];
        out.extend_from_slice(&(cie.len() as u32).to_le_bytes());
        out.extend_from_slice(&cie);
        let fde_pos = out.len();
        let mut fde = vec![];
        fde.extend_from_slice(&((fde_pos + 4) as u32).to_le_bytes()); // CIE pointer
        let field_addr = addr + (fde_pos + 8) as u64;
        fde.extend_from_slice(&((func.wrapping_sub(field_addr)) as u32).to_le_bytes());
        fde.extend_from_slice(&len.to_le_bytes());
        fde.push(0); // augmentation length
        while (fde.len() + 4) % 8 != 0 {
            fde.push(0);
        }
        out.extend_from_slice(&(fde.len() as u32).to_le_bytes());
        out.extend_from_slice(&fde);
        out.extend_from_slice(&0u32.to_le_bytes());
        out
    }

    #[test]
    fn reads_pcrel_fde() {
        let data = synth(0x2000, 0x1130, 0x42);
        assert_eq!(
            parse_eh_frame(&data, 0x2000, 8),
            vec![Fde {
                start: 0x1130,
                len: 0x42
            }]
        );
    }

    #[test]
    fn truncated_records_end_the_walk() {
        let data = synth(0x2000, 0x1130, 0x42);
        for cut in 0..data.len() {
            let fdes = parse_eh_frame(&data[..cut], 0x2000, 8);
            assert!(fdes.len() <= 1);
        }
    }
}
