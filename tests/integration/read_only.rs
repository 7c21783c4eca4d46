//! `--read-only` at its one choke point, the Airtable client: a read-only client refuses every
//! write before sending it (`Error::ReadOnly`), whichever client method or tool asks, and the
//! sandbox (a real Airtable-compatible server on loopback) sees no write request at all.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::mcp_support;

use std::time::Duration;

use airtable_mcp::airtable::{
    BaseId, Client, ClientConfig, CommentId, CreateField, CreateTable, Error, FieldSpec, Fields,
    ListQuery, RecordId, RecordUpdate, UpdateField, UpdateMode, UpdateTable, UpsertRecord,
    WriteOptions,
};
use airtable_mcp::config::JournalLocation;
use airtable_mcp::sandbox::SandboxHandle;
use airtable_mcp::tools::{Access, AirtableServer, CATALOG, ServerOptions, ServerState};
use mcp_support::*;
use secrecy::SecretString;
use serde_json::{Value, json};

fn read_only_client(sb: &SandboxHandle) -> Client {
    let mut cfg = ClientConfig::new(sb.url(), SecretString::from(sb.token().to_owned()));
    cfg.per_base_rps = 1000;
    cfg.per_token_rps = 1000;
    cfg.max_retries = 2;
    cfg.max_backoff = Duration::from_millis(50);
    cfg.timeout = Duration::from_secs(10);
    cfg.read_only = true;
    Client::new(cfg).expect("client builds")
}

fn demo() -> BaseId {
    DEMO.parse().expect("demo base id")
}

fn fields(v: Value) -> Fields {
    v.as_object().cloned().expect("object")
}

fn assert_read_only(what: &str, e: &Error) {
    assert!(
        matches!(e, Error::ReadOnly { .. }),
        "{what}: expected Error::ReadOnly, got {e:?}"
    );
    assert!(e.to_string().contains("read-only"), "{what}: {e}");
    assert!(e.hint().contains("--read-only"), "{what}: {}", e.hint());
}

/// IDs of the demo base the writes aim at: the People table, one of its records, its Name field.
struct Target {
    table: String,
    record: RecordId,
    field: String,
    /// A journaled write (for undo_write), when the test made one.
    write_id: String,
    /// A watch (for unwatch_table), when the test made one.
    watch_id: String,
}

async fn target(sb: &SandboxHandle) -> Target {
    let client = client_for(sb);
    let schema = client.base_schema(&demo()).await.expect("schema");
    let people = schema
        .tables
        .iter()
        .find(|t| t.name == "People")
        .expect("People table");
    let field = people
        .fields
        .iter()
        .find(|f| f.name == "Name")
        .expect("Name field")
        .id
        .to_string();
    let recs = client
        .list_all_records(&demo(), people.id.as_ref(), ListQuery::default())
        .await
        .expect("records");
    Target {
        table: people.id.to_string(),
        record: recs[0].id.clone(),
        field,
        write_id: String::new(),
        watch_id: String::new(),
    }
}

