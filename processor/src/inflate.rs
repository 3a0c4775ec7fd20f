//! Bounded gunzip of the decrypted DAS payload. The limit caps memory whatever the input claims,
//! so a decompression bomb is a clear error, not an out-of-memory kill of the Lambda.

use std::io::Read as _;

use flate2::bufread::MultiGzDecoder;

/// Default cap on one record's decompressed size. DAS Kinesis records hold at most 1 MiB; SQL text
/// compresses about 10:1, so 32 MiB leaves room for real records while a 128 MB Lambda survives.
pub const DEFAULT_MAX_DECOMPRESSED: usize = 32 * 1024 * 1024;

/// Why a payload did not decompress.
#[derive(Debug, thiserror::Error)]
pub enum InflateError {
    #[error("gzip payload is empty")]
    Empty,
    #[error("gzip payload is corrupt: {0}")]
    Corrupt(#[source] std::io::Error),
    #[error("decompressed payload exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
}

/// Gunzips `input` (one or more gzip members) into `out`, refusing to produce more than `limit`
/// bytes. On error `out` is left as it was.
pub fn gunzip(input: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<usize, InflateError> {
    if input.is_empty() {
        return Err(InflateError::Empty);
    }
    let start = out.len();
    // Typical DAS payloads inflate 5-15x; growing from a close guess saves reallocations.
    out.reserve(input.len().saturating_mul(8).min(limit));
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let result = MultiGzDecoder::new(input).take(cap).read_to_end(out);
    let produced = out.len().saturating_sub(start);
    match result {
        Ok(_) if produced > limit => {
            out.truncate(start);
            Err(InflateError::TooLarge { limit })
        }
        Ok(_) => Ok(produced),
        Err(e) => {
            out.truncate(start);
            Err(InflateError::Corrupt(e))
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
}
