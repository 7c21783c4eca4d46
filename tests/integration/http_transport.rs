//! The HTTP transport against a small test handler: auth, DNS-rebinding checks, CORS,
//! limits, the legacy SSE adapter, metrics, shutdown, and the official Python SDK.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::num::NonZeroU32;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

const ACCEPT_BOTH: &str = "application/json, text/event-stream";

fn initialize_body() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw-test", "version": "0"}
        }
    })
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

#[tokio::test]
async fn every_mcp_endpoint_requires_a_valid_bearer_token() {
    let (server, shutdown) = start_echo(options()).await;
    let base = base_url(server.local_addr());
    let c = client();
    let requests = [
        c.post(format!("{base}/mcp"))
            .header("accept", ACCEPT_BOTH)
            .json(&initialize_body()),
        c.get(format!("{base}/sse")),
        c.post(format!("{base}/messages?sessionId=x"))
            .json(&initialize_body()),
        c.get(format!("{base}/metrics")),
    ];
    for req in requests {
        let none = req.try_clone().unwrap().send().await.unwrap();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            none.headers()["www-authenticate"],
            r#"Bearer realm="airtable-mcp""#
        );
        let wrong = req
            .try_clone()
            .unwrap()
            .bearer_auth("test-bearer-token-cccccccc")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let challenge = wrong.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with(r#"Bearer realm="airtable-mcp""#));
        assert!(challenge.contains("invalid_token"));
        // A prefix of a valid token is still wrong.
        let prefix = req
            .try_clone()
            .unwrap()
            .bearer_auth(&TOKEN_A[..TOKEN_A.len() - 1])
            .send()
            .await
            .unwrap();
        assert_eq!(prefix.status(), StatusCode::UNAUTHORIZED);
    }
    // Both configured tokens work.
    for token in [TOKEN_A, TOKEN_B] {
        let ok = c
            .post(format!("{base}/mcp"))
            .header("accept", ACCEPT_BOTH)
            .bearer_auth(token)
            .json(&initialize_body())
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        assert!(ok.headers().contains_key("mcp-session-id"));
    }
    // Health stays public.
    let h = c.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(h.status(), StatusCode::OK);
    assert_eq!(h.text().await.unwrap(), "ok");
    shutdown.cancel();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn no_auth_on_loopback_lets_requests_through() {
    let mut opts = options();
    opts.auth = None;
    let (server, shutdown) = start_echo(opts).await;
    let base = base_url(server.local_addr());
    let res = client()
        .post(format!("{base}/mcp"))
        .header("accept", ACCEPT_BOTH)
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    shutdown.cancel();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn foreign_host_and_origin_get_403() {
    let (server, shutdown) = start_echo(options()).await;
    let base = base_url(server.local_addr());
    let c = client();
    for path in ["/mcp", "/sse"] {
        let evil_host = c
            .request(
                if path == "/mcp" {
                    reqwest::Method::POST
                } else {
                    reqwest::Method::GET
                },
                format!("{base}{path}"),
            )
            .header("host", "evil.example.com")
            .header("accept", ACCEPT_BOTH)
            .bearer_auth(TOKEN_A)
            .json(&initialize_body())
            .send()
            .await
            .unwrap();
        assert_eq!(evil_host.status(), StatusCode::FORBIDDEN, "{path} host");
        let evil_origin = c
            .post(format!("{base}/mcp"))
            .header("origin", "https://evil.example.com")
            .header("accept", ACCEPT_BOTH)
            .bearer_auth(TOKEN_A)
            .json(&initialize_body())
            .send()
            .await
            .unwrap();
        assert_eq!(evil_origin.status(), StatusCode::FORBIDDEN, "{path} origin");
    }
    let evil_messages = c
        .post(format!("{base}/messages?sessionId=x"))
        .header("origin", "http://attacker.test")
        .bearer_auth(TOKEN_A)
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(evil_messages.status(), StatusCode::FORBIDDEN);
    // A loopback page is fine.
    let local = c
        .post(format!("{base}/mcp"))
        .header("origin", "http://localhost:5173")
        .header("accept", ACCEPT_BOTH)
        .bearer_auth(TOKEN_A)
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(local.status(), StatusCode::OK);
    assert_eq!(
        local.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    shutdown.cancel();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn cors_preflight_and_security_headers() {
    let (server, shutdown) = start_echo(options()).await;
    let base = base_url(server.local_addr());
    let c = client();
    let pre = c
        .request(reqwest::Method::OPTIONS, format!("{base}/mcp"))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, mcp-session-id, x-airtable-token",
        )
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success(), "{}", pre.status());
    assert_eq!(
        pre.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let allowed = pre.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "content-type",
        "mcp-session-id",
        "mcp-protocol-version",
        "mcp-method",
        "last-event-id",
        "x-airtable-token",
    ] {
        assert!(allowed.contains(h), "{h} not allowed: {allowed}");
    }
    let foreign = c
        .request(reqwest::Method::OPTIONS, format!("{base}/mcp"))
        .header("origin", "https://evil.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        !foreign
            .headers()
            .contains_key("access-control-allow-origin")
    );

    let res = c
        .post(format!("{base}/mcp"))
        .header("origin", "http://localhost:3000")
        .header("accept", ACCEPT_BOTH)
        .bearer_auth(TOKEN_A)
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    let h = res.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h.contains_key("cache-control"));
    let exposed = h["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("mcp-session-id"), "{exposed}");
    let health = c.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.headers()["cache-control"], "no-store");
    shutdown.cancel();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let mut opts = options();
    opts.body_limit = 64 * 1024;
    let (server, shutdown) = start_echo(opts).await;
    let base = base_url(server.local_addr());
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x".repeat(100 * 1024)}});
    for path in ["/mcp", "/messages?sessionId=abc"] {
        let res = client()
            .post(format!("{base}{path}"))
            .header("accept", ACCEPT_BOTH)
            .bearer_auth(TOKEN_A)
            .json(&big)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
    shutdown.cancel();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn clients_over_their_rate_get_429_with_retry_after() {
    let mut opts = options();
    opts.client_rate = NonZeroU32::new(1); // 1/s, burst 2
    let (server, shutdown) = start_echo(opts).await;
    let base = base_url(server.local_addr());
    let c = client();
    let mut limited = None;
    for _ in 0..10 {
        let res = c
            .post(format!("{base}/messages?sessionId=none"))
            .bearer_auth(TOKEN_A)
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(res);
            break;
        }
    }
    let res = limited.expect("10 quick requests at 1/s were never limited");
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    // The other token is another client with its own budget.
    let other = c
        .post(format!("{base}/messages"))
        .bearer_auth(TOKEN_B)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::BAD_REQUEST);
    // The public /readyz is limited too (per peer address); /healthz is not.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let r = c.get(format!("{base}/readyz")).send().await.unwrap();
        statuses.push(r.status());
        let h = c.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(h.status(), StatusCode::OK);
    }
    assert_eq!(statuses[0], StatusCode::OK);
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    shutdown.cancel();
    server.wait().await.unwrap();
}

