//! ProcessingConfiguration.Processors as the stream's processing: decompression and CloudWatch
//! Logs extraction, record de-aggregation, the delimiter, metadata extraction, and a Lambda
//! processor, run by its `lambda_functions` entry.

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::config::transform::LambdaFunction;
use crate::shapes::{ProcessingConfiguration, Processor, ProcessorParameterName, ProcessorType};
use crate::spec::check::function_name;
use crate::spec::{Deaggregation, ProcessingSpec, TransformSpec};

use super::{InvalidRequest, invalid};

/// The processing a ProcessingConfiguration asks for (none unless it is Enabled).
pub(super) fn processing(
    p: Option<&ProcessingConfiguration>,
    functions: &BTreeMap<String, LambdaFunction>,
) -> Result<ProcessingSpec, InvalidRequest> {
    let mut out = ProcessingSpec::default();
    let Some(p) = p.filter(|p| p.enabled == Some(true)) else {
        return Ok(out);
    };
    let mut seen: Vec<Option<ProcessorType>> = Vec::new();
    for processor in p.processors.iter().flatten() {
        let kind = processor.r#type;
        let name = kind.map_or("(none)", ProcessorType::as_str);
        if seen.contains(&kind) {
            return Err(invalid(format!(
                "processor type {name} is given more than once"
            )));
        }
        seen.push(kind);
        let param = |p: ProcessorParameterName| parameter(processor, p);
        match kind {
            Some(ProcessorType::MetadataExtraction) => {
                let query = param(ProcessorParameterName::MetadataExtractionQuery)
                    .ok_or_else(|| invalid("MetadataExtraction needs MetadataExtractionQuery"))?;
                out.metadata_query = Some(query.to_string());
            }
            Some(ProcessorType::AppendDelimiterToRecord) => out.append_delimiter_to_record = true,
            Some(ProcessorType::RecordDeAggregation) => {
                out.deaggregation = Some(deaggregation(processor)?);
            }
            Some(ProcessorType::Lambda) => out.transform = Some(lambda(processor, functions)?),
            Some(ProcessorType::Decompression) => {
                // AWS's only value.
                let format = param(ProcessorParameterName::CompressionFormat).unwrap_or("GZIP");
                if !format.eq_ignore_ascii_case("GZIP") {
                    return Err(invalid(format!(
                        "processing.decompression: must be one of GZIP (got {format:?})"
                    )));
                }
                out.decompression = true;
            }
            Some(ProcessorType::CloudWatchLogProcessing) => {
                let value =
                    param(ProcessorParameterName::DataMessageExtraction).ok_or_else(|| {
                        invalid("CloudWatchLogProcessing needs the DataMessageExtraction parameter")
                    })?;
                match value.to_ascii_lowercase().as_str() {
                    "true" => out.cloudwatch_logs_extraction = true,
                    "false" => {
                        return Err(invalid(
                            "processing.cloudwatch_logs.data_message_extraction: must be true (leave cloudwatch_logs out to deliver the decompressed documents whole)",
                        ));
                    }
                    _ => return Err(invalid("DataMessageExtraction must be true or false")),
                }
            }
            None => return Err(invalid("processor type (none) is not supported")),
        }
    }
    Ok(out)
}

/// A processor's parameter value.
fn parameter(processor: &Processor, name: ProcessorParameterName) -> Option<&str> {
    processor
        .parameters
        .iter()
        .flatten()
        .find(|p| p.parameter_name == Some(name))?
        .parameter_value
        .as_deref()
}

/// RecordDeAggregation: JSON, or DELIMITED by a base64 delimiter.
fn deaggregation(processor: &Processor) -> Result<Deaggregation, InvalidRequest> {
    let kind = parameter(processor, ProcessorParameterName::SubRecordType).unwrap_or("JSON");
    if !kind.eq_ignore_ascii_case("DELIMITED") {
        return Ok(Deaggregation::Json);
    }
    let raw = parameter(processor, ProcessorParameterName::Delimiter)
        .ok_or_else(|| invalid("RecordDeAggregation DELIMITED needs Delimiter"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map_err(|_| invalid("Delimiter must be base64"))?;
    let delimiter =
        String::from_utf8(bytes).map_err(|_| invalid("Delimiter must be UTF-8 text"))?;
    Ok(Deaggregation::Delimited(delimiter))
}

/// A Lambda processor: its function's local runtime (`lambda_functions`), with the processor's
/// retries and buffering (AWS passes every parameter as a string).
fn lambda(
    processor: &Processor,
    functions: &BTreeMap<String, LambdaFunction>,
) -> Result<TransformSpec, InvalidRequest> {
    let arn = parameter(processor, ProcessorParameterName::LambdaArn)
        .ok_or_else(|| invalid("a Lambda processor needs the LambdaArn parameter"))?;
    let name = function_name(arn).ok_or_else(|| {
        invalid(format!(
            "LambdaArn {arn:?} is not a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)"
        ))
    })?;
    let function = functions.get(name).ok_or_else(|| {
        invalid(format!(
            "Lambda function {name} has no local runtime: add it under lambda_functions in the configuration file (subprocess or wasm)"
        ))
    })?;
    let mut t = TransformSpec::with_defaults(function.runtime.clone());
    t.timeout_seconds = function.timeout_seconds;
    t.concurrency = function.concurrency;
    t.lambda_arn = Some(arn.to_string());
    let whole = |name: ProcessorParameterName, key: &str| -> Result<Option<u64>, InvalidRequest> {
        parameter(processor, name)
            .map(|v| {
                v.trim().parse::<u64>().map_err(|_| {
                    invalid(format!(
                        "processing.transform.{key}: must be a whole number (got {v:?})"
                    ))
                })
            })
            .transpose()
    };
    if let Some(n) = whole(ProcessorParameterName::NumberOfRetries, "number_of_retries")? {
        t.number_of_retries = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(s) = whole(
        ProcessorParameterName::BufferIntervalInSeconds,
        "buffer_interval_seconds",
    )? {
        t.buffer_interval_seconds = s;
    }
    if let Some(v) = parameter(processor, ProcessorParameterName::BufferSizeInMBs) {
        let mib: f64 = v.trim().parse().map_err(|_| {
            invalid(format!(
                "processing.transform.buffer_size_mib: must be a number (got {v:?})"
            ))
        })?;
        t.buffer_bytes = (mib * 1024.0 * 1024.0).round() as u64;
    }
    Ok(t)
}
