//! `das-setup verify`: checks the stored events against the processor's integrity digests
//! (`das_processor::digest`) and the digests against each other, the way `aws cloudtrail
//! validate-logs` checks CloudTrail's.
//!
//! For the digests written in the window (and the one before it, which the oldest must chain
//! to): every sequence number present, each digest naming the SHA-256 of the one before,
//! each signature valid under the deployment's signing key. For every object those digests
//! list: present, with the size and SHA-256 listed. For every object written under the prefix
//! in the window: listed by some digest. Every problem is named with its key, and any problem
//! makes the exit code 1. The checks themselves are pure ([`check`]); `run` only reads S3 (and
//! KMS for the public key) to feed them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::Engine as _;
use das_processor::digest::{self, Opened};
use das_processor::manifest::{self, Entry};
use serde_json::json;

use crate::aws::{AwsError, Clients, Named as _};
use crate::cli::{GlobalArgs, OutputFormat, VerifyArgs};
use crate::deployment;
use crate::naming::Names;
use crate::session::{self, Refusal, emit_json, kind_word, refuse};
use crate::settings::{parse_duration, target};
use crate::stored::get;

pub const EXIT_VERIFIED: u8 = 0;
pub const EXIT_PROBLEMS: u8 = 1;
/// Objects this recent that no digest lists yet are the invocation in progress, not a problem.
const IN_FLIGHT: Duration = Duration::from_secs(300);

/// What is wrong, one kind per way the trail can be broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A digest lists it; S3 does not have it.
    Missing,
    /// A digest lists it with other bytes.
    Altered,
    /// Written under the prefix in the window; no digest lists it.
    Unexpected,
    /// A sequence number with no digest: one was removed.
    DigestMissing,
    /// A digest whose bytes are not what the next one chained to, or that is not a digest.
    DigestAltered,
    /// A signature that does not verify, or by another key.
    SignatureInvalid,
    /// A digest without a signature where the deployment signs them.
    Unsigned,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Missing => "missing",
            Kind::Altered => "altered",
            Kind::Unexpected => "unexpected",
            Kind::DigestMissing => "digest-missing",
            Kind::DigestAltered => "digest-altered",
            Kind::SignatureInvalid => "signature-invalid",
            Kind::Unsigned => "unsigned",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    pub key: String,
    pub detail: String,
}

fn finding(kind: Kind, key: &str, detail: impl Into<String>) -> Finding {
    Finding {
        kind,
        key: key.to_owned(),
        detail: detail.into(),
    }
}

/// A digest object as read from S3.
#[derive(Debug, Clone)]
pub struct StoredDigest {
    pub key: String,
    pub bytes: Vec<u8>,
    pub modified_millis: i64,
}

/// An object listed under the prefix.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub modified_millis: i64,
}

/// The deployment's signing key, as far as it is known.
pub enum Trust<'a> {
    /// Digests must be signed by this key (its id as the deployment names it, and its public
    /// key, SubjectPublicKeyInfo DER), but those S3 stored before the key was created
    /// (`created_millis`: a deployment that predates its signing key); S3 sets an object's
    /// modification time, so a digest rewritten since is newer than the key.
    Key {
        id: Option<&'a str>,
        spki: &'a [u8],
        created_millis: Option<i64>,
    },
    /// No signing key known: signatures are not checked (and unsigned digests are expected).
    None,
}

/// Everything `check` needs, read from S3.
pub struct Evidence {
    /// The output prefix (`parsed/`).
    pub prefix: String,
    /// The digests written at or after `since`, and the newest one before (the anchor), newest
    /// first as S3 lists them.
    pub digests: Vec<StoredDigest>,
    /// The bytes of each object a digest in the window lists (`None`: no such key).
    pub objects: BTreeMap<String, Option<Vec<u8>>>,
    /// Every object under the prefix (but the manifests and digests) written at or after `since`.
    pub written: Vec<Listed>,
    pub since_millis: i64,
    pub now_millis: i64,
}

#[derive(Debug, Default)]
pub struct Report {
    pub digests: usize,
    pub objects: usize,
    pub findings: Vec<Finding>,
    /// Objects written in the last minutes that no digest lists yet.
    pub in_flight: Vec<String>,
    pub unsigned: usize,
}

