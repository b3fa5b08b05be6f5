//! A fast append (Java's `FastAppend`, pyiceberg's `_FastAppendFiles`) or a row delta (Java's
//! `BaseRowDelta`): the new data files in one new manifest, the new delete files (equality and
//! position deletes) in one new delete manifest, the parent's manifests kept as they are, one
//! snapshot with its summary. Every file added takes the snapshot's sequence number: an
//! equality delete applies to rows of earlier sequence numbers only, a position delete to
//! its data file whatever its number (Iceberg table specification, "Scan Planning"), which is
//! how a row delta removes older rows by key and rows of its own data files by position.
//! Pure: it gets the metadata it starts from and the parent's manifest list, and returns the
//! files to write and the metadata to swap in; the table's catalog does the swap.

use std::collections::BTreeMap;

use super::literal::Literal;
use super::manifest::{self, DataFile, FileContent, ManifestError, ManifestFile};
use super::metadata::{Snapshot, TableMetadata, next_metadata_location};
use super::partition::Partitioning;

/// Files to write before the metadata (manifest, manifest list), and the new metadata.
#[derive(Debug)]
pub(crate) struct Commit {
    pub(crate) files: Vec<(String, Vec<u8>)>,
    pub(crate) metadata: TableMetadata,
    pub(crate) metadata_location: String,
    pub(crate) snapshot_id: i64,
}

/// The totals a snapshot summary carries forward from its parent.
const TOTALS: [&str; 6] = [
    "total-records",
    "total-files-size",
    "total-data-files",
    "total-delete-files",
    "total-position-deletes",
    "total-equality-deletes",
];

/// Adds `files` (data and delete files) to `current` (read from `current_location`;
/// `parent_manifests` is its current snapshot's manifest list). `marks` go into the
/// snapshot's summary.
pub(crate) fn add_files(
    current: &TableMetadata,
    current_location: &str,
    parent_manifests: Vec<ManifestFile>,
    files: &[DataFile],
    partitioning: &Partitioning,
    marks: &BTreeMap<String, String>,
    now_ms: i64,
) -> Result<Commit, ManifestError> {
    let mut metadata = current.clone();
    let snapshot_id = current.new_snapshot_id();
    let sequence_number = current.last_sequence_number + 1;
    let parent = current.current_snapshot();
    let commit_uuid = uuid::Uuid::new_v4();
    let dir = format!("{}/metadata", current.location);
    let schema = current
        .current_schema()
        .ok_or(ManifestError::Missing("a current schema"))?;
    let (data, deletes): (Vec<DataFile>, Vec<DataFile>) = files
        .iter()
        .cloned()
        .partition(|f| f.content == FileContent::Data);
    let mut list = Vec::new();
    let mut written = Vec::new();
    for (i, group) in [data, deletes].iter().enumerate() {
        if group.is_empty() {
            continue;
        }
        let path = format!("{dir}/{commit_uuid}-m{i}.avro");
        let (bytes, manifest) = manifest::write_manifest(
            &path,
            group,
            schema,
            &partitioning.ty,
            snapshot_id,
            sequence_number,
        )?;
        written.push((path, bytes));
        list.push(manifest);
    }
    list.extend(parent_manifests);
    let list_bytes = manifest::write_manifest_list(
        &list,
        snapshot_id,
        parent.map(|p| p.snapshot_id),
        sequence_number,
    )?;
    let list_path = format!("{dir}/snap-{snapshot_id}-1-{commit_uuid}.avro");
    let summary = summary(files, parent.map(|p| &p.summary), marks);
    let snapshot = Snapshot {
        sequence_number,
        snapshot_id,
        parent_snapshot_id: parent.map(|p| p.snapshot_id),
        timestamp_ms: now_ms.max(current.last_updated_ms),
        summary,
        manifest_list: list_path.clone(),
        schema_id: Some(current.current_schema_id),
        other: BTreeMap::new(),
    };
    metadata.add_snapshot(snapshot, Some(current_location));
    written.push((list_path, list_bytes));
    Ok(Commit {
        files: written,
        metadata_location: next_metadata_location(&current.location, Some(current_location)),
        metadata,
        snapshot_id,
    })
}

