"""S3 and decoding helpers for the end-to-end tests: an S3 client (boto3) and decoders that are
independent of firehosed's own code (gzip, zipfile, cramjam).

usage:
  s3tool.py ENDPOINT create-bucket BUCKET
  s3tool.py ENDPOINT list BUCKET            -> JSON [{"key":..., "size":...}, ...]
  s3tool.py ENDPOINT get BUCKET KEY         -> raw object bytes on stdout
  s3tool.py ENDPOINT head BUCKET KEY        -> JSON {"ServerSideEncryption":..., "SSEKMSKeyId":...}
  s3tool.py ENDPOINT dump-lines BUCKET FMT  -> JSON {key: [decoded lines]}
  s3tool.py ENDPOINT delete-bucket-force BUCKET
  s3tool.py - decode FORMAT < data          -> decoded bytes on stdout
        FORMAT: UNCOMPRESSED | GZIP | ZIP | Snappy | HADOOP_SNAPPY
"""
import gzip
import io
import json
import struct
import sys
import zipfile


def client(endpoint):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}),
    )


def hadoop_snappy(data):
    import cramjam

    out = bytearray()
    pos = 0
    while pos < len(data):
        (raw_len,) = struct.unpack(">I", data[pos : pos + 4])
        pos += 4
        got = 0
        while got < raw_len:
            (clen,) = struct.unpack(">I", data[pos : pos + 4])
            pos += 4
            block = bytes(cramjam.snappy.decompress_raw(data[pos : pos + clen]))
            pos += clen
            got += len(block)
            out += block
        if got != raw_len:
            raise ValueError(f"block length {got} != {raw_len}")
    return bytes(out)


def decode(fmt, data):
    fmt = fmt.upper()
    if fmt == "UNCOMPRESSED":
        return data
    if fmt == "GZIP":
        return gzip.decompress(data)
    if fmt == "ZIP":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()
            if len(names) != 1:
                raise ValueError(f"expected one entry, got {names}")
            if z.testzip() is not None:
                raise ValueError("bad CRC")
            sys.stderr.write(f"zip-entry:{names[0]}\n")
            return z.read(names[0])
    if fmt == "SNAPPY":
        import cramjam

        if not data.startswith(b"\xff\x06\x00\x00sNaPpY"):
            raise ValueError("missing the snappy framing stream identifier")
        return bytes(cramjam.snappy.decompress(data))
    if fmt == "HADOOP_SNAPPY":
        return hadoop_snappy(data)
    raise ValueError(f"unknown format {fmt}")


def main():
    endpoint, cmd, *args = sys.argv[1:]
    if cmd == "decode":
        sys.stdout.buffer.write(decode(args[0], sys.stdin.buffer.read()))
        return
    s3 = client(endpoint)
    if cmd == "create-bucket":
        s3.create_bucket(Bucket=args[0])
    elif cmd == "list":
        out = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args[0]):
            for o in page.get("Contents", []):
                out.append({"key": o["Key"], "size": o["Size"], "etag": o.get("ETag", "")})
        print(json.dumps(out))
    elif cmd == "dump-lines":
        bucket, fmt = args
        out = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
                out[o["Key"]] = decode(fmt, body).decode().splitlines()
        print(json.dumps(out))
    elif cmd == "delete-bucket-force":
        bucket = args[0]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=o["Key"])
        s3.delete_bucket(Bucket=bucket)
    elif cmd == "download":
        # Every object of the bucket into the folder, under its key.
        import os
        bucket, folder = args
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
                path = os.path.join(folder, o["Key"])
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
    elif cmd == "get":
        body = s3.get_object(Bucket=args[0], Key=args[1])["Body"].read()
        sys.stdout.buffer.write(body)
    elif cmd == "head":
        h = s3.head_object(Bucket=args[0], Key=args[1])
        print(json.dumps({k: h.get(k) for k in ("ServerSideEncryption", "SSEKMSKeyId")}))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
