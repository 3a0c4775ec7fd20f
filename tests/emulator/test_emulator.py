"""Tests of what we add to moto, through its server over HTTP with boto3 (an independent client).

  tests/emulator/python -m unittest discover -s tests/emulator -v
"""

import base64
import datetime
import gzip
import json
import os
import sys
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import das_batch  # noqa: E402
from harness import AwsAssertions, Emulator, hour_folder, is_digest, is_manifest, log_time, zip_bootstrap  # noqa: E402

DELAY = 0.5

# A Lambda custom runtime in a few lines of Python (independent of das-processor): answers Ok
# with the data upper-cased, or ProcessingFailed for data containing "fail"; raises for "crash".
TEST_BOOTSTRAP = r"""#!/usr/bin/env python3
import base64, json, os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    out, path = [], "/response"
    for rec in event["records"]:
        data = base64.b64decode(rec["data"])
        if b"crash" in data:
            path = "/error"
        result = "ProcessingFailed" if b"fail" in data else "Ok"
        out.append({"recordId": rec["recordId"], "result": result,
                    "data": base64.b64encode(data.upper() + b"|" + os.environ["SUFFIX"].encode()).decode()})
    body = json.dumps({"records": out} if path == "/response" else {"errorMessage": "boom"}).encode()
    urllib.request.urlopen(urllib.request.Request(api + request_id + path, data=body, method="POST")).read()
"""


def trust(service):
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


