//! Logs carry no cell values at any level unless `--log-record-data` is given (issue #11): the
//! stdio server at `--log-level debug` writes and reads a record with a marker value; its
//! stderr holds the marker only with the flag (which proves the test can see it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const MARKER: &str = "CELL-MARKER-7f3a91";

/// Run one session; returns the server's stderr.
async fn session(extra: &[&str]) -> String {
    let home = tempfile::tempdir().unwrap();
    let mut args = vec!["serve", "--sandbox", "--log-level", "debug"];
    args.extend_from_slice(extra);
    let mut child = Command::new(env!("CARGO_BIN_EXE_airtable-mcp"))
        .env_clear()
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AIRTABLE_MCP_KEYRING", "none")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut err = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut s = String::new();
        err.read_to_string(&mut s).await.unwrap();
        s
    });
    let send = |v: Value| format!("{v}\n");
    let mut text = send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "log-test", "version": "0"}}}),
    );
    text += &send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    text += &send(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "create_record", "arguments": {"base_id": "appDemoTracker001", "table_id": "Tasks",
        "fields": {"Name": MARKER, "Notes": MARKER}}}}),
    );
    stdin.write_all(text.as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();
    let mut seen = 0;
    while seen < 3 {
        if seen == 2 {
            // The search goes out once the create has answered.
            let search = send(
                json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
                "name": "search_records", "arguments": {"base_id": "appDemoTracker001",
                "table_id": "Tasks", "query": MARKER}}}),
            );
            stdin.write_all(search.as_bytes()).await.unwrap();
            stdin.flush().await.unwrap();
        }
        let line = tokio::time::timeout(Duration::from_secs(60), out.next_line())
            .await
            .expect("the server stopped answering")
            .unwrap()
            .expect("the server exited");
        let v: Value = serde_json::from_str(&line).unwrap();
        if let Some(id) = v.get("id").and_then(Value::as_i64) {
            if id == 3 {
                assert!(line.contains(MARKER), "the search found the record: {line}");
            }
            seen = seen.max(id as usize);
        }
    }
    drop(stdin);
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    stderr.await.unwrap()
}

#[tokio::test]
async fn debug_logs_hold_no_cell_values_unless_asked() {
    let quiet = session(&[]).await;
    assert!(
        quiet.contains("DEBUG"),
        "debug logging is on: {}",
        &quiet[..quiet.len().min(2000)]
    );
    assert!(!quiet.contains(MARKER), "a cell value was logged:\n{quiet}");
    let verbose = session(&["--log-record-data"]).await;
    assert!(
        verbose.contains(MARKER),
        "with --log-record-data the payloads are logged"
    );
}
