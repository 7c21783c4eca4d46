//! Importing CSV, Excel and JSON into a table (issue #14): [`source`] reads the bytes into a
//! sheet, [`mapping`] maps columns to fields and converts rows with [`convert`]. Pure: no MCP,
//! no HTTP.

pub(crate) mod convert;
pub(crate) mod mapping;
pub(crate) mod source;

/// Why a source could not be imported at all (a bad value is a [`mapping::Rejection`] instead).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Over a stated limit.
    #[error("{0}")]
    TooLarge(String),
    /// Unknown or unsuitable format, missing sheet, wrong JSON shape.
    #[error("{0}")]
    Format(String),
    /// Columns and fields do not fit.
    #[error("{0}")]
    Mapping(String),
    /// Malformed CSV.
    #[error("the CSV could not be read: {0}")]
    Csv(#[source] csv::Error),
    /// An unreadable workbook.
    #[error("the Excel workbook could not be read: {0}")]
    Excel(#[source] calamine::XlsxError),
    /// Malformed JSON (row 0: the whole document).
    #[error("the JSON (row {row}) could not be read: {source}")]
    Json {
        row: usize,
        #[source]
        source: serde_json::Error,
    },
}

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::airtable::{FieldType, Fields, ListQuery, UpsertRecord};
use crate::tools::ToolError;
use crate::tools::batch::{BatchWrite, JournalPlan};
use crate::tools::confirm::ConfirmAsk;
use crate::tools::context::PageReport;
use crate::tools::files::ExportDir;
use crate::tools::handler::AirtableServer;
use crate::tools::params::{lenient_bool, lenient_opt_strings, opt_nonempty};
use crate::tools::progress::Progress;
use crate::tools::validation;
use crate::tools::writes::{FieldDiff, WriteControl, diff_fields};

use convert::{Links, normalise};
use mapping::{Rejection, convert_rows, map_columns};
use source::{Format, MAX_BYTES};

fn default_true() -> bool {
    true
}

/// Parameters of import_records.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ImportParams {
    /// Base ID.
    pub(crate) base_id: String,
    /// Table ID or name.
    pub(crate) table_id: String,
    /// CSV/JSON text, http(s) URL, or file:NAME (export dir).
    pub(crate) source: String,
    /// csv, xlsx, json or jsonl.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) format: Option<String>,
    /// Column -> field ("" skips).
    #[serde(default)]
    pub(crate) mapping: BTreeMap<String, String>,
    /// Upsert keys.
    #[serde(default, deserialize_with = "lenient_opt_strings")]
    pub(crate) key_fields: Option<Vec<String>>,
    /// Create missing select options.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) typecast: bool,
    /// Excel sheet name or number.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) sheet: Option<String>,
    /// Default true: plan only.
    #[serde(default = "default_true", deserialize_with = "lenient_bool")]
    pub(crate) dry_run: bool,
    /// From the dry run, if asked.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) confirm_token: Option<String>,
}

/// A row planned as an update.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct PlannedUpdate {
    /// Source row.
    pub(crate) row: usize,
    /// Record ID.
    pub(crate) id: String,
    /// Fields that change.
    pub(crate) changes: Vec<FieldDiff>,
}

/// A source row written.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct WrittenRow {
    /// Source row.
    pub(crate) row: usize,
    /// Record ID.
    pub(crate) id: String,
}

