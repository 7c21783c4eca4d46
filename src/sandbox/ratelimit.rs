//! Airtable's per-base rate limit: more than N requests within a sliding second gets 429,
//! and the base stays locked for the penalty (30 s on Airtable).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
// tokio's clock (the std clock unless a test pauses it): client tests on a paused clock.
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Window {
    hits: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

pub struct RateLimiter {
    limit: u32,
    penalty: Duration,
    bases: Mutex<HashMap<String, Window>>,
}

impl RateLimiter {
    /// `limit` 0 disables the limit.
    pub fn new(limit: u32, penalty: Duration) -> Self {
        RateLimiter {
            limit,
            penalty,
            bases: Mutex::new(HashMap::new()),
        }
    }

    /// Admit a request to `base`, or answer the time left on the lock.
    pub fn check(&self, base: &str) -> Result<(), Duration> {
        if self.limit == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut bases = match self.bases.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let w = bases.entry(base.to_string()).or_default();
        if let Some(until) = w.locked_until {
            if until > now {
                return Err(until - now);
            }
            w.locked_until = None;
        }
        while w
            .hits
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            w.hits.pop_front();
        }
        if w.hits.len() >= self.limit as usize {
            w.hits.clear();
            w.locked_until = Some(now + self.penalty);
            return Err(self.penalty);
        }
        w.hits.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixth_request_in_a_second_is_refused_and_locks() {
        let rl = RateLimiter::new(5, Duration::from_secs(30));
        for _ in 0..5 {
            assert!(rl.check("appA").is_ok());
        }
        let left = rl.check("appA").unwrap_err();
        assert!(left > Duration::from_secs(29));
        assert!(rl.check("appA").is_err(), "locked");
        assert!(rl.check("appB").is_ok(), "other bases unaffected");
    }

    #[test]
    fn zero_disables() {
        let rl = RateLimiter::new(0, Duration::from_secs(30));
        for _ in 0..100 {
            assert!(rl.check("appA").is_ok());
        }
    }
}
