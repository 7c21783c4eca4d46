//! One registry of every environment variable the binary reads.
//!
//! Each name is a documented constant here and nowhere else; `--help` and the
//! README table are generated from [`ENV_VARS`].

/// Personal access token (the name most peers use). Highest priority.
pub const AIRTABLE_API_KEY: &str = "AIRTABLE_API_KEY";
/// Personal access token (alias used by pyairtable users).
pub const AIRTABLE_TOKEN: &str = "AIRTABLE_TOKEN";
/// Personal access token (alias used by the PyAirtable gateway).
pub const AIRTABLE_PAT: &str = "AIRTABLE_PAT";
/// Base URL of the Airtable Web API (default `https://api.airtable.com`).
pub const AIRTABLE_API_URL: &str = "AIRTABLE_API_URL";
/// Root of Airtable's content API, for attachment uploads (default `https://content.airtable.com`
/// with the default API URL, else the API URL).
pub const AIRTABLE_MCP_CONTENT_URL: &str = "AIRTABLE_MCP_CONTENT_URL";
/// Keyring profile to read the token from (default `default`).
pub const AIRTABLE_MCP_PROFILE: &str = "AIRTABLE_MCP_PROFILE";
/// Comma-separated toolsets to expose (records, schema, analysis, transfer, comments, attachments).
pub const AIRTABLE_MCP_TOOLSETS: &str = "AIRTABLE_MCP_TOOLSETS";
/// `true` to expose read-only tools only.
pub const AIRTABLE_MCP_READ_ONLY: &str = "AIRTABLE_MCP_READ_ONLY";
/// Comma-separated base IDs the server may touch.
pub const AIRTABLE_MCP_BASES: &str = "AIRTABLE_MCP_BASES";
/// Directory export_table_csv may write into (unset: no tool touches the host's files).
pub const AIRTABLE_MCP_EXPORT_DIR: &str = "AIRTABLE_MCP_EXPORT_DIR";
/// `on` (default) or `off`: strip invisible and bidi control characters from tool results.
pub const AIRTABLE_MCP_SANITIZE: &str = "AIRTABLE_MCP_SANITIZE";
/// Bearer tokens accepted by the HTTP transport (comma-separated).
pub const AIRTABLE_MCP_AUTH_TOKENS: &str = "AIRTABLE_MCP_AUTH_TOKENS";
/// Log filter (tracing `EnvFilter` syntax, e.g. `info`, `airtable_mcp=debug`).
pub const AIRTABLE_MCP_LOG: &str = "AIRTABLE_MCP_LOG";
/// Log format: `text` or `json`.
pub const AIRTABLE_MCP_LOG_FORMAT: &str = "AIRTABLE_MCP_LOG_FORMAT";
/// Path of the TOML configuration file.
pub const AIRTABLE_MCP_CONFIG: &str = "AIRTABLE_MCP_CONFIG";
/// Requests per second allowed per base (default 5, Airtable's limit).
pub const AIRTABLE_MCP_RATE_LIMIT_PER_BASE: &str = "AIRTABLE_MCP_RATE_LIMIT_PER_BASE";
/// Requests per second allowed per token (default 50, Airtable's limit).
pub const AIRTABLE_MCP_RATE_LIMIT_PER_TOKEN: &str = "AIRTABLE_MCP_RATE_LIMIT_PER_TOKEN";
/// Timeout of one Airtable request, in seconds (default 30).
pub const AIRTABLE_MCP_REQUEST_TIMEOUT: &str = "AIRTABLE_MCP_REQUEST_TIMEOUT";
/// Keyring service name of the stored entries (default `airtable-mcp`).
pub const AIRTABLE_MCP_KEYRING_SERVICE: &str = "AIRTABLE_MCP_KEYRING_SERVICE";
/// OAuth origin for `auth login --oauth` (default `https://airtable.com`, or the API URL when it
/// is not the default).
pub const AIRTABLE_MCP_OAUTH_URL: &str = "AIRTABLE_MCP_OAUTH_URL";
/// Client secret of a confidential OAuth integration (`auth login --oauth`; never on argv).
pub const AIRTABLE_MCP_OAUTH_CLIENT_SECRET: &str = "AIRTABLE_MCP_OAUTH_CLIENT_SECRET";
/// Tests only: `1` makes the Secret Service tests mandatory (set by tools/with-secret-service.sh).
pub const AIRTABLE_MCP_TEST_SECRET_SERVICE: &str = "AIRTABLE_MCP_TEST_SECRET_SERVICE";
/// When risky writes ask for confirmation: `auto` (default), `always`, `never`.
pub const AIRTABLE_MCP_CONFIRM: &str = "AIRTABLE_MCP_CONFIRM";
/// Batch writes of more records than this ask for confirmation (default 50).
pub const AIRTABLE_MCP_CONFIRM_THRESHOLD: &str = "AIRTABLE_MCP_CONFIRM_THRESHOLD";
/// Seconds between polls of watched tables (change feed; default 30, at least 5).
pub const AIRTABLE_MCP_WATCH_POLL_INTERVAL: &str = "AIRTABLE_MCP_WATCH_POLL_INTERVAL";
/// SQLite file of the write journal.
pub const AIRTABLE_MCP_JOURNAL: &str = "AIRTABLE_MCP_JOURNAL";
/// Days a journal entry is kept (default 30).
pub const AIRTABLE_MCP_JOURNAL_RETENTION_DAYS: &str = "AIRTABLE_MCP_JOURNAL_RETENTION_DAYS";
/// Key (hex or base64, at least 32 bytes) sealing confirm tokens and MRTR request states;
/// give every replica the same one (default: random per process).
pub const AIRTABLE_MCP_STATE_KEY: &str = "AIRTABLE_MCP_STATE_KEY";
/// OTLP/HTTP collector URL to export traces to (e.g. `http://otel-collector:4318`); unset: no
/// traces are exported.
pub const AIRTABLE_MCP_OTLP_ENDPOINT: &str = "AIRTABLE_MCP_OTLP_ENDPOINT";
/// Keyring backend: `auto` (default), `secret-service`, `keyutils`, `keychain`, `windows`, `none`.
pub const AIRTABLE_MCP_KEYRING: &str = "AIRTABLE_MCP_KEYRING";
// --- serve --http --oauth (remote users)
/// `serve --oauth`: client ID of the server's Airtable OAuth integration.
pub const AIRTABLE_MCP_OAUTH_CLIENT_ID: &str = "AIRTABLE_MCP_OAUTH_CLIENT_ID";
/// `serve --oauth`: canonical public URL of the MCP endpoint (resource and issuer origin).
pub const AIRTABLE_MCP_PUBLIC_URL: &str = "AIRTABLE_MCP_PUBLIC_URL";
/// `serve --oauth`: SQLite file of the OAuth store.
pub const AIRTABLE_MCP_OAUTH_STORE: &str = "AIRTABLE_MCP_OAUTH_STORE";
/// `serve --oauth`: standard base64 of the 32-byte key sealing stored Airtable grants
/// (default: a key generated into the keyring on first use).
pub const AIRTABLE_MCP_OAUTH_KEY: &str = "AIRTABLE_MCP_OAUTH_KEY";

