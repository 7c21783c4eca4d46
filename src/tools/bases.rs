//! Discovery: list_bases, list_tables, get_field_info.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::airtable::{Field, Table};
use crate::tools::handler::AirtableServer;
use crate::tools::result::scope;
use crate::tools::validation::{field_type_name, resolve_table};
use crate::tools::{ToolError, params::opt_nonempty};

/// Parameters of list_bases.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ListBasesParams {
    /// Optional case-insensitive filter on the base name (substring), e.g. "crm".
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) query: Option<String>,
}

/// A base.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct BaseOut {
    /// Base ID (app...), the base_id of every other tool.
    pub(crate) id: String,
    /// Base name.
    pub(crate) name: String,
    /// The token owner's permission: none, read, comment, edit or create.
    pub(crate) permission_level: String,
}

/// Result of list_bases.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ListBasesOutput {
    /// The bases (filtered by query and the server's allow-list).
    pub(crate) bases: Vec<BaseOut>,
    /// Number of bases returned.
    pub(crate) count: usize,
}

/// How much list_tables returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DetailLevel {
    /// Table IDs, names, descriptions, primary field and field count (compact, the default).
    #[default]
    Names,
    /// Also every field's ID, name and type.
    Fields,
    /// Also field options (select choices, formats, links), descriptions and views.
    Full,
}

/// Parameters of list_tables.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ListTablesParams {
    /// Base ID (app...), from list_bases.
    pub(crate) base_id: String,
    /// "names" (default: compact), "fields" (adds field names and types) or "full" (adds
    /// options and views).
    #[serde(default)]
    pub(crate) detail_level: DetailLevel,
}

/// A field.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct FieldOut {
    /// Field ID (fld...).
    pub(crate) id: String,
    /// Field name (what records use as keys).
    pub(crate) name: String,
    /// Airtable field type, e.g. singleLineText, number, singleSelect, formula.
    #[serde(rename = "type")]
    pub(crate) field_type: String,
    /// True for computed fields (formula, rollup, lookup, count, autoNumber, created/modified
    /// time...), which cannot be written.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) computed: bool,
    /// Field description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    /// Type options (select choices, number precision, linked table...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) options: Option<Value>,
}

impl FieldOut {
    pub(crate) fn from_field(f: &Field, with_options: bool) -> Self {
        FieldOut {
            id: f.id.to_string(),
            name: f.name.clone(),
            field_type: field_type_name(f),
            computed: f.field_type.is_computed(),
            description: if with_options {
                f.description.clone().filter(|d| !d.is_empty())
            } else {
                None
            },
            options: if with_options {
                f.options.clone()
            } else {
                None
            },
        }
    }
}

/// A view.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ViewOut {
    /// View ID (viw...).
    pub(crate) id: String,
    /// View name (get_records accepts either as `view`).
    pub(crate) name: String,
    /// grid, form, calendar, gallery, kanban...
    #[serde(rename = "type")]
    pub(crate) view_type: String,
}

/// A table.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TableOut {
    /// Table ID (tbl...). table_id parameters accept the ID or the name.
    pub(crate) id: String,
    /// Table name.
    pub(crate) name: String,
    /// Table description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    /// Name of the primary field (the record's display name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) primary_field: Option<String>,
    /// Number of fields.
    pub(crate) field_count: usize,
    /// Fields (detail_level fields or full).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fields: Option<Vec<FieldOut>>,
    /// Views (detail_level full).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) views: Option<Vec<ViewOut>>,
}

pub(crate) fn views_of(t: &Table) -> Vec<ViewOut> {
    t.views
        .iter()
        .map(|v| ViewOut {
            id: v.id.to_string(),
            name: v.name.clone(),
            view_type: v.view_type.clone(),
        })
        .collect()
}

pub(crate) fn primary_name(t: &Table) -> Option<String> {
    t.fields
        .iter()
        .find(|f| f.id == t.primary_field_id)
        .map(|f| f.name.clone())
}

/// Result of list_tables.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ListTablesOutput {
    /// The base.
    pub(crate) base_id: String,
    /// Its tables.
    pub(crate) tables: Vec<TableOut>,
}

/// Parameters of get_field_info.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct GetFieldInfoParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
}

