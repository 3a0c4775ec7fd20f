"""`das-setup verify` against what the real processor wrote (issue 20 item 5).

A cluster deployed by `das-setup up` receives events in several records, so that several
invocations each append a digest, signed with the ECC_NIST_P384 key `up` created. Each
signature is checked here independently of das-setup (Python's `cryptography` over the public
key KMS gives), as an auditor would offline. `verify` must pass on the untouched bucket; then one
event object is altered, one deleted, one added and one digest removed, behind das-setup's back,
with boto3 as anyone holding write access to the bucket would, and `verify` must name each and
exit 1; a digest rewritten without the key is named as a bad signature.
"""

import base64
import hashlib
import json
import os
import sys
import time
import unittest

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, HERE)
from common import EmulatorCase, pg, read_bucket  # noqa: E402
from harness import is_digest, is_event_object  # noqa: E402

ACCOUNT = "123456789012"
CLUSTER = "verified"
BUCKET = f"das-setup-{CLUSTER}-{ACCOUNT}-eu-west-1"
PREFIX = f"parsed/{CLUSTER}/"


ALIAS = f"alias/das-setup/digests/{CLUSTER}"


def signature_holds(public_key, key, body):
    """The documented signature (processor/src/digest.rs): ECDSA P-384 with SHA-384 over
    "das-setup digest 1\n<key>\n<hex SHA-256 of the digest member's exact bytes>"."""
    head, tail = b'{"digest":', b',"signature":'
    assert body.startswith(head), body[:40]
    digest_bytes = body[len(head):body.rindex(tail)]
    signature = json.loads(body)["signature"]
    assert signature["algorithm"] == "ECDSA_SHA_384", signature
    message = b"das-setup digest 1\n" + key.encode() + b"\n" + hashlib.sha256(digest_bytes).hexdigest().encode()
    try:
        public_key.verify(base64.b64decode(signature["value"]), message, ec.ECDSA(hashes.SHA384()))
        return True
    except InvalidSignature:
        return False


