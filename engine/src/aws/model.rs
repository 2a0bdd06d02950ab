//! The AWS API models the client is driven by: every service of botocore, bundled in
//! `engine/models/botocore.bin` (built by `models/generate.py`, which documents the layout) in
//! a pre-digested binary form. A service's directory is read in place when a runbook names
//! the service; an operation or shape is decoded, from the one small compressed block that
//! holds it, when it is first reached. Nothing is JSON-parsed but the bundle's short index.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;
use serde::Deserialize;

static BUNDLE: &[u8] = include_bytes!("../../models/botocore.bin");

/// The bundle's first line: its format.
const FORMAT: &[u8] = b"runbook-models 4\n";

/// The bundle's index: read without a JSON parse; the partitions are parsed on first use.
struct Index {
    botocore: &'static str,
    /// Each service's name and blob, sorted by name.
    services: Vec<(&'static str, &'static [u8])>,
    /// Each service's model once loaded, in the same order.
    models: Vec<OnceLock<Arc<Model>>>,
    partitions_json: &'static str,
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

/// One service's model. Its operations and shapes are decoded on first use.
#[derive(Debug)]
pub struct Model {
    pub metadata: Metadata,
    pub operations: Table<Operation>,
    pub shapes: Table<Shape>,
}

#[derive(Debug)]
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
    pub aws_query_compatible: bool,
}

/// The wire protocols of botocore models, in the bundle's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Json,
    RestJson,
    RestXml,
    Query,
    Ec2,
    /// Smithy RPC v2 in CBOR: the only protocol of a few new services.
    RpcV2Cbor,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Json => "json",
            Protocol::RestJson => "rest-json",
            Protocol::RestXml => "rest-xml",
            Protocol::Query => "query",
            Protocol::Ec2 => "ec2",
            Protocol::RpcV2Cbor => "smithy-rpc-v2-cbor",
        }
    }
}

#[derive(Debug)]
pub struct Operation {
    pub name: String,
    pub http: Http,
    pub input: Option<Member>,
    pub output: Option<Member>,
    /// A host prefix such as `{AccountId}.` (S3 Control).
    pub endpoint: Option<HostPrefix>,
    pub http_checksum_required: bool,
    pub http_checksum: Option<HttpChecksum>,
    pub deprecated: bool,
}

#[derive(Debug)]
pub struct Http {
    pub method: String,
    pub request_uri: String,
    pub response_code: Option<u16>,
}

#[derive(Debug)]
pub struct HostPrefix {
    pub host_prefix: String,
}

#[derive(Debug)]
pub struct HttpChecksum {
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
#[derive(Debug, Default)]
pub struct Member {
    pub shape: String,
    pub location: Option<Location>,
    pub location_name: Option<String>,
    /// The EC2 protocol's request name of a member.
    pub query_name: Option<String>,
    pub flattened: bool,
    pub xml_attribute: bool,
    pub xml_namespace: Option<XmlNamespace>,
    pub idempotency_token: bool,
    pub jsonvalue: bool,
    pub timestamp_format: Option<String>,
    pub host_label: bool,
    /// Query protocols wrap an output in an element of this name.
    pub result_wrapper: Option<String>,
    pub streaming: bool,
    pub deprecated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Uri,
    Querystring,
    Header,
    Headers,
    StatusCode,
}

#[derive(Debug)]
pub enum XmlNamespace {
    Uri(String),
    Prefixed { prefix: Option<String>, uri: String },
}

#[derive(Debug)]
pub struct Shape {
    pub kind: Kind,
    pub members: IndexMap<String, Member>,
    pub required: Vec<String>,
    /// A list's element.
    pub member: Option<Box<Member>>,
    pub key: Option<Box<Member>>,
    pub value: Option<Box<Member>>,
    pub flattened: bool,
    pub location_name: Option<String>,
    /// The member sent as the whole HTTP body (REST protocols).
    pub payload: Option<String>,
    pub allowed: Vec<String>,
    pub timestamp_format: Option<String>,
    pub streaming: bool,
    pub sensitive: bool,
    pub document: bool,
    /// botocore spells it `eventstream`, not in camel case.
    pub event_stream: bool,
    pub xml_namespace: Option<XmlNamespace>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        // Every spelling botocore accepts (snake_case, lowerCamel) differs from the name only
        // in letter case and underscores: names that differ in more are passed over without
        // being rebuilt, and the one candidate is then held to botocore's own rule.
        self.operations.get(api).or_else(|| {
            let wanted = snake_case(api);
            let operations = &self.operations;
            let i = (0..operations.len()).position(|i| {
                letters(operations.name_bytes(i)).eq(letters(api.as_bytes()))
                    && snake_case(operations.name(i)) == wanted
            })?;
            Some(self.operations.at(i))
        })
    }

