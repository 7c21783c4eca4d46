//! Validated configuration: flags, then env, then the TOML config file, then defaults.
//!
//! clap already merges each flag with its env var (the flag wins); [`Config::load`] fills what
//! is still unset from the TOML file (`--config FILE`, `AIRTABLE_MCP_CONFIG`, else
//! `<platform config dir>/airtable-mcp/config.toml` when it exists), then applies defaults and
//! validates everything. An unknown key in the file is an error naming the key.
//!
//! Every value is parsed once, here, into a validated type ([`Profile`], [`Toolsets`],
//! [`ListenAddr`], [`BaseAllowList`], [`Url`], ...): whatever layer it comes from, a value is
//! accepted or refused the same way, and the server consumes these types without re-parsing.
//!
//! Boolean switches (`read_only`, `no_auth`, ...) can be turned on by any layer; a flag cannot
//! turn off what the file turns on.
//!
//! Example `config.toml` (every key optional):
//!
//! ```toml
//! api_url = "https://api.airtable.com"
//! content_url = "https://content.airtable.com"   # attachment uploads (default: see Config)
//! profile = "work"
//! toolsets = ["records", "schema"]
//! read_only = false
//! bases = ["appXXXXXXXXXXXXXX"]
//! export_dir = "/srv/airtable-exports"   # where export_table_csv may write (default: nowhere)
//! sanitize = "on"             # strip invisible/bidi characters from results ("off" keeps them)
//! rate_limit_per_base = 5
//! rate_limit_per_token = 50
//! request_timeout = 30        # seconds
//! max_retries = 5
//! log_level = "info"
//! log_format = "text"         # or "json"
//! otlp_endpoint = "http://otel-collector:4318"   # export traces (default: none)
//!
//! [http]
//! listen = "127.0.0.1:8787"   # serve over HTTP by default
//! auth_token_file = "/etc/airtable-mcp/tokens"
//! allowed_hosts = ["localhost", "127.0.0.1"]
//! allowed_origins = ["http://localhost:*"]
//! no_auth = false
//! stateless = false
//! json_response = false
//! insecure = false
//! # tls_cert = "cert.pem"
//! # tls_key = "key.pem"
//! client_rate_limit = 50      # requests per second per HTTP client; 0 disables
//! http_timeout = 120          # seconds to answer a non-streaming request
//! shutdown_grace = 10         # seconds in-flight calls get at shutdown
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::airtable::{BaseId, IdError};
pub use crate::cli::ConfirmMode;
use crate::cli::{ApiArgs, GlobalArgs, JournalArgs, LogFormat, OnOff, ServeArgs};
use crate::env;
use crate::profile::{Profile, ProfileError};

/// Default Airtable API base URL.
pub const DEFAULT_API_URL: &str = "https://api.airtable.com";
/// Default per-base rate limit (Airtable's).
pub const DEFAULT_RATE_LIMIT_PER_BASE: u32 = 5;
/// Default per-token rate limit (Airtable's).
pub const DEFAULT_RATE_LIMIT_PER_TOKEN: u32 = 50;
/// Default timeout of one request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of retries of one request.
pub const DEFAULT_MAX_RETRIES: u32 = 5;
/// Default interval of the change feed's poller (`--watch-poll-interval`).
pub const DEFAULT_WATCH_POLL_INTERVAL: Duration = Duration::from_secs(30);
/// Shortest poll interval accepted: one webhook list per base every 5 s is 0.2 req/s, 4% of
/// Airtable's 5 req/s per base.
pub const MIN_WATCH_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Default HTTP listen address.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8787";
/// The toolsets a user may name (besides `all`).
pub const TOOLSETS: &[&str] = &[
    "records",
    "schema",
    "analysis",
    "transfer",
    "comments",
    "attachments",
    "watch",
];

/// Configuration errors (thiserror; one enum for this layer).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file named by `--config` / `AIRTABLE_MCP_CONFIG` does not exist.
    #[error("config file {path} does not exist (given by --config or {var})", var = env::AIRTABLE_MCP_CONFIG)]
    NotFound { path: PathBuf },
    /// The config file exists but cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML, or has an unknown key or a wrongly typed value.
    #[error("config file {path}: {}", one_line(source))]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    /// A setting whose value does not parse (the parser's error is the source).
    #[error("invalid {key} {value:?}: {source}")]
    Value {
        key: &'static str,
        value: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A profile name we refuse.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A base ID we refuse (the ID is shown by the source, redacted when it looks secret).
    #[error("invalid bases: {0}")]
    Base(#[source] IdError),
    /// A setting has a value we refuse by policy (no underlying error).
    #[error("invalid {key} {value:?}: {reason}")]
    Invalid {
        key: &'static str,
        value: String,
        reason: String,
    },
}

fn one_line(e: &toml::de::Error) -> String {
    e.to_string()
        .trim()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// Validated value types: every path (flags, env, TOML, tests, the server) parses with these.

/// A group of tools switched on or off together with `--toolsets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Toolset {
    /// Read and write records: get_records, search_records, create/update/delete, batches, upsert.
    Records,
    /// Bases, tables and fields: list_bases, list_tables, get_field_info, create/update table and field.
    Schema,
    /// Read-only analysis: analyze_table_data, find_duplicates, aggregate_records, count_records.
    Analysis,
    /// Moving data: export_table_csv, create_metadata_table, sync_tables.
    Transfer,
    /// Record comments: list_comments, create_comment.
    Comments,
    /// Attachment files: upload_attachment, get_attachments.
    Attachments,
    /// Change feeds from Airtable webhooks: watch_table, list_table_changes, list_watches, unwatch_table.
    Watch,
}

impl Toolset {
    /// Every toolset, in display order.
    pub const ALL: [Toolset; 7] = [
        Toolset::Records,
        Toolset::Schema,
        Toolset::Analysis,
        Toolset::Transfer,
        Toolset::Comments,
        Toolset::Attachments,
        Toolset::Watch,
    ];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Toolset::Records => "records",
            Toolset::Schema => "schema",
            Toolset::Analysis => "analysis",
            Toolset::Transfer => "transfer",
            Toolset::Comments => "comments",
            Toolset::Attachments => "attachments",
            Toolset::Watch => "watch",
        }
    }
}

