//! The batch runner: every multi-record write goes through [`ToolContext::run_batch`], which
//! sends the records (10 a request, in order, through the client), forwards progress to the MCP
//! client, and returns the client's per-record outcome. [`BatchWriteOutput::from_outcome`]
//! turns that outcome into the result the batch tools return: what was written, what failed
//! and why, what was not sent, and whether a failed write may have been applied.

use std::sync::Arc;

use rmcp::handler::server::common::schema_for_output;
use rmcp::model::CallToolResult;
use schemars::JsonSchema;
use serde::Serialize;

use crate::airtable::{
    BaseId, BatchOutcome, Fields, RecordId, RecordUpdate, UpdateMode, UpsertRecord, WriteOptions,
};
use crate::tools::ToolError;
use crate::tools::context::ToolContext;
use crate::tools::progress::Progress;
use crate::tools::result::{api_error_text, scope};

/// One batch write: the records and what to do with them.
pub(crate) enum BatchWrite {
    /// Create these records.
    Create(Vec<Fields>),
    /// Patch these records (other fields unchanged).
    Update(Vec<RecordUpdate>),
    /// Delete these records.
    Delete(Vec<RecordId>),
    /// Create or update records matched on `merge_on` (field names).
    Upsert {
        records: Vec<UpsertRecord>,
        merge_on: Vec<String>,
    },
}

impl BatchWrite {
    /// The verb used in results ("create", "update", "delete", "upsert").
    pub(crate) fn verb(&self) -> &'static str {
        match self {
            BatchWrite::Create(_) => "create",
            BatchWrite::Update(_) => "update",
            BatchWrite::Delete(_) => "delete",
            BatchWrite::Upsert { .. } => "upsert",
        }
    }

    /// The record ID of each input, when the inputs name records (updates, deletes).
    pub(crate) fn input_ids(&self) -> Option<Vec<String>> {
        match self {
            BatchWrite::Update(u) => Some(u.iter().map(|r| r.id.to_string()).collect()),
            BatchWrite::Delete(ids) => Some(ids.iter().map(|r| r.to_string()).collect()),
            BatchWrite::Create(_) | BatchWrite::Upsert { .. } => None,
        }
    }
}

impl ToolContext {
    /// Send one batch write to `table` (10 records a request, in order; the client stops at the
    /// first failed request), reporting `label: done of total records` as progress. Returns the
    /// per-record outcome; the progress notifications are all sent when this returns.
    pub(crate) async fn run_batch(
        &self,
        base: &BaseId,
        table: &str,
        write: BatchWrite,
        typecast: bool,
        progress: &mut Progress,
        label: &'static str,
    ) -> Result<BatchOutcome, ToolError> {
        let client = self.client()?;
        let opts = WriteOptions {
            typecast,
            on_progress: progress.callback(label),
            ..WriteOptions::default()
        };
        let outcome = match write {
            BatchWrite::Create(records) => client.create_records(base, table, records, &opts).await,
            BatchWrite::Update(updates) => {
                client
                    .update_records(base, table, updates, UpdateMode::Patch, &opts)
                    .await
            }
            BatchWrite::Delete(ids) => client.delete_records(base, table, ids, &opts).await,
            BatchWrite::Upsert { records, merge_on } => {
                client
                    .upsert_records(base, table, records, merge_on, UpdateMode::Patch, &opts)
                    .await
            }
        };
        drop(opts);
        progress.flush().await;
        Ok(outcome)
    }

    /// The whole batch tool: run the write and shape its outcome as the tool's result
    /// (structured; `isError` when the batch did not complete).
    pub(crate) async fn batch_tool(
        &self,
        base: &BaseId,
        table: &str,
        write: BatchWrite,
        typecast: bool,
        mut progress: Progress,
    ) -> Result<CallToolResult, ToolError> {
        let verb = write.verb();
        let ids = write.input_ids();
        let label = match verb {
            "create" => "created",
            "update" => "updated",
            "delete" => "deleted",
            _ => "upserted",
        };
        let outcome = self
            .run_batch(base, table, write, typecast, &mut progress, label)
            .await?;
        BatchWriteOutput::from_outcome(verb, outcome, ids.as_deref(), base.as_ref()).into_result()
    }
}

/// An input record that was not written.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct FailedItem {
    /// Position in the input list (0-based).
    pub(crate) index: usize,
    /// Record ID, for updates and deletes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    /// Why it failed, and the fix.
    pub(crate) error: String,
    /// True when the outcome is unknown: Airtable may have written it. Check before resending.
    pub(crate) may_have_been_written: bool,
}

