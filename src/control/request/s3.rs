//! An ExtendedS3DestinationConfiguration as a destination specification: the bucket, names
//! and buffering, dynamic partitioning, the source-record backup, and the format conversion
//! (its Glue table's columns, its SerDes). Unset members take AWS's defaults, which are the
//! configuration file's.

use crate::encode::Compression;
use crate::encode::conversion::CatalogTable;
use crate::encode::orc::{OrcCompression, OrcOptions};
use crate::encode::parquet::{ParquetCompression, ParquetOptions};
use crate::glue::GlueColumn;
use crate::shapes::{
    BufferingHints, CompressionFormat, DataFormatConversionConfiguration, EncryptionConfiguration,
    ExtendedS3DestinationConfiguration, OrcSerDe, ParquetSerDe, S3BackupMode,
    S3DestinationConfiguration, SchemaConfiguration,
};
use crate::spec::path::Path;
use crate::spec::{
    Buffering, ConversionSpec, Delivery, DestinationSpec, DynamicPartitioning, InputSpec,
    OutputSpec, ProcessingSpec, Target,
};

use super::{InvalidRequest, Local, invalid};

/// An ExtendedS3DestinationConfiguration (or a complete update of one): the stream-level
/// processing settings it carries, and the destination.
pub(super) fn destination(
    s3: &ExtendedS3DestinationConfiguration,
    local: &Local,
    glue: Option<&[GlueColumn]>,
) -> Result<(ProcessingSpec, DestinationSpec), InvalidRequest> {
    let bucket = bucket(s3.bucket_arn.as_deref())?;
    let conversion = match &s3.data_format_conversion_configuration {
        Some(c) if c.enabled != Some(false) => Some(conversion(c, local, glue)?),
        _ => None,
    };
    let source_record_backup = match s3.s3_backup_mode {
        Some(S3BackupMode::Enabled) => {
            let backup = s3.s3_backup_configuration.as_ref().ok_or_else(|| {
                invalid("S3BackupConfiguration is required with S3BackupMode Enabled")
            })?;
            Some(backup.prefix.clone().unwrap_or_default())
        }
        _ => None,
    };
    let dynamic_partitioning = s3
        .dynamic_partitioning_configuration
        .as_ref()
        .filter(|dp| dp.enabled == Some(true))
        .map(|dp| DynamicPartitioning {
            retry_duration_seconds: dp
                .retry_options
                .as_ref()
                .and_then(|r| r.duration_in_seconds)
                .map_or(
                    DynamicPartitioning::DEFAULT.retry_duration_seconds,
                    non_negative,
                ),
            ..DynamicPartitioning::DEFAULT
        });
    let processing =
        super::processing::processing(s3.processing_configuration.as_ref(), &local.functions)?;
    let buffering = buffering(
        s3.buffering_hints.as_ref(),
        Buffering::default_for(conversion.is_some()),
    );
    let d = DestinationSpec {
        target: Target::S3 {
            bucket,
            endpoint_url: None,
            kms_key_arn: kms_key(s3.encryption_configuration.as_ref()),
        },
        prefix: s3.prefix.clone(),
        error_output_prefix: s3.error_output_prefix.clone(),
        buffering,
        compression: compression(s3.compression_format),
        file_extension: s3.file_extension.clone(),
        time_zone: s3
            .custom_time_zone
            .as_deref()
            .map_or_else(|| "UTC".into(), time_zone),
        source_record_backup,
        dynamic_partitioning,
        format_conversion: conversion,
        delivery: Delivery::AtLeastOnce,
    };
    Ok((processing, d))
}

/// A CustomTimeZone by the zone's own name (as the configuration file's), as sent when it is
/// not one (the check refuses it).
fn time_zone(tz: &str) -> String {
    tz.parse::<chrono_tz::Tz>()
        .map_or_else(|_| tz.to_string(), |zone| zone.name().to_string())
}

/// The bucket of a BucketARN.
pub(super) fn bucket(arn: Option<&str>) -> Result<String, InvalidRequest> {
    let arn = arn.ok_or_else(|| invalid("BucketARN is required"))?;
    ["arn:aws:s3:::", "arn:aws-cn:s3:::", "arn:aws-us-gov:s3:::"]
        .iter()
        .find_map(|p| arn.strip_prefix(p))
        .map(str::to_string)
        .ok_or_else(|| invalid(format!("BucketARN {arn:?} is not an S3 bucket ARN")))
}

