//! The keyring against real backends: the Secret Service (when tools/with-secret-service.sh
//! provides one: then these tests FAIL if it is unusable), the Linux kernel keyring, and the
//! paths where no keyring exists.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use airtable_mcp::auth::keyring::{Backend, Keyring};
use secrecy::{ExposeSecret, SecretString};

const BIN: &str = env!("CARGO_BIN_EXE_airtable-mcp");

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// The binary with a clean environment: no token, no config file, no D-Bus unless asked.
fn bin() -> Command {
    let mut c = Command::new(BIN);
    for v in airtable_mcp::env::ENV_VARS {
        c.env_remove(v.0);
    }
    // Never read the user's config file: point at an empty one.
    // In cargo's scratch directory for integration tests (under target/), not in /tmp, where
    // one file per test run used to be left behind.
    let empty = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("airtable-mcp-empty-{}.toml", std::process::id()));
    std::fs::write(&empty, "").unwrap();
    c.env("AIRTABLE_MCP_CONFIG", &empty);
    c
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Whether the Secret Service tests run. `AIRTABLE_MCP_TEST_SECRET_SERVICE=1` (set by
/// tools/with-secret-service.sh, which tools/test.sh uses) says one is provided: then they run and
/// FAIL if it does not work. In CI (`CI=true`) they must run: without that variable they FAIL
/// instead of skipping. Only outside CI, with no Secret Service provided, are they skipped.
fn secret_service_required() -> bool {
    if std::env::var("AIRTABLE_MCP_TEST_SECRET_SERVICE").as_deref() == Ok("1") {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| matches!(v.trim(), "true" | "1" | "TRUE" | "True"));
    assert!(
        !ci,
        "CI is set but no Secret Service is provided: run the tests under \
         `dbus-run-session -- tools/with-secret-service.sh` (tools/test.sh does)"
    );
    eprintln!(
        "not run: no Secret Service provided (run under tools/with-secret-service.sh, as \
         tools/test.sh does; in CI this is a failure)"
    );
    false
}

#[test]
fn secret_service_roundtrip() {
    if !secret_service_required() {
        return;
    }
    let k = Keyring::open(Backend::SecretService).unwrap_or_else(|e| {
        panic!("AIRTABLE_MCP_TEST_SECRET_SERVICE=1 but the Secret Service does not open: {e}")
    });
    k.probe().unwrap_or_else(|e| {
        panic!("AIRTABLE_MCP_TEST_SECRET_SERVICE=1 but the Secret Service probe fails: {e}")
    });
    let profile = unique("ss-test");
    let value = SecretString::from(unique("patSecretValue"));
    assert!(k.get(&profile).unwrap().is_none());
    k.set(&profile, &value).unwrap();
    assert_eq!(
        k.get(&profile).unwrap().unwrap().expose_secret(),
        value.expose_secret()
    );
    // Seen from outside: libsecret's own client finds the item under our service and user.
    let out = Command::new("secret-tool")
        .args(["lookup", "service", "airtable-mcp", "username", &profile])
        .output()
        .expect("secret-tool (libsecret-tools) is installed by tools/setup-test-env.sh");
    assert!(out.status.success(), "secret-tool lookup failed: {out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        value.expose_secret()
    );
    assert!(k.remove(&profile).unwrap());
    assert!(k.get(&profile).unwrap().is_none());
    assert!(!k.remove(&profile).unwrap());
}

#[test]
fn auto_selection_prefers_a_working_secret_service() {
    if !secret_service_required() {
        return;
    }
    let out = bin().arg("doctor").output().unwrap();
    let (stdout, _) = text(&out);
    let line = stdout
        .lines()
        .find(|l| l.contains("keyring usable"))
        .unwrap_or_else(|| panic!("no keyring line in:\n{stdout}"));
    assert!(
        line.starts_with("✓") && line.contains("Secret Service"),
        "auto selection did not pick the Secret Service: {line}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn kernel_keyring_roundtrip_after_joining_a_session_keyring() {
    // What prepare_process does, on this test's own thread (credentials are per thread).
    linux_keyutils::KeyRing::from_special_id(linux_keyutils::KeyRingIdentifier::Session, true)
        .unwrap();
    let k = Keyring::open(Backend::Keyutils).unwrap();
    k.probe().unwrap();
    let profile = unique("ku-test");
    let value = SecretString::from(unique("patKernelValue"));
    k.set(&profile, &value).unwrap();
    assert_eq!(
        k.get(&profile).unwrap().unwrap().expose_secret(),
        value.expose_secret()
    );
    assert!(k.remove(&profile).unwrap());
}

#[cfg(target_os = "linux")]
#[test]
fn binary_uses_the_kernel_keyring_when_forced() {
    // doctor probes with a real write, read and delete: it only passes if prepare_process joined
    // a session keyring the process may write.
    let out = bin()
        .arg("doctor")
        .env("AIRTABLE_MCP_KEYRING", "keyutils")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    let line = stdout
        .lines()
        .find(|l| l.contains("keyring usable"))
        .unwrap_or_else(|| panic!("no keyring line in:\n{stdout}\n{stderr}"));
    assert!(
        line.contains("kernel keyring") && !line.starts_with("✗"),
        "keyutils unusable from the binary: {line}"
    );
    // Logout of a profile never stored: the keyring answers "nothing there".
    let out = bin()
        .args(["auth", "logout", "--profile", &unique("absent")])
        .env("AIRTABLE_MCP_KEYRING", "keyutils")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("No token was stored"), "{stdout}");
}

#[test]
fn no_keyring_gives_a_clear_error_naming_the_fix() {
    let out = bin()
        .args(["auth", "status", "--profile", "work"])
        .env("AIRTABLE_MCP_KEYRING", "none")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("Token:   none"), "{stdout}");
    assert!(stderr.contains("AIRTABLE_API_KEY"), "{stderr}");
    assert!(
        stderr.contains("airtable-mcp auth login --profile work"),
        "{stderr}"
    );
    assert!(stderr.contains("disabled"), "{stderr}");

    let out = bin()
        .args(["auth", "logout"])
        .env("AIRTABLE_MCP_KEYRING", "none")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("keyring is disabled"), "{stderr}");

    let out = bin()
        .args(["auth", "status"])
        .env("AIRTABLE_MCP_KEYRING", "vault")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("\"vault\" is not a keyring backend"),
        "{stderr}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn no_dbus_gives_a_clear_error() {
    let out = bin()
        .args(["auth", "status"])
        .env("AIRTABLE_MCP_KEYRING", "secret-service")
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent-airtable-mcp/bus",
        )
        .env("XDG_RUNTIME_DIR", "/nonexistent-airtable-mcp")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("Secret Service"), "{stderr}");
    assert!(stderr.contains("AIRTABLE_API_KEY"), "{stderr}");
}

