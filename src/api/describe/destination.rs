//! A destination's description: S3 (described both as S3DestinationDescription and
//! ExtendedS3DestinationDescription, as AWS describes every S3 stream) or an HTTP endpoint,
//! with the stream's processors, the format conversion and what was sent echoed.

use base64::Engine as _;

use super::View;
use crate::shapes::{
    BufferingHints, CloudWatchLoggingOptions, CompressionFormat, ContentEncoding,
    DataFormatConversionConfiguration, Deserializer, DestinationDescription,
    DynamicPartitioningConfiguration, EncryptionConfiguration, ExtendedS3DestinationConfiguration,
    ExtendedS3DestinationDescription, HiveJsonSerDe, HttpEndpointBufferingHints,
    HttpEndpointCommonAttribute, HttpEndpointDescription, HttpEndpointDestinationConfiguration,
    HttpEndpointDestinationDescription, HttpEndpointRequestConfiguration, HttpEndpointRetryOptions,
    HttpEndpointS3BackupMode, InputFormatConfiguration, KMSEncryptionConfig, NoEncryptionConfig,
    OpenXJsonSerDe, OrcSerDe, OutputFormatConfiguration, ParquetSerDe, ProcessingConfiguration,
    Processor, ProcessorParameter, ProcessorParameterName, ProcessorType, RetryOptions,
    S3BackupMode, S3DestinationConfiguration, S3DestinationDescription, SchemaConfiguration,
    Serializer,
};
use crate::spec::{
    ConversionSpec, Deaggregation, DestinationSpec, HttpEndpoint, InputSpec, OutputSpec, Target,
};

/// Destination `index` of the stream.
pub(super) fn description(
    index: usize,
    d: &DestinationSpec,
    view: &View,
) -> DestinationDescription {
    let destination_id = format!("destinationId-{:012}", index + 1);
    if let Target::Http(h) = &d.target {
        return DestinationDescription {
            destination_id,
            http_endpoint_destination_description: Some(http(d, h, view)),
            ..empty(String::new())
        };
    }
    if let Target::Iceberg(i) = &d.target {
        return DestinationDescription {
            destination_id,
            iceberg_destination_description: Some(super::iceberg::description(d, i, view)),
            ..empty(String::new())
        };
    }
    let sent = view
        .sent()
        .and_then(|r| r.extended_s3_destination_configuration.as_ref());
    let s3 = s3_description(d, &d.target, view, sent.map(Sent::Extended));
    let extended = extended(d, &s3, view, sent);
    DestinationDescription {
        destination_id,
        s3_destination_description: Some(s3),
        extended_s3_destination_description: Some(extended),
        ..empty(String::new())
    }
}

/// A DestinationDescription with only its id.
fn empty(destination_id: String) -> DestinationDescription {
    DestinationDescription {
        destination_id,
        s3_destination_description: None,
        extended_s3_destination_description: None,
        redshift_destination_description: None,
        elasticsearch_destination_description: None,
        amazonopensearchservice_destination_description: None,
        splunk_destination_description: None,
        http_endpoint_destination_description: None,
        snowflake_destination_description: None,
        amazon_open_search_serverless_destination_description: None,
        iceberg_destination_description: None,
    }
}

/// Where an S3 description's echoed members were sent: an S3 destination's configuration, or
/// an HTTP endpoint's S3Configuration.
#[derive(Clone, Copy)]
pub(super) enum Sent<'a> {
    Extended(&'a ExtendedS3DestinationConfiguration),
    Backup(&'a S3DestinationConfiguration),
}

impl Sent<'_> {
    fn role_arn(self) -> Option<String> {
        match self {
            Sent::Extended(s) => s.role_arn.clone(),
            Sent::Backup(s) => s.role_arn.clone(),
        }
    }

    fn logging(self) -> Option<CloudWatchLoggingOptions> {
        match self {
            Sent::Extended(s) => s.cloud_watch_logging_options.clone(),
            Sent::Backup(s) => s.cloud_watch_logging_options.clone(),
        }
    }
}

pub(super) fn logging_off() -> CloudWatchLoggingOptions {
    CloudWatchLoggingOptions {
        enabled: Some(false),
        ..CloudWatchLoggingOptions::default()
    }
}

