"""`das-setup query` (issue 19 items 3 and 6): known events in through the real pipeline (the
activity stream, Firehose, the processor), exact answers out of the local engine, for every saved
query and for an arbitrary GROUP BY; only the objects of the window's hours (and of the categories
a `category` filter leaves) are read; the trail is read-only.
"""

import datetime
import gzip
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, HERE)
from common import EmulatorCase, pg  # noqa: E402
from harness import hour_folder, log_time  # noqa: E402

ACCOUNT = "123456789012"
CLUSTER = "searched"
BUCKET = f"das-setup-{CLUSTER}-{ACCOUNT}-eu-west-1"
PREFIX = f"parsed/{CLUSTER}/"


def event(test_id, cls, command, text, user, session, host="10.0.0.5", **more):
    return {**pg(test_id, cls, command, text, user=user), "sessionId": session, "remoteHost": host, **more}


EVENTS = [
    event("q-ddl-1", "DDL", "CREATE TABLE", "create table orders (id int)", "alice", "101"),
    event("q-ddl-2", "DDL", "DROP TABLE", "drop table old_orders", "bob", "202"),
    event("q-dcl-1", "ROLE", "GRANT", "grant select on orders to bob", "alice", "101"),
    event("q-fail-1", "", "AUTH FAILURE", "", "mallory", "303", host="203.0.113.9",
          errorMessage="password authentication failed"),
    event("q-fail-2", "", "AUTH FAILURE", "", "mallory", "304", host="203.0.113.10",
          errorMessage="password authentication failed"),
    event("q-read-1", "READ", "SELECT", "select * from orders", "alice", "101"),
    event("q-read-2", "READ", "SELECT", "select 1", "bob", "202"),
    event("q-write-1", "WRITE", "INSERT", "insert into orders values (1)", "bob", "202", exitCode=0),
]


