//! Serde models of the Airtable Web API (camelCase on the wire).
//!
//! Cell values and field options stay `serde_json::Value`: Airtable adds field types and
//! option properties without notice, and the client must pass them through unchanged.

mod base;
mod comment;
mod field;
mod raw_page;
mod record;
mod webhook;

pub use base::{
    BaseSchema, BaseSummary, CreateTable, PermissionLevel, Table, UpdateTable, View, WhoAmI,
};
pub use comment::{Comment, CommentAuthor, CommentPage};
pub use field::{CreateField, Field, FieldSpec, FieldType, UpdateField};
pub use raw_page::{RawCell, RawObject, RawRecord, RawRecordPage};
pub(crate) use raw_page::{is_plain, not_plain};
pub use record::{DeletedRecord, Fields, Record, RecordPage};
pub use webhook::{
    CellValues, ChangedRecord, CreatedRecord, CreatedWebhook, PayloadPage, TableChanged, Webhook,
    WebhookFilters, WebhookIncludes, WebhookList, WebhookOptions, WebhookPayload, WebhookSpec,
};
