//! Linked records: `expand_links` on the record reads (linked record IDs become `{id, name}`,
//! the name being the linked record's primary field value) and the find_link_candidates tool
//! (records of the linked table that match a text, ready to put into a link field).
//!
//! Expansion is batched: the distinct IDs of every link field of every record read are
//! gathered per linked table (so a table two fields link to is read once), and read with
//! `OR(RECORD_ID()='…',…)` 100 IDs a request, only the primary field. At most
//! [`MAX_EXPANDED`] distinct IDs are resolved per call; the rest stay `{id, name: null}` and
//! the result says so in its note.

use std::collections::{HashMap, HashSet};

use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{Json, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::airtable::{FieldType, Fields, ListQuery, Record, RecordId, Table};
use crate::formula;
use crate::tools::ToolError;
use crate::tools::context::{PageReport, TableCtx, ToolContext};
use crate::tools::handler::AirtableServer;
use crate::tools::params::{lenient_u32, opt_nonempty};
use crate::tools::progress::Progress;
use crate::tools::records::RecordsOutput;
use crate::tools::validation::{check_field_names, find_field, is_text_like, suggest};

/// The most distinct linked record IDs one read resolves (10 requests at 100 a request).
pub(crate) const MAX_EXPANDED: usize = 1000;

/// The most candidates find_link_candidates returns.
pub(crate) const MAX_CANDIDATES: u32 = 100;

/// A primary field value as a display name: text as is, numbers and booleans as text, lists
/// joined with ", ", objects by their `name` (collaborators, selects).
pub(crate) fn display_name(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(display_name).collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        Value::Object(o) => o
            .get("name")
            .or_else(|| o.get("email"))
            .and_then(display_name),
    }
}

/// The link fields of `table` among the keys records use (names, or IDs with
/// return_fields_by_field_id): key → linked table ID.
fn link_keys(table: &Table, records: &[&mut Fields]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for r in records {
        for k in r.keys() {
            if out.contains_key(k) {
                continue;
            }
            if let Some(f) = find_field(table, k)
                && f.field_type == FieldType::MultipleRecordLinks
                && let Some(linked) = f.linked_table_id()
            {
                out.insert(k.clone(), linked.to_owned());
            }
        }
    }
    out
}

/// With `on`, replace the linked record IDs in `records` with `{id, name}` (see the module
/// docs). Returns a note for the result when some names could not be resolved: more than
/// [`MAX_EXPANDED`] IDs, no readable schema, or a linked table that could not be read.
pub(crate) async fn expand(
    ctx: &ToolContext,
    table_ctx: &TableCtx,
    on: bool,
    records: &mut [Record],
) -> Result<Option<String>, ToolError> {
    let mut maps: Vec<&mut Fields> = records.iter_mut().map(|r| &mut r.fields).collect();
    expand_maps(ctx, table_ctx, on, &mut maps).await
}

/// [`expand`] for one record's fields (get_record, after its `fields` projection).
pub(crate) async fn expand_fields(
    ctx: &ToolContext,
    table_ctx: &TableCtx,
    on: bool,
    fields: &mut Fields,
) -> Result<Option<String>, ToolError> {
    expand_maps(ctx, table_ctx, on, &mut [fields]).await
}

async fn expand_maps(
    ctx: &ToolContext,
    table_ctx: &TableCtx,
    on: bool,
    records: &mut [&mut Fields],
) -> Result<Option<String>, ToolError> {
    if !on || records.is_empty() {
        return Ok(None);
    }
    let (Some(schema), Some(table)) = (table_ctx.schema.as_ref(), table_ctx.table()) else {
        return Ok(Some(
            "expand_links: the base schema could not be read (the token may lack schema.bases:read), so links are left as record IDs.".into(),
        ));
    };
    let keys = link_keys(table, records);
    if keys.is_empty() {
        return Ok(None);
    }
    // Distinct IDs per linked table, in first-seen order, at most MAX_EXPANDED in all.
    let mut wanted: Vec<(String, Vec<RecordId>)> = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut distinct = 0usize;
    let mut capped = 0usize;
    for r in records.iter() {
        for (k, v) in r.iter() {
            let (Some(linked), Value::Array(items)) = (keys.get(k), v) else {
                continue;
            };
            for id in items.iter().filter_map(Value::as_str) {
                if !seen.insert((linked.clone(), id.to_owned())) {
                    continue;
                }
                let Ok(rid) = id.parse::<RecordId>() else {
                    continue;
                };
                if distinct >= MAX_EXPANDED {
                    capped += 1;
                    continue;
                }
                distinct += 1;
                match wanted.iter_mut().find(|(t, _)| t == linked) {
                    Some((_, ids)) => ids.push(rid),
                    None => wanted.push((linked.clone(), vec![rid])),
                }
            }
        }
    }
    // Read the names, one linked table at a time (100 IDs a request).
    let mut names: HashMap<(String, String), Option<String>> = HashMap::new();
    let mut problems: Vec<String> = Vec::new();
    for (linked, ids) in &wanted {
        let Some(lt) = schema.tables.iter().find(|t| t.id.as_ref() == linked) else {
            problems.push(format!("linked table {linked} is not in the base schema"));
            continue;
        };
        let Some(primary) = lt.primary_field().map(|f| f.name.clone()) else {
            continue;
        };
        match ctx
            .fetch_records(
                &table_ctx.base,
                lt.id.as_ref(),
                ids,
                Some(std::slice::from_ref(&primary)),
            )
            .await
        {
            Ok(found) => {
                for (id, rec) in found {
                    let name = rec.fields.get(&primary).and_then(display_name);
                    names.insert((linked.clone(), id), name);
                }
            }
            Err(ToolError::Api { source, .. }) if source.status() != Some(401) => {
                problems.push(format!("table {:?} could not be read ({source})", lt.name));
            }
            Err(e) => return Err(e),
        }
    }
    for r in records.iter_mut() {
        for (k, v) in r.iter_mut() {
            let (Some(linked), Value::Array(items)) = (keys.get(k), v) else {
                continue;
            };
            for item in items.iter_mut() {
                let Some(id) = item.as_str() else { continue };
                let name = names
                    .get(&(linked.clone(), id.to_owned()))
                    .cloned()
                    .flatten();
                let mut o = Map::with_capacity(2);
                o.insert("id".into(), Value::String(id.to_owned()));
                o.insert("name".into(), name.map_or(Value::Null, Value::String));
                *item = Value::Object(o);
            }
        }
    }
    let mut notes = Vec::new();
    if capped > 0 {
        notes.push(format!(
            "expand_links resolved the first {MAX_EXPANDED} distinct linked records; {capped} more are {{id, name: null}} (read fewer records to name them all)."
        ));
    }
    if !problems.is_empty() {
        notes.push(format!(
            "expand_links: {}; those links have name null.",
            problems.join("; ")
        ));
    }
    Ok((!notes.is_empty()).then(|| notes.join(" ")))
}

