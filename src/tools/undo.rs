//! The write journal's tools: `list_recent_writes` and `undo_write` (also behind the CLI
//! `airtable-mcp writes list|undo`).
//!
//! Undo takes a journaled write back, change by change in reverse order:
//! - a created record is deleted (a conflict when it changed since);
//! - an updated record gets the journaled before-values back (fields absent before are
//!   cleared; a conflict per field whose current value is not the write's);
//! - a deleted record is recreated with every field that is writable now (computed fields are
//!   recomputed; attachments re-attached by URL; links as record IDs): it gets a new ID;
//! - a renamed table or field gets its old name and description back;
//! - a comment is deleted; created tables and fields cannot be deleted through the Web API.
//!
//! Conflicts stop the undo unless `force`; `dry_run` returns the plan. Reads go 100 records a
//! request, writes through the batch runner (10 a request); the result counts the requests.
//! The undo is itself journaled (`undo_of`), so it can be undone in turn.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rmcp::handler::server::common::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{Json, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::airtable::{
    BaseId, BaseSchema, ChunkStatus, CommentId, FieldType, Fields, RecordId, RecordUpdate, Table,
    UpdateField, UpdateTable,
};
use crate::tools::ToolError;
use crate::tools::batch::BatchWrite;
use crate::tools::confirm::{ConfirmAsk, ConfirmReason};
use crate::tools::context::ToolContext;
use crate::tools::handler::AirtableServer;
use crate::tools::journal::{Change, Journal, NamedMeta, NewWrite, WriteEntry};
use crate::tools::params::{lenient_bool, lenient_u32, opt_nonempty};
use crate::tools::progress::Progress;
use crate::tools::writes::{JournalNote, PREVIEW_RECORDS, WriteControl, primary_label, same_value};

/// Airtable's attachment URLs stop working after about this long.
const ATTACHMENT_URL_LIFETIME: chrono::Duration = chrono::Duration::hours(2);

// ---------------------------------------------------------------------------------------------
// Parameters and outputs

fn default_limit() -> u32 {
    20
}

/// Parameters of list_recent_writes.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ListWritesParams {
    /// Only writes in this base (app...); default: every base.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) base_id: Option<String>,
    /// Most writes to return, newest first (default 20, at most 100).
    #[serde(default = "default_limit", deserialize_with = "lenient_u32")]
    pub(crate) limit: u32,
}

/// Parameters of undo_write.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct UndoParams {
    /// write_id from a write result or list_recent_writes.
    pub(crate) write_id: String,
    /// true: undo even over later changes (they are lost); otherwise conflicts stop the undo.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) force: bool,
    #[serde(flatten)]
    pub(crate) control: WriteControl,
}

/// One journaled write, as listed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct WriteListed {
    /// The write's ID (give it to undo_write).
    pub(crate) id: String,
    /// When it was made (UTC, RFC 3339).
    pub(crate) at: String,
    /// The tool that made it.
    pub(crate) tool: String,
    /// The base.
    pub(crate) base_id: String,
    /// The table mainly concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) table_name: Option<String>,
    /// What was done.
    pub(crate) summary: String,
    /// Records created, updated or deleted.
    pub(crate) record_count: usize,
    /// False when the write stopped part way (only what was written is journaled).
    pub(crate) complete: bool,
    /// True when the write was begun but never finished (the server stopped while sending):
    /// it may have been partly applied. Check the records before acting.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) pending: bool,
    /// The undo that took this write back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) undone_by: Option<String>,
    /// When this write is an undo: the write it took back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) undo_of: Option<String>,
}

impl WriteListed {
    fn of(e: &WriteEntry) -> Self {
        WriteListed {
            id: e.id.clone(),
            at: e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            tool: e.write.tool.clone(),
            base_id: e.write.base_id.clone(),
            table_name: e.write.table_name.clone(),
            summary: e.write.summary.clone(),
            record_count: record_count(&e.write.changes),
            complete: e.write.complete,
            pending: e.pending,
            undone_by: e.undone_by.clone(),
            undo_of: e.write.undo_of.clone(),
        }
    }
}

fn record_count(changes: &[Change]) -> usize {
    changes
        .iter()
        .filter(|c| {
            matches!(
                c,
                Change::RecordCreated { .. }
                    | Change::RecordUpdated { .. }
                    | Change::RecordDeleted { .. }
            )
        })
        .count()
}

/// Result of list_recent_writes.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ListWritesOutput {
    /// Writes listed.
    pub(crate) count: usize,
    /// Newest first.
    pub(crate) writes: Vec<WriteListed>,
}

/// What undo did (or, on dry_run, would do) to one record, table or field.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct Restored {
    /// "deleted" (a created record), "restored" (an updated record's values), "recreated" (a
    /// deleted record), "renamed" (a table or field: name/description), "comment_deleted".
    pub(crate) action: &'static str,
    /// The record, table or field.
    pub(crate) id: String,
    /// recreated: the record's new ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) new_id: Option<String>,
    /// The record's primary field value, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) label: Option<String>,
    /// The fields written back (restored, recreated).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) fields: Vec<String>,
}

/// Something undo cannot (or did not) restore.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct NotRestorable {
    /// The record, table, field or comment.
    pub(crate) id: String,
    /// What is not restored, and why.
    pub(crate) reason: String,
}

/// A field that changed after the write: undoing would overwrite that later change.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct Conflict {
    /// The record (or table / field, for schema changes).
    pub(crate) id: String,
    /// The field (or "name" / "description").
    pub(crate) field: String,
    /// The value the write left.
    pub(crate) written: Value,
    /// The value now (null = empty, or the record no longer exists).
    pub(crate) current: Value,
}

/// Result of undo_write.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct UndoOutput {
    /// The write taken back.
    pub(crate) undone: String,
    /// True on dry_run: nothing was sent; the lists say what would happen.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) dry_run: bool,
    /// True when every step was applied (false on dry_run, on conflicts without force, or
    /// when a request failed part way: see note).
    pub(crate) applied: bool,
    /// What was (or would be) restored, per record / table / field (at most 100 listed).
    pub(crate) restored: Vec<Restored>,
    /// True when `restored` lists only the first ones.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) truncated: bool,
    /// What cannot be restored (new record IDs, comments, created time, autonumbers,
    /// expired attachments, created tables and fields, records gone since).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) not_restorable: Vec<NotRestorable>,
    /// Fields changed after the write (undo stops on them unless force).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) conflicts: Vec<Conflict>,
    /// Airtable requests this undo made (reads and writes; retries not counted).
    pub(crate) requests: usize,
    /// dry_run: pass it back to apply when the server asks for confirmation and the client
    /// cannot show a dialog.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) confirm_token: Option<String>,
    /// What happened and what to do next.
    pub(crate) note: String,
    #[serde(flatten)]
    pub(crate) journal: JournalNote,
}

fn undo_schema() -> std::sync::Arc<rmcp::model::JsonObject> {
    schema_for_output::<UndoOutput>()
}

// ---------------------------------------------------------------------------------------------
// The plan

/// One step of an undo, in the order it is applied.
#[derive(Debug, Clone)]
enum Step {
    /// Delete a record the write created (`current` = its fields now).
    Delete {
        table_id: String,
        record_id: String,
        current: Fields,
    },
    /// Write a record's before-values back (`current` = those fields now).
    Patch {
        table_id: String,
        record_id: String,
        fields: Fields,
        current: Fields,
    },
    /// Recreate a deleted record with `fields` (writable now).
    Recreate {
        table_id: String,
        record_id: String,
        fields: Fields,
    },
    /// Write a table's old name/description back.
    Table {
        table_id: String,
        to: NamedMeta,
        from: NamedMeta,
    },
    /// Write a field's old name/description back.
    Field {
        table_id: String,
        field_id: String,
        to: NamedMeta,
        from: NamedMeta,
    },
    /// Delete a comment the write added.
    Comment {
        table_id: String,
        record_id: String,
        comment_id: String,
    },
}

impl Step {
    fn kind(&self) -> u8 {
        match self {
            Step::Delete { .. } => 0,
            Step::Patch { .. } => 1,
            Step::Recreate { .. } => 2,
            Step::Table { .. } => 3,
            Step::Field { .. } => 4,
            Step::Comment { .. } => 5,
        }
    }

