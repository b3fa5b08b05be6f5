//! Record format conversion on the real binary: JSON records into Parquet files that two
//! independent readers (pyarrow and DuckDB, pinned in tests/requirements.txt) read back with
//! exactly the values, types, nulls, nested values and timestamps sent; records that do not fit
//! go to the error prefix as format-conversion-failed; with dynamic partitioning, with the
//! transform in front, to S3, and with memory bounded while a 128 MiB buffer fills (Parquet and
//! ORC). ORC's own read-back tests are in orc_conversion.rs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::orc_conversion::read_orc;
use crate::support::transform::{decode_raw, python_runner};
use crate::support::*;
use serde_json::{Value, json};

/// What `tests/py/parquet_read.py` saw in a set of files.
struct Read {
    pyarrow_types: Value,
    duckdb_types: Value,
    rows: Vec<Value>,
    row_groups: Vec<u64>,
    codecs: Vec<String>,
}

/// What the reader script `script` (tests/py) printed for `files`.
pub(crate) fn run_reader(script: &str, files: &[PathBuf]) -> Value {
    let out = run_output(Command::new(python()).arg(py_script(script)).args(files));
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the reader prints JSON")
}

/// Reads `files` with pyarrow and DuckDB; asserts both see the same rows.
fn read_parquet(files: &[PathBuf]) -> Read {
    let v = run_reader("parquet_read.py", files);
    let pa = v["pyarrow"]["rows"].as_array().expect("rows").clone();
    let duck = v["duckdb"]["rows"].as_array().expect("rows").clone();
    assert_eq!(pa, duck, "pyarrow and DuckDB read the same rows");
    Read {
        pyarrow_types: v["pyarrow"]["types"].clone(),
        duckdb_types: v["duckdb"]["types"].clone(),
        rows: pa,
        row_groups: v["row_groups"]
            .as_array()
            .expect("row groups")
            .iter()
            .map(|n| n.as_u64().expect("count"))
            .collect(),
        codecs: v["codecs"]
            .as_array()
            .expect("codecs")
            .iter()
            .map(|c| c.as_str().expect("codec").to_string())
            .collect(),
    }
}

/// Files under `root` whose key starts with `prefix`, sorted by key.
pub(crate) fn files(root: &Path, prefix: &str) -> Vec<PathBuf> {
    files_under(root)
        .into_iter()
        .filter(|k| k.starts_with(prefix))
        .map(|k| root.join(k))
        .collect()
}

pub(crate) fn error_lines(root: &Path) -> Vec<Value> {
    files(root, "errors/")
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("error object")
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("an error record is JSON"))
                .collect::<Vec<_>>()
        })
        .collect()
}

pub(crate) fn post(d: &Daemon, stream: &str, records: &[&str]) {
    let mut body = records.join("\n").into_bytes();
    body.push(b'\n');
    let (status, text) = d.post(&format!("/v1/streams/{stream}/records"), &body);
    assert_eq!(status, 200, "{text}");
}

const ALL_TYPES: &str = "
              columns:
                - {name: s, type: string}
                - {name: vc, type: varchar(4)}
                - {name: ch, type: char(2)}
                - {name: flag, type: boolean}
                - {name: ti, type: tinyint}
                - {name: si, type: smallint}
                - {name: i, type: int}
                - {name: bi, type: bigint}
                - {name: f, type: float}
                - {name: d, type: double}
                - {name: price, type: 'decimal(12,3)'}
                - {name: day, type: date}
                - {name: ts, type: timestamp}
                - {name: bin, type: binary}
                - {name: tags, type: 'array<string>'}
                - {name: counts, type: 'map<string,bigint>'}
                - {name: UserInfo, type: 'struct<name:string,age:int,emails:array<string>>'}";

pub(crate) fn all_types_config(extra_output: &str) -> String {
    all_types_config_with(&format!("{{parquet: {{{extra_output}}}}}"))
}

