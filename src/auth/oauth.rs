//! "Sign in with Airtable": `auth login --oauth` (authorization code + PKCE S256 + a loopback
//! redirect), the OAuth grant kept in the keyring, and [`OAuthTokenSource`], the
//! [`TokenProvider`] that refreshes the access token before it expires.
//!
//! **Grant model.** A profile's keyring entry holds either a PAT or one JSON [`Grant`] (access and
//! refresh tokens, expiries, scopes, client ID, token URL). The whole grant is written in one
//! keyring call, so the stored grant is always one consistent pair of tokens.
//!
//! **Rotation and crash safety.** Airtable invalidates the previous access *and* refresh tokens
//! when it answers a refresh, so the new grant exists only in our memory until it is stored.
//! A refresh therefore runs, under one in-process lock (single flight):
//! 1. re-read the stored grant: if another process already refreshed, adopt its grant;
//! 2. store the grant with a `refresh_started_at` marker (one keyring write);
//! 3. POST the refresh; on the answer, store the new grant (marker cleared) at once. If that
//!    keyring write fails, the process keeps the new grant in memory, keeps working and retries
//!    the write on each later use (it logs an error meanwhile).
//!
//! The remaining window: the process dies (or the answer is lost in transit) after Airtable
//! rotated the tokens and before step 3's write completed. The stored refresh token is then
//! dead and nothing can recover the grant. The next process sees the marker, so it refreshes at
//! once instead of sending a dead access token, gets `invalid_grant`, and fails with a message
//! that says a refresh was interrupted and to run `airtable-mcp auth login --oauth` again. If
//! the interrupted refresh never reached Airtable, the stored refresh token still works and the
//! next process simply refreshes. A refresh answered `invalid_grant` is also checked against the
//! keyring: when another process stored a newer grant meanwhile (a race between two servers of
//! one profile), that grant is adopted.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use super::{AuthError, Profile, Settings, blocking, keyring, whoami};
use crate::airtable::TokenProvider;
use crate::env;

/// The `kind` of a stored grant (a PAT never starts with `{`).
pub const GRANT_KIND: &str = "airtable-oauth-grant";

/// The scopes `auth login --oauth` asks for by default (everything the tools use).
pub const DEFAULT_SCOPES: &str = "data.records:read data.records:write data.recordComments:read data.recordComments:write schema.bases:read schema.bases:write user.email:read";

/// Refresh when less than this is left (or half the token's lifetime, if shorter).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// An OAuth grant as stored in the keyring (JSON). `Debug` shows no token.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct Grant {
    /// Always [`GRANT_KIND`].
    pub kind: String,
    pub client_id: String,
    /// For confidential integrations (kept only in the keyring, with the tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// `https://airtable.com/oauth2/v1/token` (or the sandbox's).
    pub token_url: String,
    pub access_token: String,
    pub refresh_token: String,
    pub scopes: Vec<String>,
    /// Unix milliseconds.
    pub obtained_at_ms: i64,
    pub expires_at_ms: i64,
    pub refresh_expires_at_ms: i64,
    /// Set while a refresh is under way (see the module docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_started_at_ms: Option<i64>,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("refresh_expires_at_ms", &self.refresh_expires_at_ms)
            .field("refresh_started_at_ms", &self.refresh_started_at_ms)
            .finish_non_exhaustive()
    }
}

/// Wall-clock Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `2026-11-30 21:00:00 UTC` for status lines.
pub fn show_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

impl Grant {
    /// The grant in a keyring value, or None (a PAT, or something else).
    pub fn parse(stored: &SecretString) -> Option<Grant> {
        let s = stored.expose_secret();
        if !s.trim_start().starts_with('{') {
            return None;
        }
        serde_json::from_str::<Grant>(s)
            .ok()
            .filter(|g| g.kind == GRANT_KIND)
    }

