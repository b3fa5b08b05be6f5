//! PutRecordBatch, the call that carries the data, read straight from the body: the stream's
//! name and the records' base64 text borrowed from it (by `scan` for the body as SDKs write it,
//! else by a borrowing serde parse), the records decoded straight into their spool frames in
//! one buffer, the answer written as text. A profile of the acknowledgement path
//! (BENCHMARKS.md, issue 38) found a fifth of the daemon's time in malloc and free: the general way builds a JSON tree of
//! the body (a map, a key and a string per record), walks it with the service model, moves it
//! into the typed input and answers with a tree of 500 maps. Only a request that is valid as
//! AWS's model and limits say takes this way; any other (an error to report, a null, a member
//! firehosed does not read) makes `read` answer None and goes the general way
//! (`firehose::dispatch`), which says what AWS says: the answers are the same either way.

use serde::Deserialize;

use super::firehose::{MAX_BATCH_BYTES, MAX_BATCH_RECORDS, decode_batch};
use crate::spool::Frames;

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

/// A valid PutRecordBatch: the stream's name and the decoded records, framed for the spool.
pub(super) struct Batch<'a> {
    pub(super) name: &'a str,
    pub(super) data: Frames,
}

/// The batch in `body` if it is valid by the model's constraints and AWS's limits: a name of
/// 1-64 characters of `[a-zA-Z0-9_.-]`, 1-500 records, each of base64 text of at most
/// 1,024,000 bytes, 4 MiB in all. None for anything else, and for text with a JSON escape (no
/// SDK escapes base64 or a stream name; the general way reads it).
pub(super) fn read(body: &[u8]) -> Option<Batch<'_>> {
    let (name, texts) = match scan(body) {
        Some(scanned) => scanned,
        None => {
            let input: Input<'_> = serde_json::from_slice(body).ok()?;
            let texts = input
                .records
                .iter()
                .map(|r| Some(r.data.as_bytes()))
                .collect();
            (input.name, texts)
        }
    };
    if !crate::config::valid_stream_name(name)
        || texts.is_empty()
        || texts.len() > MAX_BATCH_RECORDS
    {
        return None;
    }
    let data = decode_batch(&texts).ok()?;
    if data.data_bytes() > MAX_BATCH_BYTES {
        return None;
    }
    Some(Batch { name, data })
}

/// The body as every SDK writes it, `{"DeliveryStreamName":"..","Records":[{"Data":".."},..]}`
/// (members in the model's order, any JSON whitespace between tokens), read without a JSON
/// parser: each string ends at the next quote (found with SIMD by memchr). A string is taken
/// as it is, unescaped, because what the caller then requires of it rules out an escape, a
/// control character and anything but ASCII: a stream name's pattern, and base64's alphabet,
/// which the SIMD decoder checks as it decodes (a backslash fails it, and the request goes the
/// general way). Anything else, or another order, is None: serde_json reads it. Records are
/// counted up to one past the limit.
fn scan(body: &[u8]) -> Option<(&str, Vec<Option<&[u8]>>)> {
    let mut s = Scanner { body, at: 0 };
    s.token(b"{")?;
    s.token(b"\"DeliveryStreamName\"")?;
    s.token(b":")?;
    let name = std::str::from_utf8(s.string()?).ok()?;
    s.token(b",")?;
    s.token(b"\"Records\"")?;
    s.token(b":")?;
    s.token(b"[")?;
    let mut texts = Vec::new();
    if s.token(b"]").is_none() {
        loop {
            s.token(b"{")?;
            s.token(b"\"Data\"")?;
            s.token(b":")?;
            let data = s.string()?;
            s.token(b"}")?;
            texts.push(Some(data));
            if texts.len() > MAX_BATCH_RECORDS {
                return None;
            }
            if s.token(b",").is_none() {
                s.token(b"]")?;
                break;
            }
        }
    }
    s.token(b"}")?;
    s.skip_space();
    (s.at == body.len()).then_some((name, texts))
}

