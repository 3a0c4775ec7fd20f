//! The AWS clients of one run, built once from the global flags, and the one error type every
//! AWS call of the provisioner maps into: it names the API action (so a missing permission is
//! named as IAM names it), the resource, the service's error code and its message.
//!
//! The endpoint is AWS's unless `--endpoint-url` / `AWS_ENDPOINT_URL` says otherwise (the local
//! emulator); then S3 uses path-style addressing. Every other code path is the same.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::cli::GlobalArgs;

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
}

impl Clients {
    /// Region, profile and endpoint from the flags, the rest from the standard chain.
    pub async fn load(global: &GlobalArgs) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(das_processor::aws::http_client());
        // `app/das-setup` in every request's user agent: CloudTrail (and the emulator's call
        // log) can tell das-setup's calls from others'.
        if let Ok(name) = AppName::new("das-setup") {
            loader = loader.app_name(name);
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
        let config = loader.load().await;
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
            config,
        }
    }

    pub fn region(&self) -> Option<&str> {
        self.config.region().map(Region::as_ref)
    }
}

/// A failed AWS call.
#[derive(Debug, Clone)]
pub struct AwsError {
    /// The IAM action name of the call, e.g. `iam:CreateRole`.
    pub action: &'static str,
    /// What it was called on.
    pub resource: String,
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
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        let code = error.code().map(str::to_owned);
        let message = match error.message() {
            Some(m) if !m.is_empty() => m.to_owned(),
            _ => DisplayErrorContext(&error).to_string(),
        };
        Self {
            action,
            resource: resource.into(),
            code,
            message,
        }
    }

    /// An error found by das-setup itself in an answer, not returned by the service.
    pub fn invalid(action: &'static str, resource: impl Into<String>, message: String) -> Self {
        Self {
            action,
            resource: resource.into(),
            code: None,
            message,
        }
    }

    pub fn code_is(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| codes.contains(&c))
    }

    /// The caller lacks a permission (IAM's, S3's and KMS's spellings).
    pub fn is_access_denied(&self) -> bool {
        self.code_is(&[
            "AccessDenied",
            "AccessDeniedException",
            "UnauthorizedOperation",
            "AuthorizationError",
            "AuthorizationErrorException",
        ])
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {} failed", self.action, self.resource)?;
        match &self.code {
            Some(code) => write!(f, ": {code}: {}", self.message)?,
            None => write!(f, ": {}", self.message)?,
        }
        if self.is_access_denied() {
            write!(
                f,
                " (the deploying principal needs {} on {})",
                self.action, self.resource
            )?;
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

/// `call.await.map_err(...)` with the action and resource named once.
pub trait Named<T> {
    fn named(self, action: &'static str, resource: &str) -> Result<T, AwsError>;
}

impl<T, E, R> Named<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    fn named(self, action: &'static str, resource: &str) -> Result<T, AwsError> {
        let result = self.map_err(|e| AwsError::new(action, resource, e));
        if VERBOSE.load(Ordering::Relaxed) {
            match &result {
                Ok(_) => crate::errln!("  · {action} {resource}: ok"),
                Err(e) => crate::errln!(
                    "  · {action} {resource}: {}",
                    e.code.as_deref().unwrap_or("failed")
                ),
            }
        }
        result
    }
}

/// `Ok(None)` for the service's "not found" answers, the value otherwise.
pub fn found<T>(result: Result<T, AwsError>, not_found: &[&str]) -> Result<Option<T>, AwsError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.code_is(not_found) => Ok(None),
        Err(e) => Err(e),
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
            code: Some("AccessDenied".into()),
            message: "no".into(),
        };
        assert!(
            e.to_string().contains("needs iam:CreateRole on role r"),
            "{e}"
        );
    }
}
