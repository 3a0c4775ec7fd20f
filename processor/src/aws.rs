//! The AWS side of the processor: KMS `Decrypt` as a [`KeySource`] and `Sign` as a
//! [`DigestSigner`], S3 `PutObject` as an [`ObjectSink`] and the digest chain's reads and
//! conditional writes as a [`DigestStore`], SNS and EventBridge as an [`AlertSink`], and the
//! SDK configuration they share.
//!
//! The endpoint is the standard one unless `AWS_ENDPOINT_URL` says otherwise (the local emulator);
//! then S3 uses path-style addressing, as emulators need. Nothing else differs.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use futures_util::future::BoxFuture;
use zeroize::Zeroizing;

use crate::digest::{DigestSigner, DigestStore, Signature};
use crate::finding::HubTarget;
use crate::keys::{DataKey, EncryptionContext, KeyError, KeySource};
use crate::notify::{AlertSink, Destination, Notice};
use crate::securityhub::SecurityHub;
use crate::sink::{ObjectSink, SinkError};

/// Loads region, credentials and endpoint the standard way (environment, profile, container or
/// instance role), over the processor's own HTTP client (`https`: no C dependency).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(crate::https::http_client())
        .load()
        .await
}

/// KMS `Decrypt` of DAS data keys, and `Sign` of digests with the signing key, if any.
#[derive(Clone, Debug)]
pub struct KmsKeys {
    client: aws_sdk_kms::Client,
    signing_key: Option<String>,
}

/// The signing algorithm of an ECC_NIST_P384 key, the kind `DAS_DIGEST_KEY` names.
pub const SIGNING_ALGORITHM: aws_sdk_kms::types::SigningAlgorithmSpec =
    aws_sdk_kms::types::SigningAlgorithmSpec::EcdsaSha384;

impl KmsKeys {
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_kms::Client::new(config),
            signing_key: None,
        }
    }

    /// The same, signing digests with `key` (an asymmetric SIGN_VERIFY key).
    #[must_use]
    pub fn signing_with(self, key: Option<String>) -> Self {
        Self {
            signing_key: key,
            ..self
        }
    }
}

impl DigestSigner for KmsKeys {
    async fn sign(&self, message: &[u8]) -> Result<Signature, String> {
        let key = self.signing_key.as_deref().ok_or("no signing key")?;
        // RAW: KMS hashes the message (SHA-384 for ECDSA_SHA_384); the message is a digest's
        // key and hash, well under Sign's 4096-byte limit (KMS API reference, Sign).
        let output = self
            .client
            .sign()
            .key_id(key)
            .message(Blob::new(message))
            .message_type(aws_sdk_kms::types::MessageType::Raw)
            .signing_algorithm(SIGNING_ALGORITHM)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(&e).to_string())?;
        let value = output
            .signature
            .map(Blob::into_inner)
            .filter(|s| !s.is_empty())
            .ok_or("KMS returned no signature")?;
        Ok(Signature {
            key_id: output.key_id.unwrap_or_else(|| key.to_owned()),
            algorithm: SIGNING_ALGORITHM.as_str().to_owned(),
            value: base64::engine::general_purpose::STANDARD.encode(value),
        })
    }
}

impl KeySource for KmsKeys {
    async fn decrypt(
        &self,
        ciphertext: &[u8],
        context: &EncryptionContext,
    ) -> Result<DataKey, KeyError> {
        let output = self
            .client
            .decrypt()
            .ciphertext_blob(Blob::new(ciphertext))
            .encryption_context(context.key, &context.value)
            .send()
            .await
            .map_err(classify_kms_error)?;
        let plaintext = output.plaintext.map(Blob::into_inner).unwrap_or_default();
        let plaintext = Zeroizing::new(plaintext);
        let key: [u8; 32] = plaintext
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongLength(plaintext.len()))?;
        Ok(Zeroizing::new(key))
    }
}

