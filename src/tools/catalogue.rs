//! The tool catalogue at run time, generated at build time.
//!
//! Every tool's MCP description (name, title, description, annotations, portable input and
//! output schemas, `_meta`) is what the `#[tool_router]` blocks of the group files produce,
//! rewritten by [`schema_cleanup::portable_router`]. Producing it runs schemars for every
//! argument and result type and then rewrites every schema: about half of the CPU time of a cold
//! start. So it is produced once, by `UPDATE_SCHEMAS=1 cargo test --test integration schemas::`, into
//! `src/tools/catalogue.json` (compact JSON, one tool a line, sorted by name), which is
//! embedded in the binary. At run time the router is that file plus the handlers ([`ROUTES`]):
//! no schemars, no rewriting.
//!
//! The macro-built router ([`macro_router`]) stays the single source of truth: the schemas test
//! fails when the file differs from it, and the unit tests below check that the run-time router
//! holds the same tools, attribute for attribute. If the embedded file cannot be used (it can,
//! when the tests pass), a warning is logged and the macro-built router serves.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use rmcp::handler::server::router::tool::{ToolRoute, ToolRouter};
use rmcp::model::{JsonObject, Tool};

use crate::tools::handler::AirtableServer;
use crate::tools::schema_cleanup;

/// The catalogue file (see the module docs).
const EMBEDDED: &str = include_str!("catalogue.json");

/// The tools' handlers, by tool name: one `AirtableServer` method per tool, named like the tool.
/// Adding a tool: add its name here too (the unit tests fail until it is).
macro_rules! routes {
    ($($name:ident),* $(,)?) => {
        /// The names of the tools with a run-time route.
        pub(crate) const ROUTES: &[&str] = &[$(stringify!($name)),*];

        /// The route of a tool described in the catalogue file, or its name when no handler
        /// has it.
        fn route(tool: Tool) -> Result<ToolRoute<AirtableServer>, Cow<'static, str>> {
            match tool.name.as_ref() {
                $(stringify!($name) => Ok(ToolRoute::new(tool, AirtableServer::$name)),)*
                _ => Err(tool.name),
            }
        }
    };
}

routes! {
    aggregate_records,
    analyze_table_data,
    batch_create_records,
    batch_delete_records,
    batch_update_records,
    batch_upsert_records,
    count_records,
    create_comment,
    create_field,
    create_metadata_table,
    create_record,
    create_table,
    delete_record,
    export_table_csv,
    find_duplicates,
    find_link_candidates,
    get_attachments,
    get_field_info,
    get_record,
    get_records,
    import_records,
    list_bases,
    list_comments,
    list_recent_writes,
    list_table_changes,
    list_tables,
    list_views,
    list_watches,
    search_records,
    sync_tables,
    undo_write,
    unwatch_table,
    update_field,
    update_record,
    update_table,
    upload_attachment,
    watch_table,
}

/// The parsed catalogue: every tool's route.
struct Catalogue {
    router: ToolRouter<AirtableServer>,
    /// The router is the embedded file's (not the macro-built fallback).
    embedded: bool,
}

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| match embedded_router(EMBEDDED) {
    Some(router) => Catalogue {
        router,
        embedded: true,
    },
    None => Catalogue {
        router: macro_router(),
        embedded: false,
    },
});

/// Each tool's line of the embedded file (its compact JSON, which is what serialising the tool
/// writes: a unit test checks it), by tool name. Found by the lines' `{"name":"…"` start, without
/// parsing them.
static LINES: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| lines_of(EMBEDDED));

/// The input schema of the stand-ins of [`placeholders`], told apart by its address.
static PLACEHOLDER_SCHEMA: LazyLock<Arc<JsonObject>> = LazyLock::new(Arc::default);

/// Every tool implemented, unfiltered, with portable schemas: built once per process from the
/// embedded catalogue (or, if it is unusable, from the tool definitions); each server state
/// clones it (the schemas are shared `Arc`s).
pub(crate) fn router() -> ToolRouter<AirtableServer> {
    CATALOGUE.router.clone()
}

