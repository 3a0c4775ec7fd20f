"""CloudWatch in the protocol the AWS SDK for Rust speaks, and metrics fed by what the emulator
really does.

The SDK calls CloudWatch with the Smithy RPC v2 CBOR protocol (`POST
/service/GraniteServiceVersion20100801/operation/<Operation>`, header `smithy-protocol:
rpc-v2-cbor`, a CBOR body; Smithy's "RPC v2 CBOR protocol" specification), which moto does not
serve. This front end decodes such a request with botocore's CBOR parser, answers it from moto's
CloudWatch backend (its statistics over the datapoints stored), and encodes the answer in CBOR
(timestamps as tag 1, epoch seconds), errors as the protocol's `__type` and `message`.
Operations served: `GetMetricData` (what `das-setup status` asks), `PutMetricAlarm`,
`DescribeAlarms`, `DeleteAlarms`, `ListTagsForResource`; any other answers the protocol's `UnknownOperationException`.
Under `--enforce-iam` the caller needs `cloudwatch:<Operation>` (Service Authorization
Reference: alarms are the resource of PutMetricAlarm, DeleteAlarms, ListTagsForResource and
DescribeAlarms; GetMetricData on `*`), and tags given to a new alarm need
`cloudwatch:TagResource` too.

Alarms (`Alarms`, a thread) are evaluated every second over the same datapoints, as the
CloudWatch User Guide's "Using Amazon CloudWatch alarms" describes: a new alarm starts in
INSUFFICIENT_DATA; of the last `EvaluationPeriods` periods, `DatapointsToAlarm` (default all)
breaching make ALARM, fewer OK; periods without data follow `TreatMissingData` (missing: left
out, and none at all is INSUFFICIENT_DATA; notBreaching; breaching; ignore: the state stays). A
change of state is recorded (StateValue, StateReason, StateUpdatedTimestamp) and, with
`ActionsEnabled`, published to each SNS topic of the new state's actions as CloudWatch's alarm
notification (JSON: AlarmName, NewStateValue, OldStateValue, NewStateReason, Trigger, ...;
subject `ALARM: "<name>" in <region>`). To a topic encrypted with a KMS key, CloudWatch can
publish only if the key's policy lets `cloudwatch.amazonaws.com` use it (`kms:Decrypt`,
`kms:GenerateDataKey*`; SNS Developer Guide, "Enable compatibility between event sources from
AWS services and encrypted topics"): otherwise the notification is not delivered, and the alarm
history says so. Unlike CloudWatch, windows end now (not at period boundaries, and with no
delay), and the Region in a notification is the region's code.

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
import json
import re
import struct
import sys
import threading
import time

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
            names = {"PutMetricAlarm": [params.get("AlarmName")],
                     "DeleteAlarms": params.get("AlarmNames") or []}.get(operation)
            resources = [f"arn:aws:cloudwatch:{region}:{DEFAULT_ACCOUNT}:alarm:{n}" for n in names or []] or ["*"]
            if operation == "ListTagsForResource":
                resources = [params.get("ResourceARN") or "*"]
            if operation == "DescribeAlarms":
                # The alarms named, or any alarm (Service Authorization Reference, Amazon
                # CloudWatch: DescribeAlarms on the `alarm` resource type).
                resources = [f"arn:aws:cloudwatch:{region}:{DEFAULT_ACCOUNT}:alarm:{n}"
                             for n in params.get("AlarmNames") or ["*"]]
            refused = self.refused(key_id, region, f"cloudwatch:{operation}", resources)
            if not refused and operation == "PutMetricAlarm" and params.get("Tags") and \
                    params.get("AlarmName") not in _backend(region).alarms:
                # "To use this field to set tags for an alarm when you create it, you must be
                # signed on with both the cloudwatch:PutMetricAlarm and cloudwatch:TagResource
                # permissions" (PutMetricAlarm API reference, Tags).
                refused = self.refused(key_id, region, "cloudwatch:TagResource", resources)
            if refused:
                return self.error(start_response, 403, "AccessDeniedException", refused)
            if operation == "GetMetricData":
                return self.answer(start_response, self.get_metric_data(params, region))
            if operation == "PutMetricAlarm":
                put_metric_alarm(params, region)
                return self.answer(start_response, {})
            if operation == "DescribeAlarms":
                return self.answer(start_response, describe_alarms(params, region))
            if operation == "DeleteAlarms":
                delete_alarms(params, region)
                return self.answer(start_response, {})
            if operation == "ListTagsForResource":
                return self.answer(start_response, list_tags(params, region))
            return self.error(start_response, 404, "UnknownOperationException",
                              f"the emulator's CloudWatch does not serve {operation}")
        except _Invalid as e:
            return self.error(start_response, 400, "InvalidParameterValue", str(e))
        except _NotFound as e:
            return self.error(start_response, 404, "ResourceNotFoundException", str(e))

    @staticmethod
    def refused(key_id, region, action, resources=("*",)):
        from dasemu import iam_enforcement

        if not iam_enforcement.enforced() or key_id is None or key_id in iam_enforcement.ROOT_ACCESS_KEYS:
            return None
        from moto.iam.access_control import create_access_key
        from moto.utilities.utils import get_partition

        access_key = create_access_key(account_id=DEFAULT_ACCOUNT, partition=get_partition(region),
                                       access_key_id=key_id, headers={})
        policies = access_key.collect_policies()
        if all(iam_enforcement.allowed(policies, action, r, {}) for r in resources):
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


class _NotFound(Exception):
    pass


# --- alarms -----------------------------------------------------------------------------------
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
COMPARE = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
MISSING = ("missing", "notBreaching", "breaching", "ignore")


def _backend(region, account=None):
    from moto.cloudwatch.models import cloudwatch_backends

    return cloudwatch_backends[account or DEFAULT_ACCOUNT][region]


def put_metric_alarm(p, region):
    """PutMetricAlarm: creates the alarm, or replaces its configuration keeping its state
    (PutMetricAlarm API reference: "its state is left unchanged")."""
    if p.get("ComparisonOperator") not in COMPARE:
        raise _Invalid(f"ComparisonOperator {p.get('ComparisonOperator')!r}: the emulator evaluates "
                       f"{', '.join(COMPARE)}")
    if p.get("TreatMissingData", "missing") not in MISSING:
        raise _Invalid(f"TreatMissingData must be one of {', '.join(MISSING)}")
    if not p.get("Statistic") or not p.get("MetricName") or not p.get("Namespace"):
        raise _Invalid("the emulator's alarms need MetricName, Namespace and Statistic")
    # PutMetricAlarm API reference, Period: "Valid values are 10, 20, 30, and any multiple of
    # 60"; Period times EvaluationPeriods at most 604,800 s, and 86,400 s for periods under an
    # hour. DatapointsToAlarm: at most EvaluationPeriods ("M out of N").
    period, evaluations = int(p.get("Period") or 0), int(p.get("EvaluationPeriods") or 0)
    if period not in (10, 20, 30) and (period <= 0 or period % 60):
        raise _Invalid(f"Period {period}: valid values are 10, 20, 30 and any multiple of 60")
    if evaluations < 1 or period * evaluations > (86400 if period < 3600 else 604800):
        raise _Invalid(f"Period {period} times EvaluationPeriods {evaluations} is over the total evaluation period allowed")
    if p.get("DatapointsToAlarm") is not None and not 1 <= int(p["DatapointsToAlarm"]) <= evaluations:
        raise _Invalid("DatapointsToAlarm must be between 1 and EvaluationPeriods")
    backend = _backend(region)
    old = backend.alarms.get(p["AlarmName"])
    alarm = backend.put_metric_alarm(
        name=p["AlarmName"], namespace=p["Namespace"], metric_name=p["MetricName"],
        comparison_operator=p["ComparisonOperator"], evaluation_periods=int(p["EvaluationPeriods"]),
        period=int(p.get("Period") or 60), threshold=float(p.get("Threshold", 0.0)), statistic=p["Statistic"],
        description=p.get("AlarmDescription"), dimensions=p.get("Dimensions") or [],
        alarm_actions=p.get("AlarmActions") or [], datapoints_to_alarm=p.get("DatapointsToAlarm"),
        ok_actions=p.get("OKActions") or [], insufficient_data_actions=p.get("InsufficientDataActions") or [],
        unit=p.get("Unit"), actions_enabled=p.get("ActionsEnabled", True),
        treat_missing_data=p.get("TreatMissingData"), tags=p.get("Tags"))
    if old is not None:
        alarm.state_value, alarm.state_reason = old.state_value, old.state_reason
        alarm.state_updated_timestamp, alarm.history = old.state_updated_timestamp, old.history
    else:
        # "When you create an alarm, its initial state is INSUFFICIENT_DATA" (CloudWatch User
        # Guide, "Alarm states"; moto starts it OK).
        alarm.state_value, alarm.state_reason = "INSUFFICIENT_DATA", "Unchecked: Initial alarm creation"


def describe_alarms(p, region):
    names = p.get("AlarmNames") or []
    prefix = p.get("AlarmNamePrefix")
    state = p.get("StateValue")
    out = []
    for a in sorted(_backend(region).alarms.values(), key=lambda a: a.name):
        if getattr(a, "metric_name", None) is None:
            continue  # composite alarms: not served
        if (names and a.name not in names) or (prefix and not a.name.startswith(prefix)) or (
                state and a.state_value != state):
            continue
        item = {
            "AlarmName": a.name, "AlarmArn": a.alarm_arn, "ActionsEnabled": bool(a.actions_enabled),
            "OKActions": list(a.ok_actions), "AlarmActions": list(a.alarm_actions or []),
            "InsufficientDataActions": list(a.insufficient_data_actions),
            "StateValue": a.state_value, "StateReason": a.state_reason,
            "StateUpdatedTimestamp": a.state_updated_timestamp,
            "AlarmConfigurationUpdatedTimestamp": a.configuration_updated_timestamp,
            "MetricName": a.metric_name, "Namespace": a.namespace, "Statistic": a.statistic,
            "Dimensions": [{"Name": d.name, "Value": d.value} for d in a.dimensions],
            "Period": int(a.period), "EvaluationPeriods": int(a.evaluation_periods),
            "Threshold": float(a.threshold), "ComparisonOperator": a.comparison_operator,
        }
        for key, value in (("AlarmDescription", a.description), ("DatapointsToAlarm", a.datapoints_to_alarm),
                           ("TreatMissingData", a.treat_missing_data), ("Unit", a.unit)):
            if value is not None:
                item[key] = int(value) if key == "DatapointsToAlarm" else value
        out.append(item)
    return {"MetricAlarms": out, "CompositeAlarms": []}


def list_tags(p, region):
    """ListTagsForResource for an alarm (moto keeps the tags PutMetricAlarm was given)."""
    arn = p.get("ResourceARN") or ""
    backend = _backend(region)
    if not any(a.alarm_arn == arn for a in backend.alarms.values()):
        raise _NotFound(f"{arn} not found")
    tags = backend.list_tags_for_resource(arn)
    return {"Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}


def delete_alarms(p, region):
    """DeleteAlarms: "If you specify any incorrect alarm names, the alarms you specify with
    correct names are still deleted" (DeleteAlarms API reference): unknown names are no error."""
    backend = _backend(region)
    backend.delete_alarms([n for n in p.get("AlarmNames") or [] if n in backend.alarms])


