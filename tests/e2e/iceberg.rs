//! Apache Iceberg tables on the real binary, on the embedded sqlite catalog: records routed to
//! their table by a jq query are rows that pyiceberg and DuckDB (pinned in
//! tests/requirements.txt, both independent of firehosed) read back exactly, with every type
//! of table format v2; a partitioned table's files hold one partition each; records for a
//! table that does not exist, or that do not fit theirs, go to the error output with AWS's
//! codes and nothing else stops; twenty kill -9 cycles under load with `exactly_once` commit
//! every acknowledged record once (and `at_least_once` beside it loses nothing).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::iceberg::*;
use crate::support::*;

fn config(uri: &str, warehouse: &str, tables: &str, extra: &str) -> String {
    format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
delivery_streams:
  - name: lake
    source: {{direct_put: {{}}}}
    destinations:
      - iceberg:
          catalog: {{sql: {{uri: '{uri}'}}}}
          warehouse: '{warehouse}'
          tables: {tables}
{extra}
        s3_backup: {{directory: '{{dir}}/backup'}}
        error_output_prefix: 'errors/!{{firehose:error-output-type}}/'
        buffering: {{size_mib: 64, interval_seconds: 600}}
"
    )
}

#[test]
fn records_routed_by_a_query_are_rows_of_their_tables_and_misfits_go_to_the_error_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("sqlite:///{}", dir.path().join("catalog.db").display());
    let warehouse = format!("file://{}/warehouse", dir.path().display());
    let orders = json!({"type": "struct", "schema-id": 0, "fields": [
        field(1, "id", true, json!("long")),
        field(2, "region", false, json!("string")),
        field(3, "amount", false, json!("decimal(10, 2)")),
        field(4, "ts", false, json!("timestamptz")),
    ]});
    create(
        &uri,
        &warehouse,
        "db.orders",
        &orders,
        &json!([{"source": "region", "transform": "identity"}]),
    );
    let clicks = json!({"type": "struct", "schema-id": 0, "fields": [
        field(1, "id", true, json!("long")),
        field(2, "page", false, json!("string")),
    ]});
    create(&uri, &warehouse, "db.clicks", &clicks, &json!([]));
    let tables = "[{database: db, table: orders, error_output_prefix: 'orders-errors/'}, {database: db, table: clicks}]";
    let routing = "          routing: {query: '{destinationDatabaseName: \"db\", destinationTableName: .kind}'}";
    let mut d = Daemon::launch(&config(&uri, &warehouse, tables, routing))
        .in_dir(tempfile::tempdir().expect("daemon dir"))
        .start();
    put(
        &d,
        &[
            json!({"kind": "orders", "id": 1, "region": "eu", "amount": 12.5, "ts": 1_725_476_175_114_000_i64}),
            json!({"kind": "orders", "id": 2, "region": "us", "amount": "7", "ts": "2024-09-04T18:56:15Z"}),
            json!({"kind": "orders", "id": 3, "region": "eu", "amount": "abc"}),
            json!({"kind": "orders", "region": "eu"}),
            json!({"kind": "clicks", "id": 10, "page": "/home", "ignored": [1, 2]}),
            json!({"kind": "nope", "id": 99}),
            json!({"id": 100}),
        ],
    );
    let keys = d.flush("lake");
    assert!(keys.iter().any(|k| k.starts_with("db/clicks/")), "{keys:?}");
    assert_eq!(
        rows(&uri, "db.orders"),
        vec![
            json!({"id": 1, "region": "eu", "amount": "12.50", "ts": "2024-09-04T18:56:15.114000Z"}),
            json!({"id": 2, "region": "us", "amount": "7.00", "ts": "2024-09-04T18:56:15Z"}),
        ]
    );
    assert_eq!(
        rows(&uri, "db.clicks"),
        vec![json!({"id": 10, "page": "/home"})]
    );
    // The partitioned table: a file per region, one snapshot for the flush.
    let orders_info = info(&uri, "db.orders");
    let snapshots = orders_info["snapshots"].as_array().expect("snapshots");
    assert_eq!(
        snapshots.len(),
        1,
        "one snapshot per table per flush: {orders_info}"
    );
    assert_eq!(snapshots[0]["summary"]["added-data-files"], "2");
    assert_eq!(snapshots[0]["summary"]["changed-partition-count"], "2");
    let clicks_info = info(&uri, "db.clicks");
    let snapshots = clicks_info["snapshots"].as_array().expect("snapshots");
    assert_eq!(snapshots.len(), 1, "one snapshot per flush: {clicks_info}");
    assert_eq!(snapshots[0]["summary"]["operation"], "append");
    assert_eq!(snapshots[0]["summary"]["firehosed.stream"], "lake");
    let codes_under = |prefix: &str| -> Vec<String> {
        let backup = d.dir.path().join("backup");
        let mut codes: Vec<String> = files_under(&backup)
            .into_iter()
            .filter(|k| k.starts_with(prefix))
            .flat_map(|k| {
                let text = std::fs::read_to_string(backup.join(&k)).expect("error object");
                text.lines()
                    .map(|l| {
                        let v: Value = serde_json::from_str(l).expect("an error record");
                        v["errorCode"].as_str().expect("errorCode").to_string()
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        codes.sort();
        codes
    };
    assert_eq!(
        codes_under("errors/iceberg-failed/"),
        vec!["Iceberg.InvalidTableName", "Iceberg.NoSuchTable"]
    );
    // The orders table's own error prefix (AWS's S3ErrorOutputPrefix) takes its records' errors.
    assert_eq!(
        codes_under("orders-errors/"),
        vec![
            "Iceberg.MissingColumnWithinRecord",
            "Iceberg.SchemaMismatch"
        ]
    );
    // The next records still go in: nothing stopped.
    put(&d, &[json!({"kind": "clicks", "id": 11, "page": "/next"})]);
    d.flush("lake");
    assert_eq!(rows(&uri, "db.clicks").len(), 2);
    assert_eq!(
        d.terminate(std::time::Duration::from_secs(30)).code(),
        Some(0)
    );
}

#[test]
fn every_type_of_table_format_v2_reads_back_exactly_in_pyiceberg_and_duckdb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("sqlite:///{}", dir.path().join("catalog.db").display());
    let warehouse = format!("file://{}/warehouse", dir.path().display());
    let schema = json!({"type": "struct", "schema-id": 0, "fields": [
        field(1, "id", true, json!("long")),
        field(2, "flag", false, json!("boolean")),
        field(3, "i", false, json!("int")),
        field(4, "f", false, json!("float")),
        field(5, "d", false, json!("double")),
        field(6, "amount", false, json!("decimal(38, 9)")),
        field(7, "day", false, json!("date")),
        field(8, "t", false, json!("time")),
        field(9, "ts", false, json!("timestamp")),
        field(10, "tstz", false, json!("timestamptz")),
        field(11, "s", false, json!("string")),
        field(12, "u", false, json!("uuid")),
        field(13, "bin", false, json!("binary")),
        field(14, "fx", false, json!("fixed[4]")),
        field(15, "st", false, json!({"type": "struct", "fields": [
            field(18, "a", false, json!("int")),
            field(19, "b", false, json!("string")),
        ]})),
        field(16, "tags", false, json!({"type": "list", "element-id": 20, "element": "string", "element-required": false})),
        field(17, "attrs", false, json!({"type": "map", "key-id": 21, "key": "string", "value-id": 22, "value": "long", "value-required": false})),
    ]});
    create(&uri, &warehouse, "db.all", &schema, &json!([]));
    let d = Daemon::launch(&config(
        &uri,
        &warehouse,
        "[{database: db, table: all}]",
        "",
    ))
    .in_dir(tempfile::tempdir().expect("daemon dir"))
    .start();
    put(
        &d,
        &[
            json!({"id": 1, "flag": true, "i": -7, "f": 1.5, "d": 2.25,
                   "amount": "12345678901234567890.123456789", "day": "2024-09-04",
                   "t": "18:56:15.096", "ts": "2024-09-04T18:56:15.114", "tstz": 1_725_476_175_114_000_i64,
                   "s": "héllo", "u": "21c5521c-a6d4-48d4-b2c8-7f6d842f72c3", "bin": "AAEC/w==",
                   "fx": "01020304", "st": {"a": 5, "b": "x"}, "tags": ["p", null, "q"],
                   "attrs": {"k": 1, "z": null}}),
            // AWS's other forms: numbers as strings, 1/0 booleans, epoch days, microseconds of
            // the day; a missing member is null.
            json!({"id": "2", "flag": 0, "i": "8", "d": "-0.5", "amount": 3, "day": 19970,
                   "t": 68_175_096_000_i64, "ts": 1_725_476_175_114_000_i64, "st": {"a": 6}}),
        ],
    );
    d.flush("lake");
    assert_eq!(
        rows(&uri, "db.all"),
        vec![
            json!({"id": 1, "flag": true, "i": -7, "f": 1.5, "d": 2.25,
                   "amount": "12345678901234567890.123456789", "day": "2024-09-04",
                   "t": "18:56:15.096000", "ts": "2024-09-04T18:56:15.114000",
                   "tstz": "2024-09-04T18:56:15.114000Z", "s": "héllo",
                   "u": "IcVSHKbUSNSyyH9thC9yww==", "bin": "AAEC/w==", "fx": "AQIDBA==",
                   "st": {"a": 5, "b": "x"}, "tags": ["p", null, "q"], "attrs": {"k": 1, "z": null}}),
            json!({"id": 2, "flag": false, "i": 8, "f": null, "d": -0.5, "amount": "3.000000000",
                   "day": "2024-09-04", "t": "18:56:15.096000", "ts": "2024-09-04T18:56:15.114000",
                   "tstz": null, "s": null, "u": null, "bin": null, "fx": null,
                   "st": {"a": 6, "b": null}, "tags": null, "attrs": null}),
        ]
    );
}

/// Record id -> how many rows of `table` hold it (pyiceberg and DuckDB agreeing).
fn id_counts(uri: &str, table: &str) -> BTreeMap<u64, usize> {
    let v: Value = serde_json::from_str(&tool("ids", uri, &["--table", table])).expect("ids JSON");
    assert_eq!(
        v["pyiceberg"], v["duckdb"],
        "pyiceberg and DuckDB read {table} differently"
    );
    let mut counts = BTreeMap::new();
    for i in v["pyiceberg"].as_array().expect("ids") {
        *counts.entry(i.as_u64().expect("an id")).or_default() += 1;
    }
    counts
}

/// Record id -> how many `iceberg-failed` error records under `backup` hold it.
fn error_counts(backup: &Path) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for e in error_records(backup) {
        let raw = base64_decode(e["rawData"].as_str().expect("rawData"));
        let record: Value = serde_json::from_slice(&raw).expect("the record");
        *counts.entry(record["i"].as_u64().expect("i")).or_default() += 1;
    }
    counts
}

#[test]
fn twenty_kill_9_cycles_under_load_commit_every_acknowledged_record_once() {
    use crate::exactly_once::{assert_once, bad, load};
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("sqlite:///{}", dir.path().join("catalog.db").display());
    let warehouse = format!("file://{}/warehouse", dir.path().display());
    let schema = json!({"type": "struct", "schema-id": 0, "fields": [
        field(1, "c", false, json!("int")),
        field(2, "i", true, json!("long")),
        field(3, "k", false, json!("string")),
        field(4, "p", false, json!("string")),
    ]});
    create(
        &uri,
        &warehouse,
        "db.once",
        &schema,
        &json!([{"source": "k", "transform": "identity"}]),
    );
    create(&uri, &warehouse, "db.least", &schema, &json!([]));
    let destination = |table: &str, delivery: &str, backup: &str| {
        format!(
            "      - iceberg:
          catalog: {{sql: {{uri: '{uri}'}}}}
          tables: [{{database: db, table: {table}}}]
        s3_backup: {{directory: '{{dir}}/{backup}'}}
        error_output_prefix: 'errors/!{{firehose:error-output-type}}/'
        buffering: {{size_mib: 1, interval_seconds: 1}}
        delivery: {delivery}
"
        )
    };
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
relax_aws_limits: true
delivery_streams:
  - name: eo
    source: {{direct_put: {{}}}}
    destinations:
{}{}",
        destination("once", "exactly_once", "once-backup"),
        destination("least", "at_least_once", "least-backup"),
    );
    let mut d = Daemon::start(&config);
    let (next, acked) = (
        Arc::new(Mutex::new(0)),
        Arc::new(Mutex::new(BTreeSet::new())),
    );
    for cycle in 0..20 {
        // 1.0-1.9 s of load: kills land before, during and after commits.
        let run = Duration::from_millis(1000 + (cycle * 347) % 900);
        load(&d.url, run, &next, &acked);
        d.kill9();
        d = d.restart();
    }
    d.flush("eo");
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() > 10_000, "the load ran: {}", acked.len());
    let (bad_ones, good): (BTreeSet<u64>, BTreeSet<u64>) = acked.iter().partition(|i| bad(**i));
    assert_once("the exactly-once table", &id_counts(&uri, "db.once"), &good);
    assert_once(
        "its error records",
        &error_counts(&d.dir.path().join("once-backup")),
        &bad_ones,
    );
    // At least once: nothing lost; what a replay committed again is counted, not refused.
    let least = id_counts(&uri, "db.least");
    let lost: Vec<&u64> = good.iter().filter(|i| !least.contains_key(i)).collect();
    assert!(lost.is_empty(), "at_least_once lost {} records", lost.len());
    let twice = least.values().filter(|n| **n > 1).count();
    println!("at_least_once: {twice} records committed more than once; exactly_once: none");
}

