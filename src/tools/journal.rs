//! The write journal: every applied write, with what it changed (before-images and resulting
//! IDs), so that a client can list its recent writes and undo them (`list_recent_writes`,
//! `undo_write`, `airtable-mcp writes`).
//!
//! Entries belong to a *principal*: the fingerprint of the Airtable token that made the write
//! ([`principal_of`]). A client sees and undoes only its own writes: an entry of another
//! principal is "not found". Entries older than the retention are dropped (on open, the first
//! use of its [`JournalSlot`], and at most once an hour while writing) and never shown.
//!
//! API used by the write tools (see `tools::writes`): [`Journal::append`] after a write was
//! sent (complete or not: a partial batch journals what was written). For crash safety a
//! write may instead call [`Journal::begin`] with its plan before sending and
//! [`Journal::finish`] with what was written afterwards: a crash in between leaves a *pending*
//! entry listing what may have been written.
//!
//! Storage: SQLite ([`Journal::open`]), a file (WAL, busy timeout, so that the stdio server and
//! the `writes` CLI can share it; the directory is created 0700 and the file 0600 on Unix) or
//! `:memory:`. One connection behind a mutex, used from `spawn_blocking`: no statement runs on
//! the async runtime. The schema is versioned with `PRAGMA user_version`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::airtable::Fields;
use crate::config::JournalLocation;

/// A journal failure (the write itself is not affected; the result says it was not journaled).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The journal file or its directory could not be created.
    #[error("cannot create the write journal {}: {source}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("the write journal failed to {doing}: {source}")]
    Sqlite {
        /// What was being done.
        doing: &'static str,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// The journal was written by a newer airtable-mcp.
    #[error(
        "the write journal has schema version {found}, newer than this airtable-mcp understands ({SCHEMA_VERSION}): upgrade, or use another --journal file"
    )]
    Version {
        /// The version found.
        found: i64,
    },
    /// The store is unusable (a previous operation panicked, or its task was lost).
    #[error("the write journal is unavailable: {detail}")]
    Store {
        /// What was being done.
        detail: String,
    },
    /// An entry could not be encoded or decoded.
    #[error("a journal entry could not be encoded: {0}")]
    Encode(#[source] serde_json::Error),
}

fn sql(doing: &'static str) -> impl FnOnce(rusqlite::Error) -> JournalError {
    move |source| JournalError::Sqlite { doing, source }
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
    /// A resumable batch create while it is pending: how far it got (see `tools::resume`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) resume: Option<Resume>,
}

/// A resumable batch (its progress per request is in the `chunks` table: see
/// [`Journal::chunks`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Resume {
    /// The call's fingerprint: base, table, typecast and the records (SHA-256, hex).
    pub(crate) key: String,
    /// When the call began (ms since the epoch, minus a margin for clock skew): records created
    /// before it are not the call's.
    pub(crate) since_ms: i64,
}

/// A journaled write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct WriteEntry {
    /// Its ID (`w` + 16 hex digits; opaque to callers).
    pub(crate) id: String,
    /// When it was journaled.
    pub(crate) at: DateTime<Utc>,
    /// The write.
    pub(crate) write: NewWrite,
    /// The write that undid this one, if any.
    pub(crate) undone_by: Option<String>,
    /// True while the write is being sent (begun, not finished): after a crash, `write.changes`
    /// is the plan, what MAY have been written.
    pub(crate) pending: bool,
}

/// The schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 3;

/// Wait this long for another process holding the file's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prune expired entries at most this often while writing.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

struct Inner {
    conn: Connection,
    last_prune: Instant,
}

/// The journal store (shared by every session of the process).
pub(crate) struct Journal {
    retention: Duration,
    location: String,
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("location", &self.location)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

/// The process's write journal, opened on first use: inside, `None` when journaling is off
/// (`--no-journal`), or why it cannot be used.
///
/// Making the slot creates the journal's file (and directory) when missing, so that a path that
/// cannot hold it is known at once (`serve` refuses to start). The rest of [`Journal::open`]
/// (SQLite, WAL, the schema upgrade, the prune, about half a millisecond with a small journal,
/// more with a large one) runs on the first [`JournalSlot::get`]: the stdio server's warm-up
/// thread, after the host's start-up exchange, so that no answer of that exchange waits on it.
/// A caller that comes first opens it itself; one that comes meanwhile waits for it.
#[derive(Clone)]
pub(crate) struct JournalSlot(Arc<SlotInner>);

struct SlotInner {
    location: JournalLocation,
    retention: Duration,
    opened: OnceLock<Result<Option<Arc<Journal>>, Arc<JournalError>>>,
}

impl std::fmt::Debug for JournalSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalSlot")
            .field("location", &self.0.location)
            .field("opened", &self.0.opened.get().is_some())
            .finish()
    }
}

impl JournalSlot {
    /// The journal at `location`, its file created now and opened on first use.
    pub(crate) fn new(location: JournalLocation, retention: Duration) -> Self {
        let opened = OnceLock::new();
        if let JournalLocation::File(path) = &location
            && let Err(e) = create_file(path)
        {
            let _ = opened.set(Err(Arc::new(e)));
        }
        JournalSlot(Arc::new(SlotInner {
            location,
            retention,
            opened,
        }))
    }

