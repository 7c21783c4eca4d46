//! Throughput and latency of `tools/call` over Streamable HTTP, at 1, 10 and 50 concurrent
//! sessions: the real server (auth, metrics, every middleware) in front of the in-process
//! sandbox (no rate limit), driven by raw JSON-RPC over reqwest.
//!
//! ```text
//! cargo run --release --example bench_http [-- --calls 200 --tool get_records|list_bases --stateless]
//! ```
//! Not run by the tests; prints one line per concurrency level.

use std::sync::Arc;
use std::time::{Duration, Instant};

use airtable_mcp::airtable::{Client, ClientConfig};
use airtable_mcp::sandbox::{self, DEMO_BASE_ID, SandboxConfig};
use airtable_mcp::server::http::{self, BearerTokens, HandlerFactory, Hooks, HttpOptions};
use airtable_mcp::tools::{AirtableServer, ServerOptions, ServerState};
use anyhow::{Context, bail};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const BEARER: &str = "bench-bearer-token-0123456789";

struct Args {
    calls: usize,
    tool: String,
    stateless: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        calls: 200,
        tool: "get_records".into(),
        stateless: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--calls" => a.calls = it.next().context("--calls N")?.parse()?,
            "--tool" => a.tool = it.next().context("--tool NAME")?,
            "--stateless" => a.stateless = true,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

fn tool_args(tool: &str) -> Value {
    match tool {
        "list_bases" => json!({}),
        _ => json!({"base_id": DEMO_BASE_ID, "table_id": "Tasks", "max_records": 5}),
    }
}

/// The JSON-RPC message with `id` in a response body (JSON or SSE).
fn find_response(body: &str, id: u64) -> Option<Value> {
    let candidates: Vec<&str> = if body.trim_start().starts_with('{') {
        vec![body]
    } else {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .collect()
    };
    candidates
        .into_iter()
        .filter_map(|c| serde_json::from_str::<Value>(c).ok())
        .find(|v| v["id"] == id)
}

struct Session {
    http: reqwest::Client,
    url: String,
    session_id: Option<String>,
    next_id: u64,
}

impl Session {
    async fn open(http: reqwest::Client, url: String) -> anyhow::Result<Self> {
        let mut s = Self {
            http,
            url,
            session_id: None,
            next_id: 1,
        };
        let res = s
            .post(
                json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "bench_http", "version": "0"}}}),
            )
            .await?;
        s.session_id = res
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = res.text().await?;
        find_response(&body, 0).context("no initialize result")?;
        let res = s
            .post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        if !res.status().is_success() {
            bail!("initialized: {}", res.status());
        }
        Ok(s)
    }

    async fn post(&self, body: Value) -> anyhow::Result<reqwest::Response> {
        let mut req = self
            .http
            .post(&self.url)
            .bearer_auth(BEARER)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&body);
        if let Some(sid) = &self.session_id {
            req = req.header("mcp-session-id", sid);
        }
        Ok(req.send().await?)
    }

    async fn call(&mut self, tool: &str, args: &Value) -> anyhow::Result<Duration> {
        let id = self.next_id;
        self.next_id += 1;
        let start = Instant::now();
        let res = self
            .post(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                         "params": {"name": tool, "arguments": args}}))
            .await?;
        let status = res.status();
        let body = res.text().await?;
        let elapsed = start.elapsed();
        let msg = find_response(&body, id)
            .with_context(|| format!("no response to call {id} ({status}): {body:.200}"))?;
        if msg.get("error").is_some() || msg["result"]["isError"] == true {
            bail!("call failed: {msg}");
        }
        Ok(elapsed)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let sandbox = sandbox::spawn(SandboxConfig::demo(), "127.0.0.1:0".parse()?).await?;
    let mut cc = ClientConfig::new(
        sandbox.url(),
        SecretString::from(sandbox.token().to_owned()),
    );
    cc.per_base_rps = 1_000_000;
    cc.per_token_rps = 1_000_000;
    let state = ServerState::new(Ok(Client::new(cc)?), ServerOptions::default());
    let factory: HandlerFactory<AirtableServer> = {
        let state = state.clone();
        Arc::new(move |token| match token {
            Some(t) => AirtableServer::for_token(state.clone(), t),
            None => AirtableServer::new(state.clone()),
        })
    };
    let mut opts = HttpOptions::new(
        "127.0.0.1:0".parse()?,
        Some(BearerTokens::new(vec![SecretString::from(
            BEARER.to_owned(),
        )])?),
    );
    opts.client_rate = None;
    opts.stateless = args.stateless;
    opts.json_response = args.stateless;
    let shutdown = CancellationToken::new();
    let server = http::start(factory, Hooks::default(), opts, shutdown.clone()).await?;
    let url = format!("http://{}/mcp", server.local_addr());
    let tool_args = tool_args(&args.tool);

    println!(
        "bench_http: tools/call {} over Streamable HTTP ({}), {} calls per level, sandbox on loopback",
        args.tool,
        if args.stateless {
            "stateless, JSON"
        } else {
            "stateful sessions, SSE"
        },
        args.calls
    );
    for sessions in [1usize, 10, 50] {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(sessions)
            .build()?;
        let mut opened = Vec::with_capacity(sessions);
        for _ in 0..sessions {
            opened.push(Session::open(http.clone(), url.clone()).await?);
        }
        // Warm-up: one call per session (schema cache, connections).
        for s in &mut opened {
            s.call(&args.tool, &tool_args).await?;
        }
        let per_session = args.calls.div_ceil(sessions);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for mut s in opened {
            let tool = args.tool.clone();
            let targs = tool_args.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_session);
                for _ in 0..per_session {
                    lat.push(s.call(&tool, &targs).await?);
                }
                anyhow::Ok(lat)
            }));
        }
        let mut latencies = Vec::new();
        for t in tasks {
            latencies.extend(t.await??);
        }
        let wall = start.elapsed();
        latencies.sort();
        println!(
            "sessions={sessions:>3}  calls={:>5}  throughput={:>8.1} calls/s  p50={:>7.2} ms  p99={:>7.2} ms",
            latencies.len(),
            latencies.len() as f64 / wall.as_secs_f64(),
            percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        );
    }
    shutdown.cancel();
    server.wait().await?;
    sandbox.shutdown().await;
    Ok(())
}
