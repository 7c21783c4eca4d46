//! Command-line interface: clap derive types only, raw values.
//!
//! Validation and layering (flags, then env, then the TOML config file) happen in
//! [`crate::config`]. No secret is ever accepted here: tokens come from the
//! environment, the keyring, a file or a prompt.

use std::path::PathBuf;

use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::env;

/// Airtable for LLM clients over the Model Context Protocol.
#[derive(Debug, Parser)]
#[command(name = "airtable-mcp", version, about, long_about = None, after_long_help = env_help())]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `serve` settings whose environment variable counts as unset when it is set but empty, as
/// (subcommand, argument id, variable). MCP hosts pass a setting the user left blank as an empty
/// string (Claude Desktop's .mcpb `user_config`, packaging/mcpb/manifest.json). The same value
/// given as a flag (`--bases ""`) is still refused.
pub const BLANK_ENV_IS_UNSET: &[(&str, &str, &str)] = &[
    ("serve", "toolsets", env::AIRTABLE_MCP_TOOLSETS),
    ("serve", "read_only", env::AIRTABLE_MCP_READ_ONLY),
    ("serve", "bases", env::AIRTABLE_MCP_BASES),
    ("serve", "export_dir", env::AIRTABLE_MCP_EXPORT_DIR),
];

/// Flags accepted by every subcommand.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Log filter (error, warn, info, debug, trace or a tracing EnvFilter). Logs go to stderr.
    #[arg(long, global = true, env = env::AIRTABLE_MCP_LOG)]
    pub log_level: Option<String>,

    /// Log format.
    #[arg(long, global = true, value_enum, env = env::AIRTABLE_MCP_LOG_FORMAT)]
    pub log_format: Option<LogFormat>,

    /// Let debug logs include MCP requests and results (record data). Off by default: no cell
    /// value is logged at any level.
    #[arg(long, global = true)]
    pub log_record_data: bool,

    /// TOML configuration file (default: the platform config dir, e.g. ~/.config/airtable-mcp/config.toml).
    #[arg(long, global = true, env = env::AIRTABLE_MCP_CONFIG)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// A switch given as `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnOff {
    #[default]
    On,
    Off,
}

// Parsed once per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the MCP server (stdio by default, or HTTP with --http).
    Serve(Lazy<ServeArgs>),
    /// Run the Airtable-compatible sandbox (the Web API on loopback, backed by SQLite).
    Sandbox(Lazy<SandboxArgs>),
    /// Store, inspect or remove the Airtable token in the OS keyring.
    #[command(subcommand)]
    Auth(Lazy<AuthCommand>),
    /// Check the token, scopes, API, keyring and MCP client configs, with a fix for each failure.
    Doctor(Lazy<DoctorArgs>),
    /// Add this server to an MCP client's config file (keeps everything else, writes a backup).
    Setup(Lazy<SetupArgs>),
    /// Inspect the tool catalogue (names, schemas).
    #[command(subcommand)]
    Tools(Lazy<ToolsCommand>),
    /// List or undo the writes journaled for the token (the same journal as `serve`).
    #[command(subcommand)]
    Writes(Lazy<WritesCommand>),
    /// Import a CSV, .xlsx or JSON file into a table (a dry run unless --apply).
    Import(Lazy<ImportArgs>),
    /// Probe a running HTTP server's /healthz (exit 0 when it answers 2xx): a container health
    /// check that needs no curl in the image.
    Health(Lazy<HealthArgs>),
}

/// A subcommand's arguments (or nested subcommands) that clap builds only when that subcommand
/// is the one given, or for help ([`clap::Command::defer`]): parsing `serve` does not build the
/// arguments of every other subcommand, which was most of the parse, itself a sixth of a cold
/// start. The value is the parsed `T` (`Deref`, or `.0`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lazy<T>(pub T);

impl<T> std::ops::Deref for Lazy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: FromArgMatches> FromArgMatches for Lazy<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Lazy)
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Lazy)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }

    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

