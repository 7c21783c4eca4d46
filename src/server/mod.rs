//! The rmcp server handler and its transports (stdio here; HTTP in `http`).
//!
//! - [`ServerState`] (shared, in an `Arc`): the Airtable client or the reason there is none,
//!   the resolved options (toolsets, read-only, allowed bases, result budget), the base-schema
//!   cache, and the tool router filtered by toolsets and read-only mode.
//! - [`AirtableServer`]: the rmcp `ServerHandler`. [`AirtableServer::new`] uses the state's
//!   client; [`AirtableServer::for_token`] gives one HTTP session its own Airtable token (same
//!   connection pool, its own schema cache, so nothing leaks between sessions).
//! - [`run`]: `airtable-mcp serve`; [`run_tools_command`]: `airtable-mcp tools list|schema`.

mod cache;
pub mod http;
pub mod stdio;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt, tool_handler};
use secrecy::SecretString;

pub use cache::SchemaCache;

use crate::airtable::{self, BaseId, Client, ClientConfig};
use crate::cli::{GlobalArgs, ServeArgs, ToolsCommand};
use crate::config::Config;
use crate::tools::{self, Access, ToolError, Toolset};

/// Errors of the server layer (startup and transports).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A flag or setting has a bad value.
    #[error("{0}")]
    Config(String),
    /// The Airtable client could not be built.
    #[error("cannot build the Airtable client: {0}")]
    Client(#[from] airtable::Error),
    /// The in-process sandbox did not start.
    #[error("cannot start the sandbox: {0}")]
    Sandbox(String),
    /// The MCP transport failed.
    #[error("MCP transport error: {0}")]
    Transport(String),
}

/// How long a base schema stays cached (schema tools invalidate it at once).
pub const DEFAULT_SCHEMA_TTL: Duration = Duration::from_secs(300);

/// Observes every tool call (for metrics): tool name, outcome, duration.
pub type CallObserver = Arc<dyn Fn(&str, CallOutcome, Duration) + Send + Sync>;

/// How a tool call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// A normal result.
    Ok,
    /// An `isError` result (user-actionable failure).
    ToolError,
    /// A JSON-RPC error (unknown tool, or a bug).
    ProtocolError,
}

impl CallOutcome {
    /// "ok", "tool_error" or "protocol_error".
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::ToolError => "tool_error",
            CallOutcome::ProtocolError => "protocol_error",
        }
    }
}

/// Resolved server settings.
#[derive(Clone)]
pub struct ServerOptions {
    /// Toolsets exposed.
    pub toolsets: BTreeSet<Toolset>,
    /// Expose and allow read tools only (applied last; always wins).
    pub read_only: bool,
    /// Bases that may be touched (None = every base the token can see).
    pub allowed_bases: Option<BTreeSet<String>>,
    /// Base schema cache lifetime.
    pub schema_ttl: Duration,
    /// Byte budget of one tool result's JSON.
    pub result_budget: usize,
    /// Optional observer of tool calls (metrics).
    pub on_call: Option<CallObserver>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            toolsets: Toolset::ALL.into_iter().collect(),
            read_only: false,
            allowed_bases: None,
            schema_ttl: DEFAULT_SCHEMA_TTL,
            result_budget: tools::result::DEFAULT_RESULT_BUDGET,
            on_call: None,
        }
    }
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("toolsets", &self.toolsets)
            .field("read_only", &self.read_only)
            .field("allowed_bases", &self.allowed_bases)
            .field("schema_ttl", &self.schema_ttl)
            .field("result_budget", &self.result_budget)
            .finish_non_exhaustive()
    }
}

impl ServerOptions {
    /// From the validated configuration (toolsets, read-only, bases are parsed there, once).
    pub fn from_config(cfg: &Config) -> Result<Self, ServerError> {
        Ok(ServerOptions {
            toolsets: cfg.toolsets.as_set().clone(),
            read_only: cfg.read_only,
            allowed_bases: cfg.bases.as_ref().map(|b| b.to_strings()),
            ..ServerOptions::default()
        })
    }

