use super::*;
use crate::encode::Compression;
use crate::spec::{BackupMode, Buffering, Delivery, Target};

fn env(name: &str) -> Option<String> {
    match name {
        "BUCKET" => Some("my-logs".into()),
        "SIZE" => Some("64".into()),
        _ => None,
    }
}

fn ok(text: &str) -> Config {
    match parse("t.yaml", text, &env) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    match parse("t.yaml", text, &env) {
        Ok(_) => panic!("expected errors"),
        Err(LoadError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("unexpected error {e}"),
    }
}

const MINIMAL: &str = "
delivery_streams:
  - name: orders
    source: {direct_put: {}}
    destinations:
      - directory: ./out
";

#[test]
fn minimal_config_gets_aws_defaults() {
    let c = ok(MINIMAL);
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(c.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
    assert_eq!(c.aws.account_id, DEFAULT_ACCOUNT_ID);
    assert_eq!(c.spool, SpoolConfig::DEFAULT);
    assert_eq!(c.drain_timeout_seconds, 60);
    let s = &c.streams[0];
    assert_eq!(s.source, SourceSpec::DirectPut);
    let d = &s.destinations[0];
    assert_eq!(
        d.buffering,
        Buffering {
            size_mib: 5,
            interval_seconds: 300
        }
    );
    assert_eq!(d.compression, Compression::Uncompressed);
    assert_eq!(d.extension(), "");
    assert_eq!(d.tz(), chrono_tz::UTC);
    assert!(!s.processing.append_delimiter_to_record);
}

#[test]
fn every_key_of_the_backbone() {
    let c = ok("
listen: 127.0.0.1:0
state_dir: /tmp/fh
spool: {max_size_mib: 10, segment_size_mib: 2, fsync: false, disk_reserve_mib: 32}
drain_timeout_seconds: 5
aws: {region: eu-west-1, endpoint_url: 'http://127.0.0.1:9000', force_path_style: true, account_id: '123456789012'}
delivery_streams:
  - name: orders.v1_x-y
    source:
      direct_put: {}
    processing:
      append_delimiter_to_record: true
    destinations:
      - s3: {bucket: '${BUCKET}', endpoint_url: 'http://127.0.0.1:9001'}
        prefix: 'logs/!{timestamp:yyyy/MM/dd}/'
        error_output_prefix: 'errors/!{firehose:error-output-type}/'
        buffering: {size_mib: '${SIZE}', interval_seconds: 0}
        compression: gzip
        file_extension: .json.gz
        custom_time_zone: America/New_York
      - directory: out
        compression: hadoop_snappy
");
    assert_eq!(c.aws.region.as_deref(), Some("eu-west-1"));
    assert_eq!(
        c.spool,
        SpoolConfig {
            max_size_mib: 10,
            segment_size_mib: 2,
            fsync: false,
            disk_reserve_mib: 32,
        }
    );
    assert_eq!(c.drain_timeout_seconds, 5);
    assert_eq!(c.aws.force_path_style, Some(true));
    let s = &c.streams[0];
    assert!(s.processing.append_delimiter_to_record);
    let d = &s.destinations[0];
    assert_eq!(
        d.target,
        Target::S3 {
            bucket: "my-logs".into(),
            endpoint_url: Some("http://127.0.0.1:9001".into()),
            kms_key_arn: None,
        }
    );
    assert_eq!(
        d.buffering,
        Buffering {
            size_mib: 64,
            interval_seconds: 0
        }
    );
    assert_eq!(d.compression, Compression::Gzip);
    assert_eq!(d.extension(), ".json.gz");
    assert_eq!(d.tz(), chrono_tz::America::New_York);
    assert_eq!(s.destinations[1].compression, Compression::HadoopSnappy);
    assert_eq!(s.destinations[1].extension(), ".hsnappy");
}

#[test]
fn all_errors_in_one_run_with_positions() {
    let errs = errors(
        "
listen: 127.0.0.1:4573
bogus: 1
delivery_streams:
  - name: a
    source: {direct_put: {}}
    destinations:
      - directory: out
        buffering: {size_mib: 500, interval_seconds: 901}
        compresion: GZIP
  - name: a
    destinations:
      - s3: {}
",
    );
    let joined = errors_joined(&errs);
    assert!(errs.contains(&"t.yaml:3:1: bogus: unknown key; allowed here: api_iceberg_catalog, api_s3_directory, auth, aws, delivery_streams, drain_timeout_seconds, glue_catalog_dir, lambda_functions, listen, metrics_listen, relax_aws_limits, server, spool, state_dir, tls".to_string()), "{joined}");
    assert!(errs.contains(&"t.yaml:9:31: delivery_streams[0].destinations[0].buffering.size_mib: must be 1..=128 (got 500)".to_string()), "{joined}");
    assert!(joined.contains("delivery_streams[0].destinations[0].buffering.interval_seconds: must be 0..=900 (got 901)"), "{joined}");
    assert!(joined.contains("t.yaml:10:9: delivery_streams[0].destinations[0].compresion: unknown key (did you mean `compression`?)"), "{joined}");
    assert!(
        joined.contains("delivery_streams[1].source: required key is missing"),
        "{joined}"
    );
    assert!(
        joined.contains("delivery_streams[1].destinations[0].s3.bucket: required key is missing"),
        "{joined}"
    );
    assert!(joined.contains("delivery_streams[1].name: duplicate delivery stream name \"a\" (first defined on line 5)"), "{joined}");
}

fn errors_joined(errs: &[String]) -> String {
    errs.join("\n")
}

#[test]
fn type_and_value_errors() {
    let errs = errors(
        "
listen: localhost
state_dir: [a]
aws: {force_path_style: maybe, account_id: '12'}
delivery_streams:
  - name: 'bad name!'
    source: {direct_put: {}, kinesis_stream: {stream_name: x}}
    destinations:
      - directory: out
        s3: {bucket: Bad_Bucket}
        compression: lz4
        file_extension: gz
        custom_time_zone: Mars/Olympus
",
    );
    let joined = errors_joined(&errs);
    for needle in [
        "listen: must be IP:PORT",
        "state_dir: expected a value, got a list",
        "aws.force_path_style: must be true or false",
        "aws.account_id: must be 12 digits",
        "delivery_streams[0].name: must match [a-zA-Z0-9_.-]{1,64}",
        "source: exactly one of direct_put, kinesis_stream (got both)",
        "exactly one of s3, directory (got both)",
        "compression: must be one of UNCOMPRESSED | GZIP | ZIP | Snappy | HADOOP_SNAPPY (got \"lz4\")",
        "file_extension: must start with `.`",
        "custom_time_zone: must be an IANA time zone",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
}

#[test]
fn unset_environment_variable_is_an_error_at_its_place() {
    let errs = errors(
        "
delivery_streams:
  - name: x
    source: {direct_put: {}}
    destinations:
      - s3: {bucket: '${NOT_SET}'}
",
    );
    assert_eq!(
        errs,
        vec![
            "t.yaml:6:22: delivery_streams[0].destinations[0].s3.bucket: environment variable NOT_SET is not set (write ${NOT_SET:-default} for a default)"
        ]
    );
}

#[test]
fn prefix_rules() {
    let errs = errors(
        "
delivery_streams:
  - name: x
    source: {direct_put: {}}
    destinations:
      - directory: a
        prefix: 'logs/!{timestamp:yyyy}/'
      - directory: b
        prefix: 'logs/!{firehose:error-output-type}/'
      - directory: c
        prefix: 'logs/!{partitionKeyFromQuery:id}/'
        error_output_prefix: 'err/!{firehose:error-output-type}/'
      - directory: d
        error_output_prefix: 'err/!{timestamp:yyyy}/'
      - directory: e
        prefix: 'logs/!{nope:x}/'
",
    );
    let joined = errors_joined(&errs);
    for needle in [
        "destinations[0].error_output_prefix: error_output_prefix is required when prefix contains expressions",
        "destinations[1].prefix: !{firehose:error-output-type} is only allowed in error_output_prefix",
        "destinations[2].prefix: partitionKeyFromQuery and partitionKeyFromLambda need dynamic_partitioning enabled",
        "destinations[3].error_output_prefix: an error_output_prefix with expressions must contain !{firehose:error-output-type}",
        "destinations[4].prefix: `!{nope:x}`: unknown namespace",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
}

#[test]
fn yaml_syntax_error_has_position() {
    let errs = errors("delivery_streams: [\n  {name: x\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("t.yaml:"), "{errs:?}");
}

#[test]
fn transform_keys_with_defaults_and_ranges() {
    use crate::spec::Runtime;
    let c = ok("
delivery_streams:
  - name: x
    source: {direct_put: {}}
    processing:
      transform:
        subprocess:
          command: [python3, runner.py, handler.lambda_handler]
          working_directory: /srv/t
          env: {LOG_LEVEL: debug}
    destinations:
      - directory: a
        source_record_backup: {prefix: 'raw/!{timestamp:yyyy}/'}
");
    let t = c.streams[0]
        .processing
        .transform
        .as_ref()
        .expect("transform");
    assert_eq!(t.buffer_bytes, 1024 * 1024);
    assert_eq!(t.buffer_interval_seconds, 60);
    assert_eq!(t.number_of_retries, 3);
    assert_eq!(t.timeout_seconds, 60);
    assert_eq!(t.concurrency, 1);
    match &t.runtime {
        Runtime::Subprocess {
            command,
            env,
            working_directory,
        } => {
            assert_eq!(command.len(), 3);
            assert_eq!(env.get("LOG_LEVEL").map(String::as_str), Some("debug"));
            assert_eq!(
                working_directory.as_deref(),
                Some(std::path::Path::new("/srv/t"))
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(c.streams[0].destinations[0].source_record_backup.is_some());

    let c = ok("
delivery_streams:
  - name: x
    source: {direct_put: {}}
    processing:
      transform:
        wasm: {module: t.wasm}
        buffer_size_mib: 0.2
        buffer_interval_seconds: 0
        number_of_retries: 0
        timeout_seconds: 900
        concurrency: 32
    destinations: [{directory: a}]
");
    let t = c.streams[0]
        .processing
        .transform
        .as_ref()
        .expect("transform");
    assert_eq!(t.buffer_bytes, 209_715);
    assert_eq!(t.concurrency, 32);
    assert_eq!(
        t.runtime,
        Runtime::Wasm {
            module: "t.wasm".into(),
            max_memory_mib: 128
        }
    );

    let errs = errors(
        "
delivery_streams:
  - name: x
    source: {direct_put: {}}
    processing:
      transform:
        subprocess: {command: []}
        wasm: {module: t.wasm, max_memory_mib: 0}
        buffer_size_mib: 4
        buffer_interval_seconds: 901
        number_of_retries: 301
        timeout_seconds: 0
        concurrency: 0
    destinations:
      - directory: a
        source_record_backup: {prefix: 'raw/!{firehose:error-output-type}/'}
",
    );
    let all = errors_joined(&errs);
    for needle in [
        "processing.transform: exactly one of subprocess, wasm",
        "buffer_size_mib: must be a number 0.2..=3",
        "buffer_interval_seconds: must be 0..=900",
        "number_of_retries: must be 0..=300",
        "timeout_seconds: must be 1..=900",
        "concurrency: must be 1..=32",
        "source_record_backup.prefix: only !{timestamp:...}",
    ] {
        assert!(all.contains(needle), "{needle} in:\n{all}");
    }
}

#[test]
fn dynamic_partitioning_rules() {
    let stream = |processing: &str, dest: &str| {
        format!(
            "
delivery_streams:
  - name: x
    source: {{direct_put: {{}}}}
    processing: {processing}
    destinations:
      - directory: a
{dest}
"
        )
    };
    // A valid setup: jq keys, transform keys, AWS's minimums.
    let c = ok(&stream(
        "{metadata_extraction: {query: '{c: .customer.id, y: (.ts | strftime(\"%Y\"))}'}, transform: {subprocess: {command: [cat]}}}",
        "        prefix: 'c=!{partitionKeyFromQuery:c}/l=!{partitionKeyFromLambda:l}/!{timestamp:yyyy}/'
        error_output_prefix: 'errors/!{firehose:error-output-type}/'
        dynamic_partitioning: {enabled: true}
        buffering: {size_mib: 64, interval_seconds: 60}",
    ));
    let d = &c.streams[0].destinations[0];
    let dp = d.dynamic_partitioning.expect("enabled");
    assert_eq!(dp.retry_duration_seconds, 300);
    assert_eq!(dp.max_active_partitions, 500);
    assert!(c.streams[0].processing.metadata_query.is_some());

    let all = errors_joined(&errors(&stream(
        "{metadata_extraction: {query: '{c: .c'}}",
        "        prefix: 'c=!{partitionKeyFromQuery:c}/'
        error_output_prefix: 'errors/'
        dynamic_partitioning: {enabled: true, retry_duration_seconds: 7201, max_active_partitions: 0}",
    )));
    for needle in [
        "metadata_extraction.query: is not a valid jq query",
        "retry_duration_seconds: must be 0..=7200",
        "max_active_partitions: must be 1..=10000",
        "error_output_prefix: an error_output_prefix must contain !{firehose:error-output-type} when prefix contains expressions",
    ] {
        assert!(all.contains(needle), "{needle} in:\n{all}");
    }

    let all = errors_joined(&errors(&stream(
        "{}",
        "        prefix: 'c=!{partitionKeyFromQuery:c}/l=!{partitionKeyFromLambda:l}/'
        error_output_prefix: 'errors/!{firehose:error-output-type}/'
        dynamic_partitioning: {enabled: true}
        buffering: {size_mib: 5, interval_seconds: 10}",
    )));
    for needle in [
        "!{partitionKeyFromQuery:...} needs processing.metadata_extraction.query",
        "!{partitionKeyFromLambda:...} needs processing.transform",
        "buffering.size_mib: BufferingHints.SizeInMBs must be at least 64 when Dynamic Partitioning is enabled.",
        "buffering.interval_seconds: BufferingHints.IntervalInSeconds must be at least 60 when Dynamic Partitioning is enabled.",
    ] {
        assert!(all.contains(needle), "{needle} in:\n{all}");
    }

    // Partition keys without dynamic partitioning, and dynamic partitioning without keys.
    let all = errors_joined(&errors(&stream(
        "{}",
        "        prefix: 'c=!{partitionKeyFromQuery:c}/'
        error_output_prefix: 'errors/!{firehose:error-output-type}/'",
    )));
    assert!(all.contains("need dynamic_partitioning enabled"), "{all}");
    let all = errors_joined(&errors(&stream(
        "{}",
        "        prefix: 'plain/'
        dynamic_partitioning: {enabled: true}
        buffering: {size_mib: 64, interval_seconds: 60}",
    )));
    assert!(
        all.contains("with dynamic_partitioning enabled the prefix must use"),
        "{all}"
    );

    // relax_aws_limits lets tests use small buffers.
    let text = format!(
        "relax_aws_limits: true{}",
        stream(
            "{metadata_extraction: {query: '{c: .c}'}}",
            "        prefix: 'c=!{partitionKeyFromQuery:c}/'
        error_output_prefix: 'errors/!{firehose:error-output-type}/'
        dynamic_partitioning: {enabled: true}
        buffering: {size_mib: 1, interval_seconds: 0}",
        )
    );
    assert!(ok(&text).relax_aws_limits);
}

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
fn stream_names_that_are_folder_names_of_their_own_are_refused() {
    // A stream's name is a folder under state_dir: `.` and `..` would be state_dir itself.
    for bad in [".", ".."] {
        assert!(!valid_stream_name(bad), "{bad}");
    }
    for good in ["a", "a.b", "..a", "x-1_y.z"] {
        assert!(valid_stream_name(good), "{good}");
    }
}

#[test]
fn lambda_functions_are_checked_like_transforms() {
    let c = ok("
delivery_streams: []
lambda_functions:
  upper-case:
    wasm: {module: /opt/upper.wasm}
  py_fn:
    subprocess: {command: [python3, handler.py]}
    timeout_seconds: 5
");
    assert_eq!(c.lambda_functions.len(), 2);
    assert_eq!(c.lambda_functions["py_fn"].timeout_seconds, 5);
    assert_eq!(c.lambda_functions["upper-case"].timeout_seconds, 60);
    let errs = errors(
        "
lambda_functions:
  'bad name':
    wasm: {module: x.wasm}
  both:
    wasm: {module: x.wasm}
    subprocess: {command: [x]}
  slow:
    wasm: {module: x.wasm}
    timeout_seconds: 901
  extra:
    wasm: {module: x.wasm}
    number_of_retries: 3
",
    );
    let joined = errors_joined(&errs);
    assert!(
        joined.contains("lambda_functions.bad name: is not a Lambda function name"),
        "{joined}"
    );
    assert!(
        joined.contains("lambda_functions.both: exactly one of subprocess, wasm is required"),
        "{joined}"
    );
    assert!(
        joined.contains("lambda_functions.slow.timeout_seconds: must be 1..=900 (got 901)"),
        "{joined}"
    );
    assert!(
        joined.contains("lambda_functions.extra.number_of_retries: unknown key"),
        "{joined}"
    );
    let errs = errors(
        "
delivery_streams:
  - name: a
    source: {direct_put: {}}
    processing:
      transform:
        wasm: {module: x.wasm}
        lambda_arn: 'arn:aws:s3:::nope'
    destinations: [{directory: out}]
",
    );
    assert!(
        errors_joined(&errs)
            .contains("processing.transform.lambda_arn: must be a Lambda function ARN"),
        "{errs:?}"
    );
}

#[test]
fn an_empty_file_or_one_without_delivery_streams_is_an_error() {
    for text in ["", "\n\n", "# only a comment\n", "---\n"] {
        let errs = errors(text);
        assert_eq!(errs.len(), 1, "{text:?}: {errs:?}");
        assert!(errs[0].contains("the configuration is empty"), "{errs:?}");
    }
    let errs = errors("listen: 127.0.0.1:4573\nstate_dir: ./s\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("delivery_streams: required key is missing"),
        "{errs:?}"
    );
    // No stream in the file is fine when it says so (every stream made through the API).
    assert_eq!(ok("delivery_streams: []\n").streams.len(), 0);
}

#[test]
fn keys_without_a_value_are_errors_that_name_the_key() {
    let errs = errors(
        "listen:
state_dir: ~
delivery_streams:
  - name: a
    source: {direct_put: {}}
    destinations:
      - directory: out
        buffering: ~
        compression:
",
    );
    let joined = errors_joined(&errs);
    for key in [
        "t.yaml:1:1: listen: has no value",
        "t.yaml:2:1: state_dir: has no value",
        "delivery_streams[0].destinations[0].buffering: has no value",
        "delivery_streams[0].destinations[0].compression: has no value",
    ] {
        assert!(joined.contains(key), "{key} in:\n{joined}");
    }
    assert_eq!(errs.len(), 4, "one error each:\n{joined}");
}

#[test]
fn a_duplicate_key_is_reported_once_as_a_duplicate() {
    let errs = errors(
        "delivery_streams: []
listen: 127.0.0.1:1
listen: 127.0.0.1:2
",
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("t.yaml:3:1: listen: duplicate key (first written on line 2)"),
        "{errs:?}"
    );
}

#[test]
fn a_jq_query_that_does_not_compile_says_where_once() {
    let errs = errors(
        "delivery_streams:
  - name: a
    source: {direct_put: {}}
    processing:
      metadata_extraction: {query: '{c: .c'}
    destinations:
      - directory: out
        prefix: 'c=!{partitionKeyFromQuery:c}/'
        error_output_prefix: 'e/!{firehose:error-output-type}/'
        dynamic_partitioning: {enabled: true}
        buffering: {size_mib: 64, interval_seconds: 60}
",
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("processing.metadata_extraction.query: is not a valid jq query: expected"),
        "{errs:?}"
    );
    assert!(errs[0].contains("at character"), "{errs:?}");
}

#[test]
fn kinesis_leases_are_checked_and_one_table_serves_one_stream() {
    let stream = |name: &str, leases: &str| {
        format!(
            "
  - name: {name}
    source:
      kinesis_stream:
        stream_name: s
        leases: {leases}
    destinations:
      - directory: out
"
        )
    };
    let good = ok(&format!(
        "delivery_streams:{}",
        stream("a", "{table: fleet-a, worker_id: w1, failover_seconds: 6}")
    ));
    let SourceSpec::Kinesis(k) = &good.streams[0].source else {
        panic!("a Kinesis source")
    };
    let l = k.leases.as_ref().expect("leases");
    assert_eq!(
        (
            l.table.as_str(),
            l.create_table,
            l.worker_id.as_deref(),
            l.failover_seconds
        ),
        ("fleet-a", true, Some("w1"), 6)
    );
    let errs = errors_joined(&errors(&format!(
        "delivery_streams:{}{}{}",
        stream("a", "{table: t!, failover_seconds: 0, create_table: maybe}"),
        stream("b", "{table: shared}"),
        stream("c", "{table: shared, tabel: x}"),
    )));
    for needle in [
        "leases.table: must match [a-zA-Z0-9_.-]{3,255}",
        "leases.failover_seconds: must be 1..=600 (got 0)",
        "leases.create_table: must be true or false",
        "lease table \"shared\" is already used by delivery stream \"b\"",
        "tabel",
    ] {
        assert!(errs.contains(needle), "missing {needle:?} in:\n{errs}");
    }
}

#[test]
fn enhanced_fan_out_names_its_consumer_by_kinesis_rules() {
    let stream = |efo: &str| {
        format!(
            "delivery_streams:
  - name: a
    source:
      kinesis_stream:
        stream_name: s
        enhanced_fan_out: {efo}
    destinations:
      - directory: out
"
        )
    };
    let good = ok(&stream("{consumer_name: fleet.v1_a-b}"));
    let SourceSpec::Kinesis(k) = &good.streams[0].source else {
        panic!("a Kinesis source")
    };
    let f = k.enhanced_fan_out.as_ref().expect("fan-out");
    assert_eq!(f.consumer_name, "fleet.v1_a-b");
    for (bad, needle) in [
        (
            "{consumer_name: 'a b'}",
            "enhanced_fan_out.consumer_name: must match [a-zA-Z0-9_.-]{1,128}",
        ),
        (
            "{consumer_name: ''}",
            "enhanced_fan_out.consumer_name: must match",
        ),
        ("{}", "enhanced_fan_out.consumer_name: required"),
        ("{consumer_name: c, consumer_arn: x}", "consumer_arn"),
    ] {
        let errs = errors_joined(&errors(&stream(bad)));
        assert!(
            errs.contains(needle),
            "{bad}: missing {needle:?} in:\n{errs}"
        );
    }
    let long = format!("{{consumer_name: {}}}", "c".repeat(129));
    assert!(errors_joined(&errors(&stream(&long))).contains("must match"));
}

#[test]
fn delivery_is_at_least_once_by_default_and_exactly_once_for_every_source() {
    let dest = |delivery: &str| {
        format!(
            "delivery_streams:
  - name: a
    source: {{direct_put: {{}}}}
    destinations:
      - directory: out
        {delivery}
"
        )
    };
    let default = ok(&dest(""));
    assert_eq!(
        default.streams[0].destinations[0].delivery,
        Delivery::AtLeastOnce
    );
    let eo = ok(&dest("delivery: exactly_once"));
    assert_eq!(
        eo.streams[0].destinations[0].delivery,
        Delivery::ExactlyOnce
    );
    let errs = errors_joined(&errors(&dest("delivery: twice")));
    assert!(
        errs.contains("delivery: must be one of at_least_once | exactly_once (got \"twice\")"),
        "{errs}"
    );
    let kinesis = |leases: &str| {
        format!(
            "delivery_streams:
  - name: k
    source: {{kinesis_stream: {{stream_name: s{leases}}}}}
    destinations:
      - directory: out
        delivery: exactly_once
"
        )
    };
    let files = ok(&kinesis(""));
    assert_eq!(
        files.streams[0].destinations[0].delivery,
        Delivery::ExactlyOnce,
        "per-shard objects, checkpoints in files"
    );
    let fleet = ok(&kinesis(", leases: {table: ks_leases}"));
    assert_eq!(
        fleet.streams[0].destinations[0].delivery,
        Delivery::ExactlyOnce,
        "journals in the lease items"
    );
}

#[test]
fn cloudwatch_logs_processing_rules() {
    let stream = |processing: &str| {
        format!(
            "
delivery_streams:
  - name: x
    source: {{direct_put: {{}}}}
    processing: {processing}
    destinations:
      - directory: a
"
        )
    };
    let c = ok(&stream(
        "{decompression: GZIP, cloudwatch_logs: {data_message_extraction: true}}",
    ));
    assert!(c.streams[0].processing.decompression);
    assert!(c.streams[0].processing.cloudwatch_logs_extraction);
    let c = ok(&stream("{decompression: GZIP}"));
    assert!(c.streams[0].processing.decompression);
    assert!(!c.streams[0].processing.cloudwatch_logs_extraction);
    for (processing, needle) in [
        (
            "{decompression: ZIP}",
            "processing.decompression: must be one of GZIP",
        ),
        (
            "{cloudwatch_logs: {data_message_extraction: true}}",
            "processing.cloudwatch_logs: needs processing.decompression: GZIP",
        ),
        (
            "{decompression: GZIP, cloudwatch_logs: {data_message_extraction: false}}",
            "data_message_extraction: must be true",
        ),
        (
            "{decompression: GZIP, cloudwatch_logs: {}}",
            "data_message_extraction",
        ),
        (
            "{decompression: GZIP, record_deaggregation: json, cloudwatch_logs: {data_message_extraction: true}}",
            "cannot be combined with record_deaggregation",
        ),
    ] {
        let all = errors_joined(&errors(&stream(processing)));
        assert!(all.contains(needle), "{processing}: {needle} in:\n{all}");
    }
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