/// KMS saying "no" fails the records of that key; KMS failing to answer fails the invocation.
fn classify_kms_error(error: SdkError<DecryptError>) -> KeyError {
    let text = DisplayErrorContext(&error).to_string();
    let SdkError::ServiceError(service) = &error else {
        // Dispatch, timeout, response errors: the call did not get a verdict.
        return KeyError::Unavailable(text);
    };
    match service.err() {
        DecryptError::DependencyTimeoutException(_)
        | DecryptError::KeyUnavailableException(_)
        | DecryptError::KmsInternalException(_) => KeyError::Unavailable(text),
        other => match other.code() {
            Some("ThrottlingException" | "RequestLimitExceeded" | "ServiceUnavailable") => {
                KeyError::Unavailable(text)
            }
            _ => KeyError::Refused(text),
        },
    }
}

/// S3 `PutObject` into the output bucket.
#[derive(Clone, Debug)]
pub struct S3Sink {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Sink {
    pub fn new(config: &SdkConfig, bucket: impl Into<String>) -> Self {
        let s3 = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(config.endpoint_url().is_some())
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(s3),
            bucket: bucket.into(),
        }
    }
}

impl S3Sink {
    fn error(&self, key: &str, reason: String) -> SinkError {
        SinkError {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            reason,
        }
    }
}

impl DigestStore for S3Sink {
    async fn keys(&self, folder: &str) -> Result<Vec<String>, SinkError> {
        // One page (up to 1000 keys, S3's default): the newest digest is the first of them.
        let listed = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(folder)
            .send()
            .await
            .map_err(|e| self.error(folder, DisplayErrorContext(&e).to_string()))?;
        Ok(listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect())
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, SinkError> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error(key, DisplayErrorContext(&e).to_string()))?;
        let body = output
            .body
            .collect()
            .await
            .map_err(|e| self.error(key, e.to_string()))?;
        Ok(body.into_bytes().to_vec())
    }

    async fn put_new(&self, key: &str, body: Vec<u8>) -> Result<bool, SinkError> {
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .if_none_match("*")
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            // 412: the key exists. 409 ConditionalRequestConflict: a concurrent conditional
            // write to it is in progress (S3 User Guide, "Conditional writes"). Either way this
            // number may be taken; the chain reads it and goes on.
            Err(SdkError::ServiceError(e)) if matches!(e.raw().status().as_u16(), 409 | 412) => {
                Ok(false)
            }
            Err(e) => Err(self.error(key, DisplayErrorContext(&e).to_string())),
        }
    }
}

impl ObjectSink for S3Sink {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), SinkError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(if key.ends_with(".gz") {
                "application/gzip"
            } else {
                "application/json"
            })
            .body(ByteStream::from(body))
            // A bucket under Object Lock refuses uploads without `Content-MD5` or
            // `x-amz-sdk-checksum-algorithm` ("required for any request to upload an object
            // with a retention period configured using Amazon S3 Object Lock", PutObject API
            // reference); naming the algorithm sends that header with the SDK's CRC32.
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| SinkError {
                bucket: self.bucket.clone(),
                key: key.to_owned(),
                reason: DisplayErrorContext(&e).to_string(),
            })
    }
}

/// SNS `PublishBatch` to the alert topic and EventBridge `PutEvents` to the alert bus.
#[derive(Clone, Debug)]
pub struct AwsAlerts {
    sns: aws_sdk_sns::Client,
    events: aws_sdk_eventbridge::Client,
    topic_arn: Option<String>,
    event_bus: Option<String>,
    security_hub: Option<SecurityHub>,
}

impl AwsAlerts {
    pub fn new(
        config: &SdkConfig,
        topic_arn: Option<String>,
        event_bus: Option<String>,
        security_hub: Option<HubTarget>,
    ) -> Self {
        Self {
            sns: aws_sdk_sns::Client::new(config),
            events: aws_sdk_eventbridge::Client::new(config),
            topic_arn,
            event_bus,
            security_hub: security_hub.map(|t| SecurityHub::new(config, t)),
        }
    }

