//! The sandbox's rate limit with its penalty, fault injection, and persistence across restarts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::sandbox_support;

use std::time::Duration;

use airtable_mcp::sandbox::{self, Faults, SandboxConfig, Seed};
use reqwest::StatusCode;
use sandbox_support::{DEMO, Sb, err_type, loopback};
use serde_json::json;

#[tokio::test]
async fn rate_limit_locks_the_base_for_the_penalty() {
    let sb = Sb::start(SandboxConfig {
        rate_limit: 5,
        penalty: Duration::from_millis(3000),
        ..SandboxConfig::demo()
    })
    .await;
    let path = format!("/v0/{DEMO}/People?maxRecords=1");
    for i in 0..5 {
        let (s, v) = sb.get(&path).await;
        assert_eq!(s, StatusCode::OK, "request {i}: {v}");
    }
    let resp = sb
        .http
        .get(sb.url(&path))
        .bearer_auth(sb.handle.token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry, 3, "the remaining penalty, in whole seconds");
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        v,
        json!({"error": {"type": "RATE_LIMIT_REACHED", "message": "Rate limit exceeded. Please try again later"}})
    );

    // Still locked a little later, even though the sliding second has passed.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, _) = sb.get(&path).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // Other bases and base-less routes are not limited.
    let (s, _) = sb.get("/v0/meta/whoami").await;
    assert_eq!(s, StatusCode::OK);
    // After the penalty the base answers again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (s, _) = sb.get(&path).await;
    assert_eq!(s, StatusCode::OK);
    let st = sb.handle.stats();
    assert_eq!(st.rate_limited, 2);
    assert_eq!(st.requests, 9);
    assert_eq!(st.by_method["GET"], 9);
}

#[tokio::test]
async fn paced_requests_are_never_limited() {
    let sb = Sb::start(SandboxConfig {
        rate_limit: 5,
        ..SandboxConfig::demo()
    })
    .await;
    for _ in 0..8 {
        let (s, _) = sb.get(&format!("/v0/{DEMO}/People?maxRecords=1")).await;
        assert_eq!(s, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(220)).await;
    }
    assert_eq!(sb.handle.stats().rate_limited, 0);
}

#[tokio::test]
async fn injected_503s_are_not_applied() {
    let sb = Sb::start(SandboxConfig {
        faults: Faults {
            fail_rate: 1.0,
            ..Faults::default()
        },
        ..SandboxConfig::demo()
    })
    .await;
    let (s, v) = sb
        .post(
            &format!("/v0/{DEMO}/People"),
            json!({"fields": {"Name": "X"}}),
        )
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(err_type(&v), "RETRIABLE_ERROR");
    assert_eq!(sb.handle.stats().injected_failures, 1);
}

async fn people_count(sb: &Sb) -> usize {
    sb.all(DEMO, "People", "").await.len()
}

#[tokio::test]
async fn dropped_connections_before_and_after_the_write() {
    for (before, after, applied) in [(1.0, 0.0, false), (0.0, 1.0, true)] {
        let sb = Sb::start(SandboxConfig {
            faults: Faults {
                drop_before_rate: before,
                drop_after_rate: after,
                ..Faults::default()
            },
            ..SandboxConfig::demo()
        })
        .await;
        let n0 = people_count(&sb).await;
        let err = sb
            .http
            .post(sb.url(&format!("/v0/{DEMO}/People")))
            .bearer_auth(sb.handle.token())
            .json(&json!({"fields": {"Name": "Dropped"}}))
            .send()
            .await
            .expect_err("the connection is closed without an answer");
        assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
        let n1 = people_count(&sb).await;
        assert_eq!(
            n1,
            n0 + usize::from(applied),
            "before={before} after={after}"
        );
        assert_eq!(sb.handle.stats().dropped, 1);
    }
}

