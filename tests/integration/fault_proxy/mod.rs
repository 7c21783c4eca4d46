//! A loopback proxy in front of a sandbox that refuses record creates on demand: a
//! deterministic *definite* failure part way through a batch (issue #14), where the sandbox's
//! own `Faults` are random. Every other request is forwarded as is.
//!
//! Use from a test file with `mod fault_proxy;` (beside `mod mcp_support;`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use airtable_mcp::airtable::{Client, ClientConfig};
use airtable_mcp::sandbox::SandboxHandle;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;

/// How a refused create is answered; both say for certain that nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 503 RETRIABLE_ERROR: the client retries, then gives up (retries exhausted).
    Retriable,
    /// 422 INVALID_VALUE_FOR_COLUMN: not retried.
    Invalid,
}

/// Never refuse.
const OPEN: usize = usize::MAX;

#[derive(Clone)]
struct Shared {
    upstream: String,
    http: reqwest::Client,
    refusal: Refusal,
    /// Creates still let through before refusing (OPEN = all).
    allow: Arc<AtomicUsize>,
    /// Creates forwarded and answered 2xx.
    passed: Arc<AtomicUsize>,
    /// Create requests refused (retries included).
    refused: Arc<AtomicUsize>,
}

/// The proxy (stopped when dropped).
pub struct FaultProxy {
    url: url::Url,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `POST /v0/{base}/{table}`: a record create (not listRecords, not meta).
fn is_create(req: &Request) -> bool {
    let segs: Vec<&str> = req
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .collect();
    req.method() == axum::http::Method::POST
        && segs.len() == 3
        && segs[0] == "v0"
        && segs[1].starts_with("app")
}

async fn forward(State(s): State<Shared>, req: Request) -> Response {
    let create = is_create(&req);
    if create {
        let allowed = s
            .allow
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                OPEN => Some(OPEN),
                0 => None,
                n => Some(n - 1),
            })
            .is_ok();
        if !allowed {
            s.refused.fetch_add(1, Ordering::SeqCst);
            let (status, kind) = match s.refusal {
                Refusal::Retriable => (StatusCode::SERVICE_UNAVAILABLE, "RETRIABLE_ERROR"),
                Refusal::Invalid => (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_VALUE_FOR_COLUMN"),
            };
            return (
                status,
                axum::Json(serde_json::json!({"error": {"type": kind,
                    "message": "refused by the test's fault proxy"}})),
            )
                .into_response();
        }
    }
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = req.method().clone();
    let mut out = s.http.request(method, format!("{}{path}", s.upstream));
    for name in ["authorization", "content-type"] {
        if let Some(v) = req.headers().get(name) {
            out = out.header(name, v.clone());
        }
    }
    let body = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    match out.body(body).send().await {
        Ok(res) => {
            let status = res.status();
            if create && status.is_success() {
                s.passed.fetch_add(1, Ordering::SeqCst);
            }
            let headers = res.headers().clone();
            let bytes = res.bytes().await.unwrap_or_default();
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            for name in ["content-type", "retry-after"] {
                if let Some(v) = headers.get(name) {
                    response.headers_mut().insert(name, v.clone());
                }
            }
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

impl FaultProxy {
    /// A proxy to `sb`, open until [`FaultProxy::refuse_creates_after`].
    pub async fn start(sb: &SandboxHandle, refusal: Refusal) -> FaultProxy {
        let shared = Shared {
            upstream: sb.url().as_str().trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            refusal,
            allow: Arc::new(AtomicUsize::new(OPEN)),
            passed: Arc::new(AtomicUsize::new(0)),
            refused: Arc::new(AtomicUsize::new(0)),
        };
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FaultProxy { url, shared, task }
    }

    /// Let `n` more record creates through, then refuse every later one (until [`heal`]).
    ///
    /// [`heal`]: FaultProxy::heal
    pub fn refuse_creates_after(&self, n: usize) {
        self.shared.allow.store(n, Ordering::SeqCst);
    }

    /// Let every create through again.
    pub fn heal(&self) {
        self.shared.allow.store(OPEN, Ordering::SeqCst);
    }

    /// Creates written through the proxy so far.
    pub fn creates_passed(&self) -> usize {
        self.shared.passed.load(Ordering::SeqCst)
    }

    /// Create requests refused so far (retries included).
    pub fn creates_refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// An Airtable client through the proxy (the sandbox's token; fast retries as
    /// `mcp_support::client_for`).
    pub fn client(&self, sb: &SandboxHandle) -> Client {
        let mut cfg =
            ClientConfig::new(self.url.clone(), SecretString::from(sb.token().to_owned()));
        cfg.per_base_rps = 1000;
        cfg.per_token_rps = 1000;
        cfg.max_retries = 2;
        cfg.rate_limit_wait = Duration::from_millis(50);
        cfg.max_backoff = Duration::from_millis(50);
        cfg.timeout = Duration::from_secs(10);
        Client::new(cfg).expect("client builds")
    }
}
