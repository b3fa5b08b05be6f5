//! AWS's own Firehose service model as the source of every request constraint: botocore's
//! `firehose/2015-08-04/service-2.json` (Apache-2.0), vendored unchanged as
//! `model/firehose-2015-08-04.json` and compared with the pinned botocore's copy by
//! `tests/e2e/model.rs`. Each request is checked against its operation's input shape before
//! anything else is looked at, as AWS does: a member of the wrong JSON type is a
//! SerializationException; broken constraints (required, length, range, pattern, enum) are one
//! ValidationException that counts and lists them all in AWS's words ("2 validation errors
//! detected: Value '' at 'deliveryStreamName' failed to satisfy constraint: ...").
//! Members the model does not know are ignored, as AWS ignores them.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::error::AwsError;

const MODEL_JSON: &str = include_str!("../../model/firehose-2015-08-04.json");

/// Parsed once, on the first request; the file is part of the binary and a unit test parses
/// it, so failing here is a build defect, not bad input.
static MODEL: LazyLock<Model> =
    LazyLock::new(|| Model::parse(MODEL_JSON).expect("the vendored service model parses"));

/// Checks `input` against the input shape of `operation` (operations the model lacks pass).
pub(crate) fn check_input(operation: &str, input: &Value) -> Result<(), AwsError> {
    MODEL.check_input(operation, input)
}

#[derive(Deserialize)]
struct RawModel {
    operations: HashMap<String, RawOperation>,
    shapes: HashMap<String, RawShape>,
}

#[derive(Deserialize)]
struct RawOperation {
    input: Option<ShapeRef>,
}

#[derive(Deserialize)]
struct ShapeRef {
    shape: String,
}

#[derive(Deserialize)]
struct RawShape {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    members: BTreeMap<String, ShapeRef>,
    #[serde(default)]
    required: Vec<String>,
    member: Option<ShapeRef>,
    key: Option<ShapeRef>,
    value: Option<ShapeRef>,
    min: Option<f64>,
    max: Option<f64>,
    pattern: Option<String>,
    #[serde(rename = "enum")]
    enum_values: Option<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
enum ModelError {
    #[error("the model does not parse: {0}")]
    Json(#[from] serde_json::Error),
    #[error("shape {0} has an unknown type {1}")]
    Type(String, String),
    #[error("shape {0} names a missing part")]
    Incomplete(String),
}

enum Kind {
    Structure {
        members: Vec<(String, String)>,
        required: Vec<String>,
    },
    List(String),
    Map {
        key: String,
        value: String,
    },
    String,
    Integer,
    Double,
    Boolean,
    Blob,
    Timestamp,
}

struct Shape {
    kind: Kind,
    min: Option<f64>,
    max: Option<f64>,
    pattern: Option<Pattern>,
    enum_values: Option<Vec<String>>,
}

/// A model pattern, matched as Java's `String.matches` does (the whole value). The `regex`
/// crate has no look-around; the model's two patterns that open with a negative lookahead
/// (`^(?!aws:)...`, `^(?!\s*$).+`) are split into "must not start with" and "must match".
/// A pattern that still does not compile (only the Redshift JDBC URL's, with a lookbehind;
/// firehosed refuses Redshift destinations anyway) is not checked.
struct Pattern {
    text: String,
    whole: Regex,
    not_prefix: Option<Regex>,
}

impl Pattern {
    fn compile(text: &str) -> Option<Pattern> {
        let java = java_classes(text);
        let (not_prefix, rest) = match java.strip_prefix("^(?!") {
            Some(after) => {
                let close = lookahead_end(after)?;
                let prefix = Regex::new(&format!("^(?:{})", &after[..close])).ok()?;
                (Some(prefix), &after[close + 1..])
            }
            None => (None, java.as_str()),
        };
        let whole = Regex::new(&format!("^(?:{rest})$")).ok()?;
        Some(Pattern {
            text: text.to_string(),
            whole,
            not_prefix,
        })
    }

