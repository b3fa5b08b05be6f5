//! The rules a delivery stream's specification must follow, one pure function shared by the
//! configuration file (`config`, which adds each problem's FILE:LINE:COLUMN) and the Firehose
//! API (`control::request`, which answers them as one InvalidArgumentException): value ranges
//! and formats, and the rules between keys (AWS's buffer minimums, the prefix rules of
//! docs/aws-behaviour.md section 2, what dynamic partitioning and format conversion need).
//! Every problem is reported, each with the key path it is about and the keys it depends on.

mod conversion;
mod destination;
mod iceberg;

use std::ops::RangeInclusive;

use super::path::Path;
use super::{
    Deaggregation, KinesisSourceSpec, KinesisStreamRef, LeaseSpec, ProcessingSpec, Runtime,
    SourceSpec, StreamSpec, TransformSpec,
};

pub(crate) use conversion::parse_columns;
pub(crate) use destination::check_url;

/// One problem of a specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The key it is about, from the stream's top (`destinations[0].buffering.size_mib`).
    pub(crate) path: Path,
    /// Other keys the rule read: a problem whose keys could not be read (a value of the
    /// wrong type, say) is not reported, since the rule saw a stand-in.
    pub(crate) also: Vec<Path>,
    pub(crate) message: String,
}

impl Problem {
    /// Every key the rule depends on.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(&self.path).chain(&self.also)
    }
}

/// What the rules need besides the stream.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Scope {
    /// `relax_aws_limits`: AWS's buffer minimums are not enforced.
    pub(crate) relax: bool,
}

/// Every problem of `spec`.
pub(crate) fn check(spec: &StreamSpec, scope: Scope) -> Vec<Problem> {
    let mut c = Checker::default();
    let root = Path::root();
    if !valid_stream_name(&spec.name) {
        c.at(
            root.key("name"),
            format!("must match [a-zA-Z0-9_.-]{{1,64}} (got {:?})", spec.name),
        );
    }
    if let SourceSpec::Kinesis(k) = &spec.source {
        source(&mut c, &root.key("source").key("kinesis_stream"), k);
    }
    processing(&mut c, &root.key("processing"), &spec.processing);
    if spec.destinations.is_empty() {
        c.at(root.key("destinations"), "needs at least one destination");
    }
    for (i, d) in spec.destinations.iter().enumerate() {
        destination::check(
            &mut c,
            &root.key("destinations").index(i),
            d,
            &spec.processing,
            scope,
        );
    }
    c.problems
}

/// `[a-zA-Z0-9_.-]{1,64}` (AWS's DeliveryStreamName), except `.` and `..`: a stream's name
/// is a folder under state_dir.
pub(crate) fn valid_stream_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Collects problems.
#[derive(Default)]
pub(crate) struct Checker {
    pub(crate) problems: Vec<Problem>,
}

impl Checker {
    pub(crate) fn at(&mut self, path: Path, message: impl Into<String>) {
        self.problems.push(Problem {
            path,
            also: Vec::new(),
            message: message.into(),
        });
    }

    /// A problem of `path` that also depends on the keys `also`.
    pub(crate) fn between(&mut self, path: Path, also: &[Path], message: impl Into<String>) {
        self.problems.push(Problem {
            path,
            also: also.to_vec(),
            message: message.into(),
        });
    }

    /// `value` must be within `range` ("must be 1..=128 (got 500)").
    pub(crate) fn range(&mut self, path: Path, value: u64, range: RangeInclusive<u64>) {
        if !range.contains(&value) {
            self.at(
                path,
                format!("must be {}..={} (got {value})", range.start(), range.end()),
            );
        }
    }
}

/// `source.kinesis_stream`.
fn source(c: &mut Checker, path: &Path, k: &KinesisSourceSpec) {
    match &k.stream {
        KinesisStreamRef::Name(v) => {
            let ok = (1..=128).contains(&v.len())
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                c.at(
                    path.key("stream_name"),
                    format!("must match [a-zA-Z0-9_.-]{{1,128}} (got {v:?})"),
                );
            }
        }
        KinesisStreamRef::Arn(v) => {
            let ok = v.starts_with("arn:") && v.contains(":kinesis:") && v.contains(":stream/");
            if !ok {
                c.at(
                    path.key("stream_arn"),
                    format!("must be arn:aws:kinesis:REGION:ACCOUNT:stream/NAME (got {v:?})"),
                );
            }
        }
    }
    if let Some(url) = &k.endpoint_url {
        check_url(c, path.key("endpoint_url"), url);
    }
    c.range(
        path.key("discovery_interval_seconds"),
        k.discovery_interval_seconds,
        1..=3600,
    );
    c.range(
        path.key("get_records_limit"),
        k.get_records_limit,
        1..=10_000,
    );
    c.range(path.key("max_buffered_mib"), k.max_buffered_mib, 1..=4096);
    if let Some(l) = &k.leases {
        leases(c, &path.key("leases"), l);
    }
    if let Some(f) = &k.enhanced_fan_out {
        let name = &f.consumer_name;
        // RegisterStreamConsumer's ConsumerName: [a-zA-Z0-9_.-]+, 1 to 128 characters.
        let ok = (1..=128).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            c.at(
                path.key("enhanced_fan_out").key("consumer_name"),
                format!("must match [a-zA-Z0-9_.-]{{1,128}} (got {name:?})"),
            );
        }
    }
}