    pub fn signing_name(&self) -> &str {
        self.metadata.signing_name.as_deref().unwrap_or(&self.metadata.endpoint_prefix)
    }
}

/// A service's operations or shapes by name, each decoded from its block on first use.
pub struct Table<T> {
    service: Arc<Service>,
    /// Where this table's entries start in the directory.
    entries: usize,
    /// Boxed: a slot per operation or shape of the service is made up front (ec2 has
    /// thousands) and few are ever decoded, so an empty one is kept to sixteen bytes.
    slots: Vec<OnceLock<Box<T>>>,
    decode: fn(&mut Reader<'_>) -> T,
}

impl<T> std::fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("len", &self.slots.len()).finish()
    }
}

/// One directory entry: u32 name offset, u16 name length, u16 block, u32 offset.
const ENTRY: usize = 12;

/// One block's entry: u32 offset, u32 length, u32 length decompressed.
const BLOCK_ENTRY: usize = 12;

impl<T> Table<T> {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        (0..self.slots.len()).map(|i| self.name(i))
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    pub fn get(&self, name: &str) -> Option<&T> {
        Some(self.at(self.find(name)?))
    }

    /// The entry at index `i` of the sorted names.
    fn at(&self, i: usize) -> &T {
        first_made::<Box<T>>(&self.slots[i], || {
            let entry = self.entry(i);
            let block = self.service.block(usize::from(u16_at(entry, 6)));
            Box::new((self.decode)(&mut Reader { bytes: block, at: u32_at(entry, 8) }))
        })
    }

    fn entry(&self, i: usize) -> &[u8] {
        let at = self.entries + i * ENTRY;
        &self.service.directory[at..at + ENTRY]
    }

    fn name(&self, i: usize) -> &str {
        std::str::from_utf8(self.name_bytes(i)).expect("bundle names are UTF-8")
    }

    fn name_bytes(&self, i: usize) -> &[u8] {
        let entry = self.entry(i);
        let at = self.service.names + u32_at(entry, 0);
        &self.service.directory[at..at + usize::from(u16_at(entry, 4))]
    }

    fn find(&self, name: &str) -> Option<usize> {
        let (mut low, mut high) = (0, self.slots.len());
        while low < high {
            let middle = (low + high) / 2;
            match self.name_bytes(middle).cmp(name.as_bytes()) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Some(middle),
            }
        }
        None
    }
}

impl<T, Q: AsRef<str> + ?Sized> std::ops::Index<&Q> for Table<T> {
    type Output = T;

    fn index(&self, name: &Q) -> &T {
        let name = name.as_ref();
        self.get(name).unwrap_or_else(|| panic!("model has no {name}"))
    }
}

