//! OAuth refresh in process, against the sandbox and a real keyring: the client keeps working
//! across access-token expiry with exactly one refresh per expiry even with parallel calls;
//! rotation is stored; two "processes" of one profile do not both refresh; and a crash between
//! the token response and the keyring write is detected by the next process, which says to run
//! `auth login --oauth` again (no silent loss).
//!
//! One test function in its own binary: it sets the keyring environment once, before any
//! other thread reads it. Keyring: the Secret Service when `AIRTABLE_MCP_TEST_SECRET_SERVICE=1`
//! (tools/test.sh), else the kernel keyring.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, unsafe_code)]

use std::sync::Arc;
use std::time::Duration;

use airtable_mcp::airtable::{Client, ClientConfig};
use airtable_mcp::auth::oauth::{
    GRANT_KIND, Grant, OAuthTokenSource, load_grant, now_ms, pkce_challenge,
};
use airtable_mcp::auth::{AuthError, Profile, keyring};
use airtable_mcp::sandbox::{self, SandboxConfig, SandboxHandle};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

const VERIFIER: &str = "verifier-0123456789-0123456789-0123456789-0123456789";
const REDIRECT: &str = "http://127.0.0.1:40000/callback";
// Long enough that a loaded machine stays well before the refresh point (half of it) between steps.
const TTL_MS: i64 = 4000;