def delivery(emu, name, function_role_service="lambda.amazonaws.com", firehose_service="firehose.amazonaws.com",
             firehose_policy=None):
    """A Kinesis stream → delivery stream → TEST_BOOTSTRAP function → bucket, in us-east-1; the
    delivery stream's role gets `firehose_policy` (a function of the stream ARN) if given."""
    iam, lam, kinesis, s3, firehose = (emu.client(s, "us-east-1") for s in ("iam", "lambda", "kinesis", "s3", "firehose"))
    iam.create_role(RoleName=f"{name}-fn", AssumeRolePolicyDocument=trust(function_role_service))
    fh_role = iam.create_role(RoleName=f"{name}-fh", AssumeRolePolicyDocument=trust(firehose_service))["Role"]["Arn"]
    fn = lam.create_function(
        FunctionName=f"{name}-fn", Runtime="provided.al2023", Handler="bootstrap",
        Role=f"arn:aws:iam::123456789012:role/{name}-fn", Code={"ZipFile": zip_bootstrap(TEST_BOOTSTRAP)},
        Timeout=10, Environment={"Variables": {"SUFFIX": "sfx"}})
    kinesis.create_stream(StreamName=f"{name}-src", ShardCount=1)
    src = kinesis.describe_stream_summary(StreamName=f"{name}-src")["StreamDescriptionSummary"]["StreamARN"]
    if firehose_policy is not None:
        iam.put_role_policy(RoleName=f"{name}-fh", PolicyName="firehose",
                            PolicyDocument=json.dumps(firehose_policy(src, fn["FunctionArn"])))
    s3.create_bucket(Bucket=f"{name}-bucket")
    firehose.create_delivery_stream(
        DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": src, "RoleARN": fh_role},
        ExtendedS3DestinationConfiguration={
            "RoleARN": fh_role, "BucketARN": f"arn:aws:s3:::{name}-bucket",
            "Prefix": "ok/!{timestamp:yyyy/MM/dd}/", "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
            "ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
                {"ParameterName": "LambdaArn", "ParameterValue": fn["FunctionArn"]},
                {"ParameterName": "NumberOfRetries", "ParameterValue": "1"},
                {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": "60"}]}]},
        })
    emu.wait_for_delivery(name, timeout=5)
    time.sleep(0.6)
    return f"{name}-src", f"{name}-bucket"


def cloudwatch_rpc(url, operation, params, region="us-east-1", key=("testing", "testing")):
    """A CloudWatch call in the Smithy RPC v2 CBOR protocol, as the AWS SDK for Rust makes it,
    serialized, signed and parsed by botocore (an independent implementation of the protocol)."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.parsers import create_parser
    from botocore.serialize import create_serializer

    model = botocore.session.get_session().get_service_model("cloudwatch")
    op = model.operation_model(operation)
    request = create_serializer("smithy-rpc-v2-cbor").serialize_to_request(params, op)
    aws = AWSRequest(method=request["method"], url=url + request["url_path"], data=request["body"],
                     headers=dict(request["headers"]))
    SigV4Auth(Credentials(*key), "monitoring", region).add_auth(aws)
    prepared = aws.prepare()
    http = urllib.request.Request(prepared.url, data=prepared.body, headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(http) as r:
            status, headers, body = r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, dict(e.headers), e.read()
    parsed = create_parser("smithy-rpc-v2-cbor").parse(
        {"status_code": status, "headers": headers, "body": body}, op.output_shape)
    return status, headers, parsed


class EmulatorTest(AwsAssertions, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Through the entry points everyone uses: tests/emulator/start and stop.
        cls.emu = Emulator.start("--activity-stream-delay", str(DELAY), "--trickle", "4",
                                 "--heartbeat", "1", "--buffer-interval-cap", "1")
        cls.url = cls.emu.url
        for attr, service in [("rds", "rds"), ("kms", "kms"), ("kinesis", "kinesis"), ("s3", "s3"),
                              ("iam", "iam"), ("lam", "lambda"), ("firehose", "firehose")]:
            setattr(cls, attr, cls.emu.client(service, "us-east-1"))

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def cluster(self, name, engine="aurora-postgresql", **kwargs):
        return self.rds.create_db_cluster(
            DBClusterIdentifier=name, Engine=engine, MasterUsername="admin",
            MasterUserPassword="password123", **kwargs,
        )["DBCluster"]

    def key(self):
        return self.kms.create_key()["KeyMetadata"]["KeyId"]

    def describe(self, name):
        return self.rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]

    def streams(self):
        return self.kinesis.list_streams()["StreamNames"]

    def test_cluster_stream_lifecycle(self):
        cluster = self.cluster("pg-lifecycle")
        key = self.key()
        self.assertEqual(self.describe("pg-lifecycle")["ActivityStreamStatus"], "stopped")
        started = self.rds.start_activity_stream(
            ResourceArn=cluster["DBClusterArn"], Mode="async", KmsKeyId=key, ApplyImmediately=True)
        name = "aws-rds-das-" + cluster["DbClusterResourceId"]
        self.assertEqual((started["Status"], started["KinesisStreamName"], started["Mode"]),
                         ("starting", name, "async"))
        self.assertTrue(started["KmsKeyId"].endswith(key))
        self.assertEqual(self.describe("pg-lifecycle")["ActivityStreamStatus"], "starting")
        self.assertIn(name, self.streams())
        time.sleep(DELAY + 0.1)
        described = self.describe("pg-lifecycle")
        self.assertEqual(described["ActivityStreamStatus"], "started")
        self.assertEqual(described["ActivityStreamKinesisStreamName"], name)
        self.assertEqual(described["ActivityStreamMode"], "async")
        self.assertTrue(described["ActivityStreamKmsKeyId"].endswith(key))
        summary = self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        self.assertEqual(summary["RetentionPeriodHours"], 24)

        message = self.assertError("InvalidDBClusterStateFault", self.rds.start_activity_stream,
                                   ResourceArn=cluster["DBClusterArn"], Mode="async", KmsKeyId=key)
        self.assertIn("expected to be stopped, but is started", message)

        stopped = self.rds.stop_activity_stream(ResourceArn=cluster["DBClusterArn"], ApplyImmediately=True)
        self.assertEqual(stopped["Status"], "stopping")
        self.assertNotIn(name, self.streams())
        self.assertEqual(self.describe("pg-lifecycle")["ActivityStreamStatus"], "stopping")
        time.sleep(DELAY + 0.1)
        described = self.describe("pg-lifecycle")
        self.assertEqual(described["ActivityStreamStatus"], "stopped")
        self.assertNotIn("ActivityStreamKinesisStreamName", described)
        message = self.assertError("InvalidDBClusterStateFault", self.rds.stop_activity_stream,
                                   ResourceArn=cluster["DBClusterArn"])
        self.assertIn("expected to be started, but is stopped", message)

        # And it can be started again.
        self.rds.start_activity_stream(ResourceArn=cluster["DBClusterArn"], Mode="sync", KmsKeyId=key)
        self.assertIn(name, self.streams())

    def test_errors_as_rds_gives_them(self):
        cluster = self.cluster("pg-errors")
        mysql = self.cluster("my-errors", engine="aurora-mysql")
        key = self.key()
        arn = cluster["DBClusterArn"]
        self.assertError("DBClusterNotFoundFault", self.rds.start_activity_stream,
                         ResourceArn=arn.replace("pg-errors", "nope"), Mode="async", KmsKeyId=key)
        self.assertError("KMSKeyNotAccessibleFault", self.rds.start_activity_stream,
                         ResourceArn=arn, Mode="async", KmsKeyId="00000000-0000-0000-0000-000000000000")
        disabled = self.key()
        self.kms.disable_key(KeyId=disabled)
        self.assertError("KMSKeyNotAccessibleFault", self.rds.start_activity_stream,
                         ResourceArn=arn, Mode="async", KmsKeyId=disabled)
        asymmetric = self.kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
        self.assertError("KMSKeyNotAccessibleFault", self.rds.start_activity_stream,
                         ResourceArn=arn, Mode="async", KmsKeyId=asymmetric)
        self.assertError("InvalidParameterCombination", self.rds.start_activity_stream,
                         ResourceArn=mysql["DBClusterArn"], Mode="sync", KmsKeyId=key)
        self.assertEqual(self.describe("pg-errors")["ActivityStreamStatus"], "stopped")
        # A stream that is still starting cannot be stopped yet.
        self.rds.start_activity_stream(ResourceArn=mysql["DBClusterArn"], Mode="async", KmsKeyId=key)
        self.assertError("InvalidDBClusterStateFault", self.rds.stop_activity_stream,
                         ResourceArn=mysql["DBClusterArn"])

    def test_object_lock_on_an_existing_bucket_keeps_versions_and_needs_an_upload_checksum(self):
        # S3 User Guide, "Configuring S3 Object Lock": versioning first, then Object Lock, on new
        # or existing buckets; PutObject API reference: "The Content-MD5 or
        # x-amz-sdk-checksum-algorithm header is required for any request to upload an object
        # with a retention period configured using Amazon S3 Object Lock".
        import botocore.config
        s3 = self.s3
        s3.create_bucket(Bucket="locked")
        s3.put_object(Bucket="locked", Key="before", Body=b"0")
        lock = {"ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}}
        self.assertError("InvalidBucketState", lambda: s3.put_object_lock_configuration(
            Bucket="locked", ObjectLockConfiguration=lock))
        s3.put_bucket_versioning(Bucket="locked", VersioningConfiguration={"Status": "Enabled"})
        s3.put_object_lock_configuration(Bucket="locked", ObjectLockConfiguration=lock)
        self.assertEqual(s3.get_object_lock_configuration(Bucket="locked")["ObjectLockConfiguration"], lock)
        bare = boto3_client(self.emu, "s3", botocore.config.Config(request_checksum_calculation="when_required"))
        self.assertError("MissingUploadObjectWithObjectLockHeaders",
                         lambda: bare.put_object(Bucket="locked", Key="k", Body=b"1"))
        version = s3.put_object(Bucket="locked", Key="k", Body=b"1", ChecksumAlgorithm="CRC32")["VersionId"]
        retention = s3.get_object_retention(Bucket="locked", Key="k", VersionId=version)["Retention"]
        self.assertEqual(retention["Mode"], "GOVERNANCE")
        self.assertGreater(retention["RetainUntilDate"], datetime.datetime.now(datetime.timezone.utc))
        self.assertError("NoSuchObjectLockConfiguration",
                         lambda: s3.get_object_retention(Bucket="locked", Key="before"))
        answer = s3.delete_objects(Bucket="locked", Delete={"Objects": [{"Key": "k", "VersionId": version}]})
        self.assertEqual([e["Code"] for e in answer.get("Errors", [])], ["AccessDenied"])
        self.assertEqual(s3.get_object(Bucket="locked", Key="k", VersionId=version)["Body"].read(), b"1")

    def test_supported_configurations_follow_the_user_guides_and_aws_recorded_answers(self):
        def modes(engine, version, db_class):
            rows = self.rds.describe_orderable_db_instance_options(
                Engine=engine, EngineVersion=version, DBInstanceClass=db_class)["OrderableDBInstanceOptions"]
            self.assertTrue(all(r["DBInstanceClass"] == db_class for r in rows), rows)
            return sorted({m for r in rows for m in r.get("SupportedActivityStreamModes", [])}) if rows else None

        # Aurora PostgreSQL 15.2: AWS's own rows, as moto recorded them.
        self.assertEqual(modes("aurora-postgresql", "15.2", "db.r6g.large"), ["async", "sync"])
        self.assertEqual(modes("aurora-postgresql", "15.2", "db.t4g.medium"), [])
        self.assertEqual(modes("aurora-postgresql", "15.2", "db.serverless"), [])
        # The guides' tables elsewhere.
        self.assertEqual(modes("aurora-mysql", "8.0.mysql_aurora.3.08.0", "db.r6g.large"), ["async"])
        self.assertEqual(modes("aurora-mysql", "8.0.mysql_aurora.3.08.0", "db.t3.medium"), [])
        self.assertEqual(modes("aurora-mysql", "5.7.mysql_aurora.2.07.2", "db.r5.large"), [])
        self.assertEqual(modes("aurora-mysql", "5.7.mysql_aurora.2.11.2", "db.r5.large"), ["async"])
        self.assertEqual(modes("oracle-ee", "19.0.0.0.ru-2024-01.rur-2024-01.r1", "db.m5.large"), ["async"])
        self.assertEqual(modes("oracle-ee-cdb", "19.0.0.0.ru-2024-01.rur-2024-01.r1", "db.m5.large"), [])
        self.assertEqual(modes("sqlserver-se", "15.00.4335.1.v1", "db.x2iedn.xlarge"), ["async"])

        # StartActivityStream refuses them with the guide's message.
        key = self.key()
        self.cluster("burst", engine="aurora-mysql", EngineVersion="8.0.mysql_aurora.3.08.0")
        self.rds.create_db_instance(DBInstanceIdentifier="burst-1", DBClusterIdentifier="burst",
                                    Engine="aurora-mysql", DBInstanceClass="db.t3.medium")
        message = self.assertError("InvalidParameterCombination", self.rds.start_activity_stream,
                                   ResourceArn=self.describe("burst")["DBClusterArn"], Mode="async",
                                   KmsKeyId=key, ApplyImmediately=True)
        self.assertIn("You can't start a database activity stream in this configuration", message)
        self.assertIn("db.t3.medium", message)
        primary = self.rds.create_db_instance(
            DBInstanceIdentifier="ora-primary", Engine="oracle-ee", DBInstanceClass="db.r5.large",
            MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20)["DBInstance"]
        replica = self.rds.create_db_instance_read_replica(
            DBInstanceIdentifier="ora-replica", SourceDBInstanceIdentifier="ora-primary")["DBInstance"]
        self.assertEqual(replica["ReadReplicaSourceDBInstanceIdentifier"], "ora-primary")
        self.assertError("InvalidParameterCombination", self.rds.start_activity_stream,
                         ResourceArn=replica["DBInstanceArn"], Mode="async", KmsKeyId=key, ApplyImmediately=True)
        self.assertIsNotNone(primary["DBInstanceArn"])

    def test_the_audit_policy_of_an_instance_stream_locks_and_unlocks(self):
        key = self.key()
        ora = self.rds.create_db_instance(
            DBInstanceIdentifier="ora-lock", Engine="oracle-ee", DBInstanceClass="db.r5.large",
            MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20)["DBInstance"]
        arn = ora["DBInstanceArn"]
        self.assertError("InvalidDBInstanceState", self.rds.modify_activity_stream, ResourceArn=arn,
                         AuditPolicyState="unlocked")
        self.rds.start_activity_stream(ResourceArn=arn, Mode="async", KmsKeyId=key, ApplyImmediately=True)
        time.sleep(DELAY + 0.5)

        def policy():
            return self.rds.describe_db_instances(DBInstanceIdentifier="ora-lock")["DBInstances"][0][
                "ActivityStreamPolicyStatus"]

        self.assertEqual(policy(), "locked")
        out = self.rds.modify_activity_stream(ResourceArn=arn, AuditPolicyState="unlocked")
        self.assertEqual(out["PolicyStatus"], "unlocking-policy")
        time.sleep(DELAY + 0.5)
        self.assertEqual(policy(), "unlocked")
        cluster = self.cluster("no-lock")
        self.assertError("ResourceNotFoundFault", self.rds.modify_activity_stream,
                         ResourceArn=cluster["DBClusterArn"], AuditPolicyState="locked")
        self.rds.stop_activity_stream(ResourceArn=arn, ApplyImmediately=True)

    def test_a_reshard_closes_the_parent_and_get_records_names_its_children(self):
        """Kinesis Developer Guide, "Resharding a stream"; GetRecords API reference, ChildShards."""
        key = self.key()
        c = self.cluster("resharded")
        self.rds.start_activity_stream(ResourceArn=c["DBClusterArn"], Mode="async", KmsKeyId=key, ApplyImmediately=True)
        time.sleep(DELAY + 0.5)
        stream = f"aws-rds-das-{c['DbClusterResourceId']}"
        self.admin("inject", {"stream": stream, "events": [{"type": "record", "testId": "before"}]})
        parent = self.kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
        arn = self.kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
        opened = self.admin("reshard", {"stream": stream})["open"]
        self.assertEqual(len(opened), 2)

        def read(shard):
            it = self.kinesis.get_shard_iterator(StreamARN=arn, ShardId=shard,
                                                 ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            seqs, children = [], []
            for _ in range(20):
                out = self.kinesis.get_records(ShardIterator=it, StreamARN=arn)
                seqs += [r["SequenceNumber"] for r in out["Records"]]
                children = out.get("ChildShards", children)
                it = out.get("NextShardIterator")
                if not it or not out["Records"]:
                    break
            return seqs, children, it

        kept, children, it = read(parent)
        self.assertTrue(kept, "the closed parent keeps its records")
        self.assertIsNone(it, "no NextShardIterator at the end of a closed shard")
        self.assertEqual(sorted(ch["ShardId"] for ch in children), opened)
        self.assertTrue(all(ch["ParentShards"] == [parent] for ch in children))
        self.admin("inject", {"stream": stream, "events": [{"type": "record", "testId": "after"}]})
        self.assertEqual(read(parent)[0], kept, "nothing new goes to the closed parent")
        self.assertTrue(read(opened[0])[0] or read(opened[1])[0], "new records go to the children")
        shards = {s["ShardId"]: s for s in self.kinesis.list_shards(StreamName=stream)["Shards"]}
        self.assertIn("EndingSequenceNumber", shards[parent]["SequenceNumberRange"])
        self.rds.stop_activity_stream(ResourceArn=c["DBClusterArn"], ApplyImmediately=True)

    def test_instance_streams_have_their_own_resource_ids(self):
        key = self.key()
        instances = [
            self.rds.create_db_instance(DBInstanceIdentifier=f"ora-{i}", Engine="oracle-ee",
                                        DBInstanceClass="db.r5.large", MasterUsername="admin",
                                        MasterUserPassword="password123", AllocatedStorage=20)["DBInstance"]
            for i in range(2)
        ]
        ids = {i["DbiResourceId"] for i in instances}
        self.assertEqual(len(ids), 2)
        for instance in instances:
            out = self.rds.start_activity_stream(ResourceArn=instance["DBInstanceArn"], Mode="async",
                                                 KmsKeyId=key, EngineNativeAuditFieldsIncluded=True)
            self.assertEqual(out["KinesisStreamName"], "aws-rds-das-" + instance["DbiResourceId"])
        time.sleep(DELAY + 0.1)
        described = self.rds.describe_db_instances(DBInstanceIdentifier="ora-0")["DBInstances"][0]
        self.assertEqual(described["ActivityStreamStatus"], "started")
        self.assertTrue(described["ActivityStreamEngineNativeAuditFieldsIncluded"])
        self.assertError("DBInstanceNotFound", self.rds.start_activity_stream,
                         ResourceArn=instances[0]["DBInstanceArn"].replace("ora-0", "nope"),
                         Mode="async", KmsKeyId=key)

    def admin(self, path, body=None):
        return self.emu.admin(path, body)

    def started_cluster(self, name):
        cluster = self.cluster(name)
        key = self.key()
        self.rds.start_activity_stream(ResourceArn=cluster["DBClusterArn"], Mode="async", KmsKeyId=key)
        time.sleep(DELAY + 0.1)
        return cluster, "aws-rds-das-" + cluster["DbClusterResourceId"]

    def read_all(self, stream):
        shard = self.kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
        it = self.kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        return self.kinesis.get_records(ShardIterator=it, Limit=10000)["Records"]

    def open_record(self, data, resource_id):
        """Decrypts a DAS Kinesis record with the emulator's KMS and the Python Encryption SDK."""
        envelope = json.loads(data)
        self.assertEqual(envelope["type"], "DatabaseActivityMonitoringRecords")
        context_key = "aws:rds:dbc-id" if resource_id.startswith("cluster-") else "aws:rds:db-id"
        key = self.kms.decrypt(CiphertextBlob=base64.b64decode(envelope["key"]),
                               EncryptionContext={context_key: resource_id})["Plaintext"]
        plaintext, header = das_batch.SDK.decrypt(
            source=base64.b64decode(envelope["databaseActivityEvents"]),
            key_provider=das_batch.das_master_key(key))
        self.assertEqual(header.algorithm.algorithm_id, 0x0178)
        return json.loads(gzip.decompress(plaintext))

    def test_started_stream_fills_with_records_the_python_sdk_decrypts(self):
        cluster, stream = self.started_cluster("pg-producer")
        time.sleep(2.5)
        records = self.read_all(stream)
        self.assertGreaterEqual(len(records), 3)
        kinds = set()
        for r in records:
            record = self.open_record(r["Data"], cluster["DbClusterResourceId"])
            self.assertEqual(record["type"], "DatabaseActivityMonitoringRecord")
            self.assertEqual(record["clusterId"], cluster["DbClusterResourceId"])
            for event in record["databaseActivityEventList"]:
                kinds.add(event["type"] if event["type"] == "heartbeat" else event.get("command"))
                if event["type"] == "record":
                    self.assertEqual(event["serverType"], "PostgreSQL")
        self.assertIn("heartbeat", kinds)
        self.assertGreaterEqual(len(kinds), 3, kinds)
        truth = self.admin(f"truth?stream={stream}")["records"]
        self.assertEqual(sorted(t["sequenceNumber"] for t in truth)[:len(records)],
                         sorted(r["SequenceNumber"] for r in records))

    def test_each_engine_gets_its_own_event_shapes(self):
        key = self.key()
        mysql = self.cluster("my-producer", engine="aurora-mysql")
        oracle = self.rds.create_db_instance(
            DBInstanceIdentifier="ora-producer", Engine="oracle-ee", DBInstanceClass="db.r5.large",
            MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20)["DBInstance"]
        sqlserver = self.rds.create_db_instance(
            DBInstanceIdentifier="mss-producer", Engine="sqlserver-ee", DBInstanceClass="db.r5.large",
            MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20)["DBInstance"]
        targets = [(mysql["DBClusterArn"], mysql["DbClusterResourceId"], "MySQL"),
                   (oracle["DBInstanceArn"], oracle["DbiResourceId"], "oracle"),
                   (sqlserver["DBInstanceArn"], sqlserver["DbiResourceId"], "SQLSERVER")]
        for arn, _, _ in targets:
            self.rds.start_activity_stream(ResourceArn=arn, Mode="async", KmsKeyId=key)
        time.sleep(DELAY + 2)
        for _, resource_id, server_type in targets:
            records = self.read_all("aws-rds-das-" + resource_id)
            self.assertTrue(records, server_type)
            types = set()
            for r in records:
                record = self.open_record(r["Data"], resource_id)
                types |= {e.get("serverType") for e in record["databaseActivityEventList"] if e["type"] == "record"}
                if resource_id.startswith("db-"):
                    self.assertEqual((record["clusterId"], record["instanceId"]), ("", resource_id))
            self.assertEqual(types, {server_type})

    def test_injected_events_are_written_and_in_the_ground_truth(self):
        cluster, stream = self.started_cluster("pg-inject")
        events = [{"type": "record", "testId": "inj-1", "class": "DDL", "command": "CREATE TABLE",
                   "serverType": "PostgreSQL", "logTime": log_time()}]
        seq = self.admin("inject", {"stream": cluster["DbClusterResourceId"], "events": events})["sequenceNumber"]
        damaged = self.admin("inject", {"stream": stream, "events": events, "damage": "tampered-frame"})
        mine = [r for r in self.read_all(stream) if r["SequenceNumber"] == seq]
        self.assertEqual(len(mine), 1)
        record = self.open_record(mine[0]["Data"], cluster["DbClusterResourceId"])
        self.assertEqual(record["databaseActivityEventList"], events)
        truth = {t["sequenceNumber"]: t for t in self.admin(f"truth?stream={stream}")["records"]}
        self.assertEqual(truth[seq]["events"], events)
        self.assertEqual(truth[damaged["sequenceNumber"]]["damage"], "tampered-frame")
        # Not started: refused.
        with self.assertRaises(urllib.error.HTTPError) as refused:
            self.admin("inject", {"stream": "aws-rds-das-cluster-NOPE", "events": events})
        self.assertEqual(refused.exception.code, 409)

    def delivery(self, name, function_role_service="lambda.amazonaws.com", firehose_service="firehose.amazonaws.com"):
        return delivery(self.emu, name, function_role_service, firehose_service)

    def objects(self, bucket, prefix, manifests=False):
        """key -> body under the prefix: the event objects, or the processor's manifests."""
        out = {}
        for o in self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
            if is_digest(o["Key"]):
                continue
            if is_manifest(o["Key"]) == manifests:
                out[o["Key"]] = self.s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        return out

    def wait_objects(self, bucket, prefix, count, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = self.objects(bucket, prefix)
            if len(found) >= count:
                return found
            time.sleep(0.2)
        self.fail(f"no {count} objects under s3://{bucket}/{prefix} after {timeout} s: "
                  f"{self.admin('firehose')}")

    def test_runner_delivers_ok_output_and_failures_as_firehose_does(self):
        src, bucket = self.delivery("fh-deliver")
        for data in (b"alpha", b"please fail", b"beta"):
            self.kinesis.put_record(StreamName=src, Data=data, PartitionKey="p")
        ok = self.wait_objects(bucket, "ok/", 1)
        errors = self.wait_objects(bucket, "errors/processing-failed/", 1)
        [(ok_key, ok_body)] = ok.items()
        self.assertRegex(ok_key, r"^ok/\d{4}/\d{2}/\d{2}/fh-deliver-1-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-")
        self.assertEqual(ok_body, b"ALPHA|sfxBETA|sfx")
        [error_body] = errors.values()
        failure = json.loads(error_body)
        self.assertEqual(base64.b64decode(failure["rawData"]), b"please fail")
        self.assertEqual(failure["errorCode"], "Lambda.ProcessingFailed")
        self.assertTrue(failure["lambdaArn"].endswith(":function:fh-deliver-fn"))
        stats = self.admin("firehose")["fh-deliver"]["stats"]
        self.assertEqual((stats["ok"], stats["failed"]), (2, 1))

    def test_failed_invocations_are_retried_then_sent_to_the_error_prefix(self):
        src, bucket = self.delivery("fh-crash")
        self.kinesis.put_record(StreamName=src, Data=b"crash now", PartitionKey="p")
        errors = self.wait_objects(bucket, "errors/", 1)
        failure = json.loads(list(errors.values())[0])
        self.assertEqual(failure["errorCode"], "Lambda.FunctionError")
        self.assertEqual(failure["attemptsMade"], 2)
        self.assertEqual(self.admin("firehose")["fh-crash"]["stats"]["retries"], 1)

    def test_cloudwatch_serves_the_metrics_of_what_the_runner_and_the_function_did(self):
        # (Firehose's and Lambda's metrics, in the RPC v2 CBOR protocol the Rust SDK speaks.)
        src, bucket = self.delivery("fh-metrics")
        for data in (b"alpha", b"crash now"):
            self.kinesis.put_record(StreamName=src, Data=data, PartitionKey="p")
            self.wait_objects(bucket, "ok/" if data == b"alpha" else "errors/", 1)
        now = datetime.datetime.now(datetime.timezone.utc)

        def query(i, namespace, name, dimension, stat):
            return {"Id": f"q{i}", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": name,
                    "Dimensions": [{"Name": dimension[0], "Value": dimension[1]}]},
                    "Period": 300, "Stat": stat}}

        stream, function = ("DeliveryStreamName", "fh-metrics"), ("FunctionName", "fh-metrics-fn")
        queries = [query(0, "AWS/Firehose", "ExecuteProcessing.Success", stream, "Minimum"),
                   query(1, "AWS/Firehose", "ExecuteProcessing.Success", stream, "Maximum"),
                   query(2, "AWS/Lambda", "Invocations", function, "Sum"),
                   query(3, "AWS/Lambda", "Errors", function, "Sum"),
                   query(4, "AWS/Firehose", "DeliveryToS3.Success", stream, "Minimum"),
                   query(5, "AWS/Firehose", "KinesisMillisBehindLatest", stream, "Maximum"),
                   query(6, "AWS/Lambda", "Errors", ("FunctionName", "no-such-function"), "Sum")]
        status, headers, out = cloudwatch_rpc(self.url, "GetMetricData", {
            "StartTime": now - datetime.timedelta(minutes=10), "EndTime": now + datetime.timedelta(minutes=5),
            "MetricDataQueries": queries})
        self.assertEqual((status, headers.get("smithy-protocol")), (200, "rpc-v2-cbor"), out)
        values = {r["Id"]: r["Values"] for r in out["MetricDataResults"]}
        self.assertTrue(all(r["StatusCode"] == "Complete" for r in out["MetricDataResults"]), out)
        # One good invocation, one that crashed twice (retried once): 3 runs, 2 errors.
        self.assertEqual(sum(values["q2"]), 3.0, values)
        self.assertEqual(sum(values["q3"]), 2.0, values)
        self.assertEqual((min(values["q0"]), max(values["q1"])), (0.0, 1.0), values)
        self.assertEqual(min(values["q4"]), 1.0, values)
        self.assertTrue(values["q5"], "the read lag is reported when records are read")
        self.assertEqual(values["q6"], [], "no datapoints for a function that never ran")
        # Timestamps come back as timestamps (CBOR tag 1).
        self.assertIsInstance(out["MetricDataResults"][0]["Timestamps"][0], datetime.datetime)
        # What it does not serve, it says so in the protocol's form.
        status, _, out = cloudwatch_rpc(self.url, "DescribeAlarmHistory", {})
        self.assertEqual(status, 404)
        self.assertEqual(out["Error"]["Code"], "UnknownOperationException")

    def test_alarms_follow_the_metrics_and_notify_their_topics(self):
        sns, sqs, kms = (self.emu.client(s, "us-east-1") for s in ("sns", "sqs", "kms"))

        def subscribed_queue(topic_arn, name):
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
            return url

        def notifications(url, seconds=3):
            got, deadline = [], time.time() + seconds
            while time.time() < deadline:
                for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                    body = json.loads(m["Body"])
                    got.append((body.get("Subject"), json.loads(body["Message"])))
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                time.sleep(0.2)
            return got

        plain = sns.create_topic(Name="alarms-plain")["TopicArn"]
        # A key whose policy does not let CloudWatch use it, and one whose policy does.
        closed = kms.create_key()["KeyMetadata"]["Arn"]
        open_policy = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Sid": "Account", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "CloudWatchAlarms", "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
             "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"}]})
        opened = kms.create_key(Policy=open_policy)["KeyMetadata"]["Arn"]
        sealed = sns.create_topic(Name="alarms-sealed", Attributes={"KmsMasterKeyId": closed})["TopicArn"]
        usable = sns.create_topic(Name="alarms-usable", Attributes={"KmsMasterKeyId": opened})["TopicArn"]
        queues = {t: subscribed_queue(t, t.rsplit(":", 1)[-1]) for t in (plain, sealed, usable)}

        src, bucket = self.delivery("fh-alarm")
        alarm = {"AlarmName": "fh-alarm-errors", "Namespace": "AWS/Lambda", "MetricName": "Errors",
                 "Dimensions": [{"Name": "FunctionName", "Value": "fh-alarm-fn"}], "Statistic": "Sum",
                 "Period": 60, "EvaluationPeriods": 1, "Threshold": 1.0,
                 "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
                 "AlarmActions": [plain, sealed, usable], "OKActions": [plain],
                 "Tags": [{"Key": "team", "Value": "audit"}]}
        status, _, out = cloudwatch_rpc(self.url, "PutMetricAlarm", alarm)
        self.assertEqual(status, 200, out)
        # No data, and missing data counts as not breaching: OK, notified.
        [(subject, ok)] = notifications(queues[plain])
        self.assertEqual((ok["OldStateValue"], ok["NewStateValue"]), ("INSUFFICIENT_DATA", "OK"), ok)
        self.assertEqual(subject, 'OK: "fh-alarm-errors" in us-east-1')

        self.kinesis.put_record(StreamName=src, Data=b"crash now", PartitionKey="p")
        self.wait_objects(bucket, "errors/", 1)
        [(subject, fired)] = notifications(queues[plain])
        self.assertEqual((fired["NewStateValue"], fired["OldStateValue"]), ("ALARM", "OK"), fired)
        self.assertEqual(subject, 'ALARM: "fh-alarm-errors" in us-east-1')
        self.assertEqual(fired["Trigger"]["MetricName"], "Errors")
        self.assertEqual(fired["Trigger"]["Dimensions"], [{"value": "fh-alarm-fn", "name": "FunctionName"}])
        self.assertIn("Threshold Crossed", fired["NewStateReason"])
        self.assertEqual(len(notifications(queues[usable], 1)), 1, "the key lets CloudWatch encrypt")
        self.assertEqual(notifications(queues[sealed], 1), [], "the key does not: nothing delivered")

        status, _, out = cloudwatch_rpc(self.url, "DescribeAlarms", {"AlarmNames": ["fh-alarm-errors"]})
        [described] = out["MetricAlarms"]
        status, _, tags = cloudwatch_rpc(self.url, "ListTagsForResource", {"ResourceARN": described["AlarmArn"]})
        self.assertEqual((status, tags["Tags"]), (200, [{"Key": "team", "Value": "audit"}]), tags)
        status, _, out = cloudwatch_rpc(self.url, "ListTagsForResource",
                                        {"ResourceARN": described["AlarmArn"] + "-gone"})
        self.assertEqual((status, out["Error"]["Code"]), (404, "ResourceNotFoundException"), out)
        # The PutMetricAlarm API reference's limits: Period 10, 20, 30 or a multiple of 60;
        # Period x EvaluationPeriods at most a day under hourly periods; M out of N.
        for bad in ({"Period": 45}, {"Period": 300, "EvaluationPeriods": 289},
                    {"EvaluationPeriods": 2, "DatapointsToAlarm": 3}):
            status, _, out = cloudwatch_rpc(self.url, "PutMetricAlarm", dict(alarm, AlarmName="fh-bad", **bad))
            self.assertEqual((status, out["Error"]["Code"]), (400, "InvalidParameterValue"), (bad, out))
        self.assertEqual((described["StateValue"], described["Threshold"]), ("ALARM", 1.0), described)
        # Updating the configuration keeps the state; deleting an unknown name with it is no error.
        cloudwatch_rpc(self.url, "PutMetricAlarm", dict(alarm, AlarmDescription="now described"))
        _, _, out = cloudwatch_rpc(self.url, "DescribeAlarms", {"AlarmNamePrefix": "fh-alarm"})
        self.assertEqual([(a["StateValue"], a.get("AlarmDescription")) for a in out["MetricAlarms"]],
                         [("ALARM", "now described")])
        status, _, _ = cloudwatch_rpc(self.url, "DeleteAlarms", {"AlarmNames": ["fh-alarm-errors", "no-such"]})
        self.assertEqual(status, 200)
        _, _, out = cloudwatch_rpc(self.url, "DescribeAlarms", {})
        self.assertNotIn("fh-alarm-errors", [a["AlarmName"] for a in out["MetricAlarms"]])

    def test_roles_that_do_not_trust_the_service_block_delivery(self):
        src, bucket = self.delivery("fh-untrusted", firehose_service="lambda.amazonaws.com")
        self.kinesis.put_record(StreamName=src, Data=b"alpha", PartitionKey="p")
        time.sleep(2.5)
        self.assertEqual(self.objects(bucket, ""), {})
        errors = self.admin("firehose")["fh-untrusted"]["errors"]
        self.assertTrue(any("does not trust firehose.amazonaws.com" in e["error"] for e in errors), errors)

    def test_invoke_runs_the_functions_code_and_answers_as_lambda_documents(self):
        """Lambda API Reference, Invoke: a failed function is 200 with X-Amz-Function-Error
        Unhandled and its error JSON; a synchronous request over 6 MB is 413
        RequestTooLargeException before the function runs."""
        from botocore.exceptions import ClientError

        self.delivery("invoked")
        event = {"records": [{"recordId": "r1", "data": base64.b64encode(b"alpha").decode()}]}
        out = self.lam.invoke(FunctionName="invoked-fn", Payload=json.dumps(event).encode())
        self.assertEqual(out["StatusCode"], 200)
        self.assertNotIn("FunctionError", out)
        [answer] = json.loads(out["Payload"].read())["records"]
        self.assertEqual(base64.b64decode(answer["data"]), b"ALPHA|sfx")
        event["records"][0]["data"] = base64.b64encode(b"crash").decode()
        out = self.lam.invoke(FunctionName="invoked-fn", Payload=json.dumps(event).encode())
        self.assertEqual((out["StatusCode"], out.get("FunctionError")), (200, "Unhandled"))
        self.assertEqual(json.loads(out["Payload"].read())["errorMessage"], "boom")
        big = json.dumps({"records": [], "pad": "x" * (6 * 1024 * 1024)}).encode()
        with self.assertRaises(ClientError) as refused:
            self.lam.invoke(FunctionName="invoked-fn", Payload=big)
        self.assertEqual(refused.exception.response["Error"]["Code"], "RequestTooLargeException")
        self.assertEqual(refused.exception.response["ResponseMetadata"]["HTTPStatusCode"], 413)

    def test_a_deployed_das_processor_zip_leaves_decrypted_events_in_s3(self):
        """The issue's "done when": cluster, activity stream, processor zip, delivery stream."""
        binary = os.environ.get("DAS_PROCESSOR_BIN")
        self.assertTrue(binary and os.path.exists(binary),
                        "set DAS_PROCESSOR_BIN to a built das-processor (scripts/test does)")
        cluster, stream = self.started_cluster("pg-pipeline")
        resource_id = cluster["DbClusterResourceId"]
        self.iam.create_role(RoleName="pipe-fn", AssumeRolePolicyDocument=trust("lambda.amazonaws.com"))
        fh_role = self.iam.create_role(RoleName="pipe-fh",
                                       AssumeRolePolicyDocument=trust("firehose.amazonaws.com"))["Role"]["Arn"]
        self.s3.create_bucket(Bucket="pipe-audit")
        with open(binary, "rb") as f:
            code = zip_bootstrap(f.read())
        fn = self.lam.create_function(
            FunctionName="pipe-processor", Runtime="provided.al2023", Handler="bootstrap",
            Role="arn:aws:iam::123456789012:role/pipe-fn", Code={"ZipFile": code},
            Architectures=["x86_64"], Timeout=60,
            Environment={"Variables": {"DAS_OUTPUT_BUCKET": "pipe-audit", "DAS_LOG_LEVEL": "debug"}})
        src = self.kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
        self.firehose.create_delivery_stream(
            DeliveryStreamName="pipe", DeliveryStreamType="KinesisStreamAsSource",
            KinesisStreamSourceConfiguration={"KinesisStreamARN": src, "RoleARN": fh_role},
            ExtendedS3DestinationConfiguration={
                "RoleARN": fh_role, "BucketARN": "arn:aws:s3:::pipe-audit",
                "Prefix": "firehose/!{timestamp:yyyy/MM/dd}/", "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
                "ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
                    {"ParameterName": "LambdaArn", "ParameterValue": fn["FunctionArn"]}]}]},
            })
        self.emu.wait_for_delivery("pipe", timeout=5)
        time.sleep(0.6)
        # Two days old: filed by the events' own hour, whatever the clock says.
        old = log_time(datetime.timedelta(days=2))
        events = [
            {"type": "record", "testId": "pipe-ddl", "class": "DDL", "command": "CREATE TABLE",
             "serverType": "PostgreSQL", "dbUserName": "alice", "logTime": old},
            {"type": "record", "testId": "pipe-read", "class": "READ", "command": "SELECT",
             "serverType": "PostgreSQL", "dbUserName": "alice", "logTime": old},
            {"type": "heartbeat"},
        ]
        self.admin("inject", {"stream": stream, "events": events})
        self.admin("inject", {"stream": stream, "events": events[:1], "damage": "tampered-frame"})

        deadline, found = time.time() + 30, {}
        while time.time() < deadline:
            found = {}
            for key, body in self.objects("pipe-audit", "parsed/").items():
                for line in gzip.decompress(body).decode().splitlines():
                    event = json.loads(line)
                    if "testId" in event:
                        found.setdefault(event["testId"], []).append((key, event))
            errors = self.objects("pipe-audit", "errors/processing-failed/")
            if len(found) == 2 and errors:
                break
            time.sleep(0.3)
        self.assertEqual(sorted(found), ["pipe-ddl", "pipe-read"], self.admin("firehose"))
        [(ddl_key, ddl)] = found["pipe-ddl"]
        self.assertTrue(ddl_key.startswith(f"parsed/DDL/{hour_folder(old)}/"), ddl_key)
        self.assertEqual((ddl["category"], ddl["clusterId"]), ("DDL", resource_id))
        self.assertTrue(found["pipe-read"][0][0].startswith(f"parsed/DQL/{hour_folder(old)}/"))
        # And each invocation's manifest (written once its objects are), filed by when it
        # wrote, names the objects it wrote.
        deadline, written = time.time() + 10, set()
        while ddl_key not in written and time.time() < deadline:
            written = {o["key"] for body in self.objects("pipe-audit", "parsed/", manifests=True).values()
                       for o in json.loads(body)["objects"]}
            time.sleep(0.2)
        self.assertIn(ddl_key, written)
        failures = [json.loads(line) for body in errors.values() for line in body.decode().splitlines()]
        self.assertTrue(any(f["errorCode"] == "Lambda.ProcessingFailed" for f in failures))
        # The trickle went through too: decrypted events of several categories, no heartbeats.
        categories = {key.split("/")[1] for key in self.objects("pipe-audit", "parsed/")}
        self.assertGreaterEqual(len(categories), 2, categories)


