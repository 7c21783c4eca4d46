//! The windows, the 429 holds and a schema cache shared by several replicas through Redis
//! (`serve --redis URL`).
//!
//! - Windows: one list per key (`airtable-mcp:w:b:<base>`, `airtable-mcp:w:t:<token hash>`) of
//!   departure times in microseconds of Redis server `TIME` (replicas' clocks do not matter).
//!   One Lua script per acquisition does [`super::reserve_at`]'s arithmetic over all the keys
//!   atomically, checks the base's hold, refuses to schedule more than [`HORIZON_WINDOWS`]
//!   windows ahead ([`Reservation::Later`]), trims each list to its limit and sets a TTL so
//!   idle keys vanish.
//! - Holds: `airtable-mcp:hold:<base>` with a `PX` expiry of the Retry-After wait.
//! - Schema cache: `airtable-mcp:schema:<token fingerprint>:<base>` ([`SharedCache`]).
//!
//! Redis unreachable (at start or mid-run; detected by a failed call or the probe every
//! second): the replica falls back to local windows of `limit / replicas` per window
//! ([`fallback_slot`]), after a quarantine of `HORIZON_WINDOWS + 1` windows from the outage
//! (what the others may still have scheduled through Redis has then left and left the
//! window), logs one warning per outage and counts it ([`RedisStatus`]). When the probe
//! reaches Redis again the replica obeys both the local and the shared windows for a
//! transition (`probe interval + 2 x HORIZON_WINDOWS + 2` windows, announced to the other replicas
//! by the key `airtable-mcp:transition`), then Redis alone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::{HORIZON_WINDOWS, LimitKey, MemoryStore, Reservation, SharedCache, Slot, WindowStore};
use crate::airtable::BaseId;

/// The prefix of every key.
pub const KEY_PREFIX: &str = "airtable-mcp:";

/// The window margin with a shared store (6 %: 5 requests per 1.06 s per base): a departure
/// scheduled in Redis reaches Airtable after one more hop (the script's reply), whose jitter
/// across replicas the in-process 3 % did not cover (measured: a 429 at 3 % with three loaded
/// replicas, none at 6 %).
pub const SHARED_WINDOW_MARGIN: f64 = 0.06;

/// How often the store checks that Redis answers.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Bound on one Redis command (a slower answer counts as an outage).
const COMMAND_TIMEOUT: Duration = Duration::from_millis(750);

/// Errors setting up the Redis store.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// The URL is not a usable Redis URL (the message never contains the password).
    #[error(
        "invalid Redis URL ({0}): expected redis://[user:password@]host[:port][/db] or rediss://…"
    )]
    Url(String),
    /// The client could not be created.
    #[error("cannot set up the Redis client")]
    Client(#[source] redis::RedisError),
}

const SCRIPT: &str = r#"
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local transition = redis.call('PTTL', KEYS[1])
if ARGV[4] == '1' then
  local h = redis.call('PTTL', KEYS[2])
  if h > 0 then return {1, h * 1000, transition} end