/// The all-types stream with `output` as written.
pub(crate) fn all_types_config_with(output: &str) -> String {
    format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
relax_aws_limits: true
delivery_streams:
  - name: pq
    source: {{direct_put: {{}}}}
    destinations:
      - directory: '{{dir}}/out'
        error_output_prefix: 'errors/!{{firehose:error-output-type}}/'
        buffering: {{size_mib: 8, interval_seconds: 900}}
        data_format_conversion:
          schema:{ALL_TYPES}
              database_name: analytics
              table_name: events
          output: {output}"
    )
}

#[test]
fn every_hive_type_reads_back_exactly_in_pyarrow_and_duckdb() {
    let d = Daemon::start(&all_types_config(""));
    let full = r#"{"s":"héllo \"world\"","vc":"truncated","ch":"éxyz","flag":true,"ti":-128,"si":32767,"i":2147483647,"bi":-9223372036854775808,"f":1.5,"d":-2.25e-3,"price":"123456789.0125","day":"2024-02-29","ts":"2024-05-01T13:07:42.123456789Z","bin":"AAEC/w==","tags":["a",null,"c"],"counts":{"x":1,"y":null},"USERINFO":{"Name":"Ann","age":41,"emails":[]},"unknown":{"deep":[1,2,{"x":null}]}}"#;
    let invalid = r#"{"s":"a","i":1,,"f":2}"#;
    // OpenX coercions: numbers from strings, strings from numbers, epoch seconds and millis.
    let coerced = r#"{"s":12.50,"vc":"ab","flag":"FALSE","ti":"7","si":-1,"i":"42","bi":"9000000000","f":"3.25","d":1,"price":7,"day":"2024-1-5","ts":1714568862,"userinfo":{"name":{"nested":"json"}}}"#;
    let millis = r#"{"ts":1714568862123,"tags":[],"counts":{}}  {"ts":"2024-05-01 13:07:42.5"}"#;
    let empty = r#"{}"#;
    let bad = [
        invalid,                               // invalid JSON (,,)
        r#"{"ti":128}"#,                       // out of range
        r#"{"i":1.5}"#,                        // not a whole number
        r#"{"price":"12345678901.5"}"#,        // needs more than 12 digits
        r#"[{"s":"a top-level array"}]"#,      // arrays are not valid input
        r#"{"tags":"not an array"}"#,          // type mismatch
        r#"{"ts":"next tuesday"}"#,            // not a timestamp
        r#"{"s":"ok"} {"s":"then","ti":"x"}"#, // the whole record fails
    ];
    let mut records = vec![full, coerced, millis, empty];
    records.extend(bad);
    post(&d, "pq", &records);
    let keys = d.flush("pq");
    assert_eq!(
        keys.len(),
        2,
        "one Parquet object and one error object: {keys:?}"
    );
    let out = d.dir.path().join("out");
    let objects: Vec<String> = files_under(&out)
        .into_iter()
        .filter(|k| !k.starts_with("errors/"))
        .collect();
    assert_eq!(objects.len(), 1, "{objects:?}");
    let key = &objects[0];
    assert!(
        key.ends_with(".parquet") && key.contains("/pq-1-"),
        "AWS's key layout with the .parquet extension: {key}"
    );
    let read = read_parquet(&[out.join(key)]);

    assert_eq!(
        read.pyarrow_types,
        json!({
            "s": "string", "vc": "string", "ch": "string", "flag": "bool", "ti": "int8", "si": "int16",
            "i": "int32", "bi": "int64", "f": "float", "d": "double",
            "price": "decimal128(12, 3)", "day": "date32[day]", "ts": "timestamp[us]",
            "bin": "binary", "tags": "list<element: string>",
            "counts": "map<string, int64 ('counts')>",
            "userinfo": "struct<name: string, age: int32, emails: list<element: string>>"
        })
    );
    assert_eq!(
        read.duckdb_types,
        json!({
            "s": "VARCHAR", "vc": "VARCHAR", "ch": "VARCHAR", "flag": "BOOLEAN", "ti": "TINYINT",
            "si": "SMALLINT", "i": "INTEGER", "bi": "BIGINT", "f": "FLOAT", "d": "DOUBLE",
            "price": "DECIMAL(12,3)", "day": "DATE", "ts": "TIMESTAMP", "bin": "BLOB",
            "tags": "VARCHAR[]", "counts": "MAP(VARCHAR, BIGINT)",
            "userinfo": "STRUCT(\"name\" VARCHAR, age INTEGER, emails VARCHAR[])"
        })
    );
    let nulls = |overrides: Value| {
        let mut row = json!({
            "s": null, "vc": null, "ch": null, "flag": null, "ti": null, "si": null, "i": null,
            "bi": null, "f": null, "d": null, "price": null, "day": null, "ts": null,
            "bin": null, "tags": null, "counts": null, "userinfo": null
        });
        for (k, v) in overrides.as_object().expect("object") {
            row[k] = v.clone();
        }
        row
    };
    let expected = vec![
        nulls(json!({
            "s": "héllo \"world\"", "vc": "trun", "ch": "éx", "flag": true, "ti": -128, "si": 32767,
            "i": 2147483647, "bi": -9223372036854775808i64, "f": 1.5, "d": -0.00225,
            "price": "123456789.013", "day": "2024-02-29", "ts": "2024-05-01T13:07:42.123456",
            "bin": "AAEC/w==", "tags": ["a", null, "c"], "counts": {"x": 1, "y": null},
            "userinfo": {"name": "Ann", "age": 41, "emails": []}
        })),
        nulls(json!({
            "s": "12.50", "vc": "ab", "flag": false, "ti": 7, "si": -1, "i": 42,
            "bi": 9000000000i64, "f": 3.25, "d": 1.0, "price": "7.000", "day": "2024-01-05",
            "ts": "2024-05-01T13:07:42",
            "userinfo": {"name": "{\"nested\":\"json\"}", "age": null, "emails": null}
        })),
        nulls(json!({"ts": "2024-05-01T13:07:42.123000", "tags": [], "counts": {}})),
        nulls(json!({"ts": "2024-05-01T13:07:42.500000"})),
        nulls(json!({})),
    ];
    assert_eq!(read.rows, expected);
    assert_eq!(
        read.codecs,
        vec!["SNAPPY"],
        "AWS's default Parquet compression"
    );
    assert_eq!(read.row_groups, vec![1]);

    // Every record that did not fit is an error record, in order, with AWS's layout.
    let errors = error_lines(&out);
    assert_eq!(errors.len(), bad.len(), "{errors:#?}");
    let error_keys: Vec<String> = files_under(&out)
        .into_iter()
        .filter(|k| k.starts_with("errors/"))
        .collect();
    assert_eq!(error_keys.len(), 1);
    assert!(
        error_keys[0].starts_with("errors/format-conversion-failed/pq-1-")
            && !error_keys[0].ends_with(".parquet"),
        "JSON lines under the error prefix, without the Parquet extension: {error_keys:?}"
    );
    for (e, raw) in errors.iter().zip(bad) {
        assert_eq!(decode_raw(e), raw);
        assert_eq!(e["lastErrorCode"], "DataFormatConversion.MalformedData");
        assert_eq!(e["attemptsMade"], 1);
        assert!(e["arrivalTimestamp"].as_i64().expect("arrival") > 1_700_000_000_000);
        assert!(e["attemptEndingTimestamp"].as_i64().expect("ending") > 1_700_000_000_000);
        assert!(e["sequenceNumber"].is_string());
        assert_eq!(e["dataCatalogTable"]["databaseName"], "analytics");
        assert_eq!(e["dataCatalogTable"]["tableName"], "events");
        assert_eq!(e["dataCatalogTable"]["versionId"], "LATEST");
    }
    let message = |i: usize| {
        errors[i]["lastErrorMessage"]
            .as_str()
            .expect("message")
            .to_string()
    };
    assert!(message(0).contains("invalid JSON"), "{}", message(0));
    assert!(message(1).contains("column ti:") && message(1).contains("out of range for tinyint"));
    assert!(message(2).contains("not a whole number"), "{}", message(2));
    assert!(
        message(3).contains("out of range for decimal(12,3)"),
        "{}",
        message(3)
    );
    assert!(
        message(4).contains("top-level JSON array"),
        "{}",
        message(4)
    );
    assert!(message(5).contains("column tags:"), "{}", message(5));
    assert!(message(6).contains("not a timestamp"), "{}", message(6));
    assert!(message(7).contains("column ti:"), "{}", message(7));

    // DescribeDeliveryStream reports the conversion in AWS's shape.
    let (status, v) = d.api("DescribeDeliveryStream", r#"{"DeliveryStreamName":"pq"}"#);
    assert_eq!(status, 200, "{v}");
    let ext =
        &v["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"];
    let conv = &ext["DataFormatConversionConfiguration"];
    assert_eq!(conv["Enabled"], true);
    assert_eq!(conv["SchemaConfiguration"]["TableName"], "events");
    assert_eq!(
        conv["InputFormatConfiguration"]["Deserializer"]["OpenXJsonSerDe"]["CaseInsensitive"],
        true
    );
    let parquet = &conv["OutputFormatConfiguration"]["Serializer"]["ParquetSerDe"];
    assert_eq!(parquet["Compression"], "SNAPPY");
    assert_eq!(parquet["BlockSizeBytes"], 268435456);
    assert_eq!(ext["CompressionFormat"], "UNCOMPRESSED");
    assert_eq!(ext["FileExtension"], ".parquet");

    // Metrics count each record once.
    let series = |name: &str| format!("{name}{{delivery_stream=\"pq\",destination=\"0\"}}");
    assert_eq!(
        d.metric(&series("firehose_succeed_conversion_records_total")),
        4.0
    );
    assert_eq!(
        d.metric(&series("firehose_failed_conversion_records_total")),
        bad.len() as f64
    );
    assert_eq!(
        d.metric(&series("firehose_delivery_to_s3_records_total")),
        4.0
    );
}

#[test]
fn a_glue_schema_file_hive_json_timestamp_formats_and_the_parquet_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = dir.path().join("table.json");
    // The shape `aws glue get-table` prints.
    std::fs::write(
        &schema,
        r#"{"Table":{"Name":"clicks","StorageDescriptor":{"Columns":[
            {"Name":"Id","Type":"bigint"},{"Name":"at","Type":"timestamp"},
            {"Name":"page","Type":"string"}]}}}"#,
    )
    .expect("schema file");
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
relax_aws_limits: true
delivery_streams:
  - name: clicks
    source: {{direct_put: {{}}}}
    destinations:
      - directory: '{{dir}}/out'
        prefix: 'clicks/'
        buffering: {{size_mib: 1, interval_seconds: 900}}
        data_format_conversion:
          schema: {{file: '{}'}}
          input: {{hive_json: {{timestamp_formats: [\"dd/MM/yyyy HH:mm:ss\", millis]}}}}
          output:
            parquet:
              compression: ZSTD
              writer_version: V2
              enable_dictionary_compression: false
              timestamp_unit: MILLIS",
        schema.display()
    );
    let d = Daemon::launch(&config).in_dir(dir).start();
    post(
        &d,
        "clicks",
        &[
            r#"{"id":1,"at":"01/05/2024 13:07:42","page":"/a"}"#,
            r#"{"ID":2,"at":1714568862123,"page":"/b"}"#,
            r#"{"id":3,"at":"2024-05-01 13:07:42.9"}"#,
        ],
    );
    let keys = d.flush("clicks");
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].starts_with("clicks/20"),
        "plain prefix + yyyy/MM/dd/HH/: {}",
        keys[0]
    );
    let read = read_parquet(&[d.dir.path().join("out").join(&keys[0])]);
    assert_eq!(read.pyarrow_types["at"], "timestamp[ms]");
    assert_eq!(read.pyarrow_types["id"], "int64");
    assert_eq!(read.codecs, vec!["ZSTD"]);
    let at: Vec<&Value> = read.rows.iter().map(|r| &r["at"]).collect();
    assert_eq!(
        at,
        vec![
            &json!("2024-05-01T13:07:42"),
            &json!("2024-05-01T13:07:42.123000"),
            &json!("2024-05-01T13:07:42.900000")
        ]
    );
    assert_eq!(read.rows[2]["page"], Value::Null);
}

#[test]
fn dynamic_partitioning_writes_one_parquet_object_per_partition_to_s3() {
    let moto = Moto::start();
    moto.create_bucket("lake");
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
relax_aws_limits: true
aws: {{region: us-east-1, endpoint_url: '{}', force_path_style: true}}
delivery_streams:
  - name: orders
    source: {{direct_put: {{}}}}
    processing:
      metadata_extraction: {{query: '{{customer: .customer}}'}}
    destinations:
      - s3: {{bucket: lake}}
        prefix: 'orders/customer=!{{partitionKeyFromQuery:customer}}/'
        error_output_prefix: 'errors/!{{firehose:error-output-type}}/'
        buffering: {{size_mib: 64, interval_seconds: 60}}
        dynamic_partitioning: {{enabled: true}}
        data_format_conversion:
          schema:
            columns: [{{name: customer, type: string}}, {{name: n, type: int}}, {{name: total, type: 'decimal(10,2)'}}]",
        moto.endpoint
    );
    let d = Daemon::start(&config);
    let mut records = Vec::new();
    for n in 0..300 {
        records.push(format!(
            r#"{{"customer":"c{}","n":{n},"total":{}.{:02}}}"#,
            n % 3,
            n,
            n % 100
        ));
    }
    records.push(r#"{"customer":"c1","n":"not a number"}"#.to_string());
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    post(&d, "orders", &refs);
    d.flush("orders");
    let keys = moto.keys("lake");
    let tmp = tempfile::tempdir().expect("tempdir");
    for c in 0..3 {
        let part: Vec<&String> = keys
            .iter()
            .filter(|k| k.starts_with(&format!("orders/customer=c{c}/")))
            .collect();
        assert_eq!(part.len(), 1, "one object per partition: {keys:?}");
        assert!(part[0].ends_with(".parquet"));
        let file = tmp.path().join(format!("c{c}.parquet"));
        std::fs::write(&file, moto.get("lake", part[0])).expect("download");
        let read = read_parquet(&[file]);
        let expected: Vec<Value> = (0..300)
            .filter(|n| n % 3 == c)
            .map(|n| json!({"customer": format!("c{c}"), "n": n, "total": format!("{n}.{:02}", n % 100)}))
            .collect();
        assert_eq!(read.rows, expected, "partition c{c}");
    }
    let errors: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("errors/format-conversion-failed/"))
        .collect();
    assert_eq!(errors.len(), 1, "{keys:?}");
    let line: Value = serde_json::from_slice(&moto.get("lake", errors[0])).expect("error record");
    assert_eq!(decode_raw(&line), records[300]);
}

