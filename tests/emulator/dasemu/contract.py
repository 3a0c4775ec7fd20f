"""Every request checked against AWS's published service model of its operation.

moto accepts requests real AWS refuses, so a client bug that breaks on AWS can pass every test
here. This module reads each request the emulator serves back into the members of its
operation's input shape, by the protocol the model names (`json`, `query`, `rest-json`,
`rest-xml`), and checks them against the model as AWS's own request validation does: required
members present, no member the shape does not have, types, enum values, string and list lengths
(`min`, `max`), number ranges and string patterns. The models are botocore's JSON models
(`botocore/data/<service>/<version>/service-2.json`, pinned with botocore in requirements.txt),
the same ones the AWS SDKs are generated from.

The Smithy RPC v2 CBOR protocol (CloudWatch, as the AWS SDK for Rust speaks it) is decoded with
botocore's CBOR parser and checked like JSON.

Not checked: S3 XML bodies (the SDK serializes them from the same model; the emulator does not
parse them), `document` and timestamp values, header-bound members other than S3's.

`check(environ, path, body)` returns (service/operation or None, [violation, ...]).
"""

import base64
import json
import re
from urllib.parse import parse_qs, unquote

from botocore.loaders import create_loader

# The signature's service name -> botocore's.
SERVICES = {
    "kms": "kms", "firehose": "firehose", "kinesis": "kinesis", "logs": "logs",
    "tagging": "resourcegroupstaggingapi", "monitoring": "cloudwatch", "sts": "sts", "iam": "iam",
    "rds": "rds", "lambda": "lambda", "s3": "s3", "sns": "sns", "events": "events",
    "securityhub": "securityhub", "glue": "glue", "athena": "athena",
}
# Query parameters a protocol adds beside the members.
QUERY_ENVELOPE = {"Action", "Version"}

_loader = create_loader()
_models = {}
_patterns = {}


class Model:
    def __init__(self, name):
        self.raw = _loader.load_service_model(name, "service-2")
        self.meta = self.raw["metadata"]
        self.shapes = self.raw["shapes"]
        self.protocol = self.meta.get("protocol")
        self.by_target = {}
        self.routes = []
        prefix = self.meta.get("targetPrefix")
        for op_name, op in self.raw["operations"].items():
            if prefix:
                self.by_target[f"{prefix}.{op_name}"] = op
            http = op.get("http", {})
            if "requestUri" in http:
                self.routes.append((http.get("method", "POST"), _route(http["requestUri"]), op))

    def shape(self, name):
        return self.shapes[name]


def model(service):
    name = SERVICES.get(service)
    if name is None:
        return None
    if name not in _models:
        _models[name] = Model(name)
    return _models[name]