/// The digests in the window with the keys of the objects they list, per the newest listing.
pub fn expected(digests: &[StoredDigest], since_millis: i64) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    // Oldest first, so a later digest of the same key (a retried invocation) wins.
    for d in digests
        .iter()
        .rev()
        .filter(|d| d.modified_millis >= since_millis)
    {
        if let Ok(opened) = digest::open(&d.bytes) {
            for e in opened.digest.objects {
                out.insert(e.key.clone(), e);
            }
        }
    }
    out
}

/// The checks, on what was read.
pub fn check(evidence: &Evidence, trust: &Trust<'_>) -> Report {
    let mut report = Report::default();
    let since = evidence.since_millis;
    let in_window = |d: &StoredDigest| d.modified_millis >= since;
    report.digests = evidence.digests.iter().filter(|d| in_window(d)).count();

    // The chain: newest first, each to the one S3 lists after it.
    let opened: Vec<(&StoredDigest, Result<Opened, String>)> = evidence
        .digests
        .iter()
        .map(|d| (d, digest::open(&d.bytes)))
        .collect();
    for (i, (d, o)) in opened.iter().enumerate() {
        let checked = in_window(d);
        let o = match o {
            Ok(o) => o,
            Err(e) => {
                if checked {
                    report
                        .findings
                        .push(finding(Kind::DigestAltered, &d.key, e.clone()));
                }
                continue;
            }
        };
        if !checked {
            continue; // the anchor: only what the oldest in the window chains to
        }
        if digest::sequence_of(&d.key) != Some(o.digest.sequence) {
            report.findings.push(finding(
                Kind::DigestAltered,
                &d.key,
                format!(
                    "holds digest number {}, not the number its name gives",
                    o.digest.sequence
                ),
            ));
        }
        signature(&mut report, d, o, trust);
        // The previous digest: the next one listed (one number lower), unless it went.
        let want = o.digest.sequence.saturating_sub(1);
        let Some(link) = &o.digest.previous else {
            if o.digest.sequence != 1 {
                report.findings.push(finding(
                    Kind::DigestAltered,
                    &d.key,
                    "names no previous digest but is not the first",
                ));
            }
            continue;
        };
        // The next digest listed (passing over anything else in the folder, named above).
        let before = opened[i + 1..]
            .iter()
            .map(|(b, _)| *b)
            .find(|b| digest::sequence_of(&b.key).is_some());
        let before_sequence = before.and_then(|b| digest::sequence_of(&b.key));
        match before {
            Some(b) if before_sequence == Some(want) => {
                if digest::hex_sha256(&b.bytes) != link.sha256 || link.key != b.key {
                    report.findings.push(finding(
                        Kind::DigestAltered,
                        &b.key,
                        format!(
                            "digest {} chains to other bytes: this one was changed after digest {} was written",
                            o.digest.sequence, o.digest.sequence
                        ),
                    ));
                }
            }
            // Nothing before: the window reaches back to the start of the chain only if this is
            // number 1; otherwise the one before is gone (listing stopped at the anchor).
            _ => {
                let lowest = before_sequence.unwrap_or(0) + 1;
                let detail = if lowest == want {
                    format!("digest {want} is gone (digest {} chains to it)", want + 1)
                } else {
                    format!(
                        "digests {lowest} to {want} are gone (digest {} chains to {want})",
                        want + 1
                    )
                };
                report.findings.push(finding(
                    Kind::DigestMissing,
                    &digest::key(&evidence.prefix, want),
                    detail,
                ));
            }
        }
    }

    // The objects the digests list.
    let expected = expected(&evidence.digests, since);
    report.objects = expected.len();
    for (key, entry) in &expected {
        match evidence.objects.get(key) {
            Some(Some(bytes)) => {
                let sha = digest::hex_sha256(bytes);
                if sha != entry.sha256 || bytes.len() != entry.bytes {
                    report.findings.push(finding(
                        Kind::Altered,
                        key,
                        format!(
                            "{} bytes with SHA-256 {sha}; the digest lists {} bytes with SHA-256 {}",
                            bytes.len(),
                            entry.bytes,
                            entry.sha256
                        ),
                    ));
                }
            }
            _ => report.findings.push(finding(
                Kind::Missing,
                key,
                "listed by a digest, not in the bucket",
            )),
        }
    }

    // What was written and no digest lists.
    let newest_digest = evidence
        .digests
        .first()
        .map_or(i64::MIN, |d| d.modified_millis);
    let recent = evidence.now_millis - i64::try_from(IN_FLIGHT.as_millis()).unwrap_or(0);
    for o in &evidence.written {
        if expected.contains_key(&o.key) {
            continue;
        }
        if o.modified_millis >= newest_digest && o.modified_millis >= recent {
            report.in_flight.push(o.key.clone());
        } else {
            report.findings.push(finding(
                Kind::Unexpected,
                &o.key,
                "written under the prefix in the window; no digest lists it",
            ));
        }
    }
    report
        .findings
        .sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
    report
}

