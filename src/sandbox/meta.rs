//! The metadata API: whoami, bases, base schema, tables and fields.

use rusqlite::Connection;
use serde_json::{Value, json};

use super::errors::{ApiError, ApiResult};
use super::schema::{self, Base, FieldMeta};
use super::store;
use super::util::{decode_index, encode_index, is_id, new_id};

/// `GET /v0/meta/bases`: 1000 a page (a `pageSize` query parameter, a sandbox extension,
/// makes pages smaller for tests).
pub fn list_bases(conn: &Connection, owner: &str, query: &[(String, String)]) -> ApiResult<Value> {
    let mut page = 1000usize;
    let mut start = 0usize;
    for (k, v) in query {
        match k.as_str() {
            "pageSize" => {
                page = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid_request("Invalid request: pageSize must be 1..1000")
                    })?
            }
            "offset" if !v.is_empty() => {
                start = v
                    .split_once('/')
                    .and_then(|(itr, app)| {
                        let i = decode_index(itr.strip_prefix("itr")?)?;
                        is_id("app", app).then_some(i as usize)
                    })
                    .ok_or_else(|| {
                        ApiError::unprocessable(
                            "INVALID_OFFSET_VALUE",
                            format!("The value of offset {v} is invalid"),
                        )
                    })?
            }
            _ => {}
        }
    }
    let all = store::list_bases(conn, owner)?;
    let start = start.min(all.len());
    let stop = (start + page).min(all.len());
    let bases: Vec<Value> = all[start..stop]
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name, "permissionLevel": "create"}))
        .collect();
    let mut out = json!({"bases": bases});
    if let Some((next, _)) = all.get(stop) {
        out["offset"] = json!(format!("itr{}/{}", encode_index(stop as u64), next));
    }
    Ok(out)
}

fn load(conn: &Connection, base_id: &str) -> ApiResult<Base> {
    store::load_base(conn, base_id)?.ok_or_else(ApiError::model_not_found)
}

pub fn base_schema(
    conn: &Connection,
    base_id: &str,
    query: &[(String, String)],
) -> ApiResult<Value> {
    let base = load(conn, base_id)?;
    let mut visible = false;
    for (k, v) in query {
        if (k == "include" || k == "include[]" || k.starts_with("include["))
            && v == "visibleFieldIds"
        {
            visible = true;
        }
    }
    Ok(base.to_json(visible))
}

pub fn create_base(conn: &mut Connection, body: &Value, owner: &str) -> ApiResult<Value> {
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid_request("Invalid request: the base needs a name"))?;
    let tables = body
        .get("tables")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            ApiError::invalid_request("Invalid request: a base needs at least one table")
        })?;
    let tx = conn.transaction()?;
    let id = new_id("app");
    store::insert_base(&tx, &id, name)?;
    store::set_base_owner(&tx, &id, owner)?;
    for t in tables {
        add_table(&tx, &id, t)?;
    }
    tx.commit()?;
    let base = load(conn, &id)?;
    let mut out = base.to_json(false);
    out["id"] = json!(id);
    Ok(out)
}

/// Insert a table (and the inverse link fields it implies); returns its ID.
pub fn add_table(conn: &Connection, base_id: &str, spec: &Value) -> ApiResult<String> {
    let base = load(conn, base_id)?;
    let (table, inverses) = schema::new_table(&base, spec)?;
    store::insert_table(conn, base_id, &table)?;
    for (tid, f) in inverses {
        store::insert_field(conn, &tid, &f)?;
    }
    Ok(table.id)
}

pub fn create_table(conn: &mut Connection, base_id: &str, body: &Value) -> ApiResult<Value> {
    let tx = conn.transaction()?;
    let id = add_table(&tx, base_id, body)?;
    tx.commit()?;
    let base = load(conn, base_id)?;
    base.table_by_id(&id)
        .map(|t| t.to_json(false))
        .ok_or_else(ApiError::model_not_found)
}

fn description(v: Option<&Value>) -> ApiResult<Option<Option<String>>> {
    match v {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if s.chars().count() <= 20_000 => {
            Ok(Some((!s.is_empty()).then(|| s.clone())))
        }
        Some(_) => Err(ApiError::invalid_request(
            "Invalid request: description must be a string of at most 20,000 characters",
        )),
    }
}

pub fn update_table(
    conn: &mut Connection,
    base_id: &str,
    table_key: &str,
    body: &Value,
) -> ApiResult<Value> {
    let tx = conn.transaction()?;
    let base = load(&tx, base_id)?;
    let mut t = base
        .table(table_key)
        .cloned()
        .ok_or_else(ApiError::model_not_found)?;
    let name = body.get("name");
    let desc = description(body.get("description"))?;
    if name.is_none() && desc.is_none() {
        return Err(ApiError::invalid_request(
            "Invalid request: at least one of name or description must be specified",
        ));
    }
    if let Some(n) = name {
        let n = n
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ApiError::invalid_request("Invalid request: name must be a non-empty string")
            })?;
        if base
            .tables
            .iter()
            .any(|o| o.id != t.id && o.name.eq_ignore_ascii_case(n))
        {
            return Err(ApiError::unprocessable(
                "DUPLICATE_TABLE_NAME",
                format!("A table named \"{n}\" already exists in this base"),
            ));
        }
        t.name = n.to_string();
    }
    if let Some(d) = desc {
        t.description = d;
    }
    store::update_table(&tx, &t)?;
    tx.commit()?;
    Ok(t.to_json(false))
}

pub fn create_field(
    conn: &mut Connection,
    base_id: &str,
    table_key: &str,
    body: &Value,
) -> ApiResult<Value> {
    let tx = conn.transaction()?;
    let base = load(&tx, base_id)?;
    let t = base
        .table(table_key)
        .cloned()
        .ok_or_else(ApiError::model_not_found)?;
    let nf = schema::new_field(&base, &t.id, &t.name, &t.fields, body)?;
    store::insert_field(&tx, &t.id, &nf.field)?;
    if let Some((tid, inv)) = &nf.inverse {
        store::insert_field(&tx, tid, inv)?;
    }
    tx.commit()?;
    Ok(nf.field.to_json())
}

pub fn update_field(
    conn: &mut Connection,
    base_id: &str,
    table_key: &str,
    field_key: &str,
    body: &Value,
) -> ApiResult<Value> {
    let tx = conn.transaction()?;
    let base = load(&tx, base_id)?;
    let t = base
        .table(table_key)
        .cloned()
        .ok_or_else(ApiError::model_not_found)?;
    let mut f: FieldMeta = t
        .field(field_key)
        .cloned()
        .ok_or_else(ApiError::model_not_found)?;
    let name = body.get("name");
    let desc = description(body.get("description"))?;
    if name.is_none() && desc.is_none() {
        return Err(ApiError::invalid_request(
            "Invalid request: at least one of name or description must be specified",
        ));
    }
    if let Some(n) = name {
        let n = n
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "DUPLICATE_OR_EMPTY_FIELD_NAME",
                    "Field names must be non-empty",
                )
            })?;
        if t.fields
            .iter()
            .any(|o| o.id != f.id && o.name.eq_ignore_ascii_case(n))
        {
            return Err(ApiError::unprocessable(
                "DUPLICATE_OR_EMPTY_FIELD_NAME",
                format!("Duplicate field name: \"{n}\""),
            ));
        }
        f.name = n.to_string();
    }
    if let Some(d) = desc {
        f.description = d;
    }
    store::update_field(&tx, &f)?;
    tx.commit()?;
    Ok(f.to_json())
}
