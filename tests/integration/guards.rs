//! The guards of issue #10 over a real MCP session (in-process client, sandbox on loopback):
//! unknown arguments are refused before anything runs, and every tool's inputSchema says so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::mcp_support;

use mcp_support::*;
use serde_json::{Value, json};

async fn people(h: &Harness) -> (String, String) {
    let client = client_for(&h.sandbox);
    let base = DEMO.parse().expect("base");
    let schema = client.base_schema(&base).await.expect("schema");
    let table = schema
        .tables
        .iter()
        .find(|t| t.name == "People")
        .expect("People");
    let recs = client
        .list_all_records(&base, table.id.as_ref(), Default::default())
        .await
        .expect("records");
    (table.id.to_string(), recs[0].id.to_string())
}

#[tokio::test]
async fn unknown_arguments_are_refused_naming_the_accepted_ones() {
    let h = harness().await;
    let e = err(
        &h.client,
        "get_records",
        json!({"base_id": DEMO, "table_id": "People", "max_record": 3}),
    )
    .await;
    assert!(
        e.starts_with("unknown argument \"max_record\" (did you mean \"max_records\"?) for get_records; accepted: base_id, table_id,"),
        "{e}"
    );
    assert!(e.contains("max_records") && e.contains("view"), "{e}");

    // A write with an argument it does not know is not applied.
    let (table, record) = people(&h).await;
    let before = h.sandbox.stats();
    let e = err(
        &h.client,
        "update_record",
        json!({"base_id": DEMO, "table_id": table, "record_id": record,
               "fields": {"Name": "Changed"}, "force_it": true}),
    )
    .await;
    assert!(
        e.contains("unknown argument \"force_it\" for update_record"),
        "{e}"
    );
    assert_eq!(h.sandbox.stats(), before, "nothing was sent");
    let got = ok(
        &h.client,
        "get_record",
        json!({"base_id": DEMO, "table_id": table, "record_id": record}),
    )
    .await;
    assert_ne!(got["fields"]["Name"], "Changed");

    // The same call with declared arguments only works.
    ok(
        &h.client,
        "get_records",
        json!({"base_id": DEMO, "table_id": "People", "max_records": 3}),
    )
    .await;
}

