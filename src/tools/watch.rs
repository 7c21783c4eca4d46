//! The change feed (issue #15): watch_table, list_table_changes, list_watches, unwatch_table.
//!
//! A *watch* is an Airtable webhook on one table (`dataTypes: ["tableData"]`,
//! `recordChangeScope` = the table, optionally `watchDataInFieldIds`, previous cell values
//! included) created without a notification URL: the server reads its payloads on request and
//! polls the webhook list for new ones. Watches and their cursors are kept per principal (token
//! fingerprint) in the journal's SQLite store (table `watches`, schema version 3), so they
//! survive a restart; with `--no-journal` they live in memory for the process.
//!
//! Keep-alive: Airtable disables a webhook 7 days after its creation or last refresh. Any
//! activity on a watch (list_table_changes, list_watches) and the background poller refresh a
//! webhook with less than [`REFRESH_BEFORE`] left. An expired or vanished webhook is reported
//! (status `expired` / `gone`); watch_table again creates a new one.
//!
//! Read-only: creating, refreshing and deleting a webhook are writes to Airtable (POST and
//! DELETE), which the client's one read-only choke point refuses: a `--read-only` server cannot
//! watch (watch_table and unwatch_table are write tools, hidden there) and does not keep old
//! watches alive, though it can still read their changes.
//!
//! Not journaled as writes: a webhook holds no base data, so there is nothing to undo;
//! list_watches shows them and unwatch_table removes one.
//!
//! Notifications: the poller ([`Feed`], one per process, inside the resources' `Watchers`)
//! lists each base's webhooks every `--watch-poll-interval` seconds (one GET per base with
//! watches, through the normal client and its limiter) and, when a webhook's
//! `cursorForNextPayload` moved, sends `notifications/resources/updated` for
//! `airtable://watches/{watch_id}` to the subscribers of that principal.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use rusqlite::{OptionalExtension, params};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::airtable::{
    BaseId, Client, PayloadPage, Webhook, WebhookFilters, WebhookIncludes, WebhookOptions,
    WebhookPayload, WebhookSpec,
};
use crate::tools::ToolError;
use crate::tools::context::ToolContext;
use crate::tools::handler::AirtableServer;
use crate::tools::journal::{Journal, JournalError, JournalSlot};
use crate::tools::params::{lenient_bool, lenient_opt_strings};
use crate::tools::resources::Watchers;
use crate::tools::result::scope;
use crate::tools::validation::find_field;

/// A webhook with less than this left is refreshed (Airtable's lifetime is 7 days).
pub(crate) const REFRESH_BEFORE: chrono::TimeDelta = chrono::TimeDelta::days(2);
/// Default and largest number of changes one list_table_changes call returns.
const DEFAULT_MAX_CHANGES: u32 = 100;
const MAX_CHANGES: u32 = 500;
/// Payload pages one list_table_changes call reads at most (50 payloads a page).
const MAX_PAGES: usize = 10;

/// The URI of a watch's resource.
pub(crate) fn watch_uri(id: &str) -> String {
    format!("airtable://watches/{id}")
}

/// The watch ID of a watch resource URI.
pub(crate) fn parse_watch_uri(uri: &str) -> Option<&str> {
    let id = uri.strip_prefix("airtable://watches/")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// A watch's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum WatchStatus {
    /// The webhook collects changes.
    Active,
    /// The webhook expired (or Airtable disabled it): no new changes; watch_table again.
    Expired,
    /// The webhook no longer exists (deleted elsewhere, or dropped after expiry).
    Gone,
}

/// One watch as stored (JSON in the `watches` table).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Watch {
    id: String,
    base_id: String,
    table_id: String,
    table_name: String,
    #[serde(default)]
    field_ids: Vec<String>,
    webhook_id: String,
    /// The next payload to read.
    cursor: u64,
    /// `cursorForNextPayload` last seen (pending = seen - cursor).
    seen: u64,
    expires_at: Option<String>,
    status: WatchStatus,
    created_at: String,
}

