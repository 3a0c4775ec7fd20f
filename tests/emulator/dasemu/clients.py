"""boto3 clients of the emulator's own components, talking to it over HTTP like any client."""

import threading

import boto3


class Clients:
    """One client per (service, region), created on first use; safe across threads."""

    def __init__(self, endpoint, credentials=("dasemu", "dasemu", None)):
        """`credentials`: (access key id, secret, session token); by default the emulator's own
        root key (dasemu/iam_enforcement.py)."""
        self.endpoint = endpoint
        self.credentials = credentials
        self._clients = {}
        self._lock = threading.Lock()

    def __call__(self, service, region):
        with self._lock:
            if (service, region) not in self._clients:
                self._clients[(service, region)] = boto3.client(
                    service, endpoint_url=self.endpoint, region_name=region,
                    aws_access_key_id=self.credentials[0], aws_secret_access_key=self.credentials[1],
                    aws_session_token=self.credentials[2],
                )
            return self._clients[(service, region)]
