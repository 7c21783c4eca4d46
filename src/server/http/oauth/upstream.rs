//! The server's side of Airtable's OAuth (reference §9): the authorize URL, the token endpoint
//! (authorization code with PKCE, refresh with rotation) and whoami to learn whose grant it is.
//! The token requests go through `auth login --oauth`'s client ([`crate::auth::oauth`]).

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::OAuthError;
use super::store::AirtableGrant;

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

    /// Airtable's token endpoint through `auth login --oauth`'s client
    /// ([`crate::auth::oauth::server_token_request`]); only the tokens and expiry are kept.
    async fn token_request(&self, form: Vec<(&str, &str)>) -> Result<AirtableGrant, OAuthError> {
        let g = crate::auth::oauth::server_token_request(
            &self.http,
            self.oauth_url.join("oauth2/v1/token")?.as_str(),
            &self.client_id,
            self.client_secret.as_ref().map(|s| s.expose_secret()),
            form,
        )
        .await?;
        Ok(AirtableGrant {
            access_token: g.access_token,
            refresh_token: Some(g.refresh_token),
            access_expires: g.expires_at_ms / 1000,
            scope: g.scopes.join(" "),
        })
    }

    /// Exchange an authorization code (with our PKCE verifier).
    pub async fn exchange(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<AirtableGrant, OAuthError> {
        self.token_request(vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// Refresh (Airtable rotates the refresh token: the caller stores the answer before use).
    pub async fn refresh(&self, refresh_token: &str) -> Result<AirtableGrant, OAuthError> {
        self.token_request(vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
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
