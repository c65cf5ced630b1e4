//! HTTPS on the listener (`tls: {cert, key}`): rustls with the aws-lc-rs provider.
//!
//! The certificate is read at start-up (a file that cannot be read or parsed stops the start with
//! an error naming it) and again on SIGHUP: new connections use the new certificate; a broken
//! one on reload is logged and the old one stays in use. Connections already open keep theirs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::TlsConfig;

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls.cert {path}: cannot read a PEM certificate: {message}")]
    Cert { path: PathBuf, message: String },
    #[error("tls.cert {path}: no CERTIFICATE found in the file")]
    NoCert { path: PathBuf },
    #[error("tls.key {path}: cannot read a PEM private key: {message}")]
    Key { path: PathBuf, message: String },
    #[error("tls: the key {key} does not fit the certificate {cert}: {source}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// The current acceptor, swapped on reload.
pub struct Tls {
    files: TlsConfig,
    current: RwLock<TlsAcceptor>,
}

impl Tls {
    /// Reads the certificate and key; fails naming the file that cannot be used.
    pub fn load(files: &TlsConfig) -> Result<Arc<Tls>, TlsError> {
        let acceptor = acceptor(files)?;
        Ok(Arc::new(Tls {
            files: files.clone(),
            current: RwLock::new(acceptor),
        }))
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        match self.current.read() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the files again; on error the old certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = acceptor(&self.files)?;
        match self.current.write() {
            Ok(mut a) => *a = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    /// Reloads on every SIGHUP until `stop`, as a task of `tracker` (the shutdown waits for it).
    #[cfg(unix)]
    pub fn reload_on_sighup(self: &Arc<Self>, stop: CancellationToken, tracker: &TaskTracker) {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: the TLS certificate will not be reloaded");
            return;
        };
        let tls = self.clone();
        tracker.spawn(async move {
            while stop
                .run_until_cancelled(hup.recv())
                .await
                .flatten()
                .is_some()
            {
                match tls.reload() {
                    Ok(()) => {
                        tracing::info!(cert = %tls.files.cert.display(), "SIGHUP: TLS certificate reloaded")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; keeping the old one")
                    }
                }
            }
        });
    }

    #[cfg(not(unix))]
    pub fn reload_on_sighup(self: &Arc<Self>, _: CancellationToken, _: &TaskTracker) {}
}

fn acceptor(files: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    let certs = certs(&files.cert)?;
    let key = key(&files.key)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|source| TlsError::Mismatch {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })?;
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |e: rustls_pki_types::pem::Error| TlsError::Cert {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    if certs.is_empty() {
        return Err(TlsError::NoCert {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Key {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_cert(dir: &Path) -> TlsConfig {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let files = TlsConfig {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }

    #[test]
    fn regression_broken_cert_on_reload_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_cert(dir.path());
        let tls = Tls::load(&files).unwrap();
        let before = tls.acceptor().config().clone();
        std::fs::write(&files.cert, "garbage").unwrap();
        let err = tls.reload().unwrap_err().to_string();
        assert!(err.contains(&files.cert.display().to_string()), "{err}");
        assert!(Arc::ptr_eq(&before, tls.acceptor().config()));
        write_cert(dir.path());
        tls.reload().unwrap();
        assert!(!Arc::ptr_eq(&before, tls.acceptor().config()));
    }

    #[test]
    fn a_key_that_does_not_parse_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_cert(dir.path());
        std::fs::write(&files.key, "-----BEGIN PRIVATE KEY-----\nzz\n").unwrap();
        let Err(err) = Tls::load(&files) else {
            panic!("a broken key must fail")
        };
        let err = err.to_string();
        assert!(err.starts_with("tls.key"), "{err}");
        assert!(err.contains(&files.key.display().to_string()), "{err}");
    }
}
