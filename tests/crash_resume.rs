//! Crash-safe batches (issue #11: a `kill -9` during a 60-record batch, then the same call
//! again, created 30 duplicates). The stdio server is killed at a random point of a 60-record
//! `batch_create_records` 20 times; each time a new server runs the same call, which resumes
//! from the journal. Afterwards every record exists exactly once. (A call that completed
//! before the kill is finished: running it again is a new call and creates the records again;
//! the kill always lands before the batch can complete.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mcp_support;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use airtable_mcp::airtable::{BaseId, ListQuery};
use airtable_mcp::sandbox::{Faults, SandboxConfig};
use mcp_support::*;
use rand::Rng;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

struct Server {
    child: Child,
    stdin: tokio::process::ChildStdin,
    out: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

async fn start(
    url: &str,
    token: &str,
    journal: &std::path::Path,
    home: &std::path::Path,
) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_airtable-mcp"))
        .env_clear()
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AIRTABLE_MCP_KEYRING", "none")
        .env("AIRTABLE_API_KEY", token)
        .args([
            "serve",
            "--api-url",
            url,
            "--rate-limit-per-base",
            "1000",
            "--journal",
        ])
        .arg(journal)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut s = Server { child, stdin, out };
    s.send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "crash-test", "version": "0"}}}),
    )
    .await;
    s.answer(1).await;
    s.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    s
}

impl Server {
    async fn send(&mut self, v: Value) {
        self.stdin
            .write_all(format!("{v}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn answer(&mut self, id: i64) -> Value {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(60), self.out.next_line())
                .await
                .expect("the server stopped answering")
                .unwrap()
                .expect("the server exited");
            let v: Value = serde_json::from_str(&line).unwrap();
            if v.get("id").and_then(Value::as_i64) == Some(id) {
                return v;
            }
        }
    }
}

fn call(records: &[Value]) -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "batch_create_records",
        "arguments": {"base_id": DEMO, "table_id": "Tasks", "records": records}}})
}

#[tokio::test]
async fn killed_batches_resume_without_duplicates() {
    let sb = sandbox_with(SandboxConfig {
        faults: Faults {
            latency: Duration::from_millis(100),
            ..Faults::default()
        },
        ..SandboxConfig::demo()
    })
    .await;
    let url = sb.addr();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.sqlite3");
    let mut rng = rand::rng();
    let mut resumed = 0;
    for run in 0..20 {
        let records: Vec<Value> = (0..60)
            .map(|i| json!({"Name": format!("Crash {run} #{i}"), "Notes": format!("run {run}")}))
            .collect();
        // First server: killed at a random point before the batch can have finished (6
        // requests of >= 100 ms take >= 600 ms; the kill comes within 300 ms of sending).
        let mut s = start(&url, sb.token(), &journal, dir.path()).await;
        s.send(call(&records)).await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
        s.child.kill().await.unwrap();
        // Second server: the same call finishes the job.
        let mut s = start(&url, sb.token(), &journal, dir.path()).await;
        s.send(call(&records)).await;
        let v = s.answer(2).await;
        let out = &v["result"]["structuredContent"];
        assert_eq!(out["complete"], true, "run {run}: {v}");
        assert_eq!(out["written"], 60, "run {run}: {v}");
        if out["note"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Resumed")
        {
            resumed += 1;
        }
        s.child.kill().await.unwrap();

        // Exactly one copy of each record.
        let base: BaseId = DEMO.parse().unwrap();
        let rows = client_for(&sb)
            .list_all_records(
                &base,
                "Tasks",
                ListQuery {
                    filter_by_formula: Some(format!("{{Notes}} = 'run {run}'")),
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap();
        let mut copies: BTreeMap<String, usize> = BTreeMap::new();
        for r in rows {
            *copies
                .entry(r.fields["Name"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        assert_eq!(copies.len(), 60, "run {run}: {copies:?}");
        assert!(
            copies.values().all(|&c| c == 1),
            "run {run}: duplicates {copies:?}"
        );
    }
    eprintln!("crash test: 20 kills, {resumed} calls resumed an interrupted batch, no duplicates");
    assert!(
        resumed > 0,
        "no kill landed inside a batch: the test proves nothing"
    );
}
