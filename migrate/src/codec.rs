//! The canonical binary encoding shared by messages and the ledger.
//!
//! Big-endian fixed-width integers, raw 32-byte values, strings and blobs
//! prefixed by their length. Every read is bounds-checked; a decoder built
//! from these functions rejects short input, over-long lengths and (with
//! [`finish`]) trailing bytes, so each value has exactly one encoding.

use crate::error::{Error, Result};

/// Append a `u8`.
pub(crate) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

/// Append a big-endian `u32`.
pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Append a big-endian `u64`.
pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Append 32 raw bytes.
pub(crate) fn put_32(out: &mut Vec<u8>, v: &[u8; 32]) {
    out.extend_from_slice(v);
}

/// Append a string with a one-byte length prefix. Callers only pass
/// validated strings (at most 255 bytes; see `types`), so the length fits.
pub(crate) fn put_str8(out: &mut Vec<u8>, s: &str) {
    let len = u8::try_from(s.len()).unwrap_or(u8::MAX);
    out.push(len);
    out.extend_from_slice(s.as_bytes().get(..usize::from(len)).unwrap_or_default());
}

/// Append a blob with a four-byte length prefix.
pub(crate) fn put_blob32(out: &mut Vec<u8>, b: &[u8]) {
    let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
    put_u32(out, len);
    out.extend_from_slice(b.get(..len as usize).unwrap_or_default());
}

/// Append a count (of a following list).
pub(crate) fn put_count(out: &mut Vec<u8>, n: usize) {
    put_u32(out, u32::try_from(n).unwrap_or(u32::MAX));
}

/// Take `n` bytes off the front of `cur`.
pub(crate) fn take<'a>(cur: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8]> {
    if cur.len() < n {
        return Err(Error::malformed(
            what,
            format!("truncated: needed {n} more bytes, {} left", cur.len()),
        ));
    }
    let (head, tail) = cur.split_at(n);
    *cur = tail;
    Ok(head)
}

/// Read a `u8`.
pub(crate) fn get_u8(cur: &mut &[u8], what: &'static str) -> Result<u8> {
    match take(cur, 1, what)? {
        [b] => Ok(*b),
        _ => Err(Error::malformed(what, "truncated: needed 1 more byte")),
    }
}

/// Read a big-endian `u32`.
pub(crate) fn get_u32(cur: &mut &[u8], what: &'static str) -> Result<u32> {
    let b = take(cur, 4, what)?;
    let arr: [u8; 4] = b
        .try_into()
        .map_err(|_| Error::malformed(what, "short u32"))?;
    Ok(u32::from_be_bytes(arr))
}

/// Read a big-endian `u64`.
pub(crate) fn get_u64(cur: &mut &[u8], what: &'static str) -> Result<u64> {
    let b = take(cur, 8, what)?;
    let arr: [u8; 8] = b
        .try_into()
        .map_err(|_| Error::malformed(what, "short u64"))?;
    Ok(u64::from_be_bytes(arr))
}

/// Read 32 raw bytes.
pub(crate) fn get_32(cur: &mut &[u8], what: &'static str) -> Result<[u8; 32]> {
    let b = take(cur, 32, what)?;
    b.try_into()
        .map_err(|_| Error::malformed(what, "short 32-byte value"))
}

/// Read 64 raw bytes.
pub(crate) fn get_64(cur: &mut &[u8], what: &'static str) -> Result<[u8; 64]> {
    let b = take(cur, 64, what)?;
    b.try_into()
        .map_err(|_| Error::malformed(what, "short 64-byte value"))
}

/// Read a string with a one-byte length prefix (UTF-8 checked; content
/// rules are the caller's).
pub(crate) fn get_str8<'a>(cur: &mut &'a [u8], what: &'static str) -> Result<&'a str> {
    let len = get_u8(cur, what)?;
    let b = take(cur, usize::from(len), what)?;
    std::str::from_utf8(b).map_err(|_| Error::malformed(what, "string is not UTF-8"))
}