/// How a [`Lazy`] subcommand's arguments are built when clap needs them.
pub trait Deferred {
    /// Add the arguments (or subcommands) to `cmd`.
    fn build(cmd: clap::Command) -> clap::Command;
}

/// [`Deferred::build`], keeping the subcommand's own description: built eagerly, the
/// arguments' type documents the subcommand first and the subcommand's doc comment then
/// overrides it; deferred, the arguments come last and must not.
fn build_keeping_about<T: Deferred>(cmd: clap::Command) -> clap::Command {
    let about = cmd.get_about().cloned();
    let long_about = cmd.get_long_about().cloned();
    let cmd = T::build(cmd);
    let cmd = match about {
        Some(a) => cmd.about(a),
        None => cmd.about(None::<&'static str>),
    };
    match long_about {
        Some(a) => cmd.long_about(a),
        None => cmd.long_about(None::<&'static str>),
    }
}

impl<T: Args + Deferred> Args for Lazy<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(build_keeping_about::<T>)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(build_keeping_about::<T>)
    }
}

impl<T: Subcommand + Deferred> Subcommand for Lazy<T> {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        cmd.defer(build_keeping_about::<T>)
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(build_keeping_about::<T>)
    }

    fn has_subcommand(name: &str) -> bool {
        T::has_subcommand(name)
    }
}

/// `Deferred` for types whose clap-derived builder is `<T as $trait>::$build`.
macro_rules! deferred {
    ($trait:ident :: $build:ident for $($t:ty),*) => {$(
        impl Deferred for $t {
            fn build(cmd: clap::Command) -> clap::Command {
                <$t as $trait>::$build(cmd)
            }
        }
    )*};
}
deferred!(Args::augment_args for SandboxArgs, DoctorArgs, SetupArgs, ImportArgs, HealthArgs);
deferred!(Subcommand::augment_subcommands for AuthCommand, ToolsCommand, WritesCommand);

/// `serve`'s arguments, without the environment bindings of the [`BLANK_ENV_IS_UNSET`]
/// variables that are set but empty in this process.
impl Deferred for ServeArgs {
    fn build(cmd: clap::Command) -> clap::Command {
        let mut cmd = <ServeArgs as Args>::augment_args(cmd);
        for &(_, id, var) in BLANK_ENV_IS_UNSET {
            if std::env::var_os(var).is_some_and(|v| v.is_empty()) {
                cmd = cmd.mut_arg(id, |a| a.env(None));
            }
        }
        cmd
    }
}

/// `airtable-mcp health`.
#[derive(Debug, Args, Clone)]
pub struct HealthArgs {
    /// URL to probe.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:8787/healthz"
    )]
    pub url: String,

    /// Seconds to wait for the answer.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub timeout: u64,
}

/// `airtable-mcp import`: the import_records tool from a terminal.
#[derive(Debug, Args, Clone, Default)]
pub struct ImportArgs {
    /// The file to import (CSV, .xlsx, JSON or JSON Lines).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Base ID (app...).
    #[arg(long, value_name = "BASE_ID")]
    pub base: String,

    /// Table ID or name.
    #[arg(long, value_name = "TABLE")]
    pub table: String,

    /// csv, xlsx, json or jsonl (default: from the file name, then the content).
    #[arg(long)]
    pub format: Option<String>,

    /// Excel sheet name or 1-based number (default: the first).
    #[arg(long)]
    pub sheet: Option<String>,

    /// Upsert on this field (repeatable): rows with a matching key update the record.
    #[arg(long = "key", value_name = "FIELD")]
    pub keys: Vec<String>,

    /// Send column COL to field FIELD (repeatable; FIELD empty skips the column).
    #[arg(long = "map", value_name = "COL=FIELD")]
    pub map: Vec<String>,

    /// Let Airtable create missing select options.
    #[arg(long)]
    pub typecast: bool,

    /// Write (default: print the plan and send nothing).
    #[arg(long)]
    pub apply: bool,

