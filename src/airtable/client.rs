//! The pooled client: configuration, request execution with rate limits and retries, stats.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tracing::{Instrument, field};
use url::Url;

use super::error::{ApiErrorKind, Error, parse_error_body, snippet};
use super::ids::BaseId;
use super::rate_limit::{
    Limiters, MemoryStore, SharedCache, WINDOW_MARGIN, WindowStore, token_fingerprint, token_key,
};
use super::retry::{RetryClass, backoff, parse_retry_after};

/// Default API URL.
pub const DEFAULT_API_URL: &str = "https://api.airtable.com";

/// Default host of the content API (uploadAttachment).
pub const DEFAULT_CONTENT_URL: &str = "https://content.airtable.com";

/// The User-Agent sent with every request.
pub const USER_AGENT: &str = concat!("airtable-mcp/", env!("CARGO_PKG_VERSION"));

/// Airtable rejects URLs of 16,000 characters or more; listings switch to POST before that.
pub const MAX_URL_LEN: usize = 16_000;

/// Client configuration. `Debug` never shows the token.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// API root, default `https://api.airtable.com` (paths are `/v0/...`).
    pub api_url: Url,
    /// Personal access token (or OAuth access token).
    pub token: SecretString,
    /// Timeout of each request (connect + answer), default 30 s.
    pub timeout: Duration,
    /// Requests per second per base, default 5.
    pub per_base_rps: u32,
    /// Requests per second per token, default 50.
    pub per_token_rps: u32,
    /// Retries after the first attempt (429s and transient failures), default 5.
    pub max_retries: u32,
    /// Wait after a 429 without `Retry-After`, default 30 s (Airtable's penalty).
    pub rate_limit_wait: Duration,
    /// First backoff step for transient failures, default 500 ms (full jitter, doubling).
    pub initial_backoff: Duration,
    /// Cap of one backoff step, default 20 s.
    pub max_backoff: Duration,
    /// Widening of the limiters' 1 s sliding window, as a fraction, default 0.03: at most
    /// `per_base_rps` requests per base (and `per_token_rps` per token) in any 1.03 s, the
    /// first ones at once (see `rate_limit`).
    pub limiter_margin: f64,
    /// Refuse every write before it is sent ([`Error::ReadOnly`]): any method but GET, except
    /// `POST .../listRecords` (a read). The one choke point of `--read-only`; default false.
    pub read_only: bool,
    /// Root of the content API (uploadAttachment). `None`: `https://content.airtable.com` with
    /// the default API URL, else the API URL itself (a sandbox or proxy serves both).
    pub content_url: Option<Url>,
    /// Asked for the bearer token before each request instead of using `token` (an OAuth grant
    /// that refreshes itself). `token` still keys the per-token rate limiter.
    pub token_provider: Option<Arc<dyn TokenProvider>>,
}

/// Supplies the current bearer token, per request (implemented by `auth` for OAuth grants: it
/// refreshes before expiry). The client knows nothing of keyrings or OAuth.
pub trait TokenProvider: Send + Sync + fmt::Debug {
    /// The token to send now. An error fails the request (not retried) with [`Error::Token`].
    fn bearer(
        &self,
    ) -> futures::future::BoxFuture<
        '_,
        Result<SecretString, Box<dyn std::error::Error + Send + Sync>>,
    >;

    /// The API answered 401 to `token`: it may have been rotated away by another process. The
    /// next [`TokenProvider::bearer`] should not return it again unchanged. The request is
    /// retried once with the next bearer.
    fn rejected(&self, token: &SecretString) -> futures::future::BoxFuture<'_, ()> {
        let _ = token;
        Box::pin(async {})
    }
}

impl ClientConfig {
    /// Defaults for everything but the URL and token.
    pub fn new(api_url: Url, token: SecretString) -> Self {
        Self {
            api_url,
            token,
            timeout: Duration::from_secs(30),
            per_base_rps: 5,
            per_token_rps: 50,
            max_retries: 5,
            rate_limit_wait: Duration::from_secs(30),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
            limiter_margin: WINDOW_MARGIN,
            read_only: false,
            content_url: None,
            token_provider: None,
        }
    }

