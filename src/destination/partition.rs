//! Dynamic partitioning (docs/aws-behaviour.md section 7): which partition a record belongs to, from the
//! keys the metadata query and the transform gave it. Each distinct set of key values the
//! prefix uses is a partition with its own buffer; a record whose keys are missing goes to the
//! error prefix.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;

use crate::keys::template::{MAX_EVALUATED_LEN, PartitionValues, Template, Values};
use crate::processing::{ErrorOutput, PartitionKeys};
use crate::record::{Record, now_ms};

/// The partition keys of one record.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecordKeys {
    /// From `metadata_extraction.query`: the keys, or why the query failed.
    pub(crate) query: Option<Result<PartitionKeys, Arc<str>>>,
    /// From the transform's `metadata.partitionKeys`.
    pub(crate) lambda: Option<PartitionKeys>,
}

/// Why a record has no partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unpartitioned {
    pub(crate) output_type: &'static str,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    /// The error prefix of its own (an Iceberg table's), if any.
    pub(crate) prefix: Option<Arc<str>>,
}

/// Longest part of a key between two `/` (a file name in a directory destination).
const MAX_SEGMENT_BYTES: usize = 255;
/// Longest evaluated prefix in bytes, so prefix + object name stays within S3's 1024-byte keys.
const MAX_PREFIX_BYTES: usize = 900;

/// Why a key value cannot be part of a key (a write would fail forever and stall the
/// destination), or None.
fn unusable(v: &str) -> Option<&'static str> {
    if v.chars().any(char::is_control) {
        return Some("control characters cannot be part of a key");
    }
    None
}

pub(crate) const METADATA_EXTRACTION_FAILED: &str = "DynamicPartitioning.MetadataExtractionFailed";
pub(crate) const PARTITION_KEY_MISSING: &str = "DynamicPartitioning.PartitionKeyMissing";
pub(crate) const ACTIVE_PARTITIONS_EXCEEDED: &str =
    "DynamicPartitioning.ActivePartitionsLimitExceeded";

/// The partition of a record: its key values, or why it has none.
pub(crate) fn resolve(
    template: &Template,
    keys: Option<&RecordKeys>,
    record: &Record,
    time_zone: chrono_tz::Tz,
) -> Result<PartitionValues, Unpartitioned> {
    let mut values = PartitionValues::default();
    for (from_query, name) in template.partition_keys() {
        let v = key_value(keys, from_query, name)?;
        let map = if from_query {
            &mut values.query
        } else {
            &mut values.lambda
        };
        map.insert(name.to_string(), v.to_string());
    }
    let time = chrono::DateTime::from_timestamp_millis(record.arrival_ms)
        .unwrap_or_default()
        .with_timezone(&time_zone);
    let evaluated = template.render(&Values {
        time,
        error_output_type: None,
        partition: Some(&values),
    });
    check_evaluated(&evaluated)?;
    Ok(values)
}

fn partitioning_failed(message: String) -> Unpartitioned {
    Unpartitioned {
        output_type: "partitioning-failed",
        code: PARTITION_KEY_MISSING,
        message,
        prefix: None,
    }
}

/// The value of partition key `name`, from the query's keys or the transform's.
fn key_value<'k>(
    keys: Option<&'k RecordKeys>,
    from_query: bool,
    name: &str,
) -> Result<&'k str, Unpartitioned> {
    let found = if from_query {
        match keys.and_then(|k| k.query.as_ref()) {
            Some(Err(e)) => {
                return Err(Unpartitioned {
                    output_type: "metadata-extraction-failed",
                    code: METADATA_EXTRACTION_FAILED,
                    message: e.to_string(),
                    prefix: None,
                });
            }
            Some(Ok(k)) => k.get(name),
            None => None,
        }
    } else {
        keys.and_then(|k| k.lambda.as_ref())
            .and_then(|k| k.get(name))
    };
    if let Some(v) = found
        && let Some(why) = unusable(v)
    {
        return Err(partitioning_failed(format!(
            "partition key {name:?}: {why}"
        )));
    }
    match found.filter(|v| !v.is_empty()) {
        Some(v) => Ok(v),
        None => {
            let ns = if from_query {
                "partitionKeyFromQuery"
            } else {
                "partitionKeyFromLambda"
            };
            Err(partitioning_failed(format!(
                "partition key {name:?} ({ns}) is missing or empty"
            )))
        }
    }
}

/// An evaluated prefix must fit AWS's length and a file name's segment length.
fn check_evaluated(evaluated: &str) -> Result<(), Unpartitioned> {
    if let Some(long) = evaluated
        .split('/')
        .find(|seg| seg.len() > MAX_SEGMENT_BYTES)
    {
        return Err(partitioning_failed(format!(
            "a part of the evaluated prefix is {} bytes long; at most {MAX_SEGMENT_BYTES} fit a file name",
            long.len()
        )));
    }
    if evaluated.chars().count() > MAX_EVALUATED_LEN || evaluated.len() > MAX_PREFIX_BYTES {
        return Err(partitioning_failed(format!(
            "the evaluated prefix is {} characters long; at most {MAX_EVALUATED_LEN} are allowed",
            evaluated.chars().count()
        )));
    }
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    attempts_made: u32,
    arrival_timestamp: i64,
    error_code: &'a str,
    error_message: &'a str,
    attempt_ending_timestamp: i64,
    raw_data: String,
}

