//! `serve --sandbox`: the in-process sandbox takes a random token per run, so no other local
//! process can read its data with the well-known `sandbox-token`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use airtable_mcp::cli::{GlobalArgs, ServeArgs};
use airtable_mcp::config::{Config, FileConfig};
use reqwest::StatusCode;

async fn whoami(url: &str, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{url}/v0/meta/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn the_in_process_sandbox_refuses_the_default_token() {
    let args = ServeArgs {
        sandbox: true,
        ..ServeArgs::default()
    };
    let cfg =
        Config::from_layers(&args, &GlobalArgs::default(), FileConfig::default(), None).unwrap();
    let first = airtable_mcp::server::prepare(&cfg).await.unwrap();
    let second = airtable_mcp::server::prepare(&cfg).await.unwrap();
    let (a, b) = (first.sandbox.unwrap(), second.sandbox.unwrap());
    assert_ne!(a.token(), "sandbox-token");
    assert_ne!(a.token(), b.token(), "a new token every run");
    assert!(a.token().len() >= 32);
    let url = a.addr();
    assert_eq!(
        whoami(&url, "sandbox-token").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(whoami(&url, a.token()).await, StatusCode::OK);
    assert_eq!(whoami(&url, b.token()).await, StatusCode::UNAUTHORIZED);
}

/// Issue #12: with the token in the environment, `serve` answers initialize and tools/list
/// without asking the OS keyring anything, not even for an OAuth grant (a token from the
/// environment is the token). The Secret Service is a Unix socket of this test that must get
/// no connection. Control: without the token, the same start asks it.
#[tokio::test]
async fn an_environment_token_keeps_serve_away_from_the_keyring() {
    use std::process::Stdio;
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::process::Command;

    let dir = tempfile::tempdir().unwrap();
    let bus = dir.path().join("bus");
    let listener = tokio::net::UnixListener::bind(&bus).unwrap();
    let spawn = |token: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_airtable-mcp"));
        cmd.env_clear()
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AIRTABLE_MCP_KEYRING", "secret-service")
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}", bus.display()),
            )
            .env("AIRTABLE_API_URL", "http://127.0.0.1:9")
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(t) = token {
            cmd.env("AIRTABLE_API_KEY", t);
        }
        cmd.spawn().unwrap()
    };

    let mut child = spawn(Some("patEnvironment.0123456789abcdef"));
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#,
    ] {
        stdin.write_all(line.as_bytes()).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
    }
    stdin.flush().await.unwrap();
    let listed = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = out.next_line().await.unwrap() {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if v["id"] == 2 {
                return v;
            }
        }
        panic!("serve ended before answering tools/list");
    })
    .await
    .expect("tools/list answered (no answer: serve may be waiting for the keyring)");
    assert!(listed["result"]["tools"].as_array().unwrap().len() > 30);
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("serve exits at EOF")
        .unwrap();
    assert!(status.success());
    assert!(
        tokio::time::timeout(Duration::from_millis(200), listener.accept())
            .await
            .is_err(),
        "serve with AIRTABLE_API_KEY connected to the Secret Service"
    );

    // Control: the socket does see a start that has to look for a token.
    let mut control = spawn(None);
    let asked = tokio::time::timeout(Duration::from_secs(60), listener.accept()).await;
    control.kill().await.unwrap();
    assert!(
        asked.is_ok(),
        "control: serve without a token never asked the Secret Service"
    );
}
