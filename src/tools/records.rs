//! Records: get_records, get_record, search_records, create/update/delete_record and the batch
//! tools (up to 10,000 records a call; the client sends them 10 at a time, in order).

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{Json, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use std::collections::{HashMap, HashSet};

use crate::airtable::{
    CellFormat, FieldType, Fields, GetOptions, ListQuery, RawRecordPage, Record, RecordId,
    RecordUpdate, Sort, SortDirection, Table, UpdateMode, UpsertRecord, WriteOptions,
};
use crate::formula;
use crate::tools::ToolError;
use crate::tools::bases::primary_name;
use crate::tools::batch::{
    BatchWrite, BatchWriteOutput, JournalPlan, batch_schema, id_list, pick, preview_of, sample,
};
use crate::tools::compact::{CellRule, compact_records, render_text_records};
use crate::tools::confirm::{ConfirmAsk, ConfirmReason};
use crate::tools::context::{PageReport, PagesRead, RecordsRead, TableCtx, field_name};
use crate::tools::filters::{self, Filters};
use crate::tools::handler::AirtableServer;
use crate::tools::journal::{Change, NewWrite};
use crate::tools::links;
use crate::tools::params::{
    Direction, RecordUpdateParam, SortParam, default_max_records, lenient_array, lenient_bool,
    lenient_object, lenient_opt_strings, lenient_strings, lenient_u32, opt_nonempty,
};
use crate::tools::progress::Progress;
use crate::tools::result::{OutRecord, fit_to_budget_rendered, json_len, scope, truncation_note};
use crate::tools::validation::{check_field_names, find_field};
use crate::tools::views::check_view;
use crate::tools::writes::{
    JournalNote, PREVIEW_RECORDS, RecordPreview, WriteControl, WritePreview, diff_fields,
    prepare_cells, primary_label,
};

/// The most records one get_records / search_records call reads.
pub(crate) const MAX_READ_RECORDS: u32 = 1000;

// ---------------------------------------------------------------------------------------------
// Parameters

/// Parameters of get_records.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct GetRecordsParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// Most records to return (default 100, at most 1000). Continue with `offset` when
    /// has_more is true.
    #[serde(default = "default_max_records", deserialize_with = "lenient_u32")]
    pub(crate) max_records: u32,
    /// View name or ID: only its records, in its order (its filters apply).
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) view: Option<String>,
    /// Airtable formula; a record is returned when it evaluates truthy, e.g.
    /// AND({Status}="Done", {Priority}>2) or FIND("acme", LOWER({Company})). Field names in
    /// braces, text in double quotes.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) filter_by_formula: Option<String>,
    /// Structured conditions (AND-ed with filter_by_formula).
    #[serde(default, deserialize_with = "filters::lenient_filters")]
    pub(crate) filters: Option<Filters>,
    /// Only these fields (names or IDs) in each record; ask only for what you need.
    #[serde(default, deserialize_with = "lenient_opt_strings")]
    pub(crate) fields: Option<Vec<String>>,
    /// Sort order, e.g. [{"field": "Due", "direction": "asc"}]; overrides the view's order.
    #[serde(default)]
    pub(crate) sort: Option<Vec<SortParam>>,
    /// The `offset` cursor from the previous result, to get the next page.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) offset: Option<String>,
    /// Linked IDs as {id, name} (name: primary field).
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) expand_links: bool,
    /// Only these records (rec IDs, at most 100), in this order; missing ones are named in note.
    #[serde(default, deserialize_with = "lenient_opt_strings")]
    pub(crate) record_ids: Option<Vec<String>>,
    /// "string": values as Airtable shows them (default "json").
    #[serde(default)]
    pub(crate) cell_format: Option<CellFormatParam>,
    /// Time zone for cell_format "string" (default UTC).
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) time_zone: Option<String>,
    /// Locale for cell_format "string" (default en-us).
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) user_locale: Option<String>,
    /// Key values by field ID.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) return_fields_by_field_id: bool,
}

/// `cell_format` of get_records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CellFormatParam {
    /// Cell values as JSON.
    Json,
    /// Cell values as shown in Airtable.
    String,
}

/// Most `record_ids` in one get_records call.
const MAX_RECORD_IDS: usize = 100;

/// Parameters of get_record.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct GetRecordParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// Record ID (rec...).
    pub(crate) record_id: String,
    /// Only these fields (names or IDs) in the result.
    #[serde(default, deserialize_with = "lenient_opt_strings")]
    pub(crate) fields: Option<Vec<String>>,
    /// Linked IDs as {id, name} (name: primary field).
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) expand_links: bool,
}

/// Parameters of create_record.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct CreateRecordParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// {"Field name": value}, e.g. {"Name": "Acme", "Tags": ["a"], "Due": "2026-01-31"}.
    #[serde(deserialize_with = "lenient_object")]
    #[schemars(with = "Map<String, Value>")]
    pub(crate) fields: Map<String, Value>,
    /// Let Airtable convert values and add select options.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) typecast: bool,
    #[serde(flatten)]
    pub(crate) control: WriteControl,
}

/// Parameters of update_record.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct UpdateRecordParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// Record ID (rec...).
    pub(crate) record_id: String,
    /// The fields to change, by name; other fields are left unchanged. Set a field to null to
    /// clear it.
    #[serde(deserialize_with = "lenient_object")]
    #[schemars(with = "Map<String, Value>")]
    pub(crate) fields: Map<String, Value>,
    /// Let Airtable convert values and add select options.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) typecast: bool,
    #[serde(flatten)]
    pub(crate) control: WriteControl,
}

/// Parameters of delete_record.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct DeleteRecordParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// Record ID (rec...) to delete.
    pub(crate) record_id: String,
    #[serde(flatten)]
    pub(crate) control: WriteControl,
}

/// Parameters of batch_create_records.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct BatchCreateParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// Up to 10,000 records: {"Field": value} or {"fields": {...}} each.
    #[serde(deserialize_with = "lenient_array")]
    #[schemars(with = "Vec<Map<String, Value>>")]
    pub(crate) records: Vec<Value>,
    /// Let Airtable convert values and add select options.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) typecast: bool,
    #[serde(flatten)]
    pub(crate) control: WriteControl,
}

/// Parameters of batch_update_records.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct BatchUpdateParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// Up to 10,000 updates: [{"id": "rec...", "fields": {"Field": value}}].
    pub(crate) records: Vec<RecordUpdateParam>,
    /// Let Airtable convert values and add select options.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) typecast: bool,
    #[serde(flatten)]
    pub(crate) control: WriteControl,
}

/// Parameters of batch_delete_records.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct BatchDeleteParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// Record IDs (rec...) to delete, up to 10,000 per call.
    #[serde(deserialize_with = "lenient_strings")]
    pub(crate) record_ids: Vec<String>,
    #[serde(flatten)]
    pub(crate) control: WriteControl,
}

/// Parameters of batch_upsert_records.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct BatchUpsertParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// Up to 10,000 records, each with the merge fields.
    #[serde(deserialize_with = "lenient_array")]
    #[schemars(with = "Vec<Map<String, Value>>")]
    pub(crate) records: Vec<Value>,
    /// 1-3 field names that identify a record.
    #[serde(deserialize_with = "lenient_strings")]
    pub(crate) fields_to_merge_on: Vec<String>,
    /// Let Airtable convert values and add select options.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) typecast: bool,
    #[serde(flatten)]
    pub(crate) control: WriteControl,
}

// ---------------------------------------------------------------------------------------------
// Outputs

/// A page of records, compact: field names once in `columns`, one array per record in `rows`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct RecordsOutput {
    /// Number of records (rows) in this result.
    pub(crate) count: usize,
    /// True when more records match: call again with `offset`.
    pub(crate) has_more: bool,
    /// Cursor for the next page (pass it as `offset`); absent at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) offset: Option<String>,
    /// Present (true) only when records were left out to keep the result small (see note);
    /// absent means false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schemars(extend("default" = false))]
    pub(crate) truncated: bool,
    /// How to get what was left out, when truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
    /// Column names: "id" (the record ID) first, then each field that has a value in at least
    /// one row, the fullest first (ties in schema order).
    pub(crate) columns: Vec<String>,
    /// One array per record, aligned to `columns`: the record ID, then the cell values. null
    /// is an empty cell; trailing empty cells are left out, so a row may be shorter than
    /// `columns`. A single-record link (or a lookup through one) holding one value is that
    /// value ("rec..."), not a list. Attachments: id, filename, type, url, and thumbnail for
    /// images (size and all thumbnails: get_attachments). Date-times without zero
    /// milliseconds or seconds ("2026-01-02T12:51Z").
    pub(crate) rows: Vec<Vec<Value>>,
    /// `rows` as JSON, rendered while fitting them to the budget (the text is then written
    /// without serialising the rows a second time). None when the rows changed after.
    #[serde(skip)]
    #[schemars(skip)]
    pub(crate) rows_json: Option<String>,
}

