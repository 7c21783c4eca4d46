//! Crash-safe batch creates (issue #11): `batch_create_records` (and a key-less
//! `import_records`) records its progress in the write journal before and after each request
//! (chunk of 10). If the call did not complete, the same call again (same principal, base,
//! table, records and typecast) takes its entry up, keeps the chunks confirmed written, reads
//! back the chunk that was in flight (records created since the call began whose fields equal
//! its inputs) and sends only what is missing, so no record is written twice. That holds
//! whichever way the call ended: killed (the entry is pending), an ambiguous failure (kept
//! pending), or a definite failure or cancel (finished incomplete: the entry is reopened, its
//! confirmed changes becoming chunk rows again; issue #14). A complete call, or one undone, is
//! not taken up: the same call after it starts afresh.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use rmcp::model::CallToolResult;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::airtable::{
    BaseId, BatchFailure, BatchOutcome, ChunkEvent, ChunkHook, ChunkReport, ChunkStatus, Fields,
    ListQuery, Record, RecordId,
};
use crate::formula;
use crate::tools::ToolError;
use crate::tools::batch::{BatchWrite, BatchWriteOutput, JournalPlan};
use crate::tools::context::{PageReport, ToolContext};
use crate::tools::journal::{Change, Journal, NewWrite, Resume};
use crate::tools::progress::Progress;
use crate::tools::writes::same_value;

/// Records created up to this long before the call began still count as its own when reading
/// back (the server's and Airtable's clocks may differ).
const CLOCK_MARGIN_MS: i64 = 5 * 60 * 1000;

/// Calls running in this process, by fingerprint: a pending entry of a running call is not a
/// crashed one and is not resumed by a concurrent identical call.
fn running() -> &'static Mutex<HashSet<String>> {
    static RUNNING: std::sync::OnceLock<Mutex<HashSet<String>>> = std::sync::OnceLock::new();
    RUNNING.get_or_init(|| Mutex::new(HashSet::new()))
}

struct Running(String);

impl Running {
    /// Mark the call `key` as running in this process; `None` when it already is.
    fn claim(key: &str) -> Result<Option<Running>, ToolError> {
        let mut set = running()
            .lock()
            .map_err(|_| ToolError::Invalid("internal lock poisoned".into()))?;
        Ok(set.insert(key.to_owned()).then(|| Running(key.to_owned())))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(mut set) = running().lock() {
            set.remove(&self.0);
        }
    }
}