#[test]
fn the_transform_runs_before_the_conversion() {
    // blueprint.lambda_handler keeps "keep" records (adding "processed": true), drops "drop",
    // fails the rest.
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
relax_aws_limits: true
delivery_streams:
  - name: t
    source: {{direct_put: {{}}}}
    processing:
      transform:
        subprocess: {}
        buffer_interval_seconds: 0
    destinations:
      - directory: '{{dir}}/out'
        error_output_prefix: 'errors/!{{firehose:error-output-type}}/'
        buffering: {{size_mib: 64, interval_seconds: 900}}
        data_format_conversion:
          schema:
            columns: [{{name: id, type: int}}, {{name: action, type: string}}, {{name: processed, type: boolean}}]",
        python_runner("blueprint.lambda_handler")
    );
    let d = Daemon::start(&config);
    post(
        &d,
        "t",
        &[
            r#"{"id":1,"action":"keep"}"#,
            r#"{"id":2,"action":"drop"}"#,
            r#"{"id":3,"action":"fail"}"#,
            r#"{"id":"four","action":"keep"}"#,
            r#"{"id":5,"action":"keep"}"#,
        ],
    );
    d.flush("t");
    let out = d.dir.path().join("out");
    let read = read_parquet(&files(&out, "20"));
    assert_eq!(
        read.rows,
        vec![
            json!({"id": 1, "action": "keep", "processed": true}),
            json!({"id": 5, "action": "keep", "processed": true}),
        ]
    );
    let failed = files(&out, "errors/processing-failed/");
    assert_eq!(failed.len(), 1);
    let conversion = error_lines(&out)
        .into_iter()
        .filter(|e| e["lastErrorCode"].is_string())
        .collect::<Vec<_>>();
    assert_eq!(conversion.len(), 1);
    // The transformed record is what failed the conversion.
    assert_eq!(
        decode_raw(&conversion[0]).trim_end(),
        r#"{"id":"four","action":"keep","processed":true}"#
    );
}

