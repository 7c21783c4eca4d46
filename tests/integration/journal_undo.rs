//! The write journal end to end: write tools journal their writes, `list_recent_writes` and
//! `undo_write` over MCP (in-process sandbox + rmcp client), the journal file shared by two
//! server states and by the `airtable-mcp writes` CLI, and a proptest of random write
//! sequences undone in reverse order.
//!
//! Adding a round trip for another write tool: `let before = snapshot(&c, "Tasks").await;`,
//! call the tool, `let u = undo(&h.client, &write_id).await;`, then
//! `assert_restored(&before, &snapshot(&c, "Tasks").await, &[u]);`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::mcp_support;

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;

use airtable_mcp::airtable::{BaseId, Client, FieldType, ListQuery};
use airtable_mcp::config::JournalLocation;
use airtable_mcp::tools::{AirtableServer, ServerOptions, ServerState};
use mcp_support::*;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

type Snapshot = BTreeMap<String, Map<String, Value>>;

/// The writable fields of every record of `table`, by record ID (computed fields are
/// recomputed, not restored; attachments compared by URL and filename: their IDs are new).
async fn snapshot(c: &Client, table: &str) -> Snapshot {
    let base: BaseId = DEMO.parse().unwrap();
    let schema = c.base_schema(&base).await.unwrap();
    let t = schema
        .tables
        .iter()
        .find(|t| t.name == table || t.id.as_ref() == table)
        .unwrap();
    let recs = c
        .list_all_records(&base, table, ListQuery::new())
        .await
        .unwrap();
    recs.into_iter()
        .map(|r| {
            let fields = r
                .fields
                .iter()
                .filter_map(|(k, v)| {
                    let f = t.fields.iter().find(|f| &f.name == k)?;
                    if f.field_type.is_computed() {
                        return None;
                    }
                    let v = match (&f.field_type, v) {
                        (FieldType::MultipleAttachments, Value::Array(a)) => Value::Array(
                            a.iter()
                                .map(|x| json!({"url": x["url"], "filename": x["filename"]}))
                                .collect(),
                        ),
                        _ => v.clone(),
                    };
                    Some((k.clone(), v))
                })
                .collect();
            (r.id.to_string(), fields)
        })
        .collect()
}

/// Cell equality for people: empty values are equal, numbers by value.
fn same(a: &Value, b: &Value) -> bool {
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Bool(b) => !b,
        _ => false,
    };
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ if empty(a) && empty(b) => true,
        _ => a == b,
    }
}

/// `after` equals `before` field by field once records the undos recreated are matched by
/// their new IDs — the one thing the undo results list as not restorable besides computed
/// values (every recreated record must be listed so).
fn assert_restored(before: &Snapshot, after: &Snapshot, undos: &[Value]) {
    // new ID -> the ID it replaced (chains: a record recreated twice).
    let mut back: HashMap<String, String> = HashMap::new();
    for u in undos {
        for r in u["restored"].as_array().into_iter().flatten() {
            if let Some(new) = r["new_id"].as_str() {
                let old = r["id"].as_str().unwrap().to_owned();
                let listed = u["not_restorable"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|n| {
                        n["id"] == old.as_str() && n["reason"].as_str().unwrap().contains("new ID")
                    });
                assert!(listed, "{old} recreated as {new} but not listed: {u}");
                back.insert(new.to_owned(), old);
            }
        }
    }
    let original = |id: &str| {
        let mut cur = id.to_owned();
        while let Some(o) = back.get(&cur) {
            cur = o.clone();
        }
        cur
    };
    let mapped: Snapshot = after
        .iter()
        .map(|(id, f)| (original(id), f.clone()))
        .collect();
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        mapped.keys().collect::<Vec<_>>(),
        "the same records (by original ID)"
    );
    for (id, want) in before {
        let got = &mapped[id];
        for k in want.keys().chain(got.keys()) {
            let (w, g) = (
                want.get(k).unwrap_or(&Value::Null),
                got.get(k).unwrap_or(&Value::Null),
            );
            assert!(same(w, g), "{id}.{k}: was {w}, now {g}");
        }
    }
}

/// Undo a write through the tool; it must apply.
async fn undo(client: &McpClient, write_id: &str) -> Value {
    let u = ok(client, "undo_write", json!({ "write_id": write_id })).await;
    assert_eq!(u["applied"], true, "{u}");
    u
}

fn write_id(v: &Value) -> String {
    v["write_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no write_id in {v}"))
        .to_owned()
}

