//! Client-side rate limits: a sliding-window log, 5 requests per base and 50 per token in any
//! trailing window of 1 s plus a margin.
//!
//! Airtable counts requests per second and locks a base for 30 s after a breach. The limiter
//! keeps, per key, the departure times of the last N requests and lets a new request leave at
//! the earliest time `t` such that no trailing window of length `W` holds more than N
//! departures: `t = max(now, last, log[len-N] + W)`. So the first N requests after a quiet
//! moment leave at once (a host firing 5 parallel tool calls waits for one round trip, not for
//! 4 x 200 ms), and request k+N never leaves less than `W` after request k.
//!
//! `W` is 1 s widened by [`WINDOW_MARGIN`] (3 %, 1.03 s), the margin measured for jitter with
//! the previous GCRA limiter: request k and k+5 leave at least 1.03 s apart, so up to ~30 ms of
//! arrival jitter (scheduling, connection set-up) cannot squeeze 6 arrivals into the server's
//! 1 s window. The bulk-create benchmark (`examples/bench_bulk_create.rs`, 1,000 records = 100
//! requests in chunks of 10, strict sandbox window, 30 s lockout) measured on a loaded 2-core
//! machine (see docs/ARCHITECTURE.md for the current figures):
//! - GCRA burst 1, spacing 206 ms (the previous limiter): 20.6-20.8 s, no 429;
//! - GCRA burst 5: a 429 and a 30 s lockout after every refill (a GCRA with burst N admits
//!   2N-1 requests within one second; see the test `gcra_with_burst_n_admits_2n_minus_1_per_second`);
//! - sliding window 5 per 1.03 s: no 429, a little faster since each group of 5 leaves at once.
//!
//! The per-token limit uses the same window (50 per 1.03 s) rather than governor: a GCRA with
//! burst 50 lets 99 requests through within one second (measured by the same test), and with burst
//! 1 it spaces requests 20 ms apart, which would again delay parallel calls. governor stays
//! where a GCRA fits: the HTTP server's per-client limit (src/server/http).
//!
//! The 429 hold stays: after a 429 every request to that base waits out `Retry-After`.
//!
//! The window state lives behind [`WindowStore`] so that several server instances can share
//! it (e.g. in Redis: a sorted set per key and a Lua script doing [`reserve_at`]'s arithmetic).
//! [`MemoryStore`] is the in-process implementation. All times are `tokio::time::Instant`, so
//! the limiter follows tokio's paused clock in tests.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::ids::BaseId;

pub mod redis;
pub use self::redis::{RedisError, RedisStatus, RedisStore};

/// Widening of the 1 s window, as a fraction (3 %: 5 requests per 1.03 s per base).
pub const WINDOW_MARGIN: f64 = 0.03;

/// A stable, non-reversible key for a token: the first 8 bytes of a domain-separated SHA-256.
/// Stable across processes, so that replicas sharing windows in Redis count one token once.
/// The token itself is never stored in a limiter.
pub(crate) fn token_key(token: &SecretString) -> u64 {
    let d = token_digest(token);
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// The 32-hex-digit fingerprint of a token for shared-state keys (the schema cache in Redis).
pub(crate) fn token_fingerprint(token: &SecretString) -> String {
    token_digest(token)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn token_digest(token: &SecretString) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"airtable-mcp shared-state key v1\0");
    h.update(token.expose_secret().as_bytes());
    h.finalize().into()
}

/// The window for a margin: 1 s x (1 + margin), margin clamped to [0, 10].
pub fn window_for(margin: f64) -> Duration {
    let margin = if margin.is_finite() {
        margin.clamp(0.0, 10.0)
    } else {
        WINDOW_MARGIN
    };
    Duration::from_secs_f64(1.0 + margin)
}

/// What a window counts requests for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// One base (Airtable: 5 requests per second).
    Base(BaseId),
    /// One token, by its [`token_key`] hash (Airtable: 50 requests per second).
    Token(u64),
}

/// One limit a request must respect: at most `limit` departures for `key` in any `window`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub key: LimitKey,
    pub limit: u32,
    pub window: Duration,
}

/// What a store answers to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Reserved: leave after this wait (recorded under every key).
    Go(Duration),
    /// The base is held back after a 429 for this long more; nothing was recorded.
    Held(Duration),
    /// The departure would lie beyond the store's horizon: nothing was recorded; ask again
    /// after this wait (shared stores bound how far ahead they schedule, see [`HORIZON_WINDOWS`]).
    Later(Duration),
}

