"""Athena's queries, for the emulator: the Glue table's objects read as Athena reads them, the SQL
run by an independent engine (DuckDB), the results as Athena returns and stores them. moto 5.2
answers every query at once with no rows; das-setup's `query --engine athena` needs answers to
test against.

What it follows (Athena User Guide and API reference):
- The table's partitions come from its partition projection ("Partition projection with Amazon
  Athena"; "Supported types for partition projection": `enum` values, `date` with `format`,
  `range` with `NOW`, `interval`, `interval.unit`), substituted into
  `storage.location.template`; only the objects of those locations are read, and of them not the
  files whose names start with `_` or `.` ("Table location in Amazon S3").
- Columns are matched to the JSON keys ignoring case ("OpenX JSON SerDe": `case.insensitive`
  defaults to true); a value that is not a JSON string is read as its JSON text into a string
  column; an absent key or `null` is NULL. Objects ending in `.gz` are gunzipped ("Compression
  support in Athena": detected by extension).
- An execution is QUEUED, then RUNNING, then SUCCEEDED, FAILED (with `StateChangeReason`) or
  CANCELLED (StopQueryExecution) (QueryExecutionStatus); it stays RUNNING for `RUNNING_SECONDS`
  so that clients must poll. `Statistics.DataScannedInBytes` counts the stored (compressed)
  bytes of the objects read.
- A start that repeats an earlier start's `ClientRequestToken` answers that execution and runs
  nothing (StartQueryExecution: "If another StartQueryExecution request is received, the same
  response is returned and another query is not created").
- The workgroup's result configuration wins when it is enforced ("Workgroup settings override
  client-side settings"); with no output location at all the query is refused
  (InvalidRequestException). Results are written as `<OutputLocation><QueryExecutionId>.csv`, a
  header row then every value quoted ("Working with query results ... Query output files").
- GetQueryResults before the execution succeeded: InvalidRequestException ("Query has not yet
  finished"); the first row of a SELECT's results is the column names; at most `MaxResults`
  (1,000) rows a page, then `NextToken`.

The SQL is DuckDB's, close to Athena's (Trino's) for plain SELECT, WHERE, GROUP BY, ORDER BY and
LIMIT: what das-setup's saved queries use. An SQL error is a FAILED execution with DuckDB's
message, as Athena fails an execution whose SQL it cannot run.
"""

import csv
import datetime
import gzip
import io
import json
import re
import threading
import time
import uuid

RUNNING_SECONDS = 0.6
PAGE = 1000

_executions = {}
_tokens = {}
_lock = threading.Lock()


def _error(message, status=400):
    return json.dumps({"__type": "InvalidRequestException", "Message": message}), {"status": status}


# --- the table's objects ---------------------------------------------------------------------
_JAVA = {"yyyy": r"\d{4}", "MM": r"\d{2}", "dd": r"\d{2}", "HH": r"\d{2}", "mm": r"\d{2}", "ss": r"\d{2}"}
_STRFTIME = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}


def _format_parts(java):
    return re.findall(r"yyyy|MM|dd|HH|mm|ss|.", java)


def _date_regex(java):
    return "".join(_JAVA.get(part, re.escape(part)) for part in _format_parts(java))


def _strftime(java):
    return "".join(_STRFTIME.get(part, part.replace("%", "%%")) for part in _format_parts(java))


def _projection(parameters, column):
    """(regex of the column's values, check of one value) from its projection settings."""
    kind = parameters.get(f"projection.{column}.type")
    if kind == "enum":
        values = parameters[f"projection.{column}.values"].split(",")
        return "|".join(re.escape(v) for v in values), lambda v: v in values
    if kind == "date":
        java = parameters[f"projection.{column}.format"]
        fmt = _strftime(java)
        start, end = parameters[f"projection.{column}.range"].split(",")
        low = datetime.datetime.strptime(start, fmt)

        def inside(value):
            at = datetime.datetime.strptime(value, fmt)
            high = datetime.datetime.utcnow() if end.strip() == "NOW" else datetime.datetime.strptime(end, fmt)
            return low <= at <= high

        return _date_regex(java), inside
    raise ValueError(f"projection type {kind!r} of {column} is not supported by the emulator")


