"""End to end: nothing lost, duplicated or misfiled (issue 7).

Two databases (Aurora PostgreSQL and Aurora MySQL shapes), each deployed by `das-setup up` with
a filter, receive a known set of events spread over several records, and a few corrupted
records. Once delivered, S3 must hold exactly the events the filter keeps, as a multiset, each
in the folder of its category; every corrupted record must be under the error prefix; `status`
must be healthy; after `down`, nothing das-setup made may remain but the bucket.

The expected categories are written here from the README's classification table, not computed
by the processor's code.
"""

import base64
import datetime
import json
import os
import sys
import time
import unittest
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, HERE)
from common import EmulatorCase, leftovers, read_bucket  # noqa: E402
from common import pg as common_pg  # noqa: E402
from harness import log_time  # noqa: E402

ACCOUNT = "123456789012"
EXCLUDED = {"DQL"}  # up --exclude DQL


def ago(test_id):
    """A logTime some minutes before now, a different one per event (spread over up to two hours:
    which folder an event lands in is its own time's, whatever the clock says at delivery)."""
    return log_time(datetime.timedelta(minutes=7 * int(test_id.split("-")[-1])))


def pg(test_id, cls, command, text, user="alice"):
    return common_pg(test_id, cls, command, text, user, ago(test_id))


def mysql(test_id, command, text, exit_code="0", user="app"):
    return {"type": "record", "testId": test_id, "class": "MAIN", "command": command, "commandText": text,
            "exitCode": exit_code, "serverType": "MySQL", "dbUserName": user, "databaseName": "shop",
            "logTime": ago(test_id)}


# (event, expected category) per engine: the classification table in README.md.
POSTGRES = [
    (pg("pg-0", "DDL", "CREATE TABLE", "create table t (id int)"), "DDL"),
    (pg("pg-1", "WRITE", "INSERT", "insert into t values (1)"), "DML"),
    (pg("pg-2", "WRITE", "UPDATE", "update t set id = 2"), "DML"),
    (pg("pg-3", "READ", "SELECT", "select * from t"), "DQL"),
    (pg("pg-4", "ROLE", "GRANT", "grant select on t to bob"), "DCL"),
    (pg("pg-5", "MISC", "BEGIN", "begin"), "TCL"),
    (pg("pg-6", "CONNECT", "CONNECT", None), "CONNECT"),
    (pg("pg-7", "ERROR", "AUTH FAILURE", None, user="mallory"), "AUTH_FAILURE"),
    (pg("pg-8", "DDL", "DROP TABLE", "drop table t"), "DDL"),
    (pg("pg-9", "READ", "SELECT", "select 1"), "DQL"),
]
MYSQL = [
    (mysql("my-0", "QUERY", "CREATE TABLE t (id INT)"), "DDL"),
    (mysql("my-1", "QUERY", "INSERT INTO t VALUES (1)"), "DML"),
    (mysql("my-2", "QUERY", "SELECT * FROM t"), "DQL"),
    (mysql("my-3", "QUERY", "GRANT SELECT ON t TO bob"), "DCL"),
    (mysql("my-4", "CONNECT", ""), "CONNECT"),
    (mysql("my-5", "FAILED_CONNECT", "", exit_code="1045", user="mallory"), "AUTH_FAILURE"),
    (mysql("my-6", "DISCONNECT", ""), "DISCONNECT"),
    (mysql("my-7", "QUERY", "DELETE FROM t WHERE id = 1"), "DML"),
]
DAMAGES = ["tampered-frame", "truncated", "not-gzip"]


class EndToEndTest(EmulatorCase):
    EMULATOR_OPTIONS = ("--activity-stream-delay", "1", "--trickle", "0", "--heartbeat", "1",
                        "--buffer-interval-cap", "1")

    def test_exactly_the_kept_events_each_in_its_folder_and_every_corrupted_record_in_errors(self):
        deployments = []
        for name, engine, cases in [("e2e-pg", "aurora-postgresql", POSTGRES), ("e2e-my", "aurora-mysql", MYSQL)]:
            cluster = self.emu.cluster(name, engine=engine)
            done = self.run_setup("up", "--cluster", name, "--arch", "x86_64", "--lambda-zip", self.zip, "--yes",
                              "--exclude", ",".join(EXCLUDED))
            self.assertEqual(done.returncode, 0, done.stderr)
            deployments.append((name, cluster["DbClusterResourceId"], cases))
        for name, _, _ in deployments:
            self.emu.wait_for_delivery(f"das-setup-{name}")

        expected = {}
        for name, rid, cases in deployments:
            stream = f"aws-rds-das-{rid}"
            # Events spread over several records, as DAS batches them; a corrupted record between.
            for i in range(0, len(cases), 3):
                self.emu.admin("inject", {"stream": stream, "events": [e for e, _ in cases[i:i + 3]]})
                if i // 3 < len(DAMAGES):
                    self.emu.admin("inject", {"stream": stream, "events": [cases[i][0]],
                                              "damage": DAMAGES[i // 3]})
            bucket = f"das-setup-{name}-{ACCOUNT}-eu-west-1"
            want = Counter({e["testId"]: 1 for e, category in cases if category not in EXCLUDED})
            damaged = min(len(DAMAGES), (len(cases) + 2) // 3)
            expected[name] = (bucket, cases, want, damaged)

        deadline = time.time() + 60
        for name, (bucket, cases, want, damaged) in expected.items():
            while True:
                events, failed, misfiled = read_bucket(self.emu, bucket)
                got = Counter({k: len(v) for k, v in events.items() if k is not None})
                if (got == want and len(failed) >= damaged) or time.time() > deadline:
                    break
                time.sleep(0.5)
            # Settle one more buffer interval: a late duplicate would show now.
            time.sleep(2.5)
            events, failed, misfiled = read_bucket(self.emu, bucket)
            self.assertEqual(misfiled, [], f"{name}: events in a folder not their category's")
            got = Counter({k: len(v) for k, v in events.items() if k is not None})
            self.assertEqual(got, want, f"{name}: events lost or duplicated\n{self.emu.admin('firehose')}")
            for event, category in cases:
                if category not in EXCLUDED:
                    self.assertEqual(events[event["testId"]], [category], event)
            self.assertNotIn(None, events, f"{name}: events nobody injected")
            self.assertEqual(len(failed), damaged, f"{name}: corrupted records under errors/")
            for record in failed:
                self.assertEqual(record["errorCode"], "Lambda.ProcessingFailed")
                self.assertTrue(base64.b64decode(record["rawData"]), record)

            status = self.run_setup("status", "--cluster", name, "--output", "json")
            report = json.loads(status.stdout)
            self.assertEqual(status.returncode, 0, json.dumps(report, indent=1))
            checks = {c["check"]: c["status"] for c in report["checks"]}
            for check in ("activity-stream", "function", "delivery-stream", "freshness"):
                self.assertEqual(checks[check], "OK", report)
            self.assertEqual(checks["failed-records"], "WARN", "the corrupted records are reported")

        for name in expected:
            done = self.run_setup("down", "--cluster", name, "--yes")
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertEqual(leftovers(self.emu, name), [])
            self.emu.client("s3").head_bucket(Bucket=expected[name][0])


if __name__ == "__main__":
    unittest.main()
