//! MCP prompts (workflows a user picks from the client's menu) and argument completion.
//!
//! Each prompt names the tools to call in order, with the safety steps (dry_run first) the
//! server instructions ask for. Arguments `base_id`, `table_id` and `field` are completed from
//! the schema by [`complete`] (also used for the resource templates' variables).

use rmcp::ErrorData;
use rmcp::model::{
    CompleteResult, CompletionInfo, GetPromptResult, ListPromptsResult, Prompt, PromptArgument,
    PromptMessage, Role,
};
use serde_json::{Map, Value};

use crate::tools::ToolError;
use crate::tools::context::ToolContext;
use crate::tools::result::scope;
use crate::tools::validation::resolve_table;

struct Spec {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    /// (name, description, required)
    args: &'static [(&'static str, &'static str, bool)],
}

const BASE: (&str, &str, bool) = ("base_id", "Base ID (app...).", true);
const TABLE: (&str, &str, bool) = ("table_id", "Table ID (tbl...) or name.", true);

const PROMPTS: &[Spec] = &[
    Spec {
        name: "explore_base",
        title: "Explore a base",
        description: "Map a base: its tables, key fields, how tables link, and a few sample records.",
        args: &[BASE],
    },
    Spec {
        name: "find_and_merge_duplicates",
        title: "Find and merge duplicates",
        description: "Find duplicate records by a field, review them, then merge (update the keeper, delete the rest) with dry_run first.",
        args: &[
            BASE,
            TABLE,
            (
                "field",
                "Field that identifies a duplicate (e.g. Email).",
                true,
            ),
        ],
    },
    Spec {
        name: "summarize_by_month",
        title: "Summarise a table by month",
        description: "Count (and sum a number field) per month of a date field with aggregate_records.",
        args: &[
            BASE,
            TABLE,
            ("field", "Date field to bucket by month.", true),
            ("value_field", "Number field to sum (optional).", false),
        ],
    },
    Spec {
        name: "prepare_import",
        title: "Prepare an import",
        description: "Plan loading CSV, Excel or JSON rows into a table with import_records: check the mapping and types, preview, then apply.",
        args: &[
            BASE,
            TABLE,
            (
                "field",
                "Key field that matches existing records (optional).",
                false,
            ),
        ],
    },
];

/// prompts/list.
pub(crate) fn list() -> ListPromptsResult {
    let prompts = PROMPTS
        .iter()
        .map(|p| {
            let args = p
                .args
                .iter()
                .map(|(n, d, r)| {
                    PromptArgument::new(*n)
                        .with_description(*d)
                        .with_required(*r)
                })
                .collect();
            Prompt::new(p.name, Some(p.description), Some(args)).with_title(p.title)
        })
        .collect();
    // The prompts are fixed for the life of the process.
    ListPromptsResult::with_all_items(prompts)
        .with_ttl_ms(crate::tools::resources::RESOURCE_TTL_MS)
        .with_cache_scope(rmcp::model::CacheScope::Public)
}

fn arg<'a>(args: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    args.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// prompts/get: the prompt's text with its arguments filled in.
pub(crate) fn get(
    name: &str,
    args: Option<&Map<String, Value>>,
) -> Result<GetPromptResult, ErrorData> {
    let spec = PROMPTS.iter().find(|p| p.name == name).ok_or_else(|| {
        let names: Vec<&str> = PROMPTS.iter().map(|p| p.name).collect();
        ErrorData::invalid_params(
            format!("unknown prompt {name:?}; prompts: {}", names.join(", ")),
            None,
        )
    })?;
    let empty = Map::new();
    let args = args.unwrap_or(&empty);
    for (n, _, required) in spec.args {
        if *required && arg(args, n).is_none() {
            return Err(ErrorData::invalid_params(
                format!("prompt {name} needs the argument {n}"),
                None,
            ));
        }
    }
    let base = arg(args, "base_id").unwrap_or_default();
    let table = arg(args, "table_id").unwrap_or_default();
    let field = arg(args, "field");
    let text = match name {
        "explore_base" => format!(
            "Explore the Airtable base {base}.\n\
             1. list_tables(base_id=\"{base}\", detail_level=\"fields\"): name each table, its primary field and what it holds.\n\
             2. For linked-record fields (type multipleRecordLinks), say which tables link to which.\n\
             3. For the 2-3 main tables, get_records(max_records=3, fields=[a few key fields]) to show sample rows.\n\
             4. Summarise: the purpose of the base, its main entities and relations, and questions it can answer. Read only: change nothing."
        ),
        "find_and_merge_duplicates" => {
            let field = field.unwrap_or_default();
            format!(
                "Find and merge duplicate records in table {table} of base {base}, matching on {{{field}}}.\n\
                 1. get_field_info(base_id=\"{base}\", table_id=\"{table}\") to see the fields.\n\
                 2. find_duplicates(base_id=\"{base}\", table_id=\"{table}\", fields=[\"{field}\"]) to list the groups.\n\
                 3. Show me each group (record IDs and differing fields) and propose a keeper per group: the most complete record. Wait for my approval.\n\
                 4. Merge: batch_update_records on the keepers (fill blanks from the others) with dry_run=true, show the preview, then run it.\n\
                 5. batch_delete_records on the other records with dry_run=true, show the preview, then run it.\n\
                 6. Report what changed; list_recent_writes and undo_write take it back if needed."
            )
        }
        "summarize_by_month" => {
            let field = field.unwrap_or_default();
            let metric = match arg(args, "value_field") {
                Some(v) => {
                    format!("metrics=[{{\"op\":\"count\"}}, {{\"op\":\"sum\", \"field\":\"{v}\"}}]")
                }
                None => "metrics=[{\"op\":\"count\"}]".to_owned(),
            };
            format!(
                "Summarise table {table} of base {base} by month of {{{field}}}.\n\
                 1. get_field_info(base_id=\"{base}\", table_id=\"{table}\") to check that {field} is a date field (and the number field, if any).\n\
                 2. aggregate_records(base_id=\"{base}\", table_id=\"{table}\", group_by=[{{\"field\":\"{field}\", \"bucket\":\"month\"}}], {metric}); add filter_by_formula to narrow the period.\n\
                 3. Present a table by month, oldest first, with totals and the notable trends. If the result says the scan was capped (max_scan), say the figures are partial."
            )
        }
        "prepare_import" => {
            let key = match field {
                Some(f) => format!("the key field {{{f}}}"),
                None => "a key field that identifies a record (ask me which)".to_owned(),
            };
            format!(
                "Prepare an import of external rows into table {table} of base {base}, matching existing records on {key}.\n\
                 1. get_field_info(base_id=\"{base}\", table_id=\"{table}\"): list each field's type and, for selects, the allowed choices.\n\
                 2. import_records(base_id=\"{base}\", table_id=\"{table}\", source=my CSV/JSON text or file:NAME, key_fields=[the key field]) with the default dry_run=true: show me the plan (columns mapped and unmapped, rows to create and to update with their differences, rejected rows and why, duplicate keys, requests). Suggest a `mapping` for columns that did not match.\n\
                 3. After my approval, run it again with dry_run=false. It is one journal entry: list_recent_writes and undo_write take the whole import back."
            )
        }
        _ => String::new(),
    };
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description(spec.description),
    )
}

