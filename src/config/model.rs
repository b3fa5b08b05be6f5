//! The checked configuration: what the rest of the daemon builds from. Every value here has
//! passed validation; defaults are filled in.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono_tz::Tz;

use crate::encode::Compression;
use crate::keys::template::Template;

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
    pub(crate) streams: Vec<StreamConfig>,
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

#[derive(Debug, Clone)]
pub(crate) struct StreamConfig {
    pub(crate) name: String,
    pub(crate) source: SourceConfig,
    pub(crate) processing: ProcessingConfig,
    pub(crate) destinations: Vec<DestinationConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SourceConfig {
    DirectPut,
    Kinesis(KinesisSourceConfig),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KinesisSourceConfig {
    pub(crate) stream: KinesisStreamRef,
    /// Overrides `aws.endpoint_url` for Kinesis.
    pub(crate) endpoint_url: Option<String>,
    pub(crate) starting_position: StartingPosition,
    /// How often ListShards runs to find new shards (resharding).
    pub(crate) discovery_interval_seconds: u64,
    /// Records read but not yet delivered, held in memory; readers wait beyond it.
    pub(crate) max_buffered_mib: u64,
    /// The Limit of each GetRecords call (AWS: 1-10000).
    pub(crate) get_records_limit: u64,
    /// Shard leases in DynamoDB, for a fleet of instances sharing the stream; None: this
    /// instance reads every shard and keeps its checkpoints in files.
    pub(crate) leases: Option<LeaseConfig>,
}

/// `source.kinesis_stream.leases`: the DynamoDB lease table a fleet shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaseConfig {
    pub(crate) table: String,
    /// Overrides `aws.endpoint_url` for DynamoDB.
    pub(crate) endpoint_url: Option<String>,
    /// Create the table (on-demand billing) when it does not exist.
    pub(crate) create_table: bool,
    /// This instance's name in `leaseOwner`; None: hostname and process id.
    pub(crate) worker_id: Option<String>,
    /// A lease not renewed for this long is expired: other instances take it.
    pub(crate) failover_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KinesisStreamRef {
    Name(String),
    Arn(String),
}

impl KinesisStreamRef {
    /// The stream's name (the last part of an ARN).
    pub(crate) fn name(&self) -> &str {
        match self {
            KinesisStreamRef::Name(n) => n,
            KinesisStreamRef::Arn(a) => a.rsplit('/').next().unwrap_or(a),
        }
    }
}

/// Where reading starts on a shard that has no checkpoint and no parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartingPosition {
    Latest,
    TrimHorizon,
    /// Epoch milliseconds.
    AtTimestamp(i64),
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ProcessingConfig {
    /// Append `\n` after every record.
    pub(crate) append_delimiter_to_record: bool,
    pub(crate) transform: Option<super::transform::TransformConfig>,
    /// `metadata_extraction.query`: a jq query building the partition keys of a record.
    pub(crate) metadata_query: Option<String>,
    pub(crate) deaggregation: Option<Deaggregation>,
    /// `decompression: GZIP`: every record is a GZIP document, decompressed before anything
    /// else sees it (AWS's Decompression processor).
    pub(crate) decompression: bool,
    /// `cloudwatch_logs.data_message_extraction`: each decompressed CloudWatch Logs document
    /// becomes one record per log event's message (AWS's CloudWatchLogProcessing processor).
    pub(crate) cloudwatch_logs_extraction: bool,
}

/// `processing.record_deaggregation`: how one record splits into several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Deaggregation {
    /// Concatenated or newline-separated JSON objects.
    Json,
    Delimited(String),
}

/// `destinations[].dynamic_partitioning` when enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DynamicPartitioning {
    pub(crate) retry_duration_seconds: u64,
    /// Partitions open at once; records of a further partition go to the error prefix.
    pub(crate) max_active_partitions: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct DestinationConfig {
    pub(crate) target: Target,
    /// As written; None when unset (AWS's default `yyyy/MM/dd/HH/`).
    pub(crate) prefix: Option<String>,
    pub(crate) prefix_template: Template,
    pub(crate) error_output_prefix: Option<String>,
    pub(crate) error_prefix_template: Option<Template>,
    pub(crate) buffering: Buffering,
    pub(crate) compression: Compression,
    /// The object name extension: the override, or the compression's own.
    pub(crate) file_extension: String,
    pub(crate) time_zone: Tz,
    /// Records as they were before the transform also go under this prefix.
    pub(crate) source_record_backup: Option<Template>,
    /// The backup prefix as written (DescribeDeliveryStream's S3BackupDescription.Prefix).
    pub(crate) source_record_backup_prefix: Option<String>,
    pub(crate) dynamic_partitioning: Option<DynamicPartitioning>,
    /// `data_format_conversion` when enabled: records are written as Parquet.
    pub(crate) format_conversion: Option<std::sync::Arc<crate::encode::parquet::Conversion>>,
    /// `delivery`: whether a replay may write a record into a second object.
    pub(crate) delivery: Delivery,
}

/// `delivery: at_least_once | exactly_once` (docs/durability.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Random object names; after a crash or a lost answer a record may land in two objects
    /// (managed Firehose's behaviour). Works with any S3 server.
    #[default]
    AtLeastOnce,
    /// Names derived from each object's identity, journaled before the upload, written with a
    /// conditional put: a replay never writes a record twice. Needs conditional writes.
    ExactlyOnce,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    S3 {
        bucket: String,
        endpoint_url: Option<String>,
        /// `encryption.kms_key_arn`: objects are written with SSE-KMS under this key (AWS's
        /// EncryptionConfiguration.KMSEncryptionConfig); None: the bucket's default.
        kms_key_arn: Option<String>,
    },
    Directory(PathBuf),
    /// An HTTP endpoint (AWS's HttpEndpointDestinationConfiguration): records are POSTed as
    /// AWS's HTTP endpoint delivery specification says; the destination's prefixes and
    /// compression are its backup's (docs/http-endpoint.md).
    Http(Box<HttpEndpoint>),
}

