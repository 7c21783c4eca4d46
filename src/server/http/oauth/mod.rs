//! `serve --http --oauth`: the server as an OAuth 2.1 protected resource (RFC 9728 metadata,
//! `WWW-Authenticate` challenges) with its own authorization server on the same origin, in
//! front of Airtable's:
//!
//! - `/.well-known/oauth-protected-resource[/mcp]` and `/.well-known/oauth-authorization-server`
//!   (RFC 8414: S256 only, DCR, revocation, `iss` in the authorization response);
//! - `/register` (RFC 7591, public clients), `/authorize` (PKCE S256, registered redirect URI,
//!   `resource` = our canonical URL; then Airtable's consent with our own PKCE and state),
//!   `/oauth/callback` (Airtable → us: exchange, store the user's grant encrypted, redirect to
//!   the client with OUR code, `state` and `iss`), `/token` (authorization code, refresh with
//!   rotation), `/revoke` (RFC 7009);
//! - [`require_oauth`] on `/mcp`: our access token (audience = our resource, not expired, not
//!   revoked, scope `mcp`) → the user's Airtable access token (refreshed single-flight per user
//!   when near expiry, the rotated grant stored before use), handed to the transport as the
//!   request's Airtable token. A user's token never serves another user.
//!
//! Our tokens are opaque random strings stored only as SHA-256 hashes ([`store`]). Clients are
//! registered (DCR) or identified by a client ID metadata document (CIMD, an https URL).

pub mod store;
pub mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Form, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use url::Url;

use super::Principal;
use store::{AirtableGrant, McpClient, Store, StoreKey, TokenKind, TokenRecord, now};
use upstream::Upstream;

/// The one scope our tokens carry (access to the MCP endpoint).
pub const MCP_SCOPE: &str = "mcp";
/// Airtable scopes asked for on each user's behalf (every scope the tools use).
pub const AIRTABLE_SCOPES: &str = "data.records:read data.records:write \
    data.recordComments:read data.recordComments:write schema.bases:read schema.bases:write \
    user.email:read webhook:manage";
/// Default lifetime of our access tokens.
pub const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(3600);
/// Lifetime of our refresh tokens (restarted by each rotation).
pub const REFRESH_TTL: Duration = Duration::from_secs(30 * 86_400);
/// How long an authorization (ours or Airtable's round trip) may take.
pub const CODE_TTL: Duration = Duration::from_secs(600);
/// A user's Airtable access token is refreshed when it has less than this left.
pub const AIRTABLE_REFRESH_MARGIN: i64 = 300;
/// Bound on authorizations in flight (older ones are dropped first).
const PENDING_MAX: usize = 10_000;

/// Errors of the OAuth layer (configuration, store, Airtable).
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error(
        "--oauth needs --public-url (the canonical https URL of the MCP endpoint, ending in /mcp) \
         unless the server listens on loopback"
    )]
    NoPublicUrl,
    #[error("--public-url {url:?}: {reason}")]
    PublicUrl { url: String, reason: &'static str },
    #[error("--oauth needs --oauth-client-id (the client ID of the server's Airtable integration)")]
    NoClientId,
    #[error("invalid URL {0:?}")]
    BadUrl(String),
    #[error(
        "{} must be standard base64 of 32 bytes",
        crate::env::AIRTABLE_MCP_OAUTH_KEY
    )]
    BadKey,
    #[error("a stored grant cannot be decrypted (another key, or the row was altered)")]
    Crypto,
    #[error("OAuth store {path}: {source}")]
    StoreFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("OAuth store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("OAuth store: {0}")]
    Json(#[from] serde_json::Error),
    /// The keyring (store key) or Airtable's token endpoint (through `auth::oauth`).
    #[error("{0}")]
    Auth(#[from] crate::auth::AuthError),
    #[error("URL: {0}")]
    Url(#[from] url::ParseError),
    #[error("form encoding: {0}")]
    Form(#[from] serde_urlencoded::ser::Error),
    #[error("Airtable's OAuth endpoint: {0}")]
    Http(#[from] reqwest::Error),
    #[error("Airtable's OAuth endpoint answered {status}: {error}")]
    Upstream { status: u16, error: String },
    #[error("no Airtable grant is stored for this user: sign in again")]
    NoGrant,
}

/// Options of `--oauth`.
#[derive(Clone, Debug)]
pub struct OAuthOptions {
    /// Canonical MCP URL (`https://host/mcp`); `None` = `http://<bound address>/mcp` (loopback only).
    pub public_url: Option<Url>,
    /// The server's Airtable integration.
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    /// Origin of Airtable's OAuth endpoints; `None` = `https://airtable.com`, or the API URL when
    /// it is not the default.
    pub oauth_url: Option<Url>,
    /// Airtable API (for whoami).
    pub api_url: Url,
    pub store: PathBuf,
    /// `None` = `AIRTABLE_MCP_OAUTH_KEY`, else the keyring.
    pub key: Option<StoreKey>,
    pub access_ttl: Duration,
    /// Tests only: accept `http://` client ID metadata documents on loopback (never from the CLI).
    pub cimd_allow_http_loopback: bool,
}

impl OAuthOptions {
    /// From the flags (`loopback`: whether the listen address is loopback).
    pub fn from_args(a: &crate::cli::OAuthServeArgs, loopback: bool) -> Result<Self, OAuthError> {
        let public_url = match &a.public_url {
            Some(u) => Some(check_public_url(u)?),
            None if loopback => None,
            None => return Err(OAuthError::NoPublicUrl),
        };
        let client_id = a
            .oauth_client_id
            .clone()
            .filter(|s| !s.trim().is_empty())
            .ok_or(OAuthError::NoClientId)?;
        let client_secret = std::env::var(crate::env::AIRTABLE_MCP_OAUTH_CLIENT_SECRET)
            .ok()
            .filter(|s| !s.is_empty())
            .map(SecretString::from);
        let oauth_url = match &a.oauth_url {
            Some(u) => Some(Url::parse(u).map_err(|_| OAuthError::BadUrl(u.clone()))?),
            None => None,
        };
        let store = match &a.oauth_store {
            Some(p) => p.clone(),
            None => dirs::data_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("airtable-mcp")
                .join("oauth.sqlite3"),
        };
        Ok(Self {
            public_url,
            client_id,
            client_secret,
            oauth_url,
            api_url: Url::parse("https://api.airtable.com/")?,
            store,
            key: None,
            access_ttl: a
                .oauth_token_ttl
                .map_or(DEFAULT_ACCESS_TTL, |s| Duration::from_secs(s.max(1))),
            cimd_allow_http_loopback: false,
        })
    }
}

/// The canonical resource URL: http(s), no query or fragment, path `/mcp`.
fn check_public_url(u: &str) -> Result<Url, OAuthError> {
    let bad = |reason| OAuthError::PublicUrl {
        url: u.to_owned(),
        reason,
    };
    let url = Url::parse(u).map_err(|_| bad("not a URL"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad("must be https (http only for loopback)"));
    }
    if url.scheme() == "http" && !is_loopback_host(&url) {
        return Err(bad("plain http is only allowed for a loopback host"));
    }
    if url.query().is_some() || url.fragment().is_some() || url.path() != "/mcp" {
        return Err(bad(
            "must be the MCP endpoint itself (path /mcp, no query or fragment)",
        ));
    }
    Ok(url)
}

/// A globally routable address (not loopback, private, link-local, CGNAT, unique-local, …).
fn is_public_ip(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || o[0] >= 224)
        }
        std::net::IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_ip(std::net::IpAddr::V4(v4));
            }
            let seg = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80)
        }
    }
}

