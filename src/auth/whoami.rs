//! Asking Airtable (or the sandbox) who a token belongs to, and what its scopes allow.

use std::time::Duration;

use secrecy::SecretString;

use super::{AuthError, Settings};
use crate::airtable::{self, Client, ClientConfig};

/// Scopes the read tools need.
pub const READ_SCOPES: &[&str] = &["data.records:read", "schema.bases:read"];
/// Scopes the write tools need.
pub const WRITE_SCOPES: &[&str] = &["data.records:write", "schema.bases:write"];
/// Scopes the comment tools need (optional).
pub const COMMENT_SCOPES: &[&str] = &["data.recordComments:read", "data.recordComments:write"];

/// Who a token belongs to (from `GET /v0/meta/whoami`).
#[derive(Debug, Clone)]
pub struct Identity {
    pub id: String,
    pub email: Option<String>,
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
            None => "not reported by Airtable (personal access tokens do not list them)".to_owned(),
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

/// An API client for one-shot CLI checks: the configured URL, limits and timeout, but at most
/// one retry (a person is waiting; a 429 should be reported, not waited out for minutes).
pub fn client(config: &Settings, token: &SecretString) -> Result<Client, AuthError> {
    let mut cc = ClientConfig::new(config.api_url.clone(), token.clone());
    cc.timeout = config.request_timeout;
    cc.per_base_rps = config.rate_limit_per_base;
    cc.per_token_rps = config.rate_limit_per_token;
    cc.max_retries = config.max_retries.min(1);
    cc.rate_limit_wait = Duration::from_secs(2);
    cc.max_backoff = Duration::from_secs(2);
    Client::new(cc).map_err(api_error)
}

/// An API error (shown as one line with what to do; the error itself is kept as the source).
pub fn api_error(e: airtable::Error) -> AuthError {
    AuthError::Api { source: e }
}

/// Ask the configured API who `token` belongs to.
pub async fn whoami(config: &Settings, token: &SecretString) -> Result<Identity, AuthError> {
    let who = client(config, token)?.whoami().await.map_err(api_error)?;
    Ok(Identity {
        id: who.id.to_string(),
        email: who.email,
        scopes: who.scopes,
    })
}