    fn table(&self) -> &str {
        match self {
            Step::Delete { table_id, .. }
            | Step::Patch { table_id, .. }
            | Step::Recreate { table_id, .. }
            | Step::Table { table_id, .. }
            | Step::Field { table_id, .. }
            | Step::Comment { table_id, .. } => table_id,
        }
    }

    fn record(&self) -> Option<&str> {
        match self {
            Step::Delete { record_id, .. }
            | Step::Patch { record_id, .. }
            | Step::Recreate { record_id, .. } => Some(record_id),
            _ => None,
        }
    }
}

/// What an undo would do.
#[derive(Debug)]
struct UndoPlan {
    entry: WriteEntry,
    base: BaseId,
    schema: Option<std::sync::Arc<BaseSchema>>,
    steps: Vec<Step>,
    conflicts: Vec<Conflict>,
    not_restorable: Vec<NotRestorable>,
    /// Requests made while planning.
    requests: usize,
}

fn table_of<'a>(schema: Option<&'a BaseSchema>, table_id: &str) -> Option<&'a Table> {
    schema?
        .tables
        .iter()
        .find(|t| t.id.as_ref() == table_id || t.name == table_id)
}

/// A cell value as Airtable takes it back on create: attachments by URL (and filename),
/// collaborators by ID (or email); other values as read.
fn writable_value(field_type: Option<&FieldType>, v: &Value) -> Value {
    fn collaborator(c: &Value) -> Value {
        match (c.get("id"), c.get("email")) {
            (Some(id), _) => json!({ "id": id }),
            (None, Some(email)) => json!({ "email": email }),
            _ => c.clone(),
        }
    }
    match (field_type, v) {
        (Some(FieldType::MultipleAttachments), Value::Array(items)) => Value::Array(
            items
                .iter()
                .map(|a| {
                    let mut o = serde_json::Map::new();
                    for k in ["url", "filename"] {
                        if let Some(x) = a.get(k) {
                            o.insert(k.to_owned(), x.clone());
                        }
                    }
                    Value::Object(o)
                })
                .collect(),
        ),
        (Some(FieldType::SingleCollaborator), c @ Value::Object(_)) => collaborator(c),
        (Some(FieldType::MultipleCollaborators), Value::Array(items)) => {
            Value::Array(items.iter().map(collaborator).collect())
        }
        _ => v.clone(),
    }
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

impl ToolContext {
    /// The journal, or why undo cannot work.
    fn journal_for_undo(&self) -> Result<&std::sync::Arc<Journal>, ToolError> {
        match self.journal() {
            Ok(Some(j)) => Ok(j),
            Ok(None) => Err(ToolError::Unavailable(
                "The write journal is off (this server runs with --no-journal), so writes cannot be listed or undone. Restart it without --no-journal to journal new writes.".to_owned(),
            )),
            Err(e) => Err(ToolError::Unavailable(format!(
                "{e}. Restart the server with a usable --journal FILE."
            ))),
        }
    }

    /// The latest journaled writes of this context's principal.
    pub(crate) async fn recent_writes(
        &self,
        base_id: Option<&str>,
        limit: u32,
    ) -> Result<ListWritesOutput, ToolError> {
        if limit == 0 || limit > 100 {
            return Err(ToolError::Invalid(
                "limit must be from 1 to 100.".to_owned(),
            ));
        }
        let base = match base_id {
            Some(b) => Some(self.base(b)?.to_string()),
            None => None,
        };
        let journal = self.journal_for_undo()?;
        let entries = journal
            .list(self.principal(), base.as_deref(), limit as usize)
            .await?;
        let writes: Vec<WriteListed> = entries.iter().map(WriteListed::of).collect();
        Ok(ListWritesOutput {
            count: writes.len(),
            writes,
        })
    }

    /// Plan the undo of `write_id`: read what is there now, find conflicts, and list the steps
    /// (reverse order) and what cannot be restored. Sends no write.
    async fn plan_undo(&self, write_id: &str) -> Result<UndoPlan, ToolError> {
        let journal = self.journal_for_undo()?;
        let id = write_id.trim();
        let Some(entry) = journal.get(self.principal(), id).await? else {
            return Err(ToolError::Invalid(format!(
                "No write {id:?} in this token's journal (it may be mistyped, older than the journal's retention, or another token's). list_recent_writes lists yours."
            )));
        };
        if let Some(by) = &entry.undone_by {
            return Err(ToolError::Invalid(format!(
                "Write {id} was already undone by {by}. To take that undo back, undo {by}."
            )));
        }
        if entry.pending {
            return Err(ToolError::Invalid(format!(
                "Write {id} never finished (the server stopped while sending it): it may be partly applied, so it cannot be undone automatically. Its summary: {}. Check those records with get_records.",
                entry.write.summary
            )));
        }
        let mut entry = entry;
        // Records an earlier undo recreated live under new IDs now.
        let ids: Vec<String> = entry
            .write
            .changes
            .iter()
            .filter_map(change_record)
            .map(str::to_owned)
            .collect();
        let moved = journal.current_ids(self.principal(), ids).await?;
        if !moved.is_empty() {
            for c in &mut entry.write.changes {
                remap_record(c, &moved);
            }
        }
        let base = self.base(&entry.write.base_id)?;
        self.client()?;
        let mut requests = 0usize;
        // Fresh: fields writable now, names and descriptions now.
        self.invalidate_schema(&base);
        requests += 1;
        let schema = self.schema_opt(&base).await?;
        let changes = &entry.write.changes;

        // What each record should look like now if nothing touched it since the write: the
        // write's last change to it decides (created/updated: these fields; deleted: gone).
        let mut expected: BTreeMap<String, (String, Fields, BTreeSet<String>)> = BTreeMap::new();
        for c in changes {
            match c {
                Change::RecordCreated {
                    table_id,
                    record_id,
                    after,
                } => {
                    let keys = after.keys().cloned().collect();
                    expected.insert(record_id.clone(), (table_id.clone(), after.clone(), keys));
                }
                Change::RecordUpdated {
                    table_id,
                    record_id,
                    before,
                    after,
                } => {
                    let e = expected
                        .entry(record_id.clone())
                        .or_insert_with(|| (table_id.clone(), Fields::new(), BTreeSet::new()));
                    for k in before.keys().chain(after.keys()) {
                        e.2.insert(k.clone());
                        match after.get(k) {
                            Some(v) => e.1.insert(k.clone(), v.clone()),
                            None => e.1.remove(k),
                        };
                    }
                }
                Change::RecordDeleted { record_id, .. } => {
                    expected.remove(record_id);
                }
                _ => {}
            }
        }
        // The records as they are now, per table (100 a request).
        let mut by_table: BTreeMap<&str, Vec<RecordId>> = BTreeMap::new();
        for (rid, (tid, _, _)) in &expected {
            if let Ok(r) = rid.parse::<RecordId>() {
                by_table.entry(tid.as_str()).or_default().push(r);
            }
        }
        let mut current: HashMap<String, Fields> = HashMap::new();
        for (tid, ids) in by_table {
            requests += ids.len().div_ceil(100);
            let got = self.fetch_records(&base, tid, &ids, None).await?;
            current.extend(got.into_iter().map(|(k, r)| (k, r.fields)));
        }

        let created: BTreeSet<&str> = changes
            .iter()
            .filter_map(|c| match c {
                Change::RecordCreated { record_id, .. } => Some(record_id.as_str()),
                _ => None,
            })
            .collect();
        let mut conflicts = Vec::new();
        let mut not_restorable = Vec::new();
        for (rid, (tid, want, keys)) in &expected {
            let table = table_of(schema.as_deref(), tid);
            let Some(now) = current.get(rid) else {
                continue;
            };
            // Created records: also fields set since (writable ones; computed ones change
            // by themselves).
            let mut check = keys.clone();
            if let Some(t) = table {
                for k in now.keys() {
                    let writable = t
                        .fields
                        .iter()
                        .any(|f| &f.name == k && !f.field_type.is_computed());
                    if writable && created.contains(rid.as_str()) {
                        check.insert(k.clone());
                    }
                }
            }
            // Computed fields (last modified time, formulas, counts...) change by themselves
            // and are never written back: they are no conflict.
            if let Some(t) = table {
                check.retain(|k| {
                    !t.fields
                        .iter()
                        .any(|f| &f.name == k && f.field_type.is_computed())
                });
            }
            for k in check {
                let w = want.get(&k).cloned().unwrap_or(Value::Null);
                let n = now.get(&k).cloned().unwrap_or(Value::Null);
                if !same_value(&w, &n) {
                    conflicts.push(Conflict {
                        id: rid.clone(),
                        field: k,
                        written: w,
                        current: n,
                    });
                }
            }
        }

        let stale_attachments = chrono::Utc::now() - entry.at > ATTACHMENT_URL_LIFETIME;
        let mut steps = Vec::new();
        for c in changes.iter().rev() {
            match c {
                Change::RecordCreated {
                    table_id,
                    record_id,
                    ..
                } => match current.get(record_id) {
                    Some(now) => steps.push(Step::Delete {
                        table_id: table_id.clone(),
                        record_id: record_id.clone(),
                        current: now.clone(),
                    }),
                    // Deleted later in this write: the undo recreates it first (new ID).
                    None if !expected.contains_key(record_id) => steps.push(Step::Delete {
                        table_id: table_id.clone(),
                        record_id: record_id.clone(),
                        current: Fields::new(),
                    }),
                    None => not_restorable.push(NotRestorable {
                        id: record_id.clone(),
                        reason: "the created record no longer exists (already deleted): nothing to undo".to_owned(),
                    }),
                },
                Change::RecordUpdated {
                    table_id,
                    record_id,
                    before,
                    after,
                } => {
                    let recreated_later = !expected.contains_key(record_id);
                    if !recreated_later && !current.contains_key(record_id) {
                        not_restorable.push(NotRestorable {
                            id: record_id.clone(),
                            reason: format!(
                                "the record was deleted after the write: its fields {} cannot be written back",
                                before.keys().chain(after.keys().filter(|k| !before.contains_key(*k))).cloned().collect::<Vec<_>>().join(", ")
                            ),
                        });
                        continue;
                    }
                    let table = table_of(schema.as_deref(), table_id);
                    let mut fields = Fields::new();
                    for k in before.keys().chain(after.keys()) {
                        if fields.contains_key(k) {
                            continue;
                        }
                        let ft = table
                            .and_then(|t| t.fields.iter().find(|f| &f.name == k))
                            .map(|f| &f.field_type);
                        let v = before.get(k).map_or(Value::Null, |v| writable_value(ft, v));
                        fields.insert(k.clone(), v);
                    }
                    let now = current.get(record_id).cloned().unwrap_or_default();
                    steps.push(Step::Patch {
                        table_id: table_id.clone(),
                        record_id: record_id.clone(),
                        fields,
                        current: now,
                    });
                }
                Change::RecordDeleted {
                    table_id,
                    record_id,
                    before,
                } => {
                    let table = table_of(schema.as_deref(), table_id);
                    let mut fields = Fields::new();
                    let mut gone = Vec::new();
                    let mut attachments = false;
                    for (k, v) in before {
                        match table {
                            Some(t) => match t.fields.iter().find(|f| &f.name == k) {
                                Some(f) if f.field_type.is_computed() => {}
                                Some(f) => {
                                    attachments |= f.field_type == FieldType::MultipleAttachments;
                                    fields.insert(k.clone(), writable_value(Some(&f.field_type), v));
                                }
                                None => gone.push(format!("{k}={}", short(v))),
                            },
                            None => {
                                fields.insert(k.clone(), v.clone());
                            }
                        }
                    }
                    if !gone.is_empty() {
                        not_restorable.push(NotRestorable {
                            id: record_id.clone(),
                            reason: format!(
                                "fields deleted or renamed since, not restored: {}",
                                gone.join(", ")
                            ),
                        });
                    }
                    if attachments && stale_attachments {
                        not_restorable.push(NotRestorable {
                            id: record_id.clone(),
                            reason: "attachments are re-attached from URLs journaled more than 2 hours ago; Airtable's attachment URLs expire, so they may be missing".to_owned(),
                        });
                    }
                    steps.push(Step::Recreate {
                        table_id: table_id.clone(),
                        record_id: record_id.clone(),
                        fields,
                    });
                }
                Change::TableCreated { table_id, name } => not_restorable.push(NotRestorable {
                    id: table_id.clone(),
                    reason: format!(
                        "table {name:?} was created; the Web API cannot delete tables: delete it in Airtable if unwanted"
                    ),
                }),
                Change::FieldCreated {
                    table_id: _,
                    field_id,
                    name,
                } => not_restorable.push(NotRestorable {
                    id: field_id.clone(),
                    reason: format!(
                        "field {name:?} was created; the Web API cannot delete fields: delete it in Airtable if unwanted"
                    ),
                }),
                Change::TableUpdated {
                    table_id,
                    before,
                    after,
                } => {
                    let now = table_of(schema.as_deref(), table_id).map(|t| NamedMeta {
                        name: t.name.clone(),
                        description: t.description.clone(),
                    });
                    meta_conflicts(table_id, after, now.as_ref(), &mut conflicts);
                    steps.push(Step::Table {
                        table_id: table_id.clone(),
                        to: before.clone(),
                        from: now.unwrap_or_else(|| after.clone()),
                    });
                }
                Change::FieldUpdated {
                    table_id,
                    field_id,
                    before,
                    after,
                } => {
                    let now = table_of(schema.as_deref(), table_id)
                        .and_then(|t| t.fields.iter().find(|f| f.id.as_ref() == field_id))
                        .map(|f| NamedMeta {
                            name: f.name.clone(),
                            description: f.description.clone(),
                        });
                    meta_conflicts(field_id, after, now.as_ref(), &mut conflicts);
                    steps.push(Step::Field {
                        table_id: table_id.clone(),
                        field_id: field_id.clone(),
                        to: before.clone(),
                        from: now.unwrap_or_else(|| after.clone()),
                    });
                }
                Change::CommentCreated {
                    table_id,
                    record_id,
                    comment_id,
                } => steps.push(Step::Comment {
                    table_id: table_id.clone(),
                    record_id: record_id.clone(),
                    comment_id: comment_id.clone(),
                }),
            }
        }
        Ok(UndoPlan {
            entry,
            base,
            schema,
            steps,
            conflicts,
            not_restorable,
            requests,
        })
    }

    /// Apply a plan (conflicts already accepted): the steps in order, consecutive record steps
    /// of one kind and table as one batch; journal what was done; mark the write undone.
    async fn apply_undo(&self, mut plan: UndoPlan) -> Result<UndoOutput, ToolError> {
        let client = self.client()?;
        let base = plan.base.clone();
        let undone = plan.entry.id.clone();
        let mut requests = plan.requests;
        let mut done: Vec<Change> = Vec::new();
        let mut restored: Vec<Restored> = Vec::new();
        let mut id_map: HashMap<String, String> = HashMap::new();
        let mut failure: Option<String> = None;
        let mut meta_changed = false;

        let planned = NewWrite {
            tool: "undo_write".to_owned(),
            base_id: base.to_string(),
            table_id: plan.entry.write.table_id.clone(),
            table_name: plan.entry.write.table_name.clone(),
            summary: format!("undo of {undone} ({})", plan.entry.write.summary),
            changes: Vec::new(),
            complete: false,
            undo_of: Some(undone.clone()),
            resume: None,
        };
        let journal = self.journal_for_undo()?.clone();
        // Crash safety: a pending entry exists while the undo is being sent.
        let pending = self.journal_begin(planned).await;

        let steps = std::mem::take(&mut plan.steps);
        let groups = group_steps(steps);
        let label = |tid: &str, f: &Fields| primary_label(table_of(plan.schema.as_deref(), tid), f);
        'groups: for group in groups {
            let Some(first) = group.first() else { continue };
            let tid = first.table().to_owned();
            let mapped = |rid: &str| id_map.get(rid).cloned().unwrap_or_else(|| rid.to_owned());
            match first {
                Step::Delete { .. } => {
                    let mut ids = Vec::new();
                    for s in &group {
                        if let Some(r) = s.record().and_then(|r| mapped(r).parse::<RecordId>().ok())
                        {
                            ids.push(r);
                        }
                    }
                    let outcome = self
                        .run_batch(
                            &base,
                            &tid,
                            BatchWrite::Delete(ids),
                            false,
                            &mut Progress::disabled(),
                            "deleted",
                        )
                        .await?;
                    requests += sent_requests(&outcome);
                    let ok: BTreeSet<String> =
                        outcome.deleted.iter().map(|r| r.to_string()).collect();
                    for s in &group {
                        if let Step::Delete {
                            record_id, current, ..
                        } = s
                            && ok.contains(&mapped(record_id))
                        {
                            done.push(Change::RecordDeleted {
                                table_id: tid.clone(),
                                record_id: mapped(record_id),
                                before: current.clone(),
                            });
                            restored.push(Restored {
                                action: "deleted",
                                id: record_id.clone(),
                                new_id: None,
                                label: label(&tid, current),
                                fields: Vec::new(),
                            });
                        }
                    }
                    if let Some(f) = &outcome.failure {
                        failure = Some(format!(
                            "deleting created records in {tid} failed: {}",
                            f.error
                        ));
                        break 'groups;
                    }
                }
                Step::Patch { .. } => {
                    let mut updates = Vec::new();
                    for s in &group {
                        if let Step::Patch {
                            record_id, fields, ..
                        } = s
                            && let Ok(id) = mapped(record_id).parse::<RecordId>()
                        {
                            updates.push(RecordUpdate {
                                id,
                                fields: fields.clone(),
                            });
                        }
                    }
                    let outcome = self
                        .run_batch(
                            &base,
                            &tid,
                            BatchWrite::Update(updates),
                            false,
                            &mut Progress::disabled(),
                            "restored",
                        )
                        .await?;
                    requests += sent_requests(&outcome);
                    let written: HashMap<String, Fields> = outcome
                        .written
                        .iter()
                        .map(|r| (r.id.to_string(), r.fields.clone()))
                        .collect();
                    for s in &group {
                        if let Step::Patch {
                            record_id,
                            fields,
                            current,
                            ..
                        } = s
                            && let Some(after) = written.get(&mapped(record_id))
                        {
                            let names: Vec<String> = fields.keys().cloned().collect();
                            done.push(Change::RecordUpdated {
                                table_id: tid.clone(),
                                record_id: mapped(record_id),
                                before: pick(current, &names),
                                after: pick(after, &names),
                            });
                            restored.push(Restored {
                                action: "restored",
                                id: record_id.clone(),
                                new_id: None,
                                label: label(&tid, after),
                                fields: names,
                            });
                        }
                    }
                    if let Some(f) = &outcome.failure {
                        failure = Some(format!("writing values back in {tid} failed: {}", f.error));
                        break 'groups;
                    }
                }
                Step::Recreate { .. } => {
                    let records: Vec<Fields> = group
                        .iter()
                        .filter_map(|s| match s {
                            Step::Recreate { fields, .. } => Some(fields.clone()),
                            _ => None,
                        })
                        .collect();
                    let outcome = self
                        .run_batch(
                            &base,
                            &tid,
                            BatchWrite::Create(records),
                            false,
                            &mut Progress::disabled(),
                            "recreated",
                        )
                        .await?;
                    requests += sent_requests(&outcome);
                    for (s, rec) in group.iter().zip(outcome.written.iter()) {
                        if let Step::Recreate {
                            record_id, fields, ..
                        } = s
                        {
                            let new_id = rec.id.to_string();
                            id_map.insert(record_id.clone(), new_id.clone());
                            done.push(Change::RecordCreated {
                                table_id: tid.clone(),
                                record_id: new_id.clone(),
                                after: rec.fields.clone(),
                            });
                            plan.not_restorable.push(NotRestorable {
                                id: record_id.clone(),
                                reason: format!(
                                    "recreated with a new ID {record_id}→{new_id}; comments, created time, autonumber and other computed values are not restored"
                                ),
                            });
                            restored.push(Restored {
                                action: "recreated",
                                id: record_id.clone(),
                                new_id: Some(new_id),
                                label: label(&tid, &rec.fields),
                                fields: fields.keys().cloned().collect(),
                            });
                        }
                    }
                    if let Some(f) = &outcome.failure {
                        failure = Some(format!(
                            "recreating deleted records in {tid} failed: {}",
                            f.error
                        ));
                        break 'groups;
                    }
                }
                Step::Table { .. } | Step::Field { .. } | Step::Comment { .. } => {
                    for s in &group {
                        requests += 1;
                        match self.apply_single(client, &base, s, &id_map).await {
                            Ok(Some((change, r))) => {
                                meta_changed |=
                                    matches!(s, Step::Table { .. } | Step::Field { .. });
                                done.extend(change);
                                restored.push(r);
                            }
                            Ok(None) => {}
                            Err(e) => {
                                failure = Some(e);
                                break 'groups;
                            }
                        }
                    }
                }
            }
        }
        if meta_changed {
            self.invalidate_schema(&base);
        }
        if !id_map.is_empty() {
            let pairs: Vec<(String, String)> = id_map.clone().into_iter().collect();
            if let Err(e) = journal.note_recreated(self.principal(), pairs).await {
                tracing::warn!("recreated record IDs not journaled: {e}");
            }
        }
        let complete = failure.is_none();
        let anything = !done.is_empty();
        let journal_note = self.journal_finish(pending, done, complete).await;
        if (anything || complete)
            && let Some(undo_id) = &journal_note.write_id
        {
            journal
                .mark_undone(self.principal(), &undone, undo_id)
                .await?;
        }
        let note = match &failure {
            None => format!(
                "Write {undone} was undone ({} step(s), {requests} request(s)).{}",
                restored.len(),
                journal_note
                    .write_id
                    .as_ref()
                    .map(|w| format!(" This undo is write {w}: undo_write({w}) takes it back."))
                    .unwrap_or_default()
            ),
            Some(f) => format!(
                "The undo stopped part way: {f}. What is listed in `restored` was done{}; the rest was not. Fix the cause and undo {} to take back what was done, or finish by hand.",
                if anything { " and is journaled" } else { "" },
                journal_note.write_id.as_deref().unwrap_or("this undo"),
            ),
        };
        let (restored, truncated) = bounded(restored);
        Ok(UndoOutput {
            undone,
            dry_run: false,
            applied: complete,
            restored,
            truncated,
            not_restorable: plan.not_restorable,
            conflicts: plan.conflicts,
            requests,
            confirm_token: None,
            note,
            journal: journal_note,
        })
    }

    /// A schema or comment step: one request. `Ok(None)`: nothing to do.
    async fn apply_single(
        &self,
        client: &crate::airtable::Client,
        base: &BaseId,
        step: &Step,
        id_map: &HashMap<String, String>,
    ) -> Result<Option<(Option<Change>, Restored)>, String> {
        match step {
            Step::Table { table_id, to, from } => {
                let req = UpdateTable {
                    name: (to.name != from.name).then(|| to.name.clone()),
                    description: (to.description != from.description)
                        .then(|| to.description.clone().unwrap_or_default()),
                };
                if req.name.is_none() && req.description.is_none() {
                    return Ok(None);
                }
                client
                    .update_table(base, table_id, &req)
                    .await
                    .map_err(|e| format!("restoring table {table_id} failed: {e}"))?;
                Ok(Some((
                    Some(Change::TableUpdated {
                        table_id: table_id.clone(),
                        before: from.clone(),
                        after: to.clone(),
                    }),
                    Restored {
                        action: "renamed",
                        id: table_id.clone(),
                        new_id: None,
                        label: Some(to.name.clone()),
                        fields: Vec::new(),
                    },
                )))
            }
            Step::Field {
                table_id,
                field_id,
                to,
                from,
            } => {
                let req = UpdateField {
                    name: (to.name != from.name).then(|| to.name.clone()),
                    description: (to.description != from.description)
                        .then(|| to.description.clone().unwrap_or_default()),
                };
                if req.name.is_none() && req.description.is_none() {
                    return Ok(None);
                }
                client
                    .update_field(base, table_id, field_id, &req)
                    .await
                    .map_err(|e| format!("restoring field {field_id} failed: {e}"))?;
                Ok(Some((
                    Some(Change::FieldUpdated {
                        table_id: table_id.clone(),
                        field_id: field_id.clone(),
                        before: from.clone(),
                        after: to.clone(),
                    }),
                    Restored {
                        action: "renamed",
                        id: field_id.clone(),
                        new_id: None,
                        label: Some(to.name.clone()),
                        fields: Vec::new(),
                    },
                )))
            }
            Step::Comment {
                table_id,
                record_id,
                comment_id,
            } => {
                let rid = id_map.get(record_id).unwrap_or(record_id);
                let (Ok(rec), Ok(com)) = (rid.parse::<RecordId>(), comment_id.parse::<CommentId>())
                else {
                    return Err(format!(
                        "comment {comment_id} on {rid}: malformed ID in the journal"
                    ));
                };
                client
                    .delete_comment(base, table_id, &rec, &com)
                    .await
                    .map_err(|e| format!("deleting comment {comment_id} failed: {e}"))?;
                // A deleted comment cannot be recreated as it was: the undo journals nothing.
                Ok(Some((
                    None,
                    Restored {
                        action: "comment_deleted",
                        id: comment_id.clone(),
                        new_id: None,
                        label: None,
                        fields: Vec::new(),
                    },
                )))
            }
            _ => Ok(None),
        }
    }

    /// Undo (or, with `dry_run`, plan the undo of) `write_id` without asking: the CLI's path,
    /// and the tool's after confirmation. `None` from `ask`: go on.
    pub(crate) async fn undo(
        &self,
        write_id: &str,
        dry_run: bool,
        force: bool,
    ) -> Result<UndoOutput, ToolError> {
        let plan = self.plan_undo(write_id).await?;
        if dry_run || (!plan.conflicts.is_empty() && !force) {
            return Ok(plan_output(plan, dry_run));
        }
        self.apply_undo(plan).await
    }
}

