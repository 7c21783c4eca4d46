//! Confirmation of risky writes (issue #10), end to end through an rmcp client against the
//! in-process sandbox: MCP elicitation on the legacy protocol (an `elicitation/create`
//! request) and on 2026-07-28 (MRTR `input_required` rounds), `--confirm never`, and the
//! `confirm_token` of `--confirm always` for clients that cannot be asked.
//!
//! "Nothing was sent" is checked on the sandbox's own request counters: after a declined
//! write it has seen only GET requests (the reads that plan the write).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::mcp_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use airtable_mcp::config::ConfirmMode;
use airtable_mcp::sandbox::SandboxHandle;
use airtable_mcp::tools::{AirtableServer, ServerOptions, ServerState};
use mcp_support::{DEMO, client_for, demo_sandbox};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig,
    ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationCapability, Implementation,
    InputResponses, ProtocolVersion,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RequestContext, RunningService};
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use serde_json::{Value, json};

/// How the test user answers a confirmation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reply {
    Accept,
    /// Accept the form with `confirm: false`.
    AcceptUnchecked,
    Decline,
    Cancel,
}

/// A client that answers elicitations with `reply` (or declares no elicitation at all).
#[derive(Clone)]
struct User {
    reply: Reply,
    /// Declare the elicitation capability.
    can_elicit: bool,
    legacy: bool,
    asked: Arc<AtomicUsize>,
    messages: Arc<std::sync::Mutex<Vec<String>>>,
}

impl ClientHandler for User {
    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        if let ElicitRequestParams::FormElicitationParams {
            message,
            requested_schema,
            ..
        } = &request
        {
            let schema = serde_json::to_value(requested_schema).unwrap();
            assert_eq!(schema["required"], json!(["confirm"]), "{schema}");
            assert_eq!(schema["properties"]["confirm"]["type"], "boolean");
            assert_eq!(schema["properties"]["confirm"]["title"], "Apply?");
            self.messages.lock().unwrap().push(message.clone());
        } else {
            panic!("a form elicitation was expected, got {request:?}");
        }
        Ok(match self.reply {
            Reply::Accept => {
                ElicitResult::new(ElicitationAction::Accept).with_content(json!({"confirm": true}))
            }
            Reply::AcceptUnchecked => {
                ElicitResult::new(ElicitationAction::Accept).with_content(json!({"confirm": false}))
            }
            Reply::Decline => ElicitResult::new(ElicitationAction::Decline),
            Reply::Cancel => ElicitResult::new(ElicitationAction::Cancel),
        })
    }

    fn get_info(&self) -> ClientConfig {
        let caps = if self.can_elicit {
            ClientCapabilities::builder()
                .enable_elicitation_with(ElicitationCapability::default())
                .build()
        } else {
            ClientCapabilities::default()
        };
        let cfg = ClientConfig::new(caps, Implementation::new("confirm-test", "0.0.0"));
        if self.legacy {
            cfg.with_protocol_version(ProtocolVersion::V_2025_11_25)
        } else {
            cfg
        }
    }
}

type Client = RunningService<RoleClient, User>;

struct Setup {
    sandbox: SandboxHandle,
    client: Client,
    user: User,
    table: String,
    /// The table's primary field.
    primary: String,
    /// Two record IDs of `table`.
    records: Vec<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Legacy,
    Mrtr,
}

async fn setup(
    protocol: Protocol,
    can_elicit: bool,
    reply: Reply,
    options: ServerOptions,
) -> Setup {
    let sandbox = demo_sandbox().await;
    let state = ServerState::new(Ok(client_for(&sandbox)), options);
    let server = AirtableServer::new(state);
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let user = User {
        reply,
        can_elicit,
        legacy: protocol == Protocol::Legacy,
        asked: Arc::new(AtomicUsize::new(0)),
        messages: Arc::default(),
    };
    let client = match protocol {
        Protocol::Legacy => user
            .clone()
            .serve(client_io)
            .await
            .expect("client initializes"),
        Protocol::Mrtr => user
            .clone()
            .serve_with_lifecycle(
                client_io,
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                },
            )
            .await
            .expect("client discovers"),
    };
    let tables = ok(&client, "list_tables", json!({"base_id": DEMO})).await;
    let table = tables["tables"][0]["id"].as_str().unwrap().to_owned();
    let info = ok(
        &client,
        "get_field_info",
        json!({"base_id": DEMO, "table_id": table}),
    )
    .await;
    let primary = info["primary_field"].as_str().unwrap().to_owned();
    let page = ok(
        &client,
        "get_records",
        json!({"base_id": DEMO, "table_id": table, "max_records": 2}),
    )
    .await;
    let records: Vec<String> = page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(records.len(), 2, "{page}");
    Setup {
        sandbox,
        client,
        user,
        table,
        primary,
        records,
    }
}

