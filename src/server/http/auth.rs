//! Bearer-token authentication for the MCP endpoints.
//!
//! Tokens come from `AIRTABLE_MCP_AUTH_TOKENS` (comma-separated) and `--auth-token-file`
//! (one a line, `#` comments). Several may be configured; each request's token is compared
//! with every configured one in constant time.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::HttpError;
use crate::env;

/// Shortest bearer token accepted (they guard Airtable data; guessable tokens are refused).
pub const MIN_TOKEN_LEN: usize = 16;

/// `WWW-Authenticate` challenge sent with every 401.
pub const CHALLENGE: &str = r#"Bearer realm="airtable-mcp""#;

/// The accepted bearer tokens. `Debug` never shows them.
#[derive(Clone, Default)]
pub struct BearerTokens {
    tokens: Arc<Vec<SecretString>>,
}

impl std::fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BearerTokens({} configured)", self.tokens.len())
    }
}

/// Which configured token authenticated a request: `token-N` (1-based). Used to key the
/// per-client rate limit and to bind sessions to their opener; never the token itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Principal(pub String);

/// The credentials a session was opened with: the bearer principal and a SHA-256 digest of
/// the client's Airtable token (`X-Airtable-Token`), never the token itself. Every later
/// request of the session (both transports) must present the same pair, else 403.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionBinding {
    principal: Option<Principal>,
    airtable: Option<[u8; 32]>,
}

impl std::fmt::Debug for SessionBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBinding")
            .field("principal", &self.principal)
            .field("airtable_token", &self.airtable.map(|_| "***"))
            .finish()
    }
}

impl SessionBinding {
    pub fn new(principal: Option<Principal>, airtable_token: Option<&SecretString>) -> Self {
        use sha2::Digest;
        Self {
            principal,
            airtable: airtable_token
                .map(|t| sha2::Sha256::digest(t.expose_secret().as_bytes()).into()),
        }
    }

    /// Whether `other` (a later request) may use the session bound to `self`. The Airtable
    /// token digests are compared in constant time.
    pub fn admits(&self, other: &SessionBinding) -> bool {
        let same_token: bool = match (&self.airtable, &other.airtable) {
            (None, None) => true,
            (Some(a), Some(b)) => a.ct_eq(b).into(),
            _ => false,
        };
        same_token && self.principal == other.principal
    }

    /// The bearer principal (None without authentication).
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    /// The principal, for logs (`anonymous` without authentication).
    pub fn principal_label(&self) -> &str {
        self.principal
            .as_ref()
            .map_or("anonymous", |p| p.0.as_str())
    }
}

/// The 403 answer (and a warning without secrets) for a request that presents a session ID
/// with other credentials than the session was opened with.
pub fn session_mismatch(
    transport: &str,
    opened: &SessionBinding,
    got: &SessionBinding,
) -> Response {
    let what = if opened.principal != got.principal {
        "bearer token"
    } else {
        "X-Airtable-Token"
    };
    tracing::warn!(
        transport,
        principal = got.principal_label(),
        mismatch = what,
        "refused a session request: the credentials differ from the session opener's"
    );
    (
        StatusCode::FORBIDDEN,
        format!(
            "Forbidden: this session belongs to other credentials (the {what} differs from the \
             one the session was opened with); open a new session\n"
        ),
    )
        .into_response()
}

impl BearerTokens {
    /// Build from explicit tokens (validated like the other sources).
    pub fn new(tokens: Vec<SecretString>) -> Result<Self, HttpError> {
        for (i, t) in tokens.iter().enumerate() {
            check_token(t.expose_secret(), &format!("token {}", i + 1))?;
        }
        Ok(Self {
            tokens: Arc::new(tokens),
        })
    }

