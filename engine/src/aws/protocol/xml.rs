//! XML as the query, ec2 and rest-xml protocols use it: request bodies written from a shape
//! (botocore's `RestXMLSerializer`, in model order), response elements read by a shape
//! (`BaseXMLResponseParser`, namespaces matched by local name) and the XML error documents.

use std::collections::HashMap;

use roxmltree::{Document, Node};
use serde_json::{Map, Value};

use super::shapes::{self, Ref};
use super::{Response, ServiceError};
use crate::aws::model::{Kind, Model, Shape, XmlNamespace};

// ---- writing ----------------------------------------------------------------------------------

/// An element being written.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    text: Option<String>,
    children: Vec<Element>,
}

impl Element {
    fn new(name: &str) -> Self {
        Element { name: name.to_string(), ..Element::default() }
    }

    /// Sets an attribute, keeping the place of one set before (as ElementTree's dict does).
    fn attribute(&mut self, name: &str, value: String) {
        match self.attributes.iter_mut().find(|(key, _)| key == name) {
            Some(slot) => slot.1 = value,
            None => self.attributes.push((name.to_string(), value)),
        }
    }

    /// ElementTree's serialisation: `<a />` when there is neither text nor children.
    fn write(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        for (key, value) in &self.attributes {
            out.push_str(&format!(" {key}=\"{}\"", escape(value, true)));
        }
        let text = self.text.as_deref().unwrap_or_default();
        if text.is_empty() && self.children.is_empty() {
            out.push_str(" />");
            return;
        }
        out.push('>');
        out.push_str(&escape(text, false));
        for child in &self.children {
            child.write(out);
        }
        out.push_str(&format!("</{}>", self.name));
    }
}

/// ElementTree's escaping: `&`, `<`, `>` in text; also quotes and whitespace controls in
/// attribute values.
fn escape(text: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' if attribute => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#09;"),
            other => out.push(other),
        }
    }
    out
}

/// A request body: `value` written as the element `root` of shape `shape`, without an XML
/// declaration (botocore's `ElementTree.tostring(..., encoding='utf-8')` writes none).
pub(super) fn document(model: &Model, shape: Ref, value: &Value, root: &str) -> Result<Vec<u8>, String> {
    let mut pseudo = Element::new("");
    append(model, shape, value, &mut pseudo, root)?;
    let mut out = String::new();
    for element in &pseudo.children {
        element.write(&mut out);
    }
    Ok(out.into_bytes())
}

fn add_namespace(shape: Ref, element: &mut Element) {
    match shape.xml_namespace() {
        Some(XmlNamespace::Uri(uri)) => element.attribute("xmlns", uri.clone()),
        Some(XmlNamespace::Prefixed { prefix, uri }) => {
            let name = match prefix.as_deref() {
                Some(prefix) if !prefix.is_empty() => format!("xmlns:{prefix}"),
                _ => "xmlns".to_string(),
            };
            element.attribute(&name, uri.clone());
        }
        None => {}
    }
}

/// Writes `value` under `parent` as element(s) named `name` (botocore `_serialize_type_*`: a
/// flattened list or map adds its elements straight to the parent).
fn append(model: &Model, shape: Ref, value: &Value, parent: &mut Element, name: &str) -> Result<(), String> {
    match shape.kind() {
        Kind::Structure => {
            let params = shapes::object(value, name)?;
            shapes::check_members(shape.shape, params)?;
            let mut node = Element::new(name);
            add_namespace(shape, &mut node);
            for (key, member, value) in shapes::present(model, shape.shape, params) {
                let member_name = member.name().unwrap_or(key);
                if member.member.xml_attribute {
                    node.attribute(member_name, shapes::scalar_text(value));
                } else {
                    append(model, member, value, &mut node, member_name)?;
                }
            }
            parent.children.push(node);
        }
        Kind::List => {
            let items = shapes::array(value, name)?;
            let element = shape.element(model)?;
            if shape.flattened() {
                add_namespace(shape, parent);
                for item in items {
                    append(model, element, item, parent, name)?;
                }
            } else {
                let mut node = Element::new(name);
                add_namespace(shape, &mut node);
                let element_name = element.name().unwrap_or("member");
                for item in items {
                    append(model, element, item, &mut node, element_name)?;
                }
                parent.children.push(node);
            }
        }
        Kind::Map => {
            let entries = shapes::object(value, name)?;
            let (key_shape, value_shape) = shape.entry(model)?;
            let (key_name, value_name) = (key_shape.name().unwrap_or("key"), value_shape.name().unwrap_or("value"));
            let write_entry = |into: &mut Element, entry_name: &str, key: &str, value: &Value| {
                let mut entry = Element::new(entry_name);
                append(model, key_shape, &Value::String(key.to_string()), &mut entry, key_name)?;
                append(model, value_shape, value, &mut entry, value_name)?;
                into.children.push(entry);
                Ok::<(), String>(())
            };
            if shape.flattened() {
                for (key, value) in entries {
                    write_entry(parent, name, key, value)?;
                }
            } else {
                let mut node = Element::new(name);
                add_namespace(shape, &mut node);
                for (key, value) in entries {
                    write_entry(&mut node, "entry", key, value)?;
                }
                parent.children.push(node);
            }
        }
        kind => {
            let text = match kind {
                Kind::Boolean => value.as_bool().unwrap_or(false).to_string(),
                Kind::Blob => shapes::base64(shapes::blob_bytes(value, name)?),
                Kind::Timestamp => shapes::timestamp_param(value, shape.timestamp_format().unwrap_or("iso8601"))?,
                _ => shapes::scalar_text(value),
            };
            let mut node = Element::new(name);
            node.text = Some(text);
            add_namespace(shape, &mut node);
            parent.children.push(node);
        }
    }
    Ok(())
}

