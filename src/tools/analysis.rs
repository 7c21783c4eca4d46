//! The analysis toolset: analyze_table_data and find_duplicates.
//!
//! The pure cores (no MCP, no HTTP) live in [`stats`] and [`duplicates`]; this file reads
//! the records (page by page, with progress) and shapes the results.

pub(crate) mod duplicates;
pub(crate) mod stats;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{Json, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::airtable::{self, ListQuery};
use crate::tools::ToolError;
use crate::tools::context::{PageReport, field_names};
use crate::tools::handler::AirtableServer;
use crate::tools::params::{
    lenient_bool_default_true, lenient_opt_strings, lenient_strings, lenient_u32, opt_nonempty,
};
use crate::tools::progress::Progress;
use crate::tools::result::fit_to_budget;
use crate::tools::validation;
use crate::tools::views::check_opt_view;

use duplicates::DuplicateGroup;
use stats::FieldStats;

/// Most records analyze_table_data reads.
pub(crate) const MAX_SAMPLE: u32 = 1000;
/// Most records find_duplicates scans.
pub(crate) const MAX_SCAN: u32 = 100_000;

fn default_sample_size() -> u32 {
    100
}

fn default_scan() -> u32 {
    10_000
}

/// Parameters of analyze_table_data.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct AnalyzeTableDataParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// Records to analyse, first in view order (default 100, max 1000).
    #[serde(default = "default_sample_size", deserialize_with = "lenient_u32")]
    pub(crate) sample_size: u32,
    /// Only these fields (names or IDs); default every field.
    #[serde(default, deserialize_with = "lenient_opt_strings")]
    pub(crate) fields: Option<Vec<String>>,
    /// A view name or ID whose filter and order apply to the sample.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) view: Option<String>,
}

/// Result of analyze_table_data.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct AnalyzeTableDataResult {
    /// Base ID.
    pub(crate) base_id: String,
    /// Table ID.
    pub(crate) table_id: String,
    /// Table name.
    pub(crate) table_name: String,
    /// Records analysed.
    pub(crate) records_analyzed: usize,
    /// True when the table (or view) holds more records than were analysed.
    pub(crate) has_more: bool,
    /// Per-field statistics, in schema order: fill rate, distinct count, top values
    /// (selects, short text), min/max/mean/median (numbers), earliest/latest (dates).
    pub(crate) fields: Vec<FieldStats>,
}

/// Parameters of find_duplicates.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct FindDuplicatesParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// The key fields, e.g. ["Email"] or ["First name", "Last name"].
    #[serde(deserialize_with = "lenient_strings")]
    pub(crate) fields: Vec<String>,
    /// Skip records with an empty key field; false groups them.
    #[serde(default = "yes", deserialize_with = "lenient_bool_default_true")]
    pub(crate) ignore_empty: bool,
    /// Most records to scan (max 100000).
    #[serde(default = "default_scan", deserialize_with = "lenient_u32")]
    pub(crate) max_records: u32,
    /// A view name or ID to scan instead of the whole table.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) view: Option<String>,
}

fn yes() -> bool {
    true
}

/// Result of find_duplicates.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct FindDuplicatesResult {
    /// Base ID.
    pub(crate) base_id: String,
    /// Table ID.
    pub(crate) table_id: String,
    /// The key fields.
    pub(crate) fields: Vec<String>,
    /// Records scanned.
    pub(crate) records_scanned: usize,
    /// True when the table holds more records than max_records (not all were scanned).
    pub(crate) has_more: bool,
    /// Records skipped because a key field was empty.
    pub(crate) skipped_empty: usize,
    /// Number of duplicate groups found.
    pub(crate) group_count: usize,
    /// Records in a group (every member counted).
    pub(crate) duplicate_records: usize,
    /// Groups, largest first: the shared (normalised) key and the record IDs.
    pub(crate) groups: Vec<DuplicateGroup>,
    /// True when the groups list was cut to stay small (group_count still counts all).
    pub(crate) truncated: bool,
    /// What was cut and how to see the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
}