impl RecordsOutput {
    /// The structured content, built by moving the rows (no serialise-and-parse copy); the
    /// same JSON, key for key and in the same order, as serialising `self`.
    pub(crate) fn into_value(self) -> Value {
        let mut m = Map::with_capacity(7);
        m.insert("count".to_owned(), Value::from(self.count));
        m.insert("has_more".to_owned(), Value::Bool(self.has_more));
        if let Some(offset) = self.offset {
            m.insert("offset".to_owned(), Value::String(offset));
        }
        if self.truncated {
            m.insert("truncated".to_owned(), Value::Bool(true));
        }
        if let Some(note) = self.note {
            m.insert("note".to_owned(), Value::String(note));
        }
        m.insert(
            "columns".to_owned(),
            Value::Array(self.columns.into_iter().map(Value::String).collect()),
        );
        m.insert(
            "rows".to_owned(),
            Value::Array(self.rows.into_iter().map(Value::Array).collect()),
        );
        Value::Object(m)
    }

    /// As a tool result known by its compact JSON text
    /// ([`crate::tools::result::text_structured_result`]): the
    /// structured content is that text parsed, built only where a transport needs the tree.
    fn into_result(mut self) -> CallToolResult {
        let rows_json = self.rows_json.take();
        let text = match rows_json {
            // Everything but the rows (a handful of keys), then the rows as rendered: `rows`
            // is the last key, serialised here as `[]}`.
            Some(rows_json) => {
                self.rows = Vec::new();
                match serde_json::to_string(&self) {
                    Ok(head) if head.ends_with("[]}") => {
                        let mut text = String::with_capacity(head.len() + rows_json.len());
                        text.push_str(&head[..head.len() - 3]);
                        text.push_str(&rows_json);
                        text.push('}');
                        Ok(text)
                    }
                    Ok(_) => serde_json::from_str::<Vec<Vec<Value>>>(&rows_json).and_then(|rows| {
                        self.rows = rows;
                        serde_json::to_string(&self)
                    }),
                    Err(e) => Err(e),
                }
            }
            None => serde_json::to_string(&self),
        };
        match text {
            Ok(text) => crate::tools::result::text_structured_result(text),
            // Serialising plain JSON values does not fail; if it ever did, say so.
            Err(e) => CallToolResult::error(vec![rmcp::model::ContentBlock::text(format!(
                "the result could not be written as JSON: {e}"
            ))]),
        }
    }
}

/// The output schema of get_records and search_records.
fn records_schema() -> std::sync::Arc<rmcp::model::JsonObject> {
    rmcp::handler::server::common::schema_for_output::<RecordsOutput>()
}

/// One record.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct RecordOutput {
    /// The record.
    pub(crate) record: OutRecord,
    /// What expand_links could not resolve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
}

/// A written record, or (dry_run) what would change.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct RecordWriteOutput {
    /// The record as Airtable returned it after the write (absent on dry_run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) record: Option<OutRecord>,
    /// dry_run only: what the call would change. Nothing was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) preview: Option<WritePreview>,
    #[serde(flatten)]
    pub(crate) journal: JournalNote,
}

/// A deleted record, or (dry_run) what would be deleted.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct DeletedOutput {
    /// The ID of the record.
    pub(crate) id: String,
    /// True when it was deleted (false on dry_run).
    pub(crate) deleted: bool,
    /// dry_run only: the record that would be deleted. Nothing was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) preview: Option<WritePreview>,
    #[serde(flatten)]
    pub(crate) journal: JournalNote,
}

// ---------------------------------------------------------------------------------------------
// Helpers

impl AirtableServer {
    pub(crate) fn records_output(
        &self,
        read: RecordsRead,
        table: Option<&Table>,
        how: &str,
    ) -> RecordsOutput {
        let next = read.next;
        let fields = table.map(|t| t.fields.as_slice()).unwrap_or_default();
        let order: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        let rules = table.map(cell_rules).unwrap_or_default();
        let mut compact = compact_records(
            &order,
            &rules,
            read.records
                .into_iter()
                .map(|r| (r.id.to_string(), r.fields)),
        );
        let budget = self.ctx.budget();
        let rows_budget = budget.saturating_sub(json_len(&compact.columns));
        let rows = std::mem::take(&mut compact.rows);
        let (rows, cut, mut rows_json) = fit_to_budget_rendered(rows, rows_budget);
        compact.rows = rows;
        let truncated = cut > 0;
        if truncated {
            // Columns left empty by the cut go, and the rows with them: rendered again later.
            compact.retain_used_columns();
            rows_json = None;
        }
        let note = truncated.then(|| truncation_note(compact.rows.len(), cut, budget, how));
        RecordsOutput {
            count: compact.rows.len(),
            has_more: truncated || next.is_some(),
            offset: if truncated { None } else { next },
            truncated,
            note,
            columns: compact.columns,
            rows: compact.rows,
            rows_json,
        }
    }

    /// [`AirtableServer::records_output`] for pages read as text
    /// ([`crate::tools::context::ToolContext::read_pages`] of `RawRecordPage`s): the rows are written from the
    /// cells' text, with no record or value parsed but the cells a rule rewrites.
    pub(crate) fn records_text_output(
        &self,
        read: PagesRead<RawRecordPage>,
        table: Option<&Table>,
        how: &str,
    ) -> RecordsOutput {
        let fields = table.map(|t| t.fields.as_slice()).unwrap_or_default();
        let order: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        let rules = table.map(cell_rules).unwrap_or_default();
        let pages = read.pages.iter().map(|page| {
            let records = page.records().iter().map(move |r| {
                let cells = page.cells(r).iter().map(move |c| (c.name, page.text(*c)));
                (r.id.as_str(), cells)
            });
            (page.names(), records)
        });
        let size = read.pages.iter().fold((0, 0), |(records, cells), page| {
            (records + page.records().len(), cells + page.cell_count())
        });
        let budget = self.ctx.budget();
        let rendered = render_text_records(&order, &rules, pages, size, budget);
        let truncated = rendered.cut > 0;
        let note = truncated.then(|| truncation_note(rendered.kept, rendered.cut, budget, how));
        RecordsOutput {
            count: rendered.kept,
            has_more: truncated || read.next.is_some(),
            offset: if truncated { None } else { read.next },
            truncated,
            note,
            columns: rendered.columns,
            rows: Vec::new(),
            rows_json: Some(rendered.rows_json),
        }
    }
}

/// How get_records says to read what a cut left out.
const GET_RECORDS_CUT: &str = "To read everything, ask for fewer fields (fields=[...]) or a smaller max_records and page with offset.";

/// How each field's cells are written in compact rows, by field name and by field ID (records
/// keyed by IDs with return_fields_by_field_id): timestamps, single-record links and lookups
/// through them, attachments and lookups of attachments (see `tools::compact`).
pub(crate) fn cell_rules(table: &Table) -> HashMap<&str, CellRule> {
    let single_links: HashSet<&str> = table
        .fields
        .iter()
        .filter(|f| f.prefers_single_record_link())
        .map(|f| f.id.as_ref())
        .collect();
    let mut rules = HashMap::with_capacity(table.fields.len() * 2);
    for f in &table.fields {
        let lookup = f.field_type == FieldType::MultipleLookupValues;
        let rule = CellRule {
            instant: matches!(
                f.field_type,
                FieldType::DateTime | FieldType::CreatedTime | FieldType::LastModifiedTime
            ),
            single: f.prefers_single_record_link()
                || (lookup
                    && f.record_link_field_id()
                        .is_some_and(|id| single_links.contains(id))),
            attachments: f.field_type == FieldType::MultipleAttachments
                || (lookup && f.result_type() == Some("multipleAttachments")),
        };
        if rule != CellRule::default() {
            rules.insert(f.name.as_str(), rule);
        }
    }
    for f in &table.fields {
        if let Some(rule) = rules.get(f.name.as_str()).copied() {
            rules.entry(f.id.as_ref()).or_insert(rule);
        }
    }
    rules
}

