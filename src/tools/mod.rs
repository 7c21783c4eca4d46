//! The MCP tools, one file per tool group, and the rmcp handler that serves them
//! ([`handler`]). Knows nothing of transports (stdio, HTTP: the `server` module).
//!
//! Each group file (`bases.rs`, `schema.rs`, `records.rs`, `comments.rs`, ...) holds one
//! `#[tool_router(router = <group>_router, vis = "pub(crate)")] impl AirtableServer` block.
//! `catalogue::macro_router` merges them; at run time [`router`] is the same tools read from the
//! catalogue embedded at build time (`catalogue`: no schema generation at start). [`CATALOG`]
//! says, for every tool, which toolset it belongs to and whether it writes. The server filters
//! the router with it (toolsets first, read-only last), and the catalogue tests check that
//! router and catalogue agree.
//!
//! Adding a tool: write it in its group file, add one line to [`CATALOG`] and its name to
//! `catalogue::routes!`, and (for a new group) add the group's router to
//! `catalogue::macro_router`.
//! Then `UPDATE_SCHEMAS=1 cargo test --test integration schemas::` (regenerates `schemas/`, docs/tools.md and
//! the embedded catalogue `src/tools/catalogue.json`).

#![warn(unreachable_pub)]

use rmcp::handler::server::router::tool::ToolRouter;
use serde::{Deserialize, Serialize};

mod aggregate;
mod analysis;
mod apps;
mod arguments;
mod attachments;
mod bases;
mod batch;
mod cache;
pub(crate) mod catalogue;
mod cells;
mod comments;
mod compact;
mod confirm;
mod context;
mod files;
pub(crate) mod filters;
mod handler;
mod import;
mod journal;
mod links;
mod params;
mod progress;
mod prompts;
mod records;
mod resources;
mod result;
mod resume;
mod sanitize;
mod schema;
mod schema_cleanup;
mod search;
mod transfer;
mod undo;
mod validation;
mod views;
mod watch;
mod writes;

pub use handler::{
    AirtableServer, CallObserver, CallOutcome, DEFAULT_SCHEMA_TTL, INSTRUCTIONS, ServerOptions,
    ServerState, TokenProblem,
};
pub use import::ImportError;
pub use journal::JournalError;
pub use result::{
    ToolError, fill_structured_content, structured_stand_in_json, structured_text,
    text_structured_result,
};

/// Toolsets are configuration values: defined (and parsed) once, in [`crate::config`].
pub use crate::config::{Toolset, UnknownToolset};

/// Whether a tool changes anything in Airtable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Reads only (allowed with `--read-only`).
    Read,
    /// Creates, changes or deletes data or schema (removed and refused with `--read-only`).
    Write,
}

impl Access {
    /// "read" or "write".
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// One tool of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ToolSpec {
    /// The MCP tool name (snake_case, fixed: clients and prompts depend on it).
    pub name: &'static str,
    /// The toolset it belongs to.
    pub toolset: Toolset,
    /// Read or write.
    pub access: Access,
}

/// The tools a model needs to find its way (the server's instructions start with them): exposed
/// whatever `--toolsets` selects, like github-mcp-server's always-on context tools. Read-only.
pub const DISCOVERY_TOOLS: &[&str] = &["list_bases", "list_tables"];

impl ToolSpec {
    /// Whether this tool stays exposed whatever `--toolsets` selects (see [`DISCOVERY_TOOLS`]).
    pub fn is_discovery(&self) -> bool {
        DISCOVERY_TOOLS.contains(&self.name)
    }
}

const fn spec(name: &'static str, toolset: Toolset, access: Access) -> ToolSpec {
    ToolSpec {
        name,
        toolset,
        access,
    }
}

use Access::{Read, Write};
use Toolset::{Analysis, Attachments, Comments, Records, Schema, Transfer, Watch};