class VerifyTest(EmulatorCase):
    def keys(self):
        s3 = self.emu.client("s3")
        return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="parsed/").get("Contents", [])]

    def settled(self, ignore=()):
        """Every event object under the prefix (but `ignore`) is listed by a digest: each
        invocation that wrote has also written its digest, so none is still writing. (A count
        of digests is not enough: under load one buffer interval can hold two injections, and a
        later one then arrives while verify runs.)"""
        s3 = self.emu.client("s3")
        keys = self.keys()
        listed = set()
        for key in keys:
            if is_digest(key):
                body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
                listed |= {e["key"] for e in json.loads(body)["digest"]["objects"]}
        return all(k in listed or k in ignore for k in keys if is_event_object(k))

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
        # Every injected event stored, and every object listed by a digest: nothing in flight.
        wanted = {f"v-{i}-{kind}" for i in range(4) for kind in ("ddl", "dml")}
        while not (wanted <= set(read_bucket(self.emu, BUCKET)[0]) and self.settled()):
            self.assertLess(time.time(), deadline, self.emu.admin("firehose"))
            time.sleep(0.5)
        digests = sorted(k for k in self.keys() if is_digest(k))
        self.assertGreaterEqual(len(digests), 4, self.emu.admin("firehose"))

        code, report = self.verify()
        self.assertEqual(code, 0, json.dumps(report, indent=1))
        self.assertEqual(report["findings"], [])
        self.assertGreaterEqual(report["digests"], 4)
        events = sorted(k for k in self.keys() if is_event_object(k))
        self.assertEqual(report["objects"], len(events), "every event object is listed by a digest")

        # Signed, with the key up made for this, which anyone can check with its public key.
        kms, s3 = self.emu.client("kms"), self.emu.client("s3")
        meta = kms.describe_key(KeyId=ALIAS)["KeyMetadata"]
        self.assertEqual((meta["KeySpec"], meta["KeyUsage"]), ("ECC_NIST_P384", "SIGN_VERIFY"))
        self.assertEqual(report["signingKey"], meta["Arn"])
        self.assertEqual(report["unsigned"], 0)
        public_key = load_der_public_key(kms.get_public_key(KeyId=ALIAS)["PublicKey"])
        for key in digests:
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            self.assertEqual(json.loads(body)["signature"]["keyId"], meta["Arn"])
            self.assertTrue(signature_holds(public_key, key, body), key)
        # The status check agrees.
        done = self.run_setup("status", "--cluster", CLUSTER, "--output", "json")
        check = {c["check"]: c for c in json.loads(done.stdout)["checks"]}["signing-key"]
        self.assertEqual(check["status"], "OK", check)

        # Tampering, as any principal with write access to the bucket could. The digests sort
        # newest first; the one removed has a digest on either side. Its objects are then listed
        # by no digest, so they show as unexpected; the altered and deleted objects are others.
        removed = digests[1]
        removed_lists = {e["key"] for e in json.loads(
            s3.get_object(Bucket=BUCKET, Key=removed)["Body"].read())["digest"]["objects"]}
        self.assertTrue(removed_lists)
        others = [k for k in events if k not in removed_lists]
        altered, deleted = others[0], others[1]
        s3.put_object(Bucket=BUCKET, Key=altered, Body=b"\x1f\x8b not what was written")
        s3.delete_object(Bucket=BUCKET, Key=deleted)
        added = f"{PREFIX}DDL/2026/01/01/00/planted.json.gz"
        s3.put_object(Bucket=BUCKET, Key=added, Body=b"planted")
        s3.delete_object(Bucket=BUCKET, Key=removed)

        # Newer than every digest and minutes old, the planted object could be an invocation's
        # write in progress: reported in flight, not yet a problem (the others already are).
        code, report = self.verify()
        self.assertEqual(code, 1, json.dumps(report, indent=1))
        self.assertEqual(report["inFlight"], [added])
        # Once the pipeline writes again, a digest newer than it does not list it. Waited for:
        # the new event's object, and its digest (every object but the tampered ones listed).
        before = {k for k in self.keys() if is_event_object(k)}
        self.emu.admin("inject", {"stream": stream, "events": [pg("v-late", "DDL", "DROP TABLE", "drop table t0")]})
        deadline = time.time() + 60
        while not ({k for k in self.keys() if is_event_object(k)} - before
                   and self.settled(ignore={added} | removed_lists)):
            self.assertLess(time.time(), deadline, self.emu.admin("firehose"))
            time.sleep(0.5)

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

        # A digest rewritten without the key (its list cut short, the signature kept, as a
        # forger must): the signature no longer holds, and verify says so.
        forged = digests[2]
        body = s3.get_object(Bucket=BUCKET, Key=forged)["Body"].read()
        cut = json.loads(body)
        cut["digest"]["objects"] = cut["digest"]["objects"][:0]
        rewritten = json.dumps(cut, separators=(",", ":")).encode()
        self.assertFalse(signature_holds(public_key, forged, rewritten))
        s3.put_object(Bucket=BUCKET, Key=forged, Body=rewritten)
        code, report = self.verify()
        self.assertEqual(code, 1, json.dumps(report, indent=1))
        self.assertIn(("signature-invalid", forged), {(f["kind"], f["key"]) for f in report["findings"]})
        s3.put_object(Bucket=BUCKET, Key=forged, Body=body)

        # down keeps the bucket, so it keeps the key its digests were signed with.
        done = self.run_setup("down", "--cluster", CLUSTER, "--yes")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("signing-key", done.stdout)
        self.assertEqual(kms.describe_key(KeyId=ALIAS)["KeyMetadata"]["KeyState"], "Enabled")
        # After down the function is gone: --bucket and --prefix find the trail, and the key
        # is found by its alias.
        done = self.run_setup("verify", "--cluster", CLUSTER, "--bucket", BUCKET, "--prefix", PREFIX,
                              "--since", "1h", "--output", "json")
        self.assertEqual(done.returncode, 1, done.stderr)
        after = json.loads(done.stdout)
        self.assertEqual(after["signingKey"], meta["Arn"])
        kinds = {(f["kind"], f["key"]) for f in after["findings"]}
        self.assertIn(("digest-missing", removed), kinds)
        self.assertFalse([k for k in kinds if k[0] in ("signature-invalid", "unsigned")], kinds)
        # Without the flags: the default bucket and the default prefix of this database.
        done = self.run_setup("verify", "--cluster", CLUSTER, "--since", "1h", "--output", "json")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertEqual({(f["kind"], f["key"]) for f in json.loads(done.stdout)["findings"]}, kinds)
        self.assertEqual(json.loads(done.stdout)["prefix"], PREFIX)

        # Only with the bucket does the key go (scheduled, recoverable for a week).
        done = self.run_setup("down", "--cluster", CLUSTER, "--delete-bucket", "--yes")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["KeyState"], "PendingDeletion")
        self.assertNotIn(ALIAS, [a["AliasName"] for a in kms.list_aliases()["Aliases"]])

    def test_a_digest_write_meeting_a_conflict_keeps_the_chain_whole(self):
        # S3 answers a conditional write 409 ConditionalRequestConflict while a conflicting one is
        # in progress; the processor takes the number as possibly lost, reads the chain's head
        # again and goes on: no gap, no fork, every object still listed.
        cluster = self.emu.cluster("conflicted", engine="aurora-postgresql")
        bucket = f"das-setup-conflicted-{ACCOUNT}-eu-west-1"
        done = self.run_setup("up", "--cluster", "conflicted", "--arch", "x86_64", "--lambda-zip", self.zip,
                              "--yes")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.emu.wait_for_delivery("das-setup-conflicted")
        s3 = self.emu.client("s3")
        self.emu.admin("faults", {"faults": [{"operation": "s3:PutObject", "kind": "conflict", "times": 2}]})
        stream = f"aws-rds-das-{cluster['DbClusterResourceId']}"
        self.emu.admin("inject", {"stream": stream, "events": [
            pg("c-0", "DDL", "CREATE TABLE", "create table c (id int)")]})
        deadline = time.time() + 60

        def digests():
            return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="parsed/conflicted/_digests/")
                          .get("Contents", []))
        while not digests() and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(2.5)
        served = self.emu.admin("faults")["served"]
        self.assertEqual([f["kind"] for f in served], ["conflict", "conflict"], served)
        puts = [c for c in self.emu.calls() if c["op"].startswith(f"PUT /{bucket}/parsed/conflicted/_digests/")]
        self.assertEqual([c["status"] for c in puts][:2], [409, 409], puts)
        # One digest, number 1: the conflicts cost no number.
        self.assertEqual([k.rsplit("/", 1)[-1] for k in digests()], ["999999999998-1.json"])
        done = self.run_setup("verify", "--cluster", "conflicted", "--since", "1h", "--output", "json")
        report = json.loads(done.stdout)
        self.assertEqual((done.returncode, report["findings"], report["digests"]), (0, [], 1), report)
        self.assertGreaterEqual(report["objects"], 1)


if __name__ == "__main__":
    unittest.main()
