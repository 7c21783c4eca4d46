//! Linked records and views (issue #13): list_views, expand_links on get_records / get_record /
//! search_records, find_link_candidates, and `view` on the analysis and transfer tools, against
//! the demo sandbox through an in-process MCP client. Request counts come from the sandbox.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::mcp_support;

use std::collections::HashMap;
use std::str::FromStr;

use airtable_mcp::airtable::{
    BaseId, Client, CreateField, CreateTable, FieldSpec, Fields, GetOptions, ListQuery, RecordId,
    UpdateMode, WriteOptions,
};
use mcp_support::*;
use serde_json::{Value, json};

fn base() -> BaseId {
    BaseId::from_str(DEMO).expect("demo base id")
}

/// Record ID → primary value ("Name") of a demo table, read directly.
async fn names_of(client: &Client, table: &str) -> HashMap<String, String> {
    client
        .list_all_records(&base(), table, ListQuery::default())
        .await
        .expect("list")
        .into_iter()
        .map(|r| {
            let name = r.fields["Name"].as_str().expect("name").to_owned();
            (r.id.to_string(), name)
        })
        .collect()
}

/// The requests the sandbox has served so far.
fn requests(h: &Harness) -> u64 {
    h.sandbox.stats().requests
}

/// A compact records result as (column → value) maps.
fn rows(v: &Value) -> Vec<HashMap<String, Value>> {
    let cols: Vec<String> = v["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            cols.iter()
                .cloned()
                .zip(r.as_array().unwrap().iter().cloned())
                .collect()
        })
        .collect()
}

/// The items of a link cell: a list, or (a single-record link holding one) the item itself.
fn link_items(cell: &Value) -> Vec<&Value> {
    match cell {
        Value::Array(items) => items.iter().collect(),
        Value::Null => panic!("empty link cell"),
        one => vec![one],
    }
}

/// Every {id, name} of a link cell has the linked record's primary value; returns how many.
fn check_expanded(cell: &Value, names: &HashMap<String, String>) -> usize {
    let items = link_items(cell);
    for item in &items {
        let id = item["id"].as_str().expect("id");
        assert_eq!(
            item["name"].as_str(),
            Some(names[id].as_str()),
            "name of {id}"
        );
    }
    items.len()
}