impl Watch {
    fn expires(&self) -> Option<DateTime<Utc>> {
        let e = self.expires_at.as_deref()?;
        DateTime::parse_from_rfc3339(e)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    fn needs_refresh(&self, now: DateTime<Utc>) -> bool {
        self.status == WatchStatus::Active
            && self.expires().is_some_and(|e| e - now < REFRESH_BEFORE)
    }
}

// ------------------------------------------------------------------------------ store

fn sql(doing: &'static str) -> impl FnOnce(rusqlite::Error) -> JournalError {
    move |source| JournalError::Sqlite { doing, source }
}

async fn store_put(store: &Journal, principal: &str, w: &Watch) -> Result<(), JournalError> {
    let body = serde_json::to_string(w).map_err(JournalError::Encode)?;
    let (principal, id) = (principal.to_owned(), w.id.clone());
    let at = Utc::now().timestamp_millis();
    store
        .run(move |conn| {
            conn.execute(
                "INSERT INTO watches (id, principal, at_ms, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET body = excluded.body WHERE principal = excluded.principal",
                params![id, principal, at, body],
            )
            .map_err(sql("save a watch"))?;
            Ok(())
        })
        .await
}

async fn store_list(store: &Journal, principal: &str) -> Result<Vec<Watch>, JournalError> {
    let principal = principal.to_owned();
    store
        .run(move |conn| {
            let mut st = conn
                .prepare("SELECT body FROM watches WHERE principal = ?1 ORDER BY at_ms, id")
                .map_err(sql("list watches"))?;
            let rows = st
                .query_map(params![principal], |r| r.get::<_, String>(0))
                .map_err(sql("list watches"))?;
            let mut out = Vec::new();
            for body in rows {
                let body = body.map_err(sql("list watches"))?;
                out.push(serde_json::from_str(&body).map_err(JournalError::Encode)?);
            }
            Ok(out)
        })
        .await
}

async fn store_get(
    store: &Journal,
    principal: &str,
    id: &str,
) -> Result<Option<Watch>, JournalError> {
    let (principal, id) = (principal.to_owned(), id.to_owned());
    store
        .run(move |conn| {
            let body: Option<String> = conn
                .query_row(
                    "SELECT body FROM watches WHERE id = ?1 AND principal = ?2",
                    params![id, principal],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql("read a watch"))?;
            body.map(|b| serde_json::from_str(&b).map_err(JournalError::Encode))
                .transpose()
        })
        .await
}

async fn store_delete(store: &Journal, principal: &str, id: &str) -> Result<bool, JournalError> {
    let (principal, id) = (principal.to_owned(), id.to_owned());
    store
        .run(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM watches WHERE id = ?1 AND principal = ?2",
                    params![id, principal],
                )
                .map_err(sql("delete a watch"))?;
            Ok(n > 0)
        })
        .await
}

// ------------------------------------------------------------------------------ feed

/// The change feed's process-wide part (inside the resources' `Watchers`): where watches are
/// stored, the clients the poller may use (one per principal seen), and the poller.
#[derive(Default)]
pub(crate) struct Feed {
    /// The process's journal (see [`Feed::configure`]); the store is in its file when usable.
    journal: OnceLock<JournalSlot>,
    store: OnceLock<Result<Arc<Journal>, Arc<JournalError>>>,
    interval: OnceLock<Duration>,
    clients: Mutex<HashMap<Arc<str>, Client>>,
    started: AtomicBool,
    /// Principals whose stored watches were already looked up (once each per process, not on
    /// every session or stateless request).
    resumed: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").finish_non_exhaustive()
    }
}

impl Feed {
    /// Set the journal (its store holds the watches when it is usable; otherwise a private
    /// in-memory one does, chosen on first use) and the poll interval; the first call wins.
    pub(crate) fn configure(&self, journal: JournalSlot, interval: Duration) {
        let _ = self.journal.set(journal);
        let _ = self.interval.set(interval);
    }

    fn store(&self) -> Result<Arc<Journal>, ToolError> {
        let slot = self.store.get_or_init(|| {
            match self.journal.get().map(JournalSlot::get) {
                Some(Ok(Some(j))) => Ok(j.clone()),
                // Off, unusable, or never configured (tests): a private in-memory store.
                _ => Journal::memory().map_err(Arc::new),
            }
        });
        match slot {
            Ok(j) => Ok(j.clone()),
            Err(e) => Err(ToolError::Invalid(format!(
                "the watch store is unavailable: {e}"
            ))),
        }
    }

    fn interval(&self) -> Duration {
        self.interval
            .get()
            .copied()
            .unwrap_or(crate::config::DEFAULT_WATCH_POLL_INTERVAL)
    }
}

/// Remember `ctx`'s client for the poller and start the poller (once per process).
pub(crate) fn ensure_poller(ctx: &ToolContext) {
    let watchers = ctx.watchers();
    let feed = watchers.feed();
    if let Ok(client) = ctx.client()
        && let Ok(mut clients) = feed.clients.lock()
    {
        clients
            .entry(ctx.principal_arc())
            .or_insert_with(|| client.clone());
    }
    if feed.started.swap(true, Ordering::SeqCst) {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        feed.started.store(false, Ordering::SeqCst);
        return;
    };
    let weak = Arc::downgrade(watchers);
    let read_only = ctx.options().read_only;
    runtime.spawn(poll_loop(weak, read_only));
}

/// How long after a server's start [`resume_on_start`] looks at the store: after the host's
/// start-up exchange, which its store read (a blocking-pool thread, a SQLite query) would only
/// slow down; the poller's first round is a poll interval (30 s by default) away anyway.
const RESUME_AFTER: Duration = Duration::from_secs(1);

