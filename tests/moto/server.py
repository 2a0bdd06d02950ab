"""The moto server the end-to-end tests talk to (started by tests/src/moto.rs).

Listens on a free 127.0.0.1 port, prints it, and logs every request it receives (method,
path, operation, and the body of an SSM request) as one JSON line to the
file named by the first argument, so tests can check which calls the engine made. It exits
when its stdin closes: the test process holds the other end, so the server never outlives
the tests.
"""

import io
import json
import os
import sys
import threading
import urllib.parse

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.core.config import default_user_config
from werkzeug.serving import make_server

import automation
import eventbridgev2


def operation(environ, body):
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.split(".")[-1]
    path = environ.get("PATH_INFO", "")
    if path.startswith("/service/") and "/operation/" in path:
        # Smithy RPC v2 names the operation in the path.
        return path.rsplit("/", 1)[-1]
    fields = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        fields.update(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
    return (fields.get("Action") or [None])[0]


def region_of(environ):
    """The region a SigV4-signed request was signed for."""
    scope = environ.get("HTTP_AUTHORIZATION", "").split("Credential=")[-1].split(",")[0].split("/")
    return scope[2] if len(scope) > 2 else "us-east-1"


def list_group_resources(environ, body):
    """Resource Groups' ListGroupResources, which moto lacks: the resources of a tag-query
    group, found through moto's own Resource Groups Tagging API backend."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.resourcegroups.models import resourcegroups_backends
    from moto.resourcegroupstaggingapi.models import resourcegroupstaggingapi_backends

    region = region_of(environ)
    request = json.loads(body or b"{}")
    name = (request.get("Group") or request.get("GroupName") or "").split("/")[-1]
    group = resourcegroups_backends[DEFAULT_ACCOUNT_ID][region].groups.by_name.get(name)
    if group is None or not group.resource_query:
        error = {"__type": "NotFoundException", "Message": f"group {name} not found"}
        return 404, error
    query = json.loads(group.resource_query["Query"])
    # AWS::EC2::Instance in a group's query is ec2:instance to the tagging API.
    kinds = [
        ":".join(part.lower() for part in kind.split("::")[1:])
        for kind in query.get("ResourceTypeFilters", [])
        if kind != "AWS::AllSupported"
    ]
    tagging = resourcegroupstaggingapi_backends[DEFAULT_ACCOUNT_ID][region]
    _, resources = tagging.get_resources(
        tag_filters=query.get("TagFilters"), resource_type_filters=kinds or None, resources_per_page=1000
    )
    found = [{"Identifier": {"ResourceArn": r.arn, "ResourceType": r.resource_type}} for r in resources]
    identifiers = [item["Identifier"] for item in found]
    return 200, {"Resources": found, "ResourceIdentifiers": identifiers}


def emulated(environ, body, start_response):
    """An API moto lacks, emulated here (the README lists them); None for every other call."""
    if environ["REQUEST_METHOD"] == "POST" and environ.get("PATH_INFO") == "/list-group-resources":
        status, answer = list_group_resources(environ, body)
        start_response(f"{status} {'OK' if status == 200 else 'Not Found'}", [("Content-Type", "application/json")])
        return [json.dumps(answer).encode()]
    # EventBridge V2, in CBOR (tests/moto/eventbridgev2.py).
    answered = eventbridgev2.handle(environ, body, region_of(environ))
    if answered is not None:
        status, headers, answer = answered
        start_response(f"{status} {'OK' if status == 200 else 'Bad Request'}", headers)
        return [answer]
    # SSM Automation's execution APIs (tests/moto/automation.py).
    answered = automation.handle(environ, body, region_of(environ))
    if answered is not None:
        status, answer = answered
        reason = "OK" if status == 200 else "Bad Request"
        start_response(f"{status} {reason}", [("Content-Type", "application/x-amz-json-1.1")])
        return [json.dumps(answer).encode()]
    return None


def logging(app, log):
    lock = threading.Lock()
    # moto checks a conditional write (If-Match, If-None-Match) and then makes it, in two
    # moves another request can come between; S3 does both at once. Writes take turns here,
    # so the engine's S3 store meets S3's guarantee.
    writing = threading.Lock()

    def middleware(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        entry = {
            "method": environ["REQUEST_METHOD"],
            "path": environ.get("PATH_INFO", ""),
            "query": environ.get("QUERY_STRING", ""),
            "operation": operation(environ, body),
        }
        # An SSM request's body too (documents, Automation), so tests can check what was sent.
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("AmazonSSM."):
            try:
                entry["request"] = json.loads(body or b"{}")
            except ValueError:
                entry["request"] = body.decode("utf-8", "replace")
        with lock:
            log.write(json.dumps(entry) + "\n")
            log.flush()
        answered = emulated(environ, body, start_response)
        if answered is not None:
            return answered
        if environ["REQUEST_METHOD"] in ("PUT", "POST", "DELETE"):
            with writing:
                return list(app(environ, start_response))
        return app(environ, start_response)

    return middleware


def main():
    # Step Functions executions run their state machines (a Pass state ends SUCCEEDED)
    # instead of staying RUNNING.
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    # Without Docker, Lambda's simple backend answers an invocation with its payload.
    default_user_config["lambda"]["use_docker"] = False
    log = open(sys.argv[1], "a")
    app = logging(DomainDispatcherApplication(create_backend_app), log)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    main()
