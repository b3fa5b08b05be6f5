//! Manifests and manifest lists of table format v2 (Iceberg table specification, "Manifests"
//! and "Manifest Lists"): the Avro schemas Java's `V2Metadata` writes, with their field ids,
//! a data file's entry with its metrics, and the manifest list records a commit copies from
//! its parent (read by field id, whichever writer made them).

use serde_json::{Value as Json, json};

use super::avro::{self, AvroError, Codec, Record, Schema as AvroSchema, Value};
use super::literal::{Literal, decimal_bytes};
use super::metadata::PartitionField;
use super::types::{Schema, Type};

/// What a data or delete file holds (`content`, field 134).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileContent {
    Data = 0,
    PositionDeletes = 1,
    EqualityDeletes = 2,
}

/// A file a manifest entry adds, with the metrics engines prune with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DataFile {
    pub(crate) content: FileContent,
    pub(crate) file_path: String,
    /// The partition tuple: one value per field of the spec (None: null).
    pub(crate) partition: Vec<Option<Literal>>,
    pub(crate) record_count: i64,
    pub(crate) file_size_in_bytes: i64,
    pub(crate) column_sizes: Vec<(i32, i64)>,
    pub(crate) value_counts: Vec<(i32, i64)>,
    pub(crate) null_value_counts: Vec<(i32, i64)>,
    pub(crate) nan_value_counts: Vec<(i32, i64)>,
    pub(crate) lower_bounds: Vec<(i32, Vec<u8>)>,
    pub(crate) upper_bounds: Vec<(i32, Vec<u8>)>,
    pub(crate) split_offsets: Vec<i64>,
    /// Equality delete files: the columns rows are matched on.
    pub(crate) equality_ids: Option<Vec<i32>>,
}

/// A partition spec's fields with the types of their values (identity: the source's type).
#[derive(Debug, Clone)]
pub(crate) struct PartitionType {
    pub(crate) spec_id: i32,
    pub(crate) fields: Vec<(PartitionField, Type)>,
}

