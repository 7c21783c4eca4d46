//! `airtable-mcp serve --http`: one axum app serving
//!
//! - Streamable HTTP at `/mcp` (rmcp's `StreamableHttpService`: stateful `Mcp-Session-Id`
//!   sessions by default, `--stateless` for none; the 2026-07-28 protocol is stateless either way),
//! - the legacy HTTP+SSE transport at `GET /sse` + `POST /messages?sessionId=…` ([`legacy_sse`]),
//! - `/healthz`, `/readyz` and `/metrics` (Prometheus text).
//!
//! Every MCP endpoint (and `/metrics`) needs a bearer token unless the server is bound to
//! loopback and started with `--no-auth`. Each client may bring its own Airtable token in
//! `X-Airtable-Token`: the session's handler is built for that token ([`HandlerFactory`]).
//! The transport is generic over any rmcp [`ServerHandler`] that is [`Observable`]; [`run`] plugs in the Airtable one.

pub mod auth;
pub mod legacy_sse;
pub mod metrics;
pub mod oauth;
pub mod security;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::future::BoxFuture;
use rmcp::ServerHandler;

use crate::tools::CallObserver;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;

use crate::cli::HttpArgs;
pub use auth::{BearerTokens, Principal, SessionBinding};
pub use metrics::{AirtableStatsSnapshot, Metrics, StatsSource};
use security::{ClientRateLimit, Guard, PeerAddr};

/// Default address of `serve --http`.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8787";
/// Header carrying a client's own Airtable token.
pub const AIRTABLE_TOKEN_HEADER: &str = "x-airtable-token";
/// Default request body limit (4 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 4 * 1024 * 1024;
/// Default per-client rate (requests per second; the burst is twice that).
pub const DEFAULT_CLIENT_RATE: u32 = 50;
/// Default bound on the time to answer a non-streaming request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Default idle time after which a session (Streamable HTTP or legacy SSE) is closed.
pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Default cap of open sessions per bearer token.
pub const DEFAULT_MAX_SESSIONS_PER_TOKEN: usize = 16;
/// Default cap of open sessions in total.
pub const DEFAULT_MAX_SESSIONS: usize = 1000;
/// Default bound on in-flight tool calls at shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Errors of the HTTP transport (all found before serving, except `Serve`).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("invalid listen address {0:?} (expected IP:PORT, e.g. 127.0.0.1:8787)")]
    InvalidAddr(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "--no-auth is only allowed on a loopback address, not {addr}: configure bearer tokens instead"
    )]
    NoAuthOnPublic { addr: SocketAddr },
    #[error(
        "HTTP authentication is on but no bearer token is configured: set {var} (comma-separated), \
         pass --auth-token-file FILE (one token a line) or store tokens in the keyring, or use \
         --no-auth on a loopback address{}",
        keyring.as_ref().map(|e| format!(" (keyring: {e})")).unwrap_or_default(),
        var = crate::env::AIRTABLE_MCP_AUTH_TOKENS
    )]
    NoTokens { keyring: Option<String> },
    #[error("cannot read the token file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bearer token at {location} is too short (at least {min} characters)")]
    WeakToken { location: String, min: usize },
    #[error("bearer token at {location} contains whitespace or control characters")]
    BadToken { location: String },
    #[error(
        "refusing to serve plain HTTP on the non-loopback address {addr}: pass --tls-cert and \
         --tls-key, or --insecure if a TLS proxy sits in front"
    )]
    PlaintextPublic { addr: SocketAddr },
    #[error("TLS file {path}: {message}")]
    Tls { path: PathBuf, message: String },
    #[error("{0}")]
    AllowList(String),
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    OAuth(#[from] oauth::OAuthError),
}

/// Builds the handler of one session (legacy SSE session, Streamable HTTP session or
/// stateless request), given the client's own Airtable token if it sent one.
pub type HandlerFactory<H> = Arc<dyn Fn(Option<SecretString>) -> H + Send + Sync>;

/// `/readyz`: `Ok(detail)` when ready, `Err(reason)` otherwise.
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<String, String>> + Send + Sync>;

/// A client's own Airtable token (from `X-Airtable-Token`), put in the HTTP request's
/// extensions: tools can read it per request through `http::request::Parts`.
/// The header itself is removed before the MCP layer sees the request.
#[derive(Clone)]
pub struct AirtableTokenOverride(pub SecretString);

impl std::fmt::Debug for AirtableTokenOverride {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AirtableTokenOverride(***)")
    }
}

tokio::task_local! {
    /// The Airtable token of the request being handled, visible to the session factory.
    static REQUEST_AIRTABLE_TOKEN: Option<SecretString>;
}

