//! Benchmark of the MCP server over stdio (issue 4). Prints:
//!
//! 1. cold start: spawn the release binary until tools/list is answered (median of 10), for
//!    `serve` against a running sandbox (the real-world path: token from the environment) and
//!    for `serve --sandbox` (which also seeds an in-process demo base);
//! 2. per-call overhead: get_records (100 records) through MCP stdio vs the same list-records
//!    request sent directly with reqwest to the same sandbox (median of 200 each);
//! 3. the bytes of a get_records result for 100 records of the demo base: the compact text the
//!    model reads, vs the same structured content pretty-printed;
//! 4. the stdio server's peak resident set (VmHWM from /proc) over that session.
//!
//! Run: `cargo build --release --bin airtable-mcp && cargo run --release --example bench_server`
//! (or `tools/bench-server.sh`). Env: AIRTABLE_MCP_BIN (default target/release/airtable-mcp),
//! BENCH_CALLS (default 200), BENCH_STARTS (default 10), BENCH_GAP_MS (pause before each call,
//! default 0; issue 12 uses 250).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use airtable_mcp::sandbox::{self, SandboxConfig};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// A JSON-RPC client over a child's stdio, one line per message.
struct StdioPeer {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: u64,
    last_line_len: usize,
}

impl StdioPeer {
    fn spawn(bin: &PathBuf, args: &[&str], env: &[(&str, String)]) -> Result<Self> {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AIRTABLE_MCP_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Ok(home) = std::env::var("HOME") {
            cmd.env("HOME", home);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = child.stdout.take().context("no stdout")?;
        Ok(StdioPeer {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            next_id: 1,
            last_line_len: 0,
        })
    }

    async fn send(&mut self, msg: &Value) -> Result<()> {
        let mut line = serde_json::to_vec(msg)?;
        line.push(b'\n');
        self.stdin.write_all(&line).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    async fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        loop {
            let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
                .await
                .context("no response within 60 s")??
                .context("server closed stdout")?;
            let msg: Value = serde_json::from_str(&line)?;
            if msg.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(err) = msg.get("error") {
                    bail!("{method} failed: {err}");
                }
                self.last_line_len = line.len();
                return Ok(msg.get("result").cloned().unwrap_or(Value::Null));
            }
        }
    }

    async fn initialize(&mut self) -> Result<()> {
        self.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "bench_server", "version": "1"}}),
        )
        .await?;
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await
    }

    async fn call(&mut self, tool: &str, args: Value) -> Result<Value> {
        let r = self
            .request("tools/call", json!({"name": tool, "arguments": args}))
            .await?;
        if r.get("isError").and_then(Value::as_bool) == Some(true) {
            bail!("{tool} returned an error: {}", r["content"][0]["text"]);
        }
        Ok(r)
    }

    /// The child's peak resident set (VmHWM) in kB, from /proc (Linux).
    fn peak_rss_kb(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    async fn close(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    let n = xs.len();
    if n == 0 {
        return Duration::ZERO;
    }
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2
    }
}

