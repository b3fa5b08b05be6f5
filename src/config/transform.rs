//! `processing.transform`: the Lambda-contract transform (docs/transform.md).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::decode::{Ctx, MapReader, Path};
use super::yaml::{Kind, Node};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TransformConfig {
    pub(crate) runtime: Runtime,
    /// Record bytes per invocation (before base64): 0.2-3 MiB, default 1 MiB.
    pub(crate) buffer_bytes: u64,
    pub(crate) buffer_interval_seconds: u64,
    pub(crate) number_of_retries: u32,
    pub(crate) timeout_seconds: u64,
    /// Invocations in flight at once (1-32, default 1): each has its own runtime (a child
    /// process, or a WASM instance), and their outcomes are taken in log order.
    pub(crate) concurrency: u32,
    /// `lambda_arn`: the function this transform stands in for (DescribeDeliveryStream's
    /// LambdaArn, the request's `lambdaArn`); `firehosed-<stream>` in the daemon's region and
    /// account when unset.
    pub(crate) lambda_arn: Option<String>,
}

impl TransformConfig {
    /// The Lambda ARN the transform answers to.
    pub(crate) fn lambda_arn(&self, region: &str, account_id: &str, stream: &str) -> String {
        match &self.lambda_arn {
            Some(arn) => arn.clone(),
            None => format!("arn:aws:lambda:{region}:{account_id}:function:firehosed-{stream}"),
        }
    }
}

/// A `lambda_functions` entry: the local stand-in for a Lambda function that
/// CreateDeliveryStream's Lambda processors name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LambdaFunction {
    pub(crate) runtime: Runtime,
    pub(crate) timeout_seconds: u64,
    /// Invocations in flight at once per stream that uses it (`transform.concurrency`).
    pub(crate) concurrency: u32,
}

