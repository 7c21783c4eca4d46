//! A small Airtable-like server on 127.0.0.1:0 for the client tests and the benchmark.
//!
//! It keeps records in memory, logs every request it receives (method, path, raw query, JSON
//! body, arrival time), can be scripted to answer the next requests with given statuses (with
//! or without applying the write first), and can enforce Airtable's rate limit strictly: more
//! than N requests to a base within any 1 s window get 429 and lock the base for a penalty.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
// tokio's clock: the fixture follows the paused clock of `#[tokio::test(start_paused = true)]`.
use tokio::time::Instant;

pub const TOKEN: &str =
    "patFIXTUREtoken01.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const BASE: &str = "appFIXTUREbase001";
pub const BASE2: &str = "appFIXTUREbase002";
pub const CREATED: &str = "2026-01-01T00:00:00.000Z";

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Option<Value>,
    pub at: Instant,
    pub status: u16,
}

impl Seen {
    /// Number of records in the body (`records` array).
    pub fn body_records(&self) -> usize {
        self.body
            .as_ref()
            .and_then(|b| b.get("records"))
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    }
    /// Decoded query pairs.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }
}

/// A scripted answer for the next request.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// Answer this without applying anything.
    Respond {
        status: u16,
        body: String,
        retry_after: Option<String>,
    },
    /// Apply the request normally, then answer with this status and body instead.
    ApplyThenRespond { status: u16, body: String },
    /// Apply the request, then send a 200 head and break the connection mid-body.
    ApplyThenBreak,
    /// Apply the request, then wait this long before answering normally.
    ApplyThenDelay(Duration),
}

impl Scripted {
    pub fn status(status: u16, body: &str) -> Self {
        Scripted::Respond {
            status,
            body: body.to_owned(),
            retry_after: None,
        }
    }
    pub fn error(status: u16, kind: &str, message: &str) -> Self {
        Self::status(
            status,
            &json!({"error": {"type": kind, "message": message}}).to_string(),
        )
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub per_second: usize,
    pub penalty: Duration,
}

#[derive(Default)]
pub struct Inner {
    pub log: Vec<Seen>,
    /// Records by table name, in creation order.
    pub tables: BTreeMap<String, Vec<Value>>,
    pub comments: HashMap<String, Vec<Value>>,
    pub script: VecDeque<Scripted>,
    pub rate_limit: Option<RateLimit>,
    pub arrivals: HashMap<String, VecDeque<Instant>>,
    pub locked_until: HashMap<String, Instant>,
    pub rate_limited: usize,
    next_id: u64,
}

impl Inner {
    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:014}", self.next_id)
    }
}

#[derive(Clone, Default)]
pub struct FixtureState(pub Arc<Mutex<Inner>>);

impl FixtureState {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap()
    }
    pub fn log(&self) -> Vec<Seen> {
        self.lock().log.clone()
    }
    pub fn push_script(&self, s: Scripted) {
        self.lock().script.push_back(s);
    }
    pub fn records(&self, table: &str) -> Vec<Value> {
        self.lock().tables.get(table).cloned().unwrap_or_default()
    }
    /// Insert records directly (not counted as requests).
    pub fn seed(&self, table: &str, rows: Vec<Map<String, Value>>) -> Vec<String> {
        let mut inner = self.lock();
        let mut ids = Vec::new();
        for fields in rows {
            let id = inner.new_id("rec");
            ids.push(id.clone());
            inner
                .tables
                .entry(table.to_owned())
                .or_default()
                .push(json!({"id": id, "createdTime": CREATED, "fields": fields}));
        }
        ids
    }
    pub fn clear_log(&self) {
        self.lock().log.clear();
    }
}

pub struct Fixture {
    pub url: url::Url,
    pub state: FixtureState,
}

impl Fixture {
    pub async fn start() -> Fixture {
        Self::start_with(None).await
    }

    pub async fn start_with(rate_limit: Option<RateLimit>) -> Fixture {
        let state = FixtureState::default();
        state.lock().rate_limit = rate_limit;
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Fixture {
            url: url::Url::parse(&format!("http://{addr}")).unwrap(),
            state,
        }
    }
}

fn json_response(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn raw_response(status: u16, body: String, retry_after: Option<String>) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body,
    )
        .into_response();
    if let Some(ra) = retry_after {
        r.headers_mut().insert("retry-after", ra.parse().unwrap());
    }
    r
}

