//! The record write tools on the write pipeline (issue #10), through an in-process MCP client
//! against the sandbox: dry runs send no write and preview exactly; real runs are journaled
//! (write_id), partial batches say what was written and journaled; unknown record IDs and
//! ambiguous upserts are refused before anything is sent; `--confirm never` lets big batches
//! through.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::mcp_support;

use airtable_mcp::airtable::{BaseId, Fields, WriteOptions};
use airtable_mcp::config::{ConfirmMode, JournalLocation};
use airtable_mcp::tools::{AirtableServer, ServerOptions, ServerState};
use mcp_support::*;
use serde_json::{Value, json};

/// A record ID that does not exist in the demo base.
const GHOST: &str = "recZZZZZZZZZZZZZZ";

fn demo() -> BaseId {
    DEMO.parse().unwrap()
}

/// Create Tasks records `(Name, Status)` straight through the client (not journaled); their IDs.
async fn seed(h: &Harness, rows: &[(&str, &str)]) -> Vec<String> {
    let records: Vec<Fields> = rows
        .iter()
        .map(|(name, status)| {
            let Value::Object(m) = json!({"Name": name, "Status": status}) else {
                unreachable!()
            };
            m
        })
        .collect();
    let out = client_for(&h.sandbox)
        .create_records(&demo(), "Tasks", records, &WriteOptions::default())
        .await;
    assert!(out.failure.is_none(), "seed failed");
    out.written.iter().map(|r| r.id.to_string()).collect()
}

/// Write requests the sandbox received so far: (POST, PATCH + PUT + DELETE).
fn write_requests(h: &Harness) -> (u64, u64) {
    let m = h.sandbox.stats().by_method;
    let n = |k: &str| m.get(k).copied().unwrap_or(0);
    (n("POST"), n("PATCH") + n("PUT") + n("DELETE"))
}

async fn fields_of(h: &Harness, id: &str) -> Value {
    ok(
        &h.client,
        "get_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": id}),
    )
    .await["record"]["fields"]
        .clone()
}

/// The field ID of a Tasks field.
async fn field_id(h: &Harness, name: &str) -> String {
    let schema = client_for(&h.sandbox).base_schema(&demo()).await.unwrap();
    let t = schema.tables.iter().find(|t| t.name == "Tasks").unwrap();
    t.fields
        .iter()
        .find(|f| f.name == name)
        .unwrap()
        .id
        .to_string()
}

fn write_id(out: &Value) -> String {
    let id = out["write_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no write_id in {out}"));
    assert!(id.starts_with('w'), "{id}");
    id.to_owned()
}

