//! Every core tool against the sandbox through an in-process MCP client: happy paths and the
//! failure paths a model meets (unknown names with suggestions, bad formulas, read-only,
//! allow-list, no token, partial batch failure, size budget).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::mcp_support;

use airtable_mcp::tools::{AirtableServer, ServerOptions, ServerState};
use mcp_support::*;
use secrecy::SecretString;
use serde_json::{Value, json};

/// The records of a get_records / search_records result, decoded from its columns and rows
/// into {"id": .., "fields": {..}} (empty cells absent).
fn records(v: &Value) -> Vec<Value> {
    let columns: Vec<&str> = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(columns[0], "id");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(v["count"].as_u64().unwrap() as usize, rows.len());
    rows.iter()
        .map(|row| {
            let row = row.as_array().unwrap();
            assert!(!row.is_empty() && row.len() <= columns.len(), "{row:?}");
            let fields: serde_json::Map<String, Value> = columns[1..]
                .iter()
                .zip(&row[1..])
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
            json!({"id": row[0], "fields": fields})
        })
        .collect()
}

fn ids(v: &Value) -> Vec<String> {
    records(v)
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn discovery_tools() {
    let h = harness().await;
    let c = &h.client;
    let tools = c.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "get_records"));
    assert!(tools.iter().all(|t| t.output_schema.is_some()));
    let info = c.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "airtable-mcp");
    assert!(info.instructions.as_deref().unwrap().contains("list_bases"));

    let bases = ok(c, "list_bases", json!({})).await;
    assert!(
        bases["bases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["id"] == DEMO)
    );
    let filtered = ok(c, "list_bases", json!({"query": "TRACKER"})).await;
    assert_eq!(filtered["count"], 1);
    let none = ok(c, "list_bases", json!({"query": "no such base"})).await;
    assert_eq!(none["count"], 0);

    let tables = ok(c, "list_tables", json!({"base_id": DEMO})).await;
    let names: Vec<&str> = tables["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Tasks") && names.contains(&"Projects"));
    assert!(
        tables["tables"][0].get("fields").is_none(),
        "names level is compact"
    );
    let full = ok(
        c,
        "list_tables",
        json!({"base_id": DEMO, "detail_level": "full"}),
    )
    .await;
    assert!(full["tables"][0]["fields"].as_array().unwrap().len() > 1);
    assert!(full["tables"][0].get("views").is_some());

    let info = ok(
        c,
        "get_field_info",
        json!({"base_id": DEMO, "table_id": "tasks"}),
    )
    .await;
    assert_eq!(info["table_name"], "Tasks");
    let fields = info["fields"].as_array().unwrap();
    let task_id = fields.iter().find(|f| f["name"] == "Task ID").unwrap();
    assert_eq!(task_id["computed"], true);
    let status = fields.iter().find(|f| f["name"] == "Status").unwrap();
    assert!(status["options"]["choices"].is_array());

    let e = err(
        c,
        "get_field_info",
        json!({"base_id": DEMO, "table_id": "Taks"}),
    )
    .await;
    assert!(e.contains("Did you mean \"Tasks\""), "{e}");
    let e = err(c, "list_tables", json!({"base_id": "app123"})).await;
    assert!(e.contains("list_bases"), "{e}");
}

