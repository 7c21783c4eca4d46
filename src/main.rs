//! `airtable-mcp`: parse the command line and dispatch. Nothing else lives here.

use std::process::ExitCode;

use clap::Parser;

use airtable_mcp::cli::{Cli, Command};

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    // The kernel keyring is per-thread credential state: join it before any thread exists.
    airtable_mcp::auth::prepare_process();
    // Log level/format from the config file when neither flag nor env gives them.
    airtable_mcp::config::apply_file_logging(&mut cli.global);
    if let Err(e) = airtable_mcp::telemetry::init(&cli.global) {
        eprintln!("airtable-mcp: cannot start logging: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("airtable-mcp: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result: anyhow::Result<ExitCode> = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => airtable_mcp::server::run(args, cli.global).await,
            Command::Sandbox(args) => airtable_mcp::sandbox::run_cli(args).await,
            Command::Auth(cmd) => airtable_mcp::auth::run_cli(cmd, cli.global).await,
            Command::Doctor(args) => airtable_mcp::auth::doctor::run(args, cli.global).await,
            Command::Setup(args) => airtable_mcp::auth::setup::run(args).await,
            Command::Tools(cmd) => airtable_mcp::server::run_tools_command(cmd).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("airtable-mcp: {e:#}");
            ExitCode::FAILURE
        }
    }
}
