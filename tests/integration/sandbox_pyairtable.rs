//! Compatibility: pyairtable, unchanged, pointed at the sandbox (tests/python/pyairtable_compat.py).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;

use airtable_mcp::sandbox::{self, DEMO_BASE_ID, SandboxConfig};

#[tokio::test]
async fn pyairtable_works_against_the_sandbox() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run tools/setup-test-env.sh",
        python.display()
    );
    let sb = sandbox::spawn(SandboxConfig::demo(), SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let out = tokio::process::Command::new(&python)
        .arg(root.join("tests/python/pyairtable_compat.py"))
        .arg(sb.addr())
        .arg(sb.token())
        .arg(DEMO_BASE_ID)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("OK"),
        "pyairtable failed against the sandbox:\n{stdout}\n{stderr}"
    );
    assert!(sb.stats().requests > 30);
}
