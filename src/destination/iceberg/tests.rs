//! The Iceberg destination in process, on an embedded catalog in a temporary folder: records
//! routed to their table, written as one Parquet data file with the table's field ids, and
//! committed once (a second delivery of the same object finds its mark); a table with unique
//! keys takes an object's inserts, updates and deletes as one row delta, once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parquet::file::reader::{FileReader, SerializedFileReader};

use super::router::{Router, RouterSetup, values};
use super::sink::{IcebergSetup, IcebergSink};
use super::tuple;
use crate::destination::naming::Naming;
use crate::destination::partition::RecordKeys;
use crate::destination::sink::{Sink, Written};
use crate::destination::stagers::{Delivery, Kind};
use crate::destination::staging::Sealed;
use crate::iceberg::catalog::sql::SqlCatalog;
use crate::iceberg::catalog::{Catalog, TableIdent};
use crate::iceberg::io::FileIo;
use crate::iceberg::manifest::read_manifest_list;
use crate::iceberg::metadata::TableMetadata;
use crate::iceberg::table::Tables;
use crate::iceberg::types::{ListType, NestedField, Schema, StructType, Type};
use crate::keys::template::Template;
use crate::record::Record;

fn schema() -> Schema {
    Schema::new(
        0,
        vec![
            NestedField::new(1, "id", true, Type::Long),
            NestedField::new(2, "name", false, Type::String),
            NestedField::new(3, "ts", false, Type::TimestampTz),
            NestedField::new(
                4,
                "amount",
                false,
                Type::Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
            NestedField::new(
                5,
                "tags",
                false,
                Type::List(ListType {
                    element_id: 7,
                    element_required: false,
                    element: Box::new(Type::String),
                }),
            ),
            NestedField::new(
                6,
                "attrs",
                false,
                Type::Struct(StructType {
                    fields: vec![NestedField::new(8, "a", false, Type::Int)],
                }),
            ),
        ],
    )
}

struct Setup {
    _dir: tempfile::TempDir,
    router: Arc<Router>,
    sink: IcebergSink,
    staging: std::path::PathBuf,
    table: TableIdent,
}

async fn setup() -> Setup {
    setup_keyed(&[]).await
}

/// A table `db.events` whose unique keys are `keys`.
async fn setup_keyed(keys: &[&str]) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("sqlite:///{}", dir.path().join("cat.db").display());
    let tables = Arc::new(Tables {
        catalog: Catalog::Sql(SqlCatalog::new(&uri, "default").expect("uri")),
        io: FileIo::new(None),
    });
    let table = TableIdent::new("db", "events");
    let location = format!("file://{}/wh/db/events", dir.path().display());
    let m = TableMetadata::new(&location, schema(), vec![], BTreeMap::new(), 0);
    tables.create(&table, &m).await.expect("create");
    let router = Arc::new(Router::new(RouterSetup {
        tables,
        configured: vec![table.clone()],
        append_only: false,
        creation: None,
        schema_evolution: false,
        unique_keys: HashMap::from([(table.clone(), keys.iter().map(|k| k.to_string()).collect())]),
        error_prefixes: Default::default(),
        label: "s[0]".into(),
    }));
    let backup_dir = dir.path().join("backup");
    std::fs::create_dir_all(&backup_dir).expect("backup dir");
    let naming = Naming {
        stream: "s".into(),
        version: 1,
        prefix: Template::default(),
        extension: ".parquet".into(),
        time_zone: chrono_tz::UTC,
        error: None,
        partition: None,
    };
    let sink = IcebergSink::new(IcebergSetup {
        router: router.clone(),
        backup: Sink::Directory(crate::destination::directory::DirectorySink::new(
            backup_dir,
        )),
        retry: Duration::from_secs(0),
        failed_naming: naming,
        stream: "s".into(),
        metrics: Arc::default(),
        label: "s[0]".into(),
    });
    let staging = dir.path().join("staging");
    std::fs::create_dir_all(&staging).expect("staging dir");
    Setup {
        _dir: dir,
        router,
        sink,
        staging,
        table,
    }
}

