#!/usr/bin/env python3
"""Build engine/models/botocore.bin, the AWS API models the engine's client is driven by.

The models come from a pinned botocore release (tests/moto/requirements.txt pins the same
version, so the emulator and the engine read one model). Run it from the project root:

    .venv/bin/python engine/models/generate.py

Only what the client and the validator read is kept: metadata, operations, shapes, and the
partition endpoints of global services. Documentation, examples, patterns and length limits
are dropped. Each service is compressed on its own so the engine inflates only the services a
runbook names.

Bundle layout: the line `runbook-models 1`, one line of JSON index, then the zlib blobs the
index points at (offsets from the first byte after the index line).
"""

import gzip
import json
import os
import sys
import zlib

import botocore

# Every `Service` named by the AWS-published runbooks (../shared/corpus/ssm-public), the
# services the dedicated actions call, sts, route53 and s3, and the two that resolve the
# targets of runs over targets (resourcegroupstaggingapi, resource-groups). A corpus test checks that no
# corpus service is missing from the bundle.
SERVICES = sorted(
    {
        "accessanalyzer", "apigatewayv2", "application-autoscaling", "appsync", "athena",
        "autoscaling", "backup", "cloudformation", "cloudtrail", "cloudwatch", "codebuild",
        "codedeploy", "config", "connect", "docdb", "ds", "dynamodb", "ec2", "ecs", "efs",
        "eks", "elasticbeanstalk", "elb", "elbv2", "emr", "events", "firehose", "fsx", "glue",
        "guardduty", "iam", "identitystore", "inspector2", "kafka", "kinesis", "kms",
        "lambda", "logs", "migration-hub-refactor-spaces", "mwaa", "neptune", "ram", "rds",
        "redshift", "resource-groups", "resourcegroupstaggingapi", "route53", "s3", "s3control", "sagemaker", "secretsmanager",
        "securityhub", "service-quotas", "ses", "sesv2", "sns", "sqs", "ssm", "sso-admin",
        "stepfunctions", "sts", "waf", "waf-regional", "workspaces", "xray",
    }
)

SUPPORTED_PROTOCOLS = ["json", "rest-json", "rest-xml", "query", "ec2"]

# Keys the engine never reads.
DROPPED = {
    "documentation", "documentationUrl", "examples", "pattern", "min", "max",
    "deprecatedMessage", "deprecatedSince", "errors", "exception", "fault", "error",
    "retryable", "box", "wrapper", "union", "uid", "serviceAbbreviation", "serviceFullName",
    "auth", "authtype", "unsigned", "endpointdiscovery", "endpointoperation", "documentationUrl",
}


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
    else:
        with open(path) as file:
            model = json.load(file)
    extras = os.path.join(folder, "service-2.sdk-extras.json")
    if os.path.exists(extras):
        with open(extras) as file:
            merge(model, json.load(file).get("merge", {}))
    return model


def choose_protocol(metadata):
    offered = metadata.get("protocols") or [metadata["protocol"]]
    for protocol in offered:
        if protocol in SUPPORTED_PROTOCOLS:
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
    for name in SERVICES:
        model = strip(latest_model(data, name))
        model["metadata"]["protocol"] = choose_protocol(model["metadata"])
        model["metadata"].pop("protocols", None)
        blob = zlib.compress(json.dumps(model, separators=(",", ":")).encode(), 9)
        index["services"][name] = {"offset": len(blobs), "length": len(blob)}
        blobs += blob
    out = os.path.join(here, "botocore.bin")
    with open(out, "wb") as file:
        file.write(b"runbook-models 1\n")
        file.write(json.dumps(index, separators=(",", ":"), sort_keys=True).encode() + b"\n")
        file.write(blobs)
    print(f"{out}: {len(SERVICES)} services from botocore {botocore.__version__}, "
          f"{os.path.getsize(out):,} bytes")


if __name__ == "__main__":
    main()
