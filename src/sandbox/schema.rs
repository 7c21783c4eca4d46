//! The schema model (bases, tables, fields, views), its JSON shapes and the
//! validation of new tables and fields.

use serde_json::{Map, Value, json};

use super::errors::{ApiError, ApiResult};
use super::fx;
use super::util::{is_id, new_id};
use crate::airtable::FieldType;

#[derive(Debug, Clone)]
pub struct Base {
    pub tables: Vec<TableMeta>,
}

#[derive(Debug, Clone)]
pub struct TableMeta {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub primary_field_id: String,
    pub fields: Vec<FieldMeta>,
    pub views: Vec<ViewMeta>,
}

#[derive(Debug, Clone)]
pub struct FieldMeta {
    pub id: String,
    pub name: String,
    pub ftype: String,
    pub description: Option<String>,
    pub options: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct ViewMeta {
    pub id: String,
    pub name: String,
    pub vtype: String,
    /// Sandbox view config: `{"sort": [{"field": fldId, "direction": "asc"|"desc"}],
    /// "filterByFormula": "...", "hiddenFieldIds": [..]}`.
    pub config: Value,
}

pub const TEXT_TYPES: &[&str] = &[
    "singleLineText",
    "multilineText",
    "richText",
    "email",
    "url",
    "phoneNumber",
];
pub const NUMBER_TYPES: &[&str] = &["number", "currency", "percent", "rating", "duration"];
/// Computed types (the client's [`FieldType::is_computed`] decides) that the sandbox does not
/// evaluate, so it refuses to create them.
const UNEVALUATED_COMPUTED: &[FieldType] = &[
    FieldType::AiText,
    FieldType::ExternalSyncSource,
    FieldType::ManualSort,
];
const OTHER_EDITABLE: &[&str] = &[
    "checkbox",
    "date",
    "dateTime",
    "singleSelect",
    "multipleSelects",
    "multipleRecordLinks",
    "multipleAttachments",
    "singleCollaborator",
    "multipleCollaborators",
    "barcode",
];
/// Types the sandbox can create as a primary field.
const PRIMARY_TYPES: &[&str] = &[
    "singleLineText",
    "multilineText",
    "richText",
    "email",
    "url",
    "phoneNumber",
    "number",
    "currency",
    "percent",
    "duration",
    "date",
    "dateTime",
    "formula",
    "autoNumber",
    "barcode",
];

/// A computed type the sandbox evaluates (formula, rollup, lookup, count, autoNumber, ...).
fn is_evaluated_computed(t: &str) -> bool {
    let ft = FieldType::from_wire(t);
    ft.is_computed() && !UNEVALUATED_COMPUTED.contains(&ft)
}

pub fn known_type(t: &str) -> bool {
    TEXT_TYPES.contains(&t)
        || NUMBER_TYPES.contains(&t)
        || is_evaluated_computed(t)
        || OTHER_EDITABLE.contains(&t)
}

impl Base {
    /// A table by ID or exact name.
    pub fn table(&self, key: &str) -> Option<&TableMeta> {
        self.tables
            .iter()
            .find(|t| t.id == key)
            .or_else(|| self.tables.iter().find(|t| t.name == key))
    }

    pub fn table_by_id(&self, id: &str) -> Option<&TableMeta> {
        self.tables.iter().find(|t| t.id == id)
    }

    pub fn field_by_id(&self, id: &str) -> Option<(&TableMeta, &FieldMeta)> {
        self.tables
            .iter()
            .find_map(|t| t.fields.iter().find(|f| f.id == id).map(|f| (t, f)))
    }

    pub fn to_json(&self, include_visible: bool) -> Value {
        json!({"tables": self.tables.iter().map(|t| t.to_json(include_visible)).collect::<Vec<_>>()})
    }
}

impl TableMeta {
    /// A field by ID or exact name.
    pub fn field(&self, key: &str) -> Option<&FieldMeta> {
        self.fields
            .iter()
            .find(|f| f.id == key)
            .or_else(|| self.fields.iter().find(|f| f.name == key))
    }