fn is_loopback_host(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

struct Pending {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    challenge: String,
    scope: String,
    resource: String,
    verifier: String,
    created: Instant,
}

struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    scope: String,
    resource: String,
    user_id: String,
    expires: Instant,
}

/// The authorization server and the resource check.
pub struct OAuthState {
    issuer: String,
    resource: String,
    store: Store,
    upstream: Upstream,
    access_ttl: Duration,
    cimd_allow_http_loopback: bool,
    /// Authorizations waiting for Airtable, by the state we sent Airtable.
    pending: Mutex<HashMap<String, Pending>>,
    /// Our authorization codes, by hash.
    codes: Mutex<HashMap<Vec<u8>, IssuedCode>>,
    /// One Airtable refresh at a time per user.
    refresh_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for OAuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthState")
            .field("issuer", &self.issuer)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

impl OAuthState {
    /// Open the store and fix the URLs (`local` = the bound address, for the loopback default).
    pub fn new(opts: &OAuthOptions, local: SocketAddr) -> Result<Arc<Self>, OAuthError> {
        let resource = match &opts.public_url {
            Some(u) => u.clone(),
            None => Url::parse(&format!("http://{local}/mcp"))?,
        };
        let issuer = resource.origin().ascii_serialization();
        let key = match &opts.key {
            Some(k) => k.clone(),
            None => StoreKey::resolve()?,
        };
        let store = Store::open(&opts.store, &key)?;
        let oauth_url = crate::auth::oauth::oauth_origin(
            opts.oauth_url.as_ref().map(Url::as_str),
            &opts.api_url,
        )?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Arc::new(Self {
            issuer,
            resource: resource.to_string(),
            store,
            upstream: Upstream {
                oauth_url: with_slash(oauth_url),
                api_url: with_slash(opts.api_url.clone()),
                client_id: opts.client_id.clone(),
                client_secret: opts.client_secret.clone(),
                scopes: AIRTABLE_SCOPES.to_owned(),
                http,
            },
            access_ttl: opts.access_ttl,
            cimd_allow_http_loopback: opts.cimd_allow_http_loopback,
            pending: Mutex::default(),
            codes: Mutex::default(),
            refresh_locks: Mutex::default(),
        }))
    }

    /// The issuer (our origin, no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The canonical resource (the MCP URL).
    pub fn resource(&self) -> &str {
        &self.resource
    }

