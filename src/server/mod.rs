//! The rmcp server handler and its transports (stdio, HTTP).

pub mod http;

use std::process::ExitCode;

use crate::cli::{GlobalArgs, ServeArgs, ToolsCommand};

/// `airtable-mcp serve`.
pub async fn run(_args: ServeArgs, _global: GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the server is not built yet")
}

/// `airtable-mcp tools list|schema`.
pub async fn run_tools_command(_cmd: ToolsCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the tool catalogue is not built yet")
}