    pub fn primary(&self) -> Option<&FieldMeta> {
        self.fields.iter().find(|f| f.id == self.primary_field_id)
    }

    pub fn view(&self, key: &str) -> Option<&ViewMeta> {
        self.views
            .iter()
            .find(|v| v.id == key)
            .or_else(|| self.views.iter().find(|v| v.name == key))
    }

    pub fn to_json(&self, include_visible: bool) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        if let Some(d) = &self.description {
            m.insert("description".into(), json!(d));
        }
        m.insert("primaryFieldId".into(), json!(self.primary_field_id));
        m.insert(
            "fields".into(),
            Value::Array(self.fields.iter().map(FieldMeta::to_json).collect()),
        );
        let views = self
            .views
            .iter()
            .map(|v| {
                let mut vm = Map::new();
                vm.insert("id".into(), json!(v.id));
                vm.insert("name".into(), json!(v.name));
                vm.insert("type".into(), json!(v.vtype));
                if include_visible && v.vtype == "grid" {
                    let hidden: Vec<&str> = v
                        .config
                        .get("hiddenFieldIds")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let visible: Vec<&str> = self
                        .fields
                        .iter()
                        .map(|f| f.id.as_str())
                        .filter(|id| !hidden.contains(id))
                        .collect();
                    vm.insert("visibleFieldIds".into(), json!(visible));
                }
                Value::Object(vm)
            })
            .collect();
        m.insert("views".into(), Value::Array(views));
        Value::Object(m)
    }
}

impl FieldMeta {
    pub fn is_computed(&self) -> bool {
        FieldType::from_wire(&self.ftype).is_computed()
    }

    pub fn opt(&self, key: &str) -> Option<&Value> {
        self.options.as_ref().and_then(|o| o.get(key))
    }

    pub fn opt_str(&self, key: &str) -> Option<&str> {
        self.opt(key).and_then(Value::as_str)
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("type".into(), json!(self.ftype));
        if let Some(d) = &self.description {
            m.insert("description".into(), json!(d));
        }
        if let Some(o) = &self.options {
            m.insert("options".into(), o.clone());
        }
        Value::Object(m)
    }

