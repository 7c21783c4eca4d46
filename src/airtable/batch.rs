//! Chunked writes: inputs split into chunks of 10, sent in order, stopping at the first failed
//! chunk, with a per-chunk report.
//!
//! Outcomes keep the records Airtable returned for each chunk, so that a later undo journal
//! can record what every write changed.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;

use serde::Serialize;

use super::error::Error;
use super::ids::RecordId;
use super::models::{Fields, Record};

/// Airtable's limit of records per write request.
pub const CHUNK_SIZE: usize = 10;

/// Progress callback: `(inputs done, inputs total)`, called after each chunk.
pub type ProgressFn = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// What a batch is about to do or just did, for [`WriteOptions::on_chunk`].
#[derive(Debug)]
pub enum ChunkEvent<'a> {
    /// Chunk `index` is about to be sent.
    Sending {
        /// The chunk (0-based, 10 inputs each).
        index: usize,
    },
    /// Chunk `index` was confirmed written; `records` is what Airtable returned.
    Written {
        /// The chunk.
        index: usize,
        /// The records of the answer (creates, updates, upserts; empty for deletes).
        records: &'a [Record],
    },
}

/// An async hook awaited before and after each chunk (e.g. to record progress durably before
/// the next request goes out).
pub type ChunkHook =
    Arc<dyn for<'a> Fn(ChunkEvent<'a>) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// Options of a write.
#[derive(Clone, Default)]
pub struct WriteOptions {
    /// Let Airtable convert strings (creates select options, matches linked records by name).
    pub typecast: bool,
    /// Key returned `fields` by field ID.
    pub return_fields_by_field_id: bool,
    /// Called after each chunk.
    pub on_progress: Option<ProgressFn>,
    /// Stop before the next chunk once cancelled (a chunk in flight is never abandoned, so
    /// the outcome stays exact); see [`BatchOutcome::cancelled`].
    pub cancel: Option<tokio_util::sync::CancellationToken>,
    /// Awaited before each chunk is sent and after it is confirmed.
    pub on_chunk: Option<ChunkHook>,
}

impl fmt::Debug for WriteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteOptions")
            .field("typecast", &self.typecast)
            .field("return_fields_by_field_id", &self.return_fields_by_field_id)
            .field("on_progress", &self.on_progress.is_some())
            .field("cancel", &self.cancel.is_some())
            .field("on_chunk", &self.on_chunk.is_some())
            .finish()
    }
}

/// PATCH (only the given fields change) or PUT (unlisted fields are cleared).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum UpdateMode {
    /// Merge the given fields.
    #[default]
    Patch,
    /// Replace the record's fields (clears the rest).
    Put,
}

/// One record to update.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordUpdate {
    /// The record.
    pub id: RecordId,
    /// New cell values.
    pub fields: Fields,
}

/// One record to upsert: with `id` a plain update, without one matched on the merge fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpsertRecord {
    /// Optional record ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<RecordId>,
    /// Cell values, including the merge fields.
    pub fields: Fields,
}

/// What happened to one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkStatus {
    /// Airtable confirmed the chunk.
    Written,
    /// The chunk failed (see [`BatchOutcome::failure`]).
    Failed,
    /// Not sent because an earlier chunk failed.
    NotAttempted,
}

/// Report of one chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChunkReport {
    /// Chunk number, from 0.
    pub index: usize,
    /// Indexes of the inputs in this chunk.
    pub inputs: Range<usize>,
    /// Its fate.
    pub status: ChunkStatus,
}

/// The first failure of a batch.
#[derive(Debug)]
pub struct BatchFailure {
    /// The failed chunk.
    pub chunk: usize,
    /// Indexes of the inputs in that chunk.
    pub input_indexes: Vec<usize>,
    /// Why.
    pub error: Error,
    /// True when the failed chunk may have been applied anyway (timeout, broken connection,
    /// 5xx after sending): then `input_indexes` names the records that may have been written.
    pub ambiguous: bool,
}