    fn prm_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.issuer)
    }

    fn callback_url(&self) -> String {
        format!("{}/oauth/callback", self.issuer)
    }

    /// The routes of the authorization server and the metadata documents.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/.well-known/oauth-protected-resource", get(prm))
            .route("/.well-known/oauth-protected-resource/mcp", get(prm))
            .route("/.well-known/oauth-authorization-server", get(as_metadata))
            .route("/register", post(register))
            .route("/authorize", get(authorize))
            .route("/oauth/callback", get(callback))
            .route("/token", post(token))
            .route("/revoke", post(revoke))
            .with_state(self.clone())
    }

    /// A client ID metadata document (CIMD): `client_id` is an https URL with a path; the JSON
    /// there must name the same `client_id` and list its `redirect_uris`. The host must resolve
    /// to a public address (pinned for the fetch: no rebinding to an internal one), no
    /// redirects, 5 s, 64 KiB. Public clients only (`token_endpoint_auth_method` none).
    async fn fetch_client_metadata(&self, client_id: &str) -> Result<McpClient, &'static str> {
        const MAX: usize = 64 * 1024;
        let url = Url::parse(client_id).map_err(|_| "client_id is not a URL")?;
        let loopback_ok = self.cimd_allow_http_loopback && is_loopback_host(&url);
        if !(url.scheme() == "https" || (url.scheme() == "http" && loopback_ok)) {
            return Err("a client ID metadata document must be served over https");
        }
        if url.path() == "/" || url.fragment().is_some() || !url.username().is_empty() {
            return Err("a client_id URL needs a path and no fragment or credentials");
        }
        let host = url
            .host_str()
            .ok_or("client_id URL has no host")?
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|_| "cannot resolve the client_id host")?
            .next()
            .ok_or("cannot resolve the client_id host")?;
        if !(loopback_ok || is_public_ip(addr.ip())) {
            return Err("the client_id host resolves to a non-public address");
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&host, addr)
            .build()
            .map_err(|_| "cannot fetch the client ID metadata document")?;
        let res = http
            .get(url.clone())
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|_| "cannot fetch the client ID metadata document")?;
        if !res.status().is_success() {
            return Err("the client ID metadata document could not be fetched");
        }
        if res.content_length().is_some_and(|n| n > MAX as u64) {
            return Err("the client ID metadata document is too large");
        }
        let body = res
            .bytes()
            .await
            .map_err(|_| "cannot fetch the client ID metadata document")?;
        if body.len() > MAX {
            return Err("the client ID metadata document is too large");
        }
        let doc: Value = serde_json::from_slice(&body)
            .map_err(|_| "the client ID metadata document is not JSON")?;
        if doc.get("client_id").and_then(Value::as_str) != Some(client_id) {
            return Err("the document's client_id differs from its URL");
        }
        if doc
            .get("token_endpoint_auth_method")
            .and_then(Value::as_str)
            .is_some_and(|m| m != "none")
        {
            return Err("only public clients (token_endpoint_auth_method none) are supported");
        }
        let uris: Vec<String> = doc
            .get("redirect_uris")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if uris.is_empty() || uris.len() > 10 || !uris.iter().all(|u| redirect_uri_ok(u)) {
            return Err("the document's redirect_uris are missing or not allowed");
        }
        Ok(McpClient {
            client_id: client_id.to_owned(),
            client_name: doc
                .get("client_name")
                .and_then(Value::as_str)
                .map(|s| s.chars().take(200).collect()),
            redirect_uris: uris,
        })
    }

    /// Issue an access + refresh token pair of `family`.
    fn issue(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        family: &str,
    ) -> Result<Value, OAuthError> {
        let access = random_token("atmcp_at_");
        let refresh = random_token("atmcp_rt_");
        let base = TokenRecord {
            kind: TokenKind::Access,
            user_id: user_id.to_owned(),
            client_id: client_id.to_owned(),
            scope: scope.to_owned(),
            resource: self.resource.clone(),
            expires: now() + self.access_ttl.as_secs() as i64,
            revoked: false,
            family: family.to_owned(),
        };
        self.store.put_token(&access, &base)?;
        self.store.put_token(
            &refresh,
            &TokenRecord {
                kind: TokenKind::Refresh,
                expires: now() + REFRESH_TTL.as_secs() as i64,
                ..base
            },
        )?;
        Ok(json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_ttl.as_secs(),
            "refresh_token": refresh,
            "scope": scope,
        }))
    }

    /// Check one of our access tokens for this resource: `Ok(record)`, or the reason it is refused.
    pub fn check_access(&self, token: &str) -> Result<TokenRecord, Refusal> {
        let rec = match self.store.token(token) {
            Ok(Some(r)) => r,
            Ok(None) => return Err(Refusal::InvalidToken),
            Err(e) => {
                tracing::error!(error = %e, "OAuth store lookup failed");
                return Err(Refusal::InvalidToken);
            }
        };
        if rec.kind != TokenKind::Access
            || rec.revoked
            || rec.expires <= now()
            || rec.resource != self.resource
        {
            return Err(Refusal::InvalidToken);
        }
        if !rec.scope.split(' ').any(|s| s == MCP_SCOPE) {
            return Err(Refusal::InsufficientScope);
        }
        Ok(rec)
    }

    /// The user's current Airtable access token, refreshed (single-flight per user, rotation
    /// stored before use) when it has less than [`AIRTABLE_REFRESH_MARGIN`] left.
    pub async fn airtable_token(&self, user_id: &str) -> Result<SecretString, OAuthError> {
        let fresh = |g: &AirtableGrant| g.access_expires - now() > AIRTABLE_REFRESH_MARGIN;
        let g = self.store.grant(user_id)?.ok_or(OAuthError::NoGrant)?;
        if fresh(&g) {
            return Ok(SecretString::from(g.access_token));
        }
        let lock = self
            .refresh_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(user_id.to_owned())
            .or_default()
            .clone();
        let _one = lock.lock().await;
        // Another request may have refreshed while this one waited.
        let g = self.store.grant(user_id)?.ok_or(OAuthError::NoGrant)?;
        if fresh(&g) {
            return Ok(SecretString::from(g.access_token));
        }
        let Some(rt) = g.refresh_token.clone() else {
            return Err(OAuthError::NoGrant);
        };
        match self.upstream.refresh(&rt).await {
            Ok(mut new) => {
                if new.refresh_token.is_none() {
                    new.refresh_token = Some(rt);
                }
                self.store.put_grant(user_id, &new)?;
                tracing::info!(user = user_id, "refreshed the user's Airtable grant");
                Ok(SecretString::from(new.access_token))
            }
            Err(e) => {
                if matches!(&e, OAuthError::Auth(crate::auth::AuthError::OAuthRefused { error, .. }) if error == "invalid_grant")
                {
                    self.store.delete_grant(user_id)?;
                }
                Err(e)
            }
        }
    }
}

/// `/readyz` in OAuth mode without a server token: the Airtable API answers (any HTTP status,
/// e.g. 401 to a token-less whoami).
pub fn api_reachable(api_url: Url) -> super::ReadinessCheck {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .ok();
    Arc::new(move || {
        let http = http.clone();
        let url = with_slash(api_url.clone()).join("v0/meta/whoami");
        Box::pin(async move {
            let (Some(http), Ok(url)) = (http, url) else {
                return Err("cannot build the readiness check".to_owned());
            };
            match http.get(url).send().await {
                Ok(_) => Ok("the Airtable API answers (users sign in with OAuth)".to_owned()),
                Err(e) => Err(format!("the Airtable API cannot be reached: {e}")),
            }
        })
    })
}

/// Why [`OAuthState::check_access`] refused a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    InvalidToken,
    InsufficientScope,
}

fn with_slash(mut u: Url) -> Url {
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u
}

/// An opaque token: `prefix` + 32 random bytes, base64url.
fn random_token(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// PKCE S256: base64url(sha256(verifier)), no padding (`auth login --oauth`'s).
pub fn s256(verifier: &str) -> String {
    crate::auth::oauth::pkce_challenge(verifier)
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    no_store(
        (
            status,
            Json(json!({"error": error, "error_description": description})),
        )
            .into_response(),
    )
}

fn server_error(e: &OAuthError) -> Response {
    tracing::error!(error = %e, "OAuth request failed");
    oauth_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "the authorization server failed; see its log",
    )
}