/// The records in the order of `ids` (each ID once).
fn order_by_ids(read: RecordsRead, ids: &[String]) -> RecordsRead {
    let mut by_id: HashMap<String, Record> = read
        .records
        .into_iter()
        .map(|r| (r.id.to_string(), r))
        .collect();
    RecordsRead {
        records: ids.iter().filter_map(|id| by_id.remove(id)).collect(),
        next: read.next,
    }
}

fn check_max(max: u32) -> Result<u32, ToolError> {
    if max == 0 {
        return Err(ToolError::Invalid("max_records must be at least 1.".into()));
    }
    Ok(max.min(MAX_READ_RECORDS))
}

fn parse_record_id(s: &str) -> Result<RecordId, ToolError> {
    s.trim().parse::<RecordId>().map_err(|e| {
        let message = format!("{e}. Record IDs come from get_records or search_records.");
        ToolError::invalid_id(e, message)
    })
}

/// Unwrap Airtable's {"fields": {...}} form, or take the item as the fields themselves.
fn record_fields(
    item: Value,
    index: usize,
    table: Option<&Table>,
) -> Result<Map<String, Value>, ToolError> {
    let Value::Object(mut obj) = item else {
        return Err(ToolError::Invalid(format!(
            "records[{index}] is not an object: give {{\"Field\": value}} or {{\"fields\": {{...}}}}."
        )));
    };
    let table_has_fields_column = table.is_some_and(|t| find_field(t, "fields").is_some());
    if !table_has_fields_column && matches!(obj.get("fields"), Some(Value::Object(_))) {
        let only_wrapper = obj
            .keys()
            .all(|k| k == "fields" || k == "id" || k == "createdTime");
        if only_wrapper && let Some(Value::Object(inner)) = obj.remove("fields") {
            return Ok(inner);
        }
    }
    Ok(obj)
}

/// The most records one batch call writes (stated in the tools' schemas): 10,000 records are
/// 1,000 requests, about 3.5 minutes at Airtable's 5 requests per second.
pub(crate) const MAX_WRITE_RECORDS: usize = 10_000;

fn validate_batch_size(n: usize) -> Result<(), ToolError> {
    if n > MAX_WRITE_RECORDS {
        return Err(ToolError::Invalid(format!(
            "{n} records in one call; at most {MAX_WRITE_RECORDS} per call (1,000 requests, about 3.5 minutes at Airtable's rate limit). Split the records into several calls: nothing was sent."
        )));
    }
    if n == 0 {
        return Err(ToolError::Invalid(
            "records is empty: give at least one record.".into(),
        ));
    }
    Ok(())
}

/// Field keys (names or IDs) as names, as Airtable returns records (previews, diffs and the
/// journal compare them).
fn by_name(table: Option<&Table>, fields: Map<String, Value>) -> Fields {
    fields
        .into_iter()
        .map(|(k, v)| (field_name(table, &k), v))
        .collect()
}

/// The table's name, or the reference sent when the schema is unknown.
fn table_name_of(ctx: &TableCtx) -> String {
    ctx.table()
        .map_or_else(|| ctx.table_ref.clone(), |t| t.name.clone())
}

/// The distinct IDs, in first-seen order.
fn unique_ids<'a>(ids: impl Iterator<Item = &'a RecordId>) -> Vec<RecordId> {
    let mut seen = HashSet::new();
    ids.filter(|id| seen.insert(id.to_string()))
        .cloned()
        .collect()
}

/// A preview line for a record that does not exist.
fn not_found(id: &str) -> RecordPreview {
    RecordPreview {
        action: "not_found",
        id: Some(id.to_owned()),
        label: None,
        changes: Vec::new(),
        fields: None,
    }
}

/// The refusal of a write naming records that do not exist.
fn not_found_error(missing: &[String], table_name: &str) -> ToolError {
    ToolError::Invalid(format!(
        "{} record(s) do not exist in table {table_name}: {}. Nothing was sent; remove them (check the IDs with get_records or search_records) and call again.",
        missing.len(),
        id_list(missing)
    ))
}

/// Whether a value leaves a cell empty (an upsert input with an empty merge value creates).
fn empty_cell(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Whether a record's merge value equals an input's, as Airtable matches upserts: the exact
/// value (numbers by value).
fn merge_eq(record: Option<&Value>, input: &Value) -> bool {
    match (record, input) {
        (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Some(a), b) => a == b,
        (None, _) => false,
    }
}

/// Formula terms that find the records the upsert inputs may match, one per distinct set
/// of merge values: `AND({f1}=v1, ...)`. A merge value a formula cannot compare exactly
/// (dates, arrays) is left out of its term, so the terms find a superset (the match itself
/// is exact, in [`plan_upsert`]). None: some input cannot be narrowed at all (read every
/// record).
fn merge_terms(
    table: Option<&Table>,
    merge_on: &[String],
    records: &[Fields],
) -> Option<Vec<String>> {
    let mut terms: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for f in records {
        if merge_on.iter().any(|m| f.get(m).is_none_or(empty_cell)) {
            continue; // creates: nothing to match
        }
        let mut parts = Vec::new();
        for m in merge_on {
            let dated = table
                .and_then(|t| find_field(t, m))
                .is_some_and(|fd| matches!(fd.field_type, FieldType::Date | FieldType::DateTime));
            let value = match f.get(m) {
                Some(Value::String(s)) if !dated => formula::string_literal(s),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(true)) => "TRUE()".to_owned(),
                Some(Value::Bool(false)) => "FALSE()".to_owned(),
                _ => continue,
            };
            parts.push(format!("{}={value}", formula::field_ref(m)));
        }
        let term = match parts.len() {
            0 => return None,
            1 => parts.remove(0),
            _ => format!("AND({})", parts.join(",")),
        };
        if seen.insert(term.clone()) {
            terms.push(term);
        }
    }
    Some(terms)
}

/// Group formula terms into `OR(...)` filters of at most 100 terms and about 4,000
/// characters each (a GET URL stays well under Airtable's 16,000).
fn or_filters(terms: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut group: Vec<String> = Vec::new();
    let mut len = 0;
    for t in terms {
        if !group.is_empty() && (group.len() == 100 || len + t.len() > 4000) {
            out.push(format!("OR({})", group.join(",")));
            group.clear();
            len = 0;
        }
        len += t.len() + 1;
        group.push(t);
    }
    if !group.is_empty() {
        out.push(format!("OR({})", group.join(",")));
    }
    out
}

/// What an upsert would do, input by input.
struct UpsertPlan {
    /// Per input: the named fields of the matched record before the write (None: creates,
    /// or matches several records).
    befores: Vec<Option<Fields>>,
    /// The preview lines (ambiguous inputs first).
    previews: Vec<RecordPreview>,
    /// Labels of the inputs, for a confirmation.
    labels: Vec<String>,
    /// Inputs that would create a record.
    creates: usize,
    /// Inputs that would change a record.
    changed: usize,
    /// Inputs that would update a record to the values it has.
    unchanged: usize,
    /// Inputs that match more than one record, with the records' IDs.
    ambiguous: Vec<(usize, Vec<String>)>,
}

