//! An Airtable-compatible server: the Web API on loopback, backed by SQLite.
//!
//! `spawn` starts it in-process (tests use port 0); `airtable-mcp sandbox` runs it until
//! Ctrl-C. See docs/sandbox.md for what it does and how it differs from Airtable.

mod attachments;
mod cells;
mod comments;
mod errors;
mod fx;
mod meta;
pub mod oauth;
mod query;
mod ratelimit;
mod records;
mod schema;
mod seed;
mod store;
pub mod users;
mod util;
mod webhooks;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::cli::SandboxArgs;
use errors::{ApiError, ApiResult};
use query::ListParams;
use ratelimit::RateLimiter;

pub use oauth::{DEFAULT_CLIENT_ID, OAuthClient, OAuthStats};
pub use seed::DEMO_BASE_ID;
pub use users::{Identity, SECOND_USER_BASE_ID, SECOND_USER_EMAIL, SECOND_USER_ID};

/// The first user of the sandbox: the PAT's (whoami, comment authors); see [`users`].
pub const SANDBOX_USER_ID: &str = "usrSandboxUser001";
pub const SANDBOX_USER_EMAIL: &str = "sandbox@example.com";
pub const SANDBOX_USER_NAME: &str = "Sandbox User";

fn sandbox_user_json() -> Value {
    serde_json::json!({"id": SANDBOX_USER_ID, "email": SANDBOX_USER_EMAIL, "name": SANDBOX_USER_NAME})
}

/// Errors starting the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("sandbox database migration failed: {0}")]
    Migration(String),
    #[error("cannot bind or serve the sandbox: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid seed: {0}")]
    Seed(String),
    #[error("invalid sandbox configuration: {0}")]
    Config(String),
}

/// What to load into an empty sandbox.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Seed {
    #[default]
    None,
    /// The demo project tracker ([`DEMO_BASE_ID`]).
    Demo,
    /// A JSON seed file (format in docs/sandbox.md).
    File(PathBuf),
}

/// Fault injection (for tests of retry logic).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Fraction (0.0–1.0) of authenticated requests answered 503 RETRIABLE_ERROR (not applied).
    pub fail_rate: f64,
    /// Latency added to every request.
    pub latency: Duration,
    /// Fraction of writes whose connection is closed before the write is applied.
    pub drop_before_rate: f64,
    /// Fraction of writes whose connection is closed after the write is applied.
    pub drop_after_rate: f64,
}

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The bearer token accepted (not a real Airtable token).
    pub token: String,
    /// SQLite file; None keeps everything in memory.
    pub db: Option<PathBuf>,
    pub seed: Seed,
    /// Requests per sliding second per base before 429 (0 disables).
    pub rate_limit: u32,
    /// How long a base stays locked after a 429.
    pub penalty: Duration,
    pub faults: Faults,
    /// What one request may spend evaluating formulas (filters, formula fields); over it the
    /// request gets a 422 `FORMULA_EVALUATION_BUDGET_EXCEEDED`. Its `cancel` flag is ignored:
    /// each request gets its own, raised when the request is dropped.
    pub eval_budget: crate::formula::Budget,
    /// OAuth integrations the OAuth endpoints accept (default: [`DEFAULT_CLIENT_ID`], public,
    /// any loopback redirect URI).
    pub oauth_clients: Vec<OAuthClient>,
    /// `GET /oauth2/v1/authorize` redirects at once instead of showing the consent page.
    pub oauth_auto_approve: bool,
    /// Lifetime of an OAuth access token (Airtable: 60 minutes).
    pub oauth_access_ttl: Duration,
    /// Lifetime of an OAuth refresh token, restarted by each refresh (Airtable: 60 days).
    pub oauth_refresh_ttl: Duration,
    /// How long a webhook lives after create or refresh (Airtable: 7 days).
    pub webhook_lifetime: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            token: "sandbox-token".into(),
            db: None,
            seed: Seed::None,
            rate_limit: 5,
            penalty: Duration::from_secs(30),
            faults: Faults::default(),
            eval_budget: crate::formula::Budget::default(),
            oauth_clients: oauth::default_clients(),
            oauth_auto_approve: false,
            oauth_access_ttl: Duration::from_secs(3600),
            oauth_refresh_ttl: Duration::from_secs(60 * 24 * 3600),
            webhook_lifetime: Duration::from_secs(7 * 86_400),
        }
    }
}

