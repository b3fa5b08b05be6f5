//! The stage before the transform, in AWS's order (docs/aws-behaviour.md section 1):
//! decompression, CloudWatch Logs message extraction, record de-aggregation. Each log record
//! becomes zero or more records for the transform and the destinations, or one error record.
//! Records made from one log record share its `seq` and are numbered by `sub`, so exactly-once
//! identities and cursors keep counting log records.

use std::sync::Arc;

use super::cloudwatch_logs::{self, Document};
use super::{ErrorOutput, deaggregate, error_record};
use crate::metrics::StreamMetrics;
use crate::record::Record;
use crate::spec::{Deaggregation, ProcessingSpec};

/// Decompressed bytes one run of the stage holds at most, the size of a destination's in-flight
/// budget (beyond it by one record's
/// `cloudwatch_logs::MAX_DECOMPRESSED_BYTES`).
const MAX_DECOMPRESSED_PER_RUN: usize = 8 * 1024 * 1024;

/// What the stage made of a log record, in log order.
#[derive(Debug)]
pub(crate) enum Step {
    /// A record to process further.
    Record(Record),
    /// The log record at `index` of the batch goes to the error prefix.
    Failed { index: usize, error: ErrorOutput },
    /// The log record at `index` of the batch holds nothing to deliver (a CONTROL_MESSAGE, or
    /// a DATA_MESSAGE without events).
    Dropped { index: usize, seq: u64 },
}

impl Step {
    /// The bytes the step holds.
    fn bytes(&self) -> usize {
        match self {
            Step::Record(r) => r.data.len(),
            Step::Failed { error, .. } => error.line.data.len(),
            Step::Dropped { .. } => 0,
        }
    }

    /// The log position of the record the step came from.
    pub(crate) fn seq(&self) -> u64 {
        match self {
            Step::Record(r) => r.seq,
            Step::Failed { error, .. } => error.line.seq,
            Step::Dropped { seq, .. } => *seq,
        }
    }
}

/// The configured pre-transform processors of a stream.
pub(crate) struct Prepare {
    decompression: bool,
    extraction: bool,
    deaggregation: Option<Deaggregation>,
    metrics: Arc<StreamMetrics>,
}

impl Prepare {
    pub(crate) fn new(config: &ProcessingSpec, metrics: Arc<StreamMetrics>) -> Prepare {
        Prepare {
            decompression: config.decompression,
            extraction: config.cloudwatch_logs_extraction,
            deaggregation: config.deaggregation.clone(),
            metrics,
        }
    }

    /// Whether the stage does CPU work worth moving off the async workers.
    pub(crate) fn is_heavy(&self) -> bool {
        self.decompression
    }

    /// The steps of the first log records of `batch`, in order, and how many log records they
    /// cover: all of them, or with decompression as many as fit `MAX_DECOMPRESSED_PER_RUN`
    /// (at least one), so a batch of small records that each decompress to the cap cannot
    /// hold gigabytes at once.
    pub(crate) fn run(&self, batch: &[Record]) -> (Vec<Step>, usize) {
        if !self.decompression {
            let records = match &self.deaggregation {
                Some(how) => deaggregate::split(how, batch.to_vec()),
                None => batch.to_vec(),
            };
            return (records.into_iter().map(Step::Record).collect(), batch.len());
        }
        let mut steps = Vec::with_capacity(batch.len());
        let mut held = 0;
        for (index, original) in batch.iter().enumerate() {
            if held >= MAX_DECOMPRESSED_PER_RUN {
                return (steps, index);
            }
            let before = steps.len();
            if let Err(failure) = self.decompressed(original, &mut steps) {
                self.metrics.decompression_failed_records.add(1);
                let error = error_record::decompression_failed(original, &failure);
                steps.push(Step::Failed { index, error });
            } else if steps.last().is_none_or(|s| s.seq() != original.seq) {
                steps.push(Step::Dropped {
                    index,
                    seq: original.seq,
                });
            }
            held += steps[before..].iter().map(Step::bytes).sum::<usize>();
        }
        (steps, batch.len())
    }

