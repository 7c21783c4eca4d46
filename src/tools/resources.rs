//! MCP resources: the schema of each base and of each table, as compact JSON.
//!
//! - `airtable://bases/{base_id}/schema`: the base's tables with their fields (ID, name, type)
//!   and views.
//! - `airtable://bases/{base_id}/tables/{table_id}/schema`: one table (by ID or name, the name
//!   percent-encoded) with field options and descriptions, like get_field_info.
//!
//! Listing reads the visible bases (one request) and, per page of [`PAGE_BASES`] bases, each
//! base's schema (one request a base, cached). Reads go through the same schema cache as the
//! tools. [`Watchers`] holds the sessions that subscribed (legacy `resources/subscribe` peers
//! and 2026 `subscriptions/listen` sinks); [`ToolContext::invalidate_schema`] tells it which
//! base changed and it pushes `notifications/resources/updated` (and `list_changed` when the
//! base's tables changed) to the subscribers of that token.
//!
//! The MCP Apps views (`ui://airtable/...`, [`crate::tools::apps`]) are listed first on the
//! first page and read through [`read`] too.
//!
//! [`ToolContext::invalidate_schema`]: crate::tools::context::ToolContext

use std::sync::{Arc, Mutex};

use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use rmcp::ErrorData;
use rmcp::RoleServer;
use rmcp::model::{
    CacheScope, ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ResourceUpdatedNotificationParam,
};
use rmcp::service::{Peer, SubscriptionSink};
use serde_json::{Value, json};

use crate::airtable::{BaseSchema, Table};
use crate::tools::ToolError;
use crate::tools::bases::{FieldOut, primary_name, views_of};
use crate::tools::context::ToolContext;
use crate::tools::validation::resolve_table;

/// Bases per resources/list page (each costs one schema read when not cached).
pub(crate) const PAGE_BASES: usize = 5;
/// How long a client may treat a resources list or read as fresh (2026 `ttlMs`).
pub(crate) const RESOURCE_TTL_MS: u64 = 60_000;
const MIME: &str = "application/json";

/// The URI of a base's schema.
pub(crate) fn base_uri(base: &str) -> String {
    format!("airtable://bases/{base}/schema")
}

/// The URI of a table's schema (`table` is an ID or a name; names are percent-encoded).
pub(crate) fn table_uri(base: &str, table: &str) -> String {
    let table = utf8_percent_encode(table, NON_ALPHANUMERIC);
    format!("airtable://bases/{base}/tables/{table}/schema")
}

/// A parsed resource URI.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SchemaUri {
    Base(String),
    Table(String, String),
}

/// Parse `airtable://bases/{base}/schema` or `airtable://bases/{base}/tables/{table}/schema`.
pub(crate) fn parse_uri(uri: &str) -> Option<SchemaUri> {
    let rest = uri.strip_prefix("airtable://bases/")?;
    let rest = rest.strip_suffix("/schema")?;
    match rest.split_once("/tables/") {
        None if !rest.is_empty() && !rest.contains('/') => Some(SchemaUri::Base(rest.to_owned())),
        Some((base, table)) if !base.is_empty() && !table.is_empty() && !table.contains('/') => {
            let table = percent_decode_str(table).decode_utf8().ok()?.into_owned();
            Some(SchemaUri::Table(base.to_owned(), table))
        }
        _ => None,
    }
}

/// The resource templates (resources/templates/list).
pub(crate) fn templates() -> ListResourceTemplatesResult {
    let base = ResourceTemplate::new("airtable://bases/{base_id}/schema", "base_schema")
        .with_title("Base schema")
        .with_description("A base's tables, fields (ID, name, type) and views.")
        .with_mime_type(MIME);
    let table = ResourceTemplate::new(
        "airtable://bases/{base_id}/tables/{table_id}/schema",
        "table_schema",
    )
    .with_title("Table schema")
    .with_description("One table (ID or name) with field options, descriptions and views.")
    .with_mime_type(MIME);
    let watch = ResourceTemplate::new("airtable://watches/{watch_id}", "watch")
        .with_title("Table watch")
        .with_description(
            "A change feed (watch_table): its state and pending changes; subscribe for updates.",
        )
        .with_mime_type(MIME);
    ListResourceTemplatesResult::with_all_items(vec![base, table, watch])
        .with_ttl_ms(RESOURCE_TTL_MS)
        .with_cache_scope(CacheScope::Public)
}

