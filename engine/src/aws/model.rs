//! The AWS API models the client is driven by: botocore's service models for the services
//! runbooks name, bundled in `engine/models/botocore.bin` (built by `models/generate.py`),
//! inflated one service at a time on first use.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock};

use indexmap::IndexMap;
use serde::Deserialize;

static BUNDLE: &[u8] = include_bytes!("../../models/botocore.bin");

/// The bundle's index line.
#[derive(Debug, Deserialize)]
struct Index {
    botocore: String,
    services: HashMap<String, Entry>,
    partitions: HashMap<String, Partition>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    offset: usize,
    length: usize,
}

/// A partition's DNS suffix and the services it serves from one global host.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Partition {
    pub dns_suffix: String,
    pub region_regex: String,
    pub global_services: HashMap<String, GlobalEndpoint>,
}

#[derive(Debug, Deserialize)]
pub struct GlobalEndpoint {
    pub hostname: String,
    /// The region requests to the global host are signed for.
    pub region: Option<String>,
}

/// One service's model.
#[derive(Debug, Deserialize)]
pub struct Model {
    pub metadata: Metadata,
    pub operations: IndexMap<String, Operation>,
    pub shapes: HashMap<String, Shape>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub api_version: String,
    pub endpoint_prefix: String,
    pub protocol: Protocol,
    pub service_id: String,
    pub signing_name: Option<String>,
    pub target_prefix: Option<String>,
    pub json_version: Option<String>,
    pub xml_namespace: Option<String>,
    /// A JSON service that still reports query-style error codes (SQS, CloudWatch).
    pub aws_query_compatible: Option<serde_json::Value>,
}

/// The five wire protocols of botocore models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    Json,
    RestJson,
    RestXml,
    Query,
    Ec2,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Json => "json",
            Protocol::RestJson => "rest-json",
            Protocol::RestXml => "rest-xml",
            Protocol::Query => "query",
            Protocol::Ec2 => "ec2",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub name: String,
    pub http: Http,
    pub input: Option<Member>,
    pub output: Option<Member>,
    /// A host prefix such as `{AccountId}.` (S3 Control).
    pub endpoint: Option<HostPrefix>,
    #[serde(default)]
    pub http_checksum_required: bool,
    pub http_checksum: Option<HttpChecksum>,
    #[serde(default)]
    pub deprecated: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Http {
    pub method: String,
    pub request_uri: String,
    pub response_code: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostPrefix {
    pub host_prefix: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpChecksum {
    #[serde(default)]
    pub request_checksum_required: bool,
}

impl Operation {
    /// Whether the operation only reads: an HTTP GET or HEAD, or a Describe/Get/List/Head
    /// name (query and JSON protocols send everything as POST).
    pub fn read_only(&self) -> bool {
        let method = self.http.method.as_str();
        if method == "GET" || method == "HEAD" {
            return true;
        }
        ["Describe", "Get", "List", "Head"].iter().any(|verb| {
            self.name.strip_prefix(verb).is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
        })
    }

    /// Whether the request must carry a body checksum (S3 `PutBucketLogging` and others).
    pub fn checksum_required(&self) -> bool {
        self.http_checksum_required || self.http_checksum.as_ref().is_some_and(|c| c.request_checksum_required)
    }
}

/// A reference to a shape, with how it travels (location, wire name, XML traits).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub shape: String,
    pub location: Option<Location>,
    pub location_name: Option<String>,
    /// The EC2 protocol's request name of a member.
    pub query_name: Option<String>,
    #[serde(default)]
    pub flattened: bool,
    #[serde(default)]
    pub xml_attribute: bool,
    pub xml_namespace: Option<XmlNamespace>,
    #[serde(default)]
    pub idempotency_token: bool,
    #[serde(default)]
    pub jsonvalue: bool,
    pub timestamp_format: Option<String>,
    #[serde(default)]
    pub host_label: bool,
    /// Query protocols wrap an output in an element of this name.
    pub result_wrapper: Option<String>,
    #[serde(default)]
    pub streaming: bool,
    #[serde(default)]
    pub deprecated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Location {
    Uri,
    Querystring,
    Header,
    Headers,
    StatusCode,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum XmlNamespace {
    Uri(String),
    Prefixed { prefix: Option<String>, uri: String },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    #[serde(rename = "type")]
    pub kind: Kind,
    #[serde(default)]
    pub members: IndexMap<String, Member>,
    #[serde(default)]
    pub required: Vec<String>,
    /// A list's element.
    pub member: Option<Box<Member>>,
    pub key: Option<Box<Member>>,
    pub value: Option<Box<Member>>,
    #[serde(default)]
    pub flattened: bool,
    pub location_name: Option<String>,
    /// The member sent as the whole HTTP body (REST protocols).
    pub payload: Option<String>,
    #[serde(rename = "enum", default)]
    pub allowed: Vec<String>,
    pub timestamp_format: Option<String>,
    #[serde(default)]
    pub streaming: bool,
    #[serde(default)]
    pub sensitive: bool,
    #[serde(default)]
    pub document: bool,
    /// botocore spells it `eventstream`, not in camel case.
    #[serde(default, rename = "eventstream")]
    pub event_stream: bool,
    pub xml_namespace: Option<XmlNamespace>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Structure,
    List,
    Map,
    String,
    Integer,
    Long,
    Float,
    Double,
    Boolean,
    Timestamp,
    Blob,
}

impl Kind {
    /// The word boto3's parameter validation uses for the Python type expected.
    pub fn expected(self) -> &'static str {
        match self {
            Kind::Structure | Kind::Map => "an object",
            Kind::List => "a list",
            Kind::String => "text",
            Kind::Integer | Kind::Long => "an integer",
            Kind::Float | Kind::Double => "a number",
            Kind::Boolean => "a boolean",
            Kind::Timestamp => "a timestamp (ISO-8601 text or epoch seconds)",
            Kind::Blob => "text or bytes",
        }
    }
}

impl Model {
    /// The shape a member refers to; the bundle is generated whole, so a dangling name is a
    /// broken bundle.
    pub fn shape(&self, member: &Member) -> &Shape {
        self.shapes.get(&member.shape).unwrap_or_else(|| panic!("model has no shape {}", member.shape))
    }

    /// An operation by the name a runbook gives (reference 7.1): PascalCase, lowerCamel or
    /// snake_case all name the same operation.
    pub fn operation(&self, api: &str) -> Option<&Operation> {
        self.operations.get(api).or_else(|| {
            let wanted = snake_case(api);
            self.operations.values().find(|operation| snake_case(&operation.name) == wanted)
        })
    }

    pub fn signing_name(&self) -> &str {
        self.metadata.signing_name.as_deref().unwrap_or(&self.metadata.endpoint_prefix)
    }
}

/// botocore's `xform_name`: `DescribeDBInstances`, `describeDBInstances` and
/// `describe_db_instances` all become `describe_db_instances`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c == '-' || c == '_' {
            if !out.ends_with('_') {
                out.push('_');
            }
            continue;
        }
        if c.is_ascii_uppercase() && i > 0 {
            let previous = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let boundary = previous.is_ascii_lowercase()
                || previous.is_ascii_digit()
                || (previous.is_ascii_uppercase() && next_lower);
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn index() -> &'static (Index, usize) {
    static INDEX: OnceLock<(Index, usize)> = OnceLock::new();
    INDEX.get_or_init(|| {
        let header = BUNDLE.iter().position(|&b| b == b'\n').expect("bundle header");
        let line = BUNDLE[header + 1..].iter().position(|&b| b == b'\n').expect("bundle index") + header + 1;
        let index = serde_json::from_slice(&BUNDLE[header + 1..line]).expect("bundle index is JSON");
        (index, line + 1)
    })
}

/// The botocore release the bundle was generated from.
pub fn botocore_version() -> &'static str {
    &index().0.botocore
}