#[tokio::test]
async fn list_views_lists_the_schema_views_without_a_request_on_a_warm_cache() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let schema = client.base_schema(&base()).await.expect("schema");
    let tasks = schema.table("Tasks").expect("Tasks");
    ok(&h.client, "list_tables", json!({"base_id": DEMO})).await; // warms the cache
    let before = requests(&h);
    let v = ok(
        &h.client,
        "list_views",
        json!({"base_id": DEMO, "table_id": "Tasks"}),
    )
    .await;
    assert_eq!(requests(&h), before, "a warm cache answers list_views");
    assert_eq!(v["table_id"], tasks.id.to_string());
    assert_eq!(v["count"], tasks.views.len());
    let got: Vec<(String, String, String)> = v["views"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["id"].as_str().unwrap().to_owned(),
                x["name"].as_str().unwrap().to_owned(),
                x["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String, String)> = tasks
        .views
        .iter()
        .map(|x| (x.id.to_string(), x.name.clone(), x.view_type.clone()))
        .collect();
    assert_eq!(got, want);
    assert!(got.iter().any(|(_, n, t)| n == "Open tasks" && t == "grid"));

    // By table ID too; an unknown table is an error with a suggestion.
    let by_id = ok(
        &h.client,
        "list_views",
        json!({"base_id": DEMO, "table_id": tasks.id.to_string()}),
    )
    .await;
    assert_eq!(by_id["views"], v["views"]);
    let e = err(
        &h.client,
        "list_views",
        json!({"base_id": DEMO, "table_id": "Task"}),
    )
    .await;
    assert!(e.contains("Did you mean \"Tasks\""), "{e}");
}

#[tokio::test]
async fn get_records_expands_links_in_a_bounded_number_of_requests() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let projects = names_of(&client, "Projects").await;
    let people = names_of(&client, "People").await;
    let args = json!({"base_id": DEMO, "table_id": "Tasks", "max_records": 100,
                      "fields": ["Name", "Project", "Assignee"]});
    ok(&h.client, "list_tables", json!({"base_id": DEMO})).await; // warms the cache

    let before = requests(&h);
    let plain = ok(&h.client, "get_records", args.clone()).await;
    assert_eq!(requests(&h) - before, 1, "one page, no expansion");
    let plain_rows = rows(&plain);
    // IDs by default; Project prefers a single linked record, so its one ID is written bare.
    assert!(
        plain_rows[0]["Project"]
            .as_str()
            .is_some_and(|s| s.starts_with("rec")),
        "{:?}",
        plain_rows[0]["Project"]
    );

    let mut with = args.clone();
    with["expand_links"] = json!(true);
    let before = requests(&h);
    let v = ok(&h.client, "get_records", with).await;
    // One page of tasks, then one request per linked table (Projects, People): each table's
    // distinct IDs fit in one OR(RECORD_ID()=...) formula.
    assert_eq!(requests(&h) - before, 3, "1 page + 1 per linked table");
    let got = rows(&v);
    assert_eq!(got.len(), 100);
    let (mut p, mut a) = (0, 0);
    for (r, plain) in got.iter().zip(&plain_rows) {
        assert_eq!(r["id"], plain["id"]);
        if let Some(cell) = r.get("Project").filter(|c| !c.is_null()) {
            p += check_expanded(cell, &projects);
            assert!(
                cell.is_object(),
                "one expanded link: {{id, name}} itself, {cell}"
            );
            let ids: Vec<&Value> = link_items(cell).into_iter().map(|x| &x["id"]).collect();
            let plain_ids: Vec<&Value> = link_items(&plain["Project"]);
            assert_eq!(ids, plain_ids, "same links, same order");
        }
        if let Some(cell) = r.get("Assignee").filter(|c| !c.is_null()) {
            a += check_expanded(cell, &people);
        }
    }
    assert!(p >= 100 && a > 0, "links checked: {p} projects, {a} people");
    assert!(v.get("note").is_none(), "nothing capped: {v}");
}