/// `tests/py/iceberg_tool.py` against a moto server's Glue Data Catalog and S3.
fn glue_tool(command: &str, moto: &Moto, args: &[&str]) -> String {
    run_tool(&[&[command, "--glue", moto.endpoint.as_str()], args].concat())
}

#[test]
fn boto3_creates_describes_and_updates_a_stream_into_a_glue_table_on_s3() {
    let moto = Moto::start();
    moto.create_bucket("warehouse");
    moto.create_bucket("errors");
    let schema = json!({"type": "struct", "schema-id": 0, "fields": [
        field(1, "id", true, json!("long")),
        field(2, "name", false, json!("string")),
    ]});
    glue_tool(
        "create",
        &moto,
        &[
            "--warehouse",
            "s3://warehouse/",
            "--table",
            "db.events",
            "--schema",
            &schema.to_string(),
            "--partition",
            "[]",
        ],
    );
    let d = Daemon::start(&format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
aws: {{endpoint_url: '{}', force_path_style: true}}
delivery_streams: []
",
        moto.endpoint
    ));
    let out = run_output(
        Command::new(python())
            .arg(py_script("iceberg_api.py"))
            .args([d.url.as_str(), "lake"]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["status"], "ACTIVE", "{v}");
    assert_eq!(v["failed_put_count"], 0);
    let created = &v["created"]["IcebergDestinationDescription"];
    assert_eq!(
        created["CatalogConfiguration"],
        json!({"CatalogARN": "arn:aws:glue:us-east-1:123456789012:catalog", "WarehouseLocation": "s3://warehouse/"})
    );
    assert_eq!(
        created["DestinationTableConfigurationList"][0]["S3ErrorOutputPrefix"],
        "errors/events/"
    );
    assert_eq!(
        created["BufferingHints"],
        json!({"SizeInMBs": 1, "IntervalInSeconds": 60})
    );
    assert_eq!(created["RetryOptions"], json!({"DurationInSeconds": 120}));
    assert_eq!(created["S3BackupMode"], "FailedDataOnly");
    assert_eq!(created["AppendOnly"], false);
    assert_eq!(
        created["S3DestinationDescription"]["BucketARN"],
        "arn:aws:s3:::errors"
    );
    assert_eq!(
        created["S3DestinationDescription"]["ErrorOutputPrefix"],
        "iceberg-errors/"
    );
    let updated = &v["updated"]["IcebergDestinationDescription"];
    assert_eq!(updated["AppendOnly"], true);
    assert_eq!(
        updated["BufferingHints"],
        json!({"SizeInMBs": 2, "IntervalInSeconds": 30})
    );
    assert_eq!(
        updated["CatalogConfiguration"],
        created["CatalogConfiguration"]
    );
    assert_eq!(v["failed_after_update"], 0);
    d.flush("lake");
    let read = |command: &str| -> Vec<Value> {
        glue_tool(command, &moto, &["--table", "db.events"])
            .lines()
            .map(|l| serde_json::from_str(l).expect("a row"))
            .collect()
    };
    let rows = read("rows");
    assert_eq!(rows, read("duckdb"), "pyiceberg and DuckDB differ");
    let ids: BTreeSet<u64> = rows.iter().map(|r| r["id"].as_u64().expect("id")).collect();
    let want: BTreeSet<u64> = (0..50).chain(100..105).collect();
    assert_eq!(ids, want);
    assert_eq!(rows.len(), 55);
    let info: Value =
        serde_json::from_str(&glue_tool("info", &moto, &["--table", "db.events"])).expect("info");
    assert!(
        info["metadata"]
            .as_str()
            .expect("location")
            .starts_with("s3://warehouse/db.db/events/metadata/"),
        "{info}"
    );
}

