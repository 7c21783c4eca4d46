//! `serve --sandbox`: the in-process sandbox takes a random token per run, so no other local
//! process can read its data with the well-known `sandbox-token`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use airtable_mcp::cli::{GlobalArgs, ServeArgs};
use airtable_mcp::config::{Config, FileConfig};
use reqwest::StatusCode;

async fn whoami(url: &str, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{url}/v0/meta/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn the_in_process_sandbox_refuses_the_default_token() {
    let args = ServeArgs {
        sandbox: true,
        ..ServeArgs::default()
    };
    let cfg =
        Config::from_layers(&args, &GlobalArgs::default(), FileConfig::default(), None).unwrap();
    let first = airtable_mcp::server::prepare(&cfg).await.unwrap();
    let second = airtable_mcp::server::prepare(&cfg).await.unwrap();
    let (a, b) = (first.sandbox.unwrap(), second.sandbox.unwrap());
    assert_ne!(a.token(), "sandbox-token");
    assert_ne!(a.token(), b.token(), "a new token every run");
    assert!(a.token().len() >= 32);
    let url = a.addr();
    assert_eq!(
        whoami(&url, "sandbox-token").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(whoami(&url, a.token()).await, StatusCode::OK);
    assert_eq!(whoami(&url, b.token()).await, StatusCode::UNAUTHORIZED);
}
