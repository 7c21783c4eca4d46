//! Cell values: validation and typecast on write, computed fields (formula, rollup,
//! lookup, count, autoNumber, created/modified time) on read, and the coercion of
//! cells into formula values.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use rusqlite::Connection;
use serde_json::{Map, Value, json};

use super::errors::{ApiError, ApiResult};
use super::fx;
use super::schema::{Base, FieldMeta, NUMBER_TYPES, TEXT_TYPES, TableMeta};
use super::store::{self, Rec};
use super::util::{is_id, iso, new_id, now_iso, parse_iso};

/// (record ID, stored cells before, stored cells after).
pub type ChangedCells = (String, Map<String, Value>, Map<String, Value>);

/// The record changes of one request in one table (see [`Data::changes`]).
#[derive(Debug, Clone, Default)]
pub struct TableChanges {
    pub table_id: String,
    /// (record ID, created time, stored cells).
    pub created: Vec<(String, String, Map<String, Value>)>,
    /// (record ID, stored cells before, stored cells after).
    pub changed: Vec<ChangedCells>,
    pub deleted: Vec<String>,
}

/// A base loaded for one request: schema and every record, with pending changes.
/// Cloned as the snapshot a list request evaluates without the database lock.
#[derive(Clone)]
pub struct Data {
    pub base_id: String,
    pub base: Base,
    pub recs: HashMap<String, Vec<Rec>>,
    loc: HashMap<String, (String, usize)>,
    dirty: HashSet<String>,
    inserted: Vec<String>,
    deleted: Vec<String>,
    dirty_fields: HashSet<String>,
    /// Cells of records as they were before this request changed them (webhook payloads).
    orig: HashMap<String, (String, Map<String, Value>)>,
    memo: RefCell<HashMap<(String, String), fx::Value>>,
    busy: RefCell<HashSet<(String, String)>>,
    compiled: RefCell<HashMap<String, Option<fx::Compiled>>>,
    pub now: String,
}

impl Data {
    pub fn load(conn: &Connection, base_id: &str, base: Base) -> rusqlite::Result<Data> {
        let mut recs = HashMap::new();
        for t in &base.tables {
            recs.insert(t.id.clone(), store::load_records(conn, &t.id)?);
        }
        let mut d = Data {
            base_id: base_id.to_string(),
            base,
            recs,
            loc: HashMap::new(),
            dirty: HashSet::new(),
            inserted: Vec::new(),
            deleted: Vec::new(),
            dirty_fields: HashSet::new(),
            orig: HashMap::new(),
            memo: RefCell::new(HashMap::new()),
            busy: RefCell::new(HashSet::new()),
            compiled: RefCell::new(HashMap::new()),
            now: now_iso(),
        };
        d.reindex();
        Ok(d)
    }

    /// Ready a cached copy for a new request (the clock moves; formulas may use NOW()).
    pub fn refresh(&mut self) {
        self.memo.borrow_mut().clear();
        self.busy.borrow_mut().clear();
        self.now = now_iso();
    }

    fn reindex(&mut self) {
        self.loc.clear();
        for (tid, v) in &self.recs {
            for (i, r) in v.iter().enumerate() {
                self.loc.insert(r.id.clone(), (tid.clone(), i));
            }
        }
    }

    pub fn table(&self, id: &str) -> Option<&TableMeta> {
        self.base.table_by_id(id)
    }

    pub fn rec(&self, id: &str) -> Option<&Rec> {
        let (t, i) = self.loc.get(id)?;
        self.recs.get(t)?.get(*i)
    }

    pub fn rec_in(&self, table_id: &str, id: &str) -> Option<&Rec> {
        self.rec(id).filter(|r| r.table_id == table_id)
    }

    /// Keep a record's cells as they were before this request's first change to it.
    fn remember(&mut self, id: &str) {
        if self.orig.contains_key(id) || self.inserted.iter().any(|x| x == id) {
            return;
        }
        if let Some(r) = self.rec(id) {
            let before = (r.table_id.clone(), r.cells.clone());
            self.orig.insert(id.to_string(), before);
        }
    }

    /// What this request changed, per table (call before [`Data::persist`]): created records
    /// with their cells, changed records with (before, after) stored cells, deleted IDs.
    pub fn changes(&self) -> Vec<TableChanges> {
        let mut by_table: BTreeMap<String, TableChanges> = BTreeMap::new();
        for id in &self.inserted {
            if let Some(r) = self.rec(id) {
                let t = by_table.entry(r.table_id.clone()).or_default();
                t.created
                    .push((r.id.clone(), r.created_time.clone(), r.cells.clone()));
            }
        }
        for id in &self.dirty {
            if self.inserted.contains(id) {
                continue;
            }
            let (Some(r), Some((_, before))) = (self.rec(id), self.orig.get(id)) else {
                continue;
            };
            if &r.cells != before {
                let t = by_table.entry(r.table_id.clone()).or_default();
                t.changed
                    .push((r.id.clone(), before.clone(), r.cells.clone()));
            }
        }
        for id in &self.deleted {
            if let Some((table, _)) = self.orig.get(id) {
                by_table
                    .entry(table.clone())
                    .or_default()
                    .deleted
                    .push(id.clone());
            }
        }
        by_table
            .into_iter()
            .map(|(table_id, mut t)| {
                t.table_id = table_id;
                t.changed.sort_by(|a, b| a.0.cmp(&b.0));
                t
            })
            .collect()
    }

