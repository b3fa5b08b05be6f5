//! Tables made and grown by their records, on the real binary: with `table_creation` a record
//! routed to a table that does not exist creates it (its columns from the records, identity
//! partitions from `partition_spec`, a database created if missing), on the embedded catalog
//! and on the Glue Data Catalog (moto) over S3; with `schema_evolution` a record's new
//! top-level fields become columns before the data that holds them, and rows written before
//! read as null there; pyiceberg and DuckDB (pinned in tests/requirements.txt) read every
//! table alike. Two instances creating one table at once end with one table holding the
//! records of both.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::iceberg::*;
use crate::support::*;

fn lake(catalog: &str, warehouse: &str, aws: &str) -> String {
    format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
{aws}delivery_streams:
  - name: lake
    source: {{direct_put: {{}}}}
    destinations:
      - iceberg:
          catalog: {catalog}
          warehouse: '{warehouse}'
          tables: [{{database: db, table: made, partition_spec: [region]}}]
          routing: {{query: '{{destinationDatabaseName: .db, destinationTableName: .t}}'}}
          table_creation: true
          schema_evolution: true
        s3_backup: {{directory: '{{dir}}/backup'}}
        error_output_prefix: 'errors/!{{firehose:error-output-type}}/'
        buffering: {{size_mib: 64, interval_seconds: 600}}
"
    )
}

/// Creates `db.made` (partitioned by region) and `db2.other` (a database that does not exist)
/// from their records, then grows both with new fields; `read(table)` gives the rows
/// pyiceberg and DuckDB agree on, `schema(table)` the table's current columns.
fn create_and_evolve(d: &Daemon, read: &dyn Fn(&str) -> Vec<Value>, info: &dyn Fn(&str) -> Value) {
    let first: Vec<Value> = (0..6)
        .map(|i| {
            let (db, t) = if i % 2 == 0 {
                ("db", "made")
            } else {
                ("db2", "other")
            };
            let region = ["eu", "us"][i % 4 / 2];
            json!({"db": db, "t": t, "id": i, "region": region, "name": format!("n{i}")})
        })
        .collect();
    put(d, &first);
    d.flush("lake");
    let made = read("db.made");
    assert_eq!(made.len(), 3, "{made:?}");
    assert_eq!(read("db2.other").len(), 3);
    let m = info("db.made");
    assert_eq!(
        m["spec"],
        json!([{"name": "region", "transform": "identity", "source": "region"}])
    );
    assert_eq!(m["columns"], json!(["db", "id", "name", "region", "t"]));
    assert_eq!(m["format_version"], 2);

    // New fields: columns added before the rows that hold them; earlier rows read null there.
    let later = vec![
        json!({"db": "db", "t": "made", "id": 10, "region": "eu", "score": 1.5, "tags": ["a", "b"]}),
        json!({"db": "db2", "t": "other", "id": 11, "region": "us", "flag": true, "name": "x"}),
        json!({"db": "db", "t": "made", "id": 12, "region": "us", "score": null}),
    ];
    put(d, &later);
    d.flush("lake");
    let made = read("db.made");
    assert_eq!(made.len(), 5);
    let by_id = |rows: &[Value], id: u64| -> Value {
        rows.iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no row {id} in {rows:?}"))
    };
    assert_eq!(by_id(&made, 10)["score"], 1.5);
    assert_eq!(by_id(&made, 10)["tags"], json!(["a", "b"]));
    assert_eq!(
        by_id(&made, 0)["score"],
        Value::Null,
        "a row written before"
    );
    assert_eq!(by_id(&made, 12)["score"], Value::Null);
    let m = info("db.made");
    assert_eq!(
        m["columns"],
        json!(["db", "id", "name", "region", "t", "score", "tags"])
    );
    assert_eq!(m["schemas"], 2, "one schema change for both columns");
    let other = read("db2.other");
    assert_eq!(by_id(&other, 11)["flag"], true);
    assert_eq!(by_id(&other, 1)["flag"], Value::Null);
}

