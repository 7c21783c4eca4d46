//! Session expiry and caps over real HTTP (the echo server through `server::http::start`):
//! an idle Streamable HTTP session is closed after --session-idle-timeout, a new session is
//! refused over --max-sessions-per-token (429) and --max-sessions (503) with a JSON-RPC error
//! body, and /metrics counts them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

async fn open(c: &reqwest::Client, base: &str, bearer: &str) -> reqwest::Response {
    c.post(format!("{base}/mcp"))
        .bearer_auth(bearer)
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "sessions-test", "version": "0"}}}),
        )
        .send()
        .await
        .unwrap()
}

async fn metric(c: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = c
        .get(format!("{base}/metrics"))
        .bearer_auth(TOKEN_A)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
}

#[tokio::test]
async fn idle_sessions_expire_and_caps_refuse_new_ones() {
    let mut opts = options();
    opts.session_idle_timeout = Duration::from_secs(2);
    opts.max_sessions_per_token = 2;
    opts.max_sessions = 3;
    let (server, shutdown) = start_echo(opts).await;
    let base = base_url(server.local_addr());
    let c = reqwest::Client::new();

    for _ in 0..2 {
        let r = open(&c, &base, TOKEN_A).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers().contains_key("mcp-session-id"));
    }
    // Over the per-token cap: 429 with a JSON-RPC error.
    let r = open(&c, &base, TOKEN_A).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], Value::Null);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-sessions-per-token"),
        "{body}"
    );
    // Another token may open one more (3 in total), then the total cap answers 503.
    assert_eq!(open(&c, &base, TOKEN_B).await.status(), 200);
    let r = open(&c, &base, TOKEN_B).await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-sessions"),
        "{body}"
    );
    assert_eq!(
        metric(
            &c,
            &base,
            r#"airtable_mcp_sessions_refused_total{reason="per_token"}"#
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(
            &c,
            &base,
            r#"airtable_mcp_sessions_refused_total{reason="total"}"#
        )
        .await,
        1.0
    );
    // Idle for longer than the timeout: every session is closed and counted as expired.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let expired = metric(
            &c,
            &base,
            r#"airtable_mcp_sessions_expired_total{transport="streamable"}"#,
        )
        .await;
        if expired >= 3.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "idle sessions were not closed ({expired} expired)"
        );
    }
    assert_eq!(
        metric(
            &c,
            &base,
            r#"airtable_mcp_active_sessions{transport="streamable"}"#
        )
        .await,
        0.0
    );
    // Room again.
    assert_eq!(open(&c, &base, TOKEN_A).await.status(), 200);
    shutdown.cancel();
    server.wait().await.unwrap();
}
