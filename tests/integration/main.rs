//! The integration tests, as one test binary: each file below is a module (its own doc comment
//! says what it covers), and the shared fixtures are the `*_support`, `common`, `support` and
//! `fault_proxy` modules.
//!
//! One binary rather than one per file: every integration-test binary links the library and
//! all its dependencies and instantiates the same generic code again (rmcp's client, tokio,
//! serde), so forty binaries cost CI minutes of compile and link for nothing.
//! tools/test.sh runs them with cargo-nextest, one process per test (.config/nextest.toml), so no
//! test shares process state with another; `cargo test --test integration` runs them as threads
//! of one process. Run a part with a filter, e.g. `cargo nextest run -E 'binary(integration) &
//! test(/^tools_mcp::/)'` or `cargo test --test integration tools_mcp::`.

// The shared fixtures.
mod common;
mod fault_proxy;
mod mcp_support;
mod redis_support;
mod sandbox_support;
mod support;

mod attachments;
mod client;
mod client_sandbox;
mod client_secrets;
mod confirm;
mod crash_resume;
mod deploy_files;
mod filters;
mod fuzz_arguments;
mod guards;
mod http_airtable;
mod http_binary;
mod http_sessions;
mod http_tls;
mod http_transport;
mod import;
mod journal_undo;
mod links_views;
mod log_record_data;
mod oauth_login;
mod otel_traces;
mod read_only;
mod redis_limits;
mod redis_replicas;
mod resources_prompts;
mod sandbox_api;
mod sandbox_cli;
mod sandbox_hostile;
mod sandbox_limits;
mod sandbox_oauth;
mod sandbox_paths;
mod sandbox_pyairtable;
mod sandbox_records;
mod sandbox_webhooks;
mod schemas;
mod search_aggregate;
mod serve_sandbox_token;
mod stdio_framing;
mod tools_data;
mod tools_mcp;
mod tools_writes;
mod tools_writes_schema;
mod watch;