#[tokio::test]
async fn get_records_pages_sorts_filters_and_validates() {
    let h = harness().await;
    let c = &h.client;
    // Numbers as strings are accepted (MCP Inspector sends them).
    let p1 = ok(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "max_records": "5", "fields": ["Name", "Status"]}),
    )
    .await;
    assert_eq!(p1["count"], 5);
    assert_eq!(p1["has_more"], true);
    assert!(
        p1.get("truncated").is_none(),
        "truncated only when true: {p1}"
    );
    for r in &records(&p1) {
        let keys: Vec<&String> = r["fields"].as_object().unwrap().keys().collect();
        assert!(
            keys.iter().all(|k| *k == "Name" || *k == "Status"),
            "{keys:?}"
        );
        assert!(r.get("created_time").is_none());
    }
    let offset = p1["offset"].as_str().unwrap().to_owned();
    let p2 = ok(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "max_records": 5, "fields": ["Name"], "offset": offset}),
    )
    .await;
    assert_eq!(p2["count"], 5);
    let (a, b) = (ids(&p1), ids(&p2));
    assert!(a.iter().all(|id| !b.contains(id)), "pages overlap");

    // More than one Airtable page (100) in one call.
    let big = ok(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "max_records": 150, "fields": ["Name"]}),
    )
    .await;
    assert_eq!(big["count"], 150);

    let done = ok(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "filter_by_formula": "{Status}=\"Done\"", "fields": ["Status"], "max_records": 1000}),
    )
    .await;
    assert!(done["count"].as_u64().unwrap() > 0);
    assert_eq!(done["has_more"], false);
    for r in &records(&done) {
        assert_eq!(r["fields"]["Status"], "Done");
    }

    let sorted = ok(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "sort": [{"field": "Estimate (hours)", "direction": "desc"}], "fields": ["Estimate (hours)"], "max_records": 20}),
    )
    .await;
    let est: Vec<f64> = records(&sorted)
        .iter()
        .filter_map(|r| r["fields"]["Estimate (hours)"].as_f64())
        .collect();
    assert!(est.windows(2).all(|w| w[0] >= w[1]), "{est:?}");

    // Checked before any request: unknown field (with suggestion), bad formula (with position).
    let before = h.sandbox.stats().requests;
    let e = err(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "fields": ["Stauts"]}),
    )
    .await;
    assert!(
        e.contains("Unknown field \"Stauts\"") && e.contains("Did you mean \"Status\""),
        "{e}"
    );
    let e = err(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "filter_by_formula": "AND({Status}=\"Done\", "}),
    )
    .await;
    assert!(
        e.contains("filter_by_formula is invalid") && e.contains('^'),
        "{e}"
    );
    let e = err(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "filter_by_formula": "{Priorty}=\"High\""}),
    )
    .await;
    assert!(e.contains("Priority"), "suggests the real field: {e}");
    let e = err(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "sort": [{"field": "Nme"}]}),
    )
    .await;
    assert!(e.contains("Did you mean \"Name\""), "{e}");
    assert_eq!(
        h.sandbox.stats().requests,
        before,
        "nothing was sent for invalid input"
    );

    let e = err(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "max_records": 0}),
    )
    .await;
    assert!(e.contains("at least 1"), "{e}");
    // A malformed argument is a tool error the model can fix, not a protocol error.
    let e = err(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "max_records": "lots"}),
    )
    .await;
    assert!(e.contains("whole number"), "{e}");
}