impl fmt::Display for Toolset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown toolset name (with a "did you mean" when one is close).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown toolset {0:?}: {hint}expected one of records, schema, analysis, transfer, comments, attachments, watch (or all)",
    hint = toolset_hint(.0)
)]
pub struct UnknownToolset(pub String);

fn toolset_hint(name: &str) -> String {
    let t = name.trim().to_ascii_lowercase();
    TOOLSETS
        .iter()
        .chain(std::iter::once(&"all"))
        .map(|k| (strsim::jaro_winkler(k, &t), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!("did you mean {k}? "))
        .unwrap_or_default()
}

impl FromStr for Toolset {
    type Err = UnknownToolset;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        Toolset::ALL
            .into_iter()
            .find(|ts| ts.as_str() == t)
            .ok_or_else(|| UnknownToolset(s.to_owned()))
    }
}

/// The toolsets to expose: a non-empty set. Names are case-insensitive; `all` selects every
/// toolset; blanks and duplicates are ignored.
///
/// ```
/// use airtable_mcp::config::{Toolset, Toolsets};
///
/// let t = Toolsets::parse(["Records", " schema", "records"]).unwrap();
/// assert!(t.contains(Toolset::Records) && t.contains(Toolset::Schema));
/// assert!(!t.contains(Toolset::Comments));
/// assert_eq!(Toolsets::parse(["all"]).unwrap(), Toolsets::all());
/// assert!(Toolsets::parse(["recrods"]).unwrap_err().to_string().contains("did you mean records"));
/// assert!(Toolsets::parse([""]).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolsets(BTreeSet<Toolset>);

impl Toolsets {
    /// Every toolset (the default).
    pub fn all() -> Toolsets {
        Toolsets(Toolset::ALL.into_iter().collect())
    }

    /// Parse names (`all` included); an empty result is an error.
    pub fn parse<I, S>(names: I) -> Result<Toolsets, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = BTreeSet::new();
        for raw in names {
            let name = raw.as_ref().trim();
            if name.is_empty() {
                continue;
            }
            if name.eq_ignore_ascii_case("all") {
                out.extend(Toolset::ALL);
                continue;
            }
            let t = name.parse::<Toolset>().map_err(|e| ConfigError::Value {
                key: "toolsets",
                value: name.to_owned(),
                source: Box::new(e),
            })?;
            out.insert(t);
        }
        if out.is_empty() {
            return Err(ConfigError::Invalid {
                key: "toolsets",
                value: String::new(),
                reason: format!("name at least one of {} (or all)", TOOLSETS.join(", ")),
            });
        }
        Ok(Toolsets(out))
    }

    /// Whether `t` is selected.
    pub fn contains(&self, t: Toolset) -> bool {
        self.0.contains(&t)
    }

    /// Whether every toolset is selected.
    pub fn is_all(&self) -> bool {
        self.0.len() == Toolset::ALL.len()
    }

    /// The selected toolsets, in display order.
    pub fn iter(&self) -> impl Iterator<Item = Toolset> + '_ {
        self.0.iter().copied()
    }

    /// The set itself.
    pub fn as_set(&self) -> &BTreeSet<Toolset> {
        &self.0
    }
}

impl Default for Toolsets {
    fn default() -> Self {
        Toolsets::all()
    }
}

impl From<Toolsets> for BTreeSet<Toolset> {
    fn from(t: Toolsets) -> Self {
        t.0
    }
}

/// Why a listen address does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected IP:PORT, [IPv6]:PORT or localhost:PORT, e.g. {DEFAULT_HTTP_ADDR}")]
pub struct ListenAddrError {
    #[source]
    source: Option<std::net::AddrParseError>,
}

/// The HTTP listen address: `IP:PORT`, `[v6]:PORT` or `localhost:PORT` (= 127.0.0.1).
///
/// ```
/// use airtable_mcp::config::ListenAddr;
///
/// let a: ListenAddr = "localhost:9000".parse().unwrap();
/// assert_eq!(a.socket_addr().to_string(), "127.0.0.1:9000");
/// assert!(a.is_loopback());
/// assert!("[::1]:80".parse::<ListenAddr>().unwrap().is_loopback());
/// assert!("example.com:80".parse::<ListenAddr>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr(SocketAddr);

impl ListenAddr {
    /// The address to bind.
    pub fn socket_addr(self) -> SocketAddr {
        self.0
    }

    /// Whether it is a loopback address.
    pub fn is_loopback(self) -> bool {
        self.0.ip().is_loopback()
    }
}

impl FromStr for ListenAddr {
    type Err = ListenAddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s.parse::<SocketAddr>() {
            Ok(a) => Ok(ListenAddr(a)),
            Err(e) => {
                if let Some(port) = s.strip_prefix("localhost:")
                    && let Ok(port) = port.parse::<u16>()
                {
                    return Ok(ListenAddr(SocketAddr::new(
                        IpAddr::V4(Ipv4Addr::LOCALHOST),
                        port,
                    )));
                }
                Err(ListenAddrError { source: Some(e) })
            }
        }
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(a: SocketAddr) -> Self {
        ListenAddr(a)
    }
}