/// Issue 12: a single-record link holding one ID reads as the ID (2+ IDs stay a list), and
/// what get_records gives back (bare IDs, slim attachments) is written back as given, through
/// every record write tool, though Airtable (the sandbox) rejects a bare ID without typecast.
#[tokio::test]
async fn single_record_links_read_as_the_id_and_write_back_as_read() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let mut projects: Vec<String> = names_of(&client, "Projects").await.into_keys().collect();
    projects.sort();
    let task = client
        .list_records_page(
            &base(),
            "Tasks",
            &ListQuery {
                filter_by_formula: Some("{Attachments}".into()),
                max_records: Some(1),
                ..ListQuery::default()
            },
        )
        .await
        .expect("a task with an attachment")
        .records
        .remove(0);
    let task_id = task.id.to_string();
    let other = projects
        .iter()
        .find(|p| Some(p.as_str()) != task.fields["Project"][0].as_str())
        .unwrap()
        .clone();

    // The sandbox, like Airtable, refuses a bare record ID for a link field without typecast.
    let bare: Fields = json!({"Project": other}).as_object().cloned().unwrap();
    let e = client
        .update_record(
            &base(),
            "Tasks",
            &task.id,
            bare,
            UpdateMode::Patch,
            &WriteOptions::default(),
        )
        .await
        .expect_err("a bare ID is not a list of IDs");
    assert_eq!(e.status(), Some(422), "{e}");

    let read = |id: String| {
        let c = &h.client;
        async move {
            let v = ok(
                c,
                "get_records",
                json!({"base_id": DEMO, "table_id": "Tasks", "record_ids": [id],
                       "fields": ["Name", "Project", "Project status", "Attachments"]}),
            )
            .await;
            rows(&v).remove(0)
        }
    };
    let row = read(task_id.clone()).await;
    assert_eq!(row["Project"], task.fields["Project"][0], "one ID: the ID");
    assert!(
        row["Project status"].is_string(),
        "{:?}",
        row["Project status"]
    );
    let att = &row["Attachments"][0];
    let keys: Vec<&String> = att.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "filename", "type", "url"], "{att}");

    // update_record takes the cells as read, and a bare ID of another project.
    ok(
        &h.client,
        "update_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": task_id,
               "fields": {"Project": other, "Attachments": row["Attachments"]}}),
    )
    .await;
    let now = client
        .get_record(&base(), "Tasks", &task.id, &GetOptions::default())
        .await
        .unwrap();
    assert_eq!(now.fields["Project"], json!([other]));
    assert_eq!(
        now.fields["Attachments"], task.fields["Attachments"],
        "the attachment kept, size and all"
    );

    // Two IDs (the API allows it on a single-record link) stay a list.
    ok(
        &h.client,
        "batch_update_records",
        json!({"base_id": DEMO, "table_id": "Tasks",
               "records": [{"id": task_id, "fields": {"Project": [projects[0], projects[1]]}}]}),
    )
    .await;
    let row = read(task_id.clone()).await;
    assert_eq!(row["Project"], json!([projects[0], projects[1]]));
    assert!(
        row["Project status"].is_array(),
        "{:?}",
        row["Project status"]
    );

    // Creates and upserts take a bare ID too.
    let created = ok(
        &h.client,
        "create_record",
        json!({"base_id": DEMO, "table_id": "Tasks",
               "fields": {"Name": "issue 12 single", "Project": projects[0]}}),
    )
    .await;
    assert_eq!(created["record"]["fields"]["Project"], json!([projects[0]]));
    let up = ok(
        &h.client,
        "batch_upsert_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "fields_to_merge_on": ["Name"],
               "records": [{"Name": "issue 12 upsert", "Project": projects[1]}]}),
    )
    .await;
    let new_id = up["created_ids"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{up}"))
        .to_owned();
    let rec = client
        .get_record(
            &base(),
            "Tasks",
            &new_id.parse::<RecordId>().unwrap(),
            &GetOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(rec.fields["Project"], json!([projects[1]]));
    assert_eq!(read(new_id).await["Project"], json!(projects[1]));
}

#[tokio::test]
async fn get_record_and_search_records_expand_links() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let people = names_of(&client, "People").await;
    let projects = names_of(&client, "Projects").await;
    let any = client
        .list_records_page(
            &base(),
            "Projects",
            &ListQuery {
                filter_by_formula: Some("{Owner}".into()),
                ..ListQuery::default()
            },
        )
        .await
        .expect("projects")
        .records
        .remove(0);
    let v = ok(
        &h.client,
        "get_record",
        json!({"base_id": DEMO, "table_id": "Projects", "record_id": any.id.to_string(),
               "expand_links": true}),
    )
    .await;
    assert_eq!(check_expanded(&v["record"]["fields"]["Owner"], &people), 1);
    // Lookups are not links: left as they are.
    assert_eq!(
        v["record"]["fields"]["Owner email"],
        any.fields["Owner email"]
    );
    // Links outside the `fields` projection are not resolved: no request beyond the record.
    let before = requests(&h);
    let v = ok(
        &h.client,
        "get_record",
        json!({"base_id": DEMO, "table_id": "Projects", "record_id": any.id.to_string(),
               "fields": ["Name"], "expand_links": true}),
    )
    .await;
    assert_eq!(requests(&h) - before, 1);
    assert_eq!(v["record"]["fields"]["Name"], any.fields["Name"]);
    assert!(v["record"]["fields"].get("Owner").is_none());

    // search_records: a project name found in Tasks' text, links expanded.
    let v = ok(
        &h.client,
        "search_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "query": "a", "max_records": 30,
               "expand_links": "true"}),
    )
    .await;
    let got = rows(&v);
    assert!(!got.is_empty());
    let mut n = 0;
    for r in &got {
        if let Some(c) = r.get("Project").filter(|c| !c.is_null()) {
            n += check_expanded(c, &projects);
        }
    }
    assert!(n > 0);
}

