//! The `airtable-mcp serve --http` binary: refusals at start, JSON access logs without secrets,
//! /readyz against a sandbox, and a clean exit on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use airtable_mcp::sandbox::{self, SandboxConfig};
use common::*;
use serde_json::json;
use tokio::process::Command;

fn serve(home: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_airtable-mcp"));
    cmd.env_clear()
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AIRTABLE_MCP_KEYRING", "none")
        .arg("serve")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn refuses_unsafe_or_unauthenticated_setups() {
    let home = tempfile::tempdir().unwrap();
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 3] = [
        (
            &["--http", "0.0.0.0:0"],
            &[("AIRTABLE_MCP_AUTH_TOKENS", TOKEN_A)],
            "--tls-cert",
        ),
        (&["--http", "0.0.0.0:0", "--no-auth"], &[], "loopback"),
        (
            &["--http", "127.0.0.1:0"],
            &[],
            "no bearer token is configured",
        ),
    ];
    for (args, env, expected) in cases {
        let mut cmd = serve(home.path(), args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .expect("the server should refuse to start, not run")
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains(TOKEN_A), "a token leaked: {stderr}");
    }
}

#[tokio::test]
async fn serves_logs_json_without_secrets_and_stops_on_sigterm() {
    let sb = sandbox::spawn(SandboxConfig::demo(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut child = serve(
        home.path(),
        &[
            "--http",
            "127.0.0.1:0",
            "--api-url",
            sb.url().as_str(),
            "--log-format",
            "json",
        ],
    )
    .env("AIRTABLE_API_KEY", sb.token())
    .env("AIRTABLE_MCP_AUTH_TOKENS", format!("{TOKEN_A},{TOKEN_B}"))
    .spawn()
    .unwrap();

    // The address is in the startup log line.
    let (base, mut log, mut lines) = common::http_base_of(&mut child).await;
    let c = reqwest::Client::new();
    assert_eq!(
        c.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready = c.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    let secret_airtable = "patClientSecretValue42";
    let res = c
        .post(format!("{base}/mcp"))
        .bearer_auth(TOKEN_A)
        .header("x-airtable-token", secret_airtable)
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "bin-test", "version": "0"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let session_id = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let _ = res.text().await;
    // A legacy SSE session too: its ID is in the endpoint event and the POST's query.
    let mut sse = c
        .get(format!("{base}/sse"))
        .bearer_auth(TOKEN_A)
        .send()
        .await
        .unwrap();
    let mut first = String::new();
    while !first.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(30), sse.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        first.push_str(&String::from_utf8_lossy(&chunk));
    }
    let legacy_id = first
        .split("sessionId=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let posted = c
        .post(format!("{base}/messages?sessionId={legacy_id}"))
        .bearer_auth(TOKEN_A)
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {},
            "clientInfo": {"name": "bin-test", "version": "0"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);
    drop(sse);
    let denied = c
        .post(format!("{base}/mcp"))
        .bearer_auth("wrong-token-but-long-enough")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);

    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("no exit after SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit}");
    while let Ok(Some(line)) = lines.next_line().await {
        log.push(line);
    }
    let all = log.join("\n");
    for secret in [
        TOKEN_A,
        "wrong-token-but-long-enough",
        secret_airtable,
        sb.token(),
    ] {
        assert!(!all.contains(secret), "a secret reached the log:\n{all}");
    }
    // Session IDs are handles to a client's session: not in the INFO log.
    for id in [&session_id, &legacy_id] {
        assert!(
            !all.contains(id.as_str()),
            "a session ID reached the log:\n{all}"
        );
    }
    // One JSON object per line, and the access log has method, path and status.
    let mut saw_access = false;
    for line in &log {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["fields"]["message"] == "request" && v["span"]["path"] == "/mcp" {
            saw_access = true;
            assert!(v["fields"]["status"].is_number(), "{line}");
            assert_eq!(v["span"]["method"], "POST");
        }
    }
    assert!(saw_access, "no access log line for /mcp:\n{all}");
    sb.shutdown().await;
}