impl From<ListenAddr> for SocketAddr {
    fn from(a: ListenAddr) -> Self {
        a.0
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The bases the server may touch: a non-empty set of valid base IDs (`--bases`, `bases`).
///
/// ```
/// use airtable_mcp::config::BaseAllowList;
///
/// let b = BaseAllowList::parse(["appAAAAAAAAAAAAAA", " appAAAAAAAAAAAAAA "]).unwrap();
/// assert_eq!(b.len(), 1);
/// assert!(b.contains("appAAAAAAAAAAAAAA") && !b.contains("appBBBBBBBBBBBBBB"));
/// assert!(BaseAllowList::parse(["tblAAAAAAAAAAAAAA"]).is_err());
/// assert!(BaseAllowList::parse(Vec::<String>::new()).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseAllowList(BTreeSet<BaseId>);

impl BaseAllowList {
    /// Parse base IDs (trimmed; blanks and duplicates ignored); an empty result is an error.
    pub fn parse<I, S>(ids: I) -> Result<BaseAllowList, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = BTreeSet::new();
        for raw in ids {
            let b = raw.as_ref().trim();
            if b.is_empty() {
                continue;
            }
            out.insert(b.parse::<BaseId>().map_err(ConfigError::Base)?);
        }
        if out.is_empty() {
            return Err(ConfigError::Invalid {
                key: "bases",
                value: String::new(),
                reason: "give base IDs like appXXXXXXXXXXXXXX, or omit it to allow every base"
                    .to_owned(),
            });
        }
        Ok(BaseAllowList(out))
    }

    /// Whether `base` is allowed.
    pub fn contains(&self, base: &str) -> bool {
        self.0.iter().any(|b| b.as_str() == base)
    }

    /// How many bases.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true (the list is non-empty); for clippy.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The IDs, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &BaseId> + '_ {
        self.0.iter()
    }

    /// The IDs as strings, sorted.
    pub fn to_strings(&self) -> BTreeSet<String> {
        self.0.iter().map(|b| b.as_str().to_owned()).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The file, the validated configuration, and the layering.

/// The TOML file, as written by the user. Every key optional; unknown keys rejected.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub api_url: Option<String>,
    pub content_url: Option<String>,
    pub profile: Option<String>,
    pub toolsets: Option<Vec<String>>,
    pub read_only: Option<bool>,
    pub bases: Option<Vec<String>>,
    pub export_dir: Option<PathBuf>,
    pub sanitize: Option<OnOff>,
    pub rate_limit_per_base: Option<u32>,
    pub rate_limit_per_token: Option<u32>,
    /// Seconds.
    pub request_timeout: Option<u64>,
    pub max_retries: Option<u32>,
    pub log_level: Option<String>,
    pub log_format: Option<LogFormat>,
    /// OTLP/HTTP collector URL for traces.
    pub otlp_endpoint: Option<String>,
    /// When risky writes ask first: "auto", "always", "never".
    pub confirm: Option<ConfirmMode>,
    pub confirm_threshold: Option<usize>,
    /// SQLite file of the write journal.
    pub journal: Option<PathBuf>,
    pub no_journal: Option<bool>,
    pub journal_retention_days: Option<u32>,
    /// Seconds between polls of watched tables' webhooks (change feed).
    pub watch_poll_interval: Option<u64>,
    pub http: Option<FileHttpConfig>,
    /// Redis URL shared by replicas (may hold a password: prefer the env var).
    pub redis_url: Option<String>,
    /// Replicas sharing one limit.
    pub replicas: Option<u32>,
}

/// The `[http]` table of the TOML file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHttpConfig {
    pub listen: Option<String>,
    pub auth_token_file: Option<PathBuf>,
    pub allowed_hosts: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub no_auth: Option<bool>,
    pub stateless: Option<bool>,
    pub json_response: Option<bool>,
    pub insecure: Option<bool>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Requests per second per HTTP client (0 disables).
    pub client_rate_limit: Option<u32>,
    /// Seconds to answer a non-streaming request.
    pub http_timeout: Option<u64>,
    /// Seconds in-flight calls get at shutdown.
    pub shutdown_grace: Option<u64>,
    /// Seconds before an idle session is closed.
    pub session_idle_timeout: Option<u64>,
    /// Open sessions per bearer token.
    pub max_sessions_per_token: Option<usize>,
    /// Open sessions in total.
    pub max_sessions: Option<usize>,
}

/// The validated configuration every command uses.
#[derive(Debug, Clone)]
pub struct Config {
    /// Airtable API base URL (`--api-url`, `AIRTABLE_API_URL`, `api_url`).
    pub api_url: Url,
    /// Content API root for attachment uploads (`--content-url`, `AIRTABLE_MCP_CONTENT_URL`,
    /// `content_url`); `None` = `https://content.airtable.com` with the default API URL, else
    /// the API URL.
    pub content_url: Option<Url>,
    /// Where traces are exported over OTLP/HTTP (`--otlp-endpoint`, `AIRTABLE_MCP_OTLP_ENDPOINT`,
    /// `otlp_endpoint`), already ending in `/v1/traces`; `None` = no exporter.
    pub otlp_endpoint: Option<Url>,
    /// Keyring profile (`--profile`, `AIRTABLE_MCP_PROFILE`, `profile`; default `default`).
    pub profile: Profile,
    /// Toolsets to expose (`--toolsets`, `AIRTABLE_MCP_TOOLSETS`, `toolsets`; default all).
    pub toolsets: Toolsets,
    /// Read-only tools only.
    pub read_only: bool,
    /// Bases the server may touch; `None` = every base the token sees.
    pub bases: Option<BaseAllowList>,
    /// The directory export_table_csv may write into, canonical (`--export-dir`,
    /// `AIRTABLE_MCP_EXPORT_DIR`, `export_dir`); `None` = no tool touches the host's files.
    pub export_dir: Option<PathBuf>,
    /// Strip invisible and bidi control characters from tool results (`--sanitize`,
    /// `AIRTABLE_MCP_SANITIZE`, `sanitize`; default on).
    pub sanitize: bool,
    /// Requests per second per base (at least 1).
    pub rate_limit_per_base: u32,
    /// Requests per second per token (at least 1).
    pub rate_limit_per_token: u32,
    /// Timeout of one Airtable request.
    pub request_timeout: Duration,
    /// Retries of one Airtable request (file only).
    pub max_retries: u32,
    /// Log filter (`--log-level`, `AIRTABLE_MCP_LOG`, `log_level`; default `info`).
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Use an in-process sandbox instead of the API (`serve --sandbox`).
    pub sandbox: bool,
    /// When risky writes ask first (`--confirm`, `AIRTABLE_MCP_CONFIRM`, `confirm`; default auto).
    pub confirm: ConfirmMode,
    /// Batch writes of more records than this ask first (default 50).
    pub confirm_threshold: usize,
    /// Where the write journal lives (`--journal`, `--no-journal`; default the data dir, in
    /// memory with `--sandbox`).
    pub journal: JournalLocation,
    /// How long journal entries are kept (`--journal-retention-days`; default 30 days).
    pub journal_retention: Duration,
    /// Interval of the change feed's poller (`--watch-poll-interval`,
    /// `AIRTABLE_MCP_WATCH_POLL_INTERVAL`, `watch_poll_interval`; default 30 s, at least 5 s).
    pub watch_poll_interval: Duration,
    /// `Some` when serving over HTTP (`--http [ADDR]` or `[http] listen` in the file).
    pub http: Option<HttpConfig>,
    /// HTTP options; also filled when `http` is `None` (for `doctor` and tests).
    pub http_options: HttpConfig,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// Redis shared by replicas (`--redis`, `AIRTABLE_MCP_REDIS_URL`, `redis_url`): validated
    /// `redis://` or `rediss://`; secret (may hold a password).
    pub redis_url: Option<SecretString>,
    /// Replicas sharing one Airtable limit (`--replicas`, `AIRTABLE_MCP_REPLICAS`, `replicas`;
    /// default 1, at most 1000).
    pub replicas: u32,
}

