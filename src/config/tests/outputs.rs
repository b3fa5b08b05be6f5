//! The configuration of outputs: format conversion (Parquet, ORC), HTTP endpoint and Iceberg
//! destinations.

use super::*;

#[test]
fn format_conversion_defaults_follow_aws() {
    use crate::encode::columnar::HiveType;
    use crate::encode::parquet::ParquetCompression;
    let c = ok(&format!(
        "{MINIMAL}        data_format_conversion:
          schema:
            columns: [{{name: Id, type: bigint}}, {{name: Tags, type: 'ARRAY<STRING>'}}]
            table_name: events
"
    ));
    let d = &c.streams[0].destinations[0];
    assert_eq!(d.buffering.size_mib, 128, "AWS's default with conversion");
    assert_eq!(d.extension(), ".parquet");
    let conv = d.format_conversion.as_ref().expect("enabled by default");
    assert_eq!(
        conv.columns[0].name, "id",
        "column names are lowercase, as Glue's"
    );
    assert_eq!(
        conv.columns[1].ty,
        HiveType::Array(Box::new(HiveType::String))
    );
    let crate::spec::OutputSpec::Parquet(options) = &conv.output else {
        panic!("Parquet by default");
    };
    assert_eq!(options.compression, ParquetCompression::Snappy);
    assert_eq!(options.block_size_bytes, 256 * 1024 * 1024);
    assert_eq!(options.page_size_bytes, 1024 * 1024);
    assert_eq!(
        conv.input,
        crate::spec::InputSpec::DEFAULT,
        "OpenX's defaults"
    );
    assert_eq!(conv.table.table.as_deref(), Some("events"));

    let off = ok(&format!(
        "{MINIMAL}        compression: GZIP
        data_format_conversion:
          enabled: false
          schema: {{columns: [{{name: id, type: int}}]}}
"
    ));
    let d = &off.streams[0].destinations[0];
    assert!(d.format_conversion.is_none());
    assert_eq!(
        d.extension(),
        ".gz",
        "disabled: the compression's own rules"
    );
}

#[test]
fn format_conversion_errors_name_key_and_column() {
    let all = errors(&format!(
        "{MINIMAL}        data_format_conversion:
          schema:
            columns: [{{name: id, type: bigint}}, {{name: m, type: 'map<struct<a:int>,int>'}}]
          input: {{openx_json: {{}}, hive_json: {{}}}}
"
    ))
    .join("\n");
    assert!(
        all.contains("schema.columns[1].type: column \"m\": a map key must be a primitive type"),
        "{all}"
    );
    assert!(
        all.contains("exactly one of openx_json, hive_json is required"),
        "{all}"
    );
    let all = errors(&format!(
        "{MINIMAL}        data_format_conversion:
          schema: {{columns: [{{name: id, type: int}}]}}
          input: {{hive_json: {{timestamp_formats: ['yyyy-MM-dd zzz']}}}}
"
    ))
    .join("\n");
    assert!(
        all.contains("timestamp_formats[0]: pattern letter `z`"),
        "{all}"
    );
    let all = errors(&format!(
        "{MINIMAL}        data_format_conversion:
          schema: {{columns: [{{name: id, type: int}}]}}
          input: {{openx_json: {{column_to_json_key_mappings: {{nope: x}}}}}}
"
    ))
    .join("\n");
    assert!(
        all.contains("\"nope\" is not a column of the schema"),
        "{all}"
    );
    let all = errors(&format!(
        "{MINIMAL}        data_format_conversion:
          schema: {{columns: [{{name: a, type: int}}, {{name: b, type: int}}, {{name: c, type: int}}]}}
          input: {{openx_json: {{column_to_json_key_mappings: {{c: b}}}}}}
"
    ))
    .join("\n");
    assert!(
        all.contains("columns \"b\" and \"c\" are both filled from the JSON key \"b\""),
        "{all}"
    );
    let all = errors(&format!(
        "{MINIMAL}        data_format_conversion:
          schema: {{columns: [{{name: s, type: 'struct<`a.b`:int,a_b:int>'}}]}}
          input: {{openx_json: {{convert_dots_in_json_keys_to_underscores: true}}}}
"
    ))
    .join("\n");
    assert!(all.contains("struct fields \"a.b\" and \"a_b\""), "{all}");
    let all = errors(&format!(
        "{MINIMAL}        data_format_conversion:
          schema: {{columns: []}}
"
    ))
    .join("\n");
    assert!(
        all.contains("schema.columns: the schema needs at least one column"),
        "{all}"
    );
    let all = errors(&format!(
        "{MINIMAL}        data_format_conversion: {{}}
"
    ))
    .join("\n");
    assert!(
        all.contains("data_format_conversion.schema: required key is missing"),
        "{all}"
    );
}