def _route(uri):
    """(path regex with named label groups, {literal query key: value or None})."""
    path, _, query = uri.partition("?")
    regex = ""
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{"):
            label = part[1:-1]
            greedy = label.endswith("+")
            label = label.rstrip("+")
            regex += f"(?P<{_group(label)}>{'.+' if greedy else '[^/]+'})"
        else:
            regex += re.escape(part)
    literal = {}
    for pair in filter(None, query.split("&")):
        key, eq, value = pair.partition("=")
        literal[key] = value if eq else None
    return re.compile(regex.rstrip("/") + "/?$"), literal


def _group(label):
    return "L_" + re.sub(r"\W", "_", label)


def _pattern(text):
    if text not in _patterns:
        candidate = text
        # Java-style surrogate pairs for the supplementary planes.
        candidate = candidate.replace("\\uD800\\uDC00-\\uDBFF\\uDFFF", "\\U00010000-\\U0010FFFF")
        try:
            _patterns[text] = re.compile(candidate)
        except re.error:
            _patterns[text] = None
    return _patterns[text]


# --- reading the request into members ------------------------------------------------------

def _from_query(m, shape, params, prefix, used):
    """The value of `shape` under the query parameter name `prefix` ("" for the input itself), as
    the query protocol serializes it: `A.B` for members, `A.member.N` for lists (`A.N` when
    flattened), `A.entry.N.key` / `.value` for maps, `A=` for an empty list."""
    kind = shape["type"]
    if kind == "structure":
        out = {}
        for name, ref in shape.get("members", {}).items():
            wire = ref.get("locationName", name)
            value = _from_query(m, m.shape(ref["shape"]), params, f"{prefix}.{wire}" if prefix else wire, used)
            if value is not _ABSENT:
                out[name] = value
        if prefix and not out and not any(k.startswith(prefix + ".") for k in params):
            return _ABSENT
        return out
    if kind == "list":
        member_ref = shape["member"]
        base = prefix if shape.get("flattened") else f"{prefix}.{member_ref.get('locationName', 'member')}"
        if params.get(prefix) == "":
            used.add(prefix)
            return []
        items, i = [], 1
        while True:
            value = _from_query(m, m.shape(member_ref["shape"]), params, f"{base}.{i}", used)
            if value is _ABSENT:
                break
            items.append(value)
            i += 1
        return items if items else _ABSENT
    if kind == "map":
        key_name = shape["key"].get("locationName", "key")
        value_name = shape["value"].get("locationName", "value")
        base = prefix if shape.get("flattened") else f"{prefix}.entry"
        out, i = {}, 1
        while f"{base}.{i}.{key_name}" in params:
            used.add(f"{base}.{i}.{key_name}")
            value = _from_query(m, m.shape(shape["value"]["shape"]), params, f"{base}.{i}.{value_name}", used)
            out[params[f"{base}.{i}.{key_name}"]] = None if value is _ABSENT else value
            i += 1
        return out if out else _ABSENT
    if prefix not in params:
        return _ABSENT
    used.add(prefix)
    return _scalar(kind, params[prefix])


class _Absent:
    pass


_ABSENT = _Absent()


def _scalar(kind, text):
    if kind in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            return text
    if kind in ("float", "double"):
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "boolean":
        return {"true": True, "false": False}.get(text, text)
    if kind == "blob":
        return _Blob(text)
    return text


class _Blob:
    """A blob as sent: base64 in JSON and query bodies (its length is of the decoded bytes)."""

    def __init__(self, text, raw=False):
        self.size = len(text) if raw else _b64_size(text)


def _b64_size(text):
    try:
        return len(base64.b64decode(text, validate=False))
    except (ValueError, TypeError):
        return len(text)


def _rest_members(m, op, environ, body, groups):
    shape = m.shape(op["input"]["shape"]) if "input" in op else {"type": "structure", "members": {}}
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    out, unknown = {}, []
    body_members = {}
    for name, ref in shape.get("members", {}).items():
        where = ref.get("location")
        wire = ref.get("locationName", name)
        target = m.shape(ref["shape"])
        if where == "uri":
            value = groups.get(_group(wire))
            if value is not None:
                out[name] = _scalar(target["type"], unquote(value))
        elif where == "querystring":
            if target["type"] == "map":
                continue
            if wire in query:
                values = query[wire]
                out[name] = [ _scalar(m.shape(target["member"]["shape"])["type"], v) for v in values] \
                    if target["type"] == "list" else _scalar(target["type"], values[0])
        elif where == "header":
            header = "HTTP_" + wire.upper().replace("-", "_")
            if header in environ:
                out[name] = _scalar(target["type"], environ[header])
            elif wire.lower() == "content-type" and "CONTENT_TYPE" in environ:
                out[name] = environ["CONTENT_TYPE"]
        elif where == "headers":
            continue
        elif shape.get("payload") == name:
            if target["type"] in ("blob", "string"):
                if body:
                    out[name] = _Blob(body, raw=True) if target["type"] == "blob" else body.decode("utf-8", "replace")
                elif environ.get("CONTENT_LENGTH", "0") not in ("", "0"):
                    out[name] = _UNREAD  # sent, but not read by the call log
            elif m.protocol == "rest-json" and body:
                try:
                    out[name] = json.loads(body)
                except ValueError:
                    unknown.append(f"{name}: the body is not JSON")
            elif body or environ.get("CONTENT_LENGTH", "0") not in ("", "0"):
                out[name] = _UNREAD  # an XML payload: not read here
        else:
            body_members[name] = ref
    if m.protocol == "rest-json" and body_members and body:
        try:
            document = json.loads(body)
        except ValueError:
            return out, ["the body is not JSON"]
        for key, value in document.items():
            name = next((n for n, r in body_members.items() if r.get("locationName", n) == key), None)
            if name is None:
                unknown.append(f"{key}: not a member of {op['input']['shape']}")
            else:
                out[name] = value
    return out, unknown


_UNREAD = object()


# --- checking ------------------------------------------------------------------------------

def _check(m, shape_name, value, where, out):
    shape = m.shape(shape_name)
    kind = shape["type"]
    if value is _UNREAD:
        return
    if kind == "structure":
        if not isinstance(value, dict):
            out.append(f"{where}: expected a structure ({shape_name}), got {type(value).__name__}")
            return
        members = shape.get("members", {})
        for name in shape.get("required", []):
            if name not in value or value[name] is None:
                out.append(f"{where}.{name}: required by {shape_name}, missing".lstrip("."))
        for name, v in value.items():
            if name not in members:
                out.append(f"{where}.{name}: not a member of {shape_name}".lstrip("."))
                continue
            if v is None:
                continue
            _check(m, members[name]["shape"], v, f"{where}.{name}", out)
        return
    if kind == "list":
        if not isinstance(value, list):
            out.append(f"{where}: expected a list ({shape_name})")
            return
        _length(shape, len(value), where, "items", out)
        for i, item in enumerate(value):
            _check(m, shape["member"]["shape"], item, f"{where}[{i}]", out)
        return
    if kind == "map":
        if not isinstance(value, dict):
            out.append(f"{where}: expected a map ({shape_name})")
            return
        _length(shape, len(value), where, "entries", out)
        for k, v in value.items():
            _check(m, shape["key"]["shape"], k, f"{where} key", out)
            if v is not None:
                _check(m, shape["value"]["shape"], v, f"{where}[{k!r}]", out)
        return
    if kind == "string":
        if not isinstance(value, str):
            out.append(f"{where}: expected a string ({shape_name}), got {type(value).__name__}")
            return
        if "enum" in shape and value not in shape["enum"]:
            out.append(f"{where}: {value!r} is not one of {shape_name}'s values {shape['enum']}")
        _length(shape, len(value), where, "characters", out)
        if "pattern" in shape:
            regex = _pattern(shape["pattern"])
            if regex is not None and not regex.search(value):
                shown = value if len(value) <= 80 else value[:77] + "..."
                out.append(f"{where}: {shown!r} does not match {shape_name}'s pattern {shape['pattern']}")
        return
    if kind in ("integer", "long", "float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out.append(f"{where}: expected a number ({shape_name}), got {value!r}")
            return
        if "min" in shape and value < shape["min"]:
            out.append(f"{where}: {value} is below {shape_name}'s minimum {shape['min']}")
        if "max" in shape and value > shape["max"]:
            out.append(f"{where}: {value} is above {shape_name}'s maximum {shape['max']}")
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            out.append(f"{where}: expected a boolean ({shape_name}), got {value!r}")
        return
    if kind == "blob":
        size = value.size if isinstance(value, _Blob) else _b64_size(value) if isinstance(value, str) else None
        if size is None:
            out.append(f"{where}: expected a blob ({shape_name})")
        else:
            _length(shape, size, where, "bytes", out)
        return
    # timestamp, document: not checked


def _length(shape, n, where, unit, out):
    if "min" in shape and n < shape["min"]:
        out.append(f"{where}: {n} {unit}, fewer than the minimum {shape['min']}")
    if "max" in shape and n > shape["max"]:
        out.append(f"{where}: {n} {unit}, more than the maximum {shape['max']}")


def _blobs_in_json(m, shape_name, value):
    """JSON bodies carry blobs as base64 strings: wrap them so lengths are of the bytes."""
    shape = m.shape(shape_name)
    kind = shape["type"]
    if kind == "blob" and isinstance(value, str):
        return _Blob(value)
    if kind == "structure" and isinstance(value, dict):
        members = shape.get("members", {})
        return {k: (_blobs_in_json(m, members[k]["shape"], v) if k in members else v) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_blobs_in_json(m, shape["member"]["shape"], v) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _blobs_in_json(m, shape["value"]["shape"], v) for k, v in value.items()}
    return value


def _cbor_blobs(value):
    """CBOR carries blobs as byte strings."""
    if isinstance(value, (bytes, bytearray)):
        blob = _Blob("", raw=True)
        blob.size = len(value)
        return blob
    if isinstance(value, dict):
        return {k: _cbor_blobs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cbor_blobs(v) for v in value]
    return value


def check(environ, path, body, service):
    """(operation name "service:Operation" or None when the model has none for the request,
    [violations])."""
    m = model(service)
    if m is None:
        return None, []
    target = environ.get("HTTP_X_AMZ_TARGET")
    violations = []
    rpc = re.fullmatch(r"/service/[^/]+/operation/(\w+)", path)
    if rpc and "cbor" in environ.get("CONTENT_TYPE", ""):
        op = m.raw["operations"].get(rpc.group(1))
        if op is None:
            return None, []
        from botocore.parsers import RpcV2CBORParser

        value = RpcV2CBORParser()._initial_body_parse(body or b"") or {}
        if "input" in op:
            _check(m, op["input"]["shape"], _cbor_blobs(value), "", violations)
        return f"{service}:{op['name']}", violations
    if m.protocol == "json" or (target and target in m.by_target):
        op = m.by_target.get(target or "")
        if op is None:
            return None, []
        text = (body or b"{}").decode("utf-8", "replace")
        try:
            value = json.loads(text or "{}")
        except ValueError:
            return f"{service}:{op['name']}", ["the body is not JSON"]
        if "input" in op:
            _check(m, op["input"]["shape"], _blobs_in_json(m, op["input"]["shape"], value), "", violations)
        return f"{service}:{op['name']}", violations
    if m.protocol == "query":
        text = (body or b"").decode("utf-8", "replace")
        params = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
        params.update({k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()})
        action = params.get("Action")
        op = m.raw["operations"].get(action or "")
        if op is None:
            return None, []
        used = set(QUERY_ENVELOPE)
        if "input" in op:
            value = _from_query(m, m.shape(op["input"]["shape"]), params, "", used)
            _check(m, op["input"]["shape"], value if isinstance(value, dict) else {}, "", violations)
        for key in sorted(set(params) - used):
            violations.append(f"{key}: not a member of {action}'s input")
        return f"{service}:{action}", violations
    # REST protocols: the operation is the route.
    method = environ.get("REQUEST_METHOD", "GET")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    candidates = []
    for route_method, (regex, literal), op in m.routes:
        if route_method != method:
            continue
        match = regex.match(path)
        if not match:
            continue
        if any(k not in query or (v is not None and query[k][0] != v) for k, v in literal.items()):
            continue
        candidates.append((len(literal), op, match))
    if not candidates:
        return None, []
    # The most specific route; where several operations share it (S3's PutObject and
    # CopyObject), the one whose members the request satisfies (CopyObject needs its
    # x-amz-copy-source header), then the one not deprecated.
    most = max(c[0] for c in candidates)
    judged = []
    for order, (_, op, match) in enumerate(c for c in candidates if c[0] == most):
        members, unknown = _rest_members(m, op, environ, body, match.groupdict())
        found = list(unknown)
        if "input" in op:
            _check(m, op["input"]["shape"], _blobs_in_json(m, op["input"]["shape"], members), "", found)
        judged.append((len(found), op.get("deprecated", False), order, op, found))
    _, _, _, op, violations = min(judged, key=lambda j: j[:3])
    return f"{service}:{op['name']}", violations