    fn rec_mut(&mut self, id: &str) -> Option<&mut Rec> {
        self.remember(id);
        let (t, i) = self.loc.get(id)?.clone();
        self.memo.borrow_mut().clear();
        self.recs.get_mut(&t)?.get_mut(i)
    }

    pub fn records(&self, table_id: &str) -> &[Rec] {
        self.recs.get(table_id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Insert a new record (cells already normalised). Returns its ID.
    pub fn insert(&mut self, table_id: &str, cells: Map<String, Value>) -> String {
        let id = new_id("rec");
        let auto = self
            .records(table_id)
            .iter()
            .map(|r| r.auto_number)
            .max()
            .unwrap_or(0)
            + 1;
        let rec = Rec {
            id: id.clone(),
            table_id: table_id.to_string(),
            created_time: self.now.clone(),
            modified_time: self.now.clone(),
            auto_number: auto,
            cells: Map::new(),
        };
        let v = self.recs.entry(table_id.to_string()).or_default();
        v.push(rec);
        self.loc
            .insert(id.clone(), (table_id.to_string(), v.len() - 1));
        self.inserted.push(id.clone());
        for (fid, val) in cells {
            self.set_cell(&id, &fid, Some(val));
        }
        id
    }

    /// Set (or clear) one stored cell, keeping inverse links in step.
    pub fn set_cell(&mut self, rec_id: &str, field_id: &str, value: Option<Value>) {
        let Some((table, field)) = self
            .base
            .field_by_id(field_id)
            .map(|(t, f)| (t.id.clone(), f.clone()))
        else {
            return;
        };
        let _ = table;
        if field.ftype == "multipleRecordLinks" {
            let old: Vec<String> = self
                .rec(rec_id)
                .and_then(|r| r.cells.get(field_id))
                .map(ids_of)
                .unwrap_or_default();
            let new: Vec<String> = value.as_ref().map(ids_of).unwrap_or_default();
            if let Some(inv) = field.opt_str("inverseLinkFieldId").map(str::to_string) {
                for gone in old.iter().filter(|o| !new.contains(o)) {
                    self.edit_links(gone, &inv, |v| v.retain(|x| x != rec_id));
                }
                for added in new.iter().filter(|n| !old.contains(n)) {
                    self.edit_links(added, &inv, |v| {
                        if !v.iter().any(|x| x == rec_id) {
                            v.push(rec_id.to_string());
                        }
                    });
                }
            }
        }
        let now = self.now.clone();
        if let Some(r) = self.rec_mut(rec_id) {
            match value {
                Some(v) if !is_empty(&v) => {
                    r.cells.insert(field_id.to_string(), v);
                }
                _ => {
                    r.cells.remove(field_id);
                }
            }
            r.modified_time = now;
            self.dirty.insert(rec_id.to_string());
        }
    }

    fn edit_links(&mut self, rec_id: &str, field_id: &str, f: impl FnOnce(&mut Vec<String>)) {
        let now = self.now.clone();
        if let Some(r) = self.rec_mut(rec_id) {
            let mut ids: Vec<String> = r.cells.get(field_id).map(ids_of).unwrap_or_default();
            f(&mut ids);
            if ids.is_empty() {
                r.cells.remove(field_id);
            } else {
                r.cells.insert(field_id.to_string(), json!(ids));
            }
            r.modified_time = now;
            self.dirty.insert(rec_id.to_string());
        }
    }

    /// Delete a record, removing it from every link cell that points at it.
    pub fn delete(&mut self, rec_id: &str) {
        let Some(table_id) = self.rec(rec_id).map(|r| r.table_id.clone()) else {
            return;
        };
        self.remember(rec_id);
        let link_fields: Vec<String> = self
            .base
            .tables
            .iter()
            .flat_map(|t| t.fields.iter())
            .filter(|f| {
                f.ftype == "multipleRecordLinks" && f.opt_str("linkedTableId") == Some(&table_id)
            })
            .map(|f| f.id.clone())
            .collect();
        let holders: Vec<(String, String)> = self
            .recs
            .values()
            .flat_map(|v| v.iter())
            .flat_map(|r| {
                link_fields.iter().filter_map(move |fid| {
                    let has = r
                        .cells
                        .get(fid)
                        .map(|c| ids_of(c).iter().any(|x| x == rec_id))
                        .unwrap_or(false);
                    has.then(|| (r.id.clone(), fid.clone()))
                })
            })
            .collect();
        for (holder, fid) in holders {
            if holder != rec_id {
                self.edit_links(&holder, &fid, |v| v.retain(|x| x != rec_id));
            }
        }
        if let Some(v) = self.recs.get_mut(&table_id) {
            v.retain(|r| r.id != rec_id);
        }
        self.dirty.remove(rec_id);
        if let Some(p) = self.inserted.iter().position(|x| x == rec_id) {
            self.inserted.remove(p);
        } else {
            self.deleted.push(rec_id.to_string());
        }
        self.memo.borrow_mut().clear();
        self.reindex();
    }

    /// Write every pending change to SQLite (call inside a transaction).
    pub fn persist(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        for t in &self.base.tables {
            for f in &t.fields {
                if self.dirty_fields.contains(&f.id) {
                    store::update_field(conn, f)?;
                }
            }
        }
        for id in &self.inserted {
            if let Some(r) = self.rec(id) {
                store::insert_record(conn, r)?;
            }
        }
        for id in &self.dirty {
            if self.inserted.contains(id) {
                continue;
            }
            if let Some(r) = self.rec(id) {
                store::save_record(conn, r)?;
            }
        }
        for id in &self.deleted {
            store::delete_record(conn, id)?;
        }
        self.inserted.clear();
        self.dirty.clear();
        self.deleted.clear();
        self.dirty_fields.clear();
        self.orig.clear();
        Ok(())
    }

    // ------------------------------------------------------------ reading

    /// The JSON value of a cell as the API shows it; None when empty (omitted).
    pub fn cell_json(&self, rec: &Rec, field: &FieldMeta) -> Option<Value> {
        match field.ftype.as_str() {
            "autoNumber" => Some(json!(rec.auto_number)),
            "createdTime" => Some(json!(rec.created_time)),
            "lastModifiedTime" => Some(json!(rec.modified_time)),
            "createdBy" | "lastModifiedBy" => Some(super::sandbox_user_json()),
            "count" => {
                let link = field.opt_str("recordLinkFieldId")?;
                let n = rec.cells.get(link).map(|v| ids_of(v).len()).unwrap_or(0);
                Some(json!(n))
            }
            "multipleLookupValues" => {
                let mut out = Vec::new();
                for (r, f) in self.linked_targets(rec, field) {
                    match self.cell_json(r, f) {
                        Some(Value::Array(a)) => out.extend(a),
                        Some(v) => out.push(v),
                        None => {}
                    }
                }
                (!out.is_empty()).then_some(Value::Array(out))
            }
            "formula" | "rollup" => fx_to_json(&self.cell_fx(rec, field)),
            _ => rec.cells.get(&field.id).filter(|v| !is_empty(v)).cloned(),
        }
    }

    /// (linked record, target field) pairs of a lookup or rollup.
    fn linked_targets<'a>(&'a self, rec: &Rec, field: &FieldMeta) -> Vec<(&'a Rec, &'a FieldMeta)> {
        let (Some(link), Some(target)) = (
            field.opt_str("recordLinkFieldId"),
            field.opt_str("fieldIdInLinkedTable"),
        ) else {
            return Vec::new();
        };
        let Some((_, tf)) = self.base.field_by_id(target) else {
            return Vec::new();
        };
        rec.cells
            .get(link)
            .map(ids_of)
            .unwrap_or_default()
            .iter()
            .filter_map(|id| self.rec(id))
            .map(|r| (r, tf))
            .collect()
    }

    /// The formula value of a cell (links become the primary values of the linked records).
    pub fn cell_fx(&self, rec: &Rec, field: &FieldMeta) -> fx::Value {
        let key = (rec.id.clone(), field.id.clone());
        match field.ftype.as_str() {
            "formula" | "rollup" => {
                if let Some(v) = self.memo.borrow().get(&key) {
                    return v.clone();
                }
                if !self.busy.borrow_mut().insert(key.clone()) {
                    return fx::Value::Error("#ERROR! (circular reference)".into());
                }
                let v = if field.ftype == "formula" {
                    self.eval_formula(rec, field)
                } else {
                    self.eval_rollup(rec, field)
                };
                self.busy.borrow_mut().remove(&key);
                self.memo.borrow_mut().insert(key, v.clone());
                v
            }
            "multipleLookupValues" => {
                let mut out = Vec::new();
                for (r, f) in self.linked_targets(rec, field) {
                    match self.cell_fx(r, f) {
                        fx::Value::Array(a) => out.extend(a),
                        fx::Value::Blank => {}
                        v => out.push(v),
                    }
                }
                fx::Value::Array(out)
            }
            "multipleRecordLinks" => {
                let ids = rec.cells.get(&field.id).map(ids_of).unwrap_or_default();
                fx::Value::Array(
                    ids.iter()
                        .filter_map(|id| self.rec(id))
                        .map(|r| fx::Value::Text(self.display(r)))
                        .collect(),
                )
            }
            "checkbox" => fx::Value::Bool(
                rec.cells
                    .get(&field.id)
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            ),
            "date" | "dateTime" | "createdTime" | "lastModifiedTime" => {
                match self.cell_json(rec, field) {
                    Some(Value::String(s)) => parse_date_value(&s)
                        .map(fx::Value::DateTime)
                        .unwrap_or(fx::Value::Text(s)),
                    _ => fx::Value::Blank,
                }
            }
            "multipleAttachments" => {
                let arr = rec
                    .cells
                    .get(&field.id)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                fx::Value::Array(
                    arr.iter()
                        .map(|a| {
                            let f = a.get("filename").and_then(Value::as_str).unwrap_or("");
                            let u = a.get("url").and_then(Value::as_str).unwrap_or("");
                            fx::Value::Text(format!("{f} ({u})"))
                        })
                        .collect(),
                )
            }
            _ => json_to_fx(self.cell_json(rec, field).as_ref()),
        }
    }

    /// The primary field's value as text (what links show in formulas).
    pub fn display(&self, rec: &Rec) -> String {
        let Some(t) = self.table(&rec.table_id) else {
            return rec.id.clone();
        };
        let Some(p) = t.primary() else {
            return rec.id.clone();
        };
        fx_to_text(&self.cell_fx(rec, p))
    }

    fn compiled(&self, key: &str, src: &str, names: &[&str]) -> Option<fx::Compiled> {
        if let Some(c) = self.compiled.borrow().get(key) {
            return c.clone();
        }
        let c = fx::compile(src, names).ok();
        self.compiled
            .borrow_mut()
            .insert(key.to_string(), c.clone());
        c
    }

    fn eval_formula(&self, rec: &Rec, field: &FieldMeta) -> fx::Value {
        let Some(table) = self.table(&rec.table_id) else {
            return fx::Value::Error("#ERROR!".into());
        };
        let src = field.opt_str("formula").unwrap_or("");
        let mut names: Vec<&str> = table.fields.iter().map(|f| f.name.as_str()).collect();
        names.extend(table.fields.iter().map(|f| f.id.as_str()));
        let Some(c) = self.compiled(&field.id, src, &names) else {
            return fx::Value::Error("#ERROR!".into());
        };
        fx::eval(&c, &RecCtx::new(self, rec, table))
    }

    fn eval_rollup(&self, rec: &Rec, field: &FieldMeta) -> fx::Value {
        let mut values = Vec::new();
        for (r, f) in self.linked_targets(rec, field) {
            match self.cell_fx(r, f) {
                fx::Value::Array(a) => values.extend(a),
                fx::Value::Blank => {}
                v => values.push(v),
            }
        }
        let src = field
            .opt_str("formula")
            .unwrap_or("ARRAYJOIN(values, \", \")");
        let Some(c) = self.compiled(&field.id, src, &["values"]) else {
            return fx::Value::Error("#ERROR!".into());
        };
        let ctx = ValuesCtx {
            values: fx::Value::Array(values),
            rec,
        };
        fx::eval(&c, &ctx)
    }

    // ------------------------------------------------------------ writing

    /// Validate (and with `typecast`, convert) a value written to `field` of `table`.
    /// None clears the cell. May add select choices or linked records (typecast).
    pub fn normalize(
        &mut self,
        table_id: &str,
        field: &FieldMeta,
        value: &Value,
        typecast: bool,
        current: Option<&Value>,
    ) -> ApiResult<Option<Value>> {
        if field.is_computed() {
            return Err(ApiError::computed_field(&field.name));
        }
        if value.is_null() {
            return Ok(None);
        }
        let t = field.ftype.as_str();
        let bad = || ApiError::invalid_value(&field.name);
        let unparsable = |v: &Value| {
            let shown = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            ApiError::invalid_value_msg(format!(
                "Cannot parse value \"{shown}\" for field {}",
                field.name
            ))
        };
        if TEXT_TYPES.contains(&t) {
            return match value {
                Value::String(s) => Ok((!s.is_empty()).then(|| json!(s))),
                Value::Number(_) | Value::Bool(_) if typecast => Ok(Some(json!(value.to_string()))),
                Value::Array(a) if typecast => {
                    let parts: Vec<String> = a.iter().map(scalar_text).collect();
                    let s = parts.join(", ");
                    Ok((!s.is_empty()).then(|| json!(s)))
                }
                _ => Err(bad()),
            };
        }
        if NUMBER_TYPES.contains(&t) {
            let n = match value {
                Value::Number(n) => n.as_f64().ok_or_else(bad)?,
                Value::String(s) if typecast => {
                    if s.trim().is_empty() {
                        return Ok(None);
                    }
                    parse_number(s, t).ok_or_else(|| unparsable(value))?
                }
                Value::Bool(b) if typecast => f64::from(u8::from(*b)),
                _ => return Err(bad()),
            };
            if !n.is_finite() {
                return Err(bad());
            }
            if t == "rating" {
                let max = field.opt("max").and_then(Value::as_f64).unwrap_or(5.0);
                if n == 0.0 {
                    return Ok(None);
                }
                if n.fract() != 0.0 || n < 1.0 || n > max {
                    return Err(bad());
                }
            }
            return Ok(Some(number_json(n, value)));
        }
        match t {
            "checkbox" => match value {
                Value::Bool(b) => Ok(b.then_some(json!(true))),
                Value::String(s) if typecast => {
                    let s = s.trim().to_ascii_lowercase();
                    match s.as_str() {
                        "true" | "1" | "yes" | "y" | "checked" | "on" | "x" => {
                            Ok(Some(json!(true)))
                        }
                        "false" | "0" | "no" | "n" | "unchecked" | "off" | "" => Ok(None),
                        _ => Err(unparsable(value)),
                    }
                }
                Value::Number(n) if typecast => {
                    Ok((n.as_f64().unwrap_or(0.0) != 0.0).then_some(json!(true)))
                }
                _ => Err(bad()),
            },
            "date" => match value {
                Value::String(s) if s.is_empty() => Ok(None),
                Value::String(s) => parse_date(s, typecast)
                    .map(|d| Some(json!(d.format("%Y-%m-%d").to_string())))
                    .ok_or_else(|| unparsable(value)),
                _ => Err(bad()),
            },
            "dateTime" => match value {
                Value::String(s) if s.is_empty() => Ok(None),
                Value::String(s) => {
                    let tz = field.opt_str("timeZone").unwrap_or("utc");
                    parse_datetime(s, tz, typecast)
                        .map(|d| Some(json!(iso(d))))
                        .ok_or_else(|| unparsable(value))
                }
                _ => Err(bad()),
            },
            "singleSelect" => {
                let name = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(_) | Value::Bool(_) if typecast => value.to_string(),
                    _ => return Err(bad()),
                };
                if name.is_empty() {
                    return Ok(None);
                }
                Ok(Some(json!(self.choice(table_id, field, &name, typecast)?)))
            }
            "multipleSelects" => {
                let items: Vec<String> = match value {
                    Value::Array(a) => a
                        .iter()
                        .map(|v| match v {
                            Value::String(s) => Ok(s.clone()),
                            Value::Number(_) | Value::Bool(_) if typecast => Ok(v.to_string()),
                            _ => Err(bad()),
                        })
                        .collect::<ApiResult<_>>()?,
                    Value::String(s) if typecast => s
                        .split(',')
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect(),
                    _ => return Err(bad()),
                };
                let mut out: Vec<String> = Vec::new();
                for it in items {
                    if it.is_empty() {
                        continue;
                    }
                    let name = self.choice(table_id, field, &it, typecast)?;
                    if !out.contains(&name) {
                        out.push(name);
                    }
                }
                Ok((!out.is_empty()).then(|| json!(out)))
            }
            "multipleRecordLinks" => self.normalize_links(field, value, typecast),
            "multipleAttachments" => normalize_attachments(field, value, current),
            "singleCollaborator" => match value {
                Value::Object(o) if o.contains_key("id") || o.contains_key("email") => {
                    Ok(Some(value.clone()))
                }
                Value::String(s) if typecast && s.contains('@') => Ok(Some(json!({"email": s}))),
                _ => Err(bad()),
            },
            "multipleCollaborators" => match value {
                Value::Array(a) => {
                    let mut out = Vec::new();
                    for v in a {
                        match v {
                            Value::String(s) if is_id("usr", s) || is_id("ugp", s) => {
                                out.push(json!({"id": s}))
                            }
                            Value::Object(o) if o.contains_key("id") || o.contains_key("email") => {
                                out.push(v.clone())
                            }
                            _ => return Err(bad()),
                        }
                    }
                    Ok((!out.is_empty()).then(|| json!(out)))
                }
                _ => Err(bad()),
            },
            "barcode" => match value {
                Value::Object(o) if o.get("text").is_some_and(Value::is_string) => {
                    Ok(Some(value.clone()))
                }
                Value::String(s) if typecast => Ok(Some(json!({"text": s}))),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }

    /// The name of a select choice, created with `typecast`.
    fn choice(
        &mut self,
        table_id: &str,
        field: &FieldMeta,
        name: &str,
        typecast: bool,
    ) -> ApiResult<String> {
        let current = self
            .table(table_id)
            .and_then(|t| t.field(&field.id))
            .map(FieldMeta::choices)
            .unwrap_or_default();
        if let Some((n, _)) = current.iter().find(|(n, id)| n == name || id == name) {
            return Ok(n.clone());
        }
        if !typecast {
            return Err(ApiError::bad_choice(name));
        }
        let fid = field.id.clone();
        if let Some(f) = self
            .base
            .tables
            .iter_mut()
            .find(|t| t.id == table_id)
            .and_then(|t| t.fields.iter_mut().find(|f| f.id == fid))
        {
            let opts = f.options.get_or_insert_with(|| json!({"choices": []}));
            if !opts.get("choices").is_some_and(Value::is_array) {
                opts["choices"] = json!([]);
            }
            if let Some(arr) = opts.get_mut("choices").and_then(Value::as_array_mut) {
                arr.push(json!({"id": new_id("sel"), "name": name}));
            }
            self.dirty_fields.insert(fid);
        }
        Ok(name.to_string())
    }

    fn normalize_links(
        &mut self,
        field: &FieldMeta,
        value: &Value,
        typecast: bool,
    ) -> ApiResult<Option<Value>> {
        let linked = field.opt_str("linkedTableId").unwrap_or("").to_string();
        let not_ids = || ApiError::invalid_value_msg("Value is not an array of record IDs.");
        let items: Vec<String> = match value {
            Value::Array(a) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Object(o) => o
                        .get("id")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(not_ids),
                    Value::Number(_) if typecast => Ok(v.to_string()),
                    _ => Err(not_ids()),
                })
                .collect::<ApiResult<_>>()?,
            Value::String(s) if typecast => s
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
            _ => return Err(not_ids()),
        };
        let mut out: Vec<String> = Vec::new();
        for it in items {
            let id = if is_id("rec", &it) {
                if self.rec_in(&linked, &it).is_none() {
                    return Err(ApiError::unprocessable(
                        "ROW_DOES_NOT_EXIST",
                        format!("Record ID {it} does not exist in the linked table"),
                    ));
                }
                it
            } else if typecast {
                self.find_or_create_by_primary(&linked, &it)?
            } else {
                return Err(not_ids());
            };
            if !out.contains(&id) {
                out.push(id);
            }
        }
        Ok((!out.is_empty()).then(|| json!(out)))
    }

