//! The wire protocols of AWS APIs: a request's parameters serialised by the operation's input
//! shape, and a response parsed by its output shape into the boto3-shaped JSON selectors
//! read (reference 7.2). One file per family: `json` (json, rest-json bodies), `query`
//! (query, ec2), `rest` (URI, query string and headers of rest-json and rest-xml), `xml`,
//! `cbor` (smithy-rpc-v2-cbor).

mod cbor;
mod json;
mod query;
mod rest;
mod shapes;
mod xml;

use serde_json::{Map, Value};

use super::model::{Model, Operation, Protocol};

/// An HTTP request before endpoint, signing and transport.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    /// Path and query string, percent-encoded, starting with `/`.
    pub path_and_query: String,
    /// Headers the protocol sets (content type, `X-Amz-Target`, members in headers).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// A host prefix with its labels filled in (`123456789012.` for S3 Control).
    pub host_prefix: Option<String>,
}

/// An HTTP response as it came back.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// An error response from the service, with the code and message it gave.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
}

/// Serialises `params` (already checked against the input shape by `aws::check`) for
/// `operation`.
pub fn serialize(model: &Model, operation: &Operation, params: &Map<String, Value>) -> Result<Request, String> {
    match model.metadata.protocol {
        Protocol::Json => json::serialize(model, operation, params),
        Protocol::Query | Protocol::Ec2 => query::serialize(model, operation, params),
        Protocol::RestJson | Protocol::RestXml => rest::serialize(model, operation, params),
        Protocol::RpcV2Cbor => cbor::serialize(model, operation, params),
    }
}

/// Parses a response: a success becomes the boto3-shaped object (member names as in the
/// model, timestamps as ISO-8601 text, blobs as base64 text) with `ResponseMetadata.RequestId`
/// when the body carries one; a status of 300 or more becomes a [`ServiceError`].
pub fn parse(model: &Model, operation: &Operation, response: &Response) -> Result<Value, ServiceError> {
    match model.metadata.protocol {
        Protocol::Json => json::parse(model, operation, response),
        Protocol::Query | Protocol::Ec2 => query::parse(model, operation, response),
        Protocol::RestJson | Protocol::RestXml => rest::parse(model, operation, response),
        Protocol::RpcV2Cbor => cbor::parse(model, operation, response),
    }
}