    fn matches(&self, s: &str) -> bool {
        self.whole.is_match(s) && !self.not_prefix.as_ref().is_some_and(|p| p.is_match(s))
    }
}

/// Java's `\w`, `\d` and `\s` are ASCII classes (the `regex` crate's are Unicode, and a
/// Unicode `\w{1,255}` is too large to compile): spelled out, inside brackets or not.
fn java_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut in_class = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push(c);
                    break;
                };
                let ascii = match next.to_ascii_lowercase() {
                    'w' => Some("a-zA-Z_0-9"),
                    'd' => Some("0-9"),
                    's' => Some(" \\t\\n\\x0B\\f\\r"),
                    _ => None,
                };
                let negated = next.is_ascii_uppercase();
                match (ascii, in_class, negated) {
                    (Some(set), true, false) => out.push_str(set),
                    (Some(set), false, _) => {
                        out.push_str(if negated { "[^" } else { "[" });
                        out.push_str(set);
                        out.push(']');
                    }
                    // \W, \D, \S inside brackets: left to the regex crate (no model pattern has one).
                    (_, _, _) => {
                        out.push(c);
                        out.push(next);
                    }
                }
            }
            '[' => {
                in_class = true;
                out.push(c);
            }
            ']' => {
                in_class = false;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// The index of the `)` that closes a group whose `(` was just before `s`.
fn lookahead_end(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut escaped = false;
    let mut in_class = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '[' => in_class = true,
            ']' => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => {
                if depth == 0 {
                    return Some(i);
                }
                depth -= 1;
            }
            _ => {}
        }
    }
    None
}

struct Model {
    inputs: HashMap<String, String>,
    shapes: HashMap<String, Shape>,
}

impl Model {
    fn parse(text: &str) -> Result<Model, ModelError> {
        let raw: RawModel = serde_json::from_str(text)?;
        let inputs = raw
            .operations
            .into_iter()
            .filter_map(|(name, op)| op.input.map(|i| (name, i.shape)))
            .collect();
        let mut shapes = HashMap::new();
        for (name, s) in raw.shapes {
            let part = |r: Option<ShapeRef>| {
                r.map(|r| r.shape)
                    .ok_or(ModelError::Incomplete(name.clone()))
            };
            let kind = match s.kind.as_str() {
                "structure" => Kind::Structure {
                    members: s.members.into_iter().map(|(m, r)| (m, r.shape)).collect(),
                    required: s.required,
                },
                "list" => Kind::List(part(s.member)?),
                "map" => Kind::Map {
                    key: part(s.key)?,
                    value: part(s.value)?,
                },
                "string" => Kind::String,
                "integer" | "long" => Kind::Integer,
                "double" | "float" => Kind::Double,
                "boolean" => Kind::Boolean,
                "blob" => Kind::Blob,
                "timestamp" => Kind::Timestamp,
                other => return Err(ModelError::Type(name, other.to_string())),
            };
            let pattern = s.pattern.as_deref().and_then(Pattern::compile);
            shapes.insert(
                name,
                Shape {
                    kind,
                    min: s.min,
                    max: s.max,
                    pattern,
                    enum_values: s.enum_values,
                },
            );
        }
        Ok(Model { inputs, shapes })
    }

    fn check_input(&self, operation: &str, input: &Value) -> Result<(), AwsError> {
        let Some(shape) = self.inputs.get(operation) else {
            return Ok(());
        };
        let mut walk = Walk {
            model: self,
            errors: Vec::new(),
        };
        walk.value(shape, input, &Path::Root)?;
        match walk.errors.len() {
            0 => Ok(()),
            n => Err(AwsError::validation(format!(
                "{n} validation error{} detected: {}",
                if n == 1 { "" } else { "s" },
                walk.errors.join("; ")
            ))),
        }
    }
}

/// One request's check: the constraint errors found so far.
struct Walk<'a> {
    model: &'a Model,
    errors: Vec<String>,
}

