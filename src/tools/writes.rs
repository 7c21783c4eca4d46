//! The write pipeline every write tool follows:
//!
//! 1. validate and **plan**: what would change, with the current values of the records an
//!    update or delete touches ([`ToolContext::fetch_records`]: `RECORD_ID()` formulas, 100
//!    records a request);
//! 2. `dry_run` ([`WriteControl`]): return the plan as a [`WritePreview`] and send nothing;
//! 3. **confirm** (`tools::confirm`): ask the user when the policy wants it;
//! 4. **apply** (the batch runner, or the client);
//! 5. **journal** ([`ToolContext::journal_write`]): the before-images and resulting IDs, so the
//!    write can be listed and undone. The result carries the `write_id`.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::airtable::{BaseId, FieldType, Fields, ListQuery, Record, RecordId, Table};
use crate::formula;
use crate::tools::ToolError;
use crate::tools::context::{PageReport, TableCtx, ToolContext};
use crate::tools::journal::NewWrite;
use crate::tools::params::{lenient_bool, opt_nonempty};
use crate::tools::progress::Progress;
use crate::tools::validation::{check_writable, find_field};

/// The controls every write tool takes (flattened into its parameters).
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
pub(crate) struct WriteControl {
    /// true: change nothing; return exactly what would change.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) dry_run: bool,
    /// From this call's dry run, when the server asks to confirm.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) confirm_token: Option<String>,
}

/// One field that a write would change.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct FieldDiff {
    /// Field name.
    pub(crate) field: String,
    /// Value now (null = empty).
    pub(crate) before: Value,
    /// Value after the write (null = empty).
    pub(crate) after: Value,
}

/// One record in a preview.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct RecordPreview {
    /// "create", "update" or "delete"; also "not_found" (the record does not exist: a real
    /// run refuses the call) and "ambiguous" (an upsert input that matches several records).
    pub(crate) action: &'static str,
    /// Record ID (updates, deletes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    /// The record's primary field value, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) label: Option<String>,
    /// Updates: the fields that would change (fields already equal are left out).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) changes: Vec<FieldDiff>,
    /// Creates: the fields of the new record. Deletes: the fields the record has now.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub(crate) fields: Option<Fields>,
}

/// What a dry run returns: exactly what the call would change. Nothing was sent.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct WritePreview {
    /// Always true: nothing was written.
    pub(crate) dry_run: bool,
    /// One line: what would happen.
    pub(crate) summary: String,
    /// Records the call would create, change or delete.
    pub(crate) record_count: usize,
    /// Per record (the first ones, when there are many: see `truncated`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) records: Vec<RecordPreview>,
    /// Updates whose values already equal the new ones (nothing would change for them).
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) unchanged: usize,
    /// True when `records` lists only the first ones.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) truncated: bool,
    /// Pass it back with the same arguments (and dry_run false) to apply, when the server
    /// asks for confirmation and the client cannot show a dialog.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) confirm_token: Option<String>,
    /// What to do next.
    pub(crate) note: String,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The most records a preview lists one by one.
pub(crate) const PREVIEW_RECORDS: usize = 100;

/// What journaling an applied write gave.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub(crate) struct JournalNote {
    /// The journal entry: give it to undo_write to take this write back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) write_id: Option<String>,
    /// Why the write was not journaled (it was still applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) journal_warning: Option<String>,
}

impl ToolContext {
    /// The current values of records `ids` of `table`, by ID (only `fields` when given;
    /// records that do not exist are absent). `RECORD_ID()` formulas, 100 records a request.
    pub(crate) async fn fetch_records(
        &self,
        base: &BaseId,
        table: &str,
        ids: &[RecordId],
        fields: Option<&[String]>,
    ) -> Result<HashMap<String, Record>, ToolError> {
        let mut out = HashMap::with_capacity(ids.len());
        let progress = Progress::disabled();
        for chunk in ids.chunks(100) {
            let terms: Vec<String> = chunk
                .iter()
                .map(|id| format!("RECORD_ID()={}", formula::string_literal(id.as_ref())))
                .collect();
            let query = ListQuery {
                filter_by_formula: Some(format!("OR({})", terms.join(","))),
                fields: fields.map(<[String]>::to_vec).unwrap_or_default(),
                ..ListQuery::default()
            };
            let read = self
                .read_records(
                    base,
                    table,
                    query,
                    chunk.len(),
                    PageReport::between_pages(&progress, "reading current values"),
                )
                .await?;
            for r in read.records {
                out.insert(r.id.to_string(), r);
            }
        }
        Ok(out)
    }

