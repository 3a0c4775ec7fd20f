//! A call to an AWS API signed with the SDK's own SigV4 signer (`aws-sigv4`), with the SDK's
//! credentials and endpoint settings, for the few operations where a generated SDK crate costs
//! more than it brings: Security Hub's two REST-JSON operations in the Lambda (its crate is
//! 25 MB of source, against the zip's 4 MB budget), and Glue's and Athena's JSON 1.1 operations
//! in das-setup (their crates would add minutes to every build for a dozen calls).
//!
//! Endpoint: `AWS_ENDPOINT_URL_<SERVICE>`, else the SDK's configured endpoint
//! (`AWS_ENDPOINT_URL`), else `https://<endpoint prefix>.<region>.amazonaws.com` (`.com.cn` in
//! China): the SDK's endpoint rules for the standard (not FIPS, not dual-stack) endpoints.
//! Retries: throttling (429, or a throttling error code), server errors (5xx) and connection
//! failures, with exponential backoff, as the SDK's standard retry mode does.

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials as _;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::http::{HttpConnector as _, SharedHttpConnector};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use http_body_util::BodyExt as _;
use serde_json::Value;

/// The error codes AWS services use for throttling (the AWS SDKs' common list, as
/// `aws-runtime`'s retry classifier has it), for the JSON protocols that answer them with 400.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// One service, as its model names it.
#[derive(Clone, Debug)]
pub struct Service {
    /// The SigV4 signing name (the model's `signingName`).
    pub signing_name: &'static str,
    /// The endpoint host's first label (the model's `endpointPrefix`).
    pub endpoint_prefix: &'static str,
    /// The service-specific endpoint variable the SDKs read (`AWS_ENDPOINT_URL_<SERVICE ID>`).
    pub endpoint_variable: &'static str,
}

/// What the service answered: the HTTP status, the error type (without its `namespace#`), and
/// the body (JSON; `Null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub error_type: Option<String>,
    pub body: Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error in a line: its type and message; never the request's content.
    pub fn describe(&self) -> String {
        describe(self.status, self.error_type.as_deref(), &self.body)
    }
}

#[derive(Clone, Debug)]
pub struct SignedClient {
    config: SdkConfig,
    service: Service,
    region: String,
    partition: String,
    user_agent: String,
    attempts: u32,
    connector: SharedHttpConnector,
}

impl SignedClient {
    /// `user_agent` names the caller (the SDK config's app name is added, as the SDK's own user
    /// agent carries it); `timeout` bounds the connection and each read.
    pub fn new(
        config: &SdkConfig,
        service: Service,
        region: &str,
        partition: &str,
        user_agent: &str,
        attempts: u32,
        timeout: Duration,
    ) -> Self {
        let mut agent = user_agent.to_owned();
        if let Some(app) = config.app_name() {
            agent.push_str(&format!(" app/{app}"));
        }
        Self {
            config: config.clone(),
            service,
            region: region.to_owned(),
            partition: partition.to_owned(),
            user_agent: agent,
            attempts: attempts.max(1),
            connector: crate::https::connector(Some(timeout), Some(timeout)),
        }
    }

    pub fn endpoint(&self) -> String {
        let configured = std::env::var(self.service.endpoint_variable)
            .ok()
            .filter(|u| !u.trim().is_empty())
            .or_else(|| self.config.endpoint_url().map(str::to_owned));
        match configured {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let suffix = if self.partition == "aws-cn" {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                format!(
                    "https://{}.{}.{suffix}",
                    self.service.endpoint_prefix, self.region
                )
            }
        }
    }

    /// One signed call, retried as the SDK would. `Err`: no answer (credentials, signing, the
    /// connection); an answer with an error status is `Ok`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, String> {
        let provider = self
            .config
            .credentials_provider()
            .ok_or("no AWS credentials are configured")?;
        let mut delay = Duration::from_millis(200);
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            // Credentials are cached by the provider; asked each attempt so a refresh is seen.
            let credentials = provider
                .provide_credentials()
                .await
                .map_err(|e| format!("credentials: {e}"))?;
            let identity: Identity = credentials.into();
            let url = format!("{}{path}", self.endpoint());
            let target = Target {
                region: &self.region,
                signing_name: self.service.signing_name,
                method,
                url: &url,
            };
            let mut request = signed(&identity, &target, headers, body)?;
            if let Ok(agent) = http::HeaderValue::try_from(self.user_agent.as_str()) {
                // Who calls, as CloudTrail records it (unsigned, like the SDK's own).
                request.headers_mut().insert("user-agent", agent);
            }
            match self.connector.call(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let error_type = response
                        .headers()
                        .get("x-amzn-errortype")
                        .map(|t| t.split(':').next().unwrap_or(t).to_owned());
                    let bytes = response
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| format!("reading the answer: {e}"))?
                        .to_bytes();
                    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    // JSON errors: the type in `x-amzn-ErrorType`, or the body's `__type`
                    // (either may carry a `namespace#` before it).
                    let error_type = error_type
                        .or_else(|| {
                            body.get("__type")
                                .and_then(Value::as_str)
                                .map(str::to_owned)
                        })
                        .map(|t| t.rsplit('#').next().unwrap_or(&t).to_owned());
                    let answer = Answer {
                        status,
                        error_type,
                        body,
                    };
                    if retryable(&answer) && attempt < self.attempts {
                        last = answer.describe();
                    } else {
                        return Ok(answer);
                    }
                }
                Err(e) => {
                    last = format!("the connection failed: {e}");
                    if attempt == self.attempts {
                        return Err(last);
                    }
                }
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        Err(last)
    }
}

