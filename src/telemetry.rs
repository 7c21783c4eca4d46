//! Logging and traces.
//!
//! - Logs: tracing to stderr only (stdout belongs to the MCP protocol in stdio mode).
//! - Traces (`--otlp-endpoint`, off by default): the `tracing` spans of tool calls
//!   (`tools/call {tool}`, opened by the tools layer) and of Airtable requests (`airtable_request`,
//!   opened by the client) are exported as OpenTelemetry spans over OTLP/HTTP (protobuf) by a
//!   batch exporter; [`TelemetryGuard`] flushes it when dropped. Only spans of the `tools` and
//!   `airtable` modules are exported, and no events (log lines): span fields are chosen to hold
//!   no token, name or cell value. [`continue_trace`] makes a tool-call span the child of the
//!   client's W3C trace context.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{self, FilterExt as _};
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, prelude::*};
use url::Url;

use crate::cli::{GlobalArgs, LogFormat};

/// Errors starting the subscriber.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {filter:?}: {source}")]
    Filter {
        filter: String,
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("a global subscriber is already set")]
    AlreadySet,
    #[error("cannot set up the OTLP trace exporter")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
}

/// Keeps the trace exporter alive; dropping it flushes the spans not yet sent and stops the
/// exporter (at most a few seconds). Without `--otlp-endpoint` it holds nothing.
#[must_use = "dropping the guard stops the trace exporter"]
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.force_flush() {
                eprintln!("airtable-mcp: could not send the last traces: {e}");
            }
            let _ = provider.shutdown();
        }
    }
}

/// The module paths whose spans are exported.
const TRACED: [&str; 2] = ["airtable_mcp::tools", "airtable_mcp::airtable"];

/// Make `span` (just opened, not yet entered) a child of the W3C trace context
/// `traceparent`/`tracestate` (as sent in `_meta` or HTTP headers). A missing or malformed
/// `traceparent` leaves the span a root; without an exporter this does nothing.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    let Some(parent) = traceparent else { return };
    let mut carrier = HashMap::new();
    carrier.insert("traceparent".to_owned(), parent.to_owned());
    if let Some(state) = tracestate {
        carrier.insert("tracestate".to_owned(), state.to_owned());
    }
    let cx = TraceContextPropagator::new().extract(&carrier);
    use opentelemetry::trace::TraceContextExt as _;
    if cx.span().span_context().is_valid() {
        // Err only when no OpenTelemetry layer is installed (no --otlp-endpoint).
        let _ = span.set_parent(cx);
    }
}

fn exporter_provider(endpoint: &Url) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(endpoint.as_str())
        .build()
        .map_err(TelemetryError::Exporter)?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(env!("CARGO_PKG_NAME"))
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// rmcp logs every new Streamable HTTP session ID at INFO; session IDs are bearer-like
/// handles, so below debug they are kept out of the log (unless the filter names rmcp).
fn with_quiet_sessions(filter: &str) -> String {
    let verbose = filter
        .split(',')
        .any(|d| matches!(d.trim().to_ascii_lowercase().as_str(), "debug" | "trace"));
    if verbose || filter.contains("rmcp") {
        filter.to_owned()
    } else {
        format!("{filter},{SESSION_QUIET}")
    }
}

/// rmcp logs whole requests and results (record data) at debug. Unless `--log-record-data` is
/// given, the filter's rmcp directives that would let more than warnings through are dropped,
/// rmcp is capped at info (or at the filter's own default level when that is stricter: `error`
/// silences rmcp's info lines too) and its session module at warn: no cell value (and no
/// session ID) reaches the log at any level. Our own code never logs cell values.
pub fn effective_filter(filter: &str, record_data: bool) -> String {
    if record_data {
        return with_quiet_sessions(filter);
    }
    let strict = |d: &str| {
        let level = d
            .rsplit('=')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        d.contains('=') && matches!(level.as_str(), "warn" | "error" | "off")
    };
    let mut kept: Vec<&str> = filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && (!d.starts_with("rmcp") || strict(d)))
        .collect();
    // The filter's default level: its last directive without a target.
    let default = kept
        .iter()
        .rev()
        .find(|d| !d.contains('='))
        .map(|d| d.to_ascii_lowercase());
    let rmcp_cap = match default.as_deref() {
        Some("off") => "rmcp=off",
        Some("error") => "rmcp=error",
        Some("warn") => "rmcp=warn",
        _ => "rmcp=info",
    };
    kept.push(rmcp_cap);
    if !kept.contains(&SESSION_QUIET) {
        kept.push(SESSION_QUIET);
    }
    kept.join(",")
}

const SESSION_QUIET: &str = "rmcp::transport::streamable_http_server::session=warn";

/// Install the global subscriber: logs on stderr (no ANSI colours, `text` or `json`) and, with
/// `otlp` (a full `.../v1/traces` URL), the trace exporter. Keep the guard until exit.
pub fn init(args: &GlobalArgs, otlp: Option<&Url>) -> Result<TelemetryGuard, TelemetryError> {
    let filter_src = args.log_level.clone().unwrap_or_else(|| "info".to_owned());
    let installed = effective_filter(&filter_src, args.log_record_data);
    let filter = EnvFilter::try_new(installed).map_err(|source| TelemetryError::Filter {
        filter: filter_src.clone(),
        source,
    })?;
    // The log filter applies to the log layer only: traces do not depend on the log level.
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match args.log_format.unwrap_or_default() {
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    let provider = otlp.map(exporter_provider).transpose()?;
    let traces = provider.as_ref().map(|p| {
        let spans_only = filter::filter_fn(|meta| {
            meta.is_span() && TRACED.iter().any(|t| meta.target().starts_with(t))
        });
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(env!("CARGO_PKG_NAME")))
            .with_filter(spans_only.and(filter::LevelFilter::INFO))
    });
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .map_err(|_| TelemetryError::AlreadySet)?;
    if let Some(url) = otlp {
        // Scheme, host and port only: the URL could carry credentials.
        let origin = url.origin().ascii_serialization();
        tracing::info!(collector = %origin, "exporting traces over OTLP/HTTP");
    }
    Ok(TelemetryGuard { provider })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_data_stays_out_of_the_log_unless_asked() {
        let quiet = "rmcp::transport::streamable_http_server::session=warn";
        assert_eq!(
            effective_filter("debug", false),
            format!("debug,rmcp=info,{quiet}")
        );
        assert_eq!(
            effective_filter("info,rmcp=trace", false),
            format!("info,rmcp=info,{quiet}"),
            "an rmcp directive cannot bring payload logs back"
        );
        assert_eq!(
            effective_filter("info,rmcp::service=error", false),
            format!("info,rmcp::service=error,rmcp=info,{quiet}"),
            "stricter rmcp directives stay"
        );
        assert_eq!(
            effective_filter("error", false),
            format!("error,rmcp=error,{quiet}"),
            "a stricter default level applies to rmcp too"
        );
        assert_eq!(
            effective_filter("warn,airtable_mcp=debug", false),
            format!("warn,airtable_mcp=debug,rmcp=warn,{quiet}")
        );
        assert_eq!(effective_filter("debug", true), "debug");
        assert_eq!(effective_filter("rmcp=trace", true), "rmcp=trace");
        assert_eq!(effective_filter("info", true), format!("info,{quiet}"));
        for f in ["debug", "info,rmcp=trace", "trace"] {
            assert!(
                EnvFilter::try_new(effective_filter(f, false)).is_ok(),
                "{f}"
            );
        }
    }
}
