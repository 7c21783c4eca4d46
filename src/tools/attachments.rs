//! Attachments: upload_attachment, get_attachments.
//!
//! upload_attachment appends one file to a record's attachment field: bytes (base64, or a file
//! inside `--export-dir`) up to 5 MB go through Airtable's uploadAttachment (content API); a URL
//! is written as `{url}` next to the existing attachments (kept by `{id}`), and Airtable copies
//! it. It is a write like update_record: dry_run shows the field before -> after, the write is
//! journaled as a record update (undo_write puts the previous list back).
//!
//! get_attachments re-reads the record (Airtable's URLs expire about 2 hours after a read) and
//! can save the files into `--export-dir` (never replacing a file: a taken name gets a
//! " (n)" suffix), each capped in size.

use std::io::Read as _;

use base64::Engine as _;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{Json, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::airtable::{
    Field, FieldType, Fields, MAX_UPLOAD_BYTES, RecordId, Table, UpdateMode, WriteOptions,
};
use crate::tools::ToolError;
use crate::tools::bases::primary_name;
use crate::tools::confirm::ConfirmAsk;
use crate::tools::files::ExportDir;
use crate::tools::handler::AirtableServer;
use crate::tools::journal::{Change, NewWrite};
use crate::tools::params::{lenient_bool, opt_nonempty};
use crate::tools::result::scope;
use crate::tools::validation::{check_field_names, find_field};
use crate::tools::writes::{
    FieldDiff, JournalNote, RecordPreview, WriteControl, WritePreview, primary_label,
};

/// The largest file get_attachments saves.
const MAX_SAVE_BYTES: u64 = 100 * 1024 * 1024;
/// The most attachments one get_attachments result lists.
const MAX_LISTED: usize = 200;

/// Where the file comes from: exactly one of url, content_base64 (with filename) or path.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub(crate) struct Source {
    /// Public URL.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) url: Option<String>,
    /// Base64 bytes.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) content_base64: Option<String>,
    /// File name.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) filename: Option<String>,
    /// MIME type (default: from filename).
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) content_type: Option<String>,
    /// In --export-dir.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) path: Option<String>,
}

/// Parameters of upload_attachment (terse docs: the tools/list size budget).
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct UploadAttachmentParams {
    /// Base ID.
    pub(crate) base_id: String,
    /// Table ID or name.
    pub(crate) table_id: String,
    /// Record ID.
    pub(crate) record_id: String,
    /// Attachment field.
    pub(crate) field: String,
    /// The file.
    pub(crate) source: Source,
    /// Preview only.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) dry_run: bool,
    /// From a dry run.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) confirm_token: Option<String>,
}

/// Parameters of get_attachments.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct GetAttachmentsParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID or name.
    pub(crate) table_id: String,
    /// Record ID (rec...).
    pub(crate) record_id: String,
    /// Attachment field name or ID (default: all).
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) field: Option<String>,
    /// Download the files into --export-dir.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) save: bool,
    /// Saved file name prefix (may name a subdirectory); implies save.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) save_prefix: Option<String>,
}

/// One attachment.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct AttachmentOut {
    /// The attachment field's name.
    pub(crate) field: String,
    /// Attachment ID (att...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    /// File name.
    pub(crate) filename: String,
    /// Download URL (expires about 2 hours after this call).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) url: Option<String>,
    /// Size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) size: Option<u64>,
    /// MIME type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content_type: Option<String>,
    /// Image width in pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) width: Option<u64>,
    /// Image height in pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) height: Option<u64>,
    /// Thumbnail URLs by size (small, large, full), when Airtable made them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) thumbnails: Option<serde_json::Map<String, Value>>,
    /// get_attachments with save: where the file was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) saved_path: Option<String>,
    /// get_attachments with save: why this file was not saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) save_error: Option<String>,
}

impl AttachmentOut {
    fn from(field: &str, a: &Value) -> Self {
        let s = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_owned);
        let n = |k: &str| a.get(k).and_then(Value::as_u64);
        let thumbnails = a.get("thumbnails").and_then(Value::as_object).map(|t| {
            t.iter()
                .filter_map(|(k, v)| v.get("url").map(|u| (k.clone(), u.clone())))
                .collect::<serde_json::Map<String, Value>>()
        });
        AttachmentOut {
            field: field.to_owned(),
            id: s("id"),
            filename: s("filename").unwrap_or_default(),
            url: s("url"),
            size: n("size"),
            content_type: s("type"),
            width: n("width"),
            height: n("height"),
            thumbnails: thumbnails.filter(|t| !t.is_empty()),
            saved_path: None,
            save_error: None,
        }
    }
}

