"""Throttling and server errors on chosen operations, as AWS answers them, so tests can prove the
client retries with back-off and converges.

Every AWS API reference lists the same common errors ("Common Errors"): ThrottlingException
(400, "The request was denied due to request throttling"), InternalFailure (500) and
ServiceUnavailable (503). Services name theirs in their own protocol: the query APIs (IAM, RDS,
STS) answer `Throttling` in an XML ErrorResponse; Lambda answers 429 TooManyRequestsException
(Lambda API reference, Errors); Athena 400 TooManyRequestsException; S3 answers 503 SlowDown ("Please reduce your request rate.",
S3 API reference, Error responses) and 500 InternalError.

S3 conditional writes have a failure of their own: "If a conflicting operation occurs during the
upload S3 returns a 409 ConditionalRequestConflict response. On a 409 failure you should retry
the upload" (S3 API reference, PutObject, If-None-Match; S3 User Guide, "Conditional writes").
Kind "conflict" answers it, to conditional writes only (a request carrying If-None-Match or
If-Match); other writes of the operation pass untouched and do not use up the fault.

  POST /_dasemu/faults {"faults": [{"operation": "kms:DescribeKey", "kind": "throttle", "times": 2}]}
      the next `times` calls of that operation (service:Operation, as the call log names it)
      answer the fault; kind is "throttle", "server" or (S3 writes) "conflict"
  GET  /_dasemu/faults   what is armed, and what was served
"""

import json
import threading

# (service, kind) -> (HTTP status, error code, message)
SPECIAL = {
    ("lambda", "throttle"): (429, "TooManyRequestsException", "Rate exceeded"),
    # Athena's throttling error (Athena API reference, e.g. StartQueryExecution, Errors:
    # "TooManyRequestsException: Indicates that the request was throttled", HTTP 400).
    ("athena", "throttle"): (400, "TooManyRequestsException", "Rate exceeded"),
    ("s3", "throttle"): (503, "SlowDown", "Please reduce your request rate."),
    ("s3", "server"): (500, "InternalError", "We encountered an internal error. Please try again."),
    ("s3", "conflict"): (409, "ConditionalRequestConflict",
                         "A conflicting conditional operation is currently in progress against this resource. "
                         "Please try again."),
}
KINDS = ("throttle", "server", "conflict")
QUERY_SERVICES = {"iam", "rds", "sts", "sns"}


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.armed = {}  # operation -> [kind, remaining]
        self.served = []

    def arm(self, faults):
        with self.lock:
            for f in faults:
                if f.get("kind") not in KINDS:
                    raise ValueError(f"fault kind {f.get('kind')!r}: one of {', '.join(KINDS)}")
                if f["kind"] == "conflict" and not f["operation"].startswith("s3:"):
                    raise ValueError("fault kind 'conflict' is S3's answer to a conditional write")
                self.armed[f["operation"]] = [f["kind"], int(f.get("times", 1))]
        return self.report()

    def report(self):
        with self.lock:
            return {"armed": {op: {"kind": k, "remaining": n} for op, (k, n) in self.armed.items() if n > 0},
                    "served": list(self.served)}

    def take(self, operation, conditional=False):
        """The fault to answer this call with, if one is armed for its operation (a conflict
        only for a conditional write)."""
        if not operation:
            return None
        with self.lock:
            armed = self.armed.get(operation)
            if not armed or armed[1] <= 0 or (armed[0] == "conflict" and not conditional):
                return None
            armed[1] -= 1
            self.served.append({"operation": operation, "kind": armed[0]})
            return armed[0]


def answer(operation, kind, start_response):
    """The error response AWS gives for `kind`, in the service's protocol."""
    service = operation.split(":", 1)[0]
    status, code, message = SPECIAL.get((service, kind)) or (
        (400, "Throttling" if service in QUERY_SERVICES else "ThrottlingException", "Rate exceeded")
        if kind == "throttle" else (500, "InternalFailure", "The request processing has failed because of an unknown error."))
    if service in QUERY_SERVICES:
        sender = "Sender" if status < 500 else "Receiver"
        body = (f"<ErrorResponse><Error><Type>{sender}</Type><Code>{code}</Code><Message>{message}</Message>"
                f"</Error><RequestId>dasemu-fault</RequestId></ErrorResponse>").encode()
        headers = [("Content-Type", "text/xml")]
    elif service == "s3":
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message>"
                f"<RequestId>dasemu-fault</RequestId></Error>").encode()
        headers = [("Content-Type", "application/xml")]
    else:
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
    reasons = {400: "Bad Request", 409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error",
               503: "Service Unavailable"}
    start_response(f"{status} {reasons[status]}", headers + [("Content-Length", str(len(body))),
                                                              ("x-amzn-RequestId", "dasemu-fault")])
    return [body]