impl Walk<'_> {
    fn value(&mut self, shape_name: &str, v: &Value, path: &Path<'_>) -> Result<(), AwsError> {
        let Some(shape) = self.model.shapes.get(shape_name) else {
            return Ok(());
        };
        match &shape.kind {
            Kind::Structure { members, required } => {
                let Value::Object(map) = v else {
                    return Err(wrong_type(path, "a structure", v));
                };
                self.structure(members, required, map, path)?;
            }
            Kind::List(member) => {
                let Value::Array(items) = v else {
                    return Err(wrong_type(path, "a list", v));
                };
                self.length(shape, items.len(), v, path);
                for (i, item) in items.iter().enumerate() {
                    if !item.is_null() {
                        self.value(member, item, &Path::Index(path, i))?;
                    }
                }
            }
            Kind::Map { key, value } => {
                let Value::Object(map) = v else {
                    return Err(wrong_type(path, "a map", v));
                };
                self.length(shape, map.len(), v, path);
                for (k, item) in map {
                    self.map_key(key, k, path);
                    if !item.is_null() {
                        self.value(value, item, &Path::Key(path, k))?;
                    }
                }
            }
            Kind::String => {
                let Value::String(s) = v else {
                    return Err(wrong_type(path, "a string", v));
                };
                for problem in string_problems(shape, s) {
                    self.errors.push(failed(&format!("'{s}'"), path, &problem));
                }
            }
            Kind::Integer | Kind::Double => self.number(shape, v, path)?,
            Kind::Boolean => {
                if !v.is_boolean() {
                    return Err(wrong_type(path, "a boolean", v));
                }
            }
            Kind::Blob => {
                let Value::String(b64) = v else {
                    return Err(wrong_type(path, "base64 text", v));
                };
                // The length of the bytes, without decoding them (the operation decodes and
                // rejects what is not base64); AWS shows a blob as Java's ByteBuffer.
                let len = decoded_len(b64);
                let lf = len as f64;
                if shape.min.is_some_and(|m| lf < m) || shape.max.is_some_and(|m| lf > m) {
                    let shown = format!("'java.nio.HeapByteBuffer[pos=0 lim={len} cap={len}]'");
                    self.length(shape, len, &Value::String(shown), path);
                }
            }
            Kind::Timestamp => {
                if !(v.is_number() || v.is_string()) {
                    return Err(wrong_type(path, "a timestamp", v));
                }
            }
        }
        Ok(())
    }

    fn structure(
        &mut self,
        members: &[(String, String)],
        required: &[String],
        map: &serde_json::Map<String, Value>,
        path: &Path<'_>,
    ) -> Result<(), AwsError> {
        for (name, member_shape) in members {
            let member_path = Path::Member(path, name);
            match map.get(name).filter(|m| !m.is_null()) {
                Some(m) => self.value(member_shape, m, &member_path)?,
                None if required.contains(name) => self.errors.push(format!(
                    "Value null at '{member_path}' failed to satisfy constraint: Member must not be null"
                )),
                None => {}
            }
        }
        Ok(())
    }

    fn number(&mut self, shape: &Shape, v: &Value, path: &Path<'_>) -> Result<(), AwsError> {
        let Some(n) = v.as_f64() else {
            return Err(wrong_type(path, "a number", v));
        };
        if matches!(shape.kind, Kind::Integer) && n.fract() != 0.0 {
            return Err(wrong_type(path, "an integer", v));
        }
        let shown = format!("'{v}'");
        if let Some(min) = shape.min.filter(|m| n < *m) {
            let c = format!(
                "Member must have value greater than or equal to {}",
                num(min)
            );
            self.errors.push(failed(&shown, path, &c));
        }
        if let Some(max) = shape.max.filter(|m| n > *m) {
            let c = format!("Member must have value less than or equal to {}", num(max));
            self.errors.push(failed(&shown, path, &c));
        }
        Ok(())
    }

    /// The length constraints of a list, map or blob. The value is shown only when a
    /// constraint fails: a valid PutRecordBatch must not pay for printing its records.
    fn length(&mut self, shape: &Shape, len: usize, v: &Value, path: &Path<'_>) {
        let shown = || match v {
            Value::String(s) => s.clone(),
            other => format!("'{}'", shortened(other)),
        };
        let len = len as f64;
        if let Some(min) = shape.min.filter(|m| len < *m) {
            let c = format!(
                "Member must have length greater than or equal to {}",
                num(min)
            );
            self.errors.push(failed(&shown(), path, &c));
        }
        if let Some(max) = shape.max.filter(|m| len > *m) {
            let c = format!("Member must have length less than or equal to {}", num(max));
            self.errors.push(failed(&shown(), path, &c));
        }
    }

    fn map_key(&mut self, key_shape: &str, key: &str, path: &Path<'_>) {
        let Some(shape) = self.model.shapes.get(key_shape) else {
            return;
        };
        let problems = string_problems(shape, key);
        if !problems.is_empty() {
            let c = format!(
                "Map keys must satisfy constraint: [{}]",
                problems.join(", ")
            );
            self.errors.push(failed(&format!("'{key}'"), path, &c));
        }
    }
}

