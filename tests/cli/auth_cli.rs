//! End to end with the binary against the in-process sandbox: `auth login --stdin`, `auth status`,
//! `doctor`, `auth logout`, several profiles, and no token in any output even at trace level.
//!
//! The keyring is whatever auto-selection finds (under tools/test.sh: the Secret Service; in a
//! plain container: the kernel keyring, which the binary can use because `prepare_process` runs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Output, Stdio};

use airtable_mcp::sandbox::{self, SandboxConfig, SandboxHandle};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_airtable-mcp");
const TOKEN: &str = "patE2eSandboxTok01.0123456789abcdef0123456789abcdef9z8y";

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

async fn start_sandbox() -> SandboxHandle {
    let cfg = SandboxConfig {
        token: TOKEN.to_owned(),
        ..SandboxConfig::demo()
    };
    sandbox::spawn(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// The binary with no token in its environment and an empty config file.
fn bin(dir: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    for (name, _) in airtable_mcp::env::ENV_VARS {
        if *name != "AIRTABLE_MCP_TEST_SECRET_SERVICE" {
            c.env_remove(name);
        }
    }
    let empty = dir.join("config.toml");
    std::fs::write(&empty, "").unwrap();
    c.env("AIRTABLE_MCP_CONFIG", &empty);
    c.stdin(Stdio::null());
    c.kill_on_drop(true);
    c
}

async fn run(mut cmd: Command, stdin: Option<&str>) -> (Output, String, String) {
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        let mut si = child.stdin.take().unwrap();
        si.write_all(input.as_bytes()).await.unwrap();
        drop(si);
    }
    let out = child.wait_with_output().await.unwrap();
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    let se = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !so.contains(TOKEN) && !se.contains(TOKEN),
        "the token leaked:\n{so}\n{se}"
    );
    // Not even a recognisable piece of it beyond the last 4 characters.
    assert!(!so.contains("0123456789abcdef") && !se.contains("0123456789abcdef"));
    (out, so, se)
}

