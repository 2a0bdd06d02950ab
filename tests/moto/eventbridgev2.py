"""EventBridge V2's event buses, which moto lacks, emulated for the test server in the
service's only wire protocol, Smithy RPC v2 CBOR (requests read and answers written by
botocore's own CBOR parser and serialiser, with the service's model).

Emulated: CreateEventBus, DescribeEventBus, ListEventBuses and DeleteEventBus, per region,
with the ResourceAlreadyExistsException and ResourceNotFoundException errors. Not emulated:
encryption and storage configuration (echoed back as given), tags beyond storing them,
pagination (every bus is on the first page), and the other operations of the service.
"""

import datetime
import threading

import botocore.parsers
import botocore.serialize
import botocore.session

PREFIX = "/service/AWSEventsV2/operation/"
ACCOUNT = "123456789012"

lock = threading.Lock()
buses = {}  # (region, name) -> the bus as DescribeEventBus answers it
model = botocore.session.get_session().get_service_model("eventbridgev2")


def handle(environ, body, region):
    """(status, headers, body) for an EventBridge V2 request, or None for any other call."""
    path = environ.get("PATH_INFO", "")
    if environ["REQUEST_METHOD"] != "POST" or not path.startswith(PREFIX):
        return None
    name = path[len(PREFIX) :]
    if name not in OPERATIONS:
        return answer(400, {"__type": "UnknownOperationException", "message": f"{name} is not emulated"})
    parser = botocore.parsers.RpcV2CBORParser()
    request = parser.parse_data_item(parser.get_peekable_stream_from_bytes(body)) if body else {}
    with lock:
        status, result = OPERATIONS[name](request, region)
    shape = model.operation_model(name).output_shape if status == 200 else None
    return answer(status, result, shape)


def answer(status, result, shape=None):
    """The CBOR body of an answer: by the output shape for a success, field by field for an
    error (its `__type` and `message`)."""
    body = bytearray()
    serializer = botocore.serialize.RpcV2CBORSerializer()
    if shape is not None:
        serializer._serialize_data_item(body, result, shape)
    else:
        body.extend(b"\xa2")
        for key in ("__type", "message"):
            serializer._serialize_type_string(body, key, None, None)
            serializer._serialize_type_string(body, result[key], None, None)
    headers = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
    return status, headers, bytes(body)


def not_found(arn):
    return 400, {"__type": "ResourceNotFoundException", "message": f"Event bus {arn} does not exist."}


def find(request, region):
    arn = request.get("EventBusArn", "")
    name = arn.rsplit("/", 1)[-1]
    return buses.get((region, name)), arn


def create_event_bus(request, region):
    name = request["Name"]
    if (region, name) in buses:
        return 400, {"__type": "ResourceAlreadyExistsException", "message": f"Event bus {name} already exists."}
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    bus = {
        "EventBusArn": f"arn:aws:events:{region}:{ACCOUNT}:event-bus/{name}",
        "Name": name,
        "State": "ACTIVE",
        "CreationTime": now,
        "LastModifiedTime": now,
    }
    for key in ("Description", "EncryptionConfiguration"):
        if key in request:
            bus[key] = request[key]
    buses[(region, name)] = bus
    return 200, {key: value for key, value in bus.items() if key != "LastModifiedTime"}


def describe_event_bus(request, region):
    bus, arn = find(request, region)
    return (200, bus) if bus is not None else not_found(arn)


def delete_event_bus(request, region):
    bus, arn = find(request, region)
    if bus is None:
        return not_found(arn)
    del buses[(region, bus["Name"])]
    return 200, {}


def list_event_buses(request, region):
    prefix = request.get("NamePrefix", "")
    found = [
        {key: bus[key] for key in ("EventBusArn", "Name", "State", "CreationTime")}
        for (where, name), bus in sorted(buses.items())
        if where == region and name.startswith(prefix)
    ]
    return 200, {"EventBuses": found}


OPERATIONS = {
    "CreateEventBus": create_event_bus,
    "DescribeEventBus": describe_event_bus,
    "DeleteEventBus": delete_event_bus,
    "ListEventBuses": list_event_buses,
}
