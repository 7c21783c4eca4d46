//! OpenTelemetry traces (`--otlp-endpoint`): the real binary, driven over Streamable HTTP
//! against a loopback sandbox, exports its spans to an OTLP/HTTP receiver in this test, which
//! decodes them (`ExportTraceServiceRequest`, protobuf). Checked: the tool-call span continues
//! the client's W3C trace context (from the `traceparent` header of a Streamable HTTP or legacy
//! SSE POST, and from `_meta.traceparent`, over HTTP and stdio),
//! the Airtable request spans are its children with their attributes, the spans are flushed on
//! SIGTERM, and no token, session ID, table name or cell value is exported.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airtable_mcp::sandbox::{self, DEMO_BASE_ID, SandboxConfig};
use common::{TOKEN_A, find_response};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// What the receiver got: the raw bodies of every export.
type Received = Arc<Mutex<Vec<bytes::Bytes>>>;

async fn start_receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let store = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: bytes::Bytes| {
            let store = store.clone();
            async move {
                store.lock().unwrap().push(body);
                // An empty ExportTraceServiceResponse.
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), got)
}

fn attr(span: &Span, key: &str) -> Option<Any> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone()?.value)
}

fn attr_str(span: &Span, key: &str) -> String {
    match attr(span, key) {
        Some(Any::StringValue(s)) => s,
        other => panic!("{}: {key} = {other:?}", span.name),
    }
}

fn attr_int(span: &Span, key: &str) -> i64 {
    match attr(span, key) {
        Some(Any::IntValue(i)) => i,
        other => panic!("{}: {key} = {other:?}", span.name),
    }
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    traceparent: Option<&str>,
    body: Value,
) -> (Option<String>, String) {
    let mut req = http
        .post(url)
        .bearer_auth(TOKEN_A)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&body);
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    if let Some(t) = traceparent {
        req = req
            .header("traceparent", t)
            .header("tracestate", "vendor=opaque");
    }
    let res = req.send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let sid = res
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    (sid, res.text().await.unwrap())
}

/// The next chunk of an SSE stream, as text.
async fn next_chunk(sse: &mut reqwest::Response) -> String {
    let chunk = tokio::time::timeout(Duration::from_secs(60), sse.chunk())
        .await
        .expect("no SSE event")
        .unwrap()
        .expect("the SSE stream ended");
    String::from_utf8_lossy(&chunk).into_owned()
}

fn call_result(body: &str, id: u64) -> Value {
    let msg = find_response(body, id).unwrap_or_else(|| panic!("no response {id}: {body}"));
    assert!(
        msg.get("error").is_none() && msg["result"]["isError"] != true,
        "{msg}"
    );
    msg["result"].clone()
}