/// How many windows ahead a shared store schedules departures (2: a queued request is never
/// promised a slot more than ~2 s ahead). Bounding it bounds what a replica must assume other
/// replicas still have scheduled when the shared store disappears (see `rate_limit::redis`).
pub const HORIZON_WINDOWS: u32 = 2;

/// Where the sliding windows and the 429 holds live. A request reserves its departure time in
/// every slot at once (atomically: all keys get the same time) and waits until then.
pub trait WindowStore: Send + Sync {
    /// Reserve the earliest departure time that keeps every slot within its limit, record it
    /// under each key, and return how long from now the caller must wait. Departures per key
    /// are first-come, first-served (never earlier than the key's last reservation). When
    /// `hold` is a base on hold, nothing is recorded and [`Reservation::Held`] says how long.
    fn reserve<'a>(
        &'a self,
        slots: &'a [Slot],
        hold: Option<&'a BaseId>,
    ) -> BoxFuture<'a, Reservation>;

    /// After a 429: hold back every request to `base` for `wait` (a longer hold already set
    /// stays).
    fn hold<'a>(&'a self, base: &'a BaseId, wait: Duration) -> BoxFuture<'a, ()>;

    /// How long `base` is still on hold, if it is.
    fn held<'a>(&'a self, base: &'a BaseId) -> BoxFuture<'a, Option<Duration>>;

    /// The health of a shared store (None: an in-process store, always healthy).
    fn health(&self) -> Option<StoreHealth> {
        None
    }
}

/// The health of a shared [`WindowStore`], for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreHealth {
    /// The shared store is in use (false: local fallback limits).
    pub up: bool,
    /// Acquisitions served by the local fallback (or the transition) since start.
    pub fallback_total: u64,
    /// Outages seen since start.
    pub outages_total: u64,
}

/// A cache shared by several server processes (the schema cache in Redis). Best effort:
/// failures read as misses.
pub trait SharedCache: Send + Sync {
    /// The value under `key`, if any.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<Vec<u8>>>;
    /// Store `value` under `key` for `ttl`.
    fn put<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, ()>;
    /// Forget `key`.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()>;
}

/// The departure logs of some keys (each sorted, at most `limit` entries kept).
pub type Logs = HashMap<LimitKey, VecDeque<Instant>>;

/// The earliest departure for `slots` at `now` without recording it.
pub fn earliest(logs: &Logs, slots: &[Slot], now: Instant) -> Instant {
    let mut at = now;
    for slot in slots {
        let Some(log) = logs.get(&slot.key) else {
            continue;
        };
        if let Some(last) = log.back() {
            at = at.max(*last);
        }
        let limit = usize::try_from(slot.limit.max(1)).unwrap_or(usize::MAX);
        if log.len() >= limit
            && let Some(first) = log.get(log.len() - limit)
        {
            at = at.max(*first + slot.window);
        }
    }
    at
}

fn record(logs: &mut Logs, slots: &[Slot], at: Instant) {
    for slot in slots {
        let limit = usize::try_from(slot.limit.max(1)).unwrap_or(usize::MAX);
        let log = logs.entry(slot.key.clone()).or_default();
        log.push_back(at);
        while log.len() > limit {
            log.pop_front();
        }
    }
}

/// The sliding-window arithmetic, pure: the departure time for a request arriving at `now`,
/// recorded in `logs`. Each log keeps the last `limit` departures, in order.
pub fn reserve_at(logs: &mut Logs, slots: &[Slot], now: Instant) -> Instant {
    let at = earliest(logs, slots, now);
    record(logs, slots, at);
    at
}

/// [`reserve_at`] with a horizon: a departure later than `now + horizon` is not recorded and
/// `Err(when to ask again)` is returned instead.
pub fn reserve_within(
    logs: &mut Logs,
    slots: &[Slot],
    now: Instant,
    horizon: Option<Duration>,
) -> Result<Instant, Instant> {
    let at = earliest(logs, slots, now);
    if let Some(h) = horizon
        && at > now + h
    {
        return Err(at - h);
    }
    record(logs, slots, at);
    Ok(at)
}

/// The in-process [`WindowStore`].
#[derive(Default)]
pub struct MemoryStore {
    logs: Mutex<Logs>,
    holds: Mutex<HashMap<BaseId, Instant>>,
    reservations: AtomicU64,
    horizon: Option<Duration>,
}

impl MemoryStore {
    /// A store scheduling any distance ahead.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that answers [`Reservation::Later`] beyond `horizon`.
    pub fn with_horizon(horizon: Duration) -> Self {
        Self {
            horizon: Some(horizon),
            ..Self::default()
        }
    }

