//! The embedded catalog: a sqlite database with the two tables pyiceberg's `SqlCatalog` (and
//! iceberg-rust's SQL catalog) keep, `iceberg_tables` and `iceberg_namespace_properties`, so
//! either opens a database the other made. A commit is pyiceberg's compare-and-swap:
//! `UPDATE ... SET metadata_location = new WHERE ... AND metadata_location = old`, one row
//! changed or a conflict. sqlite calls block: they run on the blocking pool, one connection
//! per call, waiting up to `BUSY` for another writer (another instance, pyiceberg).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{CatalogError, Swap, TableIdent};

/// How long a call waits for another process's write to the database.
const BUSY: Duration = Duration::from_secs(10);

/// pyiceberg 0.12's DDL (`SqlCatalog._ensure_tables_exist`), made idempotent.
const DDL: &str = "
CREATE TABLE IF NOT EXISTS iceberg_tables (
    catalog_name VARCHAR(255) NOT NULL,
    table_namespace VARCHAR(255) NOT NULL,
    table_name VARCHAR(255) NOT NULL,
    metadata_location VARCHAR(1000),
    previous_metadata_location VARCHAR(1000),
    iceberg_type VARCHAR(5),
    PRIMARY KEY (catalog_name, table_namespace, table_name)
);
CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (
    catalog_name VARCHAR(255) NOT NULL,
    namespace VARCHAR(255) NOT NULL,
    property_key VARCHAR(255) NOT NULL,
    property_value VARCHAR(1000) NOT NULL,
    PRIMARY KEY (catalog_name, namespace, property_key)
);";

pub(crate) struct SqlCatalog {
    path: PathBuf,
    /// The `catalog_name` column: the name pyiceberg opens the catalog under.
    name: String,
}

/// A `uri` that is not a sqlite URL.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a sqlite URI (sqlite:////absolute/path.db or sqlite:///relative/path.db)")]
pub(crate) struct BadUri(String);

impl SqlCatalog {
    /// `uri` in pyiceberg's (SQLAlchemy's) form: `sqlite:////abs/path.db`, `sqlite:///rel.db`.
    pub(crate) fn new(uri: &str, name: &str) -> Result<SqlCatalog, BadUri> {
        let path = uri
            .strip_prefix("sqlite:///")
            .filter(|p| !p.is_empty() && !p.starts_with(':'))
            .ok_or_else(|| BadUri(uri.to_string()))?;
        Ok(SqlCatalog {
            path: PathBuf::from(path),
            name: name.to_string(),
        })
    }

    pub(crate) fn describe(&self) -> String {
        format!("SQL catalog {:?} in {}", self.name, self.path.display())
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn call_error(&self, e: &rusqlite::Error) -> CatalogError {
        let transient = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        CatalogError::Call {
            catalog: self.describe(),
            detail: e.to_string(),
            transient,
        }
    }

    /// Runs `f` on a fresh connection on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &str) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, CatalogError> {
        let (path, name) = (self.path.clone(), self.name.clone());
        let done = tokio::task::spawn_blocking(move || {
            let c = open(&path)?;
            f(&c, &name)
        })
        .await
        .map_err(|e| CatalogError::Call {
            catalog: self.describe(),
            detail: e.to_string(),
            transient: false,
        })?;
        done.map_err(|e| self.call_error(&e))
    }

    pub(crate) async fn metadata_location(&self, t: &TableIdent) -> Result<String, CatalogError> {
        let key = t.clone();
        let found: Option<Option<String>> = self
            .with(move |c, name| {
                c.query_row(
                    "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ?1 \
                     AND table_namespace = ?2 AND table_name = ?3 \
                     AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)",
                    params![name, key.namespace, key.name],
                    |row| row.get(0),
                )
                .optional()
            })
            .await?;
        match found {
            None => Err(CatalogError::NoSuchTable(t.clone())),
            Some(None) => Err(CatalogError::NotIceberg(t.clone())),
            Some(Some(location)) => Ok(location),
        }
    }

