//! Processing: what happens to records between the stream's log and its destinations
//! (docs/aws-behaviour.md section 1): the stage before the transform (`prepare`: GZIP
//! decompression and CloudWatch Logs extraction in `cloudwatch_logs`, record de-aggregation in
//! `deaggregate`), the Lambda-contract transform
//! (`transform`), whose failures become error records (`error_record`), and the jq query that
//! extracts partition keys (`metadata`).

pub(crate) mod cloudwatch_logs;
pub(crate) mod deaggregate;
pub(crate) mod error_record;
pub(crate) mod prepare;
pub(crate) mod transform;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::record::Record;

/// Partition keys a transform returned for a record (`metadata.partitionKeys`).
pub(crate) type PartitionKeys = Arc<BTreeMap<String, String>>;

/// Where one record of the log ends up after processing.
#[derive(Debug)]
pub(crate) enum RecordOutcome {
    /// Delivered, with (possibly new) data and the transform's partition keys.
    Deliver(Record, Option<PartitionKeys>),
    /// Removed on purpose (the transform said `Dropped`).
    Dropped,
    /// Goes to the error prefix: the error record line, with the original's sequence number and
    /// arrival time.
    Failed(ErrorOutput),
}

/// One error record (a JSON line) and the error-output-type that names its prefix.
#[derive(Debug, Clone)]
pub(crate) struct ErrorOutput {
    pub(crate) output_type: &'static str,
    pub(crate) line: Record,
    /// A prefix of its own instead of the destination's error prefix (an Iceberg table's
    /// S3ErrorOutputPrefix), as written.
    pub(crate) prefix: Option<Arc<str>>,
}

/// The processing stage's answer for a run of consecutive log records.
#[derive(Debug, Default)]
pub(crate) struct Processed {
    pub(crate) deliver: Vec<(Record, Option<PartitionKeys>)>,
    pub(crate) failed: Vec<ErrorOutput>,
    pub(crate) dropped: u64,
}

impl Processed {
    pub(crate) fn push(&mut self, outcome: RecordOutcome) {
        match outcome {
            RecordOutcome::Deliver(r, k) => self.deliver.push((r, k)),
            RecordOutcome::Dropped => self.dropped += 1,
            RecordOutcome::Failed(e) => self.failed.push(e),
        }
    }
}