/// Where the write journal is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalLocation {
    /// A SQLite file (created with its directory when missing).
    File(PathBuf),
    /// In memory, for this process only (`serve --sandbox` without `--journal`).
    Memory,
    /// No journal (`--no-journal`): writes cannot be listed or undone.
    Off,
}

/// Default batch size above which writes ask for confirmation.
pub const DEFAULT_CONFIRM_THRESHOLD: usize = 50;
/// Default days a journal entry is kept.
pub const DEFAULT_JOURNAL_RETENTION_DAYS: u32 = 30;

/// The default journal file (`<data dir>/airtable-mcp/journal.sqlite3`).
pub fn default_journal_path() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("airtable-mcp").join("journal.sqlite3"))
}

/// Layer the journal settings: flag (and env), then file, then the default.
pub fn journal_settings(
    args: &JournalArgs,
    file: &FileConfig,
    sandbox: bool,
) -> Result<(JournalLocation, Duration), ConfigError> {
    let days = args
        .journal_retention_days
        .or(file.journal_retention_days)
        .unwrap_or(DEFAULT_JOURNAL_RETENTION_DAYS);
    if days == 0 || days > 3650 {
        return Err(ConfigError::Invalid {
            key: "journal_retention_days",
            value: days.to_string(),
            reason: "give a number of days from 1 to 3650".to_owned(),
        });
    }
    let off = args.no_journal || (args.journal.is_none() && file.no_journal.unwrap_or(false));
    let location = if off {
        JournalLocation::Off
    } else if let Some(p) = args.journal.clone().or(file.journal.clone()) {
        if p.as_os_str().is_empty() || p.is_dir() {
            return Err(ConfigError::Invalid {
                key: "journal",
                value: p.display().to_string(),
                reason: "give the path of a SQLite file (it is created when missing)".to_owned(),
            });
        }
        JournalLocation::File(p)
    } else if sandbox {
        JournalLocation::Memory
    } else {
        match default_journal_path() {
            Some(p) => JournalLocation::File(p),
            None => {
                return Err(ConfigError::Invalid {
                    key: "journal",
                    value: String::new(),
                    reason: "no platform data directory (HOME unset?): give --journal FILE or --no-journal"
                        .to_owned(),
                });
            }
        }
    };
    Ok((location, Duration::from_secs(u64::from(days) * 86_400)))
}

/// HTTP transport settings (validated: TLS files come in pairs, `no_auth` only on loopback, a
/// non-loopback address needs TLS or `insecure`).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: ListenAddr,
    pub auth_token_file: Option<PathBuf>,
    pub allowed_hosts: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub no_auth: bool,
    pub stateless: bool,
    pub json_response: bool,
    pub insecure: bool,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Requests per second per HTTP client; `Some(0)` disables; `None` = the transport default.
    pub client_rate_limit: Option<u32>,
    /// Seconds to answer a non-streaming request (at least 1); `None` = the transport default.
    pub http_timeout: Option<u64>,
    /// Seconds in-flight calls get at shutdown; `None` = the transport default.
    pub shutdown_grace: Option<u64>,
    /// Seconds before an idle session closes; `None` = the transport default (1800).
    pub session_idle_timeout: Option<u64>,
    /// Open sessions per bearer token; `None` = the transport default (16).
    pub max_sessions_per_token: Option<usize>,
    /// Open sessions in total; `None` = the transport default (1000).
    pub max_sessions: Option<usize>,
}

/// A `redis://` or `rediss://` URL with a host; errors never repeat the URL (it may hold a
/// password).
fn parse_redis_url(text: &str) -> Result<SecretString, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        key: "redis_url",
        value: "(hidden: may contain a password)".to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(text.trim())
        .map_err(|e| invalid(&format!("not a URL ({e}); expected redis://host:port")))?;
    if !matches!(url.scheme(), "redis" | "rediss") {
        return Err(invalid("the scheme must be redis:// or rediss:// (TLS)"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host"));
    }
    Ok(SecretString::from(text.trim().to_owned()))
}

/// The default config file location (`<config dir>/airtable-mcp/config.toml`).
pub fn default_config_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("airtable-mcp").join("config.toml"))
}

