//! How a request reaches the network: the seam under [`Aws::call`](super::Aws::call). The
//! one implementation, [`Https`], sends through the SDK's HTTPS connector (rustls with
//! ring, the same stack aws-config is given by [`sdk_client`]); tests put their own in its place to answer with
//! throttling, errors or canned responses without a server.

use std::sync::OnceLock;
use std::time::Duration;

use aws_smithy_http_client::Connector;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings};
use aws_smithy_types::body::SdkBody;

use super::protocol::Response;

/// What a transport returns: a future that may move between threads.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// rustls with ring: aws-lc, the SDK's default, took a minute of a clean build on two cores
/// (its C library and bindings); see the README's dependency notes for the figures.
const TLS: tls::Provider = tls::Provider::Rustls(CryptoMode::Ring);

/// The HTTPS client aws-config uses to find credentials (SSO, STS, instance metadata).
pub fn sdk_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(TLS).build_https()
}

/// A request ready to send: signed already where it goes to AWS.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Sends one request and returns the response as it came back (any status); `Err` when no
/// response came (no connection, a timeout), with what went wrong.
pub trait Transport: Send + Sync {
    fn send(&self, request: Request) -> BoxFuture<'_, Result<Response, String>>;
}

/// The network, over HTTP or HTTPS; the connector is built on first use.
#[derive(Default)]
pub struct Https {
    connector: OnceLock<Connector>,
}

impl Https {
    fn connector(&self) -> &Connector {
        self.connector.get_or_init(|| {
            Connector::builder()
                .connector_settings(
                    HttpConnectorSettings::builder()
                        .connect_timeout(Duration::from_secs(10))
                        .read_timeout(Duration::from_secs(60))
                        .build(),
                )
                .tls_provider(TLS)
                .build()
        })
    }
}

impl Transport for Https {
    fn send(&self, request: Request) -> BoxFuture<'_, Result<Response, String>> {
        Box::pin(async move {
            let mut builder = http::Request::builder().method(request.method.as_str()).uri(&request.url);
            for (name, value) in &request.headers {
                builder = builder.header(name.as_str(), value.as_str());
            }
            let http_request = builder.body(SdkBody::from(request.body)).map_err(|e| e.to_string())?;
            let http_request =
                aws_smithy_runtime_api::http::Request::try_from(http_request).map_err(|e| e.to_string())?;
            let response = self.connector().call(http_request).await.map_err(|e| crate::diagnostic::causes(&e))?;
            let status = response.status().as_u16();
            let headers: Vec<(String, String)> =
                response.headers().iter().map(|(name, value)| (name.to_ascii_lowercase(), value.to_string())).collect();
            let body = aws_smithy_types::byte_stream::ByteStream::new(response.into_body())
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .into_bytes()
                .to_vec();
            Ok(Response { status, headers, body })
        })
    }
}