/// Result of upload_attachment.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct UploadOutput {
    /// The attachment added (absent on dry_run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) attachment: Option<AttachmentOut>,
    /// Attachments in the field now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) attachment_count: Option<usize>,
    /// "upload" (sent as bytes to uploadAttachment) or "url" (Airtable copies the URL).
    pub(crate) method: &'static str,
    /// dry_run only: the field before -> after. Nothing was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) preview: Option<WritePreview>,
    #[serde(flatten)]
    pub(crate) journal: JournalNote,
}

/// Result of get_attachments.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct AttachmentsOutput {
    /// The record (rec...).
    pub(crate) record_id: String,
    /// Its attachments, field by field, in cell order.
    pub(crate) attachments: Vec<AttachmentOut>,
    /// True when more attachments exist than listed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) truncated: bool,
    /// Files saved (with save).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) saved: Option<usize>,
    /// About the URLs.
    pub(crate) note: String,
}

fn record_id(s: &str) -> Result<RecordId, ToolError> {
    s.trim().parse::<RecordId>().map_err(|e| {
        let message = format!("{e}. Record IDs come from get_records or search_records.");
        ToolError::invalid_id(e, message)
    })
}

/// The attachment field `name` of `table` (names or IDs; "did you mean" on typos).
fn attachment_field<'a>(table: &'a Table, name: &str) -> Result<&'a Field, ToolError> {
    let name = name.trim().to_owned();
    check_field_names(table, std::iter::once(&name), "field")?;
    let f = find_field(table, &name).ok_or_else(|| {
        ToolError::Invalid(format!("Unknown field {name:?} in table {:?}.", table.name))
    })?;
    if f.field_type != FieldType::MultipleAttachments {
        let atts: Vec<&str> = attachment_fields(table)
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        return Err(ToolError::Invalid(format!(
            "Field {:?} is not an attachment field (it is {}). Attachment fields of {:?}: {}.",
            f.name,
            f.field_type.as_str(),
            table.name,
            if atts.is_empty() {
                "none".to_owned()
            } else {
                atts.join(", ")
            }
        )));
    }
    Ok(f)
}

fn attachment_fields(table: &Table) -> Vec<&Field> {
    table
        .fields
        .iter()
        .filter(|f| f.field_type == FieldType::MultipleAttachments)
        .collect()
}

/// A MIME type given by the caller, checked (`type/subtype`, parameters allowed).
fn checked_content_type(t: &str) -> Result<String, ToolError> {
    let t = t.trim();
    match t.parse::<mime::Mime>() {
        Ok(m) if t.len() <= 255 => Ok(m.to_string()),
        _ => Err(ToolError::Invalid(format!(
            "source.content_type {t:?} is not a MIME type: give type/subtype, e.g. \"application/pdf\", or leave it out to take it from filename."
        ))),
    }
}

/// A MIME type from a file name's extension.
fn guess_type(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "zip" => "application/zip",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        _ => "application/octet-stream",
    }
}

fn too_big(n: usize) -> ToolError {
    ToolError::Invalid(format!(
        "The file has {n} bytes; uploads take at most {MAX_UPLOAD_BYTES} (5 MB). Put the file at a public URL and pass source.url instead (Airtable downloads URLs of any size)."
    ))
}

/// What to write: bytes for uploadAttachment, or a URL.
enum Payload {
    Bytes {
        filename: String,
        content_type: String,
        bytes: Vec<u8>,
    },
    Url {
        url: String,
        filename: Option<String>,
    },
}

impl Payload {
    fn method(&self) -> &'static str {
        match self {
            Payload::Bytes { .. } => "upload",
            Payload::Url { .. } => "url",
        }
    }

    /// The new attachment as a preview shows it.
    fn preview(&self) -> Value {
        match self {
            Payload::Bytes {
                filename,
                content_type,
                bytes,
            } => json!({"filename": filename, "size": bytes.len(), "type": content_type}),
            Payload::Url { url, filename } => match filename {
                Some(f) => json!({"url": url, "filename": f}),
                None => json!({"url": url}),
            },
        }
    }
}

