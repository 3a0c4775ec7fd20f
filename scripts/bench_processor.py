"""End-to-end figures of the processor binary for BENCHMARKS.md (issue 3), against moto.

Run by scripts/bench-processor, which starts nothing itself: this script starts a moto server,
makes a real KMS key and data key (DAS encryption context), has the batch benchmark write a 6 MB
Firehose event encrypted under that key, then runs the binary (lambda profile) on one core:
  - events/s end to end, with decode, KMS and S3 time from the processor's own stats line
  - peak RSS of the process (getrusage of the child)
  - KMS calls and S3 PUTs per batch
  - process start to ready in local mode: wall time of a whole invocation of an empty batch
  - the Lambda zip: `bootstrap` (0755) deflated, as das-setup packages it
  - the blog's approach as the baseline, on the first 1 MB of the same batch: our own Python
    model of it (KMS Decrypt for every record, one S3 PutObject for every kept event; the
    Python Encryption SDK), against das-processor on the same records
"""

import base64
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib

import boto3

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "emulator"))
import das_batch  # noqa: E402  (the DAS raw AES master key and the SDK client, configured as DAS)


def baseline(event, kms, s3, bucket):
    """The blog Lambda's approach, re-implemented: per record a KMS call, per event a PUT."""
    kept = 0
    for record in event["records"]:
        envelope = json.loads(base64.b64decode(record["data"]))
        key = kms.decrypt(CiphertextBlob=base64.b64decode(envelope["key"]),
                          EncryptionContext={"aws:rds:dbc-id": RESOURCE})["Plaintext"]
        plaintext, _ = das_batch.SDK.decrypt(source=base64.b64decode(envelope["databaseActivityEvents"]),
                                             key_provider=das_batch.das_master_key(key))
        activity = json.loads(zlib.decompress(plaintext, zlib.MAX_WBITS + 16))
        for n, event_ in enumerate(activity["databaseActivityEventList"]):
            if event_.get("type") == "heartbeat" or event_.get("dbUserName") in ("rdsadmin",):
                continue
            s3.put_object(Bucket=bucket, Key="baseline/%s/%s-%d" % (event_.get("class"), record["recordId"], n),
                          Body=json.dumps(event_))
            kept += 1
    return kept

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESOURCE = "cluster-BENCHRESOURCE0000000000"
# The lambda profile: the optimization the deployed Lambda is built with (Cargo.toml).
BIN = os.path.join(ROOT, "target", "lambda", "das-processor")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MEASURE = """
import resource, subprocess, sys, time
t = time.perf_counter()
code = subprocess.call(sys.argv[2:])
wall = time.perf_counter() - t
with open(sys.argv[1], "w") as f:
    f.write("%d %f" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, wall))
sys.exit(code)
"""


def run_child(cmd, env, tmp):
    """Runs cmd under a fresh Python that has no other children, so getrusage of its children
    is the peak RSS of this command alone. Returns (wall seconds, peak RSS KiB, process)."""
    out = os.path.join(tmp, "rusage")
    proc = subprocess.run([sys.executable, "-c", MEASURE, out] + cmd, env=env, capture_output=True)
    with open(out) as f:
        rss, wall = f.read().split()
    return float(wall), int(rss), proc