end
local from = now + tonumber(ARGV[2])
local at = from
local n = (#ARGV - 4) / 2
for i = 1, n do
  local key = KEYS[i + 2]
  local limit = tonumber(ARGV[3 + 2 * i])
  local window = tonumber(ARGV[4 + 2 * i])
  local len = redis.call('LLEN', key)
  if len > 0 then
    local last = tonumber(redis.call('LINDEX', key, -1))
    if last > at then at = last end
    if len >= limit then
      local first = tonumber(redis.call('LINDEX', key, len - limit))
      if first + window > at then at = first + window end
    end
  end
end
local horizon = tonumber(ARGV[3])
if horizon >= 0 and at > from + horizon then
  return {2, at - horizon - from + tonumber(ARGV[2]), transition}
end
for i = 1, n do
  local key = KEYS[i + 2]
  local limit = tonumber(ARGV[3 + 2 * i])
  local window = tonumber(ARGV[4 + 2 * i])
  redis.call('RPUSH', key, string.format('%d', at))
  redis.call('LTRIM', key, -limit, -1)
  redis.call('PEXPIRE', key, math.floor((at - now + window) / 1000) + 1000)
end
return {0, at - now, transition}
"#;

/// Health of the shared store, for `/metrics`.
#[derive(Debug, Default)]
pub struct RedisStatus {
    up: AtomicBool,
    fallback: AtomicU64,
    outages: AtomicU64,
}

impl RedisStatus {
    /// Whether the limiter currently uses Redis (false while falling back to local limits).
    pub fn up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
    /// Acquisitions served by the local fallback since start.
    pub fn fallback_total(&self) -> u64 {
        self.fallback.load(Ordering::Relaxed)
    }
    /// Outages seen since start.
    pub fn outages_total(&self) -> u64 {
        self.outages.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Up,
    /// Redis unreachable since `since`.
    Down {
        since: Instant,
    },
    /// Reachable again; obey local and shared windows until `until`.
    Returning {
        since: Instant,
        until: Instant,
    },
}

struct Inner {
    conn: ConnectionManager,
    script: redis::Script,
    replicas: u32,
    local: MemoryStore,
    mode: Mutex<Mode>,
    status: Arc<RedisStatus>,
    /// The longest window seen (for the quarantine and transition lengths).
    window_us: AtomicU64,
    /// A request left on the local fallback during the current outage (else, back in Redis,
    /// no transition is needed: this replica sent nothing Redis does not know of).
    used_fallback: AtomicBool,
}

/// A [`WindowStore`] and [`SharedCache`] in Redis, with a local fallback.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("replicas", &self.inner.replicas)
            .finish_non_exhaustive()
    }
}

/// The local limit a replica keeps while Redis is unreachable: `limit / replicas` per window
/// (rounded down) when that is at least 1, else 1 per `ceil(replicas / limit)` windows. With
/// `replicas <= limit` the replicas together never exceed `limit` in any window; with more
/// replicas than the limit they keep to it on average only (documented in the README).
pub fn fallback_slot(slot: &Slot, replicas: u32) -> Slot {
    let n = replicas.max(1);
    let limit = slot.limit.max(1);
    if limit >= n {
        Slot {
            key: slot.key.clone(),
            limit: limit / n,
            window: slot.window,
        }
    } else {
        Slot {
            key: slot.key.clone(),
            limit: 1,
            window: slot.window * n.div_ceil(limit),
        }
    }
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn key_of(k: &LimitKey) -> String {
    match k {
        LimitKey::Base(b) => format!("{KEY_PREFIX}w:b:{b}"),
        LimitKey::Token(t) => format!("{KEY_PREFIX}w:t:{t:016x}"),
    }
}

fn hold_key(b: &BaseId) -> String {
    format!("{KEY_PREFIX}hold:{b}")
}

const TRANSITION_KEY: &str = "airtable-mcp:transition";

/// The URL's `host:port` (never the password), for logs.
pub fn redacted(url: &SecretString) -> String {
    match url::Url::parse(url.expose_secret()) {
        Ok(u) => format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap_or("?"),
            u.port().unwrap_or(6379)
        ),
        Err(_) => "(invalid URL)".to_owned(),
    }
}

