//! Output shaping and the tools layer's error type.
//!
//! - Results are `Json<T>`: structured content with an outputSchema, plus a text copy that
//!   rmcp renders as compact JSON (never pretty-printed).
//! - Lists of records go through [`fit_to_budget`]: a result over the byte budget is cut to
//!   fewer records and says so (`truncated: true` and a `note` on how to get the rest).
//! - Failures are [`ToolError`]s, rendered as `isError` results whose text names the cause and
//!   the fix. Only bugs become protocol errors.

use rmcp::model::{CallToolResult, ContentBlock, IntoContents};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::airtable::{self, ApiErrorKind};

/// Default byte budget for the JSON of one result (the text copy doubles it on the wire).
pub(crate) const DEFAULT_RESULT_BUDGET: usize = 80_000;

/// A record as tools return it: ID and fields (names as keys; empty fields are omitted by
/// Airtable).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct OutRecord {
    /// Record ID (rec...).
    pub(crate) id: String,
    /// When the record was created (ISO 8601), only where asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) created_time: Option<String>,
    /// Cell values by field name. Empty cells are absent.
    pub(crate) fields: Map<String, Value>,
}

impl OutRecord {
    /// With the creation time.
    pub(crate) fn full(r: airtable::Record) -> Self {
        OutRecord {
            id: r.id.to_string(),
            created_time: Some(r.created_time),
            fields: r.fields,
        }
    }
}

/// A structured tool result with its compact JSON text, as `CallToolResult::structured` makes
/// it, but serialised straight into a byte buffer: rmcp's `Value::to_string` goes through
/// `fmt::Display`, a formatter call for every token.
pub(crate) fn structured_result(value: Value) -> CallToolResult {
    let text = serde_json::to_string(&value).unwrap_or_else(|_| value.to_string());
    structured_result_with_text(value, text)
}

/// A structured tool result whose text, the compact JSON of `value`, the caller already has.
pub(crate) fn structured_result_with_text(value: Value, text: String) -> CallToolResult {
    let mut result = CallToolResult::structured(Value::Null);
    result.content = vec![ContentBlock::text(text)];
    result.structured_content = Some(value);
    result
}

/// The one key of the stand-in structured content of a result whose structured content is its
/// text parsed ([`text_structured_result`]); a macro so that [`structured_stand_in_json`] is
/// built from it.
macro_rules! structured_is_text {
    () => {
        "airtable-mcp:structured-content-is-the-text"
    };
}
const STRUCTURED_IS_TEXT: &str = structured_is_text!();

/// A structured tool result known by its compact JSON text only (a JSON object): the
/// structured content is a stand-in, `{"airtable-mcp:structured-content-is-the-text":true}`
/// (an object, so that rmcp keeps it for every protocol era), until it is written:
/// - the stdio writer copies the text in its place, so that the result is serialised once and
///   no JSON tree of it is ever built (`server::stdio::encode`);
/// - every other way out fills it in first ([`fill_structured_content`], in
///   `AirtableServer::call_tool`, unless the transport asked for the stand-in).
pub fn text_structured_result(text: String) -> CallToolResult {
    let mut stand_in = Map::with_capacity(1);
    stand_in.insert(STRUCTURED_IS_TEXT.to_owned(), Value::Bool(true));
    structured_result_with_text(Value::Object(stand_in), text)
}

/// The JSON text a result's structured content stands for: `Some` when the structured content
/// is the stand-in of [`text_structured_result`] and the first content block is text.
pub fn structured_text(result: &CallToolResult) -> Option<&str> {
    let Some(Value::Object(m)) = &result.structured_content else {
        return None;
    };
    if m.len() != 1 || m.get(STRUCTURED_IS_TEXT) != Some(&Value::Bool(true)) {
        return None;
    }
    match result.content.first() {
        Some(ContentBlock::Text(t)) => Some(t.text.as_str()),
        _ => None,
    }
}

/// The bytes the stand-in structured content serialises to, key included, as found in a
/// serialised result (`"structuredContent":{...}`).
pub fn structured_stand_in_json() -> &'static str {
    concat!(
        "\"structuredContent\":{\"",
        structured_is_text!(),
        "\":true}"
    )
}

