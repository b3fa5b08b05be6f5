//! An Iceberg destination's runtime parts: its catalog (sqlite or Glue), the warehouse's file
//! access, the router that staging and the sink share, and the sink with its backup.

use std::sync::Arc;
use std::time::Duration;

use super::{Build, BuildError};
use crate::aws;
use crate::destination::iceberg::router::Creation;
use crate::destination::iceberg::{IcebergSetup, IcebergSink, Router, RouterSetup};
use crate::destination::naming::{ErrorNaming, Naming};
use crate::destination::sink::Sink;
use crate::iceberg::catalog::glue::GlueCatalog;
use crate::iceberg::catalog::s3tables::S3TablesCatalog;
use crate::iceberg::catalog::sql::SqlCatalog;
use crate::iceberg::catalog::{Catalog, TableIdent};
use crate::iceberg::io::FileIo;
use crate::iceberg::table::Tables;
use crate::metrics::DestinationMetrics;
use crate::processing::error_record::ICEBERG_FAILED;
use crate::spec::{CatalogSpec, IcebergTarget};

/// Why an Iceberg destination cannot be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IcebergBuildError {
    #[error(transparent)]
    Uri(#[from] crate::iceberg::catalog::sql::BadUri),
    #[error("cannot create the folder of the catalog database {path}")]
    Folder {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Build<'_> {
    /// The router of an Iceberg destination: its catalog and the warehouse's files.
    pub(super) fn iceberg_router(
        &self,
        i: &IcebergTarget,
        label: &str,
    ) -> Result<Arc<Router>, BuildError> {
        let config = &self.builder.config;
        let catalog = self.iceberg_catalog(i)?;
        // s3:// table locations need the S3 client of the `aws` settings.
        let s3 = self.sdk.map(|sdk| {
            aws::s3_client(
                sdk,
                config.aws.endpoint_url.as_deref(),
                config.aws.force_path_style,
            )
        });
        let tables = Arc::new(Tables {
            catalog,
            io: FileIo::new(s3),
        });
        Ok(Arc::new(Router::new(router_setup(i, tables, label))))
    }

    /// An Iceberg destination's catalog.
    fn iceberg_catalog(&self, i: &IcebergTarget) -> Result<Catalog, BuildError> {
        let config = &self.builder.config;
        let failed = |source| BuildError::Iceberg {
            stream: self.sc.name.clone(),
            source,
        };
        Ok(match &i.catalog {
            CatalogSpec::Sql { uri, name } => {
                let c = SqlCatalog::new(uri, name).map_err(|e| failed(e.into()))?;
                if let Some(dir) = c.path().parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| {
                        failed(IcebergBuildError::Folder {
                            path: dir.to_path_buf(),
                            source,
                        })
                    })?;
                }
                Catalog::Sql(c)
            }
            CatalogSpec::Glue {
                catalog_id,
                endpoint_url,
            } => {
                let sdk = self
                    .sdk
                    .expect("the SDK configuration is loaded for a Glue catalog (needs_aws)");
                let endpoint = endpoint_url
                    .as_deref()
                    .or(config.aws.endpoint_url.as_deref());
                Catalog::Glue(GlueCatalog::new(sdk, endpoint, catalog_id.clone()))
            }
            CatalogSpec::S3Tables {
                table_bucket_arn,
                endpoint_url,
            } => {
                let sdk = self
                    .sdk
                    .expect("the SDK configuration is loaded for S3 Tables (needs_aws)");
                let endpoint = endpoint_url
                    .as_deref()
                    .or(config.aws.endpoint_url.as_deref());
                Catalog::S3Tables(S3TablesCatalog::new(
                    sdk,
                    endpoint,
                    table_bucket_arn.clone(),
                ))
            }
        })
    }

    /// The sink of an Iceberg destination: commits through `router`, backs up to its bucket or
    /// directory; `naming` is the destination's.
    pub(super) async fn iceberg_sink(
        &self,
        i: &IcebergTarget,
        router: Arc<Router>,
        naming: &Naming,
        error_prefix: Option<crate::keys::template::Template>,
        metrics: &Arc<DestinationMetrics>,
        label: &str,
    ) -> Result<Sink, BuildError> {
        let backup = Box::pin(self.target_sink(&i.backup)).await?;
        let failed_naming = Naming {
            error: Some(ErrorNaming {
                template: error_prefix,
                output_type: ICEBERG_FAILED,
            }),
            extension: ".parquet".to_string(),
            ..naming.clone()
        };
        Ok(Sink::Iceberg(Box::new(IcebergSink::new(IcebergSetup {
            router,
            backup,
            retry: Duration::from_secs(i.retry_duration_seconds),
            failed_naming,
            stream: self.sc.name.clone(),
            metrics: metrics.clone(),
            label: label.to_string(),
        }))))
    }
}

/// What an Iceberg destination's router routes by, from its specification.
fn router_setup(i: &IcebergTarget, tables: Arc<Tables>, label: &str) -> RouterSetup {
    let ident = |t: &crate::spec::TableSpec| TableIdent::new(&t.database, &t.table);
    RouterSetup {
        tables,
        configured: i.tables.iter().map(ident).collect(),
        append_only: i.append_only,
        creation: match (i.table_creation, &i.warehouse) {
            (true, Some(w)) => Some(Creation {
                warehouse: w.clone(),
                partition_specs: i
                    .tables
                    .iter()
                    .map(|t| (ident(t), t.partition_spec.clone()))
                    .collect(),
            }),
            _ => None,
        },
        schema_evolution: i.schema_evolution,
        unique_keys: i
            .tables
            .iter()
            .map(|t| (ident(t), t.unique_keys.clone()))
            .collect(),
        error_prefixes: i
            .tables
            .iter()
            .filter_map(|t| {
                let p = t.error_output_prefix.as_deref()?;
                Some((ident(t), Arc::from(p)))
            })
            .collect(),
        label: label.to_string(),
    }
}
