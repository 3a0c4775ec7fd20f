"""The Glue table and Athena workgroup `up` creates for `query --engine athena` (issue 19 items 2
and 6), checked against what the pipeline really writes:

- the partitions Athena would compute from the table's projection settings (Athena User Guide,
  "Partition projection with Amazon Athena": an `enum` column's values, a `date` column's range,
  format and interval, substituted into `storage.location.template`) include the folder of every
  object the processor wrote, and none of its manifests' or digests' folders;
- every field of the processor's output lines is a column of the table (the JSON SerDe matches
  names ignoring case: Athena User Guide, "OpenX JSON SerDe");
- the workgroup's results are encrypted, enforced and in the bucket's expiring folder;
- drift is put back by the next `up`; `down` removes both and keeps the events.

The projection is evaluated here by this test's own reading of the documentation, not by
das-setup's code.
"""

import datetime
import gzip
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, HERE)
from common import EmulatorCase, pg  # noqa: E402

ACCOUNT = "123456789012"
REGION = "eu-west-1"
CLUSTER = "catalogued"
BUCKET = f"das-setup-{CLUSTER}-{ACCOUNT}-{REGION}"
DATABASE = "das_setup_catalogued"
WORKGROUP = f"das-setup-{CLUSTER}"

# Java DateTimeFormatter letters the projection's format uses -> strftime.
JAVA_TO_STRFTIME = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H"}


def strftime_of(java):
    out = java
    for letters, directive in JAVA_TO_STRFTIME.items():
        out = out.replace(letters, directive)
    if any(c.isalpha() for c in out.replace("%Y", "").replace("%m", "").replace("%d", "").replace("%H", "")):
        raise AssertionError(f"format {java!r} uses letters this test does not evaluate")
    return out


def projected_locations(parameters, first, last):
    """Every partition location the projection gives for the hours from `first` to `last`."""
    assert parameters["projection.enabled"] == "true"
    columns = sorted({k.split(".")[1] for k in parameters if k.startswith("projection.") and k.count(".") >= 2})
    values = {}
    for column in columns:
        kind = parameters[f"projection.{column}.type"]
        if kind == "enum":
            values[column] = parameters[f"projection.{column}.values"].split(",")
        elif kind == "date":
            fmt = strftime_of(parameters[f"projection.{column}.format"])
            start, end = parameters[f"projection.{column}.range"].split(",")
            assert parameters[f"projection.{column}.interval.unit"] == "HOURS"
            step = datetime.timedelta(hours=int(parameters.get(f"projection.{column}.interval", "1")))
            low = datetime.datetime.strptime(start, fmt)
            assert end == "NOW", end
            assert low <= first, f"the range starts after stored data: {start}"
            hours, at = [], first
            while at <= last:
                hours.append(at.strftime(fmt))
                at += step
            values[column] = hours
        else:
            raise AssertionError(f"projection type {kind} not evaluated by this test")
    template = parameters["storage.location.template"]
    locations = [template]
    for column in columns:
        locations = [loc.replace("${" + column + "}", v) for loc in locations for v in values[column]]
    return set(locations)