/// Every service the bundle has, by boto3 client name.
pub fn service_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = index().0.services.keys().map(String::as_str).collect();
    names.sort_unstable();
    names
}

pub fn partition(name: &str) -> Option<&'static Partition> {
    index().0.partitions.get(name)
}

/// The boto3 client name a runbook's `Service` means: exact, else case-insensitive (one
/// AWS-samples runbook writes `SQS`).
pub fn canonical_service(name: &str) -> Option<&'static str> {
    let names = &index().0.services;
    names
        .get_key_value(name)
        .or_else(|| names.iter().find(|(known, _)| known.eq_ignore_ascii_case(name)))
        .map(|(known, _)| known.as_str())
}

/// A service's model, inflated on first use and shared afterwards.
pub fn service(name: &str) -> Option<Arc<Model>> {
    static CACHE: OnceLock<Mutex<HashMap<&'static str, Arc<Model>>>> = OnceLock::new();
    let name = canonical_service(name)?;
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(model) = cache.get(name) {
        return Some(model.clone());
    }
    let (index, base) = index();
    let entry = &index.services[name];
    let blob = &BUNDLE[base + entry.offset..base + entry.offset + entry.length];
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(blob).read_to_end(&mut json).expect("bundle blob inflates");
    let model: Arc<Model> = Arc::new(serde_json::from_slice(&json).expect("bundled model parses"));
    cache.insert(name, model.clone());
    Some(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_normalise_like_botocore() {
        assert_eq!(snake_case("DescribeInstances"), "describe_instances");
        assert_eq!(snake_case("describeDBInstances"), "describe_db_instances");
        assert_eq!(snake_case("DescribeDBInstances"), "describe_db_instances");
        assert_eq!(snake_case("terminate_instances"), "terminate_instances");
        assert_eq!(snake_case("ListTagsForResource"), "list_tags_for_resource");
        assert_eq!(snake_case("GetBucketLogging"), "get_bucket_logging");
    }

    #[test]
    fn every_bundled_service_parses_and_resolves_names() {
        for name in service_names() {
            let model = service(name).unwrap();
            assert!(!model.operations.is_empty(), "{name}");
        }
        let ec2 = service("ec2").unwrap();
        assert_eq!(ec2.metadata.protocol, Protocol::Ec2);
        assert_eq!(ec2.operation("rebootInstances").unwrap().name, "RebootInstances");
        assert_eq!(ec2.operation("terminate_instances").unwrap().name, "TerminateInstances");
        assert!(ec2.operation("DescribeInstances").unwrap().read_only());
        assert!(!ec2.operation("StopInstances").unwrap().read_only());
        assert_eq!(canonical_service("SQS"), Some("sqs"));
        assert!(service("nosuchservice").is_none());
    }
}