#[test]
fn a_python_lambda_routes_records_by_otf_metadata_before_the_routing_query() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("sqlite:///{}", dir.path().join("catalog.db").display());
    let warehouse = format!("file://{}/warehouse", dir.path().display());
    let schema = json!({"type": "struct", "schema-id": 0, "fields": [
        field(1, "id", true, json!("long")),
        field(2, "kind", false, json!("string")),
    ]});
    for t in ["db.a", "db.b", "db.fallback"] {
        create(&uri, &warehouse, t, &schema, &json!([]));
    }
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
delivery_streams:
  - name: lake
    source: {{direct_put: {{}}}}
    processing:
      transform:
        subprocess: {}
    destinations:
      - iceberg:
          catalog: {{sql: {{uri: '{uri}'}}}}
          routing: {{query: '{{destinationDatabaseName: \"db\", destinationTableName: \"fallback\"}}'}}
        s3_backup: {{directory: '{{dir}}/backup'}}
        buffering: {{size_mib: 64, interval_seconds: 600}}
",
        crate::support::transform::python_runner("iceberg_router.handler")
    );
    let d = Daemon::start(&config);
    put(
        &d,
        &[
            json!({"id": 1, "kind": "a"}),
            json!({"id": 2, "kind": "b"}),
            json!({"id": 3, "kind": "a"}),
            json!({"id": 4, "kind": "audit"}),
        ],
    );
    d.flush("lake");
    let ids = |t: &str| -> Vec<u64> {
        rows(&uri, t)
            .iter()
            .map(|r| r["id"].as_u64().expect("id"))
            .collect()
    };
    assert_eq!(ids("db.a"), vec![1, 3]);
    assert_eq!(ids("db.b"), vec![2]);
    // The transform named no table for it: the query's table.
    assert_eq!(ids("db.fallback"), vec![4]);
}

