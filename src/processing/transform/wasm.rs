//! The WASM runtime (docs/transform.md, "WASM ABI"): the module is compiled once; each
//! invocation gets a fresh instance with a memory limit and an epoch deadline, on the blocking
//! pool.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::{
    Caller, Config, Engine, Extern, InstancePre, Linker, Module, Store, StoreLimits,
    StoreLimitsBuilder, Trap, ValType,
};

use super::contract::{InvokeError, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES};

/// One epoch tick: the resolution of the time limit.
const TICK: Duration = Duration::from_millis(10);

struct State {
    limits: StoreLimits,
    label: Arc<str>,
    /// firehose.log lines left for this invocation.
    log_budget: u32,
}

/// firehose.log lines passed to the log per invocation (the rest are counted, not written).
const LOG_LINES: u32 = 100;

#[derive(Clone)]
pub(crate) struct WasmTransform {
    engine: Engine,
    pre: InstancePre<State>,
    max_memory_bytes: usize,
    label: Arc<str>,
}

/// The process's engine, with a thread that advances its epoch every `TICK` (made together:
/// an engine without its ticker would never time out).
fn engine() -> Result<Engine, WasmLoadError> {
    static ENGINE: OnceLock<Result<Engine, WasmLoadError>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.epoch_interruption(true);
            let engine =
                Engine::new(&config).map_err(|e| WasmLoadError::Engine(format!("{e:#}")))?;
            let ticker = engine.clone();
            std::thread::Builder::new()
                .name("wasm-epoch".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(TICK);
                        ticker.increment_epoch();
                    }
                })
                .map_err(|e| WasmLoadError::Ticker(e.to_string()))?;
            Ok(engine)
        })
        .clone()
}

impl WasmTransform {
    /// Compiles the module (`.wasm` or `.wat`) and checks its exports against the ABI.
    /// Blocking: compilation takes CPU time.
    pub(crate) fn load(
        path: &Path,
        max_memory_mib: u64,
        label: &str,
    ) -> Result<Self, WasmLoadError> {
        let engine = engine()?;
        let shown = || path.display().to_string();
        let module = Module::from_file(&engine, path).map_err(|e| WasmLoadError::Load {
            path: shown(),
            detail: format!("{e:#}"),
        })?;
        check_exports(&module).map_err(|problem| WasmLoadError::Abi {
            path: shown(),
            problem,
        })?;
        let mut linker: Linker<State> = Linker::new(&engine);
        linker
            .func_wrap(
                "firehose",
                "log",
                |mut caller: Caller<'_, State>, ptr: i32, len: i32| {
                    if caller.data().log_budget == 0 {
                        return;
                    }
                    caller.data_mut().log_budget -= 1;
                    let label = caller.data().label.clone();
                    if let Some(Extern::Memory(m)) = caller.get_export("memory") {
                        let data = m.data(&caller);
                        let (start, end) = (ptr as u32 as usize, (ptr as u32 as usize).saturating_add(len as u32 as usize));
                        if let Some(bytes) = data.get(start..end.min(start + 8192)) {
                            tracing::info!(transform = %label, "{}", String::from_utf8_lossy(bytes).trim_end());
                        }
                    }
                },
            )
            .map_err(|e| WasmLoadError::Link(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| WasmLoadError::Imports {
                path: shown(),
                detail: e.to_string(),
            })?;
        Ok(WasmTransform {
            engine,
            pre,
            max_memory_bytes: (max_memory_mib * 1024 * 1024) as usize,
            label: label.into(),
        })
    }