/// At a server's start: when the store holds watches of `ctx`'s principal (a restart), start
/// the poller ([`RESUME_AFTER`] later) so that they are kept alive and announced without waiting
/// for a tool call.
pub(crate) fn resume_on_start(ctx: &ToolContext) {
    let feed = ctx.watchers().feed();
    if feed.started.load(Ordering::SeqCst) || ctx.client().is_err() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let first_time = feed
        .resumed
        .lock()
        .map(|mut seen| seen.insert(ctx.principal().to_owned()))
        .unwrap_or(true);
    if !first_time {
        return;
    }
    let ctx = ctx.clone();
    runtime.spawn(async move {
        tokio::time::sleep(RESUME_AFTER).await;
        let Ok(store) = ctx.watchers().feed().store() else {
            return;
        };
        if let Ok(list) = store_list(&store, ctx.principal()).await
            && list.iter().any(|w| w.status == WatchStatus::Active)
        {
            ensure_poller(&ctx);
        }
    });
}

async fn poll_loop(watchers: Weak<Watchers>, read_only: bool) {
    loop {
        let interval = match watchers.upgrade() {
            Some(w) => w.feed().interval(),
            None => return,
        };
        tokio::time::sleep(interval).await;
        let Some(w) = watchers.upgrade() else {
            return;
        };
        let clients: Vec<(Arc<str>, Client)> = match w.feed().clients.lock() {
            Ok(c) => c.iter().map(|(p, c)| (p.clone(), c.clone())).collect(),
            Err(_) => return,
        };
        let Ok(store) = w.feed().store() else {
            continue;
        };
        for (principal, client) in clients {
            if let Err(e) = poll_principal(&w, &store, &principal, &client, read_only).await {
                tracing::debug!("watch poll failed: {e}");
            }
        }
    }
}

/// One poll of one principal's active watches: one webhook list per base.
async fn poll_principal(
    watchers: &Arc<Watchers>,
    store: &Journal,
    principal: &Arc<str>,
    client: &Client,
    read_only: bool,
) -> Result<(), ToolError> {
    let watches: Vec<Watch> = store_list(store, principal)
        .await?
        .into_iter()
        .filter(|w| w.status == WatchStatus::Active)
        .collect();
    let mut by_base: BTreeMap<String, Vec<Watch>> = BTreeMap::new();
    for w in watches {
        by_base.entry(w.base_id.clone()).or_default().push(w);
    }
    for (base, list) in by_base {
        let Ok(base_id) = base.parse::<BaseId>() else {
            continue;
        };
        let hooks = match client.list_webhooks(&base_id).await {
            Ok(h) => h.webhooks,
            Err(e) => {
                tracing::debug!(base = %base, "listing webhooks failed: {e}");
                continue;
            }
        };
        for mut w in list {
            let before = (w.seen, w.status);
            let hook = hooks.iter().find(|h| h.id == w.webhook_id);
            sync_with(&mut w, hook);
            if !read_only {
                keep_alive(client, &mut w).await;
            }
            if (w.seen, w.status) != before {
                store_put(store, principal, &w).await?;
                watchers.resource_updated(principal, &watch_uri(&w.id));
            }
        }
    }
    Ok(())
}

/// Update a watch from its webhook as listed (None: it no longer exists).
fn sync_with(w: &mut Watch, hook: Option<&Webhook>) {
    match hook {
        None => w.status = WatchStatus::Gone,
        Some(h) => {
            w.seen = w.seen.max(h.cursor_for_next_payload);
            if h.expiration_time.is_some() {
                w.expires_at = h.expiration_time.clone();
            }
            if !h.is_hook_enabled {
                w.status = WatchStatus::Expired;
            }
        }
    }
}

/// Refresh the webhook when it expires within [`REFRESH_BEFORE`]; a refused refresh of a
/// missing (404) or disabled (422) webhook marks the watch.
async fn keep_alive(client: &Client, w: &mut Watch) -> bool {
    if !w.needs_refresh(Utc::now()) {
        return false;
    }
    let Ok(base) = w.base_id.parse::<BaseId>() else {
        return false;
    };
    match client.refresh_webhook(&base, &w.webhook_id).await {
        Ok(exp) => {
            if exp.is_some() {
                w.expires_at = exp;
            }
            tracing::debug!(watch = %w.id, "webhook refreshed");
            true
        }
        Err(e) => {
            match e.status() {
                Some(404) => w.status = WatchStatus::Gone,
                Some(422) => w.status = WatchStatus::Expired,
                _ => tracing::debug!(watch = %w.id, "webhook refresh failed: {e}"),
            }
            false
        }
    }
}