/// Read the TOML file the globals point at (explicit path, else the default when it exists).
/// Returns the path read and its contents, or `None` when there is no file to read.
pub fn read_file(global: &GlobalArgs) -> Result<Option<(PathBuf, FileConfig)>, ConfigError> {
    let (path, explicit) = match &global.config {
        Some(p) => (p.clone(), true),
        None => match default_config_path() {
            Some(p) => (p, false),
            None => return Ok(None),
        },
    };
    if !path.exists() {
        return if explicit {
            Err(ConfigError::NotFound { path })
        } else {
            Ok(None)
        };
    }
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let file = parse_file(&path, &text)?;
    Ok(Some((path, file)))
}

/// Parse TOML text as a [`FileConfig`].
pub fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        source: e,
    })
}

/// Fill `--log-level` / `--log-format` from the config file when neither flag nor env set them,
/// so logging can start before [`Config::load`]. Errors are ignored here (`Config::load` reports
/// them).
pub fn apply_file_logging(global: &mut GlobalArgs) {
    if global.log_level.is_some() && global.log_format.is_some() {
        return;
    }
    if let Ok(Some((_, file))) = read_file(global) {
        if global.log_level.is_none() {
            global.log_level = file.log_level;
        }
        if global.log_format.is_none() {
            global.log_format = file.log_format;
        }
    }
}

impl Config {
    /// Layer flags (and their env vars, merged by clap), the TOML file and the defaults; validate.
    pub fn load(args: &ServeArgs, global: &GlobalArgs) -> Result<Config, ConfigError> {
        let file = read_file(global)?;
        let (config_file, file) = match file {
            Some((p, f)) => (Some(p), f),
            None => (None, FileConfig::default()),
        };
        Config::from_layers(args, global, file, config_file)
    }

    /// [`Config::load`] for commands that only have the API options (auth, doctor).
    pub fn load_api(api: &ApiArgs, global: &GlobalArgs) -> Result<Config, ConfigError> {
        let args = ServeArgs {
            api: api.clone(),
            ..ServeArgs::default()
        };
        Config::load(&args, global)
    }

    /// [`Config::load`] for `writes list|undo`: the API options and the journal's, as `serve`
    /// (without --sandbox) would resolve them, so the CLI sees the server's journal.
    pub fn load_writes(
        api: &ApiArgs,
        journal: &JournalArgs,
        global: &GlobalArgs,
    ) -> Result<Config, ConfigError> {
        let args = ServeArgs {
            api: api.clone(),
            journal: journal.clone(),
            ..ServeArgs::default()
        };
        Config::load(&args, global)
    }

    /// The layering itself, from an already parsed file (for tests and embedding).
    pub fn from_layers(
        args: &ServeArgs,
        global: &GlobalArgs,
        file: FileConfig,
        config_file: Option<PathBuf>,
    ) -> Result<Config, ConfigError> {
        let api = &args.api;
        let (journal, journal_retention) = journal_settings(&args.journal, &file, args.sandbox)?;
        let api_url_src = api
            .api_url
            .clone()
            .or(file.api_url)
            .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        let api_url = parse_api_url(&api_url_src)?;
        let content_url = match api.content_url.clone().or(file.content_url) {
            Some(u) => Some(parse_url("content_url", &u)?),
            None => None,
        };

        let otlp_endpoint = match args.otlp_endpoint.clone().or(file.otlp_endpoint) {
            Some(u) => Some(otlp_traces_url(&parse_url("otlp_endpoint", &u)?)),
            None => None,
        };
        let profile = match api.profile.as_deref().or(file.profile.as_deref()) {
            Some(p) => Profile::new(p)?,
            None => Profile::default(),
        };

        let toolsets = match args.toolsets.as_ref().or(file.toolsets.as_ref()) {
            Some(list) => Toolsets::parse(list)?,
            None => Toolsets::all(),
        };
        let bases = match args.bases.as_ref().or(file.bases.as_ref()) {
            Some(list) => Some(BaseAllowList::parse(list)?),
            None => None,
        };
        let read_only = args.read_only || file.read_only.unwrap_or(false);
        let export_dir = match args.export_dir.clone().or(file.export_dir) {
            Some(dir) => Some(existing_dir("export_dir", &dir)?),
            None => None,
        };
        let sanitize = args.sanitize.or(file.sanitize).unwrap_or_default() == OnOff::On;

        let rate_limit_per_base = positive(
            "rate_limit_per_base",
            api.rate_limit_per_base
                .or(file.rate_limit_per_base)
                .unwrap_or(DEFAULT_RATE_LIMIT_PER_BASE),
        )?;
        let rate_limit_per_token = positive(
            "rate_limit_per_token",
            api.rate_limit_per_token
                .or(file.rate_limit_per_token)
                .unwrap_or(DEFAULT_RATE_LIMIT_PER_TOKEN),
        )?;
        let timeout_secs = api
            .request_timeout
            .or(file.request_timeout)
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT.as_secs());
        if timeout_secs == 0 || timeout_secs > 3600 {
            return Err(ConfigError::Invalid {
                key: "request_timeout",
                value: timeout_secs.to_string(),
                reason: "give a number of seconds from 1 to 3600".to_owned(),
            });
        }
        let max_retries = file.max_retries.unwrap_or(DEFAULT_MAX_RETRIES);
        if max_retries > 20 {
            return Err(ConfigError::Invalid {
                key: "max_retries",
                value: max_retries.to_string(),
                reason: "at most 20".to_owned(),
            });
        }