#[tokio::test]
async fn get_record_and_search() {
    let h = harness().await;
    let c = &h.client;
    let page = ok(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "People", "max_records": 1}),
    )
    .await;
    let id = ids(&page)[0].clone();
    let one = ok(
        c,
        "get_record",
        json!({"base_id": DEMO, "table_id": "People", "record_id": id, "fields": ["Name"]}),
    )
    .await;
    assert_eq!(one["record"]["id"], id.as_str());
    assert!(one["record"]["created_time"].is_string());
    assert_eq!(one["record"]["fields"].as_object().unwrap().len(), 1);
    let e = err(
        c,
        "get_record",
        json!({"base_id": DEMO, "table_id": "People", "record_id": "recNOPE"}),
    )
    .await;
    assert!(e.contains("invalid record ID"), "{e}");
    let e = err(
        c,
        "get_record",
        json!({"base_id": DEMO, "table_id": "People", "record_id": "recAAAAAAAAAAAAAA"}),
    )
    .await;
    assert!(
        e.contains("Could not get the record") && e.contains("list_tables"),
        "{e}"
    );

    // Case-insensitive over text-like fields (the Role select included).
    let found = ok(
        c,
        "search_records",
        json!({"base_id": DEMO, "table_id": "People", "query": "DESIGNER"}),
    )
    .await;
    assert!(found["count"].as_u64().unwrap() > 0);
    for r in &records(&found) {
        let text = r["fields"].to_string().to_lowercase();
        assert!(text.contains("designer"), "{text}");
    }
    // Limited to given fields.
    let by_name = ok(
        c,
        "search_records",
        json!({"base_id": DEMO, "table_id": "People", "query": "designer", "fields": ["Name"], "return_fields": ["Name"]}),
    )
    .await;
    assert!(by_name["count"].as_u64().unwrap() < found["count"].as_u64().unwrap());
    // No injection: a query full of formula syntax is just text that matches nothing.
    for q in [
        "zzq\") , TRUE(), (\"",
        "zzq\" & \"",
        "zzq}",
        "zzq\\",
        "zzq'), 1, ('",
    ] {
        let r = ok(
            c,
            "search_records",
            json!({"base_id": DEMO, "table_id": "People", "query": q}),
        )
        .await;
        assert_eq!(r["count"], 0, "query {q:?} matched: {r}");
    }
    let e = err(
        c,
        "search_records",
        json!({"base_id": DEMO, "table_id": "People", "query": "  "}),
    )
    .await;
    assert!(e.contains("query is empty"), "{e}");
}

#[tokio::test]
async fn single_record_writes() {
    let h = harness().await;
    let c = &h.client;
    let created = ok(
        c,
        "create_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "fields": {"Name": "Write docs", "Status": "Todo", "Estimate (hours)": 2}}),
    )
    .await;
    let id = created["record"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["record"]["fields"]["Name"], "Write docs");

    let updated = ok(
        c,
        "update_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": id, "fields": {"Status": "Done"}}),
    )
    .await;
    assert_eq!(updated["record"]["fields"]["Status"], "Done");
    assert_eq!(
        updated["record"]["fields"]["Name"], "Write docs",
        "PATCH keeps other fields"
    );

    // typecast is opt-in: a new select option is refused without it, created with it.
    let e = err(
        c,
        "update_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": id, "fields": {"Status": "Parked"}}),
    )
    .await;
    assert!(e.contains("Could not update the record"), "{e}");
    let r = ok(
        c,
        "update_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": id, "fields": {"Status": "Parked"}, "typecast": "true"}),
    )
    .await;
    assert_eq!(r["record"]["fields"]["Status"], "Parked");

    // Caught before sending: computed field, unknown field with a suggestion.
    let before = h.sandbox.stats().requests;
    let e = err(
        c,
        "create_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "fields": {"Name": "x", "Task ID": 5}}),
    )
    .await;
    assert!(
        e.contains("computed field") && e.contains("autoNumber"),
        "{e}"
    );
    let e = err(
        c,
        "create_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "fields": {"Nmae": "x"}}),
    )
    .await;
    assert!(e.contains("Did you mean \"Name\""), "{e}");
    assert_eq!(h.sandbox.stats().requests, before);

    let del = ok(
        c,
        "delete_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": id}),
    )
    .await;
    assert_eq!(del["deleted"], true);
    let e = err(
        c,
        "get_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": id}),
    )
    .await;
    assert!(e.contains("Could not get the record"), "{e}");
}

