//! `airtable-mcp doctor`: one line per check, passed or failed, with the fix.
//!
//! Essential checks (the exit code is 1 when one fails): the configuration loads, a token is
//! found, the API answers, the token is valid, read scopes, a listed base is readable.
//! Informational checks (warnings only): write scopes, the keyring when the token comes from the
//! environment, the MCP client config files.

use std::process::ExitCode;

use secrecy::SecretString;

use super::whoami::{self, Identity, READ_SCOPES, WRITE_SCOPES};
use super::{Settings, TokenSource, keyring, mask};
use crate::airtable::{self, ListQuery};
use crate::cli::SetupClient;
use crate::env;

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    /// Not fatal, but worth fixing.
    Warn,
    /// Not applicable / not checked.
    Skip,
}

impl Status {
    fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✓",
            Status::Fail => "✗",
            Status::Warn => "!",
            Status::Skip => "-",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do (shown for failures and warnings).
    pub fix: Option<String>,
    /// Whether a failure makes `doctor` exit non-zero.
    pub essential: bool,
}

impl Check {
    fn new(name: &'static str, status: Status, detail: impl Into<String>) -> Check {
        Check {
            name,
            status,
            detail: detail.into(),
            fix: None,
            essential: true,
        }
    }
    fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
    fn optional(mut self) -> Check {
        self.essential = false;
        self
    }

    /// The printed line(s).
    pub fn render(&self) -> String {
        let mut s = format!("{} {}: {}", self.status.mark(), self.name, self.detail);
        if let (Some(fix), Status::Fail | Status::Warn) = (&self.fix, self.status) {
            s.push_str(&format!("\n    fix: {fix}"));
        }
        s
    }
}

/// Run every check; the caller prints them. `config` is the outcome of loading the
/// configuration (its error is the first failed check).
pub async fn checks(config: Result<Settings, anyhow::Error>) -> Vec<Check> {
    let mut out = Vec::new();
    let config = match config {
        Ok(c) => {
            let where_ = c
                .config_file
                .as_ref()
                .map(|p| format!("file {}", p.display()))
                .unwrap_or_else(|| "no config file (defaults, flags and env)".to_owned());
            out.push(Check::new(
                "configuration",
                Status::Pass,
                format!("{where_}; API {}; profile {}", c.api_url, c.profile),
            ));
            c
        }
        Err(e) => {
            out.push(
                Check::new("configuration", Status::Fail, e.to_string())
                    .fix("correct the setting named above (flag, env var or config file)"),
            );
            out.extend(keyring_check(false).await);
            out.extend(client_config_checks());
            return out;
        }
    };

    let resolved = super::resolve_token(&config.profile).await;
    let token: Option<SecretString> = match resolved {
        Ok(r) => {
            out.push(Check::new(
                "token found",
                Status::Pass,
                format!(
                    "{} from {}",
                    mask(secrecy::ExposeSecret::expose_secret(&r.secret)),
                    r.source
                ),
            ));
            let from_env = matches!(r.source, TokenSource::Env(_));
            if let TokenSource::OAuth { .. } = r.source {
                out.push(grant_check(&config).await);
            }
            out.extend(keyring_check(from_env).await);
            Some(r.secret)
        }
        Err(e) => {
            out.push(Check::new("token found", Status::Fail, e.to_string()));
            out.extend(keyring_check(false).await);
            None
        }
    };

    match token {
        Some(token) => out.extend(api_checks(&config, &token).await),
        None => {
            for name in [
                "API reachable",
                "token valid",
                "read scopes",
                "write scopes",
                "base readable",
            ] {
                out.push(Check::new(name, Status::Skip, "skipped: no token").optional());
            }
        }
    }
    out.extend(client_config_checks());
    out
}

/// The OAuth grant (reached only when `resolve_token` could use it, refreshing it if needed):
/// its client, scopes and expiries; a warning when the refresh token expires within 7 days.
async fn grant_check(config: &Settings) -> Check {
    let fix = format!(
        "run `airtable-mcp auth login --oauth --profile {}` to sign in again",
        config.profile
    );
    match super::oauth::load_grant(&config.profile).await {
        Ok(Some(g)) => {
            let left_days = (g.refresh_expires_at_ms - super::oauth::now_ms()) / 86_400_000;
            let detail = format!(
                "client {}; scopes {}; access token expires {}; refreshable until {}",
                g.client_id,
                g.scopes.join(" "),
                super::oauth::show_ms(g.expires_at_ms),
                super::oauth::show_ms(g.refresh_expires_at_ms)
            );
            if left_days < 7 {
                Check::new("OAuth grant", Status::Warn, format!("{detail} (less than 7 days left; each refresh restarts the 60 days, so it only runs out when unused)"))
                    .fix(fix)
            } else {
                Check::new("OAuth grant", Status::Pass, detail)
            }
        }
        Ok(None) => Check::new(
            "OAuth grant",
            Status::Fail,
            "the grant vanished from the keyring",
        )
        .fix(fix),
        Err(e) => Check::new("OAuth grant", Status::Fail, e.to_string()).fix(fix),
    }
}

