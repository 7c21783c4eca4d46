//! Base schemas cached with a TTL; the schema tools invalidate a base at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::airtable::{self, BaseId, BaseSchema, Client};

/// A per-client cache of base schemas.
#[derive(Debug)]
pub(crate) struct SchemaCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Arc<BaseSchema>)>>,
}

impl SchemaCache {
    /// An empty cache whose entries live `ttl`.
    pub(crate) fn new(ttl: Duration) -> Self {
        SchemaCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lookup(&self, base: &str) -> Option<Arc<BaseSchema>> {
        let entries = self.entries.lock().ok()?;
        let (at, schema) = entries.get(base)?;
        (at.elapsed() < self.ttl).then(|| schema.clone())
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
        let schema = Arc::new(client.base_schema(base).await?);
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(base.to_string(), (Instant::now(), schema.clone()));
        }
        Ok(schema)
    }

    /// Drop a base's entry; returns the schema it held.
    pub(crate) fn invalidate(&self, base: &str) -> Option<Arc<BaseSchema>> {
        let mut entries = self.entries.lock().ok()?;
        entries.remove(base).map(|(_, s)| s)
    }
}