    fn find_or_create_by_primary(&mut self, table_id: &str, text: &str) -> ApiResult<String> {
        let found = self
            .records(table_id)
            .iter()
            .find(|r| self.display(r) == text)
            .map(|r| r.id.clone());
        if let Some(id) = found {
            return Ok(id);
        }
        let primary = self
            .table(table_id)
            .and_then(TableMeta::primary)
            .cloned()
            .ok_or_else(|| ApiError::invalid_value_msg("The linked table has no primary field"))?;
        let v = self.normalize(table_id, &primary, &json!(text), true, None)?;
        let mut cells = Map::new();
        if let Some(v) = v {
            cells.insert(primary.id.clone(), v);
        }
        Ok(self.insert(table_id, cells))
    }
}

fn normalize_attachments(
    field: &FieldMeta,
    value: &Value,
    current: Option<&Value>,
) -> ApiResult<Option<Value>> {
    let bad = || ApiError::invalid_value(&field.name);
    let arr = value.as_array().ok_or_else(bad)?;
    let existing: Vec<Value> = current
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for a in arr {
        let o = a.as_object().ok_or_else(bad)?;
        if let Some(id) = o.get("id").and_then(Value::as_str)
            && let Some(old) = existing
                .iter()
                .find(|e| e.get("id").and_then(Value::as_str) == Some(id))
        {
            out.push(old.clone());
            continue;
        }
        let url = o.get("url").and_then(Value::as_str).ok_or_else(|| {
            ApiError::invalid_value_msg(format!(
                "Field \"{}\" cannot accept the provided value: a new attachment needs a url",
                field.name
            ))
        })?;
        let filename = o
            .get("filename")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                url.split(['?', '#'])
                    .next()
                    .and_then(|p| p.rsplit('/').next())
                    .filter(|s| !s.is_empty())
                    .unwrap_or("file")
                    .to_string()
            });
        let mime = o
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| guess_mime(&filename).to_string());
        let size = o.get("size").and_then(Value::as_u64).unwrap_or(0);
        out.push(json!({
            "id": o.get("id").and_then(Value::as_str).filter(|i| is_id("att", i)).map(str::to_string).unwrap_or_else(|| new_id("att")),
            "url": url,
            "filename": filename,
            "size": size,
            "type": mime,
        }));
    }
    Ok((!out.is_empty()).then(|| json!(out)))
}