#[tokio::test]
async fn tool_calls_export_spans_that_continue_the_clients_trace_and_hold_no_secret() {
    let (collector, received) = start_receiver().await;
    let sb = sandbox::spawn(SandboxConfig::demo(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_airtable-mcp"))
        .env_clear()
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AIRTABLE_MCP_KEYRING", "none")
        .env("AIRTABLE_API_KEY", sb.token())
        .env("AIRTABLE_MCP_AUTH_TOKENS", TOKEN_A)
        .env("AIRTABLE_MCP_OTLP_ENDPOINT", &collector)
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--api-url",
            sb.url().as_str(),
        ])
        // Traces do not depend on the log level.
        .args(["--log-level", "warn,airtable_mcp::server=info"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (base, _, _stderr) = common::http_base_of(&mut child).await;
    let url = format!("{base}/mcp");
    let http = reqwest::Client::new();

    let (sid, body) = post(
        &http,
        &url,
        None,
        None,
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "otel-test", "version": "0"}}}),
    )
    .await;
    let sid = sid.expect("a session ID");
    assert!(find_response(&body, 0).is_some(), "{body}");
    post(
        &http,
        &url,
        Some(&sid),
        None,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;

    // Call 1: the trace context in the HTTP headers. create_record reads the schema, then
    // writes: two Airtable requests.
    let cell = "Cell-Value-Zq9x4-must-not-be-exported";
    let (trace1, parent1) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let (_, body) = post(
        &http,
        &url,
        Some(&sid),
        Some(&format!("00-{trace1}-{parent1}-01")),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "create_record",
            "arguments": {"base_id": DEMO_BASE_ID, "table_id": "People", "fields": {"Name": cell}}}}),
    )
    .await;
    call_result(&body, 1);
    // Call 2: the trace context in `_meta` (any transport); it wins over a header.
    let (trace2, parent2) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let (_, body) = post(
        &http,
        &url,
        Some(&sid),
        Some("00-11111111111111111111111111111111-2222222222222222-01"),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "_meta": {"traceparent": format!("00-{trace2}-{parent2}-01")},
            "name": "get_records",
            "arguments": {"base_id": DEMO_BASE_ID, "table_id": "People", "fields": ["Name"]}}}),
    )
    .await;
    assert!(call_result(&body, 2).to_string().contains(cell));

    // Call 3: the legacy HTTP+SSE transport, the trace context in the POST's headers.
    let (trace3, parent3) = ("9d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6", "a0b1c2d3e4f5a6b7");
    let mut sse = http
        .get(format!("{base}/sse"))
        .bearer_auth(TOKEN_A)
        .send()
        .await
        .unwrap();
    let mut stream = String::new();
    while !stream.contains("sessionId=") || !stream.contains("\n\n") {
        stream.push_str(&next_chunk(&mut sse).await);
    }
    let legacy = stream
        .split("sessionId=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let messages = format!("{base}/messages?sessionId={legacy}");
    for (i, m) in [
        json!({"jsonrpc": "2.0", "id": 10, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {},
            "clientInfo": {"name": "otel-legacy", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": {
            "name": "get_records",
            "arguments": {"base_id": DEMO_BASE_ID, "table_id": "People", "max_records": 1}}}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut req = http.post(&messages).bearer_auth(TOKEN_A).json(&m);
        if i == 2 {
            req = req.header("traceparent", format!("00-{trace3}-{parent3}-01"));
        }
        assert_eq!(req.send().await.unwrap().status(), 202);
        if i == 0 {
            while !stream.contains("\"id\":10") {
                stream.push_str(&next_chunk(&mut sse).await);
            }
        }
    }
    while !stream.contains("\"id\":11") {
        stream.push_str(&next_chunk(&mut sse).await);
    }
    drop(sse);

    // SIGTERM: the batch exporter is flushed before the process exits.
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exit = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("no exit after SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit}");

    let bodies = received.lock().unwrap().clone();
    assert!(!bodies.is_empty(), "no export reached the collector");
    let mut spans: Vec<Span> = Vec::new();
    let mut resources = Vec::new();
    for b in &bodies {
        let req = ExportTraceServiceRequest::decode(b.as_ref()).unwrap();
        for rs in req.resource_spans {
            resources.extend(rs.resource.into_iter().flat_map(|r| r.attributes));
            for ss in rs.scope_spans {
                spans.extend(ss.spans);
            }
        }
    }
    let service = resources
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| kv.value.clone()?.value);
    assert_eq!(
        service,
        Some(Any::StringValue("airtable-mcp".into())),
        "{resources:?}"
    );
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let by_id: HashMap<Vec<u8>, &Span> = spans.iter().map(|s| (s.span_id.clone(), s)).collect();

    for (tool, trace, parent, requests) in [
        ("create_record", trace1, parent1, 2),
        ("get_records", trace2, parent2, 1),
        ("get_records", trace3, parent3, 1),
    ] {
        let name = format!("tools/call {tool}");
        let call = spans
            .iter()
            .find(|s| s.name == name && hex::encode(&s.trace_id) == trace)
            .unwrap_or_else(|| panic!("no {name} span in trace {trace}: {names:?}"));
        assert_eq!(
            hex::encode(&call.trace_id),
            trace,
            "{name}: trace continued"
        );
        assert_eq!(
            hex::encode(&call.parent_span_id),
            parent,
            "{name}: child of the client's span"
        );
        assert_eq!(call.kind, 2, "{name}: a server span");
        assert_eq!(attr_str(call, "gen_ai.tool.name"), tool);
        assert_eq!(attr_str(call, "mcp.method.name"), "tools/call");
        assert_eq!(attr_str(call, "airtable.base_id"), DEMO_BASE_ID);
        assert_eq!(attr_str(call, "mcp.tool.outcome"), "ok");
        let session = attr_str(call, "mcp.session.id");
        assert_eq!(session.len(), 16, "a hash of the session ID: {session}");
        assert_ne!(session, sid);
        assert_ne!(session, legacy);
        if tool == "create_record" {
            let state = call.trace_state.clone();
            assert_eq!(state, "vendor=opaque", "tracestate continued");
        }

        let children: Vec<&Span> = spans
            .iter()
            .filter(|s| s.parent_span_id == call.span_id && s.trace_id == call.trace_id)
            .collect();
        assert!(
            children.len() >= requests,
            "{name}: {} Airtable request spans, want {requests}: {names:?}",
            children.len()
        );
        for c in &children {
            assert_eq!(c.kind, 3, "{}: a client span", c.name);
            let method = attr_str(c, "http.request.method");
            let template = attr_str(c, "url.template");
            assert_eq!(c.name, format!("{method} {template}"));
            assert!(template.starts_with("/v0/"), "{template}");
            assert_eq!(attr_int(c, "http.response.status_code"), 200, "{}", c.name);
            assert_eq!(attr_int(c, "airtable.attempt"), 1, "{}", c.name);
            assert!(attr_int(c, "airtable.limiter_wait_ms") >= 0);
            assert_eq!(attr_str(c, "airtable.base_id"), DEMO_BASE_ID);
            assert!(c.start_time_unix_nano >= call.start_time_unix_nano);
            assert!(c.end_time_unix_nano <= call.end_time_unix_nano);
        }
        let templates: Vec<String> = children
            .iter()
            .map(|c| attr_str(c, "url.template"))
            .collect();
        if tool == "create_record" {
            assert!(
                templates.contains(&"/v0/{baseId}/{tableIdOrName}".to_owned()),
                "{templates:?}"
            );
        }
    }
    // Nothing but our two kinds of span, each under a tool call here.
    for s in &spans {
        assert!(
            s.name.starts_with("tools/call ") || by_id.contains_key(&s.parent_span_id),
            "an orphan span: {} in {names:?}",
            s.name
        );
    }

    // No secret, session handle, table name or cell value anywhere in the exported bytes.
    let all: Vec<u8> = bodies.iter().flat_map(|b| b.to_vec()).collect();
    let all = String::from_utf8_lossy(&all);
    for secret in [sb.token(), TOKEN_A, cell, sid.as_str(), &legacy, "People"] {
        assert!(!all.contains(secret), "{secret:?} was exported");
    }
    sb.shutdown().await;
}

