//! A table's commits: read the current metadata through the catalog, append data files as one
//! snapshot, swap; on a conflict read again and redo the append on what the other writer
//! committed. A commit marks its snapshot (`firehosed.commit`): before each attempt the
//! table's ancestry is searched for the mark, so an attempt whose answer was lost, a replay
//! after a crash, or another instance that got there first never appends the files twice
//! (the Iceberg sinks of Flink and Kafka Connect check their commits the same way).

use std::collections::BTreeMap;
use std::time::Duration;

use super::append::{Commit, add_files};
use super::catalog::{Catalog, CatalogError, Swap, TableIdent};
use super::evolve;
use super::io::{FileIo, IoError};
use super::manifest::{DataFile, ManifestError, ManifestFile, read_manifest_list};
use super::metadata::{MetadataError, TableMetadata};
use super::partition::{PartitionError, Partitioning};
use super::types::NestedField;

/// The summary key of a commit's mark.
pub(crate) const COMMIT_MARK: &str = "firehosed.commit";
/// Attempts a commit makes when other writers keep committing first.
const CONFLICT_ATTEMPTS: u32 = 20;

#[derive(Debug, thiserror::Error)]
pub(crate) enum TableError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("table {table}: {source}")]
    Metadata {
        table: TableIdent,
        #[source]
        source: MetadataError,
    },
    #[error("table {table}: {source}")]
    Manifest {
        table: TableIdent,
        #[source]
        source: ManifestError,
    },
    #[error("table {table}: {source}")]
    Partition {
        table: TableIdent,
        #[source]
        source: PartitionError,
    },
    #[error("table {0}: other writers committed first {CONFLICT_ATTEMPTS} times in a row")]
    Conflicts(TableIdent),
}

impl TableError {
    /// Worth trying again soon: the table may be fine then.
    pub(crate) fn transient(&self) -> bool {
        match self {
            TableError::Catalog(e) => e.transient(),
            TableError::Io(e) => e.transient(),
            TableError::Conflicts(_) => true,
            _ => false,
        }
    }
}

/// The marks of the main branch's snapshots, each with its snapshot: a commit's mark is one
/// file's mark, or a JSON array of them.
fn committed_marks(m: &TableMetadata) -> std::collections::HashMap<String, i64> {
    let mut out = std::collections::HashMap::new();
    for s in m.ancestry() {
        let Some(v) = s.summary.get(COMMIT_MARK) else {
            continue;
        };
        match serde_json::from_str::<Vec<String>>(v) {
            Ok(marks) => out.extend(marks.into_iter().map(|k| (k, s.snapshot_id))),
            Err(_) => {
                out.insert(v.clone(), s.snapshot_id);
            }
        }
    }
    out
}

/// The summary value of the marks of one commit: the mark alone, or a JSON array.
fn mark_value(marks: &[&str]) -> String {
    match marks {
        [one] => (*one).to_string(),
        many => serde_json::to_string(many).unwrap_or_default(),
    }
}

/// A table as last read.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub(crate) location: String,
    pub(crate) metadata: TableMetadata,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Appended {
    Committed(i64),
    /// A snapshot with the same mark was there already: the files are in the table.
    AlreadyThere(i64),
}

/// The catalog and the warehouse's files.
pub(crate) struct Tables {
    pub(crate) catalog: Catalog,
    pub(crate) io: FileIo,
}

impl Tables {
    pub(crate) async fn load(&self, t: &TableIdent) -> Result<Loaded, TableError> {
        let location = self.catalog.metadata_location(t).await?;
        let bytes = self.io.read(&location).await?;
        let metadata = TableMetadata::parse(&bytes).map_err(|source| TableError::Metadata {
            table: t.clone(),
            source,
        })?;
        Ok(Loaded { location, metadata })
    }

    /// The marks the table's main branch holds, each with its snapshot.
    pub(crate) async fn committed(
        &self,
        t: &TableIdent,
    ) -> Result<std::collections::HashMap<String, i64>, TableError> {
        Ok(committed_marks(&self.load(t).await?.metadata))
    }

