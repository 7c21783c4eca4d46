//! Client-side rate limits (governor): 5 requests/s per base and 50 requests/s per token.
//!
//! Airtable counts requests per second and locks a base for 30 s after a breach. A GCRA
//! limiter with a burst of N lets N requests leave at once and then one every 1/N s, so a
//! strict sliding window sees N+1 requests within one second and trips. We therefore use a
//! burst of 1 (even spacing) and space requests a little wider than 1/N (`SPACING_MARGIN`),
//! so that network jitter cannot squeeze N+1 arrivals into one second either: request k and
//! k+5 leave at least 5 x 206 ms = 1.03 s apart, so up to ~30 ms of arrival jitter is absorbed.
//!
//! Measured with `examples/bench_bulk_create.rs` (1,000 records, 100 requests, release, strict
//! sliding-window server with a 30 s lockout, on a loaded 2-core machine):
//! - burst 1, +3 % (the default): 20.6-20.8 s (sandbox median of 3: 20.78 s), no 429;
//! - burst 1, +4 %: 21.0 s, no 429 (too close to the 21 s goal);
//! - burst 1, +2 %: one 429 under CPU load (51 s with the lockout);
//! - burst 1, exact 200 ms: 20.0 s when the machine is idle, three 429s in a debug build;
//! - burst 5: a 429 and a 30 s lockout after every refill (did not finish within 400 s).

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use secrecy::{ExposeSecret, SecretString};

use super::ids::BaseId;

/// Extra spacing on top of 1/rps, as a fraction (3 %: 206 ms instead of 200 ms at 5/s).
pub const SPACING_MARGIN: f64 = 0.03;

/// A stable, non-reversible key for a token: SipHash with one random seed per process.
/// The token itself is never stored in a limiter.
pub(crate) fn token_key(token: &SecretString) -> u64 {
    static SEED: OnceLock<RandomState> = OnceLock::new();
    SEED.get_or_init(RandomState::new)
        .hash_one(token.expose_secret().as_bytes())
}

fn quota(rps: u32, burst: u32, margin: f64) -> Quota {
    let rps = rps.max(1);
    let margin = if margin.is_finite() {
        margin.clamp(0.0, 10.0)
    } else {
        SPACING_MARGIN
    };
    let period = Duration::from_secs_f64((1.0 + margin) / f64::from(rps));
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

/// The shared limiters of a client pool.
pub(crate) struct Limiters {
    per_base: DefaultKeyedRateLimiter<BaseId>,
    per_token: DefaultKeyedRateLimiter<u64>,
    acquisitions: AtomicU64,
    /// Bases Airtable answered 429 for, and until when to hold their requests back.
    blocked: Mutex<HashMap<BaseId, Instant>>,
}

impl Limiters {
    pub(crate) fn new(per_base_rps: u32, per_token_rps: u32, burst: u32, margin: f64) -> Self {
        Self {
            per_base: RateLimiter::keyed(quota(per_base_rps, burst, margin)),
            per_token: RateLimiter::keyed(quota(per_token_rps, burst, margin)),
            acquisitions: AtomicU64::new(0),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// Wait until both the token's and the base's limiter allow one request; returns the time waited.
    pub(crate) async fn acquire(&self, token: u64, base: Option<&BaseId>) -> Duration {
        let start = Instant::now();
        if let Some(base) = base {
            loop {
                let until = self.blocked_until(base);
                match until {
                    Some(t) if t > Instant::now() => tokio::time::sleep_until(t.into()).await,
                    _ => break,
                }
            }
        }
        self.per_token.until_key_ready(&token).await;
        if let Some(base) = base {
            self.per_base.until_key_ready(base).await;
        }
        // Housekeeping: forget idle keys now and then.
        if self.acquisitions.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.per_base.retain_recent();
            self.per_token.retain_recent();
        }
        start.elapsed()
    }

    fn blocked_until(&self, base: &BaseId) -> Option<Instant> {
        let mut map = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, t| *t > now);
        map.get(base).copied()
    }

    /// After a 429: hold back every request to this base (from any task) for `wait`.
    pub(crate) fn block_base(&self, base: &BaseId, wait: Duration) {
        let until = Instant::now() + wait;
        let mut map = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let e = map.entry(base.clone()).or_insert(until);
        if *e < until {
            *e = until;
        }
    }
}