/// The record a change is about, if any.
fn change_record(c: &Change) -> Option<&str> {
    match c {
        Change::RecordCreated { record_id, .. }
        | Change::RecordUpdated { record_id, .. }
        | Change::RecordDeleted { record_id, .. }
        | Change::CommentCreated { record_id, .. } => Some(record_id),
        _ => None,
    }
}

/// Point a change at the record's current ID.
fn remap_record(c: &mut Change, moved: &HashMap<String, String>) {
    match c {
        Change::RecordCreated { record_id, .. }
        | Change::RecordUpdated { record_id, .. }
        | Change::RecordDeleted { record_id, .. }
        | Change::CommentCreated { record_id, .. } => {
            if let Some(n) = moved.get(record_id.as_str()) {
                *record_id = n.clone();
            }
        }
        _ => {}
    }
}

/// A write journaled as pending before it is sent ([`ToolContext::journal_begin`]).
pub(crate) struct PendingWrite {
    /// The pending entry, when the journal took it.
    pub(crate) id: Option<String>,
    /// The planned write (journaled at the end when the pending entry could not be made).
    pub(crate) write: NewWrite,
}

impl ToolContext {
    /// Crash-safe journaling, step 1: journal `planned` (its changes = what may be written)
    /// as *pending* before sending, so that a crash leaves an entry saying what may have been
    /// written (list_recent_writes shows it as pending; undo refuses it). Then send, then
    /// [`ToolContext::journal_finish`].
    pub(crate) async fn journal_begin(&self, planned: NewWrite) -> PendingWrite {
        let id = match self.journal() {
            Ok(Some(j)) => match j.begin(self.principal(), planned.clone()).await {
                Ok(id) => Some(id),
                Err(e) => {
                    tracing::warn!("write not journaled as pending: {e}");
                    None
                }
            },
            _ => None,
        };
        PendingWrite { id, write: planned }
    }