#[test]
fn http_endpoint_destination_rules() {
    let stream = |destination: &str| {
        format!(
            "
delivery_streams:
  - name: x
    source: {{direct_put: {{}}}}
    destinations:
      - {destination}
"
        )
    };
    let c = ok(&stream(
        "{http_endpoint: {url: 'https://e.example/p', name: n, access_key: k, content_encoding: gzip, common_attributes: {b: '2', a: '1'}, retry_duration_seconds: 0}, s3_backup: {mode: alldata, bucket: bkt, prefix: 'p/', error_output_prefix: 'e/', compression: GZIP}, buffering: {size_mib: 64, interval_seconds: 0}}",
    ));
    let d = &c.streams[0].destinations[0];
    let Target::Http(h) = &d.target else {
        panic!("an HTTP endpoint: {:?}", d.target)
    };
    assert_eq!(h.url, "https://e.example/p");
    assert!(h.gzip);
    assert_eq!(
        h.common_attributes,
        vec![("b".into(), "2".into()), ("a".into(), "1".into())],
        "in the order written"
    );
    assert_eq!(
        (h.retry_duration_seconds, h.request_timeout_seconds),
        (0, 180)
    );
    assert_eq!(h.backup_mode, BackupMode::AllData);
    assert!(matches!(&h.backup, Target::S3 { bucket, .. } if bucket == "bkt"));
    assert_eq!(d.prefix.as_deref(), Some("p/"));
    assert_eq!(d.compression, Compression::Gzip);
    assert_eq!(
        (d.buffering.size_mib, d.buffering.interval_seconds),
        (64, 0)
    );
    // Defaults: FailedDataOnly, 5 MiB / 300 s, retry 300 s, no compression.
    let c = ok(&stream(
        "{http_endpoint: {url: 'http://127.0.0.1:9/'}, s3_backup: {directory: b}}",
    ));
    let d = &c.streams[0].destinations[0];
    let Target::Http(h) = &d.target else {
        panic!("an HTTP endpoint")
    };
    assert_eq!(h.backup_mode, BackupMode::FailedDataOnly);
    assert_eq!(h.retry_duration_seconds, 300);
    assert_eq!(
        (d.buffering.size_mib, d.buffering.interval_seconds),
        (5, 300)
    );
    for (destination, needle) in [
        (
            "{http_endpoint: {url: 'ftp://x'}, s3_backup: {directory: b}}",
            "must be an http:// or https:// URL",
        ),
        (
            "{http_endpoint: {url: 'https://x'}}",
            "s3_backup: required key is missing",
        ),
        (
            "{http_endpoint: {url: 'https://x'}, s3_backup: {}}",
            "exactly one of bucket, directory is required",
        ),
        (
            "{http_endpoint: {url: 'https://x'}, s3_backup: {directory: b}, buffering: {size_mib: 65}}",
            "size_mib: must be 1..=64",
        ),
        (
            "{http_endpoint: {url: 'https://x', retry_duration_seconds: 7201}, s3_backup: {directory: b}}",
            "retry_duration_seconds: must be 0..=7200",
        ),
        (
            "{http_endpoint: {url: 'https://x', content_encoding: ZIP}, s3_backup: {directory: b}}",
            "content_encoding: must be one of NONE | GZIP",
        ),
        (
            "{http_endpoint: {url: 'https://x'}, s3_backup: {directory: b, mode: Some}}",
            "mode: must be one of FailedDataOnly | AllData",
        ),
        (
            "{http_endpoint: {url: 'https://x'}, s3_backup: {directory: b}, prefix: 'p/'}",
            "prefix: is not for an http_endpoint destination",
        ),
        (
            "{http_endpoint: {url: 'https://x'}, s3_backup: {directory: b}, dynamic_partitioning: {enabled: true}}",
            "dynamic_partitioning: is not for an http_endpoint destination",
        ),
        (
            "{http_endpoint: {url: 'https://x'}, s3_backup: {directory: b}, delivery: exactly_once}",
            "exactly_once needs conditional writes",
        ),
        (
            "{http_endpoint: {url: 'https://x', common_attributes: {' ': v}}, s3_backup: {directory: b}}",
            "an attribute name must be 1-256 bytes long",
        ),
    ] {
        let all = errors_joined(&errors(&stream(destination)));
        assert!(all.contains(needle), "{destination}: {needle} in:\n{all}");
    }
}