fn err(e: ToolError) -> ErrorData {
    match e {
        ToolError::Invalid(_) | ToolError::InvalidId { .. } | ToolError::BaseNotAllowed { .. } => {
            ErrorData::resource_not_found(e.text(), None)
        }
        ToolError::Api { ref source, .. } if matches!(source.status(), Some(403 | 404)) => {
            ErrorData::resource_not_found(e.text(), None)
        }
        other => ErrorData::internal_error(other.text(), None),
    }
}

/// resources/list: the visible bases' schemas and their tables', [`PAGE_BASES`] bases a page.
pub(crate) async fn list(
    ctx: &ToolContext,
    cursor: Option<&str>,
) -> Result<ListResourcesResult, ErrorData> {
    let start = match cursor {
        None => 0,
        Some(c) => c
            .parse::<usize>()
            .map_err(|_| ErrorData::invalid_params(format!("bad cursor {c:?}"), None))?,
    };
    let client = ctx.client().map_err(err)?;
    let bases = client.list_bases().await.map_err(|e| {
        err(ToolError::Api {
            op: "list bases",
            base: None,
            scope: crate::tools::result::scope::SCHEMA_READ,
            source: Box::new(e),
        })
    })?;
    let visible: Vec<_> = bases
        .into_iter()
        .filter(|b| ctx.base_visible(b.id.as_ref()))
        .collect();
    // The MCP Apps views (tools::apps) open the first page.
    let mut items = if start == 0 {
        crate::tools::apps::resources()
    } else {
        Vec::new()
    };
    for b in visible.iter().skip(start).take(PAGE_BASES) {
        let id = b.id.to_string();
        items.push(
            Resource::new(base_uri(&id), format!("{} schema", b.name))
                .with_description(format!("Tables, fields and views of base {}", b.name))
                .with_mime_type(MIME),
        );
        // A base whose schema cannot be read is still listed; its tables are not.
        if let Ok(schema) = ctx.schema(&b.id).await {
            for t in &schema.tables {
                items.push(
                    Resource::new(
                        table_uri(&id, t.id.as_ref()),
                        format!("{} / {}", b.name, t.name),
                    )
                    .with_description(format!("Fields and views of table {}", t.name))
                    .with_mime_type(MIME),
                );
            }
        }
    }
    let mut result = ListResourcesResult::with_all_items(items)
        .with_ttl_ms(RESOURCE_TTL_MS)
        .with_cache_scope(CacheScope::Private);
    if start + PAGE_BASES < visible.len() {
        result.next_cursor = Some((start + PAGE_BASES).to_string());
    }
    Ok(result)
}

fn table_json(t: &Table, detail: bool) -> Value {
    json!({
        "id": t.id.to_string(),
        "name": t.name,
        "description": t.description.as_deref().filter(|d| !d.is_empty()),
        "primary_field": primary_name(t),
        "fields": t.fields.iter().map(|f| FieldOut::from_field(f, detail)).collect::<Vec<_>>(),
        "views": views_of(t),
    })
}

fn base_json(base: &str, schema: &BaseSchema) -> Value {
    json!({
        "base_id": base,
        "tables": schema.tables.iter().map(|t| table_json(t, false)).collect::<Vec<_>>(),
    })
}

/// Whether `uri` names a resource of this server (a schema or a watch).
pub(crate) fn is_known_uri(uri: &str) -> bool {
    parse_uri(uri).is_some() || crate::tools::watch::parse_watch_uri(uri).is_some()
}

/// resources/read of a schema URI (a table by ID or name), a watch URI, or an MCP Apps view
/// (`ui://`).
pub(crate) async fn read(ctx: &ToolContext, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    if crate::tools::apps::is_view_uri(uri) {
        return crate::tools::apps::read(uri).ok_or_else(|| {
            ErrorData::resource_not_found(format!("unknown view {uri:?}; see resources/list"), None)
        });
    }
    if let Some(id) = crate::tools::watch::parse_watch_uri(uri) {
        let value = crate::tools::watch::read_resource(ctx, id)
            .await
            .map_err(err)?;
        return Ok(ReadResourceResult::new(vec![
            ResourceContents::text(value.to_string(), uri).with_mime_type(MIME),
        ])
        .with_cache_scope(CacheScope::Private));
    }
    let parsed = parse_uri(uri).ok_or_else(|| {
        ErrorData::resource_not_found(
            format!("unknown resource {uri:?}; see resources/templates/list"),
            None,
        )
    })?;
    let (base_id, table) = match parsed {
        SchemaUri::Base(b) => (b, None),
        SchemaUri::Table(b, t) => (b, Some(t)),
    };
    let base = ctx.base(&base_id).map_err(err)?;
    let schema = ctx.schema(&base).await.map_err(err)?;
    let value = match table {
        None => base_json(base.as_ref(), &schema),
        Some(t) => {
            let table = resolve_table(&schema, base.as_ref(), &t).map_err(err)?;
            let mut v = table_json(table, true);
            if let Value::Object(m) = &mut v {
                m.insert("base_id".into(), json!(base.as_ref()));
            }
            v
        }
    };
    let mut value = value;
    if ctx.options().sanitize {
        crate::tools::sanitize::strip_value(&mut value);
    }
    let text = compact(value, ctx.budget());
    Ok(
        ReadResourceResult::new(vec![ResourceContents::text(text, uri).with_mime_type(MIME)])
            .with_ttl_ms(RESOURCE_TTL_MS)
            .with_cache_scope(CacheScope::Private),
    )
}

