//! The processor's HTTP client: hyper over rustls with graviola, a cryptography provider written in
//! Rust (and Rust inline assembly) for exactly the two Lambda architectures.
//!
//! Why not the SDK's own client: its TLS providers are ring and aws-lc, and both compile C for the
//! target, so building the arm64 Lambda on an x86_64 machine needed a C cross compiler. With this
//! client the processor has no C dependency at all: it builds for `aarch64-unknown-linux-musl`
//! and `x86_64-unknown-linux-musl` with nothing but `rustup target add` and the `rust-lld` that
//! ships with Rust (README, "How the processor is built"). The SDK lets a caller supply its own
//! [`HttpClient`]; this is one, and it keeps what the SDK's does that matters to us:
//!
//! - the same TLS settings: TLS 1.2 and 1.3, the system's root certificates (loaded once), the
//!   cipher suites smithy-rs allows (AES-GCM and ChaCha20-Poly1305 with ECDHE);
//! - the connect and read timeouts of the SDK's `TimeoutConfig`;
//! - the SDK's classification of failures, so the standard retry strategy retries what it would
//!   have retried (I/O, timeouts, a closed or incomplete connection) and not what it would not (a
//!   certificate the system does not trust).
//!
//! Plain `http://` is allowed for the local emulator's endpoint (`AWS_ENDPOINT_URL`); AWS's own
//! endpoints are `https://`.

use std::error::Error as StdError;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::rt::TokioExecutor;

type BoxError = Box<dyn StdError + Send + Sync>;

/// The client every SDK client of the processor uses.
pub fn http_client() -> SharedHttpClient {
    SharedHttpClient::new(GraviolaClient::default())
}

/// A connector of its own, for a call the SDK does not make (`securityhub.rs`).
pub fn connector(connect: Option<Duration>, read: Option<Duration>) -> SharedHttpConnector {
    SharedHttpConnector::new(Connector::new(Timeouts { connect, read }))
}

/// The TLS settings, built once: loading the system's roots reads files.
static TLS: LazyLock<Result<rustls::ClientConfig, String>> = LazyLock::new(tls_config);

/// The cipher suites smithy-rs restricts its own rustls clients to.
const SUITES: [rustls::CipherSuite; 7] = [
    rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
    rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
    rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

fn tls_config() -> Result<rustls::ClientConfig, String> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (valid, _invalid) = roots.add_parsable_certificates(loaded.certs);
    if valid == 0 {
        return Err(format!(
            "no trusted root certificates could be loaded from the system ({} error(s)); \
             SSL_CERT_FILE or SSL_CERT_DIR can name them",
            loaded.errors.len()
        ));
    }
    tls_config_trusting(roots)
}

/// graviola, restricted to [`SUITES`].
fn provider() -> rustls::crypto::CryptoProvider {
    let mut provider = rustls_graviola::default_provider();
    provider
        .cipher_suites
        .retain(|suite| SUITES.contains(&suite.suite()));
    provider
}

fn tls_config_trusting(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, String> {
    rustls::ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| format!("the TLS configuration is invalid: {e}"))
}

/// Hands the SDK one connector per timeout setting, each with its own connection pool (the SDK
/// asks per operation; KMS and S3 share a connector when their settings agree).
#[derive(Debug, Default)]
struct GraviolaClient {
    connectors: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Timeouts {
    connect: Option<Duration>,
    read: Option<Duration>,
}

impl HttpClient for GraviolaClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let timeouts = Timeouts {
            connect: settings.connect_timeout(),
            read: settings.read_timeout(),
        };
        // A poisoned lock only means another thread panicked while holding it; the list is
        // still whole (every push completes before the guard drops).
        let mut connectors = self
            .connectors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, connector)) = connectors.iter().find(|(t, _)| *t == timeouts) {
            return connector.clone();
        }
        let connector = SharedHttpConnector::new(Connector::new(timeouts));
        connectors.push((timeouts, connector.clone()));
        connector
    }
}

#[derive(Clone, Debug)]
struct Connector {
    /// An error when no TLS configuration could be built: every call then fails with the reason.
    client: Result<Client<HttpsConnector<TcpConnector>, SdkBody>, String>,
    read_timeout: Option<Duration>,
}