def evaluate(alarm, now=None):
    """The state the alarm's last EvaluationPeriods periods give, and why."""
    now = now or datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    period = datetime.timedelta(seconds=int(alarm.period))
    n = int(alarm.evaluation_periods)
    m = int(alarm.datapoints_to_alarm or n)
    backend = _backend(alarm.region_name, alarm.alarm_arn.split(":")[4])
    query = {"Id": "a", "MetricStat": {"Metric": {
        "Namespace": alarm.namespace, "MetricName": alarm.metric_name,
        "Dimensions": [{"Name": d.name, "Value": d.value} for d in alarm.dimensions]},
        "Period": int(alarm.period), "Stat": alarm.statistic}}
    start = now - period * n
    [result] = backend.get_metric_data(queries=[query], start_time=start, end_time=now,
                                       scan_by="TimestampAscending")
    by_start = {t.replace(microsecond=0): float(v) for t, v in zip(result["timestamps"], result["values"])}
    values = [by_start.get((start + period * i).replace(microsecond=0)) for i in range(n)]
    treat = alarm.treat_missing_data or "missing"
    compare = COMPARE[alarm.comparison_operator]
    judged = []
    for v in values:
        if v is None:
            if treat in ("breaching", "notBreaching"):
                judged.append(treat == "breaching")
        else:
            judged.append(compare(v, float(alarm.threshold)))
    shown = [round(v, 3) for v in values if v is not None]
    if not judged:
        if treat == "ignore":
            return alarm.state_value, alarm.state_reason
        return "INSUFFICIENT_DATA", f"Insufficient Data: no datapoints in the last {n} period(s) of {alarm.period}s"
    breaching = sum(judged)
    if breaching >= m:
        return "ALARM", (f"Threshold Crossed: {breaching} out of the last {n} datapoints {shown} "
                         f"were {alarm.comparison_operator} the threshold ({float(alarm.threshold)})")
    return "OK", (f"Threshold Crossed: {breaching} out of the last {n} datapoints {shown} "
                  f"were {alarm.comparison_operator} the threshold ({float(alarm.threshold)})")


