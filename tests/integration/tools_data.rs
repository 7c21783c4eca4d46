//! The analysis and transfer tools (analyze_table_data, find_duplicates, export_table_csv,
//! create_metadata_table, sync_tables) against the sandbox, through an in-process MCP client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::mcp_support;

use std::str::FromStr;

use airtable_mcp::airtable::{
    BaseId, Client, CreateField, CreateTable, FieldSpec, Fields, ListQuery, WriteOptions,
};
use airtable_mcp::tools::ServerOptions;
use mcp_support::*;
use serde_json::{Value, json};

fn base() -> BaseId {
    BaseId::from_str(DEMO).expect("demo base id")
}

fn spec(name: &str, t: &str) -> FieldSpec {
    FieldSpec {
        name: name.into(),
        field_type: serde_json::from_value(json!(t)).expect("field type"),
        description: None,
        options: if t == "number" {
            Some(json!({"precision": 0}))
        } else {
            None
        },
    }
}

/// A scratch table with the given (name, type) fields and records; returns its ID.
async fn scratch(
    client: &Client,
    name: &str,
    fields: &[(&str, &str)],
    records: Vec<Value>,
) -> String {
    let req = CreateTable {
        name: name.into(),
        description: None,
        fields: fields.iter().map(|(n, t)| spec(n, t)).collect(),
    };
    let table = client
        .create_table(&base(), &req)
        .await
        .expect("create table");
    let id = table.id.to_string();
    if !records.is_empty() {
        let rows: Vec<Fields> = records
            .into_iter()
            .map(|v| v.as_object().cloned().expect("object"))
            .collect();
        let out = client
            .create_records(&base(), &id, rows, &WriteOptions::default())
            .await;
        assert!(out.is_complete(), "seed records: {:?}", out.failure);
    }
    id
}

async fn all_records(client: &Client, table: &str) -> Vec<airtable_mcp::airtable::Record> {
    client
        .list_all_records(&base(), table, ListQuery::default())
        .await
        .expect("list records")
}

// ---------------------------------------------------------------------------------------------
// analyze_table_data

#[tokio::test]
async fn analyze_table_data_profiles_a_demo_table_with_progress() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let schema = client.base_schema(&base()).await.expect("schema");
    // Tasks holds 168 records: a 150-record sample takes two pages.
    let table = schema
        .tables
        .iter()
        .find(|t| t.name == "Tasks")
        .expect("Tasks table");
    let (r, progress) = call_with_progress(
        &h.client,
        "analyze_table_data",
        json!({"base_id": DEMO, "table_id": table.name, "sample_size": 150}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    let out = r.structured_content.clone().expect("structured");
    assert_eq!(out["table_id"], table.id.to_string());
    assert_eq!(out["records_analyzed"], 150);
    assert_eq!(
        out["has_more"], true,
        "the Tasks table holds more than 150 records"
    );
    let fields = out["fields"].as_array().expect("fields");
    assert_eq!(fields.len(), table.fields.len());
    // The primary field is filled in every record.
    let primary = fields
        .iter()
        .find(|f| f["id"] == table.primary_field_id.to_string())
        .expect("primary field stats");
    assert!(
        primary["fill_rate"].as_f64().expect("rate") > 0.9,
        "{primary}"
    );
    assert!(!progress.is_empty(), "a multi-page read sends progress");
    // Compact text, never pretty-printed.
    assert!(!text(&r).contains("\n  "));
}

#[tokio::test]
async fn analyze_table_data_computes_stats_on_known_data() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let id = scratch(
        &client,
        "Stats",
        &[
            ("Name", "singleLineText"),
            ("Hours", "number"),
            ("Due", "date"),
        ],
        vec![
            json!({"Name": "a", "Hours": 1, "Due": "2024-03-01"}),
            json!({"Name": "a", "Hours": 3, "Due": "2024-01-15"}),
            json!({"Name": "b", "Hours": 8}),
            json!({"Hours": 4}),
        ],
    )
    .await;
    let out = ok(
        &h.client,
        "analyze_table_data",
        json!({"base_id": DEMO, "table_id": id, "fields": ["Name", "Hours", "Due"]}),
    )
    .await;
    assert_eq!(out["records_analyzed"], 4);
    assert_eq!(out["has_more"], false);
    let f = |name: &str| {
        out["fields"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["name"] == name))
            .cloned()
            .expect("field")
    };
    assert_eq!(f("Name")["fill_rate"], 0.75);
    assert_eq!(f("Name")["distinct_count"], 2);
    assert_eq!(
        f("Name")["top_values"][0],
        json!({"value": "a", "count": 2})
    );
    assert_eq!(
        f("Hours")["numbers"],
        json!({"min": 1.0, "max": 8.0, "mean": 4.0, "median": 3.5})
    );
    assert_eq!(
        f("Due")["dates"],
        json!({"earliest": "2024-01-15", "latest": "2024-03-01"})
    );
}