#[tokio::test]
async fn every_client_write_is_refused_before_sending() {
    let sb = demo_sandbox().await;
    let t = target(&sb).await;
    let before = sb.stats();
    let ro = read_only_client(&sb);
    let base = demo();
    let opts = WriteOptions::default();
    let rec = t.record.clone();
    let comment: CommentId = "comAAAAAAAAAAAAAA".parse().expect("comment id");

    assert_read_only(
        "create_record",
        &ro.create_record(&base, &t.table, fields(json!({"Name": "x"})), &opts)
            .await
            .unwrap_err(),
    );
    assert_read_only(
        "update_record",
        &ro.update_record(
            &base,
            &t.table,
            &rec,
            fields(json!({"Name": "x"})),
            UpdateMode::Patch,
            &opts,
        )
        .await
        .unwrap_err(),
    );
    assert_read_only(
        "update_record (put)",
        &ro.update_record(
            &base,
            &t.table,
            &rec,
            fields(json!({"Name": "x"})),
            UpdateMode::Put,
            &opts,
        )
        .await
        .unwrap_err(),
    );
    assert_read_only(
        "delete_record",
        &ro.delete_record(&base, &t.table, &rec).await.unwrap_err(),
    );
    let batch = ro
        .create_records(&base, &t.table, vec![fields(json!({"Name": "x"}))], &opts)
        .await;
    assert_read_only(
        "create_records",
        &batch.failure.expect("create_records fails").error,
    );
    let batch = ro
        .update_records(
            &base,
            &t.table,
            vec![RecordUpdate {
                id: rec.clone(),
                fields: fields(json!({"Name": "x"})),
            }],
            UpdateMode::Patch,
            &opts,
        )
        .await;
    assert_read_only(
        "update_records",
        &batch.failure.expect("update_records fails").error,
    );
    let batch = ro
        .upsert_records(
            &base,
            &t.table,
            vec![UpsertRecord {
                id: None,
                fields: fields(json!({"Name": "x"})),
            }],
            vec!["Name".into()],
            UpdateMode::Patch,
            &opts,
        )
        .await;
    assert_read_only(
        "upsert_records",
        &batch.failure.expect("upsert_records fails").error,
    );
    let batch = ro
        .delete_records(&base, &t.table, vec![rec.clone()], &opts)
        .await;
    assert_read_only(
        "delete_records",
        &batch.failure.expect("delete_records fails").error,
    );
    let spec = FieldSpec {
        name: "New".into(),
        field_type: serde_json::from_value(json!("singleLineText")).expect("type"),
        description: None,
        options: None,
    };
    assert_read_only(
        "create_table",
        &ro.create_table(
            &base,
            &CreateTable {
                name: "New".into(),
                description: None,
                fields: vec![spec.clone()],
            },
        )
        .await
        .unwrap_err(),
    );
    assert_read_only(
        "update_table",
        &ro.update_table(
            &base,
            &t.table,
            &UpdateTable {
                name: Some("Renamed".into()),
                description: None,
            },
        )
        .await
        .unwrap_err(),
    );
    let field: CreateField = spec;
    assert_read_only(
        "create_field",
        &ro.create_field(&base, &t.table, &field).await.unwrap_err(),
    );
    assert_read_only(
        "update_field",
        &ro.update_field(
            &base,
            &t.table,
            &t.field,
            &UpdateField {
                name: Some("Renamed".into()),
                description: None,
            },
        )
        .await
        .unwrap_err(),
    );
    assert_read_only(
        "create_comment",
        &ro.create_comment(&base, &t.table, &rec, "hi")
            .await
            .unwrap_err(),
    );
    assert_read_only(
        "update_comment",
        &ro.update_comment(&base, &t.table, &rec, &comment, "hi")
            .await
            .unwrap_err(),
    );
    assert_read_only(
        "delete_comment",
        &ro.delete_comment(&base, &t.table, &rec, &comment)
            .await
            .unwrap_err(),
    );
    assert_read_only(
        "upload_attachment",
        &ro.upload_attachment(&base, &rec, "Photo", "text/plain", "hi.txt", b"hi")
            .await
            .unwrap_err(),
    );
    // A client for another token (an HTTP session's) shares the pool and stays read-only.
    let session = ro.with_token(SecretString::from("another-token".to_owned()));
    assert_read_only(
        "with_token",
        &session
            .delete_record(&base, &t.table, &rec)
            .await
            .unwrap_err(),
    );
    // Nothing reached the sandbox, and the client sent nothing.
    assert_eq!(sb.stats(), before, "the sandbox saw a request");
    assert_eq!(ro.stats().requests, 0);

    // Reads still work, including a listing long enough to go out as POST .../listRecords.
    ro.base_schema(&base).await.expect("schema read");
    ro.get_record(&base, &t.table, &rec, &Default::default())
        .await
        .expect("record read");
    let long_formula = format!("NOT({{Name}} = \"{}\")", "x".repeat(17_000));
    let listed = ro
        .list_all_records(
            &base,
            &t.table,
            ListQuery {
                filter_by_formula: Some(long_formula),
                ..ListQuery::default()
            },
        )
        .await
        .expect("POST listRecords is a read");
    assert!(!listed.is_empty());
    let after = sb.stats();
    assert_eq!(after.writes, 0, "{after:?}");
    assert!(
        after.by_method.get("POST").copied().unwrap_or(0) >= 1,
        "the long listing went out as POST: {after:?}"
    );
}