/// Match the upsert inputs as Airtable does, in order: an input whose merge values all equal
/// one record's updates it; none creates a record (which later inputs can match); several is
/// an error. `candidates`: the existing records that may match.
fn plan_upsert(
    table: Option<&Table>,
    merge_on: &[String],
    records: &[Fields],
    candidates: Vec<Record>,
) -> UpsertPlan {
    // (existing record ID, or the input that creates it; its fields as the plan goes).
    let mut pool: Vec<(Result<String, usize>, Fields)> = candidates
        .into_iter()
        .map(|r| (Ok(r.id.to_string()), r.fields))
        .collect();
    let mut plan = UpsertPlan {
        befores: Vec::with_capacity(records.len()),
        previews: Vec::new(),
        labels: Vec::new(),
        creates: 0,
        changed: 0,
        unchanged: 0,
        ambiguous: Vec::new(),
    };
    let mut lines = Vec::new();
    for (i, f) in records.iter().enumerate() {
        let names: Vec<String> = f.keys().cloned().collect();
        let wanted: Option<Vec<(&String, &Value)>> = merge_on
            .iter()
            .map(|m| f.get(m).filter(|v| !empty_cell(v)).map(|v| (m, v)))
            .collect();
        let matches: Vec<usize> = match &wanted {
            Some(w) => pool
                .iter()
                .enumerate()
                .filter(|(_, (_, cur))| w.iter().all(|(m, v)| merge_eq(cur.get(*m), v)))
                .map(|(j, _)| j)
                .collect(),
            None => Vec::new(),
        };
        match matches.as_slice() {
            [] => {
                let label = primary_label(table, f);
                plan.labels
                    .push(label.clone().unwrap_or_else(|| format!("new record {i}")));
                plan.creates += 1;
                plan.befores.push(None);
                if lines.len() <= PREVIEW_RECORDS {
                    lines.push(RecordPreview {
                        action: "create",
                        id: None,
                        label,
                        changes: Vec::new(),
                        fields: Some(f.clone()),
                    });
                }
                pool.push((Err(i), f.clone()));
            }
            [j] => {
                let (who, cur) = &mut pool[*j];
                let label = primary_label(table, cur);
                let id = match who {
                    Ok(id) => id.clone(),
                    Err(k) => format!("(created by records[{k}])"),
                };
                plan.labels
                    .push(label.clone().unwrap_or_else(|| id.clone()));
                let diffs = diff_fields(cur, f);
                plan.befores.push(Some(pick(cur, &names)));
                if diffs.is_empty() {
                    plan.unchanged += 1;
                } else {
                    plan.changed += 1;
                    if lines.len() <= PREVIEW_RECORDS {
                        lines.push(RecordPreview {
                            action: "update",
                            id: Some(id),
                            label,
                            changes: diffs,
                            fields: None,
                        });
                    }
                }
                for (k, v) in f {
                    cur.insert(k.clone(), v.clone());
                }
            }
            many => {
                let ids: Vec<String> = many
                    .iter()
                    .map(|j| match &pool[*j].0 {
                        Ok(id) => id.clone(),
                        Err(k) => format!("(created by records[{k}])"),
                    })
                    .collect();
                plan.previews.push(RecordPreview {
                    action: "ambiguous",
                    id: None,
                    label: Some(format!("records[{i}] matches {}", ids.join(", "))),
                    changes: Vec::new(),
                    fields: None,
                });
                plan.befores.push(None);
                plan.ambiguous.push((i, ids));
            }
        }
    }
    plan.previews.extend(lines);
    plan
}