/// A fresh random bearer token (`sbx_` + 32 hex digits) for a sandbox that only this process
/// talks to (`serve --sandbox`), so no other local process can use it.
pub fn random_token() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sbx_{hex}")
}

impl SandboxConfig {
    /// In memory, seeded with the demo base, no rate limit: what most tests want. Deterministic:
    /// the formula budget counts evaluation steps only, with no wall-clock limit, so a busy test
    /// machine never turns a read into 422 FORMULA_EVALUATION_BUDGET_EXCEEDED.
    pub fn demo() -> Self {
        SandboxConfig {
            seed: Seed::Demo,
            rate_limit: 0,
            eval_budget: crate::formula::Budget {
                max_time: None,
                ..crate::formula::Budget::default()
            },
            ..Default::default()
        }
    }
}

/// Counters since start.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SandboxStats {
    /// Every request received (including refused ones).
    pub requests: u64,
    /// Requests answered 429 RATE_LIMIT_REACHED.
    pub rate_limited: u64,
    /// Requests answered 503 by fault injection.
    pub injected_failures: u64,
    /// Connections dropped by fault injection.
    pub dropped: u64,
    /// Requests per HTTP method.
    pub by_method: BTreeMap<String, u64>,
    /// Requests that may change data: any method but GET and HEAD, except `POST .../listRecords`.
    pub writes: u64,
    /// Requests stopped because their formulas spent the evaluation budget.
    pub over_budget: u64,
    /// Evaluations stopped because their request was dropped (the client left).
    pub cancelled: u64,
    /// Microseconds spent on requests, from their arrival to their answer being ready (summed
    /// over all requests: a benchmark takes the difference across one request to tell the
    /// sandbox's own time from its client's).
    pub handling_us: u64,
}

struct Inner {
    cfg: SandboxConfig,
    files: attachments::Files,
    db: Mutex<store::Db>,
    limiter: RateLimiter,
    stats: Mutex<SandboxStats>,
    oauth: Mutex<oauth::OAuthStore>,
    /// Base ID → owner, for every base not owned by the first user.
    foreign: Mutex<HashMap<String, String>>,
}

/// Shared state of one sandbox (cheap to clone).
#[derive(Clone)]
pub struct SandboxState {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl SandboxState {
    /// Open (and migrate) the database and apply the seed. Blocking.
    pub fn new(cfg: SandboxConfig) -> Result<SandboxState, SandboxError> {
        for (name, r) in [
            ("fail_rate", cfg.faults.fail_rate),
            ("drop_before_rate", cfg.faults.drop_before_rate),
            ("drop_after_rate", cfg.faults.drop_after_rate),
        ] {
            if !(0.0..=1.0).contains(&r) {
                return Err(SandboxError::Config(format!(
                    "{name} must be within 0.0..=1.0"
                )));
            }
        }
        if cfg.token.is_empty() {
            return Err(SandboxError::Config("the token must not be empty".into()));
        }
        let mut conn = store::open(cfg.db.as_deref())?;
        match &cfg.seed {
            Seed::None => {}
            Seed::Demo => {
                seed::demo(&mut conn)?;
                seed::load(&mut conn, &users::second_user_seed())?;
                store::set_base_owner(&conn, SECOND_USER_BASE_ID, SECOND_USER_ID)?;
            }
            Seed::File(p) => seed::from_file(&mut conn, p)?,
        }
        let foreign: HashMap<String, String> = store::base_owners(&conn)?
            .into_iter()
            .filter(|(_, owner)| owner != SANDBOX_USER_ID)
            .collect();
        let mut db = store::Db::new(conn);
        db.hooks = webhooks::Hooks::new(cfg.webhook_lifetime);
        Ok(SandboxState {
            inner: Arc::new(Inner {
                limiter: RateLimiter::new(cfg.rate_limit, cfg.penalty),
                cfg,
                files: attachments::Files::new(),
                db: Mutex::new(db),
                stats: Mutex::new(SandboxStats::default()),
                oauth: Mutex::new(oauth::OAuthStore::default()),
                foreign: Mutex::new(foreign),
            }),
        })
    }