fn err(status: u16, kind: &str, message: &str) -> Response {
    json_response(status, json!({"error": {"type": kind, "message": message}}))
}

fn base_of(segs: &[String]) -> Option<String> {
    match segs {
        [v0, meta, bases, app, ..] if v0 == "v0" && meta == "meta" && bases == "bases" => {
            Some(app.clone())
        }
        [v0, app, ..] if v0 == "v0" && app.starts_with("app") => Some(app.clone()),
        _ => None,
    }
}

async fn handle(
    State(state): State<FixtureState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = Instant::now();
    let query = uri.query().unwrap_or("").to_owned();
    let body_json: Option<Value> = if body.is_empty() {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };
    let segs: Vec<String> = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let idx = {
        let mut inner = state.lock();
        inner.log.push(Seen {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: query.clone(),
            body: body_json.clone(),
            at: now,
            status: 0,
        });
        inner.log.len() - 1
    };
    let (resp, status) = respond(&state, &method, &segs, &query, &headers, body_json).await;
    state.lock().log[idx].status = status;
    resp
}

async fn respond(
    state: &FixtureState,
    method: &Method,
    segs: &[String],
    query: &str,
    headers: &HeaderMap,
    body: Option<Value>,
) -> (Response, u16) {
    let auth_ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"));
    if !auth_ok {
        return (
            err(401, "AUTHENTICATION_REQUIRED", "Authentication required"),
            401,
        );
    }
    // Strict sliding-window rate limit per base.
    if let Some(base) = base_of(segs) {
        let mut inner = state.lock();
        if let Some(rl) = inner.rate_limit {
            let now = Instant::now();
            let locked = inner.locked_until.get(&base).is_some_and(|t| *t > now);
            let arrivals = inner.arrivals.entry(base.clone()).or_default();
            arrivals.push_back(now);
            while arrivals
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
            {
                arrivals.pop_front();
            }
            let breach = arrivals.len() > rl.per_second;
            if locked || breach {
                if breach && !locked {
                    inner.locked_until.insert(base, now + rl.penalty);
                }
                inner.rate_limited += 1;
                return (
                    err(
                        429,
                        "RATE_LIMIT_REACHED",
                        "Rate limit exceeded. Please try again later",
                    ),
                    429,
                );
            }
        }
    }
    let scripted = state.lock().script.pop_front();
    match scripted {
        Some(Scripted::Respond {
            status,
            body,
            retry_after,
        }) => (raw_response(status, body, retry_after), status),
        Some(Scripted::ApplyThenRespond { status, body: b }) => {
            let _ = route(state, method, segs, query, body);
            (raw_response(status, b, None), status)
        }
        Some(Scripted::ApplyThenBreak) => {
            let _ = route(state, method, segs, query, body);
            let stream = futures::stream::iter(vec![
                Ok::<Bytes, std::io::Error>(Bytes::from_static(b"{\"records\":[")),
                Err(std::io::Error::other("connection broken by the fixture")),
            ]);
            (
                Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(Body::from_stream(stream))
                    .unwrap(),
                200,
            )
        }
        Some(Scripted::ApplyThenDelay(d)) => {
            let (s, v) = route(state, method, segs, query, body);
            tokio::time::sleep(d).await;
            (json_response(s, v), s)
        }
        None => {
            let (s, v) = route(state, method, segs, query, body);
            (json_response(s, v), s)
        }
    }
}

fn schema() -> Value {
    json!({"tables": [{
        "id": "tblFIXTUREtbl0001", "name": "Tasks", "primaryFieldId": "fldFIXTUREfld0001",
        "fields": [
            {"id": "fldFIXTUREfld0001", "name": "Name", "type": "singleLineText"},
            {"id": "fldFIXTUREfld0002", "name": "Status", "type": "singleSelect",
             "options": {"choices": [{"id": "selFIXTUREsel0001", "name": "Todo", "color": "redLight2"}]}},
            {"id": "fldFIXTUREfld0003", "name": "Score", "type": "formula",
             "options": {"formula": "1+1", "isValid": true, "result": {"type": "number"}}}
        ],
        "views": [{"id": "viwFIXTUREviw0001", "name": "Grid view", "type": "grid"}]
    }]})
}

