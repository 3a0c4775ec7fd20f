//! The AWS clients of one run, built once from the global flags, and the one error type every
//! AWS call of the provisioner maps into: it names the API action (so a missing permission is
//! named as IAM names it), the resource, the service's error code and its message.
//!
//! The endpoint is AWS's unless `--endpoint-url` / `AWS_ENDPOINT_URL` says otherwise (the local
//! emulator); then S3 uses path-style addressing. Every other code path is the same.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_config::retry::RetryConfig;
use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};

/// Attempts per AWS call, the first included (see `Clients::load`).
pub const MAX_ATTEMPTS: u32 = 5;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_types::retry::{ErrorKind as RetryKind, ProvideErrorKind};

use crate::cli::GlobalArgs;
use crate::json_api::{self, JsonApi};

/// das-setup's HTTP client: the SDK's hyper client with rustls on ring. (The processor has its
/// own, with no C dependency, for the Lambda's cross builds; das-setup runs where it was built,
/// and ring supports every CPU its host may have, where the processor's provider needs the
/// AES and carry-less multiply instructions every Lambda host has.)
pub fn http_client() -> aws_sdk_s3::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// One client per service `up`, `down`, `status` and `tail` call.
#[derive(Clone, Debug)]
pub struct Clients {
    pub config: SdkConfig,
    pub rds: aws_sdk_rds::Client,
    pub iam: aws_sdk_iam::Client,
    pub kms: aws_sdk_kms::Client,
    pub s3: aws_sdk_s3::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub firehose: aws_sdk_firehose::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub sts: aws_sdk_sts::Client,
    pub kinesis: aws_sdk_kinesis::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    pub sns: aws_sdk_sns::Client,
    /// Glue's Data Catalog and Athena (`json_api`: signed JSON 1.1 calls, no SDK crate).
    pub glue: JsonApi,
    pub athena: JsonApi,
}

impl Clients {
    /// Region, profile and endpoint from the flags, the rest from the standard chain.
    pub async fn load(global: &GlobalArgs) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client());
        // `app/das-setup` in every request's user agent: CloudTrail (and the emulator's call
        // log) can tell das-setup's calls from others'.
        if let Ok(name) = AppName::new("das-setup") {
            loader = loader.app_name(name);
        }
        // Throttling and 5xx answers are retried with the SDK's standard exponential back-off;
        // `up` makes bursts of concurrent calls, so five attempts rather than the SDK's three,
        // unless the user chose with AWS_MAX_ATTEMPTS (which the SDK reads itself).
        if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() {
            loader = loader.retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
        }
        if let Some(region) = &global.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(profile) = &global.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &global.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        Self::new(loader.load().await)
    }

    /// The clients of one configuration (tests give theirs an in-process HTTP client).
    pub fn new(config: SdkConfig) -> Self {
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(config.endpoint_url().is_some())
            .build();
        Self {
            rds: aws_sdk_rds::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            kms: aws_sdk_kms::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3),
            lambda: aws_sdk_lambda::Client::new(&config),
            firehose: aws_sdk_firehose::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            sts: aws_sdk_sts::Client::new(&config),
            kinesis: aws_sdk_kinesis::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            tagging: aws_sdk_resourcegroupstagging::Client::new(&config),
            sns: aws_sdk_sns::Client::new(&config),
            glue: JsonApi::new(&config, json_api::GLUE),
            athena: JsonApi::new(&config, json_api::ATHENA),
            config,
        }
    }

    pub fn region(&self) -> Option<&str> {
        self.config.region().map(Region::as_ref)
    }
}

/// What kind of failure an AWS call met, decided from the SDK's error variants: the transport
/// (no answer), or the service's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No usable answer: connection, DNS, TLS, timeout, or a response that could not be read.
    Transport,
    /// The caller lacks a permission.
    AccessDenied,
    /// The service kept rate-limiting after the SDK's own retries.
    Throttling,
    /// Any other error the service answered with.
    Service,
    /// das-setup found the request or the answer unusable (a missing field, a builder refusal).
    Invalid,
}

