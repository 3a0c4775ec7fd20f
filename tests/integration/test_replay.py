"""`das-setup replay` over the raw archive (issue 20 item 4), against the real processor.

A cluster deployed with `--keep-raw --exclude DQL` stores its DDL and drops its reads, while
Firehose's source record backup keeps every record, still encrypted, under raw/. After the filter
is changed to keep reads, `replay --category DQL` re-runs the deployed function over the archive:
the reads it dropped are stored (in objects named replay-...), nothing the live pipeline stored
is stored twice, a second replay rewrites the same objects with the same bytes, `verify` still
passes (the replay's objects are in the digest chain), and a record the function cannot open is
named, with exit 1. Refusals come before any invocation.
"""

import json
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, HERE)
from common import EmulatorCase, pg, read_bucket  # noqa: E402
from harness import is_event_object  # noqa: E402

ACCOUNT = "123456789012"
CLUSTER = "replayed"
BUCKET = f"das-setup-{CLUSTER}-{ACCOUNT}-eu-west-1"


class ReplayTest(EmulatorCase):
    def objects(self, prefix):
        """{key: bytes} of the event objects under a prefix."""
        s3 = self.emu.client("s3")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
        return {k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys if is_event_object(k)}

    def replay(self, *args):
        done = self.run_setup("replay", "--cluster", CLUSTER, "--since", "1h", "--output", "json", *args)
        self.assertTrue(done.stdout, done.stderr)
        return done.returncode, json.loads(done.stdout), done.stderr

    def wait(self, what, condition, timeout=60):
        deadline = time.time() + timeout
        while not condition():
            self.assertLess(time.time(), deadline, f"{what}: {self.emu.admin('firehose')}")
            time.sleep(0.5)

    def test_replay_stores_what_the_filter_dropped_once_idempotently_and_verifiably(self):
        cluster = self.emu.cluster(CLUSTER, engine="aurora-postgresql")
        up = ("up", "--cluster", CLUSTER, "--arch", "x86_64", "--lambda-zip", self.zip, "--keep-raw", "--yes")
        done = self.run_setup(*up, "--exclude", "DQL")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.emu.wait_for_delivery(f"das-setup-{CLUSTER}")
        stream = f"aws-rds-das-{cluster['DbClusterResourceId']}"

        # Nothing to replay yet refuses, naming what is missing.
        self.emu.admin("inject", {"stream": stream, "events": [
            pg("r-ddl", "DDL", "CREATE TABLE", "create table t (id int)"),
            pg("r-read-1", "READ", "SELECT", "select * from t")]})
        self.emu.admin("inject", {"stream": stream, "events": [pg("r-read-2", "READ", "SELECT", "select 2")]})
        self.wait("the live DDL object", lambda: self.objects(f"parsed/{CLUSTER}/DDL/"))
        self.wait("the raw archive", lambda: self.objects("raw/"))
        time.sleep(2.5)  # one more buffer interval: both records delivered
        events, _, misfiled = read_bucket(self.emu, BUCKET)
        self.assertEqual(events, {"r-ddl": ["DDL"]}, "the filter dropped the reads")
        self.assertEqual(misfiled, [])

        # Refusals, before any invocation: a category the deployed filter drops, a bad one.
        code, doc, _ = self.replay("--category", "DQL", "--yes")
        self.assertEqual(code, 2, doc)
        self.assertIn("filter drops DQL", doc["error"])
        code, doc, _ = self.replay("--category", "SELECTS", "--yes")
        self.assertEqual(code, 2, doc)
        self.assertIn("not a category", doc["error"])
        code, doc, _ = self.replay("--until", "2h", "--yes")
        self.assertEqual(code, 2, doc)
        self.assertIn("--until must be later", doc["error"])

        done = self.run_setup(*up)  # the filter now keeps reads
        self.assertEqual(done.returncode, 0, done.stderr)

        code, plan, _ = self.replay("--category", "DQL", "--dry-run")
        self.assertEqual(code, 0, plan)
        self.assertTrue(plan["dryRun"])
        self.assertGreaterEqual(plan["rawObjects"], 1)
        self.assertEqual(plan["categories"], ["DQL"])
        self.assertEqual(self.objects(f"parsed/{CLUSTER}/DQL/"), {}, "a dry run invokes nothing")

        code, doc, stderr = self.replay("--category", "DQL", "--yes")
        self.assertEqual(code, 0, json.dumps(doc, indent=1) + stderr)
        self.assertEqual((doc["failedRecords"], doc["damagedObjects"], doc["stopped"]), ([], [], None))
        self.assertGreaterEqual(doc["records"], 2, "both injected records (and heartbeats) went through")
        events, _, misfiled = read_bucket(self.emu, BUCKET)
        self.assertEqual(events, {"r-ddl": ["DDL"], "r-read-1": ["DQL"], "r-read-2": ["DQL"]},
                         "the reads once each, the DDL not again")
        self.assertEqual(misfiled, [])
        replayed = self.objects(f"parsed/{CLUSTER}/DQL/")
        self.assertTrue(all(k.rsplit("/", 1)[1].startswith("replay-") for k in replayed), replayed.keys())
        for key, body in replayed.items():  # the statement as the live pipeline would store it
            self.assertTrue(body.startswith(b"\x1f\x8b"), key)

        # Again (as people read it), with Lambda throttling twice (429 TooManyRequestsException,
        # Invoke API reference): the same objects with the same bytes.
        self.emu.admin("faults", {"faults": [{"operation": "lambda:Invoke", "kind": "throttle", "times": 2}]})
        done = self.run_setup("replay", "--cluster", CLUSTER, "--since", "1h", "--category", "DQL", "--yes")
        served = [f for f in self.emu.admin("faults")["served"] if f["operation"] == "lambda:Invoke"]
        self.assertEqual(len(served), 2, "the throttles were answered")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("raw archive object(s)", done.stderr)
        self.assertIn(f"s3://{BUCKET}/raw/", done.stderr)
        self.assertIn("replayed: every record of the window went through the function (exit 0)", done.stdout)
        self.assertEqual(self.objects(f"parsed/{CLUSTER}/DQL/"), replayed)
        self.assertEqual(read_bucket(self.emu, BUCKET)[0], events)

        # The replay's objects are in the digest chain.
        done = self.run_setup("verify", "--cluster", CLUSTER, "--since", "1h", "--output", "json")
        report = json.loads(done.stdout)
        self.assertEqual(done.returncode, 0, json.dumps(report, indent=1))
        self.assertEqual(report["findings"], [])

        # A record the function cannot open (live: ProcessingFailed) is named, exit 1; the rest
        # of the window is replayed.
        self.emu.admin("inject", {"stream": stream, "events": [pg("r-bad", "DDL", "DROP TABLE", "drop table t")],
                                  "damage": "tampered-frame"})
        before = set(self.objects("raw/"))
        self.wait("the damaged record's archive object", lambda: set(self.objects("raw/")) - before)
        code, doc, _ = self.replay("--category", "DQL", "--yes")
        self.assertEqual(code, 1, doc)
        [failed] = doc["failedRecords"]
        self.assertIn(failed["object"], set(self.objects("raw/")) - before)
        self.assertEqual(self.objects(f"parsed/{CLUSTER}/DQL/"), replayed, "the other records' objects are unchanged")


if __name__ == "__main__":
    unittest.main()
