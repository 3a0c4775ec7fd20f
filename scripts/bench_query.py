"""Figures of `das-setup query` for BENCHMARKS.md (issue 19 item 5), run by scripts/bench-query.

Stores N events (default 1,000,000) in the emulator's S3 as the processor lays them out (gzip'd
NDJSON objects of 5,000 events, under parsed/<db>/<CATEGORY>/<yyyy/MM/dd/HH>/, over the last 24
hours), then times, each three times, the same GROUP BY:
  - das-setup query (release build, the local engine: DataFusion reading the window's objects
    from the emulator's S3 over HTTP), wall time and peak RSS of the process (getrusage);
  - DuckDB (Python package) over the same objects on local disk: DuckDB's S3 extension (httpfs)
    is downloaded at run time from extensions.duckdb.org, which this machine cannot reach, so the
    reference reads files, which favours it (no HTTP, no listing).
Both answers are checked against the counts the generator kept. Event times come from the
clock, so the window is always the last 24 hours.
"""

import argparse
import collections
import datetime
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "emulator"))
from harness import Emulator  # noqa: E402

BIN = os.path.join(ROOT, "target", "release", "das-setup")
BUCKET = "bench-query"
PREFIX = "parsed/bench/"
PER_OBJECT = 5000
SQL = ("SELECT dbusername, category, count(*) AS n FROM events "
       "GROUP BY dbusername, category ORDER BY n DESC, dbusername, category")
# The categories' shares of a busy OLTP database's trail, and what each event looks like.
MIX = [("DQL", "READ", "SELECT", 0.62), ("DML", "WRITE", "INSERT", 0.24), ("CONNECT", "MISC", "CONNECT", 0.08),
       ("DISCONNECT", "MISC", "DISCONNECT", 0.04), ("DDL", "DDL", "CREATE TABLE", 0.015),
       ("AUTH_FAILURE", "MISC", "AUTH FAILURE", 0.005)]
USERS = [f"app_user_{i}" for i in range(40)] + ["alice", "bob", "etl", "reporting"]


def generate(n, rng, now):
    """{(category, hour folder): [line, ...]} and the expected {(user, category): count}."""
    groups, expected = collections.defaultdict(list), collections.Counter()
    weights = [m[3] for m in MIX]
    for i in range(n):
        category, cls, command, _ = rng.choices(MIX, weights)[0]
        user = rng.choice(USERS)
        t = now - datetime.timedelta(seconds=rng.uniform(0, 23 * 3600))
        event = {
            "type": "record", "clientApplication": "psql", "pid": 10000 + i % 5000, "dbUserName": user,
            "databaseName": "shop", "remoteHost": f"10.0.{i % 7}.{i % 250}", "remotePort": "5432",
            "command": command, "commandText": f"{command.lower()} /* {i} */ from orders where id = {i}",
            "paramList": [], "logTime": t.strftime("%Y-%m-%d %H:%M:%S.%f+00"), "statementId": i % 100,
            "substatementId": 1, "objectType": "TABLE", "objectName": "orders", "rowCount": 1,
            "exitCode": None, "class": cls, "serverVersion": "15.4", "serverType": "PostgreSQL",
            "serviceName": "Amazon Aurora PostgreSQL-Compatible edition", "serverHost": "172.31.0.10",
            "netProtocol": "TCP", "dbProtocol": "Postgres 3.0", "sessionId": f"{i % 900:x}.1a2b",
            "startTime": None, "errorMessage": None, "category": category,
            "clusterId": "cluster-BENCH", "instanceId": "db-BENCH",
        }
        groups[(category, t.strftime("%Y/%m/%d/%H"))].append(json.dumps(event, separators=(",", ":")))
        expected[(user, category)] += 1
    return groups, expected


