//! The configuration file read as a whole: defaults, every error with its place, YAML rules,
//! names, environment variables; each capability's keys in its own file below.

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

mod outputs;
mod processing;
mod sources;

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