/// The 401/403 challenge of the MCP endpoint.
pub fn challenge(st: &OAuthState, refusal: Option<Refusal>) -> Response {
    let (status, extra, text) = match refusal {
        None => (
            StatusCode::UNAUTHORIZED,
            String::new(),
            "Unauthorized: sign in (OAuth) first\n",
        ),
        Some(Refusal::InvalidToken) => (
            StatusCode::UNAUTHORIZED,
            r#", error="invalid_token""#.to_owned(),
            "Unauthorized: the access token is invalid, expired or revoked\n",
        ),
        Some(Refusal::InsufficientScope) => (
            StatusCode::FORBIDDEN,
            r#", error="insufficient_scope""#.to_owned(),
            "Forbidden: the access token lacks the mcp scope\n",
        ),
    };
    let value = format!(
        r#"Bearer resource_metadata="{}", scope="{MCP_SCOPE}"{extra}"#,
        st.prm_url()
    );
    let mut res = (status, text).into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

/// The challenge, after reading the request body (bounded): a connection whose request body
/// was left unread is closed, and a client that already queued its next request (the OAuth
/// discovery that follows a 401) on it would see "server disconnected".
async fn refuse(st: &OAuthState, refusal: Option<Refusal>, req: Request) -> Response {
    let _ = axum::body::to_bytes(req.into_body(), super::DEFAULT_BODY_LIMIT).await;
    challenge(st, refusal)
}

/// Middleware on the MCP routes in OAuth mode: our access token → the user's Airtable token
/// (as the request's Airtable token) and a [`Principal`] `oauth:<user id>`. Anything the client
/// sent as `X-Airtable-Token` is dropped: only the user's own grant is ever used.
pub async fn require_oauth(
    State(st): State<Arc<OAuthState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_owned())
        })
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return refuse(&st, None, req).await;
    };
    let rec = match st.check_access(&token) {
        Ok(r) => r,
        Err(refusal) => return refuse(&st, Some(refusal), req).await,
    };
    let airtable = match st.airtable_token(&rec.user_id).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(user = %rec.user_id, error = %e, "no usable Airtable grant for this user");
            return refuse(&st, Some(Refusal::InvalidToken), req).await;
        }
    };
    let headers = req.headers_mut();
    headers.remove(header::AUTHORIZATION);
    headers.remove(super::AIRTABLE_TOKEN_HEADER);
    match HeaderValue::from_str(airtable.expose_secret()) {
        Ok(mut v) => {
            v.set_sensitive(true);
            headers.insert(super::AIRTABLE_TOKEN_HEADER, v);
        }
        Err(_) => return challenge(&st, Some(Refusal::InvalidToken)),
    }
    req.extensions_mut()
        .insert(Principal(format!("oauth:{}", rec.user_id)));
    next.run(req).await
}

async fn prm(State(st): State<Arc<OAuthState>>) -> Response {
    Json(json!({
        "resource": st.resource,
        "authorization_servers": [st.issuer],
        "scopes_supported": [MCP_SCOPE],
        "bearer_methods_supported": ["header"],
        "resource_name": "airtable-mcp",
    }))
    .into_response()
}

async fn as_metadata(State(st): State<Arc<OAuthState>>) -> Response {
    let i = &st.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "registration_endpoint": format!("{i}/register"),
        "revocation_endpoint": format!("{i}/revoke"),
        "scopes_supported": [MCP_SCOPE],
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
    }))
    .into_response()
}

/// A redirect URI a client may register: https, or http on a loopback host; no fragment.
fn redirect_uri_ok(u: &str) -> bool {
    Url::parse(u).is_ok_and(|url| {
        url.fragment().is_none()
            && (url.scheme() == "https" || (url.scheme() == "http" && is_loopback_host(&url)))
    })
}

async fn register(State(st): State<Arc<OAuthState>>, body: axum::body::Bytes) -> Response {
    let Ok(Value::Object(mut meta)) = serde_json::from_slice::<Value>(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "the body must be a JSON object",
        );
    };
    let uris: Vec<String> = match meta.get("redirect_uris") {
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    if uris.is_empty() || uris.len() > 10 || !uris.iter().all(|u| redirect_uri_ok(u)) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "redirect_uris: 1 to 10 https URLs (http only on a loopback host), no fragment",
        );
    }
    if let Some(Value::String(scope)) = meta.get("scope")
        && scope.split(' ').any(|s| !s.is_empty() && s != MCP_SCOPE)
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "scope: the only scope is mcp",
        );
    }
    let client = McpClient {
        client_id: format!("mcpc_{}", uuid::Uuid::new_v4().simple()),
        client_name: meta
            .get("client_name")
            .and_then(|v| v.as_str())
            .map(|s| s.chars().take(200).collect()),
        redirect_uris: uris,
    };
    if let Err(e) = st.store.add_client(&client) {
        return server_error(&e);
    }
    tracing::info!(client_id = %client.client_id, name = ?client.client_name, "registered an MCP client");
    meta.insert("client_id".into(), json!(client.client_id));
    meta.insert("client_id_issued_at".into(), json!(now()));
    meta.insert("token_endpoint_auth_method".into(), json!("none"));
    meta.insert(
        "grant_types".into(),
        json!(["authorization_code", "refresh_token"]),
    );
    meta.insert("response_types".into(), json!(["code"]));
    meta.remove("client_secret");
    no_store((StatusCode::CREATED, Json(Value::Object(meta))).into_response())
}

/// Redirect to the client's `redirect_uri` with `params`, `state` and `iss`.
fn back_to_client(
    st: &OAuthState,
    redirect_uri: &str,
    state: Option<&str>,
    params: &[(&str, &str)],
) -> Response {
    let Ok(mut u) = Url::parse(redirect_uri) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "bad redirect_uri",
        );
    };
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", &st.issuer);
    }
    no_store(Redirect::to(u.as_str()).into_response())
}

fn same_resource(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

async fn authorize(
    State(st): State<Arc<OAuthState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    // Until the client and its redirect URI are known, errors are shown, never redirected.
    let Some(client_id) = get("client_id") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id is required",
        );
    };
    let client = if client_id.starts_with("https://") || client_id.starts_with("http://") {
        match st.fetch_client_metadata(client_id).await {
            Ok(c) => c,
            Err(why) => {
                tracing::info!(
                    client_id,
                    reason = why,
                    "refused a client ID metadata document"
                );
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_client", why);
            }
        }
    } else {
        match st.store.client(client_id) {
            Ok(Some(c)) => c,
            Ok(None) => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_client",
                    "unknown client_id",
                );
            }
            Err(e) => return server_error(&e),
        }
    };
    let redirect_uri = match get("redirect_uri") {
        Some(u) if client.redirect_uris.iter().any(|r| r == u) => u.to_owned(),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "redirect_uri is not registered for this client",
            );
        }
    };
    let state = get("state");
    let fail = |error: &str, desc: &str| {
        back_to_client(
            &st,
            &redirect_uri,
            state,
            &[("error", error), ("error_description", desc)],
        )
    };
    if get("response_type") != Some("code") {
        return fail("unsupported_response_type", "response_type must be code");
    }
    let Some(challenge) = get("code_challenge") else {
        return fail(
            "invalid_request",
            "PKCE is required: code_challenge with S256",
        );
    };
    if get("code_challenge_method") != Some("S256") || challenge.len() != 43 {
        return fail("invalid_request", "code_challenge_method must be S256");
    }
    let resource = get("resource").unwrap_or(&st.resource).to_owned();
    if !same_resource(&resource, &st.resource) {
        return fail("invalid_target", "resource is not this server's MCP URL");
    }
    let scope = get("scope").unwrap_or(MCP_SCOPE);
    if scope.split(' ').any(|s| !s.is_empty() && s != MCP_SCOPE) {
        return fail("invalid_scope", "the only scope is mcp");
    }
    let verifier = random_token("");
    let up_state = random_token("");
    let url = match st.upstream.authorize_url(
        &st.callback_url(),
        &up_state,
        &s256(&verifier),
        get("login_hint"),
    ) {
        Ok(u) => u,
        Err(e) => return server_error(&e),
    };
    {
        let mut pending = st.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.retain(|_, p| p.created.elapsed() < CODE_TTL);
        if pending.len() >= PENDING_MAX {
            return fail("temporarily_unavailable", "too many sign-ins in progress");
        }
        pending.insert(
            up_state,
            Pending {
                client_id: client.client_id,
                redirect_uri: redirect_uri.clone(),
                state: state.map(str::to_owned),
                challenge: challenge.to_owned(),
                scope: MCP_SCOPE.to_owned(),
                resource,
                verifier,
                created: Instant::now(),
            },
        );
    }
    no_store(Redirect::to(url.as_str()).into_response())
}