/// Validated HTTP options.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub addr: SocketAddr,
    /// `None` = authentication disabled (loopback + `--no-auth` only).
    pub auth: Option<BearerTokens>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub stateless: bool,
    pub json_response: bool,
    pub body_limit: usize,
    /// Requests per second per client (`None` = unlimited).
    pub client_rate: Option<NonZeroU32>,
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
    pub sse_keep_alive: Duration,
    /// `--oauth`: remote users sign in with Airtable (then `auth` is `None`, stateless, no
    /// legacy SSE).
    pub oauth: Option<oauth::OAuthOptions>,
    /// A session with no client message for this long is closed.
    pub session_idle_timeout: Duration,
    /// Open sessions per bearer token (with authentication; over it: 429).
    pub max_sessions_per_token: usize,
    /// Open sessions in total (over it: 503).
    pub max_sessions: usize,
}

impl HttpOptions {
    /// Options for `addr` with every default (auth with the given tokens).
    pub fn new(addr: SocketAddr, auth: Option<BearerTokens>) -> Self {
        Self {
            addr,
            auth,
            tls: None,
            allowed_hosts: security::DEFAULT_ALLOWED_HOSTS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            allowed_origins: security::DEFAULT_ALLOWED_ORIGINS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            stateless: false,
            json_response: false,
            body_limit: DEFAULT_BODY_LIMIT,
            client_rate: NonZeroU32::new(DEFAULT_CLIENT_RATE),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            sse_keep_alive: Duration::from_secs(15),
            oauth: None,
            session_idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT,
            max_sessions_per_token: DEFAULT_MAX_SESSIONS_PER_TOKEN,
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }

    /// Validate the command line: address, auth sources, TLS policy, allow-lists.
    pub fn from_args(addr: &str, args: &HttpArgs) -> Result<Self, HttpError> {
        Self::build(parse_addr(addr)?, args)
    }

    /// From the layered configuration (flags > env > `[http]` in the TOML file); the flags
    /// that only exist on the command line come from `args`.
    pub fn from_config(h: &crate::config::HttpConfig, args: &HttpArgs) -> Result<Self, HttpError> {
        let merged = HttpArgs {
            no_auth: h.no_auth,
            auth_token_file: h.auth_token_file.clone(),
            tls_cert: h.tls_cert.clone(),
            tls_key: h.tls_key.clone(),
            insecure: h.insecure,
            allowed_hosts: h.allowed_hosts.clone(),
            allowed_origins: h.allowed_origins.clone(),
            stateless: h.stateless,
            json_response: h.json_response,
            client_rate_limit: h.client_rate_limit.or(args.client_rate_limit),
            http_timeout: h.http_timeout.or(args.http_timeout),
            shutdown_grace: h.shutdown_grace.or(args.shutdown_grace),
            oauth: args.oauth.clone(),
            session_idle_timeout: h.session_idle_timeout.or(args.session_idle_timeout),
            max_sessions_per_token: h.max_sessions_per_token.or(args.max_sessions_per_token),
            max_sessions: h.max_sessions.or(args.max_sessions),
        };
        Self::build(h.listen.socket_addr(), &merged)
    }

    fn build(addr: SocketAddr, args: &HttpArgs) -> Result<Self, HttpError> {
        let loopback = addr.ip().is_loopback();
        let oauth = if args.oauth.oauth {
            Some(oauth::OAuthOptions::from_args(&args.oauth, loopback)?)
        } else {
            None
        };
        let auth = if args.no_auth || oauth.is_some() {
            if !loopback && oauth.is_none() {
                return Err(HttpError::NoAuthOnPublic { addr });
            }
            None
        } else {
            let mut tokens = BearerTokens::load(args.auth_token_file.as_deref())?;
            if tokens.is_empty() {
                // Neither the env var nor a file: the keyring (`auth` stores them there).
                match crate::auth::keyring::load_http_auth_tokens() {
                    Ok(from_keyring) if !from_keyring.is_empty() => {
                        tokens = BearerTokens::new(from_keyring)?;
                    }
                    Ok(_) => return Err(HttpError::NoTokens { keyring: None }),
                    Err(e) => {
                        return Err(HttpError::NoTokens {
                            keyring: Some(e.to_string()),
                        });
                    }
                }
            }
            Some(tokens)
        };
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            _ => None,
        };
        if !loopback && tls.is_none() && !args.insecure {
            return Err(HttpError::PlaintextPublic { addr });
        }
        let mut opts = Self::new(addr, auth);
        opts.tls = tls;
        if let Some(h) = &args.allowed_hosts {
            opts.allowed_hosts = h.clone();
        }
        if let Some(o) = &args.allowed_origins {
            opts.allowed_origins = o.clone();
        }
        Guard::new(&opts.allowed_hosts, &opts.allowed_origins).map_err(HttpError::AllowList)?;
        // OAuth: every request uses the user's current Airtable token (refreshed tokens
        // rotate), so no session outlives a token.
        opts.stateless = args.stateless || oauth.is_some();
        opts.oauth = oauth;
        opts.json_response = args.json_response;
        if let Some(r) = args.client_rate_limit {
            opts.client_rate = NonZeroU32::new(r);
        }
        if let Some(t) = args.http_timeout {
            opts.request_timeout = Duration::from_secs(t.max(1));
        }
        if let Some(g) = args.shutdown_grace {
            opts.shutdown_grace = Duration::from_secs(g);
        }
        if let Some(t) = args.session_idle_timeout {
            opts.session_idle_timeout = Duration::from_secs(t.max(1));
        }
        if let Some(n) = args.max_sessions_per_token {
            opts.max_sessions_per_token = n.max(1);
        }
        if let Some(n) = args.max_sessions {
            opts.max_sessions = n.max(1);
        }
        Ok(opts)
    }
}