    /// A slot holding an opened journal (or none, or an error) already.
    #[cfg(test)]
    pub(crate) fn ready(journal: Result<Option<Arc<Journal>>, Arc<JournalError>>) -> Self {
        let opened = OnceLock::new();
        let _ = opened.set(journal);
        JournalSlot(Arc::new(SlotInner {
            location: JournalLocation::Memory,
            retention: Duration::from_secs(86_400),
            opened,
        }))
    }

    /// The journal (`None` when off), or why it cannot be used; opens it if nobody has yet
    /// (blocking: SQLite reads the file), or waits while another thread does.
    pub(crate) fn get(&self) -> Result<Option<&Arc<Journal>>, &JournalError> {
        let inner = &self.0;
        let opened = inner
            .opened
            .get_or_init(|| Journal::open(&inner.location, inner.retention).map_err(Arc::new));
        match opened {
            Ok(j) => Ok(j.as_ref()),
            Err(e) => Err(e),
        }
    }

    /// Why the journal cannot be used, as far as known without opening it: its file could not
    /// be created, or an open already failed.
    pub(crate) fn known_problem(&self) -> Option<&JournalError> {
        match self.0.opened.get()? {
            Ok(_) => None,
            Err(e) => Some(e),
        }
    }
}

/// Create the directory (0700) and the file (0600) of a journal on Unix, when missing.
fn create_file(path: &Path) -> Result<(), JournalError> {
    let err = |source| JournalError::Create {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir).map_err(err)?;
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path).map_err(err)?;
    Ok(())
}

