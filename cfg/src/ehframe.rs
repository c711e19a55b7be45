//! Just enough of `.eh_frame` to list frame description entries (FDEs):
//! the start and length of every function (or cold part) the compiler
//! described for unwinding, and the language-specific data areas (LSDAs)
//! that list exception landing pads. `strip` keeps `.eh_frame`, so this
//! survives on the binaries auditors receive.
//!
//! gimli parses the common information entries (CIEs) and the FDEs. The
//! walk over the records (LSB core spec, "Exception Frames": a 4-byte
//! length, 0xffffffff then an 8-byte one, 0 ending the section) stays here,
//! because gimli's own iterator stops at the first record it cannot parse,
//! and a bad record here only loses itself (and the FDEs that name a bad
//! CIE): a length that runs past the section ends the walk. gimli does not
//! parse LSDAs; [`landing_pads`] reads the call-site table on gimli's
//! reader.

use std::borrow::Cow;
use std::collections::HashMap;

use gimli::{
    BaseAddresses, CommonInformationEntry, EhFrame, EhFrameOffset, EndianSlice, LittleEndian,
    Reader as _, UnwindSection,
};

use crate::image::Fde;
use crate::limits;

const DW_EH_PE_OMIT: u8 = 0xff;

type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// One record of the section: where it starts, where its body (after the
/// length) starts, and one past its end.
#[derive(Clone, Copy)]
struct Record {
    start: usize,
    body: usize,
    end: usize,
}

/// The records of `data` in order, up to the terminator or the first whose
/// length runs past the section (or does not read).
fn records(data: &[u8]) -> impl Iterator<Item = Record> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let rest = data.get(pos..)?;
        let mut r = Slice::new(rest, LittleEndian);
        let (len, _) = r.read_initial_length().ok()?;
        if len == 0 {
            return None;
        }
        let body = pos.checked_add(rest.len().checked_sub(r.len())?)?;
        let end = body.checked_add(len).filter(|&e| e <= data.len())?;
        let record = Record {
            start: pos,
            body,
            end,
        };
        pos = end;
        Some(record)
    })
}

/// A pointer in DWARF EH encoding `enc` read from `r`; `field_addr` is the
/// virtual address of the field (for pc-relative encodings). Only the
/// absolute and pc-relative applications: the others are not used by the
/// supported targets' exception tables.
fn encoded(r: &mut Slice<'_>, enc: u8, field_addr: u64, ptr_size: u8) -> Option<u64> {
    if enc == DW_EH_PE_OMIT {
        return None;
    }
    let value = match enc & 0x0f {
        0x00 => r.read_address(ptr_size).ok()?,
        0x01 => r.read_uleb128().ok()?,
        0x02 => u64::from(r.read_u16().ok()?),
        0x03 => u64::from(r.read_u32().ok()?),
        0x04 | 0x0c => r.read_u64().ok()?,
        0x09 => r.read_sleb128().ok()? as u64,
        0x0a => i64::from(r.read_i16().ok()?) as u64,
        0x0b => i64::from(r.read_i32().ok()?) as u64,
        _ => return None,
    };
    let value = match enc & 0x70 {
        0x00 => value,
        0x10 => value.wrapping_add(field_addr),
        _ => return None,
    };
    Some(if ptr_size == 4 {
        value & 0xffff_ffff
    } else {
        value
    })
}