    /// Adds `files` (written already under the table's location) as one snapshot: groups of
    /// data and delete files, each group with its mark, leaving out those whose mark a
    /// snapshot of the table already has (an earlier attempt, a replay, another instance
    /// committed them). `marks` are more summary keys. The answer is per group, in order.
    pub(crate) async fn append(
        &self,
        t: &TableIdent,
        files: &[(Vec<DataFile>, String)],
        marks: &BTreeMap<String, String>,
    ) -> Result<Vec<Appended>, TableError> {
        for attempt in 0..CONFLICT_ATTEMPTS {
            let current = self.load(t).await?;
            let committed = committed_marks(&current.metadata);
            let todo: Vec<&(Vec<DataFile>, String)> = files
                .iter()
                .filter(|(_, mark)| !committed.contains_key(mark))
                .collect();
            if todo.is_empty() {
                return Ok(files
                    .iter()
                    .map(|(_, m)| Appended::AlreadyThere(committed[m]))
                    .collect());
            }
            let mut summary = marks.clone();
            let these: Vec<&str> = todo.iter().map(|(_, m)| m.as_str()).collect();
            summary.insert(COMMIT_MARK.to_string(), mark_value(&these));
            let data: Vec<DataFile> = todo.iter().flat_map(|(f, _)| f.iter().cloned()).collect();
            let commit = self.plan(t, &current, &data, &summary).await?;
            for (location, bytes) in &commit.files {
                self.io.write_new(location, bytes.clone()).await?;
            }
            self.io
                .write_new(&commit.metadata_location, commit.metadata.to_json())
                .await?;
            match self
                .catalog
                .swap(t, &current.location, &commit.metadata_location)
                .await?
            {
                Swap::Done => {
                    return Ok(files
                        .iter()
                        .map(|(_, m)| match committed.get(m) {
                            Some(id) => Appended::AlreadyThere(*id),
                            None => Appended::Committed(commit.snapshot_id),
                        })
                        .collect());
                }
                Swap::Conflict => {
                    tracing::debug!(table = %t, attempt, "another writer committed first; committing again on its snapshot");
                    tokio::time::sleep(Duration::from_millis(20 << attempt.min(6))).await;
                }
            }
        }
        Err(TableError::Conflicts(t.clone()))
    }

    async fn plan(
        &self,
        t: &TableIdent,
        current: &Loaded,
        files: &[DataFile],
        marks: &BTreeMap<String, String>,
    ) -> Result<Commit, TableError> {
        let m = &current.metadata;
        let partitioning = Partitioning::of(m).map_err(|source| TableError::Partition {
            table: t.clone(),
            source,
        })?;
        let parent: Vec<ManifestFile> = match m.current_snapshot() {
            Some(s) => {
                let bytes = self.io.read(&s.manifest_list).await?;
                read_manifest_list(&bytes).map_err(|source| TableError::Manifest {
                    table: t.clone(),
                    source,
                })?
            }
            None => Vec::new(),
        };
        let now = chrono::Utc::now().timestamp_millis();
        add_files(
            m,
            &current.location,
            parent,
            files,
            &partitioning,
            marks,
            now,
        )
        .map_err(|source| TableError::Manifest {
            table: t.clone(),
            source,
        })
    }

    /// Adds the `columns` table `t` lacks to its schema, as a commit of its own (no snapshot):
    /// whether it added any.
    pub(crate) async fn add_columns(
        &self,
        t: &TableIdent,
        columns: &[NestedField],
    ) -> Result<bool, TableError> {
        for attempt in 0..CONFLICT_ATTEMPTS {
            let current = self.load(t).await?;
            let now = chrono::Utc::now().timestamp_millis();
            let Some((m, at)) =
                evolve::add_columns(&current.metadata, &current.location, columns, now)
            else {
                return Ok(false);
            };
            self.io.write_new(&at, m.to_json()).await?;
            match self.catalog.swap(t, &current.location, &at).await? {
                Swap::Done => return Ok(true),
                Swap::Conflict => {
                    tokio::time::sleep(Duration::from_millis(20 << attempt.min(6))).await;
                }
            }
        }
        Err(TableError::Conflicts(t.clone()))
    }