def main():
    tmp = tempfile.mkdtemp(prefix="das-bench-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        env = dict(os.environ, AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing",
                   AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
                   AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
                   DAS_OUTPUT_BUCKET="das-bench-bucket")
        creds = dict(aws_access_key_id="testing", aws_secret_access_key="testing")
        kms = boto3.client("kms", endpoint_url=url, region_name="us-east-1", **creds)
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", **creds)
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        s3.create_bucket(Bucket="das-bench-bucket")
        dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256",
                                   EncryptionContext={"aws:rds:dbc-id": RESOURCE})
        event = os.path.join(tmp, "event.json")
        subprocess.run(
            ["cargo", "bench", "-q", "-p", "das-processor", "--bench", "batch", "--",
             "--write-event", event, "--data-key", dk["Plaintext"].hex(),
             "--key-blob", base64.b64encode(dk["CiphertextBlob"]).decode(),
             "--resource-id", RESOURCE],
            cwd=ROOT, check=True,
        )
        subprocess.run(["cargo", "build", "-q", "--profile", "lambda", "--locked", "-p", "das-processor"],
                       cwd=ROOT, check=True)

        pin = ["taskset", "-c", "0"]
        wall, rss_kib, proc = run_child(pin + [BIN, "--event", event], env, tmp)
        if proc.returncode != 0:
            sys.exit("processor failed: " + proc.stderr.decode())
        stats = json.loads(next(l for l in proc.stderr.decode().splitlines() if l.startswith("stats: "))[7:])
        response = json.loads(proc.stdout)
        assert len(response["records"]) == stats["records"]
        events = stats["kept"] + stats["filtered"]

        empty = os.path.join(tmp, "empty.json")
        with open(empty, "w") as f:
            f.write('{"records":[]}')
        starts = []
        for _ in range(31):
            w, _, p = run_child(pin + [BIN, "--event", empty], env, tmp)
            assert p.returncode == 0, p.stderr
            starts.append(w * 1000)

        zip_path = os.path.join(tmp, "bootstrap.zip")
        with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            info = zipfile.ZipInfo("bootstrap")
            info.external_attr = 0o100755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(BIN, "rb") as f:
                z.writestr(info, f.read())

        # The baseline on the first 1 MB of records (Firehose's default Lambda buffer), and
        # das-processor on exactly the same records.
        with open(event) as f:
            full = json.load(f)
        small = dict(full, records=[])
        total = 0
        for r in full["records"]:
            if total + len(r["data"]) > 1_000_000:
                break
            small["records"].append(r)
            total += len(r["data"])
        small_path = os.path.join(tmp, "small.json")
        with open(small_path, "w") as f:
            json.dump(small, f)
        t = time.perf_counter()
        base_kept = baseline(small, kms, s3, "das-bench-bucket")
        base_s = time.perf_counter() - t
        w_small, _, p = run_child(pin + [BIN, "--event", small_path], env, tmp)
        assert p.returncode == 0, p.stderr
        small_stats = json.loads(next(l for l in p.stderr.decode().splitlines() if l.startswith("stats: "))[7:])
        assert small_stats["kept"] == base_kept, (small_stats["kept"], base_kept)

        size = os.path.getsize(event)
        rows = [
            ("batch", f"{stats['records']} records, {events} events, {size / 1e6:.2f} MB request"),
            ("wall time, whole process (1 core)", f"{wall * 1000:.0f} ms"),
            ("  decode+classify+compress", f"{stats['decode_ms']:.0f} ms"),
            ("  KMS (moto, loopback)", f"{stats['kms_ms']:.1f} ms, {stats['kms_calls']} call(s)"),
            ("  S3 (moto, loopback)", f"{stats['s3_ms']:.0f} ms, {stats['s3_puts']} PUT(s), {stats['s3_bytes'] // 1024} KiB"),
            ("events/s, end to end (handler total)", f"{events / (stats['total_ms'] / 1000):,.0f}"),
            ("events/s, processing only (no KMS, S3)", f"{events / (stats['decode_ms'] / 1000):,.0f}"),
            ("peak RSS", f"{rss_kib / 1024:.1f} MiB (target <= 64)"),
            ("start to ready, empty batch (median of 31)", f"{statistics.median(starts):.1f} ms (target <= 20)"),
            ("Lambda zip (x86_64, stripped, deflate)", f"{os.path.getsize(zip_path) / 1e6:.2f} MB (binary {os.path.getsize(BIN) / 1e6:.2f} MB; target <= 4)"),
            ("baseline: blog approach, first 1 MB", f"{len(small['records'])} records, {base_kept} events kept: {base_s:.1f} s, {base_kept / base_s:,.0f} events/s, {len(small['records'])} KMS calls, {base_kept} PUTs"),
            ("das-processor, same records (whole process)", f"{w_small * 1000:.0f} ms, {base_kept / w_small:,.0f} events/s, {small_stats['kms_calls']} KMS call(s), {small_stats['s3_puts']} PUT(s)"),
            ("speed-up over the baseline", f"{base_s / w_small:,.0f}x"),
        ]
        width = max(len(r[0]) for r in rows)
        for name, value in rows:
            print(f"{name:<{width}}  {value}")
    finally:
        moto.terminate()
        moto.wait()


if __name__ == "__main__":
    main()
