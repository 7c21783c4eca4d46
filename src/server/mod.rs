//! The transports: `airtable-mcp serve` over stdio (here) or HTTP (`http`), and
//! `airtable-mcp tools list|schema`.
//!
//! The rmcp handler itself ([`AirtableServer`], [`ServerState`], [`ServerOptions`]) lives in
//! `crate::tools::handler`; this module builds it from the configuration and wires it to a
//! transport.

pub mod http;
pub mod import;
pub mod stdio;
pub mod writes;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use rmcp::ServiceExt;
use secrecy::SecretString;

use crate::airtable::{self, Client, ClientConfig};
use crate::cli::{ServeArgs, ToolsCommand};
use crate::config::Config;
use crate::tools::{self, AirtableServer, ServerOptions, ServerState, TokenProblem};

/// Errors of the server layer (startup and transports).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The Airtable client could not be built.
    #[error("cannot build the Airtable client")]
    Client(#[from] airtable::Error),
    /// The in-process sandbox did not start.
    #[error("cannot start the sandbox")]
    Sandbox(#[from] crate::sandbox::SandboxError),
    /// The write journal could not be opened.
    #[error(
        "{0}. Give a usable file with --journal FILE (AIRTABLE_MCP_JOURNAL), or run with --no-journal (writes then cannot be listed or undone)"
    )]
    Journal(String),
    /// The Redis store (`--redis`) could not be set up.
    #[error("cannot set up the shared state in Redis")]
    Redis(#[from] airtable::rate_limit::RedisError),
    /// The MCP transport failed.
    #[error("MCP transport error")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
}

// ---------------------------------------------------------------------------------------------
// Startup

