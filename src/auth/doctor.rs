//! `airtable-mcp doctor`.

use std::process::ExitCode;

use crate::cli::{DoctorArgs, GlobalArgs};

pub async fn run(_args: DoctorArgs, _global: GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("doctor is not built yet")
}
