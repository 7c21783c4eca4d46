//! Crash-safe batches (issue #11: a `kill -9` during a 60-record batch, then the same call
//! again, created 30 duplicates). The stdio server is killed at a random point of a 60-record
//! `batch_create_records` 20 times; each time a new server runs the same call, which resumes
//! from the journal. Afterwards every record exists exactly once. (A call that completed
//! before the kill is finished: running it again is a new call and creates the records again;
//! the kill always lands before the batch can complete.)
//!
//! A call stopped by a *definite* failure part way (retries exhausted, a 422: issue #14) is
//! finished incomplete; the same call again takes it up the same way (deterministic faults from
//! `fault_proxy`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::fault_proxy;
use crate::mcp_support;

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

// --- issue #14: re-runs after a definite failure part way ---------------------------------

use airtable_mcp::sandbox::SandboxHandle;
use airtable_mcp::tools::{AirtableServer, ServerOptions, ServerState};
use fault_proxy::{FaultProxy, Refusal};

/// A sandbox, a fault proxy in front of it, and an MCP client whose server goes through the
/// proxy (journal in memory).
async fn proxied(refusal: Refusal) -> (SandboxHandle, FaultProxy, McpClient) {
    let sb = sandbox_with(SandboxConfig::demo()).await;
    let proxy = FaultProxy::start(&sb, refusal).await;
    let state = ServerState::new(Ok(proxy.client(&sb)), ServerOptions::default());
    let mcp = connect(AirtableServer::new(state)).await;
    (sb, proxy, mcp)
}

fn tagged(tag: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"Name": format!("{tag} #{i}"), "Notes": tag}))
        .collect()
}

fn create_args(records: &[Value]) -> Value {
    json!({"base_id": DEMO, "table_id": "Tasks", "records": records})
}

