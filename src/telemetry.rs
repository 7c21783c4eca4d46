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
        format!("{filter},rmcp::transport::streamable_http_server::session=warn")
    }
}

/// Install the global subscriber: stderr, no ANSI colours, `text` or `json`.
pub fn init(args: &GlobalArgs) -> Result<(), TelemetryError> {
    let filter_src = args.log_level.clone().unwrap_or_else(|| "info".to_owned());
    let filter = EnvFilter::try_new(with_quiet_sessions(&filter_src)).map_err(|source| {
        TelemetryError::Filter {
            filter: filter_src.clone(),
            source,
        }
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