/// The fingerprint of a create call.
fn fingerprint(base: &BaseId, table: &str, typecast: bool, records: &[Fields]) -> String {
    let mut h = Sha256::new();
    h.update(base.as_ref().as_bytes());
    h.update([0]);
    h.update(table.as_bytes());
    h.update([u8::from(typecast)]);
    for r in records {
        h.update(serde_json::to_string(r).unwrap_or_default().as_bytes());
        h.update([0]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a stored record holds an input's values (attachments by count: their objects
/// change; typecast inputs by text).
fn holds(record: &Fields, input: &Fields) -> bool {
    input.iter().all(|(k, want)| {
        let got = record.get(k).unwrap_or(&Value::Null);
        if same_value(want, got) {
            return true;
        }
        match (want, got) {
            (Value::Array(a), Value::Array(b)) if a.iter().all(|x| x.get("url").is_some()) => {
                a.len() == b.len()
            }
            (Value::String(a), b) => a == &b.to_string() || Some(a.as_str()) == b.as_str(),
            (a, Value::String(b)) => &a.to_string() == b,
            _ => false,
        }
    })
}

impl ToolContext {
    /// batch_create_records, crash-safe (module docs). Without a journal: a plain batch.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn resumable_create(
        &self,
        base: &BaseId,
        table: &str,
        records: Vec<Fields>,
        typecast: bool,
        progress: Progress,
        plan: JournalPlan,
    ) -> Result<CallToolResult, ToolError> {
        // Resumable only with a journal, and only when no identical call runs in this process
        // (its pending entry is not a crashed one); otherwise a plain batch.
        let claim = match self.journal() {
            Ok(Some(j)) => {
                let key = fingerprint(base, table, typecast, &records);
                Running::claim(&key)?.map(|guard| (j.clone(), key, guard))
            }
            _ => None,
        };
        let Some((journal, key, _running)) = claim else {
            return self
                .batch_tool(
                    base,
                    table,
                    BatchWrite::Create(records),
                    typecast,
                    progress,
                    plan,
                )
                .await;
        };
        let principal = self.principal().to_owned();
        let found = match journal.find_resumable(&principal, &key).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!("no earlier call looked up in the journal: {e}");
                None
            }
        };
        let n = records.len();
        let (entry_id, mut write, resumed_note) = match found {
            // Interrupted (a crash, or an ambiguous failure): its progress is in its chunk rows.
            Some(entry) if entry.pending => (entry.id, entry.write, Some("interrupted")),
            // Stopped part way (a definite failure, a cancel): its changes are the confirmed
            // chunks; make them chunk rows again and resume like an interrupted call.
            Some(entry) => {
                let Some(chunks) = confirmed_chunks(&entry.write.changes, n) else {
                    return Err(ToolError::Invalid(format!(
                        "This call stopped part way earlier (journal entry {}), and its journaled records do not line up with its requests, so it cannot be resumed safely. Nothing was sent. Undo it with undo_write and send the records again, or send only the missing records in a new call.",
                        entry.id
                    )));
                };
                if !journal.reopen(&principal, &entry.id, chunks).await? {
                    return Err(ToolError::Invalid(format!(
                        "This call stopped part way earlier (journal entry {}), and that entry changed while this call started (another process is resuming it, or it was undone). Nothing was sent. Call again.",
                        entry.id
                    )));
                }
                (entry.id, entry.write, Some("stopped part way"))
            }
            None => {
                let write = NewWrite {
                    tool: plan.tool.to_owned(),
                    base_id: base.to_string(),
                    table_id: Some(table.to_owned()),
                    table_name: Some(plan.table_name.clone()),
                    summary: format!("creating {n} records in {}", plan.table_name),
                    changes: Vec::new(),
                    complete: false,
                    undo_of: None,
                    resume: Some(Resume {
                        key: key.clone(),
                        since_ms: chrono::Utc::now().timestamp_millis() - CLOCK_MARGIN_MS,
                    }),
                };
                let id = journal.begin(&principal, write.clone()).await?;
                (id, write, None)
            }
        };
        let Some(resume) = write.resume.clone() else {
            return Err(ToolError::Invalid(
                "a pending entry without progress".into(),
            ));
        };
        // What the earlier call recorded, request by request: the chunks confirmed written
        // (in order from the first), then possibly one sent but not confirmed. The changes are
        // rebuilt from them (a taken-up entry's body still lists its confirmed records).
        let recorded = if resumed_note.is_some() {
            journal.chunks(&entry_id).await?
        } else {
            Vec::new()
        };
        write.changes.clear();
        let mut chunks_done = 0;
        let mut in_flight = None;
        for (idx, changes) in recorded {
            if idx != chunks_done {
                break;
            }
            match changes {
                Some(c) => {
                    write.changes.extend(c);
                    chunks_done += 1;
                }
                None => {
                    in_flight = Some(idx);
                    break;
                }
            }
        }
        // Records already written by the interrupted call, in input order.
        let mut prior: Vec<Record> = write
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::RecordCreated {
                    record_id, after, ..
                } => record_id.parse::<RecordId>().ok().map(|id| Record {
                    id,
                    created_time: String::new(),
                    fields: after.clone(),
                    comment_count: None,
                }),
                _ => None,
            })
            .collect();
        let confirmed_before = prior.len();
        let mut start_chunk = chunks_done;
        let mut requests = 0usize;
        if let Some(k) = in_flight {
            // The chunk sent before the crash: written or not? Read back what was created since.
            let inputs = &records[(k * 10).min(n)..((k + 1) * 10).min(n)];
            let known: HashSet<String> = prior.iter().map(|r| r.id.to_string()).collect();
            let since = chrono::DateTime::from_timestamp_millis(resume.since_ms)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let query = ListQuery {
                filter_by_formula: Some(format!(
                    "IS_AFTER(CREATED_TIME(), DATETIME_PARSE({}))",
                    formula::string_literal(&since)
                )),
                ..ListQuery::default()
            };
            let read = self
                .read_records(
                    base,
                    table,
                    query,
                    100_000,
                    PageReport::between_pages(
                        &Progress::disabled(),
                        "checking the interrupted call",
                    ),
                )
                .await?;
            requests += read.records.len().div_ceil(100).max(1);
            let mut used: HashSet<String> = known;
            let mut matched = Vec::new();
            for input in inputs {
                if let Some(r) = read
                    .records
                    .iter()
                    .find(|r| !used.contains(r.id.as_ref()) && holds(&r.fields, input))
                {
                    used.insert(r.id.to_string());
                    matched.push(r.clone());
                }
            }
            if matched.len() == inputs.len() {
                let found: Vec<Change> = matched
                    .iter()
                    .map(|r| Change::RecordCreated {
                        table_id: table.to_owned(),
                        record_id: r.id.to_string(),
                        after: r.fields.clone(),
                    })
                    .collect();
                journal.chunk_written(&entry_id, k, &found).await?;
                write.changes.extend(found);
                prior.extend(matched);
                start_chunk = k + 1;
            } else if !matched.is_empty() {
                return Err(ToolError::Invalid(format!(
                    "This call was interrupted earlier (journal entry {entry_id}) while records {}-{} were being sent, and only {} of them can be found in the table: they may have been changed since. Nothing was sent. Check the table, then send the missing records in a new call.",
                    k * 10,
                    (k * 10 + inputs.len()).saturating_sub(1),
                    matched.len()
                )));
            }
        }
        let resumed_note = resumed_note.map(|how| {
            format!(
                "Resumed the call {entry_id}, which {how} earlier: {} record(s) were already written ({} confirmed then, {} found by reading back, {requests} request(s)); only the rest were sent.",
                prior.len(),
                confirmed_before,
                prior.len() - confirmed_before,
            )
        });

        // Send the rest, recording each chunk before and after.
        let offset = start_chunk * 10;
        let rest: Vec<Fields> = records.iter().skip(offset).cloned().collect();
        let state = Arc::new(tokio::sync::Mutex::new(write));
        let hook: ChunkHook = {
            let (journal, entry_id, state, table) = (
                journal.clone(),
                entry_id.clone(),
                state.clone(),
                table.to_owned(),
            );
            Arc::new(move |event: ChunkEvent<'_>| {
                let update = match event {
                    ChunkEvent::Sending { index } => Err(index),
                    ChunkEvent::Written { index, records } => Ok((
                        index,
                        records
                            .iter()
                            .map(|r| Change::RecordCreated {
                                table_id: table.clone(),
                                record_id: r.id.to_string(),
                                after: r.fields.clone(),
                            })
                            .collect::<Vec<_>>(),
                    )),
                };
                let (journal, entry_id, state): (Arc<Journal>, _, _) =
                    (journal.clone(), entry_id.clone(), state.clone());
                Box::pin(async move {
                    let recorded = match update {
                        Err(index) => journal.chunk_sending(&entry_id, start_chunk + index).await,
                        Ok((index, changes)) => {
                            let r = journal
                                .chunk_written(&entry_id, start_chunk + index, &changes)
                                .await;
                            state.lock().await.changes.extend(changes);
                            r
                        }
                    };
                    if let Err(e) = recorded {
                        tracing::warn!("batch progress not journaled: {e}");
                    }
                })
            })
        };
        let mut progress = progress;
        let outcome = if rest.is_empty() {
            None
        } else {
            Some(
                self.run_batch_with(
                    base,
                    table,
                    BatchWrite::Create(rest),
                    typecast,
                    &mut progress,
                    "created",
                    Some(hook),
                )
                .await?,
            )
        };
        let write = state.lock().await.clone();

        // The whole call's outcome: the prior chunks, then this run's.
        let merged = merge(n, offset, prior, outcome);
        let complete = merged.failure.is_none() && !merged.cancelled;
        let ambiguous = merged.failure.as_ref().is_some_and(|f| f.ambiguous);
        let mut out = BatchWriteOutput::from_outcome("create", merged, None, base.as_ref());
        let written = write.changes.len();
        let again = again(plan.tool);
        if ambiguous {
            // The failed request may have been applied: keep the entry pending, so that the
            // same call resumes and reads that chunk back instead of writing it twice.
            out.note.push_str(&format!(
                " {again} to finish: it resumes this call (journal entry {entry_id}, pending), reads the uncertain records back and sends only what is missing."
            ));
        } else if written == 0 {
            if let Err(e) = journal.discard(&principal, &entry_id).await {
                tracing::warn!("empty pending entry not dropped: {e}");
            }
        } else {
            let note = self
                .journal_finish(
                    crate::tools::undo::PendingWrite {
                        id: Some(entry_id.clone()),
                        write: NewWrite {
                            summary: if complete {
                                format!("created {written} records in {}", plan.table_name)
                            } else {
                                format!(
                                    "created {written} of {n} records in {} (stopped part way)",
                                    plan.table_name
                                )
                            },
                            resume: None,
                            ..write.clone()
                        },
                    },
                    write.changes,
                    complete,
                )
                .await;
            let resumable = !complete && note.write_id.is_some();
            out.add_journal(note, false, 0);
            if resumable {
                // Finished incomplete: the same call takes the entry up again.
                out.note.push_str(&format!(
                    " {again} to finish: it resumes this call (journal entry {entry_id}) and sends only the records not written yet."
                ));
            }
        }
        if let Some(r) = resumed_note {
            out.note = format!("{r} {}", out.note);
        }
        out.into_result()
    }
}