#[tokio::test]
async fn analyze_table_data_rejects_bad_input_with_a_fix() {
    let h = harness().await;
    let e = err(
        &h.client,
        "analyze_table_data",
        json!({"base_id": DEMO, "table_id": "Nope", "sample_size": 10}),
    )
    .await;
    assert!(e.contains("list_tables"), "{e}");
    let e = err(
        &h.client,
        "analyze_table_data",
        json!({"base_id": DEMO, "table_id": "x", "sample_size": 5000}),
    )
    .await;
    assert!(e.contains("between 1 and 1000"), "{e}");
    let e = err(
        &h.client,
        "analyze_table_data",
        json!({"base_id": "appBAD", "table_id": "x"}),
    )
    .await;
    assert!(e.contains("list_bases"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// find_duplicates

#[tokio::test]
async fn find_duplicates_groups_normalised_keys() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let id = scratch(
        &client,
        "People dup",
        &[("Name", "singleLineText"), ("Email", "email")],
        vec![
            json!({"Name": "Ada Lovelace", "Email": "ada@x.org"}),
            json!({"Name": "  ada   LOVELACE ", "Email": "ADA@x.org"}),
            json!({"Name": "Alan Turing", "Email": "alan@x.org"}),
            json!({"Name": "Grace", "Email": "alan@x.org "}),
            json!({"Name": "No mail"}),
            json!({"Name": "No mail either"}),
        ],
    )
    .await;
    let recs = all_records(&client, &id).await;
    let id_of = |name: &str| {
        recs.iter()
            .find(|r| r.fields.get("Name") == Some(&json!(name)))
            .map(|r| r.id.to_string())
            .expect("record")
    };

    let out = ok(
        &h.client,
        "find_duplicates",
        json!({"base_id": DEMO, "table_id": id, "fields": ["Email"]}),
    )
    .await;
    assert_eq!(out["records_scanned"], 6);
    assert_eq!(out["skipped_empty"], 2);
    assert_eq!(out["group_count"], 2);
    let groups = out["groups"].as_array().expect("groups");
    assert_eq!(groups[0]["key"], json!(["ada@x.org"]));
    assert_eq!(
        groups[0]["record_ids"],
        json!([id_of("Ada Lovelace"), id_of("  ada   LOVELACE ")])
    );

    let out = ok(
        &h.client,
        "find_duplicates",
        json!({"base_id": DEMO, "table_id": id, "fields": ["Name", "Email"]}),
    )
    .await;
    assert_eq!(out["group_count"], 1);
    assert_eq!(
        out["groups"][0]["key"],
        json!(["ada lovelace", "ada@x.org"])
    );

    // Without ignore_empty, the two records with no email form a group too.
    let out = ok(
        &h.client,
        "find_duplicates",
        json!({"base_id": DEMO, "table_id": id, "fields": "Email", "ignore_empty": false}),
    )
    .await;
    assert_eq!(out["group_count"], 3);

    let e = err(
        &h.client,
        "find_duplicates",
        json!({"base_id": DEMO, "table_id": id, "fields": ["Emial"]}),
    )
    .await;
    assert!(e.contains("Did you mean \"Email\""), "{e}");
    let e = err(
        &h.client,
        "find_duplicates",
        json!({"base_id": DEMO, "table_id": id, "fields": []}),
    )
    .await;
    assert!(e.contains("fields is empty"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// export_table_csv

#[tokio::test]
async fn export_table_csv_returns_text_and_writes_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().canonicalize().expect("canonical");
    let h = harness_with(ServerOptions {
        export_dir: Some(root.clone()),
        ..ServerOptions::default()
    })
    .await;
    let client = client_for(&h.sandbox);
    let id = scratch(
        &client,
        "Export",
        &[
            ("Name", "singleLineText"),
            ("Tags", "multipleSelects"),
            ("Notes", "multilineText"),
        ],
        vec![
            json!({"Name": "plain", "Notes": "one"}),
            json!({"Name": "with, comma", "Notes": "line1\nline2 \"quoted\""}),
        ],
    )
    .await;
    // Give the second record two tags (typecast creates the options).
    let recs = all_records(&client, &id).await;
    let second = recs
        .iter()
        .find(|r| r.fields.get("Name") == Some(&json!("with, comma")))
        .expect("record");
    client
        .update_records(
            &base(),
            &id,
            vec![airtable_mcp::airtable::RecordUpdate {
                id: second.id.clone(),
                fields: json!({"Tags": ["x", "y"]})
                    .as_object()
                    .cloned()
                    .expect("obj"),
            }],
            airtable_mcp::airtable::UpdateMode::Patch,
            &WriteOptions {
                typecast: true,
                ..WriteOptions::default()
            },
        )
        .await;

    let path = root.join("out.csv");
    let out = ok(
        &h.client,
        "export_table_csv",
        json!({"base_id": DEMO, "table_id": id, "fields": ["Notes", "Name", "Tags"], "path": "out.csv"}),
    )
    .await;
    assert_eq!(out["columns"], json!(["Notes", "Name", "Tags"]));
    assert_eq!(out["rows"], 2);
    assert_eq!(out["truncated"], false);
    let csv_text = out["csv"].as_str().expect("csv");
    assert!(csv_text.starts_with("Notes,Name,Tags\r\n"), "{csv_text}");
    assert!(
        csv_text.contains("\"line1\nline2 \"\"quoted\"\"\",\"with, comma\",\"x, y\"\r\n"),
        "{csv_text}"
    );
    assert_eq!(std::fs::read_to_string(&path).expect("file"), csv_text);
    assert_eq!(out["path"], path.display().to_string());

    // A real CSV reader gets the cells back.
    let mut rd = csv::Reader::from_reader(csv_text.as_bytes());
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 2);

    let e = err(
        &h.client,
        "export_table_csv",
        json!({"base_id": DEMO, "table_id": id, "path": "out.csv"}),
    )
    .await;
    assert!(
        e.contains("already exists") && e.contains("overwrite"),
        "{e}"
    );
    let e = err(
        &h.client,
        "export_table_csv",
        json!({"base_id": DEMO, "table_id": id, "path": "missing/out.csv"}),
    )
    .await;
    assert!(e.contains("does not exist"), "{e}");
    let out = ok(
        &h.client,
        "export_table_csv",
        json!({"base_id": DEMO, "table_id": id, "path": path, "overwrite": true, "include_record_id": true}),
    )
    .await;
    assert_eq!(out["columns"][0], "Record ID");
}

#[tokio::test]
async fn export_table_csv_says_when_the_text_is_cut() {
    let h = harness_with(ServerOptions {
        result_budget: 6_000,
        ..ServerOptions::default()
    })
    .await;
    let client = client_for(&h.sandbox);
    let schema = client.base_schema(&base()).await.expect("schema");
    let table = &schema.tables[0];
    let out = ok(
        &h.client,
        "export_table_csv",
        json!({"base_id": DEMO, "table_id": table.id.to_string(), "max_records": 150}),
    )
    .await;
    assert_eq!(out["truncated"], true, "{out}");
    assert!(out["csv_rows"].as_u64().expect("n") < out["rows"].as_u64().expect("n"));
    assert!(
        out["note"].as_str().expect("note").contains("path"),
        "{out}"
    );
    assert!(out["csv"].as_str().expect("csv").ends_with("\r\n"));
}

// ---------------------------------------------------------------------------------------------
// create_metadata_table

#[tokio::test]
async fn create_metadata_table_creates_then_updates_in_place() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let out = ok(&h.client, "create_metadata_table", json!({"base_id": DEMO})).await;
    assert_eq!(out["created_table"], true);
    assert_eq!(out["complete"], true, "{out}");
    let rows = out["rows"].as_u64().expect("rows");
    assert_eq!(out["created"], rows);
    let meta_id = out["table_id"].as_str().expect("id").to_owned();

    let schema = client.base_schema(&base()).await.expect("schema");
    let expected: usize = schema
        .tables
        .iter()
        .filter(|t| t.id.to_string() != meta_id)
        .map(|t| 1 + t.fields.len())
        .sum();
    assert_eq!(rows as usize, expected);
    let recs = all_records(&client, &meta_id).await;
    assert_eq!(recs.len(), expected);
    let t0 = &schema.tables[0];
    let f0 = &t0.fields[0];
    let row = recs
        .iter()
        .find(|r| r.fields.get("Key") == Some(&json!(format!("{}|{}", t0.id, f0.id))))
        .expect("row of the first field");
    assert_eq!(row.fields["Table"], json!(t0.name));
    assert_eq!(row.fields["Field"], json!(f0.name));

    // Second call: nothing to do.
    let again = ok(&h.client, "create_metadata_table", json!({"base_id": DEMO})).await;
    assert_eq!(again["created_table"], false);
    assert_eq!(again["unchanged"], rows);
    assert_eq!(again["created"], 0);

    // A new field and a renamed field: one row created, one updated.
    let t0_id = t0.id.to_string();
    let new_field: CreateField = spec("Brand new", "singleLineText");
    client
        .create_field(&base(), &t0_id, &new_field)
        .await
        .expect("create field");
    client
        .update_field(
            &base(),
            &t0_id,
            f0.id.as_ref(),
            &airtable_mcp::airtable::UpdateField {
                name: None,
                description: Some("documented".into()),
            },
        )
        .await
        .expect("update field");
    let third = ok(&h.client, "create_metadata_table", json!({"base_id": DEMO})).await;
    assert_eq!(third["created"], 1, "{third}");
    // The field's row (description) and its table's row (field count).
    assert_eq!(third["updated"], 2, "{third}");
    assert_eq!(third["deleted"], 0, "{third}");
}

#[tokio::test]
async fn create_metadata_table_leaves_a_foreign_table_alone_and_respects_read_only() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    scratch(&client, "Taken", &[("Name", "singleLineText")], vec![]).await;
    let e = err(
        &h.client,
        "create_metadata_table",
        json!({"base_id": DEMO, "table_name": "Taken"}),
    )
    .await;
    assert!(e.contains("not a metadata table"), "{e}");

    let ro = harness_with(ServerOptions {
        read_only: true,
        ..ServerOptions::default()
    })
    .await;
    let names = ro.state.tool_names();
    assert!(
        !names
            .iter()
            .any(|n| n == "create_metadata_table" || n == "sync_tables")
    );
    assert!(names.iter().any(|n| n == "export_table_csv"));
    let e = err(
        &ro.client,
        "create_metadata_table",
        json!({"base_id": DEMO}),
    )
    .await;
    assert!(e.contains("read-only"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// sync_tables

#[tokio::test]
async fn sync_tables_plans_then_applies_then_finds_nothing_to_do() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let source = scratch(
        &client,
        "Sync source",
        &[
            ("SKU", "singleLineText"),
            ("Title", "singleLineText"),
            ("Price", "number"),
            ("Secret", "singleLineText"),
        ],
        (0..23)
            .map(|i| json!({"SKU": format!("S{i}"), "Title": format!("Item {i}"), "Price": i}))
            .collect(),
    )
    .await;
    let target = scratch(
        &client,
        "Sync target",
        &[
            ("SKU", "singleLineText"),
            ("Title", "singleLineText"),
            ("Price", "number"),
        ],
        vec![
            json!({"SKU": "S0", "Title": "Item 0", "Price": 0}),
            json!({"SKU": "S1", "Title": "Old title", "Price": 1}),
            json!({"SKU": "Z9", "Title": "Only in target"}),
        ],
    )
    .await;
    let args = json!({
        "source_base_id": DEMO, "source_table_id": "Sync source",
        "target_base_id": DEMO, "target_table_id": target,
        "key_field": "SKU"
    });
    let plan = ok(&h.client, "sync_tables", args.clone()).await;
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["create_count"], 21);
    assert_eq!(plan["update_count"], 1);
    assert_eq!(plan["unchanged"], 1);
    assert_eq!(plan["unmatched_target_count"], 1);
    assert_eq!(plan["unmatched_target"][0]["key"], "Z9");
    assert_eq!(
        plan["updates"][0]["changes"],
        json!([{"field": "Title", "old": "Old title", "new": "Item 1"}])
    );
    assert_eq!(plan["fields_skipped"][0]["field"], "Secret");
    // Nothing was written by the dry run.
    assert_eq!(all_records(&client, &target).await.len(), 3);

    let mut apply = args.clone();
    apply["dry_run"] = json!(false);
    let (r, progress) = call_with_progress(&h.client, "sync_tables", apply).await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    let done = r.structured_content.expect("structured");
    assert_eq!(
        done["applied"],
        json!({"created": 21, "updated": 1, "complete": true})
    );
    assert!(!progress.is_empty());
    let recs = all_records(&client, &target).await;
    assert_eq!(recs.len(), 24);
    let s1 = recs
        .iter()
        .find(|r| r.fields.get("SKU") == Some(&json!("S1")))
        .expect("S1");
    assert_eq!(s1.fields["Title"], "Item 1");

    let after = ok(&h.client, "sync_tables", args).await;
    assert_eq!(after["create_count"], 0);
    assert_eq!(after["update_count"], 0);
    assert_eq!(after["unchanged"], 23);
    let _ = source;
}

#[tokio::test]
async fn sync_tables_explains_bad_keys() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let a = scratch(&client, "Key A", &[("Code", "singleLineText")], vec![]).await;
    let b = scratch(&client, "Key B", &[("Other", "singleLineText")], vec![]).await;
    let e = err(
        &h.client,
        "sync_tables",
        json!({"source_base_id": DEMO, "source_table_id": a, "target_base_id": DEMO,
               "target_table_id": b, "key_field": "Code"}),
    )
    .await;
    assert!(e.contains("not a field of the target"), "{e}");
    let e = err(
        &h.client,
        "sync_tables",
        json!({"source_base_id": DEMO, "source_table_id": a, "target_base_id": DEMO,
               "target_table_id": a, "key_field": "Code"}),
    )
    .await;
    assert!(e.contains("same table"), "{e}");
}