/// An S3Configuration (an HTTP endpoint's backup): its bucket, prefixes and compression.
pub(super) fn backup(
    s3: &S3DestinationConfiguration,
) -> Result<(String, Option<String>, Option<String>, Compression), InvalidRequest> {
    Ok((
        bucket(s3.bucket_arn.as_deref())?,
        s3.prefix.clone(),
        s3.error_output_prefix.clone(),
        compression(s3.compression_format),
    ))
}

/// EncryptionConfiguration's KMS key, if any.
fn kms_key(e: Option<&EncryptionConfiguration>) -> Option<String> {
    e?.kms_encryption_config.as_ref()?.awskms_key_arn.clone()
}

pub(super) fn compression(c: Option<CompressionFormat>) -> Compression {
    match c {
        None | Some(CompressionFormat::Uncompressed) => Compression::Uncompressed,
        Some(CompressionFormat::Gzip) => Compression::Gzip,
        Some(CompressionFormat::Zip) => Compression::Zip,
        Some(CompressionFormat::Snappy) => Compression::Snappy,
        Some(CompressionFormat::HadoopSnappy) => Compression::HadoopSnappy,
    }
}

/// BufferingHints, `default` for what is unset.
pub(super) fn buffering(b: Option<&BufferingHints>, default: Buffering) -> Buffering {
    Buffering {
        size_mib: b
            .and_then(|b| b.size_in_mbs)
            .map_or(default.size_mib, non_negative),
        interval_seconds: b
            .and_then(|b| b.interval_in_seconds)
            .map_or(default.interval_seconds, non_negative),
    }
}

