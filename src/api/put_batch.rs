//! PutRecordBatch, the call that carries the data, read straight from the body: the stream's
//! name and the records' base64 text borrowed from it, the records decoded into one buffer, the
//! answer written as text. A profile of the acknowledgement path (BENCHMARKS.md, issue 38)
//! found a fifth of the daemon's time in malloc and free: the general way builds a JSON tree of
//! the body (a map, a key and a string per record), walks it with the service model, moves it
//! into the typed input and answers with a tree of 500 maps. Only a request that is valid as
//! AWS's model and limits say takes this way; any other (an error to report, a null, a member
//! firehosed does not read) makes `read` answer None and goes the general way
//! (`firehose::dispatch`), which says what AWS says: the answers are the same either way.

use bytes::Bytes;
use serde::Deserialize;

use super::firehose::{MAX_BATCH_BYTES, MAX_BATCH_RECORDS, decode_batch};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input<'a> {
    #[serde(rename = "DeliveryStreamName")]
    name: &'a str,
    #[serde(rename = "Records", borrow)]
    records: Vec<Entry<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry<'a> {
    #[serde(rename = "Data")]
    data: &'a str,
}

/// A valid PutRecordBatch: the stream's name and the decoded records.
pub(super) struct Batch<'a> {
    pub(super) name: &'a str,
    pub(super) data: Vec<Bytes>,
}

/// The batch in `body` if it is valid by the model's constraints and AWS's limits: a name of
/// 1-64 characters of `[a-zA-Z0-9_.-]`, 1-500 records, each of base64 text of at most
/// 1,024,000 bytes, 4 MiB in all. None for anything else, and for text with a JSON escape (no
/// SDK escapes base64 or a stream name; the general way reads it).
pub(super) fn read(body: &[u8]) -> Option<Batch<'_>> {
    let input: Input<'_> = serde_json::from_slice(body).ok()?;
    if !crate::config::valid_stream_name(input.name)
        || input.records.is_empty()
        || input.records.len() > MAX_BATCH_RECORDS
    {
        return None;
    }
    let texts: Vec<Option<&str>> = input.records.iter().map(|r| Some(r.data)).collect();
    let data = decode_batch(&texts).ok()?;
    if data.iter().map(Bytes::len).sum::<usize>() > MAX_BATCH_BYTES {
        return None;
    }
    Some(Batch {
        name: input.name,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn body(name: &str, records: &[&str]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        let records: Vec<serde_json::Value> = records
            .iter()
            .map(|r| serde_json::json!({"Data": b64.encode(r)}))
            .collect();
        serde_json::json!({"DeliveryStreamName": name, "Records": records}).to_string()
    }

    #[test]
    fn a_valid_batch_is_read_without_a_tree_and_decodes_as_the_general_way() {
        let text = body("s-1.x_y", &["a", "", "{\"k\":\"\\u00e9\"}\n"]);
        let batch = read(text.as_bytes()).expect("valid");
        assert_eq!(batch.name, "s-1.x_y");
        let got: Vec<&[u8]> = batch.data.iter().map(|b| &b[..]).collect();
        assert_eq!(
            got,
            vec![&b"a"[..], b"", "{\"k\":\"\\u00e9\"}\n".as_bytes()]
        );
        // Text with an escape goes the general way.
        let escaped = r#"{"DeliveryStreamName":"s\u002d1","Records":[{"Data":"YWJj"}]}"#;
        assert!(read(escaped.as_bytes()).is_none());
    }

    /// Everything the general way answers with an error, or reads differently, is not taken
    /// here: its answer is the general way's.
    #[test]
    fn anything_but_a_valid_batch_goes_the_general_way() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let long = b64.encode(vec![b'x'; 1_024_001]);
        let just = b64.encode(vec![b'x'; 1_024_000]);
        let many: Vec<String> = (0..501).map(|_| r#"{"Data":"YQ=="}"#.to_string()).collect();
        let five: Vec<String> = (0..5).map(|_| format!(r#"{{"Data":"{just}"}}"#)).collect();
        let cases = [
            ("not JSON", "{".to_string()),
            ("no name", r#"{"Records":[{"Data":"YQ=="}]}"#.to_string()),
            ("no records", r#"{"DeliveryStreamName":"s"}"#.to_string()),
            ("a null name", r#"{"DeliveryStreamName":null,"Records":[{"Data":"YQ=="}]}"#.to_string()),
            ("a null record", r#"{"DeliveryStreamName":"s","Records":[null]}"#.to_string()),
            ("a null data", r#"{"DeliveryStreamName":"s","Records":[{"Data":null}]}"#.to_string()),
            ("a number as data", r#"{"DeliveryStreamName":"s","Records":[{"Data":5}]}"#.to_string()),
            ("an unknown member", r#"{"DeliveryStreamName":"s","Records":[{"Data":"YQ=="}],"X":1}"#.to_string()),
            ("an unknown record member", r#"{"DeliveryStreamName":"s","Records":[{"Data":"YQ==","X":1}]}"#.to_string()),
            ("a repeated member", r#"{"DeliveryStreamName":"s","DeliveryStreamName":"t","Records":[{"Data":"YQ=="}]}"#.to_string()),
            ("an empty name", body("", &["a"])),
            ("a long name", body(&"n".repeat(65), &["a"])),
            ("a name outside the pattern", body("s/1", &["a"])),
            ("no record", body("s", &[])),
            ("501 records", format!(r#"{{"DeliveryStreamName":"s","Records":[{}]}}"#, many.join(","))),
            ("not base64", r#"{"DeliveryStreamName":"s","Records":[{"Data":"YR=="}]}"#.to_string()),
            ("a record over 1,024,000 bytes", format!(r#"{{"DeliveryStreamName":"s","Records":[{{"Data":"{long}"}}]}}"#)),
            ("over 4 MiB in all", format!(r#"{{"DeliveryStreamName":"s","Records":[{}]}}"#, five.join(","))),
        ];
        for (what, text) in cases {
            assert!(read(text.as_bytes()).is_none(), "{what}");
        }
        let at_the_limits = format!(
            r#"{{"DeliveryStreamName":"{}","Records":[{}]}}"#,
            "n".repeat(64),
            five[..4].join(",")
        );
        assert!(read(at_the_limits.as_bytes()).is_some(), "at the limits");
    }
}