    /// The content API root in use (see [`ClientConfig::content_url`]).
    pub fn resolved_content_url(&self) -> Url {
        if let Some(u) = &self.content_url {
            return u.clone();
        }
        if self.api_url.as_str().trim_end_matches('/') == DEFAULT_API_URL {
            match Url::parse(DEFAULT_CONTENT_URL) {
                Ok(u) => u,
                // A constant that parses.
                Err(_) => unreachable!("DEFAULT_CONTENT_URL parses"),
            }
        } else {
            self.api_url.clone()
        }
    }

    /// The default URL (`https://api.airtable.com`).
    pub fn default_api_url() -> Url {
        match Url::parse(DEFAULT_API_URL) {
            Ok(u) => u,
            // A constant that parses.
            Err(_) => unreachable!("DEFAULT_API_URL parses"),
        }
    }
}

/// A snapshot of the client's counters (shared by every client of a pool).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Attempts sent (each retry counts).
    pub requests: u64,
    /// Answers by status class: 1xx..5xx at index 1..5 (index 0 unused).
    pub by_status_class: [u64; 6],
    /// Answers by exact status code (codes 100-599 that occurred), ascending.
    pub by_status: Vec<(u16, u64)>,
    /// Attempts that got no HTTP answer (timeouts, connection errors).
    pub transport_errors: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// Retries made (attempts after the first).
    pub retries: u64,
    /// Total time spent waiting on the client-side rate limiter.
    pub limiter_wait: Duration,
    /// Total time spent sleeping before retries (Retry-After and backoff).
    pub retry_wait: Duration,
    /// The shared rate-limit store's health (None without one, e.g. no `--redis`).
    pub shared_store: Option<super::rate_limit::StoreHealth>,
}

struct StatsInner {
    requests: AtomicU64,
    by_class: [AtomicU64; 6],
    /// Index = status - 100.
    by_status: Vec<AtomicU64>,
    transport_errors: AtomicU64,
    rate_limited: AtomicU64,
    retries: AtomicU64,
    limiter_wait_ns: AtomicU64,
    retry_wait_ns: AtomicU64,
}

/// Whole milliseconds as i64 (OpenTelemetry's integer attribute type).
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Default for StatsInner {
    fn default() -> Self {
        Self {
            requests: AtomicU64::new(0),
            by_class: Default::default(),
            by_status: (100..600).map(|_| AtomicU64::new(0)).collect(),
            transport_errors: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            limiter_wait_ns: AtomicU64::new(0),
            retry_wait_ns: AtomicU64::new(0),
        }
    }
}

impl StatsInner {
    fn record_status(&self, status: u16) {
        self.by_class[usize::from(status / 100).min(5)].fetch_add(1, Ordering::Relaxed);
        if let Some(c) = self.by_status.get(usize::from(status).wrapping_sub(100)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> ClientStats {
        let mut by_status_class = [0u64; 6];
        for (i, c) in self.by_class.iter().enumerate() {
            by_status_class[i] = c.load(Ordering::Relaxed);
        }
        let by_status = self
            .by_status
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let n = c.load(Ordering::Relaxed);
                (n > 0).then(|| (u16::try_from(i + 100).unwrap_or(u16::MAX), n))
            })
            .collect();
        ClientStats {
            requests: self.requests.load(Ordering::Relaxed),
            by_status_class,
            by_status,
            transport_errors: self.transport_errors.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            limiter_wait: Duration::from_nanos(self.limiter_wait_ns.load(Ordering::Relaxed)),
            retry_wait: Duration::from_nanos(self.retry_wait_ns.load(Ordering::Relaxed)),
            shared_store: None,
        }
    }
}

