//! Integrity digests: what each invocation wrote (key, size, SHA-256 of every event object), one
//! digest per invocation, each naming the SHA-256 of the digest before it, so that a removed,
//! altered or inserted digest breaks the chain (CloudTrail's log file integrity validation is
//! the model). `das-setup verify` checks the objects against the digests and the chain.
//!
//! The chain is global to the deployment although invocations are stateless and may run
//! concurrently: digest number `n` is stored under a key derived from `n` with a conditional
//! write (`If-None-Match: *`, S3 User Guide, "Conditional writes"), so exactly one invocation
//! gets each number; one that loses the race reads the winner and tries `n + 1`. Keys count down
//! (`999999999999 - n`), so the newest digest is the first one S3 lists: an invocation in a fresh
//! execution environment finds the head with one `ListObjectsV2` of one key.
//!
//! ```text
//! <prefix>_digests/999999999957-42.json
//! {"digest":{"version":1,"sequence":42,"batch":"…","writtenAt":"…",
//!            "previous":{"sequence":41,"key":"…/999999999958-41.json","sha256":"…"},
//!            "objects":[{"key":"…","bytes":812,"events":3,"sha256":"…"}]},
//!  "signature":{"keyId":"arn:aws:kms:…","algorithm":"ECDSA_SHA_384","value":"<base64 DER>"}}
//! ```
//!
//! `previous.sha256` is the hash of the previous digest object's bytes, signature included. The
//! signature (absent, `null`, when the deployment has no signing key) is KMS `Sign` over
//! [`signing_message`]: the digest's key and the SHA-256 of the exact bytes of its `digest` value,
//! small enough for KMS's 4096-byte `RAW` message limit whatever the number of objects.
//!
//! A retried invocation appends a new digest listing the same objects (its objects have the same
//! names and content): at least once, never a gap. Pure but for the [`DigestStore`] it is given.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest as _, Sha256};

use crate::manifest::{Entry, rfc3339_millis};
use crate::sink::{ObjectSink, SinkError};

/// Under the output prefix. Starts with `_`, like the manifests, so table readers skip it.
pub const FOLDER: &str = "_digests/";
/// Sequence numbers are below this (a trillion invocations: 31,000 years at one a second).
pub const SEQUENCE_LIMIT: u64 = 1_000_000_000_000;
pub const VERSION: u32 = 1;
/// Conditional writes lost to concurrent invocations before this one gives up (and fails, so
/// Firehose retries it).
const ATTEMPTS: usize = 16;

/// `<prefix>_digests/<999999999999 - n, 12 digits>-<n>.json`
pub fn key(prefix: &str, sequence: u64) -> String {
    let countdown = SEQUENCE_LIMIT - 1 - sequence.min(SEQUENCE_LIMIT - 1);
    format!("{prefix}{FOLDER}{countdown:012}-{sequence}.json")
}

/// The sequence number a digest key names, if it is one of [`key`]'s and agrees with itself.
pub fn sequence_of(key: &str) -> Option<u64> {
    let name = key.rsplit('/').next()?.strip_suffix(".json")?;
    let (countdown, sequence) = name.split_once('-')?;
    if countdown.len() != 12 || !countdown.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let countdown: u64 = countdown.parse().ok()?;
    let sequence: u64 = sequence.parse().ok()?;
    (sequence >= 1 && countdown + sequence == SEQUENCE_LIMIT - 1).then_some(sequence)
}

/// Where a digest points back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub sequence: u64,
    pub key: String,
    /// Lower-case hex SHA-256 of the previous digest object's bytes.
    pub sha256: String,
}

/// What one invocation wrote, and the digest before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub version: u32,
    pub sequence: u64,
    pub batch: String,
    #[serde(rename = "writtenAt")]
    pub written_at: String,
    /// `None` only for the first digest of a chain (sequence 1).
    pub previous: Option<Link>,
    pub objects: Vec<Entry>,
}