class QueryTest(EmulatorCase):
    def query(self, *args):
        done = self.run_setup("query", "--cluster", CLUSTER, "--output", "json", *args)
        self.assertTrue(done.stdout, done.stderr)
        return done.returncode, json.loads(done.stdout)

    def rows(self, *args):
        code, doc = self.query(*args)
        self.assertEqual(code, 0, json.dumps(doc, indent=1))
        return doc["rows"]

    def test_known_events_give_exact_answers_reading_only_the_windows_partitions(self):
        self.deploy_and_store(CLUSTER, BUCKET, EVENTS)

        # An object three days old, where the processor would have filed it: outside a 24 h
        # window, inside a 7 d one.
        old = log_time(datetime.timedelta(days=3))
        ghost = {**event("q-old", "DDL", "CREATE TABLE", "create table ghost (id int)", "ghost", "9"),
                 "logTime": old, "category": "DDL"}
        old_key = f"{PREFIX}DDL/{hour_folder(old)}/20200101T000000Z-old.json.gz"
        s3 = self.emu.client("s3")
        s3.put_object(Bucket=BUCKET, Key=old_key, Body=gzip.compress((json.dumps(ghost) + "\n").encode()))

        # Every saved query, exact answers.
        fails = self.rows("--saved", "failed-logins")
        self.assertEqual(sorted((r["dbusername"], r["remotehost"], r["errormessage"]) for r in fails), [
            ("mallory", "203.0.113.10", "password authentication failed"),
            ("mallory", "203.0.113.9", "password authentication failed")])
        self.assertEqual(sorted(r["commandtext"] for r in self.rows("--saved", "ddl")),
                         ["create table orders (id int)", "drop table old_orders"])
        self.assertEqual([(r["dbusername"], r["command"], r["commandtext"])
                          for r in self.rows("--saved", "privilege-changes")],
                         [("alice", "GRANT", "grant select on orders to bob")])
        self.assertEqual(self.rows("--saved", "top-users"), [
            {"dbusername": "mallory", "category": "AUTH_FAILURE", "events": 2},
            {"dbusername": "alice", "category": "DCL", "events": 1},
            {"dbusername": "alice", "category": "DDL", "events": 1},
            {"dbusername": "alice", "category": "DQL", "events": 1},
            {"dbusername": "bob", "category": "DDL", "events": 1},
            {"dbusername": "bob", "category": "DML", "events": 1},
            {"dbusername": "bob", "category": "DQL", "events": 1}])
        self.assertEqual(sorted((r["category"], r["commandtext"]) for r in
                                self.rows("--saved", "user-activity", "--user", "alice")),
                         [("DCL", "grant select on orders to bob"), ("DDL", "create table orders (id int)"),
                          ("DQL", "select * from orders")])
        session = self.rows("--saved", "session", "--session", "202")
        self.assertEqual(sorted(r["commandtext"] for r in session),
                         ["drop table old_orders", "insert into orders values (1)", "select 1"])
        self.assertEqual({r["dbusername"] for r in session}, {"bob"})

        # An arbitrary GROUP BY; numbers stay numbers, a number field is its JSON text.
        hour_before = hour_folder(log_time())
        code, doc = self.query("SELECT category, count(*) AS n FROM events GROUP BY category ORDER BY category")
        hour_after = hour_folder(log_time())
        self.assertEqual(code, 0, doc)
        self.assertEqual(doc["columns"], ["category", "n"])
        self.assertEqual([(r["category"], r["n"]) for r in doc["rows"]],
                         [("AUTH_FAILURE", 2), ("DCL", 1), ("DDL", 2), ("DML", 1), ("DQL", 2)])
        self.assertEqual(self.rows("SELECT exitcode FROM events WHERE category = 'DML'"), [{"exitcode": "0"}])
        self.assertEqual(doc["bucket"], BUCKET)
        self.assertEqual(doc["prefix"], PREFIX)
        self.assertIn(doc["window"]["lastHour"], {hour_before, hour_after}, "the window ends now")
        self.assertNotIn(old_key, json.dumps(doc), "the old object is outside the window")

        # The 7 d window reads the old object too.
        self.assertEqual(sorted(r["commandtext"] for r in self.rows("--saved", "ddl", "--since", "7d")),
                         ["create table ghost (id int)", "create table orders (id int)", "drop table old_orders"])

        # A category filter reads only that category's objects; the other folders are not even
        # listed.
        before = len(self.emu.calls(app="das-setup"))
        code, doc = self.query("SELECT count(*) AS n FROM events WHERE category = 'DDL'", "--since", "7d")
        self.assertEqual((code, doc["rows"]), (0, [{"n": 3}]), doc)
        s3_calls = [c for c in self.emu.calls(app="das-setup")[before:] if c["service"] == "s3"]
        read = [c["op"] for c in s3_calls if c["operation"] == "s3:GetObject"]
        self.assertTrue(read and all(op.startswith(f"GET /{BUCKET}/{PREFIX}DDL/") for op in read), s3_calls)
        self.assertEqual(doc["objectsRead"], len(read))
        listings = [c for c in s3_calls if c["operation"] == "s3:ListObjectsV2"]
        self.assertEqual(len(listings), 1, listings)
        self.assertIn("prefix=" + f"{PREFIX}DDL/".replace("/", "%2F"), listings[0]["query"])

        # CSV and the table for people.
        done = self.run_setup("query", "--cluster", CLUSTER, "--output", "csv",
                              "SELECT dbusername, count(*) AS n FROM events GROUP BY dbusername ORDER BY dbusername")
        self.assertEqual((done.returncode, done.stdout), (0, "dbusername,n\nalice,3\nbob,3\nmallory,2\n"), done.stderr)
        done = self.run_setup("query", "--cluster", CLUSTER, "--saved", "privilege-changes")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("| grant select on orders to bob", done.stdout)
        self.assertIn("1 row(s); read 1 object(s)", done.stderr)

        # The same questions on Athena (the emulator runs them with DuckDB over the Glue table's
        # projected partitions), the same answers, in the same windows.
        for args in [("--saved", "failed-logins"), ("--saved", "ddl"), ("--saved", "privilege-changes"),
                     ("--saved", "top-users"), ("--saved", "user-activity", "--user", "alice"),
                     ("--saved", "session", "--session", "202"), ("--saved", "ddl", "--since", "7d"),
                     ("SELECT category, count(*) AS n FROM events GROUP BY category ORDER BY category",),
                     ("SELECT exitcode FROM events WHERE category = 'DML'",)]:
            self.assertEqual(self.rows(*args, "--engine", "athena"), self.rows(*args), args)
        before = len(self.emu.calls(app="das-setup"))
        code, doc = self.query("SELECT dbusername, count(*) AS n FROM events GROUP BY dbusername "
                               "ORDER BY dbusername", "--engine", "athena", "--max-rows", "2")
        self.assertEqual(code, 0, doc)
        self.assertEqual((doc["rows"], doc["truncated"]), ([{"dbusername": "alice", "n": 3},
                                                            {"dbusername": "bob", "n": 3}], True))
        self.assertEqual((doc["engine"], doc["workgroup"], doc["glueDatabase"]),
                         ("athena", f"das-setup-{CLUSTER}", f"das_setup_{CLUSTER}"))
        self.assertGreater(doc["bytesScanned"], 0)
        results = doc["resultsLocation"]
        self.assertEqual(results, f"s3://{BUCKET}/athena-results/{CLUSTER}/{doc['queryExecutionId']}.csv")
        stored = s3.get_object(Bucket=BUCKET, Key=results.split("/", 3)[3])["Body"].read().decode()
        self.assertEqual(stored.splitlines()[0], '"dbusername","n"')
        polled = [c["operation"] for c in self.emu.calls(app="das-setup")[before:] if c["service"] == "athena"]
        self.assertEqual(polled[0], "athena:StartQueryExecution")
        self.assertGreater(polled.count("athena:GetQueryExecution"), 1, "Athena was polled until the query ended")
        self.assertIn("athena:GetQueryResults", polled)
        # Athena throttles (400 TooManyRequestsException) and fails a start (500): retried.
        self.emu.admin("faults", {"faults": [
            {"operation": "athena:GetQueryExecution", "kind": "throttle", "times": 2},
            {"operation": "athena:StartQueryExecution", "kind": "server", "times": 1}]})
        self.assertEqual(self.rows("--saved", "privilege-changes", "--engine", "athena"),
                         self.rows("--saved", "privilege-changes"))
        served = [f["operation"] for f in self.emu.admin("faults")["served"] if f["operation"].startswith("athena:")]
        self.assertEqual(sorted(served), ["athena:GetQueryExecution", "athena:GetQueryExecution",
                                          "athena:StartQueryExecution"])
        # A query Athena fails: its reason, exit code 1. One that outlasts --timeout: stopped.
        code, doc = self.query("SELECT nosuchcolumn FROM events", "--engine", "athena")
        self.assertEqual(code, 1, doc)
        self.assertIn("FAILED", doc["error"])
        self.assertIn("nosuchcolumn", doc["error"])
        code, doc = self.query("SELECT count(*) FROM events", "--engine", "athena", "--timeout", "0")
        self.assertEqual(code, 1, doc)
        self.assertIn("it was stopped", doc["error"])

        # Read-only, and refusals that name what is wrong, before any AWS call.
        before = len(self.emu.calls(app="das-setup"))
        for args, message in [
            (("DROP TABLE events",), "read-only"),
            (("COPY (SELECT 1) TO '/tmp/x.csv'",), "read-only"),
            (("SELECT 1; SELECT 2",), "one statement at a time"),
            (("--saved", "nope"), "no such saved query"),
            (("--saved", "user-activity"), "needs --user"),
            (("SELECT 1", "--since", "yesterday"), "--since"),
            (("--saved", "ddl", "--user", "alice"), "--user is a parameter of a saved query that takes it"),
        ]:
            code, doc = self.query(*args)
            self.assertEqual(code, 2, doc)
            self.assertIn(message, doc["error"])
        self.assertEqual(self.emu.calls(app="das-setup")[before:], [], "refused before any call")
        code, doc = self.query("SELECT nosuchcolumn FROM events")
        self.assertEqual(code, 1, doc)
        self.assertIn("nosuchcolumn", doc["error"])

        # The list of saved queries, for people and scripts.
        done = self.run_setup("query", "--cluster", CLUSTER, "--list-saved", "--output", "json")
        names = [s["name"] for s in json.loads(done.stdout)["saved"]]
        self.assertEqual(names, ["failed-logins", "ddl", "privilege-changes", "top-users", "user-activity", "session"])


if __name__ == "__main__":
    unittest.main()
