//! The configuration of processing: the transform, dynamic partitioning, Lambda functions for
//! API streams, CloudWatch Logs input.

use super::*;

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