        let log_level = global
            .log_level
            .clone()
            .or(file.log_level)
            .unwrap_or_else(|| "info".to_owned());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_level) {
            return Err(ConfigError::Value {
                key: "log_level",
                value: log_level,
                source: Box::new(e),
            });
        }
        let log_format = global.log_format.or(file.log_format).unwrap_or_default();

        let confirm = args.confirm.or(file.confirm).unwrap_or_default();
        let confirm_threshold = args
            .confirm_threshold
            .or(file.confirm_threshold)
            .unwrap_or(DEFAULT_CONFIRM_THRESHOLD);

        let poll_secs = args
            .watch_poll_interval
            .or(file.watch_poll_interval)
            .unwrap_or(DEFAULT_WATCH_POLL_INTERVAL.as_secs());
        if poll_secs < MIN_WATCH_POLL_INTERVAL.as_secs() || poll_secs > 86_400 {
            return Err(ConfigError::Invalid {
                key: "watch_poll_interval",
                value: poll_secs.to_string(),
                reason: format!(
                    "give a number of seconds from {} to 86400",
                    MIN_WATCH_POLL_INTERVAL.as_secs()
                ),
            });
        }
        let redis_url = match args.redis.clone().or(file.redis_url) {
            Some(u) => Some(parse_redis_url(&u)?),
            None => None,
        };
        let replicas = args.replicas.or(file.replicas).unwrap_or(1);
        if replicas == 0 || replicas > 1000 {
            return Err(ConfigError::Invalid {
                key: "replicas",
                value: replicas.to_string(),
                reason: "give a number of replicas from 1 to 1000".to_owned(),
            });
        }

        let fh = file.http.unwrap_or_default();
        let h = &args.http_opts;
        let listen_src = args.http.clone().or(fh.listen.clone());
        let listen_text = listen_src.as_deref().unwrap_or(DEFAULT_HTTP_ADDR);
        let listen = listen_text
            .parse::<ListenAddr>()
            .map_err(|e| ConfigError::Value {
                key: "http listen address",
                value: listen_text.to_owned(),
                source: Box::new(e),
            })?;
        let http_options = HttpConfig {
            listen,
            auth_token_file: h.auth_token_file.clone().or(fh.auth_token_file),
            allowed_hosts: h.allowed_hosts.clone().or(fh.allowed_hosts),
            allowed_origins: h.allowed_origins.clone().or(fh.allowed_origins),
            no_auth: h.no_auth || fh.no_auth.unwrap_or(false),
            stateless: h.stateless || fh.stateless.unwrap_or(false),
            json_response: h.json_response || fh.json_response.unwrap_or(false),
            insecure: h.insecure || fh.insecure.unwrap_or(false),
            tls_cert: h.tls_cert.clone().or(fh.tls_cert),
            tls_key: h.tls_key.clone().or(fh.tls_key),
            client_rate_limit: h.client_rate_limit.or(fh.client_rate_limit),
            http_timeout: h.http_timeout.or(fh.http_timeout),
            shutdown_grace: h.shutdown_grace.or(fh.shutdown_grace),
            session_idle_timeout: h.session_idle_timeout.or(fh.session_idle_timeout),
            max_sessions_per_token: h.max_sessions_per_token.or(fh.max_sessions_per_token),
            max_sessions: h.max_sessions.or(fh.max_sessions),
        };
        http_options.validate()?;
        let http = listen_src.map(|_| http_options.clone());

        Ok(Config {
            api_url,
            content_url,
            otlp_endpoint,
            profile,
            toolsets,
            read_only,
            bases,
            export_dir,
            sanitize,
            rate_limit_per_base,
            rate_limit_per_token,
            request_timeout: Duration::from_secs(timeout_secs),
            max_retries,
            log_level,
            log_format,
            sandbox: args.sandbox,
            confirm,
            confirm_threshold,
            journal,
            journal_retention,
            watch_poll_interval: Duration::from_secs(poll_secs),
            http,
            http_options,
            config_file,
            redis_url,
            replicas,
        })
    }
}

impl HttpConfig {
    /// The policy checks that need no I/O: TLS files in pairs, `no_auth` only on loopback, a
    /// non-loopback address only with TLS or `insecure`, a timeout of at least one second.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let refuse = |key: &'static str, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                value: self.listen.to_string(),
                reason: reason.to_owned(),
            })
        };
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid {
                key: "tls_cert/tls_key",
                value: String::new(),
                reason: "give both a certificate and a key, or neither".to_owned(),
            });
        }
        if self.http_timeout == Some(0) {
            return Err(ConfigError::Invalid {
                key: "http_timeout",
                value: "0".to_owned(),
                reason: "must be at least 1 second".to_owned(),
            });
        }
        if self.listen.is_loopback() {
            return Ok(());
        }
        if self.no_auth {
            return refuse(
                "no_auth",
                "--no-auth is only allowed on a loopback address; configure bearer tokens instead",
            );
        }
        if self.tls_cert.is_none() && !self.insecure {
            return refuse(
                "http listen address",
                "plain HTTP on a non-loopback address: give --tls-cert and --tls-key, or \
                 --insecure if a TLS proxy sits in front",
            );
        }
        Ok(())
    }
}

