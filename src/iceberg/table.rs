//! A table's commits: read the current metadata through the catalog, append data files as one
//! snapshot, swap; on a conflict read again and redo the append on what the other writer
//! committed. A commit marks its snapshot (`firehosed.commit`): before each attempt the
//! table's ancestry is searched for the mark, so an attempt whose answer was lost, a replay
//! after a crash, or another instance that got there first never appends the files twice
//! (the Iceberg sinks of Flink and Kafka Connect check their commits the same way).

use std::collections::BTreeMap;
use std::time::Duration;

use super::append::{Commit, fast_append};
use super::catalog::{Catalog, CatalogError, Swap, TableIdent};
use super::io::{FileIo, IoError};
use super::manifest::{DataFile, ManifestError, ManifestFile, read_manifest_list};
use super::metadata::{MetadataError, TableMetadata};
use super::partition::{PartitionError, Partitioning};

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

    /// Appends `files` (written already under the table's location) as one snapshot marked
    /// `mark`, unless the table has a snapshot with that mark. `marks` are more summary keys.
    pub(crate) async fn append(
        &self,
        t: &TableIdent,
        files: &[DataFile],
        mark: &str,
        marks: &BTreeMap<String, String>,
    ) -> Result<Appended, TableError> {
        let mut marks = marks.clone();
        marks.insert(COMMIT_MARK.to_string(), mark.to_string());
        for attempt in 0..CONFLICT_ATTEMPTS {
            let current = self.load(t).await?;
            if let Some(s) = current.metadata.committed(COMMIT_MARK, mark) {
                return Ok(Appended::AlreadyThere(s.snapshot_id));
            }
            let commit = self.plan(t, &current, files, &marks).await?;
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
                Swap::Done => return Ok(Appended::Committed(commit.snapshot_id)),
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
        fast_append(
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

    #[cfg_attr(not(test), allow(dead_code))] // table creation (issue 34); the tests create tables
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
            .append(&t, &[file(&location, 3)], "a", &BTreeMap::new())
            .await
            .unwrap();
        assert!(matches!(first, Appended::Committed(_)));
        // Another writer (here: another Tables on the same catalog) commits in between.
        let other = open_tables(dir.path());
        other
            .append(&t, &[file(&location, 4)], "b", &BTreeMap::new())
            .await
            .unwrap();
        let again = tables
            .append(&t, &[file(&location, 3)], "a", &BTreeMap::new())
            .await
            .unwrap();
        let Appended::Committed(id) = first else {
            unreachable!()
        };
        assert_eq!(again, Appended::AlreadyThere(id));
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
    }

    #[tokio::test]
    async fn a_missing_table_is_said_so() {
        let dir = tempfile::tempdir().unwrap();
        let tables = open_tables(dir.path());
        let err = tables
            .append(&TableIdent::new("db", "nope"), &[], "x", &BTreeMap::new())
            .await;
        assert!(matches!(
            err,
            Err(TableError::Catalog(CatalogError::NoSuchTable(_)))
        ));
    }
}