struct Shared {
    /// Built on first use: building loads the system's root certificates (~140 PEM files on
    /// Debian), the largest single step of a cold start, which tools/list does not need.
    http: OnceLock<Result<reqwest::Client, String>>,
    cfg: ClientConfig,
    limiters: Limiters,
    stats: StatsInner,
    /// A cache shared with other processes (Redis), if configured.
    cache: Option<Arc<dyn SharedCache>>,
}

struct TokenState {
    token: SecretString,
    key: u64,
    provider: Option<Arc<dyn TokenProvider>>,
    fingerprint: String,
}

/// The Airtable client. Cheap to clone; clones share the connection pool, limiters and stats.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    token: Arc<TokenState>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api_url", &self.shared.cfg.api_url.as_str())
            .field("token", &"[REDACTED]")
            .finish()
    }
}

/// A request before it is sent.
pub(crate) struct ApiRequest<'a> {
    pub method: Method,
    /// Encoded path, starting with `/v0/`.
    pub path: String,
    /// Query pairs, encoded at send time.
    pub query: Vec<(String, String)>,
    /// JSON body.
    pub body: Option<Vec<u8>>,
    /// The base, for the per-base limiter.
    pub base: Option<&'a BaseId>,
    pub class: RetryClass,
    /// Sent to the content API root instead of the API root.
    pub content: bool,
}

impl<'a> ApiRequest<'a> {
    pub(crate) fn new(method: Method, path: String, base: Option<&'a BaseId>) -> Self {
        let class = if method == Method::POST {
            RetryClass::Create
        } else {
            RetryClass::Idempotent
        };
        Self {
            method,
            path,
            query: Vec::new(),
            body: None,
            base,
            class,
            content: false,
        }
    }

    /// Send to the content API (`content.airtable.com`) instead of the API.
    pub(crate) fn content_host(mut self) -> Self {
        self.content = true;
        self
    }

    pub(crate) fn query(mut self, query: Vec<(String, String)>) -> Self {
        self.query = query;
        self
    }

    pub(crate) fn class(mut self, class: RetryClass) -> Self {
        self.class = class;
        self
    }

    pub(crate) fn json<T: serde::Serialize + ?Sized>(mut self, body: &T) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::Config(format!("could not encode the request body: {e}")))?;
        self.body = Some(bytes);
        Ok(self)
    }
}

/// Characters kept as-is in a path segment: only RFC 3986 unreserved ones.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encode one path segment (a table name, say), everything but unreserved characters.
pub fn encode_segment(s: &str) -> String {
    utf8_percent_encode(s, PATH_SEGMENT).to_string()
}

