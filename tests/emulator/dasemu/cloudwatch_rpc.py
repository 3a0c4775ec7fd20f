"""CloudWatch in the protocol the AWS SDK for Rust speaks, and metrics fed by what the emulator
really does.

The SDK calls CloudWatch with the Smithy RPC v2 CBOR protocol (`POST
/service/GraniteServiceVersion20100801/operation/<Operation>`, header `smithy-protocol:
rpc-v2-cbor`, a CBOR body; Smithy's "RPC v2 CBOR protocol" specification), which moto does not
serve. This front end decodes such a request with botocore's CBOR parser, answers it from moto's
CloudWatch backend (its statistics over the datapoints stored), and encodes the answer in CBOR
(timestamps as tag 1, epoch seconds), errors as the protocol's `__type` and `message`.
Operations served: `GetMetricData` (what `das-setup status` asks); any other answers the
protocol's `UnknownOperationException`. Under `--enforce-iam` the caller needs
`cloudwatch:GetMetricData` (Service Authorization Reference: no resource types, so `*`).

The metrics are the emulator's own doing, as the services document them:
- AWS/Lambda, dimension FunctionName: `Invocations` (1 a run), `Errors` (1 when the run ended in a
  function error), `Throttles` (0: the emulator has no concurrency limit), `Duration` (ms) (Lambda
  Developer Guide, "Types of metrics for Lambda functions");
- AWS/Firehose, dimension DeliveryStreamName: `ExecuteProcessing.Success` (1 or 0 per invocation of
  the processor), `DeliveryToS3.Success` (1 or 0 per batch written), `KinesisMillisBehindLatest`
  (GetRecords' `MillisBehindLatest` of each read) (Firehose Developer Guide, "Monitoring with
  CloudWatch metrics").
"""

import datetime
import re
import struct

from botocore.parsers import RpcV2CBORParser

PATH = re.compile(r"^/service/GraniteServiceVersion20100801/operation/(\w+)$")
DEFAULT_ACCOUNT = "123456789012"


# --- datapoints -----------------------------------------------------------------------------
def put(account, region, namespace, name, dimension, value, unit="None"):
    """One datapoint now, in moto's CloudWatch backend."""
    from moto.cloudwatch.models import cloudwatch_backends

    key, val = dimension
    cloudwatch_backends[account or DEFAULT_ACCOUNT][region].put_metric_data(namespace, [{
        "MetricName": name, "Value": float(value), "Unit": unit,
        "Dimensions": [{"Name": key, "Value": val}],
        # Naive UTC, moto's convention for CloudWatch datapoints.
        "Timestamp": datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None),
    }])


def lambda_ran(function_arn, kind, millis):
    """A run of a function: ("response" | "error", its duration)."""
    parts = function_arn.split(":")
    account, region, name = parts[4], parts[3], parts[6]
    dim = ("FunctionName", name)
    put(account, region, "AWS/Lambda", "Invocations", dim, 1, "Count")
    put(account, region, "AWS/Lambda", "Errors", dim, 1 if kind == "error" else 0, "Count")
    put(account, region, "AWS/Lambda", "Throttles", dim, 0, "Count")
    put(account, region, "AWS/Lambda", "Duration", dim, millis, "Milliseconds")


def firehose(delivery_stream_arn, name, value, unit="Count"):
    parts = delivery_stream_arn.split(":")
    put(parts[4], parts[3], "AWS/Firehose", name, ("DeliveryStreamName", parts[5].split("/", 1)[-1]),
        value, unit)


# --- CBOR ------------------------------------------------------------------------------------
def _head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for code, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | code]) + n.to_bytes(size, "big")
    raise ValueError("integer too large for CBOR")


