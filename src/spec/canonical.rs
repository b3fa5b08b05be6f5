//! A stream's canonical form and its digest, from which its version moves
//! (docs/durability.md, "Stream versions"). The form is the specification serialized as JSON with every field at its
//! default left out (`spec/mod.rs`) and every object's keys sorted, so it depends on the
//! configuration alone: not on Debug text, a dependency's types, the crate's version or the
//! order fields are declared in. A field added later, at its default, leaves no trace.

use std::fmt::Write as _;

use serde_json::Value;
use sha2::Digest as _;

use super::StreamSpec;

/// `sha256:<hex>` of a stream's canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Digest(String);

impl Digest {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// The digest of `spec`'s canonical form.
pub(crate) fn digest(spec: &StreamSpec) -> Digest {
    let text = canonical_text(spec);
    let hash = sha2::Sha256::digest(text.as_bytes());
    let mut out = String::from("sha256:");
    for b in hash {
        let _ = write!(out, "{b:02x}");
    }
    Digest(out)
}

/// The canonical form as text.
pub(crate) fn canonical_text(spec: &StreamSpec) -> String {
    // A specification is plain data: it always serializes.
    let value = serde_json::to_value(spec).unwrap_or(Value::Null);
    let mut out = String::new();
    write_sorted(&value, &mut out);
    out
}

/// JSON with every object's keys in byte order (whatever map type serde_json was built
/// with) and no whitespace.
fn write_sorted(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_sorted(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> StreamSpec {
        crate::config::parse_stream("t", yaml, true).expect("valid")
    }

    /// Only what was configured away from its default is in the form; a field added later at
    /// its default (here the KMS key, once new) leaves no trace.
    #[test]
    fn fields_at_their_default_leave_no_trace() {
        let plain = spec(
            "name: orders\nsource: {direct_put: {}}\ndestinations:\n  - s3: {bucket: lake}\n    prefix: p/\n",
        );
        assert_eq!(
            canonical_text(&plain),
            r#"{"destinations":[{"buffering":{"interval_seconds":300,"size_mib":5},"prefix":"p/","target":{"S3":{"bucket":"lake"}}}],"name":"orders","source":"DirectPut"}"#
        );
        let mut with_key = plain.clone();
        if let crate::spec::Target::S3 { kms_key_arn, .. } = &mut with_key.destinations[0].target {
            *kms_key_arn = Some("arn:aws:kms:us-east-1:123456789012:key/k".into());
        }
        assert_ne!(digest(&with_key), digest(&plain));
        let explicit = spec(
            "name: orders\nsource: {direct_put: {}}\ndestinations:\n  - s3: {bucket: lake}\n    prefix: p/\n    compression: UNCOMPRESSED\n    delivery: at_least_once\n    custom_time_zone: UTC\n",
        );
        assert_eq!(digest(&explicit), digest(&plain), "defaults written out");
    }

    /// The form holds configuration only: nothing of the writers a conversion makes (whose
    /// Debug text carried the crate's version into the fingerprints of earlier releases).
    #[test]
    fn a_converting_stream_depends_on_its_configuration_alone() {
        let parquet = spec(
            "name: e\nsource: {direct_put: {}}\ndestinations:\n  - directory: out\n    data_format_conversion:\n      schema: {columns: [{name: id, type: bigint}]}\n",
        );
        let text = canonical_text(&parquet);
        assert!(!text.contains(env!("CARGO_PKG_VERSION")), "{text}");
        assert!(!text.contains("parquet-rs"), "{text}");
        assert_eq!(
            text,
            r#"{"destinations":[{"buffering":{"interval_seconds":300,"size_mib":128},"format_conversion":{"columns":[{"name":"id","type":"bigint"}]},"target":{"Directory":"out"}}],"name":"e","source":"DirectPut"}"#
        );
    }
}