#[test]
fn kill_9_with_a_parquet_object_half_written_loses_nothing() {
    let d = Daemon::start(&all_types_config("row_group_buffer_mib: 1"));
    // Random text, so row groups fill and go to the staging file before the kill.
    let mut seed = 7u64;
    let records: Vec<String> = (0..20_000)
        .map(|i| {
            let s: String = (0..200)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    char::from(b'a' + (seed >> 59) as u8 % 26)
                })
                .collect();
            format!(r#"{{"bi":{i},"s":"{s}"}}"#)
        })
        .collect();
    for chunk in records.chunks(5000) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        post(&d, "pq", &refs);
    }
    // The open object already holds row groups on disk.
    let staging = d.dir.path().join("state/staging");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let staged = loop {
        let size: u64 = files_under(&staging)
            .iter()
            .filter(|k| k.ends_with(".part"))
            .filter_map(|k| std::fs::metadata(staging.join(k)).ok())
            .map(|m| m.len())
            .sum();
        if size > 1024 * 1024 || std::time::Instant::now() > deadline {
            break size;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(
        staged > 1024 * 1024,
        "row groups were on disk before the kill ({staged} bytes)"
    );
    let d = d.restart();
    d.flush("pq");
    let out = d.dir.path().join("out");
    let read = read_parquet(&files(&out, "20"));
    let mut ids: Vec<i64> = read
        .rows
        .iter()
        .map(|r| r["bi"].as_i64().expect("bi"))
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..20_000).collect::<Vec<i64>>(),
        "every acknowledged record, once"
    );
}

