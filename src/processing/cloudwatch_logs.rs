//! CloudWatch Logs subscription payloads (docs/cloudwatch-logs.md): AWS's Decompression
//! processor (every record is a GZIP document) and its CloudWatchLogProcessing processor with
//! DataMessageExtraction (a DATA_MESSAGE document becomes one record per log event's message,
//! a CONTROL_MESSAGE document is dropped).
//!
//! A record's decompressed size is capped: a GZIP bomb fails that record only, after at most
//! `MAX_DECOMPRESSED_BYTES` of work and memory.

use std::borrow::Cow;
use std::io::Read;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// The most one record may decompress to. CloudWatch Logs puts at most 1 MiB of log events
/// into one subscription document (PutLogEvents' batch limit), plus each event's id and
/// timestamp and JSON escaping: 8 MiB leaves room for every real document.
pub(crate) const MAX_DECOMPRESSED_BYTES: usize = 8 * 1024 * 1024;

/// Why a record was not decompressed or extracted: the error code and message of its
/// `decompression-failed` error record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Failure {
    #[error("the record is not a valid GZIP document: {0}")]
    NotGzip(String),
    #[error("the record decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes")]
    TooBig,
    #[error("the decompressed record is not a CloudWatch Logs subscription document: {0}")]
    NotCloudWatchLogs(String),
}

impl Failure {
    /// The `errorCode` of the error record.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Failure::NotGzip(_) => "Decompression.InvalidData",
            Failure::TooBig => "Decompression.SizeLimitExceeded",
            Failure::NotCloudWatchLogs(_) => "CloudWatchLogs.MalformedData",
        }
    }
}

/// The decompressed bytes of a GZIP record (concatenated members are read as one stream, as
/// gzip -d does), at most `MAX_DECOMPRESSED_BYTES`.
pub(crate) fn decompress(data: &[u8]) -> Result<Bytes, Failure> {
    if data.is_empty() {
        return Err(Failure::NotGzip("the record is empty".into()));
    }
    let mut out = Vec::with_capacity((data.len() * 4).min(MAX_DECOMPRESSED_BYTES));
    let mut reader =
        flate2::read::MultiGzDecoder::new(data).take(MAX_DECOMPRESSED_BYTES as u64 + 1);
    reader
        .read_to_end(&mut out)
        .map_err(|e| Failure::NotGzip(e.to_string()))?;
    if out.len() > MAX_DECOMPRESSED_BYTES {
        return Err(Failure::TooBig);
    }
    Ok(Bytes::from(out))
}

/// What a decompressed subscription document holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Document {
    /// The messages of a DATA_MESSAGE's log events, in order, packed in one buffer.
    Data(Vec<Bytes>),
    /// A CONTROL_MESSAGE (CloudWatch Logs checking that the destination is reachable).
    Control,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    #[serde(borrow)]
    message_type: Cow<'a, str>,
    // Present in every document CloudWatch Logs sends; required so that an unrelated JSON
    // document is refused rather than delivered as nothing.
    #[allow(dead_code)]
    log_group: IgnoredAny,
    #[allow(dead_code)]
    log_stream: IgnoredAny,
    #[serde(borrow, default)]
    log_events: Vec<Event<'a>>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    message: Cow<'a, str>,
}

/// Reads a decompressed subscription document.
pub(crate) fn extract(document: &[u8]) -> Result<Document, Failure> {
    let wire: Wire<'_> =
        serde_json::from_slice(document).map_err(|e| Failure::NotCloudWatchLogs(e.to_string()))?;
    match wire.message_type.as_ref() {
        "CONTROL_MESSAGE" => Ok(Document::Control),
        "DATA_MESSAGE" => {
            let total = wire.log_events.iter().map(|e| e.message.len()).sum();
            let mut packed = BytesMut::with_capacity(total);
            let mut bounds = Vec::with_capacity(wire.log_events.len());
            for e in &wire.log_events {
                let start = packed.len();
                packed.extend_from_slice(e.message.as_bytes());
                bounds.push((start, packed.len()));
            }
            // One allocation for every message; each record is a slice of it.
            let packed = packed.freeze();
            Ok(Document::Data(
                bounds
                    .into_iter()
                    .map(|(a, b)| packed.slice(a..b))
                    .collect(),
            ))
        }
        other => Err(Failure::NotCloudWatchLogs(format!(
            "messageType {other:?} is neither DATA_MESSAGE nor CONTROL_MESSAGE"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn data_message_events_become_messages_in_order() {
        let doc =
            br#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/lambda/f",
            "logStream":"s","subscriptionFilters":["f"],"logEvents":[
            {"id":"1","timestamp":1,"message":"first line"},
            {"id":"2","timestamp":2,"message":"{\"json\":\"with \\\"escapes\\\"\"}"},
            {"id":"3","timestamp":3,"message":""}]}"#;
        let out = extract(&decompress(&gzip(doc)).unwrap()).unwrap();
        assert_eq!(
            out,
            Document::Data(vec![
                Bytes::from_static(b"first line"),
                Bytes::from_static(br#"{"json":"with \"escapes\""}"#),
                Bytes::new(),
            ])
        );
    }

    #[test]
    fn control_messages_and_foreign_documents() {
        let control = br#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"",
            "subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#;
        assert_eq!(extract(control).unwrap(), Document::Control);
        for foreign in [
            &br#"{"hello":"world"}"#[..],
            b"not json",
            br#"{"messageType":"OTHER","logGroup":"g","logStream":"s","logEvents":[]}"#,
        ] {
            let e = extract(foreign).unwrap_err();
            assert_eq!(e.code(), "CloudWatchLogs.MalformedData", "{e}");
        }
    }

    #[test]
    fn concatenated_members_read_as_one_document() {
        let mut two = gzip(b"ab");
        two.extend(gzip(b"cd"));
        assert_eq!(decompress(&two).unwrap(), Bytes::from_static(b"abcd"));
    }

    #[test]
    fn not_gzip_and_bombs_fail_with_their_codes() {
        for bad in [&b"plain text"[..], b"", &gzip(b"truncated")[..12]] {
            assert_eq!(
                decompress(bad).unwrap_err().code(),
                "Decompression.InvalidData"
            );
        }
        let exactly = gzip(&vec![b'x'; MAX_DECOMPRESSED_BYTES]);
        assert_eq!(decompress(&exactly).unwrap().len(), MAX_DECOMPRESSED_BYTES);
        let bomb = gzip(&vec![0u8; MAX_DECOMPRESSED_BYTES + 1]);
        assert!(bomb.len() < 16 * 1024, "a bomb is small: {}", bomb.len());
        assert_eq!(decompress(&bomb).unwrap_err(), Failure::TooBig);
    }
}