fn record(seq: u64, json: &str) -> Record {
    Record {
        data: Bytes::from(json.to_string()),
        arrival_ms: 1_700_000_000_000,
        seq,
        sub: 0,
        kinesis: None,
    }
}

#[tokio::test]
async fn records_become_one_data_file_with_field_ids_committed_once() {
    let s = setup().await;
    let records = vec![
        record(
            0,
            r#"{"id": 1, "name": "a", "ts": 1725476175114000, "amount": "12.34", "tags": ["x", "y"], "attrs": {"a": 5}}"#,
        ),
        record(
            1,
            r#"{"id": 2, "ts": "2024-09-04T18:56:15.114Z", "extra": true}"#,
        ),
    ];
    let delivery = Delivery {
        records: records.clone(),
        keys: vec![None, None],
        ..Delivery::default()
    };
    s.router.prepare(&delivery).await;
    let (values, _) = s.router.resolve(&records[0], None).expect("routed");
    assert_eq!(values, values_of(&s.table));
    let ready = s.router.ready(&s.table).expect("loaded");
    let path = s.staging.join("o.parquet");
    let mut w = ready
        .conversion
        .writer(std::fs::File::create(&path).expect("file"))
        .expect("writer");
    for r in &records {
        assert_eq!(w.append(&r.data).expect("io").expect("fits"), 1);
    }
    // A record without the required id does not fit: nothing of it is written.
    let misfit = w
        .append(br#"{"name": "no id"}"#)
        .expect("io")
        .expect_err("misfit");
    assert!(misfit.is_missing_column(), "{misfit}");
    w.finish().expect("finish");
    let size = std::fs::metadata(&path).expect("size").len();
    let object = Sealed {
        id: 1,
        path: path.clone(),
        key: "s-1-2024-01-01-00-00-00-abc.parquet".into(),
        records: 2,
        raw_bytes: 10,
        size,
        oldest_ms: 0,
        first_seq: 0,
        next_seq: 2,
        identity: None,
        partition: Some(Arc::new(values.clone())),
        changes: None,
    };
    committed_once(&s, &object).await;
    let tables = s.router.tables();
    let loaded = tables.load(&s.table).await.expect("load");
    let head = loaded.metadata.current_snapshot().expect("snapshot");
    assert_eq!(head.summary["total-records"], "2");
    assert_eq!(head.summary["firehosed.stream"], "s");
    assert_eq!(loaded.metadata.snapshots.len(), 1);
    let list = read_manifest_list(&tables.io.read(&head.manifest_list).await.expect("list"))
        .expect("manifest list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].added_rows_count, 2);
    // The data file carries the table's field ids, nested ones included.
    let data_dir = s._dir.path().join("wh/db/events/data");
    let file = std::fs::read_dir(&data_dir)
        .expect("data")
        .next()
        .expect("a file")
        .expect("entry");
    let reader = SerializedFileReader::new(std::fs::File::open(file.path()).expect("open"))
        .expect("parquet");
    let descr = reader.metadata().file_metadata().schema_descr();
    let ids: Vec<i32> = (0..descr.num_columns())
        .map(|i| descr.column(i).self_type().get_basic_info().id())
        .collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 7, 8]);
    assert_eq!(reader.metadata().file_metadata().num_rows(), 2);
}

/// Delivers `object` twice: committed, then found by its mark (an answer lost, a crash
/// replaying it): nothing applies twice.
async fn committed_once(s: &Setup, object: &Sealed) {
    let first = s.sink.deliver(object, Kind::Partition).await;
    assert_eq!(first.expect("committed"), Written::Put);
    let again = s.sink.deliver(object, Kind::Partition).await;
    assert_eq!(again.expect("again"), Written::AlreadyThere);
}

fn values_of(t: &TableIdent) -> crate::keys::template::PartitionValues {
    values(t, tuple::encode(&[]))
}