/// Result of a chunked write.
#[derive(Debug)]
pub struct BatchOutcome {
    /// Number of inputs.
    pub requested: usize,
    /// True when the caller cancelled ([`WriteOptions::cancel`]) before every chunk was sent:
    /// the chunks after the last written one are `NotAttempted`.
    pub cancelled: bool,
    /// Every record the API confirmed, in request order (creates, updates, upserts).
    pub written: Vec<Record>,
    /// Deleted record IDs (deletes).
    pub deleted: Vec<RecordId>,
    /// IDs Airtable created (upserts).
    pub created_ids: Vec<RecordId>,
    /// IDs Airtable updated (upserts).
    pub updated_ids: Vec<RecordId>,
    /// One report per chunk.
    pub chunks: Vec<ChunkReport>,
    /// The first failure; later chunks were not attempted.
    pub failure: Option<BatchFailure>,
}

impl BatchOutcome {
    /// Whether every chunk was written.
    pub fn is_complete(&self) -> bool {
        self.failure.is_none() && !self.cancelled
    }

    /// Inputs confirmed written (or deleted).
    pub fn confirmed_indexes(&self) -> Vec<usize> {
        self.indexes_with(ChunkStatus::Written)
    }

    /// Inputs that were never sent.
    pub fn not_attempted_indexes(&self) -> Vec<usize> {
        self.indexes_with(ChunkStatus::NotAttempted)
    }

    fn indexes_with(&self, status: ChunkStatus) -> Vec<usize> {
        self.chunks
            .iter()
            .filter(|c| c.status == status)
            .flat_map(|c| c.inputs.clone())
            .collect()
    }

    /// Convert into a `Result`: the outcome, or the failure's error.
    pub fn into_result(mut self) -> Result<BatchOutcome, Error> {
        match self.failure.take() {
            Some(f) => Err(f.error),
            None => Ok(self),
        }
    }

    /// An outcome in which nothing was sent because the input was rejected up front.
    pub(crate) fn rejected(requested: usize, error: Error) -> BatchOutcome {
        let mut chunks = plan(requested);
        let input_indexes = chunks
            .first()
            .map(|c| c.inputs.clone().collect())
            .unwrap_or_default();
        if let Some(first) = chunks.first_mut() {
            first.status = ChunkStatus::Failed;
        }
        BatchOutcome {
            requested,
            cancelled: false,
            written: Vec::new(),
            deleted: Vec::new(),
            created_ids: Vec::new(),
            updated_ids: Vec::new(),
            chunks,
            failure: Some(BatchFailure {
                chunk: 0,
                input_indexes,
                error,
                ambiguous: false,
            }),
        }
    }
}

/// What a successful chunk returned.
pub(crate) struct ChunkResult {
    pub records: Vec<Record>,
    pub deleted: Vec<RecordId>,
    pub created: Vec<RecordId>,
    pub updated: Vec<RecordId>,
}

fn plan(n: usize) -> Vec<ChunkReport> {
    (0..n.div_ceil(CHUNK_SIZE))
        .map(|i| ChunkReport {
            index: i,
            inputs: i * CHUNK_SIZE..((i + 1) * CHUNK_SIZE).min(n),
            status: ChunkStatus::NotAttempted,
        })
        .collect()
}