    #[command(flatten)]
    pub api: ApiArgs,

    #[command(flatten)]
    pub journal: JournalArgs,
}

/// Options shared by the commands that talk to Airtable.
#[derive(Debug, Args, Clone, Default)]
pub struct ApiArgs {
    /// Airtable API base URL.
    #[arg(long, env = env::AIRTABLE_API_URL)]
    pub api_url: Option<String>,

    /// Airtable content API URL, for attachment uploads (default https://content.airtable.com with the default API URL, else the API URL).
    #[arg(long, env = env::AIRTABLE_MCP_CONTENT_URL)]
    pub content_url: Option<String>,

    /// Keyring profile holding the token (default `default`; several can be kept: work, personal…).
    #[arg(long, env = env::AIRTABLE_MCP_PROFILE)]
    pub profile: Option<String>,

    /// Requests per second allowed per base (Airtable's limit is 5).
    #[arg(long, env = env::AIRTABLE_MCP_RATE_LIMIT_PER_BASE)]
    pub rate_limit_per_base: Option<u32>,

    /// Requests per second allowed per token (Airtable's limit is 50).
    #[arg(long, env = env::AIRTABLE_MCP_RATE_LIMIT_PER_TOKEN)]
    pub rate_limit_per_token: Option<u32>,

    /// Timeout of one Airtable request, in seconds.
    #[arg(long, env = env::AIRTABLE_MCP_REQUEST_TIMEOUT)]
    pub request_timeout: Option<u64>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    #[command(flatten)]
    pub api: ApiArgs,

    /// Serve over HTTP on ADDR (default 127.0.0.1:8787) instead of stdio.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = crate::config::DEFAULT_HTTP_ADDR)]
    pub http: Option<String>,

    /// Start an in-process sandbox seeded with the demo base and use it instead of api.airtable.com.
    #[arg(long)]
    pub sandbox: bool,

    /// Toolsets to expose: records, schema, analysis, transfer, comments, attachments, watch (comma-separated; default all). list_bases and list_tables are always exposed.
    #[arg(long, value_delimiter = ',', env = env::AIRTABLE_MCP_TOOLSETS)]
    pub toolsets: Option<Vec<String>>,

    /// Expose and allow read-only tools only.
    // The env var takes the usual spellings (1/0, true/false, yes/no, on/off), like the TOML bool.
    #[arg(long, env = env::AIRTABLE_MCP_READ_ONLY, value_parser = clap::builder::BoolishValueParser::new())]
    pub read_only: bool,

    /// Base IDs the server may touch (comma-separated; default all the token can see).
    #[arg(long, value_delimiter = ',', env = env::AIRTABLE_MCP_BASES)]
    pub bases: Option<Vec<String>>,

    /// When to ask before a risky write (deletes, undo, sync apply, field type changes, batches
    /// over --confirm-threshold): auto = through the client (MCP elicitation) when it can ask,
    /// always = also without elicitation (the call must repeat with the confirm_token of a
    /// dry run), never = do not ask.
    #[arg(long, value_enum, env = env::AIRTABLE_MCP_CONFIRM)]
    pub confirm: Option<ConfirmMode>,

    /// Batch writes of more records than this ask for confirmation (default 50).
    #[arg(long, value_name = "N", env = env::AIRTABLE_MCP_CONFIRM_THRESHOLD)]
    pub confirm_threshold: Option<usize>,

    /// Seconds between polls of watched tables for new changes (watch_table; default 30, at least 5): one request per base with watches.
    #[arg(long, value_name = "SECS", env = env::AIRTABLE_MCP_WATCH_POLL_INTERVAL)]
    pub watch_poll_interval: Option<u64>,

    #[command(flatten)]
    pub journal: JournalArgs,
    /// Directory export_table_csv may write files into (its `path` is relative to it); without it no tool touches the host's files.
    #[arg(long, value_name = "DIR", env = env::AIRTABLE_MCP_EXPORT_DIR)]
    pub export_dir: Option<PathBuf>,

