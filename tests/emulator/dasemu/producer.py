"""The activity producer: while an activity stream is `started`, it writes genuine DAS records
into the stream's Kinesis stream, as RDS does.

- Data keys come from the emulator's own KMS: `GenerateDataKey` with the stream's KMS key and
  encryption context (`aws:rds:dbc-id` / `aws:rds:db-id` = the resource id), one per stream,
  renewed every few minutes like RDS.
- Messages are made by the AWS Encryption SDK for Python exactly as DAS does (das_batch.py): raw
  AES key `BC`/`DataKey`, suite 0x0178, 4096-byte frames, gzip'd record JSON.
- A heartbeat record every few seconds; a steady trickle of realistic events for the engine
  (PostgreSQL or MySQL for clusters; Oracle or SQL Server for instances), a few per second.
- `inject` writes given events (or a damaged record) on demand; `truth` returns everything
  written, so an end-to-end test can compare S3 with exactly what went in.

It talks to the emulator through its own HTTP endpoint with boto3, like any client.
"""

import datetime
import os
import random
import sys
import threading
import time


HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fixtures", "esdk"))

import das_batch  # noqa: E402
from dasemu.clients import Clients  # noqa: E402
import gen_fixtures as shapes  # noqa: E402  (the realistic event shapes of every engine)

DATA_KEY_SECONDS = 300


def now_log_time(engine):
    t = datetime.datetime.now(datetime.timezone.utc)
    if engine == "sqlserver":
        return t.strftime("%Y-%m-%d %H:%M:%S.") + "%07d+00" % (t.microsecond * 10)
    return t.strftime("%Y-%m-%d %H:%M:%S.%f+00")


def engine_of(engine_name):
    e = (engine_name or "").lower()
    if "mysql" in e:
        return "mysql"
    if "oracle" in e:
        return "oracle"
    if "sqlserver" in e:
        return "sqlserver"
    return "postgres"


def trickle_events(engine, rng, n):
    """n realistic activity events of several kinds for an engine, stamped now."""
    events = []
    while len(events) < n:
        if engine == "mysql":
            batch = mysql_batch(rng)
        elif engine == "oracle":
            batch = [shapes.oracle_event(rng)]
        elif engine == "sqlserver":
            batch = [shapes.sqlserver_event(rng)]
        else:
            batch = [shapes.pg_event(rng)] if rng.random() < 0.8 else shapes.pg_connect_events(rng)
        for event in batch:
            event["logTime"] = now_log_time(engine)
        events.extend(batch)
    return events


def mysql_batch(rng):
    if rng.random() < 0.1:
        return [shapes.mysql_failed_connect(rng)]
    return shapes.mysql_events(rng)


class StreamState:
    def __init__(self, region, resource, stream_name, kms_key_arn, engine, cluster):
        self.region = region
        self.resource = resource  # the moto model object (status is read from it)
        self.name = stream_name
        self.resource_id = stream_name[len("aws-rds-das-"):]
        self.kms_key_arn = kms_key_arn
        self.engine = engine
        self.cluster = cluster
        self.data_key = None
        self.data_key_at = 0.0
        self.last_heartbeat = 0.0
        self.rng = random.Random(hash(stream_name) & 0xFFFFFFFF)

    def context(self):
        key = "aws:rds:dbc-id" if self.cluster else "aws:rds:db-id"
        return {key: self.resource_id}

    def ids(self):
        if self.cluster:
            return self.resource_id, "db-" + self.resource_id[len("cluster-"):][:26]
        return "", self.resource_id