fn signature(report: &mut Report, d: &StoredDigest, o: &Opened, trust: &Trust<'_>) {
    let Trust::Key {
        id,
        spki,
        created_millis,
    } = trust
    else {
        if o.signature.is_none() {
            report.unsigned += 1;
        }
        return;
    };
    let Some(sig) = &o.signature else {
        if created_millis.is_some_and(|t| d.modified_millis < t) {
            report.unsigned += 1;
            return;
        }
        report.findings.push(finding(
            Kind::Unsigned,
            &d.key,
            "not signed, but the deployment signs its digests",
        ));
        return;
    };
    if let Some(id) = id
        && sig.key_id != *id
    {
        report.findings.push(finding(
            Kind::SignatureInvalid,
            &d.key,
            format!("signed by {}, not the deployment's key {id}", sig.key_id),
        ));
        return;
    }
    let message = digest::signing_message(&d.key, &o.digest_json);
    if let Err(e) = verify_signature(spki, &sig.algorithm, &sig.value, &message) {
        report
            .findings
            .push(finding(Kind::SignatureInvalid, &d.key, e));
    }
}

/// The DER prefix of a P-384 SubjectPublicKeyInfo (id-ecPublicKey, secp384r1) before its
/// 97-byte uncompressed point (RFC 5480), the form KMS GetPublicKey returns.
const P384_SPKI_PREFIX: [u8; 23] = [
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];

/// A P-384 public key from SubjectPublicKeyInfo DER, or PEM (`-----BEGIN PUBLIC KEY-----`).
pub fn read_public_key(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let der = match std::str::from_utf8(bytes) {
        Ok(text) if text.contains("-----BEGIN PUBLIC KEY-----") => {
            let body: String = text
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<Vec<_>>()
                .concat();
            base64::engine::general_purpose::STANDARD
                .decode(body.trim())
                .map_err(|e| format!("the PEM public key is not base64: {e}"))?
        }
        _ => bytes.to_vec(),
    };
    let point = der
        .strip_prefix(&P384_SPKI_PREFIX[..])
        .filter(|p| p.len() == 97)
        .ok_or("not a P-384 (ECC_NIST_P384) public key in SubjectPublicKeyInfo form")?;
    p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
        .map_err(|_| "the P-384 public key is not a point on the curve".to_owned())?;
    Ok(der)
}

fn verify_signature(
    spki: &[u8],
    algorithm: &str,
    value: &str,
    message: &[u8],
) -> Result<(), String> {
    use p384::ecdsa::signature::Verifier as _;
    if algorithm != "ECDSA_SHA_384" {
        return Err(format!(
            "signature algorithm {algorithm}, expected ECDSA_SHA_384"
        ));
    }
    let point = spki
        .strip_prefix(&P384_SPKI_PREFIX[..])
        .ok_or("the signing key is not a P-384 key")?;
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
        .map_err(|_| "the signing key is not a P-384 key".to_owned())?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|_| "the signature is not base64".to_owned())?;
    let signature = p384::ecdsa::Signature::from_der(&der)
        .map_err(|_| "the signature is not a DER ECDSA signature".to_owned())?;
    key.verify(message, &signature).map_err(|_| {
        "the signature does not verify: the digest was changed or signed by another key".to_owned()
    })
}