    /// Creates an empty table: its first metadata file, then the catalog's entry.
    pub(crate) async fn create(
        &self,
        t: &TableIdent,
        metadata: &TableMetadata,
    ) -> Result<String, TableError> {
        let location = super::metadata::next_metadata_location(&metadata.location, None);
        self.io.write_new(&location, metadata.to_json()).await?;
        self.catalog.create(t, &location).await?;
        Ok(location)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iceberg::catalog::sql::SqlCatalog;
    use crate::iceberg::literal::Literal;
    use crate::iceberg::manifest::FileContent;
    use crate::iceberg::types::{NestedField, Schema, Type};

    fn open_tables(dir: &std::path::Path) -> Tables {
        let uri = format!("sqlite:///{}", dir.join("cat.db").display());
        Tables {
            catalog: Catalog::Sql(SqlCatalog::new(&uri, "default").unwrap()),
            io: FileIo::new(None),
        }
    }

    fn file(location: &str, rows: i64) -> DataFile {
        DataFile {
            content: FileContent::Data,
            file_path: format!("{location}/data/{rows}.parquet"),
            partition: vec![],
            record_count: rows,
            file_size_in_bytes: 10,
            column_sizes: vec![],
            value_counts: vec![],
            null_value_counts: vec![],
            nan_value_counts: vec![],
            lower_bounds: vec![(1, Literal::Long(0).to_bytes())],
            upper_bounds: vec![],
            split_offsets: vec![],
            equality_ids: None,
        }
    }

    #[tokio::test]
    async fn a_mark_is_committed_once_whoever_commits_in_between() {
        let dir = tempfile::tempdir().unwrap();
        let tables = open_tables(dir.path());
        let t = TableIdent::new("db", "events");
        let location = format!("file://{}/wh/db/events", dir.path().display());
        let m = TableMetadata::new(
            &location,
            Schema::new(0, vec![NestedField::new(1, "id", false, Type::Long)]),
            vec![],
            BTreeMap::new(),
            0,
        );
        tables.create(&t, &m).await.unwrap();
        let first = tables
            .append(
                &t,
                &[(vec![file(&location, 3)], "a".into())],
                &BTreeMap::new(),
            )
            .await
            .unwrap()[0];
        assert!(matches!(first, Appended::Committed(_)));
        // Another writer (here: another Tables on the same catalog) commits in between.
        let other = open_tables(dir.path());
        other
            .append(
                &t,
                &[(vec![file(&location, 4)], "b".into())],
                &BTreeMap::new(),
            )
            .await
            .unwrap();
        let again = tables
            .append(
                &t,
                &[(vec![file(&location, 3)], "a".into())],
                &BTreeMap::new(),
            )
            .await
            .unwrap();
        let Appended::Committed(id) = first else {
            unreachable!()
        };
        assert_eq!(again, vec![Appended::AlreadyThere(id)]);
        let loaded = tables.load(&t).await.unwrap();
        let head = loaded.metadata.current_snapshot().unwrap();
        assert_eq!(head.summary["total-records"], "7");
        assert_eq!(head.summary["firehosed.commit"], "b");
        assert!(
            loaded.location.contains("/metadata/00002-"),
            "{}",
            loaded.location
        );
        let list = read_manifest_list(&tables.io.read(&head.manifest_list).await.unwrap()).unwrap();
        assert_eq!(list.len(), 2);
        // Several files in one commit: those already committed are left out, the rest go in
        // one snapshot, and each is answered for.
        let both = tables
            .append(
                &t,
                &[
                    (vec![file(&location, 3)], "a".into()),
                    (vec![file(&location, 5)], "c".into()),
                ],
                &BTreeMap::new(),
            )
            .await
            .unwrap();
        assert_eq!(both[0], Appended::AlreadyThere(id));
        assert!(matches!(both[1], Appended::Committed(_)));
        let head = tables.load(&t).await.unwrap().metadata;
        let head = head.current_snapshot().unwrap();
        assert_eq!(head.summary["added-data-files"], "1");
        assert_eq!(head.summary["firehosed.commit"], "c");
        let pair = tables
            .append(
                &t,
                &[
                    (vec![file(&location, 6)], "d".into()),
                    (vec![file(&location, 7)], "e".into()),
                ],
                &BTreeMap::new(),
            )
            .await
            .unwrap();
        assert_eq!(pair[0], pair[1]);
        let m = tables.load(&t).await.unwrap().metadata;
        assert_eq!(
            m.current_snapshot().unwrap().summary["firehosed.commit"],
            r#"["d","e"]"#
        );
        assert_eq!(committed_marks(&m).len(), 5);
    }

    #[tokio::test]
    async fn a_missing_table_is_said_so() {
        let dir = tempfile::tempdir().unwrap();
        let tables = open_tables(dir.path());
        let err = tables
            .append(&TableIdent::new("db", "nope"), &[], &BTreeMap::new())
            .await;
        assert!(matches!(
            err,
            Err(TableError::Catalog(CatalogError::NoSuchTable(_)))
        ));
    }
}