/// The error record of a record without a partition.
pub(crate) fn error_output(record: &Record, why: &Unpartitioned) -> ErrorOutput {
    let line = Line {
        attempts_made: 1,
        arrival_timestamp: record.arrival_ms,
        error_code: why.code,
        error_message: &why.message,
        attempt_ending_timestamp: now_ms(),
        raw_data: base64::engine::general_purpose::STANDARD.encode(&record.data),
    };
    let mut json = serde_json::to_vec(&line).unwrap_or_default();
    json.push(b'\n');
    ErrorOutput {
        prefix: why.prefix.clone(),
        output_type: why.output_type,
        line: Record {
            data: Bytes::from(json),
            arrival_ms: record.arrival_ms,
            seq: record.seq,
            sub: record.sub,
            // Where the original came from: an exactly-once object's identity is a range of
            // the shard's positions.
            kinesis: record.kinesis.clone(),
        },
    }
}

#[cfg(test)]
/// Keys of a map for tests and callers that build them by hand.
pub(crate) fn keys(pairs: &[(&str, &str)]) -> PartitionKeys {
    Arc::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<std::collections::BTreeMap<_, _>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Record {
        Record {
            data: Bytes::from_static(b"{}"),
            arrival_ms: 1_714_568_862_000,
            seq: 3,
            sub: 0,
            kinesis: None,
        }
    }

    #[test]
    fn keys_from_query_and_lambda() {
        let t = Template::parse("c=!{partitionKeyFromQuery:c}/l=!{partitionKeyFromLambda:l}/")
            .expect("parses");
        let k = RecordKeys {
            query: Some(Ok(keys(&[("c", "42"), ("unused", "x")]))),
            lambda: Some(keys(&[("l", "eu")])),
        };
        let v = resolve(&t, Some(&k), &rec(), chrono_tz::UTC).expect("partition");
        assert_eq!(v.query.len(), 1, "only the keys the prefix uses");
        let time = chrono::DateTime::from_timestamp_millis(0)
            .unwrap_or_default()
            .with_timezone(&chrono_tz::UTC);
        let prefix = t.render(&Values {
            time,
            error_output_type: None,
            partition: Some(&v),
        });
        assert_eq!(prefix, "c=42/l=eu/");
    }

    #[test]
    fn missing_empty_and_failed_keys() {
        let t = Template::parse("!{partitionKeyFromQuery:c}/").expect("parses");
        let failed = RecordKeys {
            query: Some(Err("the record is not valid JSON".into())),
            lambda: None,
        };
        let e = resolve(&t, Some(&failed), &rec(), chrono_tz::UTC).unwrap_err();
        assert_eq!(e.output_type, "metadata-extraction-failed");
        assert_eq!(e.code, METADATA_EXTRACTION_FAILED);
        let empty = RecordKeys {
            query: Some(Ok(keys(&[("c", "")]))),
            lambda: None,
        };
        let e = resolve(&t, Some(&empty), &rec(), chrono_tz::UTC).unwrap_err();
        assert_eq!(e.output_type, "partitioning-failed");
        let e = resolve(&t, None, &rec(), chrono_tz::UTC).unwrap_err();
        assert_eq!(e.output_type, "partitioning-failed");
        for bad in ["a\0b", "line\nbreak", &"x".repeat(256)] {
            let k = RecordKeys {
                query: Some(Ok(keys(&[("c", bad)]))),
                lambda: None,
            };
            let e = resolve(&t, Some(&k), &rec(), chrono_tz::UTC).unwrap_err();
            assert_eq!(e.output_type, "partitioning-failed", "{bad:?}");
        }
        let wide = RecordKeys {
            query: Some(Ok(keys(&[("c", &"\u{20ac}".repeat(80))]))),
            lambda: None,
        };
        let t2 = Template::parse("!{partitionKeyFromQuery:c}/!{partitionKeyFromQuery:c}/!{partitionKeyFromQuery:c}/!{partitionKeyFromQuery:c}/").expect("parses");
        let e = resolve(&t2, Some(&wide), &rec(), chrono_tz::UTC).unwrap_err();
        assert!(e.message.contains("at most 512"), "{}", e.message);
        let line = error_output(&rec(), &e);
        let v: serde_json::Value = serde_json::from_slice(&line.line.data).expect("json");
        assert_eq!(v["errorCode"], PARTITION_KEY_MISSING);
        assert_eq!(v["rawData"], "e30=");
    }
}
