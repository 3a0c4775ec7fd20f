"""The emulator's own HTTP API, beside AWS's, under /_dasemu/ (tests and the demo use it):

  GET  /_dasemu/health                      {"ok": true}
  POST /_dasemu/inject    {"stream": NAME or resource id, "events": [...], "damage": null,
                           "kms_key": null}
                          writes one DAS record now (409 unless the stream is started); with
                          kms_key, its data key comes from that key instead of the stream's
  GET  /_dasemu/truth[?stream=NAME]         every record written: events, kind, damage, sequence
  POST /_dasemu/producer  {"trickle_per_second": 0, "heartbeat_seconds": 5}
  GET  /_dasemu/firehose                    what the Firehose runner did (invocations, errors)
  GET  /_dasemu/calls[?app=NAME]            every AWS API call served, in order: service hint,
                          operation, whether it changes anything, the caller's app name
                          (the SDK's `app/NAME` user-agent part: das-setup sends `das-setup`),
                          who signed it (`principal`: "root", an assumed-role or user ARN), for
                          which service (the signature's scope), method, path, query, the body
                          of JSON requests (long strings as their length) and form requests,
                          and the HTTP status; `sdk` ("rust" for das-setup and das-processor,
                          which use the AWS SDK for Rust) and `contract`: how the request breaks
                          the service model of its operation (dasemu/contract.py), [] if it does not
  POST /_dasemu/reshard  {"stream": NAME or resource id}  splits every open shard (resharding.py)
  POST /_dasemu/lambda   {"function": NAME, "state": "Inactive"}  a function's State (eventual.py)
  POST /_dasemu/faults   {"faults": [{"operation": "kms:DescribeKey", "kind": "throttle", "times": 2}]}
                          the next calls of an operation answer throttling or a server error
                          (dasemu/faults.py); GET: what is armed and what was served
  GET  /_dasemu/contract[?sdk=rust]         every call whose request breaks its operation's model,
                          with how many calls were checked and which matched no modelled operation
"""

import io
import json
import re
import threading
from urllib.parse import parse_qs

from dasemu import contract, faults
from dasemu.iam_enforcement import credential, principal_of

PREFIX = "/_dasemu/"
LONG_VALUE = 1024  # a JSON string longer than this is logged as its length (a zip, a policy)


def logged_body(body, content_type):
    """What the call log keeps of a request body: a form as sent; JSON (and CBOR, as JSON) with
    long strings replaced by their length; nothing else."""
    if body is None:
        return None
    if "cbor" in content_type:
        # Smithy RPC v2 CBOR (CloudWatch): decoded with botocore's parser, logged as JSON.
        from botocore.parsers import RpcV2CBORParser

        try:
            body = json.dumps(RpcV2CBORParser()._initial_body_parse(body) or {}, default=str).encode()
        except Exception:
            return None
        content_type = "application/json"
    if "json" not in content_type:
        return body.decode("utf-8", "replace")

    def short(value):
        if isinstance(value, str) and len(value) > LONG_VALUE:
            return f"<{len(value)} characters>"
        if isinstance(value, dict):
            return {k: short(v) for k, v in value.items()}
        if isinstance(value, list):
            return [short(v) for v in value]
        return value

    try:
        return json.dumps(short(json.loads(body)))
    except ValueError:
        return None


