//! Tokens: the OS keyring, resolution order, and the CLI around them.
//!
//! Resolution order for the Airtable token ([`resolve_token`]): the env vars of
//! [`env::TOKEN_ENV_VARS`] (`AIRTABLE_API_KEY`, `AIRTABLE_TOKEN`, `AIRTABLE_PAT`), then the
//! profile's entry in the OS keyring ([`keyring`]), then an [`AuthError::NoToken`] whose message
//! names the command that fixes it. A token is never accepted on the command line.
//!
//! This module reads no configuration: the commands take a [`Settings`] (the caller builds it
//! from the validated `config::Config`), and profile names are [`Profile`]s, shared with the
//! configuration through [`crate::profile`].

pub mod cli;
pub mod doctor;
pub mod keyring;
pub mod oauth;
pub mod setup;
pub mod whoami;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::airtable::BaseId;
use crate::cli::AuthCommand;
use crate::env;

pub use crate::profile::{DEFAULT_PROFILE, Profile, ProfileError};
pub use keyring::{Backend, KeyringCause};

/// What the auth commands (`auth`, `doctor`) need from the configuration. The caller fills it
/// from the validated configuration; nothing here parses flags, env or files.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The keyring profile.
    pub profile: Profile,
    /// The Airtable API base URL.
    pub api_url: Url,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// Requests per second per base.
    pub rate_limit_per_base: u32,
    /// Requests per second per token.
    pub rate_limit_per_token: u32,
    /// Retries of one request (one-shot CLI checks use at most one).
    pub max_retries: u32,
    /// Bases the server may touch (`doctor` reads one of them); `None` = any.
    pub bases: Option<Vec<BaseId>>,
    /// The configuration file that was read (`doctor` names it).
    pub config_file: Option<PathBuf>,
}

impl Settings {
    /// Defaults for `api_url` (for tests and embedding).
    pub fn new(profile: Profile, api_url: Url) -> Settings {
        Settings {
            profile,
            api_url,
            request_timeout: Duration::from_secs(30),
            rate_limit_per_base: 5,
            rate_limit_per_token: 50,
            max_retries: 5,
            bases: None,
            config_file: None,
        }
    }
}

/// Errors of the auth layer. Messages never contain a token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token in the environment nor in the keyring.
    #[error("{0}")]
    NoToken(String),
    /// No keyring can be used on this machine (or it is disabled).
    #[error("{0}")]
    KeyringUnavailable(String),
    /// `AIRTABLE_MCP_KEYRING` holds something we do not know.
    #[error("{0}")]
    KeyringConfig(String),
    /// A keyring call failed.
    #[error("keyring ({backend}) could not {op}: {source}")]
    Keyring {
        backend: Backend,
        op: &'static str,
        #[source]
        source: KeyringCause,
    },
    /// The keyring probe read back something else than it wrote.
    #[error(
        "keyring ({backend}) is unreliable: the probe entry read back differs from what was written"
    )]
    KeyringMismatch { backend: Backend },
    /// A profile name we refuse.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A token that cannot be right (empty, spaces inside...). The token itself is not shown.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// Reading the token from the terminal or stdin failed.
    #[error("could not read the token: {0}")]
    Read(#[source] std::io::Error),
    /// Airtable (or the sandbox) refused or could not be reached; the message ends with a hint.
    #[error("{source}. {}", source.hint())]
    Api {
        #[source]
        source: crate::airtable::Error,
    },
    /// An MCP client's config file we cannot read, parse or write.
    #[error("{path}: {reason}")]
    ClientConfig {
        path: std::path::PathBuf,
        reason: String,
    },
    /// A keyring task panicked or was cancelled.
    #[error("internal error: the keyring task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// `auth login --oauth` failed (the message says why and what to do).
    #[error("{0}")]
    OAuthLogin(String),
    /// The OAuth token endpoint could not be reached.
    #[error("could not reach the OAuth token endpoint: {0}")]
    OAuthHttp(#[source] reqwest::Error),
    /// The OAuth token endpoint refused (`{"error","error_description"}`).
    #[error("the OAuth token endpoint answered {status} {error}: {description}")]
    OAuthRefused {
        status: u16,
        error: String,
        description: String,
    },
    /// The stored OAuth grant cannot be used any more (the message names the fix).
    #[error("{0}")]
    GrantLost(String),
    /// The platform lacks something (no source error to keep).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Where a resolved token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// An environment variable (its name).
    Env(&'static str),
    /// The OS keyring.
    Keyring { backend: Backend, profile: String },
    /// An OAuth grant in the OS keyring (`auth login --oauth`).
    OAuth { backend: Backend, profile: String },
}

impl std::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Env(name) => write!(f, "environment variable {name}"),
            TokenSource::Keyring { backend, profile } => {
                write!(f, "keyring profile {profile:?} in the {backend}")
            }
            TokenSource::OAuth { backend, profile } => {
                write!(
                    f,
                    "OAuth grant of keyring profile {profile:?} in the {backend}"
                )
            }
        }
    }
}

