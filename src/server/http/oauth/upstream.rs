//! The server's side of Airtable's OAuth (reference §9): the authorize URL, the token endpoint
//! (authorization code with PKCE, refresh with rotation) and whoami to learn whose grant it is.
//! (A stand-alone client so that `auth login --oauth`'s can replace it later.)

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::OAuthError;
use super::store::{AirtableGrant, now};

/// Airtable's token answer.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<i64>,
    scope: Option<String>,
}

/// Airtable's OAuth endpoints for one integration.
#[derive(Clone, Debug)]
pub struct Upstream {
    pub oauth_url: Url,
    pub api_url: Url,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub scopes: String,
    pub http: reqwest::Client,
}

impl Upstream {
    /// `{oauth_url}/oauth2/v1/authorize?...` for our redirect URI, state and challenge.
    pub fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
        challenge: &str,
        login_hint: Option<&str>,
    ) -> Result<Url, OAuthError> {
        let mut u = self.oauth_url.join("oauth2/v1/authorize")?;
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("response_type", "code")
                .append_pair("scope", &self.scopes)
                .append_pair("state", state)
                .append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(h) = login_hint {
                q.append_pair("login_hint", h);
            }
        }
        Ok(u)
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<AirtableGrant, OAuthError> {
        let mut req = self
            .http
            .post(self.oauth_url.join("oauth2/v1/token")?)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(serde_urlencoded::to_string(form)?);
        if let Some(secret) = &self.client_secret {
            req = req.basic_auth(&self.client_id, Some(secret.expose_secret()));
        }
        let res = req.send().await?;
        let status = res.status();
        if !status.is_success() {
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            return Err(OAuthError::Upstream {
                status: status.as_u16(),
                error: body
                    .get("error")
                    .and_then(|e| e.as_str())
                    .unwrap_or("unknown")
                    .to_owned(),
            });
        }
        let t: TokenAnswer = res.json().await?;
        Ok(AirtableGrant {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            access_expires: now() + t.expires_in.unwrap_or(3600),
            scope: t.scope.unwrap_or_default(),
        })
    }

    /// Exchange an authorization code (with our PKCE verifier).
    pub async fn exchange(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<AirtableGrant, OAuthError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        if self.client_secret.is_none() {
            form.push(("client_id", &self.client_id));
        }
        self.token_request(&form).await
    }

    /// Refresh (Airtable rotates the refresh token: the caller stores the answer before use).
    pub async fn refresh(&self, refresh_token: &str) -> Result<AirtableGrant, OAuthError> {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        if self.client_secret.is_none() {
            form.push(("client_id", &self.client_id));
        }
        self.token_request(&form).await
    }

    /// The user ID of an Airtable access token (`GET /v0/meta/whoami`).
    pub async fn whoami(&self, access_token: &str) -> Result<String, OAuthError> {
        #[derive(Deserialize)]
        struct Who {
            id: String,
        }
        let res = self
            .http
            .get(self.api_url.join("v0/meta/whoami")?)
            .bearer_auth(access_token)
            .send()
            .await?;
        let status = res.status();
        if !status.is_success() {
            return Err(OAuthError::Upstream {
                status: status.as_u16(),
                error: "whoami refused the new token".to_owned(),
            });
        }
        Ok(res.json::<Who>().await?.id)
    }
}