    /// Strip invisible and bidi control characters (zero-width, bidi overrides, Unicode tags) from the text tools return (default on).
    #[arg(long, value_enum, value_name = "on|off", env = env::AIRTABLE_MCP_SANITIZE)]
    pub sanitize: Option<OnOff>,

    /// Export OpenTelemetry traces over OTLP/HTTP to this collector URL (`/v1/traces` is appended unless the path ends with it): one span per tool call, child spans per Airtable request. Off by default.
    #[arg(long, value_name = "URL", env = env::AIRTABLE_MCP_OTLP_ENDPOINT)]
    pub otlp_endpoint: Option<String>,

    #[command(flatten)]
    pub http_opts: HttpArgs,

    /// Share rate limits, 429 holds and the schema cache with other replicas through Redis
    /// (redis://[user:password@]host[:port][/db] or rediss://…).
    #[arg(long, value_name = "URL", env = env::AIRTABLE_MCP_REDIS_URL, hide_env_values = true)]
    pub redis: Option<String>,

    /// Number of replicas sharing one Airtable limit; while Redis is unreachable each keeps
    /// 1/N of the limits (default 1).
    #[arg(long, value_name = "N", env = env::AIRTABLE_MCP_REPLICAS)]
    pub replicas: Option<u32>,
}

/// When risky writes ask for confirmation (`--confirm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfirmMode {
    /// Ask through the client (MCP elicitation) when it supports it; otherwise go on.
    #[default]
    Auto,
    /// Always confirm: through elicitation, else a dry run's confirm_token is required.
    Always,
    /// Never ask.
    Never,
}

/// The write journal (undo): `serve` and `writes`.
#[derive(Debug, Args, Clone, Default)]
pub struct JournalArgs {
    /// SQLite file of the write journal (default: the platform data dir, e.g.
    /// ~/.local/share/airtable-mcp/journal.sqlite3; in memory with --sandbox).
    #[arg(long, value_name = "FILE", env = env::AIRTABLE_MCP_JOURNAL)]
    pub journal: Option<PathBuf>,

    /// Keep no write journal (writes cannot be listed or undone).
    #[arg(long, conflicts_with = "journal")]
    pub no_journal: bool,

    /// Days a journal entry is kept (default 30).
    #[arg(long, value_name = "DAYS", env = env::AIRTABLE_MCP_JOURNAL_RETENTION_DAYS)]
    pub journal_retention_days: Option<u32>,
}

/// HTTP transport options (only with --http).
#[derive(Debug, Args, Clone, Default)]
pub struct HttpArgs {
    /// Allow unauthenticated HTTP (only when bound to a loopback address).
    #[arg(long)]
    pub no_auth: bool,

    /// File with accepted bearer tokens, one a line (also AIRTABLE_MCP_AUTH_TOKENS).
    #[arg(long, value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,

    /// TLS certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Allow binding a non-loopback address without TLS.
    #[arg(long)]
    pub insecure: bool,

    /// Host header values accepted (comma-separated; default loopback names).
    #[arg(long, value_delimiter = ',')]
    pub allowed_hosts: Option<Vec<String>>,

    /// Origin header values accepted, e.g. http://localhost:* (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,

    /// Stateless Streamable HTTP only (no Mcp-Session-Id sessions).
    #[arg(long)]
    pub stateless: bool,

    /// Answer stateless requests with application/json instead of SSE when possible.
    #[arg(long)]
    pub json_response: bool,

    /// Requests per second allowed per HTTP client (bearer token, else IP); bursts of twice
    /// that; over it: 429 with Retry-After. 0 disables. Default 50.
    #[arg(long, value_name = "N")]
    pub client_rate_limit: Option<u32>,

    /// Seconds allowed to answer a non-streaming HTTP request (default 120).
    #[arg(long, value_name = "SECS")]
    pub http_timeout: Option<u64>,

