//! The write pipeline of the schema, comment and transfer tools (issue #10): every dry run
//! sends no write request and previews exactly; every real run returns a write_id whose
//! journal entry holds what was written; a sync that stops part way journals exactly what it
//! wrote. In-process sandbox + MCP client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::mcp_support;

use std::str::FromStr;

use airtable_mcp::airtable::{BaseId, Client, CreateTable, FieldSpec, Fields, WriteOptions};
use mcp_support::*;
use serde_json::{Value, json};

fn base() -> BaseId {
    BaseId::from_str(DEMO).expect("demo base id")
}

/// Requests that could change something (every method but GET) the sandbox has received.
fn writes(h: &Harness) -> u64 {
    h.sandbox
        .stats()
        .by_method
        .iter()
        .filter(|(m, _)| m.as_str() != "GET")
        .map(|(_, n)| n)
        .sum()
}

/// A scratch table with (name, type) fields and records; returns its ID.
async fn scratch(
    client: &Client,
    name: &str,
    fields: &[(&str, &str)],
    records: Vec<Value>,
) -> String {
    let req = CreateTable {
        name: name.into(),
        description: None,
        fields: fields
            .iter()
            .map(|(n, t)| FieldSpec {
                name: (*n).into(),
                field_type: serde_json::from_value(json!(t)).expect("field type"),
                description: None,
                options: (*t == "number").then(|| json!({"precision": 0})),
            })
            .collect(),
    };
    let id = client
        .create_table(&base(), &req)
        .await
        .expect("create table")
        .id
        .to_string();
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

/// The journal entry of a result's write_id.
async fn journaled(h: &Harness, out: &Value) -> Value {
    let id = out["write_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no write_id in {out}"));
    h.state
        .journaled_write(id)
        .await
        .unwrap_or_else(|| panic!("write {id} is not in the journal"))
}

