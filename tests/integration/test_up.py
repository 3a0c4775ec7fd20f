"""`das-setup up` against the local emulator, read back through the AWS APIs with boto3 (not
through das-setup's own structs), with the emulator's call log as the witness of what changed.

  DAS_SETUP_BIN=target/debug/das-setup DAS_PROCESSOR_BIN=<stripped das-processor> \\
      tests/emulator/python -m unittest discover -s tests/integration -v

scripts/test (`make test`) sets both.
"""

import gzip
import json
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
from harness import hour_folder, is_event_object, log_time, zip_bootstrap  # noqa: E402

sys.path.insert(0, HERE)
from common import EmulatorCase, das_keys  # noqa: E402

ACCOUNT = "123456789012"
DELAY = 3  # seconds the emulator's activity streams spend `starting` (the D)


class UpTest(EmulatorCase):
    EMULATOR_OPTIONS = ("--activity-stream-delay", str(DELAY), "--trickle", "0", "--heartbeat", "2",
                        "--buffer-interval-cap", "1")

    def up(self, *args, expect=0, zip_path=None):
        """Runs das-setup up; returns (stdout, stderr, mutating calls it made, seconds)."""
        before = len(self.emu.calls(app="das-setup"))
        start = time.monotonic()
        arch = [] if "--arch" in args else ["--arch", "x86_64"]
        done = self.run_setup("up", *arch, "--lambda-zip", zip_path or self.zip, *args)
        took = time.monotonic() - start
        self.assertEqual(done.returncode, expect, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")
        calls = self.emu.calls(app="das-setup")[before:]
        return done.stdout, done.stderr, [c["op"] for c in calls if c["mutating"]], took

    def names(self, cluster):
        base = f"das-setup-{cluster}"
        return {"function": base, "stream": base, "processor_role": f"{base}-processor",
                "firehose_role": f"{base}-firehose", "bucket": f"{base}-{ACCOUNT}-eu-west-1",
                "signing_key": f"alias/das-setup/digests/{cluster}", "cluster": cluster}

    def resource_id(self, cluster):
        return self.emu.client("rds").describe_db_clusters(
            DBClusterIdentifier=cluster)["DBClusters"][0]["DbClusterResourceId"]

    # --- the "done when" ----------------------------------------------------------

    def test_up_from_nothing_builds_every_resource_as_specified_and_a_second_up_changes_nothing(self):
        self.emu.cluster("alpha")
        out, err, mutating, took = self.up("--cluster", "alpha", "--yes", "--retention-days", "400")
        self.assertIn("12 to create", out)
        self.assertLess(took, DELAY + 15, f"up took {took:.1f}s; the target is D + 15 s\n{err}")
        print(f"\n  up from nothing: {took:.1f}s with the activity stream starting in {DELAY}s "
              f"({len(mutating)} mutating calls)", file=sys.stderr)
        n = self.names("alpha")
        rid = self.resource_id("alpha")
        self.check_key_and_stream("alpha", rid)
        self.check_bucket(n["bucket"], retention=400)
        self.check_roles(n, rid)
        self.check_logs(n)
        self.check_function(n)
        self.check_delivery(n, rid)

        # Again, same flags: nothing to do, and not one mutating call.
        out, _, mutating, _ = self.up("--cluster", "alpha", "--yes", "--retention-days", "400")
        self.assertIn("Nothing to change", out)
        self.assertIn("0 to create, 0 to update, 0 to replace, 14 unchanged", out)
        self.assertEqual(mutating, [])

        # The pipeline runs: injected events land decrypted in their category folders.
        when = log_time()
        events = [
            {"type": "record", "testId": "up-ddl", "class": "DDL", "command": "CREATE TABLE",
             "serverType": "PostgreSQL", "dbUserName": "alice", "logTime": when},
            {"type": "record", "testId": "up-read", "class": "READ", "command": "SELECT",
             "serverType": "PostgreSQL", "dbUserName": "alice", "logTime": when},
        ]
        # Firehose reads its Kinesis source from LATEST, from when it starts reading: wait for the
        # emulator's Firehose to be reading, as AWS's would be shortly after ACTIVE.
        self.emu.wait_for_delivery(n["stream"])
        time.sleep(1)
        self.emu.admin("inject", {"stream": f"aws-rds-das-{rid}", "events": events})
        found = self.wait_events(n["bucket"], {"up-ddl", "up-read"})
        self.assertTrue(found["up-ddl"].startswith(f"parsed/alpha/DDL/{hour_folder(when)}/"), found)
        self.assertTrue(found["up-read"].startswith(f"parsed/alpha/DQL/{hour_folder(when)}/"), found)

    def check_key_and_stream(self, cluster, rid):
        kms = self.emu.client("kms")
        aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
        key_id = aliases[f"alias/das-setup/{cluster}"]
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        self.assertEqual((meta["KeySpec"], meta["KeyManager"], meta["KeyState"]),
                         ("SYMMETRIC_DEFAULT", "CUSTOMER", "Enabled"))
        tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}
        self.assertEqual(tags, {"managed-by": "das-setup", "das-setup:cluster": cluster})
        c = self.emu.client("rds").describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]
        self.assertEqual(c["ActivityStreamStatus"], "started")
        self.assertEqual(c["ActivityStreamMode"], "async")
        self.assertIn(key_id, c["ActivityStreamKmsKeyId"])
        self.assertEqual(c["ActivityStreamKinesisStreamName"], f"aws-rds-das-{rid}")

    def check_bucket(self, bucket, retention):
        s3 = self.emu.client("s3")
        pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        self.assertTrue(all(pab.values()) and len(pab) == 4, pab)
        rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
        self.assertEqual(rules, [{"ObjectOwnership": "BucketOwnerEnforced"}])
        enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        self.assertEqual(enc["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"], "AES256")
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        [deny] = policy["Statement"]
        self.assertEqual((deny["Effect"], deny["Condition"]),
                         ("Deny", {"Bool": {"aws:SecureTransport": "false"}}))
        self.assertEqual(s3.get_bucket_versioning(Bucket=bucket)["Status"], "Enabled")
        rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
        self.assertEqual(sorted(rules), ["das-setup-retention", "das-setup-retention-athena-results"])
        rule = rules["das-setup-retention"]
        self.assertEqual(rule["Expiration"], {"Days": retention})
        self.assertEqual(rule["AbortIncompleteMultipartUpload"], {"DaysAfterInitiation": 7})
        results = rules["das-setup-retention-athena-results"]
        self.assertEqual((results["Filter"]["Prefix"], results["Expiration"]), ("athena-results/", {"Days": 7}))
        tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
        self.assertEqual(tags["managed-by"], "das-setup")

    def check_roles(self, n, rid):
        iam = self.emu.client("iam")
        key_arn = self.emu.client("kms").describe_key(KeyId="alias/das-setup/alpha")["KeyMetadata"]["Arn"]
        role = iam.get_role(RoleName=n["processor_role"])["Role"]
        [trust] = role["AssumeRolePolicyDocument"]["Statement"]
        self.assertEqual(trust["Principal"], {"Service": "lambda.amazonaws.com"})
        self.assertEqual(trust["Condition"], {"StringEquals": {"aws:SourceAccount": ACCOUNT}})
        self.assertIn({"Key": "managed-by", "Value": "das-setup"}, role["Tags"])
        doc = iam.get_role_policy(RoleName=n["processor_role"], PolicyName="das-setup")["PolicyDocument"]
        by_action = {json.dumps(s["Action"]): s for s in doc["Statement"]}
        decrypt = by_action['"kms:Decrypt"']
        self.assertEqual(decrypt["Resource"], key_arn)
        self.assertEqual(decrypt["Condition"],
                         {"StringEquals": {"kms:EncryptionContext:aws:rds:dbc-id": rid}})
        self.assertEqual(by_action['"s3:PutObject"']["Resource"], f"arn:aws:s3:::{n['bucket']}/parsed/{n['cluster']}/*")
        self.assertNotIn("kinesis", json.dumps(doc), "the processor reads nothing from Kinesis")

        role = iam.get_role(RoleName=n["firehose_role"])["Role"]
        [trust] = role["AssumeRolePolicyDocument"]["Statement"]
        self.assertEqual(trust["Principal"], {"Service": "firehose.amazonaws.com"})
        self.assertEqual(trust["Condition"], {"StringEquals": {"sts:ExternalId": ACCOUNT}})
        doc = json.dumps(iam.get_role_policy(RoleName=n["firehose_role"], PolicyName="das-setup")["PolicyDocument"])
        self.assertIn(f"stream/aws-rds-das-{rid}", doc)
        self.assertIn(f"function:{n['function']}", doc)
        self.assertNotIn("kms:", doc, "Firehose needs nothing on the DAS key")

    def check_logs(self, n):
        logs = self.emu.client("logs")
        for group in (f"/aws/lambda/{n['function']}", f"/aws/kinesisfirehose/{n['stream']}"):
            [g] = [g for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
                   if g["logGroupName"] == group]
            self.assertEqual(g["retentionInDays"], 30, group)
        streams = logs.describe_log_streams(logGroupName=f"/aws/kinesisfirehose/{n['stream']}")["logStreams"]
        self.assertEqual([s["logStreamName"] for s in streams], ["DestinationDelivery"])

    def check_function(self, n, environment=None):
        fn = self.emu.client("lambda").get_function(FunctionName=n["function"])
        c = fn["Configuration"]
        self.assertEqual((c["Runtime"], c["Handler"], c["Architectures"], c["MemorySize"], c["Timeout"]),
                         ("provided.al2023", "bootstrap", ["x86_64"], 256, 120))
        self.assertEqual(c["Role"], f"arn:aws:iam::{ACCOUNT}:role/{n['processor_role']}")
        self.assertEqual(c["State"], "Active")
        # The processor signs its digests with the signing key up made for this deployment.
        signing = self.emu.client("kms").describe_key(KeyId=n["signing_key"])["KeyMetadata"]
        self.assertEqual((signing["KeySpec"], signing["KeyUsage"], signing["KeyState"]),
                         ("ECC_NIST_P384", "SIGN_VERIFY", "Enabled"))
        self.assertEqual(c["Environment"]["Variables"], {
            "DAS_OUTPUT_BUCKET": n["bucket"], "DAS_OUTPUT_PREFIX": f"parsed/{n['cluster']}/", **(environment or {}),
            "DAS_DIGEST_KEY": signing["Arn"]})
        self.assertEqual(fn["Tags"]["managed-by"], "das-setup")
        return c

    def check_delivery(self, n, rid):
        firehose = self.emu.client("firehose")
        d = firehose.describe_delivery_stream(DeliveryStreamName=n["stream"])["DeliveryStreamDescription"]
        self.assertEqual(d["DeliveryStreamStatus"], "ACTIVE")
        self.assertEqual(d["DeliveryStreamType"], "KinesisStreamAsSource")
        source = d["Source"]["KinesisStreamSourceDescription"]
        self.assertEqual(source["KinesisStreamARN"],
                         f"arn:aws:kinesis:eu-west-1:{ACCOUNT}:stream/aws-rds-das-{rid}")
        dest = d["Destinations"][0]["ExtendedS3DestinationDescription"]
        self.assertEqual(dest["BucketARN"], f"arn:aws:s3:::{n['bucket']}")
        self.assertIn("!{firehose:error-output-type}", dest["ErrorOutputPrefix"])
        self.assertEqual(dest["CloudWatchLoggingOptions"]["LogGroupName"], f"/aws/kinesisfirehose/{n['stream']}")
        [processor] = dest["ProcessingConfiguration"]["Processors"]
        params = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
        self.assertEqual(params["LambdaArn"], f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:{n['function']}")
        tags = firehose.list_tags_for_delivery_stream(DeliveryStreamName=n["stream"])["Tags"]
        self.assertIn({"Key": "managed-by", "Value": "das-setup"}, tags)

    def wait_events(self, bucket, test_ids, timeout=30):
        s3 = self.emu.client("s3")
        deadline, found = time.time() + timeout, {}
        while time.time() < deadline:
            for o in s3.list_objects_v2(Bucket=bucket, Prefix="parsed/").get("Contents", []):  # every database
                if not is_event_object(o["Key"]):
                    continue
                body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
                for line in gzip.decompress(body).decode().splitlines():
                    event = json.loads(line)
                    if event.get("testId") in test_ids:
                        found[event["testId"]] = o["Key"]
            if set(found) == test_ids:
                return found
            time.sleep(0.5)
        self.fail(f"events {sorted(test_ids - set(found))} never reached s3://{bucket}/parsed/: "
                  f"{self.emu.admin('firehose')}")

    def test_write_once_retention_per_category_and_a_down_that_keeps_what_the_lock_keeps(self):
        """Issue 20 items 2 and 3: --object-lock on the bucket, the processor's writes accepted
        under it (S3 wants a checksum header then), lifecycle rules per category folder, status
        showing the lock, and down --delete-bucket naming what it could not delete, and why."""
        self.emu.cluster("vault")
        flags = ("--cluster", "vault", "--yes", "--retention-days", "DQL=1,DDL=2555,default=400",
                 "--object-lock", "governance", "--object-lock-days", "1")
        out, _, mutating, _ = self.up(*flags)
        self.assertIn("Object Lock GOVERNANCE mode, 1 day(s) per version: permanent on this bucket", out)
        # Create, the seven settings of every bucket, and the Object Lock configuration.
        self.assertEqual(mutating.count("PUT /das-setup-vault-123456789012-eu-west-1/"), 9, mutating)
        n = self.names("vault")
        s3 = self.emu.client("s3")
        self.assertEqual(s3.get_object_lock_configuration(Bucket=n["bucket"])["ObjectLockConfiguration"],
                         {"ObjectLockEnabled": "Enabled",
                          "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
        rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=n["bucket"])["Rules"]}
        expiry = {r["Filter"]["Prefix"]: r["Expiration"]["Days"] for r in rules.values() if "Expiration" in r}
        self.assertEqual(expiry[f"parsed/vault/DQL/"], 1)
        self.assertEqual(expiry[f"parsed/vault/DDL/"], 2555)
        self.assertEqual(expiry[f"parsed/vault/DML/"], 400)
        self.assertEqual(expiry[f"parsed/vault/_manifests/"], 2555)
        self.assertEqual(expiry[f"parsed/vault/_digests/"], 2555)
        self.assertEqual(expiry["raw/"], 2555)
        self.assertEqual(expiry["errors/"], 400)
        self.assertNotIn("", expiry, "a catch-all expiry would cut DDL's 2555 days to the shortest")
        self.assertEqual(rules["das-setup-retention"]["AbortIncompleteMultipartUpload"], {"DaysAfterInitiation": 7})
        # Idempotent: the same flags change nothing.
        out, _, mutating, _ = self.up(*flags)
        self.assertEqual(mutating, [], out)
        # What was asked for is in the JSON, as evidence for an auditor or a CI stage.
        out, _, _, _ = self.up(*flags, "--dry-run", "--output", "json")
        self.assertEqual(json.loads(out)["storage"], {
            "retentionDays": {"default": 400, "categories": {"DQL": 1, "DDL": 2555}},
            "objectLock": {"mode": "GOVERNANCE", "days": 1}, "rawArchive": None})

        # The processor's writes are accepted under the lock, and locked.
        rid = self.resource_id("vault")
        self.emu.wait_for_delivery(n["stream"])
        time.sleep(1)
        when = log_time()
        self.emu.admin("inject", {"stream": f"aws-rds-das-{rid}", "events": [
            {"type": "record", "testId": "vault-ddl", "class": "DDL", "command": "DROP TABLE",
             "serverType": "PostgreSQL", "dbUserName": "alice", "logTime": when}]})
        key = self.wait_events(n["bucket"], {"vault-ddl"})["vault-ddl"]
        self.assertEqual(s3.get_object_retention(Bucket=n["bucket"], Key=key)["Retention"]["Mode"], "GOVERNANCE")

        status = self.run_setup("status", "--cluster", "vault")
        self.assertIn("Object Lock GOVERNANCE 1 day(s), expiry 1 d: DQL; 7 d: athena-results; 400 d:", status.stdout,
                      status.stdout + status.stderr)
        self.assertIn("2555 d: DDL digests manifests raw", status.stdout)

        # down --delete-bucket deletes the rest, keeps the bucket and the locked versions, and says so.
        done = self.run_setup("down", "--cluster", "vault", "--delete-bucket", "--yes")
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        self.assertIn("under Object Lock GOVERNANCE retention, the newest until", done.stderr)
        self.assertIn("s3:BypassGovernanceRetention", done.stderr)
        self.assertEqual(s3.get_object(Bucket=n["bucket"], Key=key)["ResponseMetadata"]["HTTPStatusCode"], 200)
        with self.assertRaises(Exception):
            self.emu.client("lambda").get_function(FunctionName=n["function"])

    def test_keep_raw_archives_every_source_record_still_encrypted_and_never_turns_off(self):
        self.emu.cluster("rawarch")
        n = self.names("rawarch")
        out, _, mutating, _ = self.up("--cluster", "rawarch", "--yes", "--keep-raw", "--output", "json")
        report = json.loads(out)
        self.assertEqual(report["storage"]["rawArchive"], {"prefix": "raw/!{timestamp:yyyy/MM/dd/HH}/", "kept": False})
        firehose = self.emu.client("firehose")

        def destination():
            return firehose.describe_delivery_stream(DeliveryStreamName=n["stream"])[
                "DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
        d = destination()
        self.assertEqual(d["S3BackupMode"], "Enabled")
        backup = d["S3BackupDescription"]
        self.assertEqual((backup["BucketARN"], backup["RoleARN"], backup["Prefix"], backup["CompressionFormat"]),
                         (f"arn:aws:s3:::{n['bucket']}", d["RoleARN"], "raw/!{timestamp:yyyy/MM/dd/HH}/", "GZIP"))
        self.assertTrue(backup["ErrorOutputPrefix"].startswith("errors/raw/"))

        # A record is archived as RDS sent it: the event is in the bucket decrypted, and under
        # raw/ only encrypted.
        rid = self.resource_id("rawarch")
        self.emu.wait_for_delivery(n["stream"])
        secret_text = "select 'raw-archive-probe' from t"
        self.emu.admin("inject", {"stream": f"aws-rds-das-{rid}", "events": [
            {"type": "record", "testId": "raw-1", "class": "READ", "command": "SELECT", "commandText": secret_text,
             "serverType": "PostgreSQL", "dbUserName": "alice", "logTime": log_time()}]})
        self.wait_events(n["bucket"], {"raw-1"})
        s3 = self.emu.client("s3")
        deadline = time.time() + 30
        raw = []
        while not raw and time.time() < deadline:
            raw = [o["Key"] for o in s3.list_objects_v2(Bucket=n["bucket"], Prefix="raw/").get("Contents", [])]
            time.sleep(0.5)
        self.assertTrue(raw, "a raw archive object")
        records = []
        decoder = json.JSONDecoder()
        for key in raw:
            self.assertTrue(key.endswith(".gz"), key)
            text = gzip.decompress(s3.get_object(Bucket=n["bucket"], Key=key)["Body"].read()).decode()
            at = 0
            while at < len(text):  # Firehose concatenates the records as they came
                record, at = decoder.raw_decode(text, at)
                records.append(record)
        self.assertTrue(all(r["type"] == "DatabaseActivityMonitoringRecords" for r in records), records[:1])
        self.assertTrue(all(r["databaseActivityEvents"] and r["key"] for r in records))
        self.assertFalse([k for k in raw if secret_text.encode() in
                          gzip.decompress(s3.get_object(Bucket=n["bucket"], Key=k)["Body"].read())],
                         "the archive holds the records encrypted")

        status = self.run_setup("status", "--cluster", "rawarch")
        self.assertIn("raw archive under raw/", status.stdout, status.stdout + status.stderr)

        # Not asked for again: kept (Firehose cannot turn it off), nothing to change.
        out, _, mutating, _ = self.up("--cluster", "rawarch", "--yes")
        self.assertIn("Nothing to change", out)
        self.assertIn("raw archive under raw/ kept", out)
        self.assertEqual(mutating, [])
        # As Firehose documents, it cannot be turned off.
        d = destination()
        version = firehose.describe_delivery_stream(DeliveryStreamName=n["stream"])["DeliveryStreamDescription"]
        with self.assertRaises(firehose.exceptions.InvalidArgumentException):
            firehose.update_destination(DeliveryStreamName=n["stream"], CurrentDeliveryStreamVersionId=version["VersionId"],
                                        DestinationId=version["Destinations"][0]["DestinationId"],
                                        ExtendedS3DestinationUpdate={"S3BackupMode": "Disabled"})
        self.assertEqual(destination()["S3BackupMode"], "Enabled")

    def test_keep_raw_turns_the_archive_on_in_place(self):
        self.emu.cluster("rawlater")
        n = self.names("rawlater")
        self.up("--cluster", "rawlater", "--yes")
        out, _, mutating, _ = self.up("--cluster", "rawlater", "--yes", "--keep-raw")
        self.assertIn("~ delivery-stream", out)
        self.assertIn("cannot be turned off once on", out)
        self.assertEqual(mutating, ["UpdateDestination"])
        d = self.emu.client("firehose").describe_delivery_stream(DeliveryStreamName=n["stream"])[
            "DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
        self.assertEqual((d["S3BackupMode"], d["S3BackupDescription"]["Prefix"]),
                         ("Enabled", "raw/!{timestamp:yyyy/MM/dd/HH}/"))
        out, _, mutating, _ = self.up("--cluster", "rawlater", "--yes", "--keep-raw")
        self.assertIn("Nothing to change", out)
        # From the next batch on, records are archived.
        rid = self.resource_id("rawlater")
        self.emu.wait_for_delivery(n["stream"])
        s3 = self.emu.client("s3")
        deadline = time.time() + 30
        while not s3.list_objects_v2(Bucket=n["bucket"], Prefix="raw/").get("Contents") and time.time() < deadline:
            self.emu.admin("inject", {"stream": f"aws-rds-das-{rid}", "events": [
                {"type": "record", "testId": "raw-later", "class": "DDL", "command": "CREATE TABLE",
                 "serverType": "PostgreSQL", "dbUserName": "alice", "logTime": log_time()}]})
            time.sleep(2)
        self.assertTrue(s3.list_objects_v2(Bucket=n["bucket"], Prefix="raw/").get("Contents"), "archived")

    # --- changes in place ------------------------------------------------------------------

    def test_a_changed_filter_updates_only_the_function_configuration(self):
        self.emu.cluster("beta")
        self.up("--cluster", "beta", "--yes")
        out, _, mutating, _ = self.up("--cluster", "beta", "--yes", "--exclude", "DQL,CONNECT")
        self.assertIn("~ function", out)
        self.assertEqual(mutating, ["PUT /2015-03-31/functions/das-setup-beta/configuration"])
        n = self.names("beta")
        self.check_function(n, environment={"DAS_EXCLUDE_CATEGORIES": "DQL,CONNECT"})

    def test_new_code_is_uploaded_only_when_its_sha256_differs(self):
        self.emu.cluster("gamma")
        self.up("--cluster", "gamma", "--yes")
        fn = self.emu.client("lambda").get_function(FunctionName="das-setup-gamma")["Configuration"]
        other = os.path.join(self.tmp.name, "other.zip")
        with open(other, "wb") as f:
            f.write(zip_bootstrap(self.code + b"\0"))
        out, _, mutating, _ = self.up("--cluster", "gamma", "--yes", zip_path=other)
        self.assertEqual(mutating, ["PUT /2015-03-31/functions/das-setup-gamma/code"])
        after = self.emu.client("lambda").get_function(FunctionName="das-setup-gamma")["Configuration"]
        self.assertNotEqual(after["CodeSha256"], fn["CodeSha256"])
        _, _, mutating, _ = self.up("--cluster", "gamma", "--yes", zip_path=other)
        self.assertEqual(mutating, [])

    def test_detailed_exitcode_tells_drift_from_nothing_to_do_and_from_errors(self):
        """`up --dry-run --detailed-exitcode`, the CI drift check (issue 17): 2 while changes are
        pending, 0 once nothing would change, 1 on a refusal (as terraform plan)."""
        self.emu.cluster("drift")
        _, _, mutating, _ = self.up("--cluster", "drift", "--dry-run", "--detailed-exitcode", expect=2)
        self.assertEqual(mutating, [])
        self.up("--cluster", "drift", "--yes")
        self.up("--cluster", "drift", "--dry-run", "--detailed-exitcode", expect=0)
        self.up("--cluster", "drift", "--dry-run", "--detailed-exitcode", "--exclude", "DQL", expect=2)
        self.up("--cluster", "no-such-cluster", "--dry-run", "--detailed-exitcode", expect=1)
        done = self.run_setup("up", "--cluster", "drift", "--detailed-exitcode", "--yes")
        self.assertEqual(done.returncode, 2, "without --dry-run it is a usage error")
        self.assertIn("--dry-run", done.stderr)

    def test_dry_run_changes_nothing_and_prints_the_plan_with_every_policy(self):
        self.emu.cluster("delta")
        out, _, mutating, _ = self.up("--cluster", "delta", "--dry-run", "--output", "json")
        self.assertEqual(mutating, [])
        plan = json.loads(out)
        self.assertEqual((plan["dryRun"], plan["applied"], plan["changes"]), (True, False, 12))
        by = {p["resource"]: p for p in plan["plan"]}
        self.assertEqual(by["kms-key"]["action"], "create")
        self.assertEqual(by["signing-key"]["action"], "create")
        self.assertEqual(plan["signingKey"], {"alias": "alias/das-setup/digests/delta", "arn": None})
        sign = by["processor-role"]["documents"]["permissionsPolicy"]["Statement"][1]
        self.assertEqual(sign["Action"], "kms:Sign")
        self.assertEqual(set(by["processor-role"]["documents"]), {"trustPolicy", "permissionsPolicy"})
        self.assertEqual(set(by["firehose-role"]["documents"]), {"trustPolicy", "permissionsPolicy"})
        self.assertIn("bucketPolicy", by["bucket"]["documents"])
        self.assertIn("keyPolicy", by["kms-key"]["documents"])
        decrypt = by["processor-role"]["documents"]["permissionsPolicy"]["Statement"][0]
        self.assertEqual(decrypt["Action"], "kms:Decrypt")
        c = self.emu.client("rds").describe_db_clusters(DBClusterIdentifier="delta")["DBClusters"][0]
        self.assertEqual(c.get("ActivityStreamStatus", "stopped"), "stopped")

    def test_the_key_an_interrupted_up_left_is_found_in_a_bounded_number_of_calls(self):
        # Issue 15: the orphan was looked for with ListResourceTags on every key of the account
        # (and errors dropped). Now one tag:GetResources listing, whatever the account holds.
        cluster = self.emu.cluster("keys")
        kms = self.emu.client("kms")
        for i in range(1000):
            tags = [{"TagKey": "team", "TagValue": f"t{i % 7}"}]
            if i % 100 == 0:  # das-setup's keys of other databases
                tags = [{"TagKey": "managed-by", "TagValue": "das-setup"},
                        {"TagKey": "das-setup:cluster", "TagValue": f"other-{i}"}]
            # ECC signing keys: moto makes an RSA-2048 pair for every symmetric key (50 ms each);
            # to the lookup, any key is a key of the account.
            kms.create_key(Description=f"someone else's key {i}", Tags=tags,
                           KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
        # What an up stopped between CreateKey and CreateAlias leaves.
        orphan = kms.create_key(
            Description=f"Database activity stream of {cluster['DBClusterArn']} (das-setup)",
            Tags=[{"TagKey": "managed-by", "TagValue": "das-setup"},
                  {"TagKey": "das-setup:cluster", "TagValue": "keys"}])["KeyMetadata"]
        before = len(self.emu.calls(app="das-setup"))
        out, _, mutating, _ = self.up("--cluster", "keys", "--dry-run", "--output", "json")
        calls = self.emu.calls(app="das-setup")[before:]
        self.assertEqual(mutating, [])
        kms_calls = [c["op"] for c in calls if c["service"] == "kms"]
        tagging = [c["op"] for c in calls if c["service"] == "tagging"]
        print(f"\n  up --dry-run in an account with 1,001 keys: {len(kms_calls)} KMS call(s) "
              f"({', '.join(kms_calls)}), {len(tagging)} tag:GetResources call(s)", file=sys.stderr)
        self.assertLessEqual(len(kms_calls), 10, kms_calls)
        # One listing per key without its alias: the activity stream's, the signing key's.
        self.assertEqual(tagging, ["GetResources", "GetResources"])
        key = {p["resource"]: p for p in json.loads(out)["plan"]}["kms-key"]
        self.assertEqual(key["name"], orphan["Arn"])
        self.assertEqual(key["changes"], ["alias for the key an interrupted run created"])

    def test_a_bucket_encrypted_with_a_customer_kms_key_is_refused_before_any_change(self):
        # Neither role may use the bucket's key, so every write would be refused (issue 16, 3).
        self.emu.cluster("sse")
        key = self.emu.client("kms").create_key()["KeyMetadata"]["Arn"]
        s3 = self.emu.client("s3")
        s3.create_bucket(Bucket="their-sse-kms-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_bucket_encryption(Bucket="their-sse-kms-bucket", ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]})
        _, err, mutating, _ = self.up("--cluster", "sse", "--bucket", "their-sse-kms-bucket", "--yes", expect=2)
        self.assertEqual(mutating, [])
        self.assertIn(f"SSE-KMS with key {key}", err)
        self.assertIn("--bucket", err)

    def test_an_instance_stream_uses_the_instance_context(self):
        rds = self.emu.client("rds")
        rds.create_db_instance(DBInstanceIdentifier="ora", Engine="oracle-ee", DBInstanceClass="db.r6i.large",
                               MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20)
        self.up("--instance", "ora", "--yes")
        rid = rds.describe_db_instances(DBInstanceIdentifier="ora")["DBInstances"][0]["DbiResourceId"]
        doc = self.emu.client("iam").get_role_policy(RoleName="das-setup-db-ora-processor",
                                                     PolicyName="das-setup")["PolicyDocument"]
        self.assertEqual(doc["Statement"][0]["Condition"],
                         {"StringEquals": {"kms:EncryptionContext:aws:rds:db-id": rid}})
        d = self.emu.client("firehose").describe_delivery_stream(DeliveryStreamName="das-setup-db-ora")
        self.assertEqual(d["DeliveryStreamDescription"]["DeliveryStreamStatus"], "ACTIVE")

        # The audit policy lock (issue 16 E): locked once started, unlocked and locked on demand,
        # shown by status, and a second up with the same flag changes nothing.
        def policy():
            return rds.describe_db_instances(DBInstanceIdentifier="ora")["DBInstances"][0]["ActivityStreamPolicyStatus"]

        self.assertEqual(policy(), "locked")
        out, _, mutating, _ = self.up("--instance", "ora", "--yes", "--audit-policy", "unlocked")
        self.assertIn("unlock the audit policy", out)
        self.assertEqual(mutating, ["ModifyActivityStream"])
        self.assertEqual(policy(), "unlocked", "up waits until RDS has unlocked it")
        _, _, mutating, _ = self.up("--instance", "ora", "--yes", "--audit-policy", "unlocked")
        self.assertEqual(mutating, [])
        status = self.run_setup("status", "--instance", "ora")
        self.assertIn("audit policy unlocked", status.stdout)
        self.up("--instance", "ora", "--yes", "--audit-policy", "locked")
        self.assertEqual(policy(), "locked")

    def test_throttling_and_server_errors_are_retried_with_back_off_and_up_converges(self):
        """AWS's common errors (ThrottlingException, Lambda's 429, S3's SlowDown, 500s) on the
        calls of a first up: the SDK's back-off retries them (five attempts), up succeeds, and a
        second up has nothing to do. Past the attempts the step fails naming it, and up again
        finishes the job (issue 16 B)."""
        self.emu.cluster("throttled")
        throttled = ["kms:CreateKey", "iam:CreateRole", "lambda:CreateFunction", "firehose:CreateDeliveryStream",
                     "s3:PutBucketPolicy", "rds:StartActivityStream", "logs:CreateLogGroup", "rds:DescribeDBClusters",
                     "sts:GetCallerIdentity", "firehose:DescribeDeliveryStream"]
        faults = [{"operation": op, "kind": "throttle", "times": 2} for op in throttled]
        faults += [{"operation": op, "kind": "server", "times": 2} for op in ("s3:CreateBucket", "iam:PutRolePolicy")]
        faults.append({"operation": "kms:DescribeKey", "kind": "throttle", "times": 4})  # more than the SDK's default 3
        self.emu.admin("faults", {"faults": faults})
        self.up("--cluster", "throttled", "--yes")
        report = self.emu.admin("faults")
        self.assertEqual(report["armed"], {}, "every armed fault was met by das-setup")
        self.assertEqual(len(report["served"]), 2 * len(throttled) + 4 + 4)
        _, _, mutating, _ = self.up("--cluster", "throttled", "--yes")
        self.assertEqual(mutating, [])

        # Past the attempts: the step fails naming the throttling, nothing is lost, up again converges.
        self.emu.cluster("throttled-2")
        self.emu.admin("faults", {"faults": [{"operation": "iam:CreateRole", "kind": "throttle", "times": 10}]})
        _, err, _, _ = self.up("--cluster", "throttled-2", "--yes", expect=1)
        self.assertIn("iam:CreateRole", err)
        self.assertIn("Throttling", err)
        self.emu.admin("faults", {"faults": [{"operation": "iam:CreateRole", "kind": "throttle", "times": 0}]})
        self.up("--cluster", "throttled-2", "--yes")
        _, _, mutating, _ = self.up("--cluster", "throttled-2", "--yes")
        self.assertEqual(mutating, [])

    # --- refusals before any change --------------------------------------------------------

    def test_refusals_come_before_any_change_and_name_the_problem(self):
        self.emu.cluster("mysql-1", engine="aurora-mysql")
        self.emu.cluster("empty", instances=0)
        self.emu.cluster("epsilon")
        # Shapes AWS documents as unsupported (preflight.rs cites where).
        self.emu.cluster("burst", instance_class="db.t4g.medium")
        self.emu.cluster("mixed", instances=2)
        self.emu.client("rds").create_db_instance(DBInstanceIdentifier="mixed-3", DBClusterIdentifier="mixed",
                                                  Engine="aurora-postgresql", DBInstanceClass="db.serverless")
        self.emu.cluster("old-mysql", engine="aurora-mysql", EngineVersion="5.7.mysql_aurora.2.07.2")
        self.emu.cluster("sls-v1", engine="aurora-mysql", instances=0, EngineMode="serverless")
        rds = self.emu.client("rds")
        rds.create_db_cluster_parameter_group(DBClusterParameterGroupName="bbf", DBParameterGroupFamily="aurora-postgresql15",
                                              Description="Babelfish on")
        rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName="bbf", Parameters=[
            {"ParameterName": "rds.babelfish_status", "ParameterValue": "on", "ApplyMethod": "pending-reboot"}])
        self.emu.cluster("bbf", DBClusterParameterGroupName="bbf")
        rds.create_db_instance(DBInstanceIdentifier="ora-main", Engine="oracle-ee", DBInstanceClass="db.r5.large",
                               MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20)
        rds.create_db_instance_read_replica(DBInstanceIdentifier="ora-copy", SourceDBInstanceIdentifier="ora-main")
        cases = [
            (["--cluster", "nope", "--yes"], "no DB cluster named \"nope\""),
            (["--cluster", "mysql-1", "--mode", "sync", "--yes"], "--mode sync is supported on Aurora PostgreSQL only"),
            (["--cluster", "empty", "--yes"], "has no DB instance"),
            (["--cluster", "burst", "--yes"], "burstable db.t* classes have none"),
            (["--cluster", "mixed", "--yes"], "instance mixed-3 is Aurora Serverless v2 (db.serverless)"),
            (["--cluster", "old-mysql", "--yes"], "5.7.mysql_aurora.2.07.2 on db.r6g.large): RDS supports no activity stream"),
            (["--cluster", "sls-v1", "--yes"], "is Aurora Serverless v1"),
            (["--cluster", "bbf", "--yes"], "runs Babelfish (rds.babelfish_status is on in its parameter group bbf)"),
            (["--instance", "ora-copy", "--yes"], "is a read replica of ora-main: RDS has no activity streams on read replicas"),
            (["--cluster", "epsilon", "--kms-key", "alias/missing", "--yes"], "KMS key alias/missing not found"),
            (["--cluster", "epsilon", "--arch", "arm64", "--yes"], "bootstrap is built for x86_64"),
            (["--cluster", "epsilon"], "pass --yes"),
        ]
        for args, needle in cases:
            _, err, mutating, _ = self.up(*args, expect=2)
            self.assertIn(needle, err, args)
            self.assertIn("Nothing was changed", err, args)
            self.assertEqual(mutating, [], args)
        # What the person confirming must know is in the plan (issue 16 D).
        out, _, _, _ = self.up("--cluster", "mysql-1", "--dry-run")
        self.assertIn("applied immediately: RDS restarts the database", out)
        self.assertIn("Aurora MySQL: the instances must reach KMS", out)


if __name__ == "__main__":
    unittest.main()


class IamPropagationTest(EmulatorCase):
    """`up` against an emulator where a new role cannot be assumed by Lambda or Firehose for a few
    seconds (dasemu/iam_propagation.py: AWS's documented eventual consistency, answered with the
    services' errors), so the retry runs end to end."""

    DELAY = 4
    EMULATOR_OPTIONS = ("--activity-stream-delay", "1", "--trickle", "0", "--heartbeat", "2",
                        "--buffer-interval-cap", "1", "--iam-propagation-delay", str(DELAY))

    def test_up_waits_for_iam_to_reach_lambda_and_counts_each_change_once(self):
        self.emu.cluster("prop")
        before = len(self.emu.calls(app="das-setup"))
        done = self.run_setup("up", "--arch", "x86_64", "--lambda-zip", self.zip, "--cluster", "prop",
                              "--yes", "--output", "json")
        self.assertEqual(done.returncode, 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")
        self.assertIn("waiting for IAM to reach", done.stderr)
        calls = self.emu.calls(app="das-setup")[before:]
        creates = [c for c in calls if c["op"] == "POST /2015-03-31/functions"]
        streams = [c for c in calls if c["op"] == "CreateDeliveryStream"]
        self.assertGreater(len(creates), 1, "CreateFunction was retried while IAM propagated")
        self.assertEqual([c["status"] for c in creates][-1], 201)
        self.assertTrue(all(c["status"] == 400 for c in creates[:-1]), creates)
        # (Firehose's role is usually older than the delay by the time the delivery stream is
        # made; its retry is counted when it happens.)
        retries = len(creates) - 1 + max(len(streams) - 1, 0)
        mutating = [c for c in calls if c["mutating"]]
        report = json.loads(done.stdout)
        # Each change is counted once, however often IAM made it wait.
        self.assertEqual(report["mutatingCalls"], len(mutating) - retries)
        fh = self.emu.client("firehose").describe_delivery_stream(DeliveryStreamName="das-setup-prop")
        self.assertEqual(fh["DeliveryStreamDescription"]["DeliveryStreamStatus"], "ACTIVE")


class EventualConsistencyTest(EmulatorCase):
    """KMS aliases visible only seconds after CreateAlias, and a function Lambda made Inactive
    (issue 16 B; dasemu/eventual.py cites the documentation)."""

    EMULATOR_OPTIONS = EmulatorCase.EMULATOR_OPTIONS + ("--alias-lag", "8")

    def up(self, cluster, expect=0):
        done = self.run_setup("up", "--cluster", cluster, "--arch", "x86_64", "--lambda-zip", self.zip, "--yes")
        self.assertEqual(done.returncode, expect, done.stdout + done.stderr)
        return done

    def test_a_quick_second_up_waits_for_the_alias_instead_of_failing(self):
        self.emu.cluster("lagging")
        # An up stopped right after its key and alias (the stream not started): the next up
        # finds no alias yet, finds the key by its tags, and its CreateAlias meets the alias.
        stopped = self.run_setup("up", "--cluster", "lagging", "--arch", "x86_64", "--lambda-zip", self.zip,
                                 "--yes", env={"DAS_SETUP_TEST_STOP_AFTER_MUTATIONS": "2"})
        self.assertNotEqual(stopped.returncode, 0)
        kms = self.emu.client("kms")
        self.assertNotIn("alias/das-setup/lagging", [a["AliasName"] for a in kms.list_aliases()["Aliases"]],
                         "the alias is not listed yet: the lag is on")
        done = self.up("lagging")
        self.assertIn("alias alias/das-setup/lagging is visible", done.stderr, done.stdout)
        self.assertEqual({spec: len(ids) for spec, ids in das_keys(self.emu, "lagging").items()},
                         {"SYMMETRIC_DEFAULT": 1, "ECC_NIST_P384": 1}, "one key of each, not a second one")
        # That up made the signing key's alias: an up right after it may meet that alias's lag
        # in turn, and must converge the same way, making no second key.
        self.up("lagging")
        self.assertEqual({spec: len(ids) for spec, ids in das_keys(self.emu, "lagging").items()},
                         {"SYMMETRIC_DEFAULT": 1, "ECC_NIST_P384": 1}, "one key of each, not a second one")
        deadline = time.monotonic() + 20
        while "alias/das-setup/digests/lagging" not in [a["AliasName"] for a in kms.list_aliases()["Aliases"]]:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.5)
        done = self.up("lagging")
        self.assertIn("Nothing to change", done.stdout)

    def test_an_inactive_function_counts_as_ready(self):
        self.emu.cluster("idle")
        self.up("idle")
        # No records, so no invocation reactivates it during the test; then the alias is visible.
        self.emu.admin("producer", {"trickle_per_second": 0, "heartbeat_seconds": 3600})
        kms = self.emu.client("kms")
        deadline = time.monotonic() + 20
        while "alias/das-setup/idle" not in [a["AliasName"] for a in kms.list_aliases()["Aliases"]]:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.5)
        self.emu.admin("lambda", {"function": "das-setup-idle", "state": "Inactive"})
        config = self.emu.client("lambda").get_function_configuration(FunctionName="das-setup-idle")
        self.assertEqual((config["State"], config["StateReasonCode"]), ("Inactive", "Idle"))
        start = time.monotonic()
        done = self.up("idle")
        self.assertIn("Nothing to change", done.stdout)
        done = self.run_setup("up", "--cluster", "idle", "--arch", "x86_64", "--lambda-zip", self.zip, "--yes",
                              "--exclude", "DQL")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertLess(time.monotonic() - start, 30, "up does not wait for an Inactive function to be Active")
        status = self.run_setup("status", "--cluster", "idle", "--output", "json")
        checks = {c["check"]: c for c in json.loads(status.stdout)["checks"]}
        self.assertEqual(checks["function"]["status"], "OK", checks["function"])
