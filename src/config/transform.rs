//! `processing.transform`: the Lambda-contract transform (docs/transform.md).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::decode::{Ctx, MapReader, Path};
use super::yaml::{Kind, Node};

#[derive(Debug, Clone, PartialEq)]
pub struct TransformConfig {
    pub runtime: Runtime,
    /// Record bytes per invocation (before base64): 0.2-3 MiB, default 1 MiB.
    pub buffer_bytes: u64,
    pub buffer_interval_seconds: u64,
    pub number_of_retries: u32,
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Runtime {
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

pub fn decode(ctx: &mut Ctx, node: &Node, path: Path) -> Option<TransformConfig> {
    let mut m = MapReader::new(ctx, node, path)?;
    let subprocess = m.get("subprocess");
    let wasm = m.get("wasm");
    let runtime = match (subprocess, wasm) {
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
    };
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
    m.finish(ctx);
    Some(TransformConfig {
        runtime: runtime?,
        buffer_bytes: buffer_bytes?,
        buffer_interval_seconds: interval?,
        number_of_retries: retries? as u32,
        timeout_seconds: timeout?,
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
    let Kind::Map(entries) = &node.kind else {
        ctx.error(
            node.mark,
            &path,
            format!("expected a mapping, got {}", node.describe()),
        );
        return None;
    };
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
