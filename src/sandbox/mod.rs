//! An Airtable-compatible server: the Web API on loopback, backed by SQLite.

use std::process::ExitCode;

use crate::cli::SandboxArgs;

/// `airtable-mcp sandbox`.
pub async fn run_cli(_args: SandboxArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the sandbox is not built yet")
}
