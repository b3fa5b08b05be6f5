//! The stream specification: one delivery stream's configuration as pure data, the one form
//! that both the configuration file (`config`) and the Firehose API (`control::request`) turn
//! into. It holds what was configured, checked, with defaults filled in, and nothing built from
//! it: prefixes as written (their templates are parsed in `streams::build`), the schema's
//! columns and the writers' options (the `Conversion` and its `WriterProperties` are made
//! there too), paths as written. `check` holds the rules both paths share; `canonical` the
//! form a stream's version is derived from (docs/durability.md, "Stream versions").
//!
//! Every field serializes into the canonical form unless it is at its default: a field added
//! later leaves no trace in the streams that do not set it, so adding one never moves a
//! stream's version.

mod canonical;
pub(crate) mod check;
mod conversion;
mod iceberg;
pub(crate) mod path;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::encode::Compression;
pub(crate) use canonical::digest;
pub(crate) use conversion::{ConversionSpec, InputSpec, OutputSpec};
pub(crate) use iceberg::{CatalogSpec, IcebergTarget, TableSpec};

/// One delivery stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct StreamSpec {
    pub(crate) name: String,
    pub(crate) source: SourceSpec,
    #[serde(skip_serializing_if = "ProcessingSpec::is_default")]
    pub(crate) processing: ProcessingSpec,
    pub(crate) destinations: Vec<DestinationSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
// One per stream, built once per configuration: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum SourceSpec {
    DirectPut,
    Kinesis(KinesisSourceSpec),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct KinesisSourceSpec {
    pub(crate) stream: KinesisStreamRef,
    /// Overrides `aws.endpoint_url` for Kinesis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) endpoint_url: Option<String>,
    #[serde(skip_serializing_if = "StartingPosition::is_latest")]
    pub(crate) starting_position: StartingPosition,
    /// How often ListShards runs to find new shards (resharding).
    #[serde(skip_serializing_if = "is_10")]
    pub(crate) discovery_interval_seconds: u64,
    /// Records read but not yet delivered, held in memory; readers wait beyond it.
    #[serde(skip_serializing_if = "is_64")]
    pub(crate) max_buffered_mib: u64,
    /// The Limit of each GetRecords call (AWS: 1-10000).
    #[serde(skip_serializing_if = "is_10000")]
    pub(crate) get_records_limit: u64,
    /// Shard leases in DynamoDB, for a fleet of instances sharing the stream; None: this
    /// instance reads every shard and keeps its checkpoints in files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) leases: Option<LeaseSpec>,
    /// Enhanced fan-out: records pushed by SubscribeToShard to this registered consumer (its
    /// own 2 MB/s per shard) instead of polled with GetRecords; None: polling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) enhanced_fan_out: Option<FanOutSpec>,
}

/// `source.kinesis_stream.enhanced_fan_out`: the stream consumer this instance (and every
/// instance of its fleet) subscribes as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FanOutSpec {
    pub(crate) consumer_name: String,
}

/// `source.kinesis_stream.leases`: the DynamoDB lease table a fleet shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct LeaseSpec {
    pub(crate) table: String,
    /// Overrides `aws.endpoint_url` for DynamoDB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) endpoint_url: Option<String>,
    /// Create the table (on-demand billing) when it does not exist.
    #[serde(skip_serializing_if = "is_true")]
    pub(crate) create_table: bool,
    /// This instance's name in `leaseOwner`; None: hostname and process id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) worker_id: Option<String>,
    /// A lease not renewed for this long is expired: other instances take it.
    #[serde(skip_serializing_if = "is_10")]
    pub(crate) failover_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

    /// The stream's ARN, in `region` and `account_id` when it was given by name.
    pub(crate) fn arn(&self, region: &str, account_id: &str) -> String {
        match self {
            KinesisStreamRef::Arn(a) => a.clone(),
            KinesisStreamRef::Name(n) => {
                format!("arn:aws:kinesis:{region}:{account_id}:stream/{n}")
            }
        }
    }
}

/// Where reading starts on a shard that has no checkpoint and no parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum StartingPosition {
    Latest,
    TrimHorizon,
    /// Epoch milliseconds.
    AtTimestamp(i64),
}

impl StartingPosition {
    fn is_latest(&self) -> bool {
        *self == StartingPosition::Latest
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct ProcessingSpec {
    /// Append `\n` after every record.
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) append_delimiter_to_record: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) transform: Option<TransformSpec>,
    /// `metadata_extraction.query`: a jq query building the partition keys of a record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) metadata_query: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) deaggregation: Option<Deaggregation>,
    /// `decompression: GZIP`: every record is a GZIP document, decompressed before anything
    /// else sees it (AWS's Decompression processor).
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) decompression: bool,
    /// `cloudwatch_logs.data_message_extraction`: each decompressed CloudWatch Logs document
    /// becomes one record per log event's message (AWS's CloudWatchLogProcessing processor).
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) cloudwatch_logs_extraction: bool,
}