fn pct(xs: &[Duration], p: f64) -> Duration {
    let mut v = xs.to_vec();
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn cold_start(bin: &PathBuf, args: &[&str], env: &[(&str, String)]) -> Result<Duration> {
    let t0 = Instant::now();
    let mut peer = StdioPeer::spawn(bin, args, env)?;
    peer.initialize().await?;
    let tools = peer.request("tools/list", json!({})).await?;
    let elapsed = t0.elapsed();
    if tools["tools"].as_array().is_none_or(|t| t.is_empty()) {
        bail!("tools/list returned no tools");
    }
    peer.close().await;
    Ok(elapsed)
}

#[tokio::main]
async fn main() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin = std::env::var("AIRTABLE_MCP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target/release/airtable-mcp"));
    if !bin.exists() {
        bail!(
            "{} not found: run `cargo build --release --bin airtable-mcp` first",
            bin.display()
        );
    }
    let calls = env_usize("BENCH_CALLS", 200);
    // Pause between calls (issue 12 measures calls 250 ms apart: an idle server between calls).
    let gap = Duration::from_millis(env_usize("BENCH_GAP_MS", 0) as u64);
    let starts = env_usize("BENCH_STARTS", 10);

    // A sandbox with the demo base, its rate limit out of the way: we measure overhead here,
    // not Airtable's 5 requests per second.
    let cfg = SandboxConfig::demo();
    let addr: SocketAddr = "127.0.0.1:0".parse()?;
    let sb = sandbox::spawn(cfg, addr).await?;
    let api_url = sb.url().to_string();
    let token = sb.token().to_owned();
    let env = vec![
        ("AIRTABLE_API_URL", api_url.trim_end_matches('/').to_owned()),
        ("AIRTABLE_API_KEY", token.clone()),
    ];
    let serve_args = [
        "serve",
        "--rate-limit-per-base",
        "1000000",
        "--rate-limit-per-token",
        "1000000",
    ];

    println!("airtable-mcp server benchmark ({})", bin.display());
    println!(
        "machine: {} cores; sandbox at {api_url}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // 1. Cold start.
    let mut t_env = Vec::new();
    let mut t_sandbox = Vec::new();
    for _ in 0..starts {
        t_env.push(cold_start(&bin, &serve_args, &env).await?);
        t_sandbox.push(cold_start(&bin, &["serve", "--sandbox"], &[]).await?);
    }
    println!("\n1. cold start: spawn -> initialize -> tools/list answered (median of {starts})");
    println!(
        "   serve (token from env, API = sandbox): median {}  (min {}, max {})",
        ms(median(t_env.clone())),
        ms(*t_env.iter().min().unwrap_or(&Duration::ZERO)),
        ms(*t_env.iter().max().unwrap_or(&Duration::ZERO))
    );
    println!(
        "   serve --sandbox (seeds an in-process demo base): median {}  (min {}, max {})",
        ms(median(t_sandbox.clone())),
        ms(*t_sandbox.iter().min().unwrap_or(&Duration::ZERO)),
        ms(*t_sandbox.iter().max().unwrap_or(&Duration::ZERO))
    );

    // 2. Per-call overhead.
    let mut peer = StdioPeer::spawn(&bin, &serve_args, &env)?;
    peer.initialize().await?;
    let bases = peer.call("list_bases", json!({})).await?;
    let base_id = bases["structuredContent"]["bases"][0]["id"]
        .as_str()
        .context("no base in list_bases")?
        .to_owned();
    let tables = peer
        .call("list_tables", json!({"base_id": base_id}))
        .await?;
    // The table with the most records: the demo's biggest.
    let table_list = tables["structuredContent"]["tables"]
        .as_array()
        .context("no tables")?
        .clone();
    let http = reqwest::Client::new();
    let mut best: Option<(String, String, usize)> = None;
    for t in &table_list {
        let id = t["id"].as_str().unwrap_or_default().to_owned();
        let name = t["name"].as_str().unwrap_or_default().to_owned();
        let url = format!("{}/v0/{base_id}/{id}", api_url.trim_end_matches('/'));
        let body: Value = http
            .get(&url)
            .bearer_auth(&token)
            .query(&[("maxRecords", "100")])
            .send()
            .await?
            .json()
            .await?;
        let n = body["records"].as_array().map_or(0, Vec::len);
        if best.as_ref().is_none_or(|b| n > b.2) {
            best = Some((id, name, n));
        }
    }
    let (table_id, table_name, n_records) = best.context("no table")?;
    let args = json!({"base_id": base_id, "table_id": table_id, "max_records": 100});
    // Warm up both paths (connection pool, schema cache).
    for _ in 0..10 {
        peer.call("get_records", args.clone()).await?;
    }
    let url = format!("{}/v0/{base_id}/{table_id}", api_url.trim_end_matches('/'));
    let direct_once = || async {
        let r = http
            .get(&url)
            .bearer_auth(&token)
            .query(&[("maxRecords", "100"), ("pageSize", "100")])
            .send()
            .await?;
        let bytes = r.bytes().await?;
        let v: Value = serde_json::from_slice(&bytes)?;
        anyhow::Ok(v)
    };
    for _ in 0..10 {
        direct_once().await?;
    }
    let mut t_mcp = Vec::with_capacity(calls);
    let mut t_direct = Vec::with_capacity(calls);
    // Interleave so that both paths see the same machine load.
    for _ in 0..calls {
        if !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
        let t0 = Instant::now();
        peer.call("get_records", args.clone()).await?;
        t_mcp.push(t0.elapsed());
        let t0 = Instant::now();
        direct_once().await?;
        t_direct.push(t0.elapsed());
    }
    let m_mcp = median(t_mcp.clone());
    let m_direct = median(t_direct.clone());
    println!(
        "\n2. per call: get_records of {n_records} records from {table_name:?} (median of {calls}, interleaved, {} ms apart)",
        gap.as_millis()
    );
    println!(
        "   MCP stdio tools/call get_records: median {}  p90 {}  p99 {}",
        ms(m_mcp),
        ms(pct(&t_mcp, 0.9)),
        ms(pct(&t_mcp, 0.99))
    );
    println!(
        "   direct reqwest GET list records:  median {}  p90 {}  p99 {}",
        ms(m_direct),
        ms(pct(&t_direct, 0.9)),
        ms(pct(&t_direct, 0.99))
    );
    println!(
        "   overhead: {} per call (ratio {:.2}x)",
        ms(m_mcp.saturating_sub(m_direct)),
        m_mcp.as_secs_f64() / m_direct.as_secs_f64().max(1e-9)
    );

    // 3. Result size.
    let r = peer.call("get_records", args.clone()).await?;
    let line_len = peer.last_line_len;
    let text = r["content"][0]["text"].as_str().unwrap_or_default();
    let structured = &r["structuredContent"];
    let pretty = serde_json::to_string_pretty(structured)?;
    let compact = serde_json::to_string(structured)?;
    let raw = direct_once().await?;
    let raw_pretty = serde_json::to_string_pretty(&raw)?;
    let n = structured["rows"].as_array().map_or(0, Vec::len);
    println!("\n3. bytes of a get_records result ({n} records of {table_name:?})");
    println!(
        "   text content (what the model reads, compact JSON): {} bytes",
        text.len()
    );
    println!(
        "   same structured content pretty-printed:            {} bytes ({:.2}x)",
        pretty.len(),
        pretty.len() as f64 / text.len().max(1) as f64
    );
    println!(
        "   structuredContent compact:                         {} bytes",
        compact.len()
    );
    println!("   whole JSON-RPC response line on stdout:            {line_len} bytes");
    println!(
        "   Airtable API response (pretty-printed, for peers that pass it through): {} bytes",
        raw_pretty.len()
    );

    // 4. Memory: the stdio server's peak resident set over this whole session.
    match peer.peak_rss_kb() {
        Some(kb) => println!(
            "\n4. peak RSS (VmHWM) of the stdio server over the session: {:.1} MB",
            kb as f64 / 1024.0
        ),
        None => println!("\n4. peak RSS: not available (no /proc)"),
    }

    peer.close().await;
    sb.shutdown().await;
    Ok(())
}