/// Compact JSON without nulls, within `budget` bytes: past it, field options and descriptions
/// are dropped (`"truncated": true` says so; get_field_info has them table by table).
fn compact(mut value: Value, budget: usize) -> String {
    fn strip_nulls(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|_, x| !x.is_null());
                m.values_mut().for_each(strip_nulls);
            }
            Value::Array(a) => a.iter_mut().for_each(strip_nulls),
            _ => {}
        }
    }
    fn strip_detail(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("options");
                m.remove("description");
                m.values_mut().for_each(strip_detail);
            }
            Value::Array(a) => a.iter_mut().for_each(strip_detail),
            _ => {}
        }
    }
    strip_nulls(&mut value);
    let text = value.to_string();
    if text.len() <= budget {
        return text;
    }
    strip_detail(&mut value);
    if let Value::Object(m) = &mut value {
        m.insert("truncated".into(), Value::Bool(true));
    }
    value.to_string()
}

/// The sessions subscribed to schema resources, shared by every session of a server process.
/// Each entry carries the principal (token fingerprint) of its session: a change made with one
/// token is announced only to sessions of that token.
#[derive(Default)]
pub(crate) struct Watchers {
    inner: Mutex<Inner>,
    /// The change feed's store, clients and poller (`tools::watch`), whose updates go to the
    /// same subscribers.
    feed: crate::tools::watch::Feed,
}

#[derive(Default)]
struct Inner {
    /// Legacy `resources/subscribe`: (principal, uri, peer).
    legacy: Vec<(Arc<str>, String, Peer<RoleServer>)>,
    /// 2026 `subscriptions/listen`: (id, principal, sink).
    sinks: Vec<(u64, Arc<str>, SubscriptionSink)>,
    next: u64,
}

impl std::fmt::Debug for Watchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchers").finish_non_exhaustive()
    }
}

impl Watchers {
    /// A legacy subscription (resources/subscribe).
    pub(crate) fn subscribe(&self, principal: Arc<str>, uri: String, peer: Peer<RoleServer>) {
        if let Ok(mut inner) = self.inner.lock() {
            inner
                .legacy
                .retain(|(p, u, _)| !(p == &principal && u == &uri));
            inner.legacy.push((principal, uri, peer));
        }
    }