#[test]
fn memory_stays_bounded_while_a_128_mib_parquet_buffer_fills() {
    memory_stays_bounded_while_a_128_mib_buffer_converts("");
}

#[test]
fn memory_stays_bounded_while_a_128_mib_orc_buffer_fills() {
    memory_stays_bounded_while_a_128_mib_buffer_converts("\n          output: {orc: {}}");
}

/// 120 MiB of distinct records into one 128 MiB buffer converted with `output` (Parquet when
/// empty): the peak RSS stays far below what is buffered, and the file has several row groups
/// or stripes.
fn memory_stays_bounded_while_a_128_mib_buffer_converts(output: &str) {
    let orc = !output.is_empty();
    let d = Daemon::start(&format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
spool: {{fsync: false}}
delivery_streams:
  - name: mem
    source: {{direct_put: {{}}}}
    destinations:
      - directory: '{{dir}}/out'
        buffering: {{size_mib: 128, interval_seconds: 900}}
        data_format_conversion:
          schema:
            columns: [{{name: id, type: bigint}}, {{name: payload, type: string}}, {{name: tags, type: 'array<string>'}}]{output}",
    ));
    let idle_mib = d.rss_kib() / 1024;
    let mut sent = 0usize;
    let mut round = 0;
    let mut seed = 1u64;
    while sent < 120 * 1024 * 1024 {
        // Pseudo-random payloads, so neither dictionaries nor snappy shrink the data away.
        let mut body = String::new();
        for i in 0..8000 {
            let payload: String = (0..1000)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    char::from(b'a' + (seed >> 59) as u8 % 26)
                })
                .collect();
            body.push_str(&format!(
                "{{\"id\":{i},\"payload\":\"{round:04}-{payload}\",\"tags\":[\"a\",\"b{}\"]}}\n",
                i % 97
            ));
        }
        assert_eq!(d.post("/v1/streams/mem/records", body.as_bytes()).0, 200);
        sent += body.len();
        round += 1;
    }
    let keys = d.flush("mem");
    let rss_mib = d.peak_rss_kib() / 1024 - idle_mib;
    eprintln!(
        "peak RSS converting {} MiB into one object (orc: {orc}): {rss_mib} MiB above the idle {idle_mib} MiB",
        sent >> 20
    );
    assert_eq!(keys.len(), 1, "one 128 MiB buffer held it all");
    let file = d.dir.path().join("out").join(&keys[0]);
    let read_groups = match orc {
        true => read_orc(&[file])["stripes"][0].as_u64().unwrap_or(0),
        false => read_parquet_meta(&file),
    };
    assert!(
        read_groups > 1,
        "row groups went to the file as they filled"
    );
    assert!(
        rss_mib < 96,
        "peak RSS growth {rss_mib} MiB should stay far below the {} MiB buffered",
        sent >> 20
    );
}

