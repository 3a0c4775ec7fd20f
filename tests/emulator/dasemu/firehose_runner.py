"""The Firehose runner: what moto's Firehose does not do. For every delivery stream with a
Kinesis source it reads the stream from LATEST (as of when the runner first sees the delivery
stream, i.e. its creation), buffers records by the processor's buffering hints (the interval
capped low, so tests see results in seconds), invokes the configured Lambda processor through
lambda_host.py, and applies the results as Firehose does:

- `Ok` records' data to the S3 destination under `Prefix` (with `!{timestamp:...}` and
  `!{firehose:...}` expressions evaluated; without expressions Firehose appends
  `yyyy/MM/dd/HH/`), gzip'd when `CompressionFormat` is GZIP;
- `ProcessingFailed` records to `ErrorOutputPrefix` (`!{firehose:error-output-type}` =
  `processing-failed`) as the documented failure JSON lines;
- a failed invocation (error, timeout, a response that does not answer every record id) is
  retried `NumberOfRetries` times (default 3), then its records go to the error prefix;
- with `S3BackupMode` `Enabled` (source record backup), every record read, as read, to the
  backup destination under its `Prefix`, before the processor sees it ("Firehose Developer
  Guide, Data transformation": the untransformed source records), per delivered batch (not
  with the backup's own buffering hints).

A delivery stream reads the stream it started on: once RDS deletes it (the activity stream
stopped), it reads nothing, even after a new stream of the same name appears; a delivery stream
deleted and created again is a new one and reads from LATEST.

Before invoking it checks, as AWS would, that the function's role exists and trusts
lambda.amazonaws.com and that the delivery stream's roles trust firehose.amazonaws.com; when
they do not, nothing is delivered and the report says why.

It acts as Firehose does, with sessions of the delivery stream's roles: the source role reads
Kinesis, the destination role writes S3 and (unless the processor names its own `RoleArn`)
invokes the function, so with `--enforce-iam` each can do only what its policy allows (an
invocation its policy does not allow fails as `Lambda.InvokeAccessDenied`). Describing the
delivery stream and reading roles are the service's own calls.
"""

import atexit
import base64
import datetime
import gzip
import json
import random
import string
import sys
import threading
import time
import urllib.parse
import uuid

from dasemu import cloudwatch_rpc, iam_enforcement
from dasemu.clients import Clients
from dasemu.lambda_host import FunctionHost

DEFAULT_INTERVAL_CAP = 2.0


def firehose_time_format(fmt, t):
    """Firehose's (Java DateTimeFormatter) patterns used in prefixes, for the common letters."""
    out, i = [], 0
    table = [("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S")]
    while i < len(fmt):
        for pattern, code in table:
            if fmt.startswith(pattern, i):
                out.append(t.strftime(code))
                i += len(pattern)
                break
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


def evaluate_prefix(prefix, t, error_type=None):
    if "!{" not in prefix:
        return prefix + t.strftime("%Y/%m/%d/%H/")
    out = prefix
    while "!{" in out:
        start = out.index("!{")
        end = out.index("}", start)
        expr = out[start + 2:end]
        if expr.startswith("timestamp:"):
            value = firehose_time_format(expr[len("timestamp:"):], t)
        elif expr == "firehose:random-string":
            value = "".join(random.choices(string.ascii_lowercase + string.digits, k=11))
        elif expr == "firehose:error-output-type":
            value = error_type or "processing-failed"
        else:
            raise ValueError(f"unsupported prefix expression !{{{expr}}}")
        out = out[:start] + value + out[end + 1:]
    return out


def trusts(role_document, service):
    doc = role_document
    if isinstance(doc, str):
        doc = json.loads(urllib.parse.unquote(doc))
    for statement in doc.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        principals = statement.get("Principal", {})
        services = principals.get("Service", []) if isinstance(principals, dict) else []
        services = [services] if isinstance(services, str) else services
        if service in services:
            return True
    return False


