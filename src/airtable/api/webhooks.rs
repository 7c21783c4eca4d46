//! Webhooks: create (no notification URL: we poll), list, refresh, delete, payloads.
//!
//! Every call goes through the one pipeline (limiter, retries, the `--read-only` choke point:
//! create, refresh and delete are POST/DELETE, so a read-only client refuses them). A create
//! is retried only when provably not applied (a retried create could leave a second webhook);
//! refresh and delete are idempotent.

use reqwest::Method;
use serde_json::json;

use crate::airtable::client::{ApiRequest, Client};
use crate::airtable::error::Error;
use crate::airtable::ids::BaseId;
use crate::airtable::models::{CreatedWebhook, PayloadPage, WebhookList, WebhookSpec};
use crate::airtable::retry::RetryClass;

/// Most payloads Airtable returns per page.
pub const MAX_PAYLOAD_PAGE: u32 = 50;

fn hooks_path(base: &BaseId) -> String {
    format!("/v0/bases/{base}/webhooks")
}

fn hook_path(base: &BaseId, id: &str) -> String {
    format!(
        "{}/{}",
        hooks_path(base),
        crate::airtable::client::encode_segment(id)
    )
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Refreshed {
    #[serde(default)]
    expiration_time: Option<String>,
}

impl Client {
    /// `POST /v0/bases/{base}/webhooks` without a notification URL. Retried only when
    /// provably not applied.
    pub async fn create_webhook(
        &self,
        base: &BaseId,
        spec: &WebhookSpec,
    ) -> Result<CreatedWebhook, Error> {
        self.send(
            ApiRequest::new(Method::POST, hooks_path(base), Some(base))
                .json(&json!({ "specification": spec }))?,
        )
        .await
    }

    /// `GET /v0/bases/{base}/webhooks` (no pagination).
    pub async fn list_webhooks(&self, base: &BaseId) -> Result<WebhookList, Error> {
        self.send(ApiRequest::new(Method::GET, hooks_path(base), Some(base)))
            .await
    }

    /// `POST …/webhooks/{id}/refresh`: the new expiration time (now + 7 days). Idempotent.
    pub async fn refresh_webhook(&self, base: &BaseId, id: &str) -> Result<Option<String>, Error> {
        let path = format!("{}/refresh", hook_path(base, id));
        let r: Refreshed = self
            .send(ApiRequest::new(Method::POST, path, Some(base)).class(RetryClass::Idempotent))
            .await?;
        Ok(r.expiration_time)
    }

    /// `DELETE …/webhooks/{id}`.
    pub async fn delete_webhook(&self, base: &BaseId, id: &str) -> Result<(), Error> {
        let _: serde_json::Value = self
            .send(ApiRequest::new(
                Method::DELETE,
                hook_path(base, id),
                Some(base),
            ))
            .await?;
        Ok(())
    }

    /// `GET …/webhooks/{id}/payloads?cursor=&limit=`: one page (at most
    /// [`MAX_PAYLOAD_PAGE`]). Follow `cursor` while `might_have_more` and the page is not empty.
    pub async fn list_webhook_payloads(
        &self,
        base: &BaseId,
        id: &str,
        cursor: u64,
        limit: Option<u32>,
    ) -> Result<PayloadPage, Error> {
        let path = format!("{}/payloads", hook_path(base, id));
        let mut query = vec![("cursor".to_owned(), cursor.max(1).to_string())];
        if let Some(l) = limit {
            query.push(("limit".to_owned(), l.clamp(1, MAX_PAYLOAD_PAGE).to_string()));
        }
        self.send(ApiRequest::new(Method::GET, path, Some(base)).query(query))
            .await
    }
}
