"""`das-setup report` (issue 19 item 4): known events in through the real pipeline, exact figures
out (`--output json`), and the HTML page rendered by an independent browser, headless Chromium
(Debian's `chromium`): it must draw every chart, from the page alone, with the network out of
reach.

The page is checked twice: Chromium's DOM after loading it (every bar the figures call for, no
element fetching anything), and a screenshot, whose pixels must hold each category's colour and
the rankings' colour: the charts were painted, not just present in the markup.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, HERE)
from common import EmulatorCase  # noqa: E402
import test_query  # noqa: E402  (its events; not `from`: its test class would run here too)

EVENTS = test_query.EVENTS

CLUSTER = "reported"
ACCOUNT = "123456789012"
BUCKET = f"das-setup-{CLUSTER}-{ACCOUNT}-eu-west-1"
# report.rs's colours: each category's, and the rankings'.
COLOURS = {"DDL": "#d62728", "DML": "#ff7f0e", "DQL": "#1f77b4", "DCL": "#9467bd", "AUTH_FAILURE": "#e377c2"}
RANKING = "#4c78a8"


def chromium():
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise AssertionError("the report test renders the page in headless Chromium: apt-get install chromium "
                             "(.ci/run installs it)")
    return found


def render(page, *mode):
    """Chromium, headless, on the page, with every host unresolvable (nothing can be fetched)."""
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1200,3200",
         *mode, f"file://{page}"],
        capture_output=True, text=True, timeout=120)
    return done


def rgb(hex_colour):
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


class ReportTest(EmulatorCase):
    def test_known_events_give_exact_figures_and_a_page_chromium_draws(self):
        self.deploy_and_store(CLUSTER, BUCKET, EVENTS)

        page = os.path.join(self.tmp.name, "report.html")
        done = self.run_setup("report", "--cluster", CLUSTER, "--since", "24h", "--html", page, "--output", "json")
        self.assertEqual(done.returncode, 0, done.stderr)
        doc = json.loads(done.stdout)
        self.assertEqual(doc["events"], 8)
        self.assertEqual(doc["byCategory"], {"AUTH_FAILURE": 2, "DCL": 1, "DDL": 2, "DML": 1, "DQL": 2})
        self.assertEqual(doc["topUsers"], [{"name": "alice", "events": 3}, {"name": "bob", "events": 3},
                                           {"name": "mallory", "events": 2}])
        self.assertEqual(doc["topHosts"], [{"name": "10.0.0.5", "events": 6}, {"name": "203.0.113.10", "events": 1},
                                           {"name": "203.0.113.9", "events": 1}])
        self.assertEqual(doc["topApplications"], [], "the events name no client application")
        self.assertEqual(sorted(r["remotehost"] for r in doc["failedLogins"]), ["203.0.113.10", "203.0.113.9"])
        self.assertIsNone(doc["failedLogins"][0]["clientapplication"], "every column, NULL as null")
        self.assertEqual(sorted(r["commandtext"] for r in doc["ddl"]),
                         ["create table orders (id int)", "drop table old_orders"])
        self.assertEqual([r["commandtext"] for r in doc["privilegeChanges"]], ["grant select on orders to bob"])
        timeline = doc["timeline"]
        self.assertEqual(timeline["unit"], "hour")
        self.assertIn(len(timeline["buckets"]), (24, 25), "every hour of the window, empty ones too")
        summed = {}
        for bucket in timeline["buckets"]:
            for category, n in bucket["counts"].items():
                summed[category] = summed.get(category, 0) + n
        self.assertEqual(summed, doc["byCategory"])
        self.assertIn(doc["health"]["state"], ("healthy", "degraded"), doc["health"])
        self.assertIn("glue-table", [c["check"] for c in doc["health"]["checks"]])

        with open(page) as f:
            html = f.read()
        self.assertNotIn("<script", html)
        self.assertEqual(re.findall(r"(?:src|href)=", html), [], "nothing to fetch")
        self.assertIn("grant select on orders to bob", html)

        # Chromium's DOM: one bar per (hour, category) with events, one per ranked name.
        dom = render(page, "--dump-dom")
        self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
        bars = re.findall(r'<rect class="bar"( data-category="([A-Z_]+)")?', dom.stdout)
        timeline_bars = sum(len(b["counts"]) for b in timeline["buckets"])
        self.assertEqual(len([b for b in bars if b[1]]), timeline_bars)
        self.assertEqual(len([b for b in bars if not b[1]]), 3 + 3, "users and hosts ranked")
        self.assertEqual({b[1] for b in bars if b[1]}, set(doc["byCategory"]))

        # Its screenshot: the charts were painted in their colours.
        shot = os.path.join(self.tmp.name, "report.png")
        done = render(page, f"--screenshot={shot}")
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
        from PIL import Image

        with Image.open(shot) as image:
            colours = {c for _, c in image.convert("RGB").getcolors(maxcolors=1 << 20)}
        for category, colour in COLOURS.items():
            self.assertIn(rgb(colour), colours, f"no {category} bar painted")
        self.assertIn(rgb(RANKING), colours, "no ranking bar painted")

        # For people: the totals and the health on the terminal.
        done = self.run_setup("report", "--cluster", CLUSTER, "--since", "24h")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("8 event(s)", done.stdout)
        self.assertIn("top users: alice (3), bob (3), mallory (2)", done.stdout)
        self.assertIn("failed logins: 2, DDL: 2, privilege changes: 1", done.stdout)
        # A bad window is refused before any AWS call, naming the flag.
        done = self.run_setup("report", "--cluster", CLUSTER, "--since", "yesterday", "--output", "json")
        self.assertEqual(done.returncode, 2)
        self.assertIn("--since", json.loads(done.stdout)["error"])


if __name__ == "__main__":
    unittest.main()