fn file_options(path: &std::path::Path) -> ServerOptions {
    ServerOptions {
        journal: JournalLocation::File(path.to_owned()),
        ..ServerOptions::default()
    }
}

#[tokio::test]
async fn update_and_delete_round_trip_through_the_tools() {
    let h = harness().await;
    let c = client_for(&h.sandbox);
    let before = snapshot(&c, "Tasks").await;
    let ids: Vec<&String> = before.keys().collect();
    let (a, b) = (ids[0].clone(), ids[1].clone());

    let w1 = write_id(
        &ok(
            &h.client,
            "update_record",
            json!({"base_id": DEMO, "table_id": "Tasks", "record_id": a,
                   "fields": {"Status": "Blocked", "Notes": "changed", "Estimate (hours)": null}}),
        )
        .await,
    );
    let listed = ok(&h.client, "list_recent_writes", json!({})).await;
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["writes"][0]["id"], w1.as_str());
    assert_eq!(listed["writes"][0]["tool"], "update_record");
    assert_eq!(listed["writes"][0]["record_count"], 1);
    assert_eq!(listed["writes"][0]["complete"], true);

    let plan = ok(
        &h.client,
        "undo_write",
        json!({"write_id": w1, "dry_run": true}),
    )
    .await;
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["restored"][0]["action"], "restored");
    assert_ne!(
        snapshot(&c, "Tasks").await,
        before,
        "a dry run sends nothing"
    );

    let u1 = undo(&h.client, &w1).await;
    // Fresh schema, one read of the record, one patch.
    assert_eq!(u1["requests"], 3);
    assert_restored(
        &before,
        &snapshot(&c, "Tasks").await,
        std::slice::from_ref(&u1),
    );
    let again = err(&h.client, "undo_write", json!({ "write_id": w1 })).await;
    assert!(
        again.contains(u1["write_id"].as_str().unwrap()),
        "names the undo: {again}"
    );

    let w2 = write_id(
        &ok(
            &h.client,
            "delete_record",
            json!({"base_id": DEMO, "table_id": "Tasks", "record_id": b}),
        )
        .await,
    );
    let u2 = undo(&h.client, &w2).await;
    assert_eq!(u2["restored"][0]["action"], "recreated");
    // Fresh schema and one create (nothing to read: the record is gone).
    assert_eq!(u2["requests"], 2);
    assert_restored(&before, &snapshot(&c, "Tasks").await, &[u1, u2.clone()]);

    // The undo is a write of its own, and undoing it deletes the recreated record again.
    let u3 = undo(&h.client, u2["write_id"].as_str().unwrap()).await;
    assert_eq!(u3["restored"][0]["action"], "deleted");
    assert!(!snapshot(&c, "Tasks").await.contains_key(&b));
    let listed = ok(&h.client, "list_recent_writes", json!({"limit": 10})).await;
    assert_eq!(listed["count"], 5);
    assert_eq!(listed["writes"][0]["undo_of"], u2["write_id"]);
}

#[tokio::test]
async fn a_later_change_is_a_conflict_until_forced() {
    let h = harness().await;
    let c = client_for(&h.sandbox);
    let before = snapshot(&c, "Tasks").await;
    let a = before.keys().next().unwrap().clone();
    let set = |status: &'static str| json!({"base_id": DEMO, "table_id": "Tasks", "record_id": a, "fields": {"Status": status}});
    let w1 = write_id(&ok(&h.client, "update_record", set("Blocked")).await);
    ok(&h.client, "update_record", set("Done")).await;
    let r = call(&h.client, "undo_write", json!({ "write_id": w1 })).await;
    assert_eq!(r.is_error, Some(true));
    let out = r.structured_content.unwrap();
    assert_eq!(out["applied"], false);
    assert_eq!(out["conflicts"][0]["field"], "Status");
    assert_eq!(out["conflicts"][0]["written"], "Blocked");
    assert_eq!(out["conflicts"][0]["current"], "Done");
    assert_eq!(snapshot(&c, "Tasks").await[&a]["Status"], "Done");
    let forced = ok(
        &h.client,
        "undo_write",
        json!({"write_id": w1, "force": true}),
    )
    .await;
    assert_eq!(forced["applied"], true);
    assert_restored(&before, &snapshot(&c, "Tasks").await, &[forced]);
}

