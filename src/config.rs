//! Validated configuration: flags, then env, then the TOML config file, then defaults.
//!
//! clap already merges each flag with its env var (the flag wins); [`Config::load`] fills what
//! is still unset from the TOML file (`--config FILE`, `AIRTABLE_MCP_CONFIG`, else
//! `<platform config dir>/airtable-mcp/config.toml` when it exists), then applies defaults and
//! validates everything. An unknown key in the file is an error naming the key.
//!
//! Boolean switches (`read_only`, `no_auth`, ...) can be turned on by any layer; a flag cannot
//! turn off what the file turns on.
//!
//! Example `config.toml` (every key optional):
//!
//! ```toml
//! api_url = "https://api.airtable.com"
//! profile = "work"
//! toolsets = ["records", "schema"]
//! read_only = false
//! bases = ["appXXXXXXXXXXXXXX"]
//! rate_limit_per_base = 5
//! rate_limit_per_token = 50
//! request_timeout = 30        # seconds
//! max_retries = 5
//! log_level = "info"
//! log_format = "text"         # or "json"
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
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::cli::{ApiArgs, GlobalArgs, LogFormat, ServeArgs};
use crate::env;

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
/// Default HTTP listen address.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8787";
/// The toolsets a user may name.
pub const TOOLSETS: &[&str] = &["records", "schema", "analysis", "transfer", "comments"];

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
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A setting has a value we refuse.
    #[error("invalid {key} {value:?}: {reason}")]
    Invalid {
        key: &'static str,
        value: String,
        reason: String,
    },
}

/// The TOML file, as written by the user. Every key optional; unknown keys rejected.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub api_url: Option<String>,
    pub profile: Option<String>,
    pub toolsets: Option<Vec<String>>,
    pub read_only: Option<bool>,
    pub bases: Option<Vec<String>>,
    pub rate_limit_per_base: Option<u32>,
    pub rate_limit_per_token: Option<u32>,
    /// Seconds.
    pub request_timeout: Option<u64>,
    pub max_retries: Option<u32>,
    pub log_level: Option<String>,
    pub log_format: Option<LogFormat>,
    pub http: Option<FileHttpConfig>,
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
}

/// The validated configuration every command uses.
#[derive(Debug, Clone)]
pub struct Config {
    /// Airtable API base URL (`--api-url`, `AIRTABLE_API_URL`, `api_url`).
    pub api_url: Url,
    /// Keyring profile (`--profile`, `AIRTABLE_MCP_PROFILE`, `profile`; default `default`).
    pub profile: String,
    /// Toolsets to expose, lower-case, deduplicated; `None` = all.
    pub toolsets: Option<Vec<String>>,
    /// Read-only tools only.
    pub read_only: bool,
    /// Bases the server may touch; `None` = every base the token sees.
    pub bases: Option<Vec<String>>,
    /// Requests per second per base.
    pub rate_limit_per_base: u32,
    /// Requests per second per token.
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
    /// `Some` when serving over HTTP (`--http [ADDR]` or `[http] listen` in the file).
    pub http: Option<HttpConfig>,
    /// HTTP options; also filled when `http` is `None` (for `doctor` and tests).
    pub http_options: HttpConfig,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
}

/// HTTP transport settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub auth_token_file: Option<PathBuf>,
    pub allowed_hosts: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub no_auth: bool,
    pub stateless: bool,
    pub json_response: bool,
    pub insecure: bool,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
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
        message: e.to_string().trim().replace('\n', " "),
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

    /// The layering itself, from an already parsed file (for tests and embedding).
    pub fn from_layers(
        args: &ServeArgs,
        global: &GlobalArgs,
        file: FileConfig,
        config_file: Option<PathBuf>,
    ) -> Result<Config, ConfigError> {
        let api = &args.api;
        let api_url_src = api
            .api_url
            .clone()
            .or(file.api_url)
            .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        let api_url = parse_api_url(&api_url_src)?;

        let profile = api
            .profile
            .clone()
            .or(file.profile)
            .unwrap_or_else(|| crate::auth::DEFAULT_PROFILE.to_owned());
        crate::auth::keyring::validate_profile(&profile).map_err(|e| ConfigError::Invalid {
            key: "profile",
            value: profile.clone(),
            reason: match e {
                crate::auth::AuthError::InvalidProfile { reason, .. } => reason,
                other => other.to_string(),
            },
        })?;

        let toolsets = match args.toolsets.clone().or(file.toolsets) {
            Some(list) => Some(validate_toolsets(&list)?),
            None => None,
        };
        let bases = match args.bases.clone().or(file.bases) {
            Some(list) => Some(validate_bases(&list)?),
            None => None,
        };
        let read_only = args.read_only || file.read_only.unwrap_or(false);

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
            return Err(ConfigError::Invalid {
                key: "log_level",
                value: log_level,
                reason: e.to_string(),
            });
        }
        let log_format = global.log_format.or(file.log_format).unwrap_or_default();

        let fh = file.http.unwrap_or_default();
        let h = &args.http_opts;
        let listen_src = args.http.clone().or(fh.listen.clone());
        let listen = parse_listen(listen_src.as_deref().unwrap_or(DEFAULT_HTTP_ADDR))?;
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
        };
        if http_options.tls_cert.is_some() != http_options.tls_key.is_some() {
            return Err(ConfigError::Invalid {
                key: "tls_cert/tls_key",
                value: String::new(),
                reason: "give both a certificate and a key, or neither".to_owned(),
            });
        }
        let http = listen_src.map(|_| http_options.clone());

        Ok(Config {
            api_url,
            profile,
            toolsets,
            read_only,
            bases,
            rate_limit_per_base,
            rate_limit_per_token,
            request_timeout: Duration::from_secs(timeout_secs),
            max_retries,
            log_level,
            log_format,
            sandbox: args.sandbox,
            http,
            http_options,
            config_file,
        })
    }
}

