//! The Redis store against a real `redis-server`: the Lua script reproduces `reserve_at`,
//! a 429 hold set by one replica holds the others, the schema-cache entries, and the local
//! fallback (Redis unreachable at start, stopped mid-run, back again).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::redis_support;

use std::time::Duration;

use airtable_mcp::airtable::BaseId;
use airtable_mcp::airtable::rate_limit::{
    LimitKey, Logs, RedisStore, Reservation, SharedCache, Slot, WindowStore, reserve_at,
};
use proptest::prelude::*;
use redis_support::Redis;
use secrecy::SecretString;
use tokio::time::Instant;

fn base(n: u8) -> BaseId {
    format!("appTESTbase0000{n:02}").parse().unwrap()
}

fn slot(key: LimitKey, limit: u32, window_ms: u64) -> Slot {
    Slot {
        key,
        limit,
        window: Duration::from_millis(window_ms),
    }
}

fn store(r: &Redis, replicas: u32) -> RedisStore {
    RedisStore::connect(&SecretString::from(r.url()), replicas).unwrap()
}

async fn wait_up(s: &RedisStore) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !s.status().up() {
        assert!(
            std::time::Instant::now() < deadline,
            "the store never reached Redis"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn the_script_reproduces_reserve_at() {
    let redis = Redis::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(async { store(&redis, 1) });
    let conn = std::cell::RefCell::new(redis.conn());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    });
    let strategy = (
        proptest::collection::vec((0u64..400, 0u8..2, 0u8..3), 1..120),
        1u32..8,
        1u32..20,
        50u64..1500,
    );
    runner
        .run(
            &strategy,
            |(arrivals, base_limit, token_limit, window_ms)| {
                let _: () = redis::cmd("FLUSHALL")
                    .query(&mut *conn.borrow_mut())
                    .unwrap();
                let t0 = Instant::now();
                let t0_us: u64 = 1_700_000_000_000_000;
                let mut logs = Logs::new();
                let mut offset_ms = 0u64;
                for (gap, tok, b) in arrivals {
                    offset_ms += gap;
                    let slots = [
                        slot(LimitKey::Token(u64::from(tok)), token_limit, window_ms),
                        slot(LimitKey::Base(base(b)), base_limit, window_ms),
                    ];
                    let expected =
                        reserve_at(&mut logs, &slots, t0 + Duration::from_millis(offset_ms));
                    let got = rt
                        .block_on(s.script_reserve_at(&slots, t0_us + offset_ms * 1000))
                        .unwrap();
                    prop_assert_eq!(
                        u128::from(got - t0_us),
                        (expected - t0).as_micros(),
                        "arrival at {} ms",
                        offset_ms
                    );
                }
                Ok(())
            },
        )
        .unwrap();
}

#[tokio::test]
async fn a_hold_set_by_one_replica_holds_the_others() {
    let redis = Redis::start();
    let (a, b) = (store(&redis, 2), store(&redis, 2));
    wait_up(&a).await;
    wait_up(&b).await;
    let (b1, b2) = (base(1), base(2));
    a.hold(&b1, Duration::from_secs(3)).await;
    let slots = [slot(LimitKey::Base(b1.clone()), 5, 1030)];
    match b.reserve(&slots, Some(&b1)).await {
        Reservation::Held(d) => assert!(
            d > Duration::from_secs(1) && d <= Duration::from_secs(3),
            "{d:?}"
        ),
        other => panic!("not held on the other replica: {other:?}"),
    }
    let held = b.held(&b1).await.expect("held on the other replica");
    assert!(held <= Duration::from_secs(3));
    // Another base is not held; a shorter hold does not shorten the longer one.
    let other = [slot(LimitKey::Base(b2.clone()), 5, 1030)];
    assert_eq!(
        b.reserve(&other, Some(&b2)).await,
        Reservation::Go(Duration::ZERO)
    );
    b.hold(&b1, Duration::from_millis(10)).await;
    assert!(a.held(&b1).await.unwrap() > Duration::from_secs(1));
    // The key carries the expiry.
    let mut conn = redis.conn();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("airtable-mcp:hold:{b1}"))
        .query(&mut conn)
        .unwrap();
    assert!(ttl > 1000 && ttl <= 3000, "{ttl}");
}