// ---- reading ----------------------------------------------------------------------------------

/// Parses a response body; DTDs stay refused (roxmltree's default), so no entity expansion.
pub(super) fn parse_document(text: &str) -> Result<Document<'_>, String> {
    Document::parse(text).map_err(|error| format!("invalid XML: {error}"))
}

/// An element's name without its namespace.
pub(super) fn local_name<'a>(node: Node<'a, '_>) -> &'a str {
    node.tag_name().name()
}

fn elements<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(Node::is_element)
}

/// The first child element named `name`.
pub(super) fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    elements(node).find(|child| local_name(*child) == name)
}

/// An element's own text (an empty element reads as empty text, as in botocore).
pub(super) fn text(node: Node) -> String {
    node.children().filter(Node::is_text).filter_map(|child| child.text()).collect()
}

/// Child elements grouped by name (botocore `_build_name_to_xml_node`: repeated names collect
/// into a list).
fn groups<'a, 'i>(node: Node<'a, 'i>) -> HashMap<&'a str, Vec<Node<'a, 'i>>> {
    let mut groups: HashMap<&str, Vec<Node>> = HashMap::new();
    for child in elements(node) {
        groups.entry(local_name(child)).or_default().push(child);
    }
    groups
}

/// A structure read from `node`'s children, by member name; members that live in headers or
/// the status code are left to the REST parser.
pub(super) fn structure(model: &Model, shape: &Shape, node: Node) -> Result<Map<String, Value>, String> {
    let groups = groups(node);
    let mut parsed = Map::new();
    for (name, member) in &shape.members {
        if member.location.is_some() {
            continue;
        }
        let member = Ref::new(model, member);
        if let Some(nodes) = groups.get(element_name(model, member, name)) {
            parsed.insert(name.clone(), value(model, member, nodes)?);
        } else if member.member.xml_attribute
            && let Some(found) = attribute(node, member.name().unwrap_or(name))
        {
            parsed.insert(name.clone(), Value::String(found.to_string()));
        }
    }
    Ok(parsed)
}

/// The element name a member is found under: a flattened list with a named element repeats that
/// name (botocore `_member_key_name`).
fn element_name<'a>(model: &'a Model, member: Ref<'a>, name: &'a str) -> &'a str {
    if member.kind() == Kind::List
        && member.flattened()
        && let Some(element) = member.element(model).ok().and_then(|element| element.name())
    {
        return element;
    }
    member.name().unwrap_or(name)
}

/// An attribute by its `locationName`; a prefixed name (`xsi:type`) matches any namespaced
/// attribute of that local name.
fn attribute<'a>(node: Node<'a, '_>, location: &str) -> Option<&'a str> {
    let (namespaced, local) = match location.split_once(':') {
        Some((_, local)) => (true, local),
        None => (false, location),
    };
    node.attributes()
        .find(|attribute| attribute.name() == local && attribute.namespace().is_some() == namespaced)
        .map(|attribute| attribute.value())
}