fn params(name: &str, args: Value) -> CallToolRequestParams {
    let Value::Object(map) = args else {
        panic!("arguments must be an object")
    };
    CallToolRequestParams::new(name.to_owned()).with_arguments(map)
}

async fn call(client: &Client, name: &str, args: Value) -> CallToolResult {
    client
        .call_tool(params(name, args))
        .await
        .unwrap_or_else(|e| panic!("{name}: protocol error {e}"))
}

fn text(r: &CallToolResult) -> String {
    r.content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

async fn ok(client: &Client, name: &str, args: Value) -> Value {
    let r = call(client, name, args).await;
    assert_ne!(r.is_error, Some(true), "{name} failed: {}", text(&r));
    r.structured_content.unwrap()
}

async fn err(client: &Client, name: &str, args: Value) -> String {
    let r = call(client, name, args).await;
    assert_eq!(r.is_error, Some(true), "{name} should fail: {}", text(&r));
    text(&r)
}

impl Setup {
    fn update_args(&self, i: usize, value: &str) -> Value {
        json!({"base_id": DEMO, "table_id": self.table, "record_id": self.records[i], "fields": {self.primary.clone(): value}})
    }

    fn delete_args(&self, i: usize) -> Value {
        json!({"base_id": DEMO, "table_id": self.table, "record_id": self.records[i]})
    }

    async fn exists(&self, i: usize) -> bool {
        let r = call(
            &self.client,
            "get_record",
            json!({"base_id": DEMO, "table_id": self.table, "record_id": self.records[i]}),
        )
        .await;
        r.is_error != Some(true)
    }

    /// Requests the sandbox received other than GET (writes).
    fn writes(&self) -> u64 {
        self.sandbox
            .stats()
            .by_method
            .iter()
            .filter(|(m, _)| m.as_str() != "GET")
            .map(|(_, n)| n)
            .sum()
    }

    fn asked(&self) -> usize {
        self.user.asked.load(Ordering::SeqCst)
    }
}

fn always() -> ServerOptions {
    ServerOptions {
        confirm: ConfirmMode::Always,
        ..ServerOptions::default()
    }
}

async fn accepted_delete_is_sent(protocol: Protocol) {
    let s = setup(protocol, true, Reply::Accept, ServerOptions::default()).await;
    let out = ok(&s.client, "delete_record", s.delete_args(0)).await;
    assert_eq!(out["deleted"], true, "{out}");
    assert_eq!(s.asked(), 1);
    let message = s.user.messages.lock().unwrap()[0].clone();
    assert!(message.starts_with("Delete record "), "{message}");
    assert!(message.contains("1 record: "), "{message}");
    assert!(
        message.ends_with("Nothing is sent unless you accept."),
        "{message}"
    );
    assert_eq!(s.sandbox.stats().by_method.get("DELETE"), Some(&1));
    assert!(!s.exists(0).await);
}

async fn refused_delete_sends_nothing(protocol: Protocol, reply: Reply) {
    let s = setup(protocol, true, reply, ServerOptions::default()).await;
    let e = err(&s.client, "delete_record", s.delete_args(0)).await;
    assert!(e.contains("nothing was sent"), "{e}");
    let word = if reply == Reply::Cancel {
        "cancelled"
    } else {
        "declined"
    };
    assert!(e.contains(word), "{reply:?}: {e}");
    assert_eq!(s.asked(), 1);
    assert_eq!(s.writes(), 0, "{:?}", s.sandbox.stats().by_method);
    assert!(s.exists(0).await);
}

#[tokio::test]
async fn legacy_accept_deletes() {
    accepted_delete_is_sent(Protocol::Legacy).await;
}

#[tokio::test]
async fn mrtr_accept_deletes() {
    accepted_delete_is_sent(Protocol::Mrtr).await;
}

#[tokio::test]
async fn legacy_decline_cancel_or_unchecked_send_nothing() {
    for reply in [Reply::Decline, Reply::Cancel, Reply::AcceptUnchecked] {
        refused_delete_sends_nothing(Protocol::Legacy, reply).await;
    }
}

#[tokio::test]
async fn mrtr_decline_cancel_or_unchecked_send_nothing() {
    for reply in [Reply::Decline, Reply::Cancel, Reply::AcceptUnchecked] {
        refused_delete_sends_nothing(Protocol::Mrtr, reply).await;
    }
}

#[tokio::test]
async fn small_updates_are_not_asked_but_batches_over_the_threshold_are() {
    let s = setup(
        Protocol::Legacy,
        true,
        Reply::Decline,
        ServerOptions::default(),
    )
    .await;
    ok(&s.client, "update_record", s.update_args(0, "Renamed")).await;
    assert_eq!(
        s.asked(),
        0,
        "an update of one record is not asked at threshold 50"
    );
    let s = setup(
        Protocol::Legacy,
        true,
        Reply::Decline,
        ServerOptions {
            confirm_threshold: 0,
            ..ServerOptions::default()
        },
    )
    .await;
    let e = err(&s.client, "update_record", s.update_args(0, "Renamed")).await;
    assert!(e.contains("declined"), "{e}");
    assert_eq!(s.asked(), 1);
    assert_eq!(s.writes(), 0);
}

#[tokio::test]
async fn never_mode_sends_no_elicitation() {
    for protocol in [Protocol::Legacy, Protocol::Mrtr] {
        let options = ServerOptions {
            confirm: ConfirmMode::Never,
            ..ServerOptions::default()
        };
        let s = setup(protocol, true, Reply::Decline, options).await;
        let out = ok(&s.client, "delete_record", s.delete_args(0)).await;
        assert_eq!(out["deleted"], true);
        assert_eq!(s.asked(), 0);
        // Nor a token on dry runs.
        let mut args = s.delete_args(1);
        args["dry_run"] = json!(true);
        let out = ok(&s.client, "delete_record", args).await;
        assert!(out["preview"].get("confirm_token").is_none(), "{out}");
    }
}

#[tokio::test]
async fn auto_mode_without_elicitation_goes_on_without_token() {
    let s = setup(
        Protocol::Legacy,
        false,
        Reply::Decline,
        ServerOptions::default(),
    )
    .await;
    let mut dry = s.delete_args(0);
    dry["dry_run"] = json!(true);
    let out = ok(&s.client, "delete_record", dry).await;
    assert!(out["preview"].get("confirm_token").is_none(), "{out}");
    let out = ok(&s.client, "delete_record", s.delete_args(0)).await;
    assert_eq!(out["deleted"], true);
    assert_eq!(s.asked(), 0);
}

/// `--confirm always`, client without elicitation: the token of a dry run of the same call.
async fn always_mode_needs_the_dry_runs_token(protocol: Protocol) {
    let s = setup(protocol, false, Reply::Accept, always()).await;
    let e = err(&s.client, "delete_record", s.delete_args(0)).await;
    assert!(
        e.contains("--confirm always") && e.contains("confirm_token"),
        "{e}"
    );
    assert!(e.contains("dry_run=true"), "{e}");
    assert_eq!(s.writes(), 0);

    let mut dry = s.delete_args(0);
    dry["dry_run"] = json!(true);
    let out = ok(&s.client, "delete_record", dry).await;
    let token = out["preview"]["confirm_token"].as_str().unwrap().to_owned();

    // The token of record 0 does not delete record 1.
    let mut other = s.delete_args(1);
    other["confirm_token"] = json!(token);
    let e = err(&s.client, "delete_record", other).await;
    assert!(e.contains("does not belong to this call"), "{e}");
    // A forged one neither.
    let mut forged = s.delete_args(0);
    forged["confirm_token"] = json!(format!("{token}x"));
    let e = err(&s.client, "delete_record", forged).await;
    assert!(e.contains("does not belong to this call"), "{e}");
    assert_eq!(s.writes(), 0);
    assert!(s.exists(1).await);

    // The same call with it (key order does not matter) is applied.
    let args = json!({"record_id": s.records[0], "confirm_token": token, "table_id": s.table, "base_id": DEMO});
    let out = ok(&s.client, "delete_record", args).await;
    assert_eq!(out["deleted"], true, "{out}");
    assert!(!s.exists(0).await);
    assert_eq!(s.asked(), 0);
}

#[tokio::test]
async fn legacy_always_mode_needs_the_dry_runs_token() {
    always_mode_needs_the_dry_runs_token(Protocol::Legacy).await;
}

#[tokio::test]
async fn mrtr_always_mode_needs_the_dry_runs_token() {
    always_mode_needs_the_dry_runs_token(Protocol::Mrtr).await;
}

#[tokio::test]
async fn confirm_tokens_expire_after_five_minutes_and_apply_once() {
    let options = ServerOptions {
        confirm_threshold: 0,
        ..always()
    };
    let s = setup(Protocol::Legacy, false, Reply::Accept, options).await;
    let token_for = |args: &Value| {
        let mut dry = args.clone();
        dry["dry_run"] = json!(true);
        dry
    };
    // Expired: 5 minutes and a second later (tokio's clock moved; no real waiting).
    let args = s.update_args(0, "Renamed");
    let out = ok(&s.client, "update_record", token_for(&args)).await;
    let token = out["preview"]["confirm_token"].as_str().unwrap().to_owned();
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(301)).await;
    tokio::time::resume();
    let mut late = args.clone();
    late["confirm_token"] = json!(token);
    let e = err(&s.client, "update_record", late).await;
    assert!(e.contains("has expired"), "{e}");
    assert_eq!(s.writes(), 0);

    // A fresh one applies once; the second use is refused.
    let out = ok(&s.client, "update_record", token_for(&args)).await;
    let token = out["preview"]["confirm_token"].as_str().unwrap().to_owned();
    let mut with = args.clone();
    with["confirm_token"] = json!(token);
    ok(&s.client, "update_record", with.clone()).await;
    assert_eq!(s.writes(), 1);
    let e = err(&s.client, "update_record", with).await;
    assert!(e.contains("already used"), "{e}");
    assert_eq!(s.writes(), 1);
}