#[test]
fn env_token_wins_without_any_keyring() {
    let token = "patEnvOnlyToken1234.abcdefabcdefabcdef9876";
    for var in ["AIRTABLE_API_KEY", "AIRTABLE_TOKEN", "AIRTABLE_PAT"] {
        let out = bin()
            .args(["auth", "status", "--api-url", "http://127.0.0.1:9"])
            .env("AIRTABLE_MCP_KEYRING", "none")
            .env(var, format!("  {token}\n"))
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(
            stdout.contains(&format!("Source:  environment variable {var}")),
            "{stdout}"
        );
        assert!(stdout.contains("Token:   pat…9876"), "{stdout}");
        assert!(!stdout.contains(token) && !stderr.contains(token));
        assert!(
            !stdout.contains("abcdef"),
            "more than 4 chars shown: {stdout}"
        );
    }
    // Resolution order: AIRTABLE_API_KEY before AIRTABLE_TOKEN before AIRTABLE_PAT.
    let out = bin()
        .args(["auth", "status", "--api-url", "http://127.0.0.1:9"])
        .env("AIRTABLE_MCP_KEYRING", "none")
        .env("AIRTABLE_PAT", "patThirdxxxxxxxxxxx3333")
        .env("AIRTABLE_TOKEN", "patSecondxxxxxxxxxx2222")
        .output()
        .unwrap();
    assert!(
        text(&out)
            .0
            .contains("Source:  environment variable AIRTABLE_TOKEN")
    );
}

#[cfg(target_os = "linux")]
#[test]
fn http_bearer_tokens_in_the_keyring() {
    // A service name of our own, so a developer's real entries are never touched.
    let service = unique("airtable-mcp-test");
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut c = bin();
        c.args(["auth", "http-token"])
            .args(args)
            .env("AIRTABLE_MCP_KEYRING", "keyutils")
            .env("AIRTABLE_MCP_KEYRING_SERVICE", &service)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            use std::io::Write;
            let mut si = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                si.write_all(s.as_bytes()).unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        let (so, se) = text(&out);
        assert!(out.status.success(), "{args:?}: {so}{se}");
        (so, se)
    };
    let (so, _) = run(&["list"], None);
    assert!(so.contains("No HTTP bearer token"), "{so}");
    let (generated, se) = run(&["add", "--generate"], None);
    let generated = generated.trim().to_owned();
    assert_eq!(generated.len(), 64, "{generated}");
    assert!(generated.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(se.contains("1 HTTP bearer token(s) stored"), "{se}");
    let (_, se) = run(&["add", "--stdin"], Some("  my-own-bearer-token-0001\n"));
    assert!(se.contains("2 HTTP bearer token(s) stored"), "{se}");
    let (so, _) = run(&["list"], None);
    assert_eq!(so.lines().count(), 2, "{so}");
    assert!(so.contains("…0001"), "{so}");
    assert!(
        !so.contains(&generated) && !so.contains("my-own-bearer"),
        "{so}"
    );

    // Too short: refused.
    let mut c = bin();
    c.args(["auth", "http-token", "add", "--stdin"])
        .env("AIRTABLE_MCP_KEYRING", "keyutils")
        .env("AIRTABLE_MCP_KEYRING_SERVICE", &service)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"short").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out).1.contains("at least 16"), "{}", text(&out).1);

    let (so, _) = run(&["clear"], None);
    assert!(so.contains("Removed"), "{so}");
    let (so, _) = run(&["list"], None);
    assert!(so.contains("No HTTP bearer token"), "{so}");
}
