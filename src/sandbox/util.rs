//! IDs and timestamps in Airtable's formats.

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

thread_local! {
    /// Set while a seed is loaded, so that seeded IDs are the same on every run.
    static DET: std::cell::RefCell<Option<DetIds>> = const { std::cell::RefCell::new(None) };
}

/// Run `f` with deterministic IDs (seeding).
pub fn with_det_ids<T>(seed: u64, f: impl FnOnce() -> T) -> T {
    DET.with(|d| *d.borrow_mut() = Some(DetIds::new(seed)));
    let r = f();
    DET.with(|d| *d.borrow_mut() = None);
    r
}

/// A fresh random ID: the prefix and 14 alphanumerics (`rec`, `fld`, `tbl`…).
pub fn new_id(prefix: &str) -> String {
    if let Some(id) = DET.with(|d| d.borrow_mut().as_mut().map(|g| g.id(prefix))) {
        return id;
    }
    let mut rng = rand::rng();
    let mut s = String::with_capacity(17);
    s.push_str(prefix);
    for _ in 0..14 {
        let i = rng.random_range(0..ALNUM.len());
        s.push(ALNUM[i] as char);
    }
    s
}

/// Whether `s` is `prefix` + 14 alphanumerics.
pub fn is_id(prefix: &str, s: &str) -> bool {
    s.len() == prefix.len() + 14
        && s.starts_with(prefix)
        && s[prefix.len()..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A deterministic ID generator (splitmix64), for seeds.
pub struct DetIds(u64);

impl DetIds {
    pub fn new(seed: u64) -> Self {
        DetIds(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn id(&mut self, prefix: &str) -> String {
        let mut s = String::with_capacity(17);
        s.push_str(prefix);
        for _ in 0..14 {
            let i = (self.next_u64() % ALNUM.len() as u64) as usize;
            s.push(ALNUM[i] as char);
        }
        s
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// ISO-8601 UTC with milliseconds and `Z`, as Airtable writes times.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn now_iso() -> String {
    iso(Utc::now())
}

pub fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Encode a non-negative index as 14 base-62 characters.
pub fn encode_index(mut n: u64) -> String {
    let mut out = [b'0'; 14];
    let digits = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for slot in out.iter_mut().rev() {
        *slot = digits[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn decode_index(s: &str) -> Option<u64> {
    if s.len() != 14 {
        return None;
    }
    let mut n: u64 = 0;
    for b in s.bytes() {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'Z' => b - b'A' + 10,
            b'a'..=b'z' => b - b'a' + 36,
            _ => return None,
        } as u64;
        n = n.checked_mul(62)?.checked_add(d)?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_airtable_shape() {
        let id = new_id("rec");
        assert!(is_id("rec", &id), "{id}");
        assert!(!is_id("rec", "rec123"));
        assert!(!is_id("rec", "tblAAAAAAAAAAAAAA"));
        let mut d = DetIds::new(1);
        let a = d.id("app");
        assert!(is_id("app", &a));
        assert_eq!(DetIds::new(1).id("app"), a);
    }

    #[test]
    fn index_round_trips() {
        for n in [0u64, 1, 61, 62, 100, 123_456_789] {
            assert_eq!(decode_index(&encode_index(n)), Some(n));
        }
        assert_eq!(decode_index("abc"), None);
    }
}
