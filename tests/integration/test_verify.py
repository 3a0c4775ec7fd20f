"""`das-setup verify` against what the real processor wrote (issue 20 item 5).

A cluster deployed by `das-setup up` receives events in several records, so that several
invocations each append a digest. `verify` must pass on the untouched bucket; then one event
object is altered, one deleted, one added and one digest removed, behind das-setup's back, with
boto3 as anyone holding write access to the bucket would, and `verify` must name each and exit 1.
"""

import json
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, HERE)
from common import EmulatorCase  # noqa: E402
from harness import is_digest, is_event_object, log_time  # noqa: E402

ACCOUNT = "123456789012"
CLUSTER = "verified"
BUCKET = f"das-setup-{CLUSTER}-{ACCOUNT}-eu-west-1"


def pg(test_id, cls, command, text):
    return {"type": "record", "testId": test_id, "class": cls, "command": command, "commandText": text,
            "serverType": "PostgreSQL", "dbUserName": "alice", "databaseName": "shop", "logTime": log_time()}


class VerifyTest(EmulatorCase):
    def keys(self):
        s3 = self.emu.client("s3")
        return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="parsed/").get("Contents", [])]

    def verify(self):
        done = self.run_setup("verify", "--cluster", CLUSTER, "--since", "1h", "--output", "json")
        self.assertTrue(done.stdout, done.stderr)
        return done.returncode, json.loads(done.stdout)

    def test_an_altered_a_deleted_an_added_object_and_a_removed_digest_are_each_named(self):
        cluster = self.emu.cluster(CLUSTER, engine="aurora-postgresql")
        done = self.run_setup("up", "--cluster", CLUSTER, "--arch", "x86_64", "--lambda-zip", self.zip, "--yes")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.emu.wait_for_delivery(f"das-setup-{CLUSTER}")
        stream = f"aws-rds-das-{cluster['DbClusterResourceId']}"
        # One record per buffer interval: one invocation, one digest each.
        deadline = time.time() + 90
        for i in range(4):
            self.emu.admin("inject", {"stream": stream, "events": [
                pg(f"v-{i}-ddl", "DDL", "CREATE TABLE", f"create table t{i} (id int)"),
                pg(f"v-{i}-dml", "WRITE", "INSERT", f"insert into t{i} values (1)")]})
            while len([k for k in self.keys() if is_digest(k)]) <= i and time.time() < deadline:
                time.sleep(0.5)
        digests = sorted(k for k in self.keys() if is_digest(k))
        self.assertGreaterEqual(len(digests), 4, self.emu.admin("firehose"))
        time.sleep(2.5)  # one more buffer interval: nothing still in flight

        code, report = self.verify()
        self.assertEqual(code, 0, json.dumps(report, indent=1))
        self.assertEqual(report["findings"], [])
        self.assertGreaterEqual(report["digests"], 4)
        events = sorted(k for k in self.keys() if is_event_object(k))
        self.assertEqual(report["objects"], len(events), "every event object is listed by a digest")

        # Tampering, as any principal with write access to the bucket could. The digests sort
        # newest first; the one removed has a digest on either side. Its objects are then listed
        # by no digest, so they show as unexpected; the altered and deleted objects are others.
        s3 = self.emu.client("s3")
        removed = digests[1]
        removed_lists = {e["key"] for e in json.loads(
            s3.get_object(Bucket=BUCKET, Key=removed)["Body"].read())["digest"]["objects"]}
        self.assertTrue(removed_lists)
        others = [k for k in events if k not in removed_lists]
        altered, deleted = others[0], others[1]
        s3.put_object(Bucket=BUCKET, Key=altered, Body=b"\x1f\x8b not what was written")
        s3.delete_object(Bucket=BUCKET, Key=deleted)
        added = "parsed/DDL/2026/01/01/00/planted.json.gz"
        s3.put_object(Bucket=BUCKET, Key=added, Body=b"planted")
        s3.delete_object(Bucket=BUCKET, Key=removed)

        # Newer than every digest and minutes old, the planted object could be an invocation's
        # write in progress: reported in flight, not yet a problem (the others already are).
        code, report = self.verify()
        self.assertEqual(code, 1, json.dumps(report, indent=1))
        self.assertEqual(report["inFlight"], [added])
        # Once the pipeline writes again, a digest newer than it does not list it.
        before = len([k for k in self.keys() if is_digest(k)])
        self.emu.admin("inject", {"stream": stream, "events": [pg("v-late", "DDL", "DROP TABLE", "drop table t0")]})
        deadline = time.time() + 60
        while len([k for k in self.keys() if is_digest(k)]) <= before and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(2.5)

        code, report = self.verify()
        self.assertEqual(code, 1, json.dumps(report, indent=1))
        found = {(f["kind"], f["key"]) for f in report["findings"]}
        want = {("altered", altered), ("missing", deleted), ("unexpected", added), ("digest-missing", removed)}
        want |= {("unexpected", k) for k in removed_lists}
        self.assertEqual(found, want, json.dumps(report, indent=1))
        self.assertEqual(report["inFlight"], [])

        # Text for people: each problem named, and the verdict.
        done = self.run_setup("verify", "--cluster", CLUSTER, "--since", "1h")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn(altered, done.stdout)
        self.assertIn("NOT verified", done.stdout)

        done = self.run_setup("down", "--cluster", CLUSTER, "--yes")
        self.assertEqual(done.returncode, 0, done.stderr)
        # After down the function is gone: --bucket and --prefix find the trail.
        done = self.run_setup("verify", "--cluster", CLUSTER, "--bucket", BUCKET, "--prefix", "parsed/",
                              "--since", "1h", "--output", "json")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn(("digest-missing", removed),
                      {(f["kind"], f["key"]) for f in json.loads(done.stdout)["findings"]})


if __name__ == "__main__":
    unittest.main()