#[tokio::test]
async fn latency_is_added() {
    const LATENCY: Duration = Duration::from_millis(250);
    let sb = Sb::start(SandboxConfig {
        faults: Faults {
            latency: LATENCY,
            ..Faults::default()
        },
        ..SandboxConfig::demo()
    })
    .await;
    // A lower bound only (never an upper wall-clock bound): every request takes at least the
    // injected latency, and still succeeds through it. Without the fault the same request takes
    // a few milliseconds, so a sandbox that ignored --latency-ms fails here.
    for path in ["/v0/meta/whoami", "/v0/meta/bases"] {
        let started = std::time::Instant::now();
        let (s, v) = sb.get(path).await;
        let took = started.elapsed();
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        assert!(
            took >= LATENCY,
            "{path} answered in {took:?}, before {LATENCY:?}"
        );
    }
}

#[tokio::test]
async fn data_survive_a_restart_with_a_db_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sandbox.sqlite");
    let cfg = SandboxConfig {
        db: Some(db.clone()),
        seed: Seed::Demo,
        rate_limit: 0,
        ..SandboxConfig::default()
    };
    let sb = Sb::start(cfg.clone()).await;
    let (s, v) = sb
        .post(
            &format!("/v0/{DEMO}/People"),
            json!({"fields": {"Name": "Persistent Pat", "Role": "QA"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let (s, c) = sb
        .post(
            &format!("/v0/{DEMO}/People/{id}/comments"),
            json!({"text": "remember me"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let (_, schema_before) = sb.get(&format!("/v0/meta/bases/{DEMO}/tables")).await;
    sb.handle.shutdown().await;

    // Restart on the same file: the seed is not applied twice, the new record is there.
    let h = sandbox::spawn(cfg, loopback()).await.unwrap();
    let sb2 = Sb {
        base: h.addr(),
        handle: h,
        http: reqwest::Client::new(),
    };
    assert_eq!(people_count(&sb2).await, 21);
    let (s, v) = sb2.get(&format!("/v0/{DEMO}/People/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["fields"]["Name"], "Persistent Pat");
    let (_, schema_after) = sb2.get(&format!("/v0/meta/bases/{DEMO}/tables")).await;
    assert_eq!(schema_before, schema_after);
    let (_, cs) = sb2.get(&format!("/v0/{DEMO}/People/{id}/comments")).await;
    assert_eq!(cs["comments"][0]["text"], "remember me");
}

#[tokio::test]
async fn a_seed_file_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.json");
    std::fs::write(
        &path,
        json!({"bases": [{"id": "appSeedFile000001", "name": "From file", "tables": [
            {"name": "Authors", "fields": [{"name": "Name", "type": "singleLineText"}],
             "records": [{"fields": {"Name": "Le Guin"}}]},
            {"name": "Books", "fields": [
                {"name": "Title", "type": "singleLineText"},
                {"name": "Author", "type": "multipleRecordLinks", "options": {"linkedTableId": "Authors"}},
                {"name": "Genre", "type": "singleSelect", "options": {"choices": [{"name": "SF"}]}}],
             "records": [{"fields": {"Title": "The Dispossessed", "Author": ["Le Guin"], "Genre": "SF"}}]}
        ]}]})
        .to_string(),
    )
    .unwrap();
    let sb = Sb::start(SandboxConfig {
        seed: Seed::File(path),
        rate_limit: 0,
        ..SandboxConfig::default()
    })
    .await;
    let books = sb.all("appSeedFile000001", "Books", "").await;
    assert_eq!(books[0]["fields"]["Title"], "The Dispossessed");
    let authors = sb.all("appSeedFile000001", "Authors", "").await;
    assert_eq!(books[0]["fields"]["Author"][0], authors[0]["id"]);
    assert_eq!(
        authors[0]["fields"]["Books"][0], books[0]["id"],
        "inverse link"
    );

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"bases\": 3}").unwrap();
    let err = sandbox::spawn(
        SandboxConfig {
            seed: Seed::File(bad),
            ..SandboxConfig::default()
        },
        loopback(),
    )
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("bases"), "{err}");
}