/// `IP:PORT`, `[v6]:PORT` or `localhost:PORT`.
/// (The one parser is [`crate::config::ListenAddr`].)
pub fn parse_addr(s: &str) -> Result<SocketAddr, HttpError> {
    s.parse::<crate::config::ListenAddr>()
        .map(SocketAddr::from)
        .map_err(|_| HttpError::InvalidAddr(s.trim().to_owned()))
}

/// What the app needs besides the handler factory.
#[derive(Clone, Default)]
pub struct Hooks {
    /// `/readyz` check; without one `/readyz` answers like `/healthz`.
    pub readiness: Option<ReadinessCheck>,
    /// The Airtable client's counters for `/metrics`.
    pub stats: Option<StatsSource>,
}

/// A running server.
pub struct HttpServer {
    local_addr: SocketAddr,
    metrics: Arc<Metrics>,
    task: JoinHandle<Result<(), HttpError>>,
}

impl HttpServer {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Wait until the server has shut down (after the shutdown token is cancelled).
    pub async fn wait(self) -> Result<(), HttpError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(HttpError::Serve(std::io::Error::other(e))),
        }
    }
}

/// Who opened each Streamable HTTP session (principal + Airtable token digest): a session
/// only serves the client that created it.
#[derive(Clone, Default)]
struct SessionOwners(Arc<Mutex<HashMap<String, SessionBinding>>>);

#[derive(Clone)]
struct McpLayerState {
    owners: SessionOwners,
    /// POST responses still being written (their SSE body carries the call's result).
    responses: TaskTracker,
    /// Open Streamable HTTP sessions (stateful mode).
    manager: Option<Arc<LocalSessionManager>>,
    /// Open legacy SSE sessions, by owner.
    legacy: LegacyOwners,
    max_per_token: usize,
    max_total: usize,
    metrics: Arc<Metrics>,
}

/// Who opened each open legacy SSE session.
type LegacyOwners = Arc<dyn Fn() -> Vec<SessionBinding> + Send + Sync>;

/// A refusal to open one more session: a JSON-RPC error body (id null), 429 over the
/// per-token cap, 503 over the total cap, with Retry-After.
fn too_many_sessions(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32000, "message": message},
    });
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::RETRY_AFTER, HeaderValue::from_static("60")),
        ],
        body.to_string(),
    )
        .into_response()
}

impl McpLayerState {
    /// Refuse a new session over a cap (counts open Streamable HTTP and legacy SSE sessions).
    async fn admit_new_session(&self, binding: &SessionBinding) -> Option<Response> {
        let live: Vec<String> = match &self.manager {
            Some(m) => m
                .sessions
                .read()
                .await
                .keys()
                .map(|k| k.to_string())
                .collect(),
            None => Vec::new(),
        };
        let legacy = (self.legacy)();
        let total = live.len() + legacy.len();
        if total >= self.max_total {
            self.metrics.session_refused("total");
            tracing::warn!(
                open = total,
                cap = self.max_total,
                "session refused: the server's session cap is reached"
            );
            return Some(too_many_sessions(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "The server has {total} open sessions, its cap (--max-sessions {}): try again later, or use stateless requests.",
                    self.max_total
                ),
            ));
        }
        let principal = binding.principal()?;
        let mine = {
            let owners = self.owners.0.lock().unwrap_or_else(PoisonError::into_inner);
            live.iter()
                .filter(|sid| owners.get(*sid).and_then(|o| o.principal()) == Some(principal))
                .count()
        } + legacy
            .iter()
            .filter(|o| o.principal() == Some(principal))
            .count();
        if mine >= self.max_per_token {
            self.metrics.session_refused("per_token");
            tracing::warn!(principal = %principal.0, open = mine, cap = self.max_per_token, "session refused: the bearer token's session cap is reached");
            return Some(too_many_sessions(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "This bearer token has {mine} open sessions, its cap (--max-sessions-per-token {}): end sessions you no longer use (HTTP DELETE with their Mcp-Session-Id) or wait until idle ones expire.",
                    self.max_per_token
                ),
            ));
        }
        None
    }
}

