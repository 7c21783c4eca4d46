//! The Airtable client against a real HTTP server on loopback (tests/integration/support).
//!
//! Tests of limits, retries, Retry-After and timeouts run on tokio's paused clock
//! (`start_paused = true`): the fixture runs in-process on the same runtime, so the clock only
//! jumps when every task waits on a timer, and the times asserted are the paused clock's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use airtable_mcp::airtable::{
    ApiErrorKind, BaseId, ChunkStatus, Client, ClientConfig, CreateField, CreateTable, Error,
    FieldSpec, FieldType, Fields, GetOptions, ListQuery, RecordId, RecordUpdate, SortDirection,
    UpdateField, UpdateMode, UpdateTable, UpsertRecord, WriteOptions,
};
use futures::TryStreamExt;
use secrecy::SecretString;
use serde_json::{Value, json};
use support::{BASE, BlackHole, Fixture, RateLimit, Scripted, TOKEN};

fn config(url: &url::Url) -> ClientConfig {
    let mut cfg = ClientConfig::new(url.clone(), SecretString::from(TOKEN));
    cfg.timeout = Duration::from_secs(5);
    cfg.per_base_rps = 1000;
    cfg.per_token_rps = 1000;
    cfg.max_retries = 3;
    cfg.rate_limit_wait = Duration::from_millis(300);
    cfg.initial_backoff = Duration::from_millis(5);
    cfg.max_backoff = Duration::from_millis(20);
    cfg
}

fn client(fx: &Fixture) -> Client {
    Client::new(config(&fx.url)).unwrap()
}

fn base() -> BaseId {
    BASE.parse().unwrap()
}

fn fields(v: Value) -> Fields {
    v.as_object().unwrap().clone()
}

fn named(n: usize) -> Vec<Fields> {
    (0..n)
        .map(|i| fields(json!({"Name": format!("r{i}")})))
        .collect()
}