    /// Runs one invocation on the blocking pool.
    pub(crate) async fn call(
        &self,
        request: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, InvokeError> {
        let this = self.clone();
        match tokio::task::spawn_blocking(move || this.call_blocking(&request, timeout)).await {
            Ok(r) => r,
            Err(e) => Err(InvokeError::Function(format!(
                "the WASM invocation failed: {e}"
            ))),
        }
    }

    fn call_blocking(&self, request: &[u8], timeout: Duration) -> Result<Vec<u8>, InvokeError> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.max_memory_bytes)
            .memories(1)
            .tables(4)
            .table_elements(1 << 20)
            .instances(1)
            .build();
        let mut store = Store::new(
            &self.engine,
            State {
                limits,
                label: self.label.clone(),
                log_budget: LOG_LINES,
            },
        );
        store.limiter(|s| &mut s.limits);
        let ticks = (timeout.as_millis() / TICK.as_millis()).max(1) as u64 + 1;
        store.set_epoch_deadline(ticks);
        let instance = self.pre.instantiate(&mut store).map_err(failure)?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| InvokeError::Function("the module exports no memory".into()))?;
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, "firehose_alloc")
            .map_err(failure)?;
        let transform = instance
            .get_typed_func::<(i32, i32), i64>(&mut store, "firehose_transform")
            .map_err(failure)?;
        if request.len() > MAX_REQUEST_BYTES * 2 {
            return Err(InvokeError::Function("the request is too large".into()));
        }
        let len = request.len() as i32;
        let ptr = alloc.call(&mut store, len).map_err(failure)?;
        memory
            .write(&mut store, ptr as u32 as usize, request)
            .map_err(|_| {
                InvokeError::Function(format!(
                    "firehose_alloc({len}) returned {ptr}, outside the module's memory"
                ))
            })?;
        let packed = transform.call(&mut store, (ptr, len)).map_err(failure)?;
        let (out_ptr, out_len) = (
            (packed as u64 >> 32) as usize,
            (packed as u64 & 0xffff_ffff) as usize,
        );
        if out_len > MAX_RESPONSE_BYTES {
            return Err(InvokeError::Function(format!(
                "the transform's response is longer than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        let data = memory.data(&store);
        data.get(out_ptr..out_ptr + out_len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| {
                InvokeError::Function(format!(
                    "the response range {out_ptr}+{out_len} is outside the module's memory"
                ))
            })
    }
}

/// A trap or a link error as the Lambda error it stands for.
fn failure(e: wasmtime::Error) -> InvokeError {
    if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return InvokeError::TimedOut("the WASM transform ran past timeout_seconds".into());
    }
    InvokeError::Function(format!("the WASM transform failed: {e:#}"))
}

/// Why a WASM module cannot be a transform.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum WasmLoadError {
    #[error("cannot start the WASM engine: {0}")]
    Engine(String),
    #[error("cannot start the WASM epoch thread: {0}")]
    Ticker(String),
    #[error("cannot load the WASM module {path}: {detail}")]
    Load { path: String, detail: String },
    #[error("WASM module {path}: {problem}")]
    Abi { path: String, problem: AbiProblem },
    #[error("cannot link the WASM module: {0}")]
    Link(String),
    #[error("WASM module {path}: {detail} (a module may import only firehose.log)")]
    Imports { path: String, detail: String },
}

/// How a module's exports miss the ABI (docs/transform.md).
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum AbiProblem {
    #[error("it does not export {0}")]
    Missing(&'static str),
    #[error("its export {0} is not a function")]
    NotAFunction(&'static str),
    #[error("its export {0} has the wrong signature (see docs/transform.md)")]
    Signature(&'static str),
    #[error("it does not export its memory as `memory`")]
    NoMemory,
}

fn check_exports(module: &Module) -> Result<(), AbiProblem> {
    let func =
        |name: &'static str, params: &[ValType], results: &[ValType]| -> Result<(), AbiProblem> {
            let Some(ty) = module.get_export(name) else {
                return Err(AbiProblem::Missing(name));
            };
            let Some(f) = ty.func() else {
                return Err(AbiProblem::NotAFunction(name));
            };
            let p: Vec<_> = f.params().collect();
            let r: Vec<_> = f.results().collect();
            let same = |a: &[ValType], b: &[ValType]| {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| ValType::eq(x, y))
            };
            if !same(&p, params) || !same(&r, results) {
                return Err(AbiProblem::Signature(name));
            }
            Ok(())
        };
    if module
        .get_export("memory")
        .and_then(|e| e.memory().cloned())
        .is_none()
    {
        return Err(AbiProblem::NoMemory);
    }
    func("firehose_alloc", &[ValType::I32], &[ValType::I32])?;
    func(
        "firehose_transform",
        &[ValType::I32, ValType::I32],
        &[ValType::I64],
    )
}
