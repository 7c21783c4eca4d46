//! Logging: tracing to stderr only (stdout belongs to the MCP protocol in stdio mode).

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

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
/// rmcp is capped at info and its session module at warn: no cell value (and no session ID)
/// reaches the log at any level. Our own code never logs cell values.
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
    kept.push("rmcp=info");
    if !kept.contains(&SESSION_QUIET) {
        kept.push(SESSION_QUIET);
    }
    kept.join(",")
}

const SESSION_QUIET: &str = "rmcp::transport::streamable_http_server::session=warn";

/// Install the global subscriber: stderr, no ANSI colours, `text` or `json`.
pub fn init(args: &GlobalArgs) -> Result<(), TelemetryError> {
    let filter_src = args.log_level.clone().unwrap_or_else(|| "info".to_owned());
    let installed = effective_filter(&filter_src, args.log_record_data);
    let filter = EnvFilter::try_new(installed).map_err(|source| TelemetryError::Filter {
        filter: filter_src.clone(),
        source,
    })?;
    let registry = tracing_subscriber::registry().with(filter);
    let res = match args.log_format.unwrap_or_default() {
        LogFormat::Text => registry
            .with(fmt::layer().with_writer(std::io::stderr).with_ansi(false))
            .try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
    };
    res.map_err(|_| TelemetryError::AlreadySet)
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