    /// Pushes the records of one compressed log record (none for a CONTROL_MESSAGE).
    fn decompressed(
        &self,
        original: &Record,
        steps: &mut Vec<Step>,
    ) -> Result<(), cloudwatch_logs::Failure> {
        let data = cloudwatch_logs::decompress(&original.data)?;
        let whole = Record {
            data,
            ..original.clone()
        };
        if !self.extraction {
            self.metrics.decompressed_records.add(1);
            let records = match &self.deaggregation {
                Some(how) => deaggregate::split(how, vec![whole]),
                None => vec![whole],
            };
            steps.extend(records.into_iter().map(Step::Record));
            return Ok(());
        }
        let messages = match cloudwatch_logs::extract(&whole.data)? {
            Document::Control => {
                self.metrics.decompressed_records.add(1);
                self.metrics.control_messages_dropped.add(1);
                return Ok(());
            }
            Document::Data(m) => m,
        };
        self.metrics.decompressed_records.add(1);
        self.metrics.log_events_extracted.add(messages.len() as u64);
        steps.extend(messages.into_iter().enumerate().map(|(i, data)| {
            Step::Record(Record {
                data,
                arrival_ms: original.arrival_ms,
                seq: original.seq,
                sub: i as u32,
                kinesis: original.kinesis.clone(),
            })
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::io::Write;

    fn prepare(extraction: bool) -> Prepare {
        Prepare {
            decompression: true,
            extraction,
            deaggregation: None,
            metrics: Arc::default(),
        }
    }

    fn record(seq: u64, data: Vec<u8>) -> Record {
        Record {
            data: Bytes::from(data),
            arrival_ms: 1,
            seq,
            sub: 0,
            kinesis: None,
        }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn events_share_their_record_and_failures_and_drops_keep_their_place() {
        let data = |messages: &[&str]| {
            let events: Vec<_> = messages
                .iter()
                .map(|m| serde_json::json!({"id": "1", "timestamp": 1, "message": m}))
                .collect();
            gzip(
                serde_json::json!({"messageType": "DATA_MESSAGE", "logGroup": "g",
                "logStream": "s", "logEvents": events})
                .to_string()
                .as_bytes(),
            )
        };
        let control = gzip(
            br#"{"messageType":"CONTROL_MESSAGE","logGroup":"","logStream":"","logEvents":[]}"#,
        );
        let batch = [
            record(10, data(&["a", "b"])),
            record(11, b"not gzip".to_vec()),
            record(12, control),
            record(13, data(&["c"])),
        ];
        let p = prepare(true);
        let (steps, taken) = p.run(&batch);
        assert_eq!(taken, 4);
        let shape: Vec<String> = steps
            .iter()
            .map(|s| match s {
                Step::Record(r) => {
                    format!("{}.{}={}", r.seq, r.sub, String::from_utf8_lossy(&r.data))
                }
                Step::Failed { index, error } => format!("failed {index} {}", error.output_type),
                Step::Dropped { index, seq } => format!("dropped {index} {seq}"),
            })
            .collect();
        assert_eq!(
            shape,
            [
                "10.0=a",
                "10.1=b",
                "failed 1 decompression-failed",
                "dropped 2 12",
                "13.0=c"
            ]
        );
        assert_eq!(p.metrics.log_events_extracted.get(), 3);
        assert_eq!(p.metrics.decompression_failed_records.get(), 1);
    }

    #[test]
    fn a_run_holds_a_bounded_amount_of_decompressed_data() {
        let big = gzip(&vec![b'x'; cloudwatch_logs::MAX_DECOMPRESSED_BYTES]);
        let batch: Vec<Record> = (0..6).map(|i| record(i, big.clone())).collect();
        let p = prepare(false);
        let per_run = MAX_DECOMPRESSED_PER_RUN.div_ceil(cloudwatch_logs::MAX_DECOMPRESSED_BYTES);
        let (mut from, mut runs) = (0, 0);
        while from < batch.len() {
            let (steps, taken) = p.run(&batch[from..]);
            assert_eq!(steps.len(), taken);
            assert_eq!(taken, per_run.min(batch.len() - from), "run {runs}");
            from += taken;
            runs += 1;
        }
        assert_eq!(runs, batch.len().div_ceil(per_run));
        assert!(runs > 1, "the batch is taken in parts");
    }
}
