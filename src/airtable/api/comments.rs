//! Record comments.

use reqwest::Method;

use serde_json::json;

use crate::airtable::client::{ApiRequest, Client};
use crate::airtable::error::Error;
use crate::airtable::ids::{BaseId, CommentId, RecordId};
use crate::airtable::models::{Comment, CommentPage};
use crate::airtable::pagination::records_path;

fn comments_path(base: &BaseId, table: &str, rec: &RecordId) -> String {
    format!("{}/{rec}/comments", records_path(base, table))
}

impl Client {
    /// `GET …/{recordId}/comments`: one page, newest first.
    pub async fn list_comments(
        &self,
        base: &BaseId,
        table: &str,
        rec: &RecordId,
        page_size: Option<u32>,
        offset: Option<String>,
    ) -> Result<CommentPage, Error> {
        let mut query = Vec::new();
        if let Some(n) = page_size {
            query.push(("pageSize".to_owned(), n.to_string()));
        }
        if let Some(o) = offset {
            query.push(("offset".to_owned(), o));
        }
        let mut page: CommentPage = self
            .send(
                ApiRequest::new(Method::GET, comments_path(base, table, rec), Some(base))
                    .query(query),
            )
            .await?;
        page.offset = page.offset.filter(|o| !o.is_empty());
        Ok(page)
    }

    /// `POST …/{recordId}/comments`.
    pub async fn create_comment(
        &self,
        base: &BaseId,
        table: &str,
        rec: &RecordId,
        text: &str,
    ) -> Result<Comment, Error> {
        self.send(
            ApiRequest::new(Method::POST, comments_path(base, table, rec), Some(base))
                .json(&json!({ "text": text }))?,
        )
        .await
    }

    /// `PATCH …/{recordId}/comments/{commentId}` (only the author's own comments).
    pub async fn update_comment(
        &self,
        base: &BaseId,
        table: &str,
        rec: &RecordId,
        comment: &CommentId,
        text: &str,
    ) -> Result<Comment, Error> {
        let path = format!("{}/{comment}", comments_path(base, table, rec));
        self.send(ApiRequest::new(Method::PATCH, path, Some(base)).json(&json!({ "text": text }))?)
            .await
    }

    /// `DELETE …/{recordId}/comments/{commentId}`.
    pub async fn delete_comment(
        &self,
        base: &BaseId,
        table: &str,
        rec: &RecordId,
        comment: &CommentId,
    ) -> Result<(), Error> {
        let path = format!("{}/{comment}", comments_path(base, table, rec));
        let _: serde_json::Value = self
            .send(ApiRequest::new(Method::DELETE, path, Some(base)))
            .await?;
        Ok(())
    }
}
