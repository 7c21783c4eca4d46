//! `airtable-mcp setup <client>`.

use std::process::ExitCode;

use crate::cli::SetupArgs;

pub async fn run(_args: SetupArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("setup is not built yet")
}
