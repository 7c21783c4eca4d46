//! Airtable's OAuth endpoints (reference §9): `GET /oauth2/v1/authorize` (with a consent page,
//! or an immediate redirect under `oauth_auto_approve`), `POST /oauth2/v1/authorize` (the
//! consent form) and `POST /oauth2/v1/token` (authorization code with PKCE S256, refresh with
//! rotation).
//!
//! Sandbox-only behaviour, documented in docs/sandbox.md:
//! - a client registered with `loopback: true` accepts any `http://127.0.0.1:PORT/...` or
//!   `http://localhost:PORT/...` redirect URI (Airtable requires an exact match);
//! - `login_hint` (an email or user ID) picks the user who consents (default: the first user);
//! - grants live in memory: restarting the sandbox revokes every token;
//! - a reused (already rotated) refresh token gets `invalid_grant` but does **not** revoke the
//!   chain's current tokens, so a client that lost a race can recover by re-reading its store.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::users::{self, Identity, User};
use super::{SandboxState, lock};

/// How long an authorization code may be exchanged.
pub const CODE_TTL: Duration = Duration::from_secs(600);

/// A registered OAuth integration.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthClient {
    pub id: String,
    /// With a secret, the token endpoint requires HTTP Basic auth; without, it forbids it.
    pub secret: Option<String>,
    /// Redirect URIs matched exactly.
    pub redirect_uris: Vec<String>,
    /// Also accept any loopback redirect URI, whatever the port (sandbox only).
    pub loopback: bool,
}

impl OAuthClient {
    /// A public client (no secret) that accepts any loopback redirect URI.
    pub fn public_loopback(id: &str) -> OAuthClient {
        OAuthClient {
            id: id.to_owned(),
            secret: None,
            redirect_uris: Vec::new(),
            loopback: true,
        }
    }

    fn accepts(&self, redirect_uri: &str) -> bool {
        if self.redirect_uris.iter().any(|u| u == redirect_uri) {
            return true;
        }
        self.loopback
            && url::Url::parse(redirect_uri).is_ok_and(|u| {
                u.scheme() == "http"
                    && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
                    && u.fragment().is_none()
            })
    }
}

/// The ID of the default public client.
pub const DEFAULT_CLIENT_ID: &str = "sandbox-client";

/// The clients a sandbox has by default: [`DEFAULT_CLIENT_ID`], public, any loopback redirect.
pub fn default_clients() -> Vec<OAuthClient> {
    vec![OAuthClient::public_loopback(DEFAULT_CLIENT_ID)]
}

struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    user: &'static User,
    scopes: Vec<String>,
    expires: Instant,
}

#[derive(Clone)]
struct Grant {
    user: &'static User,
    scopes: Vec<String>,
    client_id: String,
    access: String,
    access_expires: Instant,
    refresh: String,
    refresh_expires: Instant,
}

/// Codes and grants (in memory).
#[derive(Default)]
pub struct OAuthStore {
    codes: HashMap<String, Code>,
    /// Grants by access token and by refresh token (the same grant twice).
    by_access: HashMap<String, Grant>,
    by_refresh: HashMap<String, Grant>,
    /// Counters for tests.
    pub stats: OAuthStats,
}

/// What the OAuth endpoints did since start.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct OAuthStats {
    pub codes_issued: u64,
    pub code_exchanges: u64,
    pub refreshes: u64,
    pub refused: u64,
}

fn random_token(prefix: &str) -> String {
    let bytes: [u8; 24] = rand::random();
    format!("{prefix}{}", hex::encode(bytes))
}

/// `[A-Za-z0-9._-]`, `min..=max` characters.
fn charset_ok(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The identity of an access token, or None (unknown, rotated away or expired).
pub fn identity(state: &SandboxState, token: &str) -> Option<Identity> {
    let store = lock(&state.inner.oauth);
    let g = store.by_access.get(token)?;
    (Instant::now() < g.access_expires).then(|| Identity {
        user: g.user,
        scopes: Some(g.scopes.clone()),
    })
}

/// A token-endpoint error: `{"error","error_description"}`, 401 for `invalid_client`.
fn token_error(state: &SandboxState, error: &str, description: &str) -> Response {
    lock(&state.inner.oauth).stats.refused += 1;
    let status = if error == "invalid_client" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// An authorize error shown to the user (no redirect: the redirect URI is not trusted).
fn page_error(description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": "invalid_request", "error_description": description})),
    )
        .into_response()
}

fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let mut u = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => return page_error("redirect_uri is not a URL"),
    };
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    Redirect::to(u.as_str()).into_response()
}

