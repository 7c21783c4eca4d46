//! Schema changes: create_table, update_table, create_field, update_field. Each invalidates
//! the base's cached schema, and follows the write pipeline (`tools::writes`): `dry_run`
//! previews exactly what would be created or changed, and applied changes are journaled.
//! Renames and description changes can be undone (undo_write); creations cannot (the Web API
//! cannot delete tables or fields, nor change a field's type).

use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{Json, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::airtable::{
    BaseSchema, CreateTable, Field, FieldSpec, FieldType, Table, UpdateField, UpdateTable,
};
use crate::tools::ToolError;
use crate::tools::bases::{FieldOut, ViewOut, primary_name, views_of};
use crate::tools::confirm::ConfirmAsk;
use crate::tools::handler::AirtableServer;
use crate::tools::journal::{Change, NamedMeta, NewWrite};
use crate::tools::params::{FieldSpecParam, lenient_object, opt_nonempty};
use crate::tools::result::scope;
use crate::tools::validation::{find_field, resolve_table};
use crate::tools::writes::{JournalNote, WriteControl};

/// Parameters of create_table.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct CreateTableParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Name of the new table (unique in the base).
    pub(crate) name: String,
    /// The fields, at least one; the first is the primary field (a text type).
    pub(crate) fields: Vec<FieldSpecParam>,
    /// Optional table description.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) description: Option<String>,
    #[serde(flatten)]
    pub(crate) control: WriteControl,
}

/// Parameters of update_table.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct UpdateTableParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or current table name.
    pub(crate) table_id: String,
    /// New table name.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) name: Option<String>,
    /// New table description ("" clears it).
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(flatten)]
    pub(crate) control: WriteControl,
}

/// Parameters of create_field.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct CreateFieldParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// Name of the new field (unique in the table).
    pub(crate) name: String,
    /// Airtable field type (see the description).
    #[serde(rename = "type")]
    pub(crate) field_type: String,
    /// Type options, as in Airtable's Web API (see the description).
    #[serde(default, deserialize_with = "opt_object")]
    pub(crate) options: Option<serde_json::Map<String, Value>>,
    /// Optional field description.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) description: Option<String>,
    #[serde(flatten)]
    pub(crate) control: WriteControl,
}

fn opt_object<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<serde_json::Map<String, Value>>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    lenient_object(v)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// Parameters of update_field.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct UpdateFieldParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// Field ID (fld...) or current field name.
    pub(crate) field_id: String,
    /// New field name.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) name: Option<String>,
    /// New field description ("" clears it).
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(flatten)]
    pub(crate) control: WriteControl,
}

/// A table after a schema change.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TableChanged {
    /// The base.
    pub(crate) base_id: String,
    /// Table ID (tbl...).
    pub(crate) id: String,
    /// Table name.
    pub(crate) name: String,
    /// Table description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    /// Primary field name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) primary_field: Option<String>,
    /// The table's fields.
    pub(crate) fields: Vec<FieldOut>,
    /// The table's views.
    pub(crate) views: Vec<ViewOut>,
}

impl TableChanged {
    fn new(base: &str, t: &Table) -> Self {
        TableChanged {
            base_id: base.to_owned(),
            id: t.id.to_string(),
            name: t.name.clone(),
            description: t.description.clone().filter(|d| !d.is_empty()),
            primary_field: primary_name(t),
            fields: t
                .fields
                .iter()
                .map(|f| FieldOut::from_field(f, true))
                .collect(),
            views: views_of(t),
        }
    }
}

/// A field after a schema change.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct FieldChanged {
    /// The base.
    pub(crate) base_id: String,
    /// The table ID.
    pub(crate) table_id: String,
    /// The field.
    pub(crate) field: FieldOut,
}

/// Name and description of a table or field, before or after a change.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct MetaOut {
    /// Name.
    pub(crate) name: String,
    /// Description (absent = none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
}

impl MetaOut {
    fn of_table(t: &Table) -> Self {
        MetaOut {
            name: t.name.clone(),
            description: t.description.clone().filter(|d| !d.is_empty()),
        }
    }

    fn of_field(f: &Field) -> Self {
        MetaOut {
            name: f.name.clone(),
            description: f.description.clone().filter(|d| !d.is_empty()),
        }
    }

