//! The transform stage: batches of log records go through the user's function (a subprocess or
//! a WASM module) under the Lambda contract; failed invocations are retried, then every record
//! of the batch becomes a `processing-failed` error record.

mod batch;
pub(crate) mod contract;
mod pool;
pub(crate) mod subprocess;
pub(crate) mod wasm;

pub(crate) use batch::TransformBatch;
pub(crate) use pool::{Finished, InvocationLost, TransformPool};

use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::{Invocation, InvokeError, Verdict};

use super::RecordOutcome;
use super::error_record::{LambdaFailure, processing_failed};
use crate::metrics::StreamMetrics;
use crate::record::{Record, now_ms};
use crate::spec::TransformSpec;

/// How one invocation attempt failed.
enum Attempt {
    /// The function failed, timed out or answered wrongly: counted, logged, retried.
    Failed(InvokeError),
    /// The request could not be built: retried.
    NotMade(InvokeError),
    /// No invocation can succeed (the request is over the payload limit): not retried.
    Hopeless(InvokeError),
}

pub(crate) enum Runtime {
    Subprocess(Box<subprocess::Subprocess>),
    Wasm(wasm::WasmTransform),
}

pub(crate) struct Transform {
    runtime: Runtime,
    invocation: Invocation,
    lambda_arn: String,
    config: TransformSpec,
    metrics: Arc<StreamMetrics>,
    label: String,
}

impl Transform {
    pub(crate) fn new(
        runtime: Runtime,
        invocation: Invocation,
        lambda_arn: String,
        config: TransformSpec,
        metrics: Arc<StreamMetrics>,
        label: String,
    ) -> Self {
        Transform {
            runtime,
            invocation,
            lambda_arn,
            config,
            metrics,
            label,
        }
    }

    pub(crate) fn config(&self) -> &TransformSpec {
        &self.config
    }

    /// Runs `records` through the function; one outcome per record, in order. Encoding the
    /// request and checking the response run on the blocking pool.
    pub(crate) async fn process(&mut self, records: &Arc<[Record]>) -> Vec<RecordOutcome> {
        if records.is_empty() {
            return Vec::new();
        }
        let attempts = self.config.number_of_retries + 1;
        let mut last = InvokeError::Function("not invoked".into());
        let mut made = 0;
        for attempt in 1..=attempts {
            made = attempt;
            match self.invoke(records).await {
                Ok(verdicts) => return self.outcomes(records, verdicts, attempt),
                Err(Attempt::Hopeless(e)) => {
                    last = e;
                    break;
                }
                Err(Attempt::Failed(e)) => {
                    self.metrics.transform_failed_invocations.add(1);
                    tracing::warn!(transform = %self.label, attempt, attempts,
                        records = records.len(), code = e.code(), error = %e.message(),
                        "transform invocation failed");
                    last = e;
                }
                Err(Attempt::NotMade(e)) => last = e,
            }
        }
        self.failed_batch(records, last, made).await
    }

    /// One invocation: the request, the call within the timeout, the response checked.
    async fn invoke(&mut self, records: &Arc<[Record]>) -> Result<Vec<Verdict>, Attempt> {
        let timeout = Duration::from_secs(self.config.timeout_seconds);
        let id = uuid::Uuid::new_v4().hyphenated().to_string();
        let (inv, recs) = (self.invocation.clone(), records.clone());
        let request = tokio::task::spawn_blocking(move || contract::request(&inv, &id, &recs))
            .await
            .map_err(|e| {
                Attempt::NotMade(InvokeError::Function(format!(
                    "building the request failed: {e}"
                )))
            })?;
        if request.len() > contract::MAX_REQUEST_BYTES {
            // Only a single record can get here (batches are cut before the limit): no
            // function can be invoked with it, retrying changes nothing.
            return Err(Attempt::Hopeless(InvokeError::Function(format!(
                "the request of {} bytes is over the {} bytes Lambda payload limit",
                request.len(),
                contract::MAX_REQUEST_BYTES
            ))));
        }
        let started = Instant::now();
        let answer = match &mut self.runtime {
            Runtime::Subprocess(s) => s.call(&request, timeout).await,
            Runtime::Wasm(w) => w.call(request, timeout).await,
        };
        self.metrics.transform_invocations.add(1);
        self.metrics
            .transform_duration_ms
            .add(started.elapsed().as_millis() as u64);
        let body = answer.map_err(Attempt::Failed)?;
        let recs = records.clone();
        tokio::task::spawn_blocking(move || contract::parse_response(&recs, &body))
            .await
            .unwrap_or_else(|e| {
                Err(InvokeError::Function(format!(
                    "checking the response failed: {e}"
                )))
            })
            .map_err(Attempt::Failed)
    }

    /// Every record of a batch whose invocations all failed, as a processing-failed error
    /// record with the last failure.
    async fn failed_batch(
        &self,
        records: &Arc<[Record]>,
        last: InvokeError,
        made: u32,
    ) -> Vec<RecordOutcome> {
        let failure = LambdaFailure {
            code: last.code(),
            message: last.message().to_string(),
            attempts: made,
            ending_ms: now_ms(),
        };
        self.metrics
            .transform_failed_records
            .add(records.len() as u64);
        let build = |recs: &[Record], failure: &LambdaFailure, arn: &str| -> Vec<RecordOutcome> {
            recs.iter()
                .map(|r| RecordOutcome::Failed(processing_failed(r, failure, arn)))
                .collect()
        };
        let (recs, arn, f) = (records.clone(), self.lambda_arn.clone(), failure.clone());
        match tokio::task::spawn_blocking(move || build(&recs, &f, &arn)).await {
            Ok(outcomes) => outcomes,
            // No blocking pool (shutting down): build them here, one outcome per record.
            Err(_) => build(records, &failure, &self.lambda_arn),
        }
    }

