//! Apache Avro object container files, the encoding of Iceberg's manifests and manifest lists
//! (Avro 1.11 specification, "Binary Encoding" and "Object Container Files"). Only what those
//! files use: the writer's schema from the header drives decoding (manifest lists written by
//! Java, pyiceberg or iceberg-rust differ in fields and order), and our own schemas drive
//! encoding. Codecs `null` and `deflate` (raw RFC 1951, Iceberg's default) both ways, `snappy`
//! when reading. Lengths and counts are checked against the bytes left, so a damaged file is
//! an error, never a panic or a huge allocation.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;

use serde_json::Value as Json;

const MAGIC: [u8; 4] = *b"Obj\x01";
/// Items of zero-byte types (null, empty records) an array may claim: they take no input, so
/// the input's length does not bound them.
const MAX_EMPTY_ITEMS: usize = 1 << 20;
/// The most a compressed block may inflate to.
const MAX_BLOCK_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum AvroError {
    #[error("not an Avro object container file")]
    Magic,
    #[error("the Avro data ends early")]
    Truncated,
    #[error("an Avro {0} is out of range")]
    Range(&'static str),
    #[error("the Avro schema is not understood: {0}")]
    Schema(String),
    #[error("Avro codec {0:?} is not supported")]
    Codec(String),
    #[error("the Avro block's sync marker does not match the header's")]
    Sync,
    #[error("a value does not match its Avro schema: {0}")]
    Mismatch(String),
    #[error("cannot inflate an Avro block")]
    Inflate(#[source] std::io::Error),
}

/// An Avro schema, named types resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Schema {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Fixed(usize),
    Enum(usize),
    Array(Box<Schema>),
    Map(Box<Schema>),
    Union(Vec<Schema>),
    Record(Arc<Record>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    pub(crate) name: String,
    pub(crate) fields: Vec<RecordField>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecordField {
    pub(crate) name: String,
    pub(crate) schema: Schema,
    /// Iceberg's `field-id` attribute.
    pub(crate) field_id: Option<i64>,
}

impl Record {
    /// The index of a field: by Iceberg field id when the schema has ids, else by name.
    pub(crate) fn position(&self, id: i64, name: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| f.field_id == Some(id))
            .or_else(|| self.fields.iter().position(|f| f.name == name))
    }
}

/// A decoded (or to be encoded) value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Boolean(bool),
    Int(i32),
    Long(i64),
    Float(f32),
    Double(f64),
    Bytes(Vec<u8>),
    String(String),
    Fixed(Vec<u8>),
    Enum(u32),
    Array(Vec<Value>),
    Map(Vec<(String, Value)>),
    /// A union's branch and its value.
    Union(u32, Box<Value>),
    /// The fields in schema order.
    Record(Vec<Value>),
}

impl Value {
    /// The value inside an optional (`["null", T]`) union: None for null.
    pub(crate) fn present(&self) -> Option<&Value> {
        match self {
            Value::Null => None,
            Value::Union(_, v) => v.present(),
            v => Some(v),
        }
    }

    pub(crate) fn as_long(&self) -> Option<i64> {
        match self.present()? {
            Value::Long(v) => Some(*v),
            Value::Int(v) => Some(i64::from(*v)),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self.present()? {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// `["null", T]` holding `v`.
    pub(crate) fn some(v: Value) -> Value {
        Value::Union(1, Box::new(v))
    }

    /// `["null", T]` holding null.
    pub(crate) fn none() -> Value {
        Value::Union(0, Box::new(Value::Null))
    }
}

/// Parses a schema's JSON.
pub(crate) fn parse_schema(json: &Json) -> Result<Schema, AvroError> {
    let mut names = HashMap::new();
    parse(json, &mut names, 0)
}

fn parse(
    json: &Json,
    names: &mut HashMap<String, Schema>,
    depth: usize,
) -> Result<Schema, AvroError> {
    if depth > 64 {
        return Err(AvroError::Schema("nested too deeply".into()));
    }
    match json {
        Json::String(name) => primitive(name)
            .or_else(|| names.get(name).cloned())
            .ok_or_else(|| AvroError::Schema(format!("unknown type {name:?}"))),
        Json::Array(branches) => Ok(Schema::Union(
            branches
                .iter()
                .map(|b| parse(b, names, depth + 1))
                .collect::<Result<_, _>>()?,
        )),
        Json::Object(o) => {
            let ty = o
                .get("type")
                .ok_or_else(|| AvroError::Schema("a type without \"type\"".into()))?;
            let schema = match ty.as_str() {
                Some("record" | "error") => Schema::Record(Arc::new(record(o, names, depth)?)),
                Some("array") => {
                    let items = o.get("items").ok_or_else(|| missing("items"))?;
                    Schema::Array(Box::new(parse(items, names, depth + 1)?))
                }
                Some("map") => {
                    let values = o.get("values").ok_or_else(|| missing("values"))?;
                    Schema::Map(Box::new(parse(values, names, depth + 1)?))
                }
                Some("fixed") => {
                    let size = o
                        .get("size")
                        .and_then(Json::as_u64)
                        .ok_or_else(|| missing("size"))?;
                    Schema::Fixed(
                        usize::try_from(size).map_err(|_| AvroError::Range("fixed size"))?,
                    )
                }
                Some("enum") => {
                    let symbols = o
                        .get("symbols")
                        .and_then(Json::as_array)
                        .ok_or_else(|| missing("symbols"))?;
                    Schema::Enum(symbols.len())
                }
                // {"type": "long", "logicalType": ...} and {"type": {...}}
                _ => return parse(ty, names, depth + 1),
            };
            if let (Some(name), false) = (
                o.get("name").and_then(Json::as_str),
                matches!(schema, Schema::Record(_)),
            ) {
                names.insert(name.to_string(), schema.clone());
            }
            Ok(schema)
        }
        _ => Err(AvroError::Schema(format!("{json} is not a type"))),
    }
}

fn record(
    o: &serde_json::Map<String, Json>,
    names: &mut HashMap<String, Schema>,
    depth: usize,
) -> Result<Record, AvroError> {
    let name = o
        .get("name")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let fields = o
        .get("fields")
        .and_then(Json::as_array)
        .ok_or_else(|| missing("fields"))?
        .iter()
        .map(|f| {
            let field_name = f
                .get("name")
                .and_then(Json::as_str)
                .ok_or_else(|| missing("name"))?;
            let ty = f.get("type").ok_or_else(|| missing("type"))?;
            Ok(RecordField {
                name: field_name.to_string(),
                schema: parse(ty, names, depth + 1)?,
                field_id: f.get("field-id").and_then(Json::as_i64),
            })
        })
        .collect::<Result<Vec<_>, AvroError>>()?;
    let record = Record {
        name: name.clone(),
        fields,
    };
    names.insert(name, Schema::Record(Arc::new(record.clone())));
    Ok(record)
}

fn missing(what: &str) -> AvroError {
    AvroError::Schema(format!("missing {what:?}"))
}

fn primitive(name: &str) -> Option<Schema> {
    Some(match name {
        "null" => Schema::Null,
        "boolean" => Schema::Boolean,
        "int" => Schema::Int,
        "long" => Schema::Long,
        "float" => Schema::Float,
        "double" => Schema::Double,
        "bytes" => Schema::Bytes,
        "string" => Schema::String,
        _ => return None,
    })
}

/// An object container file's content.
#[derive(Debug)]
pub(crate) struct Container {
    pub(crate) schema: Schema,
    /// The header's metadata (`avro.schema` and `avro.codec` included).
    #[cfg_attr(not(test), allow(dead_code))]
    // the tests read the header; so will manifest readers
    pub(crate) meta: Vec<(String, Vec<u8>)>,
    pub(crate) values: Vec<Value>,
}

impl Container {
    #[cfg_attr(not(test), allow(dead_code))] // the tests read the header; so will manifest readers
    pub(crate) fn meta(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// How blocks are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    #[cfg_attr(not(test), allow(dead_code))] // what the tests compare deflate with
    Null,
    Deflate,
}

/// Writes an object container file: `schema_json` is the writer's schema as readers will see
/// it (with Iceberg's field ids), `schema` the same parsed; `meta` the header's other keys.
pub(crate) fn write_container(
    schema_json: &str,
    schema: &Schema,
    meta: &[(&str, String)],
    values: &[Value],
    codec: Codec,
) -> Result<Vec<u8>, AvroError> {
    let mut out = MAGIC.to_vec();
    let codec_name = match codec {
        Codec::Null => "null",
        Codec::Deflate => "deflate",
    };
    let mut header: Vec<(&str, &[u8])> = vec![
        ("avro.schema", schema_json.as_bytes()),
        ("avro.codec", codec_name.as_bytes()),
    ];
    header.extend(meta.iter().map(|(k, v)| (*k, v.as_bytes())));
    write_long(&mut out, header.len() as i64);
    for (k, v) in header {
        write_bytes(&mut out, k.as_bytes());
        write_bytes(&mut out, v);
    }
    write_long(&mut out, 0);
    let sync: [u8; 16] = *uuid::Uuid::new_v4().as_bytes();
    out.extend_from_slice(&sync);
    if values.is_empty() {
        return Ok(out);
    }
    let mut block = Vec::new();
    for v in values {
        encode(schema, v, &mut block)?;
    }
    let block = match codec {
        Codec::Null => block,
        Codec::Deflate => {
            let mut e =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&block).map_err(AvroError::Inflate)?;
            e.finish().map_err(AvroError::Inflate)?
        }
    };
    write_long(&mut out, values.len() as i64);
    write_long(&mut out, block.len() as i64);
    out.extend_from_slice(&block);
    out.extend_from_slice(&sync);
    Ok(out)
}

/// Reads an object container file with the writer's schema from its header.
pub(crate) fn read_container(bytes: &[u8]) -> Result<Container, AvroError> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(4)? != MAGIC {
        return Err(AvroError::Magic);
    }
    let mut meta = Vec::new();
    loop {
        let n = r.block_count()?;
        if n == 0 {
            break;
        }
        for _ in 0..n {
            let k = String::from_utf8(r.bytes()?.to_vec())
                .map_err(|_| AvroError::Range("metadata key"))?;
            let v = r.bytes()?.to_vec();
            meta.push((k, v));
        }
    }
    let sync: [u8; 16] = r.take(16)?.try_into().map_err(|_| AvroError::Truncated)?;
    let get = |key: &str| {
        meta.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    };
    let schema_json: Json =
        serde_json::from_slice(get("avro.schema").ok_or_else(|| missing("avro.schema"))?)
            .map_err(|e| AvroError::Schema(e.to_string()))?;
    let schema = parse_schema(&schema_json)?;
    let codec = String::from_utf8_lossy(get("avro.codec").unwrap_or(b"null")).into_owned();
    let mut values = Vec::new();
    while r.at < r.bytes.len() {
        let count = r.long()?;
        let size = usize::try_from(r.long()?).map_err(|_| AvroError::Range("block size"))?;
        let data = r.take(size)?;
        let inflated;
        let block: &[u8] = match codec.as_str() {
            "null" => data,
            "deflate" => {
                inflated = inflate(data)?;
                &inflated
            }
            "snappy" => {
                inflated = unsnappy(data)?;
                &inflated
            }
            other => return Err(AvroError::Codec(other.to_string())),
        };
        let mut b = Reader {
            bytes: block,
            at: 0,
        };
        for _ in 0..count {
            values.push(decode(&schema, &mut b)?);
        }
        if r.take(16)? != sync {
            return Err(AvroError::Sync);
        }
    }
    Ok(Container {
        schema,
        meta,
        values,
    })
}

fn inflate(data: &[u8]) -> Result<Vec<u8>, AvroError> {
    let mut out = Vec::new();
    // Raw deflate stops at its final block: pyiceberg's files carry stray trailer bytes after it.
    flate2::read::DeflateDecoder::new(data)
        .take(MAX_BLOCK_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(AvroError::Inflate)?;
    if out.len() as u64 > MAX_BLOCK_BYTES {
        return Err(AvroError::Range("block size"));
    }
    Ok(out)
}

/// Avro's snappy codec: the compressed block, then the CRC32 of the uncompressed bytes.
fn unsnappy(data: &[u8]) -> Result<Vec<u8>, AvroError> {
    let body = data
        .len()
        .checked_sub(4)
        .map(|n| &data[..n])
        .ok_or(AvroError::Truncated)?;
    let len = snap::raw::decompress_len(body)
        .map_err(|e| AvroError::Inflate(std::io::Error::other(e)))?;
    if len as u64 > MAX_BLOCK_BYTES {
        return Err(AvroError::Range("block size"));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| AvroError::Inflate(std::io::Error::other(e)))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], AvroError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or(AvroError::Truncated)?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn long(&mut self) -> Result<i64, AvroError> {
        let mut n: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = *self.take(1)?.first().ok_or(AvroError::Truncated)?;
            if shift == 63 && b > 1 {
                return Err(AvroError::Range("long"));
            }
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok((n >> 1) as i64 ^ -((n & 1) as i64));
            }
        }
        Err(AvroError::Range("long"))
    }

    fn int(&mut self) -> Result<i32, AvroError> {
        i32::try_from(self.long()?).map_err(|_| AvroError::Range("int"))
    }

    fn len(&mut self) -> Result<usize, AvroError> {
        let n = usize::try_from(self.long()?).map_err(|_| AvroError::Range("length"))?;
        if n > self.bytes.len() - self.at {
            return Err(AvroError::Truncated);
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<&'a [u8], AvroError> {
        let n = self.len()?;
        self.take(n)
    }

    /// An array or map block's item count (a negative count is followed by the block's size).
    fn block_count(&mut self) -> Result<usize, AvroError> {
        let n = self.long()?;
        let n = if n < 0 {
            self.long()?;
            n.checked_neg().ok_or(AvroError::Range("block count"))?
        } else {
            n
        };
        usize::try_from(n).map_err(|_| AvroError::Range("block count"))
    }
}

fn decode(schema: &Schema, r: &mut Reader<'_>) -> Result<Value, AvroError> {
    Ok(match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Boolean(r.take(1)?[0] != 0),
        Schema::Int => Value::Int(r.int()?),
        Schema::Long => Value::Long(r.long()?),
        Schema::Float => Value::Float(f32::from_le_bytes(
            r.take(4)?.try_into().map_err(|_| AvroError::Truncated)?,
        )),
        Schema::Double => Value::Double(f64::from_le_bytes(
            r.take(8)?.try_into().map_err(|_| AvroError::Truncated)?,
        )),
        Schema::Bytes => Value::Bytes(r.bytes()?.to_vec()),
        Schema::String => Value::String(
            String::from_utf8(r.bytes()?.to_vec()).map_err(|_| AvroError::Range("string"))?,
        ),
        Schema::Fixed(n) => Value::Fixed(r.take(*n)?.to_vec()),
        Schema::Enum(n) => {
            let i = r.int()?;
            u32::try_from(i)
                .ok()
                .filter(|i| (*i as usize) < *n)
                .map(Value::Enum)
                .ok_or(AvroError::Range("enum"))?
        }
        Schema::Array(items) => {
            let mut out = Vec::new();
            loop {
                let n = r.block_count()?;
                if n == 0 {
                    break;
                }
                // An item of a non-empty type takes at least one byte.
                if out.len().saturating_add(n) > (r.bytes.len() - r.at).max(MAX_EMPTY_ITEMS) {
                    return Err(AvroError::Range("array length"));
                }
                for _ in 0..n {
                    out.push(decode(items, r)?);
                }
            }
            Value::Array(out)
        }
        Schema::Map(values) => {
            let mut out = Vec::new();
            loop {
                let n = r.block_count()?;
                if n == 0 {
                    break;
                }
                if n > r.bytes.len() - r.at {
                    return Err(AvroError::Range("map length"));
                }
                for _ in 0..n {
                    let k = String::from_utf8(r.bytes()?.to_vec())
                        .map_err(|_| AvroError::Range("map key"))?;
                    out.push((k, decode(values, r)?));
                }
            }
            Value::Map(out)
        }
        Schema::Union(branches) => {
            let i = r.long()?;
            let b = usize::try_from(i)
                .ok()
                .and_then(|i| branches.get(i))
                .ok_or(AvroError::Range("union branch"))?;
            Value::Union(i as u32, Box::new(decode(b, r)?))
        }
        Schema::Record(rec) => Value::Record(
            rec.fields
                .iter()
                .map(|f| decode(&f.schema, r))
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// Encodes `value` as `schema` says.
pub(crate) fn encode(schema: &Schema, value: &Value, out: &mut Vec<u8>) -> Result<(), AvroError> {
    match (schema, value) {
        (Schema::Null, Value::Null) => {}
        (Schema::Boolean, Value::Boolean(b)) => out.push(u8::from(*b)),
        (Schema::Int, Value::Int(v)) => write_long(out, i64::from(*v)),
        (Schema::Long, Value::Long(v)) => write_long(out, *v),
        (Schema::Float, Value::Float(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Schema::Double, Value::Double(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Schema::Bytes, Value::Bytes(b)) => write_bytes(out, b),
        (Schema::String, Value::String(s)) => write_bytes(out, s.as_bytes()),
        (Schema::Fixed(n), Value::Fixed(b)) if b.len() == *n => out.extend_from_slice(b),
        (Schema::Enum(n), Value::Enum(i)) if (*i as usize) < *n => write_long(out, i64::from(*i)),
        (Schema::Array(items), Value::Array(vs)) => {
            if !vs.is_empty() {
                write_long(out, vs.len() as i64);
                for v in vs {
                    encode(items, v, out)?;
                }
            }
            write_long(out, 0);
        }
        (Schema::Map(values), Value::Map(vs)) => {
            if !vs.is_empty() {
                write_long(out, vs.len() as i64);
                for (k, v) in vs {
                    write_bytes(out, k.as_bytes());
                    encode(values, v, out)?;
                }
            }
            write_long(out, 0);
        }
        (Schema::Union(branches), Value::Union(i, v)) => {
            let b = branches
                .get(*i as usize)
                .ok_or_else(|| AvroError::Mismatch(format!("union branch {i}")))?;
            write_long(out, i64::from(*i));
            encode(b, v, out)?;
        }
        (Schema::Record(rec), Value::Record(vs)) if rec.fields.len() == vs.len() => {
            for (f, v) in rec.fields.iter().zip(vs) {
                encode(&f.schema, v, out).map_err(|e| match e {
                    AvroError::Mismatch(m) => {
                        AvroError::Mismatch(format!("{}.{}: {m}", rec.name, f.name))
                    }
                    e => e,
                })?;
            }
        }
        (s, v) => return Err(AvroError::Mismatch(format!("{v:?} as {s:?}"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(schema: &Schema, v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode(schema, v, &mut out).unwrap();
        out
    }

    #[test]
    fn longs_are_zigzag_varints() {
        for (v, want) in [
            (0i64, vec![0x00]),
            (-1, vec![0x01]),
            (1, vec![0x02]),
            (-2, vec![0x03]),
            (63, vec![0x7e]),
            (64, vec![0x80, 0x01]),
            (-65, vec![0x81, 0x01]),
            (1000, vec![0xd0, 0x0f]),
        ] {
            assert_eq!(bytes_of(&Schema::Long, &Value::Long(v)), want, "{v}");
            let mut r = Reader {
                bytes: &want,
                at: 0,
            };
            assert_eq!(r.long().unwrap(), v);
        }
        for v in [i64::MIN, i64::MAX, -123_456_789_012] {
            let b = bytes_of(&Schema::Long, &Value::Long(v));
            assert_eq!(Reader { bytes: &b, at: 0 }.long().unwrap(), v);
        }
    }

    #[test]
    fn a_container_round_trips_with_every_codec_and_its_field_ids() {
        let json: Json = serde_json::json!({"type": "record", "name": "r", "fields": [
            {"name": "a", "type": "long", "field-id": 7},
            {"name": "b", "type": ["null", "string"], "default": null, "field-id": 8},
            {"name": "c", "type": {"type": "array", "items": {"type": "record", "name": "k1_v2",
                "fields": [{"name": "key", "type": "int"}, {"name": "value", "type": "bytes"}]},
                "logicalType": "map"}},
            {"name": "u", "type": {"type": "fixed", "name": "uuid_fixed", "size": 16}},
            {"name": "u2", "type": ["null", "uuid_fixed"]},
            {"name": "e", "type": {"type": "record", "name": "r102", "fields": []}},
            {"name": "m", "type": {"type": "map", "values": "double"}}
        ]});
        let schema = parse_schema(&json).unwrap();
        let Schema::Record(rec) = &schema else {
            panic!()
        };
        assert_eq!(rec.position(8, "x"), Some(1));
        assert_eq!(rec.position(99, "c"), Some(2));
        let values: Vec<Value> = (0..3)
            .map(|i| {
                Value::Record(vec![
                    Value::Long(i - 1),
                    if i == 0 {
                        Value::none()
                    } else {
                        Value::some(Value::String(format!("s{i}")))
                    },
                    Value::Array(vec![Value::Record(vec![
                        Value::Int(1),
                        Value::Bytes(vec![i as u8; 3]),
                    ])]),
                    Value::Fixed(vec![9; 16]),
                    Value::some(Value::Fixed(vec![i as u8; 16])),
                    Value::Record(vec![]),
                    Value::Map(vec![("x".into(), Value::Double(0.5))]),
                ])
            })
            .collect();
        for codec in [Codec::Null, Codec::Deflate] {
            let file = write_container(
                &json.to_string(),
                &schema,
                &[("format-version", "2".into())],
                &values,
                codec,
            )
            .unwrap();
            let back = read_container(&file).unwrap();
            assert_eq!(back.values, values);
            assert_eq!(back.meta("format-version"), Some("2"));
            assert_eq!(back.schema, schema);
        }
    }

    #[test]
    fn damaged_files_are_errors() {
        let json = serde_json::json!({"type": "record", "name": "r", "fields": [{"name": "a", "type": "string"}]});
        let schema = parse_schema(&json).unwrap();
        let file = write_container(
            &json.to_string(),
            &schema,
            &[],
            &[Value::Record(vec![Value::String("hello".into())])],
            Codec::Deflate,
        )
        .unwrap();
        // Cut anywhere, the file is an error (or, cut right after the header, holds nothing).
        for cut in 0..file.len() {
            let read = read_container(&file[..cut]);
            assert!(
                read.is_err() || read.is_ok_and(|c| c.values.is_empty()),
                "cut at {cut}"
            );
        }
        let mut bad_sync = file.clone();
        let n = bad_sync.len();
        bad_sync[n - 1] ^= 1;
        assert!(matches!(read_container(&bad_sync), Err(AvroError::Sync)));
        assert!(matches!(
            read_container(b"PAR1"),
            Err(AvroError::Magic | AvroError::Truncated)
        ));
        // A string claiming more bytes than the file holds.
        let mut huge = Vec::new();
        write_long(&mut huge, i64::MAX / 2);
        assert!(
            decode(
                &Schema::String,
                &mut Reader {
                    bytes: &huge,
                    at: 0
                }
            )
            .is_err()
        );
        // An array of nulls claiming a billion items.
        let mut many = Vec::new();
        write_long(&mut many, 1_000_000_000);
        assert!(
            decode(
                &Schema::Array(Box::new(Schema::Null)),
                &mut Reader {
                    bytes: &many,
                    at: 0
                }
            )
            .is_err()
        );
    }

    #[test]
    fn a_value_that_does_not_match_its_schema_is_an_error() {
        let err = encode(&Schema::Long, &Value::String("x".into()), &mut Vec::new());
        assert!(matches!(err, Err(AvroError::Mismatch(_))));
    }
}
