"""Lints rendered IAM policy documents with parliament (an independent IAM policy linter).

  tests/emulator/python tests/lint/iam_lint.py --exceptions policies/lint-exceptions.json DIR

Every *.json in DIR is analyzed. A finding listed in the exceptions file (by template file name,
parliament issue and a piece of its detail, each with its justification) is reported as
accepted; any other finding fails the run, and so does an exception that no longer matches
anything (a stale exception hides nothing, but says something untrue).
"""

import argparse
import json
import os
import sys

from parliament import analyze_policy_string


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--exceptions", required=True)
    parser.add_argument("directory")
    args = parser.parse_args(argv)
    with open(args.exceptions) as f:
        exceptions = json.load(f)["exceptions"]
    used = set()
    unexpected = []
    files = sorted(n for n in os.listdir(args.directory) if n.endswith(".json"))
    if not files:
        sys.exit(f"iam_lint: no policies in {args.directory}")
    for name in files:
        with open(os.path.join(args.directory, name)) as f:
            policy = analyze_policy_string(f.read())
        # Rendered files are named <variant>--<template>.json.
        template = name.split("--", 1)[-1]
        for finding in policy.findings:
            match = next((i for i, e in enumerate(exceptions)
                          if e["template"] == template and e["issue"] == finding.issue
                          and e["detail"] in str(finding.detail)), None)
            if match is None:
                unexpected.append(f"{name}: {finding.issue}: {finding.detail}")
            else:
                used.add(match)
                print(f"accepted {name}: {finding.issue} ({exceptions[match]['why']})")
        print(f"linted {name}: {len(policy.findings)} finding(s)")
    stale = [e for i, e in enumerate(exceptions) if i not in used]
    for e in stale:
        unexpected.append(f"stale exception for {e['template']} {e['issue']}: nothing matches it any more")
    for line in unexpected:
        print("FINDING " + line)
    sys.exit(1 if unexpected else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
