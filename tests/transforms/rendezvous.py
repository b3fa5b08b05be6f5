"""Raw-protocol transform for `transform.concurrency`: every invocation marks itself active in
the directory argv[1], and the first ones wait (up to 10 s) until argv[2] invocations are
active at once, so a daemon that runs fewer at a time shows it. Each reports on stderr how many
were active when it started; then it sleeps a random 0-150 ms, so batches finish out of order.
Record "n": n % 7 == 3 -> Dropped, n % 7 == 5 -> ProcessingFailed, else Ok with "v<n>"."""
import base64
import json
import os
import random
import sys
import time

rendezvous, wanted = sys.argv[1], int(sys.argv[2])
mine = os.path.join(rendezvous, f"active-{os.getpid()}")
released = os.path.join(rendezvous, "released")


def active():
    return sum(1 for n in os.listdir(rendezvous) if n.startswith("active-"))


def answer(r):
    n = int(base64.b64decode(r["data"]).decode().split(":")[0])
    if n % 7 == 3:
        return {"recordId": r["recordId"], "result": "Dropped"}
    if n % 7 == 5:
        return {"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]}
    data = base64.b64encode(f"v{n}\n".encode()).decode()
    return {"recordId": r["recordId"], "result": "Ok", "data": data}


for line in sys.stdin.buffer:
    event = json.loads(line)
    open(mine, "w").close()
    deadline = time.monotonic() + 10
    while not os.path.exists(released) and time.monotonic() < deadline:
        if active() >= wanted:
            open(released, "w").close()
            break
        time.sleep(0.01)
    print(f"active_at_start={active()}", file=sys.stderr, flush=True)
    time.sleep(random.uniform(0, 0.15))
    out = {"records": [answer(r) for r in event["records"]]}
    os.remove(mine)
    sys.stdout.write(json.dumps(out, separators=(",", ":")) + "\n")
    sys.stdout.flush()