/// What is wrong with a string value: length (in UTF-16 units, as Java counts), enum, pattern.
fn string_problems(shape: &Shape, s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let len = s.encode_utf16().count() as f64;
    if let Some(min) = shape.min.filter(|m| len < *m) {
        out.push(format!(
            "Member must have length greater than or equal to {}",
            num(min)
        ));
    }
    if let Some(max) = shape.max.filter(|m| len > *m) {
        out.push(format!(
            "Member must have length less than or equal to {}",
            num(max)
        ));
    }
    if let Some(values) = &shape.enum_values
        && !values.iter().any(|e| e == s)
    {
        out.push(format!(
            "Member must satisfy enum value set: [{}]",
            values.join(", ")
        ));
    }
    if let Some(p) = &shape.pattern
        && !p.matches(s)
    {
        out.push(format!(
            "Member must satisfy regular expression pattern: {}",
            p.text
        ));
    }
    out
}

/// A list or map as shown in a message: its JSON, cut after 256 characters (a refused batch of
/// 501 records must not come back whole).
fn shortened(v: &Value) -> String {
    // At most the first 256 characters of the JSON are written (a 500-record list is not
    // printed whole to be cut).
    struct Capped(String);
    impl std::io::Write for Capped {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.0.len() > 1024 {
                return Err(std::io::Error::other("enough"));
            }
            self.0.push_str(&String::from_utf8_lossy(buf));
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Capped(String::new());
    let _ = serde_json::to_writer(&mut out, v);
    let mut text = out.0;
    if let Some((i, _)) = text.char_indices().nth(256) {
        text.truncate(i);
        text.push_str("...");
    }
    text
}

fn failed(shown: &str, path: &Path<'_>, constraint: &str) -> String {
    format!("Value {shown} at '{path}' failed to satisfy constraint: {constraint}")
}

/// Where a value is in the request, as AWS names it in its messages: members with their first
/// letter in lower case, list members `name.N.member` (from 1), map values `name.KEY`. Built on
/// the stack as the walk goes down and written out only for an error: a valid request costs no
/// allocation per member.
enum Path<'a> {
    Root,
    Member(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
    Key(&'a Path<'a>, &'a str),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dot = |f: &mut std::fmt::Formatter<'_>, parent: &Path<'_>| {
            if matches!(parent, Path::Root) {
                Ok(())
            } else {
                write!(f, "{parent}.")
            }
        };
        match self {
            Path::Root => Ok(()),
            Path::Member(parent, name) => {
                dot(f, parent)?;
                let mut chars = name.chars();
                if let Some(first) = chars.next() {
                    write!(f, "{}{}", first.to_lowercase(), chars.as_str())?;
                }
                Ok(())
            }
            Path::Index(parent, i) => write!(f, "{parent}.{}.member", i + 1),
            Path::Key(parent, k) => write!(f, "{parent}.{k}"),
        }
    }
}

fn num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// Bytes that base64 text of this length decodes to (an estimate for text that is not base64,
/// which the operation refuses on its own).
fn decoded_len(b64: &str) -> usize {
    let t = b64.trim_end_matches('=');
    t.len() * 3 / 4
}