/// `leases`: the table (DynamoDB's naming rules), its endpoint, this instance's id, the
/// failover time.
fn leases(c: &mut Checker, path: &Path, l: &LeaseSpec) {
    let ok = (3..=255).contains(&l.table.len())
        && l.table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        c.at(
            path.key("table"),
            format!("must match [a-zA-Z0-9_.-]{{3,255}} (got {:?})", l.table),
        );
    }
    if let Some(url) = &l.endpoint_url {
        check_url(c, path.key("endpoint_url"), url);
    }
    if let Some(v) = &l.worker_id
        && (!(1..=256).contains(&v.len()) || v.chars().any(char::is_control))
    {
        c.at(
            path.key("worker_id"),
            format!("must be 1-256 characters, no control characters (got {v:?})"),
        );
    }
    c.range(path.key("failover_seconds"), l.failover_seconds, 1..=600);
}

/// `processing`.
fn processing(c: &mut Checker, path: &Path, p: &ProcessingSpec) {
    if let Some(Deaggregation::Delimited(d)) = &p.deaggregation
        && (d.is_empty() || d.len() > 64)
    {
        c.at(
            path.key("record_deaggregation").key("delimited"),
            "must be 1 to 64 bytes",
        );
    }
    if let Some(q) = &p.metadata_query
        && let Err(e) = crate::jq::check(q)
    {
        c.at(path.key("metadata_extraction").key("query"), e.to_string());
    }
    if let Some(t) = &p.transform {
        transform(c, &path.key("transform"), t);
    }
    if p.cloudwatch_logs_extraction {
        // AWS's CloudWatchLogProcessing works on decompressed documents only, and an extracted
        // log event is already one record: splitting it again would number its pieces twice.
        let at = path.key("cloudwatch_logs");
        if !p.decompression {
            c.between(
                at,
                &[path.key("decompression")],
                "needs processing.decompression: GZIP (CloudWatch Logs sends GZIP documents)",
            );
        } else if p.deaggregation.is_some() {
            c.between(
                at,
                &[path.key("record_deaggregation")],
                "cannot be combined with record_deaggregation: each log event is already one record",
            );
        }
    }
}

/// `processing.transform`.
fn transform(c: &mut Checker, path: &Path, t: &TransformSpec) {
    runtime(c, path, &t.runtime);
    // 0.2-3 MiB, as the whole bytes a size in MiB is read into.
    let mib: f64 = 1024.0 * 1024.0;
    let bytes = t.buffer_bytes as f64;
    if !((0.2 * mib).round()..=3.0 * mib).contains(&bytes) {
        c.at(
            path.key("buffer_size_mib"),
            format!(
                "must be a number 0.2..=3 (got {})",
                (bytes / mib * 1000.0).round() / 1000.0
            ),
        );
    }
    c.range(
        path.key("buffer_interval_seconds"),
        t.buffer_interval_seconds,
        0..=900,
    );
    c.range(
        path.key("number_of_retries"),
        u64::from(t.number_of_retries),
        0..=300,
    );
    c.range(path.key("timeout_seconds"), t.timeout_seconds, 1..=900);
    c.range(
        path.key("concurrency"),
        u64::from(t.concurrency),
        CONCURRENCY,
    );
    if let Some(arn) = &t.lambda_arn
        && function_name(arn).is_none()
    {
        c.at(
            path.key("lambda_arn"),
            format!(
                "must be a Lambda function ARN, arn:aws:lambda:REGION:ACCOUNT:function:NAME (got {arn:?})"
            ),
        );
    }
}

/// `concurrency`: invocations in flight per stream. AWS runs one per source shard for Kinesis
/// and scales Direct PUT's; locally each is a process or an instance, so it is capped.
pub(crate) const CONCURRENCY: RangeInclusive<u64> = 1..=32;

/// A transform's runtime: a command to run, or a module.
pub(crate) fn runtime(c: &mut Checker, path: &Path, r: &Runtime) {
    match r {
        Runtime::Subprocess { command, env, .. } => {
            let at = path.key("subprocess");
            if command.first().is_none_or(String::is_empty) {
                c.at(
                    at.key("command"),
                    "needs the program to run, then its arguments",
                );
            }
            for name in env.keys() {
                if name.is_empty() || name.contains('=') || name.contains('\0') {
                    c.at(
                        at.key("env").key(name),
                        "is not a valid environment variable name",
                    );
                }
            }
        }
        Runtime::Wasm { max_memory_mib, .. } => {
            c.range(
                path.key("wasm").key("max_memory_mib"),
                *max_memory_mib,
                1..=4096,
            );
        }
    }
}

/// The function name of a Lambda ARN
/// (`arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`).
pub(crate) fn function_name(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    let ok = (7..=8).contains(&parts.len())
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "lambda"
        && parts[5] == "function"
        && valid_function_name(parts[6])
        && parts.get(7).is_none_or(|q| !q.is_empty());
    ok.then(|| parts[6])
}

/// Lambda's function names: `[a-zA-Z0-9-_]{1,64}`.
pub(crate) fn valid_function_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
