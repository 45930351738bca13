//! Certificates for tests (feature `testing`): a private CA and a leaf it signed for
//! `localhost` and 127.0.0.1, written as PEM files.

use std::path::{Path, PathBuf};

/// The files [`write_pki`] made.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA's certificate.
    pub ca: PathBuf,
    /// The leaf's certificate (for `localhost` and 127.0.0.1).
    pub cert: PathBuf,
    /// The leaf's private key (PKCS#8).
    pub key: PathBuf,
    /// A private key that matches no certificate here.
    pub other_key: PathBuf,
}

/// Makes a CA and a `localhost`/127.0.0.1 leaf it signed, in `dir`.
///
/// # Panics
///
/// When key generation or writing a file fails (test set-up).
#[allow(clippy::expect_used)]
pub fn write_pki(dir: &Path) -> Pki {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "infermon test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf certificate");
    let other = rcgen::KeyPair::generate().expect("other key");
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write PEM");
        p
    };
    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        cert: write("cert.pem", leaf.pem()),
        key: write("key.pem", leaf_key.serialize_pem()),
        other_key: write("other-key.pem", other.serialize_pem()),
    }
}
