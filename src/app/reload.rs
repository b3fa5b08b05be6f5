//! Reloading the configuration file (SIGHUP): streams added start, streams removed drain and
//! go, streams whose configuration changed drain on the old one and start again on the new
//! one from the same spool with the next version (their objects' names carry it, as AWS's
//! do). An invalid file is logged with every problem and changes nothing; settings outside
//! `delivery_streams` need a restart and are reported as such.

use std::path::Path;
use std::sync::Arc;

use crate::api::AppState;
use crate::config::Config;
use crate::control::{Origin, Record, Status, fingerprint};

/// What one reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

/// Reads `path` again and applies its delivery streams; Err (nothing changed) when the file
/// is invalid.
pub async fn reload(state: &Arc<AppState>, path: &Path) -> Result<Outcome, String> {
    let new = crate::config::load(path).map_err(|e| e.to_string())?;
    // For the whole reload: the open-file check below holds until its streams are in.
    let _admit = state.admission.lock().await;
    // What would run: the API streams, and the file's streams whose names they do not hold.
    let mut after = state.stream_configs();
    after.retain(|name, _| {
        state
            .control
            .get(name)
            .is_some_and(|r| r.origin == Origin::Api)
    });
    for sc in &new.streams {
        after.entry(sc.name.clone()).or_insert_with(|| sc.clone());
    }
    super::open_files::check(after.values())?;
    warn_restart_only(&state.builder.config, &new);
    let mut out = Outcome::default();
    let old_files: Vec<String> = state
        .control
        .names()
        .into_iter()
        .filter(|n| {
            state
                .control
                .get(n)
                .is_some_and(|r| r.origin == Origin::File)
        })
        .collect();
    for name in &old_files {
        if new.streams.iter().any(|s| s.name == *name) {
            continue;
        }
        let _one_change = state.change(name).await;
        if let Some(stream) = state.stream(name) {
            stream.close().await;
        }
        state.remove_stream(name);
        crate::control::remove_state(&state.builder.config.state_dir, name);
        state.control.remove(name);
        out.removed.push(name.clone());
    }
    for sc in &new.streams {
        let _one_change = state.change(&sc.name).await;
        match state.control.get(&sc.name) {
            Some(r) if r.origin == Origin::Api => {
                tracing::warn!(stream = %sc.name,
                    "the new configuration defines a stream created through the API: delete it through the API first; the file's definition is ignored until then");
            }
            Some(r) => {
                let running = state.stream(&sc.name);
                let print = fingerprint(sc);
                if running.is_some() && r.fingerprint.as_deref() == Some(print.as_str()) {
                    continue;
                }
                let version = r.version + 1;
                if let Some(old) = running {
                    old.close().await;
                }
                match state.builder.build(sc, version).await {
                    Ok(stream) => {
                        state.insert_stream(Arc::new(stream));
                        let _ = state.control.update(&sc.name, |r| {
                            r.version = version;
                            r.fingerprint = Some(print);
                            Ok(())
                        });
                        state.control.set_status(&sc.name, Status::Active);
                        out.changed.push(sc.name.clone());
                    }
                    Err(e) => {
                        state.remove_stream(&sc.name);
                        state
                            .control
                            .set_status(&sc.name, Status::Failed(format!("{e:#}")));
                        tracing::error!(stream = %sc.name, error = %format!("{e:#}"),
                            "the changed stream cannot start; its records stay in the spool");
                    }
                }
            }
            None => {
                let record = Record {
                    origin: Origin::File,
                    request: None,
                    version: 1,
                    tags: Default::default(),
                    created_ms: crate::record::now_ms(),
                    fingerprint: Some(fingerprint(sc)),
                    deleting: false,
                    status: Status::Creating,
                    config: Some(sc.clone()),
                };
                if !state.control.insert(&sc.name, record).unwrap_or(false) {
                    continue;
                }
                match state.builder.build(sc, 1).await {
                    Ok(stream) => {
                        state.insert_stream(Arc::new(stream));
                        state.control.set_status(&sc.name, Status::Active);
                        out.added.push(sc.name.clone());
                    }
                    Err(e) => {
                        state
                            .control
                            .set_status(&sc.name, Status::Failed(format!("{e:#}")));
                        tracing::error!(stream = %sc.name, error = %format!("{e:#}"),
                            "the added stream cannot start");
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Settings only a restart applies.
fn warn_restart_only(old: &Config, new: &Config) {
    let differs = [
        ("listen", old.listen != new.listen),
        ("state_dir", old.state_dir != new.state_dir),
        ("spool", old.spool != new.spool),
        ("aws", format!("{:?}", old.aws) != format!("{:?}", new.aws)),
        (
            "relax_aws_limits",
            old.relax_aws_limits != new.relax_aws_limits,
        ),
        (
            "glue_catalog_dir",
            old.glue_catalog_dir != new.glue_catalog_dir,
        ),
        (
            "lambda_functions",
            old.lambda_functions != new.lambda_functions,
        ),
        (
            "drain_timeout_seconds",
            old.drain_timeout_seconds != new.drain_timeout_seconds,
        ),
    ];
    for (key, changed) in differs {
        if changed {
            tracing::warn!(
                key,
                "this setting changed in the file; it takes effect at the next restart"
            );
        }
    }
}
