//! Shared test helpers: an in-process sandbox, an Airtable client pointed at it, and an MCP
//! client connected to an `AirtableServer` over `tokio::io::duplex` (no process, no network
//! besides the sandbox's loopback HTTP).
//!
//! Declared once in `main.rs`; a test module uses it with `use crate::mcp_support;`
//! (tests/integration/support/ is the client fixture). The module is `#[allow(dead_code)]`:
//! each test module uses only part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airtable_mcp::airtable::{Client, ClientConfig};
use airtable_mcp::sandbox::{self, SandboxConfig, SandboxHandle};
use airtable_mcp::tools::{AirtableServer, ServerOptions, ServerState, TokenProblem};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientRequest, ProgressNotificationParam, Request,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use secrecy::SecretString;
use serde_json::Value;

/// The demo base's ID.
pub const DEMO: &str = sandbox::DEMO_BASE_ID;

/// Start a sandbox seeded with the demo base, no rate limit, in memory.
pub async fn demo_sandbox() -> SandboxHandle {
    sandbox::spawn(SandboxConfig::demo(), SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("sandbox starts")
}

/// Start a sandbox with a custom configuration.
pub async fn sandbox_with(cfg: SandboxConfig) -> SandboxHandle {
    sandbox::spawn(cfg, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("sandbox starts")
}

/// A client for the sandbox: fast retries and generous limits so tests stay quick.
pub fn client_for(sb: &SandboxHandle) -> Client {
    client_with_token(sb, sb.token())
}

/// A client for the sandbox with a given token.
pub fn client_with_token(sb: &SandboxHandle, token: &str) -> Client {
    let mut cfg = ClientConfig::new(sb.url(), SecretString::from(token.to_owned()));
    cfg.per_base_rps = 1000;
    cfg.per_token_rps = 1000;
    cfg.max_retries = 2;
    cfg.rate_limit_wait = Duration::from_millis(50);
    cfg.max_backoff = Duration::from_millis(50);
    cfg.timeout = Duration::from_secs(10);
    Client::new(cfg).expect("client builds")
}

/// Progress notifications received by the test client.
#[derive(Clone, Default)]
pub struct Recorder {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }
}

/// An MCP client connected in-process to a server.
pub type McpClient = RunningService<RoleClient, Recorder>;

/// Connect an MCP client to `server` over an in-memory duplex pipe.
pub async fn connect(server: AirtableServer) -> McpClient {
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    Recorder::default()
        .serve(client_io)
        .await
        .expect("client initializes")
}

/// A sandbox, a server over it with `options`, and a connected client.
pub struct Harness {
    pub sandbox: SandboxHandle,
    pub state: Arc<ServerState>,
    pub client: McpClient,
}

/// [`Harness`] with every tool.
pub async fn harness() -> Harness {
    harness_with(ServerOptions::default()).await
}

/// [`Harness`] with custom options.
pub async fn harness_with(options: ServerOptions) -> Harness {
    let sandbox = demo_sandbox().await;
    let state = ServerState::new(Ok(client_for(&sandbox)), options);
    let client = connect(AirtableServer::new(state.clone())).await;
    Harness {
        sandbox,
        state,
        client,
    }
}

/// A server with no token, and a client connected to it.
pub async fn no_token_client(options: ServerOptions) -> McpClient {
    let state = ServerState::new(Err(TokenProblem::missing()), options);
    connect(AirtableServer::new(state)).await
}

fn params(name: &str, args: Value) -> CallToolRequestParams {
    let Value::Object(map) = args else {
        panic!("arguments must be a JSON object");
    };
    CallToolRequestParams::new(name.to_owned()).with_arguments(map)
}

/// Call a tool; panics on a protocol error (tool errors come back as `is_error`).
pub async fn call(client: &McpClient, name: &str, args: Value) -> CallToolResult {
    client
        .call_tool(params(name, args))
        .await
        .unwrap_or_else(|e| panic!("{name}: protocol error {e}"))
}

/// Call a tool and return the raw service result (to assert protocol errors).
pub async fn try_call(
    client: &McpClient,
    name: &str,
    args: Value,
) -> Result<CallToolResult, rmcp::ServiceError> {
    client.call_tool(params(name, args)).await
}

/// Call a tool with a progress token; returns the result and the progress received.
pub async fn call_with_progress(
    client: &McpClient,
    name: &str,
    args: Value,
) -> (CallToolResult, Vec<ProgressNotificationParam>) {
    client.service().progress.lock().unwrap().clear();
    let handle = client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(params(name, args))),
            PeerRequestOptions::no_options(),
        )
        .await
        .expect("request sent");
    let response = handle.await_response().await.expect("response");
    let result = match response {
        rmcp::model::ServerResult::CallToolResult(r) => r,
        other => panic!("unexpected response {other:?}"),
    };
    // Notifications precede the response on the wire; give the handler a moment to record them.
    for _ in 0..50 {
        if !client.service().progress.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let progress = client.service().progress.lock().unwrap().clone();
    (result, progress)
}

/// A successful call's structured content (panics with the error text otherwise).
pub async fn ok(client: &McpClient, name: &str, args: Value) -> Value {
    let r = call(client, name, args).await;
    if r.is_error == Some(true) {
        panic!("{name} failed: {}", text(&r));
    }
    r.structured_content
        .clone()
        .unwrap_or_else(|| panic!("{name}: no structured content"))
}

/// A failed call's text (panics if it succeeded).
pub async fn err(client: &McpClient, name: &str, args: Value) -> String {
    let r = call(client, name, args).await;
    assert_eq!(
        r.is_error,
        Some(true),
        "{name} should fail, got {}",
        text(&r)
    );
    text(&r)
}

/// The text of the first content block.
pub fn text(r: &CallToolResult) -> String {
    r.content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default()
}