def assume(role_arn, session_name, region):
    """A session of a role, assumed by the service itself inside the emulator, as AWS's
    services assume the roles they are given: (access key id, secret, session token)."""
    from moto.sts.models import sts_backends
    from moto.utilities.utils import get_partition

    account = role_arn.split(":")[4]
    session = sts_backends[account][get_partition(region)].assume_role(
        region_name=region, role_session_name=session_name[:64], role_arn=role_arn,
        policy=None, duration=12 * 3600, external_id=None)
    return session.access_key_id, session.secret_access_key, session.session_token


class DeliveryState:
    def __init__(self, name, region, description):
        self.name = name
        self.region = region
        self.arn = description["DeliveryStreamARN"]
        self.description = description
        self.iterators = {}
        self.buffer = []
        self.buffer_bytes = 0
        self.first_at = None
        self.stats = {"invocations": 0, "records_in": 0, "ok": 0, "dropped": 0, "failed": 0,
                      "retries": 0, "objects": 0, "error_objects": 0, "backup_objects": 0}
        self.errors = []
        self.role_clients = {}

    def as_role(self, role_arn, service, endpoint):
        """A client signed with a session of one of this delivery stream's roles."""
        if role_arn not in self.role_clients:
            self.role_clients[role_arn] = Clients(endpoint, assume(role_arn, f"firehose-{self.name}", self.region))
        return self.role_clients[role_arn](service, self.region)

    def error(self, message):
        self.errors = (self.errors + [{"time": time.time(), "error": message}])[-20:]