    /// Tokens from the environment variable and the optional file.
    pub fn load(file: Option<&Path>) -> Result<Self, HttpError> {
        let mut tokens = Vec::new();
        if let Ok(v) = std::env::var(env::AIRTABLE_MCP_AUTH_TOKENS) {
            for (i, t) in v.split(',').map(str::trim).enumerate() {
                if t.is_empty() {
                    continue;
                }
                check_token(
                    t,
                    &format!("{} entry {}", env::AIRTABLE_MCP_AUTH_TOKENS, i + 1),
                )?;
                tokens.push(SecretString::from(t.to_owned()));
            }
        }
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| HttpError::TokenFile {
                path: path.to_owned(),
                source,
            })?;
            tokens.extend(parse_token_file(&text, path)?);
        }
        Ok(Self {
            tokens: Arc::new(tokens),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// The principal owning `candidate`, if any. Every configured token is compared,
    /// in constant time for equal lengths, whatever matched first.
    pub fn verify(&self, candidate: &str) -> Option<Principal> {
        let mut found: Option<usize> = None;
        for (i, t) in self.tokens.iter().enumerate() {
            let eq: bool = t
                .expose_secret()
                .as_bytes()
                .ct_eq(candidate.as_bytes())
                .into();
            if eq && found.is_none() {
                found = Some(i);
            }
        }
        found.map(|i| Principal(format!("token-{}", i + 1)))
    }
}

/// Parse a token file: one token a line, blank lines and `#` comments ignored.
pub fn parse_token_file(text: &str, path: &Path) -> Result<Vec<SecretString>, HttpError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        check_token(line, &format!("{} line {}", path.display(), n + 1))?;
        out.push(SecretString::from(line.to_owned()));
    }
    Ok(out)
}

fn check_token(t: &str, location: &str) -> Result<(), HttpError> {
    if t.chars().count() < MIN_TOKEN_LEN {
        return Err(HttpError::WeakToken {
            location: location.to_owned(),
            min: MIN_TOKEN_LEN,
        });
    }
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(HttpError::BadToken {
            location: location.to_owned(),
        });
    }
    Ok(())
}

/// 401 with the `WWW-Authenticate` challenge.
pub fn unauthorized(error: Option<&str>) -> Response {
    let challenge = match error {
        Some(e) => format!(r#"{CHALLENGE}, error="{e}""#),
        None => CHALLENGE.to_owned(),
    };
    let mut res = (
        StatusCode::UNAUTHORIZED,
        "Unauthorized: a valid bearer token is required\n",
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

/// Middleware: require `Authorization: Bearer <token>`; on success the request carries a
/// [`Principal`] extension. `None` tokens = authentication disabled (`--no-auth` on loopback).
pub async fn require_bearer(
    State(tokens): State<Option<BearerTokens>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(tokens) = tokens else {
        return next.run(req).await;
    };
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return unauthorized(None);
    };
    let Ok(value) = value.to_str() else {
        return unauthorized(Some("invalid_request"));
    };
    let mut parts = value.splitn(2, ' ');
    let scheme = parts.next().unwrap_or_default();
    let token = parts.next().unwrap_or_default().trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return unauthorized(Some("invalid_request"));
    }
    match tokens.verify(token) {
        Some(principal) => {
            req.extensions_mut().insert(principal);
            // Nothing below this layer needs the credential: keep it out of the MCP context.
            req.headers_mut().remove(header::AUTHORIZATION);
            next.run(req).await
        }
        None => unauthorized(Some("invalid_token")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_parsing_skips_comments_and_blanks() {
        let text = "# team tokens\n\nabcdefghijklmnop1\n  qrstuvwxyz0123456  \n#x\n";
        let toks = parse_token_file(text, Path::new("f")).unwrap();
        assert_eq!(toks.len(), 2);
        assert_eq!(toks[1].expose_secret(), "qrstuvwxyz0123456");
    }

    #[test]
    fn short_tokens_are_refused_with_location() {
        let err = parse_token_file("ok-token-long-enough\nzq8x\n", Path::new("f")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("f line 2"), "{msg}");
        assert!(!msg.contains("zq8x"), "the token must not be echoed: {msg}");
    }

    #[test]
    fn verify_finds_each_token_and_rejects_others() {
        let t = BearerTokens::new(vec![
            SecretString::from("first-token-0123456".to_owned()),
            SecretString::from("second-token-012345".to_owned()),
        ])
        .unwrap();
        assert_eq!(
            t.verify("first-token-0123456"),
            Some(Principal("token-1".into()))
        );
        assert_eq!(
            t.verify("second-token-012345"),
            Some(Principal("token-2".into()))
        );
        assert_eq!(t.verify("second-token-01234"), None);
        assert_eq!(t.verify(""), None);
        assert!(!format!("{t:?}").contains("first"));
    }
}