#[tokio::test(flavor = "multi_thread")]
async fn login_status_doctor_logout_against_the_sandbox() {
    let sb = start_sandbox().await;
    let url = sb.url().to_string();
    let dir = tempfile::tempdir().unwrap();
    let profile = unique("e2e");

    // Login from stdin (surrounding whitespace trimmed), verified with whoami, stored.
    let mut c = bin(dir.path());
    c.args([
        "auth",
        "login",
        "--stdin",
        "--profile",
        &profile,
        "--api-url",
        &url,
    ]);
    let (out, so, se) = run(c, Some(&format!("  {TOKEN}\n"))).await;
    assert!(out.status.success(), "login failed:\n{so}\n{se}");
    assert!(so.contains(airtable_mcp::sandbox::SANDBOX_USER_ID), "{so}");
    assert!(so.contains("sandbox@example.com"), "{so}");
    assert!(so.contains("pat…9z8y"), "{so}");
    assert!(
        so.contains(&format!("stored for profile \"{profile}\"")),
        "{so}"
    );

    // Status: from the keyring, masked, user shown; trace logging leaks nothing.
    let mut c = bin(dir.path());
    c.args([
        "--log-level",
        "trace",
        "auth",
        "status",
        "--profile",
        &profile,
        "--api-url",
        &url,
    ]);
    let (out, so, se) = run(c, None).await;
    assert!(out.status.success(), "status failed:\n{so}\n{se}");
    assert!(so.contains("Source:  keyring profile"), "{so}");
    assert!(so.contains("Token:   pat…9z8y"), "{so}");
    assert!(
        so.contains(&format!(
            "User:    {}",
            airtable_mcp::sandbox::SANDBOX_USER_ID
        )),
        "{so}"
    );
    assert!(
        se.contains("TRACE") || se.contains("DEBUG"),
        "trace logging is not on: {se}"
    );

    // The same profile through the env var the server uses.
    let mut c = bin(dir.path());
    c.args(["auth", "status", "--api-url", &url])
        .env("AIRTABLE_MCP_PROFILE", &profile);
    let (out, so, _) = run(c, None).await;
    assert!(out.status.success(), "{so}");

    // Doctor: every essential check passes against the sandbox, at trace level.
    let mut c = bin(dir.path());
    c.args([
        "--log-level",
        "trace",
        "doctor",
        "--profile",
        &profile,
        "--api-url",
        &url,
    ]);
    let (out, so, se) = run(c, None).await;
    assert!(out.status.success(), "doctor failed:\n{so}\n{se}");
    for check in [
        "token found",
        "API reachable",
        "token valid",
        "read scopes",
        "base readable",
    ] {
        let line = so.lines().find(|l| l.contains(check)).unwrap_or("");
        assert!(line.starts_with('✓'), "{check}: {line}\n{so}");
    }
    assert!(so.contains(airtable_mcp::sandbox::DEMO_BASE_ID), "{so}");

    // A second profile with a wrong token: refused by whoami, not stored.
    let other = unique("e2e-bad");
    let mut c = bin(dir.path());
    c.args([
        "auth",
        "login",
        "--stdin",
        "--profile",
        &other,
        "--api-url",
        &url,
    ]);
    let (out, so, se) = run(c, Some("patWrongWrongWrong1.ffff")).await;
    assert!(
        !out.status.success(),
        "a wrong token was accepted:\n{so}\n{se}"
    );
    assert!(se.contains("not stored"), "{se}");
    assert!(se.contains("401"), "{se}");
    let mut c = bin(dir.path());
    c.args(["auth", "status", "--profile", &other, "--api-url", &url]);
    let (out, _, se) = run(c, None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        se.contains(&format!("airtable-mcp auth login --profile {other}")),
        "{se}"
    );

    // Empty input is refused before any request.
    let mut c = bin(dir.path());
    c.args([
        "auth",
        "login",
        "--stdin",
        "--profile",
        &other,
        "--api-url",
        &url,
    ]);
    let (out, _, se) = run(c, Some("  \n")).await;
    assert!(!out.status.success());
    assert!(se.contains("invalid token: it is empty"), "{se}");

    // Logout, then the profile has no token.
    let mut c = bin(dir.path());
    c.args(["auth", "logout", "--profile", &profile]);
    let (out, so, se) = run(c, None).await;
    assert!(out.status.success(), "{so}{se}");
    assert!(so.contains("Removed the token"), "{so}");
    let mut c = bin(dir.path());
    c.args(["auth", "status", "--profile", &profile, "--api-url", &url]);
    let (out, so, _) = run(c, None).await;
    assert_eq!(out.status.code(), Some(1), "{so}");
    assert!(so.contains("Token:   none"), "{so}");

    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn env_token_status_and_doctor_without_keyring() {
    let sb = start_sandbox().await;
    let url = sb.url().to_string();
    let dir = tempfile::tempdir().unwrap();

    let mut c = bin(dir.path());
    c.args(["--log-level", "trace", "auth", "status", "--api-url", &url])
        .env("AIRTABLE_MCP_KEYRING", "none")
        .env("AIRTABLE_API_KEY", TOKEN);
    let (out, so, se) = run(c, None).await;
    assert!(out.status.success(), "{so}\n{se}");
    assert!(
        so.contains("Source:  environment variable AIRTABLE_API_KEY"),
        "{so}"
    );

    // Doctor passes with the env token even though no keyring exists (keyring is not essential).
    let mut c = bin(dir.path());
    c.args(["doctor", "--api-url", &url])
        .env("AIRTABLE_MCP_KEYRING", "none")
        .env("AIRTABLE_API_KEY", TOKEN);
    let (out, so, se) = run(c, None).await;
    assert!(out.status.success(), "{so}\n{se}");
    let line = so.lines().find(|l| l.contains("keyring usable")).unwrap();
    assert!(line.starts_with('✗') && line.contains("disabled"), "{line}");

    // A wrong env token: doctor fails on "token valid" and exits 1.
    let mut c = bin(dir.path());
    c.args(["doctor", "--api-url", &url])
        .env("AIRTABLE_MCP_KEYRING", "none")
        .env("AIRTABLE_API_KEY", "patNotTheRightOne1.abcd");
    let (out, so, _) = run(c, None).await;
    assert_eq!(out.status.code(), Some(1), "{so}");
    let line = so.lines().find(|l| l.contains("token valid")).unwrap();
    assert!(line.starts_with('✗'), "{line}");

    // An unreachable API: "API reachable" fails with a fix.
    let mut c = bin(dir.path());
    c.args(["doctor", "--api-url", "http://127.0.0.1:9"])
        .env("AIRTABLE_MCP_KEYRING", "none")
        .env("AIRTABLE_API_KEY", TOKEN);
    let (out, so, _) = run(c, None).await;
    assert_eq!(out.status.code(), Some(1), "{so}");
    let line = so.lines().find(|l| l.contains("API reachable")).unwrap();
    assert!(line.starts_with('✗'), "{line}");

    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_writes_and_merges_client_configs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("claude_desktop_config.json");
    std::fs::write(
        &path,
        r#"{"mcpServers": {"github": {"command": "gh", "args": []}}, "theme": "dark"}"#,
    )
    .unwrap();

    let mut c = bin(dir.path());
    c.args([
        "setup",
        "claude-desktop",
        "--profile",
        "work",
        "--config-path",
    ])
    .arg(&path)
    // A token in the environment must never end up in the file.
    .env("AIRTABLE_API_KEY", TOKEN);
    let (out, so, se) = run(c, None).await;
    assert!(out.status.success(), "{so}{se}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(!std::fs::read_to_string(&path).unwrap().contains(TOKEN));
    assert_eq!(v["theme"], "dark");
    assert_eq!(v["mcpServers"]["github"]["command"], "gh");
    let entry = &v["mcpServers"]["airtable"];
    let exe = std::fs::canonicalize(BIN).unwrap();
    assert_eq!(entry["command"], exe.to_string_lossy().as_ref());
    assert_eq!(
        entry["args"],
        serde_json::json!(["serve", "--profile", "work"])
    );
    let backups: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".bak-"))
        .collect();
    assert_eq!(backups.len(), 1, "one backup expected");
    let backup: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(backups[0].path()).unwrap()).unwrap();
    assert!(backup["mcpServers"].get("airtable").is_none());

    // VS Code: created from nothing, `servers` + type stdio.
    let vs = dir.path().join("vscode").join("mcp.json");
    let mut c = bin(dir.path());
    c.args(["setup", "vscode", "--config-path"]).arg(&vs);
    let (out, so, se) = run(c, None).await;
    assert!(out.status.success(), "{so}{se}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&vs).unwrap()).unwrap();
    assert_eq!(v["servers"]["airtable"]["type"], "stdio");
    assert_eq!(
        v["servers"]["airtable"]["args"],
        serde_json::json!(["serve"])
    );

    // --print changes nothing.
    let before = std::fs::read_to_string(&path).unwrap();
    let mut c = bin(dir.path());
    c.args(["setup", "cursor", "--print", "--config-path"])
        .arg(&path);
    let (out, so, _) = run(c, None).await;
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_str(&so).unwrap();
    assert!(printed["mcpServers"]["airtable"]["command"].is_string());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
}