    /// Crash-safe journaling, step 2: what was confirmed written, and whether all of it was.
    /// The note carries the write_id (or why the write is not journaled), as
    /// [`ToolContext::journal_write`]'s does.
    pub(crate) async fn journal_finish(
        &self,
        pending: PendingWrite,
        changes: Vec<Change>,
        complete: bool,
    ) -> JournalNote {
        let PendingWrite { id, mut write } = pending;
        match (id, self.journal()) {
            (Some(id), Ok(Some(j))) => {
                match j
                    .finish(self.principal(), &id, &write.summary, changes, complete)
                    .await
                {
                    Ok(()) => JournalNote {
                        write_id: Some(id),
                        journal_warning: None,
                    },
                    Err(e) => JournalNote {
                        write_id: None,
                        journal_warning: Some(format!(
                            "The write was applied but its journal entry {id} could not be finished ({e}): it shows as pending and cannot be undone with undo_write."
                        )),
                    },
                }
            }
            _ => {
                write.changes = changes;
                write.complete = complete;
                self.journal_write(write).await
            }
        }
    }
}

/// The result of a plan not applied (dry run, or conflicts without force).
fn plan_output(plan: UndoPlan, dry_run: bool) -> UndoOutput {
    let restored: Vec<Restored> = plan
        .steps
        .iter()
        .map(|s| {
            let table = table_of(plan.schema.as_deref(), s.table());
            match s {
                Step::Delete {
                    record_id, current, ..
                } => Restored {
                    action: "deleted",
                    id: record_id.clone(),
                    new_id: None,
                    label: primary_label(table, current),
                    fields: Vec::new(),
                },
                Step::Patch {
                    record_id,
                    fields,
                    current,
                    ..
                } => Restored {
                    action: "restored",
                    id: record_id.clone(),
                    new_id: None,
                    label: primary_label(table, current),
                    fields: fields.keys().cloned().collect(),
                },
                Step::Recreate {
                    record_id, fields, ..
                } => Restored {
                    action: "recreated",
                    id: record_id.clone(),
                    new_id: None,
                    label: primary_label(table, fields),
                    fields: fields.keys().cloned().collect(),
                },
                Step::Table {
                    table_id: id, to, ..
                }
                | Step::Field {
                    field_id: id, to, ..
                } => Restored {
                    action: "renamed",
                    id: id.clone(),
                    new_id: None,
                    label: Some(to.name.clone()),
                    fields: Vec::new(),
                },
                Step::Comment { comment_id, .. } => Restored {
                    action: "comment_deleted",
                    id: comment_id.clone(),
                    new_id: None,
                    label: None,
                    fields: Vec::new(),
                },
            }
        })
        .collect();
    let mut not_restorable = plan.not_restorable;
    for s in &plan.steps {
        if let Step::Recreate { record_id, .. } = s {
            not_restorable.push(NotRestorable {
                id: record_id.clone(),
                reason: "would be recreated with a new ID; comments, created time, autonumber and other computed values are not restored".to_owned(),
            });
        }
    }
    let id = plan.entry.id.clone();
    let note = if !plan.conflicts.is_empty() && !dry_run {
        format!(
            "Nothing was sent: {} field(s) changed after write {id} (see conflicts). Undoing would overwrite those later changes; call again with force=true to undo anyway.",
            plan.conflicts.len()
        )
    } else {
        format!(
            "Nothing was sent. Call undo_write again without dry_run to undo write {id}{}.",
            if plan.conflicts.is_empty() {
                ""
            } else {
                " (with force=true: there are conflicts)"
            }
        )
    };
    let (restored, truncated) = bounded(restored);
    UndoOutput {
        undone: id,
        dry_run,
        applied: false,
        restored,
        truncated,
        not_restorable,
        conflicts: plan.conflicts,
        requests: plan.requests,
        confirm_token: None,
        note,
        journal: JournalNote::default(),
    }
}