impl ProcessingSpec {
    fn is_default(&self) -> bool {
        *self == ProcessingSpec::default()
    }
}

/// `processing.record_deaggregation`: how one record splits into several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) enum Deaggregation {
    /// Concatenated or newline-separated JSON objects.
    Json,
    Delimited(String),
}

/// `processing.transform`: the Lambda-contract transform (docs/transform.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TransformSpec {
    pub(crate) runtime: Runtime,
    /// Record bytes per invocation (before base64): 0.2-3 MiB, default 1 MiB.
    #[serde(skip_serializing_if = "is_1_mib")]
    pub(crate) buffer_bytes: u64,
    #[serde(skip_serializing_if = "is_60")]
    pub(crate) buffer_interval_seconds: u64,
    #[serde(skip_serializing_if = "is_3")]
    pub(crate) number_of_retries: u32,
    #[serde(skip_serializing_if = "is_60")]
    pub(crate) timeout_seconds: u64,
    /// Invocations in flight at once (1-32, default 1): each has its own runtime (a child
    /// process, or a WASM instance), and their outcomes are taken in log order.
    #[serde(skip_serializing_if = "is_1")]
    pub(crate) concurrency: u32,
    /// `lambda_arn`: the function this transform stands in for (DescribeDeliveryStream's
    /// LambdaArn, the request's `lambdaArn`); `firehosed-<stream>` in the daemon's region and
    /// account when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lambda_arn: Option<String>,
}

impl TransformSpec {
    /// AWS's defaults around a runtime.
    pub(crate) fn with_defaults(runtime: Runtime) -> TransformSpec {
        TransformSpec {
            runtime,
            buffer_bytes: 1024 * 1024,
            buffer_interval_seconds: 60,
            number_of_retries: 3,
            timeout_seconds: 60,
            concurrency: 1,
            lambda_arn: None,
        }
    }

    /// The Lambda ARN the transform answers to.
    pub(crate) fn lambda_arn(&self, region: &str, account_id: &str, stream: &str) -> String {
        match &self.lambda_arn {
            Some(arn) => arn.clone(),
            None => format!("arn:aws:lambda:{region}:{account_id}:function:firehosed-{stream}"),
        }
    }
}

/// What runs a transform.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) enum Runtime {
    Subprocess {
        command: Vec<String>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        env: BTreeMap<String, String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        working_directory: Option<PathBuf>,
    },
    Wasm {
        module: PathBuf,
        #[serde(skip_serializing_if = "is_128")]
        max_memory_mib: u64,
    },
}

/// `destinations[].dynamic_partitioning` when enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct DynamicPartitioning {
    #[serde(skip_serializing_if = "is_300")]
    pub(crate) retry_duration_seconds: u64,
    /// Partitions open at once; records of a further partition go to the error prefix.
    #[serde(skip_serializing_if = "is_500_usize")]
    pub(crate) max_active_partitions: usize,
}

impl DynamicPartitioning {
    pub(crate) const DEFAULT: DynamicPartitioning = DynamicPartitioning {
        retry_duration_seconds: 300,
        max_active_partitions: 500,
    };
}

/// One destination of a stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct DestinationSpec {
    pub(crate) target: Target,
    /// As written; None when unset (AWS's default `yyyy/MM/dd/HH/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_output_prefix: Option<String>,
    pub(crate) buffering: Buffering,
    #[serde(skip_serializing_if = "is_uncompressed")]
    pub(crate) compression: Compression,
    /// `file_extension` as written (None: the output's own, see `extension`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) file_extension: Option<String>,
    /// `custom_time_zone`: an IANA name (checked).
    #[serde(skip_serializing_if = "is_utc")]
    pub(crate) time_zone: String,
    /// Records as they were before the transform also go under this prefix (as written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) source_record_backup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dynamic_partitioning: Option<DynamicPartitioning>,
    /// `data_format_conversion` when enabled: records are written as Parquet or ORC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) format_conversion: Option<ConversionSpec>,
    /// `delivery`: whether a replay may write a record into a second object.
    #[serde(skip_serializing_if = "Delivery::is_default")]
    pub(crate) delivery: Delivery,
}

impl DestinationSpec {
    /// The object name extension: the override, or the output's own.
    pub(crate) fn extension(&self) -> String {
        match (&self.file_extension, &self.format_conversion) {
            (Some(e), _) => e.clone(),
            (None, Some(c)) => c.output.extension().to_string(),
            (None, None) => self.compression.extension().to_string(),
        }
    }