    /// The keyring value.
    pub fn to_secret(&self) -> SecretString {
        SecretString::from(serde_json::to_string(self).unwrap_or_default())
    }

    /// Whether the access token should be refreshed now (close to expiry, or a refresh was
    /// interrupted, which may have rotated it away).
    pub fn needs_refresh(&self, now: i64) -> bool {
        let life = (self.expires_at_ms - self.obtained_at_ms).max(0);
        let margin = (REFRESH_MARGIN.as_millis() as i64).min(life / 2);
        self.refresh_started_at_ms.is_some() || now >= self.expires_at_ms - margin
    }

    fn from_response(
        r: TokenResponse,
        client_id: &str,
        client_secret: Option<String>,
        token_url: &str,
        previous_scopes: &[String],
    ) -> Grant {
        let now = now_ms();
        let scopes = r
            .scope
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_else(|| previous_scopes.to_vec());
        Grant {
            kind: GRANT_KIND.to_owned(),
            client_id: client_id.to_owned(),
            client_secret,
            token_url: token_url.to_owned(),
            access_token: r.access_token,
            refresh_token: r.refresh_token,
            scopes,
            obtained_at_ms: now,
            expires_at_ms: now + r.expires_in.unwrap_or(3600) as i64 * 1000,
            refresh_expires_at_ms: now + r.refresh_expires_in.unwrap_or(5_184_000) as i64 * 1000,
            refresh_started_at_ms: None,
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: String,
    scope: Option<String>,
    expires_in: Option<u64>,
    refresh_expires_in: Option<u64>,
}

/// The OAuth origin: `--oauth-url` if given, else `https://airtable.com` for the default API
/// URL, else the API URL's origin (a sandbox serves both).
pub fn oauth_origin(explicit: Option<&str>, api_url: &Url) -> Result<Url, AuthError> {
    let raw = match explicit.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => s.to_owned(),
        None if api_url.as_str().trim_end_matches('/') == crate::airtable::DEFAULT_API_URL => {
            "https://airtable.com".to_owned()
        }
        None => api_url.origin().ascii_serialization(),
    };
    Url::parse(&raw)
        .map_err(|e| AuthError::OAuthLogin(format!("the OAuth URL {raw:?} is not a URL: {e}")))
}

fn endpoint(origin: &Url, path: &str) -> String {
    format!("{}{path}", origin.as_str().trim_end_matches('/'))
}

fn random_string(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// base64url(sha256(verifier)), no padding (PKCE S256).
pub fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn http() -> Result<reqwest::Client, AuthError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(AuthError::OAuthHttp)
}

/// POST the token endpoint (form body; Basic auth iff there is a client secret).
async fn token_request(
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    client_secret: Option<&str>,
    mut form: Vec<(&str, &str)>,
) -> Result<TokenResponse, AuthError> {
    let mut rb = http
        .post(token_url)
        .header("content-type", "application/x-www-form-urlencoded");
    match client_secret {
        Some(secret) => {
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
            rb = rb.header("authorization", format!("Basic {basic}"));
        }
        None => form.push(("client_id", client_id)),
    }
    let body = serde_urlencoded::to_string(&form)
        .map_err(|e| AuthError::OAuthLogin(format!("cannot encode the token request: {e}")))?;
    let resp = rb.body(body).send().await.map_err(AuthError::OAuthHttp)?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(AuthError::OAuthHttp)?;
    if (200..300).contains(&status) {
        return serde_json::from_str(&text).map_err(|e| {
            AuthError::OAuthLogin(format!("the token endpoint answered something else: {e}"))
        });
    }
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    Err(AuthError::OAuthRefused {
        status,
        error: field("error"),
        description: field("error_description"),
    })
}

// --- serve --http --oauth (H8): the server's authorization server reuses this token client.
/// `serve --oauth`: POST Airtable's token endpoint (`form` = a code exchange or a refresh; Basic
/// auth iff `client_secret`) and return the answer as a [`Grant`] (`client_secret` not kept in it).
pub async fn server_token_request(
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    client_secret: Option<&str>,
    form: Vec<(&str, &str)>,
) -> Result<Grant, AuthError> {
    let answer = token_request(http, token_url, client_id, client_secret, form).await?;
    Ok(Grant::from_response(
        answer,
        client_id,
        None,
        token_url,
        &[],
    ))
}
// --- end serve --http --oauth

fn login_oauth_command(profile: &Profile) -> String {
    if profile.as_str() == super::DEFAULT_PROFILE {
        "airtable-mcp auth login --oauth".to_owned()
    } else {
        format!("airtable-mcp auth login --oauth --profile {profile}")
    }
}

/// Load the profile's grant (None: no entry, or a PAT).
pub async fn load_grant(profile: &Profile) -> Result<Option<Grant>, AuthError> {
    let p = profile.clone();
    let stored = blocking(move || keyring::load(&p)).await?;
    Ok(stored.and_then(|(s, _)| Grant::parse(&s)))
}

async fn store_grant(profile: &Profile, grant: &Grant) -> Result<keyring::Backend, AuthError> {
    let p = profile.clone();
    let secret = grant.to_secret();
    blocking(move || keyring::store(&p, &secret)).await
}

struct SourceState {
    grant: Grant,
    /// The grant in memory is newer than the keyring's (its write failed).
    unsaved: bool,
}

/// The access token of a profile's OAuth grant, refreshed before expiry, single flight.
pub struct OAuthTokenSource {
    profile: Profile,
    state: tokio::sync::Mutex<SourceState>,
    http: reqwest::Client,
    crash_after_response: AtomicBool,
    refreshes: AtomicU64,
}

impl std::fmt::Debug for OAuthTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthTokenSource")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl OAuthTokenSource {
    pub fn new(profile: Profile, grant: Grant) -> Result<OAuthTokenSource, AuthError> {
        Ok(OAuthTokenSource {
            profile,
            state: tokio::sync::Mutex::new(SourceState {
                grant,
                unsaved: false,
            }),
            http: http()?,
            crash_after_response: AtomicBool::new(false),
            refreshes: AtomicU64::new(0),
        })
    }

