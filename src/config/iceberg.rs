//! `destinations[]` with `iceberg`: AWS's IcebergDestinationConfiguration (docs/iceberg.md).
//! The catalog, warehouse, tables and routing under `iceberg`; buffering, `delivery` and the
//! error prefix beside it; `s3_backup` (the bucket or directory that takes error records, as
//! AWS's S3Configuration) as for an HTTP endpoint. AWS's limits are `spec::check`'s.

use std::path::PathBuf;

use super::decode::{Ctx, MapReader, Path};
use super::destination::{
    decode_buffering, decode_delivery, int_or, optional_scalar, optional_string,
};
use super::http_endpoint::{Backup, decode_backup};
use super::yaml::Node;
use crate::spec::{
    BackupMode, Buffering, CatalogSpec, DestinationSpec, IcebergTarget, TableSpec, Target,
};

/// Keys of an S3 destination an Iceberg destination does not take.
const S3_ONLY: [&str; 8] = [
    "s3",
    "directory",
    "prefix",
    "compression",
    "file_extension",
    "dynamic_partitioning",
    "data_format_conversion",
    "source_record_backup",
];

pub(crate) fn decode(ctx: &mut Ctx, node: &Node, path: Path) -> Option<DestinationSpec> {
    let mut m = MapReader::new(ctx, node, path)?;
    let target = m
        .require(ctx, "iceberg")
        .and_then(|n| decode_target(ctx, n, m.path.key("iceberg")));
    let buffering = match m.get("buffering") {
        // AWS's BufferingHints for Iceberg: defaults 5 MiB, 300 s.
        Some(n) => decode_buffering(ctx, n, m.path.key("buffering"), Buffering::DEFAULT),
        None => Buffering::DEFAULT,
    };
    let backup = m
        .require(ctx, "s3_backup")
        .and_then(|n| decode_backup(ctx, n, m.path.key("s3_backup")));
    let error_prefix = optional_scalar(ctx, &mut m, "error_output_prefix");
    for key in S3_ONLY {
        if let Some(n) = m.has(key) {
            ctx.error(
                n.mark,
                &m.path.key(key),
                "is not for an iceberg destination (the backup's bucket or directory, prefix and compression go under s3_backup; tables are written as Parquet)",
            );
        }
    }
    let delivery = decode_delivery(ctx, &mut m);
    let path = m.path.clone();
    m.finish(ctx);
    let mut target = target.unwrap_or_else(|| {
        ctx.broken(&path.key("iceberg"));
        stand_in()
    });
    let backup = backup.unwrap_or_else(|| {
        ctx.broken(&path.key("s3_backup"));
        Backup {
            mode: BackupMode::FailedDataOnly,
            target: Target::Directory(PathBuf::new()),
            prefix: None,
            error_prefix: None,
            compression: crate::encode::Compression::Uncompressed,
        }
    });
    if error_prefix.is_some() && backup.error_prefix.is_some() {
        ctx.note(
            node.mark,
            &path.key("error_output_prefix"),
            "is written twice (beside iceberg and under s3_backup): keep one",
        );
    }
    target.backup_mode = backup.mode;
    target.backup = backup.target;
    Some(DestinationSpec {
        target: Target::Iceberg(Box::new(target)),
        prefix: backup.prefix,
        error_output_prefix: error_prefix.or(backup.error_prefix),
        buffering,
        compression: backup.compression,
        file_extension: None,
        time_zone: "UTC".to_string(),
        source_record_backup: None,
        dynamic_partitioning: None,
        format_conversion: None,
        delivery,
    })
}

fn stand_in() -> IcebergTarget {
    IcebergTarget {
        catalog: CatalogSpec::Sql {
            uri: String::new(),
            name: "default".to_string(),
        },
        warehouse: None,
        tables: Vec::new(),
        routing_query: None,
        append_only: false,
        schema_evolution: false,
        table_creation: false,
        retry_duration_seconds: IcebergTarget::DEFAULT_RETRY_SECONDS,
        backup_mode: BackupMode::FailedDataOnly,
        backup: Target::Directory(PathBuf::new()),
    }
}