    /// Seconds in-flight tool calls get to finish on SIGTERM/SIGINT (default 10).
    #[arg(long, value_name = "SECS")]
    pub shutdown_grace: Option<u64>,

    /// Close a Streamable HTTP or legacy SSE session idle for this many seconds (default 1800).
    #[arg(long, value_name = "SECS")]
    pub session_idle_timeout: Option<u64>,

    /// Open sessions allowed per bearer token (default 16); over it: 429.
    #[arg(long, value_name = "N")]
    pub max_sessions_per_token: Option<usize>,

    /// Open sessions allowed in total (default 1000); over it: 503.
    #[arg(long, value_name = "N")]
    pub max_sessions: Option<usize>,

    #[command(flatten)]
    pub oauth: OAuthServeArgs,
}

/// `serve --http --oauth`: remote users sign in with Airtable (OAuth 2.1 protected resource
/// with its own authorization server; replaces bearer tokens).
#[derive(Debug, Args, Clone, Default)]
pub struct OAuthServeArgs {
    /// Remote users sign in with Airtable (OAuth); each uses their own Airtable grant.
    /// Replaces bearer tokens; implies --stateless; no legacy SSE.
    #[arg(long, conflicts_with_all = ["no_auth", "auth_token_file"])]
    pub oauth: bool,

    /// Client ID of the server's Airtable OAuth integration (its secret, if any, comes from
    /// AIRTABLE_MCP_OAUTH_CLIENT_SECRET).
    #[arg(long, value_name = "ID", env = env::AIRTABLE_MCP_OAUTH_CLIENT_ID)]
    pub oauth_client_id: Option<String>,

    /// Canonical public URL of the MCP endpoint, e.g. https://mcp.example.com/mcp (required
    /// with --oauth unless listening on loopback).
    #[arg(long, value_name = "URL", env = env::AIRTABLE_MCP_PUBLIC_URL)]
    pub public_url: Option<String>,

    /// Origin of Airtable's OAuth endpoints (default https://airtable.com, or the API URL when
    /// it is not the default).
    #[arg(long, value_name = "URL", env = env::AIRTABLE_MCP_OAUTH_URL)]
    pub oauth_url: Option<String>,

    /// SQLite file of the OAuth store (clients, token hashes, encrypted Airtable grants;
    /// default: the data dir).
    #[arg(long, value_name = "FILE", env = env::AIRTABLE_MCP_OAUTH_STORE)]
    pub oauth_store: Option<PathBuf>,

    /// Lifetime of the server's OAuth access tokens in seconds (default 3600).
    #[arg(long, value_name = "SECS", requires = "oauth")]
    pub oauth_token_ttl: Option<u64>,
}

#[derive(Debug, Args, Clone)]
pub struct SandboxArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,

    /// SQLite file to keep the data in (default: in memory, lost on exit).
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,

    /// Seed data: `demo` (a project tracker) or a JSON file.
    #[arg(long, value_name = "demo|FILE")]
    pub seed: Option<String>,

    /// Bearer token the sandbox accepts (not a real Airtable token).
    #[arg(long, default_value = "sandbox-token")]
    pub token: String,

    /// Requests per second allowed per base before 429 (Airtable: 5; 0 disables).
    #[arg(long, default_value_t = 5)]
    pub rate_limit: u32,

    /// Seconds a base stays locked after a 429 (Airtable: 30).
    #[arg(long, default_value_t = 30.0)]
    pub penalty_secs: f64,

    /// Fraction of requests answered 503 (fault injection, 0.0-1.0).
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,

    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,

    /// Fraction of writes whose connection is dropped before they are applied.
    #[arg(long, default_value_t = 0.0)]
    pub drop_before_rate: f64,

    /// Fraction of writes whose connection is dropped after they are applied.
    #[arg(long, default_value_t = 0.0)]
    pub drop_after_rate: f64,

    /// OAuth: authorize redirects at once instead of showing the consent page.
    #[arg(long)]
    pub oauth_auto_approve: bool,

    /// OAuth: register another public client ID accepting any loopback redirect URI
    /// (repeatable; `sandbox-client` always exists).
    #[arg(long = "oauth-client", value_name = "CLIENT_ID")]
    pub oauth_clients: Vec<String>,

    /// OAuth: access token lifetime in seconds (Airtable: 3600).
    #[arg(long, default_value_t = 3600)]
    pub oauth_access_ttl_secs: u64,

    /// OAuth: refresh token lifetime in seconds (Airtable: 60 days).
    #[arg(long, default_value_t = 5_184_000)]
    pub oauth_refresh_ttl_secs: u64,
}