// --- reading S3 ---------------------------------------------------------------------------------

/// The digests from the newest back to the first written before `since` (included).
async fn digests(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    since: i64,
) -> Result<Vec<StoredDigest>, AwsError> {
    let folder = format!("{prefix}{}", digest::FOLDER);
    let what = format!("s3://{bucket}/{folder}");
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&folder)
            .set_continuation_token(token)
            .send()
            .await
            .named("s3:ListBucket", &what)?;
        for o in page.contents() {
            let (Some(key), Some(modified)) =
                (o.key(), o.last_modified().and_then(|t| t.to_millis().ok()))
            else {
                continue;
            };
            let Some(bytes) = get(s3, bucket, key).await? else {
                continue; // deleted between the listing and the read: the chain shows the gap
            };
            out.push(StoredDigest {
                key: key.to_owned(),
                bytes,
                modified_millis: modified,
            });
            if modified < since && digest::sequence_of(key).is_some() {
                return Ok(out); // the anchor
            }
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// Every object under the prefix written at or after `since`, but manifests and digests.
async fn written(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    since: i64,
) -> Result<Vec<Listed>, AwsError> {
    let skip = [
        format!("{prefix}{}", manifest::FOLDER),
        format!("{prefix}{}", digest::FOLDER),
    ];
    let what = format!("s3://{bucket}/{prefix}");
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .named("s3:ListBucket", &what)?;
        for o in page.contents() {
            let (Some(key), Some(modified)) =
                (o.key(), o.last_modified().and_then(|t| t.to_millis().ok()))
            else {
                continue;
            };
            if modified >= since && !skip.iter().any(|s| key.starts_with(s.as_str())) {
                out.push(Listed {
                    key: key.to_owned(),
                    modified_millis: modified,
                });
            }
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return Ok(out);
        }
    }
}

struct Outcome {
    bucket: String,
    prefix: String,
    key: Option<String>,
    report: Report,
}

async fn gather(global: &GlobalArgs, args: &VerifyArgs) -> Result<Outcome, Refusal> {
    let target = target(&args.target)?;
    let since = parse_duration(&args.since).ok_or_else(|| {
        refuse(format!(
            "--since {:?}: expected a duration such as 30m, 12h or 7d",
            args.since
        ))
    })?;
    let public_key = match &args.public_key {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| refuse(format!("--public-key {}: {e}", path.display())))?;
            Some(
                read_public_key(&bytes)
                    .map_err(|e| refuse(format!("--public-key {}: {e}", path.display())))?,
            )
        }
        None => None,
    };
    let clients = Clients::load(global).await;
    let (identity, _) = session::resolve(&clients, &target).await?;
    let names = Names::new(&target, &identity.account, &identity.region);
    let o = deployment::observe(&clients, &names, args.bucket.as_deref()).await?;
    let bucket = args.bucket.clone().unwrap_or_else(|| o.bucket_name.clone());
    let prefix = match &args.prefix {
        Some(p) if p.ends_with('/') => p.clone(),
        Some(p) => format!("{p}/"),
        None => o.prefix(&target.id),
    };
    // The deployment's signing key: das-setup's alias (it outlives `down` while the bucket is
    // kept), else the one the function is configured with. Never the key a digest names: whoever
    // wrote the digest chose that one.
    let key = o.signing_key.as_ref().map(|k| k.arn.clone()).or_else(|| {
        o.function.as_ref().and_then(|f| {
            f.environment
                .get(das_processor::config::var::DIGEST_KEY)
                .cloned()
        })
    });
    let spki = match (&public_key, &key) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(id)) => {
            let out = clients
                .kms
                .get_public_key()
                .key_id(id)
                .send()
                .await
                .named("kms:GetPublicKey", id)?;
            let der = out.public_key.map(|b| b.into_inner()).unwrap_or_default();
            Some(read_public_key(&der).map_err(|e| refuse(format!("the signing key {id}: {e}")))?)
        }
        (None, None) => None,
    };
    let now = crate::session::now_millis();
    let since_millis = now - i64::try_from(since.as_millis()).unwrap_or(i64::MAX);
    let s3 = &clients.s3;
    let digests = digests(s3, &bucket, &prefix, since_millis).await?;
    if digests.is_empty() {
        return Err(refuse(format!(
            "no digests under s3://{bucket}/{prefix}{}: nothing to verify (the processor writes one per invocation that stores events; check --bucket and --prefix)",
            digest::FOLDER
        )));
    }
    let mut objects = BTreeMap::new();
    for key in expected(&digests, since_millis).into_keys() {
        let bytes = get(s3, &bucket, &key).await?;
        objects.insert(key, bytes);
    }
    let written = written(s3, &bucket, &prefix, since_millis).await?;
    let evidence = Evidence {
        prefix: prefix.clone(),
        digests,
        objects,
        written,
        since_millis,
        now_millis: now,
    };
    // Digests S3 stored before das-setup's key existed were written unsigned by design.
    let created_millis = o
        .signing_key
        .as_ref()
        .filter(|k| public_key.is_none() && key.as_deref() == Some(&k.arn))
        .and_then(|k| k.created_millis);
    let trust = match &spki {
        Some(spki) => Trust::Key {
            created_millis,
            id: if public_key.is_some() {
                None
            } else {
                key.as_deref()
            },
            spki,
        },
        None => Trust::None,
    };
    let report = check(&evidence, &trust);
    Ok(Outcome {
        bucket,
        prefix,
        key: key.or(public_key.map(|_| "--public-key".to_owned())),
        report,
    })
}

