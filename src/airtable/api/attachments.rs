//! Attachments: Airtable's uploadAttachment (content API) and downloads of attachment URLs.

use base64::Engine as _;
use reqwest::Method;
use serde_json::json;

use crate::airtable::client::{ApiRequest, Client, encode_segment};
use crate::airtable::error::Error;
use crate::airtable::ids::{BaseId, RecordId};
use crate::airtable::models::Record;

/// The largest file uploadAttachment takes (decoded bytes; "5 MB", counted as 5 MiB).
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;

/// A downloaded attachment file.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The `Content-Type` the host answered, if any.
    pub content_type: Option<String>,
}

impl Client {
    /// `POST {content}/v0/{baseId}/{recordId}/{field}/uploadAttachment`: append one file (at
    /// most [`MAX_UPLOAD_BYTES`]) to an attachment field. `field` is a field ID or name. The
    /// answer holds only that field, keyed by field ID, with every attachment (the new one
    /// last). Goes through the same limiter, retries (a create: not retried unless provably not
    /// applied) and read-only check as every write.
    pub async fn upload_attachment(
        &self,
        base: &BaseId,
        rec: &RecordId,
        field: &str,
        content_type: &str,
        filename: &str,
        bytes: &[u8],
    ) -> Result<Record, Error> {
        if bytes.len() > MAX_UPLOAD_BYTES {
            return Err(Error::Config(format!(
                "the file has {} bytes; uploadAttachment takes at most {MAX_UPLOAD_BYTES} (5 MB): attach larger files by URL",
                bytes.len()
            )));
        }
        let path = format!(
            "/v0/{base}/{rec}/{}/uploadAttachment",
            encode_segment(field)
        );
        let body = json!({
            "contentType": content_type,
            "file": base64::engine::general_purpose::STANDARD.encode(bytes),
            "filename": filename,
        });
        self.send(
            ApiRequest::new(Method::POST, path, Some(base))
                .content_host()
                .json(&body)?,
        )
        .await
    }

    /// GET an attachment URL (http or https only), streaming, refusing more than `max_bytes`.
    /// Sends no token (attachment URLs are signed; the token never goes to another host) and
    /// does not count against the API's rate limits.
    pub async fn download(&self, url: &str, max_bytes: u64) -> Result<Downloaded, Error> {
        let fail = |detail: String, status: Option<u16>| Error::Download { detail, status };
        let parsed = url::Url::parse(url).map_err(|e| fail(format!("bad URL: {e}"), None))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(fail(
                format!("only http(s) URLs are downloaded, not {}", parsed.scheme()),
                None,
            ));
        }
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let mut resp = self
            .http()?
            .get(parsed)
            .send()
            .await
            .map_err(|e| fail(format!("{host}: {}", without_url(&e)), None))?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            let why = match status {
                403 | 410 => " (the URL has expired or was altered)",
                _ => "",
            };
            return Err(fail(
                format!("{host} answered HTTP {status}{why}"),
                Some(status),
            ));
        }
        if let Some(n) = resp.content_length()
            && n > max_bytes
        {
            return Err(fail(
                format!("the file has {n} bytes, over the limit of {max_bytes}"),
                Some(status),
            ));
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut bytes = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| fail(format!("{host}: {}", without_url(&e)), Some(status)))?
        {
            if (bytes.len() + chunk.len()) as u64 > max_bytes {
                return Err(fail(
                    format!("the file is over the limit of {max_bytes} bytes"),
                    Some(status),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Downloaded {
            bytes,
            content_type,
        })
    }
}

/// A reqwest error without its URL (attachment URLs carry signatures).
fn without_url(e: &reqwest::Error) -> String {
    let mut detail = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "the transfer failed".to_owned()
    };
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let part = s.to_string();
        if !detail.contains(&part) {
            detail.push_str(": ");
            detail.push_str(&part);
        }
        src = s.source();
    }
    detail
}
