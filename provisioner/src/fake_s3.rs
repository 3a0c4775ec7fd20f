//! Tests only: an S3 that answers `ListObjectsV2` from a map of keys, behind the real
//! `aws_sdk_s3::Client` (its HTTP client is replaced, nothing else), so code that lists a bucket is
//! tested in-process, without a network or Python.
//!
//! It follows the ListObjectsV2 API reference: keys in UTF-8 binary order; at most `max-keys`
//! (default and maximum 1,000) keys and common prefixes per page; `start-after` applies only to
//! the first page (with a continuation token it is ignored); with `delimiter`, keys with the
//! delimiter after the prefix are rolled up into `CommonPrefixes`, each counted once. Every
//! request's path and query is recorded, so a test can assert how many calls were made and with
//! what.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_s3::config::http::{HttpRequest, HttpResponse};
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, HttpClient, Region, RuntimeComponents, SharedHttpClient,
};
use aws_sdk_s3::primitives::SdkBody;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};

const PAGE: usize = 1000;

#[derive(Debug, Clone, Default)]
pub struct FakeS3 {
    /// key -> LastModified (Unix milliseconds)
    objects: Arc<Mutex<BTreeMap<String, i64>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeS3 {
    pub fn put(&self, key: &str, last_modified_millis: i64) {
        lock(&self.objects).insert(key.to_owned(), last_modified_millis);
    }

    /// `GET <path>?<query>` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.requests).clone()
    }

    /// The real S3 client, talking to this.
    pub fn client(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .endpoint_url("http://s3.test")
            .force_path_style(true)
            .http_client(SharedHttpClient::new(self.clone()))
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    fn list(&self, query: &BTreeMap<String, String>) -> String {
        let get = |name: &str| query.get(name).map(String::as_str);
        let prefix = get("prefix").unwrap_or("");
        let delimiter = get("delimiter").filter(|d| !d.is_empty());
        let max = get("max-keys")
            .and_then(|m| m.parse().ok())
            .unwrap_or(PAGE)
            .min(PAGE);
        // The token is the last key (or common prefix) of the previous page, hex-encoded.
        let after = match get("continuation-token") {
            Some(token) => unhex(token),
            None => get("start-after").unwrap_or("").to_owned(),
        };
        let objects = lock(&self.objects);
        let mut contents = Vec::new();
        let mut prefixes: Vec<String> = Vec::new();
        let mut last = None;
        let mut truncated = false;
        for (key, modified) in objects.range::<String, _>((
            std::ops::Bound::Excluded(after.clone()),
            std::ops::Bound::Unbounded,
        )) {
            if !key.starts_with(prefix) {
                // Keys of a prefix are contiguous: past them, nothing more matches.
                if key.as_str() > prefix {
                    break;
                }
                continue;
            }
            let rolled = delimiter.and_then(|d| {
                key[prefix.len()..]
                    .find(d)
                    .map(|i| key[..prefix.len() + i + d.len()].to_owned())
            });
            if let Some(common) = &rolled
                && (prefixes.last() == Some(common) || after.starts_with(common.as_str()))
            {
                continue;
            }
            if contents.len() + prefixes.len() == max {
                truncated = true;
                break;
            }
            match rolled {
                Some(common) => {
                    last = Some(common.clone());
                    prefixes.push(common);
                }
                None => {
                    last = Some(key.clone());
                    contents.push((key.clone(), *modified));
                }
            }
        }
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
        );
        xml += &format!(
            "<Name>b</Name><Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{max}</MaxKeys>\
             <IsTruncated>{truncated}</IsTruncated>",
            escape(prefix),
            contents.len() + prefixes.len()
        );
        for (key, modified) in &contents {
            xml += &format!(
                "<Contents><Key>{}</Key><LastModified>{}</LastModified><Size>1</Size>\
                 <StorageClass>STANDARD</StorageClass></Contents>",
                escape(key),
                das_processor::manifest::rfc3339_millis(*modified)
            );
        }
        for p in &prefixes {
            xml += &format!(
                "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                escape(p)
            );
        }
        if let (true, Some(last)) = (truncated, last) {
            xml += &format!(
                "<NextContinuationToken>{}</NextContinuationToken>",
                hex(&last)
            );
        }
        xml + "</ListBucketResult>"
    }
}

impl HttpConnector for FakeS3 {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let uri = request.uri().to_owned();
        let path_and_query = uri.split_once("://").map_or(uri.as_str(), |(_, rest)| {
            rest.find('/').map_or("/", |i| &rest[i..])
        });
        lock(&self.requests).push(format!("{} {path_and_query}", request.method()));
        let query: BTreeMap<String, String> = path_and_query
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        let (status, body) = if request.method() == "GET"
            && query.get("list-type").is_some_and(|t| t == "2")
        {
            (200, self.list(&query))
        } else {
            (
                501,
                "<Error><Code>NotImplemented</Code><Message>the fake S3 lists only</Message></Error>"
                    .to_owned(),
            )
        };
        let status = status.try_into().unwrap_or_else(|_| unreachable!());
        HttpConnectorFuture::ready(Ok(HttpResponse::new(status, SdkBody::from(body))))
    }
}

impl HttpClient for FakeS3 {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> String {
    let bytes: Vec<u8> = (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The SDK escapes query values as RFC 3986 says.
fn decode(s: &str) -> String {
    crate::aws::percent_decode(s).unwrap_or_else(|| s.to_owned())
}
