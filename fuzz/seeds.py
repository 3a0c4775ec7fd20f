"""Seed corpora for the fuzz targets, from the committed Encryption SDK fixtures
(processor/testdata/esdk, made by the Python SDK): python3 fuzz/seeds.py

  esdk_decrypt:    wrapping key (32 bytes) + message
  parsers:         envelopes, gzip'd records, records
  process_record:  envelopes whose "key" is the wrapping key itself (the fuzz KMS returns it)
Also writes fuzz/good-record.json, the good record process_record puts around its input.
"""

import base64
import glob
import gzip
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "processor", "testdata", "esdk")


def write(target, name, data):
    path = os.path.join(HERE, "corpus", target)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, name), "wb") as f:
        f.write(data)


def main():
    smallest = None
    for path in sorted(glob.glob(os.path.join(FIXTURES, "*.json"))):
        fixture = json.load(open(path))
        name = fixture["name"]
        key = base64.b64decode(fixture["wrapping_key"])
        plaintext = base64.b64decode(fixture["plaintext"])
        write("parsers", name + "-gzip", plaintext)
        if fixture["record"]:
            write("parsers", name + "-record", fixture["record"].encode())
        if "envelope" not in fixture:  # a bare message (not DAS-shaped)
            write("esdk_decrypt", name, key + base64.b64decode(fixture["message"]))
            continue
        envelope = json.loads(fixture["envelope"])
        message = base64.b64decode(envelope["databaseActivityEvents"])
        write("esdk_decrypt", name, key + message)
        write("parsers", name + "-envelope", fixture["envelope"].encode())
        envelope["key"] = base64.b64encode(key).decode()
        data = json.dumps(envelope).encode()
        write("process_record", name, data)
        if name == "das-empty-event-list":
            smallest = data
    with open(os.path.join(HERE, "good-record.json"), "wb") as f:
        f.write(smallest)


if __name__ == "__main__":
    main()
