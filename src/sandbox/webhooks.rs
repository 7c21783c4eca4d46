//! The webhooks API: create, list, refresh, delete, enableNotifications and payloads, with
//! payloads in Airtable's v0 shape generated for the sandbox's own record writes.
//!
//! State lives in memory next to the database (under the same lock, so payload order follows
//! write order); it does not survive a restart of the sandbox. Webhooks expire
//! [`SandboxConfig::webhook_lifetime`](super::SandboxConfig) after create or refresh (7 days by
//! default) on a clock tests can move ([`SandboxState::advance_clock`](super::SandboxState)):
//! an expired webhook is disabled and stops collecting, and is deleted 7 days later; payloads
//! are kept 7 days. No notification pings are sent (a `notificationUrl` is accepted and kept).
//! Only `tableData` changes produce payloads; `watchDataInFieldIds` limits changed records
//! (and the cells of created records) to those fields.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

use super::cells::{Data, TableChanges};
use super::errors::{ApiError, ApiResult};
use super::util::{iso, new_id};

/// Webhooks a base may have.
pub const MAX_PER_BASE: usize = 10;
/// Most payloads per page.
pub const MAX_PAGE: usize = 50;
const DATA_TYPES: &[&str] = &["tableData", "tableFields", "tableMetadata"];

struct Hook {
    id: String,
    spec: Value,
    notification_url: Option<String>,
    data_types: Vec<String>,
    scope: Option<String>,
    fields: Option<Vec<String>>,
    previous: bool,
    expires: DateTime<Utc>,
    enabled: bool,
    next_cursor: u64,
    /// (cursor, created at, payload).
    payloads: Vec<(u64, DateTime<Utc>, Value)>,
}

/// Every webhook of the sandbox.
pub struct Hooks {
    lifetime: Duration,
    offset: Duration,
    by_base: BTreeMap<String, Vec<Hook>>,
    transactions: BTreeMap<String, u64>,
}

impl Hooks {
    pub fn new(lifetime: std::time::Duration) -> Hooks {
        Hooks {
            lifetime: Duration::from_std(lifetime).unwrap_or(Duration::days(7)),
            offset: Duration::zero(),
            by_base: BTreeMap::new(),
            transactions: BTreeMap::new(),
        }
    }

    /// Move the webhook clock forward.
    pub fn advance(&mut self, by: std::time::Duration) {
        self.offset += Duration::from_std(by).unwrap_or(Duration::zero());
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }

    /// Expire, delete and drop what the clock says.
    fn sweep(&mut self) {
        let now = self.now();
        let week = Duration::days(7);
        for hooks in self.by_base.values_mut() {
            for h in hooks.iter_mut() {
                if h.enabled && now >= h.expires {
                    h.enabled = false;
                }
                h.payloads.retain(|(_, at, _)| now < *at + week);
            }
            hooks.retain(|h| now < h.expires + week);
        }
    }

    fn hook_mut(&mut self, base: &str, id: &str) -> ApiResult<&mut Hook> {
        self.sweep();
        self.by_base
            .get_mut(base)
            .and_then(|v| v.iter_mut().find(|h| h.id == id))
            .ok_or_else(ApiError::not_found)
    }

