//! `airtable-mcp auth login | status | logout`.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use super::{AuthError, Settings, TokenSource, blocking, check_token_shape, keyring, mask, whoami};
use crate::cli::{AuthCommand, HttpTokenCommand};
use crate::env;

/// Dispatch `auth` subcommands (`settings` come from the subcommand's `--profile`/API flags
/// layered with env and the config file; `http-token` does not use them).
pub async fn run(cmd: AuthCommand, settings: Settings) -> anyhow::Result<ExitCode> {
    match cmd {
        AuthCommand::Login { oauth, .. } if oauth.oauth => {
            let Some(client_id) = oauth.client_id.clone() else {
                anyhow::bail!(
                    "--oauth needs --client-id ID (your Airtable integration's client ID; the sandbox's is sandbox-client)"
                );
            };
            super::oauth::login(
                &settings,
                super::oauth::LoginOptions {
                    client_id,
                    scopes: oauth
                        .scope
                        .clone()
                        .unwrap_or_else(|| super::oauth::DEFAULT_SCOPES.to_owned()),
                    redirect_port: oauth.redirect_port,
                    no_browser: oauth.no_browser,
                    oauth_url: oauth.oauth_url.clone(),
                    timeout: std::time::Duration::from_secs(oauth.login_timeout.max(1)),
                },
            )
            .await
        }
        AuthCommand::Login { stdin, .. } => login(stdin, &settings).await,
        AuthCommand::Status { .. } => status(&settings).await,
        AuthCommand::Logout { .. } => logout(&settings).await,
        AuthCommand::HttpToken(cmd) => http_token(cmd).await,
    }
}

/// Shortest bearer token accepted for the HTTP transport.
pub const MIN_HTTP_TOKEN_LEN: usize = 16;

