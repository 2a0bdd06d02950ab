"""botocore as the oracle of the engine's AWS wire protocols (tests/tests/protocols.rs).

For every operation of every service named on the command line (`SERVICE=PROTOCOL`, the
protocol the engine's bundle chose), builds sample parameters from the input shape and
serialises them with botocore, and builds a sample response from the output shape and parses
it with botocore. Prints one JSON document:

    {"botocore": VERSION,
     "requests": [{service, operation, params, expected: {method, path, headers, body, host_prefix}}],
     "responses": [{service, operation, status, headers, body, expected}],
     "unparsed": [{service, operation, reason}]}

Bodies are text, but hexadecimal for smithy-rpc-v2-cbor, whose bodies are binary.

`unparsed` lists responses botocore cannot give a result for; the test decides which of those
it accepts. Datetimes in botocore's results become ISO-8601 text in UTC and bytes base64 text,
the form the engine's parser gives.
"""

import base64
import datetime
import json
import sys
from urllib.parse import urlsplit
from xml.etree import ElementTree

import botocore
import botocore.parsers
import botocore.serialize
import botocore.session
from botocore.awsrequest import AWSRequest, HeadersDict, prepare_request_dict

REQUEST_ID = "rid"
CBOR = "smithy-rpc-v2-cbor"


def sample(shape, name, depth=0, stack=(), whole_unions=True):
    """A value for `shape` that sets every member, with text that needs escaping in every
    protocol (a space, `/` and `&`). Members come in model order and map keys sorted, the order
    the engine writes them in (botocore follows the caller's order instead). Recursive shapes
    stop at their second appearance and deep nesting at depth 5, so `None` means "leave this
    member out". A union sets only its first member that has a value unless `whole_unions`:
    botocore's parser rejects more, while its serialiser (without validation) sends them all,
    which exercises more members."""
    kind = shape.type_name
    if kind == "structure":
        if shape.name in stack or depth > 5:
            return None
        if shape.is_document_type:
            return {"a": 1}
        out = {}
        for key, member in shape.members.items():
            value = sample(member, key, depth + 1, stack + (shape.name,), whole_unions)
            if value is not None:
                out[key] = value
                if shape.is_tagged_union and not whole_unions:
                    break
        if shape.is_tagged_union and not out:
            # A union with nothing set (its members nested too deep) is no union at all.
            return None
        return out
    if kind == "list":
        value = sample(shape.member, name, depth + 1, stack, whole_unions)
        return None if value is None else [value, value]
    if kind == "map":
        value = sample(shape.value, name, depth + 1, stack, whole_unions)
        return None if value is None else {"k1": value, "k2 x": value}
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        if shape.serialization.get("hostLabel"):
            return "abc-1"
        if shape.serialization.get("jsonvalue"):
            return {"a": 1}
        return f"v {name}/x&y"
    if kind in ("integer", "long"):
        return 7
    if kind in ("float", "double"):
        return 1.5
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return "2024-01-02T03:04:05.25Z"
    if kind == "blob":
        return "blob data"
    return None


def request_case(operation, protocol):
    """botocore's request for sample parameters: the serialiser's output, with the URL and
    body as `AWSRequest` prepares them for sending."""
    params = sample(operation.input_shape, "") if operation.input_shape else {}
    serializer = botocore.serialize.create_serializer(protocol, include_validation=False)
    serialized = serializer.serialize_to_request(params, operation)
    prepare_request_dict(serialized, "https://example.com")
    prepared = AWSRequest(
        method=serialized["method"], url=serialized["url"], data=serialized["body"], headers=serialized["headers"]
    ).prepare()
    url = urlsplit(prepared.url)
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    return params, {
        "method": prepared.method,
        "path": url.path + ("?" + url.query if url.query else ""),
        "headers": dict(serialized["headers"]),
        "body": body_text(body, protocol),
        "host_prefix": serialized.get("host_prefix"),
    }


def body_text(body, protocol):
    """A body as the test reads it: CBOR in hexadecimal; the others as text (sample values
    are text, so their bodies are UTF-8)."""
    if protocol == CBOR:
        return body.hex()
    return body.decode("utf-8")


def element_of(shape, params, root):
    """`params` as an XML element named `root`, built by botocore's rest-xml serialiser (whose
    element names are those the parsers read)."""
    pseudo = ElementTree.Element("")
    if shape is not None:
        botocore.serialize.RestXMLSerializer()._serialize(shape, params, pseudo, root)
        return list(pseudo)[0]
    return ElementTree.SubElement(pseudo, root)


def xml_of(element):
    return ElementTree.tostring(element, encoding="utf-8")


def json_of(shape, params):
    body = {}
    if shape is not None:
        botocore.serialize.JSONSerializer()._serialize(body, params, shape)
    return json.dumps(body).encode()


def header_text(shape, value):
    """A response header's text for a sample value, in the member's timestamp format."""
    kind = shape.type_name
    if kind == "timestamp":
        formats = {
            "rfc822": "Tue, 02 Jan 2024 03:04:05 GMT",
            "iso8601": "2024-01-02T03:04:05Z",
            "unixtimestamp": "1704164645",
        }
        return formats[shape.serialization.get("timestampFormat", "rfc822")]
    if kind == "boolean":
        return "true"
    if kind == "list":
        return ",".join(header_text(shape.member, item) for item in value)
    if shape.serialization.get("jsonvalue"):
        return base64.b64encode(json.dumps(value).encode()).decode()
    if kind == "blob":
        return base64.b64encode(value.encode()).decode()
    return str(value)


