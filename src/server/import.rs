//! `airtable-mcp import FILE --base B --table T`: the import_records tool from a terminal,
//! with the token and journal `serve` would use. A dry run (the plan, as JSON) unless
//! `--apply`; the person typing `--apply` is the confirmation.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;

use crate::airtable::Client;
use crate::cli::{GlobalArgs, ImportArgs};
use crate::config::Config;
use crate::server::{ServerError, client_config, resolve_token};
use crate::tools::{AirtableServer, ServerOptions, ServerState};

/// Run `import`.
pub async fn run(args: ImportArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let mut mapping = BTreeMap::new();
    for m in &args.map {
        let (col, field) = m
            .split_once('=')
            .with_context(|| format!("--map {m:?}: write COLUMN=FIELD"))?;
        mapping.insert(col.to_owned(), field.to_owned());
    }
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let cfg = Config::load_writes(&args.api, &args.journal, global)?;
    let token = resolve_token(&cfg.profile)
        .await
        .map_err(|p| anyhow::anyhow!("{p}"))?;
    let client = Client::new(client_config(&cfg, cfg.api_url.clone(), token))
        .map_err(ServerError::Client)?;
    let state = ServerState::new(Ok(client), ServerOptions::from_config(&cfg));
    if let Some(problem) = state.journal_problem() {
        return Err(ServerError::Journal(problem).into());
    }
    let server = AirtableServer::new(state);
    let v = server
        .import_file(
            bytes,
            &args.file.to_string_lossy(),
            &args.base,
            &args.table,
            args.format,
            args.sheet,
            args.keys,
            mapping,
            args.typecast,
            args.apply,
        )
        .await
        .with_context(|| format!("cannot import {}", args.file.display()))?;
    println!("{v:#}");
    let complete = v.get("not_written").is_none();
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
