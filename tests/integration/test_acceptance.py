"""scripts/aws-acceptance, the acceptance run for real accounts (issue 16 F), kept from rotting:
its refusals, its plan-only mode (what CI may run), and its whole run against the emulator
instead of an account."""

import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import EmulatorCase  # noqa: E402

SCRIPT = os.path.join(HERE, "..", "..", "scripts", "aws-acceptance")


class AcceptanceScriptTest(EmulatorCase):
    # A trickle of events, so the run has activity to find without a database connection.
    EMULATOR_OPTIONS = ("--activity-stream-delay", "1", "--trickle", "3", "--heartbeat", "2",
                        "--buffer-interval-cap", "1")

    def script(self, *args, enabled=False):
        args = (*args, "--arch", "x86_64", "--lambda-zip", self.zip)
        env = {**self.emu.env(), "DAS_SETUP_BIN": self.setup_bin}
        env.pop("DAS_SETUP_ACCEPTANCE", None)
        if enabled:
            env["DAS_SETUP_ACCEPTANCE"] = "1"
        return subprocess.run([sys.executable, SCRIPT, *args], env=env, capture_output=True, text=True,
                              timeout=600, stdin=subprocess.DEVNULL)

    def test_it_refuses_unless_enabled_and_named(self):
        done = self.script("--cluster", "acc")
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("DAS_SETUP_ACCEPTANCE=1", done.stderr)
        done = self.script(enabled=True)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("--cluster or --instance", done.stderr)
        self.assertEqual([c for c in self.emu.calls(app="das-setup") if c["mutating"]], [])

    def test_plan_only_changes_nothing_and_reports_the_plan(self):
        self.emu.cluster("acc-plan")
        report = os.path.join(self.tmp.name, "plan.json")
        before = len(self.emu.calls(app="das-setup"))
        done = self.script("--plan-only", "--cluster", "acc-plan", "--report", report)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("PASS  plan", done.stdout)
        with open(report) as f:
            doc = json.load(f)
        self.assertTrue(doc["planOnly"] and doc["passed"])
        self.assertIn("12 change(s) planned", doc["steps"][0]["detail"])
        self.assertEqual([c for c in self.emu.calls(app="das-setup")[before:] if c["mutating"]], [])

    def test_the_whole_run_against_the_emulator(self):
        self.emu.cluster("acc-run")
        report = os.path.join(self.tmp.name, "run.json")
        done = self.script("--cluster", "acc-run", "--activity-wait", "2", "--poll", "2",
                           "--stored-timeout", "120", "--report", report, enabled=True)
        with open(report) as f:
            doc = json.load(f)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr[-3000:])
        self.assertEqual([s["step"] for s in doc["steps"]], ["plan", "up", "activity", "status", "tail", "down"])
        self.assertTrue(all(s["passed"] for s in doc["steps"]), doc)
        self.assertGreater(doc["upMutatingCalls"], 10)
        self.assertGreater(doc["estimatedCostUsd"], 0)
        from common import leftovers
        self.assertEqual(leftovers(self.emu, "acc-run"), [])


if __name__ == "__main__":
    unittest.main()
