"""Shared by the das-setup integration tests (not a test module itself)."""

import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "emulator"))
from harness import AwsAssertions, Emulator, is_event_object, log_time, zip_bootstrap  # noqa: E402


def binaries():
    """The das-setup binary and the das-processor binary the tests deploy (scripts/test sets both)."""
    setup, processor = os.environ.get("DAS_SETUP_BIN"), os.environ.get("DAS_PROCESSOR_BIN")
    missing = [n for n, p in (("DAS_SETUP_BIN", setup), ("DAS_PROCESSOR_BIN", processor))
               if not p or not os.path.exists(p)]
    if missing:
        raise RuntimeError(f"set {' and '.join(missing)} (scripts/test does)")
    return setup, processor


def leftovers(emu, cluster):
    """What das-setup made for this cluster that still exists, but the bucket (and a stopped stream,
    and its keys but for the statement das-setup adds to the stream key's policy)."""
    base = f"das-setup-{cluster}"
    iam, lam, fh, logs = (emu.client(s) for s in ("iam", "lambda", "firehose", "logs"))
    found = [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(base + "-")]
    found += [f["FunctionName"] for f in lam.list_functions()["Functions"] if f["FunctionName"] == base]
    found += [n for n in fh.list_delivery_streams()["DeliveryStreamNames"] if n == base]
    found += [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]
              if g["logGroupName"].endswith("/" + base)]
    found += [t["TopicArn"] for t in emu.client("sns").list_topics()["Topics"]
              if t["TopicArn"].endswith(f":{base}-alerts")]
    found += [a["AlarmName"] for a in emu.client("cloudwatch").describe_alarms(AlarmNamePrefix=base + "-")["MetricAlarms"]]
    database = base.replace("-", "_")
    found += [d["Name"] for d in emu.client("glue").get_databases()["DatabaseList"] if d["Name"] == database]
    found += [w["Name"] for w in emu.client("athena").list_work_groups()["WorkGroups"] if w["Name"] == base]
    kms = emu.client("kms")
    for alias in kms.list_aliases()["Aliases"]:
        if alias["AliasName"] == f"alias/das-setup/{cluster}" and alias.get("TargetKeyId"):
            policy = kms.get_key_policy(KeyId=alias["TargetKeyId"], PolicyName="default")["Policy"]
            if "CloudWatchAlarmsNotifyTheEncryptedAlertsTopic" in policy:
                found.append(f"the CloudWatch statement in {alias['AliasName']}'s key policy")
    c = emu.client("rds").describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]
    if c.get("ActivityStreamStatus", "stopped") != "stopped":
        found.append(f"activity stream {c['ActivityStreamStatus']}")
    return found


def das_keys(emu, cluster):
    """{KeySpec: [key id]} of the keys das-setup tagged for this cluster that are not pending
    deletion: SYMMETRIC_DEFAULT the activity stream's, ECC_NIST_P384 the digests' signing key."""
    kms = emu.client("kms")
    found = {}
    for key in kms.list_keys()["Keys"]:
        tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]}
        meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
        if tags.get("das-setup:cluster") == cluster and meta["KeyState"] != "PendingDeletion":
            found.setdefault(meta["KeySpec"], []).append(key["KeyId"])
    return found


def pg(test_id, cls, command, text, user="alice", time=None):
    """An Aurora PostgreSQL activity event as DAS gives it, found again by its `testId`; its
    `logTime` is now unless `time` is given."""
    return {"type": "record", "testId": test_id, "class": cls, "command": command, "commandText": text,
            "serverType": "PostgreSQL", "dbUserName": user, "databaseName": "shop",
            "logTime": time or log_time()}


def read_bucket(emu, bucket):
    """What the pipeline left in a bucket: ({testId: [category folder, ...]} for every event under
    parsed/<database>/, [Firehose failure record, ...] under errors/processing-failed/, [(object key,
    event category)] for every event in a folder not its category's). The processor's manifests
    and digests are not events."""
    s3 = emu.client("s3")
    events, failed, misfiled = {}, [], []
    for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        if not is_event_object(o["Key"]) or not o["Key"].startswith(("parsed/", "errors/processing-failed/")):
            continue  # also the raw archive (up --keep-raw): records one after the other, not lines
        body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        text = gzip.decompress(body).decode() if body[:2] == b"\x1f\x8b" else body.decode()
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        if o["Key"].startswith("parsed/"):
            folder = o["Key"].split("/")[2]  # parsed/<database>/<CATEGORY>/...
            for event in lines:
                events.setdefault(event.get("testId"), []).append(folder)
                if event.get("category") != folder:
                    misfiled.append((o["Key"], event.get("category")))
        elif o["Key"].startswith("errors/processing-failed/"):
            failed += lines
    return events, failed, misfiled


class EmulatorCase(AwsAssertions, unittest.TestCase):
    """One emulator per test class, started with `EMULATOR_OPTIONS`, and the processor zip the
    tests deploy (`cls.zip`, made from `cls.code`)."""

    EMULATOR_OPTIONS = ("--activity-stream-delay", "1", "--trickle", "0", "--heartbeat", "2",
                        "--buffer-interval-cap", "1")

    @classmethod
    def setUpClass(cls):
        cls.setup_bin, processor = binaries()
        cls.tmp = tempfile.TemporaryDirectory()
        with open(processor, "rb") as f:
            cls.code = f.read()
        cls.zip = os.path.join(cls.tmp.name, "processor.zip")
        with open(cls.zip, "wb") as f:
            f.write(zip_bootstrap(cls.code))
        cls.emu = Emulator.start(*cls.EMULATOR_OPTIONS)

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        cls.tmp.cleanup()

    def tearDown(self):
        """Every request das-setup and das-processor sent in this test obeys the botocore model
        of its operation (issue 16 C): the emulator checked each one (dasemu/contract.py)."""
        report = self.emu.admin("contract?sdk=rust")
        seen = getattr(type(self), "_contract_seen", 0)
        type(self)._contract_seen = len(report["violations"])
        self.assertEqual(report["violations"][seen:], [], "requests AWS would refuse by its service model")

    def deploy_and_store(self, cluster, bucket, events, *up_flags):
        """`up` for a new Aurora PostgreSQL cluster, then `events` through its activity stream,
        waited for until every one is stored in `bucket`; `up`'s process."""
        self.emu.cluster(cluster, engine="aurora-postgresql")
        done = self.run_setup("up", "--cluster", cluster, "--arch", "x86_64", "--lambda-zip", self.zip, "--yes",
                              *up_flags)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.emu.wait_for_delivery(f"das-setup-{cluster}")
        rid = self.emu.client("rds").describe_db_clusters(
            DBClusterIdentifier=cluster)["DBClusters"][0]["DbClusterResourceId"]
        self.emu.admin("inject", {"stream": f"aws-rds-das-{rid}", "events": events})
        deadline = time.time() + 60
        while not {e["testId"] for e in events} <= set(read_bucket(self.emu, bucket)[0]):
            self.assertLess(time.time(), deadline, self.emu.admin("firehose"))
            time.sleep(0.5)
        return done

    @classmethod
    def run_setup(cls, *args, env=None):
        """The das-setup binary against this emulator, as a user runs it (no terminal)."""
        return subprocess.run([cls.setup_bin, *args], env={**cls.emu.env(), **(env or {})},
                              capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