fn bounded(mut v: Vec<Restored>) -> (Vec<Restored>, bool) {
    let truncated = v.len() > PREVIEW_RECORDS;
    v.truncate(PREVIEW_RECORDS);
    (v, truncated)
}

fn meta_conflicts(id: &str, after: &NamedMeta, now: Option<&NamedMeta>, out: &mut Vec<Conflict>) {
    let Some(now) = now else {
        out.push(Conflict {
            id: id.to_owned(),
            field: "name".to_owned(),
            written: Value::String(after.name.clone()),
            current: Value::Null,
        });
        return;
    };
    if now.name != after.name {
        out.push(Conflict {
            id: id.to_owned(),
            field: "name".to_owned(),
            written: Value::String(after.name.clone()),
            current: Value::String(now.name.clone()),
        });
    }
    let d = |x: &Option<String>| x.clone().filter(|s| !s.is_empty());
    if d(&now.description) != d(&after.description) {
        out.push(Conflict {
            id: id.to_owned(),
            field: "description".to_owned(),
            written: d(&after.description).map_or(Value::Null, Value::String),
            current: d(&now.description).map_or(Value::Null, Value::String),
        });
    }
}

/// Requests a batch sent (chunks written or failed; not those never attempted).
fn sent_requests(outcome: &crate::airtable::BatchOutcome) -> usize {
    outcome
        .chunks
        .iter()
        .filter(|c| c.status != ChunkStatus::NotAttempted)
        .count()
}

