//! Retry policy (hand-written, so that it honours Retry-After and Airtable's create semantics).
//!
//! - 429: wait `Retry-After` (seconds or HTTP-date) or `rate_limit_wait` (30 s), then retry any
//!   method: Airtable did not apply the request.
//! - 500/502/503/504, timeouts, broken connections: exponential backoff with full jitter, for
//!   requests that are safe to repeat (reads, PATCH/PUT updates, deletes).
//! - Creates (POST of records, comments, tables, fields) are retried only when provably not
//!   applied: 429, 503 with type `RETRIABLE_ERROR` (Airtable: "it is safe to retry the
//!   request"), and connect errors (the connection never opened, so nothing was sent). Any other
//!   failure of a create is reported as [`Error::Ambiguous`](super::Error::Ambiguous).
//!   A 502 is *not* treated as safe for a create: a proxy answers 502 when the upstream broke,
//!   which may be after Airtable applied the write.

use std::time::{Duration, SystemTime};

/// How a request may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Reads, updates and deletes: repeating them cannot duplicate anything.
    Idempotent,
    /// Creates: repeat only when provably not applied.
    Create,
}

/// Parse a `Retry-After` value: delay-seconds or an HTTP-date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Full-jitter exponential backoff: a random delay in `[0, min(max, initial * 2^(retry-1))]`.
pub fn backoff(retry: u32, initial: Duration, max: Duration) -> Duration {
    let exp = initial.saturating_mul(1u32 << retry.saturating_sub(1).min(20));
    let cap = exp.min(max);
    if cap.is_zero() {
        return cap;
    }
    let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::random_range(0..=nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 30 "), Some(Duration::from_secs(30)));
        let future = SystemTime::now() + Duration::from_secs(120);
        let d = parse_retry_after(&httpdate::fmt_http_date(future)).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_is_bounded() {
        for r in 1..40 {
            let d = backoff(r, Duration::from_millis(100), Duration::from_secs(2));
            assert!(d <= Duration::from_secs(2));
        }
        assert!(
            backoff(1, Duration::from_millis(100), Duration::from_secs(2))
                <= Duration::from_millis(100)
        );
    }
}