/// Middleware on every MCP route: take `X-Airtable-Token` out of the headers (into the
/// request extensions and the session factory's scope), and keep Streamable HTTP sessions
/// bound to the client that created them.
async fn client_context(State(st): State<McpLayerState>, mut req: Request, next: Next) -> Response {
    let token = match req.headers_mut().remove(AIRTABLE_TOKEN_HEADER) {
        Some(v) => match v.to_str() {
            Ok(s) if !s.trim().is_empty() && s.len() <= 512 => {
                Some(SecretString::from(s.trim().to_owned()))
            }
            _ => {
                return (
                    StatusCode::BAD_REQUEST,
                    "Bad Request: invalid X-Airtable-Token header\n",
                )
                    .into_response();
            }
        },
        None => None,
    };
    if let Some(t) = &token {
        req.extensions_mut()
            .insert(AirtableTokenOverride(t.clone()));
    }
    let principal = req.extensions().get::<Principal>().cloned();
    let binding = SessionBinding::new(principal, token.as_ref());
    let session = req
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(sid) = &session {
        let owners = st.owners.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(owner) = owners.get(sid)
            && !owner.admits(&binding)
        {
            return auth::session_mismatch("streamable_http", owner, &binding);
        }
    }
    let opens_session = (session.is_none()
        && st.manager.is_some()
        && req.method() == Method::POST
        && req.uri().path().starts_with("/mcp"))
        || (req.method() == Method::GET && req.uri().path() == "/sse");
    if opens_session && let Some(refusal) = st.admit_new_session(&binding).await {
        return refusal;
    }
    let method = req.method().clone();
    let in_flight = (req.method() == Method::POST).then(|| st.responses.token());
    let mut res = REQUEST_AIRTABLE_TOKEN
        .scope(token.clone(), next.run(req))
        .await;
    if let Some(guard) = in_flight {
        // Shutdown waits until the body (often an SSE stream ending with the result) is done.
        res = res.map(|body| {
            Body::from_stream(body.into_data_stream().map(move |chunk| {
                let _held = &guard;
                chunk
            }))
        });
    }
    if session.is_some() && method == Method::DELETE && res.status().is_success() {
        st.metrics.session_deleted();
    }
    if session.is_none()
        && let Some(sid) = res
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
    {
        st.owners
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sid.to_owned(), binding);
    }
    res
}

/// Who may use the MCP routes and `/metrics`: OAuth users (`--oauth`), else the bearer tokens
/// (none = `--no-auth`).
#[derive(Clone)]
struct AuthGate {
    bearer: Option<BearerTokens>,
    oauth: Option<Arc<oauth::OAuthState>>,
}

async fn auth_gate(State(gate): State<AuthGate>, req: Request, next: Next) -> Response {
    match gate.oauth {
        Some(st) => oauth::require_oauth(State(st), req, next).await,
        None => auth::require_bearer(State(gate.bearer), req, next).await,
    }
}

/// Access log: one span and one line per request (method, path, status, latency).
/// Never headers: they hold bearer and Airtable tokens.
async fn access_log(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("http_request", %method, %path);
    let start = Instant::now();
    let res = next.run(req).instrument(span.clone()).await;
    tracing::info!(
        parent: &span,
        status = res.status().as_u16(),
        latency_ms = start.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    res
}

async fn healthz() -> &'static str {
    "ok"
}

/// `airtable-mcp health`: GET `args.url` (no proxy, no redirects); success when it answers 2xx
/// within `args.timeout` seconds. Prints the failure on stderr.
pub async fn health(args: crate::cli::HealthArgs) -> anyhow::Result<std::process::ExitCode> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(args.timeout.max(1)))
        .build()?;
    match client.get(&args.url).send().await {
        Ok(res) if res.status().is_success() => Ok(std::process::ExitCode::SUCCESS),
        Ok(res) => {
            eprintln!("airtable-mcp: {} answered {}", args.url, res.status());
            Ok(std::process::ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("airtable-mcp: {} did not answer: {e}", args.url);
            Ok(std::process::ExitCode::FAILURE)
        }
    }
}

/// How long a `/readyz` answer is reused: polling it never costs more than one Airtable
/// call per period, however many clients poll.
pub const READY_CACHE: Duration = Duration::from_secs(10);

/// `/readyz` state: the check and its last answer (one check at a time; the others wait for
/// it and share its answer).
#[derive(Clone)]
struct Readiness {
    check: Option<ReadinessCheck>,
    last: Arc<tokio::sync::Mutex<LastAnswer>>,
}