/// An existing directory, made absolute and canonical (symlinks in the configured path itself
/// are the operator's choice and resolved here, once).
fn existing_dir(key: &'static str, dir: &Path) -> Result<PathBuf, ConfigError> {
    let value = dir.display().to_string();
    match std::fs::canonicalize(dir) {
        Ok(abs) if abs.is_dir() => Ok(abs),
        Ok(_) => Err(ConfigError::Invalid {
            key,
            value,
            reason: "not a directory".to_owned(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ConfigError::Invalid {
            key,
            value,
            reason: "the directory does not exist; create it first".to_owned(),
        }),
        Err(source) => Err(ConfigError::Value {
            key,
            value,
            source: Box::new(source),
        }),
    }
}

fn parse_api_url(s: &str) -> Result<Url, ConfigError> {
    parse_url("api_url", s)
}

/// The traces URL of an OTLP/HTTP collector: `/v1/traces` appended to its path, unless the
/// path already ends with it.
fn otlp_traces_url(base: &Url) -> Url {
    let mut url = base.clone();
    if !url.path().trim_end_matches('/').ends_with("/v1/traces") {
        let path = format!("{}/v1/traces", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    url
}

fn parse_url(key: &'static str, s: &str) -> Result<Url, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        key,
        value: s.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(s.trim()).map_err(|e| ConfigError::Value {
        key,
        value: s.to_owned(),
        source: Box::new(e),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("use an http:// or https:// URL"));
    }
    if url.host_str().is_none() {
        return Err(invalid("the URL has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::Invalid {
            key,
            value: "<redacted: the URL holds credentials>".to_owned(),
            reason: "credentials in the URL are not allowed; use the keyring or AIRTABLE_API_KEY"
                .to_owned(),
        });
    }
    Ok(url)
}

fn positive(key: &'static str, v: u32) -> Result<u32, ConfigError> {
    if v == 0 {
        return Err(ConfigError::Invalid {
            key,
            value: v.to_string(),
            reason: "must be at least 1".to_owned(),
        });
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &ServeArgs, toml_text: &str) -> Result<Config, ConfigError> {
        let file = parse_file(Path::new("test.toml"), toml_text)?;
        Config::from_layers(args, &GlobalArgs::default(), file, None)
    }

    #[test]
    fn defaults() {
        let c = load(&ServeArgs::default(), "").unwrap();
        assert_eq!(c.api_url.as_str(), "https://api.airtable.com/");
        assert_eq!(c.profile.as_str(), "default");
        assert_eq!(c.rate_limit_per_base, 5);
        assert_eq!(c.rate_limit_per_token, 50);
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.log_level, "info");
        assert!(!c.read_only);
        assert!(c.http.is_none());
        assert_eq!(c.http_options.listen.to_string(), "127.0.0.1:8787");
        assert!(c.toolsets.is_all() && c.bases.is_none());
    }

    #[test]
    fn export_dir_must_be_an_existing_directory_and_sanitize_is_on_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let c = load(&ServeArgs::default(), "").unwrap();
        assert!(c.export_dir.is_none() && c.sanitize);
        let text = format!("export_dir = {:?}\nsanitize = \"off\"", dir.path());
        let c = load(&ServeArgs::default(), &text).unwrap();
        assert_eq!(c.export_dir, Some(dir.path().canonicalize().unwrap()));
        assert!(!c.sanitize);
        let args = ServeArgs {
            export_dir: Some(dir.path().join("missing")),
            sanitize: Some(OnOff::On),
            ..ServeArgs::default()
        };
        let e = load(&args, &text).unwrap_err().to_string();
        assert!(
            e.contains("export_dir") && e.contains("does not exist"),
            "{e}"
        );
        let file = dir.path().join("f.txt");
        std::fs::write(&file, "x").unwrap();
        let args = ServeArgs {
            export_dir: Some(file),
            ..ServeArgs::default()
        };
        let e = load(&args, "").unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");
        assert!(load(&ServeArgs::default(), "sanitize = \"maybe\"").is_err());
    }

    #[test]
    fn file_fills_what_flags_leave() {
        let text = r#"
            api_url = "http://127.0.0.1:9999"
            profile = "work"
            toolsets = ["Records", "schema", "records"]
            read_only = true
            bases = ["appAAAAAAAAAAAAAA"]
            rate_limit_per_base = 3
            request_timeout = 10
            log_level = "debug"
            log_format = "json"
            [http]
            listen = "127.0.0.1:9000"
            allowed_origins = ["http://localhost:*"]
        "#;
        let c = load(&ServeArgs::default(), text).unwrap();
        assert_eq!(c.api_url.as_str(), "http://127.0.0.1:9999/");
        assert_eq!(c.profile.as_str(), "work");
        assert_eq!(
            c.toolsets.iter().collect::<Vec<_>>(),
            [Toolset::Records, Toolset::Schema]
        );
        assert!(c.read_only);
        assert_eq!(
            c.bases
                .unwrap()
                .to_strings()
                .into_iter()
                .collect::<Vec<_>>(),
            ["appAAAAAAAAAAAAAA"]
        );
        assert_eq!(c.rate_limit_per_base, 3);
        assert_eq!(c.request_timeout, Duration::from_secs(10));
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.log_format, LogFormat::Json);
        let http = c.http.unwrap();
        assert_eq!(http.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(
            http.allowed_origins.unwrap(),
            vec!["http://localhost:*".to_owned()]
        );

        let mut args = ServeArgs::default();
        args.api.api_url = Some("http://127.0.0.1:1234".to_owned());
        args.api.profile = Some("personal".to_owned());
        args.api.rate_limit_per_base = Some(2);
        args.toolsets = Some(vec!["comments".to_owned()]);
        let c = load(&args, text).unwrap();
        assert_eq!(c.api_url.as_str(), "http://127.0.0.1:1234/");
        assert_eq!(c.profile.as_str(), "personal");
        assert_eq!(c.rate_limit_per_base, 2);
        assert_eq!(c.toolsets.iter().collect::<Vec<_>>(), [Toolset::Comments]);
    }

    #[test]
    fn the_otlp_endpoint_is_off_by_default_and_gets_the_traces_path() {
        assert_eq!(load(&ServeArgs::default(), "").unwrap().otlp_endpoint, None);
        let c = load(
            &ServeArgs::default(),
            "otlp_endpoint = \"http://collector:4318\"",
        )
        .unwrap();
        assert_eq!(
            c.otlp_endpoint.unwrap().as_str(),
            "http://collector:4318/v1/traces"
        );
        let mut args = ServeArgs {
            otlp_endpoint: Some("https://otel.example/v1/traces".to_owned()),
            ..ServeArgs::default()
        };
        let c = load(&args, "otlp_endpoint = \"http://ignored:4318\"").unwrap();
        assert_eq!(
            c.otlp_endpoint.unwrap().as_str(),
            "https://otel.example/v1/traces",
            "the flag wins over the file"
        );
        args.otlp_endpoint = Some("grpc://x".to_owned());
        let e = load(&args, "").unwrap_err().to_string();
        assert!(e.contains("otlp_endpoint"), "{e}");
    }

    #[test]
    fn the_content_url_is_optional_and_checked() {
        assert_eq!(load(&ServeArgs::default(), "").unwrap().content_url, None);
        let c = load(
            &ServeArgs::default(),
            "content_url = \"http://127.0.0.1:9/\"",
        )
        .unwrap();
        assert_eq!(c.content_url.unwrap().as_str(), "http://127.0.0.1:9/");
        let mut args = ServeArgs::default();
        args.api.content_url = Some("ftp://x".to_owned());
        let e = load(&args, "").unwrap_err().to_string();
        assert!(e.contains("content_url"), "{e}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = load(&ServeArgs::default(), "api_ur = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("api_ur"), "{e}");
        assert!(e.contains("test.toml"), "{e}");
        let e = load(&ServeArgs::default(), "[http]\nlisten_addr = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen_addr"), "{e}");
    }

    #[test]
    fn bad_values_are_refused() {
        for (text, key) in [
            ("api_url = \"ftp://x\"", "api_url"),
            ("api_url = \"http://user:pw@h\"", "api_url"),
            ("profile = \"a b\"", "profile"),
            ("toolsets = [\"recrods\"]", "toolsets"),
            ("bases = [\"tblAAAAAAAAAAAAAA\"]", "bases"),
            ("rate_limit_per_base = 0", "rate_limit_per_base"),
            ("request_timeout = 0", "request_timeout"),
            ("log_level = \"[[\"", "log_level"),
            ("[http]\nlisten = \"nowhere\"", "listen"),
            ("read_only = \"yes\"", "read_only"),
        ] {
            let e = load(&ServeArgs::default(), text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        let e = load(&ServeArgs::default(), "toolsets = [\"recrods\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean records"), "{e}");
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let global = GlobalArgs {
            config: Some(PathBuf::from("/nonexistent/airtable-mcp.toml")),
            ..GlobalArgs::default()
        };
        let e = Config::load(&ServeArgs::default(), &global).unwrap_err();
        assert!(matches!(e, ConfigError::NotFound { .. }), "{e}");
    }

    #[test]
    fn reads_an_explicit_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "profile = \"filed\"\n").unwrap();
        let global = GlobalArgs {
            config: Some(path.clone()),
            ..GlobalArgs::default()
        };
        let c = Config::load(&ServeArgs::default(), &global).unwrap();
        assert_eq!(c.profile.as_str(), "filed");
        assert_eq!(c.config_file.as_deref(), Some(path.as_path()));
    }

    // One test per former disagreement between the config path and the server's own parsing.

    #[test]
    fn toolsets_all_is_accepted_everywhere() {
        let c = load(&ServeArgs::default(), "toolsets = [\"all\"]").unwrap();
        assert!(c.toolsets.is_all());
        let args = ServeArgs {
            toolsets: Some(vec!["ALL".to_owned(), "records".to_owned()]),
            ..ServeArgs::default()
        };
        assert_eq!(load(&args, "").unwrap().toolsets, Toolsets::all());
    }

    #[test]
    fn localhost_port_is_accepted_everywhere() {
        let c = load(&ServeArgs::default(), "[http]\nlisten = \"localhost:9100\"").unwrap();
        assert_eq!(c.http.unwrap().listen.to_string(), "127.0.0.1:9100");
        let args = ServeArgs {
            http: Some("localhost:9101".to_owned()),
            ..ServeArgs::default()
        };
        let c = load(&args, "").unwrap();
        assert_eq!(c.http.unwrap().listen.to_string(), "127.0.0.1:9101");
        assert!("[::1]:80".parse::<ListenAddr>().unwrap().is_loopback());
    }

    #[test]
    fn an_empty_base_list_is_refused_everywhere() {
        // The config path used to accept it and the server to refuse it at startup.
        let e = load(&ServeArgs::default(), "bases = []").unwrap_err();
        assert!(e.to_string().contains("bases"), "{e}");
        let args = ServeArgs {
            bases: Some(vec![" ".to_owned()]),
            ..ServeArgs::default()
        };
        assert!(load(&args, "").is_err());
    }

    #[test]
    fn http_policy_is_checked_with_the_config() {
        // These used to be found only by the HTTP transport (and a lone --tls-cert was ignored
        // by its helper). Now every path refuses them the same way.
        for text in [
            "[http]\nlisten = \"0.0.0.0:8787\"\nno_auth = true\ninsecure = true",
            "[http]\nlisten = \"0.0.0.0:8787\"",
            "[http]\ntls_cert = \"c.pem\"",
            "[http]\nhttp_timeout = 0",
        ] {
            assert!(load(&ServeArgs::default(), text).is_err(), "{text}");
        }
        let c = load(
            &ServeArgs::default(),
            "[http]\nlisten = \"0.0.0.0:8787\"\ninsecure = true\nclient_rate_limit = 0\n\
             http_timeout = 5\nshutdown_grace = 2",
        )
        .unwrap();
        let h = c.http.unwrap();
        assert_eq!(
            (h.client_rate_limit, h.http_timeout, h.shutdown_grace),
            (Some(0), Some(5), Some(2))
        );
    }

    #[test]
    fn errors_keep_their_source() {
        use std::error::Error as _;
        let e = load(&ServeArgs::default(), "api_ur = 1").unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
        assert!(e.source().is_some_and(|s| s.is::<toml::de::Error>()));
        let e = load(&ServeArgs::default(), "log_level = \"[[\"").unwrap_err();
        assert!(e.source().is_some(), "{e}");
        let e = load(&ServeArgs::default(), "toolsets = [\"nope\"]").unwrap_err();
        assert!(e.source().is_some_and(|s| s.is::<UnknownToolset>()), "{e}");
        let e = load(&ServeArgs::default(), "profile = \"a b\"").unwrap_err();
        assert!(matches!(e, ConfigError::Profile(_)), "{e}");
        let e = load(&ServeArgs::default(), "bases = [\"appX\"]").unwrap_err();
        assert!(e.source().is_some_and(|s| s.is::<IdError>()), "{e}");
        // Credentials in the API URL never reach the message.
        let e = load(&ServeArgs::default(), "api_url = \"https://u:hunter2@h\"").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
