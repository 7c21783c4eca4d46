//! `serve` over stdio at trace log level, through a tool call against the sandbox: the token
//! appears nowhere in stderr (nor stdout). And without any token the server still starts and
//! answers the tool call with the command that fixes it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::time::Duration;

use airtable_mcp::sandbox::{self, DEMO_BASE_ID, SandboxConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout, Command};

const BIN: &str = env!("CARGO_BIN_EXE_airtable-mcp");
const TOKEN: &str = "patServeTraceTok01.fedcba9876543210fedcba9876543210q7w8";

async fn send(stdin: &mut ChildStdin, msg: Value) {
    let mut line = serde_json::to_string(&msg).unwrap();
    line.push('\n');
    stdin.write_all(line.as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();
}

/// Read lines until the response with this id (skipping notifications).
async fn response(lines: &mut tokio::io::Lines<BufReader<ChildStdout>>, id: u64) -> Value {
    let fut = async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("server closed stdout");
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout is not JSON-RPC ({e}): {line}"));
            if v.get("id") == Some(&json!(id)) {
                return v;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .expect("no response from the server")
}

/// Run `serve` with `env`, call list_bases, return (the call's result, stdout text, stderr text).
async fn serve_and_call_list_bases(env: &[(&str, &str)], api_url: &str) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("config.toml");
    std::fs::write(&empty, "").unwrap();
    let mut cmd = Command::new(BIN);
    for (name, _) in airtable_mcp::env::ENV_VARS {
        cmd.env_remove(name);
    }
    cmd.args([
        "--log-level",
        "trace",
        "serve",
        "--no-journal",
        "--api-url",
        api_url,
    ])
    .env("AIRTABLE_MCP_CONFIG", &empty)
    .envs(env.iter().copied())
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let err_task = tokio::spawn(async move {
        let mut s = String::new();
        stderr.read_to_string(&mut s).await.unwrap();
        s
    });

    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "serve-secrets-test", "version": "0"}}}),
    )
    .await;
    let init = response(&mut lines, 1).await;
    assert!(init.get("result").is_some(), "initialize failed: {init}");
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "list_bases", "arguments": {}}}),
    )
    .await;
    let call = response(&mut lines, 2).await;
    drop(stdin);
    let mut rest = String::new();
    while let Ok(Some(l)) = lines.next_line().await {
        rest.push_str(&l);
    }
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("serve did not exit after stdin closed")
        .unwrap();
    let stderr = err_task.await.unwrap();
    assert!(status.success(), "serve exited with {status}:\n{stderr}");
    assert!(!rest.contains(TOKEN), "token on stdout");
    assert!(
        !call.to_string().contains(TOKEN),
        "token in the tool result"
    );
    (call, stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_at_trace_level_never_logs_the_token() {
    let sb = sandbox::spawn(
        SandboxConfig {
            token: TOKEN.to_owned(),
            ..SandboxConfig::demo()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let url = sb.url().to_string();
    let (call, stderr) = serve_and_call_list_bases(
        &[
            ("AIRTABLE_API_KEY", TOKEN),
            ("AIRTABLE_MCP_KEYRING", "none"),
        ],
        &url,
    )
    .await;
    let result = &call["result"];
    assert_ne!(result["isError"], json!(true), "list_bases failed: {call}");
    assert!(call.to_string().contains(DEMO_BASE_ID), "{call}");
    // Trace logging really was on and saw the request...
    assert!(stderr.contains("TRACE"), "no trace output:\n{stderr}");
    assert!(
        stderr.contains("/v0/meta/bases"),
        "the request is not logged:\n{stderr}"
    );
    // ...and never the token, nor a recognisable piece of it.
    assert!(!stderr.contains(TOKEN), "the token is in stderr");
    assert!(
        !stderr.contains("fedcba9876543210"),
        "part of the token is in stderr"
    );
    assert!(
        !stderr.contains("patServeTraceTok01"),
        "the token's prefix is in stderr"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_without_a_token_answers_tool_calls_with_the_fix() {
    let (call, _stderr) =
        serve_and_call_list_bases(&[("AIRTABLE_MCP_KEYRING", "none")], "http://127.0.0.1:9").await;
    let result = &call["result"];
    assert_eq!(result["isError"], json!(true), "{call}");
    let text = result.to_string();
    assert!(text.contains("airtable-mcp auth login"), "{text}");
    assert!(text.contains("AIRTABLE_API_KEY"), "{text}");
}
