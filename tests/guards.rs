//! The guards of issue #10 over a real MCP session (in-process client, sandbox on loopback):
//! unknown arguments are refused before anything runs, and every tool's inputSchema says so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mcp_support;

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
