//! Views: the list_views tool, and [`check_view`], which every read taking a `view` uses to
//! refuse an unknown view before any request (with a "did you mean").

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::airtable::Table;
use crate::tools::ToolError;
use crate::tools::bases::{ViewOut, views_of};
use crate::tools::handler::AirtableServer;
use crate::tools::validation::{resolve_table, suggest};

/// Check that `view` (a name or an ID) is a view of `table`; the error suggests the closest
/// name and lists the views.
pub(crate) fn check_view(t: &Table, view: &str) -> Result<(), ToolError> {
    let v = view.trim();
    if t.views.iter().any(|x| x.name == v || x.id.as_ref() == v) {
        return Ok(());
    }
    let names: Vec<&str> = t.views.iter().map(|x| x.name.as_str()).collect();
    let hint = suggest(v, names.iter().copied())
        .map(|s| format!(" Did you mean {s:?}?"))
        .unwrap_or_default();
    Err(ToolError::Invalid(format!(
        "View {v:?} was not found in table {:?}.{hint} Views: {}. list_views shows them.",
        t.name,
        names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// Check an optional `view` against an optional table schema (no schema: Airtable checks).
pub(crate) fn check_opt_view(t: Option<&Table>, view: Option<&String>) -> Result<(), ToolError> {
    match (t, view) {
        (Some(t), Some(v)) => check_view(t, v),
        _ => Ok(()),
    }
}

/// Parameters of list_views.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ListViewsParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
}

/// Result of list_views.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ListViewsOutput {
    /// Table ID.
    pub(crate) table_id: String,
    /// Table name.
    pub(crate) table_name: String,
    /// The views, in the table's order.
    pub(crate) views: Vec<ViewOut>,
    /// Number of views.
    pub(crate) count: usize,
}

#[tool_router(router = views_router, vis = "pub(crate)")]
impl AirtableServer {
    #[tool(
        name = "list_views",
        title = "List views",
        description = "List a table's views: ID, name and type (grid, form, calendar, gallery, kanban...). Every record read takes a view by name or ID as `view` (its filter and order apply).",
        annotations(
            title = "List views",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn list_views(
        &self,
        Parameters(p): Parameters<ListViewsParams>,
    ) -> Result<Json<ListViewsOutput>, ToolError> {
        let base = self.ctx.base(&p.base_id)?;
        let schema = self.ctx.schema(&base).await?;
        let t = resolve_table(&schema, base.as_ref(), &p.table_id)?;
        let views = views_of(t);
        Ok(Json(ListViewsOutput {
            table_id: t.id.to_string(),
            table_name: t.name.clone(),
            count: views.len(),
            views,
        }))
    }
}
