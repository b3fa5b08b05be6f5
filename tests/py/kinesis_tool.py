"""Kinesis helpers for the end-to-end tests (boto3 against kinesalite).

usage:
  kinesis_tool.py ENDPOINT create STREAM SHARDS [MAX_RECORD_KIB]
        MAX_RECORD_KIB: the stream's largest record (Kinesis: 1024 by default, up to 10240)
  kinesis_tool.py ENDPOINT put-large STREAM SIZE COUNT
        puts COUNT records of SIZE bytes each (record i: byte i+1 repeated after a header
        "big-<i>:"); prints JSON {"records": [[sha256, size, sequence], ...]}
  kinesis_tool.py ENDPOINT put STREAM PREFIX KEYS COUNT [--aggregate-every N]
        puts COUNT records "PREFIX-<key>-<i>" over KEYS partition keys; prints JSON
        {"records": [[data, key, sequence], ...]} (every record acknowledged by Kinesis)
  kinesis_tool.py ENDPOINT produce STREAM PREFIX KEYS SECONDS OUTFILE [--aggregate] [--stop-file F] [--json]
        puts records for SECONDS (or until file F exists), appending each acknowledged user
        record to OUTFILE as a JSON line [data, key, sequence, shard]; --aggregate: every other
        batch is 10 KPL aggregates of 5 user records; --json: each record is {"r": name, "k": key}
  kinesis_tool.py ENDPOINT split STREAM SHARD
  kinesis_tool.py ENDPOINT merge STREAM SHARD ADJACENT
  kinesis_tool.py ENDPOINT shards STREAM   -> JSON list of open shard ids (hash-key order)
  kinesis_tool.py ENDPOINT consumers STREAM -> JSON list of [name, ARN, status] of its consumers
"""
import json
import os
import sys
import time

import boto3


def client(endpoint):
    return boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def wait_active(k, stream):
    for _ in range(200):
        if k.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
            return
        time.sleep(0.05)
    raise SystemExit("stream did not become ACTIVE")


def open_shards(k, stream):
    shards = k.list_shards(StreamName=stream)["Shards"]
    live = [s for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
    live.sort(key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]))
    return live


def put_batch(k, stream, entries):
    """entries: [(data_bytes, key)] -> [(data, key, seq, shard)] all acknowledged."""
    done = []
    pending = entries
    while pending:
        r = k.put_records(StreamName=stream, Records=[{"Data": d, "PartitionKey": key} for d, key in pending])
        retry = []
        for (d, key), res in zip(pending, r["Records"]):
            if "SequenceNumber" in res:
                done.append((d, key, res["SequenceNumber"], res["ShardId"]))
            else:
                retry.append((d, key))
        pending = retry
    return done


def _varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(num, payload):
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def aggregate(group):
    """KPL AggregatedRecord: magic, protobuf, MD5 of the protobuf."""
    import hashlib

    keys = []
    for _, key in group:
        if key not in keys:
            keys.append(key)
    body = b"".join(_field(1, key.encode()) for key in keys)
    for data, key in group:
        record = _varint(1 << 3) + _varint(keys.index(key)) + _field(3, data.encode())
        body += _field(3, record)
    return b"\xf3\x89\x9a\xc2" + body + hashlib.md5(body).digest()