/// Create or upgrade the schema.
fn migrate(conn: &Connection) -> Result<(), JournalError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql("read its schema version"))?;
    if version > SCHEMA_VERSION {
        return Err(JournalError::Version { found: version });
    }
    if version < 1 {
        conn.execute_batch(
            "BEGIN;
             CREATE TABLE IF NOT EXISTS writes (
                 seq       INTEGER PRIMARY KEY AUTOINCREMENT,
                 id        TEXT NOT NULL UNIQUE,
                 principal TEXT NOT NULL,
                 at_ms     INTEGER NOT NULL,
                 base_id   TEXT NOT NULL,
                 pending   INTEGER NOT NULL DEFAULT 0,
                 undone_by TEXT,
                 body      TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS writes_principal ON writes (principal, seq);
             CREATE INDEX IF NOT EXISTS writes_at ON writes (at_ms);
             CREATE TABLE IF NOT EXISTS recreated (
                 principal TEXT NOT NULL,
                 old_id    TEXT NOT NULL,
                 new_id    TEXT NOT NULL,
                 at_ms     INTEGER NOT NULL,
                 PRIMARY KEY (principal, old_id)
             );
             PRAGMA user_version = 1;
             COMMIT;",
        )
        .map_err(sql("create its tables"))?;
    }
    if version < 2 {
        // Per-request progress of resumable batches: one row per chunk, written before the
        // request (changes NULL: in flight) and after it (the records it created).
        conn.execute_batch(
            "BEGIN;
             CREATE TABLE IF NOT EXISTS chunks (
                 write_id TEXT NOT NULL,
                 idx      INTEGER NOT NULL,
                 changes  TEXT,
                 PRIMARY KEY (write_id, idx)
             );
             PRAGMA user_version = 2;
             COMMIT;",
        )
        .map_err(sql("create its tables"))?;
    }
    // Resumable batches are looked up by their key in the body ([`Journal::find_resumable`]):
    // an expression index, so that the lookup parses no other body. Not a new schema version:
    // a build that does not know it maintains it like any index.
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS writes_resume
             ON writes (principal, json_extract(body, '$.resume.key'));",
    )
    .map_err(sql("create its tables"))?;
    if version < 3 {
        // The change feed's watches (`tools::watch`): one row per watch, its state as JSON.
        conn.execute_batch(
            "BEGIN;
             CREATE TABLE IF NOT EXISTS watches (
                 id        TEXT PRIMARY KEY,
                 principal TEXT NOT NULL,
                 at_ms     INTEGER NOT NULL,
                 body      TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS watches_principal ON watches (principal, at_ms);
             PRAGMA user_version = 3;
             COMMIT;",
        )
        .map_err(sql("create its tables"))?;
    }
    Ok(())
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn entry_from_row(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, i64, bool, Option<String>, String)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get::<_, i64>(2)? != 0,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn decode(
    (id, at_ms, pending, undone_by, body): (String, i64, bool, Option<String>, String),
) -> Result<WriteEntry, JournalError> {
    let write: NewWrite = serde_json::from_str(&body).map_err(JournalError::Encode)?;
    let at = Utc
        .timestamp_millis_opt(at_ms)
        .single()
        .unwrap_or_else(Utc::now);
    Ok(WriteEntry {
        id,
        at,
        write,
        undone_by,
        pending,
    })
}

const COLUMNS: &str = "id, at_ms, pending, undone_by, body";

/// [`Journal::find_resumable`]'s query (principal, cutoff, key), through `writes_resume`.
const FIND_RESUMABLE: &str = "SELECT id, at_ms, pending, undone_by, body FROM writes
     WHERE principal = ?1 AND json_extract(body, '$.resume.key') = ?3
       AND at_ms >= ?2 AND undone_by IS NULL
       AND (pending = 1 OR json_extract(body, '$.complete') = 0)
     ORDER BY seq DESC LIMIT 1";

impl Journal {
    /// Open the journal at `location`; `None` when journaling is off. A file is created (with
    /// its directory) when missing; expired entries are pruned.
    pub(crate) fn open(
        location: &JournalLocation,
        retention: Duration,
    ) -> Result<Option<Arc<Journal>>, JournalError> {
        let (conn, shown) = match location {
            JournalLocation::Off => return Ok(None),
            JournalLocation::Memory => (
                Connection::open_in_memory().map_err(sql("open in memory"))?,
                ":memory:".to_owned(),
            ),
            JournalLocation::File(path) => {
                create_file(path)?;
                let conn = Connection::open(path).map_err(|source| JournalError::Sqlite {
                    doing: "open its file",
                    source,
                })?;
                conn.busy_timeout(BUSY_TIMEOUT)
                    .map_err(sql("set its busy timeout"))?;
                // WAL: readers never block the writer (the server and the CLI share the file).
                let _mode: String = conn
                    .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                    .map_err(sql("switch to WAL"))?;
                conn.pragma_update(None, "synchronous", "NORMAL")
                    .map_err(sql("set synchronous"))?;
                (conn, path.display().to_string())
            }
        };
        migrate(&conn)?;
        tracing::debug!(journal = %shown, "write journal open");
        let journal = Journal {
            retention,
            location: shown,
            inner: Arc::new(Mutex::new(Inner {
                conn,
                last_prune: Instant::now(),
            })),
        };
        journal.with_sync(|inner| prune(&inner.conn, retention))?;
        Ok(Some(Arc::new(journal)))
    }

    fn with_sync<T>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        let mut inner = self.inner.lock().map_err(|_| JournalError::Store {
            detail: "a previous operation failed part way (lock poisoned)".to_owned(),
        })?;
        f(&mut inner)
    }

    /// Run `f` on the connection on the blocking pool (SQLite may wait on a file lock).
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Inner, Duration) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        let inner = self.inner.clone();
        let retention = self.retention;
        tokio::task::spawn_blocking(move || {
            let mut guard = inner.lock().map_err(|_| JournalError::Store {
                detail: "a previous operation failed part way (lock poisoned)".to_owned(),
            })?;
            f(&mut guard, retention)
        })
        .await
        .map_err(|e| JournalError::Store {
            detail: format!("its task was lost ({e})"),
        })?
    }

    /// Run `f` on the store's connection on the blocking pool: the sibling stores that share
    /// the journal's file (the change feed's watches, `tools::watch`).
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        self.with(move |inner, _| f(&inner.conn)).await
    }

    /// A private in-memory store (watches with `--no-journal`: they live for the process).
    pub(crate) fn memory() -> Result<Arc<Journal>, JournalError> {
        let retention = Duration::from_secs(86_400);
        Journal::open(&JournalLocation::Memory, retention)?.ok_or_else(|| JournalError::Store {
            detail: "an in-memory store could not be opened".to_owned(),
        })
    }

    fn cutoff_ms(retention: Duration) -> i64 {
        let keep = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(30));
        millis(Utc::now() - keep)
    }

    /// Journal a write made by `principal`; returns its ID.
    pub(crate) async fn append(
        &self,
        principal: &str,
        write: NewWrite,
    ) -> Result<String, JournalError> {
        self.insert(principal, write, false).await
    }

    /// Journal a write about to be sent (`write.changes` = the plan: what it may change);
    /// [`Journal::finish`] records what was written. Until then `list` shows it as pending.
    pub(crate) async fn begin(
        &self,
        principal: &str,
        planned: NewWrite,
    ) -> Result<String, JournalError> {
        self.insert(principal, planned, true).await
    }

    async fn insert(
        &self,
        principal: &str,
        write: NewWrite,
        pending: bool,
    ) -> Result<String, JournalError> {
        let id = format!("w{:016x}", rand::random::<u64>());
        let body = serde_json::to_string(&write).map_err(JournalError::Encode)?;
        let principal = principal.to_owned();
        let row_id = id.clone();
        self.with(move |inner, retention| {
            if inner.last_prune.elapsed() >= PRUNE_EVERY {
                prune(&inner.conn, retention)?;
                inner.last_prune = Instant::now();
            }
            inner
                .conn
                .execute(
                    "INSERT INTO writes (id, principal, at_ms, base_id, pending, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        row_id,
                        principal,
                        millis(Utc::now()),
                        write.base_id,
                        i64::from(pending),
                        body
                    ],
                )
                .map_err(sql("add an entry"))?;
            Ok(())
        })
        .await?;
        Ok(id)
    }

    /// Finish a write begun with [`Journal::begin`] (or taken up with [`Journal::reopen`]):
    /// its final summary, what was confirmed written, and whether all of the plan was.
    pub(crate) async fn finish(
        &self,
        principal: &str,
        id: &str,
        summary: &str,
        changes: Vec<Change>,
        complete: bool,
    ) -> Result<(), JournalError> {
        let Some(entry) = self.get(principal, id).await? else {
            return Err(JournalError::Store {
                detail: format!("entry {id} vanished before it was finished"),
            });
        };
        let mut write = entry.write;
        summary.clone_into(&mut write.summary);
        write.changes = changes;
        write.complete = complete;
        let body = serde_json::to_string(&write).map_err(JournalError::Encode)?;
        let (principal, id) = (principal.to_owned(), id.to_owned());
        self.with(move |inner, _| {
            inner
                .conn
                .execute(
                    "UPDATE writes SET body = ?1, pending = 0 WHERE id = ?2 AND principal = ?3",
                    params![body, id, principal],
                )
                .map_err(sql("finish an entry"))?;
            inner
                .conn
                .execute("DELETE FROM chunks WHERE write_id = ?1", params![id])
                .map_err(sql("finish an entry"))?;
            Ok(())
        })
        .await
    }

    /// The latest writes of `principal` (newest first), optionally in one base.
    pub(crate) async fn list(
        &self,
        principal: &str,
        base_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WriteEntry>, JournalError> {
        let principal = principal.to_owned();
        let base = base_id.map(str::to_owned);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .with(move |inner, retention| {
                let mut stmt = inner
                    .conn
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM writes
                         WHERE principal = ?1 AND at_ms >= ?2 AND (?3 IS NULL OR base_id = ?3)
                         ORDER BY seq DESC LIMIT ?4"
                    ))
                    .map_err(sql("list entries"))?;
                let rows = stmt
                    .query_map(
                        params![principal, Journal::cutoff_ms(retention), base, limit],
                        entry_from_row,
                    )
                    .map_err(sql("list entries"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql("list entries"))?;
                Ok(rows)
            })
            .await?;
        rows.into_iter().map(decode).collect()
    }

    /// One write of `principal` (`None` when it does not exist, expired, or is another
    /// principal's).
    pub(crate) async fn get(
        &self,
        principal: &str,
        id: &str,
    ) -> Result<Option<WriteEntry>, JournalError> {
        let (principal, id) = (principal.to_owned(), id.to_owned());
        let row = self
            .with(move |inner, retention| {
                inner
                    .conn
                    .query_row(
                        &format!(
                            "SELECT {COLUMNS} FROM writes
                             WHERE id = ?1 AND principal = ?2 AND at_ms >= ?3"
                        ),
                        params![id, principal, Journal::cutoff_ms(retention)],
                        entry_from_row,
                    )
                    .optional()
                    .map_err(sql("read an entry"))
            })
            .await?;
        row.map(decode).transpose()
    }

    /// Drop a pending entry that wrote nothing.
    pub(crate) async fn discard(&self, principal: &str, id: &str) -> Result<(), JournalError> {
        let (principal, id) = (principal.to_owned(), id.to_owned());
        self.with(move |inner, _| {
            inner
                .conn
                .execute(
                    "DELETE FROM writes WHERE id = ?1 AND principal = ?2 AND pending = 1",
                    params![id, principal],
                )
                .map_err(sql("drop a pending entry"))?;
            inner
                .conn
                .execute("DELETE FROM chunks WHERE write_id = ?1", params![id])
                .map_err(sql("drop a pending entry"))?;
            Ok(())
        })
        .await
    }

    /// Record that chunk `idx` of the resumable batch `id` is about to be sent.
    pub(crate) async fn chunk_sending(&self, id: &str, idx: usize) -> Result<(), JournalError> {
        self.put_chunk(id, idx, None).await
    }

    /// Record that chunk `idx` of the resumable batch `id` was written, with its changes.
    pub(crate) async fn chunk_written(
        &self,
        id: &str,
        idx: usize,
        changes: &[Change],
    ) -> Result<(), JournalError> {
        let body = serde_json::to_string(changes).map_err(JournalError::Encode)?;
        self.put_chunk(id, idx, Some(body)).await
    }

    /// Set the row of chunk `idx` of `id` (`changes` NULL = in flight).
    async fn put_chunk(
        &self,
        id: &str,
        idx: usize,
        changes: Option<String>,
    ) -> Result<(), JournalError> {
        let id = id.to_owned();
        self.with(move |inner, _| {
            inner
                .conn
                .execute(
                    "INSERT OR REPLACE INTO chunks (write_id, idx, changes) VALUES (?1, ?2, ?3)",
                    params![id, idx as i64, changes],
                )
                .map_err(sql("record a request"))?;
            Ok(())
        })
        .await
    }

    /// The recorded chunks of the resumable batch `id`, by index: `None` = sent, not confirmed.
    pub(crate) async fn chunks(
        &self,
        id: &str,
    ) -> Result<Vec<(usize, Option<Vec<Change>>)>, JournalError> {
        let id = id.to_owned();
        let rows: Vec<(i64, Option<String>)> = self
            .with(move |inner, _| {
                let mut stmt = inner
                    .conn
                    .prepare("SELECT idx, changes FROM chunks WHERE write_id = ?1 ORDER BY idx")
                    .map_err(sql("read the requests of a batch"))?;
                let rows = stmt
                    .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(sql("read the requests of a batch"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql("read the requests of a batch"))?;
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|(idx, changes)| {
                let changes = changes
                    .map(|c| serde_json::from_str::<Vec<Change>>(&c))
                    .transpose()
                    .map_err(JournalError::Encode)?;
                Ok((usize::try_from(idx).unwrap_or_default(), changes))
            })
            .collect()
    }

    /// The entry that an identical resumable batch (fingerprint `key`) of `principal` takes
    /// up: the newest one within the retention, not undone, that is either pending (the call
    /// was interrupted) or finished incomplete (it stopped part way: a definite failure,
    /// exhausted retries, a cancel). A complete entry is never taken up: the same call after
    /// it is a new one.
    pub(crate) async fn find_resumable(
        &self,
        principal: &str,
        key: &str,
    ) -> Result<Option<WriteEntry>, JournalError> {
        let (principal, key) = (principal.to_owned(), key.to_owned());
        let row = self
            .with(move |inner, retention| {
                inner
                    .conn
                    .query_row(
                        FIND_RESUMABLE,
                        params![principal, Journal::cutoff_ms(retention), key],
                        entry_from_row,
                    )
                    .optional()
                    .map_err(sql("find an entry to resume"))
            })
            .await?;
        row.map(decode).transpose()
    }

    /// Take up the finished, incomplete resumable batch `id` again: in one transaction it
    /// becomes pending, and its chunk rows are set to `chunks` (`chunks[i]` = the changes of
    /// chunk i, all confirmed written), so that it resumes like an interrupted call (and a
    /// crash now leaves it pending with its progress). The body keeps its changes until
    /// [`Journal::finish`]. False (nothing changed) when it is no longer finished and
    /// not undone: another process took it up, or it was undone, meanwhile.
    pub(crate) async fn reopen(
        &self,
        principal: &str,
        id: &str,
        chunks: Vec<Vec<Change>>,
    ) -> Result<bool, JournalError> {
        let bodies = chunks
            .iter()
            .map(|c| serde_json::to_string(c).map_err(JournalError::Encode))
            .collect::<Result<Vec<_>, _>>()?;
        let (principal, id) = (principal.to_owned(), id.to_owned());
        self.with(move |inner, _| {
            let tx = inner.conn.transaction().map_err(sql("reopen an entry"))?;
            let n = tx
                .execute(
                    "UPDATE writes SET pending = 1
                     WHERE id = ?1 AND principal = ?2 AND pending = 0 AND undone_by IS NULL",
                    params![id, principal],
                )
                .map_err(sql("reopen an entry"))?;
            if n == 0 {
                return Ok(false);
            }
            tx.execute("DELETE FROM chunks WHERE write_id = ?1", params![id])
                .map_err(sql("reopen an entry"))?;
            for (idx, body) in bodies.iter().enumerate() {
                tx.execute(
                    "INSERT INTO chunks (write_id, idx, changes) VALUES (?1, ?2, ?3)",
                    params![id, idx as i64, body],
                )
                .map_err(sql("reopen an entry"))?;
            }
            tx.commit().map_err(sql("reopen an entry"))?;
            Ok(true)
        })
        .await
    }

    /// Record that `id` was undone by the write `undo_id`.
    pub(crate) async fn mark_undone(
        &self,
        principal: &str,
        id: &str,
        undo_id: &str,
    ) -> Result<(), JournalError> {
        let (principal, id, undo_id) = (principal.to_owned(), id.to_owned(), undo_id.to_owned());
        self.with(move |inner, _| {
            inner
                .conn
                .execute(
                    "UPDATE writes SET undone_by = ?1 WHERE id = ?2 AND principal = ?3",
                    params![undo_id, id, principal],
                )
                .map_err(sql("mark an entry undone"))?;
            Ok(())
        })
        .await
    }

    /// Remember that undo recreated the deleted records `old → new` (so that undoing older
    /// writes of those records finds them under their new IDs).
    pub(crate) async fn note_recreated(
        &self,
        principal: &str,
        pairs: Vec<(String, String)>,
    ) -> Result<(), JournalError> {
        let principal = principal.to_owned();
        self.with(move |inner, _| {
            let tx = inner
                .conn
                .transaction()
                .map_err(sql("note recreated records"))?;
            for (old, new) in &pairs {
                tx.execute(
                    "INSERT OR REPLACE INTO recreated (principal, old_id, new_id, at_ms)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![principal, old, new, millis(Utc::now())],
                )
                .map_err(sql("note recreated records"))?;
            }
            tx.commit().map_err(sql("note recreated records"))
        })
        .await
    }

    /// The IDs records have now, for those of `ids` that undo recreated (following chains:
    /// a record recreated twice maps to its latest ID). IDs never recreated are absent.
    pub(crate) async fn current_ids(
        &self,
        principal: &str,
        ids: Vec<String>,
    ) -> Result<std::collections::HashMap<String, String>, JournalError> {
        let principal = principal.to_owned();
        self.with(move |inner, _| {
            let mut stmt = inner
                .conn
                .prepare_cached("SELECT new_id FROM recreated WHERE principal = ?1 AND old_id = ?2")
                .map_err(sql("look up recreated records"))?;
            let mut out = std::collections::HashMap::new();
            for id in ids {
                let mut cur = id.clone();
                // A chain longer than this is a loop (IDs are never reused): stop.
                for _ in 0..64 {
                    let next: Option<String> = stmt
                        .query_row(params![principal, cur], |r| r.get(0))
                        .optional()
                        .map_err(sql("look up recreated records"))?;
                    match next {
                        Some(n) => cur = n,
                        None => break,
                    }
                }
                if cur != id {
                    out.insert(id, cur);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Drop the entries older than the retention now (done on open and while writing).
    #[cfg(test)]
    pub(crate) async fn prune(&self) -> Result<usize, JournalError> {
        self.with(|inner, retention| {
            let n = prune(&inner.conn, retention)?;
            inner.last_prune = Instant::now();
            Ok(n)
        })
        .await
    }
}

/// Delete the entries older than `retention`; returns how many.
fn prune(conn: &Connection, retention: Duration) -> Result<usize, JournalError> {
    let cutoff = Journal::cutoff_ms(retention);
    conn.execute("DELETE FROM recreated WHERE at_ms < ?1", params![cutoff])
        .map_err(sql("drop expired entries"))?;
    let n = conn
        .execute("DELETE FROM writes WHERE at_ms < ?1", params![cutoff])
        .map_err(sql("drop expired entries"))?;
    conn.execute(
        "DELETE FROM chunks WHERE write_id NOT IN (SELECT id FROM writes)",
        [],
    )
    .map_err(sql("drop expired entries"))?;
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn write(base: &str, n: usize) -> NewWrite {
        NewWrite {
            tool: "update_record".into(),
            base_id: base.into(),
            table_id: Some("tblA".into()),
            table_name: Some("Tasks".into()),
            summary: format!("write {n}"),
            changes: vec![Change::RecordUpdated {
                table_id: "tblA".into(),
                record_id: format!("rec{n}"),
                before: serde_json::from_str(r#"{"Name":"a"}"#).unwrap(),
                after: serde_json::from_str(r#"{"Name":"b"}"#).unwrap(),
            }],
            complete: true,
            undo_of: None,
            resume: None,
        }
    }

    const DAY: Duration = Duration::from_secs(86_400);

    async fn memory() -> Arc<Journal> {
        Journal::open(&JournalLocation::Memory, DAY)
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn entries_round_trip_newest_first_and_filter_by_base() {
        let j = memory().await;
        let a = j.append("p1", write("appA", 1)).await.unwrap();
        let b = j.append("p1", write("appB", 2)).await.unwrap();
        let c = j.append("p1", write("appA", 3)).await.unwrap();
        let all: Vec<String> = j
            .list("p1", None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(all, vec![c.clone(), b, a.clone()]);
        let in_a: Vec<String> = j
            .list("p1", Some("appA"), 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(in_a, vec![c.clone(), a.clone()]);
        assert_eq!(j.list("p1", None, 1).await.unwrap().len(), 1);
        let got = j.get("p1", &a).await.unwrap().unwrap();
        assert_eq!(got.write, write("appA", 1));
        assert!(!got.pending && got.undone_by.is_none());
        j.mark_undone("p1", &a, &c).await.unwrap();
        assert_eq!(j.get("p1", &a).await.unwrap().unwrap().undone_by, Some(c));
    }

    #[tokio::test]
    async fn another_principal_sees_nothing_and_cannot_mark() {
        let j = memory().await;
        let a = j.append("p1", write("appA", 1)).await.unwrap();
        assert!(j.get("p2", &a).await.unwrap().is_none());
        assert!(j.list("p2", None, 10).await.unwrap().is_empty());
        j.mark_undone("p2", &a, "wother").await.unwrap();
        assert_eq!(j.get("p1", &a).await.unwrap().unwrap().undone_by, None);
        assert_ne!(principal_of("tok1"), principal_of("tok2"));
        assert_eq!(principal_of("tok1").len(), 16);
    }

    #[tokio::test]
    async fn recreated_ids_follow_chains_per_principal() {
        let j = memory().await;
        j.note_recreated("p1", vec![("recA".into(), "recB".into())])
            .await
            .unwrap();
        j.note_recreated("p1", vec![("recB".into(), "recC".into())])
            .await
            .unwrap();
        let m = j
            .current_ids("p1", vec!["recA".into(), "recX".into()])
            .await
            .unwrap();
        assert_eq!(m.get("recA").map(String::as_str), Some("recC"));
        assert!(!m.contains_key("recX"));
        assert!(
            j.current_ids("p2", vec!["recA".into()])
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn begin_leaves_a_pending_entry_until_finished() {
        let j = memory().await;
        let id = j.begin("p1", write("appA", 1)).await.unwrap();
        let e = j.list("p1", None, 10).await.unwrap().remove(0);
        assert!(e.pending);
        j.finish("p1", &id, "wrote nothing", Vec::new(), false)
            .await
            .unwrap();
        let e = j.get("p1", &id).await.unwrap().unwrap();
        assert!(!e.pending && !e.write.complete && e.write.changes.is_empty());
    }

    fn created(n: usize) -> Change {
        Change::RecordCreated {
            table_id: "tblA".into(),
            record_id: format!("rec{n}"),
            after: Fields::new(),
        }
    }

    fn resumable(key: &str) -> NewWrite {
        NewWrite {
            tool: "batch_create_records".into(),
            changes: Vec::new(),
            complete: false,
            resume: Some(Resume {
                key: key.into(),
                since_ms: 0,
            }),
            ..write("appA", 0)
        }
    }

    #[tokio::test]
    async fn an_incomplete_or_pending_batch_is_found_to_resume_a_complete_or_undone_one_not() {
        let j = memory().await;
        let found = |key: &'static str| {
            let j = j.clone();
            async move { j.find_resumable("p1", key).await.unwrap().map(|e| e.id) }
        };
        // Pending (interrupted): found, by its principal only.
        let a = j.begin("p1", resumable("ka")).await.unwrap();
        assert_eq!(found("ka").await, Some(a.clone()));
        assert!(j.find_resumable("p2", "ka").await.unwrap().is_none());
        assert!(found("kx").await.is_none());
        // Finished incomplete (stopped part way): still found.
        j.finish("p1", &a, "created 10 of 25", vec![created(0)], false)
            .await
            .unwrap();
        let e = j.get("p1", &a).await.unwrap().unwrap();
        assert!(!e.pending && e.write.summary == "created 10 of 25");
        assert_eq!(found("ka").await, Some(a.clone()));
        // Undone: not found (the same call starts afresh).
        j.mark_undone("p1", &a, "wundo").await.unwrap();
        assert!(found("ka").await.is_none());
        // Complete: not found; the newest incomplete one wins.
        let b = j.begin("p1", resumable("kb")).await.unwrap();
        j.finish("p1", &b, "created 25", vec![created(1)], true)
            .await
            .unwrap();
        assert!(found("kb").await.is_none());
        let c = j.begin("p1", resumable("kc")).await.unwrap();
        j.finish("p1", &c, "part", vec![created(2)], false)
            .await
            .unwrap();
        let d = j.begin("p1", resumable("kc")).await.unwrap();
        assert_eq!(found("kc").await, Some(d));
    }

    #[tokio::test]
    async fn a_version_2_file_without_the_index_opens_and_its_stopped_batch_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite3");
        let loc = JournalLocation::File(path.clone());
        let j = Journal::open(&loc, DAY).unwrap().unwrap();
        let a = j.begin("p1", resumable("ka")).await.unwrap();
        j.finish("p1", &a, "part", vec![created(0)], false)
            .await
            .unwrap();
        drop(j);
        // As a version 2 build left it: no index, no watches table.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP INDEX writes_resume; DROP TABLE watches; PRAGMA user_version = 2;",
        )
        .unwrap();
        drop(conn);
        let j = Journal::open(&loc, DAY).unwrap().unwrap();
        let e = j.find_resumable("p1", "ka").await.unwrap().unwrap();
        assert_eq!(e.id, a);
        let version: i64 = Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[tokio::test]
    async fn the_resumable_lookup_uses_its_index() {
        let j = memory().await;
        let plan: Vec<String> = j
            .with(|inner, _| {
                let mut stmt = inner
                    .conn
                    .prepare(&format!("EXPLAIN QUERY PLAN {FIND_RESUMABLE}"))
                    .map_err(sql("explain"))?;
                let rows = stmt
                    .query_map(params!["p1", 0i64, "k"], |r| r.get::<_, String>(3))
                    .map_err(sql("explain"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql("explain"))?;
                Ok(rows)
            })
            .await
            .unwrap();
        assert!(
            plan.iter().any(|d| d.contains("USING INDEX writes_resume")),
            "{plan:?}"
        );
    }

    #[tokio::test]
    async fn reopen_makes_a_stopped_batch_pending_with_its_chunks_once() {
        let j = memory().await;
        let a = j.begin("p1", resumable("ka")).await.unwrap();
        j.chunk_written("a", 0, &[created(9)]).await.unwrap();
        j.chunk_sending(&a, 0).await.unwrap();
        j.chunk_sending(&a, 1).await.unwrap();
        j.finish("p1", &a, "part", vec![created(0), created(1)], false)
            .await
            .unwrap();
        assert!(j.chunks(&a).await.unwrap().is_empty(), "finish drops them");
        // Another principal cannot; the owner can, once.
        assert!(!j.reopen("p2", &a, vec![vec![created(0)]]).await.unwrap());
        let chunks = vec![vec![created(0)], vec![created(1)]];
        assert!(j.reopen("p1", &a, chunks.clone()).await.unwrap());
        assert!(!j.reopen("p1", &a, chunks.clone()).await.unwrap());
        let e = j.get("p1", &a).await.unwrap().unwrap();
        assert!(e.pending && e.write.changes.len() == 2, "{e:?}");
        let rows = j.chunks(&a).await.unwrap();
        assert_eq!(
            rows,
            vec![(0, Some(vec![created(0)])), (1, Some(vec![created(1)]))]
        );
        assert_eq!(
            j.chunks("a").await.unwrap().len(),
            1,
            "other entries untouched"
        );
        // Finished again: found again; undone: cannot be reopened.
        j.finish("p1", &a, "part", vec![created(0), created(1)], false)
            .await
            .unwrap();
        j.mark_undone("p1", &a, "wundo").await.unwrap();
        assert!(!j.reopen("p1", &a, chunks).await.unwrap());
        assert!(!j.get("p1", &a).await.unwrap().unwrap().pending);
    }

    #[tokio::test]
    async fn a_file_journal_persists_is_private_and_prunes_expired_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("journal.sqlite3");
        let loc = JournalLocation::File(path.clone());
        let j = Journal::open(&loc, DAY).unwrap().unwrap();
        let id = j.append("p1", write("appA", 1)).await.unwrap();
        let old = j.append("p1", write("appA", 2)).await.unwrap();
        // Age one entry past the retention.
        j.with(move |inner, _| {
            inner
                .conn
                .execute(
                    "UPDATE writes SET at_ms = at_ms - ?1 WHERE id = ?2",
                    params![2 * 86_400_000i64, old],
                )
                .map_err(sql("age"))?;
            Ok(())
        })
        .await
        .unwrap();
        // A second process (the CLI) sees it; expired entries are invisible, then pruned.
        let other = Journal::open(&loc, DAY).unwrap().unwrap();
        let ids: Vec<String> = other
            .list("p1", None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, vec![id.clone()]);
        assert_eq!(other.prune().await.unwrap(), 0, "pruned on open already");
        let n: i64 = j
            .with(|inner, _| {
                inner
                    .conn
                    .query_row("SELECT count(*) FROM writes", [], |r| r.get(0))
                    .map_err(sql("count"))
            })
            .await
            .unwrap();
        assert_eq!(n, 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
    }

    #[test]
    fn the_slot_creates_the_file_at_once_and_opens_it_on_first_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new").join("j.sqlite3");
        let slot = JournalSlot::new(JournalLocation::File(path.clone()), DAY);
        // Created empty (a path that cannot hold it fails here), not yet opened by SQLite.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        assert!(slot.known_problem().is_none());
        assert!(!format!("{slot:?}").contains("opened: true"), "{slot:?}");
        let journal = slot.get().unwrap().unwrap().clone();
        assert!(format!("{slot:?}").contains("opened: true"), "{slot:?}");
        // Every clone shares the one opened journal.
        let other = slot.clone();
        assert!(Arc::ptr_eq(other.get().unwrap().unwrap(), &journal));
        assert!(std::fs::metadata(&path).unwrap().len() > 0);

        // A path under a file: known at once, without opening anything.
        let blocker = dir.path().join("blocker");
        std::fs::write(&blocker, "").unwrap();
        let slot = JournalSlot::new(JournalLocation::File(blocker.join("j.sqlite3")), DAY);
        assert!(matches!(
            slot.known_problem(),
            Some(JournalError::Create { .. })
        ));
        assert!(matches!(slot.get(), Err(JournalError::Create { .. })));

        // Not a journal: found on first use; the file is left as it was.
        let notes = dir.path().join("notes");
        let text = "plain text, not SQLite\n".repeat(300);
        std::fs::write(&notes, &text).unwrap();
        let slot = JournalSlot::new(JournalLocation::File(notes.clone()), DAY);
        assert!(slot.known_problem().is_none());
        let err = slot.get().unwrap_err();
        assert!(matches!(err, JournalError::Sqlite { .. }), "{err}");
        assert!(slot.known_problem().is_some());
        assert_eq!(std::fs::read_to_string(&notes).unwrap(), text);

        // Off: nothing created, nothing to open.
        assert!(
            JournalSlot::new(JournalLocation::Off, DAY)
                .get()
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite3");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 7)
            .unwrap();
        let err = Journal::open(&JournalLocation::File(path), DAY).unwrap_err();
        assert!(matches!(err, JournalError::Version { found: 7 }), "{err}");
    }

    #[tokio::test]
    async fn a_version_2_file_opens_and_gains_the_watches_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.sqlite3");
        {
            // A journal as version 2 left it, with one entry.
            let j = Journal::open(&JournalLocation::File(path.clone()), DAY)
                .unwrap()
                .unwrap();
            j.append("p1", write("appA", 1)).await.unwrap();
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("DROP TABLE watches; PRAGMA user_version = 2;")
                .unwrap();
        }
        let j = Journal::open(&JournalLocation::File(path.clone()), DAY)
            .unwrap()
            .unwrap();
        assert_eq!(j.list("p1", None, 10).await.unwrap().len(), 1);
        let (version, watches): (i64, i64) = j
            .run(|c| {
                let v = c
                    .pragma_query_value(None, "user_version", |r| r.get(0))
                    .map_err(sql("read"))?;
                let n = c
                    .query_row("SELECT COUNT(*) FROM watches", [], |r| r.get(0))
                    .map_err(sql("count"))?;
                Ok((v, n))
            })
            .await
            .unwrap();
        assert_eq!((version, watches), (3, 0));
    }

    #[test]
    fn off_opens_nothing() {
        assert!(Journal::open(&JournalLocation::Off, DAY).unwrap().is_none());
    }
}
