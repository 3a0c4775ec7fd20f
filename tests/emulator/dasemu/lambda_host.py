"""Runs a deployed Lambda function's `bootstrap` (a custom runtime, as `provided.al2023` does)
under a local implementation of the Lambda Runtime API:

  GET  /2018-06-01/runtime/invocation/next          the next event, with Lambda-Runtime-* headers
  POST /2018-06-01/runtime/invocation/{id}/response the function's answer
  POST /2018-06-01/runtime/invocation/{id}/error    the function's error
  POST /2018-06-01/runtime/init/error               the function failed to start

One warm process per function and code version, as Lambda keeps an execution environment
between invocations; a timeout or a crash ends it and the next invocation starts a new one.
The process gets the function's environment variables plus what Lambda sets: the endpoint
pointing back at the emulator and, as Lambda does, temporary credentials of the function's
execution role (so that with `--enforce-iam` the function can do exactly what its role allows). Its output goes to a log file (CloudWatch's
role), and its embedded-metric-format lines become CloudWatch metrics. An arm64 `bootstrap` runs through qemu-aarch64 when the machine is x86_64 and qemu's user
mode is installed (Debian: qemu-user, and libc6-arm64-cross for glibc binaries); otherwise the
invocation fails with a message saying so.
"""

import io
import json
import os
import platform
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime/"


class Invocation:
    def __init__(self, payload, deadline_ms, function_arn):
        self.id = str(uuid.uuid4())
        self.payload = payload
        self.deadline_ms = deadline_ms
        self.function_arn = function_arn
        self.done = threading.Event()
        self.result = None  # ("response" | "error", bytes)