/// `airtable-mcp auth http-token ...` (needs no configuration).
pub async fn http_token(cmd: HttpTokenCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        HttpTokenCommand::Add { generate, stdin } => {
            let (token, generated) = if generate {
                let bytes: [u8; 32] = rand::random();
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                (SecretString::from(hex), true)
            } else {
                let t = tokio::task::spawn_blocking(move || read_secret(stdin, HTTP_PROMPT))
                    .await
                    .context("reading the token")??;
                (t, false)
            };
            if token.expose_secret().chars().count() < MIN_HTTP_TOKEN_LEN {
                anyhow::bail!(
                    "invalid token: an HTTP bearer token needs at least {MIN_HTTP_TOKEN_LEN} characters"
                );
            }
            let t = token.clone();
            let (backend, count) = blocking(move || {
                let mut all = keyring::load_http_auth_tokens()?;
                if !all.iter().any(|x| x.expose_secret() == t.expose_secret()) {
                    all.push(t);
                }
                let n = all.len();
                keyring::store_http_auth_tokens(&all).map(|b| (b, n))
            })
            .await?;
            if generated {
                // Shown once, on stdout, for the person who asked for it; never logged.
                println!("{}", token.expose_secret());
                eprintln!(
                    "New bearer token above (keep it: it is not shown again). Clients send \
                     `Authorization: Bearer <token>`."
                );
            }
            eprintln!("{count} HTTP bearer token(s) stored in the {backend}.");
            Ok(ExitCode::SUCCESS)
        }
        HttpTokenCommand::List => {
            let tokens = blocking(keyring::load_http_auth_tokens).await?;
            if tokens.is_empty() {
                println!("No HTTP bearer token is stored in the keyring.");
            }
            for t in &tokens {
                println!("{}", mask(t.expose_secret()));
            }
            Ok(ExitCode::SUCCESS)
        }
        HttpTokenCommand::Clear => {
            let removed = blocking(keyring::delete_http_auth_tokens).await?;
            println!(
                "{}",
                if removed {
                    "Removed the HTTP bearer tokens from the keyring."
                } else {
                    "No HTTP bearer token was stored."
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

const PAT_PROMPT: &str = "Airtable personal access token (input hidden): ";
const HTTP_PROMPT: &str = "HTTP bearer token (input hidden): ";

fn read_token(from_stdin: bool) -> Result<SecretString, AuthError> {
    if !from_stdin {
        eprintln!(
            "Create a personal access token at https://airtable.com/create/tokens with the scopes \
             data.records:read, data.records:write, schema.bases:read (and schema.bases:write, \
             data.recordComments:read/write if you want those tools) and access to your bases."
        );
    }
    read_secret(from_stdin, PAT_PROMPT)
}

/// A secret from stdin (all of it) or a hidden prompt on the terminal; trimmed and checked.
fn read_secret(from_stdin: bool, prompt: &str) -> Result<SecretString, AuthError> {
    let raw = if from_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(AuthError::Read)?;
        s
    } else {
        if !std::io::stdin().is_terminal() && !std::io::stderr().is_terminal() {
            return Err(AuthError::InvalidToken(
                "no terminal to prompt on; pipe the token in with --stdin".to_owned(),
            ));
        }
        rpassword::prompt_password(prompt).map_err(AuthError::Read)?
    };
    let token = raw.trim();
    check_token_shape(token)?;
    Ok(SecretString::from(token.to_owned()))
}

async fn login(from_stdin: bool, config: &Settings) -> anyhow::Result<ExitCode> {
    let profile = config.profile.clone();
    let token = tokio::task::spawn_blocking(move || read_token(from_stdin))
        .await
        .context("reading the token")??;

    let who = whoami::whoami(config, &token)
        .await
        .map_err(|e| anyhow::anyhow!("the token was not stored: {e}"))?;

    let stored = token.clone();
    let p = profile.clone();
    let backend = blocking(move || keyring::store(&p, &stored))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{e}\nThe token is valid but could not be stored; set {} in the environment of \
                 your MCP client instead.",
                env::AIRTABLE_API_KEY
            )
        })?;

    println!("Logged in as {}.", who.describe_user());
    println!(
        "Token {} stored for profile {profile:?} in the {backend}.",
        mask(token.expose_secret())
    );
    println!("Scopes: {}", who.describe_scopes());
    for warning in who.missing_scope_warnings() {
        println!("warning: {warning}");
    }
    if backend == keyring::Backend::Keyutils {
        println!(
            "note: the kernel keyring keeps the token until reboot (or 3 days unused); run \
             `airtable-mcp auth login` again after a reboot, or set {}.",
            env::AIRTABLE_API_KEY
        );
    }
    if let Some(TokenSource::Env(name)) = super::token_from_env().map(|t| t.source) {
        println!("note: {name} is set in this environment and takes precedence over the keyring.");
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(config: &Settings) -> anyhow::Result<ExitCode> {
    println!("Profile: {}", config.profile);
    println!("API:     {}", config.api_url);
    let resolved = match super::resolve_token(&config.profile).await {
        Ok(r) => r,
        Err(e) => {
            println!("Token:   none");
            eprintln!("airtable-mcp: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("Source:  {}", resolved.source);
    println!("Token:   {}", mask(resolved.secret.expose_secret()));
    if let super::TokenSource::OAuth { .. } = resolved.source
        && let Ok(Some(g)) = super::oauth::load_grant(&config.profile).await
    {
        println!("Auth:    OAuth (client {})", g.client_id);
        println!("Granted: {}", g.scopes.join(" "));
        println!(
            "Access:  expires {}",
            super::oauth::show_ms(g.expires_at_ms)
        );
        println!(
            "Refresh: expires {}",
            super::oauth::show_ms(g.refresh_expires_at_ms)
        );
    } else {
        println!("Auth:    personal access token");
    }
    match whoami::whoami(config, &resolved.secret).await {
        Ok(who) => {
            println!("User:    {}", who.describe_user());
            println!("Scopes:  {}", who.describe_scopes());
            for warning in who.missing_scope_warnings() {
                println!("warning: {warning}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("User:    unknown");
            eprintln!("airtable-mcp: the token could not be verified: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn logout(config: &Settings) -> anyhow::Result<ExitCode> {
    let profile = config.profile.clone();
    let p = profile.clone();
    let removed = blocking(move || keyring::delete(&p)).await?;
    if removed {
        println!("Removed the token of profile {profile:?} from the OS keyring.");
    } else {
        println!("No token was stored for profile {profile:?}.");
    }
    if let Some(TokenSource::Env(name)) = super::token_from_env().map(|t| t.source) {
        println!("note: {name} is still set in this environment and will still be used.");
    }
    Ok(ExitCode::SUCCESS)
}
