//! The one checked reader the audit readers share: every offset and length
//! taken from a file is checked against the bytes before use, every integer
//! is read in an explicit byte order, and a read that does not fit is an
//! error that says what was being read and where, never a zero.

use std::fmt;

/// Byte order of the integers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    /// Least significant byte first (x86, RISC-V and AArch64 ELF, PE, SGX).
    Little,
    /// Most significant byte first.
    Big,
}

/// A read that does not fit in the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfBounds {
    /// What was being read.
    pub what: &'static str,
    /// Its offset in the bytes read.
    pub offset: u64,
    /// Its length.
    pub len: u64,
    /// How many bytes there are.
    pub size: u64,
}

impl fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} bytes at offset {:#x} run past the end of the {:#x} bytes there are",
            self.what, self.len, self.offset, self.size
        )
    }
}

impl std::error::Error for OutOfBounds {}

/// Checked reads over borrowed bytes.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    endian: Endian,
}

impl<'a> Reader<'a> {
    /// A reader of `bytes` whose integers are in `endian` order.
    #[must_use]
    pub fn new(bytes: &'a [u8], endian: Endian) -> Self {
        Reader { bytes, endian }
    }

    /// A little-endian reader.
    #[must_use]
    pub fn le(bytes: &'a [u8]) -> Self {
        Reader::new(bytes, Endian::Little)
    }

    /// The bytes read.
    #[must_use]
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Their count.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// `len` bytes at `offset`.
    ///
    /// # Errors
    /// When they do not all lie inside the bytes.
    pub fn slice(
        &self,
        offset: u64,
        len: u64,
        what: &'static str,
    ) -> Result<&'a [u8], OutOfBounds> {
        let err = OutOfBounds {
            what,
            offset,
            len,
            size: self.len(),
        };
        let start = usize::try_from(offset).map_err(|_| err)?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .ok_or(err)?;
        self.bytes.get(start..end).ok_or(err)
    }

    /// A reader of `len` bytes at `offset`, in the same byte order.
    ///
    /// # Errors
    /// When they do not all lie inside the bytes.
    pub fn sub(&self, offset: u64, len: u64, what: &'static str) -> Result<Self, OutOfBounds> {
        Ok(Reader::new(self.slice(offset, len, what)?, self.endian))
    }

    /// A reader of the bytes from `offset` to the end.
    ///
    /// # Errors
    /// When `offset` is past the end.
    pub fn tail(&self, offset: u64, what: &'static str) -> Result<Self, OutOfBounds> {
        let len = self.len().checked_sub(offset).ok_or(OutOfBounds {
            what,
            offset,
            len: 0,
            size: self.len(),
        })?;
        self.sub(offset, len, what)
    }

    /// `N` bytes at `offset`.
    ///
    /// # Errors
    /// When they do not all lie inside the bytes.
    pub fn array<const N: usize>(
        &self,
        offset: u64,
        what: &'static str,
    ) -> Result<[u8; N], OutOfBounds> {
        let s = self.slice(offset, N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// The `u16` at `offset`.
    ///
    /// # Errors
    /// When it does not lie inside the bytes.
    pub fn u16(&self, offset: u64, what: &'static str) -> Result<u16, OutOfBounds> {
        let b = self.array::<2>(offset, what)?;
        Ok(match self.endian {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        })
    }

    /// The `u32` at `offset`.
    ///
    /// # Errors
    /// When it does not lie inside the bytes.
    pub fn u32(&self, offset: u64, what: &'static str) -> Result<u32, OutOfBounds> {
        let b = self.array::<4>(offset, what)?;
        Ok(match self.endian {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        })
    }

    /// The `u64` at `offset`.
    ///
    /// # Errors
    /// When it does not lie inside the bytes.
    pub fn u64(&self, offset: u64, what: &'static str) -> Result<u64, OutOfBounds> {
        let b = self.array::<8>(offset, what)?;
        Ok(match self.endian {
            Endian::Little => u64::from_le_bytes(b),
            Endian::Big => u64::from_be_bytes(b),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_both_orders_and_refuses_what_does_not_fit() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        let le = Reader::le(&b);
        assert_eq!(le.u16(0, "x"), Ok(0x0201));
        assert_eq!(le.u32(1, "x"), Ok(0x0504_0302));
        assert_eq!(le.u64(1, "x"), Ok(0x0908_0706_0504_0302));
        let be = Reader::new(&b, Endian::Big);
        assert_eq!(be.u32(0, "x"), Ok(0x0102_0304));
        let e = le.u64(2, "the field").unwrap_err();
        assert_eq!((e.offset, e.len, e.size), (2, 8, 9));
        assert!(
            e.to_string()
                .starts_with("the field: 8 bytes at offset 0x2"),
            "{e}"
        );
        assert!(le.slice(u64::MAX, 1, "x").is_err());
        assert!(le.slice(1, u64::MAX, "x").is_err());
        assert_eq!(le.slice(9, 0, "x"), Ok(&[][..]));
        assert!(le.tail(10, "x").is_err());
        assert_eq!(le.tail(7, "x").unwrap().bytes(), &[8, 9]);
        assert_eq!(le.sub(1, 2, "x").unwrap().u16(0, "x"), Ok(0x0302));
        assert_eq!(le.array::<3>(6, "x"), Ok([7, 8, 9]));
    }
}
