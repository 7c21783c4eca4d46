//! Base schemas cached with a TTL; the schema tools invalidate a base at once.
//!
//! With a shared cache on the client (`serve --redis`), a miss here reads the shared entry
//! (`schema:<token fingerprint>:<base>`, TTL = the schema TTL) before asking Airtable, and a
//! fetched schema is stored there too; invalidation deletes the shared entry and skips it
//! until this process has fetched the base again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::airtable::{self, BaseId, BaseSchema, Client};

/// A per-client cache of base schemas.
#[derive(Debug)]
pub(crate) struct SchemaCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Arc<BaseSchema>)>>,
    /// Bases invalidated here whose shared entry must not be trusted until refetched.
    invalidated: Mutex<HashSet<String>>,
    /// One fetch at a time: concurrent misses wait for the first and share its answer
    /// (otherwise 100 parallel calls on a cold cache send 100 schema requests).
    fetching: tokio::sync::Mutex<()>,
}

fn shared_key(client: &Client, base: &str) -> String {
    format!("schema:{}:{base}", client.token_fingerprint())
}

impl SchemaCache {
    /// An empty cache whose entries live `ttl`.
    pub(crate) fn new(ttl: Duration) -> Self {
        SchemaCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
            invalidated: Mutex::new(HashSet::new()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn lookup(&self, base: &str) -> Option<Arc<BaseSchema>> {
        let entries = self.entries.lock().ok()?;
        let (at, schema) = entries.get(base)?;
        (at.elapsed() < self.ttl).then(|| schema.clone())
    }

    fn remember(&self, base: &str, schema: &Arc<BaseSchema>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(base.to_owned(), (Instant::now(), schema.clone()));
        }
    }

    fn was_invalidated(&self, base: &str) -> bool {
        self.invalidated
            .lock()
            .map(|s| s.contains(base))
            .unwrap_or(true)
    }

    /// The schema of `base`, fetched when absent or stale.
    pub(crate) async fn get(
        &self,
        client: &Client,
        base: &BaseId,
    ) -> Result<Arc<BaseSchema>, airtable::Error> {
        if let Some(s) = self.lookup(base.as_ref()) {
            return Ok(s);
        }
        let _one_fetch = self.fetching.lock().await;
        if let Some(s) = self.lookup(base.as_ref()) {
            return Ok(s);
        }
        let shared = client.shared_cache();
        if let Some(cache) = shared
            && !self.was_invalidated(base.as_ref())
            && let Some(bytes) = cache.get(&shared_key(client, base.as_ref())).await
            && let Ok(schema) = serde_json::from_slice::<BaseSchema>(&bytes)
        {
            let schema = Arc::new(schema);
            self.remember(base.as_ref(), &schema);
            return Ok(schema);
        }
        let schema = Arc::new(client.base_schema(base).await?);
        self.remember(base.as_ref(), &schema);
        if let Some(cache) = shared {
            if let Ok(bytes) = serde_json::to_vec(&*schema) {
                cache
                    .put(&shared_key(client, base.as_ref()), bytes, self.ttl)
                    .await;
            }
            if let Ok(mut inv) = self.invalidated.lock() {
                inv.remove(base.as_ref());
            }
        }
        Ok(schema)
    }

    /// Drop a base's entry; returns the schema it held. With a shared cache, its entry is
    /// deleted too (in the background) and not read again before this process refetches.
    pub(crate) fn invalidate(
        &self,
        client: Option<&Client>,
        base: &str,
    ) -> Option<Arc<BaseSchema>> {
        if let Some(client) = client
            && let Some(cache) = client.shared_cache().cloned()
        {
            if let Ok(mut inv) = self.invalidated.lock() {
                inv.insert(base.to_owned());
            }
            let key = shared_key(client, base);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { cache.delete(&key).await });
            }
        }
        let mut entries = self.entries.lock().ok()?;
        entries.remove(base).map(|(_, s)| s)
    }
}
