//! The sandbox's OAuth endpoints (reference §9) over loopback HTTP: the code flow with PKCE,
//! consent, errors, Basic auth, rotation, expiry, the second user's isolation and scopes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::sandbox_support;

use std::time::Duration;

use airtable_mcp::sandbox::{OAuthClient, SECOND_USER_BASE_ID, SandboxConfig};
use base64::Engine as _;
use reqwest::StatusCode;
use sandbox_support::{DEMO, Sb};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const REDIRECT: &str = "http://127.0.0.1:43123/callback";
const STATE: &str = "state-0123456789abcdef";
const VERIFIER: &str = "verifier-0123456789-0123456789-0123456789-0123456789";

fn challenge(v: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()))
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn start(auto: bool) -> Sb {
    Sb::start(SandboxConfig {
        oauth_auto_approve: auto,
        oauth_clients: vec![
            OAuthClient::public_loopback("sandbox-client"),
            OAuthClient {
                id: "confidential".into(),
                secret: Some("s3cret~~~~".into()),
                redirect_uris: vec!["https://app.example/cb".into()],
                loopback: false,
            },
        ],
        ..SandboxConfig::demo()
    })
    .await
}

fn authorize_params(scope: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = [
        ("client_id", "sandbox-client"),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", scope),
        ("state", STATE),
        ("code_challenge", &challenge(VERIFIER)),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        p.retain(|(pk, _)| pk != k);
        p.push((k.to_string(), v.to_string()));
    }
    p
}

/// GET authorize; returns (status, Location query pairs or body).
async fn authorize(sb: &Sb, params: &[(String, String)]) -> (StatusCode, Vec<(String, String)>) {
    let r = no_redirects()
        .get(sb.url("/oauth2/v1/authorize"))
        .query(params)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let loc = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    match loc {
        Some(l) => {
            let u = url::Url::parse(&l).unwrap();
            assert!(
                l.starts_with(REDIRECT) || l.starts_with("https://app.example/cb"),
                "{l}"
            );
            (status, u.query_pairs().into_owned().collect())
        }
        None => (status, vec![("body".into(), r.text().await.unwrap())]),
    }
}