def _key_lets_cloudwatch_use(account, region, key_id):
    """The key's policy allows cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey*."""
    import fnmatch

    from moto.kms.models import kms_backends

    try:
        policy = json.loads(kms_backends[account][region].describe_key(key_id).policy or "{}")
    except Exception:
        return False
    needed = {"kms:Decrypt": False, "kms:GenerateDataKey": False}
    for st in policy.get("Statement", []):
        principal = st.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
        if st.get("Effect") != "Allow" or "cloudwatch.amazonaws.com" not in services:
            continue
        actions = st.get("Action", [])
        for action in [actions] if isinstance(actions, str) else actions:
            for want in needed:
                if fnmatch.fnmatchcase(want.lower(), action.lower()):
                    needed[want] = True
    return all(needed.values())


def notify(alarm, old_state):
    """Publishes the state change to the SNS topics of the new state's actions."""
    from moto.sns.models import sns_backends

    if not alarm.actions_enabled:
        return
    actions = {"ALARM": alarm.alarm_actions or [], "OK": alarm.ok_actions,
               "INSUFFICIENT_DATA": alarm.insufficient_data_actions}[alarm.state_value]
    account = alarm.alarm_arn.split(":")[4]
    message = json.dumps({
        "AlarmName": alarm.name, "AlarmDescription": alarm.description, "AWSAccountId": account,
        "NewStateValue": alarm.state_value, "NewStateReason": alarm.state_reason,
        "StateChangeTime": alarm.state_updated_timestamp.isoformat() + "Z", "Region": alarm.region_name,
        "AlarmArn": alarm.alarm_arn, "OldStateValue": old_state,
        "OKActions": list(alarm.ok_actions), "AlarmActions": list(alarm.alarm_actions or []),
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
        "Trigger": {"MetricName": alarm.metric_name, "Namespace": alarm.namespace,
                    "StatisticType": "Statistic", "Statistic": alarm.statistic.upper(),
                    "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
                    "Period": int(alarm.period), "EvaluationPeriods": int(alarm.evaluation_periods),
                    "DatapointsToAlarm": int(alarm.datapoints_to_alarm or alarm.evaluation_periods),
                    "ComparisonOperator": alarm.comparison_operator, "Threshold": float(alarm.threshold),
                    "TreatMissingData": alarm.treat_missing_data or "missing"},
    })
    subject = f'{alarm.state_value}: "{alarm.name}" in {alarm.region_name}'[:99]
    for arn in actions:
        parts = arn.split(":")
        if len(parts) < 6 or parts[2] != "sns":
            continue
        backend = sns_backends[parts[4]][parts[3]]
        try:
            topic = backend.get_topic(arn)
        except Exception:
            alarm.history.append(("Action", f"Failed to execute action {arn}: topic not found", "{}",
                                  alarm.state_value, alarm.state_updated_timestamp))
            continue
        if topic.kms_master_key_id and not _key_lets_cloudwatch_use(parts[4], parts[3], topic.kms_master_key_id):
            alarm.history.append(("Action", f"Failed to execute action {arn}: the topic's KMS key does not "
                                  "let cloudwatch.amazonaws.com use it", "{}", alarm.state_value,
                                  alarm.state_updated_timestamp))
            continue
        backend.publish(message=message, arn=arn, subject=subject)
        alarm.history.append(("Action", f"Successfully executed action {arn}", "{}", alarm.state_value,
                              alarm.state_updated_timestamp))


