"""Alerts end to end (issue 18 item 8), against the real processor on the emulator.

A cluster deployed with `up --alerts default` receives a GRANT, a DROP TABLE, a burst of five
failed logins of one user from one host and ordinary SELECTs. An SQS queue subscribed to the
alerts topic and an EventBridge rule's SQS target must each receive exactly the expected alerts,
once, with the documented fields; the SELECTs give none. The first publish to SNS is made to fail
past the SDK's retries, so the invocation fails and Firehose retries it: the retry publishes what
had failed and nothing twice; that failure sets off the function-errors and processing-failures
alarms, whose notifications reach the same topic (CloudWatch may use the topic's key) and whose
states `status` shows. `down` removes the topic, its subscriptions, the alarms and the key policy
statement.

The expected alerts are written here from the README's description of the built-in rules, not
computed by the processor's code.
"""

import json
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, HERE)
from common import EmulatorCase, leftovers, pg  # noqa: E402

ACCOUNT = "123456789012"
REGION = "eu-west-1"
CLUSTER = "alerted"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:das-setup-{CLUSTER}-alerts"
# The built-in rules (README, "Alert rules") these events must raise, each once.
EXPECTED = {
    "privilege-or-user-change": ("high", "DCL", "alice"),
    "table-dropped-or-truncated": ("high", "DDL", "alice"),
    "failed-login-burst-user": ("high", "AUTH_FAILURE", "mallory"),
    "failed-login-burst-host": ("high", "AUTH_FAILURE", "mallory"),
}
FIELDS = {"alertId", "rule", "severity", "category", "user", "database", "object", "client",
          "statement", "cluster", "instance", "eventTime", "s3Key", "bucket", "count"}