/// Wait until the catalogue is parsed (parse it here if no other thread has started to): the
/// server's warm-up thread calls this once the host's start-up exchange is answered, so that
/// the first tool call finds it ready.
pub(crate) fn wait_parsed() {
    LazyLock::force(&CATALOGUE);
}

/// The compact JSON a `tools/list` answer may copy for `tool` instead of serialising it:
/// - for a stand-in of [`placeholders`], the line of the catalogue tool it stands for;
/// - for exactly the catalogue's tool of that name, its line (then also exactly
///   `serde_json::to_string(tool)`). Cheap: the schemas are compared by pointer first (they are
///   the catalogue's `Arc`s).
///
/// `None` for any other tool.
pub(crate) fn rendered(tool: &Tool) -> Option<&'static str> {
    let line = LINES.get(tool.name.as_ref())?;
    if Arc::ptr_eq(&tool.input_schema, &PLACEHOLDER_SCHEMA) {
        return Some(line);
    }
    let catalogue = LazyLock::force(&CATALOGUE);
    (catalogue.embedded && catalogue.router.get(&tool.name)? == tool).then_some(*line)
}

/// Stand-ins for the catalogue tools `names` (name only, and a schema [`rendered`] knows), for a
/// `tools/list` answer whose writer copies each tool's line with [`rendered`]: it then needs
/// neither the parsed catalogue nor a serialisation. `None` when a name has no line. A stand-in
/// serialised by anything else is not the tool: only a writer that renders them may get them.
pub(crate) fn placeholders<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<Vec<Tool>> {
    names
        .into_iter()
        .map(|name| {
            let (name, _) = LINES.get_key_value(name)?;
            Some(Tool::new(*name, "", PLACEHOLDER_SCHEMA.clone()))
        })
        .collect()
}

/// Each tool's line of a catalogue file, by the name it starts with (`{"name":"…",`), without its
/// trailing `,`. Lines that do not start so (the `[` and `]`) are skipped.
fn lines_of(text: &'static str) -> HashMap<&'static str, &'static str> {
    let mut lines = HashMap::with_capacity(ROUTES.len());
    // memchr finds the 39 line ends of the 126 KB file in a few thousand instructions (`lines()`
    // took 150,000 of a cold start's 2.2 million); every '\n' is a char boundary.
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', text.as_bytes()).chain([text.len()]) {
        let Some(line) = text.get(start..end) else {
            break;
        };
        start = end + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        let line = line.strip_suffix(',').unwrap_or(line);
        if let Some(rest) = line.strip_prefix("{\"name\":\"")
            && let Some(name) = rest.find('"').and_then(|end| rest.get(..end))
        {
            lines.insert(name, line);
        }
    }
    lines
}

/// The router the `#[tool_router]` blocks build, with portable schemas (what the catalogue file
/// is generated from).
pub(crate) fn macro_router() -> ToolRouter<AirtableServer> {
    let raw = AirtableServer::bases_router()
        + AirtableServer::schema_router()
        + AirtableServer::records_router()
        + AirtableServer::comments_router()
        + AirtableServer::attachments_router()
        + AirtableServer::analysis_router()
        + AirtableServer::aggregate_router()
        + AirtableServer::search_router()
        + AirtableServer::transfer_router()
        + AirtableServer::import_router()
        + AirtableServer::undo_router()
        + AirtableServer::links_router()
        + AirtableServer::views_router()
        + AirtableServer::watch_router();
    schema_cleanup::portable_router(raw)
}

/// Add a route to `router`. rmcp's `add_route` checks the name on every call and rebuilds a
/// character set each time, a sixth of the start-up work for 37 tools; the names of the
/// catalogue are checked once, by `every_tool_name_is_a_valid_mcp_tool_name`.
pub(crate) fn insert_route(
    router: &mut ToolRouter<AirtableServer>,
    route: ToolRoute<AirtableServer>,
) {
    router.map.insert(route.attr.name.clone(), route);
}

