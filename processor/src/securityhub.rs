//! Security Hub's `BatchImportFindings` and `DescribeHub`, signed with the SDK's own SigV4
//! signer (`aws-sigv4`), with the SDK's credentials and endpoint settings, over the processor's
//! HTTP client.
//!
//! Why not `aws-sdk-securityhub`: it is 25 MB of source (ASFF's hundreds of resource types),
//! 127 s of release build on the CI machine for one crate, and its request serializer covers
//! every one of those types, which would cost the Lambda zip (issue 3: at most 4 MB) far more
//! than the two REST-JSON operations used here (Security Hub API reference:
//! `POST /findings/import`, body `{"Findings": [...]}`, answer `FailedCount`, `SuccessCount`,
//! `FailedFindings[{Id, ErrorCode, ErrorMessage}]`; `GET /accounts`). `das-setup up
//! --security-hub` asks `DescribeHub` first (the same module), so a hub that is not enabled is
//! refused before any change instead of failing every batch.
//!
//! Endpoint: `AWS_ENDPOINT_URL_SECURITYHUB`, else the SDK's configured endpoint
//! (`AWS_ENDPOINT_URL`), else `https://securityhub.<region>.amazonaws.com` (`.com.cn` in China):
//! the SDK's endpoint rules for the standard (not FIPS, not dual-stack) endpoints.
//! Retries: throttling (429), server errors (5xx) and connection failures, three attempts with
//! backoff, as the SDK's standard retry mode does.

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
use serde_json::{Value, json};

use crate::finding::{HubTarget, finding};
use crate::notify::Notice;

/// The signing name (Security Hub's service model, `signingName`).
const SIGNING_NAME: &str = "securityhub";
const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(10);

/// What Security Hub answered: the HTTP status and the body (JSON).
struct Answer {
    status: u16,
    error_type: Option<String>,
    body: Value,
}

#[derive(Clone, Debug)]
pub struct SecurityHub {
    config: SdkConfig,
    target: HubTarget,
    connector: SharedHttpConnector,
}

impl SecurityHub {
    pub fn new(config: &SdkConfig, target: HubTarget) -> Self {
        Self {
            config: config.clone(),
            target,
            connector: crate::https::connector(Some(TIMEOUT), Some(TIMEOUT)),
        }
    }

    pub fn target(&self) -> &HubTarget {
        &self.target
    }

    /// The processor and version, and the SDK config's app name (`app/das-setup` for the
    /// provisioner), as the SDK's own user agent carries them.
    fn user_agent(&self) -> String {
        let mut agent = format!(
            "das-processor/{} securityhub-signed-request",
            env!("CARGO_PKG_VERSION")
        );
        if let Some(app) = self.config.app_name() {
            agent.push_str(&format!(" app/{app}"));
        }
        agent
    }

    fn endpoint(&self) -> String {
        let configured = std::env::var("AWS_ENDPOINT_URL_SECURITYHUB")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .or_else(|| self.config.endpoint_url().map(str::to_owned));
        match configured {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let suffix = if self.target.partition == "aws-cn" {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                format!("https://securityhub.{}.{suffix}", self.target.region)
            }
        }
    }

    /// One signed call, retried as the SDK would. `Err`: no answer (credentials, signing, the
    /// connection); an answer with an error status is `Ok`.
    async fn call(&self, method: &str, path: &str, body: &[u8]) -> Result<Answer, String> {
        let provider = self
            .config
            .credentials_provider()
            .ok_or("no AWS credentials are configured")?;
        let mut delay = Duration::from_millis(200);
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            // Credentials are cached by the provider; asked each attempt so a refresh is seen.
            let credentials = provider
                .provide_credentials()
                .await
                .map_err(|e| format!("credentials: {e}"))?;
            let identity: Identity = credentials.into();
            let url = format!("{}{path}", self.endpoint());
            let mut request = signed(&identity, &self.target.region, method, &url, body)?;
            if let Ok(agent) = http::HeaderValue::try_from(self.user_agent()) {
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
                    // REST-JSON errors: the type in `x-amzn-ErrorType`, or the body's `__type`
                    // (either may carry a `namespace#` before it).
                    let error_type = error_type
                        .or_else(|| {
                            body.get("__type")
                                .and_then(Value::as_str)
                                .map(str::to_owned)
                        })
                        .map(|t| t.rsplit('#').next().unwrap_or(&t).to_owned());
                    let retry = status == 429 || status >= 500;
                    if retry && attempt < ATTEMPTS {
                        last = describe(status, error_type.as_deref(), &body);
                    } else {
                        return Ok(Answer {
                            status,
                            error_type,
                            body,
                        });
                    }
                }
                Err(e) => {
                    last = format!("the connection failed: {e}");
                    if attempt == ATTEMPTS {
                        return Err(last);
                    }
                }
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        Err(last)
    }