/// A KMS signature of a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    #[serde(rename = "keyId")]
    pub key_id: String,
    /// KMS's signing algorithm name (`ECDSA_SHA_384`).
    pub algorithm: String,
    /// Base64 of the DER signature KMS returned.
    pub value: String,
}

/// What a digest's signature covers.
pub fn signing_message(key: &str, digest_json: &[u8]) -> Vec<u8> {
    format!(
        "das-setup digest {VERSION}\n{key}\n{}",
        hex_sha256(digest_json)
    )
    .into_bytes()
}

/// Lower-case hex SHA-256.
pub fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The object's bytes: the digest's JSON exactly as signed, and the signature.
pub fn envelope(digest_json: &[u8], signature: Option<&Signature>) -> Vec<u8> {
    let signature = serde_json::to_vec(&signature).unwrap_or_else(|_| b"null".to_vec());
    let mut out = Vec::with_capacity(digest_json.len() + signature.len() + 32);
    out.extend_from_slice(b"{\"digest\":");
    out.extend_from_slice(digest_json);
    out.extend_from_slice(b",\"signature\":");
    out.extend_from_slice(&signature);
    out.push(b'}');
    out
}

/// A digest object read back.
#[derive(Debug, Clone)]
pub struct Opened {
    pub digest: Digest,
    /// The exact bytes of the `digest` value: what [`signing_message`] hashes.
    pub digest_json: Vec<u8>,
    pub signature: Option<Signature>,
}

/// Reads a digest object; the error says what is wrong with it.
pub fn open(bytes: &[u8]) -> Result<Opened, String> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        digest: &'a RawValue,
        signature: Option<Signature>,
    }
    let envelope: Envelope<'_> =
        serde_json::from_slice(bytes).map_err(|e| format!("not a digest object: {e}"))?;
    let digest: Digest =
        serde_json::from_str(envelope.digest.get()).map_err(|e| format!("not a digest: {e}"))?;
    if digest.version != VERSION {
        return Err(format!(
            "digest version {} (this das-setup reads version {VERSION})",
            digest.version
        ));
    }
    Ok(Opened {
        digest_json: envelope.digest.get().as_bytes().to_vec(),
        digest,
        signature: envelope.signature,
    })
}

/// Why a digest could not be appended (the invocation fails and Firehose retries it).
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error(transparent)]
    Store(#[from] SinkError),
    #[error("signing the digest with KMS failed: {0}")]
    Sign(String),
    #[error(
        "{ATTEMPTS} digest numbers in a row were taken by concurrent invocations; the retry will append it"
    )]
    Contended,
    #[error("the digest chain under {0} has reached its last sequence number")]
    Full(String),
}

/// Where digests are kept: S3 in the Lambda (`aws.rs`), memory in tests.
pub trait DigestStore: Send + Sync {
    /// The first keys under `folder` in S3's (lexicographic) order: one page of a listing.
    fn keys(&self, folder: &str) -> impl Future<Output = Result<Vec<String>, SinkError>> + Send;
    /// The bytes of `key`.
    fn get(&self, key: &str) -> impl Future<Output = Result<Vec<u8>, SinkError>> + Send;
    /// Stores `body` under `key` only if no object has that name: `false` when one has.
    fn put_new(
        &self,
        key: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<bool, SinkError>> + Send;
}

/// Objects in memory, as S3 would hold them, digests included: the store of the benchmarks, the
/// fuzz targets and tests (the Lambda's is S3, `aws.rs`).
#[derive(Debug, Default)]
pub struct InMemory(Mutex<BTreeMap<String, Vec<u8>>>);

impl InMemory {
    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every object, by key.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.objects().clone()
    }

    /// Stores `body` under `key`, replacing any object of that name.
    pub fn insert(&self, key: &str, body: Vec<u8>) {
        self.objects().insert(key.to_owned(), body);
    }
}

impl ObjectSink for InMemory {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), SinkError> {
        self.insert(key, body);
        Ok(())
    }
}