/// completion/complete for `base_id`, `table_id` and `field` (prompt arguments and resource
/// template variables). `context` holds the arguments already chosen. At most 100 values.
pub(crate) async fn complete(
    ctx: &ToolContext,
    argument: &str,
    value: &str,
    context: impl Fn(&str) -> Option<String>,
) -> Result<CompleteResult, ErrorData> {
    let needle = value.trim().to_lowercase();
    let matches = |s: &str| s.to_lowercase().contains(&needle);
    let values: Vec<String> = match argument {
        "base_id" => {
            let Ok(client) = ctx.client() else {
                return Ok(CompleteResult::default());
            };
            match client.list_bases().await {
                Ok(bases) => bases
                    .into_iter()
                    .filter(|b| ctx.base_visible(b.id.as_ref()))
                    .filter(|b| matches(b.id.as_ref()) || matches(&b.name))
                    .map(|b| b.id.to_string())
                    .collect(),
                Err(e) => {
                    let e = ToolError::Api {
                        op: "list bases",
                        base: None,
                        scope: scope::SCHEMA_READ,
                        source: Box::new(e),
                    };
                    tracing::debug!("completion: {}", e.text());
                    Vec::new()
                }
            }
        }
        "table_id" | "field" | "value_field" => {
            let Some(base_id) = context("base_id") else {
                return Ok(CompleteResult::default());
            };
            let Ok(base) = ctx.base(&base_id) else {
                return Ok(CompleteResult::default());
            };
            let Ok(schema) = ctx.schema(&base).await else {
                return Ok(CompleteResult::default());
            };
            if argument == "table_id" {
                (schema.tables.iter())
                    .map(|t| t.name.clone())
                    .filter(|n| matches(n))
                    .collect()
            } else {
                let Some(table) = context("table_id") else {
                    return Ok(CompleteResult::default());
                };
                match resolve_table(&schema, base.as_ref(), &table) {
                    Ok(t) => (t.fields.iter())
                        .map(|f| f.name.clone())
                        .filter(|n| matches(n))
                        .collect(),
                    Err(_) => Vec::new(),
                }
            }
        }
        _ => Vec::new(),
    };
    let total = values.len();
    let page: Vec<String> = values.into_iter().take(100).collect();
    let info = CompletionInfo::with_pagination(page, Some(total as u32), total > 100)
        .map_err(|e| ErrorData::internal_error(e, None))?;
    Ok(CompleteResult::new(info))
}

/// The prompt names (for tests and docs).
#[cfg(test)]
pub(crate) fn names() -> Vec<&'static str> {
    PROMPTS.iter().map(|p| p.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prompt_renders_with_its_required_arguments() {
        for name in names() {
            let mut args = Map::new();
            args.insert("base_id".into(), "appA".into());
            args.insert("table_id".into(), "Tasks".into());
            args.insert("field".into(), "Due".into());
            let r = get(name, Some(&args)).expect("renders");
            let text = serde_json::to_string(&r.messages).expect("json");
            assert!(text.contains("appA"), "{name}: {text}");
        }
        assert!(get("find_and_merge_duplicates", None).is_err());
        assert!(get("nope", None).is_err());
    }
}
