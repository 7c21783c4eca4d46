//! DNS-rebinding protection (Host and Origin allow-lists), CORS, security headers and the
//! per-client rate limit.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::auth::Principal;

/// Host names accepted by default (loopback only).
pub const DEFAULT_ALLOWED_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// Origins accepted by default (loopback pages, any port).
pub const DEFAULT_ALLOWED_ORIGINS: &[&str] = &[
    "http://localhost:*",
    "http://127.0.0.1:*",
    "http://[::1]:*",
    "https://localhost:*",
    "https://127.0.0.1:*",
    "https://[::1]:*",
];

/// Headers a browser client may send.
pub const CORS_ALLOW_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "last-event-id",
    "x-airtable-token",
];

/// Headers a browser client may read.
pub const CORS_EXPOSE_HEADERS: &[&str] = &["mcp-session-id", "mcp-protocol-version"];

/// The Host and Origin allow-lists.
#[derive(Clone, Debug)]
pub struct Guard {
    hosts: Arc<Vec<Authority>>,
    origins: Arc<Vec<OriginPattern>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Authority {
    host: String,
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum OriginPattern {
    Null,
    Tuple {
        scheme: String,
        host: String,
        /// `None` = any port (`:*`).
        port: Option<u16>,
    },
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address, lowercased.
fn parse_authority(s: &str) -> Option<Authority> {
    let s = s.trim().to_ascii_lowercase();
    if s.is_empty() {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some(Authority {
            host: host.to_owned(),
            port,
        });
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return Some(Authority {
            host: s,
            port: None,
        });
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some(Authority {
            host: h.to_owned(),
            port: Some(p.parse().ok()?),
        }),
        None => Some(Authority {
            host: s,
            port: None,
        }),
    }
}

fn parse_origin_pattern(s: &str) -> Option<OriginPattern> {
    let s = s.trim().to_ascii_lowercase();
    if s == "null" {
        return Some(OriginPattern::Null);
    }
    let (scheme, rest) = s.split_once("://")?;
    let rest = rest.trim_end_matches('/');
    if let Some(h) = rest.strip_suffix(":*") {
        let a = parse_authority(h)?;
        return Some(OriginPattern::Tuple {
            scheme: scheme.to_owned(),
            host: a.host,
            port: None,
        });
    }
    let a = parse_authority(rest)?;
    Some(OriginPattern::Tuple {
        scheme: scheme.to_owned(),
        port: a.port.or_else(|| default_port(scheme)),
        host: a.host,
    })
}

impl Guard {
    /// Build from the raw lists. Entries that cannot be parsed are an error.
    pub fn new(hosts: &[String], origins: &[String]) -> Result<Self, String> {
        let hosts = hosts
            .iter()
            .map(|h| parse_authority(h).ok_or_else(|| format!("invalid allowed host {h:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        let origins = origins
            .iter()
            .map(|o| {
                parse_origin_pattern(o).ok_or_else(|| {
                    format!("invalid allowed origin {o:?} (expected scheme://host[:port|:*])")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            hosts: Arc::new(hosts),
            origins: Arc::new(origins),
        })
    }

    /// Whether a `Host` header value is allowed. An empty list allows every host.
    pub fn host_allowed(&self, value: &str) -> bool {
        if self.hosts.is_empty() {
            return true;
        }
        let Some(h) = parse_authority(value) else {
            return false;
        };
        self.hosts
            .iter()
            .any(|a| a.host == h.host && (a.port.is_none() || a.port == h.port))
    }

    /// Whether an `Origin` header value is allowed. An empty list allows none.
    pub fn origin_allowed(&self, value: &str) -> bool {
        let value = value.trim().to_ascii_lowercase();
        if value == "null" {
            return self.origins.contains(&OriginPattern::Null);
        }
        let Some((scheme, rest)) = value.split_once("://") else {
            return false;
        };
        let Some(a) = parse_authority(rest.trim_end_matches('/')) else {
            return false;
        };
        let port = a.port.or_else(|| default_port(scheme));
        self.origins.iter().any(|p| match p {
            OriginPattern::Null => false,
            OriginPattern::Tuple {
                scheme: s,
                host,
                port: pp,
            } => s == scheme && *host == a.host && (pp.is_none() || *pp == port),
        })
    }

    /// 403 when the Host (or, for browsers, the Origin) is not allowed.
    pub fn check(&self, headers: &HeaderMap, uri: &axum::http::Uri) -> Result<(), &'static str> {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| uri.authority().map(|a| a.to_string()));
        match host {
            Some(h) if self.host_allowed(&h) => {}
            Some(_) => return Err("Forbidden: Host header is not allowed"),
            None => return Err("Forbidden: Host header is required"),
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let ok = origin.to_str().is_ok_and(|o| self.origin_allowed(o));
            if !ok {
                return Err("Forbidden: Origin is not allowed");
            }
        }
        Ok(())
    }

    /// CORS for browser clients: the allowed origins only, the MCP headers.
    pub fn cors_layer(&self) -> CorsLayer {
        let guard = self.clone();
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin, _| {
                origin.to_str().is_ok_and(|o| guard.origin_allowed(o))
            }))
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
            .allow_headers(
                CORS_ALLOW_HEADERS
                    .iter()
                    .map(|h| HeaderName::from_static(h))
                    .collect::<Vec<_>>(),
            )
            .expose_headers(
                CORS_EXPOSE_HEADERS
                    .iter()
                    .map(|h| HeaderName::from_static(h))
                    .collect::<Vec<_>>(),
            )
            .max_age(Duration::from_secs(600))
    }
}

/// Middleware: Host/Origin validation (DNS rebinding).
pub async fn check_host_origin(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    if let Err(msg) = guard.check(req.headers(), req.uri()) {
        tracing::warn!(path = %req.uri().path(), "{msg}");
        return (StatusCode::FORBIDDEN, format!("{msg}\n")).into_response();
    }
    next.run(req).await
}

/// Middleware: headers on every response.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// The remote address of a connection (plain TCP or TLS).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

/// Per-client request rate limit: keyed by the bearer token's principal, else the peer IP.
#[derive(Clone)]
pub struct ClientRateLimit {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
}

impl std::fmt::Debug for ClientRateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientRateLimit")
    }
}

impl ClientRateLimit {
    /// `per_second` sustained, bursts of `burst`.
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Self {
            limiter: Arc::new(RateLimiter::keyed(quota)),
        }
    }

    /// Forget idle clients (call periodically).
    pub fn housekeeping(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    fn check(&self, key: &String) -> Result<(), Duration> {
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

fn client_key(req: &Request) -> String {
    if let Some(p) = req.extensions().get::<Principal>() {
        return format!("bearer:{}", p.0);
    }
    let ip: Option<IpAddr> = req
        .extensions()
        .get::<ConnectInfo<PeerAddr>>()
        .map(|c| c.0.0.ip());
    match ip {
        Some(ip) => format!("ip:{ip}"),
        None => "unknown".to_owned(),
    }
}

/// Middleware: 429 with `Retry-After` when a client exceeds its rate.
pub async fn rate_limit(
    State(limit): State<Option<ClientRateLimit>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(limit) = limit {
        let key = client_key(&req);
        if let Err(wait) = limit.check(&key) {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut res = (
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests: slow down\n",
            )
                .into_response();
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            return res;
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(hosts: &[&str], origins: &[&str]) -> Guard {
        Guard::new(
            &hosts.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &origins.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn hosts_match_with_and_without_port() {
        let g = guard(
            &["localhost", "127.0.0.1", "::1", "mcp.example.com:8443"],
            &[],
        );
        assert!(g.host_allowed("localhost:8787"));
        assert!(g.host_allowed("LOCALHOST"));
        assert!(g.host_allowed("127.0.0.1:1"));
        assert!(g.host_allowed("[::1]:8787"));
        assert!(g.host_allowed("mcp.example.com:8443"));
        assert!(!g.host_allowed("mcp.example.com:443"));
        assert!(!g.host_allowed("evil.example.com"));
        assert!(!g.host_allowed("localhost.evil.com:8787"));
        assert!(!g.host_allowed(""));
    }

    #[test]
    fn origins_match_scheme_host_and_port() {
        let g = guard(&[], DEFAULT_ALLOWED_ORIGINS);
        assert!(g.origin_allowed("http://localhost:3000"));
        assert!(g.origin_allowed("http://127.0.0.1"));
        assert!(g.origin_allowed("https://[::1]:9"));
        assert!(!g.origin_allowed("https://evil.example.com"));
        assert!(!g.origin_allowed("http://localhost.evil.com"));
        assert!(!g.origin_allowed("null"));
        let g = guard(&[], &["https://app.example.com"]);
        assert!(g.origin_allowed("https://app.example.com"));
        assert!(g.origin_allowed("https://app.example.com:443"));
        assert!(!g.origin_allowed("https://app.example.com:8443"));
        assert!(!g.origin_allowed("http://app.example.com"));
    }

    #[test]
    fn bad_entries_are_rejected() {
        assert!(Guard::new(&[], &["localhost".into()]).is_err());
        assert!(Guard::new(&["host:notaport".into()], &[]).is_err());
    }
}
