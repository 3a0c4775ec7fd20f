"""Runs the unittest modules of test folders, several at a time, each in its own Python process.

    tests/emulator/python scripts/unittest_parallel.py [--jobs N] [-p PATTERN] FOLDER [FOLDER ...]

Why: the integration tests spend most of their time waiting on the emulator (Firehose buffering,
activity-stream start, polling), not computing, and every test class starts its own emulator on
its own free port with its own state folder, so modules do not share anything but the machine.
Two modules at a time on the project's 2-core machine keep the suite's result and take about
half its time (BENCHMARKS.md, "CI time").

Each module runs as `python -m unittest discover -v -s FOLDER -p MODULE.py`, from the directory
the runner was started in, as the whole folder would run. A module's output is printed whole when
it ends, so outputs never interleave. The slowest modules start first: the runner reads how long
each took last time from target/test-durations.json (written at the end of every run); a module
it has not seen is assumed to be slow (started early), so a new test never ends a run alone. The
exit status is 1 if any module failed, and the summary names them.
"""

import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def plural(n, word):
    return f"{n} {word}" + ("" if n == 1 else "s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", metavar="FOLDER",
                        help="a folder of test modules, as for `unittest discover -s`")
    parser.add_argument("-p", "--pattern", default="test*.py", help="which modules (default test*.py)")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("DAS_TEST_JOBS", "2")),
                        help="modules at a time (default: DAS_TEST_JOBS, or 2)")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    modules = []
    for folder in args.folders:
        if not os.path.isdir(folder):
            parser.error(f"{folder} is not a folder")
        found = sorted(os.path.join(os.path.relpath(os.path.abspath(folder), ROOT), f[:-3])
                       for f in os.listdir(folder) if fnmatch.fnmatch(f, args.pattern) and f.endswith(".py"))
        if not found:
            parser.error(f"no module in {folder} matches {args.pattern}")
        modules += found

    record = os.path.join(ROOT, "target", "test-durations.json")
    try:
        with open(record) as f:
            last = json.load(f)
    except (OSError, ValueError):
        last = {}
    unseen = max(last.values(), default=0) + 1
    modules.sort(key=lambda m: -last.get(m, unseen))

    lock = threading.Lock()
    took = {}
    spent = []
    failed = []
    ran = []
    started = time.monotonic()

    def run(module):
        begin = time.monotonic()
        folder, name = os.path.split(module)
        done = subprocess.run([sys.executable, "-m", "unittest", "discover", "-v", "-s", os.path.join(ROOT, folder),
                               "-p", name + ".py"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace")
        seconds = time.monotonic() - begin
        with lock:
            spent.append(seconds)
            verdict = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
            if done.returncode == 0:
                took[module] = round(seconds, 1)  # a failure's time says nothing of the next run's
            else:
                failed.append(module)
            ran.extend(int(n) for n in re.findall(r"^Ran (\d+) tests? in ", done.stdout, re.M))
            sys.stderr.write(f"\n---- {module}: {verdict} in {seconds:.0f} s ----\n{done.stdout}")
            sys.stderr.flush()

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(run, modules))

    wall = time.monotonic() - started
    os.makedirs(os.path.dirname(record), exist_ok=True)
    with open(record, "w") as f:
        json.dump({**last, **took}, f, indent=1, sort_keys=True)
    print(f"\n{plural(sum(ran), 'test')} in {plural(len(modules), 'module')} of {' '.join(args.folders)}, "
          f"{args.jobs} at a time: {wall:.0f} s (the modules' own times add up to {sum(spent):.0f} s)",
          file=sys.stderr)
    if failed:
        print("FAILED: " + ", ".join(sorted(failed)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