class Alarms:
    """Evaluates every alarm of every account and region once a second."""

    def __init__(self, interval=1.0):
        self.interval = interval

    def start(self):
        threading.Thread(target=self.run, name="dasemu-alarms", daemon=True).start()

    def run(self):
        # time.sleep, not Event.wait: under libfaketime (scripts/test-later-date) a timed wait
        # on a lock never returns, while sleep follows the shifted clock.
        while True:
            time.sleep(self.interval)
            self.tick()

    @staticmethod
    def tick():
        from moto.cloudwatch.models import cloudwatch_backends

        for _, regions in list(cloudwatch_backends.items()):
            for _, backend in list(regions.items()):
                for alarm in list(backend.alarms.values()):
                    if getattr(alarm, "metric_name", None) is None or alarm.comparison_operator not in COMPARE:
                        continue
                    try:
                        state, reason = evaluate(alarm)
                    except Exception as e:  # one bad alarm must not stop the others
                        print(f"dasemu: evaluating alarm {alarm.name} failed: {e}", file=sys.stderr)
                        continue
                    if state != alarm.state_value:
                        old = alarm.state_value
                        alarm.update_state(reason, "{}", state)
                        try:
                            notify(alarm, old)
                        except Exception as e:
                            print(f"dasemu: notifying for alarm {alarm.name} failed: {e}", file=sys.stderr)


def _region(authorization):
    found = re.search(r"Credential=[^/]+/[^/]+/([^/]+)/", authorization or "")
    return found.group(1) if found else None