    /// The source of `profile`, when its keyring entry holds a grant (and no token is set in
    /// the environment, which wins).
    pub async fn for_profile(
        profile: &Profile,
    ) -> Result<Option<Arc<OAuthTokenSource>>, AuthError> {
        if super::token_from_env().is_some() {
            return Ok(None);
        }
        match load_grant(profile).await? {
            Some(g) => Ok(Some(Arc::new(OAuthTokenSource::new(profile.clone(), g)?))),
            None => Ok(None),
        }
    }

    /// Refreshes this source performed.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// The grant in memory (for status lines).
    pub async fn grant(&self) -> Grant {
        self.state.lock().await.grant.clone()
    }

    /// Tests only: behave as if the process died right after the token endpoint answered a
    /// refresh (the new grant is dropped, never stored).
    #[doc(hidden)]
    pub fn inject_crash_after_token_response(&self) {
        self.crash_after_response.store(true, Ordering::SeqCst);
    }

    /// The current access token, refreshed first when it is close to expiry.
    pub async fn access_token(&self) -> Result<SecretString, AuthError> {
        let mut st = self.state.lock().await;
        if st.unsaved {
            match store_grant(&self.profile, &st.grant).await {
                Ok(_) => st.unsaved = false,
                Err(e) => {
                    tracing::error!(error = %e, profile = %self.profile, "the refreshed OAuth grant still cannot be stored in the keyring; it lives only in this process")
                }
            }
        }
        if st.grant.needs_refresh(now_ms()) {
            self.refresh_locked(&mut st).await?;
        }
        Ok(SecretString::from(st.grant.access_token.clone()))
    }