async fn callback(
    State(st): State<Arc<OAuthState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let pending = q.get("state").and_then(|s| {
        st.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(s)
    });
    let Some(p) = pending.filter(|p| p.created.elapsed() < CODE_TTL) else {
        return (
            StatusCode::BAD_REQUEST,
            "Unknown or expired sign-in: start again from your MCP client\n",
        )
            .into_response();
    };
    let state = p.state.as_deref();
    if let Some(err) = q.get("error") {
        tracing::info!(error = %err, "Airtable refused the authorization");
        let error = if err == "access_denied" {
            "access_denied"
        } else {
            "server_error"
        };
        return back_to_client(
            &st,
            &p.redirect_uri,
            state,
            &[
                ("error", error),
                ("error_description", "Airtable did not authorize"),
            ],
        );
    }
    let Some(code) = q.get("code") else {
        return back_to_client(
            &st,
            &p.redirect_uri,
            state,
            &[
                ("error", "server_error"),
                ("error_description", "Airtable sent no code"),
            ],
        );
    };
    let grant = match st
        .upstream
        .exchange(code, &st.callback_url(), &p.verifier)
        .await
    {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(error = %e, "Airtable code exchange failed");
            return back_to_client(
                &st,
                &p.redirect_uri,
                state,
                &[
                    ("error", "server_error"),
                    ("error_description", "the Airtable code exchange failed"),
                ],
            );
        }
    };
    let user_id = match st.upstream.whoami(&grant.access_token).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "whoami with the new Airtable grant failed");
            return back_to_client(
                &st,
                &p.redirect_uri,
                state,
                &[
                    ("error", "server_error"),
                    ("error_description", "cannot identify the Airtable user"),
                ],
            );
        }
    };
    if let Err(e) = st.store.put_grant(&user_id, &grant) {
        return server_error(&e);
    }
    let code = random_token("atmcp_code_");
    let mut codes = st.codes.lock().unwrap_or_else(PoisonError::into_inner);
    codes.retain(|_, c| c.expires > Instant::now());
    codes.insert(
        store::token_hash(&code),
        IssuedCode {
            client_id: p.client_id,
            redirect_uri: p.redirect_uri.clone(),
            challenge: p.challenge,
            scope: p.scope,
            resource: p.resource,
            user_id: user_id.clone(),
            expires: Instant::now() + CODE_TTL,
        },
    );
    drop(codes);
    tracing::info!(user = %user_id, "a user signed in with Airtable");
    back_to_client(&st, &p.redirect_uri, state, &[("code", &code)])
}

async fn token(
    State(st): State<Arc<OAuthState>>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| f.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let bad = |e: &str, d: &str| oauth_error(StatusCode::BAD_REQUEST, e, d);
    if let Some(r) = get("resource")
        && !same_resource(r, &st.resource)
    {
        return bad("invalid_target", "resource is not this server's MCP URL");
    }
    match get("grant_type") {
        Some("authorization_code") => {
            let (Some(code), Some(verifier), Some(client_id)) =
                (get("code"), get("code_verifier"), get("client_id"))
            else {
                return bad(
                    "invalid_request",
                    "code, code_verifier and client_id are required",
                );
            };
            // Single use: removed whatever the outcome.
            let issued = st
                .codes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&store::token_hash(code));
            let Some(c) = issued.filter(|c| c.expires > Instant::now()) else {
                return bad("invalid_grant", "unknown, used or expired code");
            };
            let verifier_ok: bool =
                subtle::ConstantTimeEq::ct_eq(s256(verifier).as_bytes(), c.challenge.as_bytes())
                    .into();
            if c.client_id != client_id
                || get("redirect_uri").is_some_and(|u| u != c.redirect_uri)
                || !verifier_ok
                || !same_resource(&c.resource, &st.resource)
            {
                return bad(
                    "invalid_grant",
                    "the code does not match the client, redirect_uri or code_verifier",
                );
            }
            if let Err(e) = st.store.purge_expired() {
                tracing::warn!(error = %e, "cannot purge expired OAuth tokens");
            }
            let family = random_token("");
            match st.issue(&c.user_id, client_id, &c.scope, &family) {
                Ok(v) => no_store(Json(v).into_response()),
                Err(e) => server_error(&e),
            }
        }
        Some("refresh_token") => {
            let (Some(rt), Some(client_id)) = (get("refresh_token"), get("client_id")) else {
                return bad(
                    "invalid_request",
                    "refresh_token and client_id are required",
                );
            };
            let rec = match st.store.token(rt) {
                Ok(Some(r)) if r.kind == TokenKind::Refresh && r.client_id == client_id => r,
                Ok(_) => return bad("invalid_grant", "unknown refresh token"),
                Err(e) => return server_error(&e),
            };
            if rec.revoked {
                // A rotated token used again: someone else may hold the chain; end it.
                tracing::warn!(user = %rec.user_id, "a used refresh token came back: revoking its grant");
                if let Err(e) = st.store.revoke_family(&rec.family) {
                    return server_error(&e);
                }
                return bad("invalid_grant", "refresh token already used or revoked");
            }
            if rec.expires <= now() {
                return bad("invalid_grant", "refresh token expired");
            }
            if let Some(s) = get("scope")
                && s.split(' ')
                    .any(|x| !x.is_empty() && !rec.scope.split(' ').any(|y| y == x))
            {
                return bad("invalid_scope", "scope exceeds the grant");
            }
            if let Err(e) = st.store.revoke_token(rt) {
                return server_error(&e);
            }
            match st.issue(&rec.user_id, client_id, &rec.scope, &rec.family) {
                Ok(v) => no_store(Json(v).into_response()),
                Err(e) => server_error(&e),
            }
        }
        _ => bad(
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        ),
    }
}

