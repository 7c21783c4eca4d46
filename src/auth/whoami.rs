//! Asking Airtable (or the sandbox) who a token belongs to, and what its scopes allow.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::AuthError;
use crate::config::Config;

/// Scopes the read tools need.
pub const READ_SCOPES: &[&str] = &["data.records:read", "schema.bases:read"];
/// Scopes the write tools need.
pub const WRITE_SCOPES: &[&str] = &["data.records:write", "schema.bases:write"];
/// Scopes the comment tools need (optional).
pub const COMMENT_SCOPES: &[&str] = &["data.recordComments:read", "data.recordComments:write"];

/// The answer of `GET /v0/meta/whoami`.
#[derive(Debug, Clone, Deserialize)]
pub struct Identity {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

impl Identity {
    /// `usr… (email)`.
    pub fn describe_user(&self) -> String {
        match &self.email {
            Some(e) => format!("{} ({e})", self.id),
            None => self.id.clone(),
        }
    }

    /// Comma-separated scopes, or a note when Airtable does not report them.
    pub fn describe_scopes(&self) -> String {
        match &self.scopes {
            Some(s) if !s.is_empty() => s.join(", "),
            Some(_) => "none".to_owned(),
            None => "not reported".to_owned(),
        }
    }

    /// The scopes of `wanted` this token lacks (`None` when scopes are not reported).
    pub fn missing(&self, wanted: &[&str]) -> Option<Vec<String>> {
        let have = self.scopes.as_ref()?;
        Some(
            wanted
                .iter()
                .filter(|w| !have.iter().any(|h| h == *w))
                .map(|w| (*w).to_owned())
                .collect(),
        )
    }

    /// One line per group of missing scopes.
    pub fn missing_scope_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (what, wanted) in [("reads", READ_SCOPES), ("writes", WRITE_SCOPES)] {
            if let Some(m) = self.missing(wanted).filter(|m| !m.is_empty()) {
                out.push(format!(
                    "the token lacks {} (needed for {what}); add them at https://airtable.com/create/tokens",
                    m.join(", ")
                ));
            }
        }
        out
    }
}

/// Ask the configured API who `token` belongs to.
pub async fn whoami(config: &Config, token: &SecretString) -> Result<Identity, AuthError> {
    let url = config
        .api_url
        .join("v0/meta/whoami")
        .map_err(|e| AuthError::Api(format!("bad API URL {}: {e}", config.api_url)))?;
    let client = reqwest::Client::builder()
        .timeout(config.request_timeout)
        .user_agent(concat!("airtable-mcp/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AuthError::Api(format!("cannot build an HTTP client: {e}")))?;
    let resp = client
        .get(url.clone())
        .bearer_auth(token.expose_secret())
        .send()
        .await
        .map_err(|e| {
            AuthError::Api(format!(
                "cannot reach {}: {} (check the network or --api-url)",
                config.api_url,
                e.without_url()
            ))
        })?;
    let status = resp.status();
    if status.is_success() {
        return resp
            .json::<Identity>()
            .await
            .map_err(|e| AuthError::Api(format!("unexpected whoami answer: {}", e.without_url())));
    }
    let body = resp.text().await.unwrap_or_default();
    let kind = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/type")
                .and_then(|t| t.as_str())
                .map(str::to_owned)
                .or_else(|| v.get("error").and_then(|t| t.as_str()).map(str::to_owned))
        })
        .unwrap_or_default();
    let hint = match status.as_u16() {
        401 => "the token is invalid or revoked; create one at https://airtable.com/create/tokens",
        403 => "the token is not allowed to call whoami; check its scopes",
        429 => "rate limited; wait 30 seconds and retry",
        _ => "Airtable could not answer; retry later",
    };
    Err(AuthError::Api(format!(
        "whoami answered {status} {kind}: {hint}"
    )))
}
