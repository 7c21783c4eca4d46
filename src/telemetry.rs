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

/// Install the global subscriber: stderr, no ANSI colours, `text` or `json`.
pub fn init(args: &GlobalArgs) -> Result<(), TelemetryError> {
    let filter_src = args.log_level.clone().unwrap_or_else(|| "info".to_owned());
    let filter = EnvFilter::try_new(&filter_src).map_err(|source| TelemetryError::Filter {
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