async fn revoke(
    State(st): State<Arc<OAuthState>>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let Some(t) = f.get("token").filter(|t| !t.is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        );
    };
    match st.store.token(t) {
        Ok(Some(rec)) if f.get("client_id").is_none_or(|c| *c == rec.client_id) => {
            let done = if rec.kind == TokenKind::Refresh {
                st.store.revoke_family(&rec.family)
            } else {
                st.store.revoke_token(t).map(|_| ())
            };
            if let Err(e) = done {
                return server_error(&e);
            }
        }
        Ok(_) => {}
        Err(e) => return server_error(&e),
    }
    // RFC 7009: 200 whether or not the token was known.
    no_store(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    const VERIFIER: &str = "dBjftJeZ4CVP-mJ92IXvwxVVA4XaBJrsqgGdzLcvAA0";

    fn state(dir: &tempfile::TempDir) -> Arc<OAuthState> {
        let opts = OAuthOptions {
            public_url: None,
            client_id: "sandbox-client".into(),
            client_secret: None,
            oauth_url: None,
            api_url: Url::parse("http://127.0.0.1:1/").unwrap(),
            store: dir.path().join("oauth.sqlite3"),
            key: Some(StoreKey::for_tests(9)),
            access_ttl: DEFAULT_ACCESS_TTL,
            cimd_allow_http_loopback: true,
        };
        OAuthState::new(&opts, "127.0.0.1:4567".parse().unwrap()).unwrap()
    }

    async fn send(
        st: &Arc<OAuthState>,
        req: axum::http::Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let res = st.router().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn get(uri: &str) -> axum::http::Request<Body> {
        axum::http::Request::get(uri).body(Body::empty()).unwrap()
    }

    fn form(uri: &str, body: &[(&str, &str)]) -> axum::http::Request<Body> {
        axum::http::Request::post(uri)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(serde_urlencoded::to_string(body).unwrap()))
            .unwrap()
    }

    fn register_client(st: &OAuthState) -> String {
        let c = McpClient {
            client_id: "mcpc_test".into(),
            client_name: None,
            redirect_uris: vec!["http://127.0.0.1:9/cb".into()],
        };
        st.store.add_client(&c).unwrap();
        c.client_id
    }

    #[test]
    fn pkce_s256_matches_an_independent_implementation() {
        // Python: base64.urlsafe_b64encode(hashlib.sha256(v).digest()).rstrip(b"=")
        assert_eq!(
            s256(VERIFIER),
            "GMB7Ls36zPNCT9t4whWbvXDwDuPC-ugX7NdPTK_2PQc"
        );
        assert_eq!(s256(VERIFIER).len(), 43);
    }

    #[test]
    fn public_urls_are_checked() {
        assert!(check_public_url("https://mcp.example.com/mcp").is_ok());
        assert!(check_public_url("http://127.0.0.1:8787/mcp").is_ok());
        for bad in [
            "http://mcp.example.com/mcp",
            "https://mcp.example.com/",
            "https://mcp.example.com/mcp?x=1",
            "https://mcp.example.com/mcp#f",
            "ftp://mcp.example.com/mcp",
        ] {
            assert!(check_public_url(bad).is_err(), "{bad}");
        }
        let args = crate::cli::OAuthServeArgs {
            oauth: true,
            oauth_client_id: Some("c".into()),
            ..Default::default()
        };
        assert!(matches!(
            OAuthOptions::from_args(&args, false),
            Err(OAuthError::NoPublicUrl)
        ));
        assert!(OAuthOptions::from_args(&args, true).is_ok());
        let no_id = crate::cli::OAuthServeArgs {
            oauth: true,
            ..Default::default()
        };
        assert!(matches!(
            OAuthOptions::from_args(&no_id, true),
            Err(OAuthError::NoClientId)
        ));
    }

    #[tokio::test]
    async fn metadata_documents_have_the_required_shape() {
        let dir = tempfile::tempdir().unwrap();
        let st = state(&dir);
        let issuer = "http://127.0.0.1:4567";
        for path in [
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
        ] {
            let (s, _, prm) = send(&st, get(path)).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(prm["resource"], format!("{issuer}/mcp"));
            assert_eq!(prm["authorization_servers"], json!([issuer]));
        }
        let (_, _, m) = send(&st, get("/.well-known/oauth-authorization-server")).await;
        assert_eq!(m["issuer"], issuer);
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(m["registration_endpoint"], format!("{issuer}/register"));
        assert_eq!(m["revocation_endpoint"], format!("{issuer}/revoke"));
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
        assert_eq!(m["client_id_metadata_document_supported"], true);
        let res = challenge(&st, None);
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers()[header::WWW_AUTHENTICATE],
            format!(
                r#"Bearer resource_metadata="{issuer}/.well-known/oauth-protected-resource/mcp", scope="mcp""#
            )
        );
        let res = challenge(&st, Some(Refusal::InsufficientScope));
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(
            res.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains(r#"error="insufficient_scope""#)
        );
    }

    #[tokio::test]
    async fn registration_validates_redirect_uris() {
        let dir = tempfile::tempdir().unwrap();
        let st = state(&dir);
        let post = |body: Value| {
            axum::http::Request::post("/register")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap()
        };
        let (s, _, v) = send(
            &st,
            post(json!({"redirect_uris": ["http://evil.example/cb"]})),
        )
        .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_redirect_uri"))
        );
        let (s, _, v) = send(&st, post(json!({"redirect_uris": []}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, _, v) = send(
            &st,
            post(
                json!({"redirect_uris": ["http://localhost:3000/cb"], "client_name": "x",
                        "token_endpoint_auth_method": "client_secret_post"}),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(v["token_endpoint_auth_method"], "none");
        let id = v["client_id"].as_str().unwrap();
        assert_eq!(
            st.store.client(id).unwrap().unwrap().redirect_uris,
            vec!["http://localhost:3000/cb"]
        );
    }

    #[tokio::test]
    async fn authorize_validates_before_going_to_airtable() {
        let dir = tempfile::tempdir().unwrap();
        let st = state(&dir);
        let client = register_client(&st);
        let ch = s256(VERIFIER);
        let q = |extra: &[(&str, &str)]| {
            let mut p = vec![
                ("client_id", client.as_str()),
                ("redirect_uri", "http://127.0.0.1:9/cb"),
                ("response_type", "code"),
                ("state", "st1"),
                ("code_challenge", ch.as_str()),
                ("code_challenge_method", "S256"),
                ("resource", "http://127.0.0.1:4567/mcp"),
            ];
            for (k, v) in extra {
                p.retain(|(pk, _)| pk != k);
                if !v.is_empty() {
                    p.push((k, v));
                }
            }
            format!("/authorize?{}", serde_urlencoded::to_string(&p).unwrap())
        };
        // Unregistered redirect URI: shown, never redirected.
        let (s, h, _) = send(
            &st,
            get(&q(&[("redirect_uri", "http://127.0.0.1:9/other")])),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(h.get(header::LOCATION).is_none());
        let loc = |h: &axum::http::HeaderMap| h[header::LOCATION].to_str().unwrap().to_owned();
        for (extra, error) in [
            (vec![("code_challenge_method", "plain")], "invalid_request"),
            (vec![("code_challenge", "")], "invalid_request"),
            (
                vec![("resource", "https://other.example/mcp")],
                "invalid_target",
            ),
            (vec![("scope", "admin")], "invalid_scope"),
        ] {
            let (s, h, _) = send(&st, get(&q(&extra))).await;
            assert_eq!(s, StatusCode::SEE_OTHER, "{extra:?}");
            let l = loc(&h);
            assert!(l.starts_with("http://127.0.0.1:9/cb?"), "{l}");
            assert!(l.contains(&format!("error={error}")), "{l}");
            assert!(l.contains("state=st1") && l.contains("iss=http"), "{l}");
        }
        // A valid request goes to Airtable with our own PKCE and state, login_hint passed on.
        let (s, h, _) = send(&st, get(&q(&[("login_hint", "second@example.com")]))).await;
        assert_eq!(s, StatusCode::SEE_OTHER);
        let up = Url::parse(&loc(&h)).unwrap();
        assert_eq!(up.path(), "/oauth2/v1/authorize");
        let qp: HashMap<_, _> = up.query_pairs().into_owned().collect();
        assert_eq!(qp["client_id"], "sandbox-client");
        assert_eq!(qp["redirect_uri"], "http://127.0.0.1:4567/oauth/callback");
        assert_eq!(qp["code_challenge_method"], "S256");
        assert_ne!(qp["code_challenge"], ch, "our own PKCE towards Airtable");
        assert_ne!(qp["state"], "st1");
        assert_eq!(qp["login_hint"], "second@example.com");
    }

    fn put_code(st: &OAuthState, code: &str, client: &str, user: &str) {
        st.codes.lock().unwrap().insert(
            store::token_hash(code),
            IssuedCode {
                client_id: client.into(),
                redirect_uri: "http://127.0.0.1:9/cb".into(),
                challenge: s256(VERIFIER),
                scope: MCP_SCOPE.into(),
                resource: st.resource.clone(),
                user_id: user.into(),
                expires: Instant::now() + CODE_TTL,
            },
        );
    }

    #[tokio::test]
    async fn token_endpoint_checks_pkce_single_use_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let st = state(&dir);
        let client = register_client(&st);
        let exchange = |code: &'static str, verifier: &'static str| {
            form(
                "/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("code_verifier", verifier),
                    ("client_id", "mcpc_test"),
                    ("redirect_uri", "http://127.0.0.1:9/cb"),
                    ("resource", "http://127.0.0.1:4567/mcp"),
                ],
            )
        };
        put_code(&st, "code-1", &client, "usrA");
        let wrong = "x".repeat(43).leak();
        let (s, _, v) = send(&st, exchange("code-1", wrong)).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
        // The failed attempt used the code up.
        let (s, _, _) = send(&st, exchange("code-1", VERIFIER)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        put_code(&st, "code-2", &client, "usrA");
        let (s, h, v) = send(&st, exchange("code-2", VERIFIER)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["expires_in"], 3600);
        let access = v["access_token"].as_str().unwrap().to_owned();
        let refresh = v["refresh_token"].as_str().unwrap().to_owned();
        let rec = st.check_access(&access).unwrap();
        assert_eq!(
            (rec.user_id.as_str(), rec.resource.as_str()),
            ("usrA", "http://127.0.0.1:4567/mcp")
        );
        // A refresh token is not an access token.
        assert_eq!(st.check_access(&refresh), Err(Refusal::InvalidToken));
        let refresh_req = |rt: &str| {
            form(
                "/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt),
                    ("client_id", "mcpc_test"),
                ],
            )
        };
        let (s, _, v2) = send(&st, refresh_req(&refresh)).await;
        assert_eq!(s, StatusCode::OK, "{v2}");
        let access2 = v2["access_token"].as_str().unwrap().to_owned();
        assert!(st.check_access(&access2).is_ok());
        // Reuse of the rotated refresh token: refused, and the chain is revoked.
        let (s, _, _) = send(&st, refresh_req(&refresh)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(st.check_access(&access2), Err(Refusal::InvalidToken));
        assert_eq!(st.check_access(&access), Err(Refusal::InvalidToken));
    }

    #[test]
    fn access_checks_audience_expiry_scope_and_revocation() {
        let dir = tempfile::tempdir().unwrap();
        let st = state(&dir);
        let rec = |resource: &str, expires: i64, scope: &str| TokenRecord {
            kind: TokenKind::Access,
            user_id: "usrA".into(),
            client_id: "c".into(),
            scope: scope.into(),
            resource: resource.into(),
            expires,
            revoked: false,
            family: "f".into(),
        };
        let ours = "http://127.0.0.1:4567/mcp";
        st.store
            .put_token("good", &rec(ours, now() + 60, "mcp"))
            .unwrap();
        st.store
            .put_token(
                "other-aud",
                &rec("https://other.example/mcp", now() + 60, "mcp"),
            )
            .unwrap();
        st.store
            .put_token("expired", &rec(ours, now() - 1, "mcp"))
            .unwrap();
        st.store
            .put_token("no-scope", &rec(ours, now() + 60, "other"))
            .unwrap();
        assert!(st.check_access("good").is_ok());
        assert_eq!(st.check_access("other-aud"), Err(Refusal::InvalidToken));
        assert_eq!(st.check_access("expired"), Err(Refusal::InvalidToken));
        assert_eq!(st.check_access("unknown"), Err(Refusal::InvalidToken));
        assert_eq!(st.check_access("no-scope"), Err(Refusal::InsufficientScope));
        st.store.revoke_token("good").unwrap();
        assert_eq!(st.check_access("good"), Err(Refusal::InvalidToken));
    }

    /// The user's Airtable grant against the in-process sandbox: parallel requests near expiry
    /// refresh once (single flight), the rotated grant is stored and used by the next refresh.
    #[tokio::test]
    async fn airtable_refresh_is_single_flight_and_rotation_is_stored() {
        let sb = crate::sandbox::spawn(
            crate::sandbox::SandboxConfig {
                seed: crate::sandbox::Seed::Demo,
                oauth_auto_approve: true,
                ..crate::sandbox::SandboxConfig::default()
            },
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let opts = OAuthOptions {
            public_url: None,
            client_id: crate::sandbox::DEFAULT_CLIENT_ID.into(),
            client_secret: None,
            oauth_url: None,
            api_url: sb.url(),
            store: dir.path().join("oauth.sqlite3"),
            key: Some(StoreKey::for_tests(5)),
            access_ttl: DEFAULT_ACCESS_TTL,
            cimd_allow_http_loopback: false,
        };
        let st = OAuthState::new(&opts, "127.0.0.1:4567".parse().unwrap()).unwrap();
        // Play the browser at Airtable's authorize endpoint (auto-approve).
        let verifier = random_token("");
        let url = st
            .upstream
            .authorize_url(
                &st.callback_url(),
                "state-0123456789",
                &s256(&verifier),
                Some("second@example.com"),
            )
            .unwrap();
        let res = st.upstream.http.get(url).send().await.unwrap();
        let loc = Url::parse(res.headers()[header::LOCATION].to_str().unwrap()).unwrap();
        let code = loc
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let grant = st
            .upstream
            .exchange(&code, &st.callback_url(), &verifier)
            .await
            .unwrap();
        let user = st.upstream.whoami(&grant.access_token).await.unwrap();
        assert_eq!(user, crate::sandbox::users::SECOND_USER_ID);
        // Stored as if about to expire: the next use refreshes.
        let stale = |g: &AirtableGrant| AirtableGrant {
            access_expires: now() + 10,
            ..g.clone()
        };
        st.store.put_grant(&user, &stale(&grant)).unwrap();

        let calls = (0..8).map(|_| st.airtable_token(&user));
        let tokens: Vec<String> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|t| t.unwrap().expose_secret().to_owned())
            .collect();
        assert!(
            tokens.iter().all(|t| *t == tokens[0]),
            "one refresh for all"
        );
        assert_ne!(tokens[0], grant.access_token);
        assert_eq!(sb.state().oauth_stats().refreshes, 1);
        // The next refresh uses the rotated (stored) refresh token: Airtable refuses the old one.
        let rotated = st.store.grant(&user).unwrap().unwrap();
        assert_ne!(rotated.refresh_token, grant.refresh_token);
        st.store.put_grant(&user, &stale(&rotated)).unwrap();
        let next = st.airtable_token(&user).await.unwrap();
        assert_ne!(next.expose_secret(), tokens[0]);
        assert_eq!(sb.state().oauth_stats().refreshes, 2);
        // A grant whose refresh token Airtable refuses is dropped: the user signs in again.
        st.store.put_grant(&user, &stale(&grant)).unwrap();
        assert!(st.airtable_token(&user).await.is_err());
        assert!(st.store.grant(&user).unwrap().is_none());
        sb.shutdown().await;
    }

    #[tokio::test]
    async fn client_id_metadata_documents_are_fetched_and_validated() {
        let docs = Router::new().route(
            "/redirect.json",
            axum::routing::get(|| async { Redirect::to("/good.json") }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let good = format!("{origin}/good.json");
        let wrong_id = format!("{origin}/wrong.json");
        let doc = json!({"client_id": good, "client_name": "cimd", "redirect_uris": ["http://127.0.0.1:9/cb"]});
        let docs = docs
            .route("/good.json", axum::routing::get(move || async move { Json(doc) }))
            .route(
                "/wrong.json",
                axum::routing::get(|| async { Json(json!({"client_id": "https://other.example/c.json", "redirect_uris": ["http://127.0.0.1:9/cb"]})) }),
            );
        tokio::spawn(async move { axum::serve(listener, docs).await.unwrap() });

        let dir = tempfile::tempdir().unwrap();
        let st = state(&dir);
        let ok = st.fetch_client_metadata(&good).await.unwrap();
        assert_eq!(ok.redirect_uris, vec!["http://127.0.0.1:9/cb"]);
        assert_eq!(ok.client_name.as_deref(), Some("cimd"));
        assert!(st.fetch_client_metadata(&wrong_id).await.is_err());
        assert!(
            st.fetch_client_metadata(&format!("{origin}/redirect.json"))
                .await
                .is_err()
        );
        assert!(
            st.fetch_client_metadata(&format!("{origin}/missing.json"))
                .await
                .is_err()
        );
        assert!(
            st.fetch_client_metadata(&format!("{origin}/"))
                .await
                .is_err()
        );
        // Without the test flag: http refused, and https to a non-public address too.
        let dir2 = tempfile::tempdir().unwrap();
        let strict = OAuthState::new(
            &OAuthOptions {
                cimd_allow_http_loopback: false,
                store: dir2.path().join("s"),
                key: Some(StoreKey::for_tests(1)),
                ..OAuthOptions::from_args(
                    &crate::cli::OAuthServeArgs {
                        oauth: true,
                        oauth_client_id: Some("c".into()),
                        ..Default::default()
                    },
                    true,
                )
                .unwrap()
            },
            "127.0.0.1:4567".parse().unwrap(),
        )
        .unwrap();
        assert!(strict.fetch_client_metadata(&good).await.is_err());
        let err = strict
            .fetch_client_metadata("https://127.0.0.1/c.json")
            .await
            .unwrap_err();
        assert!(err.contains("non-public"), "{err}");
        assert!(!is_public_ip("10.1.2.3".parse().unwrap()));
        assert!(!is_public_ip("::ffff:192.168.0.1".parse().unwrap()));
        assert!(!is_public_ip("fd00::1".parse().unwrap()));
        assert!(is_public_ip("93.184.216.34".parse().unwrap()));

        // /authorize takes the URL client_id and its redirect URI.
        let q = serde_urlencoded::to_string([
            ("client_id", good.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("response_type", "code"),
            ("code_challenge", &s256(VERIFIER)),
            ("code_challenge_method", "S256"),
        ])
        .unwrap();
        let (s, h, body) = send(&st, get(&format!("/authorize?{q}"))).await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
        assert!(
            h[header::LOCATION]
                .to_str()
                .unwrap()
                .contains("/oauth2/v1/authorize?")
        );
    }
}