/// The error codes AWS uses for a missing permission. No service models them per operation:
/// they are the common errors of the AWS APIs ("AccessDeniedException: You do not have
/// sufficient access to perform this action", <https://docs.aws.amazon.com/kms/latest/APIReference/CommonErrors.html>,
/// the same list in every JSON service's reference), IAM's and STS's query-protocol spelling
/// `AccessDenied` (<https://docs.aws.amazon.com/IAM/latest/APIReference/CommonErrors.html>) and
/// S3's `AccessDenied` (<https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>).
const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "AuthorizationErrorException",
];

/// A failed AWS call.
#[derive(Debug, Clone)]
pub struct AwsError {
    /// The IAM action name of the call, e.g. `iam:CreateRole`.
    pub action: &'static str,
    /// What it was called on.
    pub resource: String,
    pub kind: ErrorKind,
    /// The service's error code (`AccessDenied`, `NoSuchEntity` ...), when it answered.
    pub code: Option<String>,
    pub message: String,
}

impl AwsError {
    pub fn new<E, R>(
        action: &'static str,
        resource: impl Into<String>,
        error: SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + ProvideErrorKind + std::error::Error + 'static,
        R: fmt::Debug,
    {
        let code = error.code().map(str::to_owned);
        let kind = match &error {
            SdkError::ConstructionFailure(_) => ErrorKind::Invalid,
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => ErrorKind::Transport,
            SdkError::ServiceError(e) => classify(e.err()),
            _ => ErrorKind::Service,
        };
        let message = match error.message() {
            Some(m) if !m.is_empty() => m.to_owned(),
            _ => DisplayErrorContext(&error).to_string(),
        };
        Self {
            action,
            resource: resource.into(),
            kind,
            code,
            message,
        }
    }

    /// An error found by das-setup itself in an answer, not returned by the service.
    pub fn invalid(action: &'static str, resource: impl Into<String>, message: String) -> Self {
        Self {
            action,
            resource: resource.into(),
            kind: ErrorKind::Invalid,
            code: None,
            message,
        }
    }

    /// The caller lacks a permission.
    pub fn is_access_denied(&self) -> bool {
        self.kind == ErrorKind::AccessDenied
    }

    /// The service's code is this one: for the errors AWS documents but does not model
    /// (each caller cites the documentation of the code it matches).
    pub fn code_is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// A service error's kind: the SDK's own retry classification of modelled errors first, then
/// the codes AWS documents for throttling (the SDK's list, which its retry strategy uses) and
/// for a missing permission.
fn classify<E: ProvideErrorMetadata + ProvideErrorKind>(e: &E) -> ErrorKind {
    let code = ProvideErrorMetadata::code(e).unwrap_or_default();
    if e.retryable_error_kind() == Some(RetryKind::ThrottlingError) {
        ErrorKind::Throttling
    } else {
        kind_of_code(code, 400)
    }
}

/// The kind of an error the service answered with `code` and HTTP `status`, where no modelled
/// error says (the calls made without a generated SDK crate, `json_api`).
pub(crate) fn kind_of_code(code: &str, status: u16) -> ErrorKind {
    if status == 429 || aws_runtime::retries::classifiers::THROTTLING_ERRORS.contains(&code) {
        ErrorKind::Throttling
    } else if ACCESS_DENIED_CODES.contains(&code) {
        ErrorKind::AccessDenied
    } else {
        ErrorKind::Service
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {} failed", self.action, self.resource)?;
        match &self.code {
            Some(code) => write!(f, ": {code}: {}", self.message)?,
            None => write!(f, ": {}", self.message)?,
        }
        match self.kind {
            ErrorKind::AccessDenied => write!(
                f,
                " (the deploying principal needs {} on {})",
                self.action, self.resource
            )?,
            ErrorKind::Throttling => {
                write!(f, " (throttled after retries; run the command again)")?;
            }
            ErrorKind::Transport => write!(
                f,
                " (no answer from AWS: check the network, the region and --endpoint-url)"
            )?,
            ErrorKind::Service | ErrorKind::Invalid => {}
        }
        Ok(())
    }
}

impl std::error::Error for AwsError {}

/// `-v`: every AWS call is listed on stderr as it returns.
static VERBOSE: AtomicBool = AtomicBool::new(false);

pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

pub(crate) fn trace<T>(action: &str, resource: &str, result: &Result<T, AwsError>) {
    if VERBOSE.load(Ordering::Relaxed) {
        match result {
            Ok(_) => crate::errln!("  · {action} {resource}: ok"),
            Err(e) => crate::errln!(
                "  · {action} {resource}: {}",
                e.code.as_deref().unwrap_or("failed")
            ),
        }
    }
}

/// `call.await` with the action and resource named once, and the modelled errors a caller
/// expects turned into values.
pub trait Named<T, E> {
    /// Every error is an [`AwsError`].
    fn named(self, action: &'static str, resource: &str) -> Result<T, AwsError>;

    /// `Ok(None)` when `absent` says the modelled error means "does not exist".
    fn or_absent(
        self,
        action: &'static str,
        resource: &str,
        absent: impl Fn(&E) -> bool,
    ) -> Result<Option<T>, AwsError>;
}

impl<T, E, R> Named<T, E> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + ProvideErrorKind + std::error::Error + 'static,
    R: fmt::Debug,
{
    fn named(self, action: &'static str, resource: &str) -> Result<T, AwsError> {
        let result = self.map_err(|e| AwsError::new(action, resource, e));
        trace(action, resource, &result);
        result
    }

    fn or_absent(
        self,
        action: &'static str,
        resource: &str,
        absent: impl Fn(&E) -> bool,
    ) -> Result<Option<T>, AwsError> {
        let result = match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.as_service_error().is_some_and(&absent) => Ok(None),
            Err(e) => Err(AwsError::new(action, resource, e)),
        };
        trace(action, resource, &result);
        result
    }
}

/// `Ok(None)` for an error AWS documents by its code only (no modelled error): the caller cites
/// the documentation of `code`.
pub fn absent_by_code<T>(result: Result<T, AwsError>, code: &str) -> Result<Option<T>, AwsError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind == ErrorKind::Service && e.code_is(code) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A value the service must return; its absence is an error naming the field.
pub fn required<T>(
    value: Option<T>,
    action: &'static str,
    resource: &str,
    field: &str,
) -> Result<T, AwsError> {
    value.ok_or_else(|| AwsError::invalid(action, resource, format!("the answer has no {field}")))
}

/// A string the service must return, non-empty.
pub fn required_str(
    value: Option<&str>,
    action: &'static str,
    resource: &str,
    field: &str,
) -> Result<String, AwsError> {
    match value {
        Some(v) if !v.is_empty() => Ok(v.to_owned()),
        _ => Err(AwsError::invalid(
            action,
            resource,
            format!("the answer has no {field}"),
        )),
    }
}

/// IAM returns policy documents URL-encoded (RFC 3986: `+` is a plus); emulators sometimes do
/// not. Both parse.
pub fn policy_document(text: &str) -> Option<serde_json::Value> {
    serde_json::from_str(text)
        .ok()
        .or_else(|| serde_json::from_str(&percent_decode(text)?).ok())
}

/// `%XX` escapes decoded (no `+` rule: RFC 3986); `None` for a broken escape or non-UTF-8.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_documents_parse_plain_or_url_encoded() {
        let plain = r#"{"Version":"2012-10-17","Statement":[]}"#;
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(policy_document(plain), policy_document(encoded));
        assert!(policy_document(plain).is_some());
        assert_eq!(policy_document("%7"), None);
        assert_eq!(policy_document("not json"), None);
    }

    #[test]
    fn access_denied_names_the_action() {
        let e = AwsError {
            action: "iam:CreateRole",
            resource: "role r".into(),
            kind: ErrorKind::AccessDenied,
            code: Some("AccessDenied".into()),
            message: "no".into(),
        };
        assert!(
            e.to_string().contains("needs iam:CreateRole on role r"),
            "{e}"
        );
    }
}