fn guess_mime(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        "md" => "text/markdown",
        "zip" => "application/zip",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

/// Keep integers as integers in JSON.
fn number_json(n: f64, original: &Value) -> Value {
    if original.is_number() {
        return original.clone();
    }
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

fn parse_number(s: &str, ftype: &str) -> Option<f64> {
    let t = s.trim();
    if ftype == "duration" && t.contains(':') {
        let parts: Vec<&str> = t.split(':').collect();
        let mut secs = 0.0;
        for p in &parts {
            secs = secs * 60.0 + p.trim().parse::<f64>().ok()?;
        }
        if parts.len() == 2 {
            secs *= 60.0;
        }
        return Some(secs);
    }
    let percent = t.ends_with('%');
    let cleaned: String = t
        .chars()
        .filter(|c| !matches!(c, ',' | '$' | '€' | '£' | '%' | ' '))
        .collect();
    let n: f64 = cleaned.parse().ok()?;
    Some(if percent && ftype == "percent" {
        n / 100.0
    } else {
        n
    })
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Dates: ISO (`2024-05-01`, or a full ISO date-time whose date is taken); with typecast
/// also `2024/05/01`, `05/01/2024` (US), `May 1, 2024` and `1 May 2024`.
pub fn parse_date(s: &str, typecast: bool) -> Option<NaiveDate> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.date_naive());
    }
    if let Ok(d) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M%#z") {
        return Some(d.date_naive());
    }
    if let Some(d) = parse_iso(s) {
        return Some(d.date_naive());
    }
    if typecast {
        for f in [
            "%Y/%m/%d",
            "%m/%d/%Y",
            "%B %d, %Y",
            "%b %d, %Y",
            "%d %B %Y",
            "%d %b %Y",
        ] {
            if let Ok(d) = NaiveDate::parse_from_str(s, f) {
                return Some(d);
            }
        }
        for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
            if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
                return Some(d.date());
            }
        }
    }
    None
}

