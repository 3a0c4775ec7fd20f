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
                          who signed it (`principal`: "root", an assumed-role or user ARN) and
                          the HTTP status of the answer
"""

import io
import json
import re
import threading
from urllib.parse import parse_qs

from dasemu.iam_enforcement import access_key_id, principal_of

PREFIX = "/_dasemu/"


class Admin:
    def __init__(self, app, producer, runner=None):
        self.app = app
        self.producer = producer
        self.runner = runner
        self.calls = []
        self.calls_lock = threading.Lock()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            call = self.record(environ, path)

            def answered(status, headers, exc_info=None):
                call["status"] = int(status.split(" ", 1)[0])
                return start_response(status, headers, exc_info)

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
        if name == "firehose" and method == "GET" and self.runner is not None:
            return 200, self.runner.report()
        return 404, {"error": f"no such emulator endpoint: {method} {PREFIX}{name}"}

    def record(self, environ, path):
        """Notes one AWS API call: its operation and whether it can change anything."""
        method = environ.get("REQUEST_METHOD", "GET")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        op = target.rsplit(".", 1)[-1] if target else None
        if op is None:
            action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
            if not action and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
                # Query-protocol APIs (IAM, RDS, STS) put the action in the form body: read it and
                # hand moto an identical stream.
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = environ["wsgi.input"].read(length)
                environ["wsgi.input"] = io.BytesIO(body)
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
        call = {"op": op, "mutating": mutating, "app": app.group(1) if app else None,
                "host": environ.get("HTTP_HOST", ""),
                "principal": principal_of(access_key_id(environ.get("HTTP_AUTHORIZATION"))),
                "status": None}
        with self.calls_lock:
            self.calls.append(call)
        return call

    @staticmethod
    def body(environ):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        return json.loads(environ["wsgi.input"].read(length) or b"{}")
