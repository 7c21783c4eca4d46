//! whoami, list bases, base schema.

use reqwest::Method;
use serde::Deserialize;

use crate::airtable::client::{ApiRequest, Client};
use crate::airtable::error::Error;
use crate::airtable::ids::BaseId;
use crate::airtable::models::{BaseSchema, BaseSummary, WhoAmI};

#[derive(Deserialize)]
struct BasesPage {
    #[serde(default)]
    bases: Vec<BaseSummary>,
    #[serde(default)]
    offset: Option<String>,
}

/// Upper bound on base pages (1000 bases each), against a server that never stops paging.
const MAX_BASE_PAGES: usize = 1000;

impl Client {
    /// `GET /v0/meta/whoami`: the user the token belongs to.
    pub async fn whoami(&self) -> Result<WhoAmI, Error> {
        self.send(ApiRequest::new(Method::GET, "/v0/meta/whoami".into(), None))
            .await
    }

    /// `GET /v0/meta/bases`, following every page.
    pub async fn list_bases(&self) -> Result<Vec<BaseSummary>, Error> {
        let mut out = Vec::new();
        let mut offset: Option<String> = None;
        for _ in 0..MAX_BASE_PAGES {
            let query = offset
                .take()
                .map(|o| vec![("offset".to_owned(), o)])
                .unwrap_or_default();
            let page: BasesPage = self
                .send(ApiRequest::new(Method::GET, "/v0/meta/bases".into(), None).query(query))
                .await?;
            out.extend(page.bases);
            match page.offset.filter(|o| !o.is_empty()) {
                Some(o) => offset = Some(o),
                None => return Ok(out),
            }
        }
        Ok(out)
    }

    /// `GET /v0/meta/bases/{baseId}/tables`: tables, fields and views.
    pub async fn base_schema(&self, base: &BaseId) -> Result<BaseSchema, Error> {
        self.send(ApiRequest::new(
            Method::GET,
            format!("/v0/meta/bases/{base}/tables"),
            Some(base),
        ))
        .await
    }
}