/// A validated authorization request.
struct AuthRequest {
    client_id: String,
    redirect_uri: String,
    state: String,
    challenge: String,
    scopes: Vec<String>,
    user: &'static User,
}

/// Validate an authorize request: `Err` is the response (a page or an error redirect).
fn validate(
    state: &SandboxState,
    q: &HashMap<String, String>,
) -> Result<AuthRequest, Box<Response>> {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let client_id = get("client_id");
    let redirect_uri = get("redirect_uri");
    let client = state
        .inner
        .cfg
        .oauth_clients
        .iter()
        .find(|c| c.id == client_id)
        .ok_or_else(|| Box::new(page_error("unknown client_id")))?;
    if !client.accepts(redirect_uri) {
        return Err(Box::new(page_error(
            "redirect_uri does not match the integration's registered redirect URIs",
        )));
    }
    let st = get("state");
    let fail = |error: &str, desc: &str| {
        let mut pairs = vec![("error", error), ("error_description", desc)];
        if !st.is_empty() {
            pairs.push(("state", st));
        }
        Box::new(redirect_with(redirect_uri, &pairs))
    };
    if get("response_type") != "code" {
        return Err(fail(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    if !charset_ok(st, 16, 1024) {
        return Err(fail(
            "invalid_request",
            "state must be 16 to 1024 characters from [A-Za-z0-9._-]",
        ));
    }
    if get("code_challenge_method") != "S256" {
        return Err(fail(
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    let challenge = get("code_challenge");
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(fail(
            "invalid_request",
            "code_challenge must be base64url(sha256(code_verifier)) without padding",
        ));
    }
    let scopes: Vec<String> = get("scope").split_whitespace().map(str::to_owned).collect();
    if scopes.is_empty() {
        return Err(fail("invalid_scope", "at least one scope is required"));
    }
    if let Some(bad) = scopes.iter().find(|s| !users::SCOPES.contains(&s.as_str())) {
        return Err(fail("invalid_scope", &format!("unknown scope {bad}")));
    }
    let user = match q.get("login_hint").filter(|h| !h.is_empty()) {
        None => users::first(),
        Some(h) => users::find(h)
            .ok_or_else(|| fail("access_denied", "login_hint names no sandbox user"))?,
    };
    Ok(AuthRequest {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        state: st.to_owned(),
        challenge: challenge.to_owned(),
        scopes,
        user,
    })
}

fn approve(state: &SandboxState, r: AuthRequest) -> Response {
    let code = random_token("sbxcode_");
    {
        let mut store = lock(&state.inner.oauth);
        let now = Instant::now();
        store.codes.retain(|_, c| c.expires > now);
        store.stats.codes_issued += 1;
        store.codes.insert(
            code.clone(),
            Code {
                client_id: r.client_id,
                redirect_uri: r.redirect_uri.clone(),
                challenge: r.challenge.clone(),
                user: r.user,
                scopes: r.scopes,
                expires: now + CODE_TTL,
            },
        );
    }
    redirect_with(
        &r.redirect_uri,
        &[
            ("code", &code),
            ("state", &r.state),
            ("code_challenge", &r.challenge),
            ("code_challenge_method", "S256"),
        ],
    )
}

fn pairs(q: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `GET /oauth2/v1/authorize`.
pub async fn authorize_get(State(s): State<SandboxState>, RawQuery(q): RawQuery) -> Response {
    let q = pairs(q.as_deref().unwrap_or(""));
    let r = match validate(&s, &q) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    if s.inner.cfg.oauth_auto_approve {
        return approve(&s, r);
    }
    let mut hidden = String::new();
    for (k, v) in &q {
        hidden.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(k),
            escape(v)
        ));
    }
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sandbox: authorize</title></head><body>\
         <h1>Authorize {client}</h1><p>{user} ({email}) grants: {scopes}</p>\
         <form method=\"post\" action=\"/oauth2/v1/authorize\">{hidden}\
         <button name=\"decision\" value=\"approve\">Approve</button> \
         <button name=\"decision\" value=\"deny\">Deny</button></form></body></html>",
        client = escape(&r.client_id),
        user = escape(r.user.name),
        email = escape(r.user.email),
        scopes = escape(&r.scopes.join(" ")),
    );
    Html(page).into_response()
}

/// `POST /oauth2/v1/authorize`: the consent form (`decision=approve|deny` and the request's
/// parameters).
pub async fn authorize_post(State(s): State<SandboxState>, body: Bytes) -> Response {
    let q = pairs(&String::from_utf8_lossy(&body));
    let r = match validate(&s, &q) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    if q.get("decision").map(String::as_str) == Some("approve") {
        approve(&s, r)
    } else {
        redirect_with(
            &r.redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "The user denied access"),
                ("state", &r.state),
            ],
        )
    }
}

/// `(client_id, secret)` from `Authorization: Basic` (standard or URL-safe base64).
fn basic(headers: &HeaderMap) -> Option<Result<(String, String), ()>> {
    let h = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = h
        .strip_prefix("Basic ")
        .or_else(|| h.strip_prefix("basic "))?;
    let b64 = b64.trim().trim_end_matches('=');
    let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(b64)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64));
    Some(
        decoded
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())))
            .ok_or(()),
    )
}

