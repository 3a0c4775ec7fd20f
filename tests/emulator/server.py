"""The local AWS for das-setup: moto's server, plus what moto lacks (dasemu/), in one process.

  tests/emulator/python tests/emulator/server.py [-H 127.0.0.1] [-p 5000] [--activity-stream-delay 3]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dasemu import activity_streams  # noqa: E402


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument(
        "--activity-stream-delay", type=float,
        default=float(os.environ.get("DASEMU_ACTIVITY_STREAM_DELAY", activity_streams.DELAY_SECONDS)),
        help="seconds an activity stream spends starting or stopping (default 3)",
    )
    args = parser.parse_args(argv)
    activity_streams.install(args.activity_stream_delay)
    from moto.server import main as moto_main

    moto_main(["-H", args.host, "-p", str(args.port)])


if __name__ == "__main__":
    main(sys.argv[1:])