def _objects(s3, table):
    """[(key, partition values, stored bytes, text)] of the table's objects, by its projection."""
    parameters = table.get("Parameters") or {}
    if parameters.get("projection.enabled") != "true":
        raise ValueError("the emulator reads only tables with partition projection")
    template = parameters["storage.location.template"]
    checks, regex, at = {}, "", 0
    for m in re.finditer(r"\$\{([^}]+)\}", template):
        column = m.group(1)
        values, check = _projection(parameters, column)
        checks[column] = check
        regex += re.escape(template[at:m.start()]) + f"(?P<{column}>{values})"
        at = m.end()
    regex += re.escape(template[at:])
    pattern = re.compile(regex)
    bucket_name, _, prefix = template[len("s3://"):].partition("/")
    prefix = prefix.split("${", 1)[0]
    bucket = s3.get_bucket(bucket_name)
    found = []
    for key_name in sorted(bucket.keys.keys()):
        if not key_name.startswith(prefix):
            continue
        m = pattern.match(f"s3://{bucket_name}/{key_name}")
        if not m:
            continue
        rest = key_name[m.end() - len(f"s3://{bucket_name}/"):]
        if "/" in rest or rest.startswith(("_", ".")):
            continue
        values = m.groupdict()
        if not all(checks[c](v) for c, v in values.items()):
            continue
        key = bucket.keys[key_name]
        data = key.value
        text = gzip.decompress(data) if key_name.endswith(".gz") else data
        found.append((key_name, values, len(data), text.decode("utf-8")))
    return found


def _cell(value):
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


# --- running ---------------------------------------------------------------------------------
def _run(account, region, database, sql):
    """(columns [(name, athena type)], rows, bytes scanned)."""
    import duckdb
    from moto.glue.models import glue_backends
    from moto.s3.models import s3_backends

    glue = glue_backends[account][region]
    s3 = s3_backends[account]["aws"]
    con = duckdb.connect()
    con.execute(f'CREATE SCHEMA "{database}"')
    con.execute(f'SET schema = \'{database}\'')
    scanned = 0
    for table in glue.get_tables(database, None):
        t = table.as_dict()
        columns = [c["Name"] for c in t["StorageDescriptor"]["Columns"]]
        partitions = [c["Name"] for c in t.get("PartitionKeys", [])]
        every = columns + partitions
        con.execute(f'CREATE TABLE "{database}"."{t["Name"]}" (' +
                    ", ".join(f'"{c}" VARCHAR' for c in every) + ")")
        rows = []
        for _, values, size, text in _objects(s3, t):
            scanned += size
            for line in text.splitlines():
                if not line.strip():
                    continue
                record = {k.lower(): v for k, v in json.loads(line).items()}
                rows.append([_cell(record.get(c)) for c in columns] + [values.get(p) for p in partitions])
        if rows:
            con.executemany(f'INSERT INTO "{database}"."{t["Name"]}" VALUES (' +
                            ", ".join("?" for _ in every) + ")", rows)
    cursor = con.execute(sql)
    names = [(d[0], _athena_type(str(d[1]))) for d in cursor.description]
    return names, cursor.fetchall(), scanned


def _athena_type(duck):
    duck = duck.upper()
    for prefix, athena in (("BIGINT", "bigint"), ("HUGEINT", "bigint"), ("INTEGER", "integer"),
                           ("DOUBLE", "double"), ("FLOAT", "float"), ("BOOLEAN", "boolean"),
                           ("DECIMAL", "decimal"), ("DATE", "date"), ("TIMESTAMP", "timestamp")):
        if duck.startswith(prefix):
            return athena
    return "varchar"