/// Read a blob with a four-byte length prefix, at most `max` bytes.
pub(crate) fn get_blob32<'a>(
    cur: &mut &'a [u8],
    max: usize,
    what: &'static str,
) -> Result<&'a [u8]> {
    let len = get_u32(cur, what)? as usize;
    if len > max {
        return Err(Error::malformed(
            what,
            format!("blob of {len} bytes exceeds the limit of {max}"),
        ));
    }
    take(cur, len, what)
}

/// Read a list count, rejecting counts that cannot possibly fit in the
/// remaining input (each element takes at least `min_elem` bytes), so a
/// forged count never drives a large allocation.
pub(crate) fn get_count(cur: &mut &[u8], min_elem: usize, what: &'static str) -> Result<usize> {
    let n = get_u32(cur, what)? as usize;
    if n.checked_mul(min_elem.max(1))
        .is_none_or(|need| need > cur.len())
    {
        return Err(Error::malformed(
            what,
            format!("count {n} cannot fit in the {} bytes left", cur.len()),
        ));
    }
    Ok(n)
}

/// Require that the whole input was consumed.
pub(crate) fn finish(cur: &[u8], what: &'static str) -> Result<()> {
    if cur.is_empty() {
        Ok(())
    } else {
        Err(Error::malformed(
            what,
            format!("{} trailing bytes", cur.len()),
        ))
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(
            DIGITS.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
        ));
        s.push(char::from(
            DIGITS.get(usize::from(b & 15)).copied().unwrap_or(b'0'),
        ));
    }
    s
}

/// Parse lowercase hex (even length) into bytes.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    fn nib(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks_exact(2)
        .map(|pair| Some((nib(*pair.first()?)? << 4) | nib(*pair.get(1)?)?))
        .collect()
}

/// Parse exactly 64 lowercase hex digits into 32 bytes.
pub(crate) fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    unhex(s)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_big_endian() {
        let mut out = Vec::new();
        put_u8(&mut out, 7);
        put_u32(&mut out, 0x0102_0304);
        put_u64(&mut out, u64::MAX - 1);
        assert_eq!(&out[..5], &[7, 1, 2, 3, 4]);
        let mut cur = out.as_slice();
        assert_eq!(get_u8(&mut cur, "t").unwrap(), 7);
        assert_eq!(get_u32(&mut cur, "t").unwrap(), 0x0102_0304);
        assert_eq!(get_u64(&mut cur, "t").unwrap(), u64::MAX - 1);
        finish(cur, "t").unwrap();
    }

    #[test]
    fn short_input_and_trailing_bytes_are_malformed() {
        let mut cur: &[u8] = &[1, 2, 3];
        assert_eq!(get_u32(&mut cur, "t").unwrap_err().code(), "malformed");
        assert!(finish(&[0], "t").is_err());
        let mut cur: &[u8] = &[5, b'a'];
        assert!(get_str8(&mut cur, "t").is_err());
        let mut cur: &[u8] = &[2, 0xff, 0xfe];
        assert!(get_str8(&mut cur, "t").is_err(), "not utf-8");
    }

    #[test]
    fn forged_counts_and_blobs_are_refused_before_allocation() {
        let mut cur: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0, 0];
        assert!(get_count(&mut cur, 1, "t").is_err());
        let mut cur: &[u8] = &[0, 0, 0, 3, 1, 2, 3];
        assert!(get_blob32(&mut cur, 2, "t").is_err());
        let mut cur: &[u8] = &[0, 0, 0, 3, 1, 2, 3];
        assert_eq!(get_blob32(&mut cur, 3, "t").unwrap(), &[1, 2, 3]);
    }

    #[test]
    fn hex_round_trip_and_strictness() {
        let v: [u8; 32] = std::array::from_fn(|i| (i * 9) as u8);
        let h = hex(&v);
        assert_eq!(unhex32(&h), Some(v));
        assert_eq!(unhex32(&h.to_uppercase()), None);
        assert_eq!(unhex32(&h[..62]), None);
        assert_eq!(unhex32(&format!("{}g", &h[..63])), None);
    }
}