#[tokio::test]
async fn batch_writes_with_progress_and_partial_failure() {
    let h = harness().await;
    let c = &h.client;
    // 25 records, both accepted shapes mixed.
    let records: Vec<Value> = (0..25)
        .map(|i| {
            if i % 2 == 0 {
                json!({"Name": format!("batch {i}"), "Estimate (hours)": i})
            } else {
                json!({"fields": {"Name": format!("batch {i}"), "Estimate (hours)": i}})
            }
        })
        .collect();
    let (r, progress) = call_with_progress(
        c,
        "batch_create_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "records": records}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    let out = r.structured_content.clone().unwrap();
    assert_eq!(out["complete"], true);
    assert_eq!(out["written"], 25);
    let created: Vec<String> = out["written_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(created.len(), 25);
    assert!(progress.len() >= 2, "progress per chunk: {progress:?}");
    assert_eq!(progress.last().unwrap().total, Some(25.0));
    // The wrapper was unwrapped (no field called "fields" was written).
    let check = ok(
        c,
        "get_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": created[1]}),
    )
    .await;
    assert_eq!(check["record"]["fields"]["Name"], "batch 1");

    let updates: Vec<Value> = created
        .iter()
        .map(|id| json!({"id": id, "fields": {"Status": "Blocked"}}))
        .collect();
    let out = ok(
        c,
        "batch_update_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "records": updates}),
    )
    .await;
    assert_eq!(out["written"], 25);

    let up = ok(
        c,
        "batch_upsert_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "fields_to_merge_on": ["Name"], "records": [
            {"Name": "batch 0", "Status": "Done"},
            {"fields": {"Name": "brand new upsert", "Status": "Todo"}}
        ]}),
    )
    .await;
    assert_eq!(up["updated_ids"].as_array().unwrap().len(), 1);
    assert_eq!(up["created_ids"].as_array().unwrap().len(), 1);
    assert_eq!(up["updated_ids"][0], created[0].as_str());
    let e = err(
        c,
        "batch_upsert_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "fields_to_merge_on": ["Name"], "records": [{"Status": "Done"}]}),
    )
    .await;
    assert!(e.contains("lacks the merge field"), "{e}");

    // Partial failure: record 13 has a select option that does not exist (no typecast), so the
    // second chunk (inputs 10-19) fails, the first is written, the third is never sent.
    let bad: Vec<Value> = (0..25)
        .map(|i| {
            let status = if i == 13 { "Nonexistent" } else { "Todo" };
            json!({"Name": format!("partial {i}"), "Status": status})
        })
        .collect();
    let r = call(
        c,
        "batch_create_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "records": bad}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    let out = r.structured_content.clone().unwrap();
    assert_eq!(out["complete"], false);
    assert_eq!(out["written"], 10);
    assert_eq!(out["written_ids"].as_array().unwrap().len(), 10);
    let failed: Vec<u64> = out["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["index"].as_u64().unwrap())
        .collect();
    assert_eq!(failed, (10..20).collect::<Vec<u64>>());
    assert_eq!(out["failed"][0]["may_have_been_written"], false);
    assert_eq!(out["not_attempted"].as_array().unwrap().len(), 5);
    let note = out["note"].as_str().unwrap();
    assert!(
        note.contains("10 of 25") && note.contains("were not sent"),
        "{note}"
    );

    let mut all = created.clone();
    all.extend(
        out["written_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned()),
    );
    let del = ok(
        c,
        "batch_delete_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_ids": all}),
    )
    .await;
    assert_eq!(del["written"], 35);
    let e = err(
        c,
        "batch_delete_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_ids": ["recBAD"]}),
    )
    .await;
    assert!(e.contains("record_ids[0]"), "{e}");
}