/// Encode query pairs as `application/x-www-form-urlencoded` (`fields%5B%5D=A+B`).
pub(crate) fn encode_query(pairs: &[(String, String)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    ser.finish()
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The route of an API path, for traces: every segment that names or identifies something
/// becomes a placeholder (`/v0/appX/Tasks/recY` → `/v0/{baseId}/{tableIdOrName}/{recordId}`);
/// only the API's own words (`meta`, `bases`, `listRecords`, ...) stay.
pub(crate) fn path_template(path: &str) -> String {
    const WORDS: &[&str] = &[
        "meta",
        "whoami",
        "bases",
        "tables",
        "fields",
        "views",
        "listRecords",
        "comments",
        "uploadAttachment",
        "webhooks",
        "payloads",
        "refresh",
        "enableNotifications",
        "sync",
    ];
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut segs = path.trim_start_matches('/').split('/');
    if segs.next() != Some("v0") {
        return "{path}".to_owned();
    }
    let rest: Vec<&str> = segs.collect();
    fn word(s: &str) -> &str {
        if WORDS.contains(&s) { s } else { "{name}" }
    }
    let holder = |after: &str| match after {
        "bases" => "{baseId}",
        "tables" => "{tableIdOrName}",
        "fields" => "{fieldIdOrName}",
        "views" => "{viewIdOrName}",
        "comments" => "{commentId}",
        "webhooks" => "{webhookId}",
        _ => "{id}",
    };
    let mut out: Vec<&str> = vec!["", "v0"];
    match rest.as_slice() {
        // /v0/meta/bases/{baseId}/tables/{tableIdOrName}/fields/{fieldIdOrName}: words at
        // odd positions, IDs after them.
        ["meta", tail @ ..] => {
            out.push("meta");
            for (i, s) in tail.iter().enumerate() {
                if i % 2 == 0 {
                    out.push(word(s));
                } else {
                    out.push(holder(tail[i - 1]));
                }
            }
        }
        [_, _, _, "uploadAttachment"] => out.extend([
            "{baseId}",
            "{recordId}",
            "{fieldIdOrName}",
            "uploadAttachment",
        ]),
        [_, tail @ ..] => {
            out.push("{baseId}");
            for (i, s) in tail.iter().enumerate() {
                out.push(match i {
                    0 => "{tableIdOrName}",
                    1 if *s == "listRecords" => "listRecords",
                    1 => "{recordId}",
                    2 => word(s),
                    3 => holder(tail[2]),
                    _ => "{id}",
                });
            }
        }
        [] => {}
    }
    out.join("/")
}

/// Whether a request only reads: GET, HEAD, or `POST .../listRecords` (a listing sent as POST
/// because its URL would be too long).
fn is_read(method: &Method, path: &str) -> bool {
    *method == Method::GET
        || *method == Method::HEAD
        || (*method == Method::POST && path.ends_with("/listRecords"))
}

/// What one attempt produced.
enum Attempt {
    Answer {
        status: u16,
        retry_after: Option<Duration>,
        body: bytes::Bytes,
    },
    /// The answer's head arrived but the body broke.
    BrokenBody {
        status: u16,
        error: Error,
    },
    Failed(Error),
}

fn transport_error(e: &reqwest::Error, timeout: Duration) -> Error {
    // A connect timeout is both `is_connect` and `is_timeout`: nothing was sent, so it is a
    // connect error (safe to retry, even for a create).
    if e.is_timeout() && !e.is_connect() {
        return Error::Timeout(timeout);
    }
    // Build a detail from the source chain; reqwest errors never include headers, and we drop the URL.
    let mut detail = String::new();
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        let part = s.to_string();
        if !detail.contains(&part) {
            if !detail.is_empty() {
                detail.push_str(": ");
            }
            detail.push_str(&part);
        }
        src = s.source();
    }
    // reqwest's top-level Display may include the URL; strip anything after "for url".
    if let Some(i) = detail.find(" for url (") {
        let rest = &detail[i..];
        let end = rest.find(')').map(|j| i + j + 1).unwrap_or(detail.len());
        detail.replace_range(i..end, "");
    }
    if detail.chars().count() > 300 {
        detail = detail.chars().take(300).collect();
    }
    Error::Transport {
        detail,
        connect: e.is_connect(),
    }
}

impl Client {
    /// Build a client: one pooled HTTP client (rustls), shared limiters in process memory.
    pub fn new(cfg: ClientConfig) -> Result<Client, Error> {
        Self::with_store(cfg, Arc::new(MemoryStore::new()))
    }

    /// Build a client whose rate-limit windows live in `store` (shared by several processes,
    /// say); [`Client::new`] uses a [`MemoryStore`].
    pub fn with_store(cfg: ClientConfig, store: Arc<dyn WindowStore>) -> Result<Client, Error> {
        Self::with_stores(cfg, store, None)
    }

    /// Like [`Client::with_store`], plus a cache shared with other processes (the Redis store
    /// is both: `Client::with_stores(cfg, redis.clone(), Some(redis))`).
    pub fn with_stores(
        cfg: ClientConfig,
        store: Arc<dyn WindowStore>,
        cache: Option<Arc<dyn SharedCache>>,
    ) -> Result<Client, Error> {
        match cfg.api_url.scheme() {
            "https" | "http" => {}
            other => {
                return Err(Error::Config(format!(
                    "the Airtable API URL must be http(s), not {other:?}"
                )));
            }
        }
        if cfg.api_url.cannot_be_a_base() || cfg.api_url.host().is_none() {
            return Err(Error::Config(format!(
                "the Airtable API URL {:?} has no host",
                cfg.api_url.as_str()
            )));
        }
        if cfg.token.expose_secret().trim().is_empty() {
            return Err(Error::Config(
                "the Airtable token is empty; set one with `airtable-mcp auth login` or AIRTABLE_API_KEY".into(),
            ));
        }
        let token = Arc::new(TokenState {
            token: cfg.token.clone(),
            key: token_key(&cfg.token),
            fingerprint: token_fingerprint(&cfg.token),
            provider: cfg.token_provider.clone(),
        });
        let limiters = Limiters::new(
            store,
            cfg.per_base_rps,
            cfg.per_token_rps,
            cfg.limiter_margin,
        );
        Ok(Client {
            shared: Arc::new(Shared {
                http: OnceLock::new(),
                cfg,
                limiters,
                stats: StatsInner::default(),
                cache,
            }),
            token,
        })
    }

    /// The same pool, limiters and stats with another token (e.g. one per HTTP session).
    pub fn with_token(&self, token: SecretString) -> Client {
        Client {
            shared: self.shared.clone(),
            token: Arc::new(TokenState {
                key: token_key(&token),
                fingerprint: token_fingerprint(&token),
                provider: None,
                token,
            }),
        }
    }

    /// The cache shared with other processes (Redis), if the client has one.
    pub fn shared_cache(&self) -> Option<&Arc<dyn SharedCache>> {
        self.shared.cache.as_ref()
    }

    /// A stable, non-reversible fingerprint of this client's token (32 hex digits of a
    /// domain-separated SHA-256), for keys of shared state; never the token.
    pub fn token_fingerprint(&self) -> &str {
        &self.token.fingerprint
    }

    /// The token this client sends (its own after [`Client::with_token`]; the configuration
    /// keeps the pool's first one).
    pub fn token(&self) -> &SecretString {
        &self.token.token
    }

    /// Build the pooled HTTP client now, if it is not built yet (blocking: it loads the system's
    /// root certificates). A server calls this on a thread of its own at start, so that its first
    /// request does not wait for it. A failure is kept and reported by that first request.
    pub fn build_http_now(&self) {
        let _ = self.http();
    }

    /// The pooled HTTP client, built on first use.
    pub(crate) fn http(&self) -> Result<&reqwest::Client, Error> {
        let cfg = &self.shared.cfg;
        self.shared
            .http
            .get_or_init(|| {
                let mut builder = reqwest::Client::builder()
                    .user_agent(USER_AGENT)
                    .timeout(cfg.timeout)
                    .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
                    .pool_idle_timeout(Duration::from_secs(60));
                if is_loopback(&cfg.api_url) {
                    builder = builder.no_proxy();
                }
                builder.build().map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| Error::Config(format!("could not build the HTTP client: {e}")))
    }

    /// The API root.
    pub fn api_url(&self) -> &Url {
        &self.shared.cfg.api_url
    }

    /// The configuration (the token inside stays secret).
    pub fn config(&self) -> &ClientConfig {
        &self.shared.cfg
    }

    /// Counters since the pool was created.
    pub fn stats(&self) -> ClientStats {
        let mut s = self.shared.stats.snapshot();
        s.shared_store = self.shared.limiters.health();
        s
    }

    /// The full URL of a path plus query.
    pub(crate) fn url_for(&self, path: &str, query: &[(String, String)]) -> String {
        self.url_at(self.shared.cfg.api_url.as_str(), path, query)
    }

    fn url_at(&self, root: &str, path: &str, query: &[(String, String)]) -> String {
        let root = root.trim_end_matches('/');
        let mut url = format!("{root}{path}");
        if !query.is_empty() {
            url.push('?');
            url.push_str(&encode_query(query));
        }
        url
    }

    /// Send and decode a JSON answer.
    pub(crate) async fn send<T: DeserializeOwned>(&self, req: ApiRequest<'_>) -> Result<T, Error> {
        let class = req.class;
        let (status, body) = self.send_raw(req).await?;
        let body = if body.is_empty() {
            bytes::Bytes::from_static(b"null")
        } else {
            body
        };
        // One UTF-8 check of the whole body, then a parse that trusts it: parsing bytes checks
        // every string on its own, a sixth of parsing a page of records (perf, issue 12).
        let decoded = match std::str::from_utf8(&body) {
            Ok(text) => serde_json::from_str::<T>(text),
            Err(_) => serde_json::from_slice::<T>(&body),
        };
        decoded.map_err(|e| decode_error(class, status, &body, &e))
    }

    /// Send and return the status and body text of a 2xx answer (a body that is not UTF-8 is
    /// a decode error, as it is for [`Client::send`]).
    pub(crate) async fn send_text(&self, req: ApiRequest<'_>) -> Result<(u16, String), Error> {
        let class = req.class;
        let (status, body) = self.send_raw(req).await?;
        match String::from_utf8(Vec::from(body)) {
            Ok(text) => Ok((status, text)),
            Err(e) => {
                let body = e.into_bytes();
                let err = serde_json::from_slice::<serde::de::IgnoredAny>(&body)
                    .err()
                    .unwrap_or_else(|| serde::de::Error::custom("the body is not UTF-8"));
                Err(decode_error(class, status, &body, &err))
            }
        }
    }

    /// Send with rate limiting and retries; returns the status and body of a 2xx answer.
    pub(crate) async fn send_raw(&self, req: ApiRequest<'_>) -> Result<(u16, bytes::Bytes), Error> {
        let url = if req.content {
            let root = self.shared.cfg.resolved_content_url();
            self.url_at(root.as_str(), &req.path, &req.query)
        } else {
            self.url_for(&req.path, &req.query)
        };
        // Fields are OpenTelemetry attributes when traces are exported (`--otlp-endpoint`):
        // the path template and base ID only, never table names, record IDs or the token.
        let template = path_template(&req.path);
        let span = tracing::info_span!(
            "airtable_request",
            otel.name = %format_args!("{} {template}", req.method),
            otel.kind = "client",
            otel.status_code = field::Empty,
            http.request.method = %req.method,
            url.template = %template,
            airtable.base_id = req.base.map(BaseId::as_str),
            http.response.status_code = field::Empty,
            airtable.attempt = field::Empty,
            airtable.limiter_wait_ms = field::Empty,
            airtable.retry_wait_ms = field::Empty,
        );
        let res = self.execute(&req, url).instrument(span.clone()).await;
        if res.is_err() {
            span.record("otel.status_code", "error");
        }
        res
    }

    async fn execute(
        &self,
        req: &ApiRequest<'_>,
        url: String,
    ) -> Result<(u16, bytes::Bytes), Error> {
        if self.shared.cfg.read_only && !is_read(&req.method, &req.path) {
            return Err(Error::ReadOnly {
                method: req.method.to_string(),
                path: req.path.clone(),
            });
        }
        // Build the HTTP client now if this is the first request (a failure is not retried).
        self.http()?;
        let shared = &*self.shared;
        let cfg = &shared.cfg;
        let stats = &shared.stats;
        let span = tracing::Span::current();
        // The bearer for this request and its retries (an OAuth provider refreshes here, once,
        // never while holding the limiter).
        let mut bearer = match &self.token.provider {
            Some(p) => p.bearer().await.map_err(|source| Error::Token { source })?,
            None => self.token.token.clone(),
        };
        let mut renewed = false;
        let mut attempt: u32 = 0;
        let mut limiter_total = Duration::ZERO;
        let mut retry_total = Duration::ZERO;
        loop {
            attempt += 1;
            let waited = shared.limiters.acquire(self.token.key, req.base).await;
            limiter_total += waited;
            stats
                .limiter_wait_ns
                .fetch_add(nanos(waited), Ordering::Relaxed);
            span.record("airtable.attempt", i64::from(attempt));
            span.record("airtable.limiter_wait_ms", millis(limiter_total));
            stats.requests.fetch_add(1, Ordering::Relaxed);
            if attempt > 1 {
                stats.retries.fetch_add(1, Ordering::Relaxed);
            }
            tracing::debug!(
                attempt,
                limiter_wait_ms = waited.as_millis() as u64,
                "sending"
            );

            let outcome = self.attempt(req, &url, &bearer).await;
            let retries_left = attempt <= cfg.max_retries;
            let (error, wait) = match outcome {
                Attempt::Answer {
                    status,
                    retry_after,
                    body,
                } => {
                    stats.record_status(status);
                    span.record("http.response.status_code", i64::from(status));
                    if (200..300).contains(&status) {
                        tracing::debug!(status, bytes = body.len(), "answered");
                        return Ok((status, body));
                    }
                    // A provider's token refused: once, let it renew (another process may have
                    // rotated it) and send again. A 401 applies nothing, so any request may retry.
                    if status == 401
                        && !renewed
                        && let Some(p) = &self.token.provider
                    {
                        renewed = true;
                        p.rejected(&bearer).await;
                        bearer = p.bearer().await.map_err(|source| Error::Token { source })?;
                        tracing::info!(
                            "the API refused the OAuth access token; sending again with a renewed one"
                        );
                        continue;
                    }
                    let (kind, message) = parse_error_body(status, &body);
                    tracing::debug!(status, kind = %kind, "error answer");
                    if status == 429 {
                        stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                        let wait = retry_after.unwrap_or(cfg.rate_limit_wait);
                        if let Some(base) = req.base {
                            shared.limiters.block_base(base, wait).await;
                        }
                        if !retries_left {
                            return Err(Error::RateLimited { attempts: attempt });
                        }
                        tracing::warn!(
                            attempt,
                            wait_ms = wait.as_millis() as u64,
                            "rate limited by Airtable (429); waiting before retrying"
                        );
                        (None, wait)
                    } else {
                        let err = Error::Api {
                            status,
                            kind: kind.clone(),
                            message,
                        };
                        let transient = matches!(status, 500 | 502 | 503 | 504);
                        let provably_not_applied =
                            status == 503 && kind == ApiErrorKind::RetriableError;
                        let may_retry = match req.class {
                            RetryClass::Idempotent => transient,
                            RetryClass::Create => provably_not_applied,
                        };
                        if !may_retry || !retries_left {
                            return Err(self.finish(req.class, err));
                        }
                        let wait = retry_after.unwrap_or_else(|| {
                            backoff(attempt, cfg.initial_backoff, cfg.max_backoff)
                        });
                        (Some(err), wait)
                    }
                }
                Attempt::BrokenBody { status, error } => {
                    stats.record_status(status);
                    span.record("http.response.status_code", i64::from(status));
                    if req.class == RetryClass::Create || !retries_left {
                        return Err(self.finish(req.class, error));
                    }
                    (
                        Some(error),
                        backoff(attempt, cfg.initial_backoff, cfg.max_backoff),
                    )
                }
                Attempt::Failed(err) => {
                    stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                    let connect = matches!(err, Error::Transport { connect: true, .. });
                    let may_retry = req.class == RetryClass::Idempotent || connect;
                    if !may_retry || !retries_left {
                        return Err(self.finish(req.class, err));
                    }
                    (
                        Some(err),
                        backoff(attempt, cfg.initial_backoff, cfg.max_backoff),
                    )
                }
            };
            if let Some(err) = &error {
                tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, error = %err, "transient failure; retrying");
            }
            stats
                .retry_wait_ns
                .fetch_add(nanos(wait), Ordering::Relaxed);
            retry_total += wait;
            span.record("airtable.retry_wait_ms", millis(retry_total));
            tokio::time::sleep(wait).await;
        }
    }

    /// Wrap a final failure of a create that may have been applied.
    fn finish(&self, class: RetryClass, err: Error) -> Error {
        if class == RetryClass::Create && err.may_have_been_applied() {
            Error::Ambiguous {
                source: Box::new(err),
            }
        } else {
            err
        }
    }

    async fn attempt(&self, req: &ApiRequest<'_>, url: &str, bearer: &SecretString) -> Attempt {
        let shared = &*self.shared;
        let timeout = shared.cfg.timeout;
        let http = match self.http() {
            Ok(h) => h,
            Err(e) => return Attempt::Failed(e),
        };
        let mut rb = http
            .request(req.method.clone(), url)
            .bearer_auth(bearer.expose_secret())
            .timeout(timeout);
        if let Some(body) = &req.body {
            rb = rb
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Failed(transport_error(&e, timeout)),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        match resp.bytes().await {
            Ok(body) => Attempt::Answer {
                status,
                retry_after,
                body,
            },
            Err(e) => {
                let mut error = transport_error(&e, timeout);
                if let Error::Transport { connect, .. } = &mut error {
                    *connect = false;
                }
                Attempt::BrokenBody { status, error }
            }
        }
    }
}

/// A 2xx body that does not read as expected. After a create, whether it was made is unknown.
pub(crate) fn decode_error(
    class: RetryClass,
    status: u16,
    body: &[u8],
    e: &serde_json::Error,
) -> Error {
    let err = Error::Decode {
        status,
        detail: e.to_string(),
        snippet: snippet(body),
    };
    if class == RetryClass::Create {
        Error::Ambiguous {
            source: Box::new(err),
        }
    } else {
        err
    }
}

#[cfg(test)]
mod tests {
    use super::path_template;

    #[test]
    fn path_templates_keep_no_name_or_record_id() {
        for (path, want) in [
            ("/v0/meta/whoami", "/v0/meta/whoami"),
            ("/v0/meta/bases", "/v0/meta/bases"),
            (
                "/v0/meta/bases/appLkNDICXNqxSDhG/tables",
                "/v0/meta/bases/{baseId}/tables",
            ),
            (
                "/v0/meta/bases/appLkNDICXNqxSDhG/tables/Secret%20Table/fields/fldX",
                "/v0/meta/bases/{baseId}/tables/{tableIdOrName}/fields/{fieldIdOrName}",
            ),
            (
                "/v0/appLkNDICXNqxSDhG/Secret%20Table",
                "/v0/{baseId}/{tableIdOrName}",
            ),
            (
                "/v0/appLkNDICXNqxSDhG/Secret/listRecords",
                "/v0/{baseId}/{tableIdOrName}/listRecords",
            ),
            (
                "/v0/appLkNDICXNqxSDhG/Secret/recAAAAAAAAAAAAAA",
                "/v0/{baseId}/{tableIdOrName}/{recordId}",
            ),
            (
                "/v0/appLkNDICXNqxSDhG/Secret/recA/comments/comB",
                "/v0/{baseId}/{tableIdOrName}/{recordId}/comments/{commentId}",
            ),
            (
                "/v0/appLkNDICXNqxSDhG/recA/Secret%20Field/uploadAttachment",
                "/v0/{baseId}/{recordId}/{fieldIdOrName}/uploadAttachment",
            ),
            (
                "/v0/meta/bases/appX/Secret/x/y",
                "/v0/meta/bases/{baseId}/{name}/{id}/{name}",
            ),
            ("/v1/secret", "{path}"),
        ] {
            assert_eq!(path_template(path), want, "{path}");
        }
    }
}
