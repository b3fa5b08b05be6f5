//! The checked configuration: what the rest of the daemon builds from. Every value here has
//! passed validation; defaults are filled in.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) listen: SocketAddr,
    /// /metrics, /healthz and /readyz also (or only, see docs/security.md) on this address.
    pub(crate) metrics_listen: Option<SocketAddr>,
    pub(crate) auth: AuthConfig,
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) server: ServerLimits,
    pub(crate) state_dir: PathBuf,
    pub(crate) aws: AwsSettings,
    pub(crate) spool: SpoolConfig,
    /// How long a shutdown may take to deliver what is buffered; what is left stays in the
    /// spool and is delivered after the next start.
    pub(crate) drain_timeout_seconds: u64,
    /// Allow buffers below AWS's minimums (dynamic partitioning, format conversion).
    pub(crate) relax_aws_limits: bool,
    /// Where CreateDeliveryStream finds the Glue tables its DataFormatConversionConfiguration
    /// names: `<dir>/<DatabaseName>/<TableName>.json`, in Glue's column layout.
    pub(crate) glue_catalog_dir: Option<PathBuf>,
    /// What CreateDeliveryStream's Lambda processors run: function name -> local runtime.
    pub(crate) lambda_functions:
        std::collections::BTreeMap<String, super::transform::LambdaFunction>,
    /// `api_iceberg_catalog`: the catalog API-created Iceberg destinations use instead of the
    /// Glue Data Catalog their CatalogARN names (the embedded sqlite catalog, for test suites
    /// and machines without AWS).
    pub(crate) api_iceberg_catalog: Option<crate::spec::CatalogSpec>,
    /// `api_s3_directory`: API-created S3 destinations write under `<dir>/<bucket>/<key>`
    /// instead of into their bucket (test suites: no S3 server; docs/testing.md).
    pub(crate) api_s3_directory: Option<PathBuf>,
    pub(crate) streams: Vec<crate::spec::StreamSpec>,
}

/// Settings given on the command line over the file's (`run --listen`, `--state-dir`), applied
/// again to the file a reload reads, so that a reload sees no change the file did not make.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub state_dir: Option<PathBuf>,
}

impl Overrides {
    pub fn apply(&self, config: &mut Config) {
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(dir) = &self.state_dir {
            config.state_dir.clone_from(dir);
        }
    }
}

impl Config {
    /// How many delivery streams the file defines.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }
}

/// Who may call the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthConfig {
    /// Not configured: nobody is asked who they are, and only loopback addresses are served.
    Unset,
    /// `auth: none`: nobody is asked, on any address (said explicitly).
    None,
    /// Every request signed with SigV4 by a key of the credentials file, and allowed by its
    /// principal's policy.
    SigV4 {
        credentials_file: PathBuf,
        policies: std::collections::BTreeMap<String, crate::auth::policy::Policy>,
    },
}

/// HTTPS with this certificate chain and key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsConfig {
    pub(crate) cert_file: PathBuf,
    pub(crate) key_file: PathBuf,
}

/// What one client may hold of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerLimits {
    /// Connections open at once (beyond it new ones wait to be accepted); also bounded by the
    /// open-file limit.
    pub(crate) max_connections: u64,
    /// Time to send a request's headers.
    pub(crate) header_timeout_seconds: u64,
    /// Time a kept-alive connection may sit idle between requests.
    pub(crate) idle_timeout_seconds: u64,
    /// Time to send a request's body, once its headers are in.
    pub(crate) body_timeout_seconds: u64,
}

impl ServerLimits {
    pub(crate) const DEFAULT: ServerLimits = ServerLimits {
        max_connections: 4096,
        header_timeout_seconds: 10,
        idle_timeout_seconds: 60,
        body_timeout_seconds: 30,
    };
}

/// The durable spool of Direct PUT streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpoolConfig {
    /// Disk budget of all spools together; beyond it producers get "Slow down.".
    pub(crate) max_size_mib: u64,
    pub(crate) segment_size_mib: u64,
    /// fdatasync before acknowledging (group commit). Off only for throwaway test setups.
    pub(crate) fsync: bool,
    /// Space on state_dir's filesystem the spool leaves free, for staging and sealing the
    /// objects that drain it: below it, producers get "Slow down.".
    pub(crate) disk_reserve_mib: u64,
}

impl SpoolConfig {
    pub(crate) const DEFAULT: SpoolConfig = SpoolConfig {
        max_size_mib: 1024,
        segment_size_mib: 64,
        fsync: true,
        disk_reserve_mib: 256,
    };
}

/// Defaults for every AWS client; unset values fall back to the SDK's standard chain.
#[derive(Debug, Clone, Default)]
pub(crate) struct AwsSettings {
    pub(crate) region: Option<String>,
    pub(crate) endpoint_url: Option<String>,
    pub(crate) force_path_style: Option<bool>,
    /// The account id shown in ARNs (DescribeDeliveryStream, transform requests).
    pub(crate) account_id: String,
}
