//! Prometheus metrics (`/metrics`, text format). [`Metrics`] is the [`CallObserver`] the
//! transports install on every session's handler, so tool calls are counted, timed and tracked
//! for graceful shutdown without the tools code knowing about metrics.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio_util::task::TaskTracker;

use crate::tools::{CallObserver, CallOutcome};

/// How a tool call ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Outcome {
    /// The tool answered normally.
    ok,
    /// The tool answered with `isError: true` (an error the model sees).
    tool_error,
    /// The call failed with a JSON-RPC error.
    protocol_error,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    tool: String,
    outcome: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabels {
    transport: &'static str,
}

/// A point-in-time copy of the Airtable client's counters (from `airtable::ClientStats`).
#[derive(Clone, Debug, Default)]
pub struct AirtableStatsSnapshot {
    /// Attempts by outcome: `2xx`, `4xx`, `5xx`…, or `transport_error` (no HTTP answer).
    pub requests_by_status: Vec<(String, u64)>,
    /// Responses with status 429.
    pub rate_limited: u64,
    /// Requests sent again after a retryable failure.
    pub retries: u64,
    /// Total time spent waiting on the client-side rate limiter.
    pub limiter_wait: Duration,
    /// Total time spent sleeping before retries (Retry-After, backoff).
    pub retry_wait: Duration,
    /// The Redis store's health (`--redis`): up, fallback acquisitions, outages.
    pub redis: Option<crate::airtable::rate_limit::StoreHealth>,
}

impl From<&crate::airtable::ClientStats> for AirtableStatsSnapshot {
    fn from(s: &crate::airtable::ClientStats) -> Self {
        let mut requests_by_status: Vec<(String, u64)> = s
            .by_status_class
            .iter()
            .enumerate()
            .skip(1)
            .map(|(class, n)| (format!("{class}xx"), *n))
            .collect();
        requests_by_status.push(("transport_error".to_owned(), s.transport_errors));
        Self {
            requests_by_status,
            rate_limited: s.rate_limited,
            retries: s.retries,
            limiter_wait: s.limiter_wait,
            retry_wait: s.retry_wait,
            redis: s.shared_store,
        }
    }
}

/// Reads the Airtable client's counters at scrape time.
pub type StatsSource = Arc<dyn Fn() -> AirtableStatsSnapshot + Send + Sync>;

fn latency_buckets() -> Histogram {
    // 1 ms .. ~33 s
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 16,
    ))
}

/// Every metric the HTTP server exposes.
pub struct Metrics {
    registry: Registry,
    tool_calls: Family<CallLabels, Counter>,
    tool_latency: Family<ToolLabels, Histogram, fn() -> Histogram>,
    active_sessions: Family<TransportLabels, Gauge>,
    legacy_sessions: AtomicI64,
    in_flight: TaskTracker,
    sessions_expired: Family<TransportLabels, Counter>,
    sessions_refused: Family<ReasonLabels, Counter>,
    /// Streamable HTTP sessions ended by their client's DELETE since the last housekeeping.
    deleted: AtomicI64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

struct AirtableCollector(StatsSource);

impl fmt::Debug for AirtableCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AirtableCollector")
    }
}

impl prometheus_client::collector::Collector for AirtableCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let s = (self.0)();
        {
            let mut family = encoder.encode_descriptor(
                "airtable_requests",
                "Requests sent to the Airtable API (retries included), by status class or transport_error.",
                None,
                MetricType::Counter,
            )?;
            for (status, n) in &s.requests_by_status {
                let labels = [("status", status.as_str())];
                ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
            }
        }
        ConstCounter::new(s.rate_limited).encode(encoder.encode_descriptor(
            "airtable_rate_limited",
            "Responses from the Airtable API with status 429.",
            None,
            MetricType::Counter,
        )?)?;
        ConstCounter::new(s.retries).encode(encoder.encode_descriptor(
            "airtable_retries",
            "Airtable requests sent again after a retryable failure.",
            None,
            MetricType::Counter,
        )?)?;
        ConstCounter::new(s.retry_wait.as_secs_f64()).encode(encoder.encode_descriptor(
            "airtable_retry_wait_seconds",
            "Time spent sleeping before Airtable retries (Retry-After and backoff).",
            None,
            MetricType::Counter,
        )?)?;
        ConstCounter::new(s.limiter_wait.as_secs_f64()).encode(encoder.encode_descriptor(
            "airtable_rate_limiter_wait_seconds",
            "Time spent waiting on the client-side Airtable rate limiter.",
            None,
            MetricType::Counter,
        )?)?;
        if let Some(r) = s.redis {
            ConstGauge::new(i64::from(r.up)).encode(encoder.encode_descriptor(
                "redis_up",
                "1 while the shared rate limits live in Redis, 0 while falling back to local limits.",
                None,
                MetricType::Gauge,
            )?)?;
            ConstCounter::new(r.fallback_total).encode(encoder.encode_descriptor(
                "redis_fallback_acquisitions",
                "Rate-limit acquisitions served by the local fallback (Redis unreachable or in transition).",
                None,
                MetricType::Counter,
            )?)?;
            ConstCounter::new(r.outages_total).encode(encoder.encode_descriptor(
                "redis_outages",
                "Times Redis became unreachable.",
                None,
                MetricType::Counter,
            )?)?;
        }
        Ok(())
    }
}