    pub fn stats(&self) -> SandboxStats {
        lock(&self.inner.stats).clone()
    }

    pub fn token(&self) -> &str {
        &self.inner.cfg.token
    }

    /// What the OAuth endpoints did since start.
    pub fn oauth_stats(&self) -> OAuthStats {
        lock(&self.inner.oauth).stats.clone()
    }

    fn owner_of(&self, base: &str) -> String {
        lock(&self.inner.foreign)
            .get(base)
            .cloned()
            .unwrap_or_else(|| SANDBOX_USER_ID.to_owned())
    }

    /// Run a storage operation on the blocking pool, under the database lock and the
    /// request's evaluation budget.
    async fn run<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut store::Db) -> ApiResult<T> + Send + 'static,
    {
        self.run_split(f, Ok).await
    }

    /// Run `locked` under the database lock, then `unlocked` on its result with the lock
    /// released (formula evaluation over a snapshot, so a costly filter never holds up other
    /// requests). Both run on the blocking pool under the request's evaluation budget
    /// ([`SandboxConfig::eval_budget`]); dropping the returned future (the client left)
    /// cancels the evaluation.
    async fn run_split<X, T, L, U>(&self, locked: L, unlocked: U) -> ApiResult<T>
    where
        X: Send + 'static,
        T: Send + 'static,
        L: FnOnce(&mut store::Db) -> ApiResult<X> + Send + 'static,
        U: FnOnce(X) -> ApiResult<T> + Send + 'static,
    {
        let flag = Arc::new(AtomicBool::new(false));
        let _cancel = CancelOnDrop(flag.clone());
        let budget = self.inner.cfg.eval_budget.clone().with_cancel(flag);
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // The budget starts once the lock is held: queueing behind writes is not evaluation.
            let guard = lock(&inner.db);
            let outcome = crate::formula::budget::run(&budget, move || {
                let snapshot = {
                    let mut db = guard;
                    locked(&mut db)?
                };
                unlocked(snapshot)
            });
            match outcome {
                Ok(r) => r,
                Err(e) => {
                    let mut st = lock(&inner.stats);
                    if e == crate::formula::BudgetExceeded::Cancelled {
                        st.cancelled += 1;
                    } else {
                        st.over_budget += 1;
                    }
                    Err(ApiError::over_budget(&e))
                }
            }
        })
        .await
        .map_err(|e| ApiError::internal(format!("sandbox task failed: {e}")))?
    }

    fn bump(&self, f: impl FnOnce(&mut SandboxStats)) {
        f(&mut lock(&self.inner.stats));
    }
}

