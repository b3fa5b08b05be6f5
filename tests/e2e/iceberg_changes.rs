//! Row-level operations on Iceberg tables with unique keys, on the real binary: a change
//! stream of inserts, updates and deletes over a few thousand keys, in random order across
//! many buffers, reads back in DuckDB as exactly the rows that applying the operations one by
//! one gives (pyiceberg 0.12 does not apply equality deletes, so the row comparisons rely on
//! DuckDB alone; pyiceberg reads the snapshots' summaries); the same holds through twenty kill -9
//! cycles with `exactly_once`, each landing in a flush (objects re-cut after a crash carry the
//! same operations, and none is applied twice: a delete and re-insert replayed would leave two
//! rows; the replay of a committed object is refused by its mark, which the unit tier proves
//! directly, as a kill rarely lands between a commit and the cursor that follows it); with
//! `append_only` every record is an insert, whatever its
//! operation; records with an unknown operation or without a key value go to the error output
//! with their codes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::iceberg::*;
use crate::support::*;

/// A small seeded generator (xorshift): the same seed, the same change stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const REGIONS: [&str; 3] = ["eu", "us", "ap"];

/// A change stream over `keys` keys: about 70% inserts (some of a key that has rows already:
/// an insert adds a row whatever is there), 20% updates (of keys with or without rows: an
/// update inserts a missing row), 10% deletes. A key stays in its region, as AWS applies
/// deletes within the record's partition.
fn changes(seed: u64, keys: u64, n: usize) -> Vec<Value> {
    let mut rng = Rng(seed | 1);
    (0..n)
        .map(|i| {
            let id = rng.below(keys);
            let op = match rng.below(10) {
                0..=6 => "insert",
                7 | 8 => "update",
                _ => "delete",
            };
            let region = REGIONS[(id % 3) as usize];
            json!({"op": op, "id": id, "v": i, "region": region})
        })
        .collect()
}

/// The rows applying `ops` one by one leaves: a multiset per key.
fn apply(ops: &[Value]) -> Vec<Value> {
    let mut table: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
    for o in ops {
        let id = o["id"].as_u64().expect("id");
        let row = json!({"id": id, "v": o["v"], "region": o["region"]});
        match o["op"].as_str().expect("op") {
            "insert" => table.entry(id).or_default().push(row),
            "update" => {
                table.insert(id, vec![row]);
            }
            _ => {
                table.remove(&id);
            }
        }
    }
    let mut rows: Vec<Value> = table.into_values().flatten().collect();
    rows.sort_by_key(Value::to_string);
    rows
}

/// Asserts the table holds exactly `want`, saying what differs (not the whole tables).
fn assert_rows(table: &str, got: &[Value], want: &[Value]) {
    let count = |rows: &[Value]| {
        let mut m: BTreeMap<String, i64> = BTreeMap::new();
        for r in rows {
            *m.entry(r.to_string()).or_default() += 1;
        }
        m
    };
    let (g, w) = (count(got), count(want));
    let differ: Vec<String> = g
        .keys()
        .chain(w.keys())
        .filter(|k| g.get(*k) != w.get(*k))
        .take(10)
        .map(|k| {
            format!(
                "{k}: {} rows, expected {}",
                g.get(k).unwrap_or(&0),
                w.get(k).unwrap_or(&0)
            )
        })
        .collect();
    assert!(
        differ.is_empty(),
        "{table} holds {} rows, applying the operations gives {}; first differences:\n{}",
        got.len(),
        want.len(),
        differ.join("\n")
    );
}

/// The table's rows as DuckDB reads them (it applies equality and position deletes).
fn duckdb_rows(uri: &str, table: &str) -> Vec<Value> {
    let mut rows: Vec<Value> = tool("duckdb", uri, &["--table", table])
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON row"))
        .collect();
    rows.sort_by_key(Value::to_string);
    rows
}

fn items_schema() -> Value {
    json!({"type": "struct", "schema-id": 0, "fields": [
        field(1, "id", true, json!("long")),
        field(2, "v", false, json!("long")),
        field(3, "region", false, json!("string")),
    ]})
}

fn stream(name: &str, uri: &str, table: &str, extra: &str, delivery: &str) -> String {
    format!(
        "  - name: {name}
    source: {{direct_put: {{}}}}
    destinations:
      - iceberg:
          catalog: {{sql: {{uri: '{uri}'}}}}
          tables: [{{database: db, table: {table}, unique_keys: [id]}}]
          routing: {{query: '{{operation: .op}}'}}
{extra}
        s3_backup: {{directory: '{{dir}}/{name}-backup'}}
        error_output_prefix: 'errors/!{{firehose:error-output-type}}/'
        buffering: {{size_mib: 1, interval_seconds: 1}}
        delivery: {delivery}
"
    )
}

