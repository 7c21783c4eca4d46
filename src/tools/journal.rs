//! The write journal: every applied write, with what it changed (before-images and resulting
//! IDs), so that a client can list its recent writes and undo them (`list_recent_writes`,
//! `undo_write`, `airtable-mcp writes`).
//!
//! Entries belong to a *principal*: the fingerprint of the Airtable token that made the write
//! ([`principal_of`]). A client sees and undoes only its own writes. Entries older than the
//! retention are dropped.
//!
//! API used by the write tools (see `tools::writes`): [`Journal::append`] after a write was
//! sent (complete or not: a partial batch journals what was written). Storage: see
//! [`Journal::open`].

// Parts are used by the write tools as they move onto the pipeline (issue #10).
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::airtable::Fields;
use crate::config::JournalLocation;

/// A journal failure (the write itself is not affected; the result says it was not journaled).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum JournalError {
    /// The journal store failed.
    #[error("the write journal is unavailable: {detail}")]
    Store {
        /// What was being done.
        detail: String,
    },
    /// An entry could not be encoded or decoded.
    #[error("a journal entry could not be encoded: {0}")]
    Encode(#[source] serde_json::Error),
}

/// The fingerprint of a token: the first 16 hex digits of its SHA-256 (never the token).
pub(crate) fn principal_of(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Name and description of a table or field, before or after a schema change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct NamedMeta {
    /// Name.
    pub(crate) name: String,
    /// Description (None = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
}

/// One change a write made. Record values are keyed by field NAME, as the tools write them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Change {
    /// A record was created; `after` = its fields as Airtable returned them.
    RecordCreated {
        /// Table ID.
        table_id: String,
        /// The new record.
        record_id: String,
        /// Its fields after the write.
        after: Fields,
    },
    /// A record was updated: `before` and `after` hold the fields the write named (a field
    /// absent from `before` was empty).
    RecordUpdated {
        /// Table ID.
        table_id: String,
        /// The record.
        record_id: String,
        /// The named fields before the write (empty ones absent).
        before: Fields,
        /// The named fields after the write, as Airtable returned them (empty ones absent).
        after: Fields,
    },
    /// A record was deleted; `before` = every field it had.
    RecordDeleted {
        /// Table ID.
        table_id: String,
        /// The deleted record.
        record_id: String,
        /// Its fields before the delete.
        before: Fields,
    },
    /// A table was created (the Web API cannot delete tables: not undoable).
    TableCreated {
        /// The new table.
        table_id: String,
        /// Its name.
        name: String,
    },
    /// A table's name or description changed.
    TableUpdated {
        /// The table.
        table_id: String,
        /// Before.
        before: NamedMeta,
        /// After.
        after: NamedMeta,
    },
    /// A field was created (the Web API cannot delete fields: not undoable).
    FieldCreated {
        /// Its table.
        table_id: String,
        /// The new field.
        field_id: String,
        /// Its name.
        name: String,
    },
    /// A field's name or description changed.
    FieldUpdated {
        /// Its table.
        table_id: String,
        /// The field.
        field_id: String,
        /// Before.
        before: NamedMeta,
        /// After.
        after: NamedMeta,
    },
    /// A comment was added to a record.
    CommentCreated {
        /// Table ID.
        table_id: String,
        /// The record.
        record_id: String,
        /// The new comment.
        comment_id: String,
    },
}

/// A write to journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct NewWrite {
    /// The tool (or "undo_write", or "cli").
    pub(crate) tool: String,
    /// The base.
    pub(crate) base_id: String,
    /// The table mainly concerned, when there is one (ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) table_id: Option<String>,
    /// Its name, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) table_name: Option<String>,
    /// One line: what was done ("updated 3 records in Tasks").
    pub(crate) summary: String,
    /// What changed, in the order it was applied.
    pub(crate) changes: Vec<Change>,
    /// False when the write stopped part way (the changes are what was confirmed written).
    pub(crate) complete: bool,
    /// When this write is an undo: the write it undid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) undo_of: Option<String>,
}

/// A journaled write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct WriteEntry {
    /// Its ID (`w` + 16 hex digits... opaque to callers).
    pub(crate) id: String,
    /// When it was journaled.
    pub(crate) at: DateTime<Utc>,
    /// The write.
    pub(crate) write: NewWrite,
    /// The write that undid this one, if any.
    pub(crate) undone_by: Option<String>,
}

/// The journal store (shared by every session of the process).
pub(crate) struct Journal {
    retention: Duration,
    entries: Mutex<Vec<(String, WriteEntry)>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Open the journal at `location`; `None` when journaling is off.
    pub(crate) fn open(
        location: &JournalLocation,
        retention: Duration,
    ) -> Result<Option<Arc<Journal>>, JournalError> {
        match location {
            JournalLocation::Off => Ok(None),
            // The SQLite store replaces this in-memory placeholder.
            JournalLocation::Memory | JournalLocation::File(_) => Ok(Some(Arc::new(Journal {
                retention,
                entries: Mutex::new(Vec::new()),
            }))),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Vec<(String, WriteEntry)>>, JournalError> {
        self.entries.lock().map_err(|_| JournalError::Store {
            detail: "lock poisoned".to_owned(),
        })
    }

    /// Journal a write made by `principal`; returns its ID.
    pub(crate) async fn append(
        &self,
        principal: &str,
        write: NewWrite,
    ) -> Result<String, JournalError> {
        let id = format!("w{:016x}", rand::random::<u64>());
        let entry = WriteEntry {
            id: id.clone(),
            at: Utc::now(),
            write,
            undone_by: None,
        };
        let mut entries = self.lock()?;
        let cutoff = Utc::now()
            - chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::days(30));
        entries.retain(|(_, e)| e.at >= cutoff);
        entries.push((principal.to_owned(), entry));
        Ok(id)
    }

    /// The latest writes of `principal` (newest first), optionally in one base.
    pub(crate) async fn list(
        &self,
        principal: &str,
        base_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WriteEntry>, JournalError> {
        let entries = self.lock()?;
        Ok(entries
            .iter()
            .rev()
            .filter(|(p, e)| p == principal && base_id.is_none_or(|b| e.write.base_id == b))
            .take(limit)
            .map(|(_, e)| e.clone())
            .collect())
    }

    /// One write of `principal`.
    pub(crate) async fn get(
        &self,
        principal: &str,
        id: &str,
    ) -> Result<Option<WriteEntry>, JournalError> {
        let entries = self.lock()?;
        Ok(entries
            .iter()
            .find(|(p, e)| p == principal && e.id == id)
            .map(|(_, e)| e.clone()))
    }

    /// Record that `id` was undone by the write `undo_id`.
    pub(crate) async fn mark_undone(
        &self,
        principal: &str,
        id: &str,
        undo_id: &str,
    ) -> Result<(), JournalError> {
        let mut entries = self.lock()?;
        if let Some((_, e)) = entries
            .iter_mut()
            .find(|(p, e)| p == principal && e.id == id)
        {
            e.undone_by = Some(undo_id.to_owned());
        }
        Ok(())
    }
}
