//! MCP resources (base and table schemas), subscriptions, prompts and completion against the
//! sandbox, through an in-process MCP client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// resources/subscribe is the 2025-11-25 protocol's, which this in-process client speaks.
#![allow(deprecated)]

use crate::mcp_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use airtable_mcp::tools::{AirtableServer, ServerOptions, ServerState};
use mcp_support::*;
use rmcp::model::{
    ArgumentInfo, CompleteRequestParams, CompletionContext, GetPromptRequestParams,
    PromptReference, ReadResourceRequestParams, Reference, ResourceContents,
    ResourceTemplateReference, ResourceUpdatedNotificationParam, SubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

/// A client that records resource notifications.
#[derive(Clone, Default)]
struct Watcher {
    updated: Arc<Mutex<Vec<String>>>,
    list_changed: Arc<Mutex<usize>>,
    notify: Arc<tokio::sync::Notify>,
}

impl ClientHandler for Watcher {
    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.updated.lock().unwrap().push(params.uri);
        self.notify.notify_waiters();
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        *self.list_changed.lock().unwrap() += 1;
        self.notify.notify_waiters();
    }
}

struct Setup {
    _sandbox: airtable_mcp::sandbox::SandboxHandle,
    client: RunningService<RoleClient, Watcher>,
    watcher: Watcher,
}

async fn setup() -> Setup {
    let sandbox = demo_sandbox().await;
    let state = ServerState::new(Ok(client_for(&sandbox)), ServerOptions::default());
    let server = AirtableServer::new(state);
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let watcher = Watcher::default();
    let client = watcher.clone().serve(client_io).await.expect("client");
    Setup {
        _sandbox: sandbox,
        client,
        watcher,
    }
}

fn text_of(contents: &[ResourceContents]) -> Value {
    match &contents[0] {
        ResourceContents::TextResourceContents {
            text, mime_type, ..
        } => {
            assert_eq!(mime_type.as_deref(), Some("application/json"));
            serde_json::from_str(text).expect("json")
        }
        other => panic!("not text: {other:?}"),
    }
}

async fn tool(s: &Setup, name: &str, args: Value) -> rmcp::model::CallToolResult {
    let Value::Object(map) = args else {
        panic!("arguments must be an object");
    };
    s.client
        .call_tool(rmcp::model::CallToolRequestParams::new(name.to_owned()).with_arguments(map))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

async fn read(s: &Setup, uri: &str) -> Value {
    let r = s
        .client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap_or_else(|e| panic!("read {uri}: {e}"));
    text_of(&r.contents)
}

#[tokio::test]
async fn capabilities_resources_and_templates() {
    let s = setup().await;
    let caps = &s.client.peer_info().expect("server info").capabilities;
    let res = caps.resources.as_ref().expect("resources capability");
    assert_eq!(res.subscribe, Some(true));
    assert_eq!(res.list_changed, Some(true));
    assert!(caps.prompts.is_some() && caps.completions.is_some());

    let list = s.client.list_all_resources().await.expect("list");
    let uris: Vec<&str> = list.iter().map(|r| r.uri.as_str()).collect();
    let base_uri = format!("airtable://bases/{DEMO}/schema");
    assert!(uris.contains(&base_uri.as_str()), "{uris:?}");
    let tables: Vec<&&str> = uris.iter().filter(|u| u.contains("/tables/")).collect();
    assert!(!tables.is_empty(), "{uris:?}");

    let templates = s
        .client
        .list_all_resource_templates()
        .await
        .expect("templates");
    let t: Vec<&str> = templates.iter().map(|t| t.uri_template.as_str()).collect();
    assert_eq!(
        t,
        [
            "airtable://bases/{base_id}/schema",
            "airtable://bases/{base_id}/tables/{table_id}/schema",
            "airtable://watches/{watch_id}"
        ]
    );

    let base = read(&s, &base_uri).await;
    assert_eq!(base["base_id"], DEMO);
    let first = &base["tables"][0];
    let (id, name) = (
        first["id"].as_str().unwrap().to_owned(),
        first["name"].as_str().unwrap().to_owned(),
    );
    assert!(first["fields"][0]["type"].is_string(), "{first}");

    // A table by ID and by (percent-encoded) name give the same schema.
    let by_id = read(&s, &format!("airtable://bases/{DEMO}/tables/{id}/schema")).await;
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let by_name = read(
        &s,
        &format!("airtable://bases/{DEMO}/tables/{encoded}/schema"),
    )
    .await;
    assert_eq!(by_id, by_name);
    assert_eq!(by_id["name"], name.as_str());
    assert_eq!(by_id["base_id"], DEMO);

    // Unknown table and malformed URI: errors, not empty contents.
    let missing = s
        .client
        .read_resource(ReadResourceRequestParams::new(format!(
            "airtable://bases/{DEMO}/tables/NoSuchTable/schema"
        )))
        .await;
    assert!(missing.is_err());
    let bad = s
        .client
        .read_resource(ReadResourceRequestParams::new("airtable://nope"))
        .await;
    assert!(bad.is_err());
}

#[tokio::test]
async fn allow_list_hides_other_bases() {
    let sandbox = demo_sandbox().await;
    let options = ServerOptions {
        allowed_bases: Some(["appNotTheDemoBase1".to_owned()].into_iter().collect()),
        ..ServerOptions::default()
    };
    let state = ServerState::new(Ok(client_for(&sandbox)), options);
    let client = connect(AirtableServer::new(state)).await;
    let list = client.list_all_resources().await.expect("list");
    // Only the MCP Apps views (ui://, no data of any base) are listed.
    assert!(list.iter().all(|r| r.uri.starts_with("ui://")), "{list:?}");
    let read = client
        .read_resource(ReadResourceRequestParams::new(format!(
            "airtable://bases/{DEMO}/schema"
        )))
        .await;
    assert!(read.is_err());
}

async fn wait_for(watcher: &Watcher, what: impl Fn(&Watcher) -> bool) {
    // Bounded wait for a notification (the test fails, never hangs, if none comes).
    let r = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let notified = watcher.notify.notified();
            if what(watcher) {
                return;
            }
            notified.await;
        }
    })
    .await;
    assert!(r.is_ok(), "notification not received");
}

