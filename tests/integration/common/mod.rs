//! Shared helpers for the HTTP transport tests: a tiny MCP handler (echo with progress,
//! and `whoami` naming the Airtable token its session was built with).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use airtable_mcp::server::http::{HandlerFactory, Observable};
use airtable_mcp::tools::{CallObserver, CallOutcome};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ProgressNotificationParam,
    ServerCapabilities, ServerConfig,
};
use rmcp::schemars::JsonSchema;
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Clone)]
pub struct EchoServer {
    token: Option<String>,
    tool_router: ToolRouter<Self>,
    observer: Option<Arc<dyn CallObserver>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EchoArgs {
    /// Text to send back.
    pub text: String,
    /// Progress notifications to send first.
    #[serde(default)]
    pub steps: u32,
    /// Answer with an error result instead.
    #[serde(default)]
    pub fail: bool,
    /// Milliseconds to wait before answering.
    #[serde(default)]
    pub sleep_ms: u64,
}

#[tool_router]
impl EchoServer {
    pub fn new(token: Option<SecretString>) -> Self {
        Self {
            token: token.map(|t| t.expose_secret().to_owned()),
            tool_router: Self::tool_router(),
            observer: None,
        }
    }

    /// Echo the text back, after `steps` progress notifications.
    #[tool]
    async fn echo(
        &self,
        Parameters(args): Parameters<EchoArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<String, String> {
        if let Some(token) = ctx.meta.get_progress_token() {
            for i in 0..args.steps {
                let _ = ctx
                    .peer
                    .notify_progress(
                        ProgressNotificationParam::new(token.clone(), f64::from(i + 1))
                            .with_total(f64::from(args.steps)),
                    )
                    .await;
            }
        }
        if args.sleep_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(args.sleep_ms)).await;
        }
        if args.fail {
            return Err(format!("failed: {}", args.text));
        }
        Ok(args.text)
    }

    /// The Airtable token this session was built with (`default` without one).
    #[tool]
    async fn whoami(&self) -> String {
        self.token.clone().unwrap_or_else(|| "default".to_owned())
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for EchoServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("echo-test", "0.0.0"))
    }

    /// Reports to the observer like the Airtable handler does ("unknown" for unknown names).
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let started = std::time::Instant::now();
        let label = if self.tool_router.has_route(&request.name) {
            request.name.to_string()
        } else {
            "unknown".to_owned()
        };
        let guard = self.observer.as_ref().map(|o| o.started(&label));
        let result = self
            .tool_router
            .call(ToolCallContext::new(self, request, context))
            .await;
        if let Some(o) = &self.observer {
            o.finished(&label, CallOutcome::of(&result), started.elapsed());
        }
        drop(guard);
        result
    }
}

impl Observable for EchoServer {
    fn observed(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }
}

pub fn echo_factory() -> HandlerFactory<EchoServer> {
    Arc::new(EchoServer::new)
}

pub const TOKEN_A: &str = "test-bearer-token-aaaaaaaa";
pub const TOKEN_B: &str = "test-bearer-token-bbbbbbbb";

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;

use airtable_mcp::server::http::{self, BearerTokens, Hooks, HttpOptions, HttpServer};
use tokio_util::sync::CancellationToken;

/// Both test bearer tokens.
pub fn tokens() -> BearerTokens {
    BearerTokens::new(vec![
        SecretString::from(TOKEN_A.to_owned()),
        SecretString::from(TOKEN_B.to_owned()),
    ])
    .unwrap()
}

/// Options on 127.0.0.1:0 with both test tokens.
pub fn options() -> HttpOptions {
    HttpOptions::new("127.0.0.1:0".parse().unwrap(), Some(tokens()))
}

/// Start the echo server; returns it with its shutdown token.
pub async fn start_echo(opts: HttpOptions) -> (HttpServer, CancellationToken) {
    let shutdown = CancellationToken::new();
    let server = http::start(echo_factory(), Hooks::default(), opts, shutdown.clone())
        .await
        .unwrap();
    (server, shutdown)
}

pub fn base_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// The Python interpreter of the test venv (tools/setup-test-env.sh creates it).
pub fn python() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run tools/setup-test-env.sh",
        p.display()
    );
    p
}

/// Run tests/python/http_client.py; returns its JSON report.
pub async fn run_python_client(
    url: &str,
    bearer: Option<&str>,
    airtable_tokens: &[&str],
    extra: &[&str],
) -> serde_json::Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/http_client.py");
    let mut cmd = tokio::process::Command::new(python());
    cmd.arg(script).arg("--url").arg(url).args(extra);
    cmd.env_remove("MCP_BEARER");
    if let Some(b) = bearer {
        cmd.env("MCP_BEARER", b);
    }
    cmd.env("MCP_AIRTABLE_TOKENS", airtable_tokens.join(","));
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = cmd.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python client failed: {}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("python client printed no JSON ({e}):\nstdout: {stdout}\nstderr: {stderr}")
    })
}