/// List the FDEs of an `.eh_frame` section loaded at `addr`.
///
/// Malformed records are skipped, a record running past the section ends
/// the walk; everything read before is kept (the caller treats FDEs as
/// hints that the graph builder checks).
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
    let mut r = Slice::new(data, LittleEndian);
    let at = |r: &Slice<'_>| data.len().saturating_sub(r.len());
    let Ok(lp_enc) = r.read_u8() else { return out };
    let lp_start = if lp_enc == DW_EH_PE_OMIT {
        function
    } else {
        let field = addr.wrapping_add(at(&r) as u64);
        match encoded(&mut r, lp_enc, field, ptr_size) {
            Some(v) => v,
            None => return out,
        }
    };
    let Ok(tt_enc) = r.read_u8() else { return out };
    if tt_enc != DW_EH_PE_OMIT && r.read_uleb128().is_err() {
        return out;
    }
    let Ok(cs_enc) = r.read_u8() else { return out };
    let Some(cs_len) = r.read_uleb128().ok().and_then(|l| usize::try_from(l).ok()) else {
        return out;
    };
    let Some(end) = at(&r).checked_add(cs_len).filter(|&e| e <= data.len()) else {
        return out;
    };
    // Call-site fields are offsets: read them with the encoding's format
    // only (no pc-relative application).
    let fmt = cs_enc & 0x0f;
    while at(&r) < end && out.len() < limits::MAX_EH_RECORDS {
        let (Some(_start), Some(_len), Some(lp), Ok(_action)) = (
            encoded(&mut r, fmt, 0, ptr_size),
            encoded(&mut r, fmt, 0, ptr_size),
            encoded(&mut r, fmt, 0, ptr_size),
            r.read_uleb128(),
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
    records(data)
        .take(limits::MAX_EH_RECORDS.saturating_add(1))
        .count()
}

/// The starts of the FDEs that name a language-specific data area (LSDA):
/// functions with exception landing pads, code the unwinder enters that no
/// branch reaches.
#[must_use]
pub fn functions_with_landing_pads(data: &[u8], addr: u64, ptr_size: u8) -> Vec<u64> {
    let mut out: Vec<u64> = lsda_pointers(data, addr, ptr_size)
        .into_iter()
        .map(|(f, _)| f.start)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Every FDE (start and length; the start not 0) with its LSDA's address
/// when it names one.
fn walk(data: &[u8], addr: u64, ptr_size: u8) -> Vec<(Fde, Option<u64>)> {
    walk_readable(&readable(data), addr, ptr_size)
}

/// [`walk`] over a section gimli can read ([`readable`]).
fn walk_readable<'s>(data: &'s [u8], addr: u64, ptr_size: u8) -> Vec<(Fde, Option<u64>)> {
    let mut eh = EhFrame::new(data, LittleEndian);
    eh.set_address_size(ptr_size);
    let bases = BaseAddresses::default().set_eh_frame(addr);
    // Each CIE is parsed once, when the first FDE names it.
    let mut cies: HashMap<EhFrameOffset, Option<CommonInformationEntry<Slice<'s>>>> =
        HashMap::new();
    let mut get_cie = |eh: &EhFrame<Slice<'s>>, bases: &BaseAddresses, at: EhFrameOffset| {
        cies.entry(at)
            .or_insert_with(|| eh.cie_from_offset(bases, at).ok())
            .clone()
            .ok_or(gimli::Error::NoEntryAtGivenOffset(at.0 as u64))
    };
    let mut out = Vec::new();
    for rec in records(data).take(limits::MAX_EH_RECORDS) {
        // A CIE is not an FDE: gimli says so, and it is skipped.
        let Ok(fde) = eh
            .partial_fde_from_offset(&bases, EhFrameOffset(rec.start))
            .and_then(|p| p.parse(&mut get_cie))
        else {
            continue;
        };
        let start = fde.initial_address();
        let len = if ptr_size == 4 {
            fde.len() & 0xffff_ffff
        } else {
            fde.len()
        };
        if start == 0 {
            continue;
        }
        let lsda = fde.lsda().map(|p| p.pointer()).filter(|&p| p != 0);
        out.push((Fde { start, len }, lsda));
    }
    out
}

