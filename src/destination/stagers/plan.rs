//! What a destination's stagers are made with: the plan `streams::build` makes from the
//! destination's specification (the main stager, the backup, how error and partition stagers
//! are made) and, exactly-once, the journal they name their objects in.

use std::sync::Arc;

use chrono_tz::Tz;

use super::partitions::PARTITION_BUFFER;
use crate::destination::journal::{self, Entry, Journal};
use crate::destination::naming::{ErrorNaming, Naming};
use crate::destination::staging::{Identity, ObjectStager};
use crate::disk::Patience;
use crate::encode::Compression;
use crate::keys::template::{PartitionValues, Template};

/// Data files an Iceberg destination builds at once (tables times partitions): beyond it,
/// records go to the error output as dynamic partitioning's do past its cap.
const ICEBERG_OPEN_FILES: usize = 1000;

/// Makes a stager.
pub(crate) type MakeStager<T> = Box<dyn Fn(T) -> ObjectStager + Send>;

/// Dynamic partitioning of a destination.
pub(crate) struct Partitioning {
    pub(crate) route: Route,
    pub(crate) max_active: usize,
    pub(crate) make: MakeStager<Arc<PartitionValues>>,
}

/// How a record's partition is found.
pub(crate) enum Route {
    /// The prefix's partition keys (dynamic partitioning).
    Prefix { template: Template, time_zone: Tz },
    /// The record's Iceberg table and the table's partition.
    Tables(Arc<crate::destination::iceberg::Router>),
}

/// What a destination's objects are made with beyond their naming, built from its
/// specification by `streams::build`: the error and backup prefixes parsed, the format
/// conversion ready to make writers.
#[derive(Clone, Default)]
pub(crate) struct Layout {
    pub(crate) error_prefix: Option<Template>,
    pub(crate) backup_prefix: Option<Template>,
    pub(crate) conversion: Option<Arc<crate::encode::conversion::Conversion>>,
    /// An Iceberg destination's router: records are staged per table and partition, each
    /// table's data files written with its own conversion.
    pub(crate) tables: Option<Arc<crate::destination::iceberg::Router>>,
}

/// How a destination stages its objects.
pub(crate) struct StagingPlan {
    pub(crate) main: ObjectStager,
    pub(crate) backup: Option<ObjectStager>,
    /// Makes the stager of an error-output-type (called the first time one is needed).
    pub(crate) error_stager: MakeStager<ErrorNaming>,
    pub(crate) error_template: Option<Template>,
    pub(crate) partitioning: Option<Partitioning>,
    /// Main and partition objects are Parquet (format conversion).
    pub(crate) converting: bool,
    /// How every stager's writes wait for space on a full disk.
    pub(crate) patience: Arc<Patience>,
    /// Set for exactly-once delivery (`delivery: exactly_once`).
    pub(crate) exactly_once: Option<ExactlyOnce>,
    /// The backup takes every delivered record (an HTTP endpoint's `s3_backup.mode: AllData`).
    pub(crate) backup_all: bool,
}

/// A destination's exactly-once state at start-up.
pub(crate) struct ExactlyOnce {
    /// `<stream>/<destination index>`: names are derived from it, the slot and the position.
    pub(crate) namespace: Arc<str>,
    pub(crate) journal: Journal,
    /// The journal's entries that a replay may meet (see `Journal::open`).
    pub(crate) replay: Vec<Entry>,
    /// The Kinesis shard whose records this stager set takes (None: Direct PUT).
    pub(crate) shard: Option<Arc<str>>,
}

impl ExactlyOnce {
    pub(super) fn identity(&self, slot: String) -> Identity {
        let replay = journal::of_slot(&self.replay, &slot);
        Identity::new(self.namespace.clone(), slot, replay)
    }
}

impl StagingPlan {
    /// The stagers of destination `d`, all writing under `dir`.
    pub(crate) fn build(
        dir: std::path::PathBuf,
        naming: Naming,
        d: &crate::spec::DestinationSpec,
        layout: &Layout,
        delimiter: bool,
        patience: Arc<Patience>,
    ) -> StagingPlan {
        let (compression, size) = (d.compression, d.buffering.size_bytes());
        let conversion = layout.conversion.clone();
        let with = |naming: Naming, delimiter: bool| {
            ObjectStager::new(dir.clone(), naming, compression, delimiter, size)
        };
        if let crate::spec::Target::Http(http) = &d.target {
            return Self::http(dir, naming, http, d, layout, delimiter, patience);
        }
        if let Some(router) = &layout.tables {
            return Self::iceberg(dir, naming, d, layout, router.clone(), patience);
        }
        // Error and backup objects hold JSON lines, never Parquet: their extension is the
        // compression's own.
        let lines_naming = if conversion.is_some() {
            Naming {
                extension: compression.extension().to_string(),
                ..naming.clone()
            }
        } else {
            naming.clone()
        };
        let backup = layout.backup_prefix.as_ref().map(|t| {
            with(
                Naming {
                    prefix: t.clone(),
                    ..lines_naming.clone()
                },
                false,
            )
        });
        let error_stager: MakeStager<ErrorNaming> = {
            let (dir, naming) = (dir.clone(), lines_naming);
            Box::new(move |e: ErrorNaming| {
                let naming = Naming {
                    error: Some(e),
                    ..naming.clone()
                };
                ObjectStager::new(dir.clone(), naming, compression, false, size)
            })
        };
        let partitioning = d.dynamic_partitioning.map(|dp| {
            let (dir, naming, conversion) = (dir.clone(), naming.clone(), conversion.clone());
            Partitioning {
                route: Route::Prefix {
                    template: naming.prefix.clone(),
                    time_zone: naming.time_zone,
                },
                max_active: dp.max_active_partitions,
                make: Box::new(move |values: Arc<PartitionValues>| {
                    let naming = Naming {
                        partition: Some(values),
                        ..naming.clone()
                    };
                    ObjectStager::new(dir.clone(), naming, compression, delimiter, size)
                        .with_buffer(PARTITION_BUFFER)
                        .with_lean_compression()
                        .with_conversion(conversion.clone())
                }),
            }
        });
        StagingPlan {
            main: with(naming, delimiter)
                .with_conversion(conversion.clone())
                .with_parallel_compression()
                .with_parallel_conversion(),
            converting: conversion.is_some(),
            backup,
            error_stager,
            error_template: layout.error_prefix.clone(),
            partitioning,
            patience,
            exactly_once: None,
            backup_all: false,
        }
    }