    /// Reserve now, never leaving before `not_before`, nothing beyond `horizon` past that.
    pub(crate) fn reserve_now(
        &self,
        slots: &[Slot],
        hold: Option<&BaseId>,
        not_before: Option<Instant>,
        horizon: Option<Duration>,
    ) -> Reservation {
        let now = Instant::now();
        if let Some(base) = hold
            && let Some(d) = self.held_now(base, now)
        {
            return Reservation::Held(d);
        }
        let from = not_before.map_or(now, |t| t.max(now));
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let answer = match reserve_within(&mut logs, slots, from, horizon) {
            Ok(at) => Reservation::Go(at.saturating_duration_since(now)),
            Err(retry) => Reservation::Later(retry.saturating_duration_since(now)),
        };
        // Housekeeping: forget keys idle for longer than any window now and then.
        if self.reservations.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            let longest = slots.iter().map(|s| s.window).max().unwrap_or_default();
            let horizon = longest.max(Duration::from_secs(60));
            logs.retain(|_, log| log.back().is_some_and(|t| *t + horizon > now));
        }
        answer
    }

    /// The earliest departure from now (not before `not_before`), without recording it.
    pub(crate) fn peek(&self, slots: &[Slot], not_before: Option<Instant>) -> Duration {
        let now = Instant::now();
        let from = not_before.map_or(now, |t| t.max(now));
        let logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        earliest(&logs, slots, from).saturating_duration_since(now)
    }

    /// Record a departure `wait` from now (or later if the windows demand it); the wait.
    pub(crate) fn record_after(&self, slots: &[Slot], wait: Duration) -> Duration {
        let now = Instant::now();
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        reserve_at(&mut logs, slots, now + wait).saturating_duration_since(now)
    }

    fn held_now(&self, base: &BaseId, now: Instant) -> Option<Duration> {
        let mut map = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, t| *t > now);
        map.get(base).map(|t| *t - now)
    }

    pub(crate) fn hold_now(&self, base: &BaseId, wait: Duration) {
        let until = Instant::now() + wait;
        let mut map = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        let e = map.entry(base.clone()).or_insert(until);
        if *e < until {
            *e = until;
        }
    }

    pub(crate) fn held_for(&self, base: &BaseId) -> Option<Duration> {
        self.held_now(base, Instant::now())
    }
}

impl WindowStore for MemoryStore {
    fn reserve<'a>(
        &'a self,
        slots: &'a [Slot],
        hold: Option<&'a BaseId>,
    ) -> BoxFuture<'a, Reservation> {
        Box::pin(std::future::ready(self.reserve_now(
            slots,
            hold,
            None,
            self.horizon,
        )))
    }

    fn hold<'a>(&'a self, base: &'a BaseId, wait: Duration) -> BoxFuture<'a, ()> {
        self.hold_now(base, wait);
        Box::pin(std::future::ready(()))
    }

    fn held<'a>(&'a self, base: &'a BaseId) -> BoxFuture<'a, Option<Duration>> {
        Box::pin(std::future::ready(self.held_for(base)))
    }
}

/// One local queue per key: a request that must ask the store again later keeps its place
/// (only the head of each queue asks), so waiters do not stampede a shared store.
type Gates = Mutex<HashMap<LimitKey, Arc<tokio::sync::Mutex<()>>>>;

/// The shared limiters of a client pool.
pub(crate) struct Limiters {
    store: Arc<dyn WindowStore>,
    per_base: u32,
    per_token: u32,
    window: Duration,
    gates: Gates,
}

impl Limiters {
    pub(crate) fn new(
        store: Arc<dyn WindowStore>,
        per_base_rps: u32,
        per_token_rps: u32,
        margin: f64,
    ) -> Self {
        Self {
            store,
            per_base: per_base_rps.max(1),
            per_token: per_token_rps.max(1),
            window: window_for(margin),
            gates: Mutex::new(HashMap::new()),
        }
    }

    fn gate(&self, key: &LimitKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        if gates.len() > 4096 {
            gates.retain(|_, g| Arc::strong_count(g) > 1);
        }
        gates.entry(key.clone()).or_default().clone()
    }

