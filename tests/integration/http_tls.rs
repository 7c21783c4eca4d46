//! `--tls-cert/--tls-key`: the server speaks HTTPS (rustls) with a certificate made by openssl.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::Command;

use common::*;
use serde_json::json;

#[tokio::test]
async fn serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let ca_cert = dir.path().join("ca.pem");
    // A throwaway CA and a leaf certificate for localhost / 127.0.0.1 signed by it.
    let script = r#"set -e
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -keyout ca.key -out ca.pem -subj /CN=test-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
openssl req -newkey rsa:2048 -nodes -keyout key.pem -out leaf.csr -subj /CN=localhost
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > leaf.ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -out cert.pem -extfile leaf.ext
"#;
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir.path())
        .output()
        .expect("openssl is needed to make a test certificate");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut opts = options();
    opts.tls = Some((cert.clone(), key.clone()));
    let (server, shutdown) = start_echo(opts).await;
    let port = server.local_addr().port();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_cert).unwrap()).unwrap();
    let c = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let res = c
        .post(format!("https://localhost:{port}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(TOKEN_A)
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "tls-test", "version": "0"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let health = c
        .get(format!("https://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");
    // Plain HTTP on the TLS port gets no HTTP answer.
    assert!(
        reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .is_err()
    );
    shutdown.cancel();
    server.wait().await.unwrap();

    // A key that does not match the certificate is refused at start.
    let other_key = dir.path().join("other.pem");
    let status = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-out"])
        .arg(&other_key)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut opts = options();
    opts.tls = Some((cert, other_key));
    let err = airtable_mcp::server::http::start(
        echo_factory(),
        Default::default(),
        opts,
        Default::default(),
    )
    .await
    .err()
    .expect("a mismatched key must be refused");
    assert!(err.to_string().contains("do not match"), "{err}");
}
