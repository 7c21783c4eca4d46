//! Schema changes: create_table, update_table, create_field, update_field. Each invalidates
//! the base's cached schema.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::airtable::{CreateTable, FieldSpec, FieldType, Table, UpdateField, UpdateTable};
use crate::tools::ToolError;
use crate::tools::bases::{FieldOut, ViewOut, primary_name, views_of};
use crate::tools::handler::AirtableServer;
use crate::tools::params::{FieldSpecParam, lenient_object, opt_nonempty};
use crate::tools::result::scope;
use crate::tools::validation::{find_field, resolve_table};

/// Parameters of create_table.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct CreateTableParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Name of the new table (unique in the base).
    pub(crate) name: String,
    /// The fields, at least one; the first becomes the primary field (use a text type for it).
    /// Each item: {"name": "...", "type": "singleLineText", "options": {...}, "description": "..."}.
    pub(crate) fields: Vec<FieldSpecParam>,
    /// Optional table description.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) description: Option<String>,
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
    /// New table description.
    #[serde(default)]
    pub(crate) description: Option<String>,
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
    /// Airtable field type, e.g. singleLineText, multilineText, number, currency, percent,
    /// checkbox, date, dateTime, singleSelect, multipleSelects, email, url, phoneNumber,
    /// rating, multipleRecordLinks.
    #[serde(rename = "type")]
    pub(crate) field_type: String,
    /// Type options as Airtable expects them, e.g. {"precision": 0} for number,
    /// {"choices": [{"name": "Low"}, {"name": "High"}]} for selects,
    /// {"dateFormat": {"name": "iso"}} for date, {"linkedTableId": "tbl..."} for links.
    #[serde(default, deserialize_with = "opt_object")]
    pub(crate) options: Option<serde_json::Map<String, Value>>,
    /// Optional field description.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) description: Option<String>,
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
    /// New field description.
    #[serde(default)]
    pub(crate) description: Option<String>,
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
        description = "Create a table in a base with its fields (at least one; the first is the primary field and should be a text type). Field types use Airtable's names (singleLineText, number, singleSelect...); options follow Airtable's Web API, e.g. {\"choices\":[{\"name\":\"Todo\"}]} for selects or {\"precision\":2} for numbers. Returns the new table with field IDs.",
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
    ) -> Result<Json<TableChanged>, ToolError> {
        self.ctx.require_write("create_table")?;
        let base = self.ctx.base(&p.base_id)?;
        let client = self.ctx.client()?;
        if p.name.trim().is_empty() {
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
        let req = CreateTable {
            name: p.name.trim().to_owned(),
            description: p.description,
            fields,
        };
        let result = client.create_table(&base, &req).await;
        self.ctx.invalidate_schema(&base);
        let table = result.map_err(|e| {
            ToolError::api("create the table", base.as_ref(), scope::SCHEMA_WRITE, e)
        })?;
        Ok(Json(TableChanged::new(base.as_ref(), &table)))
    }

    #[tool(
        name = "update_table",
        title = "Update table",
        description = "Rename a table and/or change its description. table_id takes an ID (tbl...) or the current name. Give name, description or both.",
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
    ) -> Result<Json<TableChanged>, ToolError> {
        self.ctx.require_write("update_table")?;
        let base = self.ctx.base(&p.base_id)?;
        let client = self.ctx.client()?;
        if p.name.is_none() && p.description.is_none() {
            return Err(ToolError::Invalid(
                "Nothing to change: give name and/or description.".into(),
            ));
        }
        let table_ref = match self.ctx.schema_opt(&base).await? {
            Some(schema) => resolve_table(&schema, base.as_ref(), &p.table_id)?
                .id
                .to_string(),
            None => p.table_id.clone(),
        };
        let req = UpdateTable {
            name: p.name,
            description: p.description,
        };
        let result = client.update_table(&base, &table_ref, &req).await;
        self.ctx.invalidate_schema(&base);
        let table = result.map_err(|e| {
            ToolError::api("update the table", base.as_ref(), scope::SCHEMA_WRITE, e)
        })?;
        Ok(Json(TableChanged::new(base.as_ref(), &table)))
    }

    #[tool(
        name = "create_field",
        title = "Create field",
        description = "Add a field (column) to a table. type is an Airtable field type name (singleLineText, number, checkbox, date, singleSelect, multipleSelects, email, url, currency, percent, rating, multipleRecordLinks...); options follow Airtable's Web API, e.g. {\"choices\":[{\"name\":\"Low\"},{\"name\":\"High\"}]} for selects, {\"precision\":0} for number, {\"linkedTableId\":\"tbl...\"} for links. Computed types (formula, rollup, lookup) cannot be created through the API.",
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
    ) -> Result<Json<FieldChanged>, ToolError> {
        self.ctx.require_write("create_field")?;
        let base = self.ctx.base(&p.base_id)?;
        let client = self.ctx.client()?;
        let field_type = parse_type(&p.field_type)?;
        let table_ref = match self.ctx.schema_opt(&base).await? {
            Some(schema) => {
                let t = resolve_table(&schema, base.as_ref(), &p.table_id)?;
                if let Some(existing) = find_field(t, p.name.trim()) {
                    return Err(ToolError::Invalid(format!(
                        "Table {:?} already has a field named {:?} ({}). Choose another name, or use update_field to change it.",
                        t.name, existing.name, existing.id
                    )));
                }
                t.id.to_string()
            }
            None => p.table_id.clone(),
        };
        let req = FieldSpec {
            name: p.name.trim().to_owned(),
            field_type,
            description: p.description,
            options: p.options.map(Value::Object),
        };
        let result = client.create_field(&base, &table_ref, &req).await;
        self.ctx.invalidate_schema(&base);
        let field = result.map_err(|e| {
            ToolError::api("create the field", base.as_ref(), scope::SCHEMA_WRITE, e)
        })?;
        Ok(Json(FieldChanged {
            base_id: base.to_string(),
            table_id: table_ref,
            field: FieldOut::from_field(&field, true),
        }))
    }

    #[tool(
        name = "update_field",
        title = "Update field",
        description = "Rename a field and/or change its description (Airtable's API cannot change a field's type or options). field_id takes an ID (fld...) or the current name; table_id an ID or name.",
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
    ) -> Result<Json<FieldChanged>, ToolError> {
        self.ctx.require_write("update_field")?;
        let base = self.ctx.base(&p.base_id)?;
        let client = self.ctx.client()?;
        if p.name.is_none() && p.description.is_none() {
            return Err(ToolError::Invalid(
                "Nothing to change: give name and/or description.".into(),
            ));
        }
        let (table_ref, field_ref) = match self.ctx.schema_opt(&base).await? {
            Some(schema) => {
                let t = resolve_table(&schema, base.as_ref(), &p.table_id)?;
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
                (t.id.to_string(), f.id.to_string())
            }
            None => (p.table_id.clone(), p.field_id.clone()),
        };
        let req = UpdateField {
            name: p.name,
            description: p.description,
        };
        let result = client
            .update_field(&base, &table_ref, &field_ref, &req)
            .await;
        self.ctx.invalidate_schema(&base);
        let field = result.map_err(|e| {
            ToolError::api("update the field", base.as_ref(), scope::SCHEMA_WRITE, e)
        })?;
        Ok(Json(FieldChanged {
            base_id: base.to_string(),
            table_id: table_ref,
            field: FieldOut::from_field(&field, true),
        }))
    }
}