fn issue(state: &SandboxState, store: &mut OAuthStore, g: &mut Grant) -> Response {
    let cfg = &state.inner.cfg;
    let now = Instant::now();
    g.access = random_token("sbxoaa_");
    g.refresh = random_token("sbxoar_");
    g.access_expires = now + cfg.oauth_access_ttl;
    g.refresh_expires = now + cfg.oauth_refresh_ttl;
    store.by_access.insert(g.access.clone(), g.clone());
    store.by_refresh.insert(g.refresh.clone(), g.clone());
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({
            "access_token": g.access,
            "refresh_token": g.refresh,
            "token_type": "Bearer",
            "scope": g.scopes.join(" "),
            "expires_in": cfg.oauth_access_ttl.as_secs(),
            "refresh_expires_in": cfg.oauth_refresh_ttl.as_secs(),
        })),
    )
        .into_response()
}

const REVOKED: &str = "Token has been expired or revoked.";

/// `POST /oauth2/v1/token`.
pub async fn token(State(s): State<SandboxState>, headers: HeaderMap, body: Bytes) -> Response {
    let form_ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_ct {
        return token_error(
            &s,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let q = pairs(&String::from_utf8_lossy(&body));
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    // The client: Basic auth, else client_id.
    let (client_id, given_secret) = match basic(&headers) {
        Some(Ok((id, secret))) => {
            if !get("client_id").is_empty() && get("client_id") != id {
                return token_error(&s, "invalid_client", "client_id differs from Basic auth");
            }
            (id, Some(secret))
        }
        Some(Err(())) => {
            return token_error(&s, "invalid_client", "malformed Basic authorization");
        }
        None => (get("client_id").to_owned(), None),
    };
    let Some(client) = s.inner.cfg.oauth_clients.iter().find(|c| c.id == client_id) else {
        return token_error(&s, "invalid_client", "unknown client");
    };
    match (&client.secret, &given_secret) {
        (Some(want), Some(got)) => {
            use subtle::ConstantTimeEq;
            if !bool::from(want.as_bytes().ct_eq(got.as_bytes())) {
                return token_error(&s, "invalid_client", "wrong client secret");
            }
        }
        (Some(_), None) => {
            return token_error(
                &s,
                "invalid_client",
                "this integration has a client secret: use HTTP Basic authorization",
            );
        }
        (None, Some(_)) => {
            return token_error(
                &s,
                "invalid_client",
                "this integration has no client secret: Basic authorization is not allowed",
            );
        }
        (None, None) => {}
    }
    match get("grant_type") {
        "authorization_code" => exchange_code(&s, &client.id, &q),
        "refresh_token" => refresh(&s, &client.id, &q),
        "" => token_error(&s, "invalid_request", "grant_type is required"),
        _ => token_error(
            &s,
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        ),
    }
}

fn exchange_code(s: &SandboxState, client_id: &str, q: &HashMap<String, String>) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let mut store = lock(&s.inner.oauth);
    // Single use, even when the exchange fails.
    let Some(code) = store.codes.remove(get("code")) else {
        drop(store);
        return token_error(
            s,
            "invalid_grant",
            "the code is invalid or was used already",
        );
    };
    let verdict = if Instant::now() >= code.expires {
        Err(("invalid_grant", "the code expired (10 minutes)"))
    } else if code.client_id != client_id {
        Err(("invalid_grant", "the code was issued to another client"))
    } else if code.redirect_uri != get("redirect_uri") {
        Err((
            "invalid_grant",
            "redirect_uri differs from the authorization request's",
        ))
    } else if !charset_ok(get("code_verifier"), 43, 128) {
        Err((
            "invalid_request",
            "code_verifier must be 43 to 128 characters from [A-Za-z0-9._-]",
        ))
    } else if s256(get("code_verifier")) != code.challenge {
        Err((
            "invalid_grant",
            "code_verifier does not match the code_challenge",
        ))
    } else {
        Ok(())
    };
    if let Err((e, d)) = verdict {
        drop(store);
        return token_error(s, e, d);
    }
    store.stats.code_exchanges += 1;
    let now = Instant::now();
    let mut g = Grant {
        user: code.user,
        scopes: code.scopes,
        client_id: client_id.to_owned(),
        access: String::new(),
        access_expires: now,
        refresh: String::new(),
        refresh_expires: now,
    };
    issue(s, &mut store, &mut g)
}

fn refresh(s: &SandboxState, client_id: &str, q: &HashMap<String, String>) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let mut store = lock(&s.inner.oauth);
    let now = Instant::now();
    let Some(old) = store.by_refresh.get(get("refresh_token")).cloned() else {
        drop(store);
        return token_error(s, "invalid_grant", REVOKED);
    };
    if old.refresh_expires <= now {
        store.by_refresh.remove(&old.refresh);
        drop(store);
        return token_error(s, "invalid_grant", REVOKED);
    }
    if old.client_id != client_id {
        drop(store);
        return token_error(s, "invalid_grant", "the token was issued to another client");
    }
    let mut g = old.clone();
    if let Some(asked) = q.get("scope").filter(|v| !v.trim().is_empty()) {
        let asked: Vec<String> = asked.split_whitespace().map(str::to_owned).collect();
        if asked.iter().any(|a| !old.scopes.contains(a)) {
            drop(store);
            return token_error(s, "invalid_scope", "scope must be a subset of the grant's");
        }
        g.scopes = asked;
    }
    // Rotation: the previous access and refresh tokens stop working.
    store.by_access.remove(&old.access);
    store.by_refresh.remove(&old.refresh);
    store.stats.refreshes += 1;
    issue(s, &mut store, &mut g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_is_base64url_sha256() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW-gFWFOEjXk"),
            // Python: base64.urlsafe_b64encode(hashlib.sha256(v).digest()).rstrip(b"=")
            "90EpwHQr_xi9uDtjYyz5mq9Z4RekugHRqg5ijpXC3FQ"
        );
    }

    #[test]
    fn loopback_clients_accept_any_port() {
        let c = OAuthClient::public_loopback("x");
        assert!(c.accepts("http://127.0.0.1:5555/callback"));
        assert!(c.accepts("http://localhost:1/cb"));
        assert!(!c.accepts("https://evil.example/cb"));
        assert!(!c.accepts("http://127.0.0.1.evil.example/cb"));
        let exact = OAuthClient {
            loopback: false,
            redirect_uris: vec!["https://app.example/cb".into()],
            ..c
        };
        assert!(exact.accepts("https://app.example/cb"));
        assert!(!exact.accepts("https://app.example/cb2"));
        assert!(!exact.accepts("http://localhost:1/cb"));
    }

    #[test]
    fn state_charset() {
        assert!(charset_ok("abcdefghij.-_0123", 16, 1024));
        assert!(!charset_ok("short", 16, 1024));
        assert!(!charset_ok("abcdefghijklmnop q", 16, 1024));
    }
}
