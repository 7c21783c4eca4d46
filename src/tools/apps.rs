//! MCP Apps views (the `io.modelcontextprotocol/ui` extension, spec 2026-01-26): a record grid
//! for get_records, search_records and get_record, and a chart for aggregate_records.
//!
//! - Each view is one self-contained HTML document (scripts and styles inline, no network
//!   access), kept as real files under `src/tools/apps/` and embedded with `include_str!`; the
//!   shared parts (`bridge.js`: the postMessage JSON-RPC protocol with the host, theme and
//!   sizing; `base.css`: the host's standard CSS variables with fallbacks) are inlined into each
//!   view once, at first use.
//! - The views are resources with MIME [`MIME`] (`resources/read`, and listed on the first page
//!   of `resources/list`), with `_meta.ui` declaring Airtable's attachment hosts as
//!   `csp.resourceDomains` (thumbnails) and nothing else.
//! - The tools name their view in `_meta.ui.resourceUri` ([`records_meta`], [`chart_meta`]);
//!   the server declares the extension in its capabilities ([`declare`]). Hosts without MCP
//!   Apps ignore both and get the same text content as before.
//!
//! The views render the tools' `structuredContent` as it is; what the model does not need (field
//! types, select colours, field order) the grid reads through the host (`resources/read` of the
//! table schema resource), and "load more" is a `tools/call` of the same tool through the host.

use std::sync::LazyLock;

use rmcp::model::{
    CacheScope, JsonObject, MetaObject, ReadResourceResult, Resource, ResourceContents,
    ServerCapabilities,
};
use serde_json::{Value, json};

/// The extension's identifier (capability key).
pub(crate) const EXTENSION: &str = "io.modelcontextprotocol/ui";
/// The MIME type of an MCP Apps HTML view.
pub(crate) const MIME: &str = "text/html;profile=mcp-app";
/// The record grid (get_records, search_records, get_record).
pub(crate) const RECORDS_URI: &str = "ui://airtable/records.html";
/// The aggregate chart (aggregate_records).
pub(crate) const CHART_URI: &str = "ui://airtable/chart.html";
/// How long a host may cache a view (2026 `ttlMs`): they change only with the binary.
const VIEW_TTL_MS: u64 = 3_600_000;
/// Where Airtable serves attachments and their thumbnails (URLs valid for ~2 hours).
const ATTACHMENT_DOMAINS: &[&str] = &[
    "https://*.airtableusercontent.com",
    "https://dl.airtable.com",
];

const BRIDGE_JS: &str = include_str!("apps/bridge.js");
const BASE_CSS: &str = include_str!("apps/base.css");
const RECORDS_HTML: &str = include_str!("apps/records.html");
const CHART_HTML: &str = include_str!("apps/chart.html");

/// One view.
struct View {
    uri: &'static str,
    name: &'static str,
    title: &'static str,
    description: &'static str,
    html: &'static LazyLock<String>,
}

/// A view's HTML with the shared script and styles inlined.
fn assemble(html: &str) -> String {
    html.replacen("/*@base-css*/", BASE_CSS, 1)
        .replacen("/*@bridge*/", BRIDGE_JS, 1)
}

static RECORDS: LazyLock<String> = LazyLock::new(|| assemble(RECORDS_HTML));
static CHART: LazyLock<String> = LazyLock::new(|| assemble(CHART_HTML));

static VIEWS: [View; 2] = [
    View {
        uri: RECORDS_URI,
        name: "records_view",
        title: "Record grid",
        description: "MCP Apps view of get_records, search_records and get_record results: typed cells, sort, filter, load more, record details.",
        html: &RECORDS,
    },
    View {
        uri: CHART_URI,
        name: "aggregate_chart",
        title: "Aggregate chart",
        description: "MCP Apps view of aggregate_records results: bars by group, a line for date buckets, and the numbers.",
        html: &CHART,
    },
];

fn view(uri: &str) -> Option<&'static View> {
    VIEWS.iter().find(|v| v.uri == uri)
}

fn object(v: Value) -> JsonObject {
    match v {
        Value::Object(m) => m,
        _ => JsonObject::new(),
    }
}

/// A tool's `_meta` naming its view.
fn tool_meta(uri: &str) -> MetaObject {
    MetaObject(object(json!({ "ui": { "resourceUri": uri } })))
}