    /// Whether a tool is exposed under these options (toolsets, then read-only last).
    pub fn exposes(&self, spec: &tools::ToolSpec) -> bool {
        (self.toolsets.contains(&spec.toolset) || spec.is_discovery())
            && !(self.read_only && spec.access == Access::Write)
    }
}

/// Why there is no usable Airtable client. Shown (as an `isError` result) by every tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenProblem {
    message: String,
}

impl TokenProblem {
    /// No token in the environment (nor the keyring).
    pub fn missing() -> Self {
        TokenProblem {
            message: "No Airtable token is configured, so this server cannot reach Airtable. Fix: run `airtable-mcp auth login` in a terminal (stores a personal access token in the OS keyring), or set the AIRTABLE_API_KEY environment variable in this MCP server's configuration; then restart the server. Create a token at https://airtable.com/create/tokens with the scopes data.records:read/write and schema.bases:read/write.".to_owned(),
        }
    }

    /// Any other reason, in words a user can act on (never containing a secret).
    pub fn new(message: impl Into<String>) -> Self {
        TokenProblem {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for TokenProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// State shared by every session of one server process.
pub struct ServerState {
    client: Result<Client, TokenProblem>,
    /// A client without a usable token, kept when `client` is an error so that HTTP sessions
    /// bringing their own token can still share one connection pool (`for_token`).
    pool: Option<Client>,
    options: ServerOptions,
    cache: Arc<SchemaCache>,
    router: ToolRouter<AirtableServer>,
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState")
            .field("has_client", &self.client.is_ok())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ServerState {
    /// Build the state: the router is filtered here, once.
    pub fn new(client: Result<Client, TokenProblem>, options: ServerOptions) -> Arc<Self> {
        let mut router = ToolRouter::new();
        for route in tools::router() {
            let exposed = tools::find_spec(route.name()).is_some_and(|s| options.exposes(s));
            if exposed {
                router.add_route(route);
            }
        }
        Arc::new(ServerState {
            client,
            pool: None,
            cache: Arc::new(SchemaCache::new(options.schema_ttl)),
            options,
            router,
        })
    }

    /// Like [`ServerState::new`] for a server without its own token: `pool` is a client built
    /// from the configuration with a placeholder token, from which HTTP sessions that bring an
    /// Airtable token get theirs (`AirtableServer::for_token`).
    pub fn without_token(problem: TokenProblem, pool: Client, options: ServerOptions) -> Arc<Self> {
        let state = ServerState::new(Err(problem), options);
        match Arc::try_unwrap(state) {
            Ok(mut s) => {
                s.pool = Some(pool);
                Arc::new(s)
            }
            Err(shared) => shared,
        }
    }

    /// The resolved options.
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// The process-wide client, or why there is none.
    pub fn client(&self) -> Result<&Client, &TokenProblem> {
        self.client.as_ref()
    }

    /// Names of the tools exposed, sorted.
    pub fn tool_names(&self) -> Vec<String> {
        self.router
            .list_all()
            .into_iter()
            .map(|t| t.name.into_owned())
            .collect()
    }
}

/// The MCP server: an rmcp `ServerHandler` over one Airtable client.
#[derive(Clone)]
pub struct AirtableServer {
    state: Arc<ServerState>,
    client: Result<Client, TokenProblem>,
    cache: Arc<SchemaCache>,
    /// The token came from the client's X-Airtable-Token header (token advice is about it).
    header_token: bool,
}

impl std::fmt::Debug for AirtableServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AirtableServer")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The server's instructions: the workflow a model should follow.
pub const INSTRUCTIONS: &str = "Airtable access. Workflow: 1) list_bases to find the base ID (appXXXXXXXXXXXXXX); 2) list_tables(base_id) to see its tables (IDs or names both work as table_id), and get_field_info(base_id, table_id) for field names, types and select choices; 3) get_records(base_id, table_id, fields=[...], filter_by_formula, sort, max_records) to read, following `offset` while has_more is true; search_records for case-insensitive text search. Ask only for the fields you need. Writes: create_record / update_record / delete_record, or the batch_* tools for many records (any number; sent 10 at a time). Field names are checked against the schema before anything is sent. Formulas use Airtable syntax: {Field Name} in braces, text in double quotes, e.g. AND({Status}=\"Done\", {Due}<TODAY()).";

impl AirtableServer {
    /// A server using the state's client (stdio, or HTTP without a per-session token).
    pub fn new(state: Arc<ServerState>) -> Self {
        AirtableServer {
            client: state.client.clone(),
            cache: state.cache.clone(),
            state,
            header_token: false,
        }
    }

    /// A server for one HTTP session that brought its own Airtable token: same connection pool
    /// and limits as the state's client (`Client::with_token`), and a schema cache of its own.
    /// Without a base client (no --api-url problem), the session gets the state's problem.
    pub fn for_token(state: Arc<ServerState>, token: SecretString) -> Self {
        let client = match (&state.client, &state.pool) {
            (Ok(c), _) | (Err(_), Some(c)) => Ok(c.with_token(token)),
            (Err(p), None) => Err(p.clone()),
        };
        AirtableServer {
            client,
            cache: Arc::new(SchemaCache::new(state.options.schema_ttl)),
            state,
            header_token: true,
        }
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    // ---- helpers for the tools ----

    pub(crate) fn client(&self) -> Result<&Client, ToolError> {
        self.client
            .as_ref()
            .map_err(|p| ToolError::Unavailable(p.message().to_owned()))
    }

    /// The server options.
    pub fn options(&self) -> &ServerOptions {
        &self.state.options
    }

    pub(crate) fn budget(&self) -> usize {
        self.state.options.result_budget
    }

    /// Parse a base ID and check it against the allow-list.
    pub(crate) fn base(&self, base_id: &str) -> Result<BaseId, ToolError> {
        let base = BaseId::from_str(base_id.trim()).map_err(|e| {
            ToolError::Invalid(format!(
                "{e}. Call list_bases to get the IDs of the bases this token can see."
            ))
        })?;
        self.check_base_allowed(base.as_ref())?;
        Ok(base)
    }

    pub(crate) fn check_base_allowed(&self, base: &str) -> Result<(), ToolError> {
        if let Some(allowed) = &self.state.options.allowed_bases
            && !allowed.contains(base)
        {
            return Err(ToolError::BaseNotAllowed {
                base: base.to_owned(),
                allowed: allowed.iter().cloned().collect::<Vec<_>>().join(","),
            });
        }
        Ok(())
    }

    /// Whether a base may be shown (list_bases filters with it).
    pub(crate) fn base_visible(&self, base: &str) -> bool {
        self.state
            .options
            .allowed_bases
            .as_ref()
            .is_none_or(|a| a.contains(base))
    }

    /// Refuse a write in read-only mode (second line of defence after the router filter).
    pub(crate) fn require_write(&self, tool: &str) -> Result<(), ToolError> {
        if self.state.options.read_only {
            return Err(ToolError::ReadOnly {
                tool: tool.to_owned(),
            });
        }
        Ok(())
    }

    /// The base schema, from the cache when fresh.
    pub(crate) async fn schema(
        &self,
        base: &BaseId,
    ) -> Result<Arc<airtable::BaseSchema>, ToolError> {
        let client = self.client()?;
        self.cache.get(client, base).await.map_err(|e| {
            ToolError::api(
                "read the base schema",
                base.as_ref(),
                tools::result::scope::SCHEMA_READ,
                e,
            )
        })
    }

    /// The base schema when it can be read; None when the token cannot read schemas (the
    /// request itself will then report any real problem). Auth failures still surface.
    pub(crate) async fn schema_opt(
        &self,
        base: &BaseId,
    ) -> Result<Option<Arc<airtable::BaseSchema>>, ToolError> {
        match self.schema(base).await {
            Ok(s) => Ok(Some(s)),
            Err(ToolError::Api { source, .. }) if source.status() == Some(401) => {
                Err(ToolError::api(
                    "read the base schema",
                    base.as_ref(),
                    tools::result::scope::SCHEMA_READ,
                    *source,
                ))
            }
            Err(ToolError::Api { source, .. }) => {
                tracing::debug!("base schema unavailable, skipping validation: {source}");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Forget a base's cached schema (after a schema change).
    pub(crate) fn invalidate_schema(&self, base: &BaseId) {
        self.cache.invalidate(base.as_ref());
    }

    fn refusal(&self, name: &str) -> Option<ToolError> {
        let spec = tools::find_spec(name)?;
        if self.state.options.read_only && spec.access == Access::Write {
            return Some(ToolError::ReadOnly {
                tool: name.to_owned(),
            });
        }
        if !self.state.options.toolsets.contains(&spec.toolset) && !spec.is_discovery() {
            return Some(ToolError::ToolsetDisabled {
                tool: name.to_owned(),
                toolset: spec.toolset.to_string(),
            });
        }
        None
    }
}

#[tool_handler(router = self.state.router)]
impl ServerHandler for AirtableServer {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder().enable_tools().build();
        ServerConfig::new(caps)
            .with_server_info(Implementation::new(
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let started = Instant::now();
        let name = request.name.to_string();
        let mut result = if self.state.router.has_route(&name) {
            let tcc = ToolCallContext::new(self, request, context);
            self.state.router.call(tcc).await
        } else if let Some(refusal) = self.refusal(&name) {
            Ok(CallToolResult::error(vec![ContentBlock::text(refusal.text())]).into())
        } else {
            Err(ErrorData::invalid_params(
                format!("unknown tool {name:?}; call tools/list for the available tools"),
                None,
            ))
        };
        if self.header_token
            && let Ok(CallToolResponse::Complete(r)) = &mut result
        {
            http::header_token_advice(r);
        }
        if let Some(observer) = &self.state.options.on_call {
            let outcome = match &result {
                Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => {
                    CallOutcome::ToolError
                }
                Ok(_) => CallOutcome::Ok,
                Err(_) => CallOutcome::ProtocolError,
            };
            observer(&name, outcome, started.elapsed());
        }
        result
    }
}

// ---------------------------------------------------------------------------------------------
// Startup

/// The Airtable token for `profile` (env, then keyring), or the problem every tool will report.
pub async fn resolve_token(
    profile: &crate::profile::Profile,
) -> Result<SecretString, TokenProblem> {
    match crate::auth::resolve_token(profile).await {
        Ok(t) => {
            tracing::info!(source = %t.source, "Airtable token found");
            Ok(t.secret)
        }
        Err(crate::auth::AuthError::NoToken(_)) => Err(TokenProblem::missing()),
        Err(e) => Err(TokenProblem::new(format!(
            "No usable Airtable token ({e}). Fix: run `airtable-mcp auth login`, or set the AIRTABLE_API_KEY environment variable in this MCP server's configuration; then restart the server."
        ))),
    }
}

/// The client settings from the configuration (token supplied separately).
pub fn client_config(cfg: &Config, api_url: url::Url, token: SecretString) -> ClientConfig {
    let mut c = ClientConfig::new(api_url, token);
    c.per_base_rps = cfg.rate_limit_per_base.max(1);
    c.per_token_rps = cfg.rate_limit_per_token.max(1);
    c.timeout = cfg.request_timeout;
    c.max_retries = cfg.max_retries;
    c
}

/// What `serve` needs, built from its configuration; shared by the stdio and HTTP transports.
pub struct Prepared {
    /// The shared state.
    pub state: Arc<ServerState>,
    /// The in-process sandbox (with --sandbox); keep it alive while serving.
    pub sandbox: Option<crate::sandbox::SandboxHandle>,
}

/// Build the state: options, token, client. With `sandbox`, spawn the demo sandbox in-process,
/// point the client at it and print its URL and demo base ID on stderr.
pub async fn prepare(cfg: &Config) -> Result<Prepared, ServerError> {
    let options = ServerOptions::from_config(cfg)?;
    if cfg.sandbox {
        let sb_cfg = crate::sandbox::SandboxConfig {
            seed: crate::sandbox::Seed::Demo,
            token: crate::sandbox::random_token(),
            ..crate::sandbox::SandboxConfig::default()
        };
        let handle = crate::sandbox::spawn(sb_cfg, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| ServerError::Sandbox(e.to_string()))?;
        let token = SecretString::from(handle.token().to_owned());
        let client = Client::new(client_config(cfg, handle.url(), token))?;
        eprintln!(
            "airtable-mcp: using the in-process sandbox at {} with the demo base {} (in memory, lost on exit)",
            handle.url(),
            crate::sandbox::DEMO_BASE_ID
        );
        return Ok(Prepared {
            state: ServerState::new(Ok(client), options),
            sandbox: Some(handle),
        });
    }
    let state = match resolve_token(&cfg.profile).await {
        Ok(token) => {
            let client = Client::new(client_config(cfg, cfg.api_url.clone(), token))?;
            ServerState::new(Ok(client), options)
        }
        Err(problem) => {
            tracing::warn!("{problem}");
            // No token of our own: HTTP clients may still bring theirs (X-Airtable-Token).
            let placeholder = SecretString::from("no-token-configured".to_owned());
            let pool = Client::new(client_config(cfg, cfg.api_url.clone(), placeholder))?;
            ServerState::without_token(problem, pool, options)
        }
    };
    Ok(Prepared {
        state,
        sandbox: None,
    })
}

/// `airtable-mcp serve`.
pub async fn run(args: ServeArgs, global: GlobalArgs) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(&args, &global)?;
    if let Some(h) = &cfg.http {
        // Validate the HTTP options (auth, TLS policy) before touching the token or the API.
        let opts = http::HttpOptions::from_config(h, &args.http_opts)?;
        let prepared = prepare(&cfg).await?;
        tracing::info!(
            tools = prepared.state.tool_names().len(),
            read_only = prepared.state.options().read_only,
            "serving MCP over HTTP"
        );
        let shutdown = tokio_util::sync::CancellationToken::new();
        http::cancel_on_signals(shutdown.clone());
        http::run(prepared.state, opts, shutdown).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let prepared = prepare(&cfg).await?;
    let server = AirtableServer::new(prepared.state.clone());
    tracing::info!(
        tools = prepared.state.tool_names().len(),
        read_only = prepared.state.options().read_only,
        "serving MCP over stdio"
    );
    let (stdin, stdout) = rmcp::transport::stdio();
    let service = server
        .serve(stdio::StdioTransport::new(stdin, stdout))
        .await
        .map_err(|e| ServerError::Transport(e.to_string()))?;
    service
        .waiting()
        .await
        .map_err(|e| ServerError::Transport(e.to_string()))?;
    if let Some(sb) = prepared.sandbox {
        sb.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// `airtable-mcp tools list|schema`.
pub async fn run_tools_command(cmd: ToolsCommand) -> anyhow::Result<ExitCode> {
    let tools = tools::all_tools();
    match cmd {
        ToolsCommand::List => {
            let mut out = String::new();
            for t in &tools {
                let (toolset, access) = tools::find_spec(&t.name)
                    .map(|s| (s.toolset.as_str(), s.access.as_str()))
                    .unwrap_or(("?", "?"));
                out.push_str(&format!("{:<24} {:<10} {}\n", t.name, toolset, access));
            }
            print!("{out}");
        }
        ToolsCommand::Schema => {
            println!("{}", serde_json::to_string_pretty(&catalogue_json(&tools))?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The JSON description of tools (what `schemas/` holds, as one array).
pub fn catalogue_json(tools: &[rmcp::model::Tool]) -> serde_json::Value {
    serde_json::Value::Array(tools.iter().map(tool_json).collect())
}

/// One tool's canonical JSON: name, title, description, toolset, access, annotations,
/// inputSchema, outputSchema.
pub fn tool_json(t: &rmcp::model::Tool) -> serde_json::Value {
    let spec = tools::find_spec(&t.name);
    serde_json::json!({
        "name": t.name,
        "title": t.title,
        "description": t.description,
        "toolset": spec.map(|s| s.toolset.as_str()),
        "access": spec.map(|s| s.access.as_str()),
        "annotations": t.annotations,
        "inputSchema": t.input_schema,
        "outputSchema": t.output_schema,
    })
}