/// The members both S3 descriptions have (and an HTTP endpoint's backup has), of `target`.
pub(super) fn s3_description(
    d: &DestinationSpec,
    target: &Target,
    view: &View,
    sent: Option<Sent<'_>>,
) -> S3DestinationDescription {
    let no_encryption = EncryptionConfiguration {
        no_encryption_config: Some(NoEncryptionConfig::NoEncryption),
        kms_encryption_config: None,
    };
    // A directory destination (configuration file only) has no bucket; AWS's shape needs
    // one, so it is described with a placeholder name (docs/api.md).
    let (bucket_arn, encryption) = match target {
        Target::S3 {
            bucket,
            kms_key_arn,
            ..
        } => (
            format!("arn:aws:s3:::{bucket}"),
            match kms_key_arn {
                Some(key) => EncryptionConfiguration {
                    no_encryption_config: None,
                    kms_encryption_config: Some(KMSEncryptionConfig {
                        awskms_key_arn: Some(key.clone()),
                    }),
                },
                None => no_encryption,
            },
        ),
        Target::Directory(_) | Target::Http(_) | Target::Iceberg(_) => (
            "arn:aws:s3:::firehosed-local-directory".to_string(),
            no_encryption,
        ),
    };
    S3DestinationDescription {
        role_arn: sent
            .and_then(Sent::role_arn)
            .unwrap_or_else(|| view.default_role()),
        bucket_arn,
        prefix: d.prefix.clone(),
        error_output_prefix: d.error_output_prefix.clone(),
        buffering_hints: BufferingHints {
            size_in_mbs: Some(d.buffering.size_mib as i64),
            interval_in_seconds: Some(d.buffering.interval_seconds as i64),
        },
        compression_format: compression(d.compression),
        encryption_configuration: encryption,
        cloud_watch_logging_options: Some(sent.and_then(Sent::logging).unwrap_or_else(logging_off)),
    }
}

fn compression(c: crate::encode::Compression) -> CompressionFormat {
    use crate::encode::Compression as C;
    match c {
        C::Uncompressed => CompressionFormat::Uncompressed,
        C::Gzip => CompressionFormat::Gzip,
        C::Zip => CompressionFormat::Zip,
        C::Snappy => CompressionFormat::Snappy,
        C::HadoopSnappy => CompressionFormat::HadoopSnappy,
    }
}

/// The ExtendedS3DestinationDescription: the S3 members, the processors, the source-record
/// backup, and its own members, each left out where AWS leaves it out.
fn extended(
    d: &DestinationSpec,
    s3: &S3DestinationDescription,
    view: &View,
    sent: Option<&ExtendedS3DestinationConfiguration>,
) -> ExtendedS3DestinationDescription {
    let backup = backup_description(d, s3, sent);
    // Described when it was given (an API stream) or is not UTC (a file stream).
    let custom_time_zone = match sent {
        Some(s) => s.custom_time_zone.clone(),
        None => (d.time_zone != "UTC").then(|| d.time_zone.clone()),
    };
    let extension = d.extension();
    let dynamic_partitioning_configuration = match &d.dynamic_partitioning {
        Some(p) => Some(DynamicPartitioningConfiguration {
            enabled: Some(true),
            retry_options: Some(RetryOptions {
                duration_in_seconds: Some(p.retry_duration_seconds as i64),
            }),
        }),
        None => sent.and_then(|s| s.dynamic_partitioning_configuration.clone()),
    };
    let sent_conversion = sent.and_then(|s| s.data_format_conversion_configuration.as_ref());
    let data_format_conversion_configuration = match &d.format_conversion {
        Some(c) => Some(conversion(c, &s3.role_arn, sent_conversion)),
        // Not converting, but it was sent (`{"Enabled": false}`): described as sent.
        None => sent_conversion.cloned(),
    };
    ExtendedS3DestinationDescription {
        role_arn: s3.role_arn.clone(),
        bucket_arn: s3.bucket_arn.clone(),
        prefix: s3.prefix.clone(),
        error_output_prefix: s3.error_output_prefix.clone(),
        buffering_hints: s3.buffering_hints.clone(),
        compression_format: s3.compression_format,
        encryption_configuration: s3.encryption_configuration.clone(),
        cloud_watch_logging_options: s3.cloud_watch_logging_options.clone(),
        processing_configuration: Some(processing(view)),
        s3_backup_mode: Some(match backup {
            Some(_) => S3BackupMode::Enabled,
            None => S3BackupMode::Disabled,
        }),
        s3_backup_description: backup,
        data_format_conversion_configuration,
        dynamic_partitioning_configuration,
        file_extension: (extension != d.compression.extension()).then_some(extension),
        custom_time_zone,
    }
}