/// One record of a manifest list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ManifestFile {
    pub(crate) manifest_path: String,
    pub(crate) manifest_length: i64,
    pub(crate) partition_spec_id: i32,
    /// 0 data, 1 deletes.
    pub(crate) content: i32,
    pub(crate) sequence_number: i64,
    pub(crate) min_sequence_number: i64,
    pub(crate) added_snapshot_id: i64,
    pub(crate) added_files_count: i32,
    pub(crate) existing_files_count: i32,
    pub(crate) deleted_files_count: i32,
    pub(crate) added_rows_count: i64,
    pub(crate) existing_rows_count: i64,
    pub(crate) deleted_rows_count: i64,
    pub(crate) partitions: Option<Vec<FieldSummary>>,
    pub(crate) key_metadata: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldSummary {
    pub(crate) contains_null: bool,
    pub(crate) contains_nan: Option<bool>,
    pub(crate) lower_bound: Option<Vec<u8>>,
    pub(crate) upper_bound: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ManifestError {
    #[error(transparent)]
    Avro(#[from] AvroError),
    #[error("a manifest list record lacks {0}")]
    Missing(&'static str),
}

fn optional(name: &str, ty: Json, id: i32, doc: &str) -> Json {
    json!({"name": name, "type": ["null", ty], "doc": doc, "default": null, "field-id": id})
}

fn required(name: &str, ty: Json, id: i32, doc: &str) -> Json {
    json!({"name": name, "type": ty, "doc": doc, "field-id": id})
}

fn int_map(key: i32, value: i32, value_type: &str) -> Json {
    json!({"type": "array", "logicalType": "map", "items": {"type": "record",
        "name": format!("k{key}_v{value}"), "fields": [
            {"name": "key", "type": "int", "field-id": key},
            {"name": "value", "type": value_type, "field-id": value}]}})
}

/// The manifest list's schema (Java's `V2Metadata.MANIFEST_LIST_SCHEMA`).
pub(crate) fn manifest_list_schema() -> Json {
    let summary = json!({"type": "record", "name": "r508", "fields": [
        required("contains_null", json!("boolean"), 509, "True if any file has a null partition value"),
        optional("contains_nan", json!("boolean"), 518, "True if any file has a nan partition value"),
        optional("lower_bound", json!("bytes"), 510, "Partition lower bound for all files"),
        optional("upper_bound", json!("bytes"), 511, "Partition upper bound for all files"),
    ]});
    json!({"type": "record", "name": "manifest_file", "fields": [
        required("manifest_path", json!("string"), 500, "Location URI with FS scheme"),
        required("manifest_length", json!("long"), 501, "Total file size in bytes"),
        required("partition_spec_id", json!("int"), 502, "Spec ID used to write"),
        required("content", json!("int"), 517, "Contents of the manifest: 0=data, 1=deletes"),
        required("sequence_number", json!("long"), 515, "Sequence number when the manifest was added"),
        required("min_sequence_number", json!("long"), 516, "Lowest sequence number in the manifest"),
        required("added_snapshot_id", json!("long"), 503, "Snapshot ID that added the manifest"),
        required("added_files_count", json!("int"), 504, "Added entry count"),
        required("existing_files_count", json!("int"), 505, "Existing entry count"),
        required("deleted_files_count", json!("int"), 506, "Deleted entry count"),
        required("added_rows_count", json!("long"), 512, "Added rows count"),
        required("existing_rows_count", json!("long"), 513, "Existing rows count"),
        required("deleted_rows_count", json!("long"), 514, "Deleted rows count"),
        optional("partitions", json!({"type": "array", "items": summary, "element-id": 508}), 507, "Summary for each partition"),
        optional("key_metadata", json!("bytes"), 519, "Encryption key metadata blob"),
    ]})
}

/// The Avro type of an Iceberg primitive (Appendix A), defining named types once.
fn avro_type(ty: &Type, named: &mut Vec<String>) -> Json {
    let mut fixed = |name: String, mut def: Json| {
        if named.contains(&name) {
            Json::String(name)
        } else {
            def["name"] = Json::String(name.clone());
            named.push(name);
            def
        }
    };
    match ty {
        Type::Boolean => json!("boolean"),
        Type::Int => json!("int"),
        Type::Long => json!("long"),
        Type::Float => json!("float"),
        Type::Double => json!("double"),
        Type::Date => json!({"type": "int", "logicalType": "date"}),
        Type::Time => json!({"type": "long", "logicalType": "time-micros"}),
        Type::Timestamp => {
            json!({"type": "long", "logicalType": "timestamp-micros", "adjust-to-utc": false})
        }
        Type::TimestampTz => {
            json!({"type": "long", "logicalType": "timestamp-micros", "adjust-to-utc": true})
        }
        Type::String => json!("string"),
        Type::Binary => json!("bytes"),
        Type::Uuid => fixed(
            "uuid_fixed".into(),
            json!({"type": "fixed", "size": 16, "logicalType": "uuid"}),
        ),
        Type::Fixed(n) => fixed(format!("fixed_{n}"), json!({"type": "fixed", "size": n})),
        Type::Decimal { precision, scale } => fixed(
            format!("decimal_{precision}_{scale}"),
            json!({"type": "fixed", "size": decimal_bytes(*precision), "logicalType": "decimal",
                   "precision": precision, "scale": scale}),
        ),
        // Partition values are primitives; a nested type never reaches here.
        Type::Struct(_) | Type::List(_) | Type::Map(_) => json!("bytes"),
    }
}

/// A name Avro takes: letters, digits and `_`, not starting with a digit.
fn avro_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The manifest entry's schema for a partition type (Java's `V2Metadata.entrySchema`).
pub(crate) fn manifest_entry_schema(partition: &PartitionType) -> Json {
    let mut named = Vec::new();
    let partition_fields: Vec<Json> = partition
        .fields
        .iter()
        .map(|(f, ty)| {
            json!({"name": avro_name(&f.name), "type": ["null", avro_type(ty, &mut named)],
                              "default": null, "field-id": f.field_id})
        })
        .collect();
    let data_file = json!({"type": "record", "name": "r2", "fields": [
        required("content", json!("int"), 134, "Contents of the file: 0=data, 1=position deletes, 2=equality deletes"),
        required("file_path", json!("string"), 100, "Location URI with FS scheme"),
        required("file_format", json!("string"), 101, "File format name: avro, orc, or parquet"),
        required("partition", json!({"type": "record", "name": "r102", "fields": partition_fields}), 102,
                 "Partition data tuple, schema based on the partition spec"),
        required("record_count", json!("long"), 103, "Number of records in the file"),
        required("file_size_in_bytes", json!("long"), 104, "Total file size in bytes"),
        optional("column_sizes", int_map(117, 118, "long"), 108, "Map of column id to total size on disk"),
        optional("value_counts", int_map(119, 120, "long"), 109, "Map of column id to total count, including null and NaN"),
        optional("null_value_counts", int_map(121, 122, "long"), 110, "Map of column id to null value count"),
        optional("nan_value_counts", int_map(138, 139, "long"), 137, "Map of column id to number of NaN values in the column"),
        optional("lower_bounds", int_map(126, 127, "bytes"), 125, "Map of column id to lower bound"),
        optional("upper_bounds", int_map(129, 130, "bytes"), 128, "Map of column id to upper bound"),
        optional("key_metadata", json!("bytes"), 131, "Encryption key metadata blob"),
        optional("split_offsets", json!({"type": "array", "items": "long", "element-id": 133}), 132, "Splittable offsets"),
        optional("equality_ids", json!({"type": "array", "items": "int", "element-id": 136}), 135, "Equality comparison field IDs"),
        optional("sort_order_id", json!("int"), 140, "Sort order ID"),
        optional("referenced_data_file", json!("string"), 143,
                 "Fully qualified location (URI with FS scheme) of a data file that all deletes reference"),
    ]});
    json!({"type": "record", "name": "manifest_entry", "fields": [
        {"name": "status", "type": "int", "field-id": 0},
        {"name": "snapshot_id", "type": ["null", "long"], "default": null, "field-id": 1},
        {"name": "sequence_number", "type": ["null", "long"], "default": null, "field-id": 3},
        {"name": "file_sequence_number", "type": ["null", "long"], "default": null, "field-id": 4},
        {"name": "data_file", "type": data_file, "field-id": 2},
    ]})
}

fn counts(pairs: &[(i32, i64)]) -> Value {
    Value::some(Value::Array(
        pairs
            .iter()
            .map(|(k, v)| Value::Record(vec![Value::Int(*k), Value::Long(*v)]))
            .collect(),
    ))
}

fn bounds(pairs: &[(i32, Vec<u8>)]) -> Value {
    Value::some(Value::Array(
        pairs
            .iter()
            .map(|(k, v)| Value::Record(vec![Value::Int(*k), Value::Bytes(v.clone())]))
            .collect(),
    ))
}

impl DataFile {
    /// The file as an ADDED entry of snapshot `snapshot_id` (sequence numbers inherited).
    fn added_entry(&self, snapshot_id: i64, partition: &PartitionType) -> Value {
        let tuple = self
            .partition
            .iter()
            .zip(&partition.fields)
            .map(|(v, (_, ty))| {
                v.as_ref()
                    .map_or_else(Value::none, |v| Value::some(v.to_avro(ty)))
            })
            .collect();
        let data_file = Value::Record(vec![
            Value::Int(self.content as i32),
            Value::String(self.file_path.clone()),
            Value::String("PARQUET".into()),
            Value::Record(tuple),
            Value::Long(self.record_count),
            Value::Long(self.file_size_in_bytes),
            counts(&self.column_sizes),
            counts(&self.value_counts),
            counts(&self.null_value_counts),
            counts(&self.nan_value_counts),
            bounds(&self.lower_bounds),
            bounds(&self.upper_bounds),
            Value::none(),
            Value::some(Value::Array(
                self.split_offsets.iter().map(|o| Value::Long(*o)).collect(),
            )),
            self.equality_ids.as_ref().map_or_else(Value::none, |ids| {
                Value::some(Value::Array(ids.iter().map(|i| Value::Int(*i)).collect()))
            }),
            // The table's sort order (unsorted); position deletes are sorted by file and
            // position, and say none (the specification: null for them).
            match self.content {
                FileContent::PositionDeletes => Value::none(),
                _ => Value::some(Value::Int(0)),
            },
            Value::none(),
        ]);
        Value::Record(vec![
            Value::Int(1),
            Value::some(Value::Long(snapshot_id)),
            Value::none(),
            Value::none(),
            data_file,
        ])
    }
}

/// A manifest of files added by snapshot `snapshot_id`: its bytes, and its manifest list
/// record once written at `path` (sequence numbers are the commit's, `sequence_number`).
pub(crate) fn write_manifest(
    path: &str,
    files: &[DataFile],
    table_schema: &Schema,
    partition: &PartitionType,
    snapshot_id: i64,
    sequence_number: i64,
) -> Result<(Vec<u8>, ManifestFile), ManifestError> {
    let schema_json = manifest_entry_schema(partition);
    let schema = avro::parse_schema(&schema_json)?;
    let deletes = files.iter().any(|f| f.content != FileContent::Data);
    let spec_fields: Vec<&PartitionField> = partition.fields.iter().map(|(f, _)| f).collect();
    let meta = [
        (
            "schema",
            serde_json::to_string(table_schema).unwrap_or_default(),
        ),
        ("schema-id", table_schema.schema_id.to_string()),
        (
            "partition-spec",
            serde_json::to_string(&spec_fields).unwrap_or_default(),
        ),
        ("partition-spec-id", partition.spec_id.to_string()),
        ("format-version", "2".to_string()),
        (
            "content",
            if deletes { "deletes" } else { "data" }.to_string(),
        ),
    ];
    let entries: Vec<Value> = files
        .iter()
        .map(|f| f.added_entry(snapshot_id, partition))
        .collect();
    let bytes = avro::write_container(
        &schema_json.to_string(),
        &schema,
        &meta,
        &entries,
        Codec::Deflate,
    )?;
    let record = ManifestFile {
        manifest_path: path.to_string(),
        manifest_length: bytes.len() as i64,
        partition_spec_id: partition.spec_id,
        content: i32::from(deletes),
        sequence_number,
        min_sequence_number: sequence_number,
        added_snapshot_id: snapshot_id,
        added_files_count: files.len() as i32,
        existing_files_count: 0,
        deleted_files_count: 0,
        added_rows_count: files.iter().map(|f| f.record_count).sum(),
        existing_rows_count: 0,
        deleted_rows_count: 0,
        partitions: Some(summaries(files, partition)),
        key_metadata: None,
    };
    Ok((bytes, record))
}

/// Per partition field: whether any file's value is null, and the lowest and highest value.
fn summaries(files: &[DataFile], partition: &PartitionType) -> Vec<FieldSummary> {
    (0..partition.fields.len())
        .map(|i| {
            let values: Vec<Option<&Literal>> = files
                .iter()
                .map(|f| f.partition.get(i).and_then(Option::as_ref))
                .collect();
            let present = values.iter().flatten();
            let pick = |want: std::cmp::Ordering| {
                present
                    .clone()
                    .copied()
                    .reduce(|a, b| if b.compare(a) == Some(want) { b } else { a })
                    .map(Literal::to_bytes)
            };
            let floating = matches!(partition.fields[i].1, Type::Float | Type::Double);
            FieldSummary {
                contains_null: values.iter().any(Option::is_none),
                contains_nan: Some(
                    floating
                        && present.clone().any(|v| {
                            matches!(v, Literal::Float(f) if f.is_nan())
                                || matches!(v, Literal::Double(d) if d.is_nan())
                        }),
                ),
                lower_bound: pick(std::cmp::Ordering::Less),
                upper_bound: pick(std::cmp::Ordering::Greater),
            }
        })
        .collect()
}

impl ManifestFile {
    fn to_avro(&self) -> Value {
        let partitions = self.partitions.as_ref().map_or_else(Value::none, |ps| {
            Value::some(Value::Array(
                ps.iter()
                    .map(|p| {
                        Value::Record(vec![
                            Value::Boolean(p.contains_null),
                            p.contains_nan
                                .map_or_else(Value::none, |b| Value::some(Value::Boolean(b))),
                            p.lower_bound
                                .clone()
                                .map_or_else(Value::none, |b| Value::some(Value::Bytes(b))),
                            p.upper_bound
                                .clone()
                                .map_or_else(Value::none, |b| Value::some(Value::Bytes(b))),
                        ])
                    })
                    .collect(),
            ))
        });
        Value::Record(vec![
            Value::String(self.manifest_path.clone()),
            Value::Long(self.manifest_length),
            Value::Int(self.partition_spec_id),
            Value::Int(self.content),
            Value::Long(self.sequence_number),
            Value::Long(self.min_sequence_number),
            Value::Long(self.added_snapshot_id),
            Value::Int(self.added_files_count),
            Value::Int(self.existing_files_count),
            Value::Int(self.deleted_files_count),
            Value::Long(self.added_rows_count),
            Value::Long(self.existing_rows_count),
            Value::Long(self.deleted_rows_count),
            partitions,
            self.key_metadata
                .clone()
                .map_or_else(Value::none, |b| Value::some(Value::Bytes(b))),
        ])
    }

    /// A record as any writer wrote it: fields found by id (else by name; v1 lists lack the
    /// sequence numbers and content, which read as 0).
    fn from_avro(rec: &Record, v: &Value) -> Result<ManifestFile, ManifestError> {
        let Value::Record(fields) = v else {
            return Err(ManifestError::Missing("its fields"));
        };
        let get = |id: i64, name: &str| rec.position(id, name).and_then(|i| fields.get(i));
        let long = |id: i64, name: &'static str| {
            get(id, name)
                .and_then(Value::as_long)
                .ok_or(ManifestError::Missing(name))
        };
        let long_or = |id: i64, name: &str, alt: &str| {
            get(id, name)
                .or_else(|| get(-1, alt))
                .and_then(Value::as_long)
                .unwrap_or(0)
        };
        let int =
            |v: i64| i32::try_from(v).map_err(|_| ManifestError::Avro(AvroError::Range("int")));
        let partitions = match get(507, "partitions").and_then(Value::present) {
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(field_summary)
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            _ => None,
        };
        Ok(ManifestFile {
            manifest_path: get(500, "manifest_path")
                .and_then(Value::as_str)
                .ok_or(ManifestError::Missing("manifest_path"))?
                .to_string(),
            manifest_length: long(501, "manifest_length")?,
            partition_spec_id: int(long(502, "partition_spec_id")?)?,
            content: int(get(517, "content").and_then(Value::as_long).unwrap_or(0))?,
            sequence_number: get(515, "sequence_number")
                .and_then(Value::as_long)
                .unwrap_or(0),
            min_sequence_number: get(516, "min_sequence_number")
                .and_then(Value::as_long)
                .unwrap_or(0),
            added_snapshot_id: long(503, "added_snapshot_id")?,
            added_files_count: int(long_or(504, "added_files_count", "added_data_files_count"))?,
            existing_files_count: int(long_or(
                505,
                "existing_files_count",
                "existing_data_files_count",
            ))?,
            deleted_files_count: int(long_or(
                506,
                "deleted_files_count",
                "deleted_data_files_count",
            ))?,
            added_rows_count: long_or(512, "added_rows_count", ""),
            existing_rows_count: long_or(513, "existing_rows_count", ""),
            deleted_rows_count: long_or(514, "deleted_rows_count", ""),
            partitions,
            key_metadata: match get(519, "key_metadata").and_then(Value::present) {
                Some(Value::Bytes(b)) => Some(b.clone()),
                _ => None,
            },
        })
    }
}

/// A partition field summary by position (its record's field order is fixed by the spec).
fn field_summary(v: &Value) -> Result<FieldSummary, ManifestError> {
    let Some(Value::Record(f)) = v.present() else {
        return Err(ManifestError::Missing("a partition summary"));
    };
    let bytes = |i: usize| match f.get(i).and_then(Value::present) {
        Some(Value::Bytes(b)) => Some(b.clone()),
        _ => None,
    };
    Ok(FieldSummary {
        contains_null: matches!(
            f.first().and_then(Value::present),
            Some(Value::Boolean(true))
        ),
        contains_nan: match f.get(1).and_then(Value::present) {
            Some(Value::Boolean(b)) => Some(*b),
            _ => None,
        },
        lower_bound: bytes(2),
        upper_bound: bytes(3),
    })
}

/// A manifest list of snapshot `snapshot_id`.
pub(crate) fn write_manifest_list(
    files: &[ManifestFile],
    snapshot_id: i64,
    parent: Option<i64>,
    sequence_number: i64,
) -> Result<Vec<u8>, ManifestError> {
    let schema_json = manifest_list_schema();
    let schema = avro::parse_schema(&schema_json)?;
    let meta = [
        ("snapshot-id", snapshot_id.to_string()),
        (
            "parent-snapshot-id",
            parent.map_or_else(|| "null".to_string(), |p| p.to_string()),
        ),
        ("sequence-number", sequence_number.to_string()),
        ("format-version", "2".to_string()),
    ];
    let values: Vec<Value> = files.iter().map(ManifestFile::to_avro).collect();
    Ok(avro::write_container(
        &schema_json.to_string(),
        &schema,
        &meta,
        &values,
        Codec::Deflate,
    )?)
}

/// The records of a manifest list.
pub(crate) fn read_manifest_list(bytes: &[u8]) -> Result<Vec<ManifestFile>, ManifestError> {
    let c = avro::read_container(bytes)?;
    let AvroSchema::Record(rec) = &c.schema else {
        return Err(ManifestError::Missing("a record schema"));
    };
    c.values
        .iter()
        .map(|v| ManifestFile::from_avro(rec, v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iceberg::types::NestedField;

    fn region_spec() -> PartitionType {
        PartitionType {
            spec_id: 0,
            fields: vec![(
                PartitionField {
                    name: "region".into(),
                    transform: "identity".into(),
                    source_id: 2,
                    field_id: 1000,
                },
                Type::String,
            )],
        }
    }

    fn file(path: &str, region: Option<&str>, rows: i64) -> DataFile {
        DataFile {
            content: FileContent::Data,
            file_path: path.into(),
            partition: vec![region.map(|r| Literal::String(r.into()))],
            record_count: rows,
            file_size_in_bytes: 1024,
            column_sizes: vec![(1, 100)],
            value_counts: vec![(1, rows)],
            null_value_counts: vec![(1, 0)],
            nan_value_counts: vec![],
            lower_bounds: vec![(1, Literal::Long(1).to_bytes())],
            upper_bounds: vec![(1, Literal::Long(rows).to_bytes())],
            split_offsets: vec![4],
            equality_ids: None,
        }
    }

    #[test]
    fn a_manifest_carries_the_header_keys_and_entries_readers_need() {
        let schema = Schema::new(
            0,
            vec![
                NestedField::new(1, "id", true, Type::Long),
                NestedField::new(2, "region", false, Type::String),
            ],
        );
        let files = [
            file("file:///t/data/a.parquet", Some("eu"), 3),
            file("file:///t/data/b.parquet", None, 5),
        ];
        let (bytes, record) = write_manifest(
            "file:///t/metadata/m0.avro",
            &files,
            &schema,
            &region_spec(),
            77,
            4,
        )
        .unwrap();
        let c = avro::read_container(&bytes).unwrap();
        assert_eq!(c.meta("format-version"), Some("2"));
        assert_eq!(c.meta("content"), Some("data"));
        assert_eq!(
            c.meta("partition-spec"),
            Some(r#"[{"name":"region","transform":"identity","source-id":2,"field-id":1000}]"#)
        );
        assert_eq!(c.meta("avro.codec"), Some("deflate"));
        assert_eq!(c.values.len(), 2);
        let Value::Record(entry) = &c.values[0] else {
            panic!()
        };
        assert_eq!(entry[0], Value::Int(1));
        assert_eq!(entry[2], Value::none());
        assert_eq!(record.added_rows_count, 8);
        assert_eq!(record.manifest_length, bytes.len() as i64);
        let summary = &record.partitions.as_ref().unwrap()[0];
        assert!(summary.contains_null);
        assert_eq!(summary.lower_bound.as_deref(), Some(&b"eu"[..]));
        assert_eq!(summary.contains_nan, Some(false));
    }

    #[test]
    fn a_manifest_list_round_trips_and_reads_by_field_id() {
        let schema = Schema::new(0, vec![NestedField::new(2, "region", false, Type::String)]);
        let (_, a) = write_manifest(
            "m0",
            &[file("a", Some("eu"), 1)],
            &schema,
            &region_spec(),
            1,
            1,
        )
        .unwrap();
        let (_, b) = write_manifest(
            "m1",
            &[file("b", Some("us"), 2)],
            &schema,
            &region_spec(),
            2,
            2,
        )
        .unwrap();
        let bytes = write_manifest_list(&[b.clone(), a.clone()], 2, Some(1), 2).unwrap();
        assert_eq!(read_manifest_list(&bytes).unwrap(), vec![b, a]);
        let c = avro::read_container(&bytes).unwrap();
        assert_eq!(c.meta("parent-snapshot-id"), Some("1"));
        // Another writer's field order: the same records by field id.
        let mut reordered = manifest_list_schema();
        let fields = reordered["fields"].as_array_mut().unwrap();
        fields.reverse();
        let schema2 = avro::parse_schema(&reordered).unwrap();
        let rec = ManifestFile {
            partitions: None,
            ..file_record()
        };
        let Value::Record(mut vs) = rec.to_avro() else {
            panic!()
        };
        vs.reverse();
        let file2 = avro::write_container(
            &reordered.to_string(),
            &schema2,
            &[],
            &[Value::Record(vs)],
            Codec::Null,
        )
        .unwrap();
        assert_eq!(read_manifest_list(&file2).unwrap(), vec![rec]);
    }

    fn file_record() -> ManifestFile {
        ManifestFile {
            manifest_path: "p".into(),
            manifest_length: 10,
            partition_spec_id: 0,
            content: 0,
            sequence_number: 3,
            min_sequence_number: 2,
            added_snapshot_id: 9,
            added_files_count: 1,
            existing_files_count: 2,
            deleted_files_count: 0,
            added_rows_count: 5,
            existing_rows_count: 6,
            deleted_rows_count: 0,
            partitions: Some(vec![]),
            key_metadata: None,
        }
    }
}