/// Date-times: RFC 3339 with an offset, or a date / naive date-time read in the field's zone.
pub fn parse_datetime(s: &str, tz: &str, typecast: bool) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    // ISO 8601 at minute precision with an offset (`2026-01-02T12:51Z`), as Airtable takes it.
    if let Ok(d) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M%#z") {
        return Some(d.with_timezone(&Utc));
    }
    let mut formats = vec![
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ];
    if typecast {
        formats.extend([
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%d %H:%M",
            "%m/%d/%Y %H:%M",
            "%m/%d/%Y %I:%M%p",
            "%m/%d/%Y %I:%M %p",
        ]);
    }
    let naive = formats
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| parse_date(s, typecast).and_then(|d| d.and_hms_opt(0, 0, 0)))?;
    match tz.parse::<crate::formula::zone::Zone>() {
        Ok(zone) if tz != "utc" && tz != "client" => zone
            .from_local_datetime(&naive)
            .earliest()
            .map(|d| d.with_timezone(&Utc)),
        _ => Some(Utc.from_utc_datetime(&naive)),
    }
}

fn parse_date_value(s: &str) -> Option<DateTime<Utc>> {
    parse_iso(s).or_else(|| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|n| Utc.from_utc_datetime(&n))
    })
}

/// Empty values are omitted on read: "", [], false, null, {}.
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(_) => false,
    }
}