/// S3BackupDescription, when source records are backed up: written by the destination's own
/// sink (its bucket and encryption), with the role and logging the backup was sent with.
fn backup_description(
    d: &DestinationSpec,
    s3: &S3DestinationDescription,
    sent: Option<&ExtendedS3DestinationConfiguration>,
) -> Option<S3DestinationDescription> {
    let prefix = d.source_record_backup.clone()?;
    let sent = sent.and_then(|s| s.s3_backup_configuration.as_ref());
    Some(S3DestinationDescription {
        role_arn: sent
            .and_then(|b| b.role_arn.clone())
            .unwrap_or_else(|| s3.role_arn.clone()),
        cloud_watch_logging_options: sent
            .and_then(|b| b.cloud_watch_logging_options.clone())
            .or_else(|| s3.cloud_watch_logging_options.clone()),
        prefix: Some(prefix),
        error_output_prefix: None,
        ..s3.clone()
    })
}

/// HttpEndpointDestinationDescription. The AccessKey is never described (AWS leaves it out);
/// the backup's S3DestinationDescription has the destination's buffering, which its objects
/// are written with.
fn http(d: &DestinationSpec, h: &HttpEndpoint, view: &View) -> HttpEndpointDestinationDescription {
    let sent: Option<&HttpEndpointDestinationConfiguration> = view
        .sent()
        .and_then(|r| r.http_endpoint_destination_configuration.as_ref());
    let common_attributes = (!h.common_attributes.is_empty()).then(|| {
        h.common_attributes
            .iter()
            .map(|(k, v)| HttpEndpointCommonAttribute {
                attribute_name: Some(k.clone()),
                attribute_value: Some(v.clone()),
            })
            .collect()
    });
    let backup_sent = sent
        .and_then(|s| s.s3_configuration.as_ref())
        .map(Sent::Backup);
    HttpEndpointDestinationDescription {
        role_arn: Some(sent_destination_role(view).unwrap_or_else(|| view.default_role())),
        endpoint_configuration: Some(HttpEndpointDescription {
            url: Some(h.url.clone()),
            name: h.name.clone(),
        }),
        buffering_hints: Some(HttpEndpointBufferingHints {
            size_in_mbs: Some(d.buffering.size_mib as i64),
            interval_in_seconds: Some(d.buffering.interval_seconds as i64),
        }),
        cloud_watch_logging_options: Some(
            sent.and_then(|s| s.cloud_watch_logging_options.clone())
                .unwrap_or_else(logging_off),
        ),
        request_configuration: Some(HttpEndpointRequestConfiguration {
            content_encoding: Some(if h.gzip {
                ContentEncoding::Gzip
            } else {
                ContentEncoding::None
            }),
            common_attributes,
        }),
        processing_configuration: Some(processing(view)),
        retry_options: Some(HttpEndpointRetryOptions {
            duration_in_seconds: Some(h.retry_duration_seconds as i64),
        }),
        s3_backup_mode: Some(match h.backup_mode {
            crate::spec::BackupMode::FailedDataOnly => HttpEndpointS3BackupMode::FailedDataOnly,
            crate::spec::BackupMode::AllData => HttpEndpointS3BackupMode::AllData,
        }),
        s3_destination_description: Some(s3_description(d, &h.backup, view, backup_sent)),
        secrets_manager_configuration: None,
    }
}

pub(super) fn param(name: ProcessorParameterName, value: String) -> ProcessorParameter {
    ProcessorParameter {
        parameter_name: Some(name),
        parameter_value: Some(value),
    }
}

pub(super) fn processor(kind: ProcessorType, parameters: Vec<ProcessorParameter>) -> Processor {
    Processor {
        r#type: Some(kind),
        parameters: Some(parameters),
    }
}

/// AWS's ProcessingConfiguration of the stream's processing, processors in the order they run
/// (docs/aws-behaviour.md section 1); AWS passes every parameter value as a string.
pub(super) fn processing(view: &View) -> ProcessingConfiguration {
    let p = &view.config.processing;
    use ProcessorParameterName as N;
    let mut processors = prepare(p);
    if let Some(t) = &p.transform {
        processors.push(lambda(t, view));
    }
    if let Some(q) = &p.metadata_query {
        processors.push(processor(
            ProcessorType::MetadataExtraction,
            vec![
                param(N::MetadataExtractionQuery, q.clone()),
                param(N::JsonParsingEngine, "JQ-1.6".into()),
            ],
        ));
    }
    if p.append_delimiter_to_record {
        processors.push(processor(
            ProcessorType::AppendDelimiterToRecord,
            Vec::new(),
        ));
    }
    ProcessingConfiguration {
        enabled: Some(!processors.is_empty()),
        processors: Some(processors),
    }
}