fn pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn project(rec: &Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return rec.clone();
    }
    let mut r = rec.clone();
    if let Some(f) = r.get_mut("fields").and_then(Value::as_object_mut) {
        f.retain(|k, _| fields.contains(k));
    }
    r
}

fn list(inner: &Inner, table: &str, opts: &Map<String, Value>) -> (u16, Value) {
    let rows = inner.tables.get(table).cloned().unwrap_or_default();
    let page_size = opts
        .get("pageSize")
        .and_then(Value::as_u64)
        .unwrap_or(100)
        .min(100) as usize;
    let max = opts
        .get("maxRecords")
        .and_then(Value::as_u64)
        .map_or(usize::MAX, |m| m as usize);
    let start = match opts.get("offset").and_then(Value::as_str) {
        Some(o) => match o.strip_prefix("itrFIXTURE/") {
            Some(n) => n.parse::<usize>().unwrap_or(0),
            None => {
                return (
                    422,
                    json!({"error": {"type": "INVALID_OFFSET_VALUE", "message": format!("The value of offset {o} is invalid")}}),
                );
            }
        },
        None => 0,
    };
    let fields: Vec<String> = opts
        .get("fields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let limit = rows.len().min(max);
    let end = (start + page_size).min(limit);
    let page: Vec<Value> = rows
        .get(start..end)
        .unwrap_or(&[])
        .iter()
        .map(|r| project(r, &fields))
        .collect();
    let mut out = json!({"records": page});
    if end < limit {
        out["offset"] = json!(format!("itrFIXTURE/{end}"));
    }
    (200, out)
}

fn get_query_as_opts(query: &str) -> Map<String, Value> {
    let mut m = Map::new();
    let mut fields = Vec::new();
    for (k, v) in pairs(query) {
        match k.as_str() {
            "pageSize" | "maxRecords" => {
                m.insert(k, json!(v.parse::<u64>().unwrap_or(0)));
            }
            "fields[]" => fields.push(json!(v)),
            _ => {
                m.insert(k, json!(v));
            }
        }
    }
    if !fields.is_empty() {
        m.insert("fields".into(), Value::Array(fields));
    }
    m
}

fn write_fields(existing: &mut Value, fields: &Value, replace: bool) {
    let f = existing["fields"].as_object_mut().unwrap();
    if replace {
        f.clear();
    }
    if let Some(new) = fields.as_object() {
        for (k, v) in new {
            if v.is_null() {
                f.remove(k);
            } else {
                f.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Apply a request to the in-memory store; returns status and JSON body.
fn route(
    state: &FixtureState,
    method: &Method,
    segs: &[String],
    query: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut inner = state.lock();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let body = body.unwrap_or(Value::Null);
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["v0", "meta", "whoami"]) => (
            200,
            json!({"id": "usrFIXTUREusr0001", "email": "fixture@example.com"}),
        ),
        ("GET", ["v0", "meta", "bases"]) => {
            if pairs(query)
                .iter()
                .any(|(k, v)| k == "offset" && v == "page2")
            {
                (
                    200,
                    json!({"bases": [{"id": BASE2, "name": "Second", "permissionLevel": "read"}]}),
                )
            } else {
                (
                    200,
                    json!({"bases": [{"id": BASE, "name": "First", "permissionLevel": "create"}], "offset": "page2"}),
                )
            }
        }
        ("GET", ["v0", "meta", "bases", _, "tables"]) => (200, schema()),
        ("POST", ["v0", "meta", "bases", _, "tables"]) => {
            let mut t = body.clone();
            t["id"] = json!("tblFIXTUREtbl0009");
            let mut fields = t["fields"].as_array().cloned().unwrap_or_default();
            for (i, f) in fields.iter_mut().enumerate() {
                f["id"] = json!(format!("fldFIXTUREnew{i:04}"));
            }
            t["primaryFieldId"] = json!("fldFIXTUREnew0000");
            t["fields"] = Value::Array(fields);
            t["views"] = json!([{"id": "viwFIXTUREviw0009", "name": "Grid view", "type": "grid"}]);
            (200, t)
        }
        ("PATCH", ["v0", "meta", "bases", _, "tables", _]) => {
            let mut t = schema()["tables"][0].clone();
            if let Some(n) = body.get("name") {
                t["name"] = n.clone();
            }
            if let Some(d) = body.get("description") {
                t["description"] = d.clone();
            }
            (200, t)
        }
        ("POST", ["v0", "meta", "bases", _, "tables", _, "fields"]) => {
            let mut f = body.clone();
            f["id"] = json!("fldFIXTUREfld0099");
            (200, f)
        }
        ("PATCH", ["v0", "meta", "bases", _, "tables", _, "fields", fld]) => {
            let mut f = json!({"id": fld, "name": "Name", "type": "singleLineText"});
            if let Some(n) = body.get("name") {
                f["name"] = n.clone();
            }
            if let Some(d) = body.get("description") {
                f["description"] = d.clone();
            }
            (200, f)
        }
        ("GET", ["v0", _app, table]) => {
            let opts = get_query_as_opts(query);
            list(&inner, table, &opts)
        }
        ("POST", ["v0", _app, table, "listRecords"]) => {
            let opts = body.as_object().cloned().unwrap_or_default();
            list(&inner, table, &opts)
        }
        ("POST", ["v0", _app, table]) => {
            let table = table.to_string();
            if let Some(recs) = body.get("records").and_then(Value::as_array) {
                if recs.len() > 10 {
                    return (
                        422,
                        json!({"error": {"type": "INVALID_RECORDS", "message": format!("A maximum of 10 records can be created per request but you have provided {}.", recs.len())}}),
                    );
                }
                let mut out = Vec::new();
                for r in recs {
                    let id = inner.new_id("rec");
                    let rec = json!({"id": id, "createdTime": CREATED, "fields": r.get("fields").cloned().unwrap_or(json!({}))});
                    inner
                        .tables
                        .entry(table.clone())
                        .or_default()
                        .push(rec.clone());
                    out.push(rec);
                }
                (200, json!({"records": out}))
            } else if let Some(f) = body.get("fields") {
                let id = inner.new_id("rec");
                let rec = json!({"id": id, "createdTime": CREATED, "fields": f});
                inner.tables.entry(table).or_default().push(rec.clone());
                (200, rec)
            } else {
                (
                    422,
                    json!({"error": {"type": "INVALID_REQUEST_MISSING_FIELDS", "message": "Could not find field \"fields\" in the request body"}}),
                )
            }
        }
        (m @ ("PATCH" | "PUT"), ["v0", _app, table]) => {
            let replace = m == "PUT";
            let table = table.to_string();
            let recs = body["records"].as_array().cloned().unwrap_or_default();
            if recs.len() > 10 {
                return (
                    422,
                    json!({"error": {"type": "INVALID_RECORDS", "message": "You must provide an array of up to 10 record objects, each with an 'id' ID field and a 'fields' object for cell values."}}),
                );
            }
            let merge: Option<Vec<String>> = body
                .get("performUpsert")
                .and_then(|p| p.get("fieldsToMergeOn"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                });
            let mut out = Vec::new();
            let mut created = Vec::new();
            let mut updated = Vec::new();
            for r in recs {
                let id = r.get("id").and_then(Value::as_str).map(str::to_owned);
                let target = match (&id, &merge) {
                    (Some(id), _) => Some(id.clone()),
                    (None, Some(merge)) => {
                        let rows = inner.tables.get(&table).cloned().unwrap_or_default();
                        let matches: Vec<String> = rows
                            .iter()
                            .filter(|row| {
                                merge
                                    .iter()
                                    .all(|f| row["fields"].get(f) == r["fields"].get(f))
                            })
                            .filter_map(|row| row["id"].as_str().map(str::to_owned))
                            .collect();
                        if matches.len() > 1 {
                            return (
                                422,
                                json!({"error": {"type": "INVALID_REQUEST_UNKNOWN", "message": "multiple matches"}}),
                            );
                        }
                        matches.into_iter().next()
                    }
                    (None, None) => {
                        return (
                            422,
                            json!({"error": {"type": "INVALID_RECORDS", "message": "You must provide an array of up to 10 record objects, each with an 'id' ID field and a 'fields' object for cell values."}}),
                        );
                    }
                };
                match target {
                    Some(tid) => {
                        let rows = inner.tables.entry(table.clone()).or_default();
                        let Some(row) = rows.iter_mut().find(|row| row["id"] == tid) else {
                            return (
                                422,
                                json!({"error": {"type": "ROW_DOES_NOT_EXIST", "message": format!("Record ID {tid} does not exist in this table")}}),
                            );
                        };
                        write_fields(row, &r["fields"], replace);
                        out.push(row.clone());
                        updated.push(tid);
                    }
                    None => {
                        let nid = inner.new_id("rec");
                        let rec = json!({"id": nid, "createdTime": CREATED, "fields": r["fields"].clone()});
                        inner
                            .tables
                            .entry(table.clone())
                            .or_default()
                            .push(rec.clone());
                        out.push(rec);
                        created.push(nid);
                    }
                }
            }
            if merge.is_some() {
                (
                    200,
                    json!({"records": out, "createdRecords": created, "updatedRecords": updated}),
                )
            } else {
                (200, json!({"records": out}))
            }
        }
        ("DELETE", ["v0", _app, table]) => {
            let ids: Vec<String> = pairs(query)
                .into_iter()
                .filter(|(k, _)| k == "records[]")
                .map(|(_, v)| v)
                .collect();
            let rows = inner.tables.entry(table.to_string()).or_default();
            let mut out = Vec::new();
            for id in ids {
                if let Some(pos) = rows.iter().position(|r| r["id"] == id.as_str()) {
                    rows.remove(pos);
                    out.push(json!({"id": id, "deleted": true}));
                } else {
                    return (404, json!({"error": "NOT_FOUND"}));
                }
            }
            (200, json!({"records": out}))
        }
        (m, ["v0", _app, table, rec]) if m != "POST" => {
            let rows = inner.tables.entry(table.to_string()).or_default();
            let Some(pos) = rows.iter().position(|r| r["id"] == *rec) else {
                return (404, json!({"error": "NOT_FOUND"}));
            };
            match m {
                "GET" => (200, rows[pos].clone()),
                "PATCH" | "PUT" => {
                    write_fields(&mut rows[pos], &body["fields"], m == "PUT");
                    (200, rows[pos].clone())
                }
                "DELETE" => {
                    rows.remove(pos);
                    (200, json!({"id": rec, "deleted": true}))
                }
                _ => (404, json!({"error": "NOT_FOUND"})),
            }
        }
        ("GET", ["v0", _app, _table, rec, "comments"]) => {
            let list = inner.comments.get(*rec).cloned().unwrap_or_default();
            (200, json!({"comments": list, "offset": null}))
        }
        ("POST", ["v0", _app, _table, rec, "comments"]) => {
            let id = inner.new_id("com");
            let c = json!({"id": id, "author": {"id": "usrFIXTUREusr0001", "email": "fixture@example.com"},
                           "text": body["text"], "createdTime": CREATED, "lastUpdatedTime": null});
            inner
                .comments
                .entry(rec.to_string())
                .or_default()
                .insert(0, c.clone());
            (200, c)
        }
        ("PATCH", ["v0", _app, _table, rec, "comments", com]) => {
            let list = inner.comments.entry(rec.to_string()).or_default();
            match list.iter_mut().find(|c| c["id"] == *com) {
                Some(c) => {
                    c["text"] = body["text"].clone();
                    c["lastUpdatedTime"] = json!(CREATED);
                    (200, c.clone())
                }
                None => (404, json!({"error": "NOT_FOUND"})),
            }
        }
        ("DELETE", ["v0", _app, _table, rec, "comments", com]) => {
            let list = inner.comments.entry(rec.to_string()).or_default();
            list.retain(|c| c["id"] != *com);
            (200, json!({"id": com, "deleted": true}))
        }
        _ => (404, json!({"error": "NOT_FOUND"})),
    }
}

/// A server that reads one full HTTP request per connection, counts it, and closes the
/// connection without answering (a crash after the request arrived).
pub struct BlackHole {
    pub url: url::Url,
    pub received: Arc<Mutex<Vec<Value>>>,
}

impl BlackHole {
    pub async fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let rec = received.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let rec = rec.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Ok(n) = sock.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= head_end + 4 + len {
                            let body = &buf[head_end + 4..head_end + 4 + len];
                            rec.lock()
                                .unwrap()
                                .push(serde_json::from_slice(body).unwrap_or(Value::Null));
                            let _ = sock.shutdown().await;
                            return;
                        }
                    }
                });
            }
        });
        BlackHole {
            url: url::Url::parse(&format!("http://{addr}")).unwrap(),
            received,
        }
    }
}