fn get<'a>(pairs: &'a [(String, String)], k: &str) -> &'a str {
    pairs
        .iter()
        .find(|(pk, _)| pk == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

async fn token_req(sb: &Sb, form: &[(&str, &str)], basic: Option<String>) -> (StatusCode, Value) {
    let mut rb = no_redirects()
        .post(sb.url("/oauth2/v1/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap());
    if let Some(b) = basic {
        rb = rb.header("authorization", format!("Basic {b}"));
    }
    let r = rb.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap())
}

async fn code_for(sb: &Sb, scope: &str, extra: &[(&str, &str)]) -> String {
    let (s, q) = authorize(sb, &authorize_params(scope, extra)).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{q:?}");
    assert_eq!(get(&q, "state"), STATE);
    get(&q, "code").to_owned()
}

async fn exchange(sb: &Sb, code: &str, verifier: &str) -> (StatusCode, Value) {
    token_req(
        sb,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", "sandbox-client"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
        None,
    )
    .await
}

async fn login(sb: &Sb, scope: &str, extra: &[(&str, &str)]) -> Value {
    let code = code_for(sb, scope, extra).await;
    let (s, v) = exchange(sb, &code, VERIFIER).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn api(
    sb: &Sb,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut rb = sb.http.request(method, sb.url(path)).bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn refresh(sb: &Sb, refresh_token: &str) -> (StatusCode, Value) {
    token_req(
        sb,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "sandbox-client"),
        ],
        None,
    )
    .await
}

const ALL: &str = "data.records:read data.records:write schema.bases:read schema.bases:write";

#[tokio::test]
async fn code_flow_through_the_consent_page() {
    let sb = start(false).await;
    let params = authorize_params(ALL, &[]);
    let (s, body) = authorize(&sb, &params).await;
    assert_eq!(s, StatusCode::OK);
    let html = get(&body, "body");
    assert!(html.contains("<form method=\"post\""), "{html}");
    assert!(html.contains("sandbox@example.com"), "{html}");
    // The browser posts the form back with decision=approve.
    let mut form = params.clone();
    form.push(("decision".into(), "approve".into()));
    let r = no_redirects()
        .post(sb.url("/oauth2/v1/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(&form).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let q: Vec<(String, String)> = loc.query_pairs().into_owned().collect();
    assert_eq!(get(&q, "state"), STATE);
    assert_eq!(get(&q, "code_challenge_method"), "S256");
    assert_eq!(get(&q, "code_challenge"), challenge(VERIFIER));
    let (s, v) = exchange(&sb, get(&q, "code"), VERIFIER).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);
    assert_eq!(v["refresh_expires_in"], 5_184_000);
    assert_eq!(v["scope"], ALL);
    let access = v["access_token"].as_str().unwrap();
    let (s, who) = api(&sb, access, reqwest::Method::GET, "/v0/meta/whoami", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(who["id"], "usrSandboxUser001");
    assert_eq!(who["scopes"], json!(ALL.split(' ').collect::<Vec<_>>()));
    let (s, bases) = api(&sb, access, reqwest::Method::GET, "/v0/meta/bases", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(bases["bases"].as_array().unwrap().len(), 1);
    assert_eq!(bases["bases"][0]["id"], DEMO);

    // Deny: an error redirect with the state.
    let mut form = params.clone();
    form.push(("decision".into(), "deny".into()));
    let r = no_redirects()
        .post(sb.url("/oauth2/v1/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(&form).unwrap())
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        loc.contains("error=access_denied") && loc.contains(STATE),
        "{loc}"
    );
    assert_eq!(sb.handle.state().oauth_stats().code_exchanges, 1);
}

#[tokio::test]
async fn pkce_mismatch_and_code_reuse_are_refused() {
    let sb = start(true).await;
    let code = code_for(&sb, ALL, &[]).await;
    let wrong = "another-verifier-0123456789-0123456789-0123456789";
    let (s, v) = exchange(&sb, &code, wrong).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "invalid_grant");
    assert!(v["error_description"].is_string());
    // Single use, even though the first exchange failed.
    let (s, v) = exchange(&sb, &code, VERIFIER).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // A good code is single use too.
    let code = code_for(&sb, ALL, &[]).await;
    assert_eq!(exchange(&sb, &code, VERIFIER).await.0, StatusCode::OK);
    assert_eq!(
        exchange(&sb, &code, VERIFIER).await.0,
        StatusCode::BAD_REQUEST
    );
    // A verifier of the wrong shape is invalid_request.
    let code = code_for(&sb, ALL, &[]).await;
    let (_, v) = exchange(&sb, &code, "short").await;
    assert_eq!(v["error"], "invalid_request");
    // redirect_uri must be the authorization request's.
    let code = code_for(&sb, ALL, &[]).await;
    let (s, v) = token_req(
        &sb,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "sandbox-client"),
            ("redirect_uri", "http://127.0.0.1:43123/other"),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn authorize_errors_redirect_only_to_a_registered_uri() {
    let sb = start(true).await;
    // Unknown client or foreign redirect URI: no redirect at all.
    for extra in [
        [("client_id", "nobody")],
        [("redirect_uri", "https://evil.example/cb")],
    ] {
        let (s, body) = authorize(&sb, &authorize_params(ALL, &extra)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{extra:?}");
        assert!(get(&body, "body").contains("invalid_request"));
    }
    // Other errors redirect with error, error_description and state.
    for (extra, want) in [
        (vec![("state", "short")], "invalid_request"),
        (vec![("state", "has spaces in it 0123")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge", "abc")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "")], "invalid_scope"),
        (
            vec![("scope", "data.records:read bogus:scope")],
            "invalid_scope",
        ),
        (vec![("login_hint", "nobody@example.com")], "access_denied"),
    ] {
        let (s, q) = authorize(&sb, &authorize_params(ALL, &extra)).await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{extra:?}");
        assert_eq!(get(&q, "error"), want, "{extra:?}");
        assert!(!get(&q, "error_description").is_empty());
        assert!(get(&q, "code").is_empty());
    }
    // Token endpoint: form body only; grant types.
    let r = reqwest::Client::new()
        .post(sb.url("/oauth2/v1/token"))
        .json(&json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (s, v) = token_req(
        &sb,
        &[("grant_type", "password"), ("client_id", "sandbox-client")],
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_grant_type"))
    );
    let (s, v) = token_req(
        &sb,
        &[("grant_type", "refresh_token"), ("client_id", "nobody")],
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
}

#[tokio::test]
async fn basic_auth_is_required_iff_the_client_has_a_secret() {
    let sb = start(true).await;
    let params: Vec<(String, String)> = authorize_params(
        ALL,
        &[
            ("client_id", "confidential"),
            ("redirect_uri", "https://app.example/cb"),
        ],
    );
    let form = |code: &str| {
        vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            (
                "redirect_uri".to_owned(),
                "https://app.example/cb".to_owned(),
            ),
            ("code_verifier".to_owned(), VERIFIER.to_owned()),
        ]
    };
    let creds = "confidential:s3cret~~~~";
    let std_b64 = base64::engine::general_purpose::STANDARD.encode(creds);
    let url_b64 = base64::engine::general_purpose::URL_SAFE.encode(creds);
    assert_ne!(
        std_b64, url_b64,
        "the secret must make the two encodings differ"
    );
    for (basic, want) in [
        (None, StatusCode::UNAUTHORIZED),
        (
            Some(base64::engine::general_purpose::STANDARD.encode("confidential:wrong")),
            StatusCode::UNAUTHORIZED,
        ),
        (Some(std_b64.clone()), StatusCode::OK),
        (Some(url_b64.clone()), StatusCode::OK),
    ] {
        let (_, q) = authorize(&sb, &params).await;
        let code = get(&q, "code").to_owned();
        let f = form(&code);
        let f: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let (s, v) = token_req(&sb, &f, basic.clone()).await;
        assert_eq!(s, want, "{basic:?}: {v}");
        if s == StatusCode::UNAUTHORIZED {
            assert_eq!(v["error"], "invalid_client");
        }
    }
    // A public client must not send Basic auth.
    let code = code_for(&sb, ALL, &[]).await;
    let (s, v) = token_req(
        &sb,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        Some(base64::engine::general_purpose::STANDARD.encode("sandbox-client:x")),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
}

#[tokio::test]
async fn refresh_rotates_both_tokens_and_a_reused_token_is_refused() {
    let sb = start(true).await;
    let first = login(&sb, ALL, &[]).await;
    let (a1, r1) = (
        first["access_token"].as_str().unwrap(),
        first["refresh_token"].as_str().unwrap(),
    );
    let (s, second) = refresh(&sb, r1).await;
    assert_eq!(s, StatusCode::OK, "{second}");
    let (a2, r2) = (
        second["access_token"].as_str().unwrap(),
        second["refresh_token"].as_str().unwrap(),
    );
    assert_ne!(a1, a2);
    assert_ne!(r1, r2);
    assert_eq!(second["scope"], ALL);
    // The previous access token stopped working; the new one works.
    let (s, v) = api(&sb, a1, reqwest::Method::GET, "/v0/meta/bases", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["type"], "AUTHENTICATION_REQUIRED");
    assert_eq!(
        api(&sb, a2, reqwest::Method::GET, "/v0/meta/bases", None)
            .await
            .0,
        StatusCode::OK
    );
    // The previous refresh token is refused with Airtable's message.
    let (s, v) = refresh(&sb, r1).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        v,
        json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    );
    // The sandbox does not revoke the chain on reuse: the current tokens still work.
    assert_eq!(
        api(&sb, a2, reqwest::Method::GET, "/v0/meta/bases", None)
            .await
            .0,
        StatusCode::OK
    );
    // A narrower scope on refresh; a wider one is refused.
    let (s, v) = token_req(
        &sb,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", r2),
            ("client_id", "sandbox-client"),
            (
                "scope",
                "data.records:read data.records:write data.recordComments:read",
            ),
        ],
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    let (s, v) = token_req(
        &sb,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", r2),
            ("client_id", "sandbox-client"),
            ("scope", "data.records:read"),
        ],
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["scope"], "data.records:read");
    assert_eq!(sb.handle.state().oauth_stats().refreshes, 2);
}

#[tokio::test]
async fn tokens_expire() {
    let sb = Sb::start(SandboxConfig {
        oauth_auto_approve: true,
        oauth_access_ttl: Duration::from_millis(1500),
        oauth_refresh_ttl: Duration::from_millis(3000),
        ..SandboxConfig::demo()
    })
    .await;
    let v = login(&sb, ALL, &[]).await;
    let access = v["access_token"].as_str().unwrap();
    assert_eq!(
        api(&sb, access, reqwest::Method::GET, "/v0/meta/whoami", None)
            .await
            .0,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (s, e) = api(&sb, access, reqwest::Method::GET, "/v0/meta/whoami", None).await;
    assert_eq!(
        (s, e["error"]["type"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("AUTHENTICATION_REQUIRED"))
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (s, e) = refresh(&sb, v["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (s, e["error_description"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("Token has been expired or revoked.")
        )
    );
}

#[tokio::test]
async fn the_second_user_sees_only_their_own_base() {
    let sb = start(true).await;
    let v = login(&sb, ALL, &[("login_hint", "second@example.com")]).await;
    let t = v["access_token"].as_str().unwrap();
    let (_, who) = api(&sb, t, reqwest::Method::GET, "/v0/meta/whoami", None).await;
    assert_eq!(who["id"], "usrSandboxUser002");
    assert_eq!(who["email"], "second@example.com");
    let (_, bases) = api(&sb, t, reqwest::Method::GET, "/v0/meta/bases", None).await;
    let ids: Vec<&str> = bases["bases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![SECOND_USER_BASE_ID]);
    let (s, recs) = api(
        &sb,
        t,
        reqwest::Method::GET,
        &format!("/v0/{SECOND_USER_BASE_ID}/Notes"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{recs}");
    assert_eq!(recs["records"].as_array().unwrap().len(), 2);
    // The demo base is someone else's: schema, records and writes are refused.
    for (m, path, body) in [
        (
            reqwest::Method::GET,
            format!("/v0/meta/bases/{DEMO}/tables"),
            None,
        ),
        (reqwest::Method::GET, format!("/v0/{DEMO}/Tasks"), None),
        (
            reqwest::Method::POST,
            format!("/v0/{DEMO}/Tasks"),
            Some(json!({"records": [{"fields": {}}]})),
        ),
    ] {
        // Exactly what a base that does not exist answers: 403 in the meta API, 404 elsewhere.
        let (s, e) = api(&sb, t, m.clone(), &path, body.clone()).await;
        let (s0, e0) = api(&sb, t, m, &path.replace(DEMO, "appNoSuchBase0000"), body).await;
        assert_eq!((s, &e), (s0, &e0), "{path}");
        if path.starts_with("/v0/meta/") {
            assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
            assert_eq!(e["error"]["type"], "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND");
        } else {
            assert_eq!(
                (s, e),
                (StatusCode::NOT_FOUND, json!({"error": "NOT_FOUND"})),
                "{path}"
            );
        }
    }
    // A base the second user creates is theirs alone.
    let (s, created) = api(&sb, t, reqwest::Method::POST, "/v0/meta/bases", Some(json!({"name": "Mine", "tables": [{"name": "T", "fields": [{"name": "N", "type": "singleLineText"}]}]}))).await;
    assert_eq!(s, StatusCode::OK, "{created}");
    let mine = created["id"].as_str().unwrap();
    // The PAT (the first user) sees neither of the second user's bases.
    let (_, pat_bases) = sb.get("/v0/meta/bases").await;
    let pat_ids: Vec<&str> = pat_bases["bases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(pat_ids, vec![DEMO]);
    let (s, _) = sb.get(&format!("/v0/{SECOND_USER_BASE_ID}/Notes")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = sb.get(&format!("/v0/meta/bases/{mine}/tables")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api(
        &sb,
        t,
        reqwest::Method::GET,
        &format!("/v0/meta/bases/{mine}/tables"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn scopes_are_enforced() {
    let sb = start(true).await;
    let v = login(&sb, "data.records:read", &[]).await;
    let t = v["access_token"].as_str().unwrap();
    let (s, _) = api(
        &sb,
        t,
        reqwest::Method::GET,
        &format!("/v0/{DEMO}/Tasks?maxRecords=1"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = api(
        &sb,
        t,
        reqwest::Method::POST,
        &format!("/v0/{DEMO}/Tasks/listRecords"),
        Some(json!({"maxRecords": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    for (m, path, body, scope) in [
        (
            reqwest::Method::POST,
            format!("/v0/{DEMO}/Tasks"),
            Some(json!({"records": [{"fields": {}}]})),
            "data.records:write",
        ),
        (
            reqwest::Method::GET,
            "/v0/meta/bases".to_owned(),
            None,
            "schema.bases:read",
        ),
        (
            reqwest::Method::GET,
            format!("/v0/meta/bases/{DEMO}/tables"),
            None,
            "schema.bases:read",
        ),
    ] {
        let (s, e) = api(&sb, t, m, &path, body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(e["error"]["type"], "INVALID_PERMISSIONS");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(scope),
            "{e}"
        );
    }
    // The data was not touched by the refused write.
    let (_, all) = sb.get(&format!("/v0/{DEMO}/Tasks?fields%5B%5D=Name")).await;
    assert!(all["offset"].is_string());
    let v = login(&sb, "schema.bases:read", &[]).await;
    let t = v["access_token"].as_str().unwrap();
    let (s, _) = api(
        &sb,
        t,
        reqwest::Method::POST,
        &format!("/v0/meta/bases/{DEMO}/tables"),
        Some(json!({"name": "X", "fields": [{"name": "N", "type": "singleLineText"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        api(
            &sb,
            t,
            reqwest::Method::GET,
            &format!("/v0/{DEMO}/Tasks"),
            None
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
}