#[tokio::test]
async fn meta_endpoints() {
    let fx = Fixture::start().await;
    let c = client(&fx);
    let me = c.whoami().await.unwrap();
    assert_eq!(me.id.as_str(), "usrFIXTUREusr0001");
    assert_eq!(me.email.as_deref(), Some("fixture@example.com"));

    let bases = c.list_bases().await.unwrap();
    assert_eq!(bases.len(), 2, "both pages");
    assert_eq!(bases[1].id.as_str(), support::BASE2);

    let schema = c.base_schema(&base()).await.unwrap();
    let t = schema.table("Tasks").unwrap();
    assert_eq!(t.field("Score").unwrap().field_type, FieldType::Formula);
    assert!(t.field("Score").unwrap().field_type.is_computed());

    let table = c
        .create_table(
            &base(),
            &CreateTable {
                name: "New".into(),
                description: None,
                fields: vec![FieldSpec {
                    name: "Title".into(),
                    field_type: FieldType::SingleLineText,
                    description: None,
                    options: None,
                }],
            },
        )
        .await
        .unwrap();
    assert_eq!(table.fields[0].name, "Title");
    let upd = c
        .update_table(
            &base(),
            "Tasks",
            &UpdateTable {
                name: Some("Renamed".into()),
                description: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(upd.name, "Renamed");
    let f = c
        .create_field(
            &base(),
            "tblFIXTUREtbl0001",
            &CreateField {
                name: "Done".into(),
                field_type: FieldType::Checkbox,
                description: None,
                options: Some(json!({"color": "greenBright", "icon": "check"})),
            },
        )
        .await
        .unwrap();
    assert_eq!(f.field_type, FieldType::Checkbox);
    let f = c
        .update_field(
            &base(),
            "tblFIXTUREtbl0001",
            "fldFIXTUREfld0001",
            &UpdateField {
                name: None,
                description: Some("d".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(f.description.as_deref(), Some("d"));

    let log = fx.state.log();
    assert!(
        log.iter()
            .any(|s| s.method == "GET" && s.path == "/v0/meta/bases" && s.query == "offset=page2")
    );
    assert!(log.iter().any(|s| s.method == "PATCH" && s.path == format!("/v0/meta/bases/{BASE}/tables/Tasks")));
}

#[tokio::test]
async fn pagination_across_pages_and_max_records() {
    let fx = Fixture::start().await;
    fx.state.seed("Tasks", named(25));
    let c = client(&fx);

    let pages: Vec<_> = c
        .list_records(&base(), "Tasks", ListQuery::new().with_page_size(10))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        pages.iter().map(|p| p.records.len()).collect::<Vec<_>>(),
        vec![10, 10, 5]
    );
    assert!(pages[2].offset.is_none());
    let gets: Vec<_> = fx
        .state
        .log()
        .into_iter()
        .filter(|s| s.method == "GET")
        .collect();
    assert_eq!(gets.len(), 3);
    assert!(gets[1].query.contains("offset=itrFIXTURE%2F10"));

    fx.state.clear_log();
    let all = c
        .list_all_records(
            &base(),
            "Tasks",
            ListQuery::new().with_page_size(10).with_max_records(15),
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 15);
    assert_eq!(all[14].fields["Name"], "r14");
    assert_eq!(fx.state.log().len(), 2, "stops once max_records is reached");
    assert!(fx.state.log()[0].query.contains("maxRecords=15"));

    // Query encodings seen by the server.
    fx.state.clear_log();
    let mut q = ListQuery::new()
        .with_field("Name")
        .with_field("Due Date")
        .with_sort("Name", SortDirection::Desc)
        .with_view("Grid view");
    q.record_metadata.push("commentCount".into());
    q.time_zone = Some("Europe/Paris".into());
    q.user_locale = Some("en-gb".into());
    let page = c.list_records_page(&base(), "Tasks", &q).await.unwrap();
    assert_eq!(
        page.records[0].fields.keys().collect::<Vec<_>>(),
        vec!["Name"]
    );
    let seen = &fx.state.log()[0];
    let pairs = seen.query_pairs();
    for (k, v) in [
        ("fields[]", "Name"),
        ("fields[]", "Due Date"),
        ("sort[0][field]", "Name"),
        ("sort[0][direction]", "desc"),
        ("recordMetadata[]", "commentCount"),
        ("view", "Grid view"),
        ("timeZone", "Europe/Paris"),
    ] {
        assert!(
            pairs.contains(&(k.to_owned(), v.to_owned())),
            "{k}={v} in {}",
            seen.query
        );
    }
}

#[tokio::test]
async fn table_names_are_percent_encoded() {
    let fx = Fixture::start().await;
    let c = client(&fx);
    c.list_records_page(&base(), "Clients/Vendors & co", &ListQuery::new())
        .await
        .unwrap();
    assert_eq!(
        fx.state.log()[0].path,
        format!("/v0/{BASE}/Clients%2FVendors%20%26%20co")
    );
}

#[tokio::test]
async fn create_25_records_in_chunks_of_10_10_5() {
    let fx = Fixture::start().await;
    let c = client(&fx);
    let progress = Arc::new(Mutex::new(Vec::new()));
    let p2 = progress.clone();
    let opts = WriteOptions {
        typecast: true,
        on_progress: Some(Arc::new(move |done, total| {
            p2.lock().unwrap().push((done, total))
        })),
        ..Default::default()
    };
    let out = c.create_records(&base(), "Tasks", named(25), &opts).await;
    assert!(out.is_complete(), "{:?}", out.failure);
    assert_eq!(out.written.len(), 25);
    assert_eq!(
        out.written
            .iter()
            .map(|r| r.fields["Name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>(),
        (0..25).map(|i| format!("r{i}")).collect::<Vec<_>>(),
        "request order kept"
    );
    let sizes: Vec<usize> = fx.state.log().iter().map(|s| s.body_records()).collect();
    assert_eq!(sizes, vec![10, 10, 5]);
    assert_eq!(fx.state.log()[0].body.as_ref().unwrap()["typecast"], true);
    assert!(out.chunks.iter().all(|c| c.status == ChunkStatus::Written));
    assert_eq!(
        *progress.lock().unwrap(),
        vec![(10, 25), (20, 25), (25, 25)]
    );
    assert_eq!(fx.state.records("Tasks").len(), 25);
}

#[tokio::test]
async fn update_put_patch_and_delete_in_chunks() {
    let fx = Fixture::start().await;
    let ids = fx.state.seed(
        "Tasks",
        (0..12)
            .map(|i| fields(json!({"Name": format!("r{i}"), "Notes": "keep"})))
            .collect(),
    );
    let c = client(&fx);
    let ups: Vec<RecordUpdate> = ids
        .iter()
        .map(|id| RecordUpdate {
            id: id.parse().unwrap(),
            fields: fields(json!({"Name": "patched"})),
        })
        .collect();
    let out = c
        .update_records(
            &base(),
            "Tasks",
            ups,
            UpdateMode::Patch,
            &WriteOptions::default(),
        )
        .await;
    assert!(out.is_complete());
    assert_eq!(out.written.len(), 12);
    assert_eq!(out.written[0].fields["Notes"], "keep", "PATCH merges");

    let id: RecordId = ids[0].parse().unwrap();
    let rec = c
        .update_record(
            &base(),
            "Tasks",
            &id,
            fields(json!({"Name": "put"})),
            UpdateMode::Put,
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    assert!(rec.fields.get("Notes").is_none(), "PUT replaces");
    let log = fx.state.log();
    assert_eq!(
        log.iter()
            .filter(|s| s.method == "PATCH")
            .map(|s| s.body_records())
            .collect::<Vec<_>>(),
        vec![10, 2]
    );
    assert_eq!(log.last().unwrap().method, "PUT");

    let got = c
        .get_record(&base(), "Tasks", &id, &GetOptions::default())
        .await
        .unwrap();
    assert_eq!(got.fields["Name"], "put");

    fx.state.clear_log();
    let del: Vec<RecordId> = ids.iter().map(|i| i.parse().unwrap()).collect();
    let out = c
        .delete_records(&base(), "Tasks", del, &WriteOptions::default())
        .await;
    assert!(out.is_complete());
    assert_eq!(out.deleted.len(), 12);
    let counts: Vec<usize> = fx
        .state
        .log()
        .iter()
        .map(|s| {
            s.query_pairs()
                .iter()
                .filter(|(k, _)| k == "records[]")
                .count()
        })
        .collect();
    assert_eq!(counts, vec![10, 2]);
    assert!(fx.state.records("Tasks").is_empty());
}

#[tokio::test]
async fn upsert_collects_created_and_updated() {
    let fx = Fixture::start().await;
    let ids = fx
        .state
        .seed("Tasks", vec![fields(json!({"Name": "A", "N": 1}))]);
    let c = client(&fx);
    let recs = vec![
        UpsertRecord {
            id: None,
            fields: fields(json!({"Name": "A", "N": 2})),
        },
        UpsertRecord {
            id: None,
            fields: fields(json!({"Name": "B", "N": 3})),
        },
    ];
    let out = c
        .upsert_records(
            &base(),
            "Tasks",
            recs,
            vec!["Name".into()],
            UpdateMode::Patch,
            &WriteOptions::default(),
        )
        .await;
    assert!(out.is_complete(), "{:?}", out.failure);
    assert_eq!(
        out.updated_ids
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>(),
        vec![ids[0].clone()]
    );
    assert_eq!(out.created_ids.len(), 1);
    assert_eq!(out.written.len(), 2);
    let body = fx.state.log()[0].body.clone().unwrap();
    assert_eq!(body["performUpsert"]["fieldsToMergeOn"], json!(["Name"]));
    assert_eq!(fx.state.records("Tasks").len(), 2);

    // Rejected locally: a record without id that lacks a merge field; nothing sent.
    fx.state.clear_log();
    let out = c
        .upsert_records(
            &base(),
            "Tasks",
            vec![UpsertRecord {
                id: None,
                fields: fields(json!({"N": 1})),
            }],
            vec!["Name".into()],
            UpdateMode::Patch,
            &WriteOptions::default(),
        )
        .await;
    assert!(matches!(
        out.failure.as_ref().unwrap().error,
        Error::Config(_)
    ));
    assert!(fx.state.log().is_empty());
}

#[tokio::test]
async fn comments_round_trip() {
    let fx = Fixture::start().await;
    let ids = fx.state.seed("Tasks", vec![fields(json!({"Name": "A"}))]);
    let rec: RecordId = ids[0].parse().unwrap();
    let c = client(&fx);
    let com = c
        .create_comment(&base(), "Tasks", &rec, "hello")
        .await
        .unwrap();
    assert_eq!(com.text, "hello");
    let upd = c
        .update_comment(&base(), "Tasks", &rec, &com.id, "edited")
        .await
        .unwrap();
    assert_eq!(upd.text, "edited");
    let page = c
        .list_comments(&base(), "Tasks", &rec, Some(10), None)
        .await
        .unwrap();
    assert_eq!(page.comments.len(), 1);
    assert!(page.offset.is_none());
    c.delete_comment(&base(), "Tasks", &rec, &com.id)
        .await
        .unwrap();
    assert!(
        c.list_comments(&base(), "Tasks", &rec, None, None)
            .await
            .unwrap()
            .comments
            .is_empty()
    );
}

#[tokio::test]
async fn every_error_type_is_mapped_from_real_responses() {
    let fx = Fixture::start().await;
    let mut cfg = config(&fx.url);
    cfg.max_retries = 0;
    let c = Client::new(cfg).unwrap();
    let cases: Vec<(u16, String, ApiErrorKind)> = vec![
        (401, r#"{"error":{"type":"AUTHENTICATION_REQUIRED","message":"Authentication required"}}"#.into(), ApiErrorKind::AuthenticationRequired),
        (403, r#"{"error":{"type":"INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND","message":"Invalid permissions, or the requested model was not found."}}"#.into(), ApiErrorKind::InvalidPermissionsOrModelNotFound),
        (403, r#"{"error":{"type":"INVALID_PERMISSIONS","message":"You are not permitted to perform this operation"}}"#.into(), ApiErrorKind::InvalidPermissions),
        (404, r#"{"error":"NOT_FOUND"}"#.into(), ApiErrorKind::NotFound),
        (404, r#"{"error":{"type":"NOT_FOUND"}}"#.into(), ApiErrorKind::NotFound),
        (404, r#"{"error":{"type":"MODEL_ID_NOT_FOUND","message":"Table not found"}}"#.into(), ApiErrorKind::ModelIdNotFound),
        (422, r#"{"error":{"type":"INVALID_REQUEST_UNKNOWN","message":"Invalid request: parameter validation failed."}}"#.into(), ApiErrorKind::InvalidRequestUnknown),
        (422, r#"{"error":{"type":"INVALID_REQUEST_MISSING_FIELDS","message":"Could not find field \"fields\""}}"#.into(), ApiErrorKind::InvalidRequestMissingFields),
        (422, r#"{"error":{"type":"INVALID_RECORDS","message":"A maximum of 10 records"}}"#.into(), ApiErrorKind::InvalidRecords),
        (422, r#"{"error":{"type":"UNKNOWN_FIELD_NAME","message":"Unknown field name: \"Notes\""}}"#.into(), ApiErrorKind::UnknownFieldName),
        (422, r#"{"error":{"type":"INVALID_VALUE_FOR_COLUMN","message":"Field \"date\" cannot accept a value because the field is computed"}}"#.into(), ApiErrorKind::InvalidValueForColumn),
        (422, r#"{"error":{"type":"INVALID_MULTIPLE_CHOICE_OPTIONS","message":"Insufficient permissions to create new select option \"\"X\"\""}}"#.into(), ApiErrorKind::InvalidMultipleChoiceOptions),
        (422, r#"{"error":{"type":"ROW_DOES_NOT_EXIST","message":"Record ID rec2VdcJzQlsKFHtP does not exist in this table"}}"#.into(), ApiErrorKind::RowDoesNotExist),
        (422, r#"{"error":{"type":"INVALID_FILTER_BY_FORMULA","message":"The formula for filtering records is invalid: Invalid formula."}}"#.into(), ApiErrorKind::InvalidFilterByFormula),
        (422, r#"{"error":{"type":"VIEW_NAME_NOT_FOUND","message":"View not found"}}"#.into(), ApiErrorKind::ViewNameNotFound),
        (422, r#"{"error":{"type":"LIST_RECORDS_ITERATOR_NOT_AVAILABLE"}}"#.into(), ApiErrorKind::ListRecordsIteratorNotAvailable),
        (422, r#"{"error":{"type":"INVALID_OFFSET_VALUE","message":"The value of offset itrZ is invalid"}}"#.into(), ApiErrorKind::InvalidOffsetValue),
        (413, "request entity too large".into(), ApiErrorKind::RequestTooLarge),
        (500, "".into(), ApiErrorKind::ServerError),
        (502, "<html>Bad Gateway</html>".into(), ApiErrorKind::ServerError),
        (503, r#"{"error":{"type":"RETRIABLE_ERROR","message":"it is safe to retry the request"}}"#.into(), ApiErrorKind::RetriableError),
        (422, r#"{"error":{"type":"SOMETHING_NEW","message":"x"}}"#.into(), ApiErrorKind::Other("SOMETHING_NEW".into())),
    ];
    let rec: RecordId = "recFIXTURErec0001".parse().unwrap();
    for (status, body, kind) in cases {
        fx.state.push_script(Scripted::status(status, &body));
        let e = c
            .get_record(&base(), "Tasks", &rec, &GetOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), Some(&kind), "{status} {body}: {e}");
        assert_eq!(e.status(), Some(status));
        assert!(!e.hint().is_empty());
        assert!(e.to_string().contains(kind.as_str()), "{e}");
    }
    // 429 on every attempt -> RateLimited.
    fx.state.push_script(Scripted::error(
        429,
        "RATE_LIMIT_REACHED",
        "Rate limit exceeded. Please try again later",
    ));
    let e = c.whoami().await.unwrap_err();
    assert!(matches!(e, Error::RateLimited { attempts: 1 }), "{e:?}");
    assert!(e.is_retryable());
    assert!(e.hint().contains("5 requests per second"));

    // Hints that tell what to do.
    fx.state.push_script(Scripted::error(
        401,
        "AUTHENTICATION_REQUIRED",
        "Authentication required",
    ));
    let e = c.whoami().await.unwrap_err();
    assert!(e.hint().contains("airtable-mcp auth login") && e.hint().contains("AIRTABLE_API_KEY"));
    fx.state.push_script(Scripted::error(
        403,
        "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
        "x",
    ));
    let e = c.whoami().await.unwrap_err();
    assert!(e.hint().contains("scope"), "{}", e.hint());
    assert!(!e.is_retryable());

    // A 200 whose body is not what we expect: Decode with a snippet.
    fx.state
        .push_script(Scripted::status(200, "<html>captive portal</html>"));
    let e = c.whoami().await.unwrap_err();
    assert!(
        matches!(&e, Error::Decode { status: 200, snippet, .. } if snippet.contains("captive")),
        "{e:?}"
    );
    // A malformed ID from the server is a decode error, not a panic.
    fx.state
        .push_script(Scripted::status(200, r#"{"id":"usrBAD"}"#));
    let e = c.whoami().await.unwrap_err();
    assert!(e.to_string().contains("invalid user ID"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_429_waits_for_retry_after_at_the_server() {
    let fx = Fixture::start().await;
    let c = client(&fx);
    fx.state.push_script(Scripted::Respond {
        status: 429,
        body: r#"{"error":{"type":"RATE_LIMIT_REACHED","message":"Rate limit exceeded. Please try again later"}}"#.into(),
        retry_after: Some("1".into()),
    });
    let recs = c
        .create_records(&base(), "Tasks", named(3), &WriteOptions::default())
        .await;
    assert!(
        recs.is_complete(),
        "a 429 create is retried: {:?}",
        recs.failure
    );
    let log = fx.state.log();
    assert_eq!(
        log.iter().map(|s| s.status).collect::<Vec<_>>(),
        vec![429, 200]
    );
    let gap = log[1].at.duration_since(log[0].at);
    assert!(
        gap >= Duration::from_secs(1),
        "server saw the retry after {gap:?}"
    );
    assert_eq!(fx.state.records("Tasks").len(), 3, "no duplicate");
    let st = c.stats();
    assert_eq!((st.rate_limited, st.retries, st.requests), (1, 1, 2));
    assert_eq!(st.by_status, vec![(200, 1), (429, 1)]);
    assert_eq!(st.by_status_class[2], 1);

    // Without Retry-After: rate_limit_wait (300 ms in these tests; 30 s by default).
    fx.state.clear_log();
    fx.state.push_script(Scripted::error(
        429,
        "RATE_LIMIT_REACHED",
        "Rate limit exceeded.",
    ));
    c.whoami().await.unwrap();
    let log = fx.state.log();
    assert_eq!(log.len(), 2);
    assert!(log[1].at.duration_since(log[0].at) >= Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_for_reads_and_updates() {
    let fx = Fixture::start().await;
    let ids = fx.state.seed("Tasks", vec![fields(json!({"Name": "A"}))]);
    let c = client(&fx);
    fx.state
        .push_script(Scripted::error(503, "RETRIABLE_ERROR", "safe to retry"));
    fx.state
        .push_script(Scripted::error(503, "RETRIABLE_ERROR", "safe to retry"));
    let page = c
        .list_records_page(&base(), "Tasks", &ListQuery::new())
        .await
        .unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(
        fx.state.log().iter().map(|s| s.status).collect::<Vec<_>>(),
        vec![503, 503, 200]
    );

    // A 500 then 502 on a PATCH: retried (PATCH is idempotent).
    fx.state.clear_log();
    fx.state.push_script(Scripted::ApplyThenRespond {
        status: 500,
        body: String::new(),
    });
    fx.state.push_script(Scripted::status(502, "bad gateway"));
    let id: RecordId = ids[0].parse().unwrap();
    let r = c
        .update_record(
            &base(),
            "Tasks",
            &id,
            fields(json!({"Name": "B"})),
            UpdateMode::Patch,
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.fields["Name"], "B");
    assert_eq!(fx.state.log().len(), 3);

    // Bounded: max_retries = 3 -> 4 attempts, then the error.
    fx.state.clear_log();
    for _ in 0..10 {
        fx.state.push_script(Scripted::status(504, ""));
    }
    let e = c.whoami().await.unwrap_err();
    assert_eq!(e.status(), Some(504));
    assert_eq!(fx.state.log().len(), 4);
    fx.state.lock().script.clear();

    // A create hit by 503 RETRIABLE_ERROR (provably not applied) is retried, once written.
    fx.state.clear_log();
    fx.state
        .push_script(Scripted::error(503, "RETRIABLE_ERROR", "safe to retry"));
    let out = c
        .create_records(&base(), "Tasks", named(2), &WriteOptions::default())
        .await;
    assert!(out.is_complete());
    assert_eq!(
        fx.state.log().iter().map(|s| s.status).collect::<Vec<_>>(),
        vec![503, 200]
    );
    assert_eq!(fx.state.records("Tasks").len(), 3);
}

#[tokio::test(start_paused = true)]
async fn ambiguous_create_failures_are_reported_and_not_retried() {
    let fx = Fixture::start().await;
    let c = client(&fx);

    // The server applies the first chunk, then answers 500.
    fx.state.push_script(Scripted::ApplyThenRespond {
        status: 500,
        body: r#"{"error":{"type":"SERVER_ERROR"}}"#.into(),
    });
    let out = c
        .create_records(&base(), "Tasks", named(15), &WriteOptions::default())
        .await;
    let f = out.failure.as_ref().expect("failure");
    assert!(f.ambiguous);
    assert_eq!(f.chunk, 0);
    assert_eq!(f.input_indexes, (0..10).collect::<Vec<_>>());
    assert!(matches!(f.error, Error::Ambiguous { .. }));
    assert!(!f.error.is_retryable());
    assert_eq!(out.chunks[1].status, ChunkStatus::NotAttempted);
    assert_eq!(fx.state.log().len(), 1, "exactly one request: no retry");
    assert_eq!(
        fx.state.records("Tasks").len(),
        10,
        "applied once, not duplicated"
    );

    // The server applies, then breaks the connection mid-answer.
    fx.state.clear_log();
    fx.state.push_script(Scripted::ApplyThenBreak);
    let out = c
        .create_records(&base(), "Tasks", named(3), &WriteOptions::default())
        .await;
    assert!(out.failure.as_ref().unwrap().ambiguous, "{:?}", out.failure);
    assert_eq!(fx.state.log().len(), 1);
    assert_eq!(fx.state.records("Tasks").len(), 13);

    // The server applies, then answers too late (client timeout).
    let mut cfg = config(&fx.url);
    cfg.timeout = Duration::from_millis(300);
    let slow = Client::new(cfg).unwrap();
    fx.state.clear_log();
    fx.state
        .push_script(Scripted::ApplyThenDelay(Duration::from_secs(2)));
    let e = slow
        .create_record(
            &base(),
            "Tasks",
            fields(json!({"Name": "x"})),
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Ambiguous { source } if matches!(**source, Error::Timeout(_))),
        "{e:?}"
    );
    assert!(e.to_string().contains("may or may not have been applied"));
    assert_eq!(fx.state.log().len(), 1);

    // The same failure on an update IS retried (idempotent).
    fx.state.clear_log();
    let id: RecordId = fx.state.records("Tasks")[0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    fx.state.push_script(Scripted::ApplyThenBreak);
    c.update_record(
        &base(),
        "Tasks",
        &id,
        fields(json!({"Name": "y"})),
        UpdateMode::Patch,
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(fx.state.log().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_connection_after_a_create_is_ambiguous() {
    let hole = BlackHole::start().await;
    let c = Client::new(config(&hole.url)).unwrap();
    let out = c
        .create_records(&base(), "Tasks", named(12), &WriteOptions::default())
        .await;
    let f = out.failure.as_ref().unwrap();
    assert!(f.ambiguous, "{:?}", f.error);
    assert_eq!(f.input_indexes.len(), 10);
    assert!(
        matches!(&f.error, Error::Ambiguous { source } if matches!(**source, Error::Transport { connect: false, .. })),
        "{:?}",
        f.error
    );
    assert_eq!(
        hole.received.lock().unwrap().len(),
        1,
        "sent once, never repeated"
    );
    assert_eq!(
        hole.received.lock().unwrap()[0]["records"]
            .as_array()
            .unwrap()
            .len(),
        10
    );

    // The same drop on a read is retried up to the bound.
    hole.received.lock().unwrap().clear();
    let e = c.whoami().await.unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert_eq!(hole.received.lock().unwrap().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_is_retried_even_for_creates() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = url::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let c = Client::new(config(&url)).unwrap();
    let out = c
        .create_records(&base(), "Tasks", named(2), &WriteOptions::default())
        .await;
    let f = out.failure.unwrap();
    assert!(!f.ambiguous, "never sent: {:?}", f.error);
    assert!(
        matches!(f.error, Error::Transport { connect: true, .. }),
        "{:?}",
        f.error
    );
    assert_eq!(c.stats().retries, 3);
    assert_eq!(c.stats().transport_errors, 4);
}

#[tokio::test]
async fn long_queries_switch_to_post_list_records() {
    let fx = Fixture::start().await;
    fx.state.seed("Tasks", named(3));
    let c = client(&fx);
    // Just under the limit: GET.
    let url_base = format!("{}v0/{BASE}/Tasks?filterByFormula=", fx.url);
    let short = "x".repeat(16_000 - 1 - url_base.len());
    let q = ListQuery::new().with_filter(short);
    c.list_records_page(&base(), "Tasks", &q).await.unwrap();
    let seen = fx.state.log()[0].clone();
    assert_eq!(seen.method, "GET");
    assert_eq!(
        format!(
            "{}{}?{}",
            fx.url.as_str().trim_end_matches('/'),
            seen.path,
            seen.query
        )
        .len(),
        15_999
    );

    // At the limit: POST listRecords with the options in the body, timeZone/userLocale in the query.
    fx.state.clear_log();
    let mut q = ListQuery::new()
        .with_filter("x".repeat(16_000))
        .with_field("Name")
        .with_page_size(2);
    q.time_zone = Some("Europe/Paris".into());
    q.user_locale = Some("fr".into());
    let pages: Vec<_> = c
        .list_records(&base(), "Tasks", q)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        pages.iter().map(|p| p.records.len()).collect::<Vec<_>>(),
        vec![2, 1]
    );
    let log = fx.state.log();
    assert_eq!(log.len(), 2);
    for s in &log {
        assert_eq!(s.method, "POST");
        assert_eq!(s.path, format!("/v0/{BASE}/Tasks/listRecords"));
        assert_eq!(s.query, "timeZone=Europe%2FParis&userLocale=fr");
        let b = s.body.as_ref().unwrap();
        assert_eq!(b["filterByFormula"].as_str().unwrap().len(), 16_000);
        assert_eq!(b["fields"], json!(["Name"]));
    }
    assert_eq!(log[1].body.as_ref().unwrap()["offset"], "itrFIXTURE/2");
}

#[tokio::test]
async fn malformed_ids_are_rejected() {
    for bad in ["app123", "tblAAAAAAAAAAAAAA", "appAAAAAAAAAAAAA!", ""] {
        let e = bad.parse::<BaseId>().unwrap_err();
        assert!(e.to_string().contains("invalid base ID"), "{e}");
    }
    let e = Error::from("rec1".parse::<RecordId>().unwrap_err());
    assert!(e.hint().contains("14 letters or digits"));
}

#[tokio::test(start_paused = true)]
async fn the_limiter_keeps_a_strict_server_happy() {
    // 5 requests per second per base, enforced with a strict sliding window and a penalty.
    let fx = Fixture::start_with(Some(RateLimit {
        per_second: 5,
        penalty: Duration::from_secs(30),
    }))
    .await;
    let mut cfg = config(&fx.url);
    cfg.per_base_rps = 5;
    cfg.per_token_rps = 50;
    let c = Client::new(cfg).unwrap();
    // Two tasks on the same base at once, 4 requests each.
    let (bid, opts) = (base(), WriteOptions::default());
    let (a, b) = tokio::join!(
        c.create_records(&bid, "Tasks", named(40), &opts),
        c.list_all_records(
            &bid,
            "Tasks",
            ListQuery::new().with_page_size(1).with_max_records(4)
        ),
    );
    assert!(a.is_complete(), "{:?}", a.failure);
    b.unwrap();
    assert_eq!(fx.state.lock().rate_limited, 0, "no 429 at the server");
    assert_eq!(c.stats().rate_limited, 0);
    assert!(c.stats().limiter_wait > Duration::ZERO);
    // 8 requests: the first 5 at once, the next 3 one window (1.03 s) later.
    let log = fx.state.log();
    assert_eq!(log.len(), 8);
    let t0 = log[0].at;
    let late = log
        .iter()
        .filter(|s| s.at.duration_since(t0) >= Duration::from_millis(1030))
        .count();
    assert_eq!(
        late,
        3,
        "{:?}",
        log.iter().map(|s| s.at - t0).collect::<Vec<_>>()
    );
}

#[tokio::test(start_paused = true)]
async fn five_parallel_reads_after_a_pause_leave_at_once() {
    let fx = Fixture::start_with(Some(RateLimit {
        per_second: 5,
        penalty: Duration::from_secs(30),
    }))
    .await;
    fx.state.seed("Tasks", vec![fields(json!({"Name": "A"}))]);
    let mut cfg = config(&fx.url);
    cfg.per_base_rps = 5;
    cfg.per_token_rps = 50;
    let c = Client::new(cfg).unwrap();
    let bid = base();
    // A first call, then a quiet moment longer than the window (an agent reading the answer).
    c.list_records_page(&bid, "Tasks", &ListQuery::new())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    fx.state.clear_log();
    let t0 = tokio::time::Instant::now();
    let q = ListQuery::new();
    let reads =
        futures::future::join_all((0..5).map(|_| c.list_records_page(&bid, "Tasks", &q))).await;
    assert!(reads.iter().all(Result::is_ok));
    // No request waited on the limiter: the paused clock did not move.
    assert_eq!(tokio::time::Instant::now(), t0);
    assert_eq!(fx.state.log().len(), 5);
    assert_eq!(fx.state.lock().rate_limited, 0);
    // The 5 reads above left at t0, so a 6th leaves one window (1.03 s) later.
    c.list_records_page(&bid, "Tasks", &q).await.unwrap();
    assert_eq!(
        tokio::time::Instant::now() - t0,
        Duration::from_millis(1030)
    );
    assert_eq!(fx.state.lock().rate_limited, 0);
}

#[tokio::test(start_paused = true)]
async fn a_429_holds_the_whole_base_back() {
    let fx = Fixture::start().await;
    fx.state.seed("Tasks", vec![fields(json!({"Name": "A"}))]);
    let c = client(&fx);
    fx.state.push_script(Scripted::Respond {
        status: 429,
        body: r#"{"error":{"type":"RATE_LIMIT_REACHED","message":"Rate limit exceeded."}}"#.into(),
        retry_after: Some("30".into()),
    });
    let bid = base();
    let q = ListQuery::new();
    let first = c.list_records_page(&bid, "Tasks", &q);
    // A second read on the same base, started while the first waits out its 429.
    let second = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        c.list_records_page(&bid, "Tasks", &q).await
    };
    let (a, b) = tokio::join!(first, second);
    a.unwrap();
    b.unwrap();
    let log = fx.state.log();
    assert_eq!(
        log.iter().map(|s| s.status).collect::<Vec<_>>(),
        vec![429, 200, 200]
    );
    let t0 = log[0].at;
    for s in &log[1..] {
        assert!(s.at - t0 >= Duration::from_secs(30), "{:?}", s.at - t0);
    }
}
