"""The local AWS for das-setup: moto's server plus what moto lacks (dasemu/), in one process.
A test double of AWS, documented as one (README.md beside this file).

  tests/emulator/python tests/emulator/server.py [-H 127.0.0.1] [-p 4566]
      [--activity-stream-delay 3] [--trickle 3] [--heartbeat 5] [--buffer-interval-cap 2]
      [--log-dir DIR] [--enforce-iam] [--iam-propagation-delay 0]

Use tests/emulator/start and tests/emulator/stop rather than running this directly.
"""

import argparse
import os
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dasemu import (  # noqa: E402
    activity_streams, athena_engine, athena_support, eventual, iam_enforcement, iam_propagation, lambda_invoke, moto_fixes, resharding,
)
from dasemu.admin import Admin  # noqa: E402
from dasemu.cloudwatch_rpc import Alarms, CloudWatchRpc  # noqa: E402
from dasemu.firehose_runner import FirehoseRunner  # noqa: E402
from dasemu.producer import Producer  # noqa: E402


def env_float(name, default):
    return float(os.environ.get(name, default))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    parser.add_argument("--activity-stream-delay", type=float,
                        default=env_float("DASEMU_ACTIVITY_STREAM_DELAY", 3),
                        help="seconds an activity stream spends starting or stopping (default 3)")
    parser.add_argument("--trickle", type=float, default=env_float("DASEMU_TRICKLE", 3),
                        help="activity events per second per started stream (default 3; 0 for none)")
    parser.add_argument("--heartbeat", type=float, default=env_float("DASEMU_HEARTBEAT", 5),
                        help="seconds between heartbeat records (default 5)")
    parser.add_argument("--buffer-interval-cap", type=float, default=env_float("DASEMU_BUFFER_INTERVAL_CAP", 2),
                        help="cap on Firehose buffering intervals, seconds (default 2)")
    parser.add_argument("--log-dir", default=os.environ.get("DASEMU_LOG_DIR") or tempfile.mkdtemp(prefix="dasemu-"),
                        help="where function logs go")
    parser.add_argument("--enforce-iam", action="store_true",
                        default=os.environ.get("DASEMU_ENFORCE_IAM") == "1",
                        help="check every request not signed by a root key (testing, dasemu) against "
                             "its IAM policies (dasemu/iam_enforcement.py)")
    parser.add_argument("--alias-lag", type=float, default=env_float("DASEMU_ALIAS_LAG", 0),
                        help="seconds a new KMS alias stays invisible to DescribeKey and ListAliases "
                             "(dasemu/eventual.py; default 0)")
    parser.add_argument("--iam-propagation-delay", type=float,
                        default=env_float("DASEMU_IAM_PROPAGATION_DELAY", 0),
                        help="seconds a new role cannot be assumed by Lambda or Firehose, answered "
                             "with their documented errors (dasemu/iam_propagation.py; default 0)")
    args = parser.parse_args(argv)
    os.makedirs(args.log_dir, exist_ok=True)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    endpoint = f"http://127.0.0.1:{args.port}"

    producer = Producer(endpoint, activity_streams.status_of, args.trickle, args.heartbeat)
    activity_streams.install(args.activity_stream_delay, producer)
    moto_fixes.install()
    athena_support.install()
    athena_engine.install()
    iam_enforcement.install(args.enforce_iam)
    iam_propagation.install(args.iam_propagation_delay)
    eventual.install(args.alias_lag)
    resharding.install()
    runner = FirehoseRunner(endpoint, args.log_dir, args.buffer_interval_cap)
    lambda_invoke.install(runner)

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    app = Admin(CloudWatchRpc(DomainDispatcherApplication(create_backend_app)), producer, runner)
    producer.start()
    runner.start()
    Alarms().start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main(sys.argv[1:])