    /// `POST /v0/bases/{base}/webhooks`.
    pub fn create(&mut self, data: &Data, body: &Value) -> ApiResult<Value> {
        self.sweep();
        let bad = |m: &str| ApiError::unprocessable("INVALID_REQUEST_UNKNOWN", m.to_owned());
        let obj = body
            .as_object()
            .ok_or_else(|| bad("Invalid request: the body must be a JSON object"))?;
        let notification_url = match obj.get("notificationUrl") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(bad("Invalid request: notificationUrl must be a string")),
        };
        let spec = obj
            .get("specification")
            .filter(|s| s.is_object())
            .ok_or_else(|| bad("Invalid request: specification is required"))?;
        let options = spec
            .get("options")
            .filter(|s| s.is_object())
            .ok_or_else(|| bad("Invalid request: specification.options is required"))?;
        let filters = options
            .get("filters")
            .filter(|s| s.is_object())
            .ok_or_else(|| bad("Invalid request: specification.options.filters is required"))?;
        let data_types: Vec<String> = filters
            .get("dataTypes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if data_types.is_empty() || data_types.iter().any(|t| !DATA_TYPES.contains(&t.as_str())) {
            return Err(bad(
                "Invalid request: filters.dataTypes must be a non-empty array of tableData, tableFields, tableMetadata",
            ));
        }
        let scope = match filters.get("recordChangeScope") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                let known = data
                    .base
                    .tables
                    .iter()
                    .any(|t| t.id == *s || t.views.iter().any(|v| v.id == *s));
                if !known {
                    return Err(bad(&format!(
                        "Invalid request: recordChangeScope {s:?} is not a table or view of this base"
                    )));
                }
                data.base
                    .tables
                    .iter()
                    .find(|t| t.id == *s || t.views.iter().any(|v| v.id == *s))
                    .map(|t| t.id.clone())
            }
            Some(_) => return Err(bad("Invalid request: recordChangeScope must be a string")),
        };
        let fields = match filters.get("watchDataInFieldIds") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for f in a {
                    let f = f.as_str().unwrap_or_default();
                    if data.base.field_by_id(f).is_none() {
                        return Err(bad(&format!(
                            "Invalid request: watchDataInFieldIds holds {f:?}, not a field of this base"
                        )));
                    }
                    out.push(f.to_owned());
                }
                Some(out)
            }
            Some(_) => return Err(bad("Invalid request: watchDataInFieldIds must be an array")),
        };
        let previous = options
            .pointer("/includes/includePreviousCellValues")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let hooks = self.by_base.entry(data.base_id.clone()).or_default();
        if hooks.len() >= MAX_PER_BASE {
            return Err(ApiError::typed(
                StatusCode::UNPROCESSABLE_ENTITY,
                "TOO_MANY_WEBHOOKS",
                format!("A base can have at most {MAX_PER_BASE} webhooks"),
            ));
        }
        let now = Utc::now() + self.offset;
        let expires = now + self.lifetime;
        let id = new_id("ach");
        let secret: [u8; 32] = rand::random();
        hooks.push(Hook {
            id: id.clone(),
            spec: spec.clone(),
            notification_url,
            data_types,
            scope,
            fields,
            previous,
            expires,
            enabled: true,
            next_cursor: 1,
            payloads: Vec::new(),
        });
        use base64::Engine as _;
        Ok(json!({
            "id": id,
            "macSecretBase64": base64::engine::general_purpose::STANDARD.encode(secret),
            "expirationTime": iso(expires),
        }))
    }

    /// `GET /v0/bases/{base}/webhooks`.
    pub fn list(&mut self, base: &str) -> Value {
        self.sweep();
        let hooks: Vec<Value> = self
            .by_base
            .get(base)
            .map(|v| {
                v.iter()
                    .map(|h| {
                        json!({
                            "id": h.id,
                            "areNotificationsEnabled": false,
                            "cursorForNextPayload": h.next_cursor,
                            "isHookEnabled": h.enabled,
                            "lastSuccessfulNotificationTime": null,
                            "notificationUrl": h.notification_url,
                            "expirationTime": iso(h.expires),
                            "lastNotificationResult": null,
                            "specification": h.spec,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        json!({ "webhooks": hooks })
    }

    /// `DELETE …/webhooks/{id}`.
    pub fn delete(&mut self, base: &str, id: &str) -> ApiResult<Value> {
        self.hook_mut(base, id)?;
        if let Some(v) = self.by_base.get_mut(base) {
            v.retain(|h| h.id != id);
        }
        Ok(json!({}))
    }

    /// `POST …/webhooks/{id}/refresh`: only an active webhook.
    pub fn refresh(&mut self, base: &str, id: &str) -> ApiResult<Value> {
        let lifetime = self.lifetime;
        let now = self.now();
        let h = self.hook_mut(base, id)?;
        if !h.enabled {
            return Err(ApiError::unprocessable(
                "INVALID_REQUEST_UNKNOWN",
                "This webhook has expired (or is disabled) and cannot be refreshed; create a new one",
            ));
        }
        h.expires = now + lifetime;
        Ok(json!({ "expirationTime": iso(h.expires) }))
    }

    /// `POST …/webhooks/{id}/enableNotifications` (no pings are ever sent).
    pub fn enable_notifications(&mut self, base: &str, id: &str) -> ApiResult<Value> {
        self.hook_mut(base, id)?;
        Ok(json!({}))
    }

    /// `GET …/webhooks/{id}/payloads?cursor=&limit=`; extends an active webhook's life.
    pub fn payloads(&mut self, base: &str, id: &str, q: &[(String, String)]) -> ApiResult<Value> {
        let bad = |m: String| ApiError::unprocessable("INVALID_REQUEST_UNKNOWN", m);
        let mut cursor = 1u64;
        let mut limit = MAX_PAGE;
        for (k, v) in q {
            match k.as_str() {
                "cursor" => {
                    cursor = v.parse().ok().filter(|c| *c >= 1).ok_or_else(|| {
                        bad(format!(
                            "Invalid request: cursor {v:?} is not a positive integer"
                        ))
                    })?;
                }
                "limit" => {
                    limit = v
                        .parse()
                        .ok()
                        .filter(|l| (1..=MAX_PAGE).contains(l))
                        .ok_or_else(|| {
                            bad(format!(
                                "Invalid request: limit must be from 1 to {MAX_PAGE}"
                            ))
                        })?;
                }
                _ => {}
            }
        }
        let lifetime = self.lifetime;
        let now = self.now();
        let h = self.hook_mut(base, id)?;
        if h.enabled {
            h.expires = now + lifetime;
        }
        let rest: Vec<&(u64, DateTime<Utc>, Value)> =
            h.payloads.iter().filter(|(c, _, _)| *c >= cursor).collect();
        let page: Vec<Value> = rest.iter().take(limit).map(|(_, _, p)| p.clone()).collect();
        let next = rest
            .get(page.len().saturating_sub(1))
            .filter(|_| !page.is_empty())
            .map_or(cursor, |(c, _, _)| c + 1);
        Ok(json!({
            "payloads": page,
            "cursor": next,
            "mightHaveMore": rest.len() > page.len(),
        }))
    }

    /// One write transaction of `data`'s base changed records: a payload for each enabled
    /// `tableData` webhook the changes concern.
    pub fn record(&mut self, data: &Data, changes: &[TableChanges]) {
        if changes.is_empty() || !self.by_base.contains_key(&data.base_id) {
            return;
        }
        self.sweep();
        let now = self.now();
        let txn = {
            let n = self.transactions.entry(data.base_id.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let Some(hooks) = self.by_base.get_mut(&data.base_id) else {
            return;
        };
        for h in hooks.iter_mut() {
            if !h.enabled || !h.data_types.iter().any(|t| t == "tableData") {
                continue;
            }
            let mut tables = Map::new();
            for t in changes {
                if h.scope.as_ref().is_some_and(|s| *s != t.table_id) {
                    continue;
                }
                if let Some(v) = table_payload(data, t, h.fields.as_deref(), h.previous) {
                    tables.insert(t.table_id.clone(), v);
                }
            }
            if tables.is_empty() {
                continue;
            }
            let payload = json!({
                "timestamp": iso(now),
                "baseTransactionNumber": txn,
                "payloadFormat": "v0",
                "actionMetadata": {
                    "source": "publicApi",
                    "sourceMetadata": {"user": {
                        "id": super::SANDBOX_USER_ID,
                        "email": super::SANDBOX_USER_EMAIL,
                        "permissionLevel": "create",
                        "name": super::SANDBOX_USER_NAME,
                    }},
                },
                "changedTablesById": tables,
            });
            h.payloads.push((h.next_cursor, now, payload));
            h.next_cursor += 1;
        }
    }
}

/// A cell in the webhook (V2) format: selects as `{id, name, color}`, links as `{id}`.
fn v2(data: &Data, field_id: &str, v: &Value) -> Value {
    let Some((_, f)) = data.base.field_by_id(field_id) else {
        return v.clone();
    };
    let choice = |name: &Value| -> Value {
        let found = f
            .opt("choices")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c.get("name") == Some(name)));
        match found {
            Some(c) => {
                let mut m = Map::new();
                for k in ["id", "name", "color"] {
                    if let Some(x) = c.get(k) {
                        m.insert(k.to_owned(), x.clone());
                    }
                }
                Value::Object(m)
            }
            None => json!({ "name": name }),
        }
    };
    match (f.ftype.as_str(), v) {
        ("singleSelect", Value::String(_)) => choice(v),
        ("multipleSelects", Value::Array(a)) => Value::Array(a.iter().map(choice).collect()),
        ("multipleRecordLinks", Value::Array(a)) => Value::Array(
            a.iter()
                .map(|id| match id {
                    Value::String(_) => json!({ "id": id }),
                    other => other.clone(),
                })
                .collect(),
        ),
        _ => v.clone(),
    }
}

fn table_payload(
    data: &Data,
    t: &TableChanges,
    fields: Option<&[String]>,
    previous: bool,
) -> Option<Value> {
    let watched = |fid: &str| fields.is_none_or(|w| w.iter().any(|x| x == fid));
    let mut out = Map::new();
    let mut created = Map::new();
    for (id, at, cells) in &t.created {
        let cells: Map<String, Value> = cells
            .iter()
            .filter(|(k, _)| watched(k))
            .map(|(k, v)| (k.clone(), v2(data, k, v)))
            .collect();
        created.insert(
            id.clone(),
            json!({"cellValuesByFieldId": cells, "createdTime": at}),
        );
    }
    let mut changed = Map::new();
    for (id, before, after) in &t.changed {
        let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
        keys.sort();
        keys.dedup();
        let (mut cur, mut prev) = (Map::new(), Map::new());
        for k in keys {
            if before.get(k) == after.get(k) || !watched(k) {
                continue;
            }
            let val = |c: Option<&Value>| c.map_or(Value::Null, |v| v2(data, k, v));
            cur.insert(k.clone(), val(after.get(k)));
            prev.insert(k.clone(), val(before.get(k)));
        }
        if cur.is_empty() {
            continue;
        }
        let mut rec = json!({"current": {"cellValuesByFieldId": cur}});
        if previous && let Value::Object(m) = &mut rec {
            m.insert("previous".into(), json!({"cellValuesByFieldId": prev}));
        }
        changed.insert(id.clone(), rec);
    }
    if !created.is_empty() {
        out.insert("createdRecordsById".into(), Value::Object(created));
    }
    if !changed.is_empty() {
        out.insert("changedRecordsById".into(), Value::Object(changed));
    }
    if !t.deleted.is_empty() {
        out.insert("destroyedRecordIds".into(), json!(t.deleted));
    }
    (!out.is_empty()).then_some(Value::Object(out))
}