/// MRTR by hand: the interim result, and a retry whose requestState belongs to other
/// arguments (or was tampered with) is refused without sending anything.
#[tokio::test]
async fn mrtr_state_is_bound_to_the_call() {
    let s = setup(
        Protocol::Mrtr,
        true,
        Reply::Accept,
        ServerOptions::default(),
    )
    .await;
    let first = s
        .client
        .call_tool_once(params("delete_record", s.delete_args(0)))
        .await
        .unwrap();
    let CallToolResponse::InputRequired(ir) = first else {
        panic!("input_required expected, got {first:?}");
    };
    let wire = serde_json::to_value(&ir).unwrap();
    assert_eq!(
        wire["inputRequests"]["confirm"]["method"], "elicitation/create",
        "{wire}"
    );
    let state = ir.request_state.clone().unwrap();
    let mut answers = InputResponses::new();
    answers.insert(
        "confirm".into(),
        json!({"action": "accept", "content": {"confirm": true}}),
    );

    // The state of record 0 with the arguments of record 1.
    let retry = params("delete_record", s.delete_args(1))
        .with_input_responses(answers.clone())
        .with_request_state(state.clone());
    let CallToolResponse::Complete(r) = s.client.call_tool_once(retry).await.unwrap() else {
        panic!("a final result expected");
    };
    assert_eq!(r.is_error, Some(true));
    assert!(
        text(&r).contains("does not belong to this call"),
        "{}",
        text(&r)
    );
    // Tampered.
    let retry = params("delete_record", s.delete_args(0))
        .with_input_responses(answers.clone())
        .with_request_state(format!("{state}x"));
    let CallToolResponse::Complete(r) = s.client.call_tool_once(retry).await.unwrap() else {
        panic!("a final result expected");
    };
    assert_eq!(r.is_error, Some(true), "{}", text(&r));
    assert_eq!(s.writes(), 0);
    // A retry without the answer is asked again.
    let retry = params("delete_record", s.delete_args(0)).with_request_state(state.clone());
    let again = s.client.call_tool_once(retry).await.unwrap();
    assert!(
        matches!(again, CallToolResponse::InputRequired(_)),
        "{again:?}"
    );

    // The right retry deletes, once.
    let retry = params("delete_record", s.delete_args(0))
        .with_input_responses(answers.clone())
        .with_request_state(state.clone());
    let CallToolResponse::Complete(r) = s.client.call_tool_once(retry.clone()).await.unwrap()
    else {
        panic!("a final result expected");
    };
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    assert_eq!(s.sandbox.stats().by_method.get("DELETE"), Some(&1));
    assert_eq!(s.asked(), 0, "driven by hand: the handler was not used");
}

