//! The transfer toolset: export_table_csv, sync_tables and create_metadata_table.
//!
//! The pure cores (no MCP, no HTTP) live in [`csv_export`], [`sync`] and [`metadata`]; this
//! file reads and writes through the client, reports progress and shapes the results.

pub(crate) mod csv_export;
pub(crate) mod metadata;
pub(crate) mod sync;

use std::collections::HashMap;
use std::str::FromStr;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{Json, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::airtable::{
    self, BatchOutcome, CreateField, CreateTable, FieldSpec, Fields, ListQuery, RecordId,
    RecordUpdate,
};
use crate::tools::ToolError;
use crate::tools::batch::{BatchWrite, failure_text};
use crate::tools::cells::{CellMap, RecordLike};
use crate::tools::confirm::{ConfirmAsk, ConfirmReason};
use crate::tools::context::{PageReport, field_names};
use crate::tools::files::ExportDir;
use crate::tools::handler::AirtableServer;
use crate::tools::journal::{Change, NewWrite};
use crate::tools::params::{lenient_bool, lenient_opt_strings, lenient_u32, opt_nonempty};
use crate::tools::progress::Progress;
use crate::tools::result::{fit_to_budget, scope};
use crate::tools::validation;
use crate::tools::views::check_opt_view;
use crate::tools::writes::{
    FieldDiff, JournalNote, PREVIEW_RECORDS, RecordPreview, WriteControl, WritePreview,
};

use sync::{PlannedCreate, PlannedUpdate, SkippedField, UnmatchedRecord};

/// Most records export_table_csv reads.
pub(crate) const MAX_EXPORT: u32 = 100_000;
/// Most records sync_tables reads from each table.
pub(crate) const MAX_SYNC: u32 = 100_000;

fn default_export_max() -> u32 {
    1000
}

fn default_sync_max() -> u32 {
    10_000
}

fn default_true() -> bool {
    true
}

fn default_metadata_table() -> String {
    "Table Metadata".to_owned()
}

// ---------------------------------------------------------------------------------------------
// export_table_csv

/// Parameters of export_table_csv.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ExportTableCsvParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// Columns in order (names or IDs); default all.
    #[serde(default, deserialize_with = "lenient_opt_strings")]
    pub(crate) fields: Option<Vec<String>>,
    /// A view name or ID: its filter and record order apply.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) view: Option<String>,
    /// Most records to export (max 100000).
    #[serde(default = "default_export_max", deserialize_with = "lenient_u32")]
    pub(crate) max_records: u32,
    /// Also write the CSV to this file, relative to the server's --export-dir (e.g.
    /// "reports/x.csv"; no "..").
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) path: Option<String>,
    /// Replace an existing file at path.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) overwrite: bool,
    /// Add a first column "Record ID".
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) include_record_id: bool,
}

/// Result of export_table_csv.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ExportTableCsvResult {
    /// Base ID.
    pub(crate) base_id: String,
    /// Table ID.
    pub(crate) table_id: String,
    /// Table name.
    pub(crate) table_name: String,
    /// The CSV header, in order.
    pub(crate) columns: Vec<String>,
    /// Records exported (rows of the file, and of `csv` unless truncated).
    pub(crate) rows: usize,
    /// True when the table (or view) holds more than max_records records.
    pub(crate) has_more: bool,
    /// Size of the whole CSV in bytes.
    pub(crate) bytes: usize,
    /// Absolute path of the file written (inside the export directory), when a path was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) path: Option<String>,
    /// The CSV text (RFC 4180, CRLF line ends), possibly cut at a row boundary (see truncated).
    pub(crate) csv: String,
    /// Data rows in `csv`.
    pub(crate) csv_rows: usize,
    /// True when `csv` holds fewer rows than were exported.
    pub(crate) truncated: bool,
    /// What was cut and how to get everything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// create_metadata_table

/// Parameters of create_metadata_table.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct CreateMetadataTableParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Metadata table name (default "Table Metadata").
    #[serde(default = "default_metadata_table")]
    pub(crate) table_name: String,
    #[serde(flatten)]
    pub(crate) control: WriteControl,
}