#[tokio::test]
async fn the_journal_file_outlives_the_server_and_a_bad_one_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("journal.sqlite3");
    let sb = demo_sandbox().await;
    let c = client_for(&sb);
    let before = snapshot(&c, "Tasks").await;
    let a = before.keys().next().unwrap().clone();
    let w = {
        let state = ServerState::new(Ok(client_for(&sb)), file_options(&path));
        assert_eq!(state.journal_problem(), None);
        let client = connect(AirtableServer::new(state)).await;
        let out = ok(
            &client,
            "update_record",
            json!({"base_id": DEMO, "table_id": "Tasks", "record_id": a, "fields": {"Name": "persisted"}}),
        )
        .await;
        client.cancel().await.unwrap();
        write_id(&out)
    };
    let state = ServerState::new(Ok(client_for(&sb)), file_options(&path));
    let client = connect(AirtableServer::new(state)).await;
    let listed = ok(&client, "list_recent_writes", json!({"base_id": DEMO})).await;
    assert_eq!(listed["writes"][0]["id"], w.as_str());
    let u = undo(&client, &w).await;
    assert_restored(&before, &snapshot(&c, "Tasks").await, &[u]);

    // A journal that cannot be opened: the state says why (serve refuses to start).
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let bad = ServerState::new(
        Ok(client_for(&sb)),
        file_options(&blocker.join("journal.sqlite3")),
    );
    assert!(bad.journal_problem_known().unwrap().contains("journal"));
    assert!(bad.journal_problem().unwrap().contains("journal"));

    // A file that is not a journal: its file exists, so the stdio server starts (SQLite opens
    // it after the start-up exchange); then write tools refuse, reads work, the file is kept.
    let garbage = dir.path().join("notes.txt");
    let text = "not a journal: somebody's notes\n".repeat(200);
    std::fs::write(&garbage, &text).unwrap();
    let state = ServerState::new(Ok(client_for(&sb)), file_options(&garbage));
    assert_eq!(state.journal_problem_known(), None);
    let client = connect(AirtableServer::new(state.clone())).await;
    ok(&client, "list_tables", json!({"base_id": DEMO})).await;
    let r = call(
        &client,
        "update_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": a, "fields": {"Name": "unjournaled"}}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    let said = serde_json::to_string(&r.content).unwrap();
    assert!(said.contains("Write tools are refused"), "{said}");
    assert!(said.contains("not a database"), "{said}");
    assert_ne!(snapshot(&c, "Tasks").await[&a]["Name"], "unjournaled");
    assert!(state.journal_problem_known().is_some());
    assert!(state.journal_problem().unwrap().contains("not a database"));
    client.cancel().await.unwrap();
    assert_eq!(std::fs::read_to_string(&garbage).unwrap(), text);
}

#[tokio::test]
async fn http_sessions_with_another_token_neither_see_nor_undo_the_write() {
    let h = harness().await;
    let a = snapshot(&client_for(&h.sandbox), "Tasks")
        .await
        .into_keys()
        .next()
        .unwrap();
    let w = write_id(
        &ok(
            &h.client,
            "update_record",
            json!({"base_id": DEMO, "table_id": "Tasks", "record_id": a, "fields": {"Name": "mine"}}),
        )
        .await,
    );
    // What an HTTP session bringing its own X-Airtable-Token gets (same state, same journal).
    let other = connect(AirtableServer::for_token(
        h.state.clone(),
        secrecy::SecretString::from("patOTHERTOKEN.0000".to_owned()),
    ))
    .await;
    let listed = ok(&other, "list_recent_writes", json!({})).await;
    assert_eq!(listed["count"], 0);
    let e = err(&other, "undo_write", json!({ "write_id": w })).await;
    assert!(e.contains("No write"), "{e}");
    // The same token in another session sees it.
    let same = connect(AirtableServer::for_token(
        h.state.clone(),
        secrecy::SecretString::from(h.sandbox.token().to_owned()),
    ))
    .await;
    let listed = ok(&same, "list_recent_writes", json!({})).await;
    assert_eq!(listed["writes"][0]["id"], w.as_str());
}

#[tokio::test]
async fn without_a_journal_writes_have_no_id_and_undo_says_why() {
    let sb = demo_sandbox().await;
    let options = ServerOptions {
        journal: JournalLocation::Off,
        ..ServerOptions::default()
    };
    let client = connect(AirtableServer::new(ServerState::new(
        Ok(client_for(&sb)),
        options,
    )))
    .await;
    let a = snapshot(&client_for(&sb), "Tasks")
        .await
        .into_keys()
        .next()
        .unwrap();
    let out = ok(
        &client,
        "update_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": a, "fields": {"Name": "x"}}),
    )
    .await;
    assert!(out.get("write_id").is_none());
    let e = err(&client, "list_recent_writes", json!({})).await;
    assert!(e.contains("--no-journal"), "{e}");
}

