"""Builds a Firehose transformation event of genuine DAS records, the way RDS makes them.

For each record: a data key from KMS `GenerateDataKey` bound to the DAS encryption context
(`aws:rds:dbc-id` or `aws:rds:db-id` = the resource id), the gzip'd record JSON encrypted by the
AWS Encryption SDK for Python with a raw AES key `BC`/`DataKey` (suite 0x0178, 4096-byte frames,
empty encryption context), and the `DatabaseActivityMonitoringRecords` envelope, base64 in the
Firehose record. KMS is whatever endpoint is given (the local moto server in tests).

Spec (JSON):
  {"resource_id": "cluster-...", "key_id": "<KMS key id>",
   "records": [{"events": [...], "key": 0, "damage": null, "cluster_id": "...", "instance_id": "..."}]}
`key` groups records under one data key (RDS reuses data keys across records). `damage` makes a
bad record on purpose: not-base64, not-json, wrong-type, missing-key, truncated, tampered-frame,
tampered-header, wrong-context, not-gzip, event-not-object.

  das_batch.py --endpoint URL --region REGION --spec SPEC.json --out EVENT.json
"""

import argparse
import base64
import gzip
import json
import os
import sys

import aws_encryption_sdk
import boto3
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.identifiers import Algorithm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "esdk"))
import gen_fixtures  # noqa: E402

DAMAGES = {
    "not-base64", "not-json", "wrong-type", "missing-key", "truncated", "tampered-frame",
    "tampered-header", "wrong-context", "not-gzip", "event-not-object",
}


def context_for(resource_id):
    if resource_id.startswith("cluster-"):
        return {"aws:rds:dbc-id": resource_id}
    if resource_id.startswith("db-"):
        return {"aws:rds:db-id": resource_id}
    raise SystemExit(f"das_batch: resource id {resource_id!r} is neither cluster-... nor db-...")


# The raw AES master key exactly as DAS wraps its data key (provider BC, key DataKey): the
# fixture generator's, so both make messages the same way.
das_master_key = gen_fixtures.das_key


SDK = aws_encryption_sdk.EncryptionSDKClient(
    commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
)


def encrypt(plaintext, plaintext_key):
    message, _ = SDK.encrypt(
        source=plaintext,
        key_provider=das_master_key(plaintext_key),
        algorithm=Algorithm.AES_256_GCM_IV12_TAG16_HKDF_SHA256,
        frame_length=4096,
    )
    return message


def record_payload(events, cluster_id, instance_id, damage=None):
    if damage == "event-not-object":
        events = list(events) + [42]
    return json.dumps(
        {
            "type": "DatabaseActivityMonitoringRecord",
            "clusterId": cluster_id,
            "instanceId": instance_id,
            "databaseActivityEventList": events,
        },
        separators=(",", ":"),
    ).encode()


def kinesis_data(events, cluster_id, instance_id, plaintext_key, key_blob, damage=None, version="1.1"):
    """The bytes RDS writes to the Kinesis stream for one record (or a damaged variant)."""
    if damage is not None and damage not in DAMAGES:
        raise ValueError(f"unknown damage {damage!r}; known: {sorted(DAMAGES)}")
    payload = record_payload(events, cluster_id, instance_id, damage)
    message = encrypt(payload if damage == "not-gzip" else gzip.compress(payload), plaintext_key)
    if damage == "truncated":
        message = message[: len(message) // 2]
    elif damage == "tampered-frame":
        message = bytearray(message)
        message[-20] ^= 0x01
        message = bytes(message)
    elif damage == "tampered-header":
        message = bytearray(message)
        message[5] ^= 0x01  # inside the message id
        message = bytes(message)
    envelope = {
        "type": "DatabaseActivityMonitoringRecords",
        "version": version,
        "databaseActivityEvents": base64.b64encode(message).decode(),
        "key": base64.b64encode(key_blob).decode(),
    }
    if damage == "missing-key":
        del envelope["key"]
    if damage == "wrong-type":
        envelope["type"] = "SomethingElse"
    if damage == "not-json":
        return b"this is not json"
    return json.dumps(envelope).encode()


def build(kms, spec):
    context = context_for(spec["resource_id"])
    keys = {}

    def data_key(group, ctx):
        if (group, json.dumps(ctx)) not in keys:
            out = kms.generate_data_key(KeyId=spec["key_id"], KeySpec="AES_256", EncryptionContext=ctx)
            keys[(group, json.dumps(ctx))] = (out["Plaintext"], out["CiphertextBlob"])
        return keys[(group, json.dumps(ctx))]

    records = []
    base_ms = spec.get("arrival_ms", 1_764_000_000_000)
    for i, record in enumerate(spec["records"]):
        damage = record.get("damage")
        if damage is not None and damage not in DAMAGES:
            raise SystemExit(f"das_batch: unknown damage {damage!r}; known: {sorted(DAMAGES)}")
        ctx = {list(context)[0]: "cluster-SOMEBODYELSE"} if damage == "wrong-context" else context
        plaintext_key, blob = data_key(record.get("key", 0), ctx)
        cluster_default = spec["resource_id"] if spec["resource_id"].startswith("cluster-") else ""
        instance_default = spec["resource_id"] if spec["resource_id"].startswith("db-") else "db-EXAMPLEINSTANCE"
        data = kinesis_data(
            record["events"], record.get("cluster_id", cluster_default),
            record.get("instance_id", instance_default), plaintext_key, blob,
            None if damage in ("wrong-context", "not-base64") else damage,
        )
        encoded = base64.b64encode(data).decode()
        if damage == "not-base64":
            encoded = "!!not base64!!"
        records.append(
            {
                "recordId": "%062d" % (49546986683135544286507457936321625675700192471156785154 + i),
                "approximateArrivalTimestamp": base_ms + i * 10,
                "data": encoded,
                "kinesisRecordMetadata": {
                    "shardId": "shardId-000000000000",
                    "partitionKey": spec["resource_id"],
                    "approximateArrivalTimestamp": base_ms + i * 10,
                    "sequenceNumber": str(49546986683135544286507457936321625675700192471156785154 + i),
                    "subsequenceNumber": "",
                },
            }
        )
    return {
        "invocationId": "00540a87-5050-496a-84e4-e7d92bbaf5e2",
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/das-setup-test",
        "sourceKinesisStreamArn": spec.get(
            "stream_arn",
            "arn:aws:kinesis:us-east-1:123456789012:stream/aws-rds-das-" + spec["resource_id"],
        ),
        "region": "us-east-1",
        "records": records,
    }


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True, help="KMS endpoint URL (the moto server)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--spec", required=True, help="spec JSON file ('-' for stdin)")
    parser.add_argument("--out", required=True, help="Firehose event JSON file to write")
    args = parser.parse_args(argv)
    spec = json.load(sys.stdin if args.spec == "-" else open(args.spec))
    kms = boto3.client("kms", endpoint_url=args.endpoint, region_name=args.region)
    event = build(kms, spec)
    with open(args.out, "w") as f:
        json.dump(event, f)


if __name__ == "__main__":
    main(sys.argv[1:])
