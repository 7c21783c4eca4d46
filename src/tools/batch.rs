//! The batch runner: every multi-record write goes through [`ToolContext::run_batch`], which
//! sends the records (10 a request, in order, through the client), forwards progress to the MCP
//! client, and returns the client's per-record outcome. [`BatchWriteOutput::from_outcome`]
//! turns that outcome into the result the batch tools return: what was written, what failed
//! and why, what was not sent, and whether a failed write may have been applied.
//!
//! The record batch tools go through the write pipeline (`tools::writes`): they plan and
//! preview ([`BatchWriteOutput::dry_run`], [`preview_of`]), confirm, then
//! [`ToolContext::batch_tool`] sends the write and journals exactly the records Airtable
//! confirmed ([`JournalPlan`]).

use std::collections::HashSet;
use std::sync::Arc;

use rmcp::handler::server::common::schema_for_output;
use rmcp::model::CallToolResult;
use schemars::JsonSchema;
use serde::Serialize;

use crate::airtable::{
    BaseId, BatchOutcome, ChunkHook, Fields, RecordId, RecordUpdate, UpdateMode, UpsertRecord,
    WriteOptions,
};
use crate::tools::ToolError;
use crate::tools::context::ToolContext;
use crate::tools::journal::{Change, NewWrite};
use crate::tools::progress::Progress;
use crate::tools::result::{api_error_text, json_len, scope};
use crate::tools::writes::{JournalNote, PREVIEW_RECORDS, RecordPreview, WritePreview};

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
        self.run_batch_with(base, table, write, typecast, progress, label, None)
            .await
    }

    /// [`ToolContext::run_batch`] with a hook awaited before and after each request (the
    /// resumable create records its progress in the journal with it).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run_batch_with(
        &self,
        base: &BaseId,
        table: &str,
        write: BatchWrite,
        typecast: bool,
        progress: &mut Progress,
        label: &'static str,
        on_chunk: Option<ChunkHook>,
    ) -> Result<BatchOutcome, ToolError> {
        let client = self.client()?;
        let opts = WriteOptions {
            typecast,
            on_progress: progress.callback(label),
            cancel: progress.cancellation(),
            on_chunk,
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

    /// The whole batch tool, after planning and confirmation: run the write, journal what
    /// Airtable confirmed written (`plan`), and shape the outcome as the tool's result
    /// (structured; `isError` when the batch did not complete).
    pub(crate) async fn batch_tool(
        &self,
        base: &BaseId,
        table: &str,
        write: BatchWrite,
        typecast: bool,
        mut progress: Progress,
        plan: JournalPlan,
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
        let (changes, skipped) = plan.changes(table, &outcome);
        let ambiguous = outcome.failure.as_ref().is_some_and(|f| f.ambiguous);
        let mut out = BatchWriteOutput::from_outcome(verb, outcome, ids.as_deref(), base.as_ref());
        let journal = if changes.is_empty() {
            JournalNote::default()
        } else {
            let n = changes.len();
            let summary = if out.complete {
                format!("{label} {n} records in {}", plan.table_name)
            } else {
                format!(
                    "{label} {n} of {} records in {} (stopped part way)",
                    out.requested, plan.table_name
                )
            };
            self.journal_write(NewWrite {
                tool: plan.tool.to_owned(),
                base_id: base.to_string(),
                table_id: Some(table.to_owned()),
                table_name: Some(plan.table_name.clone()),
                summary,
                changes,
                complete: out.complete && skipped == 0,
                undo_of: None,
                resume: None,
            })
            .await
        };
        out.add_journal(journal, ambiguous, skipped);
        out.into_result()
    }
}

// ---------------------------------------------------------------------------------------------
// Journal and preview of the record batch tools

/// What a batch tool knows before sending, to journal what gets written: per input, the
/// fields it names and the before-image the plan read.
#[derive(Debug, Default)]
pub(crate) struct JournalPlan {
    /// The tool.
    pub(crate) tool: &'static str,
    /// The table's name, for people.
    pub(crate) table_name: String,
    /// Per input: the field names it writes (updates, upserts).
    pub(crate) names: Vec<Vec<String>>,
    /// Per input: updates, the named fields before the write (empty ones absent); deletes,
    /// every field of the record; upserts, Some for inputs planned as updates.
    pub(crate) befores: Vec<Option<Fields>>,
}

impl JournalPlan {
    /// The journal changes for what `outcome` confirms written, in input order, and how many
    /// written records could not be journaled (an upsert that updated a record the plan did
    /// not see: its before-image is unknown).
    fn changes(&self, table: &str, outcome: &BatchOutcome) -> (Vec<Change>, usize) {
        let table_id = table.to_owned();
        let mut out = Vec::new();
        let mut skipped = 0;
        if !outcome.deleted.is_empty() {
            for (i, id) in outcome.deleted.iter().enumerate() {
                out.push(Change::RecordDeleted {
                    table_id: table_id.clone(),
                    record_id: id.to_string(),
                    before: self.before(i).unwrap_or_default(),
                });
            }
            return (out, skipped);
        }
        let created: HashSet<&str> = outcome.created_ids.iter().map(|r| r.as_ref()).collect();
        let upsert = !outcome.created_ids.is_empty() || !outcome.updated_ids.is_empty();
        let mut seen: HashSet<&str> = HashSet::new();
        for (i, rec) in outcome.written.iter().enumerate() {
            let id = rec.id.as_ref();
            let first = seen.insert(id);
            let is_create = match self.tool {
                "batch_create_records" | "create_record" => true,
                _ => upsert && first && created.contains(id),
            };
            if is_create {
                out.push(Change::RecordCreated {
                    table_id: table_id.clone(),
                    record_id: id.to_owned(),
                    after: rec.fields.clone(),
                });
                continue;
            }
            let Some(before) = self.before(i) else {
                skipped += 1;
                continue;
            };
            let names = self.names.get(i).map(Vec::as_slice).unwrap_or_default();
            out.push(Change::RecordUpdated {
                table_id: table_id.clone(),
                record_id: id.to_owned(),
                before,
                after: pick(&rec.fields, names),
            });
        }
        (out, skipped)
    }

    fn before(&self, i: usize) -> Option<Fields> {
        self.befores.get(i).cloned().flatten()
    }
}

/// The `names` fields of `fields` that have a value.
pub(crate) fn pick(fields: &Fields, names: &[String]) -> Fields {
    names
        .iter()
        .filter_map(|n| {
            fields
                .get(n)
                .filter(|v| !v.is_null())
                .map(|v| (n.clone(), v.clone()))
        })
        .collect()
}

/// A preview of `records` (the first ones, within [`PREVIEW_RECORDS`] and half the result
/// budget). `record_count`: the records the call would create, change or delete.
pub(crate) fn preview_of(
    summary: String,
    record_count: usize,
    mut records: Vec<RecordPreview>,
    unchanged: usize,
    confirm_token: Option<String>,
    note: String,
    budget: usize,
) -> WritePreview {
    let mut used = 0usize;
    let mut keep = records.len().min(PREVIEW_RECORDS);
    for (i, r) in records.iter().enumerate().take(keep) {
        used += json_len(r) + 1;
        if used > budget / 2 && i > 0 {
            keep = i;
            break;
        }
    }
    let truncated = keep < records.len();
    records.truncate(keep);
    WritePreview {
        dry_run: true,
        summary,
        record_count,
        records,
        unchanged,
        truncated,
        confirm_token,
        note,
    }
}

/// Up to five labels of a write, for a confirmation.
pub(crate) fn sample(labels: impl IntoIterator<Item = String>) -> Vec<String> {
    labels.into_iter().take(5).collect()
}

/// A list of IDs for a message: the first ten, then how many more.
pub(crate) fn id_list(ids: &[String]) -> String {
    let mut s = ids.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
    if ids.len() > 10 {
        s.push_str(&format!(" and {} more", ids.len() - 10));
    }
    s
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

/// The outcome of a batch write, or (dry_run) what it would change.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct BatchWriteOutput {
    /// True when every record was written (false on dry_run: nothing was sent).
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
    /// dry_run only: exactly what the call would change. Nothing was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) preview: Option<WritePreview>,
    #[serde(flatten)]
    pub(crate) journal: JournalNote,
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
            if outcome.cancelled && !not_attempted.is_empty() {
                n.push_str(&format!(
                    " The call was cancelled: inputs {} were not sent (the request in flight when it was cancelled was completed). Resend only those to finish.",
                    range_text(&not_attempted)
                ));
            } else if !not_attempted.is_empty() {
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
            preview: None,
            journal: JournalNote::default(),
        }
    }

    /// The result of a dry run of `requested` inputs: nothing written, the preview.
    pub(crate) fn dry_run(requested: usize, preview: WritePreview) -> BatchWriteOutput {
        BatchWriteOutput {
            complete: false,
            requested,
            written: 0,
            written_ids: Vec::new(),
            created_ids: Vec::new(),
            updated_ids: Vec::new(),
            failed: Vec::new(),
            not_attempted: Vec::new(),
            note: preview.note.clone(),
            preview: Some(preview),
            journal: JournalNote::default(),
        }
    }

    /// Attach the journal note of the written records and say in `note` what it covers
    /// (`ambiguous`: the failed chunk may have been written; `skipped`: written records left
    /// out of the journal).
    pub(crate) fn add_journal(&mut self, journal: JournalNote, ambiguous: bool, skipped: usize) {
        if let Some(id) = &journal.write_id {
            if self.complete && skipped == 0 {
                self.note
                    .push_str(&format!(" Journaled as {id}: undo_write takes it back."));
            } else {
                self.note.push_str(&format!(
                    " The records confirmed written are journaled as {id} (undo_write takes them back)."
                ));
            }
            if ambiguous {
                self.note.push_str(&format!(
                    " The failed inputs that may have been written are NOT in {id}: if they were written, undo_write will not take them back."
                ));
            }
            if skipped > 0 {
                self.note.push_str(&format!(
                    " {skipped} updated record(s) were not journaled (Airtable matched a record the plan had not read): undo_write will not restore them."
                ));
            }
        }
        if journal.write_id.is_none() && journal.journal_warning.is_none() && ambiguous {
            self.note.push_str(
                " Nothing of this call is in the write journal: if the failed inputs were written, undo_write cannot take them back.",
            );
        }
        if let Some(w) = &journal.journal_warning {
            self.note.push(' ');
            self.note.push_str(w);
        }
        self.journal = journal;
    }

    /// Structured result; isError when the batch did not complete (a dry run is no error).
    pub(crate) fn into_result(self) -> Result<CallToolResult, ToolError> {
        let complete = self.complete || self.preview.is_some();
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
    let written = outcome.written.len() + outcome.deleted.len();
    if outcome.failure.is_none() && outcome.cancelled {
        return Some(format!(
            "{what}: the call was cancelled after {written} of {} records were written; the rest were not sent. Calling the tool again resumes (it re-plans from the current data).",
            outcome.requested
        ));
    }
    let failure = outcome.failure.as_ref()?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::airtable::{BatchFailure, ChunkReport, ChunkStatus, Error, Record};
    use serde_json::{Value, json};

    fn id(n: usize) -> RecordId {
        format!("rec{n:014}").parse().unwrap()
    }

    fn fields(v: Value) -> Fields {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn rec(n: usize, v: Value) -> Record {
        Record {
            id: id(n),
            created_time: String::new(),
            fields: fields(v),
            comment_count: None,
        }
    }

    fn outcome(
        requested: usize,
        written: Vec<Record>,
        failed_chunk: Option<usize>,
    ) -> BatchOutcome {
        let chunks = (0..requested.div_ceil(10))
            .map(|i| ChunkReport {
                index: i,
                inputs: i * 10..((i + 1) * 10).min(requested),
                status: match failed_chunk {
                    Some(f) if i == f => ChunkStatus::Failed,
                    Some(f) if i > f => ChunkStatus::NotAttempted,
                    _ => ChunkStatus::Written,
                },
            })
            .collect();
        BatchOutcome {
            requested,
            cancelled: false,
            written,
            deleted: Vec::new(),
            created_ids: Vec::new(),
            updated_ids: Vec::new(),
            chunks,
            failure: failed_chunk.map(|c| BatchFailure {
                chunk: c,
                input_indexes: (c * 10..((c + 1) * 10).min(requested)).collect(),
                error: Error::Timeout(std::time::Duration::from_secs(1)),
                ambiguous: true,
            }),
        }
    }

    #[test]
    fn a_partial_update_journals_exactly_the_confirmed_records() {
        let plan = JournalPlan {
            tool: "batch_update_records",
            table_name: "Tasks".into(),
            names: vec![vec!["Status".to_owned()]; 25],
            befores: (0..25)
                .map(|i| Some(fields(json!({"Status": format!("s{i}")}))))
                .collect(),
        };
        // Chunk 1 confirmed, chunk 2 failed (maybe applied), chunk 3 not sent.
        let written = (0..10)
            .map(|i| rec(i, json!({"Name": "n", "Status": "Done"})))
            .collect();
        let (changes, skipped) = plan.changes("tblT", &outcome(25, written, Some(1)));
        assert_eq!(skipped, 0);
        assert_eq!(changes.len(), 10);
        for (i, c) in changes.iter().enumerate() {
            assert_eq!(
                c,
                &Change::RecordUpdated {
                    table_id: "tblT".into(),
                    record_id: id(i).to_string(),
                    before: fields(json!({"Status": format!("s{i}")})),
                    after: fields(json!({"Status": "Done"})),
                }
            );
        }
        let mut out = BatchWriteOutput::from_outcome(
            "update",
            outcome(25, (0..10).map(|i| rec(i, json!({}))).collect(), Some(1)),
            None,
            "appX",
        );
        out.add_journal(
            JournalNote {
                write_id: Some("w1".into()),
                journal_warning: None,
            },
            true,
            0,
        );
        assert!(!out.complete);
        assert!(
            out.note.contains("confirmed written are journaled as w1")
                && out.note.contains("are NOT in w1"),
            "{}",
            out.note
        );
    }

    #[test]
    fn upserts_journal_creates_and_updates_with_before_images() {
        let plan = JournalPlan {
            tool: "batch_upsert_records",
            table_name: "Tasks".into(),
            names: vec![vec!["Name".to_owned(), "Status".to_owned()]; 4],
            befores: vec![
                None,
                Some(fields(json!({"Name": "b", "Status": "Todo"}))),
                Some(fields(json!({"Name": "a", "Status": "Todo"}))),
                None,
            ],
        };
        let mut o = outcome(
            4,
            vec![
                rec(1, json!({"Name": "a", "Status": "Done"})),
                rec(2, json!({"Name": "b", "Status": "Done", "Notes": "x"})),
                rec(1, json!({"Name": "a", "Status": "Done"})),
                rec(3, json!({"Name": "c"})),
            ],
            None,
        );
        o.created_ids = vec![id(1)];
        o.updated_ids = vec![id(2), id(1), id(3)];
        let (changes, skipped) = plan.changes("tblT", &o);
        // Input 3 updated a record the plan did not see: no before-image, not journaled.
        assert_eq!(skipped, 1);
        assert_eq!(
            changes,
            vec![
                Change::RecordCreated {
                    table_id: "tblT".into(),
                    record_id: id(1).to_string(),
                    after: fields(json!({"Name": "a", "Status": "Done"})),
                },
                Change::RecordUpdated {
                    table_id: "tblT".into(),
                    record_id: id(2).to_string(),
                    before: fields(json!({"Name": "b", "Status": "Todo"})),
                    after: fields(json!({"Name": "b", "Status": "Done"})),
                },
                Change::RecordUpdated {
                    table_id: "tblT".into(),
                    record_id: id(1).to_string(),
                    before: fields(json!({"Name": "a", "Status": "Todo"})),
                    after: fields(json!({"Name": "a", "Status": "Done"})),
                },
            ]
        );
    }

    #[test]
    fn deletes_journal_the_whole_records_read_before() {
        let plan = JournalPlan {
            tool: "batch_delete_records",
            table_name: "Tasks".into(),
            names: Vec::new(),
            befores: vec![
                Some(fields(json!({"Name": "a", "Done": true}))),
                Some(fields(json!({"Name": "b"}))),
            ],
        };
        let mut o = outcome(2, Vec::new(), None);
        o.deleted = vec![id(7), id(8)];
        let (changes, _) = plan.changes("tblT", &o);
        assert_eq!(
            changes[0],
            Change::RecordDeleted {
                table_id: "tblT".into(),
                record_id: id(7).to_string(),
                before: fields(json!({"Name": "a", "Done": true})),
            }
        );
        assert_eq!(changes.len(), 2);
    }

    #[test]
    fn previews_are_bounded_and_a_dry_run_is_no_error() {
        let records: Vec<RecordPreview> = (0..150)
            .map(|i| RecordPreview {
                action: "create",
                id: None,
                label: Some(format!("r{i}")),
                changes: Vec::new(),
                fields: Some(fields(json!({"Name": "x".repeat(50)}))),
            })
            .collect();
        let p = preview_of(
            "s".into(),
            150,
            records.clone(),
            0,
            None,
            "n".into(),
            1 << 20,
        );
        assert_eq!(p.records.len(), PREVIEW_RECORDS);
        assert!(p.truncated);
        let small = preview_of("s".into(), 150, records, 0, None, "n".into(), 2000);
        assert!(small.truncated && small.records.len() < 20 && !small.records.is_empty());
        let r = BatchWriteOutput::dry_run(150, small).into_result().unwrap();
        assert_ne!(r.is_error, Some(true));
    }
}