async fn cli(home: &std::path::Path, url: &str, token: &str, args: &[&str]) -> (bool, String) {
    let config = home.join("config.toml");
    std::fs::write(&config, "").unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_airtable-mcp"));
    for (name, _) in airtable_mcp::env::ENV_VARS {
        cmd.env_remove(name);
    }
    let out = cmd
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("AIRTABLE_MCP_CONFIG", &config)
        .env("AIRTABLE_MCP_KEYRING", "none")
        .env("AIRTABLE_API_KEY", token)
        .args(["writes"])
        .args(args)
        .args(["--api-url", url])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains(token) || token.len() < 4,
        "no secret in the logs"
    );
    (
        out.status.success(),
        format!("{}{stderr}", String::from_utf8_lossy(&out.stdout)),
    )
}

#[tokio::test]
async fn the_writes_cli_lists_and_undoes_what_the_server_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite3");
    let journal = path.to_str().unwrap();
    let sb = demo_sandbox().await;
    let c = client_for(&sb);
    let before = snapshot(&c, "Tasks").await;
    let ids: Vec<String> = before.keys().take(2).cloned().collect();
    let state = ServerState::new(Ok(client_for(&sb)), file_options(&path));
    let client = connect(AirtableServer::new(state)).await;
    let w1 = write_id(
        &ok(
            &client,
            "update_record",
            json!({"base_id": DEMO, "table_id": "Tasks", "record_id": ids[0], "fields": {"Status": "Blocked"}}),
        )
        .await,
    );
    let w2 = write_id(
        &ok(
            &client,
            "delete_record",
            json!({"base_id": DEMO, "table_id": "Tasks", "record_id": ids[1]}),
        )
        .await,
    );
    let url = sb.url().to_string();
    let token = sb.token().to_owned();

    let (okay, out) = cli(
        dir.path(),
        &url,
        &token,
        &["list", "--json", "--journal", journal],
    )
    .await;
    assert!(okay, "{out}");
    let v: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let listed: Vec<&str> = v["writes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![w2.as_str(), w1.as_str()]);

    let (okay, table) = cli(dir.path(), &url, &token, &["list", "--journal", journal]).await;
    assert!(okay, "{table}");
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table.contains(&w1) && table.contains("delete_record"),
        "{table}"
    );

    // Another token sees none of it.
    let (okay, other) = cli(
        dir.path(),
        &url,
        "another-token",
        &["list", "--json", "--journal", journal],
    )
    .await;
    assert!(okay, "{other}");
    assert!(other.starts_with(r#"{"count":0"#), "{other}");

    let (okay, out) = cli(
        dir.path(),
        &url,
        &token,
        &["undo", &w2, "--json", "--journal", journal],
    )
    .await;
    assert!(okay, "{out}");
    let u2: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let (okay, text) = cli(
        dir.path(),
        &url,
        &token,
        &["undo", &w1, "--journal", journal],
    )
    .await;
    assert!(okay, "{text}");
    assert!(
        text.contains("restored") && text.contains("Airtable requests: 3"),
        "{text}"
    );
    assert_restored(&before, &snapshot(&c, "Tasks").await, &[u2]);

    // The server sees what the CLI did.
    let listed = ok(&client, "list_recent_writes", json!({})).await;
    assert_eq!(listed["count"], 4);
    assert!(listed["writes"][2]["undone_by"].is_string());

    // An unknown ID fails with a reason.
    let (okay, out) = cli(
        dir.path(),
        &url,
        &token,
        &["undo", "w0000000000000000", "--journal", journal],
    )
    .await;
    assert!(!okay && out.contains("No write"), "{out}");
}

#[derive(Debug, Clone)]
enum Op {
    Update {
        pick: usize,
        status: usize,
        notes: Option<usize>,
    },
    Delete {
        pick: usize,
    },
    Create {
        name: usize,
    },
    BatchUpdate {
        pick: usize,
        estimate: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..100, 0usize..4, proptest::option::of(0usize..3))
            .prop_map(|(pick, status, notes)| Op::Update { pick, status, notes }),
        1 => (0usize..100).prop_map(|pick| Op::Delete { pick }),
        1 => (0usize..1000).prop_map(|name| Op::Create { name }),
        1 => (0usize..100, any::<u8>()).prop_map(|(pick, estimate)| Op::BatchUpdate { pick, estimate }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]

    /// Random creates, updates (single and batch) and deletes through the tools, then every
    /// write undone in reverse order: the table is as it was, apart from the new IDs of
    /// recreated records.
    #[test]
    fn random_writes_undone_in_reverse_restore_the_table(ops in proptest::collection::vec(op(), 1..7)) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let h = harness().await;
            let c = client_for(&h.sandbox);
            let before = snapshot(&c, "Tasks").await;
            let mut live: Vec<String> = before.keys().take(6).cloned().collect();
            let mut writes = Vec::new();
            for op in &ops {
                if live.is_empty() {
                    break;
                }
                let out = match op {
                    Op::Update { pick, status, notes } => {
                        let id = &live[pick % live.len()];
                        let status = ["Todo", "In progress", "Blocked", "Done"][*status];
                        let mut fields = json!({ "Status": status });
                        if let Some(n) = notes {
                            fields["Notes"] = [json!(null), json!("a"), json!("b\nc")][*n].clone();
                        }
                        ok(&h.client, "update_record",
                           json!({"base_id": DEMO, "table_id": "Tasks", "record_id": id, "fields": fields})).await
                    }
                    Op::Delete { pick } => {
                        let id = live.remove(pick % live.len());
                        ok(&h.client, "delete_record",
                           json!({"base_id": DEMO, "table_id": "Tasks", "record_id": id})).await
                    }
                    Op::Create { name } => {
                        let out = ok(&h.client, "create_record",
                           json!({"base_id": DEMO, "table_id": "Tasks",
                                  "fields": {"Name": format!("Created {name}"), "Status": "Todo"}})).await;
                        live.push(out["record"]["id"].as_str().unwrap().to_owned());
                        out
                    }
                    Op::BatchUpdate { pick, estimate } => {
                        let a = &live[pick % live.len()];
                        let b = &live[(pick + 1) % live.len()];
                        let mut records = vec![json!({"id": a, "fields": {"Estimate (hours)": estimate}})];
                        if a != b {
                            records.push(json!({"id": b, "fields": {"Priority": "High", "Done": true}}));
                        }
                        ok(&h.client, "batch_update_records",
                           json!({"base_id": DEMO, "table_id": "Tasks", "records": records})).await
                    }
                };
                writes.push(write_id(&out));
            }
            let mut undos = Vec::new();
            for w in writes.iter().rev() {
                undos.push(undo(&h.client, w).await);
            }
            assert_restored(&before, &snapshot(&c, "Tasks").await, &undos);
        });
    }
}