async fn table_names(c: &McpClient) -> Vec<String> {
    let t = ok(c, "list_tables", json!({"base_id": DEMO})).await;
    t["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn schema_tools_preview_exactly_then_journal() {
    let h = harness().await;
    let c = &h.client;

    // create_table
    let args = json!({"base_id": DEMO, "name": "Vendors", "description": "Suppliers", "fields": [
        {"name": "Name", "type": "singleLineText"},
        {"name": "Tier", "type": "singleSelect", "options": {"choices": [{"name": "A"}]}}
    ]});
    let mut dry = args.clone();
    dry["dry_run"] = json!(true);
    let w = writes(&h);
    let p = ok(c, "create_table", dry).await;
    assert_eq!(writes(&h), w, "a dry run sends no write");
    assert!(p.get("id").is_none() && p.get("write_id").is_none(), "{p}");
    assert_eq!(
        p["preview"]["create"],
        json!({"name": "Vendors", "description": "Suppliers", "fields": [
            {"name": "Name", "type": "singleLineText"},
            {"name": "Tier", "type": "singleSelect", "options": {"choices": [{"name": "A"}]}}
        ]})
    );
    assert_eq!(p["preview"]["dry_run"], true);
    assert_eq!(p["preview"]["undoable"], false);
    assert!(
        p["preview"]["note"]
            .as_str()
            .unwrap()
            .contains("cannot be undone"),
        "{p}"
    );
    assert!(!table_names(c).await.contains(&"Vendors".to_owned()));

    let t = ok(c, "create_table", args.clone()).await;
    assert_eq!(t["name"], "Vendors");
    assert!(t["note"].as_str().unwrap().contains("cannot be undone"));
    let table_id = t["id"].as_str().unwrap().to_owned();
    let entry = journaled(&h, &t).await;
    assert_eq!(entry["write"]["tool"], "create_table");
    assert_eq!(
        entry["write"]["changes"],
        json!([{"kind": "table_created", "table_id": table_id, "name": "Vendors"}])
    );
    let e = err(c, "create_table", args).await;
    assert!(e.contains("already has a table"), "{e}");

    // update_table
    let w = writes(&h);
    let p = ok(
        c,
        "update_table",
        json!({"base_id": DEMO, "table_id": "Vendors", "name": "Suppliers", "dry_run": true}),
    )
    .await;
    assert_eq!(writes(&h), w);
    assert_eq!(
        p["preview"]["before"],
        json!({"name": "Vendors", "description": "Suppliers"})
    );
    assert_eq!(
        p["preview"]["after"],
        json!({"name": "Suppliers", "description": "Suppliers"})
    );
    assert_eq!(p["preview"]["undoable"], true);
    assert!(table_names(c).await.contains(&"Vendors".to_owned()));
    let u = ok(
        c,
        "update_table",
        json!({"base_id": DEMO, "table_id": "Vendors", "name": "Suppliers", "description": ""}),
    )
    .await;
    assert_eq!(u["name"], "Suppliers");
    let entry = journaled(&h, &u).await;
    assert_eq!(
        entry["write"]["changes"],
        json!([{"kind": "table_updated", "table_id": table_id,
                "before": {"name": "Vendors", "description": "Suppliers"},
                "after": {"name": "Suppliers"}}])
    );

    // create_field
    let w = writes(&h);
    let p = ok(
        c,
        "create_field",
        json!({"base_id": DEMO, "table_id": "Suppliers", "name": "Website", "type": "url", "dry_run": true}),
    )
    .await;
    assert_eq!(writes(&h), w);
    assert_eq!(
        p["preview"]["create"],
        json!({"name": "Website", "type": "url"})
    );
    assert_eq!(p["preview"]["undoable"], false);
    let f = ok(
        c,
        "create_field",
        json!({"base_id": DEMO, "table_id": "Suppliers", "name": "Website", "type": "url"}),
    )
    .await;
    let field_id = f["field"]["id"].as_str().unwrap().to_owned();
    assert!(f["note"].as_str().unwrap().contains("cannot be undone"));
    let entry = journaled(&h, &f).await;
    assert_eq!(
        entry["write"]["changes"],
        json!([{"kind": "field_created", "table_id": table_id, "field_id": field_id, "name": "Website"}])
    );

    // update_field
    let w = writes(&h);
    let p = ok(
        c,
        "update_field",
        json!({"base_id": DEMO, "table_id": "Suppliers", "field_id": "Website",
               "name": "Homepage", "description": "Their site", "dry_run": true}),
    )
    .await;
    assert_eq!(writes(&h), w);
    assert_eq!(p["preview"]["before"], json!({"name": "Website"}));
    assert_eq!(
        p["preview"]["after"],
        json!({"name": "Homepage", "description": "Their site"})
    );
    let u = ok(
        c,
        "update_field",
        json!({"base_id": DEMO, "table_id": "Suppliers", "field_id": "Website",
               "name": "Homepage", "description": "Their site"}),
    )
    .await;
    assert_eq!(u["field"]["name"], "Homepage");
    let entry = journaled(&h, &u).await;
    assert_eq!(
        entry["write"]["changes"],
        json!([{"kind": "field_updated", "table_id": table_id, "field_id": field_id,
                "before": {"name": "Website"},
                "after": {"name": "Homepage", "description": "Their site"}}])
    );
}

#[tokio::test]
async fn create_comment_previews_the_record_by_label_then_journals() {
    let h = harness().await;
    let c = &h.client;
    let client = client_for(&h.sandbox);
    let table = scratch(
        &client,
        "Commented",
        &[("Name", "singleLineText")],
        vec![json!({"Name": "Ada"})],
    )
    .await;
    let recs = client
        .list_all_records(&base(), &table, Default::default())
        .await
        .unwrap();
    let rec = recs[0].id.to_string();

    let w = writes(&h);
    let p = ok(
        c,
        "create_comment",
        json!({"base_id": DEMO, "table_id": table, "record_id": rec, "text": "Looks good", "dry_run": true}),
    )
    .await;
    assert_eq!(writes(&h), w, "a dry run sends no write");
    assert!(p.get("comment").is_none(), "{p}");
    let pv = &p["preview"];
    assert_eq!(pv["record_id"], json!(rec));
    assert_eq!(pv["label"], "Ada");
    assert_eq!(pv["text"], "Looks good");
    let list = ok(
        c,
        "list_comments",
        json!({"base_id": DEMO, "table_id": table, "record_id": rec}),
    )
    .await;
    assert_eq!(list["comments"], json!([]));

    let made = ok(
        c,
        "create_comment",
        json!({"base_id": DEMO, "table_id": table, "record_id": rec, "text": "Looks good"}),
    )
    .await;
    assert_eq!(made["comment"]["text"], "Looks good");
    let entry = journaled(&h, &made).await;
    assert_eq!(
        entry["write"]["changes"],
        json!([{"kind": "comment_created", "table_id": table, "record_id": rec,
                "comment_id": made["comment"]["id"]}])
    );

    let e = err(
        c,
        "create_comment",
        json!({"base_id": DEMO, "table_id": table, "record_id": "recNOPE0000000000", "text": "x", "dry_run": true}),
    )
    .await;
    assert!(e.contains("does not exist"), "{e}");
}

#[tokio::test]
async fn create_metadata_table_previews_then_journals_every_row() {
    let h = harness().await;
    let c = &h.client;
    let client = client_for(&h.sandbox);

    let w = writes(&h);
    let p = ok(
        c,
        "create_metadata_table",
        json!({"base_id": DEMO, "dry_run": true}),
    )
    .await;
    assert_eq!(writes(&h), w, "a dry run sends no write");
    assert!(!table_names(c).await.contains(&"Table Metadata".to_owned()));
    assert_eq!(p["created_table"], true);
    assert!(p.get("table_id").is_none(), "{p}");
    let rows = p["rows"].as_u64().unwrap() as usize;
    let pv = &p["preview"];
    assert_eq!(pv["record_count"], json!(rows));
    let listed = pv["records"].as_array().unwrap();
    assert_eq!(listed.len(), rows.min(100));
    assert_eq!(pv["truncated"].as_bool().unwrap_or(false), rows > 100);
    assert!(listed.iter().all(|r| r["action"] == "create"));
    assert!(pv["note"].as_str().unwrap().contains("cannot be undone"));
    // The first row describes the first table, with every cell that would be written.
    let schema = client.base_schema(&base()).await.unwrap();
    let t0 = &schema.tables[0];
    assert_eq!(listed[0]["label"], json!(t0.id.to_string()));
    assert_eq!(listed[0]["fields"]["Table"], json!(t0.name));
    assert_eq!(listed[0]["fields"]["Type"], "table");

    let out = ok(c, "create_metadata_table", json!({"base_id": DEMO})).await;
    assert_eq!(out["complete"], true, "{out}");
    assert_eq!(out["created"], json!(rows));
    let meta_id = out["table_id"].as_str().unwrap().to_owned();
    let entry = journaled(&h, &out).await;
    assert_eq!(entry["write"]["complete"], true);
    let changes = entry["write"]["changes"].as_array().unwrap();
    assert_eq!(
        changes[0],
        json!({"kind": "table_created", "table_id": meta_id, "name": "Table Metadata"})
    );
    assert_eq!(changes.len(), 1 + rows);
    assert!(changes[1..].iter().all(|c| c["kind"] == "record_created"));
    assert_eq!(changes[1]["after"]["Key"], json!(t0.id.to_string()));

    // A documented field: the dry run shows its row's cell before → after.
    let f0 = &t0.fields[0];
    client
        .update_field(
            &base(),
            t0.id.as_ref(),
            f0.id.as_ref(),
            &airtable_mcp::airtable::UpdateField {
                name: None,
                description: Some("documented".into()),
            },
        )
        .await
        .unwrap();
    let w = writes(&h);
    let p = ok(
        c,
        "create_metadata_table",
        json!({"base_id": DEMO, "dry_run": true}),
    )
    .await;
    assert_eq!(writes(&h), w);
    let key = format!("{}|{}", t0.id, f0.id);
    let listed = p["preview"]["records"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{p}");
    assert_eq!(listed[0]["action"], "update");
    assert_eq!(listed[0]["label"], json!(key));
    assert_eq!(
        listed[0]["changes"],
        json!([{"field": "Description", "before": null, "after": "documented"}])
    );
    assert_eq!(p["preview"]["unchanged"], json!(rows - 1));

    let out = ok(c, "create_metadata_table", json!({"base_id": DEMO})).await;
    assert_eq!(out["updated"], 1, "{out}");
    let entry = journaled(&h, &out).await;
    assert_eq!(
        entry["write"]["changes"],
        json!([{"kind": "record_updated", "table_id": meta_id,
                "record_id": listed[0]["id"], "before": {},
                "after": {"Description": "documented"}}])
    );
}

#[tokio::test]
async fn create_metadata_table_previews_and_journals_columns_and_deletes() {
    let h = harness().await;
    let c = &h.client;
    let client = client_for(&h.sandbox);
    // An old metadata table: only its Key column, and a row of a table that is gone.
    let meta_id = scratch(
        &client,
        "Table Metadata",
        &[("Key", "singleLineText")],
        vec![json!({"Key": "tblGone0000000001"})],
    )
    .await;
    let stale = client
        .list_all_records(&base(), &meta_id, Default::default())
        .await
        .unwrap()[0]
        .id
        .to_string();

    let w = writes(&h);
    let p = ok(
        c,
        "create_metadata_table",
        json!({"base_id": DEMO, "dry_run": true}),
    )
    .await;
    assert_eq!(writes(&h), w, "a dry run sends no write");
    assert_eq!(p["created_table"], false);
    assert_eq!(p["table_id"], json!(meta_id));
    let added = p["columns_added"].as_array().unwrap();
    assert_eq!(added.len(), 8, "{p}");
    assert!(!added.contains(&json!("Key")));
    let rows = p["rows"].as_u64().unwrap() as usize;
    let pv = &p["preview"];
    assert_eq!(pv["record_count"], json!(rows + 1));
    assert_eq!(
        pv["records"][0],
        json!({"action": "delete", "id": stale, "label": "tblGone0000000001",
               "fields": {"Key": "tblGone0000000001"}})
    );
    assert!(pv["note"].as_str().unwrap().contains("cannot be undone"));

    let out = ok(c, "create_metadata_table", json!({"base_id": DEMO})).await;
    assert_eq!(out["complete"], true, "{out}");
    assert_eq!(out["deleted"], 1);
    assert_eq!(out["columns_added"].as_array().unwrap().len(), 8);
    let entry = journaled(&h, &out).await;
    let changes = entry["write"]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 8 + 1 + rows);
    assert!(changes[..8].iter().all(|c| c["kind"] == "field_created"));
    assert_eq!(
        changes[8],
        json!({"kind": "record_deleted", "table_id": meta_id, "record_id": stale,
               "before": {"Key": "tblGone0000000001"}})
    );
    assert!(changes[9..].iter().all(|c| c["kind"] == "record_created"));
}

/// Source and target tables for the sync tests: the source holds `n` records S0..S{n-1};
/// the target S0 (equal), S1 (another title) and Z9 (only in the target).
async fn sync_tables_pair(client: &Client, n: usize, bad_price_at: Option<usize>) -> String {
    scratch(
        client,
        "Sync source",
        &[
            ("SKU", "singleLineText"),
            ("Title", "singleLineText"),
            ("Price", "singleLineText"),
        ],
        (0..n)
            .map(|i| {
                let price = if Some(i) == bad_price_at {
                    "not a number".to_owned()
                } else {
                    i.to_string()
                };
                json!({"SKU": format!("S{i}"), "Title": format!("Item {i}"), "Price": price})
            })
            .collect(),
    )
    .await;
    scratch(
        client,
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
    .await
}

fn sync_args(target: &str) -> Value {
    json!({
        "source_base_id": DEMO, "source_table_id": "Sync source",
        "target_base_id": DEMO, "target_table_id": target,
        "key_field": "SKU"
    })
}

#[tokio::test]
async fn sync_tables_plan_is_exact_and_bounded_and_the_apply_is_journaled() {
    let h = harness().await;
    let c = &h.client;
    let client = client_for(&h.sandbox);
    let target = sync_tables_pair(&client, 130, None).await;

    let w = writes(&h);
    let plan = ok(c, "sync_tables", sync_args(&target)).await;
    assert_eq!(writes(&h), w, "the plan sends no write");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["create_count"], 128);
    assert_eq!(plan["update_count"], 1);
    assert_eq!(
        plan["updates"][0]["changes"],
        json!([{"field": "Title", "old": "Old title", "new": "Item 1"}])
    );
    // Exactly what is sent: the number field gets a number.
    let first = &plan["creates"][0]["fields"];
    assert_eq!(first.as_object().unwrap().len(), 3, "{first}");
    assert_eq!(
        (&first["SKU"], &first["Title"]),
        (&json!("S2"), &json!("Item 2"))
    );
    assert_eq!(first["Price"].as_f64(), Some(2.0));
    let listed = plan["creates"].as_array().unwrap().len();
    assert!(
        listed <= 100,
        "at most PREVIEW_RECORDS listed, got {listed}"
    );
    assert_eq!(plan["truncated"], true);
    assert!(plan.get("write_id").is_none());

    let mut apply = sync_args(&target);
    apply["dry_run"] = json!(false);
    let done = ok(c, "sync_tables", apply).await;
    assert_eq!(
        done["applied"],
        json!({"created": 128, "updated": 1, "complete": true})
    );
    let entry = journaled(&h, &done).await;
    assert_eq!(entry["write"]["tool"], "sync_tables");
    assert_eq!(entry["write"]["table_id"], json!(target));
    assert_eq!(entry["write"]["complete"], true);
    let changes = entry["write"]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 129);
    let s1 = plan["updates"][0]["record_id"].clone();
    assert_eq!(
        changes[0],
        json!({"kind": "record_updated", "table_id": target, "record_id": s1,
               "before": {"Title": "Old title"}, "after": {"Title": "Item 1"}})
    );
    assert!(changes[1..].iter().all(|c| c["kind"] == "record_created"));
    let after = &changes[1]["after"];
    assert_eq!(
        (&after["SKU"], &after["Title"]),
        (&json!("S2"), &json!("Item 2"))
    );
    assert_eq!(after["Price"].as_f64(), Some(2.0));

    // Nothing left to do: no write, no journal entry.
    let mut again = sync_args(&target);
    again["dry_run"] = json!(false);
    let w = writes(&h);
    let noop = ok(c, "sync_tables", again).await;
    assert_eq!(writes(&h), w);
    assert_eq!(
        noop["applied"],
        json!({"created": 0, "updated": 0, "complete": true})
    );
    assert!(noop.get("write_id").is_none(), "{noop}");
}