/// Raises the cancellation flag of a request's evaluation when the request is dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A running sandbox. Dropping it stops the server too.
pub struct SandboxHandle {
    url: url::Url,
    state: SandboxState,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SandboxHandle {
    /// `http://127.0.0.1:PORT` (API paths start with /v0).
    pub fn url(&self) -> url::Url {
        self.url.clone()
    }

    pub fn addr(&self) -> String {
        self.url.as_str().trim_end_matches('/').to_string()
    }

    pub fn token(&self) -> &str {
        self.state.token()
    }

    pub fn stats(&self) -> SandboxStats {
        self.state.stats()
    }

    pub fn state(&self) -> &SandboxState {
        &self.state
    }

    /// Stop accepting, close connections and wait for the server task.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Start a sandbox on `addr` (port 0 picks a free port).
pub async fn spawn(cfg: SandboxConfig, addr: SocketAddr) -> Result<SandboxHandle, SandboxError> {
    let state = tokio::task::spawn_blocking(move || SandboxState::new(cfg))
        .await
        .map_err(|e| SandboxError::Config(format!("startup task failed: {e}")))??;
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let url = url::Url::parse(&format!("http://{local}"))
        .map_err(|e| SandboxError::Config(format!("bad listen address: {e}")))?;
    let cancel = CancellationToken::new();
    let app = router(state.clone());
    let task = tokio::spawn(serve(listener, app, cancel.clone()));
    Ok(SandboxHandle {
        url,
        state,
        cancel,
        task: Some(task),
    })
}

/// Lets a handler close its connection without answering (fault injection).
#[derive(Clone)]
struct ConnKill(Arc<Notify>);

async fn serve(listener: TcpListener, app: Router, cancel: CancellationToken) {
    loop {
        let stream = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "sandbox accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let kill = Arc::new(Notify::new());
            let k = kill.clone();
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnKill(k.clone()));
                    let app = app.clone();
                    async move { app.oneshot(req.map(Body::new)).await }
                },
            );
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                // Dropping the connection closes the socket without an answer.
                _ = kill.notified() => {}
                _ = cancel.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                }
            }
        });
    }
}

/// The base a request is about (rate limiting is per base).
fn base_of(path: &str) -> Option<&str> {
    let mut segs = path.trim_start_matches('/').split('/');
    if segs.next()? != "v0" {
        return None;
    }
    match segs.next()? {
        "bases" => segs.next().filter(|s| !s.is_empty()),
        "meta" => {
            if segs.next()? == "bases" {
                segs.next().filter(|s| !s.is_empty())
            } else {
                None
            }
        }
        b if !b.is_empty() => Some(b),
        _ => None,
    }
}

/// Who the request's bearer token is: the PAT (first user, every scope) or a live OAuth
/// access token; None for anything else.
fn identify(req: &Request, state: &SandboxState) -> Option<Identity> {
    let h = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())?;
    let given = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))?
        .trim();
    use subtle::ConstantTimeEq;
    if bool::from(given.as_bytes().ct_eq(state.inner.cfg.token.as_bytes())) {
        return Some(Identity::pat());
    }
    oauth::identity(state, given)
}

fn roll(rate: f64) -> bool {
    rate > 0.0 && rand::random::<f64>() < rate
}

async fn drop_connection(state: &SandboxState, kill: Option<ConnKill>) -> Response {
    state.bump(|s| s.dropped += 1);
    match kill {
        Some(k) => {
            k.0.notify_one();
            std::future::pending::<Response>().await
        }
        // Served without the sandbox's own accept loop: no socket to close.
        None => ApiError::internal("connection dropped by fault injection").into_response(),
    }
}

/// [`gate_inner`], timed into [`SandboxStats::handling_us`].
async fn gate(State(state): State<SandboxState>, req: Request, next: Next) -> Response {
    let start = std::time::Instant::now();
    let resp = gate_inner(&state, req, next).await;
    let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    state.bump(|s| s.handling_us = s.handling_us.saturating_add(us));
    resp
}