class FirehoseRunner:
    def __init__(self, endpoint, log_dir, interval_cap=DEFAULT_INTERVAL_CAP, tick=0.5):
        self.endpoint = endpoint
        self.log_dir = log_dir
        self.interval_cap = interval_cap
        self.tick = tick
        self.deliveries = {}
        self.hosts = {}
        self.lock = threading.RLock()
        self.client = Clients(endpoint)

    def report(self):
        with self.lock:
            return {name: {"arn": d.arn, "stats": d.stats, "errors": d.errors,
                           "buffered": len(d.buffer)} for (_, name, _), d in self.deliveries.items()}

    # --- discovery -----------------------------------------------------------------------
    def discover(self):
        from moto.firehose.models import firehose_backends

        seen = set()
        for account, regions in list(firehose_backends.items()):
            for region, backend in list(regions.items()):
                for name, stream in list(backend.delivery_streams.items()):
                    # A delivery stream deleted and created again under the same name is
                    # another one: it reads its source from LATEST anew.
                    key = (stream.delivery_stream_arn, name, str(getattr(stream, "create_timestamp", "")))
                    seen.add(key)
                    known = self.deliveries.get(key)
                    if known is not None:
                        # UpdateDestination bumps the version: its settings apply from now on.
                        if str(stream.version_id) != str(known.description.get("VersionId")):
                            known.description = self.client("firehose", region).describe_delivery_stream(
                                DeliveryStreamName=name)["DeliveryStreamDescription"]
                        continue
                    description = self.client("firehose", region).describe_delivery_stream(
                        DeliveryStreamName=name)["DeliveryStreamDescription"]
                    if description.get("DeliveryStreamType") != "KinesisStreamAsSource":
                        continue
                    state = DeliveryState(name, region, description)
                    self.start_reading(state)
                    with self.lock:
                        self.deliveries[key] = state
        with self.lock:
            for key in list(self.deliveries):
                if key not in seen:
                    del self.deliveries[key]

    def start_reading(self, state):
        """Shard iterators at LATEST: what was written before now is never delivered."""
        source = state.description["Source"]["KinesisStreamSourceDescription"]
        try:
            kinesis = state.as_role(source["RoleARN"], "kinesis", self.endpoint)
            shards = kinesis.list_shards(StreamARN=source["KinesisStreamARN"])["Shards"]
            for shard in shards:
                state.iterators[shard["ShardId"]] = kinesis.get_shard_iterator(
                    StreamARN=source["KinesisStreamARN"], ShardId=shard["ShardId"],
                    ShardIteratorType="LATEST")["ShardIterator"]
        except Exception as e:
            state.error(f"cannot read the source stream {source['KinesisStreamARN']}: {e}")

    # --- reading and buffering -----------------------------------------------------------
    def processor(self, state):
        destination = state.description["Destinations"][0]["ExtendedS3DestinationDescription"]
        config = destination.get("ProcessingConfiguration") or {}
        if not config.get("Enabled"):
            return destination, None
        for proc in config.get("Processors", []):
            if proc.get("Type") == "Lambda":
                params = {p["ParameterName"]: p["ParameterValue"] for p in proc.get("Parameters", [])}
                return destination, params
        return destination, None

    def poll(self, state):
        source = state.description["Source"]["KinesisStreamSourceDescription"]
        kinesis = state.as_role(source["RoleARN"], "kinesis", self.endpoint)
        for shard, iterator in list(state.iterators.items()):
            if iterator is None:
                continue
            try:
                # moto needs the stream ARN beside the iterator (AWS accepts it too).
                out = kinesis.get_records(ShardIterator=iterator, Limit=1000,
                                          StreamARN=source["KinesisStreamARN"])
            except Exception as e:
                state.error(f"GetRecords on {source['KinesisStreamARN']} failed: {e}")
                state.iterators[shard] = None
                continue
            state.iterators[shard] = out.get("NextShardIterator")
            if out.get("Records"):
                cloudwatch_rpc.firehose(state.arn, "KinesisMillisBehindLatest", out.get("MillisBehindLatest", 0),
                                        "Milliseconds")
            if state.iterators[shard] is None:
                # A closed shard read to its end: Firehose goes on in its children, from their
                # first record (GetRecords API reference, ChildShards).
                for child in out.get("ChildShards", []):
                    if child["ShardId"] not in state.iterators:
                        state.iterators[child["ShardId"]] = kinesis.get_shard_iterator(
                            StreamARN=source["KinesisStreamARN"], ShardId=child["ShardId"],
                            ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            for r in out["Records"]:
                arrival = int(r["ApproximateArrivalTimestamp"].timestamp() * 1000)
                state.buffer.append({
                    "recordId": f"{r['SequenceNumber']}0000{len(state.buffer):06d}",
                    "approximateArrivalTimestamp": arrival,
                    "data": base64.b64encode(r["Data"]).decode(),
                    "kinesisRecordMetadata": {
                        "shardId": shard, "partitionKey": r["PartitionKey"],
                        "approximateArrivalTimestamp": arrival,
                        "sequenceNumber": r["SequenceNumber"], "subsequenceNumber": "",
                    },
                })
                state.buffer_bytes += len(r["Data"])
                if state.first_at is None:
                    state.first_at = time.monotonic()

    def due(self, state, params):
        if not state.buffer:
            return False
        size = float((params or {}).get("BufferSizeInMBs", 1)) * 1024 * 1024
        interval = min(float((params or {}).get("BufferIntervalInSeconds", 60)), self.interval_cap)
        return state.buffer_bytes >= size or time.monotonic() - state.first_at >= interval

    # --- delivering ----------------------------------------------------------------------
    def roles_ok(self, state, function_role):
        iam = self.client("iam", state.region)
        destination = state.description["Destinations"][0]["ExtendedS3DestinationDescription"]
        source = state.description["Source"]["KinesisStreamSourceDescription"]
        checks = [(function_role, "lambda.amazonaws.com")] if function_role else []
        checks += [(destination["RoleARN"], "firehose.amazonaws.com"),
                   (source["RoleARN"], "firehose.amazonaws.com")]
        for arn, service in checks:
            name = arn.rsplit("/", 1)[-1]
            try:
                role = iam.get_role(RoleName=name)["Role"]
            except Exception:
                state.error(f"role {arn} does not exist: {service} cannot assume it")
                return False
            if not trusts(role["AssumeRolePolicyDocument"], service):
                state.error(f"role {arn} does not trust {service}")
                return False
        return True

    def host(self, state, function_arn):
        from moto.awslambda.models import lambda_backends

        account = function_arn.split(":")[4]
        region = function_arn.split(":")[3]
        fn = lambda_backends[account][region].get_function(function_arn)
        # A new execution environment per code *and configuration*: Lambda starts new ones after
        # UpdateFunctionConfiguration (environment, role, timeout), so the next invocation sees it.
        key = (function_arn, fn.code_sha_256, json.dumps(fn.environment_vars or {}, sort_keys=True),
               fn.timeout, fn.role, tuple(fn.architectures or ()))
        with self.lock:
            if key not in self.hosts:
                for old in [k for k in self.hosts if k[0] == function_arn]:
                    self.hosts.pop(old).close()
                env = (fn.environment_vars or {})
                arch = (fn.architectures or ["x86_64"])[0]
                self.hosts[key] = FunctionHost(fn.function_name, fn.function_arn, fn.code_bytes, env,
                                               fn.timeout, arch, self.endpoint, region, self.log_dir,
                                               # What Lambda gives a function: a session of its
                                               # execution role, named after the function.
                                               assume(fn.role, fn.function_name, region))
            return self.hosts[key], fn.role

    def deliver(self, state, destination, params):
        records, size = state.buffer, state.buffer_bytes
        state.buffer, state.buffer_bytes, state.first_at = [], 0, None
        backup = destination.get("S3BackupDescription")
        if destination.get("S3BackupMode") == "Enabled" and backup and records:
            t = datetime.datetime.now(datetime.timezone.utc)
            key = evaluate_prefix(backup.get("Prefix", ""), t) + self.object_name(state, t)
            self.s3_put(state, backup, key, b"".join(base64.b64decode(r["data"]) for r in records))
            state.stats["backup_objects"] += 1
        if params is None:
            self.write_ok(state, destination, [base64.b64decode(r["data"]) for r in records])
            return
        function_arn = params["LambdaArn"]
        try:
            host, role = self.host(state, function_arn)
        except Exception as e:
            state.error(f"function {function_arn}: {e}")
            self.write_failed(state, destination, records, "Lambda.FunctionNotFound", str(e), function_arn, 1)
            return
        if not self.roles_ok(state, role):
            # AWS could not assume the roles: nothing is delivered; keep the records for later.
            state.buffer, state.buffer_bytes, state.first_at = records, size, time.monotonic()
            return
        invoker = params.get("RoleArn") or destination["RoleARN"]
        if iam_enforcement.enforced() and not iam_enforcement.role_allows(
                invoker, "lambda:InvokeFunction", function_arn):
            message = f"{invoker} is not authorized to perform lambda:InvokeFunction on {function_arn}"
            state.error(message)
            self.write_failed(state, destination, records, "Lambda.InvokeAccessDenied", message, function_arn, 1)
            return
        event = json.dumps({
            "invocationId": str(uuid.uuid4()), "deliveryStreamArn": state.arn,
            "sourceKinesisStreamArn": state.description["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"],
            "region": state.region, "records": records,
        }).encode()
        retries = int(params.get("NumberOfRetries", 3))
        # An Inactive function is activated by its next invocation (Lambda Developer Guide,
        # "Lambda function states").
        try:
            from dasemu import eventual

            account, region, name = function_arn.split(":")[4], function_arn.split(":")[3], function_arn.split(":")[6]
            eventual.set_function_state(account, region, name, "Active")
        except Exception:
            pass
        for attempt in range(1, retries + 2):
            state.stats["invocations"] += 1
            kind, body = host.invoke(event)
            problem = self.check_response(kind, body, records)
            cloudwatch_rpc.firehose(state.arn, "ExecuteProcessing.Success", 1 if problem is None else 0)
            if problem is None:
                break
            state.error(f"invocation {attempt} of {function_arn} failed: {problem}")
            if attempt <= retries:
                state.stats["retries"] += 1
        else:
            self.write_failed(state, destination, records, "Lambda.FunctionError", problem, function_arn, retries + 1)
            return
        state.stats["records_in"] += len(records)
        answers = {r["recordId"]: r for r in json.loads(body)["records"]}
        ok, failed = [], []
        for record in records:
            answer = answers[record["recordId"]]
            if answer["result"] == "Ok":
                ok.append(base64.b64decode(answer.get("data") or ""))
                state.stats["ok"] += 1
            elif answer["result"] == "Dropped":
                state.stats["dropped"] += 1
            else:
                failed.append(record)
                state.stats["failed"] += 1
        if ok:
            self.write_ok(state, destination, ok)
        if failed:
            self.write_failed(state, destination, failed, "Lambda.ProcessingFailed",
                              "The Lambda function was successfully invoked but it returned an error result.",
                              function_arn, 1)

    @staticmethod
    def check_response(kind, body, records):
        if kind != "response":
            return body.decode(errors="replace")[:500]
        try:
            answers = json.loads(body)["records"]
        except Exception:
            return "Lambda.InvalidOutput: the response is not a JSON object with records"
        ids = [a.get("recordId") for a in answers]
        expected = [r["recordId"] for r in records]
        if sorted(ids) != sorted(expected):
            return "Lambda.MissingRecordId: the response does not answer every record id exactly once"
        bad = [a.get("result") for a in answers if a.get("result") not in ("Ok", "Dropped", "ProcessingFailed")]
        if bad:
            return f"Lambda.InvalidRecordResult: {bad[0]!r}"
        return None

    def s3_put(self, state, destination, key, body):
        bucket = destination["BucketARN"].split(":::", 1)[-1]
        if destination.get("CompressionFormat") == "GZIP":
            body, key = gzip.compress(body), key + ".gz"
        try:
            state.as_role(destination["RoleARN"], "s3", self.endpoint).put_object(Bucket=bucket, Key=key, Body=body)
        except Exception:
            cloudwatch_rpc.firehose(state.arn, "DeliveryToS3.Success", 0)
            raise
        cloudwatch_rpc.firehose(state.arn, "DeliveryToS3.Success", 1)

    def object_name(self, state, t):
        return f"{state.name}-1-{t.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid.uuid4()}"

    def write_ok(self, state, destination, payloads):
        t = datetime.datetime.now(datetime.timezone.utc)
        key = evaluate_prefix(destination.get("Prefix", ""), t) + self.object_name(state, t)
        self.s3_put(state, destination, key, b"".join(payloads))
        state.stats["objects"] += 1

    def write_failed(self, state, destination, records, code, message, lambda_arn, attempts):
        t = datetime.datetime.now(datetime.timezone.utc)
        prefix = destination.get("ErrorOutputPrefix") or ""
        key = evaluate_prefix(prefix, t, "processing-failed") + self.object_name(state, t)
        now_ms = int(t.timestamp() * 1000)
        lines = [json.dumps({
            "attemptsMade": attempts, "arrivalTimestamp": r["approximateArrivalTimestamp"],
            "errorCode": code, "errorMessage": message, "attemptEndingTimestamp": now_ms,
            "rawData": r["data"], "lambdaArn": lambda_arn,
        }) + "\n" for r in records]
        self.s3_put(state, destination, key, "".join(lines).encode())
        state.stats["error_objects"] += 1

    # --- the loop ------------------------------------------------------------------------
    def step(self):
        self.discover()
        with self.lock:
            states = list(self.deliveries.values())
        for state in states:
            try:
                self.poll(state)
                destination, params = self.processor(state)
                if self.due(state, params):
                    self.deliver(state, destination, params)
            except Exception as e:
                state.error(f"{type(e).__name__}: {e}")

    def run_forever(self):
        while True:
            try:
                self.step()
            except Exception as e:
                print(f"dasemu firehose runner: {e!r}", file=sys.stderr, flush=True)
            time.sleep(self.tick)

    def close(self):
        """Stops every function process (at exit: none may outlive the emulator)."""
        with self.lock:
            for host in self.hosts.values():
                host.close()
            self.hosts.clear()

    def start(self):
        atexit.register(self.close)
        threading.Thread(target=self.run_forever, name="dasemu-firehose", daemon=True).start()