#[tokio::test]
async fn dry_runs_send_no_write_and_preview_exactly() {
    let h = harness().await;
    let c = &h.client;
    let ids = seed(
        &h,
        &[
            ("dry A", "Todo"),
            ("dry B", "Todo"),
            ("dry C", "Todo"),
            ("dry C", "Blocked"),
        ],
    )
    .await;
    let (a, b) = (&ids[0], &ids[1]);
    let status_id = field_id(&h, "Status").await;
    let a_before = fields_of(&h, a).await;
    let writes_before = write_requests(&h);

    // create_record: the fields by name (a field given by ID is normalised), nothing created.
    let out = ok(
        c,
        "create_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "dry_run": true,
               "fields": {"Name": "dry new", status_id.clone(): "Todo"}}),
    )
    .await;
    assert!(
        out.get("record").is_none() && out.get("write_id").is_none(),
        "{out}"
    );
    let p = &out["preview"];
    assert_eq!(p["dry_run"], true);
    assert_eq!(p["record_count"], 1);
    assert_eq!(
        p["records"],
        json!([{"action": "create", "label": "dry new", "fields": {"Name": "dry new", "Status": "Todo"}}])
    );

    // batch_create_records: every record, in order.
    let r = call(
        c,
        "batch_create_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "dry_run": "true", "records": [
            {"Name": "dry 1"}, {"fields": {"Name": "dry 2", "Status": "Done"}}
        ]}),
    )
    .await;
    assert_ne!(
        r.is_error,
        Some(true),
        "a dry run is no error: {}",
        text(&r)
    );
    let out = r.structured_content.unwrap();
    assert_eq!(out["written"], 0);
    assert_eq!(out["requested"], 2);
    assert!(out.get("write_id").is_none());
    assert_eq!(out["preview"]["record_count"], 2);
    assert_eq!(
        out["preview"]["records"],
        json!([
            {"action": "create", "label": "dry 1", "fields": {"Name": "dry 1"}},
            {"action": "create", "label": "dry 2", "fields": {"Name": "dry 2", "Status": "Done"}}
        ])
    );

    // batch_update_records: before -> after per changed field; an equal value is unchanged; an
    // unknown ID is listed as not_found.
    let out = ok(
        c,
        "batch_update_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "dry_run": true, "records": [
            {"id": a, "fields": {status_id.clone(): "Done", "Name": "dry A"}},
            {"id": b, "fields": {"Status": "Todo"}},
            {"id": GHOST, "fields": {"Status": "Done"}}
        ]}),
    )
    .await;
    let p = &out["preview"];
    assert_eq!(p["record_count"], 1, "{p}");
    assert_eq!(p["unchanged"], 1, "{p}");
    assert_eq!(
        p["records"],
        json!([
            {"action": "not_found", "id": GHOST},
            {"action": "update", "id": a, "label": "dry A",
             "changes": [{"field": "Status", "before": "Todo", "after": "Done"}]}
        ])
    );
    assert!(p["note"].as_str().unwrap().contains("refuses"), "{p}");

    // batch_delete_records: each record by label with the fields it has now.
    let out = ok(
        c,
        "batch_delete_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "dry_run": true, "record_ids": [a, b]}),
    )
    .await;
    let p = &out["preview"];
    assert_eq!(p["record_count"], 2);
    assert_eq!(p["records"][0]["action"], "delete");
    assert_eq!(p["records"][0]["id"], a.as_str());
    assert_eq!(p["records"][0]["label"], "dry A");
    assert_eq!(p["records"][0]["fields"], a_before);
    assert_eq!(p["records"][1]["label"], "dry B");

    // batch_upsert_records: which inputs update which record, which create, which are equal,
    // and which match several records (Airtable would refuse).
    let out = ok(
        c,
        "batch_upsert_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "dry_run": true, "fields_to_merge_on": ["Name"],
               "records": [
                   {"Name": "dry A", "Status": "Done"},
                   {"Name": "dry B", "Status": "Todo"},
                   {"Name": "dry brand new", "Status": "Todo"},
                   {"Name": "dry brand new", "Status": "Blocked"},
                   {"Name": "dry C", "Status": "Done"}
               ]}),
    )
    .await;
    let p = &out["preview"];
    assert_eq!(p["unchanged"], 1, "{p}");
    assert_eq!(p["record_count"], 3, "{p}");
    let recs = p["records"].as_array().unwrap();
    assert_eq!(recs.len(), 4, "{p}");
    assert_eq!(recs[0]["action"], "ambiguous");
    let amb = recs[0]["label"].as_str().unwrap();
    assert!(
        amb.starts_with("records[4]") && amb.contains(&ids[2]) && amb.contains(&ids[3]),
        "{amb}"
    );
    assert_eq!(
        recs[1],
        json!({"action": "update", "id": a, "label": "dry A",
               "changes": [{"field": "Status", "before": "Todo", "after": "Done"}]})
    );
    assert_eq!(
        recs[2],
        json!({"action": "create", "label": "dry brand new",
               "fields": {"Name": "dry brand new", "Status": "Todo"}})
    );
    // The second "dry brand new" updates the record the first one creates.
    assert_eq!(recs[3]["action"], "update");
    assert_eq!(recs[3]["id"], "(created by records[2])");
    assert_eq!(
        recs[3]["changes"],
        json!([{"field": "Status", "before": "Todo", "after": "Blocked"}])
    );

    // Nothing was written by any of them (reads are GETs).
    assert_eq!(write_requests(&h), writes_before);
    assert_eq!(fields_of(&h, a).await, a_before);
}

#[tokio::test]
async fn unknown_records_and_ambiguous_upserts_are_refused_before_sending() {
    let h = harness().await;
    let c = &h.client;
    let ids = seed(
        &h,
        &[("ref A", "Todo"), ("ref B", "Todo"), ("ref B", "Done")],
    )
    .await;
    let before = write_requests(&h);
    let e = err(
        c,
        "batch_update_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "records": [
            {"id": ids[0], "fields": {"Status": "Done"}},
            {"id": GHOST, "fields": {"Status": "Done"}}
        ]}),
    )
    .await;
    assert!(
        e.contains(GHOST) && e.contains("do not exist") && e.contains("Nothing was sent"),
        "{e}"
    );
    let e = err(
        c,
        "batch_delete_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_ids": [ids[0], GHOST]}),
    )
    .await;
    assert!(e.contains(GHOST) && e.contains("do not exist"), "{e}");
    let e = err(
        c,
        "batch_upsert_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "fields_to_merge_on": ["Name"], "records": [
            {"Name": "ref A", "Status": "Done"},
            {"Name": "ref B", "Status": "Blocked"}
        ]}),
    )
    .await;
    assert!(
        e.contains("records[1] matches") && e.contains(&ids[1]) && e.contains(&ids[2]),
        "{e}"
    );
    assert_eq!(write_requests(&h), before, "nothing was sent");
    assert_eq!(fields_of(&h, &ids[0]).await["Status"], "Todo");
}