    pub(crate) async fn swap(
        &self,
        t: &TableIdent,
        old: &str,
        new: &str,
    ) -> Result<Swap, CatalogError> {
        let (key, old, new) = (t.clone(), old.to_string(), new.to_string());
        let changed = self
            .with(move |c, name| {
                c.execute(
                    "UPDATE iceberg_tables SET metadata_location = ?1, previous_metadata_location = ?2 \
                     WHERE catalog_name = ?3 AND table_namespace = ?4 AND table_name = ?5 \
                     AND metadata_location = ?2",
                    params![new, old, name, key.namespace, key.name],
                )
            })
            .await?;
        Ok(if changed == 1 {
            Swap::Done
        } else {
            Swap::Conflict
        })
    }

    /// Inserts the table's row (and its namespace's `exists` row, as pyiceberg's
    /// `create_namespace` writes it, if the namespace has none).
    pub(crate) async fn create(
        &self,
        t: &TableIdent,
        metadata_location: &str,
    ) -> Result<(), CatalogError> {
        let (key, location) = (t.clone(), metadata_location.to_string());
        let inserted = self
            .with(move |c, name| {
                c.execute(
                    "INSERT OR IGNORE INTO iceberg_namespace_properties \
                     SELECT ?1, ?2, 'exists', 'true' WHERE NOT EXISTS (SELECT 1 FROM \
                     iceberg_namespace_properties WHERE catalog_name = ?1 AND namespace = ?2)",
                    params![name, key.namespace],
                )?;
                c.execute(
                    "INSERT OR IGNORE INTO iceberg_tables (catalog_name, table_namespace, \
                     table_name, metadata_location, previous_metadata_location, iceberg_type) \
                     VALUES (?1, ?2, ?3, ?4, NULL, 'TABLE')",
                    params![name, key.namespace, key.name, location],
                )
            })
            .await?;
        if inserted == 1 {
            Ok(())
        } else {
            Err(CatalogError::Exists(t.clone()))
        }
    }
}

fn open(path: &Path) -> Result<Connection, rusqlite::Error> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(BUSY)?;
    c.execute_batch(DDL)?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_swap_changes_the_row_only_from_the_location_it_read() {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite:///{}", dir.path().join("cat.db").display());
        let c = SqlCatalog::new(&uri, "default").unwrap();
        let t = TableIdent::new("db", "events");
        assert!(matches!(
            c.metadata_location(&t).await,
            Err(CatalogError::NoSuchTable(_))
        ));
        c.create(&t, "file:///w/db/events/metadata/00000-a.metadata.json")
            .await
            .unwrap();
        assert!(matches!(
            c.create(&t, "x").await,
            Err(CatalogError::Exists(_))
        ));
        let v0 = c.metadata_location(&t).await.unwrap();
        assert_eq!(c.swap(&t, &v0, "v1").await.unwrap(), Swap::Done);
        // A writer that read v0 loses.
        assert_eq!(c.swap(&t, &v0, "v1b").await.unwrap(), Swap::Conflict);
        assert_eq!(c.metadata_location(&t).await.unwrap(), "v1");
        // Another catalog name in the same database does not see the table.
        let other = SqlCatalog::new(&uri, "other").unwrap();
        assert!(other.metadata_location(&t).await.is_err());
        let conn = open(&dir.path().join("cat.db")).unwrap();
        let (prev, ty): (String, String) = conn
            .query_row(
                "SELECT previous_metadata_location, iceberg_type FROM iceberg_tables",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((prev.as_str(), ty.as_str()), (v0.as_str(), "TABLE"));
        let exists: String = conn
            .query_row("SELECT property_value FROM iceberg_namespace_properties WHERE property_key = 'exists'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(exists, "true");
    }

    #[test]
    fn only_sqlite_uris_are_taken() {
        assert_eq!(
            SqlCatalog::new("sqlite:////var/lib/f.db", "d")
                .unwrap()
                .path,
            PathBuf::from("/var/lib/f.db")
        );
        assert_eq!(
            SqlCatalog::new("sqlite:///rel.db", "d").unwrap().path,
            PathBuf::from("rel.db")
        );
        for bad in [
            "sqlite:///:memory:",
            "postgresql://x/y",
            "sqlite:///",
            "/var/lib/f.db",
        ] {
            assert!(SqlCatalog::new(bad, "d").is_err(), "{bad}");
        }
    }
}