#[test]
fn a_kinesis_source_split_and_merged_under_kill_9_cycles_commits_every_record_once() {
    let k = Kinesalite::start();
    k.tool(&["create", "events", "2"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("sqlite:///{}", dir.path().join("catalog.db").display());
    let warehouse = format!("file://{}/warehouse", dir.path().display());
    let schema = json!({"type": "struct", "schema-id": 0, "fields": [
        field(1, "r", true, json!("string")),
        field(2, "k", false, json!("string")),
    ]});
    create(
        &uri,
        &warehouse,
        "db.stream",
        &schema,
        &json!([{"source": "k", "transform": "identity"}]),
    );
    let (produced, stop) = (dir.path().join("produced"), dir.path().join("stop"));
    let mut producer = Command::new(python())
        .arg(py_script("kinesis_tool.py"))
        .args([&k.endpoint, "produce", "events", "p", "7", "600"])
        .arg(&produced)
        .args(["--aggregate", "--json", "--stop-file"])
        .arg(&stop)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("producer");
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
relax_aws_limits: true
delivery_streams:
  - name: ks
    source:
      kinesis_stream:
        stream_name: events
        endpoint_url: '{}'
        starting_position: TRIM_HORIZON
        discovery_interval_seconds: 1
    destinations:
      - iceberg:
          catalog: {{sql: {{uri: '{uri}'}}}}
          tables: [{{database: db, table: stream}}]
        s3_backup: {{directory: '{{dir}}/backup'}}
        buffering: {{size_mib: 1, interval_seconds: 1}}
        delivery: exactly_once
",
        k.endpoint
    );
    let mut d = Daemon::start(&config);
    for cycle in 0..8u64 {
        if cycle == 2 {
            k.tool(&["split", "events", "shardId-000000000000"]);
        }
        if cycle == 5 {
            let open: Vec<String> =
                serde_json::from_slice(&k.tool(&["shards", "events"])).expect("json");
            k.tool(&["merge", "events", &open[0], &open[1]]);
        }
        std::thread::sleep(Duration::from_millis(1200 + (cycle * 347) % 1500));
        d.kill9();
        d = d.restart();
    }
    std::fs::write(&stop, b"").expect("stop file");
    assert!(producer.wait().expect("producer").success());
    let sent: BTreeSet<String> = std::fs::read_to_string(&produced)
        .expect("produced")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            let record: Value = serde_json::from_str(v[0].as_str().expect("data")).expect("record");
            record["r"].as_str().expect("r").to_string()
        })
        .collect();
    assert!(sent.len() > 5_000, "the producer ran: {}", sent.len());
    let count = |rows: &[Value]| -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for r in rows {
            *counts
                .entry(r["r"].as_str().expect("r").to_string())
                .or_default() += 1;
        }
        counts
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let counts = loop {
        d.flush("ks");
        let counts = count(&rows(&uri, "db.stream"));
        if sent.iter().all(|r| counts.contains_key(r)) || std::time::Instant::now() > deadline {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let missing = sent.iter().filter(|r| !counts.contains_key(*r)).count();
    let twice = counts.values().filter(|n| **n > 1).count();
    assert_eq!(
        (missing, twice),
        (0, 0),
        "of {} records: missing, committed twice",
        sent.len()
    );
    assert_eq!(counts.len(), sent.len(), "rows nobody put");
}

#[test]
fn an_s3_tables_table_on_moto_takes_the_records_in_commits_checked_by_its_version_token() {
    let moto = Moto::start();
    let schema = json!({"type": "struct", "schema-id": 0, "fields": [
        field(1, "id", true, json!("long")),
        field(2, "name", false, json!("string")),
    ]});
    let created: Value = serde_json::from_str(&glue_tool(
        "s3tables-create",
        &moto,
        &[
            "--bucket",
            "lakehouse",
            "--table",
            "sales.orders",
            "--schema",
            &schema.to_string(),
        ],
    ))
    .expect("created");
    let arn = created["arn"].as_str().expect("arn").to_string();
    let d = Daemon::start(&format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
aws: {{endpoint_url: '{endpoint}', force_path_style: true}}
delivery_streams:
  - name: lake
    source: {{direct_put: {{}}}}
    destinations:
      - iceberg:
          catalog: {{s3_tables: {{table_bucket_arn: '{arn}'}}}}
          tables: [{{database: sales, table: orders}}]
        s3_backup: {{directory: '{{dir}}/backup'}}
        buffering: {{size_mib: 64, interval_seconds: 600}}
",
        endpoint = moto.endpoint
    ));
    for batch in 0..2 {
        let lines: Vec<Value> = (0..10)
            .map(|i| json!({"id": batch * 10 + i, "name": format!("n{i}")}))
            .collect();
        put(&d, &lines);
        d.flush("lake");
    }
    let read = |command: &str| -> Vec<Value> {
        glue_tool(
            command,
            &moto,
            &["--s3tables", &arn, "--table", "sales.orders"],
        )
        .lines()
        .map(|l| serde_json::from_str(l).expect("a row"))
        .collect()
    };
    let rows = read("rows");
    assert_eq!(rows, read("duckdb"), "pyiceberg and DuckDB differ");
    let ids: BTreeSet<u64> = rows.iter().map(|r| r["id"].as_u64().expect("id")).collect();
    assert_eq!((ids, rows.len()), ((0..20).collect::<BTreeSet<u64>>(), 20));
    let info: Value = serde_json::from_str(&glue_tool(
        "info",
        &moto,
        &["--s3tables", &arn, "--table", "sales.orders"],
    ))
    .expect("info");
    assert_eq!(info["snapshots"].as_array().expect("snapshots").len(), 2);
}