async fn gate_inner(state: &SandboxState, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let write = !matches!(method, Method::GET | Method::HEAD)
        && !req.uri().path().ends_with("/listRecords");
    state.bump(|s| {
        s.requests += 1;
        *s.by_method.entry(method.to_string()).or_default() += 1;
        s.writes += u64::from(write);
    });
    let faults = state.inner.cfg.faults.clone();
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    let Some(who) = identify(&req, state) else {
        return ApiError::auth_required().into_response();
    };
    let path = req.uri().path().to_string();
    if let Some(scope) = users::required_scope(&method, &path)
        && !who.allows(scope)
    {
        return users::missing_scope(scope).into_response();
    }
    // Another user's base answers exactly like a base that does not exist.
    if let Some(base) = base_of(&path)
        && state.owner_of(base) != who.user.id
    {
        return if path.starts_with("/v0/meta/") {
            ApiError::model_not_found().into_response()
        } else {
            ApiError::not_found().into_response()
        };
    }
    req.extensions_mut().insert(who);
    if let Some(base) = base_of(&path)
        && let Err(left) = state.inner.limiter.check(base)
    {
        state.bump(|s| s.rate_limited += 1);
        return ApiError::rate_limited(left.as_secs_f64().ceil() as u64).into_response();
    }
    if roll(faults.fail_rate) {
        state.bump(|s| s.injected_failures += 1);
        return ApiError::retriable().into_response();
    }
    let write = matches!(
        method,
        Method::POST | Method::PATCH | Method::PUT | Method::DELETE
    ) && !path.ends_with("/listRecords");
    let kill = req.extensions().get::<ConnKill>().cloned();
    if write && roll(faults.drop_before_rate) {
        return drop_connection(state, kill).await;
    }
    let resp = next.run(req).await;
    if write && resp.status().is_success() && roll(faults.drop_after_rate) {
        return drop_connection(state, kill).await;
    }
    resp
}

fn json_body(bytes: &Bytes) -> ApiResult<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_json(&e.to_string()))
}

fn reply(r: ApiResult<Value>) -> Response {
    match r {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn not_found() -> Response {
    ApiError::not_found().into_response()
}

/// The sandbox's routes (Appendix A of the reference), behind auth, rate limit and faults.
/// Every route also answers with trailing slashes (`/v0/{base}/{table}/`), as Airtable does.
pub fn router(state: SandboxState) -> Router {
    let routes = api_routes(state.clone());
    // Attachment files need no token (like Airtable's URLs); every answer gets fresh signed
    // attachment URLs (see `attachments`).
    Router::new()
        .route("/files/{att}/{filename}", get(attachments::serve_file))
        .route(
            "/oauth2/v1/authorize",
            get(oauth::authorize_get).post(oauth::authorize_post),
        )
        .route("/oauth2/v1/token", post(oauth::token))
        .fallback_service(tower::service_fn(move |mut req: Request| {
            let routes = routes.clone();
            async move {
                trim_trailing_slashes(&mut req);
                routes.oneshot(req).await
            }
        }))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            attachments::sign_urls,
        ))
        .with_state(state)
}