    /// The time zone of the object keys.
    pub(crate) fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }
}

/// `delivery: at_least_once | exactly_once` (docs/durability.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) enum Delivery {
    /// Random object names; after a crash or a lost answer a record may land in two objects
    /// (managed Firehose's behaviour). Works with any S3 server.
    #[default]
    AtLeastOnce,
    /// Names derived from each object's identity, journaled before the upload, written with a
    /// conditional put: a replay never writes a record twice. Needs conditional writes.
    ExactlyOnce,
}

impl Delivery {
    fn is_default(&self) -> bool {
        *self == Delivery::AtLeastOnce
    }
}

/// Where a destination's objects go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) enum Target {
    S3 {
        bucket: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        endpoint_url: Option<String>,
        /// `encryption.kms_key_arn`: objects are written with SSE-KMS under this key (AWS's
        /// EncryptionConfiguration.KMSEncryptionConfig); None: the bucket's default.
        #[serde(skip_serializing_if = "Option::is_none")]
        kms_key_arn: Option<String>,
    },
    Directory(PathBuf),
    /// An HTTP endpoint (AWS's HttpEndpointDestinationConfiguration): records are POSTed as
    /// AWS's HTTP endpoint delivery specification says; the destination's prefixes and
    /// compression are its backup's (docs/http-endpoint.md).
    Http(Box<HttpEndpoint>),
    /// Apache Iceberg tables (AWS's IcebergDestinationConfiguration): records are rows of the
    /// table each is routed to; the destination's error prefix and compression are its
    /// backup's (docs/iceberg.md).
    Iceberg(Box<IcebergTarget>),
}

/// `destinations[].http_endpoint` with its `s3_backup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct HttpEndpoint {
    pub(crate) url: String,
    /// AWS's EndpointConfiguration.Name (echoed by Describe, never sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    /// Sent verbatim as X-Amz-Firehose-Access-Key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) access_key: Option<String>,
    /// Request bodies are GZIP-compressed (`Content-Encoding: gzip`).
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) gzip: bool,
    /// X-Amz-Firehose-Common-Attributes, in the order written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) common_attributes: Vec<(String, String)>,
    /// How long a request is retried before its records go to the backup (AWS's
    /// RetryOptions.DurationInSeconds; 0: one attempt).
    #[serde(skip_serializing_if = "is_300")]
    pub(crate) retry_duration_seconds: u64,
    /// How long one attempt may take (AWS: 3 minutes).
    #[serde(skip_serializing_if = "is_180")]
    pub(crate) request_timeout_seconds: u64,
    #[serde(skip_serializing_if = "BackupMode::is_default")]
    pub(crate) backup_mode: BackupMode,
    /// Where failed (or all) records go: an S3 bucket or a directory, never `Http`.
    pub(crate) backup: Target,
}

impl HttpEndpoint {
    /// AWS's defaults.
    pub(crate) const DEFAULT_RETRY_SECONDS: u64 = 300;
    /// AWS gives an endpoint 3 minutes to answer.
    pub(crate) const DEFAULT_TIMEOUT_SECONDS: u64 = 180;
}

/// AWS's HttpEndpointS3BackupMode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum BackupMode {
    /// Only records the endpoint did not take within the retry duration, as
    /// `http-endpoint-failed` error records.
    FailedDataOnly,
    /// Every record as well, under the backup prefix.
    AllData,
}

impl BackupMode {
    fn is_default(&self) -> bool {
        *self == BackupMode::FailedDataOnly
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

// Defaults the canonical form leaves out (serde's `skip_serializing_if` takes a path).
fn is_false(v: &bool) -> bool {
    !*v
}
fn is_true(v: &bool) -> bool {
    *v
}
fn is_1(v: &u32) -> bool {
    *v == 1
}
fn is_3(v: &u32) -> bool {
    *v == 3
}
fn is_10(v: &u64) -> bool {
    *v == 10
}
fn is_60(v: &u64) -> bool {
    *v == 60
}
fn is_64(v: &u64) -> bool {
    *v == 64
}
fn is_128(v: &u64) -> bool {
    *v == 128
}
fn is_180(v: &u64) -> bool {
    *v == 180
}
fn is_300(v: &u64) -> bool {
    *v == 300
}
fn is_10000(v: &u64) -> bool {
    *v == 10_000
}
fn is_1_mib(v: &u64) -> bool {
    *v == 1024 * 1024
}
fn is_500_usize(v: &usize) -> bool {
    *v == 500
}
fn is_uncompressed(c: &Compression) -> bool {
    *c == Compression::Uncompressed
}
fn is_utc(tz: &str) -> bool {
    tz == "UTC"
}