/// A token and where it came from.
#[derive(Clone)]
pub struct ResolvedToken {
    pub secret: SecretString,
    pub source: TokenSource,
}

impl std::fmt::Debug for ResolvedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedToken")
            .field("secret", &mask(self.secret.expose_secret()))
            .field("source", &self.source)
            .finish()
    }
}

static PREPARED: OnceLock<Result<(), String>> = OnceLock::new();

/// Process-wide preparation that must run before any thread exists: on Linux, make sure the
/// process has its own session keyring (the kernel keyring is per-thread credential state, and
/// a process started by a service manager or an MCP host often has none it may write to).
/// Never fails: problems surface when the keyring is used (`doctor` reports them).
pub fn prepare_process() {
    PREPARED.get_or_init(|| {
        #[cfg(target_os = "linux")]
        {
            use linux_keyutils::{KeyRing, KeyRingIdentifier};
            KeyRing::from_special_id(KeyRingIdentifier::Session, true)
                .map(|_| ())
                .map_err(|e| format!("cannot join a session keyring: {e:?}"))
        }
        #[cfg(not(target_os = "linux"))]
        {
            Ok(())
        }
    });
}

/// What [`prepare_process`] achieved (`None` when it was not called).
pub fn prepare_outcome() -> Option<Result<(), String>> {
    PREPARED.get().cloned()
}

/// The command that stores a token for `profile`.
pub fn login_command(profile: &str) -> String {
    if profile == DEFAULT_PROFILE {
        "airtable-mcp auth login".to_owned()
    } else {
        format!("airtable-mcp auth login --profile {profile}")
    }
}

/// The token from the environment, if one of [`env::TOKEN_ENV_VARS`] is set and not blank.
pub fn token_from_env() -> Option<ResolvedToken> {
    env::TOKEN_ENV_VARS.iter().find_map(|&name| {
        let v = std::env::var(name).ok()?;
        let v = v.trim();
        if v.is_empty() {
            return None;
        }
        Some(ResolvedToken {
            secret: SecretString::from(v.to_owned()),
            source: TokenSource::Env(name),
        })
    })
}

/// Blocking form of [`resolve_token`] (do not call on an async runtime thread).
pub fn resolve_token_blocking(profile: &Profile) -> Result<ResolvedToken, AuthError> {
    if let Some(t) = token_from_env() {
        return Ok(t);
    }
    let fix = format!(
        "run `{}` to store one in the OS keyring, or set {} in the environment of the MCP client",
        login_command(profile),
        env::AIRTABLE_API_KEY
    );
    match keyring::load(profile) {
        // An OAuth grant: the blocking form returns its access token as stored (no refresh).
        Ok(Some((secret, backend))) if oauth::Grant::parse(&secret).is_some() => {
            let access = oauth::Grant::parse(&secret)
                .map(|g| g.access_token)
                .unwrap_or_default();
            Ok(ResolvedToken {
                secret: SecretString::from(access),
                source: TokenSource::OAuth {
                    backend,
                    profile: profile.to_string(),
                },
            })
        }
        Ok(Some((secret, backend))) => Ok(ResolvedToken {
            secret,
            source: TokenSource::Keyring {
                backend,
                profile: profile.to_string(),
            },
        }),
        Ok(None) => Err(AuthError::NoToken(format!(
            "no Airtable token: {} is not set and the keyring holds none for profile {profile:?}; {fix}",
            env::AIRTABLE_API_KEY
        ))),
        Err(e) => Err(AuthError::NoToken(format!(
            "no Airtable token: {} is not set and the keyring cannot be read ({e}); {fix}",
            env::AIRTABLE_API_KEY
        ))),
    }
}

