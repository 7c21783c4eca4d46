//! Record comments: list (newest first, paged), create, update, delete.

use rusqlite::Connection;
use serde_json::{Map, Value, json};

use super::errors::{ApiError, ApiResult};
use super::records::resolve;
use super::store::{self, CommentRow, Db};
use super::util::{decode_index, encode_index, is_id, new_id, now_iso};
use super::{SANDBOX_USER_EMAIL, SANDBOX_USER_ID, SANDBOX_USER_NAME};

fn comment_json(c: &CommentRow) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(c.id));
    m.insert(
        "author".into(),
        json!({"id": SANDBOX_USER_ID, "email": SANDBOX_USER_EMAIL, "name": SANDBOX_USER_NAME}),
    );
    m.insert("text".into(), json!(c.text));
    m.insert("createdTime".into(), json!(c.created_time));
    m.insert("lastUpdatedTime".into(), json!(c.last_updated_time));
    if let Some(p) = &c.parent_id {
        m.insert("parentCommentId".into(), json!(p));
    }
    let mentioned = mentions(&c.text);
    if !mentioned.is_empty() {
        m.insert("mentioned".into(), Value::Object(mentioned));
    }
    Value::Object(m)
}

/// `@[usrXXXXXXXXXXXXXX]` mentions.
fn mentions(text: &str) -> Map<String, Value> {
    let mut out = Map::new();
    let mut rest = text;
    while let Some(i) = rest.find("@[") {
        rest = &rest[i + 2..];
        if let Some(j) = rest.find(']') {
            let id = &rest[..j];
            if is_id("usr", id) {
                let (name, email) = if id == SANDBOX_USER_ID {
                    (SANDBOX_USER_NAME, SANDBOX_USER_EMAIL)
                } else {
                    (id, "")
                };
                out.insert(
                    id.to_string(),
                    json!({"type": "user", "id": id, "displayName": name, "email": email}),
                );
            }
            rest = &rest[j..];
        }
    }
    out
}

/// The record must exist in the table (404 otherwise).
fn check_record(db: &mut Db, base_id: &str, table_key: &str, rec_id: &str) -> ApiResult<()> {
    let (data, table_id) = resolve(db, base_id, table_key)?;
    if data.rec_in(&table_id, rec_id).is_none() {
        return Err(ApiError::not_found());
    }
    db.keep(data);
    Ok(())
}

fn text_of(body: &Value) -> ApiResult<String> {
    body.get("text")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::invalid_request("Invalid request: a comment needs a non-empty \"text\"")
        })
}

pub fn list(
    db: &mut Db,
    base_id: &str,
    table_key: &str,
    rec_id: &str,
    query: &[(String, String)],
) -> ApiResult<Value> {
    check_record(db, base_id, table_key, rec_id)?;
    let mut page = 100usize;
    let mut start = 0usize;
    for (k, v) in query {
        match k.as_str() {
            "pageSize" => {
                page = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid_request(
                            "Invalid request: pageSize must be between 1 and 100",
                        )
                    })?
            }
            "offset" if !v.is_empty() => {
                start = v
                    .strip_prefix("itr")
                    .and_then(decode_index)
                    .ok_or_else(|| {
                        ApiError::unprocessable(
                            "INVALID_OFFSET_VALUE",
                            format!("The value of offset {v} is invalid"),
                        )
                    })? as usize
            }
            _ => {}
        }
    }
    let all = store::list_comments(&db.conn, rec_id)?;
    let start = start.min(all.len());
    let stop = (start + page).min(all.len());
    let comments: Vec<Value> = all[start..stop].iter().map(comment_json).collect();
    let offset = (stop < all.len()).then(|| format!("itr{}", encode_index(stop as u64)));
    Ok(json!({"comments": comments, "offset": offset}))
}

pub fn create(
    db: &mut Db,
    base_id: &str,
    table_key: &str,
    rec_id: &str,
    body: &Value,
) -> ApiResult<Value> {
    check_record(db, base_id, table_key, rec_id)?;
    let tx = db.conn.transaction()?;
    let text = text_of(body)?;
    let parent = match body.get("parentCommentId") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => match store::get_comment(&tx, p)? {
            Some(c) if c.record_id == rec_id => Some(p.clone()),
            _ => {
                return Err(ApiError::invalid_request(format!(
                    "Invalid request: parentCommentId {p} is not a comment of this record"
                )));
            }
        },
        Some(_) => {
            return Err(ApiError::invalid_request(
                "Invalid request: parentCommentId must be a string",
            ));
        }
    };
    let c = CommentRow {
        id: new_id("com"),
        record_id: rec_id.to_string(),
        text,
        parent_id: parent,
        created_time: now_iso(),
        last_updated_time: None,
    };
    store::insert_comment(&tx, &c)?;
    tx.commit()?;
    Ok(comment_json(&c))
}

fn find(conn: &Connection, rec_id: &str, comment_id: &str) -> ApiResult<CommentRow> {
    match store::get_comment(conn, comment_id)? {
        Some(c) if c.record_id == rec_id => Ok(c),
        _ => Err(ApiError::not_found()),
    }
}

pub fn update(
    db: &mut Db,
    base_id: &str,
    table_key: &str,
    rec_id: &str,
    comment_id: &str,
    body: &Value,
) -> ApiResult<Value> {
    check_record(db, base_id, table_key, rec_id)?;
    let tx = db.conn.transaction()?;
    let mut c = find(&tx, rec_id, comment_id)?;
    c.text = text_of(body)?;
    c.last_updated_time = Some(now_iso());
    store::update_comment(&tx, &c)?;
    tx.commit()?;
    Ok(comment_json(&c))
}

pub fn delete(
    db: &mut Db,
    base_id: &str,
    table_key: &str,
    rec_id: &str,
    comment_id: &str,
) -> ApiResult<Value> {
    check_record(db, base_id, table_key, rec_id)?;
    let tx = db.conn.transaction()?;
    let c = find(&tx, rec_id, comment_id)?;
    store::delete_comment(&tx, &c.id)?;
    tx.commit()?;
    Ok(json!({"id": c.id, "deleted": true}))
}
