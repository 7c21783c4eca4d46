//! `airtable-mcp sandbox`: the binary prints its URL, token and demo base on stdout and serves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Kills the child when the test ends, whatever happens.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_subcommand_serves_the_demo_base() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_airtable-mcp"))
        .args([
            "sandbox", "--seed", "demo", "--port", "0", "--token", "t0k", "--db",
        ])
        .arg(dir.path().join("db.sqlite"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _guard = Kill(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let kv: std::collections::HashMap<&str, &str> = line
        .split_whitespace()
        .filter_map(|p| p.split_once('='))
        .collect();
    let url = kv["AIRTABLE_API_URL"].to_string();
    assert_eq!(kv["AIRTABLE_API_KEY"], "t0k");
    assert_eq!(
        kv["AIRTABLE_DEMO_BASE"],
        airtable_mcp::sandbox::DEMO_BASE_ID
    );
    let v: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{url}/v0/{}/Projects?maxRecords=2",
            kv["AIRTABLE_DEMO_BASE"]
        ))
        .bearer_auth("t0k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["records"].as_array().unwrap().len(), 2, "{v}");
}