#[test]
fn orc_output_rules() {
    let stream = |output: &str| {
        format!(
            "
relax_aws_limits: true
delivery_streams:
  - name: x
    source: {{direct_put: {{}}}}
    destinations:
      - directory: a
        data_format_conversion:
          schema: {{columns: [{{name: id, type: bigint}}, {{name: ts, type: timestamp}}]}}
          output: {output}
"
        )
    };
    let c = ok(&stream(
        "{orc: {compression: zlib, stripe_size_bytes: 8388608, format_version: V0_11, bloom_filter_columns: [id], padding_tolerance: 0.5}}",
    ));
    let d = &c.streams[0].destinations[0];
    let conv = d.format_conversion.as_ref().expect("converting");
    let crate::spec::OutputSpec::Orc {
        options: orc,
        stripe_buffer_bytes,
    } = &conv.output
    else {
        panic!("ORC");
    };
    assert_eq!(*stripe_buffer_bytes, 16 * 1024 * 1024);
    assert_eq!(orc.compression, crate::encode::orc::OrcCompression::Zlib);
    assert_eq!(orc.stripe_size_bytes, 8 * 1024 * 1024);
    assert!(orc.format_v0_11);
    assert_eq!(orc.bloom_filter_columns, vec!["id".to_string()]);
    assert_eq!(d.extension(), ".orc");
    let c = ok(&stream("{orc: {}}"));
    let orc = c.streams[0].destinations[0]
        .format_conversion
        .as_ref()
        .and_then(|c| match &c.output {
            crate::spec::OutputSpec::Orc { options, .. } => Some(options.clone()),
            crate::spec::OutputSpec::Parquet(_) => None,
        })
        .expect("ORC");
    assert_eq!(orc, crate::encode::orc::OrcOptions::DEFAULT);
    for (output, needle) in [
        (
            "{orc: {compression: GZIP}}",
            "compression: must be one of NONE | ZLIB | SNAPPY",
        ),
        (
            "{orc: {stripe_size_bytes: 1000}}",
            "stripe_size_bytes: must be",
        ),
        ("{orc: {row_index_stride: 10}}", "row_index_stride: must be"),
        (
            "{orc: {padding_tolerance: 2}}",
            "padding_tolerance: must be a number from 0 to 1",
        ),
        (
            "{orc: {bloom_filter_columns: [nope]}}",
            "\"nope\" is not a column of the schema",
        ),
        (
            "{orc: {}, parquet: {}}",
            "exactly one of parquet, orc (got both)",
        ),
        ("{}", "exactly one of parquet, orc is required"),
    ] {
        let all = errors_joined(&errors(&stream(output)));
        assert!(all.contains(needle), "{output}: {needle} in:\n{all}");
    }
}

