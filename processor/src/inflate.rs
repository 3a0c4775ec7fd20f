//! Bounded gunzip of the decrypted DAS payload. The limit caps memory whatever the input claims,
//! so a decompression bomb is a clear error, not an out-of-memory kill of the Lambda.
//!
//! Built on flate2's raw `Decompress` rather than its `Read` adapters: inflating straight into the
//! output's spare capacity, sized once from the gzip trailer, is what keeps the whole decode
//! within a few percent of bare inflate (see BENCHMARKS.md). Members are parsed per RFC 1952;
//! CRC-32 and length are verified for every member.

use flate2::{Crc, Decompress, FlushDecompress, Status};

/// Default cap on one record's decompressed size. DAS Kinesis records hold at most 1 MiB; SQL text
/// compresses about 10:1, so 32 MiB leaves room for real records while a 128 MB Lambda survives.
pub const DEFAULT_MAX_DECOMPRESSED: usize = 32 * 1024 * 1024;

/// Why a payload did not decompress.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    #[error("gzip payload is empty")]
    Empty,
    #[error("gzip payload is corrupt: {0}")]
    Corrupt(String),
    #[error("decompressed payload exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
}

fn corrupt(reason: impl Into<String>) -> InflateError {
    InflateError::Corrupt(reason.into())
}