// ------------------------------------------------------------------------------ params

/// Parameters of watch_table.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct WatchTableParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// Only changes to these fields (names or IDs); omit for every field.
    #[serde(default, deserialize_with = "lenient_opt_strings")]
    pub(crate) fields: Option<Vec<String>>,
    /// true: create nothing; say what would be watched.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) dry_run: bool,
}

/// Parameters of list_table_changes.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ListTableChangesParams {
    /// The watch (from watch_table or list_watches).
    pub(crate) watch_id: String,
    /// Where to start (a `cursor` from an earlier result); omit to continue where the last
    /// call stopped.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) cursor: Option<String>,
    /// Most changes to return (default 100, max 500).
    #[serde(default, deserialize_with = "opt_text")]
    #[schemars(with = "Option<u32>")]
    pub(crate) max_changes: Option<String>,
}

/// Parameters of list_watches (none).
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ListWatchesParams {}

/// Parameters of unwatch_table.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct UnwatchTableParams {
    /// The watch to remove (its webhook is deleted).
    pub(crate) watch_id: String,
    /// true: delete nothing; say what would be removed.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) dry_run: bool,
}

// ------------------------------------------------------------------------------ outputs

/// A watch.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct WatchOut {
    /// Watch ID (pass to list_table_changes).
    pub(crate) watch_id: String,
    /// Base ID.
    pub(crate) base_id: String,
    /// Table ID.
    pub(crate) table_id: String,
    /// Table name (when watched).
    pub(crate) table_name: String,
    /// Fields watched (names); empty = every field.
    pub(crate) fields: Vec<String>,
    /// active, expired (no new changes: watch_table again) or gone (the webhook was deleted).
    pub(crate) status: WatchStatus,
    /// When the webhook expires unless refreshed (the server refreshes it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<String>,
    /// Payloads (Airtable transactions) not read yet, as last seen.
    pub(crate) pending: u64,
    /// Its resource (subscribe for update notifications).
    pub(crate) uri: String,
}

fn watch_out(w: &Watch, names: &[String]) -> WatchOut {
    WatchOut {
        watch_id: w.id.clone(),
        base_id: w.base_id.clone(),
        table_id: w.table_id.clone(),
        table_name: w.table_name.clone(),
        fields: names.to_vec(),
        status: w.status,
        expires_at: w.expires_at.clone(),
        pending: w.seen.saturating_sub(w.cursor),
        uri: watch_uri(&w.id),
    }
}

/// Result of watch_table.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct WatchTableOutput {
    /// The watch (on dry_run: what would be watched, with an empty watch_id).
    pub(crate) watch: WatchOut,
    /// true when nothing was created (dry_run, or an identical watch already existed).
    pub(crate) existing_or_dry_run: bool,
    /// What happened and what to do next.
    pub(crate) note: String,
}

/// One field's change.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct FieldChange {
    /// Value before (absent when Airtable did not send it or the record is new; null = empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) old: Option<Value>,
    /// Value after (null = emptied).
    pub(crate) new: Value,
}

/// One record change.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct RecordChange {
    /// created, changed or deleted.
    pub(crate) action: &'static str,
    /// Record ID (rec...).
    pub(crate) record_id: String,
    /// Fields by name (created: its values; changed: what changed).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) fields: BTreeMap<String, FieldChange>,
    /// Who: "Name <email>", or the source (e.g. automation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) by: Option<String>,
    /// When (ISO 8601).
    pub(crate) at: String,
}

/// Result of list_table_changes.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TableChangesOutput {
    /// The watch.
    pub(crate) watch_id: String,
    /// Changes, oldest first.
    pub(crate) changes: Vec<RecordChange>,
    /// Pass it back to read from here (the next call without cursor starts here too).
    pub(crate) cursor: String,
    /// true: more changes wait; call again.
    pub(crate) has_more: bool,
    /// The watch's state (expired/gone: no new changes; watch_table again).
    pub(crate) status: WatchStatus,
    /// Anything to know (an expired webhook, an error payload, a cut result).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
}

/// Result of list_watches.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct WatchesOutput {
    /// This token's watches.
    pub(crate) watches: Vec<WatchOut>,
    /// Present when Airtable could not be asked about some of them (stored state shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
}

/// Result of unwatch_table.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct UnwatchOutput {
    /// The watch.
    pub(crate) watch_id: String,
    /// true: the watch was removed (false on dry_run).
    pub(crate) removed: bool,
    /// true when dry_run: nothing was deleted.
    pub(crate) dry_run: bool,
    /// What happened.
    pub(crate) note: String,
}

// ------------------------------------------------------------------------------ helpers

/// An optional string or number, as text ("" = absent): cursors and counts arrive either way.
fn opt_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a number or a string, got {other}"
        ))),
    }
}