def _text(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def start_query_execution(self):
    from moto.s3.models import s3_backends

    sql = self._get_param("QueryString")
    token = self._get_param("ClientRequestToken")
    with _lock:
        if token and token in _tokens:
            return json.dumps({"QueryExecutionId": _tokens[token]})
    context = self._get_param("QueryExecutionContext") or {}
    name = self._get_param("WorkGroup") or "primary"
    group = self.athena_backend.work_groups.get(name)
    if group is None:
        return _error(f"WorkGroup {name} is not found.")
    if getattr(group, "state", "ENABLED") == "DISABLED":
        return _error(f"WorkGroup {name} is disabled.")
    config = group.configuration or {}
    given = self._get_param("ResultConfiguration") or {}
    results = config.get("ResultConfiguration") or {}
    if not config.get("EnforceWorkGroupConfiguration"):
        results = {**results, **given}
    location = results.get("OutputLocation")
    if not location:
        return _error("No output location provided. An output location is required either through the "
                      "Workgroup result configuration setting or as an API input.")
    execution_id = str(uuid.uuid4())
    output = location.rstrip("/") + f"/{execution_id}.csv"
    record = {"id": execution_id, "sql": sql, "context": context, "workgroup": name,
              "output": output, "results": results, "submitted": time.time(), "state": None,
              "reason": None, "columns": [], "rows": [], "scanned": 0, "finished": None}
    try:
        columns, rows, scanned = _run(self.current_account, self.region, context.get("Database", "default"), sql)
        buffer = io.StringIO()
        writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow([c for c, _ in columns])
        for row in rows:
            writer.writerow(["" if v is None else _text(v) for v in row])
        bucket, _, key = output[len("s3://"):].partition("/")
        s3_backends[self.current_account]["aws"].put_object(bucket, key, buffer.getvalue().encode())
        record.update(state="SUCCEEDED", columns=columns, rows=[[_text(v) for v in r] for r in rows],
                      scanned=scanned)
    except Exception as e:  # the SQL or the data: a FAILED execution, as Athena reports it
        record.update(state="FAILED", reason=f"{type(e).__name__}: {e}")
    record["finished"] = time.time() + RUNNING_SECONDS
    with _lock:
        _executions[execution_id] = record
        if token:
            _tokens[token] = execution_id
    return json.dumps({"QueryExecutionId": execution_id})


def _state(record):
    if record["state"] == "CANCELLED" or time.time() >= record["finished"]:
        return record["state"]
    return "QUEUED" if time.time() < record["submitted"] + RUNNING_SECONDS / 3 else "RUNNING"


def _find(self):
    with _lock:
        return _executions.get(self._get_param("QueryExecutionId"))


def get_query_execution(self):
    record = _find(self)
    if record is None:
        return _error(f"QueryExecution {self._get_param('QueryExecutionId')} was not found")
    state = _state(record)
    status = {"State": state, "SubmissionDateTime": record["submitted"]}
    if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
        status["CompletionDateTime"] = record["finished"]
    if state == "FAILED":
        status["StateChangeReason"] = record["reason"]
    final = state == "SUCCEEDED"
    return json.dumps({"QueryExecution": {
        "QueryExecutionId": record["id"], "Query": record["sql"], "StatementType": "DML",
        "ResultConfiguration": {**record["results"], "OutputLocation": record["output"]},
        "QueryExecutionContext": record["context"], "Status": status, "WorkGroup": record["workgroup"],
        "Statistics": {"DataScannedInBytes": record["scanned"] if final else 0,
                       "EngineExecutionTimeInMillis": int(RUNNING_SECONDS * 1000) if final else 0},
    }})


def get_query_results(self):
    record = _find(self)
    if record is None:
        return _error(f"QueryExecution {self._get_param('QueryExecutionId')} was not found")
    state = _state(record)
    if state != "SUCCEEDED":
        return _error(f"Query has not yet finished. Current state: {state}")
    size = min(int(self._get_param("MaxResults") or PAGE), PAGE)
    start = int(self._get_param("NextToken") or 0)
    header = [[c for c, _ in record["columns"]]]
    every = header + record["rows"]
    page = every[start:start + size]

    def row(values):
        return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}

    body = {"ResultSet": {"Rows": [row(r) for r in page], "ResultSetMetadata": {"ColumnInfo": [
        {"Name": c, "Label": c, "Type": t, "CatalogName": "hive", "SchemaName": "", "TableName": "",
         "Nullable": "UNKNOWN", "CaseSensitive": t == "varchar", "Precision": 0, "Scale": 0}
        for c, t in record["columns"]]}}, "UpdateCount": 0}
    if start + size < len(every):
        body["NextToken"] = str(start + size)
    return json.dumps(body)


def stop_query_execution(self):
    record = _find(self)
    if record is not None and _state(record) in ("QUEUED", "RUNNING"):
        record["state"] = "CANCELLED"
        record["finished"] = time.time()
    return json.dumps({})


def install():
    from moto.athena.responses import AthenaResponse

    AthenaResponse.start_query_execution = start_query_execution
    AthenaResponse.get_query_execution = get_query_execution
    AthenaResponse.get_query_results = get_query_results
    AthenaResponse.stop_query_execution = stop_query_execution
