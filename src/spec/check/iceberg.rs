//! An Iceberg destination's rules: AWS's limits on IcebergDestinationConfiguration (table and
//! database names, unique keys, buffering, retry duration, the backup), the catalog's form, and
//! what the keys need together (a warehouse for table creation and schema evolution).

use crate::keys::template::Template;
use crate::spec::path::Path;
use crate::spec::{BackupMode, CatalogSpec, DestinationSpec, IcebergTarget};

use super::Checker;
use super::destination::{buffering, check_url, target};

/// AWS's DestinationTableName / DestinationDatabaseName: 1-255 of `[a-zA-Z0-9._]`.
fn valid_name(n: &str) -> bool {
    (1..=255).contains(&n.len())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
}

/// Destination `d` at `path`, whose target is `i`.
pub(super) fn check(c: &mut Checker, path: &Path, d: &DestinationSpec, i: &IcebergTarget) {
    let at = path.key("iceberg");
    catalog(c, &at.key("catalog"), &i.catalog);
    if let Some(w) = &i.warehouse {
        warehouse(c, at.key("warehouse"), w);
    } else if i.table_creation || i.schema_evolution {
        let key = if i.table_creation {
            "table_creation"
        } else {
            "schema_evolution"
        };
        c.between(
            at.key("warehouse"),
            &[at.key(key)],
            "is required with table_creation and schema_evolution (AWS: WarehouseLocation)",
        );
    }
    tables(c, &at.key("tables"), i);
    if let Some(q) = &i.routing_query
        && let Err(e) = crate::jq::check(q)
    {
        c.at(at.key("routing").key("query"), e.to_string());
    }
    c.range(
        at.key("retry_duration_seconds"),
        i.retry_duration_seconds,
        0..=7200,
    );
    buffering(c, &path.key("buffering"), d.buffering, 128);
    let backup = path.key("s3_backup");
    target(c, &backup, &i.backup, "", "directory");
    if i.backup_mode == BackupMode::AllData {
        c.at(
            backup.key("mode"),
            "must be FailedDataOnly: AWS's Iceberg destination backs up failed data only",
        );
    }
    for (key, prefix) in [
        (path.key("error_output_prefix"), &d.error_output_prefix),
        (backup.key("prefix"), &d.prefix),
    ] {
        if let Some(raw) = prefix {
            plain_prefix(c, key, raw);
        }
    }
}

fn catalog(c: &mut Checker, path: &Path, catalog: &CatalogSpec) {
    match catalog {
        CatalogSpec::Sql { uri, name } => {
            let file = uri.strip_prefix("sqlite:///").unwrap_or_default();
            if file.is_empty() || file.starts_with(':') {
                c.at(
                    path.key("sql").key("uri"),
                    format!("must be a sqlite URI: sqlite:////absolute/path.db or sqlite:///relative/path.db (got {uri:?})"),
                );
            }
            if name.is_empty() || name.len() > 255 {
                c.at(path.key("sql").key("name"), "must be 1-255 characters");
            }
        }
        CatalogSpec::Glue {
            catalog_id,
            endpoint_url,
        } => {
            if let Some(id) = catalog_id
                && !(id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()))
            {
                c.at(
                    path.key("glue").key("catalog_id"),
                    format!("must be a 12-digit AWS account id (got {id:?})"),
                );
            }
            if let Some(url) = endpoint_url {
                check_url(c, path.key("glue").key("endpoint_url"), url);
            }
        }
        CatalogSpec::S3Tables {
            table_bucket_arn,
            endpoint_url,
        } => {
            let parts: Vec<&str> = table_bucket_arn.split(':').collect();
            let valid = matches!(parts.as_slice(), ["arn", _, "s3tables", _, account, bucket]
                if account.len() == 12 && bucket.strip_prefix("bucket/").is_some_and(|b| !b.is_empty()));
            if !valid {
                c.at(
                    path.key("s3_tables").key("table_bucket_arn"),
                    format!("must be a table bucket ARN: arn:aws:s3tables:REGION:ACCOUNT:bucket/NAME (got {table_bucket_arn:?})"),
                );
            }
            if let Some(url) = endpoint_url {
                check_url(c, path.key("s3_tables").key("endpoint_url"), url);
            }
        }
    }
}

/// `file:///absolute/path` or `s3://bucket/prefix`.
fn warehouse(c: &mut Checker, path: Path, w: &str) {
    let local = w
        .strip_prefix("file://")
        .is_some_and(|p| p.starts_with('/') && !p.split('/').any(|s| s == ".."));
    let s3 = w
        .strip_prefix("s3://")
        .is_some_and(|r| r.split('/').next().is_some_and(|b| !b.is_empty()));
    if !(local || s3) {
        c.at(
            path,
            format!("must be file:///absolute/path or s3://bucket/prefix (got {w:?})"),
        );
    }
}

fn tables(c: &mut Checker, path: &Path, i: &IcebergTarget) {
    for (n, t) in i.tables.iter().enumerate() {
        let at = path.index(n);
        for (key, name) in [("database", &t.database), ("table", &t.table)] {
            if !valid_name(name) {
                c.at(
                    at.key(key),
                    format!("must be 1-255 letters, digits, `.` or `_` (got {name:?})"),
                );
            }
        }
        if i.tables[..n]
            .iter()
            .any(|o| o.database == t.database && o.table == t.table)
        {
            c.at(
                at.clone(),
                format!("{}.{} is configured twice", t.database, t.table),
            );
        }
        for (key, list) in [
            ("unique_keys", &t.unique_keys),
            ("partition_spec", &t.partition_spec),
        ] {
            for (k, v) in list.iter().enumerate() {
                if v.is_empty() || v.len() > 1024 || v.chars().any(char::is_whitespace) {
                    c.at(
                        at.key(key).index(k),
                        "must be a column name: 1-1024 characters, no spaces",
                    );
                }
            }
        }
        if let Some(raw) = &t.error_output_prefix {
            plain_prefix(c, at.key("error_output_prefix"), raw);
        }
    }
}

/// A prefix with timestamps and the error output type at most (no partition keys: records of
/// an Iceberg destination have none).
fn plain_prefix(c: &mut Checker, path: Path, raw: &str) {
    match Template::parse(raw) {
        Ok(t) if t.has_partition_keys() => c.at(
            path,
            "partition keys are not available here: an Iceberg destination's records have none",
        ),
        Ok(_) => {}
        Err(e) => c.at(path, e.to_string()),
    }
}