/// A value of `shape` from the element(s) found for it (several when a list or map is
/// flattened).
fn value(model: &Model, shape: Ref, nodes: &[Node]) -> Result<Value, String> {
    let Some(first) = nodes.first().copied() else {
        return Ok(Value::Null);
    };
    match shape.kind() {
        Kind::Structure => structure(model, shape.shape, first).map(Value::Object),
        Kind::List => {
            let element = shape.element(model)?;
            let items: Vec<Node> = if shape.flattened() { nodes.to_vec() } else { elements(first).collect() };
            items.into_iter().map(|item| value(model, element, &[item])).collect::<Result<_, _>>().map(Value::Array)
        }
        Kind::Map => {
            let (key_shape, value_shape) = shape.entry(model)?;
            let (key_name, value_name) = (key_shape.name().unwrap_or("key"), value_shape.name().unwrap_or("value"));
            let entries: Vec<Node> = if shape.flattened() { nodes.to_vec() } else { elements(first).collect() };
            let mut map = Map::new();
            for entry in entries {
                let Some(key) = child(entry, key_name) else { continue };
                let Some(found) = child(entry, value_name) else { continue };
                map.insert(text(key), value(model, value_shape, &[found])?);
            }
            Ok(Value::Object(map))
        }
        Kind::String => Ok(Value::String(text(first))),
        kind => shapes::scalar_from_text(kind, &text(first)),
    }
}

// ---- errors -----------------------------------------------------------------------------------

/// An element's children as botocore's `_replace_nodes` flattens them: a leaf becomes its
/// text, an element with children a nested object (a repeated name keeps the first).
fn fields(node: Node) -> Map<String, Value> {
    let mut map = Map::new();
    for child in elements(node) {
        let name = local_name(child);
        if map.contains_key(name) {
            continue;
        }
        let value =
            if elements(child).next().is_some() { Value::Object(fields(child)) } else { Value::String(text(child)) };
        map.insert(name.to_string(), value);
    }
    map
}

/// The error of an XML error response, whichever of the three forms it takes:
/// `<ErrorResponse><Error>` (query, Route 53), `<Response><Errors><Error>` (ec2) or `<Error>`
/// (S3). An empty or unreadable body gives the status code as the code, as botocore does.
pub(super) fn error(response: &Response) -> ServiceError {
    if let Some(generic) = shapes::generic_error(response) {
        return generic;
    }
    let body = String::from_utf8_lossy(&response.body);
    let Ok(document) = parse_document(&body) else {
        return shapes::status_error(response);
    };
    let root = document.root_element();
    let top = fields(root);
    let error = if local_name(root) == "Error" {
        top.clone()
    } else {
        let errors = top.get("Errors").and_then(Value::as_object).unwrap_or(&top);
        errors.get("Error").and_then(Value::as_object).cloned().unwrap_or_default()
    };
    let field = |map: &Map<String, Value>, name: &str| map.get(name).and_then(Value::as_str).map(str::to_string);
    let code = field(&error, "Code").filter(|code| !code.is_empty()).unwrap_or_else(|| response.status.to_string());
    let request_id = field(&top, "RequestId").or_else(|| field(&top, "RequestID"));
    ServiceError {
        status: response.status,
        code,
        message: field(&error, "Message").unwrap_or_default(),
        request_id: request_id.or_else(|| shapes::header_request_id(response)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn elements_are_written_as_element_tree_writes_them() {
        let mut root = Element::new("a");
        root.attribute("x", "1\n2\t\"<&>".into());
        let mut leaf = Element::new("b");
        leaf.text = Some("a\n\"'<>&".into());
        root.children.push(leaf);
        root.children.push(Element::new("c"));
        let mut out = String::new();
        root.write(&mut out);
        // Expectation from Python 3.11 `ElementTree.tostring(root, encoding='utf-8')`.
        assert_eq!(out, "<a x=\"1&#10;2&#09;&quot;&lt;&amp;&gt;\"><b>a\n\"'&lt;&gt;&amp;</b><c /></a>");
    }

    #[test]
    fn errors_in_each_xml_form() {
        let query = "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type>\
            <Code>NoSuchEntity</Code><Message>The role with name x cannot be found.</Message></Error>\
            <RequestId>req-1</RequestId></ErrorResponse>";
        let error = error(&response(404, &[], query));
        assert_eq!(error.code, "NoSuchEntity");
        assert_eq!(error.message, "The role with name x cannot be found.");
        assert_eq!(error.request_id.as_deref(), Some("req-1"));

        let garbage = super::error(&response(400, &[("x-amzn-requestid", "h")], "<not xml"));
        assert_eq!((garbage.code.as_str(), garbage.message.as_str()), ("400", "Bad Request"));
        assert_eq!(garbage.request_id.as_deref(), Some("h"));

        let proxy = super::error(&response(503, &[], "<html><body>busy</body></html>"));
        assert_eq!((proxy.code.as_str(), proxy.message.as_str()), ("503", "Service Unavailable"));
    }
}