impl DigestStore for InMemory {
    async fn keys(&self, folder: &str) -> Result<Vec<String>, SinkError> {
        Ok(self
            .objects()
            .keys()
            .filter(|k| k.starts_with(folder))
            .take(1000)
            .cloned()
            .collect())
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, SinkError> {
        self.objects().get(key).cloned().ok_or_else(|| SinkError {
            bucket: "in-memory".into(),
            key: key.into(),
            reason: "NoSuchKey".into(),
        })
    }

    async fn put_new(&self, key: &str, body: Vec<u8>) -> Result<bool, SinkError> {
        let mut objects = self.objects();
        if objects.contains_key(key) {
            return Ok(false);
        }
        objects.insert(key.to_owned(), body);
        Ok(true)
    }
}

/// Signs digests (KMS `Sign` in the Lambda).
pub trait DigestSigner: Send + Sync {
    fn sign(&self, message: &[u8]) -> impl Future<Output = Result<Signature, String>> + Send;
}

/// No signing key: digests carry `"signature": null`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unsigned;

impl DigestSigner for Unsigned {
    async fn sign(&self, _message: &[u8]) -> Result<Signature, String> {
        Err("no signing key".into())
    }
}

/// The newest digest this process knows of.
#[derive(Debug, Clone)]
struct Head {
    link: Link,
}

/// Appends digests to one deployment's chain. Remembers the head between invocations of a warm
/// execution environment, so the usual append is one conditional write.
#[derive(Debug)]
pub struct Chain {
    prefix: String,
    signed: bool,
    head: Mutex<Option<Head>>,
}

impl Chain {
    pub fn new(prefix: &str, signed: bool) -> Self {
        Self {
            prefix: prefix.to_owned(),
            signed,
            head: Mutex::new(None),
        }
    }

    fn cached(&self) -> Option<Head> {
        self.head.lock().ok().and_then(|h| h.clone())
    }

    fn remember(&self, head: Head) {
        if let Ok(mut h) = self.head.lock() {
            *h = Some(head);
        }
    }

    /// The chain's newest digest as the store has it (`None`: the chain is empty): the first
    /// key listed that is a digest's (anything else put in the folder is passed over, and is
    /// for `verify` to name).
    async fn newest(&self, store: &impl DigestStore) -> Result<Option<Head>, SinkError> {
        let folder = format!("{}{FOLDER}", self.prefix);
        let keys = store.keys(&folder).await?;
        let Some((key, sequence)) = keys
            .into_iter()
            .find_map(|k| sequence_of(&k).map(|n| (k, n)))
        else {
            return Ok(None);
        };
        // Whatever the object holds, the chain goes on from its bytes: a damaged digest is for
        // `verify` to name, not a reason to stop storing events.
        let bytes = store.get(&key).await?;
        Ok(Some(Head {
            link: Link {
                sequence,
                sha256: hex_sha256(&bytes),
                key,
            },
        }))
    }