/// A commit's summary (Java's `SnapshotSummary`): what it added, the totals after it, and
/// the writer's marks. Its operation is Java's: `append` for data files alone, `overwrite`
/// for a row delta with data files, `delete` for delete files alone.
fn summary(
    files: &[DataFile],
    parent: Option<&BTreeMap<String, String>>,
    marks: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let of = |c: FileContent| files.iter().filter(move |f| f.content == c);
    let count = |c| of(c).count() as i64;
    let rows = |c| of(c).map(|f| f.record_count).sum::<i64>();
    let (data, positions, equalities) = (
        count(FileContent::Data),
        count(FileContent::PositionDeletes),
        count(FileContent::EqualityDeletes),
    );
    let records = rows(FileContent::Data);
    let size: i64 = files.iter().map(|f| f.file_size_in_bytes).sum();
    let partitions: std::collections::HashSet<Vec<Option<Vec<u8>>>> = files
        .iter()
        .map(|f| {
            f.partition
                .iter()
                .map(|v| v.as_ref().map(Literal::to_bytes))
                .collect()
        })
        .collect();
    let operation = match (data > 0, positions + equalities > 0) {
        (_, false) => "append",
        (true, true) => "overwrite",
        (false, true) => "delete",
    };
    let mut s = BTreeMap::from([
        ("operation".to_string(), operation.to_string()),
        ("added-files-size".to_string(), size.to_string()),
        (
            "changed-partition-count".to_string(),
            partitions.len().to_string(),
        ),
    ]);
    let added = [
        ("added-data-files", data),
        ("added-records", records),
        ("added-delete-files", positions + equalities),
        ("added-position-delete-files", positions),
        ("added-equality-delete-files", equalities),
        ("added-position-deletes", rows(FileContent::PositionDeletes)),
        ("added-equality-deletes", rows(FileContent::EqualityDeletes)),
    ];
    for (key, n) in added {
        // Java leaves out what a commit did not add (an append has no delete keys).
        if n > 0 || key == "added-data-files" || key == "added-records" {
            s.insert(key.to_string(), n.to_string());
        }
    }
    let totals = [
        records,
        size,
        data,
        positions + equalities,
        rows(FileContent::PositionDeletes),
        rows(FileContent::EqualityDeletes),
    ];
    for (key, add) in TOTALS.iter().zip(totals) {
        // A parent without the total leaves it unknown; no parent starts from zero.
        let before = match parent {
            None => Some(0),
            Some(p) => p.get(*key).and_then(|v| v.parse::<i64>().ok()),
        };
        if let Some(b) = before {
            s.insert((*key).to_string(), (b + add).to_string());
        }
    }
    s.insert("engine-name".to_string(), "firehosed".to_string());
    s.insert(
        "engine-version".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    );
    s.extend(marks.iter().map(|(k, v)| (k.clone(), v.clone())));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iceberg::manifest::{FileContent, read_manifest_list};
    use crate::iceberg::types::{NestedField, Schema, Type};

    fn file(rows: i64) -> DataFile {
        DataFile {
            content: FileContent::Data,
            file_path: format!("file:///w/t/data/{rows}.parquet"),
            partition: vec![],
            record_count: rows,
            file_size_in_bytes: 100 * rows,
            column_sizes: vec![],
            value_counts: vec![],
            null_value_counts: vec![],
            nan_value_counts: vec![],
            lower_bounds: vec![(1, Literal::Long(0).to_bytes())],
            upper_bounds: vec![(1, Literal::Long(rows).to_bytes())],
            split_offsets: vec![4],
            equality_ids: None,
        }
    }

    #[test]
    fn appends_chain_snapshots_and_keep_the_parent_s_manifests() {
        let m0 = TableMetadata::new(
            "file:///w/t",
            Schema::new(0, vec![NestedField::new(1, "id", true, Type::Long)]),
            vec![],
            BTreeMap::new(),
            1_000,
        );
        let p = Partitioning::of(&m0).unwrap();
        let marks = BTreeMap::from([("firehosed.object".to_string(), "a".to_string())]);
        let c1 = add_files(
            &m0,
            "file:///w/t/metadata/00000-x.metadata.json",
            vec![],
            &[file(3)],
            &p,
            &marks,
            2_000,
        )
        .unwrap();
        assert!(
            c1.metadata_location
                .starts_with("file:///w/t/metadata/00001-")
        );
        let s1 = c1.metadata.current_snapshot().unwrap();
        assert_eq!(s1.sequence_number, 1);
        assert_eq!(s1.parent_snapshot_id, None);
        assert_eq!(s1.summary["total-records"], "3");
        assert_eq!(s1.summary["added-data-files"], "1");
        assert_eq!(s1.summary["firehosed.object"], "a");
        let list1 = read_manifest_list(&c1.files[1].1).unwrap();
        assert_eq!(list1.len(), 1);

        let marks2 = BTreeMap::from([("firehosed.object".to_string(), "b".to_string())]);
        let c2 = add_files(
            &c1.metadata,
            &c1.metadata_location,
            list1.clone(),
            &[file(4), file(5)],
            &p,
            &marks2,
            1_500,
        )
        .unwrap();
        let s2 = c2.metadata.current_snapshot().unwrap();
        assert_eq!(s2.sequence_number, 2);
        assert_eq!(s2.parent_snapshot_id, Some(c1.snapshot_id));
        assert_eq!(s2.summary["total-records"], "12");
        assert_eq!(s2.summary["total-data-files"], "3");
        // A clock that went back never moves a snapshot before its parent's metadata.
        assert!(s2.timestamp_ms >= c1.metadata.last_updated_ms);
        let list2 = read_manifest_list(&c2.files[1].1).unwrap();
        assert_eq!(list2.len(), 2);
        assert_eq!(list2[1], list1[0]);
        assert_eq!(list2[0].sequence_number, 2);
        assert_eq!(list2[0].added_rows_count, 9);
        let marks: Vec<&str> = c2
            .metadata
            .ancestry()
            .filter_map(|s| s.summary.get("firehosed.object").map(String::as_str))
            .collect();
        assert_eq!(marks, vec!["b", "a"]);
        assert_eq!(
            c2.metadata.metadata_log.last().unwrap().metadata_file,
            c1.metadata_location
        );
    }
}
