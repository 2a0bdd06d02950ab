#!/usr/bin/env python3
"""Build engine/models/botocore.bin, the AWS API models the engine's client is driven by.

The models come from a pinned botocore release (tests/moto/requirements.txt pins the same
version, so the emulator and the engine read one model). Run it from the project root:

    .venv/bin/python engine/models/generate.py

Every service of that botocore is bundled. Only what the client and the validator read is
kept: metadata, operations, shapes, and the partition endpoints of global services.
Documentation, examples, patterns and length limits are dropped.

The models are pre-digested: each operation and shape is one binary record (engine/src/aws/
model.rs reads them without a JSON parse), records are packed into small compressed blocks in
the order operations reach them, and a per-service directory sorted by name says which block
holds each record. The engine reads a service's directory in place when a runbook names the
service, and decompresses only the blocks holding the operations and shapes it reaches.

Blocks are LZ4 blocks (the raw block format, no frame), compressed at the highest level with
the last 64 KiB of the service's name bytes as the dictionary: records repeat the names of
shapes, and the directory holds those bytes uncompressed anyway. The bundle is as small as it
was with zlib (8.66 MB against 8.60), and the blocks validating the AWS corpus reaches take
the engine 2 M instructions to decompress, where inflating them took 25 M. Compressing needs
the `lz4` package (`pip install lz4==4.4.5`) beside botocore.

Layout (integers little-endian, `varint` is LEB128, `str` is a varint length then UTF-8):

    bundle   = "runbook-models 4\\n", u32 index-length, index, service-blob*
    index    = str botocore version, u32 services, (str name, u32 offset, u32 length) *
               services (sorted by name; offsets count from the first byte after the index),
               str partitions (JSON, parsed only when an endpoint is resolved)
    service  = u32 directory-length, directory, lz4(block)*
    directory= metadata, u32 operations, u32 shapes, u32 blocks,
               entry * operations, entry * shapes (each sorted by name),
               (u32 offset, u32 length, u32 raw length) * blocks (offsets from the end of
               the directory), name bytes
    entry    = u32 name offset (into name bytes), u16 name length, u16 block, u32 offset in
               the decompressed block

Records (`flags` is a varint bit set; optional fields follow in bit order when set):

    metadata = str apiVersion, str endpointPrefix, u8 protocol, str serviceId, flags
               (signingName, targetPrefix, jsonVersion, xmlNamespace, awsQueryCompatible)
    operation= str name, str method, str requestUri, flags (httpChecksumRequired,
               httpChecksum.requestChecksumRequired, deprecated | responseCode varint,
               input member, output member, hostPrefix str)
    member   = str shape, flags (flattened, xmlAttribute, idempotencyToken, jsonvalue,
               hostLabel, streaming, deprecated | location u8, locationName, queryName,
               xmlNamespace, timestampFormat, resultWrapper)
    shape    = u8 kind, flags (flattened, streaming, sensitive, document, eventstream |
               member, key, value, locationName, payload, timestampFormat, xmlNamespace),
               varint n, (str name, member) * n, varint n, str required * n,
               varint n, str enum * n, then the optional fields
    xmlns    = u8 0 then str uri | u8 1 then str uri | u8 2 then str prefix, str uri
"""

import gzip
import json
import os
import struct
import sys

import botocore
import lz4.block

# Protocols the engine speaks, in the order it prefers them when a model offers several.
SUPPORTED_PROTOCOLS = ["json", "rest-json", "rest-xml", "query", "ec2", "smithy-rpc-v2-cbor"]
PROTOCOL_CODES = {"json": 0, "rest-json": 1, "rest-xml": 2, "query": 3, "ec2": 4, "smithy-rpc-v2-cbor": 5}
KINDS = ["structure", "list", "map", "string", "integer", "long", "float", "double", "boolean",
         "timestamp", "blob"]
LOCATIONS = ["uri", "querystring", "header", "headers", "statusCode"]

# Records are packed into blocks of about this many bytes before compression: small enough
# that reaching one shape decompresses little, big enough to compress well.
BLOCK_BYTES = 4 * 1024

# LZ4 reaches back at most this far, into the dictionary too.
DICTIONARY_BYTES = 64 * 1024


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def text(value):
    data = value.encode()
    return varint(len(data)) + data


def flags(bits):
    return varint(sum(1 << i for i, bit in enumerate(bits) if bit))


def xmlns(value):
    if isinstance(value, str):
        return b"\0" + text(value)
    if "prefix" in value:
        return b"\2" + text(value["prefix"]) + text(value["uri"])
    return b"\1" + text(value["uri"])