    /// Appends the digest of one invocation's objects; returns its key.
    pub async fn append(
        &self,
        store: &impl DigestStore,
        signer: &impl DigestSigner,
        batch: &str,
        written_at_millis: i64,
        objects: Vec<Entry>,
    ) -> Result<String, DigestError> {
        let mut head = match self.cached() {
            Some(head) => Some(head),
            None => self.newest(store).await?,
        };
        let mut digest = Digest {
            version: VERSION,
            sequence: 0,
            batch: batch.to_owned(),
            written_at: rfc3339_millis(written_at_millis),
            previous: None,
            objects,
        };
        for _ in 0..ATTEMPTS {
            let sequence = head.as_ref().map_or(1, |h| h.link.sequence + 1);
            if sequence >= SEQUENCE_LIMIT {
                return Err(DigestError::Full(format!("{}{FOLDER}", self.prefix)));
            }
            digest.sequence = sequence;
            digest.previous = head.as_ref().map(|h| h.link.clone());
            let key = key(&self.prefix, sequence);
            // A struct of strings and integers always serializes.
            let json = serde_json::to_vec(&digest).unwrap_or_default();
            let signature = if self.signed {
                Some(
                    signer
                        .sign(&signing_message(&key, &json))
                        .await
                        .map_err(DigestError::Sign)?,
                )
            } else {
                None
            };
            let body = envelope(&json, signature.as_ref());
            let sha256 = hex_sha256(&body);
            if store.put_new(&key, body).await? {
                self.remember(Head {
                    link: Link {
                        sequence,
                        key: key.clone(),
                        sha256,
                    },
                });
                return Ok(key);
            }
            // Taken: by a concurrent invocation, or this process's head was stale. Go on from
            // the newest digest there is now.
            head = self.newest(store).await?;
        }
        Err(DigestError::Contended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`InMemory`], where another writer can take a key just before this one's conditional
    /// write.
    #[derive(Default)]
    struct Mem {
        objects: InMemory,
        raced: Mutex<Vec<(String, Vec<u8>)>>,
    }

    impl DigestStore for Mem {
        async fn keys(&self, folder: &str) -> Result<Vec<String>, SinkError> {
            self.objects.keys(folder).await
        }
        async fn get(&self, key: &str) -> Result<Vec<u8>, SinkError> {
            self.objects.get(key).await
        }
        async fn put_new(&self, key: &str, body: Vec<u8>) -> Result<bool, SinkError> {
            let theirs = {
                let mut raced = self.raced.lock().unwrap();
                let i = raced.iter().position(|(k, _)| k == key);
                i.map(|i| raced.remove(i))
            };
            if let Some((k, v)) = theirs {
                self.objects.insert(&k, v);
            }
            self.objects.put_new(key, body).await
        }
    }

    struct FixedSigner;
    impl DigestSigner for FixedSigner {
        async fn sign(&self, message: &[u8]) -> Result<Signature, String> {
            Ok(Signature {
                key_id: "k".into(),
                algorithm: "TEST".into(),
                value: hex_sha256(message),
            })
        }
    }

    fn entry(key: &str) -> Entry {
        Entry::new(key, key.as_bytes(), 1)
    }

    fn opened(store: &Mem, key: &str) -> (Opened, String) {
        let bytes = store.objects.snapshot()[key].clone();
        (open(&bytes).unwrap(), hex_sha256(&bytes))
    }

    #[test]
    fn keys_count_down_so_the_newest_lists_first() {
        assert_eq!(key("p/", 1), "p/_digests/999999999998-1.json");
        assert_eq!(key("p/", 42), "p/_digests/999999999957-42.json");
        assert!(key("p/", 10) < key("p/", 9));
        assert_eq!(sequence_of("p/_digests/999999999957-42.json"), Some(42));
        for bad in [
            "p/_digests/999999999957-41.json", // disagrees with itself
            "p/_digests/99999999957-42.json",
            "p/_digests/999999999957-42.json.bak",
            "p/_digests/999999999999-0.json",
            "p/_digests/x.json",
        ] {
            assert_eq!(sequence_of(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn digests_chain_each_to_the_bytes_of_the_one_before() {
        let store = Mem::default();
        let chain = Chain::new("p/", true);
        let k1 = chain
            .append(&store, &FixedSigner, "b1", 0, vec![entry("p/a")])
            .await
            .unwrap();
        let k2 = chain
            .append(&store, &FixedSigner, "b2", 1000, vec![entry("p/b")])
            .await
            .unwrap();
        assert_eq!(k1, key("p/", 1));
        assert_eq!(k2, key("p/", 2));
        let (first, first_sha) = opened(&store, &k1);
        let (second, _) = opened(&store, &k2);
        assert_eq!(first.digest.previous, None);
        assert_eq!(first.digest.objects, vec![entry("p/a")]);
        assert_eq!(
            second.digest.previous,
            Some(Link {
                sequence: 1,
                key: k1.clone(),
                sha256: first_sha
            })
        );
        // The signature covers the key and the exact digest bytes.
        let sig = second.signature.unwrap();
        assert_eq!(
            sig.value,
            hex_sha256(&signing_message(&k2, &second.digest_json))
        );
        assert_eq!(second.digest.written_at, "1970-01-01T00:00:01.000Z");
    }

    #[tokio::test]
    async fn a_fresh_process_continues_the_chain_it_finds() {
        let store = Mem::default();
        Chain::new("p/", false)
            .append(&store, &Unsigned, "b1", 0, vec![])
            .await
            .unwrap();
        // Another execution environment, with nothing cached.
        let k2 = Chain::new("p/", false)
            .append(&store, &Unsigned, "b2", 0, vec![])
            .await
            .unwrap();
        assert_eq!(k2, key("p/", 2));
        let (second, _) = opened(&store, &k2);
        assert_eq!(second.digest.previous.unwrap().sequence, 1);
        assert_eq!(second.signature, None);
    }

    #[tokio::test]
    async fn a_number_taken_by_a_concurrent_invocation_is_skipped_and_chained_to() {
        let store = Mem::default();
        let chain = Chain::new("p/", false);
        chain
            .append(&store, &Unsigned, "b1", 0, vec![])
            .await
            .unwrap();
        // Another invocation writes number 2 between this one's read and its write.
        let theirs = envelope(b"{}", None);
        store
            .raced
            .lock()
            .unwrap()
            .push((key("p/", 2), theirs.clone()));
        let mine = chain
            .append(&store, &Unsigned, "b2", 0, vec![])
            .await
            .unwrap();
        assert_eq!(mine, key("p/", 3));
        let (third, _) = opened(&store, &mine);
        assert_eq!(
            third.digest.previous,
            Some(Link {
                sequence: 2,
                key: key("p/", 2),
                sha256: hex_sha256(&theirs)
            })
        );
        // A stale cache (another environment appended 4) costs one lost write, no fork.
        let other = Chain::new("p/", false);
        other
            .append(&store, &Unsigned, "b3", 0, vec![])
            .await
            .unwrap();
        let next = chain
            .append(&store, &Unsigned, "b4", 0, vec![])
            .await
            .unwrap();
        assert_eq!(next, key("p/", 5));
    }

    #[tokio::test]
    async fn something_else_in_the_folder_does_not_restart_the_chain() {
        let store = Mem::default();
        let chain = Chain::new("p/", false);
        for batch in ["b1", "b2"] {
            chain
                .append(&store, &Unsigned, batch, 0, vec![])
                .await
                .unwrap();
        }
        // Sorts before every digest key; a fresh process passes over it to the newest digest.
        store.objects.insert("p/_digests/0-junk", b"junk".to_vec());
        let next = Chain::new("p/", false)
            .append(&store, &Unsigned, "b3", 0, vec![])
            .await
            .unwrap();
        assert_eq!(next, key("p/", 3));
    }

    #[tokio::test]
    async fn a_signing_failure_fails_the_append_and_writes_nothing() {
        struct Refusing;
        impl DigestSigner for Refusing {
            async fn sign(&self, _: &[u8]) -> Result<Signature, String> {
                Err("AccessDeniedException".into())
            }
        }
        let store = Mem::default();
        let err = Chain::new("p/", true)
            .append(&store, &Refusing, "b", 0, vec![])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("AccessDeniedException"), "{err}");
        assert!(store.objects.snapshot().is_empty());
    }

    #[test]
    fn open_refuses_what_is_not_a_digest() {
        assert!(open(b"{}").unwrap_err().contains("not a digest object"));
        assert!(open(b"{\"digest\":{\"version\":1},\"signature\":null}").is_err());
        let future = envelope(
            br#"{"version":2,"sequence":1,"batch":"b","writtenAt":"t","previous":null,"objects":[]}"#,
            None,
        );
        assert!(open(&future).unwrap_err().contains("version 2"));
    }
}