/// Result of import_records.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ImportResult {
    /// True when nothing was sent.
    pub(crate) dry_run: bool,
    /// Columns of the source.
    pub(crate) columns: Vec<String>,
    /// Column -> field used.
    pub(crate) mapped: BTreeMap<String, String>,
    /// Columns imported nowhere.
    pub(crate) unmapped_columns: Vec<String>,
    /// Writable fields no column fills.
    pub(crate) unfilled_fields: Vec<String>,
    /// Data rows read (empty rows excluded).
    pub(crate) rows: usize,
    /// Empty rows skipped.
    pub(crate) empty_rows: usize,
    /// Rows that create a record.
    pub(crate) to_create: usize,
    /// Rows that change an existing record.
    pub(crate) to_update: usize,
    /// Rows equal to their record already.
    pub(crate) unchanged: usize,
    /// Values that failed (their rows are not written).
    pub(crate) rejected: Vec<Rejection>,
    /// Rows repeating an earlier row's key (not written).
    pub(crate) duplicate_keys: Vec<Rejection>,
    /// First planned updates with per-field differences.
    pub(crate) updates: Vec<PlannedUpdate>,
    /// Airtable requests the write costs (10 records each).
    pub(crate) write_requests: usize,
    /// Rows written -> record IDs (apply).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) written: Vec<WrittenRow>,
    /// Rows not written (apply, partial failure).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) not_written: Vec<usize>,
    /// Detected CSV delimiter and encoding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) detected: Option<String>,
    /// confirm_token to apply, when the server asks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) confirm_token: Option<String>,
    /// The batch write's own result (apply): complete, failed, journal entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) write: Option<Value>,
    /// What happened and what to do next.
    pub(crate) note: String,
}

/// Most planned updates listed in a result.
const MAX_LISTED: usize = 20;