/// A fresh grant from the sandbox (authorize with auto-approve, then the code exchange).
async fn fresh_grant(sb: &SandboxHandle) -> Grant {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(format!("{}/oauth2/v1/authorize", sb.addr()))
        .query(&[
            ("client_id", "sandbox-client"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "data.records:read schema.bases:read"),
            ("state", "state-0123456789abcdef"),
            ("code_challenge", &pkce_challenge(VERIFIER)),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let code = loc
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let form = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("client_id", "sandbox-client"),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ])
    .unwrap();
    let v: Value = http
        .post(format!("{}/oauth2/v1/token", sb.addr()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let now = now_ms();
    Grant {
        kind: GRANT_KIND.into(),
        client_id: "sandbox-client".into(),
        client_secret: None,
        token_url: format!("{}/oauth2/v1/token", sb.addr()),
        access_token: v["access_token"].as_str().unwrap().into(),
        refresh_token: v["refresh_token"].as_str().unwrap().into(),
        scopes: vec!["data.records:read".into(), "schema.bases:read".into()],
        obtained_at_ms: now,
        expires_at_ms: now + v["expires_in"].as_i64().unwrap() * 1000,
        refresh_expires_at_ms: now + v["refresh_expires_in"].as_i64().unwrap() * 1000,
        refresh_started_at_ms: None,
    }
}

async fn store(profile: &Profile, g: &Grant) {
    let (p, s) = (profile.clone(), g.to_secret());
    tokio::task::spawn_blocking(move || keyring::store(&p, &s))
        .await
        .unwrap()
        .unwrap();
}

fn client(sb: &SandboxHandle, source: Arc<OAuthTokenSource>, first: &Grant) -> Client {
    let mut cc = ClientConfig::new(sb.url(), SecretString::from(first.access_token.clone()));
    cc.token_provider = Some(source);
    cc.max_retries = 0;
    Client::new(cc).unwrap()
}

/// `n` parallel list_bases; every one must succeed.
async fn parallel(c: &Client, n: usize) {
    let calls: Vec<_> = (0..n).map(|_| c.list_bases()).collect();
    for r in futures::future::join_all(calls).await {
        let bases = r.unwrap();
        assert_eq!(bases.len(), 1);
    }
}

async fn past_refresh_point() {
    // Tokens live TTL_MS; the source refreshes at half their life.
    tokio::time::sleep(Duration::from_millis(TTL_MS as u64 / 2 + 200)).await;
}

#[test]
fn refresh_rotation_races_and_a_crash_between_response_and_store() {
    let service = format!("airtable-mcp-test-refresh-{}", std::process::id());
    let backend = if std::env::var("AIRTABLE_MCP_TEST_SECRET_SERVICE").as_deref() == Ok("1") {
        "secret-service"
    } else {
        "keyutils"
    };
    // SAFETY: the only test of this binary, before any thread of ours exists.
    unsafe {
        std::env::set_var("AIRTABLE_MCP_KEYRING", backend);
        std::env::set_var("AIRTABLE_MCP_KEYRING_SERVICE", &service);
        for v in ["AIRTABLE_API_KEY", "AIRTABLE_TOKEN", "AIRTABLE_PAT"] {
            std::env::remove_var(v);
        }
    }
    airtable_mcp::auth::prepare_process();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let sb = sandbox::spawn(
        SandboxConfig {
            oauth_auto_approve: true,
            oauth_access_ttl: Duration::from_millis(TTL_MS as u64),
            ..SandboxConfig::demo()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let profile: Profile = "refreshtest".parse().unwrap();
    let first = fresh_grant(&sb).await;
    // The sandbox answers whole seconds: expires_in = 4.
    assert_eq!(first.expires_at_ms - first.obtained_at_ms, TTL_MS);
    store(&profile, &first).await;

    // --- exactly one refresh per expiry, with parallel calls
    let source = OAuthTokenSource::for_profile(&profile)
        .await
        .unwrap()
        .unwrap();
    let c = client(&sb, source.clone(), &first);
    parallel(&c, 8).await;
    assert_eq!(sb.state().oauth_stats().refreshes, 0);
    for round in 1..=2u64 {
        past_refresh_point().await;
        parallel(&c, 8).await;
        assert_eq!(sb.state().oauth_stats().refreshes, round, "round {round}");
        assert_eq!(source.refreshes(), round);
        // The rotated grant is stored, without the marker.
        let stored = load_grant(&profile).await.unwrap().unwrap();
        assert_ne!(stored.refresh_token, first.refresh_token);
        assert_eq!(stored, source.grant().await);
        assert_eq!(stored.refresh_started_at_ms, None);
    }

    // --- another process of the same profile adopts the stored grant instead of refreshing
    // (its own refresh token was rotated away by the first process).
    let stale = OAuthTokenSource::new(profile.clone(), first.clone()).unwrap();
    let t = stale.access_token().await.unwrap();
    assert_eq!(t.expose_secret(), source.grant().await.access_token);
    assert_eq!(stale.refreshes(), 0);
    assert_eq!(sb.state().oauth_stats().refreshes, 2);

    // --- a marker left by a refresh that never reached the server: the next process refreshes
    // with the stored (still valid) refresh token and clears it.
    let mut marked = load_grant(&profile).await.unwrap().unwrap();
    marked.refresh_started_at_ms = Some(now_ms());
    store(&profile, &marked).await;
    let next = OAuthTokenSource::for_profile(&profile)
        .await
        .unwrap()
        .unwrap();
    next.access_token().await.unwrap();
    assert_eq!(next.refreshes(), 1);
    assert_eq!(sb.state().oauth_stats().refreshes, 3);
    let good = load_grant(&profile).await.unwrap().unwrap();
    assert_eq!(good.refresh_started_at_ms, None);

    // --- process A refreshes early; process B still holds an unexpired access token that the
    // rotation killed: B's request gets a 401, B adopts the stored grant and the call succeeds.
    let a_src = OAuthTokenSource::for_profile(&profile)
        .await
        .unwrap()
        .unwrap();
    let b_src = OAuthTokenSource::for_profile(&profile)
        .await
        .unwrap()
        .unwrap();
    let b_client = client(&sb, b_src.clone(), &good);
    a_src
        .token_rejected(&SecretString::from(good.access_token.clone()))
        .await;
    a_src.access_token().await.unwrap();
    assert_eq!(sb.state().oauth_stats().refreshes, 4);
    let unauthorized_before = sb.stats().requests;
    parallel(&b_client, 1).await;
    assert_eq!(
        sb.stats().requests - unauthorized_before,
        2,
        "one 401, one retry"
    );
    assert_eq!(b_src.refreshes(), 0);
    assert_eq!(sb.state().oauth_stats().refreshes, 4, "B did not refresh");
    let good = load_grant(&profile).await.unwrap().unwrap();
    assert_eq!(b_src.grant().await, good);

    // --- the crash: the token endpoint answers (rotating the tokens), the process dies before
    // the keyring write.
    let doomed = OAuthTokenSource::for_profile(&profile)
        .await
        .unwrap()
        .unwrap();
    let dc = client(&sb, doomed.clone(), &good);
    past_refresh_point().await;
    doomed.inject_crash_after_token_response();
    let e = dc.list_bases().await.unwrap_err();
    assert!(e.to_string().contains("injected crash"), "{e}");
    assert_eq!(sb.state().oauth_stats().refreshes, 5, "the server rotated");
    let stored = load_grant(&profile).await.unwrap().unwrap();
    assert_eq!(
        stored.refresh_token, good.refresh_token,
        "nothing new was stored"
    );
    assert!(
        stored.refresh_started_at_ms.is_some(),
        "the marker is there"
    );
    // A new process: no silent loss, no dead token sent as if valid; it says what to do.
    let after = OAuthTokenSource::for_profile(&profile)
        .await
        .unwrap()
        .unwrap();
    let e = after.access_token().await.unwrap_err();
    assert!(matches!(e, AuthError::GrantLost(_)), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("interrupted"), "{msg}");
    assert!(
        msg.contains("airtable-mcp auth login --oauth --profile refreshtest"),
        "{msg}"
    );
    assert!(!msg.contains(&good.refresh_token), "no token in messages");
    // resolve_token (auth status, serve) says the same.
    let e = airtable_mcp::auth::resolve_token(&profile)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("auth login --oauth"), "{e}");

    // Clean up the entry.
    let p = profile.clone();
    tokio::task::spawn_blocking(move || keyring::delete(&p))
        .await
        .unwrap()
        .unwrap();
}