/// MRTR: an answered requestState applies once; one that expired while the user thought is
/// asked again rather than applied.
#[tokio::test]
async fn mrtr_state_applies_once_and_expires_into_a_new_question() {
    let options = ServerOptions {
        confirm_threshold: 0,
        ..ServerOptions::default()
    };
    let s = setup(Protocol::Mrtr, true, Reply::Accept, options).await;
    let mut answers = InputResponses::new();
    answers.insert(
        "confirm".into(),
        json!({"action": "accept", "content": {"confirm": true}}),
    );
    let ask = |value: &str| params("update_record", s.update_args(0, value));
    let state_of = |r: CallToolResponse| match r {
        CallToolResponse::InputRequired(ir) => ir.request_state.unwrap(),
        other => panic!("input_required expected, got {other:?}"),
    };

    // Expired: asked again, nothing sent.
    let state = state_of(s.client.call_tool_once(ask("Late")).await.unwrap());
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(301)).await;
    tokio::time::resume();
    let late = ask("Late")
        .with_input_responses(answers.clone())
        .with_request_state(state);
    let again = s.client.call_tool_once(late).await.unwrap();
    assert!(
        matches!(again, CallToolResponse::InputRequired(_)),
        "{again:?}"
    );
    assert_eq!(s.writes(), 0);

    // Answered: applied once; the same retry again is refused.
    let state = state_of(s.client.call_tool_once(ask("Once")).await.unwrap());
    let retry = ask("Once")
        .with_input_responses(answers)
        .with_request_state(state);
    let CallToolResponse::Complete(r) = s.client.call_tool_once(retry.clone()).await.unwrap()
    else {
        panic!("a final result expected");
    };
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    assert_eq!(s.writes(), 1);
    let CallToolResponse::Complete(r) = s.client.call_tool_once(retry).await.unwrap() else {
        panic!("a final result expected");
    };
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("already used"), "{}", text(&r));
    assert_eq!(s.writes(), 1);
}