/// One write through `tool`, then its undo: the table (writable fields, by original record
/// ID) must equal its earlier state, apart from what the undo lists as not restorable.
/// Returns a row of the round-trip table (printed by the test).
async fn round_trip(h: &Harness, table: &str, tool: &str, args: Value) -> String {
    let c = client_for(&h.sandbox);
    let before = snapshot(&c, table).await;
    let out = ok(&h.client, tool, args).await;
    let w = write_id(&out);
    assert_ne!(snapshot(&c, table).await, before, "{tool} changed nothing");
    let u = undo(&h.client, &w).await;
    assert_restored(
        &before,
        &snapshot(&c, table).await,
        std::slice::from_ref(&u),
    );
    let restored = u["restored"].as_array().map_or(0, Vec::len);
    let reasons: std::collections::BTreeSet<String> = u["not_restorable"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            let r = n["reason"].as_str().unwrap_or_default();
            // One line per kind of reason (record IDs differ from record to record).
            r.split(" rec").next().unwrap_or(r).trim().to_owned()
        })
        .collect();
    let not = u["not_restorable"].as_array().map_or(0, Vec::len);
    format!(
        "| {tool} | {restored} | {} | {not}{} |",
        u["requests"],
        if reasons.is_empty() {
            String::new()
        } else {
            format!(": {}", reasons.into_iter().collect::<Vec<_>>().join("; "))
        }
    )
}

