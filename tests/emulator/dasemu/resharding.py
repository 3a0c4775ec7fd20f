"""Resharding on demand, and the closed-shard contract of GetRecords, as Kinesis documents them.

RDS scales an activity stream's Kinesis stream itself ("Aurora scales the Kinesis stream if
necessary", Aurora User Guide, "Monitoring database activity streams"), so a reader must follow
a reshard. Kinesis's contract (Kinesis Developer Guide, "Resharding a stream"; GetRecords API
reference): the parent shard is closed and keeps its records until they expire; new records go
to the child shards; when a reader reaches the end of a closed shard, GetRecords answers no
`NextShardIterator` and names the `ChildShards`.

moto's SplitShard moves the parent's records into the children, keeps answering a
`NextShardIterator` for a closed shard, names no child and still routes new records to the
closed parent; this module does as Kinesis does:

  POST /_dasemu/reshard {"stream": NAME or resource id}   splits every open shard in two (admin.py)
"""

from moto.core.responses import ActionResult
from moto.kinesis.models import Shard, Stream, kinesis_backends
from moto.kinesis.responses import KinesisResponse
from moto.kinesis.utils import decompose_shard_iterator


def reshard(account, region, name):
    """Splits each open shard at the middle of its hash range; returns the shard ids now open."""
    stream = kinesis_backends[account][region].streams[name]
    for shard in [s for s in stream.shards.values() if s.is_open]:
        last_id = max(s._shard_id for s in stream.shards.values())
        middle = (shard.starting_hash + shard.ending_hash) // 2
        for i, (start, end) in enumerate(((shard.starting_hash, middle), (middle, shard.ending_hash)), start=1):
            child = Shard(last_id + i, starting_hash=start, ending_hash=end, parent=shard.shard_id)
            stream.shards[child.shard_id] = child
        shard.is_open = False
    return sorted(s.shard_id for s in stream.shards.values() if s.is_open)


def _open_shard_for_key(original):
    def get_shard_for_key(self, partition_key, explicit_hash_key):
        shard = original(self, partition_key, explicit_hash_key)
        if shard is not None and not shard.is_open:
            # moto returns the first shard whose range holds the key: the closed parent.
            for candidate in self.shards.values():
                if candidate.is_open and candidate.starting_hash <= _key(partition_key, explicit_hash_key) < candidate.ending_hash:
                    return candidate
        return shard

    return get_shard_for_key


def _key(partition_key, explicit_hash_key):
    from moto.utilities.utils import md5_hash

    if explicit_hash_key:
        return int(explicit_hash_key)
    return int(md5_hash(partition_key.encode("utf-8")).hexdigest(), 16)


def get_records(self):
    stream_arn = self._get_param("StreamARN")
    iterator = self._get_param("ShardIterator")
    limit = self._get_param("Limit")
    next_iterator, records, millis = self.kinesis_backend.get_records(stream_arn, iterator, limit)
    result = {"NextShardIterator": next_iterator, "Records": [r.to_json() for r in records],
              "MillisBehindLatest": millis}
    name, shard_id, last = decompose_shard_iterator(next_iterator)
    stream = self.kinesis_backend.describe_stream(stream_arn=stream_arn, stream_name=name)
    shard = stream.get_shard(shard_id)
    if not shard.is_open and not any(seq > int(last) for seq in shard.records):
        result["NextShardIterator"] = None
        result["ChildShards"] = [
            {"ShardId": c.shard_id, "ParentShards": [p for p in (c.parent, c.adjacent_parent) if p],
             "HashKeyRange": {"StartingHashKey": str(c.starting_hash), "EndingHashKey": str(c.ending_hash)}}
            for c in stream.shards.values() if shard.shard_id in (c.parent, c.adjacent_parent)]
    return ActionResult(result)


def install():
    Stream.get_shard_for_key = _open_shard_for_key(Stream.get_shard_for_key)
    KinesisResponse.get_records = get_records