async fn keyring_check(token_from_env: bool) -> Vec<Check> {
    let res = tokio::task::spawn_blocking(|| -> Result<keyring::Backend, String> {
        match keyring::Preference::from_env().map_err(|e| e.to_string())? {
            keyring::Preference::Disabled => {
                Err(format!("disabled by {}=none", env::AIRTABLE_MCP_KEYRING))
            }
            keyring::Preference::Force(b) => {
                let k = keyring::Keyring::open(b).map_err(|e| e.to_string())?;
                k.probe().map_err(|e| e.to_string())?;
                Ok(b)
            }
            keyring::Preference::Auto => {
                let (found, attempts) = keyring::probe_all();
                match found {
                    Some(k) => Ok(k.backend()),
                    None => Err(attempts
                        .iter()
                        .map(|a| {
                            format!(
                                "{}: {}",
                                a.backend.name(),
                                a.error.as_deref().unwrap_or("usable")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ")),
                }
            }
        }
    })
    .await
    .unwrap_or_else(|e| Err(format!("probe task failed: {e}")));
    let c = match res {
        Ok(backend) => {
            let mut c = Check::new(
                "keyring usable",
                Status::Pass,
                format!("{backend} (write, read and delete of a probe entry worked)"),
            );
            if backend == keyring::Backend::Keyutils {
                c = Check::new(
                    "keyring usable",
                    Status::Warn,
                    format!("{backend}: works, but keeps tokens only until reboot or 3 idle days"),
                )
                .fix(
                    "the kernel keyring forgets the token at reboot; run `airtable-mcp auth login` \
                     again after one, or start a Secret Service (gnome-keyring, KeePassXC)",
                );
            }
            c
        }
        Err(reason) => {
            let c = Check::new("keyring usable", Status::Fail, reason).fix(format!(
                "unlock or start a Secret Service (e.g. gnome-keyring) or unset {}; \
                 or keep the token in {} instead",
                env::AIRTABLE_MCP_KEYRING,
                env::AIRTABLE_API_KEY
            ));
            if token_from_env { c.optional() } else { c }
        }
    };
    vec![c.optional_if(token_from_env)]
}

impl Check {
    fn optional_if(self, cond: bool) -> Check {
        if cond { self.optional() } else { self }
    }
}

async fn api_checks(config: &Settings, token: &SecretString) -> Vec<Check> {
    let mut out = Vec::new();
    let client = match whoami::client(config, token) {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::new("API reachable", Status::Fail, e.to_string()));
            return out;
        }
    };
    let who = match client.whoami().await {
        Ok(w) => {
            out.push(Check::new(
                "API reachable",
                Status::Pass,
                format!("{} answers", config.api_url),
            ));
            let id = Identity {
                id: w.id.to_string(),
                email: w.email,
                scopes: w.scopes,
            };
            out.push(Check::new(
                "token valid",
                Status::Pass,
                format!("belongs to {}", id.describe_user()),
            ));
            id
        }
        Err(e) => {
            let unreachable = matches!(
                e,
                airtable::Error::Transport { .. } | airtable::Error::Timeout(_)
            );
            if unreachable {
                out.push(Check::new("API reachable", Status::Fail, e.to_string()).fix(e.hint()));
                out.push(Check::new(
                    "token valid",
                    Status::Skip,
                    "skipped: no answer",
                ));
            } else {
                out.push(Check::new(
                    "API reachable",
                    Status::Pass,
                    format!("{} answers", config.api_url),
                ));
                out.push(
                    Check::new("token valid", Status::Fail, e.to_string()).fix(format!(
                        "{} Then run `{}`.",
                        e.hint(),
                        super::login_command(&config.profile)
                    )),
                );
            }
            for name in ["read scopes", "write scopes", "base readable"] {
                out.push(Check::new(name, Status::Skip, "skipped").optional());
            }
            return out;
        }
    };

    // Bases: list them and read one (schema + one record).
    let bases = client.list_bases().await;
    let base_check = match &bases {
        Ok(list) if list.is_empty() => {
            Check::new("base readable", Status::Fail, "the token sees no base")
                .fix("add bases to the token's access list at https://airtable.com/create/tokens")
        }
        Ok(list) => {
            let wanted = config.bases.as_ref();
            let base = list
                .iter()
                .find(|b| wanted.is_none_or(|w| w.contains(&b.id)))
                .unwrap_or(&list[0]);
            match client.base_schema(&base.id).await {
                Ok(schema) => match schema.tables.first() {
                    Some(table) => {
                        let q = ListQuery {
                            page_size: Some(1),
                            max_records: Some(1),
                            ..ListQuery::default()
                        };
                        match client
                            .list_records_page(&base.id, table.id.as_ref(), &q)
                            .await
                        {
                            Ok(_) => Check::new(
                                "base readable",
                                Status::Pass,
                                format!(
                                    "{} ({}) of {} listed: schema and records of {:?} read",
                                    base.id,
                                    base.name,
                                    list.len(),
                                    table.name
                                ),
                            ),
                            Err(e) => Check::new(
                                "base readable",
                                Status::Fail,
                                format!("records of {} / {:?}: {e}", base.id, table.name),
                            )
                            .fix("give the token the data.records:read scope"),
                        }
                    }
                    None => Check::new(
                        "base readable",
                        Status::Pass,
                        format!("{} ({}) schema read; it has no table", base.id, base.name),
                    ),
                },
                Err(e) => Check::new(
                    "base readable",
                    Status::Fail,
                    format!("schema of {}: {e}", base.id),
                )
                .fix(e.hint()),
            }
        }
        Err(e) => Check::new("base readable", Status::Fail, format!("list bases: {e}"))
            .fix("give the token the schema.bases:read scope and access to a base"),
    };
    let base_ok = base_check.status == Status::Pass;

    // Scopes: from whoami when reported (OAuth tokens); else inferred from what worked.
    match who.missing(READ_SCOPES) {
        Some(m) if m.is_empty() => out.push(Check::new(
            "read scopes",
            Status::Pass,
            READ_SCOPES.join(", "),
        )),
        Some(m) => out.push(
            Check::new(
                "read scopes",
                Status::Fail,
                format!("missing {}", m.join(", ")),
            )
            .fix("add them at https://airtable.com/create/tokens"),
        ),
        None if base_ok => out.push(Check::new(
            "read scopes",
            Status::Pass,
            "not reported by Airtable; bases and records could be read",
        )),
        None => out.push(
            Check::new(
                "read scopes",
                Status::Fail,
                "not reported by Airtable, and reading a base failed",
            )
            .fix(format!(
                "give the token {} at https://airtable.com/create/tokens",
                READ_SCOPES.join(", ")
            )),
        ),
    }
    match who.missing(WRITE_SCOPES) {
        Some(m) if m.is_empty() => out.push(
            Check::new("write scopes", Status::Pass, WRITE_SCOPES.join(", ")).optional(),
        ),
        Some(m) => out.push(
            Check::new(
                "write scopes",
                Status::Warn,
                format!("missing {} (write tools will fail)", m.join(", ")),
            )
            .fix("add them at https://airtable.com/create/tokens, or run with --read-only")
            .optional(),
        ),
        None => out.push(
            Check::new(
                "write scopes",
                Status::Warn,
                "not reported by Airtable for personal access tokens; not tested (doctor never writes)",
            )
            .fix(format!(
                "make sure the token has {} if you want the write tools",
                WRITE_SCOPES.join(", ")
            ))
            .optional(),
        ),
    }
    out.push(base_check);
    out
}

/// One line per MCP client: its config file, and whether it runs airtable-mcp.
pub fn client_config_checks() -> Vec<Check> {
    SetupClient::ALL
        .iter()
        .map(|&client| {
            let name = client.display_name();
            let Some(path) = client.default_path() else {
                return Check::new("MCP client", Status::Skip, format!("{name}: no known path"))
                    .optional();
            };
            let setup = format!("airtable-mcp setup {}", client.cli_name());
            match super::setup::find_entry(client, &path) {
                None => Check::new(
                    "MCP client",
                    Status::Skip,
                    format!("{name}: no config at {}", path.display()),
                )
                .fix(setup)
                .optional(),
                Some(Ok(Some(entry))) => Check::new(
                    "MCP client",
                    Status::Pass,
                    format!("{name}: {} has entry {entry:?}", path.display()),
                )
                .optional(),
                Some(Ok(None)) => Check::new(
                    "MCP client",
                    Status::Warn,
                    format!("{name}: {} has no airtable-mcp entry", path.display()),
                )
                .fix(setup)
                .optional(),
                Some(Err(e)) => Check::new(
                    "MCP client",
                    Status::Warn,
                    format!("{name}: {}: {e}", path.display()),
                )
                .fix(format!("fix the file, then run `{setup}`"))
                .optional(),
            }
        })
        .collect()
}

/// `airtable-mcp doctor`, given the outcome of loading the configuration.
pub async fn run(config: Result<Settings, anyhow::Error>) -> anyhow::Result<ExitCode> {
    let results = checks(config).await;
    for c in &results {
        println!("{}", c.render());
    }
    let failed: Vec<&Check> = results
        .iter()
        .filter(|c| c.essential && c.status == Status::Fail)
        .collect();
    if failed.is_empty() {
        println!("\nAll essential checks passed.");
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "\n{} essential check(s) failed: {}.",
            failed.len(),
            failed.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
        );
        Ok(ExitCode::FAILURE)
    }
}