class AlertsTest(EmulatorCase):
    def drain(self, sqs, url, seconds):
        """Every message the queue receives within `seconds` (deleted as read)."""
        got, deadline = [], time.time() + seconds
        while time.time() < deadline:
            # Short polls: moto's long poll is a timed wait, which never ends under libfaketime
            # (scripts/test-later-date).
            r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            for m in r.get("Messages", []):
                got.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            time.sleep(0.3)
        return got

    def test_the_default_rules_alert_once_on_sns_and_eventbridge_and_selects_do_not(self):
        cluster = self.emu.cluster(CLUSTER, engine="aurora-postgresql")
        hub = self.emu.client("securityhub")
        hub.enable_security_hub()
        done = self.run_setup("up", "--cluster", CLUSTER, "--arch", "x86_64", "--lambda-zip", self.zip,
                              "--alerts", "default", "--security-hub", "--yes", "--output", "json")
        self.assertEqual(done.returncode, 0, done.stderr)
        doc = json.loads(done.stdout)
        product = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
        self.assertEqual(doc["alerts"]["securityHub"], {"productArn": product, "severities": ["high", "critical"]})
        self.assertEqual(doc["alerts"]["topicArn"], TOPIC)
        self.assertEqual(doc["alerts"]["eventBus"], "default")
        self.assertIn("table-dropped-or-truncated", doc["alerts"]["rules"])

        sns, sqs, events = (self.emu.client(s) for s in ("sns", "sqs", "events"))
        attributes = sns.get_topic_attributes(TopicArn=TOPIC)["Attributes"]
        self.assertTrue(attributes.get("KmsMasterKeyId", "").startswith("arn:aws:kms:"), attributes)
        queues = {}
        for name in ("from-sns", "from-eventbridge"):
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            queues[name] = (url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
                            ["Attributes"]["QueueArn"])
        sns.subscribe(TopicArn=TOPIC, Protocol="sqs", Endpoint=queues["from-sns"][1])
        events.put_rule(Name="das-setup-alerts", EventPattern=json.dumps(
            {"source": ["das-setup"], "detail-type": ["Database Activity Alert"]}))
        events.put_targets(Rule="das-setup-alerts", Targets=[{"Id": "q", "Arn": queues["from-eventbridge"][1]}])

        self.emu.wait_for_delivery(f"das-setup-{CLUSTER}")
        # The first invocation's publish fails past the SDK's three attempts: the invocation
        # fails and Firehose invokes it again.
        self.emu.admin("faults", {"faults": [{"operation": "sns:PublishBatch", "kind": "throttle", "times": 3}]})
        stream = f"aws-rds-das-{cluster['DbClusterResourceId']}"
        failed = [dict(pg(f"f-{i}", "ERROR", "AUTH FAILURE", None, user="mallory"), remoteHost="203.0.113.7")
                  for i in range(5)]
        self.emu.admin("inject", {"stream": stream, "events": [
            pg("s-1", "READ", "SELECT", "select * from orders"),
            dict(pg("g-1", "ROLE", "GRANT", "grant all on orders to mallory"), remoteHost="10.0.0.9"),
            dict(pg("d-1", "DDL", "DROP TABLE", "drop table orders"), objectName="orders"),
            pg("s-2", "READ", "SELECT", "select count(*) from orders"),
            *failed,
        ]})

        on_topic = [json.loads(m["Message"]) for m in self.drain(sqs, queues["from-sns"][0], 20)]
        # The topic carries the pipeline's alarms too (item 4): the failed invocation is a
        # Lambda error and a Firehose processing failure, each an ALARM notification.
        alarms = [m for m in on_topic if "AlarmName" in m]
        from_sns = [m for m in on_topic if "AlarmName" not in m]
        went_off = {m["AlarmName"] for m in alarms if m["NewStateValue"] == "ALARM"}
        self.assertEqual(went_off, {f"das-setup-{CLUSTER}-lambda-errors", f"das-setup-{CLUSTER}-processing-failures"},
                         alarms)
        from_events = self.drain(sqs, queues["from-eventbridge"][0], 3)
        stats = self.emu.admin("firehose")[f"das-setup-{CLUSTER}"]["stats"]
        self.assertGreaterEqual(stats["retries"], 1, f"the failed publish failed the invocation: {stats}")

        for label, got in (("SNS", from_sns), ("EventBridge", [e["detail"] for e in from_events])):
            rules = sorted(a["rule"] for a in got)
            self.assertEqual(rules, sorted(EXPECTED), f"{label}: each expected alert once, no other")
            for a in got:
                self.assertLessEqual(FIELDS, set(a), f"{label}: documented fields")
                self.assertEqual((a["severity"], a["category"], a["user"]), EXPECTED[a["rule"]], a)
                self.assertEqual(a["cluster"], cluster["DbClusterResourceId"])
                self.assertEqual(a["database"], "shop")
                self.assertTrue(a["s3Key"].startswith(f"parsed/{CLUSTER}/{a['category']}/"), a)
                self.assertEqual(a["bucket"], f"das-setup-{CLUSTER}-{ACCOUNT}-{REGION}")
                # The event is stored where the alert says.
                body = self.emu.client("s3").get_object(Bucket=a["bucket"], Key=a["s3Key"])["Body"].read()
                self.assertGreater(len(body), 0)
        for e in from_events:
            self.assertEqual((e["source"], e["detail-type"]), ("das-setup", "Database Activity Alert"))
        by_rule = {a["rule"]: a for a in from_sns}
        self.assertEqual(by_rule["table-dropped-or-truncated"]["statement"], "drop table orders")
        self.assertEqual(by_rule["table-dropped-or-truncated"]["object"], "orders")
        self.assertEqual(by_rule["privilege-or-user-change"]["client"], "10.0.0.9")
        self.assertEqual(by_rule["failed-login-burst-host"]["client"], "203.0.113.7")
        self.assertEqual(by_rule["failed-login-burst-user"]["count"], 5)
        self.assertEqual({a["alertId"] for a in from_sns},
                         {e["detail"]["alertId"] for e in from_events}, "one identity per alert")

        # Security Hub (item 6): each high alert once, as an ASFF finding about the cluster (the
        # request was checked against Security Hub's service model by the emulator).
        findings = hub.get_findings()["Findings"]
        self.assertEqual(sorted(f["GeneratorId"] for f in findings), sorted(f"das-setup/{r}" for r in EXPECTED))
        for f in findings:
            rule = f["GeneratorId"].split("/", 1)[1]
            self.assertEqual(f["Id"], f"das-setup/{by_rule[rule]['alertId']}")
            self.assertEqual((f["ProductArn"], f["AwsAccountId"]), (product, ACCOUNT))
            self.assertEqual(f["Severity"]["Label"], "HIGH")
            self.assertEqual(f["Resources"][0]["Type"], "AwsRdsDbCluster")
            self.assertEqual(f["Resources"][0]["Id"], cluster["DBClusterArn"])
            self.assertEqual(f["CreatedAt"], by_rule[rule]["eventTime"])
            self.assertEqual(f["ProductFields"]["das-setup/rule"], rule)

        # Nothing more arrives later (no duplicate from the retry, none from the SELECTs).
        self.assertEqual(self.drain(sqs, queues["from-sns"][0], 4), [])
        self.assertEqual(self.drain(sqs, queues["from-eventbridge"][0], 1), [])

        done = self.run_setup("status", "--cluster", CLUSTER, "--output", "json")
        checks = {c["check"]: c for c in json.loads(done.stdout)["checks"]}
        self.assertEqual(checks["alerts-topic"]["status"], "OK", checks["alerts-topic"])
        self.assertEqual(checks["alarms"]["status"], "FAIL", checks["alarms"])
        self.assertIn("lambda-errors ALARM", checks["alarms"]["detail"])
        self.assertIn("read-lag OK", checks["alarms"]["detail"])

        done = self.run_setup("down", "--cluster", CLUSTER, "--yes")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(leftovers(self.emu, CLUSTER), [])
        self.assertEqual([s for s in sns.list_subscriptions()["Subscriptions"] if s["TopicArn"] == TOPIC], [])
        topics = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
        self.assertNotIn(TOPIC, topics)

    def test_the_no_events_alarm_goes_off_without_events_and_clears_once_events_are_stored(self):
        """`--no-events-alarm 2`: no datapoint of the function's EventsStored metric is breaching,
        so the new alarm goes to ALARM; stored events (the metric the function logs in the
        embedded metric format) bring it back to OK. Both notify the topic."""
        name = "quiet"
        cluster = self.emu.cluster(name, engine="aurora-postgresql")
        done = self.run_setup("up", "--cluster", name, "--arch", "x86_64", "--lambda-zip", self.zip,
                              "--alerts", "default", "--no-events-alarm", "2", "--yes", "--output", "json")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn(f"das-setup-{name}-no-events", json.loads(done.stdout)["alerts"]["alarms"])
        sns, sqs = self.emu.client("sns"), self.emu.client("sqs")
        url = sqs.create_queue(QueueName="quiet-alarms")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=f"arn:aws:sns:{REGION}:{ACCOUNT}:das-setup-{name}-alerts", Protocol="sqs",
                      Endpoint=queue_arn)

        def state():
            done = self.run_setup("status", "--cluster", name, "--output", "json")
            return {c["check"]: c for c in json.loads(done.stdout)["checks"]}["alarms"]

        deadline = time.time() + 30
        while "no-events ALARM" not in state()["detail"] and time.time() < deadline:
            time.sleep(0.5)
        self.assertIn("no-events ALARM", state()["detail"])
        self.emu.wait_for_delivery(f"das-setup-{name}")
        self.emu.admin("inject", {"stream": f"aws-rds-das-{cluster['DbClusterResourceId']}",
                                  "events": [pg("q-1", "READ", "SELECT", "select 1")]})
        deadline = time.time() + 60
        while "no-events OK" not in state()["detail"] and time.time() < deadline:
            time.sleep(0.5)
        self.assertIn("no-events OK", state()["detail"])
        changes = [(m["AlarmName"], m["NewStateValue"]) for m in
                   (json.loads(b["Message"]) for b in self.drain(sqs, url, 3)) if "AlarmName" in m]
        self.assertIn((f"das-setup-{name}-no-events", "OK"), changes)
        done = self.run_setup("down", "--cluster", name, "--yes")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(leftovers(self.emu, name), [])

    def test_security_hub_not_enabled_is_refused_before_any_change(self):
        self.emu.cluster("no-hub", engine="aurora-postgresql")
        before = len(self.emu.calls())
        done = self.run_setup("up", "--cluster", "no-hub", "--lambda-zip", self.zip, "--alerts", "default",
                              "--security-hub", "--yes")
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("Security Hub is not enabled", done.stderr)
        calls = [c for c in self.emu.calls()[before:] if c["app"] == "das-setup"]
        self.assertEqual([c["op"] for c in calls if c["mutating"]], [], "refused before any change")
        done = self.run_setup("up", "--cluster", "no-hub", "--lambda-zip", self.zip, "--security-hub", "--yes")
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("--security-hub needs rules", done.stderr)

    def test_bad_rules_are_refused_before_any_change(self):
        self.emu.cluster("refused", engine="aurora-postgresql")
        rules = os.path.join(self.tmp.name, "bad.toml")
        with open(rules, "w") as f:
            f.write('[[rule]]\nname = "drops"\nseverity = "urgent"\ncategory = "DDL"\n')
        before = len(self.emu.calls())
        done = self.run_setup("up", "--cluster", "refused", "--lambda-zip", self.zip, "--alert-rules", rules,
                              "--yes")
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn('rule "drops": severity', done.stderr)
        self.assertEqual([c for c in self.emu.calls()[before:] if c["app"] == "das-setup"], [],
                         "refused before any AWS call")


if __name__ == "__main__":
    unittest.main()