/// `iceberg: {catalog, warehouse, tables, routing, append_only, schema_evolution,
/// table_creation, retry_duration_seconds}`; the backup is filled in by the caller.
fn decode_target(ctx: &mut Ctx, node: &Node, path: Path) -> Option<IcebergTarget> {
    let mut m = MapReader::new(ctx, node, path)?;
    let catalog = m
        .require(ctx, "catalog")
        .and_then(|n| decode_catalog(ctx, n, m.path.key("catalog")));
    let warehouse = optional_string(ctx, &mut m, "warehouse");
    let tables = match m.get("tables") {
        Some(n) => decode_tables(ctx, n, &m.path.key("tables")),
        None => Vec::new(),
    };
    let routing_query = match m.get("routing") {
        Some(n) => {
            let mut r = MapReader::new(ctx, n, m.path.key("routing"))?;
            let q = optional_string(ctx, &mut r, "query");
            r.finish(ctx);
            q
        }
        None => None,
    };
    let flag = |ctx: &mut Ctx, m: &mut MapReader, key: &'static str| match m.get(key) {
        Some(n) => ctx.bool(n, &m.path.key(key)).unwrap_or(false),
        None => false,
    };
    let append_only = flag(ctx, &mut m, "append_only");
    let schema_evolution = flag(ctx, &mut m, "schema_evolution");
    let table_creation = flag(ctx, &mut m, "table_creation");
    let retry_duration_seconds = int_or(
        ctx,
        &mut m,
        "retry_duration_seconds",
        IcebergTarget::DEFAULT_RETRY_SECONDS,
    );
    let path = m.path.clone();
    m.finish(ctx);
    let catalog = catalog.unwrap_or_else(|| {
        ctx.broken(&path.key("catalog"));
        stand_in().catalog
    });
    Some(IcebergTarget {
        catalog,
        warehouse,
        tables,
        routing_query,
        append_only,
        schema_evolution,
        table_creation,
        retry_duration_seconds,
        ..stand_in()
    })
}

/// `catalog:` exactly one of `sql: {uri, name}`, `glue: {catalog_id, endpoint_url}`.
pub(super) fn decode_catalog(ctx: &mut Ctx, node: &Node, path: Path) -> Option<CatalogSpec> {
    let mut m = MapReader::new(ctx, node, path)?;
    let (sql, glue, s3_tables) = (m.has("sql"), m.has("glue"), m.has("s3_tables"));
    let mut unsupported = None;
    for key in ["rest"] {
        if let Some(n) = m.has(key) {
            unsupported = Some((key, n.mark));
        }
    }
    let catalog = match (sql, glue, s3_tables) {
        (Some(n), None, None) => {
            let mut s = MapReader::new(ctx, n, m.path.key("sql"))?;
            let uri = s
                .require(ctx, "uri")
                .and_then(|n| ctx.string(n, &s.path.key("uri")));
            let name =
                optional_string(ctx, &mut s, "name").unwrap_or_else(|| "default".to_string());
            s.finish(ctx);
            uri.map(|uri| CatalogSpec::Sql { uri, name })
        }
        (None, None, Some(n)) => {
            let mut s = MapReader::new(ctx, n, m.path.key("s3_tables"))?;
            let arn = s
                .require(ctx, "table_bucket_arn")
                .and_then(|n| ctx.string(n, &s.path.key("table_bucket_arn")));
            let endpoint_url = optional_string(ctx, &mut s, "endpoint_url");
            s.finish(ctx);
            arn.map(|table_bucket_arn| CatalogSpec::S3Tables {
                table_bucket_arn,
                endpoint_url,
            })
        }
        (None, Some(n), None) => {
            let mut g = MapReader::new(ctx, n, m.path.key("glue"))?;
            let catalog_id = optional_scalar(ctx, &mut g, "catalog_id");
            let endpoint_url = optional_string(ctx, &mut g, "endpoint_url");
            g.finish(ctx);
            Some(CatalogSpec::Glue {
                catalog_id,
                endpoint_url,
            })
        }
        _ if unsupported.is_some() => None,
        _ => {
            ctx.note(
                m.mark(),
                &m.path,
                "exactly one of sql, glue, s3_tables is required",
            );
            None
        }
    };
    if let Some((key, mark)) = unsupported {
        ctx.error(
            mark,
            &m.path.key(key),
            "is not supported (docs/iceberg.md says why): use sql, glue or s3_tables",
        );
    }
    m.finish(ctx);
    catalog
}

/// `tables: [{database, table, unique_keys, partition_spec, error_output_prefix}]`.
fn decode_tables(ctx: &mut Ctx, node: &Node, path: &Path) -> Vec<TableSpec> {
    let mut out = Vec::new();
    for (i, item) in ctx.list(node, path).into_iter().flatten().enumerate() {
        let Some(mut m) = MapReader::new(ctx, item, path.index(i)) else {
            continue;
        };
        let database = m
            .require(ctx, "database")
            .and_then(|n| ctx.string(n, &m.path.key("database")));
        let table = m
            .require(ctx, "table")
            .and_then(|n| ctx.string(n, &m.path.key("table")));
        let unique_keys = strings(ctx, &mut m, "unique_keys");
        let partition_spec = strings(ctx, &mut m, "partition_spec");
        let error_output_prefix = optional_scalar(ctx, &mut m, "error_output_prefix");
        m.finish(ctx);
        if let (Some(database), Some(table)) = (database, table) {
            out.push(TableSpec {
                database,
                table,
                unique_keys,
                partition_spec,
                error_output_prefix,
            });
        }
    }
    out
}

fn strings(ctx: &mut Ctx, m: &mut MapReader, key: &'static str) -> Vec<String> {
    let Some(n) = m.get(key) else {
        return Vec::new();
    };
    let path = m.path.key(key);
    ctx.list(n, &path)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, n)| ctx.string(n, &path.index(i)))
        .collect()
}