/// The records whose Notes are `tag`: name -> IDs.
async fn copies_of(sb: &SandboxHandle, tag: &str) -> BTreeMap<String, Vec<String>> {
    let base: BaseId = DEMO.parse().unwrap();
    let rows = client_for(sb)
        .list_all_records(
            &base,
            "Tasks",
            ListQuery {
                filter_by_formula: Some(format!("{{Notes}} = '{tag}'")),
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rows {
        out.entry(r.fields["Name"].as_str().unwrap().to_owned())
            .or_default()
            .push(r.id.to_string());
    }
    out
}

fn ids(out: &Value) -> Vec<String> {
    out["written_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Run the call with the proxy refusing creates after `allow` (None = healthy); returns the
/// structured result and whether it was an error.
async fn run(mcp: &McpClient, proxy: &FaultProxy, args: &Value, allow: Option<usize>) -> Value {
    match allow {
        Some(n) => proxy.refuse_creates_after(n),
        None => proxy.heal(),
    }
    let r = mcp_support::call(mcp, "batch_create_records", args.clone()).await;
    let out = r.structured_content.clone().expect("structured");
    assert_eq!(r.is_error == Some(true), allow.is_some(), "{out}");
    out
}

/// The journal entries of batch_create_records, newest first.
async fn create_entries(mcp: &McpClient) -> Vec<Value> {
    let listed = ok(mcp, "list_recent_writes", json!({"limit": 100})).await;
    listed["writes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["tool"] == "batch_create_records")
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_batch_stopped_twice_by_definite_failures_resumes_to_one_copy_of_each_record() {
    let (sb, proxy, mcp) = proxied(Refusal::Retriable).await;
    let records = tagged("definite", 60);
    let args = create_args(&records);

    // Run 1: 3 requests written, the 4th refused 503 until the retries are spent.
    let first = run(&mcp, &proxy, &args, Some(3)).await;
    assert_eq!(
        (first["written"].clone(), first["complete"].clone()),
        (json!(30), json!(false)),
        "{first}"
    );
    assert_eq!(
        first["failed"][0]["may_have_been_written"], false,
        "{first}"
    );
    assert_eq!(proxy.creates_refused(), 3, "one request and its 2 retries");
    let w = first["write_id"].as_str().expect("journaled").to_owned();
    let note = first["note"].as_str().unwrap();
    assert!(
        note.contains(&format!("resumes this call (journal entry {w})")),
        "{note}"
    );
    let entries = create_entries(&mcp).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (
            entries[0].get("pending").cloned(),
            entries[0]["complete"].clone(),
            entries[0]["record_count"].clone()
        ),
        (None, json!(false), json!(30)),
        "{entries:?}"
    );

    // Run 2, the same call: resumes (nothing resent), writes 2 more requests, refused again.
    let second = run(&mcp, &proxy, &args, Some(2)).await;
    assert_eq!(second["written"], 50, "{second}");
    assert_eq!(second["write_id"], json!(w), "{second}");
    assert!(
        second["note"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Resumed the call {w}, which stopped part way")),
        "{second}"
    );
    assert_eq!(ids(&second)[..30], ids(&first)[..]);
    // The last request (inputs 50-59) failed: nothing left unsent.
    assert_eq!(second["failed"][0]["index"], 50, "{second}");
    assert_eq!(second["failed"].as_array().unwrap().len(), 10, "{second}");
    assert!(second.get("not_attempted").is_none(), "{second}");

    // Run 3, healthy: finishes; the result covers both earlier runs.
    let third = run(&mcp, &proxy, &args, None).await;
    assert_eq!(
        (third["written"].clone(), third["complete"].clone()),
        (json!(60), json!(true)),
        "{third}"
    );
    assert_eq!(third["write_id"], json!(w), "{third}");
    assert!(
        third["note"].as_str().unwrap().starts_with("Resumed"),
        "{third}"
    );
    let all = ids(&third);
    assert_eq!(all[..50], ids(&second)[..]);
    assert_eq!(proxy.creates_passed(), 6, "every request of 10 sent once");

    // Exactly one copy of each record, and they are the ones the result names.
    let copies = copies_of(&sb, "definite").await;
    assert_eq!(copies.len(), 60, "{copies:?}");
    assert!(
        copies.values().all(|c| c.len() == 1),
        "duplicates: {copies:?}"
    );
    let mut got: Vec<String> = copies.into_values().flatten().collect();
    let mut want = all.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // One journal entry for the whole call, complete, listing each record once.
    let entries = create_entries(&mcp).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(
        (
            e["id"].clone(),
            e.get("pending").cloned(),
            e["complete"].clone(),
            e["record_count"].clone()
        ),
        (json!(w), None, json!(true), json!(60)),
        "{e}"
    );
    assert_eq!(e["summary"], "created 60 records in Tasks", "{e}");

    // A complete call is not taken up: the same call again is a new one.
    let again = run(&mcp, &proxy, &args, None).await;
    assert_ne!(again["write_id"], json!(w), "{again}");
    assert!(
        !again["note"].as_str().unwrap().starts_with("Resumed"),
        "{again}"
    );
    assert!(
        copies_of(&sb, "definite")
            .await
            .values()
            .all(|c| c.len() == 2)
    );
}

#[tokio::test]
async fn undo_of_a_resumed_batch_deletes_each_record_once() {
    let (sb, proxy, mcp) = proxied(Refusal::Invalid).await;
    let records = tagged("undo merged", 45);
    let args = create_args(&records);
    let first = run(&mcp, &proxy, &args, Some(2)).await;
    assert_eq!(first["written"], 20, "{first}");
    assert_eq!(proxy.creates_refused(), 1, "a 422 is not retried");
    let done = run(&mcp, &proxy, &args, None).await;
    assert_eq!(done["written"], 45, "{done}");
    let w = done["write_id"].as_str().unwrap().to_owned();
    assert_eq!(first["write_id"], json!(w));
    let created = ids(&done);
    assert_eq!(copies_of(&sb, "undo merged").await.len(), 45);

    let deletes = |sb: &SandboxHandle| sb.stats().by_method.get("DELETE").copied().unwrap_or(0);
    let before = deletes(&sb);
    let u = ok(&mcp, "undo_write", json!({"write_id": w})).await;
    assert_eq!(u["applied"], true, "{u}");
    let mut deleted: Vec<String> = u["restored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["action"], "deleted", "{r}");
            r["id"].as_str().unwrap().to_owned()
        })
        .collect();
    deleted.sort();
    let n = deleted.len();
    deleted.dedup();
    assert_eq!((n, deleted.len()), (45, 45), "{u}");
    let mut want = created.clone();
    want.sort();
    assert_eq!(deleted, want);
    assert_eq!(
        deletes(&sb) - before,
        5,
        "45 records, 10 a request, each once"
    );
    assert!(copies_of(&sb, "undo merged").await.is_empty());
    // Undone: a second undo is refused.
    let again = mcp_support::call(&mcp, "undo_write", json!({"write_id": w})).await;
    assert_eq!(again.is_error, Some(true), "{again:?}");
}

#[tokio::test]
async fn a_rerun_after_undoing_the_partial_write_starts_afresh() {
    let (sb, proxy, mcp) = proxied(Refusal::Invalid).await;
    let records = tagged("undo partial", 35);
    let args = create_args(&records);
    let first = run(&mcp, &proxy, &args, Some(1)).await;
    assert_eq!(first["written"], 10, "{first}");
    let w = first["write_id"].as_str().unwrap().to_owned();
    // The partial write undone: its 10 records deleted.
    let u = ok(&mcp, "undo_write", json!({"write_id": w})).await;
    assert_eq!(u["applied"], true, "{u}");
    assert_eq!(u["restored"].as_array().unwrap().len(), 10, "{u}");
    assert!(copies_of(&sb, "undo partial").await.is_empty());
    // The same call again is a new one: all 35 sent, a new entry.
    let passed = proxy.creates_passed();
    let second = run(&mcp, &proxy, &args, None).await;
    assert_eq!(second["written"], 35, "{second}");
    assert_ne!(second["write_id"], json!(w), "{second}");
    assert!(
        !second["note"].as_str().unwrap().starts_with("Resumed"),
        "{second}"
    );
    assert_eq!(proxy.creates_passed() - passed, 4);
    let copies = copies_of(&sb, "undo partial").await;
    assert_eq!(copies.len(), 35, "{copies:?}");
    assert!(copies.values().all(|c| c.len() == 1), "{copies:?}");
}

/// The stdio server opens its journal after the start-up exchange (no answer of it waits on
/// SQLite). A file that is not a journal is then found: the session goes on, reads work, every
/// write tool refuses naming the reason, and the file is left as it was.
#[tokio::test]
async fn a_stdio_server_with_a_file_that_is_not_a_journal_refuses_writes_and_serves_reads() {
    let sb = sandbox_with(SandboxConfig::demo()).await;
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    let text = "not a journal\n".repeat(500);
    std::fs::write(&notes, &text).unwrap();
    let mut s = start(&sb.addr(), sb.token(), &notes, dir.path()).await;
    s.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .await;
    assert!(
        s.answer(2).await["result"]["tools"]
            .as_array()
            .unwrap()
            .len()
            > 10
    );
    s.send(
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "list_tables", "arguments": {"base_id": DEMO}}}),
    )
    .await;
    let read = s.answer(3).await;
    assert_eq!(read["result"]["isError"], false, "{read}");
    for (id, name, args) in [
        (
            4,
            "create_record",
            json!({"base_id": DEMO, "table_id": "Tasks", "fields": {"Name": "x"}}),
        ),
        (
            5,
            "batch_create_records",
            json!({"base_id": DEMO, "table_id": "Tasks", "records": [{"Name": "y"}]}),
        ),
    ] {
        s.send(
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": name, "arguments": args}}),
        )
        .await;
        let v = s.answer(id).await;
        assert_eq!(v["result"]["isError"], true, "{v}");
        let said = v["result"]["content"][0]["text"].as_str().unwrap();
        assert!(said.contains("not a database"), "{said}");
        assert!(said.contains("Write tools are refused"), "{said}");
    }
    s.child.kill().await.unwrap();
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), text);
    let base: BaseId = DEMO.parse().unwrap();
    let rows = client_for(&sb)
        .list_all_records(&base, "Tasks", ListQuery::default())
        .await
        .unwrap();
    assert!(
        rows.iter()
            .all(|r| r.fields.get("Name").and_then(Value::as_str) != Some("x"))
    );
}
