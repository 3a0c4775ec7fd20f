"""The whole pipeline on the local emulator, start to finish (`make demo`).

Starts the emulator, creates an Aurora PostgreSQL cluster `demo` in it, runs `das-setup up`
(which builds the processor for Lambda from this source tree), lets the emulator's producer
generate activity and injects a known mix (DDL, DML, reads, logins, a failed login), waits for
the events in S3, prints `das-setup status`, the bucket's folders with an event count per
category, a few seconds of `das-setup tail`, then runs `das-setup down` and stops the emulator.
Any failing step stops the demo with its name and a non-zero exit.

The function runs for arm64, `up`'s default, when this machine can run an arm64 `bootstrap`
(an aarch64 machine, or qemu's user mode: Debian's `qemu-user`); otherwise for x86_64, saying so.
`DAS_SETUP_BIN` runs another das-setup binary (CI runs the one `cargo install` put outside the
tree, from a directory outside it).
"""

import base64
import gzip
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "emulator"))
from harness import Emulator, is_event_object, log_time  # noqa: E402

SETUP = os.environ.get("DAS_SETUP_BIN") or os.path.join(ROOT, "target", "debug", "das-setup")
CLUSTER = "demo"


class StepFailed(Exception):
    pass


def step(title):
    print(f"\n\033[1m==> {title}\033[0m", flush=True)


# das-setup runs from outside the source tree: what it needs from the tree it finds itself.
OUTSIDE = tempfile.mkdtemp(prefix="das-setup-demo-")


def run(emu, *args, check=True, timeout=900):
    """das-setup with the emulator as AWS; its output goes straight to the terminal."""
    print("$ das-setup " + " ".join(args), flush=True)
    done = subprocess.run([SETUP, *args], env=emu.env(), timeout=timeout, cwd=OUTSIDE)
    if check and done.returncode != 0:
        raise StepFailed(f"das-setup {args[0]} exited {done.returncode}")
    return done.returncode