#[tokio::test]
async fn real_runs_are_journaled() {
    let h = harness().await;
    let c = &h.client;
    let out = ok(
        c,
        "create_record",
        json!({"base_id": DEMO, "table_id": "Tasks", "fields": {"Name": "real one"}}),
    )
    .await;
    write_id(&out);
    let one = out["record"]["id"].as_str().unwrap().to_owned();

    let out = ok(
        c,
        "batch_create_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "records": [{"Name": "real 1"}, {"Name": "real 2"}]}),
    )
    .await;
    let id = write_id(&out);
    assert!(out["note"].as_str().unwrap().contains(&id), "{out}");
    let made: Vec<String> = out["written_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();

    let out = ok(
        c,
        "batch_update_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "records": [
            {"id": made[0], "fields": {"Status": "Done"}}, {"id": made[1], "fields": {"Status": "Blocked"}}
        ]}),
    )
    .await;
    write_id(&out);
    assert_eq!(fields_of(&h, &made[1]).await["Status"], "Blocked");

    let out = ok(
        c,
        "batch_upsert_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "fields_to_merge_on": ["Name"], "records": [
            {"Name": "real 1", "Status": "Todo"}, {"Name": "real 3", "Status": "Todo"}
        ]}),
    )
    .await;
    write_id(&out);
    assert_eq!(out["updated_ids"], json!([made[0]]));
    assert_eq!(out["created_ids"].as_array().unwrap().len(), 1);

    let mut all = made.clone();
    all.push(one);
    all.push(out["created_ids"][0].as_str().unwrap().to_owned());
    let out = ok(
        c,
        "batch_delete_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_ids": all}),
    )
    .await;
    write_id(&out);
    assert_eq!(out["written"], 4);

    // --no-journal: applied, no write_id.
    let h = harness_with(ServerOptions {
        journal: JournalLocation::Off,
        ..ServerOptions::default()
    })
    .await;
    let out = ok(
        &h.client,
        "batch_create_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "records": [{"Name": "unjournaled"}]}),
    )
    .await;
    assert_eq!(out["written"], 1);
    assert!(out.get("write_id").is_none(), "{out}");
}

#[tokio::test]
async fn a_partial_batch_journals_what_was_written_and_says_so() {
    let h = harness().await;
    let c = &h.client;
    // Creates: input 13 has a select option that does not exist (passes our checks, the
    // sandbox refuses it), so chunk 2 fails: chunk 1 is written and journaled.
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
    let id = write_id(&out);
    let note = out["note"].as_str().unwrap();
    assert!(
        note.contains("(inputs 0-9)")
            && note.contains(&format!("confirmed written are journaled as {id}")),
        "{note}"
    );

    // Updates: the same with input 12 of 15.
    let rows: Vec<(String, &str)> = (0..15).map(|i| (format!("pu {i}"), "Todo")).collect();
    let rows: Vec<(&str, &str)> = rows.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    let ids = seed(&h, &rows).await;
    let updates: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let status = if i == 12 { "Nonexistent" } else { "Done" };
            json!({"id": id, "fields": {"Status": status}})
        })
        .collect();
    let r = call(
        c,
        "batch_update_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "records": updates}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    let out = r.structured_content.clone().unwrap();
    assert_eq!(out["written"], 10);
    assert_eq!(out["written_ids"], json!(ids[..10]));
    let id = write_id(&out);
    assert!(out["note"].as_str().unwrap().contains(&id), "{out}");
    assert_eq!(fields_of(&h, &ids[9]).await["Status"], "Done");
    assert_eq!(fields_of(&h, &ids[10]).await["Status"], "Todo");
}

#[tokio::test]
async fn an_ambiguous_chunk_is_not_journaled_and_the_note_says_so() {
    let sb = sandbox_with(airtable_mcp::sandbox::SandboxConfig {
        faults: airtable_mcp::sandbox::Faults {
            drop_after_rate: 1.0,
            ..Default::default()
        },
        ..airtable_mcp::sandbox::SandboxConfig::demo()
    })
    .await;
    let state =
        airtable_mcp::tools::ServerState::new(Ok(client_for(&sb)), ServerOptions::default());
    let c = connect(airtable_mcp::tools::AirtableServer::new(state)).await;
    let r = call(
        &c,
        "batch_create_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "records": [{"Name": "amb 0"}, {"Name": "amb 1"}]}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    let out = r.structured_content.clone().unwrap();
    assert_eq!(out["failed"][0]["may_have_been_written"], true);
    assert!(out.get("write_id").is_none(), "{out}");
    assert!(
        out["note"].as_str().unwrap().contains("resumes this call"),
        "{out}"
    );
}

#[tokio::test]
async fn big_batches_pass_with_confirm_never() {
    let h = harness_with(ServerOptions {
        confirm: ConfirmMode::Never,
        confirm_threshold: 5,
        ..ServerOptions::default()
    })
    .await;
    let c = &h.client;
    let records: Vec<Value> = (0..12)
        .map(|i| json!({"Name": format!("big {i}")}))
        .collect();
    let out = ok(
        c,
        "batch_create_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "records": records}),
    )
    .await;
    assert_eq!(out["written"], 12);
    write_id(&out);
    let out = ok(
        c,
        "batch_delete_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_ids": out["written_ids"]}),
    )
    .await;
    assert_eq!(out["written"], 12);
}