fn payload(server: &AirtableServer, src: Source) -> Result<Payload, ToolError> {
    let given = [
        src.url.is_some(),
        src.content_base64.is_some(),
        src.path.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(ToolError::Invalid(
            "source needs exactly one of url, content_base64 (with filename) or path.".into(),
        ));
    }
    // The type given, else from the name's extension (Airtable's contentType; pyairtable
    // guesses the same way).
    let given_type = match src.content_type.as_deref() {
        Some(_) if src.url.is_some() => {
            return Err(ToolError::Invalid(
                "source.content_type applies to content_base64 and path; Airtable reads the type of a url itself.".into(),
            ));
        }
        Some(t) => Some(checked_content_type(t)?),
        None => None,
    };
    let content_type = |filename: &str| {
        given_type
            .clone()
            .unwrap_or_else(|| guess_type(filename).to_owned())
    };
    if let Some(url) = &src.url {
        let parsed = url::Url::parse(url.trim())
            .map_err(|e| ToolError::Invalid(format!("source.url is not a valid URL ({e}).")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ToolError::Invalid(
                "source.url must be a public http(s) URL.".into(),
            ));
        }
        return Ok(Payload::Url {
            url: parsed.to_string(),
            filename: src.filename.clone(),
        });
    }
    if let Some(b64) = &src.content_base64 {
        let Some(filename) = src.filename.clone() else {
            return Err(ToolError::Invalid(
                "source.filename is required with content_base64 (e.g. report.pdf).".into(),
            ));
        };
        // Tolerate a data: URL prefix and line breaks.
        let body = match b64.split_once(";base64,") {
            Some((head, rest)) if head.starts_with("data:") => rest,
            _ => b64.as_str(),
        };
        let compact: Vec<u8> = body.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if compact.len() / 4 * 3 > MAX_UPLOAD_BYTES + 3 {
            return Err(too_big(compact.len() / 4 * 3));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&compact)
            .map_err(|e| {
                ToolError::Invalid(format!(
                    "source.content_base64 is not valid base64 ({e}): give the file's bytes in standard base64."
                ))
            })?;
        if bytes.len() > MAX_UPLOAD_BYTES {
            return Err(too_big(bytes.len()));
        }
        let content_type = content_type(&filename);
        return Ok(Payload::Bytes {
            filename,
            content_type,
            bytes,
        });
    }
    let path = src.path.clone().unwrap_or_default();
    let dir = ExportDir::from_options(server.options(), "upload_attachment")?;
    let file = dir.open_file(&path)?;
    let mut bytes = Vec::new();
    file.take(MAX_UPLOAD_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ToolError::File {
            message: format!("cannot read {path}: {source}"),
            source,
        })?;
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(too_big(bytes.len()));
    }
    let filename = src.filename.clone().unwrap_or_else(|| {
        std::path::Path::new(&path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".to_owned())
    });
    let content_type = content_type(&filename);
    Ok(Payload::Bytes {
        filename,
        content_type,
        bytes,
    })
}

/// A file name safe to write: no path separators, no control characters, not empty.
fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "attachment".to_owned()
    } else {
        cleaned
    }
}

/// `base` with " (n)" before its extension.
fn numbered(base: &str, n: usize) -> String {
    if n == 0 {
        return base.to_owned();
    }
    let (dir, file) = match base.rsplit_once('/') {
        Some((d, f)) => (format!("{d}/"), f),
        None => (String::new(), base),
    };
    match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{dir}{stem} ({n}).{ext}"),
        _ => format!("{dir}{file} ({n})"),
    }
}

