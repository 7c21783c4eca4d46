//! `airtable-mcp`: parse the command line and dispatch. Nothing else lives here.

use std::process::ExitCode;

use clap::Parser;

use airtable_mcp::auth::{self, Settings};
use airtable_mcp::cli::{ApiArgs, AuthCommand, Cli, Command, GlobalArgs, Lazy};
use airtable_mcp::config::{Config, ConfigError};

fn main() -> ExitCode {
    // Empty env values of `serve`'s optional settings count as unset (MCP hosts pass blanks
    // that way): its deferred builder drops their env bindings (cli::BLANK_ENV_IS_UNSET).
    let mut cli = Cli::parse();
    // The kernel keyring is per-thread credential state: join it before any thread exists.
    auth::prepare_process();
    // Log level/format from the config file when neither flag nor env gives them.
    airtable_mcp::config::apply_file_logging(&mut cli.global);
    // `serve` loads its configuration once, here: it also picks the runtime and the trace
    // exporter (loading logs nothing, so it may come before logging starts).
    let serve_cfg = match &cli.command {
        Command::Serve(args) => match Config::load(args, &cli.global) {
            Ok(cfg) => Some(cfg),
            Err(e) => {
                eprintln!("airtable-mcp: {}", report(&e.into()));
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let otlp = serve_cfg.as_ref().and_then(|c| c.otlp_endpoint.as_ref());
    // Dropped last (after the runtime): flushes the spans not yet exported.
    let _telemetry = match airtable_mcp::telemetry::init(&cli.global, otlp) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("airtable-mcp: cannot start logging: {}", report(&e.into()));
            return ExitCode::from(2);
        }
    };
    // One stdio client (and the short CLI commands) need no worker pool: a current-thread
    // runtime starts sooner and keeps less memory. HTTP (--http, or [http] listen in the config
    // file) and the sandbox serve many clients at once: multi-thread.
    let multi_thread = match &cli.command {
        Command::Serve(_) => serve_cfg.as_ref().is_some_and(|c| c.http.is_some()),
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
    let global = cli.global;
    let result: anyhow::Result<ExitCode> = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => {
                let cfg = match serve_cfg {
                    Some(cfg) => cfg,
                    None => Config::load(&args, &global)?,
                };
                airtable_mcp::server::run(cfg, args.0).await
            }
            Command::Sandbox(args) => airtable_mcp::sandbox::run_cli(args.0).await,
            Command::Auth(Lazy(AuthCommand::HttpToken(cmd))) => auth::cli::http_token(cmd).await,
            Command::Auth(cmd) => {
                let settings = auth_settings(&cmd.api_args(), &global)?;
                auth::run_cli(cmd.0, settings).await
            }
            Command::Doctor(args) => {
                auth::doctor::run(auth_settings(&args.api, &global).map_err(Into::into)).await
            }
            Command::Setup(args) => auth::setup::run(args.0).await,
            Command::Tools(cmd) => airtable_mcp::server::run_tools_command(cmd.0).await,
            Command::Writes(cmd) => airtable_mcp::server::writes::run(cmd.0, &global).await,
            Command::Import(args) => airtable_mcp::server::import::run(args.0, &global).await,
            Command::Health(args) => airtable_mcp::server::http::health(args.0).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("airtable-mcp: {}", report(&e));
            ExitCode::FAILURE
        }
    }
}

/// The validated configuration, as the auth commands take it.
fn auth_settings(api: &ApiArgs, global: &GlobalArgs) -> Result<Settings, ConfigError> {
    let c = Config::load_api(api, global)?;
    Ok(Settings {
        profile: c.profile,
        api_url: c.api_url,
        request_timeout: c.request_timeout,
        rate_limit_per_base: c.rate_limit_per_base,
        rate_limit_per_token: c.rate_limit_per_token,
        max_retries: c.max_retries,
        bases: c.bases.map(|b| b.iter().cloned().collect()),
        config_file: c.config_file,
    })
}

/// An error and its causes on one line; a cause whose text the line already holds is not
/// repeated (most messages here already name their cause).
fn report(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