def main():
    endpoint, cmd, *a = sys.argv[1:]
    k = client(endpoint)
    if cmd == "create":
        extra = {"MaxRecordSizeInKiB": int(a[2])} if len(a) > 2 else {}
        k.create_stream(StreamName=a[0], ShardCount=int(a[1]), **extra)
        wait_active(k, a[0])
    elif cmd == "put-large":
        import hashlib
        stream, size, count = a[0], int(a[1]), int(a[2])
        out = []
        for i in range(count):
            head = f"big-{i}:".encode()
            data = head + bytes([(i + 1) % 256]) * (size - len(head))
            r = k.put_record(StreamName=stream, Data=data, PartitionKey=f"big{i}")
            out.append([hashlib.sha256(data).hexdigest(), len(data), r["SequenceNumber"]])
        print(json.dumps({"records": out}))
    elif cmd == "put":
        stream, prefix, keys, count = a[0], a[1], int(a[2]), int(a[3])
        entries = [(f"{prefix}-k{i % keys}-{i}".encode(), f"k{i % keys}") for i in range(count)]
        out = []
        for i in range(0, len(entries), 500):
            out += put_batch(k, stream, entries[i:i + 500])
        print(json.dumps({"records": [[d.decode(), key, seq, shard] for d, key, seq, shard in out]}))
    elif cmd == "put-mixed":
        # Every other Kinesis record is a KPL aggregate of PER_AGG user records, built here
        # from the documented format (independent of firehosed's decoder).
        stream, prefix, keys, count, per_agg = a[0], a[1], int(a[2]), int(a[3]), int(a[4])
        users = [(f"{prefix}-k{i % keys}-{i}", f"k{i % keys}") for i in range(count)]
        entries, i, plain = [], 0, True
        while i < len(users):
            if plain:
                d, key = users[i]
                entries.append((d.encode(), key))
                i += 1
            else:
                group = users[i:i + per_agg]
                entries.append((aggregate(group), group[0][1]))
                i += len(group)
            plain = not plain
        for j in range(0, len(entries), 100):
            put_batch(k, stream, entries[j:j + 100])
        print(json.dumps({"users": [d for d, _ in users]}))
    elif cmd == "produce":
        stream, prefix, keys, seconds, outfile = a[0], a[1], int(a[2]), float(a[3]), a[4]
        aggregated = "--aggregate" in a[5:]
        as_json = "--json" in a[5:]
        stop = a[a.index("--stop-file") + 1] if "--stop-file" in a[5:] else None
        pause = float(a[a.index("--pause-ms") + 1]) / 1000 if "--pause-ms" in a[5:] else 0.02
        deadline = time.time() + seconds
        i, batch = 0, 0
        with open(outfile, "a") as f:
            while time.time() < deadline and not (stop and os.path.exists(stop)):
                users = [(f"{prefix}-k{(i + j) % keys}-{i + j}", f"k{(i + j) % keys}") for j in range(50)]
                if as_json:
                    # Each record a JSON object: {"r": the record's name, "k": its key}
                    users = [(json.dumps({"r": d, "k": key}), key) for d, key in users]
                if aggregated and batch % 2 == 1:
                    groups = [users[g:g + 5] for g in range(0, 50, 5)]
                    entries = [(aggregate(g), g[0][1]) for g in groups]
                    group_of = {agg: g for (agg, _), g in zip(entries, groups)}
                    for agg, _, seq, shard in put_batch(k, stream, entries):
                        for d, key in group_of[agg]:
                            f.write(json.dumps([d, key, seq, shard]) + "\n")
                else:
                    entries = [(d.encode(), key) for d, key in users]
                    for d, key, seq, shard in put_batch(k, stream, entries):
                        f.write(json.dumps([d.decode(), key, seq, shard]) + "\n")
                f.flush()
                i += 50
                batch += 1
                time.sleep(pause)
    elif cmd == "split":
        stream, shard = a
        s = next(x for x in k.list_shards(StreamName=stream)["Shards"] if x["ShardId"] == shard)
        lo, hi = int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])
        k.split_shard(StreamName=stream, ShardToSplit=shard, NewStartingHashKey=str((lo + hi) // 2 + 1))
        wait_active(k, stream)
    elif cmd == "merge":
        stream, shard, adjacent = a
        k.merge_shards(StreamName=stream, ShardToMerge=shard, AdjacentShardToMerge=adjacent)
        wait_active(k, stream)
    elif cmd == "consumers":
        arn = k.describe_stream_summary(StreamName=a[0])["StreamDescriptionSummary"]["StreamARN"]
        cs = k.list_stream_consumers(StreamARN=arn)["Consumers"]
        print(json.dumps([[c["ConsumerName"], c["ConsumerARN"], c["ConsumerStatus"]] for c in cs]))
    elif cmd == "shards":
        print(json.dumps([s["ShardId"] for s in open_shards(k, a[0])]))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