/// `destinations[].http_endpoint` with its `s3_backup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpEndpoint {
    pub(crate) url: String,
    /// AWS's EndpointConfiguration.Name (echoed by Describe, never sent).
    pub(crate) name: Option<String>,
    /// Sent verbatim as X-Amz-Firehose-Access-Key.
    pub(crate) access_key: Option<String>,
    /// Request bodies are GZIP-compressed (`Content-Encoding: gzip`).
    pub(crate) gzip: bool,
    /// X-Amz-Firehose-Common-Attributes, in the order written.
    pub(crate) common_attributes: Vec<(String, String)>,
    /// How long a request is retried before its records go to the backup (AWS's
    /// RetryOptions.DurationInSeconds; 0: one attempt).
    pub(crate) retry_duration_seconds: u64,
    /// How long one attempt may take (AWS: 3 minutes).
    pub(crate) request_timeout_seconds: u64,
    pub(crate) backup_mode: BackupMode,
    /// Where failed (or all) records go: an S3 bucket or a directory, never `Http`.
    pub(crate) backup: Target,
}

/// AWS's HttpEndpointS3BackupMode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BackupMode {
    /// Only records the endpoint did not take within the retry duration, as
    /// `http-endpoint-failed` error records.
    FailedDataOnly,
    /// Every record as well, under the backup prefix.
    AllData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Buffering {
    pub(crate) size_mib: u64,
    pub(crate) interval_seconds: u64,
}

impl Buffering {
    pub(crate) const DEFAULT: Buffering = Buffering {
        size_mib: 5,
        interval_seconds: 300,
    };

    /// AWS's defaults: 5 MiB / 300 s, 128 MiB with format conversion.
    pub(crate) fn default_for(converting: bool) -> Buffering {
        if converting {
            Buffering {
                size_mib: 128,
                ..Buffering::DEFAULT
            }
        } else {
            Buffering::DEFAULT
        }
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        self.size_mib * 1024 * 1024
    }
}