/// Every tool: name, toolset and access, in one place. The single source for filtering
/// (`--toolsets`, `--read-only`), `airtable-mcp tools list` and the catalogue tests.
pub const CATALOG: &[ToolSpec] = &[
    // schema
    spec("list_bases", Schema, Read),
    spec("list_tables", Schema, Read),
    spec("get_field_info", Schema, Read),
    spec("create_table", Schema, Write),
    spec("update_table", Schema, Write),
    spec("create_field", Schema, Write),
    spec("update_field", Schema, Write),
    // records
    spec("get_records", Records, Read),
    spec("get_record", Records, Read),
    spec("search_records", Records, Read),
    spec("create_record", Records, Write),
    spec("update_record", Records, Write),
    spec("delete_record", Records, Write),
    spec("batch_create_records", Records, Write),
    spec("batch_update_records", Records, Write),
    spec("batch_delete_records", Records, Write),
    spec("batch_upsert_records", Records, Write),
    spec("list_recent_writes", Records, Read),
    spec("undo_write", Records, Write),
    // analysis
    spec("analyze_table_data", Analysis, Read),
    spec("find_duplicates", Analysis, Read),
    // #13 search and aggregation
    spec("aggregate_records", Analysis, Read),
    spec("count_records", Analysis, Read),
    // transfer
    spec("export_table_csv", Transfer, Read),
    spec("create_metadata_table", Transfer, Write),
    spec("sync_tables", Transfer, Write),
    // comments
    spec("list_comments", Comments, Read),
    spec("create_comment", Comments, Write),
    // #13 links and views
    spec("list_views", Schema, Read),
    spec("find_link_candidates", Records, Read),
    // attachments (#13)
    spec("upload_attachment", Attachments, Write),
    spec("get_attachments", Attachments, Read),
    // #14 import
    spec("import_records", Transfer, Write),
    // #15 change feed
    spec("watch_table", Watch, Write),
    spec("list_table_changes", Watch, Read),
    spec("list_watches", Watch, Read),
    spec("unwatch_table", Watch, Write),
];

/// The catalogue (same as [`CATALOG`]).
pub fn catalog() -> &'static [ToolSpec] {
    CATALOG
}

/// The catalogue entry of a tool.
pub fn find_spec(name: &str) -> Option<&'static ToolSpec> {
    CATALOG.iter().find(|s| s.name == name)
}

/// Every tool implemented, unfiltered, with portable schemas (see [`schema_cleanup`]): built
/// once per process from the catalogue embedded at build time ([`catalogue`]).
pub(crate) fn router() -> ToolRouter<AirtableServer> {
    catalogue::router()
}

/// The MCP description (name, title, description, annotations, schemas) of every implemented
/// tool, sorted by name, unfiltered. Used by `tools schema` and the schema snapshot test.
pub fn all_tools() -> Vec<rmcp::model::Tool> {
    router().list_all()
}

/// What [`all_tools`] is generated from: the tools as the `#[tool_router]` blocks describe them
/// (schemars, then [`schema_cleanup`]), sorted by name. For the schemas test, which writes
/// and checks the embedded catalogue with it; slow (what the embedded catalogue avoids).
#[doc(hidden)]
pub fn macro_built_tools() -> Vec<rmcp::model::Tool> {
    catalogue::macro_router().list_all()
}

/// The text of the embedded catalogue file (`src/tools/catalogue.json`) for `tools`, sorted by
/// name: a JSON array of MCP tools, one a line. For the schemas test.
#[doc(hidden)]
pub fn catalogue_file(tools: &[rmcp::model::Tool]) -> Result<String, serde_json::Error> {
    catalogue::file_text(tools)
}

/// The JSON description of tools (what `schemas/` holds, as one array).
pub fn catalogue_json(tools: &[rmcp::model::Tool]) -> serde_json::Value {
    serde_json::Value::Array(tools.iter().map(tool_json).collect())
}

/// One tool's canonical JSON: name, title, description, toolset, access, annotations,
/// inputSchema, outputSchema, and `_meta` when the tool has one (its MCP Apps view).
pub fn tool_json(t: &rmcp::model::Tool) -> serde_json::Value {
    let spec = find_spec(&t.name);
    let mut v = serde_json::json!({
        "name": t.name,
        "title": t.title,
        "description": t.description,
        "toolset": spec.map(|s| s.toolset.as_str()),
        "access": spec.map(|s| s.access.as_str()),
        "annotations": t.annotations,
        "inputSchema": t.input_schema,
        "outputSchema": t.output_schema,
    });
    if let (Some(meta), serde_json::Value::Object(m)) = (&t.meta, &mut v) {
        m.insert(
            "_meta".to_owned(),
            serde_json::Value::Object(meta.0.clone()),
        );
    }
    v
}