/// Throttling and server errors are worth another attempt.
fn retryable(answer: &Answer) -> bool {
    answer.status == 429
        || answer.status >= 500
        || (!answer.ok()
            && answer
                .error_type
                .as_deref()
                .is_some_and(|t| THROTTLING_CODES.contains(&t)))
}

/// Where one request goes.
struct Target<'a> {
    region: &'a str,
    signing_name: &'a str,
    method: &'a str,
    url: &'a str,
}

fn signed(
    identity: &Identity,
    target: &Target<'_>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpRequest, String> {
    let mut builder = http::Request::builder()
        .method(target.method)
        .uri(target.url);
    let has_type = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if !has_type {
        builder = builder.header("content-type", "application/json");
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder
        .body(SdkBody::from(body.to_vec()))
        .map_err(|e| format!("building the request: {e}"))?;
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(target.region)
        .name(target.signing_name)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("signing: {e}"))?
        .into();
    let headers = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
    let signable = SignableRequest::new(
        target.method,
        target.url,
        headers,
        SignableBody::Bytes(body),
    )
    .map_err(|e| format!("signing: {e}"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| format!("signing: {e}"))?
        .into_parts();
    instructions.apply_to_request_http1x(&mut request);
    HttpRequest::try_from(request).map_err(|e| format!("building the request: {e}"))
}

/// An error answer in a line: its type and message (AWS's JSON errors carry `x-amzn-ErrorType`
/// or `__type`, and a `message` or `Message`); never the request's content.
pub fn describe(status: u16, error_type: Option<&str>, body: &Value) -> String {
    let code = error_type
        .map(str::to_owned)
        .or_else(|| body.get("Code").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| format!("HTTP {status}"));
    let message = ["message", "Message"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str))
        .unwrap_or("");
    format!("{code}: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_name_the_type_and_message_only() {
        let body = json!({"message": "Account is not subscribed to AWS Security Hub"});
        assert_eq!(
            describe(401, Some("InvalidAccessException"), &body),
            "InvalidAccessException: Account is not subscribed to AWS Security Hub"
        );
        assert_eq!(describe(503, None, &Value::Null), "HTTP 503: ");
    }

    #[test]
    fn throttling_and_server_errors_are_retried_others_are_not() {
        let answer = |status, t: Option<&str>| Answer {
            status,
            error_type: t.map(str::to_owned),
            body: Value::Null,
        };
        assert!(retryable(&answer(400, Some("ThrottlingException"))));
        assert!(retryable(&answer(400, Some("TooManyRequestsException"))));
        assert!(retryable(&answer(429, None)));
        assert!(retryable(&answer(503, None)));
        assert!(!retryable(&answer(400, Some("EntityNotFoundException"))));
        assert!(!retryable(&answer(403, Some("AccessDeniedException"))));
        assert!(!retryable(&answer(200, None)));
    }

    #[test]
    fn the_request_is_signed_for_the_service_in_the_region_with_its_headers() {
        let identity: Identity =
            aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test")
                .into();
        let target = Target {
            region: "eu-west-1",
            signing_name: "glue",
            method: "POST",
            url: "https://glue.eu-west-1.amazonaws.com/",
        };
        let r = signed(
            &identity,
            &target,
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "AWSGlue.GetTable"),
            ],
            b"{}",
        )
        .unwrap();
        let auth = r.headers().get("authorization").unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
                && auth.contains("/eu-west-1/glue/aws4_request")
                && auth.contains("x-amz-target"),
            "{auth}"
        );
        assert_eq!(
            r.headers().get("content-type"),
            Some("application/x-amz-json-1.1")
        );
        assert!(r.headers().get("x-amz-date").is_some());
    }
}