impl RedisStore {
    /// A store on `url` (`redis://` or `rediss://`) for `replicas` replicas. Connects lazily:
    /// an unreachable Redis at start means the local fallback until it answers. Spawns the
    /// probe (needs a tokio runtime); it stops when the last clone is dropped.
    pub fn connect(url: &SecretString, replicas: u32) -> Result<RedisStore, RedisError> {
        let parsed =
            url::Url::parse(url.expose_secret()).map_err(|e| RedisError::Url(e.to_string()))?;
        if !matches!(parsed.scheme(), "redis" | "rediss") {
            return Err(RedisError::Url(format!(
                "scheme {:?} is not redis or rediss",
                parsed.scheme()
            )));
        }
        let client = redis::Client::open(url.expose_secret()).map_err(|e| {
            // redis' messages may quote the URL: keep only the kind.
            RedisError::Url(format!("{:?}", e.kind()))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn =
            ConnectionManager::new_lazy_with_config(client, config).map_err(RedisError::Client)?;
        let store = RedisStore {
            inner: Arc::new(Inner {
                conn,
                script: redis::Script::new(SCRIPT),
                replicas: replicas.max(1),
                local: MemoryStore::new(),
                // Redis is tried at once; the first failure starts the fallback.
                mode: Mutex::new(Mode::Up),
                status: Arc::new(RedisStatus::default()),
                window_us: AtomicU64::new(1_030_000),
                used_fallback: AtomicBool::new(false),
            }),
        };
        let weak = Arc::downgrade(&store.inner);
        tokio::spawn(probe_loop(weak));
        Ok(store)
    }

    /// The health counters (`airtable_mcp_redis_up`, fallback and outage totals).
    pub fn status(&self) -> Arc<RedisStatus> {
        self.inner.status.clone()
    }

    /// Run the reservation script at a given Redis time (`now_us`, microseconds) with no
    /// hold and no horizon: the script's arithmetic alone, for tests against `reserve_at`.
    #[doc(hidden)]
    pub async fn script_reserve_at(
        &self,
        slots: &[Slot],
        now_us: u64,
    ) -> Result<u64, redis::RedisError> {
        let (kind, wait, _) = self.run_script(slots, None, Some(now_us), 0, None).await?;
        debug_assert_eq!(kind, 0);
        Ok(now_us + wait)
    }

    async fn run_script(
        &self,
        slots: &[Slot],
        hold: Option<&BaseId>,
        now_us: Option<u64>,
        min_wait_us: u64,
        horizon_us: Option<u64>,
    ) -> Result<(i64, u64, i64), redis::RedisError> {
        let mut inv = self.inner.script.prepare_invoke();
        inv.key(TRANSITION_KEY);
        inv.key(hold.map_or_else(|| format!("{KEY_PREFIX}hold:-"), hold_key));
        for s in slots {
            inv.key(key_of(&s.key));
        }
        inv.arg(now_us.map_or_else(String::new, |n| n.to_string()))
            .arg(min_wait_us)
            .arg(horizon_us.map_or(-1i64, |h| i64::try_from(h).unwrap_or(i64::MAX)))
            .arg(if hold.is_some() { "1" } else { "0" });
        for s in slots {
            inv.arg(s.limit.max(1)).arg(us(s.window));
        }
        let mut conn = self.inner.conn.clone();
        let fut = inv.invoke_async::<(i64, i64, i64)>(&mut conn);
        match tokio::time::timeout(COMMAND_TIMEOUT, fut).await {
            Ok(Ok((kind, wait, transition))) => {
                Ok((kind, u64::try_from(wait).unwrap_or(0), transition))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "Redis did not answer in time",
            ))),
        }
    }

    fn mode(&self) -> Mode {
        let now = Instant::now();
        let mut m = self.inner.mode.lock().unwrap_or_else(|p| p.into_inner());
        if let Mode::Returning { until, .. } = *m
            && now >= until
        {
            *m = Mode::Up;
            tracing::info!("shared rate limits in Redis again (transition over)");
        }
        *m
    }

    fn window(&self) -> Duration {
        Duration::from_micros(self.inner.window_us.load(Ordering::Relaxed))
    }

