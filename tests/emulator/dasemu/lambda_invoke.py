"""Lambda `Invoke` (synchronous, `RequestResponse`) runs the deployed function's code, as the
Firehose runner does: the same warm `FunctionHost` (lambda_host.py) per function and code
version. moto alone would start a Docker container, or answer a canned payload without it.

What AWS documents and this follows (Lambda API Reference, "Invoke"; Lambda Developer Guide,
"Lambda quotas"):

- The request payload of a synchronous invocation is at most 6 MB (6,291,456 bytes); a larger
  one is refused with 413 `RequestTooLargeException` ("The request payload exceeded the Invoke
  request body JSON input quota"), before the function runs.
- A function that fails (its runtime reports an error, it crashes or times out) still gives
  200: the `X-Amz-Function-Error` header says `Unhandled` and the payload is the error JSON
  (`errorType`, `errorMessage`).
- Invoking an Inactive function makes it Active again (Lambda Developer Guide, "Lambda function
  states"), as the Firehose runner's invocations do.

`Event` (asynchronous) and `DryRun` invocations keep moto's behaviour; das-setup makes neither.
Who may invoke is moto's IAM check (iam_enforcement.py), on `lambda:InvokeFunction` and the
function's ARN.
"""

from moto.core.exceptions import JsonRESTError

SYNC_REQUEST_LIMIT = 6 * 1024 * 1024


class RequestTooLarge(JsonRESTError):
    code = 413

    def __init__(self, size):
        super().__init__("RequestTooLargeException",
                         f"{size} byte payload is too large for the RequestResponse invocation type "
                         f"(limit {SYNC_REQUEST_LIMIT} bytes)")


def install(runner):
    from moto.awslambda.models import LambdaBackend

    original = LambdaBackend.invoke

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        kind = (headers.get("X-Amz-Invocation-Type") or headers.get("x-amz-invocation-type")
                or "RequestResponse")
        if kind != "RequestResponse":
            return original(self, function_name, qualifier, body, headers, response_headers)
        fn = self.get_function(function_name, qualifier)  # moto's 404 when there is none
        payload = body if isinstance(body, bytes) else (body or "{}").encode()
        if len(payload) > SYNC_REQUEST_LIMIT:
            raise RequestTooLarge(len(payload))
        from dasemu import eventual

        try:
            eventual.set_function_state(fn.account_id, fn.region, fn.function_name, "Active")
        except Exception:
            pass
        host, _ = runner.host(None, fn.function_arn)
        result, out = host.invoke(payload)
        if result == "error":
            response_headers["x-amz-function-error"] = "Unhandled"
        return out

    LambdaBackend.invoke = invoke