/// A service's directory and its blocks, decompressed on first use.
struct Service {
    directory: &'static [u8],
    /// Where the names start in the directory.
    names: usize,
    /// Each block's compressed bytes in the bundle, and its length decompressed.
    compressed: Vec<(&'static [u8], usize)>,
    blocks: Vec<OnceLock<Vec<u8>>>,
}

impl Service {
    fn block(&self, i: usize) -> &[u8] {
        first_made::<Vec<u8>>(&self.blocks[i], || {
            let (compressed, length) = self.compressed[i];
            // The blocks were compressed with the end of the name bytes as their dictionary.
            let names = &self.directory[self.names..];
            let dictionary = &names[names.len().saturating_sub(DICTIONARY_BYTES)..];
            lz4_flex::block::decompress_with_dict(compressed, length, dictionary)
                .unwrap_or_else(|error| panic!("a broken bundle: a block does not decompress ({error})"))
        })
    }
}

/// How much of the name bytes the blocks' LZ4 dictionary is (`generate.py`'s, LZ4's reach).
const DICTIONARY_BYTES: usize = 64 * 1024;

/// The value of `cell`, made by `make` if no thread has made it yet. Threads validating
/// different runbooks reach the same services, blocks and shapes at about the same time: one
/// that finds a value still being made makes its own (the first one set is kept) rather than
/// sleeping until the other is done, which left a core idle for milliseconds at a time.
fn first_made<T>(cell: &OnceLock<T>, make: impl FnOnce() -> T) -> &T {
    if let Some(value) = cell.get() {
        return value;
    }
    // Another thread may have set it meanwhile: then this value is dropped.
    let _ = cell.set(make());
    cell.get().expect("the cell was set above")
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> usize {
    let value = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    usize::try_from(value).expect("a u32 fits a usize")
}

/// Reads the records `generate.py` writes. The bundle is built with the binary, so a record
/// that does not decode is a broken build, not bad input.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> u8 {
        let byte = self.bytes[self.at];
        self.at += 1;
        byte
    }

    fn varint(&mut self) -> u64 {
        let mut value = 0;
        let mut shift = 0;
        loop {
            let byte = self.byte();
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return value;
            }
            shift += 7;
        }
    }

    fn count(&mut self) -> usize {
        usize::try_from(self.varint()).expect("a count fits a usize")
    }

    fn text(&mut self) -> String {
        let length = self.count();
        let bytes = &self.bytes[self.at..self.at + length];
        self.at += length;
        std::str::from_utf8(bytes).expect("bundle text is UTF-8").to_owned()
    }

    fn texts(&mut self) -> Vec<String> {
        let count = self.count();
        (0..count).map(|_| self.text()).collect()
    }

    /// A flag set, read one bit at a time in the order `generate.py` writes them.
    fn flags(&mut self) -> Flags {
        Flags(self.varint())
    }

    fn xml_namespace(&mut self) -> XmlNamespace {
        match self.byte() {
            0 => XmlNamespace::Uri(self.text()),
            1 => XmlNamespace::Prefixed { prefix: None, uri: self.text() },
            2 => {
                let prefix = Some(self.text());
                XmlNamespace::Prefixed { prefix, uri: self.text() }
            }
            other => unreachable!("a broken bundle: XML namespace form {other}"),
        }
    }

    fn metadata(&mut self) -> Metadata {
        let api_version = self.text();
        let endpoint_prefix = self.text();
        let protocol = match self.byte() {
            0 => Protocol::Json,
            1 => Protocol::RestJson,
            2 => Protocol::RestXml,
            3 => Protocol::Query,
            4 => Protocol::Ec2,
            5 => Protocol::RpcV2Cbor,
            other => unreachable!("a broken bundle: protocol {other}"),
        };
        let service_id = self.text();
        let mut flags = self.flags();
        let [signing_name, target_prefix, json_version, xml_namespace] =
            [(); 4].map(|()| flags.next().then(|| self.text()));
        Metadata {
            api_version,
            endpoint_prefix,
            protocol,
            service_id,
            signing_name,
            target_prefix,
            json_version,
            xml_namespace,
            aws_query_compatible: flags.next(),
        }
    }

    fn member(&mut self) -> Member {
        let shape = self.text();
        let mut flags = self.flags();
        let [flattened, xml_attribute, idempotency_token, jsonvalue, host_label, streaming, deprecated] =
            [(); 7].map(|()| flags.next());
        let location = flags.next().then(|| match self.byte() {
            0 => Location::Uri,
            1 => Location::Querystring,
            2 => Location::Header,
            3 => Location::Headers,
            4 => Location::StatusCode,
            other => unreachable!("a broken bundle: location {other}"),
        });
        let location_name = flags.next().then(|| self.text());
        let query_name = flags.next().then(|| self.text());
        let xml_namespace = flags.next().then(|| self.xml_namespace());
        let timestamp_format = flags.next().then(|| self.text());
        let result_wrapper = flags.next().then(|| self.text());
        Member {
            shape,
            location,
            location_name,
            query_name,
            flattened,
            xml_attribute,
            xml_namespace,
            idempotency_token,
            jsonvalue,
            timestamp_format,
            host_label,
            result_wrapper,
            streaming,
            deprecated,
        }
    }

    fn shape(&mut self) -> Shape {
        const KINDS: [Kind; 11] = [
            Kind::Structure,
            Kind::List,
            Kind::Map,
            Kind::String,
            Kind::Integer,
            Kind::Long,
            Kind::Float,
            Kind::Double,
            Kind::Boolean,
            Kind::Timestamp,
            Kind::Blob,
        ];
        let kind = KINDS[usize::from(self.byte())];
        let mut flags = self.flags();
        let [flattened, streaming, sensitive, document, event_stream] = [(); 5].map(|()| flags.next());
        let count = self.count();
        let members = (0..count).map(|_| (self.text(), self.member())).collect();
        let required = self.texts();
        let allowed = self.texts();
        let [member, key, value] = [(); 3].map(|()| flags.next().then(|| Box::new(self.member())));
        Shape {
            kind,
            members,
            required,
            member,
            key,
            value,
            flattened,
            location_name: flags.next().then(|| self.text()),
            payload: flags.next().then(|| self.text()),
            allowed,
            timestamp_format: flags.next().then(|| self.text()),
            streaming,
            sensitive,
            document,
            event_stream,
            xml_namespace: flags.next().then(|| self.xml_namespace()),
        }
    }

    fn operation(&mut self) -> Operation {
        let name = self.text();
        let method = self.text();
        let request_uri = self.text();
        let mut flags = self.flags();
        let [http_checksum_required, request_checksum_required, deprecated] = [(); 3].map(|()| flags.next());
        let response_code = flags.next().then(|| u16::try_from(self.varint()).expect("an HTTP status fits a u16"));
        Operation {
            name,
            http: Http { method, request_uri, response_code },
            input: flags.next().then(|| self.member()),
            output: flags.next().then(|| self.member()),
            endpoint: flags.next().then(|| HostPrefix { host_prefix: self.text() }),
            http_checksum_required,
            http_checksum: request_checksum_required.then_some(HttpChecksum { request_checksum_required }),
            deprecated,
        }
    }
}