/// How to resume a call of `tool`, as a sentence start.
fn again(tool: &str) -> String {
    if tool == "import_records" {
        "Run the same import again".to_owned()
    } else {
        format!("Call {tool} again with the same records")
    }
}

/// The confirmed changes of a call of `n` inputs that stopped part way, as the chunks of 10
/// inputs they filled (in input order, from the first): `None` when they do not line up (not
/// all record creations, or not whole chunks).
fn confirmed_chunks(changes: &[Change], n: usize) -> Option<Vec<Vec<Change>>> {
    let lined_up = changes.len() <= n
        && (changes.len().is_multiple_of(10) || changes.len() == n)
        && changes
            .iter()
            .all(|c| matches!(c, Change::RecordCreated { .. }));
    lined_up.then(|| changes.chunks(10).map(<[Change]>::to_vec).collect())
}

/// One outcome for all `n` inputs: `prior` (the first `offset`... confirmed before) then `run`
/// (the inputs from `offset` on).
fn merge(n: usize, offset: usize, prior: Vec<Record>, run: Option<BatchOutcome>) -> BatchOutcome {
    let prior_chunks = offset / 10;
    let mut chunks: Vec<ChunkReport> = (0..prior_chunks)
        .map(|i| ChunkReport {
            index: i,
            inputs: i * 10..((i + 1) * 10).min(n),
            status: ChunkStatus::Written,
        })
        .collect();
    let mut written = prior;
    let (mut failure, mut cancelled) = (None, false);
    if let Some(run) = run {
        written.extend(run.written);
        cancelled = run.cancelled;
        for c in run.chunks {
            chunks.push(ChunkReport {
                index: c.index + prior_chunks,
                inputs: c.inputs.start + offset..c.inputs.end + offset,
                status: c.status,
            });
        }
        failure = run.failure.map(|f| BatchFailure {
            chunk: f.chunk + prior_chunks,
            input_indexes: f.input_indexes.iter().map(|i| i + offset).collect(),
            error: f.error,
            ambiguous: f.ambiguous,
        });
    }
    BatchOutcome {
        requested: n,
        cancelled,
        written,
        deleted: Vec::new(),
        created_ids: Vec::new(),
        updated_ids: Vec::new(),
        chunks,
        failure,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn created(n: usize) -> Change {
        Change::RecordCreated {
            table_id: "tblA".into(),
            record_id: format!("rec{n}"),
            after: Fields::new(),
        }
    }

    #[test]
    fn confirmed_changes_become_whole_chunks_or_nothing() {
        let c: Vec<Change> = (0..20).map(created).collect();
        let chunks = confirmed_chunks(&c, 25).unwrap();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[1][0], created(10));
        assert!(confirmed_chunks(&[], 25).unwrap().is_empty());
        // All 25 (the last chunk short): three chunks.
        let all: Vec<Change> = (0..25).map(created).collect();
        assert_eq!(confirmed_chunks(&all, 25).unwrap().len(), 3);
        // Not whole chunks, more than the inputs, or not creations: refused.
        assert!(confirmed_chunks(&c[..15], 25).is_none());
        assert!(confirmed_chunks(&c, 15).is_none());
        let mut odd = c.clone();
        odd[3] = Change::CommentCreated {
            table_id: "tblA".into(),
            record_id: "rec3".into(),
            comment_id: "com1".into(),
        };
        assert!(confirmed_chunks(&odd, 25).is_none());
    }
}