class CatalogTest(EmulatorCase):
    def up(self, *more):
        done = self.run_setup("up", "--cluster", CLUSTER, "--arch", "x86_64", "--lambda-zip", self.zip, "--yes",
                              *more)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done

    def test_the_projection_covers_every_object_the_processor_writes_and_down_keeps_the_events(self):
        events = [
            {**pg("c-ddl", "DDL", "CREATE TABLE", "create table t (id int)", user="alice"), "sessionId": "1"},
            {**pg("c-fail", "", "AUTH FAILURE", "", user="mallory"), "errorMessage": "password authentication failed"},
            {**pg("c-read", "READ", "SELECT", "select 1", user="bob"), "paramList": ["a", "b"]},
        ]
        done = self.deploy_and_store(CLUSTER, BUCKET, events, "--output", "json")
        query = json.loads(done.stdout)["query"]
        self.assertEqual(query["glueDatabase"], DATABASE)
        self.assertEqual(query["table"], "events")
        self.assertEqual(query["workgroup"], WORKGROUP)
        self.assertEqual(query["resultsLocation"], f"s3://{BUCKET}/athena-results/{CLUSTER}/")

        glue = self.emu.client("glue")
        table = glue.get_table(DatabaseName=DATABASE, Name="events")["Table"]
        parameters = table["Parameters"]
        s3 = self.emu.client("s3")
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="parsed/")
                for o in page.get("Contents", [])]
        events_keys = [k for k in keys if k.endswith(".json.gz") and "/_" not in k]
        other_keys = [k for k in keys if "/_" in k]
        self.assertTrue(events_keys and other_keys, keys)
        hour_format = strftime_of(parameters["projection.hour.format"])
        hours = [datetime.datetime.strptime("/".join(k.split("/")[3:7]), hour_format) for k in events_keys]
        locations = projected_locations(parameters, min(hours), max(hours))
        for key in events_keys:
            self.assertIn(f"s3://{BUCKET}/{key.rsplit('/', 1)[0]}/", locations, "an object no partition reads")
        for key in other_keys:
            self.assertNotIn(f"s3://{BUCKET}/{key.rsplit('/', 1)[0]}/", locations, "a manifest read as events")
        self.assertEqual(table["StorageDescriptor"]["Location"], f"s3://{BUCKET}/parsed/{CLUSTER}/")

        # Every field the processor writes is a column (case aside), and the partition columns.
        columns = {c["Name"] for c in table["StorageDescriptor"]["Columns"]}
        partitions = [c["Name"] for c in table["PartitionKeys"]]
        self.assertEqual(partitions, ["category", "hour"])
        self.assertTrue(all(c["Type"] == "string" for c in table["StorageDescriptor"]["Columns"]))
        written = set()
        for key in events_keys:
            body = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
            for line in body.decode().splitlines():
                written |= {field.lower() for field in json.loads(line)}
        written -= {"testid"}  # the emulator's marker, not a DAS field
        self.assertEqual(sorted(written - columns - set(partitions)), [], "fields the table does not have")
        serde = table["StorageDescriptor"]["SerdeInfo"]
        self.assertEqual(serde["SerializationLibrary"], "org.openx.data.jsonserde.JsonSerDe")

        athena = self.emu.client("athena")
        group = athena.get_work_group(WorkGroup=WORKGROUP)["WorkGroup"]
        config = group["Configuration"]
        self.assertEqual(config["ResultConfiguration"]["OutputLocation"], query["resultsLocation"])
        self.assertEqual(config["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"], "SSE_S3")
        self.assertTrue(config["EnforceWorkGroupConfiguration"])
        rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}
        results_rule = rules["das-setup-retention-athena-results"]
        self.assertEqual(results_rule["Filter"]["Prefix"], "athena-results/")
        self.assertEqual(results_rule["Expiration"]["Days"], query["resultsExpireDays"])

        status = self.run_setup("status", "--cluster", CLUSTER, "--output", "json")
        checks = {c["check"]: c for c in json.loads(status.stdout)["checks"]}
        self.assertEqual(checks["glue-table"]["status"], "OK", checks["glue-table"])
        self.assertEqual(checks["athena-workgroup"]["status"], "OK", checks["athena-workgroup"])

        # Drift: someone moves the table, strips the tags, turns off encryption; up puts it back.
        moved = {k: v for k, v in table.items() if k in ("Name", "TableType", "Parameters", "PartitionKeys")}
        moved["StorageDescriptor"] = {**table["StorageDescriptor"], "Location": "s3://elsewhere/"}
        glue.update_table(DatabaseName=DATABASE, TableInput=moved)
        glue.untag_resource(ResourceArn=f"arn:aws:glue:{REGION}:{ACCOUNT}:database/{DATABASE}",
                            TagsToRemove=["managed-by"])
        athena.update_work_group(WorkGroup=WORKGROUP, ConfigurationUpdates={
            "ResultConfigurationUpdates": {"RemoveEncryptionConfiguration": True}})
        athena.untag_resource(ResourceARN=f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/{WORKGROUP}",
                              TagKeys=["managed-by"])
        status = self.run_setup("status", "--cluster", CLUSTER, "--output", "json")
        checks = {c["check"]: c for c in json.loads(status.stdout)["checks"]}
        self.assertEqual(checks["glue-table"]["status"], "WARN", checks["glue-table"])
        self.assertEqual(checks["athena-workgroup"]["status"], "WARN", checks["athena-workgroup"])
        plan = json.loads(self.up("--output", "json").stdout)["plan"]
        actions = {r["resource"]: r for r in plan}
        self.assertEqual(actions["glue-table"]["changes"], ["tags", "table definition"], actions["glue-table"])
        self.assertEqual(actions["athena-workgroup"]["changes"], ["results location and encryption", "tags"])
        table = glue.get_table(DatabaseName=DATABASE, Name="events")["Table"]
        self.assertEqual(table["StorageDescriptor"]["Location"], f"s3://{BUCKET}/parsed/{CLUSTER}/")
        config = athena.get_work_group(WorkGroup=WORKGROUP)["WorkGroup"]["Configuration"]
        self.assertEqual(config["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"], "SSE_S3")
        again = json.loads(self.up("--output", "json").stdout)
        self.assertEqual(again["changes"], 0, again["plan"])

        # down: the database (with its table) and the workgroup go; the events stay.
        done = self.run_setup("down", "--cluster", CLUSTER, "--yes", "--output", "json")
        self.assertEqual(done.returncode, 0, done.stderr)
        removed = {r["resource"]: r["action"] for r in json.loads(done.stdout)["resources"]}
        self.assertEqual((removed["glue-table"], removed["athena-workgroup"]), ("delete", "delete"))
        with self.assertRaises(glue.exceptions.EntityNotFoundException):
            glue.get_database(Name=DATABASE)
        with self.assertRaises(athena.exceptions.InvalidRequestException):
            athena.get_work_group(WorkGroup=WORKGROUP)
        for key in events_keys:
            s3.head_object(Bucket=BUCKET, Key=key)


if __name__ == "__main__":
    unittest.main()
