//! Tests only: every AWS service of [`Clients`] behind one in-process HTTP client, so the code
//! that calls AWS is tested with the real SDK clients (request building, signing, response and
//! error parsing) and no network, no Python. Each test answers the calls it expects and records
//! them, so it can assert which calls were made, in which order, with what, and that nothing
//! was sent when nothing had to change.
//!
//! The answers follow the wire protocols of the AWS service models: `awsJson1_1` (KMS, Firehose,
//! CloudWatch Logs, Kinesis, Tagging; errors carry `__type`), `awsQuery` (IAM, RDS, STS; errors
//! in `<ErrorResponse>`), `restJson1` (Lambda; the code in `x-amzn-errortype`) and `restXml`
//! (S3; `<Error><Code>`).

use std::sync::{Arc, Mutex, PoisonError};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::http::{HttpRequest, HttpResponse};
use aws_sdk_s3::config::{
    Credentials, HttpClient, RuntimeComponents, SharedCredentialsProvider, SharedHttpClient,
};
use aws_sdk_s3::primitives::SdkBody;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};

use crate::aws::Clients;

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Call {
    /// `X-Amz-Target` (`TrentService.DescribeKey`), the query `Action` (`GetRole`), or
    /// `METHOD /path?query` for the REST services (Lambda, S3).
    pub operation: String,
    /// Request headers, names lower-cased.
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Answer {
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/x-amz-json-1.1".into())],
            body: body.to_owned(),
        }
    }

    /// `awsJson1_1` error.
    pub fn error_json(status: u16, code: &str, message: &str) -> Self {
        Self::json(
            status,
            &format!(r#"{{"__type":"{code}","message":"{message}"}}"#),
        )
    }

    /// `restJson1` (Lambda) answer.
    pub fn rest_json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_owned(),
        }
    }

    /// `restJson1` error.
    pub fn error_rest_json(status: u16, code: &str, message: &str) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type", "application/json".into()),
                ("x-amzn-errortype", code.to_owned()),
            ],
            body: format!(r#"{{"Type":"User","message":"{message}"}}"#),
        }
    }

    /// `awsQuery` / `restXml` answer.
    pub fn xml(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type", "text/xml".into())],
            body: body.to_owned(),
        }
    }

    /// `awsQuery` error.
    pub fn error_query(status: u16, code: &str, message: &str) -> Self {
        Self::xml(
            status,
            &format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
            ),
        )
    }

    /// `restXml` (S3) error.
    pub fn error_s3(status: u16, code: &str, message: &str) -> Self {
        Self::xml(
            status,
            &format!("<Error><Code>{code}</Code><Message>{message}</Message></Error>"),
        )
    }

    /// The answer with one more header.
    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    /// A call the test did not expect: answered 501, and the test's assertion on the calls
    /// names it.
    pub fn unexpected() -> Self {
        Self::error_json(501, "NotImplemented", "the test did not expect this call")
    }
}

type Responder = dyn Fn(&Call) -> Answer + Send + Sync;

#[derive(Clone)]
pub struct FakeAws {
    answer: Arc<Responder>,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl std::fmt::Debug for FakeAws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAws").finish_non_exhaustive()
    }
}

impl FakeAws {
    pub fn new(answer: impl Fn(&Call) -> Answer + Send + Sync + 'static) -> Self {
        Self {
            answer: Arc::new(answer),
            calls: Arc::default(),
        }
    }

    /// A fake that answers nothing: for asserting that no request is sent.
    pub fn silent() -> Self {
        Self::new(|_| Answer::unexpected())
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn operations(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.operation).collect()
    }

    /// The real clients of every service, talking to this (no retries: a test sees each call
    /// once).
    pub fn clients(&self) -> Clients {
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            )))
            .endpoint_url("http://aws.test")
            .retry_config(RetryConfig::disabled())
            .http_client(SharedHttpClient::new(self.clone()))
            .build();
        Clients::new(config)
    }
}

fn operation(request: &HttpRequest, body: &str) -> String {
    if let Some(target) = request.headers().get("x-amz-target") {
        return target.to_owned();
    }
    if let Some(action) = body.split('&').find_map(|p| p.strip_prefix("Action=")) {
        return action.to_owned();
    }
    let uri = request.uri();
    let path = uri
        .split_once("://")
        .map_or(uri, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
    format!("{} {path}", request.method())
}

impl HttpConnector for FakeAws {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let body = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let headers = request
            .headers()
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
            .collect();
        let call = Call {
            operation: operation(&request, &body),
            headers,
            body,
        };
        let answer = (self.answer)(&call);
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(call);
        let status = answer.status.try_into().unwrap_or_else(|_| unreachable!());
        let mut response = HttpResponse::new(status, SdkBody::from(answer.body));
        for (name, value) in answer.headers {
            response.headers_mut().insert(name, value);
        }
        response
            .headers_mut()
            .insert("x-amzn-requestid", "test-request");
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for FakeAws {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}
