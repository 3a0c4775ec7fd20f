"""boto3 clients of the emulator's own components, talking to it over HTTP like any client."""

import threading

import boto3


class Clients:
    """One client per (service, region), created on first use; safe across threads."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self._clients = {}
        self._lock = threading.Lock()

    def __call__(self, service, region):
        with self._lock:
            if (service, region) not in self._clients:
                self._clients[(service, region)] = boto3.client(
                    service, endpoint_url=self.endpoint, region_name=region,
                    aws_access_key_id="dasemu", aws_secret_access_key="dasemu",
                )
            return self._clients[(service, region)]