/// Write `bytes` under `name` in the export directory, never replacing a file.
fn save_new(dir: &ExportDir, name: &str, bytes: &[u8]) -> Result<String, ToolError> {
    for n in 0..1000 {
        let candidate = numbered(name, n);
        if dir.target(&candidate)?.exists {
            continue;
        }
        match dir.create(&candidate, bytes, false) {
            Ok(p) => return Ok(p.display().to_string()),
            // Taken between the check and the write: try the next name.
            Err(ToolError::Invalid(m)) if m.contains("already exists") => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ToolError::Invalid(format!(
        "{name}: too many files of that name already; choose another save_prefix."
    )))
}

#[tool_router(router = attachments_router, vis = "pub(crate)")]
impl AirtableServer {
    #[tool(
        name = "upload_attachment",
        title = "Upload attachment",
        description = "Add a file to an attachment field. source: url, content_base64+filename, or path in --export-dir (max 5 MB; larger by url). undo_write reverts.",
        annotations(
            title = "Upload attachment",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub(crate) async fn upload_attachment(
        &self,
        Parameters(p): Parameters<UploadAttachmentParams>,
        rc: RequestContext<RoleServer>,
    ) -> Result<Json<UploadOutput>, ToolError> {
        self.ctx.require_write("upload_attachment")?;
        let control = WriteControl {
            dry_run: p.dry_run,
            confirm_token: p.confirm_token.clone(),
        };
        let ctx = self.ctx.table_ctx(&p.base_id, &p.table_id).await?;
        let table = ctx.table();
        let rec = record_id(&p.record_id)?;
        let (field_name, field_ref) = match table {
            Some(t) => {
                let f = attachment_field(t, &p.field)?;
                (f.name.clone(), f.id.to_string())
            }
            None => (p.field.trim().to_owned(), p.field.trim().to_owned()),
        };
        let payload = payload(self, p.source)?;
        let table_name = table.map_or_else(|| ctx.table_ref.clone(), |t| t.name.clone());
        let mut read = vec![field_name.clone()];
        read.extend(table.and_then(primary_name));
        let record = self.ctx.fetch_record(&ctx, &rec, Some(&read)).await?;
        let before_list: Vec<Value> = record
            .fields
            .get(&field_name)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let label = primary_label(table, &record.fields);
        let mut after_list = before_list.clone();
        after_list.push(payload.preview());
        let ask = ConfirmAsk {
            tool: "upload_attachment",
            summary: format!(
                "Attach a file to {field_name} of record {rec} in {table_name} ({} -> {} attachments)",
                before_list.len(),
                after_list.len()
            ),
            count: 1,
            sample: vec![label.clone().unwrap_or_else(|| rec.to_string())],
            reason: None,
        };
        if control.dry_run {
            let preview = WritePreview {
                dry_run: true,
                summary: ask.summary.clone(),
                record_count: 1,
                records: vec![RecordPreview {
                    action: "update",
                    id: Some(rec.to_string()),
                    label,
                    changes: vec![FieldDiff {
                        field: field_name.clone(),
                        before: Value::Array(before_list),
                        after: Value::Array(after_list),
                    }],
                    fields: None,
                }],
                unchanged: 0,
                truncated: false,
                confirm_token: self.ctx.confirm_token(&rc, &ask),
                note: "Nothing was sent. Call again without dry_run to attach the file.".to_owned(),
            };
            return Ok(Json(UploadOutput {
                attachment: None,
                attachment_count: None,
                method: payload.method(),
                preview: Some(preview),
                journal: JournalNote::default(),
            }));
        }
        self.ctx.confirm(&rc, &control, ask).await?;
        let method = payload.method();
        let client = self.ctx.client()?;
        let new_list: Vec<Value> = match payload {
            Payload::Bytes {
                filename,
                content_type,
                bytes,
            } => {
                let r = client
                    .upload_attachment(
                        &ctx.base,
                        &rec,
                        &field_ref,
                        &content_type,
                        &filename,
                        &bytes,
                    )
                    .await
                    .map_err(|e| {
                        ToolError::api(
                            "upload the attachment",
                            ctx.base.as_ref(),
                            scope::RECORDS_WRITE,
                            e,
                        )
                    })?;
                // Keyed by field ID; the answer holds only that field.
                r.fields
                    .get(&field_ref)
                    .or_else(|| r.fields.values().next())
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            }
            Payload::Url { url, filename } => {
                let mut cell: Vec<Value> = before_list
                    .iter()
                    .filter_map(|a| a.get("id").map(|id| json!({ "id": id })))
                    .collect();
                cell.push(match filename {
                    Some(f) => json!({"url": url, "filename": f}),
                    None => json!({ "url": url }),
                });
                let mut fields = Fields::new();
                fields.insert(field_name.clone(), Value::Array(cell));
                let r = client
                    .update_record(
                        &ctx.base,
                        &ctx.table_ref,
                        &rec,
                        fields,
                        UpdateMode::Patch,
                        &WriteOptions::default(),
                    )
                    .await
                    .map_err(|e| {
                        ToolError::api("attach the URL", ctx.base.as_ref(), scope::RECORDS_WRITE, e)
                    })?;
                r.fields
                    .get(&field_name)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            }
        };
        let mut before = Fields::new();
        if !before_list.is_empty() {
            before.insert(field_name.clone(), Value::Array(before_list));
        }
        let mut after = Fields::new();
        after.insert(field_name.clone(), Value::Array(new_list.clone()));
        let journal = self
            .ctx
            .journal_write(NewWrite {
                tool: "upload_attachment".to_owned(),
                base_id: ctx.base.to_string(),
                table_id: Some(ctx.table_ref.clone()),
                table_name: Some(table_name.clone()),
                summary: format!("attached a file to {field_name} of record {rec} in {table_name}"),
                changes: vec![Change::RecordUpdated {
                    table_id: ctx.table_ref.clone(),
                    record_id: rec.to_string(),
                    before,
                    after,
                }],
                complete: true,
                undo_of: None,
                resume: None,
            })
            .await;
        Ok(Json(UploadOutput {
            attachment: new_list.last().map(|a| AttachmentOut::from(&field_name, a)),
            attachment_count: Some(new_list.len()),
            method,
            preview: None,
            journal,
        }))
    }

    #[tool(
        name = "get_attachments",
        title = "Get attachments",
        description = "A record's attachments with fresh URLs (valid ~2 h), file name, size, type, image size, thumbnails. save=true (or save_prefix) downloads them into --export-dir (never replacing a file) and returns saved_path.",
        annotations(
            title = "Get attachments",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn get_attachments(
        &self,
        Parameters(p): Parameters<GetAttachmentsParams>,
    ) -> Result<Json<AttachmentsOutput>, ToolError> {
        let ctx = self.ctx.table_ctx(&p.base_id, &p.table_id).await?;
        let table = ctx.table();
        let rec = record_id(&p.record_id)?;
        let save = p.save || p.save_prefix.is_some();
        // Check the destination before reading anything.
        let dir = if save {
            let d = ExportDir::from_options(self.options(), "get_attachments")?;
            if self.options().read_only {
                return Err(ToolError::Invalid(
                    "this server runs read-only (--read-only), so it writes no file. Leave out save to get the URLs.".into(),
                ));
            }
            Some(d)
        } else {
            None
        };
        let fields: Vec<String> = match (table, &p.field) {
            (Some(t), Some(f)) => vec![attachment_field(t, f)?.name.clone()],
            (Some(t), None) => attachment_fields(t)
                .iter()
                .map(|f| f.name.clone())
                .collect(),
            (None, Some(f)) => vec![f.trim().to_owned()],
            (None, None) => Vec::new(),
        };
        if table.is_some() && fields.is_empty() {
            return Err(ToolError::Invalid(format!(
                "Table {} has no attachment field.",
                ctx.table_ref
            )));
        }
        let record = self
            .ctx
            .fetch_record(
                &ctx,
                &rec,
                (!fields.is_empty()).then_some(fields.as_slice()),
            )
            .await?;
        let mut attachments = Vec::new();
        let mut total = 0usize;
        for (name, v) in &record.fields {
            if !fields.is_empty() && !fields.contains(name) {
                continue;
            }
            let Some(items) = v.as_array() else { continue };
            // Without a schema, keep only values that look like attachments.
            for a in items.iter().filter(|a| a.get("url").is_some()) {
                total += 1;
                if attachments.len() < MAX_LISTED {
                    attachments.push(AttachmentOut::from(name, a));
                }
            }
        }
        let truncated = total > attachments.len();
        let mut saved = None;
        if let Some(dir) = &dir {
            let client = self.ctx.client()?;
            let prefix = p.save_prefix.clone().unwrap_or_default();
            let mut n = 0;
            for a in &mut attachments {
                let Some(url) = a.url.clone() else {
                    a.save_error = Some("no URL".into());
                    continue;
                };
                match client.download(&url, MAX_SAVE_BYTES).await {
                    Ok(d) => {
                        let name = format!("{prefix}{}", safe_name(&a.filename));
                        match save_new(dir, &name, &d.bytes) {
                            Ok(path) => {
                                a.saved_path = Some(path);
                                n += 1;
                            }
                            Err(e) => a.save_error = Some(e.to_string()),
                        }
                    }
                    Err(e) => a.save_error = Some(format!("{e}. {}", e.hint())),
                }
            }
            saved = Some(n);
        }
        Ok(Json(AttachmentsOutput {
            record_id: rec.to_string(),
            attachments,
            truncated,
            saved,
            note: "URLs expire about 2 hours after this call: call again for fresh ones; save the files to keep them.".to_owned(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_numbered_before_the_extension() {
        assert_eq!(numbered("a.pdf", 0), "a.pdf");
        assert_eq!(numbered("a.pdf", 2), "a (2).pdf");
        assert_eq!(numbered("dir.x/a", 1), "dir.x/a (1)");
        assert_eq!(numbered(".hidden", 1), ".hidden (1)");
        assert_eq!(safe_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_name(""), "attachment");
        assert_eq!(guess_type("A.PNG"), "image/png");
        assert_eq!(guess_type("noext"), "application/octet-stream");
    }
}