class Producer:
    def __init__(self, endpoint, status_of, trickle_per_second=3.0, heartbeat_seconds=5.0, tick=1.0):
        self.endpoint = endpoint
        self.status_of = status_of  # resource -> "started" | ...
        self.trickle_per_second = trickle_per_second
        self.heartbeat_seconds = heartbeat_seconds
        self.tick = tick
        self.streams = {}
        self.truth = []
        self.lock = threading.RLock()
        self.write_lock = threading.Lock()
        self.client = Clients(endpoint)

    # Called by activity_streams when a stream starts or stops.
    def register(self, region, resource, stream_name, kms_key_arn, engine, cluster):
        with self.lock:
            self.streams[stream_name] = StreamState(region, resource, stream_name, kms_key_arn, engine, cluster)

    def unregister(self, stream_name):
        with self.lock:
            self.streams.pop(stream_name, None)

    def configure(self, trickle_per_second=None, heartbeat_seconds=None):
        with self.lock:
            if trickle_per_second is not None:
                self.trickle_per_second = float(trickle_per_second)
            if heartbeat_seconds is not None:
                self.heartbeat_seconds = float(heartbeat_seconds)
            return {"trickle_per_second": self.trickle_per_second, "heartbeat_seconds": self.heartbeat_seconds}

    def find(self, name_or_resource_id):
        with self.lock:
            for s in self.streams.values():
                if name_or_resource_id in (s.name, s.resource_id):
                    return s
        return None

    def started(self, stream):
        return self.status_of(stream.resource) == "started"

    def write(self, stream, events, damage=None, kind="injected", kms_key=None):
        """Writes one record; returns its sequence number. Records the ground truth.
        With `kms_key`, the record's data key is made by that key (same encryption context)
        instead of the stream's: a record only the holder of that key can read.
        Serialized: moto's Kinesis PutRecord is not safe under concurrency, and injections
        arrive on server threads while the producer thread writes."""
        with self.write_lock:
            return self._write(stream, events, damage, kind, kms_key)

    def _write(self, stream, events, damage, kind, kms_key):
        now = time.time()
        if kms_key is not None:
            data_key = self.data_key(stream, kms_key)
        else:
            if stream.data_key is None or now - stream.data_key_at > DATA_KEY_SECONDS:
                stream.data_key, stream.data_key_at = self.data_key(stream, stream.kms_key_arn), now
            data_key = stream.data_key
        plaintext_key, blob = data_key
        cluster_id, instance_id = stream.ids()
        version = "1.2" if stream.engine == "mysql" else "1.1"
        data = das_batch.kinesis_data(events, cluster_id, instance_id, plaintext_key, blob, damage, version)
        out = self.client("kinesis", stream.region).put_record(
            StreamName=stream.name, Data=data, PartitionKey=stream.resource_id)
        with self.lock:
            self.truth.append({
                "stream": stream.name, "sequenceNumber": out["SequenceNumber"], "kind": kind,
                "damage": damage, "events": events, "time": now, "kms_key": kms_key,
            })
        return out["SequenceNumber"]

    def data_key(self, stream, kms_key):
        out = self.client("kms", stream.region).generate_data_key(
            KeyId=kms_key, KeySpec="AES_256", EncryptionContext=stream.context())
        return out["Plaintext"], out["CiphertextBlob"]

    def step(self):
        with self.lock:
            streams = list(self.streams.values())
            rate, every = self.trickle_per_second, self.heartbeat_seconds
        now = time.monotonic()
        for stream in streams:
            if not self.started(stream):
                continue
            if now - stream.last_heartbeat >= every:
                stream.last_heartbeat = now
                self.write(stream, [shapes.heartbeat()], kind="heartbeat")
            n = int(rate * self.tick) + (1 if stream.rng.random() < (rate * self.tick) % 1 else 0)
            if n > 0:
                self.write(stream, trickle_events(stream.engine, stream.rng, n), kind="trickle")

    def run_forever(self):
        while True:
            try:
                self.step()
            except Exception as e:  # a producer error must not kill the emulator
                print(f"dasemu producer: {e!r}", file=sys.stderr, flush=True)
            time.sleep(self.tick)

    def start(self):
        threading.Thread(target=self.run_forever, name="dasemu-producer", daemon=True).start()
