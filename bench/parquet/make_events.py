"""Writes N realistic ~1 KiB JSON events (web analytics), one per line, and the Glue schema of
them. usage: make_events.py OUT.ndjson SCHEMA.json [N=100000]"""
import json
import random
import sys
import uuid

out, schema_file = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
rng = random.Random(7)
words = "alpha beta gamma delta search cart checkout product promo blog help login account".split()
agents = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
]
with open(out, "w") as f:
    for i in range(n):
        e = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "ts": "2026-11-22T%02d:%02d:%02d.%03dZ" % (i // 3600 % 24, i // 60 % 60, i % 60, i % 1000),
            "user_id": rng.randrange(1, 10_000_000),
            "session": "s-%012x" % rng.getrandbits(48),
            "action": rng.choice(["view", "click", "purchase", "scroll", "search"]),
            "page": "/%s/%d?utm_source=%s" % (rng.choice(words), rng.randrange(100000), rng.choice(words)),
            "referrer": "https://www.example.com/%s/%s" % (rng.choice(words), rng.choice(words)),
            "user_agent": rng.choice(agents),
            "country": rng.choice(["US", "DE", "FR", "JP", "BR", "IN"]),
            "device": {"os": rng.choice(["iOS", "Android", "Windows", "Linux"]),
                       "version": "%d.%d" % (rng.randrange(20), rng.randrange(10)),
                       "mobile": rng.random() < 0.5},
            "duration_ms": rng.randrange(0, 60_000),
            "amount": round(rng.random() * 500, 2),
            "tags": rng.sample(words, 3),
            "message": " ".join(rng.choice(words) + str(rng.randrange(1000)) for _ in range(50)),
        }
        f.write(json.dumps(e, separators=(",", ":")) + "\n")
columns = [
    ("event_id", "string"), ("ts", "timestamp"), ("user_id", "bigint"), ("session", "string"),
    ("action", "string"), ("page", "string"), ("referrer", "string"), ("user_agent", "string"),
    ("country", "string"), ("device", "struct<os:string,version:string,mobile:boolean>"),
    ("duration_ms", "int"), ("amount", "double"), ("tags", "array<string>"), ("message", "string"),
]
json.dump({"Columns": [{"Name": c, "Type": t} for c, t in columns]}, open(schema_file, "w"))