pub fn ids_of(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A JSON cell as a formula value (generic types).
pub fn json_to_fx(v: Option<&Value>) -> fx::Value {
    match v {
        None | Some(Value::Null) => fx::Value::Blank,
        Some(Value::Bool(b)) => fx::Value::Bool(*b),
        Some(Value::Number(n)) => fx::Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        Some(Value::String(s)) if s.is_empty() => fx::Value::Blank,
        Some(Value::String(s)) => fx::Value::Text(s.clone()),
        Some(Value::Array(a)) => fx::Value::Array(a.iter().map(|x| json_to_fx(Some(x))).collect()),
        Some(Value::Object(o)) => {
            let t = o
                .get("name")
                .or_else(|| o.get("text"))
                .or_else(|| o.get("email"))
                .or_else(|| o.get("filename"))
                .and_then(Value::as_str)
                .unwrap_or("");
            fx::Value::Text(t.to_string())
        }
    }
}

/// A formula result as the JSON the API shows; None when empty.
pub fn fx_to_json(v: &fx::Value) -> Option<Value> {
    match v {
        fx::Value::Blank => None,
        fx::Value::Number(n) if n.is_nan() => Some(json!({"specialValue": "NaN"})),
        fx::Value::Number(n) if n.is_infinite() => Some(json!({
            "specialValue": if *n > 0.0 { "Infinity" } else { "-Infinity" }
        })),
        fx::Value::Number(n) => Some(if n.fract() == 0.0 && n.abs() < 9.0e15 {
            json!(*n as i64)
        } else {
            json!(n)
        }),
        fx::Value::Text(s) if s.is_empty() => None,
        fx::Value::Text(s) => Some(json!(s)),
        fx::Value::Bool(true) => Some(json!(true)),
        fx::Value::Bool(false) => None,
        fx::Value::DateTime(d) => Some(json!(iso(*d))),
        fx::Value::Array(a) => {
            let items: Vec<Value> = a.iter().filter_map(fx_to_json).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        fx::Value::Error(_) => Some(json!({"error": "#ERROR!"})),
    }
}

/// A formula value as text (links' display values, array joins).
pub fn fx_to_text(v: &fx::Value) -> String {
    match v {
        fx::Value::Blank => String::new(),
        fx::Value::Number(n) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                format!("{}", *n as i64)
            } else {
                format!("{n}")
            }
        }
        fx::Value::Text(s) => s.clone(),
        fx::Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
        fx::Value::DateTime(d) => iso(*d),
        fx::Value::Array(a) => a.iter().map(fx_to_text).collect::<Vec<_>>().join(", "),
        fx::Value::Error(_) => "#ERROR!".to_string(),
    }
}