/// The router of a catalogue file: every tool it describes with its handler. `None` (with a
/// warning) when the text is not a list of tools, names a tool without a handler, or leaves a
/// handler without its tool. Never panics.
fn embedded_router(text: &str) -> Option<ToolRouter<AirtableServer>> {
    fn unusable(reason: &dyn std::fmt::Display) {
        tracing::warn!(
            %reason,
            "the embedded tool catalogue is unusable; building it from the tool definitions"
        );
    }
    let tools: Vec<Tool> = match serde_json::from_str(text) {
        Ok(tools) => tools,
        Err(e) => {
            unusable(&e);
            return None;
        }
    };
    let mut router = ToolRouter::new();
    for tool in tools {
        match route(tool) {
            Ok(r) if router.has_route(r.name()) => {
                unusable(&format_args!("{} is described twice", r.name()));
                return None;
            }
            Ok(r) => insert_route(&mut router, r),
            Err(name) => {
                unusable(&format_args!("{name} has no handler"));
                return None;
            }
        }
    }
    if router.map.len() != ROUTES.len() {
        unusable(&"a handler has no description");
        return None;
    }
    Some(router)
}

/// The catalogue file's text for `tools` (sorted by name): a JSON array, one tool a line.
pub(crate) fn file_text(tools: &[Tool]) -> Result<String, serde_json::Error> {
    let mut out = String::from("[\n");
    for (i, t) in tools.iter().enumerate() {
        if i > 0 {
            out.push_str(",\n");
        }
        out.push_str(&serde_json::to_string(t)?);
    }
    out.push_str("\n]\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::tools::CATALOG;

    fn sorted(router: ToolRouter<AirtableServer>) -> Vec<Tool> {
        router.list_all()
    }

    #[test]
    fn the_run_time_router_is_the_embedded_catalogue_and_equals_the_macro_built_one() {
        let embedded = embedded_router(EMBEDDED).expect(
            "src/tools/catalogue.json is unusable: run `UPDATE_SCHEMAS=1 cargo test --test integration schemas::`",
        );
        let from_file = sorted(embedded);
        let from_macros = sorted(macro_router());
        let names = |tools: &[Tool]| tools.iter().map(|t| t.name.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(&from_file),
            names(&from_macros),
            "the embedded catalogue and the tool definitions name different tools: run \
             `UPDATE_SCHEMAS=1 cargo test --test integration schemas::`, and list new tools in tools::catalogue::routes!"
        );
        for (a, b) in from_file.iter().zip(&from_macros) {
            assert_eq!(a.name, b.name);
            assert_eq!(a.title, b.title, "{}: title", a.name);
            assert_eq!(a.description, b.description, "{}: description", a.name);
            assert_eq!(a.input_schema, b.input_schema, "{}: inputSchema", a.name);
            assert_eq!(a.output_schema, b.output_schema, "{}: outputSchema", a.name);
            assert_eq!(a.annotations, b.annotations, "{}: annotations", a.name);
            assert_eq!(a.icons, b.icons, "{}: icons", a.name);
            assert_eq!(a.meta, b.meta, "{}: _meta", a.name);
            // Whatever field rmcp adds later: the whole value, and its wire form.
            assert_eq!(a, b, "{}", a.name);
            assert_eq!(
                serde_json::to_string(a).unwrap(),
                serde_json::to_string(b).unwrap()
            );
        }
        // The process-wide router is this one.
        assert_eq!(sorted(router()), from_file);
    }

    #[test]
    fn each_tool_is_rendered_as_its_line_which_is_its_serialisation() {
        let tools = router().list_all();
        assert_eq!(tools.len(), ROUTES.len());
        for t in &tools {
            assert_eq!(
                rendered(t),
                Some(serde_json::to_string(t).unwrap().as_str()),
                "{}",
                t.name
            );
        }
        // Another tool of the same name (here a changed description) is not the catalogue's.
        let mut changed = tools[0].clone();
        changed.description = Some("something else".into());
        assert_eq!(rendered(&changed), None);
        let mut unknown = tools[0].clone();
        unknown.name = "no_such_tool".into();
        assert_eq!(rendered(&unknown), None);
        // Every tool has its line, found without parsing; nothing else is a line.
        assert_eq!(lines_of(EMBEDDED).len(), ROUTES.len());
        assert!(lines_of("[\n{\"title\":\"x\"},\n{\"name\":\"unterminated\n]").is_empty());
        // CRLF line ends, and a last line with no line end at all.
        let crlf = lines_of("[\r\n{\"name\":\"a\",\"x\":1},\r\n{\"name\":\"b\"}");
        assert_eq!(crlf.get("a"), Some(&"{\"name\":\"a\",\"x\":1}"));
        assert_eq!(crlf.get("b"), Some(&"{\"name\":\"b\"}"));
        assert_eq!(crlf.len(), 2);
        // A stand-in renders as the tool it stands for; an unknown name has none.
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        let stand_ins = placeholders(names.iter().copied()).unwrap();
        assert_eq!(stand_ins.len(), tools.len());
        for (s, t) in stand_ins.iter().zip(&tools) {
            assert_eq!(s.name, t.name);
            assert_eq!(
                rendered(s),
                Some(serde_json::to_string(t).unwrap().as_str())
            );
        }
        assert!(placeholders(["list_bases", "no_such_tool"]).is_none());
        // A tool that merely looks like a stand-in (an empty schema of its own) is not one.
        let mut look_alike = stand_ins[0].clone();
        look_alike.input_schema = Arc::default();
        assert_eq!(rendered(&look_alike), None);
    }

    #[test]
    fn every_tool_name_is_a_valid_mcp_tool_name() {
        // The MCP tool-name rule (1-64 of A-Z a-z 0-9 _ - .), as rmcp's add_route checks it.
        for name in ROUTES {
            assert!(
                (1..=64).contains(&name.len())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')),
                "{name} is not a valid MCP tool name"
            );
            assert!(rmcp::handler::server::tool_name_validation::validate_and_warn_tool_name(name));
        }
    }

    #[test]
    fn every_tool_of_the_catalogue_has_a_route() {
        let routes: BTreeSet<&str> = ROUTES.iter().copied().collect();
        assert_eq!(routes.len(), ROUTES.len(), "a route is listed twice");
        let catalog: BTreeSet<&str> = CATALOG.iter().map(|s| s.name).collect();
        assert_eq!(routes, catalog, "tools::CATALOG and routes! disagree");
    }

    #[test]
    fn an_unusable_file_gives_no_router_and_no_panic() {
        let first = EMBEDDED.lines().nth(1).unwrap().trim_end_matches(',');
        let bad = [
            String::new(),
            "[]".to_owned(),
            "{}".to_owned(),
            "null".to_owned(),
            "[{}]".to_owned(),
            "[1, 2]".to_owned(),
            format!("[{first}]"),
            format!("[{first},{first}]"),
            EMBEDDED.replacen("\"list_bases\"", "\"no_such_tool\"", 1),
            EMBEDDED.replace("\"name\":\"list_bases\"", "\"name\":\"list_tables\""),
            "\u{feff}[".to_owned(),
            "[{\"name\": \"list_bases\", \"inputSchema\": 3}]".to_owned(),
        ];
        for text in &bad {
            assert!(embedded_router(text).is_none(), "{text:.80}");
        }
        // Every prefix of the file (a truncated embedding) is refused; none panics.
        let mut cut = 0;
        while cut < EMBEDDED.len() - 2 {
            if EMBEDDED.is_char_boundary(cut) {
                assert!(embedded_router(&EMBEDDED[..cut]).is_none(), "prefix {cut}");
            }
            cut += 997;
        }
        assert!(embedded_router(EMBEDDED).is_some());
    }
}
