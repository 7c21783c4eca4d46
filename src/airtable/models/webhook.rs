//! Webhooks: create, list, refresh, payloads (v0 payload format).
//!
//! Airtable adds keys without notice: nothing here denies unknown fields, and maps and arrays
//! default to empty.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `specification.options.filters` of a webhook.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookFilters {
    /// `tableData`, `tableFields`, `tableMetadata`.
    pub data_types: Vec<String>,
    /// A table (tbl…) or view (viw…) ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_change_scope: Option<String>,
    /// Only cell changes in these fields (IDs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_data_in_field_ids: Option<Vec<String>>,
}

/// `specification.options.includes` of a webhook.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookIncludes {
    /// Add `previous` cell values to changed records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_previous_cell_values: Option<bool>,
}

/// `specification.options`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookOptions {
    /// What produces payloads.
    pub filters: WebhookFilters,
    /// What payloads carry beyond the changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes: Option<WebhookIncludes>,
}

/// A webhook's specification (`{"options": …}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookSpec {
    /// The options.
    pub options: WebhookOptions,
}

/// Answer of a create: the secret is shown once (we never keep it: no notification URL).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWebhook {
    /// `ach…`.
    pub id: String,
    /// When it expires (ISO); None only for legacy API-key webhooks.
    #[serde(default)]
    pub expiration_time: Option<String>,
}

/// One webhook of a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// `ach…`.
    pub id: String,
    /// The cursor the next payload will get (1 for a fresh webhook).
    #[serde(default)]
    pub cursor_for_next_payload: u64,
    /// False once it expired or its specification became invalid.
    #[serde(default)]
    pub is_hook_enabled: bool,
    /// When it expires (ISO).
    #[serde(default)]
    pub expiration_time: Option<String>,
    /// Echoed specification.
    #[serde(default)]
    pub specification: Option<WebhookSpec>,
}

/// `GET …/webhooks`.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookList {
    /// Every webhook of the base this token may see.
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
}

/// One changed record's cells (`{"cellValuesByFieldId": {...}}`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CellValues {
    /// Cell values (webhook V2 format) by field ID.
    #[serde(default)]
    pub cell_values_by_field_id: BTreeMap<String, Value>,
}

/// A record created (`createdRecordsById`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedRecord {
    /// Its non-empty cells by field ID.
    #[serde(default)]
    pub cell_values_by_field_id: BTreeMap<String, Value>,
    /// When.
    #[serde(default)]
    pub created_time: Option<String>,
}

/// A record changed (`changedRecordsById`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChangedRecord {
    /// The changed cells, now.
    #[serde(default)]
    pub current: CellValues,
    /// The changed cells before (only with `includePreviousCellValues`).
    #[serde(default)]
    pub previous: Option<CellValues>,
}

/// What changed in one table (`changedTablesById`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableChanged {
    /// Created records.
    #[serde(default)]
    pub created_records_by_id: BTreeMap<String, CreatedRecord>,
    /// Changed records.
    #[serde(default)]
    pub changed_records_by_id: BTreeMap<String, ChangedRecord>,
    /// Deleted records.
    #[serde(default)]
    pub destroyed_record_ids: Vec<String>,
}

/// One payload (`payloadFormat` "v0"), or its error variant (`error: true`, `code`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    /// When the action happened (ISO).
    #[serde(default)]
    pub timestamp: String,
    /// The base transaction (shared by payloads split from one action).
    #[serde(default)]
    pub base_transaction_number: u64,
    /// `{source, sourceMetadata}`, kept as free JSON.
    #[serde(default)]
    pub action_metadata: Option<Value>,
    /// Changes per table.
    #[serde(default)]
    pub changed_tables_by_id: BTreeMap<String, TableChanged>,
    /// True on an error payload.
    #[serde(default)]
    pub error: bool,
    /// The error payload's code (`INVALID_HOOK`, `INVALID_FILTERS`, …).
    #[serde(default)]
    pub code: Option<String>,
}

/// `GET …/webhooks/{id}/payloads`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadPage {
    /// Payloads in cursor order.
    #[serde(default)]
    pub payloads: Vec<WebhookPayload>,
    /// The cursor after the last payload returned.
    pub cursor: u64,
    /// More may follow from `cursor`.
    #[serde(default)]
    pub might_have_more: bool,
}
