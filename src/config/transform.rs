//! `processing.transform`: the Lambda-contract transform (docs/transform.md).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::decode::{Ctx, MapReader, Path};
use super::destination::{int_or, optional_string};
use super::yaml::{Kind, Node};
use crate::spec::check::{self, Checker};
use crate::spec::{Runtime, TransformSpec};

/// A `lambda_functions` entry: the local stand-in for a Lambda function that
/// CreateDeliveryStream's Lambda processors name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LambdaFunction {
    pub(crate) runtime: Runtime,
    pub(crate) timeout_seconds: u64,
    /// Invocations in flight at once per stream that uses it (`transform.concurrency`).
    pub(crate) concurrency: u32,
}

/// A `lambda_functions` entry: `subprocess` or `wasm`, `timeout_seconds`, `concurrency`.
pub(crate) fn decode_function(ctx: &mut Ctx, node: &Node, path: Path) -> Option<LambdaFunction> {
    let mut m = MapReader::new(ctx, node, path)?;
    let runtime = runtime(ctx, &mut m);
    let timeout_seconds = int_or(ctx, &mut m, "timeout_seconds", 60);
    let concurrency = int_or(ctx, &mut m, "concurrency", 1);
    let base = m.path.clone();
    m.finish(ctx);
    let runtime = runtime?;
    // The rules of a stream's transform, which this function becomes.
    let mut c = Checker::default();
    check::runtime(&mut c, &Path::root(), &runtime);
    c.range(
        Path::root().key("timeout_seconds"),
        timeout_seconds,
        1..=900,
    );
    c.range(
        Path::root().key("concurrency"),
        concurrency,
        check::CONCURRENCY,
    );
    let failed = !c.problems.is_empty();
    ctx.report(&base, c.problems);
    (!failed).then(|| LambdaFunction {
        runtime,
        timeout_seconds,
        concurrency: u32::try_from(concurrency).unwrap_or(u32::MAX),
    })
}

/// `subprocess` or `wasm`; None (with both keys marked broken) when it cannot be read.
fn runtime(ctx: &mut Ctx, m: &mut MapReader) -> Option<Runtime> {
    let subprocess = m.get("subprocess");
    let wasm = m.get("wasm");
    let runtime = match (subprocess, wasm) {
        (Some(n), None) => decode_subprocess(ctx, n, m.path.key("subprocess")),
        (None, Some(n)) => decode_wasm(ctx, n, m.path.key("wasm")),
        _ => {
            ctx.note(
                m.mark(),
                &m.path,
                "exactly one of subprocess, wasm is required",
            );
            None
        }
    };
    if runtime.is_none() {
        for key in ["subprocess", "wasm"] {
            ctx.broken(&m.path.key(key));
        }
    }
    runtime
}

const MIB: f64 = 1024.0 * 1024.0;

/// `processing.transform`.
pub(crate) fn decode(ctx: &mut Ctx, node: &Node, path: Path) -> Option<TransformSpec> {
    let mut m = MapReader::new(ctx, node, path)?;
    let runtime = runtime(ctx, &mut m);
    let d = TransformSpec::with_defaults(Runtime::Wasm {
        module: PathBuf::new(),
        max_memory_mib: 128,
    });
    let buffer_bytes = match m.get("buffer_size_mib") {
        Some(n) => ctx
            .number(n, &m.path.key("buffer_size_mib"))
            .map_or(d.buffer_bytes, |v| (v * MIB).round() as u64),
        None => d.buffer_bytes,
    };
    let buffer_interval_seconds = int_or(
        ctx,
        &mut m,
        "buffer_interval_seconds",
        d.buffer_interval_seconds,
    );
    let number_of_retries = int_or(
        ctx,
        &mut m,
        "number_of_retries",
        u64::from(d.number_of_retries),
    );
    let timeout_seconds = int_or(ctx, &mut m, "timeout_seconds", d.timeout_seconds);
    let concurrency = int_or(ctx, &mut m, "concurrency", u64::from(d.concurrency));
    let lambda_arn = optional_string(ctx, &mut m, "lambda_arn");
    m.finish(ctx);
    // A runtime that cannot be read stands in (its keys are broken): the rest is judged.
    let runtime = runtime.unwrap_or(Runtime::Wasm {
        module: PathBuf::new(),
        max_memory_mib: 128,
    });
    Some(TransformSpec {
        runtime,
        buffer_bytes,
        buffer_interval_seconds,
        number_of_retries: u32::try_from(number_of_retries).unwrap_or(u32::MAX),
        timeout_seconds,
        concurrency: u32::try_from(concurrency).unwrap_or(u32::MAX),
        lambda_arn,
    })
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
        Some(out)
    });
    let env = match m.get("env") {
        Some(n) => decode_env(ctx, n, m.path.key("env")),
        None => Some(BTreeMap::new()),
    };
    let working_directory = optional_string(ctx, &mut m, "working_directory").map(PathBuf::from);
    m.finish(ctx);
    Some(Runtime::Subprocess {
        command: command?,
        env: env?,
        working_directory,
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
        ctx.mark(&vpath, k.mark);
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
    let max_memory_mib = int_or(ctx, &mut m, "max_memory_mib", 128);
    m.finish(ctx);
    Some(Runtime::Wasm {
        module: module?,
        max_memory_mib,
    })
}