/// When the last readiness check ran, and its answer.
type LastAnswer = Option<(tokio::time::Instant, Result<String, String>)>;

impl Readiness {
    fn new(check: Option<ReadinessCheck>) -> Self {
        Self {
            check,
            last: Arc::default(),
        }
    }

    async fn status(&self) -> Result<String, String> {
        let Some(check) = &self.check else {
            return Ok(String::new());
        };
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = last.as_ref()
            && at.elapsed() < READY_CACHE
        {
            return answer.clone();
        }
        let answer = match tokio::time::timeout(Duration::from_secs(15), check()).await {
            Ok(a) => a,
            Err(_) => Err("the Airtable API did not answer within 15 s".to_owned()),
        };
        *last = Some((tokio::time::Instant::now(), answer.clone()));
        answer
    }
}

/// `/readyz`: public, so it says whether the server can reach Airtable and nothing about
/// whose token it uses; cached for [`READY_CACHE`] and behind the per-client rate limit.
async fn readyz(State(r): State<Readiness>) -> Response {
    match r.status().await {
        Ok(detail) if detail.is_empty() => (StatusCode::OK, "ready\n").into_response(),
        Ok(detail) => (StatusCode::OK, format!("ready: {detail}\n")).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

#[derive(Clone)]
struct MetricsState {
    metrics: Arc<Metrics>,
    sessions: Option<Arc<LocalSessionManager>>,
}

async fn metrics_endpoint(State(st): State<MetricsState>) -> Response {
    if let Some(m) = &st.sessions {
        st.metrics
            .set_streamable_sessions(m.sessions.read().await.len());
    }
    match st.metrics.encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            )],
            text,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").into_response(),
    }
}

/// A handler the transports can serve: an rmcp `ServerHandler` that accepts a
/// [`CallObserver`] (the metrics and the shutdown tracker watch its tool calls through it).
pub trait Observable: ServerHandler {
    /// This handler with `observer` watching its tool calls.
    fn observed(self, observer: Arc<dyn CallObserver>) -> Self;
}

impl Observable for super::AirtableServer {
    fn observed(self, observer: Arc<dyn CallObserver>) -> Self {
        super::AirtableServer::observed(self, observer)
    }
}

