"""Tests of what we add to moto, through its server over HTTP with boto3 (an independent client).

  tests/emulator/python -m unittest discover -s tests/emulator -v
"""

import os
import socket
import subprocess
import sys
import time
import unittest

import boto3
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
DELAY = 0.5


class EmulatorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cls.server = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "server.py"), "-p", str(port),
             "--activity-stream-delay", str(DELAY)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if cls.server.poll() is not None or time.time() > deadline:
                    raise RuntimeError("the emulator did not start")
                time.sleep(0.1)
        kw = dict(endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
        cls.rds = boto3.client("rds", **kw)
        cls.kms = boto3.client("kms", **kw)
        cls.kinesis = boto3.client("kinesis", **kw)

    @classmethod
    def tearDownClass(cls):
        cls.server.terminate()
        cls.server.wait()

    def cluster(self, name, engine="aurora-postgresql"):
        return self.rds.create_db_cluster(
            DBClusterIdentifier=name, Engine=engine, MasterUsername="admin",
            MasterUserPassword="password123",
        )["DBCluster"]

    def key(self):
        return self.kms.create_key()["KeyMetadata"]["KeyId"]

    def describe(self, name):
        return self.rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]

    def streams(self):
        return self.kinesis.list_streams()["StreamNames"]

    def assertError(self, code, call, **kwargs):
        with self.assertRaises(ClientError) as raised:
            call(**kwargs)
        self.assertEqual(raised.exception.response["Error"]["Code"], code, raised.exception)
        return raised.exception.response["Error"]["Message"]

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


if __name__ == "__main__":
    unittest.main()