/// `data`, or a copy gimli can read: gimli (0.34) refuses the CIE
/// augmentations `B` (AArch64 return addresses signed with the B key) and
/// `G` (MTE-tagged frames) that GCC and LLVM write. Both carry no data and
/// say nothing about where functions lie, so the copy has them replaced by
/// `S` (no data either, which gimli reads): no byte moves, and every
/// pc-relative pointer reads as before.
fn readable(data: &[u8]) -> Cow<'_, [u8]> {
    let mut out = Cow::Borrowed(data);
    for rec in records(data).take(limits::MAX_EH_RECORDS) {
        // A CIE: id 0, then the version byte, then the augmentation string.
        let is_cie = data.get(rec.body..rec.end).and_then(|b| b.get(..4)) == Some(&[0u8; 4][..]);
        let aug = rec.body.saturating_add(5);
        let Some(text) = data.get(aug..rec.end) else {
            continue;
        };
        let text = text.split(|&b| b == 0).next().unwrap_or_default();
        if !is_cie || text.first() != Some(&b'z') || !text.iter().any(|c| b"BG".contains(c)) {
            continue;
        }
        if let Some(field) = out.to_mut().get_mut(aug..aug.saturating_add(text.len())) {
            for c in field.iter_mut().filter(|c| b"BG".contains(c)) {
                *c = b'S';
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a minimal .eh_frame: one CIE (augmentation `aug`, which must
    /// start "zR"; pcrel|sdata4) and one FDE, by hand, without reusing the
    /// parser's types.
    fn synth_with(aug: &[u8], addr: u64, func: u64, len: u32) -> Vec<u8> {
        let mut cie = vec![];
        cie.extend_from_slice(&0u32.to_le_bytes()); // CIE id
        cie.push(1); // version
        cie.extend_from_slice(aug);
        cie.push(0);
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

    fn synth(addr: u64, func: u64, len: u32) -> Vec<u8> {
        synth_with(b"zR", addr, func, len)
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

    #[test]
    fn reads_aarch64_pointer_authentication_cies() {
        // "zRB": return addresses signed with the B key; gimli does not
        // know `B`, the walk must still see the FDE.
        let data = synth_with(b"zRB", 0x2000, 0x1130, 0x42);
        assert_eq!(
            parse_eh_frame(&data, 0x2000, 8),
            vec![Fde {
                start: 0x1130,
                len: 0x42
            }]
        );
        // The section itself is read as it is.
        assert!(matches!(readable(&data), Cow::Owned(_)));
        assert!(matches!(readable(&synth(0x2000, 1, 1)), Cow::Borrowed(_)));
    }

    #[test]
    fn a_bad_cie_loses_its_fdes_only() {
        // An unknown augmentation, then a good CIE and FDE after it.
        let bad = synth_with(b"zRQ", 0x2000, 0x1130, 0x42);
        let body = bad.len() - 4; // without the terminator
        let mut data = bad[..body].to_vec();
        data.extend(synth(0x2000 + body as u64, 0x1200, 0x10));
        assert_eq!(
            parse_eh_frame(&data, 0x2000, 8),
            vec![Fde {
                start: 0x1200,
                len: 0x10
            }]
        );
        assert_eq!(record_count(&data), 4);
    }

    #[test]
    fn a_length_past_the_section_ends_the_walk() {
        let mut data = synth(0x2000, 0x1130, 0x42);
        let body = data.len() - 4;
        data.truncate(body);
        data.extend_from_slice(&0x100u32.to_le_bytes());
        data.extend(synth(0x2000 + body as u64, 0x1200, 0x10));
        assert_eq!(parse_eh_frame(&data, 0x2000, 8).len(), 1);
        assert_eq!(record_count(&data), 2);
    }

    #[test]
    fn reads_call_site_landing_pads() {
        // @LPStart omitted, @TType omitted, call sites uleb128: two sites,
        // one with a landing pad at +0x40.
        let lsda = [
            0xff, 0xff, 0x01, 8, 0x00, 0x10, 0x40, 0x01, 0x10, 0x08, 0x00, 0x00,
        ];
        assert_eq!(landing_pads(&lsda, 0x5000, 0x1000, 8), vec![0x1040]);
        assert_eq!(
            landing_pads(&lsda[..6], 0x5000, 0x1000, 8),
            Vec::<u64>::new()
        );
    }
}