#[tokio::test]
async fn expand_links_caps_distinct_ids_and_says_so() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let spec = |name: &str, t: &str| FieldSpec {
        name: name.into(),
        field_type: serde_json::from_value(json!(t)).unwrap(),
        description: None,
        options: None,
    };
    let many = client
        .create_table(
            &base(),
            &CreateTable {
                name: "Many".into(),
                description: None,
                fields: vec![spec("Label", "singleLineText")],
            },
        )
        .await
        .expect("table");
    let hub = client
        .create_table(
            &base(),
            &CreateTable {
                name: "Hub".into(),
                description: None,
                fields: vec![spec("Name", "singleLineText")],
            },
        )
        .await
        .expect("table");
    client
        .create_field(
            &base(),
            hub.id.as_ref(),
            &CreateField {
                name: "Items".into(),
                field_type: serde_json::from_value(json!("multipleRecordLinks")).unwrap(),
                description: None,
                options: Some(json!({"linkedTableId": many.id.to_string()})),
            },
        )
        .await
        .expect("link field");
    let rows_in: Vec<Fields> = (0..1005)
        .map(|i| {
            json!({"Label": format!("item {i}")})
                .as_object()
                .cloned()
                .unwrap()
        })
        .collect();
    let out = client
        .create_records(&base(), many.id.as_ref(), rows_in, &WriteOptions::default())
        .await;
    assert!(out.is_complete());
    let ids: Vec<String> = out.written.iter().map(|r| r.id.to_string()).collect();
    let hub_rec = client
        .create_records(
            &base(),
            hub.id.as_ref(),
            vec![
                json!({"Name": "all", "Items": ids})
                    .as_object()
                    .cloned()
                    .unwrap(),
            ],
            &WriteOptions::default(),
        )
        .await;
    assert!(hub_rec.is_complete());
    let rec_id = hub_rec.written[0].id.to_string();

    let before = requests(&h);
    let v = ok(
        &h.client,
        "get_record",
        json!({"base_id": DEMO, "table_id": "Hub", "record_id": rec_id, "expand_links": true}),
    )
    .await;
    // Schema + the record + 10 reads of 100 IDs.
    assert_eq!(requests(&h) - before, 12);
    let items = v["record"]["fields"]["Items"].as_array().expect("items");
    assert_eq!(items.len(), 1005);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["id"], ids[i]);
        if i < 1000 {
            assert_eq!(item["name"], format!("item {i}"), "item {i}");
        } else {
            assert!(item["name"].is_null(), "item {i} is past the cap");
        }
    }
    let note = v["note"].as_str().expect("note");
    assert!(note.contains("1000") && note.contains("5 more"), "{note}");
}

#[tokio::test]
async fn find_link_candidates_returns_linked_records_ready_to_link() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let projects = names_of(&client, "Projects").await;
    let (target_id, target) = projects
        .iter()
        .next()
        .map(|(i, n)| (i.clone(), n.clone()))
        .unwrap();
    let query = target.to_uppercase();
    let before = requests(&h);
    let v = ok(
        &h.client,
        "find_link_candidates",
        json!({"base_id": DEMO, "table_id": "Tasks", "field": "Project", "query": query}),
    )
    .await;
    assert_eq!(requests(&h) - before, 2, "schema + one search");
    assert_eq!(v["field"], "Project");
    assert_eq!(v["linked_table"], "Projects");
    let c = v["candidates"].as_array().unwrap();
    assert_eq!(c[0]["id"], target_id, "the exact name first: {v}");
    assert_eq!(c[0]["name"], target);
    for x in c {
        assert_eq!(
            x["name"].as_str(),
            Some(projects[x["id"].as_str().unwrap()].as_str())
        );
    }
    assert!(v["how_to_link"].as_str().unwrap().contains("update_record"));

    // Empty query: the first records of the linked table, bounded by max_records.
    let v = ok(
        &h.client,
        "find_link_candidates",
        json!({"base_id": DEMO, "table_id": "Tasks", "field": "Assignee", "max_records": 5}),
    )
    .await;
    assert_eq!(v["count"], 5);
    assert_eq!(v["has_more"], true);
    assert_eq!(v["linked_table"], "People");

    // A field that is not a link, and an unknown field: errors with suggestions, no request.
    let before = requests(&h);
    let e = err(
        &h.client,
        "find_link_candidates",
        json!({"base_id": DEMO, "table_id": "Tasks", "field": "Status", "query": "x"}),
    )
    .await;
    assert!(e.contains("not a link"), "{e}");
    assert!(e.contains("\"Project\", \"Assignee\""), "{e}");
    let e = err(
        &h.client,
        "find_link_candidates",
        json!({"base_id": DEMO, "table_id": "Tasks", "field": "Projekt", "query": "x"}),
    )
    .await;
    assert!(e.contains("Did you mean \"Project\""), "{e}");
    assert_eq!(requests(&h), before, "refused before any request");
}