/// Gunzips `input` (one or more gzip members) into `out`, refusing to produce more than `limit`
/// bytes. Returns the number of bytes appended; on error `out` is left as it was.
pub fn gunzip(input: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<usize, InflateError> {
    if input.is_empty() {
        return Err(InflateError::Empty);
    }
    let start = out.len();
    let result = gunzip_members(input, limit, out, start);
    match result {
        Ok(()) => Ok(out.len() - start),
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

fn gunzip_members(
    input: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
    start: usize,
) -> Result<(), InflateError> {
    // The last member's trailer states its size (mod 2^32): for the usual single member that is
    // the whole output. Untrusted, so only a hint, and never more than the limit.
    if let Some(isize_hint) = input.last_chunk::<4>() {
        let hint = u32::from_le_bytes(*isize_hint) as usize;
        out.reserve(hint.min(limit).saturating_add(64));
    }
    let mut rest = input;
    while !rest.is_empty() {
        let body = skip_header(rest)?;
        let member_start = out.len();
        let consumed = inflate_member(body, limit, out, start)?;
        let trailer = body
            .get(consumed..)
            .and_then(|t| t.first_chunk::<8>())
            .ok_or_else(|| corrupt("truncated trailer"))?;
        let (crc, size) = trailer.split_at(4);
        let mut expected = Crc::new();
        expected.update(out.get(member_start..).unwrap_or_default());
        if u32::from_le_bytes(crc.try_into().unwrap_or_default()) != expected.sum() {
            return Err(corrupt("CRC-32 mismatch"));
        }
        let produced = (out.len() - member_start) as u32; // ISIZE is the length mod 2^32
        if u32::from_le_bytes(size.try_into().unwrap_or_default()) != produced {
            return Err(corrupt("length mismatch"));
        }
        rest = body.get(consumed + 8..).unwrap_or_default();
    }
    Ok(())
}

const FTEXT_FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const RESERVED: u8 = 0xE0;

/// Parses one member header (RFC 1952 section 2.3) and returns what follows it.
fn skip_header(member: &[u8]) -> Result<&[u8], InflateError> {
    let truncated = || corrupt("truncated header");
    let (fixed, mut rest) = member.split_first_chunk::<10>().ok_or_else(truncated)?;
    if fixed[0..2] != [0x1f, 0x8b] {
        return Err(corrupt("not gzip (bad magic bytes)"));
    }
    if fixed[2] != 8 {
        return Err(corrupt("compression method is not deflate"));
    }
    let flags = fixed[3];
    if flags & RESERVED != 0 {
        return Err(corrupt("reserved header flags set"));
    }
    if flags & FEXTRA != 0 {
        let (xlen, tail) = rest.split_first_chunk::<2>().ok_or_else(truncated)?;
        rest = tail
            .get(usize::from(u16::from_le_bytes(*xlen))..)
            .ok_or_else(truncated)?;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let nul = rest.iter().position(|&b| b == 0).ok_or_else(truncated)?;
            rest = rest.get(nul + 1..).unwrap_or_default();
        }
    }
    if flags & FTEXT_FHCRC != 0 {
        let header_len = member.len() - rest.len();
        let (crc16, tail) = rest.split_first_chunk::<2>().ok_or_else(truncated)?;
        let mut crc = Crc::new();
        crc.update(member.get(..header_len).unwrap_or_default());
        if u16::from_le_bytes(*crc16) != (crc.sum() & 0xffff) as u16 {
            return Err(corrupt("header CRC mismatch"));
        }
        rest = tail;
    }
    Ok(rest)
}

/// Inflates one raw deflate stream into `out`, keeping the total since `start` within `limit`.
/// Returns the number of input bytes the stream used.
fn inflate_member(
    body: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
    start: usize,
) -> Result<usize, InflateError> {
    let mut d = Decompress::new(false);
    // Capacity is never grown past this: one byte over the limit is how we notice a bomb.
    let ceiling = start.saturating_add(limit).saturating_add(1);
    loop {
        if out.len() == out.capacity() {
            if out.len() >= ceiling {
                return Err(InflateError::TooLarge { limit });
            }
            let grown = out.capacity().saturating_mul(2).max(out.len() + 4096);
            out.reserve_exact(grown.min(ceiling) - out.len());
        }
        let (in_before, out_before) = (d.total_in(), d.total_out());
        let input = body.get(d.total_in() as usize..).unwrap_or_default();
        let status = d
            .decompress_vec(input, out, FlushDecompress::None)
            .map_err(|e| corrupt(format!("deflate: {e}")))?;
        if out.len() - start > limit {
            return Err(InflateError::TooLarge { limit });
        }
        match status {
            Status::StreamEnd => return Ok(d.total_in() as usize),
            Status::Ok | Status::BufError => {
                let progressed = d.total_in() != in_before || d.total_out() != out_before;
                if !progressed && out.len() < out.capacity() {
                    return Err(corrupt("truncated deflate stream"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn round_trips_and_accepts_multiple_members() {
        let mut two = gzip(b"hello ");
        two.extend(gzip(b"world"));
        let mut out = b"prefix:".to_vec();
        assert_eq!(gunzip(&two, 100, &mut out).unwrap(), 11);
        assert_eq!(out, b"prefix:hello world");
    }

    #[test]
    fn bomb_is_refused_at_the_limit_with_bounded_memory() {
        let bomb = gzip(&vec![0u8; 64 * 1024 * 1024]);
        assert!(bomb.len() < 100 * 1024, "a real bomb: tiny input");
        let mut out = Vec::new();
        let err = gunzip(&bomb, 1024 * 1024, &mut out).unwrap_err();
        assert!(matches!(err, InflateError::TooLarge { limit: 1048576 }));
        assert!(out.is_empty());
        assert!(
            out.capacity() <= 4 * 1024 * 1024,
            "capacity {}",
            out.capacity()
        );
        // Exactly at the limit is fine.
        let exact = gzip(&[7u8; 1000]);
        assert_eq!(gunzip(&exact, 1000, &mut out).unwrap(), 1000);
    }

    #[test]
    fn corrupt_truncated_trailing_and_empty_inputs_are_errors() {
        let good = gzip(b"some activity");
        let mut out = Vec::new();
        assert!(matches!(
            gunzip(&[], 10, &mut out),
            Err(InflateError::Empty)
        ));
        assert!(matches!(
            gunzip(b"not gzip", 100, &mut out),
            Err(InflateError::Corrupt(_))
        ));
        for cut in 1..good.len() {
            assert!(
                gunzip(&good[..cut], 100, &mut out).is_err(),
                "truncated at {cut}"
            );
        }
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"xx");
        assert!(gunzip(&trailing, 100, &mut out).is_err());
        let mut bad_crc = good.clone();
        let n = bad_crc.len();
        bad_crc[n - 6] ^= 1;
        assert!(gunzip(&bad_crc, 100, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn optional_header_fields_are_skipped() {
        let mut enc = flate2::GzBuilder::new()
            .filename("activity.json")
            .comment("from a test")
            .extra(vec![1, 2, 3, 4])
            .write(Vec::new(), Compression::fast());
        enc.write_all(b"{\"type\":\"x\"}").unwrap();
        let gz = enc.finish().unwrap();
        let mut out = Vec::new();
        gunzip(&gz, 100, &mut out).unwrap();
        assert_eq!(out, b"{\"type\":\"x\"}");
    }

    #[test]
    fn a_lying_size_trailer_is_only_a_hint() {
        let data: Vec<u8> = (0..50_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut gz = gzip(&data);
        let n = gz.len();
        let mut out = Vec::new();
        // Claims 4 GiB: memory stays bounded by the limit, and the lie is caught.
        gz[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            gunzip(&gz, 1 << 20, &mut out),
            Err(corrupt("length mismatch"))
        );
        assert!(
            out.capacity() <= (1 << 20) + 4096,
            "capacity {}",
            out.capacity()
        );
        // Claims 1 byte: the buffer grows as needed, and the lie is caught.
        gz[n - 4..].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(
            gunzip(&gz, 1 << 20, &mut out),
            Err(corrupt("length mismatch"))
        );
        // A bomb that claims to be small is still stopped at the limit.
        let mut bomb = gzip(&vec![0u8; 8 << 20]);
        let n = bomb.len();
        bomb[n - 4..].copy_from_slice(&10u32.to_le_bytes());
        assert_eq!(
            gunzip(&bomb, 1 << 20, &mut out),
            Err(InflateError::TooLarge { limit: 1 << 20 })
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_bad_second_member_fails_the_whole_payload() {
        let mut two = gzip(b"first");
        let mut second = gzip(b"second");
        let n = second.len();
        second[n - 8] ^= 0xff; // CRC of the second member
        two.extend(second);
        let mut out = b"kept".to_vec();
        assert_eq!(gunzip(&two, 100, &mut out), Err(corrupt("CRC-32 mismatch")));
        assert_eq!(out, b"kept");
    }
}
