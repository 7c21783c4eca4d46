//! The records API: list (GET and POST listRecords), get, create, update (PATCH/PUT),
//! upsert and delete.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::cells::{Data, RecCtx, StrFmt, fx_to_text};
use super::errors::{ApiError, ApiResult};
use super::fx;
use super::query::{ListParams, SortSpec, parse_bool};
use super::schema::{FieldMeta, TableMeta};
use super::store::{self, Db, Rec};
use super::util::{decode_index, encode_index, is_id};

/// Load a base and find a table in it: 404 for an unknown base, 403 for an unknown table.
/// The base's data comes from the cache of `db` when it is there; give it back with
/// [`Db::keep`] after a successful request.
pub fn resolve(db: &mut Db, base_id: &str, table_key: &str) -> ApiResult<(Data, String)> {
    let data = db.data(base_id)?;
    let table_id = data
        .base
        .table(table_key)
        .map(|t| t.id.clone())
        .ok_or_else(ApiError::model_not_found)?;
    Ok((data, table_id))
}

fn table<'a>(data: &'a Data, table_id: &str) -> ApiResult<&'a TableMeta> {
    data.table(table_id).ok_or_else(ApiError::model_not_found)
}

/// The record as the API shows it.
pub fn record_json(
    data: &Data,
    table: &TableMeta,
    rec: &Rec,
    only: Option<&[FieldMeta]>,
    by_id: bool,
    comment_count: Option<u64>,
    fmt: Option<&StrFmt>,
) -> Value {
    let mut fields = Map::new();
    let all = only.unwrap_or(&table.fields);
    for f in all {
        let value = match fmt {
            None => data.cell_json(rec, f),
            Some(sf) => data.cell_string(rec, f, sf).map(Value::String),
        };
        if let Some(v) = value {
            let key = if by_id { &f.id } else { &f.name };
            fields.insert(key.clone(), v);
        }
    }
    let mut m = Map::new();
    m.insert("id".into(), json!(rec.id));
    m.insert("createdTime".into(), json!(rec.created_time));
    m.insert("fields".into(), Value::Object(fields));
    if let Some(n) = comment_count {
        m.insert("commentCount".into(), json!(n));
    }
    Value::Object(m)
}

fn check_cell_format(
    cell_format: Option<&str>,
    time_zone: Option<&str>,
    locale: Option<&str>,
) -> ApiResult<Option<StrFmt>> {
    match cell_format {
        None | Some("json") => Ok(None),
        Some("string") => StrFmt::new(time_zone, locale).map(Some),
        Some(other) => Err(ApiError::invalid_request(format!(
            "Invalid request: cellFormat must be json or string, got \"{other}\""
        ))),
    }
}

fn compile_filter(table: &TableMeta, src: &str) -> ApiResult<fx::Compiled> {
    let mut names: Vec<&str> = table.fields.iter().map(|f| f.name.as_str()).collect();
    names.extend(table.fields.iter().map(|f| f.id.as_str()));
    fx::compile_filter(src, &names).map_err(ApiError::filter)
}

