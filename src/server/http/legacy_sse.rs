//! The legacy HTTP+SSE transport (MCP 2024-11-05), which rmcp no longer ships:
//!
//! - `GET /sse` opens a session: the first event is `endpoint` with
//!   `/messages?sessionId=ID`, then every server message is a `message` event.
//! - `POST /messages?sessionId=ID` delivers one client message (or a batch) → 202 Accepted.
//!
//! Each session runs one rmcp `serve_server` task over a pair of channels
//! (`PollSender` → SSE stream, `ReceiverStream` ← POSTs). The session ends, and is removed,
//! when the SSE stream closes, when the handler stops or on shutdown.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use rmcp::model::{ClientJsonRpcMessage, GetExtensions, ServerJsonRpcMessage};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::{CancellationToken, PollSender};

use super::auth::{self, Principal, SessionBinding};
use super::metrics::Metrics;
use super::{AirtableTokenOverride, HandlerFactory, Observable};

/// Messages buffered per direction and session.
const CHANNEL_CAPACITY: usize = 64;

struct LegacySession {
    tx: mpsc::Sender<ClientJsonRpcMessage>,
    /// When the client last posted a message (or opened the stream).
    last_active: Arc<Mutex<tokio::time::Instant>>,
    /// The bearer principal and Airtable token the session was opened with.
    owner: SessionBinding,
}

type Sessions = Arc<Mutex<HashMap<String, LegacySession>>>;

/// Shared state of the legacy endpoints.
pub struct LegacySse<H> {
    sessions: Sessions,
    factory: HandlerFactory<H>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    keep_alive: Duration,
    body_limit: usize,
    idle_timeout: Duration,
}

impl<H> Clone for LegacySse<H> {
    fn clone(&self) -> Self {
        Self {
            sessions: self.sessions.clone(),
            factory: self.factory.clone(),
            metrics: self.metrics.clone(),
            shutdown: self.shutdown.clone(),
            keep_alive: self.keep_alive,
            body_limit: self.body_limit,
            idle_timeout: self.idle_timeout,
        }
    }
}

impl<H: Observable> LegacySse<H> {
    pub fn new(
        factory: HandlerFactory<H>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
        keep_alive: Duration,
        body_limit: usize,
    ) -> Self {
        Self {
            sessions: Arc::default(),
            factory,
            metrics,
            shutdown,
            keep_alive,
            body_limit,
            idle_timeout: super::DEFAULT_SESSION_IDLE_TIMEOUT,
        }
    }

    /// Close a session whose client posted nothing for `idle` (default 30 min).
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// Who opened each open session.
    pub fn owners(&self) -> Vec<SessionBinding> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|s| s.owner.clone())
            .collect()
    }

    /// Open sessions right now.
    pub fn session_count(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Routes `GET /sse` and `POST /messages`.
    pub fn router(self) -> axum::Router {
        axum::Router::new()
            .route("/sse", axum::routing::get(open_sse::<H>))
            .route("/messages", axum::routing::post(post_message::<H>))
            .with_state(self)
    }
}

/// Removes the session when the SSE response stream is dropped (client gone, shutdown).
struct SessionGuard {
    id: String,
    sessions: Sessions,
    metrics: Arc<Metrics>,
    ct: CancellationToken,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
        self.ct.cancel();
        self.metrics.legacy_session_closed();
        tracing::debug!(session = %self.id, "legacy SSE session closed");
    }
}

