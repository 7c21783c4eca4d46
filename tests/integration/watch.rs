//! The change feed (#15) end to end: watch_table, list_table_changes, list_watches and
//! unwatch_table over MCP against the sandbox's webhooks (loopback HTTP), with writes made
//! through the tools; persistence across a restart, keep-alive, bounds, errors, and the
//! `airtable://watches/{id}` resource with its update notification.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// resources/subscribe is the 2025-11-25 protocol's, which this in-process client speaks.
#![allow(deprecated)]

use crate::mcp_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use airtable_mcp::config::JournalLocation;
use airtable_mcp::sandbox::SandboxConfig;
use airtable_mcp::tools::{AirtableServer, ServerOptions, ServerState};
use mcp_support::*;
use rmcp::model::{
    CallToolRequestParams, ReadResourceRequestParams, ResourceContents,
    ResourceUpdatedNotificationParam, SubscribeRequestParams,
};
use rmcp::service::NotificationContext;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

const HOUR: Duration = Duration::from_secs(3600);

fn options() -> ServerOptions {
    ServerOptions {
        confirm: airtable_mcp::cli::ConfirmMode::Never,
        ..ServerOptions::default()
    }
}

fn file_options(path: &std::path::Path) -> ServerOptions {
    ServerOptions {
        journal: JournalLocation::File(path.to_owned()),
        ..options()
    }
}

async fn watch(c: &McpClient, table: &str, fields: Option<Value>) -> String {
    let mut args = json!({"base_id": DEMO, "table_id": table});
    if let Some(f) = fields {
        args["fields"] = f;
    }
    let out = ok(c, "watch_table", args).await;
    assert_eq!(out["existing_or_dry_run"], false, "{out}");
    assert_eq!(out["watch"]["status"], "active");
    out["watch"]["watch_id"].as_str().unwrap().to_owned()
}

async fn changes(c: &McpClient, id: &str) -> Value {
    ok(c, "list_table_changes", json!({"watch_id": id})).await
}

async fn create(c: &McpClient, fields: Value) -> String {
    let out = ok(
        c,
        "create_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "fields": fields}),
    )
    .await;
    out["record"]["id"].as_str().unwrap().to_owned()
}