#[test]
fn a_table_dropped_while_the_stream_runs_sends_its_records_to_the_error_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("sqlite:///{}", dir.path().join("catalog.db").display());
    let warehouse = format!("file://{}/warehouse", dir.path().display());
    let schema =
        json!({"type": "struct", "schema-id": 0, "fields": [field(1, "id", true, json!("long"))]});
    create(&uri, &warehouse, "db.t", &schema, &json!([]));
    let d = Daemon::start(&config(
        &uri,
        &warehouse,
        "[{database: db, table: t}]",
        "          retry_duration_seconds: 0",
    ));
    put(&d, &[json!({"id": 1})]);
    d.flush("lake");
    assert_eq!(rows(&uri, "db.t"), vec![json!({"id": 1})]);
    tool("drop", &uri, &["--table", "db.t"]);
    // Staged for the table it knew: the commit finds it gone; past the retry duration the data
    // file goes to the error output, its records kept.
    put(&d, &[json!({"id": 2}), json!({"id": 3})]);
    d.flush("lake");
    let backup = d.dir.path().join("backup");
    let failed: Vec<String> = files_under(&backup)
        .into_iter()
        .filter(|k| k.starts_with("errors/iceberg-failed/") && k.ends_with(".parquet"))
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", files_under(&backup));
    // Looked up again: the next records are refused as AWS refuses them, and nothing stops.
    put(&d, &[json!({"id": 4})]);
    d.flush("lake");
    let codes: Vec<String> = error_records(&backup)
        .iter()
        .map(|e| e["errorCode"].as_str().expect("code").to_string())
        .collect();
    assert_eq!(codes, vec!["Iceberg.NoSuchTable"]);
}