#[tokio::test]
async fn every_record_write_tool_round_trips_through_undo() {
    let h = harness().await;
    let c = client_for(&h.sandbox);
    let tasks = snapshot(&c, "Tasks").await;
    let ids: Vec<String> = tasks.keys().cloned().collect();
    let mut rows = vec![
        "| tool | records restored | undo requests | not restorable |".to_owned(),
        "|---|---|---|---|".to_owned(),
    ];

    rows.push(
        round_trip(
            &h,
            "Tasks",
            "create_record",
            json!({"base_id": DEMO, "table_id": "Tasks",
                   "fields": {"Name": "Round trip", "Status": "Todo", "Estimate (hours)": 2}}),
        )
        .await,
    );
    let new: Vec<Value> = (0..25)
        .map(|i| json!({"Name": format!("Batch {i}"), "Priority": "Low", "Notes": "x"}))
        .collect();
    rows.push(
        round_trip(
            &h,
            "Tasks",
            "batch_create_records",
            json!({"base_id": DEMO, "table_id": "Tasks", "records": new}),
        )
        .await,
    );
    let updates: Vec<Value> = ids[..15]
        .iter()
        .map(|id| {
            json!({"id": id, "fields": {"Status": "Blocked", "Notes": "bulk edit",
                   "Estimate (hours)": null, "Done": true}})
        })
        .collect();
    rows.push(
        round_trip(
            &h,
            "Tasks",
            "batch_update_records",
            json!({"base_id": DEMO, "table_id": "Tasks", "records": updates}),
        )
        .await,
    );
    // Deleted records carry links (Project, Assignee), attachments and selects.
    rows.push(
        round_trip(
            &h,
            "Tasks",
            "batch_delete_records",
            json!({"base_id": DEMO, "table_id": "Tasks", "record_ids": ids[20..32]}),
        )
        .await,
    );
    let people = snapshot(&c, "People").await;
    let names: Vec<String> = people
        .values()
        .filter_map(|f| f.get("Name").and_then(Value::as_str).map(str::to_owned))
        .take(3)
        .collect();
    let mut upserts: Vec<Value> = names
        .iter()
        .map(|n| json!({"Name": n, "Email": format!("{}@changed.example", n.len())}))
        .collect();
    upserts.extend((0..3).map(|i| json!({"Name": format!("Newcomer {i}"), "Active": true})));
    rows.push(
        round_trip(
            &h,
            "People",
            "batch_upsert_records",
            json!({"base_id": DEMO, "table_id": "People", "records": upserts,
                   "fields_to_merge_on": ["Name"]}),
        )
        .await,
    );
    // sync_tables apply: People into a new Roster table (creates), then, after changes in
    // People, again (updates).
    ok(
        &h.client,
        "create_table",
        json!({"base_id": DEMO, "name": "Roster", "fields": [
            {"name": "Name", "type": "singleLineText"}, {"name": "Email", "type": "email"},
            {"name": "Active", "type": "checkbox"}]}),
    )
    .await;
    let sync = json!({"source_base_id": DEMO, "source_table_id": "People", "target_base_id": DEMO,
                      "target_table_id": "Roster", "key_field": "Name", "dry_run": false});
    rows.push(round_trip(&h, "Roster", "sync_tables", sync.clone()).await);
    ok(&h.client, "sync_tables", sync.clone()).await;
    let edits: Vec<Value> = people
        .keys()
        .take(4)
        .map(|id| json!({"id": id, "fields": {"Email": "moved@example.com", "Active": false}}))
        .collect();
    ok(
        &h.client,
        "batch_update_records",
        json!({"base_id": DEMO, "table_id": "People", "records": edits}),
    )
    .await;
    let row = round_trip(&h, "Roster", "sync_tables", sync).await;
    rows.push(row.replacen("sync_tables", "sync_tables (updates)", 1));

    // A comment: undo deletes it.
    let rec = &ids[40];
    let comments = |v: &Value| v["comments"].as_array().map_or(0, Vec::len);
    let args = json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec});
    let n0 = comments(&ok(&h.client, "list_comments", args.clone()).await);
    let mut with_text = args.clone();
    with_text["text"] = json!("round trip");
    let w = write_id(&ok(&h.client, "create_comment", with_text).await);
    assert_eq!(
        comments(&ok(&h.client, "list_comments", args.clone()).await),
        n0 + 1
    );
    let u = undo(&h.client, &w).await;
    assert_eq!(comments(&ok(&h.client, "list_comments", args).await), n0);
    rows.push(format!("| create_comment | 1 | {} | 0 |", u["requests"]));

    eprintln!(
        "round trips (demo base, in-process sandbox):\n{}",
        rows.join("\n")
    );
}
