//! Data keys: which KMS encryption context a record's key needs, and the cache that makes a warm
//! Lambda call KMS once per distinct data key instead of once per record (the blog's Lambda does
//! the latter, and KMS calls are DAS's main running cost).
//!
//! The KMS call itself sits behind [`KeySource`] (the AWS implementation is in `aws.rs`), so the
//! handler is tested without a network.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

/// A plaintext 256-bit data key, wiped from memory when dropped.
pub type DataKey = Zeroizing<[u8; 32]>;

/// The encryption context RDS binds a data key to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EncryptionContext {
    /// `aws:rds:dbc-id` for an Aurora cluster, `aws:rds:db-id` for a DB instance.
    pub key: &'static str,
    /// The resource id: `cluster-...` or `db-...`.
    pub value: String,
}

impl EncryptionContext {
    /// The context for a resource id, or `None` if it is neither `cluster-...` nor `db-...`.
    pub fn for_resource(resource_id: &str) -> Option<Self> {
        let (key, rest) = if let Some(rest) = resource_id.strip_prefix("cluster-") {
            ("aws:rds:dbc-id", rest)
        } else if let Some(rest) = resource_id.strip_prefix("db-") {
            ("aws:rds:db-id", rest)
        } else {
            return None;
        };
        (!rest.is_empty()).then(|| Self {
            key,
            value: resource_id.to_owned(),
        })
    }
}

/// The resource id in a DAS stream ARN: `arn:aws:kinesis:<region>:<account>:stream/aws-rds-das-<id>`.
pub fn resource_id_from_stream_arn(arn: &str) -> Option<&str> {
    let name = arn.rsplit_once(":stream/").map_or(arn, |(_, name)| name);
    name.strip_prefix("aws-rds-das-")
        .filter(|id| !id.is_empty())
}

/// Why a data key could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    /// KMS answered and said no (wrong key, wrong encryption context, access denied, disabled
    /// key, invalid ciphertext): the record cannot be decrypted, retrying will not help.
    #[error("KMS refused the data key: {0}")]
    Refused(String),
    /// KMS could not be reached or failed (throttling, timeout, internal error): the
    /// invocation fails so that Firehose retries it.
    #[error("KMS unavailable: {0}")]
    Unavailable(String),
    /// KMS returned something that is not a 256-bit key.
    #[error("KMS returned a {0}-byte plaintext, expected a 32-byte data key")]
    WrongLength(usize),
}

/// Decrypts data keys (KMS `Decrypt`).
pub trait KeySource: Send + Sync {
    fn decrypt(
        &self,
        ciphertext: &[u8],
        context: &EncryptionContext,
    ) -> impl Future<Output = Result<DataKey, KeyError>> + Send;
}

type Entries = HashMap<(EncryptionContext, Vec<u8>), (DataKey, Instant)>;

/// Plaintext data keys by (encryption context, ciphertext blob), bounded in size and age.
pub struct DataKeyCache {
    entries: Mutex<Entries>,
    capacity: usize,
    ttl: Duration,
}

impl DataKeyCache {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            ttl,
        }
    }

    pub fn get(&self, context: &EncryptionContext, ciphertext: &[u8]) -> Option<DataKey> {
        let mut entries = self.lock();
        let key = (context.clone(), ciphertext.to_vec());
        match entries.get(&key) {
            Some((data_key, at)) if at.elapsed() < self.ttl => Some(data_key.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, context: &EncryptionContext, ciphertext: &[u8], data_key: DataKey) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            // Expired entries first; then the oldest. O(n) but rare: n is at most the capacity.
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
            while entries.len() >= self.capacity {
                let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                entries.remove(&oldest);
            }
        }
        entries.insert(
            (context.clone(), ciphertext.to_vec()),
            (data_key, Instant::now()),
        );
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave the map inconsistent (each operation is a
        // single insert or remove), so a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_by_resource_kind() {
        let c = EncryptionContext::for_resource("cluster-ABCDEFG").unwrap();
        assert_eq!(
            (c.key, c.value.as_str()),
            ("aws:rds:dbc-id", "cluster-ABCDEFG")
        );
        let d = EncryptionContext::for_resource("db-XYZ").unwrap();
        assert_eq!(d.key, "aws:rds:db-id");
        assert!(EncryptionContext::for_resource("my-cluster").is_none());
        assert!(EncryptionContext::for_resource("").is_none());
    }

    #[test]
    fn resource_ids_from_stream_arns() {
        assert_eq!(
            resource_id_from_stream_arn(
                "arn:aws:kinesis:eu-west-1:123456789012:stream/aws-rds-das-cluster-ABC"
            ),
            Some("cluster-ABC")
        );
        assert_eq!(
            resource_id_from_stream_arn("aws-rds-das-db-1"),
            Some("db-1")
        );
        assert_eq!(
            resource_id_from_stream_arn("arn:aws:kinesis:r:1:stream/other"),
            None
        );
        assert_eq!(
            resource_id_from_stream_arn("arn:aws:kinesis:r:1:stream/aws-rds-das-"),
            None
        );
    }

    #[test]
    fn cache_is_bounded_and_expires() {
        let ctx = EncryptionContext::for_resource("cluster-A").unwrap();
        let other = EncryptionContext::for_resource("cluster-B").unwrap();
        let cache = DataKeyCache::new(2, Duration::from_secs(60));
        cache.insert(&ctx, b"k1", Zeroizing::new([1; 32]));
        std::thread::sleep(Duration::from_millis(2));
        cache.insert(&ctx, b"k2", Zeroizing::new([2; 32]));
        assert_eq!(*cache.get(&ctx, b"k1").unwrap(), [1; 32]);
        assert!(
            cache.get(&other, b"k1").is_none(),
            "the context is part of the key"
        );
        cache.insert(&ctx, b"k3", Zeroizing::new([3; 32]));
        assert_eq!(cache.len(), 2);
        assert!(
            cache.get(&ctx, b"k1").is_none(),
            "the oldest entry was evicted"
        );
        assert!(cache.get(&ctx, b"k3").is_some());

        let expiring = DataKeyCache::new(10, Duration::ZERO);
        expiring.insert(&ctx, b"k", Zeroizing::new([9; 32]));
        assert!(expiring.get(&ctx, b"k").is_none());
        assert!(expiring.is_empty());
    }
}
