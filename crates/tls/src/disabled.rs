//! A build without TLS: plain HTTP clients, and an error naming the missing feature wherever
//! TLS is asked for.

use std::path::Path;

use crate::{client, err, TlsError};

const WHY: &str = "this infermon was built without TLS (cargo's `tls` feature): use an http:// \
                   URL, or a build with the default features";

/// Stands in for the TLS acceptor: there is never one in this build.
#[derive(Clone)]
pub struct TlsAcceptor {
    never: std::convert::Infallible,
}

impl TlsAcceptor {
    /// Never called: no acceptor exists.
    pub async fn accept<IO>(&self, _io: IO) -> std::io::Result<IO> {
        match self.never {}
    }
}

/// [`client`], refusing a CA file (there is no TLS to use it with).
pub fn client_with_ca(ca: Option<&Path>) -> Result<reqwest::ClientBuilder, TlsError> {
    match ca {
        Some(p) => Err(err(p, WHY)),
        None => Ok(client()),
    }
}

/// Refuses: no CA can be used in this build.
pub fn check_ca(path: &Path) -> Result<usize, TlsError> {
    Err(err(path, WHY))
}

/// Stands in for the reload handle: there is never one in this build.
#[derive(Debug)]
pub struct ServerCert {
    never: std::convert::Infallible,
}

impl ServerCert {
    /// Never called: no handle exists.
    pub fn reload(&self) -> Result<(), TlsError> {
        match self.never {}
    }
}

/// Refuses: this build cannot serve HTTPS.
pub fn acceptor(
    cert: &Path,
    _key: &Path,
) -> Result<(TlsAcceptor, std::sync::Arc<ServerCert>), TlsError> {
    Err(err(cert, WHY))
}