    /// What this becomes with a new name and/or description ("" clears the description).
    fn with(&self, name: Option<&String>, description: Option<&String>) -> Self {
        MetaOut {
            name: name.cloned().unwrap_or_else(|| self.name.clone()),
            description: match description {
                Some(d) => Some(d.clone()).filter(|d| !d.is_empty()),
                None => self.description.clone(),
            },
        }
    }

    fn journal(self) -> NamedMeta {
        NamedMeta {
            name: self.name,
            description: self.description,
        }
    }
}

/// What a schema change would do (dry_run). Nothing was sent.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct SchemaPreview {
    /// Always true: nothing was written.
    pub(crate) dry_run: bool,
    /// One line: what would happen.
    pub(crate) summary: String,
    /// Updates: the name and description now (absent when the base schema could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) before: Option<MetaOut>,
    /// Updates: the name and description after the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) after: Option<MetaOut>,
    /// Creations: the table or field that would be created, exactly as it would be sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub(crate) create: Option<Value>,
    /// Whether undo_write could take the change back once applied (creations: never).
    pub(crate) undoable: bool,
    /// Pass it back with the same arguments (and dry_run false) to apply, when the server
    /// asks for confirmation and the client cannot show a dialog.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) confirm_token: Option<String>,
    /// What to do next.
    pub(crate) note: String,
}

/// Result of create_table and update_table: the table after the change, or (dry_run) the
/// preview.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TableWriteOutput {
    /// The table after the change (absent on dry_run).
    #[serde(flatten)]
    pub(crate) table: Option<TableChanged>,
    /// dry_run only: what the call would do. Nothing was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) preview: Option<SchemaPreview>,
    /// Creations: why undo_write cannot take this write back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
    #[serde(flatten)]
    pub(crate) journal: JournalNote,
}

/// Result of create_field and update_field: the field after the change, or (dry_run) the
/// preview.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct FieldWriteOutput {
    /// The field after the change (absent on dry_run).
    #[serde(flatten)]
    pub(crate) changed: Option<FieldChanged>,
    /// dry_run only: what the call would do. Nothing was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) preview: Option<SchemaPreview>,
    /// Creations: why undo_write cannot take this write back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
    #[serde(flatten)]
    pub(crate) journal: JournalNote,
}

/// Said of every created table (preview and result).
pub(crate) const TABLE_NOT_UNDOABLE: &str = "Creating a table cannot be undone: Airtable's Web API cannot delete tables, so undo_write lists this write as not restorable (delete the table in Airtable's interface if needed).";
/// Said of every created field (preview and result).
pub(crate) const FIELD_NOT_UNDOABLE: &str = "Creating a field cannot be undone: Airtable's Web API cannot delete fields, so undo_write lists this write as not restorable (delete the field in Airtable's interface if needed).";

/// The note of an update preview.
const UPDATE_NOTE: &str = "Nothing was sent. Call again without dry_run to apply; undo_write can restore the old name and description afterwards.";

/// What an update changes, in words (for its summary).
fn change_text(before: Option<&MetaOut>, after: &MetaOut) -> String {
    let mut parts = Vec::new();
    match before {
        Some(b) => {
            if b.name != after.name {
                parts.push(format!("name {:?} → {:?}", b.name, after.name));
            }
            if b.description != after.description {
                parts.push(match &after.description {
                    Some(d) => format!("description → {d:?}"),
                    None => "description cleared".to_owned(),
                });
            }
            if parts.is_empty() {
                parts.push("no change (already so)".to_owned());
            }
        }
        None => {
            parts.push(format!("name → {:?}", after.name));
            if let Some(d) = &after.description {
                parts.push(format!("description → {d:?}"));
            }
        }
    }
    parts.join(", ")
}

/// A journal note for an applied update whose old name and description are unknown.
fn unjournaled(what: &str) -> JournalNote {
    JournalNote {
        write_id: None,
        journal_warning: Some(format!(
            "The {what} was changed but not journaled: the base schema could not be read, so its old name and description are unknown and undo_write cannot restore them."
        )),
    }
}

/// The table `table_id` names in `schema` with its metadata, or the reference as given.
fn resolve(
    schema: Option<&BaseSchema>,
    base: &str,
    table_id: &str,
) -> Result<(String, Option<Table>), ToolError> {
    match schema {
        Some(s) => {
            let t = resolve_table(s, base, table_id)?;
            Ok((t.id.to_string(), Some(t.clone())))
        }
        None => Ok((table_id.trim().to_owned(), None)),
    }
}

