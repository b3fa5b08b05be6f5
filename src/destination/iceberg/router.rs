//! Which table each record goes to, as AWS routes them: the transform's `otfMetadata` first,
//! then the routing query's keys for what it left out, else the only configured table. The
//! router also keeps what staging needs of each table (schema, partition spec, the converter
//! that writes its data files), loaded from the catalog before a delivery is staged, so
//! staging itself never waits on the network. A table that does not exist (or is format v1)
//! sends its records to the error output; it is looked up again after a while, so a table
//! created later starts taking records.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::changes::{self, Change, Op};
use super::tuple;
use crate::destination::partition::{RecordKeys, Unpartitioned};
use crate::destination::stagers::Delivery;
use crate::encode::conversion::Conversion;
use crate::iceberg::arrow::conversion;
use crate::iceberg::catalog::{CatalogError, TableIdent};
use crate::iceberg::io::IoError;
use crate::iceberg::partition::Partitioning;
use crate::iceberg::table::{TableError, Tables};
use crate::iceberg::types::{Schema, Type};
use crate::keys::template::PartitionValues;
use crate::processing::error_record::{
    ICEBERG_FAILED, ICEBERG_INVALID_TABLE_NAME, ICEBERG_NO_SUCH_TABLE,
};
use crate::record::Record;
use crate::retry::{Backoff, LogGate};
use crate::sync::Lock;

/// A table that was found is read again this often (another writer may have changed it).
const READY_FOR: Duration = Duration::from_secs(60);
/// A table that was not found is looked up again this often.
const MISSING_FOR: Duration = Duration::from_secs(10);

/// firehosed's code for an operation other than insert, update or delete (AWS documents
/// none).
pub(crate) const INVALID_OPERATION: &str = "Iceberg.InvalidOperation";
/// The code AWS is seen to use when a table's unique keys do not match its schema; firehosed
/// also gives it to an update or delete on a table without unique keys, and to a record
/// without a value for a unique key.
pub(crate) const INVALID_UNIQUE_KEYS: &str = "Iceberg.InvalidUniqueKeys";

/// What staging and the sink need of one table.
pub(crate) struct Ready {
    pub(crate) location: String,
    pub(crate) schema: Schema,
    pub(crate) partitioning: Partitioning,
    pub(crate) conversion: Arc<Conversion>,
    /// The unique-key columns (the configured `unique_keys`, else the table's
    /// identifier fields), with their types; empty: records are inserts only.
    pub(crate) keys: Vec<(String, Type)>,
}

impl Ready {
    /// Whether `other` writes the same files (a table read again that nobody changed).
    fn same_as(&self, other: &Ready) -> bool {
        self.location == other.location
            && self.schema == other.schema
            && self.partitioning.ty.spec_id == other.partitioning.ty.spec_id
            && self.keys == other.keys
    }
}

#[derive(Clone)]
pub(super) enum Entry {
    Ready(Arc<Ready>),
    Missing {
        code: &'static str,
        message: String,
        /// The catalog says the table does not exist (table creation may make it).
        absent: bool,
    },
}

struct Cached {
    entry: Entry,
    checked: Instant,
    /// Look it up again before the next records (a commit found it gone).
    stale: bool,
}

/// What a destination routes by, from its specification.
pub(crate) struct RouterSetup {
    pub(crate) tables: Arc<Tables>,
    /// The configured tables (AWS's DestinationTableConfigurationList).
    pub(crate) configured: Vec<TableIdent>,
    pub(crate) append_only: bool,
    /// Where tables are created (`warehouse`), if `table_creation` is on.
    pub(crate) creation: Option<Creation>,
    /// Add the top-level fields records bring as columns.
    pub(crate) schema_evolution: bool,
    /// The configured tables' unique keys (AWS's UniqueKeys).
    pub(crate) unique_keys: HashMap<TableIdent, Vec<String>>,
    /// The configured tables' own error prefixes (AWS's S3ErrorOutputPrefix).
    pub(crate) error_prefixes: HashMap<TableIdent, Arc<str>>,
    pub(crate) label: String,
}

/// How tables a record routes to are created (AWS's TableCreationConfiguration).
pub(crate) struct Creation {
    /// AWS's WarehouseLocation: tables go to `<warehouse>/<database>.db/<table>` (Glue) or
    /// `<warehouse>/<database>/<table>` (the embedded catalog, as pyiceberg lays them out).
    pub(crate) warehouse: String,
    /// The configured tables' identity partition columns (AWS's PartitionSpec).
    pub(crate) partition_specs: HashMap<TableIdent, Vec<String>>,
}

pub(crate) struct Router {
    pub(super) setup: RouterSetup,
    cache: Mutex<HashMap<TableIdent, Cached>>,
}