/// The outcome of a batch write.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct BatchWriteOutput {
    /// True when every record was written.
    pub(crate) complete: bool,
    /// Records given.
    pub(crate) requested: usize,
    /// Records written (created, updated or deleted) — the first `written` inputs, in order.
    pub(crate) written: usize,
    /// IDs of the written records, in input order (input i ↔ written_ids[i]).
    pub(crate) written_ids: Vec<String>,
    /// For upserts: IDs of records created.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) created_ids: Vec<String>,
    /// For upserts: IDs of existing records updated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) updated_ids: Vec<String>,
    /// Inputs of the failed chunk, with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) failed: Vec<FailedItem>,
    /// Inputs (0-based positions) not sent because an earlier chunk failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) not_attempted: Vec<usize>,
    /// A summary of what happened and what to do next.
    pub(crate) note: String,
}

fn range_text(v: &[usize]) -> String {
    match (v.first(), v.last()) {
        (Some(a), Some(b)) if a == b => format!("{a}"),
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => String::new(),
    }
}

impl BatchWriteOutput {
    /// Per-record outcome of a batch `verb` (ids: the record ID of each input, for updates
    /// and deletes).
    pub(crate) fn from_outcome(
        verb: &str,
        outcome: BatchOutcome,
        ids: Option<&[String]>,
        base: &str,
    ) -> BatchWriteOutput {
        let requested = outcome.requested;
        let mut written_ids: Vec<String> = if outcome.deleted.is_empty() {
            outcome.written.iter().map(|r| r.id.to_string()).collect()
        } else {
            outcome.deleted.iter().map(|r| r.to_string()).collect()
        };
        written_ids.truncate(requested);
        let written = written_ids.len();
        let mut failed = Vec::new();
        let mut failed_idx: Vec<usize> = Vec::new();
        let mut ambiguous = false;
        let mut error_text = String::new();
        if let Some(f) = &outcome.failure {
            ambiguous = f.ambiguous;
            error_text = api_error_text(verb, Some(base), scope::RECORDS_WRITE, &f.error);
            failed_idx = f.input_indexes.clone();
            for &i in &failed_idx {
                failed.push(FailedItem {
                    index: i,
                    id: ids.and_then(|ids| ids.get(i).cloned()),
                    error: error_text.clone(),
                    may_have_been_written: f.ambiguous,
                });
            }
        }
        let last_failed = failed_idx.last().copied();
        let not_attempted: Vec<usize> = match last_failed {
            Some(l) => (l + 1..requested).collect(),
            None if written < requested => (written..requested).collect(),
            None => Vec::new(),
        };
        let complete = outcome.failure.is_none() && written == requested;
        let note = if complete {
            format!("All {requested} records were {verb}d.")
        } else {
            let mut n = format!(
                "{written} of {requested} records were {verb}d{}.",
                if written > 0 {
                    format!(" (inputs 0-{})", written - 1)
                } else {
                    String::new()
                }
            );
            if !failed_idx.is_empty() {
                n.push_str(&format!(
                    " Inputs {} failed: {error_text}",
                    range_text(&failed_idx)
                ));
            }
            if ambiguous {
                n.push_str(" The failed inputs MAY have been written (the connection broke after sending): check the table (e.g. search_records) before sending them again, to avoid duplicates.");
            }
            if !not_attempted.is_empty() {
                n.push_str(&format!(
                    " Inputs {} were not sent. Fix the problem, then resend only the failed and unsent inputs.",
                    range_text(&not_attempted)
                ));
            }
            n
        };
        BatchWriteOutput {
            complete,
            requested,
            written,
            written_ids,
            created_ids: outcome.created_ids.iter().map(|r| r.to_string()).collect(),
            updated_ids: outcome.updated_ids.iter().map(|r| r.to_string()).collect(),
            failed,
            not_attempted,
            note,
        }
    }

    /// Structured result; isError when the batch did not complete.
    pub(crate) fn into_result(self) -> Result<CallToolResult, ToolError> {
        let complete = self.complete;
        let value = serde_json::to_value(&self).map_err(ToolError::Render)?;
        Ok(if complete {
            CallToolResult::structured(value)
        } else {
            CallToolResult::structured_error(value)
        })
    }
}

/// The output schema of the batch tools.
pub(crate) fn batch_schema() -> Arc<rmcp::model::JsonObject> {
    schema_for_output::<BatchWriteOutput>()
}

/// A batch failure in words for tools that write several batches (metadata, sync): what
/// failed, what was written, and what to do.
pub(crate) fn failure_text(what: &str, outcome: &BatchOutcome) -> Option<String> {
    let failure = outcome.failure.as_ref()?;
    let written = outcome.written.len() + outcome.deleted.len();
    let ambiguous = if failure.ambiguous {
        " The failed request may have been applied: check those records before retrying."
    } else {
        ""
    };
    Some(format!(
        "{what}: {written} of {} written, then a request failed: {}.{ambiguous} Calling the tool again resumes (it re-plans from the current data).",
        outcome.requested, failure.error
    ))
}