#[tokio::test]
async fn every_input_schema_refuses_additional_properties() {
    let h = harness().await;
    let tools = h.client.list_all_tools().await.expect("tools/list");
    assert!(tools.len() >= 20);
    for t in tools {
        assert_eq!(
            t.input_schema.get("additionalProperties"),
            Some(&Value::Bool(false)),
            "{}",
            t.name
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Record contents are data: hidden characters are stripped from results (--sanitize on).

/// Zero-width space, right-to-left override, a bidi isolate, a BOM, a C0 control and the
/// Unicode tags spelling "ignore" (invisible "ASCII smuggling").
fn dirty_name() -> String {
    let tags: String = "ignore"
        .chars()
        .map(|c| char::from_u32(0xE0000 + c as u32).expect("tag char"))
        .collect();
    format!("Smug\u{200b}gler \u{202e}evil\u{2066}\u{feff}\u{1}{tags}!")
}

const CLEAN_NAME: &str = "Smuggler evil!";

/// Creates the dirty record (and a dirty comment on it) through the client; returns its ID.
async fn dirty_record(h: &Harness) -> String {
    let client = client_for(&h.sandbox);
    let base = DEMO.parse().expect("base");
    let fields = json!({"Name": dirty_name(), "Email": "smug@example.com"});
    let rec = client
        .create_record(
            &base,
            "People",
            fields.as_object().cloned().expect("object"),
            &Default::default(),
        )
        .await
        .expect("create");
    client
        .create_comment(&base, "People", &rec.id, &format!("note: {}", dirty_name()))
        .await
        .expect("comment");
    rec.id.to_string()
}

/// Every string in the structured content and the text of a result.
fn all_text(r: &rmcp::model::CallToolResult) -> String {
    format!(
        "{}\n{}",
        r.structured_content
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default(),
        text(r)
    )
}

async fn reads(h: &Harness, rec: &str) -> Vec<(&'static str, rmcp::model::CallToolResult)> {
    let mut out = Vec::new();
    for (tool, args) in [
        (
            "get_record",
            json!({"base_id": DEMO, "table_id": "People", "record_id": rec}),
        ),
        (
            "get_records",
            json!({"base_id": DEMO, "table_id": "People", "filter_by_formula": "FIND(\"Smug\", {Name})"}),
        ),
        (
            "search_records",
            json!({"base_id": DEMO, "table_id": "People", "query": "smug"}),
        ),
        (
            "list_comments",
            json!({"base_id": DEMO, "table_id": "People", "record_id": rec}),
        ),
        (
            "export_table_csv",
            json!({"base_id": DEMO, "table_id": "People", "fields": ["Name"]}),
        ),
    ] {
        let r = call(&h.client, tool, args).await;
        assert_ne!(r.is_error, Some(true), "{tool}: {}", text(&r));
        out.push((tool, r));
    }
    out
}

#[tokio::test]
async fn hidden_characters_are_stripped_from_every_read() {
    let h = harness().await;
    let rec = dirty_record(&h).await;
    for (tool, r) in reads(&h, &rec).await {
        let all = all_text(&r);
        assert!(all.contains("Smuggler"), "{tool}: {all}");
        assert!(
            !all.chars().any(|c| matches!(
                c,
                '\u{200b}' | '\u{202e}' | '\u{2066}' | '\u{feff}' | '\u{e0000}'..='\u{e007f}'
            )),
            "{tool}: {all:?}"
        );
        assert!(!all.contains("\\u0001"), "{tool}: {all}");
        // The text copy is still the structured content, serialized.
        let parsed: Value = serde_json::from_str(&text(&r)).expect("text is JSON");
        assert_eq!(Some(parsed), r.structured_content, "{tool}");
    }
    let got = ok(
        &h.client,
        "get_record",
        json!({"base_id": DEMO, "table_id": "People", "record_id": rec}),
    )
    .await;
    assert_eq!(got["record"]["fields"]["Name"], CLEAN_NAME);
}

#[tokio::test]
async fn sanitize_off_returns_cells_as_stored() {
    let h = harness_with(airtable_mcp::tools::ServerOptions {
        sanitize: false,
        ..Default::default()
    })
    .await;
    let rec = dirty_record(&h).await;
    for (tool, r) in reads(&h, &rec).await {
        let all = all_text(&r);
        assert!(
            all.contains('\u{202e}') && all.contains('\u{e0069}'),
            "{tool}: {all:?}"
        );
    }
    let got = ok(
        &h.client,
        "get_record",
        json!({"base_id": DEMO, "table_id": "People", "record_id": rec}),
    )
    .await;
    assert_eq!(got["record"]["fields"]["Name"], dirty_name());
}

// ---------------------------------------------------------------------------------------------
// No host file access unless configured: export_table_csv writes only inside --export-dir.

/// Every file name under `dir`, recursively (symlinks not followed), sorted.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("entry");
            let p = e.path();
            out.push(p.strip_prefix(dir).expect("prefix").display().to_string());
            if e.file_type().expect("type").is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

fn export(path: &str) -> Value {
    json!({"base_id": DEMO, "table_id": "People", "fields": ["Name"], "path": path})
}

#[tokio::test]
async fn export_paths_are_confined_to_the_export_dir() {
    let outer = tempfile::tempdir().expect("tempdir");
    let outer_path = outer.path().canonicalize().expect("canonical");
    let root = outer_path.join("exports");
    std::fs::create_dir_all(root.join("sub")).expect("dirs");
    let elsewhere = outer_path.join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("dir");
    std::fs::write(elsewhere.join("x.csv"), "precious").expect("victim");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(elsewhere.join("x.csv"), root.join("x.csv")).expect("link");
        std::os::unix::fs::symlink(&elsewhere, root.join("linked")).expect("dir link");
    }
    let h = harness_with(airtable_mcp::tools::ServerOptions {
        export_dir: Some(root.clone()),
        ..Default::default()
    })
    .await;
    let before = tree(&outer_path);

    let outside = outer_path.join("outside.csv");
    let mut hostile = vec![
        ("../x.csv".to_owned(), "\"..\""),
        ("sub/../../x.csv".to_owned(), "\"..\""),
        ("/etc/x.csv".to_owned(), "outside the export directory"),
        (
            outside.display().to_string(),
            "outside the export directory",
        ),
        ("missing/x.csv".to_owned(), "does not exist"),
        ("notes.txt".to_owned(), ".csv"),
    ];
    if cfg!(unix) {
        hostile.push(("x.csv".to_owned(), "symbolic link"));
        hostile.push(("linked/new.csv".to_owned(), "symbolic link"));
    }
    for (path, why) in &hostile {
        let e = err(&h.client, "export_table_csv", export(path)).await;
        assert!(e.contains(why), "{path}: {e}");
        let e = err(
            &h.client,
            "export_table_csv",
            json!({"base_id": DEMO, "table_id": "People", "path": path, "overwrite": true}),
        )
        .await;
        assert!(e.contains(why), "{path} (overwrite): {e}");
    }
    assert_eq!(tree(&outer_path), before, "nothing was written");
    assert_eq!(
        std::fs::read_to_string(elsewhere.join("x.csv")).expect("victim"),
        "precious"
    );

    // A normal path inside works, relative or absolute inside.
    let out = ok(&h.client, "export_table_csv", export("sub/people.csv")).await;
    let written = root.join("sub/people.csv");
    assert_eq!(out["path"], written.display().to_string());
    let text = std::fs::read_to_string(&written).expect("written");
    assert!(text.starts_with("Name\r\n"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&written)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    let abs = root.join("people.csv");
    ok(
        &h.client,
        "export_table_csv",
        export(&abs.display().to_string()),
    )
    .await;
    assert!(abs.is_file());
}

#[tokio::test]
async fn without_export_dir_or_under_read_only_no_file_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().canonicalize().expect("canonical");
    let target = root.join("out.csv");

    let h = harness().await;
    let e = err(
        &h.client,
        "export_table_csv",
        export(&target.display().to_string()),
    )
    .await;
    assert!(e.contains("--export-dir DIR"), "{e}");
    let e = err(&h.client, "export_table_csv", export("out.csv")).await;
    assert!(e.contains("--export-dir DIR"), "{e}");

    let h = harness_with(airtable_mcp::tools::ServerOptions {
        export_dir: Some(root.clone()),
        read_only: true,
        ..Default::default()
    })
    .await;
    let e = err(&h.client, "export_table_csv", export("out.csv")).await;
    assert!(e.contains("read-only"), "{e}");
    // Inline CSV still works.
    let out = ok(
        &h.client,
        "export_table_csv",
        json!({"base_id": DEMO, "table_id": "People", "fields": ["Name"]}),
    )
    .await;
    assert!(out["csv"].as_str().expect("csv").starts_with("Name\r\n"));
    assert!(out.get("path").is_none());
    assert!(tree(&root).is_empty(), "{:?}", tree(&root));
}

#[tokio::test]
async fn a_write_call_is_capped_in_records_and_bytes_and_sends_nothing_over_them() {
    let h = harness().await;
    let before = h.sandbox.stats();
    // 10,001 records: refused up front, before any request (issue #11: 100,000 were accepted).
    let records: Vec<Value> = (0..10_001)
        .map(|i| json!({"Name": format!("r{i}")}))
        .collect();
    let e = err(
        &h.client,
        "batch_create_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "records": records}),
    )
    .await;
    assert!(e.contains("at most 10000 per call"), "{e}");
    // Over 8 MiB of arguments: refused before the tool runs.
    let big: Vec<Value> = (0..10)
        .map(|i| json!({"Name": format!("r{i}"), "Notes": "x".repeat(900 * 1024)}))
        .collect();
    let e = err(
        &h.client,
        "batch_create_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "records": big}),
    )
    .await;
    assert!(e.contains("at most 8388608 bytes"), "{e}");
    let after = h.sandbox.stats();
    assert_eq!(
        after.writes, before.writes,
        "nothing was written: {after:?}"
    );
    // The cap is stated where the model reads it.
    let tools = h.client.list_all_tools().await.unwrap();
    let t = tools
        .iter()
        .find(|t| t.name == "batch_create_records")
        .unwrap();
    let doc = t.input_schema["properties"]["records"]["description"]
        .as_str()
        .unwrap();
    assert!(doc.contains("10,000"), "{doc}");
}