/// Valid arguments for each write tool against the demo base. A new write tool must be added
/// here (the test fails until it is).
fn write_args(tool: &str, t: &Target) -> Value {
    let rec = t.record.to_string();
    let (base, table) = (DEMO, t.table.as_str());
    match tool {
        "create_table" => json!({"base_id": base, "name": "New table",
            "fields": [{"name": "Name", "type": "singleLineText"}]}),
        "update_table" => json!({"base_id": base, "table_id": table, "description": "changed"}),
        "create_field" => {
            json!({"base_id": base, "table_id": table, "name": "Nickname", "type": "singleLineText"})
        }
        "update_field" => {
            json!({"base_id": base, "table_id": table, "field_id": t.field, "description": "changed"})
        }
        "create_record" => json!({"base_id": base, "table_id": table, "fields": {"Name": "x"}}),
        "update_record" => {
            json!({"base_id": base, "table_id": table, "record_id": rec, "fields": {"Name": "x"}})
        }
        "delete_record" => json!({"base_id": base, "table_id": table, "record_id": rec}),
        "batch_create_records" => {
            json!({"base_id": base, "table_id": table, "records": [{"fields": {"Name": "x"}}]})
        }
        "batch_update_records" => json!({"base_id": base, "table_id": table,
            "records": [{"id": rec, "fields": {"Name": "x"}}]}),
        "batch_delete_records" => {
            json!({"base_id": base, "table_id": table, "record_ids": [rec]})
        }
        "batch_upsert_records" => json!({"base_id": base, "table_id": table,
            "records": [{"fields": {"Name": "Nobody yet", "Email": "n@example.com"}}],
            "fields_to_merge_on": ["Name"]}),
        "create_metadata_table" => json!({"base_id": base}),
        "sync_tables" => json!({"source_base_id": base, "source_table_id": "Projects",
            "target_base_id": base, "target_table_id": table, "key_field": "Name", "dry_run": false}),
        "create_comment" => {
            json!({"base_id": base, "table_id": table, "record_id": rec, "text": "hi"})
        }
        "undo_write" => json!({"write_id": t.write_id}),
        "upload_attachment" => json!({"base_id": base, "table_id": table, "record_id": rec,
            "field": "Photo", "source": {"content_base64": "aGk=", "filename": "hi.txt"}}),
        "import_records" => json!({"base_id": base, "table_id": table,
            "source": "Name\nImported\n", "dry_run": false}),
        "watch_table" => json!({"base_id": base, "table_id": table}),
        "unwatch_table" => json!({"watch_id": t.watch_id}),
        other => panic!(
            "write tool {other} has no arguments in tests/integration/read_only.rs: add them"
        ),
    }
}

#[tokio::test]
async fn every_write_tool_is_stopped_by_a_read_only_client() {
    let sb = demo_sandbox().await;
    let t = target(&sb).await;
    // The options allow writes (every write tool is exposed): only the client refuses.
    // One journaled write, made first by a writable server on the same journal and token,
    // gives undo_write something to take back.
    let dir = tempfile::tempdir().unwrap();
    let options = ServerOptions {
        journal: JournalLocation::File(dir.path().join("journal.sqlite3")),
        ..ServerOptions::default()
    };
    assert!(!options.read_only);
    let writable = connect(AirtableServer::new(ServerState::new(
        Ok(client_for(&sb)),
        options.clone(),
    )))
    .await;
    let done = ok(
        &writable,
        "update_record",
        json!({"base_id": DEMO, "table_id": t.table, "record_id": t.record.to_string(),
               "fields": {"Name": "Written before the read-only run"}}),
    )
    .await;
    let mut t = t;
    t.write_id = done["write_id"].as_str().expect("journaled").to_owned();
    // A watch (its webhook made by the writable server) for unwatch_table.
    let watched = ok(
        &writable,
        "watch_table",
        json!({"base_id": DEMO, "table_id": t.table, "fields": ["Name"]}),
    )
    .await;
    t.watch_id = watched["watch"]["watch_id"]
        .as_str()
        .expect("a watch")
        .to_owned();
    let baseline = sb.stats();
    let state = ServerState::new(Ok(read_only_client(&sb)), options);
    let client = connect(AirtableServer::new(state.clone())).await;
    let writes: Vec<&str> = CATALOG
        .iter()
        .filter(|s| s.access == Access::Write)
        .map(|s| s.name)
        .collect();
    assert!(writes.len() >= 14, "{writes:?}");
    for tool in writes {
        assert!(
            state.tool_names().iter().any(|n| n == tool),
            "{tool} is exposed"
        );
        let r = call(&client, tool, write_args(tool, &t)).await;
        let msg = text(&r);
        // An error result, or (sync_tables) a result reporting the write that failed.
        let failed = r.is_error == Some(true) || msg.contains("\"complete\":false");
        assert!(failed, "{tool} should fail: {msg}");
        assert!(msg.contains("read-only"), "{tool}: {msg}");
        let stats = sb.stats();
        assert_eq!(
            stats.writes, baseline.writes,
            "{tool} reached the sandbox: {stats:?}"
        );
        for m in ["PATCH", "PUT", "DELETE"] {
            assert_eq!(
                stats.by_method.get(m),
                baseline.by_method.get(m),
                "{tool}: {stats:?}"
            );
        }
    }
}
