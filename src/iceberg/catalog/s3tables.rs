//! Amazon S3 Tables as an Iceberg catalog (AWS's CatalogARN
//! `arn:aws:glue:REGION:ACCOUNT:catalog/s3tablescatalog/BUCKET`, here by its table bucket's ARN):
//! a table's current metadata file and a version token from GetTableMetadataLocation; a commit
//! is UpdateTableMetadataLocation with the token read, which S3 Tables refuses
//! (ConflictException) once another writer moved the table on. The table's files live in its
//! own warehouse bucket (`warehouseLocation`), reached through the S3 client.
//!
//! An answer lost after the update was sent (a connection cut, or a reply the SDK cannot read:
//! moto's reply to UpdateTableMetadataLocation names `namespace` as a string) leaves the swap
//! unknown: the location is read again, and the swap is done if it names the new file.

use std::time::Duration;

use aws_sdk_s3tables::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::{CatalogError, Swap, TableIdent};

pub(crate) struct S3TablesCatalog {
    client: aws_sdk_s3tables::Client,
    table_bucket_arn: String,
}

/// A table's current metadata and the token an update must name.
struct Current {
    location: Option<String>,
    token: String,
}

impl S3TablesCatalog {
    pub(crate) fn new(
        sdk: &aws_config::SdkConfig,
        endpoint_url: Option<&str>,
        table_bucket_arn: String,
    ) -> S3TablesCatalog {
        let mut builder = aws_sdk_s3tables::config::Builder::from(sdk).timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        );
        if let Some(url) = endpoint_url {
            builder = builder.endpoint_url(url);
        }
        S3TablesCatalog {
            client: aws_sdk_s3tables::Client::from_conf(builder.build()),
            table_bucket_arn,
        }
    }

    pub(crate) fn describe(&self) -> String {
        format!("S3 Tables bucket {}", self.table_bucket_arn)
    }

    fn call_error<E>(&self, call: &str, e: &SdkError<E>) -> CatalogError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = e.raw_response().map(|r| r.status().as_u16());
        CatalogError::Call {
            catalog: self.describe(),
            detail: format!("{call}: {}", DisplayErrorContext(e)),
            transient: status.is_none_or(|s| s >= 500 || s == 429),
        }
    }

    async fn current(&self, t: &TableIdent) -> Result<Current, CatalogError> {
        let out = self
            .client
            .get_table_metadata_location()
            .table_bucket_arn(&self.table_bucket_arn)
            .namespace(&t.namespace)
            .name(&t.name)
            .send()
            .await;
        match out {
            Ok(o) => Ok(Current {
                location: o.metadata_location().map(str::to_string),
                token: o.version_token().to_string(),
            }),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                Err(CatalogError::NoSuchTable(t.clone()))
            }
            Err(e) => Err(self.call_error("GetTableMetadataLocation", &e)),
        }
    }

    pub(crate) async fn metadata_location(&self, t: &TableIdent) -> Result<String, CatalogError> {
        self.current(t)
            .await?
            .location
            .ok_or_else(|| CatalogError::NotIceberg(t.clone()))
    }

    pub(crate) async fn swap(
        &self,
        t: &TableIdent,
        old: &str,
        new: &str,
    ) -> Result<Swap, CatalogError> {
        let current = self.current(t).await?;
        if current.location.as_deref() != Some(old) {
            return Ok(Swap::Conflict);
        }
        let out = self
            .client
            .update_table_metadata_location()
            .table_bucket_arn(&self.table_bucket_arn)
            .namespace(&t.namespace)
            .name(&t.name)
            .version_token(current.token)
            .metadata_location(new)
            .send()
            .await;
        match out {
            Ok(_) => Ok(Swap::Done),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conflict_exception()) =>
            {
                Ok(Swap::Conflict)
            }
            Err(e) => {
                // Sent, answer unknown: the table says whether it took the new file.
                match self.current(t).await?.location.as_deref() {
                    Some(l) if l == new => Ok(Swap::Done),
                    Some(l) if l != old => Ok(Swap::Conflict),
                    _ => Err(self.call_error("UpdateTableMetadataLocation", &e)),
                }
            }
        }
    }
}
