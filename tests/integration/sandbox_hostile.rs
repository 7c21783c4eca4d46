//! The sandbox under hostile formulas: per-request evaluation budgets, no lock held while
//! evaluating, evaluation cancelled when the request is dropped, formula length cap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::sandbox_support;

use std::time::Duration;

use airtable_mcp::formula::{Budget, MAX_FORMULA_LEN};
use airtable_mcp::sandbox::{self, SandboxConfig, SandboxState};
use reqwest::StatusCode;
use sandbox_support::{DEMO, Sb, err_type};
use serde_json::json;
use tower::ServiceExt;

/// The issue's formula: 2.8 s over 168 records in a release build, unbounded before.
const HOSTILE: &str = r#"LEN(REGEX_REPLACE(REPT("a",500000),"a","b"))<0"#;

fn list_path(formula: &str) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("filterByFormula", formula)
        .finish();
    format!("/v0/{DEMO}/People?{q}")
}

#[tokio::test]
async fn a_hostile_formula_gets_a_422_when_it_spends_its_budget() {
    let sb = Sb::start(SandboxConfig {
        eval_budget: Budget {
            max_steps: 5_000_000,
            max_time: None,
            cancel: None,
        },
        ..SandboxConfig::demo()
    })
    .await;
    let (s, v) = sb.get(&list_path(HOSTILE)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(err_type(&v), "FORMULA_EVALUATION_BUDGET_EXCEEDED");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("5000000 evaluation steps"),
        "{v}"
    );
    assert_eq!(sb.handle.stats().over_budget, 1);
    // An ordinary filter under the same budget is fine, and so is the next request.
    let (s, v) = sb.get(&list_path("LEN({Name}) > 0")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!v["records"].as_array().unwrap().is_empty());
    assert_eq!(sb.handle.stats().over_budget, 1);
}

#[tokio::test]
async fn other_requests_are_served_while_a_hostile_formula_runs() {
    // Only the time budget (generous) stops the hostile request: it runs for a while.
    let sb = Sb::start(SandboxConfig {
        eval_budget: Budget {
            max_steps: u64::MAX,
            max_time: Some(Duration::from_secs(3)),
            cancel: None,
        },
        ..SandboxConfig::demo()
    })
    .await;
    let (order_tx, mut order_rx) = tokio::sync::mpsc::unbounded_channel::<&str>();
    let hostile = {
        let http = sb.http.clone();
        let url = sb.url(&list_path(HOSTILE));
        let token = sb.handle.token().to_owned();
        let order = order_tx.clone();
        tokio::spawn(async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            let status = r.status();
            let v: serde_json::Value = r.json().await.unwrap();
            order.send("hostile").unwrap();
            (status, v)
        })
    };
    // Let the hostile request reach its evaluation (it has been counted at the gate).
    for _ in 0..200 {
        if sb.handle.stats().requests >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for path in [
        format!("/v0/{DEMO}/People?maxRecords=3"),
        list_path("{Name} != ''"),
    ] {
        let (s, v) = sb.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    order_tx.send("ordinary").unwrap();
    let (status, v) = hostile.await.unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(err_type(&v), "FORMULA_EVALUATION_BUDGET_EXCEEDED");
    assert_eq!(order_rx.recv().await, Some("ordinary"));
    assert_eq!(order_rx.recv().await, Some("hostile"));
    assert_eq!(sb.handle.stats().over_budget, 1);
}

#[tokio::test]
async fn dropping_the_request_cancels_the_evaluation() {
    let state = tokio::task::spawn_blocking(|| {
        SandboxState::new(SandboxConfig {
            eval_budget: Budget {
                max_steps: u64::MAX,
                max_time: None,
                cancel: None,
            },
            ..SandboxConfig::demo()
        })
    })
    .await
    .unwrap()
    .unwrap();
    let app = sandbox::router(state.clone());
    let req = axum::http::Request::get(list_path(HOSTILE))
        .header("authorization", format!("Bearer {}", state.token()))
        .body(axum::body::Body::empty())
        .unwrap();
    // The client gives up: the response future is dropped while the evaluation runs.
    let gave_up = tokio::time::timeout(Duration::from_millis(100), app.oneshot(req)).await;
    assert!(gave_up.is_err(), "the hostile request finished unbounded");
    let mut cancelled = false;
    for _ in 0..600 {
        if state.stats().cancelled == 1 {
            cancelled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        cancelled,
        "the evaluation went on after the request was dropped"
    );
    assert_eq!(state.stats().over_budget, 0);
}

#[tokio::test]
async fn a_formula_over_the_length_cap_is_refused() {
    let sb = Sb::demo().await;
    // Just over the cap, and every byte a parse error if it were parsed.
    let long = ")".repeat(MAX_FORMULA_LEN + 1);
    let (s, v) = sb
        .post(
            &format!("/v0/{DEMO}/People/listRecords"),
            json!({"filterByFormula": long}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(err_type(&v), "INVALID_FILTER_BY_FORMULA");
    // At the cap, a real formula still works.
    let pad = " ".repeat(MAX_FORMULA_LEN - 20);
    let (s, v) = sb
        .post(
            &format!("/v0/{DEMO}/People/listRecords"),
            json!({"filterByFormula": format!("{pad}{{Name}} != ''")}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn a_client_that_hangs_up_cancels_its_evaluation() {
    let sb = Sb::start(SandboxConfig {
        eval_budget: Budget {
            max_steps: u64::MAX,
            max_time: None,
            cancel: None,
        },
        ..SandboxConfig::demo()
    })
    .await;
    // The client gives up (its timeout closes the connection) while the formula runs.
    let gave_up = sb
        .http
        .get(sb.url(&list_path(HOSTILE)))
        .bearer_auth(sb.handle.token())
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(gave_up.is_err(), "the hostile request finished unbounded");
    let mut cancelled = false;
    for _ in 0..600 {
        if sb.handle.stats().cancelled == 1 {
            cancelled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cancelled, "the evaluation went on after the client left");
    // And the sandbox serves the next request.
    let (s, v) = sb.get(&list_path("{Name} != ''")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
