//! The `firehosed` command: `run` and `validate`.

#![warn(clippy::too_many_lines)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "firehosed",
    version,
    about = "Amazon Data Firehose on a VM you own and inside test suites"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        /// The YAML configuration file.
        #[arg(short, long, env = "FIREHOSED_CONFIG")]
        config: PathBuf,
        /// Log lines on stderr: `text` for people, `json` (one object per line with
        /// structured fields) for journald / log shippers.
        #[arg(long, value_enum, default_value = "text", env = "FIREHOSED_LOG_FORMAT")]
        log_format: LogFormat,
        /// Listen here instead of the file's `listen` (port 0: a free port, printed on
        /// stdout as `firehosed listening on http://ADDR`).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Keep state here instead of the file's `state_dir`.
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Check a configuration file and report every problem.
    Validate {
        /// The YAML configuration file.
        #[arg(short, long, env = "FIREHOSED_CONFIG")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    firehosed::allocator::limit_heap_retention();
    if !die_with_parent() {
        eprintln!("error: the process that started firehosed (FIREHOSED_PARENT_PID) is gone");
        return ExitCode::from(1);
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { config } => match firehosed::config::load(&config)
            .map_err(anyhow::Error::from)
            .and_then(|c| firehosed::app::check_network(&c).map(|()| c))
        {
            Ok(c) => {
                println!("ok: {} delivery streams", c.stream_count());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
        Command::Run {
            config,
            log_format,
            listen,
            state_dir,
        } => {
            let overrides = firehosed::config::Overrides { listen, state_dir };
            run(&config, &overrides, log_format)
        }
    }
}

fn run(
    path: &std::path::Path,
    overrides: &firehosed::config::Overrides,
    log_format: LogFormat,
) -> ExitCode {
    init_logging(log_format);
    let config = match firehosed::config::load_with(path, overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("error: {} is not a valid configuration", path.display());
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(watch_signals(tx, reload_tx));
        let reload = firehosed::app::Reload {
            path: path.to_path_buf(),
            overrides: overrides.clone(),
            requests: reload_rx,
        };
        firehosed::app::run(
            config,
            async {
                let _ = rx.await;
            },
            Some(reload),
        )
        .await
    });
    // A blocking task may still be waiting (a staging write on a full disk): the exit does not
    // wait for it; what it held is replayed after the next start.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The first SIGTERM/SIGINT starts the drain; a second one exits at once. SIGHUP asks for the
/// configuration file to be read again (requests that arrive during a reload fold into one).
async fn watch_signals(
    first: tokio::sync::oneshot::Sender<()>,
    reload: tokio::sync::mpsc::Sender<()>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reading the configuration again");
                let _ = reload.try_send(());
            }
        }
    }
    tracing::info!("shutdown signal received; draining (send it again to exit at once)");
    let _ = first.send(());
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::warn!("second shutdown signal: exiting without finishing the drain");
    std::process::exit(130);
}

/// `info`, but the SDK's credential chain only at `error`: it warns once per provider it tries,
/// and a missing key is reported in one line by the start-up check (RUST_LOG overrides).
const DEFAULT_LOG_FILTER: &str = "info,aws_config::meta::credentials=error";

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

/// With `FIREHOSED_PARENT_PID=<pid>` (the Python test helper sets it), the daemon is killed when
/// the thread that started it ends, so a test runner killed mid-test leaves no daemon behind
/// (Linux's PR_SET_PDEATHSIG, set here rather than between fork and exec in the parent, where a
/// multi-threaded test process could deadlock). False when that parent is already gone: the
/// signal would never come.
fn die_with_parent() -> bool {
    let Some(parent) = std::env::var("FIREHOSED_PARENT_PID")
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
    else {
        return true;
    };
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid take no pointers; called before any thread.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::getppid() == parent
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = parent;
        true
    }
}