/// Result of create_metadata_table.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct CreateMetadataTableResult {
    /// Base ID.
    pub(crate) base_id: String,
    /// The metadata table's ID (absent on a dry run that would create it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) table_id: Option<String>,
    /// The metadata table's name.
    pub(crate) table_name: String,
    /// True when the table was created by this call (dry_run: when it would be).
    pub(crate) created_table: bool,
    /// Columns added to an existing table that lacked them (dry_run: that would be added).
    pub(crate) columns_added: Vec<String>,
    /// Rows describing the base (one per table and one per field).
    pub(crate) rows: usize,
    /// Rows created.
    pub(crate) created: usize,
    /// Rows updated (only changed cells are sent).
    pub(crate) updated: usize,
    /// Rows deleted (tables or fields that no longer exist, duplicate keys).
    pub(crate) deleted: usize,
    /// Rows already up to date.
    pub(crate) unchanged: usize,
    /// True when every write succeeded.
    pub(crate) complete: bool,
    /// What failed, what was written before, and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) failure: Option<String>,
    /// dry_run only: exactly what the call would write (rows created with their cells, rows
    /// updated with each cell before → after, rows deleted). Nothing was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) preview: Option<WritePreview>,
    #[serde(flatten)]
    pub(crate) journal: JournalNote,
}

// ---------------------------------------------------------------------------------------------
// sync_tables

/// Parameters of sync_tables.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct SyncTablesParams {
    /// Source base ID (app...).
    pub(crate) source_base_id: String,
    /// Source table ID or name (only read).
    pub(crate) source_table_id: String,
    /// Target base ID (may equal source_base_id).
    pub(crate) target_base_id: String,
    /// Target table ID or name (never deleted from).
    pub(crate) target_table_id: String,
    /// Field in both tables that identifies a record, e.g. "Email" (writable in the target).
    pub(crate) key_field: String,
    /// true (default): only return the plan; false: apply it.
    #[serde(default = "default_true", deserialize_with = "lenient_bool")]
    pub(crate) dry_run: bool,
    /// Let Airtable convert values and add select options.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) typecast: bool,
    /// Most records read per table (max 100000).
    #[serde(default = "default_sync_max", deserialize_with = "lenient_u32")]
    pub(crate) max_records: u32,
    /// Only this source view's records (name or ID).
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) source_view: Option<String>,
    /// From this call's dry run, when the server asks to confirm.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) confirm_token: Option<String>,
}

/// What an applied sync wrote.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct SyncApplied {
    /// Target records created.
    pub(crate) created: usize,
    /// Target records updated.
    pub(crate) updated: usize,
    /// True when the whole plan was written.
    pub(crate) complete: bool,
    /// What failed, what was written before it, and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) failure: Option<String>,
}

/// Result of sync_tables.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct SyncTablesResult {
    /// True when nothing was written (the plan only).
    pub(crate) dry_run: bool,
    /// The key field matched on.
    pub(crate) key_field: String,
    /// Fields copied from source to target.
    pub(crate) fields_synced: Vec<String>,
    /// Source fields not copied, and why.
    pub(crate) fields_skipped: Vec<SkippedField>,
    /// Records read from the source.
    pub(crate) source_records: usize,
    /// Records read from the target.
    pub(crate) target_records: usize,
    /// Target records to create (dry run) or that the plan created.
    pub(crate) create_count: usize,
    /// Target records to update.
    pub(crate) update_count: usize,
    /// Matched records already equal.
    pub(crate) unchanged: usize,
    /// Target records without a matching source record (left alone).
    pub(crate) unmatched_target_count: usize,
    /// The records to create (key and cells), possibly cut (see truncated).
    pub(crate) creates: Vec<PlannedCreate>,
    /// The records to update, each with its changes old → new, possibly cut.
    pub(crate) updates: Vec<PlannedUpdate>,
    /// The unmatched target records, possibly cut.
    pub(crate) unmatched_target: Vec<UnmatchedRecord>,
    /// Duplicate or empty keys, and other things to know.
    pub(crate) warnings: Vec<String>,
    /// True when a list above was cut to stay small (the counts are complete).
    pub(crate) truncated: bool,
    /// What was cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
    /// What was written (only when dry_run is false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) applied: Option<SyncApplied>,
    /// dry_run only: pass it back with the same arguments and dry_run=false to apply, when the
    /// server asks for confirmation and the client cannot show a dialog.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) confirm_token: Option<String>,
    #[serde(flatten)]
    pub(crate) journal: JournalNote,
}

// ---------------------------------------------------------------------------------------------

fn record_id(id: &str) -> Result<RecordId, ToolError> {
    RecordId::from_str(id).map_err(|e| {
        let message = format!("unexpected record ID {id:?}: {e}");
        ToolError::invalid_id(e, message)
    })
}

fn record_ids(ids: &[String]) -> Result<Vec<RecordId>, ToolError> {
    ids.iter().map(|id| record_id(id)).collect()
}

/// A metadata row's key (its label in previews and confirmations).
fn metadata_key(cells: &CellMap) -> String {
    cells
        .get(metadata::KEY)
        .map(crate::tools::cells::render)
        .unwrap_or_default()
}