def member(value):
    optional = [
        ("location", lambda v: bytes([LOCATIONS.index(v)])),
        ("locationName", text),
        ("queryName", text),
        ("xmlNamespace", xmlns),
        ("timestampFormat", text),
        ("resultWrapper", text),
    ]
    bits = [bool(value.get(k)) for k in
            ("flattened", "xmlAttribute", "idempotencyToken", "jsonvalue", "hostLabel", "streaming", "deprecated")]
    bits += [key in value for key, _ in optional]
    out = text(value["shape"]) + flags(bits)
    for key, encode in optional:
        if key in value:
            out += encode(value[key])
    return out


def shape(value):
    if value["type"] not in KINDS:
        sys.exit(f"unknown shape type {value['type']}")
    optional = [
        ("member", member), ("key", member), ("value", member), ("locationName", text),
        ("payload", text), ("timestampFormat", text), ("xmlNamespace", xmlns),
    ]
    bits = [bool(value.get(k)) for k in ("flattened", "streaming", "sensitive", "document", "eventstream")]
    bits += [key in value for key, _ in optional]
    out = bytes([KINDS.index(value["type"])]) + flags(bits)
    members = value.get("members", {})
    out += varint(len(members)) + b"".join(text(name) + member(m) for name, m in members.items())
    for key in ("required", "enum"):
        items = value.get(key, [])
        out += varint(len(items)) + b"".join(text(item) for item in items)
    for key, encode in optional:
        if key in value:
            out += encode(value[key])
    return out


def operation(value):
    http = value["http"]
    optional = [
        ("responseCode", varint, http.get("responseCode")),
        ("input", member, value.get("input")),
        ("output", member, value.get("output")),
        ("hostPrefix", text, value.get("endpoint", {}).get("hostPrefix")),
    ]
    bits = [
        bool(value.get("httpChecksumRequired")),
        bool(value.get("httpChecksum", {}).get("requestChecksumRequired")),
        bool(value.get("deprecated")),
    ]
    bits += [present is not None for _, _, present in optional]
    out = text(value["name"]) + text(http["method"]) + text(http["requestUri"]) + flags(bits)
    for _, encode, present in optional:
        if present is not None:
            out += encode(present)
    return out


def metadata(value, protocol):
    optional = ["signingName", "targetPrefix", "jsonVersion", "xmlNamespace"]
    namespace = value.get("xmlNamespace")
    if isinstance(namespace, dict):
        value = dict(value, xmlNamespace=namespace["uri"])
    bits = [key in value for key in optional] + ["awsQueryCompatible" in value]
    out = text(value["apiVersion"]) + text(value["endpointPrefix"]) + bytes([PROTOCOL_CODES[protocol]])
    out += text(value["serviceId"]) + flags(bits)
    for key in optional:
        if key in value:
            out += text(value[key])
    return out


def reached(model):
    """Record names in the order operations reach them (operation, then its shapes depth
    first), so one operation's records sit in few blocks; unreached shapes come last."""
    order, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        order.append(("shape", name))
        value = model["shapes"][name]
        for m in list(value.get("members", {}).values()) + [value[k] for k in ("member", "key", "value") if k in value]:
            visit(m["shape"])

    for name in sorted(model["operations"]):
        order.append(("operation", name))
        for key in ("input", "output"):
            if key in model["operations"][name]:
                visit(model["operations"][name][key]["shape"])
    for name in sorted(model["shapes"]):
        visit(name)
    return order


def digest(model, protocol):
    """One service's blob."""
    blocks, current, where = [], bytearray(), {}
    for kind, name in reached(model):
        record = operation(model["operations"][name]) if kind == "operation" else shape(model["shapes"][name])
        if current and len(current) + len(record) > BLOCK_BYTES:
            blocks.append(bytes(current))
            current = bytearray()
        where[(kind, name)] = (len(blocks), len(current))
        current += record
    if current:
        blocks.append(bytes(current))
    if len(blocks) > 0xFFFF:
        sys.exit("too many blocks for a u16")

    names = bytearray()
    tables = {}
    for kind in ("operation", "shape"):
        entries = bytearray()
        for key in sorted((k for k in where if k[0] == kind), key=lambda k: k[1].encode()):
            block, offset = where[key]
            encoded = key[1].encode()
            entries += struct.pack("<IHHI", len(names), len(encoded), block, offset)
            names += encoded
        tables[kind] = entries
    dictionary = bytes(names[-DICTIONARY_BYTES:])
    compressed = [
        lz4.block.compress(block, mode="high_compression", compression=12, store_size=False, dict=dictionary)
        for block in blocks
    ]
    directory_head = metadata(model["metadata"], protocol) + struct.pack(
        "<III", len(model["operations"]), len(model["shapes"]), len(blocks))
    # Block offsets count from the end of the directory.
    table = bytearray()
    at = 0
    for block, raw in zip(compressed, blocks):
        table += struct.pack("<III", at, len(block), len(raw))
        at += len(block)
    # The directory stays uncompressed: decompressing it cost more than the rest of loading a
    # service, and it is read wherever a runbook names the service.
    directory = directory_head + tables["operation"] + tables["shape"] + table + names
    return struct.pack("<I", len(directory)) + directory + b"".join(compressed)


