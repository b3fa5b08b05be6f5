//! What the server needs beyond the streams: the authenticator (credentials file and
//! policies), the TLS certificate, the connection cap. Read at start-up (and by `validate`),
//! read again on reload (key and certificate rotation).

use std::sync::Arc;
use std::time::Duration;

use crate::api::{ServeOptions, Tls, TlsError};
use crate::auth::Authenticator;
use crate::auth::credentials::CredentialsError;
use crate::config::{AuthConfig, Config};

/// Why the server cannot start as configured.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NetworkError {
    #[error("auth: {0}")]
    Credentials(#[from] CredentialsError),
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
}

/// Connections the metrics listener may hold (a scraper or two, a health checker).
const METRICS_CONNECTIONS: u64 = 64;

/// File descriptors kept for the daemon's own files (spool, staging, transforms' pipes, the
/// AWS clients' sockets) when the connection cap is derived from the open-file limit.
const OWN_FILES: u64 = 256;

/// The authenticator and certificate of a configuration.
pub(crate) struct Network {
    pub(crate) auth: Option<Arc<Authenticator>>,
    pub(crate) tls: Option<Arc<Tls>>,
}

impl Network {
    /// Reads the credentials file (refused when world-readable) and the certificate and key.
    pub(crate) fn load(config: &Config) -> Result<Network, NetworkError> {
        let auth = match &config.auth {
            AuthConfig::SigV4 {
                credentials_file,
                policies,
            } => Some(Arc::new(Authenticator::load(
                credentials_file.clone(),
                policies.clone(),
                config.aws.account_id.clone(),
            )?)),
            AuthConfig::Unset | AuthConfig::None => None,
        };
        let tls = config.tls.as_ref().map(Tls::load).transpose()?;
        Ok(Network { auth, tls })
    }

    /// Reads the credentials file and the certificate again, and takes `new`'s policies. Each
    /// part that fails keeps what runs (and is logged); turning auth or TLS on or off, or
    /// pointing at other files, needs a restart.
    pub(crate) fn reload(&self, new: &Config) {
        if let (Some(auth), AuthConfig::SigV4 { policies, .. }) = (&self.auth, &new.auth) {
            match auth.reload(policies.clone()) {
                Ok(keys) => tracing::info!(keys, "credentials file and policies reloaded"),
                Err(e) => tracing::error!(error = %e,
                    "the credentials file cannot be read again; the running keys and policies stay"),
            }
        }
        if let Some(tls) = &self.tls {
            match tls.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => tracing::error!(error = %e,
                    "the TLS certificate cannot be read again; the running one stays"),
            }
        }
    }

    /// How the API listener treats connections.
    pub(crate) fn serve_options(&self, config: &Config) -> ServeOptions {
        let limits = config.server;
        ServeOptions {
            tls: self.tls.clone(),
            max_connections: connection_cap(config),
            header_timeout: Duration::from_secs(limits.header_timeout_seconds),
            idle_timeout: Duration::from_secs(limits.idle_timeout_seconds),
        }
    }

    /// The metrics listener: plain HTTP (a scraper on the same network), a few connections.
    pub(crate) fn metrics_options(config: &Config) -> ServeOptions {
        let limits = config.server;
        ServeOptions {
            tls: None,
            max_connections: METRICS_CONNECTIONS as usize,
            header_timeout: Duration::from_secs(limits.header_timeout_seconds),
            idle_timeout: Duration::from_secs(limits.idle_timeout_seconds),
        }
    }
}

/// `server.max_connections`, lowered so that connections cannot take the descriptors the
/// daemon needs for its own files (under a 1,024 open-file limit, 1,124 idle connections used to
/// make every new client wait).
fn connection_cap(config: &Config) -> usize {
    let metrics = if config.metrics_listen.is_some() {
        METRICS_CONNECTIONS
    } else {
        0
    };
    let own = OWN_FILES + metrics + crate::streams::staging_files(&config.streams);
    let room = crate::streams::open_file_limit()
        .saturating_sub(own)
        .max(16);
    let wanted = config.server.max_connections;
    if room < wanted {
        tracing::warn!(
            max_connections = wanted,
            allowed = room,
            "the open-file limit leaves room for fewer connections than server.max_connections: raise it (LimitNOFILE=, ulimit -n)"
        );
    }
    usize::try_from(wanted.min(room)).unwrap_or(usize::MAX)
}

/// What `firehosed validate` checks beyond the file: the credentials file can be read and is
/// not world-readable, the certificate and key can be read and go together.
pub fn check(config: &Config) -> anyhow::Result<()> {
    Network::load(config)?;
    Ok(())
}
