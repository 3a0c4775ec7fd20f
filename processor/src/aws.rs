//! The AWS side of the processor: KMS `Decrypt` as a [`KeySource`], S3 `PutObject` as an
//! [`ObjectSink`], and the SDK configuration they share.
//!
//! The endpoint is the standard one unless `AWS_ENDPOINT_URL` says otherwise (the local emulator);
//! then S3 uses path-style addressing, as emulators need. Nothing else differs.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_s3::primitives::ByteStream;
use zeroize::Zeroizing;

use crate::keys::{DataKey, EncryptionContext, KeyError, KeySource};
use crate::sink::{ObjectSink, SinkError};

/// Loads region, credentials and endpoint the standard way (environment, profile, container or
/// instance role), over the processor's own HTTP client (`https`: no C dependency).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(crate::https::http_client())
        .load()
        .await
}

/// KMS `Decrypt` of DAS data keys.
#[derive(Clone, Debug)]
pub struct KmsKeys {
    client: aws_sdk_kms::Client,
}

impl KmsKeys {
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_kms::Client::new(config),
        }
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