/// Replace a stand-in structured content ([`text_structured_result`]) by its text parsed.
/// Anything else is left as it is. Text that does not parse (which the tools never write)
/// leaves no structured content rather than a wrong one.
pub fn fill_structured_content(result: &mut CallToolResult) {
    let Some(text) = structured_text(result) else {
        return;
    };
    match serde_json::from_str::<Value>(text) {
        Ok(v) => result.structured_content = Some(v),
        Err(e) => {
            tracing::error!(error = %e, "a tool's JSON text does not parse; structured content left out");
            result.structured_content = None;
        }
    }
}

/// Counts the bytes written to it (measures JSON without building it).
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The length of `v`'s compact JSON, without allocating it.
pub(crate) fn json_len<T: Serialize + ?Sized>(v: &T) -> usize {
    let mut count = ByteCount(0);
    match serde_json::to_writer(&mut count, v) {
        Ok(()) => count.0,
        Err(_) => 0,
    }
}

/// How many of `items` fit in `budget`: the longest prefix whose sizes (`size` measures the
/// item at an index) add up to at most `budget`, and at least one item so that progress is
/// possible. `size` is called in order, and not past the first item that does not fit.
fn fitting<T>(items: &[T], budget: usize, mut size: impl FnMut(usize, &T) -> usize) -> usize {
    let mut used = 0usize;
    for (i, item) in items.iter().enumerate() {
        let s = size(i, item);
        if i > 0 && used + s > budget {
            return i;
        }
        used += s;
    }
    items.len()
}

/// Keep the longest prefix of `items` whose compact JSON fits in `budget` bytes (at least one
/// item is always kept so that progress is possible). Returns the kept items and how many were
/// cut.
pub(crate) fn fit_to_budget<T: Serialize>(mut items: Vec<T>, budget: usize) -> (Vec<T>, usize) {
    // Each item's JSON and one separator.
    let keep = fitting(&items, budget, |_, item| json_len(item) + 1);
    let cut = items.len() - keep;
    items.truncate(keep);
    (items, cut)
}

/// [`fit_to_budget`] that also renders the kept items, as the JSON array they make: each item
/// is serialised once, into the text that is measured (rather than measured, then serialised
/// again for the result's text). The text is None if an item cannot be serialised (not
/// expected of JSON values); the items are then measured as `fit_to_budget` does.
pub(crate) fn fit_to_budget_rendered<T: Serialize>(
    mut items: Vec<T>,
    budget: usize,
) -> (Vec<T>, usize, Option<String>) {
    let mut text = Vec::with_capacity(budget.min(1 << 16));
    text.push(b'[');
    // Where the last item measured starts (its separator included).
    let mut mark = text.len();
    let mut failed = false;
    let keep = fitting(&items, budget, |i, item| {
        mark = text.len();
        if i > 0 {
            text.push(b',');
        }
        let start = text.len();
        failed |= serde_json::to_writer(&mut text, item).is_err();
        // The same measure as fit_to_budget: the item's JSON and one separator.
        text.len() - start + 1
    });
    if failed {
        let (items, cut) = fit_to_budget(items, budget);
        return (items, cut, None);
    }
    if keep < items.len() {
        // The first item that did not fit was the last one written.
        text.truncate(mark);
    }
    text.push(b']');
    let cut = items.len() - keep;
    items.truncate(keep);
    // serde_json writes UTF-8 only.
    (items, cut, String::from_utf8(text).ok())
}

/// The note attached to a result cut for size.
pub(crate) fn truncation_note(kept: usize, cut: usize, budget: usize, how: &str) -> String {
    format!(
        "Result cut to {kept} records ({cut} more matched but were left out to stay under {} KB). {how}",
        budget / 1000
    )
}