/// Download `url` (no Airtable token), at most [`MAX_BYTES`].
async fn download(url: &str) -> Result<Vec<u8>, ToolError> {
    let bad = |e: reqwest::Error| ToolError::Invalid(format!("could not download {url}: {e}"));
    let mut resp = reqwest::get(url).await.map_err(bad)?;
    if !resp.status().is_success() {
        return Err(ToolError::Invalid(format!(
            "downloading {url} answered HTTP {}",
            resp.status()
        )));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(bad)? {
        out.extend_from_slice(&chunk);
        if out.len() > MAX_BYTES {
            return Err(ImportError::TooLarge(format!("{url} is over {MAX_BYTES} bytes")).into());
        }
    }
    Ok(out)
}

#[tool_router(router = import_router, vis = "pub(crate)")]
impl AirtableServer {
    #[tool(
        name = "import_records",
        title = "Import records (CSV, Excel, JSON)",
        description = "Import CSV, .xlsx or JSON rows; columns match fields by name. dry_run (default) returns the plan: creates, updates with diffs, rejected values by row and column, duplicate keys. key_fields upserts. Undoable. Max 50 MB, 100000 rows.",
        annotations(
            title = "Import records (CSV, Excel, JSON)",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub(crate) async fn import_records(
        &self,
        Parameters(p): Parameters<ImportParams>,
        rc: RequestContext<RoleServer>,
    ) -> Result<rmcp::Json<ImportResult>, ToolError> {
        if !p.dry_run {
            self.ctx.require_write("import_records")?;
        }
        let loaded = self.load_source(&p).await?;
        self.import(p, loaded, Some(&rc)).await.map(rmcp::Json)
    }
}

impl AirtableServer {
    /// The source's bytes and a name to guess the format from.
    async fn load_source(&self, p: &ImportParams) -> Result<(Vec<u8>, Option<String>), ToolError> {
        let src = p.source.trim_start();
        let (bytes, name) = if src.starts_with("https://") || src.starts_with("http://") {
            (download(src.trim()).await?, Some(src.trim().to_owned()))
        } else if let Some(path) = src.strip_prefix("file:") {
            let dir = ExportDir::from_options(self.options(), "import_records")?;
            let file = dir.open_file(path.trim())?;
            let mut buf = Vec::new();
            file.take(MAX_BYTES as u64 + 1)
                .read_to_end(&mut buf)
                .map_err(|e| ToolError::File {
                    message: format!("could not read {path}"),
                    source: e,
                })?;
            (buf, Some(path.trim().to_owned()))
        } else {
            (p.source.clone().into_bytes(), None)
        };
        Ok((bytes, name))
    }

    /// Plan, and unless `p.dry_run` apply, an import of `bytes`. `rc`: the MCP request
    /// (progress, confirmation); None from the CLI, where --apply is the consent.
    async fn import(
        &self,
        p: ImportParams,
        (bytes, name): (Vec<u8>, Option<String>),
        rc: Option<&RequestContext<RoleServer>>,
    ) -> Result<ImportResult, ToolError> {
        let base = self.ctx.base(&p.base_id)?;
        let format = match &p.format {
            Some(f) => Format::parse(f)?,
            None => name
                .as_deref()
                .and_then(Format::from_name)
                .unwrap_or_else(|| Format::sniff(&bytes)),
        };
        let sheet = source::parse(&bytes, format, p.sheet.as_deref())?;
        drop(bytes);
        let schema = self.ctx.schema(&base).await?;
        let table = validation::resolve_table(&schema, base.as_ref(), &p.table_id)?;
        let mapping = map_columns(&sheet.columns, table, &p.mapping)?;
        let keys: Vec<String> = match &p.key_fields {
            Some(k) if !k.is_empty() => {
                let mut out = Vec::new();
                for name in k {
                    let f = table.field(name).ok_or_else(|| {
                        ToolError::Invalid(format!(
                            "key field {name:?} is not a field of {}.",
                            table.name
                        ))
                    })?;
                    if !mapping.pairs.iter().any(|(_, g)| g.id == f.id) {
                        return Err(ToolError::Invalid(format!(
                            "key field {} is filled by no column.",
                            f.name
                        )));
                    }
                    out.push(f.name.clone());
                }
                out
            }
            _ => Vec::new(),
        };
        let progress = rc.map_or_else(Progress::disabled, Progress::new);
        // Linked records by primary-field text: one read per linked table.
        let mut links = Links::default();
        for (_, f) in &mapping.pairs {
            if f.field_type != FieldType::MultipleRecordLinks {
                continue;
            }
            let Some(linked) = f
                .options
                .as_ref()
                .and_then(|o| o.get("linkedTableId"))
                .and_then(Value::as_str)
                .and_then(|id| schema.tables.iter().find(|t| t.id == id))
            else {
                continue;
            };
            let Some(primary) = linked.primary_field() else {
                continue;
            };
            let read = self
                .ctx
                .read_records(
                    &base,
                    linked.id.as_ref(),
                    ListQuery {
                        fields: vec![primary.name.clone()],
                        ..ListQuery::default()
                    },
                    source::MAX_ROWS,
                    PageReport::every_page(&progress, "import_records"),
                )
                .await?;
            let mut map: HashMap<String, Vec<String>> = HashMap::new();
            for r in read.records {
                if let Some(v) = r.fields.get(&primary.name) {
                    let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    map.entry(normalise(&text))
                        .or_default()
                        .push(r.id.to_string());
                }
            }
            links.by_field.insert(f.name.clone(), map);
        }
        let conv = convert_rows(&sheet, &mapping, &keys, p.typecast, &links);
        // Existing records by key (upserts): the planned updates and their before-images.
        let mut existing: HashMap<String, (String, Fields)> = HashMap::new();
        if !keys.is_empty() {
            let read = self
                .ctx
                .read_records(
                    &base,
                    table.id.as_ref(),
                    ListQuery {
                        fields: mapping.pairs.iter().map(|(_, f)| f.name.clone()).collect(),
                        ..ListQuery::default()
                    },
                    source::MAX_ROWS,
                    PageReport::every_page(&progress, "import_records"),
                )
                .await?;
            for r in read.records {
                let key = key_of(&r.fields, &keys);
                if let Some(k) = key {
                    existing.entry(k).or_insert((r.id.to_string(), r.fields));
                }
            }
        }
        let mut result = ImportResult {
            dry_run: p.dry_run,
            columns: sheet.columns.clone(),
            mapped: mapping
                .pairs
                .iter()
                .map(|(i, f)| (sheet.columns[*i].clone(), f.name.clone()))
                .collect(),
            unmapped_columns: mapping.unmapped_columns.clone(),
            unfilled_fields: mapping.unfilled_fields.clone(),
            rows: sheet.rows.len(),
            empty_rows: sheet.empty_rows,
            to_create: 0,
            to_update: 0,
            unchanged: 0,
            rejected: conv.rejected,
            duplicate_keys: conv.duplicate_keys,
            updates: Vec::new(),
            write_requests: 0,
            written: Vec::new(),
            not_written: Vec::new(),
            detected: sheet.detected.clone(),
            confirm_token: None,
            write: None,
            note: String::new(),
        };
        // What is sent: every create; updates only when something changes.
        let mut send: Vec<(usize, Fields)> = Vec::new();
        let mut befores: Vec<Option<Fields>> = Vec::new();
        for (row, fields) in conv.records {
            match key_of(&fields, &keys).and_then(|k| existing.get(&k)) {
                Some((id, cur)) => {
                    let changes = diff_fields(cur, &fields);
                    if changes.is_empty() {
                        result.unchanged += 1;
                        continue;
                    }
                    result.to_update += 1;
                    if result.updates.len() < MAX_LISTED {
                        result.updates.push(PlannedUpdate {
                            row,
                            id: id.clone(),
                            changes,
                        });
                    }
                    befores.push(Some(
                        fields
                            .keys()
                            .filter_map(|k| cur.get(k).map(|v| (k.clone(), v.clone())))
                            .collect(),
                    ));
                }
                None => {
                    result.to_create += 1;
                    befores.push(None);
                }
            }
            send.push((row, fields));
        }
        result.write_requests = send.len().div_ceil(10);
        let table_name = table.name.clone();
        let ask = ConfirmAsk {
            tool: "import_records",
            summary: format!(
                "Import into {table_name}: {} created, {} updated",
                result.to_create, result.to_update
            ),
            count: send.len(),
            sample: send
                .iter()
                .take(5)
                .map(|(r, _)| format!("row {r}"))
                .collect(),
            reason: None,
        };
        if p.dry_run {
            result.confirm_token = rc.and_then(|rc| self.ctx.confirm_token(rc, &ask));
            result.note = format!(
                "Nothing was sent. Call again with dry_run=false to write {} rows in {} requests; rejected rows are not written.",
                send.len(),
                result.write_requests
            );
            return Ok(result);
        }
        let control = WriteControl {
            dry_run: false,
            confirm_token: p.confirm_token.clone(),
        };
        if let Some(rc) = rc {
            self.ctx.confirm(rc, &control, ask).await?;
        }
        if send.is_empty() {
            result.note = "Nothing to write.".into();
            return Ok(result);
        }
        let rows: Vec<usize> = send.iter().map(|(r, _)| *r).collect();
        let records: Vec<Fields> = send.into_iter().map(|(_, f)| f).collect();
        // A re-run is exact by key, or (key-less) by resuming from the write journal.
        let resumable = !keys.is_empty() || matches!(self.ctx.journal(), Ok(Some(_)));
        let outcome = if keys.is_empty() {
            self.ctx
                .resumable_create(
                    &base,
                    table.id.as_ref(),
                    records,
                    p.typecast,
                    progress,
                    JournalPlan {
                        tool: "import_records",
                        table_name,
                        ..JournalPlan::default()
                    },
                )
                .await?
        } else {
            let plan = JournalPlan {
                tool: "import_records",
                table_name,
                names: records
                    .iter()
                    .map(|f| f.keys().cloned().collect())
                    .collect(),
                befores,
            };
            let records = records
                .into_iter()
                .map(|fields| UpsertRecord { id: None, fields })
                .collect();
            self.ctx
                .batch_tool(
                    &base,
                    table.id.as_ref(),
                    BatchWrite::Upsert {
                        records,
                        merge_on: keys.clone(),
                    },
                    p.typecast,
                    progress,
                    plan,
                )
                .await?
        };
        absorb(&mut result, &rows, outcome, resumable);
        Ok(result)
    }

    /// `airtable-mcp import`: import a local file's bytes (`name` guesses the format). Dry run
    /// unless `apply`. Returns the import_records result as JSON.
    #[allow(clippy::too_many_arguments)]
    pub async fn import_file(
        &self,
        bytes: Vec<u8>,
        name: &str,
        base_id: &str,
        table_id: &str,
        format: Option<String>,
        sheet: Option<String>,
        key_fields: Vec<String>,
        mapping: BTreeMap<String, String>,
        typecast: bool,
        apply: bool,
    ) -> Result<Value, ToolError> {
        if apply {
            self.ctx.require_write("import_records")?;
        }
        let p = ImportParams {
            base_id: base_id.to_owned(),
            table_id: table_id.to_owned(),
            source: String::new(),
            format,
            mapping,
            key_fields: Some(key_fields),
            typecast,
            sheet,
            dry_run: !apply,
            confirm_token: None,
        };
        let r = self.import(p, (bytes, Some(name.to_owned())), None).await?;
        serde_json::to_value(r).map_err(ToolError::Render)
    }
}

/// The key of a record's fields (normalised like [`convert_rows`] does).
fn key_of(fields: &Fields, keys: &[String]) -> Option<String> {
    if keys.is_empty() {
        return None;
    }
    let parts: Option<Vec<String>> = keys
        .iter()
        .map(|k| fields.get(k).map(|v| normalise(&v.to_string())))
        .collect();
    parts.map(|p| p.join("\u{1f}"))
}

/// Fold a batch write's result into the import's: row numbers to record IDs (`resumable`:
/// the same import again finishes without duplicates).
fn absorb(result: &mut ImportResult, rows: &[usize], outcome: CallToolResult, resumable: bool) {
    let out = outcome.structured_content.unwrap_or(Value::Null);
    let ids: Vec<String> = out
        .get("written_ids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    result.written = rows
        .iter()
        .zip(&ids)
        .map(|(row, id)| WrittenRow {
            row: *row,
            id: id.clone(),
        })
        .collect();
    result.not_written = rows.iter().skip(ids.len()).copied().collect();
    result.note = if result.not_written.is_empty() {
        format!(
            "{} rows written; undo_write takes the whole import back.",
            ids.len()
        )
    } else if resumable {
        format!(
            "{} rows written, {} not (see not_written and write.failed). Run the same import again to resume without duplicates.",
            ids.len(),
            result.not_written.len()
        )
    } else {
        format!(
            "{} rows written, {} not (see not_written and write.failed). Without the write journal (--no-journal) a key-less import cannot resume: running it again would create the written rows twice. Import only the rows in not_written, or give key_fields.",
            ids.len(),
            result.not_written.len()
        )
    };
    let mut w = out;
    if let Value::Object(m) = &mut w {
        m.remove("written_ids");
        m.remove("created_ids");
        m.remove("updated_ids");
    }
    result.write = Some(w);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod error_tests {
    use super::*;

    #[test]
    fn an_import_error_keeps_its_source_through_tool_error() {
        let json = serde_json::from_str::<Value>("{").unwrap_err();
        let e: ToolError = ImportError::Json {
            row: 0,
            source: json,
        }
        .into();
        assert!(
            matches!(e, ToolError::Import(ImportError::Json { .. })),
            "{e:?}"
        );
        let inner = std::error::Error::source(&e).expect("the ImportError");
        assert!(
            std::error::Error::source(inner).is_some(),
            "the serde error"
        );
        assert!(e.text().starts_with("the JSON (row 0) could not be read"));
        assert!(e.text().ends_with('.'));
    }
}
