//! Progress notifications for tools that make more than one request.
//!
//! A [`Progress`] is built from the request context; it does nothing unless the client sent a
//! progress token. [`Progress::callback`] gives the synchronous `on_progress` function the
//! client's batch writes call; notifications are forwarded in order by a task that
//! [`Progress::finish`] waits for, so every notification is sent before the result.

use std::sync::Arc;

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::RequestContext;
use rmcp::{Peer, RoleServer};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

type Forwarder = (mpsc::UnboundedSender<(usize, usize)>, JoinHandle<()>);

/// Sends `notifications/progress` for one request, if it asked for them.
pub(crate) struct Progress {
    target: Option<(Peer<RoleServer>, ProgressToken)>,
    forwarder: Option<Forwarder>,
    /// The request's cancellation (`notifications/cancelled`): batch writes stop between
    /// requests once it fires.
    cancel: Option<CancellationToken>,
}

impl Progress {
    /// One that reports nothing (internal reads of a write's plan).
    pub(crate) fn disabled() -> Self {
        Progress {
            target: None,
            forwarder: None,
            cancel: None,
        }
    }

    /// From a tool call's context.
    pub(crate) fn new(ctx: &RequestContext<RoleServer>) -> Self {
        let target = ctx.meta.get_progress_token().map(|t| (ctx.peer.clone(), t));
        Progress {
            target,
            forwarder: None,
            cancel: Some(ctx.ct.clone()),
        }
    }

    /// The request's cancellation token, for `airtable::WriteOptions::cancel`.
    pub(crate) fn cancellation(&self) -> Option<CancellationToken> {
        self.cancel.clone()
    }

    /// Report `done` of `total` (total 0 = unknown) with a message.
    pub(crate) async fn report(&self, done: usize, total: usize, message: impl Into<String>) {
        if let Some((peer, token)) = &self.target {
            let mut p = ProgressNotificationParam::new(token.clone(), done as f64)
                .with_message(message.into());
            if total > 0 {
                p = p.with_total(total as f64);
            }
            if let Err(e) = peer.notify_progress(p).await {
                tracing::debug!("progress notification not sent: {e}");
            }
        }
    }

    /// A synchronous callback `(done, total)` for `airtable::WriteOptions::on_progress`.
    /// Returns None when the client did not ask for progress.
    pub(crate) fn callback(
        &mut self,
        what: &'static str,
    ) -> Option<Arc<dyn Fn(usize, usize) + Send + Sync>> {
        let (peer, token) = self.target.clone()?;
        let (tx, mut rx) = mpsc::unbounded_channel::<(usize, usize)>();
        let task = tokio::spawn(async move {
            while let Some((done, total)) = rx.recv().await {
                let p = ProgressNotificationParam::new(token.clone(), done as f64)
                    .with_total(total as f64)
                    .with_message(format!("{what}: {done} of {total} records"));
                if let Err(e) = peer.notify_progress(p).await {
                    tracing::debug!("progress notification not sent: {e}");
                }
            }
        });
        let sender = tx.clone();
        self.forwarder = Some((tx, task));
        Some(Arc::new(move |done, total| {
            let _ = sender.send((done, total));
        }))
    }

    /// Wait until every queued notification is sent. The callback must have been dropped
    /// (the write finished) for this to return promptly. A later [`Progress::callback`]
    /// starts a new forwarder.
    pub(crate) async fn flush(&mut self) {
        if let Some((tx, task)) = self.forwarder.take() {
            drop(tx);
            let _ = task.await;
        }
    }
}