/// The Airtable token for `profile` (env, then keyring), or the problem every tool will report.
pub(crate) async fn resolve_token(
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
pub(crate) fn client_config(cfg: &Config, api_url: url::Url, token: SecretString) -> ClientConfig {
    let mut c = ClientConfig::new(api_url.clone(), token);
    c.per_base_rps = cfg.rate_limit_per_base.max(1);
    c.per_token_rps = cfg.rate_limit_per_token.max(1);
    c.timeout = cfg.request_timeout;
    c.max_retries = cfg.max_retries;
    c.read_only = cfg.read_only;
    // The configured content host goes with the configured API (not with a sandbox's URL).
    if api_url == cfg.api_url {
        c.content_url = cfg.content_url.clone();
    }
    c
}

/// A client on the configured limits: in Redis with `--redis` (shared by every client of
/// this process through `store`), else in process memory.
fn build_client(
    cfg: &Config,
    api_url: url::Url,
    token: SecretString,
    store: Option<&airtable::rate_limit::RedisStore>,
    provider: Option<Arc<dyn airtable::TokenProvider>>,
) -> Result<Client, ServerError> {
    let mut cc = client_config(cfg, api_url, token);
    cc.token_provider = provider;
    if store.is_some() {
        cc.limiter_margin = cc
            .limiter_margin
            .max(airtable::rate_limit::redis::SHARED_WINDOW_MARGIN);
    }
    Ok(match store {
        Some(s) => Client::with_stores(cc, Arc::new(s.clone()), Some(Arc::new(s.clone())))?,
        None => Client::new(cc)?,
    })
}

/// The Redis store of `--redis`, if configured (connects lazily; never logs the password).
fn redis_store(cfg: &Config) -> Result<Option<airtable::rate_limit::RedisStore>, ServerError> {
    let Some(url) = &cfg.redis_url else {
        return Ok(None);
    };
    let store = airtable::rate_limit::RedisStore::connect(url, cfg.replicas)?;
    tracing::info!(
        redis = %airtable::rate_limit::redis::redacted(url),
        replicas = cfg.replicas,
        "rate limits, 429 holds and the schema cache shared through Redis"
    );
    Ok(Some(store))
}

/// What `serve` needs, built from its configuration; shared by the stdio and HTTP transports.
pub struct Prepared {
    /// The shared state.
    pub state: Arc<ServerState>,
    /// The in-process sandbox (with --sandbox); keep it alive while serving.
    pub sandbox: Option<crate::sandbox::SandboxHandle>,
}

/// Build the state: options, token, client. With `sandbox`, spawn the demo sandbox in-process,
/// point the client at it and print its URL and demo base ID on stderr. Fails when the write
/// journal cannot be used (it is opened here).
pub async fn prepare(cfg: &Config) -> Result<Prepared, ServerError> {
    prepare_checking(cfg, ServerState::journal_problem).await
}

/// [`prepare`], failing when `journal_problem` finds one: the stdio server checks only
/// [`ServerState::journal_problem_known`] (the file), and leaves the rest of the journal's
/// opening to the warm-up, after the start-up exchange (write tools refuse, naming the reason,
/// if it then fails).
async fn prepare_checking(
    cfg: &Config,
    journal_problem: fn(&ServerState) -> Option<String>,
) -> Result<Prepared, ServerError> {
    let prepared = prepare_state(cfg).await?;
    if let Some(problem) = journal_problem(&prepared.state) {
        return Err(ServerError::Journal(problem));
    }
    Ok(prepared)
}

async fn prepare_state(cfg: &Config) -> Result<Prepared, ServerError> {
    let options = ServerOptions::from_config(cfg);
    let store = redis_store(cfg)?;
    let store = store.as_ref();
    if cfg.sandbox {
        let sb_cfg = crate::sandbox::SandboxConfig {
            seed: crate::sandbox::Seed::Demo,
            token: crate::sandbox::random_token(),
            ..crate::sandbox::SandboxConfig::default()
        };
        let handle = crate::sandbox::spawn(sb_cfg, SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let token = SecretString::from(handle.token().to_owned());
        let client = build_client(cfg, handle.url(), token, store, None)?;
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
            // An OAuth grant: the client asks it for the token per request (it refreshes).
            let provider =
                match crate::auth::oauth::OAuthTokenSource::for_profile(&cfg.profile).await {
                    Ok(Some(source)) => Some(source as Arc<dyn airtable::TokenProvider>),
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the OAuth grant");
                        None
                    }
                };
            let client = build_client(cfg, cfg.api_url.clone(), token, store, provider)?;
            ServerState::new(Ok(client), options)
        }
        Err(problem) => {
            tracing::warn!("{problem}");
            // No token of our own: HTTP clients may still bring theirs (X-Airtable-Token).
            let placeholder = SecretString::from("no-token-configured".to_owned());
            let pool = build_client(cfg, cfg.api_url.clone(), placeholder, store, None)?;
            ServerState::without_token(problem, pool, options)
        }
    };
    Ok(Prepared {
        state,
        sandbox: None,
    })
}

/// Warm up, on a thread of its own, what a session's first tool call needs and no answer of the
/// start-up exchange does: parse the tool catalogue (argument checks, routing), then build the
/// state's HTTP client (it reads the system's root certificates). Together they cost several
/// times the CPU of the rest of the start; whatever is not ready at the first call is done then.
/// Then it opens the write journal (SQLite), which only writes need. It also raises the
/// allocator's thresholds ([`keep_freed_heap`]).
fn warm_up_in_background(state: &Arc<ServerState>) {
    let state = state.clone();
    let spawned = std::thread::Builder::new()
        .name("warm-up".to_owned())
        .spawn(move || {
            keep_freed_heap();
            crate::tools::catalogue::wait_parsed();
            if let Ok(client) = state.client() {
                client.build_http_now();
            }
            // Last: only writes need it (the stdio server leaves its opening to here).
            state.open_journal();
        });
    if let Err(e) = spawned {
        tracing::debug!(error = %e, "cannot start the warm-up thread; building on first use");
    }
}

