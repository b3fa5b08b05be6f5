//! The Iceberg destination's sink: a sealed object of a table's partition is one Parquet data
//! file. Delivering it writes the file under the table's `data/`, reads its metrics from the
//! footer, and commits it as one snapshot marked with the object's name (the exactly-once
//! identity when the destination is exactly-once): a commit whose answer was lost, or a
//! replay, finds its mark and does not append the file again. A catalog that does not answer
//! is retried until it does (records wait in the log); a table that cannot take the file
//! (dropped, changed incompatibly) is retried for the retry duration, then the file goes to the
//! backup under the error prefix as `iceberg-failed`, where AWS puts the files of commits it
//! gave up on. Error and backup objects go to the backup as they are.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::changes::RowChanges;
use super::router::{Ready, Router, table_of};
use super::tuple;
use crate::destination::naming::Naming;
use crate::destination::sink::{DeliveryError, Sink, Written};
use crate::destination::stagers::Kind;
use crate::destination::staging::Sealed;
use crate::iceberg::catalog::{CatalogError, TableIdent};
use crate::iceberg::deletes::{DeleteError, equality_deletes, position_deletes};
use crate::iceberg::literal::Literal;
use crate::iceberg::manifest::{DataFile, FileContent};
use crate::iceberg::metrics::data_file;
use crate::iceberg::table::{Appended, TableError};
use crate::metrics::DestinationMetrics;
use crate::retry::Backoff;

/// What an Iceberg sink is made of.
pub(crate) struct IcebergSetup {
    pub(crate) router: Arc<Router>,
    pub(crate) backup: Sink,
    /// AWS's RetryOptions.DurationInSeconds.
    pub(crate) retry: Duration,
    /// Names the `iceberg-failed` objects (the destination's naming with its error prefix).
    pub(crate) failed_naming: Naming,
    pub(crate) stream: String,
    pub(crate) metrics: Arc<DestinationMetrics>,
    pub(crate) label: String,
}

pub(crate) struct IcebergSink {
    setup: IcebergSetup,
}

/// Why a data file was not committed.
#[derive(Debug, thiserror::Error)]
enum CommitError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("cannot read the staged data file's footer: {0}")]
    Footer(String),
    #[error("table {0} is not known (it does not exist, or cannot take records)")]
    Unknown(TableIdent),
    #[error("the object's partition does not match table {0}'s partition spec")]
    Partition(TableIdent),
    #[error(transparent)]
    Deletes(#[from] DeleteError),
}

impl CommitError {
    fn transient(&self) -> bool {
        match self {
            CommitError::Table(e) => e.transient(),
            _ => false,
        }
    }
}

impl IcebergSink {
    pub(crate) fn new(setup: IcebergSetup) -> IcebergSink {
        IcebergSink { setup }
    }