/// A position in a body being scanned.
struct Scanner<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.body.get(self.at) {
            self.at += 1;
        }
    }

    /// Whitespace, then `token`.
    fn token(&mut self, token: &[u8]) -> Option<()> {
        self.skip_space();
        let end = self.at + token.len();
        (self.body.get(self.at..end)? == token).then(|| self.at = end)
    }

    /// Whitespace, then a string: its bytes up to the next quote, as they are (see `scan`).
    fn string(&mut self) -> Option<&'a [u8]> {
        self.token(b"\"")?;
        let rest = self.body.get(self.at..)?;
        let len = memchr::memchr(b'"', rest)?;
        self.at += len + 1;
        Some(&rest[..len])
    }
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
        let got = batch.data.records();
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

    /// What serde_json reads from a body, decoded: the reference the scanner must agree with.
    fn by_serde(text: &[u8]) -> Option<(String, Vec<Vec<u8>>)> {
        let input: Input<'_> = serde_json::from_slice(text).ok()?;
        let texts: Vec<Option<&[u8]>> = input
            .records
            .iter()
            .map(|r| Some(r.data.as_bytes()))
            .collect();
        let data = decode_batch(&texts).ok()?;
        let records = data.records().iter().map(|r| r.to_vec()).collect();
        Some((input.name.to_string(), records))
    }

    /// The scanner reads what SDKs send, whitespace and all; what it takes (and decodes) it
    /// reads as serde_json does, over valid bodies and thousands of mutations of them (bytes
    /// flipped, quotes, backslashes and spaces inserted, cuts): it never takes a body serde_json
    /// refuses or reads otherwise.
    #[test]
    fn the_scanner_takes_only_what_serde_json_reads_the_same() {
        let sdk = body("s-1", &["a", "", "{\"k\":1}\n"]);
        let spaced = " {\n \"DeliveryStreamName\" : \"s\" ,\r\n\t\"Records\":[ {\"Data\" : \"YQ==\"} , {\"Data\":\"\"} ] } \n";
        for text in [sdk.as_str(), spaced] {
            let (name, texts) = scan(text.as_bytes()).expect("scanned");
            let data = decode_batch(&texts).expect("decodes");
            let records = data.records().iter().map(|r| r.to_vec()).collect();
            assert_eq!(Some((name.to_string(), records)), by_serde(text.as_bytes()));
        }
        let others = [
            r#"{"Records":[{"Data":"YQ=="}],"DeliveryStreamName":"s"}"#,
            r#"{"DeliveryStreamName":"s","Records":[{"Data":"YQ=="}]} x"#,
            r#"{"DeliveryStreamName":"s","Records":[{"Data":"YQ=="},]}"#,
        ];
        for text in others {
            assert!(scan(text.as_bytes()).is_none(), "{text}");
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let seeds: Vec<String> = vec![
            sdk.clone(),
            spaced.to_string(),
            body("stream_name.x", &["hello", "wörld", &"z".repeat(300)]),
            format!(
                r#"{{"DeliveryStreamName":"s","Records":[{{"Data":"{}"}}]}}"#,
                b64.encode("q")
            ),
        ];
        let alphabet = b"\"\\ \t\n{}[],:=/+AZaz09\x00\x1f\x7f\xc3\xa9";
        let mut state = 0x243F_6A88_85A3_08D3_u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut taken = 0;
        for _ in 0..60_000 {
            let mut text = seeds[next(seeds.len())].as_bytes().to_vec();
            for _ in 0..1 + next(3) {
                let at = next(text.len() + 1);
                match next(4) {
                    0 if at < text.len() => text[at] = alphabet[next(alphabet.len())],
                    1 => text.insert(at, alphabet[next(alphabet.len())]),
                    2 if at < text.len() => {
                        text.remove(at);
                    }
                    _ => text.truncate(at),
                }
            }
            // What `read` goes on with: a valid name, and records that decode.
            let Some((name, texts)) = scan(&text) else {
                continue;
            };
            let Ok(data) = decode_batch(&texts) else {
                continue;
            };
            if !crate::config::valid_stream_name(name) {
                continue;
            }
            taken += 1;
            let records = data.records().iter().map(|r| r.to_vec()).collect();
            let ours = Some((name.to_string(), records));
            assert_eq!(ours, by_serde(&text), "{}", String::from_utf8_lossy(&text));
        }
        assert!(taken > 1_000, "{taken} mutations taken");
    }
}