async fn open_sse<H: Observable>(State(st): State<LegacySse<H>>, req: Request) -> Response {
    let airtable_token = req
        .extensions()
        .get::<AirtableTokenOverride>()
        .map(|t| t.0.clone());
    let owner = SessionBinding::new(
        req.extensions().get::<Principal>().cloned(),
        airtable_token.as_ref(),
    );
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (in_tx, in_rx) = mpsc::channel::<ClientJsonRpcMessage>(CHANNEL_CAPACITY);
    let (out_tx, out_rx) = mpsc::channel::<ServerJsonRpcMessage>(CHANNEL_CAPACITY);
    let ct = st.shutdown.child_token();

    let last_active = Arc::new(Mutex::new(tokio::time::Instant::now()));
    st.sessions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            id.clone(),
            LegacySession {
                tx: in_tx,
                owner,
                last_active: last_active.clone(),
            },
        );
    // Idle expiry: end the session when its client posted nothing for the idle timeout.
    {
        let ct = ct.clone();
        let idle = st.idle_timeout;
        let metrics = st.metrics.clone();
        tokio::spawn(async move {
            loop {
                let deadline = *last_active.lock().unwrap_or_else(PoisonError::into_inner) + idle;
                tokio::select! {
                    _ = ct.cancelled() => break,
                    _ = tokio::time::sleep_until(deadline) => {}
                }
                let last = *last_active.lock().unwrap_or_else(PoisonError::into_inner);
                if last + idle <= tokio::time::Instant::now() {
                    metrics.sessions_expired("legacy_sse", 1);
                    ct.cancel();
                    break;
                }
            }
        });
    }
    st.metrics.legacy_session_opened();
    let guard = SessionGuard {
        id: id.clone(),
        sessions: st.sessions.clone(),
        metrics: st.metrics.clone(),
        ct: ct.clone(),
    };

    let handler = (st.factory)(airtable_token).observed(st.metrics.clone());
    let transport = (PollSender::new(out_tx), ReceiverStream::new(in_rx));
    let task_ct = ct.clone();
    let session = id.clone();
    tokio::spawn(async move {
        match rmcp::service::serve_server_with_ct(handler, transport, task_ct.clone()).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(e) => {
                tracing::debug!(%session, error = %e, "legacy SSE session ended before initialization")
            }
        }
        // The handler is gone: end the SSE stream too.
        task_ct.cancel();
    });
    tracing::debug!(session = %id, "legacy SSE session opened");

    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/messages?sessionId={id}"));
    let messages = ReceiverStream::new(out_rx).filter_map(|msg| async move {
        match serde_json::to_string(&msg) {
            Ok(json) => Some(Event::default().event("message").data(json)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot serialize a server message");
                None
            }
        }
    });
    let stream = futures::stream::once(async move { endpoint })
        .chain(messages)
        .take_until(ct.cancelled_owned())
        .map(move |event| {
            let _keep = &guard;
            Ok::<_, Infallible>(event)
        });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(st.keep_alive))
        .into_response()
}

fn plain(status: StatusCode, msg: &str) -> Response {
    (status, format!("{msg}\n")).into_response()
}

async fn post_message<H: Observable>(
    State(st): State<LegacySse<H>>,
    Query(query): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    let Some(id) = query.get("sessionId").or_else(|| query.get("session_id")) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "Bad Request: the sessionId query parameter is required",
        );
    };
    let binding = SessionBinding::new(
        req.extensions().get::<Principal>().cloned(),
        req.extensions()
            .get::<AirtableTokenOverride>()
            .map(|t| &t.0),
    );
    let tx = {
        let sessions = st.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        match sessions.get(id) {
            // A session only accepts messages from the client that opened it: same bearer
            // token and same Airtable token (else they would run with the opener's token).
            Some(s) if s.owner.admits(&binding) => {
                *s.last_active.lock().unwrap_or_else(PoisonError::into_inner) =
                    tokio::time::Instant::now();
                s.tx.clone()
            }
            Some(s) => return auth::session_mismatch("legacy_sse", &s.owner, &binding),
            None => return plain(StatusCode::NOT_FOUND, "Not Found: unknown session"),
        }
    };
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(Body::new(body), st.body_limit).await {
        Ok(b) => b,
        Err(_) => {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Payload Too Large: the request body exceeds the limit",
            );
        }
    };
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!("Bad Request: invalid JSON: {e}"),
            );
        }
    };
    let values = match value {
        serde_json::Value::Array(items) if !items.is_empty() => items,
        serde_json::Value::Array(_) => {
            return plain(StatusCode::BAD_REQUEST, "Bad Request: empty batch");
        }
        v => vec![v],
    };
    let mut messages = Vec::with_capacity(values.len());
    for v in values {
        match serde_json::from_value::<ClientJsonRpcMessage>(v) {
            Ok(mut msg) => {
                // Like rmcp's Streamable HTTP: the tools can read the HTTP request parts.
                match &mut msg {
                    ClientJsonRpcMessage::Request(r) => {
                        r.request.extensions_mut().insert(parts.clone());
                    }
                    ClientJsonRpcMessage::Notification(n) => {
                        n.notification.extensions_mut().insert(parts.clone());
                    }
                    _ => {}
                }
                messages.push(msg);
            }
            Err(e) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    &format!("Bad Request: not a JSON-RPC message: {e}"),
                );
            }
        }
    }
    for msg in messages {
        if tx.send(msg).await.is_err() {
            return plain(StatusCode::NOT_FOUND, "Not Found: the session has ended");
        }
    }
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