impl AirtableServer {
    /// The existing records an upsert's inputs may match (see [`merge_terms`]), with the
    /// fields `read`.
    async fn merge_candidates(
        &self,
        ctx: &TableCtx,
        merge_on: &[String],
        records: &[Fields],
        read: &[String],
    ) -> Result<Vec<Record>, ToolError> {
        let filters: Vec<Option<String>> = match merge_terms(ctx.table(), merge_on, records) {
            Some(terms) => or_filters(terms).into_iter().map(Some).collect(),
            None => vec![None],
        };
        // No progress: the write that follows reports its own, and progress must only grow.
        let progress = Progress::disabled();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for filter in filters {
            let query = ListQuery {
                filter_by_formula: filter,
                fields: read.to_vec(),
                ..ListQuery::default()
            };
            let found = self
                .ctx
                .read_records(
                    &ctx.base,
                    &ctx.table_ref,
                    query,
                    usize::MAX,
                    PageReport::between_pages(&progress, "reading the records to upsert"),
                )
                .await?;
            out.extend(
                found
                    .records
                    .into_iter()
                    .filter(|r| seen.insert(r.id.to_string())),
            );
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Tools

#[tool_router(router = records_router, vis = "pub(crate)")]
impl AirtableServer {
    #[tool(
        name = "get_records",
        meta = crate::tools::apps::records_meta(),
        title = "Get records",
        description = "Read records from a table (ID or name). Returns {count, has_more, offset, columns, rows}: columns names the fields once (\"id\" first); each row is one record's values in column order (null = empty). When has_more is true, call again with the same arguments plus offset. Keep results small: fields=[...] with only the fields you need, and max_records (default 100, max 1000). filters, e.g. {\"conditions\":[{\"field\":\"Status\",\"op\":\"is_any_of\",\"value\":[\"Todo\"]},{\"field\":\"Due\",\"op\":\"is_within\",\"value\":\"past_week\"}]}: selects by choice name, checked before sending. filter_by_formula: an Airtable formula, e.g. AND({Status}=\"Done\", {Points}>2). record_ids: just those records. sort: [{\"field\":\"Due\",\"direction\":\"desc\"}]. view: a view name or ID.",
        output_schema = records_schema(),
        annotations(
            title = "Get records",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn get_records(
        &self,
        Parameters(p): Parameters<GetRecordsParams>,
        rctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let mut max = check_max(p.max_records)?;
        let ids: Vec<String> = match &p.record_ids {
            Some(ids) => {
                let mut seen = HashSet::new();
                let mut out = Vec::new();
                for id in ids {
                    let id = parse_record_id(id)?.to_string();
                    if seen.insert(id.clone()) {
                        out.push(id);
                    }
                }
                if out.len() > MAX_RECORD_IDS {
                    return Err(ToolError::Invalid(format!(
                        "record_ids has {} IDs; at most {MAX_RECORD_IDS} per call",
                        out.len()
                    )));
                }
                max = max.max(out.len() as u32);
                out
            }
            None => Vec::new(),
        };
        let ctx = self.ctx.table_ctx(&p.base_id, &p.table_id).await?;
        let conditions = filters::read_formula(
            ctx.table(),
            p.filters.as_ref(),
            p.filter_by_formula.as_deref(),
        )?;
        let fields = p.fields.unwrap_or_default();
        let sort = p.sort.unwrap_or_default();
        if let Some(t) = ctx.table() {
            check_field_names(t, &fields, "fields")?;
            check_field_names(t, sort.iter().map(|s| &s.field), "sort")?;
            if let Some(v) = &p.view {
                check_view(t, v)?;
            }
        }
        let query = ListQuery {
            view: p.view,
            fields,
            sort: sort
                .into_iter()
                .map(|s| Sort {
                    field: s.field,
                    direction: match s.direction {
                        Direction::Asc => SortDirection::Asc,
                        Direction::Desc => SortDirection::Desc,
                    },
                })
                .collect(),
            filter_by_formula: filters::and_formulas(
                conditions,
                (!ids.is_empty()).then(|| {
                    let terms: Vec<String> = ids
                        .iter()
                        .map(|id| format!("RECORD_ID()={}", formula::string_literal(id)))
                        .collect();
                    format!("OR({})", terms.join(","))
                }),
            ),
            offset: p.offset,
            return_fields_by_field_id: p.return_fields_by_field_id,
            ..ListQuery::default()
        };
        let query = if p.cell_format == Some(CellFormatParam::String) {
            ListQuery {
                cell_format: Some(CellFormat::String),
                time_zone: Some(p.time_zone.unwrap_or_else(|| "UTC".into())),
                user_locale: Some(p.user_locale.unwrap_or_else(|| "en-us".into())),
                ..query
            }
        } else {
            query
        };
        let progress = Progress::new(&rctx);
        let report = PageReport::between_pages(&progress, "get_records");
        if !p.expand_links && ids.is_empty() {
            // Cells copied from the pages' text into the rows: no record is parsed.
            let read = (self.ctx)
                .read_pages::<RawRecordPage>(&ctx.base, &ctx.table_ref, query, max as usize, report)
                .await?;
            return Ok(self
                .records_text_output(read, ctx.table(), GET_RECORDS_CUT)
                .into_result());
        }
        let mut read = self
            .ctx
            .read_records(&ctx.base, &ctx.table_ref, query, max as usize, report)
            .await?;
        let links = links::expand(&self.ctx, &ctx, p.expand_links, &mut read.records).await?;
        let read = if ids.is_empty() {
            read
        } else {
            order_by_ids(read, &ids)
        };
        let missing: Vec<&str> = if ids.is_empty() {
            Vec::new()
        } else {
            let found: HashSet<String> = read.records.iter().map(|r| r.id.to_string()).collect();
            ids.iter()
                .filter(|id| !found.contains(*id))
                .map(String::as_str)
                .collect()
        };
        let mut out = self
            .records_output(read, ctx.table(), GET_RECORDS_CUT)
            .with_note(links);
        if !missing.is_empty() {
            let msg = format!(
                "record_ids not found (or filtered out): {}",
                missing.join(", ")
            );
            out.note = Some(match out.note.take() {
                Some(n) => format!("{n} {msg}"),
                None => msg,
            });
        }
        Ok(out.into_result())
    }

    #[tool(
        name = "get_record",
        meta = crate::tools::apps::records_meta(),
        title = "Get record",
        description = "Read one record by ID (rec...), with its creation time. fields limits the fields returned.",
        annotations(
            title = "Get record",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn get_record(
        &self,
        Parameters(p): Parameters<GetRecordParams>,
    ) -> Result<Json<RecordOutput>, ToolError> {
        let ctx = self.ctx.table_ctx(&p.base_id, &p.table_id).await?;
        let id = parse_record_id(&p.record_id)?;
        let fields = p.fields.unwrap_or_default();
        if let Some(t) = ctx.table() {
            check_field_names(t, &fields, "fields")?;
        }
        let rec = self
            .ctx
            .client()?
            .get_record(&ctx.base, &ctx.table_ref, &id, &GetOptions::default())
            .await
            .map_err(|e| {
                ToolError::api("get the record", ctx.base.as_ref(), scope::RECORDS_READ, e)
            })?;
        let mut out = OutRecord::full(rec);
        if !fields.is_empty() {
            let wanted: Vec<String> = fields.iter().map(|f| field_name(ctx.table(), f)).collect();
            out.fields.retain(|k, _| wanted.contains(k));
        }
        let note = links::expand_fields(&self.ctx, &ctx, p.expand_links, &mut out.fields).await?;
        Ok(Json(RecordOutput { record: out, note }))
    }

    #[tool(
        name = "create_record",
        title = "Create record",
        description = "Create one record. fields: {\"Field name\": value}; names are checked against the schema first (with suggestions), computed fields rejected. Select values must match existing choices unless typecast=true; linked records take [\"rec...\"]. dry_run=true previews; journaled: undo_write takes it back. For many records use batch_create_records.",
        annotations(
            title = "Create record",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub(crate) async fn create_record(
        &self,
        Parameters(p): Parameters<CreateRecordParams>,
        rc: RequestContext<RoleServer>,
    ) -> Result<Json<RecordWriteOutput>, ToolError> {
        self.ctx.require_write("create_record")?;
        let ctx = self.ctx.table_ctx(&p.base_id, &p.table_id).await?;
        let table = ctx.table();
        let mut given = record_fields(Value::Object(p.fields), 0, table)?;
        if let Some(t) = table {
            prepare_cells(t, &mut given, "the record")?;
        }
        let fields = by_name(table, given);
        let table_name = table_name_of(&ctx);
        let label = primary_label(table, &fields);
        let ask = ConfirmAsk {
            tool: "create_record",
            summary: format!("Create a record in {table_name}"),
            count: 1,
            sample: vec![label.clone().unwrap_or_else(|| "new record".to_owned())],
            reason: None,
        };
        if p.control.dry_run {
            let preview = WritePreview {
                dry_run: true,
                summary: ask.summary.clone(),
                record_count: 1,
                records: vec![RecordPreview {
                    action: "create",
                    id: None,
                    label,
                    changes: Vec::new(),
                    fields: Some(fields),
                }],
                unchanged: 0,
                truncated: false,
                confirm_token: self.ctx.confirm_token(&rc, &ask),
                note: "Nothing was sent. Call again without dry_run to create it; undo_write can delete it afterwards.".to_owned(),
            };
            return Ok(Json(RecordWriteOutput {
                record: None,
                preview: Some(preview),
                journal: JournalNote::default(),
            }));
        }
        self.ctx.confirm(&rc, &p.control, ask).await?;
        let rec = self
            .ctx
            .client()?
            .create_record(
                &ctx.base,
                &ctx.table_ref,
                fields,
                &WriteOptions {
                    typecast: p.typecast,
                    ..WriteOptions::default()
                },
            )
            .await
            .map_err(|e| {
                ToolError::api(
                    "create the record",
                    ctx.base.as_ref(),
                    scope::RECORDS_WRITE,
                    e,
                )
            })?;
        let journal = self
            .ctx
            .journal_write(NewWrite {
                tool: "create_record".to_owned(),
                base_id: ctx.base.to_string(),
                table_id: Some(ctx.table_ref.clone()),
                table_name: Some(table_name.clone()),
                summary: format!("created record {} in {table_name}", rec.id),
                changes: vec![Change::RecordCreated {
                    table_id: ctx.table_ref.clone(),
                    record_id: rec.id.to_string(),
                    after: rec.fields.clone(),
                }],
                complete: true,
                undo_of: None,
                resume: None,
            })
            .await;
        Ok(Json(RecordWriteOutput {
            record: Some(OutRecord::full(rec)),
            preview: None,
            journal,
        }))
    }

    #[tool(
        name = "update_record",
        title = "Update record",
        description = "Change some fields of one record (others unchanged; null clears a field). Names are checked first; computed fields rejected. dry_run=true shows each change (before -> after); journaled: undo_write restores the old values. For many records use batch_update_records.",
        annotations(
            title = "Update record",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn update_record(
        &self,
        Parameters(p): Parameters<UpdateRecordParams>,
        rc: RequestContext<RoleServer>,
    ) -> Result<Json<RecordWriteOutput>, ToolError> {
        self.ctx.require_write("update_record")?;
        let ctx = self.ctx.table_ctx(&p.base_id, &p.table_id).await?;
        let table = ctx.table();
        let id = parse_record_id(&p.record_id)?;
        let mut given = record_fields(Value::Object(p.fields), 0, table)?;
        if let Some(t) = table {
            prepare_cells(t, &mut given, "the record")?;
        }
        // Keyed by field name, as Airtable returns records (the journal and diffs compare them).
        let fields: Fields = given
            .into_iter()
            .map(|(k, v)| (field_name(table, &k), v))
            .collect();
        let mut read: Vec<String> = fields.keys().cloned().collect();
        read.extend(table.and_then(primary_name));
        let before = self.ctx.fetch_record(&ctx, &id, Some(&read)).await?;
        let table_name = table.map_or_else(|| ctx.table_ref.clone(), |t| t.name.clone());
        let label = primary_label(table, &before.fields);
        let changes = diff_fields(&before.fields, &fields);
        let ask = ConfirmAsk {
            tool: "update_record",
            summary: format!(
                "Update record {id} in {table_name}: {} field(s) change",
                changes.len()
            ),
            count: 1,
            sample: vec![label.clone().unwrap_or_else(|| id.to_string())],
            reason: None,
        };
        if p.control.dry_run {
            let unchanged = usize::from(changes.is_empty());
            let preview = WritePreview {
                dry_run: true,
                summary: ask.summary.clone(),
                record_count: 1,
                records: vec![RecordPreview {
                    action: "update",
                    id: Some(id.to_string()),
                    label,
                    changes,
                    fields: None,
                }],
                unchanged,
                truncated: false,
                confirm_token: self.ctx.confirm_token(&rc, &ask),
                note: "Nothing was sent. Call again without dry_run to apply.".to_owned(),
            };
            return Ok(Json(RecordWriteOutput {
                record: None,
                preview: Some(preview),
                journal: JournalNote::default(),
            }));
        }
        self.ctx.confirm(&rc, &p.control, ask).await?;
        let names: Vec<String> = fields.keys().cloned().collect();
        let before_fields = pick(&before.fields, &names);
        let rec = self
            .ctx
            .client()?
            .update_record(
                &ctx.base,
                &ctx.table_ref,
                &id,
                fields,
                UpdateMode::Patch,
                &WriteOptions {
                    typecast: p.typecast,
                    ..WriteOptions::default()
                },
            )
            .await
            .map_err(|e| {
                ToolError::api(
                    "update the record",
                    ctx.base.as_ref(),
                    scope::RECORDS_WRITE,
                    e,
                )
            })?;
        let journal = self
            .ctx
            .journal_write(NewWrite {
                tool: "update_record".to_owned(),
                base_id: ctx.base.to_string(),
                table_id: Some(ctx.table_ref.clone()),
                table_name: Some(table_name.clone()),
                summary: format!("updated record {id} in {table_name}"),
                changes: vec![Change::RecordUpdated {
                    table_id: ctx.table_ref.clone(),
                    record_id: id.to_string(),
                    before: before_fields,
                    after: pick(&rec.fields, &names),
                }],
                complete: true,
                undo_of: None,
                resume: None,
            })
            .await;
        Ok(Json(RecordWriteOutput {
            record: Some(OutRecord::full(rec)),
            preview: None,
            journal,
        }))
    }

    #[tool(
        name = "delete_record",
        title = "Delete record",
        description = "Delete one record by ID. dry_run=true shows it first. Journaled: undo_write recreates it (new ID). For many use batch_delete_records.",
        annotations(
            title = "Delete record",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn delete_record(
        &self,
        Parameters(p): Parameters<DeleteRecordParams>,
        rc: RequestContext<RoleServer>,
    ) -> Result<Json<DeletedOutput>, ToolError> {
        self.ctx.require_write("delete_record")?;
        let ctx = self.ctx.table_ctx(&p.base_id, &p.table_id).await?;
        let table = ctx.table();
        let id = parse_record_id(&p.record_id)?;
        // The whole record: undo recreates it from these values.
        let before = self.ctx.fetch_record(&ctx, &id, None).await?;
        let table_name = table.map_or_else(|| ctx.table_ref.clone(), |t| t.name.clone());
        let label = primary_label(table, &before.fields);
        let ask = ConfirmAsk {
            tool: "delete_record",
            summary: format!("Delete record {id} from {table_name}"),
            count: 1,
            sample: vec![label.clone().unwrap_or_else(|| id.to_string())],
            reason: Some(ConfirmReason::Delete),
        };
        if p.control.dry_run {
            let preview = WritePreview {
                dry_run: true,
                summary: ask.summary.clone(),
                record_count: 1,
                records: vec![RecordPreview {
                    action: "delete",
                    id: Some(id.to_string()),
                    label,
                    changes: Vec::new(),
                    fields: Some(before.fields.clone()),
                }],
                unchanged: 0,
                truncated: false,
                confirm_token: self.ctx.confirm_token(&rc, &ask),
                note: "Nothing was sent. Call again without dry_run to delete; undo_write can recreate it afterwards.".to_owned(),
            };
            return Ok(Json(DeletedOutput {
                id: id.to_string(),
                deleted: false,
                preview: Some(preview),
                journal: JournalNote::default(),
            }));
        }
        self.ctx.confirm(&rc, &p.control, ask).await?;
        let deleted = self
            .ctx
            .client()?
            .delete_record(&ctx.base, &ctx.table_ref, &id)
            .await
            .map_err(|e| {
                ToolError::api(
                    "delete the record",
                    ctx.base.as_ref(),
                    scope::RECORDS_WRITE,
                    e,
                )
            })?;
        let journal = self
            .ctx
            .journal_write(NewWrite {
                tool: "delete_record".to_owned(),
                base_id: ctx.base.to_string(),
                table_id: Some(ctx.table_ref.clone()),
                table_name: Some(table_name.clone()),
                summary: format!("deleted record {id} from {table_name}"),
                changes: vec![Change::RecordDeleted {
                    table_id: ctx.table_ref.clone(),
                    record_id: id.to_string(),
                    before: before.fields.clone(),
                }],
                complete: true,
                undo_of: None,
                resume: None,
            })
            .await;
        Ok(Json(DeletedOutput {
            id: deleted.id.to_string(),
            deleted: true,
            preview: None,
            journal,
        }))
    }

    #[tool(
        name = "batch_create_records",
        title = "Create records (batch)",
        description = "Create up to 10,000 records, 10 per request in order. records: [{\"Name\": \"A\"}, ...]. All are checked against the schema before anything is sent. dry_run=true previews. The result lists written_ids in input order; on a failed chunk it says which inputs were written, failed (why) or not sent. Journaled: undo_write takes it back.",
        output_schema = batch_schema(),
        annotations(
            title = "Create records (batch)",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub(crate) async fn batch_create_records(
        &self,
        Parameters(p): Parameters<BatchCreateParams>,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        self.ctx.require_write("batch_create_records")?;
        validate_batch_size(p.records.len())?;
        let ctx = self.ctx.table_ctx(&p.base_id, &p.table_id).await?;
        let table = ctx.table();
        let mut records: Vec<Fields> = Vec::with_capacity(p.records.len());
        for (i, item) in p.records.into_iter().enumerate() {
            let mut f = record_fields(item, i, table)?;
            if let Some(t) = table {
                prepare_cells(t, &mut f, &format!("records[{i}]"))?;
            }
            records.push(by_name(table, f));
        }
        let n = records.len();
        let table_name = table_name_of(&ctx);
        let ask = ConfirmAsk {
            tool: "batch_create_records",
            summary: format!("Create {n} records in {table_name}"),
            count: n,
            sample: sample(records.iter().enumerate().map(|(i, f)| {
                primary_label(table, f).unwrap_or_else(|| format!("new record {i}"))
            })),
            reason: None,
        };
        if p.control.dry_run {
            let previews = records
                .iter()
                .take(PREVIEW_RECORDS + 1)
                .map(|f| RecordPreview {
                    action: "create",
                    id: None,
                    label: primary_label(table, f),
                    changes: Vec::new(),
                    fields: Some(f.clone()),
                })
                .collect();
            let preview = preview_of(
                ask.summary.clone(),
                n,
                previews,
                0,
                self.ctx.confirm_token(&rc, &ask),
                "Nothing was sent. Call again without dry_run to create them; undo_write can delete them afterwards.".to_owned(),
                self.ctx.budget(),
            );
            return BatchWriteOutput::dry_run(n, preview).into_result();
        }
        self.ctx.confirm(&rc, &p.control, ask).await?;
        // Crash-safe: progress is journaled per request, and the same call after a crash
        // resumes instead of writing records twice (tools::resume).
        self.ctx
            .resumable_create(
                &ctx.base,
                &ctx.table_ref,
                records,
                p.typecast,
                Progress::new(&rc),
                JournalPlan {
                    tool: "batch_create_records",
                    table_name,
                    ..JournalPlan::default()
                },
            )
            .await
    }

    #[tool(
        name = "batch_update_records",
        title = "Update records (batch)",
        description = "Update up to 10,000 records, 10 per request: records: [{\"id\": \"rec...\", \"fields\": {\"Status\": \"Done\"}}]; only the named fields change. Names are checked and current values read first (1 request per 100 records): dry_run=true previews each change (before -> after), unknown IDs are refused before sending, and undo_write restores the old values. The result says per input what was written or failed and why.",
        output_schema = batch_schema(),
        annotations(
            title = "Update records (batch)",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn batch_update_records(
        &self,
        Parameters(p): Parameters<BatchUpdateParams>,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        self.ctx.require_write("batch_update_records")?;
        validate_batch_size(p.records.len())?;
        let ctx = self.ctx.table_ctx(&p.base_id, &p.table_id).await?;
        let table = ctx.table();
        let mut updates = Vec::with_capacity(p.records.len());
        for (i, mut r) in p.records.into_iter().enumerate() {
            let id = parse_record_id(&r.id).map_err(|e| e.prefixed(&format!("records[{i}]: ")))?;
            if let Some(t) = table {
                prepare_cells(t, &mut r.fields, &format!("records[{i}]"))?;
            }
            updates.push(RecordUpdate {
                id,
                fields: by_name(table, r.fields),
            });
        }
        let n = updates.len();
        let table_name = table_name_of(&ctx);
        // The current values of the named fields (and the primary field, for labels).
        let mut read: Vec<String> = Vec::new();
        for u in &updates {
            for k in u.fields.keys() {
                if !read.contains(k) {
                    read.push(k.clone());
                }
            }
        }
        read.extend(table.and_then(primary_name).filter(|p| !read.contains(p)));
        let ids: Vec<RecordId> = unique_ids(updates.iter().map(|u| &u.id));
        let current = self
            .ctx
            .fetch_records(&ctx.base, &ctx.table_ref, &ids, Some(&read))
            .await?;
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !current.contains_key(id.as_ref()))
            .map(ToString::to_string)
            .collect();
        if !missing.is_empty() && !p.control.dry_run {
            return Err(not_found_error(&missing, &table_name));
        }
        // Walk the updates in order over the current values (an ID given twice sees the first
        // update's values).
        let mut state: HashMap<String, Fields> =
            current.into_iter().map(|(k, r)| (k, r.fields)).collect();
        let mut plan = JournalPlan {
            tool: "batch_update_records",
            table_name: table_name.clone(),
            ..JournalPlan::default()
        };
        let mut previews: Vec<RecordPreview> = missing.iter().map(|id| not_found(id)).collect();
        let mut labels = Vec::new();
        let (mut changed, mut unchanged) = (0usize, 0usize);
        for u in &updates {
            let names: Vec<String> = u.fields.keys().cloned().collect();
            let before = match state.get_mut(u.id.as_ref()) {
                None => None,
                Some(cur) => {
                    let label = primary_label(table, cur);
                    labels.push(label.clone().unwrap_or_else(|| u.id.to_string()));
                    let diffs = diff_fields(cur, &u.fields);
                    let before = pick(cur, &names);
                    if diffs.is_empty() {
                        unchanged += 1;
                    } else {
                        changed += 1;
                        if previews.len() <= PREVIEW_RECORDS {
                            previews.push(RecordPreview {
                                action: "update",
                                id: Some(u.id.to_string()),
                                label,
                                changes: diffs,
                                fields: None,
                            });
                        }
                    }
                    for (k, v) in &u.fields {
                        cur.insert(k.clone(), v.clone());
                    }
                    Some(before)
                }
            };
            plan.names.push(names);
            plan.befores.push(before);
        }
        let mut summary = format!(
            "Update {n} records in {table_name}: {changed} change, {unchanged} already equal"
        );
        if !missing.is_empty() {
            summary.push_str(&format!(", {} do not exist", missing.len()));
        }
        let ask = ConfirmAsk {
            tool: "batch_update_records",
            summary,
            count: n,
            sample: sample(labels),
            reason: None,
        };
        if p.control.dry_run {
            let note = if missing.is_empty() {
                "Nothing was sent. Call again without dry_run to apply; undo_write can restore the old values afterwards.".to_owned()
            } else {
                format!(
                    "Nothing was sent. {} record(s) do not exist (action not_found): a real run refuses the whole call until they are removed.",
                    missing.len()
                )
            };
            let preview = preview_of(
                ask.summary.clone(),
                changed,
                previews,
                unchanged,
                self.ctx.confirm_token(&rc, &ask),
                note,
                self.ctx.budget(),
            );
            return BatchWriteOutput::dry_run(n, preview).into_result();
        }
        self.ctx.confirm(&rc, &p.control, ask).await?;
        self.ctx
            .batch_tool(
                &ctx.base,
                &ctx.table_ref,
                BatchWrite::Update(updates),
                p.typecast,
                Progress::new(&rc),
                plan,
            )
            .await
    }

    #[tool(
        name = "batch_delete_records",
        title = "Delete records (batch)",
        description = "Delete up to 10,000 records by ID, 10 per request. They are read first (1 request per 100): dry_run=true lists them with their values, unknown IDs are refused before sending, and undo_write recreates them (new IDs). The result lists deleted IDs and, on failure, what was not deleted and why.",
        output_schema = batch_schema(),
        annotations(
            title = "Delete records (batch)",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn batch_delete_records(
        &self,
        Parameters(p): Parameters<BatchDeleteParams>,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        self.ctx.require_write("batch_delete_records")?;
        validate_batch_size(p.record_ids.len())?;
        let ctx = self.ctx.table_ctx(&p.base_id, &p.table_id).await?;
        let table = ctx.table();
        let mut ids = Vec::with_capacity(p.record_ids.len());
        for (i, r) in p.record_ids.iter().enumerate() {
            ids.push(parse_record_id(r).map_err(|e| e.prefixed(&format!("record_ids[{i}]: ")))?);
        }
        let n = ids.len();
        let table_name = table_name_of(&ctx);
        // Whole records: undo recreates them from these values.
        let unique = unique_ids(ids.iter());
        let current = self
            .ctx
            .fetch_records(&ctx.base, &ctx.table_ref, &unique, None)
            .await?;
        let missing: Vec<String> = unique
            .iter()
            .filter(|id| !current.contains_key(id.as_ref()))
            .map(ToString::to_string)
            .collect();
        if !missing.is_empty() && !p.control.dry_run {
            return Err(not_found_error(&missing, &table_name));
        }
        let mut plan = JournalPlan {
            tool: "batch_delete_records",
            table_name: table_name.clone(),
            ..JournalPlan::default()
        };
        let mut previews: Vec<RecordPreview> = missing.iter().map(|id| not_found(id)).collect();
        let mut labels = Vec::new();
        for id in &ids {
            let before = current.get(id.as_ref()).map(|r| r.fields.clone());
            if let Some(fields) = &before {
                let label = primary_label(table, fields);
                labels.push(label.clone().unwrap_or_else(|| id.to_string()));
                if p.control.dry_run && previews.len() <= PREVIEW_RECORDS {
                    previews.push(RecordPreview {
                        action: "delete",
                        id: Some(id.to_string()),
                        label,
                        changes: Vec::new(),
                        fields: Some(fields.clone()),
                    });
                }
            }
            plan.befores.push(before);
        }
        let mut summary = format!("Delete {n} records from {table_name}");
        if !missing.is_empty() {
            summary.push_str(&format!(" ({} do not exist)", missing.len()));
        }
        let ask = ConfirmAsk {
            tool: "batch_delete_records",
            summary,
            count: n,
            sample: sample(labels),
            reason: Some(ConfirmReason::Delete),
        };
        if p.control.dry_run {
            let note = if missing.is_empty() {
                "Nothing was sent. Call again without dry_run to delete them; undo_write can recreate them afterwards (with new IDs).".to_owned()
            } else {
                format!(
                    "Nothing was sent. {} record(s) do not exist (action not_found): a real run refuses the whole call until they are removed.",
                    missing.len()
                )
            };
            let preview = preview_of(
                ask.summary.clone(),
                n - missing.len().min(n),
                previews,
                0,
                self.ctx.confirm_token(&rc, &ask),
                note,
                self.ctx.budget(),
            );
            return BatchWriteOutput::dry_run(n, preview).into_result();
        }
        self.ctx.confirm(&rc, &p.control, ask).await?;
        self.ctx
            .batch_tool(
                &ctx.base,
                &ctx.table_ref,
                BatchWrite::Delete(ids),
                false,
                Progress::new(&rc),
                plan,
            )
            .await
    }

    #[tool(
        name = "batch_upsert_records",
        title = "Upsert records (batch)",
        description = "Create or update up to 10,000 records matched on fields_to_merge_on (1-3 fields, e.g. [\"Email\"]): an input matching an existing record updates it, otherwise a record is created. records: [{\"Email\": \"a@x.com\", \"Name\": \"A\"}]. Matches are read first: dry_run=true previews creates and updates (before -> after), an input matching several records is refused, and undo_write takes it back. The result lists created_ids and updated_ids.",
        output_schema = batch_schema(),
        annotations(
            title = "Upsert records (batch)",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn batch_upsert_records(
        &self,
        Parameters(p): Parameters<BatchUpsertParams>,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        self.ctx.require_write("batch_upsert_records")?;
        validate_batch_size(p.records.len())?;
        if p.fields_to_merge_on.is_empty() || p.fields_to_merge_on.len() > 3 {
            return Err(ToolError::Invalid(
                "fields_to_merge_on must name 1 to 3 fields that identify a record, e.g. [\"Email\"].".into(),
            ));
        }
        let ctx = self.ctx.table_ctx(&p.base_id, &p.table_id).await?;
        let table = ctx.table();
        let merge_on: Vec<String> = match table {
            Some(t) => {
                check_field_names(t, &p.fields_to_merge_on, "fields_to_merge_on")?;
                p.fields_to_merge_on
                    .iter()
                    .map(|n| field_name(Some(t), n))
                    .collect()
            }
            None => p.fields_to_merge_on.clone(),
        };
        let mut records: Vec<Fields> = Vec::with_capacity(p.records.len());
        for (i, item) in p.records.into_iter().enumerate() {
            let mut f = record_fields(item, i, table)?;
            if let Some(t) = table {
                prepare_cells(t, &mut f, &format!("records[{i}]"))?;
            }
            let f = by_name(table, f);
            if let Some(m) = merge_on.iter().find(|m| !f.contains_key(m.as_str())) {
                return Err(ToolError::Invalid(format!(
                    "records[{i}] lacks the merge field {m:?}: every record must include all fields_to_merge_on."
                )));
            }
            records.push(f);
        }
        let n = records.len();
        let table_name = table_name_of(&ctx);
        // The records the inputs may match, with the fields the inputs name (before-images).
        let mut read: Vec<String> = merge_on.clone();
        for f in &records {
            for k in f.keys() {
                if !read.contains(k) {
                    read.push(k.clone());
                }
            }
        }
        read.extend(table.and_then(primary_name).filter(|p| !read.contains(p)));
        let candidates = self
            .merge_candidates(&ctx, &merge_on, &records, &read)
            .await?;
        let up = plan_upsert(table, &merge_on, &records, candidates);
        if !up.ambiguous.is_empty() && !p.control.dry_run {
            let list: Vec<String> = up
                .ambiguous
                .iter()
                .take(10)
                .map(|(i, ids)| format!("records[{i}] matches {}", ids.join(", ")))
                .collect();
            return Err(ToolError::Invalid(format!(
                "{} input(s) match more than one record on fields_to_merge_on, which Airtable refuses: {}. Nothing was sent; choose merge fields that identify one record, or update those records by ID with batch_update_records.",
                up.ambiguous.len(),
                list.join("; ")
            )));
        }
        let summary = format!(
            "Upsert {n} records in {table_name}: {} created, {} updated, {} already equal",
            up.creates, up.changed, up.unchanged
        );
        let ask = ConfirmAsk {
            tool: "batch_upsert_records",
            summary: if up.ambiguous.is_empty() {
                summary
            } else {
                format!(
                    "{summary}, {} match several records (refused)",
                    up.ambiguous.len()
                )
            },
            count: n,
            sample: sample(up.labels),
            reason: None,
        };
        if p.control.dry_run {
            let note = if up.ambiguous.is_empty() {
                "Nothing was sent. Call again without dry_run to apply; undo_write can take it back afterwards.".to_owned()
            } else {
                format!(
                    "Nothing was sent. {} input(s) match more than one record (action ambiguous): Airtable refuses them, so a real run refuses the whole call.",
                    up.ambiguous.len()
                )
            };
            let preview = preview_of(
                ask.summary.clone(),
                up.creates + up.changed,
                up.previews,
                up.unchanged,
                self.ctx.confirm_token(&rc, &ask),
                note,
                self.ctx.budget(),
            );
            return BatchWriteOutput::dry_run(n, preview).into_result();
        }
        self.ctx.confirm(&rc, &p.control, ask).await?;
        let plan = JournalPlan {
            tool: "batch_upsert_records",
            table_name,
            names: records
                .iter()
                .map(|f| f.keys().cloned().collect())
                .collect(),
            befores: up.befores,
        };
        let records = records
            .into_iter()
            .map(|fields| UpsertRecord { id: None, fields })
            .collect();
        self.ctx
            .batch_tool(
                &ctx.base,
                &ctx.table_ref,
                BatchWrite::Upsert { records, merge_on },
                p.typecast,
                Progress::new(&rc),
                plan,
            )
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_built_value_is_the_serialised_output() {
        for (offset, note) in [
            (None, None),
            (Some("itr1/rec1".to_owned()), Some("cut".to_owned())),
        ] {
            let out = || RecordsOutput {
                count: 2,
                has_more: offset.is_some(),
                offset: offset.clone(),
                truncated: note.is_some(),
                note: note.clone(),
                columns: vec!["id".into(), "Name".into()],
                rows: vec![vec![json!("rec1"), json!("a")], vec![json!("rec2")]],
                rows_json: None,
            };
            let want = serde_json::to_string(&out()).unwrap();
            assert_eq!(serde_json::to_string(&out().into_value()).unwrap(), want);
            // truncated is sent only when true.
            assert_eq!(want.contains("truncated"), note.is_some(), "{want}");
        }
        let schema = serde_json::to_value(&*records_schema()).unwrap();
        let required = schema["required"].as_array().unwrap();
        assert!(!required.contains(&json!("truncated")), "{schema}");
        assert_eq!(
            schema["properties"]["truncated"]["default"],
            json!(false),
            "{schema}"
        );
    }

    #[test]
    fn cell_rules_come_from_the_schema() {
        let t: Table = serde_json::from_value(json!({
            "id": "tblTasks000000001", "name": "Tasks", "primaryFieldId": "fldName0000000001",
            "fields": [
                {"id": "fldName0000000001", "name": "Name", "type": "singleLineText"},
                {"id": "fldCreated0000001", "name": "Created", "type": "createdTime"},
                {"id": "fldProject0000001", "name": "Project", "type": "multipleRecordLinks",
                 "options": {"linkedTableId": "tblProjects000001", "prefersSingleRecordLink": true}},
                {"id": "fldTags0000000001", "name": "Tags", "type": "multipleRecordLinks",
                 "options": {"linkedTableId": "tblTags0000000001", "prefersSingleRecordLink": false}},
                {"id": "fldStatus00000001", "name": "Project status", "type": "multipleLookupValues",
                 "options": {"recordLinkFieldId": "fldProject0000001",
                             "result": {"type": "singleSelect"}}},
                {"id": "fldTagNames000001", "name": "Tag names", "type": "multipleLookupValues",
                 "options": {"recordLinkFieldId": "fldTags0000000001"}},
                {"id": "fldLogo0000000001", "name": "Project logo", "type": "multipleLookupValues",
                 "options": {"recordLinkFieldId": "fldProject0000001",
                             "result": {"type": "multipleAttachments"}}},
                {"id": "fldFiles000000001", "name": "Files", "type": "multipleAttachments"}
            ],
            "views": []
        }))
        .unwrap();
        let rules = cell_rules(&t);
        let rule = |k: &str| rules.get(k).copied().unwrap_or_default();
        let single = CellRule {
            single: true,
            ..CellRule::default()
        };
        let attachments = CellRule {
            attachments: true,
            ..CellRule::default()
        };
        assert_eq!(rule("Name"), CellRule::default());
        assert!(rule("Created").instant);
        assert_eq!(rule("Project"), single);
        assert_eq!(rule("Tags"), CellRule::default());
        assert_eq!(rule("Project status"), single);
        assert_eq!(
            rule("Tag names"),
            CellRule::default(),
            "through a multi link"
        );
        assert_eq!(
            rule("Project logo"),
            CellRule {
                single: true,
                attachments: true,
                ..CellRule::default()
            }
        );
        assert_eq!(rule("Files"), attachments);
        // Records keyed by field ID (return_fields_by_field_id) get the same rules.
        assert_eq!(rule("fldProject0000001"), single);
        assert_eq!(rule("fldFiles000000001"), attachments);
    }
    fn fields(v: Value) -> Fields {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn merge_terms_quote_values_and_skip_creates() {
        let merge = vec!["Name".to_owned(), "Size".to_owned()];
        let records = vec![
            fields(json!({"Name": "a \"q\" {b}", "Size": 2})),
            fields(json!({"Name": "a \"q\" {b}", "Size": 2})),
            fields(json!({"Name": "", "Size": 3})),
            fields(json!({"Name": "t", "Size": true})),
        ];
        let terms = merge_terms(None, &merge, &records).unwrap();
        assert_eq!(
            terms,
            vec![
                r#"AND({Name}="a \"q\" {b}",{Size}=2)"#.to_owned(),
                r#"AND({Name}="t",{Size}=TRUE())"#.to_owned(),
            ]
        );
        for t in &terms {
            crate::formula::parse(t).unwrap();
        }
        // A value no formula compares exactly (an array) is left out: a superset is read; an
        // input with no comparable merge value means reading every record.
        let only = vec!["Tags".to_owned()];
        assert_eq!(
            merge_terms(None, &only, &[fields(json!({"Tags": ["x"]}))]),
            None
        );
    }

    #[test]
    fn or_filters_are_chunked() {
        let terms: Vec<String> = (0..250).map(|i| format!("{{N}}={i}")).collect();
        let f = or_filters(terms);
        assert_eq!(f.len(), 3);
        assert!(f.iter().all(|x| x.starts_with("OR(") && x.len() <= 4100));
        let long: Vec<String> = (0..10)
            .map(|i| format!("{{N}}=\"{}{i}\"", "x".repeat(900)))
            .collect();
        assert!(or_filters(long).len() >= 3);
    }

    #[test]
    fn upserts_are_planned_as_airtable_matches() {
        let merge = vec!["Name".to_owned()];
        let candidates = vec![
            Record {
                id: "rec00000000000001".parse().unwrap(),
                created_time: String::new(),
                fields: fields(json!({"Name": "a", "Size": 2.0})),
                comment_count: None,
            },
            Record {
                id: "rec00000000000002".parse().unwrap(),
                created_time: String::new(),
                fields: fields(json!({"Name": "dup"})),
                comment_count: None,
            },
            Record {
                id: "rec00000000000003".parse().unwrap(),
                created_time: String::new(),
                fields: fields(json!({"Name": "dup"})),
                comment_count: None,
            },
        ];
        let records = vec![
            fields(json!({"Name": "a", "Size": 2})),
            fields(json!({"Name": "A", "Size": 1})),
            fields(json!({"Name": "dup", "Size": 1})),
            fields(json!({"Name": "A", "Size": 5})),
            fields(json!({"Name": null, "Size": 1})),
        ];
        let p = plan_upsert(None, &merge, &records, candidates);
        // "a" equals (2 == 2.0); "A" is not "a": created, then updated by input 3; "dup"
        // matches two; a null merge value creates.
        assert_eq!((p.creates, p.changed, p.unchanged), (2, 1, 1));
        assert_eq!(p.ambiguous.len(), 1);
        assert_eq!(p.ambiguous[0].0, 2);
        assert_eq!(
            p.befores[0],
            Some(fields(json!({"Name": "a", "Size": 2.0})))
        );
        assert_eq!(p.befores[1], None);
        assert_eq!(p.befores[3], Some(fields(json!({"Name": "A", "Size": 1}))));
        assert_eq!(p.previews[0].action, "ambiguous");
        assert_eq!(p.previews.len(), 4);
    }
}