#[test]
fn records_wait_through_a_catalog_outage_and_a_kill_9_and_none_is_lost_or_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("catalog.db");
    let uri = format!("sqlite:///{}", db.display());
    let warehouse = format!("file://{}/warehouse", dir.path().display());
    let schema =
        json!({"type": "struct", "schema-id": 0, "fields": [field(1, "id", true, json!("long"))]});
    create(&uri, &warehouse, "db.t", &schema, &json!([]));
    let config = config(&uri, &warehouse, "[{database: db, table: t}]", "").replace(
        "buffering: {size_mib: 64, interval_seconds: 600}",
        "buffering: {size_mib: 1, interval_seconds: 1}\n        delivery: exactly_once",
    );
    let mut d = Daemon::start(&config);
    put(&d, &(0..10).map(|i| json!({"id": i})).collect::<Vec<_>>());
    d.flush("lake");
    // The catalog's database is gone (a volume unmounted): sqlite cannot open it.
    let aside = dir.path().join("catalog.db.aside");
    std::fs::rename(&db, &aside).expect("move the catalog away");
    std::fs::create_dir(&db).expect("a directory in its place");
    put(&d, &(10..20).map(|i| json!({"id": i})).collect::<Vec<_>>());
    std::thread::sleep(Duration::from_secs(3));
    d.kill9();
    let mut d = d.restart();
    put(&d, &(20..30).map(|i| json!({"id": i})).collect::<Vec<_>>());
    d.wait_for_log(
        "cannot read the Iceberg table; retrying",
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_secs(2));
    // Back: everything acknowledged is committed, once; nothing went to the error output.
    std::fs::remove_dir(&db).expect("remove the directory");
    std::fs::rename(&aside, &db).expect("the catalog back");
    d.flush("lake");
    let ids: Vec<u64> = rows(&uri, "db.t")
        .iter()
        .map(|r| r["id"].as_u64().expect("id"))
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..30).collect::<Vec<u64>>(), "{ids:?}");
    assert!(error_records(&d.dir.path().join("backup")).is_empty());
}