/// The first [`PREVIEW_RECORDS`] items of a plan list (the counts stay complete).
fn first_records<T>(mut items: Vec<T>) -> Vec<T> {
    items.truncate(PREVIEW_RECORDS);
    items
}

/// The journal changes of a sync's update batch: one per record confirmed written (the
/// outcome lists them in input order), before = the target's values the plan read, after =
/// what Airtable returned, both for the changed fields only (empty ones absent).
fn sync_update_changes(
    table_id: &str,
    planned: &[PlannedUpdate],
    out: &BatchOutcome,
) -> Vec<Change> {
    planned
        .iter()
        .zip(&out.written)
        .map(|(u, rec)| Change::RecordUpdated {
            table_id: table_id.to_owned(),
            record_id: rec.id.to_string(),
            before: u
                .changes
                .iter()
                .filter(|c| !c.old.is_null())
                .map(|c| (c.field.clone(), c.old.clone()))
                .collect(),
            after: u
                .changes
                .iter()
                .filter_map(|c| {
                    rec.fields
                        .get(&c.field)
                        .map(|v| (c.field.clone(), v.clone()))
                })
                .collect::<Fields>(),
        })
        .collect()
}

/// The journal changes of a create batch: one per record confirmed created.
fn created_changes(table_id: &str, out: &BatchOutcome) -> Vec<Change> {
    out.written
        .iter()
        .map(|rec| Change::RecordCreated {
            table_id: table_id.to_owned(),
            record_id: rec.id.to_string(),
            after: rec.fields.clone(),
        })
        .collect()
}