fn parse_api_url(s: &str) -> Result<Url, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        key: "api_url",
        value: s.to_owned(),
        reason,
    };
    let url = Url::parse(s.trim()).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("use an http:// or https:// URL".to_owned()));
    }
    if url.host_str().is_none() {
        return Err(invalid("the URL has no host".to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials in the URL are not allowed; use the keyring or AIRTABLE_API_KEY"
                .to_owned(),
        ));
    }
    Ok(url)
}

fn parse_listen(s: &str) -> Result<SocketAddr, ConfigError> {
    s.trim().parse().map_err(|e| ConfigError::Invalid {
        key: "http listen address",
        value: s.to_owned(),
        reason: format!("{e} (give IP:PORT, e.g. {DEFAULT_HTTP_ADDR})"),
    })
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

fn validate_toolsets(list: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::new();
    for raw in list {
        let t = raw.trim().to_ascii_lowercase();
        if t.is_empty() {
            continue;
        }
        if !TOOLSETS.contains(&t.as_str()) {
            let hint = TOOLSETS
                .iter()
                .map(|k| (strsim::jaro_winkler(k, &t), *k))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, k)| format!("did you mean {k}? "))
                .unwrap_or_default();
            return Err(ConfigError::Invalid {
                key: "toolsets",
                value: raw.clone(),
                reason: format!("{hint}known toolsets: {}", TOOLSETS.join(", ")),
            });
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.is_empty() {
        return Err(ConfigError::Invalid {
            key: "toolsets",
            value: String::new(),
            reason: format!("name at least one of {}", TOOLSETS.join(", ")),
        });
    }
    Ok(out)
}

fn validate_bases(list: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::new();
    for raw in list {
        let b = raw.trim();
        if b.is_empty() {
            continue;
        }
        let ok = b.len() == 17
            && b.starts_with("app")
            && b[3..].chars().all(|c| c.is_ascii_alphanumeric());
        if !ok {
            return Err(ConfigError::Invalid {
                key: "bases",
                value: raw.clone(),
                reason: "a base ID is `app` followed by 14 letters or digits".to_owned(),
            });
        }
        if !out.iter().any(|x| x == b) {
            out.push(b.to_owned());
        }
    }
    Ok(out)
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
        assert_eq!(c.profile, "default");
        assert_eq!(c.rate_limit_per_base, 5);
        assert_eq!(c.rate_limit_per_token, 50);
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.log_level, "info");
        assert!(!c.read_only);
        assert!(c.http.is_none());
        assert_eq!(c.http_options.listen.to_string(), "127.0.0.1:8787");
        assert!(c.toolsets.is_none() && c.bases.is_none());
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
        assert_eq!(c.profile, "work");
        assert_eq!(c.toolsets.as_deref().unwrap(), ["records", "schema"]);
        assert!(c.read_only);
        assert_eq!(c.bases.as_deref().unwrap(), ["appAAAAAAAAAAAAAA"]);
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
        assert_eq!(c.profile, "personal");
        assert_eq!(c.rate_limit_per_base, 2);
        assert_eq!(c.toolsets.as_deref().unwrap(), ["comments"]);
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
        assert_eq!(c.profile, "filed");
        assert_eq!(c.config_file.as_deref(), Some(path.as_path()));
    }
}
