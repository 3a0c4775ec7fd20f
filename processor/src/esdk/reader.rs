//! A cursor over untrusted bytes (after rustls' `codec::Reader`): every read is bounds-checked and a
//! short read names the field that was being read.

use super::error::{Error, Result};

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub(crate) fn left(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The bytes from `start` (an earlier `position()`) up to the cursor.
    pub(crate) fn since(&self, start: usize) -> &'a [u8] {
        self.buf.get(start..self.pos).unwrap_or_default()
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8]> {
        let truncated = Error::Truncated {
            field,
            needed: n,
            available: self.left(),
        };
        let end = self.pos.checked_add(n).ok_or(truncated.clone())?;
        let bytes = self.buf.get(self.pos..end).ok_or(truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    pub(crate) fn array<const N: usize>(&mut self, field: &'static str) -> Result<&'a [u8; N]> {
        let bytes = self.take(N, field)?;
        bytes.try_into().map_err(|_| Error::Truncated {
            field,
            needed: N,
            available: bytes.len(),
        })
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16> {
        Ok(u16::from_be_bytes(*self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32> {
        Ok(u32::from_be_bytes(*self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64> {
        Ok(u64::from_be_bytes(*self.array(field)?))
    }

    /// A u16 length prefix followed by that many bytes.
    pub(crate) fn u16_prefixed(&mut self, field: &'static str) -> Result<&'a [u8]> {
        let len = self.u16(field)?;
        self.take(usize::from(len), field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_reads_name_the_field_and_do_not_advance() {
        let mut r = Reader::new(&[0x01, 0x02, 0x03]);
        assert_eq!(r.u16("version").unwrap(), 0x0102);
        let err = r.u32("frame length").unwrap_err();
        assert_eq!(
            err,
            Error::Truncated {
                field: "frame length",
                needed: 4,
                available: 1
            }
        );
        assert_eq!(r.position(), 2);
        assert_eq!(r.u8("x").unwrap(), 3);
        assert_eq!(r.left(), 0);
    }

    #[test]
    fn huge_lengths_do_not_overflow() {
        let mut r = Reader::new(&[0; 4]);
        r.take(2, "a").unwrap();
        assert!(matches!(
            r.take(usize::MAX, "b"),
            Err(Error::Truncated { field: "b", .. })
        ));
    }
}
