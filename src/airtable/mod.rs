//! The Airtable Web API client. Knows nothing of MCP.
//!
//! - [`Client`]: one pooled HTTP client (rustls), a timeout on every request, the User-Agent
//!   `airtable-mcp/<version>`; [`Client::with_token`] shares pool, limiters and stats.
//! - Rate limits ([`rate_limit`]): 5 requests/s per base and 50/s per token, awaited before
//!   every attempt, retries included.
//! - Retries ([`retry`]): 429 waits for Retry-After (or 30 s); transient failures back off with
//!   full jitter for reads, updates and deletes; creates only when provably not applied.
//! - Pagination ([`Client::list_records`]): a stream of pages that stops at `max_records`.
//! - Batching ([`BatchOutcome`]): chunks of 10, in order, with a per-chunk report.
//!
//! See docs/ARCHITECTURE.md for the contract with the other layers.

pub(crate) mod api;
mod batch;
mod client;
mod error;
mod ids;
mod models;
mod pagination;
pub mod rate_limit;
pub mod retry;

pub use api::{Downloaded, MAX_PAYLOAD_PAGE, MAX_UPLOAD_BYTES};
pub use batch::{
    BatchFailure, BatchOutcome, CHUNK_SIZE, ChunkEvent, ChunkHook, ChunkReport, ChunkStatus,
    ProgressFn, RecordUpdate, UpdateMode, UpsertRecord, WriteOptions,
};
pub use client::{
    Client, ClientConfig, ClientStats, DEFAULT_API_URL, DEFAULT_CONTENT_URL, MAX_URL_LEN,
    TokenProvider, USER_AGENT, encode_segment,
};
pub use error::{ApiErrorKind, Error};
pub use ids::{BaseId, CommentId, FieldId, IdError, RecordId, TableId, UserId, ViewId};
pub use models::{
    BaseSchema, BaseSummary, Comment, CommentAuthor, CommentPage, CreateField, CreateTable,
    DeletedRecord, Field, FieldSpec, FieldType, Fields, PermissionLevel, RawCell, RawObject,
    RawRecord, RawRecordPage, Record, RecordPage, Table, UpdateField, UpdateTable, View, WhoAmI,
};
pub use models::{
    CellValues, ChangedRecord, CreatedRecord, CreatedWebhook, PayloadPage, TableChanged, Webhook,
    WebhookFilters, WebhookIncludes, WebhookList, WebhookOptions, WebhookPayload, WebhookSpec,
};
pub(crate) use models::{is_plain, not_plain};
pub use pagination::{CellFormat, GetOptions, ListQuery, Sort, SortDirection};