/// `auth login --oauth ...`: "Sign in with Airtable" (authorization code + PKCE, loopback redirect).
#[derive(Debug, Args, Clone, Default)]
pub struct OAuthLoginArgs {
    /// Sign in with Airtable (OAuth) instead of storing a personal access token.
    #[arg(long)]
    pub oauth: bool,

    /// OAuth integration client ID (register http://localhost:PORT/callback as its redirect URI;
    /// the sandbox's is sandbox-client). A client secret comes from AIRTABLE_MCP_OAUTH_CLIENT_SECRET.
    #[arg(long, value_name = "ID", requires = "oauth")]
    pub client_id: Option<String>,

    /// Print the sign-in URL instead of opening a browser.
    #[arg(long, requires = "oauth")]
    pub no_browser: bool,

    /// Space-separated scopes to ask for (default: every scope the tools use).
    #[arg(long, value_name = "SCOPES", requires = "oauth")]
    pub scope: Option<String>,

    /// Loopback port of the redirect URI (0 picks a free one; Airtable needs the registered one).
    #[arg(long, value_name = "PORT", default_value_t = 0, requires = "oauth")]
    pub redirect_port: u16,

    /// Origin of the OAuth endpoints (default https://airtable.com, or the API URL when it is
    /// not the default).
    #[arg(long, value_name = "URL", env = env::AIRTABLE_MCP_OAUTH_URL, requires = "oauth")]
    pub oauth_url: Option<String>,