impl Connector {
    fn new(timeouts: Timeouts) -> Self {
        Self::with_tls(TLS.clone(), timeouts)
    }

    fn with_tls(tls: Result<rustls::ClientConfig, String>, timeouts: Timeouts) -> Self {
        let client = tls.map(|tls| {
            let mut tcp = TcpConnector::new();
            tcp.enforce_http(false);
            tcp.set_nodelay(true);
            tcp.set_connect_timeout(timeouts.connect);
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .wrap_connector(tcp);
            Client::builder(TokioExecutor::new()).build(https)
        });
        Self {
            client,
            read_timeout: timeouts.read,
        }
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = match &self.client {
            Ok(client) => client,
            Err(reason) => {
                return HttpConnectorFuture::ready(Err(ConnectorError::other(
                    reason.clone().into(),
                    None,
                )));
            }
        };
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let response = client.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let response = match read_timeout {
                Some(limit) => match tokio::time::timeout(limit, response).await {
                    Ok(response) => response,
                    Err(elapsed) => return Err(ConnectorError::timeout(elapsed.into())),
                },
                None => response.await,
            };
            match response {
                Ok(response) => HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                    .map_err(|e| ConnectorError::other(e.into(), None)),
                Err(e) => Err(classify(e.into())),
            }
        })
    }
}

/// What kind of failure a request met, as smithy-rs's own client classifies hyper's errors.
fn classify(error: BoxError) -> ConnectorError {
    match kind(error.as_ref()) {
        Kind::Timeout => ConnectorError::timeout(error),
        Kind::User => ConnectorError::user(error),
        Kind::Io => ConnectorError::io(error),
        Kind::Transient => ConnectorError::other(error, Some(ErrorKind::TransientError)),
        Kind::Other => ConnectorError::other(error, None),
    }
}

enum Kind {
    Timeout,
    User,
    Io,
    Transient,
    Other,
}