/// Build the app and start serving on `opts.addr`. Returns once listening.
/// Cancelling `shutdown` stops accepting, lets in-flight tool calls finish within
/// `opts.shutdown_grace`, then closes every session.
pub async fn start<H: Observable>(
    factory: HandlerFactory<H>,
    hooks: Hooks,
    opts: HttpOptions,
    shutdown: CancellationToken,
) -> Result<HttpServer, HttpError> {
    let guard =
        Guard::new(&opts.allowed_hosts, &opts.allowed_origins).map_err(HttpError::AllowList)?;
    let tls = match &opts.tls {
        Some((cert, key)) => Some(tls::load_config(cert, key)?),
        None => None,
    };
    let listener = TcpListener::bind(opts.addr)
        .await
        .map_err(|source| HttpError::Bind {
            addr: opts.addr,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(HttpError::Serve)?;
    let oauth_state = match &opts.oauth {
        Some(o) => Some(oauth::OAuthState::new(o, local_addr)?),
        None => None,
    };
    let gate = AuthGate {
        bearer: opts.auth.clone(),
        oauth: oauth_state.clone(),
    };
    let metrics = Metrics::new(hooks.stats.clone());
    // Cancelled after the grace period: ends every session and SSE stream.
    let sessions_ct = CancellationToken::new();

    let mut mcp_config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(opts.allowed_hosts.clone())
        .with_allowed_origins(opts.allowed_origins.clone())
        .with_legacy_session_mode(!opts.stateless)
        .with_json_response(opts.json_response)
        .with_sse_keep_alive(Some(opts.sse_keep_alive))
        .with_max_request_body_bytes(opts.body_limit)
        .with_cancellation_token(sessions_ct.clone());
    if opts.allowed_origins.is_empty() {
        mcp_config = mcp_config.enforce_origin_validation();
    }
    let mcp_factory = {
        let factory = factory.clone();
        let metrics = metrics.clone();
        move || {
            let token = REQUEST_AIRTABLE_TOKEN.try_with(Clone::clone).ok().flatten();
            Ok(factory(token).observed(metrics.clone()))
        }
    };
    let owners = SessionOwners::default();
    let responses = TaskTracker::new();
    let (mcp_router, session_manager) = if opts.stateless {
        let svc = StreamableHttpService::new(
            mcp_factory,
            Arc::new(NeverSessionManager::default()),
            mcp_config,
        );
        (Router::new().nest_service("/mcp", svc), None)
    } else {
        let mut manager = LocalSessionManager::default();
        // rmcp closes a session after this long without a message (its keep_alive).
        manager.session_config.keep_alive = Some(opts.session_idle_timeout);
        let manager = Arc::new(manager);
        let svc = StreamableHttpService::new(mcp_factory, manager.clone(), mcp_config);
        (Router::new().nest_service("/mcp", svc), Some(manager))
    };
    let legacy = legacy_sse::LegacySse::new(
        factory,
        metrics.clone(),
        sessions_ct.clone(),
        opts.sse_keep_alive,
        opts.body_limit,
    )
    .with_idle_timeout(opts.session_idle_timeout);
    let legacy_owners: LegacyOwners = {
        let legacy = legacy.clone();
        Arc::new(move || legacy.owners())
    };
    let rate = opts
        .client_rate
        .map(|r| ClientRateLimit::new(r, r.saturating_add(r.get())));

    // OAuth mode has no legacy SSE: its sessions would outlive the user's Airtable token.
    let mcp_router = if oauth_state.is_some() {
        mcp_router
    } else {
        mcp_router.merge(legacy.router())
    };
    let mcp_routes = mcp_router
        .layer(middleware::from_fn_with_state(
            rate.clone(),
            security::rate_limit,
        ))
        .layer(middleware::from_fn_with_state(
            McpLayerState {
                owners: owners.clone(),
                responses: responses.clone(),
                manager: session_manager.clone(),
                legacy: legacy_owners,
                max_per_token: opts.max_sessions_per_token,
                max_total: opts.max_sessions,
                metrics: metrics.clone(),
            },
            client_context,
        ))
        .layer(middleware::from_fn_with_state(gate.clone(), auth_gate))
        .layer(middleware::from_fn_with_state(
            guard.clone(),
            security::check_host_origin,
        ));
    let metrics_route = Router::new()
        .route("/metrics", axum::routing::get(metrics_endpoint))
        .with_state(MetricsState {
            metrics: metrics.clone(),
            sessions: session_manager.clone(),
        })
        .layer(middleware::from_fn_with_state(gate, auth_gate));
    let ready = Router::new()
        .route("/readyz", axum::routing::get(readyz))
        .with_state(Readiness::new(hooks.readiness.clone()))
        .layer(middleware::from_fn_with_state(
            rate.clone(),
            security::rate_limit,
        ));
    let mut public = Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .merge(ready);
    if let Some(st) = &oauth_state {
        public = public.merge(st.router().layer(middleware::from_fn_with_state(
            rate.clone(),
            security::rate_limit,
        )));
    }
    let app = public
        .merge(metrics_route)
        .merge(mcp_routes)
        .layer(RequestBodyLimitLayer::new(opts.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            opts.request_timeout,
        ))
        .layer(guard.cors_layer())
        .layer(middleware::from_fn(security::security_headers))
        .layer(middleware::from_fn(access_log));

    // Housekeeping: forget idle rate-limit keys and the owners of closed sessions.
    {
        let shutdown = shutdown.clone();
        let manager = session_manager.clone();
        let metrics = metrics.clone();
        let period = (opts.session_idle_timeout / 4)
            .clamp(Duration::from_millis(250), Duration::from_secs(60));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {}
                }
                if let Some(r) = &rate {
                    r.housekeeping();
                }
                if let Some(m) = &manager {
                    let live: Vec<String> = m
                        .sessions
                        .read()
                        .await
                        .keys()
                        .map(|k| k.to_string())
                        .collect();
                    let mut owners = owners.0.lock().unwrap_or_else(PoisonError::into_inner);
                    let before = owners.len();
                    owners.retain(|k, _| live.contains(k));
                    let gone = before - owners.len();
                    let deleted = metrics.take_deleted_sessions();
                    // Sessions that ended without a DELETE from their client: expired.
                    metrics.sessions_expired("streamable", gone.saturating_sub(deleted));
                    metrics.set_streamable_sessions(live.len());
                }
            }
        });
    }

    // Shutdown: stop accepting (axum), wait for in-flight calls (bounded), close sessions.
    let drain = {
        let shutdown = shutdown.clone();
        let metrics = metrics.clone();
        let sessions_ct = sessions_ct.clone();
        let responses = responses.clone();
        let grace = opts.shutdown_grace;
        async move {
            shutdown.cancelled().await;
            tracing::info!("shutting down: waiting for in-flight tool calls");
            metrics.in_flight().close();
            responses.close();
            let settled = async {
                metrics.in_flight().wait().await;
                responses.wait().await;
                // Results of finished calls still travel to legacy SSE streams.
                tokio::time::sleep(Duration::from_millis(250)).await;
            };
            if tokio::time::timeout(grace, settled).await.is_err() {
                tracing::warn!(
                    calls = metrics.in_flight().len(),
                    responses = responses.len(),
                    "requests still running after the grace period; closing anyway"
                );
            }
            sessions_ct.cancel();
        }
    };
    let hard_bound = opts.shutdown_grace + Duration::from_secs(5);
    let scheme = if tls.is_some() { "https" } else { "http" };
    match &oauth_state {
        Some(st) => tracing::info!(
            addr = %local_addr,
            issuer = st.issuer(),
            "serving MCP at {} for OAuth users (sign-in with Airtable; no legacy SSE)",
            st.resource()
        ),
        None => tracing::info!(
            addr = %local_addr,
            auth = opts.auth.is_some(),
            stateless = opts.stateless,
            "serving MCP at {scheme}://{local_addr}/mcp (legacy SSE at /sse)"
        ),
    }
    if !local_addr.ip().is_loopback()
        && opts
            .allowed_hosts
            .iter()
            .all(|h| security::DEFAULT_ALLOWED_HOSTS.contains(&h.as_str()))
    {
        tracing::warn!(
            "bound to a non-loopback address but only loopback Host names are allowed: \
             pass --allowed-hosts with the names clients use"
        );
    }

    let task = tokio::spawn(async move {
        let signal = {
            let shutdown = shutdown.clone();
            async move { shutdown.cancelled().await }
        };
        let drain_task = tokio::spawn(drain);
        let serve = async {
            match tls {
                Some(cfg) => {
                    let listener =
                        tls::TlsListener::new(listener, cfg).map_err(HttpError::Serve)?;
                    axum::serve(
                        listener,
                        app.into_make_service_with_connect_info::<PeerAddr>(),
                    )
                    .with_graceful_shutdown(signal)
                    .await
                    .map_err(HttpError::Serve)
                }
                None => axum::serve(
                    tls::PlainListener(listener),
                    app.into_make_service_with_connect_info::<PeerAddr>(),
                )
                .with_graceful_shutdown(signal)
                .await
                .map_err(HttpError::Serve),
            }
        };
        tokio::pin!(serve);
        let result = tokio::select! {
            r = &mut serve => r,
            _ = async {
                shutdown.cancelled().await;
                tokio::time::sleep(hard_bound).await;
            } => {
                tracing::warn!("connections still open after the shutdown bound; exiting");
                Ok(())
            }
        };
        sessions_ct.cancel();
        if shutdown.is_cancelled() {
            let _ = drain_task.await;
        } else {
            drain_task.abort();
        }
        result
    });
    Ok(HttpServer {
        local_addr,
        metrics,
        task,
    })
}