impl LambdaFunction {
    /// The function as `processing.transform` keys (config shape), for an API stream.
    pub(crate) fn shape(&self) -> serde_json::Value {
        use serde_json::json;
        let runtime = match &self.runtime {
            Runtime::Subprocess {
                command,
                env,
                working_directory,
            } => {
                let mut s = json!({"command": command, "env": env});
                if let Some(dir) = working_directory {
                    s["working_directory"] = json!(dir.display().to_string());
                }
                json!({"subprocess": s})
            }
            Runtime::Wasm {
                module,
                max_memory_mib,
            } => json!({"wasm": {
                "module": module.display().to_string(),
                "max_memory_mib": max_memory_mib,
            }}),
        };
        let mut out = runtime;
        out["timeout_seconds"] = json!(self.timeout_seconds);
        out["concurrency"] = json!(self.concurrency);
        out
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

/// A `lambda_functions` entry: `subprocess` or `wasm`, and `timeout_seconds`.
pub(crate) fn decode_function(ctx: &mut Ctx, node: &Node, path: Path) -> Option<LambdaFunction> {
    let mut m = MapReader::new(ctx, node, path)?;
    let runtime = runtime(ctx, &mut m);
    let timeout = int(ctx, &mut m, "timeout_seconds", 1..=900, 60);
    let concurrency = int(ctx, &mut m, "concurrency", CONCURRENCY, 1);
    m.finish(ctx);
    Some(LambdaFunction {
        runtime: runtime?,
        timeout_seconds: timeout?,
        concurrency: concurrency? as u32,
    })
}

fn runtime(ctx: &mut Ctx, m: &mut MapReader) -> Option<Runtime> {
    let subprocess = m.get("subprocess");
    let wasm = m.get("wasm");
    match (subprocess, wasm) {
        (Some(n), None) => decode_subprocess(ctx, n, m.path.key("subprocess")),
        (None, Some(n)) => decode_wasm(ctx, n, m.path.key("wasm")),
        _ => {
            ctx.error(
                m.mark(),
                &m.path,
                "exactly one of subprocess, wasm is required",
            );
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Runtime {
    Subprocess {
        command: Vec<String>,
        env: BTreeMap<String, String>,
        working_directory: Option<PathBuf>,
    },
    Wasm {
        module: PathBuf,
        max_memory_mib: u64,
    },
}

const MIB: f64 = 1024.0 * 1024.0;

/// `concurrency`: invocations in flight per stream. AWS runs one per source shard for Kinesis
/// and scales Direct PUT's; locally each is a process or an instance, so it is capped.
const CONCURRENCY: std::ops::RangeInclusive<u64> = 1..=32;

pub(crate) fn decode(ctx: &mut Ctx, node: &Node, path: Path) -> Option<TransformConfig> {
    let mut m = MapReader::new(ctx, node, path)?;
    let runtime = runtime(ctx, &mut m);
    let buffer_bytes = match m.get("buffer_size_mib") {
        Some(n) => {
            let path = m.path.key("buffer_size_mib");
            ctx.scalar(n, &path)
                .and_then(|text| match text.trim().parse::<f64>() {
                    Ok(v) if (0.2..=3.0).contains(&v) => Some((v * MIB).round() as u64),
                    _ => {
                        ctx.error(
                            n.mark,
                            &path,
                            format!("must be a number 0.2..=3 (got {text:?})"),
                        );
                        None
                    }
                })
        }
        None => Some(1024 * 1024),
    };
    let interval = int(ctx, &mut m, "buffer_interval_seconds", 0..=900, 60);
    let retries = int(ctx, &mut m, "number_of_retries", 0..=300, 3);
    let timeout = int(ctx, &mut m, "timeout_seconds", 1..=900, 60);
    let concurrency = int(ctx, &mut m, "concurrency", CONCURRENCY, 1);
    let lambda_arn = match m.get("lambda_arn") {
        Some(n) => {
            let path = m.path.key("lambda_arn");
            ctx.string(n, &path).and_then(|arn| {
                if function_name(&arn).is_some() {
                    Some(Some(arn))
                } else {
                    ctx.error(
                        n.mark,
                        &path,
                        format!("must be a Lambda function ARN, arn:aws:lambda:REGION:ACCOUNT:function:NAME (got {arn:?})"),
                    );
                    None
                }
            })
        }
        None => Some(None),
    };
    m.finish(ctx);
    Some(TransformConfig {
        lambda_arn: lambda_arn?,
        runtime: runtime?,
        buffer_bytes: buffer_bytes?,
        buffer_interval_seconds: interval?,
        number_of_retries: retries? as u32,
        timeout_seconds: timeout?,
        concurrency: concurrency? as u32,
    })
}

fn int(
    ctx: &mut Ctx,
    m: &mut MapReader,
    key: &'static str,
    range: std::ops::RangeInclusive<u64>,
    default: u64,
) -> Option<u64> {
    match m.get(key) {
        Some(n) => ctx.int_in(n, &m.path.key(key), range),
        None => Some(default),
    }
}

fn decode_subprocess(ctx: &mut Ctx, node: &Node, path: Path) -> Option<Runtime> {
    let mut m = MapReader::new(ctx, node, path)?;
    let command = m.require(ctx, "command").and_then(|n| {
        let path = m.path.key("command");
        let items = ctx.list(n, &path)?;
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            out.push(ctx.string(item, &path.index(i))?);
        }
        if out.is_empty() || out[0].is_empty() {
            ctx.error(
                n.mark,
                &path,
                "needs the program to run, then its arguments",
            );
            return None;
        }
        Some(out)
    });
    let env = match m.get("env") {
        Some(n) => decode_env(ctx, n, m.path.key("env")),
        None => Some(BTreeMap::new()),
    };
    let working_directory = match m.get("working_directory") {
        Some(n) => ctx
            .string(n, &m.path.key("working_directory"))
            .map(|s| Some(PathBuf::from(s))),
        None => Some(None),
    };
    m.finish(ctx);
    Some(Runtime::Subprocess {
        command: command?,
        env: env?,
        working_directory: working_directory?,
    })
}

fn decode_env(ctx: &mut Ctx, node: &Node, path: Path) -> Option<BTreeMap<String, String>> {
    let entries = ctx.entries(node, &path, "of variable names to values")?;
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (k, v) in entries {
        let Kind::Scalar { value: name, .. } = &k.kind else {
            ctx.error(k.mark, &path, "variable names must be plain strings");
            ok = false;
            continue;
        };
        let vpath = path.key(name);
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            ctx.error(k.mark, &vpath, "is not a valid environment variable name");
            ok = false;
            continue;
        }
        match ctx.string(v, &vpath) {
            Some(value) => {
                out.insert(name.clone(), value);
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn decode_wasm(ctx: &mut Ctx, node: &Node, path: Path) -> Option<Runtime> {
    let mut m = MapReader::new(ctx, node, path)?;
    let module = m
        .require(ctx, "module")
        .and_then(|n| ctx.string(n, &m.path.key("module")))
        .map(PathBuf::from);
    let memory = int(ctx, &mut m, "max_memory_mib", 1..=4096, 128);
    m.finish(ctx);
    Some(Runtime::Wasm {
        module: module?,
        max_memory_mib: memory?,
    })
}
