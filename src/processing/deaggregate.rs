//! Record de-aggregation (docs/aws-behaviour.md section 7): one record carrying several JSON objects
//! (concatenated or newline-separated) or several delimited pieces becomes several records,
//! before the transform. At most 500 sub-records: a record with more, or whose JSON does not
//! parse as a sequence of objects, passes whole (as AWS does with more than 500).

use serde::de::IgnoredAny;

use crate::record::Record;
use crate::spec::Deaggregation;

/// AWS's limit of sub-records per record.
pub(crate) const MAX_SUB_RECORDS: usize = 500;

/// The sub-records of each record, in order; sub-records share their parent's `seq`.
pub(crate) fn split(how: &Deaggregation, records: Vec<Record>) -> Vec<Record> {
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let pieces = match how {
            Deaggregation::Json => json_pieces(&r.data),
            Deaggregation::Delimited(d) => delimited_pieces(&r.data, d.as_bytes()),
        };
        match pieces {
            Some(p) if p.len() <= MAX_SUB_RECORDS && !p.is_empty() => {
                out.extend(p.into_iter().enumerate().map(|(i, (a, b))| Record {
                    data: r.data.slice(a..b),
                    arrival_ms: r.arrival_ms,
                    seq: r.seq,
                    sub: i as u32,
                    kinesis: r.kinesis.clone(),
                }))
            }
            _ => out.push(r),
        }
    }
    out
}

/// Byte ranges of the JSON objects in `data`; None if it is not a sequence of objects.
fn json_pieces(data: &[u8]) -> Option<Vec<(usize, usize)>> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(data).into_iter::<IgnoredAny>();
    let mut start = 0;
    while let Some(item) = stream.next() {
        item.ok()?;
        let end = stream.byte_offset();
        let begin = start
            + data[start..end]
                .iter()
                .position(|b| !b.is_ascii_whitespace())?;
        if data[begin] != b'{' {
            return None;
        }
        out.push((begin, end));
        if out.len() > MAX_SUB_RECORDS {
            return None;
        }
        start = end;
    }
    Some(out)
}

/// Byte ranges between delimiters (an empty last piece is dropped).
fn delimited_pieces(data: &[u8], delimiter: &[u8]) -> Option<Vec<(usize, usize)>> {
    if delimiter.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + delimiter.len() <= data.len() {
        if &data[i..i + delimiter.len()] == delimiter {
            out.push((start, i));
            i += delimiter.len();
            start = i;
            if out.len() > MAX_SUB_RECORDS {
                return None;
            }
        } else {
            i += 1;
        }
    }
    if start < data.len() {
        out.push((start, data.len()));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn rec(data: &str) -> Record {
        Record {
            data: Bytes::from(data.to_string()),
            arrival_ms: 5,
            seq: 9,
            sub: 0,
            kinesis: None,
        }
    }

    fn texts(r: &[Record]) -> Vec<String> {
        r.iter()
            .map(|r| String::from_utf8_lossy(&r.data).into_owned())
            .collect()
    }

    #[test]
    fn concatenated_and_newline_separated_json() {
        let out = split(
            &Deaggregation::Json,
            vec![rec(r#"{"a":1}{"b":"}{"}
 {"c":[1,2]}
"#)],
        );
        assert_eq!(
            texts(&out),
            [r#"{"a":1}"#, r#"{"b":"}{"}"#, r#"{"c":[1,2]}"#]
        );
        assert!(out.iter().all(|r| r.seq == 9));
        assert_eq!(out.iter().map(|r| r.sub).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn what_cannot_be_split_passes_whole() {
        for data in ["not json", r#"{"a":1} [2]"#, r#"{"a":1"#] {
            let out = split(&Deaggregation::Json, vec![rec(data)]);
            assert_eq!(texts(&out), [data]);
        }
        let many = "{}".repeat(MAX_SUB_RECORDS + 1);
        assert_eq!(split(&Deaggregation::Json, vec![rec(&many)]).len(), 1);
        let exactly = "{}".repeat(MAX_SUB_RECORDS);
        assert_eq!(
            split(&Deaggregation::Json, vec![rec(&exactly)]).len(),
            MAX_SUB_RECORDS
        );
    }

    #[test]
    fn delimited_pieces() {
        let d = Deaggregation::Delimited("####".into());
        let out = split(&d, vec![rec("a####bb####c####")]);
        assert_eq!(texts(&out), ["a", "bb", "c"]);
        let out = split(&d, vec![rec("no delimiter")]);
        assert_eq!(texts(&out), ["no delimiter"]);
    }
}
