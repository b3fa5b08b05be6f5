//! HTTPS: rustls (TLS 1.2 and 1.3, aws-lc-rs, no OpenSSL) with the certificate chain and key of
//! `tls`. A reload reads the files again (a renewed certificate); connections already open keep
//! the one they were made with, new ones get the new one.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;
use crate::sync::ReadWrite;

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("cannot read the certificate chain {}: {detail}", path.display())]
    Certificate { path: PathBuf, detail: String },
    #[error("cannot read the private key {}: {detail}", path.display())]
    Key { path: PathBuf, detail: String },
    #[error("the certificate and key of tls do not go together: {0}")]
    Config(String),
}

/// The acceptor for new connections, swapped on reload.
pub(crate) struct Tls {
    files: TlsConfig,
    acceptor: RwLock<TlsAcceptor>,
}

impl Tls {
    pub(crate) fn load(files: &TlsConfig) -> Result<Arc<Tls>, TlsError> {
        let acceptor = acceptor(files)?;
        Ok(Arc::new(Tls {
            files: files.clone(),
            acceptor: RwLock::new(acceptor),
        }))
    }

    /// Reads the files again; on an error the running certificate stays.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let fresh = acceptor(&self.files)?;
        *self.acceptor.writing() = fresh;
        Ok(())
    }

    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.reading().clone()
    }
}

fn acceptor(files: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert_file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificate {
            path: files.cert_file.clone(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate {
            path: files.cert_file.clone(),
            detail: "no certificate in it".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key_file).map_err(|e| TlsError::Key {
        path: files.key_file.clone(),
        detail: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
