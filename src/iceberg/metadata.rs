//! A table's metadata file (Iceberg table specification, "Table Metadata", format v2): read
//! from whichever writer made it, changed by a commit, written back with every key this code
//! does not use kept as it was read. Snapshots and their ancestry (exactly-once commits look
//! for their own marks there), and the names of metadata files.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as Json;

use super::types::Schema;

#[derive(Debug, thiserror::Error)]
pub(crate) enum MetadataError {
    #[error("the table's metadata is not Iceberg table metadata: {0}")]
    Json(#[source] serde_json::Error),
    /// AWS: "Firehose doesn't support tables in V1 format".
    #[error("the table is in Iceberg format version {0}; only version 2 is supported")]
    Version(u64),
    #[error("the table's metadata names no current schema or partition spec ({0})")]
    Incomplete(&'static str),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TableMetadata {
    #[serde(rename = "format-version")]
    pub(crate) format_version: u8,
    #[serde(rename = "table-uuid")]
    pub(crate) table_uuid: String,
    pub(crate) location: String,
    #[serde(rename = "last-sequence-number", default)]
    pub(crate) last_sequence_number: i64,
    #[serde(rename = "last-updated-ms")]
    pub(crate) last_updated_ms: i64,
    #[serde(rename = "last-column-id")]
    pub(crate) last_column_id: i32,
    #[serde(rename = "current-schema-id", default)]
    pub(crate) current_schema_id: i32,
    pub(crate) schemas: Vec<Schema>,
    #[serde(rename = "default-spec-id", default)]
    pub(crate) default_spec_id: i32,
    #[serde(rename = "partition-specs")]
    pub(crate) partition_specs: Vec<PartitionSpec>,
    #[serde(rename = "last-partition-id")]
    pub(crate) last_partition_id: i32,
    #[serde(rename = "default-sort-order-id", default)]
    pub(crate) default_sort_order_id: i32,
    #[serde(rename = "sort-orders", default)]
    pub(crate) sort_orders: Vec<SortOrder>,
    #[serde(default)]
    pub(crate) properties: BTreeMap<String, String>,
    /// Java writes -1 for none, pyiceberg leaves it out: both read as None; written as -1.
    #[serde(
        rename = "current-snapshot-id",
        default,
        deserialize_with = "snapshot_id_or_none",
        serialize_with = "snapshot_id_or_minus_one"
    )]
    pub(crate) current_snapshot_id: Option<i64>,
    #[serde(default)]
    pub(crate) refs: BTreeMap<String, SnapshotRef>,
    #[serde(default)]
    pub(crate) snapshots: Vec<Snapshot>,
    #[serde(rename = "snapshot-log", default)]
    pub(crate) snapshot_log: Vec<SnapshotLogEntry>,
    #[serde(rename = "metadata-log", default)]
    pub(crate) metadata_log: Vec<MetadataLogEntry>,
    /// `statistics`, `partition-statistics` and whatever else a writer put there.
    #[serde(flatten)]
    pub(crate) other: BTreeMap<String, Json>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartitionSpec {
    #[serde(rename = "spec-id")]
    pub(crate) spec_id: i32,
    pub(crate) fields: Vec<PartitionField>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartitionField {
    pub(crate) name: String,
    pub(crate) transform: String,
    #[serde(rename = "source-id")]
    pub(crate) source_id: i32,
    #[serde(rename = "field-id")]
    pub(crate) field_id: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SortOrder {
    #[serde(rename = "order-id")]
    pub(crate) order_id: i32,
    #[serde(default)]
    pub(crate) fields: Vec<Json>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SnapshotRef {
    #[serde(rename = "snapshot-id")]
    pub(crate) snapshot_id: i64,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(flatten)]
    pub(crate) other: BTreeMap<String, Json>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    #[serde(rename = "sequence-number", default)]
    pub(crate) sequence_number: i64,
    #[serde(rename = "snapshot-id")]
    pub(crate) snapshot_id: i64,
    #[serde(
        rename = "parent-snapshot-id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) parent_snapshot_id: Option<i64>,
    #[serde(rename = "timestamp-ms")]
    pub(crate) timestamp_ms: i64,
    #[serde(default)]
    pub(crate) summary: BTreeMap<String, String>,
    #[serde(rename = "manifest-list")]
    pub(crate) manifest_list: String,
    #[serde(rename = "schema-id", default, skip_serializing_if = "Option::is_none")]
    pub(crate) schema_id: Option<i32>,
    #[serde(flatten)]
    pub(crate) other: BTreeMap<String, Json>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotLogEntry {
    #[serde(rename = "timestamp-ms")]
    pub(crate) timestamp_ms: i64,
    #[serde(rename = "snapshot-id")]
    pub(crate) snapshot_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MetadataLogEntry {
    #[serde(rename = "timestamp-ms")]
    pub(crate) timestamp_ms: i64,
    #[serde(rename = "metadata-file")]
    pub(crate) metadata_file: String,
}

fn snapshot_id_or_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<i64>::deserialize(d)?.filter(|id| *id != -1))
}

fn snapshot_id_or_minus_one<S: Serializer>(id: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(id.unwrap_or(-1))
}

/// The partition field id the first field of a spec gets.
pub(crate) const FIRST_PARTITION_FIELD_ID: i32 = 1000;
/// How many earlier metadata files `metadata-log` names (Java's default).
const METADATA_LOG_MAX: usize = 100;

impl TableMetadata {
    /// Reads a metadata file: v2 only, with its current schema and default spec present.
    pub(crate) fn parse(bytes: &[u8]) -> Result<TableMetadata, MetadataError> {
        #[derive(Deserialize)]
        struct Version {
            #[serde(rename = "format-version")]
            format_version: u64,
        }
        let v: Version = serde_json::from_slice(bytes).map_err(MetadataError::Json)?;
        if v.format_version != 2 {
            return Err(MetadataError::Version(v.format_version));
        }
        let m: TableMetadata = serde_json::from_slice(bytes).map_err(MetadataError::Json)?;
        m.current_schema()
            .ok_or(MetadataError::Incomplete("current-schema-id"))?;
        m.default_spec()
            .ok_or(MetadataError::Incomplete("default-spec-id"))?;
        Ok(m)
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        // A struct of strings, numbers and maps with string keys always serializes.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// A new table's first metadata: no snapshot yet.
    pub(crate) fn new(
        location: &str,
        schema: Schema,
        spec_fields: Vec<PartitionField>,
        properties: BTreeMap<String, String>,
        now_ms: i64,
    ) -> TableMetadata {
        let last_partition_id = spec_fields
            .iter()
            .map(|f| f.field_id)
            .max()
            .unwrap_or(FIRST_PARTITION_FIELD_ID - 1);
        TableMetadata {
            format_version: 2,
            table_uuid: uuid::Uuid::new_v4().to_string(),
            location: location.trim_end_matches('/').to_string(),
            last_sequence_number: 0,
            last_updated_ms: now_ms,
            last_column_id: schema.highest_field_id(),
            current_schema_id: schema.schema_id,
            schemas: vec![schema],
            default_spec_id: 0,
            partition_specs: vec![PartitionSpec {
                spec_id: 0,
                fields: spec_fields,
            }],
            last_partition_id,
            default_sort_order_id: 0,
            sort_orders: vec![SortOrder {
                order_id: 0,
                fields: Vec::new(),
            }],
            properties,
            current_snapshot_id: None,
            refs: BTreeMap::new(),
            snapshots: Vec::new(),
            snapshot_log: Vec::new(),
            metadata_log: Vec::new(),
            other: BTreeMap::from([
                ("statistics".to_string(), Json::Array(Vec::new())),
                ("partition-statistics".to_string(), Json::Array(Vec::new())),
            ]),
        }
    }

    pub(crate) fn current_schema(&self) -> Option<&Schema> {
        self.schemas
            .iter()
            .find(|s| s.schema_id == self.current_schema_id)
    }

    pub(crate) fn default_spec(&self) -> Option<&PartitionSpec> {
        self.partition_specs
            .iter()
            .find(|s| s.spec_id == self.default_spec_id)
    }

    pub(crate) fn snapshot(&self, id: i64) -> Option<&Snapshot> {
        self.snapshots.iter().find(|s| s.snapshot_id == id)
    }

    /// The main branch's head.
    pub(crate) fn current_snapshot(&self) -> Option<&Snapshot> {
        let id = self
            .refs
            .get("main")
            .map(|r| r.snapshot_id)
            .or(self.current_snapshot_id)?;
        self.snapshot(id)
    }

    /// The main branch from its head back through the parents still in the metadata (expired
    /// snapshots end the walk).
    pub(crate) fn ancestry(&self) -> impl Iterator<Item = &Snapshot> {
        let mut next = self.current_snapshot();
        std::iter::from_fn(move || {
            let s = next?;
            next = s.parent_snapshot_id.and_then(|p| self.snapshot(p));
            Some(s)
        })
    }

    /// Puts `snapshot` at the head of the main branch; `previous` is where this metadata was
    /// read from (None for a table being created).
    pub(crate) fn add_snapshot(&mut self, snapshot: Snapshot, previous: Option<&str>) {
        let at = snapshot.timestamp_ms;
        self.record_previous(previous, at);
        self.last_sequence_number = snapshot.sequence_number;
        self.current_snapshot_id = Some(snapshot.snapshot_id);
        self.refs.insert(
            "main".to_string(),
            SnapshotRef {
                snapshot_id: snapshot.snapshot_id,
                kind: "branch".to_string(),
                other: BTreeMap::new(),
            },
        );
        self.snapshot_log.push(SnapshotLogEntry {
            timestamp_ms: at,
            snapshot_id: snapshot.snapshot_id,
        });
        self.snapshots.push(snapshot);
    }

    /// Names the file this metadata replaces in `metadata-log` and moves `last-updated-ms`.
    pub(crate) fn record_previous(&mut self, previous: Option<&str>, now_ms: i64) {
        if let Some(file) = previous {
            self.metadata_log.push(MetadataLogEntry {
                timestamp_ms: self.last_updated_ms,
                metadata_file: file.to_string(),
            });
            let excess = self.metadata_log.len().saturating_sub(METADATA_LOG_MAX);
            self.metadata_log.drain(..excess);
        }
        self.last_updated_ms = now_ms.max(self.last_updated_ms);
    }

    /// A snapshot id not used in this table: a random positive long, as Java makes them.
    pub(crate) fn new_snapshot_id(&self) -> i64 {
        loop {
            let (hi, lo) = uuid::Uuid::new_v4().as_u64_pair();
            let id = ((hi ^ lo) & (i64::MAX as u64)) as i64;
            if id != 0 && self.snapshot(id).is_none() {
                return id;
            }
        }
    }
}

/// Where the metadata that follows `current` (None: the table's first) is written:
/// `<location>/metadata/NNNNN-<uuid>.metadata.json`, NNNNN one more than `current`'s.
pub(crate) fn next_metadata_location(location: &str, current: Option<&str>) -> String {
    let version = current.map_or(0, |c| version_of(c).map_or(0, |v| v + 1));
    format!(
        "{}/metadata/{version:05}-{}.metadata.json",
        location.trim_end_matches('/'),
        uuid::Uuid::new_v4()
    )
}

/// The version in a metadata file's name (`00012-<uuid>.metadata.json` is 12).
fn version_of(path: &str) -> Option<u64> {
    let name = path.rsplit('/').next()?;
    let (digits, rest) = name.split_once('-')?;
    if !rest.ends_with(".metadata.json") || digits.is_empty() {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iceberg::types::{NestedField, Type};

    fn table() -> TableMetadata {
        TableMetadata::new(
            "file:///w/db/t/",
            Schema::new(0, vec![NestedField::new(1, "id", true, Type::Long)]),
            Vec::new(),
            BTreeMap::new(),
            1_000,
        )
    }

    fn snapshot(id: i64, parent: Option<i64>, seq: i64, mark: &str) -> Snapshot {
        Snapshot {
            sequence_number: seq,
            snapshot_id: id,
            parent_snapshot_id: parent,
            timestamp_ms: 2_000 + seq,
            summary: BTreeMap::from([
                ("operation".to_string(), "append".to_string()),
                ("firehosed.object".to_string(), mark.to_string()),
            ]),
            manifest_list: format!("file:///w/db/t/metadata/snap-{id}.avro"),
            schema_id: Some(0),
            other: BTreeMap::new(),
        }
    }

    #[test]
    fn a_new_table_reads_back_as_written_and_has_java_s_empty_markers() {
        let m = table();
        let json: Json = serde_json::from_slice(&m.to_json()).unwrap();
        assert_eq!(json["current-snapshot-id"], -1);
        assert_eq!(json["last-partition-id"], 999);
        assert_eq!(json["location"], "file:///w/db/t");
        assert_eq!(json["statistics"], Json::Array(vec![]));
        assert_eq!(TableMetadata::parse(&m.to_json()).unwrap(), m);
        assert!(m.current_snapshot().is_none());
    }

    #[test]
    fn ancestry_follows_the_main_branch_and_finds_marks() {
        let mut m = table();
        m.add_snapshot(
            snapshot(11, None, 1, "a"),
            Some("file:///w/db/t/metadata/00000-x.metadata.json"),
        );
        m.add_snapshot(
            snapshot(12, Some(11), 2, "b"),
            Some("file:///w/db/t/metadata/00001-x.metadata.json"),
        );
        // A snapshot off the main branch is not an ancestor.
        m.snapshots.push(snapshot(99, Some(11), 3, "c"));
        let ids: Vec<i64> = m.ancestry().map(|s| s.snapshot_id).collect();
        assert_eq!(ids, vec![12, 11]);
        let marked = |v: &str| {
            m.ancestry()
                .find(|s| s.summary.get("firehosed.object").map(String::as_str) == Some(v))
                .map(|s| s.snapshot_id)
        };
        assert_eq!(marked("a"), Some(11));
        assert_eq!(marked("c"), None);
        assert_eq!(m.last_sequence_number, 2);
        assert_eq!(m.metadata_log.len(), 2);
        assert_eq!(m.snapshot_log.len(), 2);
        assert_eq!(m.refs["main"].snapshot_id, 12);
    }

    #[test]
    fn keys_other_writers_add_are_kept_and_v1_tables_are_refused() {
        let mut json: Json = serde_json::from_slice(&table().to_json()).unwrap();
        json["next-row-id"] = serde_json::json!(5);
        json["schemas"][0]["fields"][0]["write-default"] = serde_json::json!(3);
        let m = TableMetadata::parse(json.to_string().as_bytes()).unwrap();
        let back: Json = serde_json::from_slice(&m.to_json()).unwrap();
        assert_eq!(back["next-row-id"], 5);
        assert_eq!(back["schemas"][0]["fields"][0]["write-default"], 3);
        json["format-version"] = serde_json::json!(1);
        assert!(matches!(
            TableMetadata::parse(json.to_string().as_bytes()),
            Err(MetadataError::Version(1))
        ));
        assert!(TableMetadata::parse(b"{}").is_err());
    }

    #[test]
    fn metadata_files_are_numbered_on_from_the_current_one() {
        let first = next_metadata_location("s3://b/w/t/", None);
        assert!(
            first.starts_with("s3://b/w/t/metadata/00000-") && first.ends_with(".metadata.json")
        );
        let next = next_metadata_location("s3://b/w/t", Some(&first));
        assert!(next.starts_with("s3://b/w/t/metadata/00001-"), "{next}");
        let after = next_metadata_location(
            "s3://b/w/t",
            Some("s3://b/w/t/metadata/00041-abc.metadata.json"),
        );
        assert!(after.starts_with("s3://b/w/t/metadata/00042-"));
        // A name that is not numbered starts the count again, as pyiceberg does.
        let odd =
            next_metadata_location("s3://b/w/t", Some("s3://b/w/t/metadata/v3.metadata.json"));
        assert!(odd.starts_with("s3://b/w/t/metadata/00000-"));
    }
}