def sample_response(operation, protocol):
    """Status, headers and body of a response that carries a sample value in every output
    member: header members in headers, the rest in a body as the protocol lays it out, and the
    request id where the protocol puts it."""
    name = operation.name
    shape = operation.output_shape
    params = (sample(shape, "", whole_unions=False) or {}) if shape is not None else {}
    if operation.service_model.signing_name == "s3":
        # S3 and S3 Control give their own request id header and a host id.
        headers = {"x-amz-request-id": REQUEST_ID, "x-amz-id-2": "host"}
    else:
        headers = {"x-amzn-requestid": REQUEST_ID}
    body_params = {}
    for key, value in params.items():
        member = shape.members[key]
        location = member.serialization.get("location")
        if location == "header":
            headers[member.serialization.get("name", key).lower()] = header_text(member, value)
        elif location == "headers":
            for suffix, text in value.items():
                headers[(member.serialization.get("name", "") + suffix).lower()] = str(text)
        elif location != "statusCode":
            body_params[key] = value
    payload = shape.serialization.get("payload") if shape is not None else None
    if payload:
        member = shape.members[payload]
        value = params.get(payload)
        if member.type_name in ("blob", "string"):
            body = (value or "").encode()
        elif protocol == "rest-xml":
            body = xml_of(element_of(member, value, member.serialization.get("name", payload)))
        else:
            body = json_of(member, value)
    elif protocol in ("json", "rest-json"):
        body = json_of(shape, body_params)
    elif protocol == CBOR:
        body = bytearray()
        if shape is not None:
            botocore.serialize.RpcV2CBORSerializer()._serialize_data_item(body, body_params, shape)
        body = bytes(body)
    elif protocol == "rest-xml":
        body = xml_of(element_of(shape, body_params, "Root")) if shape is not None else b""
    elif protocol == "ec2":
        # ec2 results sit in the root element, beside the request id.
        root = element_of(shape, body_params, name + "Response")
        ElementTree.SubElement(root, "requestId").text = REQUEST_ID
        body = xml_of(root)
    else:
        # query results sit in `<{Op}Result>`, beside the response metadata.
        root = ElementTree.Element(name + "Response")
        wrapper = shape.serialization.get("resultWrapper") if shape is not None else None
        if wrapper:
            root.append(element_of(shape, body_params, wrapper))
        metadata = ElementTree.SubElement(root, "ResponseMetadata")
        ElementTree.SubElement(metadata, "RequestId").text = REQUEST_ID
        body = xml_of(root)
    return 200, headers, body


def result(value):
    """A parsed value in the form the engine gives: datetimes as ISO-8601 text in UTC with the
    fraction only when there is one, bytes as base64 text."""
    if isinstance(value, dict):
        return {key: result(item) for key, item in value.items()}
    if isinstance(value, list):
        return [result(item) for item in value]
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc)
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
        if value.microsecond:
            text += (".%06d" % value.microsecond).rstrip("0")
        return text + "Z"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"botocore gave a {type(value).__name__} ({value!r:.80})")


def parsed_response(operation, protocol, status, headers, body):
    parser = botocore.parsers.create_parser(protocol)
    response = {"status_code": status, "headers": HeadersDict(headers), "body": body}
    parsed = parser.parse(response, operation.output_shape)
    # The engine keeps only the request id (and S3's host id) of the response metadata.
    metadata = parsed.get("ResponseMetadata", {})
    metadata.pop("HTTPStatusCode", None)
    metadata.pop("HTTPHeaders", None)
    if not metadata:
        parsed.pop("ResponseMetadata", None)
    return result(parsed)


def main():
    session = botocore.session.get_session()
    requests, responses, unparsed = [], [], []
    for argument in sys.argv[1:]:
        service, protocol = argument.split("=")
        model = session.get_service_model(service)
        for name in model.operation_names:
            operation = model.operation_model(name)
            params, expected = request_case(operation, protocol)
            requests.append({"service": service, "operation": name, "params": params, "expected": expected})

            output = operation.output_shape
            if output is not None and any(m.serialization.get("eventstream") for m in output.members.values()):
                # botocore reads event streams from a live connection; the engine leaves them out.
                unparsed.append({"service": service, "operation": name, "reason": "event stream"})
                continue
            status, headers, body = sample_response(operation, protocol)
            try:
                expected = parsed_response(operation, protocol, status, headers, body)
            except (botocore.parsers.ResponseParserError, TypeError) as error:
                unparsed.append({"service": service, "operation": name, "reason": str(error)})
                continue
            responses.append(
                {
                    "service": service,
                    "operation": name,
                    "status": status,
                    "headers": headers,
                    "body": body_text(body, protocol),
                    "expected": expected,
                }
            )
    json.dump(
        {"botocore": botocore.__version__, "requests": requests, "responses": responses, "unparsed": unparsed},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