    fn outcomes(
        &self,
        records: &[Record],
        verdicts: Vec<Verdict>,
        attempt: u32,
    ) -> Vec<RecordOutcome> {
        let ending_ms = now_ms();
        records
            .iter()
            .zip(verdicts)
            .map(|(r, v)| match v {
                Verdict::Ok(data, keys) => {
                    self.metrics.transform_ok_records.add(1);
                    self.metrics.transform_ok_bytes.add(data.len() as u64);
                    RecordOutcome::Deliver(
                        Record {
                            data,
                            arrival_ms: r.arrival_ms,
                            seq: r.seq,
                            sub: r.sub,
                            kinesis: r.kinesis.clone(),
                        },
                        keys,
                    )
                }
                Verdict::Dropped => {
                    self.metrics.transform_dropped_records.add(1);
                    RecordOutcome::Dropped
                }
                Verdict::ProcessingFailed => {
                    self.metrics.transform_failed_records.add(1);
                    let failure = LambdaFailure {
                        code: "Lambda.ProcessingFailedStatus",
                        message: "ProcessingFailed status set for record".into(),
                        attempts: attempt,
                        ending_ms,
                    };
                    RecordOutcome::Failed(processing_failed(r, &failure, &self.lambda_arn))
                }
            })
            .collect()
    }

    /// Stops the runtime (the subprocess is terminated and reaped).
    pub(crate) async fn close(&mut self) {
        if let Runtime::Subprocess(s) = &mut self.runtime {
            s.close().await;
        }
    }
}

/// What a stream's transform is built from.
pub(crate) struct Setup<'a> {
    pub(crate) stream: &'a str,
    pub(crate) stream_arn: &'a str,
    pub(crate) region: &'a str,
    pub(crate) account_id: &'a str,
    /// The source stream's ARN, for a Kinesis source.
    pub(crate) kinesis_stream_arn: Option<String>,
    pub(crate) metrics: Arc<StreamMetrics>,
}

/// Why a stream's transform could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransformStartError {
    #[error("cannot start the transform command {command:?}")]
    Spawn {
        command: Vec<String>,
        #[source]
        source: std::io::Error,
    },
    #[error("loading the WASM module failed: {0}")]
    Interrupted(String),
    #[error(transparent)]
    Wasm(#[from] wasm::WasmLoadError),
}

/// Starts the stream's transform, one runtime per invocation that may be in flight
/// (`concurrency`): each child process is started (a command that cannot start fails the
/// start-up); the WASM module is compiled once and instantiated per invocation.
pub(crate) async fn build(
    config: &TransformSpec,
    setup: Setup<'_>,
) -> Result<Vec<Transform>, TransformStartError> {
    let lambda_arn = config.lambda_arn(setup.region, setup.account_id, setup.stream);
    let label = format!("{}/transform", setup.stream);
    let count = config.concurrency.max(1) as usize;
    let runtimes: Vec<Runtime> = match &config.runtime {
        crate::spec::Runtime::Subprocess {
            command,
            env,
            working_directory,
        } => {
            let spec = subprocess::Spec {
                command: command.clone(),
                env: subprocess_env(config, &setup, &lambda_arn, env),
                working_directory: working_directory.clone(),
                label: label.clone(),
            };
            let mut started = Vec::with_capacity(count);
            for _ in 0..count {
                let mut s = subprocess::Subprocess::new(spec.clone());
                s.start().map_err(|source| TransformStartError::Spawn {
                    command: command.clone(),
                    source,
                })?;
                started.push(Runtime::Subprocess(Box::new(s)));
            }
            started
        }
        crate::spec::Runtime::Wasm {
            module,
            max_memory_mib,
        } => {
            let (module, mem, l) = (module.clone(), *max_memory_mib, label.clone());
            let loaded =
                tokio::task::spawn_blocking(move || wasm::WasmTransform::load(&module, mem, &l))
                    .await
                    .map_err(|e| TransformStartError::Interrupted(e.to_string()))??;
            (0..count).map(|_| Runtime::Wasm(loaded.clone())).collect()
        }
    };
    let invocation = Invocation {
        delivery_stream_arn: setup.stream_arn.to_string(),
        region: setup.region.to_string(),
        source_kinesis_stream_arn: setup.kinesis_stream_arn.clone(),
    };
    Ok(runtimes
        .into_iter()
        .map(|runtime| {
            Transform::new(
                runtime,
                invocation.clone(),
                lambda_arn.clone(),
                config.clone(),
                setup.metrics.clone(),
                label.clone(),
            )
        })
        .collect())
}

/// The environment of a transform's child: the Lambda runtime's variables, then the user's.
fn subprocess_env(
    config: &TransformSpec,
    setup: &Setup<'_>,
    lambda_arn: &str,
    user: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    // The segment after `:function:` as it is (a stream name may hold dots, which Lambda's
    // function names may not, but `firehosed-<stream>` is still the name to show).
    let function_name = lambda_arn
        .split_once(":function:")
        .map_or("firehosed", |(_, rest)| {
            rest.split(':').next().unwrap_or(rest)
        });
    let timeout_ms = (config.timeout_seconds * 1000).to_string();
    let mut full = std::collections::BTreeMap::new();
    for (k, v) in [
        ("FIREHOSED_STREAM", setup.stream),
        ("FIREHOSED_TIMEOUT_MS", &timeout_ms),
        ("FIREHOSED_FUNCTION_ARN", lambda_arn),
        ("AWS_LAMBDA_FUNCTION_NAME", function_name),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_REGION", setup.region),
    ] {
        full.insert(k.to_string(), v.to_string());
    }
    full.extend(user.clone());
    full
}