#[tokio::test]
async fn before_images_cost_one_read_per_hundred_records() {
    let h = harness().await;
    let c = &h.client;
    let rows: Vec<(String, &str)> = (0..100).map(|i| (format!("cost {i}"), "Todo")).collect();
    let rows: Vec<(&str, &str)> = rows.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    let ids = seed(&h, &rows).await;
    // Warm the schema cache so that only the write's own requests are counted.
    ok(c, "list_tables", json!({"base_id": DEMO})).await;
    let count = |h: &Harness, m: &str| h.sandbox.stats().by_method.get(m).copied().unwrap_or(0);
    let (get0, patch0) = (count(&h, "GET"), count(&h, "PATCH"));
    let updates: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "fields": {"Status": "Done"}}))
        .collect();
    let out = ok(
        c,
        "batch_update_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "records": updates}),
    )
    .await;
    assert_eq!(out["written"], 100);
    assert_eq!(count(&h, "GET") - get0, 1, "one read for 100 before-images");
    assert_eq!(count(&h, "PATCH") - patch0, 10);
    let (get0, del0) = (count(&h, "GET"), count(&h, "DELETE"));
    let out = ok(
        c,
        "batch_delete_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_ids": ids}),
    )
    .await;
    assert_eq!(out["written"], 100);
    assert_eq!(count(&h, "GET") - get0, 1);
    assert_eq!(count(&h, "DELETE") - del0, 10);
}

/// A batch cancelled part way (issue #11: a cancel after 240 of 2,000 records still wrote all
/// 2,000) stops before its next request; the journal holds exactly the records written.
#[tokio::test]
async fn a_cancelled_batch_stops_between_requests_and_journals_what_it_wrote() {
    use airtable_mcp::sandbox::{Faults, SandboxConfig};
    use rmcp::model::{CallToolRequestParams, ClientRequest, Request};
    use rmcp::service::PeerRequestOptions;

    let sb = sandbox_with(SandboxConfig {
        faults: Faults {
            // Slow enough that a loaded machine still cancels long before the 30th request.
            latency: std::time::Duration::from_millis(150),
            ..Faults::default()
        },
        ..SandboxConfig::demo()
    })
    .await;
    let state = ServerState::new(Ok(client_for(&sb)), ServerOptions::default());
    let client = connect(AirtableServer::new(state)).await;
    let count = |v: &Value| v["count"].as_u64().unwrap();
    let tasks = json!({"base_id": DEMO, "table_id": "Tasks", "query": "Cancelled batch",
                       "max_records": 1000});
    assert_eq!(
        count(&ok(&client, "search_records", tasks.clone()).await),
        0
    );

    let records: Vec<Value> = (0..300)
        .map(|i| json!({"Name": format!("Cancelled batch {i}")}))
        .collect();
    let params = CallToolRequestParams::new("batch_create_records").with_arguments(
        json!({"base_id": DEMO, "table_id": "Tasks", "records": records})
            .as_object()
            .unwrap()
            .clone(),
    );
    let handle = client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    // Cancel once the first records are in (30 requests of 10 at >= 150 ms each take over 4.5
    // seconds, so most are still to come).
    for _ in 0..400 {
        if count(&ok(&client, "search_records", tasks.clone()).await) >= 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    handle.cancel(Some("test".into())).await.unwrap();
    // The call finishes its request in flight, journals, and stops: wait for the journal.
    let mut entry = Value::Null;
    for _ in 0..400 {
        let listed = ok(&client, "list_recent_writes", json!({"limit": 1})).await;
        if let Some(w) = listed["writes"].as_array().and_then(|w| w.first())
            && w["tool"] == "batch_create_records"
            && w["pending"] != true
        {
            entry = w.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(entry["complete"], false, "{entry}");
    let written = count(&ok(&client, "search_records", tasks.clone()).await);
    assert!(written > 0 && written < 300, "{written} of 300 written");
    assert_eq!(written % 10, 0, "whole requests only: {written}");
    assert_eq!(entry["record_count"], written, "{entry}");
    // Nothing more arrives later.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(count(&ok(&client, "search_records", tasks).await), written);
    // And undo takes exactly those back.
    let u = ok(&client, "undo_write", json!({"write_id": entry["id"]})).await;
    assert_eq!(u["applied"], true, "{u}");
}