#[tokio::test]
async fn schema_tools_invalidate_the_cache() {
    let h = harness().await;
    let c = &h.client;
    // Warm the cache.
    ok(c, "list_tables", json!({"base_id": DEMO})).await;
    let t = ok(
        c,
        "create_table",
        json!({"base_id": DEMO, "name": "Vendors", "description": "Suppliers", "fields": [
            {"name": "Name", "type": "singleLineText"},
            {"name": "Tier", "type": "singleSelect", "options": {"choices": [{"name": "A"}, {"name": "B"}]}}
        ]}),
    )
    .await;
    assert_eq!(t["name"], "Vendors");
    assert_eq!(t["primary_field"], "Name");
    let tables = ok(c, "list_tables", json!({"base_id": DEMO})).await;
    assert!(
        tables["tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "Vendors")
    );

    let f = ok(
        c,
        "create_field",
        json!({"base_id": DEMO, "table_id": "Vendors", "name": "Website", "type": "url"}),
    )
    .await;
    assert_eq!(f["field"]["type"], "url");
    let e = err(
        c,
        "create_field",
        json!({"base_id": DEMO, "table_id": "Vendors", "name": "Website", "type": "url"}),
    )
    .await;
    assert!(e.contains("already has a field"), "{e}");
    let e = err(
        c,
        "create_field",
        json!({"base_id": DEMO, "table_id": "Vendors", "name": "X", "type": "nonsense"}),
    )
    .await;
    assert!(
        e.contains("Unknown field type") || e.contains("Could not create the field"),
        "{e}"
    );

    let u = ok(
        c,
        "update_field",
        json!({"base_id": DEMO, "table_id": "Vendors", "field_id": "Website", "name": "Homepage"}),
    )
    .await;
    assert_eq!(u["field"]["name"], "Homepage");
    // The new name is usable at once (cache invalidated).
    ok(
        c,
        "create_record",
        json!({"base_id": DEMO, "table_id": "Vendors", "fields": {"Name": "Acme", "Homepage": "https://acme.example"}}),
    )
    .await;

    let u = ok(
        c,
        "update_table",
        json!({"base_id": DEMO, "table_id": "Vendors", "name": "Suppliers", "description": "All suppliers"}),
    )
    .await;
    assert_eq!(u["name"], "Suppliers");
    let e = err(
        c,
        "update_table",
        json!({"base_id": DEMO, "table_id": "Suppliers"}),
    )
    .await;
    assert!(e.contains("Nothing to change"), "{e}");
    let e = err(
        c,
        "create_table",
        json!({"base_id": DEMO, "name": "Empty", "fields": []}),
    )
    .await;
    assert!(e.contains("at least one field"), "{e}");
}

#[tokio::test]
async fn comments() {
    let h = harness().await;
    let c = &h.client;
    let page = ok(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "max_records": 1}),
    )
    .await;
    let id = ids(&page)[0].clone();
    let made = ok(
        c,
        "create_comment",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": id, "text": "Looks good"}),
    )
    .await;
    assert_eq!(made["comment"]["text"], "Looks good");
    let list = ok(
        c,
        "list_comments",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": id}),
    )
    .await;
    assert!(
        list["comments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["text"] == "Looks good")
    );
    let e = err(
        c,
        "create_comment",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": id, "text": ""}),
    )
    .await;
    assert!(e.contains("text is empty"), "{e}");
}

#[tokio::test]
async fn read_only_mode_hides_and_refuses_writes() {
    let h = harness_with(ServerOptions {
        read_only: true,
        ..ServerOptions::default()
    })
    .await;
    let c = &h.client;
    let tools = c.list_all_tools().await.unwrap();
    assert!(
        tools
            .iter()
            .all(|t| t.annotations.as_ref().unwrap().read_only_hint == Some(true))
    );
    assert!(!tools.iter().any(|t| t.name == "create_record"));
    let before = h.sandbox.stats().requests;
    let e = err(
        c,
        "create_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "fields": {"Name": "x"}}),
    )
    .await;
    assert!(e.contains("read-only"), "{e}");
    let e = err(
        c,
        "batch_delete_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_ids": []}),
    )
    .await;
    assert!(e.contains("read-only"), "{e}");
    assert_eq!(h.sandbox.stats().requests, before);
    // Reads work.
    ok(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "max_records": 1}),
    )
    .await;
    // An unknown tool is a protocol error, not a tool result.
    assert!(try_call(c, "no_such_tool", json!({})).await.is_err());
}