def main():
    current = "starting the emulator"
    emu = None
    try:
        step(current)
        emu = Emulator.start("--activity-stream-delay", "3", "--trickle", "3", "--heartbeat", "5",
                             "--buffer-interval-cap", "2")
        print(f"emulator at {emu.url} (logs in target/emulator/{emu.port}/)")

        current = "creating the Aurora PostgreSQL cluster 'demo' (one instance) in the emulator"
        step(current)
        cluster = emu.cluster(CLUSTER)
        print(f"{cluster['DBClusterArn']}  resource id {cluster['DbClusterResourceId']}")

        current = "das-setup up (builds the processor for Lambda, then the whole pipeline)"
        step(current)
        if platform.machine().lower() in ("aarch64", "arm64") or shutil.which("qemu-aarch64"):
            arch = "arm64"
            run(emu, "up", "--cluster", CLUSTER, "--yes")
        else:
            print("this machine cannot run an arm64 Lambda (no qemu-aarch64: Debian's qemu-user), "
                  "so the demo deploys for x86_64")
            arch = "x86_64"
            run(emu, "up", "--cluster", CLUSTER, "--arch", arch, "--yes")

        current = "das-setup package: the zip up deployed, byte for byte"
        step(current)
        zip_path = os.path.join(OUTSIDE, f"das-processor-{arch}.zip")
        run(emu, "package", "--arch", arch, "--output", zip_path)
        with open(zip_path, "rb") as f:
            packaged = base64.b64encode(hashlib.sha256(f.read()).digest()).decode()
        deployed = emu.client("lambda").get_function_configuration(
            FunctionName=f"das-setup-{CLUSTER}")["CodeSha256"]
        if packaged != deployed:
            raise StepFailed(f"package wrote CodeSha256 {packaged}, the function runs {deployed}")
        print(f"the deployed function's CodeSha256 is the package's: {deployed}")
        bucket = f"das-setup-{CLUSTER}-123456789012-eu-west-1"

        current = "generating activity: the producer's trickle plus a known mix"
        step(current)
        stream = f"aws-rds-das-{cluster['DbClusterResourceId']}"
        if not emu.wait_for_delivery(f"das-setup-{CLUSTER}", timeout=30):
            raise StepFailed("the emulator's Firehose never started reading the delivery stream")
        now = log_time()
        mix = [
            ("DDL", "CREATE TABLE", "create table invoices (id bigserial primary key, total numeric)"),
            ("WRITE", "INSERT", "insert into invoices (total) values (42.00)"),
            ("WRITE", "UPDATE", "update invoices set total = 43.00 where id = 1"),
            ("READ", "SELECT", "select * from invoices where total > 40"),
            # A secret in a statement: stored masked, never as written.
            ("ROLE", "ALTER ROLE", f"alter role app with password '{DEMO_SECRET}'"),
            ("CONNECT", "CONNECT", None),
            ("ERROR", "AUTH FAILURE", None),
        ]
        events = [{"type": "record", "logTime": now, "class": cls, "command": command, "commandText": text,
                   "serverType": "PostgreSQL", "dbUserName": "mallory" if "FAILURE" in command else "alice",
                   "databaseName": "billing", "demo": True}
                  for cls, command, text in mix]
        emu.admin("inject", {"stream": stream, "events": events})
        print(f"injected {len(events)} events; the producer adds about 3 per second")

        current = "waiting for processed events in S3"
        step(current)
        s3 = emu.client("s3")
        deadline = time.time() + 60
        while True:
            counts = count_events(s3, bucket)
            demo = counts.pop("_demo", 0)
            masked, leaked = counts.pop("_masked", 0), counts.pop("_secret", 0)
            print(f"  {sum(counts.values())} events in {len(counts)} categories so far", flush=True)
            if demo == len(events):
                if leaked or masked != 1:
                    raise StepFailed(f"the password in the ALTER ROLE statement was not masked in s3://{bucket}")
                print("  the ALTER ROLE statement's password is stored masked: '***'")
                break
            if time.time() > deadline:
                raise StepFailed(f"only {demo} of the {len(events)} injected events reached s3://{bucket}/parsed/")
            time.sleep(3)

        current = "das-setup status"
        step(current)
        run(emu, "status", "--cluster", CLUSTER)

        current = f"what is in s3://{bucket}"
        step(current)
        print_tree(s3, bucket)

        current = "five seconds of das-setup tail --follow"
        step(current)
        print(f"$ das-setup tail --cluster {CLUSTER} --follow", flush=True)
        tail = subprocess.Popen([SETUP, "tail", "--cluster", CLUSTER, "--follow"], env=emu.env(), cwd=OUTSIDE)
        time.sleep(5)
        tail.send_signal(signal.SIGINT)
        if tail.wait(timeout=10) != 0:
            raise StepFailed(f"das-setup tail exited {tail.returncode}")

        current = "das-setup down (keeps the bucket: it holds the audit events)"
        step(current)
        run(emu, "down", "--cluster", CLUSTER, "--yes")
        run(emu, "status", "--cluster", CLUSTER, check=False)
        step("demo done")
        return 0
    except (StepFailed, subprocess.TimeoutExpired, RuntimeError, OSError) as e:
        print(f"\n\033[1;31mdemo failed while {current}: {e}\033[0m", file=sys.stderr)
        return 1
    finally:
        if emu is not None:
            emu.stop()
        shutil.rmtree(OUTSIDE, ignore_errors=True)


DEMO_SECRET = "demo-s3cret-value"


def objects(s3, bucket, prefix):
    token = {}
    while True:
        page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, **token)
        yield from page.get("Contents", [])
        if not page.get("IsTruncated"):
            return
        token = {"ContinuationToken": page["NextContinuationToken"]}


def count_events(s3, bucket):
    counts = Counter()
    for o in objects(s3, bucket, "parsed/"):
        if not is_event_object(o["Key"]):
            continue
        body = gzip.decompress(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
        if DEMO_SECRET.encode() in body:
            counts["_secret"] += 1
        for line in body.decode().splitlines():
            event = json.loads(line)
            counts[event["category"]] += 1
            if event.get("demo"):
                counts["_demo"] += 1
                if event.get("redacted") == ["password"] and "'***'" in event.get("commandText", ""):
                    counts["_masked"] += 1
    return counts


def print_tree(s3, bucket):
    per_folder = Counter()
    files = Counter()
    for o in objects(s3, bucket, ""):
        folder = o["Key"].rsplit("/", 1)[0] + "/"
        files[folder] += 1
        if o["Key"].startswith("parsed/") and is_event_object(o["Key"]):
            body = gzip.decompress(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
            per_folder[folder] += len(body.splitlines())
    for folder in sorted(files):
        events = f"{per_folder[folder]:>5} events" if folder in per_folder else ""
        print(f"  {folder:<60} {files[folder]:>3} objects {events}")


if __name__ == "__main__":
    sys.exit(main())