/// Row groups of one file (pyarrow metadata only; the rows are not compared here).
fn read_parquet_meta(file: &Path) -> u64 {
    let out = run_output(Command::new(python()).args([
        "-c",
        "import sys, pyarrow.parquet as pq; print(pq.ParquetFile(sys.argv[1]).metadata.num_row_groups)",
        &file.display().to_string(),
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a count")
}

#[test]
fn bad_conversion_settings_are_config_errors_that_name_the_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "delivery_streams:
  - name: x
    source: {direct_put: {}}
    destinations:
      - directory: ./out
        compression: GZIP
        buffering: {size_mib: 32}
        data_format_conversion:
          schema:
            columns:
              - {name: id, type: bigint}
              - {name: amount, type: 'decimal(40,2)'}
              - {name: ID, type: string}
          output: {parquet: {compression: LZO, page_size_bytes: 1024}}
      - directory: ./out2
        data_format_conversion:
          schema: {file: /nonexistent/table.json}
",
    )
    .expect("config");
    let out = run_output(firehosed().args(["validate", "--config"]).arg(&file));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "destinations[0].compression: must be UNCOMPRESSED when data_format_conversion is enabled",
        "destinations[0].buffering.size_mib: BufferingHints.SizeInMBs must be at least 64 when data format conversion is enabled",
        "data_format_conversion.schema.columns[1].type: column \"amount\": decimal precision must be 1..=38",
        "data_format_conversion.schema.columns[2].name: column \"id\" appears twice",
        "output.parquet.compression: must be one of UNCOMPRESSED | GZIP | SNAPPY | ZSTD (got \"LZO\")",
        "output.parquet.page_size_bytes: must be 65536..=",
        "destinations[1].data_format_conversion.schema.file: /nonexistent/table.json: cannot read the schema file",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}