    /// An Iceberg destination's stagers: one per table and partition tuple, each writing a
    /// Parquet data file with its table's conversion; error objects (JSON lines) go to the
    /// backup under the error prefix, with the backup's compression.
    fn iceberg(
        dir: std::path::PathBuf,
        naming: Naming,
        d: &crate::spec::DestinationSpec,
        layout: &Layout,
        router: Arc<crate::destination::iceberg::Router>,
        patience: Arc<Patience>,
    ) -> StagingPlan {
        let (compression, size) = (d.compression, d.buffering.size_bytes());
        let lines = Naming {
            extension: compression.extension().to_string(),
            ..naming.clone()
        };
        let error_stager: MakeStager<ErrorNaming> = {
            let (dir, naming) = (dir.clone(), lines);
            Box::new(move |e: ErrorNaming| {
                let naming = Naming {
                    error: Some(e),
                    ..naming.clone()
                };
                ObjectStager::new(dir.clone(), naming, compression, false, size)
            })
        };
        // Keys read `<database>/<table>/<object>.parquet` (what a flush answers); the data
        // file in the table is named after the object.
        let by_table =
            Template::parse("!{partitionKeyFromQuery:database}/!{partitionKeyFromQuery:table}/")
                .unwrap_or_default();
        let files = Naming {
            prefix: by_table,
            extension: ".parquet".to_string(),
            ..naming.clone()
        };
        let make: MakeStager<Arc<PartitionValues>> = {
            let (dir, router) = (dir.clone(), router.clone());
            Box::new(move |values: Arc<PartitionValues>| {
                let conversion = crate::destination::iceberg::router::table_of(&values)
                    .and_then(|(t, _)| router.ready(&t))
                    .map(|r| r.conversion.clone());
                let naming = Naming {
                    partition: Some(values),
                    ..files.clone()
                };
                ObjectStager::new(dir.clone(), naming, Compression::Uncompressed, false, size)
                    .with_buffer(PARTITION_BUFFER)
                    .with_conversion(conversion)
                    .with_parallel_conversion()
            })
        };
        StagingPlan {
            main: ObjectStager::new(dir, naming, Compression::Uncompressed, false, size),
            backup: None,
            error_stager,
            error_template: layout.error_prefix.clone(),
            partitioning: Some(Partitioning {
                route: Route::Tables(router),
                max_active: ICEBERG_OPEN_FILES,
                make,
            }),
            converting: true,
            patience,
            exactly_once: None,
            backup_all: false,
        }
    }

    /// An HTTP endpoint's stagers: the main object is a request's records, framed, uncompressed
    /// (the sink builds the body); error objects, and with AllData a copy of every record, go
    /// to the backup under its prefixes, with its compression.
    fn http(
        dir: std::path::PathBuf,
        naming: Naming,
        http: &crate::spec::HttpEndpoint,
        d: &crate::spec::DestinationSpec,
        layout: &Layout,
        delimiter: bool,
        patience: Arc<Patience>,
    ) -> StagingPlan {
        let (compression, size) = (d.compression, d.buffering.size_bytes());
        let all = http.backup_mode == crate::spec::BackupMode::AllData;
        let main = ObjectStager::new(
            dir.clone(),
            naming.clone(),
            crate::encode::Compression::Uncompressed,
            delimiter,
            size,
        )
        .with_framing();
        let backup = all
            .then(|| ObjectStager::new(dir.clone(), naming.clone(), compression, delimiter, size));
        StagingPlan {
            main,
            backup,
            error_stager: Box::new(move |e: ErrorNaming| {
                let naming = Naming {
                    error: Some(e),
                    ..naming.clone()
                };
                ObjectStager::new(dir.clone(), naming, compression, false, size)
            }),
            error_template: layout.error_prefix.clone(),
            partitioning: None,
            converting: false,
            patience,
            exactly_once: None,
            backup_all: all,
        }
    }
}