class FunctionHost:
    """One function version: its unpacked code, its runtime API, its warm process."""

    def __init__(self, name, arn, code_zip, environment, timeout, architecture, endpoint, region, log_dir,
                 credentials):
        self.name = name
        self.credentials = credentials  # (access key id, secret access key, session token)
        self.arn = arn
        self.environment = dict(environment or {})
        self.timeout = float(timeout or 3)
        self.architecture = architecture or "x86_64"
        self.endpoint = endpoint
        self.region = region
        self.dir = tempfile.mkdtemp(prefix=f"dasemu-lambda-{name}-")
        with zipfile.ZipFile(io.BytesIO(code_zip)) as z:
            z.extractall(self.dir)
        self.bootstrap = os.path.join(self.dir, "bootstrap")
        if os.path.exists(self.bootstrap):
            os.chmod(self.bootstrap, 0o755)
        self.log_path = os.path.join(log_dir, f"lambda-{name}.log")
        self.pending = queue.Queue()
        self.invocations = {}
        self.init_error = None
        self.process = None
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler_class())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handler_class(self):
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, body=b"{}", headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != PREFIX + "invocation/next":
                    return self.reply(404)
                inv = host.pending.get()
                host.invocations[inv.id] = inv
                self.reply(200, inv.payload, [
                    ("Lambda-Runtime-Aws-Request-Id", inv.id),
                    ("Lambda-Runtime-Deadline-Ms", str(inv.deadline_ms)),
                    ("Lambda-Runtime-Invoked-Function-Arn", inv.function_arn),
                    ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0"),
                ])

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == PREFIX + "init/error":
                    host.init_error = body
                    return self.reply(202)
                parts = self.path[len(PREFIX):].split("/")
                if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    inv = host.invocations.pop(parts[1], None)
                    if inv is None:
                        return self.reply(400, b'{"errorType":"InvalidRequestID"}')
                    inv.result = (parts[2], body)
                    inv.done.set()
                    return self.reply(202)
                self.reply(404)

        return Handler

    def command(self):
        machine = platform.machine().lower()
        if self.architecture == "arm64" and machine not in ("aarch64", "arm64"):
            qemu = shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
            if qemu is None:
                raise RuntimeError(
                    f"function {self.name} is arm64 and this machine is {machine} without "
                    "qemu-aarch64: deploy it for x86_64 to run it in the emulator")
            # A glibc-linked binary needs the aarch64 loader and libc (Debian: libc6-arm64-cross).
            sysroot = "/usr/aarch64-linux-gnu"
            return [qemu] + (["-L", sysroot] if os.path.isdir(sysroot) else []) + [self.bootstrap]
        return [self.bootstrap]

    def ensure_process(self):
        if self.process is not None and self.process.poll() is None:
            return
        if not os.path.exists(self.bootstrap):
            raise RuntimeError(f"function {self.name}: the zip has no 'bootstrap' at its root")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            **{k: str(v) for k, v in self.environment.items()},
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:%d" % self.server.server_address[1],
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "dasemu",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.credentials[0],
            "AWS_SECRET_ACCESS_KEY": self.credentials[1],
            "AWS_SESSION_TOKEN": self.credentials[2],
            "LAMBDA_TASK_ROOT": self.dir,
            "_HANDLER": "bootstrap",
            # The function runs on this machine and keeps its clock: a clock moved for the whole
            # emulator by libfaketime (scripts/test-later-date) is moved for the function too, as
            # Lambda's hosts and S3 share one synchronised time.
            **{k: v for k, v in os.environ.items() if k == "LD_PRELOAD" or k.startswith("FAKETIME")},
        }
        self.init_error = None
        # A fresh queue per process: a poll left blocked by a killed process keeps the old one.
        self.pending = queue.Queue()
        self.process = subprocess.Popen(self.command(), cwd=self.dir, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        threading.Thread(target=self.logs, args=(self.process.stdout,), name=f"logs-{self.name}",
                         daemon=True).start()

    def logs(self, output):
        """The function's output, line by line, into its log file (CloudWatch Logs' role), and
        the metrics of its embedded-metric-format lines, as CloudWatch Logs extracts them: a JSON
        object whose `_aws.CloudWatchMetrics` directives name a namespace, dimension sets and
        metrics, the values being members of the root (CloudWatch User Guide, "Specification:
        Embedded metric format"). Each metric is recorded once per dimension set (sets of one
        dimension: what das-setup's processor writes)."""
        with open(self.log_path, "ab") as log:
            for line in iter(output.readline, b""):
                log.write(line)
                log.flush()
                if line.startswith(b'{"_aws"'):
                    try:
                        self.embedded_metrics(json.loads(line))
                    except Exception as e:  # a malformed line is a log line, as in CloudWatch
                        print(f"dasemu: an embedded metric line was not recorded: {e}", file=sys.stderr)

    def embedded_metrics(self, document):
        from dasemu import cloudwatch_rpc

        account, region = self.arn.split(":")[4], self.arn.split(":")[3]
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimensions in directive["Dimensions"]:
                if len(dimensions) != 1:
                    continue
                for metric in directive["Metrics"]:
                    value = document[metric["Name"]]
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        cloudwatch_rpc.put(account, region, directive["Namespace"], metric["Name"],
                                           (dimensions[0], document[dimensions[0]]), value,
                                           metric.get("Unit", "None"))

    def invoke(self, payload):
        """Runs one invocation; returns ("response" | "error", body bytes). Each run is counted
        in CloudWatch as Lambda counts it (dasemu/cloudwatch_rpc.py)."""
        started = time.time()
        kind, body = self._invoke(payload)
        try:
            from dasemu import cloudwatch_rpc

            cloudwatch_rpc.lambda_ran(self.arn, kind, (time.time() - started) * 1000)
        except Exception as e:  # the metrics never change what the function answered
            print(f"dasemu: recording Lambda metrics failed: {e}", file=sys.stderr)
        return kind, body

    def _invoke(self, payload):
        with self.lock:
            try:
                self.ensure_process()
            except (OSError, RuntimeError) as e:
                return "error", json.dumps({"errorType": "Runtime.InvalidEntrypoint", "errorMessage": str(e)}).encode()
            deadline = time.time() + self.timeout
            inv = Invocation(payload, int(deadline * 1000), self.arn)
            self.pending.put(inv)
            while not inv.done.wait(0.05):
                if self.process.poll() is not None:
                    self.drain(inv)
                    detail = self.init_error or b"process exited with status %d" % self.process.returncode
                    return "error", json.dumps({"errorType": "Runtime.ExitError",
                                                "errorMessage": detail.decode(errors="replace")}).encode()
                if time.time() > deadline:
                    self.process.kill()
                    self.process.wait()
                    self.drain(inv)
                    return "error", json.dumps({"errorType": "Sandbox.Timedout",
                                                "errorMessage": f"Task timed out after {self.timeout:.2f} seconds"}).encode()
            return inv.result

    def drain(self, inv):
        """Forget an invocation that will never be answered."""
        self.invocations.pop(inv.id, None)
        try:
            while True:
                self.pending.get_nowait()
        except queue.Empty:
            pass

    def close(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.server.shutdown()
        shutil.rmtree(self.dir, ignore_errors=True)