impl Reader<'static> {
    /// Text of the bundle itself, borrowed.
    fn static_text(&mut self) -> &'static str {
        let length = self.count();
        let bytes: &'static [u8] = &self.bytes[self.at..self.at + length];
        self.at += length;
        std::str::from_utf8(bytes).expect("bundle text is UTF-8")
    }
}

/// The bits of a flag set, lowest first.
struct Flags(u64);

impl Flags {
    fn next(&mut self) -> bool {
        let bit = self.0 & 1 == 1;
        self.0 >>= 1;
        bit
    }
}

/// A name's letters and digits in lower case, without the underscores and dashes.
fn letters(name: &[u8]) -> impl Iterator<Item = u8> + '_ {
    name.iter().copied().filter(|&b| b != b'_' && b != b'-').map(|b| b.to_ascii_lowercase())
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

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        assert!(BUNDLE.starts_with(FORMAT), "the bundle's format");
        let length = u32_at(BUNDLE, FORMAT.len());
        let start = FORMAT.len() + 4;
        let base = start + length;
        let mut reader = Reader { bytes: &BUNDLE[..base], at: start };
        let botocore = reader.static_text();
        let count = u32_at(BUNDLE, reader.at);
        reader.at += 4;
        let services = (0..count)
            .map(|_| {
                let name = reader.static_text();
                let (offset, length) = (u32_at(BUNDLE, reader.at), u32_at(BUNDLE, reader.at + 4));
                reader.at += 8;
                (name, &BUNDLE[base + offset..base + offset + length])
            })
            .collect::<Vec<_>>();
        let models = services.iter().map(|_| OnceLock::new()).collect();
        Index { botocore, services, models, partitions_json: reader.static_text() }
    })
}