fn post(d: &Daemon, stream: &str, lines: &[Value]) {
    let body: Vec<String> = lines.iter().map(Value::to_string).collect();
    let (status, text) = d.post(
        &format!("/v1/streams/{stream}/records"),
        body.join("\n").as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
}

#[test]
fn a_change_stream_reads_back_as_applying_its_operations_in_order_and_append_only_inserts_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("sqlite:///{}", dir.path().join("catalog.db").display());
    let warehouse = format!("file://{}/warehouse", dir.path().display());
    let by_region = json!([{"source": "region", "transform": "identity"}]);
    create(&uri, &warehouse, "db.items", &items_schema(), &by_region);
    create(&uri, &warehouse, "db.appended", &items_schema(), &json!([]));
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
relax_aws_limits: true
delivery_streams:
{}{}",
        stream("cdc", &uri, "items", "", "exactly_once"),
        stream(
            "ao",
            &uri,
            "appended",
            "          append_only: true",
            "at_least_once"
        ),
    );
    let d = Daemon::start(&config);
    let ops = changes(7, 3_000, 12_000);
    let mut rng = Rng(99);
    let mut sent = 0;
    while sent < ops.len() {
        let n = (200 + rng.below(800) as usize).min(ops.len() - sent);
        let batch = &ops[sent..sent + n];
        post(&d, "cdc", batch);
        post(&d, "ao", batch);
        sent += n;
        // Buffers end at random places: a key's operations fall in one buffer or in several.
        if rng.below(3) == 0 {
            d.flush("cdc");
        }
    }
    let bad = vec![
        json!({"op": "upsert", "id": 1, "v": -1, "region": "us"}),
        json!({"op": "update", "v": -2, "region": "us"}),
        json!({"op": "delete", "id": null, "region": "us"}),
        // A delete must say its partition (its deletes apply within it).
        json!({"op": "delete", "id": 5}),
    ];
    post(&d, "cdc", &bad);
    d.flush("cdc");
    d.flush("ao");

    assert_rows("db.items", &duckdb_rows(&uri, "db.items"), &apply(&ops));
    let snapshots = info(&uri, "db.items")["snapshots"]
        .as_array()
        .expect("snapshots")
        .clone();
    assert!(snapshots.len() > 5, "{} commits", snapshots.len());
    let sum = |key: &str| -> u64 {
        snapshots
            .iter()
            .filter_map(|s| s["summary"][key].as_str())
            .map(|v| v.parse::<u64>().expect("a count"))
            .sum()
    };
    assert!(sum("added-equality-delete-files") > 0);
    assert!(
        sum("added-position-delete-files") > 0,
        "rows of one buffer removed by position"
    );
    assert!(
        snapshots
            .iter()
            .all(|s| s["summary"]["operation"] == "overwrite"
                || s["summary"]["operation"] == "append"
                || s["summary"]["operation"] == "delete")
    );

    let errors: Vec<(String, String)> = error_records(&d.dir.path().join("cdc-backup"))
        .iter()
        .map(|e| {
            let raw = base64_decode(e["rawData"].as_str().expect("rawData"));
            (
                e["errorCode"].as_str().expect("code").to_string(),
                String::from_utf8(raw).expect("utf-8"),
            )
        })
        .collect();
    let codes: Vec<&str> = errors.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        codes,
        vec![
            "Iceberg.InvalidOperation",
            "Iceberg.InvalidUniqueKeys",
            "Iceberg.InvalidUniqueKeys",
            "Iceberg.MissingColumnWithinRecord"
        ],
        "{errors:?}"
    );

    // append_only: every record is a row, deletes and updates included, in plain appends.
    let appended = rows(&uri, "db.appended");
    assert_eq!(appended.len(), ops.len());
    let info = info(&uri, "db.appended");
    for s in info["snapshots"].as_array().expect("snapshots") {
        assert_eq!(s["summary"]["operation"], "append");
    }
}

#[test]
fn twenty_kill_9_cycles_apply_every_acknowledged_operation_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("sqlite:///{}", dir.path().join("catalog.db").display());
    let warehouse = format!("file://{}/warehouse", dir.path().display());
    let by_region = json!([{"source": "region", "transform": "identity"}]);
    create(&uri, &warehouse, "db.items", &items_schema(), &by_region);
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
relax_aws_limits: true
delivery_streams:
{}",
        stream("cdc", &uri, "items", "", "exactly_once"),
    );
    let mut d = Daemon::start(&config);
    // Few keys, many operations: most of them meet rows written before, in this buffer or in
    // a commit a replay must not apply again.
    let ops = Arc::new(changes(11, 500, 40_000));
    let acked = Arc::new(Mutex::new(0usize));
    let mut rng = Rng(5);
    for _ in 0..20 {
        // The producer sends acknowledged batches in order, then stops; the kill lands while
        // the daemon stages and commits what it acknowledged (a request cut by the kill would
        // leave it unknown whether its records were taken, and a retry could take them twice,
        // as Direct PUT does everywhere).
        let stop = Arc::new(AtomicBool::new(false));
        let producer = {
            let (url, ops, acked, stop) = (d.url.clone(), ops.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let from = *acked.lock().expect("lock");
                    if from >= ops.len() {
                        break;
                    }
                    let to = (from + 300).min(ops.len());
                    let body: Vec<String> = ops[from..to].iter().map(Value::to_string).collect();
                    let (status, text) = http(
                        &format!("{url}/v1/streams/cdc/records"),
                        "POST",
                        &[],
                        body.join("\n").as_bytes(),
                    );
                    assert_eq!(status, 200, "the daemon refused a batch: {text}");
                    *acked.lock().expect("lock") = to;
                }
            })
        };
        std::thread::sleep(Duration::from_millis(700 + rng.below(900)));
        stop.store(true, Ordering::Relaxed);
        producer.join().expect("producer");
        // Then a flush, and the kill a few milliseconds into it: while it stages, commits, or
        // has committed and not yet moved the stream's cursor.
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        let flush = {
            let url = d.url.clone();
            std::thread::spawn(move || {
                http(&format!("{url}/v1/streams/cdc/flush"), "POST", &[], b"")
            })
        };
        std::thread::sleep(Duration::from_millis(rng.below(120)));
        d.kill9();
        let _ = flush.join();
        d = d.restart();
    }
    d.flush("cdc");
    let acked = *acked.lock().expect("lock");
    assert!(acked > 5_000, "the load ran: {acked} operations");
    assert_rows(
        "db.items",
        &duckdb_rows(&uri, "db.items"),
        &apply(&ops[..acked]),
    );
}