    /// The current values of one record of `ctx`'s table (only `fields` when given), or an
    /// error naming the table when the record does not exist.
    pub(crate) async fn fetch_record(
        &self,
        ctx: &TableCtx,
        id: &RecordId,
        fields: Option<&[String]>,
    ) -> Result<Record, ToolError> {
        let mut found = self
            .fetch_records(&ctx.base, &ctx.table_ref, std::slice::from_ref(id), fields)
            .await?;
        found.remove(id.as_ref()).ok_or_else(|| {
            let table = ctx
                .table()
                .map_or(ctx.table_ref.as_str(), |t| t.name.as_str());
            ToolError::Invalid(format!(
                "Record {id} does not exist in table {table}: check the ID with get_records or search_records."
            ))
        })
    }

    /// Journal an applied write (after it was sent, also when it stopped part way: then
    /// `write.changes` holds what was confirmed written and `write.complete` is false).
    pub(crate) async fn journal_write(&self, write: NewWrite) -> JournalNote {
        match self.journal() {
            Ok(None) => JournalNote::default(),
            Ok(Some(j)) => match j.append(self.principal(), write).await {
                Ok(id) => JournalNote {
                    write_id: Some(id),
                    journal_warning: None,
                },
                Err(e) => {
                    tracing::warn!("write not journaled: {e}");
                    JournalNote {
                        write_id: None,
                        journal_warning: Some(format!(
                            "The write was applied but not journaled ({e}): it cannot be undone with undo_write."
                        )),
                    }
                }
            },
            Err(e) => JournalNote {
                write_id: None,
                journal_warning: Some(format!(
                    "The write was applied but not journaled ({e}): it cannot be undone with undo_write."
                )),
            },
        }
    }
}

/// The fields of `update` whose value differs from `current` (absent = empty), as diffs.
pub(crate) fn diff_fields(current: &Fields, update: &Fields) -> Vec<FieldDiff> {
    update
        .iter()
        .filter_map(|(name, after)| {
            let before = current.get(name).cloned().unwrap_or(Value::Null);
            if same_value(&before, after) {
                None
            } else {
                Some(FieldDiff {
                    field: name.clone(),
                    before,
                    after: after.clone(),
                })
            }
        })
        .collect()
}

/// Whether two cell values are the same for a person: empty values (null, "", [], false)
/// are equal, and so are numbers of equal value.
pub(crate) fn same_value(a: &Value, b: &Value) -> bool {
    fn empty(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Bool(b) => !b,
            _ => false,
        }
    }
    // Attachments are the same files when their IDs are (each read hands out new URLs).
    fn attachment_ids(v: &[Value]) -> Option<Vec<&str>> {
        v.iter()
            .map(|a| a.get("id")?.as_str().filter(|id| id.starts_with("att")))
            .collect()
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y))
            if !x.is_empty() && attachment_ids(x).is_some() && attachment_ids(y).is_some() =>
        {
            attachment_ids(x) == attachment_ids(y)
        }
        _ if empty(a) && empty(b) => true,
        _ => a == b,
    }
}