    /// Redis failed: fall back (one warning per outage).
    fn went_down(&self, e: &redis::RedisError) {
        let mut m = self.inner.mode.lock().unwrap_or_else(|p| p.into_inner());
        if !matches!(*m, Mode::Down { .. }) {
            *m = Mode::Down {
                since: Instant::now(),
            };
            self.inner.status.up.store(false, Ordering::Relaxed);
            self.inner.status.outages.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                error_kind = ?e.kind(),
                replicas = self.inner.replicas,
                "Redis unreachable: falling back to local rate limits divided by the replica count"
            );
        }
    }

    /// Reached again by the probe: start the transition and tell the other replicas.
    async fn came_back(&self) {
        // Long enough for every replica to notice (one probe) and for every departure this
        // replica scheduled locally (up to quarantine + horizon after the outage) to leave the
        // window.
        let transition = PROBE_INTERVAL + self.window() * (2 * HORIZON_WINDOWS + 2);
        let used = self.inner.used_fallback.swap(false, Ordering::SeqCst);
        {
            let mut m = self.inner.mode.lock().unwrap_or_else(|p| p.into_inner());
            let Mode::Down { since } = *m else { return };
            *m = if used {
                Mode::Returning {
                    since,
                    until: Instant::now() + transition,
                }
            } else {
                Mode::Up
            };
        }
        self.inner.status.up.store(true, Ordering::Relaxed);
        if !used {
            tracing::info!("shared rate limits in Redis");
            return;
        }
        let mut conn = self.inner.conn.clone();
        let ms = u64::try_from(transition.as_millis()).unwrap_or(u64::MAX);
        let _: Result<(), _> = redis::cmd("SET")
            .arg(TRANSITION_KEY)
            .arg(1)
            .arg("PX")
            .arg(ms)
            .query_async(&mut conn)
            .await;
        tracing::info!(
            transition_ms = ms,
            "Redis reachable again: shared rate limits after a transition"
        );
    }

    /// Another replica is in its transition: obey local limits too for `ms`.
    fn join_transition(&self, ms: i64) {
        let Ok(ms) = u64::try_from(ms) else { return };
        if ms == 0 {
            return;
        }
        let mut m = self.inner.mode.lock().unwrap_or_else(|p| p.into_inner());
        if let Mode::Up = *m {
            let now = Instant::now();
            *m = Mode::Returning {
                since: now,
                until: now + Duration::from_millis(ms),
            };
        }
    }

    fn fallback_slots(&self, slots: &[Slot]) -> Vec<Slot> {
        slots
            .iter()
            .map(|s| fallback_slot(s, self.inner.replicas))
            .collect()
    }

    async fn reserve_shared(&self, slots: &[Slot], hold: Option<&BaseId>) -> Reservation {
        let window = slots.iter().map(|s| s.window).max().unwrap_or_default();
        self.inner
            .window_us
            .fetch_max(us(window), Ordering::Relaxed);
        let horizon = window * HORIZON_WINDOWS;
        let quarantine = window * (HORIZON_WINDOWS + 1);
        if let Some(base) = hold
            && let Some(d) = self.inner.local.held_for(base)
        {
            return Reservation::Held(d);
        }
        match self.mode() {
            Mode::Up => match self
                .run_script(slots, hold, None, 0, Some(us(horizon)))
                .await
            {
                Ok((kind, wait, transition)) => {
                    self.inner.status.up.store(true, Ordering::Relaxed);
                    self.join_transition(transition);
                    answer(kind, wait)
                }
                Err(e) => {
                    self.went_down(&e);
                    self.reserve_local(slots, hold, quarantine, horizon)
                }
            },
            Mode::Down { .. } => self.reserve_local(slots, hold, quarantine, horizon),
            Mode::Returning { since, .. } => {
                // Both: the local share (as in the fallback), then the shared windows no
                // earlier than that; the local log records the final departure.
                let local = self.fallback_slots(slots);
                let min = self.inner.local.peek(&local, Some(since + quarantine));
                if min > horizon {
                    return Reservation::Later(min - horizon);
                }
                match self
                    .run_script(slots, hold, None, us(min), Some(us(horizon)))
                    .await
                {
                    Ok((0, wait, _)) => {
                        self.inner.status.fallback.fetch_add(1, Ordering::Relaxed);
                        let wait = self
                            .inner
                            .local
                            .record_after(&local, Duration::from_micros(wait));
                        Reservation::Go(wait)
                    }
                    Ok((kind, wait, _)) => answer(kind, wait),
                    Err(e) => {
                        self.went_down(&e);
                        self.reserve_local(slots, hold, quarantine, horizon)
                    }
                }
            }
        }
    }

    fn reserve_local(
        &self,
        slots: &[Slot],
        hold: Option<&BaseId>,
        quarantine: Duration,
        horizon: Duration,
    ) -> Reservation {
        let since = match self.mode() {
            Mode::Down { since } | Mode::Returning { since, .. } => since,
            Mode::Up => Instant::now(),
        };
        self.inner.status.fallback.fetch_add(1, Ordering::Relaxed);
        self.inner.used_fallback.store(true, Ordering::SeqCst);
        let local = self.fallback_slots(slots);
        self.inner
            .local
            .reserve_now(&local, hold, Some(since + quarantine), Some(horizon))
    }

    async fn cmd<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Option<T> {
        if matches!(self.mode(), Mode::Down { .. }) {
            return None;
        }
        let mut conn = self.inner.conn.clone();
        match tokio::time::timeout(COMMAND_TIMEOUT, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                self.went_down(&e);
                None
            }
            Err(_) => {
                self.went_down(&redis::RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "Redis did not answer in time",
                )));
                None
            }
        }
    }
}