    async fn refresh_locked(&self, st: &mut SourceState) -> Result<(), AuthError> {
        // 1. Another process may have refreshed (and stored) already.
        if !st.unsaved
            && let Some(stored) = load_grant(&self.profile).await?
            && stored.refresh_token != st.grant.refresh_token
        {
            st.grant = stored;
            if !st.grant.needs_refresh(now_ms()) {
                return Ok(());
            }
        }
        let fix = login_oauth_command(&self.profile);
        if now_ms() >= st.grant.refresh_expires_at_ms {
            return Err(AuthError::GrantLost(format!(
                "the OAuth refresh token of profile {:?} expired at {}; run `{fix}` to sign in again",
                self.profile.as_str(),
                show_ms(st.grant.refresh_expires_at_ms)
            )));
        }
        let interrupted = st.grant.refresh_started_at_ms;
        // 2. The marker.
        let mut marked = st.grant.clone();
        marked.refresh_started_at_ms = Some(now_ms());
        if let Err(e) = store_grant(&self.profile, &marked).await {
            tracing::warn!(error = %e, "cannot mark the OAuth refresh in the keyring; refreshing anyway");
        }
        // 3. The refresh.
        let g = st.grant.clone();
        let answer = token_request(
            &self.http,
            &g.token_url,
            &g.client_id,
            g.client_secret.as_deref(),
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", g.refresh_token.as_str()),
            ],
        )
        .await;
        match answer {
            Ok(resp) => {
                let new = Grant::from_response(
                    resp,
                    &g.client_id,
                    g.client_secret.clone(),
                    &g.token_url,
                    &g.scopes,
                );
                if self.crash_after_response.load(Ordering::SeqCst) {
                    return Err(AuthError::Internal(
                        "injected crash after the token response (test hook)".to_owned(),
                    ));
                }
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                st.grant = new;
                match store_grant(&self.profile, &st.grant).await {
                    Ok(_) => st.unsaved = false,
                    Err(e) => {
                        st.unsaved = true;
                        tracing::error!(error = %e, profile = %self.profile, "the refreshed OAuth grant could not be stored in the keyring; this process keeps it in memory and retries; if it stops now, run `{fix}`");
                    }
                }
                tracing::info!(profile = %self.profile, expires_at = %show_ms(st.grant.expires_at_ms), "OAuth access token refreshed");
                Ok(())
            }
            Err(AuthError::OAuthRefused {
                status,
                error,
                description,
            }) => {
                // A race lost to another process that stored a newer grant?
                if status == 409 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                if let Some(stored) = load_grant(&self.profile).await?
                    && stored.refresh_token != g.refresh_token
                {
                    st.grant = stored;
                    return Ok(());
                }
                let why = match interrupted {
                    Some(at) => format!(
                        "a refresh started at {} was interrupted before its result was stored (the process stopped?), and Airtable had already rotated the tokens",
                        show_ms(at)
                    ),
                    None => "the grant was revoked, expired, or refreshed elsewhere without being stored".to_owned(),
                };
                Err(AuthError::GrantLost(format!(
                    "the OAuth grant of profile {:?} can no longer be refreshed (the token endpoint answered {status} {error}: {description}): {why}; run `{fix}` to sign in again",
                    self.profile.as_str()
                )))
            }
            Err(e) => Err(e),
        }
    }
}

impl OAuthTokenSource {
    /// The API refused `token`: adopt a newer stored grant, or refresh at the next use.
    pub async fn token_rejected(&self, token: &SecretString) {
        let mut st = self.state.lock().await;
        if st.grant.access_token != token.expose_secret() {
            return; // already renewed by another request
        }
        if let Ok(Some(stored)) = load_grant(&self.profile).await
            && stored.refresh_token != st.grant.refresh_token
        {
            st.grant = stored;
            return;
        }
        // Refresh at the next use (an `invalid_grant` then says what to do).
        st.grant.expires_at_ms = st.grant.obtained_at_ms;
    }
}