/// The processors that run before the transform: decompression, CloudWatch Logs extraction,
/// record de-aggregation.
fn prepare(p: &crate::spec::ProcessingSpec) -> Vec<Processor> {
    use ProcessorParameterName as N;
    let mut processors = Vec::new();
    if p.decompression {
        processors.push(processor(
            ProcessorType::Decompression,
            vec![param(N::CompressionFormat, "GZIP".into())],
        ));
    }
    if p.cloudwatch_logs_extraction {
        processors.push(processor(
            ProcessorType::CloudWatchLogProcessing,
            vec![param(N::DataMessageExtraction, "true".into())],
        ));
    }
    match &p.deaggregation {
        Some(Deaggregation::Json) => processors.push(processor(
            ProcessorType::RecordDeAggregation,
            vec![param(N::SubRecordType, "JSON".into())],
        )),
        Some(Deaggregation::Delimited(d)) => processors.push(processor(
            ProcessorType::RecordDeAggregation,
            vec![
                param(N::SubRecordType, "DELIMITED".into()),
                param(
                    N::Delimiter,
                    base64::engine::general_purpose::STANDARD.encode(d),
                ),
            ],
        )),
        None => {}
    }
    processors
}

/// The Lambda processor of a transform, its parameters in AWS's order.
fn lambda(t: &crate::spec::TransformSpec, view: &View) -> Processor {
    use ProcessorParameterName as N;
    let arn = t.lambda_arn(view.region, view.account_id, &view.config.name);
    let mib = t.buffer_bytes as f64 / (1024.0 * 1024.0);
    // AWS describes a processor sent without its RoleArn with the destination's role.
    let role = sent_lambda_role(view)
        .or_else(|| sent_destination_role(view))
        .unwrap_or_else(|| view.default_role());
    processor(
        ProcessorType::Lambda,
        vec![
            param(N::LambdaArn, arn),
            param(N::NumberOfRetries, t.number_of_retries.to_string()),
            param(N::RoleArn, role),
            param(
                N::BufferSizeInMBs,
                format!("{}", (mib * 100.0).round() / 100.0),
            ),
            param(
                N::BufferIntervalInSeconds,
                t.buffer_interval_seconds.to_string(),
            ),
        ],
    )
}

/// The role the request gave its destination: its RoleARN; for an HTTP endpoint sent without
/// one, its backup's (S3Configuration.RoleARN, the one role such a request must carry).
fn sent_destination_role(view: &View) -> Option<String> {
    let request = view.sent()?;
    if let Some(h) = &request.http_endpoint_destination_configuration {
        return h
            .role_arn
            .clone()
            .or_else(|| h.s3_configuration.as_ref()?.role_arn.clone());
    }
    if let Some(i) = &request.iceberg_destination_configuration {
        return i.role_arn.clone();
    }
    request
        .extended_s3_destination_configuration
        .as_ref()
        .and_then(|s| s.role_arn.clone())
        .or_else(|| {
            request
                .s3_destination_configuration
                .as_ref()?
                .role_arn
                .clone()
        })
}