/// Send `inputs` in chunks of 10, in order, stopping at the first failure.
pub(crate) async fn run_chunks<I, F, Fut>(
    inputs: Vec<I>,
    opts: &WriteOptions,
    mut send: F,
) -> BatchOutcome
where
    F: FnMut(Vec<I>) -> Fut,
    Fut: Future<Output = Result<ChunkResult, Error>>,
{
    let requested = inputs.len();
    let mut out = BatchOutcome {
        requested,
        cancelled: false,
        written: Vec::new(),
        deleted: Vec::new(),
        created_ids: Vec::new(),
        updated_ids: Vec::new(),
        chunks: plan(requested),
        failure: None,
    };
    let mut iter = inputs.into_iter();
    let mut done = 0;
    for i in 0..out.chunks.len() {
        if opts.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            tracing::info!(
                written = done,
                requested,
                "batch cancelled by the caller; remaining chunks not sent"
            );
            out.cancelled = true;
            break;
        }
        let chunk: Vec<I> = iter.by_ref().take(CHUNK_SIZE).collect();
        let len = chunk.len();
        if let Some(hook) = &opts.on_chunk {
            hook(ChunkEvent::Sending { index: i }).await;
        }
        match send(chunk).await {
            Ok(r) => {
                if let Some(hook) = &opts.on_chunk {
                    hook(ChunkEvent::Written {
                        index: i,
                        records: &r.records,
                    })
                    .await;
                }
                out.written.extend(r.records);
                out.deleted.extend(r.deleted);
                out.created_ids.extend(r.created);
                out.updated_ids.extend(r.updated);
                out.chunks[i].status = ChunkStatus::Written;
                done += len;
                if let Some(p) = &opts.on_progress {
                    p(done, requested);
                }
            }
            Err(error) => {
                out.chunks[i].status = ChunkStatus::Failed;
                let ambiguous = error.may_have_been_applied();
                // The error's kind and status only: Airtable's messages can quote cell values.
                tracing::warn!(
                    chunk = i,
                    ambiguous,
                    status = error.status(),
                    kind = error.kind().map(|k| k.as_str()),
                    "batch chunk failed; stopping"
                );
                out.failure = Some(BatchFailure {
                    chunk: i,
                    input_indexes: out.chunks[i].inputs.clone().collect(),
                    error,
                    ambiguous,
                });
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_splits_by_ten() {
        let p = plan(25);
        assert_eq!(
            p.iter().map(|c| c.inputs.clone()).collect::<Vec<_>>(),
            vec![0..10, 10..20, 20..25]
        );
        assert!(plan(0).is_empty());
    }

    #[tokio::test]
    async fn stops_before_the_next_chunk_once_cancelled() {
        let cancel = tokio_util::sync::CancellationToken::new();
        let opts = WriteOptions {
            cancel: Some(cancel.clone()),
            ..WriteOptions::default()
        };
        let sent = std::sync::atomic::AtomicUsize::new(0);
        let out = run_chunks((0..35).collect::<Vec<i32>>(), &opts, |c| {
            // The client cancels while the second chunk is in flight: it still completes.
            if c[0] == 10 {
                cancel.cancel();
            }
            sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                Ok(ChunkResult {
                    records: vec![],
                    deleted: vec![],
                    created: vec![],
                    updated: vec![],
                })
            }
        })
        .await;
        assert!(out.cancelled);
        assert!(out.failure.is_none());
        assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), 2);
        let st: Vec<_> = out.chunks.iter().map(|c| c.status).collect();
        assert_eq!(
            st,
            vec![
                ChunkStatus::Written,
                ChunkStatus::Written,
                ChunkStatus::NotAttempted,
                ChunkStatus::NotAttempted
            ]
        );
        assert_eq!(out.not_attempted_indexes(), (20..35).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn stops_at_first_failure() {
        let out = run_chunks(
            (0..35).collect::<Vec<i32>>(),
            &WriteOptions::default(),
            |c| async move {
                if c[0] == 10 {
                    Err(Error::Timeout(std::time::Duration::from_secs(1)))
                } else {
                    Ok(ChunkResult {
                        records: vec![],
                        deleted: vec![],
                        created: vec![],
                        updated: vec![],
                    })
                }
            },
        )
        .await;
        let st: Vec<_> = out.chunks.iter().map(|c| c.status).collect();
        assert_eq!(
            st,
            vec![
                ChunkStatus::Written,
                ChunkStatus::Failed,
                ChunkStatus::NotAttempted,
                ChunkStatus::NotAttempted
            ]
        );
        let f = out.failure.as_ref().unwrap();
        assert!(f.ambiguous);
        assert_eq!(f.input_indexes, (10..20).collect::<Vec<_>>());
        assert_eq!(out.not_attempted_indexes().len(), 15);
    }
}
