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
    // One stdio client (and the short CLI commands) need no worker pool: a current-thread
    // runtime starts sooner and keeps less memory. HTTP (--http) and the sandbox serve many
    // clients at once: multi-thread. (An HTTP listener set only in the config file runs on the
    // current thread: still correct, on one core.)
    let multi_thread = match &cli.command {
        Command::Serve(args) => args.http.is_some(),
        Command::Sandbox(_) => true,
        _ => false,
    };
    let built = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match built {
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
