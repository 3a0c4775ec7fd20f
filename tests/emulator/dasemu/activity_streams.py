"""RDS database activity streams for moto: StartActivityStream, StopActivityStream, and the
ActivityStream* fields of DescribeDBClusters / DescribeDBInstances.

Modelled on the RDS API reference and ../shared/reference/aws-pipeline.md:
- `starting` becomes `started` after a delay (a few seconds by default), `stopping` becomes
  `stopped` likewise; the status is computed when read, so no thread is needed.
- Starting creates the Kinesis stream `aws-rds-das-<resource id>` (24 h retention) in moto's
  Kinesis; stopping deletes it.
- Unsupported databases refused as `rds_support.py` says (instance classes, versions, Serverless
  v1, read replicas), and `DescribeOrderableDBInstanceOptions` answering which are supported.
- Errors as RDS gives them: unknown cluster or instance, KMS key missing, disabled or not a
  symmetric customer-managed key (KMSKeyNotAccessibleFault), already started or not started
  (InvalidDBClusterStateFault / InvalidDBInstanceState), sync mode on MySQL.
"""

import random
import string
import time

from moto.core.responses import ActionResult
from moto.kinesis.models import kinesis_backends
from moto.kms.models import kms_backends
from moto.rds.exceptions import (
    DBClusterNotFoundError,
    DBInstanceNotFoundError,
    InvalidDBClusterStateFault,
    InvalidParameterCombination,
    KMSKeyNotAccessibleFault,
    RDSClientError,
)
from moto.rds.models import DBCluster, DBInstance
from moto.rds.responses import RDSResponse

from dasemu import rds_support

DELAY_SECONDS = 3.0
# The activity producer (producer.py), told when streams start and stop.
PRODUCER = None


class InvalidDBInstanceState(RDSClientError):
    def __init__(self, message):
        super().__init__("InvalidDBInstanceState", message)


class ResourceNotFoundFault(RDSClientError):
    def __init__(self, arn):
        super().__init__("ResourceNotFoundFault", f"The specified resource ARN {arn} was not found.")


class Stream:
    """One resource's activity stream: what was asked and when."""

    def __init__(self, mode, kms_key_id, stream_name, native_fields):
        self.policy = "locked"  # RDS locks the audit policy of a stream it starts
        self.policy_changed_at = None
        self.mode = mode
        self.kms_key_id = kms_key_id
        self.stream_name = stream_name
        self.native_fields = native_fields
        self.started_at = time.monotonic()
        self.stopped_at = None

    def policy_status(self):
        """`locking-policy` / `unlocking-policy` for the delay after ModifyActivityStream."""
        if self.policy_changed_at is not None and time.monotonic() - self.policy_changed_at < DELAY_SECONDS:
            return "locking-policy" if self.policy == "locked" else "unlocking-policy"
        return self.policy

    def status(self):
        now = time.monotonic()
        if self.stopped_at is not None:
            return "stopping" if now - self.stopped_at < DELAY_SECONDS else "stopped"
        return "starting" if now - self.started_at < DELAY_SECONDS else "started"


def _stream(resource):
    stream = getattr(resource, "_das_stream", None)
    if stream is not None and stream.status() == "stopped":
        resource._das_stream = None
        return None
    return stream


def _field(name, default=None):
    def get(resource):
        stream = _stream(resource)
        if stream is None:
            return default
        return getattr(stream, name)() if name in ("status", "policy_status") else getattr(stream, name)

    return property(get)


def _resource_id(resource):
    return resource.db_cluster_resource_id if isinstance(resource, DBCluster) else resource.dbi_resource_id


def _engine(resource):
    return (getattr(resource, "engine", "") or "").lower()


def _find(backend, arn):
    """The cluster or instance an ARN names: arn:aws:rds:<region>:<account>:cluster:<id> or :db:<id>."""
    parts = arn.split(":")
    if len(parts) < 7 or parts[2] != "rds":
        raise ResourceNotFoundFault(arn)
    kind, identifier = parts[5], ":".join(parts[6:])
    if kind == "cluster":
        cluster = backend.clusters.get(identifier)
        if cluster is None:
            raise DBClusterNotFoundError(identifier)
        return cluster
    if kind == "db":
        instance = backend.databases.get(identifier)
        if instance is None:
            raise DBInstanceNotFoundError(identifier)
        return instance
    raise ResourceNotFoundFault(arn)


def _state_error(resource, message):
    if isinstance(resource, DBCluster):
        return InvalidDBClusterStateFault(message)
    return InvalidDBInstanceState(message)


def _check_key(account_id, region, key_id):
    """The KMS key must exist, be enabled, and be a symmetric customer-managed key."""
    backend = kms_backends[account_id][region]
    try:
        key = backend.describe_key(key_id)
    except Exception:
        raise KMSKeyNotAccessibleFault(key_id)
    if (
        not key.enabled
        or key.key_state != "Enabled"
        or key.key_spec != "SYMMETRIC_DEFAULT"
        or key.key_manager != "CUSTOMER"
    ):
        raise KMSKeyNotAccessibleFault(key_id)
    return key.arn