/// Why a tool call failed, rendered as an `isError` result the model can act on.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// No usable Airtable client: no token, or the client could not be built.
    #[error("{0}")]
    Unavailable(String),
    /// Bad input caught before any request; the message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// A write that was not confirmed (declined, cancelled, or no valid confirm_token):
    /// nothing was sent. The message says why and how to proceed.
    #[error("{0}")]
    NotConfirmed(String),
    /// The write waits for the user's answer (2026-07-28 MRTR): `call_tool` answers with the
    /// `input_required` result `tools::confirm` prepared instead of this error.
    #[error("this write waits for the user's confirmation; retry with the answer")]
    InputRequired,
    /// A malformed ID in the input (base, record, comment); the message names it and the fix.
    #[error("{message}")]
    InvalidId {
        /// What to change.
        message: String,
        /// What is wrong with the ID.
        source: airtable::IdError,
    },
    /// A host file could not be read or written (inside `--export-dir`); the message names it.
    #[error("{message}")]
    File {
        /// What failed and the path.
        message: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A result could not be rendered as JSON (a bug).
    #[error("internal error rendering the result: {0}")]
    Render(#[source] serde_json::Error),
    /// The base is not in the server's --bases allow-list.
    #[error(
        "Base {base} is not allowed by this server (it was started with --bases {allowed}). Use one of those bases, or ask the user to restart the server with this base in --bases / AIRTABLE_MCP_BASES."
    )]
    BaseNotAllowed {
        /// The base asked for.
        base: String,
        /// The allow-list, comma-separated.
        allowed: String,
    },
    /// A write tool called while the server runs read-only.
    #[error(
        "{tool} changes data, and this server runs in read-only mode (--read-only / AIRTABLE_MCP_READ_ONLY), so it was refused. Only read tools are available; ask the user to restart the server without --read-only to write."
    )]
    ReadOnly {
        /// The tool refused.
        tool: String,
    },
    /// The tool exists but its toolset is not enabled.
    #[error(
        "{tool} belongs to the {toolset} toolset, which this server does not expose (--toolsets / AIRTABLE_MCP_TOOLSETS)."
    )]
    ToolsetDisabled {
        /// The tool refused.
        tool: String,
        /// Its toolset.
        toolset: String,
    },
    /// A source that cannot be imported at all (size, format, columns, unreadable file).
    #[error("{0}.")]
    Import(#[from] crate::tools::ImportError),
    /// The write journal failed (listing or undoing writes).
    #[error("{0}")]
    Journal(#[from] crate::tools::JournalError),
    /// The Airtable API (or the network) failed.
    #[error("{}", api_error_text(op, base.as_deref(), scope, source))]
    Api {
        /// What we tried, e.g. "list records".
        op: &'static str,
        /// The base concerned.
        base: Option<String>,
        /// The token scope the operation needs.
        scope: &'static str,
        /// The client error.
        source: Box<airtable::Error>,
    },
}

impl ToolError {
    /// An API failure of `op` on `base`, needing `scope`.
    pub(crate) fn api(
        op: &'static str,
        base: &str,
        scope: &'static str,
        source: airtable::Error,
    ) -> Self {
        ToolError::Api {
            op,
            base: Some(base.to_owned()),
            scope,
            source: Box::new(source),
        }
    }

    /// A malformed ID: `message` says what to change (it includes the ID error's text).
    pub(crate) fn invalid_id(source: airtable::IdError, message: String) -> Self {
        ToolError::InvalidId { message, source }
    }

    /// The same error with its message prefixed (e.g. with the input's position).
    pub(crate) fn prefixed(self, prefix: &str) -> Self {
        match self {
            ToolError::Invalid(m) => ToolError::Invalid(format!("{prefix}{m}")),
            ToolError::InvalidId { message, source } => ToolError::InvalidId {
                message: format!("{prefix}{message}"),
                source,
            },
            other => other,
        }
    }

    /// The text shown to the model.
    pub(crate) fn text(&self) -> String {
        self.to_string()
    }
}

impl IntoContents for ToolError {
    fn into_contents(self) -> Vec<ContentBlock> {
        vec![ContentBlock::text(self.text())]
    }
}

/// Scopes, for messages.
pub(crate) mod scope {
    /// Reading records.
    pub(crate) const RECORDS_READ: &str = "data.records:read";
    /// Writing records.
    pub(crate) const RECORDS_WRITE: &str = "data.records:write";
    /// Reading schemas.
    pub(crate) const SCHEMA_READ: &str = "schema.bases:read";
    /// Changing schemas.
    pub(crate) const SCHEMA_WRITE: &str = "schema.bases:write";
    /// Reading comments.
    pub(crate) const COMMENTS_READ: &str = "data.recordComments:read";
    /// Writing comments.
    pub(crate) const COMMENTS_WRITE: &str = "data.recordComments:write";
    /// Managing webhooks (the change feed).
    pub(crate) const WEBHOOK_MANAGE: &str = "webhook:manage";
}

/// Over HTTP, for a session that brought its own token: what to do instead of [`TOKEN_FIX`].
pub(crate) const HEADER_TOKEN_FIX: &str = "Send a valid Airtable personal access token in the X-Airtable-Token header of your HTTP requests (this server uses the token each client sends; open a new session with the new token). Create one at https://airtable.com/create/tokens.";

/// How to fix a missing or rejected token when the server's own token is used.
pub(crate) const TOKEN_FIX: &str = "Set a valid Airtable personal access token with `airtable-mcp auth login` (stored in the OS keyring) or the AIRTABLE_API_KEY environment variable, then restart the MCP server. Create one at https://airtable.com/create/tokens.";

/// The message of an API failure: what failed, Airtable's own words, and the fix.
pub(crate) fn api_error_text(
    op: &str,
    base: Option<&str>,
    scope: &str,
    err: &airtable::Error,
) -> String {
    let on_base = base.map(|b| format!(" in base {b}")).unwrap_or_default();
    let status = err.status();
    let kind = err.kind();
    let fix: String = match (status, kind) {
        (Some(401), _) | (_, Some(ApiErrorKind::AuthenticationRequired)) => {
            format!("The Airtable token is missing, invalid or expired. {TOKEN_FIX}")
        }
        (_, Some(ApiErrorKind::InvalidPermissionsOrModelNotFound))
        | (_, Some(ApiErrorKind::InvalidPermissions))
        | (Some(403), _) => format!(
            "Either the base or table does not exist (check with list_bases and list_tables), or the token lacks the scope `{scope}` or access to {}. Add the scope and the base to the token at https://airtable.com/create/tokens.",
            base.map(|b| format!("base {b}"))
                .unwrap_or_else(|| "this base".to_owned())
        ),
        (_, Some(ApiErrorKind::NotFound))
        | (_, Some(ApiErrorKind::ModelIdNotFound))
        | (_, Some(ApiErrorKind::TableNotFound))
        | (Some(404), _) => {
            "Check the IDs: call list_bases for base IDs, list_tables(base_id) for table names and IDs, and get_records for record IDs.".to_owned()
        }
        (_, Some(ApiErrorKind::InvalidFilterByFormula)) => {
            "Fix filter_by_formula: wrap field names in braces like {Status}, quote text with double quotes, and check function names and parentheses, e.g. AND({Status}=\"Done\", {Priority}>2).".to_owned()
        }
        (_, Some(ApiErrorKind::UnknownFieldName)) => {
            "A field name is not in the table: call get_field_info(base_id, table_id) for exact names (case and spaces matter).".to_owned()
        }
        (_, Some(ApiErrorKind::RequestTooLarge)) | (Some(413), _)
            if scope == scope::RECORDS_READ || scope == scope::SCHEMA_READ =>
        {
            "The query is too large for Airtable: shorten filter_by_formula or the search text, and ask for fewer fields (a read sends no records).".to_owned()
        }
        (_, Some(ApiErrorKind::RateLimitReached)) | (Some(429), _) => {
            "Airtable's rate limit (5 requests per second per base) was still hit after retries; wait about 30 seconds, then retry with fewer, larger requests (batch tools).".to_owned()
        }
        _ => err.hint().to_owned(),
    };
    format!("Could not {op}{on_base}: {err}. {fix}")
}

#[cfg(test)]
mod too_large_tests {
    use super::*;

    #[test]
    fn a_413_on_a_read_asks_for_a_smaller_query_not_fewer_records() {
        let err = airtable::Error::Api {
            status: 413,
            kind: ApiErrorKind::RequestTooLarge,
            message: "too large".into(),
        };
        let read = api_error_text("list records", Some("appX"), scope::RECORDS_READ, &err);
        assert!(read.contains("shorten filter_by_formula"), "{read}");
        assert!(!read.contains("fewer records"), "{read}");
        let write = api_error_text("create", Some("appX"), scope::RECORDS_WRITE, &err);
        assert!(write.contains("fewer records"), "{write}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rendered_fit_keeps_what_fit_to_budget_keeps_and_renders_it() {
        let items: Vec<Value> = (0..50)
            .map(|i| serde_json::json!(["rec", i, "x".repeat(i * 7), {"a": [1.5, null]}]))
            .collect();
        for budget in [0, 1, 40, 200, 1_000, 5_000, 1_000_000] {
            let (want, want_cut) = fit_to_budget(items.clone(), budget);
            let (kept, cut, text) = fit_to_budget_rendered(items.clone(), budget);
            assert_eq!((&kept, cut), (&want, want_cut), "budget {budget}");
            assert_eq!(
                text.unwrap(),
                serde_json::to_string(&kept).unwrap(),
                "budget {budget}"
            );
        }
        let (kept, cut, text) = fit_to_budget_rendered(Vec::<Value>::new(), 10);
        assert_eq!((kept.len(), cut, text.as_deref()), (0, 0, Some("[]")));
    }

    #[test]
    fn structured_result_is_rmcps_structured_result() {
        let value = serde_json::json!({
            "count": 2, "has_more": false, "note": "q\"uote \u{1} é 🙂 \u{2028}",
            "columns": ["id", "Name", "Score"], "rows": [["rec1", "a", 1.5], ["rec2", null, -3]],
        });
        let ours = serde_json::to_value(structured_result(value.clone())).unwrap();
        let rmcps = serde_json::to_value(CallToolResult::structured(value)).unwrap();
        assert_eq!(ours, rmcps);
    }

    fn api(status: u16, kind: &str) -> airtable::Error {
        airtable::Error::Api {
            status,
            kind: ApiErrorKind::from_type(kind),
            message: "msg".into(),
        }
    }

    #[test]
    fn each_status_names_cause_and_fix() {
        let t = api_error_text(
            "list records",
            Some("appA"),
            scope::RECORDS_READ,
            &api(401, "AUTHENTICATION_REQUIRED"),
        );
        assert!(
            t.contains("auth login") && t.contains("AIRTABLE_API_KEY"),
            "{t}"
        );
        let t = api_error_text(
            "list records",
            Some("appA"),
            scope::RECORDS_READ,
            &api(403, "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND"),
        );
        assert!(
            t.contains("`data.records:read`") && t.contains("base appA"),
            "{t}"
        );
        let t = api_error_text(
            "get the record",
            Some("appA"),
            scope::RECORDS_READ,
            &api(404, "NOT_FOUND"),
        );
        assert!(t.contains("list_tables"), "{t}");
        let t = api_error_text(
            "list records",
            Some("appA"),
            scope::RECORDS_READ,
            &api(422, "INVALID_FILTER_BY_FORMULA"),
        );
        assert!(t.contains("{Status}"), "{t}");
        let t = api_error_text(
            "list records",
            Some("appA"),
            scope::RECORDS_READ,
            &airtable::Error::RateLimited { attempts: 6 },
        );
        assert!(t.contains("30 seconds"), "{t}");
    }

    #[test]
    fn budget_keeps_a_prefix_and_at_least_one() {
        let items: Vec<String> = (0..100).map(|i| format!("{i:0>50}")).collect();
        let (kept, cut) = fit_to_budget(items.clone(), 1000);
        assert!(kept.len() < 100 && kept.len() > 5);
        assert_eq!(kept.len() + cut, 100);
        assert_eq!(kept[..], items[..kept.len()]);
        let (kept, cut) = fit_to_budget(vec!["x".repeat(5000)], 10);
        assert_eq!((kept.len(), cut), (1, 0));
    }

    #[test]
    fn malformed_ids_keep_their_source_error() {
        use std::error::Error as _;
        let id_err = "appNope"
            .parse::<airtable::BaseId>()
            .expect_err("a malformed base ID");
        let message = format!("--bases: {id_err}");
        let err = ToolError::invalid_id(id_err, message);
        assert!(matches!(err, ToolError::InvalidId { .. }), "{err:?}");
        assert!(err.to_string().starts_with("--bases: "), "{err}");
        let source = err.source().expect("the IdError is kept");
        assert!(source.is::<airtable::IdError>());
        let prefixed = err.prefixed("records[3]: ");
        assert!(prefixed.to_string().starts_with("records[3]: --bases: "));
        assert!(prefixed.source().is_some());
    }
}