def store(s3, groups, local_dir):
    objects = stored = 0
    for (category, hour), lines in sorted(groups.items()):
        for start in range(0, len(lines), PER_OBJECT):
            body = gzip.compress(("\n".join(lines[start:start + PER_OBJECT]) + "\n").encode(), 6)
            key = f"{PREFIX}{category}/{hour}/bench-{start // PER_OBJECT:05d}.json.gz"
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
            path = os.path.join(local_dir, key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(body)
            objects += 1
            stored += len(body)
    return objects, stored


def run_measured(argv, env=None):
    """Wall seconds, peak RSS (MiB) and stdout of one run. The peak is the child's own VmHWM
    (/proc/<pid>/status), sampled until it exits: getrusage's ru_maxrss would report this
    script's own size, which Linux carries into a child across fork and exec."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        peak_kib = 0
        while child.poll() is None:
            try:
                with open(f"/proc/{child.pid}/status") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            peak_kib = max(peak_kib, int(line.split()[1]))
            except (FileNotFoundError, ProcessLookupError):
                pass
            time.sleep(0.01)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            sys.exit(f"{argv[0]} failed ({child.returncode}): {err.read().decode()[-2000:]}")
        return wall, peak_kib / 1024, out.read()


DUCKDB = """
import json, sys, time
import duckdb
con = duckdb.connect()
con.execute("SET threads TO 2")
start = time.perf_counter()
rows = con.execute(
    "SELECT dbUserName AS dbusername, category, count(*) AS n FROM read_ndjson_auto(?) "
    "GROUP BY ALL ORDER BY n DESC, dbusername, category", [sys.argv[1]]).fetchall()
took = time.perf_counter() - start
print(json.dumps({"seconds": took, "rows": rows}))
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} missing: run scripts/bench-query")
    rng = random.Random(19)
    now = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.perf_counter()
    groups, expected = generate(args.events, rng, now)
    print(f"generated {args.events:,} events in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    emu = Emulator.start("--trickle", "0")
    try:
        s3 = emu.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        with tempfile.TemporaryDirectory() as local:
            objects, stored = store(s3, groups, local)
            print(f"stored {objects} objects, {stored / 2**20:.1f} MiB gzip'd", file=sys.stderr)
            del groups  # this script's own memory is not what is measured
            want = sorted(((u, c, n) for (u, c), n in expected.items()), key=lambda r: (-r[2], r[0], r[1]))

            argv = [BIN, "query", "--bucket", BUCKET, "--prefix", PREFIX, "--cluster", "bench",
                    "--since", "25h", "--max-rows", "0", "--output", "json", SQL]
            ours, peaks = [], []
            for _ in range(args.runs):
                wall, peak, out = run_measured(argv, env=emu.env())
                doc = json.loads(out)
                got = [(r["dbusername"], r["category"], r["n"]) for r in doc["rows"]]
                if got != want:
                    sys.exit("das-setup query gave a wrong answer")
                ours.append(wall)
                peaks.append(peak)
            theirs, their_peaks, their_query = [], [], []
            for _ in range(args.runs):
                wall, peak, out = run_measured([os.environ["DUCKDB_PYTHON"], "-c", DUCKDB,
                                             os.path.join(local, PREFIX, "*", "*", "*", "*", "*", "*.json.gz")])
                doc = json.loads(out)
                if [tuple(r) for r in doc["rows"]] != want:
                    sys.exit("DuckDB gave a wrong answer")
                theirs.append(wall)
                their_peaks.append(peak)
                their_query.append(doc["seconds"])
    finally:
        emu.stop()
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    print(f"events: {args.events:,} in {objects} objects ({stored / 2**20:.1f} MiB gzip'd), {len(want)} groups")
    print(f"das-setup query (local engine, emulator S3 over HTTP): median {ours_s:.2f} s of {args.runs} "
          f"({', '.join(f'{w:.2f}' for w in ours)}), peak RSS {max(peaks):.0f} MiB, "
          f"{args.events / ours_s / 1e6:.2f} M events/s")
    print("DuckDB 2.0.1 (Python, read_ndjson_auto over local files, 2 threads; wall time includes "
          "starting Python and importing duckdb): "
          f"median {theirs_s:.2f} s of {args.runs} ({', '.join(f'{w:.2f}' for w in theirs)}), "
          f"peak RSS {max(their_peaks):.0f} MiB; the query alone (DuckDB's own timer): median "
          f"{statistics.median(their_query):.2f} s")
    print(f"ratio das-setup / DuckDB: {ours_s / theirs_s:.2f}")
    print(f"target: at most 10 s: {'met' if ours_s <= 10 else 'NOT met'}")


if __name__ == "__main__":
    main()