#[tokio::test]
async fn base_allow_list() {
    let other = "appOTHERBASE00001".to_owned();
    let h = harness_with(ServerOptions {
        allowed_bases: Some([other.clone()].into_iter().collect()),
        ..ServerOptions::default()
    })
    .await;
    let c = &h.client;
    let e = err(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks"}),
    )
    .await;
    assert!(e.contains("not allowed") && e.contains(&other), "{e}");
    let e = err(
        c,
        "create_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "fields": {"Name": "x"}}),
    )
    .await;
    assert!(e.contains("not allowed"), "{e}");
    let bases = ok(c, "list_bases", json!({})).await;
    assert_eq!(bases["count"], 0, "bases outside the list are hidden");
}

#[tokio::test]
async fn no_token_and_bad_token_say_how_to_fix() {
    let c = no_token_client(ServerOptions::default()).await;
    // Still starts and lists tools.
    assert!(!c.list_all_tools().await.unwrap().is_empty());
    for (tool, args) in [
        ("list_bases", json!({})),
        ("get_records", json!({"base_id": DEMO, "table_id": "Tasks"})),
        (
            "create_record",
            json!({"base_id": DEMO, "table_id": "Tasks", "fields": {"Name": "x"}}),
        ),
    ] {
        let e = err(&c, tool, args).await;
        assert!(
            e.contains("airtable-mcp auth login") && e.contains("AIRTABLE_API_KEY"),
            "{tool}: {e}"
        );
    }

    // A token the API refuses (401): the message names the fix, never the token.
    let sb = demo_sandbox().await;
    let state = ServerState::new(Ok(client_for(&sb)), ServerOptions::default());
    let bad = "patWRONGwrongWRONG.0123456789";
    let c = connect(AirtableServer::for_token(
        state.clone(),
        SecretString::from(bad.to_owned()),
    ))
    .await;
    let e = err(&c, "list_bases", json!({})).await;
    // (a session with its own token, as over HTTP: the fix is the X-Airtable-Token header)
    assert!(
        e.contains("X-Airtable-Token header") && !e.contains("restart") && !e.contains(bad),
        "{e}"
    );
    // A server without a token of its own still serves sessions that bring one.
    let tokenless = ServerState::without_token(
        airtable_mcp::tools::TokenProblem::missing(),
        client_with_token(&sb, "placeholder"),
        ServerOptions::default(),
    );
    let own = connect(AirtableServer::new(tokenless.clone())).await;
    let e = err(&own, "list_bases", json!({})).await;
    assert!(e.contains("auth login"), "{e}");
    let brought = connect(AirtableServer::for_token(
        tokenless,
        SecretString::from(sb.token().to_owned()),
    ))
    .await;
    ok(&brought, "list_bases", json!({})).await;
    // The same state still serves the good token, and a per-session good token works.
    let good = connect(AirtableServer::for_token(
        state,
        SecretString::from(sb.token().to_owned()),
    ))
    .await;
    ok(&good, "list_bases", json!({})).await;
}

#[tokio::test]
async fn oversized_results_are_cut_and_say_so() {
    let h = harness_with(ServerOptions {
        result_budget: 3_000,
        ..ServerOptions::default()
    })
    .await;
    let c = &h.client;
    let r = call(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "max_records": 50}),
    )
    .await;
    let out = r.structured_content.clone().unwrap();
    assert_eq!(out["truncated"], true);
    assert_eq!(out["has_more"], true);
    let n = out["count"].as_u64().unwrap();
    assert!(n > 0 && n < 50, "{n}");
    assert!(out["note"].as_str().unwrap().contains("fewer fields"));
    // Compact JSON text, never pretty-printed.
    let t = text(&r);
    assert!(!t.contains("\n  "), "pretty-printed");
    assert_eq!(serde_json::from_str::<Value>(&t).unwrap(), out);
}

#[tokio::test]
async fn views_are_checked_and_applied() {
    let h = harness().await;
    let c = &h.client;
    let open = ok(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "view": "Open tasks", "fields": ["Done"], "max_records": 1000}),
    )
    .await;
    let all = ok(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "fields": ["Done"], "max_records": 1000}),
    )
    .await;
    assert!(open["count"].as_u64().unwrap() < all["count"].as_u64().unwrap());
    let e = err(
        c,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "view": "Open task"}),
    )
    .await;
    assert!(e.contains("Did you mean \"Open tasks\""), "{e}");
}