#[tokio::test]
async fn analysis_and_transfer_tools_take_a_view_by_name_or_id() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    // The sync target (made before the server caches the schema).
    let target = client
        .create_table(
            &base(),
            &CreateTable {
                name: "Open copy".into(),
                description: None,
                fields: vec![FieldSpec {
                    name: "Name".into(),
                    field_type: serde_json::from_value(json!("singleLineText")).unwrap(),
                    description: None,
                    options: None,
                }],
            },
        )
        .await
        .expect("target");
    let schema = client.base_schema(&base()).await.expect("schema");
    let open = schema
        .table("Tasks")
        .unwrap()
        .views
        .iter()
        .find(|v| v.name == "Open tasks")
        .unwrap()
        .id
        .to_string();
    let open_count = client
        .list_all_records(
            &base(),
            "Tasks",
            ListQuery {
                view: Some("Open tasks".into()),
                ..ListQuery::default()
            },
        )
        .await
        .unwrap()
        .len();
    assert!(open_count > 0 && open_count < 168);

    for view in ["Open tasks", open.as_str()] {
        let v = ok(
            &h.client,
            "analyze_table_data",
            json!({"base_id": DEMO, "table_id": "Tasks", "sample_size": 1000, "view": view}),
        )
        .await;
        assert_eq!(v["records_analyzed"], open_count);
        let v = ok(
            &h.client,
            "find_duplicates",
            json!({"base_id": DEMO, "table_id": "Tasks", "fields": ["Status"], "view": view}),
        )
        .await;
        assert_eq!(v["records_scanned"], open_count);
        let v = ok(
            &h.client,
            "export_table_csv",
            json!({"base_id": DEMO, "table_id": "Tasks", "fields": ["Name"], "view": view}),
        )
        .await;
        assert_eq!(v["rows"], open_count, "{v}");
    }

    // sync_tables reads only the source view's records.
    let plan = ok(
        &h.client,
        "sync_tables",
        json!({"source_base_id": DEMO, "source_table_id": "Tasks", "source_view": "Open tasks",
               "target_base_id": DEMO, "target_table_id": target.id.to_string(), "key_field": "Name"}),
    )
    .await;
    assert_eq!(plan["source_records"], open_count, "{plan}");

    let before = requests(&h);
    for (tool, args) in [
        (
            "sync_tables",
            json!({"source_base_id": DEMO, "source_table_id": "Tasks", "source_view": "Open task",
                   "target_base_id": DEMO, "target_table_id": "Open copy", "key_field": "Name"}),
        ),
        (
            "analyze_table_data",
            json!({"base_id": DEMO, "table_id": "Tasks", "view": "Open task"}),
        ),
        (
            "find_duplicates",
            json!({"base_id": DEMO, "table_id": "Tasks", "fields": ["Status"], "view": "Open task"}),
        ),
        (
            "export_table_csv",
            json!({"base_id": DEMO, "table_id": "Tasks", "view": "Open task"}),
        ),
    ] {
        let e = err(&h.client, tool, args).await;
        assert!(e.contains("Did you mean \"Open tasks\""), "{tool}: {e}");
    }
    assert_eq!(
        requests(&h),
        before,
        "unknown views refused before any request"
    );
}
