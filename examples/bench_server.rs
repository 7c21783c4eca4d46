//! The server benchmark (issue 12): one run prints every figure the closing note and the README
//! quote, against the project's sandbox with its strict rate limit (5 requests per sliding
//! second per base, 30 s lockout), so that 429s are counted:
//!
//! 1. parallel reads: 5 get_records (10 records each) sent at once over stdio after a quiet
//!    second (a host firing parallel tool calls); median over the runs, and the 429s;
//! 2. text bytes: the text content of a 100-record get_records result;
//! 3. overhead: get_records of 100 records over MCP stdio minus the same list-records request
//!    sent directly with reqwest, calls 250 ms apart (so that neither path meets a limiter);
//!    the median of the paired differences. Then the same pairs with the sandbox's own time on
//!    each request taken out of both sides (`SandboxStats::handling_us`, arrival to answer
//!    ready): the sandbox does the same work for either, and its time varies by milliseconds
//!    from one request to the next, which is most of the noise of the raw difference. Beside
//!    them, the floor: a `ping` round trip after the same pause (the server process waking,
//!    reading and writing a line, no tool work), and the server's CPU time per call and per
//!    ping (all its threads, user and kernel, from `/proc/<pid>/task/*/schedstat`): what the
//!    server itself spends, a figure the sandbox's variance and the wake-ups do not reach;
//! 4. cold start: spawn the binary until tools/list is answered over raw JSON-RPC (median).
//!    Beside it, the floor: the same exchange with `examples/stdio_floor.rs`, a minimal responder
//!    giving the same answers (the process start, the pipes and the client's parse of the list);
//! 5. peak RSS: VmHWM of the server process (from /proc) at the end of each session (median).
//!
//! A time ends when the client holds the answer parsed into a JSON tree, as a client uses it.
//! Figures 3 and 4 also give the time to the answer's last byte, the client's parse left out:
//! the two parses differ (the API's page of records, objects with keys, parses slower than the
//! MCP answer, rows as arrays and the same rows as one text string), so the first overhead
//! figure credits the server with the client's cheaper parse, and the second does not.
//!
//! `tools/bench.sh` builds release, runs this, then `bench_bulk_create --runs 3`, and prints
//! one table. Env: AIRTABLE_MCP_BIN (default target/release/airtable-mcp), BENCH_SESSIONS
//! (default 3), BENCH_PARALLEL_RUNS (per session, default 3), BENCH_CALLS (per session,
//! default 40), BENCH_STARTS (default 10). The last lines are `FIGURE <name> <value>` for
//! tools/bench.sh.

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
    /// When the answer to the last [`StdioPeer::request`] had been read (before it was parsed).
    answered: Option<Instant>,
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
            answered: None,
        })
    }

    async fn send(&mut self, msg: &Value) -> Result<()> {
        let mut line = serde_json::to_vec(msg)?;
        line.push(b'\n');
        self.stdin.write_all(&line).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// Send `n` tools/call requests at once and wait until every one is answered.
    async fn call_parallel(&mut self, tool: &str, args: &Value, n: usize) -> Result<()> {
        let first = self.next_id;
        for _ in 0..n {
            let id = self.next_id;
            self.next_id += 1;
            self.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                              "params": {"name": tool, "arguments": args}}))
                .await?;
        }
        let mut left = n;
        while left > 0 {
            let line = tokio::time::timeout(Duration::from_secs(120), self.lines.next_line())
                .await
                .context("no response within 120 s")??
                .context("server closed stdout")?;
            let msg: Value = serde_json::from_str(&line)?;
            let Some(id) = msg.get("id").and_then(Value::as_u64) else {
                continue;
            };
            if id < first || id >= first + n as u64 {
                continue;
            }
            if msg.get("error").is_some() || msg["result"]["isError"].as_bool() == Some(true) {
                bail!("parallel {tool} failed: {line}");
            }
            left -= 1;
        }
        Ok(())
    }

    /// Peak resident set size of the server process (VmHWM), in bytes.
    fn peak_rss(&self) -> Result<u64> {
        self.status_kb("VmHWM").map(|kb| kb * 1024)
    }

    /// CPU time the server process has used so far, all its threads, user and kernel
    /// (`/proc/<pid>/task/<tid>/schedstat`, first field, in nanoseconds): read around a call,
    /// what the call cost the server itself, free of the wake-ups and of the sandbox's time
    /// that make wall-clock differences noisy.
    fn cpu_ns(&self) -> Result<u64> {
        let pid = self.child.id().context("server exited")?;
        let mut total = 0u64;
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let path = task?.path().join("schedstat");
            // A thread that ended between the listing and the read has nothing left to count.
            let Ok(stat) = std::fs::read_to_string(&path) else {
                continue;
            };
            let ns: u64 = stat
                .split_whitespace()
                .next()
                .with_context(|| format!("{} is empty", path.display()))?
                .parse()?;
            total += ns;
        }
        Ok(total)
    }

    /// A `<key>: <n> kB` line of the server's /proc/<pid>/status.
    fn status_kb(&self, key: &str) -> Result<u64> {
        let pid = self.child.id().context("server exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let line = status
            .lines()
            .find(|l| l.split(':').next() == Some(key))
            .with_context(|| format!("no {key} in /proc/<pid>/status"))?;
        let kb: u64 = line
            .split_once(':')
            .map(|(_, v)| v)
            .unwrap_or_default()
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kb)
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
            let read_at = Instant::now();
            let mut msg: Value = serde_json::from_str(&line)?;
            if msg.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(err) = msg.get("error") {
                    bail!("{method} failed: {err}");
                }
                self.last_line_len = line.len();
                self.answered = Some(read_at);
                return Ok(msg
                    .get_mut("result")
                    .map(Value::take)
                    .unwrap_or(Value::Null));
            }
        }
    }

    /// How long after `t0` the last request's answer had been read.
    fn answered_since(&self, t0: Instant) -> Duration {
        self.answered
            .map_or(Duration::ZERO, |at| at.duration_since(t0))
    }

    /// The start-up handshake; returns the initialize result.
    async fn initialize(&mut self) -> Result<Value> {
        let result = self
            .request(
                "initialize",
                json!({"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "bench_server", "version": "1"}}),
            )
            .await?;
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        Ok(result)
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

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One start: its time with the client's parse of the tool list, and to the list's last byte.
struct Start {
    parsed: Duration,
    read: Duration,
    /// The results of initialize and tools/list.
    answers: (Value, Value),
}

async fn cold_start(bin: &PathBuf, args: &[&str], env: &[(&str, String)]) -> Result<Start> {
    let t0 = Instant::now();
    let mut peer = StdioPeer::spawn(bin, args, env)?;
    let init = peer.initialize().await?;
    let tools = peer.request("tools/list", json!({})).await?;
    let (parsed, read) = (t0.elapsed(), peer.answered_since(t0));
    if tools["tools"].as_array().is_none_or(|t| t.is_empty()) {
        bail!("tools/list returned no tools");
    }
    peer.close().await;
    Ok(Start {
        parsed,
        read,
        answers: (init, tools),
    })
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
    let sessions = env_usize("BENCH_SESSIONS", 3).max(1);
    let parallel_runs = env_usize("BENCH_PARALLEL_RUNS", 3).max(1);
    let calls = env_usize("BENCH_CALLS", 40).max(1);
    let starts = env_usize("BENCH_STARTS", 10).max(1);

    // The sandbox with the demo base and Airtable's strict limit: 5 requests in any sliding
    // second per base, then 429 and a 30 s lockout.
    let cfg = SandboxConfig {
        rate_limit: 5,
        penalty: Duration::from_secs(30),
        ..SandboxConfig::demo()
    };
    let addr: SocketAddr = "127.0.0.1:0".parse()?;
    let sb = sandbox::spawn(cfg, addr).await?;
    let api_url = sb.url().to_string().trim_end_matches('/').to_owned();
    let token = sb.token().to_owned();
    let env = vec![
        ("AIRTABLE_API_URL", api_url.clone()),
        ("AIRTABLE_API_KEY", token.clone()),
    ];
    // The default limits (5/s per base, 50/s per token): what a user runs.
    let serve_args = ["serve"];

    println!("airtable-mcp server benchmark ({})", bin.display());
    println!(
        "machine: {} cores; sandbox at {api_url}, strict 5 req/s per base, 30 s lockout",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // 4. Cold start (first: the sandbox sees no request from it). Each start is paired with one
    // of the floor (examples/stdio_floor.rs: a minimal responder giving the same answers, captured
    // from the first start), when it was built.
    // The floor's binary: beside this benchmark's (both built by tools/bench.sh, profile
    // bench-tools), else beside the measured binary's examples.
    let floor_bin = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("stdio_floor"))
        .into_iter()
        .chain([bin.with_file_name("examples").join("stdio_floor")])
        .find(|p| p.exists());
    let answers_dir = tempfile::tempdir()?;
    let (init_file, list_file) = (
        answers_dir.path().join("initialize.json"),
        answers_dir.path().join("tools_list.json"),
    );
    let floor_args = [
        init_file.to_string_lossy().into_owned(),
        list_file.to_string_lossy().into_owned(),
    ];
    let mut t_start = Vec::new();
    let mut t_start_read = Vec::new();
    let mut t_floor = Vec::new();
    let mut t_floor_read = Vec::new();
    for i in 0..starts {
        let start = cold_start(&bin, &serve_args, &env).await?;
        t_start.push(start.parsed);
        t_start_read.push(start.read);
        let Some(floor_bin) = &floor_bin else {
            continue;
        };
        if i == 0 {
            std::fs::write(&init_file, serde_json::to_vec(&start.answers.0)?)?;
            std::fs::write(&list_file, serde_json::to_vec(&start.answers.1)?)?;
        }
        let floor = cold_start(floor_bin, &[&floor_args[0], &floor_args[1]], &env).await?;
        if floor.answers.1 != start.answers.1 {
            bail!("the floor's tools/list differs from the server's");
        }
        t_floor.push(floor.parsed);
        t_floor_read.push(floor.read);
    }

    let http = reqwest::Client::new();
    let mut t_parallel = Vec::new();
    let mut diffs = Vec::new();
    let mut diffs_read = Vec::new();
    let mut diffs_own = Vec::new();
    let mut t_sandbox = Vec::new();
    let mut t_mcp = Vec::new();
    let mut t_direct = Vec::new();
    let mut t_mcp_read = Vec::new();
    let mut t_direct_read = Vec::new();
    let mut t_ping = Vec::new();
    let mut cpu_call = Vec::new();
    let mut cpu_ping = Vec::new();
    let mut rss = Vec::new();
    let mut rss_parts = String::new();
    let mut text_bytes = 0usize;
    let mut n_records = 0usize;
    let mut table_name = String::new();
    for _ in 0..sessions {
        // A quiet window before each session (the last one ended with a direct request).
        tokio::time::sleep(Duration::from_millis(1100)).await;
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
        let table = tables["structuredContent"]["tables"]
            .as_array()
            .and_then(|t| {
                t.iter()
                    .find(|t| t["name"] == "Tasks")
                    .or_else(|| t.first())
            })
            .context("no tables")?
            .clone();
        let table_id = table["id"].as_str().unwrap_or_default().to_owned();
        table_name = table["name"].as_str().unwrap_or_default().to_owned();
        let args = json!({"base_id": base_id, "table_id": table_id, "max_records": 100});
        let small = json!({"base_id": base_id, "table_id": table_id, "max_records": 10});
        let url = format!("{api_url}/v0/{base_id}/{table_id}");
        let direct_once = || async {
            let r = http
                .get(&url)
                .bearer_auth(&token)
                .query(&[("maxRecords", "100"), ("pageSize", "100")])
                .send()
                .await?
                .error_for_status()?;
            let bytes = r.bytes().await?;
            let read_at = Instant::now();
            let v: Value = serde_json::from_slice(&bytes)?;
            anyhow::Ok((v, read_at))
        };

        // 2. Text bytes (also warms the schema cache and the connection).
        let r = peer.call("get_records", args.clone()).await?;
        text_bytes = r["content"][0]["text"].as_str().unwrap_or_default().len();
        n_records = r["structuredContent"]["rows"]
            .as_array()
            .map_or(0, Vec::len);

        // 1. Parallel reads after a quiet second.
        for _ in 0..parallel_runs {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let t0 = Instant::now();
            peer.call_parallel("get_records", &small, 5).await?;
            t_parallel.push(t0.elapsed());
        }

        // 3. Overhead, every request 250 ms apart.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for _ in 0..calls {
            let handled = sb.stats().handling_us;
            let cpu = peer.cpu_ns()?;
            let t0 = Instant::now();
            peer.call("get_records", args.clone()).await?;
            let m = t0.elapsed();
            let m_read = peer.answered_since(t0);
            cpu_call.push(Duration::from_nanos(peer.cpu_ns()?.saturating_sub(cpu)));
            let m_sandbox = sb.stats().handling_us - handled;
            tokio::time::sleep(Duration::from_millis(250)).await;
            let handled = sb.stats().handling_us;
            let t0 = Instant::now();
            let (_, read_at) = direct_once().await?;
            let d = t0.elapsed();
            let d_read = read_at.duration_since(t0);
            let d_sandbox = sb.stats().handling_us - handled;
            // The same difference without the sandbox's own time on either request (the same
            // work both times, and most of the noise of the raw difference).
            diffs_own.push(
                (m.as_secs_f64() - m_sandbox as f64 / 1e6)
                    - (d.as_secs_f64() - d_sandbox as f64 / 1e6),
            );
            t_sandbox.push(Duration::from_micros(m_sandbox));
            t_mcp_read.push(m_read);
            t_direct_read.push(d_read);
            diffs_read.push(m_read.as_secs_f64() - d_read.as_secs_f64());
            tokio::time::sleep(Duration::from_millis(250)).await;
            t_mcp.push(m);
            t_direct.push(d);
            diffs.push(m.as_secs_f64() - d.as_secs_f64());
            let cpu = peer.cpu_ns()?;
            let t0 = Instant::now();
            peer.request("ping", json!({})).await?;
            t_ping.push(peer.answered_since(t0));
            cpu_ping.push(Duration::from_nanos(peer.cpu_ns()?.saturating_sub(cpu)));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }

        // 5. Peak RSS over the session, and what the resident memory is made of at its end.
        rss.push(peer.peak_rss()?);
        rss_parts = format!(
            "anon {:.1} MB, file {:.1} MB at the end of the session",
            peer.status_kb("RssAnon")? as f64 / 1e3,
            peer.status_kb("RssFile")? as f64 / 1e3
        );
        peer.close().await;
    }
    let rate_limited = sb.stats().rate_limited;
    sb.shutdown().await;

    let m_parallel = median(t_parallel.clone());
    diffs.sort_by(f64::total_cmp);
    let overhead = diffs[diffs.len() / 2];
    diffs_read.sort_by(f64::total_cmp);
    let overhead_read = diffs_read[diffs_read.len() / 2];
    diffs_own.sort_by(f64::total_cmp);
    let overhead_own = diffs_own[diffs_own.len() / 2];
    rss.sort();
    let m_rss = rss[rss.len() / 2];
    let m_start = median(t_start.clone());

    println!(
        "\n1. 5 parallel get_records (10 records of {table_name:?}) after a quiet second: median {} over {} runs (min {}, max {}); 429s at the sandbox over the whole benchmark: {rate_limited}",
        ms(m_parallel),
        t_parallel.len(),
        ms(*t_parallel.iter().min().unwrap_or(&Duration::ZERO)),
        ms(*t_parallel.iter().max().unwrap_or(&Duration::ZERO)),
    );
    println!(
        "2. text content of a get_records result of {n_records} records: {text_bytes} bytes (records as columns + rows)"
    );
    println!(
        "3. overhead over the direct API call ({n_records} records, calls 250 ms apart, {} pairs): median {:.3} ms (MCP median {}, direct median {})",
        diffs.len(),
        overhead * 1000.0,
        ms(median(t_mcp)),
        ms(median(t_direct)),
    );
    println!(
        "   to the answer's last byte (the client's parse left out): median {:.3} ms (MCP median {}, direct median {})",
        overhead_read * 1000.0,
        ms(median(t_mcp_read)),
        ms(median(t_direct_read)),
    );
    println!(
        "   the sandbox's own time taken out of both (its handling of the request, the same work both times): median {:.3} ms (the sandbox's time on the MCP request: median {})",
        overhead_own * 1000.0,
        ms(median(t_sandbox)),
    );
    println!(
        "   floor: a ping round trip after the same pause: median {} (the process waking and one line each way; no tool work)",
        ms(median(t_ping.clone())),
    );
    let cpu_call_us = median(cpu_call).as_secs_f64() * 1e6;
    let cpu_ping_us = median(cpu_ping).as_secs_f64() * 1e6;
    println!(
        "   the server's CPU time (all threads, user and kernel, /proc schedstat): median {cpu_call_us:.0} us per get_records call, {cpu_ping_us:.0} us per ping",
    );
    println!(
        "4. cold start, spawn -> initialize -> tools/list answered: median {} of {starts} (min {}, max {}); to the list's last byte: median {}",
        ms(m_start),
        ms(*t_start.iter().min().unwrap_or(&Duration::ZERO)),
        ms(*t_start.iter().max().unwrap_or(&Duration::ZERO)),
        ms(median(t_start_read)),
    );
    if t_floor.is_empty() {
        println!(
            "   floor: not measured (build it: cargo build --profile bench-tools --example stdio_floor)"
        );
    } else {
        println!(
            "   floor: the same exchange with a minimal responder giving the same answers (examples/stdio_floor.rs): median {} (min {}); to the list's last byte: median {} (the process start, the pipes and the client's parse)",
            ms(median(t_floor.clone())),
            ms(*t_floor.iter().min().unwrap_or(&Duration::ZERO)),
            ms(median(t_floor_read)),
        );
    }
    println!(
        "5. peak RSS of the server (VmHWM) over a session: median {:.1} MB of {} sessions ({}); {rss_parts}",
        m_rss as f64 / 1e6,
        rss.len(),
        rss.iter()
            .map(|b| format!("{:.1}", *b as f64 / 1e6))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "FIGURE parallel_reads_ms {:.1}",
        m_parallel.as_secs_f64() * 1000.0
    );
    println!("FIGURE rate_limited {rate_limited}");
    println!("FIGURE text_bytes {text_bytes}");
    println!("FIGURE overhead_ms {:.3}", overhead * 1000.0);
    println!("FIGURE overhead_read_ms {:.3}", overhead_read * 1000.0);
    println!("FIGURE overhead_own_ms {:.3}", overhead_own * 1000.0);
    println!(
        "FIGURE ping_ms {:.3}",
        median(t_ping).as_secs_f64() * 1000.0
    );
    println!("FIGURE server_cpu_us {cpu_call_us:.0}");
    println!("FIGURE server_cpu_ping_us {cpu_ping_us:.0}");
    println!("FIGURE cold_start_ms {:.1}", m_start.as_secs_f64() * 1000.0);
    if !t_floor.is_empty() {
        println!(
            "FIGURE cold_start_floor_ms {:.1}",
            median(t_floor).as_secs_f64() * 1000.0
        );
    }
    println!("FIGURE peak_rss_mb {:.1}", m_rss as f64 / 1e6);
    Ok(())
}