/// Evaluation context of one record: fields by name or ID.
pub struct RecCtx<'a> {
    data: &'a Data,
    rec: &'a Rec,
    table: &'a TableMeta,
}

impl<'a> RecCtx<'a> {
    pub fn new(data: &'a Data, rec: &'a Rec, table: &'a TableMeta) -> Self {
        RecCtx { data, rec, table }
    }
}

impl fx::Ctx for RecCtx<'_> {
    fn field(&self, name: &str) -> Option<fx::Value> {
        let f = self.table.field(name)?;
        Some(self.data.cell_fx(self.rec, f))
    }
    fn record_id(&self) -> &str {
        &self.rec.id
    }
    fn created_time(&self) -> DateTime<Utc> {
        parse_iso(&self.rec.created_time).unwrap_or_else(Utc::now)
    }
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn last_modified_time(&self) -> DateTime<Utc> {
        parse_iso(&self.rec.modified_time).unwrap_or_else(|| self.created_time())
    }
}

struct ValuesCtx<'a> {
    values: fx::Value,
    rec: &'a Rec,
}

impl fx::Ctx for ValuesCtx<'_> {
    fn field(&self, name: &str) -> Option<fx::Value> {
        (name == "values").then(|| self.values.clone())
    }
    fn record_id(&self) -> &str {
        &self.rec.id
    }
    fn created_time(&self) -> DateTime<Utc> {
        parse_iso(&self.rec.created_time).unwrap_or_else(Utc::now)
    }
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// `cellFormat=string`: how values are shown to a user, in a time zone and locale.
#[derive(Debug, Clone)]
pub struct StrFmt {
    pub tz: crate::formula::zone::Zone,
    /// US-style local dates (M/D/YYYY) for `en-us`/`en` locales; ISO otherwise.
    pub us: bool,
}

impl StrFmt {
    /// `timeZone` and `userLocale` are both required, as on Airtable.
    pub fn new(time_zone: Option<&str>, locale: Option<&str>) -> ApiResult<StrFmt> {
        let (Some(tz), Some(locale)) = (time_zone, locale) else {
            return Err(ApiError::invalid_request(
                "Invalid request: cellFormat=string requires both timeZone and userLocale",
            ));
        };
        let tz = if tz.eq_ignore_ascii_case("utc") {
            crate::formula::zone::Zone::UTC
        } else {
            tz.parse::<crate::formula::zone::Zone>().map_err(|_| {
                ApiError::invalid_request(format!("Invalid request: unknown timeZone \"{tz}\""))
            })?
        };
        let l = locale.to_ascii_lowercase();
        Ok(StrFmt {
            tz,
            us: l == "en" || l == "en-us",
        })
    }
}

