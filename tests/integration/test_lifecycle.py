"""The whole lifecycle against the emulator: up -> status -> tail -> break a part -> status ->
down -> status, down from partial states, down twice. Read back with boto3.

  DAS_SETUP_BIN=... DAS_PROCESSOR_BIN=... tests/emulator/python -m unittest discover -s tests/integration
"""

import base64
import datetime
import json
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, HERE)
from common import EmulatorCase, das_keys, leftovers  # noqa: E402
from harness import hour_folder, is_event_object, log_time, zip_bootstrap  # noqa: E402

ACCOUNT = "123456789012"


class LifecycleTest(EmulatorCase):
    EMULATOR_OPTIONS = EmulatorCase.EMULATOR_OPTIONS

    def up(self, cluster, env=None, expect=0):
        done = self.run_setup("up", "--cluster", cluster, "--arch", "x86_64", "--lambda-zip", self.zip, "--yes",
                              env=env)
        self.assertEqual(done.returncode, expect, done.stderr)
        return done

    def status(self, cluster, expect, *extra):
        done = self.run_setup("status", "--cluster", cluster, "--output", "json", *extra)
        report = json.loads(done.stdout)
        self.assertEqual(done.returncode, expect, json.dumps(report, indent=1))
        self.assertEqual(report["exitCode"], expect)
        return {c["check"]: c for c in report["checks"]}, report

    def down(self, cluster, *extra, expect=0):
        done = self.run_setup("down", "--cluster", cluster, "--yes", *extra)
        self.assertEqual(done.returncode, expect, done.stdout + done.stderr)
        return done

    def leftovers(self, cluster):
        return leftovers(self.emu, cluster)

    def assertTailPrintsNoDataKey(self, cluster, rid):
        """tail at its most verbose (every AWS call and the SDK's debug log) decrypts the stream's
        data keys and prints none of them: not as base64, not as hex (issue 15)."""
        stream = f"aws-rds-das-{rid}"
        tail = self.run_setup("-vv", "tail", "--cluster", cluster, "--since", "5m")
        self.assertEqual(tail.returncode, 0, tail.stderr[-2000:])
        self.assertIn("kinesis:GetRecords", tail.stderr, "-v lists the AWS calls")
        self.assertIn("DEBUG", tail.stderr, "-vv adds the SDK's debug log")
        kinesis, kms = self.emu.client("kinesis"), self.emu.client("kms")
        keys = set()
        for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
            it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                            ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            for r in kinesis.get_records(ShardIterator=it, Limit=10000)["Records"]:
                blob = base64.b64decode(json.loads(r["Data"])["key"])
                keys.add(kms.decrypt(CiphertextBlob=blob, EncryptionContext={"aws:rds:dbc-id": rid})["Plaintext"])
        self.assertTrue(keys)
        for key in keys:
            for text in (base64.b64encode(key).decode(), key.hex(), key.hex().upper()):
                self.assertNotIn(text, tail.stderr + tail.stdout)

    def test_up_status_tail_break_status_down_status(self):
        self.emu.cluster("life")
        checks, _ = self.status("life", 3)
        self.assertEqual(checks["deployment"]["status"], "FAIL")

        self.up("life")
        rid = self.emu.client("rds").describe_db_clusters(DBClusterIdentifier="life")["DBClusters"][0]["DbClusterResourceId"]
        self.emu.wait_for_delivery("das-setup-life")
        # Heartbeats only so far: nothing written, and freshness says so.
        checks, _ = self.status("life", 0)
        self.assertEqual(checks["freshness"]["status"], "WARN", checks["freshness"])
        # Events of three days ago, as a pipeline catching up or a database with a skewed clock
        # sends them: filed under that day's hour folder, written now, so fresh.
        old = log_time(datetime.timedelta(days=3))
        events = [
            {"type": "record", "testId": f"tail-{i}", "class": cls, "command": command, "commandText": text,
             "serverType": "PostgreSQL", "dbUserName": "alice", "databaseName": "shop", "logTime": old}
            for i, (cls, command, text) in enumerate([
                ("DDL", "CREATE TABLE", "create table t (id int)"),
                ("WRITE", "INSERT", "insert into t values (1)"),
                ("READ", "SELECT", "select * from t"),
            ])
        ]
        self.emu.admin("inject", {"stream": f"aws-rds-das-{rid}", "events": events})

        # tail reads the shards directly: every injected event, decrypted and classified.
        tail = self.run_setup("tail", "--cluster", "life", "--since", "5m")
        self.assertEqual(tail.returncode, 0, tail.stderr)
        for text, category in [("create table t (id int)", "DDL"), ("insert into t values (1)", "DML"),
                               ("select * from t", "DQL")]:
            [line] = [line for line in tail.stdout.splitlines() if line.endswith(text)]
            self.assertIn(category, line.split())
            self.assertIn("alice@shop", line)
        tail = self.run_setup("tail", "--cluster", "life", "--since", "5m", "--output", "json", "--include", "DDL")
        ids = [json.loads(line).get("testId") for line in tail.stdout.splitlines()]
        self.assertEqual(ids, ["tail-0"])
        # tail takes up's --exclude-users too: alice's events are hidden.
        tail = self.run_setup("tail", "--cluster", "life", "--since", "5m", "--output", "json",
                              "--exclude-users", "alice")
        self.assertEqual(tail.returncode, 0, tail.stderr)
        self.assertEqual([json.loads(line).get("testId") for line in tail.stdout.splitlines()], [])
        # With alert rules, tail marks what matched (README, "Alert rules").
        rules = os.path.join(self.tmp.name, "rules.toml")
        with open(rules, "w") as f:
            f.write('[[rule]]\nname = "alice-reads"\nseverity = "low"\nuser = "alice"\ncategory = "DQL"\n')
        tail = self.run_setup("tail", "--cluster", "life", "--since", "5m", "--output", "json",
                              "--alert-rules", rules)
        self.assertEqual(tail.returncode, 0, tail.stderr)
        marked = {json.loads(line)["testId"]: json.loads(line).get("alerts") for line in tail.stdout.splitlines()}
        self.assertEqual(marked, {"tail-0": None, "tail-1": None, "tail-2": ["alice-reads"]})
        tail = self.run_setup("tail", "--cluster", "life", "--since", "5m", "--alert-rules", rules)
        [line] = [line for line in tail.stdout.splitlines() if "select * from t" in line]
        self.assertTrue(line.endswith("⚑ alice-reads"), line)
        with open(rules, "w") as f:
            f.write('[[rule]]\nname = "bad"\nseverity = "urgent"\nuser = "alice"\n')
        tail = self.run_setup("tail", "--cluster", "life", "--since", "5m", "--alert-rules", rules)
        self.assertEqual(tail.returncode, 2)
        self.assertIn('rule "bad": severity', tail.stderr)
        self.assertTailPrintsNoDataKey("life", rid)

        # Healthy once the events reach the bucket and CloudWatch has the invocations' metrics
        # (the runner records a run's datapoints once it returns; AWS's arrive minutes later).
        metrics = ("iterator-age", "firehose-processing", "function-errors", "function-throttles")
        deadline = time.time() + 30
        while True:
            checks, report = self.status("life", 0)
            if (checks["freshness"]["status"] == "OK"
                    and all(checks[m]["status"] != "UNKNOWN" for m in metrics)) or time.time() > deadline:
                break
            time.sleep(1)
        self.assertEqual(report["health"], "healthy", json.dumps(report, indent=1))
        for name in ("activity-stream", "kinesis-stream", "function", "delivery-stream", "processor-role",
                     "firehose-role", "bucket", "freshness", "failed-records"):
            self.assertEqual(checks[name]["status"], "OK", checks[name])
        # CloudWatch's view, from what the emulator's Firehose and Lambda really did (served in
        # the RPC v2 CBOR protocol the SDK speaks): the read lag, processing, errors, throttles.
        for name in metrics:
            self.assertEqual(checks[name]["status"], "OK", checks[name])
        self.assertIn("processing success 100%", checks["firehose-processing"]["detail"])
        bucket = f"das-setup-life-{ACCOUNT}-eu-west-1"
        keys = [o["Key"] for o in self.emu.client("s3").list_objects_v2(Bucket=bucket)["Contents"]]
        events_keys = [k for k in keys if k.startswith("parsed/") and is_event_object(k)]
        self.assertTrue(events_keys)
        for key in events_keys:
            self.assertEqual(key.split("/")[3:7], hour_folder(old).split("/"), key)  # parsed/life/<CATEGORY>/

        # Break a part behind das-setup's back: status fails and names it.
        self.emu.client("lambda").delete_function(FunctionName="das-setup-life")
        checks, report = self.status("life", 2)
        self.assertEqual(report["health"], "failing")
        self.assertEqual(checks["function"]["status"], "FAIL")
        self.assertIn("does not exist", checks["function"]["detail"])
        text = self.run_setup("status", "--cluster", "life")
        self.assertEqual(text.returncode, 2)
        self.assertRegex(text.stdout, r"FAIL\s+function\s+das-setup-life does not exist")

        # up repairs it; a wrong delivery stream processor is caught too.
        self.up("life")
        self.status("life", 0)

        # down removes everything but the bucket; status: not deployed; down again: nothing to do.
        self.down("life")
        self.assertEqual(self.leftovers("life"), [])
        self.emu.client("s3").head_bucket(Bucket=f"das-setup-life-{ACCOUNT}-eu-west-1")
        self.status("life", 3)
        again = self.down("life")
        self.assertIn("Nothing to delete", again.stdout)

    def test_a_stream_restarted_behind_our_back_is_seen_by_status_and_replaced_by_up(self):
        """RDS deletes the Kinesis stream on stop and makes a new one of the same name on start;
        the delivery stream still points at the old one and reads nothing (issue 16 A)."""
        from common import read_bucket

        self.emu.cluster("phoenix")
        self.up("phoenix")
        rds = self.emu.client("rds")
        c = rds.describe_db_clusters(DBClusterIdentifier="phoenix")["DBClusters"][0]
        key, arn = c["ActivityStreamKmsKeyId"], c["DBClusterArn"]
        rds.stop_activity_stream(ResourceArn=arn, ApplyImmediately=True)
        deadline = time.time() + 30
        while rds.describe_db_clusters(DBClusterIdentifier="phoenix")["DBClusters"][0].get(
                "ActivityStreamStatus", "stopped") != "stopped" and time.time() < deadline:
            time.sleep(0.3)
        checks, _ = self.status("phoenix", 2)
        self.assertIn("source Kinesis stream no longer exists", checks["delivery-stream"]["detail"])
        time.sleep(1.1)  # the new stream's creation time is later to the second
        rds.start_activity_stream(ResourceArn=arn, Mode="async", KmsKeyId=key, ApplyImmediately=True)
        while rds.describe_db_clusters(DBClusterIdentifier="phoenix")["DBClusters"][0].get(
                "ActivityStreamStatus") != "started" and time.time() < deadline + 30:
            time.sleep(0.3)
        checks, _ = self.status("phoenix", 2)
        self.assertIn("created anew", checks["delivery-stream"]["detail"])

        plan = self.run_setup("up", "--cluster", "phoenix", "--arch", "x86_64", "--lambda-zip", self.zip,
                              "--dry-run")
        self.assertIn("created anew", plan.stdout)
        self.up("phoenix")
        checks, _ = self.status("phoenix", 0)
        self.assertEqual(checks["delivery-stream"]["status"], "OK", checks["delivery-stream"])
        # And events flow again through the new stream, once the new delivery stream reads it
        # (the old one's report carries its read errors; the new one starts clean).
        deadline = time.time() + 15
        while self.emu.admin("firehose").get("das-setup-phoenix", {"errors": [1]})["errors"]:
            self.assertLess(time.time(), deadline, self.emu.admin("firehose"))
            time.sleep(0.2)
        time.sleep(1)
        event = {"type": "record", "testId": "phoenix-1", "class": "DDL", "command": "CREATE TABLE",
                 "serverType": "PostgreSQL", "dbUserName": "alice", "logTime": log_time()}
        self.emu.admin("inject", {"stream": c["DbClusterResourceId"], "events": [event]})
        deadline = time.time() + 30
        while "phoenix-1" not in read_bucket(self.emu, f"das-setup-phoenix-{ACCOUNT}-eu-west-1")[0]:
            self.assertLess(time.time(), deadline, self.emu.admin("firehose"))
            time.sleep(0.5)
        self.down("phoenix")

    def test_tail_follow_and_delivery_go_on_across_a_reshard(self):
        """RDS reshards the stream when it needs to: both readers, `tail --follow` and Firehose,
        go on in the child shards (issue 16 A7 and B; dasemu/resharding.py)."""
        import subprocess

        from common import read_bucket

        self.emu.cluster("split")
        self.up("split")
        rid = self.emu.client("rds").describe_db_clusters(DBClusterIdentifier="split")["DBClusters"][0][
            "DbClusterResourceId"]
        bucket = f"das-setup-split-{ACCOUNT}-eu-west-1"
        self.emu.wait_for_delivery("das-setup-split")
        time.sleep(1)
        tail = subprocess.Popen([self.setup_bin, "--output", "json", "tail", "--cluster", "split", "--follow"],
                                env=self.emu.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            def event(test_id):
                return {"type": "record", "testId": test_id, "class": "DDL", "command": "CREATE TABLE",
                        "serverType": "PostgreSQL", "dbUserName": "alice", "logTime": log_time()}

            def stored(test_id):
                deadline = time.time() + 30
                while test_id not in read_bucket(self.emu, bucket)[0]:
                    self.assertLess(time.time(), deadline, self.emu.admin("firehose"))
                    time.sleep(0.5)

            time.sleep(2)  # tail has its iterators
            self.emu.admin("inject", {"stream": rid, "events": [event("split-before")]})
            stored("split-before")
            opened = self.emu.admin("reshard", {"stream": rid})["open"]
            self.assertEqual(len(opened), 2)
            self.emu.admin("inject", {"stream": rid, "events": [event("split-after")]})
            stored("split-after")
            time.sleep(3)  # a few of tail's polls
        finally:
            tail.terminate()
            out, err = tail.communicate(timeout=10)
        seen = [json.loads(line).get("testId") for line in out.splitlines() if line.startswith("{")]
        self.assertIn("split-before", seen, err[-2000:])
        self.assertIn("split-after", seen, err[-2000:])
        self.down("split")

    def test_status_strict_turns_warnings_into_exit_1(self):
        self.emu.cluster("quiet")
        self.up("quiet")
        # No events at all: freshness warns.
        checks, report = self.status("quiet", 0)
        self.assertEqual(checks["freshness"]["status"], "WARN")
        self.assertEqual(report["health"], "degraded")
        self.status("quiet", 1, "--strict")
        self.down("quiet")

    def mutating_calls_of_a_full_up(self, name):
        """How many mutating calls `up` makes from nothing (its JSON report, checked against the
        emulator's call log)."""
        self.emu.cluster(name)
        before = len(self.emu.calls(app="das-setup"))
        done = self.run_setup("up", "--cluster", name, "--arch", "x86_64", "--lambda-zip", self.zip, "--yes",
                              "--output", "json")
        self.assertEqual(done.returncode, 0, done.stderr)
        reported = json.loads(done.stdout)["mutatingCalls"]
        logged = sum(1 for c in self.emu.calls(app="das-setup")[before:] if c["mutating"])
        self.assertEqual(reported, logged)
        self.down(name, "--delete-key")
        return reported

    def test_down_cleans_up_after_any_partial_up(self):
        # up stopped after its k-th mutating call, for every k: down leaves nothing but the bucket.
        for k in range(1, self.mutating_calls_of_a_full_up("count-part")):
            name = f"part-{k}"
            self.emu.cluster(name)
            done = self.up(name, env={"DAS_SETUP_TEST_STOP_AFTER_MUTATIONS": str(k)}, expect=1)
            self.assertIn("test switch", done.stderr)
            self.down(name, "--delete-key")
            self.assertEqual(self.leftovers(name), [], f"after a partial up stopped at call {k}")
            keys = das_keys(self.emu, name)
            self.assertNotIn("SYMMETRIC_DEFAULT", keys, f"a key left after a partial up stopped at call {k}")
            # The signing key stays with the bucket it signs for, made or not: at most one.
            self.assertLessEqual(len(keys.get("ECC_NIST_P384", [])), 1, (k, keys))
            self.assertIn("Nothing to delete", self.down(name).stdout)

    def test_up_again_converges_after_any_partial_up(self):
        # up stopped after its k-th mutating call, for every k; the next up finishes the job, and
        # the one after has nothing to change: the same end state as an uninterrupted run.
        for k in range(1, self.mutating_calls_of_a_full_up("count-conv")):
            name = f"conv-{k}"
            self.emu.cluster(name)
            self.up(name, env={"DAS_SETUP_TEST_STOP_AFTER_MUTATIONS": str(k)}, expect=1)
            self.up(name)
            again = self.up(name)
            self.assertIn("Nothing to change", again.stdout, f"stopped at call {k}")
            checks, _ = self.status(name, 0)
            for check in ("activity-stream", "function", "delivery-stream", "processor-role", "firehose-role",
                          "bucket"):
                self.assertEqual(checks[check]["status"], "OK", (k, checks[check]))
            self.assertEqual({spec: len(ids) for spec, ids in das_keys(self.emu, name).items()},
                             {"SYMMETRIC_DEFAULT": 1, "ECC_NIST_P384": 1},
                             f"one key of each, not one per run (stopped at call {k})")
            self.down(name, "--delete-key")

    def test_down_with_delete_bucket_empties_every_version(self):
        self.emu.cluster("wipe")
        self.up("wipe")
        bucket = f"das-setup-wipe-{ACCOUNT}-eu-west-1"
        s3 = self.emu.client("s3")
        for i in range(3):
            s3.put_object(Bucket=bucket, Key="parsed/DDL/x.json.gz", Body=b"v%d" % i)
        s3.delete_object(Bucket=bucket, Key="parsed/DDL/x.json.gz")
        dry = self.run_setup("down", "--cluster", "wipe", "--delete-bucket", "--dry-run")
        self.assertEqual(dry.returncode, 0)
        s3.head_bucket(Bucket=bucket)
        refused = self.run_setup("down", "--cluster", "wipe", "--delete-bucket")
        self.assertEqual(refused.returncode, 2, "no --yes and no terminal: refused")
        self.assertIn("pass --yes", refused.stderr)
        self.down("wipe", "--delete-bucket", "--delete-key")
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        self.assertNotIn(bucket, names)
        key = self.emu.client("kms").list_aliases()["Aliases"]
        self.assertNotIn("alias/das-setup/wipe", [a["AliasName"] for a in key])

    def test_down_leaves_resources_it_did_not_create(self):
        self.emu.cluster("foreign")
        iam = self.emu.client("iam")
        iam.create_role(RoleName="das-setup-foreign-processor", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                    "Action": "sts:AssumeRole"}]}))
        # A function of das-setup's name that das-setup did not make, and its log group (Lambda
        # logs to /aws/lambda/<function>): both stay.
        role = iam.get_role(RoleName="das-setup-foreign-processor")["Role"]["Arn"]
        self.emu.client("lambda").create_function(
            FunctionName="das-setup-foreign", Runtime="provided.al2023", Handler="bootstrap", Role=role,
            Code={"ZipFile": zip_bootstrap(b"#!/bin/sh\n")})
        logs = self.emu.client("logs")
        logs.create_log_group(logGroupName="/aws/lambda/das-setup-foreign")
        done = self.down("foreign")
        self.assertIn("not das-setup's, left alone", done.stdout)
        self.assertRegex(done.stdout, r"/aws/lambda/das-setup-foreign.*function das-setup-foreign, which is not das-setup's")
        iam.get_role(RoleName="das-setup-foreign-processor")
        self.emu.client("lambda").get_function(FunctionName="das-setup-foreign")
        groups = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
        self.assertIn("/aws/lambda/das-setup-foreign", groups)


if __name__ == "__main__":
    unittest.main()