/// Result of get_field_info.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct FieldInfoOutput {
    /// The base.
    pub(crate) base_id: String,
    /// Table ID.
    pub(crate) table_id: String,
    /// Table name.
    pub(crate) table_name: String,
    /// Primary field name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) primary_field: Option<String>,
    /// Every field with type, options and description.
    pub(crate) fields: Vec<FieldOut>,
    /// The table's views.
    pub(crate) views: Vec<ViewOut>,
}

#[tool_router(router = bases_router, vis = "pub(crate)")]
impl AirtableServer {
    #[tool(
        name = "list_bases",
        title = "List bases",
        description = "List the bases this token can access: ID, name, permission level. Start here: every other tool needs a base_id (app...). query filters by name.",
        annotations(
            title = "List bases",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn list_bases(
        &self,
        Parameters(p): Parameters<ListBasesParams>,
    ) -> Result<Json<ListBasesOutput>, ToolError> {
        let client = self.ctx.client()?;
        let bases = client.list_bases().await.map_err(|e| ToolError::Api {
            op: "list bases",
            base: None,
            scope: scope::SCHEMA_READ,
            source: Box::new(e),
        })?;
        let q = p.query.map(|q| q.to_lowercase());
        let bases: Vec<BaseOut> = bases
            .into_iter()
            .filter(|b| self.ctx.base_visible(b.id.as_ref()))
            .filter(|b| q.as_ref().is_none_or(|q| b.name.to_lowercase().contains(q)))
            .map(|b| BaseOut {
                id: b.id.to_string(),
                name: b.name,
                permission_level: match serde_json::to_value(&b.permission_level) {
                    Ok(serde_json::Value::String(s)) => s,
                    _ => "unknown".to_owned(),
                },
            })
            .collect();
        Ok(Json(ListBasesOutput {
            count: bases.len(),
            bases,
        }))
    }

    #[tool(
        name = "list_tables",
        title = "List tables",
        description = "List a base's tables. detail_level: \"names\" (default: ID, name, primary field, field count), \"fields\" (adds field IDs, names, types), \"full\" (adds field options and views). table_id elsewhere takes an ID or a name.",
        annotations(
            title = "List tables",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn list_tables(
        &self,
        Parameters(p): Parameters<ListTablesParams>,
    ) -> Result<Json<ListTablesOutput>, ToolError> {
        let base = self.ctx.base(&p.base_id)?;
        let schema = self.ctx.schema(&base).await?;
        let tables = schema
            .tables
            .iter()
            .map(|t| TableOut {
                id: t.id.to_string(),
                name: t.name.clone(),
                description: t.description.clone().filter(|d| !d.is_empty()),
                primary_field: primary_name(t),
                field_count: t.fields.len(),
                fields: (p.detail_level != DetailLevel::Names).then(|| {
                    t.fields
                        .iter()
                        .map(|f| FieldOut::from_field(f, p.detail_level == DetailLevel::Full))
                        .collect()
                }),
                views: (p.detail_level == DetailLevel::Full).then(|| views_of(t)),
            })
            .collect();
        Ok(Json(ListTablesOutput {
            base_id: base.to_string(),
            tables,
        }))
    }

    #[tool(
        name = "get_field_info",
        title = "Get field info",
        description = "Describe a table's fields: ID, exact name, type, computed (read-only) or not, description and options (select choices, formats, linked table), plus its views. Use it before writing records or formulas so names and select values match exactly.",
        annotations(
            title = "Get field info",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn get_field_info(
        &self,
        Parameters(p): Parameters<GetFieldInfoParams>,
    ) -> Result<Json<FieldInfoOutput>, ToolError> {
        let base = self.ctx.base(&p.base_id)?;
        let schema = self.ctx.schema(&base).await?;
        let t = resolve_table(&schema, base.as_ref(), &p.table_id)?;
        Ok(Json(FieldInfoOutput {
            base_id: base.to_string(),
            table_id: t.id.to_string(),
            table_name: t.name.clone(),
            primary_field: primary_name(t),
            fields: t
                .fields
                .iter()
                .map(|f| FieldOut::from_field(f, true))
                .collect(),
            views: views_of(t),
        }))
    }
}