/// The botocore release the bundle was generated from.
pub fn botocore_version() -> &'static str {
    index().botocore
}

/// Every service the bundle has, by boto3 client name, sorted.
pub fn service_names() -> Vec<&'static str> {
    index().services.iter().map(|(name, _)| *name).collect()
}

pub fn partition(name: &str) -> Option<&'static Partition> {
    static PARTITIONS: OnceLock<HashMap<String, Partition>> = OnceLock::new();
    PARTITIONS
        .get_or_init(|| serde_json::from_str(index().partitions_json).expect("bundled partitions are JSON"))
        .get(name)
}

/// The boto3 client name a runbook's `Service` means: exact, else case-insensitive (one
/// AWS-samples runbook writes `SQS`).
pub fn canonical_service(name: &str) -> Option<&'static str> {
    service_position(name).map(|at| index().services[at].0)
}

/// Where the service `name` means is in the index.
fn service_position(name: &str) -> Option<usize> {
    let services = &index().services;
    let exact = services.binary_search_by(|(known, _)| known.as_bytes().cmp(name.as_bytes())).ok();
    exact.or_else(|| services.iter().position(|(known, _)| known.eq_ignore_ascii_case(name)))
}

/// A service's model, loaded on first use and shared afterwards.
pub fn service(name: &str) -> Option<Arc<Model>> {
    let index = index();
    let at = service_position(name)?;
    Some(first_made(&index.models[at], || Arc::new(load(index.services[at].1))).clone())
}

/// A service's model from its blob: nothing decompressed or decoded yet but its metadata.
fn load(blob: &'static [u8]) -> Model {
    let directory_length = u32_at(blob, 0);
    let directory = &blob[4..4 + directory_length];
    let blocks_start = 4 + directory_length;
    let mut reader = Reader { bytes: directory, at: 0 };
    let metadata = reader.metadata();
    let at = reader.at;
    let [operations, shapes, blocks] = [0, 4, 8].map(|offset| u32_at(directory, at + offset));
    let operation_entries = at + 12;
    let shape_entries = operation_entries + operations * ENTRY;
    let block_table = shape_entries + shapes * ENTRY;
    let compressed = (0..blocks)
        .map(|i| {
            let entry = block_table + i * BLOCK_ENTRY;
            let start = blocks_start + u32_at(directory, entry);
            (&blob[start..start + u32_at(directory, entry + 4)], u32_at(directory, entry + 8))
        })
        .collect();
    let service = Arc::new(Service {
        names: block_table + blocks * BLOCK_ENTRY,
        directory,
        compressed,
        blocks: (0..blocks).map(|_| OnceLock::new()).collect(),
    });
    Model {
        metadata,
        operations: Table {
            service: service.clone(),
            entries: operation_entries,
            slots: (0..operations).map(|_| OnceLock::new()).collect(),
            decode: |reader| reader.operation(),
        },
        shapes: Table {
            service,
            entries: shape_entries,
            slots: (0..shapes).map(|_| OnceLock::new()).collect(),
            decode: |reader| reader.shape(),
        },
    }
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

    /// Every operation and shape of every service decodes, and every shape a member names is
    /// there.
    #[test]
    fn every_bundled_service_parses_and_resolves_names() {
        let names = service_names();
        assert!(names.len() > 400, "{} services", names.len());
        for name in names {
            let model = service(name).unwrap();
            assert!(!model.operations.is_empty(), "{name}");
            for operation in model.operations.keys() {
                let operation = model.operation(operation).unwrap();
                for member in operation.input.iter().chain(&operation.output) {
                    let _ = model.shape(member);
                }
            }
            for shape in model.shapes.keys() {
                let shape = &model.shapes[shape];
                for member in shape.members.values().chain(shape.member.as_deref()).chain(shape.key.as_deref()) {
                    let _ = model.shape(member);
                }
                if let Some(value) = &shape.value {
                    let _ = model.shape(value);
                }
            }
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