/// The primary field's value of a record as one line (None when empty or unknown).
pub(crate) fn primary_label(table: Option<&Table>, fields: &Fields) -> Option<String> {
    let table = table?;
    let name = &table
        .fields
        .iter()
        .find(|f| f.id == table.primary_field_id)?
        .name;
    let text = match fields.get(name)? {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let line: String = text
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(80)
        .collect();
    (!line.is_empty()).then_some(line)
}

/// Step 1 of every record write, for each record's fields when the schema is known: check
/// that every key is a writable field ([`check_writable`]), then bring the values that reads
/// write shorter back into the form Airtable takes, so that what get_records gives back can be
/// written back as is:
/// - a link field given one record ID (`"rec…"`, as compact rows write a single-record link)
///   or one `{"id": "rec…", …}` (expand_links) gets a one-item list; Airtable itself rejects a
///   bare string without typecast. Other strings (names, with typecast) are left to Airtable.
/// - an attachment given back from a list cell drops its `thumbnail` (not an Airtable key).
pub(crate) fn prepare_cells(
    table: &Table,
    fields: &mut Map<String, Value>,
    which: &str,
) -> Result<(), ToolError> {
    check_writable(table, fields, which)?;
    for (key, value) in fields.iter_mut() {
        let Some(field) = find_field(table, key) else {
            continue;
        };
        match field.field_type {
            FieldType::MultipleRecordLinks => {
                let one = match value {
                    Value::String(s) => s.parse::<RecordId>().is_ok(),
                    Value::Object(o) => o.get("id").and_then(Value::as_str).is_some(),
                    _ => false,
                };
                if one {
                    *value = Value::Array(vec![value.take()]);
                }
            }
            FieldType::MultipleAttachments => {
                if let Value::Array(items) = value {
                    for item in items {
                        if let Value::Object(a) = item {
                            a.remove("thumbnail");
                        }
                    }
                }
            }
            FieldType::DateTime => {
                if let Value::String(s) = value
                    && let Some(full) = full_instant(s)
                {
                    *s = full;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A UTC instant at minute precision as compact reads give it (`2026-01-02T12:51Z`), in the
/// RFC 3339 form Airtable documents (`2026-01-02T12:51:00.000Z`); `None` for anything else.
fn full_instant(s: &str) -> Option<String> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%MZ")
        .ok()
        .map(|t| t.format("%Y-%m-%dT%H:%M:00.000Z").to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> Table {
        serde_json::from_value(json!({
            "id": "tblTasks000000001", "name": "Tasks", "primaryFieldId": "fldName0000000001",
            "fields": [
                {"id": "fldName0000000001", "name": "Name", "type": "singleLineText"},
                {"id": "fldProject0000001", "name": "Project", "type": "multipleRecordLinks",
                 "options": {"linkedTableId": "tblProjects000001", "prefersSingleRecordLink": true}},
                {"id": "fldTags0000000001", "name": "Tags", "type": "multipleRecordLinks",
                 "options": {"linkedTableId": "tblTags0000000001", "prefersSingleRecordLink": false}},
                {"id": "fldFiles000000001", "name": "Files", "type": "multipleAttachments"},
                {"id": "fldWhen0000000001", "name": "When", "type": "dateTime",
                 "options": {"timeZone": "utc"}},
                {"id": "fldStatus00000001", "name": "Project status", "type": "multipleLookupValues",
                 "options": {"recordLinkFieldId": "fldProject0000001"}}
            ],
            "views": []
        }))
        .unwrap()
    }

    #[test]
    fn what_reads_give_back_is_written_as_airtable_takes_it() {
        let t = table();
        let mut f = json!({
            "Name": "recAAAAAAAAAAAAAA",
            "Project": "recAAAAAAAAAAAAAA",
            "fldTags0000000001": {"id": "recBBBBBBBBBBBBBB", "name": "Urgent"},
            "Files": [{"id": "att1", "filename": "a.png", "type": "image/png",
                       "url": "https://u.example/a", "thumbnail": "https://t.example/a"}],
            "When": "2026-01-02T12:51Z"
        })
        .as_object()
        .unwrap()
        .clone();
        prepare_cells(&t, &mut f, "the record").unwrap();
        assert_eq!(
            Value::Object(f),
            json!({
                // A text field keeps its text, even when it looks like a record ID.
                "Name": "recAAAAAAAAAAAAAA",
                "Project": ["recAAAAAAAAAAAAAA"],
                "fldTags0000000001": [{"id": "recBBBBBBBBBBBBBB", "name": "Urgent"}],
                "Files": [{"id": "att1", "filename": "a.png", "type": "image/png",
                           "url": "https://u.example/a"}],
                "When": "2026-01-02T12:51:00.000Z"
            })
        );
        // Lists, names for typecast, nulls and other date-time forms are left as given.
        let mut f = json!({"Project": ["recAAAAAAAAAAAAAA", "recBBBBBBBBBBBBBB"],
                           "Tags": "Urgent", "Files": null, "When": "2026-01-02T12:51+02:00"})
        .as_object()
        .unwrap()
        .clone();
        let before = f.clone();
        prepare_cells(&t, &mut f, "the record").unwrap();
        assert_eq!(f, before);
    }

    #[test]
    fn computed_and_unknown_fields_are_still_refused() {
        let t = table();
        let mut f = json!({"Project status": ["Active"]})
            .as_object()
            .unwrap()
            .clone();
        let e = prepare_cells(&t, &mut f, "records[0]").unwrap_err();
        assert!(e.to_string().contains("computed"), "{e}");
        let mut f = json!({"Projet": "recAAAAAAAAAAAAAA"})
            .as_object()
            .unwrap()
            .clone();
        let e = prepare_cells(&t, &mut f, "records[0]").unwrap_err();
        assert!(e.to_string().contains("Project"), "{e}");
    }
}