/// `/v0/app/tbl/?x=1` → `/v0/app/tbl?x=1` (the root `/` stays).
fn trim_trailing_slashes(req: &mut Request) {
    let path = req.uri().path();
    let trimmed = path.trim_end_matches('/');
    if trimmed.len() == path.len() || trimmed.is_empty() {
        return;
    }
    let pq = match req.uri().query() {
        Some(q) => format!("{trimmed}?{q}"),
        None => trimmed.to_owned(),
    };
    let mut parts = req.uri().clone().into_parts();
    if let Ok(p) = pq.parse() {
        parts.path_and_query = Some(p);
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
}

fn api_routes(state: SandboxState) -> Router {
    Router::new()
        .route("/v0/meta/whoami", get(whoami))
        .route("/v0/meta/bases", get(list_bases).post(create_base))
        .route(
            "/v0/meta/bases/{base}/tables",
            get(base_schema).post(create_table),
        )
        .route("/v0/meta/bases/{base}/tables/{table}", patch(update_table))
        .route(
            "/v0/meta/bases/{base}/tables/{table}/fields",
            post(create_field),
        )
        .route(
            "/v0/meta/bases/{base}/tables/{table}/fields/{field}",
            patch(update_field),
        )
        .route(
            "/v0/{base}/{table}",
            get(list_get)
                .post(create_records)
                .patch(patch_many)
                .put(put_many)
                .delete(delete_many),
        )
        .route("/v0/{base}/{table}/listRecords", post(list_post))
        .route(
            "/v0/bases/{base}/webhooks",
            get(list_webhooks).post(create_webhook),
        )
        .route(
            "/v0/bases/{base}/webhooks/{hook}",
            axum::routing::delete(delete_webhook),
        )
        .route(
            "/v0/bases/{base}/webhooks/{hook}/refresh",
            post(refresh_webhook),
        )
        .route(
            "/v0/bases/{base}/webhooks/{hook}/enableNotifications",
            post(enable_webhook_notifications),
        )
        .route(
            "/v0/bases/{base}/webhooks/{hook}/payloads",
            get(webhook_payloads),
        )
        .route(
            "/v0/{base}/{table}/{record}",
            get(get_record)
                .patch(patch_one)
                .put(put_one)
                .delete(delete_one),
        )
        .route(
            "/v0/{base}/{table}/{record}/comments",
            get(list_comments).post(create_comment),
        )
        .route(
            // Airtable's path is /v0/{base}/{record}/{field}/uploadAttachment (no table).
            "/v0/{base}/{table}/{record}/uploadAttachment",
            post(upload_attachment).layer(axum::extract::DefaultBodyLimit::max(
                attachments::MAX_UPLOAD_BYTES * 2,
            )),
        )
        .route(
            "/v0/{base}/{table}/{record}/comments/{comment}",
            patch(update_comment).delete(delete_comment),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

type S = State<SandboxState>;

async fn upload_attachment(
    State(s): S,
    Path((base, record, field)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    reply(attachments::upload(&s, base, record, field, &body).await)
}

async fn create_webhook(State(s): S, Path(base): Path<String>, body: Bytes) -> Response {
    reply(
        async {
            let b = json_body(&body)?;
            s.run(move |db| {
                let data = db.data(&base)?;
                let out = db.hooks.create(&data, &b);
                db.keep(data);
                out
            })
            .await
        }
        .await,
    )
}

async fn list_webhooks(State(s): S, Path(base): Path<String>) -> Response {
    reply(
        s.run(move |db| {
            let data = db.data(&base)?;
            db.keep(data);
            Ok(db.hooks.list(&base))
        })
        .await,
    )
}

async fn delete_webhook(State(s): S, Path((base, hook)): Path<(String, String)>) -> Response {
    reply(s.run(move |db| db.hooks.delete(&base, &hook)).await)
}

async fn refresh_webhook(State(s): S, Path((base, hook)): Path<(String, String)>) -> Response {
    reply(s.run(move |db| db.hooks.refresh(&base, &hook)).await)
}

async fn enable_webhook_notifications(
    State(s): S,
    Path((base, hook)): Path<(String, String)>,
) -> Response {
    reply(
        s.run(move |db| db.hooks.enable_notifications(&base, &hook))
            .await,
    )
}

async fn webhook_payloads(
    State(s): S,
    Path((base, hook)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    reply(
        async {
            let q = query::pairs(q.as_deref())?;
            s.run(move |db| db.hooks.payloads(&base, &hook, &q)).await
        }
        .await,
    )
}

type Who = Extension<Identity>;

async fn whoami(Extension(who): Who) -> Response {
    axum::Json(who.whoami()).into_response()
}

async fn list_bases(State(s): S, Extension(who): Who, RawQuery(q): RawQuery) -> Response {
    reply(
        async {
            let q = query::pairs(q.as_deref())?;
            s.run(move |db| meta::list_bases(&db.conn, who.user.id, &q))
                .await
        }
        .await,
    )
}

async fn create_base(State(s): S, Extension(who): Who, body: Bytes) -> Response {
    reply(
        async {
            let b = json_body(&body)?;
            let owner = who.user.id;
            let out = s
                .run(move |db| meta::create_base(&mut db.conn, &b, owner))
                .await?;
            if owner != SANDBOX_USER_ID
                && let Some(id) = out.get("id").and_then(Value::as_str)
            {
                lock(&s.inner.foreign).insert(id.to_owned(), owner.to_owned());
            }
            Ok(out)
        }
        .await,
    )
}

async fn base_schema(State(s): S, Path(base): Path<String>, RawQuery(q): RawQuery) -> Response {
    reply(
        async {
            let q = query::pairs(q.as_deref())?;
            s.run(move |db| meta::base_schema(&db.conn, &base, &q))
                .await
        }
        .await,
    )
}

async fn create_table(State(s): S, Path(base): Path<String>, body: Bytes) -> Response {
    reply(
        async {
            let b = json_body(&body)?;
            s.run(move |db| {
                db.forget(&base);
                meta::create_table(&mut db.conn, &base, &b)
            })
            .await
        }
        .await,
    )
}

async fn update_table(
    State(s): S,
    Path((base, table)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    reply(
        async {
            let b = json_body(&body)?;
            s.run(move |db| {
                db.forget(&base);
                meta::update_table(&mut db.conn, &base, &table, &b)
            })
            .await
        }
        .await,
    )
}

async fn create_field(
    State(s): S,
    Path((base, table)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    reply(
        async {
            let b = json_body(&body)?;
            s.run(move |db| {
                db.forget(&base);
                meta::create_field(&mut db.conn, &base, &table, &b)
            })
            .await
        }
        .await,
    )
}

async fn update_field(
    State(s): S,
    Path((base, table, field)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    reply(
        async {
            let b = json_body(&body)?;
            s.run(move |db| {
                db.forget(&base);
                meta::update_field(&mut db.conn, &base, &table, &field, &b)
            })
            .await
        }
        .await,
    )
}

async fn list_get(
    State(s): S,
    Path((base, table)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    reply(
        async {
            let q = query::pairs(q.as_deref())?;
            let p = ListParams::from_query(&q)?;
            s.run_split(
                move |c| records::list_snapshot(c, &base, &table, p),
                records::list_page,
            )
            .await
        }
        .await,
    )
}

async fn list_post(
    State(s): S,
    Path((base, table)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    reply(
        async {
            let q = query::pairs(q.as_deref())?;
            let b = json_body(&body)?;
            let p = ListParams::from_body(&b, &q)?;
            s.run_split(
                move |c| records::list_snapshot(c, &base, &table, p),
                records::list_page,
            )
            .await
        }
        .await,
    )
}

async fn create_records(
    State(s): S,
    Path((base, table)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    reply(
        async {
            let b = json_body(&body)?;
            s.run(move |c| records::create(c, &base, &table, &b)).await
        }
        .await,
    )
}

async fn patch_many(
    State(s): S,
    Path((base, table)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    reply(
        async {
            let b = json_body(&body)?;
            s.run(move |c| records::update_many(c, &base, &table, &b, false))
                .await
        }
        .await,
    )
}

async fn put_many(
    State(s): S,
    Path((base, table)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    reply(
        async {
            let b = json_body(&body)?;
            s.run(move |c| records::update_many(c, &base, &table, &b, true))
                .await
        }
        .await,
    )
}

async fn delete_many(
    State(s): S,
    Path((base, table)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    reply(
        async {
            let q = query::pairs(q.as_deref())?;
            s.run(move |c| records::delete_many(c, &base, &table, &q))
                .await
        }
        .await,
    )
}

async fn get_record(
    State(s): S,
    Path((base, table, rec)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    reply(
        async {
            let q = query::pairs(q.as_deref())?;
            s.run(move |c| records::get(c, &base, &table, &rec, &q))
                .await
        }
        .await,
    )
}

async fn patch_one(
    State(s): S,
    Path((base, table, rec)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    reply(
        async {
            let b = json_body(&body)?;
            s.run(move |c| records::update_one(c, &base, &table, &rec, &b, false))
                .await
        }
        .await,
    )
}

async fn put_one(
    State(s): S,
    Path((base, table, rec)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    reply(
        async {
            let b = json_body(&body)?;
            s.run(move |c| records::update_one(c, &base, &table, &rec, &b, true))
                .await
        }
        .await,
    )
}

async fn delete_one(
    State(s): S,
    Path((base, table, rec)): Path<(String, String, String)>,
) -> Response {
    reply(
        s.run(move |c| records::delete_one(c, &base, &table, &rec))
            .await,
    )
}

async fn list_comments(
    State(s): S,
    Path((base, table, rec)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    reply(
        async {
            let q = query::pairs(q.as_deref())?;
            s.run(move |c| comments::list(c, &base, &table, &rec, &q))
                .await
        }
        .await,
    )
}

async fn create_comment(
    State(s): S,
    Path((base, table, rec)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    reply(
        async {
            let b = json_body(&body)?;
            s.run(move |c| comments::create(c, &base, &table, &rec, &b))
                .await
        }
        .await,
    )
}

async fn update_comment(
    State(s): S,
    Path((base, table, rec, com)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Response {
    reply(
        async {
            let b = json_body(&body)?;
            s.run(move |c| comments::update(c, &base, &table, &rec, &com, &b))
                .await
        }
        .await,
    )
}

async fn delete_comment(
    State(s): S,
    Path((base, table, rec, com)): Path<(String, String, String, String)>,
) -> Response {
    reply(
        s.run(move |c| comments::delete(c, &base, &table, &rec, &com))
            .await,
    )
}

/// Build the configuration from the command line.
pub fn config_from_args(args: &SandboxArgs) -> Result<SandboxConfig, SandboxError> {
    let seed = match args.seed.as_deref() {
        None | Some("") => Seed::None,
        Some("demo") => Seed::Demo,
        Some(path) => Seed::File(PathBuf::from(path)),
    };
    if !(args.penalty_secs.is_finite() && args.penalty_secs >= 0.0) {
        return Err(SandboxError::Config("--penalty-secs must be >= 0".into()));
    }
    Ok(SandboxConfig {
        token: args.token.clone(),
        db: args.db.clone(),
        seed,
        rate_limit: args.rate_limit,
        penalty: Duration::from_secs_f64(args.penalty_secs),
        faults: Faults {
            fail_rate: args.fail_rate,
            latency: Duration::from_millis(args.latency_ms),
            drop_before_rate: args.drop_before_rate,
            drop_after_rate: args.drop_after_rate,
        },
        eval_budget: crate::formula::Budget::default(),
        oauth_clients: {
            let mut c = oauth::default_clients();
            c.extend(
                args.oauth_clients
                    .iter()
                    .map(|id| OAuthClient::public_loopback(id)),
            );
            c
        },
        oauth_auto_approve: args.oauth_auto_approve,
        oauth_access_ttl: Duration::from_secs(args.oauth_access_ttl_secs.max(1)),
        oauth_refresh_ttl: Duration::from_secs(args.oauth_refresh_ttl_secs.max(1)),
        webhook_lifetime: Duration::from_secs(7 * 86_400),
    })
}

/// `airtable-mcp sandbox`: serve on 127.0.0.1 until Ctrl-C.
pub async fn run_cli(args: SandboxArgs) -> anyhow::Result<ExitCode> {
    let cfg = config_from_args(&args)?;
    let seeded_demo = cfg.seed == Seed::Demo;
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let handle = spawn(cfg, addr).await?;
    let url = handle.addr();
    tracing::info!(url = %url, demo_base = seeded_demo.then_some(DEMO_BASE_ID), "sandbox listening; Ctrl-C stops it");
    let demo = if seeded_demo {
        format!(" AIRTABLE_DEMO_BASE={DEMO_BASE_ID}")
    } else {
        String::new()
    };
    println!(
        "AIRTABLE_API_URL={url} AIRTABLE_API_KEY={}{demo}",
        handle.token()
    );
    tokio::signal::ctrl_c().await?;
    let stats = handle.stats();
    tracing::info!(
        requests = stats.requests,
        rate_limited = stats.rate_limited,
        "sandbox stopping"
    );
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