/// The model bounds these numbers at 0 and above; a negative one (never past the model check)
/// reads as 0, which the specification's ranges refuse where 0 is not allowed.
pub(super) fn non_negative(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// DataFormatConversionConfiguration: the Glue table's columns (from the catalog folder, or
/// read from the Data Catalog by the caller), the SerDe and the output's options.
fn conversion(
    c: &DataFormatConversionConfiguration,
    local: &Local,
    glue: Option<&[GlueColumn]>,
) -> Result<ConversionSpec, InvalidRequest> {
    let schema = c.schema_configuration.as_ref().ok_or_else(|| {
        invalid("DataFormatConversionConfiguration.SchemaConfiguration is required")
    })?;
    let (columns, table) = schema_of(schema, local, glue)?;
    let deserializer = c
        .input_format_configuration
        .as_ref()
        .and_then(|i| i.deserializer.as_ref());
    let input = match deserializer {
        Some(d) if d.hive_json_ser_de.is_some() => InputSpec::Hive {
            timestamp_formats: d
                .hive_json_ser_de
                .as_ref()
                .and_then(|h| h.timestamp_formats.clone())
                .unwrap_or_default(),
        },
        Some(d) => match &d.openx_json_ser_de {
            Some(o) => InputSpec::OpenX {
                case_insensitive: o.case_insensitive.unwrap_or(true),
                dots_to_underscores: o.convert_dots_in_json_keys_to_underscores.unwrap_or(false),
                // Columns are lowercase, as the schema's; the map's order is AWS's (by name).
                mappings: o
                    .column_to_json_key_mappings
                    .iter()
                    .flatten()
                    .map(|(col, key)| (col.to_lowercase(), key.clone()))
                    .collect(),
            },
            None => InputSpec::DEFAULT,
        },
        None => InputSpec::DEFAULT,
    };
    let serializer = c
        .output_format_configuration
        .as_ref()
        .and_then(|o| o.serializer.as_ref());
    let output = match serializer {
        Some(s) if s.orc_ser_de.is_some() => OutputSpec::Orc {
            options: orc(s.orc_ser_de.as_ref().expect("checked above")),
            stripe_buffer_bytes: OutputSpec::DEFAULT_STRIPE_BUFFER,
        },
        Some(s) => OutputSpec::Parquet(
            s.parquet_ser_de
                .as_ref()
                .map_or(ParquetOptions::DEFAULT, parquet),
        ),
        None => OutputSpec::Parquet(ParquetOptions::DEFAULT),
    };
    Ok(ConversionSpec {
        columns,
        table,
        input,
        output,
    })
}

/// The columns of a SchemaConfiguration: the table file in the catalog folder, or the columns
/// read from the Data Catalog; and the table's names.
fn schema_of(
    schema: &SchemaConfiguration,
    local: &Local,
    glue: Option<&[GlueColumn]>,
) -> Result<(Vec<crate::encode::columnar::Column>, CatalogTable), InvalidRequest> {
    let database = schema
        .database_name
        .clone()
        .ok_or_else(|| invalid("SchemaConfiguration.DatabaseName is required"))?;
    let table = schema
        .table_name
        .clone()
        .ok_or_else(|| invalid("SchemaConfiguration.TableName is required"))?;
    let raw: Vec<(String, String)> = match (&local.catalog, glue) {
        (Some(dir), _) => {
            if [&database, &table]
                .iter()
                .any(|n| n.is_empty() || n.contains(['/', '\\']) || n.starts_with('.'))
            {
                return Err(invalid("DatabaseName and TableName must be plain names"));
            }
            let file = dir.join(&database).join(format!("{table}.json"));
            crate::config::read_glue_file(&file).map_err(|message| {
                invalid(format!(
                    "destinations[0].data_format_conversion.schema.file: {}: {message}",
                    file.display()
                ))
            })?
        }
        (None, Some(columns)) => columns
            .iter()
            .map(|c| (c.name.clone(), c.ty.clone()))
            .collect(),
        (None, None) => {
            return Err(invalid(format!(
                "the columns of Glue table {database}.{table} were not read: configure the Glue endpoint (aws.endpoint_url or AWS_ENDPOINT_URL_GLUE), or glue_catalog_dir"
            )));
        }
    };
    let at = Path::root()
        .key("destinations")
        .index(0)
        .key("data_format_conversion")
        .key("schema")
        .key("columns");
    let (columns, problems) = crate::spec::check::parse_columns(&raw, &at);
    if !problems.is_empty() {
        return Err(super::problems_message(problems));
    }
    let catalog = CatalogTable {
        catalog_id: schema.catalog_id.clone(),
        database: Some(database),
        table: Some(table),
        region: schema.region.clone(),
    };
    Ok((columns, catalog))
}

/// ParquetSerDe, with AWS's defaults for what is unset.
fn parquet(p: &ParquetSerDe) -> ParquetOptions {
    let d = ParquetOptions::DEFAULT;
    ParquetOptions {
        compression: match p.compression {
            None => d.compression,
            Some(crate::shapes::ParquetCompression::Uncompressed) => {
                ParquetCompression::Uncompressed
            }
            Some(crate::shapes::ParquetCompression::Gzip) => ParquetCompression::Gzip,
            Some(crate::shapes::ParquetCompression::Snappy) => ParquetCompression::Snappy,
        },
        block_size_bytes: p.block_size_bytes.map_or(d.block_size_bytes, non_negative),
        page_size_bytes: p.page_size_bytes.map_or(d.page_size_bytes, non_negative),
        dictionary: p.enable_dictionary_compression.unwrap_or(d.dictionary),
        max_padding_bytes: p
            .max_padding_bytes
            .map_or(d.max_padding_bytes, non_negative),
        v2: p
            .writer_version
            .map_or(d.v2, |v| v == crate::shapes::ParquetWriterVersion::V2),
        ..d
    }
}

/// OrcSerDe, with AWS's defaults for what is unset.
fn orc(o: &OrcSerDe) -> OrcOptions {
    let d = OrcOptions::DEFAULT;
    OrcOptions {
        compression: match o.compression {
            None => d.compression,
            Some(crate::shapes::OrcCompression::None) => OrcCompression::None,
            Some(crate::shapes::OrcCompression::Zlib) => OrcCompression::Zlib,
            Some(crate::shapes::OrcCompression::Snappy) => OrcCompression::Snappy,
        },
        stripe_size_bytes: o
            .stripe_size_bytes
            .map_or(d.stripe_size_bytes, non_negative),
        block_size_bytes: o.block_size_bytes.map_or(d.block_size_bytes, non_negative),
        row_index_stride: o.row_index_stride.map_or(d.row_index_stride, non_negative),
        bloom_filter_columns: o.bloom_filter_columns.clone().unwrap_or_default(),
        bloom_filter_false_positive_probability: o
            .bloom_filter_false_positive_probability
            .unwrap_or(d.bloom_filter_false_positive_probability),
        dictionary_key_threshold: o
            .dictionary_key_threshold
            .unwrap_or(d.dictionary_key_threshold),
        enable_padding: o.enable_padding.unwrap_or(d.enable_padding),
        padding_tolerance: o.padding_tolerance.unwrap_or(d.padding_tolerance),
        format_v0_11: o
            .format_version
            .is_some_and(|v| v == crate::shapes::OrcFormatVersion::V0_11),
    }
}