    /// Select choices (name, id).
    pub fn choices(&self) -> Vec<(String, String)> {
        self.opt("choices")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| {
                        Some((
                            c.get("name")?.as_str()?.to_string(),
                            c.get("id")?.as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn check_description(d: Option<&Value>) -> ApiResult<Option<String>> {
    match d {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= 20_000 => {
            Ok(Some(s.clone()))
        }
        Some(_) => Err(ApiError::invalid_request(
            "Invalid request: description must be a non-empty string of at most 20,000 characters",
        )),
    }
}

fn bad_options(name: &str, why: &str) -> ApiError {
    ApiError::unprocessable(
        "INVALID_FIELD_TYPE_OPTIONS",
        format!("Invalid options for field \"{name}\": {why}"),
    )
}

/// A field being created, and the inverse link field to add to another table, if any.
pub struct NewField {
    pub field: FieldMeta,
    /// (table id, inverse field) for a link to another table.
    pub inverse: Option<(String, FieldMeta)>,
}

/// Validate and normalise one field config (`{name, type, description?, options?}`).
///
/// `base` is the base as it is now; `table_id`/`table_name` is the table receiving the field
/// (possibly not yet in `base`), and `siblings` its fields so far.
pub fn new_field(
    base: &Base,
    table_id: &str,
    table_name: &str,
    siblings: &[FieldMeta],
    spec: &Value,
) -> ApiResult<NewField> {
    let obj = spec.as_object().ok_or_else(|| {
        ApiError::invalid_request(
            "Invalid request: each field must be an object with name and type",
        )
    })?;
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    if name.is_empty() {
        return Err(ApiError::unprocessable(
            "DUPLICATE_OR_EMPTY_FIELD_NAME",
            "Field names must be non-empty",
        ));
    }
    if siblings.iter().any(|f| f.name.eq_ignore_ascii_case(name)) {
        return Err(ApiError::unprocessable(
            "DUPLICATE_OR_EMPTY_FIELD_NAME",
            format!(
                "Duplicate field name: \"{name}\" (field names are unique, case-insensitively)"
            ),
        ));
    }
    let ftype = obj.get("type").and_then(Value::as_str).unwrap_or("");
    if !known_type(ftype) {
        return Err(ApiError::unprocessable(
            "INVALID_FIELD_TYPE",
            format!("Unknown or unsupported field type \"{ftype}\" for field \"{name}\""),
        ));
    }
    let description = check_description(obj.get("description"))?;
    let given = obj.get("options").cloned().unwrap_or(Value::Null);
    let given = match given {
        Value::Null => Map::new(),
        Value::Object(m) => m,
        _ => return Err(bad_options(name, "options must be an object")),
    };
    let id = new_id("fld");
    let mut inverse = None;
    let options: Option<Value> = match ftype {
        "singleLineText" | "multilineText" | "richText" | "email" | "url" | "phoneNumber"
        | "singleCollaborator" | "createdBy" | "lastModifiedBy" | "button" | "barcode" => None,
        "multipleCollaborators" => Some(json!({})),
        "number" | "percent" => {
            let p = given.get("precision").and_then(Value::as_u64).unwrap_or(0);
            if p > 8 {
                return Err(bad_options(name, "precision must be 0..8"));
            }
            Some(json!({"precision": p}))
        }
        "currency" => {
            let p = given.get("precision").and_then(Value::as_u64).unwrap_or(2);
            if p > 7 {
                return Err(bad_options(name, "precision must be 0..7"));
            }
            let sym = given.get("symbol").and_then(Value::as_str).unwrap_or("$");
            Some(json!({"precision": p, "symbol": sym}))
        }
        "rating" => {
            let max = given.get("max").and_then(Value::as_u64).unwrap_or(5);
            if !(1..=10).contains(&max) {
                return Err(bad_options(name, "max must be 1..10"));
            }
            let icon = given.get("icon").and_then(Value::as_str).unwrap_or("star");
            let color = given
                .get("color")
                .and_then(Value::as_str)
                .unwrap_or("yellowBright");
            Some(json!({"icon": icon, "max": max, "color": color}))
        }
        "duration" => {
            let f = given
                .get("durationFormat")
                .and_then(Value::as_str)
                .unwrap_or("h:mm");
            Some(json!({"durationFormat": f}))
        }
        "checkbox" => {
            let icon = given.get("icon").and_then(Value::as_str).unwrap_or("check");
            let color = given
                .get("color")
                .and_then(Value::as_str)
                .unwrap_or("greenBright");
            Some(json!({"icon": icon, "color": color}))
        }
        "date" => Some(json!({"dateFormat": date_format(given.get("dateFormat"))})),
        "dateTime" => {
            let tz = given
                .get("timeZone")
                .and_then(Value::as_str)
                .unwrap_or("utc");
            if tz != "utc" && tz != "client" && tz.parse::<crate::formula::zone::Zone>().is_err() {
                return Err(bad_options(
                    name,
                    "timeZone must be utc, client or an IANA zone",
                ));
            }
            let tf = given
                .get("timeFormat")
                .and_then(|v| v.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("24hour");
            let tfmt = if tf == "12hour" { "h:mma" } else { "HH:mm" };
            Some(json!({
                "dateFormat": date_format(given.get("dateFormat")),
                "timeFormat": {"name": tf, "format": tfmt},
                "timeZone": tz
            }))
        }
        "singleSelect" | "multipleSelects" => {
            let mut choices = Vec::new();
            if let Some(cs) = given.get("choices") {
                let arr = cs
                    .as_array()
                    .ok_or_else(|| bad_options(name, "choices must be an array"))?;
                for c in arr {
                    let cname = c
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad_options(name, "each choice needs a name"))?;
                    let mut cm = Map::new();
                    cm.insert("id".into(), json!(new_id("sel")));
                    cm.insert("name".into(), json!(cname));
                    if let Some(color) = c.get("color").and_then(Value::as_str) {
                        cm.insert("color".into(), json!(color));
                    }
                    choices.push(Value::Object(cm));
                }
            }
            Some(json!({"choices": choices}))
        }
        "multipleAttachments" => Some(json!({"isReversed": false})),
        "multipleRecordLinks" => {
            let linked = given
                .get("linkedTableId")
                .and_then(Value::as_str)
                .ok_or_else(|| bad_options(name, "linkedTableId is required"))?;
            let single = given
                .get("prefersSingleRecordLink")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let mut o = json!({
                "linkedTableId": linked,
                "isReversed": false,
                "prefersSingleRecordLink": single,
            });
            if linked != table_id {
                let other = base.table_by_id(linked).ok_or_else(|| {
                    bad_options(name, "linkedTableId names no table of this base")
                })?;
                let mut inv_name = table_name.to_string();
                let mut n = 2;
                while other
                    .fields
                    .iter()
                    .any(|f| f.name.eq_ignore_ascii_case(&inv_name))
                {
                    inv_name = format!("{table_name} {n}");
                    n += 1;
                }
                let inv = FieldMeta {
                    id: new_id("fld"),
                    name: inv_name,
                    ftype: "multipleRecordLinks".into(),
                    description: None,
                    options: Some(json!({
                        "linkedTableId": table_id,
                        "isReversed": false,
                        "prefersSingleRecordLink": false,
                        "inverseLinkFieldId": id,
                    })),
                };
                o["inverseLinkFieldId"] = json!(inv.id);
                inverse = Some((other.id.clone(), inv));
            }
            Some(o)
        }
        "autoNumber" => None,
        "createdTime" | "lastModifiedTime" => Some(json!({
            "isValid": true,
            "referencedFieldIds": [],
            "result": {"type": "dateTime", "options": {
                "dateFormat": {"name": "iso", "format": "YYYY-MM-DD"},
                "timeFormat": {"name": "24hour", "format": "HH:mm"},
                "timeZone": "utc"}}
        })),
        "formula" => {
            let text = given
                .get("formula")
                .and_then(Value::as_str)
                .ok_or_else(|| bad_options(name, "formula is required"))?;
            Some(formula_options(siblings, name, text)?)
        }
        "count" => {
            let link = link_field(siblings, name, given.get("recordLinkFieldId"))?;
            Some(json!({"isValid": true, "recordLinkFieldId": link.id}))
        }
        "multipleLookupValues" | "rollup" => {
            let link = link_field(siblings, name, given.get("recordLinkFieldId"))?;
            let linked_table_id = link.opt_str("linkedTableId").unwrap_or_default();
            let linked_fields: &[FieldMeta] = if linked_table_id == table_id {
                siblings
            } else {
                base.table_by_id(linked_table_id)
                    .map(|t| t.fields.as_slice())
                    .unwrap_or(&[])
            };
            let key = given
                .get("fieldIdInLinkedTable")
                .and_then(Value::as_str)
                .ok_or_else(|| bad_options(name, "fieldIdInLinkedTable is required"))?;
            let target = linked_fields
                .iter()
                .find(|f| f.id == key || f.name == key)
                .ok_or_else(|| {
                    bad_options(
                        name,
                        "fieldIdInLinkedTable names no field of the linked table",
                    )
                })?;
            if ftype == "rollup" {
                let formula = given
                    .get("formula")
                    .and_then(Value::as_str)
                    .unwrap_or("ARRAYJOIN(values, \", \")");
                fx::compile(formula, &["values"])
                    .map_err(|m| bad_options(name, &format!("rollup formula: {m}")))?;
                Some(json!({
                    "isValid": true,
                    "recordLinkFieldId": link.id,
                    "fieldIdInLinkedTable": target.id,
                    "referencedFieldIds": [link.id, target.id],
                    "formula": formula,
                }))
            } else {
                Some(json!({
                    "isValid": true,
                    "recordLinkFieldId": link.id,
                    "fieldIdInLinkedTable": target.id,
                    "result": {"type": target.ftype, "options": target.options.clone()},
                }))
            }
        }
        _ => None,
    };
    Ok(NewField {
        field: FieldMeta {
            id,
            name: name.to_string(),
            ftype: ftype.to_string(),
            description,
            options,
        },
        inverse,
    })
}

fn link_field<'a>(
    siblings: &'a [FieldMeta],
    name: &str,
    key: Option<&Value>,
) -> ApiResult<&'a FieldMeta> {
    let key = key
        .and_then(Value::as_str)
        .ok_or_else(|| bad_options(name, "recordLinkFieldId is required"))?;
    siblings
        .iter()
        .find(|f| (f.id == key || f.name == key) && f.ftype == "multipleRecordLinks")
        .ok_or_else(|| bad_options(name, "recordLinkFieldId names no link field of this table"))
}

fn date_format(given: Option<&Value>) -> Value {
    let name = given
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("iso");
    let format = match name {
        "local" => "l",
        "friendly" => "LL",
        "us" => "M/D/YYYY",
        "european" => "D/M/YYYY",
        _ => "YYYY-MM-DD",
    };
    let name = if format == "YYYY-MM-DD" { "iso" } else { name };
    json!({"name": name, "format": format})
}

/// Rewrite `{Name}` references to `{fldId}` (Airtable shows formulas with field IDs), check
/// the formula, and build the options.
pub fn formula_options(siblings: &[FieldMeta], name: &str, text: &str) -> ApiResult<Value> {
    let mut keys: Vec<&str> = siblings.iter().map(|f| f.name.as_str()).collect();
    keys.extend(siblings.iter().map(|f| f.id.as_str()));
    fx::compile(text, &keys).map_err(|m| bad_options(name, &format!("formula: {m}")))?;
    let mut rewritten = text.to_string();
    let mut referenced = Vec::new();
    for f in siblings {
        let pat = format!("{{{}}}", f.name.replace('}', "\\}"));
        if rewritten.contains(&pat) {
            rewritten = rewritten.replace(&pat, &format!("{{{}}}", f.id));
        }
        if rewritten.contains(&format!("{{{}}}", f.id)) {
            referenced.push(f.id.clone());
        }
    }
    Ok(json!({
        "formula": rewritten,
        "isValid": true,
        "referencedFieldIds": referenced,
        "result": null,
    }))
}

/// Validate a table config (`{name, description?, fields: [...]}`) against a base.
/// Returns the new table and the inverse link fields to add to other tables.
pub fn new_table(base: &Base, spec: &Value) -> ApiResult<(TableMeta, Vec<(String, FieldMeta)>)> {
    let obj = spec
        .as_object()
        .ok_or_else(|| ApiError::invalid_request("Invalid request: the table must be an object"))?;
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    if name.is_empty() {
        return Err(ApiError::invalid_request(
            "Invalid request: the table needs a name",
        ));
    }
    if base
        .tables
        .iter()
        .any(|t| t.name.eq_ignore_ascii_case(name))
    {
        return Err(ApiError::unprocessable(
            "DUPLICATE_TABLE_NAME",
            format!("A table named \"{name}\" already exists in this base"),
        ));
    }
    let description = check_description(obj.get("description"))?;
    let specs = obj
        .get("fields")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            ApiError::invalid_request("Invalid request: a table needs at least one field")
        })?;
    let table_id = new_id("tbl");
    let mut fields: Vec<FieldMeta> = Vec::new();
    let mut inverses = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let nf = new_field(base, &table_id, name, &fields, spec)?;
        if i == 0 && !PRIMARY_TYPES.contains(&nf.field.ftype.as_str()) {
            return Err(ApiError::unprocessable(
                "INVALID_FIELD_TYPE",
                format!(
                    "Field type \"{}\" cannot be the primary (first) field",
                    nf.field.ftype
                ),
            ));
        }
        fields.push(nf.field);
        if let Some(inv) = nf.inverse {
            inverses.push(inv);
        }
    }
    let table = TableMeta {
        id: table_id,
        name: name.to_string(),
        description,
        primary_field_id: fields.first().map(|f| f.id.clone()).unwrap_or_default(),
        fields,
        views: vec![ViewMeta {
            id: new_id("viw"),
            name: "Grid view".into(),
            vtype: "grid".into(),
            config: json!({}),
        }],
    };
    Ok((table, inverses))
}

/// Whether a string looks like a base ID.
pub fn is_base_id(s: &str) -> bool {
    is_id("app", s)
}
