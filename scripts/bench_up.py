"""`das-setup up` from nothing, timed against the activity stream's start delay D.

For each D, a fresh emulator started with `--activity-stream-delay D`, then for each run a new
Aurora PostgreSQL cluster and `das-setup up --yes` from nothing (key, stream, bucket, roles,
log groups, function, delivery stream). Prints wall time, the time beyond D (what everything
else costs, since it happens while the stream starts), and the mutating calls made.

  scripts/bench-up [--delays 3,10] [--runs 3]
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "emulator"))
from harness import Emulator, zip_bootstrap  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--delays", default="3,10")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    setup = os.path.join(ROOT, "target", "debug", "das-setup")
    with tempfile.TemporaryDirectory() as tmp:
        stripped = os.path.join(tmp, "das-processor")
        subprocess.run(["strip", "-o", stripped, os.path.join(ROOT, "target", "debug", "das-processor")], check=True)
        zip_path = os.path.join(tmp, "processor.zip")
        with open(stripped, "rb") as f, open(zip_path, "wb") as out:
            out.write(zip_bootstrap(f.read()))
        print(f"# das-setup up from nothing; {platform.machine()}, {os.cpu_count()} CPUs, "
              f"{time.strftime('%Y-%m-%d')}")
        print(f"{'D (s)':>6} {'run':>4} {'up (s)':>7} {'beyond D (s)':>13} {'mutating calls':>15}")
        for delay in [float(d) for d in args.delays.split(",")]:
            emu = Emulator.start("--activity-stream-delay", str(delay), "--trickle", "0")
            try:
                beyond = []
                for run in range(args.runs):
                    name = f"bench-{int(delay)}-{run}"
                    emu.cluster(name)
                    before = len(emu.calls(app="das-setup"))
                    start = time.monotonic()
                    subprocess.run([setup, "up", "--cluster", name, "--arch", "x86_64", "--lambda-zip", zip_path,
                                    "--yes"], env=emu.env(), check=True, capture_output=True, timeout=600)
                    took = time.monotonic() - start
                    mutating = sum(1 for c in emu.calls(app="das-setup")[before:] if c["mutating"])
                    beyond.append(took - delay)
                    print(f"{delay:>6.0f} {run + 1:>4} {took:>7.2f} {took - delay:>13.2f} {mutating:>15}")
                print(f"{delay:>6.0f} {'med':>4} {statistics.median(beyond) + delay:>7.2f} "
                      f"{statistics.median(beyond):>13.2f}   target: beyond D <= 15")
            finally:
                emu.stop()


if __name__ == "__main__":
    main()