    /// The destinations this sink was given.
    pub fn destinations(&self) -> Vec<Destination> {
        let mut d = Vec::new();
        if self.topic_arn.is_some() {
            d.push(Destination::Topic);
        }
        if self.event_bus.is_some() {
            d.push(Destination::EventBus);
        }
        if self.security_hub.is_some() {
            d.push(Destination::SecurityHub);
        }
        d
    }

    async fn publish_batch(&self, topic: &str, notices: &[&Notice]) -> Vec<Result<(), String>> {
        use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
        let attribute = |value: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
        };
        let entries: Result<Vec<_>, _> = notices
            .iter()
            .enumerate()
            .map(|(i, n)| {
                PublishBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message(n.sns_message())
                    .message_structure("json")
                    .subject(n.subject())
                    .message_attributes("severity", attribute(n.severity)?)
                    .message_attributes("rule", attribute(&n.rule)?)
                    .build()
            })
            .collect();
        let all = |reason: String| notices.iter().map(|_| Err(reason.clone())).collect();
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => return all(format!("building the request: {e}")),
        };
        let output = match self
            .sns
            .publish_batch()
            .topic_arn(topic)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => return all(DisplayErrorContext(&e).to_string()),
        };
        (0..notices.len())
            .map(|i| {
                let id = i.to_string();
                if output
                    .successful()
                    .iter()
                    .any(|s| s.id() == Some(id.as_str()))
                {
                    Ok(())
                } else if let Some(f) = output.failed().iter().find(|f| f.id() == id) {
                    Err(format!("{}: {}", f.code(), f.message().unwrap_or("")))
                } else {
                    Err("SNS did not answer for this entry".to_owned())
                }
            })
            .collect()
    }

    async fn put_events(&self, bus: &str, notices: &[&Notice]) -> Vec<Result<(), String>> {
        use aws_sdk_eventbridge::types::PutEventsRequestEntry;
        let entries = notices
            .iter()
            .map(|n| {
                let time = aws_smithy_types::DateTime::from_str(
                    &n.event_time,
                    aws_smithy_types::date_time::Format::DateTime,
                )
                .ok();
                PutEventsRequestEntry::builder()
                    .source(crate::notify::EVENT_SOURCE)
                    .detail_type(crate::notify::EVENT_DETAIL_TYPE)
                    .detail(n.to_json())
                    .event_bus_name(bus)
                    .set_time(time)
                    .build()
            })
            .collect();
        let all = |reason: String| notices.iter().map(|_| Err(reason.clone())).collect();
        let output = match self
            .events
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => return all(DisplayErrorContext(&e).to_string()),
        };
        // One result entry per request entry, in order (PutEvents API reference).
        let results = output.entries();
        (0..notices.len())
            .map(|i| match results.get(i) {
                Some(r) if r.error_code().is_none() && r.event_id().is_some() => Ok(()),
                Some(r) => Err(format!(
                    "{}: {}",
                    r.error_code().unwrap_or("no event id"),
                    r.error_message().unwrap_or("")
                )),
                None => Err("EventBridge did not answer for this entry".to_owned()),
            })
            .collect()
    }
}

impl AlertSink for AwsAlerts {
    fn send<'a>(
        &'a self,
        destination: Destination,
        notices: &'a [&'a Notice],
    ) -> BoxFuture<'a, Vec<Result<(), String>>> {
        Box::pin(async move {
            let missing = || {
                notices
                    .iter()
                    .map(|_| Err(format!("no {} configured", destination.as_str())))
                    .collect()
            };
            match destination {
                Destination::Topic => match &self.topic_arn {
                    Some(topic) => self.publish_batch(topic, notices).await,
                    None => missing(),
                },
                Destination::EventBus => match &self.event_bus {
                    Some(bus) => self.put_events(bus, notices).await,
                    None => missing(),
                },
                Destination::SecurityHub => match &self.security_hub {
                    Some(hub) => hub.import(notices).await,
                    None => missing(),
                },
            }
        })
    }
}