/// Sort key comparison: blanks first, numbers numerically, text case-insensitively.
fn cmp_fx(a: &fx::Value, b: &fx::Value) -> Ordering {
    use fx::Value as V;
    let blank = |v: &V| match v {
        V::Blank => true,
        V::Text(s) => s.is_empty(),
        V::Array(a) => a.is_empty(),
        _ => false,
    };
    match (blank(a), blank(b)) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    match (a, b) {
        (V::Number(x), V::Number(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (V::Bool(x), V::Bool(y)) => x.cmp(y),
        (V::DateTime(x), V::DateTime(y)) => x.cmp(y),
        _ => {
            let (x, y) = (fx_to_text(a).to_lowercase(), fx_to_text(b).to_lowercase());
            x.cmp(&y)
        }
    }
}

fn sort_records(data: &Data, table: &TableMeta, recs: &mut [&Rec], sort: &[(FieldMeta, bool)]) {
    if sort.is_empty() {
        return;
    }
    let keys: HashMap<&str, Vec<fx::Value>> = recs
        .iter()
        .map(|r| {
            (
                r.id.as_str(),
                sort.iter().map(|(f, _)| data.cell_fx(r, f)).collect(),
            )
        })
        .collect();
    let _ = table;
    recs.sort_by(|a, b| {
        let (ka, kb) = (&keys[a.id.as_str()], &keys[b.id.as_str()]);
        for (i, (_, desc)) in sort.iter().enumerate() {
            let o = cmp_fx(&ka[i], &kb[i]);
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

fn resolve_sort(table: &TableMeta, sort: &[SortSpec]) -> ApiResult<Vec<(FieldMeta, bool)>> {
    sort.iter()
        .map(|s| {
            table
                .field(&s.field)
                .cloned()
                .map(|f| (f, s.desc))
                .ok_or_else(|| ApiError::unknown_field(&s.field))
        })
        .collect()
}

fn bad_offset(o: &str) -> ApiError {
    ApiError::unprocessable(
        "INVALID_OFFSET_VALUE",
        format!("The value of offset {o} is invalid"),
    )
}

/// Offsets are `itr<14: index>/rec<14: first record of the page>`.
fn decode_offset(o: &str) -> Option<(usize, &str)> {
    let (itr, rec) = o.split_once('/')?;
    let idx = decode_index(itr.strip_prefix("itr")?)?;
    is_id("rec", rec).then_some((idx as usize, rec))
}

/// What a list request needs once the database lock is released: a snapshot of the base
/// and the checked parameters.
pub struct ListSnapshot {
    data: Data,
    table_id: String,
    p: ListParams,
    fmt: Option<StrFmt>,
    only: Option<Vec<FieldMeta>>,
    filters: Vec<fx::Compiled>,
    sort: Vec<(FieldMeta, bool)>,
    counts: Option<HashMap<String, u64>>,
}

/// The part of a list request done under the database lock: check the parameters, compile
/// the filters, count comments, and snapshot the base (the cache keeps the original).
pub fn list_snapshot(
    db: &mut Db,
    base_id: &str,
    table_key: &str,
    p: ListParams,
) -> ApiResult<ListSnapshot> {
    let (data, table_id) = resolve(db, base_id, table_key)?;
    let table = table(&data, &table_id)?;
    let fmt = check_cell_format(
        p.cell_format.as_deref(),
        p.time_zone.as_deref(),
        p.user_locale.as_deref(),
    )?;
    let page_size = p.page_size.unwrap_or(100);
    if !(1..=100).contains(&page_size) {
        return Err(ApiError::invalid_request(format!(
            "Invalid request: pageSize must be between 1 and 100, got {page_size}"
        )));
    }
    let only: Option<Vec<FieldMeta>> = match &p.fields {
        None => None,
        Some(keys) => Some(
            keys.iter()
                .map(|k| {
                    table
                        .field(k)
                        .cloned()
                        .ok_or_else(|| ApiError::unknown_field(k))
                })
                .collect::<ApiResult<_>>()?,
        ),
    };
    let mut filters = Vec::new();
    let mut view_sort = Vec::new();
    if let Some(v) = &p.view {
        let view = table.view(v).ok_or_else(|| {
            ApiError::unprocessable(
                "VIEW_NAME_NOT_FOUND",
                format!("Could not find view {v} in table {}", table.name),
            )
        })?;
        if let Some(src) = view.config.get("filterByFormula").and_then(Value::as_str) {
            filters.push(compile_filter(table, src)?);
        }
        if let Some(arr) = view.config.get("sort").and_then(Value::as_array) {
            for s in arr {
                if let Some(f) = s.get("field").and_then(Value::as_str) {
                    view_sort.push(SortSpec {
                        field: f.to_string(),
                        desc: s.get("direction").and_then(Value::as_str) == Some("desc"),
                    });
                }
            }
        }
    }
    if let Some(src) = p.filter.as_deref().filter(|s| !s.trim().is_empty()) {
        filters.push(compile_filter(table, src)?);
    }
    let sort = resolve_sort(
        table,
        if p.sort.is_empty() {
            &view_sort
        } else {
            &p.sort
        },
    )?;
    let counts = if p.comment_count {
        Some(store::comment_counts(&db.conn, &table_id)?)
    } else {
        None
    };
    let snapshot = data.clone();
    db.keep(data);
    Ok(ListSnapshot {
        data: snapshot,
        table_id,
        p,
        fmt,
        only,
        filters,
        sort,
        counts,
    })
}

/// The part of a list request done without the lock: filter (formulas evaluated under the
/// request's budget, checked between records), sort, and render one page.
pub fn list_page(s: ListSnapshot) -> ApiResult<Value> {
    let ListSnapshot {
        data,
        table_id,
        p,
        fmt,
        only,
        filters,
        sort,
        counts,
    } = s;
    let table = table(&data, &table_id)?;
    let page_size = p.page_size.unwrap_or(100);
    let mut recs: Vec<&Rec> = Vec::new();
    for r in data.records(&table_id) {
        if !crate::formula::budget::checkpoint() {
            // the caller turns the spent budget into its error
            return Ok(Value::Null);
        }
        if filters
            .iter()
            .all(|c| fx::truthy(&fx::eval(c, &RecCtx::new(&data, r, table))))
        {
            recs.push(r);
        }
    }
    sort_records(&data, table, &mut recs, &sort);
    let end = p.max_records.map_or(recs.len(), |m| m.min(recs.len()));
    let mut start = 0;
    if let Some(o) = p.offset.as_deref().filter(|o| !o.is_empty()) {
        let (idx, rec_id) = decode_offset(o).ok_or_else(|| bad_offset(o))?;
        start = match recs.get(idx) {
            Some(r) if r.id == rec_id => idx,
            _ => recs.iter().position(|r| r.id == rec_id).unwrap_or(idx),
        };
    }
    let start = start.min(end);
    let stop = (start + page_size).min(end);
    let out: Vec<Value> = recs[start..stop]
        .iter()
        .map(|r| {
            let cc = counts.as_ref().map(|c| c.get(&r.id).copied().unwrap_or(0));
            record_json(
                &data,
                table,
                r,
                only.as_deref(),
                p.by_field_id,
                cc,
                fmt.as_ref(),
            )
        })
        .collect();
    let mut resp = json!({"records": out});
    if stop < end
        && let Some(next) = recs.get(stop)
    {
        resp["offset"] = json!(format!("itr{}/{}", encode_index(stop as u64), next.id));
    }
    Ok(resp)
}

pub fn get(
    db: &mut Db,
    base_id: &str,
    table_key: &str,
    rec_id: &str,
    query: &[(String, String)],
) -> ApiResult<Value> {
    let (data, _) = resolve(db, base_id, table_key)?;
    let mut by_id = false;
    let (mut cell_format, mut tz, mut locale) = (None, None, None);
    for (k, v) in query {
        match k.as_str() {
            "returnFieldsByFieldId" => by_id = parse_bool(k, v)?,
            "cellFormat" => cell_format = Some(v.as_str()),
            "timeZone" => tz = Some(v.as_str()),
            "userLocale" => locale = Some(v.as_str()),
            _ => {}
        }
    }
    let fmt = check_cell_format(cell_format, tz, locale)?;
    // Like Airtable, a record of another table of the same base is found too.
    let rec = data.rec(rec_id).ok_or_else(ApiError::not_found)?;
    let t = table(&data, &rec.table_id)?;
    let out = record_json(&data, t, rec, None, by_id, None, fmt.as_ref());
    db.keep(data);
    Ok(out)
}

// ------------------------------------------------------------------ writes

struct WriteOpts {
    typecast: bool,
    by_id: bool,
}

fn write_opts(obj: &Map<String, Value>) -> ApiResult<WriteOpts> {
    let flag = |k: &str| -> ApiResult<bool> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) => parse_bool(k, s),
            Some(Value::Number(n)) => Ok(n.as_u64() == Some(1)),
            Some(_) => Err(ApiError::invalid_request(format!(
                "Invalid request: {k} must be a boolean"
            ))),
        }
    };
    Ok(WriteOpts {
        typecast: flag("typecast")?,
        by_id: flag("returnFieldsByFieldId")?,
    })
}

fn body_object(body: &Value) -> ApiResult<&Map<String, Value>> {
    body.as_object()
        .ok_or_else(|| ApiError::invalid_request("Invalid request: the body must be a JSON object"))
}

fn missing_fields() -> ApiError {
    ApiError::unprocessable(
        "INVALID_REQUEST_MISSING_FIELDS",
        "Could not find field \"fields\" in the request body",
    )
}

/// Validate a `fields` object: (field ID, normalised value or None to clear), in order.
pub(super) fn build_cells(
    data: &mut Data,
    table_id: &str,
    fields: &Value,
    typecast: bool,
    rec_id: Option<&str>,
) -> ApiResult<Vec<(String, Option<Value>)>> {
    let obj = fields.as_object().ok_or_else(|| {
        ApiError::invalid_request("Invalid request: \"fields\" must be an object")
    })?;
    let table = table(data, table_id)?.clone();
    // Unknown names fail the whole write before anything else.
    for k in obj.keys() {
        if table.field(k).is_none() {
            return Err(ApiError::unknown_field(k));
        }
    }
    let mut out = Vec::with_capacity(obj.len());
    for (k, v) in obj {
        let Some(f) = table.field(k) else {
            return Err(ApiError::unknown_field(k));
        };
        let current = rec_id
            .and_then(|id| data.rec(id))
            .and_then(|r| r.cells.get(&f.id))
            .cloned();
        let nv = data.normalize(table_id, f, v, typecast, current.as_ref())?;
        out.retain(|(id, _): &(String, Option<Value>)| id != &f.id);
        out.push((f.id.clone(), nv));
    }
    Ok(out)
}

fn apply(
    data: &mut Data,
    table_id: &str,
    rec_id: &str,
    cells: Vec<(String, Option<Value>)>,
    put: bool,
) {
    if put {
        let keep: Vec<&str> = cells.iter().map(|(id, _)| id.as_str()).collect();
        let clear: Vec<String> = data
            .table(table_id)
            .map(|t| {
                t.fields
                    .iter()
                    .filter(|f| !f.is_computed() && !keep.contains(&f.id.as_str()))
                    .map(|f| f.id.clone())
                    .collect()
            })
            .unwrap_or_default();
        for fid in clear {
            let has = data.rec(rec_id).is_some_and(|r| r.cells.contains_key(&fid));
            if has {
                data.set_cell(rec_id, &fid, None);
            }
        }
    }
    for (fid, v) in cells {
        data.set_cell(rec_id, &fid, v);
    }
}

fn render(data: &Data, table_id: &str, ids: &[String], by_id: bool) -> ApiResult<Vec<Value>> {
    let t = table(data, table_id)?;
    Ok(ids
        .iter()
        .filter_map(|id| data.rec(id))
        .map(|r| record_json(data, t, r, None, by_id, None, None))
        .collect())
}

pub fn create(db: &mut Db, base_id: &str, table_key: &str, body: &Value) -> ApiResult<Value> {
    let (mut data, table_id) = resolve(db, base_id, table_key)?;
    let obj = body_object(body)?;
    let opts = write_opts(obj)?;
    let (inputs, single): (Vec<&Value>, bool) = if let Some(recs) = obj.get("records") {
        let arr = recs.as_array().ok_or_else(|| {
            ApiError::invalid_records(
                "You must provide an array of up to 10 record objects, each with a 'fields' object for cell values.",
            )
        })?;
        if arr.len() > 10 {
            return Err(ApiError::invalid_records(format!(
                "A maximum of 10 records can be created per request but you have provided {}.",
                arr.len()
            )));
        }
        if arr.is_empty() {
            return Err(ApiError::invalid_records(
                "You must provide an array of up to 10 record objects, each with a 'fields' object for cell values.",
            ));
        }
        let mut v = Vec::new();
        for r in arr {
            let f = r.get("fields").filter(|f| f.is_object()).ok_or_else(|| {
                ApiError::invalid_records(
                    "You must provide an array of up to 10 record objects, each with a 'fields' object for cell values.",
                )
            })?;
            v.push(f);
        }
        (v, false)
    } else if let Some(f) = obj.get("fields") {
        (vec![f], true)
    } else {
        return Err(missing_fields());
    };
    let mut ids = Vec::new();
    for f in inputs {
        let cells = build_cells(&mut data, &table_id, f, opts.typecast, None)?;
        let map: Map<String, Value> = cells
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        ids.push(data.insert(&table_id, map));
    }
    db.commit(&mut data)?;
    let mut out = render(&data, &table_id, &ids, opts.by_id)?;
    db.keep(data);
    if single {
        Ok(out.pop().unwrap_or(Value::Null))
    } else {
        Ok(json!({"records": out}))
    }
}

/// Single-record PATCH/PUT.
pub fn update_one(
    db: &mut Db,
    base_id: &str,
    table_key: &str,
    rec_id: &str,
    body: &Value,
    put: bool,
) -> ApiResult<Value> {
    let (mut data, table_id) = resolve(db, base_id, table_key)?;
    let obj = body_object(body)?;
    let opts = write_opts(obj)?;
    if data.rec_in(&table_id, rec_id).is_none() {
        return Err(ApiError::not_found());
    }
    let fields = obj.get("fields").ok_or_else(missing_fields)?;
    let cells = build_cells(&mut data, &table_id, fields, opts.typecast, Some(rec_id))?;
    apply(&mut data, &table_id, rec_id, cells, put);
    db.commit(&mut data)?;
    let mut out = render(&data, &table_id, &[rec_id.to_string()], opts.by_id)?;
    db.keep(data);
    Ok(out.pop().unwrap_or(Value::Null))
}

const UPDATE_SHAPE: &str = "You must provide an array of up to 10 record objects, each with an 'id' ID field and a 'fields' object for cell values.";

const MERGE_TYPES: &[&str] = &[
    "singleLineText",
    "multilineText",
    "richText",
    "email",
    "url",
    "phoneNumber",
    "number",
    "currency",
    "percent",
    "rating",
    "duration",
    "singleSelect",
    "multipleSelects",
    "date",
    "dateTime",
    "autoNumber",
];

/// Batch PATCH/PUT, with or without performUpsert.
pub fn update_many(
    db: &mut Db,
    base_id: &str,
    table_key: &str,
    body: &Value,
    put: bool,
) -> ApiResult<Value> {
    let (mut data, table_id) = resolve(db, base_id, table_key)?;
    let obj = body_object(body)?;
    let opts = write_opts(obj)?;
    let upsert = match obj.get("performUpsert") {
        None | Some(Value::Null) => None,
        Some(u) => Some(merge_fields(table(&data, &table_id)?, u)?),
    };
    let arr = obj
        .get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid_records(UPDATE_SHAPE))?;
    if arr.is_empty() || arr.len() > 10 {
        return Err(ApiError::invalid_records(UPDATE_SHAPE));
    }
    let mut ids = Vec::new();
    let mut created = Vec::new();
    let mut updated = Vec::new();
    for r in arr {
        let fields = r
            .get("fields")
            .filter(|f| f.is_object())
            .ok_or_else(|| ApiError::invalid_records(UPDATE_SHAPE))?;
        let id = match r.get("id") {
            Some(Value::String(s)) => Some(s.clone()),
            None | Some(Value::Null) if upsert.is_some() => None,
            _ => return Err(ApiError::invalid_records(UPDATE_SHAPE)),
        };
        match (id, &upsert) {
            (Some(id), _) => {
                if data.rec_in(&table_id, &id).is_none() {
                    return Err(ApiError::row_missing(&id));
                }
                let cells = build_cells(&mut data, &table_id, fields, opts.typecast, Some(&id))?;
                apply(&mut data, &table_id, &id, cells, put);
                updated.push(id.clone());
                ids.push(id);
            }
            (None, Some(merge)) => {
                let cells = build_cells(&mut data, &table_id, fields, opts.typecast, None)?;
                let mut wanted = Vec::new();
                for m in merge {
                    match cells.iter().find(|(fid, _)| fid == m) {
                        Some((_, Some(v))) => wanted.push((m.clone(), v.clone())),
                        _ => {
                            wanted.clear();
                            break;
                        }
                    }
                }
                let matches: Vec<String> = if wanted.is_empty() {
                    Vec::new()
                } else {
                    data.records(&table_id)
                        .iter()
                        .filter(|rec| {
                            wanted
                                .iter()
                                .all(|(fid, v)| merge_value(&data, rec, fid) == Some(v.clone()))
                        })
                        .map(|rec| rec.id.clone())
                        .collect()
                };
                match matches.as_slice() {
                    [] => {
                        let map: Map<String, Value> = cells
                            .into_iter()
                            .filter_map(|(k, v)| v.map(|v| (k, v)))
                            .collect();
                        let id = data.insert(&table_id, map);
                        created.push(id.clone());
                        ids.push(id);
                    }
                    [one] => {
                        let id = one.clone();
                        apply(&mut data, &table_id, &id, cells, put);
                        if !updated.contains(&id) {
                            updated.push(id.clone());
                        }
                        ids.push(id);
                    }
                    many => {
                        return Err(ApiError::invalid_records(format!(
                            "Cannot upsert: {} records match the fieldsToMergeOn values of one of the provided records; the merge fields must identify at most one record",
                            many.len()
                        )));
                    }
                }
            }
            (None, None) => return Err(ApiError::invalid_records(UPDATE_SHAPE)),
        }
    }
    db.commit(&mut data)?;
    let out = render(&data, &table_id, &ids, opts.by_id)?;
    db.keep(data);
    if upsert.is_some() {
        Ok(json!({"records": out, "createdRecords": created, "updatedRecords": updated}))
    } else {
        Ok(json!({"records": out}))
    }
}

fn merge_value(data: &Data, rec: &Rec, fid: &str) -> Option<Value> {
    let (_, f) = data.base.field_by_id(fid)?;
    data.cell_json(rec, f)
}

fn merge_fields(table: &TableMeta, u: &Value) -> ApiResult<Vec<String>> {
    let arr = u
        .get("fieldsToMergeOn")
        .and_then(Value::as_array)
        .filter(|a| (1..=3).contains(&a.len()))
        .ok_or_else(|| {
            ApiError::invalid_request(
                "Invalid request: performUpsert.fieldsToMergeOn must be an array of 1 to 3 field names or IDs",
            )
        })?;
    let mut out = Vec::new();
    for k in arr {
        let k = k.as_str().ok_or_else(|| {
            ApiError::invalid_request("Invalid request: fieldsToMergeOn holds field names or IDs")
        })?;
        let f = table.field(k).ok_or_else(|| ApiError::unknown_field(k))?;
        if !MERGE_TYPES.contains(&f.ftype.as_str()) {
            return Err(ApiError::invalid_request(format!(
                "Invalid request: field \"{}\" of type {} cannot be used in fieldsToMergeOn",
                f.name, f.ftype
            )));
        }
        out.push(f.id.clone());
    }
    Ok(out)
}

pub fn delete_one(db: &mut Db, base_id: &str, table_key: &str, rec_id: &str) -> ApiResult<Value> {
    let (mut data, table_id) = resolve(db, base_id, table_key)?;
    if data.rec_in(&table_id, rec_id).is_none() {
        return Err(ApiError::not_found());
    }
    data.delete(rec_id);
    db.commit(&mut data)?;
    db.keep(data);
    Ok(json!({"deleted": true, "id": rec_id}))
}

pub fn delete_many(
    db: &mut Db,
    base_id: &str,
    table_key: &str,
    query: &[(String, String)],
) -> ApiResult<Value> {
    let ids: Vec<&str> = query
        .iter()
        .filter(|(k, _)| {
            k == "records" || k == "records[]" || (k.starts_with("records[") && k.ends_with(']'))
        })
        .map(|(_, v)| v.as_str())
        .collect();
    let (mut data, table_id) = resolve(db, base_id, table_key)?;
    if ids.is_empty() || ids.len() > 10 {
        return Err(ApiError::invalid_records(format!(
            "You must provide an array of up to 10 record IDs to delete (records[]=rec…); you provided {}",
            ids.len()
        )));
    }
    for id in &ids {
        if data.rec_in(&table_id, id).is_none() {
            return Err(ApiError::not_found());
        }
    }
    for id in &ids {
        data.delete(id);
    }
    db.commit(&mut data)?;
    db.keep(data);
    let out: Vec<Value> = ids
        .iter()
        .map(|id| json!({"deleted": true, "id": id}))
        .collect();
    Ok(json!({"records": out}))
}
