"""For tests that need the emulator: start one on a free port through tests/emulator/start,
talk to it with boto3 (an independent AWS client), read its admin API, stop it.

    emu = Emulator.start("--activity-stream-delay", "1")
    emu.client("s3").list_buckets()
    emu.stop()
"""

import datetime
import fcntl
import io
import json
import os
import socket
import subprocess
import time
import urllib.request
import zipfile

import boto3
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
REGION = "eu-west-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


# The processor's manifests of each invocation's writes live under `<prefix>_manifests/`
# (processor/src/manifest.rs), its integrity digests under `<prefix>_digests/`
# (processor/src/digest.rs); they are JSON, not events.
MANIFESTS = "_manifests/"
DIGESTS = "_digests/"


def is_manifest(key):
    return "/" + MANIFESTS in "/" + key


def is_digest(key):
    return "/" + DIGESTS in "/" + key


def is_event_object(key):
    """Not one of the processor's records of its own writes (manifests, digests)."""
    return not (is_manifest(key) or is_digest(key))


def log_time(ago=datetime.timedelta(0)):
    """A DAS `logTime` (PostgreSQL's format, UTC) of now minus `ago`: tests never depend on the
    calendar date, so every event time they inject comes from the clock."""
    t = datetime.datetime.now(datetime.timezone.utc) - ago
    return t.strftime("%Y-%m-%d %H:%M:%S.%f+00")


def hour_folder(log_time_text):
    """The folder the processor files an event of this `logTime` (UTC) under: `yyyy/MM/dd/HH`."""
    return log_time_text[:13].replace("-", "/").replace(" ", "/")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def zip_bootstrap(code):
    """A Lambda zip: one executable `bootstrap`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o100755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, code)
    return buf.getvalue()


class Emulator:
    def __init__(self, port, url):
        self.port = port
        self.url = url
        self._clients = {}

    @classmethod
    def start(cls, *options):
        # Test modules run in parallel (scripts/unittest_parallel.py): the port is chosen and the
        # server started under one lock, so no two emulators are handed the same free port
        # between the choice and the bind (start would then take the other for its own).
        lock_path = os.path.join(os.path.dirname(os.path.dirname(HERE)), "target", "emulator", ".start.lock")
        os.makedirs(os.path.dirname(lock_path), exist_ok=True)
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            port = str(free_port())
            # Through the entry point everyone uses.
            started = subprocess.run([os.path.join(HERE, "start"), "--port", port, *options],
                                     capture_output=True, text=True, timeout=600)
        if started.returncode != 0:
            raise RuntimeError("tests/emulator/start failed: " + started.stderr)
        url = started.stdout.strip()
        if url != f"http://127.0.0.1:{port}":
            raise RuntimeError(f"tests/emulator/start printed {url!r}")
        return cls(port, url)

    def stop(self):
        subprocess.run([os.path.join(HERE, "stop"), "--port", self.port], check=True, timeout=60)

    def client(self, service, region=REGION):
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = boto3.client(
                service, endpoint_url=self.url, region_name=region,
                aws_access_key_id="testing", aws_secret_access_key="testing")
        return self._clients[key]

    def clients_for(self, access_key_id, secret_access_key, session_token=None, region=REGION):
        """service -> boto3 client signed with other credentials (an IAM user's, a role session's)."""
        session = boto3.Session(aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
                                aws_session_token=session_token, region_name=region)
        return lambda service: session.client(service, endpoint_url=self.url)

    def wait_for_delivery(self, name, timeout=15):
        """Until the emulator's Firehose has seen the delivery stream, so reads its source from
        LATEST (as AWS's does shortly after ACTIVE); then records put in the stream are delivered.
        Returns whether it has, within `timeout` seconds."""
        deadline = time.time() + timeout
        while name not in self.admin("firehose"):
            if time.time() > deadline:
                return False
            time.sleep(0.1)
        return True

    def admin(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/_dasemu/{path}", data=data,
                                         method="GET" if body is None else "POST")
        with urllib.request.urlopen(request) as r:
            return json.loads(r.read())

    def calls(self, app=None):
        """Every AWS call served so far (optionally only those of one SDK app name)."""
        return self.admin("calls" + (f"?app={app}" if app else ""))["calls"]

    def env(self):
        """Environment for a program that should talk to this emulator as if it were AWS."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(CREDENTIALS, AWS_ENDPOINT_URL=self.url, AWS_REGION=REGION,
                   AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                   AWS_EC2_METADATA_DISABLED="true")
        return env

    VERSIONS = {"aurora-postgresql": "15.2", "aurora-mysql": "8.0.mysql_aurora.3.08.0"}

    def cluster(self, name, engine="aurora-postgresql", instances=1, instance_class="db.r6g.large", **kwargs):
        """An Aurora cluster with its instances, as `das-setup up` finds it: an engine version and
        an instance class that support activity streams unless told otherwise."""
        rds = self.client("rds")
        kwargs.setdefault("EngineVersion", self.VERSIONS.get(engine, ""))
        cluster = rds.create_db_cluster(DBClusterIdentifier=name, Engine=engine,
                                        MasterUsername="admin", MasterUserPassword="password123", **kwargs)
        for i in range(instances):
            rds.create_db_instance(DBInstanceIdentifier=f"{name}-{i + 1}", DBClusterIdentifier=name,
                                   Engine=engine, DBInstanceClass=instance_class)
        return cluster["DBCluster"]


class AwsAssertions:
    """For unittest.TestCase classes that talk to the emulator."""

    def assertError(self, code, call, **kwargs):
        """call(**kwargs) fails with the AWS error `code`; returns the error's message."""
        with self.assertRaises(ClientError) as raised:
            call(**kwargs)
        self.assertEqual(raised.exception.response["Error"]["Code"], code, raised.exception)
        return raised.exception.response["Error"]["Message"]
