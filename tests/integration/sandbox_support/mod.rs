//! Shared helpers of the sandbox integration tests: start a sandbox, talk to it over HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;

use airtable_mcp::sandbox::{self, SandboxConfig, SandboxHandle};
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub use airtable_mcp::sandbox::DEMO_BASE_ID as DEMO;

pub struct Sb {
    pub handle: SandboxHandle,
    pub http: reqwest::Client,
    pub base: String,
}

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

impl Sb {
    pub async fn start(cfg: SandboxConfig) -> Sb {
        let handle = sandbox::spawn(cfg, loopback())
            .await
            .expect("spawn sandbox");
        let base = handle.addr();
        Sb {
            handle,
            http: reqwest::Client::new(),
            base,
        }
    }

    pub async fn demo() -> Sb {
        Sb::start(SandboxConfig::demo()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn req(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self
            .http
            .request(method, self.url(path))
            .bearer_auth(self.handle.token());
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("send");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, v)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.req(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.req(Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.req(Method::PATCH, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.req(Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.req(Method::DELETE, path, None).await
    }

    /// Every record of a table (following offsets).
    pub async fn all(&self, base: &str, table: &str, extra: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut offset: Option<String> = None;
        loop {
            let mut path = format!("/v0/{base}/{table}?{extra}");
            if let Some(o) = &offset {
                path.push_str(&format!("&offset={o}"));
            }
            let (s, v) = self.get(&path).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            out.extend(v["records"].as_array().unwrap().iter().cloned());
            match v.get("offset").and_then(Value::as_str) {
                Some(o) => offset = Some(o.to_string()),
                None => break,
            }
        }
        out
    }

    /// The error type of a typed error body.
    pub fn err_type(v: &Value) -> String {
        match &v["error"] {
            Value::String(s) => s.clone(),
            e => e["type"].as_str().unwrap_or("").to_string(),
        }
    }
}

pub fn err_type(v: &Value) -> String {
    Sb::err_type(v)
}