/// Every variable with a one-line description, in the order tokens are resolved.
/// Redis URL of the state shared by several replicas (`serve --redis`; may hold a password).
pub const AIRTABLE_MCP_REDIS_URL: &str = "AIRTABLE_MCP_REDIS_URL";
/// Replicas sharing one Airtable limit (`serve --replicas`; the Redis fallback divides by it).
pub const AIRTABLE_MCP_REPLICAS: &str = "AIRTABLE_MCP_REPLICAS";

pub const ENV_VARS: &[(&str, &str)] = &[
    (
        AIRTABLE_API_KEY,
        "Airtable personal access token (checked first)",
    ),
    (AIRTABLE_TOKEN, "Airtable personal access token (alias)"),
    (AIRTABLE_PAT, "Airtable personal access token (alias)"),
    (
        AIRTABLE_API_URL,
        "Airtable API base URL (default https://api.airtable.com)",
    ),
    (
        AIRTABLE_MCP_CONTENT_URL,
        "content API URL for uploads (default: content.airtable.com or the API URL)",
    ),
    (
        AIRTABLE_MCP_PROFILE,
        "keyring profile holding the token (default `default`)",
    ),
    (
        AIRTABLE_MCP_RATE_LIMIT_PER_BASE,
        "requests per second per base (default 5)",
    ),
    (
        AIRTABLE_MCP_RATE_LIMIT_PER_TOKEN,
        "requests per second per token (default 50)",
    ),
    (
        AIRTABLE_MCP_REQUEST_TIMEOUT,
        "timeout of one Airtable request in seconds (default 30)",
    ),
    (AIRTABLE_MCP_TOOLSETS, "toolsets to expose, comma-separated"),
    (
        AIRTABLE_MCP_READ_ONLY,
        "true: expose and allow read-only tools only",
    ),
    (
        AIRTABLE_MCP_BASES,
        "base IDs the server may touch, comma-separated",
    ),
    (
        AIRTABLE_MCP_CONFIRM,
        "ask before risky writes: auto (default), always, never",
    ),
    (
        AIRTABLE_MCP_CONFIRM_THRESHOLD,
        "batch writes above this many records ask first (default 50)",
    ),
    (
        AIRTABLE_MCP_STATE_KEY,
        "key sealing confirm tokens, shared by replicas (hex/base64)",
    ),
    (
        AIRTABLE_MCP_JOURNAL,
        "SQLite file of the write journal (undo)",
    ),
    (
        AIRTABLE_MCP_JOURNAL_RETENTION_DAYS,
        "days journal entries are kept (default 30)",
    ),
    (
        AIRTABLE_MCP_WATCH_POLL_INTERVAL,
        "seconds between change-feed polls (default 30, min 5)",
    ),
    (
        AIRTABLE_MCP_EXPORT_DIR,
        "directory export_table_csv may write into (default: none)",
    ),
    (
        AIRTABLE_MCP_SANITIZE,
        "on|off: strip invisible/bidi characters (default on)",
    ),
    (
        AIRTABLE_MCP_AUTH_TOKENS,
        "bearer tokens accepted over HTTP, comma-separated",
    ),
    (
        AIRTABLE_MCP_LOG,
        "log filter, e.g. info or airtable_mcp=debug",
    ),
    (AIRTABLE_MCP_LOG_FORMAT, "log format: text or json"),
    (
        AIRTABLE_MCP_OTLP_ENDPOINT,
        "OTLP/HTTP collector URL for traces (unset: none exported)",
    ),
    (AIRTABLE_MCP_CONFIG, "path of the TOML config file"),
    (
        AIRTABLE_MCP_KEYRING,
        "keyring: auto|secret-service|keyutils|keychain|windows|none",
    ),
    (
        AIRTABLE_MCP_KEYRING_SERVICE,
        "keyring service name of the entries (default airtable-mcp)",
    ),
    (
        AIRTABLE_MCP_TEST_SECRET_SERVICE,
        "tests only: 1 = the Secret Service tests must pass",
    ),
    (
        AIRTABLE_MCP_OAUTH_URL,
        "Airtable OAuth origin for auth login --oauth and serve --oauth (default https://airtable.com)",
    ),
    (
        AIRTABLE_MCP_OAUTH_CLIENT_SECRET,
        "client secret of a confidential OAuth integration",
    ),
    // --- serve --http --oauth (remote users)
    (
        AIRTABLE_MCP_OAUTH_CLIENT_ID,
        "serve --oauth: client ID of the server's Airtable integration",
    ),
    (
        AIRTABLE_MCP_PUBLIC_URL,
        "serve --oauth: public URL of the MCP endpoint (…/mcp)",
    ),
    (
        AIRTABLE_MCP_OAUTH_STORE,
        "serve --oauth: SQLite file of the OAuth store",
    ),
    (
        AIRTABLE_MCP_OAUTH_KEY,
        "serve --oauth: base64 32-byte key sealing stored grants",
    ),
    (
        AIRTABLE_MCP_REDIS_URL,
        "Redis URL for rate limits shared by replicas (redis:// or rediss://)",
    ),
    (
        AIRTABLE_MCP_REPLICAS,
        "replicas sharing the limit (local share while Redis is down; default 1)",
    ),
];

/// Names whose value is a secret: never shown by `--help` and never logged.
pub const SECRET_ENV_VARS: &[&str] = &[
    AIRTABLE_API_KEY,
    AIRTABLE_TOKEN,
    AIRTABLE_PAT,
    AIRTABLE_MCP_AUTH_TOKENS,
    AIRTABLE_MCP_STATE_KEY,
    AIRTABLE_MCP_OAUTH_CLIENT_SECRET,
    AIRTABLE_MCP_OAUTH_KEY,
    AIRTABLE_MCP_REDIS_URL,
];

/// The token env vars in resolution order.
pub const TOKEN_ENV_VARS: &[&str] = &[AIRTABLE_API_KEY, AIRTABLE_TOKEN, AIRTABLE_PAT];
