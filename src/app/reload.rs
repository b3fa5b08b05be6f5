//! Reloading the configuration file (SIGHUP): streams added start, streams removed drain and
//! go, streams whose configuration changed drain on the old one and start again on the new
//! one from the same spool with the next version (their objects' names carry it, as AWS's
//! do). An invalid file is logged with every problem and changes nothing; settings outside
//! `delivery_streams` need a restart and are reported as such.

use std::path::Path;

use super::network::Network;
use crate::config::{Config, LoadError};
use crate::streams::{Refused, Streams, Summary};

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReloadError {
    #[error(transparent)]
    Invalid(#[from] LoadError),
    #[error(transparent)]
    Refused(#[from] Refused),
}

/// Reads `path` again and applies its delivery streams; Err (nothing changed) when the file
/// is invalid.
pub(super) async fn reload(
    streams: &Streams,
    network: &Network,
    path: &Path,
    overrides: &crate::config::Overrides,
) -> Result<Summary, ReloadError> {
    let new = crate::config::load_with(path, overrides)?;
    warn_restart_only(streams.file_config(), &new);
    // Keys, policies and the certificate: read again whatever else changed.
    network.reload(&new);
    Ok(streams.apply_file(&new.streams).await?)
}

/// `auth` without its policies (which a reload applies).
fn auth_kind(auth: &crate::config::AuthConfig) -> Option<&Path> {
    match auth {
        crate::config::AuthConfig::SigV4 {
            credentials_file, ..
        } => Some(credentials_file),
        crate::config::AuthConfig::Unset | crate::config::AuthConfig::None => None,
    }
}

/// Settings only a restart applies.
fn warn_restart_only(old: &Config, new: &Config) {
    let differs = [
        ("listen", old.listen != new.listen),
        ("metrics_listen", old.metrics_listen != new.metrics_listen),
        ("server", old.server != new.server),
        // Turning auth or TLS on or off, or other files; policies and the files' contents are
        // reloaded.
        ("auth", auth_kind(&old.auth) != auth_kind(&new.auth)),
        ("tls", old.tls != new.tls),
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
            "api_s3_directory",
            old.api_s3_directory != new.api_s3_directory,
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
