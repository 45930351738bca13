//! Certificates made with rcgen (`testing`: a private CA and a leaf for `localhost`), served by a
//! real TLS listener on loopback and fetched with the client every infermon request uses.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn pki(dir: &tempfile::TempDir) -> testing::Pki {
    let p = testing::write_pki(dir.path());
    std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
    p
}

/// Serves one HTTP/1.1 answer per connection over TLS on loopback; returns the port.
async fn serve_once(acceptor: TlsAcceptor) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 1024];
                let _ = tls.read(&mut buf).await;
                let body = "over tls";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test]
async fn a_client_trusting_the_private_ca_reads_the_server_and_one_without_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(&dir);
    let port = serve_once(acceptor(&pki.cert, &pki.key).unwrap().0).await;
    let url = format!("https://localhost:{port}/");
    let trusting = client_with_ca(Some(&pki.ca))
        .unwrap()
        .no_proxy()
        .build()
        .unwrap();
    let r = trusting.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "over tls");

    let plain = client().no_proxy().build().unwrap();
    let e = plain.get(&url).send().await.unwrap_err();
    let chain = format!("{:?}", e);
    assert!(
        chain.contains("UnknownIssuer") || chain.to_lowercase().contains("certificate"),
        "{chain}"
    );
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(&dir);
    let e = server_config(&pki.cert, &pki.other_key).unwrap_err();
    assert_eq!(e.path.as_deref(), Some(pki.other_key.as_path()));
    assert!(e.to_string().contains("cert.pem"), "{e}");
}

#[test]
fn files_without_what_is_expected_say_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(&dir);
    let e = check_ca(&dir.path().join("empty.pem")).unwrap_err();
    assert!(e.to_string().contains("holds no certificate"), "{e}");
    assert!(e.to_string().contains("BEGIN CERTIFICATE"), "{e}");
    let e = server_config(&pki.cert, &pki.cert).unwrap_err();
    assert!(e.to_string().contains("no usable private key"), "{e}");
    let missing = Path::new("/nonexistent/ca.pem");
    let e = check_ca(missing).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("\"/nonexistent/ca.pem\": cannot read it"),
        "{e}"
    );
    assert_eq!(check_ca(&pki.ca).unwrap(), 1);
}

#[tokio::test]
async fn a_renewed_certificate_is_served_after_reload_and_a_bad_one_is_not() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (pki(&dir_a), pki(&dir_b));
    let (acc, handle) = acceptor(&a.cert, &a.key).unwrap();
    let port = serve_once(acc).await;
    let url = format!("https://localhost:{port}/");
    let trusting = |ca: &Path| {
        client_with_ca(Some(ca))
            .unwrap()
            .no_proxy()
            .build()
            .unwrap()
    };
    let (old, new) = (trusting(&a.ca), trusting(&b.ca));
    assert_eq!(old.get(&url).send().await.unwrap().status(), 200);

    // A half-written renewal (B's certificate, A's key): refused, A's stays in use.
    std::fs::copy(&b.cert, &a.cert).unwrap();
    let e = handle.reload().unwrap_err();
    assert_eq!(e.path.as_deref(), Some(a.key.as_path()), "{e}");
    assert_eq!(old.get(&url).send().await.unwrap().status(), 200);

    // The whole renewal: B's pair is served from the next connection on.
    std::fs::copy(&b.key, &a.key).unwrap();
    handle.reload().unwrap();
    assert_eq!(new.get(&url).send().await.unwrap().status(), 200);
    // Refused: both test CAs have the same name, so webpki finds A's and the signature fails.
    let e = format!("{:?}", trusting(&a.ca).get(&url).send().await.unwrap_err());
    assert!(
        e.contains("BadSignature") || e.contains("UnknownIssuer"),
        "{e}"
    );
}