/// `_meta` of get_records, search_records and get_record.
pub(crate) fn records_meta() -> MetaObject {
    tool_meta(RECORDS_URI)
}

/// `_meta` of aggregate_records.
pub(crate) fn chart_meta() -> MetaObject {
    tool_meta(CHART_URI)
}

/// A view resource's `_meta.ui`: thumbnails may come from Airtable's attachment hosts; no
/// connections, frames or other origins.
fn resource_meta() -> MetaObject {
    MetaObject(object(json!({
        "ui": {
            "csp": { "resourceDomains": ATTACHMENT_DOMAINS },
            "prefersBorder": true,
        }
    })))
}

/// Declare the extension in the server's capabilities.
pub(crate) fn declare(caps: &mut ServerCapabilities) {
    caps.extensions
        .get_or_insert_with(Default::default)
        .insert(EXTENSION.to_owned(), JsonObject::new());
}

/// Whether `uri` is one of the views' (`ui://` scheme).
pub(crate) fn is_view_uri(uri: &str) -> bool {
    uri.starts_with("ui://")
}

/// The views, for `resources/list`.
pub(crate) fn resources() -> Vec<Resource> {
    VIEWS
        .iter()
        .map(|v| {
            Resource::new(v.uri, v.name)
                .with_title(v.title)
                .with_description(v.description)
                .with_mime_type(MIME)
                .with_size(v.html.len() as u64)
                .with_meta(resource_meta())
        })
        .collect()
}

/// `resources/read` of a view; None for a `ui://` URI that is not one.
pub(crate) fn read(uri: &str) -> Option<ReadResourceResult> {
    let v = view(uri)?;
    let contents = ResourceContents::text(v.html.as_str(), v.uri)
        .with_mime_type(MIME)
        .with_meta(resource_meta());
    Some(
        ReadResourceResult::new(vec![contents])
            .with_ttl_ms(VIEW_TTL_MS)
            .with_cache_scope(CacheScope::Public),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Largest view, in bytes.
    const MAX_VIEW_BYTES: usize = 150 * 1024;

    #[test]
    fn views_are_whole_self_contained_and_small() {
        for v in &VIEWS {
            let html = v.html.as_str();
            assert!(
                html.len() <= MAX_VIEW_BYTES,
                "{} is {} bytes",
                v.uri,
                html.len()
            );
            println!("{}: {} bytes", v.uri, html.len());
            assert!(html.starts_with("<!doctype html>"), "{}", v.uri);
            assert!(
                !html.contains("/*@"),
                "{}: a placeholder was not filled",
                v.uri
            );
            assert!(
                html.contains("ui/initialize") && html.contains("ui/notifications/initialized")
            );
            assert!(html.contains("--color-background-primary"));
            // No network: no external scripts, styles, fetches or imports.
            for banned in [
                "<script src",
                "<link",
                "fetch(",
                "XMLHttpRequest",
                "WebSocket",
                "@import",
                "http://",
                "https://",
            ] {
                let allowed_svg_ns = banned == "http://"
                    && html.matches("http://").count()
                        == html.matches("http://www.w3.org/2000/svg").count();
                assert!(
                    !html.contains(banned) || allowed_svg_ns,
                    "{} contains {banned:?}",
                    v.uri
                );
            }
        }
    }

    #[test]
    fn read_serves_the_view_with_its_csp() {
        let r = read(RECORDS_URI).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        let c = &v["contents"][0];
        assert_eq!(c["mimeType"], MIME);
        assert_eq!(c["uri"], RECORDS_URI);
        assert_eq!(
            c["_meta"]["ui"]["csp"]["resourceDomains"],
            json!(ATTACHMENT_DOMAINS)
        );
        assert!(read("ui://airtable/nope.html").is_none());
        assert!(read(CHART_URI).is_some());
        assert_eq!(resources().len(), 2);
    }

    #[test]
    fn tools_name_their_view() {
        assert_eq!(
            serde_json::to_value(records_meta()).unwrap(),
            json!({"ui": {"resourceUri": RECORDS_URI}})
        );
        let mut caps = ServerCapabilities::default();
        declare(&mut caps);
        assert_eq!(
            serde_json::to_value(&caps).unwrap()["extensions"][EXTENSION],
            json!({})
        );
    }
}
