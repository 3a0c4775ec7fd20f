"""From a fresh clone to the first `das-setup up` done against the emulator, with default flags.

Clones this repository's HEAD into a temporary directory (its own, empty `target/`; the cargo
registry cache is the machine's), then times each step a new user takes: `cargo build -p
das-setup`, and `das-setup up --cluster first --yes` against a fresh emulator (which adds the
Lambda's Rust target if it is missing and builds the processor). Prints each step's time and
the deployed function's CodeSha256, and, with --compare ZIP, whether it equals that zip's (the
build is reproducible: another directory, the same bytes).

  scripts/bench-first-up [--compare das-processor-arm64.zip] [--arch arm64]
"""

import argparse
import base64
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "emulator"))
from harness import Emulator  # noqa: E402


def timed(label, argv, **kwargs):
    start = time.monotonic()
    subprocess.run(argv, check=True, **kwargs)
    took = time.monotonic() - start
    print(f"{label:<58} {took:>8.1f} s", flush=True)
    return took


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--compare", help="a zip to compare the deployed function's CodeSha256 with")
    parser.add_argument("--arch", help="pass --arch (default: up's own default)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="das-setup-first-up-")
    clone = os.path.join(work, "das-setup")
    try:
        print(f"# fresh clone to first up; {platform.machine()}, {os.cpu_count()} CPUs, "
              f"{time.strftime('%Y-%m-%d')}", flush=True)
        total = timed("git clone", ["git", "clone", "-q", ROOT, clone])
        total += timed("cargo build -p das-setup", ["cargo", "build", "-q", "--locked", "-p", "das-setup"],
                       cwd=clone)
        emu = Emulator.start("--activity-stream-delay", "3", "--trickle", "0")
        try:
            emu.cluster("first")
            extra = ["--arch", args.arch] if args.arch else []
            total += timed("das-setup up --cluster first --yes" + (" " + " ".join(extra) if extra else ""),
                           [os.path.join(clone, "target", "debug", "das-setup"), "up", "--cluster", "first",
                            "--yes", *extra], env=emu.env(), cwd=work, stdout=subprocess.DEVNULL)
            deployed = emu.client("lambda").get_function_configuration(FunctionName="das-setup-first")
        finally:
            emu.stop()
        print(f"{'total':<58} {total:>8.1f} s")
        print(f"deployed: {deployed['Architectures'][0]}, CodeSha256 {deployed['CodeSha256']}, "
              f"{deployed['CodeSize']} bytes")
        if args.compare:
            with open(args.compare, "rb") as f:
                theirs = base64.b64encode(hashlib.sha256(f.read()).digest()).decode()
            same = theirs == deployed["CodeSha256"]
            print(f"{args.compare}: CodeSha256 {theirs}: {'the same bytes' if same else 'DIFFERENT'}")
            return 0 if same else 1
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
