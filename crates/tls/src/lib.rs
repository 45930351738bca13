//! TLS for infermon: the HTTP client every outgoing request is built from (hub push, remote
//! write, webhooks, `top`, MCP, engine reads), the certificate authorities a user adds for a
//! private CA, and the server side of the hub's listener.
//!
//! One crypto provider serves the whole process: rustls with ring (no C toolchain beyond the
//! one ring needs, about a third of aws-lc-rs's size). [`client`] installs it before the first
//! client is built, so no caller can build a client that panics for want of one. Server and
//! client speak TLS 1.2 and 1.3 with rustls's default suites; clients verify servers against
//! the system's roots (`/etc/ssl/certs`) plus any CA the user names.
//!
//! Without the `rustls` feature (on by default; about 1.2 MiB of the binary) every client
//! speaks plain HTTP only: [`ENABLED`] is false, and the functions that need TLS answer an
//! error saying the build has none, so callers refuse `https` at start rather than on every
//! request.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

#[cfg(feature = "rustls")]
mod enabled;
#[cfg(feature = "rustls")]
pub use enabled::{
    acceptor, check_ca, client_with_ca, install_provider, server_config, ServerCert,
};
#[cfg(feature = "rustls")]
pub use tokio_rustls::TlsAcceptor;

#[cfg(not(feature = "rustls"))]
mod disabled;
#[cfg(not(feature = "rustls"))]
pub use disabled::{acceptor, check_ca, client_with_ca, ServerCert, TlsAcceptor};

/// Whether this build speaks TLS.
pub const ENABLED: bool = cfg!(feature = "rustls");

/// Why a certificate, key or CA file could not be used. The message names the file and what
/// was expected of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    /// The file concerned, when there is one.
    pub path: Option<PathBuf>,
    /// What went wrong, for a person.
    pub message: String,
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.path {
            Some(p) => write!(f, "\"{}\": {}", p.display(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for TlsError {}

fn err(path: &Path, message: impl Into<String>) -> TlsError {
    TlsError {
        path: Some(path.to_path_buf()),
        message: message.into(),
    }
}

/// A `reqwest` client builder with TLS ready: every HTTP client in infermon starts here
/// (`reqwest::Client::builder()` would panic without a crypto provider).
pub fn client() -> reqwest::ClientBuilder {
    #[cfg(feature = "rustls")]
    install_provider();
    reqwest::Client::builder()
}

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(all(test, feature = "rustls"))]
mod tests;
