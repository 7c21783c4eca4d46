//! `airtable-mcp writes list|undo`: the write journal from a terminal.
//!
//! Uses the token `serve` would use (env, then keyring) and the same journal file, so it sees
//! the writes the stdio server made with that token (the journal is scoped by the token's
//! fingerprint). The person typing `writes undo ID` confirms it; `--dry-run` shows the plan.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use crate::airtable::Client;
use crate::cli::{GlobalArgs, WritesCommand};
use crate::config::Config;
use crate::server::{ServerError, client_config, resolve_token};
use crate::tools::{AirtableServer, ServerOptions, ServerState};

/// Run `writes list` or `writes undo`.
pub async fn run(cmd: WritesCommand, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let (api, journal) = cmd.options();
    let cfg = Config::load_writes(api, journal, global)?;
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
    match cmd {
        WritesCommand::List(a) => {
            let v = server
                .journal_list(a.base.as_deref(), a.limit)
                .await
                .context("cannot list the writes")?;
            if a.json {
                println!("{v}");
            } else {
                print!("{}", list_table(&v));
            }
            Ok(ExitCode::SUCCESS)
        }
        WritesCommand::Undo(a) => {
            let v = server
                .journal_undo(&a.id, a.dry_run, a.force)
                .await
                .with_context(|| format!("cannot undo {}", a.id))?;
            if a.json {
                println!("{v}");
            } else {
                print!("{}", undo_text(&v));
            }
            let applied = v["applied"].as_bool().unwrap_or(false);
            Ok(if applied || a.dry_run {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The writes as a table for people.
fn list_table(v: &Value) -> String {
    let writes = v["writes"].as_array().cloned().unwrap_or_default();
    if writes.is_empty() {
        return "No journaled writes for this token.\n".to_owned();
    }
    let mut rows = vec![[
        "ID".to_owned(),
        "AT".to_owned(),
        "TOOL".to_owned(),
        "TABLE".to_owned(),
        "RECORDS".to_owned(),
        "STATE".to_owned(),
        "SUMMARY".to_owned(),
    ]];
    for w in &writes {
        let state = if w["pending"].as_bool() == Some(true) {
            "pending".to_owned()
        } else if !w["undone_by"].is_null() {
            format!("undone by {}", s(&w["undone_by"]))
        } else if !w["undo_of"].is_null() {
            format!("undo of {}", s(&w["undo_of"]))
        } else if w["complete"].as_bool() == Some(false) {
            "partial".to_owned()
        } else {
            "done".to_owned()
        };
        let table = match s(&w["table_name"]) {
            t if t.is_empty() => s(&w["base_id"]),
            t => format!("{}/{t}", s(&w["base_id"])),
        };
        rows.push([
            s(&w["id"]),
            s(&w["at"]),
            s(&w["tool"]),
            table,
            s(&w["record_count"]),
            state,
            s(&w["summary"]),
        ]);
    }
    let mut width = [0usize; 7];
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// An undo's result for people.
fn undo_text(v: &Value) -> String {
    let mut out = format!("{}\n", s(&v["note"]));
    let list = |key: &str| v[key].as_array().cloned().unwrap_or_default();
    for r in list("restored") {
        let new = match s(&r["new_id"]) {
            n if n.is_empty() => String::new(),
            n => format!(" -> {n}"),
        };
        let label = match s(&r["label"]) {
            l if l.is_empty() => String::new(),
            l => format!(" ({l})"),
        };
        let fields: Vec<String> = r["fields"]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default();
        let fields = if fields.is_empty() {
            String::new()
        } else {
            format!(": {}", fields.join(", "))
        };
        out.push_str(&format!(
            "  {:<15} {}{new}{label}{fields}\n",
            s(&r["action"]),
            s(&r["id"])
        ));
    }
    let conflicts = list("conflicts");
    if !conflicts.is_empty() {
        out.push_str("Conflicts (changed after the write; --force overwrites):\n");
        for c in conflicts {
            out.push_str(&format!(
                "  {} {}: written {}, now {}\n",
                s(&c["id"]),
                s(&c["field"]),
                c["written"],
                c["current"]
            ));
        }
    }
    let nr = list("not_restorable");
    if !nr.is_empty() {
        out.push_str("Not restorable:\n");
        for n in nr {
            out.push_str(&format!("  {}: {}\n", s(&n["id"]), s(&n["reason"])));
        }
    }
    out.push_str(&format!("Airtable requests: {}\n", s(&v["requests"])));
    out
}