#[tokio::test]
async fn ambiguous_writes_are_flagged_not_retried() {
    let sb = sandbox_with(airtable_mcp::sandbox::SandboxConfig {
        faults: airtable_mcp::sandbox::Faults {
            drop_after_rate: 1.0,
            ..Default::default()
        },
        ..airtable_mcp::sandbox::SandboxConfig::demo()
    })
    .await;
    let state = ServerState::new(Ok(client_for(&sb)), ServerOptions::default());
    let c = connect(AirtableServer::new(state)).await;
    let records: Vec<Value> = (0..3)
        .map(|i| json!({"Name": format!("amb {i}")}))
        .collect();
    let r = call(
        &c,
        "batch_create_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "records": records}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    let out = r.structured_content.clone().unwrap();
    assert_eq!(out["written"], 0);
    assert_eq!(out["failed"].as_array().unwrap().len(), 3);
    assert_eq!(out["failed"][0]["may_have_been_written"], true);
    assert!(
        out["note"]
            .as_str()
            .unwrap()
            .contains("MAY have been written"),
        "{out}"
    );
    // Applied once, never duplicated by a retry.
    let found = ok(
        &c,
        "search_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "query": "amb 0", "fields": ["Name"]}),
    )
    .await;
    assert_eq!(found["count"], 1);
}

#[tokio::test]
async fn unknown_base_says_what_to_do() {
    let h = harness().await;
    let e = err(
        &h.client,
        "get_records",
        json!({"base_id": "appUNKNOWNBASE001", "table_id": "Tasks"}),
    )
    .await;
    assert!(
        e.contains("appUNKNOWNBASE001") && e.contains("list_bases"),
        "{e}"
    );
}

#[tokio::test]
async fn multi_page_reads_report_progress() {
    let h = harness().await;
    let (r, progress) = call_with_progress(
        &h.client,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "max_records": 250, "fields": ["Name"]}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    assert!(!progress.is_empty(), "a 2+ page read reports progress");
    assert_eq!(progress[0].total, Some(250.0));
    // One-page reads send none.
    let (_, progress) = call_with_progress(
        &h.client,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "max_records": 5}),
    )
    .await;
    assert!(progress.is_empty(), "{progress:?}");
}

