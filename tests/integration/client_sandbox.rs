//! The Airtable client against the project's sandbox (a real Airtable-compatible server on
//! loopback): the two must agree on paths, encodings, JSON shapes and error types.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use airtable_mcp::airtable::{
    ApiErrorKind, BaseId, Client, ClientConfig, Error, FieldType, Fields, GetOptions, ListQuery,
    RecordId, RecordUpdate, UpdateMode, UpsertRecord, WriteOptions,
};
use airtable_mcp::sandbox::{self, DEMO_BASE_ID, Faults, SandboxConfig, SandboxHandle};
use futures::TryStreamExt;
use secrecy::SecretString;
use serde_json::{Value, json};

async fn start(cfg: SandboxConfig) -> SandboxHandle {
    sandbox::spawn(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn client_cfg(sb: &SandboxHandle) -> ClientConfig {
    let mut cfg = ClientConfig::new(sb.url(), SecretString::from(sb.token().to_owned()));
    cfg.timeout = Duration::from_secs(10);
    cfg.per_base_rps = 1000;
    cfg.per_token_rps = 1000;
    cfg.max_retries = 2;
    cfg.initial_backoff = Duration::from_millis(5);
    cfg.max_backoff = Duration::from_millis(20);
    cfg
}

fn demo() -> BaseId {
    DEMO_BASE_ID.parse().unwrap()
}

fn fields(v: Value) -> Fields {
    v.as_object().unwrap().clone()
}

#[tokio::test]
async fn reads_match_the_sandbox() {
    let sb = start(SandboxConfig::demo()).await;
    let c = Client::new(client_cfg(&sb)).unwrap();
    c.whoami().await.unwrap();
    let bases = c.list_bases().await.unwrap();
    assert!(bases.iter().any(|b| b.id == DEMO_BASE_ID));
    let schema = c.base_schema(&demo()).await.unwrap();
    let tasks = schema.table("Tasks").unwrap();
    let minutes = tasks.field("Estimate (minutes)").unwrap();
    assert_eq!(minutes.field_type, FieldType::Formula);
    assert!(minutes.field_type.is_computed());

    let pages: Vec<_> = c
        .list_records(&demo(), "Tasks", ListQuery::new().with_page_size(50))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        pages.iter().map(|p| p.records.len()).collect::<Vec<_>>(),
        vec![50, 50, 50, 18]
    );
    let capped = c
        .list_all_records(
            &demo(),
            tasks.id.as_str(),
            ListQuery::new().with_max_records(120).with_field("Name"),
        )
        .await
        .unwrap();
    assert_eq!(capped.len(), 120);
    assert!(capped.iter().all(|r| r.fields.keys().all(|k| k == "Name")));

    // A formula long enough to force POST listRecords.
    let long = format!("{{Name}} != '{}'", "x".repeat(16_500));
    let all = c
        .list_all_records(&demo(), "Tasks", ListQuery::new().with_filter(long))
        .await
        .unwrap();
    assert_eq!(all.len(), 168);

    let one = c
        .get_record(&demo(), "Tasks", &all[0].id, &GetOptions::default())
        .await
        .unwrap();
    assert_eq!(one.id, all[0].id);
    sb.shutdown().await;
}

#[tokio::test]
async fn writes_and_errors_match_the_sandbox() {
    let sb = start(SandboxConfig::demo()).await;
    let c = Client::new(client_cfg(&sb)).unwrap();
    let rows: Vec<Fields> = (0..25)
        .map(|i| fields(json!({"Name": format!("bulk {i}")})))
        .collect();
    let before = sb.stats().requests;
    let out = c
        .create_records(&demo(), "People", rows, &WriteOptions::default())
        .await;
    assert!(out.is_complete(), "{:?}", out.failure);
    assert_eq!(out.written.len(), 25);
    assert_eq!(sb.stats().requests - before, 3, "10 + 10 + 5");

    let ups: Vec<RecordUpdate> = out
        .written
        .iter()
        .map(|r| RecordUpdate {
            id: r.id.clone(),
            fields: fields(json!({"Active": true})),
        })
        .collect();
    let upd = c
        .update_records(
            &demo(),
            "People",
            ups,
            UpdateMode::Patch,
            &WriteOptions::default(),
        )
        .await;
    assert!(upd.is_complete(), "{:?}", upd.failure);
    assert!(
        upd.written
            .iter()
            .all(|r| r.fields["Active"] == true && r.fields["Name"].is_string())
    );

    let up = c
        .upsert_records(
            &demo(),
            "People",
            vec![
                UpsertRecord {
                    id: None,
                    fields: fields(json!({"Name": "bulk 3", "Role": "Engineer"})),
                },
                UpsertRecord {
                    id: None,
                    fields: fields(json!({"Name": "brand new"})),
                },
            ],
            vec!["Name".into()],
            UpdateMode::Patch,
            &WriteOptions {
                typecast: true,
                ..Default::default()
            },
        )
        .await;
    assert!(up.is_complete(), "{:?}", up.failure);
    assert_eq!(up.updated_ids, vec![out.written[3].id.clone()]);
    assert_eq!(up.created_ids.len(), 1);

    let ids: Vec<RecordId> = out.written.iter().map(|r| r.id.clone()).collect();
    let del = c
        .delete_records(&demo(), "People", ids, &WriteOptions::default())
        .await;
    assert!(del.is_complete(), "{:?}", del.failure);
    assert_eq!(del.deleted.len(), 25);

    // Error types as the sandbox answers them.
    let kind = |e: Error| e.kind().cloned();
    let e = c
        .create_record(
            &demo(),
            "Tasks",
            fields(json!({"Nope": 1})),
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(kind(e), Some(ApiErrorKind::UnknownFieldName));
    let e = c
        .create_record(
            &demo(),
            "Tasks",
            fields(json!({"Estimate (minutes)": 3})),
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(kind(e), Some(ApiErrorKind::InvalidValueForColumn));
    let e = c
        .create_record(
            &demo(),
            "Tasks",
            fields(json!({"Status": "No such status"})),
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(kind(e), Some(ApiErrorKind::InvalidMultipleChoiceOptions));
    let e = c
        .list_records_page(&demo(), "Tasks", &ListQuery::new().with_filter("{Name"))
        .await
        .unwrap_err();
    assert_eq!(kind(e), Some(ApiErrorKind::InvalidFilterByFormula));
    let e = c
        .list_records_page(&demo(), "No such table", &ListQuery::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            Some(ApiErrorKind::InvalidPermissionsOrModelNotFound | ApiErrorKind::NotFound)
        ),
        "{e}"
    );
    let e = c
        .get_record(
            &demo(),
            "Tasks",
            &"recAAAAAAAAAAAAAA".parse().unwrap(),
            &GetOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(kind(e), Some(ApiErrorKind::NotFound));
    let e = c
        .with_token(SecretString::from("wrong"))
        .whoami()
        .await
        .unwrap_err();
    assert_eq!(kind(e), Some(ApiErrorKind::AuthenticationRequired));
    sb.shutdown().await;
}

#[tokio::test]
async fn a_write_dropped_after_it_was_applied_is_ambiguous_and_not_duplicated() {
    let sb = start(SandboxConfig {
        faults: Faults {
            drop_after_rate: 1.0,
            ..Default::default()
        },
        ..SandboxConfig::demo()
    })
    .await;
    let c = Client::new(client_cfg(&sb)).unwrap();
    let rows: Vec<Fields> = (0..3)
        .map(|i| fields(json!({"Name": format!("dropped {i}")})))
        .collect();
    let out = c
        .create_records(&demo(), "People", rows, &WriteOptions::default())
        .await;
    let f = out.failure.as_ref().unwrap();
    assert!(f.ambiguous, "{:?}", f.error);
    assert_eq!(f.input_indexes, vec![0, 1, 2]);
    assert_eq!(sb.stats().dropped, 1, "sent once, not retried");
    sb.shutdown().await;

    // Reads are unaffected by write faults; count what was applied.
    let sb2 = start(SandboxConfig {
        faults: Faults {
            fail_rate: 1.0,
            ..Default::default()
        },
        ..SandboxConfig::demo()
    })
    .await;
    let c2 = Client::new(client_cfg(&sb2)).unwrap();
    let out = c2
        .create_records(
            &demo(),
            "People",
            vec![fields(json!({"Name": "x"}))],
            &WriteOptions::default(),
        )
        .await;
    let f = out.failure.unwrap();
    assert!(!f.ambiguous, "503 RETRIABLE_ERROR is provably not applied");
    assert_eq!(f.error.status(), Some(503));
    assert_eq!(
        c2.stats().retries,
        2,
        "a create is retried on 503 RETRIABLE_ERROR"
    );
    sb2.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_sandbox_429_is_waited_out() {
    // A client deliberately faster than the sandbox's limit of 5/s (1 s penalty).
    let sb = start(SandboxConfig {
        rate_limit: 5,
        penalty: Duration::from_secs(1),
        ..SandboxConfig::demo()
    })
    .await;
    let mut cfg = client_cfg(&sb);
    cfg.max_retries = 3;
    let c = Client::new(cfg).unwrap();
    let t0 = tokio::time::Instant::now();
    for _ in 0..7 {
        c.list_records_page(&demo(), "Tasks", &ListQuery::new().with_page_size(1))
            .await
            .unwrap();
    }
    assert!(sb.stats().rate_limited >= 1);
    assert_eq!(c.stats().rate_limited, sb.stats().rate_limited);
    // The paused clock moved by at least the penalty: the client waited it out.
    assert!(t0.elapsed() >= Duration::from_secs(1), "{:?}", t0.elapsed());
    sb.shutdown().await;
}
