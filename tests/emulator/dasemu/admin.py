"""The emulator's own HTTP API, beside AWS's, under /_dasemu/ (tests and the demo use it):

  GET  /_dasemu/health                      {"ok": true}
  POST /_dasemu/inject    {"stream": NAME or resource id, "events": [...], "damage": null}
                          writes one DAS record now (409 unless the stream is started)
  GET  /_dasemu/truth[?stream=NAME]         every record written: events, kind, damage, sequence
  POST /_dasemu/producer  {"trickle_per_second": 0, "heartbeat_seconds": 5}
  GET  /_dasemu/firehose                    what the Firehose runner did (invocations, errors)
"""

import json
from urllib.parse import parse_qs

PREFIX = "/_dasemu/"


class Admin:
    def __init__(self, app, producer, runner=None):
        self.app = app
        self.producer = producer
        self.runner = runner

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return self.app(environ, start_response)
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
            seq = self.producer.write(stream, body.get("events", []), body.get("damage"))
            return 200, {"sequenceNumber": seq, "stream": stream.name}
        if name == "producer" and method == "POST":
            body = self.body(environ)
            return 200, self.producer.configure(body.get("trickle_per_second"), body.get("heartbeat_seconds"))
        if name == "firehose" and method == "GET" and self.runner is not None:
            return 200, self.runner.report()
        return 404, {"error": f"no such emulator endpoint: {method} {PREFIX}{name}"}

    @staticmethod
    def body(environ):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        return json.loads(environ["wsgi.input"].read(length) or b"{}")