// ---- the Airtable server over HTTP (`serve --http`) ----

/// Per-token servers kept for reuse (their schema cache survives between stateless requests).
const TOKEN_SERVERS_MAX: usize = 1024;

/// Sessions get `AirtableServer::for_token` when the client sent `X-Airtable-Token`,
/// else `AirtableServer::new` (the server's own token). The per-token server is reused for
/// the same token (keyed by the whole token, never a hash that could collide), so stateless
/// requests keep that token's schema cache; no two tokens ever share one.
pub fn airtable_factory(state: Arc<super::ServerState>) -> HandlerFactory<super::AirtableServer> {
    let by_token: Mutex<HashMap<String, super::AirtableServer>> = Mutex::new(HashMap::new());
    Arc::new(move |token| match token {
        Some(t) => {
            let mut map = by_token.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(server) = map.get(t.expose_secret()) {
                return server.clone();
            }
            if map.len() >= TOKEN_SERVERS_MAX {
                map.clear();
            }
            let key = t.expose_secret().to_owned();
            let server = super::AirtableServer::for_token(state.clone(), t);
            map.insert(key, server.clone());
            server
        }
        None => super::AirtableServer::new(state.clone()),
    })
}

/// `/readyz` = whoami with the configured token (cached, identity not shown); `/metrics` =
/// the client's stats.
pub fn airtable_hooks(state: &Arc<super::ServerState>) -> Hooks {
    let client = state.client().ok().cloned();
    let problem = state.client().err().map(|p| p.message().to_owned());
    let stats: Option<StatsSource> = client
        .clone()
        .map(|c| Arc::new(move || AirtableStatsSnapshot::from(&c.stats())) as StatsSource);
    let readiness: ReadinessCheck = Arc::new(move || {
        let client = client.clone();
        let problem = problem.clone();
        Box::pin(async move {
            match client {
                // No identity here: /readyz is public (whoami is a tool, behind auth).
                Some(c) => match c.whoami().await {
                    Ok(_) => Ok("the Airtable API answers".to_owned()),
                    Err(e) => Err(format!("the Airtable API refused the check: {e}")),
                },
                None => Err(problem.unwrap_or_else(|| "no Airtable token".to_owned())),
            }
        })
    });
    Hooks {
        readiness: Some(readiness),
        stats,
    }
}