    pub(crate) fn backup(&self) -> &Sink {
        &self.setup.backup
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "Iceberg tables in the {} (backup {})",
            self.setup.router.tables().catalog.describe(),
            self.setup.backup.describe()
        )
    }

    pub(crate) async fn deliver(
        &self,
        object: &Sealed,
        kind: Kind,
    ) -> Result<Written, DeliveryError> {
        let mut out = self.deliver_batch(&[(object, kind)]).await;
        out.pop().unwrap_or_else(|| {
            Err(DeliveryError {
                transient: false,
                message: "nothing was delivered".into(),
            })
        })
    }

    /// Delivers the objects of one staging step: error and backup objects to the backup, the
    /// data files of each table in one commit (one snapshot per table per step: a flush, or a
    /// buffer filled). The answer is per object, in order.
    pub(crate) async fn deliver_batch(
        &self,
        objects: &[(&Sealed, Kind)],
    ) -> Vec<Result<Written, DeliveryError>> {
        let mut out: Vec<Option<Result<Written, DeliveryError>>> =
            (0..objects.len()).map(|_| None).collect();
        let mut by_table: BTreeMap<TableIdent, Vec<usize>> = BTreeMap::new();
        for (i, (o, kind)) in objects.iter().enumerate() {
            if matches!(kind, Kind::Error | Kind::Backup) {
                out[i] = Some(self.setup.backup.deliver(o, *kind).await);
                continue;
            }
            match o.partition.as_deref().and_then(table_of) {
                Some((t, _)) => by_table.entry(t).or_default().push(i),
                None => {
                    out[i] = Some(Err(DeliveryError {
                        transient: false,
                        message: "an Iceberg destination's object names no table".into(),
                    }));
                }
            }
        }
        for (t, mut indexes) in by_table {
            // In the order they were opened (ids come from one counter): a partition's objects
            // apply their changes in the order of their records.
            indexes.sort_by_key(|i| objects[*i].0.id);
            let these: Vec<(usize, &Sealed)> =
                indexes.iter().map(|i| (*i, objects[*i].0)).collect();
            for (i, w) in self.commit_rounds(&t, &these).await {
                out[i] = Some(w);
            }
        }
        out.into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    Err(DeliveryError {
                        transient: false,
                        message: "an object was not delivered".into(),
                    })
                })
            })
            .collect()
    }

    /// Commits one table's objects in rounds (`rounds`), one after the other. A round that is
    /// not committed (the catalog did not answer) stops the rest: a later round's deletes must
    /// never commit before the rows an earlier round adds. The answer is per object index.
    async fn commit_rounds(
        &self,
        t: &TableIdent,
        objects: &[(usize, &Sealed)],
    ) -> Vec<(usize, Result<Written, DeliveryError>)> {
        let mut out = Vec::new();
        let mut stopped: Option<DeliveryError> = None;
        for round in rounds(objects) {
            let group: Vec<&Sealed> = round.iter().map(|i| objects[*i].1).collect();
            let result = match &stopped {
                Some(e) => Err(e.clone()),
                None => self.commit_table(t, &group).await,
            };
            match result {
                Ok(written) => out.extend(round.iter().map(|i| objects[*i].0).zip(written)),
                Err(e) => {
                    out.extend(round.iter().map(|i| (objects[*i].0, Err(e.clone()))));
                    stopped = Some(e);
                }
            }
        }
        out
    }

    /// Commits one table's objects: a failure the table may recover from is retried for the
    /// retry duration, then the objects go to the backup as `iceberg-failed`; a catalog that
    /// does not answer is the uploader's to retry (records wait).
    async fn commit_table(
        &self,
        t: &TableIdent,
        objects: &[&Sealed],
    ) -> Result<Vec<Result<Written, DeliveryError>>, DeliveryError> {
        let started = Instant::now();
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        loop {
            match self.commit(objects, t).await {
                Ok(w) => return Ok(w.into_iter().map(Ok).collect()),
                Err(e) if e.transient() => {
                    return Err(DeliveryError {
                        transient: true,
                        message: crate::report::Chain(&e).to_string(),
                    });
                }
                Err(e) => {
                    if let CommitError::Table(TableError::Catalog(CatalogError::NoSuchTable(_))) =
                        &e
                    {
                        self.setup.router.forget(t);
                    }
                    if started.elapsed() >= self.setup.retry {
                        let mut out = Vec::new();
                        for o in objects {
                            out.push(self.fail_over(o, t, &e).await);
                        }
                        return Ok(out);
                    }
                    tracing::warn!(destination = %self.setup.label, table = %t, files = objects.len(),
                        error = %crate::report::Chain(&e), "cannot commit to the Iceberg table; retrying within the retry duration");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    /// Writes the objects' data files into table `t` and commits them as one snapshot; those
    /// the table has already (their marks are in its snapshots) are neither written nor
    /// committed again.
    async fn commit(
        &self,
        objects: &[&Sealed],
        t: &TableIdent,
    ) -> Result<Vec<Written>, CommitError> {
        let ready = self
            .setup
            .router
            .ready(t)
            .ok_or_else(|| CommitError::Unknown(t.clone()))?;
        let tables = self.setup.router.tables();
        let committed = tables.committed(t).await?;
        let types: Vec<_> = ready
            .partitioning
            .ty
            .fields
            .iter()
            .map(|(_, ty)| ty.clone())
            .collect();
        let mut files = Vec::new();
        for o in objects.iter().filter(|o| !committed.contains_key(&o.key)) {
            let tuple_text = o
                .partition
                .as_deref()
                .and_then(table_of)
                .map_or("", |(_, p)| p);
            let tuple = tuple::decode(tuple_text, &types)
                .ok_or_else(|| CommitError::Partition(t.clone()))?;
            files.push((self.object_files(o, &ready, t, tuple).await?, o.key.clone()));
        }
        if files.is_empty() {
            return Ok(vec![Written::AlreadyThere; objects.len()]);
        }
        let started = Instant::now();
        let records: i64 = files
            .iter()
            .flat_map(|(f, _)| f)
            .filter(|f| f.content == FileContent::Data)
            .map(|f| f.record_count)
            .sum();
        let appended = tables.append(t, &files, &self.marks(objects)).await?;
        // One line per commit (a table's step, not a record's): bench/iceberg.sh reads the
        // commit latency from it.
        tracing::info!(destination = %self.setup.label, table = %t, files = files.len(), records,
            commit_ms = started.elapsed().as_millis() as u64, "committed to the Iceberg table");
        let mut appended = appended.into_iter();
        Ok(objects
            .iter()
            .map(|o| {
                if committed.contains_key(&o.key) {
                    return Written::AlreadyThere;
                }
                match appended.next() {
                    Some(Appended::Committed(_)) => Written::Put,
                    _ => Written::AlreadyThere,
                }
            })
            .collect())
    }

    /// Writes an object's files into the table: its data file (if it has rows), and for a
    /// table with unique keys the position deletes of its own rows a later operation removed
    /// and the equality deletes of the keys it updated or deleted. Their manifest entries.
    async fn object_files(
        &self,
        o: &Sealed,
        ready: &Ready,
        t: &TableIdent,
        tuple: Vec<Option<Literal>>,
    ) -> Result<Vec<DataFile>, CommitError> {
        let io = &self.setup.router.tables().io;
        let location = data_location(ready, &o.key, "");
        let footer = footer(&o.path).await?;
        let mut files = Vec::new();
        if footer.file_metadata().num_rows() > 0 {
            io.upload(&location, &o.path)
                .await
                .map_err(TableError::from)?;
            files.push(data_file(
                &location,
                o.size,
                &footer,
                &ready.schema,
                tuple.clone(),
            ));
        }
        let Some(changes) = &o.changes else {
            return Ok(files);
        };
        // The key columns the object was staged with (the table's may have changed since).
        let keys: Vec<String> = changes
            .deleted
            .first()
            .and_then(|k| {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(k).ok()
            })
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let mut deletes = Vec::new();
        if !changes.dropped.is_empty() {
            let at = data_location(ready, &o.key, "-pos-deletes");
            deletes.push(position_deletes(
                &at,
                &location,
                &changes.dropped,
                tuple.clone(),
            )?);
        }
        if !changes.deleted.is_empty() {
            let at = data_location(ready, &o.key, "-eq-deletes");
            let eq = equality_deletes(&at, &ready.schema, &keys, &changes.deleted, t, tuple)?;
            deletes.extend(eq);
        }
        for d in deletes {
            io.write_new(&d.location, d.bytes)
                .await
                .map_err(TableError::from)?;
            files.push(d.entry);
        }
        Ok(files)
    }

    /// What the snapshot's summary records besides its marks: the stream, and the log range
    /// each file holds (spool positions, or a Kinesis shard's sequence numbers).
    fn marks(&self, objects: &[&Sealed]) -> BTreeMap<String, String> {
        let ranges: Vec<serde_json::Value> = objects
            .iter()
            .map(|o| match &o.identity {
                Some((entry, _)) => serde_json::json!({"first": entry.first, "last": entry.last}),
                None => serde_json::json!({"first_seq": o.first_seq, "next_seq": o.next_seq}),
            })
            .collect();
        let range = match ranges.as_slice() {
            [one] => one.to_string(),
            _ => serde_json::Value::Array(ranges).to_string(),
        };
        BTreeMap::from([
            ("firehosed.stream".to_string(), self.setup.stream.clone()),
            ("firehosed.range".to_string(), range),
        ])
    }

    /// The file goes to the backup under the error prefix: its records are kept, as Parquet.
    async fn fail_over(
        &self,
        object: &Sealed,
        t: &TableIdent,
        e: &CommitError,
    ) -> Result<Written, DeliveryError> {
        // Under the table's own error prefix, if it has one.
        let naming = match self.setup.router.error_prefix(t) {
            Some(p) => Naming {
                error: Some(crate::destination::naming::ErrorNaming {
                    template: Some(crate::keys::template::Template::parse(&p).unwrap_or_default()),
                    output_type: crate::processing::error_record::ICEBERG_FAILED,
                }),
                ..self.setup.failed_naming.clone()
            },
            None => self.setup.failed_naming.clone(),
        };
        let name = naming.object(object.oldest_ms, &uuid::Uuid::new_v4());
        tracing::error!(destination = %self.setup.label, table = %t, key = %name.key,
            error = %crate::report::Chain(e),
            "the retry duration ended without a commit: the data file goes to the backup as iceberg-failed");
        let failed = Sealed {
            id: object.id,
            path: object.path.clone(),
            key: name.key,
            records: object.records,
            raw_bytes: object.raw_bytes,
            size: object.size,
            oldest_ms: object.oldest_ms,
            first_seq: object.first_seq,
            next_seq: object.next_seq,
            identity: None,
            partition: None,
            changes: None,
        };
        self.setup.backup.deliver(&failed, Kind::Error).await?;
        if let Some(changes) = &object.changes {
            self.fail_over_deletes(&failed, t, changes).await?;
        }
        self.setup.metrics.error_records.add(object.records);
        Ok(Written::BackedUp)
    }

    /// What a failed object's commit would have removed goes beside its data file, as AWS
    /// sends "the data and delete file keys" of a commit it gave up on to the error prefix:
    /// `<key>.deletes.json`, the table, the keys whose earlier rows go (`deletedKeys`) and the
    /// rows of the data file beside it a later operation removed (`droppedRows`), so that the
    /// records can be applied again as they would have been.
    async fn fail_over_deletes(
        &self,
        data: &Sealed,
        t: &TableIdent,
        changes: &RowChanges,
    ) -> Result<(), DeliveryError> {
        if changes.deleted.is_empty() && changes.dropped.is_empty() {
            return Ok(());
        }
        let keys: Vec<serde_json::Value> = changes
            .deleted
            .iter()
            .filter_map(|k| serde_json::from_str(k).ok())
            .collect();
        let body = serde_json::json!({
            "table": t.to_string(),
            "dataFile": data.key,
            "deletedKeys": keys,
            "droppedRows": changes.dropped,
        })
        .to_string();
        let path = data.path.with_extension("deletes.part");
        let io_failed = |e: std::io::Error| DeliveryError {
            transient: true,
            message: format!("cannot stage {}: {e}", path.display()),
        };
        tokio::fs::write(&path, &body).await.map_err(io_failed)?;
        let deletes = Sealed {
            path: path.clone(),
            key: format!("{}.deletes.json", data.key),
            size: body.len() as u64,
            raw_bytes: body.len() as u64,
            records: 0,
            identity: None,
            partition: None,
            changes: None,
            ..*data
        };
        let written = self.setup.backup.deliver(&deletes, Kind::Error).await;
        let _ = tokio::fs::remove_file(&path).await;
        written.map(|_| ())
    }
}

/// A staged Parquet file's footer.
async fn footer(
    path: &std::path::Path,
) -> Result<parquet::file::metadata::ParquetMetaData, CommitError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
        parquet::file::metadata::ParquetMetaDataReader::new()
            .parse_and_finish(&file)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| CommitError::Footer(e.to_string()))?
    .map_err(CommitError::Footer)
}

/// Where an object's data file goes: the table's `data/`, named after the object with an
/// attempt's own suffix (an attempt that lost its answer leaves an unreferenced file, never a
/// file another attempt's commit names).
fn data_location(table: &Ready, key: &str, kind: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or(key);
    let stem = name.strip_suffix(".parquet").unwrap_or(name);
    format!(
        "{}/data/{stem}-{}{kind}.parquet",
        table.location.trim_end_matches('/'),
        uuid::Uuid::new_v4().simple()
    )
}

/// The objects of one table's step (in the order they were opened) in commits, as positions
/// in `objects`. An object whose commit removes rows of earlier commits (equality deletes) goes
/// in a commit after the one holding its partition's last object: an equality delete removes
/// rows of earlier commits only, and must remove those. Any other object shares the commit of
/// its partition's last object (or the first): its rows come after, and a later object's
/// deletes, committed after it, remove them.
pub(super) fn rounds(objects: &[(usize, &Sealed)]) -> Vec<Vec<usize>> {
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    let mut last: HashMap<Option<&str>, usize> = HashMap::new();
    for (at, (_, o)) in objects.iter().enumerate() {
        let partition = o.partition.as_deref().and_then(table_of).map(|(_, p)| p);
        let deletes = o.changes.as_ref().is_some_and(|c| !c.deleted.is_empty());
        let round = match (last.get(&partition), deletes) {
            (None, _) => 0,
            (Some(r), false) => *r,
            (Some(r), true) => r + 1,
        };
        if round == rounds.len() {
            rounds.push(Vec::new());
        }
        rounds[round].push(at);
        last.insert(partition, round);
    }
    rounds
}