async fn webhook_count(sb: &airtable_mcp::sandbox::SandboxHandle) -> usize {
    let v: Value = reqwest::Client::new()
        .get(format!("{}/v0/bases/{DEMO}/webhooks", sb.addr()))
        .bearer_auth(sb.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["webhooks"].as_array().unwrap().len()
}

#[tokio::test]
async fn list_table_changes_returns_exactly_the_tools_writes() {
    let h = harness_with(options()).await;
    let c = &h.client;
    let id = watch(c, "Tasks", None).await;
    assert!(id.starts_with("wch"), "{id}");
    // Nothing yet.
    let out = changes(c, &id).await;
    assert_eq!(out["changes"], json!([]), "{out}");
    assert_eq!(out["has_more"], false);

    let rec = create(
        c,
        json!({"Name": "Feed me", "Status": "Todo", "Estimate (hours)": 2}),
    )
    .await;
    ok(
        c,
        "update_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "fields": {"Status": "Done", "Notes": "shipped"}}),
    )
    .await;
    ok(
        c,
        "delete_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec}),
    )
    .await;
    let out = changes(c, &id).await;
    let list = out["changes"].as_array().unwrap();
    assert_eq!(list.len(), 3, "{out}");
    let (a, b, d) = (&list[0], &list[1], &list[2]);
    assert_eq!(a["action"], "created");
    assert_eq!(a["record_id"], rec.as_str());
    assert_eq!(
        a["fields"],
        json!({"Name": {"new": "Feed me"}, "Status": {"new": "Todo"}, "Estimate (hours)": {"new": 2}})
    );
    assert_eq!(a["by"], "Sandbox User <sandbox@example.com>");
    assert!(a["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(b["action"], "changed");
    assert_eq!(
        b["fields"],
        json!({"Status": {"old": "Todo", "new": "Done"}, "Notes": {"old": null, "new": "shipped"}})
    );
    assert_eq!(d["action"], "deleted");
    assert_eq!(d["record_id"], rec.as_str());
    assert!(d.get("fields").is_none());
    assert_eq!(out["has_more"], false);
    assert_eq!(out["status"], "active");
    // The next call starts after them; an explicit cursor re-reads.
    assert_eq!(changes(c, &id).await["changes"], json!([]));
    let again = ok(
        c,
        "list_table_changes",
        json!({"watch_id": id, "cursor": "2"}),
    )
    .await;
    assert_eq!(again["changes"].as_array().unwrap().len(), 2, "{again}");

    // A field filter: only changes to Status.
    let only = watch(c, "Tasks", Some(json!(["Status"]))).await;
    let rec = create(c, json!({"Name": "x"})).await;
    ok(
        c,
        "update_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "fields": {"Notes": "ignored"}}),
    )
    .await;
    ok(
        c,
        "update_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "fields": {"Status": "Blocked"}}),
    )
    .await;
    let out = changes(c, &only).await;
    let kinds: Vec<&str> = out["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["created", "changed"], "{out}");
    assert_eq!(
        out["changes"][1]["fields"],
        json!({"Status": {"old": null, "new": "Blocked"}})
    );
    // Watching the same table and fields again returns the same watch.
    let same = ok(
        c,
        "watch_table",
        json!({"base_id": DEMO, "table_id": "Tasks", "fields": "Status"}),
    )
    .await;
    assert_eq!(same["watch"]["watch_id"], only.as_str());
    assert_eq!(same["existing_or_dry_run"], true);

    let listed = ok(c, "list_watches", json!({})).await;
    let w = listed["watches"].as_array().unwrap();
    assert_eq!(w.len(), 2, "{listed}");
    assert_eq!(w[1]["fields"], json!(["Status"]));
    assert_eq!(w[1]["uri"], format!("airtable://watches/{only}"));
}

#[tokio::test]
async fn the_cursor_resumes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite3");
    let sb = demo_sandbox().await;
    let id = {
        let state = ServerState::new(Ok(client_for(&sb)), file_options(&path));
        let c = connect(AirtableServer::new(state)).await;
        let id = watch(&c, "Tasks", None).await;
        create(&c, json!({"Name": "before restart"})).await;
        assert_eq!(
            changes(&c, &id).await["changes"].as_array().unwrap().len(),
            1
        );
        create(&c, json!({"Name": "unread at restart"})).await;
        c.cancel().await.unwrap();
        id
    };
    let state = ServerState::new(Ok(client_for(&sb)), file_options(&path));
    let c = connect(AirtableServer::new(state)).await;
    let listed = ok(&c, "list_watches", json!({})).await;
    assert_eq!(listed["watches"][0]["watch_id"], id.as_str());
    assert_eq!(listed["watches"][0]["pending"], 1, "{listed}");
    let out = changes(&c, &id).await;
    let list = out["changes"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{out}");
    assert_eq!(list[0]["fields"]["Name"]["new"], "unread at restart");
    // Another token's server sees no such watch.
    let other = ServerState::new(
        Ok(client_with_token(&sb, "someone-else")),
        file_options(&path),
    );
    let c2 = connect(AirtableServer::new(other)).await;
    let e = err(&c2, "list_table_changes", json!({"watch_id": id})).await;
    assert!(e.contains("Unknown watch_id"), "{e}");
}

#[tokio::test]
async fn an_expiring_webhook_is_refreshed_and_an_expired_one_reported() {
    // Webhooks live one day here, so every activity finds less than 2 days left.
    let sb = sandbox_with(SandboxConfig {
        webhook_lifetime: 24 * HOUR,
        ..SandboxConfig::demo()
    })
    .await;
    let state = ServerState::new(Ok(client_for(&sb)), options());
    let c = connect(AirtableServer::new(state)).await;
    let kept = watch(&c, "Tasks", None).await;
    let idle = watch(&c, "People", None).await;
    sb.state().advance_clock(20 * HOUR);
    let posts = sb.stats().by_method.get("POST").copied().unwrap_or(0);
    changes(&c, &kept).await; // refreshes: 20 of 24 hours gone
    assert_eq!(sb.stats().by_method["POST"], posts + 1, "one refresh");
    sb.state().advance_clock(20 * HOUR); // 40 h: alive only thanks to the refresh
    create(&c, json!({"Name": "after 40 hours"})).await;
    let out = changes(&c, &kept).await;
    assert_eq!(out["status"], "active", "{out}");
    assert_eq!(out["changes"][0]["fields"]["Name"]["new"], "after 40 hours");

    let out = changes(&c, &idle).await;
    assert_eq!(out["status"], "expired", "{out}");
    assert!(out["note"].as_str().unwrap().contains("expired"), "{out}");
    let listed = ok(&c, "list_watches", json!({})).await;
    assert_eq!(listed["watches"][1]["status"], "expired", "{listed}");
    // A week later the expired webhook is gone.
    sb.state().advance_clock(8 * 24 * HOUR);
    let e = err(&c, "list_table_changes", json!({"watch_id": idle})).await;
    assert!(e.contains("no longer exists"), "{e}");
}

#[tokio::test]
async fn unwatch_deletes_the_webhook_and_dry_runs_change_nothing() {
    let h = harness_with(options()).await;
    let c = &h.client;
    let dry = ok(
        c,
        "watch_table",
        json!({"base_id": DEMO, "table_id": "Tasks", "dry_run": true}),
    )
    .await;
    assert_eq!(dry["existing_or_dry_run"], true);
    assert!(
        dry["note"]
            .as_str()
            .unwrap()
            .contains("Nothing was created")
    );
    assert_eq!(webhook_count(&h.sandbox).await, 0);
    let id = watch(c, "Tasks", None).await;
    assert_eq!(webhook_count(&h.sandbox).await, 1);
    let out = ok(c, "unwatch_table", json!({"watch_id": id, "dry_run": true})).await;
    assert_eq!(
        (out["removed"].clone(), out["dry_run"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(webhook_count(&h.sandbox).await, 1);
    let out = ok(c, "unwatch_table", json!({"watch_id": id})).await;
    assert_eq!(out["removed"], true, "{out}");
    assert_eq!(webhook_count(&h.sandbox).await, 0);
    assert_eq!(ok(c, "list_watches", json!({})).await["watches"], json!([]));
    for tool in ["list_table_changes", "unwatch_table"] {
        let e = err(c, tool, json!({"watch_id": id})).await;
        assert!(
            e.contains("Unknown watch_id") && e.contains("list_watches"),
            "{e}"
        );
    }
    let e = err(
        c,
        "watch_table",
        json!({"base_id": DEMO, "table_id": "Tasks", "fields": ["Nope"]}),
    )
    .await;
    assert!(e.contains("Unknown field \"Nope\""), "{e}");
    let id = watch(c, "Tasks", None).await;
    let e = err(
        c,
        "list_table_changes",
        json!({"watch_id": id, "cursor": "soon"}),
    )
    .await;
    assert!(e.contains("cursor"), "{e}");
    let e = err(
        c,
        "list_table_changes",
        json!({"watch_id": id, "max_changes": 0}),
    )
    .await;
    assert!(e.contains("max_changes"), "{e}");
    // Numbers may come as strings and cursors as numbers.
    let out = ok(
        c,
        "list_table_changes",
        json!({"watch_id": id, "cursor": 1, "max_changes": "5"}),
    )
    .await;
    assert_eq!(out["cursor"], "1", "{out}");
    let e = err(c, "list_table_changes", json!({"watch_id": id, "bogus": 1})).await;
    assert!(e.contains("bogus") && e.contains("max_changes"), "{e}");
}

#[tokio::test]
async fn many_changes_come_back_bounded_with_has_more() {
    let h = harness_with(options()).await;
    let c = &h.client;
    let id = watch(c, "Tasks", None).await;
    let records: Vec<Value> = (0..30)
        .map(|i| json!({"Name": format!("bulk {i}"), "Notes": "n".repeat(200)}))
        .collect();
    ok(
        c,
        "batch_create_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "records": records}),
    )
    .await;
    // 30 records = 3 requests = 3 Airtable transactions of 10.
    let mut seen = Vec::new();
    let mut calls = 0;
    loop {
        let out = ok(
            c,
            "list_table_changes",
            json!({"watch_id": id, "max_changes": 15}),
        )
        .await;
        calls += 1;
        let n = out["changes"].as_array().unwrap().len();
        assert!(n <= 15, "{n}");
        seen.extend(
            out["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["record_id"].clone()),
        );
        if out["has_more"] == false {
            break;
        }
        assert!(calls < 10);
    }
    assert_eq!(calls, 3);
    seen.dedup();
    assert_eq!(seen.len(), 30);
}

/// A client that records resource update notifications.
#[derive(Clone, Default)]
struct Listener {
    updated: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Listener {
    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.updated.lock().unwrap().push(params.uri);
    }
}

#[tokio::test]
async fn a_subscriber_is_told_when_new_changes_arrive() {
    let sb = demo_sandbox().await;
    let state = ServerState::new(
        Ok(client_for(&sb)),
        ServerOptions {
            watch_poll_interval: Duration::from_millis(200),
            ..options()
        },
    );
    let server = AirtableServer::new(state);
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let listener = Listener::default();
    let client = listener.clone().serve(client_io).await.unwrap();
    let call = |name: &str, args: Value| {
        let Value::Object(map) = args else { panic!() };
        client.call_tool(CallToolRequestParams::new(name.to_owned()).with_arguments(map))
    };
    let out = call("watch_table", json!({"base_id": DEMO, "table_id": "Tasks"}))
        .await
        .unwrap();
    let w = out.structured_content.unwrap()["watch"].clone();
    let uri = w["uri"].as_str().unwrap().to_owned();
    // The template is listed, and the resource reads.
    let templates = client.list_resource_templates(None).await.unwrap();
    assert!(
        templates
            .resource_templates
            .iter()
            .any(|t| t.uri_template == "airtable://watches/{watch_id}")
    );
    client
        .subscribe(SubscribeRequestParams::new(uri.clone()))
        .await
        .unwrap();
    call(
        "create_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "fields": {"Name": "ping"}}),
    )
    .await
    .unwrap();
    let mut told = false;
    for _ in 0..150 {
        if listener.updated.lock().unwrap().contains(&uri) {
            told = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(told, "no notifications/resources/updated for {uri}");
    let read = client
        .read_resource(ReadResourceRequestParams::new(uri.clone()))
        .await
        .unwrap();
    let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        panic!("not text");
    };
    let v: Value = serde_json::from_str(text).unwrap();
    assert_eq!(v["pending"], 1, "{v}");
    assert_eq!(v["status"], "active");
    let e = client
        .read_resource(ReadResourceRequestParams::new(
            "airtable://watches/wchnope".to_owned(),
        ))
        .await;
    assert!(e.is_err());
}

#[tokio::test]
async fn a_restarted_server_keeps_stored_watches_alive_without_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite3");
    let sb = sandbox_with(SandboxConfig {
        webhook_lifetime: 24 * HOUR,
        ..SandboxConfig::demo()
    })
    .await;
    {
        let state = ServerState::new(Ok(client_for(&sb)), file_options(&path));
        let c = connect(AirtableServer::new(state)).await;
        watch(&c, "Tasks", None).await;
        c.cancel().await.unwrap();
    }
    sb.state().advance_clock(20 * HOUR);
    let posts = sb.stats().by_method.get("POST").copied().unwrap_or(0);
    // A new server on the same journal, polling fast; no tool is called.
    let _state = ServerState::new(
        Ok(client_for(&sb)),
        ServerOptions {
            watch_poll_interval: Duration::from_millis(100),
            ..file_options(&path)
        },
    );
    let _server = AirtableServer::new(_state.clone());
    let mut refreshed = false;
    for _ in 0..100 {
        if sb.stats().by_method.get("POST").copied().unwrap_or(0) > posts {
            refreshed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refreshed,
        "the poller did not refresh the stored watch's webhook"
    );
}
