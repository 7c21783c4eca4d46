//! The floor under `bench_server`'s cold-start figure (4): the least a stdio MCP server can do for
//! the start-up exchange. It answers `initialize` and `tools/list` with the results given in two
//! files (the real server's, captured by the benchmark from its first start) and any other
//! request with an empty result. std and serde_json only, no runtime: what it takes to answer is
//! the process start, the pipes and the client's parse of the same bytes.
//!
//! Usage: `stdio_floor <initialize result file> <tools/list result file>`.

use std::io::{BufRead, Write};

use anyhow::{Context, Result};
use serde_json::Value;

fn main() -> Result<()> {
    let mut files = std::env::args_os().skip(1);
    let mut read = |what: &str| -> Result<Vec<u8>> {
        let path = files
            .next()
            .with_context(|| format!("no {what} result file given"))?;
        std::fs::read(&path).with_context(|| format!("cannot read {}", path.to_string_lossy()))
    };
    let init = read("initialize")?;
    let list = read("tools/list")?;
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        // Notifications (no id) get no answer.
        let Some(id) = msg.get("id") else {
            continue;
        };
        let result: &[u8] = match msg.get("method").and_then(Value::as_str) {
            Some("initialize") => &init,
            Some("tools/list") => &list,
            _ => b"{}",
        };
        let mut answer = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":").into_bytes();
        answer.extend_from_slice(result);
        answer.extend_from_slice(b"}\n");
        out.write_all(&answer)?;
        out.flush()?;
    }
    Ok(())
}