fn answer(kind: i64, wait_us: u64) -> Reservation {
    let d = Duration::from_micros(wait_us);
    match kind {
        0 => Reservation::Go(d),
        1 => Reservation::Held(d),
        _ => Reservation::Later(d),
    }
}

async fn probe_loop(weak: Weak<Inner>) {
    let mut tick = tokio::time::interval(PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = weak.upgrade() else { break };
        let store = RedisStore { inner };
        let mut conn = store.inner.conn.clone();
        let ping = tokio::time::timeout(
            COMMAND_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        match ping {
            Ok(Ok(_)) => {
                if matches!(store.mode(), Mode::Down { .. }) {
                    store.came_back().await;
                } else {
                    store.inner.status.up.store(true, Ordering::Relaxed);
                }
            }
            Ok(Err(e)) => store.went_down(&e),
            Err(_) => store.went_down(&redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "Redis did not answer in time",
            ))),
        }
    }
}

impl WindowStore for RedisStore {
    fn reserve<'a>(
        &'a self,
        slots: &'a [Slot],
        hold: Option<&'a BaseId>,
    ) -> BoxFuture<'a, Reservation> {
        Box::pin(self.reserve_shared(slots, hold))
    }

    fn hold<'a>(&'a self, base: &'a BaseId, wait: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.inner.local.hold_now(base, wait);
            let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
            // Keep a longer hold another replica set: PX only if the key is absent or shorter.
            let current: Option<i64> = self
                .cmd(redis::cmd("PTTL").arg(hold_key(base)).clone())
                .await;
            if current.is_some_and(|c| c >= i64::try_from(ms).unwrap_or(i64::MAX)) {
                return;
            }
            let _: Option<()> = self
                .cmd(
                    redis::cmd("SET")
                        .arg(hold_key(base))
                        .arg(1)
                        .arg("PX")
                        .arg(ms)
                        .clone(),
                )
                .await;
        })
    }

    fn health(&self) -> Option<super::StoreHealth> {
        let s = &self.inner.status;
        Some(super::StoreHealth {
            up: s.up(),
            fallback_total: s.fallback_total(),
            outages_total: s.outages_total(),
        })
    }

    fn held<'a>(&'a self, base: &'a BaseId) -> BoxFuture<'a, Option<Duration>> {
        Box::pin(async move {
            let local = self.inner.local.held_for(base);
            let shared: Option<i64> = self
                .cmd(redis::cmd("PTTL").arg(hold_key(base)).clone())
                .await;
            let shared = shared
                .and_then(|ms| u64::try_from(ms).ok())
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis);
            local.max(shared)
        })
    }
}

impl SharedCache for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            self.cmd::<Option<Vec<u8>>>(redis::cmd("GET").arg(format!("{KEY_PREFIX}{key}")).clone())
                .await
                .flatten()
        })
    }

    fn put<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let _: Option<()> = self
                .cmd(
                    redis::cmd("SET")
                        .arg(format!("{KEY_PREFIX}{key}"))
                        .arg(value)
                        .arg("PX")
                        .arg(ms)
                        .clone(),
                )
                .await;
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _: Option<i64> = self
                .cmd(redis::cmd("DEL").arg(format!("{KEY_PREFIX}{key}")).clone())
                .await;
        })
    }
}
