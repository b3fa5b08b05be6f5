//! Tables and columns made from records, before they are staged: with `table_creation` a
//! record routed to a table that does not exist creates it (the columns of the delivery's
//! records for it, the configured identity partitions, in the warehouse); with
//! `schema_evolution` a record's top-level fields the table lacks become columns, committed
//! as a schema change before any data file that holds them. Two instances creating one table
//! end with one (the catalog refuses the second, which then reads the first's); two adding
//! one column add it once (the second finds it there).

use std::time::Duration;

use tokio::time::Instant;

use super::router::{Entry, Router, missing};
use crate::iceberg::catalog::{CatalogError, TableIdent};
use crate::iceberg::evolve;
use crate::iceberg::table::TableError;
use crate::retry::{Backoff, LogGate};

impl Router {
    /// Creates table `t` from `records` if table creation is on; what is then known of it
    /// (None: creation is off, the table stays missing).
    pub(super) async fn create<'r>(
        &self,
        t: &TableIdent,
        records: impl Iterator<Item = &'r [u8]> + Clone,
    ) -> Option<Entry> {
        let creation = self.setup.creation.as_ref()?;
        let tables = &self.setup.tables;
        let location = tables.catalog.default_location(&creation.warehouse, t);
        let partition = creation
            .partition_specs
            .get(t)
            .map_or(&[][..], Vec::as_slice);
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        let mut gate = LogGate::new(Duration::from_secs(30));
        loop {
            let now = chrono::Utc::now().timestamp_millis();
            let metadata = match evolve::new_table(&location, records.clone(), partition, now) {
                Ok(m) => m,
                Err(e) => return Some(missing(t, &format!("it cannot be created: {e}"))),
            };
            match tables.create(t, &metadata).await {
                Ok(at) => {
                    tracing::info!(destination = %self.setup.label, table = %t, metadata = %at,
                        "created the Iceberg table from its records");
                    return Some(self.load(t).await);
                }
                // Another instance created it first: its table is the table.
                Err(TableError::Catalog(CatalogError::Exists(_))) => {
                    return Some(self.load(t).await);
                }
                Err(e) if e.transient() => {
                    if gate.should_log(Instant::now()) {
                        tracing::warn!(destination = %self.setup.label, table = %t,
                            error = %crate::report::Chain(&e),
                            "cannot create the Iceberg table; retrying (records wait)");
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => {
                    tracing::error!(destination = %self.setup.label, table = %t,
                        error = %crate::report::Chain(&e), "cannot create the Iceberg table");
                    return Some(missing(
                        t,
                        &format!("it cannot be created: {}", crate::report::Chain(&e)),
                    ));
                }
            }
        }
    }

    /// Adds to table `t` the columns `records` bring that it lacks, and reads it again.
    pub(super) async fn evolve<'r>(
        &self,
        t: &TableIdent,
        records: impl Iterator<Item = &'r [u8]> + Clone,
    ) {
        let Some(ready) = self.ready(t) else {
            return;
        };
        if !records
            .clone()
            .any(|r| evolve::brings_columns(r, &ready.schema))
        {
            return;
        }
        let mut ids = evolve::Ids::after(ready.schema.highest_field_id());
        let columns = evolve::new_columns(records, |n| ready.schema.field(n).is_some(), &mut ids);
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        let mut gate = LogGate::new(Duration::from_secs(30));
        loop {
            match self.setup.tables.add_columns(t, &columns).await {
                Ok(added) => {
                    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
                    if added {
                        tracing::info!(destination = %self.setup.label, table = %t,
                            columns = ?names, "added the columns records bring to the Iceberg table");
                    }
                    break;
                }
                Err(e) if e.transient() => {
                    if gate.should_log(Instant::now()) {
                        tracing::warn!(destination = %self.setup.label, table = %t,
                            error = %crate::report::Chain(&e),
                            "cannot add columns to the Iceberg table; retrying (records wait)");
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                // The records are staged with the schema the table has: fields it lacks are
                // left out, as without schema evolution.
                Err(e) => {
                    tracing::error!(destination = %self.setup.label, table = %t,
                        error = %crate::report::Chain(&e),
                        "cannot add columns to the Iceberg table; their fields are left out");
                    return;
                }
            }
        }
        let entry = self.load(t).await;
        self.remember(t.clone(), entry);
    }
}