/// The RoleArn parameter of the request's Lambda processor.
fn sent_lambda_role(view: &View) -> Option<String> {
    let request = view.sent()?;
    let processing = request
        .extended_s3_destination_configuration
        .as_ref()
        .and_then(|s| s.processing_configuration.as_ref())
        .or_else(|| {
            request
                .http_endpoint_destination_configuration
                .as_ref()
                .and_then(|h| h.processing_configuration.as_ref())
        })?;
    processing
        .processors
        .iter()
        .flatten()
        .filter(|p| p.r#type == Some(ProcessorType::Lambda))
        .flat_map(|p| p.parameters.iter().flatten())
        .find(|p| p.parameter_name == Some(ProcessorParameterName::RoleArn))?
        .parameter_value
        .clone()
}

/// AWS's DataFormatConversionConfiguration of a destination; the schema's role and version
/// as sent (the destination's role and LATEST when not).
fn conversion(
    c: &ConversionSpec,
    role: &str,
    sent: Option<&DataFormatConversionConfiguration>,
) -> DataFormatConversionConfiguration {
    let deserializer = match &c.input {
        InputSpec::OpenX {
            case_insensitive,
            dots_to_underscores,
            mappings,
        } => Deserializer {
            openx_json_ser_de: Some(OpenXJsonSerDe {
                case_insensitive: Some(*case_insensitive),
                convert_dots_in_json_keys_to_underscores: Some(*dots_to_underscores),
                column_to_json_key_mappings: (!mappings.is_empty())
                    .then(|| mappings.iter().cloned().collect()),
            }),
            hive_json_ser_de: None,
        },
        InputSpec::Hive { timestamp_formats } => Deserializer {
            openx_json_ser_de: None,
            hive_json_ser_de: Some(HiveJsonSerDe {
                timestamp_formats: Some(timestamp_formats.clone()),
            }),
        },
    };
    let sent_schema = sent.and_then(|s| s.schema_configuration.as_ref());
    let schema = SchemaConfiguration {
        role_arn: Some(
            sent_schema
                .and_then(|s| s.role_arn.clone())
                .unwrap_or_else(|| role.to_string()),
        ),
        catalog_id: c.table.catalog_id.clone(),
        database_name: c.table.database.clone(),
        table_name: c.table.table.clone(),
        region: c.table.region.clone(),
        // The table version read (GetTableVersion), as sent; LATEST when none was.
        version_id: Some(
            sent_schema
                .and_then(|s| s.version_id.clone())
                .unwrap_or_else(|| "LATEST".into()),
        ),
    };
    let serializer = match &c.output {
        OutputSpec::Orc { options, .. } => Serializer {
            orc_ser_de: Some(orc_serde(options)),
            parquet_ser_de: None,
        },
        OutputSpec::Parquet(o) => Serializer {
            parquet_ser_de: Some(parquet_serde(o)),
            orc_ser_de: None,
        },
    };
    DataFormatConversionConfiguration {
        enabled: Some(true),
        schema_configuration: Some(schema),
        input_format_configuration: Some(InputFormatConfiguration {
            deserializer: Some(deserializer),
        }),
        output_format_configuration: Some(OutputFormatConfiguration {
            serializer: Some(serializer),
        }),
    }
}

/// ParquetSerDe as configured (with AWS's defaults for what was not). ZSTD, firehosed's
/// addition, has no value in AWS's enum: its Compression is left out.
fn parquet_serde(o: &crate::encode::parquet::ParquetOptions) -> ParquetSerDe {
    use crate::encode::parquet::ParquetCompression as C;
    use crate::shapes::ParquetCompression as Aws;
    ParquetSerDe {
        block_size_bytes: Some(o.block_size_bytes as i64),
        page_size_bytes: Some(o.page_size_bytes as i64),
        compression: match o.compression {
            C::Uncompressed => Some(Aws::Uncompressed),
            C::Gzip => Some(Aws::Gzip),
            C::Snappy => Some(Aws::Snappy),
            C::Zstd => None,
        },
        enable_dictionary_compression: Some(o.dictionary),
        max_padding_bytes: Some(o.max_padding_bytes as i64),
        writer_version: Some(if o.v2 {
            crate::shapes::ParquetWriterVersion::V2
        } else {
            crate::shapes::ParquetWriterVersion::V1
        }),
    }
}

/// OrcSerDe as configured (with AWS's defaults for what was not).
fn orc_serde(o: &crate::encode::orc::OrcOptions) -> OrcSerDe {
    use crate::encode::orc::OrcCompression as C;
    use crate::shapes::OrcCompression as Aws;
    OrcSerDe {
        stripe_size_bytes: Some(o.stripe_size_bytes as i64),
        block_size_bytes: Some(o.block_size_bytes as i64),
        row_index_stride: Some(o.row_index_stride as i64),
        enable_padding: Some(o.enable_padding),
        padding_tolerance: Some(o.padding_tolerance),
        compression: Some(match o.compression {
            C::None => Aws::None,
            C::Zlib => Aws::Zlib,
            C::Snappy => Aws::Snappy,
        }),
        bloom_filter_columns: (!o.bloom_filter_columns.is_empty())
            .then(|| o.bloom_filter_columns.clone()),
        bloom_filter_false_positive_probability: Some(o.bloom_filter_false_positive_probability),
        dictionary_key_threshold: Some(o.dictionary_key_threshold),
        format_version: Some(if o.format_v0_11 {
            crate::shapes::OrcFormatVersion::V0_11
        } else {
            crate::shapes::OrcFormatVersion::V0_12
        }),
    }
}