fn pick(fields: &Fields, names: &[String]) -> Fields {
    names
        .iter()
        .filter_map(|n| fields.get(n).map(|v| (n.clone(), v.clone())))
        .collect()
}

/// Consecutive record steps of one kind and table, without repeating a record, form one
/// batch; schema and comment steps go one by one.
fn group_steps(steps: Vec<Step>) -> Vec<Vec<Step>> {
    let mut groups: Vec<Vec<Step>> = Vec::new();
    for s in steps {
        let joins = groups.last().is_some_and(|g| {
            g.first().is_some_and(|f| {
                f.kind() == s.kind()
                    && f.table() == s.table()
                    && s.record().is_some()
                    && !g.iter().any(|x| x.record() == s.record())
            })
        });
        match groups.last_mut() {
            Some(g) if joins => g.push(s),
            _ => groups.push(vec![s]),
        }
    }
    groups
}

// ---------------------------------------------------------------------------------------------
// The tools

#[tool_router(router = undo_router, vis = "pub(crate)")]
impl AirtableServer {
    #[tool(
        name = "list_recent_writes",
        title = "List recent writes",
        description = "List this token's writes through this server, newest first (kept 30 days by default): id, when, tool, base, table, summary, record_count, complete, undone_by/undo_of. Pass an id to undo_write.",
        annotations(
            title = "List recent writes",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub(crate) async fn list_recent_writes(
        &self,
        Parameters(p): Parameters<ListWritesParams>,
    ) -> Result<Json<ListWritesOutput>, ToolError> {
        Ok(Json(
            self.ctx
                .recent_writes(p.base_id.as_deref(), p.limit)
                .await?,
        ))
    }

    #[tool(
        name = "undo_write",
        title = "Undo a write",
        description = "Take back a journaled write (write_id from a write result or list_recent_writes): created records are deleted, updated fields restored, deleted records recreated (new IDs; links and attachments while Airtable serves them), renamed tables/fields renamed back. If a record changed since, nothing is sent and the conflicts are listed: force=true undoes anyway. dry_run=true shows the plan. The result says what was restored and what cannot be (record IDs, comments, created times, created tables/fields). An undo is a write too: undo_write takes it back.",
        output_schema = undo_schema(),
        annotations(
            title = "Undo a write",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub(crate) async fn undo_write(
        &self,
        Parameters(p): Parameters<UndoParams>,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        self.ctx.require_write("undo_write")?;
        let plan = self.ctx.plan_undo(&p.write_id).await?;
        let count = plan.steps.len();
        let sample: Vec<String> = plan
            .steps
            .iter()
            .take(5)
            .map(|s| {
                let table = table_of(plan.schema.as_deref(), s.table());
                let label = match s {
                    Step::Delete { current: f, .. } | Step::Recreate { fields: f, .. } => {
                        primary_label(table, f)
                    }
                    Step::Patch { current, .. } => primary_label(table, current),
                    _ => None,
                };
                label.unwrap_or_else(|| s.record().unwrap_or(s.table()).to_owned())
            })
            .collect();
        let ask = ConfirmAsk {
            tool: "undo_write",
            summary: format!(
                "Undo write {} ({}): {count} step(s)",
                plan.entry.id, plan.entry.write.summary
            ),
            count,
            sample,
            reason: Some(ConfirmReason::Undo),
        };
        let out = if p.control.dry_run || (!plan.conflicts.is_empty() && !p.force) {
            let dry = p.control.dry_run;
            let mut out = plan_output(plan, dry);
            if dry {
                out.confirm_token = self.ctx.confirm_token(&rc, &ask);
            }
            out
        } else {
            self.ctx.confirm(&rc, &p.control, ask).await?;
            self.ctx.apply_undo(plan).await?
        };
        let failed = !out.dry_run && !out.applied;
        let value = serde_json::to_value(&out).map_err(ToolError::Render)?;
        Ok(if failed {
            CallToolResult::structured_error(value)
        } else {
            CallToolResult::structured(value)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// For the CLI (`airtable-mcp writes`)

impl AirtableServer {
    /// `writes list`: this token's latest writes, as list_recent_writes returns them.
    pub async fn journal_list(
        &self,
        base_id: Option<&str>,
        limit: u32,
    ) -> Result<Value, ToolError> {
        let out = self.ctx.recent_writes(base_id, limit).await?;
        serde_json::to_value(&out).map_err(ToolError::Render)
    }

    /// `writes undo`: undo a write (the person typing the command confirms it), as undo_write
    /// returns it.
    pub async fn journal_undo(
        &self,
        write_id: &str,
        dry_run: bool,
        force: bool,
    ) -> Result<Value, ToolError> {
        self.ctx.require_write("undo_write")?;
        let out = self.ctx.undo(write_id, dry_run, force).await?;
        serde_json::to_value(&out).map_err(ToolError::Render)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    //! Round trips for every change kind, journaled the way the write tools journal them,
    //! against the sandbox over loopback HTTP.
    use std::sync::Arc;
    use std::time::Duration;

    use secrecy::SecretString;

    use super::*;
    use crate::airtable::{Client, ClientConfig, ListQuery, UpdateMode, WriteOptions};
    use crate::config::JournalLocation;
    use crate::sandbox::{self, SandboxConfig, SandboxHandle};
    use crate::tools::ServerOptions;
    use crate::tools::cache::SchemaCache;
    use crate::tools::handler::JournalSlot;

    struct Fx {
        sb: SandboxHandle,
        journal: JournalSlot,
        ctx: ToolContext,
        client: Client,
        base: BaseId,
        tasks: String,
    }

    fn client(sb: &SandboxHandle, token: &str) -> Client {
        let mut cfg = ClientConfig::new(sb.url(), SecretString::from(token.to_owned()));
        cfg.per_base_rps = 1000;
        cfg.per_token_rps = 1000;
        cfg.max_retries = 0;
        Client::new(cfg).unwrap()
    }

    fn ctx_for(client: Client, journal: &JournalSlot) -> ToolContext {
        ToolContext::new(
            Ok(client),
            Arc::new(ServerOptions::default()),
            Arc::new(SchemaCache::new(Duration::from_secs(300))),
            journal.clone(),
        )
    }

    async fn fx() -> Fx {
        let sb = sandbox::spawn(SandboxConfig::demo(), ([127, 0, 0, 1], 0).into())
            .await
            .unwrap();
        let journal = JournalSlot::ready(Ok(Journal::open(
            &JournalLocation::Memory,
            Duration::from_secs(86_400),
        )
        .unwrap()));
        let c = client(&sb, sb.token());
        let ctx = ctx_for(c.clone(), &journal);
        let base: BaseId = sandbox::DEMO_BASE_ID.parse().unwrap();
        let schema = ctx.schema(&base).await.unwrap();
        let tasks = schema
            .tables
            .iter()
            .find(|t| t.name == "Tasks")
            .unwrap()
            .id
            .to_string();
        Fx {
            sb,
            journal,
            ctx,
            client: c,
            base,
            tasks,
        }
    }

    /// The writable fields of every record of `table` (attachments as url + filename: their
    /// IDs are not restorable), by record ID.
    async fn snapshot(fx: &Fx, table: &str) -> BTreeMap<String, Fields> {
        let schema = fx.ctx.schema(&fx.base).await.unwrap();
        let t = table_of(Some(&schema), table).unwrap();
        let recs = fx
            .client
            .list_all_records(&fx.base, table, ListQuery::new())
            .await
            .unwrap();
        recs.into_iter()
            .map(|r| {
                let fields = r
                    .fields
                    .iter()
                    .filter_map(|(k, v)| {
                        let f = t.fields.iter().find(|f| &f.name == k)?;
                        (!f.field_type.is_computed())
                            .then(|| (k.clone(), writable_value(Some(&f.field_type), v)))
                    })
                    .collect();
                (r.id.to_string(), fields)
            })
            .collect()
    }

    /// `after` equals `before` field by field, once the records `out` recreated are matched
    /// by their new IDs (the not-restorable record IDs) and every recreated record is listed
    /// as not restorable.
    fn assert_restored(
        before: &BTreeMap<String, Fields>,
        after: &BTreeMap<String, Fields>,
        out: &UndoOutput,
    ) {
        let renamed: HashMap<String, String> = out
            .restored
            .iter()
            .filter_map(|r| Some((r.new_id.clone()?, r.id.clone())))
            .collect();
        for old in renamed.values() {
            assert!(
                out.not_restorable
                    .iter()
                    .any(|n| &n.id == old && n.reason.contains("new ID")),
                "{old} recreated but not listed as not restorable"
            );
        }
        let mapped: BTreeMap<String, Fields> = after
            .iter()
            .map(|(id, f)| {
                (
                    renamed.get(id).cloned().unwrap_or_else(|| id.clone()),
                    f.clone(),
                )
            })
            .collect();
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            mapped.keys().collect::<Vec<_>>(),
            "record IDs"
        );
        for (id, want) in before {
            let got = &mapped[id];
            for k in want.keys().chain(got.keys()) {
                let (w, g) = (
                    want.get(k).unwrap_or(&Value::Null),
                    got.get(k).unwrap_or(&Value::Null),
                );
                assert!(same_value(w, g), "{id}.{k}: want {w}, got {g}");
            }
        }
    }

    async fn journal(fx: &Fx, tool: &str, changes: Vec<Change>) -> String {
        fx.ctx
            .journal_write(NewWrite {
                tool: tool.to_owned(),
                base_id: fx.base.to_string(),
                table_id: Some(fx.tasks.clone()),
                table_name: Some("Tasks".to_owned()),
                summary: format!("{tool} test"),
                changes,
                complete: true,
                undo_of: None,
                resume: None,
            })
            .await
            .write_id
            .unwrap()
    }

    fn fields(v: Value) -> Fields {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[tokio::test]
    async fn a_batch_create_is_undone_by_deleting_and_counts_its_requests() {
        let fx = fx().await;
        let before = snapshot(&fx, &fx.tasks).await;
        let records: Vec<Fields> = (0..12)
            .map(|i| fields(json!({"Name": format!("new {i}"), "Status": "Todo"})))
            .collect();
        let outcome = fx
            .client
            .create_records(&fx.base, &fx.tasks, records, &WriteOptions::default())
            .await;
        let changes = outcome
            .written
            .iter()
            .map(|r| Change::RecordCreated {
                table_id: fx.tasks.clone(),
                record_id: r.id.to_string(),
                after: r.fields.clone(),
            })
            .collect();
        let id = journal(&fx, "batch_create_records", changes).await;
        let out = fx.ctx.undo(&id, false, false).await.unwrap();
        assert!(out.applied, "{}", out.note);
        assert_eq!(out.restored.len(), 12);
        // schema + one read of 12 records + two delete requests (10 a request)
        assert_eq!(out.requests, 4);
        assert_restored(&before, &snapshot(&fx, &fx.tasks).await, &out);
        let listed = fx.ctx.recent_writes(None, 10).await.unwrap();
        assert_eq!(listed.writes[0].undo_of.as_deref(), Some(id.as_str()));
        assert_eq!(listed.writes[1].undone_by, out.journal.write_id);
    }

    #[tokio::test]
    async fn a_mixed_write_updates_deletes_and_creates_round_trips() {
        let fx = fx().await;
        let before = snapshot(&fx, &fx.tasks).await;
        let ids: Vec<String> = before.keys().cloned().collect();
        // Records with attachments, links and notes are among the deleted ones.
        let with_attachment = before
            .iter()
            .find(|(_, f)| f.contains_key("Attachments"))
            .map(|(id, _)| id.clone())
            .unwrap();
        let deleted: Vec<String> = vec![with_attachment.clone()]
            .into_iter()
            .chain(
                ids.iter()
                    .filter(|i| **i != with_attachment)
                    .take(2)
                    .cloned(),
            )
            .collect();
        let updated: Vec<String> = ids
            .iter()
            .filter(|i| !deleted.contains(i))
            .take(3)
            .cloned()
            .collect();
        let mut changes = Vec::new();
        // Upsert-like: update some (named fields only)...
        let full = fx
            .ctx
            .fetch_records(
                &fx.base,
                &fx.tasks,
                &ids.iter().map(|i| i.parse().unwrap()).collect::<Vec<_>>(),
                None,
            )
            .await
            .unwrap();
        let names = [
            "Status".to_owned(),
            "Notes".to_owned(),
            "Estimate (hours)".to_owned(),
        ];
        let updates: Vec<RecordUpdate> = updated
            .iter()
            .map(|id| RecordUpdate {
                id: id.parse().unwrap(),
                fields: fields(
                    json!({"Status": "Blocked", "Notes": "changed", "Estimate (hours)": null}),
                ),
            })
            .collect();
        let out = fx
            .client
            .update_records(
                &fx.base,
                &fx.tasks,
                updates,
                UpdateMode::Patch,
                &WriteOptions::default(),
            )
            .await;
        for r in &out.written {
            changes.push(Change::RecordUpdated {
                table_id: fx.tasks.clone(),
                record_id: r.id.to_string(),
                before: pick(&full[r.id.as_ref()].fields, &names),
                after: pick(&r.fields, &names),
            });
        }
        // ...create some...
        let created = fx
            .client
            .create_records(
                &fx.base,
                &fx.tasks,
                vec![fields(json!({"Name": "fresh", "Priority": "High"}))],
                &WriteOptions::default(),
            )
            .await;
        for r in &created.written {
            changes.push(Change::RecordCreated {
                table_id: fx.tasks.clone(),
                record_id: r.id.to_string(),
                after: r.fields.clone(),
            });
        }
        // ...and delete some (whole records journaled).
        let gone = fx
            .client
            .delete_records(
                &fx.base,
                &fx.tasks,
                deleted.iter().map(|i| i.parse().unwrap()).collect(),
                &WriteOptions::default(),
            )
            .await;
        for r in &gone.deleted {
            changes.push(Change::RecordDeleted {
                table_id: fx.tasks.clone(),
                record_id: r.to_string(),
                before: full[r.as_ref()].fields.clone(),
            });
        }
        let id = journal(&fx, "sync_tables", changes).await;
        let dry = fx.ctx.undo(&id, true, false).await.unwrap();
        assert!(dry.dry_run && !dry.applied && dry.conflicts.is_empty());
        assert_eq!(dry.restored.len(), 7);
        assert_ne!(
            snapshot(&fx, &fx.tasks).await,
            before,
            "dry run sent nothing"
        );
        let out = fx.ctx.undo(&id, false, false).await.unwrap();
        assert!(out.applied, "{}", out.note);
        // schema + one read (4 live records) + recreate 3 + delete 1 + patch 3 (one batch each)
        assert_eq!(out.requests, 5);
        let after = snapshot(&fx, &fx.tasks).await;
        assert_restored(&before, &after, &out);
        let new_id = out
            .restored
            .iter()
            .find(|r| r.id == with_attachment)
            .and_then(|r| r.new_id.clone())
            .unwrap();
        assert!(after[&new_id].contains_key("Attachments"));
        assert!(after[&new_id].contains_key("Project"), "links restored");
    }

    #[tokio::test]
    async fn conflicts_stop_the_undo_until_forced() {
        let fx = fx().await;
        let before = snapshot(&fx, &fx.tasks).await;
        let rid = before.keys().next().unwrap().clone();
        let old = before[&rid].get("Status").cloned().unwrap_or(Value::Null);
        let rec: RecordId = rid.parse().unwrap();
        let set = |v: &'static str| {
            let (client, base, tasks, rec) = (
                fx.client.clone(),
                fx.base.clone(),
                fx.tasks.clone(),
                rec.clone(),
            );
            async move {
                client
                    .update_record(
                        &base,
                        &tasks,
                        &rec,
                        fields(json!({ "Status": v })),
                        UpdateMode::Patch,
                        &WriteOptions::default(),
                    )
                    .await
            }
        };
        set("Blocked").await.unwrap();
        let mut b = Fields::new();
        b.insert("Status".into(), old.clone());
        let id = journal(
            &fx,
            "update_record",
            vec![Change::RecordUpdated {
                table_id: fx.tasks.clone(),
                record_id: rid.clone(),
                before: b,
                after: fields(json!({"Status": "Blocked"})),
            }],
        )
        .await;
        // Someone changes it again after the write.
        set("Done").await.unwrap();
        let out = fx.ctx.undo(&id, false, false).await.unwrap();
        assert!(!out.applied && !out.dry_run);
        assert_eq!(out.conflicts.len(), 1);
        assert_eq!(out.conflicts[0].field, "Status");
        assert_eq!(out.conflicts[0].current, json!("Done"));
        assert_eq!(
            snapshot(&fx, &fx.tasks).await[&rid]["Status"],
            json!("Done")
        );
        let forced = fx.ctx.undo(&id, false, true).await.unwrap();
        assert!(forced.applied, "{}", forced.note);
        assert_restored(&before, &snapshot(&fx, &fx.tasks).await, &forced);
    }

    #[tokio::test]
    async fn an_undo_can_be_undone_and_an_undone_write_is_refused() {
        let fx = fx().await;
        let before = snapshot(&fx, &fx.tasks).await;
        let rid = before.keys().nth(1).unwrap().clone();
        let full = before[&rid].clone();
        fx.client
            .delete_record(&fx.base, &fx.tasks, &rid.parse().unwrap())
            .await
            .unwrap();
        let deleted_state = snapshot(&fx, &fx.tasks).await;
        let id = journal(
            &fx,
            "delete_record",
            vec![Change::RecordDeleted {
                table_id: fx.tasks.clone(),
                record_id: rid.clone(),
                before: full.clone(),
            }],
        )
        .await;
        let undo = fx.ctx.undo(&id, false, false).await.unwrap();
        assert!(undo.applied);
        assert_restored(&before, &snapshot(&fx, &fx.tasks).await, &undo);
        let undo_id = undo.journal.write_id.clone().unwrap();
        let again = fx
            .ctx
            .undo(&id, false, false)
            .await
            .unwrap_err()
            .to_string();
        assert!(again.contains(&undo_id), "{again}");
        // Undoing the undo deletes the recreated record again.
        let redo = fx.ctx.undo(&undo_id, false, false).await.unwrap();
        assert!(redo.applied, "{}", redo.note);
        assert_eq!(snapshot(&fx, &fx.tasks).await, deleted_state);
    }

    #[tokio::test]
    async fn schema_renames_and_comments_are_undone_and_created_tables_listed() {
        let fx = fx().await;
        let schema = fx.ctx.schema(&fx.base).await.unwrap();
        let t = table_of(Some(&schema), &fx.tasks).unwrap().clone();
        let field = t.fields.iter().find(|f| f.name == "Notes").unwrap().clone();
        fx.client
            .update_table(
                &fx.base,
                &fx.tasks,
                &UpdateTable {
                    name: Some("Chores".into()),
                    description: Some("renamed".into()),
                },
            )
            .await
            .unwrap();
        fx.client
            .update_field(
                &fx.base,
                &fx.tasks,
                field.id.as_ref(),
                &UpdateField {
                    name: Some("Remarks".into()),
                    description: None,
                },
            )
            .await
            .unwrap();
        let rid: RecordId = snapshot(&fx, &fx.tasks)
            .await
            .keys()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let comment = fx
            .client
            .create_comment(&fx.base, &fx.tasks, &rid, "hello")
            .await
            .unwrap();
        let meta = |n: &str, d: Option<&str>| NamedMeta {
            name: n.into(),
            description: d.map(str::to_owned),
        };
        let id = journal(
            &fx,
            "update_table",
            vec![
                Change::TableCreated {
                    table_id: "tblNEWNEWNEWNEW00".into(),
                    name: "Extra".into(),
                },
                Change::TableUpdated {
                    table_id: fx.tasks.clone(),
                    before: meta("Tasks", t.description.as_deref()),
                    after: meta("Chores", Some("renamed")),
                },
                Change::FieldUpdated {
                    table_id: fx.tasks.clone(),
                    field_id: field.id.to_string(),
                    before: meta("Notes", field.description.as_deref()),
                    after: meta("Remarks", field.description.as_deref()),
                },
                Change::CommentCreated {
                    table_id: fx.tasks.clone(),
                    record_id: rid.to_string(),
                    comment_id: comment.id.to_string(),
                },
            ],
        )
        .await;
        fx.ctx.invalidate_schema(&fx.base);
        let out = fx.ctx.undo(&id, false, false).await.unwrap();
        assert!(out.applied, "{}", out.note);
        // schema read + table + field + comment
        assert_eq!(out.requests, 4);
        assert!(
            out.not_restorable
                .iter()
                .any(|n| n.id == "tblNEWNEWNEWNEW00" && n.reason.contains("cannot delete tables"))
        );
        let now = fx.ctx.schema(&fx.base).await.unwrap();
        let t2 = table_of(Some(&now), &fx.tasks).unwrap();
        assert_eq!(t2.name, "Tasks");
        assert_eq!(t2.description, t.description);
        assert!(
            t2.fields
                .iter()
                .any(|f| f.id == field.id && f.name == "Notes")
        );
        let comments = fx
            .client
            .list_comments(&fx.base, &fx.tasks, &rid, None, None)
            .await
            .unwrap();
        assert!(comments.comments.iter().all(|c| c.id != comment.id));
    }

    #[tokio::test]
    async fn undoing_in_reverse_order_follows_recreated_records() {
        let fx = fx().await;
        let before = snapshot(&fx, &fx.tasks).await;
        let rid = before.keys().next().unwrap().clone();
        let rec: RecordId = rid.parse().unwrap();
        let old = fx
            .ctx
            .fetch_records(&fx.base, &fx.tasks, std::slice::from_ref(&rec), None)
            .await
            .unwrap()
            .remove(&rid)
            .unwrap();
        let updated = fx
            .client
            .update_record(
                &fx.base,
                &fx.tasks,
                &rec,
                fields(json!({"Name": "renamed", "Notes": "new notes"})),
                UpdateMode::Patch,
                &WriteOptions::default(),
            )
            .await
            .unwrap();
        let names = ["Name".to_owned(), "Notes".to_owned()];
        let w1 = journal(
            &fx,
            "update_record",
            vec![Change::RecordUpdated {
                table_id: fx.tasks.clone(),
                record_id: rid.clone(),
                before: pick(&old.fields, &names),
                after: pick(&updated.fields, &names),
            }],
        )
        .await;
        fx.client
            .delete_record(&fx.base, &fx.tasks, &rec)
            .await
            .unwrap();
        let w2 = journal(
            &fx,
            "delete_record",
            vec![Change::RecordDeleted {
                table_id: fx.tasks.clone(),
                record_id: rid.clone(),
                before: updated.fields.clone(),
            }],
        )
        .await;
        let u2 = fx.ctx.undo(&w2, false, false).await.unwrap();
        assert!(u2.applied, "{}", u2.note);
        let u1 = fx.ctx.undo(&w1, false, false).await.unwrap();
        assert!(u1.applied && u1.conflicts.is_empty(), "{}", u1.note);
        assert_eq!(u1.restored[0].id, u2.restored[0].new_id.clone().unwrap());
        assert_restored(&before, &snapshot(&fx, &fx.tasks).await, &u2);
    }

    #[tokio::test]
    async fn a_write_begun_but_never_finished_is_listed_pending_and_not_undone() {
        let fx = fx().await;
        let j = fx.journal.get().unwrap().unwrap();
        let planned = NewWrite {
            tool: "batch_delete_records".into(),
            base_id: fx.base.to_string(),
            table_id: Some(fx.tasks.clone()),
            table_name: Some("Tasks".into()),
            summary: "delete 30 records from Tasks".into(),
            changes: Vec::new(),
            complete: false,
            undo_of: None,
            resume: None,
        };
        // The process "crashes" after begin: no finish.
        let id = j.begin(fx.ctx.principal(), planned).await.unwrap();
        let listed = fx.ctx.recent_writes(None, 5).await.unwrap();
        assert!(listed.writes[0].pending && listed.writes[0].id == id);
        let e = fx
            .ctx
            .undo(&id, false, false)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("never finished"), "{e}");
    }

    #[tokio::test]
    async fn another_token_neither_sees_nor_undoes_the_write() {
        let fx = fx().await;
        let id = journal(&fx, "update_record", Vec::new()).await;
        let other = ctx_for(client(&fx.sb, "another-token"), &fx.journal);
        assert!(
            other
                .recent_writes(None, 10)
                .await
                .unwrap()
                .writes
                .is_empty()
        );
        let e = other.undo(&id, true, false).await.unwrap_err().to_string();
        assert!(e.contains("No write"), "{e}");
        assert_eq!(fx.ctx.recent_writes(None, 10).await.unwrap().count, 1);
    }
}
