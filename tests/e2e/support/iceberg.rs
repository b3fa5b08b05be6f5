//! Helpers of the Iceberg tests: `tests/py/iceberg_tool.py` (pyiceberg and DuckDB, pinned in
//! tests/requirements.txt) creates tables and reads them back.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::*;

/// `tests/py/iceberg_tool.py ARGS`: its stdout.
pub fn run_tool(args: &[&str]) -> String {
    let out = run_output(
        Command::new(python())
            .arg(py_script("iceberg_tool.py"))
            .args(args),
    );
    assert!(
        out.status.success(),
        "iceberg_tool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `tests/py/iceberg_tool.py COMMAND --uri URI ARGS` (the embedded catalog).
pub fn tool(command: &str, uri: &str, args: &[&str]) -> String {
    run_tool(&[&[command, "--uri", uri], args].concat())
}

/// Creates `table` (db.name) with pyiceberg: Iceberg's schema JSON, a partition spec.
pub fn create(uri: &str, warehouse: &str, table: &str, schema: &Value, partition: &Value) {
    tool(
        "create",
        uri,
        &[
            "--warehouse",
            warehouse,
            "--table",
            table,
            "--schema",
            &schema.to_string(),
            "--partition",
            &partition.to_string(),
        ],
    );
}

/// The table's rows as pyiceberg and as DuckDB read them (asserted equal), sorted.
pub fn rows(uri: &str, table: &str) -> Vec<Value> {
    let parse = |text: String| -> Vec<Value> {
        text.lines()
            .map(|l| serde_json::from_str(l).expect("a JSON row"))
            .collect()
    };
    let py = parse(tool("rows", uri, &["--table", table]));
    let duck = parse(tool("duckdb", uri, &["--table", table]));
    assert_eq!(py, duck, "pyiceberg and DuckDB read {table} differently");
    py
}

pub fn info(uri: &str, table: &str) -> Value {
    serde_json::from_str(&tool("info", uri, &["--table", table])).expect("info JSON")
}

pub fn field(id: u32, name: &str, required: bool, ty: Value) -> Value {
    json!({"id": id, "name": name, "required": required, "type": ty})
}

/// The error records under the backup's `errors/iceberg-failed/` (not the data files of
/// commits given up on, which are Parquet).
pub fn error_records(backup: &Path) -> Vec<Value> {
    files_under(backup)
        .into_iter()
        .filter(|k| k.starts_with("errors/iceberg-failed/") && !k.ends_with(".parquet"))
        .flat_map(|k| {
            let text = std::fs::read_to_string(backup.join(&k)).expect("error object");
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("an error record"))
                .collect::<Vec<_>>()
        })
        .collect()
}

pub fn put(d: &Daemon, lines: &[Value]) {
    let body: Vec<String> = lines.iter().map(Value::to_string).collect();
    let (status, text) = d.post("/v1/streams/lake/records", body.join("\n").as_bytes());
    assert_eq!(status, 200, "{text}");
}

/// The table's current columns, partition spec and schema count (`iceberg_tool.py schema`).
pub fn table_info(uri: &str, table: &str) -> Value {
    serde_json::from_str(&tool("schema", uri, &["--table", table])).expect("schema JSON")
}