def strip(value, names=False):
    """Drops the keys the engine never reads; `names` marks a dict keyed by member, shape or
    operation names, which are kept whatever they are called (codebuild has a member `auth`)."""
    if isinstance(value, dict):
        return {
            k: strip(v, names=k in ("members", "shapes", "operations") and not names)
            for k, v in value.items()
            if names or k not in DROPPED
        }
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


# Keys the engine never reads.
DROPPED = {"documentation", "documentationUrl", "examples"}


def merge(base, extra):
    """botocore's deep merge of `service-2.sdk-extras.json` into the model."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value


def latest_model(data, name):
    versions = sorted(os.listdir(os.path.join(data, name)))
    folder = os.path.join(data, name, versions[-1])
    path = os.path.join(folder, "service-2.json")
    if os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz", "rt") as file:
            model = json.load(file)
    elif os.path.exists(path):
        with open(path) as file:
            model = json.load(file)
    else:
        return None
    extras = os.path.join(folder, "service-2.sdk-extras.json")
    if os.path.exists(extras):
        with open(extras) as file:
            merge(model, json.load(file).get("merge", {}))
    return model


def choose_protocol(metadata):
    """The first protocol the model offers that the engine speaks, preferring the older
    protocols where a service offers CBOR beside them (they are what moto emulates)."""
    offered = metadata.get("protocols") or [metadata["protocol"]]
    for protocol in SUPPORTED_PROTOCOLS:
        if protocol in offered:
            return protocol
    sys.exit(f"no supported protocol among {offered} for {metadata['serviceId']}")


def global_endpoints(data):
    """Per partition, the endpoint prefixes served from one global host."""
    with open(os.path.join(data, "endpoints.json")) as file:
        endpoints = json.load(file)
    partitions = {}
    for partition in endpoints["partitions"]:
        services = {}
        for prefix, service in partition["services"].items():
            if service.get("isRegionalized", True):
                continue
            home = service.get("partitionEndpoint")
            endpoint = service.get("endpoints", {}).get(home, {})
            if "hostname" in endpoint:
                services[prefix] = {
                    "hostname": endpoint["hostname"],
                    "region": endpoint.get("credentialScope", {}).get("region"),
                }
        partitions[partition["partition"]] = {
            "dnsSuffix": partition["dnsSuffix"],
            "regionRegex": partition["regionRegex"],
            "globalServices": services,
        }
    return partitions


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    data = os.path.join(os.path.dirname(botocore.__file__), "data")
    index = {"botocore": botocore.__version__, "services": {}, "partitions": global_endpoints(data)}
    blobs = bytearray()
    for name in sorted(os.listdir(data)):
        if not os.path.isdir(os.path.join(data, name)):
            continue
        model = latest_model(data, name)
        if model is None:
            continue
        model = strip(model)
        blob = digest(model, choose_protocol(model["metadata"]))
        index["services"][name] = {"offset": len(blobs), "length": len(blob)}
        blobs += blob
    out = os.path.join(here, "botocore.bin")
    head = text(index["botocore"]) + struct.pack("<I", len(index["services"]))
    for name in sorted(index["services"], key=str.encode):
        entry = index["services"][name]
        head += text(name) + struct.pack("<II", entry["offset"], entry["length"])
    head += text(json.dumps(index["partitions"], separators=(",", ":"), sort_keys=True))
    with open(out, "wb") as file:
        file.write(b"runbook-models 4\n")
        file.write(struct.pack("<I", len(head)) + head)
        file.write(blobs)
    print(f"{out}: {len(index['services'])} services from botocore {botocore.__version__}, "
          f"{os.path.getsize(out):,} bytes")


if __name__ == "__main__":
    main()