/// Parse Prometheus text: `name{labels}` → value (comments skipped; every line must parse).
pub fn parse_prometheus(text: &str) -> std::collections::HashMap<String, f64> {
    let mut out = std::collections::HashMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample line: {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let name_end = key.find('{').unwrap_or(key.len());
        let name = &key[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < key.len() {
            assert!(key.ends_with('}'), "unterminated labels in {line:?}");
        }
        out.insert(key.to_owned(), value);
    }
    out
}

/// A loopback reverse proxy that sends each request to the upstream owning its bearer token:
/// several sandboxes (one token and one data set each) behind one API URL, like Airtable.
pub async fn token_router(
    upstreams: Vec<(String, url::Url)>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::response::{IntoResponse, Response};

    #[derive(Clone)]
    struct Routes {
        upstreams: Arc<Vec<(String, url::Url)>>,
        http: reqwest::Client,
    }

    async fn forward(State(r): State<Routes>, req: Request) -> Response {
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let Some((_, base)) = r
            .upstreams
            .iter()
            .find(|(token, _)| auth == format!("Bearer {token}"))
        else {
            return (
                axum::http::StatusCode::UNAUTHORIZED,
                axum::Json(
                    serde_json::json!({"error": {"type": "AUTHENTICATION_REQUIRED",
                    "message": "Authentication required"}}),
                ),
            )
                .into_response();
        };
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let url = format!("{}{}", base.as_str().trim_end_matches('/'), path);
        let method = req.method().clone();
        let content_type = req.headers().get("content-type").cloned();
        let body = axum::body::to_bytes(req.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        let mut out = r.http.request(method, url).header("authorization", auth);
        if let Some(ct) = content_type {
            out = out.header("content-type", ct);
        }
        match out.body(body).send().await {
            Ok(res) => {
                let status = res.status();
                let headers = res.headers().clone();
                let bytes = res.bytes().await.unwrap_or_default();
                let mut response = Response::new(Body::from(bytes));
                *response.status_mut() = status;
                for name in ["content-type", "retry-after"] {
                    if let Some(v) = headers.get(name) {
                        response.headers_mut().insert(name, v.clone());
                    }
                }
                response
            }
            Err(e) => (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        }
    }

    let routes = Routes {
        upstreams: Arc::new(upstreams),
        http: reqwest::Client::new(),
    };
    let app = axum::Router::new().fallback(forward).with_state(routes);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

/// A raw JSON-RPC client of one Streamable HTTP session (protocol 2025-06-18, stateful).
pub struct RawSession {
    http: reqwest::Client,
    url: String,
    bearer: String,
    session_id: Option<String>,
    next_id: u64,
}

/// The JSON-RPC message with `id` in a response body (JSON or SSE).
pub fn find_response(body: &str, id: u64) -> Option<serde_json::Value> {
    let candidates: Vec<&str> = if body.trim_start().starts_with('{') {
        vec![body]
    } else {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .collect()
    };
    candidates
        .into_iter()
        .filter_map(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .find(|v| v["id"] == id)
}

impl RawSession {
    /// `initialize` + `notifications/initialized` on `{base}/mcp`.
    pub async fn open(http: reqwest::Client, base: &str, bearer: &str) -> Result<Self, String> {
        let mut s = Self {
            http,
            url: format!("{base}/mcp"),
            bearer: bearer.to_owned(),
            session_id: None,
            next_id: 1,
        };
        let res = s
            .post(
                serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "raw-session", "version": "0"}}}),
            )
            .await?;
        s.session_id = res
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = res.text().await.map_err(|e| e.to_string())?;
        find_response(&body, 0).ok_or_else(|| format!("no initialize result: {body}"))?;
        let res = s
            .post(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        if !res.status().is_success() {
            return Err(format!("initialized: {}", res.status()));
        }
        Ok(s)
    }

    async fn post(&self, body: serde_json::Value) -> Result<reqwest::Response, String> {
        let mut req = self
            .http
            .post(&self.url)
            .bearer_auth(&self.bearer)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&body);
        if let Some(sid) = &self.session_id {
            req = req.header("mcp-session-id", sid);
        }
        req.send().await.map_err(|e| e.to_string())
    }

    /// `tools/call`; the result, or why it failed (JSON-RPC error or isError).
    pub async fn call(
        &mut self,
        tool: &str,
        args: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let res = self
            .post(
                serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                         "params": {"name": tool, "arguments": args}}),
            )
            .await?;
        let status = res.status();
        let body = res.text().await.map_err(|e| e.to_string())?;
        let msg = find_response(&body, id)
            .ok_or_else(|| format!("no response to call {id} ({status}): {body}"))?;
        if msg.get("error").is_some() || msg["result"]["isError"] == true {
            return Err(format!("call failed: {msg}"));
        }
        Ok(msg["result"].clone())
    }
}

/// The stderr lines of a spawned server, still to be read.
pub type StderrLines = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>;

/// Reads a spawned `serve --http` child's stderr (piped) up to its startup line "serving MCP at
/// http://ADDR/…"; returns `http://ADDR`, the lines read so far (that one included) and the rest
/// of stderr, which the caller keeps draining (or drops) so that the child never blocks.
pub async fn http_base_of(child: &mut tokio::process::Child) -> (String, Vec<String>, StderrLines) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr piped")).lines();
    let mut seen = Vec::new();
    loop {
        let line = tokio::time::timeout(std::time::Duration::from_secs(90), lines.next_line())
            .await
            .expect("no startup line")
            .unwrap()
            .expect("the server exited before listening");
        seen.push(line.clone());
        if let Some(rest) = line.split("serving MCP at http://").nth(1) {
            let addr = rest.split('/').next().unwrap().to_owned();
            return (format!("http://{addr}"), seen, lines);
        }
    }
}