/// `das-setup verify`. Exit 0 verified, 1 problems found, 2 refused (nothing to verify).
pub async fn run(global: &GlobalArgs, args: &VerifyArgs) -> u8 {
    let json_out = global.output == OutputFormat::Json;
    let outcome = match gather(global, args).await {
        Ok(o) => o,
        Err(e) => {
            crate::errln!("das-setup verify: {e}");
            emit_json(
                json_out,
                &json!({"command": "verify", "exitCode": session::EXIT_REFUSED, "error": e.to_string()}),
            );
            return session::EXIT_REFUSED;
        }
    };
    let r = &outcome.report;
    let code = if r.findings.is_empty() {
        EXIT_VERIFIED
    } else {
        EXIT_PROBLEMS
    };
    let target = target(&args.target).ok();
    if json_out {
        emit_json(
            true,
            &json!({
                "command": "verify",
                "target": target.as_ref().map(|t| json!({"kind": kind_word(t.kind), "id": t.id})),
                "bucket": outcome.bucket,
                "prefix": outcome.prefix,
                "since": args.since,
                "signingKey": outcome.key,
                "digests": r.digests,
                "objects": r.objects,
                "unsigned": r.unsigned,
                "inFlight": r.in_flight,
                "findings": r.findings.iter().map(|f| json!({
                    "kind": f.kind.as_str(), "key": f.key, "detail": f.detail,
                })).collect::<Vec<_>>(),
                "exitCode": code,
            }),
        );
        return code;
    }
    crate::outln!(
        "das-setup verify: s3://{}/{} (window {})",
        outcome.bucket,
        outcome.prefix,
        args.since
    );
    crate::outln!(
        "  {} digest(s), {} object(s) listed by them",
        r.digests,
        r.objects
    );
    match &outcome.key {
        Some(key) if r.unsigned > 0 => crate::outln!(
            "  signatures checked against {key}; {} digest(s) stored before it existed are unsigned",
            r.unsigned
        ),
        Some(key) => crate::outln!("  signatures checked against {key}"),
        None => crate::outln!(
            "  signatures not checked: the deployment has no signing key ({} digest(s) unsigned); give --public-key to check them offline",
            r.unsigned
        ),
    }
    if !r.in_flight.is_empty() {
        crate::outln!(
            "  {} object(s) written in the last {} not yet in a digest (an invocation in progress; run again to check them)",
            r.in_flight.len(),
            crate::progress::seconds(IN_FLIGHT)
        );
    }
    for f in &r.findings {
        crate::outln!(
            "  {:<18} {}  {}",
            f.kind.as_str().to_uppercase(),
            f.key,
            f.detail
        );
    }
    let kinds: BTreeSet<&str> = r.findings.iter().map(|f| f.kind.as_str()).collect();
    if r.findings.is_empty() {
        crate::outln!(
            "verified: every object is as its digest lists it, and the chain is whole (exit 0)"
        );
    } else {
        crate::outln!(
            "NOT verified: {} problem(s): {} (exit 1)",
            r.findings.len(),
            kinds.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    code
}

#[cfg(test)]
mod tests {
    use das_processor::digest::{Digest, Link, Signature};
    use p384::ecdsa::signature::Signer as _;

    use super::*;

    const KEY_ID: &str = "arn:aws:kms:eu-west-1:123456789012:key/digests";

    fn signing_key(seed: u8) -> p384::ecdsa::SigningKey {
        p384::ecdsa::SigningKey::from_slice(&[seed; 48]).unwrap()
    }

    fn spki(key: &p384::ecdsa::SigningKey) -> Vec<u8> {
        let mut der = P384_SPKI_PREFIX.to_vec();
        der.extend_from_slice(key.verifying_key().to_sec1_point(false).as_bytes());
        der
    }

    /// A bucket as the processor leaves it: `n` digests (one a minute from t=0), each listing
    /// one object of its own, signed with `signer` (unsigned with `None`).
    struct Bucket {
        digests: Vec<StoredDigest>,
        objects: BTreeMap<String, Vec<u8>>,
    }

    fn object_key(i: u64) -> String {
        format!("parsed/DDL/2026/12/01/10/batch-{i}.json.gz")
    }

    fn bucket(n: u64, signer: Option<&p384::ecdsa::SigningKey>) -> Bucket {
        let mut digests = Vec::new();
        let mut objects = BTreeMap::new();
        let mut previous: Option<Link> = None;
        for sequence in 1..=n {
            let key = object_key(sequence);
            let body = format!("events of batch {sequence}").into_bytes();
            let d = Digest {
                version: digest::VERSION,
                sequence,
                batch: format!("batch-{sequence}"),
                written_at: manifest::rfc3339_millis(sequence as i64 * 60_000),
                previous: previous.clone(),
                objects: vec![Entry::new(&key, &body, 1)],
            };
            objects.insert(key, body);
            let digest_key = digest::key("parsed/", sequence);
            let json = serde_json::to_vec(&d).unwrap();
            let signature = signer.map(|s| {
                let sig: p384::ecdsa::Signature =
                    s.sign(&digest::signing_message(&digest_key, &json));
                Signature {
                    key_id: KEY_ID.into(),
                    algorithm: "ECDSA_SHA_384".into(),
                    value: base64::engine::general_purpose::STANDARD
                        .encode(sig.to_der().as_bytes()),
                }
            });
            let bytes = digest::envelope(&json, signature.as_ref());
            previous = Some(Link {
                sequence,
                key: digest_key.clone(),
                sha256: digest::hex_sha256(&bytes),
            });
            digests.push(StoredDigest {
                key: digest_key,
                bytes,
                modified_millis: sequence as i64 * 60_000,
            });
        }
        digests.reverse(); // newest first, as S3 lists them
        Bucket { digests, objects }
    }

    impl Bucket {
        fn evidence(&self, since: i64, now: i64) -> Evidence {
            let listed = expected(&self.digests, since);
            Evidence {
                prefix: "parsed/".into(),
                digests: self
                    .digests
                    .iter()
                    .take_while(|d| d.modified_millis >= since)
                    .chain(self.digests.iter().find(|d| d.modified_millis < since))
                    .cloned()
                    .collect(),
                objects: listed
                    .keys()
                    .map(|k| (k.clone(), self.objects.get(k).cloned()))
                    .collect(),
                written: self
                    .objects
                    .keys()
                    .enumerate()
                    .map(|(i, k)| Listed {
                        key: k.clone(),
                        modified_millis: (i as i64 + 1) * 60_000 - 1,
                    })
                    .filter(|l| l.modified_millis >= since)
                    .collect(),
                since_millis: since,
                now_millis: now,
            }
        }
    }

    fn kinds(report: &Report) -> Vec<(Kind, String)> {
        report
            .findings
            .iter()
            .map(|f| (f.kind, f.key.clone()))
            .collect()
    }

    #[test]
    fn an_untouched_trail_verifies() {
        let key = signing_key(3);
        let b = bucket(5, Some(&key));
        let spki = spki(&key);
        let trust = Trust::Key {
            created_millis: None,
            id: Some(KEY_ID),
            spki: &spki,
        };
        let r = check(&b.evidence(0, 10 * 60_000), &trust);
        assert_eq!(kinds(&r), []);
        assert_eq!((r.digests, r.objects), (5, 5));
        // A window that starts mid-chain checks the oldest digest's link to the one before.
        let r = check(&b.evidence(150_000, 10 * 60_000), &trust);
        assert_eq!(kinds(&r), []);
        assert_eq!((r.digests, r.objects), (3, 3));
    }

    #[test]
    fn an_altered_a_deleted_and_an_added_object_are_each_named() {
        let b = bucket(4, None);
        let mut e = b.evidence(0, 10 * 60_000);
        e.objects.insert(object_key(2), Some(b"rewritten".to_vec()));
        e.objects.insert(object_key(3), None);
        e.written.push(Listed {
            key: "parsed/DDL/2026/12/01/10/forged.json.gz".into(),
            modified_millis: 90_000,
        });
        let r = check(&e, &Trust::None);
        assert_eq!(
            kinds(&r),
            [
                (Kind::Missing, object_key(3)),
                (Kind::Altered, object_key(2)),
                (
                    Kind::Unexpected,
                    "parsed/DDL/2026/12/01/10/forged.json.gz".into()
                ),
            ]
        );
        let altered = &r.findings[1].detail;
        assert!(altered.contains("9 bytes"), "{altered}");
        assert_eq!(r.unsigned, 4);
    }

    #[test]
    fn an_object_newer_than_every_digest_is_in_flight_only_while_recent() {
        let b = bucket(2, None);
        let mut e = b.evidence(0, 10 * 60_000);
        e.written.push(Listed {
            key: "parsed/DML/new.json.gz".into(),
            modified_millis: 10 * 60_000 - 1000,
        });
        let r = check(&e, &Trust::None);
        assert_eq!(kinds(&r), []);
        assert_eq!(r.in_flight, ["parsed/DML/new.json.gz"]);
        // An hour later still not in a digest: unexpected.
        e.now_millis += 3_600_000;
        let r = check(&e, &Trust::None);
        assert_eq!(
            kinds(&r),
            [(Kind::Unexpected, "parsed/DML/new.json.gz".into())]
        );
    }

    #[test]
    fn a_removed_digest_is_named_by_the_gap_it_leaves() {
        let key = signing_key(3);
        let b = bucket(5, Some(&key));
        let mut e = b.evidence(0, 10 * 60_000);
        let removed = digest::key("parsed/", 3);
        e.digests.retain(|d| d.key != removed);
        // Its object was removed with it, so that no digest lists it: it shows as unexpected.
        let spki = spki(&key);
        let r = check(
            &e,
            &Trust::Key {
                created_millis: None,
                id: Some(KEY_ID),
                spki: &spki,
            },
        );
        assert_eq!(
            kinds(&r),
            [
                (Kind::Unexpected, object_key(3)),
                (Kind::DigestMissing, removed),
            ]
        );
        assert!(r.findings[1].detail.contains("digest 3 is gone"));
        // The start of the chain removed: from 1 up.
        let mut e = b.evidence(0, 10 * 60_000);
        e.digests
            .retain(|d| digest::sequence_of(&d.key).unwrap() > 2);
        let r = check(&e, &Trust::None);
        let gone: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.kind == Kind::DigestMissing)
            .collect();
        assert_eq!(gone.len(), 1);
        assert!(
            gone[0].detail.contains("digests 1 to 2 are gone"),
            "{gone:?}"
        );
    }

    #[test]
    fn something_else_in_the_digest_folder_is_named_and_does_not_break_the_chain() {
        let b = bucket(3, None);
        let mut e = b.evidence(0, 10 * 60_000);
        // Sorts between digests 3 and 2.
        e.digests.insert(
            1,
            StoredDigest {
                key: "parsed/_digests/999999999997-x.json".into(),
                bytes: b"{}".to_vec(),
                modified_millis: 60_000,
            },
        );
        let r = check(&e, &Trust::None);
        assert_eq!(
            kinds(&r),
            [(
                Kind::DigestAltered,
                "parsed/_digests/999999999997-x.json".into()
            )]
        );
    }

    #[test]
    fn a_rewritten_digest_breaks_its_signature_and_the_next_ones_link() {
        let key = signing_key(3);
        let b = bucket(3, Some(&key));
        let mut e = b.evidence(0, 10 * 60_000);
        // Someone re-lists object 2 with the hash of their own version (and rewrites it).
        let target = digest::key("parsed/", 2);
        let d = e.digests.iter_mut().find(|d| d.key == target).unwrap();
        let mut opened = digest::open(&d.bytes).unwrap();
        opened.digest.objects[0] = Entry::new(&object_key(2), b"forged", 1);
        let json = serde_json::to_vec(&opened.digest).unwrap();
        d.bytes = digest::envelope(&json, opened.signature.as_ref());
        e.objects.insert(object_key(2), Some(b"forged".to_vec()));
        let spki = spki(&key);
        let r = check(
            &e,
            &Trust::Key {
                created_millis: None,
                id: Some(KEY_ID),
                spki: &spki,
            },
        );
        assert_eq!(
            kinds(&r),
            [
                (Kind::DigestAltered, target.clone()),
                (Kind::SignatureInvalid, target),
            ]
        );
    }

    #[test]
    fn signatures_must_be_the_deployments() {
        let b = bucket(2, Some(&signing_key(9)));
        let theirs = spki(&signing_key(3));
        let r = check(
            &b.evidence(0, 10 * 60_000),
            &Trust::Key {
                created_millis: None,
                id: None,
                spki: &theirs,
            },
        );
        assert_eq!(r.findings.len(), 2);
        assert!(r.findings.iter().all(|f| f.kind == Kind::SignatureInvalid));
        let r = check(
            &b.evidence(0, 10 * 60_000),
            &Trust::Key {
                created_millis: None,
                id: Some("arn:aws:kms:eu-west-1:123456789012:key/other"),
                spki: &theirs,
            },
        );
        assert!(r.findings[0].detail.contains("not the deployment's key"));
        // Unsigned digests where the deployment signs: each named.
        let unsigned = bucket(2, None);
        let r = check(
            &unsigned.evidence(0, 10 * 60_000),
            &Trust::Key {
                created_millis: None,
                id: Some(KEY_ID),
                spki: &theirs,
            },
        );
        assert_eq!(
            r.findings.iter().map(|f| f.kind).collect::<Vec<_>>(),
            [Kind::Unsigned, Kind::Unsigned]
        );
        // A deployment that predates its key: digests S3 stored before the key was created are
        // counted, not findings; one stored after it (written, or rewritten, since) is named.
        let r = check(
            &unsigned.evidence(0, 10 * 60_000),
            &Trust::Key {
                created_millis: Some(100_000),
                id: Some(KEY_ID),
                spki: &theirs,
            },
        );
        assert_eq!(r.unsigned, 1);
        assert_eq!(
            kinds(&r),
            [(Kind::Unsigned, digest::key("parsed/", 2))],
            "{:?}",
            r.findings
        );
    }

    #[test]
    fn public_keys_are_read_as_der_or_pem_and_anything_else_is_refused() {
        let der = spki(&signing_key(3));
        assert_eq!(read_public_key(&der).unwrap(), der);
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&der)
        );
        assert_eq!(read_public_key(pem.as_bytes()).unwrap(), der);
        assert!(read_public_key(b"hello").unwrap_err().contains("P-384"));
        let mut off_curve = der.clone();
        let last = off_curve.len() - 1;
        off_curve[last] ^= 1;
        assert!(read_public_key(&off_curve).unwrap_err().contains("curve"));
    }
}