/// Read SSE events (`event`, `data`) from a streaming response.
struct SseReader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

impl SseReader {
    fn new(res: reqwest::Response) -> Self {
        Self {
            stream: res.bytes_stream().boxed(),
            buf: String::new(),
        }
    }

    async fn next_event(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..end + 2).collect();
                let mut event = "message".to_owned();
                let mut data = Vec::new();
                for line in raw.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.trim_start().to_owned());
                    }
                }
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                return Some((event, data.join("\n")));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.stream.next())
                .await
                .ok()??
                .ok()?;
            self.buf
                .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        }
    }
}

#[tokio::test]
async fn legacy_sse_session_lifecycle_and_errors() {
    let (server, shutdown) = start_echo(options()).await;
    let base = base_url(server.local_addr());
    let c = client();

    let missing = c
        .post(format!("{base}/messages"))
        .bearer_auth(TOKEN_A)
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    let unknown = c
        .post(format!("{base}/messages?sessionId=nope"))
        .bearer_auth(TOKEN_A)
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let sse = c
        .get(format!("{base}/sse"))
        .bearer_auth(TOKEN_A)
        .header("x-airtable-token", "patLegacyUser")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), StatusCode::OK);
    assert!(
        sse.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut events = SseReader::new(sse);
    let (kind, endpoint) = events.next_event().await.unwrap();
    assert_eq!(kind, "endpoint");
    assert!(endpoint.starts_with("/messages?sessionId="), "{endpoint}");
    let url = format!("{base}{endpoint}");

    let bad = c
        .post(&url)
        .bearer_auth(TOKEN_A)
        .header("x-airtable-token", "patLegacyUser")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let not_rpc = c
        .post(&url)
        .bearer_auth(TOKEN_A)
        .header("x-airtable-token", "patLegacyUser")
        .json(&json!({"hello": "world"}))
        .send()
        .await
        .unwrap();
    assert_eq!(not_rpc.status(), StatusCode::BAD_REQUEST);
    // Another client cannot post into this session: not with another bearer token, and not
    // with the same bearer token but another (or no) Airtable token, which would otherwise
    // run its calls with the opener's Airtable token.
    for (bearer, airtable) in [
        (TOKEN_B, Some("patLegacyUser")),
        (TOKEN_A, Some("patOtherUser")),
        (TOKEN_A, None),
    ] {
        let mut req = c.post(&url).bearer_auth(bearer).json(&initialize_body());
        if let Some(t) = airtable {
            req = req.header("x-airtable-token", t);
        }
        let hijack = req.send().await.unwrap();
        assert_eq!(
            hijack.status(),
            StatusCode::FORBIDDEN,
            "{bearer} {airtable:?}"
        );
        let text = hijack.text().await.unwrap();
        assert!(text.contains("other credentials"), "{text}");
        assert!(!text.contains("patLegacyUser"), "{text}");
    }

    let init = c
        .post(&url)
        .bearer_auth(TOKEN_A)
        .header("x-airtable-token", "patLegacyUser")
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), StatusCode::ACCEPTED);
    let (kind, data) = events.next_event().await.unwrap();
    assert_eq!(kind, "message");
    let msg: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(msg["id"], 1);
    assert_eq!(msg["result"]["serverInfo"]["name"], "echo-test");

    for body in [
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "whoami", "arguments": {}}}),
    ] {
        let r = c
            .post(&url)
            .bearer_auth(TOKEN_A)
            .header("x-airtable-token", "patLegacyUser")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let (_, data) = events.next_event().await.unwrap();
    let msg: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(msg["id"], 2);
    assert_eq!(msg["result"]["content"][0]["text"], "patLegacyUser");

    let metrics = c
        .get(format!("{base}/metrics"))
        .bearer_auth(TOKEN_A)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m = parse_prometheus(&metrics);
    assert_eq!(
        m[r#"airtable_mcp_active_sessions{transport="legacy_sse"}"#],
        1.0
    );

    // Closing the stream ends the session: its endpoint soon answers 404.
    drop(events);
    let mut gone = false;
    for _ in 0..100 {
        let r = c
            .post(&url)
            .bearer_auth(TOKEN_A)
            .header("x-airtable-token", "patLegacyUser")
            .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "ping"}))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::NOT_FOUND {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the session outlived its SSE stream");
    let metrics = c
        .get(format!("{base}/metrics"))
        .bearer_auth(TOKEN_A)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m = parse_prometheus(&metrics);
    assert_eq!(
        m[r#"airtable_mcp_active_sessions{transport="legacy_sse"}"#],
        0.0
    );
    shutdown.cancel();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn streamable_sessions_stay_with_their_creator() {
    let (server, shutdown) = start_echo(options()).await;
    let base = base_url(server.local_addr());
    let c = client();
    let init = c
        .post(format!("{base}/mcp"))
        .header("accept", ACCEPT_BOTH)
        .header("x-airtable-token", "patUserOne")
        .bearer_auth(TOKEN_A)
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), StatusCode::OK);
    let sid = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    // Other bearer token, or other (or no) Airtable token: 403.
    for (bearer, airtable) in [
        (TOKEN_B, Some("patUserOne")),
        (TOKEN_A, Some("patUserTwo")),
        (TOKEN_A, None),
    ] {
        let mut req = c
            .post(format!("{base}/mcp"))
            .header("accept", ACCEPT_BOTH)
            .header("mcp-session-id", &sid)
            .bearer_auth(bearer)
            .json(&call);
        if let Some(t) = airtable {
            req = req.header("x-airtable-token", t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{bearer} {airtable:?}");
    }
    shutdown.cancel();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_in_flight_calls_finish() {
    let (server, shutdown) = start_echo(options()).await;
    let base = base_url(server.local_addr());
    let url = base.clone();
    let slow = tokio::spawn(async move {
        run_python_client(
            &url,
            Some(TOKEN_A),
            &[],
            &[
                "--mode",
                "legacy",
                "--args",
                r#"{"text": "slow", "sleep_ms": 1500}"#,
            ],
        )
        .await
    });
    // Wait until the call is running, then ask the server to stop.
    let mut running = false;
    for _ in 0..400 {
        if !server.metrics().in_flight().is_empty() {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(running, "the slow call never started");
    shutdown.cancel();
    server.wait().await.unwrap();
    let report = slow.await.unwrap();
    let results = &report["sessions"][0]["results"];
    assert_eq!(results[0]["text"], "slow", "{report}");
    // Stopped accepting.
    assert!(
        client()
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn python_sdk_streamable_legacy_auto_and_sse_with_metrics() {
    let (server, shutdown) = start_echo(options()).await;
    let base = base_url(server.local_addr());
    let mut expected_calls = 0.0;
    for (transport, mode) in [
        ("streamable", "legacy"),
        ("streamable", "auto"),
        ("sse", "legacy"),
    ] {
        let report = run_python_client(
            &base,
            Some(TOKEN_A),
            &[],
            &[
                "--transport",
                transport,
                "--mode",
                mode,
                "--calls",
                "3",
                "--progress",
                "--args",
                r#"{"text": "hello", "steps": 2}"#,
            ],
        )
        .await;
        assert_eq!(report["errors"], 0, "{transport}/{mode}: {report}");
        let s = &report["sessions"][0];
        assert_eq!(s["tools"], json!(["echo", "whoami"]), "{transport}/{mode}");
        assert_eq!(s["results"].as_array().unwrap().len(), 3);
        for r in s["results"].as_array().unwrap() {
            assert_eq!(r["text"], "hello");
            assert_eq!(r["is_error"], false);
        }
        assert_eq!(
            s["progress"], 6,
            "{transport}/{mode}: progress notifications"
        );
        expected_calls += 3.0;
    }
    // A tool error and an unknown tool are counted under their own outcomes.
    let report = run_python_client(
        &base,
        Some(TOKEN_A),
        &[],
        &[
            "--mode",
            "legacy",
            "--args",
            r#"{"text": "x", "fail": true}"#,
        ],
    )
    .await;
    assert_eq!(
        report["sessions"][0]["results"][0]["is_error"], true,
        "{report}"
    );
    let report = run_python_client(
        &base,
        Some(TOKEN_A),
        &[],
        &["--mode", "legacy", "--tool", "no_such_tool"],
    )
    .await;
    let s = &report["sessions"][0];
    let protocol_errors = s["errors"].as_array().unwrap().len() as f64;
    let tool_error_results = s["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["is_error"] == true)
        .count() as f64;
    assert_eq!(protocol_errors + tool_error_results, 1.0, "{report}");

    let text = client()
        .get(format!("{base}/metrics"))
        .bearer_auth(TOKEN_A)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m = parse_prometheus(&text);
    assert_eq!(
        m[r#"airtable_mcp_tool_calls_total{tool="echo",outcome="ok"}"#], expected_calls,
        "{text}"
    );
    assert_eq!(
        m[r#"airtable_mcp_tool_calls_total{tool="echo",outcome="tool_error"}"#],
        1.0
    );
    let unknown_key = if protocol_errors > 0.0 {
        r#"airtable_mcp_tool_calls_total{tool="unknown",outcome="protocol_error"}"#
    } else {
        r#"airtable_mcp_tool_calls_total{tool="unknown",outcome="tool_error"}"#
    };
    assert_eq!(m[unknown_key], 1.0, "{text}");
    assert_eq!(
        m[r#"airtable_mcp_tool_call_duration_seconds_count{tool="echo"}"#],
        expected_calls + 1.0
    );
    assert!(text.contains("# TYPE airtable_mcp_tool_call_duration_seconds histogram"));
    shutdown.cancel();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn python_sdk_stateless_server_both_modes() {
    let mut opts = options();
    opts.stateless = true;
    opts.json_response = true;
    let (server, shutdown) = start_echo(opts).await;
    let base = base_url(server.local_addr());
    for mode in ["legacy", "auto"] {
        let report = run_python_client(
            &base,
            Some(TOKEN_B),
            &[],
            &["--mode", mode, "--calls", "2", "--progress"],
        )
        .await;
        assert_eq!(report["errors"], 0, "{mode}: {report}");
        let s = &report["sessions"][0];
        assert_eq!(s["results"][1]["text"], "hello");
        assert_eq!(s["progress"], 6, "{mode}: {report}");
    }
    shutdown.cancel();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn concurrent_sessions_keep_their_own_airtable_token() {
    let (server, shutdown) = start_echo(options()).await;
    let base = base_url(server.local_addr());
    for (transport, mode) in [
        ("streamable", "legacy"),
        ("streamable", "auto"),
        ("sse", "legacy"),
    ] {
        let report = run_python_client(
            &base,
            Some(TOKEN_A),
            &["patAlice", "patBob"],
            &[
                "--transport",
                transport,
                "--mode",
                mode,
                "--sessions",
                "6",
                "--calls",
                "5",
                "--tool",
                "whoami",
                "--args",
                "{}",
            ],
        )
        .await;
        assert_eq!(report["errors"], 0, "{report}");
        for (i, s) in report["sessions"].as_array().unwrap().iter().enumerate() {
            let want = if i % 2 == 0 { "patAlice" } else { "patBob" };
            for r in s["results"].as_array().unwrap() {
                assert_eq!(r["text"], want, "{transport}/{mode} session {i}");
            }
        }
    }
    shutdown.cancel();
    server.wait().await.unwrap();
}