fn wrong_type(path: &Path<'_>, expected: &str, v: &Value) -> AwsError {
    let found = match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a structure",
    };
    let at = match path {
        Path::Root => "the request".to_string(),
        _ => path.to_string(),
    };
    AwsError::serialization(format!(
        "Cannot read the request: '{at}' must be {expected}, not {found}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(op: &str, input: Value) -> String {
        let e = check_input(op, &input).expect_err("refused");
        assert_eq!(e.kind, "ValidationException", "{}", e.message);
        e.message
    }

    #[test]
    fn the_vendored_model_parses_and_its_patterns_compile() {
        let model = Model::parse(MODEL_JSON).expect("parses");
        assert_eq!(model.inputs.len(), 12);
        let raw: Value = serde_json::from_str(MODEL_JSON).expect("JSON");
        let unchecked: Vec<&str> = raw["shapes"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(_, s)| s["pattern"].as_str())
            .filter(|p| Pattern::compile(p).is_none())
            .collect();
        // Only the Redshift JDBC URL's pattern (lookbehind) is left unchecked.
        assert_eq!(unchecked.len(), 1, "{unchecked:?}");
        assert!(unchecked[0].starts_with("jdbc:"), "{unchecked:?}");
    }

    #[test]
    fn patterns_use_javas_ascii_classes() {
        let p = Pattern::compile("^\\S+$").expect("compiles");
        // Java's \S is [^ \t\n\x0B\f\r]: a no-break space is not whitespace there.
        assert!(p.matches("a\u{a0}b"));
        assert!(!p.matches("a b"));
        let w = Pattern::compile("[\\w]+").expect("compiles");
        assert!(w.matches("abc_9") && !w.matches("é"));
    }

    #[test]
    fn constraint_errors_are_counted_and_named_as_aws_names_them() {
        assert_eq!(
            message("DescribeDeliveryStream", json!({"DeliveryStreamName": ""})),
            "2 validation errors detected: Value '' at 'deliveryStreamName' failed to satisfy constraint: Member must have length greater than or equal to 1; Value '' at 'deliveryStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        );
        assert_eq!(
            message("DescribeDeliveryStream", json!({})),
            "1 validation error detected: Value null at 'deliveryStreamName' failed to satisfy constraint: Member must not be null"
        );
        let m = message(
            "CreateDeliveryStream",
            json!({"DeliveryStreamName": "s", "ExtendedS3DestinationConfiguration": {
                "BucketARN": "lake", "RoleARN": "arn:aws:iam::123456789012:role/r",
                "BufferingHints": {"SizeInMBs": 500, "IntervalInSeconds": 60}}}),
        );
        assert!(m.starts_with("2 validation errors detected: "), "{m}");
        assert!(m.contains("Value 'lake' at 'extendedS3DestinationConfiguration.bucketARN' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:.*:s3:::[\\w\\.\\-]{1,255}"), "{m}");
        assert!(m.contains("Value '500' at 'extendedS3DestinationConfiguration.bufferingHints.sizeInMBs' failed to satisfy constraint: Member must have value less than or equal to 128"), "{m}");
    }

    #[test]
    fn list_members_tag_patterns_and_blobs_are_checked() {
        let m = message(
            "TagDeliveryStream",
            json!({"DeliveryStreamName": "s", "Tags": [{"Key": "ok", "Value": "1"}, {"Key": "aws:x"}]}),
        );
        assert_eq!(
            m,
            "1 validation error detected: Value 'aws:x' at 'tags.2.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(?!aws:)[\\p{L}\\p{Z}\\p{N}_.:\\/=+\\-@%]*$"
        );
        let tags: Vec<Value> = (0..51).map(|i| json!({"Key": format!("k{i}")})).collect();
        let m = message(
            "TagDeliveryStream",
            json!({"DeliveryStreamName": "s", "Tags": tags}),
        );
        assert!(m.contains("at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50"), "{m}");
        let big = "A".repeat(1_365_336); // 1,024,002 bytes once decoded
        let m = message(
            "PutRecord",
            json!({"DeliveryStreamName": "s", "Record": {"Data": big}}),
        );
        assert_eq!(
            m,
            "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1024002 cap=1024002]' at 'record.data' failed to satisfy constraint: Member must have length less than or equal to 1024000"
        );
        assert!(
            check_input(
                "TagDeliveryStream",
                &json!({"DeliveryStreamName": "s", "Tags": [{"Key": "Ünïcode key"}]})
            )
            .is_ok()
        );
    }

    #[test]
    fn wrong_json_types_are_serialization_errors_and_unknown_members_are_ignored() {
        let e = check_input("DescribeDeliveryStream", &json!({"DeliveryStreamName": 5}))
            .expect_err("refused");
        assert_eq!(e.kind, "SerializationException");
        assert!(
            e.message.contains("'deliveryStreamName' must be a string"),
            "{}",
            e.message
        );
        let e = check_input("ListDeliveryStreams", &json!({"Limit": 1.5})).expect_err("refused");
        assert_eq!(e.kind, "SerializationException");
        assert!(
            check_input(
                "DescribeDeliveryStream",
                &json!({"DeliveryStreamName": "s", "Extra": [1]})
            )
            .is_ok()
        );
        assert!(check_input("NotAnOperation", &json!(5)).is_ok());
    }
}