#[tokio::test]
async fn sync_tables_partial_apply_journals_exactly_what_was_written() {
    let h = harness().await;
    let c = &h.client;
    let client = client_for(&h.sandbox);
    // Creates S2..S24 go 10 a request; S15 (the 14th create, 2nd request) is refused.
    let target = sync_tables_pair(&client, 25, Some(15)).await;
    let mut apply = sync_args(&target);
    apply["dry_run"] = json!(false);
    let done = ok(c, "sync_tables", apply).await;
    let applied = &done["applied"];
    assert_eq!(applied["complete"], false, "{done}");
    assert_eq!(applied["updated"], 1);
    assert_eq!(applied["created"], 10);
    assert!(
        applied["failure"]
            .as_str()
            .unwrap()
            .contains("10 of 23 written")
    );
    let entry = journaled(&h, &done).await;
    assert_eq!(entry["write"]["complete"], false);
    let changes = entry["write"]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 11, "1 update + the 10 records created");
    assert_eq!(changes[0]["kind"], "record_updated");
    // The journaled creations are exactly the records now in the target.
    let mut journaled_ids: Vec<String> = changes[1..]
        .iter()
        .map(|c| {
            assert_eq!(c["kind"], "record_created");
            c["record_id"].as_str().unwrap().to_owned()
        })
        .collect();
    let recs = client
        .list_all_records(&base(), &target, Default::default())
        .await
        .unwrap();
    let mut new_ids: Vec<String> = recs
        .iter()
        .filter(|r| {
            !["S0", "S1", "Z9"]
                .iter()
                .any(|k| r.fields.get("SKU") == Some(&json!(k)))
        })
        .map(|r| r.id.to_string())
        .collect();
    journaled_ids.sort();
    new_ids.sort();
    assert_eq!(journaled_ids, new_ids);
}