/// A token stored in the kernel keyring (e.g. by a login over SSH without D-Bus) is still found
/// when auto-selection later picks the Secret Service; logout removes it there too.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn auto_mode_finds_a_token_in_the_other_backend() {
    // Needs a Secret Service: provided by tools/with-secret-service.sh (tools/test.sh). In CI
    // (`CI=true`) its absence is a failure, not a skip.
    if std::env::var("AIRTABLE_MCP_TEST_SECRET_SERVICE").as_deref() != Ok("1") {
        let ci =
            std::env::var("CI").is_ok_and(|v| matches!(v.trim(), "true" | "1" | "TRUE" | "True"));
        assert!(
            !ci,
            "CI is set but no Secret Service is provided: run under \
             `dbus-run-session -- tools/with-secret-service.sh` (tools/test.sh does)"
        );
        eprintln!(
            "not run: needs a Secret Service (tools/with-secret-service.sh); in CI this fails"
        );
        return;
    }
    let sb = start_sandbox().await;
    let url = sb.url().to_string();
    let dir = tempfile::tempdir().unwrap();
    let profile = unique("e2e-other");

    let mut c = bin(dir.path());
    c.args([
        "auth",
        "login",
        "--stdin",
        "--profile",
        &profile,
        "--api-url",
        &url,
    ])
    .env("AIRTABLE_MCP_KEYRING", "keyutils");
    let (out, so, se) = run(c, Some(TOKEN)).await;
    assert!(out.status.success(), "{so}{se}");
    assert!(so.contains("kernel keyring"), "{so}");

    let mut c = bin(dir.path());
    c.args(["auth", "status", "--profile", &profile, "--api-url", &url]);
    let (out, so, se) = run(c, None).await;
    assert!(out.status.success(), "{so}{se}");
    assert!(
        so.contains("Source:  keyring profile") && so.contains("kernel keyring"),
        "{so}"
    );

    let mut c = bin(dir.path());
    c.args(["auth", "logout", "--profile", &profile]);
    let (out, so, _) = run(c, None).await;
    assert!(out.status.success() && so.contains("Removed"), "{so}");
    let mut c = bin(dir.path());
    c.args(["auth", "status", "--profile", &profile, "--api-url", &url])
        .env("AIRTABLE_MCP_KEYRING", "keyutils");
    let (out, so, _) = run(c, None).await;
    assert_eq!(out.status.code(), Some(1), "{so}");
    sb.shutdown().await;
}
