"""Shared by the das-setup integration tests (not a test module itself)."""

import os


def binaries():
    """The das-setup binary and the das-processor binary the tests deploy (scripts/test sets both)."""
    setup, processor = os.environ.get("DAS_SETUP_BIN"), os.environ.get("DAS_PROCESSOR_BIN")
    missing = [n for n, p in (("DAS_SETUP_BIN", setup), ("DAS_PROCESSOR_BIN", processor))
               if not p or not os.path.exists(p)]
    if missing:
        raise RuntimeError(f"set {' and '.join(missing)} (scripts/test does)")
    return setup, processor


def leftovers(emu, cluster):
    """What das-setup made for this cluster that still exists, but the bucket (and a stopped stream)."""
    base = f"das-setup-{cluster}"
    iam, lam, fh, logs = (emu.client(s) for s in ("iam", "lambda", "firehose", "logs"))
    found = [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(base + "-")]
    found += [f["FunctionName"] for f in lam.list_functions()["Functions"] if f["FunctionName"] == base]
    found += [n for n in fh.list_delivery_streams()["DeliveryStreamNames"] if n == base]
    found += [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]
              if g["logGroupName"].endswith("/" + base)]
    c = emu.client("rds").describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]
    if c.get("ActivityStreamStatus", "stopped") != "stopped":
        found.append(f"activity stream {c['ActivityStreamStatus']}")
    return found