fn kind(error: &(dyn StdError + 'static)) -> Kind {
    // A certificate or handshake the server and we do not agree on: retrying will not help.
    if chain(error).any(|e| e.is::<rustls::Error>()) {
        return Kind::Other;
    }
    if let Some(hyper_error) = chain(error).find_map(|e| e.downcast_ref::<hyper::Error>()) {
        return if hyper_error.is_timeout() {
            Kind::Timeout
        } else if hyper_error.is_user() {
            Kind::User
        } else if hyper_error.is_closed() || hyper_error.is_canceled() || has_io(error) {
            Kind::Io
        } else if hyper_error.is_incomplete_message() {
            // S3 sometimes ends a response early.
            Kind::Transient
        } else {
            Kind::Other
        };
    }
    let connect = chain(error)
        .filter_map(|e| e.downcast_ref::<hyper_util::client::legacy::Error>())
        .any(hyper_util::client::legacy::Error::is_connect);
    if connect || has_io(error) {
        // DNS, refused or reset connections, connect timeouts.
        return Kind::Io;
    }
    Kind::Other
}

fn has_io(error: &(dyn StdError + 'static)) -> bool {
    chain(error).any(|e| e.is::<std::io::Error>())
}

/// The error and each error beneath it; an `io::Error`'s payload counts as beneath it
/// (`io::Error::source` skips the payload).
fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&error| {
        match error.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => error.source(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_configuration_keeps_only_the_suites_smithy_allows() {
        let config = match &*TLS {
            Ok(config) => config,
            Err(reason) => panic!("this machine has a CA bundle (ca-certificates): {reason}"),
        };
        let suites: Vec<_> = config
            .crypto_provider()
            .cipher_suites
            .iter()
            .map(|s| s.suite())
            .collect();
        assert!(!suites.is_empty());
        assert!(suites.iter().all(|s| SUITES.contains(s)), "{suites:?}");
        assert!(suites.contains(&rustls::CipherSuite::TLS13_AES_128_GCM_SHA256));
    }

    #[test]
    fn failures_are_classified_as_the_sdk_classifies_them() {
        let refused: BoxError =
            Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(classify(refused).is_io());

        let untrusted: BoxError = Box::new(std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        )));
        let error = classify(untrusted);
        assert!(!error.is_io() && !error.is_timeout(), "{error:?}");
        assert_eq!(error.as_other(), None);

        let unknown: BoxError = "something else".into();
        assert_eq!(classify(unknown).as_other(), None);
    }

    fn seconds(both: u64) -> Timeouts {
        Timeouts {
            connect: Some(Duration::from_secs(both)),
            read: Some(Duration::from_secs(both)),
        }
    }

    fn get(uri: &str) -> HttpRequest {
        let request = http::Request::builder()
            .uri(uri)
            .body(SdkBody::empty())
            .expect("a literal request is valid");
        HttpRequest::try_from(request).expect("an http 1.x request converts")
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_retryable_io_error() {
        // A port nothing listens on: bind one, note it, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("loopback binds")
            .port();
        let connector = Connector::new(seconds(2));
        let error = connector
            .call(get(&format!("http://127.0.0.1:{port}/")))
            .await
            .expect_err("nothing listens there");
        assert!(error.is_io(), "{error:?}");
    }

    /// An HTTPS server on loopback for one request, with the test certificate for `localhost`
    /// (processor/testdata/tls, signed by a test CA); answers `ok`.
    fn https_server() -> (u16, std::thread::JoinHandle<()>) {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use std::io::{Read as _, Write as _};
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/tls");
        let chain = CertificateDer::pem_file_iter(format!("{dir}/localhost.pem"))
            .expect("test certificate")
            .collect::<Result<Vec<_>, _>>()
            .expect("test certificate parses");
        let key = PrivateKeyDer::from_pem_file(format!("{dir}/test-only-localhost.key"))
            .expect("test key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("certificate and key match");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("loopback binds");
        let port = listener.local_addr().expect("bound").port();
        let server = std::thread::spawn(move || {
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            let Ok(conn) = rustls::ServerConnection::new(Arc::new(config)) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tls
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        });
        (port, server)
    }

    fn test_ca() -> rustls::RootCertStore {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/tls/ca.pem");
        for cert in CertificateDer::pem_file_iter(ca).expect("test CA") {
            roots
                .add(cert.expect("test CA parses"))
                .expect("test CA is a CA");
        }
        roots
    }

    #[tokio::test]
    async fn https_goes_through_a_real_handshake_with_graviola() {
        let (port, server) = https_server();
        let connector = Connector::with_tls(tls_config_trusting(test_ca()), seconds(5));
        let response = connector
            .call(get(&format!("https://localhost:{port}/")))
            .await
            .expect("the handshake and the request succeed");
        assert_eq!(response.status().as_u16(), 200);
        let body = aws_smithy_types::byte_stream::ByteStream::new(response.into_body())
            .collect()
            .await
            .expect("the body arrives")
            .into_bytes();
        assert_eq!(&body[..], b"ok");
        server.join().expect("server thread");
    }

    #[tokio::test]
    async fn a_server_we_do_not_trust_is_refused_and_not_retried() {
        let (port, server) = https_server();
        // Trusts no root at all, so not the test CA.
        let connector = Connector::with_tls(
            tls_config_trusting(rustls::RootCertStore::empty()),
            seconds(5),
        );
        let error = connector
            .call(get(&format!("https://localhost:{port}/")))
            .await
            .expect_err("an unknown issuer is refused");
        assert!(!error.is_io() && !error.is_timeout(), "{error:?}");
        assert_eq!(error.as_other(), None, "{error:?}");
        let _ = server.join();
    }

    #[tokio::test]
    async fn a_silent_server_is_a_read_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback binds");
        let addr = listener
            .local_addr()
            .expect("a bound socket has an address");
        // Accepts and never answers.
        let server = tokio::spawn(async move {
            let held = listener.accept().await;
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(held);
        });
        let connector = Connector::new(Timeouts {
            connect: Some(Duration::from_secs(2)),
            read: Some(Duration::from_millis(200)),
        });
        let error = connector
            .call(get(&format!("http://{addr}/")))
            .await
            .expect_err("the server never answers");
        assert!(error.is_timeout(), "{error:?}");
        server.abort();
    }
}
