//! The TLS build: rustls with ring.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::{client, err, TlsError};

/// Installs ring as the process's crypto provider, once. Later calls, and a provider some
/// other code installed first, are left as they are.
pub fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// [`client`] with the certificate authorities in `ca` (a PEM file) trusted besides the
/// system's: for a hub or receiver whose certificate a private CA signed.
pub fn client_with_ca(ca: Option<&Path>) -> Result<reqwest::ClientBuilder, TlsError> {
    let mut b = client();
    if let Some(path) = ca {
        for der in read_certs(path, "a CA certificate")? {
            let c = reqwest::Certificate::from_der(der.as_ref())
                .map_err(|e| err(path, format!("a certificate is not usable: {e}")))?;
            b = b.tls_certs_merge([c]);
        }
    }
    Ok(b)
}

/// Checks that `path` is a PEM file holding at least one certificate, as [`client_with_ca`]
/// will read it: for validating configuration before anything starts.
pub fn check_ca(path: &Path) -> Result<usize, TlsError> {
    read_certs(path, "a CA certificate").map(|c| c.len())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| err(path, format!("cannot read it: {e}")))
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(path, format!("is not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(err(
            path,
            format!(
                "holds no certificate: expected {what} as PEM (\"-----BEGIN CERTIFICATE-----\")"
            ),
        ));
    }
    Ok(certs)
}

/// Reads a certificate chain (PEM, leaf first) and its private key (PEM: PKCS#8, PKCS#1 or
/// SEC1), checking that the key is the certificate's.
fn certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    install_provider();
    let chain = read_certs(cert, "the server's certificate chain")?;
    let key_pem = read(key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        err(
            key,
            format!(
                "holds no usable private key: expected one PEM key (\"-----BEGIN PRIVATE KEY-----\", \
                 RSA or EC), {e}"
            ),
        )
    })?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, key_der, &provider)
        .map(Arc::new)
        .map_err(|e| {
            err(
                key,
                format!(
                    "cannot be used with the certificate \"{}\": {e}",
                    cert.display()
                ),
            )
        })
}

/// The certificate a TLS listener presents, read from its files and read again on
/// [`ServerCert::reload`] (a renewed certificate without a restart). Connections already
/// open keep the certificate they began with.
#[derive(Debug)]
pub struct ServerCert {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServerCert {
    /// Reads the files again; on an error the certificate in use stays and the error says
    /// which file is wrong.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = certified_key(&self.cert, &self.key)?;
        if let Ok(mut c) = self.current.write() {
            *c = fresh;
        }
        Ok(())
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

/// The server side of TLS from a certificate chain and its private key ([`certified_key`]),
/// offering HTTP/1.1, with the handle that reloads them.
pub fn server_config(
    cert: &Path,
    key: &Path,
) -> Result<(Arc<rustls::ServerConfig>, Arc<ServerCert>), TlsError> {
    let current = certified_key(cert, key)?;
    let resolver = Arc::new(ServerCert {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        current: RwLock::new(current),
    });
    let mut cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(cfg), resolver))
}

/// An acceptor for a listener from [`server_config`]'s files, and the handle that reloads
/// them.
pub fn acceptor(cert: &Path, key: &Path) -> Result<(TlsAcceptor, Arc<ServerCert>), TlsError> {
    server_config(cert, key).map(|(cfg, handle)| (TlsAcceptor::from(cfg), handle))
}