#[tokio::test]
async fn batch_tools_ask_over_the_threshold_and_for_deletes() {
    let opts = |mode| ServerOptions {
        confirm: mode,
        confirm_threshold: 5,
        ..ServerOptions::default()
    };
    let records: Vec<Value> = (0..12).map(|i| json!({"Name": format!("b{i}")})).collect();
    // auto + elicitation: 12 > 5 asks; declined: nothing sent.
    let s = setup(
        Protocol::Legacy,
        true,
        Reply::Decline,
        opts(ConfirmMode::Auto),
    )
    .await;
    let args = json!({"base_id": DEMO, "table_id": s.table, "records": records});
    let e = err(&s.client, "batch_create_records", args.clone()).await;
    assert!(e.contains("declined"), "{e}");
    assert_eq!((s.asked(), s.writes()), (1, 0));
    // 2 records < 5, but a delete: asked.
    let e = err(
        &s.client,
        "batch_delete_records",
        json!({"base_id": DEMO, "table_id": s.table, "record_ids": s.records}),
    )
    .await;
    assert!(e.contains("declined"), "{e}");
    assert_eq!((s.asked(), s.writes()), (2, 0));
    // 2 updates < 5: not asked.
    let ups: Vec<Value> = s
        .records
        .iter()
        .map(|id| json!({"id": id, "fields": {s.primary.clone(): "x"}}))
        .collect();
    ok(
        &s.client,
        "batch_update_records",
        json!({"base_id": DEMO, "table_id": s.table, "records": ups}),
    )
    .await;
    assert_eq!(s.asked(), 2);
    // MRTR accept: created.
    let s = setup(Protocol::Mrtr, true, Reply::Accept, opts(ConfirmMode::Auto)).await;
    let out = ok(&s.client, "batch_upsert_records", json!({"base_id": DEMO, "table_id": s.table, "records": records, "fields_to_merge_on": [s.primary]})).await;
    assert_eq!(out["written"], 12);
    assert_eq!(s.asked(), 1);
    // never: not asked.
    let s = setup(
        Protocol::Legacy,
        true,
        Reply::Decline,
        opts(ConfirmMode::Never),
    )
    .await;
    let args2 = json!({"base_id": DEMO, "table_id": s.table, "records": records});
    let out = ok(&s.client, "batch_create_records", args2).await;
    assert_eq!(out["written"], 12);
    assert_eq!(s.asked(), 0);
    // always without elicitation: the dry run's token applies the same call.
    let s = setup(
        Protocol::Legacy,
        false,
        Reply::Decline,
        opts(ConfirmMode::Always),
    )
    .await;
    let e = err(&s.client, "batch_create_records", args.clone()).await;
    assert!(e.contains("confirm_token"), "{e}");
    let mut dry = args.clone();
    dry["dry_run"] = json!(true);
    let out = ok(&s.client, "batch_create_records", dry).await;
    let token = out["preview"]["confirm_token"].as_str().unwrap().to_owned();
    let mut real = args.clone();
    real["confirm_token"] = json!(token);
    let out = ok(&s.client, "batch_create_records", real).await;
    assert_eq!(out["written"], 12);
    assert!(out["write_id"].is_string());
}