impl RecordsOutput {
    /// Add an expand_links note to the result's note.
    pub(crate) fn with_note(mut self, extra: Option<String>) -> Self {
        self.note = join_notes(self.note.take(), extra);
        self
    }
}

/// Two optional notes as one.
pub(crate) fn join_notes(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(format!("{a} {b}")),
        (a, b) => a.or(b),
    }
}

// ---------------------------------------------------------------------------------------------
// find_link_candidates

fn default_candidates() -> u32 {
    20
}

/// Parameters of find_link_candidates.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct FindLinkCandidatesParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or name of the table that has the link field.
    pub(crate) table_id: String,
    /// The link field (name or ID).
    pub(crate) field: String,
    /// Text to find in the linked records (case-insensitive); empty lists the first ones.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) query: Option<String>,
    /// Most candidates (default 20, at most 100).
    #[serde(default = "default_candidates", deserialize_with = "lenient_u32")]
    pub(crate) max_records: u32,
}

/// A linked record: its ID and primary field value.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct LinkedRecord {
    /// Record ID (rec...) of the linked table.
    pub(crate) id: String,
    /// Its primary field value.
    pub(crate) name: Option<String>,
}

/// Result of find_link_candidates.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct LinkCandidatesOutput {
    /// The link field's name.
    pub(crate) field: String,
    /// The linked table's ID.
    pub(crate) linked_table_id: String,
    /// The linked table's name.
    pub(crate) linked_table: String,
    /// Matching records, best first (primary value equal, starting with, containing the query),
    /// ranked among the first 100 matches.
    pub(crate) candidates: Vec<LinkedRecord>,
    /// Number of candidates returned.
    pub(crate) count: usize,
    /// True when more records match.
    pub(crate) has_more: bool,
    /// How to link the chosen records.
    pub(crate) how_to_link: String,
}