/// The partition values of a record of `table` in partition `tuple` (encoded).
pub(crate) fn values(table: &TableIdent, tuple: String) -> PartitionValues {
    let mut v = PartitionValues::default();
    v.query.insert("database".into(), table.namespace.clone());
    v.query.insert("table".into(), table.name.clone());
    v.query.insert("partition".into(), tuple);
    v
}

/// The table and encoded tuple of an object's partition values.
pub(crate) fn table_of(v: &PartitionValues) -> Option<(TableIdent, &str)> {
    Some((
        TableIdent::new(v.query.get("database")?, v.query.get("table")?),
        v.query.get("partition")?,
    ))
}

fn failed(code: &'static str, message: impl Into<String>) -> Unpartitioned {
    Unpartitioned {
        output_type: ICEBERG_FAILED,
        code,
        message: message.into(),
        prefix: None,
    }
}

impl Router {
    pub(crate) fn new(setup: RouterSetup) -> Router {
        Router {
            setup,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn tables(&self) -> &Arc<Tables> {
        &self.setup.tables
    }

    /// The table a record goes to, and its operation if it was given one.
    fn route(
        &self,
        keys: Option<&RecordKeys>,
    ) -> Result<(TableIdent, Option<String>), Unpartitioned> {
        let lambda = keys.and_then(|k| k.lambda.as_deref());
        let query = keys.and_then(|k| k.query.as_ref());
        let from_query = query.and_then(|q| q.as_ref().ok());
        let get = |name: &str| {
            lambda
                .and_then(|m| m.get(name))
                .or_else(|| from_query.and_then(|m| m.get(name)))
                .cloned()
        };
        let (db, table, op) = (
            get("destinationDatabaseName"),
            get("destinationTableName"),
            get("operation"),
        );
        match (db, table) {
            (Some(db), Some(table)) if !db.is_empty() && !table.is_empty() => {
                Ok((TableIdent::new(&db, &table), op))
            }
            (None, None) if self.setup.configured.len() == 1 => {
                Ok((self.setup.configured[0].clone(), op))
            }
            (db, table) => {
                let why = match (query, db, table) {
                    (Some(Err(e)), None, None) => format!("the routing query failed: {e}"),
                    (_, None, None) => "no destinationDatabaseName and destinationTableName (from the transform's otfMetadata or the routing query), and not exactly one table is configured".to_string(),
                    _ => "destinationDatabaseName and destinationTableName must both be given and not empty".to_string(),
                };
                Err(failed(ICEBERG_INVALID_TABLE_NAME, why))
            }
        }
    }

    /// A record's row-level change on table `ready`: none for an insert into a table without
    /// unique keys, or with `append_only` (every record is an insert, as AWS documents).
    fn change(
        &self,
        ready: &Ready,
        record: &Record,
        op: Option<&str>,
    ) -> Result<Option<Change>, ChangeError> {
        if self.setup.append_only {
            return Ok(None);
        }
        // AWS: the operation is optional and defaults to insert.
        let op = match op {
            None => Op::Insert,
            Some(s) => Op::parse(s).ok_or_else(|| ChangeError::Operation(s.to_string()))?,
        };
        if ready.keys.is_empty() {
            return match op {
                Op::Insert => Ok(None),
                _ => Err(ChangeError::NoKeys),
            };
        }
        // Deletes are partitioned like their record (as AWS's): one that does not say its
        // partition would find nothing to remove.
        if op != Op::Insert
            && let Some(column) =
                tuple::missing_source(&record.data, &ready.schema, &ready.partitioning)
        {
            return Err(ChangeError::Partition(column));
        }
        Ok(Some(changes::change_of(op, &record.data, &ready.keys)?))
    }

    /// The partition of a record: its table and partition tuple, or why it has none.
    pub(crate) fn resolve(
        &self,
        record: &Record,
        keys: Option<&RecordKeys>,
    ) -> Result<(PartitionValues, Option<Change>), Unpartitioned> {
        let (t, op) = self.route(keys)?;
        // Errors of a record whose table is known go under that table's error prefix.
        let failed = |code, message: String| Unpartitioned {
            prefix: self.error_prefix(&t),
            ..failed(code, message)
        };
        let ready = match self.cache.locked().get(&t).map(|c| c.entry.clone()) {
            Some(Entry::Ready(r)) => r,
            Some(Entry::Missing { code, message, .. }) => return Err(failed(code, message)),
            None => {
                return Err(failed(
                    ICEBERG_NO_SUCH_TABLE,
                    format!("table {t} was not found"),
                ));
            }
        };
        let change = self
            .change(&ready, record, op.as_deref())
            .map_err(|e| failed(e.code(), format!("table {t}: {e}")))?;
        let tuple = if ready.partitioning.is_unpartitioned() {
            Vec::new()
        } else {
            tuple::tuple(&record.data, &ready.schema, &ready.partitioning).map_err(|e| {
                failed(
                    crate::processing::error_record::ICEBERG_SCHEMA_MISMATCH,
                    format!("table {t}: {e}"),
                )
            })?
        };
        Ok((values(&t, tuple::encode(&tuple)), change))
    }

    /// The error prefix of table `t`'s own, if it has one.
    pub(crate) fn error_prefix(&self, t: &TableIdent) -> Option<Arc<str>> {
        self.setup.error_prefixes.get(t).cloned()
    }

    /// The table as last loaded.
    pub(crate) fn ready(&self, t: &TableIdent) -> Option<Arc<Ready>> {
        match self.cache.locked().get(t).map(|c| &c.entry) {
            Some(Entry::Ready(r)) => Some(r.clone()),
            _ => None,
        }
    }

    /// The table is gone (a commit was told so): look it up again before the next records.
    /// What is known of it stays until then (objects being staged for it still need it).
    pub(crate) fn forget(&self, t: &TableIdent) {
        if let Some(c) = self.cache.locked().get_mut(t) {
            c.stale = true;
        }
    }

    /// Loads the tables the records of `d` go to that are not known (or not known lately),
    /// creating those that do not exist with `table_creation`, and adds the columns records
    /// bring with `schema_evolution`. A catalog that cannot be reached is tried again until it
    /// answers: records wait (the processor, and then producers, are slowed down), nothing is
    /// lost.
    pub(crate) async fn prepare(&self, d: &Delivery) {
        let now = Instant::now();
        let routed: Vec<(TableIdent, usize)> = (0..d.records.len())
            .filter_map(|i| {
                let keys = d.keys.get(i).and_then(Option::as_deref);
                self.route(keys).ok().map(|(t, _)| (t, i))
            })
            .collect();
        let wanted: BTreeSet<TableIdent> = {
            let cache = self.cache.locked();
            routed
                .iter()
                .map(|(t, _)| t)
                .filter(|t| {
                    cache.get(*t).is_none_or(|c| {
                        let ttl = match c.entry {
                            Entry::Ready(_) => READY_FOR,
                            Entry::Missing { .. } => MISSING_FOR,
                        };
                        c.stale || now.duration_since(c.checked) >= ttl
                    })
                })
                .cloned()
                .collect()
        };
        let records_of = |t: TableIdent| {
            routed
                .iter()
                .filter(move |(r, _)| *r == t)
                .map(|(_, i)| d.records[*i].data.as_ref())
        };
        for t in wanted {
            let mut entry = self.load(&t).await;
            if let Entry::Missing { absent: true, .. } = entry
                && let Some(created) = self.create(&t, records_of(t.clone())).await
            {
                entry = created;
            }
            self.remember(t, entry);
        }
        if self.setup.schema_evolution {
            let tables: BTreeSet<&TableIdent> = routed.iter().map(|(t, _)| t).collect();
            for t in tables {
                self.evolve(t, records_of(t.clone())).await;
            }
        }
    }

    /// Keeps what was loaded of `t`. A table whose schema, partition spec and keys did not
    /// change keeps its converter (staged objects go on with it; a new one seals them).
    pub(super) fn remember(&self, t: TableIdent, entry: Entry) {
        let mut cache = self.cache.locked();
        let entry = match (cache.get(&t).map(|c| &c.entry), entry) {
            (Some(Entry::Ready(old)), Entry::Ready(new)) if old.same_as(&new) => {
                Entry::Ready(old.clone())
            }
            (_, entry) => entry,
        };
        cache.insert(
            t,
            Cached {
                entry,
                checked: Instant::now(),
                stale: false,
            },
        );
    }

    /// Reads table `t` until the catalog answers.
    pub(super) async fn load(&self, t: &TableIdent) -> Entry {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        let mut gate = LogGate::new(Duration::from_secs(30));
        loop {
            match self.setup.tables.load(t).await {
                Ok(loaded) => {
                    let Some(schema) = loaded.metadata.current_schema().cloned() else {
                        return missing(t, "its metadata has no current schema");
                    };
                    let partitioning = match Partitioning::of(&loaded.metadata) {
                        Ok(p) => p,
                        Err(e) => return missing(t, &e.to_string()),
                    };
                    let keys = match self.keys(t, &schema) {
                        Ok(k) => k,
                        Err(e) => {
                            return Entry::Missing {
                                code: INVALID_UNIQUE_KEYS,
                                message: e.to_string(),
                                absent: false,
                            };
                        }
                    };
                    tracing::info!(destination = %self.setup.label, table = %t,
                        metadata = %loaded.location, "Iceberg table found");
                    return Entry::Ready(Arc::new(Ready {
                        location: loaded.metadata.location.clone(),
                        conversion: Arc::new(
                            conversion(&schema, t).with_error_prefix(self.error_prefix(t)),
                        ),
                        schema,
                        partitioning,
                        keys,
                    }));
                }
                Err(TableError::Catalog(CatalogError::NoSuchTable(_))) => {
                    return Entry::Missing {
                        code: ICEBERG_NO_SUCH_TABLE,
                        message: format!(
                            "table {t} does not exist in the {}",
                            self.setup.tables.catalog.describe()
                        ),
                        absent: true,
                    };
                }
                Err(e) if denied(&e).is_some() => {
                    let code = denied(&e).unwrap_or(ICEBERG_NO_SUCH_TABLE);
                    tracing::error!(destination = %self.setup.label, table = %t, code,
                        error = %crate::report::Chain(&e),
                        "access to the Iceberg table is denied: check the credentials the catalog and the warehouse are reached with");
                    return Entry::Missing {
                        code,
                        message: format!("table {t}: {}", crate::report::Chain(&e)),
                        absent: false,
                    };
                }
                // A catalog or warehouse that does not answer (or answers with an error that
                // says nothing of the table) is an outage: records wait, none is refused.
                Err(
                    e @ (TableError::Catalog(_)
                    | TableError::Io(IoError::S3 { .. } | IoError::Local { .. })),
                ) => {
                    if gate.should_log(Instant::now()) {
                        tracing::warn!(destination = %self.setup.label, table = %t,
                            transient = e.transient(), error = %crate::report::Chain(&e),
                            "cannot read the Iceberg table; retrying (records wait)");
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                // The table's own files say it cannot take records (format v1, a partition
                // transform firehosed does not apply, unreadable metadata).
                Err(e) => return missing(t, &crate::report::Chain(&e).to_string()),
            }
        }
    }
}

impl Router {
    /// Table `t`'s unique-key columns: the configured ones, else its identifier fields. Each
    /// must be a top-level primitive column (AWS: "The configured unique keys for the table do
    /// not match with the fields present in the schema").
    fn keys(&self, t: &TableIdent, schema: &Schema) -> Result<Vec<(String, Type)>, KeysMismatch> {
        let names: Vec<String> = match self.setup.unique_keys.get(t) {
            Some(k) if !k.is_empty() => k.clone(),
            _ => schema
                .identifier_field_ids
                .iter()
                .filter_map(|id| schema.fields.iter().find(|f| f.id == *id))
                .map(|f| f.name.clone())
                .collect(),
        };
        names
            .into_iter()
            .map(|name| match schema.field(&name) {
                Some(f) if f.ty.is_primitive() => Ok((name, f.ty.clone())),
                _ => Err(KeysMismatch {
                    table: t.clone(),
                    name,
                }),
            })
            .collect()
    }
}

/// Why a record's operation cannot be applied.
#[derive(Debug, thiserror::Error)]
enum ChangeError {
    #[error("operation must be insert, update or delete (got {0:?})")]
    Operation(String),
    #[error(
        "an update or delete needs unique keys: configure unique_keys for the table (AWS's UniqueKeys) or give it identifier fields"
    )]
    NoKeys,
    #[error(transparent)]
    Key(#[from] changes::KeyError),
    #[error(
        "an update or delete must give the table's partition column {0:?}: its deletes apply within the record's partition"
    )]
    Partition(String),
}

impl ChangeError {
    fn code(&self) -> &'static str {
        match self {
            ChangeError::Operation(_) => INVALID_OPERATION,
            ChangeError::NoKeys | ChangeError::Key(_) => INVALID_UNIQUE_KEYS,
            ChangeError::Partition(_) => crate::processing::error_record::ICEBERG_MISSING_COLUMN,
        }
    }
}

/// A unique key that is not a top-level primitive column of its table.
#[derive(Debug, thiserror::Error)]
#[error(
    "table {table}: the configured unique keys for the table do not match with the fields present in the schema ({name:?} is not a top-level column of a primitive type)"
)]
pub(crate) struct KeysMismatch {
    table: TableIdent,
    name: String,
}

/// AWS's code when the catalog or the warehouse refused our credentials.
fn denied(e: &TableError) -> Option<&'static str> {
    match e {
        TableError::Catalog(CatalogError::AccessDenied { .. }) => Some("Glue.AccessDenied"),
        TableError::Io(IoError::S3 { denied: true, .. }) => Some("S3.AccessDenied"),
        _ => None,
    }
}

/// A table that cannot take records: AWS names a missing or v1 table `Iceberg.NoSuchTable`.
pub(super) fn missing(t: &TableIdent, why: &str) -> Entry {
    Entry::Missing {
        code: ICEBERG_NO_SUCH_TABLE,
        message: format!("table {t} cannot take records: {why}"),
        absent: false,
    }
}