/// The Airtable token for `profile`: env (`AIRTABLE_API_KEY`, `AIRTABLE_TOKEN`, `AIRTABLE_PAT`),
/// then the keyring, then an error naming `airtable-mcp auth login`. Keyring calls run on the
/// blocking pool.
pub async fn resolve_token(profile: &Profile) -> Result<ResolvedToken, AuthError> {
    if let Some(t) = token_from_env() {
        return Ok(t);
    }
    let p = profile.clone();
    let resolved = blocking(move || resolve_token_blocking(&p)).await?;
    let TokenSource::OAuth { .. } = resolved.source else {
        return Ok(resolved);
    };
    // An OAuth grant: its access token, refreshed (and stored) first when close to expiry.
    let grant = oauth::load_grant(profile)
        .await?
        .ok_or_else(|| AuthError::Internal("the stored OAuth grant vanished".to_owned()))?;
    let source = oauth::OAuthTokenSource::new(profile.clone(), grant)?;
    Ok(ResolvedToken {
        secret: source.access_token().await?,
        source: resolved.source,
    })
}

/// Run a blocking keyring call on the blocking pool.
pub async fn blocking<T, F>(f: F) -> Result<T, AuthError>
where
    F: FnOnce() -> Result<T, AuthError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(AuthError::Task)?
}

/// A token shown safely: a known `pat` prefix and at most the last 4 characters.
pub fn mask(token: &str) -> String {
    let chars: Vec<char> = token.chars().collect();
    let prefix = if token.starts_with("pat") { "pat" } else { "" };
    let tail: String = if chars.len() >= 12 {
        chars[chars.len() - 4..].iter().collect()
    } else {
        String::new()
    };
    format!("{prefix}…{tail}")
}

/// Check a token typed or piped in, after trimming: non-empty, printable, no whitespace inside.
pub fn check_token_shape(token: &str) -> Result<(), AuthError> {
    if token.is_empty() {
        return Err(AuthError::InvalidToken("it is empty".to_owned()));
    }
    if token.len() > 1024 {
        return Err(AuthError::InvalidToken(
            "it is longer than 1024 characters".to_owned(),
        ));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AuthError::InvalidToken(
            "it contains spaces or control characters (paste only the token)".to_owned(),
        ));
    }
    Ok(())
}

/// `airtable-mcp auth ...` with the settings of its profile and API.
pub async fn run_cli(cmd: AuthCommand, settings: Settings) -> anyhow::Result<ExitCode> {
    cli::run(cmd, settings).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_show_at_most_four_chars() {
        let t = "patAbCdEfGhIjKlMn.0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(mask(t), "pat…cdef");
        assert_eq!(mask("sandbox-token"), "…oken");
        assert_eq!(mask("short"), "…");
        assert_eq!(mask(""), "…");
    }

    #[test]
    fn token_shapes() {
        check_token_shape("patX.y").unwrap();
        assert!(check_token_shape("").is_err());
        assert!(check_token_shape("a b").is_err());
        assert!(check_token_shape(&"a".repeat(2000)).is_err());
    }

    #[test]
    fn login_command_names_the_profile() {
        assert_eq!(login_command("default"), "airtable-mcp auth login");
        assert_eq!(
            login_command("work"),
            "airtable-mcp auth login --profile work"
        );
    }

    #[test]
    fn debug_of_a_resolved_token_hides_it() {
        let t = ResolvedToken {
            secret: SecretString::from("patSECRETSECRET.abcdefgh".to_owned()),
            source: TokenSource::Env("AIRTABLE_API_KEY"),
        };
        let s = format!("{t:?}");
        assert!(!s.contains("SECRET"), "{s}");
    }
}