/// How much freed memory the allocator may keep for the next call ([`keep_freed_heap`]).
const KEPT_HEAP: usize = 512 * 1024;

/// Have glibc's allocator keep up to 2 × [`KEPT_HEAP`] of freed heap instead of handing the top
/// of the heap back to the kernel as soon as 128 KB of it is free. A call that reads a page of
/// records holds a few hundred KB for a moment (the page, its cells, the rows, the answer);
/// given back after every call, those pages were faulted in again by the next (4 page faults
/// and a tenth of a millisecond of CPU per 100-record get_records on a 2-core VM). glibc's
/// thresholds are dynamic (mallopt(3)): freeing a block that it had to map on its own (one
/// larger than its threshold for that, 128 KB at start) raises that threshold to the block's
/// size and the trim threshold to twice it. So one block of [`KEPT_HEAP`] is allocated and
/// freed. Other allocators ignore this; no `unsafe` call to `mallopt` is needed.
fn keep_freed_heap() {
    let block: Vec<u8> = Vec::with_capacity(KEPT_HEAP);
    // Opaque to the optimiser, which would otherwise leave out an allocation never used.
    drop(std::hint::black_box(block));
}

/// `airtable-mcp serve`.
/// `cfg` is `Config::load(&args, ..)`, loaded once by the caller (which also picks the runtime
/// from it).
pub async fn run(cfg: Config, args: ServeArgs) -> anyhow::Result<ExitCode> {
    if let Some(h) = &cfg.http {
        // Validate the HTTP options (auth, TLS policy) before touching the token or the API.
        let mut opts = http::HttpOptions::from_config(h, &args.http_opts)?;
        if let Some(o) = &mut opts.oauth {
            o.api_url = cfg.api_url.clone();
        }
        let prepared = prepare(&cfg).await?;
        warm_up_in_background(&prepared.state);
        tracing::info!(
            tools = prepared.state.exposed_tool_count(),
            read_only = prepared.state.options().read_only,
            "serving MCP over HTTP"
        );
        let shutdown = tokio_util::sync::CancellationToken::new();
        http::cancel_on_signals(shutdown.clone());
        http::run(prepared.state, opts, shutdown).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let prepared = prepare_checking(&cfg, ServerState::journal_problem_known).await?;
    // The stdio writer (stdio::encode) copies catalogue lines (tools/list needs no parse) and
    // the JSON text of record lists in place of their structured content (built only once).
    let server = AirtableServer::new(prepared.state.clone())
        .listing_by_lines()
        .structured_by_text();
    tracing::info!(
        tools = prepared.state.exposed_tool_count(),
        read_only = prepared.state.options().read_only,
        "serving MCP over stdio"
    );
    // Non-blocking pipes on the IO reactor (no blocking-pool hand-off per message), framed by our
    // own line transport (size cap, JSON-RPC errors for bad input).
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    // The warm-up waits until the host's start-up exchange (initialize, tools/list) is answered:
    // on a small machine it would otherwise take the CPU the answers and the host itself need.
    let state = prepared.state.clone();
    let transport = stdio::StdioTransport::new(stdin, stdout)
        .after_start_up(move || warm_up_in_background(&state));
    let service = server
        .serve(transport)
        .await
        .map_err(|e| ServerError::Transport(Box::new(e)))?;
    // SIGTERM/SIGINT end the session like a closed stdin: `serve` returns, and main flushes the
    // trace exporter on the way out.
    let signalled = tokio_util::sync::CancellationToken::new();
    http::cancel_on_signals(signalled.clone());
    let session = service.cancellation_token();
    tokio::spawn(async move {
        signalled.cancelled().await;
        session.cancel();
    });
    service
        .waiting()
        .await
        .map_err(|e| ServerError::Transport(Box::new(e)))?;
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
            println!(
                "{}",
                serde_json::to_string_pretty(&tools::catalogue_json(&tools))?
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