/// Issue 12: a 100-record list is sent compact (columns once, rows as arrays, empty cells
/// left out, the cell rules of `tools::compact`). The text the model reads for 100 demo Tasks
/// records is pinned (issue 12 asks for half of what the most used peer sends for the same
/// list: 43,589 B), the text is the same JSON as the structured content, and decoding the rows
/// by the columns gives back the records Airtable sent, cell for cell, with only what the rules
/// say is left out (attachment sizes and thumbnails) missing.
#[tokio::test]
async fn record_lists_are_compact_and_lossless() {
    let h = harness().await;
    let r = call(
        &h.client,
        "get_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "max_records": 100}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    let out = r.structured_content.clone().unwrap();
    let t = text(&r);
    assert_eq!(serde_json::from_str::<Value>(&t).unwrap(), out);
    // Byte for byte the compact JSON of the structured content (the rows' text is rendered
    // while they are fitted to the budget, and the rest put around it).
    assert_eq!(t, serde_json::to_string(&out).unwrap());
    assert_eq!(out["count"], 100);
    assert!(out.get("truncated").is_none(), "truncated only when true");
    // Old keyed form: 31,071 B; the peer: 43,589 B; issue 12's goal: <= 21,794 B (half the
    // peer's).
    assert!(
        t.len() <= 21_794,
        "issue 12: a 100-record list must take at most half the peer's 43,589 B, got {}",
        t.len()
    );
    assert_eq!(t.len(), PINNED_TASKS_100_BYTES, "text bytes changed");

    let client = client_for(&h.sandbox);
    let base: airtable_mcp::airtable::BaseId = DEMO.parse().unwrap();
    // The per-column rules come from the schema: Project and Assignee prefer a single linked
    // record, Project status looks up through Project.
    let schema = client.base_schema(&base).await.unwrap();
    let tasks = schema.table("Tasks").unwrap();
    let field = |n: &str| tasks.fields.iter().find(|f| f.name == n).unwrap();
    assert!(field("Project").prefers_single_record_link());
    assert!(field("Assignee").prefers_single_record_link());
    assert_eq!(
        field("Project status").record_link_field_id(),
        Some(field("Project").id.as_ref())
    );
    const SINGLE: [&str; 3] = ["Project", "Assignee", "Project status"];
    let page = client
        .list_records_page(
            &base,
            "Tasks",
            &airtable_mcp::airtable::ListQuery::default(),
        )
        .await
        .unwrap();
    let want: Vec<Value> = page
        .records
        .iter()
        .map(|r| json!({"id": r.id.to_string(), "fields": r.fields}))
        .collect();
    let got = records(&out);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g["id"], w["id"]);
        // Same cells whatever their order (Airtable omits empty cells; so do rows).
        // Numbers compare as numbers (7.0 is sent as 7), instants as instants (.000Z as Z,
        // :00.000Z as Z: the demo's times are whole minutes), a
        // one-item single-link (or lookup through one) cell as its item, attachments as
        // id/filename/type/url (+ thumbnail).
        let norm = |f: &Value| -> Vec<(String, Value)> {
            let mut v: Vec<(String, Value)> = f
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::Array(items) if SINGLE.contains(&k.as_str()) && items.len() == 1 => {
                            items[0].clone()
                        }
                        Value::Array(items) if k == "Attachments" => Value::Array(
                            items
                                .iter()
                                .map(|a| {
                                    let mut o = serde_json::Map::new();
                                    for key in ["id", "filename", "type", "url", "thumbnail"] {
                                        if let Some(x) = a.get(key) {
                                            o.insert(key.into(), x.clone());
                                        }
                                    }
                                    if a["type"].as_str().is_some_and(|t| t.starts_with("image/"))
                                        && let Some(u) = a.pointer("/thumbnails/small/url")
                                    {
                                        o.insert("thumbnail".into(), u.clone());
                                    }
                                    Value::Object(o)
                                })
                                .collect(),
                        ),
                        Value::Number(n) => json!(n.as_f64().unwrap()),
                        Value::String(s) if s.ends_with(":00.000Z") => {
                            json!(s.replace(":00.000Z", "Z"))
                        }
                        Value::String(s) if s.ends_with(".000Z") => {
                            json!(s.replace(".000Z", "Z"))
                        }
                        other => other.clone(),
                    };
                    (k.clone(), v)
                })
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        assert_eq!(norm(&g["fields"]), norm(&w["fields"]));
    }
    // Columns follow the schema's field order and hold only fields with a value.
    let columns: Vec<&str> = out["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(&columns[..3], ["id", "Name", "Status"]);
    assert_eq!(columns.last(), Some(&"Attachments"), "sparsest field last");
}

/// The text bytes of get_records for the first 100 demo Tasks records (keyed form before: 31,071;
/// compact rows with links as lists, whole attachments and `truncated: false`: 23,023).
/// Issue 12 asks for <= 21,794. Single-record links and the lookup through one as their value
/// (-600), attachments without size (-140), no `truncated: false` (-17) and instants at
/// minute precision when their seconds are zero (`2026-01-02T12:51Z`, -600: the demo's
/// created/modified times are whole minutes, as date-time fields entered in Airtable's UI
/// are) give 21,665. The demo's attachments are PDFs without thumbnails; on real Airtable data
/// each image attachment also sheds ~800 B of thumbnails.
const PINNED_TASKS_100_BYTES: usize = 21_665;
