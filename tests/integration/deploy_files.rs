//! The deployment files under deploy/: the Prometheus alert rules pass `promtool check rules`
//! and their unit tests (`promtool test rules`); every metric the Grafana dashboard and the
//! alerts query exists in a real /metrics scrape of the binary (catches renamed metrics); the
//! Kubernetes manifests probe /healthz and /readyz and run non-root on a read-only root; the
//! binary's `health` subcommand (the Docker HEALTHCHECK) succeeds against a live server and
//! fails against a dead one.
//!
//! promtool comes from tools/setup-test-env.sh (PATH or .venv/bin): without it these tests
//! FAIL, they do not skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{RawSession, TOKEN_A};
use tokio::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn promtool() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("promtool"))
            .find(|p| p.is_file())
    });
    let venv = root().join(".venv/bin/promtool");
    on_path
        .or_else(|| venv.is_file().then_some(venv))
        .expect("promtool is missing: run tools/setup-test-env.sh (it installs .venv/bin/promtool)")
}

fn run_promtool(args: &[&str]) {
    let out = std::process::Command::new(promtool())
        .args(args)
        .current_dir(root().join("deploy/prometheus"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    assert!(text.contains("SUCCESS"), "promtool {args:?}:\n{text}");
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    run_promtool(&["check", "rules", "alerts.yml"]);
    run_promtool(&["test", "rules", "alerts_test.yml"]);
}

/// Every `airtable_mcp_*` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"airtable_mcp_[a-zA-Z0-9_]+").unwrap();
    re.find_iter(text).map(|m| m.as_str().to_owned()).collect()
}

/// The series names a scrape can hold: its samples, plus what each `# TYPE` line declares
/// (a family without samples yet still names its series).
fn scraped_names(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            let (name, kind) = (it.next().unwrap(), it.next().unwrap_or(""));
            match kind {
                "counter" => {
                    names.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for s in ["bucket", "sum", "count"] {
                        names.insert(format!("{name}_{s}"));
                    }
                }
                _ => {
                    names.insert(name.to_owned());
                }
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap();
            names.insert(name.to_owned());
        }
    }
    names
}

/// `serve --http --sandbox` on a free port; returns the child and its base URL.
async fn serve_sandbox(home: &Path) -> (tokio::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_airtable-mcp"))
        .env_clear()
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AIRTABLE_MCP_KEYRING", "none")
        .env("AIRTABLE_MCP_AUTH_TOKENS", TOKEN_A)
        // A `--redis` that never answers (port 1): the Redis families (up = 0, fallback) are
        // exported, and the server keeps answering on its local share meanwhile.
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--sandbox",
            "--redis",
            "redis://127.0.0.1:1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (base, _, mut lines) = common::http_base_of(&mut child).await;
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base)
}

#[tokio::test]
async fn dashboard_and_alerts_query_only_metrics_the_binary_exports() {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana/dashboard.json")).unwrap(),
    )
    .expect("dashboard.json is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8, "{} panels", panels.len());
    let mut exprs = String::new();
    for p in panels {
        let targets = p["targets"].as_array().expect("every panel has targets");
        assert!(!targets.is_empty(), "{}", p["title"]);
        for t in targets {
            exprs.push_str(t["expr"].as_str().expect("a PromQL expr"));
            exprs.push('\n');
        }
    }
    let used_dashboard = metric_names(&exprs);
    let alerts = std::fs::read_to_string(root().join("deploy/prometheus/alerts.yml")).unwrap();
    let used_alerts = metric_names(&alerts);
    // What the issue asks the dashboard to show.
    for needed in [
        "airtable_mcp_airtable_requests_total",
        "airtable_mcp_airtable_rate_limited_total",
        "airtable_mcp_airtable_retries_total",
        "airtable_mcp_tool_calls_total",
        "airtable_mcp_tool_call_duration_seconds_bucket",
        "airtable_mcp_airtable_rate_limiter_wait_seconds_total",
        "airtable_mcp_active_sessions",
        "airtable_mcp_redis_up",
        "airtable_mcp_redis_fallback_acquisitions_total",
    ] {
        assert!(
            used_dashboard.contains(needed),
            "the dashboard lacks {needed}"
        );
    }

    let home = tempfile::tempdir().unwrap();
    let (mut child, base) = serve_sandbox(home.path()).await;
    let http = reqwest::Client::new();
    // A tool call, so that the per-tool families have series.
    let mut session = RawSession::open(http.clone(), &base, TOKEN_A)
        .await
        .unwrap();
    session
        .call("list_bases", serde_json::json!({}))
        .await
        .unwrap();
    let scrape = http
        .get(format!("{base}/metrics"))
        .bearer_auth(TOKEN_A)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exported = scraped_names(&scrape);
    assert!(
        exported.contains("airtable_mcp_tool_call_duration_seconds_bucket"),
        "{scrape}"
    );
    for name in used_dashboard.iter().chain(&used_alerts) {
        assert!(
            exported.contains(name),
            "{name} is queried by deploy/ but not in /metrics:\n{scrape}"
        );
    }

    // The Docker HEALTHCHECK: `airtable-mcp health` against the live server, then a dead port.
    let health = |url: String| async move {
        Command::new(env!("CARGO_BIN_EXE_airtable-mcp"))
            .args(["health", "--url", &url, "--timeout", "10"])
            .env_clear()
            .output()
            .await
            .unwrap()
    };
    let ok = health(format!("{base}/healthz")).await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let missing = health(format!("{base}/no-such-page")).await;
    assert!(!missing.status.success());
    child.kill().await.unwrap();
    let _ = child.wait().await;
    let dead = health(format!("{base}/healthz")).await;
    assert!(!dead.status.success());
    assert!(
        String::from_utf8_lossy(&dead.stderr).contains("did not answer"),
        "{}",
        String::from_utf8_lossy(&dead.stderr)
    );
}

#[test]
fn kubernetes_and_compose_files_keep_their_safety_properties() {
    let read = |p: &str| std::fs::read_to_string(root().join(p)).unwrap();
    let deployment = read("deploy/kubernetes/deployment.yaml");
    for needed in [
        "replicas: 3",
        "path: /healthz",
        "path: /readyz",
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        "secretKeyRef:",
        "limits:",
        "requests:",
    ] {
        assert!(
            deployment.contains(needed),
            "deployment.yaml lacks {needed}"
        );
    }
    let compose = read("deploy/compose.yaml");
    for needed in [
        "mcp1:",
        "mcp2:",
        "mcp3:",
        "redis://redis:6379",
        "--stateless",
    ] {
        assert!(compose.contains(needed), "compose.yaml lacks {needed}");
    }
    let nginx = read("deploy/nginx/nginx.conf");
    for host in ["mcp1:8787", "mcp2:8787", "mcp3:8787"] {
        assert!(nginx.contains(host), "nginx.conf lacks {host}");
    }
    let dockerfile = read("Dockerfile");
    for needed in [
        "--profile dist --locked",
        "USER nonroot",
        "HEALTHCHECK",
        "health",
    ] {
        assert!(dockerfile.contains(needed), "Dockerfile lacks {needed}");
    }
    // No secret value in a file meant to be committed: only references.
    let token_like = regex::Regex::new(r"pat[A-Za-z0-9]{14}\.[0-9a-f]{20,}").unwrap();
    for (name, text) in [("compose.yaml", &compose), ("deployment.yaml", &deployment)] {
        assert!(!token_like.is_match(text), "{name} holds a token");
        assert!(
            !text.contains("AIRTABLE_API_KEY: pat"),
            "{name} holds a token"
        );
    }
}