def start_activity_stream(self):
    params = self.params
    arn = params.get("ResourceArn", "")
    mode = params.get("Mode", "")
    key_id = params.get("KmsKeyId", "")
    resource = _find(self.backend, arn)
    if mode not in ("async", "sync"):
        raise InvalidParameterCombination(f"Invalid activity stream mode: {mode!r} (async or sync).")
    if mode == "sync" and "mysql" in _engine(resource):
        raise InvalidParameterCombination(
            "Synchronous mode isn't supported for Aurora MySQL activity streams. Use async mode."
        )
    unsupported = rds_support.refusal(resource)
    if unsupported is not None:
        raise unsupported
    stream = _stream(resource)
    if stream is not None:
        raise _state_error(resource, f"Activity Streams feature expected to be stopped, but is {stream.status()}")
    key_arn = _check_key(self.current_account, self.region, key_id)
    name = "aws-rds-das-" + _resource_id(resource)
    kinesis_backends[self.current_account][self.region].create_stream(
        name, shard_count=1, retention_period_hours=24
    )
    native = params.get("EngineNativeAuditFieldsIncluded")
    resource._das_stream = Stream(mode, key_arn, name, native in (True, "true", "True"))
    if PRODUCER is not None:
        from dasemu.producer import engine_of

        PRODUCER.register(self.region, resource, name, key_arn, engine_of(_engine(resource)),
                          isinstance(resource, DBCluster))
    return ActionResult(
        {
            "KmsKeyId": key_arn,
            "KinesisStreamName": name,
            "Status": "starting",
            "Mode": mode,
            "ApplyImmediately": params.get("ApplyImmediately") in (True, "true", "True"),
            "EngineNativeAuditFieldsIncluded": resource._das_stream.native_fields,
        }
    )


def stop_activity_stream(self):
    arn = self.params.get("ResourceArn", "")
    resource = _find(self.backend, arn)
    stream = _stream(resource)
    if stream is None or stream.status() != "started":
        status = "stopped" if stream is None else stream.status()
        raise _state_error(resource, f"Activity Streams feature expected to be started, but is {status}")
    stream.stopped_at = time.monotonic()
    if PRODUCER is not None:
        PRODUCER.unregister(stream.stream_name)
    kinesis = kinesis_backends[self.current_account][self.region]
    if stream.stream_name in kinesis.streams:
        kinesis.delete_stream(stream_arn=None, stream_name=stream.stream_name)
    return ActionResult({"KmsKeyId": stream.kms_key_id, "KinesisStreamName": stream.stream_name, "Status": "stopping"})


def modify_activity_stream(self):
    """ModifyActivityStream (RDS API reference): "This operation is supported for RDS for Oracle
    and Microsoft SQL Server"; AuditPolicyState locked or unlocked; the instance's
    ActivityStreamPolicyStatus passes through locking-policy / unlocking-policy ("Modifying a
    database activity stream for Amazon RDS", RDS User Guide). A cluster, or an engine other
    than those two, is not a resource it knows (ResourceNotFoundFault); a stream that is not
    started is InvalidDBInstanceState."""
    arn = self.params.get("ResourceArn", "")
    state = self.params.get("AuditPolicyState")
    resource = _find(self.backend, arn)
    engine = _engine(resource)
    if isinstance(resource, DBCluster) or not (engine.startswith("oracle") or engine.startswith("sqlserver")):
        raise ResourceNotFoundFault(arn)
    stream = _stream(resource)
    if stream is None or stream.status() != "started":
        status = "stopped" if stream is None else stream.status()
        raise InvalidDBInstanceState(f"Activity Streams feature expected to be started, but is {status}")
    if state not in ("locked", "unlocked"):
        raise InvalidParameterCombination(f"Invalid AuditPolicyState: {state!r} (locked or unlocked).")
    if state != stream.policy:
        stream.policy = state
        stream.policy_changed_at = time.monotonic()
    return ActionResult({"KmsKeyId": stream.kms_key_id, "KinesisStreamName": stream.stream_name,
                         "Status": stream.status(), "Mode": stream.mode,
                         "EngineNativeAuditFieldsIncluded": stream.native_fields,
                         "PolicyStatus": stream.policy_status()})


def _unique_instance_ids(original_init):
    """moto gives every DB instance the same DbiResourceId; RDS gives each its own, and DAS
    names the Kinesis stream and the encryption context after it."""

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.dbi_resource_id = "db-" + "".join(random.choices(string.ascii_uppercase + string.digits, k=26))

    return init


def status_of(resource):
    stream = _stream(resource)
    return "stopped" if stream is None else stream.status()


def install(delay_seconds=DELAY_SECONDS, producer=None):
    """Adds activity streams to moto's RDS, in this process (before the server starts)."""
    global DELAY_SECONDS, PRODUCER
    DELAY_SECONDS = float(delay_seconds)
    PRODUCER = producer
    RDSResponse.start_activity_stream = start_activity_stream
    RDSResponse.stop_activity_stream = stop_activity_stream
    RDSResponse.modify_activity_stream = modify_activity_stream
    rds_support.install()
    for cls in (DBCluster, DBInstance):
        cls.activity_stream_status = _field("status", "stopped")
        cls.activity_stream_mode = _field("mode")
        cls.activity_stream_kms_key_id = _field("kms_key_id")
        cls.activity_stream_kinesis_stream_name = _field("stream_name")
    DBInstance.activity_stream_engine_native_audit_fields_included = _field("native_fields")
    DBInstance.activity_stream_policy_status = _field("policy_status")
    DBInstance.__init__ = _unique_instance_ids(DBInstance.__init__)