#[test]
fn iceberg_destination_rules() {
    let stream = |destination: &str| {
        format!(
            "
delivery_streams:
  - name: x
    source: {{direct_put: {{}}}}
    destinations:
      - {destination}
"
        )
    };
    let c = ok(&stream(
        "{iceberg: {catalog: {sql: {uri: 'sqlite:////var/lib/f/i.db'}}, warehouse: 'file:///var/lib/f/w', tables: [{database: db, table: t, unique_keys: [id], partition_spec: [region], error_output_prefix: 'e/t/'}], routing: {query: '{destinationTableName: .t}'}, append_only: true}, s3_backup: {directory: b, prefix: 'p/', compression: GZIP}, error_output_prefix: 'e/', delivery: exactly_once}",
    ));
    let d = &c.streams[0].destinations[0];
    let Target::Iceberg(i) = &d.target else {
        panic!("Iceberg tables: {:?}", d.target)
    };
    assert_eq!(
        i.catalog,
        crate::spec::CatalogSpec::Sql {
            uri: "sqlite:////var/lib/f/i.db".into(),
            name: "default".into()
        }
    );
    assert_eq!(i.tables[0].unique_keys, vec!["id".to_string()]);
    assert_eq!(
        i.routing_query.as_deref(),
        Some("{destinationTableName: .t}")
    );
    assert!(i.append_only && !i.table_creation);
    assert_eq!(i.retry_duration_seconds, 300);
    assert!(matches!(&i.backup, Target::Directory(p) if p.as_os_str() == "b"));
    assert_eq!(d.error_output_prefix.as_deref(), Some("e/"));
    assert_eq!(d.prefix.as_deref(), Some("p/"));
    assert_eq!(
        (d.buffering.size_mib, d.buffering.interval_seconds),
        (5, 300)
    );
    assert_eq!(d.delivery, Delivery::ExactlyOnce);
    for (destination, needle) in [
        (
            "{iceberg: {catalog: {sql: {uri: '/no/scheme.db'}}}, s3_backup: {directory: b}}",
            "must be a sqlite URI",
        ),
        (
            "{iceberg: {catalog: {}}, s3_backup: {directory: b}}",
            "exactly one of sql, glue, s3_tables is required",
        ),
        (
            "{iceberg: {catalog: {rest: {uri: x}}}, s3_backup: {directory: b}}",
            "rest: is not supported",
        ),
        (
            "{iceberg: {catalog: {s3_tables: {table_bucket_arn: 'arn:aws:s3:::b'}}}, s3_backup: {directory: b}}",
            "must be a table bucket ARN",
        ),
        (
            "{iceberg: {catalog: {glue: {catalog_id: '12'}}}, s3_backup: {directory: b}}",
            "must be a 12-digit AWS account id",
        ),
        (
            "{iceberg: {catalog: {glue: {}}, tables: [{database: 'my-db', table: t}]}, s3_backup: {directory: b}}",
            "must be 1-255 letters, digits, `.` or `_`",
        ),
        (
            "{iceberg: {catalog: {glue: {}}, tables: [{database: d, table: t}, {database: d, table: t}]}, s3_backup: {directory: b}}",
            "d.t is configured twice",
        ),
        (
            "{iceberg: {catalog: {glue: {}}, table_creation: true}, s3_backup: {directory: b}}",
            "warehouse: is required with table_creation",
        ),
        (
            "{iceberg: {catalog: {glue: {}}, warehouse: 'gs://b/w'}, s3_backup: {directory: b}}",
            "must be file:///absolute/path or s3://bucket/prefix",
        ),
        (
            "{iceberg: {catalog: {glue: {}}, routing: {query: '{a: .x'}}, s3_backup: {directory: b}}",
            "routing.query",
        ),
        (
            "{iceberg: {catalog: {glue: {}}}, s3_backup: {directory: b, mode: AllData}}",
            "must be FailedDataOnly",
        ),
        (
            "{iceberg: {catalog: {glue: {}}}, s3_backup: {directory: b}, buffering: {size_mib: 129}}",
            "size_mib: must be 1..=128",
        ),
        (
            "{iceberg: {catalog: {glue: {}}}}",
            "s3_backup: required key is missing",
        ),
        (
            "{iceberg: {catalog: {glue: {}}}, s3_backup: {directory: b}, data_format_conversion: {}}",
            "data_format_conversion: is not for an iceberg destination",
        ),
    ] {
        let all = errors_joined(&errors(&stream(destination)));
        assert!(all.contains(needle), "{destination}: {needle} in:\n{all}");
    }
    // Every problem is placed at its line and column.
    let all = errors(&stream(
        "{iceberg: {catalog: {glue: {catalog_id: '12'}}}, s3_backup: {directory: b}}",
    ));
    assert!(
        all.iter()
            .any(|e| e.starts_with("t.yaml:6:") && e.contains("catalog_id")),
        "{all:?}"
    );
}