class ContractTest(AwsAssertions, unittest.TestCase):
    """The emulator checks every request against botocore's model of its operation
    (dasemu/contract.py) and says how it breaks it: each kind of violation, in each protocol."""

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator.start("--trickle", "0")

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def signed(self, service, method, path, body=b"", headers=None):
        """A raw request signed as an SDK would sign it, but not shaped by one."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        request = AWSRequest(method=method, url=self.emu.url + path, data=body, headers=headers or {})
        SigV4Auth(Credentials("testing", "testing"), service, "eu-west-1").add_auth(request)
        prepared = request.prepare()
        req = urllib.request.Request(prepared.url, data=body or None, method=method, headers=dict(prepared.headers))
        try:
            urllib.request.urlopen(req).read()
        except urllib.error.HTTPError:
            pass  # moto's answer does not matter here: the contract check is the emulator's

    def violations_of(self, operation):
        report = self.emu.admin("contract")
        return [v for c in report["violations"] if c["operation"] == operation for v in c["violations"]]

    def test_each_kind_of_violation_is_named_in_each_protocol(self):
        from botocore.config import Config

        loose = Config(parameter_validation=False)
        client = lambda name: boto3_client(self.emu, name, loose)  # noqa: E731
        # json: an enum value the model does not have; a number below its minimum.
        try:
            client("kms").create_key(KeySpec="SYMMETRIC_BOGUS")
        except Exception:
            pass
        self.assertTrue(any("'SYMMETRIC_BOGUS' is not one of" in v for v in self.violations_of("kms:CreateKey")),
                        self.emu.admin("contract"))
        # json: a required member missing; a member the shape does not have.
        self.signed("firehose", "POST", "/", json.dumps({"Bogus": 1}).encode(),
                    {"X-Amz-Target": "Firehose_20150804.DescribeDeliveryStream",
                     "Content-Type": "application/x-amz-json-1.1"})
        found = self.violations_of("firehose:DescribeDeliveryStream")
        self.assertIn("DeliveryStreamName: required by DescribeDeliveryStreamInput, missing", found)
        self.assertIn("Bogus: not a member of DescribeDeliveryStreamInput", found)
        # json: a string pattern (Smithy patterns are not anchored unless they say so: this one is).
        try:
            client("kms").create_alias(AliasName="alias/no spaces", TargetKeyId="k")
        except Exception:
            pass
        self.assertTrue(any("does not match AliasNameType's pattern" in v
                            for v in self.violations_of("kms:CreateAlias")), self.violations_of("kms:CreateAlias"))
        # query: a string too long; a parameter the operation does not have.
        self.signed("iam", "POST", "/", ("Action=GetRole&Version=2010-05-08&RoleName=" + "r" * 65
                                         + "&Colour=blue").encode(),
                    {"Content-Type": "application/x-www-form-urlencoded"})
        found = self.violations_of("iam:GetRole")
        self.assertTrue(any("65 characters, more than the maximum 64" in v for v in found), found)
        self.assertIn("Colour: not a member of GetRole's input", found)
        # query: lists and maps read back from member.N and entry.N (a valid request is clean).
        client("rds").describe_db_clusters(Filters=[{"Name": "engine", "Values": ["aurora-postgresql"]}])
        self.assertEqual(self.violations_of("rds:DescribeDBClusters"), [])
        # rest-json: a number below its minimum, in the body.
        try:
            client("lambda").create_function(FunctionName="f", Role="arn:aws:iam::123456789012:role/r",
                                             Code={"ZipFile": b"PK"}, MemorySize=64, Runtime="provided.al2023",
                                             Handler="bootstrap")
        except Exception:
            pass
        self.assertTrue(any("MemorySize: 64 is below" in v for v in self.violations_of("lambda:CreateFunction")),
                        self.violations_of("lambda:CreateFunction"))
        # rest-xml: an enum in the query string, and the operation told from its route.
        try:
            client("s3").list_objects_v2(Bucket="some-bucket", EncodingType="base64")
        except Exception:
            pass
        self.assertTrue(any("'base64' is not one of" in v for v in self.violations_of("s3:ListObjectsV2")),
                        self.emu.admin("contract"))
        report = self.emu.admin("contract")
        self.assertGreater(report["checked"], 6)


def boto3_client(emu, service, config):
    import boto3

    return boto3.client(service, endpoint_url=emu.url, region_name="eu-west-1", config=config,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


class IamEnforcementTest(AwsAssertions, unittest.TestCase):
    """`--enforce-iam` (dasemu/iam_enforcement.py): policies scoped by resource and encryption
    context are honoured as AWS honours them; the root key is allowed everything."""

    ROLE_POLICY = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "{key}",
         "Condition": {"StringEquals": {"kms:EncryptionContext:aws:rds:dbc-id": "cluster-A"}}},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::enforced/parsed/*"}]}

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator.start("--trickle", "0", "--enforce-iam")
        kms, iam = cls.emu.client("kms"), cls.emu.client("iam")
        cls.key = kms.create_key()["KeyMetadata"]["Arn"]
        cls.other_key = kms.create_key()["KeyMetadata"]["Arn"]
        kms.create_alias(AliasName="alias/enforced", TargetKeyId=cls.key)
        cls.emu.client("s3").create_bucket(Bucket="enforced",
                                           CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        iam.create_role(RoleName="enforced", AssumeRolePolicyDocument=trust("lambda.amazonaws.com"))
        iam.put_role_policy(RoleName="enforced", PolicyName="p",
                            PolicyDocument=json.dumps(cls.ROLE_POLICY).replace("{key}", cls.key))
        c = cls.emu.client("sts").assume_role(RoleArn="arn:aws:iam::123456789012:role/enforced",
                                              RoleSessionName="probe")["Credentials"]
        clients = cls.emu.clients_for(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
        cls.role = lambda self, service: clients(service)

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def blob(self, key, resource_id):
        return self.emu.client("kms").generate_data_key(
            KeyId=key, KeySpec="AES_256", EncryptionContext={"aws:rds:dbc-id": resource_id})["CiphertextBlob"]

    def user(self, name, statements, region="eu-west-1"):
        iam = self.emu.client("iam")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": statements}))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return self.emu.clients_for(key["AccessKeyId"], key["SecretAccessKey"], region=region)

    def test_cloudwatch_get_metric_data_needs_its_permission(self):
        iam = self.emu.client("iam")
        keys = {}
        for name, statements in (("metrics-reader", [{"Effect": "Allow", "Action": "cloudwatch:GetMetricData",
                                                      "Resource": "*"}]),
                                 ("no-metrics", [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}])):
            self.user(name, statements)
            key = iam.create_access_key(UserName=name)["AccessKey"]
            keys[name] = (key["AccessKeyId"], key["SecretAccessKey"])
        now = datetime.datetime.now(datetime.timezone.utc)
        params = {"StartTime": now - datetime.timedelta(minutes=5), "EndTime": now, "MetricDataQueries": [
            {"Id": "q", "MetricStat": {"Metric": {"Namespace": "AWS/Lambda", "MetricName": "Errors"},
                                       "Period": 60, "Stat": "Sum"}}]}
        status, _, out = cloudwatch_rpc(self.emu.url, "GetMetricData", params, "eu-west-1", keys["metrics-reader"])
        self.assertEqual(status, 200, out)
        status, _, out = cloudwatch_rpc(self.emu.url, "GetMetricData", params, "eu-west-1", keys["no-metrics"])
        self.assertEqual((status, out["Error"]["Code"]), (403, "AccessDeniedException"), out)
        self.assertIn("cloudwatch:GetMetricData", out["Error"]["Message"])
        # Alarms are the resource of PutMetricAlarm and DeleteAlarms.
        self.user("alarm-keeper", [{"Effect": "Allow", "Action": ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"],
                                    "Resource": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:mine-*"}])
        key = iam.create_access_key(UserName="alarm-keeper")["AccessKey"]
        keeper = (key["AccessKeyId"], key["SecretAccessKey"])
        alarm = {"Namespace": "AWS/Lambda", "MetricName": "Errors", "Statistic": "Sum", "Period": 60,
                 "EvaluationPeriods": 1, "Threshold": 1.0, "ComparisonOperator": "GreaterThanOrEqualToThreshold"}
        status, _, out = cloudwatch_rpc(self.emu.url, "PutMetricAlarm", dict(alarm, AlarmName="mine-errors"),
                                        "eu-west-1", keeper)
        self.assertEqual(status, 200, out)
        status, _, out = cloudwatch_rpc(self.emu.url, "PutMetricAlarm", dict(alarm, AlarmName="theirs"),
                                        "eu-west-1", keeper)
        self.assertEqual(status, 403, out)
        status, _, out = cloudwatch_rpc(self.emu.url, "DeleteAlarms", {"AlarmNames": ["mine-errors", "theirs"]},
                                        "eu-west-1", keeper)
        self.assertEqual(status, 403, "every alarm named must be allowed")
        # Tags given to a new alarm need cloudwatch:TagResource too (PutMetricAlarm API
        # reference, Tags); on an existing alarm they are ignored, and so is the permission.
        tags = [{"Key": "managed-by", "Value": "das-setup"}]
        status, _, out = cloudwatch_rpc(self.emu.url, "PutMetricAlarm", dict(alarm, AlarmName="mine-new", Tags=tags),
                                        "eu-west-1", keeper)
        self.assertEqual(status, 403, out)
        self.assertIn("cloudwatch:TagResource", out["Error"]["Message"])
        status, _, out = cloudwatch_rpc(self.emu.url, "PutMetricAlarm", dict(alarm, AlarmName="mine-errors", Tags=tags),
                                        "eu-west-1", keeper)
        self.assertEqual(status, 200, out)

    def test_kms_put_key_policy_runs_the_lockout_check_with_the_keys_tags(self):
        """PutKeyPolicy API reference, BypassPolicyLockoutSafetyCheck: the new policy must let the
        caller PutKeyPolicy again; aws:ResourceTag/<key> is the key's tag ("ABAC for AWS KMS")."""
        admin = self.emu.client("kms")
        tagged = admin.create_key(Tags=[{"TagKey": "managed-by", "TagValue": "das-setup"}])["KeyMetadata"]["Arn"]
        other = admin.create_key()["KeyMetadata"]["Arn"]
        kms = self.user("key-policy-writer", [{
            "Effect": "Allow", "Action": "kms:PutKeyPolicy", "Resource": "arn:aws:kms:eu-west-1:123456789012:key/*",
            "Condition": {"StringEquals": {"aws:ResourceTag/managed-by": "das-setup"}}}])("kms")
        account = {"Sid": "Account", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                   "Action": "kms:*", "Resource": "*"}
        delegating = json.dumps({"Version": "2012-10-17", "Statement": [account]})
        kms.put_key_policy(KeyId=tagged, PolicyName="default", Policy=delegating)
        self.assertError("AccessDeniedException", kms.put_key_policy, KeyId=other, PolicyName="default",
                         Policy=delegating)
        locked_out = json.dumps({"Version": "2012-10-17", "Statement": [dict(account, Action="kms:Decrypt")]})
        message = self.assertError("MalformedPolicyDocumentException", kms.put_key_policy, KeyId=tagged,
                                   PolicyName="default", Policy=locked_out)
        self.assertIn("will not allow you to update the key policy", message)

    def test_kms_create_key_runs_the_policy_lockout_safety_check(self):
        """CreateKey API reference, Policy: the key policy must let the caller PutKeyPolicy
        later; KMS's default (no Policy) needs nothing more."""
        clients = self.user("key-maker", [{"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*"}])
        kms = clients("kms")
        delegating = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*",
            "Resource": "*"}]})
        message = self.assertError("MalformedPolicyDocumentException", kms.create_key, Policy=delegating)
        self.assertIn("will not allow you to update the key policy", message)
        self.assertEqual(kms.create_key()["KeyMetadata"]["KeyState"], "Enabled")
        allowed = self.user("key-admin", [{"Effect": "Allow", "Action": ["kms:CreateKey", "kms:PutKeyPolicy"],
                                           "Resource": "*"}])
        self.assertEqual(allowed("kms").create_key(Policy=delegating)["KeyMetadata"]["KeyState"], "Enabled")

    def test_lambda_shows_tags_only_to_callers_allowed_list_tags(self):
        """GetFunction API reference, Tags: "Lambda returns tag data only if you have explicit
        allow permissions for lambda:ListTags"."""
        self.emu.client("lambda").create_function(
            FunctionName="tagged", Runtime="provided.al2023", Handler="bootstrap",
            Role="arn:aws:iam::123456789012:role/enforced", Code={"ZipFile": zip_bootstrap(b"\x7fELF")},
            Tags={"owner": "me"})
        fn = "arn:aws:lambda:eu-west-1:123456789012:function:tagged"
        reader = self.user("fn-reader", [{"Effect": "Allow", "Action": "lambda:GetFunction", "Resource": fn}])
        answer = reader("lambda").get_function(FunctionName="tagged")
        self.assertNotIn("Tags", answer)
        self.assertEqual(answer["TagsError"]["ErrorCode"], "AccessDeniedException")
        both = self.user("fn-tag-reader", [{"Effect": "Allow", "Action": ["lambda:GetFunction", "lambda:ListTags"],
                                            "Resource": fn}])
        self.assertEqual(both("lambda").get_function(FunctionName="tagged")["Tags"], {"owner": "me"})

    def test_sse_kms_writes_need_generate_data_key_on_the_buckets_key(self):
        """S3 User Guide, SSE-KMS: S3 asks KMS for a data key with the writer's permissions."""
        s3 = self.emu.client("s3")
        s3.create_bucket(Bucket="kms-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_bucket_encryption(Bucket="kms-bucket", ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": self.key}}]})
        put = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::kms-bucket/*"}
        writer = self.user("writer", [put])
        self.assertError("AccessDenied", writer("s3").put_object, Bucket="kms-bucket", Key="a", Body=b"1")
        keyed = self.user("keyed-writer", [put, {"Effect": "Allow", "Action": "kms:GenerateDataKey",
                                                 "Resource": self.key}])
        keyed("s3").put_object(Bucket="kms-bucket", Key="a", Body=b"1")

    def test_kms_decrypt_is_scoped_by_key_and_encryption_context(self):
        kms = self.role("kms")
        context = {"aws:rds:dbc-id": "cluster-A"}
        self.assertEqual(len(kms.decrypt(CiphertextBlob=self.blob(self.key, "cluster-A"),
                                         EncryptionContext=context)["Plaintext"]), 32)
        # The key named through its alias is the same resource.
        self.assertEqual(kms.decrypt(CiphertextBlob=self.blob("alias/enforced", "cluster-A"), KeyId="alias/enforced",
                                     EncryptionContext=context)["KeyId"], self.key)
        self.assertError("AccessDeniedException", lambda: kms.decrypt(
            CiphertextBlob=self.blob(self.key, "cluster-B"), EncryptionContext={"aws:rds:dbc-id": "cluster-B"}))
        self.assertError("AccessDeniedException", lambda: kms.decrypt(
            CiphertextBlob=self.blob(self.other_key, "cluster-A"), EncryptionContext=context))
        blob = self.emu.client("kms").generate_data_key(KeyId=self.key, KeySpec="AES_256")["CiphertextBlob"]
        self.assertError("AccessDeniedException", lambda: kms.decrypt(CiphertextBlob=blob))
        self.assertError("AccessDeniedException", lambda: kms.generate_data_key(
            KeyId=self.key, KeySpec="AES_256", EncryptionContext=context))

    def test_s3_and_other_services_follow_the_policy_and_the_root_is_allowed(self):
        s3 = self.role("s3")
        s3.put_object(Bucket="enforced", Key="parsed/x", Body=b"1")
        self.assertError("AccessDenied", lambda: s3.put_object(Bucket="enforced", Key="other/x", Body=b"1"))
        self.assertError("AccessDenied", lambda: s3.get_object(Bucket="enforced", Key="parsed/x"))
        self.assertError("AccessDeniedException", lambda: self.role("kinesis").list_streams())
        self.assertError("AccessDenied", lambda: self.role("iam").list_roles())
        self.assertEqual(self.emu.client("s3").get_object(Bucket="enforced", Key="parsed/x")["Body"].read(), b"1")
        principals = {(c["op"], c["principal"], c["status"]) for c in self.emu.calls()}
        self.assertIn(("PUT /enforced/parsed/x", "arn:aws:sts::123456789012:assumed-role/enforced/probe", 200),
                      principals)
        self.assertIn(("GET /enforced/parsed/x", "root", 200), principals)
        self.assertIn(("GET /enforced/parsed/x", "arn:aws:sts::123456789012:assumed-role/enforced/probe", 403),
                      principals)

    def test_invoke_needs_lambda_invoke_function_on_the_function(self):
        delivery(self.emu, "inv-enforced")
        arn = "arn:aws:lambda:us-east-1:123456789012:function:inv-enforced-fn"
        allowed = self.user("invoker", [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arn}],
                            "us-east-1")
        other = self.user("non-invoker", [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                                           "Resource": arn + "-other"}], "us-east-1")
        payload = json.dumps({"records": []}).encode()
        out = allowed("lambda").invoke(FunctionName="inv-enforced-fn", Payload=payload)
        self.assertEqual(json.loads(out["Payload"].read()), {"records": []})
        from botocore.exceptions import ClientError
        with self.assertRaises(ClientError) as refused:
            other("lambda").invoke(FunctionName="inv-enforced-fn", Payload=payload)
        self.assertEqual(refused.exception.response["Error"]["Code"], "AccessDeniedException")

    def test_the_firehose_runner_acts_with_its_roles_and_needs_invoke_permission(self):
        def policy(invoke):
            def document(stream_arn, function_arn):
                statements = [
                    {"Effect": "Allow", "Action": ["kinesis:ListShards", "kinesis:GetShardIterator",
                                                   "kinesis:GetRecords"], "Resource": stream_arn},
                    {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::fh-enforced-bucket/*"}]
                if invoke:
                    statements.append({"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": function_arn})
                return {"Version": "2012-10-17", "Statement": statements}
            return document

        src, bucket = delivery(self.emu, "fh-enforced", firehose_policy=policy(invoke=False))
        kinesis, s3, iam = (self.emu.client(s, "us-east-1") for s in ("kinesis", "s3", "iam"))

        def only_object(prefix):
            deadline, found = time.time() + 15, []
            while not found and time.time() < deadline:
                found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
                time.sleep(0.2)
            self.assertEqual(len(found), 1, self.emu.admin("firehose"))
            return s3.get_object(Bucket=bucket, Key=found[0]["Key"])["Body"].read()

        kinesis.put_record(StreamName=src, Data=b"alpha", PartitionKey="p")
        failure = json.loads(only_object("errors/"))
        self.assertEqual(failure["errorCode"], "Lambda.InvokeAccessDenied")
        self.assertEqual(base64.b64decode(failure["rawData"]), b"alpha")

        iam.put_role_policy(RoleName="fh-enforced-fh", PolicyName="firehose", PolicyDocument=json.dumps(
            policy(invoke=True)(f"arn:aws:kinesis:us-east-1:123456789012:stream/{src}",
                                "arn:aws:lambda:us-east-1:123456789012:function:fh-enforced-fn")))
        kinesis.put_record(StreamName=src, Data=b"beta", PartitionKey="p")
        self.assertEqual(only_object("ok/"), b"BETA|sfx")
        session = "arn:aws:sts::123456789012:assumed-role/fh-enforced-fh/firehose-fh-enforced"
        by_role = {(c["op"], c["status"]) for c in self.emu.calls() if c["principal"] == session}
        self.assertIn(("GetRecords", 200), by_role)
        self.assertTrue({op for op, status in by_role if op.startswith(f"PUT /{bucket}/")}, by_role)
        self.assertEqual({status for _, status in by_role} - {None}, {200}, by_role)  # None: in flight


if __name__ == "__main__":
    unittest.main()


class IamPropagationTest(AwsAssertions, unittest.TestCase):
    """`--iam-propagation-delay` (dasemu/iam_propagation.py): a role younger than the delay cannot
    be assumed by Lambda or Firehose, with the services' own errors; older, it can."""

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator.start("--trickle", "0", "--iam-propagation-delay", "2")

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def test_a_new_role_is_refused_with_the_documented_errors_until_it_has_propagated(self):
        from botocore.exceptions import ClientError

        iam, lam, fh = (self.emu.client(s) for s in ("iam", "lambda", "firehose"))
        role = iam.create_role(RoleName="young", AssumeRolePolicyDocument=trust("lambda.amazonaws.com"))["Role"]["Arn"]
        create = dict(FunctionName="young", Runtime="provided.al2023", Handler="bootstrap", Role=role,
                      Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})
        with self.assertRaises(ClientError) as refused:
            lam.create_function(**create)
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidParameterValueException")
        self.assertIn("cannot be assumed by Lambda", refused.exception.response["Error"]["Message"])
        with self.assertRaises(ClientError) as refused:
            fh.create_delivery_stream(
                DeliveryStreamName="young", DeliveryStreamType="KinesisStreamAsSource",
                KinesisStreamSourceConfiguration={
                    "KinesisStreamARN": "arn:aws:kinesis:eu-west-1:123456789012:stream/s", "RoleARN": role},
                ExtendedS3DestinationConfiguration={"RoleARN": role, "BucketARN": "arn:aws:s3:::b"})
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidArgumentException")
        self.assertIn(f"Firehose is unable to assume role {role}", refused.exception.response["Error"]["Message"])
        time.sleep(2.2)
        self.assertEqual(lam.create_function(**create)["FunctionName"], "young")