def encode(value):
    """The CBOR (RFC 8949) of a JSON-like value; datetimes as tag 1 (epoch seconds)."""
    if value is None:
        return b"\xf6"
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, float):
        return b"\xfb" + struct.pack(">d", value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return b"\xc1" + encode(float(value.timestamp()))
    if isinstance(value, str):
        data = value.encode()
        return _head(3, len(data)) + data
    if isinstance(value, (bytes, bytearray)):
        return _head(2, len(value)) + bytes(value)
    if isinstance(value, (list, tuple)):
        return _head(4, len(value)) + b"".join(encode(v) for v in value)
    if isinstance(value, dict):
        return _head(5, len(value)) + b"".join(encode(k) + encode(v) for k, v in value.items())
    raise TypeError(f"no CBOR for {type(value).__name__}")


def _when(value):
    """A request's timestamp as naive UTC (moto's datapoints are)."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value
    return datetime.datetime.fromtimestamp(float(value), datetime.timezone.utc).replace(tzinfo=None)


# --- the front end ----------------------------------------------------------------------------
class CloudWatchRpc:
    """WSGI middleware in front of moto: serves CloudWatch's RPC v2 CBOR requests."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        m = PATH.match(environ.get("PATH_INFO", ""))
        if not m or environ.get("HTTP_SMITHY_PROTOCOL") != "rpc-v2-cbor":
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        from dasemu import iam_enforcement

        key_id, _ = iam_enforcement.credential(environ.get("HTTP_AUTHORIZATION"))
        region = _region(environ.get("HTTP_AUTHORIZATION")) or "us-east-1"
        operation = m.group(1)
        try:
            params = RpcV2CBORParser()._initial_body_parse(body) or {}
            refused = self.refused(key_id, region, f"cloudwatch:{operation}")
            if refused:
                return self.error(start_response, 403, "AccessDeniedException", refused)
            if operation == "GetMetricData":
                return self.answer(start_response, self.get_metric_data(params, region))
            return self.error(start_response, 404, "UnknownOperationException",
                              f"the emulator's CloudWatch does not serve {operation}")
        except _Invalid as e:
            return self.error(start_response, 400, "InvalidParameterValue", str(e))

    @staticmethod
    def refused(key_id, region, action):
        from dasemu import iam_enforcement

        if not iam_enforcement.enforced() or key_id is None or key_id in iam_enforcement.ROOT_ACCESS_KEYS:
            return None
        from moto.iam.access_control import create_access_key
        from moto.utilities.utils import get_partition

        access_key = create_access_key(account_id=DEFAULT_ACCOUNT, partition=get_partition(region),
                                       access_key_id=key_id, headers={})
        if iam_enforcement.allowed(access_key.collect_policies(), action, "*", {}):
            return None
        return f"User: {access_key.arn} is not authorized to perform: {action}"

    @staticmethod
    def get_metric_data(params, region):
        from moto.cloudwatch.models import cloudwatch_backends

        try:
            start, end = _when(params["StartTime"]), _when(params["EndTime"])
        except (KeyError, TypeError, ValueError) as e:
            raise _Invalid(f"StartTime and EndTime are required: {e}")
        queries = params.get("MetricDataQueries") or []
        backend = cloudwatch_backends[DEFAULT_ACCOUNT][region]
        try:
            results = backend.get_metric_data(queries=queries, start_time=start, end_time=end,
                                              scan_by=params.get("ScanBy") or "TimestampDescending")
        except Exception as e:  # moto's ValidationError and friends
            raise _Invalid(str(e))
        return {"MetricDataResults": [{
            "Id": r["id"], "Label": r["label"], "StatusCode": r.get("status_code", "Complete"),
            "Timestamps": [_when(t) for t in r["timestamps"]],
            "Values": [float(v) for v in r["values"]],
        } for r in results], "Messages": []}

    @staticmethod
    def answer(start_response, document):
        data = encode(document)
        start_response("200 OK", [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"),
                                  ("Content-Length", str(len(data))), ("x-amzn-RequestId", "dasemu-cloudwatch")])
        return [data]

    @staticmethod
    def error(start_response, status, code, message):
        data = encode({"__type": f"com.amazonaws.cloudwatch#{code}", "message": message})
        reasons = {400: "Bad Request", 403: "Forbidden", 404: "Not Found"}
        start_response(f"{status} {reasons[status]}", [
            ("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Length", str(len(data))), ("x-amzn-query-error", f"{code};Sender")])
        return [data]


class _Invalid(Exception):
    pass


def _region(authorization):
    found = re.search(r"Credential=[^/]+/[^/]+/([^/]+)/", authorization or "")
    return found.group(1) if found else None