fn group_thousands(int: &str) -> String {
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

fn fmt_number(n: f64, precision: Option<usize>) -> String {
    let s = match precision {
        Some(p) => format!("{n:.p$}"),
        None => fx_to_text(&fx::Value::Number(n)),
    };
    match s.split_once('.') {
        Some((i, f)) => format!("{}.{f}", group_thousands(i)),
        None => group_thousands(&s),
    }
}

fn date_pattern(opts: Option<&Value>, sf: &StrFmt) -> &'static str {
    let name = opts
        .and_then(|o| o.get("dateFormat"))
        .and_then(|d| d.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("iso");
    match name {
        "us" => "%-m/%-d/%Y",
        "european" => "%-d/%-m/%Y",
        "friendly" => "%B %-d, %Y",
        "local" if sf.us => "%-m/%-d/%Y",
        _ => "%Y-%m-%d",
    }
}

fn time_pattern(opts: Option<&Value>) -> &'static str {
    let name = opts
        .and_then(|o| o.get("timeFormat"))
        .and_then(|d| d.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("24hour");
    if name == "12hour" {
        "%-I:%M%P"
    } else {
        "%H:%M"
    }
}

fn fmt_datetime(d: DateTime<Utc>, opts: Option<&Value>, sf: &StrFmt) -> String {
    let local = d.with_timezone(&sf.tz);
    format!(
        "{} {}",
        local.format(date_pattern(opts, sf)),
        local.format(time_pattern(opts))
    )
}

impl Data {
    /// A cell as `cellFormat=string` shows it; None when empty.
    pub fn cell_string(&self, rec: &Rec, field: &FieldMeta, sf: &StrFmt) -> Option<String> {
        let s = match field.ftype.as_str() {
            "multipleLookupValues" => self
                .linked_targets(rec, field)
                .into_iter()
                .filter_map(|(r, f)| self.cell_string(r, f, sf))
                .collect::<Vec<_>>()
                .join(", "),
            "multipleRecordLinks" => fx_to_text(&self.cell_fx(rec, field)),
            "formula" | "rollup" => self.fx_string(&self.cell_fx(rec, field), sf),
            _ => {
                let v = self.cell_json(rec, field)?;
                json_string(field, &v, sf)
            }
        };
        (!s.is_empty()).then_some(s)
    }

    fn fx_string(&self, v: &fx::Value, sf: &StrFmt) -> String {
        match v {
            fx::Value::DateTime(d) => fmt_datetime(*d, None, sf),
            fx::Value::Array(a) => a
                .iter()
                .map(|x| self.fx_string(x, sf))
                .collect::<Vec<_>>()
                .join(", "),
            fx::Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
            other => fx_to_text(other),
        }
    }
}

fn json_string(field: &FieldMeta, v: &Value, sf: &StrFmt) -> String {
    let opts = field.options.as_ref();
    let precision = field
        .opt("precision")
        .and_then(Value::as_u64)
        .map(|p| p as usize);
    match (field.ftype.as_str(), v) {
        ("number" | "rating" | "autoNumber" | "count", Value::Number(n)) => {
            fmt_number(n.as_f64().unwrap_or(0.0), precision)
        }
        ("currency", Value::Number(n)) => format!(
            "{}{}",
            field.opt_str("symbol").unwrap_or("$"),
            fmt_number(n.as_f64().unwrap_or(0.0), precision.or(Some(2)))
        ),
        ("percent", Value::Number(n)) => format!(
            "{}%",
            fmt_number(n.as_f64().unwrap_or(0.0) * 100.0, precision.or(Some(0)))
        ),
        ("duration", Value::Number(n)) => {
            let secs = n.as_f64().unwrap_or(0.0).max(0.0) as u64;
            let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
            if field.opt_str("durationFormat").unwrap_or("h:mm") == "h:mm" {
                format!("{h}:{m:02}")
            } else {
                format!("{h}:{m:02}:{s:02}")
            }
        }
        ("checkbox", Value::Bool(true)) => "checked".to_string(),
        ("date", Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(|d| d.format(date_pattern(opts, sf)).to_string())
            .unwrap_or_else(|_| s.clone()),
        ("dateTime", Value::String(s)) => parse_iso(s)
            .map(|d| fmt_datetime(d, opts, sf))
            .unwrap_or_else(|| s.clone()),
        ("createdTime" | "lastModifiedTime", Value::String(s)) => {
            let result_opts = field.opt("result").and_then(|r| r.get("options"));
            parse_iso(s)
                .map(|d| fmt_datetime(d, result_opts, sf))
                .unwrap_or_else(|| s.clone())
        }
        ("multipleAttachments", Value::Array(a)) => a
            .iter()
            .map(|x| {
                format!(
                    "{} ({})",
                    x.get("filename").and_then(Value::as_str).unwrap_or(""),
                    x.get("url").and_then(Value::as_str).unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        (_, Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => fx_to_text(&json_to_fx(Some(other))),
            })
            .collect::<Vec<_>>()
            .join(", "),
        (_, Value::String(s)) => s.clone(),
        (_, other) => fx_to_text(&json_to_fx(Some(other))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod minute_precision_tests {
    use super::*;

    #[test]
    fn minute_precision_instants_are_the_same_instant() {
        let full = parse_datetime("2026-01-02T12:51:00.000Z", "utc", false).unwrap();
        assert_eq!(
            parse_datetime("2026-01-02T12:51Z", "utc", false),
            Some(full)
        );
        assert_eq!(
            parse_datetime("2026-01-02T14:51+02:00", "utc", false),
            Some(full)
        );
        assert_eq!(
            parse_date("2026-01-02T12:51Z", false),
            NaiveDate::from_ymd_opt(2026, 1, 2)
        );
        assert_eq!(parse_datetime("2026-01-02T12Z", "utc", false), None);
    }
}