#[tokio::test]
async fn windows_are_shared_and_keys_expire() {
    let redis = Redis::start();
    let (a, b) = (store(&redis, 2), store(&redis, 2));
    wait_up(&a).await;
    wait_up(&b).await;
    let b1 = base(3);
    let slots = [
        slot(LimitKey::Token(42), 50, 1030),
        slot(LimitKey::Base(b1.clone()), 5, 1030),
    ];
    let mut waits = Vec::new();
    for i in 0..17 {
        let s = if i % 2 == 0 { &a } else { &b };
        match s.reserve(&slots, Some(&b1)).await {
            Reservation::Go(d) => waits.push(d),
            Reservation::Later(d) => {
                // Beyond two windows ahead: nothing recorded.
                assert!(i >= 15, "request {i} refused too early");
                assert!(d > Duration::from_millis(900), "{d:?}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(waits.len(), 15, "{waits:?}");
    let in_first_window = waits
        .iter()
        .filter(|d| **d < Duration::from_millis(500))
        .count();
    assert_eq!(
        in_first_window, 5,
        "5 per window across both replicas: {waits:?}"
    );
    let mut conn = redis.conn();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("airtable-mcp:w:b:{b1}"))
        .query(&mut conn)
        .unwrap();
    assert!(ttl > 0 && ttl < 10_000, "idle keys vanish: {ttl}");
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    assert!(
        keys.iter().all(|k| k.starts_with("airtable-mcp:")),
        "{keys:?}"
    );
    // The shared cache.
    a.put("schema:x:appY", b"{}".to_vec(), Duration::from_secs(5))
        .await;
    assert_eq!(b.get("schema:x:appY").await.as_deref(), Some(&b"{}"[..]));
    b.delete("schema:x:appY").await;
    assert_eq!(a.get("schema:x:appY").await, None);
}

#[tokio::test]
async fn unreachable_at_start_means_a_local_share_after_a_quarantine() {
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s =
        RedisStore::connect(&SecretString::from(format!("redis://127.0.0.1:{port}/")), 2).unwrap();
    let start = Instant::now();
    let b1 = base(4);
    let slots = [slot(LimitKey::Base(b1.clone()), 4, 1000)];
    let mut departures = Vec::new();
    let mut later = 0;
    for _ in 0..8 {
        match s.reserve(&slots, Some(&b1)).await {
            Reservation::Go(d) => departures.push((Instant::now() + d - start).as_millis()),
            Reservation::Later(_) => later += 1,
            other => panic!("{other:?}"),
        }
    }
    // 4 / 2 replicas = 2 per window, from 3 windows after the outage began (connect).
    assert_eq!(departures.len(), 6, "{departures:?}");
    for (i, d) in departures.iter().enumerate() {
        let expected = 3000 + 1000 * (i as u128 / 2);
        assert!(
            d.abs_diff(expected) < 300,
            "departure {i} at {d} ms, expected ~{expected}: {departures:?}"
        );
    }
    assert_eq!(later, 2);
    let st = s.status();
    assert!(!st.up());
    assert!(st.fallback_total() >= 8);
    let h = s.health().unwrap();
    assert!(!h.up);
}

#[tokio::test]
async fn stopped_mid_run_falls_back_then_returns() {
    let mut redis = Redis::start();
    let s = store(&redis, 3);
    wait_up(&s).await;
    let b1 = base(5);
    let slots = [slot(LimitKey::Base(b1.clone()), 5, 1000)];
    assert!(matches!(
        s.reserve(&slots, Some(&b1)).await,
        Reservation::Go(_)
    ));
    redis.stop();
    // The next reservation (or the probe) notices; the fallback answers: 5 / 3 = 1 per window.
    let t = Instant::now();
    let first = s.reserve(&slots, Some(&b1)).await;
    let second = s.reserve(&slots, Some(&b1)).await;
    match (first, second) {
        (Reservation::Go(a), Reservation::Go(b)) => {
            assert!(a >= Duration::from_millis(2500), "quarantine: {a:?}");
            assert!(b >= a + Duration::from_millis(990), "{a:?} {b:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "the fallback must not block"
    );
    assert!(!s.status().up());
    assert_eq!(s.status().outages_total(), 1);
    redis.restart();
    wait_up(&s).await;
    // Back: the transition key tells the other replicas.
    let mut conn = redis.conn();
    let ttl: i64 = redis::cmd("PTTL")
        .arg("airtable-mcp:transition")
        .query(&mut conn)
        .unwrap();
    assert!(ttl > 0, "{ttl}");
}