#[tokio::test]
async fn subscribe_then_create_field_notifies() {
    let s = setup().await;
    let base = read(&s, &format!("airtable://bases/{DEMO}/schema")).await;
    let table = base["tables"][0]["id"].as_str().unwrap().to_owned();
    let uri = format!("airtable://bases/{DEMO}/tables/{table}/schema");
    s.client
        .subscribe(SubscribeRequestParams::new(uri.clone()))
        .await
        .expect("subscribe");

    let r = tool(
        &s,
        "create_field",
        json!({"base_id": DEMO, "table_id": table, "name": "Resource probe", "type": "singleLineText"}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{r:?}");
    wait_for(&s.watcher, |w| w.updated.lock().unwrap().contains(&uri)).await;
    // No table was added: the list did not change.
    assert_eq!(*s.watcher.list_changed.lock().unwrap(), 0);
    let after = read(&s, &uri).await;
    let names: Vec<&str> = after["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(names.contains(&"Resource probe"), "{names:?}");

    // A new table changes the list.
    let r = tool(
        &s,
        "create_table",
        json!({"base_id": DEMO, "name": "Resource table", "fields": [{"name": "Name", "type": "singleLineText"}]}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{r:?}");
    wait_for(&s.watcher, |w| *w.list_changed.lock().unwrap() > 0).await;

    // After unsubscribing, no more updates for that URI.
    s.client
        .unsubscribe(rmcp::model::UnsubscribeRequestParams::new(uri.clone()))
        .await
        .expect("unsubscribe");
    let before = s.watcher.updated.lock().unwrap().len();
    let r = tool(
        &s,
        "create_field",
        json!({"base_id": DEMO, "table_id": table, "name": "Second probe", "type": "singleLineText"}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{r:?}");
    // A read after the write is answered after any notification the write spawned was sent.
    read(&s, &uri).await;
    assert_eq!(s.watcher.updated.lock().unwrap().len(), before);
}

#[tokio::test]
async fn prompts_list_and_get() {
    let s = setup().await;
    let prompts = s.client.list_all_prompts().await.expect("prompts");
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    for n in [
        "explore_base",
        "find_and_merge_duplicates",
        "summarize_by_month",
        "prepare_import",
    ] {
        assert!(names.contains(&n), "{names:?}");
    }
    let mut args = serde_json::Map::new();
    args.insert("base_id".into(), json!(DEMO));
    args.insert("table_id".into(), json!("Tasks"));
    args.insert("field".into(), json!("Due"));
    let got = s
        .client
        .get_prompt(GetPromptRequestParams::new("summarize_by_month").with_arguments(args))
        .await
        .expect("get");
    let text = serde_json::to_string(&got.messages).unwrap();
    assert!(
        text.contains("aggregate_records") && text.contains(DEMO),
        "{text}"
    );
    let dup = s
        .client
        .get_prompt(GetPromptRequestParams::new("find_and_merge_duplicates"))
        .await;
    assert!(dup.is_err(), "missing arguments must be refused");
}

#[tokio::test]
async fn completion_of_base_table_and_field() {
    let s = setup().await;
    let prompt = || Reference::Prompt(PromptReference::new("find_and_merge_duplicates"));
    let bases = s
        .client
        .complete(CompleteRequestParams::new(
            prompt(),
            ArgumentInfo::new("base_id", ""),
        ))
        .await
        .expect("complete base");
    assert!(
        bases.completion.values.contains(&DEMO.to_owned()),
        "{bases:?}"
    );

    let mut ctx = std::collections::HashMap::new();
    ctx.insert("base_id".to_owned(), DEMO.to_owned());
    let tables = s
        .client
        .complete(
            CompleteRequestParams::new(
                Reference::Resource(ResourceTemplateReference::new(
                    "airtable://bases/{base_id}/tables/{table_id}/schema",
                )),
                ArgumentInfo::new("table_id", ""),
            )
            .with_context(CompletionContext::with_arguments(ctx.clone())),
        )
        .await
        .expect("complete table");
    let table = tables.completion.values.first().expect("a table").clone();

    ctx.insert("table_id".to_owned(), table.clone());
    let base = read(&s, &format!("airtable://bases/{DEMO}/schema")).await;
    let schema_table = base["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == table.as_str())
        .expect("table in schema");
    let first_field = schema_table["fields"][0]["name"].as_str().unwrap();
    let prefix: String = first_field.chars().take(2).collect();
    let fields = s
        .client
        .complete(
            CompleteRequestParams::new(prompt(), ArgumentInfo::new("field", prefix))
                .with_context(CompletionContext::with_arguments(ctx)),
        )
        .await
        .expect("complete field");
    assert!(
        fields.completion.values.iter().any(|v| v == first_field),
        "{fields:?}"
    );
}