/// The error for a field that is not a link field, naming the table's link fields.
fn not_a_link(table: &Table, name: &str, type_name: &str) -> ToolError {
    let links: Vec<&str> = table
        .fields
        .iter()
        .filter(|f| f.field_type == FieldType::MultipleRecordLinks)
        .map(|f| f.name.as_str())
        .collect();
    let hint = match suggest(name, links.iter().copied()) {
        Some(s) => format!(" Did you mean {s:?}?"),
        None => String::new(),
    };
    let list = if links.is_empty() {
        format!("Table {:?} has no link fields.", table.name)
    } else {
        format!(
            "Link fields of table {:?}: {}.",
            table.name,
            links
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    ToolError::Invalid(format!(
        "Field {name:?} is a {type_name} field, not a link to another record (multipleRecordLinks).{hint} {list}"
    ))
}

/// Rank: 0 primary value equals the query, 1 starts with it, 2 contains it, 3 other fields.
fn rank(name: Option<&str>, q: &str) -> u8 {
    let Some(n) = name.map(str::to_lowercase) else {
        return 3;
    };
    if n == q {
        0
    } else if n.starts_with(q) {
        1
    } else if n.contains(q) {
        2
    } else {
        3
    }
}

#[tool_router(router = links_router, vis = "pub(crate)")]
impl AirtableServer {
    #[tool(
        name = "find_link_candidates",
        title = "Find link candidates",
        description = "Find records to put into a link field: searches the linked table's primary and text fields for query (case-insensitive) and returns [{id, name}], best matches first. Then link with update_record fields {field: [ids]} (keep existing IDs to add). field is a link field of table_id (name or ID).",
        annotations(
            title = "Find link candidates",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn find_link_candidates(
        &self,
        Parameters(p): Parameters<FindLinkCandidatesParams>,
        rctx: RequestContext<RoleServer>,
    ) -> Result<Json<LinkCandidatesOutput>, ToolError> {
        if p.max_records == 0 {
            return Err(ToolError::Invalid("max_records must be at least 1.".into()));
        }
        let max = p.max_records.min(MAX_CANDIDATES) as usize;
        let base = self.ctx.base(&p.base_id)?;
        let schema = self.ctx.schema(&base).await?;
        let table = crate::tools::validation::resolve_table(&schema, base.as_ref(), &p.table_id)?;
        let field_ref = p.field.trim().to_owned();
        check_field_names(table, std::iter::once(&field_ref), "field")?;
        let Some(field) = find_field(table, &field_ref) else {
            return Err(ToolError::Invalid(format!("Unknown field {field_ref:?}.")));
        };
        if field.field_type != FieldType::MultipleRecordLinks {
            return Err(not_a_link(table, &field.name, field.field_type.as_str()));
        }
        let linked = field.linked_table_id()
            .and_then(|id| schema.tables.iter().find(|t| t.id.as_ref() == id))
            .ok_or_else(|| {
                ToolError::Invalid(format!(
                    "The table field {:?} links to is not in the base schema (it may have been deleted).",
                    field.name
                ))
            })?;
        let primary = linked
            .primary_field()
            .map(|f| f.name.clone())
            .unwrap_or_default();
        let q = p.query.as_deref().map(str::trim).unwrap_or_default();
        let lower = q.to_lowercase();
        let filter = (!q.is_empty()).then(|| {
            let needle = formula::string_literal(&lower);
            let mut searched: Vec<&str> = vec![primary.as_str()];
            searched.extend(
                linked
                    .fields
                    .iter()
                    .filter(|f| is_text_like(f) && f.name != primary)
                    .map(|f| f.name.as_str()),
            );
            let terms: Vec<String> = searched
                .iter()
                .map(|f| format!("FIND({needle}, LOWER({}&\"\"))", formula::field_ref(f)))
                .collect();
            format!("OR({})", terms.join(","))
        });
        let query = ListQuery {
            fields: vec![primary.clone()],
            filter_by_formula: filter,
            ..ListQuery::default()
        };
        let progress = Progress::new(&rctx);
        let read = self
            .ctx
            .read_records(
                &base,
                linked.id.as_ref(),
                query,
                MAX_CANDIDATES as usize,
                PageReport::between_pages(&progress, "find_link_candidates"),
            )
            .await?;
        let mut has_more = read.has_more();
        let mut candidates: Vec<LinkedRecord> = read
            .records
            .into_iter()
            .map(|r| LinkedRecord {
                id: r.id.to_string(),
                name: r.fields.get(&primary).and_then(display_name),
            })
            .collect();
        if !lower.is_empty() {
            candidates.sort_by_key(|c| rank(c.name.as_deref(), &lower));
        }
        if candidates.len() > max {
            candidates.truncate(max);
            has_more = true;
        }
        let single = field.prefers_single_record_link();
        let how_to_link = format!(
            "update_record(base_id, table_id={:?}, record_id, fields={{{:?}: [\"rec...\"]}}): the list replaces the field's links, so include the IDs already linked to add one{}.",
            table.name,
            field.name,
            if single {
                "; this field prefers a single linked record"
            } else {
                ""
            }
        );
        Ok(Json(LinkCandidatesOutput {
            field: field.name.clone(),
            linked_table_id: linked.id.to_string(),
            linked_table: linked.name.clone(),
            count: candidates.len(),
            candidates,
            has_more,
            how_to_link,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_of_primary_values() {
        assert_eq!(display_name(&json!("Ada")), Some("Ada".into()));
        assert_eq!(display_name(&json!(42)), Some("42".into()));
        assert_eq!(display_name(&json!(["a", "b"])), Some("a, b".into()));
        assert_eq!(display_name(&json!({"name": "Bo"})), Some("Bo".into()));
        assert_eq!(display_name(&json!(null)), None);
        assert_eq!(display_name(&json!([])), None);
    }

    #[test]
    fn ranking_prefers_the_primary_value() {
        assert_eq!(rank(Some("Ada"), "ada"), 0);
        assert_eq!(rank(Some("Adam"), "ada"), 1);
        assert_eq!(rank(Some("Lada"), "ada"), 2);
        assert_eq!(rank(Some("Bo"), "ada"), 3);
        assert_eq!(rank(None, "ada"), 3);
    }

    #[test]
    fn notes_join() {
        assert_eq!(join_notes(None, None), None);
        assert_eq!(join_notes(Some("a".into()), None), Some("a".into()));
        assert_eq!(
            join_notes(Some("a".into()), Some("b".into())),
            Some("a b".into())
        );
    }
}