    /// Seconds to wait for the browser to come back.
    #[arg(long, value_name = "SECS", default_value_t = 300, requires = "oauth")]
    pub login_timeout: u64,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Read a personal access token (hidden prompt or --stdin), verify it, store it in the keyring.
    Login {
        /// Read the token from standard input instead of a prompt.
        #[arg(long, conflicts_with = "oauth")]
        stdin: bool,
        #[command(flatten)]
        oauth: OAuthLoginArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show where the token comes from, masked, and who it belongs to. Exits 1 when none is usable.
    Status {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Delete the token of a profile from the keyring.
    Logout {
        /// Keyring profile to remove (default `default`; several can be kept: work, personal…).
        #[arg(long, env = env::AIRTABLE_MCP_PROFILE)]
        profile: Option<String>,
    },
    /// Manage the bearer tokens `serve --http` accepts, kept in the keyring.
    #[command(subcommand)]
    HttpToken(HttpTokenCommand),
}

impl AuthCommand {
    /// The API options this subcommand was given (`logout` has only `--profile`; `http-token`
    /// none), to be layered with env and the config file.
    pub fn api_args(&self) -> ApiArgs {
        match self {
            AuthCommand::Login { api, .. } | AuthCommand::Status { api } => api.clone(),
            AuthCommand::Logout { profile } => ApiArgs {
                profile: profile.clone(),
                ..ApiArgs::default()
            },
            AuthCommand::HttpToken(_) => ApiArgs::default(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum HttpTokenCommand {
    /// Add a bearer token: a new random one (--generate, printed once) or one read from a hidden
    /// prompt or --stdin.
    Add {
        /// Create a random token and print it (give it to the HTTP clients).
        #[arg(long, conflicts_with = "stdin")]
        generate: bool,
        /// Read the token from standard input instead of a prompt.
        #[arg(long)]
        stdin: bool,
    },
    /// Show how many bearer tokens are stored, masked.
    List,
    /// Remove every stored bearer token.
    Clear,
}

#[derive(Debug, Args, Clone, Default)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SetupClient {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    Vscode,
}

#[derive(Debug, Args, Clone)]
pub struct SetupArgs {
    /// The MCP client to configure.
    #[arg(value_enum)]
    pub client: SetupClient,
    /// Only print the JSON entry; change nothing.
    #[arg(long)]
    pub print: bool,
    /// Profile the server should use.
    #[arg(long)]
    pub profile: Option<String>,
    /// Config file to edit instead of the client's default location.
    #[arg(long, value_name = "FILE")]
    pub config_path: Option<PathBuf>,
}

/// `airtable-mcp writes`: the write journal, for the token `serve` would use.
#[derive(Debug, Subcommand)]
pub enum WritesCommand {
    /// List the token's latest writes, newest first.
    List(WritesListArgs),
    /// Undo a journaled write (its ID from `writes list` or a write tool's write_id).
    Undo(WritesUndoArgs),
}

impl WritesCommand {
    /// The API and journal options of either subcommand.
    pub fn options(&self) -> (&ApiArgs, &JournalArgs) {
        match self {
            WritesCommand::List(a) => (&a.api, &a.journal),
            WritesCommand::Undo(a) => (&a.api, &a.journal),
        }
    }
}

#[derive(Debug, Args, Clone, Default)]
pub struct WritesListArgs {
    #[command(flatten)]
    pub api: ApiArgs,

    #[command(flatten)]
    pub journal: JournalArgs,

    /// Only writes in this base (app...).
    #[arg(long, value_name = "BASE_ID")]
    pub base: Option<String>,

    /// Most writes to list (1-100).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: u32,

    /// Print JSON (as the list_recent_writes tool returns it) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct WritesUndoArgs {
    /// The write to undo (w...).
    #[arg(value_name = "ID")]
    pub id: String,

    #[command(flatten)]
    pub api: ApiArgs,

    #[command(flatten)]
    pub journal: JournalArgs,

    /// Show what would be undone, and conflicts; send nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Undo even where records changed after the write (overwrites those changes).
    #[arg(long)]
    pub force: bool,

    /// Print JSON (as the undo_write tool returns it) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// List the tools with their toolset and access.
    List,
    /// Print the JSON description of every tool (what `schemas/` holds).
    Schema,
}

/// The `--help` list of environment variables. Built on every start (clap takes the text, not a
/// function): pieces pushed, not `format!` with padding, which cost 90,000 instructions a start.
fn env_help() -> String {
    const HEAD: &str = "Environment variables:\n";
    let width = env::ENV_VARS
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0);
    let len = env::ENV_VARS
        .iter()
        .map(|(_, what)| width + what.len() + 5)
        .sum::<usize>();
    let mut s = String::with_capacity(HEAD.len() + len);
    s.push_str(HEAD);
    for (name, what) in env::ENV_VARS {
        s.push_str("  ");
        s.push_str(name);
        s.extend(std::iter::repeat_n(' ', width - name.len() + 2));
        s.push_str(what);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod blank_env_tests {
    use super::*;

    #[test]
    fn every_blank_env_setting_is_a_serve_argument_bound_to_its_variable() {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        cmd.build();
        for &(sub, id, var) in BLANK_ENV_IS_UNSET {
            let serve = cmd.find_subcommand(sub);
            assert!(serve.is_some(), "no subcommand {sub}");
            let arg = serve.and_then(|s| s.get_arguments().find(|a| a.get_id() == id));
            assert!(arg.is_some(), "{sub} has no argument {id}");
            assert_eq!(
                arg.and_then(|a| a.get_env()),
                Some(std::ffi::OsStr::new(var)),
                "{sub} {id} is not bound to {var}"
            );
        }
    }
}