#[tokio::test]
async fn records_for_a_missing_table_or_without_a_route_are_refused_with_aws_codes() {
    let s = setup().await;
    let keys = |db: &str, table: &str| {
        let map = BTreeMap::from([
            ("destinationDatabaseName".to_string(), db.to_string()),
            ("destinationTableName".to_string(), table.to_string()),
        ]);
        Arc::new(RecordKeys {
            query: Some(Ok(Arc::new(map))),
            lambda: None,
        })
    };
    let r = record(0, r#"{"id": 1}"#);
    let delivery = Delivery {
        records: vec![r.clone(), r.clone()],
        keys: vec![Some(keys("db", "nope")), Some(keys("db", "events"))],
        ..Delivery::default()
    };
    s.router.prepare(&delivery).await;
    let missing = s
        .router
        .resolve(&r, Some(&keys("db", "nope")))
        .expect_err("no table");
    assert_eq!(missing.code, "Iceberg.NoSuchTable");
    assert_eq!(missing.output_type, "iceberg-failed");
    assert!(s.router.resolve(&r, Some(&keys("db", "events"))).is_ok());
    let empty = s
        .router
        .resolve(&r, Some(&keys("", "events")))
        .expect_err("empty name");
    assert_eq!(empty.code, "Iceberg.InvalidTableName");
    // The transform's otfMetadata wins over the query's keys.
    let lambda = Arc::new(RecordKeys {
        query: Some(Ok(Arc::new(BTreeMap::from([(
            "destinationTableName".to_string(),
            "nope".to_string(),
        )])))),
        lambda: Some(Arc::new(BTreeMap::from([
            ("destinationDatabaseName".to_string(), "db".to_string()),
            ("destinationTableName".to_string(), "events".to_string()),
        ]))),
    });
    assert!(s.router.resolve(&r, Some(&lambda)).is_ok());
    let delete = Arc::new(RecordKeys {
        query: None,
        lambda: Some(Arc::new(BTreeMap::from([(
            "operation".to_string(),
            "delete".to_string(),
        )]))),
    });
    assert_eq!(
        s.router
            .resolve(&r, Some(&delete))
            .expect_err("delete")
            .code,
        "Iceberg.InvalidUniqueKeys"
    );
}

#[tokio::test]
async fn records_wait_while_the_catalog_cannot_be_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A directory where the database should be: sqlite cannot open it, as if the volume were
    // gone. No record may be refused as if the table did not exist.
    let db = dir.path().join("cat.db");
    std::fs::create_dir_all(&db).expect("dir");
    let uri = format!("sqlite:///{}", db.display());
    let router = Router::new(RouterSetup {
        tables: Arc::new(Tables {
            catalog: Catalog::Sql(SqlCatalog::new(&uri, "default").expect("uri")),
            io: FileIo::new(None),
        }),
        configured: vec![TableIdent::new("db", "events")],
        append_only: false,
        creation: None,
        schema_evolution: false,
        unique_keys: Default::default(),
        error_prefixes: Default::default(),
        label: "s[0]".into(),
    });
    let r = record(0, r#"{"id": 1}"#);
    let delivery = Delivery {
        records: vec![r.clone()],
        keys: vec![None],
        ..Delivery::default()
    };
    let waited = tokio::time::timeout(Duration::from_millis(700), router.prepare(&delivery)).await;
    assert!(
        waited.is_err(),
        "the catalog cannot answer: the delivery waits"
    );
}

#[tokio::test]
async fn a_table_whose_files_cannot_be_reached_here_is_refused_not_waited_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("sqlite:///{}", dir.path().join("cat.db").display());
    let catalog = SqlCatalog::new(&uri, "default").expect("uri");
    // Metadata in S3, and no S3 client (no `aws` settings): a configuration to fix, not an
    // outage to wait out.
    let table = TableIdent::new("db", "remote");
    catalog
        .create(
            &table,
            "s3://bucket/db/remote/metadata/00000-x.metadata.json",
        )
        .await
        .expect("registered");
    let router = Router::new(RouterSetup {
        tables: Arc::new(Tables {
            catalog: Catalog::Sql(catalog),
            io: FileIo::new(None),
        }),
        configured: vec![table],
        append_only: false,
        creation: None,
        schema_evolution: false,
        unique_keys: Default::default(),
        error_prefixes: Default::default(),
        label: "s[0]".into(),
    });
    let r = record(0, r#"{"id": 1}"#);
    let delivery = Delivery {
        records: vec![r.clone()],
        keys: vec![None],
        ..Delivery::default()
    };
    tokio::time::timeout(Duration::from_secs(5), router.prepare(&delivery))
        .await
        .expect("answered at once");
    let refused = router.resolve(&r, None).expect_err("refused");
    assert_eq!(refused.code, "Iceberg.NoSuchTable");
    assert!(
        refused.message.contains("s3://bucket"),
        "{}",
        refused.message
    );
}

fn operation(op: &str) -> Arc<RecordKeys> {
    Arc::new(RecordKeys {
        query: None,
        lambda: Some(Arc::new(BTreeMap::from([(
            "operation".to_string(),
            op.to_string(),
        )]))),
    })
}

/// Stages `ops` (operation, record) for `s`'s table into one sealed object with its changes.
async fn stage_changes(s: &Setup, ops: &[(&str, &str)]) -> Sealed {
    let records: Vec<Record> = ops
        .iter()
        .enumerate()
        .map(|(i, (_, json))| record(i as u64, json))
        .collect();
    let delivery = Delivery {
        records: records.clone(),
        keys: ops.iter().map(|(op, _)| Some(operation(op))).collect(),
        ..Delivery::default()
    };
    s.router.prepare(&delivery).await;
    let (values, changes): (Vec<_>, Vec<_>) = records
        .iter()
        .zip(ops)
        .map(|(r, (op, _))| s.router.resolve(r, Some(&operation(op))).expect("routed"))
        .unzip();
    let ready = s.router.ready(&s.table).expect("loaded");
    let mut stager = crate::destination::staging::ObjectStager::new(
        s.staging.clone(),
        Naming {
            stream: "s".into(),
            version: 1,
            prefix: Template::default(),
            extension: ".parquet".into(),
            time_zone: chrono_tz::UTC,
            error: None,
            partition: None,
        },
        crate::encode::Compression::Uncompressed,
        false,
        1 << 30,
    )
    .with_conversion(Some(ready.conversion.clone()));
    let mut rejected = crate::destination::staging::Rejected::default();
    let staged = stager
        .append_changes(
            &records,
            &changes,
            tokio::time::Instant::now(),
            &mut rejected,
        )
        .expect("staged");
    assert!(staged.is_empty() && rejected.lines.is_empty());
    let mut object = stager.seal().expect("sealed").expect("an object");
    object.partition = Some(Arc::new(values[0].clone()));
    object
}

const CHANGES: [(&str, &str); 5] = [
    ("insert", r#"{"id": 1, "name": "a"}"#),
    ("insert", r#"{"id": 2, "name": "b"}"#),
    ("update", r#"{"id": "1", "name": "a2"}"#),
    ("delete", r#"{"id": 2}"#),
    ("delete", r#"{"id": 3}"#),
];

#[tokio::test]
async fn an_object_s_updates_and_deletes_commit_as_one_row_delta_once() {
    let s = setup_keyed(&["id"]).await;
    let object = stage_changes(&s, &CHANGES).await;
    assert_eq!(object.records, 5);
    assert_eq!(
        object
            .changes
            .as_deref()
            .map(|c| (c.dropped.clone(), c.deleted.len())),
        Some((vec![0, 1], 3)),
        "the rows of 1 (updated) and 2 (deleted) written before go by position"
    );
    committed_once(&s, &object).await;
    let tables = s.router.tables();
    let loaded = tables.load(&s.table).await.expect("load");
    assert_eq!(loaded.metadata.snapshots.len(), 1);
    let head = loaded.metadata.current_snapshot().expect("snapshot");
    let summary = |k: &str| head.summary.get(k).map(String::as_str);
    assert_eq!(summary("operation"), Some("overwrite"));
    assert_eq!(summary("added-records"), Some("3"));
    assert_eq!(summary("added-position-deletes"), Some("2"));
    assert_eq!(summary("added-equality-deletes"), Some("3"));
    assert_eq!(summary("added-delete-files"), Some("2"));
    let list = read_manifest_list(&tables.io.read(&head.manifest_list).await.expect("list"))
        .expect("manifest list");
    let contents: Vec<i32> = list.iter().map(|m| m.content).collect();
    assert_eq!(contents, vec![0, 1]);
}

#[tokio::test]
async fn keys_that_do_not_fit_the_schema_and_operations_without_keys_are_refused() {
    let s = setup_keyed(&["id"]).await;
    let r = record(0, r#"{"name": "no id"}"#);
    let delivery = Delivery {
        records: vec![r.clone()],
        keys: vec![Some(operation("update"))],
        ..Delivery::default()
    };
    s.router.prepare(&delivery).await;
    let refused = s
        .router
        .resolve(&r, Some(&operation("update")))
        .expect_err("no key");
    assert_eq!(refused.code, "Iceberg.InvalidUniqueKeys");
    let ok = record(1, r#"{"id": 1}"#);
    let refused = s
        .router
        .resolve(&ok, Some(&operation("merge")))
        .expect_err("unknown");
    assert_eq!(refused.code, "Iceberg.InvalidOperation");
    // A key that is not a column of the table: every record of the table is refused.
    let s = setup_keyed(&["nope"]).await;
    s.router.prepare(&delivery).await;
    let refused = s.router.resolve(&ok, None).expect_err("bad keys");
    assert_eq!(refused.code, "Iceberg.InvalidUniqueKeys");
}

#[tokio::test]
async fn a_failed_object_s_deletes_go_to_the_backup_beside_its_data_file() {
    let s = setup_keyed(&["id"]).await;
    let object = stage_changes(&s, &CHANGES).await;
    // The table is dropped: the commit fails for good (the retry duration is 0 here).
    let db = s._dir.path().join("cat.db");
    rusqlite::Connection::open(&db)
        .expect("catalog")
        .execute("DELETE FROM iceberg_tables", [])
        .expect("dropped");
    assert_eq!(
        s.sink
            .deliver(&object, Kind::Partition)
            .await
            .expect("backed up"),
        Written::BackedUp
    );
    let backup = s._dir.path().join("backup");
    let files: Vec<std::path::PathBuf> = walk(&backup);
    let deletes = files
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".deletes.json"))
        .expect("the deletes beside the data file");
    let data = deletes.to_string_lossy().replace(".deletes.json", "");
    assert!(
        files.iter().any(|p| p.to_string_lossy() == data),
        "{files:?}"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(deletes).expect("read")).expect("JSON");
    assert_eq!(v["table"], "db.events");
    assert_eq!(
        v["deletedKeys"],
        // As the records gave them (the update said "1").
        serde_json::json!([{"id": "1"}, {"id": 2}, {"id": 3}])
    );
    assert_eq!(v["droppedRows"], serde_json::json!([0, 1]));
    // No staging file is left behind.
    assert!(
        !walk(&s.staging)
            .iter()
            .any(|p| p.to_string_lossy().contains("deletes"))
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_partition_s_deletes_commit_after_its_earlier_objects_and_inserts_ride_along() {
    let table = TableIdent::new("db", "events");
    let object = |id: u64, tuple: &str, deletes: bool| Sealed {
        id,
        path: std::path::PathBuf::new(),
        key: format!("o{id}"),
        records: 1,
        raw_bytes: 1,
        size: 1,
        oldest_ms: 0,
        first_seq: 0,
        next_seq: 1,
        identity: None,
        partition: Some(Arc::new(values(&table, tuple.to_string()))),
        changes: Some(Box::new(super::changes::RowChanges {
            dropped: Vec::new(),
            deleted: if deletes {
                vec!["{\"id\":1}".into()]
            } else {
                Vec::new()
            },
        })),
    };
    let objects = [
        object(1, "p", true),
        object(2, "p", false),
        object(3, "p", true),
        object(4, "q", true),
        object(5, "p", false),
    ];
    let these: Vec<(usize, &Sealed)> = objects.iter().enumerate().collect();
    // 1 opens p; 2 only adds rows after it: same commit; 3 removes rows of 1 and 2: after
    // them; 4 is another partition; 5 adds rows after 3's deletes: with 3.
    assert_eq!(super::sink::rounds(&these), vec![vec![0, 1, 3], vec![2, 4]]);
}
