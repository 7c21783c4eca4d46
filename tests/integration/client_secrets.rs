//! The token never appears in errors, Debug output or logs (trace level), even on failures.
//! Its own test binary: it installs a thread-local tracing subscriber, and tracing's callsite
//! interest cache is shared with any test running on another thread.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use airtable_mcp::airtable::{ApiErrorKind, BaseId, Client, ClientConfig, Fields, WriteOptions};
use secrecy::SecretString;
use serde_json::json;
use support::{BASE, Fixture, Scripted, TOKEN};

fn config(url: &url::Url) -> ClientConfig {
    let mut cfg = ClientConfig::new(url.clone(), SecretString::from(TOKEN));
    cfg.timeout = Duration::from_secs(5);
    cfg.max_retries = 1;
    cfg.initial_backoff = Duration::from_millis(5);
    cfg.max_backoff = Duration::from_millis(20);
    cfg
}

fn base() -> BaseId {
    BASE.parse().unwrap()
}

fn named(n: usize) -> Vec<Fields> {
    (0..n)
        .map(|i| {
            json!({"Name": format!("r{i}")})
                .as_object()
                .unwrap()
                .clone()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_token_never_appears_in_errors_or_logs() {
    use tracing_subscriber::fmt::MakeWriter;
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }
    let buf = Buf::default();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(buf.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(sub);

    let fx = Fixture::start().await;
    let secret =
        "patWRONGwrongWRON.ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    let mut cfg = config(&fx.url);
    cfg.token = SecretString::from(secret);
    let c = Client::new(cfg.clone()).unwrap();
    let e = c.whoami().await.unwrap_err();
    assert_eq!(e.kind(), Some(&ApiErrorKind::AuthenticationRequired));
    // with_token shares the pool and stats.
    let good = c.with_token(SecretString::from(TOKEN));
    good.whoami().await.unwrap();
    assert_eq!(c.stats().requests, 2);
    fx.state.push_script(Scripted::ApplyThenBreak);
    let out = c
        .create_records(&base(), "Tasks", named(1), &WriteOptions::default())
        .await;
    let e2 = out.failure.unwrap().error;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = url::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let mut cfg2 = cfg.clone();
    cfg2.api_url = url;
    let e3 = Client::new(cfg2).unwrap().whoami().await.unwrap_err();

    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("airtable_request"),
        "spans are logged: {logs}"
    );
    for text in [
        e.to_string(),
        format!("{e:?}"),
        e2.to_string(),
        format!("{e2:?}"),
        e3.to_string(),
        format!("{e3:?}"),
        format!("{c:?}"),
        format!("{cfg:?}"),
        logs,
    ] {
        assert!(!text.contains(secret), "token leaked in: {text}");
        assert!(
            !text.contains("ffffffffffffffff"),
            "token leaked in: {text}"
        );
        assert!(!text.contains(TOKEN));
    }
}