    /// Wait until the token's and the base's windows allow one request; returns the time waited.
    pub(crate) async fn acquire(&self, token: u64, base: Option<&BaseId>) -> Duration {
        let start = Instant::now();
        let mut slots = vec![Slot {
            key: LimitKey::Token(token),
            limit: self.per_token,
            window: self.window,
        }];
        if let Some(base) = base {
            slots.push(Slot {
                key: LimitKey::Base(base.clone()),
                limit: self.per_base,
                window: self.window,
            });
        }
        let gate = self.gate(&slots[slots.len() - 1].key);
        let mut place = None;
        // A departure later than planned by more than half the margin may crowd the next
        // window (the store recorded the planned time): reserve again, at most twice.
        let slack = self.window.saturating_sub(Duration::from_secs(1)) / 2;
        let mut late_retries = 0;
        loop {
            if place.is_none() {
                place = Some(gate.clone().lock_owned().await);
            }
            let asked = Instant::now();
            match self.store.reserve(&slots, base).await {
                Reservation::Go(wait) => {
                    place = None;
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    if late_retries < 2 && asked.elapsed() > wait + slack {
                        late_retries += 1;
                        tracing::debug!(
                            late_ms = (asked.elapsed() - wait).as_millis() as u64,
                            "departure later than planned; reserving again"
                        );
                        continue;
                    }
                    if !wait.is_zero() {
                        // A 429 may have arrived while we waited: then wait it out and reserve
                        // again.
                        if let Some(base) = base
                            && let Some(d) = self.store.held(base).await
                        {
                            tokio::time::sleep(d).await;
                            continue;
                        }
                    }
                    break;
                }
                Reservation::Held(d) => {
                    place = None;
                    tokio::time::sleep(d).await;
                }
                Reservation::Later(d) => {
                    // Keep our place in the local queue while we wait.
                    tokio::time::sleep(d.max(Duration::from_millis(1))).await;
                }
            }
        }
        drop(place);
        start.elapsed()
    }

    /// After a 429: hold back every request to this base (from any task, and from every
    /// replica sharing the store) for `wait`.
    pub(crate) fn health(&self) -> Option<StoreHealth> {
        self.store.health()
    }