impl Metrics {
    /// A registry under the prefix `airtable_mcp`; `stats` adds the Airtable client's counters.
    pub fn new(stats: Option<StatsSource>) -> Arc<Self> {
        let mut registry = Registry::with_prefix("airtable_mcp");
        let tool_calls = Family::<CallLabels, Counter>::default();
        let tool_latency: Family<ToolLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_buckets);
        let active_sessions = Family::<TransportLabels, Gauge>::default();
        registry.register(
            "tool_calls",
            "MCP tool calls, by tool and outcome (ok, tool_error, protocol_error).",
            tool_calls.clone(),
        );
        registry.register(
            "tool_call_duration_seconds",
            "Latency of MCP tool calls, by tool.",
            tool_latency.clone(),
        );
        registry.register(
            "active_sessions",
            "Open MCP sessions, by transport (streamable, legacy_sse).",
            active_sessions.clone(),
        );
        // Both series exist from the start, at 0.
        active_sessions
            .get_or_create(&TransportLabels {
                transport: "streamable",
            })
            .set(0);
        active_sessions
            .get_or_create(&TransportLabels {
                transport: "legacy_sse",
            })
            .set(0);
        let sessions_expired = Family::<TransportLabels, Counter>::default();
        let sessions_refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "sessions_expired",
            "MCP sessions closed by the server after being idle (--session-idle-timeout), by transport.",
            sessions_expired.clone(),
        );
        registry.register(
            "sessions_refused",
            "New MCP sessions refused over a cap, by reason (per_token: 429, total: 503).",
            sessions_refused.clone(),
        );
        for transport in ["streamable", "legacy_sse"] {
            let _ = sessions_expired.get_or_create(&TransportLabels { transport });
        }
        for reason in ["per_token", "total"] {
            let _ = sessions_refused.get_or_create(&ReasonLabels { reason });
        }
        if let Some(stats) = stats {
            registry.register_collector(Box::new(AirtableCollector(stats)));
        }
        Arc::new(Self {
            registry,
            tool_calls,
            tool_latency,
            active_sessions,
            legacy_sessions: AtomicI64::new(0),
            in_flight: TaskTracker::new(),
            sessions_expired,
            sessions_refused,
            deleted: AtomicI64::new(0),
        })
    }

    /// Record one finished tool call.
    pub fn record_call(&self, tool: &str, outcome: Outcome, elapsed: Duration) {
        self.tool_calls
            .get_or_create(&CallLabels {
                tool: tool.to_owned(),
                outcome,
            })
            .inc();
        self.tool_latency
            .get_or_create(&ToolLabels {
                tool: tool.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Set the number of open Streamable HTTP sessions (read from the session manager at scrape time).
    pub fn set_streamable_sessions(&self, n: usize) {
        self.active_sessions
            .get_or_create(&TransportLabels {
                transport: "streamable",
            })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn legacy_session_opened(&self) {
        let n = self.legacy_sessions.fetch_add(1, Ordering::SeqCst) + 1;
        self.active_sessions
            .get_or_create(&TransportLabels {
                transport: "legacy_sse",
            })
            .set(n);
    }

    pub(crate) fn legacy_session_closed(&self) {
        let n = self.legacy_sessions.fetch_sub(1, Ordering::SeqCst) - 1;
        self.active_sessions
            .get_or_create(&TransportLabels {
                transport: "legacy_sse",
            })
            .set(n);
    }

    /// Count sessions closed for idleness.
    pub(crate) fn sessions_expired(&self, transport: &'static str, n: usize) {
        if n > 0 {
            self.sessions_expired
                .get_or_create(&TransportLabels { transport })
                .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
        }
    }

    /// Count a new session refused over a cap (`per_token` or `total`).
    pub(crate) fn session_refused(&self, reason: &'static str) {
        self.sessions_refused
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// A client ended its Streamable HTTP session with DELETE.
    pub(crate) fn session_deleted(&self) {
        self.deleted.fetch_add(1, Ordering::SeqCst);
    }

    /// DELETEs since the last call.
    pub(crate) fn take_deleted_sessions(&self) -> usize {
        usize::try_from(self.deleted.swap(0, Ordering::SeqCst)).unwrap_or(0)
    }

    /// Tool calls still running (graceful shutdown waits for them).
    pub fn in_flight(&self) -> &TaskTracker {
        &self.in_flight
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl From<CallOutcome> for Outcome {
    fn from(o: CallOutcome) -> Self {
        match o {
            CallOutcome::Ok => Outcome::ok,
            CallOutcome::ToolError => Outcome::tool_error,
            CallOutcome::ProtocolError => Outcome::protocol_error,
        }
    }
}

/// The metrics watch every session's tool calls: counted and timed by tool and outcome, and
/// tracked while running (graceful shutdown waits for them).
impl CallObserver for Metrics {
    fn started(&self, _tool: &str) -> Box<dyn Send> {
        Box::new(self.in_flight.token())
    }

    fn finished(&self, tool: &str, outcome: CallOutcome, elapsed: Duration) {
        self.record_call(tool, outcome.into(), elapsed);
    }
}