fn parse_type(t: &str) -> Result<FieldType, ToolError> {
    serde_json::from_value(Value::String(t.trim().to_owned())).map_err(|_| {
        ToolError::Invalid(format!(
            "Unknown field type {t:?}. Use an Airtable type name such as singleLineText, multilineText, number, checkbox, date, singleSelect, multipleSelects, email, url."
        ))
    })
}

#[tool_router(router = schema_router, vis = "pub(crate)")]
impl AirtableServer {
    #[tool(
        name = "create_table",
        title = "Create table",
        description = "Create a table with its fields (the first is the primary field; use a text type). Types use Airtable's names (singleLineText, number, singleSelect...); options follow its Web API, e.g. {\"choices\":[{\"name\":\"Todo\"}]}. Returns the table with field IDs. dry_run=true shows what would be sent. Journaled, but not undoable: the API cannot delete tables.",
        annotations(
            title = "Create table",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub(crate) async fn create_table(
        &self,
        Parameters(p): Parameters<CreateTableParams>,
        rc: RequestContext<RoleServer>,
    ) -> Result<Json<TableWriteOutput>, ToolError> {
        self.ctx.require_write("create_table")?;
        let base = self.ctx.base(&p.base_id)?;
        self.ctx.client()?;
        let name = p.name.trim().to_owned();
        if name.is_empty() {
            return Err(ToolError::Invalid("name must not be empty".into()));
        }
        if p.fields.is_empty() {
            return Err(ToolError::Invalid(
                "fields must list at least one field; the first becomes the primary field, e.g. [{\"name\": \"Name\", \"type\": \"singleLineText\"}]".into(),
            ));
        }
        let mut fields = Vec::with_capacity(p.fields.len());
        for f in &p.fields {
            fields.push(FieldSpec {
                name: f.name.clone(),
                field_type: parse_type(&f.field_type)?,
                description: f.description.clone(),
                options: f.options.clone().map(Value::Object),
            });
        }
        if let Some(schema) = self.ctx.schema_opt(&base).await?
            && let Some(t) = schema.tables.iter().find(|t| t.name == name)
        {
            return Err(ToolError::Invalid(format!(
                "Base {base} already has a table named {name:?} ({}). Choose another name, or use update_table to change it.",
                t.id
            )));
        }
        let req = CreateTable {
            name: name.clone(),
            description: p.description,
            fields,
        };
        let ask = ConfirmAsk {
            tool: "create_table",
            summary: format!(
                "Create table {name:?} with {} field(s) in {base}",
                req.fields.len()
            ),
            count: 1,
            sample: vec![name.clone()],
            reason: None,
        };
        if p.control.dry_run {
            let preview = SchemaPreview {
                dry_run: true,
                summary: ask.summary.clone(),
                before: None,
                after: None,
                create: Some(serde_json::to_value(&req).map_err(ToolError::Render)?),
                undoable: false,
                confirm_token: self.ctx.confirm_token(&rc, &ask),
                note: format!(
                    "Nothing was sent. Call again without dry_run to create it. {TABLE_NOT_UNDOABLE}"
                ),
            };
            return Ok(Json(TableWriteOutput {
                table: None,
                preview: Some(preview),
                note: None,
                journal: JournalNote::default(),
            }));
        }
        self.ctx.confirm(&rc, &p.control, ask).await?;
        let result = self.ctx.client()?.create_table(&base, &req).await;
        self.ctx.invalidate_schema(&base);
        let table = result.map_err(|e| {
            ToolError::api("create the table", base.as_ref(), scope::SCHEMA_WRITE, e)
        })?;
        let journal = self
            .ctx
            .journal_write(NewWrite {
                tool: "create_table".to_owned(),
                base_id: base.to_string(),
                table_id: Some(table.id.to_string()),
                table_name: Some(table.name.clone()),
                summary: format!("created table {}", table.name),
                changes: vec![Change::TableCreated {
                    table_id: table.id.to_string(),
                    name: table.name.clone(),
                }],
                complete: true,
                undo_of: None,
                resume: None,
            })
            .await;
        Ok(Json(TableWriteOutput {
            table: Some(TableChanged::new(base.as_ref(), &table)),
            preview: None,
            note: Some(TABLE_NOT_UNDOABLE.to_owned()),
            journal,
        }))
    }

    #[tool(
        name = "update_table",
        title = "Update table",
        description = "Rename a table and/or change its description (give name, description or both). dry_run=true shows before -> after. Journaled: undo_write restores the old values.",
        annotations(
            title = "Update table",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn update_table(
        &self,
        Parameters(p): Parameters<UpdateTableParams>,
        rc: RequestContext<RoleServer>,
    ) -> Result<Json<TableWriteOutput>, ToolError> {
        self.ctx.require_write("update_table")?;
        let base = self.ctx.base(&p.base_id)?;
        self.ctx.client()?;
        if p.name.is_none() && p.description.is_none() {
            return Err(ToolError::Invalid(
                "Nothing to change: give name and/or description.".into(),
            ));
        }
        let schema = self.ctx.schema_opt(&base).await?;
        let (table_ref, current) = resolve(schema.as_deref(), base.as_ref(), &p.table_id)?;
        let before = current.as_ref().map(MetaOut::of_table);
        let after = before.as_ref().map_or_else(
            || MetaOut {
                name: p.name.clone().unwrap_or_else(|| table_ref.clone()),
                description: p.description.clone().filter(|d| !d.is_empty()),
            },
            |b| b.with(p.name.as_ref(), p.description.as_ref()),
        );
        let label = before
            .as_ref()
            .map_or_else(|| table_ref.clone(), |b| b.name.clone());
        let ask = ConfirmAsk {
            tool: "update_table",
            summary: format!(
                "Update table {label:?} in {base}: {}",
                change_text(before.as_ref(), &after)
            ),
            count: 1,
            sample: vec![label.clone()],
            reason: None,
        };
        if p.control.dry_run {
            let preview = SchemaPreview {
                dry_run: true,
                summary: ask.summary.clone(),
                undoable: before.is_some(),
                before,
                after: Some(after),
                create: None,
                confirm_token: self.ctx.confirm_token(&rc, &ask),
                note: UPDATE_NOTE.to_owned(),
            };
            return Ok(Json(TableWriteOutput {
                table: None,
                preview: Some(preview),
                note: None,
                journal: JournalNote::default(),
            }));
        }
        self.ctx.confirm(&rc, &p.control, ask).await?;
        let req = UpdateTable {
            name: p.name,
            description: p.description,
        };
        let result = self
            .ctx
            .client()?
            .update_table(&base, &table_ref, &req)
            .await;
        self.ctx.invalidate_schema(&base);
        let table = result.map_err(|e| {
            ToolError::api("update the table", base.as_ref(), scope::SCHEMA_WRITE, e)
        })?;
        let journal = match before {
            Some(before) => {
                self.ctx
                    .journal_write(NewWrite {
                        tool: "update_table".to_owned(),
                        base_id: base.to_string(),
                        table_id: Some(table.id.to_string()),
                        table_name: Some(table.name.clone()),
                        summary: format!("updated table {label}"),
                        changes: vec![Change::TableUpdated {
                            table_id: table.id.to_string(),
                            before: before.journal(),
                            after: MetaOut::of_table(&table).journal(),
                        }],
                        complete: true,
                        undo_of: None,
                        resume: None,
                    })
                    .await
            }
            None => unjournaled("table"),
        };
        Ok(Json(TableWriteOutput {
            table: Some(TableChanged::new(base.as_ref(), &table)),
            preview: None,
            note: None,
            journal,
        }))
    }

    #[tool(
        name = "create_field",
        title = "Create field",
        description = "Add a field to a table. type: an Airtable type (singleLineText, number, checkbox, date, singleSelect, multipleSelects, email, url, currency, percent, rating, multipleRecordLinks...); options as in the Web API, e.g. {\"choices\":[{\"name\":\"Low\"}]} for selects, {\"precision\":0} for number, {\"linkedTableId\":\"tbl...\"} for links. Computed types (formula, rollup, lookup) cannot be created. dry_run=true shows what would be sent. Journaled, but not undoable: the API cannot delete fields.",
        annotations(
            title = "Create field",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub(crate) async fn create_field(
        &self,
        Parameters(p): Parameters<CreateFieldParams>,
        rc: RequestContext<RoleServer>,
    ) -> Result<Json<FieldWriteOutput>, ToolError> {
        self.ctx.require_write("create_field")?;
        let base = self.ctx.base(&p.base_id)?;
        self.ctx.client()?;
        let field_type = parse_type(&p.field_type)?;
        let name = p.name.trim().to_owned();
        let schema = self.ctx.schema_opt(&base).await?;
        let (table_ref, table) = resolve(schema.as_deref(), base.as_ref(), &p.table_id)?;
        if let Some(t) = &table
            && let Some(existing) = find_field(t, &name)
        {
            return Err(ToolError::Invalid(format!(
                "Table {:?} already has a field named {:?} ({}). Choose another name, or use update_field to change it.",
                t.name, existing.name, existing.id
            )));
        }
        let table_name = table
            .as_ref()
            .map_or_else(|| table_ref.clone(), |t| t.name.clone());
        let req = FieldSpec {
            name: name.clone(),
            field_type,
            description: p.description,
            options: p.options.map(Value::Object),
        };
        let ask = ConfirmAsk {
            tool: "create_field",
            summary: format!(
                "Add field {name:?} ({}) to table {table_name:?} in {base}",
                req.field_type
            ),
            count: 1,
            sample: vec![name.clone()],
            reason: None,
        };
        if p.control.dry_run {
            let preview = SchemaPreview {
                dry_run: true,
                summary: ask.summary.clone(),
                before: None,
                after: None,
                create: Some(serde_json::to_value(&req).map_err(ToolError::Render)?),
                undoable: false,
                confirm_token: self.ctx.confirm_token(&rc, &ask),
                note: format!(
                    "Nothing was sent. Call again without dry_run to create it. {FIELD_NOT_UNDOABLE}"
                ),
            };
            return Ok(Json(FieldWriteOutput {
                changed: None,
                preview: Some(preview),
                note: None,
                journal: JournalNote::default(),
            }));
        }
        self.ctx.confirm(&rc, &p.control, ask).await?;
        let result = self
            .ctx
            .client()?
            .create_field(&base, &table_ref, &req)
            .await;
        self.ctx.invalidate_schema(&base);
        let field = result.map_err(|e| {
            ToolError::api("create the field", base.as_ref(), scope::SCHEMA_WRITE, e)
        })?;
        let journal = self
            .ctx
            .journal_write(NewWrite {
                tool: "create_field".to_owned(),
                base_id: base.to_string(),
                table_id: Some(table_ref.clone()),
                table_name: Some(table_name.clone()),
                summary: format!("created field {} in {table_name}", field.name),
                changes: vec![Change::FieldCreated {
                    table_id: table_ref.clone(),
                    field_id: field.id.to_string(),
                    name: field.name.clone(),
                }],
                complete: true,
                undo_of: None,
                resume: None,
            })
            .await;
        Ok(Json(FieldWriteOutput {
            changed: Some(FieldChanged {
                base_id: base.to_string(),
                table_id: table_ref,
                field: FieldOut::from_field(&field, true),
            }),
            preview: None,
            note: Some(FIELD_NOT_UNDOABLE.to_owned()),
            journal,
        }))
    }

    #[tool(
        name = "update_field",
        title = "Update field",
        description = "Rename a field and/or change its description (the API cannot change type or options). field_id: an ID (fld...) or current name. dry_run=true shows before -> after. Journaled: undo_write restores the old values.",
        annotations(
            title = "Update field",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn update_field(
        &self,
        Parameters(p): Parameters<UpdateFieldParams>,
        rc: RequestContext<RoleServer>,
    ) -> Result<Json<FieldWriteOutput>, ToolError> {
        self.ctx.require_write("update_field")?;
        let base = self.ctx.base(&p.base_id)?;
        self.ctx.client()?;
        if p.name.is_none() && p.description.is_none() {
            return Err(ToolError::Invalid(
                "Nothing to change: give name and/or description.".into(),
            ));
        }
        let schema = self.ctx.schema_opt(&base).await?;
        let (table_ref, table) = resolve(schema.as_deref(), base.as_ref(), &p.table_id)?;
        let (field_ref, current) = match &table {
            Some(t) => {
                let f = find_field(t, p.field_id.trim()).ok_or_else(|| {
                    let names: Vec<&str> = t.fields.iter().map(|f| f.name.as_str()).collect();
                    let hint = crate::tools::validation::suggest(&p.field_id, names.iter().copied())
                        .map(|s| format!(" Did you mean {s:?}?"))
                        .unwrap_or_default();
                    ToolError::Invalid(format!(
                        "Field {:?} was not found in table {:?}.{hint} Call get_field_info to see field names and IDs.",
                        p.field_id, t.name
                    ))
                })?;
                (f.id.to_string(), Some(MetaOut::of_field(f)))
            }
            None => (p.field_id.trim().to_owned(), None),
        };
        let table_name = table
            .as_ref()
            .map_or_else(|| table_ref.clone(), |t| t.name.clone());
        let before = current;
        let after = before.as_ref().map_or_else(
            || MetaOut {
                name: p.name.clone().unwrap_or_else(|| field_ref.clone()),
                description: p.description.clone().filter(|d| !d.is_empty()),
            },
            |b| b.with(p.name.as_ref(), p.description.as_ref()),
        );
        let label = before
            .as_ref()
            .map_or_else(|| field_ref.clone(), |b| b.name.clone());
        let ask = ConfirmAsk {
            tool: "update_field",
            summary: format!(
                "Update field {label:?} of table {table_name:?} in {base}: {}",
                change_text(before.as_ref(), &after)
            ),
            count: 1,
            sample: vec![label.clone()],
            // The Web API cannot change a field's type: no confirmation reason applies.
            reason: None,
        };
        if p.control.dry_run {
            let preview = SchemaPreview {
                dry_run: true,
                summary: ask.summary.clone(),
                undoable: before.is_some(),
                before,
                after: Some(after),
                create: None,
                confirm_token: self.ctx.confirm_token(&rc, &ask),
                note: UPDATE_NOTE.to_owned(),
            };
            return Ok(Json(FieldWriteOutput {
                changed: None,
                preview: Some(preview),
                note: None,
                journal: JournalNote::default(),
            }));
        }
        self.ctx.confirm(&rc, &p.control, ask).await?;
        let req = UpdateField {
            name: p.name,
            description: p.description,
        };
        let result = self
            .ctx
            .client()?
            .update_field(&base, &table_ref, &field_ref, &req)
            .await;
        self.ctx.invalidate_schema(&base);
        let field = result.map_err(|e| {
            ToolError::api("update the field", base.as_ref(), scope::SCHEMA_WRITE, e)
        })?;
        let journal = match before {
            Some(before) => {
                self.ctx
                    .journal_write(NewWrite {
                        tool: "update_field".to_owned(),
                        base_id: base.to_string(),
                        table_id: Some(table_ref.clone()),
                        table_name: Some(table_name.clone()),
                        summary: format!("updated field {label} in {table_name}"),
                        changes: vec![Change::FieldUpdated {
                            table_id: table_ref.clone(),
                            field_id: field.id.to_string(),
                            before: before.journal(),
                            after: MetaOut::of_field(&field).journal(),
                        }],
                        complete: true,
                        undo_of: None,
                        resume: None,
                    })
                    .await
            }
            None => unjournaled("field"),
        };
        Ok(Json(FieldWriteOutput {
            changed: Some(FieldChanged {
                base_id: base.to_string(),
                table_id: table_ref,
                field: FieldOut::from_field(&field, true),
            }),
            preview: None,
            note: None,
            journal,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, description: Option<&str>) -> MetaOut {
        MetaOut {
            name: name.to_owned(),
            description: description.map(str::to_owned),
        }
    }

    #[test]
    fn an_update_keeps_what_it_does_not_name_and_empty_clears_the_description() {
        let before = meta("Vendors", Some("Suppliers"));
        let renamed = before.with(Some(&"Suppliers".to_owned()), None);
        assert_eq!(renamed, meta("Suppliers", Some("Suppliers")));
        let cleared = before.with(None, Some(&String::new()));
        assert_eq!(cleared, meta("Vendors", None));
        assert_eq!(change_text(Some(&before), &cleared), "description cleared");
        assert_eq!(
            change_text(Some(&before), &renamed),
            "name \"Vendors\" → \"Suppliers\""
        );
        assert_eq!(
            change_text(Some(&before), &before),
            "no change (already so)"
        );
        assert_eq!(
            change_text(None, &meta("X", Some("d"))),
            "name → \"X\", description → \"d\""
        );
    }
}