    /// Imports one finding per notice; a result per notice, in order.
    pub async fn import(&self, notices: &[&Notice]) -> Vec<Result<(), String>> {
        let all = |reason: String| notices.iter().map(|_| Err(reason.clone())).collect();
        let findings: Vec<Value> = notices.iter().map(|n| finding(n, &self.target)).collect();
        let body = json!({ "Findings": findings }).to_string();
        let answer = match self.call("POST", "/findings/import", body.as_bytes()).await {
            Ok(a) => a,
            Err(e) => return all(e),
        };
        if answer.status != 200 {
            return all(describe(
                answer.status,
                answer.error_type.as_deref(),
                &answer.body,
            ));
        }
        results(notices, &answer.body)
    }

    /// Whether Security Hub is enabled in the target's account and region (`DescribeHub`).
    pub async fn enabled(&self) -> Result<bool, String> {
        let answer = self.call("GET", "/accounts", b"").await?;
        match answer.status {
            200 => Ok(true),
            // "Account is not subscribed to AWS Security Hub" (DescribeHub API reference,
            // InvalidAccessException).
            401 if answer.error_type.as_deref() == Some("InvalidAccessException") => Ok(false),
            status => Err(describe(status, answer.error_type.as_deref(), &answer.body)),
        }
    }
}

fn signed(
    identity: &Identity,
    region: &str,
    method: &str,
    url: &str,
    body: &[u8],
) -> Result<HttpRequest, String> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(SdkBody::from(body.to_vec()))
        .map_err(|e| format!("building the request: {e}"))?;
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name(SIGNING_NAME)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("signing: {e}"))?
        .into();
    let headers = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
    let signable = SignableRequest::new(method, url, headers, SignableBody::Bytes(body))
        .map_err(|e| format!("signing: {e}"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| format!("signing: {e}"))?
        .into_parts();
    instructions.apply_to_request_http1x(&mut request);
    HttpRequest::try_from(request).map_err(|e| format!("building the request: {e}"))
}

/// An error answer in a line: its type and message (Security Hub's REST-JSON errors carry
/// `x-amzn-ErrorType` and a `message` or `Message`); never the request's content.
fn describe(status: u16, error_type: Option<&str>, body: &Value) -> String {
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

/// Per notice: imported, or the failed finding's error.
fn results(notices: &[&Notice], body: &Value) -> Vec<Result<(), String>> {
    let failed = body
        .get("FailedFindings")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let success = body.get("SuccessCount").and_then(Value::as_u64);
    let failed_count = body.get("FailedCount").and_then(Value::as_u64);
    notices
        .iter()
        .map(|n| {
            let id = format!("das-setup/{}", n.alert_id);
            match failed
                .iter()
                .find(|f| f.get("Id").and_then(Value::as_str) == Some(id.as_str()))
            {
                Some(f) => Err(format!(
                    "{}: {}",
                    f.get("ErrorCode")
                        .and_then(Value::as_str)
                        .unwrap_or("failed"),
                    f.get("ErrorMessage").and_then(Value::as_str).unwrap_or("")
                )),
                // An answer without counts is not Security Hub's.
                None if success.is_none() || failed_count.is_none() => {
                    Err("Security Hub's answer had no SuccessCount / FailedCount".to_owned())
                }
                None => Ok(()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(id: &str) -> Notice {
        let mut n = crate::notify::tests::notice_for_tests("table-dropped");
        n.alert_id = id.to_owned();
        n
    }

    #[test]
    fn each_notice_gets_its_findings_result() {
        let (a, b) = (notice("aaa"), notice("bbb"));
        let body = json!({"FailedCount": 1, "SuccessCount": 1, "FailedFindings": [
            {"Id": "das-setup/bbb", "ErrorCode": "InvalidInput", "ErrorMessage": "Title too long"}]});
        let r = results(&[&a, &b], &body);
        assert_eq!(r[0], Ok(()));
        assert_eq!(r[1], Err("InvalidInput: Title too long".to_owned()));
        let r = results(&[&a], &json!({"unexpected": true}));
        assert!(r[0].as_ref().unwrap_err().contains("no SuccessCount"));
    }

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
    fn the_request_is_signed_for_security_hub_in_the_region() {
        let identity: Identity =
            aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test")
                .into();
        let r = signed(
            &identity,
            "eu-west-1",
            "POST",
            "https://securityhub.eu-west-1.amazonaws.com/findings/import",
            b"{}",
        )
        .unwrap();
        let auth = r.headers().get("authorization").unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
                && auth.contains("/eu-west-1/securityhub/aws4_request"),
            "{auth}"
        );
        assert!(r.headers().get("x-amz-date").is_some());
    }
}