/// Serve the Airtable tools over HTTP until `shutdown` is cancelled (then drain and stop).
pub async fn run(
    state: Arc<super::ServerState>,
    opts: HttpOptions,
    shutdown: CancellationToken,
) -> Result<(), HttpError> {
    let mut hooks = airtable_hooks(&state);
    if let Some(o) = &opts.oauth
        && state.client().is_err()
    {
        // OAuth users bring their grants: ready when the API answers at all.
        hooks.readiness = Some(oauth::api_reachable(o.api_url.clone()));
    }
    start(airtable_factory(state), hooks, opts, shutdown)
        .await?
        .wait()
        .await
}

/// Cancel `token` on SIGINT (Ctrl-C) or SIGTERM.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("signal received: shutting down");
        token.cancel();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_with_file(lines: &str) -> (HttpArgs, tempfile::NamedTempFile) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, lines.as_bytes()).unwrap();
        let args = HttpArgs {
            auth_token_file: Some(f.path().to_owned()),
            ..HttpArgs::default()
        };
        (args, f)
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_is_checked_once_per_cache_period() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = calls.clone();
        let check: ReadinessCheck = Arc::new(move || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move { Ok(format!("check {n}")) })
        });
        let r = Readiness::new(Some(check));
        let polls = (0..150).map(|_| r.status());
        for answer in futures::future::join_all(polls).await {
            assert_eq!(answer, Ok("check 0".to_owned()));
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        tokio::time::advance(READY_CACHE - Duration::from_millis(1)).await;
        assert_eq!(r.status().await, Ok("check 0".to_owned()));
        tokio::time::advance(Duration::from_millis(2)).await;
        assert_eq!(r.status().await, Ok("check 1".to_owned()));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_addr("127.0.0.1:8787").unwrap(),
            "127.0.0.1:8787".parse().unwrap()
        );
        assert_eq!(
            parse_addr("localhost:9").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert!(parse_addr("[::1]:80").unwrap().ip().is_loopback());
        assert!(matches!(
            parse_addr("example.com:80"),
            Err(HttpError::InvalidAddr(_))
        ));
    }

    #[test]
    fn no_auth_only_on_loopback() {
        let args = HttpArgs {
            no_auth: true,
            ..HttpArgs::default()
        };
        let opts = HttpOptions::from_args("127.0.0.1:0", &args).unwrap();
        assert!(opts.auth.is_none());
        let err = HttpOptions::from_args("0.0.0.0:8787", &args).unwrap_err();
        assert!(matches!(err, HttpError::NoAuthOnPublic { .. }), "{err}");
    }

    #[test]
    fn public_addresses_need_tls_or_insecure() {
        let (mut args, _f) = args_with_file("# ops\nabcdefghijklmnopqrstu\n");
        let err = HttpOptions::from_args("0.0.0.0:8787", &args).unwrap_err();
        assert!(matches!(err, HttpError::PlaintextPublic { .. }), "{err}");
        assert!(err.to_string().contains("--tls-cert"));
        args.insecure = true;
        let opts = HttpOptions::from_args("0.0.0.0:8787", &args).unwrap();
        assert_eq!(opts.auth.map(|t| t.len()), Some(1));
        args.insecure = false;
        args.tls_cert = Some("cert.pem".into());
        args.tls_key = Some("key.pem".into());
        assert!(HttpOptions::from_args("0.0.0.0:8787", &args).is_ok());
    }

    #[test]
    fn token_file_problems_are_clear() {
        let args = HttpArgs {
            auth_token_file: Some("/nonexistent/tokens".into()),
            ..HttpArgs::default()
        };
        let err = HttpOptions::from_args("127.0.0.1:0", &args).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/tokens"), "{err}");
        let (args, _f) = args_with_file("tooshort\n");
        let err = HttpOptions::from_args("127.0.0.1:0", &args).unwrap_err();
        assert!(matches!(err, HttpError::WeakToken { .. }), "{err}");
    }

    #[test]
    fn flags_reach_the_options() {
        let (mut args, _f) = args_with_file("abcdefghijklmnopqrstu\n");
        args.allowed_hosts = Some(vec!["mcp.example.com".into()]);
        args.allowed_origins = Some(vec!["https://app.example.com".into()]);
        args.stateless = true;
        args.client_rate_limit = Some(0);
        args.shutdown_grace = Some(3);
        let o = HttpOptions::from_args("127.0.0.1:0", &args).unwrap();
        assert_eq!(o.allowed_hosts, vec!["mcp.example.com"]);
        assert!(o.stateless);
        assert!(o.client_rate.is_none());
        assert_eq!(o.shutdown_grace, Duration::from_secs(3));
        args.allowed_origins = Some(vec!["app.example.com".into()]);
        assert!(matches!(
            HttpOptions::from_args("127.0.0.1:0", &args),
            Err(HttpError::AllowList(_))
        ));
    }
}
