"""Least privilege, enforced (issue 8 item 3).

The emulator runs with `--enforce-iam`: every request not signed by the account root is checked
against the signer's IAM policies, with the real resource and the KMS encryption context as
condition values (tests/emulator/dasemu/iam_enforcement.py). `das-setup up` deploys the
pipeline as root; the emulator's Lambda host runs the processor with temporary credentials of
the role `up` made for it, as Lambda does. Then:

- processing succeeds under that role: injected events reach S3, and every call the function
  made (the emulator's call log names the signer and the answer) was a KMS Decrypt or an S3 put
  under the prefix, allowed; Firehose, acting with a session of the delivery role `up` made,
  reads the stream, invokes the function and writes the bucket with every call allowed;
- a record whose data key comes from another KMS key is refused by IAM, not by cryptography (same
  encryption context, a valid key): it lands under errors/, the rest of the stream is delivered;
- credentials that hold exactly the role's policy (an IAM user with the role's inline policies
  copied, nothing else) are refused every call outside it: reading or listing the bucket,
  writing outside the prefix, decrypting with another encryption context, with another key or
  with none, generating a data key, signing with another key or a precomputed digest, reading
  the Kinesis stream, listing roles. The calls the
  policy allows succeed with the same credentials, so a refusal is the policy's, not a broken
  signature's. Credentials holding exactly the delivery role's policy cannot decrypt a data key
  (Firehose cannot open the stream's records), read another stream or write another bucket.
- with alerts on (`up --alerts default`), the function publishes a DROP TABLE's alert to its
  topic (SNS PublishBatch, authorized as sns:Publish) and puts it on the default bus, allowed;
  the same credentials cannot publish to another topic, nor put events on another bus or with
  another source or detail-type (it cannot pass for AWS's own events); with `--security-hub`,
  it imports findings into the account's own product only.
"""

import datetime
import json
from urllib.parse import quote
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import EmulatorCase, pg, read_bucket  # noqa: E402

ACCOUNT = "123456789012"
REGION = "eu-west-1"
CLUSTER = "iam-pg"
FUNCTION = f"das-setup-{CLUSTER}"
BUCKET = f"das-setup-{CLUSTER}-{ACCOUNT}-{REGION}"
# The processor's prefix: its database's folder under up's --prefix (parsed/).
PREFIX = f"parsed/{CLUSTER}/"
CONTEXT_KEY = "aws:rds:dbc-id"


