//! Records.

use serde::{Deserialize, Serialize};

use crate::airtable::ids::RecordId;

/// Cell values by field name (or ID); values stay JSON.
pub type Fields = serde_json::Map<String, serde_json::Value>;

/// A record as every read and write returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Record ID.
    pub id: RecordId,
    /// ISO-8601 UTC creation time, e.g. `2022-09-12T21:03:48.000Z`.
    #[serde(default)]
    pub created_time: String,
    /// Non-empty cells (Airtable omits empty ones).
    #[serde(default)]
    pub fields: Fields,
    /// Number of comments, with `recordMetadata=["commentCount"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_count: Option<u64>,
}

/// One page of a record listing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RecordPage {
    /// Records in this page.
    pub records: Vec<Record>,
    /// Cursor for the next page; `None` on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
}

/// Answer to a delete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletedRecord {
    /// The deleted record.
    pub id: RecordId,
    /// Always true on success.
    pub deleted: bool,
}