impl TokenProvider for OAuthTokenSource {
    fn bearer(
        &self,
    ) -> futures::future::BoxFuture<
        '_,
        Result<SecretString, Box<dyn std::error::Error + Send + Sync>>,
    > {
        Box::pin(async move {
            self.access_token()
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
    }

    fn rejected(&self, token: &SecretString) -> futures::future::BoxFuture<'_, ()> {
        let token = token.clone();
        Box::pin(async move { self.token_rejected(&token).await })
    }
}

/// What `auth login --oauth` was asked.
#[derive(Debug, Clone)]
pub struct LoginOptions {
    pub client_id: String,
    pub scopes: String,
    /// 0 picks a free port.
    pub redirect_port: u16,
    pub no_browser: bool,
    /// `--oauth-url` / `AIRTABLE_MCP_OAUTH_URL`.
    pub oauth_url: Option<String>,
    /// How long to wait for the browser.
    pub timeout: Duration,
}

fn open_browser(url: &str) -> bool {
    #[cfg(target_os = "macos")]
    let cmd = std::process::Command::new("open").arg(url).spawn();
    #[cfg(target_os = "windows")]
    let cmd = std::process::Command::new("cmd")
        .args(["/C", "start", ""])
        .arg(url)
        .spawn();
    #[cfg(not(any(target_os = "macos", target_os = "windows")))]
    let cmd = std::process::Command::new("xdg-open")
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    cmd.is_ok()
}

const DONE_PAGE: &str = "<!doctype html><html><body><h1>airtable-mcp: signed in</h1><p>You can close this tab.</p></body></html>";

/// `airtable-mcp auth login --oauth`.
pub async fn login(settings: &Settings, opts: LoginOptions) -> anyhow::Result<ExitCode> {
    let origin = oauth_origin(opts.oauth_url.as_deref(), &settings.api_url)?;
    let token_url = endpoint(&origin, "/oauth2/v1/token");
    let client_secret = std::env::var(env::AIRTABLE_MCP_OAUTH_CLIENT_SECRET)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], opts.redirect_port)))
            .await
            .map_err(|e| {
                AuthError::OAuthLogin(format!(
                    "cannot listen on 127.0.0.1:{} for the redirect: {e}",
                    opts.redirect_port
                ))
            })?;
    let port = listener.local_addr()?.port();
    let redirect_uri = format!("http://localhost:{port}/callback");
    let verifier = random_string(64);
    let state = random_string(32);
    let mut auth_url = Url::parse(&endpoint(&origin, "/oauth2/v1/authorize"))?;
    auth_url
        .query_pairs_mut()
        .append_pair("client_id", &opts.client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", &opts.scopes)
        .append_pair("state", &state)
        .append_pair("code_challenge", &pkce_challenge(&verifier))
        .append_pair("code_challenge_method", "S256");

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<(String, String)>>(4);
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(move |axum::extract::RawQuery(q): axum::extract::RawQuery| {
            let tx = tx.clone();
            async move {
                let pairs: Vec<(String, String)> =
                    url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
                        .into_owned()
                        .collect();
                let _ = tx.send(pairs).await;
                axum::response::Html(DONE_PAGE)
            }
        }),
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    eprintln!(
        "Sign in with Airtable: open this URL in a browser (the redirect comes back to {redirect_uri}):\n{auth_url}"
    );
    if !opts.no_browser && !open_browser(auth_url.as_str()) {
        eprintln!("(could not open a browser; open the URL above by hand)");
    }
    let outcome = tokio::time::timeout(opts.timeout, async {
        loop {
            let Some(pairs) = rx.recv().await else {
                return Err(AuthError::OAuthLogin(
                    "the redirect listener stopped".into(),
                ));
            };
            let get = |k: &str| {
                pairs
                    .iter()
                    .find(|(pk, _)| pk == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            if get("state") != state {
                // Not our request (or forged): ignore it, keep waiting.
                tracing::warn!("ignored a redirect with a wrong state");
                continue;
            }
            if !get("error").is_empty() {
                return Err(AuthError::OAuthLogin(format!(
                    "Airtable refused the sign-in: {} {}",
                    get("error"),
                    get("error_description")
                )));
            }
            return Ok(get("code"));
        }
    })
    .await;
    server.abort();
    let code = match outcome {
        Ok(r) => r?,
        Err(_) => {
            return Err(AuthError::OAuthLogin(format!(
                "no redirect came back within {} s; run the command again",
                opts.timeout.as_secs()
            ))
            .into());
        }
    };
    let resp = token_request(
        &http()?,
        &token_url,
        &opts.client_id,
        client_secret.as_deref(),
        vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ],
    )
    .await?;
    let requested: Vec<String> = opts.scopes.split_whitespace().map(str::to_owned).collect();
    let grant = Grant::from_response(resp, &opts.client_id, client_secret, &token_url, &requested);
    let access = SecretString::from(grant.access_token.clone());
    let who = whoami::whoami(settings, &access)
        .await
        .map_err(|e| anyhow::anyhow!("the grant was not stored: {e}"))?;
    let backend = store_grant(&settings.profile, &grant).await?;
    println!("Signed in with Airtable as {}.", who.describe_user());
    println!(
        "OAuth grant (client {}) stored for profile {:?} in the {backend}.",
        grant.client_id,
        settings.profile.as_str()
    );
    println!("Scopes: {}", grant.scopes.join(" "));
    println!(
        "Access token expires {}; it is refreshed automatically until {}.",
        show_ms(grant.expires_at_ms),
        show_ms(grant.refresh_expires_at_ms)
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            kind: GRANT_KIND.into(),
            client_id: "c".into(),
            client_secret: Some("SECRETSECRET".into()),
            token_url: "http://x/oauth2/v1/token".into(),
            access_token: "ACCESSACCESS".into(),
            refresh_token: "REFRESHREFRESH".into(),
            scopes: vec!["data.records:read".into()],
            obtained_at_ms: 0,
            expires_at_ms: 3_600_000,
            refresh_expires_at_ms: 10_000_000,
            refresh_started_at_ms: None,
        }
    }

    #[test]
    fn grants_round_trip_and_hide_tokens() {
        let g = grant();
        assert_eq!(Grant::parse(&g.to_secret()), Some(g.clone()));
        assert_eq!(Grant::parse(&SecretString::from("patX.y".to_owned())), None);
        let d = format!("{g:?}");
        assert!(
            !d.contains("ACCESS") && !d.contains("REFRESH") && !d.contains("SECRET"),
            "{d}"
        );
    }

    #[test]
    fn refresh_timing() {
        let mut g = grant();
        assert!(!g.needs_refresh(3_600_000 - 300_001));
        assert!(g.needs_refresh(3_600_000 - 300_000));
        // Short-lived tokens refresh at half their life.
        g.expires_at_ms = 2000;
        assert!(!g.needs_refresh(999));
        assert!(g.needs_refresh(1000));
        g.refresh_started_at_ms = Some(1);
        assert!(g.needs_refresh(0));
    }

    #[test]
    fn oauth_origin_follows_the_api_url() {
        let def = Url::parse("https://api.airtable.com").unwrap();
        assert_eq!(
            oauth_origin(None, &def).unwrap().as_str(),
            "https://airtable.com/"
        );
        let sb = Url::parse("http://127.0.0.1:9999/").unwrap();
        assert_eq!(
            oauth_origin(None, &sb).unwrap().as_str(),
            "http://127.0.0.1:9999/"
        );
        assert_eq!(
            oauth_origin(Some("http://o.example"), &def)
                .unwrap()
                .as_str(),
            "http://o.example/"
        );
    }
}
