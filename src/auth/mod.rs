//! Tokens: the OS keyring, resolution order, and the CLI around them.

pub mod doctor;
pub mod setup;

use std::process::ExitCode;

use crate::cli::{AuthCommand, GlobalArgs};

/// Process-wide preparation that must run before any thread exists
/// (joining a session keyring on Linux). Never fails: problems surface later.
pub fn prepare_process() {}

/// `airtable-mcp auth ...`.
pub async fn run_cli(_cmd: AuthCommand, _global: GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("auth is not built yet")
}