/// Over stdio with `serve --sandbox`: `_meta.traceparent` is continued, and SIGTERM ends the
/// server cleanly with its spans flushed.
#[tokio::test]
async fn stdio_calls_continue_meta_traceparent_and_flush_on_sigterm() {
    use tokio::io::AsyncWriteExt;
    let (collector, received) = start_receiver().await;
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_airtable-mcp"))
        .env_clear()
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AIRTABLE_MCP_KEYRING", "none")
        .args(["serve", "--sandbox", "--otlp-endpoint", &collector])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let (trace, parent) = ("5c0e6f1ba2a04a5c8a1f3e2d4b6c8a0e", "1a2b3c4d5e6f7081");
    let messages = [
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "otel-stdio", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "_meta": {"traceparent": format!("00-{trace}-{parent}-01")},
            "name": "list_tables", "arguments": {"base_id": DEMO_BASE_ID}}}),
    ];
    for m in &messages {
        stdin.write_all(format!("{m}\n").as_bytes()).await.unwrap();
    }
    stdin.flush().await.unwrap();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(90), stdout.next_line())
            .await
            .expect("no answer to the call")
            .unwrap()
            .expect("the server exited");
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["id"] == 1 {
            assert!(v["result"]["isError"] != true, "{v}");
            break;
        }
    }
    // SIGTERM with stdin still open: the session ends and the spans are flushed on the way out.
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exit = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("no exit after SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit}");
    drop(stdin);

    let mut spans: Vec<Span> = Vec::new();
    for b in received.lock().unwrap().iter() {
        let req = ExportTraceServiceRequest::decode(b.as_ref()).unwrap();
        spans.extend(
            req.resource_spans
                .into_iter()
                .flat_map(|rs| rs.scope_spans)
                .flat_map(|ss| ss.spans),
        );
    }
    let call = spans
        .iter()
        .find(|s| s.name == "tools/call list_tables")
        .expect("the tool-call span was flushed on SIGTERM");
    assert_eq!(hex::encode(&call.trace_id), trace);
    assert_eq!(hex::encode(&call.parent_span_id), parent);
    assert!(
        attr(call, "mcp.session.id").is_none(),
        "stdio has no session"
    );
    let child_span = spans
        .iter()
        .find(|s| s.parent_span_id == call.span_id)
        .expect("an Airtable request span under the call");
    assert_eq!(
        attr_str(child_span, "url.template"),
        "/v0/meta/bases/{baseId}/tables"
    );
}