    /// Drop a legacy subscription (resources/unsubscribe).
    pub(crate) fn unsubscribe(&self, principal: &str, uri: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            inner
                .legacy
                .retain(|(p, u, _)| !(p.as_ref() == principal && u == uri));
        }
    }

    /// A 2026 subscription stream; returns its key for [`Watchers::remove_sink`].
    pub(crate) fn add_sink(&self, principal: Arc<str>, sink: SubscriptionSink) -> u64 {
        let Ok(mut inner) = self.inner.lock() else {
            return u64::MAX;
        };
        inner.next += 1;
        let id = inner.next;
        inner.sinks.push((id, principal, sink));
        id
    }

    /// The 2026 subscription stream ended.
    pub(crate) fn remove_sink(&self, id: u64) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.sinks.retain(|(i, _, _)| *i != id);
        }
    }

    /// The change feed (watches and their poller).
    pub(crate) fn feed(&self) -> &crate::tools::watch::Feed {
        &self.feed
    }

    /// `uri` changed (a watch got new changes): tell the sessions of `principal` subscribed to
    /// it (legacy subscriptions to that URI, and 2026 streams that accepted it).
    pub(crate) fn resource_updated(&self, principal: &str, uri: &str) {
        let (legacy, sinks) = {
            let Ok(mut inner) = self.inner.lock() else {
                return;
            };
            inner
                .legacy
                .retain(|(_, _, peer)| !peer.is_transport_closed());
            let legacy: Vec<Peer<RoleServer>> = (inner.legacy.iter())
                .filter(|(p, u, _)| p.as_ref() == principal && u == uri)
                .map(|(_, _, peer)| peer.clone())
                .collect();
            let sinks: Vec<SubscriptionSink> = (inner.sinks.iter())
                .filter(|(_, p, s)| {
                    p.as_ref() == principal
                        && (s.accepted().resource_subscriptions.iter())
                            .flatten()
                            .any(|u| u == uri)
                })
                .map(|(_, _, s)| s.clone())
                .collect();
            (legacy, sinks)
        };
        if legacy.is_empty() && sinks.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let uri = uri.to_owned();
        runtime.spawn(async move {
            for peer in legacy {
                let param = ResourceUpdatedNotificationParam::new(uri.clone());
                if let Err(e) = peer.notify_resource_updated(param).await {
                    tracing::debug!("resource update notification not sent: {e}");
                }
            }
            for sink in sinks {
                let _ = sink.notify_resource_updated(uri.clone()).await;
            }
        });
    }

    /// Whether anyone of `principal` listens to changes of `base`.
    fn targets(
        &self,
        principal: &str,
        base: &str,
    ) -> (Vec<(String, Peer<RoleServer>)>, Vec<SubscriptionSink>) {
        let prefix = format!("airtable://bases/{base}/");
        let Ok(mut inner) = self.inner.lock() else {
            return (Vec::new(), Vec::new());
        };
        // Sessions that ended without unsubscribing are dropped here.
        inner
            .legacy
            .retain(|(_, _, peer)| !peer.is_transport_closed());
        let legacy = (inner.legacy.iter())
            .filter(|(p, u, _)| p.as_ref() == principal && u.starts_with(&prefix))
            .map(|(_, u, peer)| (u.clone(), peer.clone()))
            .collect();
        let sinks = (inner.sinks.iter())
            .filter(|(_, p, _)| p.as_ref() == principal)
            .map(|(_, _, s)| s.clone())
            .collect();
        (legacy, sinks)
    }

    /// `base`'s schema changed (a schema tool wrote it): tell its subscribers. `old` is the
    /// schema cached before the change (None = unknown); when the table list differs from the
    /// new schema's (read once, through the cache), `list_changed` goes out too.
    pub(crate) fn schema_changed(&self, ctx: &ToolContext, base: &str, old: Option<Vec<String>>) {
        let (legacy, sinks) = self.targets(ctx.principal(), base);
        if legacy.is_empty() && sinks.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let ctx = ctx.clone();
        let base = base.to_owned();
        runtime.spawn(async move {
            let new_tables = match ctx.base(&base) {
                Ok(b) => ctx.schema(&b).await.ok().map(|s| table_ids(&s)),
                Err(_) => None,
            };
            let list_changed = old.is_none() || new_tables.is_none() || old != new_tables;
            let prefix = format!("airtable://bases/{base}/");
            for (uri, peer) in legacy {
                let param = ResourceUpdatedNotificationParam::new(uri);
                if let Err(e) = peer.notify_resource_updated(param).await {
                    tracing::debug!("resource update notification not sent: {e}");
                }
                if list_changed {
                    let _ = peer.notify_resource_list_changed().await;
                }
            }
            for sink in sinks {
                let uris: Vec<String> = (sink.accepted().resource_subscriptions.iter())
                    .flatten()
                    .filter(|u| u.starts_with(&prefix))
                    .cloned()
                    .collect();
                for uri in uris {
                    let _ = sink.notify_resource_updated(uri).await;
                }
                if list_changed && sink.accepted().resources_list_changed == Some(true) {
                    let _ = sink.notify_resource_list_changed().await;
                }
            }
        });
    }
}

/// The table IDs of a schema (to tell whether tables were added or removed).
pub(crate) fn table_ids(schema: &BaseSchema) -> Vec<String> {
    schema.tables.iter().map(|t| t.id.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip() {
        assert_eq!(
            parse_uri(&base_uri("appX")),
            Some(SchemaUri::Base("appX".into()))
        );
        assert_eq!(
            parse_uri(&table_uri("appX", "My table/1")),
            Some(SchemaUri::Table("appX".into(), "My table/1".into()))
        );
        assert_eq!(parse_uri("airtable://bases//schema"), None);
        assert_eq!(parse_uri("airtable://bases/appX/tables//schema"), None);
        assert_eq!(parse_uri("https://example.com"), None);
    }

    #[test]
    fn compact_drops_detail_past_budget() {
        let v = json!({"fields": [{"name": "a", "options": {"x": "y".repeat(100)}, "description": null}]});
        assert_eq!(
            compact(v.clone(), 10_000),
            r#"{"fields":[{"name":"a","options":{"x":"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"}}]}"#
        );
        assert_eq!(
            compact(v, 50),
            r#"{"fields":[{"name":"a"}],"truncated":true}"#
        );
    }
}