#[tool_router(router = transfer_router, vis = "pub(crate)")]
impl AirtableServer {
    /// export_table_csv
    #[tool(
        name = "export_table_csv",
        title = "Export table as CSV",
        description = "Export a table as RFC 4180 CSV: header = the fields (schema order, or as given in fields), one row per record; lists joined with \", \", attachments as \"file (url)\", collaborators by name, links as record IDs. Returns the CSV (cut at a row boundary when large; truncated says so); with path it also writes a file inside the server's --export-dir (overwrite=true replaces it). Reads up to max_records (default 1000) in view order.",
        annotations(
            title = "Export table as CSV",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn export_table_csv(
        &self,
        Parameters(p): Parameters<ExportTableCsvParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ExportTableCsvResult>, ToolError> {
        let base = self.ctx.base(&p.base_id)?;
        if p.max_records == 0 || p.max_records > MAX_EXPORT {
            return Err(ToolError::Invalid(format!(
                "max_records must be between 1 and {MAX_EXPORT} (got {}).",
                p.max_records
            )));
        }
        // Check the destination before reading anything.
        let export = match &p.path {
            Some(path) => {
                csv_export::check_csv_name(path)
                    .map_err(|e| ToolError::Invalid(format!("{e}.")))?;
                let dir = ExportDir::from_options(self.options(), "export_table_csv")?;
                dir.check_create(path, p.overwrite)?;
                Some((dir, path))
            }
            None => None,
        };
        let progress = Progress::new(&ctx);
        let schema = self.ctx.schema(&base).await?;
        let table = validation::resolve_table(&schema, base.as_ref(), &p.table_id)?;
        check_opt_view(Some(table), p.view.as_ref())?;
        let requested = match &p.fields {
            Some(refs) if !refs.is_empty() => field_names(table, refs, "fields")?,
            _ => Vec::new(),
        };
        let columns =
            csv_export::resolve_columns(&table.fields, &requested).map_err(|unknown| {
                ToolError::Invalid(format!("unknown fields: {}", unknown.join(", ")))
            })?;
        let query = ListQuery {
            view: p.view.clone(),
            fields: columns.clone(),
            ..ListQuery::default()
        };
        let read = self
            .ctx
            .read_records(
                &base,
                table.id.as_ref(),
                query,
                p.max_records as usize,
                PageReport::every_page(&progress, "export_table_csv"),
            )
            .await?;
        let has_more = read.has_more();
        let records = read.records;
        let doc = csv_export::to_csv(&columns, &records, p.include_record_id)
            .map_err(ToolError::Invalid)?;
        let written = match &export {
            Some((dir, path)) => Some(
                dir.create(path, &doc.bytes, p.overwrite)?
                    .display()
                    .to_string(),
            ),
            None => None,
        };
        let text_budget = self.ctx.budget().saturating_sub(4_000).max(1_000);
        let (csv, csv_rows) = doc.bounded_text(text_budget);
        let truncated = csv_rows < doc.rows();
        let mut notes = Vec::new();
        if truncated {
            notes.push(match &written {
                Some(p) => format!(
                    "csv holds the first {csv_rows} of {} rows (to stay small); the file {p} has them all.",
                    doc.rows()
                ),
                None => format!(
                    "csv holds the first {csv_rows} of {} rows (to stay small). Pass path to write the whole CSV to a file in the server's export directory, or export fewer fields.",
                    doc.rows()
                ),
            });
        }
        if has_more {
            notes.push(format!(
                "The table holds more than max_records={} records; raise max_records to export more.",
                p.max_records
            ));
        }
        Ok(Json(ExportTableCsvResult {
            base_id: base.to_string(),
            table_id: table.id.to_string(),
            table_name: table.name.clone(),
            columns: if p.include_record_id {
                std::iter::once(csv_export::RECORD_ID_COLUMN.to_owned())
                    .chain(columns)
                    .collect()
            } else {
                columns
            },
            rows: doc.rows(),
            has_more,
            bytes: doc.bytes.len(),
            path: written,
            csv,
            csv_rows,
            truncated,
            note: (!notes.is_empty()).then(|| notes.join(" ")),
        }))
    }

    /// create_metadata_table
    #[tool(
        name = "create_metadata_table",
        title = "Create or refresh a metadata table",
        description = "Write a table documenting the base: one row per table and per field (Table, Field, Type, Description, Options, Primary, IDs). Creates it (default \"Table Metadata\") when missing, else updates it in place (changed rows updated, new fields added, rows of deleted fields removed); safe to re-run after schema changes. dry_run=true shows the changes. Journaled: undo_write restores the rows, not created tables or columns.",
        annotations(
            title = "Create or refresh a metadata table",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn create_metadata_table(
        &self,
        Parameters(p): Parameters<CreateMetadataTableParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<CreateMetadataTableResult>, ToolError> {
        self.ctx.require_write("create_metadata_table")?;
        let base = self.ctx.base(&p.base_id)?;
        let name = p.table_name.trim().to_owned();
        if name.is_empty() {
            return Err(ToolError::Invalid(
                "table_name is empty: give a name such as \"Table Metadata\".".into(),
            ));
        }
        let client = self.ctx.client()?;
        let mut progress = Progress::new(&ctx);
        progress.report(0, 0, "reading the base schema").await;
        self.ctx.invalidate_schema(&base);
        let schema = self.ctx.schema(&base).await?;
        let existing = schema.tables.iter().find(|t| t.name == name);

        // 1. Plan everything before writing anything.
        let (missing, current, desired) = match existing {
            Some(t) => {
                if validation::find_field(t, metadata::KEY).is_none() {
                    return Err(ToolError::Invalid(format!(
                        "Table {name:?} exists but is not a metadata table (it has no {:?} field), so it was left alone. Choose another table_name.",
                        metadata::KEY
                    )));
                }
                let missing = metadata::missing_columns(t);
                progress.report(0, 0, "reading the metadata table").await;
                // Only the columns it has (asking for a missing one is an error).
                let query = ListQuery {
                    fields: metadata::COLUMNS
                        .iter()
                        .filter(|(c, _)| missing.iter().all(|(m, _)| m != c))
                        .map(|(c, _)| (*c).to_owned())
                        .collect(),
                    ..ListQuery::default()
                };
                let current = client
                    .list_all_records(&base, t.id.as_ref(), query)
                    .await
                    .map_err(|e| {
                        ToolError::api(
                            "read the metadata table",
                            base.as_ref(),
                            scope::RECORDS_READ,
                            e,
                        )
                    })?;
                let desired = metadata::metadata_rows(&schema.tables, Some(t.id.as_ref()));
                (missing, current, desired)
            }
            None => (
                Vec::new(),
                Vec::new(),
                metadata::metadata_rows(&schema.tables, None),
            ),
        };
        let rows = desired.len();
        let plan = metadata::plan(desired, &current);
        let by_id: HashMap<&str, &airtable::Record> =
            current.iter().map(|r| (r.id.as_ref(), r)).collect();
        let record_count = plan.creates.len() + plan.updates.len() + plan.deletes.len();
        let what = match existing {
            Some(_) if missing.is_empty() => format!("In table {name:?}"),
            Some(_) => format!(
                "Add column(s) {} to table {name:?}, then",
                missing
                    .iter()
                    .map(|(c, _)| format!("{c:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => format!(
                "Create table {name:?} ({} columns), then",
                metadata::COLUMNS.len()
            ),
        };
        let ask =
            ConfirmAsk {
                tool: "create_metadata_table",
                summary: format!(
                    "{what} create {}, update {} and delete {} row(s) in {base}",
                    plan.creates.len(),
                    plan.updates.len(),
                    plan.deletes.len()
                ),
                count: record_count,
                sample: plan
                    .deletes
                    .iter()
                    .filter_map(|id| by_id.get(id.as_str()).map(|r| metadata_key(&r.fields)))
                    .chain(plan.updates.iter().filter_map(|(id, _)| {
                        by_id.get(id.as_str()).map(|r| metadata_key(&r.fields))
                    }))
                    .chain(plan.creates.iter().map(metadata_key))
                    .take(5)
                    .collect(),
                reason: (!plan.deletes.is_empty()).then_some(ConfirmReason::Delete),
            };

        // 2. dry_run: the plan, exactly; nothing is sent.
        if p.control.dry_run {
            let mut records: Vec<RecordPreview> = Vec::new();
            for id in plan.deletes.iter().take(PREVIEW_RECORDS) {
                let fields = by_id.get(id.as_str()).map(|r| r.fields.clone());
                records.push(RecordPreview {
                    action: "delete",
                    id: Some(id.clone()),
                    label: fields.as_ref().map(metadata_key),
                    changes: Vec::new(),
                    fields,
                });
            }
            for (id, changed) in &plan.updates {
                if records.len() >= PREVIEW_RECORDS {
                    break;
                }
                let have = by_id.get(id.as_str()).map(|r| &r.fields);
                records.push(RecordPreview {
                    action: "update",
                    id: Some(id.clone()),
                    label: have.map(metadata_key),
                    changes: changed
                        .iter()
                        .map(|(k, v)| FieldDiff {
                            field: k.clone(),
                            before: have.and_then(|h| h.get(k)).cloned().unwrap_or(Value::Null),
                            after: v.clone(),
                        })
                        .collect(),
                    fields: None,
                });
            }
            for row in &plan.creates {
                if records.len() >= PREVIEW_RECORDS {
                    break;
                }
                records.push(RecordPreview {
                    action: "create",
                    id: None,
                    label: Some(metadata_key(row)),
                    changes: Vec::new(),
                    fields: Some(row.clone()),
                });
            }
            let mut note = "Nothing was sent. Call again without dry_run to apply; undo_write can restore the rows afterwards.".to_owned();
            if existing.is_none() || !missing.is_empty() {
                note.push_str(if existing.is_none() {
                    " Creating the table cannot be undone: Airtable's Web API cannot delete tables."
                } else {
                    " Adding the columns cannot be undone: Airtable's Web API cannot delete fields."
                });
            }
            let preview = WritePreview {
                dry_run: true,
                summary: ask.summary.clone(),
                record_count,
                truncated: records.len() < record_count,
                records,
                unchanged: plan.unchanged,
                confirm_token: self.ctx.confirm_token(&ctx, &ask),
                note,
            };
            return Ok(Json(CreateMetadataTableResult {
                base_id: base.to_string(),
                table_id: existing.map(|t| t.id.to_string()),
                table_name: name,
                created_table: existing.is_none(),
                columns_added: missing.iter().map(|(c, _)| (*c).to_owned()).collect(),
                rows,
                created: 0,
                updated: 0,
                deleted: 0,
                unchanged: plan.unchanged,
                complete: true,
                failure: None,
                preview: Some(preview),
                journal: JournalNote::default(),
            }));
        }

        // 3. Confirm, 4. apply (and collect what was written, for the journal).
        self.ctx.confirm(&ctx, &p.control, ask).await?;
        let mut changes: Vec<Change> = Vec::new();
        let mut failure = None;
        let mut created_table = false;
        let mut columns_added = Vec::new();
        let table_id: String = match existing {
            Some(t) => {
                for (col, t_name) in &missing {
                    let spec: CreateField = FieldSpec {
                        name: (*col).to_owned(),
                        field_type: airtable::FieldType::from_wire(t_name),
                        description: None,
                        options: None,
                    };
                    match client.create_field(&base, t.id.as_ref(), &spec).await {
                        Ok(f) => {
                            changes.push(Change::FieldCreated {
                                table_id: t.id.to_string(),
                                field_id: f.id.to_string(),
                                name: f.name.clone(),
                            });
                            columns_added.push((*col).to_owned());
                        }
                        Err(e) if changes.is_empty() => {
                            return Err(ToolError::api(
                                "add a column to the metadata table",
                                base.as_ref(),
                                scope::SCHEMA_WRITE,
                                e,
                            ));
                        }
                        Err(e) => {
                            failure = Some(format!(
                                "adding columns: {} of {} added, then a request failed: {e}. Calling the tool again resumes.",
                                columns_added.len(),
                                missing.len()
                            ));
                            break;
                        }
                    }
                }
                t.id.to_string()
            }
            None => {
                progress
                    .report(0, 0, format!("creating table {name}"))
                    .await;
                let fields = metadata::COLUMNS
                    .iter()
                    .map(|(col, t)| FieldSpec {
                        name: (*col).to_owned(),
                        field_type: airtable::FieldType::from_wire(t),
                        description: None,
                        options: None,
                    })
                    .collect();
                let req = CreateTable {
                    name: name.clone(),
                    description: Some(
                        "Describes every table and field of this base. Maintained by airtable-mcp create_metadata_table; edits are overwritten.".into(),
                    ),
                    fields,
                };
                let result = client.create_table(&base, &req).await;
                self.ctx.invalidate_schema(&base);
                let t = result.map_err(|e| {
                    ToolError::api(
                        "create the metadata table",
                        base.as_ref(),
                        scope::SCHEMA_WRITE,
                        e,
                    )
                })?;
                created_table = true;
                changes.push(Change::TableCreated {
                    table_id: t.id.to_string(),
                    name: t.name.clone(),
                });
                t.id.to_string()
            }
        };
        if !columns_added.is_empty() {
            self.ctx.invalidate_schema(&base);
        }

        let mut deleted = 0;
        let mut updated = 0;
        let mut created = 0;
        if failure.is_none() && !plan.deletes.is_empty() {
            let out = self
                .ctx
                .run_batch(
                    &base,
                    &table_id,
                    BatchWrite::Delete(record_ids(&plan.deletes)?),
                    false,
                    &mut progress,
                    "create_metadata_table: deleted",
                )
                .await?;
            deleted = out.deleted.len();
            failure = failure_text("deleting stale rows", &out);
            changes.extend(out.deleted.iter().map(|id| {
                Change::RecordDeleted {
                    table_id: table_id.clone(),
                    record_id: id.to_string(),
                    before: by_id
                        .get(id.as_ref())
                        .map(|r| r.fields.clone())
                        .unwrap_or_default(),
                }
            }));
        }
        if failure.is_none() && !plan.updates.is_empty() {
            let updates = plan
                .updates
                .iter()
                .map(|(id, fields)| {
                    Ok(RecordUpdate {
                        id: record_id(id)?,
                        fields: fields.clone(),
                    })
                })
                .collect::<Result<Vec<_>, ToolError>>()?;
            let out = self
                .ctx
                .run_batch(
                    &base,
                    &table_id,
                    BatchWrite::Update(updates),
                    false,
                    &mut progress,
                    "create_metadata_table: updated",
                )
                .await?;
            updated = out.written.len();
            failure = failure_text("updating rows", &out);
            changes.extend(
                plan.updates
                    .iter()
                    .zip(&out.written)
                    .map(|((_, cells), rec)| {
                        let have = by_id.get(rec.id.as_ref()).map(|r| &r.fields);
                        Change::RecordUpdated {
                            table_id: table_id.clone(),
                            record_id: rec.id.to_string(),
                            before: cells
                                .keys()
                                .filter_map(|k| {
                                    have.and_then(|h| h.get(k)).map(|v| (k.clone(), v.clone()))
                                })
                                .collect(),
                            after: cells
                                .keys()
                                .filter_map(|k| rec.fields.get(k).map(|v| (k.clone(), v.clone())))
                                .collect(),
                        }
                    }),
            );
        }
        if failure.is_none() && !plan.creates.is_empty() {
            let out = self
                .ctx
                .run_batch(
                    &base,
                    &table_id,
                    BatchWrite::Create(plan.creates),
                    false,
                    &mut progress,
                    "create_metadata_table: created",
                )
                .await?;
            created = out.written.len();
            failure = failure_text("creating rows", &out);
            changes.extend(created_changes(&table_id, &out));
        }

        // 5. Journal what was written (all of it, or what was confirmed before a failure).
        let journal = if changes.is_empty() {
            JournalNote::default()
        } else {
            self.ctx
                .journal_write(NewWrite {
                    tool: "create_metadata_table".to_owned(),
                    base_id: base.to_string(),
                    table_id: Some(table_id.clone()),
                    table_name: Some(name.clone()),
                    summary: format!(
                        "{}{}created {created}, updated {updated}, deleted {deleted} row(s) in {name}{}",
                        if created_table { "created the table; " } else { "" },
                        if columns_added.is_empty() {
                            String::new()
                        } else {
                            format!("added {} column(s); ", columns_added.len())
                        },
                        if failure.is_some() {
                            " (stopped part way)"
                        } else {
                            ""
                        }
                    ),
                    changes,
                    complete: failure.is_none(),
                    undo_of: None,
                    resume: None,
                })
                .await
        };
        Ok(Json(CreateMetadataTableResult {
            base_id: base.to_string(),
            table_id: Some(table_id),
            table_name: name,
            created_table,
            columns_added,
            rows,
            created,
            updated,
            deleted,
            unchanged: plan.unchanged,
            complete: failure.is_none(),
            failure,
            preview: None,
            journal,
        }))
    }

    /// sync_tables
    #[tool(
        name = "sync_tables",
        title = "Sync one table into another",
        description = "One-way sync from a source table into a target table (same or another base), matching records by key_field (same name in both, exact after trimming). Copies the fields both share by name, except computed target fields and links that cannot carry over. dry_run=true (default) returns the plan: creates, updates (old -> new per field), unchanged count, unmatched target records (never deleted), duplicate/empty-key warnings. Then call with dry_run=false to apply (pass confirm_token if asked). Journaled, even partial: undo_write reverts updates and deletes the created records.",
        annotations(
            title = "Sync one table into another",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn sync_tables(
        &self,
        Parameters(p): Parameters<SyncTablesParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<SyncTablesResult>, ToolError> {
        if !p.dry_run {
            self.ctx.require_write("sync_tables")?;
        }
        let source_base = self.ctx.base(&p.source_base_id)?;
        let target_base = self.ctx.base(&p.target_base_id)?;
        if p.max_records == 0 || p.max_records > MAX_SYNC {
            return Err(ToolError::Invalid(format!(
                "max_records must be between 1 and {MAX_SYNC} (got {}).",
                p.max_records
            )));
        }
        let mut progress = Progress::new(&ctx);
        let source_schema = self.ctx.schema(&source_base).await?;
        let target_schema = self.ctx.schema(&target_base).await?;
        let source_table =
            validation::resolve_table(&source_schema, source_base.as_ref(), &p.source_table_id)?;
        let target_table =
            validation::resolve_table(&target_schema, target_base.as_ref(), &p.target_table_id)?;
        check_opt_view(Some(source_table), p.source_view.as_ref())?;
        if source_base == target_base && source_table.id == target_table.id {
            return Err(ToolError::Invalid(
                "source and target are the same table: give two different tables.".into(),
            ));
        }
        let mapping = sync::map_fields(
            &source_table.fields,
            &target_table.fields,
            p.key_field.trim(),
            source_base == target_base,
        )
        .map_err(|e| ToolError::Invalid(format!("{e}.")))?;
        let source_fields: Vec<String> = mapping.synced.iter().map(|(n, _)| n.clone()).collect();
        let target_fields: Vec<String> =
            mapping.synced.iter().map(|(_, f)| f.name.clone()).collect();
        let max = p.max_records as usize;
        let read = self
            .ctx
            .read_records(
                &source_base,
                source_table.id.as_ref(),
                ListQuery {
                    fields: source_fields,
                    view: p.source_view.clone(),
                    ..ListQuery::default()
                },
                max,
                PageReport::every_page(&progress, "sync_tables: source"),
            )
            .await?;
        let source_more = read.has_more();
        let source = read.records;
        let read = self
            .ctx
            .read_records(
                &target_base,
                target_table.id.as_ref(),
                ListQuery {
                    fields: target_fields,
                    ..ListQuery::default()
                },
                max,
                PageReport::every_page(&progress, "sync_tables: target"),
            )
            .await?;
        let target_more = read.has_more();
        let target = read.records;
        let mut plan = sync::plan(&mapping, &source, &target);
        if source_more || target_more {
            plan.warnings.insert(
                0,
                format!(
                    "Only the first {max} records of the {} were read (max_records); the plan covers those only.",
                    match (source_more, target_more) {
                        (true, true) => "source and the target",
                        (true, false) => "source",
                        _ => "target",
                    }
                ),
            );
        }

        let write_count = plan.creates.len() + plan.updates.len();
        let ask = ConfirmAsk {
            tool: "sync_tables",
            summary: format!(
                "Sync {:?} into {:?} by {:?}: create {} and update {} record(s) in {:?}",
                source_table.name,
                target_table.name,
                plan.key_field,
                plan.creates.len(),
                plan.updates.len(),
                target_table.name
            ),
            count: write_count,
            sample: plan
                .updates
                .iter()
                .map(|u| u.key.clone())
                .chain(plan.creates.iter().map(|c| c.key.clone()))
                .take(5)
                .collect(),
            reason: Some(ConfirmReason::SyncApply),
        };
        let mut confirm_token = None;
        let mut journal = JournalNote::default();
        let applied = if p.dry_run {
            if write_count > 0 {
                confirm_token = self.ctx.confirm_token(&ctx, &ask);
            }
            None
        } else if write_count == 0 {
            Some(SyncApplied {
                created: 0,
                updated: 0,
                complete: true,
                failure: None,
            })
        } else {
            let control = WriteControl {
                dry_run: false,
                confirm_token: p.confirm_token.clone(),
            };
            self.ctx.confirm(&ctx, &control, ask).await?;
            let target_id = target_table.id.to_string();
            let mut changes = Vec::new();
            let mut failure = None;
            let mut updated = 0;
            let mut created = 0;
            if !plan.updates.is_empty() {
                let updates = plan
                    .updates
                    .iter()
                    .map(|u| {
                        Ok(RecordUpdate {
                            id: record_id(&u.record_id)?,
                            fields: u
                                .changes
                                .iter()
                                .map(|c| (c.field.clone(), c.new.clone()))
                                .collect::<CellMap>(),
                        })
                    })
                    .collect::<Result<Vec<_>, ToolError>>()?;
                let out = self
                    .ctx
                    .run_batch(
                        &target_base,
                        &target_id,
                        BatchWrite::Update(updates),
                        p.typecast,
                        &mut progress,
                        "sync_tables: updated",
                    )
                    .await?;
                updated = out.written.len();
                failure = failure_text("updating target records", &out);
                changes.extend(sync_update_changes(&target_id, &plan.updates, &out));
            }
            if failure.is_none() && !plan.creates.is_empty() {
                let creates: Vec<CellMap> = plan.creates.iter().map(|c| c.fields.clone()).collect();
                let out = self
                    .ctx
                    .run_batch(
                        &target_base,
                        &target_id,
                        BatchWrite::Create(creates),
                        p.typecast,
                        &mut progress,
                        "sync_tables: created",
                    )
                    .await?;
                created = out.written.len();
                failure = failure_text("creating target records", &out);
                changes.extend(created_changes(&target_id, &out));
            }
            if !changes.is_empty() {
                journal = self
                    .ctx
                    .journal_write(NewWrite {
                        tool: "sync_tables".to_owned(),
                        base_id: target_base.to_string(),
                        table_id: Some(target_id.clone()),
                        table_name: Some(target_table.name.clone()),
                        summary: format!(
                            "synced {} into {}: updated {updated}, created {created} record(s){}",
                            source_table.name,
                            target_table.name,
                            if failure.is_some() {
                                " (stopped part way)"
                            } else {
                                ""
                            }
                        ),
                        changes,
                        complete: failure.is_none(),
                        undo_of: None,
                        resume: None,
                    })
                    .await;
            }
            Some(SyncApplied {
                created,
                updated,
                complete: failure.is_none(),
                failure,
            })
        };

        let create_count = plan.creates.len();
        let update_count = plan.updates.len();
        let unmatched_target_count = plan.unmatched_target.len();
        let share = self.ctx.budget() / 4;
        let (creates, _) = fit_to_budget(first_records(plan.creates), share);
        let (updates, _) = fit_to_budget(first_records(plan.updates), share);
        let (unmatched_target, _) = fit_to_budget(first_records(plan.unmatched_target), share / 2);
        let (warnings, cut_w) = fit_to_budget(plan.warnings, share / 2);
        let truncated = creates.len() < create_count
            || updates.len() < update_count
            || unmatched_target.len() < unmatched_target_count
            || cut_w > 0;
        let note = truncated.then(|| {
            format!(
                "Lists cut to stay small: showing {} of {create_count} creates, {} of {update_count} updates, {} of {unmatched_target_count} unmatched target records, {} of {} warnings. The counts are complete{}.",
                creates.len(),
                updates.len(),
                unmatched_target.len(),
                warnings.len(),
                warnings.len() + cut_w,
                if p.dry_run { "; applying writes the whole plan" } else { "" }
            )
        });
        Ok(Json(SyncTablesResult {
            dry_run: p.dry_run,
            key_field: plan.key_field,
            fields_synced: plan.fields_synced,
            fields_skipped: plan.fields_skipped,
            source_records: plan.source_records,
            target_records: plan.target_records,
            create_count,
            update_count,
            unchanged: plan.unchanged,
            unmatched_target_count,
            creates,
            updates,
            unmatched_target,
            warnings,
            truncated,
            note,
            applied,
            confirm_token,
            journal,
        }))
    }
}

impl RecordLike for airtable::Record {
    fn record_id(&self) -> &str {
        self.id.as_ref()
    }
    fn cells(&self) -> &CellMap {
        &self.fields
    }
}
