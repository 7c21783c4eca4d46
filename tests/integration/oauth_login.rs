//! `auth login --oauth` end to end against the sandbox: the real binary prints the sign-in URL,
//! the test plays the browser (auto-approve, then the loopback redirect), the grant lands in the
//! keyring, `auth status` shows it and `serve` answers a tool call with it.
//!
//! Keyring: the Secret Service when `AIRTABLE_MCP_TEST_SECRET_SERVICE=1` (tools/test.sh runs the
//! tests under tools/with-secret-service.sh), else the kernel keyring; a unique service name
//! per test keeps entries apart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::time::Duration;

use airtable_mcp::sandbox::{self, SandboxConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

fn backend() -> &'static str {
    if std::env::var("AIRTABLE_MCP_TEST_SECRET_SERVICE").as_deref() == Ok("1") {
        "secret-service"
    } else {
        "keyutils"
    }
}

fn bin(service: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_airtable-mcp"));
    for v in [
        "AIRTABLE_API_KEY",
        "AIRTABLE_TOKEN",
        "AIRTABLE_PAT",
        "AIRTABLE_API_URL",
        "AIRTABLE_MCP_PROFILE",
        "AIRTABLE_MCP_CONFIG",
        "AIRTABLE_MCP_OAUTH_URL",
        "AIRTABLE_MCP_OAUTH_CLIENT_SECRET",
    ] {
        c.env_remove(v);
    }
    c.env("AIRTABLE_MCP_KEYRING", backend())
        .env("AIRTABLE_MCP_KEYRING_SERVICE", service)
        .env("AIRTABLE_MCP_LOG", "warn")
        .kill_on_drop(true);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_oauth_against_the_sandbox_then_status_and_serve() {
    let sb = sandbox::spawn(
        SandboxConfig {
            oauth_auto_approve: true,
            // Short-lived access tokens: `serve` must refresh them as it goes.
            oauth_access_ttl: Duration::from_secs(2),
            ..SandboxConfig::demo()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let url = sb.addr();
    let service = format!("airtable-mcp-test-oauth-{}", std::process::id());
    let profile = "oauthe2e";

    let mut login = bin(&service)
        .args([
            "auth",
            "login",
            "--oauth",
            "--no-browser",
            "--client-id",
            "sandbox-client",
            "--api-url",
            &url,
            "--profile",
            profile,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The sign-in URL is printed on stderr.
    let mut lines = BufReader::new(login.stderr.take().unwrap()).lines();
    let auth_url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if l.starts_with("http") && l.contains("/oauth2/v1/authorize?") {
                return l;
            }
        }
        panic!("no sign-in URL on stderr");
    })
    .await
    .unwrap();
    assert!(
        auth_url.contains("code_challenge_method=S256"),
        "{auth_url}"
    );
    // Play the browser: the authorize page redirects at once (auto-approve) to the loopback.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = browser.get(&auth_url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let callback = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with("http://localhost:"), "{callback}");
    let page = browser.get(&callback).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("signed in"));
    let out = tokio::time::timeout(Duration::from_secs(60), login.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("Signed in with Airtable as"), "{stdout}");
    assert!(stdout.contains("sandbox@example.com"), "{stdout}");
    assert_eq!(sb.state().oauth_stats().code_exchanges, 1);

    // auth status shows the grant.
    let st = bin(&service)
        .args(["auth", "status", "--api-url", &url, "--profile", profile])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(st.status.success(), "{text}");
    assert!(
        text.contains("Auth:    OAuth (client sandbox-client)"),
        "{text}"
    );
    assert!(text.contains("Granted: data.records:read"), "{text}");
    assert!(text.contains("Refresh: expires"), "{text}");

    // serve (stdio) with that profile answers a tool call.
    let mut serve = bin(&service)
        .args(["serve", "--api-url", &url, "--profile", profile])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = serve.stdin.take().unwrap();
    let mut out = BufReader::new(serve.stdout.take().unwrap()).lines();
    for msg in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "list_bases", "arguments": {}}}),
    ] {
        stdin
            .write_all(format!("{msg}\n").as_bytes())
            .await
            .unwrap();
    }
    stdin.flush().await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(l) = out.next_line().await.unwrap() {
            let v: Value = serde_json::from_str(&l).unwrap();
            if v["id"] == 2 {
                return v;
            }
        }
        panic!("serve closed stdout");
    })
    .await
    .unwrap();
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    assert!(
        answer.to_string().contains(sandbox::DEMO_BASE_ID),
        "{answer}"
    );
    // Past the access token's refresh point: parallel calls, exactly one refresh.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let before = sb.state().oauth_stats().refreshes;
    for id in 3..7 {
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "list_bases", "arguments": {}}});
        stdin
            .write_all(format!("{msg}\n").as_bytes())
            .await
            .unwrap();
    }
    stdin.flush().await.unwrap();
    let mut ok = 0;
    tokio::time::timeout(Duration::from_secs(60), async {
        while ok < 4 {
            let l = out.next_line().await.unwrap().expect("serve closed stdout");
            let v: Value = serde_json::from_str(&l).unwrap();
            if v["id"].as_i64().is_some_and(|i| (3..7).contains(&i)) {
                assert_eq!(v["result"]["isError"], false, "{v}");
                ok += 1;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(sb.state().oauth_stats().refreshes, before + 1);
    drop(stdin);
    let _ = serve.kill().await;

    // doctor checks the grant.
    let doc = bin(&service)
        .args(["doctor", "--api-url", &url, "--profile", profile])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&doc.stdout);
    assert!(
        text.contains("OAuth grant: client sandbox-client; scopes data.records:read"),
        "{text}"
    );

    // logout removes the grant.
    let lo = bin(&service)
        .args(["auth", "logout", "--profile", profile])
        .output()
        .await
        .unwrap();
    assert!(lo.status.success());
    let st = bin(&service)
        .args(["auth", "status", "--api-url", &url, "--profile", profile])
        .output()
        .await
        .unwrap();
    assert!(!st.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_oauth_fails_clearly_when_denied_or_without_a_client_id() {
    let sb = sandbox::spawn(SandboxConfig::demo(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = sb.addr();
    let service = format!("airtable-mcp-test-oauth-deny-{}", std::process::id());
    let out = bin(&service)
        .args([
            "auth",
            "login",
            "--oauth",
            "--no-browser",
            "--api-url",
            &url,
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--client-id"));

    let mut login = bin(&service)
        .args([
            "auth",
            "login",
            "--oauth",
            "--no-browser",
            "--client-id",
            "sandbox-client",
            "--api-url",
            &url,
            "--profile",
            "oauthdeny",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(login.stderr.take().unwrap()).lines();
    let auth_url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if l.starts_with("http") && l.contains("/oauth2/v1/authorize?") {
                return l;
            }
        }
        panic!("no sign-in URL on stderr");
    })
    .await
    .unwrap();
    // The consent page, then "Deny".
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = browser.get(&auth_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Deny"));
    let mut form: Vec<(String, String)> = url::Url::parse(&auth_url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    form.push(("decision".into(), "deny".into()));
    let r = browser
        .post(format!("{url}/oauth2/v1/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(&form).unwrap())
        .send()
        .await
        .unwrap();
    let callback = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.contains("error=access_denied"), "{callback}");
    browser.get(&callback).send().await.unwrap();
    let mut rest = String::new();
    while let Some(l) = lines.next_line().await.unwrap() {
        rest.push_str(&l);
        rest.push('\n');
    }
    let status = tokio::time::timeout(Duration::from_secs(60), login.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!status.success());
    assert!(
        rest.contains("refused the sign-in: access_denied"),
        "{rest}"
    );
    assert_eq!(sb.state().oauth_stats().code_exchanges, 0);
}
