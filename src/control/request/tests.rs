use serde_json::json;

use super::*;
use crate::config::transform::LambdaFunction;
use crate::spec::{Buffering, DynamicPartitioning, Runtime, Target};

fn input(v: serde_json::Value) -> CreateDeliveryStreamInput {
    serde_json::from_value(v).expect("a request of the model's shapes")
}

fn spec(v: serde_json::Value, local: &Local) -> Result<StreamSpec, InvalidRequest> {
    stream_spec(&input(v), local, None)
}

#[test]
fn a_create_request_becomes_the_stream_specification() {
    let req = json!({
        "DeliveryStreamName": "orders",
        "ExtendedS3DestinationConfiguration": {
            "BucketARN": "arn:aws:s3:::lake",
            "RoleARN": "arn:aws:iam::123:role/x",
            "Prefix": "orders/!{partitionKeyFromQuery:c}/",
            "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
            "CompressionFormat": "GZIP",
            "DynamicPartitioningConfiguration": {"Enabled": true, "RetryOptions": {"DurationInSeconds": 30}},
            "ProcessingConfiguration": {"Enabled": true, "Processors": [
                {"Type": "MetadataExtraction", "Parameters": [
                    {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{c: .c}"},
                    {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
                {"Type": "AppendDelimiterToRecord", "Parameters": []}]}
        }
    });
    let c = spec(req, &Local::default()).expect("valid");
    assert_eq!(c.name, "orders");
    assert_eq!(c.source, SourceSpec::DirectPut);
    assert_eq!(c.processing.metadata_query.as_deref(), Some("{c: .c}"));
    assert!(c.processing.append_delimiter_to_record);
    let d = &c.destinations[0];
    assert!(matches!(&d.target, Target::S3 { bucket, .. } if bucket == "lake"));
    assert_eq!(
        d.buffering,
        Buffering {
            size_mib: 64,
            interval_seconds: 60
        }
    );
    assert_eq!(
        d.dynamic_partitioning,
        Some(DynamicPartitioning {
            retry_duration_seconds: 30,
            ..DynamicPartitioning::DEFAULT
        })
    );
    assert_eq!(d.compression, crate::encode::Compression::Gzip);
}

#[test]
fn what_firehosed_cannot_do_is_refused_by_name() {
    let lambda_without_arn = json!({"DeliveryStreamName": "x", "ExtendedS3DestinationConfiguration": {
        "BucketARN": "arn:aws:s3:::b",
        "ProcessingConfiguration": {"Enabled": true, "Processors": [{"Type": "Lambda"}]}}});
    let message = spec(lambda_without_arn, &Local::default())
        .unwrap_err()
        .message;
    assert!(message.contains("Lambda processor"), "{message}");
    let redshift = json!({"DeliveryStreamName": "x", "RedshiftDestinationConfiguration": {
        "RoleARN": "arn:aws:iam::1:role/r", "ClusterJDBCURL": "jdbc:redshift://x",
        "CopyCommand": {"DataTableName": "t"}, "S3Configuration": {"RoleARN": "r", "BucketARN": "arn:aws:s3:::b"}}});
    let message = spec(redshift, &Local::default()).unwrap_err().message;
    assert!(
        message.contains("RedshiftDestinationConfiguration"),
        "{message}"
    );
    let msk = json!({"DeliveryStreamName": "x", "MSKSourceConfiguration": {
        "MSKClusterARN": "arn:aws:kafka:us-east-1:1:cluster/c/1", "TopicName": "t",
        "AuthenticationConfiguration": {"RoleARN": "r", "Connectivity": "PUBLIC"}},
        "ExtendedS3DestinationConfiguration": {"BucketARN": "arn:aws:s3:::b"}});
    let message = spec(msk, &Local::default()).unwrap_err().message;
    assert!(message.contains("MSKSourceConfiguration"), "{message}");
    let bad = json!({"DeliveryStreamName": "x", "ExtendedS3DestinationConfiguration": {"BucketARN": "lake"}});
    let message = spec(bad, &Local::default()).unwrap_err().message;
    assert!(message.contains("not an S3 bucket ARN"), "{message}");
    let two = json!({"DeliveryStreamName": "x",
        "ExtendedS3DestinationConfiguration": {"BucketARN": "arn:aws:s3:::b"},
        "HttpEndpointDestinationConfiguration": {"EndpointConfiguration": {"Url": "https://e"},
            "S3Configuration": {"BucketARN": "arn:aws:s3:::b"}}});
    let message = spec(two, &Local::default()).unwrap_err().message;
    assert!(message.starts_with("Only one destination"), "{message}");
}

#[test]
fn a_lambda_processor_becomes_its_functions_transform() {
    let mut local = Local::default();
    local.functions.insert(
        "upper".into(),
        LambdaFunction {
            runtime: Runtime::Wasm {
                module: "/opt/upper.wasm".into(),
                max_memory_mib: 64,
            },
            timeout_seconds: 30,
            concurrency: 3,
        },
    );
    let arn = "arn:aws:lambda:eu-west-1:111122223333:function:upper:live";
    let req = json!({"DeliveryStreamName": "x", "ExtendedS3DestinationConfiguration": {
        "BucketARN": "arn:aws:s3:::lake",
        "ProcessingConfiguration": {"Enabled": true, "Processors": [{"Type": "Lambda", "Parameters": [
            {"ParameterName": "LambdaArn", "ParameterValue": arn},
            {"ParameterName": "NumberOfRetries", "ParameterValue": "5"},
            {"ParameterName": "BufferSizeInMBs", "ParameterValue": "2"},
            {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": "10"}]}]}}});
    let checked = spec(req.clone(), &local).expect("valid");
    let t = checked.processing.transform.expect("a transform");
    assert_eq!(
        t.runtime,
        Runtime::Wasm {
            module: "/opt/upper.wasm".into(),
            max_memory_mib: 64
        }
    );
    assert_eq!(t.timeout_seconds, 30);
    assert_eq!(t.concurrency, 3);
    assert_eq!(t.number_of_retries, 5);
    assert_eq!(t.buffer_bytes, 2 * 1024 * 1024);
    assert_eq!(t.buffer_interval_seconds, 10);
    assert_eq!(t.lambda_arn("r", "a", "x"), arn);

    let mut disabled = req.clone();
    disabled["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"]["Enabled"] =
        json!(false);
    let shape = spec(disabled, &Local::default()).expect("disabled is ignored");
    assert_eq!(shape.processing, crate::spec::ProcessingSpec::default());

    let missing = spec(req.clone(), &Local::default()).unwrap_err().message;
    assert!(
        missing.contains("upper") && missing.contains("lambda_functions"),
        "{missing}"
    );
    let mut not_arn = req.clone();
    not_arn["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"]["Processors"][0]["Parameters"]
        [0]["ParameterValue"] = json!("upper");
    let message = spec(not_arn, &local).unwrap_err().message;
    assert!(message.contains("not a Lambda function ARN"), "{message}");
    let mut not_a_number = req;
    not_a_number["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"]["Processors"]
        [0]["Parameters"][1]["ParameterValue"] = json!("five");
    let message = spec(not_a_number, &local).unwrap_err().message;
    assert!(
        message.contains("number_of_retries: must be a whole number"),
        "{message}"
    );
}

#[test]
fn function_names_are_read_from_lambda_arns() {
    use crate::spec::check::function_name;
    assert_eq!(
        function_name("arn:aws:lambda:us-east-1:123456789012:function:my-fn"),
        Some("my-fn")
    );
    assert_eq!(
        function_name("arn:aws:lambda:us-east-1:123456789012:function:my_fn:$LATEST"),
        Some("my_fn")
    );
    assert_eq!(
        function_name("arn:aws-cn:lambda:cn-north-1:1:function:f:3"),
        Some("f")
    );
    for bad in [
        "my-fn",
        "arn:aws:lambda:us-east-1:1:layer:x",
        "arn:aws:s3:::bucket",
        "arn:aws:lambda:us-east-1:1:function:",
        "arn:aws:lambda:us-east-1:1:function:a b",
        "arn:aws:lambda:us-east-1:1:function:f:",
        "arn:aws:lambda:us-east-1:1:function:f:1:2",
    ] {
        assert_eq!(function_name(bad), None, "{bad}");
    }
}

#[test]
fn a_processor_type_given_twice_is_refused() {
    let m = json!({"Type": "AppendDelimiterToRecord", "Parameters": []});
    let req = json!({"DeliveryStreamName": "x", "ExtendedS3DestinationConfiguration": {
        "BucketARN": "arn:aws:s3:::lake",
        "ProcessingConfiguration": {"Enabled": true, "Processors": [m.clone(), m]}}});
    let message = spec(req, &Local::default()).unwrap_err().message;
    assert!(message.contains("more than once"), "{message}");
}

#[test]
fn updates_replace_the_members_they_give() {
    let current: ExtendedS3DestinationConfiguration = serde_json::from_value(json!({
        "BucketARN": "arn:aws:s3:::lake", "RoleARN": "r", "Prefix": "old/",
        "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60}}))
    .expect("shape");
    let update: ExtendedS3DestinationUpdate =
        serde_json::from_value(json!({"Prefix": "new/", "CompressionFormat": "GZIP"}))
            .expect("shape");
    let merged = merge_s3_update(&current, &update);
    assert_eq!(merged.prefix.as_deref(), Some("new/"));
    assert_eq!(
        merged.compression_format,
        Some(crate::shapes::CompressionFormat::Gzip)
    );
    assert_eq!(merged.role_arn.as_deref(), Some("r"), "kept");
    assert_eq!(
        merged.buffering_hints.and_then(|b| b.size_in_mbs),
        Some(5),
        "kept"
    );
}