class LeastPrivilegeTest(EmulatorCase):
    EMULATOR_OPTIONS = EmulatorCase.EMULATOR_OPTIONS + ("--enforce-iam",)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        emu = cls.emu
        cluster = emu.cluster(CLUSTER)
        cls.resource_id = cluster["DbClusterResourceId"]
        emu.client("securityhub").enable_security_hub()
        done = cls.run_setup("up", "--cluster", CLUSTER, "--arch", "x86_64", "--lambda-zip", cls.zip, "--yes",
                             "--alerts", "default", "--security-hub")
        if done.returncode != 0:
            raise RuntimeError(f"das-setup up failed under --enforce-iam:\n{done.stderr}")
        emu.wait_for_delivery(FUNCTION)
        c = emu.client("rds").describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"][0]
        cls.das_key = emu.client("kms").describe_key(KeyId=c["ActivityStreamKmsKeyId"])["KeyMetadata"]["Arn"]
        cls.other_key = emu.client("kms").create_key(Description="not the activity stream's")["KeyMetadata"]["Arn"]
        cls.signing_key = emu.client("kms").describe_key(KeyId=f"alias/das-setup/digests/{CLUSTER}")[
            "KeyMetadata"]["Arn"]
        cls.other_signing_key = emu.client("kms").create_key(
            KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY", Description="not das-setup's")["KeyMetadata"]["Arn"]
        cls.role = emu.client("lambda").get_function_configuration(FunctionName=FUNCTION)["Role"]
        destination = emu.client("firehose").describe_delivery_stream(DeliveryStreamName=FUNCTION)[
            "DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
        cls.firehose_role = destination["RoleARN"]

    # --- helpers ------------------------------------------------------------------------
    def role_policy_holder(self, role_arn, user):
        """Clients signed by an IAM user holding exactly a role's policies."""
        iam = self.emu.client("iam")
        role_name = role_arn.rsplit("/", 1)[-1]
        self.assertEqual(iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"], [],
                         "up attaches no managed policy to its roles")
        names = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
        self.assertTrue(names, f"{role_name} has its inline policy")
        iam.create_user(UserName=user)
        for name in names:
            document = iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
            iam.put_user_policy(UserName=user, PolicyName=name, PolicyDocument=json.dumps(document))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        return self.emu.clients_for(key["AccessKeyId"], key["SecretAccessKey"])

    def data_key(self, key, resource_id):
        return self.emu.client("kms").generate_data_key(
            KeyId=key, KeySpec="AES_256", EncryptionContext={CONTEXT_KEY: resource_id})["CiphertextBlob"]

    # --- tests --------------------------------------------------------------------------
    def test_the_processor_works_with_its_role_alone_and_iam_refuses_a_foreign_key(self):
        stream = f"aws-rds-das-{self.resource_id}"
        before = len(self.emu.calls())
        self.emu.admin("inject", {"stream": stream, "events": [
            pg("iam-0", "DDL", "CREATE TABLE", "create table t (id int)"),
            pg("iam-1", "WRITE", "INSERT", "insert into t values (1)"),
            pg("iam-drop", "DDL", "DROP TABLE", "drop table t")]})
        self.emu.admin("inject", {"stream": stream, "kms_key": self.other_key, "events": [
            pg("iam-foreign", "READ", "SELECT", "select * from t")]})
        self.emu.admin("inject", {"stream": stream, "events": [pg("iam-2", "READ", "SELECT", "select 1")]})

        want = {"iam-0": ["DDL"], "iam-1": ["DML"], "iam-drop": ["DDL"], "iam-2": ["DQL"]}
        deadline = time.time() + 60
        while True:
            events, failed, _ = read_bucket(self.emu, BUCKET)
            got = {k: v for k, v in events.items() if k is not None}
            if (got == want and failed) or time.time() > deadline:
                break
            time.sleep(0.5)
        time.sleep(2.5)  # one more buffer interval: a late arrival would show now
        events, failed, _ = read_bucket(self.emu, BUCKET)
        self.assertEqual({k: v for k, v in events.items() if k is not None}, want,
                         f"processing under the role's policy\n{self.emu.admin('firehose')}")
        self.assertEqual(len(failed), 1, "only the record under the foreign key fails")
        self.assertEqual(failed[0]["errorCode"], "Lambda.ProcessingFailed")

        principal = f"arn:aws:sts::{ACCOUNT}:assumed-role/{self.role.rsplit('/', 1)[-1]}/{FUNCTION}"
        calls = [c for c in self.emu.calls()[before:] if c["principal"] == principal]
        self.assertTrue(calls, "the function signs with its role's credentials")
        decrypts = [c["status"] for c in calls if c["op"] == "Decrypt"]
        puts = [c for c in calls if c["op"].startswith(f"PUT /{BUCKET}/")]
        # The digest chain's head: one listing of `<PREFIX>_digests/` (s3:prefix) and reads of
        # digests, when the process starts or loses a sequence number to another invocation.
        lists = [c for c in calls if c["op"] in (f"GET /{BUCKET}", f"GET /{BUCKET}/")]
        reads = [c for c in calls if c["op"].startswith(f"GET /{BUCKET}/{PREFIX}_digests/")]
        # Each digest signed with the signing key up made, the way the role's policy allows.
        signs = [c for c in calls if c["op"] == "Sign"]
        # The DROP TABLE's alert: to the topic, the default bus and (high) Security Hub.
        publishes = [c for c in calls if c["op"] in ("PublishBatch", "PutEvents", "POST /findings/import")]
        self.assertEqual(len(decrypts) + len(puts) + len(lists) + len(reads) + len(signs) + len(publishes),
                         len(calls), f"no other call: {calls}")
        self.assertEqual(sorted(c["op"] for c in publishes), ["POST /findings/import", "PublishBatch", "PutEvents"],
                         publishes)
        self.assertTrue(all(c["status"] == 200 for c in publishes), publishes)
        self.assertTrue(signs and all(c["status"] == 200 for c in signs), signs)
        self.assertEqual({json.loads(c["body"])["KeyId"] for c in signs}, {self.signing_key})
        self.assertTrue(lists, "the first invocation looks for the chain's head")
        self.assertTrue(all(c["status"] == 200 and "prefix=" + quote(PREFIX + "_digests/", safe="") in c["query"] for c in lists),
                        lists)
        self.assertTrue(all(c["status"] == 200 for c in reads), reads)
        self.assertTrue([c for c in puts if c["op"].startswith(f"PUT /{BUCKET}/{PREFIX}_digests/")],
                        "each invocation appends a digest")
        self.assertIn(200, decrypts, "the stream's data key is decrypted")
        self.assertIn(403, decrypts, "the foreign key's data key is refused by IAM")
        self.assertEqual(set(decrypts), {200, 403})
        self.assertTrue(puts and all(c["status"] == 200 for c in puts), puts)
        self.assertTrue(all(c["op"].startswith(f"PUT /{BUCKET}/{PREFIX}") for c in puts), puts)
        self.assertFalse([c for c in self.emu.calls()[before:] if c["principal"] is None and c["status"] == 200],
                         "no request signed by an unknown key was served")

        firehose = f"arn:aws:sts::{ACCOUNT}:assumed-role/{self.firehose_role.rsplit('/', 1)[-1]}/firehose-{FUNCTION}"
        by_firehose = [c for c in self.emu.calls()[before:] if c["principal"] == firehose]
        self.assertIn("GetRecords", {c["op"] for c in by_firehose})
        self.assertTrue([c for c in by_firehose if c["op"].startswith(f"PUT /{BUCKET}/errors/")], by_firehose)
        # (A poll still in flight has no status yet.)
        self.assertEqual({c["status"] for c in by_firehose} - {None}, {200}, by_firehose)
        self.assertFalse([c for c in by_firehose if c["op"] == "Decrypt"], "Firehose never decrypts")

    def test_credentials_holding_exactly_the_role_policy_are_refused_everything_else(self):
        client = self.role_policy_holder(self.role, "holds-the-lambda-policy")
        kms, s3 = client("kms"), client("s3")
        mine = {CONTEXT_KEY: self.resource_id}
        other = {CONTEXT_KEY: "cluster-ANOTHERDATABASE0000000000"}

        # Allowed: the job (so each refusal below is the policy's, not the signature's).
        self.assertEqual(len(kms.decrypt(CiphertextBlob=self.data_key(self.das_key, self.resource_id),
                                         EncryptionContext=mine)["Plaintext"]), 32)
        s3.put_object(Bucket=BUCKET, Key=PREFIX + "iam-probe", Body=b"{}")
        self.emu.client("s3").delete_object(Bucket=BUCKET, Key=PREFIX + "iam-probe")
        s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX + "_digests/", MaxKeys=1)
        self.emu.client("s3").put_object(Bucket=BUCKET, Key=PREFIX + "_digests/probe", Body=b"{}")
        self.assertEqual(s3.get_object(Bucket=BUCKET, Key=PREFIX + "_digests/probe")["Body"].read(), b"{}")
        self.emu.client("s3").delete_object(Bucket=BUCKET, Key=PREFIX + "_digests/probe")
        sign = {"Message": b"das-setup digest 1\nprobe", "SigningAlgorithm": "ECDSA_SHA_384"}
        self.assertTrue(kms.sign(KeyId=self.signing_key, MessageType="RAW", **sign)["Signature"])
        self.assertTrue(kms.sign(KeyId=self.signing_key, **sign)["Signature"], "RAW is the default")

        # Refused: everything else. Each data key is valid for the context it is asked with.
        another_database = self.data_key(self.das_key, other[CONTEXT_KEY])
        self.assertError("AccessDeniedException", kms.decrypt, CiphertextBlob=another_database,
                         EncryptionContext=other)
        another_key = self.data_key(self.other_key, self.resource_id)
        self.assertError("AccessDeniedException", kms.decrypt, CiphertextBlob=another_key, EncryptionContext=mine)
        no_context = self.emu.client("kms").generate_data_key(KeyId=self.das_key, KeySpec="AES_256")
        self.assertError("AccessDeniedException", kms.decrypt, CiphertextBlob=no_context["CiphertextBlob"])
        self.assertError("AccessDeniedException", kms.generate_data_key, KeyId=self.das_key, KeySpec="AES_256",
                         EncryptionContext=mine)
        # Signing: with another key, or a message KMS would take as a precomputed digest.
        self.assertError("AccessDeniedException", kms.sign, KeyId=self.other_signing_key, **sign)
        self.assertError("AccessDeniedException", kms.sign, KeyId=self.signing_key, MessageType="DIGEST",
                         Message=b"\0" * 48, SigningAlgorithm="ECDSA_SHA_384")
        self.emu.client("s3").put_object(Bucket=BUCKET, Key=PREFIX + "DDL/written-by-root", Body=b"{}")
        self.assertError("AccessDenied", s3.get_object, Bucket=BUCKET, Key=PREFIX + "DDL/written-by-root")
        self.assertError("AccessDenied", s3.list_objects_v2, Bucket=BUCKET)
        self.assertError("AccessDenied", s3.list_objects_v2, Bucket=BUCKET, Prefix=PREFIX)
        self.assertError("AccessDenied", s3.list_objects_v2, Bucket=BUCKET, Prefix=PREFIX + "_digests/x")
        self.assertError("AccessDenied", s3.put_object, Bucket=BUCKET, Key="elsewhere/x", Body=b"{}")
        # Another database's folder of the same bucket (several `up`s may share one).
        self.assertError("AccessDenied", s3.put_object, Bucket=BUCKET, Key="parsed/another-db/DDL/x", Body=b"{}")
        self.assertError("AccessDenied", s3.delete_object, Bucket=BUCKET, Key=PREFIX + "DDL/written-by-root")
        self.emu.client("s3").delete_object(Bucket=BUCKET, Key=PREFIX + "DDL/written-by-root")
        self.assertError("AccessDeniedException", client("kinesis").describe_stream,
                         StreamName=f"aws-rds-das-{self.resource_id}")
        self.assertError("AccessDenied", client("iam").list_roles)

    def test_the_role_publishes_alerts_to_its_topic_and_bus_only_and_as_das_setup_only(self):
        client = self.role_policy_holder(self.role, "holds-the-lambda-policy-for-alerts")
        sns, events = client("sns"), client("events")
        topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:das-setup-{CLUSTER}-alerts"
        entry = {"Source": "das-setup", "DetailType": "Database Activity Alert", "Detail": "{}"}
        # Allowed: its job.
        sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[{"Id": "0", "Message": "probe"}])
        sns.publish(TopicArn=topic, Message="probe")
        self.assertEqual(events.put_events(Entries=[entry])["FailedEntryCount"], 0)
        # Refused: another topic, another bus, another source or detail-type, or a mix.
        other = self.emu.client("sns").create_topic(Name="not-das-setup-alerts")["TopicArn"]
        self.assertError("AccessDenied", sns.publish, TopicArn=other, Message="probe")
        self.assertError("AccessDenied", sns.publish_batch, TopicArn=other,
                         PublishBatchRequestEntries=[{"Id": "0", "Message": "probe"}])
        self.emu.client("events").create_event_bus(Name="another-bus")
        self.assertError("AccessDeniedException", events.put_events, Entries=[dict(entry, EventBusName="another-bus")])
        self.assertError("AccessDeniedException", events.put_events, Entries=[dict(entry, Source="aws.rds")])
        self.assertError("AccessDeniedException", events.put_events, Entries=[dict(entry, DetailType="RDS DB Instance Event")])
        self.assertError("AccessDeniedException", events.put_events, Entries=[entry, dict(entry, Source="aws.rds")])
        # The topic is encrypted with the stream's key: without the role's grant on it through SNS,
        # SNS refuses the message (KMSAccessDenied), so that statement is needed, not decoration.
        iam = self.emu.client("iam")
        role_name = self.role.rsplit("/", 1)[-1]
        iam.create_user(UserName="holds-the-lambda-policy-without-kms-for-sns")
        for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
            document["Statement"] = [st for st in document["Statement"] if st.get("Sid") != "EncryptAlertsThroughSnsOnly"]
            iam.put_user_policy(UserName="holds-the-lambda-policy-without-kms-for-sns", PolicyName=name,
                                PolicyDocument=json.dumps(document))
        key = iam.create_access_key(UserName="holds-the-lambda-policy-without-kms-for-sns")["AccessKey"]
        without = self.emu.clients_for(key["AccessKeyId"], key["SecretAccessKey"])
        self.assertError("KMSAccessDenied", without("sns").publish, TopicArn=topic, Message="probe")
        self.assertError("KMSAccessDenied", without("sns").publish_batch, TopicArn=topic,
                         PublishBatchRequestEntries=[{"Id": "0", "Message": "probe"}])

    def test_the_role_imports_findings_into_its_accounts_own_product_only(self):
        hub = self.role_policy_holder(self.role, "holds-the-lambda-policy-for-findings")("securityhub")
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        finding = {"SchemaVersion": "2018-10-08", "Id": "das-setup/probe", "GeneratorId": "das-setup/probe",
                   "AwsAccountId": ACCOUNT, "Types": ["Unusual Behaviors/Database"],
                   "CreatedAt": now, "UpdatedAt": now,
                   "Severity": {"Label": "HIGH"}, "Title": "probe", "Description": "probe",
                   "Resources": [{"Type": "AwsRdsDbCluster", "Id": f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:{CLUSTER}"}]}
        own = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
        out = hub.batch_import_findings(Findings=[dict(finding, ProductArn=own)])
        self.assertEqual((out["SuccessCount"], out["FailedCount"]), (1, 0), out)
        self.assertError("AccessDeniedException", hub.batch_import_findings,
                         Findings=[dict(finding, ProductArn=f"arn:aws:securityhub:{REGION}::product/aws/guardduty")])
        self.assertError("AccessDeniedException", hub.describe_hub)

    def test_credentials_holding_exactly_the_delivery_role_policy_cannot_decrypt_or_stray(self):
        client = self.role_policy_holder(self.firehose_role, "holds-the-firehose-policy")
        stream = f"aws-rds-das-{self.resource_id}"
        # Allowed: its job.
        client("kinesis").describe_stream_summary(StreamName=stream)
        client("s3").put_object(Bucket=BUCKET, Key="errors/iam-probe", Body=b"{}")
        self.emu.client("s3").delete_object(Bucket=BUCKET, Key="errors/iam-probe")
        # Refused: the key (it cannot open the records), other streams, other buckets.
        self.assertError("AccessDeniedException", client("kms").decrypt,
                         CiphertextBlob=self.data_key(self.das_key, self.resource_id),
                         EncryptionContext={CONTEXT_KEY: self.resource_id})
        self.emu.client("kinesis").create_stream(StreamName="not-the-activity-stream", ShardCount=1)
        self.assertError("AccessDeniedException", client("kinesis").describe_stream_summary,
                         StreamName="not-the-activity-stream")
        self.emu.client("s3").create_bucket(Bucket="another-bucket-iam-test",
                                            CreateBucketConfiguration={"LocationConstraint": REGION})
        self.assertError("AccessDenied", client("s3").put_object, Bucket="another-bucket-iam-test", Key="x",
                         Body=b"{}")