    pub(crate) async fn block_base(&self, base: &BaseId, wait: Duration) {
        self.store.hold(base, wait).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    /// Never more than `limit` departures within any half-open window `[t, t + window)`.
    fn assert_window(departures: &[Instant], limit: usize, window: Duration) {
        let mut d = departures.to_vec();
        d.sort();
        for i in 0..d.len() {
            let inside = d[i..].iter().take_while(|t| **t < d[i] + window).count();
            assert!(
                inside <= limit,
                "{inside} departures within {window:?} from departure {i}: {d:?}"
            );
        }
    }

    #[test]
    fn first_n_leave_at_once_then_one_window_later() {
        let t0 = Instant::now();
        let mut logs = Logs::new();
        let s = [slot(LimitKey::Token(1), 5, 1030)];
        for _ in 0..5 {
            assert_eq!(reserve_at(&mut logs, &s, t0), t0);
        }
        // The 6th leaves one window after the 1st; the 11th one window after the 6th.
        for _ in 0..5 {
            assert_eq!(
                reserve_at(&mut logs, &s, t0),
                t0 + Duration::from_millis(1030)
            );
        }
        assert_eq!(
            reserve_at(&mut logs, &s, t0 + Duration::from_millis(10)),
            t0 + Duration::from_millis(2060)
        );
        // After a quiet window, 5 at once again.
        let later = t0 + Duration::from_secs(10);
        for _ in 0..5 {
            assert_eq!(reserve_at(&mut logs, &s, later), later);
        }
    }

    #[test]
    fn the_stricter_of_two_keys_wins_and_both_record_it() {
        let t0 = Instant::now();
        let mut logs = Logs::new();
        let tok = slot(LimitKey::Token(7), 50, 1000);
        let (a, b) = (
            slot(LimitKey::Base(base(1)), 5, 1000),
            slot(LimitKey::Base(base(2)), 5, 1000),
        );
        for _ in 0..5 {
            assert_eq!(reserve_at(&mut logs, &[tok.clone(), a.clone()], t0), t0);
        }
        // Base 1 is full; base 2 is not held back by it.
        assert_eq!(
            reserve_at(&mut logs, &[tok.clone(), a.clone()], t0),
            t0 + Duration::from_secs(1)
        );
        // The token's log now ends 1 s ahead: first come, first served for the token too.
        assert_eq!(
            reserve_at(&mut logs, &[tok.clone(), b.clone()], t0),
            t0 + Duration::from_secs(1)
        );
        assert_eq!(logs[&tok.key].len(), 7);
        assert_eq!(logs[&a.key].len(), 5);
    }

    proptest! {
        /// Arbitrary arrivals on 2 tokens x 3 bases: per key, never more than N departures in
        /// any trailing window; nobody leaves before arriving; a request that finds its keys'
        /// windows empty and no one queued leaves at once.
        #[test]
        fn never_more_than_n_in_any_window(
            arrivals in proptest::collection::vec((0u64..400, 0u8..2, 0u8..3), 1..300),
            base_limit in 1u32..8,
            token_limit in 1u32..20,
            window_ms in 50u64..1500,
        ) {
            let t0 = Instant::now();
            let window = Duration::from_millis(window_ms);
            let mut logs = Logs::new();
            let mut now = t0;
            let mut by_key: HashMap<LimitKey, Vec<Instant>> = HashMap::new();
            for (gap, tok, b) in arrivals {
                now += Duration::from_millis(gap);
                let slots = [
                    slot(LimitKey::Token(u64::from(tok)), token_limit, window_ms),
                    slot(LimitKey::Base(base(b)), base_limit, window_ms),
                ];
                let idle = slots.iter().all(|s| {
                    by_key.get(&s.key).is_none_or(|d| d.iter().all(|t| *t + window <= now))
                });
                let at = reserve_at(&mut logs, &slots, now);
                prop_assert!(at >= now);
                if idle {
                    prop_assert_eq!(at, now);
                }
                for s in &slots {
                    by_key.entry(s.key.clone()).or_default().push(at);
                }
            }
            for (key, d) in &by_key {
                let limit = match key {
                    LimitKey::Base(_) => base_limit,
                    LimitKey::Token(_) => token_limit,
                };
                assert_window(d, limit as usize, window);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn twelve_concurrent_requests_leave_in_three_groups() {
        let limiters = Arc::new(Limiters::new(Arc::new(MemoryStore::new()), 5, 50, 0.03));
        let t0 = Instant::now();
        let b = base(1);
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let (l, b) = (limiters.clone(), b.clone());
            tasks.push(tokio::spawn(async move {
                l.acquire(9, Some(&b)).await;
                Instant::now()
            }));
        }
        let mut departures = Vec::new();
        for t in tasks {
            departures.push(t.await.unwrap());
        }
        departures.sort();
        let offsets: Vec<u128> = departures.iter().map(|t| (*t - t0).as_millis()).collect();
        assert_eq!(
            offsets,
            [0, 0, 0, 0, 0, 1030, 1030, 1030, 1030, 1030, 2060, 2060]
        );
        assert_window(&departures, 5, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_holds_the_base_and_requests_queued_behind_it() {
        let limiters = Limiters::new(Arc::new(MemoryStore::new()), 5, 50, 0.03);
        let (b1, b2) = (base(1), base(2));
        limiters.block_base(&b1, Duration::from_secs(30)).await;
        let t0 = Instant::now();
        // Another base is not held.
        assert_eq!(limiters.acquire(1, Some(&b2)).await, Duration::ZERO);
        let waited = limiters.acquire(1, Some(&b1)).await;
        assert_eq!(waited, Duration::from_secs(30));
        assert_eq!(Instant::now() - t0, Duration::from_secs(30));
        // A hold set while a request waits for its slot delays it too.
        for _ in 0..4 {
            limiters.acquire(1, Some(&b1)).await;
        }
        let l = Arc::new(limiters);
        let waiter = {
            let (l, b1) = (l.clone(), b1.clone());
            tokio::spawn(async move { l.acquire(1, Some(&b1)).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        l.block_base(&b1, Duration::from_secs(5)).await;
        let waited = waiter.await.unwrap();
        assert!(waited >= Duration::from_millis(5100), "{waited:?}");
    }

    /// The measurement behind the choice of a sliding window over governor's GCRA for the
    /// per-token limit: a GCRA quota of N per second with burst N admits 2N-1 requests within
    /// one second (the burst, then one every 1/N s), which a strict window answers with a 429.
    #[test]
    fn gcra_with_burst_n_admits_2n_minus_1_per_second() {
        use governor::clock::FakeRelativeClock;
        use governor::{Quota, RateLimiter};
        use std::num::NonZeroU32;
        for n in [5u32, 50] {
            let clock = FakeRelativeClock::default();
            let quota = Quota::per_second(NonZeroU32::new(n).unwrap());
            let lim = RateLimiter::direct_with_clock(quota, clock.clone());
            let step = Duration::from_millis(1);
            let mut admitted = 0;
            for _ in 0..999 {
                if lim.check().is_ok() {
                    admitted += 1;
                }
                clock.advance(step);
            }
            assert_eq!(
                admitted,
                2 * n - 1,
                "GCRA burst {n}: admitted within 999 ms"
            );
        }
    }
}