#[test]
fn tables_are_created_and_grown_by_their_records_on_the_embedded_catalog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("sqlite:///{}", dir.path().join("catalog.db").display());
    let warehouse = format!("file://{}/warehouse", dir.path().display());
    let d = Daemon::start(&lake(&format!("{{sql: {{uri: '{uri}'}}}}"), &warehouse, ""));
    create_and_evolve(&d, &|t| rows(&uri, t), &|t| table_info(&uri, t));
    assert!(
        dir.path().join("warehouse/db/made/metadata").is_dir(),
        "created in the warehouse, as pyiceberg's SqlCatalog lays tables out"
    );
}

#[test]
fn tables_are_created_and_grown_by_their_records_on_glue_over_s3() {
    let moto = Moto::start();
    moto.create_bucket("warehouse");
    let d = Daemon::start(&lake(
        &format!("{{glue: {{endpoint_url: '{}'}}}}", moto.endpoint),
        "s3://warehouse/lake",
        &format!(
            "aws: {{endpoint_url: '{}', force_path_style: true}}\n",
            moto.endpoint
        ),
    ));
    let glue = |command: &str, t: &str| {
        run_tool(&[command, "--glue", moto.endpoint.as_str(), "--table", t])
    };
    let read = |t: &str| -> Vec<Value> {
        let parse = |text: String| -> Vec<Value> {
            text.lines()
                .map(|l| serde_json::from_str(l).expect("a row"))
                .collect()
        };
        let py = parse(glue("rows", t));
        assert_eq!(
            py,
            parse(glue("duckdb", t)),
            "pyiceberg and DuckDB read {t} differently"
        );
        py
    };
    let info = |t: &str| -> Value { serde_json::from_str(&glue("schema", t)).expect("schema") };
    create_and_evolve(&d, &read, &info);
    let m: Value = serde_json::from_str(&glue("info", "db2.other")).expect("info");
    assert!(
        m["metadata"]
            .as_str()
            .expect("location")
            .starts_with("s3://warehouse/lake/db2.db/other/metadata/"),
        "{m}"
    );
}

#[test]
fn two_instances_creating_one_table_at_once_end_with_one_table_of_both_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("sqlite:///{}", dir.path().join("catalog.db").display());
    let warehouse = format!("file://{}/warehouse", dir.path().display());
    let config = lake(&format!("{{sql: {{uri: '{uri}'}}}}"), &warehouse, "");
    let (a, b) = (Daemon::start(&config), Daemon::start(&config));
    let batch = move |from: u64| -> Vec<Value> {
        (from..from + 100)
            .map(|i| json!({"db": "db", "t": "raced", "i": i, "region": "eu"}))
            .collect()
    };
    // Both instances take records for the table that does not exist yet at the same moment.
    let send = |url: String, from: u64| {
        std::thread::spawn(move || {
            let body: Vec<String> = batch(from).iter().map(Value::to_string).collect();
            let (status, text) = http(
                &format!("{url}/v1/streams/lake/records"),
                "POST",
                &[],
                body.join("\n").as_bytes(),
            );
            assert_eq!(status, 200, "{text}");
            let (status, text) = http(&format!("{url}/v1/streams/lake/flush"), "POST", &[], b"");
            assert_eq!(status, 200, "{text}");
        })
    };
    let (ta, tb) = (send(a.url.clone(), 0), send(b.url.clone(), 1_000));
    ta.join().expect("instance a");
    tb.join().expect("instance b");
    let ids: BTreeSet<u64> = rows(&uri, "db.raced")
        .iter()
        .map(|r| r["i"].as_u64().expect("i"))
        .collect();
    let want: BTreeSet<u64> = (0..100).chain(1_000..1_100).collect();
    assert_eq!(ids, want);
    let logs = [a, b].map(|mut d| d.logs());
    let created = logs
        .iter()
        .filter(|l| l.contains("created the Iceberg table from its records"))
        .count();
    assert_eq!(created, 1, "one instance created it, the other took it");
}