fn unknown_watch(id: &str) -> ToolError {
    ToolError::Invalid(format!(
        "Unknown watch_id {id:?}: list_watches shows this token's watches; watch_table creates one."
    ))
}

fn new_watch_id() -> String {
    let bytes: [u8; 8] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("wch{hex}")
}

/// A V2 (webhook) cell value as the tools show values: selects and collaborators by name,
/// links by name (or ID).
fn plain(v: &Value) -> Value {
    match v {
        Value::Object(m) => match (m.get("name"), m.get("id")) {
            (Some(n), _) if !n.is_null() => n.clone(),
            (_, Some(id)) if m.len() <= 2 => id.clone(),
            _ => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(plain).collect()),
        _ => v.clone(),
    }
}

fn who(meta: Option<&Value>) -> Option<String> {
    let meta = meta?;
    let user = meta.pointer("/sourceMetadata/user");
    let name = user
        .and_then(|u| u.get("name"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let email = user
        .and_then(|u| u.get("email"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    match (name, email) {
        (Some(n), Some(e)) => Some(format!("{n} <{e}>")),
        (Some(n), None) => Some(n.to_owned()),
        (None, Some(e)) => Some(e.to_owned()),
        (None, None) => meta
            .get("source")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

/// The changes of one payload to one table, with field names from `names` (ID → name).
fn payload_changes(
    p: &WebhookPayload,
    table_id: &str,
    names: &HashMap<String, String>,
) -> Vec<RecordChange> {
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());
    let by = who(p.action_metadata.as_ref());
    let mut out = Vec::new();
    let Some(t) = p.changed_tables_by_id.get(table_id) else {
        return out;
    };
    for (id, rec) in &t.created_records_by_id {
        let fields = (rec.cell_values_by_field_id.iter())
            .map(|(f, v)| {
                (
                    name(f),
                    FieldChange {
                        old: None,
                        new: plain(v),
                    },
                )
            })
            .collect();
        out.push(RecordChange {
            action: "created",
            record_id: id.clone(),
            fields,
            by: by.clone(),
            at: rec
                .created_time
                .clone()
                .unwrap_or_else(|| p.timestamp.clone()),
        });
    }
    for (id, rec) in &t.changed_records_by_id {
        let prev = rec.previous.as_ref().map(|c| &c.cell_values_by_field_id);
        let fields = (rec.current.cell_values_by_field_id.iter())
            .map(|(f, v)| {
                let old = prev.map(|m| m.get(f).map_or(Value::Null, plain));
                (name(f), FieldChange { old, new: plain(v) })
            })
            .collect();
        out.push(RecordChange {
            action: "changed",
            record_id: id.clone(),
            fields,
            by: by.clone(),
            at: p.timestamp.clone(),
        });
    }
    for id in &t.destroyed_record_ids {
        out.push(RecordChange {
            action: "deleted",
            record_id: id.clone(),
            fields: BTreeMap::new(),
            by: by.clone(),
            at: p.timestamp.clone(),
        });
    }
    out
}

fn api(op: &'static str, base: &str, e: crate::airtable::Error) -> ToolError {
    ToolError::api(op, base, scope::WEBHOOK_MANAGE, e)
}

impl AirtableServer {
    fn watch_store(&self) -> Result<Arc<Journal>, ToolError> {
        self.ctx.watchers().feed().store()
    }

    async fn watch_of(&self, id: &str) -> Result<(Arc<Journal>, Watch), ToolError> {
        let store = self.watch_store()?;
        let w = store_get(&store, self.ctx.principal(), id.trim())
            .await?
            .ok_or_else(|| unknown_watch(id))?;
        Ok((store, w))
    }

    /// Field names by ID of a watch's table (empty when the schema cannot be read).
    async fn field_names(&self, w: &Watch) -> HashMap<String, String> {
        let Ok(base) = self.ctx.base(&w.base_id) else {
            return HashMap::new();
        };
        let Ok(schema) = self.ctx.schema(&base).await else {
            return HashMap::new();
        };
        (schema.tables.iter())
            .filter(|t| t.id.as_ref() == w.table_id)
            .flat_map(|t| t.fields.iter())
            .map(|f| (f.id.to_string(), f.name.clone()))
            .collect()
    }

    async fn watch_out(&self, w: &Watch) -> WatchOut {
        let names = self.field_names(w).await;
        let fields: Vec<String> = (w.field_ids.iter())
            .map(|f| names.get(f).cloned().unwrap_or_else(|| f.clone()))
            .collect();
        watch_out(w, &fields)
    }

    /// Refresh a watch's state from Airtable (one webhook list) and keep it alive.
    async fn sync_watch(&self, store: &Journal, w: &mut Watch) -> Result<(), ToolError> {
        let client = self.ctx.client()?;
        let base = self.ctx.base(&w.base_id)?;
        let hooks = client
            .list_webhooks(&base)
            .await
            .map_err(|e| api("list the base's webhooks", base.as_ref(), e))?;
        let hook = hooks.webhooks.iter().find(|h| h.id == w.webhook_id);
        sync_with(w, hook);
        if !self.ctx.options().read_only {
            keep_alive(client, w).await;
        }
        store_put(store, self.ctx.principal(), w).await?;
        Ok(())
    }
}

#[tool_router(router = watch_router, vis = "pub(crate)")]
impl AirtableServer {
    #[tool(
        name = "watch_table",
        title = "Watch table",
        description = "Start a change feed on a table (optionally only some fields): creates an Airtable webhook the server polls and keeps alive. Read changes with list_table_changes(watch_id); subscribe to the returned uri for update notifications. Watching the same table and fields again returns the existing watch. Not journaled; unwatch_table removes it. A read-only server cannot watch.",
        annotations(
            title = "Watch table",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn watch_table(
        &self,
        Parameters(p): Parameters<WatchTableParams>,
    ) -> Result<Json<WatchTableOutput>, ToolError> {
        self.ctx.require_write("watch_table")?;
        let ctx = self.ctx.table_ctx(&p.base_id, &p.table_id).await?;
        let table = ctx.table().ok_or_else(|| {
            ToolError::Invalid(format!(
                "The schema of base {} cannot be read, so table {:?} cannot be watched (the token needs schema.bases:read).",
                ctx.base, p.table_id
            ))
        })?;
        let mut field_ids = Vec::new();
        let mut field_names = Vec::new();
        for name in p.fields.iter().flatten() {
            let f = find_field(table, name.trim()).ok_or_else(|| {
                let names: Vec<&str> = table.fields.iter().map(|f| f.name.as_str()).collect();
                ToolError::Invalid(format!(
                    "Unknown field {name:?} in table {:?}. Fields: {}.",
                    table.name,
                    names.join(", ")
                ))
            })?;
            if !field_ids.contains(&f.id.to_string()) {
                field_ids.push(f.id.to_string());
                field_names.push(f.name.clone());
            }
        }
        let store = self.watch_store()?;
        let principal = self.ctx.principal().to_owned();
        let mut sorted = field_ids.clone();
        sorted.sort();
        for w in store_list(&store, &principal).await? {
            let mut theirs = w.field_ids.clone();
            theirs.sort();
            if w.base_id == ctx.base.as_ref()
                && w.table_id == table.id.as_ref()
                && theirs == sorted
                && w.status == WatchStatus::Active
            {
                ensure_poller(&self.ctx);
                return Ok(Json(WatchTableOutput {
                    watch: self.watch_out(&w).await,
                    existing_or_dry_run: true,
                    note: "This table (and fields) is already watched: the existing watch is returned.".to_owned(),
                }));
            }
        }
        let scope_text = if field_names.is_empty() {
            "every field".to_owned()
        } else {
            field_names.join(", ")
        };
        if p.dry_run {
            let w = Watch {
                id: String::new(),
                base_id: ctx.base.to_string(),
                table_id: table.id.to_string(),
                table_name: table.name.clone(),
                field_ids,
                webhook_id: String::new(),
                cursor: 1,
                seen: 1,
                expires_at: None,
                status: WatchStatus::Active,
                created_at: Utc::now().to_rfc3339(),
            };
            return Ok(Json(WatchTableOutput {
                watch: watch_out(&w, &field_names),
                existing_or_dry_run: true,
                note: format!(
                    "Nothing was created. Call again without dry_run to watch table {} ({scope_text}): one Airtable webhook (a base has at most 10).",
                    table.name
                ),
            }));
        }
        let spec = WebhookSpec {
            options: WebhookOptions {
                filters: WebhookFilters {
                    data_types: vec!["tableData".to_owned()],
                    record_change_scope: Some(table.id.to_string()),
                    watch_data_in_field_ids: (!field_ids.is_empty()).then(|| field_ids.clone()),
                },
                includes: Some(WebhookIncludes {
                    include_previous_cell_values: Some(true),
                }),
            },
        };
        let client = self.ctx.client()?;
        let created = client
            .create_webhook(&ctx.base, &spec)
            .await
            .map_err(|e| api("create a webhook", ctx.base.as_ref(), e))?;
        let w = Watch {
            id: new_watch_id(),
            base_id: ctx.base.to_string(),
            table_id: table.id.to_string(),
            table_name: table.name.clone(),
            field_ids,
            webhook_id: created.id,
            cursor: 1,
            seen: 1,
            expires_at: created.expiration_time,
            status: WatchStatus::Active,
            created_at: Utc::now().to_rfc3339(),
        };
        store_put(&store, &principal, &w).await?;
        ensure_poller(&self.ctx);
        Ok(Json(WatchTableOutput {
            watch: watch_out(&w, &field_names),
            existing_or_dry_run: false,
            note: format!(
                "Watching table {} ({scope_text}). Changes from now on: list_table_changes(watch_id).",
                table.name
            ),
        }))
    }

    #[tool(
        name = "list_table_changes",
        title = "List table changes",
        description = "What changed in a watched table since the last call (or since cursor): records created, changed (fields by name, old and new values) and deleted, with who and when, oldest first. Follow has_more; the cursor is kept across restarts.",
        annotations(
            title = "List table changes",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub(crate) async fn list_table_changes(
        &self,
        Parameters(p): Parameters<ListTableChangesParams>,
    ) -> Result<Json<TableChangesOutput>, ToolError> {
        let (store, mut w) = self.watch_of(&p.watch_id).await?;
        ensure_poller(&self.ctx);
        let max = match p.max_changes.as_deref() {
            None => DEFAULT_MAX_CHANGES,
            Some(m) => m.parse::<u32>().unwrap_or(0),
        };
        if max == 0 || max > MAX_CHANGES {
            return Err(ToolError::Invalid(format!(
                "max_changes must be from 1 to {MAX_CHANGES}."
            )));
        }
        let start = match p.cursor.as_deref() {
            None => w.cursor,
            Some(c) => c.trim().parse::<u64>().ok().filter(|c| *c >= 1).ok_or_else(|| {
                ToolError::Invalid(format!(
                    "cursor {c:?} is not a cursor: pass the `cursor` of an earlier list_table_changes result, or omit it."
                ))
            })?,
        };
        let client = self.ctx.client()?;
        let base = self.ctx.base(&w.base_id)?;
        let mut notes = Vec::new();
        if !self.ctx.options().read_only && keep_alive(client, &mut w).await {
            tracing::debug!(watch = %w.id, "refreshed on activity");
        }
        let names = self.field_names(&w).await;
        let budget = self.ctx.budget().saturating_mul(3) / 4;
        let mut changes: Vec<RecordChange> = Vec::new();
        let mut size = 0usize;
        let mut cursor = start;
        let mut has_more = false;
        'pages: for _ in 0..MAX_PAGES {
            let page: PayloadPage = match client
                .list_webhook_payloads(&base, &w.webhook_id, cursor, Some(50))
                .await
            {
                Ok(p) => p,
                Err(e) if e.status() == Some(404) => {
                    w.status = WatchStatus::Gone;
                    store_put(&store, self.ctx.principal(), &w).await?;
                    return Err(ToolError::Invalid(format!(
                        "The webhook of watch {} no longer exists in Airtable (deleted elsewhere, or dropped a week after it expired). Call unwatch_table({:?}) and watch_table again to start a new feed.",
                        w.id, w.id
                    )));
                }
                Err(e) => return Err(api("list webhook payloads", base.as_ref(), e)),
            };
            let n = page.payloads.len();
            for (i, payload) in page.payloads.iter().enumerate() {
                if payload.error {
                    notes.push(format!(
                        "Airtable reported an error payload ({}): the webhook may have stopped; check list_watches.",
                        payload.code.as_deref().unwrap_or("unknown")
                    ));
                }
                let these = payload_changes(payload, &w.table_id, &names);
                let bytes: usize = these
                    .iter()
                    .map(|c| serde_json::to_string(c).map_or(0, |s| s.len() + 1))
                    .sum();
                let over = changes.len() + these.len() > max as usize || size + bytes > budget;
                if over && !changes.is_empty() {
                    has_more = true;
                    break 'pages;
                }
                changes.extend(these);
                size += bytes;
                // This payload's cursor is the page's start + i; the next one follows it.
                cursor = page.cursor.saturating_sub((n - i - 1) as u64).max(cursor);
                if over {
                    notes.push("One Airtable transaction holds more changes than max_changes or the result budget: it is shown whole.".to_owned());
                    has_more = i + 1 < n || page.might_have_more;
                    break 'pages;
                }
            }
            if n == 0 {
                cursor = page.cursor.max(cursor);
                break;
            }
            cursor = page.cursor.max(cursor);
            // Stop on an empty page too (never loop on a stale mightHaveMore).
            has_more = page.might_have_more;
            if !has_more {
                break;
            }
        }
        w.cursor = cursor;
        w.seen = w.seen.max(cursor);
        if w.status == WatchStatus::Active && w.expires().is_some_and(|e| e <= Utc::now()) {
            w.status = WatchStatus::Expired;
        }
        match w.status {
            WatchStatus::Expired => notes.push(
                "This watch's webhook expired: changes after its expiry are not recorded. Call unwatch_table and watch_table again to start a new feed.".to_owned(),
            ),
            WatchStatus::Gone => notes.push("This watch's webhook no longer exists.".to_owned()),
            WatchStatus::Active => {}
        }
        store_put(&store, self.ctx.principal(), &w).await?;
        Ok(Json(TableChangesOutput {
            watch_id: w.id.clone(),
            changes,
            cursor: cursor.to_string(),
            has_more,
            status: w.status,
            note: (!notes.is_empty()).then(|| notes.join(" ")),
        }))
    }

    #[tool(
        name = "list_watches",
        title = "List watches",
        description = "This token's table watches (change feeds): table, fields, status (active, expired, gone), expiry and pending changes. Checks each with Airtable and keeps it alive.",
        annotations(
            title = "List watches",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn list_watches(
        &self,
        Parameters(_p): Parameters<ListWatchesParams>,
    ) -> Result<Json<WatchesOutput>, ToolError> {
        let store = self.watch_store()?;
        let list = store_list(&store, self.ctx.principal()).await?;
        if !list.is_empty() {
            ensure_poller(&self.ctx);
        }
        let mut out = Vec::new();
        let mut failed = Vec::new();
        for mut w in list {
            if w.status == WatchStatus::Active
                && let Err(e) = self.sync_watch(&store, &mut w).await
            {
                failed.push(format!("{}: {}", w.id, e.text()));
            }
            out.push(self.watch_out(&w).await);
        }
        Ok(Json(WatchesOutput {
            watches: out,
            note: (!failed.is_empty())
                .then(|| format!("Could not check with Airtable: {}", failed.join("; "))),
        }))
    }

    #[tool(
        name = "unwatch_table",
        title = "Unwatch table",
        description = "Stop a change feed: deletes the watch's Airtable webhook and forgets the watch (unread changes are lost). dry_run=true deletes nothing. Not journaled: watch_table starts a new feed.",
        annotations(
            title = "Unwatch table",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn unwatch_table(
        &self,
        Parameters(p): Parameters<UnwatchTableParams>,
    ) -> Result<Json<UnwatchOutput>, ToolError> {
        self.ctx.require_write("unwatch_table")?;
        let (store, w) = self.watch_of(&p.watch_id).await?;
        if p.dry_run {
            return Ok(Json(UnwatchOutput {
                watch_id: w.id.clone(),
                removed: false,
                dry_run: true,
                note: format!(
                    "Nothing was deleted. Call again without dry_run to delete webhook {} of table {} and forget this watch ({} unread transactions).",
                    w.webhook_id,
                    w.table_name,
                    w.seen.saturating_sub(w.cursor)
                ),
            }));
        }
        let client = self.ctx.client()?;
        let base = self.ctx.base(&w.base_id)?;
        let note = match client.delete_webhook(&base, &w.webhook_id).await {
            Ok(()) => format!("Webhook {} deleted; watch forgotten.", w.webhook_id),
            Err(e) if e.status() == Some(404) => format!(
                "Webhook {} was already gone; watch forgotten.",
                w.webhook_id
            ),
            Err(e) => return Err(api("delete the webhook", base.as_ref(), e)),
        };
        store_delete(&store, self.ctx.principal(), &w.id).await?;
        Ok(Json(UnwatchOutput {
            watch_id: w.id,
            removed: true,
            dry_run: false,
            note,
        }))
    }
}

/// resources/read of `airtable://watches/{id}`: the watch's state and pending count.
pub(crate) async fn read_resource(server_ctx: &ToolContext, id: &str) -> Result<Value, ToolError> {
    let store = server_ctx.watchers().feed().store()?;
    let w = store_get(&store, server_ctx.principal(), id)
        .await?
        .ok_or_else(|| unknown_watch(id))?;
    ensure_poller(server_ctx);
    Ok(json!({
        "watch_id": w.id,
        "base_id": w.base_id,
        "table_id": w.table_id,
        "table_name": w.table_name,
        "field_ids": w.field_ids,
        "status": w.status,
        "expires_at": w.expires_at,
        "pending": w.seen.saturating_sub(w.cursor),
        "cursor": w.cursor.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_uris_round_trip() {
        assert_eq!(parse_watch_uri(&watch_uri("wch1")), Some("wch1"));
        assert_eq!(parse_watch_uri("airtable://watches/"), None);
        assert_eq!(parse_watch_uri("airtable://watches/a/b"), None);
    }

    #[test]
    fn v2_values_become_plain() {
        assert_eq!(
            plain(&json!({"id": "sel1", "name": "Done", "color": "x"})),
            json!("Done")
        );
        assert_eq!(
            plain(&json!([{"id": "rec1"}, {"id": "rec2", "name": "B"}])),
            json!(["rec1", "B"])
        );
        assert_eq!(plain(&json!(3)), json!(3));
    }
}