#[tool_router(router = analysis_router, vis = "pub(crate)")]
impl AirtableServer {
    /// analyze_table_data
    #[tool(
        name = "analyze_table_data",
        title = "Analyze table data",
        description = "Profile a table's data quality from a sample (sample_size records, default 100, in view order): per field the fill rate, distinct count, top 5 values, min/max/mean/median (numbers) and earliest/latest (dates). has_more says the table holds more. Use before cleaning or reporting; find_duplicates finds duplicate records.",
        annotations(
            title = "Analyze table data",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn analyze_table_data(
        &self,
        Parameters(p): Parameters<AnalyzeTableDataParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<AnalyzeTableDataResult>, ToolError> {
        let base = self.ctx.base(&p.base_id)?;
        if p.sample_size == 0 || p.sample_size > MAX_SAMPLE {
            return Err(ToolError::Invalid(format!(
                "sample_size must be between 1 and {MAX_SAMPLE} (got {}).",
                p.sample_size
            )));
        }
        let progress = Progress::new(&ctx);
        let schema = self.ctx.schema(&base).await?;
        let table = validation::resolve_table(&schema, base.as_ref(), &p.table_id)?;
        check_opt_view(Some(table), p.view.as_ref())?;
        let wanted: Vec<airtable::Field> = match &p.fields {
            Some(refs) if !refs.is_empty() => {
                let names = field_names(table, refs, "fields")?;
                names
                    .iter()
                    .filter_map(|n| table.fields.iter().find(|f| &f.name == n).cloned())
                    .collect()
            }
            _ => table.fields.clone(),
        };
        let query = ListQuery {
            view: p.view.clone(),
            fields: wanted.iter().map(|f| f.name.clone()).collect(),
            ..ListQuery::default()
        };
        let read = self
            .ctx
            .read_records(
                &base,
                table.id.as_ref(),
                query,
                p.sample_size as usize,
                PageReport::every_page(&progress, "analyze_table_data"),
            )
            .await?;
        let has_more = read.has_more();
        let records = read.records;
        let s = stats::analyze(&wanted, &records);
        Ok(Json(AnalyzeTableDataResult {
            base_id: base.to_string(),
            table_id: table.id.to_string(),
            table_name: table.name.clone(),
            records_analyzed: s.records_analyzed,
            has_more,
            fields: s.fields,
        }))
    }

    /// find_duplicates
    #[tool(
        name = "find_duplicates",
        title = "Find duplicate records",
        description = "Find groups of records whose key fields match once trimmed, spaces collapsed and lowercased (\"  Ada LOVELACE\" = \"ada lovelace\"; list items in any order). fields is the key, e.g. [\"Email\"]. ignore_empty (default true) skips records with an empty key. Returns each group's key and record IDs, largest first; scans up to max_records (default 10000). Read-only: to merge, batch_update_records the keeper and batch_delete_records the rest.",
        annotations(
            title = "Find duplicate records",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn find_duplicates(
        &self,
        Parameters(p): Parameters<FindDuplicatesParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<FindDuplicatesResult>, ToolError> {
        let base = self.ctx.base(&p.base_id)?;
        if p.fields.is_empty() {
            return Err(ToolError::Invalid(
                "fields is empty: give the field(s) that identify a duplicate, e.g. [\"Email\"] or [\"First name\", \"Last name\"]. get_field_info lists the field names.".into(),
            ));
        }
        if p.max_records == 0 || p.max_records > MAX_SCAN {
            return Err(ToolError::Invalid(format!(
                "max_records must be between 1 and {MAX_SCAN} (got {}).",
                p.max_records
            )));
        }
        let progress = Progress::new(&ctx);
        let schema = self.ctx.schema(&base).await?;
        let table = validation::resolve_table(&schema, base.as_ref(), &p.table_id)?;
        let keys = field_names(table, &p.fields, "fields")?;
        check_opt_view(Some(table), p.view.as_ref())?;
        let query = ListQuery {
            view: p.view.clone(),
            fields: keys.clone(),
            ..ListQuery::default()
        };
        let read = self
            .ctx
            .read_records(
                &base,
                table.id.as_ref(),
                query,
                p.max_records as usize,
                PageReport::every_page(&progress, "find_duplicates"),
            )
            .await?;
        let has_more = read.has_more();
        let records = read.records;
        let report = duplicates::find_duplicates(&records, &keys, p.ignore_empty);
        let (groups, cut) = fit_to_budget(report.groups, self.ctx.budget());
        let note = (cut > 0).then(|| {
            format!(
                "Showing the {} largest of {} groups ({cut} left out to stay small). Narrow the scan with a view, or fix these groups and call again.",
                groups.len(),
                report.group_count
            )
        });
        Ok(Json(FindDuplicatesResult {
            base_id: base.to_string(),
            table_id: table.id.to_string(),
            fields: keys,
            records_scanned: report.records_scanned,
            has_more,
            skipped_empty: report.skipped_empty,
            group_count: report.group_count,
            duplicate_records: report.duplicate_records,
            groups,
            truncated: cut > 0,
            note,
        }))
    }
}
