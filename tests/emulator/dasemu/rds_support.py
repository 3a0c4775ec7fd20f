"""Which databases can have an activity stream: `DescribeOrderableDBInstanceOptions`'s
`SupportedActivityStreamModes`, and `StartActivityStream` refusing what AWS does not support.

The RDS API reference (`OrderableDBInstanceOption.SupportedActivityStreamModes`): "The list of
supported modes for Database Activity Streams. Aurora PostgreSQL returns the value [sync, async].
Aurora MySQL and RDS for Oracle return [async] only. If Database Activity Streams isn't
supported, the return value is an empty list."

Where the answers come from:
- Aurora PostgreSQL, for the engine versions moto ships (`moto/rds/resources/cluster_options/
  aurora-postgresql.json`, answers recorded from AWS): AWS's own rows, filtered by
  `EngineVersion` and `DBInstanceClass` (moto ignores the class filter; RDS applies it).
- Otherwise, one row per asked class from the User Guides' tables ("Supported DB instance
  classes" in "Overview of Database Activity Streams", Aurora and RDS User Guides):
  Aurora PostgreSQL db.r7g/r6g/r6i/r6id/r5/r4 and db.x2g; Aurora MySQL db.r7g/r6g/r6i/r5/r4/r3
  (`.large` and up) and db.x2g; RDS for Oracle and SQL Server db.m4/m5/m5d/m6i, db.r4/r5/r5b/r5d/
  r6i, db.x1e, db.x2i*, db.z1d. No burstable (db.t*) and no Serverless v2 (db.serverless) class
  is listed. Aurora MySQL version 2 needs 2.11 or higher ("Supported Regions and Aurora DB engines
  for database activity streams"); Oracle container databases (`*-cdb`) are not supported
  ("CDBs aren't supported", RDS User Guide, same overview, 2023 edition).
- No row when `DBInstanceClass` is not given (das-setup always gives it).

`StartActivityStream` refuses a database any instance of which has no supported mode, Aurora
Serverless v1 (`EngineMode` serverless) and read replicas with the message the Aurora User Guide
quotes ("You can't start a database activity stream in this configuration", "Starting a database
activity stream"); the guide gives no error code, so the code here (InvalidParameterCombination)
is this emulator's choice.
"""

import re

from moto.core.responses import ActionResult
from moto.rds.exceptions import InvalidParameterCombination
from moto.rds.models import DBCluster
from moto.rds.responses import RDSResponse
from moto.rds.utils import decode_orderable_db_instance
from moto.utilities.utils import load_resource

CLASS_FAMILIES = {
    "aurora-postgresql": {"r7g", "r6g", "r6i", "r6id", "r5", "r4", "x2g"},
    "aurora-mysql": {"r7g", "r6g", "r6i", "r5", "r4", "r3", "x2g"},
    "rds": {"m4", "m5", "m5d", "m6i", "r4", "r5", "r5b", "r5d", "r6i", "x1e", "z1d"},
}
SMALL_SIZES = {"micro", "small", "medium"}
_recorded = {}


def _recorded_rows(engine):
    if engine not in _recorded:
        try:
            rows = load_resource(f"rds/resources/cluster_options/{engine}.json")
        except Exception:
            rows = []
        _recorded[engine] = [decode_orderable_db_instance(r) for r in rows]
    return _recorded[engine]


def _family_of(engine):
    if engine in ("aurora-postgresql", "aurora-mysql"):
        return engine
    if engine.startswith("oracle") or engine.startswith("sqlserver"):
        return "rds"
    return None


def _mysql_version_supported(version):
    """Aurora MySQL v3 (8.0.mysql_aurora.3.*) all versions; v2 (5.7.mysql_aurora.2.*) from 2.11."""
    m = re.search(r"mysql_aurora\.(\d+)\.(\d+)", version or "")
    if not m:
        return True  # a version string this emulator cannot read: not refused here
    major, minor = int(m.group(1)), int(m.group(2))
    return major >= 3 or (major == 2 and minor >= 11)


def supported_modes(engine, version, db_class):
    """The SupportedActivityStreamModes RDS would list for this combination."""
    engine = (engine or "").lower()
    if engine == "aurora-postgresql":
        recorded = [r for r in _recorded_rows(engine) if r["EngineVersion"] == version]
        if recorded:
            rows = [r for r in recorded if r["DBInstanceClass"] == db_class]
            return sorted({m for r in rows for m in r.get("SupportedActivityStreamModes", [])})
    family = _family_of(engine)
    if family is None or engine.endswith("-cdb"):
        return []
    if engine == "aurora-mysql" and not _mysql_version_supported(version):
        return []
    parts = (db_class or "").split(".")
    if len(parts) != 3 or parts[0] != "db":
        return []
    kind, size = parts[1], parts[2]
    listed = kind in CLASS_FAMILIES[family] or (family == "rds" and kind.startswith("x2i"))
    if not listed or (family == "aurora-mysql" and size in SMALL_SIZES):
        return []
    return ["async", "sync"] if engine == "aurora-postgresql" else ["async"]


def describe_orderable_db_instance_options(self):
    engine = self.params.get("Engine")
    version = self.params.get("EngineVersion")
    db_class = self.params.get("DBInstanceClass")
    rows = []
    if db_class:
        recorded = [r for r in _recorded_rows(engine or "")
                    if r["EngineVersion"] == version and r["DBInstanceClass"] == db_class]
        if recorded:
            rows = recorded
        elif supported_modes(engine, version, db_class) or _family_of(engine or ""):
            rows = [{"Engine": engine, "EngineVersion": version, "DBInstanceClass": db_class,
                     "SupportedActivityStreamModes": supported_modes(engine, version, db_class),
                     "SupportedEngineModes": ["provisioned"]}]
    return ActionResult({"OrderableDBInstanceOptions": rows})


def refusal(resource):
    """Why StartActivityStream refuses this cluster or instance, or None."""
    message = "You can't start a database activity stream in this configuration."
    if isinstance(resource, DBCluster):
        if getattr(resource, "engine_mode", "provisioned") == "serverless":
            return InvalidParameterCombination(message + " (Aurora Serverless v1)")
        instances = list(getattr(resource, "_members", []))
    else:
        if getattr(resource, "source_db_instance_identifier", None):
            return InvalidParameterCombination(message + " (read replica)")
        instances = [resource]
    for instance in instances:
        if not supported_modes(resource.engine, resource.engine_version, instance.db_instance_class):
            return InvalidParameterCombination(
                f"{message} ({resource.engine} {resource.engine_version} on {instance.db_instance_class})")
    return None


def install():
    RDSResponse.describe_orderable_db_instance_options = describe_orderable_db_instance_options