class Admin:
    def __init__(self, app, producer, runner=None):
        self.app = app
        self.producer = producer
        self.runner = runner
        self.calls = []
        self.calls_lock = threading.Lock()
        self.faults = faults.Faults()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            call = self.record(environ, path)

            def answered(status, headers, exc_info=None):
                call["status"] = int(status.split(" ", 1)[0])
                return start_response(status, headers, exc_info)

            if call["operation"]:
                environ["HTTP_X_DASEMU_OPERATION"] = call["operation"]
            conditional = bool(environ.get("HTTP_IF_NONE_MATCH") or environ.get("HTTP_IF_MATCH"))
            fault = self.faults.take(call["operation"], conditional)
            if fault is not None:
                call["fault"] = fault
                return faults.answer(call["operation"], fault, answered)
            return self.app(environ, answered)
        try:
            status, body = self.route(environ, path[len(PREFIX):])
        except (ValueError, KeyError, TypeError) as e:
            status, body = 400, {"error": str(e)}
        data = json.dumps(body).encode()
        start_response(f"{status} {'OK' if status < 400 else 'Error'}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def route(self, environ, name):
        method = environ.get("REQUEST_METHOD", "GET")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if name == "health":
            return 200, {"ok": True}
        if name == "truth" and method == "GET":
            stream = query.get("stream", [None])[0]
            with self.producer.lock:
                records = [r for r in self.producer.truth if stream in (None, r["stream"])]
            return 200, {"records": records}
        if name == "inject" and method == "POST":
            body = self.body(environ)
            stream = self.producer.find(body["stream"])
            if stream is None or not self.producer.started(stream):
                return 409, {"error": f"no started activity stream {body['stream']!r}"}
            seq = self.producer.write(stream, body.get("events", []), body.get("damage"),
                                      kms_key=body.get("kms_key"))
            return 200, {"sequenceNumber": seq, "stream": stream.name}
        if name == "producer" and method == "POST":
            body = self.body(environ)
            return 200, self.producer.configure(body.get("trickle_per_second"), body.get("heartbeat_seconds"))
        if name == "calls" and method == "GET":
            app = query.get("app", [None])[0]
            with self.calls_lock:
                calls = [c for c in self.calls if app in (None, c["app"])]
            return 200, {"calls": calls}
        if name == "reshard" and method == "POST":
            from dasemu import resharding

            body = self.body(environ)
            stream = self.producer.find(body["stream"])
            if stream is None:
                return 404, {"error": f"no activity stream {body['stream']!r}"}
            from moto.core import DEFAULT_ACCOUNT_ID

            account = getattr(stream.resource, "account_id", None) or DEFAULT_ACCOUNT_ID
            return 200, {"stream": stream.name, "open": resharding.reshard(account, stream.region, stream.name)}
        if name == "lambda" and method == "POST":
            from dasemu import eventual

            body = self.body(environ)
            return 200, eventual.set_function_state(body.get("account", "123456789012"), body.get("region", "eu-west-1"),
                                                    body["function"], body["state"])
        if name == "faults" and method == "POST":
            return 200, self.faults.arm(self.body(environ).get("faults", []))
        if name == "faults" and method == "GET":
            return 200, self.faults.report()
        if name == "contract" and method == "GET":
            sdk = query.get("sdk", [None])[0]
            with self.calls_lock:
                calls = [c for c in self.calls if sdk in (None, c["sdk"])]
            return 200, {
                "checked": sum(1 for c in calls if c["operation"]),
                "unmodelled": sorted({c["op"] for c in calls if not c["operation"]}),
                "violations": [{"operation": c["operation"], "app": c["app"], "principal": c["principal"],
                                "violations": c["contract"]} for c in calls if c["contract"]],
            }
        if name == "firehose" and method == "GET" and self.runner is not None:
            return 200, self.runner.report()
        return 404, {"error": f"no such emulator endpoint: {method} {PREFIX}{name}"}

    def record(self, environ, path):
        """Notes one AWS API call: its operation and whether it can change anything, who signed it
        for which service, and (JSON and form bodies) what it asked."""
        method = environ.get("REQUEST_METHOD", "GET")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        op = target.rsplit(".", 1)[-1] if target else None
        content_type = environ.get("CONTENT_TYPE", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = None
        if length > 0 and (content_type.startswith("application/x-www-form-urlencoded") or "json" in content_type
                           or "cbor" in content_type):
            # Read it and hand moto an identical stream.
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
        if op is None and environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor":
            # Smithy RPC v2 CBOR (CloudWatch): the operation ends the path.
            found = re.search(r"/operation/(\w+)$", path)
            op = found.group(1) if found else None
        if op is None:
            action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
            if not action and body is not None and content_type.startswith("application/x-www-form-urlencoded"):
                # Query-protocol APIs (IAM, RDS, STS) put the action in the form body.
                action = parse_qs(body.decode("utf-8", "replace")).get("Action")
            op = action[0] if action else None
        if op is not None:
            mutating = not re.match(r"(Describe|Get|List|Head|BatchGet)", op)
        else:
            # REST APIs (S3, Lambda): reads are GET and HEAD.
            op = f"{method} {path}"
            mutating = method not in ("GET", "HEAD")
        agent = environ.get("HTTP_USER_AGENT", "") + " " + environ.get("HTTP_X_AMZ_USER_AGENT", "")
        app = re.search(r"(?:^|\s)app/([^\s]+)", agent)
        key_id, service = credential(environ.get("HTTP_AUTHORIZATION"))
        try:
            operation, violations = contract.check(environ, path, body, service)
        except Exception as e:  # a bug of the checker must show, not pass for a clean request
            operation, violations = None, [f"the contract check failed: {type(e).__name__}: {e}"]
        call = {"op": op, "mutating": mutating, "app": app.group(1) if app else None,
                "host": environ.get("HTTP_HOST", ""), "principal": principal_of(key_id), "service": service,
                "method": method, "path": path, "query": environ.get("QUERY_STRING", ""),
                "body": logged_body(body, content_type),
                "sdk": "rust" if "lang/rust" in agent else "other",
                "operation": operation, "contract": violations,
                "status": None}
        with self.calls_lock:
            self.calls.append(call)
        return call

    @staticmethod
    def body(environ):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        return json.loads(environ["wsgi.input"].read(length) or b"{}")
