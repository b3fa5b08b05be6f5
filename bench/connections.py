"""Holds many idle and slow connections against firehosed while timing valid calls.

usage: connections.py URL PID [--idle 5000] [--partial 5000] [--bodies 1000] [--seconds 70]

Opens IDLE connections that send nothing, PARTIAL that send half a request head, and BODIES that
announce an 8 MiB body and send 7 bytes of it; then, for SECONDS, sends a valid plain-ingest
request every 0.2 s on a fresh connection and times it, samples the daemon's RSS and virtual
size, and notes when the server closes each held connection. Prints one JSON object.
"""
import argparse
import asyncio
import json
import resource
import time

parser = argparse.ArgumentParser()
parser.add_argument("url")
parser.add_argument("pid", type=int)
parser.add_argument("--idle", type=int, default=5000)
parser.add_argument("--partial", type=int, default=5000)
parser.add_argument("--bodies", type=int, default=1000)
parser.add_argument("--seconds", type=float, default=70)
args = parser.parse_args()
host, port = args.url.removeprefix("http://").rstrip("/").split(":")
port = int(port)

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def status_kib(field):
    with open(f"/proc/{args.pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


PARTIAL = b"POST /v1/streams/load/records HTTP/1.1\r\nhost: x\r\ncontent-le"
BODY = b"POST /v1/streams/load/records HTTP/1.1\r\nhost: x\r\ncontent-length: 8000000\r\n\r\n{\"a\":1}"


async def hold(kind, sent, closed, failed):
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        failed[kind] = failed.get(kind, 0) + 1
        return None
    if sent:
        writer.write(sent)
    start = time.monotonic()

    async def watch():
        try:
            answer = await reader.read(4096)
            while await reader.read(4096):
                pass
        except OSError:
            answer = b""
        status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/1.1 ") else "none"
        closed.append((kind, time.monotonic() - start, status))

    return writer, asyncio.create_task(watch())


async def valid_call():
    body = b'{"valid":1}\n'
    start = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        writer.write(b"POST /v1/streams/load/records HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
                     + f"content-length: {len(body)}\r\n\r\n".encode() + body)
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    except (OSError, asyncio.TimeoutError):
        return None, "error"
    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/1.1 ") else "none"
    return time.monotonic() - start, status


async def main():
    closed, failed, held = [], {}, []
    rss_start = status_kib("VmRSS:")
    t0 = time.monotonic()
    for kind, n, sent in (("idle", args.idle, b""), ("partial", args.partial, PARTIAL),
                          ("body", args.bodies, BODY)):
        for i in range(0, n, 500):
            batch = await asyncio.gather(*(hold(kind, sent, closed, failed)
                                           for _ in range(min(500, n - i))))
            held.extend(h for h in batch if h)
    opened_s = time.monotonic() - t0
    latencies, statuses, rss, vsz = [], {}, [], []
    while time.monotonic() - t0 < args.seconds:
        latency, status = await valid_call()
        statuses[status] = statuses.get(status, 0) + 1
        if latency is not None and status == "200":
            latencies.append(latency * 1000)
        rss.append(status_kib("VmRSS:"))
        vsz.append(status_kib("VmSize:"))
        await asyncio.sleep(0.2)
    still_open = len(held) - len(closed)
    for writer, task in held:
        writer.close()
        task.cancel()
    await asyncio.sleep(5)
    latencies.sort()
    pct = lambda p: round(latencies[min(len(latencies) - 1, int(len(latencies) * p))], 1) if latencies else None
    by = {}
    for kind, after, status in closed:
        entry = by.setdefault(kind, {"closed": 0, "answers": {}, "last_closed_after_s": 0})
        entry["closed"] += 1
        entry["answers"][status] = entry["answers"].get(status, 0) + 1
        entry["last_closed_after_s"] = round(max(entry["last_closed_after_s"], after), 1)
    print(json.dumps({
        "held": len(held), "connect_failures": failed, "opened_in_s": round(opened_s, 1),
        "closed_by_server": by, "still_open_at_end": still_open,
        "valid_calls": statuses, "valid_p50_ms": pct(0.5), "valid_p99_ms": pct(0.99),
        "valid_max_ms": round(latencies[-1], 1) if latencies else None,
        "rss_mib": {"before": rss_start // 1024, "peak_while_held": max(rss) // 1024,
                    "after_close": status_kib("VmRSS:") // 1024},
        "peak_virtual_mib": max(vsz) // 1024,
    }))


asyncio.run(main())
